//! `host-config` and `add-backup-ca`: everything a host image needs to trust the CA (and its
//! backups), from public keys alone.
//!
//! `host-config` writes, under `--out`:
//! - `sshd_config.d/breakglass-ca.conf`: one `Match User` block per emergency account;
//! - `breakglass-ca.pub`: the CA bundle for `TrustedUserCAKeys`, this CA first;
//! - `breakglass-ca-principals/<user>`: the principals a certificate must carry;
//! - `install.sh`: a self-contained POSIX script that installs those files (idempotently),
//!   checks them with `sshd -t` and reloads sshd;
//! - `cloud-init.yaml`: the same files as a `#cloud-config` fragment.
//!
//! Every text is generated from the arguments and the public keys only, so the same inputs
//! give byte-identical output (reproducible images).

use std::path::Path;

use ssh_key::public::KeyData;
use ssh_key::PublicKey;

use crate::backend::Algorithm;
use crate::cli::{AddBackupCaArgs, HostConfigArgs};
use crate::cmd::{read_input, Globals};
use crate::config::CONFIG_FILE;
use crate::error::{Error, Result};
use crate::export::{self, BACKUP_COMMENT};
use crate::fsx;
use crate::policy;
use crate::text;
use crate::ui::say;

/// The snippet's name inside `<ssh-dir>/sshd_config.d/`.
pub const SNIPPET: &str = "sshd_config.d/breakglass-ca.conf";
/// The CA bundle's name inside `<ssh-dir>`.
pub const BUNDLE: &str = "breakglass-ca.pub";
/// The principals directory inside `<ssh-dir>`.
pub const PRINCIPALS_DIR: &str = "breakglass-ca-principals";

/// Longest user name accepted (the common `useradd` limit).
const MAX_USER_LEN: usize = 32;

/// The heredoc delimiter of `install.sh`; no generated line can equal it.
const EOF_MARK: &str = "BREAKGLASS_CA_EOF";

// ---------------------------------------------------------------------------------------------
// add-backup-ca

