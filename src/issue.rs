//! Issuing one certificate: policy checks that need the CA, the clock rule, serial allocation,
//! the record's metadata bound into the certificate, signing (one token signature),
//! self-verification and the durable ledger record, in the order that keeps the ledger's
//! promise (record fsynced before the certificate exists anywhere else).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use ssh_key::{Certificate, PublicKey};

use crate::backend::CaKey;
use crate::cert::{self, CertOptions, CertSpec};
use crate::error::{Error, Result};
use crate::key;
use crate::ledger::binding::{self, Metadata};
use crate::ledger::{Locked, Record, Repaired, Tail};
use crate::policy::{self, Policy, ValidityRequest, Window};
use crate::text;

/// Where "now" comes from: the system clock, or a fixed one in tests.
pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stopped at one instant, for tests.
#[cfg(test)]
pub struct FixedClock(pub DateTime<Utc>);

#[cfg(test)]
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// A validated mint request (principals split and checked, options parsed).
#[derive(Clone, Debug)]
pub struct MintRequest {
    pub subject: PublicKey,
    pub requester: String,
    pub principals: Vec<String>,
    pub reason: String,
    pub key_id: Option<String>,
    pub validity: ValidityRequest,
    pub options: CertOptions,
    /// A signed request, already checked (`mint --request`): recorded in the ledger (record
    /// format 3), and never issued twice (its nonce).
    pub dual: Option<crate::dual::DualControl>,
}

