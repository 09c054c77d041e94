//! How `log verify` walks a ledger: both files streamed line by line (each line bounded, so
//! memory stays flat whatever the ledger's size), every line parsed by the one parser, the
//! hash chain walked in order, and the signatures (each record's certificate, each
//! checkpoint) verified in parallel in bounded chunks. The first failure reported is exactly
//! the one a sequential walk reports: a line that is not a record (the first), else the first
//! record whose own check fails (see [`verify::check_record`]), else the first broken link,
//! else the first bad checkpoint line.
//!
//! Checkpoints are read in step with the ledger (they are in serial order, or that is the
//! failure), so a checkpoint's head is compared with the chain when the walk reaches its
//! serial, and no list of heads is kept.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use ssh_key::public::KeyData;

use super::chain::{hex_sha256, Walk};
use super::checkpoint::{self, Checkpoint};
use super::record::Entry;
use super::verify::{self, broken, Report};
use crate::error::{Error, Result};
use crate::fsx;

/// The longest line read: far more than any record or checkpoint (an RSA-16384 certificate
/// is some 5 KiB). A longer complete line is not a record.
pub const MAX_LINE: usize = 1024 * 1024;
/// How many records are checked in parallel at a time, at most.
const CHUNK_RECORDS: usize = 1024;
/// How many bytes of lines are held at a time, at most (with lines near [`MAX_LINE`]).
const CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// Progress is told once the walk has taken this long, and then this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One file to walk: where its bytes come from, what to call it in an error, and where to
/// copy every byte read (for `log export`: exactly the bytes verified).
pub struct Input<'a> {
    pub reader: Box<dyn Read + 'a>,
    pub what: String,
    pub copy: Option<&'a mut dyn Write>,
}

impl<'a> Input<'a> {
    pub fn new(reader: impl Read + 'a, what: impl Into<String>) -> Self {
        Input {
            reader: Box::new(reader),
            what: what.into(),
            copy: None,
        }
    }
}

/// How far the walk is: records checked, and roughly how many the ledger holds (from its
/// size) when that is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub estimate: Option<u64>,
}

/// What [`walk`] found, and how many bytes of each file it read (all of them).
pub struct Walked {
    pub report: Report,
    pub ledger_bytes: u64,
    pub checkpoint_bytes: u64,
}

/// One line as read.
enum Line {
    /// Ended by a newline (not included).
    Complete(Vec<u8>),
    /// The bytes after the last newline.
    Last(Vec<u8>),
    /// Longer than [`MAX_LINE`]; `last`: it is the end of the file, without a newline.
    TooLong { last: bool },
}

/// A file read line by line, each line at most [`MAX_LINE`], the whole at most
/// [`fsx::limit::LEDGER`], every byte copied to `copy`.
struct LineReader<'a> {
    reader: BufReader<Box<dyn Read + 'a>>,
    what: String,
    copy: Option<&'a mut dyn Write>,
    read: u64,
}

impl<'a> LineReader<'a> {
    fn new(input: Input<'a>) -> Self {
        LineReader {
            reader: BufReader::with_capacity(256 * 1024, input.reader),
            what: input.what,
            copy: input.copy,
            read: 0,
        }
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::io(format!("cannot read the {}", self.what), e)
    }

    fn took(&mut self, bytes: &[u8]) -> Result<()> {
        self.read = self.read.saturating_add(bytes.len() as u64);
        if self.read > fsx::limit::LEDGER {
            return Err(fsx::too_large(fsx::limit::LEDGER, &self.what));
        }
        if let Some(copy) = self.copy.as_mut() {
            copy.write_all(bytes)
                .map_err(|e| Error::io(format!("cannot write the copy of the {}", self.what), e))?;
        }
        Ok(())
    }

