//! `krl`: the OpenSSH KRL of the ledger's revocations (`-o FILE`), and whether a certificate
//! is revoked by a KRL (`--check CERT [-f KRL]`). Needs no token and no PIN: the CA key comes
//! from the state directory's `ca.pub` (checked against config.toml), the revocations from
//! the ledger. Exits 1 for a revoked certificate, as `ssh-keygen -Q` does.

use std::io::IsTerminal;
use std::path::Path;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use ssh_key::public::KeyData;
use ssh_key::Certificate;

use crate::cli::KrlArgs;
use crate::cmd::Globals;
use crate::config::CA_PUB_FILE;
use crate::error::{Error, Result};
use crate::fsx;
use crate::key::{self, Lines, NotOneLine};
use crate::krl::{Krl, Layout, RevokedBy, WhichKey};
use crate::ledger::Revoked;
use crate::text::{Esc, ShowPath};
use crate::ui::{self, say};

pub fn run(g: &Globals, args: &KrlArgs) -> Result<()> {
    match (&args.check, &args.output) {
        (Some(cert), _) => check(g, cert, args.krl.as_deref()),
        (None, Some(output)) => write(g, output),
        (None, None) => Err(Error::usage("krl needs -o FILE or --check CERT")
            .with_hint("e.g. 'breakglass-ca krl -o breakglass-ca.krl'")),
    }
}

/// This state directory's CA key, from `ca.pub`, matching config.toml's fingerprint.
fn this_ca(g: &Globals) -> Result<KeyData> {
    let config = g.config()?;
    let Some(file) = g.ca_pub(config.as_ref())? else {
        let path = g.state_dir.join(CA_PUB_FILE);
        let message = match &config {
            Some(_) => format!(
                "there is no {}: the KRL is made for this CA's public key",
                path.shown()
            ),
            None => format!(
                "{} holds no CA configuration and no ca.pub",
                g.state_dir.shown()
            ),
        };
        return Err(Error::config(message).with_hint(
            "point --state-dir (or BREAKGLASS_CA_STATE_DIR) at the directory where 'breakglass-ca init' was run; a lost ca.pub is the first line of the key sheet, or of a host's TrustedUserCAKeys file",
        ));
    };
    Ok(file.key)
}

/// What the ledger revokes now, its KRL (generated at `generated`) and its bytes, read back.
struct Built {
    revoked: Revoked,
    krl: Krl,
    bytes: Vec<u8>,
    layout: Layout,
}

fn build(g: &Globals, ca: &KeyData, generated: u64) -> Result<Built> {
    let revoked = crate::cmd::ledger(&g.state_dir).revoked(&key::fingerprint(ca))?;
    let krl = Krl::from_revoked(&revoked, ca, generated)?;
    let bytes = krl.encode()?;
    // Self-check: the bytes say exactly what was meant.
    let (back, layout) = Krl::decode_layout(&bytes)?;
    if back != krl {
        return Err(Error::invalid(
            "internal error: the KRL built does not read back as what the ledger revokes",
        )
        .with_hint("nothing was written; please report this bug"));
    }
    Ok(Built {
        revoked,
        krl,
        bytes,
        layout,
    })
}

/// The warning for a KRL whose version (the newest revocation's time) is later than this
/// computer's clock, before it is published: hosts that install it refuse every KRL of a lower
/// version, so every revocation recorded before that time would stay off them.
pub(crate) fn warn_if_version_ahead(revoked: &Revoked) {
    let Some(newest) = revoked.newest_after(Utc::now()) else {
        return;
    };
    say(format!(
        "WARNING: the KRL version {} is the newest revocation's time, {}, later than this computer's clock ({}): hosts that install this KRL refuse every later KRL of a lower version, so revocations made before then would never reach them. Either this clock is behind (set it to the real time), or that record's time is wrong (written with a clock that was ahead, or forged: 'breakglass-ca log show --revocation {}', 'breakglass-ca log verify', and compare with the copy kept outside this laptop) before publishing it.",
        revoked.version,
        crate::issue::rfc3339(newest),
        crate::issue::rfc3339(Utc::now()),
        revoked.records
    ));
}

fn now() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or(0)
}

fn time(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
        .map_or_else(|| format!("{t} (beyond any date)"), ui::both_times)
}

/// `krl -o FILE`.
fn write(g: &Globals, output: &Path) -> Result<()> {
    let to_stdout = output == Path::new("-");
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(Error::usage("a KRL is binary: refusing to write it to the terminal")
            .with_hint("write it to a file with -o FILE (e.g. -o breakglass-ca.krl), or send it into a pipe: breakglass-ca krl -o - | ssh HOST 'cat > breakglass-ca.krl'"));
    }
    g.check_output(output, crate::cmd::Instead::Pipe)?;
    let ca = this_ca(g)?;
    let built = build(g, &ca, now())?;
    let name = if to_stdout {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(&built.bytes)
            .and_then(|_| out.flush())
            .map_err(|e| Error::io("cannot write the KRL to stdout", e))?;
        "FILE".to_string()
    } else {
        fsx::write_output(output, &built.bytes, 0o644, &g.state_dir)?;
        output.shown()
    };
    let where_ = if to_stdout {
        "stdout".to_string()
    } else {
        name.clone()
    };
    say(format!(
        "wrote {where_}: an OpenSSH KRL, {} bytes, SHA-256 {}",
        built.bytes.len(),
        base16ct::lower::encode_string(&Sha256::digest(&built.bytes))
    ));
    say(summary(&built, &ca));
    say(format!(
        "next: see what OpenSSH reads in it:  ssh-keygen -Q -l -f {name}\n      install it on every host, as root, with the install.sh of the 'host-config' bundle:  sh install.sh --krl {name}"
    ));
    warn_if_version_ahead(&built.revoked);
    Ok(())
}

