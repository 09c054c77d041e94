//! The issuance ledger: `ledger.jsonl`, one JSON record per certificate, each carrying the hash
//! of the one before it. A format-2 record's certificate carries the hash of the record's
//! metadata ([`binding`]), so the token's one signature per certificate signs the record and
//! its link; the format-1 records of 0.1.0 are covered by `checkpoints.jsonl`, the
//! token's signatures over the chain head, which are still checked but no longer made.
//! Serials are allocated and records appended and fsynced under an exclusive lock, before the
//! certificate leaves the process: a crash can lose a certificate nobody received, never the
//! record of one somebody did, and a serial is never reused.
//!
//! Every reader and writer parses lines with [`parse_ledger`] (one parser, one idea of damage).
//! A writer validates before it changes anything, and changes nothing until it appends: the
//! repair of a crashed append (a fragment saved aside and cut, or a complete record's lost
//! newline restored) happens right before the next record is written, never on a refusal, and
//! [`Locked::append`] returns what it repaired.
//!
//! The ledger never prints: what it has to say while it works (waiting for another mint's
//! lock) goes to the [`Note`] callback set with [`Ledger::on_note`], which `cmd/` renders.
//!
//! - `record.rs`: the record type and its line parser;
//! - `chain.rs`: the hash chain (genesis, line hashes, the walk, the last link);
//! - `lock.rs`: the lock, the tail, the unchanged re-check, the repair and the append;
//! - [`binding`]: the metadata of a format-2 record, its hash in the certificate, the check;
//! - [`checkpoint`]: all of `checkpoints.jsonl` (check, parse, newest; sign and append in
//!   tests);
//! - [`verify`]: the full audit (`log verify`) and the cheap check (`status`);
//! - `audit.rs`: how the audit walks a ledger (streamed, signatures checked in parallel);
//! - `jsonl.rs`: the file operations both files share.

mod audit;
pub mod binding;
mod chain;
pub mod checkpoint;
mod jsonl;
mod lock;
mod record;
pub mod revocation;
pub mod verify;

use std::fmt;
use std::path::{Path, PathBuf};

pub use audit::Progress;
pub use chain::{chain_heads, genesis_hash, hex_sha256};
pub use lock::{Appended, LockGuard, Locked, Repaired, Tail};
pub use record::{parse_ledger, BadLine, Entry, Lines, Record};
pub use revocation::{Revocation, Revoked, RevokedKey};
pub use verify::{Copy, Counts, Coverage, Report, Summary, Verified};

use crate::error::{Error, Result};
use crate::fsx;

pub const LEDGER_FILE: &str = "ledger.jsonl";
/// The file `mint` (and `init`, and the readers, shared) lock.
pub const LOCK_FILE: &str = "ledger.lock";

/// What to do about a broken chain.
pub const BROKEN_HINT: &str = "the ledger was altered or damaged after it was written: compare it with the backup kept with the token ('breakglass-ca log verify' checks every record), and treat the certificates of the serials named above as unaccounted for";

/// Something the ledger tells the person running the command while it works. The ledger never
/// prints: `cmd/` shows each note (its `Display` text) on stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// Another process holds the lock on this state directory: this one waits for it.
    WaitingForLock,
    /// `log verify` is taking a while: how far it is.
    Verifying(Progress),
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::WaitingForLock => {
                f.write_str("Waiting for another mint on this state directory to finish...")
            }
            Note::Verifying(p) => match p.estimate {
                Some(total) => write!(f, "verified {} of ~{total} records...", p.done),
                None => write!(f, "verified {} records...", p.done),
            },
        }
    }
}

/// Where a ledger's [`Note`]s go.
type OnNote = Box<dyn Fn(&Note) + Send + Sync>;

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
    on_note: Option<OnNote>,
}

impl Ledger {
    pub fn new(dir: &Path) -> Self {
        Ledger {
            dir: dir.to_path_buf(),
            checkpoints_required: false,
            on_note: None,
        }
    }

    /// With `checkpoints = true` in config.toml: a ledger that ends in a format-1 record
    /// without a `checkpoints.jsonl` (or one holding none) is an error. Format-2 records need
    /// no checkpoint.
    #[must_use]
    pub fn require_checkpoints(mut self, yes: bool) -> Self {
        self.checkpoints_required = yes;
        self
    }

    /// Where this ledger's [`Note`]s go (without this they are dropped).
    #[must_use]
    pub fn on_note(mut self, f: impl Fn(&Note) + Send + Sync + 'static) -> Self {
        self.on_note = Some(Box::new(f));
        self
    }