    fn next(&mut self) -> Result<Option<Line>> {
        let mut buf = Vec::new();
        let limit = MAX_LINE as u64 + 1; // the line and its newline
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(|e| self.io(e))?;
        if n == 0 {
            return Ok(None);
        }
        self.took(&buf)?;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            return Ok(Some(Line::Complete(buf)));
        }
        if (n as u64) < limit {
            return Ok(Some(Line::Last(buf)));
        }
        // Too long: skip (and copy) the rest of it, bounded by the file's limit.
        loop {
            let (piece, found) = match self.reader.fill_buf() {
                Ok([]) => return Ok(Some(Line::TooLong { last: true })),
                Ok(available) => match available.iter().position(|b| *b == b'\n') {
                    Some(i) => (available.get(..=i).unwrap_or_default().to_vec(), true),
                    None => (available.to_vec(), false),
                },
                Err(e) => return Err(self.io(e)),
            };
            let end = piece.len();
            self.reader.consume(end);
            self.took(&piece)?;
            if found {
                return Ok(Some(Line::TooLong { last: false }));
            }
        }
    }
}

/// A failure of one checkpoint line, ranked like the sequential checks of that line: it can
/// be read, it is in order, its signature, the chain at its serial.
struct CpFailure {
    line: usize,
    rank: u8,
    error: Error,
}

/// `checkpoints.jsonl` read in step with the ledger.
struct Checkpoints<'a> {
    lines: LineReader<'a>,
    /// Index of the next line to read.
    index: usize,
    /// The serial of the last checkpoint read (0 before the first).
    last_serial: u64,
    /// Read, waiting for the walk to reach its serial.
    pending: Option<(usize, Checkpoint)>,
    /// Signatures not verified yet.
    unverified: Vec<(usize, Checkpoint)>,
    /// Nothing more is read: the end, or a failure.
    stopped: bool,
    torn: bool,
    failures: Vec<CpFailure>,
    count: usize,
    newest: Option<Checkpoint>,
}

impl<'a> Checkpoints<'a> {
    fn new(input: Input<'a>) -> Self {
        Checkpoints {
            lines: LineReader::new(input),
            index: 0,
            last_serial: 0,
            pending: None,
            unverified: Vec::new(),
            stopped: false,
            torn: false,
            failures: Vec::new(),
            count: 0,
            newest: None,
        }
    }

    fn fail(&mut self, line: usize, rank: u8, error: Error) {
        self.failures.push(CpFailure { line, rank, error });
        self.stopped = true;
        self.pending = None;
    }

    /// Read the next line into `pending`, unless stopped.
    fn read_next(&mut self) -> Result<()> {
        let index = self.index;
        let parsed = match self.lines.next()? {
            None => {
                self.stopped = true;
                return Ok(());
            }
            Some(Line::Complete(l)) => checkpoint::parse_line(&l).ok(),
            Some(Line::Last(l)) => match checkpoint::parse_line(&l) {
                Ok(cp) => Some(cp),
                Err(_) => {
                    self.torn = true;
                    self.stopped = true;
                    return Ok(());
                }
            },
            Some(Line::TooLong { last: true }) => {
                self.torn = true;
                self.stopped = true;
                return Ok(());
            }
            Some(Line::TooLong { last: false }) => None,
        };
        self.index += 1;
        let Some(cp) = parsed else {
            self.fail(
                index,
                0,
                broken(format!("checkpoint line {} cannot be read", index + 1)),
            );
            return Ok(());
        };
        if cp.serial <= self.last_serial {
            let e = broken(format!(
                "checkpoint for serial {} is out of order",
                cp.serial
            ));
            self.fail(index, 1, e);
            return Ok(());
        }
        self.last_serial = cp.serial;
        self.unverified.push((index, cp.clone()));
        self.pending = Some((index, cp));
        Ok(())
    }

