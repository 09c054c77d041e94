//! The ledgers a log is checked against, and the verdict on each certificate event.
//!
//! "Our" CAs are those of every state directory given: its CA (`config.toml`'s fingerprint,
//! else `ca.pub`), its retired CAs (`ca-retired-STAMP.pub`, with `ledger-retired-STAMP.jsonl`),
//! and the backup CAs of its `config.toml`, whose ledgers are in their own state directories
//! (a backup CA whose state directory was not given has no ledger here, which is an alarm
//! of its own for each of its certificates). Every ledger is read with the one parser
//! ([`crate::ledger::parse_ledger`]), every revocation line checked as `krl -o` checks it.
//! Nothing is written, nothing locked, no token opened.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::correlate::{Event, Kind};
use crate::config::{Config, CA_PUB_FILE};
use crate::error::{Error, Result};
use crate::fsx;
use crate::ledger::{self, revocation, Entry, LEDGER_FILE};
use crate::text::{Esc, ShowPath};

/// How a CA is ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The CA of a state directory given.
    This,
    /// A backup CA in a `config.toml` given.
    Backup,
    /// A CA retired by `init --force` in a state directory given.
    Retired,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::This => "this",
            Role::Backup => "backup",
            Role::Retired => "retired",
        }
    }
}

/// What the audit needs of one issuance record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub serial: u64,
    pub key_id: String,
    pub principals: Vec<String>,
    pub valid_after: String,
    pub valid_before: String,
    pub requester: String,
    pub requester_fingerprint: String,
    pub reason: String,
    /// Who approved it (a record of a signed request: `Some`, maybe empty; `None`: minted
    /// without one).
    pub approvers: Option<Vec<String>>,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// One revocation record, as the audit uses it.
#[derive(Clone, Debug)]
struct Revoking {
    at: DateTime<Utc>,
    text: String,
    serials: Vec<(u64, u64)>,
    key_ids: Vec<String>,
    requesters: Vec<String>,
    cas: Vec<String>,
}

/// A revocation that covers a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedAt {
    pub at: DateTime<Utc>,
    /// `on … by … (reason: …)`, escaped.
    pub text: String,
    /// What it names: `its serial`, `its key ID`, `its requester key`, `its CA`.
    pub how: &'static str,
}

/// One ledger file.
#[derive(Debug)]
struct Book {
    path: PathBuf,
    records: HashMap<u64, Issued>,
    revocations: Vec<Revoking>,
}

/// One of our CAs.
#[derive(Debug)]
pub struct Ca {
    pub fingerprint: String,
    pub role: Role,
    /// The state directory that names it.
    pub dir: PathBuf,
    book: Option<Book>,
}

impl Ca {
    /// The ledger file, if one was given.
    pub fn ledger_path(&self) -> Option<&Path> {
        self.book.as_ref().map(|b| b.path.as_path())
    }
}

/// Every CA and ledger an audit checks against.
#[derive(Debug, Default)]
pub struct Ledgers {
    cas: Vec<Ca>,
    by_fp: HashMap<String, usize>,
    /// requester fingerprint -> (CA index, serial), for a revocation line that names a key.
    by_requester: HashMap<String, Vec<(usize, u64)>>,
}

/// Why an event is an alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlarmKind {
    /// A serial of one of our CAs that its ledger does not hold.
    NotInLedger,
    /// The key ID is not the one its serial's record holds.
    KeyIdMismatch,
    /// The certificate's key is not the one its serial's record holds.
    KeyMismatch,
    /// Serial 0 from one of our CAs (breakglass-ca never issues it).
    SerialZero,
    /// Accepted outside the record's validity window (the host's clock is wrong).
    OutsideWindow,
    /// A login as a user the record's principals do not list.
    NotAPrincipal,
    /// Accepted after its revocation (the host lacks the KRL).
    RevokedAccepted,
    /// A certificate of a backup CA whose ledger was not given.
    NoLedger,
    /// An `Accepted publickey … -CERT` line whose certificate cannot be read.
    UnreadableLogin,
}