/// A certificate that has been recorded and may now be handed out.
#[derive(Debug)]
pub struct Issued {
    pub certificate: Certificate,
    /// The certificate as one OpenSSH line (what goes into `-cert.pub`).
    pub line: String,
    pub record: Record,
    /// What the ledger repaired before it appended this record (an earlier mint's crash).
    pub repaired: Option<Repaired>,
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The requester's name: `--requester`, else the key's comment. One of them is required,
/// because a ledger record that names nobody is no evidence.
/// The name is shown to the custodian, goes into the ledger and the default key ID: a name with
/// control or invisible characters (escape sequences, carriage returns, bidi overrides) could
/// redraw the screen the custodian checks, so it is refused, never cleaned up.
pub fn requester_name(explicit: Option<&str>, key: &PublicKey) -> Result<String> {
    let name = explicit.unwrap_or(key.comment()).trim();
    if name.is_empty() {
        return Err(
            Error::refused("the public key has no comment naming its owner").with_hint(
                "say who it is for with --requester NAME (e.g. --requester alice@example.com)",
            ),
        );
    }
    // A name can also disguise the screen with plain characters: a long run of spaces pushes
    // the real fingerprint out of sight, a "(SHA256:…)" of its own shows another key's.
    let disguise = if !text::is_safe(name) {
        Some("contains control or invisible characters")
    } else if name.len() > MAX_REQUESTER_BYTES {
        Some("is longer than 128 bytes")
    } else if name.contains("  ") || name.contains('\t') {
        Some("contains a run of spaces")
    } else if name.to_ascii_uppercase().contains("SHA256:")
        || name.to_ascii_uppercase().contains("MD5:")
    {
        Some("looks like it holds a key fingerprint")
    } else {
        None
    };
    if let Some(why) = disguise {
        let (what, hint) = match explicit {
            Some(_) => (
                "--requester",
                "give a plain name such as --requester alice@example.com",
            ),
            None => (
                "the public key's comment",
                "the comment may be crafted to disguise the screen: name the requester yourself with --requester NAME (e.g. --requester alice@example.com)",
            ),
        };
        let shown: String = text::escape(name).chars().take(100).collect();
        return Err(Error::refused(format!("{what} \"{shown}\" {why}")).with_hint(hint));
    }
    Ok(name.to_string())
}

/// The longest requester name (a key comment or `--requester`) shown and recorded.
const MAX_REQUESTER_BYTES: usize = 128;

/// Refuse to issue when the clock is earlier than the newest ledger record: on an air-gapped
/// laptop that means the clock is wrong, and so would the certificate's window be.
pub fn check_clock(
    now: DateTime<Utc>,
    last_issued_at: Option<&str>,
    req: &ValidityRequest,
) -> Result<()> {
    let Some(last) = last_issued_at else {
        return Ok(());
    };
    let Ok(last) = DateTime::parse_from_rfc3339(last) else {
        return Ok(());
    };
    if req.not_before.is_none() && now < last {
        return Err(Error::refused(format!(
            "this laptop's clock ({}) is earlier than the newest ledger record ({}): time went backwards",
            rfc3339(now),
            rfc3339(last.with_timezone(&Utc))
        ))
        .with_hint("set the clock to the real time (compare with a phone), or give the real start time with --not-before 2026-01-31T03:00:00Z"));
    }
    Ok(())
}

/// The `--not-before` rules, against the later of `now` and the newest ledger record (on an
/// air-gapped laptop whose clock may be behind, the ledger says what time it at least is):
/// a window that has already ended, or that starts more than the policy's `max_start_ahead`
/// after that reference, is refused unless `req.force` (`--force-window`). When forced, the
/// returned note says what was allowed, for the pre-PIN screen and the summary.
pub fn check_window(
    policy: &Policy,
    window: &Window,
    now: DateTime<Utc>,
    last_issued_at: Option<&str>,
    req: &ValidityRequest,
) -> Result<Option<String>> {
    let last = last_issued_at
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let (reference, what) = match last {
        Some(last) if last > now => (last, "the newest ledger record"),
        _ => (now, "this laptop's clock"),
    };
    // An allowance too large for a date is no limit at all.
    let ahead = i64::try_from(policy.max_start_ahead.as_secs())
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|d| reference.checked_add_signed(d));
    let problem = if window.valid_before <= reference {
        Some((
            format!(
                "the validity window ends at {}, which is already past ({what} says {})",
                rfc3339(window.valid_before),
                rfc3339(reference)
            ),
            "check --not-before and -V: the certificate would be expired when issued",
        ))
    } else if ahead.is_some_and(|a| window.valid_after > a) {
        Some((
            format!(
                "the validity window starts at {}, more than the policy's max_start_ahead ({}) after {} ({what})",
                rfc3339(window.valid_after),
                policy.max_start_ahead,
                rfc3339(reference)
            ),
            "check the date in --not-before: an emergency certificate is for now, not for later",
        ))
    } else {
        None
    };
    match problem {
        None => Ok(None),
        Some((message, _)) if req.force => Ok(Some(format!(
            "--force-window allowed this: {message}"
        ))),
        Some((message, hint)) => Err(Error::refused(message).with_hint(format!(
            "{hint}; if this laptop's clock is known to be wrong and the window is right, run again with --force-window"
        ))),
    }
}

/// Issue one certificate. `ca` must be logged in, and `locked` the ledger of this CA, locked
/// (see [`crate::ledger::Ledger::lock`]). A batch of one: see [`issue_batch`].
pub fn issue(
    ca: &dyn CaKey,
    locked: &mut Locked<'_>,
    policy: &Policy,
    req: &MintRequest,
    clock: &dyn Clock,
) -> Result<Issued> {
    let batch = issue_batch(
        ca,
        locked,
        policy,
        std::slice::from_ref(req),
        clock,
        &|_| Ok(()),
    )?;
    let Some(Signed {
        certificate,
        line,
        record,
    }) = batch.certificates.into_iter().next()
    else {
        return Err(Error::ledger(
            "internal error: a batch of one issued nothing",
        ));
    };
    Ok(Issued {
        certificate,
        line,
        record,
        repaired: batch.repaired,
    })
}

/// One certificate of a batch, signed, self-checked and recorded.
#[derive(Debug)]
pub struct Signed {
    pub certificate: Certificate,
    /// The certificate as one OpenSSH line (what goes into `-cert.pub`).
    pub line: String,
    pub record: Record,
}

/// What [`issue_batch`] issued: the certificates in the order of the requests (consecutive
/// serials), all recorded by one group commit.
#[derive(Debug)]
pub struct Batch {
    pub certificates: Vec<Signed>,
    /// What the ledger repaired before it appended the batch (an earlier mint's crash).
    pub repaired: Option<Repaired>,
}

