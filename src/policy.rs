//! The issuance policy: everything `mint` refuses, in one place. Each check returns a
//! `Refused` error saying what was wrong and what to do instead.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::PinStatus;
use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::text;

/// Limits a CA applies to every certificate; stored in `config.toml` under `[policy]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Longest validity `mint -V` may ask for.
    pub max_validity: Duration,
    /// Validity when `-V` is not given.
    pub default_validity: Duration,
    /// How far before "now" certificates start, against clock skew on hosts.
    pub backdate: Duration,
    /// How far after the later of "now" and the newest ledger record a `--not-before` start
    /// may lie (more needs `--force-window`).
    pub max_start_ahead: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_validity: Duration::from_secs(3600),
            default_validity: Duration::from_secs(15 * 60),
            backdate: Duration::from_secs(5 * 60),
            max_start_ahead: Duration::from_secs(3600),
        }
    }
}

/// No configuration may allow certificates longer than this: an emergency CA that issues
/// day-long certificates has become a standing-credential factory.
pub const HARD_MAX_VALIDITY: Duration = Duration::from_secs(24 * 3600);

impl Policy {
    /// A policy whose own numbers contradict each other, or that exceeds the hard ceiling, is a
    /// configuration error.
    pub fn check(&self) -> Result<()> {
        if self.max_validity > HARD_MAX_VALIDITY {
            return Err(Error::config(format!(
                "policy max_validity {} is above the hard limit of {HARD_MAX_VALIDITY}",
                self.max_validity
            ))
            .with_hint("emergency certificates are meant to last minutes; set max_validity in config.toml to 24h or less"));
        }
        if self.default_validity > self.max_validity {
            return Err(Error::config(format!(
                "policy default_validity {} is longer than max_validity {}",
                self.default_validity, self.max_validity
            ))
            .with_hint("fix [policy] in config.toml"));
        }
        Ok(())
    }
}

/// Longest principal or key ID sshd and this tool accept.
pub const MAX_NAME_BYTES: usize = 255;

/// Most principals sshd accepts in one certificate (`SSHKEY_CERT_MAX_PRINCIPALS`).
pub const MAX_PRINCIPALS: usize = 256;

/// Split `-n` values on commas (like ssh-keygen) and check every principal.
pub fn principals(raw: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for arg in raw {
        for p in arg.split(',') {
            check_principal(p)?;
            if !out.iter().any(|q| q == p) {
                out.push(p.to_string());
            }
        }
    }
    if out.len() > MAX_PRINCIPALS {
        return Err(Error::refused(format!(
            "{} principals: sshd refuses a certificate with more than {MAX_PRINCIPALS}",
            out.len()
        ))
        .with_hint("name only the accounts needed for this emergency with -n"));
    }
    if out.is_empty() {
        return Err(Error::usage(
            "no principal given (-n): an empty list means any user to older sshd",
        )
        .with_hint("name the account(s) to log in as with -n, e.g. -n breakglass"));
    }
    Ok(out)
}

fn check_principal(p: &str) -> Result<()> {
    let why = if p.is_empty() {
        Some("it is empty")
    } else if p.len() > MAX_NAME_BYTES {
        Some("it is longer than 255 bytes")
    } else if p.chars().any(char::is_whitespace) {
        Some("it contains whitespace")
    } else if p.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if p.contains(['*', '?']) {
        Some("it contains a wildcard (* or ?), which sshd would match as a pattern")
    } else if !p.bytes().all(|b| b.is_ascii_graphic()) {
        Some("it is not printable ASCII (look-alike letters and invisible characters are refused)")
    } else if p.contains('#') {
        Some("it contains #, where an AuthorizedPrincipalsFile line starts a comment: no principals file can match it")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::refused(format!("principal \"{}\": {why}", text::escape(p)))
            .with_hint("principals are plain account or role names such as breakglass or root; give several as -n a,b")),
        None => Ok(()),
    }
}

/// The certificate's validity window, as UTC instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub valid_after: DateTime<Utc>,
    pub valid_before: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.valid_after <= t && t < self.valid_before
    }
}

/// What the custodian asked for; `None` means "the policy's default".
#[derive(Clone, Copy, Debug, Default)]
pub struct ValidityRequest {
    pub validity: Option<Duration>,
    pub backdate: Option<Duration>,
    pub not_before: Option<DateTime<Utc>>,
    /// `--force-window`: allow a window that ends in the past or starts further ahead than the
    /// policy's `max_start_ahead` (see [`crate::issue::check_window`]).
    pub force: bool,
}