impl AlarmKind {
    /// The code in `--json`.
    pub fn code(self) -> &'static str {
        match self {
            AlarmKind::NotInLedger => "not-in-ledger",
            AlarmKind::KeyIdMismatch => "key-id-mismatch",
            AlarmKind::KeyMismatch => "key-mismatch",
            AlarmKind::SerialZero => "serial-zero",
            AlarmKind::OutsideWindow => "outside-window",
            AlarmKind::NotAPrincipal => "user-not-a-principal",
            AlarmKind::RevokedAccepted => "revoked-but-accepted",
            AlarmKind::NoLedger => "no-ledger",
            AlarmKind::UnreadableLogin => "unreadable-login",
        }
    }
}

/// One alarm: its kind and what it says (escaped text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alarm {
    pub kind: AlarmKind,
    pub text: String,
}

/// The verdict on one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// At least one [`Alarm`].
    Alarm,
    /// A login with a certificate of the ledger, as its record says.
    Ok,
    /// An offer of a certificate of the ledger, accepted, no login.
    Offer,
    /// sshd refused it.
    Refused,
    /// Signed by a CA that is not ours: counted, not alarmed.
    OtherCa,
    /// sshd named no CA we can compare (a refusal reason alone, an MD5 fingerprint).
    Unknown,
}

impl Verdict {
    pub fn code(self) -> &'static str {
        match self {
            Verdict::Alarm => "alarm",
            Verdict::Ok => "ok",
            Verdict::Offer => "offer",
            Verdict::Refused => "refused",
            Verdict::OtherCa => "other-ca",
            Verdict::Unknown => "unknown",
        }
    }
}

/// An event and what the ledgers say about it.
#[derive(Clone, Debug)]
pub struct Judged {
    pub event: Event,
    pub verdict: Verdict,
    pub alarms: Vec<Alarm>,
    /// Which of our CAs signed it, and the state directory that names it.
    pub ca: Option<(Role, PathBuf)>,
    /// Its serial's record.
    pub record: Option<Issued>,
    /// For a revocation line without a serial: the records of that key (requester, serial).
    pub requesters: Vec<(String, u64)>,
    pub revoked: Option<RevokedAt>,
    /// Something the reader should know (escaped text).
    pub notes: Vec<String>,
}

impl Judged {
    /// The requester as the table shows it: the record's, or those of a revoked key.
    pub fn requester(&self) -> Option<String> {
        if let Some(r) = &self.record {
            return Some(r.requester.clone());
        }
        let mut names: Vec<&str> = self.requesters.iter().map(|(n, _)| n.as_str()).collect();
        names.dedup();
        (!names.is_empty()).then(|| names.join(","))
    }
}

fn time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn ledger_error(path: &Path, line: usize, why: &str) -> Error {
    Error::ledger(format!(
        "the ledger {} is damaged at line {line}: {why}",
        path.shown()
    ))
    .with_hint(ledger::BROKEN_HINT)
}

/// The entries of one ledger file's bytes, revocation lines checked against `ca_fp`.
fn book(path: &Path, bytes: Option<Vec<u8>>, ca_fp: &str) -> Result<Book> {
    let mut b = Book {
        path: path.to_path_buf(),
        records: HashMap::new(),
        revocations: Vec::new(),
    };
    let Some(bytes) = bytes else {
        return Ok(b);
    };
    let lines =
        ledger::parse_ledger(&bytes).map_err(|bad| ledger_error(path, bad.index + 1, &bad.why))?;
    for (i, (line, entry)) in lines.records.into_iter().enumerate() {
        match entry {
            Entry::Issued(r) => {
                let window = time(&r.valid_after).zip(time(&r.valid_before));
                b.records.insert(
                    r.serial,
                    Issued {
                        serial: r.serial,
                        key_id: r.key_id,
                        principals: r.principals,
                        valid_after: r.valid_after,
                        valid_before: r.valid_before,
                        requester: r.requester_comment,
                        requester_fingerprint: r.requester_fingerprint,
                        reason: r.reason,
                        approvers: r
                            .dual_control
                            .as_ref()
                            .map(|d| d.approvers().iter().map(|a| a.to_string()).collect()),
                        window,
                    },
                );
            }
            Entry::Revoked(v) => {
                revocation::check(&line, &v, ca_fp).map_err(|why| {
                    ledger_error(path, i + 1, &format!("a revocation record: {why}"))
                })?;
                let at = time(&v.revoked_at).ok_or_else(|| {
                    ledger_error(path, i + 1, "a revocation record without a time")
                })?;
                b.revocations.push(Revoking {
                    at,
                    text: v.when_why(),
                    serials: v.serials.clone(),
                    key_ids: v.key_ids.clone(),
                    requesters: v
                        .requester_keys
                        .iter()
                        .map(|k| k.fingerprint.clone())
                        .collect(),
                    cas: v.ca_keys.iter().map(|k| k.fingerprint.clone()).collect(),
                });
            }
        }
    }
    Ok(b)
}

