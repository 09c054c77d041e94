//! `host-config`: write everything a host image needs to trust the CA (and its backups) into
//! `--out`, from public keys and the ledger's revocations alone (see [`crate::hostconf`] for
//! the files), and say what was written. The CA key: the token, or `STATE/ca.pub` when it is
//! not plugged in ([`crate::cmd::ca_source`]).

use std::path::Path;

use crate::cli::HostConfigArgs;
use crate::cmd::Globals;
use crate::config::CONFIG_FILE;
use crate::error::{Error, Result};
use crate::export;
use crate::hostconf::{
    self, Alert, HostConfig, ALERT_HOOK, BUNDLE, CLOUD_INIT, DEFAULT_ALERT_TIMEOUT_SECS,
    INSTALL_SH, KRL_FILE, PRINCIPALS_DIR, SNIPPET,
};
use crate::krl::Krl;
use crate::ledger::Revoked;
use crate::policy;
use crate::text;
use crate::text::ShowPath;
use crate::ui::say;

/// Longest user name accepted (the common `useradd` limit).
const MAX_USER_LEN: usize = 32;
/// Longest `--alert-command` path accepted.
const MAX_COMMAND_LEN: usize = 200;
/// Longest `--alert-timeout` accepted, in seconds.
const MAX_ALERT_TIMEOUT_SECS: u64 = 300;

pub fn run(g: &Globals, args: &HostConfigArgs) -> Result<()> {
    let users = check_users(&args.users)?;
    let principals = if args.principals.is_empty() {
        None
    } else {
        Some(check_principals(&args.principals)?)
    };
    let ssh_dir = check_ssh_dir(&args.ssh_dir)?;
    let alert = check_alert(args)?;
    g.check_output_dir(&args.out)?;
    if std::fs::symlink_metadata(&args.out).is_ok() {
        return Err(Error::usage(format!(
            "{} already exists; refusing to write into it",
            args.out.shown()
        ))
        .with_hint(
            "give --out a new directory (an older bundle is best removed or kept aside, not mixed)",
        ));
    }
    let config = g.config()?;
    let source = g.ca_source(config.as_ref(), true)?;
    say(source.describe(&g.state_dir, config.as_ref()));
    let public = source.public_key();
    let cas = export::bundle_lines(public, config.as_ref(), &g.state_dir, &mut say)?;
    let revoked = crate::cmd::ledger(&g.state_dir).revoked(&crate::key::fingerprint(public))?;
    let revoked_cas = export::revoked_ca_keys(&revoked.ca_keys)?;
    export::trusted(&cas, &revoked_cas)?;
    let krl = Krl::from_revoked(&revoked, public, krl_generated(&revoked)?)?;
    let host = HostConfig {
        ssh_dir,
        users: users
            .into_iter()
            .map(|u| {
                let p = principals.clone().unwrap_or_else(|| vec![u.clone()]);
                (u, p)
            })
            .collect(),
        cas,
        revoked_cas,
        krl,
        alert,
    };
    hostconf::write_tree(&args.out, &host.output_files()?)?;
    summary(g, args, &host, &revoked, config.is_none());
    crate::cmd::krl::warn_if_version_ahead(&revoked);
    Ok(())
}

/// The KRL's `generated` time for host files: the newest revocation's time (0 with none), so
/// the same ledger gives byte-identical files.
fn krl_generated(revoked: &Revoked) -> Result<u64> {
    let Some(newest) = revoked.newest.as_deref() else {
        return Ok(0);
    };
    chrono::DateTime::parse_from_rfc3339(newest)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp()).ok())
        .ok_or_else(|| {
            Error::ledger(format!(
                "the newest revocation record's time \"{}\" is not an RFC 3339 time after 1970",
                text::Esc(newest)
            ))
            .with_hint("check the ledger with 'breakglass-ca log verify'")
        })
}

