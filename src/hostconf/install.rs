//! `install.sh`: the POSIX script that installs the host files under `$ROOT` (an image tree)
//! or on the running host, where it also checks them with `sshd -t` and reloads sshd.
//!
//! The script is the template `install.sh.in` (read it as the script it is); the host files
//! go into it as quoted heredocs, one per file, at `@FILES@`. Its other placeholders: the
//! `@CA_KEYS@` comment lines, `@SSH_DIR@`, the `@BUNDLE@`, `@PRINCIPALS_DIR@` and `@SNIPPET@`
//! names, and the accounts as `@USERS@` (a `for` list) and `@USER_PATTERN@` (a `case`
//! pattern).

use super::template::fill;
use super::{check_host_file, HostConfig, OutFile, BUNDLE, EOF_MARK, PRINCIPALS_DIR, SNIPPET};
use crate::error::Result;

const TEMPLATE: &str = include_str!("install.sh.in");

/// The script installing `files` (the host files, each checked by [`check_host_file`]: it is
/// what keeps a heredoc from ending early).
pub(super) fn render(host: &HostConfig, files: &[OutFile]) -> Result<String> {
    let mut heredocs = String::new();
    for f in files {
        check_host_file(f)?;
        heredocs.push_str(&format!(
            "\nput \"$DEST/{}\" <<'{EOF_MARK}'\n{}{EOF_MARK}\n",
            f.path, f.content
        ));
    }
    let users: Vec<&str> = host.user_names().collect();
    fill(
        "install.sh",
        TEMPLATE,
        &[
            ("CA_KEYS", &host.ca_comment("#")),
            ("SSH_DIR", &host.ssh_dir),
            ("PRINCIPALS_DIR", PRINCIPALS_DIR),
            ("SNIPPET", SNIPPET),
            ("FILES", &heredocs),
            ("USER_PATTERN", &users.join("|")),
            ("USERS", &users.join(" ")),
            ("BUNDLE", BUNDLE),
        ],
    )
}
