//! Revocation records: a line of `ledger.jsonl` of its own kind (it starts
//! `{"kind":"revocation",`), in the same hash chain as the issuance records, that says which of
//! this CA's certificates (by serial or key ID), which requester keys and which CA keys are
//! revoked, when, by whom and why. No serial is spent: a revocation carries `last_serial`, the
//! newest serial issued before it, so the next mint still reads only the end of the ledger.
//!
//! Revoking needs no token: the record is signed by no one when it is written, and is covered
//! by the token's signature through the next certificate's ledger binding (its `prev_hash`).
//! [`check`] is the pure check of one revocation line; the chain walk checks its place (see
//! `chain.rs`); [`Revoked`] is what all of a ledger's revocations revoke, merged: the contract
//! the KRL builder (`krl -o`, `host-config`) and the exports compile against.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ssh_key::public::KeyData;
use ssh_key::PublicKey;

use super::record::Entry;
use crate::error::{Error, Result};
use crate::text::Esc;

/// The revocation record format this version writes and reads.
pub const FORMAT: u32 = 1;

/// The `kind` of a revocation record: the only value is `"revocation"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    Revocation,
}

/// A public key a revocation names: its OpenSSH line without comment, and its fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedKey {
    /// `TYPE BASE64`, no comment.
    pub key: String,
    /// `SHA256:…` of that key.
    pub fingerprint: String,
}

impl RevokedKey {
    pub fn of(key: &KeyData) -> Result<Self> {
        Ok(RevokedKey {
            key: key_line(key)?,
            fingerprint: crate::key::fingerprint(key),
        })
    }
}

/// The OpenSSH line of `key` without a comment: `TYPE BASE64`.
pub fn key_line(key: &KeyData) -> Result<String> {
    PublicKey::new(key.clone(), "")
        .to_openssh()
        .map(|l| l.trim_end().to_string())
        .map_err(|e| Error::ssh("cannot encode a public key", e))
}

/// One revocation record. The field order is the order written; the line is exactly
/// [`Revocation::line`] (compact JSON, plain ASCII).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub kind: RecordKind,
    /// [`FORMAT`].
    pub format: u32,
    /// This CA's serials revoked: inclusive ranges `[lo, hi]`, sorted, merged, never 0, none
    /// above `last_serial`.
    pub serials: Vec<(u64, u64)>,
    /// This CA's key IDs revoked (each held by a record before it), sorted, each once.
    pub key_ids: Vec<String>,
    /// Requester keys revoked outright (every certificate for them, from any CA), sorted.
    pub requester_keys: Vec<RevokedKey>,
    /// CA keys revoked outright (this CA, a backup CA, a retired CA: every certificate they
    /// signed), sorted.
    pub ca_keys: Vec<RevokedKey>,
    pub reason: String,
    /// RFC 3339, UTC, seconds: later than every revocation before it.
    pub revoked_at: String,
    /// The OS user who ran `revoke` (name of the real uid, else `uid N`). Untrusted text.
    pub revoked_by: String,
    pub host: String,
    pub tool_version: String,
    /// The CA whose ledger this is.
    pub ca_fingerprint: String,
    /// The newest serial issued before this record (0 for none): the next mint's serial is
    /// this plus one.
    pub last_serial: u64,
    /// SHA-256 (hex) of the previous line, or the genesis value for the first line.
    pub prev_hash: String,
}

impl Revocation {
    /// The exact line written to the ledger: compact JSON, plain ASCII (every other
    /// character a `\u` escape).
    pub fn line(&self) -> Result<String> {
        crate::text::json_ascii(self, false)
            .map_err(|e| Error::json("cannot encode the revocation record", e))
    }

    pub fn revokes_serial(&self, serial: u64) -> bool {
        self.serials
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&serial))
    }

    pub fn revokes_key_id(&self, id: &str) -> bool {
        self.key_ids.iter().any(|k| k == id)
    }

    pub fn revokes_requester(&self, fingerprint: &str) -> bool {
        self.requester_keys
            .iter()
            .any(|k| k.fingerprint == fingerprint)
    }

    pub fn revokes_ca(&self, fingerprint: &str) -> bool {
        self.ca_keys.iter().any(|k| k.fingerprint == fingerprint)
    }

    /// `on 2026-12-01T10:33:16Z by alice (reason: …)`, escaped, for messages.
    pub fn when_why(&self) -> String {
        format!(
            "on {} by {} (reason: {})",
            Esc(&self.revoked_at),
            Esc(&self.revoked_by),
            Esc(&self.reason)
        )
    }
}

