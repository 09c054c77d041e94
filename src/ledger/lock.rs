//! The exclusive lock on a ledger, held by `mint` from serial allocation to the durable append:
//! `ledger.lock` taken (and taken again if the file was removed or replaced meanwhile), the end
//! of the ledger read and validated, the [`Tail`] the next record continues, the "unchanged"
//! re-check before signing and before appending, and the repair of a crashed append made right
//! before the next record and returned to the caller as [`Repaired`].

use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::chain::{chain_heads, check_last_link, hex_sha256, next_serial};
use super::checkpoint;
use super::jsonl::{self, append_line, read_tail_holding};
use super::record::{damaged, parse_ledger, Entry, Record, KIND_PREFIX};
use super::revocation::Revocation;
use super::{genesis_hash, Ledger};
use crate::error::{Error, Result};
use crate::fsx;
use crate::text::ShowPath;

/// What the next issuance continues from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tail {
    /// The serial to issue next.
    pub serial: u64,
    pub prev_hash: String,
    /// The newest line's time (an issuance's `issued_at`, a revocation's `revoked_at`), if
    /// any, for the clock check.
    pub last_issued_at: Option<String>,
}

impl Tail {
    /// The ledger line of `record`, which must continue this tail (its serial and
    /// `prev_hash`), and the tail after it: how a batch chains its records before any is
    /// appended.
    pub fn after(&self, record: &Record) -> Result<(String, Tail)> {
        if record.serial != self.serial || record.prev_hash != self.prev_hash {
            return Err(Error::ledger(
                "internal error: the record does not continue the ledger it was allocated from",
            ));
        }
        let line = serde_json::to_string(record)
            .map_err(|e| Error::json("cannot encode the ledger record", e))?;
        let next = Tail {
            serial: next_serial(record.serial)?,
            prev_hash: hex_sha256(line.as_bytes()),
            last_issued_at: Some(record.issued_at.clone()),
        };
        Ok((line, next))
    }
}

/// What [`Locked::append`] repaired before it appended: the damage an interrupted mint left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repaired {
    /// A torn last line (a crash mid-append, for a certificate nobody received) was saved to
    /// this new file, then cut off.
    TornLineSetAside(PathBuf),
    /// A torn last line that was the start of a revocation record (a crash mid-append of a
    /// `revoke` that never said it was done) was saved to this new file, then cut off: that
    /// revocation was not recorded.
    TornRevocationSetAside(PathBuf),
    /// The last record, of this serial, had lost only its final newline, which was restored
    /// (its serial stays issued).
    NewlineRestored(u64),
}

impl fmt::Display for Repaired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repaired::TornLineSetAside(side) => write!(
                f,
                "the ledger ended in a half-written record from an interrupted mint; no certificate was handed out for it. It was moved to {} and the ledger repaired.",
                side.shown()
            ),
            Repaired::TornRevocationSetAside(side) => write!(
                f,
                "the ledger ended in a half-written revocation record from an interrupted revoke; that revocation was not recorded (run the revoke again if it is still needed). It was moved to {} and the ledger repaired.",
                side.shown()
            ),
            Repaired::NewlineRestored(serial) => write!(
                f,
                "the ledger's last record (serial {serial}) had lost its final newline; it was restored."
            ),
        }
    }
}

/// A record appended by [`Locked::append`] (or a revocation, by [`Locked::append_revocation`]).
#[derive(Debug)]
pub struct Appended {
    /// Its serial (a revocation's: the newest serial before it).
    pub serial: u64,
    /// The hash of its line: the new head of the chain.
    pub head: String,
    /// What was repaired before it was appended, if anything.
    pub repaired: Option<Repaired>,
}

/// An flock on `ledger.lock`, and which file that was (the path can be made to name another).
pub struct LockGuard {
    _file: File,
    path: PathBuf,
    id: (u64, u64),
}

/// How many times to take the lock again when `ledger.lock` was removed or replaced while
/// waiting for it.
const LOCK_ATTEMPTS: usize = 100;

impl LockGuard {
    /// Whether the path still names the locked file.
    fn still_at_path(&self) -> Result<bool> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) => Ok((m.dev(), m.ino()) == self.id),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::file("examine", &self.path, e)),
        }
    }
}

