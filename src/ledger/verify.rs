//! Verifying a ledger without the token: the full audit `log verify` runs (the hash chain,
//! every stored certificate against its record and the CA key, each format-2 record's ledger
//! binding, and the checkpoints of the format-1 part), and the cheap check `status` runs (the
//! chain, the newest checkpoint, and the newest record's certificate when it is bound).
//! [`check_record`] checks one record alone and is pure, so records can be checked in
//! parallel.
//! The audit works on the raw bytes of the files, so the state directory and an exported
//! bundle are checked by the same code, and it parses lines with the same parsers as `mint`.

use std::fs::OpenOptions;
use std::io::Write;

use ssh_key::public::KeyData;
use ssh_key::Certificate;

use super::audit::{self, Input};
use super::binding::{self, EXTENSION};
use super::checkpoint::{self, Checkpoint};
use super::{chain_heads, Entry, Ledger, Note, Record, BROKEN_HINT};
use crate::cert;
use crate::error::{Error, Result};
use crate::fsx;
use crate::issue::rfc3339;
use crate::text::ShowPath;

/// What a successful verification found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The newest record's serial: the ledger holds serials 1 to this, each once.
    pub last_serial: u64,
    /// Records in format 1 (written by 0.1.0), which checkpoints cover.
    pub old_records: u64,
    /// Records in format 2, whose certificates carry their ledger binding.
    pub bound_records: u64,
    /// Records of mints with a signed request (format 3), and the approvals they hold.
    pub requests: u64,
    pub approvals: u64,
    /// Revocation records (no serial of their own).
    pub revocations: u64,
    /// Revocation records after the newest issuance record: no token signature covers them
    /// yet (the next certificate's ledger binding will, through its `prev_hash`).
    pub uncovered_revocations: u64,
    pub checkpoints: usize,
    /// The newest checkpoint, verified: it covers the records up to its serial.
    pub newest_checkpoint: Option<Checkpoint>,
    /// Things an auditor should know that are not tampering (a torn tail, unsigned records).
    pub warnings: Vec<String>,
    /// The ledger ends in a torn fragment (a half-written record; see the warning).
    pub torn_tail: bool,
    /// The ledger's last record lost only its final newline (see the warning).
    pub unterminated: bool,
}

impl Report {
    /// The newest record covered by a valid checkpoint (0 for none).
    pub fn last_signed_serial(&self) -> u64 {
        self.newest_checkpoint.as_ref().map_or(0, |cp| cp.serial)
    }

    /// What covers which records, as `status` reports it from [`Ledger::summary`].
    pub fn coverage(&self) -> Coverage {
        Coverage::new(
            Counts {
                last_serial: self.last_serial,
                old_records: self.old_records,
                bound_records: self.bound_records,
                revocations: self.revocations,
                uncovered_revocations: self.uncovered_revocations,
            },
            self.last_signed_serial(),
            self.torn_tail,
            self.unterminated,
        )
    }
}

/// The record counts of a ledger, as the audit walk and [`Ledger::summary`] both count them:
/// an issuance record is bound (format 2) or old (format 1) and covers every revocation before
/// it; a revocation is uncovered until an issuance record follows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub last_serial: u64,
    pub old_records: u64,
    pub bound_records: u64,
    pub revocations: u64,
    pub uncovered_revocations: u64,
}

impl Counts {
    /// Count one more line.
    pub fn add(&mut self, e: &Entry) {
        match e {
            Entry::Issued(r) => {
                match r.is_bound() {
                    true => self.bound_records += 1,
                    false => self.old_records += 1,
                }
                self.uncovered_revocations = 0;
            }
            Entry::Revoked(_) => {
                self.revocations += 1;
                self.uncovered_revocations += 1;
            }
        }
        self.last_serial = e.serial_after();
    }
}

/// How much of a ledger a token signature covers: the figures `log verify` reports (from its
/// [`Report`]) and `status` shows (from its [`Summary`]), computed by one function.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    /// The newest serial issued: the ledger holds issuance records 1 to this.
    pub last_serial: u64,
    /// Issuance records in format 1 (0.1.0), covered by checkpoints.
    pub old_records: u64,
    /// Issuance records in format 2, each covered by its own certificate's ledger binding.
    pub bound_records: u64,
    /// Revocation records.
    pub revocations: u64,
    /// Records (issuance and revocation lines) covered by a token signature: every bound
    /// record; the old records up to the newest checkpoint, or all of them once a bound record
    /// follows them; every revocation that an issuance record follows (its binding covers it
    /// through the chain).
    pub covered: u64,
    /// Records no token signature covers yet: always the newest lines.
    pub uncovered: u64,
    /// Revocation records after the newest issuance record (part of `uncovered`).
    pub uncovered_revocations: u64,
    /// The serial the newest checkpoint covers (0 for none).
    pub newest_checkpoint: u64,
    /// The newest record is covered by a token signature (true for an empty ledger).
    pub newest_covered: bool,
    /// The ledger ends in a torn fragment (an interrupted append, set aside by the next mint).
    pub torn_tail: bool,
    /// The last record lost only its final newline (the next mint restores it).
    pub unterminated: bool,
}

impl Default for Coverage {
    /// An empty ledger's.
    fn default() -> Self {
        Coverage::new(Counts::default(), 0, false, false)
    }
}

impl Coverage {
    pub fn new(c: Counts, newest_checkpoint: u64, torn_tail: bool, unterminated: bool) -> Self {
        let old_covered = match c.bound_records {
            0 => c.old_records.min(newest_checkpoint),
            _ => c.old_records,
        };
        let covered =
            c.bound_records + old_covered + c.revocations.saturating_sub(c.uncovered_revocations);
        let total = c.old_records + c.bound_records + c.revocations;
        let uncovered = total.saturating_sub(covered);
        Coverage {
            last_serial: c.last_serial,
            old_records: c.old_records,
            bound_records: c.bound_records,
            revocations: c.revocations,
            covered,
            uncovered,
            uncovered_revocations: c.uncovered_revocations,
            newest_checkpoint,
            newest_covered: uncovered == 0,
            torn_tail,
            unterminated,
        }
    }
}

/// A ledger verified by [`Ledger::verify`]: the report, and how many bytes of each file
/// were checked (and copied, with [`Ledger::verify_copy`]).
#[derive(Debug)]
pub struct Verified {
    pub report: Report,
    pub ledger_bytes: u64,
    pub checkpoint_bytes: u64,
}

/// What `status` shows of a ledger, from [`Ledger::summary`].
#[derive(Debug)]
pub struct Summary {
    /// How many issuance records it holds.
    pub records: usize,
    /// The newest issuance record.
    pub last: Option<Record>,
    /// The newest line's time (`issued_at` or `revoked_at`), as written.
    pub newest_time: Option<String>,
    /// What covers which records: the same figures as `log verify`'s [`Report::coverage`]
    /// (the newest checkpoint's serial read, its signature not checked: the cheap check).
    pub coverage: Coverage,
    /// What its revocation records revoke, merged (each checked on its own, see
    /// [`super::revocation::check`]; one that fails makes `chain` an error and is left out).
    pub revoked: super::Revoked,
    /// The cheap check: the hash chain walked and the newest record compared with the token's
    /// newest checkpoint (no signature verified). An error says what is broken.
    pub chain: Result<()>,
}

impl Ledger {
    /// `log verify`: the ledger and the checkpoints, streamed once under the shared lock,
    /// verified against the CA public key (see [`audit::walk`]). `None` when there is no
    /// ledger. With checkpoints required, records without any checkpoint are an error.
    pub fn verify(&self, ca: &KeyData) -> Result<Option<Verified>> {
        self.verify_copy(ca, None)
    }

    /// [`Ledger::verify`], copying every byte verified of each file to `copy` (`log export`:
    /// the bundle holds exactly what was checked). On an error the copies are incomplete.
    pub fn verify_copy(&self, ca: &KeyData, copy: Option<Copy<'_>>) -> Result<Option<Verified>> {
        let _guard = self.take_lock(false, false)?;
        let path = self.path();
        let Some(ledger) = fsx::open_private(&path, OpenOptions::new().read(true))? else {
            return Ok(None);
        };
        let cp_path = self.dir.join(checkpoint::FILE);
        let cps = fsx::open_private(&cp_path, OpenOptions::new().read(true))?;
        let size = ledger.metadata().ok().map(|m| m.len());
        let (ledger_copy, cp_copy) = match copy {
            Some(c) => (Some(c.ledger), Some(c.checkpoints)),
            None => (None, None),
        };
        let walked = audit::walk(
            Input {
                reader: Box::new(ledger),
                what: format!("ledger {}", path.shown()),
                copy: ledger_copy,
            },
            Input {
                reader: match cps {
                    Some(f) => Box::new(f),
                    None => Box::new(std::io::empty()),
                },
                what: format!("checkpoint file {}", cp_path.shown()),
                copy: cp_copy,
            },
            ca,
            size,
            &|p| self.note(Note::Verifying(p)),
        )?;
        let report = walked.report;
        // Checkpoints are required for a ledger that ends in format-1 records: once a bound
        // record follows them, its signed `prev_hash` covers them all.
        if self.checkpoints_required
            && report.checkpoints == 0
            && report.old_records > 0
            && report.bound_records == 0
        {
            return Err(checkpoint::missing(&cp_path, report.last_serial));
        }
        Ok(Some(Verified {
            report,
            ledger_bytes: walked.ledger_bytes,
            checkpoint_bytes: walked.checkpoint_bytes,
        }))
    }

