//! `inspect`: print a certificate the way `ssh-keygen -L` does, then check it: the signature,
//! the CA and the validity window. The CA is the one given with `--ca-pubkey`, else this
//! state directory's CA (`ca.pub`, or the fingerprint in config.toml) and its backup CAs.
//! Exits 1 on a bad signature, a foreign CA or an expired certificate.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ssh_key::public::KeyData;
use ssh_key::{Certificate, HashAlg};

use crate::cli::InspectArgs;
use crate::cmd::Globals;
use crate::error::{Error, Result};
use crate::fsx;
use crate::key::{self, Lines};
use crate::text::Esc;
use crate::ui::{self, both_times};

/// The `ssh-keygen -L` style description of a certificate. Everything the certificate's
/// maker chose (key ID, principals, option values, extension names, comment) is escaped.
pub fn describe(cert: &Certificate, name: &str) -> String {
    let list = |items: Vec<String>| {
        if items.is_empty() {
            " (none)".to_string()
        } else {
            items
                .iter()
                .map(|i| format!("\n                {i}"))
                .collect()
        }
    };
    let fmt_time = |t: u64| {
        i64::try_from(t)
            .ok()
            .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_else(|| t.to_string())
    };
    let critical = cert
        .critical_options()
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                Esc(k).to_string()
            } else {
                format!("{} {}", Esc(k), Esc(v))
            }
        })
        .collect();
    let extensions = cert
        .extensions()
        .keys()
        .map(|k| Esc(k).to_string())
        .collect();
    let principals = cert
        .valid_principals()
        .iter()
        .map(|p| Esc(p).to_string())
        .collect();
    let comment = match cert.comment() {
        "" => String::new(),
        c => format!("\n        Comment: \"{}\"", Esc(c)),
    };
    format!(
        "{}:\n        Type: {} {} certificate\n        Public key: {}-CERT {}\n        Signing CA: {} {} (using {})\n        Key ID: \"{}\"\n        Serial: {}\n        Valid: from {} to {} (UTC)\n        Principals:{}\n        Critical Options:{}\n        Extensions:{}{comment}",
        Esc(name),
        cert.algorithm().to_certificate_type(),
        if cert.cert_type().is_user() { "user" } else { "host" },
        key_kind(cert.public_key().algorithm()),
        cert.public_key().fingerprint(HashAlg::Sha256),
        key_kind(cert.signature_key().algorithm()),
        cert.signature_key().fingerprint(HashAlg::Sha256),
        cert.signature().algorithm(),
        Esc(cert.key_id()),
        cert.serial(),
        fmt_time(cert.valid_after()),
        fmt_time(cert.valid_before()),
        list(principals),
        list(critical),
        list(extensions),
    )
}

fn key_kind(alg: ssh_key::Algorithm) -> &'static str {
    match alg {
        ssh_key::Algorithm::Ecdsa { .. } => "ECDSA",
        ssh_key::Algorithm::Ed25519 => "ED25519",
        ssh_key::Algorithm::Rsa { .. } => "RSA",
        ssh_key::Algorithm::SkEcdsaSha2NistP256 => "ECDSA-SK",
        ssh_key::Algorithm::SkEd25519 => "ED25519-SK",
        _ => "OTHER",
    }
}

/// The CA keys a certificate is checked against.
enum Trusted {
    /// `--ca-pubkey FILE`: every key in it.
    Given(PathBuf, Vec<KeyData>),
    /// This state directory's CA and the backup CAs of its config.toml.
    StateDir {
        /// The CA's key from `ca.pub`, or only its fingerprint from config.toml.
        primary: Primary,
        backups: Vec<KeyData>,
    },
    /// Nothing to check against.
    Nothing,
}

enum Primary {
    CaPub(PathBuf, KeyData),
    Fingerprint(String),
}