/// One revocation line (`line`, exact) on its own, against this ledger's CA `ca_fp`: a known
/// format, this CA, something revoked, serials in 1..=`last_serial` sorted and merged, key
/// IDs sorted and each once, every key line a public key (not a certificate) without comment
/// with its fingerprint, a plain reason, an RFC 3339 UTC time, and the line written exactly
/// as `revoke` writes it. Pure: its place in the chain is checked by the walk.
pub fn check(line: &str, v: &Revocation, ca_fp: &str) -> std::result::Result<(), String> {
    if v.format != FORMAT {
        return Err(format!(
            "it is in revocation format {}, which this version of breakglass-ca does not know",
            v.format
        ));
    }
    if v.ca_fingerprint != ca_fp {
        return Err(format!(
            "it was written for the CA {}, not {ca_fp}: this ledger belongs to another CA",
            Esc(&v.ca_fingerprint)
        ));
    }
    if v.serials.is_empty()
        && v.key_ids.is_empty()
        && v.requester_keys.is_empty()
        && v.ca_keys.is_empty()
    {
        return Err("it revokes nothing".into());
    }
    let mut prev: Option<u64> = None;
    for (lo, hi) in &v.serials {
        if *lo == 0 {
            return Err("it revokes serial 0, which no certificate of this CA has".into());
        }
        if lo > hi {
            return Err(format!("its serial range {lo}-{hi} is empty"));
        }
        if *hi > v.last_serial {
            return Err(format!(
                "it revokes serial {hi}, but the newest serial issued before it is {}",
                v.last_serial
            ));
        }
        if prev.is_some_and(|p| p.saturating_add(1) >= *lo) {
            return Err("its serial ranges are not sorted and merged as revoke writes them".into());
        }
        prev = Some(*hi);
    }
    if v.key_ids.iter().any(String::is_empty) {
        return Err("it revokes an empty key ID".into());
    }
    // Only what mint's key ID rule lets through (printable ASCII): a NUL cannot go into a KRL.
    if let Some(id) = v
        .key_ids
        .iter()
        .find(|id| crate::policy::check_key_id(id).is_err())
    {
        return Err(format!(
            "it revokes the key ID \"{}\", which no breakglass-ca certificate can have",
            Esc(id)
        ));
    }
    if !v.key_ids.windows(2).all(|w| w[0] < w[1]) {
        return Err("its key IDs are not sorted and unique as revoke writes them".into());
    }
    for (what, keys) in [("requester key", &v.requester_keys), ("CA key", &v.ca_keys)] {
        for k in keys {
            check_key(k).map_err(|why| format!("its {what} {}: {why}", Esc(&k.fingerprint)))?;
        }
        if !keys.windows(2).all(|w| w[0] < w[1]) {
            return Err(format!(
                "its {what}s are not sorted and unique as revoke writes them"
            ));
        }
    }
    if v.reason.trim().is_empty() {
        return Err("its reason is empty".into());
    }
    if !crate::text::is_safe_stored(&v.reason) {
        return Err("its reason holds a control or invisible character".into());
    }
    let at = DateTime::parse_from_rfc3339(&v.revoked_at)
        .map_err(|_| "its revoked_at is not an RFC 3339 time".to_string())?;
    if crate::issue::rfc3339(at.with_timezone(&Utc)) != v.revoked_at {
        return Err("its revoked_at is not written as revoke writes a time (UTC, seconds)".into());
    }
    if v.line().ok().as_deref() != Some(line) {
        return Err("its line is not written as revoke writes a revocation".into());
    }
    Ok(())
}

/// A key line of a revocation: a public key (not a certificate), no comment, its fingerprint.
fn check_key(k: &RevokedKey) -> std::result::Result<(), String> {
    if crate::key::is_certificate(&k.key) {
        return Err("is a certificate, not a public key".into());
    }
    let key = crate::key::parse_line(&k.key)
        .map_err(|e| format!("is not an OpenSSH public key line ({e})"))?;
    if key_line(key.key_data()).ok().as_deref() != Some(k.key.as_str()) {
        return Err("is not written as revoke writes a key (TYPE BASE64, no comment)".into());
    }
    if crate::key::fingerprint(key.key_data()) != k.fingerprint {
        return Err("is named with another key's fingerprint".into());
    }
    Ok(())
}

