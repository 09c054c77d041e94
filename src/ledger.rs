//! The issuance ledger: `ledger.jsonl`, one JSON record per certificate, each carrying the hash
//! of the one before it. Serials are allocated and records appended and fsynced under an
//! exclusive lock, before the certificate leaves the process: a crash can lose a certificate
//! nobody received, never the record of one somebody did, and a serial is never reused.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::{self, Checkpoint};
use crate::config::sync_dir;
use crate::error::{Error, Result};

pub const LEDGER_FILE: &str = "ledger.jsonl";
const LOCK_FILE: &str = "ledger.lock";

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

/// What `append` found and did besides appending.
#[derive(Debug, Default)]
pub struct Recovery {
    /// A torn last line (a crash mid-append) was moved here before appending.
    pub torn_saved_to: Option<PathBuf>,
}

/// The ledger of one state directory.
pub struct Ledger {
    dir: PathBuf,
}

/// The exclusive lock on a ledger, held from serial allocation to the durable append.
pub struct Locked<'a> {
    ledger: &'a Ledger,
    ca_fingerprint: String,
    _lock: File,
    file: File,
    tail: Tail,
    recovery: Recovery,
}

impl Ledger {
    pub fn new(dir: &Path) -> Self {
        Ledger {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(LEDGER_FILE)
    }

    /// Every complete record, in order, with the raw line of each. A torn last line is left out
    /// (it belongs to a certificate nobody received); a damaged complete line is an error.
    pub fn read(&self) -> Result<Vec<(String, Record)>> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::file("read the ledger", &path, e)),
        };
        parse_lines(&path, &bytes)
    }

    /// Take the exclusive lock and find where the chain continues. Blocks while another `mint`
    /// holds it. A torn last line is saved aside and cut off here, under the lock. The lock is
    /// released when the returned value is dropped.
    pub fn lock(&self, ca_fingerprint: &str) -> Result<Locked<'_>> {
        let lock_path = self.dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::file("open the ledger lock", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                crate::ui::say("Waiting for another mint on this state directory to finish...");
                lock.lock()
                    .map_err(|e| Error::file("lock", &lock_path, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::file("lock", &lock_path, e)),
        }

        let path = self.path();
        let (file, bytes, torn) = open_append(&self.dir, &path)?;
        let recovery = match torn {
            Some(fragment) => self.save_torn(&fragment)?,
            None => Recovery::default(),
        };
        // Only the end of the ledger is read, so a mint costs the same at serial 10 or 100,000.
        // The whole chain is walked by `status` and `log verify`.
        let records = parse_lines(&path, &bytes)?;
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
        check_last_link(&records, ca_fingerprint)?;
        let newest = records
            .last()
            .map(|(line, r)| (r.serial, hex_sha256(line.as_bytes())));
        check_against_checkpoint(&self.dir, newest.as_ref().map(|(s, h)| (*s, h.as_str())))?;
        let tail = match records.last() {
            None => Tail {
                serial: 1,
                prev_hash: genesis_hash(ca_fingerprint),
                last_issued_at: None,
            },
            Some((line, last)) => Tail {
                serial: last.serial.checked_add(1).ok_or_else(|| {
                    Error::ledger(
                        "the ledger's last serial is the largest possible; no serial is left",
                    )
                })?,
                prev_hash: hex_sha256(line.as_bytes()),
                last_issued_at: Some(last.issued_at.clone()),
            },
        };
        Ok(Locked {
            ledger: self,
            ca_fingerprint: ca_fingerprint.to_string(),
            _lock: lock,
            file,
            tail,
            recovery,
        })
    }

    /// Keep a torn last line (a crash during an append: no certificate for it ever left the
    /// process) in a side file, for the record.
    fn save_torn(&self, fragment: &[u8]) -> Result<Recovery> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.fZ");
        let side = self.dir.join(format!("ledger.torn-{stamp}"));
        crate::config::write_atomic(&side, fragment, 0o600)?;
        Ok(Recovery {
            torn_saved_to: Some(side),
        })
    }
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
    let expected = match tail.len().checked_sub(2).map(|i| &tail[i]) {
        Some((line, before)) => {
            if last.serial != before.serial + 1 {
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

/// The newest signed checkpoint, if any (the last complete line of `checkpoints.jsonl`).
pub fn newest_checkpoint(dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(checkpoint::FILE);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file("open", &path, e)),
    };
    let (bytes, _) = read_tail(&mut file).map_err(|e| Error::file("read", &path, e))?;
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => &bytes[..i],
        None => return Ok(None),
    };
    let last = complete.rsplit(|b| *b == b'\n').next().unwrap_or_default();
    serde_json::from_slice(last).map(Some).map_err(|e| {
        Error::ledger(format!(
            "the newest checkpoint in {} cannot be read: {e}",
            path.display()
        ))
        .with_hint(BROKEN_HINT)
    })
}

