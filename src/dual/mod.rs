//! Dual control, with nothing but stock OpenSSH on the requester's and the approvers' side.
//!
//! A **request** ([`request`]) is a small canonical text naming the requester's key and
//! everything the certificate will carry. The requester signs it with `ssh-keygen -Y sign -n
//! breakglass-ca-request` and the key in it: the **proof of possession** (nobody can slip in
//! another key). Approvers sign the same bytes with their own keys, `-n
//! breakglass-ca-approval` ([`sshsig`] reads and verifies these signatures), and `config.toml`
//! names who they are (`approvers_file`, OpenSSH's `allowed_signers` format: [`signers`]) and
//! how many are needed (`required_approvals`). [`approval`] holds the checks `mint` makes
//! before the PIN. What was checked goes into the ledger record as [`DualControl`] (record
//! format 3), inside the metadata the certificate's ledger binding hashes, and
//! [`check_record`] checks it again for `log verify`, without the approvers file: the stored
//! signatures are verified against the stored keys, and the request against the record and
//! its certificate.

pub mod approval;
pub mod request;
pub mod signers;
pub mod sshsig;

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use ssh_key::public::KeyData;
use ssh_key::Certificate;

use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::ledger::Record;

pub use request::Request;
pub use sshsig::Armored;

/// The SSHSIG namespace of the requester's signature (the proof of possession).
pub const REQUEST_NAMESPACE: &str = "breakglass-ca-request";
/// The SSHSIG namespace of an approval.
pub const APPROVAL_NAMESPACE: &str = "breakglass-ca-approval";

/// What a record of a mint with a signed request holds (its `dual_control` field), in the
/// order written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DualControl {
    /// The request, exactly as signed.
    pub request: String,
    /// The requester's armored signature over it (namespace `breakglass-ca-request`).
    pub request_signature: String,
    /// `required_approvals` when it was minted.
    pub approvals_required: u32,
    /// `max_request_age` when it was minted.
    pub max_request_age: Duration,
    /// Every valid approval, in the order given.
    pub approvals: Vec<ApprovalRecord>,
}

/// One approval, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRecord {
    /// The approver's name (the first principal of their line in the approvers file).
    pub approver: String,
    /// Their public key, `TYPE BASE64` (no comment).
    pub key: String,
    /// Their armored signature over the request (namespace `breakglass-ca-approval`).
    pub signature: String,
}

impl DualControl {
    /// The request's nonce, read from its text without parsing it all (the ledger scan).
    pub fn nonce(&self) -> Option<&str> {
        nonce_of(&self.request)
    }

    /// The request's age at `now`, when its certificate is signed (see
    /// [`approval::check_age`]): `mint` checks it before the PIN, which may be typed after
    /// the request expired, and `log verify` checks it against the record's `issued_at`.
    pub fn check_age(&self, now: DateTime<Utc>) -> Result<()> {
        let request = Request::parse(self.request.as_bytes())?;
        approval::check_age(&request, now, self.max_request_age)
    }

    /// The approvers' names, in order.
    pub fn approvers(&self) -> Vec<&str> {
        self.approvals.iter().map(|a| a.approver.as_str()).collect()
    }
}

/// The `nonce:` value of a request text.
pub fn nonce_of(request: &str) -> Option<&str> {
    request.lines().find_map(|l| l.strip_prefix("nonce: "))
}

/// A key as `TYPE BASE64`.
pub fn key_line(key: &KeyData) -> Result<String> {
    ssh_key::PublicKey::new(key.clone(), "")
        .to_openssh()
        .map(|l| l.trim_end().to_string())
        .map_err(|e| Error::ssh("cannot encode a public key", e))
}

/// The dual-control settings of `config.toml` (all optional: a configuration without them
/// has none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// A signed request is needed for every mint.
    pub require_possession: bool,
    /// The approvers file, as configured (relative to the state directory, or absolute).
    pub approvers_file: Option<PathBuf>,
    pub required_approvals: u32,
    /// How old a request may be (default [`approval::DEFAULT_MAX_AGE`]).
    pub max_request_age: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            require_possession: false,
            approvers_file: None,
            required_approvals: 0,
            max_request_age: approval::DEFAULT_MAX_AGE,
        }
    }
}

impl Policy {
    /// Whether `mint` needs a signed request.
    pub fn needs_request(&self) -> bool {
        self.require_possession || self.required_approvals > 0
    }