    /// `status`: every record read (a damaged line is an error), then the cheap check of the
    /// CA `ca_fingerprint`'s chain, kept in [`Summary::chain`].
    pub fn summary(&self, ca_fingerprint: &str) -> Result<Summary> {
        let lines = match self.read_bytes()? {
            Some(bytes) => super::parse_ledger(&bytes)
                .map_err(|bad| super::record::damaged(&self.path(), bad.index + 1, &bad.why))?,
            None => super::Lines::default(),
        };
        let records = lines.records;
        let mut counts = Counts::default();
        for (_, e) in &records {
            counts.add(e);
        }
        let newest_checkpoint = match checkpoint::newest(&self.dir) {
            Ok(cp) => cp.map_or(0, |cp| cp.serial),
            Err(_) => 0, // the chain check below names it
        };
        let mut revs = Vec::new();
        let mut bad_revocation = None;
        for (i, (line, e)) in records.iter().enumerate() {
            if let Entry::Revoked(v) = e {
                match super::revocation::check(line, v, ca_fingerprint) {
                    Ok(()) => revs.push(v),
                    Err(why) if bad_revocation.is_none() => {
                        bad_revocation = Some(
                            Error::ledger(format!("revocation record (line {}): {why}", i + 1))
                                .with_hint(BROKEN_HINT),
                        );
                    }
                    Err(_) => {}
                }
            }
        }
        let chain = chain_heads(&records, ca_fingerprint)
            .and_then(|_| bad_revocation.map_or(Ok(()), Err))
            .and_then(|_| check_newest(&records, ca_fingerprint))
            .and_then(|_| self.check_signed(&records));
        let revoked = super::Revoked::merge(ca_fingerprint, revs);
        let issued: Vec<&Record> = records.iter().filter_map(|(_, e)| e.issued()).collect();
        Ok(Summary {
            records: issued.len(),
            last: issued.last().map(|r| (*r).clone()),
            newest_time: records.last().map(|(_, e)| e.time().to_string()),
            coverage: Coverage::new(
                counts,
                newest_checkpoint,
                lines.torn.is_some(),
                lines.unterminated,
            ),
            revoked,
            chain,
        })
    }
}

/// Where [`Ledger::verify_copy`] copies the bytes it verifies.
pub struct Copy<'a> {
    pub ledger: &'a mut dyn Write,
    pub checkpoints: &'a mut dyn Write,
}

pub(super) fn broken(what: String) -> Error {
    Error::invalid(format!("ledger verification FAILED: {what}")).with_hint(BROKEN_HINT)
}

/// Verify `ledger` and `checkpoints` (the bytes of `ledger.jsonl` and `checkpoints.jsonl`)
/// against the CA public key. The first broken record is named in the error. Lines are parsed
/// by the ledger's own parsers, so a line `mint` refuses is refused here too, and the reverse.
pub fn verify(ledger: &[u8], checkpoints: &[u8], ca: &KeyData) -> Result<Report> {
    audit::walk(
        Input::new(ledger, "ledger"),
        Input::new(checkpoints, "checkpoint file"),
        ca,
        None,
        &|_| {},
    )
    .map(|w| w.report)
}

/// The report's closing warnings, once everything verified.
pub(super) fn finish(report: &mut Report) {
    if report.uncovered_revocations > 0 {
        report.warnings.push(format!(
            "the newest {} revocation record(s) (after serial {}) are not yet covered by a token signature: the next certificate's ledger binding covers them through the chain; until then only an outside copy of the ledger (and the hosts' KRL version) shows if they were removed or changed",
            report.uncovered_revocations, report.last_serial
        ));
    }
    let last_cp = report.last_signed_serial();
    // Format-1 records after the newest checkpoint are covered when a bound record follows
    // them (its signed prev_hash is the hash of the line before it).
    if report.bound_records == 0 && report.last_serial > last_cp {
        report.warnings.push(format!(
            "{} record(s) after serial {last_cp} are not covered by a signed checkpoint (checkpoints switched off, a mint was interrupted, or checkpoints.jsonl was cut back: compare it with the backup); their certificates were still verified",
            report.last_serial.saturating_sub(last_cp)
        ));
    }
}

/// Why a format-1 record after a format-2 one is refused.
pub(super) const UNBOUND_AFTER_BOUND: &str = "it carries no ledger binding, but records before it do: mint never writes an old-format record after a bound one (it was added or altered, or written by an older breakglass-ca)";

/// Why a format-1 record after a revocation record is refused.
pub(super) const UNBOUND_AFTER_REVOCATION: &str = "it carries no ledger binding, but a revocation record comes before it: a breakglass-ca that writes revocations writes only bound records (it was added or altered, or written by an older breakglass-ca)";

/// One record (`line` its exact line) on its own, against the CA `ca` (`ca_fp` its
/// fingerprint): it names this CA, its certificate parses, is signed by the CA and says what
/// the record says, and for a format-2 record the certificate carries the hash of the record's
/// metadata ([`binding::check`]). Pure: no I/O and no other record, so records can be checked
/// in any order or in parallel.
pub fn check_record(
    line: &str,
    r: &Record,
    ca: &KeyData,
    ca_fp: &str,
) -> std::result::Result<(), String> {
    if r.ca_fingerprint != ca_fp {
        return Err(format!(
            "it was issued by the CA {}, not {ca_fp}: this ledger belongs to another CA",
            r.ca_fingerprint
        ));
    }
    match (r.format, &r.dual_control) {
        (None | Some(binding::FORMAT), None) | (Some(binding::FORMAT_DUAL), Some(_)) => {}
        (Some(binding::FORMAT_DUAL), None) => {
            return Err("it is in record format 3 but holds no signed request".into())
        }
        (None | Some(binding::FORMAT), Some(_)) => {
            return Err(format!(
                "it holds a signed request but is in record format {}, not 3",
                r.format.unwrap_or(1)
            ))
        }
        (Some(f), _) => {
            return Err(format!(
                "it is in record format {f}, which this version of breakglass-ca does not know"
            ))
        }
    }
    let cert = check_certificate(r, ca)?;
    if r.is_bound() {
        binding::check(line, r, &cert)?;
        if let Some(d) = &r.dual_control {
            crate::dual::check_record(d, r, &cert)?;
        }
    } else if cert.extensions().contains_key(EXTENSION) {
        return Err("its certificate carries a ledger binding, but the record is in the old format without its metadata: it was altered".into());
    }
    Ok(())
}

/// The end of a ledger (`tail`) for `mint`, `revoke` and `status`, which do not check every
/// signature: the newest issuance record in it, when it is bound, has its certificate checked
/// against the CA it names (which must be `ca_fp`) and its binding ([`check_record`]), one
/// signature; a format-1 record never follows a bound one or a revocation; and a newest line
/// that is a revocation is checked on its own ([`super::revocation::check`]) and not earlier
/// than the line before it.
pub fn check_newest(tail: &[(String, Entry)], ca_fp: &str) -> Result<()> {
    let Some((last_line, last_entry)) = tail.last() else {
        return Ok(());
    };
    if let Entry::Revoked(v) = last_entry {
        let bad = |why: String| {
            Error::ledger(format!(
                "the ledger's newest record (a revocation) does not verify: {why}"
            ))
            .with_hint(BROKEN_HINT)
        };
        super::revocation::check(last_line, v, ca_fp).map_err(bad)?;
        if let Some((_, before)) = tail.len().checked_sub(2).and_then(|i| tail.get(i)) {
            let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
            if let (Some(a), Some(b)) = (t(&v.revoked_at), t(before.time())) {
                if a < b {
                    return Err(bad(format!(
                        "its revoked_at ({}) is earlier than the line before it",
                        v.revoked_at
                    )));
                }
            }
        }
    }
    let Some(i) = tail.iter().rposition(|(_, e)| e.issued().is_some()) else {
        return Ok(());
    };
    let (line, last) = match tail.get(i) {
        Some((line, Entry::Issued(r))) => (line, r),
        _ => return Ok(()),
    };
    let bad = |why: String| {
        Error::ledger(format!(
            "the ledger's newest record (serial {}) does not verify: {why}",
            last.serial
        ))
        .with_hint(BROKEN_HINT)
    };
    let before = i.checked_sub(1).and_then(|i| tail.get(i)).map(|(_, e)| e);
    if !last.is_bound() {
        match before {
            Some(Entry::Issued(r)) if r.is_bound() => return Err(bad(UNBOUND_AFTER_BOUND.into())),
            Some(Entry::Revoked(_)) => return Err(bad(UNBOUND_AFTER_REVOCATION.into())),
            _ => return Ok(()),
        }
    }
    let cert = Certificate::from_openssh(&last.certificate)
        .map_err(|e| bad(format!("its certificate cannot be parsed ({e})")))?;
    if crate::key::fingerprint(cert.signature_key()) != ca_fp {
        return Err(bad("its certificate was signed by another CA".into()));
    }
    check_record(line, last, cert.signature_key(), ca_fp).map_err(bad)
}

