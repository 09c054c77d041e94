//! The CA public key in the forms hosts and people need: the OpenSSH line for
//! `TrustedUserCAKeys`, its SHA256 fingerprint, and JSON.

use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PublicKey};

use crate::backend::Algorithm;
use crate::config::Config;
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

/// Every CA line hosts should trust, one per entry: this CA (`primary`) first, then the
/// backup CAs listed in `config.toml` (re-encoded, without repeats of a key already listed).
pub fn bundle_lines(primary: &KeyData, config: Option<&Config>) -> Result<Vec<String>> {
    let mut keys = vec![primary.clone()];
    let mut lines = vec![openssh_line(primary)?];
    for line in config
        .map(|c| c.backup_ca_pubkeys.as_slice())
        .unwrap_or_default()
    {
        let key = PublicKey::from_openssh(line.trim()).map_err(|e| {
            Error::config(format!(
                "config.toml lists a backup CA line that cannot be read ({e}): {line}"
            ))
            .with_hint("fix or remove that entry of backup_ca_pubkeys in config.toml, then add the key again with 'breakglass-ca add-backup-ca FILE'")
        })?;
        if keys.contains(key.key_data()) {
            continue;
        }
        keys.push(key.key_data().clone());
        lines.push(
            key.to_openssh()
                .map_err(|e| Error::ssh("cannot encode a backup CA public key", e))?,
        );
    }
    Ok(lines)
}
