//! Verifying a ledger without the token: the hash chain, the signed checkpoints, and every
//! stored certificate against its record and the CA key. Works on the raw bytes of the files,
//! so the state directory and an exported bundle are checked by the same code.

use ssh_key::public::KeyData;
use ssh_key::{Certificate, HashAlg};

use super::checkpoint;
use super::{chain_heads, parse_ledger, Record, BROKEN_HINT};
use crate::cert;
use crate::error::{Error, Result};
use crate::issue::rfc3339;

/// What a successful verification found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub records: usize,
    pub last_serial: u64,
    pub checkpoints: usize,
    /// The newest record covered by a valid checkpoint.
    pub last_signed_serial: u64,
    /// Things an auditor should know that are not tampering (a torn tail, unsigned records).
    pub warnings: Vec<String>,
}

fn broken(what: String) -> Error {
    Error::invalid(format!("ledger verification FAILED: {what}")).with_hint(BROKEN_HINT)
}

/// Verify `ledger` and `checkpoints` (the bytes of `ledger.jsonl` and `checkpoints.jsonl`)
/// against the CA public key. The first broken record is named in the error. Lines are parsed
/// by the ledger's own parser, so a line `mint` refuses is refused here too, and the reverse.
pub fn verify(ledger: &[u8], checkpoints: &[u8], ca: &KeyData) -> Result<Report> {
    let ca_fp = ca.fingerprint(HashAlg::Sha256).to_string();
    let lines = parse_ledger(ledger).map_err(|bad| {
        broken(format!(
            "line {} is not a ledger record: {}",
            bad.index + 1,
            bad.why
        ))
    })?;
    let mut report = Report::default();
    if lines.torn.is_some() {
        report.warnings.push("the ledger ends in a half-written record from an interrupted mint; no certificate was handed out for it (the next mint sets it aside)".into());
    }
    if lines.unterminated {
        report.warnings.push("the ledger's last record lost its final newline (an interrupted mint); it is verified like the others, its serial stays issued, and the next mint restores the newline".into());
    }
    let records = lines.records;
    // Each record against its own certificate first: that names an edited record itself,
    // where the chain can only name the record after it.
    for (i, (_, record)) in records.iter().enumerate() {
        let at = format!("record serial {} (line {})", record.serial, i + 1);
        if record.ca_fingerprint != ca_fp {
            return Err(broken(format!(
                "{at}: it was issued by the CA {}, not {ca_fp}: this ledger belongs to another CA",
                record.ca_fingerprint
            )));
        }
        check_certificate(record, ca).map_err(|why| broken(format!("{at}: {why}")))?;
        report.records = i + 1;
        report.last_serial = record.serial;
    }
    let heads = chain_heads(&records, &ca_fp)?;

    let cp_lines = checkpoint::lines(checkpoints);
    if cp_lines.torn {
        report.warnings.push(
            "the checkpoint file ends in a half-written line from an interrupted mint".into(),
        );
    }
    let mut last_cp = 0u64;
    for (i, line) in cp_lines.complete.iter().enumerate() {
        let cp = checkpoint::parse_line(line)
            .map_err(|_| broken(format!("checkpoint line {} cannot be read", i + 1)))?;
        if cp.serial <= last_cp {
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
        last_cp = cp.serial;
        report.checkpoints += 1;
    }
    report.last_signed_serial = last_cp;
    if report.last_serial > last_cp {
        report.warnings.push(format!(
            "{} record(s) after serial {last_cp} are not covered by a signed checkpoint (checkpoints switched off, or a mint was interrupted); their certificates were still verified",
            report.last_serial.saturating_sub(last_cp)
        ));
    }
    Ok(report)
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
            cert.public_key().fingerprint(HashAlg::Sha256).to_string() != r.requester_fingerprint,
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
    use crate::ledger::checkpoint::Checkpoint;
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
        ca.public_key().fingerprint(HashAlg::Sha256).to_string()
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
                report.records,
                report.last_serial,
                report.checkpoints,
                report.last_signed_serial
            ),
            (4, 4, 4, 4)
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
        let fp = ca.public_key().fingerprint(HashAlg::Sha256).to_string();
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
        assert_eq!(report.records, 3);
        assert_eq!(report.last_signed_serial, 1);
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
        assert_eq!((report.records, report.last_signed_serial), (3, 3));
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
        assert_eq!(verify(&bytes, &cps, ca.public_key()).unwrap().records, 3);
        assert_eq!(reader.read().unwrap().len(), 3);
    }
}
