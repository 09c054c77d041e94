//! The issuance ledger: `ledger.jsonl`, one JSON record per certificate, each carrying the hash
//! of the one before it. Serials are allocated and records appended and fsynced under an
//! exclusive lock, before the certificate leaves the process: a crash can lose a certificate
//! nobody received, never the record of one somebody did, and a serial is never reused.
//!
//! Every reader and writer parses lines with [`parse_ledger`] (one parser, one idea of damage).
//! A writer validates before it changes anything, and changes nothing until it appends: the
//! repair of a crashed append (a fragment saved aside and cut, or a complete record's lost
//! newline restored) happens right before the next record is written, never on a refusal.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsx;
use checkpoint::Checkpoint;

pub mod checkpoint;
pub mod verify;

pub const LEDGER_FILE: &str = "ledger.jsonl";
/// The file `mint` (and `init`, and the readers, shared) lock.
pub const LOCK_FILE: &str = "ledger.lock";

/// One issued certificate. Field order is the serialised order, and the hash chain covers the
/// exact line written, so records are never re-serialised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub serial: u64,
    pub key_id: String,
    pub principals: Vec<String>,
    /// RFC 3339, UTC.
    pub valid_after: String,
    pub valid_before: String,
    pub requester_key_type: String,
    pub requester_fingerprint: String,
    pub requester_comment: String,
    pub reason: String,
    pub critical_options: BTreeMap<String, String>,
    pub extensions: Vec<String>,
    pub certificate_sha256: String,
    /// The whole certificate line, as handed to the requester.
    pub certificate: String,
    pub ca_fingerprint: String,
    /// When and where it was issued (the custodian laptop's clock and host name).
    pub issued_at: String,
    pub host: String,
    pub tool_version: String,
    /// SHA-256 (hex) of the previous line, or of the genesis value for the first record.
    pub prev_hash: String,
}

impl Record {
    /// The one parser of a ledger line (without its newline), used by `mint`, `status`, `log`
    /// and `log verify` alike: a line is one record, exactly. A blank line is damage.
    pub fn parse_line(line: &[u8]) -> std::result::Result<Record, String> {
        if line.is_empty() {
            return Err("a blank line where a record must be".into());
        }
        let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

/// The lines of a ledger (or of its end), each parsed by [`Record::parse_line`].
#[derive(Debug, Default)]
pub struct Lines {
    /// Every record with its exact line (no newline), in order.
    pub records: Vec<(String, Record)>,
    /// The last record lost only its final newline; it is the last of `records`, and its
    /// serial is issued: the next append completes the line.
    pub unterminated: bool,
    /// Bytes after the last newline that are not a record: an append cut short by a crash,
    /// for a certificate that never left the process.
    pub torn: Option<Vec<u8>>,
}

/// A complete line that is not a record: its index among the lines parsed, and why.
#[derive(Debug)]
pub struct BadLine {
    pub index: usize,
    pub why: String,
}

/// Parse the bytes of a ledger (or of its end, from a line start).
pub fn parse_ledger(bytes: &[u8]) -> std::result::Result<Lines, BadLine> {
    let mut out = Lines::default();
    let mut parts: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let after_last_newline = parts.pop().unwrap_or_default();
    for (index, line) in parts.into_iter().enumerate() {
        let record = Record::parse_line(line).map_err(|why| BadLine { index, why })?;
        out.records
            .push((String::from_utf8_lossy(line).into_owned(), record));
    }
    if !after_last_newline.is_empty() {
        match Record::parse_line(after_last_newline) {
            Ok(record) => {
                out.records.push((
                    String::from_utf8_lossy(after_last_newline).into_owned(),
                    record,
                ));
                out.unterminated = true;
            }
            Err(_) => out.torn = Some(after_last_newline.to_vec()),
        }
    }
    Ok(out)
}

fn damaged(path: &Path, line: usize, why: &str) -> Error {
    Error::ledger(format!(
        "the ledger {} is damaged at line {line}: {why}",
        path.display()
    ))
    .with_hint(BROKEN_HINT)
}

/// The chain's starting value, bound to the CA so two CAs' ledgers cannot be spliced.
pub fn genesis_hash(ca_fingerprint: &str) -> String {
    hex_sha256(format!("breakglass-ca ledger genesis {ca_fingerprint}").as_bytes())
}

/// SHA-256 (hex) of a record line, without its newline.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the next issuance continues from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tail {
    /// The serial to issue next.
    pub serial: u64,
    pub prev_hash: String,
    /// The newest record's `issued_at`, if any, for the clock check.
    pub last_issued_at: Option<String>,
}

/// What `append` repaired before appending.
#[derive(Debug, Default)]
pub struct Recovery {
    /// A torn last line (a crash mid-append) was saved here, then cut off.
    pub torn_saved_to: Option<PathBuf>,
    /// The last record had lost only its final newline, which was restored (its serial stays
    /// issued).
    pub completed_serial: Option<u64>,
}

/// The bytes of `ledger.jsonl` and `checkpoints.jsonl`, read together; `None` for a file
/// that does not exist.
pub struct Files {
    pub ledger: Option<Vec<u8>>,
    pub checkpoints: Option<Vec<u8>>,
}

/// The ledger of one state directory.
pub struct Ledger {
    dir: PathBuf,
    checkpoints_required: bool,
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
/// (0600) if missing; otherwise `Ok(None)` when there is none.
fn take_lock(path: &Path, exclusive: bool, create: bool) -> Result<Option<LockGuard>> {
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
                    crate::ui::say("Waiting for another mint on this state directory to finish...");
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
        path.display()
    ))
    .with_hint(
        "something is deleting the lock file: find it and stop it, then run the command again",
    ))
}

fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The exclusive lock on a ledger, held from serial allocation to the durable append.
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
    recovery: Recovery,
}

#[derive(Debug)]
enum Repair {
    None,
    /// Save this fragment aside, then cut it off.
    Cut(Vec<u8>),
    /// Restore the final newline of this serial's record.
    Newline(u64),
}

impl Ledger {
    pub fn new(dir: &Path) -> Self {
        Ledger {
            dir: dir.to_path_buf(),
            checkpoints_required: false,
        }
    }

    /// With `checkpoints = true` in config.toml: records without a `checkpoints.jsonl` are
    /// an error, and the file is created with the first record.
    #[must_use]
    pub fn require_checkpoints(mut self, yes: bool) -> Self {
        self.checkpoints_required = yes;
        self
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(LEDGER_FILE)
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    /// The bytes of `ledger.jsonl` (never through a link, bounded); `None` if there is none.
    pub fn read_bytes(&self) -> Result<Option<Vec<u8>>> {
        fsx::read_private(&self.path(), fsx::limit::LEDGER, "ledger")
    }

    /// Every record, in order, with the raw line of each. A torn last line is left out (it
    /// belongs to a certificate nobody received); a record that lost only its newline is in;
    /// a damaged complete line (a blank one too) is an error.
    pub fn read(&self) -> Result<Vec<(String, Record)>> {
        let Some(bytes) = self.read_bytes()? else {
            return Ok(Vec::new());
        };
        parse_ledger(&bytes)
            .map(|l| l.records)
            .map_err(|bad| damaged(&self.path(), bad.index + 1, &bad.why))
    }

    /// The exclusive lock alone (`init` holds it while it retires and rewrites the state
    /// files). Creates `ledger.lock` if needed.
    pub fn exclusive(&self) -> Result<LockGuard> {
        take_lock(&self.lock_path(), true, true)?
            .ok_or_else(|| Error::ledger("internal error: the lock file was not created"))
    }

    /// The ledger's and the checkpoints' bytes, each read once, under a shared lock (when
    /// there is a lock file): consistent with each other, and exactly what a caller verifies
    /// and exports. `None` for a file that does not exist.
    pub fn read_files(&self) -> Result<Files> {
        let _guard = take_lock(&self.lock_path(), false, false)?;
        let ledger = self.read_bytes()?;
        let checkpoints = fsx::read_private(
            &self.dir.join(checkpoint::FILE),
            fsx::limit::LEDGER,
            "checkpoint file",
        )?;
        Ok(Files {
            ledger,
            checkpoints,
        })
    }

    /// Take the exclusive lock and find where the chain continues. Blocks while another `mint`
    /// holds it. Everything is checked (the CA, the last link, the token's newest checkpoint)
    /// and nothing is changed: a torn last line is repaired by [`Locked::append`], right
    /// before the next record. The lock is released when the returned value is dropped.
    pub fn lock(&self, ca_fingerprint: &str) -> Result<Locked<'_>> {
        let guard = self.exclusive()?;
        let path = self.path();
        let file = fsx::open_private(&path, OpenOptions::new().read(true).append(true))?;
        let (seen, seen_start) = match &file {
            Some(f) => read_tail(f, &path)?,
            None => (Vec::new(), 0),
        };
        // Only the end of the ledger is read, so a mint costs the same at serial 10 or 100,000.
        // The whole chain is walked by `status` and `log verify`.
        let lines = parse_ledger(&seen).map_err(|bad| {
            let before = file
                .as_ref()
                .and_then(|f| count_lines(f, seen_start).ok())
                .unwrap_or(0);
            damaged(&path, before + bad.index + 1, &bad.why)
        })?;
        let records = &lines.records;
        if let Some((_, last)) = records.last() {
            if last.ca_fingerprint != ca_fingerprint {
                return Err(Error::ledger(format!(
                    "the ledger {} belongs to the CA {}, but this CA key is {}",
                    path.display(),
                    last.ca_fingerprint,
                    ca_fingerprint
                ))
                .with_hint(
                    "each CA keeps its own ledger: use that CA's state directory with --state-dir",
                ));
            }
        }
        // Never extend a chain whose last link is broken (that would bury the damage), nor one
        // that lost records the token already signed for (that would reuse their serials).
        if seen_start == 0 {
            chain_heads(records, ca_fingerprint)?; // the whole (small) ledger was read
        } else {
            check_last_link(records, ca_fingerprint)?;
        }
        let newest = records
            .last()
            .map(|(line, r)| (r.serial, hex_sha256(line.as_bytes())));
        check_against_checkpoint(
            &self.dir,
            newest.as_ref().map(|(s, h)| (*s, h.as_str())),
            self.checkpoints_required,
        )?;
        let tail = match records.last() {
            None => Tail {
                serial: 1,
                prev_hash: genesis_hash(ca_fingerprint),
                last_issued_at: None,
            },
            Some((line, last)) => Tail {
                serial: next_serial(last.serial)?,
                prev_hash: hex_sha256(line.as_bytes()),
                last_issued_at: Some(last.issued_at.clone()),
            },
        };
        let repair = match (lines.torn, records.last()) {
            (Some(fragment), _) => Repair::Cut(fragment),
            (None, Some((_, last))) if lines.unterminated => Repair::Newline(last.serial),
            _ => Repair::None,
        };
        Ok(Locked {
            ledger: self,
            ca_fingerprint: ca_fingerprint.to_string(),
            guards: vec![guard],
            file,
            seen_start,
            seen,
            repair,
            tail,
            recovery: Recovery::default(),
        })
    }
}

