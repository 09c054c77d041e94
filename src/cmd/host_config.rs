//! `host-config`: write everything a host image needs to trust the CA (and its backups) into
//! `--out`, from public keys and the ledger's revocations alone (see [`crate::hostconf`] for
//! the files), and say what was written. The CA key: the token, or `STATE/ca.pub` when it is
//! not plugged in ([`crate::cmd::ca_source`]). With `--ca-pubkey FILE...` ([`run_from_files`],
//! the image builder's side): the keys from those files and the KRL from `--krl FILE` (or an
//! empty one), with no state directory and no token; the same inputs give the same bytes.

use std::path::{Path, PathBuf};

use ssh_key::public::KeyData;
use ssh_key::PublicKey;

use crate::cli::HostConfigArgs;
use crate::cmd::ca_source::{read_key_line, CaFile, CaSource};
use crate::cmd::Globals;
use crate::config::CONFIG_FILE;
use crate::error::{Error, Result};
use crate::export::{self, CaLine};
use crate::fsx;
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
    if let Some(path) = &args.krl {
        return Err(Error::usage(format!(
            "--krl {} goes with --ca-pubkey: here the KRL is made from the ledger in {}",
            path.shown(),
            g.state_dir.shown()
        ))
        .with_hint("leave --krl out: this state directory's revocations go into the bundle's KRL ('breakglass-ca krl -o FILE' writes the same ones); --krl FILE is for building from key files without the state directory"));
    }
    let options = Options::check(args)?;
    g.check_output_dir(&args.out)?;
    check_out_is_new(&args.out)?;
    let config = g.config()?;
    let source = g.ca_source(config.as_ref(), true)?;
    say(source.describe(&g.state_dir, config.as_ref()));
    let public = source.public_key();
    let cas = export::bundle_lines(public, config.as_ref(), &g.state_dir, &mut say)?;
    let revoked = crate::cmd::ledger(&g.state_dir).revoked(&crate::key::fingerprint(public))?;
    let revoked_cas = export::revoked_ca_keys(&revoked.ca_keys)?;
    export::trusted(&cas, &revoked_cas)?;
    let krl = Krl::from_revoked(&revoked, public, krl_generated(&revoked)?)?;
    let krl_row = match &revoked.newest {
        None => format!("KRL version {}: nothing revoked", krl.version),
        Some(newest) => format!(
            "KRL version {}: {} revocation record(s), the newest at {}",
            krl.version,
            revoked.records,
            text::Esc(newest)
        ),
    };
    let host = options.host(cas, revoked_cas, krl);
    hostconf::write_tree(&args.out, &host.output_files()?)?;
    let note = config.is_none().then(|| {
        format!(
            "Note: no {CONFIG_FILE} in {}, so no backup CAs are included.",
            g.state_dir.shown()
        )
    });
    summary(args, &host, &krl_row, note);
    crate::cmd::krl::warn_if_version_ahead(&revoked);
    Ok(())
}

