//! `revoke`: one revocation record in the ledger (serials, key IDs, requester keys, whole CAs),
//! under the same exclusive lock as `mint`, without the token: the CA key comes from the state
//! directory's `ca.pub`. Every target is checked against the ledger first; a refusal writes
//! nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use ssh_key::public::KeyData;
use ssh_key::PublicKey;

use crate::cli::{CaTarget, RevokeArgs};
use crate::cmd::{read_input, Globals};
use crate::config::{Config, CONFIG_FILE};
use crate::error::{Error, Result};
use crate::issue::rfc3339;
use crate::key;
use crate::ledger::revocation::{self, merge_ranges, RecordKind};
use crate::ledger::{Locked, Record, Revocation, Revoked, RevokedKey};
use crate::text::{Esc, ShowPath};
use crate::ui;

/// A requester key or CA key to revoke, with where it came from (for messages).
struct KeyTarget {
    key: RevokedKey,
    from: String,
    /// For a CA: which one it is (this CA, a backup CA, a retired CA).
    role: &'static str,
    /// The comment of its line in the file (untrusted text), for the summary.
    comment: String,
}

/// How many notes of one kind are printed before the rest are counted.
const NOTES_SHOWN: usize = 5;

pub fn run(g: &Globals, args: &RevokeArgs) -> Result<()> {
    let reason = check_reason(&args.reason)?;
    if args.serials.is_empty()
        && args.key_ids.is_empty()
        && args.requester_keys.is_empty()
        && args.cas.is_empty()
    {
        return Err(Error::usage("nothing to revoke").with_hint(
            "name what to revoke: --serial N[-M], --key-id ID, --requester-key FILE or --ca [FILE] (see 'breakglass-ca revoke --help')",
        ));
    }
    if args.serials.iter().any(|(lo, _)| *lo == 0) {
        return Err(Error::refused(
            "serial 0 was never issued by this CA (its serials start at 1)",
        )
        .with_hint("a certificate with serial 0 was not made by breakglass-ca ('ssh-keygen -s' uses 0 by default): revoke its CA, or its requester's key with --requester-key"));
    }
    let mut key_ids: Vec<String> = Vec::new();
    for id in &args.key_ids {
        if id.is_empty() {
            return Err(Error::usage("--key-id is empty")
                .with_hint("give a key ID exactly as 'breakglass-ca log show N' shows it"));
        }
        if !key_ids.contains(id) {
            key_ids.push(id.clone());
        }
    }
    let config = g.config()?.ok_or_else(|| {
        Error::usage(format!(
            "{} holds no configuration, so it has no ledger to record a revocation in",
            g.state_dir.shown()
        ))
        .with_hint("use the state directory where 'breakglass-ca init' created this CA (--state-dir), or restore it from the backup kept with the token")
    })?;
    let ca = super::log::ca_key(g, Some(&config))?;
    let requesters = read_requester_keys(&args.requester_keys, &config)?;
    let cas = read_ca_keys(g, &args.cas, &config, &ca)?;

    let ledger = crate::cmd::ledger(&g.state_dir).require_checkpoints(config.checkpoints);
    let mut locked = ledger.lock(&config.fingerprint)?;
    let entries = locked.entries()?;
    let issued: Vec<&Record> = entries.iter().filter_map(|(_, e)| e.issued()).collect();
    let last_serial = locked.tail().serial.saturating_sub(1);
    let earlier: Vec<(usize, &Revocation)> = entries
        .iter()
        .filter_map(|(_, e)| e.revocation())
        .enumerate()
        .map(|(i, v)| (i + 1, v))
        .collect();

    let mut skipped: Vec<String> = Vec::new();
    let serials = check_serials(
        &args.serials,
        last_serial,
        &earlier,
        args.force,
        &mut skipped,
    )?;
    let key_ids = check_key_ids(key_ids, &issued, &earlier, args.force, &mut skipped)?;
    let mut never_issued: Vec<String> = Vec::new();
    let requesters = check_requesters(
        requesters,
        &issued,
        &earlier,
        args.force,
        &mut skipped,
        &mut never_issued,
    )?;
    let cas = check_cas(cas, &earlier, args.force, &mut skipped)?;
    for s in &skipped {
        ui::say(format!("already revoked, skipped: {s}"));
    }
    if serials.is_empty() && key_ids.is_empty() && requesters.is_empty() && cas.is_empty() {
        drop(locked);
        return ui::print("nothing changed: everything given was already revoked, and the earlier records stand; no record was written");
    }
    let revoked_at = revocation_time(&locked, earlier.last().map(|(_, v)| *v))?;
    let v = Revocation {
        kind: RecordKind::Revocation,
        format: revocation::FORMAT,
        serials,
        key_ids,
        requester_keys: sorted(requesters.iter().map(|k| k.key.clone())),
        ca_keys: sorted(cas.iter().map(|k| k.key.clone())),
        reason,
        revoked_at: rfc3339(revoked_at),
        revoked_by: os_user(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        ca_fingerprint: config.fingerprint.clone(),
        last_serial,
        prev_hash: locked.tail().prev_hash.clone(),
    };
    let appended = locked.append_revocation(&v)?;
    if let Some(repaired) = &appended.repaired {
        ui::say(format!("NOTE: {repaired}"));
    }
    for fp in never_issued.iter().take(NOTES_SHOWN) {
        ui::say(format!("note: no certificate of this CA was issued for {fp}; revoked anyway: hosts with the KRL refuse every certificate for it, from any CA, and mint refuses it"));
    }
    if never_issued.len() > NOTES_SHOWN {
        ui::say(format!(
            "note: and {} more requester key(s) no certificate of this CA was issued for, revoked the same way",
            never_issued.len() - NOTES_SHOWN
        ));
    }
    let all: Vec<&Revocation> = earlier.iter().map(|(_, v)| *v).chain([&v]).collect();
    let merged = Revoked::merge(&config.fingerprint, all);
    let lines = entries.len() + 1;
    drop(locked);
    let mut out = summary(
        &v,
        &issued,
        &requesters,
        &cas,
        &merged,
        lines,
        earlier.len() + 1,
    );
    if cas.iter().any(|t| t.role == "this CA") {
        let ca_pub = g.state_dir.join(crate::config::CA_PUB_FILE);
        out.push_str(&format!(
            "\nIts ledger does not hold this revocation: a KRL made there alone would lift it on hosts (install.sh refuses such a KRL). Before any 'krl -o' or 'host-config' there, revoke this CA there too: 'breakglass-ca --state-dir STATE2 add-backup-ca {0}', then 'breakglass-ca --state-dir STATE2 revoke --ca {0} --reason ...' (skip the add-backup-ca if it lists this CA already).",
            ca_pub.shown()
        ));
    }
    ui::print(out)
}

/// The reason, as `mint` takes it: trimmed, not empty, plain text on one line.
fn check_reason(reason: &str) -> Result<String> {
    let reason = reason.trim().to_string();
    if reason.is_empty() {
        return Err(Error::refused("--reason is empty").with_hint(
            "say why this is revoked, e.g. --reason 'INC-1234 certificate sent to the wrong person'",
        ));
    }
    if !crate::text::is_safe(&reason) {
        return Err(Error::refused(format!(
            "--reason holds a control or invisible character: {}",
            Esc(&reason)
        ))
        .with_hint("the reason goes into the ledger: write it as plain text on one line, e.g. --reason 'INC-1234 leaked'"));
    }
    Ok(reason)
}

/// Each `--requester-key FILE` read (bounded) as a list of public key lines, like an
/// `authorized_keys` file (blank lines and `#` comments skipped; `log --revoked-keys` writes
/// one), each line checked as `mint` checks a requester key: a public key, not a private key,
/// a certificate or garbage, and not this CA's own key (a refusal names the line); each key
/// once.
fn read_requester_keys(files: &[PathBuf], config: &Config) -> Result<Vec<KeyTarget>> {
    let mut out: Vec<KeyTarget> = Vec::new();
    for file in files {
        let about = |e: Error| e.about(&format!("--requester-key {}", file.shown()));
        let text =
            crate::fsx::read_text(file, crate::fsx::limit::KEY_LIST, "requester's public key")
                .map_err(about)?;
        let on_line =
            |n: usize, e: Error| e.about(&format!("--requester-key {}, line {n}", file.shown()));
        let lines = key_list_lines(&text, on_line)?;
        if lines.is_empty() {
            return Err(about(Error::refused("it holds no public key line").with_hint(
                "give the requester's .pub file, or a file of public key lines, one per line (as 'breakglass-ca log --revoked-keys' writes it)",
            )));
        }
        for (n, line) in lines {
            let about = |e: Error| on_line(n, e);
            let key = key::parse_requester_key(line).map_err(about)?;
            if key::fingerprint(key.key_data()) == config.fingerprint {
                return Err(about(
                    Error::refused("this is the CA's own key, not a requester's")
                        .with_hint("to revoke the whole CA, use --ca"),
                ));
            }
            let target = KeyTarget {
                key: RevokedKey::of(key.key_data())?,
                from: format!("{}, line {n}", file.shown()),
                role: "requester key",
                comment: key.comment().to_string(),
            };
            if !out.iter().any(|k| k.key == target.key) {
                out.push(target);
            }
        }
    }
    Ok(out)
}

/// The key lines of a requester key list with their line numbers (from 1): each line
/// trimmed, blank lines and `#` comments skipped. A private key anywhere in it is refused
/// first, naming its line (`on_line` says where); the caller refuses a list without any.
fn key_list_lines(
    text: &str,
    on_line: impl Fn(usize, Error) -> Error,
) -> Result<Vec<(usize, &str)>> {
    let numbered = || text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    if let Some((n, _)) = numbered().find(|(_, l)| key::holds_private_key(l)) {
        return Err(on_line(
            n,
            Error::refused("this is a PRIVATE key: it must never leave the requester's machine")
                .with_hint("the requester should generate a new key pair (this one is exposed) and send only the .pub file"),
        ));
    }
    Ok(numbered()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect())
}

/// Each `--ca [FILE]`: this CA (no FILE), else the CA key in FILE, which must be this CA, a
/// backup CA of config.toml or a retired CA of this state directory; each once.
fn read_ca_keys(
    g: &Globals,
    files: &[CaTarget],
    config: &Config,
    this: &KeyData,
) -> Result<Vec<KeyTarget>> {
    let mut out: Vec<KeyTarget> = Vec::new();
    for target in files {
        let (key, from) = if let CaTarget::File(file) = target {
            let about = |e: Error| e.about(&format!("--ca {}", file.shown()));
            let text = read_input(file, "CA public key").map_err(about)?;
            let key = key::backup_ca_key(&text, file).map_err(about)?;
            (key.key_data().clone(), file.shown().to_string())
        } else {
            (this.clone(), "this state directory's ca.pub".to_string())
        };
        let comment = String::new();
        let fp = key::fingerprint(&key);
        let role = if fp == config.fingerprint {
            "this CA"
        } else if is_backup(config, &key) {
            "a backup CA of config.toml"
        } else if is_retired(&g.state_dir, &key)? {
            "a retired CA of this state directory"
        } else {
            return Err(Error::refused(format!(
                "{from} holds the CA key {fp}, which is not this CA ({}), nor a backup CA in {CONFIG_FILE}, nor a retired CA of {}",
                config.fingerprint,
                g.state_dir.shown()
            ))
            .with_hint(format!(
                "a backup CA is revoked from the state directory that trusts it: add it first with 'breakglass-ca add-backup-ca {from}', then revoke it; or use the state directory of that CA (--state-dir)"
            )));
        };
        let target = KeyTarget {
            key: RevokedKey::of(&key)?,
            from,
            role,
            comment,
        };
        if !out.iter().any(|k| k.key == target.key) {
            out.push(target);
        }
    }
    Ok(out)
}

fn is_backup(config: &Config, key: &KeyData) -> bool {
    config
        .backup_ca_pubkeys
        .iter()
        .filter_map(|l| PublicKey::from_openssh(l.trim()).ok())
        .any(|k| k.key_data() == key)
}

/// Whether `key` is in a `ca-retired-<time>.pub` of the state directory (`init --force`).
fn is_retired(dir: &Path, key: &KeyData) -> Result<bool> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(false);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("ca-retired-") && name.ends_with(".pub")) {
            continue;
        }
        let Some(bytes) =
            crate::fsx::read_private(&e.path(), crate::fsx::limit::KEY_FILE, "retired CA key")?
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let found = key::key_lines(&text, key::Lines::Commented)
            .iter()
            .filter_map(|l| key::parse_line(l).ok())
            .any(|k| k.key_data() == key);
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The earlier revocation (its number and record) for which `f` is true.
fn earlier_by<'a>(
    earlier: &'a [(usize, &'a Revocation)],
    f: impl Fn(&Revocation) -> bool,
) -> Option<(usize, &'a Revocation)> {
    earlier.iter().find(|(_, v)| f(v)).map(|(k, v)| (*k, *v))
}

