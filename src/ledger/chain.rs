//! The hash chain that links the records: each record's `prev_hash` is the SHA-256 of the line
//! before it, the first one's that of a genesis value bound to the CA. Here are the hashes, the
//! walk over a whole ledger, the check of its last link alone (what `mint` reads), and the next
//! serial. Cheap: no signature is checked here.

use sha2::{Digest, Sha256};

use chrono::{DateTime, Utc};

use super::record::Entry;
use super::BROKEN_HINT;
use crate::error::{Error, Result};

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

/// The error for a chain that does not hold: `what` names the record and why.
pub(super) fn broken(what: String) -> Error {
    Error::ledger(format!("the ledger chain is broken: {what}")).with_hint(BROKEN_HINT)
}

/// Walk the hash chain: serials 1, 2, 3… (revocation lines between them, each naming the
/// newest serial before it) with each `prev_hash` the hash of the line before (the first: the
/// genesis value of this CA). Returns the hash of every line. Cheap: no signature is checked
/// here.
pub fn chain_heads(records: &[(String, Entry)], ca_fingerprint: &str) -> Result<Vec<String>> {
    let mut heads = Vec::with_capacity(records.len());
    let mut walk = Walk::new(ca_fingerprint);
    for (line, record) in records {
        let head = hex_sha256(line.as_bytes());
        walk.next(record, &head)?;
        heads.push(head);
    }
    Ok(heads)
}

/// The chain walked one line at a time, from the first line (what [`chain_heads`] and the
/// streaming audit of `log verify` share): an issuance record's serial must be the one after
/// the newest before it, a revocation's `last_serial` that newest serial, its time not
/// earlier than the line before it and later than the revocation before it, and every
/// `prev_hash` the hash of the line before.
pub struct Walk<'a> {
    ca_fingerprint: &'a str,
    prev: String,
    /// Lines linked so far.
    lines: u64,
    /// The newest serial linked so far.
    serial: u64,
    /// How the line before is named in an error.
    prev_name: String,
    /// The time of the line before.
    prev_time: Option<DateTime<Utc>>,
    /// The time of the newest revocation so far.
    prev_revocation: Option<DateTime<Utc>>,
}