/// The KRL version of a revocation time: the UTC digits YYYYMMDDHHMMSS as a number (0 for
/// a time that cannot be read, which [`check`] refuses).
pub fn krl_version(revoked_at: &str) -> u64 {
    DateTime::parse_from_rfc3339(revoked_at)
        .ok()
        .and_then(|t| {
            t.with_timezone(&Utc)
                .format("%Y%m%d%H%M%S")
                .to_string()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Inclusive ranges sorted and merged (overlapping or adjacent ranges joined).
pub fn merge_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.retain(|(lo, hi)| lo <= hi);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// What a ledger's revocation records revoke, merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revoked {
    /// This CA's fingerprint (`SHA256:…`): the serials and key IDs below are its certificates.
    pub ca_fingerprint: String,
    /// This CA's revoked serials: inclusive ranges, sorted, merged, not overlapping, never 0.
    pub serials: Vec<(u64, u64)>,
    /// This CA's revoked key IDs, sorted, each once.
    pub key_ids: Vec<String>,
    /// Requester public keys revoked outright (every certificate for them), as OpenSSH
    /// public key lines without comment, sorted, each once.
    pub requester_keys: Vec<String>,
    /// CA public keys revoked outright (this CA or a backup CA: every certificate they
    /// signed), as OpenSSH public key lines without comment, sorted, each once.
    pub ca_keys: Vec<String>,
    /// How many revocation records the ledger holds.
    pub records: usize,
    /// The KRL version these revocations give: the newest revocation record's time, UTC, as
    /// the decimal digits YYYYMMDDHHMMSS read as a number (0 with no revocation). It only goes
    /// up: `revoke` never records two revocations in the same second, nor one older than the
    /// newest record.
    pub version: u64,
    /// The newest revocation record's time (RFC 3339, UTC), if any.
    pub newest: Option<String>,
}

impl Revoked {
    /// The revocations `revs` (in ledger order) of the CA `ca_fingerprint`, merged.
    pub fn merge<'a>(ca_fingerprint: &str, revs: impl IntoIterator<Item = &'a Revocation>) -> Self {
        let mut serials = Vec::new();
        let (mut ids, mut requesters, mut cas) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        let mut records = 0;
        let mut newest: Option<&str> = None;
        for v in revs {
            records += 1;
            serials.extend(v.serials.iter().copied());
            ids.extend(v.key_ids.iter().cloned());
            requesters.extend(v.requester_keys.iter().map(|k| k.key.clone()));
            cas.extend(v.ca_keys.iter().map(|k| k.key.clone()));
            if newest.is_none_or(|n| krl_version(&v.revoked_at) > krl_version(n)) {
                newest = Some(&v.revoked_at);
            }
        }
        Revoked {
            ca_fingerprint: ca_fingerprint.to_string(),
            serials: merge_ranges(serials),
            key_ids: ids.into_iter().collect(),
            requester_keys: requesters.into_iter().collect(),
            ca_keys: cas.into_iter().collect(),
            records,
            version: newest.map_or(0, krl_version),
            newest: newest.map(str::to_string),
        }
    }

    /// The newest revocation's time if it is later than `now`: the KRL version would be in
    /// the future, and hosts refuse every KRL of a lower version (the clock is behind, or that
    /// record was written with a clock ahead, or forged).
    pub fn newest_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let newest = DateTime::parse_from_rfc3339(self.newest.as_deref()?).ok()?;
        let newest = newest.with_timezone(&Utc);
        (newest > now).then_some(newest)
    }

    /// How many serials the ranges hold.
    pub fn serial_count(&self) -> u64 {
        self.serials
            .iter()
            .map(|(lo, hi)| hi.saturating_sub(*lo).saturating_add(1))
            .fold(0, u64::saturating_add)
    }
}