/// The validity window for a request at `now`: `[now - backdate, now + validity)`, or
/// `[not_before, not_before + validity)` when an absolute start was asked for.
pub fn window(policy: &Policy, req: &ValidityRequest, now: DateTime<Utc>) -> Result<Window> {
    let validity = req.validity.unwrap_or(policy.default_validity);
    if validity > policy.max_validity {
        return Err(Error::refused(format!(
            "validity {validity} is longer than the policy maximum {}",
            policy.max_validity
        ))
        .with_hint(format!(
            "ask for at most {} with -V; emergency certificates are meant to be short",
            policy.max_validity
        )));
    }
    let backdate = req.backdate.unwrap_or(policy.backdate);
    if backdate > policy.max_validity {
        return Err(Error::refused(format!(
            "backdate {backdate} is longer than the policy maximum {}",
            policy.max_validity
        ))
        .with_hint("if this laptop's clock is wrong, give the real start time with --not-before 2026-01-31T03:00:00Z"));
    }
    let span = |d: Duration| TimeDelta::try_seconds(d.as_secs() as i64);
    let overflow = || {
        Error::refused("the validity window does not fit in a date")
            .with_hint("use a shorter -V or a realistic --not-before")
    };
    let (start, anchor) = match req.not_before {
        Some(t) => (t, t),
        None => (
            span(backdate)
                .and_then(|b| now.checked_sub_signed(b))
                .ok_or_else(overflow)?,
            now,
        ),
    };
    let end = span(validity)
        .and_then(|v| anchor.checked_add_signed(v))
        .ok_or_else(overflow)?;
    if start.timestamp() < 0 || end.timestamp() < 0 {
        return Err(overflow());
    }
    let window = Window {
        valid_after: start,
        valid_before: end,
    };
    if req.not_before.is_none() && !window.contains(now) {
        return Err(Error::refused(
            "the validity window does not contain the current time",
        ));
    }
    Ok(window)
}

/// Requester keys are parsed and validated in [`crate::key`]; kept here for callers.
pub use crate::key::requester_key;

/// Characters kept in the parts of a default key ID; everything else becomes `-`.
fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let keep = c.is_ascii_alphanumeric() || "._@+=:/".contains(c);
        if keep {
            out.push(c);
        } else if out.ends_with(|p: char| p.is_ascii_alphanumeric()) {
            // one dash for a run of spaces or symbols, none after kept punctuation ("a: b" -> "a:b")
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    trimmed
        .chars()
        .take(max)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// The default key ID: `REQUESTER#SERIAL:REASON`, e.g. `alice@laptop#42:INC-1234-db-down`.
pub fn default_key_id(requester: &str, serial: u64, reason: &str) -> String {
    let requester = match slug(requester, 64) {
        s if s.is_empty() => "requester".to_string(),
        s => s,
    };
    format!("{requester}#{serial}:{}", slug(reason, 80))
}

/// A key ID is logged by sshd as `ID "…"`: printable ASCII, no whitespace, no `"`, at most 255
/// bytes.
pub fn check_key_id(id: &str) -> Result<()> {
    let why = if id.is_empty() {
        Some("it is empty")
    } else if id.len() > MAX_NAME_BYTES {
        Some("it is longer than 255 bytes")
    } else if !id.bytes().all(|b| b.is_ascii_graphic()) {
        Some("it must be printable ASCII without spaces")
    } else if id.contains('"') {
        Some("it contains \", which would let it forge the quotes around the ID in sshd's log")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::refused(format!("key ID \"{}\": {why}", text::escape(id)))
            .with_hint("sshd logs the key ID in quotes; use letters, digits and - _ . : @ #, or leave -I out for the default")),
        None => Ok(()),
    }
}

