//! The checks `mint` makes of a signed request before the PIN is asked: its age, the proof of
//! possession (the requester's signature with the key in the request), and N-of-M approvals
//! (each a valid signature over this exact request text in the approval namespace, by a key
//! of the approvers file that allows it now; N distinct approvers, by name and by key; never
//! the requester, by key or by name). A refusal names who approved, who did not count and
//! why, and who is missing.

use chrono::{DateTime, TimeDelta, Utc};

use super::request::Request;
use super::signers::Signers;
use super::sshsig::{Armored, Problem};
use super::{ApprovalRecord, APPROVAL_NAMESPACE, REQUEST_NAMESPACE};
use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::issue::rfc3339;
use crate::text::Esc;

/// How far in the future (by this laptop's clock) a request's creation time may be: the
/// requester's clock is not the custodian's.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The default `max_request_age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

/// A `max_request_age` longer than this is said loudly (`status`, every mint): a request is
/// for an emergency, minted within hours, and an approval is good for as long.
pub const LONG_AGE: Duration = Duration::from_secs(24 * 3600);

/// The most approvals one mint reads (and `required_approvals` at most).
pub const MAX_APPROVALS: usize = 16;

/// A request's age at `now`: not created beyond [`CLOCK_SKEW`] in the future, not older
/// than `max_age`.
pub fn check_age(request: &Request, now: DateTime<Utc>, max_age: Duration) -> Result<()> {
    let secs = |d: Duration| TimeDelta::try_seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let created = request.created;
    if secs(CLOCK_SKEW)
        .and_then(|s| now.checked_add_signed(s))
        .is_some_and(|limit| created > limit)
    {
        return Err(Error::refused(format!(
            "the request was created at {}, after this laptop's clock ({}) by more than {CLOCK_SKEW}",
            rfc3339(created),
            rfc3339(now)
        ))
        .with_hint("compare this laptop's clock and the clock of the machine that ran 'breakglass-ca request' with a phone; set the wrong one right and make the request again"));
    }
    if secs(max_age)
        .and_then(|s| created.checked_add_signed(s))
        .is_some_and(|limit| now > limit)
    {
        return Err(Error::refused(format!(
            "the request is older than max_request_age ({max_age}): it was created at {}, it is now {}",
            rfc3339(created),
            rfc3339(now)
        ))
        .with_hint("make a new request ('breakglass-ca request …'), and have it signed and approved again"));
    }
    Ok(())
}

/// The proof of possession: `sig` is the requester's signature over `text` (the request's
/// exact bytes) with the key in the request, in the request namespace.
pub fn check_possession(request: &Request, text: &[u8], sig: &Armored) -> Result<()> {
    let hint = format!(
        "the requester signs the request file with the private key of the key in it: ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n {REQUEST_NAMESPACE} REQUEST (the key {})",
        request.fingerprint()
    );
    sig.verify(request.key.key_data(), REQUEST_NAMESPACE, text)
        .map_err(|p| {
            let what = match &p {
                Problem::OtherKey(fp) => format!(
                    "is made by another key ({fp}), not the requester's key in the request ({}): whoever signed it does not hold that key",
                    request.fingerprint()
                ),
                Problem::Namespace(ns) if ns == APPROVAL_NAMESPACE => {
                    "is an approval (namespace breakglass-ca-approval), not the requester's own signature".into()
                }
                p => p.describe(REQUEST_NAMESPACE),
            };
            Error::refused(format!("the request signature {what}")).with_hint(hint.clone())
        })
}

/// One approval given to `mint`: where it came from (for messages) and the signature.
#[derive(Clone, Debug)]
pub struct Given {
    /// How to name it: `--approval bob.sig`.
    pub source: String,
    pub sig: Armored,
}

