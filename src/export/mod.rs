//! The CA public key in the forms hosts and people need: the OpenSSH line for
//! `TrustedUserCAKeys`, its SHA256 fingerprint, JSON, the bundle with the backup CAs, QR codes
//! (`qr`) and the printable key sheet (`sheet`).

use std::path::Path;

use ssh_key::public::KeyData;
use ssh_key::PublicKey;

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::key::{self, Algorithm};
use crate::text;
use crate::text::ShowPath;

pub mod qr;
pub mod sheet;

/// The CA line, its comment and fingerprint are key facts, kept in [`crate::key`]; named here
/// too for the outputs built from them.
use crate::key::{fingerprint, openssh_line, CA_COMMENT};
/// Comment given to a backup CA line whose own comment is empty, this CA's default, or not
/// [plain](plain_comment).
pub const BACKUP_COMMENT: &str = "breakglass-ca-backup";
/// Longest comment a backup CA line keeps.
pub const MAX_COMMENT_LEN: usize = 64;
/// What a kept comment may hold, for messages.
pub const COMMENT_RULE: &str =
    "a comment may hold letters, digits, spaces and . _ - @ : + = , / only, at most 64 bytes";

/// The comment of a CA line as it may appear in generated files (the CA bundle, install.sh,
/// cloud-init.yaml, the key sheet, `pubkey --bundle`), or `None` if it must be replaced:
/// 1 to [`MAX_COMMENT_LEN`] bytes of ASCII letters, digits, spaces and `. _ - @ : + = , /`,
/// after trimming spaces. Nothing else: no control, format or non-ASCII character (a CR,
/// U+0085, U+2028 or U+2029 is a line break to YAML, an ESC redraws a terminal), no `#` (a
/// comment to YAML, shells and sshd), no quotes, `$`, backslash or other shell syntax.
pub fn plain_comment(comment: &str) -> Option<&str> {
    let c = comment.trim_matches(' ');
    let allowed = |ch: char| ch.is_ascii_alphanumeric() || " ._-@:+=,/".contains(ch);
    (!c.is_empty() && c.len() <= MAX_COMMENT_LEN && c.chars().all(allowed)).then_some(c)
}

/// A backup CA's line as every generated output gets it: the key re-encoded canonically, with
/// its comment kept if it is [plain](plain_comment), [`BACKUP_COMMENT`] if it is empty or
/// [`CA_COMMENT`]. A comment that is not plain is replaced by [`BACKUP_COMMENT`] as well and
/// returned as the second value, so the caller can tell the custodian. Every path that puts a
/// backup CA line into an output goes through here: `add-backup-ca` (before the line is
/// stored) and [`backup_cas`] (for lines read back from config.toml, which may have been
/// edited by hand or restored from elsewhere).
pub fn backup_line(key: &PublicKey) -> Result<(String, Option<String>)> {
    let original = key.comment();
    let (comment, replaced) = match plain_comment(original) {
        Some(c) if c != CA_COMMENT => (c, None),
        Some(_) => (BACKUP_COMMENT, None),
        None if original.trim().is_empty() => (BACKUP_COMMENT, None),
        None => (BACKUP_COMMENT, Some(original.to_string())),
    };
    let line = PublicKey::new(key.key_data().clone(), comment)
        .to_openssh()
        .map_err(|e| Error::ssh("cannot encode the backup CA public key", e))?;
    Ok((line, replaced))
}

/// How a replaced comment is named to the custodian: escaped, and cut to 80 characters.
pub fn shown_comment(comment: &str) -> String {
    let shown = text::escape(comment);
    let mut chars = shown.chars();
    let head: String = chars.by_ref().take(80).collect();
    if chars.next().is_some() {
        format!("\"{head}\"...")
    } else {
        format!("\"{head}\"")
    }
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
    json_text(&value)
}

/// JSON output of `pubkey`: ASCII only (see [`text::json_ascii`]), so a URI or comment cannot
/// act on a terminal or a YAML reader.
pub fn json_text(value: &serde_json::Value) -> Result<String> {
    text::json_ascii(value, false).map_err(|e| Error::json("cannot build the JSON output", e))
}

/// One CA line of a bundle: the OpenSSH line exactly as hosts get it (and as its QR code holds
/// it), and the key it encodes. What the CA bundle, the key sheet, `pubkey --bundle` and
/// `host-config` list, primary first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaLine {
    pub line: String,
    pub key: KeyData,
}

impl CaLine {
    /// `SHA256:…` of the key.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.key)
    }

    /// `ecdsa-p256`…, or `unknown` for a key no breakglass CA can have.
    pub fn algorithm(&self) -> &'static str {
        Algorithm::of_key(&self.key).map_or("unknown", Algorithm::name)
    }
}