/// The ledger must still hold what the token last signed: a record at the checkpoint's serial
/// (records cut off the end would otherwise get their serials reissued), with the signed hash
/// when it is the newest record. `newest` is the newest record's serial and line hash.
pub fn check_against_checkpoint(dir: &Path, newest: Option<(u64, &str)>) -> Result<()> {
    let Some(cp) = newest_checkpoint(dir)? else {
        return Ok(());
    };
    let (last, head) = newest.unwrap_or((0, ""));
    let broken = |what: String| {
        Error::ledger(format!("the ledger chain is broken: {what}")).with_hint(BROKEN_HINT)
    };
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

/// How much of the end of the ledger a mint reads at first: several records of any size.
const TAIL_CHUNK: u64 = 64 * 1024;

/// Open an append-only JSON-lines file (creating it, and fsyncing its directory if new), read
/// its last two complete lines at least (the whole file if small), and cut off a torn last
/// line, which is returned.
fn open_append(dir: &Path, path: &Path) -> Result<(File, Vec<u8>, Option<Vec<u8>>)> {
    let existed = path.exists();
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::file("open", path, e))?;
    if !existed {
        sync_dir(dir).map_err(|e| Error::file("sync", dir, e))?;
    }
    let (mut bytes, start) = read_tail(&mut file).map_err(|e| Error::file("read", path, e))?;
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok((file, bytes, None));
    }
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let fragment = bytes.split_off(keep);
    file.set_len(start + keep as u64)
        .and_then(|_| file.sync_all())
        .and_then(|_| file.seek(SeekFrom::End(0)).map(|_| ()))
        .map_err(|e| Error::file("repair", path, e))?;
    Ok((file, bytes, Some(fragment)))
}

/// The end of the file, from a line start, holding at least three line ends (the whole file
/// if it has fewer); and the offset it starts at.
fn read_tail(file: &mut File) -> std::io::Result<(Vec<u8>, u64)> {
    let len = file.metadata()?.len();
    let mut chunk = TAIL_CHUNK;
    loop {
        let start = len.saturating_sub(chunk);
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(start))?;
        file.read_to_end(&mut bytes)?;
        if start == 0 {
            return Ok((bytes, 0));
        }
        if bytes.iter().filter(|b| **b == b'\n').count() >= 3 {
            // drop the partial first line
            let first = bytes.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
            return Ok((bytes.split_off(first), start + first as u64));
        }
        chunk = chunk.saturating_mul(4);
    }
}

/// Append one line and fsync it.
fn append_line(file: &mut File, path: &Path, line: &str) -> Result<()> {
    file.write_all(format!("{line}\n").as_bytes())
        .and_then(|_| file.sync_data())
        .map_err(|e| Error::file("append to", path, e))
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
        if record.serial != n as u64 {
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

pub(crate) fn parse_lines(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Record)>> {
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &[][..],
    };
    let mut out = Vec::new();
    for (n, line) in complete.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let damaged = |why: String| {
            Error::ledger(format!(
                "the ledger {} is damaged at line {}: {why}",
                path.display(),
                n + 1
            ))
            .with_hint(BROKEN_HINT)
        };
        let text = std::str::from_utf8(line).map_err(|_| damaged("not UTF-8".into()))?;
        let record: Record = serde_json::from_str(text).map_err(|e| damaged(e.to_string()))?;
        out.push((text.to_string(), record));
    }
    Ok(out)
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
        append_line(&mut self.file, &self.ledger.path(), &line)?;
        let head = hex_sha256(line.as_bytes());
        self.tail = Tail {
            serial: record.serial + 1,
            prev_hash: head.clone(),
            last_issued_at: Some(record.issued_at.clone()),
        };
        Ok(head)
    }

    /// Append a signed checkpoint of the head, still under the lock.
    pub fn append_checkpoint(&mut self, cp: &Checkpoint) -> Result<()> {
        let path = self.ledger.dir.join(checkpoint::FILE);
        let (mut file, _, _) = open_append(&self.ledger.dir, &path)?;
        let line = serde_json::to_string(cp)
            .map_err(|e| Error::ledger(format!("cannot encode the checkpoint: {e}")))?;
        append_line(&mut file, &path, &line)
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

    #[test]
    fn torn_tail_is_saved_aside_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA");
        let mut f = OpenOptions::new().append(true).open(ledger.path()).unwrap();
        f.write_all(b"{\"serial\":2,\"key_id\":\"tor").unwrap();
        assert_eq!(ledger.read().unwrap().len(), 1);
        let mut locked = ledger.lock("CA").unwrap();
        let side = locked.recovery().torn_saved_to.clone().unwrap();
        assert_eq!(
            std::fs::read(&side).unwrap(),
            b"{\"serial\":2,\"key_id\":\"tor"
        );
        assert_eq!(locked.tail().serial, 2);
        let r = record(locked.tail(), "CA");
        locked.append(&r).unwrap();
        let all = ledger.read().unwrap();
        assert_eq!(
            all.iter().map(|(_, r)| r.serial).collect::<Vec<_>>(),
            [1, 2]
        );
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
        let mut f = OpenOptions::new().append(true).open(ledger.path()).unwrap();
        f.write_all(b"{\"serial\":151,\"tor").unwrap();
        let locked = ledger.lock("CA").unwrap();
        assert_eq!(locked.tail().serial, 151);
        assert!(locked.recovery().torn_saved_to.is_some());
        drop(locked);
        let all = ledger.read().unwrap();
        assert_eq!(all.len(), 150);
        chain_heads(&all, "CA").unwrap();
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
