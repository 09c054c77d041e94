//! The CA public key in the forms hosts and people need: the OpenSSH line for
//! `TrustedUserCAKeys`, its SHA256 fingerprint, and JSON.

use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PublicKey};

use crate::backend::Algorithm;
use crate::error::{Error, Result};

pub mod qr;
pub mod sheet;

/// Comment put on exported CA lines.
pub const CA_COMMENT: &str = "breakglass-ca";

/// `ecdsa-sha2-nistp256 AAAA… breakglass-ca`, no trailing newline.
pub fn openssh_line(key: &KeyData) -> Result<String> {
    PublicKey::new(key.clone(), CA_COMMENT)
        .to_openssh()
        .map_err(|e| Error::ssh("cannot encode the CA public key", e))
}

/// `SHA256:…`, as `ssh-keygen -l -E sha256` prints it.
pub fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The public key, fingerprint, algorithm and URI as one JSON object.
pub fn json(key: &KeyData, uri: &str) -> Result<String> {
    let algorithm = Algorithm::of_key(key)
        .map(|a| a.name())
        .unwrap_or("unknown");
    let value = serde_json::json!({
        "public_key": openssh_line(key)?,
        "fingerprint": fingerprint(key),
        "algorithm": algorithm,
        "uri": uri,
    });
    Ok(value.to_string())
}