/// How many signatures the token makes for a batch of `keys` certificates: one each. The
/// ledger binding in each certificate makes a checkpoint signature unnecessary.
pub fn signatures(keys: usize) -> usize {
    keys
}

/// Issue one certificate per request, in order, at consecutive serials, with one login (`ca`
/// must be logged in) and one group commit. Under the lock (`locked`): the ledger is
/// re-checked unchanged, then for each request, against the tail the one before it leaves
/// (every check made again for each): the record's metadata is built and its hash put into the
/// certificate (the ledger binding, see [`crate::ledger::binding`]), the token signs the
/// certificate (its one signature), the certificate is self-checked and its record chained in
/// memory. `between(i)` runs before the signature of request `i` (from the second on), where
/// the caller may stop: nothing is written until every certificate is signed. Then all the
/// records are appended and fsynced at once (see [`Locked::append_all`]). No checkpoint is
/// signed: each certificate's signature covers its record and its link. The caller writes the
/// certificates out afterwards and then drops the lock.
pub fn issue_batch(
    ca: &dyn CaKey,
    locked: &mut Locked<'_>,
    policy: &Policy,
    reqs: &[MintRequest],
    clock: &dyn Clock,
    between: &dyn Fn(usize) -> Result<()>,
) -> Result<Batch> {
    let ca_fp = crate::key::fingerprint(ca.public_key());
    if locked.ca_fingerprint() != ca_fp {
        return Err(Error::ledger(
            "internal error: the ledger locked is not this CA's",
        ));
    }
    for req in reqs {
        let fp = crate::key::fingerprint(req.subject.key_data());
        crate::ledger::revocation::refuse_for_mint(locked.revocations(), &ca_fp, Some(&fp))?;
        refuse_replay(locked, req)?;
    }
    let mut tail = locked.tail().clone();
    let now = clock.now();
    // A signed request's age again, by the clock that dates the certificate: mint checked it
    // before the PIN, which may have been typed much later.
    for d in reqs.iter().filter_map(|r| r.dual.as_ref()) {
        d.check_age(now)?;
    }
    let mut certificates = Vec::with_capacity(reqs.len());
    for (i, req) in reqs.iter().enumerate() {
        if i > 0 {
            between(i)?;
        }
        let mut spec = cert_spec(policy, req, &tail, now)?;
        let metadata = metadata(req, &spec, ca_fp.clone(), now, tail.prev_hash.clone())?;
        let text = binding::encode(&metadata)?;
        spec.binding = Some(binding::hash(&text));
        if i == 0 {
            // Nothing is signed for a serial another writer took meanwhile (see
            // `check_unchanged`; the group commit checks again).
            locked.check_unchanged()?;
        }
        let certificate = cert::sign(ca, &spec)?;
        let line = certificate
            .to_openssh()
            .map_err(|e| Error::ssh("cannot encode the certificate", e))?;
        let record = metadata.record(text, cert::certificate_sha256(&certificate)?, line.clone());
        tail = tail.after(&record)?.1;
        certificates.push(Signed {
            certificate,
            line,
            record,
        });
    }
    let records: Vec<Record> = certificates.iter().map(|c| c.record.clone()).collect();
    let appended = locked.append_all(&records)?;
    Ok(Batch {
        certificates,
        repaired: appended.repaired,
    })
}

/// A request is good for one certificate: one whose nonce the ledger already holds is
/// refused (a replay).
pub fn refuse_replay(locked: &Locked<'_>, req: &MintRequest) -> Result<()> {
    let Some(nonce) = req.dual.as_ref().and_then(|d| d.nonce()) else {
        return Ok(());
    };
    match locked.request_used(nonce) {
        None => Ok(()),
        Some(serial) => Err(Error::refused(format!(
            "this request was already used: serial {serial} was issued for it (nonce {})",
            text::escape(nonce)
        ))
        .with_hint("a request is good for one certificate: make a new request ('breakglass-ca request …') and have it signed and approved again")),
    }
}

