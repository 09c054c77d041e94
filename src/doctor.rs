//! `doctor`: everything a custodian should know before an emergency (the yearly dry run) and
//! at its start, as findings, each with a level, one line saying what was found and, where
//! something is to be done, the next step. Built from the [`StatusReport`] (the token, the
//! key against `config.toml` and `ca.pub`, the PIN, the clock, the ledger) and a few checks
//! of its own: the YubiKey's firmware and policies, the modes and owners of the state files,
//! the PIN file, and the copy of the state directory at `backup_dir`. Nothing is printed
//! here (`cmd/doctor.rs` renders) and nothing is changed.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::backend::PinStatus;
use crate::config::{CA_PUB_FILE, CONFIG_FILE};
use crate::ledger::{checkpoint, Entry, Ledger, LEDGER_FILE, LOCK_FILE};
use crate::status::{Problem, StatusReport, CLOCK_HINT};
use crate::text::{Esc, ShowPath};

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Worth fixing, but nothing stops an emergency mint.
    Warning,
    /// Fix it before an emergency mint (or it will fail, or its evidence would be lost).
    Serious,
}

impl Level {
    /// As the text output shows it.
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "WARNING",
            Level::Serious => "SERIOUS",
        }
    }
}

/// One finding: what was checked, what was found (one line; the untrusted parts already
/// escaped), and the next step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// The short name of the check (`token`, `clock`, `ledger`…).
    pub check: &'static str,
    pub what: String,
    pub next: Option<String>,
}

fn ok(check: &'static str, what: impl Into<String>) -> Finding {
    Finding {
        level: Level::Ok,
        check,
        what: what.into(),
        next: None,
    }
}

fn warning(check: &'static str, what: impl Into<String>, next: impl Into<String>) -> Finding {
    Finding {
        level: Level::Warning,
        check,
        what: what.into(),
        next: Some(next.into()),
    }
}

fn serious(check: &'static str, what: impl Into<String>, next: impl Into<String>) -> Finding {
    Finding {
        level: Level::Serious,
        check,
        what: what.into(),
        next: Some(next.into()),
    }
}

impl Finding {
    #[must_use]
    fn then(mut self, next: impl Into<String>) -> Self {
        self.next = Some(next.into());
        self
    }
}

/// What `doctor` looks at besides the report.
pub struct Inputs<'a> {
    pub report: &'a StatusReport,
    pub state_dir: &'a Path,
    /// `backup_dir` of config.toml.
    pub backup_dir: Option<&'a Path>,
    /// The PIN file that `mint` would read (`pin-source` of the URI, else `--pin-file`).
    pub pin_file: Option<&'a Path>,
    /// Why `mint` would refuse to read any PIN file (the URI's `pin-source` and `--pin-file`
    /// name different files).
    pub pin_conflict: Option<Problem>,
    /// This process's user.
    pub uid: u32,
}

/// Every finding, in the order a custodian goes through them: the state directory and its
/// files, config.toml, the token and its key, the PIN, the clock, the ledger, the backup.
pub fn check(inputs: &Inputs<'_>) -> Vec<Finding> {
    let r = inputs.report;
    let mut out = Vec::new();
    out.extend(file_modes(inputs.state_dir, inputs.uid));
    out.extend(config(r));
    out.extend(token(r));
    if let Some(pin) = &r.token.pin {
        out.push(pin_tries(PinStatus {
            tries_left: pin.tries_left,
            count_low: pin.count_low,
        }));
    }
    out.extend(token_details(&r.token.details));
    if let Some(path) = inputs.pin_file {
        out.push(pin_file(path));
    }
    if let Some(p) = &inputs.pin_conflict {
        out.push(serious(
            "PIN file",
            format!("mint would refuse: {}", p.error),
            p.hint.clone().unwrap_or_default(),
        ));
    }
    out.push(clock(r));
    out.extend(ledger(r));
    out.push(backup(inputs.state_dir, inputs.backup_dir));
    out
}

/// How many findings have each level: (serious, warnings, ok).
pub fn counts(findings: &[Finding]) -> (usize, usize, usize) {
    let n = |l: Level| findings.iter().filter(|f| f.level == l).count();
    (n(Level::Serious), n(Level::Warning), n(Level::Ok))
}

