//! The state directory and `config.toml`: which CA key to use (a URI, never a PIN), what it
//! should look like (algorithm, fingerprint) and the issuance policy.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsx;
use crate::policy::Policy;
use crate::text::ShowPath;
use crate::uri::CaUri;

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

/// `config.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The CA key URI (no PIN, ever).
    pub ca: CaUri,
    /// The key's algorithm as `init` made it, for people and other tools reading the file.
    /// Written by `init` and kept as it was when the file is saved again, but never read back
    /// to decide anything: the key itself says what it is ([`crate::key::Algorithm::of_key`]).
    /// (Files of every version have it, and `deny_unknown_fields` must go on accepting them.)
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
    /// Dual control (all optional, see [`crate::dual::Policy`]): every mint needs a request
    /// signed by the requester's key.
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_possession: bool,
    /// The approvers (OpenSSH allowed_signers), relative to the state directory or absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers_file: Option<PathBuf>,
    /// How many distinct approvers must sign each request (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub required_approvals: u32,
    /// How old a request may be when it is minted (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_age: Option<crate::duration::Duration>,
    /// Where the copy of the state directory is kept (`backup_dir = "/media/BACKUP/…"`, set by
    /// hand): `doctor` checks that it holds the ledger's newest record. Optional; configs
    /// without it read as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<PathBuf>,
    #[serde(default)]
    pub policy: Policy,
}

#[cfg(test)]
impl Config {
    /// A config for tests: `pkcs11:token=t`, an ed25519 key of `fingerprint`, checkpoints on,
    /// nothing else set.
    pub fn for_tests(fingerprint: &str) -> Config {
        Config {
            ca: "pkcs11:token=t".parse().unwrap(),
            algorithm: "ed25519".into(),
            fingerprint: fingerprint.into(),
            created: String::new(),
            backup_ca_pubkeys: Vec::new(),
            checkpoints: true,
            require_possession: false,
            approvers_file: None,
            required_approvals: 0,
            max_request_age: None,
            backup_dir: None,
            policy: Policy::default(),
        }
    }
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Config {
    /// Read `<dir>/config.toml`; `Ok(None)` if there is none. The directory and the file must
    /// be the custodian's alone (the file names the PKCS#11 module that gets loaded), and the
    /// file is never read through a link.
    pub fn load(dir: &Path) -> Result<Option<Config>> {
        fsx::check_private_dir(dir)?;
        let path = dir.join(CONFIG_FILE);
        let Some(file) = fsx::open_private(&path, std::fs::OpenOptions::new().read(true))? else {
            return Ok(None);
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::file("examine", &path, e))?;
        fsx::check_private_file(&path, &meta)?;
        let bytes = fsx::read_limited(
            file,
            fsx::limit::CONFIG,
            &format!("configuration {}", path.shown()),
        )?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::config(format!("{} is not UTF-8 text", path.shown()))
                .with_hint("restore config.toml from the backup kept with the token")
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| {
            Error::toml_read(format!("{} is not valid", path.shown()), e)
                .with_hint("fix the file by hand, or run 'breakglass-ca init' again for this CA")
        })?;
        config.policy.check()?;
        config.dual().check()?;
        Ok(Some(config))
    }

    /// The dual-control settings.
    pub fn dual(&self) -> crate::dual::Policy {
        crate::dual::Policy {
            require_possession: self.require_possession,
            approvers_file: self.approvers_file.clone(),
            required_approvals: self.required_approvals,
            max_request_age: self
                .max_request_age
                .unwrap_or(crate::dual::approval::DEFAULT_MAX_AGE),
        }
    }