/// What to sign for `req` at the serial `tail` allocates, with every check that needs the
/// tail or the clock made again (the clock rule, the window, the key ID, the requester's key
/// and name): `mint` checked them before the PIN, but a caller may not have.
fn cert_spec(
    policy: &Policy,
    req: &MintRequest,
    tail: &Tail,
    now: DateTime<Utc>,
) -> Result<CertSpec> {
    let last_issued_at = tail.last_issued_at.as_deref();
    check_clock(now, last_issued_at, &req.validity)?;
    let window = policy::window(policy, &req.validity, now)?;
    check_window(policy, &window, now, last_issued_at, &req.validity)?;
    let key_id = match &req.key_id {
        Some(id) => id.clone(),
        None => policy::default_key_id(&req.requester, tail.serial, &req.reason),
    };
    policy::check_key_id(&key_id)?;
    key::check_public_key(&req.subject)?;
    req.options.check_for_key(&req.subject)?;
    requester_name(Some(&req.requester), &req.subject)?;
    Ok(CertSpec {
        subject: req.subject.clone(),
        serial: tail.serial,
        key_id,
        principals: req.principals.clone(),
        window,
        options: req.options.clone(),
        binding: None,
    })
}

/// The metadata of the record of the certificate `spec` describes, issued `now` by the CA
/// `ca_fp`, chained to `prev_hash`, with a fresh salt: everything the record holds but the
/// certificate, and what the certificate's ledger binding is the hash of.
fn metadata(
    req: &MintRequest,
    spec: &CertSpec,
    ca_fp: String,
    now: DateTime<Utc>,
    prev_hash: String,
) -> Result<Metadata> {
    Ok(Metadata {
        format: match req.dual {
            Some(_) => binding::FORMAT_DUAL,
            None => binding::FORMAT,
        },
        serial: spec.serial,
        key_id: spec.key_id.clone(),
        principals: spec.principals.clone(),
        valid_after: rfc3339(spec.window.valid_after),
        valid_before: rfc3339(spec.window.valid_before),
        requester_key_type: req.subject.algorithm().to_string(),
        requester_fingerprint: crate::key::fingerprint(req.subject.key_data()),
        requester_comment: req.requester.clone(),
        reason: req.reason.clone(),
        critical_options: spec.options.critical.clone(),
        extensions: spec.options.extensions.keys().cloned().collect(),
        ca_fingerprint: ca_fp,
        issued_at: rfc3339(now),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        prev_hash,
        dual_control: req.dual.clone().map(Box::new),
        binding_salt: binding::new_salt()?,
    })
}