/// The serial after `serial`, checked: a value read from disk may be the largest.
fn next_serial(serial: u64) -> Result<u64> {
    serial.checked_add(1).ok_or_else(|| {
        Error::ledger(format!(
            "the ledger's last serial is {serial}, the largest possible; no serial is left"
        ))
        .with_hint(BROKEN_HINT)
    })
}

/// The last link of the chain: the newest record continues the one before it (or the genesis
/// value if it is serial 1).
fn check_last_link(tail: &[(String, Record)], ca_fingerprint: &str) -> Result<()> {
    let broken = |what: String| {
        Error::ledger(format!("the ledger chain is broken: {what}")).with_hint(BROKEN_HINT)
    };
    let Some((_, last)) = tail.last() else {
        return Ok(());
    };
    let expected = match tail.len().checked_sub(2).and_then(|i| tail.get(i)) {
        Some((line, before)) => {
            if before.serial.checked_add(1) != Some(last.serial) {
                return Err(broken(format!(
                    "record serial {} follows serial {}; records were removed, inserted or reordered",
                    last.serial, before.serial
                )));
            }
            hex_sha256(line.as_bytes())
        }
        None if last.serial == 1 => genesis_hash(ca_fingerprint),
        None => return Ok(()),
    };
    if last.prev_hash != expected {
        return Err(broken(format!(
            "record serial {}: the record before it is not the one it was chained to: serial {} was edited, or records were removed, inserted or reordered",
            last.serial,
            last.serial.saturating_sub(1)
        )));
    }
    Ok(())
}

