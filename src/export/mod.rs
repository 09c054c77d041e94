//! The CA public key in the forms hosts and people need: the OpenSSH line for
//! `TrustedUserCAKeys`, its SHA256 fingerprint, JSON, the bundle with the backup CAs, QR codes
//! (`qr`) and the printable key sheet (`sheet`).

use std::path::Path;

use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PublicKey};

use crate::backend::Algorithm;
use crate::config::{self, Config};
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
    crate::text::json_ascii(&value, false)
        .map_err(|e| Error::config(format!("cannot build the JSON output: {e}")))
}

/// The backup CAs of config.toml (none without a configuration), each as its canonical OpenSSH
/// line and key. A line that does not parse is a configuration error naming the entry.
pub fn backup_cas(config: Option<&Config>, state_dir: &Path) -> Result<Vec<(String, KeyData)>> {
    let Some(config) = config else {
        return Ok(Vec::new());
    };
    let file = state_dir.join(config::CONFIG_FILE);
    config
        .backup_ca_pubkeys
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let bad = |why: String| {
                Error::config(format!(
                    "backup_ca_pubkeys entry {} in {} is not an OpenSSH public key line: {why}",
                    i + 1,
                    file.display()
                ))
                .with_hint("fix or remove that entry; add backup CAs with 'breakglass-ca add-backup-ca FILE'")
            };
            let key = PublicKey::from_openssh(line.trim()).map_err(|e| bad(e.to_string()))?;
            let text = key.to_openssh().map_err(|e| bad(e.to_string()))?;
            Ok((text, key.key_data().clone()))
        })
        .collect()
}

/// Every CA line for one `TrustedUserCAKeys` file: this CA first, then the backups, without
/// repeats.
pub fn bundle_lines(
    primary: &KeyData,
    config: Option<&Config>,
    state_dir: &Path,
) -> Result<Vec<String>> {
    let mut lines = vec![openssh_line(primary)?];
    for (line, key) in backup_cas(config, state_dir)? {
        if &key != primary && !lines.contains(&line) {
            lines.push(line);
        }
    }
    Ok(lines)
}