/// The fingerprint of the one key in a `ca.pub`-style file, if the file exists.
fn key_file_fp(path: &Path, what: &str) -> Result<Option<String>> {
    let Some(bytes) = fsx::read_private(path, fsx::limit::KEY_FILE, what)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let line = crate::key::one_line(&text, crate::key::Lines::Commented).map_err(|_| {
        Error::config(format!(
            "{} does not hold one public key line",
            path.shown()
        ))
    })?;
    let key = crate::key::parse_line(line)
        .map_err(|e| Error::ssh(format!("cannot read the CA key in {}", path.shown()), e))?;
    Ok(Some(crate::key::fingerprint(key.key_data())))
}

impl Ledgers {
    /// Read every state directory in `dirs` (in order; each once). Notes about what was read
    /// (a backup CA entry's odd comment) go to `note`.
    pub fn load(dirs: &[PathBuf], note: &mut dyn FnMut(String)) -> Result<Ledgers> {
        let mut out = Ledgers::default();
        let mut backups: Vec<(String, PathBuf)> = Vec::new();
        for dir in dirs {
            let config = Config::load(dir)?;
            let pub_fp = key_file_fp(&dir.join(CA_PUB_FILE), "CA public key")?;
            let fp = match (&config, pub_fp) {
                (Some(c), _) => c.fingerprint.clone(),
                (None, Some(fp)) => fp,
                (None, None) => {
                    return Err(Error::usage(format!(
                        "{} holds no CA: no config.toml and no ca.pub",
                        dir.shown()
                    ))
                    .with_hint("give --state-dir the directory where 'breakglass-ca init' was run (once per CA: the primary and each backup)"))
                }
            };
            let path = dir.join(LEDGER_FILE);
            // No lock (as 'log' reads it): never blocked by a mint waiting at its PIN prompt;
            // a record being appended is a torn last line, left out.
            let bytes = crate::ledger::Ledger::new(dir).read_bytes()?;
            let b = book(&path, bytes, &fp)?;
            out.add(fp, Role::This, dir, Some(b))?;
            for (fp, b) in retired(dir)? {
                out.add(fp, Role::Retired, dir, b)?;
            }
            for line in crate::export::backup_cas(config.as_ref(), dir, note)? {
                backups.push((line.fingerprint(), dir.clone()));
            }
        }
        for (fp, dir) in backups {
            if !out.by_fp.contains_key(&fp) {
                out.add(fp, Role::Backup, &dir, None)?;
            }
        }
        for (i, ca) in out.cas.iter().enumerate() {
            if let Some(b) = &ca.book {
                for r in b.records.values() {
                    out.by_requester
                        .entry(r.requester_fingerprint.clone())
                        .or_default()
                        .push((i, r.serial));
                }
            }
        }
        for v in out.by_requester.values_mut() {
            v.sort_unstable();
        }
        Ok(out)
    }

    fn add(&mut self, fp: String, role: Role, dir: &Path, book: Option<Book>) -> Result<()> {
        if let Some(&i) = self.by_fp.get(&fp) {
            let other = &self.cas[i];
            return Err(Error::usage(format!(
                "the CA {} has a ledger in {} and in {}",
                Esc(&fp),
                other.dir.shown(),
                dir.shown()
            ))
            .with_hint(
                "give each CA's state directory once (a copy of a state directory is the same CA)",
            ));
        }
        self.by_fp.insert(fp.clone(), self.cas.len());
        self.cas.push(Ca {
            fingerprint: fp,
            role,
            dir: dir.to_path_buf(),
            book,
        });
        Ok(())
    }