/// The newest signed checkpoint, if any: the last line of `checkpoints.jsonl` (one that lost
/// only its newline counts; a torn one does not).
pub fn newest_checkpoint(dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(checkpoint::FILE);
    let Some(file) = fsx::open_private(&path, OpenOptions::new().read(true))? else {
        return Ok(None);
    };
    let (bytes, _) = read_tail(&file, &path)?;
    let unreadable = |e: serde_json::Error| {
        Error::ledger(format!(
            "the newest checkpoint in {} cannot be read: {e}",
            path.display()
        ))
        .with_hint(BROKEN_HINT)
    };
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let after_last_newline = lines.pop().unwrap_or_default();
    if !after_last_newline.is_empty() {
        if let Ok(cp) = serde_json::from_slice(after_last_newline) {
            return Ok(Some(cp));
        }
    }
    match lines.last() {
        Some(last) => serde_json::from_slice(last).map(Some).map_err(unreadable),
        None => Ok(None),
    }
}

/// The ledger must still hold what the token last signed: a record at the checkpoint's serial
/// (records cut off the end would otherwise get their serials reissued), with the signed hash
/// when it is the newest record. `newest` is the newest record's serial and line hash.
/// `required` (`checkpoints = true`): records without any checkpoint (no `checkpoints.jsonl`,
/// or one that holds none) are an error.
pub fn check_against_checkpoint(
    dir: &Path,
    newest: Option<(u64, &str)>,
    required: bool,
) -> Result<()> {
    let broken = |what: String| {
        Error::ledger(format!("the ledger chain is broken: {what}")).with_hint(BROKEN_HINT)
    };
    let cp_path = dir.join(checkpoint::FILE);
    let Some(cp) = newest_checkpoint(dir)? else {
        // No checkpoint at all: the file was removed or emptied (the same to a forger).
        return match (required, newest) {
            (true, Some((last, _))) => Err(missing_checkpoints(&cp_path, last)),
            _ => Ok(()),
        };
    };
    let (last, head) = newest.unwrap_or((0, ""));
    if cp.serial > last {
        return Err(broken(format!(
            "the token signed the ledger up to serial {}, but it now ends at serial {last}: records were removed from the end, and their serials must not be issued again",
            cp.serial
        )));
    }
    if cp.serial == last && cp.head != head {
        return Err(broken(format!(
            "record serial {last} differs from what the token signed: it was edited"
        )));
    }
    Ok(())
}

/// The error for records without `checkpoints.jsonl` while config.toml says `checkpoints = true`.
pub fn missing_checkpoints(path: &Path, last_serial: u64) -> Error {
    Error::ledger(format!(
        "the ledger has records up to serial {last_serial}, but {} is missing or holds no checkpoint although config.toml has checkpoints = true: the token's signatures over the ledger were removed",
        path.display()
    ))
    .with_hint(
        "restore checkpoints.jsonl from the backup kept with the token, then run 'breakglass-ca log verify'. Only if this CA ran with checkpoints = false until now: set checkpoints = false in config.toml again (its records are then checked by their certificates' signatures only)",
    )
}

/// How much of the end of the ledger a mint reads at first: several records of any size.
const TAIL_CHUNK: u64 = 64 * 1024;

/// The end of the file, from a line start, holding at least three line ends (the whole file
/// if it has fewer); and the offset it starts at.
fn read_tail(file: &File, path: &Path) -> Result<(Vec<u8>, u64)> {
    let io = |e| Error::file("read", path, e);
    let len = file.metadata().map_err(io)?.len();
    if len > fsx::limit::LEDGER {
        return Err(Error::ledger(format!(
            "{} is larger than {} MiB; refusing to read it",
            path.display(),
            fsx::limit::LEDGER / (1024 * 1024)
        ))
        .with_hint("this is not a ledger written by breakglass-ca: restore the state directory from the backup"));
    }
    let mut chunk = TAIL_CHUNK;
    loop {
        let start = len.saturating_sub(chunk);
        let bytes = read_range(file, start, len).map_err(io)?;
        if start == 0 {
            return Ok((bytes, 0));
        }
        if bytes.iter().filter(|b| **b == b'\n').count() >= 3 {
            // drop the partial first line
            let first = bytes.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
            let mut bytes = bytes;
            return Ok((bytes.split_off(first), start + first as u64));
        }
        chunk = chunk.saturating_mul(4);
    }
}