/// What `mint` refuses before the PIN: a certificate from a revoked CA (`ca_fp`), or for a
/// revoked requester key (`requester`, its fingerprint), with the revocation that says so.
pub fn refuse_for_mint(revs: &[Revocation], ca_fp: &str, requester: Option<&str>) -> Result<()> {
    if let Some(v) = revs.iter().find(|v| v.revokes_ca(ca_fp)) {
        return Err(Error::refused(format!(
            "this CA ({ca_fp}) was revoked {}; it must not issue certificates",
            v.when_why()
        ))
        .with_hint("hosts with the new KRL refuse every certificate of this CA: mint with the backup CA's token and its own state directory (--state-dir; docs/runbook.md, section 3.2)"));
    }
    if let Some(fp) = requester {
        if let Some(v) = revs.iter().find(|v| v.revokes_requester(fp)) {
            return Err(Error::refused(format!(
                "the requester's key {fp} was revoked {}",
                v.when_why()
            ))
            .with_hint("hosts with the new KRL refuse every certificate for this key: the requester must make a new key pair (ssh-keygen -t ed25519) and send the new .pub file"));
        }
    }
    Ok(())
}

impl super::Ledger {
    /// What this ledger's revocation records revoke (reads the whole ledger, shared lock, with
    /// the one parser; every revocation line checked on its own, see [`check`]).
    pub fn revoked(&self, ca_fingerprint: &str) -> Result<Revoked> {
        let files = self.read_files()?;
        let Some(bytes) = files.ledger else {
            return Ok(Revoked::merge(ca_fingerprint, []));
        };
        let lines = super::parse_ledger(&bytes)
            .map_err(|bad| super::record::damaged(&self.path(), bad.index + 1, &bad.why))?;
        let mut revs = Vec::new();
        for (i, (line, entry)) in lines.records.iter().enumerate() {
            if let Entry::Revoked(v) = entry {
                check(line, v, ca_fingerprint).map_err(|why| {
                    super::record::damaged(
                        &self.path(),
                        i + 1,
                        &format!("a revocation record: {why}"),
                    )
                })?;
                revs.push(v);
            }
        }
        Ok(Revoked::merge(ca_fingerprint, revs))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{revocation, revoke, with_records, CAROL};
    use super::*;

    const BOB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKxEVhjAC7XvMi3ATHVkan6Fvgrdj2gtNMUWxQh47jrQ bob";

    fn key(line: &str) -> RevokedKey {
        RevokedKey::of(PublicKey::from_openssh(line).unwrap().key_data()).unwrap()
    }

    #[test]
    fn a_revocation_line_is_ascii_and_reads_back_as_its_own_kind() {
        let (_dir, ledger) = with_records(2);
        let mut v = revocation(&ledger.lock("CA").unwrap(), "2026-12-01T10:33:16Z");
        v.reason = "caf\u{e9} \u{2014} INC-1".into();
        let line = v.line().unwrap();
        assert!(line.is_ascii(), "{line}");
        assert!(line.starts_with("{\"kind\":\"revocation\",\"format\":1,\"serials\":[[2,2]],"));
        assert!(line.contains("caf\\u00e9 \\u2014"), "{line}");
        assert_eq!(
            Entry::parse_line(line.as_bytes()).unwrap(),
            Entry::Revoked(v.clone())
        );
        check(&line, &v, "CA").unwrap();
        // The key lines carry no comment and no trailing space.
        assert_eq!(v.requester_keys[0].key, CAROL.rsplit_once(' ').unwrap().0);
        // Another kind, an unknown field, or a field missing: not a record.
        for bad in [
            line.replacen("\"revocation\"", "\"revocations\"", 1),
            line.replacen(
                "{\"kind\":\"revocation\",",
                "{\"kind\":\"revocation\",\"x\":1,",
                1,
            ),
            line.replacen("\"host\":\"laptop\",", "", 1),
        ] {
            assert!(Entry::parse_line(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_revocation_written_by_0_3_with_a_no_break_space_still_verifies() {
        // 0.3 took a no-break space or a soft hyphen in --reason; this version refuses them
        // in new input, and still reads the ledgers 0.3 wrote.
        let (_dir, ledger) = with_records(2);
        let mut v = revocation(&ledger.lock("CA").unwrap(), "2026-12-01T10:33:16Z");
        v.reason = "INC-1\u{a0}: fuite\u{ad}".into();
        check(&v.line().unwrap(), &v, "CA").unwrap();
        v.reason = "INC-1 \u{202e}x".into();
        assert!(check(&v.line().unwrap(), &v, "CA").is_err());
    }

    #[test]
    fn every_malformed_revocation_is_refused_on_its_own() {
        let (_dir, ledger) = with_records(3);
        let good = revocation(&ledger.lock("CA").unwrap(), "2026-12-01T10:33:16Z");
        let bad_key = RevokedKey {
            key: CAROL.into(), // with its comment
            fingerprint: key(CAROL).fingerprint,
        };
        type Edit = Box<dyn Fn(&mut Revocation)>;
        let edits: Vec<(&str, Edit, &str)> = vec![
            ("format", Box::new(|v| v.format = 2), "revocation format 2"),
            (
                "ca",
                Box::new(|v| v.ca_fingerprint = "OTHER".into()),
                "another CA",
            ),
            (
                "nothing",
                Box::new(|v| {
                    v.serials.clear();
                    v.requester_keys.clear();
                }),
                "revokes nothing",
            ),
            (
                "serial 0",
                Box::new(|v| v.serials = vec![(0, 1)]),
                "serial 0",
            ),
            (
                "empty range",
                Box::new(|v| v.serials = vec![(3, 2)]),
                "is empty",
            ),
            (
                "beyond",
                Box::new(|v| v.serials = vec![(3, 4)]),
                "newest serial issued before it is 3",
            ),
            (
                "unmerged",
                Box::new(|v| v.serials = vec![(1, 1), (2, 2)]),
                "not sorted and merged",
            ),
            (
                "unsorted",
                Box::new(|v| v.serials = vec![(3, 3), (1, 1)]),
                "not sorted and merged",
            ),
            (
                "empty key ID",
                Box::new(|v| v.key_ids = vec![String::new()]),
                "empty key ID",
            ),
            // Red team: a key ID no certificate can have (NUL) passed here and in log verify,
            // but no KRL can hold it: once a mint covered the line, 'krl -o' and
            // 'host-config' failed for good.
            (
                "key ID with NUL",
                Box::new(|v| v.key_ids = vec!["a\0b".into()]),
                "which no breakglass-ca certificate can have",
            ),
            (
                "key IDs twice",
                Box::new(|v| v.key_ids = vec!["a".into(), "a".into()]),
                "key IDs are not sorted",
            ),
            (
                "key with comment",
                Box::new(move |v| v.requester_keys = vec![bad_key.clone()]),
                "not written as revoke writes a key",
            ),
            (
                "wrong fingerprint",
                Box::new(|v| {
                    v.ca_keys = vec![RevokedKey {
                        key: key(BOB).key,
                        fingerprint: key(CAROL).fingerprint,
                    }]
                }),
                "another key's fingerprint",
            ),
            (
                "certificate",
                Box::new(|v| {
                    v.ca_keys = vec![RevokedKey {
                        key: "ssh-ed25519-cert-v01@openssh.com AAAA".into(),
                        fingerprint: "x".into(),
                    }]
                }),
                "a certificate",
            ),
            (
                "garbage key",
                Box::new(|v| {
                    v.ca_keys = vec![RevokedKey {
                        key: "ssh-ed25519 AAAA!".into(),
                        fingerprint: "x".into(),
                    }]
                }),
                "not an OpenSSH public key line",
            ),
            (
                "keys twice",
                Box::new(|v| v.requester_keys = vec![key(CAROL), key(CAROL)]),
                "requester keys are not sorted",
            ),
            (
                "reason",
                Box::new(|v| v.reason = " ".into()),
                "reason is empty",
            ),
            (
                "reason control",
                Box::new(|v| v.reason = "a\u{1b}[2J".into()),
                "control or invisible",
            ),
            (
                "time",
                Box::new(|v| v.revoked_at = "yesterday".into()),
                "not an RFC 3339 time",
            ),
            (
                "local time",
                Box::new(|v| v.revoked_at = "2026-12-01T11:33:16+01:00".into()),
                "UTC, seconds",
            ),
        ];
        for (what, f, expected) in &edits {
            let mut v = good.clone();
            f(&mut v);
            let line = serde_json::to_string(&v).unwrap();
            let err = check(&line, &v, "CA").unwrap_err();
            assert!(err.contains(expected), "{what}: {err}");
        }
        // Written otherwise than revoke writes it (the same JSON value).
        let line = good
            .line()
            .unwrap()
            .replacen("\"format\":1", "\"format\": 1", 1);
        let err = check(&line, &good, "CA").unwrap_err();
        assert!(
            err.contains("not written as revoke writes a revocation"),
            "{err}"
        );
        let line = good.line().unwrap().replace("leaked", "le\\u0061ked");
        let v = match Entry::parse_line(line.as_bytes()).unwrap() {
            Entry::Revoked(v) => v,
            _ => unreachable!(),
        };
        assert!(check(&line, &v, "CA")
            .unwrap_err()
            .contains("not written as revoke"));
    }

    #[test]
    fn revocations_merge_into_what_the_krl_holds() {
        let (_dir, ledger) = with_records(9);
        assert_eq!(
            ledger.revoked("CA").unwrap(),
            Revoked {
                ca_fingerprint: "CA".into(),
                ..Revoked::default()
            }
        );
        revoke(&ledger, "CA", "2026-12-01T10:00:00Z", |v| {
            v.serials = vec![(2, 3), (7, 7)];
            v.key_ids = vec!["k9".into()];
        });
        // (an issuance after a revocation must be bound: see verify.rs)
        revoke(&ledger, "CA", "2026-12-01T10:00:01Z", |v| {
            v.serials = vec![(4, 5), (9, 9)];
            v.requester_keys = vec![key(BOB), key(CAROL)];
            v.requester_keys.sort();
            v.ca_keys = vec![key(BOB)];
            v.key_ids = vec!["a".into(), "k9".into()];
        });
        let r = ledger.revoked("CA").unwrap();
        assert_eq!(r.serials, vec![(2, 5), (7, 7), (9, 9)]);
        assert_eq!(r.serial_count(), 6);
        assert_eq!(r.key_ids, vec!["a".to_string(), "k9".to_string()]);
        let mut keys = vec![key(CAROL).key, key(BOB).key];
        keys.sort();
        assert_eq!(r.requester_keys, keys);
        assert_eq!(r.ca_keys, vec![key(BOB).key]);
        assert_eq!((r.records, r.version), (2, 20261201100001));
        assert_eq!(r.newest.as_deref(), Some("2026-12-01T10:00:01Z"));
        // A revocation line that does not check is an error, never a silently smaller KRL.
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        std::fs::write(
            ledger.path(),
            text.replacen("\"serials\":[[2,3],[7,7]]", "\"serials\":[[0,3],[7,7]]", 1),
        )
        .unwrap();
        let err = ledger.revoked("CA").unwrap_err().to_string();
        assert!(
            err.contains("damaged at line 10: a revocation record: it revokes serial 0"),
            "{err}"
        );
    }

    #[test]
    fn ranges_merge_and_versions_are_the_utc_digits() {
        assert_eq!(
            merge_ranges(vec![(5, 9), (1, 2), (3, 3), (8, 12), (20, 20), (7, 6)]),
            vec![(1, 3), (5, 12), (20, 20)]
        );
        assert_eq!(
            merge_ranges(vec![(1, u64::MAX), (u64::MAX, u64::MAX)]),
            vec![(1, u64::MAX)]
        );
        assert_eq!(krl_version("2026-12-01T10:33:16Z"), 20261201103316);
        assert_eq!(krl_version("2026-12-01T11:33:16+01:00"), 20261201103316);
        assert_eq!(krl_version("nonsense"), 0);
    }

    #[test]
    fn mint_is_refused_for_a_revoked_ca_or_requester_key() {
        let (_dir, ledger) = with_records(1);
        let locked = ledger.lock("CA").unwrap();
        let mut v = revocation(&locked, "2026-12-01T10:33:16Z");
        drop(locked);
        let alice = key(CAROL).fingerprint;
        let bob = key(BOB).fingerprint;
        refuse_for_mint(&[], "CA", Some(&alice)).unwrap();
        let err = refuse_for_mint(std::slice::from_ref(&v), "CA", Some(&alice)).unwrap_err();
        assert!(err.to_string().contains(&format!("the requester's key {alice} was revoked on 2026-12-01T10:33:16Z by tester (reason: leaked)")), "{err}");
        refuse_for_mint(std::slice::from_ref(&v), "CA", Some(&bob)).unwrap();
        v.ca_keys = vec![RevokedKey {
            key: key(BOB).key,
            fingerprint: "CA".into(),
        }];
        let err = refuse_for_mint(&[v], "CA", Some(&bob))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("this CA (CA) was revoked on 2026-12-01T10:33:16Z"),
            "{err}"
        );
    }
}