    /// Write `<dir>/config.toml` atomically, mode 0600.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        let body = toml::to_string(self)
            .map_err(|e| Error::toml_write("cannot write the configuration", e))?;
        let text = format!(
            "# breakglass-ca configuration, written by 'breakglass-ca init'.\n# It names the CA key; it never holds a PIN.\n{body}"
        );
        let path = dir.join(CONFIG_FILE);
        fsx::write_atomic(&path, text.as_bytes(), fsx::PRIVATE_FILE)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trip_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), None);
        let c = Config {
            ca: "pkcs11:token=t;object=o".parse().unwrap(),
            algorithm: "ecdsa-p256".into(),
            created: "2026-11-22T00:00:00Z".into(),
            ..Config::for_tests("SHA256:x")
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
            // The URI is parsed when the file is loaded.
            (
                "ca=\"x\"\nalgorithm=\"a\"\nfingerprint=\"f\"",
                "invalid CA URI 'x': it must start with pkcs11: or yubikey:",
            ),
            (
                "ca=\"pkcs11:token=t;pin-value=1234\"\nalgorithm=\"a\"\nfingerprint=\"f\"",
                "pin-value is not accepted",
            ),
            (
                "ca=\"pkcs11:token=x\"\nalgorithm=\"a\"\nfingerprint=\"f\"\npin=\"1234\"",
                "unknown field",
            ),
            (
                "ca=\"pkcs11:token=x\"\nalgorithm=\"a\"\nfingerprint=\"f\"\n[policy]\nmax_validity=\"5\"",
                "no unit",
            ),
            (
                "ca=\"pkcs11:token=x\"\nalgorithm=\"a\"\nfingerprint=\"f\"\n[policy]\nmax_validity=\"5m\"",
                "longer than max_validity",
            ),
        ] {
            std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
            let err = Config::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn config_is_private_and_never_read_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let c = Config::for_tests("SHA256:x");
        let path = c.save(dir.path()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        let err = Config::load(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("can be changed by its group"),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("chmod 600"), "{err:?}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), Some(c.clone()));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Config::load(dir.path()).unwrap_err();
        assert!(err.hint().unwrap().contains("chmod 700"), "{err:?}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        // A link, even to a valid configuration, is refused.
        let real = dir.path().join("real.toml");
        std::fs::rename(&path, &real).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        let err = Config::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // A huge file is refused before it is read into memory.
        std::fs::remove_file(&path).unwrap();
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(fsx::limit::CONFIG + 1).unwrap();
        let err = Config::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    /// config.toml as 0.2.0's `init` and `add-backup-ca` wrote it: it loads, and saving it
    /// again gives the same bytes (the URI is written as it was read, the unread `algorithm`
    /// is kept).
    #[test]
    fn a_written_config_loads_and_saves_byte_for_byte() {
        const PKCS11: &str = r#"# breakglass-ca configuration, written by 'breakglass-ca init'.
# It names the CA key; it never holds a PIN.
ca = "pkcs11:token=emergency-ca;object=breakglass-ca;id=%01%a2?module-path=/usr/lib/softhsm/libsofthsm2.so"
algorithm = "ecdsa-p256"
fingerprint = "SHA256:v101hqzXUxw5UzU4vKn3rNQN53PcG35wkt0/4sHts5Q"
created = "2026-11-22T03:00:00Z"
backup_ca_pubkeys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi vault-b"]
checkpoints = true

[policy]
max_validity = "1h"
default_validity = "15m"
backdate = "5m"
max_start_ahead = "1h"
"#;
        const YUBIKEY: &str = r#"# breakglass-ca configuration, written by 'breakglass-ca init'.
# It names the CA key; it never holds a PIN.
ca = "yubikey:slot-id=9c;serial=12345678"
algorithm = "ed25519"
fingerprint = "SHA256:v101hqzXUxw5UzU4vKn3rNQN53PcG35wkt0/4sHts5Q"
created = "2026-11-22T03:00:00Z"
checkpoints = false

[policy]
max_validity = "1h"
default_validity = "15m"
backdate = "5m"
max_start_ahead = "1h"
"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        for text in [PKCS11, YUBIKEY] {
            std::fs::write(&path, text).unwrap();
            let c = Config::load(dir.path()).unwrap().unwrap();
            assert!(matches!(
                (&c.ca, text == YUBIKEY),
                (CaUri::Pkcs11(_), false) | (CaUri::Yubikey(_), true)
            ));
            c.save(dir.path()).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
        // The algorithm line is kept whatever it says: nothing reads it.
        let odd = PKCS11.replace("\"ecdsa-p256\"", "\"written by hand\"");
        std::fs::write(&path, &odd).unwrap();
        let c = Config::load(dir.path()).unwrap().unwrap();
        c.save(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), odd);
    }
}

#[cfg(test)]
mod dual_tests {
    use super::*;

    const BASE: &str = "ca = \"pkcs11:token=t\"\nalgorithm = \"ed25519\"\nfingerprint = \"f\"\n";

    #[test]
    fn the_dual_control_settings_are_optional_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        // An old configuration has none: no request needed, the default age.
        std::fs::write(&path, BASE).unwrap();
        let c = Config::load(dir.path()).unwrap().unwrap();
        assert_eq!(c.dual(), crate::dual::Policy::default());
        assert!(!c.dual().needs_request());
        assert_eq!(c.dual().max_request_age.as_secs(), 3600);
        // All four, before [policy]; written back byte for byte.
        let text = format!(
            "# breakglass-ca configuration, written by 'breakglass-ca init'.\n# It names the CA key; it never holds a PIN.\n{BASE}created = \"\"\ncheckpoints = true\nrequire_possession = true\napprovers_file = \"approvers\"\nrequired_approvals = 2\nmax_request_age = \"30m\"\n\n[policy]\nmax_validity = \"1h\"\ndefault_validity = \"15m\"\nbackdate = \"5m\"\nmax_start_ahead = \"1h\"\n"
        );
        std::fs::write(&path, &text).unwrap();
        let c = Config::load(dir.path()).unwrap().unwrap();
        let d = c.dual();
        assert!(d.require_possession && d.needs_request());
        assert_eq!(d.required_approvals, 2);
        assert_eq!(d.max_request_age.as_secs(), 1800);
        assert_eq!(
            d.approvers_path(dir.path()),
            Some(dir.path().join("approvers"))
        );
        c.save(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let absolute = crate::dual::Policy {
            approvers_file: Some("/etc/breakglass-ca/approvers".into()),
            ..d
        };
        assert_eq!(
            absolute.approvers_path(dir.path()),
            Some("/etc/breakglass-ca/approvers".into())
        );
        for (extra, needle) in [
            (
                "required_approvals = 2\n",
                "no approvers_file names the approvers",
            ),
            (
                "required_approvals = 17\napprovers_file = \"a\"\n",
                "more than 16",
            ),
            (
                "approvers_file = \"\"\n",
                "approvers_file in config.toml is empty",
            ),
            ("max_request_age = \"0s\"\n", "zero"),
            ("required_approvals = -1\n", "not valid"),
        ] {
            std::fs::write(&path, format!("{BASE}{extra}")).unwrap();
            let err = Config::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra}: {err}");
        }
        // Under [policy] they are unknown.
        std::fs::write(&path, format!("{BASE}[policy]\nrequired_approvals = 2\n")).unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}