    /// The walk has reached record `serial`, whose line hashes to `head`: the checkpoints up
    /// to it are compared with it.
    fn at_record(&mut self, serial: u64, head: &str) -> Result<()> {
        loop {
            if self.stopped {
                return Ok(());
            }
            let Some((index, cp)) = self.pending.take() else {
                self.read_next()?;
                continue;
            };
            if cp.serial > serial {
                self.pending = Some((index, cp));
                return Ok(());
            }
            // Serials increase from above 0, and each is reached in turn: this is `serial`.
            if cp.head != head {
                let e = broken(format!(
                    "record serial {}: the ledger up to it differs from what the token signed; records up to it were edited, removed or reordered",
                    cp.serial
                ));
                self.fail(index, 3, e);
                return Ok(());
            }
            self.count += 1;
            self.newest = Some(cp);
        }
    }

    /// Verify the signatures read so far, in parallel; the first failure is kept.
    fn verify_signatures(&mut self, ca: &KeyData) {
        let batch = std::mem::take(&mut self.unverified);
        if self.failures.iter().any(|f| f.rank == 2) {
            return;
        }
        let bad = batch.par_iter().find_map_first(|(index, cp)| {
            checkpoint::verify(cp, ca)
                .err()
                .map(|e| (*index, broken(e.to_string())))
        });
        if let Some((line, error)) = bad {
            self.failures.push(CpFailure {
                line,
                rank: 2,
                error,
            });
        }
    }

    /// The ledger ended at `last_serial`: the rest of the file read and checked, and the
    /// first failure (by line, then by check) returned.
    fn finish(&mut self, last_serial: u64, ca: &KeyData) -> Result<()> {
        loop {
            if self.stopped {
                break;
            }
            match self.pending.take() {
                None => self.read_next()?,
                Some((index, cp)) => {
                    let e = broken(format!(
                        "a checkpoint signed by the token covers serial {}, but the ledger ends at serial {last_serial}: records were removed from the end",
                        cp.serial
                    ));
                    self.fail(index, 3, e);
                }
            }
            if self.unverified.len() >= CHUNK_RECORDS {
                self.verify_signatures(ca);
            }
        }
        self.verify_signatures(ca);
        match self.failures.drain(..).min_by_key(|f| (f.line, f.rank)) {
            Some(f) => Err(f.error),
            None => Ok(()),
        }
    }
}

/// A record's line checked in parallel: parsed, its line hashed, and the line kept (a
/// format-2 record's binding is checked against its exact text).
type Parsed = std::result::Result<(Entry, String, String), String>;

fn parse(line: &Line) -> Parsed {
    match line {
        Line::Complete(l) | Line::Last(l) => Entry::parse_line(l).map(|record| {
            (
                record,
                hex_sha256(l),
                String::from_utf8_lossy(l).into_owned(),
            )
        }),
        Line::TooLong { .. } => Err(format!("longer than {} KiB", MAX_LINE / 1024)),
    }
}

/// Walk `ledger` and `checkpoints` and check everything against the CA key `ca` (see the
/// module's documentation). `progress` is told how far it is, once it has taken a second,
/// then every second.
pub fn walk(
    ledger: Input<'_>,
    checkpoints: Input<'_>,
    ca: &KeyData,
    size: Option<u64>,
    progress: &dyn Fn(Progress),
) -> Result<Walked> {
    walk_chunked(ledger, checkpoints, ca, size, progress, CHUNK_RECORDS)
}

