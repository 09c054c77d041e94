//! Verifying a ledger without the token: the full audit `log verify` runs (the hash chain,
//! the signed checkpoints, and every stored certificate against its record and the CA key),
//! and the cheap check `status` runs (the chain and the newest checkpoint, no signature).
//! The audit works on the raw bytes of the files, so the state directory and an exported
//! bundle are checked by the same code, and it parses lines with the same parsers as `mint`.

use std::fs::OpenOptions;
use std::io::Write;

use ssh_key::public::KeyData;
use ssh_key::Certificate;

use super::audit::{self, Input};
use super::checkpoint::{self, Checkpoint};
use super::{chain_heads, Ledger, Note, Record, BROKEN_HINT};
use crate::cert;
use crate::error::{Error, Result};
use crate::fsx;
use crate::issue::rfc3339;

/// What a successful verification found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The newest record's serial: the ledger holds serials 1 to this, each once.
    pub last_serial: u64,
    pub checkpoints: usize,
    /// The newest checkpoint, verified: it covers the records up to its serial.
    pub newest_checkpoint: Option<Checkpoint>,
    /// Things an auditor should know that are not tampering (a torn tail, unsigned records).
    pub warnings: Vec<String>,
}

impl Report {
    /// The newest record covered by a valid checkpoint (0 for none).
    pub fn last_signed_serial(&self) -> u64 {
        self.newest_checkpoint.as_ref().map_or(0, |cp| cp.serial)
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
    /// How many records it holds.
    pub records: usize,
    /// The newest one.
    pub last: Option<Record>,
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
                what: format!("ledger {}", path.display()),
                copy: ledger_copy,
            },
            Input {
                reader: match cps {
                    Some(f) => Box::new(f),
                    None => Box::new(std::io::empty()),
                },
                what: format!("checkpoint file {}", cp_path.display()),
                copy: cp_copy,
            },
            ca,
            size,
            &|p| self.note(Note::Verifying(p)),
        )?;
        let report = walked.report;
        if self.checkpoints_required && report.checkpoints == 0 && report.last_serial > 0 {
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
        let mut records = self.read()?;
        let chain = chain_heads(&records, ca_fingerprint).and_then(|_| self.check_signed(&records));
        Ok(Summary {
            records: records.len(),
            last: records.pop().map(|(_, r)| r),
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

/// One record's own checks, which need nothing but the record and the CA key (and so run in
/// parallel, see [`audit::walk`]): issued by this CA, and its certificate's.
pub(super) fn check_record(
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
    check_certificate(r, ca)
}

/// The report's closing warnings, once everything verified.
pub(super) fn finish(report: &mut Report) {
    let last_cp = report.last_signed_serial();
    if report.last_serial > last_cp {
        report.warnings.push(format!(
            "{} record(s) after serial {last_cp} are not covered by a signed checkpoint (checkpoints switched off, or a mint was interrupted); their certificates were still verified",
            report.last_serial.saturating_sub(last_cp)
        ));
    }
}

/// The stored certificate must parse, be signed by the CA, and say what its record says.
fn check_certificate(r: &Record, ca: &KeyData) -> std::result::Result<(), String> {
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
            "requester fingerprint",
            crate::key::fingerprint(cert.public_key()) != r.requester_fingerprint,
        ),
        (
            "critical options",
            cert.critical_options().iter().ne(r.critical_options.iter()),
        ),
        (
            "extensions",
            !cert.extensions().keys().eq(r.extensions.iter()),
        ),
        (
            "certificate SHA256",
            cert::certificate_sha256(&cert).ok().as_deref() != Some(r.certificate_sha256.as_str()),
        ),
    ];
    match mismatches.iter().find(|(_, bad)| *bad) {
        Some((field, _)) => Err(format!("its {field} differs from its certificate's")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::soft::SoftKey;
    use crate::backend::CaKey;
    use crate::cert::CertOptions;
    use crate::issue::{issue, Clock, MintRequest};
    use crate::ledger::{genesis_hash, hex_sha256};
    use crate::ledger::{Ledger, LEDGER_FILE};
    use crate::policy::{Policy, ValidityRequest};
    use chrono::{DateTime, TimeZone, Utc};

    struct Fixed(DateTime<Utc>);
    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    fn fp(ca: &SoftKey) -> String {
        crate::key::fingerprint(ca.public_key())
    }

    /// A ledger of `n` records (with checkpoints) signed by a software key.
    fn ledger(n: u64) -> (tempfile::TempDir, SoftKey, Vec<String>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let ca = SoftKey::new(5);
        let subject = ssh_key::PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO alice@laptop",
        )
        .unwrap();
        let ledger = Ledger::new(dir.path());
        for i in 0..n {
            let req = MintRequest {
                subject: subject.clone(),
                requester: "alice".into(),
                principals: vec![format!("p{i}")],
                reason: format!("reason {i}"),
                key_id: None,
                validity: ValidityRequest::default(),
                options: CertOptions::default(),
            };
            let clock = Fixed(Utc.with_ymd_and_hms(2026, 11, 22, 3, i as u32, 0).unwrap());
            let mut locked = ledger.lock(&fp(&ca)).unwrap();
            issue(&ca, &mut locked, &Policy::default(), &req, &clock, true).unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join(LEDGER_FILE)).unwrap();
        let cps = std::fs::read(dir.path().join(checkpoint::FILE)).unwrap();
        (dir, ca, text.lines().map(String::from).collect(), cps)
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
        };
        let earlier = Fixed(Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 0).unwrap());
        let mut locked = ledger.lock(&fp(&ca)).unwrap();
        let err = issue(&ca, &mut locked, &Policy::default(), &req, &earlier, true).unwrap_err();
        assert!(err.to_string().contains("time went backwards"), "{err}");
        req.validity.not_before = Some(Utc.with_ymd_and_hms(2026, 11, 22, 4, 0, 0).unwrap());
        let issued = issue(&ca, &mut locked, &Policy::default(), &req, &earlier, true).unwrap();
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
}
