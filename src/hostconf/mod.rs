//! What a host image needs to trust the CA (and its backups), generated from public keys alone:
//!
//! - `sshd_config.d/breakglass-ca.conf`: one `Match User` block per emergency account
//!   ([`snippet`]);
//! - `breakglass-ca.pub`: the CA bundle for `TrustedUserCAKeys`, this CA first, without the CA
//!   keys the ledger revokes (named in comment lines);
//! - `breakglass-ca-principals/<user>`: the principals a certificate must carry;
//! - `breakglass-ca.krl`: the KRL for `RevokedKeys`, binary, built from the ledger (empty but
//!   valid when nothing is revoked);
//! - `install.sh`: a self-contained POSIX script that installs those files (idempotently; the
//!   KRL atomically and never an older version), checks them with `sshd -t` and reloads sshd,
//!   or with `--krl FILE` installs a newer KRL alone ([`install`], from the template
//!   `install.sh.in`);
//! - `cloud-init.yaml`: the same files as a `#cloud-config` fragment ([`cloud_init`]);
//! - with the alarm (`--alert-command`, `--alert-syslog`, on by default), `breakglass-ca-alert`:
//!   the hook sshd runs as the accounts' `AuthorizedPrincipalsCommand` ([`alert`]).
//!
//! Every file is generated from the accounts, principals, ssh directory, CA lines and the KRL
//! only, so the same inputs give byte-identical output (reproducible images). The command
//! (`cmd::host_config`) checks its arguments, builds a [`HostConfig`] and writes
//! [`HostConfig::output_files`] with [`write_tree`].

use std::path::Path;

use crate::error::{Error, Result};
use ssh_key::public::KeyData;

use crate::export::CaLine;
use crate::fsx;
use crate::krl::Krl;
use crate::text;

pub use alert::{Alert, DEFAULT_TIMEOUT_SECS as DEFAULT_ALERT_TIMEOUT_SECS};

mod alert;
mod cloud_init;
mod install;
mod snippet;
mod template;

/// The snippet's name inside `<ssh-dir>/sshd_config.d/`.
pub const SNIPPET: &str = "sshd_config.d/breakglass-ca.conf";
/// The CA bundle's name inside `<ssh-dir>`.
pub const BUNDLE: &str = "breakglass-ca.pub";
/// The principals directory inside `<ssh-dir>`.
pub const PRINCIPALS_DIR: &str = "breakglass-ca-principals";
/// The KRL's name inside `<ssh-dir>` (the snippet's `RevokedKeys`).
pub const KRL_FILE: &str = "breakglass-ca.krl";
/// The alarm hook's name inside `<ssh-dir>`.
pub const ALERT_HOOK: &str = "breakglass-ca-alert";
/// The snippet's `AuthorizedPrincipalsFile` with the alarm, inside `<ssh-dir>`: a file that
/// must not exist (see [`alert::match_lines`]).
pub const NO_PRINCIPALS_FILE: &str = "breakglass-ca-principals/.none";
/// `install.sh` inside `--out`.
pub const INSTALL_SH: &str = "install.sh";
/// `cloud-init.yaml` inside `--out`.
pub const CLOUD_INIT: &str = "cloud-init.yaml";

/// The heredoc delimiter of `install.sh`; no generated line can equal it.
const EOF_MARK: &str = "BREAKGLASS_CA_EOF";

/// One file of the output: its path relative to `--out` (and, for host files, to the ssh
/// directory), content and mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutFile {
    pub path: String,
    pub content: Content,
    pub mode: u32,
}

/// What an output file holds: text (whole lines), or bytes (the KRL, which install.sh and
/// cloud-init.yaml carry in base64).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Text(String),
    Bytes(Vec<u8>),
}

impl Content {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Content::Text(t) => t.as_bytes(),
            Content::Bytes(b) => b,
        }
    }

    /// The text, or `None` for bytes.
    pub fn text(&self) -> Option<&str> {
        match self {
            Content::Text(t) => Some(t),
            Content::Bytes(_) => None,
        }
    }
}

/// What the host needs, ready to render. The callers check the names: accounts and principals
/// are plain names, `ssh_dir` an absolute path of plain characters (they go unquoted into
/// sshd_config, a shell script and YAML); [`check_host_file`] still refuses any output that
/// could be misread.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// The ssh directory on the host, absolute, no trailing slash.
    pub ssh_dir: String,
    /// Each account and the principals its certificates must carry.
    pub users: Vec<(String, Vec<String>)>,
    /// The CA lines, this CA first (the revoked ones too: they are named in comments).
    pub cas: Vec<CaLine>,
    /// The CA keys the ledger revokes outright: left out of the bundle, marked in comments.
    pub revoked_cas: Vec<KeyData>,
    /// The KRL for `RevokedKeys`, from the ledger.
    pub krl: Krl,
    /// The alarm hook, or `None` (no syslog, no command): the snippet as before the alarm.
    pub alert: Option<Alert>,
}

