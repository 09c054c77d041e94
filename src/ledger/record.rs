//! One line of `ledger.jsonl`: the [`Record`] of one issued certificate or a revocation record,
//! as an [`Entry`], and the one parser of ledger lines that every reader and writer uses
//! (`mint`, `revoke`, `status`, `log`, `log verify`), so there is one idea of what a record is
//! and what damage is.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::revocation::Revocation;
use super::BROKEN_HINT;
use crate::error::Error;
use crate::text::ShowPath;

/// One issued certificate. Field order is the serialised order, and the hash chain covers the
/// exact line written, so records are never re-serialised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `2` for a record whose certificate carries its ledger binding (see `binding.rs`);
    /// absent in the records of 0.1.0 (format 1, covered by checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<u32>,
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
    /// Format 3: the signed request, its proof of possession and the approvals (see
    /// [`crate::dual`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_control: Option<Box<crate::dual::DualControl>>,
    /// Format 2: the exact metadata text whose SHA-256 the certificate carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

impl Record {
    /// Whether the certificate carries this record's binding (format 2).
    pub fn is_bound(&self) -> bool {
        self.format.is_some()
    }
}

/// One line of `ledger.jsonl`: an issued certificate's record, or a revocation record (its
/// own kind, in the same chain: see [`super::revocation`]). The one parser,
/// [`Entry::parse_line`], tells them apart by how the line starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Issued(Record),
    Revoked(Revocation),
}

impl Entry {
    /// The one parser of a ledger line (without its newline), used by `mint`, `revoke`,
    /// `status`, `log` and `log verify` alike: a line is one record, exactly. A line that
    /// starts `{"kind":` is a record of that kind (only `revocation` exists); any other is an
    /// issuance record. A blank line is damage.
    pub fn parse_line(line: &[u8]) -> std::result::Result<Entry, String> {
        if line.is_empty() {
            return Err("a blank line where a record must be".into());
        }
        let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
        if line.starts_with(KIND_PREFIX) {
            return serde_json::from_str(text)
                .map(Entry::Revoked)
                .map_err(|e| e.to_string());
        }
        serde_json::from_str(text)
            .map(Entry::Issued)
            .map_err(|e| e.to_string())
    }

    /// The newest serial issued up to and including this line: an issuance record's own
    /// serial, a revocation's `last_serial`.
    pub fn serial_after(&self) -> u64 {
        match self {
            Entry::Issued(r) => r.serial,
            Entry::Revoked(v) => v.last_serial,
        }
    }

    pub fn prev_hash(&self) -> &str {
        match self {
            Entry::Issued(r) => &r.prev_hash,
            Entry::Revoked(v) => &v.prev_hash,
        }
    }

    /// When it was written (`issued_at`, `revoked_at`), by the laptop's clock.
    pub fn time(&self) -> &str {
        match self {
            Entry::Issued(r) => &r.issued_at,
            Entry::Revoked(v) => &v.revoked_at,
        }
    }

    pub fn ca_fingerprint(&self) -> &str {
        match self {
            Entry::Issued(r) => &r.ca_fingerprint,
            Entry::Revoked(v) => &v.ca_fingerprint,
        }
    }

    pub fn issued(&self) -> Option<&Record> {
        match self {
            Entry::Issued(r) => Some(r),
            Entry::Revoked(_) => None,
        }
    }

    pub fn revocation(&self) -> Option<&Revocation> {
        match self {
            Entry::Issued(_) => None,
            Entry::Revoked(v) => Some(v),
        }
    }

    /// How an error names it: `record serial N (line L)`, `revocation record (line L)`.
    pub fn at(&self, line: u64) -> String {
        match self {
            Entry::Issued(r) => format!("record serial {} (line {line})", r.serial),
            Entry::Revoked(_) => format!("revocation record (line {line})"),
        }
    }
}

/// How a line of a kind other than issuance starts.
pub const KIND_PREFIX: &[u8] = b"{\"kind\":";