/// The bytes of `file` from `start` to `end`.
fn read_range(mut file: &File, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(start))?;
    file.take(end.saturating_sub(start))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// How many lines end before `offset` (for the line number in an error).
fn count_lines(mut file: &File, offset: u64) -> std::io::Result<usize> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = file.take(offset);
    let mut buf = vec![0u8; 64 * 1024];
    let mut count = 0;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(count);
        }
        count += buf.iter().take(n).filter(|b| **b == b'\n').count();
    }
}

/// Append one line and fsync it.
fn append_line(mut file: &File, path: &Path, line: &[u8]) -> Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line);
    bytes.push(b'\n');
    file.write_all(&bytes)
        .and_then(|_| file.sync_data())
        .map_err(|e| Error::file("append to", path, e))
}

/// Keep a torn fragment in a new side file beside `path` (`<stem>.torn-<time>`, never one
/// that exists), fsynced, before anything is cut.
fn save_fragment(dir: &Path, stem: &str, fragment: &[u8]) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.9fZ");
    for n in 0..100u32 {
        let name = match n {
            0 => format!("{stem}.torn-{stamp}"),
            n => format!("{stem}.torn-{stamp}-{n}"),
        };
        let side = dir.join(name);
        if std::fs::symlink_metadata(&side).is_ok() {
            continue;
        }
        fsx::write_new(&side, fragment, fsx::PRIVATE_FILE)?;
        return Ok(side);
    }
    Err(Error::ledger(format!(
        "cannot find a free name for the torn fragment of {stem} in {}",
        dir.display()
    )))
}

/// What to do about a broken chain.
pub const BROKEN_HINT: &str = "the ledger was altered or damaged after it was written: compare it with the backup kept with the token ('breakglass-ca log verify' checks every record), and treat the certificates of the serials named above as unaccounted for";

/// Walk the hash chain: serials 1, 2, 3… with each `prev_hash` the hash of the line before
/// (the first: the genesis value of this CA). Returns the hash of every line. Cheap: no
/// signature is checked here.
pub fn chain_heads(records: &[(String, Record)], ca_fingerprint: &str) -> Result<Vec<String>> {
    let broken = |what: String| {
        Error::ledger(format!("the ledger chain is broken: {what}")).with_hint(BROKEN_HINT)
    };
    let mut heads = Vec::with_capacity(records.len());
    let mut prev = genesis_hash(ca_fingerprint);
    for (i, (line, record)) in records.iter().enumerate() {
        let n = i + 1;
        let at = format!("record serial {} (line {n})", record.serial);
        if u64::try_from(n).ok() != Some(record.serial) {
            return Err(broken(format!(
                "{at}: expected serial {n}; records were removed, inserted or reordered"
            )));
        }
        if record.prev_hash != prev {
            return Err(broken(if n == 1 {
                format!(
                    "{at}: it does not start the ledger of the CA {ca_fingerprint}: the ledger belongs to another CA (it names {}), or its first record was edited",
                    record.ca_fingerprint
                )
            } else {
                format!(
                    "{at}: the record before it is not the one it was chained to: serial {} was edited, or records were removed, inserted or reordered",
                    n - 1
                )
            }));
        }
        prev = hex_sha256(line.as_bytes());
        heads.push(prev.clone());
    }
    Ok(heads)
}