/// The stored certificate must parse, be signed by the CA, and say what its record says (the
/// ledger binding aside, which [`binding::check`] checks). Returns it.
fn check_certificate(r: &Record, ca: &KeyData) -> std::result::Result<Certificate, String> {
    let cert = Certificate::from_openssh(&r.certificate)
        .map_err(|e| format!("its certificate cannot be parsed ({e})"))?;
    if cert.signature_key() != ca {
        return Err("its certificate was signed by another CA".into());
    }
    cert.verify_signature()
        .map_err(|_| "its certificate's signature does not verify".to_string())?;
    let when = |t: u64| {
        i64::try_from(t)
            .ok()
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(rfc3339)
            .unwrap_or_default()
    };
    let mismatches = [
        ("serial", cert.serial() != r.serial),
        ("key ID", cert.key_id() != r.key_id),
        (
            "principals",
            cert.valid_principals() != r.principals.as_slice(),
        ),
        ("valid_after", when(cert.valid_after()) != r.valid_after),
        ("valid_before", when(cert.valid_before()) != r.valid_before),
        (
            // (a bound record's binding covers it, and names it)
            "requester key type",
            !r.is_bound() && cert.public_key().algorithm().to_string() != r.requester_key_type,
        ),
        (
            "requester fingerprint",
            crate::key::fingerprint(cert.public_key()) != r.requester_fingerprint,
        ),
        (
            "critical options",
            cert.critical_options().iter().ne(r.critical_options.iter()),
        ),
        (
            "extensions",
            !cert
                .extensions()
                .keys()
                .filter(|k| !(r.is_bound() && k.as_str() == EXTENSION))
                .eq(r.extensions.iter()),
        ),
        (
            "certificate SHA256",
            cert::certificate_sha256(&cert).ok().as_deref() != Some(r.certificate_sha256.as_str()),
        ),
    ];
    match mismatches.iter().find(|(_, bad)| *bad) {
        Some((field, _)) => Err(format!("its {field} differs from its certificate's")),
        None => Ok(cert),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::soft::SoftKey;
    use crate::backend::CaKey;
    use crate::cert::CertOptions;
    use crate::issue::{issue, issue_format1, FixedClock, MintRequest};
    use crate::ledger::{genesis_hash, hex_sha256};
    use crate::ledger::{Ledger, LEDGER_FILE};
    use crate::policy::{Policy, ValidityRequest};
    use chrono::{DateTime, TimeZone, Utc};

    fn fp(ca: &SoftKey) -> String {
        crate::key::fingerprint(ca.public_key())
    }

    /// A ledger of `n` format-1 records with checkpoints, as 0.1.0 wrote them,
    /// signed by a software key.
    fn ledger(n: u64) -> (tempfile::TempDir, SoftKey, Vec<String>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let ca = SoftKey::new(5);
        append_records(dir.path(), &ca, 0, n, false);
        let text = std::fs::read_to_string(dir.path().join(LEDGER_FILE)).unwrap();
        let cps = std::fs::read(dir.path().join(checkpoint::FILE)).unwrap_or_default();
        (dir, ca, text.lines().map(String::from).collect(), cps)
    }

    /// A ledger of `n` bound (format-2) records, as mint writes them now: no checkpoints.
    fn bound(n: u64) -> (tempfile::TempDir, SoftKey, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let ca = SoftKey::new(5);
        append_records(dir.path(), &ca, 0, n, true);
        let text = std::fs::read_to_string(dir.path().join(LEDGER_FILE)).unwrap();
        assert!(!dir.path().join(checkpoint::FILE).exists());
        (dir, ca, text.lines().map(String::from).collect())
    }

    /// Append records `from..to` to the ledger in `dir` (bound, or in format 1 with a
    /// checkpoint each), one minute apart.
    fn append_records(dir: &std::path::Path, ca: &SoftKey, from: u64, to: u64, bound: bool) {
        let subject = ssh_key::PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO alice@laptop",
        )
        .unwrap();
        let ledger = Ledger::new(dir);
        for i in from..to {
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
            let clock = FixedClock(Utc.with_ymd_and_hms(2026, 11, 22, 3, i as u32, 0).unwrap());
            let mut locked = ledger.lock(&fp(ca)).unwrap();
            let issue = if bound { issue } else { issue_format1 };
            issue(ca, &mut locked, &Policy::default(), &req, &clock).unwrap();
        }
    }

    fn join(lines: &[String]) -> Vec<u8> {
        lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into_bytes()
    }

    fn failure(lines: &[String], cps: &[u8], ca: &SoftKey) -> String {
        verify(&join(lines), cps, ca.public_key())
            .unwrap_err()
            .to_string()
    }

    /// [`Ledger::verify_copy`] of the ledger in `dir`, with what it copied of each file.
    fn verify_copied(dir: &std::path::Path, ca: &SoftKey) -> (Verified, Vec<u8>, Vec<u8>) {
        let (mut ledger, mut cps) = (Vec::new(), Vec::new());
        let copy = Copy {
            ledger: &mut ledger,
            checkpoints: &mut cps,
        };
        let verified = Ledger::new(dir)
            .verify_copy(ca.public_key(), Some(copy))
            .unwrap()
            .unwrap();
        (verified, ledger, cps)
    }

    fn edit(line: &str, f: impl FnOnce(&mut Record)) -> String {
        let mut r: Record = serde_json::from_str(line).unwrap();
        f(&mut r);
        serde_json::to_string(&r).unwrap()
    }

    #[test]
    fn intact_ledger_verifies() {
        let (_d, ca, lines, cps) = ledger(4);
        let report = verify(&join(&lines), &cps, ca.public_key()).unwrap();
        assert_eq!(
            (
                report.last_serial,
                report.checkpoints,
                report.last_signed_serial()
            ),
            (4, 4, 4)
        );
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[test]
    fn edited_field_is_detected() {
        let (_d, ca, mut lines, cps) = ledger(4);
        lines[1] = edit(&lines[1], |r| r.reason = "nothing to see".into());
        let err = failure(&lines, &cps, &ca);
        assert!(
            err.contains("record serial 3") && err.contains("serial 2 was edited"),
            "{err}"
        );
        // the last record: only the token's checkpoint can tell
        let (_d, ca, mut lines, cps) = ledger(4);
        lines[3] = edit(&lines[3], |r| r.reason = "nothing to see".into());
        let err = failure(&lines, &cps, &ca);
        assert!(
            err.contains("record serial 4") && err.contains("differs from what the token signed"),
            "{err}"
        );
    }

    #[test]
    fn deleted_record_is_detected() {
        let (_d, ca, mut lines, cps) = ledger(4);
        lines.remove(1);
        let err = failure(&lines, &cps, &ca);
        assert!(err.contains("expected serial 2"), "{err}");
    }

    #[test]
    fn inserted_record_is_detected() {
        let (_d, ca, mut lines, cps) = ledger(4);
        let copy = lines[0].clone();
        lines.insert(1, copy);
        let err = failure(&lines, &cps, &ca);
        assert!(
            err.contains("line 2") && err.contains("expected serial 2"),
            "{err}"
        );
    }

    #[test]
    fn reordered_records_are_detected() {
        let (_d, ca, mut lines, cps) = ledger(4);
        lines.swap(1, 2);
        let err = failure(&lines, &cps, &ca);
        assert!(err.contains("record serial 3 (line 2)"), "{err}");
    }

    #[test]
    fn truncation_is_detected_by_the_checkpoint() {
        let (_d, ca, mut lines, cps) = ledger(4);
        lines.pop();
        let err = failure(&lines, &cps, &ca);
        assert!(
            err.contains("covers serial 4, but the ledger ends at serial 3"),
            "{err}"
        );
    }

    #[test]
    fn swapped_certificates_are_detected() {
        let (_d, ca, mut lines, cps) = ledger(4);
        let a: Record = serde_json::from_str(&lines[1]).unwrap();
        let b: Record = serde_json::from_str(&lines[2]).unwrap();
        lines[1] = edit(&lines[1], |r| r.certificate = b.certificate.clone());
        lines[2] = edit(&lines[2], |r| r.certificate = a.certificate.clone());
        let err = failure(&lines, &cps, &ca);
        assert!(
            err.contains("record serial 2") && err.contains("differs from its certificate"),
            "{err}"
        );
    }

    #[test]
    fn a_consistent_rewrite_without_the_token_is_detected() {
        // Remove record 2 and re-chain everything: the hashes are consistent again, but the
        // token's checkpoints are not.
        let (_d, ca, lines, cps) = ledger(4);
        let fp = crate::key::fingerprint(ca.public_key());
        let mut prev = genesis_hash(&fp);
        let mut forged = Vec::new();
        for line in [&lines[0], &lines[2], &lines[3]] {
            let mut r: Record = serde_json::from_str(line).unwrap();
            r.prev_hash = prev.clone();
            let l = serde_json::to_string(&r).unwrap();
            prev = hex_sha256(l.as_bytes());
            forged.push(l);
        }
        // serials now read 1,3,4: renumbering them would break the certificates, so the
        // forger can only hide it from the chain, not from the serial check or checkpoints.
        assert!(failure(&forged, &cps, &ca).contains("expected serial 2"));
        // Edit a reason and re-chain: only the checkpoints catch it.
        let mut prev = genesis_hash(&fp);
        let mut forged = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let mut r: Record = serde_json::from_str(line).unwrap();
            if i == 1 {
                r.reason = "rewritten".into();
            }
            r.prev_hash = prev.clone();
            let l = serde_json::to_string(&r).unwrap();
            prev = hex_sha256(l.as_bytes());
            forged.push(l);
        }
        let err = failure(&forged, &cps, &ca);
        assert!(
            err.contains("record serial 2") && err.contains("differs from what the token signed"),
            "{err}"
        );
        // Without checkpoints the same rewrite would pass: that is what they are for.
        assert!(verify(&join(&forged), b"", ca.public_key()).is_ok());
    }

    #[test]
    fn forged_checkpoint_and_foreign_ca_are_detected() {
        let (_d, ca, lines, cps) = ledger(2);
        let other = SoftKey::new(9);
        let err = verify(&join(&lines), &cps, other.public_key())
            .unwrap_err()
            .to_string();
        assert!(err.contains("belongs to another CA"), "{err}");
        let text = String::from_utf8(cps).unwrap();
        let mut cp: Checkpoint = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        cp.head = "00".repeat(32);
        let bad = format!("{}\n", serde_json::to_string(&cp).unwrap());
        let err = verify(&join(&lines), bad.as_bytes(), ca.public_key())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not signed by this CA"), "{err}");
    }

    #[test]
    fn torn_tail_and_unsigned_records_are_warnings() {
        let (_d, ca, lines, cps) = ledger(3);
        let mut bytes = join(&lines);
        bytes.extend_from_slice(b"{\"serial\":4,\"key");
        let first_cp = String::from_utf8(cps)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string()
            + "\n";
        let report = verify(&bytes, first_cp.as_bytes(), ca.public_key()).unwrap();
        assert_eq!(report.last_serial, 3);
        assert_eq!(report.last_signed_serial(), 1);
        assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
    }

    #[test]
    fn clock_going_backwards_is_refused_through_issue() {
        let (dir, ca, _lines, _cps) = ledger(2);
        let ledger = Ledger::new(dir.path());
        let subject = ssh_key::PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO alice@laptop",
        )
        .unwrap();
        let mut req = MintRequest {
            subject,
            requester: "alice".into(),
            principals: vec!["p".into()],
            reason: "r".into(),
            key_id: None,
            validity: ValidityRequest::default(),
            options: CertOptions::default(),
            dual: None,
        };
        let earlier = FixedClock(Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 0).unwrap());
        let mut locked = ledger.lock(&fp(&ca)).unwrap();
        let err = issue(&ca, &mut locked, &Policy::default(), &req, &earlier).unwrap_err();
        assert!(err.to_string().contains("time went backwards"), "{err}");
        req.validity.not_before = Some(Utc.with_ymd_and_hms(2026, 11, 22, 4, 0, 0).unwrap());
        let issued = issue(&ca, &mut locked, &Policy::default(), &req, &earlier).unwrap();
        assert_eq!(issued.record.serial, 3);
    }

    #[test]
    fn verify_and_the_ledger_reader_agree_on_every_line() {
        let (dir, ca, lines, cps) = ledger(3);
        let path = dir.path().join(LEDGER_FILE);
        let reader = Ledger::new(dir.path());
        // A blank line is damage for both.
        let mut bytes = join(&lines);
        bytes.extend_from_slice(b"\n");
        std::fs::write(&path, &bytes).unwrap();
        let err = verify(&bytes, &cps, ca.public_key())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 4 is not a ledger record: a blank line"),
            "{err}"
        );
        assert!(reader.read().is_err());
        // A record that lost only its newline is a record for both (and its checkpoint holds).
        let mut bytes = join(&lines);
        bytes.pop();
        std::fs::write(&path, &bytes).unwrap();
        let report = verify(&bytes, &cps, ca.public_key()).unwrap();
        assert_eq!((report.last_serial, report.last_signed_serial()), (3, 3));
        assert!(
            report.warnings[0].contains("lost its final newline"),
            "{:?}",
            report.warnings
        );
        assert_eq!(reader.read().unwrap().len(), 3);
        // A checkpoint that lost only its newline still counts.
        let mut short = cps.clone();
        short.pop();
        let report = verify(&join(&lines), &short, ca.public_key()).unwrap();
        assert_eq!(report.checkpoints, 3);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        // A torn line is left out by both.
        let mut bytes = join(&lines);
        bytes.extend_from_slice(b"{\"serial\":4");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            verify(&bytes, &cps, ca.public_key()).unwrap().last_serial,
            3
        );
        assert_eq!(reader.read().unwrap().len(), 3);
    }

    #[test]
    fn ledger_verify_checks_exactly_the_bytes_it_returns() {
        let (dir, ca, lines, cps) = ledger(3);
        let (verified, copied_ledger, copied_cps) = verify_copied(dir.path(), &ca);
        assert_eq!(copied_ledger, join(&lines));
        assert_eq!(copied_cps, cps);
        assert_eq!(verified.ledger_bytes, copied_ledger.len() as u64);
        assert_eq!(verified.checkpoint_bytes, cps.len() as u64);
        let newest = verified.report.newest_checkpoint.clone().unwrap();
        assert_eq!(newest.serial, 3);
        // A torn checkpoint line after it (a complete JSON value but for one invalid byte) is
        // left out, and never taken for the newest.
        let path = dir.path().join(checkpoint::FILE);
        let mut torn = cps.clone();
        torn.extend_from_slice(b"{\"serial\":9,\"head\":\"\xff\",\"signature\":\"x\"}");
        std::fs::write(&path, &torn).unwrap();
        let (verified, _, copied_cps) = verify_copied(dir.path(), &ca);
        assert_eq!(verified.report.newest_checkpoint, Some(newest));
        assert_eq!(copied_cps, torn);
        assert!(
            verified.report.warnings[0].contains("half-written line"),
            "{:?}",
            verified.report.warnings
        );
        // No ledger: nothing to verify. Records without any checkpoint: an error only when
        // checkpoints are required.
        let empty = tempfile::tempdir().unwrap();
        assert!(Ledger::new(empty.path())
            .verify(ca.public_key())
            .unwrap()
            .is_none());
        std::fs::write(&path, b"").unwrap();
        let report = Ledger::new(dir.path())
            .verify(ca.public_key())
            .unwrap()
            .unwrap()
            .report;
        assert_eq!((report.last_serial, report.checkpoints), (3, 0));
        let err = Ledger::new(dir.path())
            .require_checkpoints(true)
            .verify(ca.public_key())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing or holds no checkpoint"), "{err}");
    }

    #[test]
    fn the_cheap_check_finds_what_status_reports() {
        let (dir, ca, lines, cps) = ledger(3);
        let ledger = Ledger::new(dir.path()).require_checkpoints(true);
        let summary = ledger.summary(&fp(&ca)).unwrap();
        assert_eq!(summary.records, 3);
        assert_eq!(summary.last.as_ref().unwrap().serial, 3);
        summary.chain.unwrap();
        // An edited record: the chain is broken (the cheap check needs no signature).
        let path = dir.path().join(LEDGER_FILE);
        let mut edited = lines.clone();
        edited[0] = edit(&edited[0], |r| r.reason = "nothing to see".into());
        std::fs::write(&path, join(&edited)).unwrap();
        let err = ledger.summary(&fp(&ca)).unwrap().chain.unwrap_err();
        assert!(err.to_string().contains("serial 1 was edited"), "{err}");
        // Records cut off the end, below the token's newest checkpoint.
        std::fs::write(&path, join(&lines[..2])).unwrap();
        let summary = ledger.summary(&fp(&ca)).unwrap();
        assert_eq!(summary.records, 2);
        let err = summary.chain.unwrap_err().to_string();
        assert!(err.contains("signed the ledger up to serial 3"), "{err}");
        // The last record edited: only the checkpoint tells.
        let mut last = lines.clone();
        last[2] = edit(&last[2], |r| r.reason = "nothing to see".into());
        std::fs::write(&path, join(&last)).unwrap();
        let err = ledger.summary(&fp(&ca)).unwrap().chain.unwrap_err();
        assert!(
            err.to_string()
                .contains("differs from what the token signed"),
            "{err}"
        );
        // The checkpoints removed, with checkpoints required.
        std::fs::write(&path, join(&lines)).unwrap();
        std::fs::remove_file(dir.path().join(checkpoint::FILE)).unwrap();
        let err = ledger.summary(&fp(&ca)).unwrap().chain.unwrap_err();
        assert!(err.to_string().contains("is missing"), "{err}");
        std::fs::write(dir.path().join(checkpoint::FILE), &cps).unwrap();
        ledger.summary(&fp(&ca)).unwrap().chain.unwrap();
        // Another CA's key; a damaged line is an error of its own, not a broken chain.
        let err = ledger.summary("SHA256:other").unwrap().chain.unwrap_err();
        assert!(err.to_string().contains("belongs to another CA"), "{err}");
        let mut damaged = join(&lines);
        damaged.extend_from_slice(b"garbage\n");
        std::fs::write(&path, damaged).unwrap();
        let err = ledger.summary(&fp(&ca)).err().unwrap().to_string();
        assert!(err.contains("damaged at line 4"), "{err}");
    }

    // Bound (format-2) records: everything the checkpoints caught, caught without them.

    /// A copy of record `r`'s certificate re-signed by `ca` with the ledger binding `binding`
    /// (what a token used outside the tool could make), and its line.
    fn resigned(ca: &SoftKey, r: &Record, binding: Option<String>) -> (String, String) {
        let cert = Certificate::from_openssh(&r.certificate).unwrap();
        let mut subject = ssh_key::PublicKey::from(cert.public_key().clone());
        subject.set_comment("alice@laptop");
        let time = |t: u64| DateTime::from_timestamp(t as i64, 0).unwrap();
        let spec = crate::cert::CertSpec {
            subject,
            serial: r.serial,
            key_id: r.key_id.clone(),
            principals: r.principals.clone(),
            window: crate::policy::Window {
                valid_after: time(cert.valid_after()),
                valid_before: time(cert.valid_before()),
            },
            options: CertOptions::default(),
            binding,
        };
        let cert = crate::cert::sign(ca, &spec).unwrap();
        (
            cert.to_openssh().unwrap(),
            crate::cert::certificate_sha256(&cert).unwrap(),
        )
    }

    /// The same edit on the flat field and inside the metadata text (a consistent edit).
    fn edit_both(
        line: &str,
        f: impl Fn(&mut binding::Metadata),
        g: impl FnOnce(&mut Record),
    ) -> String {
        edit(line, |r| {
            let mut m: binding::Metadata =
                serde_json::from_str(r.metadata.as_ref().unwrap()).unwrap();
            f(&mut m);
            r.metadata = Some(binding::encode(&m).unwrap());
            g(r);
        })
    }

    #[test]
    fn a_bound_ledger_verifies_without_checkpoints() {
        let (dir, ca, lines) = bound(4);
        let report = verify(&join(&lines), b"", ca.public_key()).unwrap();
        assert_eq!(
            (
                report.last_serial,
                report.old_records,
                report.bound_records,
                report.checkpoints
            ),
            (4, 0, 4, 0)
        );
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        // Each certificate carries the SHA-256 of its record's metadata text.
        for line in &lines {
            let r: Record = serde_json::from_str(line).unwrap();
            assert_eq!(r.format, Some(2));
            let cert = Certificate::from_openssh(&r.certificate).unwrap();
            assert_eq!(
                cert.extensions().get(EXTENSION).unwrap(),
                &binding::hash(r.metadata.as_ref().unwrap())
            );
            assert_eq!(r.extensions, ["permit-pty"]);
        }
        // With checkpoints = true and no checkpoint file: fine, nothing is missing.
        let ledger = Ledger::new(dir.path()).require_checkpoints(true);
        ledger.verify(ca.public_key()).unwrap().unwrap();
        ledger.summary(&fp(&ca)).unwrap().chain.unwrap();
        ledger.lock(&fp(&ca)).unwrap();
    }

    #[test]
    fn every_edited_field_of_a_bound_record_is_detected_without_checkpoints() {
        let (_d, ca, lines) = bound(4);
        let other: Record = serde_json::from_str(&lines[0]).unwrap();
        type Edit = Box<dyn Fn(&mut Record)>;
        let edits: Vec<(&str, Edit, &str)> = vec![
            (
                "serial",
                Box::new(|r| r.serial += 10),
                "serial differs from its certificate",
            ),
            ("key_id", Box::new(|r| r.key_id.push('x')), "key ID differs"),
            (
                "principals",
                Box::new(|r| r.principals.push("root".into())),
                "principals differs",
            ),
            (
                "valid_after",
                Box::new(|r| r.valid_after = "2026-11-22T00:00:00Z".into()),
                "valid_after differs",
            ),
            (
                "valid_before",
                Box::new(|r| r.valid_before = "2026-11-23T00:00:00Z".into()),
                "valid_before differs",
            ),
            (
                "requester_key_type",
                Box::new(|r| r.requester_key_type = "ssh-rsa".into()),
                "its requester_key_type differs from its signed metadata",
            ),
            (
                "requester_fingerprint",
                Box::new(|r| r.requester_fingerprint = "SHA256:x".into()),
                "requester fingerprint differs",
            ),
            (
                "requester_comment",
                Box::new(|r| r.requester_comment = "mallory".into()),
                "its requester_comment differs from its signed metadata",
            ),
            (
                "reason",
                Box::new(|r| r.reason = "nothing to see".into()),
                "its reason differs from its signed metadata",
            ),
            (
                "critical_options",
                Box::new(|r| {
                    r.critical_options
                        .insert("force-command".into(), "x".into());
                }),
                "critical options differs",
            ),
            (
                "extensions",
                Box::new(|r| r.extensions.push("permit-user-rc".into())),
                "extensions differs",
            ),
            (
                "certificate_sha256",
                Box::new(|r| r.certificate_sha256 = "SHA256:x".into()),
                "certificate SHA256 differs",
            ),
            (
                "certificate",
                Box::new(move |r| r.certificate = other.certificate.clone()),
                "differs from its certificate",
            ),
            (
                "ca_fingerprint",
                Box::new(|r| r.ca_fingerprint = "SHA256:other".into()),
                "issued by the CA SHA256:other",
            ),
            (
                "issued_at",
                Box::new(|r| r.issued_at = "2026-11-22T09:00:00Z".into()),
                "its issued_at differs from its signed metadata",
            ),
            (
                "host",
                Box::new(|r| r.host = "elsewhere".into()),
                "its host differs from its signed metadata",
            ),
            (
                "tool_version",
                Box::new(|r| r.tool_version = "9".into()),
                "its tool_version differs from its signed metadata",
            ),
            (
                "prev_hash",
                Box::new(|r| r.prev_hash = "00".repeat(32)),
                "its prev_hash differs from its signed metadata",
            ),
            (
                "metadata",
                Box::new(|r| r.metadata = Some("{}".into())),
                "its metadata cannot be read",
            ),
            (
                "metadata removed",
                Box::new(|r| r.metadata = None),
                "holds no metadata",
            ),
            (
                "format",
                Box::new(|r| r.format = Some(3)),
                "record format 3",
            ),
            (
                "format removed",
                Box::new(|r| {
                    r.format = None;
                    r.metadata = None;
                }),
                "ledger binding",
            ),
        ];
        // The newest record (nothing after it to tell) and one in the middle: the record
        // itself is named.
        for index in [3, 1] {
            for (field, f, expected) in &edits {
                let mut edited = lines.clone();
                edited[index] = edit(&lines[index], f);
                let err = failure(&edited, b"", &ca);
                let at = format!("record serial {} (line {})", index + 1, index + 1);
                let at_other = format!("(line {})", index + 1);
                assert!(
                    (err.contains(&at) || err.contains(&at_other)) && err.contains(expected),
                    "{field} of line {}: {err}",
                    index + 1
                );
            }
        }
        // An edit made consistently in the field and the metadata text: the certificate's
        // binding is the hash of what the token signed.
        let mut edited = lines.clone();
        edited[3] = edit_both(
            &lines[3],
            |m| m.reason = "nothing".into(),
            |r| r.reason = "nothing".into(),
        );
        let err = failure(&edited, b"", &ca);
        assert!(
            err.contains("record serial 4") && err.contains("not what the token signed"),
            "{err}"
        );
        // The same JSON written differently (the last line: nothing chains to it).
        let mut edited = lines.clone();
        edited[3] = lines[3].replacen("{\"format\":2,", "{\"format\": 2,", 1);
        let err = failure(&edited, b"", &ca);
        assert!(err.contains("not written as mint writes"), "{err}");
    }

    #[test]
    fn deleted_inserted_reordered_and_swapped_bound_records_are_detected() {
        let (_d, ca, lines) = bound(4);
        let mut deleted = lines.clone();
        deleted.remove(1);
        assert!(failure(&deleted, b"", &ca).contains("expected serial 2"));
        let mut inserted = lines.clone();
        inserted.insert(1, lines[0].clone());
        assert!(failure(&inserted, b"", &ca).contains("line 2"));
        let mut reordered = lines.clone();
        reordered.swap(1, 2);
        assert!(failure(&reordered, b"", &ca).contains("record serial 3 (line 2)"));
        // Certificates swapped between records, with their hashes.
        let a: Record = serde_json::from_str(&lines[1]).unwrap();
        let b: Record = serde_json::from_str(&lines[2]).unwrap();
        let mut swapped = lines.clone();
        swapped[1] = edit(&lines[1], |r| {
            r.certificate = b.certificate.clone();
            r.certificate_sha256 = b.certificate_sha256.clone();
        });
        swapped[2] = edit(&lines[2], |r| {
            r.certificate = a.certificate.clone();
            r.certificate_sha256 = a.certificate_sha256.clone();
        });
        let err = failure(&swapped, b"", &ca);
        assert!(
            err.contains("record serial 2") && err.contains("differs from its certificate"),
            "{err}"
        );
        // Whole records swapped and renumbered: their certificates say otherwise.
        let renumbered = vec![
            lines[0].clone(),
            edit(&lines[2], |r| r.serial = 2),
            edit(&lines[1], |r| r.serial = 3),
            lines[3].clone(),
        ];
        let err = failure(&renumbered, b"", &ca);
        assert!(err.contains("serial differs from its certificate"), "{err}");
    }

    #[test]
    fn a_consistent_rewrite_of_a_bound_ledger_without_the_token_is_detected() {
        // Edit record 2's reason in the field and in its metadata, and re-chain every record
        // after it (their prev_hash fields and metadata): hashes consistent again, but each
        // certificate holds the hash of what the token signed.
        let (_d, ca, lines) = bound(4);
        let fpr = fp(&ca);
        let mut prev = genesis_hash(&fpr);
        let mut forged = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let p = prev.clone();
            let l = edit_both(
                line,
                |m| {
                    m.prev_hash = p.clone();
                    if i == 1 {
                        m.reason = "rewritten".into();
                    }
                },
                |r| {
                    r.prev_hash = p.clone();
                    if i == 1 {
                        r.reason = "rewritten".into();
                    }
                },
            );
            prev = hex_sha256(l.as_bytes());
            forged.push(l);
        }
        assert_eq!(forged[0], lines[0]);
        let err = failure(&forged, b"", &ca);
        assert!(
            err.contains("record serial 2") && err.contains("not what the token signed"),
            "{err}"
        );
        // Delete record 2 and re-chain: record 3's prev_hash is signed.
        let mut prev = genesis_hash(&fpr);
        let mut forged = Vec::new();
        for line in [&lines[0], &lines[2], &lines[3]] {
            let p = prev.clone();
            let l = edit_both(
                line,
                |m| m.prev_hash = p.clone(),
                |r| r.prev_hash = p.clone(),
            );
            prev = hex_sha256(l.as_bytes());
            forged.push(l);
        }
        let err = failure(&forged, b"", &ca);
        assert!(
            err.contains("record serial 3") && err.contains("not what the token signed"),
            "{err}"
        );
    }

    #[test]
    fn a_foreign_ca_and_a_missing_or_altered_binding_are_detected() {
        let (_d, ca, lines) = bound(3);
        let other = SoftKey::new(9);
        let err = verify(&join(&lines), b"", other.public_key())
            .unwrap_err()
            .to_string();
        assert!(err.contains("belongs to another CA"), "{err}");
        // Another CA's certificate in a record that names this CA.
        let r: Record = serde_json::from_str(&lines[1]).unwrap();
        let (cert, sha) = resigned(
            &other,
            &r,
            Some(binding::hash(r.metadata.as_ref().unwrap())),
        );
        let mut edited = lines.clone();
        edited[1] = edit(&lines[1], |r| {
            r.certificate = cert.clone();
            r.certificate_sha256 = sha.clone();
        });
        let err = failure(&edited, b"", &ca);
        assert!(
            err.contains("record serial 2") && err.contains("signed by another CA"),
            "{err}"
        );
        // The same CA's certificate without the binding, or with another value in it.
        for (binding, expected) in [
            (None, "carries no ledger binding"),
            (Some("00".repeat(32)), "not what the token signed"),
        ] {
            let (cert, sha) = resigned(&ca, &r, binding);
            let mut edited = lines.clone();
            edited[1] = edit(&lines[1], |r| {
                r.certificate = cert.clone();
                r.certificate_sha256 = sha.clone();
            });
            let err = failure(&edited, b"", &ca);
            assert!(
                err.contains("record serial 2") && err.contains(expected),
                "{err}"
            );
        }
        // The check is the right one: re-signed with the right binding, it verifies.
        let (cert, sha) = resigned(&ca, &r, Some(binding::hash(r.metadata.as_ref().unwrap())));
        let mut same = lines.clone();
        same[1] = edit(&lines[1], |r| {
            r.certificate = cert.clone();
            r.certificate_sha256 = sha.clone();
        });
        // (its line changed, so the next record's link is what breaks)
        let err = failure(&same, b"", &ca);
        assert!(
            err.contains("record serial 3") && err.contains("serial 2 was edited"),
            "{err}"
        );
    }

    #[test]
    fn cutting_the_newest_bound_records_is_what_needs_an_outside_copy() {
        // The one thing neither checkpoints nor bindings show from the ledger alone.
        let (_d, ca, lines) = bound(4);
        let report = verify(&join(&lines[..2]), b"", ca.public_key()).unwrap();
        assert_eq!(report.last_serial, 2);
    }

    #[test]
    fn an_old_ledger_continued_by_bound_records_verifies_in_two_parts() {
        let (dir, ca, _, cps) = ledger(3);
        append_records(dir.path(), &ca, 3, 5, true);
        let text = std::fs::read_to_string(dir.path().join(LEDGER_FILE)).unwrap();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        // No checkpoint was added for the bound records.
        assert_eq!(
            std::fs::read(dir.path().join(checkpoint::FILE)).unwrap(),
            cps
        );
        let report = verify(&join(&lines), &cps, ca.public_key()).unwrap();
        assert_eq!(
            (
                report.last_serial,
                report.old_records,
                report.bound_records,
                report.checkpoints,
                report.last_signed_serial()
            ),
            (5, 3, 2, 3, 3)
        );
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        // The old part is still checked against its checkpoints.
        let mut edited = lines.clone();
        edited[2] = edit(&lines[2], |r| r.reason = "x".into());
        let err = failure(&edited, &cps, &ca);
        assert!(
            err.contains("serial 2 was edited") || err.contains("record serial 4"),
            "{err}"
        );
        // Without its checkpoints the old part is covered by serial 4's signed link: an edit
        // of the last old record is still found.
        let err = failure(&edited, b"", &ca);
        assert!(
            err.contains("record serial 4") && err.contains("serial 3 was edited"),
            "{err}"
        );
        let ledger = Ledger::new(dir.path()).require_checkpoints(true);
        std::fs::remove_file(dir.path().join(checkpoint::FILE)).unwrap();
        let report = ledger.verify(ca.public_key()).unwrap().unwrap().report;
        assert_eq!((report.checkpoints, report.bound_records), (0, 2));
        ledger.summary(&fp(&ca)).unwrap().chain.unwrap();
        std::fs::write(dir.path().join(checkpoint::FILE), &cps).unwrap();
        // Cutting into the old part is still caught by its checkpoints.
        let err = failure(&lines[..2], &cps, &ca);
        assert!(err.contains("records were removed from the end"), "{err}");
        // An old-format record after bound ones is refused, by verify and by mint.
        append_records(dir.path(), &ca, 5, 6, false);
        let text = std::fs::read(dir.path().join(LEDGER_FILE)).unwrap();
        let cps = std::fs::read(dir.path().join(checkpoint::FILE)).unwrap();
        let err = verify(&text, &cps, ca.public_key())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("record serial 6")
                && err.contains("carries no ledger binding, but records before it do"),
            "{err}"
        );
        let err = Ledger::new(dir.path())
            .lock(&fp(&ca))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("newest record (serial 6) does not verify"),
            "{err}"
        );
    }

    #[test]
    fn mint_and_status_check_the_newest_bound_record() {
        let (dir, ca, lines) = bound(3);
        let ledger = Ledger::new(dir.path());
        let mut edited = lines.clone();
        edited[2] = edit(&lines[2], |r| r.reason = "nothing to see".into());
        std::fs::write(dir.path().join(LEDGER_FILE), join(&edited)).unwrap();
        let before = crate::ledger::testing::snapshot(dir.path());
        let err = ledger.lock(&fp(&ca)).err().unwrap().to_string();
        assert!(
            err.contains("newest record (serial 3) does not verify: its reason differs from its signed metadata"),
            "{err}"
        );
        assert_eq!(crate::ledger::testing::snapshot(dir.path()), before);
        let err = ledger
            .summary(&fp(&ca))
            .unwrap()
            .chain
            .unwrap_err()
            .to_string();
        assert!(err.contains("newest record (serial 3)"), "{err}");
        // Its certificate from another CA that names itself: refused too.
        let r: Record = serde_json::from_str(&lines[2]).unwrap();
        let (cert, sha) = resigned(
            &SoftKey::new(9),
            &r,
            Some(binding::hash(r.metadata.as_ref().unwrap())),
        );
        edited[2] = edit(&lines[2], |r| {
            r.certificate = cert.clone();
            r.certificate_sha256 = sha.clone();
        });
        std::fs::write(dir.path().join(LEDGER_FILE), join(&edited)).unwrap();
        let err = ledger.lock(&fp(&ca)).err().unwrap().to_string();
        assert!(err.contains("signed by another CA"), "{err}");
    }

    // ---- Revocation records ----------------------------------------------------------------

    /// Append a revocation to the ledger in `dir` at `at` (see `testing::revocation`), made
    /// by `f`.
    fn append_revocation(
        dir: &std::path::Path,
        ca: &SoftKey,
        at: &str,
        f: impl FnOnce(&mut crate::ledger::Revocation),
    ) {
        crate::ledger::testing::revoke(&Ledger::new(dir), &fp(ca), at, f);
    }

    /// Serials 1 and 2, revocation A (serial 1), serial 3, revocation B (serial 2): the lines.
    /// A is covered by serial 3's binding; B is the newest line, covered by nothing yet.
    fn with_revocations() -> (tempfile::TempDir, SoftKey, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let ca = SoftKey::new(5);
        append_records(dir.path(), &ca, 0, 2, true);
        append_revocation(dir.path(), &ca, "2026-11-22T03:01:30Z", |v| {
            v.serials = vec![(1, 1)];
        });
        append_records(dir.path(), &ca, 2, 3, true);
        append_revocation(dir.path(), &ca, "2026-11-22T03:02:30Z", |v| {
            v.serials = vec![(2, 2)];
            v.requester_keys.clear();
            v.key_ids = vec!["x".into()];
        });
        let text = std::fs::read_to_string(dir.path().join(LEDGER_FILE)).unwrap();
        (dir, ca, text.lines().map(String::from).collect())
    }

    fn edit_revocation(line: &str, f: impl FnOnce(&mut crate::ledger::Revocation)) -> String {
        let mut v: crate::ledger::Revocation = serde_json::from_str(line).unwrap();
        f(&mut v);
        v.line().unwrap()
    }

    #[test]
    fn revocation_records_verify_and_the_uncovered_ones_are_counted() {
        let (dir, ca, lines) = with_revocations();
        assert!(lines[2].starts_with("{\"kind\":\"revocation\","));
        let report = verify(&join(&lines), b"", ca.public_key()).unwrap();
        assert_eq!(
            (
                report.last_serial,
                report.bound_records,
                report.revocations,
                report.uncovered_revocations
            ),
            (3, 3, 2, 1)
        );
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(
            report.warnings[0].contains("the newest 1 revocation record(s) (after serial 3) are not yet covered by a token signature"),
            "{:?}",
            report.warnings
        );
        // The cheap checks agree, and the next mint continues at serial 4.
        let ledger = Ledger::new(dir.path());
        let summary = ledger.summary(&fp(&ca)).unwrap();
        summary.chain.unwrap();
        assert_eq!((summary.records, summary.revoked.records), (3, 2));
        assert_eq!(summary.revoked.serials, vec![(1, 2)]);
        assert_eq!(summary.revoked.version, 20261122030230);
        assert_eq!(summary.last.unwrap().serial, 3);
        assert_eq!(ledger.lock(&fp(&ca)).unwrap().tail().serial, 4);
        // A mint after the newest revocation covers it: nothing is uncovered any more.
        append_records(dir.path(), &ca, 3, 4, true);
        let report = ledger.verify(ca.public_key()).unwrap().unwrap().report;
        assert_eq!(
            (
                report.last_serial,
                report.revocations,
                report.uncovered_revocations
            ),
            (4, 2, 0)
        );
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let text = std::fs::read_to_string(dir.path().join(LEDGER_FILE)).unwrap();
        let last: Record = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last.prev_hash, hex_sha256(lines[4].as_bytes()));
    }

    #[test]
    fn every_edited_field_of_a_revocation_record_is_detected() {
        let (_d, ca, lines) = with_revocations();
        let alice = crate::ledger::testing::CAROL;
        type Edit = Box<dyn Fn(&mut crate::ledger::Revocation)>;
        // (field, edit, what its own check says, or None: a plausible edit only the chain
        // shows)
        let edits: Vec<(&str, Edit, Option<&str>)> = vec![
            (
                "format",
                Box::new(|v| v.format = 7),
                Some("revocation format 7"),
            ),
            ("serials", Box::new(|v| v.serials = vec![(2, 2)]), None),
            (
                "serials: 0",
                Box::new(|v| v.serials = vec![(0, 2)]),
                Some("serial 0"),
            ),
            (
                "serials: beyond",
                Box::new(|v| v.serials = vec![(1, 9)]),
                Some("revokes serial 9"),
            ),
            ("serials: removed", Box::new(|v| v.serials.clear()), None),
            ("key_ids", Box::new(|v| v.key_ids = vec!["y".into()]), None),
            (
                "requester_keys",
                Box::new(move |v| {
                    let k = ssh_key::PublicKey::from_openssh(alice).unwrap();
                    v.requester_keys = vec![crate::ledger::RevokedKey {
                        key: k.to_openssh().unwrap(),
                        fingerprint: crate::key::fingerprint(k.key_data()),
                    }];
                }),
                Some("not written as revoke writes a key"),
            ),
            (
                "ca_keys",
                Box::new(|v| {
                    v.ca_keys = vec![crate::ledger::RevokedKey {
                        key: "x y".into(),
                        fingerprint: "f".into(),
                    }]
                }),
                Some("CA key"),
            ),
            (
                "reason",
                Box::new(|v| v.reason = "nothing to see".into()),
                None,
            ),
            (
                "reason: empty",
                Box::new(|v| v.reason = "".into()),
                Some("reason is empty"),
            ),
            (
                "revoked_at",
                Box::new(|v| v.revoked_at = "2026-11-22T03:02:40Z".into()),
                None,
            ),
            (
                "revoked_at: bad",
                Box::new(|v| v.revoked_at = "now".into()),
                Some("not an RFC 3339 time"),
            ),
            (
                "revoked_by",
                Box::new(|v| v.revoked_by = "mallory".into()),
                None,
            ),
            ("host", Box::new(|v| v.host = "elsewhere".into()), None),
            (
                "tool_version",
                Box::new(|v| v.tool_version = "9".into()),
                None,
            ),
            (
                "ca_fingerprint",
                Box::new(|v| v.ca_fingerprint = "SHA256:other".into()),
                Some("written for the CA SHA256:other"),
            ),
            ("last_serial", Box::new(|v| v.last_serial = 9), None),
            (
                "prev_hash",
                Box::new(|v| v.prev_hash = "00".repeat(32)),
                None,
            ),
        ];
        for (field, f, own) in &edits {
            // Revocation A (line 3), covered by serial 3's binding: every edit is detected,
            // by its own check or by the chain.
            let mut edited = lines.clone();
            edited[2] = edit_revocation(&lines[2], f);
            let err = failure(&edited, b"", &ca);
            match own {
                Some(expected) => assert!(
                    err.contains("revocation record (line 3)") && err.contains(expected),
                    "{field}: {err}"
                ),
                None => assert!(
                    err.contains("(line 3)")
                        || err.contains("the revocation record on line 3 was edited"),
                    "{field}: {err}"
                ),
            }
            // Revocation B, the newest line: its own check finds the malformed ones and the
            // links its place in the chain; a plausible edit of its text is what no signature
            // covers yet (the warning says so).
            let mut edited = lines.clone();
            edited[4] = edit_revocation(&lines[4], f);
            let got = verify(&join(&edited), b"", ca.public_key());
            match (own, *field) {
                (Some(expected), _) => {
                    let err = got.unwrap_err().to_string();
                    assert!(
                        err.contains("revocation record (line 5)") && err.contains(expected),
                        "{field}: {err}"
                    );
                }
                (None, "last_serial" | "prev_hash") => {
                    let err = got.unwrap_err().to_string();
                    assert!(err.contains("revocation record (line 5)"), "{field}: {err}");
                }
                (None, _) => {
                    let report = got.unwrap_or_else(|e| panic!("{field}: {e}"));
                    assert_eq!(report.uncovered_revocations, 1, "{field}");
                }
            }
        }
        // The same JSON value written otherwise.
        let mut edited = lines.clone();
        edited[4] = lines[4].replacen("\"format\":1", "\"format\": 1", 1);
        assert!(failure(&edited, b"", &ca).contains("not written as revoke writes a revocation"));
    }

    #[test]
    fn removed_inserted_and_reordered_revocations_are_detected() {
        let (_d, ca, lines) = with_revocations();
        // Revocation A removed: serial 3's signed prev_hash named it.
        let mut removed = lines.clone();
        removed.remove(2);
        let err = failure(&removed, b"", &ca);
        assert!(
            err.contains("record serial 3 (line 3)") && err.contains("serial 2 was edited"),
            "{err}"
        );
        // Removed and serial 3 re-chained (field and metadata): its binding says otherwise.
        let p = hex_sha256(lines[1].as_bytes());
        let mut rechained = vec![lines[0].clone(), lines[1].clone()];
        rechained.push(edit_both(
            &lines[3],
            |m| m.prev_hash = p.clone(),
            |r| r.prev_hash = p.clone(),
        ));
        let err = failure(&rechained, b"", &ca);
        assert!(
            err.contains("record serial 3") && err.contains("not what the token signed"),
            "{err}"
        );
        // A revocation copied (inserted again right after itself, or at the end).
        let mut inserted = lines.clone();
        inserted.insert(3, lines[2].clone());
        let err = failure(&inserted, b"", &ca);
        assert!(err.contains("revocation record (line 4)"), "{err}");
        let mut appended = lines.clone();
        appended.push(lines[4].clone());
        let err = failure(&appended, b"", &ca);
        assert!(err.contains("revocation record (line 6)"), "{err}");
        // Reordered with the record before it, or after it.
        let mut reordered = lines.clone();
        reordered.swap(1, 2);
        let err = failure(&reordered, b"", &ca);
        assert!(err.contains("revocation record (line 2): it says the newest serial issued before it is 2, but it follows serial 1"), "{err}");
        let mut reordered = lines.clone();
        reordered.swap(2, 3);
        let err = failure(&reordered, b"", &ca);
        assert!(
            err.contains(
                "record serial 3 (line 3): the record before it is not the one it was chained to"
            ),
            "{err}"
        );
        // Revocation A edited and everything after it re-chained without the token: serial
        // 3's binding signed the original.
        let a = edit_revocation(&lines[2], |v| v.reason = "rewritten".into());
        let p = hex_sha256(a.as_bytes());
        let s3 = edit_both(
            &lines[3],
            |m| m.prev_hash = p.clone(),
            |r| r.prev_hash = p.clone(),
        );
        let p3 = hex_sha256(s3.as_bytes());
        let b = edit_revocation(&lines[4], |v| v.prev_hash = p3.clone());
        let forged = vec![lines[0].clone(), lines[1].clone(), a, s3, b];
        let err = failure(&forged, b"", &ca);
        assert!(
            err.contains("record serial 3") && err.contains("not what the token signed"),
            "{err}"
        );
        // The newest revocation removed at the very end: nothing in the ledger shows it (the
        // outside copy and the hosts' KRL version do).
        let report = verify(&join(&lines[..4]), b"", ca.public_key()).unwrap();
        assert_eq!((report.revocations, report.uncovered_revocations), (1, 0));
        // A forged revocation appended at the end verifies as uncovered: it only narrows
        // access.
        let mut forged = lines.clone();
        forged.push(edit_revocation(&lines[4], |v| {
            v.revoked_at = "2026-11-22T03:03:00Z".into();
            v.prev_hash = hex_sha256(lines[4].as_bytes());
        }));
        let report = verify(&join(&forged), b"", ca.public_key()).unwrap();
        assert_eq!(report.uncovered_revocations, 2);
    }

    #[test]
    fn an_unbound_record_after_a_revocation_is_refused() {
        let (dir, ca, _) = with_revocations();
        append_records(dir.path(), &ca, 3, 4, false);
        let text = std::fs::read(dir.path().join(LEDGER_FILE)).unwrap();
        let cps = std::fs::read(dir.path().join(checkpoint::FILE)).unwrap_or_default();
        let err = verify(&text, &cps, ca.public_key())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("record serial 4 (line 6)")
                && err.contains("carries no ledger binding, but"),
            "{err}"
        );
        // An old ledger revoked into: its format-1 records then a revocation, then only
        // bound records; a format-1 record after the revocation is refused by mint too.
        let (dir, ca, _, _) = ledger(2);
        append_revocation(dir.path(), &ca, "2026-11-22T03:01:30Z", |_| {});
        let ledger_ = Ledger::new(dir.path()).require_checkpoints(true);
        let report = ledger_.verify(ca.public_key()).unwrap().unwrap().report;
        assert_eq!(
            (
                report.old_records,
                report.checkpoints,
                report.revocations,
                report.uncovered_revocations
            ),
            (2, 2, 1, 1)
        );
        ledger_.summary(&fp(&ca)).unwrap().chain.unwrap();
        append_records(dir.path(), &ca, 2, 3, false);
        let err = ledger_.lock(&fp(&ca)).err().unwrap().to_string();
        assert!(err.contains("newest record (serial 3) does not verify: it carries no ledger binding, but a revocation record comes before it"), "{err}");
    }

    #[test]
    fn an_old_ledger_with_checkpoints_and_revocations_verifies() {
        let (dir, ca, _, cps) = ledger(3);
        append_revocation(dir.path(), &ca, "2026-11-22T03:02:30Z", |_| {});
        let ledger_ = Ledger::new(dir.path()).require_checkpoints(true);
        // The checkpoints still cover the old records; the tail still compares the newest
        // one when it is read.
        let locked = ledger_.lock(&fp(&ca)).unwrap();
        assert_eq!(locked.tail().serial, 4);
        drop(locked);
        append_records(dir.path(), &ca, 3, 4, true);
        let report = ledger_.verify(ca.public_key()).unwrap().unwrap().report;
        assert_eq!(
            (
                report.last_serial,
                report.old_records,
                report.bound_records,
                report.revocations,
                report.uncovered_revocations,
                report.last_signed_serial()
            ),
            (4, 3, 1, 1, 0, 3)
        );
        // Cutting into the old part is still caught by its checkpoints.
        let text = std::fs::read_to_string(dir.path().join(LEDGER_FILE)).unwrap();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        let err = failure(&lines[..2], &cps, &ca);
        assert!(err.contains("records were removed from the end"), "{err}");
    }

    #[test]
    fn issue_refuses_a_revoked_ca_and_a_revoked_requester_key_and_writes_nothing() {
        let (dir, ca, _) = bound(1);
        let alice = ssh_key::PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO alice@laptop",
        )
        .unwrap();
        let ca_key = crate::ledger::RevokedKey::of(ca.public_key()).unwrap();
        let alice_key = crate::ledger::RevokedKey::of(alice.key_data()).unwrap();
        for (at, revoked) in [
            ("2026-11-22T03:00:30Z", alice_key),
            ("2026-11-22T03:00:31Z", ca_key),
        ] {
            append_revocation(dir.path(), &ca, at, |v| {
                v.requester_keys.clear();
                v.serials.clear();
                if revoked.fingerprint == fp(&ca) {
                    v.ca_keys = vec![revoked.clone()];
                } else {
                    v.requester_keys = vec![revoked.clone()];
                }
            });
            let before = crate::ledger::testing::snapshot(dir.path());
            let ledger = Ledger::new(dir.path());
            let mut locked = ledger.lock(&fp(&ca)).unwrap();
            let req = MintRequest {
                subject: alice.clone(),
                requester: "alice".into(),
                principals: vec!["p".into()],
                reason: "r".into(),
                key_id: None,
                validity: ValidityRequest::default(),
                options: CertOptions::default(),
                dual: None,
            };
            let clock = FixedClock(Utc.with_ymd_and_hms(2026, 11, 22, 3, 5, 0).unwrap());
            let err = issue(&ca, &mut locked, &Policy::default(), &req, &clock)
                .unwrap_err()
                .to_string();
            assert!(err.contains("was revoked on"), "{err}");
            drop(locked);
            assert_eq!(crate::ledger::testing::snapshot(dir.path()), before);
        }
    }

    /// `status`'s figures ([`Ledger::summary`]) are `log verify`'s ([`Report::coverage`]):
    /// old ledgers with and without a bound continuation, revocations covered and not, a
    /// checkpoint file cut back, a torn tail, a lost newline, an empty ledger.
    #[test]
    fn the_summary_counts_what_verify_counts() {
        let check = |dir: &std::path::Path, ca: &SoftKey, want: (u64, u64, u64, bool)| {
            let ledger = Ledger::new(dir);
            let summary = ledger.summary(&fp(ca)).unwrap();
            summary.chain.as_ref().unwrap();
            let report = ledger.verify(ca.public_key()).unwrap().map(|v| v.report);
            let verified = report.as_ref().map(Report::coverage).unwrap_or_default();
            assert_eq!(summary.coverage, verified);
            let c = &summary.coverage;
            assert_eq!(
                (c.last_serial, c.covered, c.uncovered, c.newest_covered),
                want,
                "{c:?}"
            );
            assert_eq!(summary.records as u64, c.last_serial);
            c.clone()
        };
        let empty = tempfile::tempdir().unwrap();
        check(empty.path(), &SoftKey::new(5), (0, 0, 0, true));
        // 0.1.0: three checkpointed records; one more without its checkpoint.
        let (dir, ca, _, _) = ledger(3);
        let c = check(dir.path(), &ca, (3, 3, 0, true));
        assert_eq!((c.old_records, c.newest_checkpoint), (3, 3));
        let cps = dir.path().join(checkpoint::FILE);
        let text = std::fs::read_to_string(&cps).unwrap();
        let first_two: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        std::fs::write(&cps, first_two).unwrap();
        check(dir.path(), &ca, (3, 2, 1, false));
        // Continued by a bound record: all covered; then a revocation, uncovered.
        append_records(dir.path(), &ca, 3, 4, true);
        let c = check(dir.path(), &ca, (4, 4, 0, true));
        assert_eq!((c.old_records, c.bound_records), (3, 1));
        append_revocation(dir.path(), &ca, "2026-11-22T03:05:00Z", |_| {});
        let c = check(dir.path(), &ca, (4, 4, 1, false));
        assert_eq!((c.revocations, c.uncovered_revocations), (1, 1));
        // Bound records and revocations, the newest a revocation.
        let (dir, ca, _) = with_revocations();
        check(dir.path(), &ca, (3, 4, 1, false));
        append_records(dir.path(), &ca, 3, 4, true);
        check(dir.path(), &ca, (4, 6, 0, true));
        // A torn tail, then a record that lost its newline.
        let path = dir.path().join(LEDGER_FILE);
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(b"{\"serial\":5,\"key_id\":\"hal");
        std::fs::write(&path, &torn).unwrap();
        let c = check(dir.path(), &ca, (4, 6, 0, true));
        assert!(c.torn_tail && !c.unterminated);
        std::fs::write(&path, &whole[..whole.len() - 1]).unwrap();
        let c = check(dir.path(), &ca, (4, 6, 0, true));
        assert!(!c.torn_tail && c.unterminated);
    }
}