/// Issue one certificate as 0.1.0 did, for tests of old ledgers: no ledger binding,
/// a format-1 record, then a checkpoint signed by the token over the new head (two
/// signatures).
#[cfg(test)]
pub(crate) fn issue_format1(
    ca: &dyn CaKey,
    locked: &mut Locked<'_>,
    policy: &Policy,
    req: &MintRequest,
    clock: &dyn Clock,
) -> Result<Issued> {
    let ca_fp = crate::key::fingerprint(ca.public_key());
    let tail = locked.tail().clone();
    let now = clock.now();
    let spec = cert_spec(policy, req, &tail, now)?;
    let mut meta = metadata(req, &spec, ca_fp, now, tail.prev_hash)?;
    meta.format = 1;
    let certificate = cert::sign(ca, &spec)?;
    let line = certificate.to_openssh().unwrap();
    let mut record = meta.record(
        String::new(),
        cert::certificate_sha256(&certificate)?,
        line.clone(),
    );
    record.format = None;
    record.metadata = None;
    let appended = locked.append(&record)?;
    let cp = crate::ledger::checkpoint::sign(ca, appended.serial, &appended.head)?;
    locked.append_checkpoint(&cp)?;
    Ok(Issued {
        certificate,
        line,
        record,
        repaired: appended.repaired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Duration;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, h, 0, 0).unwrap()
    }

    #[test]
    fn clock_going_backwards_is_refused_unless_not_before() {
        let last = rfc3339(at(5));
        let err = check_clock(at(4), Some(&last), &ValidityRequest::default()).unwrap_err();
        assert!(err.to_string().contains("time went backwards"), "{err}");
        assert!(err.hint().unwrap().contains("--not-before"));
        let with_start = ValidityRequest {
            not_before: Some(at(6)),
            ..Default::default()
        };
        check_clock(at(4), Some(&last), &with_start).unwrap();
        check_clock(at(5), Some(&last), &ValidityRequest::default()).unwrap();
        check_clock(at(4), None, &ValidityRequest::default()).unwrap();
    }

    fn window(from: DateTime<Utc>, mins: i64) -> Window {
        Window {
            valid_after: from,
            valid_before: from + TimeDelta::minutes(mins),
        }
    }

    #[test]
    fn not_before_window_rules() {
        let p = Policy::default();
        let plain = ValidityRequest::default();
        let forced = ValidityRequest {
            force: true,
            ..Default::default()
        };
        let last = rfc3339(at(5));
        // Inside the rules: nothing to say.
        assert_eq!(
            check_window(&p, &window(at(4), 60), at(4), None, &plain).unwrap(),
            None
        );
        assert_eq!(
            check_window(&p, &window(at(5), 10), at(4), None, &plain).unwrap(),
            None
        );
        // Ends in the past (by the clock, or by the newer ledger record).
        let err = check_window(&p, &window(at(2), 10), at(4), None, &plain).unwrap_err();
        assert!(err.to_string().contains("already past"), "{err}");
        assert!(err.hint().unwrap().contains("--force-window"));
        let err = check_window(&p, &window(at(4), 30), at(3), Some(&last), &plain).unwrap_err();
        assert!(
            err.to_string().contains("the newest ledger record"),
            "{err}"
        );
        let err = check_window(&p, &window(at(4), 60), at(5), None, &plain).unwrap_err();
        assert!(
            err.to_string().contains("already past"),
            "ends exactly now: {err}"
        );
        // Starts too far ahead of the later of now and the ledger.
        let err = check_window(&p, &window(at(6), 10), at(4), None, &plain).unwrap_err();
        assert!(err.to_string().contains("max_start_ahead (1h)"), "{err}");
        assert_eq!(
            check_window(&p, &window(at(6), 10), at(4), Some(&last), &plain).unwrap(),
            None
        );
        let next_year = window(at(4) + TimeDelta::days(365), 10);
        assert!(check_window(&p, &next_year, at(4), Some(&last), &plain).is_err());
        // --force-window allows both, and says so.
        let note = check_window(&p, &next_year, at(4), None, &forced)
            .unwrap()
            .unwrap();
        assert!(note.contains("--force-window allowed this"), "{note}");
        let note = check_window(&p, &window(at(2), 10), at(4), None, &forced)
            .unwrap()
            .unwrap();
        assert!(note.contains("already past"), "{note}");
        // The allowance is the policy's.
        let wide = Policy {
            max_start_ahead: Duration::from_secs(3 * 3600),
            ..Default::default()
        };
        assert_eq!(
            check_window(&wide, &window(at(6), 10), at(4), None, &plain).unwrap(),
            None
        );
        let huge = Policy {
            max_start_ahead: Duration::from_secs(u64::MAX),
            ..Default::default()
        };
        assert_eq!(
            check_window(&huge, &next_year, at(4), None, &plain).unwrap(),
            None
        );
    }

    #[test]
    fn requester_from_flag_or_comment() {
        let key = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO alice@laptop",
        )
        .unwrap();
        assert_eq!(requester_name(None, &key).unwrap(), "alice@laptop");
        assert_eq!(requester_name(Some("bob"), &key).unwrap(), "bob");
        let mut bare = key.clone();
        bare.set_comment("");
        let err = requester_name(None, &bare).unwrap_err();
        assert!(err.hint().unwrap().contains("--requester"));
        for comment in [
            "alice\u{1b}[1A\u{1b}[2K\rRequester: bob",
            "ali\rce",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{202e}b",
            "a\u{200b}b",
            "a\tb",
        ] {
            let mut k = key.clone();
            k.set_comment(comment);
            let err = requester_name(None, &k).unwrap_err();
            assert!(err.to_string().contains("control or invisible"), "{err}");
            assert!(!err.to_string().contains('\u{1b}'), "{err}");
            assert!(err.hint().unwrap().contains("--requester NAME"));
            assert_eq!(requester_name(Some("carol"), &k).unwrap(), "carol");
            let err = requester_name(Some(comment), &key).unwrap_err();
            assert!(err.to_string().contains("--requester"), "{err}");
        }
        // Red-team finding: plain characters that disguise the screen.
        let padded = format!(
            "alice@x (SHA256:QfEWabc){}Principals:     root",
            " ".repeat(300)
        );
        for (comment, why) in [
            (padded.as_str(), "longer than 128"),
            ("alice  (x)", "run of spaces"),
            ("alice (SHA256:QfEWabcdef)", "key fingerprint"),
            ("bob md5:aa:bb", "key fingerprint"),
        ] {
            let mut k = key.clone();
            k.set_comment(comment);
            let err = requester_name(None, &k).unwrap_err();
            assert!(err.to_string().contains(why), "{comment}: {err}");
            assert!(err.hint().unwrap().contains("--requester NAME"));
        }
        assert_eq!(
            requester_name(Some("Alice Example <alice@example.com>"), &key).unwrap(),
            "Alice Example <alice@example.com>"
        );
    }

    /// A CA key that counts the token signatures it is asked for.
    struct Counting {
        key: crate::backend::soft::SoftKey,
        signatures: std::cell::Cell<usize>,
    }

    impl CaKey for Counting {
        fn public_key(&self) -> &ssh_key::public::KeyData {
            self.key.public_key()
        }
        fn info(&self) -> crate::backend::KeyInfo {
            self.key.info()
        }
        fn login(&mut self, pin: &crate::pin::Pin) -> Result<()> {
            self.key.login(pin)
        }
        fn sign(&self, message: &[u8]) -> Result<crate::backend::TokenSignature> {
            self.signatures.set(self.signatures.get() + 1);
            self.key.sign(message)
        }
    }

    #[test]
    fn one_token_signature_per_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Counting {
            key: crate::backend::soft::SoftKey::new(5),
            signatures: std::cell::Cell::new(0),
        };
        let ledger = crate::ledger::Ledger::new(dir.path()).require_checkpoints(true);
        let subject = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO alice@laptop",
        )
        .unwrap();
        let req = MintRequest {
            subject,
            requester: "alice".into(),
            principals: vec!["breakglass".into()],
            reason: "INC-1".into(),
            key_id: None,
            validity: ValidityRequest::default(),
            options: CertOptions::default(),
            dual: None,
        };
        for n in 1..=3 {
            let mut locked = ledger.lock(&key::fingerprint(ca.public_key())).unwrap();
            let issued = issue(&ca, &mut locked, &Policy::default(), &req, &SystemClock).unwrap();
            assert_eq!(issued.record.serial, n);
            assert_eq!(ca.signatures.get(), n as usize, "one signature per mint");
            // The certificate carries the hash of the record's metadata.
            let text = issued.record.metadata.as_deref().unwrap();
            assert_eq!(
                issued.certificate.extensions().get(binding::EXTENSION),
                Some(&binding::hash(text))
            );
        }
        // No checkpoint file, and none needed.
        assert!(!dir.path().join(crate::ledger::checkpoint::FILE).exists());
        // 0.1.0's way made two.
        let mut locked = ledger.lock(&key::fingerprint(ca.public_key())).unwrap();
        issue_format1(&ca, &mut locked, &Policy::default(), &req, &SystemClock).unwrap();
        assert_eq!(ca.signatures.get(), 5);
    }

    fn requests(n: usize) -> Vec<MintRequest> {
        (0..n)
            .map(|i| {
                // Distinct, valid Ed25519 keys from fixed seeds.
                let pair = ssh_key::private::Ed25519Keypair::from_seed(&[i as u8 + 1; 32]);
                MintRequest {
                    subject: PublicKey::from(pair.public),
                    requester: format!("user{i}"),
                    principals: vec!["breakglass".into()],
                    reason: "INC-1 batch".into(),
                    key_id: None,
                    validity: ValidityRequest::default(),
                    options: CertOptions::default(),
                    dual: None,
                }
            })
            .collect()
    }

    #[test]
    fn a_batch_signs_in_order_and_commits_once() {
        use crate::ledger::Ledger;
        let dir = tempfile::tempdir().unwrap();
        let ca = Counting {
            key: crate::backend::soft::SoftKey::new(9),
            signatures: Default::default(),
        };
        let ca_fp = key::fingerprint(ca.public_key());
        let ledger = Ledger::new(dir.path());
        crate::ledger::testing::issue(&ledger, &ca_fp);
        let mut locked = ledger.lock(&ca_fp).unwrap();
        let reqs = requests(3);
        let asked = std::cell::RefCell::new(Vec::new());
        let batch = issue_batch(
            &ca,
            &mut locked,
            &Policy::default(),
            &reqs,
            &FixedClock(at(3)),
            &|i| {
                asked.borrow_mut().push(i);
                Ok(())
            },
        )
        .unwrap();
        drop(locked);
        assert_eq!(*asked.borrow(), [1, 2]);
        // One signature per certificate, and no checkpoint.
        assert_eq!(ca.signatures.get(), signatures(3));
        assert_eq!(signatures(3), 3);
        let serials: Vec<u64> = batch.certificates.iter().map(|c| c.record.serial).collect();
        assert_eq!(serials, [2, 3, 4]);
        let all = ledger.read().unwrap();
        for (signed, req) in batch.certificates.iter().zip(&reqs) {
            signed.certificate.verify_signature().unwrap();
            assert_eq!(signed.certificate.serial(), signed.record.serial);
            assert_eq!(signed.certificate.public_key(), req.subject.key_data());
            assert_eq!(signed.record.requester_comment, req.requester);
            assert_eq!(signed.record.issued_at, rfc3339(at(3)));
            assert!(all.iter().any(|(_, r)| r.issued() == Some(&signed.record)));
        }
        assert_eq!(batch.certificates[1].record.key_id, "user1#3:INC-1-batch");
        // The chain links through the batch, each record bound into its certificate.
        crate::ledger::chain_heads(&all, &ca_fp).unwrap();
        for signed in &batch.certificates {
            let text = signed.record.metadata.as_deref().unwrap();
            assert_eq!(
                signed.certificate.extensions().get(binding::EXTENSION),
                Some(&binding::hash(text))
            );
        }
    }

    #[test]
    fn a_batch_stopped_between_signatures_writes_nothing() {
        use crate::ledger::Ledger;
        let dir = tempfile::tempdir().unwrap();
        let ca = Counting {
            key: crate::backend::soft::SoftKey::new(9),
            signatures: Default::default(),
        };
        let ca_fp = key::fingerprint(ca.public_key());
        let ledger = Ledger::new(dir.path()).require_checkpoints(true);
        let before = crate::ledger::testing::snapshot(dir.path());
        let mut locked = ledger.lock(&ca_fp).unwrap();
        let err = issue_batch(
            &ca,
            &mut locked,
            &Policy::default(),
            &requests(4),
            &FixedClock(at(3)),
            &|i| match i {
                2 => Err(Error::interrupted(2, "stopped")),
                _ => Ok(()),
            },
        )
        .unwrap_err();
        assert!(matches!(err, Error::Interrupted { .. }), "{err}");
        assert_eq!(
            ca.signatures.get(),
            2,
            "two certificates signed, then stopped"
        );
        drop(locked);
        let after = crate::ledger::testing::snapshot(dir.path());
        assert_eq!(
            after
                .iter()
                .filter(|(n, _)| n != "ledger.lock")
                .collect::<Vec<_>>(),
            before
                .iter()
                .filter(|(n, _)| n != "ledger.lock")
                .collect::<Vec<_>>()
        );
        assert!(ledger.read().unwrap().is_empty());
    }
}