/// Lock `path` (exclusive, or shared for readers), and make sure the file locked is the one
/// the path names once the lock is held: a lock file removed or replaced while we waited
/// protects nothing, so the file there now is locked instead. `create`: create the lock file
/// (0600) if missing; otherwise `Ok(None)` when there is none. `waiting` is called once, when
/// another process holds the lock and this one starts to wait.
pub(super) fn take_lock(
    path: &Path,
    exclusive: bool,
    create: bool,
    waiting: &dyn Fn(),
) -> Result<Option<LockGuard>> {
    let mut told = false;
    for _ in 0..LOCK_ATTEMPTS {
        let mut opts = OpenOptions::new();
        opts.read(true);
        if create {
            opts.write(true).create(true);
        }
        let Some(file) = fsx::open_private(path, &mut opts)? else {
            return Ok(None);
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::file("examine", path, e))?;
        if create && meta.mode() & 0o7777 != fsx::PRIVATE_FILE && meta.uid() == my_uid() {
            file.set_permissions(std::fs::Permissions::from_mode(fsx::PRIVATE_FILE))
                .map_err(|e| Error::file("set the mode of", path, e))?;
        }
        let tried = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match tried {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                if !told {
                    waiting();
                    told = true;
                }
                let locked = if exclusive {
                    file.lock()
                } else {
                    file.lock_shared()
                };
                locked.map_err(|e| Error::file("lock", path, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::file("lock", path, e)),
        }
        let guard = LockGuard {
            _file: file,
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
        };
        if guard.still_at_path()? {
            return Ok(Some(guard));
        }
    }
    Err(Error::ledger(format!(
        "{} keeps being removed or replaced; cannot lock the ledger",
        path.shown()
    ))
    .with_hint(
        "something is deleting the lock file: find it and stop it, then run the command again",
    ))
}

fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The exclusive lock on a ledger, held from serial allocation to the durable append (see
/// [`Ledger::lock`]). The lock is released when this is dropped.
pub struct Locked<'a> {
    ledger: &'a Ledger,
    ca_fingerprint: String,
    /// The lock taken first, and any taken again because `ledger.lock` was swapped.
    guards: Vec<LockGuard>,
    /// `ledger.jsonl`, if it exists.
    file: Option<File>,
    /// The end of the ledger as read under the lock (from `seen_start`): it must still be
    /// exactly this when the next record is appended.
    seen_start: u64,
    seen: Vec<u8>,
    /// The repair the next append makes first.
    repair: Repair,
    tail: Tail,
    /// Every revocation record of the ledger, in order (found by a scan of the whole file
    /// that parses only the lines of that kind).
    revocations: Vec<Revocation>,
    /// The nonce of every signed request the ledger's records hold, with the serial issued
    /// for it (found by the same scan).
    request_nonces: Vec<(String, u64)>,
}

/// A repair found when the lock was taken, made by the next append.
#[derive(Debug)]
enum Repair {
    None,
    /// Save this fragment aside, then cut it off.
    Cut(Vec<u8>),
    /// Restore the final newline of this serial's record.
    Newline(u64),
}

impl<'a> Locked<'a> {
    /// Take the exclusive lock and read the end of the ledger: everything is checked (the CA,
    /// the last link, the token's newest checkpoint) and nothing is changed.
    pub(super) fn take(ledger: &'a Ledger, ca_fingerprint: &str) -> Result<Self> {
        let guard = ledger.exclusive()?;
        let path = ledger.path();
        let file = fsx::open_private(&path, OpenOptions::new().read(true).append(true))?;
        // The end read holds the newest issuance record (a line of no other kind), if there
        // is one: the next serial is checked against it, never taken from revocations alone.
        let (seen, seen_start) = match &file {
            Some(f) => read_tail_holding(f, &path, &holds_an_issuance)?,
            None => (Vec::new(), 0),
        };
        // Only the end of the ledger is read, so a mint costs the same at serial 10 or 100,000.
        // The whole chain is walked by `status` and `log verify`.
        let lines = parse_ledger(&seen).map_err(|bad| {
            let before = file
                .as_ref()
                .and_then(|f| jsonl::count_lines(f, seen_start).ok())
                .unwrap_or(0);
            damaged(&path, before + bad.index + 1, &bad.why)
        })?;
        let last = lines.records.last().map(|(line, r)| (line.as_str(), r));
        check_continuable(ledger, &lines.records, ca_fingerprint, seen_start == 0)?;
        let tail = match last {
            None => Tail {
                serial: 1,
                prev_hash: genesis_hash(ca_fingerprint),
                last_issued_at: None,
            },
            Some((line, last)) => Tail {
                serial: next_serial(last.serial_after())?,
                prev_hash: hex_sha256(line.as_bytes()),
                last_issued_at: Some(last.time().to_string()),
            },
        };
        let repair = match (lines.torn, last) {
            (Some(fragment), _) => Repair::Cut(fragment),
            (None, Some((_, last))) if lines.unterminated => Repair::Newline(last.serial_after()),
            _ => Repair::None,
        };
        let (revocations, request_nonces) = match &file {
            Some(f) => scan_revocations(f, &path, seen_start + seen.len() as u64)?,
            None => (Vec::new(), Vec::new()),
        };
        Ok(Locked {
            ledger,
            ca_fingerprint: ca_fingerprint.to_string(),
            guards: vec![guard],
            file,
            seen_start,
            seen,
            repair,
            tail,
            revocations,
            request_nonces,
        })
    }

    /// The serial issued for the signed request with this nonce, if the ledger holds one: a
    /// request is good for one certificate (see [`crate::issue::refuse_replay`]).
    pub fn request_used(&self, nonce: &str) -> Option<u64> {
        self.request_nonces
            .iter()
            .find(|(n, _)| n == nonce)
            .map(|(_, serial)| *serial)
    }

    /// Every revocation record of the ledger, in order, as read when the lock was taken (and
    /// any appended since): what `mint` refuses by (see
    /// [`super::revocation::refuse_for_mint`]).
    pub fn revocations(&self) -> &[Revocation] {
        &self.revocations
    }

    /// Every line of the ledger, parsed by the one parser, read through the locked file (up
    /// to where the lock's read ended: a torn last line is left out, a record that lost only
    /// its newline is in). For `revoke`, which must know every record.
    pub fn entries(&self) -> Result<Vec<(String, Entry)>> {
        let path = self.ledger.path();
        let Some(file) = &self.file else {
            return Ok(Vec::new());
        };
        let end = self.seen_start + self.seen.len() as u64;
        let bytes = jsonl::read_range(file, 0, end).map_err(|e| Error::file("read", &path, e))?;
        parse_ledger(&bytes)
            .map(|l| l.records)
            .map_err(|bad| damaged(&path, bad.index + 1, &bad.why))
    }

    /// The CA whose ledger this is.
    pub fn ca_fingerprint(&self) -> &str {
        &self.ca_fingerprint
    }

    /// Where the next record continues the chain.
    pub fn tail(&self) -> &Tail {
        &self.tail
    }

    /// Check that the ledger is still exactly what was read when the lock was taken, and
    /// that the lock is still the one other mints take. A second writer (a mint started after
    /// `ledger.lock` was deleted, an editor) is caught here: refuse, having written nothing.
    pub fn check_unchanged(&mut self) -> Result<()> {
        let lock_swapped = match self.guards.last() {
            Some(g) => !g.still_at_path()?,
            None => true,
        };
        if lock_swapped {
            // Lock what other mints lock now too, then look at the ledger again.
            self.guards.push(self.ledger.exclusive()?);
        }
        let path = self.ledger.path();
        let changed = |what: &str| {
            Error::ledger(format!(
                "the ledger {} changed while this mint held its lock ({what}); nothing was issued",
                path.shown()
            ))
            .with_hint("another mint ran beside this one (was ledger.lock deleted?), or the ledger was edited: run 'breakglass-ca log verify', then mint again")
        };
        let at_path = match std::fs::symlink_metadata(&path) {
            Ok(m) => Some((m.dev(), m.ino())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::file("examine", &path, e)),
        };
        let Some(file) = &self.file else {
            return match at_path {
                None => Ok(()),
                Some(_) => Err(changed("it was created")),
            };
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::file("examine", &path, e))?;
        if at_path != Some((meta.dev(), meta.ino())) {
            return Err(changed("it was removed or replaced"));
        }
        let end = self.seen_start + self.seen.len() as u64;
        if meta.len() != end {
            return Err(changed("its length changed"));
        }
        let now = jsonl::read_range(file, self.seen_start, end)
            .map_err(|e| Error::file("read", &path, e))?;
        if now != self.seen {
            return Err(changed("its last records changed"));
        }
        Ok(())
    }

    /// Make the repair found when the lock was taken, right before the next append: save a
    /// torn fragment aside (fsynced) and only then cut it, or restore a complete record's
    /// newline.
    fn repair(&mut self) -> Result<Option<Repaired>> {
        let path = self.ledger.path();
        let Some(file) = &self.file else {
            return Ok(None);
        };
        Ok(match std::mem::replace(&mut self.repair, Repair::None) {
            Repair::None => None,
            Repair::Newline(serial) => {
                append_line(file, &path, b"")?;
                self.seen.push(b'\n');
                Some(Repaired::NewlineRestored(serial))
            }
            Repair::Cut(fragment) => {
                let side = jsonl::save_fragment(&self.ledger.dir, "ledger", &fragment)?;
                let keep = self.seen.len().saturating_sub(fragment.len());
                self.seen.truncate(keep);
                jsonl::cut(file, &path, self.seen_start + keep as u64)?;
                Some(match fragment.starts_with(KIND_PREFIX) {
                    true => Repaired::TornRevocationSetAside(side),
                    false => Repaired::TornLineSetAside(side),
                })
            }
        })
    }

    /// Append the record for the serial this lock allocated and fsync it, after checking the
    /// ledger is unchanged and making the repair found when the lock was taken. Only after
    /// this returns may the certificate be written out.
    pub fn append(&mut self, record: &Record) -> Result<Appended> {
        self.append_all(std::slice::from_ref(record))
    }

    /// The group commit of a batch: append `records` (the first continuing the tail this lock
    /// read, each next one continuing the one before, see [`Tail::after`]) in one write and
    /// one fsync, after checking the ledger is unchanged and making the repair found when the
    /// lock was taken. Only after this returns may their certificates be written out. The
    /// returned [`Appended`] is the last record's: its head covers the whole batch.
    pub fn append_all(&mut self, records: &[Record]) -> Result<Appended> {
        let mut tail = self.tail.clone();
        let mut bytes = Vec::new();
        let mut head = String::new();
        for record in records {
            let (line, next) = tail.after(record)?;
            head = next.prev_hash.clone();
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            tail = next;
        }
        let Some(last) = records.last() else {
            return Err(Error::ledger("internal error: no record to append"));
        };
        // Only a format-1 record needs checkpoints (tests write them): a bound one is covered
        // by its certificate.
        let format1 = records.iter().any(|r| !r.is_bound());
        let repaired = self.write(&bytes, format1)?;
        self.tail = tail;
        for r in records {
            if let Some(nonce) = r.dual_control.as_ref().and_then(|d| d.nonce()) {
                self.request_nonces.push((nonce.to_string(), r.serial));
            }
        }
        Ok(Appended {
            serial: last.serial,
            head,
            repaired,
        })
    }

    /// Append a revocation record (which must continue the tail this lock read: its
    /// `prev_hash`, and `last_serial` the newest serial) and fsync it, after checking the
    /// ledger is unchanged and making the repair found when the lock was taken. No serial is
    /// spent: the tail's next serial stays the same. Only after this returns may `revoke` say
    /// it is done.
    pub fn append_revocation(&mut self, v: &Revocation) -> Result<Appended> {
        if v.prev_hash != self.tail.prev_hash
            || v.last_serial.checked_add(1) != Some(self.tail.serial)
            || v.ca_fingerprint != self.ca_fingerprint
        {
            return Err(Error::ledger(
                "internal error: the revocation does not continue the ledger it was read from",
            ));
        }
        let line = v.line()?;
        super::revocation::check(&line, v, &self.ca_fingerprint)
            .map_err(|why| Error::ledger(format!("internal error: the revocation {why}")))?;
        if line.len() > super::audit::MAX_LINE {
            return Err(Error::refused(format!(
                "the revocation record would be longer than {} KiB, more than a ledger line may hold",
                super::audit::MAX_LINE / 1024
            ))
            .with_hint("revoke fewer targets at once (several revoke commands), or ranges of serials (--serial 10-500) instead of single ones"));
        }
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        let repaired = self.write(&bytes, false)?;
        let head = hex_sha256(bytes.strip_suffix(b"\n").unwrap_or_default());
        self.tail = Tail {
            serial: self.tail.serial,
            prev_hash: head.clone(),
            last_issued_at: Some(v.revoked_at.clone()),
        };
        self.revocations.push(v.clone());
        Ok(Appended {
            serial: v.last_serial,
            head,
            repaired,
        })
    }

    /// The one durable append: check the ledger is unchanged, make the repair, create the file
    /// if needed (and `checkpoints.jsonl` when a format-1 record needs it), then write `bytes`
    /// (whole lines) in one write and one fsync.
    fn write(&mut self, bytes: &[u8], format1: bool) -> Result<Option<Repaired>> {
        self.check_unchanged()?;
        let repaired = self.repair()?;
        let path = self.ledger.path();
        if self.file.is_none() {
            self.file = Some(fsx::create_private(
                &path,
                OpenOptions::new().read(true).append(true),
            )?);
        }
        if self.ledger.checkpoints_required && format1 {
            checkpoint::create_if_missing(&self.ledger.dir)?;
        }
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| Error::ledger("internal error: no ledger file"))?;
        // `append_line` adds the last newline: one write, one fsync for the whole batch.
        append_line(file, &path, bytes.strip_suffix(b"\n").unwrap_or_default())?;
        self.seen.extend_from_slice(bytes);
        Ok(repaired)
    }

    /// Append a signed checkpoint of the head to `checkpoints.jsonl`, still under the lock
    /// (see [`checkpoint`] for the repair of a crashed one), as 0.1.0 did: for tests
    /// that build old ledgers.
    #[cfg(test)]
    pub fn append_checkpoint(&mut self, cp: &checkpoint::Checkpoint) -> Result<()> {
        checkpoint::append(&self.ledger.dir, cp)
    }
}

