//! The ledger binding: before the token signs a certificate, the record's metadata (everything
//! the record holds except the certificate itself, plus a random salt) is written as one exact
//! ASCII JSON text, and its SHA-256 goes into the certificate as the non-critical extension
//! [`EXTENSION`]. The token's one signature over the certificate then covers the record and
//! its link to the record before it: a format-2 record needs no checkpoint.
//!
//! The record keeps that text in its `metadata` field, so an auditor recomputes the hash with
//! `jq -r .metadata | sha256sum` (docs/ledger.md). [`check`] is pure and needs only the record
//! and its parsed certificate: records can be checked in any order, or in parallel.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ssh_key::Certificate;

use super::chain::hex_sha256;
use super::record::Record;
use crate::error::{Error, Result};

/// The certificate extension that carries the hash of the record's metadata. Non-critical:
/// sshd ignores extensions it does not know (OpenSSH asks vendor names to carry an `@`).
pub const EXTENSION: &str = "ledger-binding-v1@breakglass-ca";

/// The record format whose certificate carries the binding. Records without a `format` field
/// are format 1 (0.1.0), covered by checkpoints.
pub const FORMAT: u32 = 2;

/// The record format of a bound record that holds a signed request (`dual_control`).
pub const FORMAT_DUAL: u32 = 3;

/// How many random bytes salt the metadata (hex in `binding_salt`): the hash must not let
/// anyone test guesses of a short reason.
pub const SALT_BYTES: usize = 16;

/// What the token signs about a record, through the hash in its certificate. The field order
/// is the order written; [`encode`] gives the exact text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub format: u32,
    pub serial: u64,
    pub key_id: String,
    pub principals: Vec<String>,
    pub valid_after: String,
    pub valid_before: String,
    pub requester_key_type: String,
    pub requester_fingerprint: String,
    pub requester_comment: String,
    pub reason: String,
    pub critical_options: BTreeMap<String, String>,
    pub extensions: Vec<String>,
    pub ca_fingerprint: String,
    pub issued_at: String,
    pub host: String,
    pub tool_version: String,
    pub prev_hash: String,
    /// Format 3: the signed request and its approvals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_control: Option<Box<crate::dual::DualControl>>,
    /// Hex of [`SALT_BYTES`] random bytes.
    pub binding_salt: String,
}

impl Metadata {
    /// The metadata a record states (its `binding_salt` given): what its `metadata` text
    /// must say.
    pub fn of(r: &Record, binding_salt: String) -> Self {
        Metadata {
            format: r.format.unwrap_or(1),
            serial: r.serial,
            key_id: r.key_id.clone(),
            principals: r.principals.clone(),
            valid_after: r.valid_after.clone(),
            valid_before: r.valid_before.clone(),
            requester_key_type: r.requester_key_type.clone(),
            requester_fingerprint: r.requester_fingerprint.clone(),
            requester_comment: r.requester_comment.clone(),
            reason: r.reason.clone(),
            critical_options: r.critical_options.clone(),
            extensions: r.extensions.clone(),
            ca_fingerprint: r.ca_fingerprint.clone(),
            issued_at: r.issued_at.clone(),
            host: r.host.clone(),
            tool_version: r.tool_version.clone(),
            prev_hash: r.prev_hash.clone(),
            dual_control: r.dual_control.clone(),
            binding_salt,
        }
    }

    /// The format-2 record of this metadata (`text` its [`encode`]d form) and of the
    /// certificate signed with its hash (`line` the certificate's OpenSSH line).
    pub fn record(self, text: String, certificate_sha256: String, line: String) -> Record {
        Record {
            format: Some(self.format),
            serial: self.serial,
            key_id: self.key_id,
            principals: self.principals,
            valid_after: self.valid_after,
            valid_before: self.valid_before,
            requester_key_type: self.requester_key_type,
            requester_fingerprint: self.requester_fingerprint,
            requester_comment: self.requester_comment,
            reason: self.reason,
            critical_options: self.critical_options,
            extensions: self.extensions,
            certificate_sha256,
            certificate: line,
            ca_fingerprint: self.ca_fingerprint,
            issued_at: self.issued_at,
            host: self.host,
            tool_version: self.tool_version,
            prev_hash: self.prev_hash,
            dual_control: self.dual_control,
            metadata: Some(text),
        }
    }
}