/// What a KRL from the ledger revokes, section by section.
fn summary(built: &Built, ca: &KeyData) -> String {
    let (r, l) = (&built.revoked, &built.layout);
    let mut out = match &r.newest {
        Some(t) => format!(
            "  version:   {} (the newest of {} revocation record(s), {})\n",
            built.krl.version,
            r.records,
            Esc(t)
        ),
        None => format!(
            "  version:   {} (no revocation recorded)\n",
            built.krl.version
        ),
    };
    out.push_str(&format!("  generated: {}\n", time(built.krl.generated)));
    if l.is_empty() {
        out.push_str("  revokes:   nothing (an empty KRL, valid for sshd's RevokedKeys)");
        return out;
    }
    let serials = l.serials();
    if l.certificate_sections > 0 {
        let mut parts = Vec::new();
        for (n, what) in [
            (l.serial_ranges, "range"),
            (l.serial_lists, "list"),
            (l.serial_bitmaps, "bitmap"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}(s)"));
            }
        }
        out.push_str(&format!(
            "  revokes:   certificates of this CA ({}): {serials} serial(s){}, {} key ID(s)\n",
            key::fingerprint(ca),
            if parts.is_empty() {
                String::new()
            } else {
                format!(" in {}", parts.join(", "))
            },
            l.key_ids
        ));
    }
    if l.explicit_keys > 0 {
        out.push_str(&format!(
            "  revokes:   {} key(s) outright: {} requester key(s) (every certificate for them, from any CA), {} CA key(s) (every certificate they signed)\n",
            l.explicit_keys,
            r.requester_keys.len(),
            r.ca_keys.len()
        ));
    }
    if built.krl.explicit_keys.contains(ca) {
        out.push_str("WARNING: this CA itself is revoked: hosts with this KRL refuse every certificate it signed; mint with the backup CA's token and state directory\n");
    }
    out.truncate(out.trim_end().len());
    out
}

/// The certificate in `path`: one OpenSSH certificate line, or a clear error.
fn read_certificate(path: &Path) -> Result<Certificate> {
    let text = fsx::read_text(path, fsx::limit::KEY_FILE, "certificate")?;
    let name = path.shown();
    let hint = "give the certificate file (NAME-cert.pub, one line starting ecdsa-sha2-…-cert-v01@openssh.com, ssh-ed25519-cert-v01@openssh.com, …)";
    let line = match key::one_line(&text, Lines::Commented) {
        Ok(line) => line,
        Err(NotOneLine::PrivateKey) => {
            return Err(Error::refused(format!(
                "{name} holds a PRIVATE key, not a certificate"
            ))
            .with_hint("give the certificate (NAME-cert.pub); a private key never leaves its owner, and one that was sent around must be replaced"))
        }
        Err(NotOneLine::Empty) => {
            return Err(Error::invalid(format!("{name} holds no certificate")).with_hint(hint))
        }
        Err(NotOneLine::Several(n)) => {
            return Err(Error::invalid(format!(
                "{name} holds {n} lines; give one certificate at a time"
            ))
            .with_hint(hint))
        }
    };
    if !key::is_certificate(line) {
        let what = match key::parse_line(line) {
            Ok(_) => format!(
                "{name} holds a plain public key ({}), not a certificate",
                Esc(key::key_type(line))
            ),
            Err(_) => format!("{name} is not an OpenSSH certificate"),
        };
        return Err(Error::invalid(what).with_hint(format!(
            "{hint}; to check a plain key, use ssh-keygen -Q -f KRL KEY.pub"
        )));
    }
    Certificate::from_openssh(line)
        .map_err(|e| Error::ssh(format!("{name} is not a readable OpenSSH certificate"), e))
}