/// Whether the end of a ledger `bytes` (from a line start) holds a complete line that is not a
/// revocation: an issuance record (or damage, which the parser reports).
fn holds_an_issuance(bytes: &[u8]) -> bool {
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    lines.pop(); // after the last newline: not a complete line
    lines.iter().any(|l| !l.starts_with(KIND_PREFIX))
}

/// Every revocation record of the ledger `file` (at `path`) up to `end`: the whole file read
/// line by line (each line bounded), and only the lines that start as a revocation record
/// parsed, by the one parser. A complete such line that does not parse is damage; the last
/// bytes without a newline are a torn line unless they parse. Memory stays flat: a `mint` on
/// a large ledger reads it once, parsing only its revocations. The same scan collects the
/// nonces of the signed requests of format-3 records (only lines that hold a `dual_control`
/// field are parsed): the serial issued for each.
#[allow(clippy::type_complexity)]
fn scan_revocations(
    file: &File,
    path: &Path,
    end: u64,
) -> Result<(Vec<Revocation>, Vec<(String, u64)>)> {
    use std::io::{BufRead, Read, Seek, SeekFrom};
    let io = |e| Error::file("read", path, e);
    let mut f = file;
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, f.take(end));
    let mut out = Vec::new();
    let mut nonces = Vec::new();
    let mut line_no = 0usize;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Only the start of a line matters, unless it is a revocation: read a line bounded.
        let limit = super::audit::MAX_LINE as u64 + 1;
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            return Ok((out, nonces));
        }
        line_no += 1;
        let complete = buf.last() == Some(&b'\n');
        if !complete && n as u64 == limit {
            // Too long for a record: skip the rest of it (the audit reports such a line).
            loop {
                let available = reader.fill_buf().map_err(io)?;
                if available.is_empty() {
                    return Ok((out, nonces));
                }
                match available.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        reader.consume(i + 1);
                        break;
                    }
                    None => {
                        let len = available.len();
                        reader.consume(len);
                    }
                }
            }
            continue;
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if !line.starts_with(KIND_PREFIX) {
            if memchr::memmem::find(line, DUAL_FIELD).is_some() {
                // A line that may hold a signed request and does not parse is damage: its
                // nonce is never forgotten (a torn last line was never issued).
                match Entry::parse_line(line) {
                    Ok(Entry::Issued(r)) => {
                        if let Some(nonce) = r.dual_control.as_ref().and_then(|d| d.nonce()) {
                            nonces.push((nonce.to_string(), r.serial));
                        }
                    }
                    Ok(Entry::Revoked(_)) => {}
                    Err(_) if !complete => return Ok((out, nonces)),
                    Err(why) => return Err(damaged(path, line_no, &why)),
                }
            }
            continue;
        }
        match Entry::parse_line(line) {
            Ok(Entry::Revoked(v)) => out.push(v),
            Ok(Entry::Issued(_)) => {}
            Err(_) if !complete => return Ok((out, nonces)), // a torn last line
            Err(why) => return Err(damaged(path, line_no, &why)),
        }
    }
}