pub fn add_backup_ca(g: &Globals, args: &AddBackupCaArgs) -> Result<()> {
    let Some(mut config) = g.config()? else {
        return Err(Error::config(format!(
            "no {CONFIG_FILE} in {}: a backup CA is added to this CA's configuration",
            g.state_dir.display()
        ))
        .with_hint("point --state-dir (or BREAKGLASS_CA_STATE_DIR) at the directory where 'breakglass-ca init' was run for the primary CA, or run init there first"));
    };
    let text = read_input(&args.file, "backup CA public key")?;
    let key = crate::key::backup_ca_key(&text, &args.file)?;
    let fp = export::fingerprint(key.key_data());
    if fp == config.fingerprint {
        return Err(Error::refused(format!(
            "{} is this CA's own key ({fp}), not a backup",
            args.file.display()
        ))
        .with_hint("give the public key of the OTHER token: run 'breakglass-ca pubkey -o backup-ca.pub' with the backup token and its own --state-dir"));
    }
    for line in &config.backup_ca_pubkeys {
        let listed = PublicKey::from_openssh(line.trim()).ok();
        if listed.as_ref().map(PublicKey::key_data) == Some(key.key_data()) {
            return Err(Error::refused(format!(
                "the backup CA {fp} is already listed in {}",
                g.state_dir.join(CONFIG_FILE).display()
            ))
            .with_hint("nothing to do; 'breakglass-ca pubkey --bundle' shows every CA line"));
        }
    }
    let algorithm = Algorithm::of_key(key.key_data()).map_or("unknown", Algorithm::name);
    let (line, replaced) = export::backup_line(&key)?;
    config.backup_ca_pubkeys.push(line);
    let path = config.save(&g.state_dir)?;
    println!("{fp}");
    if let Some(comment) = replaced {
        say(format!(
            "note: the key's comment in {} is not plain text ({}); it is stored as '{BACKUP_COMMENT}' ({})",
            args.file.display(),
            export::shown_comment(&comment),
            export::COMMENT_RULE
        ));
    }
    say(format!(
        "Added backup CA {fp} ({algorithm}) to {}.",
        path.display()
    ));
    say(format!(
        "This CA and {} backup CA(s) are now trusted together.",
        config.backup_ca_pubkeys.len()
    ));
    say("Next: run 'breakglass-ca host-config ...' again and roll the new files out to every host image,");
    say("      and reprint the vault sheet ('breakglass-ca pubkey --format sheet -o FILE'), which lists the backups too.");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// host-config

pub fn run(g: &Globals, args: &HostConfigArgs) -> Result<()> {
    let users = check_users(&args.users)?;
    let principals = if args.principals.is_empty() {
        None
    } else {
        Some(check_principals(&args.principals)?)
    };
    let ssh_dir = check_ssh_dir(&args.ssh_dir)?;
    g.check_output_dir(&args.out)?;
    if std::fs::symlink_metadata(&args.out).is_ok() {
        return Err(Error::usage(format!(
            "{} already exists; refusing to write into it",
            args.out.display()
        ))
        .with_hint(
            "give --out a new directory (an older bundle is best removed or kept aside, not mixed)",
        ));
    }
    let config = g.config()?;
    let (_uri, key) = g.open_ca(config.as_ref(), true)?;
    let lines = export::bundle_lines(key.public_key(), config.as_ref(), &g.state_dir)?;
    let cas = describe_cas(&lines)?;
    let host = HostConfig {
        ssh_dir,
        users: users
            .into_iter()
            .map(|u| {
                let p = principals.clone().unwrap_or_else(|| vec![u.clone()]);
                (u, p)
            })
            .collect(),
        ca_lines: lines,
        cas,
    };
    let files = host.output_files()?;
    write_tree(&args.out, &files)?;

    let row = |name: &str, what: &str| say(format!("  {name:<34}{what}"));
    say(format!(
        "Wrote the host configuration to {}:",
        args.out.display()
    ));
    let blocks = host
        .users
        .iter()
        .map(|(u, p)| format!("{u} (principals: {})", p.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    row(SNIPPET, &format!("Match User blocks: {blocks}"));
    for (i, ca) in host.cas.iter().enumerate() {
        let name = if i == 0 { BUNDLE } else { "" };
        row(name, &ca.describe());
    }
    row(
        &format!("{PRINCIPALS_DIR}/"),
        "one principals file per user",
    );
    row(
        "install.sh",
        "on a host, as root: sh install.sh; into an image tree: ROOT=DIR sh install.sh",
    );
    row(
        "cloud-init.yaml",
        "the same files as a #cloud-config fragment",
    );
    if config.is_none() {
        say(format!(
            "Note: no {CONFIG_FILE} in {}, so no backup CAs are included.",
            g.state_dir.display()
        ));
    }
    if host.users.iter().any(|(u, _)| u == "root") {
        say("Note: for root, 'AuthorizedKeysFile none' turns off root's authorized_keys logins; a dedicated breakglass account is safer.");
    }
    let first = host.users.first().map_or("breakglass", |(u, _)| u.as_str());
    say(format!(
        "Next: bake these into the image (docs/hosts.md), then on a host check: sshd -T -C user={first},host=x,addr=127.0.0.1 | grep -i trustedusercakeys"
    ));
    Ok(())
}

/// Account names: `[a-z_][a-z0-9_-]*`, at most 32 bytes, like `useradd` accepts by default.
/// Repeats are dropped.
fn check_users(raw: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for u in raw {
        let mut chars = u.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !first_ok || !rest_ok || u.len() > MAX_USER_LEN {
            return Err(Error::usage(format!("--user {u:?} is not a valid account name"))
                .with_hint("use a plain account name: lowercase letters, digits, '_' and '-', starting with a letter or '_', at most 32 characters (e.g. --user breakglass)"));
        }
        if !out.contains(u) {
            out.push(u.clone());
        }
    }
    if out.is_empty() {
        return Err(Error::usage("no --user given")
            .with_hint("name the emergency account, e.g. --user breakglass"));
    }
    Ok(out)
}

/// The issuance policy's principal rules, and no leading `#` (a comment in a principals file).
fn check_principals(raw: &[String]) -> Result<Vec<String>> {
    let out = policy::principals(raw)?;
    if let Some(p) = out.iter().find(|p| !text::is_safe(p)) {
        return Err(Error::refused(format!(
            "principal \"{}\" contains a control or format character",
            text::Esc(p)
        ))
        .with_hint("principals are plain account or role names such as breakglass"));
    }
    if let Some(p) = out.iter().find(|p| p.starts_with('#')) {
        return Err(Error::refused(format!(
            "principal {p:?}: sshd reads a line starting with '#' as a comment"
        ))
        .with_hint("principals are plain account or role names such as breakglass"));
    }
    Ok(out)
}

/// An absolute path of plain characters (it goes unquoted into sshd_config, into a shell
/// script and into YAML, and `%` would be a token for sshd), without a trailing slash.
fn check_ssh_dir(dir: &Path) -> Result<String> {
    let text = dir.to_str().unwrap_or_default();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._+-".contains(c);
    let trimmed = text.trim_end_matches('/');
    if !text.starts_with('/') || trimmed.is_empty() || !text.chars().all(plain) {
        return Err(Error::usage(format!(
            "--ssh-dir {} is not usable: it must be an absolute path of letters, digits and / . _ + - (not /)",
            dir.display()
        ))
        .with_hint("the default /etc/ssh is right for Debian, Ubuntu, RHEL and most images"));
    }
    Ok(trimmed.to_string())
}

/// One CA key of the bundle, for the comments and the summary.
struct CaInfo {
    fingerprint: String,
    algorithm: &'static str,
    primary: bool,
}

impl CaInfo {
    fn describe(&self) -> String {
        let role = if self.primary { "this CA" } else { "backup CA" };
        format!("{} ({}, {role})", self.fingerprint, self.algorithm)
    }
}

fn describe_cas(lines: &[String]) -> Result<Vec<CaInfo>> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let key = PublicKey::from_openssh(line)
                .map_err(|e| Error::ssh("cannot read a CA line of the bundle", e))?;
            Ok(CaInfo {
                fingerprint: export::fingerprint(key.key_data()),
                algorithm: algorithm_of(key.key_data()),
                primary: i == 0,
            })
        })
        .collect()
}