/// `host-config --ca-pubkey FILE...`: the same files from public key files alone (an image
/// builder's copies), this CA first, then the backup CAs; the KRL is `--krl FILE` as given, or
/// the empty KRL the custodian's `host-config` writes when nothing is revoked. No state
/// directory, config.toml, ca.pub, ledger or token is read. `state_dirs` are the `--state-dir`s
/// given (or `BREAKGLASS_CA_STATE_DIR`), `ca_before` a `--ca` before the command: either makes
/// it unclear which CA is meant, and is refused.
pub fn run_from_files(
    state_dirs: &[PathBuf],
    ca_before: Option<&str>,
    args: &HostConfigArgs,
) -> Result<()> {
    refuse_state_options(state_dirs, ca_before, args)?;
    let options = Options::check(args)?;
    if args.ca_pubkey.iter().filter(|p| is_stdin(p)).count() > 1 {
        return Err(
            Error::usage("--ca-pubkey - was given twice; stdin can be read once")
                .with_hint("give one of the keys on stdin, the others as files"),
        );
    }
    if args.krl.as_deref().is_some_and(is_stdin) {
        return Err(
            Error::usage("--krl needs a file: a KRL is binary, not read from stdin").with_hint(
                "write the custodian's KRL to a file first, e.g. --krl breakglass-ca.krl",
            ),
        );
    }
    // The usual state directory, if it can be told: never read, but never written into.
    let usual_state = crate::config::state_dir(None).ok();
    if let Some(state) = &usual_state {
        fsx::check_outside_state_dir(&args.out, state)?;
    }
    check_out_is_new(&args.out)?;
    let keys = read_ca_pubkeys(&args.ca_pubkey)?;
    let source = CaSource::Files(
        keys.iter()
            .map(|(path, k)| CaFile {
                path: path.clone(),
                key: k.key_data().clone(),
            })
            .collect(),
    );
    say(source.describe(Path::new(""), None));
    if let Some(state) = usual_state.filter(|s| s.exists()) {
        say(format!(
            "note: with --ca-pubkey, the state directory {} is not read: the bundle trusts the keys given here, and its KRL is --krl's (or empty)",
            state.shown()
        ));
    }
    let mut cas = vec![CaLine {
        line: crate::key::openssh_line(source.public_key())?,
        key: source.public_key().clone(),
    }];
    for (path, k) in &keys[1..] {
        let (line, replaced) = export::backup_line(k)?;
        if let Some(comment) = replaced {
            say(format!(
                "note: --ca-pubkey {} has a comment that is not plain text ({}); it is used as '{}' ({})",
                path.shown(),
                export::shown_comment(&comment),
                export::BACKUP_COMMENT,
                export::COMMENT_RULE
            ));
        }
        cas.push(CaLine {
            line,
            key: k.key_data().clone(),
        });
    }
    let (krl, revoked_cas, krl_row, note) = match &args.krl {
        None => (
            Krl::from_revoked(
                &Revoked {
                    ca_fingerprint: crate::key::fingerprint(source.public_key()),
                    ..Revoked::default()
                },
                source.public_key(),
                0,
            )?,
            Vec::new(),
            "KRL version 0: nothing revoked (no --krl given)".to_string(),
            Some("Note: no --krl given, so the KRL revokes nothing. If the custodian has revoked anything, give their current KRL with --krl FILE ('breakglass-ca krl -o FILE'), or install it on the hosts later: sh install.sh --krl FILE.".to_string()),
        ),
        Some(path) => {
            let (krl, row) = read_krl(path, &cas)?;
            let revoked = revoked_by(&krl, &cas)?;
            if revoked.len() == cas.len() {
                return Err(Error::refused(format!(
                    "--krl {} revokes every CA key given ({}): hosts would trust no CA",
                    path.shown(),
                    cas.iter()
                        .map(CaLine::fingerprint)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .with_hint("ask the custodian for the current CA keys: the backup CA that replaces a revoked one goes in with --ca-pubkey"));
            }
            (krl, revoked, row, None)
        }
    };
    let host = options.host(cas, revoked_cas, krl);
    hostconf::write_tree(&args.out, &host.output_files()?)?;
    summary(args, &host, &krl_row, note);
    Ok(())
}

fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}

/// With `--ca-pubkey`, no `--state-dir` and no `--ca` (nor their environment variables): the
/// key files say which CA this is, and a state directory or token would say it too.
fn refuse_state_options(
    state_dirs: &[PathBuf],
    ca_before: Option<&str>,
    args: &HostConfigArgs,
) -> Result<()> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if let Some(dir) = state_dirs.first() {
        let given = if set("BREAKGLASS_CA_STATE_DIR") {
            "BREAKGLASS_CA_STATE_DIR"
        } else {
            "--state-dir"
        };
        return Err(Error::usage(format!(
            "--ca-pubkey gives the CA key, but {given} names the state directory {} too: which CA is meant is unclear",
            dir.shown()
        ))
        .with_hint(format!("to build from the key files alone, leave {given} out (a state directory is never read with --ca-pubkey); to build from that state directory, leave --ca-pubkey out")));
    }
    let ca = ca_before
        .or(args.token.ca.as_deref())
        .filter(|s| !s.trim().is_empty());
    if ca.is_some() {
        let given = if set("BREAKGLASS_CA") {
            "BREAKGLASS_CA"
        } else {
            "--ca"
        };
        return Err(Error::usage(format!(
            "--ca-pubkey gives the CA key, but {given} names a token too: which CA is meant is unclear"
        ))
        .with_hint(format!("to build from the key files alone, leave {given} out (no token is opened with --ca-pubkey); to build from the token, leave --ca-pubkey out")));
    }
    Ok(())
}