/// `krl --check CERT [-f KRL]`.
fn check(g: &Globals, cert_path: &Path, krl_path: Option<&Path>) -> Result<()> {
    let cert = read_certificate(cert_path)?;
    let (krl, against, this) = match krl_path {
        Some(path) => {
            let bytes = fsx::read_file_limited(path, fsx::limit::KRL, "KRL")?.ok_or_else(|| {
                Error::file("read the KRL", path, std::io::ErrorKind::NotFound.into())
            })?;
            let krl = Krl::decode(&bytes).map_err(|e| {
                e.about(&path.shown()).with_hint(
                    "give the KRL file itself (binary, starting with SSHKRL), as 'breakglass-ca krl -o' or 'ssh-keygen -k' writes it; 'ssh-keygen -Q -l -f FILE' shows what OpenSSH reads in it",
                )
            })?;
            let generated = i64::try_from(krl.generated)
                .ok()
                .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
                .map_or_else(
                    || krl.generated.to_string(),
                    |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                );
            let against = format!(
                "the KRL {} (version {}, generated {generated})",
                path.shown(),
                krl.version,
            );
            (krl, against, None)
        }
        None => {
            let ca = this_ca(g)?;
            let built = build(g, &ca, now())?;
            let against = format!(
                "the KRL this ledger gives now (version {}, {} revocation record(s))",
                built.krl.version, built.revoked.records
            );
            (built.krl, against, Some(ca))
        }
    };
    let name = cert_path.shown();
    let result = krl.check(&cert)?;
    let signer = key::fingerprint(cert.signature_key());
    match &result {
        None => ui::print(format!("{name}: ok"))?,
        Some(by) => ui::print(format!("{name}: REVOKED by {by}"))?,
    }
    say(format!(
        "checked serial {}, key ID \"{}\", its key and its CA {signer} against {against}",
        cert.serial(),
        Esc(cert.key_id())
    ));
    if let Some(ca) = this.filter(|ca| ca != cert.signature_key()) {
        say(format!(
            "note: it was signed by {signer}, not by this CA ({}): only a revocation of its key or of its CA's key applies to it",
            key::fingerprint(&ca)
        ));
    }
    match result {
        None => {
            say("note: not revoked; 'breakglass-ca inspect CERT' checks its signature, CA and validity");
            Ok(())
        }
        Some(by) => {
            let next = match by {
                RevokedBy::ExplicitKey(WhichKey::SigningCa)
                | RevokedBy::Sha1(WhichKey::SigningCa)
                | RevokedBy::Sha256(WhichKey::SigningCa) => {
                    "its CA is revoked: if access is still needed, mint with the backup CA's token and state directory"
                }
                RevokedBy::ExplicitKey(_) | RevokedBy::Sha1(_) | RevokedBy::Sha256(_) => {
                    "the requester's key is revoked: if access is still needed, the requester makes a new key pair and a certificate is minted for it"
                }
                RevokedBy::KeyId { .. } | RevokedBy::Serial { .. } => {
                    "if access is still needed, mint a new certificate"
                }
            };
            Err(
                Error::invalid(format!("the certificate is revoked: {by}")).with_hint(format!(
                    "sshd with this KRL in RevokedKeys refuses it; {next}"
                )),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::soft::SoftKey;
    use crate::backend::CaKey;

    fn built(revoked: Revoked, ca: &KeyData) -> Built {
        let krl = Krl::from_revoked(&revoked, ca, 1_790_000_000).unwrap();
        let bytes = krl.encode().unwrap();
        let (_, layout) = Krl::decode_layout(&bytes).unwrap();
        Built {
            revoked,
            krl,
            bytes,
            layout,
        }
    }

    #[test]
    fn the_summary_counts_each_section() {
        let ca = SoftKey::new(3).public_key().clone();
        let backup = SoftKey::new(4).public_key().clone();
        let fp = key::fingerprint(&ca);
        let line = |k: &KeyData| key::openssh_line(k).unwrap();
        let revoked = Revoked {
            ca_fingerprint: fp.clone(),
            serials: vec![(1, 1), (3, 3), (10, 200)],
            key_ids: vec!["alice#1:x".into(), "bob\u{1b}[2J".into()],
            requester_keys: vec![
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO"
                    .into(),
            ],
            ca_keys: vec![line(&backup)],
            records: 5,
            version: 20261201103316,
            newest: Some("2026-12-01T10:33:16Z".into()),
        };
        let text = summary(&built(revoked.clone(), &ca), &ca);
        assert!(text.contains("version:   20261201103316 (the newest of 5 revocation record(s), 2026-12-01T10:33:16Z)"), "{text}");
        assert!(text.contains("generated: 2026-09-21 "), "{text}");
        assert!(
            text.contains(&format!("certificates of this CA ({fp}): 193 serial(s) in 1 range(s), 1 bitmap(s), 2 key ID(s)")),
            "{text}"
        );
        assert!(
            text.contains("2 key(s) outright: 1 requester key(s)"),
            "{text}"
        );
        assert!(!text.contains("WARNING"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        // This CA revoked: said plainly.
        let whole = Revoked {
            ca_keys: vec![line(&ca)],
            ..revoked
        };
        let text = summary(&built(whole, &ca), &ca);
        assert!(
            text.contains("WARNING: this CA itself is revoked"),
            "{text}"
        );
        // Nothing.
        let none = Revoked {
            ca_fingerprint: fp,
            ..Revoked::default()
        };
        let text = summary(&built(none, &ca), &ca);
        assert!(
            text.contains("version:   0 (no revocation recorded)"),
            "{text}"
        );
        assert!(
            text.ends_with("revokes:   nothing (an empty KRL, valid for sshd's RevokedKeys)"),
            "{text}"
        );
    }
}