fn time(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl<'a> Walk<'a> {
    pub fn new(ca_fingerprint: &'a str) -> Self {
        Walk {
            ca_fingerprint,
            prev: genesis_hash(ca_fingerprint),
            lines: 0,
            serial: 0,
            prev_name: String::new(),
            prev_time: None,
            prev_revocation: None,
        }
    }

    /// The next line's record and the hash of its line (see [`hex_sha256`]).
    pub fn next(&mut self, record: &Entry, line_hash: &str) -> Result<()> {
        let n = self.lines.saturating_add(1);
        let at = record.at(n);
        match record {
            Entry::Issued(r) => {
                let expected = self.serial.saturating_add(1);
                if r.serial != expected {
                    return Err(broken(format!(
                        "{at}: expected serial {expected}; records were removed, inserted or reordered"
                    )));
                }
            }
            Entry::Revoked(v) => {
                if v.last_serial != self.serial {
                    return Err(broken(format!(
                        "{at}: it says the newest serial issued before it is {}, but it follows serial {}; records were removed, inserted or reordered",
                        v.last_serial, self.serial
                    )));
                }
                let at_time = time(&v.revoked_at);
                if let (Some(t), Some(before)) = (at_time, self.prev_time) {
                    if t < before {
                        return Err(broken(format!(
                            "{at}: its revoked_at ({}) is earlier than the line before it ({}); records were inserted or reordered, or it was edited",
                            v.revoked_at,
                            crate::issue::rfc3339(before)
                        )));
                    }
                }
                if let (Some(t), Some(before)) = (at_time, self.prev_revocation) {
                    if t <= before {
                        return Err(broken(format!(
                            "{at}: its revoked_at ({}) is not later than the revocation before it ({}); revocations were inserted or reordered, or it was edited",
                            v.revoked_at,
                            crate::issue::rfc3339(before)
                        )));
                    }
                }
                self.prev_revocation = at_time.or(self.prev_revocation);
            }
        }
        if record.prev_hash() != self.prev {
            return Err(broken(if n == 1 {
                format!(
                    "{at}: it does not start the ledger of the CA {}: the ledger belongs to another CA (it names {}), or its first record was edited",
                    self.ca_fingerprint,
                    crate::text::Esc(record.ca_fingerprint())
                )
            } else {
                format!(
                    "{at}: the record before it is not the one it was chained to: {} was edited, or records were removed, inserted or reordered",
                    self.prev_name
                )
            }));
        }
        self.prev = line_hash.to_string();
        self.lines = n;
        self.serial = record.serial_after();
        self.prev_name = match record {
            Entry::Issued(r) => format!("serial {}", r.serial),
            Entry::Revoked(_) => format!("the revocation record on line {n}"),
        };
        self.prev_time = time(record.time());
        Ok(())
    }
}

/// The last link of the chain: the newest line continues the one before it (or the genesis
/// value if it is serial 1 alone); and the serials of every line of `tail` follow each other,
/// so the next serial, which the newest line names, is anchored to the newest issuance record
/// of the tail (a revocation's `last_serial` is signed by no one until a certificate follows
/// it). `tail` is the end of a ledger, read from a line start, holding its newest issuance
/// record if it has one.
pub(super) fn check_last_link(tail: &[(String, Entry)], ca_fingerprint: &str) -> Result<()> {
    let Some((_, last)) = tail.last() else {
        return Ok(());
    };
    let name = |e: &Entry| match e {
        Entry::Issued(r) => format!("record serial {}", r.serial),
        Entry::Revoked(_) => "the newest revocation record".to_string(),
    };
    for (i, pair) in tail.windows(2).enumerate() {
        let (before, next) = (&pair[0].1, &pair[1].1);
        let follows = match next {
            Entry::Issued(r) => before.serial_after().checked_add(1) == Some(r.serial),
            Entry::Revoked(v) => before.serial_after() == v.last_serial,
        };
        if !follows {
            let newest = i + 2 == tail.len();
            return Err(broken(match next {
                Entry::Issued(r) => format!(
                    "record serial {} follows serial {}; records were removed, inserted or reordered",
                    r.serial,
                    before.serial_after()
                ),
                Entry::Revoked(v) => format!(
                    "{} says the newest serial before it is {}, but it follows serial {}; records were removed, inserted or reordered",
                    if newest {
                        "the newest revocation record"
                    } else {
                        "a revocation record near the end"
                    },
                    v.last_serial,
                    before.serial_after()
                ),
            }));
        }
    }
    let expected = match tail.len().checked_sub(2).and_then(|i| tail.get(i)) {
        Some((line, _)) => hex_sha256(line.as_bytes()),
        None if matches!(last, Entry::Issued(r) if r.serial == 1) => genesis_hash(ca_fingerprint),
        None => return Ok(()),
    };
    if last.prev_hash() != expected {
        let before = match tail.len().checked_sub(2).and_then(|i| tail.get(i)) {
            Some((_, Entry::Issued(r))) => format!("serial {}", r.serial),
            Some((_, Entry::Revoked(_))) => "the revocation record before it".to_string(),
            None => "the first record".to_string(),
        };
        return Err(broken(format!(
            "{}: the record before it is not the one it was chained to: {before} was edited, or records were removed, inserted or reordered",
            name(last)
        )));
    }
    Ok(())
}

/// The serial after `serial`, checked: a value read from disk may be the largest.
pub(super) fn next_serial(serial: u64) -> Result<u64> {
    serial.checked_add(1).ok_or_else(|| {
        Error::ledger(format!(
            "the ledger's last serial is {serial}, the largest possible; no serial is left"
        ))
        .with_hint(BROKEN_HINT)
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{edit_first_reason, issue, record, revoke, with_records};
    use super::*;
    use crate::ledger::{Ledger, Tail};

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
        let tail = vec![
            (line, Entry::Issued(before)),
            (String::new(), Entry::Issued(a)),
        ];
        let err = check_last_link(&tail, "CA").unwrap_err().to_string();
        assert!(err.contains("follows serial 18446744073709551615"), "{err}");
    }

    #[test]
    fn a_broken_chain_is_never_extended() {
        let (_dir, ledger) = with_records(2);
        edit_first_reason(&ledger, "");
        let err = ledger.lock("CA").err().unwrap().to_string();
        assert!(
            err.contains("chain is broken") && err.contains("serial 1 was edited"),
            "{err}"
        );
    }

    #[test]
    fn serials_stay_consecutive_across_revocations_and_revocation_times_only_go_up() {
        let (_dir, ledger) = with_records(2);
        revoke(&ledger, "CA", "2026-12-01T10:00:00Z", |_| {});
        revoke(&ledger, "CA", "2026-12-01T10:00:01Z", |_| {});
        let all = ledger.read().unwrap();
        assert_eq!(chain_heads(&all, "CA").unwrap().len(), 4);
        // A revocation in the same second as the one before, or earlier: the KRL version
        // would not go up.
        for at in ["2026-12-01T10:00:00Z", "2026-12-01T09:59:59Z"] {
            let mut all = all.clone();
            let Entry::Revoked(mut v) = all[3].1.clone() else {
                panic!()
            };
            v.revoked_at = at.into();
            all[3] = (v.line().unwrap(), Entry::Revoked(v));
            let err = chain_heads(&all, "CA").unwrap_err().to_string();
            assert!(
                err.contains("revocation record (line 4): its revoked_at")
                    && (err.contains("is not later than the revocation before it")
                        || err.contains("is earlier than the line before it")),
                "{err}"
            );
        }
        // An issuance record must take the serial after the revocation's last_serial.
        let mut renumbered = all.clone();
        let Entry::Issued(mut r) = renumbered[1].1.clone() else {
            panic!()
        };
        r.serial = 3;
        renumbered[1].1 = Entry::Issued(r);
        let err = chain_heads(&renumbered, "CA").unwrap_err().to_string();
        assert!(
            err.contains("record serial 3 (line 2): expected serial 2"),
            "{err}"
        );
        // A revocation moved before the record it names.
        let moved = vec![
            all[0].clone(),
            all[2].clone(),
            all[1].clone(),
            all[3].clone(),
        ];
        let err = chain_heads(&moved, "CA").unwrap_err().to_string();
        assert!(err.contains("revocation record (line 2): it says the newest serial issued before it is 2, but it follows serial 1"), "{err}");
    }
}
