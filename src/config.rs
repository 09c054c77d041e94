//! The state directory and `config.toml`: which CA key to use (a URI, never a PIN), what it
//! should look like (algorithm, fingerprint) and the issuance policy.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::policy::Policy;

pub const CONFIG_FILE: &str = "config.toml";
/// The CA public key line, kept beside the config so the ledger can be verified without the token.
pub const CA_PUB_FILE: &str = "ca.pub";

/// The state directory: `--state-dir`, else `$XDG_STATE_HOME/breakglass-ca`, else
/// `~/.local/state/breakglass-ca`.
pub fn state_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let nonempty = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    if let Some(x) = nonempty("XDG_STATE_HOME") {
        return Ok(x.join("breakglass-ca"));
    }
    if let Some(h) = nonempty("HOME") {
        return Ok(h.join(".local/state/breakglass-ca"));
    }
    Err(Error::usage(
        "cannot tell where the state directory is: neither HOME nor XDG_STATE_HOME is set",
    )
    .with_hint("pass --state-dir DIR or set BREAKGLASS_CA_STATE_DIR"))
}

/// Create the state directory (mode 0700) if it does not exist.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::file("create the state directory", dir, e))
}

/// `config.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The CA key URI (no PIN, ever).
    pub ca: String,
    pub algorithm: String,
    /// SHA256 fingerprint of the CA public key, to notice a different key behind the same URI.
    pub fingerprint: String,
    /// When `init` created the key (RFC 3339, UTC).
    #[serde(default)]
    pub created: String,
    /// Public key lines of backup CAs (other tokens) that hosts trust too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backup_ca_pubkeys: Vec<String>,
    /// Have the token sign the ledger head after each issuance (see `checkpoint.rs`).
    #[serde(default = "yes")]
    pub checkpoints: bool,
    #[serde(default)]
    pub policy: Policy,
}

fn yes() -> bool {
    true
}

impl Config {
    /// Read `<dir>/config.toml`; `Ok(None)` if there is none.
    pub fn load(dir: &Path) -> Result<Option<Config>> {
        let path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::file("read", &path, e)),
        };
        let config: Config = toml::from_str(&text).map_err(|e| {
            Error::config(format!("{} is not valid: {}", path.display(), e.message()))
                .with_hint("fix the file by hand, or run 'breakglass-ca init' again for this CA")
        })?;
        config.policy.check()?;
        Ok(Some(config))
    }

    /// Write `<dir>/config.toml` atomically.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        let body = toml::to_string(self)
            .map_err(|e| Error::config(format!("cannot write the configuration: {e}")))?;
        let text = format!(
            "# breakglass-ca configuration, written by 'breakglass-ca init'.\n# It names the CA key; it never holds a PIN.\n{body}"
        );
        let path = dir.join(CONFIG_FILE);
        write_atomic(&path, text.as_bytes(), 0o644)?;
        Ok(path)
    }
}

/// Write a file so that readers see the old or the new content, never half of it: a temporary
/// file in the same directory, fsynced, renamed over the target, and the directory fsynced.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    check_replaceable(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::file("write", path, e)
    })
}

/// Refuse an output path that is not a plain file: renaming over a device, a FIFO or a
/// symlink would replace it with a plain file.
pub fn check_replaceable(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => Err(Error::usage(format!(
            "{} exists and is not a regular file; refusing to replace it",
            path.display()
        ))
        .with_hint("give a plain file path; for the terminal, leave -o out or use -o -")),
        _ => Ok(()),
    }
}

/// fsync a directory, so that a new or renamed entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trip_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), None);
        let c = Config {
            ca: "pkcs11:token=t;object=o".into(),
            algorithm: "ecdsa-p256".into(),
            fingerprint: "SHA256:x".into(),
            created: "2026-11-22T00:00:00Z".into(),
            backup_ca_pubkeys: Vec::new(),
            checkpoints: true,
            policy: Policy::default(),
        };
        c.save(dir.path()).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), Some(c));
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "ca = \"pkcs11:\"\nalgorithm = \"ed25519\"\nfingerprint = \"f\"\n[policy]\nmax_validity = \"30m\"\n",
        )
        .unwrap();
        let c = Config::load(dir.path()).unwrap().unwrap();
        assert_eq!(c.policy.max_validity.as_secs(), 1800);
        assert_eq!(c.policy.default_validity.as_secs(), 900);
    }

    #[test]
    fn bad_config_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        for (text, why) in [
            ("ca = 1", "not valid"),
            (
                "ca=\"x\"\nalgorithm=\"a\"\nfingerprint=\"f\"\npin=\"1234\"",
                "unknown field",
            ),
            (
                "ca=\"x\"\nalgorithm=\"a\"\nfingerprint=\"f\"\n[policy]\nmax_validity=\"5\"",
                "no unit",
            ),
            (
                "ca=\"x\"\nalgorithm=\"a\"\nfingerprint=\"f\"\n[policy]\nmax_validity=\"5m\"",
                "longer than max_validity",
            ),
        ] {
            std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
            let err = Config::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
