//! `install.sh`: the POSIX script that installs the host files under `$ROOT` (an image tree)
//! or on the running host, where it also checks them with `sshd -t` and reloads sshd; with
//! `--krl FILE`, it installs a newer KRL alone.
//!
//! The script is the template `install.sh.in` (read it as the script it is); the text host
//! files go into it as quoted heredocs, one per file, at `@FILES@`, in their order; the KRL
//! goes in as base64 (`@KRL_ENCODED@`, a quoted heredoc decoded with `base64 -d` and checked
//! before any file is written), and at its place among the files the script puts it in place
//! (`krl_commit`). Its other placeholders: the `@CA_KEYS@` comment lines, `@KRL_VERSION@`,
//! `@SSH_DIR@`, the `@BUNDLE@`, `@KRL@`, `@PRINCIPALS_DIR@` and `@SNIPPET@` names, and the
//! accounts as `@USERS@` (a `for` list) and `@USER_PATTERN@` (a `case` pattern). With the
//! alarm, `@ALERT_FUNCTIONS@`, `@ALERT_CHECK@` and `@ALERT_SSHD_CHECK@` hold its parts
//! ([`super::alert::install_parts`]; nothing without it), and the hook, mode 0755, goes in
//! with `put_exec`.

use base64ct::{Base64, Encoding};

use super::template::fill;
use super::{
    check_host_file, Content, HostConfig, OutFile, BUNDLE, EOF_MARK, KRL_FILE, PRINCIPALS_DIR,
    SNIPPET,
};
use crate::error::{Error, Result};

const TEMPLATE: &str = include_str!("install.sh.in");

/// Characters per base64 line in the script, as `base64` writes them.
const BASE64_LINE: usize = 76;

/// `bytes` in base64, as whole lines of [`BASE64_LINE`] characters (none for no bytes).
pub(super) fn base64_lines(bytes: &[u8]) -> String {
    let text = Base64::encode_string(bytes);
    text.as_bytes()
        .chunks(BASE64_LINE)
        .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
        .collect()
}

/// The script installing `files` (the host files, each checked by [`check_host_file`]: it is
/// what keeps a heredoc from ending early; the one binary file must be the KRL).
pub(super) fn render(host: &HostConfig, files: &[OutFile]) -> Result<String> {
    let mut heredocs = String::new();
    let mut krl = None;
    for f in files {
        check_host_file(f)?;
        match &f.content {
            Content::Text(text) => heredocs.push_str(&format!(
                "\n{} \"$DEST/{}\" <<'{EOF_MARK}'\n{text}{EOF_MARK}\n",
                if f.mode == 0o755 { "put_exec" } else { "put" },
                f.path
            )),
            Content::Bytes(bytes) if f.path == KRL_FILE && krl.is_none() => {
                krl = Some(base64_lines(bytes));
                heredocs.push_str("\nkrl_commit\n");
            }
            Content::Bytes(_) => {
                return Err(Error::invalid(format!(
                    "install.sh cannot carry {} as bytes: only the KRL is binary",
                    f.path
                ))
                .with_hint("report this as a bug in breakglass-ca"))
            }
        }
    }
    let Some(krl) = krl else {
        return Err(Error::invalid(format!(
            "install.sh needs the KRL {KRL_FILE} among its files"
        ))
        .with_hint("report this as a bug in breakglass-ca"));
    };
    let users: Vec<&str> = host.user_names().collect();
    let (alert_functions, alert_check, alert_sshd_check) = super::alert::install_parts(host)?;
    let version = host.krl.version.to_string();
    fill(
        "install.sh",
        TEMPLATE,
        &[
            ("CA_KEYS", &host.ca_comment("#")),
            ("KRL_VERSION", &version),
            ("SSH_DIR", &host.ssh_dir),
            ("PRINCIPALS_DIR", PRINCIPALS_DIR),
            ("SNIPPET", SNIPPET),
            ("KRL", KRL_FILE),
            ("KRL_ENCODED", &krl),
            ("FILES", &heredocs),
            ("USER_PATTERN", &users.join("|")),
            ("USERS", &users.join(" ")),
            ("BUNDLE", BUNDLE),
            ("ALERT_FUNCTIONS", &alert_functions),
            ("ALERT_CHECK", &alert_check),
            ("ALERT_SSHD_CHECK", &alert_sshd_check),
        ],
    )
}