fn algorithm_of(key: &KeyData) -> &'static str {
    Algorithm::of_key(key).map_or("unknown", Algorithm::name)
}

/// One file of the output: its path relative to `--out` (and, for host files, to the ssh
/// directory), content and mode.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OutFile {
    path: String,
    content: String,
    mode: u32,
}

/// What the host needs, ready to render.
struct HostConfig {
    /// The ssh directory on the host, absolute, no trailing slash.
    ssh_dir: String,
    /// Each account and the principals its certificates must carry.
    users: Vec<(String, Vec<String>)>,
    /// The CA lines, this CA first.
    ca_lines: Vec<String>,
    cas: Vec<CaInfo>,
}

impl HostConfig {
    fn host_path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.ssh_dir)
    }

    /// Comment lines naming the CA keys, each starting with `prefix`.
    fn ca_comment(&self, prefix: &str) -> String {
        self.cas
            .iter()
            .map(|c| format!("{prefix}  {}\n", c.describe()))
            .collect()
    }

    fn snippet(&self) -> String {
        let mut s = String::new();
        s.push_str("# Emergency SSH access with short-lived certificates from breakglass-ca.\n");
        s.push_str(
            "# Generated by 'breakglass-ca host-config'; do not edit: run it again instead.\n",
        );
        s.push_str(&format!(
            "# CA keys trusted ({}), compare with the vault sheet:\n",
            self.host_path(BUNDLE)
        ));
        s.push_str(&self.ca_comment("#"));
        s.push_str("#\n");
        s.push_str("# Keep 'LogLevel VERBOSE' in sshd_config (these blocks also set it for their users) so\n");
        s.push_str("# that sshd logs every certificate's key ID and serial:\n");
        s.push_str("#   Accepted certificate ID \"KEYID\" (serial N) signed by ECDSA CA SHA256:... via ...\n");
        s.push_str("# Any login to these accounts is an emergency: alert on those lines (docs/hosts.md).\n");
        s.push_str("#\n");
        s.push_str(
            "# sshd_config must Include this file before any Match block of its own (Debian's\n",
        );
        s.push_str(&format!(
            "# 'Include {}/sshd_config.d/*.conf' at the top does). A Match block lasts to the end of\n",
            self.ssh_dir
        ));
        s.push_str("# the file it is in, so nothing but Match blocks may follow here.\n");
        for (user, _) in &self.users {
            s.push('\n');
            s.push_str(&format!("Match User {user}\n"));
            s.push_str(&format!(
                "    TrustedUserCAKeys {}\n",
                self.host_path(BUNDLE)
            ));
            s.push_str(&format!(
                "    AuthorizedPrincipalsFile {}/%u\n",
                self.host_path(PRINCIPALS_DIR)
            ));
            s.push_str("    AuthorizedKeysFile none\n");
            s.push_str("    PubkeyAuthentication yes\n");
            s.push_str("    AuthenticationMethods publickey\n");
            s.push_str("    LogLevel VERBOSE\n");
        }
        s
    }

    fn bundle(&self) -> String {
        self.ca_lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// The files installed on the host, relative to the ssh directory, in the order they are
    /// installed: the snippet last, so sshd never reads it before the files it names exist.
    fn host_files(&self) -> Vec<OutFile> {
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
            content: self.snippet(),
            mode: 0o644,
        });
        files
    }

    /// `sshd -t` and a reload, as one shell command line.
    fn check_and_reload(&self) -> String {
        format!(
            "sshd -t -f {}/sshd_config && {{ systemctl reload ssh || systemctl reload sshd || service ssh reload; }}",
            self.ssh_dir
        )
    }

    fn install_sh(&self, files: &[OutFile]) -> Result<String> {
        let users = self
            .users
            .iter()
            .map(|(u, _)| u.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let user_pattern = self
            .users
            .iter()
            .map(|(u, _)| u.as_str())
            .collect::<Vec<_>>()
            .join("|");
        let mut s = String::new();
        s.push_str(&format!(
            r#"#!/bin/sh
# Install the breakglass-ca emergency SSH trust. Generated by 'breakglass-ca host-config';
# do not edit: run that command again instead. Self-contained: the files are inside.
#
#   sh install.sh                       on a running host, as root: install the files, check
#                                       them with 'sshd -t' and reload sshd
#   ROOT=/path/to/image sh install.sh   into an image tree: install the files only
#
# Running it twice gives the same result. Files: 0644; directories: 0755.
# CA keys trusted:
{cas}set -eu
umask 022

ROOT=${{ROOT:-}}
if [ "$ROOT" = / ]; then ROOT=; fi
SSH_DIR='{ssh_dir}'
DEST="$ROOT$SSH_DIR"
PRINCIPALS="$DEST/{PRINCIPALS_DIR}"
CONF="$DEST/sshd_config"
INCLUDE_LINE="Include $SSH_DIR/sshd_config.d/*.conf"

say() {{ printf 'breakglass-ca install: %s\n' "$*" >&2; }}

# put FILE: write stdin beside FILE, then rename it over FILE (sshd never reads half a file).
put() {{
    tmp="$1.tmp.$$"
    rm -f "$tmp"
    cat >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$1"
    say "installed $1"
}}

mkdir -p "$DEST/sshd_config.d" "$PRINCIPALS"
chmod 0755 "$PRINCIPALS"

# The snippet as it was, to put back if 'sshd -t' rejects the new one (a config sshd rejects
# must not wait on disk for the next restart).
SNIPPET="$DEST/{SNIPPET}"
PREV="$SNIPPET.prev.$$"
trap 'rm -f "$PREV"' EXIT
if [ -f "$SNIPPET" ]; then cp -p "$SNIPPET" "$PREV"; fi
"#,
            cas = self.ca_comment("#"),
            ssh_dir = self.ssh_dir,
        ));
        for f in files {
            check_host_file(f)?;
            s.push_str(&format!(
                "\nput \"$DEST/{}\" <<'{EOF_MARK}'\n{}{EOF_MARK}\n",
                f.path, f.content
            ));
        }
        s.push_str(&format!(
            r#"
# Principals files of accounts no longer configured.
for f in "$PRINCIPALS"/*; do
    [ -f "$f" ] || continue
    case ${{f##*/}} in
        {user_pattern}) ;;
        *) rm -f "$f"; say "removed $f (no longer configured)" ;;
    esac
