//! What a host image needs to trust the CA (and its backups), generated from public keys alone:
//!
//! - `sshd_config.d/breakglass-ca.conf`: one `Match User` block per emergency account
//!   ([`snippet`]);
//! - `breakglass-ca.pub`: the CA bundle for `TrustedUserCAKeys`, this CA first;
//! - `breakglass-ca-principals/<user>`: the principals a certificate must carry;
//! - `install.sh`: a self-contained POSIX script that installs those files (idempotently),
//!   checks them with `sshd -t` and reloads sshd ([`install`], from the template
//!   `install.sh.in`);
//! - `cloud-init.yaml`: the same files as a `#cloud-config` fragment ([`cloud_init`]).
//!
//! Every text is generated from the accounts, principals, ssh directory and CA lines only, so
//! the same inputs give byte-identical output (reproducible images). The command
//! (`cmd::host_config`) checks its arguments, builds a [`HostConfig`] and writes
//! [`HostConfig::output_files`] with [`write_tree`].

use std::path::Path;

use crate::error::{Error, Result};
use crate::export::CaLine;
use crate::fsx;
use crate::text;

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
    pub content: String,
    pub mode: u32,
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
    /// The CA lines, this CA first.
    pub cas: Vec<CaLine>,
}

impl HostConfig {
    /// `rel` inside the ssh directory on the host.
    fn host_path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.ssh_dir)
    }

    /// Each CA key of the bundle as the comments and the summary name it:
    /// `SHA256:… (ecdsa-p256, this CA)`, then `… (ed25519, backup CA)`.
    pub fn ca_descriptions(&self) -> impl Iterator<Item = String> + '_ {
        self.cas.iter().enumerate().map(|(i, ca)| {
            let role = if i == 0 { "this CA" } else { "backup CA" };
            format!("{} ({}, {role})", ca.fingerprint(), ca.algorithm())
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

    /// The CA bundle: one line per CA.
    fn bundle(&self) -> String {
        self.cas.iter().map(|ca| format!("{}\n", ca.line)).collect()
    }

    /// The files installed on the host, relative to the ssh directory, in the order they are
    /// installed: the snippet last, so sshd never reads it before the files it names exist.
    fn host_files(&self) -> Result<Vec<OutFile>> {
        let mut files = vec![OutFile {
            path: BUNDLE.to_string(),
            content: self.bundle(),
            mode: 0o644,
        }];
        for (user, principals) in &self.users {
            files.push(OutFile {
                path: format!("{PRINCIPALS_DIR}/{user}"),
                content: principals.iter().map(|p| format!("{p}\n")).collect(),
                mode: 0o644,
            });
        }
        files.push(OutFile {
            path: SNIPPET.to_string(),
            content: snippet::render(self)?,
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
            content: install::render(self, &host)?,
            mode: 0o755,
        });
        all.push(OutFile {
            path: CLOUD_INIT.into(),
            content: cloud_init::render(self, &host)?,
            mode: 0o644,
        });
        Ok(all)
    }
}

/// What install.sh (a quoted heredoc per file) and every other output rely on: the content is
/// whole lines of text, none of them the heredoc delimiter, with no control or format character
/// but the line feeds. Host files are generated from checked names and canonical CA lines with
/// [plain](crate::export::plain_comment) comments, so this only fails if one of those checks is
/// missing; then nothing is written.
fn check_host_file(f: &OutFile) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid(format!(
            "the generated {} {why}; refusing to write a host configuration that could be misread",
            f.path
        ))
        .with_hint("report this as a bug in breakglass-ca, with the arguments given"))
    };
    if f.content.split('\n').any(|l| l == EOF_MARK) {
        return bad(&format!(
            "contains the line {EOF_MARK}, which would end its heredoc in install.sh"
        ));
    }
    if !f.content.is_empty() && !f.content.ends_with('\n') {
        return bad("does not end with a line break");
    }
    if f.content
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
    const ED_BACKUP: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi vault-b";

    pub(crate) fn ca(line: &str) -> CaLine {
        CaLine {
            line: line.to_string(),
            key: PublicKey::from_openssh(line).unwrap().key_data().clone(),
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
        }
    }

    /// Every output file as `==> PATH MODE <==` and its content.
    fn listing(host: &HostConfig) -> String {
        host.output_files()
            .unwrap()
            .iter()
            .map(|f| format!("==> {} {:04o} <==\n{}", f.path, f.mode, f.content))
            .collect()
    }

    /// The whole output for two fixed inputs, byte for byte as 0.2.0 wrote it (the files in
    /// `testdata/` were made by 0.2.0's host-config code): a change to any generated text
    /// shows here first.
    #[test]
    fn output_is_pinned_byte_for_byte() {
        let mut two_cas = sample();
        two_cas.cas.push(ca(ED_BACKUP));
        assert_eq!(listing(&two_cas), include_str!("testdata/sample.out"));
        let other = HostConfig {
            ssh_dir: "/srv/image/etc/ssh-2".into(),
            users: vec![("ops_1".into(), vec!["ops-role".into()])],
            cas: vec![ca(P256)],
        };
        assert_eq!(listing(&other), include_str!("testdata/other.out"));
    }

    #[test]
    fn snippet_has_one_match_block_per_user_and_nothing_after() {
        let text = snippet::render(&sample()).unwrap();
        assert_eq!(text.matches("\nMatch User ").count(), 2);
        assert!(text.contains("Match User breakglass\n    TrustedUserCAKeys /etc/ssh/breakglass-ca.pub\n    AuthorizedPrincipalsFile /etc/ssh/breakglass-ca-principals/%u\n    AuthorizedKeysFile none\n    PubkeyAuthentication yes\n"));
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
                "sshd_config.d/breakglass-ca.conf",
                "install.sh",
                "cloud-init.yaml"
            ]
        );
        assert_eq!(a[2].content, "ops\nroot\n");
        let install = &a[4].content;
        assert!(install.starts_with("#!/bin/sh\n"));
        assert!(install.contains("set -eu\n"));
        assert!(install.contains("        breakglass|root) ;;\n"));
        let yaml = &a[5].content;
        assert!(yaml.starts_with("#cloud-config\n"));
        let doc = cloud_init::tests::yaml_body(yaml);
        let entries = doc["write_files"].as_array().unwrap();
        assert_eq!(entries.len(), 4);
        for (entry, file) in entries.iter().zip(&a[..4]) {
            assert_eq!(entry["path"], format!("/etc/ssh/{}", file.path));
            assert_eq!(entry["content"], file.content.as_str());
            assert_eq!(entry["permissions"], "0644");
            assert_eq!(entry["owner"], "root:root");
            assert_eq!(entry.as_object().unwrap().len(), 4);
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
        if let Some(doc) = cloud_init::tests::pyyaml(&files[5].content) {
            assert_eq!(doc, cloud_init::tests::yaml_body(&files[5].content));
        }
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("install.sh");
        std::fs::write(&script, &files[4].content).unwrap();
        let o = std::process::Command::new("sh")
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
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
                content: content.into(),
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