/// The approvals that count, checked: see the module. At least `required` valid ones and no
/// other (an approval that does not count is refused, not passed over), else a refusal that
/// names who approved, which approvals did not count and why, and who is missing. All valid
/// approvals are returned (also beyond `required`), in the order given.
pub fn check_approvals(
    request: &Request,
    text: &[u8],
    signers: &Signers,
    given: &[Given],
    required: usize,
    now: DateTime<Utc>,
) -> Result<Vec<ApprovalRecord>> {
    if given.len() > MAX_APPROVALS {
        return Err(Error::usage(format!(
            "{} approvals were given; at most {MAX_APPROVALS} are read",
            given.len()
        )));
    }
    let mut approved: Vec<(ApprovalRecord, &ssh_key::public::KeyData)> = Vec::new();
    let mut rejected: Vec<String> = Vec::new();
    for g in given {
        let key = g.sig.signer();
        let fp = g.sig.signer_fingerprint();
        let why: Option<String> = if key == request.key.key_data() {
            Some(format!("is signed by the requester's own key ({fp}): a requester cannot approve their own request"))
        } else if g.sig.sig.namespace() == REQUEST_NAMESPACE {
            Some(format!("is a request signature (namespace {REQUEST_NAMESPACE}), not an approval (ssh-keygen -Y sign -n {APPROVAL_NAMESPACE})"))
        } else {
            let lines: Vec<_> = signers.with_key(key).collect();
            match lines.first() {
                None => Some(format!(
                    "is signed by a key that is not in the approvers file ({fp})"
                )),
                Some(first) => {
                    let name = first.name();
                    // A key on several lines may approve if one of them allows it.
                    let refusal = match lines
                        .iter()
                        .any(|s| s.refuses(APPROVAL_NAMESPACE, now).is_none())
                    {
                        true => None,
                        false => first.refuses(APPROVAL_NAMESPACE, now),
                    };
                    if let Some(r) = refusal {
                        Some(format!("is by {}, but {r}", Esc(name)))
                    } else if let Err(p) = g.sig.verify(key, APPROVAL_NAMESPACE, text) {
                        Some(format!(
                            "by {} {}",
                            Esc(name),
                            p.describe(APPROVAL_NAMESPACE)
                        ))
                    } else if signers.is_named(name, &request.requester) {
                        Some(format!("is by {}, who is the requester named in the request: a requester cannot approve their own request", Esc(name)))
                    } else if let Some((earlier, _)) = approved
                        .iter()
                        .find(|(a, k)| a.approver == name || *k == key)
                    {
                        Some(format!(
                            "is a second approval by {} (each approver counts once)",
                            Esc(&earlier.approver)
                        ))
                    } else {
                        approved.push((
                            ApprovalRecord {
                                approver: name.to_string(),
                                key: super::key_line(key)?,
                                signature: g.sig.text.clone(),
                            },
                            key,
                        ));
                        None
                    }
                }
            }
        };
        if let Some(why) = why {
            rejected.push(format!("{}: {why}", g.source));
        }
    }
    // Every approval given must count: one that does not is a slip or an attack (a key
    // swapped, a request edited), never something to pass over.
    if approved.len() >= required && rejected.is_empty() {
        return Ok(approved.into_iter().map(|(a, _)| a).collect());
    }
    let names: Vec<String> = approved
        .iter()
        .map(|(a, k)| format!("{} ({})", Esc(&a.approver), crate::key::fingerprint(k)))
        .collect();
    let approved_names: Vec<&str> = approved.iter().map(|(a, _)| a.approver.as_str()).collect();
    let missing: Vec<String> = signers
        .signers
        .iter()
        .filter(|s| {
            s.key.key_data() != request.key.key_data()
                && !signers.is_named(s.name(), &request.requester)
        })
        .map(|s| s.name())
        .fold(Vec::<&str>::new(), |mut v, n| {
            if !v.contains(&n) && !approved_names.contains(&n) {
                v.push(n);
            }
            v
        })
        .iter()
        .map(|n| Esc(n).to_string())
        .collect();
    let mut message = format!(
        "{required} approval(s) needed, {} valid: approved by {}",
        approved.len(),
        match names.is_empty() {
            true => "nobody".to_string(),
            false => names.join(", "),
        }
    );
    let short = required.saturating_sub(approved.len());
    message.push_str(&match (short, missing.is_empty()) {
        (0, _) => String::new(),
        (_, true) => format!(
            "; missing: {short} more, and no other approver is listed in the approvers file"
        ),
        (_, false) => format!("; missing: {short} more of {}", missing.join(", ")),
    });
    if !rejected.is_empty() {
        message.push_str(&format!("; not counted: {}", rejected.join("; ")));
    }
    Err(Error::refused(message).with_hint(format!(
        "each approver reads the request and signs it with their own key: ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n {APPROVAL_NAMESPACE} REQUEST, and gives you REQUEST.sig for --approval"
    )))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cert::CertOptions;
    use crate::dual::sshsig::tests::{ed25519, sign};
    use chrono::TimeZone;
    use ssh_key::PrivateKey;

    pub(crate) fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
    }

    /// alice's request (key seed 1), and its text.
    pub(crate) fn request_by(alice: &PrivateKey, requester: &str) -> (Request, String) {
        let r = Request::new(
            alice.public_key(),
            requester,
            vec!["breakglass".into()],
            Duration::from_secs(900),
            CertOptions::default(),
            "INC-1 test",
            now(),
        )
        .unwrap();
        let text = r.render().unwrap();
        (r, text)
    }

    /// bob (2), carol (3) and dave (4) as approvers.
    pub(crate) fn approvers() -> (Vec<PrivateKey>, Signers) {
        let keys: Vec<PrivateKey> = (2..=4).map(ed25519).collect();
        let text: String = ["bob", "carol", "dave"]
            .iter()
            .zip(&keys)
            .map(|(n, k)| format!("{n} {}\n", k.public_key().to_openssh().unwrap()))
            .collect();
        (keys, super::super::signers::parse(&text).unwrap())
    }

    fn given(source: &str, key: &PrivateKey, namespace: &str, text: &str) -> Given {
        Given {
            source: source.into(),
            sig: Armored::parse(&sign(key, namespace, text.as_bytes())).unwrap(),
        }
    }

    #[test]
    fn n_of_m_approvals_count_distinct_approvers_only() {
        let alice = ed25519(1);
        let (request, text) = request_by(&alice, "alice");
        let (keys, signers) = approvers();
        let (bob, carol) = (&keys[0], &keys[1]);
        let check = |g: &[Given]| {
            check_approvals(&request, text.as_bytes(), &signers, g, 2, now())
                .map(|a| a.iter().map(|a| a.approver.clone()).collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        };
        let ok = |k: &PrivateKey, n: &str| given(n, k, APPROVAL_NAMESPACE, &text);
        // 2 of 3: mints; the approvals are recorded with their keys and signatures.
        assert_eq!(
            check(&[ok(bob, "b"), ok(carol, "c")]).unwrap(),
            ["bob", "carol"]
        );
        let recorded = check_approvals(
            &request,
            text.as_bytes(),
            &signers,
            &[ok(bob, "b"), ok(carol, "c")],
            2,
            now(),
        )
        .unwrap();
        assert_eq!(recorded[0].key, key_line_of(bob));
        assert!(recorded[0]
            .signature
            .starts_with(super::super::sshsig::BEGIN));
        // 0 and 1: refused, naming who approved and who is missing.
        let err = check(&[]).unwrap_err();
        assert!(err.contains("2 approval(s) needed, 0 valid: approved by nobody; missing: 2 more of bob, carol, dave"), "{err}");
        let err = check(&[ok(bob, "--approval b.sig")]).unwrap_err();
        assert!(err.contains("1 valid: approved by bob (SHA256:"), "{err}");
        assert!(err.contains("missing: 1 more of carol, dave"), "{err}");
        // The same approver twice counts once.
        let err = check(&[ok(bob, "--approval b.sig"), ok(bob, "--approval b2.sig")]).unwrap_err();
        assert!(
            err.contains(
                "--approval b2.sig: is a second approval by bob (each approver counts once)"
            ),
            "{err}"
        );
        // The requester approving their own request.
        let err = check(&[ok(bob, "b"), ok(&alice, "--approval mine.sig")]).unwrap_err();
        assert!(
            err.contains("--approval mine.sig: is signed by the requester's own key"),
            "{err}"
        );
        // A key not on the list.
        let err = check(&[ok(bob, "b"), ok(&ed25519(9), "--approval x.sig")]).unwrap_err();
        assert!(
            err.contains("x.sig: is signed by a key that is not in the approvers file (SHA256:"),
            "{err}"
        );
        // The wrong namespace, and the requester's signature passed as an approval.
        let err = check(&[
            ok(bob, "b"),
            given("--approval c.sig", carol, "file", &text),
        ])
        .unwrap_err();
        assert!(err.contains("c.sig: by carol is made for the namespace \"file\", not \"breakglass-ca-approval\""), "{err}");
        let err = check(&[
            ok(bob, "b"),
            given("--approval c.sig", carol, REQUEST_NAMESPACE, &text),
        ])
        .unwrap_err();
        assert!(err.contains("c.sig: is a request signature"), "{err}");
        // An approval of another (or an edited) request.
        let (_, other) = request_by(&alice, "alice");
        let err = check(&[
            ok(bob, "b"),
            given("--approval c.sig", carol, APPROVAL_NAMESPACE, &other),
        ])
        .unwrap_err();
        assert!(
            err.contains("c.sig: by carol does not verify over this request"),
            "{err}"
        );
        // Enough valid ones and one that does not count: refused all the same.
        let err = check(&[ok(bob, "b"), ok(carol, "c"), ok(bob, "--approval b2.sig")]).unwrap_err();
        assert!(err.contains("2 valid: approved by bob (SHA256:"), "{err}");
        assert!(
            err.contains("not counted: --approval b2.sig: is a second approval by bob"),
            "{err}"
        );
        assert!(!err.contains("missing"), "{err}");
        // Three valid: all recorded.
        assert_eq!(
            check(&[ok(bob, "b"), ok(carol, "c"), ok(&keys[2], "d")])
                .unwrap()
                .len(),
            3
        );
    }

    pub(crate) fn key_line_of(k: &PrivateKey) -> String {
        super::super::key_line(k.public_key().key_data()).unwrap()
    }

    #[test]
    fn an_approver_who_is_the_requester_by_name_or_a_second_key_does_not_count() {
        let alice = ed25519(1);
        let (keys, _) = approvers();
        // bob asks, and is an approver: his approval does not count, nor does he count as missing.
        let (request, text) = request_by(&keys[0], "bob");
        let signers = super::super::signers::parse(&format!(
            "bob {}\ncarol {}\nbob {}\n",
            keys[0].public_key().to_openssh().unwrap(),
            keys[1].public_key().to_openssh().unwrap(),
            alice.public_key().to_openssh().unwrap(),
        ))
        .unwrap();
        let g = [given("--approval a.sig", &alice, APPROVAL_NAMESPACE, &text)];
        let err = check_approvals(&request, text.as_bytes(), &signers, &g, 1, now())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.sig: is by bob, who is the requester named in the request"),
            "{err}"
        );
        assert!(err.contains("missing: 1 more of carol"), "{err}");
        // Two keys of one approver count once.
        let (request, text) = request_by(&keys[2], "dave");
        let g = [
            given("x", &keys[0], APPROVAL_NAMESPACE, &text),
            given("--approval y", &alice, APPROVAL_NAMESPACE, &text),
        ];
        let err = check_approvals(&request, text.as_bytes(), &signers, &g, 2, now())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--approval y: is a second approval by bob"),
            "{err}"
        );
    }

    #[test]
    fn the_requester_under_another_name_of_an_approver_does_not_count() {
        // alice is an approver (alice, alice@example.com); she asks with a fresh key under
        // her other name, or her name in capitals, and approves with her approver key.
        let alice = ed25519(1);
        let fresh = ed25519(7);
        let (keys, _) = approvers();
        let signers = super::super::signers::parse(&format!(
            "alice,alice@example.com {}\nbob {}\n",
            alice.public_key().to_openssh().unwrap(),
            keys[0].public_key().to_openssh().unwrap(),
        ))
        .unwrap();
        for requester in ["alice@example.com", "ALICE", "Alice@Example.com"] {
            let (request, text) = request_by(&fresh, requester);
            let g = [
                given("--approval a.sig", &alice, APPROVAL_NAMESPACE, &text),
                given("--approval b.sig", &keys[0], APPROVAL_NAMESPACE, &text),
            ];
            let err = check_approvals(&request, text.as_bytes(), &signers, &g, 2, now())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("a.sig: is by alice, who is the requester named in the request"),
                "{requester}: {err}"
            );
            // Nor is she missing: nobody else is listed.
            assert!(
                err.contains("1 valid: approved by bob (SHA256:")
                    && err.contains("no other approver is listed"),
                "{requester}: {err}"
            );
        }
    }

    #[test]
    fn the_approvers_files_options_are_respected() {
        let alice = ed25519(1);
        let (request, text) = request_by(&alice, "alice");
        let bob = ed25519(2);
        let line = |opts: &str| {
            super::super::signers::parse(&format!(
                "bob {opts} {}",
                bob.public_key().to_openssh().unwrap()
            ))
            .unwrap()
        };
        let g = [given("b", &bob, APPROVAL_NAMESPACE, &text)];
        for (opts, ok) in [
            ("namespaces=\"breakglass-ca-*\"", true),
            ("namespaces=\"git\"", false),
            ("valid-before=\"20261201100000Z\"", false),
            ("valid-before=\"20261201100001Z\"", true),
            ("valid-after=\"20261201100001Z\"", false),
        ] {
            let r = check_approvals(&request, text.as_bytes(), &line(opts), &g, 1, now());
            assert_eq!(r.is_ok(), ok, "{opts}: {r:?}");
        }
    }

    #[test]
    fn possession_and_age() {
        let alice = ed25519(1);
        let (request, text) = request_by(&alice, "alice");
        let sig =
            |k: &PrivateKey, ns: &str, t: &str| Armored::parse(&sign(k, ns, t.as_bytes())).unwrap();
        check_possession(
            &request,
            text.as_bytes(),
            &sig(&alice, REQUEST_NAMESPACE, &text),
        )
        .unwrap();
        let err = check_possession(
            &request,
            text.as_bytes(),
            &sig(&ed25519(7), REQUEST_NAMESPACE, &text),
        )
        .unwrap_err();
        assert!(err.to_string().contains("is made by another key"), "{err}");
        assert!(err
            .hint()
            .unwrap()
            .contains("ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n breakglass-ca-request"));
        let err = check_possession(
            &request,
            text.as_bytes(),
            &sig(&alice, APPROVAL_NAMESPACE, &text),
        )
        .unwrap_err();
        assert!(err.to_string().contains("is an approval"), "{err}");
        let edited = text.replace("INC-1 test", "INC-1 tesT");
        let err = check_possession(
            &request,
            edited.as_bytes(),
            &sig(&alice, REQUEST_NAMESPACE, &text),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("does not verify over this request"),
            "{err}"
        );
        let hour = Duration::from_secs(3600);
        let t = |m: i64| now() + TimeDelta::minutes(m);
        check_age(&request, t(60), hour).unwrap();
        check_age(&request, t(-5), hour).unwrap();
        let err = check_age(&request, t(61), hour).unwrap_err().to_string();
        assert!(err.contains("older than max_request_age (1h)"), "{err}");
        let err = check_age(&request, t(-6), hour).unwrap_err().to_string();
        assert!(err.contains("after this laptop's clock"), "{err}");
    }
}