done

# sshd_config must Include sshd_config.d before any Match block of its own. Never edited here.
if [ ! -f "$CONF" ]; then
    say "note: $CONF does not exist (yet); it must have this line before any Match block:"
    say "    $INCLUDE_LINE"
elif ! awk 'BEGIN {{ found = 0; inmatch = 0 }}
        {{ k = tolower($1) }}
        k == "match" {{ inmatch = 1 }}
        k == "include" && !inmatch && index($0, "sshd_config.d/") {{ found = 1 }}
        END {{ exit !found }}' "$CONF"; then
    say "ERROR: $CONF does not Include sshd_config.d (before any Match block),"
    say "so sshd would ignore the breakglass-ca configuration. Add this line at its top:"
    say "    $INCLUDE_LINE"
    say "then run this script again. sshd was not reloaded."
    exit 1
fi

if [ -n "$ROOT" ]; then
    say "installed into $DEST; sshd not checked or reloaded (ROOT is set)"
    exit 0
fi

PATH="$PATH:/usr/sbin:/sbin"
if ! sshd -t -f "$CONF"; then
    say "ERROR: 'sshd -t' rejects the configuration (above); sshd was NOT reloaded and keeps"
    say "running with its old configuration."
    if [ -f "$PREV" ]; then
        mv -f "$PREV" "$SNIPPET"
        say "The previous $SNIPPET is back in place."
    else
        rm -f "$SNIPPET"
        say "$SNIPPET is removed again."
    fi
    say "Fix the problem, then run this script again."
    exit 1