/// The refusal for a target already revoked by revocation `k`.
fn already(what: &str, k: usize, v: &Revocation) -> Error {
    Error::refused(format!(
        "{what} is already revoked: revocation R{k}, {}",
        v.when_why()
    ))
    .with_hint(format!(
        "the earlier record stands ('breakglass-ca log show --revocation {k}'); run again with --force to skip what is already revoked and record the rest"
    ))
}

/// The serial ranges given, checked: each issued by this CA (1..=`last`); what is already
/// revoked is refused, or with `force` left out. Returns the ranges to record, merged.
fn check_serials(
    given: &[(u64, u64)],
    last: u64,
    earlier: &[(usize, &Revocation)],
    force: bool,
    skipped: &mut Vec<String>,
) -> Result<Vec<(u64, u64)>> {
    let given = merge_ranges(given.to_vec());
    if let Some((_, hi)) = given.iter().find(|(_, hi)| *hi > last) {
        let newest = match last {
            0 => "this CA has issued no certificate yet".to_string(),
            n => format!("the newest serial is {n}"),
        };
        return Err(Error::refused(format!(
            "serial {hi} was never issued by this CA: {newest}"
        ))
        .with_hint("check the serial in sshd's log (\"serial N\") and 'breakglass-ca log'; a certificate with a serial this ledger does not hold came from another CA, or the ledger was cut back"));
    }
    let mut out = Vec::new();
    for (lo, hi) in given {
        let mut run: Option<(u64, u64)> = None;
        for s in lo..=hi {
            match earlier_by(earlier, |v| v.revokes_serial(s)) {
                Some((k, v)) if !force => return Err(already(&format!("serial {s}"), k, v)),
                Some((k, _)) => {
                    skipped.push(format!("serial {s} (revocation R{k})"));
                    if let Some(r) = run.take() {
                        out.push(r);
                    }
                }
                None => {
                    run = Some(match run {
                        Some((a, _)) => (a, s),
                        None => (s, s),
                    })
                }
            }
        }
        if let Some(r) = run {
            out.push(r);
        }
    }
    Ok(merge_ranges(out))
}