/// `--out` must not exist yet.
fn check_out_is_new(out: &Path) -> Result<()> {
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(Error::usage(format!(
            "{} already exists; refusing to write into it",
            out.shown()
        ))
        .with_hint(
            "give --out a new directory (an older bundle is best removed or kept aside, not mixed)",
        ));
    }
    Ok(())
}

/// Every `--ca-pubkey` file (see [`read_key_line`]), a key sshd can read, each key once.
fn read_ca_pubkeys(paths: &[PathBuf]) -> Result<Vec<(PathBuf, PublicKey)>> {
    let mut keys: Vec<(PathBuf, PublicKey)> = Vec::new();
    for path in paths {
        let key = read_key_line(path, "--ca-pubkey")?;
        if let Some(why) = crate::key::sshd_cannot_read(&key) {
            return Err(Error::usage(format!(
                "--ca-pubkey {}: sshd cannot read this key ({why})",
                path.shown()
            ))
            .with_hint("give the CA's public key line exactly as 'breakglass-ca pubkey' prints it (or as the key sheet shows it)"));
        }
        if let Some((first, _)) = keys.iter().find(|(_, k)| k.key_data() == key.key_data()) {
            return Err(Error::usage(format!(
                "--ca-pubkey {} holds the same key as --ca-pubkey {} ({})",
                path.shown(),
                first.shown(),
                crate::key::fingerprint(key.key_data())
            ))
            .with_hint("give each CA once: this CA first, then each backup CA"));
        }
        keys.push((path.clone(), key));
    }
    Ok(keys)
}

/// `--krl FILE`, checked: a KRL [`Krl::decode`] reads, byte for byte as breakglass-ca writes
/// it (so the hosts get exactly that file), a version `install.sh` accepts, and one that
/// names only these CA keys (its comment's fingerprint and its certificate sections). Also
/// the summary's row.
fn read_krl(path: &Path, cas: &[CaLine]) -> Result<(Krl, String)> {
    let bytes = fsx::read_file_limited(path, fsx::limit::KRL, "KRL")?
        .ok_or_else(|| Error::file("read the KRL", path, std::io::ErrorKind::NotFound.into()))?;
    let hint = "give the KRL file the custodian made ('breakglass-ca krl -o FILE', or the breakglass-ca.krl of their host-config bundle), as it is";
    let name = format!("--krl {}", path.shown());
    let (krl, layout) = Krl::decode_layout(&bytes).map_err(|e| e.about(&name).with_hint(hint))?;
    if krl.encode()? != bytes {
        return Err(Error::refused(format!(
            "{name} is a KRL, but not laid out as breakglass-ca writes one (not in canonical form)"
        ))
        .with_hint(hint));
    }
    if !plausible_version(krl.version) {
        return Err(Error::refused(format!(
            "{name} is KRL version {}, which no breakglass-ca KRL has (0, or the newest revocation's UTC time as YYYYMMDDHHMMSS): install.sh would refuse it",
            krl.version
        ))
        .with_hint(hint));
    }
    let fingerprints: Vec<String> = cas.iter().map(CaLine::fingerprint).collect();
    let given = fingerprints.join(", ");
    let other_ca = |fp: &str| {
        Error::refused(format!(
            "{name} is a KRL of the CA {fp}, which is none of the --ca-pubkey keys ({given})"
        ))
        .with_hint("ask the custodian for this CA's KRL ('breakglass-ca krl -o FILE' in its state directory), or check the --ca-pubkey files")
    };
    if let Some(fp) = krl.comment.strip_prefix("breakglass-ca CA ") {
        if !fingerprints.iter().any(|f| f == fp) {
            return Err(other_ca(&text::escape(fp)));
        }
    }
    for section in &krl.certificates {
        if let Some(ca) = &section.ca {
            if !cas.iter().any(|c| &c.key == ca) {
                return Err(other_ca(&crate::key::fingerprint(ca)));
            }
        }
    }
    let serials = layout.serials();
    let keys = layout.explicit_keys + layout.sha1_fingerprints + layout.sha256_fingerprints;
    let what = if layout.is_empty() {
        "nothing revoked".to_string()
    } else {
        format!(
            "revokes {serials} serial(s), {} key ID(s), {keys} key(s)",
            layout.key_ids
        )
    };
    let row = format!(
        "KRL version {}, from {} as given: {what}",
        krl.version,
        path.shown()
    );
    Ok((krl, row))
}