/// The name of the field of a signed request, in a record's line (also when a JSON tool
/// rewrote the line with spaces: every line that names it is parsed).
const DUAL_FIELD: &[u8] = b"dual_control";

/// Whether the chain whose end is `records` may be extended by `ca_fingerprint`: it is this
/// CA's, its last link holds (the whole chain when `whole`, the small ledger read entirely),
/// and it still holds what the token signed. Never extend a chain whose last link is broken
/// (that would bury the damage), nor one that lost records the token already signed for (that
/// would reuse their serials).
fn check_continuable(
    ledger: &Ledger,
    records: &[(String, Entry)],
    ca_fingerprint: &str,
    whole: bool,
) -> Result<()> {
    if let Some((_, last)) = records.last() {
        if last.ca_fingerprint() != ca_fingerprint {
            return Err(Error::ledger(format!(
                "the ledger {} belongs to the CA {}, but this CA key is {}",
                ledger.path().shown(),
                crate::text::Esc(last.ca_fingerprint()),
                ca_fingerprint
            ))
            .with_hint(
                "each CA keeps its own ledger: use that CA's state directory with --state-dir",
            ));
        }
    }
    if whole {
        chain_heads(records, ca_fingerprint)?;
    } else {
        check_last_link(records, ca_fingerprint)?;
    }
    super::verify::check_newest(records, ca_fingerprint)?;
    ledger.check_signed(records)
}

#[cfg(test)]
mod tests {
    use crate::ledger::checkpoint::Checkpoint;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use super::super::testing::{
        append_raw, edit_first_reason, issue, record, revocation, revoke, snapshot, with_records,
    };
    use super::*;
    use crate::ledger::{Note, LEDGER_FILE, LOCK_FILE};

    /// Where an append set a torn line aside.
    fn set_aside(appended: &Appended) -> PathBuf {
        match &appended.repaired {
            Some(Repaired::TornLineSetAside(side)) => side.clone(),
            other => panic!("no torn line set aside: {other:?}"),
        }
    }