impl HostConfig {
    /// `rel` inside the ssh directory on the host.
    fn host_path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.ssh_dir)
    }

    fn is_revoked(&self, ca: &CaLine) -> bool {
        self.revoked_cas.contains(&ca.key)
    }

    /// Each CA key as the comments and the summary name it: `SHA256:… (ecdsa-p256, this CA)`,
    /// then `… (ed25519, backup CA)`; a revoked one with ` REVOKED, not trusted` after it.
    pub fn ca_descriptions(&self) -> impl Iterator<Item = String> + '_ {
        self.cas.iter().enumerate().map(|(i, ca)| {
            let role = if i == 0 { "this CA" } else { "backup CA" };
            let revoked = if self.is_revoked(ca) {
                " REVOKED, not trusted"
            } else {
                ""
            };
            format!("{} ({}, {role}){revoked}", ca.fingerprint(), ca.algorithm())
        })
    }

    /// Comment lines naming the CA keys, each starting with `prefix`.
    fn ca_comment(&self, prefix: &str) -> String {
        self.ca_descriptions()
            .map(|d| format!("{prefix}  {d}\n"))
            .collect()
    }

    /// The account names, in order.
    fn user_names(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(|(u, _)| u.as_str())
    }

    /// The CA bundle: one line per CA hosts trust, then a comment line per revoked one (see
    /// [`crate::export::bundle_text`]).
    fn bundle(&self) -> Result<String> {
        crate::export::bundle_text(&self.cas, &self.revoked_cas)
    }

    /// The files installed on the host, relative to the ssh directory, in the order they are
    /// installed: the snippet last, so sshd never reads it before the files it names exist
    /// (the alarm hook just before it).
    fn host_files(&self) -> Result<Vec<OutFile>> {
        let mut files = vec![OutFile {
            path: BUNDLE.to_string(),
            content: Content::Text(self.bundle()?),
            mode: 0o644,
        }];
        for (user, principals) in &self.users {
            files.push(OutFile {
                path: format!("{PRINCIPALS_DIR}/{user}"),
                content: Content::Text(principals.iter().map(|p| format!("{p}\n")).collect()),
                mode: 0o644,
            });
        }
        files.push(OutFile {
            path: KRL_FILE.to_string(),
            content: Content::Bytes(self.krl.encode()?),
            mode: 0o644,
        });
        if let Some(a) = &self.alert {
            files.push(OutFile {
                path: ALERT_HOOK.to_string(),
                content: Content::Text(alert::render(self, a)?),
                mode: 0o755,
            });
        }
        files.push(OutFile {
            path: SNIPPET.to_string(),
            content: Content::Text(snippet::render(self)?),
            mode: 0o644,
        });
        Ok(files)
    }

    /// Every file written under `--out`: the host files, then install.sh and cloud-init.yaml.
    pub fn output_files(&self) -> Result<Vec<OutFile>> {
        let host = self.host_files()?;
        let mut all = host.clone();
        all.push(OutFile {
            path: INSTALL_SH.into(),
            content: Content::Text(install::render(self, &host)?),
            mode: 0o755,
        });
        all.push(OutFile {
            path: CLOUD_INIT.into(),
            content: Content::Text(cloud_init::render(self, &host)?),
            mode: 0o644,
        });
        Ok(all)
    }
}

/// What install.sh (a quoted heredoc per file) and every other output rely on: a text file is
/// whole lines of text, none of them the heredoc delimiter, with no control or format character
/// but the line feeds. Host files are generated from checked names and canonical CA lines with
/// [plain](crate::export::plain_comment) comments, so this only fails if one of those checks is
/// missing; then nothing is written. Bytes (the KRL) only ever go out in base64.
fn check_host_file(f: &OutFile) -> Result<()> {
    let Content::Text(content) = &f.content else {
        return Ok(());
    };
    let bad = |why: &str| {
        Err(Error::invalid(format!(
            "the generated {} {why}; refusing to write a host configuration that could be misread",
            f.path
        ))
        .with_hint("report this as a bug in breakglass-ca, with the arguments given"))
    };
    if content.split('\n').any(|l| l == EOF_MARK) {
        return bad(&format!(
            "contains the line {EOF_MARK}, which would end its heredoc in install.sh"
        ));
    }
    if !content.is_empty() && !content.ends_with('\n') {
        return bad("does not end with a line break");
    }
    if content
        .chars()
        .any(|c| c != '\n' && text::is_unsafe_char(c))
    {
        return bad("contains a control or format character");
    }
    Ok(())
}