/// [`walk`], `chunk` records at a time (small in tests, to cross chunk boundaries).
fn walk_chunked(
    ledger: Input<'_>,
    checkpoints: Input<'_>,
    ca: &KeyData,
    size: Option<u64>,
    progress: &dyn Fn(Progress),
    chunk_records: usize,
) -> Result<Walked> {
    let ca_fp = crate::key::fingerprint(ca);
    let started = Instant::now();
    let mut next_progress = started + PROGRESS_EVERY;
    let mut lines = LineReader::new(ledger);
    let mut cps = Checkpoints::new(checkpoints);
    let mut chain = Walk::new(&ca_fp);
    let mut report = Report::default();
    let mut records: u64 = 0;
    let mut record_failure: Option<Error> = None;
    let mut chain_failure: Option<Error> = None;
    // The nonce of every signed request so far, with its serial: each is used once.
    let mut nonces: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let (mut torn, mut unterminated) = (false, false);
    let mut ended = false;
    while !ended {
        let mut chunk: Vec<Line> = Vec::with_capacity(chunk_records);
        let mut bytes = 0;
        while chunk.len() < chunk_records && bytes < CHUNK_BYTES {
            match lines.next()? {
                None => {
                    ended = true;
                    break;
                }
                Some(line) => {
                    let last = matches!(line, Line::Last(_) | Line::TooLong { last: true });
                    if let Line::Complete(l) | Line::Last(l) = &line {
                        bytes += l.len();
                    }
                    chunk.push(line);
                    if last {
                        ended = true;
                        break;
                    }
                }
            }
        }
        let mut parsed: Vec<Parsed> = chunk.par_iter().map(parse).collect();
        let last_is_unterminated = matches!(
            chunk.last(),
            Some(Line::Last(_) | Line::TooLong { last: true })
        );
        drop(chunk);
        if let Some(bad) = parsed.iter().position(|p| p.is_err()) {
            if !(last_is_unterminated && bad + 1 == parsed.len()) {
                let index = records + bad as u64;
                let why = match parsed.swap_remove(bad) {
                    Err(why) => why,
                    Ok(_) => String::new(),
                };
                return Err(broken(format!(
                    "line {} is not a ledger record: {why}",
                    index + 1
                )));
            }
            torn = true;
            parsed.pop();
        } else if last_is_unterminated {
            unterminated = true;
        }
        let parsed: Vec<(Entry, String, String)> = parsed.into_iter().flatten().collect();
        let first_line = records + 1;
        records += parsed.len() as u64;
        if record_failure.is_some() {
            continue; // only a line that is not a record can still come first
        }
        // A format-1 record after a bound one or a revocation is refused (mint never writes
        // one): what came before each, known before the records are checked in parallel.
        let mut before = Vec::with_capacity(parsed.len());
        for (e, _, _) in &parsed {
            let replayed = e
                .issued()
                .and_then(|r| Some((r.dual_control.as_ref()?.nonce()?, r.serial)))
                .and_then(
                    |(nonce, serial)| match nonces.insert(nonce.to_string(), serial) {
                        Some(first) => {
                            nonces.insert(nonce.to_string(), first);
                            Some(first)
                        }
                        None => None,
                    },
                );
            before.push((report.bound_records > 0, report.revocations > 0, replayed));
            match e {
                Entry::Issued(r) => {
                    if let Some(d) = &r.dual_control {
                        report.requests += 1;
                        report.approvals += d.approvals.len() as u64;
                    }
                    match r.is_bound() {
                        true => report.bound_records += 1,
                        false => report.old_records += 1,
                    }
                    report.uncovered_revocations = 0;
                }
                Entry::Revoked(_) => {
                    report.revocations += 1;
                    report.uncovered_revocations += 1;
                }
            }
        }
        let bad = parsed
            .par_iter()
            .zip(before.par_iter())
            .enumerate()
            .find_map_first(|(i, ((e, _, line), (bound_before, revoked_before, replayed)))| {
                let why = match e {
                    Entry::Issued(_) if replayed.is_some() => Err(format!(
                        "its signed request was already used by serial {} (the same nonce): a request is good for one certificate",
                        replayed.unwrap_or_default()
                    )),
                    Entry::Issued(r) if *bound_before && !r.is_bound() => {
                        Err(verify::UNBOUND_AFTER_BOUND.to_string())
                    }
                    Entry::Issued(r) if *revoked_before && !r.is_bound() => {
                        Err(verify::UNBOUND_AFTER_REVOCATION.to_string())
                    }
                    Entry::Issued(r) => verify::check_record(line, r, ca, &ca_fp),
                    Entry::Revoked(v) => super::revocation::check(line, v, &ca_fp),
                };
                why.err().map(|why| (i, why))
            });
        if let Some((i, why)) = bad {
            let at = parsed
                .get(i)
                .map(|(e, _, _)| e.at(first_line + i as u64))
                .unwrap_or_default();
            record_failure = Some(broken(format!("{at}: {why}")));
            continue;
        }
        if let Some((e, _, _)) = parsed.last() {
            report.last_serial = e.serial_after();
        }
        if chain_failure.is_some() {
            continue;
        }
        for (e, head, _) in &parsed {
            if let Err(e) = chain.next(e, head) {
                chain_failure = Some(e);
                break;
            }
            if let Entry::Issued(r) = e {
                cps.at_record(r.serial, head)?;
            }
        }
        if chain_failure.is_none() {
            cps.verify_signatures(ca);
        }
        let now = Instant::now();
        if now >= next_progress && !ended {
            next_progress = now + PROGRESS_EVERY;
            let estimate = size.and_then(|size| {
                let per_record = lines.read.checked_div(records)?;
                size.checked_div(per_record)
            });
            progress(Progress {
                done: records,
                estimate,
            });
        }
    }
    if let Some(e) = record_failure.or(chain_failure) {
        return Err(e);
    }
    report.torn_tail = torn;
    report.unterminated = unterminated;
    if torn {
        report.warnings.push("the ledger ends in a half-written record from an interrupted mint; no certificate was handed out for it (the next mint sets it aside)".into());
    }
    if unterminated {
        report.warnings.push("the ledger's last record lost its final newline (an interrupted mint); it is verified like the others, its serial stays issued, and the next mint restores the newline".into());
    }
    cps.finish(report.last_serial, ca)?;
    if cps.torn {
        report.warnings.push(
            "the checkpoint file ends in a half-written line from an interrupted mint".into(),
        );
    }
    report.checkpoints = cps.count;
    report.newest_checkpoint = cps.newest.take();
    verify::finish(&mut report);
    Ok(Walked {
        report,
        ledger_bytes: lines.read,
        checkpoint_bytes: cps.lines.read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::soft::SoftKey;
    use crate::backend::CaKey;
    use crate::cert::CertOptions;
    use crate::issue::{issue, FixedClock, MintRequest};
    use crate::ledger::{chain_heads, parse_ledger, Ledger, LEDGER_FILE};
    use crate::policy::{Policy, ValidityRequest};
    use chrono::{TimeZone, Utc};

    /// The sequential audit this walk replaced, kept as the reference for what it must
    /// report: every line parsed first, then every record's own check, then the chain, then
    /// the checkpoints in order.
    fn reference(ledger: &[u8], checkpoints: &[u8], ca: &KeyData) -> Result<Report> {
        let ca_fp = crate::key::fingerprint(ca);
        let lines = parse_ledger(ledger).map_err(|bad| {
            broken(format!(
                "line {} is not a ledger record: {}",
                bad.index + 1,
                bad.why
            ))
        })?;
        let mut report = Report {
            torn_tail: lines.torn.is_some(),
            unterminated: lines.unterminated,
            ..Report::default()
        };
        if lines.torn.is_some() {
            report.warnings.push("the ledger ends in a half-written record from an interrupted mint; no certificate was handed out for it (the next mint sets it aside)".into());
        }
        if lines.unterminated {
            report.warnings.push("the ledger's last record lost its final newline (an interrupted mint); it is verified like the others, its serial stays issued, and the next mint restores the newline".into());
        }
        let records = lines.records;
        for (i, (line, entry)) in records.iter().enumerate() {
            let at = entry.at(i as u64 + 1);
            match entry {
                Entry::Issued(record) => {
                    if report.bound_records > 0 && !record.is_bound() {
                        return Err(broken(format!("{at}: {}", verify::UNBOUND_AFTER_BOUND)));
                    }
                    if report.revocations > 0 && !record.is_bound() {
                        return Err(broken(format!(
                            "{at}: {}",
                            verify::UNBOUND_AFTER_REVOCATION
                        )));
                    }
                    verify::check_record(line, record, ca, &ca_fp)
                        .map_err(|why| broken(format!("{at}: {why}")))?;
                    match record.is_bound() {
                        true => report.bound_records += 1,
                        false => report.old_records += 1,
                    }
                    report.uncovered_revocations = 0;
                }
                Entry::Revoked(v) => {
                    crate::ledger::revocation::check(line, v, &ca_fp)
                        .map_err(|why| broken(format!("{at}: {why}")))?;
                    report.revocations += 1;
                    report.uncovered_revocations += 1;
                }
            }
            report.last_serial = entry.serial_after();
        }
        let all_heads = chain_heads(&records, &ca_fp)?;
        // The head of each issuance record, by serial.
        let heads: Vec<String> = records
            .iter()
            .zip(all_heads)
            .filter(|((_, e), _)| e.issued().is_some())
            .map(|(_, h)| h)
            .collect();
        let cp_lines = checkpoint::lines(checkpoints);
        if cp_lines.torn {
            report.warnings.push(
                "the checkpoint file ends in a half-written line from an interrupted mint".into(),
            );
        }
        for (i, line) in cp_lines.complete.iter().enumerate() {
            let cp = checkpoint::parse_line(line)
                .map_err(|_| broken(format!("checkpoint line {} cannot be read", i + 1)))?;
            if cp.serial <= report.last_signed_serial() {
                return Err(broken(format!(
                    "checkpoint for serial {} is out of order",
                    cp.serial
                )));
            }
            checkpoint::verify(&cp, ca).map_err(|e| broken(e.to_string()))?;
            let head = usize::try_from(cp.serial)
                .ok()
                .and_then(|s| s.checked_sub(1))
                .and_then(|idx| heads.get(idx));
            match head {
                None => {
                    return Err(broken(format!(
                        "a checkpoint signed by the token covers serial {}, but the ledger ends at serial {}: records were removed from the end",
                        cp.serial, report.last_serial
                    )))
                }
                Some(h) if *h != cp.head => {
                    return Err(broken(format!(
                        "record serial {}: the ledger up to it differs from what the token signed; records up to it were edited, removed or reordered",
                        cp.serial
                    )))
                }
                Some(_) => {}
            }
            report.newest_checkpoint = Some(cp);
            report.checkpoints += 1;
        }
        verify::finish(&mut report);
        Ok(report)
    }

    /// `n` records signed by a software key, the first half as 0.1.0 wrote them (format 1,
    /// a checkpoint each), the rest bound (format 2): the lines of both files.
    fn ledger(n: u32) -> (SoftKey, Vec<Vec<u8>>, Vec<Vec<u8>>) {
        ledger_with(n, false)
    }

    /// [`ledger`], with `revocations`: a revocation record after every other bound record and
    /// after the last.
    fn ledger_with(n: u32, revocations: bool) -> (SoftKey, Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let ca = SoftKey::new(5);
        let subject = ssh_key::PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO alice@laptop",
        )
        .unwrap();
        let ledger = Ledger::new(dir.path());
        let fp = crate::key::fingerprint(ca.public_key());
        let mut locked = ledger.lock(&fp).unwrap();
        for i in 0..n {
            let req = MintRequest {
                subject: subject.clone(),
                requester: "alice".into(),
                principals: vec![format!("p{i}")],
                reason: format!("reason {i}"),
                key_id: None,
                validity: ValidityRequest::default(),
                options: CertOptions::default(),
                dual: None,
            };
            let clock = FixedClock(Utc.with_ymd_and_hms(2026, 11, 22, 3, i, 0).unwrap());
            if i < n / 2 {
                crate::issue::issue_format1(&ca, &mut locked, &Policy::default(), &req, &clock)
                    .unwrap();
            } else {
                issue(&ca, &mut locked, &Policy::default(), &req, &clock).unwrap();
                // A revocation after every other bound record (the last line too, uncovered).
                if revocations && ((i - n / 2).is_multiple_of(2) || i + 1 == n) {
                    let at = format!("2026-11-22T03:{i:02}:30Z");
                    let v = crate::ledger::testing::revocation(&locked, &at);
                    locked.append_revocation(&v).unwrap();
                }
            }
        }
        drop(locked);
        let split = |name: &str| {
            let bytes = std::fs::read(dir.path().join(name)).unwrap_or_default();
            bytes
                .split_inclusive(|b| *b == b'\n')
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        (ca, split(LEDGER_FILE), split(checkpoint::FILE))
    }

    fn outcome(r: Result<Report>) -> String {
        match r {
            Ok(report) => format!("{report:?}"),
            Err(e) => format!("error: {e}"),
        }
    }

    /// Every way of damaging one file's lines that the tests try.
    fn damage(lines: &[Vec<u8>], other_ca_line: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut out = vec![lines.to_vec()];
        let replace = |i: usize, with: &[u8]| {
            let mut l = lines.to_vec();
            l[i] = with.to_vec();
            l
        };
        for i in 0..lines.len() {
            let text = String::from_utf8(lines[i].clone()).unwrap();
            let mut l = lines.to_vec();
            l.remove(i);
            out.push(l);
            let mut l = lines.to_vec();
            l.insert(i, lines[i].clone());
            out.push(l);
            if i + 1 < lines.len() {
                let mut l = lines.to_vec();
                l.swap(i, i + 1);
                out.push(l);
            }
            out.push(replace(i, b"\n"));
            out.push(replace(i, b"garbage\n"));
            out.push(replace(i, other_ca_line));
            for (from, to) in [
                ("reason ", "REASON "),
                ("\"serial\":", "\"serial\":1"),
                ("AAAA", "AAAB"),
                ("\"head\":\"", "\"head\":\"0"),
                ("SHA256:", "SHA256:x"),
            ] {
                if text.contains(from) {
                    out.push(replace(i, text.replacen(from, to, 1).as_bytes()));
                }
            }
        }
        // The end: cut mid-line, without its newline, one more torn line.
        if let Some(last) = lines.last() {
            let mut l = lines.to_vec();
            let cut = last.len() / 2;
            l.last_mut().unwrap().truncate(cut);
            out.push(l);
            let mut l = lines.to_vec();
            l.last_mut().unwrap().pop();
            out.push(l);
        }
        let mut l = lines.to_vec();
        l.push(b"{\"serial\":99".to_vec());
        out.push(l);
        out.push(Vec::new());
        out
    }

    #[test]
    fn the_streaming_walk_reports_what_the_sequential_audit_reports() {
        let (ca, records, cps) = ledger_with(5, true);
        assert_eq!(
            records.len(),
            5 + 2,
            "two revocation lines among the records"
        );
        let (_, foreign, _) = ledger(1);
        let other = SoftKey::new(9);
        let mut compared = 0;
        let mut failures = std::collections::BTreeSet::new();
        let cp_bytes = cps.concat();
        let record_bytes = records.concat();
        let mut cases: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for l in damage(&records, &foreign[0]) {
            cases.push((l.concat(), cp_bytes.clone()));
        }
        for c in damage(
            &cps,
            b"{\"serial\":2,\"head\":\"00\",\"signature\":\"x\"}\n",
        ) {
            cases.push((record_bytes.clone(), c.concat()));
        }
        // Two failures at once: the order of the checks decides which is named.
        let mut two = records.clone();
        two[0] = String::from_utf8(two[0].clone())
            .unwrap()
            .replacen("reason ", "R ", 1)
            .into_bytes();
        two[4] = b"garbage\n".to_vec();
        cases.push((two.concat(), cp_bytes.clone()));
        two[4] = String::from_utf8(records[4].clone())
            .unwrap()
            .replacen("AAAA", "AAAB", 1)
            .into_bytes();
        cases.push((two.concat(), cp_bytes.clone()));
        two[0] = records[0].clone();
        cases.push((two.concat(), b"garbage\n".to_vec()));
        for (ledger, cps) in &cases {
            for key in [ca.public_key(), other.public_key()] {
                let want = outcome(reference(ledger, cps, key));
                for chunk in [1, 2, 3, 1024] {
                    let got = walk_chunked(
                        Input::new(&ledger[..], "ledger"),
                        Input::new(&cps[..], "checkpoint file"),
                        key,
                        None,
                        &|_| {},
                        chunk,
                    )
                    .map(|w| w.report);
                    assert_eq!(outcome(got), want, "chunk {chunk}");
                    compared += 1;
                }
                failures.insert(want.split(':').take(3).collect::<Vec<_>>().join(":"));
            }
        }
        assert!(compared > 400, "{compared}");
        // The cases reach many different failures (and successes with warnings).
        assert!(failures.len() > 10, "{failures:#?}");
    }

    #[test]
    fn lines_are_bounded_and_every_byte_read_is_copied() {
        let (ca, records, cps) = ledger(2);
        let cps = cps.concat();
        let run = |ledger: &[u8], copy: Option<&mut Vec<u8>>| {
            let mut input = Input::new(ledger, "ledger");
            input.copy = copy.map(|c| c as &mut dyn Write);
            let cps = Input::new(&cps[..], "checkpoints");
            walk(input, cps, ca.public_key(), None, &|_| {})
        };
        // A line longer than the limit at the end is torn (and copied like every byte)...
        let mut long = records.concat();
        long.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        let mut copied = Vec::new();
        let walked = run(&long, Some(&mut copied)).unwrap();
        assert_eq!(copied, long);
        assert_eq!(walked.ledger_bytes, long.len() as u64);
        assert_eq!(walked.checkpoint_bytes, cps.len() as u64);
        let warnings = &walked.report.warnings;
        assert!(warnings[0].contains("half-written record"), "{warnings:?}");
        // ... and a complete one is not a record.
        long.push(b'\n');
        let err = run(&long, None).err().unwrap().to_string();
        assert!(
            err.contains("line 3 is not a ledger record: longer than 1024 KiB"),
            "{err}"
        );
    }

    /// A reader that hands out one line per read, `pause` after each.
    struct Paced<'a> {
        data: &'a [u8],
        pause: Duration,
    }

    impl Read for Paced<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            std::thread::sleep(self.pause);
            let end = self
                .data
                .iter()
                .position(|b| *b == b'\n')
                .map_or(self.data.len(), |i| i + 1);
            let n = end.min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn progress_is_told_only_when_it_takes_a_while() {
        let (ca, records, cps) = ledger(3);
        let (ledger, cps) = (records.concat(), cps.concat());
        let told = std::sync::Mutex::new(Vec::new());
        let run = |pause| {
            let data = Paced {
                data: &ledger,
                pause,
            };
            walk_chunked(
                Input::new(data, "ledger"),
                Input::new(&cps[..], "checkpoints"),
                ca.public_key(),
                Some(ledger.len() as u64),
                &|p| told.lock().unwrap().push(p),
                1,
            )
            .unwrap()
        };
        run(Duration::ZERO);
        assert!(told.lock().unwrap().is_empty());
        // 0.6 s per line: progress after the second line, not after the last.
        run(Duration::from_millis(600));
        let told = told.lock().unwrap();
        assert!(!told.is_empty());
        assert!(
            told.iter().all(|p| p.estimate == Some(3) && p.done < 3),
            "{told:?}"
        );
        assert_eq!(
            crate::ledger::Note::Verifying(told[0]).to_string(),
            format!("verified {} of ~3 records...", told[0].done)
        );
    }
}