    /// Every CA, in the order read.
    pub fn cas(&self) -> &[Ca] {
        &self.cas
    }

    /// How many issuance records all the ledgers hold.
    pub fn records(&self) -> usize {
        self.cas
            .iter()
            .filter_map(|c| c.book.as_ref())
            .map(|b| b.records.len())
            .sum()
    }

    /// The earliest revocation that covers a certificate (serial, key ID, its key, its CA).
    fn revoked(
        &self,
        ca: usize,
        serial: Option<u64>,
        key_id: Option<&str>,
        key_fp: Option<&str>,
    ) -> Option<RevokedAt> {
        let ca_fp = self.cas[ca].fingerprint.as_str();
        let mut best: Option<RevokedAt> = None;
        let mut consider = |v: &Revoking, how: &'static str| {
            if best.as_ref().is_none_or(|b| v.at < b.at) {
                best = Some(RevokedAt {
                    at: v.at,
                    text: v.text.clone(),
                    how,
                });
            }
        };
        for (i, c) in self.cas.iter().enumerate() {
            let Some(b) = &c.book else { continue };
            for v in &b.revocations {
                if i == ca {
                    if serial
                        .is_some_and(|s| v.serials.iter().any(|(lo, hi)| (*lo..=*hi).contains(&s)))
                    {
                        consider(v, "its serial");
                    }
                    if key_id.is_some_and(|k| v.key_ids.iter().any(|x| x == k)) {
                        consider(v, "its key ID");
                    }
                }
                if key_fp.is_some_and(|k| v.requesters.iter().any(|x| x == k)) {
                    consider(v, "its requester key");
                }
                if v.cas.iter().any(|x| x == ca_fp) {
                    consider(v, "its CA");
                }
            }
        }
        best
    }

    /// The verdict on `event`.
    pub fn judge(&self, event: Event) -> Judged {
        let mut j = Judged {
            event,
            verdict: Verdict::Unknown,
            alarms: Vec::new(),
            ca: None,
            record: None,
            requesters: Vec::new(),
            revoked: None,
            notes: Vec::new(),
        };
        let e = &j.event;
        if e.unreadable {
            j.alarms.push(Alarm {
                kind: AlarmKind::UnreadableLogin,
                text: "a certificate login whose serial and CA the log line does not show (cut short: sshd cuts syslog messages at 500 characters, so a key ID that long hides them)".into(),
            });
            j.verdict = Verdict::Alarm;
            return j;
        }
        let Some(cert) = e.cert.clone() else {
            // A refusal that names only the key (revoked by file) or nothing at all.
            if let Some(fp) = &e.key_fingerprint {
                j.requesters = self
                    .by_requester
                    .get(fp)
                    .into_iter()
                    .flatten()
                    .filter_map(|(ca, serial)| {
                        let r = self.cas[*ca].book.as_ref()?.records.get(serial)?;
                        Some((r.requester.clone(), *serial))
                    })
                    .collect();
                if !j.requesters.is_empty() {
                    let serials: Vec<String> =
                        j.requesters.iter().map(|(_, s)| s.to_string()).collect();
                    j.notes.push(format!(
                        "the key {} is the requester key of serial(s) {} in the ledgers",
                        Esc(fp),
                        serials.join(", ")
                    ));
                }
            } else {
                j.notes.push("sshd did not say which certificate (before OpenSSH 10.1 the serial is in the 'Failed publickey' line, logged at LogLevel VERBOSE)".into());
            }
            // A refusal of a key of the ledgers (revoked by file): theirs; anything else
            // names no CA.
            j.verdict = match (e.kind, j.requesters.is_empty()) {
                (Kind::Refused, false) => Verdict::Refused,
                _ => Verdict::Unknown,
            };
            return j;
        };
        if !cert.ca_fingerprint.starts_with("SHA256:") {
            j.notes.push(format!(
                "the host logs {} fingerprints (FingerprintHash): the CA cannot be compared with ours (SHA256)",
                Esc(cert.ca_fingerprint.split(':').next().unwrap_or_default())
            ));
            j.verdict = Verdict::Unknown;
            return j;
        }
        let Some(&ca) = self.by_fp.get(&cert.ca_fingerprint) else {
            j.verdict = Verdict::OtherCa;
            return j;
        };
        let our = &self.cas[ca];
        j.ca = Some((our.role, our.dir.clone()));
        let accepted = e.kind.accepted();
        let ca_fp = Esc(&cert.ca_fingerprint);
        let mut alarm = |kind, text: String| j.alarms.push(Alarm { kind, text });
        if cert.serial == 0 {
            alarm(AlarmKind::SerialZero, format!("serial 0 from our CA {ca_fp}: breakglass-ca never issues serial 0, so the token signed it outside this tool"));
        }
        match &our.book {
            None => alarm(
                AlarmKind::NoLedger,
                format!(
                    "no ledger given for CA {ca_fp} (a backup CA of {}): add --state-dir with that CA's state directory",
                    our.dir.shown()
                ),
            ),
            Some(book) if cert.serial != 0 => match book.records.get(&cert.serial) {
                None => {
                    let holder = book
                        .records
                        .values()
                        .find(|r| r.key_id == cert.key_id)
                        .map(|r| format!(" (its key ID is that of serial {})", r.serial))
                        .unwrap_or_default();
                    alarm(
                        AlarmKind::NotInLedger,
                        format!(
                            "serial {} of our CA {ca_fp} is in no ledger{holder}: the token signed it outside breakglass-ca, or the ledger {} was cut",
                            cert.serial,
                            book.path.shown()
                        ),
                    );
                }
                Some(r) => {
                    if r.key_id != cert.key_id {
                        alarm(
                            AlarmKind::KeyIdMismatch,
                            format!(
                                "the key ID \"{}\" is not the one serial {} was issued with (\"{}\"): a certificate made outside breakglass-ca",
                                Esc(&cert.key_id),
                                r.serial,
                                Esc(&r.key_id)
                            ),
                        );
                    }
                    if let Some(k) = e.key_fingerprint.as_deref().filter(|k| *k != r.requester_fingerprint) {
                        alarm(
                            AlarmKind::KeyMismatch,
                            format!(
                                "the certificate's key {} is not the requester key of serial {} ({})",
                                Esc(k),
                                r.serial,
                                Esc(&r.requester_fingerprint)
                            ),
                        );
                    }
                    match (accepted, e.time, r.window) {
                        (true, Some(t), Some((after, before)))
                            if t + chrono::Duration::seconds(1) < after || t > before =>
                        {
                            alarm(
                                AlarmKind::OutsideWindow,
                                format!(
                                    "accepted at {} UTC, outside the certificate's window {} to {}: the host's clock is wrong (or the log's)",
                                    t.format("%Y-%m-%d %H:%M:%S"),
                                    Esc(&r.valid_after),
                                    Esc(&r.valid_before)
                                ),
                            );
                        }
                        (true, None, _) => j.notes.push(
                            "the log line has no time (sshd -E): the window was not checked"
                                .into(),
                        ),
                        _ => {}
                    }
                    if e.kind == Kind::Login {
                        if let Some(u) = e.user.as_deref().filter(|u| !r.principals.iter().any(|p| p == u)) {
                            alarm(
                                AlarmKind::NotAPrincipal,
                                format!(
                                    "a login as {}, which is not among the principals of serial {} ({})",
                                    Esc(u),
                                    r.serial,
                                    Esc(&r.principals.join(","))
                                ),
                            );
                        }
                    }
                    j.record = Some(r.clone());
                }
            },
            Some(_) => {}
        }
        j.revoked = self.revoked(
            ca,
            (cert.serial != 0).then_some(cert.serial),
            Some(&cert.key_id),
            e.key_fingerprint.as_deref(),
        );
        if let (true, Some(rv)) = (accepted, &j.revoked) {
            match e.time {
                Some(t) if t >= rv.at => j.alarms.push(Alarm {
                    kind: AlarmKind::RevokedAccepted,
                    text: format!(
                        "accepted at {} UTC although {} was revoked {}: the host does not have the current KRL",
                        t.format("%Y-%m-%d %H:%M:%S"),
                        rv.how,
                        rv.text
                    ),
                }),
                Some(_) => {}
                None => j.notes.push(format!(
                    "{} was revoked {}; the log line has no time (sshd -E), so whether it was accepted after that is unknown",
                    rv.how, rv.text
                )),
            }
        }
        j.alarms.sort_by_key(|a| a.kind);
        j.verdict = if !j.alarms.is_empty() {
            Verdict::Alarm
        } else {
            match e.kind {
                Kind::Login => Verdict::Ok,
                Kind::Offer => Verdict::Offer,
                Kind::Refused => Verdict::Refused,
            }
        };
        j
    }
}