    #[test]
    fn another_cas_ledger_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA-1");
        let err = ledger.lock("CA-2").err().unwrap().to_string();
        assert!(err.contains("belongs to the CA CA-1"), "{err}");
    }

    #[test]
    fn torn_tail_is_saved_aside_and_cut_when_the_next_record_is_appended() {
        let (dir, ledger) = with_records(1);
        append_raw(&ledger, b"{\"serial\":2,\"key_id\":\"tor");
        assert_eq!(ledger.read().unwrap().len(), 1);
        // Taking the lock changes nothing (a refusal after it must leave everything as it was).
        let before = snapshot(dir.path());
        let locked = ledger.lock("CA").unwrap();
        assert_eq!(locked.tail().serial, 2);
        drop(locked);
        assert_eq!(snapshot(dir.path()), before);
        // The append saves the fragment first, then cuts it, then appends.
        let mut locked = ledger.lock("CA").unwrap();
        let r = record(locked.tail(), "CA");
        let side = set_aside(&locked.append(&r).unwrap());
        assert_eq!(
            std::fs::read(&side).unwrap(),
            b"{\"serial\":2,\"key_id\":\"tor"
        );
        assert_eq!(
            std::fs::metadata(&side).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(locked);
        let all = ledger.read().unwrap();
        assert_eq!(
            all.iter()
                .map(|(_, r)| r.serial_after())
                .collect::<Vec<_>>(),
            [1, 2]
        );
        chain_heads(&all, "CA").unwrap();
        // A second torn tail gets its own side file, never over the first.
        append_raw(&ledger, b"{\"serial\":3,\"also torn");
        let mut locked = ledger.lock("CA").unwrap();
        let r = record(locked.tail(), "CA");
        let second = set_aside(&locked.append(&r).unwrap());
        assert_ne!(second, side);
        assert_eq!(
            std::fs::read(&second).unwrap(),
            b"{\"serial\":3,\"also torn"
        );
        assert_eq!(
            std::fs::read(&side).unwrap(),
            b"{\"serial\":2,\"key_id\":\"tor"
        );
    }

    #[test]
    fn a_record_that_lost_only_its_newline_is_completed_never_cut() {
        let (dir, ledger) = with_records(2);
        // Serial 2's line without its newline: a complete record, whose certificate may have
        // been handed out.
        let text = std::fs::read(ledger.path()).unwrap();
        std::fs::write(ledger.path(), &text[..text.len() - 1]).unwrap();
        assert_eq!(ledger.read().unwrap().len(), 2);
        let before = snapshot(dir.path());
        let mut locked = ledger.lock("CA").unwrap();
        assert_eq!(
            locked.tail().serial,
            3,
            "serial 2 must never be issued again"
        );
        assert_eq!(snapshot(dir.path()), before);
        let r = record(locked.tail(), "CA");
        let appended = locked.append(&r).unwrap();
        assert_eq!(appended.repaired, Some(Repaired::NewlineRestored(2)));
        drop(locked);
        let after = std::fs::read(ledger.path()).unwrap();
        assert!(after.starts_with(&text), "the old bytes were changed");
        let all = ledger.read().unwrap();
        assert_eq!(all.len(), 3);
        chain_heads(&all, "CA").unwrap();
    }

    #[test]
    fn refusals_change_nothing_even_with_a_torn_tail() {
        // A broken chain.
        let (dir, ledger) = with_records(2);
        edit_first_reason(&ledger, "{\"torn");
        let before = snapshot(dir.path());
        assert!(ledger.lock("CA").is_err());
        assert_eq!(snapshot(dir.path()), before);
        // Another CA's ledger.
        assert!(ledger.lock("CA-2").is_err());
        assert_eq!(snapshot(dir.path()), before);
        // Records cut off the end, below the token's newest checkpoint.
        let (dir, ledger) = with_records(1);
        let mut locked = ledger.lock("CA").unwrap();
        let r = record(locked.tail(), "CA");
        let head = locked.append(&r).unwrap().head;
        locked
            .append_checkpoint(&Checkpoint {
                serial: 2,
                head,
                signature: "sig".into(),
            })
            .unwrap();
        drop(locked);
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        let first = text.lines().next().unwrap();
        std::fs::write(ledger.path(), format!("{first}\n{{\"torn")).unwrap();
        let before = snapshot(dir.path());
        let err = ledger.lock("CA").err().unwrap().to_string();
        assert!(err.contains("up to serial 2"), "{err}");
        assert_eq!(snapshot(dir.path()), before);
    }

    #[test]
    fn a_refusal_creates_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        let locked = ledger.lock("CA").unwrap();
        drop(locked);
        // Only the lock file: no ledger, no checkpoints until a record is appended.
        assert_eq!(
            snapshot(dir.path()),
            vec![(LOCK_FILE.to_string(), Vec::new())]
        );
    }

    #[test]
    fn state_files_are_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path()).require_checkpoints(true);
        let mut locked = ledger.lock("CA").unwrap();
        let r = record(locked.tail(), "CA");
        let head = locked.append(&r).unwrap().head;
        locked
            .append_checkpoint(&Checkpoint {
                serial: 1,
                head,
                signature: "s".into(),
            })
            .unwrap();
        drop(locked);
        for name in [LEDGER_FILE, LOCK_FILE, checkpoint::FILE] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
        }
    }

    #[test]
    fn symbolic_links_in_the_state_directory_are_never_followed() {
        for name in [LEDGER_FILE, LOCK_FILE, checkpoint::FILE] {
            let (dir, ledger) = with_records(1);
            let elsewhere = tempfile::tempdir().unwrap();
            let victim = elsewhere.path().join("victim");
            std::fs::write(&victim, "precious\n").unwrap();
            let _ = std::fs::remove_file(dir.path().join(name));
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
            let before = snapshot(dir.path());
            let err = ledger.lock("CA").err().unwrap().to_string();
            assert!(
                err.contains("is a symbolic link; refusing to follow it"),
                "{name}: {err}"
            );
            assert_eq!(snapshot(dir.path()), before);
            assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
        }
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join(LEDGER_FILE)).unwrap();
        assert!(Ledger::new(dir.path()).read().is_err());
    }

    #[test]
    fn a_second_writer_under_a_deleted_lock_is_caught_before_anything_is_written() {
        let (dir, ledger) = with_records(1);
        // The first mint holds the lock (waiting at its PIN prompt) ...
        let mut first = ledger.lock("CA").unwrap();
        assert_eq!(first.tail().serial, 2);
        // ... the lock file is deleted, and a second mint takes a new one and issues serial 2.
        std::fs::remove_file(dir.path().join(LOCK_FILE)).unwrap();
        let second_ledger = Ledger::new(dir.path());
        let r = issue(&second_ledger, "CA");
        assert_eq!(r.serial, 2);
        let after_second = std::fs::read(ledger.path()).unwrap();
        // The first mint must not issue serial 2 again.
        let err = first.check_unchanged().unwrap_err().to_string();
        assert!(
            err.contains("changed while this mint held its lock"),
            "{err}"
        );
        let r = record(first.tail(), "CA");
        assert!(first.append(&r).is_err());
        drop(first);
        assert_eq!(std::fs::read(ledger.path()).unwrap(), after_second);
        let all = ledger.read().unwrap();
        chain_heads(&all, "CA").unwrap();
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn a_deleted_lock_alone_does_not_stop_the_mint_holding_it() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        let mut locked = ledger.lock("CA").unwrap();
        std::fs::remove_file(dir.path().join(LOCK_FILE)).unwrap();
        let r = record(locked.tail(), "CA");
        locked.append(&r).unwrap();
        // It locked the new lock file too, so a mint starting now waits for it.
        let lock = dir.path().join(LOCK_FILE);
        let other = File::open(&lock).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(locked);
        other.try_lock().unwrap();
    }

    #[test]
    fn a_waiting_mint_notices_its_lock_file_was_replaced() {
        let (dir, ledger) = with_records(1);
        let holder = ledger.lock("CA").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let ledger = Ledger::new(&path);
            let mut locked = ledger.lock("CA").unwrap();
            let r = record(locked.tail(), "CA");
            locked.append(&r).unwrap();
            tx.send(r.serial).unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        // The waiter blocks on the old lock file; it is deleted and a third mint takes a new one.
        std::fs::remove_file(dir.path().join(LOCK_FILE)).unwrap();
        let third_ledger = Ledger::new(dir.path());
        let mut third = third_ledger.lock("CA").unwrap();
        drop(holder); // the waiter gets the old file's lock, sees it is stale, waits for the new one
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
        let r = record(third.tail(), "CA");
        third.append(&r).unwrap();
        assert_eq!(r.serial, 2);
        drop(third);
        let waiter_serial = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(waiter_serial, 3);
        waiter.join().unwrap();
        chain_heads(&ledger.read().unwrap(), "CA").unwrap();
    }

    #[test]
    fn a_large_ledger_is_continued_from_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        for _ in 0..150 {
            let mut locked = ledger.lock("CA").unwrap();
            let mut r = record(locked.tail(), "CA");
            r.reason = "x".repeat(1000);
            locked.append(&r).unwrap();
        }
        assert!(std::fs::metadata(ledger.path()).unwrap().len() > 2 * jsonl::TAIL_CHUNK);
        append_raw(&ledger, b"{\"serial\":151,\"tor");
        let mut locked = ledger.lock("CA").unwrap();
        assert_eq!(locked.tail().serial, 151);
        let r = record(locked.tail(), "CA");
        set_aside(&locked.append(&r).unwrap());
        drop(locked);
        let all = ledger.read().unwrap();
        assert_eq!(all.len(), 151);
        chain_heads(&all, "CA").unwrap();
        // Damage near the end is reported with its line number in the whole file.
        append_raw(&ledger, b"garbage\n");
        let err = ledger.lock("CA").err().unwrap().to_string();
        assert!(err.contains("damaged at line 152"), "{err}");
    }

    #[test]
    fn damaged_complete_line_is_an_error() {
        let (_dir, ledger) = with_records(1);
        let mut f = OpenOptions::new().append(true).open(ledger.path()).unwrap();
        f.write_all(b"garbage\n").unwrap();
        let err = ledger.lock("CA").err().unwrap().to_string();
        assert!(err.contains("damaged at line 2"), "{err}");
    }

    #[test]
    fn a_mint_that_waits_for_the_lock_says_so_through_its_notes_once() {
        use std::sync::{Arc, Mutex};
        let dir = tempfile::tempdir().unwrap();
        let notes = Arc::new(Mutex::new(Vec::new()));
        let sink = notes.clone();
        let ledger = Ledger::new(dir.path()).on_note(move |n| sink.lock().unwrap().push(n.clone()));
        // Nobody else holds the lock: nothing to say.
        issue(&ledger, "CA");
        ledger.read_files().unwrap();
        assert!(notes.lock().unwrap().is_empty());
        // Another mint holds it: one note, before waiting, for each of lock, exclusive and
        // the shared read.
        let other = Ledger::new(dir.path());
        for take in 0..3 {
            let holder = other.lock("CA").unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let path = dir.path().to_path_buf();
            let sink = notes.clone();
            let waiter = std::thread::spawn(move || {
                let ledger =
                    Ledger::new(&path).on_note(move |n| sink.lock().unwrap().push(n.clone()));
                match take {
                    0 => drop(ledger.lock("CA").unwrap()),
                    1 => drop(ledger.exclusive().unwrap()),
                    _ => drop(ledger.read_files().unwrap()),
                }
                tx.send(()).unwrap();
            });
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while notes.lock().unwrap().len() <= take && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert!(rx.try_recv().is_err(), "it did not wait");
            drop(holder);
            rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
            waiter.join().unwrap();
            assert_eq!(*notes.lock().unwrap(), vec![Note::WaitingForLock; take + 1]);
        }
        assert_eq!(
            Note::WaitingForLock.to_string(),
            "Waiting for another mint on this state directory to finish..."
        );
    }

    #[test]
    fn repairs_are_returned_with_the_text_mint_shows() {
        let torn = Repaired::TornLineSetAside(PathBuf::from("STATE/ledger.torn-1"));
        assert_eq!(
            torn.to_string(),
            "the ledger ended in a half-written record from an interrupted mint; no certificate was handed out for it. It was moved to STATE/ledger.torn-1 and the ledger repaired."
        );
        assert_eq!(
            Repaired::NewlineRestored(7).to_string(),
            "the ledger's last record (serial 7) had lost its final newline; it was restored."
        );
        // Nothing to repair: nothing returned, and a repair is made (and returned) once.
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        let mut locked = ledger.lock("CA").unwrap();
        let r = record(locked.tail(), "CA");
        assert_eq!(locked.append(&r).unwrap().repaired, None);
        drop(locked);
        append_raw(&ledger, b"{\"torn");
        let mut locked = ledger.lock("CA").unwrap();
        let r = record(locked.tail(), "CA");
        set_aside(&locked.append(&r).unwrap());
        let r = record(locked.tail(), "CA");
        assert_eq!(locked.append(&r).unwrap().repaired, None);
    }

    #[test]
    fn a_batch_is_chained_before_it_is_appended_in_one_group_commit() {
        let (dir, ledger) = with_records(1);
        append_raw(&ledger, b"{\"serial\":2,\"torn");
        let mut locked = ledger.lock("CA").unwrap();
        // Chain three records in memory, each continuing the one before.
        let mut tail = locked.tail().clone();
        let mut batch = Vec::new();
        for _ in 0..3 {
            let r = record(&tail, "CA");
            tail = tail.after(&r).unwrap().1;
            batch.push(r);
        }
        // A batch that does not chain is refused before anything is written or repaired.
        let before = snapshot(dir.path());
        let mut broken = batch.clone();
        broken.swap(1, 2);
        let err = locked.append_all(&broken).unwrap_err().to_string();
        assert!(err.contains("does not continue"), "{err}");
        assert!(locked.append_all(&[]).is_err());
        assert_eq!(snapshot(dir.path()), before);
        // The group commit: the torn line set aside, then all three, then the tail after them.
        let appended = locked.append_all(&batch).unwrap();
        set_aside(&appended);
        assert_eq!(appended.serial, 4);
        assert_eq!(locked.tail(), &tail);
        assert_eq!(appended.head, tail.prev_hash);
        locked.check_unchanged().unwrap();
        drop(locked);
        let all = ledger.read().unwrap();
        assert_eq!(
            all.iter()
                .map(|(_, r)| r.serial_after())
                .collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            all.iter()
                .skip(1)
                .filter_map(|(_, r)| r.issued())
                .collect::<Vec<_>>(),
            batch.iter().collect::<Vec<_>>()
        );
        chain_heads(&all, "CA").unwrap();
        // The next lock continues after the batch.
        assert_eq!(ledger.lock("CA").unwrap().tail(), &tail);
    }

    #[test]
    fn a_revocation_spends_no_serial_and_the_tail_continues_after_it() {
        let (dir, ledger) = with_records(2);
        let v = revoke(&ledger, "CA", "2026-12-01T10:00:00Z", |_| {});
        assert_eq!(v.last_serial, 2);
        let locked = ledger.lock("CA").unwrap();
        let lines = std::fs::read_to_string(ledger.path()).unwrap();
        let last = lines.lines().last().unwrap();
        assert_eq!(
            locked.tail(),
            &Tail {
                serial: 3,
                prev_hash: hex_sha256(last.as_bytes()),
                last_issued_at: Some("2026-12-01T10:00:00Z".into()),
            }
        );
        assert_eq!(locked.revocations(), std::slice::from_ref(&v));
        assert_eq!(locked.entries().unwrap().len(), 3);
        drop(locked);
        chain_heads(&ledger.read().unwrap(), "CA").unwrap();
        // A revocation that does not continue the tail is refused, and nothing is written.
        let mut locked = ledger.lock("CA").unwrap();
        let before = snapshot(dir.path());
        for f in [
            (|v: &mut Revocation| v.last_serial = 1) as fn(&mut Revocation),
            |v| v.prev_hash = "00".into(),
            |v| v.ca_fingerprint = "CA-2".into(),
            |v| v.reason = String::new(),
        ] {
            let mut bad = revocation(&locked, "2026-12-01T10:00:01Z");
            f(&mut bad);
            assert!(locked.append_revocation(&bad).is_err());
            assert_eq!(snapshot(dir.path()), before);
        }
    }

    #[test]
    fn many_revocations_after_the_last_issuance_are_continued_from_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        for _ in 0..200 {
            let mut locked = ledger.lock("CA").unwrap();
            let mut r = record(locked.tail(), "CA");
            r.reason = "x".repeat(1000);
            locked.append(&r).unwrap();
        }
        for i in 0..100u32 {
            let at = format!("2026-12-01T10:{:02}:{:02}Z", i / 60, i % 60);
            revoke(&ledger, "CA", &at, |v| {
                v.reason = format!("{i} {}", "x".repeat(1000))
            });
        }
        assert!(std::fs::metadata(ledger.path()).unwrap().len() > 4 * jsonl::TAIL_CHUNK);
        let locked = ledger.lock("CA").unwrap();
        assert_eq!(locked.tail().serial, 201);
        assert_eq!(locked.revocations().len(), 100);
        assert_eq!(
            locked.tail().last_issued_at.as_deref(),
            Some("2026-12-01T10:01:39Z")
        );
        assert!(locked.seen_start > 0, "the end read is not the whole file");
        assert!(
            locked.seen.len() as u64 > 2 * jsonl::TAIL_CHUNK,
            "it reaches serial 200"
        );
        drop(locked);
        // A cut in the middle of the revocations breaks the last link only when it is
        // the last one; the walk finds it anywhere.
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(260);
        std::fs::write(ledger.path(), lines.join("\n") + "\n").unwrap();
        assert!(
            ledger.lock("CA").is_ok(),
            "mint checks only the newest link"
        );
        let err = chain_heads(&ledger.read().unwrap(), "CA")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("revocation record (line 261)")
                && err.contains("revocation record on line 260 was edited"),
            "{err}"
        );
    }

    #[test]
    fn a_torn_revocation_is_set_aside_and_said_to_be_one() {
        let (dir, ledger) = with_records(1);
        let v = revoke(&ledger, "CA", "2026-12-01T10:00:00Z", |_| {});
        let line = v.line().unwrap();
        append_raw(&ledger, &line.as_bytes()[..line.len() / 2]);
        let before = snapshot(dir.path());
        let mut locked = ledger.lock("CA").unwrap();
        assert_eq!(snapshot(dir.path()), before);
        assert_eq!(
            locked.revocations().len(),
            1,
            "the torn one is not a revocation"
        );
        assert_eq!(locked.entries().unwrap().len(), 2);
        let next = revocation(&locked, "2026-12-01T10:00:01Z");
        let appended = locked.append_revocation(&next).unwrap();
        let side = match &appended.repaired {
            Some(Repaired::TornRevocationSetAside(side)) => side.clone(),
            other => panic!("{other:?}"),
        };
        assert!(Repaired::TornRevocationSetAside(side.clone())
            .to_string()
            .contains("half-written revocation record from an interrupted revoke; that revocation was not recorded"));
        assert_eq!(
            std::fs::read(&side).unwrap(),
            &line.as_bytes()[..line.len() / 2]
        );
        drop(locked);
        assert_eq!(ledger.read().unwrap().len(), 3);
        chain_heads(&ledger.read().unwrap(), "CA").unwrap();
        // A whole revocation that lost its newline: restored, never cut.
        let text = std::fs::read(ledger.path()).unwrap();
        std::fs::write(ledger.path(), &text[..text.len() - 1]).unwrap();
        let mut locked = ledger.lock("CA").unwrap();
        assert_eq!(locked.revocations().len(), 2);
        let next = revocation(&locked, "2026-12-01T10:00:02Z");
        assert_eq!(
            locked.append_revocation(&next).unwrap().repaired,
            Some(Repaired::NewlineRestored(1))
        );
        drop(locked);
        assert!(std::fs::read(ledger.path()).unwrap().starts_with(&text));
        // A damaged revocation line anywhere is found by the scan.
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        std::fs::write(
            ledger.path(),
            text.replacen("{\"kind\":\"revocation\",", "{\"kind\":\"revocation\",,", 1),
        )
        .unwrap();
        let before = snapshot(dir.path());
        let err = ledger.lock("CA").err().unwrap().to_string();
        assert!(err.contains("damaged at line 2"), "{err}");
        assert_eq!(snapshot(dir.path()), before);
    }

    #[test]
    fn the_last_link_of_a_revocation_is_checked() {
        // A small ledger is walked whole; a large one is read from its tail: the same damage
        // is refused either way, and nothing is changed.
        for n in [2usize, 80] {
            let dir = tempfile::tempdir().unwrap();
            let ledger = Ledger::new(dir.path());
            for _ in 0..n {
                let mut locked = ledger.lock("CA").unwrap();
                let mut r = record(locked.tail(), "CA");
                r.reason = "x".repeat(if n > 2 { 1000 } else { 1 });
                locked.append(&r).unwrap();
            }
            let whole = n == 2;
            revoke(&ledger, "CA", "2026-12-01T10:00:00Z", |v| {
                v.serials = vec![(1, 1)]
            });
            let text = std::fs::read_to_string(ledger.path()).unwrap();
            let last = format!("\"last_serial\":{n}");
            let cases = [
                (
                    last.as_str(),
                    "\"last_serial\":1",
                    if whole {
                        "revocation record (line 3): it says the newest serial issued before it is 1, but it follows serial 2".to_string()
                    } else {
                        format!("the newest revocation record says the newest serial before it is 1, but it follows serial {n}")
                    },
                ),
                ("\"reason\":\"leaked\"", "\"reason\":\"\"", "its reason is empty".to_string()),
                (
                    "\"prev_hash\":\"",
                    "\"prev_hash\":\"0",
                    format!("the record before it is not the one it was chained to: serial {n} was edited"),
                ),
                ("2026-12-01T10:00:00Z", "2026-11-01T10:00:00Z", "earlier than the line before it".to_string()),
            ];
            for (from, to, expected) in cases {
                let from = if from == "\"prev_hash\":\"" {
                    // the revocation's own prev_hash (the last one in the file)
                    let i = text.rfind(from).unwrap();
                    let mut t = text.clone();
                    t.replace_range(i..i + from.len(), to);
                    std::fs::write(ledger.path(), t).unwrap();
                    None
                } else {
                    Some(from)
                };
                if let Some(from) = from {
                    assert!(text.contains(from), "{from}");
                    std::fs::write(ledger.path(), text.replacen(from, to, 1)).unwrap();
                }
                let before = snapshot(dir.path());
                let err = ledger.lock("CA").err().unwrap().to_string();
                assert!(err.contains(&expected), "{n} {to}: {err}");
                assert_eq!(snapshot(dir.path()), before);
            }
        }
    }

    /// Red team: a large ledger (read from its tail) whose newest lines are revocations: the
    /// older one's `last_serial` turned back and a forged one appended after it, chained.
    /// Only the newest link was checked, so the next mint took serial 51 again although the
    /// token-signed records 51 to 200 are still in the ledger.
    #[test]
    fn revocations_at_the_end_cannot_turn_the_next_serial_back() {
        let (dir, ledger) = with_records(200);
        assert!(std::fs::metadata(ledger.path()).unwrap().len() > jsonl::TAIL_CHUNK);
        let genuine = revoke(&ledger, "CA", "2026-12-01T10:00:00Z", |_| {});
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut edited = genuine.clone();
        edited.last_serial = 50;
        edited.serials = vec![(50, 50)];
        let edited_line = edited.line().unwrap();
        let mut forged = edited.clone();
        forged.revoked_at = "2026-12-01T10:00:01Z".into();
        forged.prev_hash = hex_sha256(edited_line.as_bytes());
        *lines.last_mut().unwrap() = edited_line;
        lines.push(forged.line().unwrap());
        std::fs::write(ledger.path(), lines.join("\n") + "\n").unwrap();
        let before = snapshot(dir.path());
        let err = ledger.lock("CA").err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("follows serial 200")),
            "{err:?}"
        );
        assert_eq!(snapshot(dir.path()), before);
        // The same with revocations so long that the end read holds no issuance record.
        let (_dir, ledger) = with_records(3);
        for (i, last) in [3u64, 3].into_iter().enumerate() {
            revoke(&ledger, "CA", &format!("2026-12-01T10:00:0{i}Z"), |v| {
                v.reason = "y".repeat(100_000);
                v.last_serial = last;
            });
        }
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut prev = lines[2].clone();
        for line in lines.iter_mut().skip(3) {
            let Entry::Revoked(mut v) = Entry::parse_line(line.as_bytes()).unwrap() else {
                panic!()
            };
            (v.last_serial, v.serials) = (1, vec![(1, 1)]);
            v.prev_hash = hex_sha256(prev.as_bytes());
            *line = v.line().unwrap();
            prev = line.clone();
        }
        std::fs::write(ledger.path(), lines.join("\n") + "\n").unwrap();
        let err = ledger.lock("CA").err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("follows serial 3")),
            "{err:?}"
        );
    }
}