/// A new random salt, as hex.
pub fn new_salt() -> Result<String> {
    let mut salt = [0u8; SALT_BYTES];
    rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut salt).map_err(|e| {
        Error::ledger(format!(
            "cannot read random bytes for the ledger binding: {e}"
        ))
    })?;
    Ok(salt.iter().map(|b| format!("{b:02x}")).collect())
}

/// The exact text whose hash the certificate carries: compact JSON, plain ASCII (every other
/// character a `\u` escape), so `jq -r .metadata` prints exactly these bytes.
pub fn encode(m: &Metadata) -> Result<String> {
    crate::text::json_ascii(m, false).map_err(|e| Error::json("cannot encode the record", e))
}

/// The extension's value for a metadata text: its SHA-256, 64 lowercase hex digits.
pub fn hash(text: &str) -> String {
    hex_sha256(text.as_bytes())
}

/// A format-2 record (its exact `line`) against its certificate, already parsed and checked
/// against the CA: the line is the record as mint writes it, the metadata text parses and says
/// what the record says, and the certificate carries its hash. Pure: no I/O, no order.
pub fn check(line: &str, r: &Record, cert: &Certificate) -> std::result::Result<(), String> {
    let Some(text) = &r.metadata else {
        return Err("it is in format 2 but holds no metadata".into());
    };
    let meta: Metadata =
        serde_json::from_str(text).map_err(|e| format!("its metadata cannot be read ({e})"))?;
    let stated = Metadata::of(r, meta.binding_salt.clone());
    if meta != stated {
        let field = first_difference(&meta, &stated).unwrap_or_else(|| "metadata".into());
        return Err(format!("its {field} differs from its signed metadata"));
    }
    match cert.extensions().get(EXTENSION) {
        None => return Err("its certificate carries no ledger binding".into()),
        Some(v) if *v != hash(text) => return Err(
            "its metadata is not what the token signed (the certificate's ledger binding differs)"
                .into(),
        ),
        Some(_) => {}
    }
    // The line holds nothing the signature does not cover but the certificate and its hash
    // (checked against the certificate): written exactly as mint writes it.
    if serde_json::to_string(r).ok().as_deref() != Some(line) {
        return Err("its line is not written as mint writes a record".into());
    }
    Ok(())
}

/// The name of the first field where `a` and `b` differ.
fn first_difference(a: &Metadata, b: &Metadata) -> Option<String> {
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) =
        (serde_json::to_value(a).ok()?, serde_json::to_value(b).ok()?)
    else {
        return None;
    };
    a.iter()
        .find(|(k, v)| b.get(k.as_str()) != Some(v))
        .map(|(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Metadata {
        Metadata {
            format: FORMAT,
            serial: 1,
            key_id: "k".into(),
            principals: vec!["p".into()],
            valid_after: "a".into(),
            valid_before: "b".into(),
            requester_key_type: "ssh-ed25519".into(),
            requester_fingerprint: "SHA256:r".into(),
            requester_comment: "alice".into(),
            reason: "caf\u{e9} \u{202e}".into(),
            critical_options: BTreeMap::new(),
            extensions: vec![],
            ca_fingerprint: "SHA256:c".into(),
            issued_at: "i".into(),
            host: "h".into(),
            tool_version: "0".into(),
            prev_hash: "00".into(),
            dual_control: None,
            binding_salt: new_salt().unwrap(),
        }
    }

    #[test]
    fn the_text_is_ascii_and_reads_back() {
        let m = meta();
        let text = encode(&m).unwrap();
        assert!(text.is_ascii() && !text.contains('\n'), "{text}");
        assert!(text.contains("caf\\u00e9 \\u202e"), "{text}");
        assert_eq!(serde_json::from_str::<Metadata>(&text).unwrap(), m);
        assert_eq!(hash(&text).len(), 64);
        // The salt is fresh each time.
        assert_eq!(m.binding_salt.len(), 2 * SALT_BYTES);
        assert_ne!(new_salt().unwrap(), new_salt().unwrap());
        // A field it does not know is not metadata.
        let extra = text.replacen('{', "{\"x\":1,", 1);
        assert!(serde_json::from_str::<Metadata>(&extra).is_err());
    }

    #[test]
    fn the_first_differing_field_is_named() {
        let a = meta();
        let mut b = a.clone();
        b.host = "other".into();
        assert_eq!(first_difference(&a, &b).as_deref(), Some("host"));
        assert_eq!(first_difference(&a, &a), None);
    }
}