/// The backup CAs of config.toml (none without a configuration), each as its canonical OpenSSH
/// line (see [`backup_line`]: a comment that is not plain is replaced, and `note` is told, for
/// `cmd/` to show) and key. A line that does not parse is a configuration error naming the
/// entry.
pub fn backup_cas(
    config: Option<&Config>,
    state_dir: &Path,
    note: &mut dyn FnMut(String),
) -> Result<Vec<CaLine>> {
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
                    file.shown()
                ))
                .with_hint("fix or remove that entry; add backup CAs with 'breakglass-ca add-backup-ca FILE'")
            };
            let key = key::parse_line(line).map_err(|e| bad(e.to_string()))?;
            if let Some(why) = key::sshd_cannot_read(&key) {
                return Err(bad(format!("sshd cannot read its key ({why})")));
            }
            let (text, replaced) = backup_line(&key)?;
            if let Some(comment) = replaced {
                note(format!(
                    "note: backup_ca_pubkeys entry {} in {} has a comment that is not plain text ({}); it is used as '{BACKUP_COMMENT}' ({COMMENT_RULE})",
                    i + 1,
                    file.shown(),
                    shown_comment(&comment)
                ));
            }
            Ok(CaLine {
                line: text,
                key: key.key_data().clone(),
            })
        })
        .collect()
}

/// Every CA line for one `TrustedUserCAKeys` file: this CA first, then the backups, without
/// repeats.
pub fn bundle_lines(
    primary: &KeyData,
    config: Option<&Config>,
    state_dir: &Path,
    note: &mut dyn FnMut(String),
) -> Result<Vec<CaLine>> {
    let mut lines = vec![CaLine {
        line: openssh_line(primary)?,
        key: primary.clone(),
    }];
    for backup in backup_cas(config, state_dir, note)? {
        if &backup.key != primary && !lines.iter().any(|l| l.line == backup.line) {
            lines.push(backup);
        }
    }
    Ok(lines)
}

/// The CA keys a ledger revokes outright (`ledger::Revoked::ca_keys`, OpenSSH public key
/// lines), as keys: what the bundles, the key sheet and `host-config` leave out. A line that
/// does not parse is a ledger error (the ledger helper writes them canonically).
pub fn revoked_ca_keys(lines: &[String]) -> Result<Vec<KeyData>> {
    lines
        .iter()
        .map(|line| {
            key::parse_line(line)
                .map(|k| k.key_data().clone())
                .map_err(|e| {
                    Error::ledger(format!(
                        "a revoked CA key in the ledger is not an OpenSSH public key line: {e}"
                    ))
                    .with_hint("check the ledger with 'breakglass-ca log verify'")
                })
        })
        .collect()
}

/// How the bundle and its comments name `lines[i]`: this CA first, then the backups.
pub fn role(i: usize) -> &'static str {
    if i == 0 {
        "this CA"
    } else {
        "backup CA"
    }
}

/// `lines` (this CA first) that are not in `revoked`, with their index in `lines`. Refuses
/// when every one is revoked: hosts would trust no CA at all.
pub fn trusted<'a>(lines: &'a [CaLine], revoked: &[KeyData]) -> Result<Vec<(usize, &'a CaLine)>> {
    let kept: Vec<(usize, &CaLine)> = lines
        .iter()
        .enumerate()
        .filter(|(_, ca)| !revoked.contains(&ca.key))
        .collect();
    if kept.is_empty() {
        let fps: Vec<String> = lines.iter().map(CaLine::fingerprint).collect();
        return Err(Error::refused(format!(
            "every CA key of this bundle is revoked in the ledger ({}): hosts would trust no CA",
            fps.join(", ")
        ))
        .with_hint(
            "create a backup CA on another token and add it first ('breakglass-ca add-backup-ca FILE'), \
             or run this in the backup CA's own state directory (--state-dir STATE2)",
        ));
    }
    Ok(kept)
}

/// The comment line naming a revoked CA in a bundle: `# REVOKED, do not trust: SHA256:… (…)`.
pub fn revoked_comment(i: usize, ca: &CaLine) -> String {
    format!(
        "# REVOKED, do not trust: {} ({}, {})",
        ca.fingerprint(),
        ca.algorithm(),
        role(i)
    )
}