fn check_key_ids(
    given: Vec<String>,
    issued: &[&Record],
    earlier: &[(usize, &Revocation)],
    force: bool,
    skipped: &mut Vec<String>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for id in given {
        if !issued.iter().any(|r| r.key_id == id) {
            return Err(Error::refused(format!(
                "no certificate in the ledger has the key ID \"{}\"",
                Esc(&id)
            ))
            .with_hint("give the key ID exactly as 'breakglass-ca log show N' (or sshd's log: ID \"...\") shows it, or revoke by --serial"));
        }
        match earlier_by(earlier, |v| v.revokes_key_id(&id)) {
            Some((k, v)) if !force => {
                return Err(already(&format!("key ID \"{}\"", Esc(&id)), k, v))
            }
            Some((k, _)) => skipped.push(format!("key ID \"{}\" (revocation R{k})", Esc(&id))),
            None => out.push(id),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The requester keys given, checked against the earlier revocations. A key no certificate of
/// this CA was issued for is revoked too (a compromised key revoked ahead, or one carried over
/// from another state directory's ledger): its fingerprint goes into `never_issued`.
fn check_requesters(
    given: Vec<KeyTarget>,
    issued: &[&Record],
    earlier: &[(usize, &Revocation)],
    force: bool,
    skipped: &mut Vec<String>,
    never_issued: &mut Vec<String>,
) -> Result<Vec<KeyTarget>> {
    let mut out = Vec::new();
    for t in given {
        let fp = &t.key.fingerprint;
        match earlier_by(earlier, |v| v.revokes_requester(fp)) {
            Some((k, v)) if !force => {
                return Err(already(&format!("the requester key {fp}"), k, v))
            }
            Some((k, _)) => skipped.push(format!("requester key {fp} (revocation R{k})")),
            None => {
                if !issued.iter().any(|r| r.requester_fingerprint == *fp) {
                    never_issued.push(fp.clone());
                }
                out.push(t)
            }
        }
    }
    Ok(out)
}

fn check_cas(
    given: Vec<KeyTarget>,
    earlier: &[(usize, &Revocation)],
    force: bool,
    skipped: &mut Vec<String>,
) -> Result<Vec<KeyTarget>> {
    let mut out = Vec::new();
    for t in given {
        let fp = &t.key.fingerprint;
        match earlier_by(earlier, |v| v.revokes_ca(fp)) {
            Some((k, v)) if !force => return Err(already(&format!("the CA {fp}"), k, v)),
            Some((k, _)) => skipped.push(format!("CA {fp} (revocation R{k})")),
            None => out.push(t),
        }
    }
    Ok(out)
}

fn sorted(keys: impl Iterator<Item = RevokedKey>) -> Vec<RevokedKey> {
    let mut v: Vec<RevokedKey> = keys.collect();
    v.sort();
    v.dedup();
    v
}

/// The time of the new revocation: now, in whole seconds, not earlier than the newest ledger
/// line (the clock rule of `mint`), and in a later second than the newest revocation (waiting
/// up to a second for the next one), so the KRL version only goes up.
fn revocation_time(locked: &Locked<'_>, newest: Option<&Revocation>) -> Result<DateTime<Utc>> {
    let parse = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let line = locked.tail().last_issued_at.as_deref().and_then(parse);
    let revoked = newest.and_then(|v| parse(&v.revoked_at));
    let too_early = |now: DateTime<Utc>, what: &str, then: DateTime<Utc>| {
        Error::refused(format!(
            "this laptop's clock ({}) is earlier than the {what} ({}): time went backwards",
            rfc3339(now),
            rfc3339(then)
        ))
        .with_hint("set the clock to the real time (compare with a phone), then revoke again: the KRL version is the revocation's time and must only go up")
    };
    for _ in 0..3 {
        let now = Utc::now().trunc_subsecs(0);
        check_clock_plausible(now)?;
        if let Some(then) = line.filter(|t| now < *t) {
            return Err(too_early(now, "newest ledger record", then));
        }
        match revoked {
            Some(then) if now < then => return Err(too_early(now, "newest revocation", then)),
            Some(then) if now == then => {
                // The same second as the newest revocation: wait for the next one.
                let to_next = 1_000_000_000u32.saturating_sub(Utc::now().timestamp_subsec_nanos());
                std::thread::sleep(Duration::from_nanos(u64::from(to_next) + 1_000_000));
            }
            _ => return Ok(now),
        }
    }
    Err(
        Error::refused("the clock did not move past the newest revocation's second")
            .with_hint("check this laptop's clock, then revoke again"),
    )
}

/// A revocation time hosts accept as a KRL version: install.sh takes 0 or a time
/// YYYYMMDDHHMMSS from the year 2000 on, so a clock before that (a laptop whose clock battery
/// died) is refused rather than recorded.
fn check_clock_plausible(now: DateTime<Utc>) -> Result<()> {
    use chrono::Datelike;
    if now.year() >= 2000 {
        return Ok(());
    }
    Err(Error::refused(format!(
        "this laptop's clock ({}) is before the year 2000",
        rfc3339(now)
    ))
    .with_hint("set the clock to the real time (compare with a phone), then revoke again: the KRL version is the revocation's time, and hosts refuse a KRL dated before 2000"))
}

/// The OS user running this: the name of the real uid in /etc/passwd, else `uid N`.
fn os_user() -> String {
    let uid = rustix::process::getuid().as_raw();
    let name =
        crate::fsx::read_file_limited(Path::new("/etc/passwd"), 4 * 1024 * 1024, "user database")
            .ok()
            .flatten()
            .and_then(|bytes| {
                String::from_utf8_lossy(&bytes).lines().find_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let id = f.nth(1)?;
                    (id.parse::<u32>().ok() == Some(uid) && !name.is_empty())
                        .then(|| name.to_string())
                })
            });
    name.unwrap_or_else(|| format!("uid {uid}"))
}

/// What was revoked, the new KRL version, and the next step.
fn summary(
    v: &Revocation,
    issued: &[&Record],
    requesters: &[KeyTarget],
    cas: &[KeyTarget],
    merged: &Revoked,
    line: usize,
    k: usize,
) -> String {
    let mut out = format!(
        "Revoked (revocation R{k}, ledger line {line}, {} by {}):\n",
        v.revoked_at,
        Esc(&v.revoked_by)
    );
    const SHOWN: usize = 20;
    let mut serial_lines = Vec::new();
    for (lo, hi) in &v.serials {
        for s in *lo..=*hi {
            if serial_lines.len() == SHOWN {
                break;
            }
            let r = issued.iter().find(|r| r.serial == s);
            serial_lines.push(match r {
                Some(r) => format!(
                    "  serial {s}: key ID \"{}\", requester {} ({}), valid until {}",
                    Esc(&r.key_id),
                    Esc(&r.requester_comment),
                    r.requester_fingerprint,
                    Esc(&r.valid_before)
                ),
                None => format!("  serial {s}"),
            });
        }
    }
    let count: u64 = v.serials.iter().map(|(lo, hi)| hi - lo + 1).sum();
    for l in &serial_lines {
        out.push_str(l);
        out.push('\n');
    }
    if count > serial_lines.len() as u64 {
        out.push_str(&format!(
            "  ... and {} more serial(s) ('breakglass-ca log show --revocation {k}')\n",
            count - serial_lines.len() as u64
        ));
    }
    for id in &v.key_ids {
        let serials: Vec<String> = issued
            .iter()
            .filter(|r| r.key_id == *id)
            .map(|r| r.serial.to_string())
            .collect();
        out.push_str(&format!(
            "  key ID \"{}\": serial(s) {}\n",
            Esc(id),
            serials.join(", ")
        ));
    }
    for t in requesters {
        let certs: Vec<&&Record> = issued
            .iter()
            .filter(|r| r.requester_fingerprint == t.key.fingerprint)
            .collect();
        let name = certs
            .last()
            .map(|r| r.requester_comment.as_str())
            .unwrap_or(&t.comment);
        let name = match name.is_empty() {
            true => String::new(),
            false => format!(", {}", Esc(name)),
        };
        let here = match certs.is_empty() {
            true => "no certificate of this CA was issued for it".to_string(),
            false => format!(
                "in this ledger serial(s) {}",
                certs
                    .iter()
                    .map(|r| r.serial.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        out.push_str(&format!(
            "  requester key {} ({}{name}): every certificate for it, from any CA; {here}\n",
            t.key.fingerprint,
            key::key_type(&t.key.key),
        ));
    }
    for t in cas {
        out.push_str(&format!(
            "  CA {} ({}, from {}): every certificate it signed\n",
            t.key.fingerprint,
            t.role,
            Esc(&t.from)
        ));
    }
    out.push_str(&format!("Reason: {}\n", Esc(&v.reason)));
    out.push_str(&format!(
        "KRL version: {} ({} revocation record(s) in this ledger)\n",
        merged.version, merged.records
    ));
    out.push_str("Next: write the KRL, 'breakglass-ca krl -o breakglass-ca.krl', and install it on every host (docs/runbook.md, \"Revoke a certificate\").\n");
    out.push_str("This record is not yet signed by the token: keep a copy of the ledger outside this laptop (docs/ledger.md, section 3.3).");
    if cas.iter().any(|t| t.role == "this CA") {
        out.push_str("\nThis CA is revoked: mint now refuses to issue from it. Switch to the backup CA's state directory (docs/runbook.md).");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_before_2000_is_refused() {
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        check_clock_plausible(at("2000-01-01T00:00:00Z")).unwrap();
        check_clock_plausible(at("2026-12-01T10:33:16Z")).unwrap();
        let err = check_clock_plausible(at("1999-12-31T23:59:59Z")).unwrap_err();
        assert!(err
            .to_string()
            .contains("(1999-12-31T23:59:59Z) is before the year 2000"));
        assert!(check_clock_plausible(at("1970-01-01T00:00:00Z")).is_err());
    }

    #[test]
    fn a_key_list_is_read_like_authorized_keys() {
        let at = |n: usize, e: Error| e.about(&format!("line {n}"));
        let text = "# carried over\n\n  ssh-ed25519 AAAA a  \n#x\nssh-rsa BBBB b\n";
        assert_eq!(
            key_list_lines(text, at).unwrap(),
            [(3, "ssh-ed25519 AAAA a"), (5, "ssh-rsa BBBB b")]
        );
        let err = key_list_lines(
            "ssh-ed25519 AAAA\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n",
            at,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 2: this is a PRIVATE key"), "{err}");
        for empty in ["", "\n\n", "# only a comment\n"] {
            assert!(key_list_lines(empty, at).unwrap().is_empty());
        }
    }
}