/// The CA keys of `cas` that `krl` revokes outright: left out of the bundle, named in its
/// comments, as the custodian's `host-config` does for the CA keys its ledger revokes.
fn revoked_by(krl: &Krl, cas: &[CaLine]) -> Result<Vec<KeyData>> {
    let mut out = Vec::new();
    for ca in cas {
        if krl.check_key(&ca.key)?.is_some() {
            out.push(ca.key.clone());
        }
    }
    Ok(out)
}

/// A KRL version breakglass-ca writes: 0 (nothing revoked), or a UTC time from 2000 on as the
/// number YYYYMMDDHHMMSS (what `install.sh` accepts).
fn plausible_version(version: u64) -> bool {
    let digits = version.to_string();
    version == 0
        || digits.len() == 14
            && chrono::NaiveDateTime::parse_from_str(&digits, "%Y%m%d%H%M%S")
                .is_ok_and(|t| t.and_utc().timestamp() >= 946_684_800)
}

/// The options both ways share, checked: the accounts with their principals, the ssh
/// directory, the alarm.
struct Options {
    users: Vec<(String, Vec<String>)>,
    ssh_dir: String,
    alert: Option<Alert>,
}

impl Options {
    fn check(args: &HostConfigArgs) -> Result<Options> {
        let users = check_users(&args.users)?;
        let principals = if args.principals.is_empty() {
            None
        } else {
            Some(check_principals(&args.principals)?)
        };
        let ssh_dir = check_ssh_dir(&args.ssh_dir)?;
        let alert = check_alert(args)?;
        Ok(Options {
            users: users
                .into_iter()
                .map(|u| {
                    let p = principals.clone().unwrap_or_else(|| vec![u.clone()]);
                    (u, p)
                })
                .collect(),
            ssh_dir,
            alert,
        })
    }