/// A `TrustedUserCAKeys` file: one line per CA of `lines` (this CA first) that is not in
/// `revoked`, then a comment line per revoked one (sshd and ssh-keygen skip `#` lines), so a
/// reader of the file sees which keys were left out and why. Refuses when every CA is revoked.
pub fn bundle_text(lines: &[CaLine], revoked: &[KeyData]) -> Result<String> {
    let mut text: String = trusted(lines, revoked)?
        .iter()
        .map(|(_, ca)| format!("{}\n", ca.line))
        .collect();
    for (i, ca) in lines.iter().enumerate() {
        if revoked.contains(&ca.key) {
            text.push_str(&revoked_comment(i, ca));
            text.push('\n');
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi";
    const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPg1Q+KGCuYkBhj62eL5GTpL+Nz3uo3gA6grASzJ/8BuUX+8Lzh/y3w03WgmRPUQ7/PgOKfUhmp3NoHNj0geaAw=";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClkAV2VerYjibbKIeVQBgYmDr4K1uI9+YR6l5i1s6yV";

    fn ca(line: &str, comment: &str) -> CaLine {
        let key = PublicKey::from_openssh(line).unwrap().key_data().clone();
        CaLine {
            line: format!("{line} {comment}"),
            key,
        }
    }

    /// The ledger's revoked CA keys as a hand-made set: a revoked CA is left out of the
    /// bundle and named in a comment line with its fingerprint; the others keep their order.
    #[test]
    fn revoked_cas_are_left_out_of_the_bundle_and_named() {
        let lines = vec![
            ca(P256, "breakglass-ca"),
            ca(ED, "vault-b"),
            ca(ED2, "vault-c"),
        ];
        let none = bundle_text(&lines, &[]).unwrap();
        assert_eq!(
            none,
            format!("{P256} breakglass-ca\n{ED} vault-b\n{ED2} vault-c\n")
        );
        // The ledger's lines carry no comment; a foreign revoked key changes nothing.
        let stranger =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHWQ8CBT5T2qFqsY8Ko2cxYpy1JS8Kj0L0LlLq+pG7VK";
        let revoked = revoked_ca_keys(&[ED.to_string(), stranger.to_string()]).unwrap();
        let text = bundle_text(&lines, &revoked).unwrap();
        assert_eq!(
            text,
            format!(
                "{P256} breakglass-ca\n{ED2} vault-c\n# REVOKED, do not trust: {} (ed25519, backup CA)\n",
                lines[1].fingerprint()
            )
        );
        let kept: Vec<usize> = trusted(&lines, &revoked)
            .unwrap()
            .iter()
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(kept, [0, 2]);
        // This CA revoked: the backups remain, this CA is named.
        let revoked = revoked_ca_keys(&[P256.to_string()]).unwrap();
        let text = bundle_text(&lines, &revoked).unwrap();
        assert!(
            text.starts_with(&format!("{ED} vault-b\n{ED2} vault-c\n# REVOKED")),
            "{text}"
        );
        assert!(text.ends_with(&format!(
            "{} (ecdsa-p256, this CA)\n",
            lines[0].fingerprint()
        )));
        // OpenSSH reads the bundle with its comment lines as the two trusted keys.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bundle.pub");
        std::fs::write(&file, &text).unwrap();
        if let Ok(o) = std::process::Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(&file)
            .output()
        {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let listed = String::from_utf8_lossy(&o.stdout);
            assert_eq!(listed.lines().count(), 2, "{listed}");
            assert!(!listed.contains(&lines[0].fingerprint()), "{listed}");
        }
    }

    #[test]
    fn every_ca_revoked_is_refused_with_a_hint() {
        let lines = vec![ca(P256, "breakglass-ca"), ca(ED, "vault-b")];
        let revoked = revoked_ca_keys(&[ED.to_string(), P256.to_string()]).unwrap();
        for err in [
            bundle_text(&lines, &revoked).unwrap_err(),
            trusted(&lines, &revoked).unwrap_err(),
        ] {
            let text = err.to_string();
            assert!(
                text.contains("every CA key of this bundle is revoked"),
                "{text}"
            );
            assert!(
                text.contains(&lines[0].fingerprint()) && text.contains(&lines[1].fingerprint())
            );
            assert!(err.hint().unwrap().contains("add-backup-ca"), "{err:?}");
            assert_eq!(err.exit_code(), 1);
        }
        let only = vec![ca(P256, "breakglass-ca")];
        assert!(bundle_text(&only, &revoked_ca_keys(&[P256.into()]).unwrap()).is_err());
        assert!(revoked_ca_keys(&["ssh-ed25519 AAAA!!".into()]).is_err());
    }

    fn with_comment(comment: &str) -> PublicKey {
        let mut key = PublicKey::from_openssh(ED).unwrap();
        key.set_comment(comment);
        key
    }

    #[test]
    fn plain_comments_are_kept() {
        for c in [
            "vault-b",
            "backup CA 2, safe 3",
            "ops@example.org",
            "a=b+c/d:e.f_g",
            &"x".repeat(MAX_COMMENT_LEN),
        ] {
            assert_eq!(plain_comment(c), Some(c), "{c}");
            let (line, replaced) = backup_line(&with_comment(c)).unwrap();
            assert_eq!(line, format!("{ED} {c}"));
            assert_eq!(replaced, None);
        }
        assert_eq!(plain_comment("  vault b  "), Some("vault b"));
        for default in ["", "   ", CA_COMMENT] {
            let (line, replaced) = backup_line(&with_comment(default)).unwrap();
            assert_eq!(line, format!("{ED} {BACKUP_COMMENT}"), "{default:?}");
            assert_eq!(replaced, None);
        }
    }

    #[test]
    fn every_other_comment_is_replaced_and_reported() {
        for c in [
            "x\rwrite_files:",
            "x\nwrite_files:\n  - path: /etc/cron.d/pwn",
            "x\u{85}- path: /root/.ssh/authorized_keys",
            "x\u{2028}y",
            "x\u{2029}y",
            "x\u{1b}[2K",
            "x\u{9b}31m",
            "x\u{202e}y",
            "x\u{200b}y",
            "x\u{feff}",
            "x\ty",
            "x\0y",
            "x\u{7f}",
            "BREAKGLASS_CA_EOF\n",
            "vault # not a comment",
            "#cloud-config",
            "it's",
            "a\"b",
            "$(reboot)",
            "`id`",
            "a\\b",
            "a;b",
            "a|b",
            "<b>",
            "a&b",
            "zo\u{eb}",
            "\u{1f600}",
            &"x".repeat(MAX_COMMENT_LEN + 1),
        ] {
            assert_eq!(plain_comment(c), None, "{c:?}");
            let (line, replaced) = backup_line(&with_comment(c)).unwrap();
            assert_eq!(line, format!("{ED} {BACKUP_COMMENT}"), "{c:?}");
            assert_eq!(replaced.as_deref(), Some(c));
            let shown = shown_comment(c);
            assert!(text::is_safe(&shown), "{shown:?}");
        }
        assert!(shown_comment(&"y".repeat(200)).ends_with("\"..."));
    }

    #[test]
    fn backup_cas_from_config_go_through_backup_line() {
        let hostile = [
            format!("{ED} x\rwrite_files:\n- path: /etc/cron.d/pwn"),
            format!("  {ED} x\u{2028}y  "),
            format!("{ED} vault-b"),
        ];
        let config = Config {
            backup_ca_pubkeys: hostile.to_vec(),
            ..Config::for_tests("SHA256:x")
        };
        let got = backup_cas(Some(&config), Path::new("/state"), &mut |_| {}).unwrap();
        let lines: Vec<&str> = got.iter().map(|c| c.line.as_str()).collect();
        let want_replaced = format!("{ED} {BACKUP_COMMENT}");
        let want_kept = format!("{ED} vault-b");
        assert_eq!(lines, [&want_replaced, &want_replaced, &want_kept]);
        let primary = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClkAV2VerYjibbKIeVQBgYmDr4K1uI9+YR6l5i1s6yV x",
        )
        .unwrap();
        // The same key three times: the two lines that came out the same are listed once.
        let bundle = bundle_lines(
            primary.key_data(),
            Some(&config),
            Path::new("/state"),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(bundle.len(), 3, "{bundle:?}");
        assert!(bundle
            .iter()
            .all(|l| l.line.bytes().all(|b| (0x20..0x7f).contains(&b))));
    }

    /// Red team: a revoked CA's key in config.toml in a form sshd cannot read (its ECDSA point
    /// compressed) is another key to the bundle code, so the bundle and the sheet listed it as
    /// a trusted backup CA; and as a real backup it would never have worked. A configuration
    /// error now, naming the entry.
    #[test]
    fn a_backup_ca_line_sshd_cannot_read_is_refused() {
        let compressed = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAAAhAvg1Q+KGCuYkBhj62eL5GTpL+Nz3uo3gA6grASzJ/8Bu vault-b";
        let config = Config {
            backup_ca_pubkeys: vec![format!("{ED} vault-a"), compressed.into()],
            ..Config::for_tests("SHA256:x")
        };
        let err = backup_cas(Some(&config), Path::new("/state"), &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("backup_ca_pubkeys entry 2 in /state/config.toml")
                && err.contains("compressed point"),
            "{err}"
        );
    }
}