/// The state directory and its files: not changeable by anyone but this user (a group- or
/// world-writable file or directory, or one owned by another user, is serious: config.toml
/// names the module this tool loads, the ledger is the evidence), no link for a state file,
/// the ledger and checkpoints not readable by others (reasons may be sensitive).
pub fn file_modes(dir: &Path, uid: u32) -> Vec<Finding> {
    const CHECK: &str = "files";
    // Through a link, as every command follows one: the real directory is checked (and the
    // directories above the link, by `above`).
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => {
            return vec![serious(
                CHECK,
                format!("the state directory {} cannot be examined: {e}", dir.shown()),
                "point --state-dir (or BREAKGLASS_CA_STATE_DIR) at the directory where 'breakglass-ca init' was run, or restore it from the backup",
            )]
        }
    };
    if !meta.is_dir() {
        return vec![serious(
            CHECK,
            format!("the state directory {} is not a directory", dir.shown()),
            "point --state-dir at the directory where 'breakglass-ca init' was run",
        )];
    }
    let mut out = Vec::new();
    if meta.uid() != uid {
        out.push(serious(
            CHECK,
            format!(
                "the state directory {} belongs to another user (uid {})",
                dir.shown(),
                meta.uid()
            ),
            format!(
                "run breakglass-ca as the custodian who owns it, or after checking its files: chown -R $(id -u) {}",
                dir.shown()
            ),
        ));
    }
    if let Some(who) = writers(meta.mode()) {
        out.push(serious(
            CHECK,
            format!(
                "the state directory {} can be changed by {who}",
                dir.shown()
            ),
            format!(
                "check its files (compare with the backup), then: chmod 700 {}",
                dir.shown()
            ),
        ));
    }
    out.extend(above(dir, uid));
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.push(serious(
                CHECK,
                format!("the state directory {} cannot be listed: {e}", dir.shown()),
                format!("make it yours and readable: chmod 700 {}", dir.shown()),
            ));
            return out;
        }
    };
    let mut files = 0usize;
    for entry in entries.take(10_000).flatten() {
        files += 1;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let state_file = [
            CONFIG_FILE,
            CA_PUB_FILE,
            LEDGER_FILE,
            checkpoint::FILE,
            LOCK_FILE,
        ]
        .contains(&name.as_str());
        if meta.file_type().is_symlink() {
            if state_file {
                out.push(serious(
                    CHECK,
                    format!("{} is a symbolic link: breakglass-ca refuses to use it", path.shown()),
                    "put the file itself there (check where the link points), or restore the state directory from the backup",
                ));
            }
            continue;
        }
        if meta.uid() != uid && state_file {
            out.push(serious(
                CHECK,
                format!(
                    "{} belongs to another user (uid {})",
                    path.shown(),
                    meta.uid()
                ),
                format!("after checking it: chown $(id -u) {}", path.shown()),
            ));
        }
        if let Some(who) = writers(meta.mode()) {
            out.push(serious(
                CHECK,
                format!("{} can be changed by {who}", path.shown()),
                format!(
                    "check it (compare with the backup), then: chmod go-w {}",
                    path.shown()
                ),
            ));
        } else if meta.mode() & 0o044 != 0 && (name == LEDGER_FILE || name == checkpoint::FILE) {
            out.push(warning(
                CHECK,
                format!(
                    "{} can be read by other users (mode {:04o}): the reasons in it may be sensitive",
                    path.shown(),
                    meta.mode() & 0o7777
                ),
                format!("chmod 600 {}", path.shown()),
            ));
        }
    }
    if out.is_empty() {
        out.push(ok(
            CHECK,
            format!(
                "the state directory {} and its {files} file(s) can be changed by you alone",
                dir.shown()
            ),
        ));
    }
    out
}