/// The lines of a ledger (or of its end), each parsed by [`Entry::parse_line`].
#[derive(Debug, Default)]
pub struct Lines {
    /// Every record with its exact line (no newline), in order.
    pub records: Vec<(String, Entry)>,
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
    let last_index = parts.len();
    for (index, line) in parts.into_iter().enumerate() {
        let record = Entry::parse_line(line).map_err(|why| BadLine { index, why })?;
        out.records
            .push((String::from_utf8_lossy(line).into_owned(), record));
    }
    if !after_last_newline.is_empty() {
        match Entry::parse_line(after_last_newline) {
            Ok(record) => {
                out.records.push((
                    String::from_utf8_lossy(after_last_newline).into_owned(),
                    record,
                ));
                out.unterminated = true;
            }
            // A crash cuts a record's line short; it never leaves a whole record followed by
            // more bytes. Such a "fragment" is a record someone made unreadable, so that its
            // serial would be issued again: damage, not a torn write.
            Err(_) if starts_with_a_record(after_last_newline) => {
                return Err(BadLine {
                    index: last_index,
                    why: "a complete record followed by other bytes (a crash leaves only part of a record, never this)".into(),
                })
            }
            Err(_) => out.torn = Some(after_last_newline.to_vec()),
        }
    }
    Ok(out)
}

/// Whether `bytes` begin with a whole JSON record (followed by anything).
fn starts_with_a_record(bytes: &[u8]) -> bool {
    fn whole<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> bool {
        matches!(
            serde_json::Deserializer::from_slice(bytes)
                .into_iter::<T>()
                .next(),
            Some(Ok(_))
        )
    }
    match bytes.starts_with(KIND_PREFIX) {
        true => whole::<Revocation>(bytes),
        false => whole::<Record>(bytes),
    }
}

/// The error for a complete line of `path` that is not a record (`line` counts from 1).
pub(super) fn damaged(path: &Path, line: usize, why: &str) -> Error {
    Error::ledger(format!(
        "the ledger {} is damaged at line {line}: {why}",
        path.shown()
    ))
    .with_hint(BROKEN_HINT)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{append_raw, with_records};
    use super::*;

    /// Red-team finding: the last record's newline replaced by a byte made a whole,
    /// CA-signed record look torn, and the next mint set it aside and issued its serial again.
    #[test]
    fn a_whole_record_followed_by_bytes_is_damage_not_a_torn_write() {
        let (_dir, ledger) = with_records(2);
        let text = std::fs::read(ledger.path()).unwrap();
        let mut forged = text[..text.len() - 1].to_vec();
        forged.push(b'x');
        let bad = parse_ledger(&forged).err().unwrap();
        assert_eq!(bad.index, 1);
        assert!(bad.why.contains("complete record followed"), "{}", bad.why);
        // A crash's cut of the same line is a torn tail.
        let cut = parse_ledger(&text[..text.len() - 10]).unwrap();
        assert!(cut.torn.is_some());
        assert_eq!(cut.records.len(), 1);
    }

    #[test]
    fn a_blank_line_is_damage_for_every_reader() {
        let (_dir, ledger) = with_records(1);
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
    fn a_revocation_cut_short_is_torn_and_one_followed_by_bytes_is_damage() {
        let (_dir, ledger) = with_records(1);
        super::super::testing::revoke(&ledger, "CA", "2026-12-01T10:00:00Z", |_| {});
        let text = std::fs::read(ledger.path()).unwrap();
        let lines = parse_ledger(&text).unwrap();
        assert!(matches!(lines.records[1].1, Entry::Revoked(_)));
        assert_eq!(lines.records[1].1.serial_after(), 1);
        let cut = parse_ledger(&text[..text.len() - 20]).unwrap();
        assert!(cut.torn.is_some() && cut.records.len() == 1);
        let mut forged = text[..text.len() - 1].to_vec();
        forged.push(b'x');
        let bad = parse_ledger(&forged).unwrap_err();
        assert!(bad.why.contains("complete record followed"), "{}", bad.why);
        // Another kind is not a record.
        assert!(Entry::parse_line(b"{\"kind\":\"checkpoint\",\"serial\":1}").is_err());
    }
}
