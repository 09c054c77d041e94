//! The hash chain that links the records: each record's `prev_hash` is the SHA-256 of the line
//! before it, the first one's that of a genesis value bound to the CA. Here are the hashes, the
//! walk over a whole ledger, the check of its last link alone (what `mint` reads), and the next
//! serial. Cheap: no signature is checked here.

use sha2::{Digest, Sha256};

use super::record::Record;
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

/// Walk the hash chain: serials 1, 2, 3… with each `prev_hash` the hash of the line before
/// (the first: the genesis value of this CA). Returns the hash of every line. Cheap: no
/// signature is checked here.
pub fn chain_heads(records: &[(String, Record)], ca_fingerprint: &str) -> Result<Vec<String>> {
    let mut heads = Vec::with_capacity(records.len());
    let mut walk = Walk::new(ca_fingerprint);
    for (line, record) in records {
        let head = hex_sha256(line.as_bytes());
        walk.next(record, &head)?;
        heads.push(head);
    }
    Ok(heads)
}

/// The chain walked one record at a time, from the first line (what [`chain_heads`] and the
/// streaming audit of `log verify` share): the serial must be the line number and the
/// `prev_hash` the hash of the line before.
pub struct Walk<'a> {
    ca_fingerprint: &'a str,
    prev: String,
    /// Records linked so far.
    n: u64,
}

impl<'a> Walk<'a> {
    pub fn new(ca_fingerprint: &'a str) -> Self {
        Walk {
            ca_fingerprint,
            prev: genesis_hash(ca_fingerprint),
            n: 0,
        }
    }

    /// The next line's record and the hash of its line (see [`hex_sha256`]).
    pub fn next(&mut self, record: &Record, line_hash: &str) -> Result<()> {
        let n = self.n.saturating_add(1);
        let at = format!("record serial {} (line {n})", record.serial);
        if n != record.serial {
            return Err(broken(format!(
                "{at}: expected serial {n}; records were removed, inserted or reordered"
            )));
        }
        if record.prev_hash != self.prev {
            return Err(broken(if n == 1 {
                format!(
                    "{at}: it does not start the ledger of the CA {}: the ledger belongs to another CA (it names {}), or its first record was edited",
                    self.ca_fingerprint, record.ca_fingerprint
                )
            } else {
                format!(
                    "{at}: the record before it is not the one it was chained to: serial {} was edited, or records were removed, inserted or reordered",
                    n - 1
                )
            }));
        }
        self.prev = line_hash.to_string();
        self.n = n;
        Ok(())
    }
}

/// The last link of the chain: the newest record continues the one before it (or the genesis
/// value if it is serial 1). `tail` is the end of a ledger, read from a line start.
pub(super) fn check_last_link(tail: &[(String, Record)], ca_fingerprint: &str) -> Result<()> {
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
    use super::super::testing::{edit_first_reason, issue, record, with_records};
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
        let tail = vec![(line, before), (String::new(), a)];
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
}