fi
for user in {users}; do
    if ! sshd -T -f "$CONF" -C "user=$user,host=localhost,addr=127.0.0.1" |
            grep -qixF "trustedusercakeys $SSH_DIR/{BUNDLE}"; then
        say "ERROR: sshd does not use $SSH_DIR/{BUNDLE} for $user: is another"
        say "TrustedUserCAKeys or Match block read first? sshd was NOT reloaded. Check with:"
        say "    sshd -T -C user=$user,host=x,addr=127.0.0.1 | grep -i trustedusercakeys"
        exit 1
    fi
done
if systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null || service ssh reload; then
    say "sshd checked and reloaded"
else
    say "ERROR: the files are installed and 'sshd -t' accepts them, but sshd could not be"
    say "reloaded; reload or restart it by hand."
    exit 1
fi
"#
        ));
        Ok(s)
    }

    /// `#cloud-config`, comment lines (generated from fingerprints and paths only), then the
    /// document as serialized by [`text::yaml_ascii`]: a YAML flow mapping (JSON-shaped) with
    /// every string double-quoted and every character outside printable ASCII escaped, so no
    /// file content can end its scalar or add an entry, whatever it holds.
    fn cloud_init(&self, files: &[OutFile]) -> Result<String> {
        #[derive(serde::Serialize)]
        struct WriteFile<'a> {
            path: String,
            owner: &'static str,
            permissions: String,
            content: &'a str,
        }
        #[derive(serde::Serialize)]
        struct CloudConfig<'a> {
            write_files: Vec<WriteFile<'a>>,
            runcmd: Vec<[String; 3]>,
        }
        let doc = CloudConfig {
            write_files: files
                .iter()
                .map(|f| WriteFile {
                    path: self.host_path(&f.path),
                    owner: "root:root",
                    permissions: format!("{:04o}", f.mode),
                    content: &f.content,
                })
                .collect(),
            runcmd: vec![["sh".into(), "-c".into(), self.check_and_reload()]],
        };
        let body = text::yaml_ascii(&doc)
            .map_err(|e| Error::config(format!("cannot build cloud-init.yaml: {e}")))?;
        let mut s = String::from("#cloud-config\n");
        s.push_str(
            "# breakglass-ca emergency SSH trust. Generated by 'breakglass-ca host-config';\n",
        );
        s.push_str("# do not edit: run that command again instead. CA keys trusted:\n");
        s.push_str(&self.ca_comment("#"));
        s.push_str(&format!(
            "# sshd_config must have 'Include {}/sshd_config.d/*.conf' before any Match block.\n",
            self.ssh_dir
        ));
        s.push_str(
            "# The document below is YAML in flow style (JSON-shaped), every string double-quoted.\n",
        );
        s.push_str(&body);
        s.push('\n');
        Ok(s)
    }

    /// Every file written under `--out`.
    fn output_files(&self) -> Result<Vec<OutFile>> {
        let host = self.host_files();
        let mut all = host.clone();
        all.push(OutFile {
            path: "install.sh".into(),
            content: self.install_sh(&host)?,
            mode: 0o755,
        });
        all.push(OutFile {
            path: "cloud-init.yaml".into(),
            content: self.cloud_init(&host)?,
            mode: 0o644,
        });
        Ok(all)
    }
}