    fn note(&self, note: Note) {
        if let Some(f) = &self.on_note {
            f(&note);
        }
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

    /// Every record (issuance and revocation), in order, with the raw line of each. A torn
    /// last line is left out (it belongs to a certificate nobody received, or a revocation
    /// never recorded); a record that lost only its newline is in; a damaged complete line (a
    /// blank one too) is an error.
    pub fn read(&self) -> Result<Vec<(String, Entry)>> {
        let Some(bytes) = self.read_bytes()? else {
            return Ok(Vec::new());
        };
        parse_ledger(&bytes)
            .map(|l| l.records)
            .map_err(|bad| record::damaged(&self.path(), bad.index + 1, &bad.why))
    }

    /// The exclusive lock alone (`init` holds it while it retires and rewrites the state
    /// files). Creates `ledger.lock` if needed.
    pub fn exclusive(&self) -> Result<LockGuard> {
        self.take_lock(true, true)?
            .ok_or_else(|| Error::ledger("internal error: the lock file was not created"))
    }

    /// `ledger.lock`, locked (see [`lock::take_lock`]); a wait for it is told as a [`Note`].
    fn take_lock(&self, exclusive: bool, create: bool) -> Result<Option<LockGuard>> {
        lock::take_lock(&self.lock_path(), exclusive, create, &|| {
            self.note(Note::WaitingForLock)
        })
    }

    /// The ledger's and the checkpoints' bytes, each read once, under a shared lock (when
    /// there is a lock file): consistent with each other, and exactly what a caller verifies
    /// and exports. `None` for a file that does not exist.
    pub fn read_files(&self) -> Result<Files> {
        let _guard = self.take_lock(false, false)?;
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
        Locked::take(self, ca_fingerprint)
    }

    /// The newest of `records` (the end of this ledger) against the token's newest checkpoint
    /// (see [`checkpoint::check_ledger`]).
    /// Checkpoints are required (`checkpoints = true`) only while the ledger ends in a
    /// format-1 record: a bound record's signed `prev_hash` covers every record before it.
    /// Revocation records after the newest issuance are covered by no checkpoint: the
    /// newest issuance record is compared when it is in `records` (the end of a ledger), else
    /// only its serial (the newest revocation's `last_serial`).
    fn check_signed(&self, records: &[(String, Entry)]) -> Result<()> {
        let newest_issued = records.iter().rev().find_map(|(line, e)| match e {
            Entry::Issued(r) => Some((r, hex_sha256(line.as_bytes()))),
            Entry::Revoked(_) => None,
        });
        let newest = match (&newest_issued, records.last()) {
            (Some((r, head)), _) => Some((r.serial, Some(head.as_str()))),
            (None, Some((_, last))) if last.serial_after() > 0 => Some((last.serial_after(), None)),
            _ => None,
        };
        let ends_old = newest_issued.as_ref().is_some_and(|(r, _)| !r.is_bound());
        checkpoint::check_ledger(&self.dir, newest, self.checkpoints_required && ends_old)
    }
}

/// Helpers the ledger's unit tests share.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::path::Path;

    use super::{Ledger, Locked, Record, Revocation, Tail};

    /// A ledger in a new directory with `n` records of the CA `CA`.
    pub(crate) fn with_records(n: usize) -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        for _ in 0..n {
            issue(&ledger, "CA");
        }
        (dir, ledger)
    }

    /// Edit the first record's reason by hand (breaking the chain), then append `tail`.
    pub(crate) fn edit_first_reason(ledger: &Ledger, tail: &str) {
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        let edited = text.replacen("\"reason\":\"test\"", "\"reason\":\"edited\"", 1);
        std::fs::write(ledger.path(), edited + tail).unwrap();
    }

    pub(crate) fn record(tail: &Tail, ca: &str) -> Record {
        Record {
            format: None,
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
            dual_control: None,
            metadata: None,
        }
    }

    /// A requester key the revocations of the tests revoke (carol's: not the key the tests
    /// mint for).
    pub(crate) const CAROL: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEiPWfHTVUvG5z0zfXVvb7xPMh6/tIRYQzoMAZFkKqXU carol";

    /// A revocation continuing `locked`'s tail at `at`: the newest serial (if any) and
    /// carol's key.
    pub(crate) fn revocation(locked: &Locked<'_>, at: &str) -> Revocation {
        let tail = locked.tail();
        let last = tail.serial - 1;
        let carol = ssh_key::PublicKey::from_openssh(CAROL).unwrap();
        Revocation {
            kind: super::revocation::RecordKind::Revocation,
            format: super::revocation::FORMAT,
            serials: if last > 0 { vec![(last, last)] } else { vec![] },
            key_ids: vec![],
            requester_keys: vec![super::RevokedKey::of(carol.key_data()).unwrap()],
            ca_keys: vec![],
            reason: "leaked".into(),
            revoked_at: at.into(),
            revoked_by: "tester".into(),
            host: "laptop".into(),
            tool_version: "0".into(),
            ca_fingerprint: locked.ca_fingerprint().to_string(),
            last_serial: last,
            prev_hash: tail.prev_hash.clone(),
        }
    }

    /// Lock, append a revocation (see [`revocation`]) made by `f`, unlock.
    pub(crate) fn revoke(
        ledger: &Ledger,
        ca: &str,
        at: &str,
        f: impl FnOnce(&mut Revocation),
    ) -> Revocation {
        let mut locked = ledger.lock(ca).unwrap();
        let mut v = revocation(&locked, at);
        f(&mut v);
        locked.append_revocation(&v).unwrap();
        v
    }

    /// Lock, append the next record, unlock.
    pub(crate) fn issue(ledger: &Ledger, ca: &str) -> Record {
        let mut locked = ledger.lock(ca).unwrap();
        let r = record(locked.tail(), ca);
        locked.append(&r).unwrap();
        r
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

    pub(crate) fn append_raw(ledger: &Ledger, bytes: &[u8]) {
        let mut f = OpenOptions::new().append(true).open(ledger.path()).unwrap();
        f.write_all(bytes).unwrap();
    }
}