/// Every key line of an OpenSSH public key file (comments and blank lines skipped).
fn key_lines(text: &str, path: &Path) -> Result<Vec<KeyData>> {
    key::key_lines(text, Lines::Commented)
        .into_iter()
        .map(|l| {
            key::parse_line(l)
                .map(|k| k.key_data().clone())
                .map_err(|e| {
                    Error::ssh(
                        format!("{} holds an unreadable key", Esc(&path.to_string_lossy())),
                        e,
                    )
                })
        })
        .collect()
}

fn trusted(g: &Globals, args: &InspectArgs) -> Result<Trusted> {
    if let Some(path) = &args.ca_pubkey {
        let text = fsx::read_text(path, fsx::limit::KEY_FILE, "CA public key")?;
        return Ok(Trusted::Given(path.clone(), key_lines(&text, path)?));
    }
    let config = g.config()?;
    // The one reading of STATE/ca.pub (checked against config.toml): see cmd::ca_source.
    let primary = match (g.ca_pub(config.as_ref())?, &config) {
        (Some(file), _) => Primary::CaPub(file.path, file.key),
        (None, Some(c)) => Primary::Fingerprint(c.fingerprint.clone()),
        (None, None) => return Ok(Trusted::Nothing),
    };
    let backups = crate::export::backup_cas(config.as_ref(), &g.state_dir, &mut crate::ui::say)?
        .into_iter()
        .map(|ca| ca.key)
        .collect();
    Ok(Trusted::StateDir { primary, backups })
}

/// Check the CA that signed `cert`: the line to print, and the problem if it is not trusted.
fn check_ca(cert: &Certificate, trusted: &Trusted, state_dir: &Path) -> (String, Option<String>) {
    let signer = cert.signature_key();
    let signer_fp = crate::key::fingerprint(signer);
    match trusted {
        Trusted::Given(path, keys) => {
            let path = Esc(&path.to_string_lossy()).to_string();
            if keys.iter().any(|k| k == signer) {
                (format!("CA: signed by a key in {path}"), None)
            } else {
                (
                    format!("CA: NOT signed by a key in {path} (it was signed by {signer_fp})"),
                    Some(
                        "it was signed by a different CA than the one given with --ca-pubkey"
                            .into(),
                    ),
                )
            }
        }
        Trusted::StateDir { primary, backups } => {
            let (is_primary, what) = match primary {
                Primary::CaPub(path, key) => (
                    key == signer,
                    format!(
                        "this CA ({}, from {})",
                        key.fingerprint(HashAlg::Sha256),
                        Esc(&path.to_string_lossy())
                    ),
                ),
                Primary::Fingerprint(fp) => (
                    *fp == signer_fp,
                    format!(
                        "this CA ({}, the fingerprint in config.toml; there is no ca.pub)",
                        Esc(fp)
                    ),
                ),
            };
            if is_primary {
                return (format!("CA: signed by {what}"), None);
            }
            if let Some(i) = backups.iter().position(|k| k == signer) {
                return (
                    format!(
                        "CA: signed by backup CA {} of config.toml ({signer_fp}); checked against {what} and its {} backup CA(s)",
                        i + 1,
                        backups.len()
                    ),
                    None,
                );
            }
            (
                format!(
                    "CA: NOT signed by this CA: the signer {signer_fp} is neither {what} nor one of its {} backup CA(s)",
                    backups.len()
                ),
                Some(format!(
                    "it was NOT signed by this CA (the CA of {}) but by {signer_fp}",
                    Esc(&state_dir.to_string_lossy())
                )),
            )
        }
        Trusted::Nothing => (
            format!(
                "CA: NOT CHECKED: no --ca-pubkey given and no ca.pub or config.toml in {}. Only the signature's self-consistency was checked: anyone can make a certificate that passes that. Check it with --ca-pubkey FILE.",
                Esc(&state_dir.to_string_lossy())
            ),
            None,
        ),
    }
}