/// The retired CAs of `dir`: `ca-retired-STAMP.pub` and, if it exists,
/// `ledger-retired-STAMP.jsonl`, in name order.
fn retired(dir: &Path) -> Result<Vec<(String, Option<Book>)>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut stamps: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let stamp = name.strip_prefix("ca-retired-")?.strip_suffix(".pub")?;
            Some(stamp.to_string())
        })
        .collect();
    stamps.sort();
    let mut out = Vec::new();
    for stamp in stamps {
        let Some(fp) = key_file_fp(
            &dir.join(format!("ca-retired-{stamp}.pub")),
            "retired CA key",
        )?
        else {
            continue;
        };
        let path = dir.join(format!("ledger-retired-{stamp}.jsonl"));
        let bytes = fsx::read_private(&path, fsx::limit::LEDGER, "retired ledger")?;
        let b = book(&path, bytes, &fp)?;
        out.push((fp, Some(b)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::correlate::Source;
    use super::super::event::Cert;
    use super::super::tests::{fixture_state, CA, KEY};
    use super::*;

    fn at(t: &str) -> Option<DateTime<Utc>> {
        time(t)
    }

    fn login(serial: u64, key_id: &str, user: &str, t: &str) -> Event {
        Event {
            user: Some(user.into()),
            from: Some("192.0.2.1".into()),
            key_fingerprint: Some(KEY.into()),
            cert: Some(Cert {
                key_id: key_id.into(),
                serial,
                ca_type: "ECDSA".into(),
                ca_fingerprint: CA.into(),
            }),
            ..Event::blank(
                Kind::Login,
                at(t),
                Some("h".into()),
                Some(1),
                Source { input: 0, line: 1 },
            )
        }
    }

    fn kinds(j: &Judged) -> Vec<AlarmKind> {
        j.alarms.iter().map(|a| a.kind).collect()
    }

    const ID7: &str = "alice@laptop#7:INC-1234-bastion";

    #[test]
    fn each_alarm_of_the_issue_and_what_is_not_one() {
        let (_dir, l) = fixture_state();
        let ok = l.judge(login(7, ID7, "root", "2026-12-01T12:00:00Z"));
        assert_eq!((ok.verdict, kinds(&ok)), (Verdict::Ok, vec![]));
        assert_eq!(ok.record.as_ref().unwrap().requester, "alice");
        assert_eq!(ok.ca.as_ref().unwrap().0, Role::This);
        // The window's edges, to the second.
        for t in ["2026-12-01T11:54:59Z", "2026-12-01T12:30:00Z"] {
            assert_eq!(
                l.judge(login(7, ID7, "root", t)).verdict,
                Verdict::Ok,
                "{t}"
            );
        }
        let cases: Vec<(Event, Vec<AlarmKind>)> = vec![
            (
                login(7, ID7, "root", "2026-12-01T11:54:58Z"),
                vec![AlarmKind::OutsideWindow],
            ),
            (
                login(7, ID7, "root", "2026-12-01T12:30:01Z"),
                vec![AlarmKind::OutsideWindow],
            ),
            (
                login(7, ID7, "admin", "2026-12-01T12:00:00Z"),
                vec![AlarmKind::NotAPrincipal],
            ),
            (
                login(7, "alice#7:forged", "root", "2026-12-01T12:00:00Z"),
                vec![AlarmKind::KeyIdMismatch],
            ),
            (
                login(4242, ID7, "root", "2026-12-01T12:00:00Z"),
                vec![AlarmKind::NotInLedger],
            ),
            (
                login(0, ID7, "root", "2026-12-01T12:00:00Z"),
                vec![AlarmKind::SerialZero],
            ),
            // Serial 10 was revoked at 11:00.
            (
                login(
                    10,
                    "alice@laptop#10:INC-1234-bastion",
                    "breakglass",
                    "2026-12-01T12:00:00Z",
                ),
                vec![AlarmKind::RevokedAccepted],
            ),
        ];
        for (e, want) in cases {
            let j = l.judge(e.clone());
            assert_eq!(kinds(&j), want, "{e:?}");
            assert_eq!(j.verdict, Verdict::Alarm);
        }
        let j = l.judge(login(4242, ID7, "root", "2026-12-01T12:00:00Z"));
        assert!(
            j.alarms[0].text.contains("its key ID is that of serial 7"),
            "{}",
            j.alarms[0].text
        );
        // Another key under a ledger serial.
        let mut e = login(7, ID7, "root", "2026-12-01T12:00:00Z");
        e.key_fingerprint = Some("SHA256:AAAAbbbbCCCCddddEEEEffffGGGGhhhhIIIIjjjjKKK".into());
        assert_eq!(kinds(&l.judge(e)), vec![AlarmKind::KeyMismatch]);
        // Everything at once, in a fixed order.
        let j = l.judge(login(7, "x", "admin", "2020-01-01T00:00:00Z"));
        assert_eq!(
            kinds(&j),
            vec![
                AlarmKind::KeyIdMismatch,
                AlarmKind::OutsideWindow,
                AlarmKind::NotAPrincipal
            ]
        );
        // A revoked certificate refused, or accepted before its revocation: no alarm.
        let mut e = login(
            10,
            "alice@laptop#10:INC-1234-bastion",
            "breakglass",
            "2026-12-01T12:00:00Z",
        );
        e.kind = Kind::Refused;
        assert_eq!(l.judge(e).verdict, Verdict::Refused);
        // An offer outside the window is an alarm too (the host accepted it), with no user.
        let mut e = login(7, ID7, "root", "2026-12-02T00:00:00Z");
        (e.kind, e.user) = (Kind::Offer, None);
        assert_eq!(kinds(&l.judge(e)), vec![AlarmKind::OutsideWindow]);
        // No time (sshd -E): the window is not checked, a revocation is a note.
        let mut e = login(10, "alice@laptop#10:INC-1234-bastion", "breakglass", "x");
        e.time = None;
        let j = l.judge(e);
        assert_eq!(j.verdict, Verdict::Ok);
        assert!(
            j.notes
                .iter()
                .any(|n| n.contains("whether it was accepted after that is unknown")),
            "{:?}",
            j.notes
        );
        // Another CA: counted, not alarmed; an MD5 fingerprint: unknown.
        let mut e = login(0, "x", "root", "2026-12-01T12:00:00Z");
        e.cert.as_mut().unwrap().ca_fingerprint =
            "SHA256:AAAAbbbbCCCCddddEEEEffffGGGGhhhhIIIIjjjjKKK".into();
        assert_eq!(l.judge(e.clone()).verdict, Verdict::OtherCa);
        e.cert.as_mut().unwrap().ca_fingerprint = "MD5:aa".into();
        assert_eq!(l.judge(e).verdict, Verdict::Unknown);
    }

    #[test]
    fn a_revocation_line_alone_names_the_requesters_of_its_key() {
        let (_dir, l) = fixture_state();
        let e = Event {
            key_fingerprint: Some(KEY.into()),
            reason: Some("revoked (RevokedKeys)".into()),
            ..Event::blank(
                Kind::Refused,
                None,
                None,
                None,
                Source { input: 0, line: 1 },
            )
        };
        let j = l.judge(e);
        assert_eq!(j.verdict, Verdict::Refused);
        assert_eq!(
            j.requesters.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            vec![7, 8, 9, 10]
        );
        assert_eq!(j.requester().as_deref(), Some("alice"));
        // A reason alone (LogLevel INFO logs no Failed line): no CA to compare.
        let e = Event {
            reason: Some("Certificate invalid: expired".into()),
            ..Event::blank(
                Kind::Refused,
                None,
                None,
                None,
                Source { input: 0, line: 1 },
            )
        };
        let j = l.judge(e);
        assert_eq!(j.verdict, Verdict::Unknown);
        assert!(j.notes[0].contains("LogLevel VERBOSE"), "{:?}", j.notes);
    }

    /// A primary with a backup CA in its config.toml and a retired CA: the backup's
    /// certificates are an alarm until its state directory is given too.
    #[test]
    fn backup_and_retired_cas() {
        use crate::config::Config;
        const BACKUP: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKxEVhjAC7XvMi3ATHVkan6Fvgrdj2gtNMUWxQh47jrQ backup";
        let backup_fp = crate::key::fingerprint(crate::key::parse_line(BACKUP).unwrap().key_data());
        let (primary, _) = fixture_state();
        Config {
            algorithm: "ecdsa-p256".into(),
            backup_ca_pubkeys: vec![BACKUP.into()],
            checkpoints: false,
            ..Config::for_tests(CA)
        }
        .save(primary.path())
        .unwrap();
        // A retired CA (the fixture's ledger under the backup key's name).
        let retired_fp = crate::key::fingerprint(
            crate::key::parse_line(crate::ledger::testing::CAROL)
                .unwrap()
                .key_data(),
        );
        std::fs::write(
            primary
                .path()
                .join("ca-retired-20261101T000000.000000000Z.pub"),
            crate::ledger::testing::CAROL,
        )
        .unwrap();
        let old = crate::ledger::Ledger::new(&primary.path().join("old"));
        std::fs::create_dir(primary.path().join("old")).unwrap();
        crate::ledger::testing::issue(&old, &retired_fp);
        std::fs::rename(
            primary.path().join("old/ledger.jsonl"),
            primary
                .path()
                .join("ledger-retired-20261101T000000.000000000Z.jsonl"),
        )
        .unwrap();
        let with = |dirs: &[PathBuf]| Ledgers::load(dirs, &mut |_| {}).unwrap();
        let l = with(&[primary.path().to_path_buf()]);
        let roles: Vec<(Role, bool)> = l
            .cas()
            .iter()
            .map(|c| (c.role, c.ledger_path().is_some()))
            .collect();
        assert_eq!(
            roles,
            vec![
                (Role::This, true),
                (Role::Retired, true),
                (Role::Backup, false)
            ]
        );
        let mut e = login(1, "k1", "breakglass", "2026-11-22T00:05:00Z");
        e.key_fingerprint = Some("SHA256:r".into());
        e.cert.as_mut().unwrap().ca_fingerprint = retired_fp.clone();
        let j = l.judge(e.clone());
        assert_eq!(
            (j.verdict, j.ca.as_ref().unwrap().0),
            (Verdict::Ok, Role::Retired)
        );
        e.cert.as_mut().unwrap().ca_fingerprint = backup_fp.clone();
        let j = l.judge(e.clone());
        assert_eq!(kinds(&j), vec![AlarmKind::NoLedger]);
        assert!(
            j.alarms[0].text.contains("add --state-dir"),
            "{}",
            j.alarms[0].text
        );
        // The backup's own state directory: its ledger is read, the alarm is the serial's.
        let b = tempfile::tempdir().unwrap();
        std::fs::write(b.path().join("ca.pub"), BACKUP).unwrap();
        let l = with(&[primary.path().to_path_buf(), b.path().to_path_buf()]);
        assert_eq!(kinds(&l.judge(e.clone())), vec![AlarmKind::NotInLedger]);
        crate::ledger::testing::issue(&crate::ledger::Ledger::new(b.path()), &backup_fp);
        let l = with(&[primary.path().to_path_buf(), b.path().to_path_buf()]);
        assert_eq!(l.judge(e).verdict, Verdict::Ok);
        // The same CA twice is refused; a directory without a CA too.
        let err = Ledgers::load(
            &[
                b.path().to_path_buf(),
                b.path().join("..").join(b.path().file_name().unwrap()),
            ],
            &mut |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("has a ledger in"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = Ledgers::load(&[empty.path().to_path_buf()], &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("holds no CA"), "{err}");
        // A damaged ledger is an error, never a silently smaller ledger.
        std::fs::write(b.path().join("ledger.jsonl"), "{\"serial\":\n").unwrap();
        let err = Ledgers::load(&[b.path().to_path_buf()], &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("is damaged at line 1"), "{err}");
    }
}