/// Refuse to spend the last PIN try (or a blocked PIN) unless the custodian says `--force`.
pub fn pin_tries(status: PinStatus, force: bool) -> Result<()> {
    match status.tries_left {
        Some(0) => Err(Error::refused("the token's PIN is blocked")
            .with_hint("unblock it with the SO PIN / PUK as the runbook says, or use the backup token")),
        Some(1) if !force => Err(Error::refused(
            "the token has 1 PIN try left: a wrong PIN now would block it",
        )
        .with_hint("check the PIN with the second custodian first; then run again with --force to use the last try")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn principals_split_and_dedupe() {
        assert_eq!(
            principals(&strings(&["a,b", "c", "a"])).unwrap(),
            strings(&["a", "b", "c"])
        );
    }

    #[test]
    fn bad_principals_refused() {
        let long = "x".repeat(256);
        let err = principals(&[]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("no principal given"));
        for (raw, why) in [
            (vec!["a,"], "empty"),
            (vec!["a b"], "whitespace"),
            (vec!["a\tb"], "whitespace"),
            (vec!["a\u{7}b"], "control"),
            (vec!["*"], "wildcard"),
            (vec!["ro?t"], "wildcard"),
            (vec![long.as_str()], "255"),
            (vec!["root\u{200b}"], "not printable ASCII"),
            (vec!["r\u{43e}ot"], "not printable ASCII"),
            (vec!["\u{feff}root"], "not printable ASCII"),
            (vec!["ro\u{e9}t"], "not printable ASCII"),
            (vec!["#root"], "contains #"),
            (vec!["root#1"], "contains #"),
        ] {
            let err = principals(&strings(&raw)).unwrap_err();
            assert!(err.kind() == Some(crate::error::Kind::Refused), "{raw:?}");
            assert!(err.to_string().contains(why), "{raw:?}: {err}");
            assert!(err.hint().is_some());
        }
        assert!(principals(&strings(&[&"x".repeat(255)])).is_ok());
        let many: Vec<String> = (0..257).map(|i| format!("p{i}")).collect();
        let err = principals(&many).unwrap_err();
        assert!(err.to_string().contains("257 principals"), "{err}");
        assert!(principals(&many[..256]).is_ok());
        // Duplicates count once.
        let twice: Vec<String> = many[..256].iter().chain(&many[..10]).cloned().collect();
        assert_eq!(principals(&twice).unwrap().len(), 256);
        // The message shows the principal escaped.
        let err = principals(&strings(&["a\u{1b}[2Jb"])).unwrap_err();
        assert!(err.to_string().contains("a\\e[2Jb"), "{err}");
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap()
    }

    fn mins(m: u64) -> Option<Duration> {
        Some(Duration::from_secs(m * 60))
    }

    #[test]
    fn default_window_is_backdated() {
        let w = window(&Policy::default(), &ValidityRequest::default(), now()).unwrap();
        assert_eq!(w.valid_after, now() - TimeDelta::minutes(5));
        assert_eq!(w.valid_before, now() + TimeDelta::minutes(15));
        let req = ValidityRequest {
            validity: mins(60),
            backdate: mins(1),
            ..Default::default()
        };
        let w = window(&Policy::default(), &req, now()).unwrap();
        assert_eq!(w.valid_after, now() - TimeDelta::minutes(1));
        assert_eq!(w.valid_before, now() + TimeDelta::minutes(60));
    }

    #[test]
    fn not_before_sets_an_absolute_window() {
        let start = now() + TimeDelta::days(3);
        let req = ValidityRequest {
            validity: mins(10),
            not_before: Some(start),
            ..Default::default()
        };
        let w = window(&Policy::default(), &req, now()).unwrap();
        assert_eq!(
            (w.valid_after, w.valid_before),
            (start, start + TimeDelta::minutes(10))
        );
        assert!(!w.contains(now()));
    }

    #[test]
    fn over_the_cap_is_refused_never_cut() {
        let req = ValidityRequest {
            validity: mins(61),
            ..Default::default()
        };
        let err = window(&Policy::default(), &req, now()).unwrap_err();
        assert!(
            err.to_string()
                .contains("longer than the policy maximum 1h"),
            "{err}"
        );
        let req = ValidityRequest {
            backdate: mins(120),
            ..Default::default()
        };
        assert!(window(&Policy::default(), &req, now()).is_err());
        let policy = Policy {
            max_validity: Duration::from_secs(u64::MAX / 2),
            ..Default::default()
        };
        let req = ValidityRequest {
            validity: Some(Duration::from_secs(u64::MAX / 4)),
            ..Default::default()
        };
        let err = window(&policy, &req, now()).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        let early = ValidityRequest {
            not_before: Some(Utc.with_ymd_and_hms(1969, 12, 31, 23, 0, 0).unwrap()),
            ..Default::default()
        };
        assert!(window(&Policy::default(), &early, now()).is_err());
    }

    #[test]
    fn old_policy_tables_load_with_the_default_start_allowance() {
        let p: Policy = toml::from_str("max_validity = \"30m\"\nbackdate = \"1m\"").unwrap();
        assert_eq!(p.max_start_ahead.as_secs(), 3600);
        let p: Policy = toml::from_str("max_start_ahead = \"2h\"").unwrap();
        assert_eq!(p.max_start_ahead.as_secs(), 7200);
    }

    #[test]
    fn key_ids() {
        assert_eq!(
            default_key_id("alice@laptop", 42, "INC-1234: db down, no bastion"),
            "alice@laptop#42:INC-1234:db-down-no-bastion"
        );
        assert_eq!(default_key_id("", 1, "x"), "requester#1:x");
        let id = default_key_id(&"r".repeat(300), u64::MAX, &"y".repeat(300));
        check_key_id(&id).unwrap();
        for (id, why) in [
            ("", "empty"),
            ("a b", "printable"),
            ("é", "printable"),
            ("a\nb", "printable"),
            ("a\"b", "contains \""),
            ("x\" from \"evil", "printable"),
        ] {
            assert!(
                check_key_id(id).unwrap_err().to_string().contains(why),
                "{id}"
            );
        }
        assert!(check_key_id(&"k".repeat(256)).is_err());
    }

    #[test]
    fn last_pin_try_needs_force() {
        let one = PinStatus {
            tries_left: Some(1),
            count_low: true,
        };
        let err = pin_tries(one, false).unwrap_err();
        assert!(err.to_string().contains("1 PIN try left"), "{err}");
        assert!(err.hint().unwrap().contains("--force"));
        pin_tries(one, true).unwrap();
        pin_tries(PinStatus::default(), false).unwrap();
        let blocked = PinStatus {
            tries_left: Some(0),
            count_low: true,
        };
        assert!(pin_tries(blocked, true).is_err());
    }
}