/// The directories above the state directory, as given and as its real path (a link on the
/// way chooses it too): whoever can change one can rename the state directory (or the link)
/// away and put another (another CA, another ledger) in its place. Each must belong to root
/// or this user, and be writable by no one else unless it is sticky (as /tmp: others cannot
/// rename what is not theirs).
fn above(dir: &Path, uid: u32) -> Vec<Finding> {
    const CHECK: &str = "files";
    const REPLACE: &str = "they can replace the state directory (another CA, another ledger)";
    let mut parents: Vec<std::path::PathBuf> = Vec::new();
    for path in [std::path::absolute(dir), std::fs::canonicalize(dir)]
        .into_iter()
        .flatten()
    {
        for parent in path.ancestors().skip(1) {
            if !parents.iter().any(|p| p == parent) {
                parents.push(parent.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    for parent in &parents {
        let parent = parent.as_path();
        let Ok(meta) = std::fs::metadata(parent) else {
            continue;
        };
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.uid() != 0 && meta.uid() != uid {
            out.push(serious(
                CHECK,
                format!(
                    "the directory {} above the state directory belongs to another user (uid {}): {REPLACE}",
                    parent.shown(),
                    meta.uid()
                ),
                "move the state directory under a directory that only you and root can change (your home directory), after checking it against the backup",
            ));
        } else if let Some(who) = writers(meta.mode()).filter(|_| !sticky) {
            out.push(serious(
                CHECK,
                format!(
                    "the directory {} above the state directory can be changed by {who}: {REPLACE}",
                    parent.shown()
                ),
                format!(
                    "check the state directory against the backup, then: chmod go-w {} (or move the state directory under a directory only you can change)",
                    parent.shown()
                ),
            ));
        }
    }
    out
}

/// Who besides the owner can write a file of this mode.
fn writers(mode: u32) -> Option<&'static str> {
    match mode & 0o022 {
        0 => None,
        0o020 => Some("its group"),
        0o002 => Some("all users"),
        _ => Some("its group and all users"),
    }
}

fn config(r: &StatusReport) -> Vec<Finding> {
    const CHECK: &str = "config";
    let c = &r.config;
    if let Some(e) = &c.error {
        return vec![serious(
            CHECK,
            format!("config.toml cannot be used: {}", e.error),
            e.hint
                .clone()
                .unwrap_or_else(|| "restore config.toml from the backup".into()),
        )];
    }
    if !c.found {
        return vec![serious(
            CHECK,
            format!("there is no config.toml in {}", Esc(&r.state_dir)),
            "point --state-dir (or BREAKGLASS_CA_STATE_DIR) at the directory where 'breakglass-ca init' was run, or restore it from the backup: without it mint refuses (serials would restart at 1)",
        )];
    }
    vec![ok(
        CHECK,
        format!(
            "config.toml names the CA {} (created {})",
            Esc(c.fingerprint.as_deref().unwrap_or_default()),
            Esc(c.created.as_deref().unwrap_or_default())
        ),
    )]
}

/// The token found, its key equal to config.toml's fingerprint and to ca.pub.
fn token(r: &StatusReport) -> Vec<Finding> {
    let t = &r.token;
    let mut out = Vec::new();
    match &t.error {
        Some(e) => out.push(serious(
            "token",
            format!("the CA token could not be opened: {}", e.error),
            e.hint.clone().unwrap_or_else(|| {
                "plug the token in (the right one: compare its label or serial with the paper in the vault) and run doctor again".into()
            }),
        )),
        None => out.push(ok(
            "token",
            format!(
                "{}, {}",
                t.token.as_deref().unwrap_or_default(),
                t.key.as_deref().unwrap_or_default()
            ),
        )),
    }
    let fp = t.fingerprint.as_deref().unwrap_or_default();
    match r.config.matches_token {
        Some(true) => out.push(ok(
            "key",
            format!("the key on the token is the CA of config.toml ({fp}): compare it with the key sheet"),
        )),
        Some(false) => out.push(serious(
            "key",
            format!(
                "the key on the token ({fp}) is not the CA config.toml names ({})",
                Esc(r.config.fingerprint.as_deref().unwrap_or_default())
            ),
            "check you took the right token from the vault (the key sheet has its fingerprint); a different CA needs its own --state-dir",
        )),
        None => {}
    }
    let p = &r.ca_pub;
    let shown = Path::new(&r.state_dir).join(CA_PUB_FILE);
    const RESTORE: &str = "restore ca.pub from the backup of the state directory and check its fingerprint (ssh-keygen -l -f) against the key sheet; until then hosts and auditors may be given the wrong key";
    if let Some(e) = &p.error {
        out.push(serious(
            "ca.pub",
            format!("{} cannot be read: {}", shown.shown(), e.error),
            RESTORE,
        ));
    } else if !p.found {
        out.push(warning(
            "ca.pub",
            format!("there is no {}", shown.shown()),
            "restore it from the backup of the state directory ('init' writes it): 'log verify' and the token-free exports need it without the token",
        ));
    } else if p.matches_config == Some(false) {
        out.push(serious(
            "ca.pub",
            format!(
                "{} holds the key {}, not the CA config.toml names: it was edited or replaced",
                shown.shown(),
                p.fingerprint.as_deref().unwrap_or_default()
            ),
            RESTORE,
        ));
    } else if p.matches_token == Some(false) {
        out.push(serious(
            "ca.pub",
            format!(
                "{} holds the key {}, not the key on the token",
                shown.shown(),
                p.fingerprint.as_deref().unwrap_or_default()
            ),
            RESTORE,
        ));
    } else {
        let compared = p.matches_config.or(p.matches_token).is_some();
        out.push(ok(
            "ca.pub",
            format!(
                "{} holds the{} key{}",
                shown.shown(),
                if compared { " same" } else { "" },
                match (p.matches_config, p.matches_token) {
                    (Some(true), Some(true)) => " as config.toml and the token".to_string(),
                    (Some(true), _) => " as config.toml".to_string(),
                    (_, Some(true)) => " as the token".to_string(),
                    _ => format!(
                        " {} (not compared: neither config.toml nor the token could be read)",
                        p.fingerprint.as_deref().unwrap_or_default()
                    ),
                }
            ),
        ));
    }
    out
}

/// The PIN tries, as `mint` judges them ([`crate::policy::pin_tries`]): its refusals (1 try
/// left, blocked) are serious.
pub fn pin_tries(pin: PinStatus) -> Finding {
    const CHECK: &str = "PIN";
    match crate::policy::pin_tries(pin, false) {
        Err(e) => serious(
            CHECK,
            format!("{} ({pin})", e.to_string().trim_start_matches("refused: ")),
            e.hint().unwrap_or_default(),
        ),
        Ok(()) if pin.count_low => warning(
            CHECK,
            format!("{pin}"),
            "confirm the PIN with the second custodian before typing it: every wrong try brings the block closer",
        ),
        Ok(()) => ok(CHECK, format!("{pin}")),
    }
}

/// The token's own facts (`CaKey::info().details`): a YubiKey's firmware, its EUCLEAK
/// warning, and the slot's PIN and touch policies (`never` for either is a warning).
pub fn token_details(details: &[(String, String)]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (name, value) in details {
        let shown = Esc(value).to_string();
        match name.as_str() {
            "firmware" => out.push(ok("YubiKey", format!("firmware {shown}"))),
            "WARNING" => out.push(warning(
                "YubiKey",
                shown,
                "go on with the emergency; afterwards keep the YubiKey in the vault and plan a new CA on a YubiKey with firmware 5.7 or later",
            )),
            "policies" => {
                let mut fine = true;
                if value.contains("PIN Never") {
                    fine = false;
                    out.push(warning(
                        "YubiKey",
                        format!("the CA slot's PIN policy is never ({shown}): whoever holds the YubiKey signs without the PIN"),
                        "plan a new CA key with a PIN policy (breakglass-ca init on a YubiKey sets one; the default is once); keep this one in the vault",
                    ));
                }
                if value.contains("touch Never") {
                    fine = false;
                    out.push(warning(
                        "YubiKey",
                        format!("the CA slot's touch policy is never ({shown}): software on this laptop can sign without a touch while the YubiKey is plugged in"),
                        "plug it in only to mint; plan a new CA key with touch policy always or cached (breakglass-ca init --touch-policy)",
                    ));
                }
                if fine {
                    out.push(ok("YubiKey", format!("policies: {shown}")));
                }
            }
            other => out.push(ok("token", format!("{}: {shown}", Esc(other)))),
        }
    }
    out
}

/// A PIN file must be a plain file that others cannot read (a warning, as `mint` gives it).
pub fn pin_file(path: &Path) -> Finding {
    const CHECK: &str = "PIN file";
    match std::fs::metadata(path) {
        Err(e) => warning(
            CHECK,
            format!("the PIN file {} cannot be examined: {e}", path.shown()),
            "check the path given with --pin-file, BREAKGLASS_CA_PIN_FILE or pin-source=file: (without a PIN file, mint asks for the PIN)",
        ),
        Ok(m) if !m.is_file() => warning(
            CHECK,
            format!("the PIN file {} is not a plain file", path.shown()),
            "give the path of a file whose first line is the PIN, or leave --pin-file out to be asked",
        ),
        Ok(m) if writers(m.mode()).is_some() => warning(
            CHECK,
            format!(
                "the PIN file {} can be changed by {} (mode {:04o}): a wrong PIN put there costs a PIN try at each mint",
                path.shown(),
                writers(m.mode()).unwrap_or_default(),
                m.mode() & 0o7777
            ),
            format!("chmod 600 {}", path.shown()),
        ),
        Ok(m) if m.mode() & 0o044 != 0 => warning(
            CHECK,
            format!(
                "the PIN file {} can be read by other users (mode {:04o})",
                path.shown(),
                m.mode() & 0o7777
            ),
            format!(
                "chmod 600 {}; if others may have read it, change the PIN with the second custodian",
                path.shown()
            ),
        ),
        Ok(_) => ok(
            CHECK,
            format!("the PIN file {} is private to you", path.shown()),
        ),
    }
}

/// This laptop's clock against the newest ledger record: behind it is serious (mint refuses,
/// and a window computed from it would be wrong).
pub fn clock(r: &StatusReport) -> Finding {
    let c = &r.clock;
    let newest = c.newest_record.as_deref().map(Esc);
    match (c.behind, newest) {
        (true, Some(t)) => serious(
            "clock",
            format!(
                "this laptop's clock ({}) is earlier than the newest ledger record ({t})",
                c.now
            ),
            CLOCK_HINT,
        ),
        (_, Some(t)) => ok(
            "clock",
            format!("{} (UTC); the newest ledger record is {t}", c.now),
        )
        .then(
            "compare the clock with a phone (date -u): a wrong clock makes a wrong validity window",
        ),
        (_, None) => ok("clock", format!("{} (UTC); no ledger record yet", c.now)).then(
            "compare the clock with a phone (date -u): a wrong clock makes a wrong validity window",
        ),
    }
}

fn ledger(r: &StatusReport) -> Vec<Finding> {
    const CHECK: &str = "ledger";
    let l = &r.ledger;
    let mut out = Vec::new();
    if let Some(e) = &l.error {
        out.push(serious(
            CHECK,
            format!("the ledger cannot be read: {}", e.error),
            e.hint
                .clone()
                .unwrap_or_else(|| crate::ledger::BROKEN_HINT.into()),
        ));
        return out;
    }
    match l.chain.as_ref().and_then(|c| c.error.as_ref()) {
        Some(e) => out.push(serious(
            CHECK,
            format!("the ledger is damaged: {}", e.error),
            e.hint
                .clone()
                .unwrap_or_else(|| crate::ledger::BROKEN_HINT.into()),
        )),
        None => out.push(
            ok(
                CHECK,
                match &l.newest {
                    Some(n) => format!(
                    "{} certificate(s), the newest serial {} issued {} to {}; the chain is intact",
                    l.records.unwrap_or_default(),
                    n.serial,
                    Esc(&n.issued_at),
                    Esc(&n.requester)
                ),
                    None => "no certificate issued yet (next serial 1)".into(),
                },
            )
            .then("'breakglass-ca log verify' checks every signature too"),
        ),
    }
    if let Some(c) = &l.coverage {
        if c.torn_tail {
            out.push(warning(
                CHECK,
                "the ledger ends in a half-written record from an interrupted mint or revoke",
                "nothing was handed out for it; the next mint sets it aside (ledger.torn-*): keep that file with the ledger",
            ));
        }
        if c.unterminated {
            out.push(warning(
                CHECK,
                "the ledger's last record lost its final newline (an interrupted mint)",
                "its serial stays issued; the next mint restores the newline",
            ));
        }
        if c.uncovered > 0 {
            out.push(warning(
                CHECK,
                format!(
                    "the newest {} of {} record(s) are not yet covered by a token signature",
                    c.uncovered,
                    c.covered + c.uncovered
                ),
                "keep a copy of the ledger outside this laptop (breakglass-ca log export) until the next certificate's ledger binding covers them",
            ));
        }
    }
    if r.ca.revoked == Some(true) {
        out.push(serious(
            "revocations",
            "this CA is revoked in its own ledger: mint refuses to issue from it",
            "use the backup CA with its own --state-dir (runbook, section 3.2)",
        ));
    }
    let v = &r.revocations;
    if v.records > 0 {
        out.push(
            ok(
                "revocations",
                format!(
                    "{} revocation record(s), the newest {}; KRL version {}",
                    v.records,
                    Esc(v.newest.as_deref().unwrap_or_default()),
                    v.krl_version
                ),
            )
            .then(format!(
                "hosts must have KRL version {} or later (breakglass-ca krl -o, then sh install.sh --krl on each host)",
                v.krl_version
            )),
        );
    }
    if let Some(e) = &r.backup_cas_error {
        out.push(warning(
            "backup CAs",
            format!("the backup CAs of config.toml cannot be read: {}", e.error),
            e.hint.clone().unwrap_or_default(),
        ));
    } else if r.config.found && r.backup_cas.is_empty() {
        out.push(
            ok("backup CAs", "no backup CA in config.toml")
                .then("a backup token in another vault is recommended (runbook, section 1.5)"),
        );
    } else {
        for b in &r.backup_cas {
            let what = format!("{} ({}, {})", b.fingerprint, b.algorithm, Esc(&b.comment));
            out.push(match b.revoked {
                true => ok("backup CAs", format!("{what}: REVOKED in this ledger")),
                false => ok("backup CAs", what),
            });
        }
    }
    out
}

/// The copy of the state directory at `backup_dir` must hold the ledger's newest record:
/// the same number of lines, the same last line. A copy that ends earlier is stale (serials
/// would be reissued after a restore), one that holds more means this state directory is
/// the older one; both are serious. A copy that cannot be reached (the stick not mounted) is
/// a warning.
pub fn backup(state_dir: &Path, backup_dir: Option<&Path>) -> Finding {
    const CHECK: &str = "backup";
    const REFRESH: &str = "refresh it after every use: cp -a STATE/. BACKUP/ (runbook, section 1.6), then run doctor again";
    let Some(dir) = backup_dir else {
        return ok(CHECK, "no backup_dir in config.toml: the copy of the state directory is not checked")
            .then("add backup_dir = \"/media/BACKUP/breakglass-ca-state\" (where the copy is kept) to config.toml");
    };
    if dir.is_relative() {
        return warning(
            CHECK,
            format!(
                "backup_dir {} in config.toml is a relative path, so where it points depends on where doctor runs: not checked",
                dir.shown()
            ),
            "give backup_dir as an absolute path (e.g. backup_dir = \"/media/BACKUP/breakglass-ca-state\")",
        );
    }
    if !dir.is_dir() {
        return warning(
            CHECK,
            format!("the backup directory {} is not there", dir.shown()),
            "plug in and mount the backup stick, then run doctor again (or correct backup_dir in config.toml)",
        );
    }
    if let Some(why) = not_a_copy(state_dir, dir) {
        return serious(
            CHECK,
            format!("the backup directory {} {why}: it is no backup", dir.shown()),
            "set backup_dir in config.toml to the copy on the backup stick, and make that copy: cp -a STATE/. BACKUP/ (runbook, section 1.6)",
        );
    }
    let read = |d: &Path| Ledger::new(d).read();
    let live = match read(state_dir) {
        Ok(l) => l,
        Err(_) => {
            return warning(
                CHECK,
                "the backup was not compared: this state directory's ledger cannot be read",
                "see the ledger finding first",
            )
        }
    };
    let copy = match read(dir) {
        Ok(l) => l,
        Err(e) => {
            return serious(
                CHECK,
                format!(
                    "the ledger of the backup {} cannot be read: {e}",
                    dir.shown()
                ),
                REFRESH,
            )
        }
    };
    let name = |lines: &[(String, Entry)]| match lines.last() {
        None => "no record".to_string(),
        Some((_, e)) => match e {
            Entry::Issued(r) => format!("serial {} (line {})", r.serial, lines.len()),
            Entry::Revoked(_) => format!(
                "a revocation after serial {} (line {})",
                e.serial_after(),
                lines.len()
            ),
        },
    };
    let same_at = |i: usize| match (live.get(i), copy.get(i)) {
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    };
    use std::cmp::Ordering;
    match copy.len().cmp(&live.len()) {
        Ordering::Equal if live.is_empty() || same_at(live.len() - 1) => ok(
            CHECK,
            format!(
                "the backup {} holds the ledger's newest record ({})",
                dir.shown(),
                name(&live)
            ),
        ),
        Ordering::Less if copy.is_empty() || same_at(copy.len() - 1) => serious(
            CHECK,
            format!(
                "the backup {} is stale: it ends at {}, the ledger at {} ({} line(s) more)",
                dir.shown(),
                name(&copy),
                name(&live),
                live.len() - copy.len()
            ),
            REFRESH,
        ),
        Ordering::Greater if live.is_empty() || same_at(live.len() - 1) => serious(
            CHECK,
            format!(
                "the backup {} holds {} line(s) this ledger lacks (it ends at {}, the backup at {}): this state directory is older than its backup",
                dir.shown(),
                copy.len() - live.len(),
                name(&live),
                name(&copy)
            ),
            "do not mint from this state directory (its serials would be issued again): compare both, then restore the newer one (ledger.md, section 6)",
        ),
        _ => serious(
            CHECK,
            format!(
                "the backup {} and the ledger differ: the ledger ends at {}, the backup at {}, and their lines disagree",
                dir.shown(),
                name(&live),
                name(&copy)
            ),
            "compare them (diff STATE/ledger.jsonl BACKUP/ledger.jsonl): one of them was edited, or the backup is of another CA; run 'breakglass-ca log verify' on both",
        ),
    }
}

/// Why `backup` is not a copy of `state_dir`: it is the state directory itself (also through
/// a link), or inside it, or its ledger is the same file (a hard or symbolic link); `None`
/// when it may be one.
fn not_a_copy(state_dir: &Path, backup: &Path) -> Option<&'static str> {
    if let (Ok(live), Ok(copy)) = (
        std::fs::canonicalize(state_dir),
        std::fs::canonicalize(backup),
    ) {
        if live == copy {
            return Some("is the state directory itself");
        }
        if copy.starts_with(&live) {
            return Some("is inside the state directory (it is lost with it)");
        }
    }
    let id = |d: &Path| std::fs::metadata(d.join(LEDGER_FILE)).map(|m| (m.dev(), m.ino()));
    match (id(state_dir), id(backup)) {
        (Ok(a), Ok(b)) if a == b => {
            Some("holds the same file as the ledger (a link), not a copy: it changes with it")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_tries_follow_the_mint_policy() {
        let at = |tries: Option<u32>, count_low: bool| {
            pin_tries(PinStatus {
                tries_left: tries,
                count_low,
            })
        };
        let one = at(Some(1), true);
        assert_eq!(one.level, Level::Serious);
        assert!(one.what.contains("1 PIN try left"), "{one:?}");
        assert!(one.next.as_deref().unwrap().contains("--force"), "{one:?}");
        let blocked = at(Some(0), true);
        assert_eq!(blocked.level, Level::Serious);
        assert!(blocked.what.contains("blocked"), "{blocked:?}");
        assert!(
            blocked.next.as_deref().unwrap().contains("PUK"),
            "{blocked:?}"
        );
        assert_eq!(at(Some(2), true).level, Level::Warning);
        assert_eq!(at(Some(3), false).level, Level::Ok);
        assert_eq!(at(None, true).level, Level::Warning);
        assert_eq!(at(None, false).level, Level::Ok);
    }

    #[test]
    fn yubikey_policies_never_are_warnings() {
        let details = |policies: &str| {
            vec![
                ("firmware".to_string(), "5.4.3".to_string()),
                ("policies".to_string(), policies.to_string()),
            ]
        };
        let f = token_details(&details("PIN Once, touch Always"));
        assert_eq!(
            f.iter().map(|f| f.level).collect::<Vec<_>>(),
            [Level::Ok; 2]
        );
        assert!(f[0].what.contains("firmware 5.4.3"));
        for (policies, warned) in [
            ("PIN Never, touch Always", "PIN policy is never"),
            ("PIN Once, touch Never", "touch policy is never"),
        ] {
            let f = token_details(&details(policies));
            assert_eq!(f[1].level, Level::Warning, "{policies}");
            assert!(f[1].what.contains(warned), "{f:?}");
            assert!(f[1].next.is_some());
        }
        let f = token_details(&details("PIN Never, touch Never"));
        assert_eq!(counts(&f), (0, 2, 1));
        // The EUCLEAK warning, and hostile text escaped.
        let f = token_details(&[
            (
                "WARNING".into(),
                "firmware below 5.7 is affected by EUCLEAK".into(),
            ),
            ("policies".into(), "not reported\x1b[2J".into()),
        ]);
        assert_eq!(f[0].level, Level::Warning);
        assert!(!f[1].what.contains('\x1b'), "{f:?}");
    }

    #[test]
    fn file_modes_find_writable_and_linked_state_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let uid = rustix::process::geteuid().as_raw();
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(dir.path(), 0o700);
        for name in [CONFIG_FILE, LEDGER_FILE] {
            std::fs::write(dir.path().join(name), "x").unwrap();
            set(&dir.path().join(name), 0o600);
        }
        let f = file_modes(dir.path(), uid);
        assert_eq!(counts(&f), (0, 0, 1), "{f:?}");
        assert!(f[0].what.contains("2 file(s)"), "{f:?}");
        set(dir.path(), 0o777);
        set(&dir.path().join(LEDGER_FILE), 0o664);
        let f = file_modes(dir.path(), uid);
        assert_eq!(counts(&f).0, 2, "{f:?}");
        assert!(f[0]
            .what
            .contains("can be changed by its group and all users"));
        assert!(f[0].next.as_deref().unwrap().contains("chmod 700"));
        assert!(f[1]
            .what
            .contains("ledger.jsonl can be changed by its group"));
        set(dir.path(), 0o700);
        set(&dir.path().join(LEDGER_FILE), 0o644);
        let f = file_modes(dir.path(), uid);
        assert_eq!(counts(&f), (0, 1, 0), "{f:?}");
        assert!(f[0].next.as_deref().unwrap().contains("chmod 600"));
        std::fs::remove_file(dir.path().join(CA_PUB_FILE)).ok();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join(CA_PUB_FILE)).unwrap();
        let f = file_modes(dir.path(), uid);
        assert!(f
            .iter()
            .any(|f| f.level == Level::Serious && f.what.contains("symbolic link")));
        // Another user's files.
        let f = file_modes(dir.path(), uid.wrapping_add(1));
        assert!(
            f.iter().any(|f| f.what.contains("belongs to another user")),
            "{f:?}"
        );
        let missing = file_modes(&dir.path().join("nope"), uid);
        assert_eq!(missing[0].level, Level::Serious);
    }

    /// The directories above the state directory: whoever can write one can put another
    /// state directory in its place (a sticky directory such as /tmp does not allow that).
    #[test]
    fn a_writable_directory_above_the_state_directory_is_serious() {
        use std::os::unix::fs::PermissionsExt;
        let top = tempfile::tempdir().unwrap();
        let uid = rustix::process::geteuid().as_raw();
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let parent = top.path().join("shared");
        let state = parent.join("state");
        std::fs::create_dir_all(&state).unwrap();
        set(top.path(), 0o700);
        set(&state, 0o700);
        set(&parent, 0o755);
        assert_eq!(counts(&file_modes(&state, uid)), (0, 0, 1));
        set(&parent, 0o775);
        let f = file_modes(&state, uid);
        assert_eq!(counts(&f).0, 1, "{f:?}");
        assert!(
            f[0].what
                .contains("shared above the state directory can be changed by its group"),
            "{f:?}"
        );
        assert!(f[0].what.contains("replace the state directory"), "{f:?}");
        assert!(
            f[0].next.as_deref().unwrap().contains("chmod go-w"),
            "{f:?}"
        );
        // Sticky (as /tmp): others cannot rename what is not theirs.
        set(&parent, 0o1777);
        assert_eq!(counts(&file_modes(&state, uid)), (0, 0, 1));
        // Given through a link: the real directories are checked.
        set(&parent, 0o757);
        let link = top.path().join("link");
        std::os::unix::fs::symlink(&parent, &link).unwrap();
        let f = file_modes(&link.join("state"), uid);
        assert!(
            f.iter().any(|f| f.level == Level::Serious
                && f.what
                    .contains("shared above the state directory can be changed by all users")),
            "{f:?}"
        );
        set(&parent, 0o755);
        // The state directory through a link (mint accepts one): the real directory is
        // checked, and the directories above the link too (whoever can change the link
        // chooses the state directory).
        let open = top.path().join("open");
        std::fs::create_dir(&open).unwrap();
        set(&open, 0o755);
        let via = open.join("state-link");
        std::os::unix::fs::symlink(&state, &via).unwrap();
        let f = file_modes(&via, uid);
        assert_eq!(counts(&f), (0, 0, 1), "{f:?}");
        set(&state, 0o757);
        assert!(file_modes(&via, uid)
            .iter()
            .any(|f| f.what.contains("can be changed by all users")));
        set(&state, 0o700);
        set(&open, 0o757);
        let f = file_modes(&via, uid);
        assert!(
            f.iter().any(|f| f.level == Level::Serious
                && f.what
                    .contains("open above the state directory can be changed by all users")),
            "{f:?}"
        );
        set(&open, 0o755);
    }

    /// backup_dir must be a copy elsewhere: not the state directory itself (or a link to it),
    /// not inside it, its ledger not a link to this one, and not a relative path.
    #[test]
    fn a_backup_that_is_not_a_copy_is_serious() {
        use crate::ledger::testing::issue;
        let top = tempfile::tempdir().unwrap();
        let live = top.path().join("state");
        std::fs::create_dir(&live).unwrap();
        let l = Ledger::new(&live);
        issue(&l, "CA");
        // The state directory itself, and a link to it.
        let f = backup(&live, Some(&live));
        assert_eq!(f.level, Level::Serious, "{f:?}");
        assert!(f.what.contains("is the state directory itself"), "{f:?}");
        let link = top.path().join("stick");
        std::os::unix::fs::symlink(&live, &link).unwrap();
        let f = backup(&live, Some(&link));
        assert_eq!(f.level, Level::Serious, "{f:?}");
        assert!(f.what.contains("is the state directory itself"), "{f:?}");
        // Inside it.
        let inner = live.join("backup");
        std::fs::create_dir(&inner).unwrap();
        std::fs::copy(l.path(), inner.join(LEDGER_FILE)).unwrap();
        let f = backup(&live, Some(&inner));
        assert_eq!(f.level, Level::Serious, "{f:?}");
        assert!(f.what.contains("inside the state directory"), "{f:?}");
        // Its ledger a hard link to this one: it changes with it.
        let copy = top.path().join("copy");
        std::fs::create_dir(&copy).unwrap();
        std::fs::hard_link(l.path(), copy.join(LEDGER_FILE)).unwrap();
        let f = backup(&live, Some(&copy));
        assert_eq!(f.level, Level::Serious, "{f:?}");
        assert!(f.what.contains("the same file as the ledger"), "{f:?}");
        std::fs::remove_file(copy.join(LEDGER_FILE)).unwrap();
        std::fs::copy(l.path(), copy.join(LEDGER_FILE)).unwrap();
        assert_eq!(backup(&live, Some(&copy)).level, Level::Ok);
        // A relative path: it depends on where doctor runs.
        let f = backup(&live, Some(Path::new("copy")));
        assert_eq!(f.level, Level::Warning, "{f:?}");
        assert!(f.what.contains("relative"), "{f:?}");
    }

    #[test]
    fn a_pin_file_others_can_change_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pin");
        std::fs::write(&p, "123456\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o620)).unwrap();
        let f = pin_file(&p);
        assert_eq!(f.level, Level::Warning, "{f:?}");
        assert!(f.what.contains("can be changed by its group"), "{f:?}");
    }

    #[test]
    fn a_pin_file_others_can_read_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pin");
        std::fs::write(&p, "123456\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(pin_file(&p).level, Level::Ok);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let f = pin_file(&p);
        assert_eq!(f.level, Level::Warning);
        assert!(f.what.contains("mode 0640") && f.next.unwrap().contains("chmod 600"));
        assert_eq!(pin_file(&dir.path().join("none")).level, Level::Warning);
        assert_eq!(pin_file(dir.path()).level, Level::Warning);
    }

    #[test]
    fn the_backup_must_hold_the_newest_record() {
        use crate::ledger::testing::{issue, revoke};
        let live = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        let (l, c) = (Ledger::new(live.path()), Ledger::new(copy.path()));
        assert_eq!(backup(live.path(), None).level, Level::Ok);
        let gone = copy.path().join("unmounted");
        assert_eq!(backup(live.path(), Some(&gone)).level, Level::Warning);
        // Both empty: current.
        assert_eq!(backup(live.path(), Some(copy.path())).level, Level::Ok);
        issue(&l, "CA");
        issue(&l, "CA");
        let f = backup(live.path(), Some(copy.path()));
        assert_eq!(f.level, Level::Serious);
        assert!(
            f.what
                .contains("is stale: it ends at no record, the ledger at serial 2"),
            "{f:?}"
        );
        std::fs::copy(l.path(), c.path()).unwrap();
        let f = backup(live.path(), Some(copy.path()));
        assert_eq!(f.level, Level::Ok, "{f:?}");
        assert!(f.what.contains("serial 2 (line 2)"), "{f:?}");
        revoke(&l, "CA", "2026-11-22T00:06:00Z", |_| {});
        let f = backup(live.path(), Some(copy.path()));
        assert_eq!(f.level, Level::Serious);
        assert!(f.what.contains("ends at serial 2 (line 2), the ledger at a revocation after serial 2 (line 3) (1 line(s) more)"), "{f:?}");
        // The copy newer than this state directory.
        std::fs::copy(l.path(), c.path()).unwrap();
        issue(&c, "CA");
        let f = backup(live.path(), Some(copy.path()));
        assert!(
            f.level == Level::Serious && f.what.contains("older than its backup"),
            "{f:?}"
        );
        // The same length, another last line.
        issue(&l, "CA");
        let text = std::fs::read_to_string(c.path()).unwrap();
        std::fs::write(
            c.path(),
            text.replace("\"reason\":\"test\"", "\"reason\":\"TEST\""),
        )
        .unwrap();
        let f = backup(live.path(), Some(copy.path()));
        assert!(
            f.level == Level::Serious && f.what.contains("differ"),
            "{f:?}"
        );
    }
}