/// Create `out` (which must not exist) and write `files` under it. On failure, remove what
/// was created, so a half-written bundle is never left behind.
pub fn write_tree(out: &Path, files: &[OutFile]) -> Result<()> {
    fsx::create_dir(out, 0o755)?;
    let result = files.iter().try_for_each(|f| {
        let path = out.join(&f.path);
        if let Some(parent) = path.parent() {
            fsx::create_dir_all(parent, 0o755)?;
        }
        fsx::write_new(&path, f.content.as_bytes(), f.mode)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(out);
    }
    result
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ssh_key::PublicKey;

    pub(crate) const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPg1Q+KGCuYkBhj62eL5GTpL+Nz3uo3gA6grASzJ/8BuUX+8Lzh/y3w03WgmRPUQ7/PgOKfUhmp3NoHNj0geaAw= breakglass-ca";
    /// 2026-12-01T10:33:16Z, the time of KRL version 20261201103316.
    const GENERATED: u64 = 1796121196;
    const ED_BACKUP: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi vault-b";

    pub(crate) fn ca(line: &str) -> CaLine {
        CaLine {
            line: line.to_string(),
            key: PublicKey::from_openssh(line).unwrap().key_data().clone(),
        }
    }

    /// The KRL of a ledger with nothing revoked, for the CA `P256`.
    pub(crate) fn empty_krl() -> Krl {
        Krl {
            comment: "breakglass-ca CA SHA256:v101hqzXUxw5UzU4vKn3rNQN53PcG35wkt0/4sHts5Q".into(),
            ..Krl::default()
        }
    }

    pub(crate) fn sample() -> HostConfig {
        HostConfig {
            ssh_dir: "/etc/ssh".into(),
            users: vec![
                ("breakglass".into(), vec!["breakglass".into()]),
                ("root".into(), vec!["ops".into(), "root".into()]),
            ],
            cas: vec![ca(P256)],
            revoked_cas: Vec::new(),
            krl: empty_krl(),
            alert: None,
        }
    }

    /// The alarm as `--alert-command /usr/local/sbin/breakglass-page` gives it.
    pub(crate) fn sample_alert() -> Alert {
        Alert {
            syslog: true,
            command: Some("/usr/local/sbin/breakglass-page".into()),
            timeout_secs: 10,
        }
    }

    /// Every output file as `==> PATH MODE <==` and its content (bytes in base64).
    fn listing(host: &HostConfig) -> String {
        host.output_files()
            .unwrap()
            .iter()
            .map(|f| match &f.content {
                Content::Text(t) => format!("==> {} {:04o} <==\n{t}", f.path, f.mode),
                Content::Bytes(b) => format!(
                    "==> {} {:04o} base64 <==\n{}",
                    f.path,
                    f.mode,
                    install::base64_lines(b)
                ),
            })
            .collect()
    }

    /// The whole output for three fixed inputs, byte for byte (the files in `testdata/` were
    /// made by 0.2.0's host-config code, then given the KRL lines of issue 11 by hand: the
    /// `RevokedKeys` line and its comment, the KRL file, and install.sh's KRL steps; the
    /// third, with a revoked backup CA, by this code; the fourth, with the alarm hook, by this
    /// code, whose three others stayed byte for byte as they were without the alarm): a change
    /// to any generated text shows here first. `BREAKGLASS_WRITE_TESTDATA=1` writes them
    /// again, to review with git diff.
    #[test]
    fn output_is_pinned_byte_for_byte() {
        let mut two_cas = sample();
        two_cas.cas.push(ca(ED_BACKUP));
        let other = HostConfig {
            ssh_dir: "/srv/image/etc/ssh-2".into(),
            users: vec![("ops_1".into(), vec!["ops-role".into()])],
            cas: vec![ca(P256)],
            revoked_cas: Vec::new(),
            krl: empty_krl(),
            alert: None,
        };
        let mut revoked = sample();
        revoked.users.truncate(1);
        revoked.cas.push(ca(ED_BACKUP));
        revoked.revoked_cas = vec![revoked.cas[1].key.clone()];
        revoked.krl.version = 20261201103316;
        revoked.krl.generated = GENERATED;
        let mut alarm = two_cas.clone();
        alarm.alert = Some(sample_alert());
        let cases = [
            (&two_cas, "sample.out", include_str!("testdata/sample.out")),
            (&other, "other.out", include_str!("testdata/other.out")),
            (
                &revoked,
                "revoked.out",
                include_str!("testdata/revoked.out"),
            ),
            (&alarm, "alert.out", include_str!("testdata/alert.out")),
        ];
        if std::env::var_os("BREAKGLASS_WRITE_TESTDATA").is_some() {
            for (host, file, _) in &cases {
                let path = format!(
                    "{}/src/hostconf/testdata/{file}",
                    env!("CARGO_MANIFEST_DIR")
                );
                std::fs::write(path, listing(host)).unwrap();
            }
        }
        for (host, file, want) in cases {
            assert_eq!(listing(host), want, "{file}");
        }
    }

    #[test]
    fn snippet_has_one_match_block_per_user_and_nothing_after() {
        let text = snippet::render(&sample()).unwrap();
        assert_eq!(text.matches("\nMatch User ").count(), 2);
        assert!(text.contains("Match User breakglass\n    TrustedUserCAKeys /etc/ssh/breakglass-ca.pub\n    RevokedKeys /etc/ssh/breakglass-ca.krl\n    AuthorizedPrincipalsFile /etc/ssh/breakglass-ca-principals/%u\n    AuthorizedKeysFile none\n    PubkeyAuthentication yes\n"));
        let first_match = text.find("\nMatch ").unwrap();
        for line in text[first_match..].lines() {
            assert!(
                line.is_empty() || line.starts_with("Match User ") || line.starts_with("    "),
                "{line}"
            );
        }
        assert!(text.contains("(serial N)"));
        assert!(text.contains("ecdsa-p256, this CA"));
    }

    #[test]
    fn outputs_are_deterministic_and_complete() {
        let a = sample().output_files().unwrap();
        let b = sample().output_files().unwrap();
        assert_eq!(a, b);
        let paths: Vec<&str> = a.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "breakglass-ca.pub",
                "breakglass-ca-principals/breakglass",
                "breakglass-ca-principals/root",
                "breakglass-ca.krl",
                "sshd_config.d/breakglass-ca.conf",
                "install.sh",
                "cloud-init.yaml"
            ]
        );
        assert_eq!(a[2].content, Content::Text("ops\nroot\n".into()));
        assert_eq!(a[3].content, Content::Bytes(empty_krl().encode().unwrap()));
        let install = a[5].content.text().unwrap();
        assert!(install.starts_with("#!/bin/sh\n"));
        assert!(install.contains("set -eu\n"));
        assert!(install.contains("        breakglass|root) ;;\n"));
        let yaml = a[6].content.text().unwrap();
        assert!(yaml.starts_with("#cloud-config\n"));
        let doc = cloud_init::tests::yaml_body(yaml);
        let entries = doc["write_files"].as_array().unwrap();
        assert_eq!(entries.len(), 5);
        for (entry, file) in entries.iter().zip(&a[..5]) {
            assert_eq!(entry["path"], format!("/etc/ssh/{}", file.path));
            assert_eq!(entry["permissions"], "0644");
            assert_eq!(entry["owner"], "root:root");
            match &file.content {
                Content::Text(t) => {
                    assert_eq!(entry["content"], t.as_str());
                    assert_eq!(entry.as_object().unwrap().len(), 4);
                }
                Content::Bytes(bytes) => {
                    assert_eq!(entry["encoding"], "b64");
                    let b64 = entry["content"].as_str().unwrap();
                    let decoded =
                        <base64ct::Base64 as base64ct::Encoding>::decode_vec(b64).unwrap();
                    assert_eq!(&decoded, bytes);
                    assert_eq!(entry.as_object().unwrap().len(), 5);
                }
            }
        }
        assert_eq!(
            doc["runcmd"],
            serde_json::json!([["sh", "-c", cloud_init::check_and_reload(&sample())]])
        );
        assert_eq!(doc.as_object().unwrap().len(), 2);
    }

    /// The real outputs of a configuration: PyYAML reads cloud-init.yaml back as the host
    /// files, and the sample's install.sh passes `sh -n`.
    #[test]
    fn generated_cloud_init_and_install_sh_are_well_formed() {
        let files = sample().output_files().unwrap();
        let yaml = files[6].content.text().unwrap();
        if let Some(doc) = cloud_init::tests::pyyaml(yaml) {
            assert_eq!(doc, cloud_init::tests::yaml_body(yaml));
        }
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("install.sh");
        std::fs::write(&script, files[5].content.as_bytes()).unwrap();
        let o = std::process::Command::new("sh")
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// install.sh carries the KRL in base64 (decoded by coreutils' `base64 -d` to the same
    /// bytes), checks it before the first file is written, and puts it in place after the
    /// bundle and principals and before the snippet that names it; the snippet's every block
    /// has the `RevokedKeys` line.
    #[test]
    fn install_sh_carries_the_krl_and_checks_it_first() {
        let mut host = sample();
        host.krl.version = 20261201103316;
        host.krl.generated = GENERATED;
        let files = host.output_files().unwrap();
        let krl = host.krl.encode().unwrap();
        assert_eq!(files[3].content, Content::Bytes(krl.clone()));
        let script = files[5].content.text().unwrap();
        assert!(
            script.contains("\n# KRL inside: version 20261201103316.\n"),
            "{script}"
        );
        let start = script
            .find("base64 -d >\"$KRL_TMP\" <<'BREAKGLASS_CA_EOF'")
            .unwrap();
        let body_start = start + script[start..].find('\n').unwrap() + 1;
        let body_len = script[body_start..].find("BREAKGLASS_CA_EOF\n").unwrap();
        let body = &script[body_start..body_start + body_len];
        assert!(body.lines().all(|l| l.len() <= 76), "{body}");
        assert_eq!(body, install::base64_lines(&krl));
        let check = script
            .find("krl_check \"the KRL inside this script\"")
            .unwrap();
        let first_put = script.find("\nput \"$DEST/").unwrap();
        let commit = script.find("\nkrl_commit\n").unwrap();
        let principals = script
            .find("put \"$DEST/breakglass-ca-principals/root\"")
            .unwrap();
        let snippet = script
            .find("put \"$DEST/sshd_config.d/breakglass-ca.conf\"")
            .unwrap();
        assert!(
            start < check && check < first_put,
            "the KRL is checked first"
        );
        assert!(
            principals < commit && commit < snippet,
            "the KRL goes in before the snippet"
        );
        assert_eq!(script.matches("\nkrl_commit\n").count(), 1);
        let dir = tempfile::tempdir().unwrap();
        let b64 = dir.path().join("krl.b64");
        std::fs::write(&b64, body).unwrap();
        if let Ok(o) = std::process::Command::new("base64")
            .arg("-d")
            .arg(&b64)
            .output()
        {
            assert!(o.status.success());
            assert_eq!(o.stdout, krl);
        }
        let snippet = files[4].content.text().unwrap();
        assert_eq!(
            snippet
                .matches("\n    RevokedKeys /etc/ssh/breakglass-ca.krl\n")
                .count(),
            2
        );
        // The empty KRL of a ledger with nothing revoked is 44 bytes and the comment, and
        // ssh-keygen reads it.
        let empty = sample().krl.encode().unwrap();
        assert_eq!(empty.len(), 44 + sample().krl.comment.len());
        let file = dir.path().join("empty.krl");
        std::fs::write(&file, &empty).unwrap();
        if let Ok(o) = std::process::Command::new("ssh-keygen")
            .args(["-Q", "-l", "-f"])
            .arg(&file)
            .output()
        {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert!(String::from_utf8_lossy(&o.stdout).contains("# KRL version 0\n"));
        }
    }

    /// A binary file other than the KRL, or no KRL at all, is a bug: nothing is generated.
    #[test]
    fn install_sh_takes_only_the_krl_as_bytes() {
        let host = sample();
        let mut files = host.host_files().unwrap();
        files[0].content = Content::Bytes(b"x\n".to_vec());
        assert!(install::render(&host, &files).is_err());
        let files: Vec<OutFile> = host
            .host_files()
            .unwrap()
            .into_iter()
            .filter(|f| f.path != KRL_FILE)
            .collect();
        let err = install::render(&host, &files).unwrap_err();
        assert!(err.to_string().contains(KRL_FILE), "{err}");
    }

    #[test]
    fn host_files_that_could_be_misread_are_refused() {
        for content in [
            "x\nBREAKGLASS_CA_EOF\ny\n",
            "BREAKGLASS_CA_EOF\n",
            "no line break",
            "a\rb\n",
            "a\u{2028}b\n",
            "a\u{85}\n",
            "a\u{1b}[2K\n",
            "a\u{202e}\n",
        ] {
            let f = OutFile {
                path: "breakglass-ca.pub".into(),
                content: Content::Text(content.into()),
                mode: 0o644,
            };
            let err = check_host_file(&f).unwrap_err();
            assert!(err.to_string().contains("breakglass-ca.pub"), "{err}");
            if content != "no line break" {
                // A CA line that slipped past backup_line: nothing is generated.
                let mut host = sample();
                host.cas[0].line = content.trim_end_matches('\n').to_string();
                assert!(host.output_files().is_err(), "{content:?}");
            }
        }
        assert!(sample().output_files().is_ok());
    }
}