/// The validity line for a certificate's window at `now`, and whether it has expired. The
/// numbers are the certificate maker's: a time past what a date can hold (chrono would panic
/// converting it) is shown as "beyond any date", never converted.
fn validity(now: DateTime<Utc>, valid_after: u64, valid_before: u64) -> (String, bool) {
    let time = |t: u64| {
        i64::try_from(t)
            .ok()
            .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
    };
    let shown = |t: Option<DateTime<Utc>>| t.map_or("beyond any date".to_string(), both_times);
    let (after, before) = (time(valid_after), time(valid_before));
    if before.is_some_and(|b| now >= b) {
        (format!("Validity: EXPIRED at {}", shown(before)), true)
    } else if after.is_none_or(|a| now < a) {
        (
            format!("Validity: not yet valid; starts {}", shown(after)),
            false,
        )
    } else {
        (
            format!("Validity: valid now, until {}", shown(before)),
            false,
        )
    }
}

pub fn run(g: &Globals, args: &InspectArgs) -> Result<()> {
    let text = fsx::read_text(&args.cert, fsx::limit::KEY_FILE, "certificate")?;
    let name = args.cert.to_string_lossy();
    let cert = Certificate::from_openssh(text.trim())
        .map_err(|e| Error::ssh(format!("{} is not an OpenSSH certificate", Esc(&name)), e))?;
    ui::print(describe(&cert, &name))?;

    let mut problems = Vec::new();
    match cert.verify_signature() {
        Ok(()) => ui::print("Signature: valid for the Signing CA key above (self-consistent)")?,
        Err(_) => problems
            .push("the signature does NOT verify: the certificate was altered or forged".into()),
    }
    let trusted = trusted(g, args)?;
    let (line, problem) = check_ca(&cert, &trusted, &g.state_dir);
    ui::print(line)?;
    problems.extend(problem);
    let (line, expired) = validity(Utc::now(), cert.valid_after(), cert.valid_before());
    ui::print(line)?;
    if expired {
        problems.push("it has expired".into());
    }
    match problems.as_slice() {
        [] => Ok(()),
        _ => Err(Error::invalid(format!(
            "the certificate is not good: {}",
            problems.join("; ")
        ))
        .with_hint("mint a new certificate for the requester")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::soft::SoftKey;
    use crate::backend::CaKey;
    use crate::cert::{self, CertOptions, CertSpec};
    use crate::policy::Window;
    use crate::text::is_unsafe_char;
    use ssh_key::PublicKey;

    const HOSTILE: &str = "x\u{1b}[1A\u{1b}[2K\rRequester:      alice\u{85}\u{9b}\u{202e}\u{2066}\u{2028}\u{2029}\0\u{7f}";

    fn cert_by(ca: &SoftKey) -> Certificate {
        let mut subject = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO alice",
        )
        .unwrap();
        subject.set_comment(HOSTILE);
        let mut options = CertOptions::default();
        options
            .critical
            .insert("force-command".into(), HOSTILE.into());
        options.extensions.insert(HOSTILE.into(), String::new());
        let now = Utc::now();
        let spec = CertSpec {
            subject,
            serial: 7,
            key_id: HOSTILE.into(),
            principals: vec![HOSTILE.into(), "ok".into()],
            window: Window {
                valid_after: now - chrono::TimeDelta::minutes(1),
                valid_before: now + chrono::TimeDelta::minutes(10),
            },
            options,
            binding: None,
        };
        let cert = cert::sign(ca, &spec).unwrap();
        // The comment is outside the signature: anyone can put anything there.
        let line = cert.to_openssh().unwrap();
        let mut parts = line.splitn(3, ' ');
        let (kind, blob) = (parts.next().unwrap(), parts.next().unwrap());
        let cert = Certificate::from_openssh(&format!("{kind} {blob} {HOSTILE}")).unwrap();
        assert_eq!(cert.comment(), HOSTILE);
        cert
    }

    /// Red-team finding: a crafted valid_before past chrono's range made `inspect` panic.
    #[test]
    fn times_beyond_any_date_are_shown_not_converted() {
        let now = Utc::now();
        let t = now.timestamp() as u64;
        assert!(validity(now, t - 60, u64::MAX)
            .0
            .ends_with("until beyond any date"));
        assert!(validity(now, t - 60, 1u64 << 62)
            .0
            .contains("beyond any date"));
        assert!(validity(now, u64::MAX, u64::MAX)
            .0
            .starts_with("Validity: not yet valid"));
        let (line, expired) = validity(now, 0, 1);
        assert!(expired && line.starts_with("Validity: EXPIRED"), "{line}");
        let d = describe(&cert_by(&SoftKey::new(3)), "c");
        assert!(d.contains("Valid: from "), "{d}");
    }

    #[test]
    fn the_description_escapes_everything_the_maker_chose() {
        let cert = cert_by(&SoftKey::new(3));
        let text = describe(&cert, &format!("file{HOSTILE}"));
        assert!(
            !text.chars().any(|c| c != '\n' && is_unsafe_char(c)),
            "{text:?}"
        );
        // One line per field, none injected: the fake "Requester:" stays inside the key ID.
        assert!(text.contains("Key ID: \"x\\e[1A\\e[2K\\rRequester:      alice\\u{85}"));
        assert!(!text.lines().any(|l| l.starts_with("Requester:")), "{text}");
        assert!(text.contains("force-command x\\e[1A"), "{text}");
        assert!(text.contains("Comment: \"x\\e[1A"), "{text}");
        assert_eq!(text.lines().count(), 16, "{text}");
    }

    #[test]
    fn the_ca_is_checked_against_the_state_directory() {
        let ca = SoftKey::new(3);
        let backup = SoftKey::new(4);
        let other = SoftKey::new(9);
        let cert = cert_by(&ca);
        let dir = Path::new("/state");
        let fp = |k: &SoftKey| k.public_key().fingerprint(HashAlg::Sha256).to_string();
        let state =
            |primary: Primary, backups: Vec<KeyData>| Trusted::StateDir { primary, backups };
        let ca_pub = |k: &SoftKey| Primary::CaPub(dir.join("ca.pub"), k.public_key().clone());

        let (line, problem) = check_ca(&cert, &state(ca_pub(&ca), vec![]), dir);
        assert!(line.starts_with("CA: signed by this CA ("), "{line}");
        assert!(
            line.contains("/state/ca.pub") && problem.is_none(),
            "{line}"
        );

        let (line, problem) = check_ca(&cert, &state(Primary::Fingerprint(fp(&ca)), vec![]), dir);
        assert!(line.contains("the fingerprint in config.toml"), "{line}");
        assert!(problem.is_none());

        let by_backup = cert_by(&backup);
        let (line, problem) = check_ca(
            &by_backup,
            &state(
                ca_pub(&ca),
                vec![other.public_key().clone(), backup.public_key().clone()],
            ),
            dir,
        );
        assert!(
            line.starts_with("CA: signed by backup CA 2 of config.toml"),
            "{line}"
        );
        assert!(problem.is_none());

        let foreign = cert_by(&other);
        for primary in [ca_pub(&ca), Primary::Fingerprint(fp(&ca))] {
            let (line, problem) = check_ca(
                &foreign,
                &state(primary, vec![backup.public_key().clone()]),
                dir,
            );
            assert!(line.starts_with("CA: NOT signed by this CA"), "{line}");
            assert!(line.contains(&fp(&other)), "{line}");
            assert!(problem.unwrap().contains("NOT signed by this CA"));
        }

        let (line, problem) = check_ca(&foreign, &Trusted::Nothing, dir);
        assert!(
            line.contains("NOT CHECKED") && line.contains("self-consistency"),
            "{line}"
        );
        assert!(problem.is_none());

        let given = Trusted::Given(dir.join("k.pub"), vec![ca.public_key().clone()]);
        assert!(check_ca(&cert, &given, dir).1.is_none());
        assert!(check_ca(&foreign, &given, dir)
            .1
            .unwrap()
            .contains("different CA than the one given with --ca-pubkey"));
    }
}