    /// The approvers file's path (relative ones from the state directory `dir`).
    pub fn approvers_path(&self, dir: &Path) -> Option<PathBuf> {
        self.approvers_file.as_ref().map(|p| match p.is_absolute() {
            true => p.clone(),
            false => dir.join(p),
        })
    }

    /// Contradictions in the settings.
    pub fn check(&self) -> Result<()> {
        if self.required_approvals > 0 && self.approvers_file.is_none() {
            return Err(Error::config(format!(
                "required_approvals = {} in config.toml, but no approvers_file names the approvers",
                self.required_approvals
            ))
            .with_hint("add approvers_file = \"approvers\" (an OpenSSH allowed_signers file in the state directory), or set required_approvals = 0"));
        }
        if self.required_approvals as usize > approval::MAX_APPROVALS {
            return Err(Error::config(format!(
                "required_approvals = {} in config.toml is more than {}",
                self.required_approvals,
                approval::MAX_APPROVALS
            ))
            .with_hint("two or three approvers are the usual number"));
        }
        if self
            .approvers_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(
                Error::config("approvers_file in config.toml is empty").with_hint(
                    "name the file, e.g. approvers_file = \"approvers\", or leave the line out",
                ),
            );
        }
        Ok(())
    }

    /// What `status` and every `mint` say about dual control: the line, and whether it is a
    /// warning (no approval is required, and approvers are configured or no signed request
    /// is required either; or more approvals are required than approvers are listed). `approvers` is how many the approvers file names, when it could
    /// be read.
    pub fn describe(&self, approvers: Option<usize>) -> (String, bool) {
        let listed = match approvers {
            Some(n) => format!("{n} approver(s) listed"),
            None => "approvers file not read".into(),
        };
        match (self.required_approvals, &self.approvers_file, self.require_possession) {
            (0, Some(_), _) => (
                format!(
                    "NONE: required_approvals = 0 although approvers_file is set ({listed}): one custodian can mint alone{}",
                    match self.require_possession {
                        true => "; a signed request is still required",
                        false => "",
                    }
                ),
                true,
            ),
            (0, None, false) => (
                "NONE: one custodian with the token and PIN can mint alone (no approvals, no signed request required; docs/runbook.md, section 2.9)".into(),
                true,
            ),
            (0, None, true) => (
                "none: a signed request (proof of possession) is required, but no approvals".into(),
                false,
            ),
            (n, Some(_), _) if approvers.is_none() => (
                format!(
                    "{n} approval(s) required, but the approvers file cannot be read: no request can be minted ('breakglass-ca mint' says why)"
                ),
                true,
            ),
            (n, _, _) if approvers.is_some_and(|a| a < n as usize) => (
                format!(
                    "{n} approval(s) required, but only {} approver(s) listed: no request can be minted (add approvers to the approvers file)",
                    approvers.unwrap_or_default()
                ),
                true,
            ),
            (n, _, _) if self.max_request_age > approval::LONG_AGE => (
                format!(
                    "{n} approval(s) required ({listed}), and a signed request; but requests expire only after {} (max_request_age): an approval stays good that long",
                    self.max_request_age
                ),
                true,
            ),
            (n, _, _) => (
                format!(
                    "{n} approval(s) required ({listed}), and a signed request; requests expire after {}",
                    self.max_request_age
                ),
                false,
            ),
        }
    }
}