/// What was written, and what to do next.
fn summary(
    g: &Globals,
    args: &HostConfigArgs,
    host: &HostConfig,
    revoked: &Revoked,
    no_config: bool,
) {
    let row = |name: &str, what: &str| say(format!("  {name:<34}{what}"));
    say(format!(
        "Wrote the host configuration to {}:",
        args.out.shown()
    ));
    let blocks = host
        .users
        .iter()
        .map(|(u, p)| format!("{u} (principals: {})", p.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    row(SNIPPET, &format!("Match User blocks: {blocks}"));
    for (i, ca) in host.ca_descriptions().enumerate() {
        let name = if i == 0 { BUNDLE } else { "" };
        row(name, &ca);
    }
    row(
        &format!("{PRINCIPALS_DIR}/"),
        "one principals file per user",
    );
    let krl = match &revoked.newest {
        None => format!("KRL version {}: nothing revoked", host.krl.version),
        Some(newest) => format!(
            "KRL version {}: {} revocation record(s), the newest at {}",
            host.krl.version,
            revoked.records,
            text::Esc(newest)
        ),
    };
    row(KRL_FILE, &krl);
    if let Some(a) = &host.alert {
        let mut what = Vec::new();
        if a.syslog {
            what.push("syslog auth.alert (tag breakglass-ca)".to_string());
        }
        if let Some(c) = &a.command {
            what.push(format!("runs {c} as nobody, at most {}s", a.timeout_secs));
        }
        row(
            ALERT_HOOK,
            &format!("the alarm at every certificate use: {}", what.join("; ")),
        );
    }
    row(
        INSTALL_SH,
        "on a host, as root: sh install.sh; into an image tree: ROOT=DIR sh install.sh",
    );
    row("", "a newer KRL alone, later: sh install.sh --krl FILE");
    row(CLOUD_INIT, "the same files as a #cloud-config fragment");
    match &host.alert {
        None => say("Note: no alarm hook (--no-alert-syslog and no --alert-command): sshd's own log is the only record of emergency logins on the host."),
        Some(_) => say("The alarm: a dry-run login must show 'breakglass-ca: emergency certificate:' in the host's syslog (journalctl -t breakglass-ca)."),
    }
    if no_config {
        say(format!(
            "Note: no {CONFIG_FILE} in {}, so no backup CAs are included.",
            g.state_dir.shown()
        ));
    }
    if host.users.iter().any(|(u, _)| u == "root") {
        say("Note: for root, 'AuthorizedKeysFile none' turns off root's authorized_keys logins; a dedicated breakglass account is safer.");
    }
    let first = host.users.first().map_or("breakglass", |(u, _)| u.as_str());
    say(format!(
        "Next: bake these into the image (docs/hosts.md), then on a host check: sshd -T -C user={first},host=x,addr=127.0.0.1 | grep -iE 'trustedusercakeys|revokedkeys'"
    ));
}

/// The alarm from `--alert-command`, `--alert-timeout` and `--[no-]alert-syslog`; `None`
/// with neither syslog nor a command.
fn check_alert(args: &HostConfigArgs) -> Result<Option<Alert>> {
    let command = args
        .alert_command
        .as_deref()
        .map(check_alert_command)
        .transpose()?;
    let timeout_secs = match args.alert_timeout {
        None => DEFAULT_ALERT_TIMEOUT_SECS,
        Some(_) if command.is_none() => {
            return Err(Error::usage(
                "--alert-timeout is the alert command's time limit, but no --alert-command is given",
            )
            .with_hint("add --alert-command CMD, or leave --alert-timeout out"))
        }
        Some(t) if t.as_secs() > MAX_ALERT_TIMEOUT_SECS => {
            return Err(Error::usage(format!(
                "--alert-timeout {}s is longer than {MAX_ALERT_TIMEOUT_SECS}s",
                t.as_secs()
            ))
            .with_hint("the command only has to hand the alarm on (a webhook, a queue): e.g. --alert-timeout 10s"))
        }
        Some(t) => t.as_secs(),
    };
    let syslog = !args.no_alert_syslog;
    if !syslog && command.is_none() {
        return Ok(None);
    }
    Ok(Some(Alert {
        syslog,
        command,
        timeout_secs,
    }))
}

/// An absolute path of plain characters, no `.` or `..` component, no trailing slash: it goes
/// into a shell script (quoted) and into YAML, and is run as it is, without arguments.
fn check_alert_command(path: &Path) -> Result<String> {
    let text = path.to_str().unwrap_or_default();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._+-".contains(c);
    let parts_ok = text
        .split('/')
        .skip(1)
        .all(|p| !p.is_empty() && p != "." && p != "..");
    if !text.starts_with('/')
        || !text.chars().all(plain)
        || !parts_ok
        || text.len() > MAX_COMMAND_LEN
    {
        return Err(Error::usage(format!(
            "--alert-command {} is not usable: it must be an absolute path of letters, digits and / . _ + - (no arguments, no . or .. component, at most {MAX_COMMAND_LEN} bytes)",
            path.shown()
        ))
        .with_hint("give the program's full path, e.g. --alert-command /usr/local/sbin/breakglass-page; for arguments, write a small script that adds them"));
    }
    Ok(text.to_string())
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
            dir.shown()
        ))
        .with_hint("the default /etc/ssh is right for Debian, Ubuntu, RHEL and most images"));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn krl_generated_is_the_newest_revocation_time() {
        let mut r = Revoked::default();
        assert_eq!(krl_generated(&r).unwrap(), 0);
        r.newest = Some("2026-12-01T10:33:16Z".into());
        assert_eq!(krl_generated(&r).unwrap(), 1796121196);
        for bad in ["yesterday", "1969-12-31T23:59:59Z"] {
            r.newest = Some(bad.into());
            assert!(krl_generated(&r).is_err(), "{bad}");
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

    fn args(extra: &[&str]) -> HostConfigArgs {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(
            [
                "breakglass-ca",
                "host-config",
                "--user",
                "breakglass",
                "--out",
                "x",
            ]
            .iter()
            .chain(extra),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::HostConfig(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn alert_options() {
        let on = check_alert(&args(&[])).unwrap().unwrap();
        assert_eq!(
            on,
            Alert {
                syslog: true,
                command: None,
                timeout_secs: 10
            }
        );
        assert_eq!(check_alert(&args(&["--no-alert-syslog"])).unwrap(), None);
        assert!(check_alert(&args(&["--no-alert-syslog", "--alert-syslog"]))
            .unwrap()
            .is_some());
        let cmd = check_alert(&args(&[
            "--alert-command",
            "/usr/local/sbin/page",
            "--alert-timeout",
            "2m",
            "--no-alert-syslog",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(cmd.command.as_deref(), Some("/usr/local/sbin/page"));
        assert_eq!((cmd.timeout_secs, cmd.syslog), (120, false));
        for bad in [
            &["--alert-timeout", "5s"][..],
            &["--alert-command", "/x", "--alert-timeout", "6m"],
        ] {
            assert_eq!(
                check_alert(&args(bad)).unwrap_err().exit_code(),
                2,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn alert_command_paths() {
        for good in ["/usr/local/sbin/breakglass-page", "/opt/x_1/a.b+c-d", "/p"] {
            assert_eq!(check_alert_command(Path::new(good)).unwrap(), good);
        }
        let long = format!("/{}", "a".repeat(200));
        for bad in [
            "page",
            "./page",
            "/",
            "/usr/bin/",
            "/usr//bin/x",
            "/usr/./x",
            "/usr/../x",
            "/usr/bin/curl -m 5",
            "/x;id",
            "/x$(id)",
            "/x'y",
            "/x%u",
            "/x\ny",
            "/é",
            &long,
        ] {
            let err = check_alert_command(Path::new(bad)).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
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
}