impl Locked<'_> {
    /// The CA whose ledger this is.
    pub fn ca_fingerprint(&self) -> &str {
        &self.ca_fingerprint
    }

    pub fn tail(&self) -> &Tail {
        &self.tail
    }

    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub fn recovery_mut(&mut self) -> &mut Recovery {
        &mut self.recovery
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
                path.display()
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
        let now =
            read_range(file, self.seen_start, end).map_err(|e| Error::file("read", &path, e))?;
        if now != self.seen {
            return Err(changed("its last records changed"));
        }
        Ok(())
    }

    /// Make the repair found when the lock was taken, right before the next append: save a
    /// torn fragment aside (fsynced) and only then cut it, or restore a complete record's
    /// newline.
    fn repair(&mut self) -> Result<()> {
        let path = self.ledger.path();
        let Some(file) = &self.file else {
            return Ok(());
        };
        match std::mem::replace(&mut self.repair, Repair::None) {
            Repair::None => {}
            Repair::Newline(serial) => {
                append_line(file, &path, b"")?;
                self.seen.push(b'\n');
                self.recovery.completed_serial = Some(serial);
            }
            Repair::Cut(fragment) => {
                let side = save_fragment(&self.ledger.dir, "ledger", &fragment)?;
                let keep = self.seen.len().saturating_sub(fragment.len());
                self.seen.truncate(keep);
                file.set_len(self.seen_start + keep as u64)
                    .and_then(|_| file.sync_all())
                    .map_err(|e| Error::file("repair", &path, e))?;
                self.recovery.torn_saved_to = Some(side);
            }
        }
        Ok(())
    }

    /// Append the record for the serial this lock allocated and fsync it; returns the new
    /// head hash. Only after this returns may the certificate be written out.
    pub fn append(&mut self, record: &Record) -> Result<String> {
        if record.serial != self.tail.serial || record.prev_hash != self.tail.prev_hash {
            return Err(Error::ledger(
                "internal error: the record does not continue the ledger it was allocated from",
            ));
        }
        let line = serde_json::to_string(record)
            .map_err(|e| Error::ledger(format!("cannot encode the ledger record: {e}")))?;
        let next = next_serial(record.serial)?;
        self.check_unchanged()?;
        self.repair()?;
        let path = self.ledger.path();
        if self.file.is_none() {
            self.file = Some(fsx::create_private(
                &path,
                OpenOptions::new().read(true).append(true),
            )?);
        }
        let cp_path = self.ledger.dir.join(checkpoint::FILE);
        if self.ledger.checkpoints_required && std::fs::symlink_metadata(&cp_path).is_err() {
            // From the first record on, a missing checkpoint file means it was removed.
            fsx::create_private(&cp_path, OpenOptions::new().append(true))?;
        }
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| Error::ledger("internal error: no ledger file"))?;
        append_line(file, &path, line.as_bytes())?;
        self.seen.extend_from_slice(line.as_bytes());
        self.seen.push(b'\n');
        let head = hex_sha256(line.as_bytes());
        self.tail = Tail {
            serial: next,
            prev_hash: head.clone(),
            last_issued_at: Some(record.issued_at.clone()),
        };
        Ok(head)
    }

    /// Append a signed checkpoint of the head, still under the lock. A torn last line of the
    /// checkpoint file is saved aside before it is cut; one that lost only its newline gets
    /// it back.
    pub fn append_checkpoint(&mut self, cp: &Checkpoint) -> Result<()> {
        let dir = &self.ledger.dir;
        let path = dir.join(checkpoint::FILE);
        let file = match fsx::open_private(&path, OpenOptions::new().read(true).append(true))? {
            Some(f) => f,
            None => fsx::create_private(&path, OpenOptions::new().read(true).append(true))?,
        };
        let (bytes, start) = read_tail(&file, &path)?;
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let fragment = bytes.get(keep..).unwrap_or_default();
            if serde_json::from_slice::<Checkpoint>(fragment).is_ok() {
                append_line(&file, &path, b"")?;
            } else {
                save_fragment(dir, "checkpoints", fragment)?;
                file.set_len(start + keep as u64)
                    .and_then(|_| file.sync_all())
                    .map_err(|e| Error::file("repair", &path, e))?;
            }
        }
        let line = serde_json::to_string(cp)
            .map_err(|e| Error::ledger(format!("cannot encode the checkpoint: {e}")))?;
        append_line(&file, &path, line.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record(tail: &Tail, ca: &str) -> Record {
        Record {
            serial: tail.serial,
            key_id: format!("k{}", tail.serial),
            principals: vec!["breakglass".into()],
            valid_after: "2026-11-22T00:00:00Z".into(),
            valid_before: "2026-11-22T00:15:00Z".into(),
            requester_key_type: "ssh-ed25519".into(),
            requester_fingerprint: "SHA256:r".into(),
            requester_comment: "alice".into(),
            reason: "test".into(),
            critical_options: BTreeMap::new(),
            extensions: vec!["permit-pty".into()],
            certificate_sha256: "SHA256:c".into(),
            certificate: "cert".into(),
            ca_fingerprint: ca.into(),
            issued_at: "2026-11-22T00:05:00Z".into(),
            host: "laptop".into(),
            tool_version: "0".into(),
            prev_hash: tail.prev_hash.clone(),
        }
    }

    fn issue(ledger: &Ledger, ca: &str) -> Record {
        let mut locked = ledger.lock(ca).unwrap();
        let r = record(locked.tail(), ca);
        locked.append(&r).unwrap();
        r
    }

    #[test]
    fn serials_start_at_one_and_chain() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        let a = issue(&ledger, "CA");
        let b = issue(&ledger, "CA");
        assert_eq!((a.serial, b.serial), (1, 2));
        assert_eq!(a.prev_hash, genesis_hash("CA"));
        let lines = ledger.read().unwrap();
        assert_eq!(b.prev_hash, hex_sha256(lines[0].0.as_bytes()));
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn another_cas_ledger_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA-1");
        let err = ledger.lock("CA-2").err().unwrap().to_string();
        assert!(err.contains("belongs to the CA CA-1"), "{err}");
    }

    /// Every entry of a directory: name -> content (or the link target), sorted.
    pub(crate) fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut all: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let meta = std::fs::symlink_metadata(e.path()).unwrap();
                let content = if meta.file_type().is_symlink() {
                    std::fs::read_link(e.path())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                        .into_bytes()
                } else {
                    std::fs::read(e.path()).unwrap()
                };
                (e.file_name().to_string_lossy().into_owned(), content)
            })
            .collect();
        all.sort();
        all
    }

    fn append_raw(ledger: &Ledger, bytes: &[u8]) {
        let mut f = OpenOptions::new().append(true).open(ledger.path()).unwrap();
        f.write_all(bytes).unwrap();
    }

    #[test]
    fn torn_tail_is_saved_aside_and_cut_when_the_next_record_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA");
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
        locked.append(&r).unwrap();
        let side = locked.recovery().torn_saved_to.clone().unwrap();
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
            all.iter().map(|(_, r)| r.serial).collect::<Vec<_>>(),
            [1, 2]
        );
        chain_heads(&all, "CA").unwrap();
        // A second torn tail gets its own side file, never over the first.
        append_raw(&ledger, b"{\"serial\":3,\"also torn");
        let mut locked = ledger.lock("CA").unwrap();
        let r = record(locked.tail(), "CA");
        locked.append(&r).unwrap();
        let second = locked.recovery().torn_saved_to.clone().unwrap();
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
    fn torn_fragments_never_overwrite_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let names: std::collections::BTreeSet<PathBuf> = (0..20)
            .map(|i| save_fragment(dir.path(), "ledger", format!("{i}").as_bytes()).unwrap())
            .collect();
        assert_eq!(names.len(), 20);
        assert_eq!(snapshot(dir.path()).len(), 20);
    }

    #[test]
    fn a_record_that_lost_only_its_newline_is_completed_never_cut() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA");
        issue(&ledger, "CA");
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
        locked.append(&r).unwrap();
        assert_eq!(locked.recovery().completed_serial, Some(2));
        assert!(locked.recovery().torn_saved_to.is_none());
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
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA");
        issue(&ledger, "CA");
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        std::fs::write(
            ledger.path(),
            text.replacen("\"reason\":\"test\"", "\"reason\":\"edited\"", 1) + "{\"torn",
        )
        .unwrap();
        let before = snapshot(dir.path());
        assert!(ledger.lock("CA").is_err());
        assert_eq!(snapshot(dir.path()), before);
        // Another CA's ledger.
        assert!(ledger.lock("CA-2").is_err());
        assert_eq!(snapshot(dir.path()), before);
        // Records cut off the end, below the token's newest checkpoint.
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA");
        let mut locked = ledger.lock("CA").unwrap();
        let r = record(locked.tail(), "CA");
        let head = locked.append(&r).unwrap();
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
    fn a_blank_line_is_damage_for_every_reader() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA");
        append_raw(&ledger, b"\n");
        let err = ledger.read().unwrap_err().to_string();
        assert!(err.contains("damaged at line 2: a blank line"), "{err}");
        let err = ledger.lock("CA").err().unwrap().to_string();
        assert!(err.contains("damaged at line 2: a blank line"), "{err}");
        let bytes = std::fs::read(ledger.path()).unwrap();
        assert_eq!(parse_ledger(&bytes).unwrap_err().index, 1);
        assert!(parse_ledger(b"\n").is_err());
        assert!(parse_ledger(b"").unwrap().records.is_empty());
    }

    #[test]
    fn with_checkpoints_on_records_without_the_checkpoint_file_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path()).require_checkpoints(true);
        issue(&ledger, "CA");
        // The first record creates the checkpoint file; this test signs no checkpoint into it,
        // and a file that holds none is as good as a removed one.
        let cps = dir.path().join(checkpoint::FILE);
        assert_eq!(std::fs::read(&cps).unwrap(), b"");
        for removed in [false, true] {
            if removed {
                std::fs::remove_file(&cps).unwrap();
            }
            let before = snapshot(dir.path());
            let err = ledger.lock("CA").err().unwrap();
            assert!(
                err.to_string()
                    .contains("checkpoints.jsonl is missing or holds no checkpoint"),
                "{err}"
            );
            assert!(err.hint().unwrap().contains("restore checkpoints.jsonl"));
            assert_eq!(snapshot(dir.path()), before);
            let err = check_against_checkpoint(dir.path(), Some((1, "h")), true).unwrap_err();
            assert!(err.to_string().contains("is missing"), "{err}");
        }
        // Without the setting, the same ledger is continued.
        Ledger::new(dir.path()).lock("CA").unwrap();
    }

    #[test]
    fn state_files_are_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path()).require_checkpoints(true);
        let mut locked = ledger.lock("CA").unwrap();
        let r = record(locked.tail(), "CA");
        let head = locked.append(&r).unwrap();
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
            let dir = tempfile::tempdir().unwrap();
            let ledger = Ledger::new(dir.path());
            issue(&ledger, "CA");
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
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA");
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
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA");
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
    fn serial_arithmetic_on_disk_values_is_checked() {
        assert!(next_serial(u64::MAX).is_err());
        assert_eq!(next_serial(7).unwrap(), 8);
        let mut a = record(
            &Tail {
                serial: u64::MAX,
                prev_hash: "x".into(),
                last_issued_at: None,
            },
            "CA",
        );
        let line = serde_json::to_string(&a).unwrap();
        let before = a.clone();
        a.serial = 5;
        let tail = vec![(line, before), (String::new(), a)];
        let err = check_last_link(&tail, "CA").unwrap_err().to_string();
        assert!(err.contains("follows serial 18446744073709551615"), "{err}");
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
        assert!(std::fs::metadata(ledger.path()).unwrap().len() > 2 * TAIL_CHUNK);
        append_raw(&ledger, b"{\"serial\":151,\"tor");
        let mut locked = ledger.lock("CA").unwrap();
        assert_eq!(locked.tail().serial, 151);
        let r = record(locked.tail(), "CA");
        locked.append(&r).unwrap();
        assert!(locked.recovery().torn_saved_to.is_some());
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
    fn a_broken_chain_is_never_extended() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA");
        issue(&ledger, "CA");
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        std::fs::write(
            ledger.path(),
            text.replacen("\"reason\":\"test\"", "\"reason\":\"edited\"", 1),
        )
        .unwrap();
        let err = ledger.lock("CA").err().unwrap().to_string();
        assert!(
            err.contains("chain is broken") && err.contains("serial 1 was edited"),
            "{err}"
        );
    }

    #[test]
    fn damaged_complete_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA");
        let mut f = OpenOptions::new().append(true).open(ledger.path()).unwrap();
        f.write_all(b"garbage\n").unwrap();
        let err = ledger.lock("CA").err().unwrap().to_string();
        assert!(err.contains("damaged at line 2"), "{err}");
    }
}