/// Why a stored `dual_control` does not hold, for `log verify` (see the module): `r` is the
/// record and `cert` its certificate (already checked against the CA and the record).
pub fn check_record(
    d: &DualControl,
    r: &Record,
    cert: &Certificate,
) -> std::result::Result<(), String> {
    let plain = |e: Error| match e {
        Error::Message { message, .. } => message,
        e => e.to_string(),
    };
    let req = Request::parse(d.request.as_bytes())
        .map_err(|e| format!("its request cannot be read ({})", plain(e)))?;
    let differs = |what: &str| Err(format!("its {what} differs from its signed request's"));
    if req.fingerprint() != r.requester_fingerprint || cert.public_key() != req.key.key_data() {
        return differs("requester key");
    }
    if req.requester != r.requester_comment {
        return differs("requester");
    }
    if req.principals != r.principals {
        return differs("principals");
    }
    if req.reason != r.reason {
        return differs("reason");
    }
    let time = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .ok()
    };
    let (Some(issued), Some(before)) = (time(&r.issued_at), time(&r.valid_before)) else {
        return Err("its issued_at or valid_before cannot be read".into());
    };
    let validity = i64::try_from(req.validity.as_secs()).unwrap_or(i64::MAX);
    if before.signed_duration_since(issued).num_seconds() != validity {
        return differs("validity");
    }
    let mut extensions = cert.extensions().clone();
    extensions.remove(crate::ledger::binding::EXTENSION);
    if !cert
        .critical_options()
        .iter()
        .eq(req.options.critical.iter())
        || !extensions.iter().eq(req.options.extensions.iter())
    {
        return differs("options");
    }
    let skew = TimeDelta::try_seconds(approval::CLOCK_SKEW.as_secs() as i64).unwrap_or_default();
    let age =
        TimeDelta::try_seconds(i64::try_from(d.max_request_age.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(TimeDelta::MAX);
    if req.created > issued + skew {
        return Err("its request was created after it was issued".into());
    }
    if issued.signed_duration_since(req.created) > age {
        return Err("its request was older than its max_request_age when it was issued".into());
    }
    let text = d.request.as_bytes();
    let sig = Armored::parse(&d.request_signature)
        .map_err(|e| format!("its request signature cannot be read ({})", plain(e)))?;
    if sig.text != d.request_signature {
        return Err("its request signature is not written as mint writes it".into());
    }
    approval::check_possession(&req, text, &sig).map_err(plain)?;
    let mut seen: Vec<(&str, KeyData)> = Vec::new();
    for (i, a) in d.approvals.iter().enumerate() {
        let n = i + 1;
        let key = crate::key::parse_line(&a.key)
            .map_err(|_| format!("the key of its approval {n} cannot be read"))?;
        if key_line(key.key_data()).ok().as_deref() != Some(a.key.as_str()) {
            return Err(format!(
                "the key of its approval {n} is not written as mint writes it"
            ));
        }
        let sig = Armored::parse(&a.signature)
            .map_err(|e| format!("its approval {n} cannot be read ({})", plain(e)))?;
        if sig.text != a.signature {
            return Err(format!("its approval {n} is not written as mint writes it"));
        }
        sig.verify(key.key_data(), APPROVAL_NAMESPACE, text)
            .map_err(|p| {
                format!(
                    "its approval {n} (by {}) {}",
                    crate::text::escape(&a.approver),
                    p.describe(APPROVAL_NAMESPACE)
                )
            })?;
        if key.key_data() == req.key.key_data()
            || a.approver.eq_ignore_ascii_case(&req.requester)
            || a.approver.is_empty()
        {
            return Err(format!("its approval {n} is by the requester"));
        }
        if seen
            .iter()
            .any(|(name, k)| *name == a.approver || k == key.key_data())
        {
            return Err(format!(
                "its approval {n} is a second one by the same approver"
            ));
        }
        seen.push((&a.approver, key.key_data().clone()));
    }
    if d.approvals.len() < d.approvals_required as usize {
        return Err(format!(
            "it holds {} approval(s) but {} were required",
            d.approvals.len(),
            d.approvals_required
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::approval::tests::{approvers, now, request_by};
    use super::approval::{check_approvals, Given};
    use super::sshsig::tests::{ed25519, sign};
    use super::*;
    use crate::backend::soft::SoftKey;
    use crate::backend::CaKey;
    use crate::issue::{issue, FixedClock, MintRequest};
    use crate::ledger::Ledger;

    /// A fresh state directory (kept while the first value lives), a CA and its ledger.
    fn setup() -> (tempfile::TempDir, SoftKey, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        (dir, SoftKey::new(5), ledger)
    }

    /// `req` issued under the default policy, the ledger locked for that one mint.
    fn mint(
        ca: &SoftKey,
        ledger: &Ledger,
        req: &MintRequest,
        clock: &FixedClock,
    ) -> Result<crate::issue::Issued> {
        let mut locked = ledger.lock(&crate::key::fingerprint(ca.public_key()))?;
        issue(
            ca,
            &mut locked,
            &crate::policy::Policy::default(),
            req,
            clock,
        )
    }

    /// A mint of alice's request approved by bob and carol (2 required).
    fn mint_request() -> MintRequest {
        let alice = ed25519(1);
        let (request, text) = request_by(&alice, "alice");
        let (keys, signers) = approvers();
        let given: Vec<Given> = keys[..2]
            .iter()
            .map(|k| Given {
                source: "a".into(),
                sig: Armored::parse(&sign(k, APPROVAL_NAMESPACE, text.as_bytes())).unwrap(),
            })
            .collect();
        let approvals =
            check_approvals(&request, text.as_bytes(), &signers, &given, 2, now()).unwrap();
        let request_sig =
            Armored::parse(&sign(&alice, REQUEST_NAMESPACE, text.as_bytes())).unwrap();
        request.mint_request(
            None,
            DualControl {
                request: text,
                request_signature: request_sig.text,
                approvals_required: 2,
                max_request_age: approval::DEFAULT_MAX_AGE,
                approvals,
            },
        )
    }

    #[test]
    fn a_dual_record_is_format_3_verifies_and_is_never_issued_twice() {
        let (_dir, ca, ledger) = setup();
        let req = mint_request();
        let clock = FixedClock(now() + TimeDelta::minutes(10));
        let issued = mint(&ca, &ledger, &req, &clock).unwrap();
        assert_eq!(issued.record.format, Some(3));
        assert_eq!(
            issued.record.dual_control.as_ref().unwrap().approvers(),
            ["bob", "carol"]
        );
        let meta = issued.record.metadata.as_deref().unwrap();
        assert!(
            meta.contains("\"dual_control\":{\"request\":\"breakglass-ca request v1\\n"),
            "{meta}"
        );
        let report = ledger.verify(ca.public_key()).unwrap().unwrap().report;
        assert_eq!((report.requests, report.approvals), (1, 2));
        // The same request again: refused under the lock, nothing written.
        let before = std::fs::read(ledger.path()).unwrap();
        let mut locked = ledger
            .lock(&crate::key::fingerprint(ca.public_key()))
            .unwrap();
        assert_eq!(
            locked.request_used(req.dual.as_ref().unwrap().nonce().unwrap()),
            Some(1)
        );
        let err = issue(
            &ca,
            &mut locked,
            &crate::policy::Policy::default(),
            &req,
            &clock,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("this request was already used: serial 1 was issued for it"),
            "{err}"
        );
        drop(locked);
        assert_eq!(std::fs::read(ledger.path()).unwrap(), before);
        // A second record with the same request, forged into the ledger, fails log verify.
        let line = String::from_utf8(before.clone()).unwrap();
        let mut r: Record = serde_json::from_str(line.trim_end()).unwrap();
        r.serial = 2;
        r.prev_hash = crate::ledger::hex_sha256(line.trim_end().as_bytes());
        let forged = format!("{}{}\n", line, serde_json::to_string(&r).unwrap());
        let err =
            crate::ledger::verify::verify(forged.as_bytes(), b"", ca.public_key()).unwrap_err();
        assert!(
            err.to_string().contains(
                "record serial 2 (line 2): its signed request was already used by serial 1"
            ),
            "{err}"
        );
    }

    #[test]
    fn approvals_that_cannot_be_given_or_a_long_max_age_are_said_loudly() {
        let p = Policy {
            approvers_file: Some("approvers".into()),
            required_approvals: 3,
            ..Policy::default()
        };
        let (line, loud) = p.describe(Some(2));
        assert!(loud, "{line}");
        assert!(
            line.contains(
                "3 approval(s) required, but only 2 approver(s) listed: no request can be minted"
            ),
            "{line}"
        );
        let (line, loud) = p.describe(Some(3));
        assert!(
            !loud && line.starts_with("3 approval(s) required (3 approver(s) listed)"),
            "{line}"
        );
        let (line, loud) = p.describe(None);
        assert!(
            loud && line.contains("the approvers file cannot be read"),
            "{line}"
        );
        // Approvals that stay good for more than a day are said loudly too.
        let long = Policy {
            max_request_age: Duration::from_secs(25 * 3600),
            ..p
        };
        let (line, loud) = long.describe(Some(3));
        assert!(loud, "{line}");
        assert!(line.contains("requests expire only after 25h (max_request_age): an approval stays good that long"), "{line}");
    }

    #[test]
    fn a_request_that_expires_at_the_pin_prompt_is_not_issued() {
        // mint checks the age before the PIN; the custodian types it 61 minutes later.
        let (_dir, ca, ledger) = setup();
        let req = mint_request();
        for (minutes, needle) in [
            (61, "the request is older than max_request_age (1h)"),
            (-6, "after this laptop's clock"),
        ] {
            let clock = FixedClock(now() + TimeDelta::minutes(minutes));
            let err = mint(&ca, &ledger, &req, &clock).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
            assert!(!ledger.path().exists());
        }
        // Within the hour it is issued, and verifies.
        let clock = FixedClock(now() + TimeDelta::minutes(59));
        mint(&ca, &ledger, &req, &clock).unwrap();
        ledger.verify(ca.public_key()).unwrap().unwrap();
    }

    #[test]
    fn a_format_3_record_stripped_downgraded_or_re_approved_fails_log_verify() {
        let (_dir, ca, ledger) = setup();
        let clock = FixedClock(now() + TimeDelta::minutes(10));
        mint(&ca, &ledger, &mint_request(), &clock).unwrap();
        let line = std::fs::read_to_string(ledger.path()).unwrap();
        let record: Record = serde_json::from_str(line.trim_end()).unwrap();
        // The metadata text edited as the record is (what a careful forger does).
        let edit_meta = |r: &mut Record, f: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value =
                serde_json::from_str(r.metadata.as_deref().unwrap()).unwrap();
            f(&mut v);
            r.metadata = Some(crate::text::json_ascii(&v, false).unwrap());
        };
        let dave = ed25519(4);
        let (_, text) = request_by(&ed25519(1), "alice");
        type Edit = Box<dyn Fn(&mut Record)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|r| r.dual_control = None),
                "it is in record format 3 but holds no signed request",
            ),
            (
                Box::new(move |r| {
                    r.dual_control = None;
                    edit_meta(r, &|v| {
                        v.as_object_mut().unwrap().remove("dual_control");
                    });
                }),
                "it is in record format 3 but holds no signed request",
            ),
            (
                Box::new(move |r| {
                    r.format = Some(2);
                    r.dual_control = None;
                    edit_meta(r, &|v| {
                        v.as_object_mut().unwrap().remove("dual_control");
                        v["format"] = 2.into();
                    });
                }),
                "its metadata is not what the token signed",
            ),
            (
                Box::new(|r| r.format = Some(2)),
                "it holds a signed request but is in record format 2, not 3",
            ),
            (
                // bob's approval replaced by dave's, over the same request, record and
                // metadata edited alike.
                Box::new(move |r| {
                    let d = r.dual_control.as_mut().unwrap();
                    d.approvals[0] = ApprovalRecord {
                        approver: "dave".into(),
                        key: super::key_line(dave.public_key().key_data()).unwrap(),
                        signature: sign(&dave, APPROVAL_NAMESPACE, d.request.as_bytes()),
                    };
                    let dual = serde_json::to_value(&**d).unwrap();
                    edit_meta(r, &|v| v["dual_control"] = dual.clone());
                }),
                "its metadata is not what the token signed",
            ),
            (
                // Another request, signed and approved, put in its place.
                Box::new(move |r| {
                    let d = r.dual_control.as_mut().unwrap();
                    d.request = text.clone();
                    let dual = serde_json::to_value(&**d).unwrap();
                    edit_meta(r, &|v| v["dual_control"] = dual.clone());
                }),
                "its metadata is not what the token signed",
            ),
        ];
        for (edit, needle) in cases {
            let mut r = record.clone();
            edit(&mut r);
            let forged = format!("{}\n", serde_json::to_string(&r).unwrap());
            let err = crate::ledger::verify::verify(forged.as_bytes(), b"", ca.public_key())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn a_used_request_stays_used_when_its_record_is_damaged_or_rewritten() {
        // serial 1 from a signed request, then plain mints, more than the end of the ledger
        // mint reads (its first 64 KiB): serial 1 is found by the scan only.
        let (_dir, ca, ledger) = setup();
        let fp = crate::key::fingerprint(ca.public_key());
        let clock = FixedClock(now() + TimeDelta::minutes(10));
        let req = mint_request();
        let plain = MintRequest {
            dual: None,
            ..mint_request()
        };
        for r in std::iter::once(&req).chain(std::iter::repeat_n(&plain, 40)) {
            mint(&ca, &ledger, r, &clock).unwrap();
        }
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        assert!(text.len() - text.find('\n').unwrap() > 64 * 1024);
        let nonce = req.dual.as_ref().unwrap().nonce().unwrap();
        assert_eq!(ledger.lock(&fp).unwrap().request_used(nonce), Some(1));
        // The first line rewritten with a space after the colon, as a JSON tool writes it:
        // the same record (the chain is broken, which log verify reports), its nonce still
        // used.
        let spaced = text.replacen("\"dual_control\":{", "\"dual_control\": {", 1);
        assert_ne!(spaced, text);
        std::fs::write(ledger.path(), &spaced).unwrap();
        assert_eq!(ledger.lock(&fp).unwrap().request_used(nonce), Some(1));
        // The first line damaged: the mint is refused, not the nonce forgotten.
        let damaged = text.replacen("\"host\":", "\"host\"", 1);
        assert_ne!(damaged, text);
        std::fs::write(ledger.path(), &damaged).unwrap();
        let err = ledger.lock(&fp).err().unwrap().to_string();
        assert!(err.contains("is damaged at line 1"), "{err}");
    }

    #[test]
    fn a_tampered_request_or_approval_is_caught_by_the_record_check() {
        let (_dir, ca, ledger) = setup();
        let clock = FixedClock(now() + TimeDelta::minutes(10));
        let issued = mint(&ca, &ledger, &mint_request(), &clock).unwrap();
        let r = issued.record;
        let cert = issued.certificate;
        check_record(r.dual_control.as_ref().unwrap(), &r, &cert).unwrap();
        let carol = ed25519(3);
        let dave = ed25519(4);
        type Edit = Box<dyn Fn(&mut DualControl)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|d| d.approvals.pop().map(|_| ()).unwrap()),
                "holds 1 approval(s) but 2 were required",
            ),
            (
                Box::new(|d| d.approvals[1].approver = "bob".into()),
                "a second one by the same approver",
            ),
            (
                Box::new(|d| d.approvals[1].approver = "alice".into()),
                "is by the requester",
            ),
            (
                Box::new(move |d| {
                    d.approvals[1].key = super::key_line(dave.public_key().key_data()).unwrap()
                }),
                "approval 2 (by carol) is made by another key",
            ),
            (
                Box::new(move |d| {
                    let text = d.request.replace("INC-1", "INC-2");
                    d.approvals[1].signature = sign(&carol, APPROVAL_NAMESPACE, text.as_bytes());
                }),
                "approval 2 (by carol) does not verify over this request",
            ),
            (
                Box::new(|d| {
                    d.approvals[0].signature = d.approvals[0].signature.replace('\n', "\r\n")
                }),
                "approval 1 is not written as mint writes it",
            ),
            (
                Box::new(|d| d.request_signature = d.approvals[0].signature.clone()),
                "the request signature is made by another key",
            ),
            (
                Box::new(|d| d.request = d.request.replace("INC-1 test", "INC-1 tesT")),
                "its reason differs from its signed request's",
            ),
            (
                Box::new(|d| d.request = d.request.replace("validity: 15m", "validity: 14m")),
                "its validity differs",
            ),
            (
                Box::new(|d| {
                    d.request = d
                        .request
                        .replace("principals: breakglass", "principals: root")
                }),
                "its principals differ",
            ),
            (
                Box::new(|d| d.request.push('x')),
                "its request cannot be read",
            ),
            (
                Box::new(|d| d.max_request_age = Duration::from_secs(60)),
                "older than its max_request_age",
            ),
        ];
        for (edit, needle) in cases {
            let mut d = *r.dual_control.clone().unwrap();
            edit(&mut d);
            let err = check_record(&d, &r, &cert).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        // Through log verify, an edited stored approval is caught by the binding first.
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        let mut edited: Record = serde_json::from_str(text.trim_end()).unwrap();
        edited.dual_control.as_mut().unwrap().approvals[1].approver = "mallory".into();
        let line = serde_json::to_string(&edited).unwrap();
        let err =
            crate::ledger::verify::verify(format!("{line}\n").as_bytes(), b"", ca.public_key())
                .unwrap_err();
        assert!(
            err.to_string()
                .contains("its dual_control differs from its signed metadata"),
            "{err}"
        );
    }
}