    fn host(self, cas: Vec<CaLine>, revoked_cas: Vec<KeyData>, krl: Krl) -> HostConfig {
        HostConfig {
            ssh_dir: self.ssh_dir,
            users: self.users,
            cas,
            revoked_cas,
            krl,
            alert: self.alert,
        }
    }
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
/// `krl` is the KRL's row; `note` is said after the alarm's line.
fn summary(args: &HostConfigArgs, host: &HostConfig, krl: &str, note: Option<String>) {
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
    row(KRL_FILE, krl);
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
    if let Some(note) = note {
        say(note);
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
    use crate::hostconf::tests::{ca, P256};

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi vault-b";

    #[test]
    fn krl_versions_install_sh_accepts() {
        for good in [0, 20000101000000, 20261201103316, 99991231235959] {
            assert!(plausible_version(good), "{good}");
        }
        for bad in [
            1,
            19991231235959,
            20261301000000,
            20260230000000,
            20261201240000,
            2026120110331,
            202612011033160,
            u64::MAX,
        ] {
            assert!(!plausible_version(bad), "{bad}");
        }
    }

    /// `--krl FILE`: a KRL of these CAs, in the bytes breakglass-ca writes; the CA keys it
    /// revokes outright found; another CA's, a non-canonical one, a bad version refused.
    #[test]
    fn a_given_krl_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (primary, backup) = (ca(P256), ca(ED));
        let cas = [primary.clone(), backup.clone()];
        let revoked = Revoked {
            ca_fingerprint: primary.fingerprint(),
            serials: vec![(3, 5)],
            key_ids: vec!["alice#3:INC-1".into()],
            ca_keys: vec![ED.rsplit_once(' ').unwrap().0.into()],
            version: 20261201103316,
            ..Revoked::default()
        };
        let krl = Krl::from_revoked(&revoked, &primary.key, 1796121196).unwrap();
        let path = dir.path().join("ok.krl");
        std::fs::write(&path, krl.encode().unwrap()).unwrap();
        let (read, row) = read_krl(&path, &cas).unwrap();
        assert_eq!(read, krl);
        assert!(
            row.ends_with("as given: revokes 3 serial(s), 1 key ID(s), 1 key(s)"),
            "{row}"
        );
        assert_eq!(revoked_by(&read, &cas).unwrap(), vec![backup.key.clone()]);
        // The backup alone: the KRL is not its own (its comment and section name the primary).
        let err = read_krl(&path, &cas[1..]).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "is a KRL of the CA {}, which is none of the --ca-pubkey keys ({})",
                primary.fingerprint(),
                backup.fingerprint()
            )),
            "{err}"
        );
        assert_eq!(err.exit_code(), 1);
        // A certificate section under another CA, whatever the comment says.
        let mut other = krl.clone();
        other.certificates[0].ca = Some(backup.key.clone());
        other.comment = "hand-made".into();
        std::fs::write(&path, other.encode().unwrap()).unwrap();
        assert!(read_krl(&path, &cas[..1]).is_err());
        assert!(read_krl(&path, &cas).is_ok());
        // An empty KRL says nothing about a CA but by its comment.
        let empty = Krl {
            comment: "ssh-keygen".into(),
            ..Krl::default()
        };
        std::fs::write(&path, empty.encode().unwrap()).unwrap();
        let (_, row) = read_krl(&path, &cas[1..]).unwrap();
        assert!(row.ends_with("as given: nothing revoked"), "{row}");
        // Two explicit-key sections (canonical: one): read, but not as breakglass-ca writes.
        let mut bytes = empty.encode().unwrap();
        for key in [&primary.key, &backup.key] {
            let blob = PublicKey::from(key.clone()).to_bytes().unwrap();
            let mut body = (blob.len() as u32).to_be_bytes().to_vec();
            body.extend_from_slice(&blob);
            bytes.push(crate::krl::KRL_SECTION_EXPLICIT_KEY);
            bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&body);
        }
        assert_eq!(Krl::decode(&bytes).unwrap().explicit_keys.len(), 2);
        std::fs::write(&path, &bytes).unwrap();
        let err = read_krl(&path, &cas).unwrap_err();
        assert!(err.to_string().contains("not in canonical form"), "{err}");
        // A version no breakglass-ca KRL has.
        let high = Krl {
            version: u64::MAX,
            ..empty.clone()
        };
        std::fs::write(&path, high.encode().unwrap()).unwrap();
        let err = read_krl(&path, &cas).unwrap_err();
        assert!(
            err.to_string().contains("which no breakglass-ca KRL has"),
            "{err}"
        );
        // Not a KRL at all, and a missing file.
        std::fs::write(&path, P256).unwrap();
        let err = read_krl(&path, &cas).unwrap_err();
        assert!(err.to_string().starts_with("--krl "), "{err}");
        assert!(err.hint().is_some());
        assert!(read_krl(&dir.path().join("none.krl"), &cas).is_err());
    }

    /// A KRL whose figures do not fit a number: every serial of one CA, and one more under
    /// any CA. The summary says so instead of adding them up past the largest number (a panic,
    /// or in a release build a wrapped "0 serial(s)" for a KRL that revokes everything).
    #[test]
    fn a_krl_revoking_every_serial_is_summed_without_overflow() {
        use crate::krl::CertificateSection;
        let dir = tempfile::tempdir().unwrap();
        let primary = ca(P256);
        let krl = Krl {
            version: 20261201103316,
            comment: format!("breakglass-ca CA {}", primary.fingerprint()),
            certificates: vec![
                CertificateSection {
                    ca: Some(primary.key.clone()),
                    serials: vec![(1, u64::MAX)],
                    key_ids: Vec::new(),
                },
                CertificateSection {
                    ca: None,
                    serials: vec![(7, 7)],
                    key_ids: Vec::new(),
                },
            ],
            ..Krl::default()
        };
        let path = dir.path().join("all.krl");
        std::fs::write(&path, krl.encode().unwrap()).unwrap();
        let (_, row) = read_krl(&path, &[primary]).unwrap();
        assert!(
            row.contains(&format!("revokes {} serial(s)", u64::MAX)),
            "{row}"
        );
    }

    #[test]
    fn ca_pubkey_files_are_each_one_key_sshd_reads() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let a = write("a.pub", &format!("{P256}\n"));
        let b = write("b.pub", &format!("# the vault's token\n{ED}\n"));
        let again = write("again.pub", &P256.replace("breakglass-ca", "other comment"));
        let keys = read_ca_pubkeys(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].1.comment(), "vault-b");
        let err = read_ca_pubkeys(&[a.clone(), b, again]).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "--ca-pubkey {} holds the same key as --ca-pubkey {}",
                dir.path().join("again.pub").display(),
                a.display()
            )),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
        // An Ed25519 small-order point: ssh-key reads it, sshd must not trust it.
        let small = write(
            "small.pub",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA x\n",
        );
        let err = read_ca_pubkeys(&[small]).unwrap_err();
        assert!(
            err.to_string().contains("sshd cannot read this key"),
            "{err}"
        );
    }

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