/// What install.sh (a quoted heredoc per file) and every other output rely on: the content is
/// whole lines of text, none of them the heredoc delimiter, with no control or format character
/// but the line feeds. Host files are generated from checked names and canonical CA lines with
/// [plain](export::plain_comment) comments, so this only fails if one of those checks is
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
fn write_tree(out: &Path, files: &[OutFile]) -> Result<()> {
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
mod tests {
    use super::*;

    const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPg1Q+KGCuYkBhj62eL5GTpL+Nz3uo3gA6grASzJ/8BuUX+8Lzh/y3w03WgmRPUQ7/PgOKfUhmp3NoHNj0geaAw= breakglass-ca";

    fn sample() -> HostConfig {
        let lines = vec![P256.to_string()];
        HostConfig {
            ssh_dir: "/etc/ssh".into(),
            users: vec![
                ("breakglass".into(), vec!["breakglass".into()]),
                ("root".into(), vec!["ops".into(), "root".into()]),
            ],
            cas: describe_cas(&lines).unwrap(),
            ca_lines: lines,
        }
    }

    #[test]
    fn user_names() {
        for good in ["breakglass", "_svc", "a-b_c9", &"a".repeat(32)] {
            assert_eq!(check_users(&[good.to_string()]).unwrap(), [good]);
        }
        for bad in [
            "",
            "Root",
            "9lives",
            "-x",
            "a b",
            "a,b",
            "a*",
            "é",
            "a$",
            &"a".repeat(33),
        ] {
            let err = check_users(&[bad.to_string()]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        let two = check_users(&["a".into(), "b".into(), "a".into()]).unwrap();
        assert_eq!(two, ["a", "b"]);
    }

    #[test]
    fn principals_and_ssh_dir() {
        assert_eq!(
            check_principals(&["ops,root".into(), "ops".into()]).unwrap(),
            ["ops", "root"]
        );
        assert!(check_principals(&["#x".into()]).is_err());
        for bad in ["a\u{202e}b", "a\u{200b}", "\u{feff}x"] {
            assert!(check_principals(&[bad.into()]).is_err(), "{bad:?}");
        }
        assert!(check_principals(&["a b".into()]).is_err());
        assert_eq!(check_ssh_dir(Path::new("/etc/ssh/")).unwrap(), "/etc/ssh");
        for bad in ["etc/ssh", "/", "/etc/s sh", "/etc/%u", "/etc/'x", "/etc/$x"] {
            assert!(check_ssh_dir(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn snippet_has_one_match_block_per_user_and_nothing_after() {
        let text = sample().snippet();
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
        let doc = yaml_body(yaml);
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
            serde_json::json!([["sh", "-c", sample().check_and_reload()]])
        );
        assert_eq!(doc.as_object().unwrap().len(), 2);
    }

    /// The document after the `#` comment lines of cloud-init.yaml, read as JSON (what it is
    /// when no character lies beyond U+FFFF).
    fn yaml_body(yaml: &str) -> serde_json::Value {
        let body: String = yaml
            .lines()
            .skip_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        serde_json::from_str(&body).unwrap()
    }

    /// `yaml.safe_load` of `text` by PyYAML (what cloud-init uses), as JSON; `None` (skipped)
    /// without python3 and PyYAML, except in CI. Written as UTF-8, so a string PyYAML read as
    /// lone surrogates (a JSON surrogate pair) fails here instead of being joined again.
    fn pyyaml(text: &str) -> Option<serde_json::Value> {
        use std::io::Write;
        let script =
            "import json, sys\ntry:\n    import yaml\nexcept ImportError:\n    sys.exit(3)\n\
                      doc = yaml.safe_load(sys.stdin.buffer.read().decode('utf-8'))\n\
                      sys.stdout.buffer.write(json.dumps(doc, ensure_ascii=False).encode('utf-8'))";
        let child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let missing = |why: String| {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true and {why}: install python3-yaml (bash scripts/test.sh)");
            }
            eprintln!("SKIPPED: {why}");
            None
        };
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return missing(format!("no python3 ({e})")),
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => Some(serde_json::from_slice(&out.stdout).unwrap()),
            Some(3) => missing("PyYAML is not installed".into()),
            _ => panic!(
                "PyYAML rejects the document: {}\n{text}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Whatever a file holds, cloud-init.yaml keeps it inside its own `content` string: PyYAML
    /// reads back exactly the files that were given, and nothing else.
    #[test]
    fn cloud_init_is_serialized_not_concatenated() {
        let hostile = [
            "a\rwrite_files:\r- path: /etc/cron.d/pwn\r  content: x\n",
            "b\u{85}- path: /etc/cron.d/pwn\u{85}  content: \"* * * * * root id\"\n",
            "c\u{2028}  - path: /x\u{2029}    content: y\n",
            "\n\nwrite_files:\n  - path: /etc/cron.d/pwn\n    content: |\n      boom\n",
            "BREAKGLASS_CA_EOF\n#cloud-config\n# not a comment\n'\"\\ \u{1b}[2K\u{7f}\0\t\n",
            "\u{202e}\u{200b}\u{feff}é😀\u{10ffff}\n",
            "",
            "no newline at the end",
        ];
        let host = sample();
        let files: Vec<OutFile> = hostile
            .iter()
            .enumerate()
            .map(|(i, c)| OutFile {
                path: format!("f{i}"),
                content: c.to_string(),
                mode: if i % 2 == 0 { 0o644 } else { 0o600 },
            })
            .collect();
        let yaml = host.cloud_init(&files).unwrap();
        assert!(
            yaml.bytes()
                .all(|b| b == b'\n' || (0x20..0x7f).contains(&b)),
            "not printable ASCII:\n{yaml}"
        );
        let want = |doc: &serde_json::Value| {
            let entries = doc["write_files"].as_array().unwrap();
            assert_eq!(entries.len(), files.len(), "{doc}");
            for (e, f) in entries.iter().zip(&files) {
                assert_eq!(e["path"], format!("/etc/ssh/{}", f.path));
                assert_eq!(e["content"], f.content.as_str(), "{}", f.path);
                assert_eq!(e["permissions"], format!("{:04o}", f.mode));
                assert_eq!(e["owner"], "root:root");
            }
            assert_eq!(doc["runcmd"][0][2], host.check_and_reload());
            assert_eq!(doc.as_object().unwrap().len(), 2, "{doc}");
        };
        if let Some(doc) = pyyaml(&yaml) {
            want(&doc);
        }
        // Without the characters beyond U+FFFF, the body is also exactly JSON.
        let bmp: Vec<OutFile> = files[..5].to_vec();
        let yaml = host.cloud_init(&bmp).unwrap();
        let doc = yaml_body(&yaml);
        assert_eq!(doc["write_files"].as_array().unwrap().len(), 5);
        assert_eq!(doc["write_files"][1]["content"], hostile[1]);
    }

    /// The real outputs of a configuration: PyYAML reads cloud-init.yaml back as the host
    /// files, and the sample's install.sh passes `sh -n`.
    #[test]
    fn generated_cloud_init_and_install_sh_are_well_formed() {
        let files = sample().output_files().unwrap();
        if let Some(doc) = pyyaml(&files[5].content) {
            assert_eq!(doc, yaml_body(&files[5].content));
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
                host.ca_lines = vec![content.trim_end_matches('\n').to_string()];
                assert!(host.output_files().is_err(), "{content:?}");
            }
        }
        assert!(sample().output_files().is_ok());
    }
}
