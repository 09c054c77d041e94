//! What `status` reports and `doctor` checks: one [`StatusReport`] of a state directory, its
//! token and its ledger. It is computed here from what `cmd/` opened (the configuration, the
//! token or its error, `ca.pub`), never printed here: `cmd/status.rs` renders it as text, or
//! as JSON (`status --json`, format [`FORMAT`], docs/ledger.md section 5.5), and
//! [`crate::doctor`] turns it into findings.
//!
//! The ledger part is [`Ledger::summary`]: the cheap check (the chain walked, the newest
//! record's certificate and the newest checkpoint; no other signature), and the figures of
//! `log verify` ([`Coverage`], counted the same way).

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use ssh_key::public::KeyData;

use crate::backend::{CaKey, KeyInfo};
use crate::config::{Config, CA_PUB_FILE};
use crate::error::Error;
use crate::issue::rfc3339;
use crate::ledger::{Coverage, Ledger, Revoked, LEDGER_FILE};
use crate::text::{Esc, ShowPath};

/// The version of the JSON of `status --json`: a new field keeps it, a field removed or whose
/// meaning changes raises it.
pub const FORMAT: u32 = 1;

/// An error as the report keeps it: its message and its hint (untrusted text: escape it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub error: String,
    pub hint: Option<String>,
}

impl From<&Error> for Problem {
    fn from(e: &Error) -> Self {
        Problem {
            error: e.to_string(),
            hint: e.hint(),
        }
    }
}

/// What `status` was given: everything already opened or read by the caller, so that the
/// report itself does no I/O beyond the ledger's and config's own files.
pub struct Inputs<'a> {
    pub state_dir: &'a Path,
    /// `config.toml`: `Ok(None)` when there is none, `Err` when it cannot be used.
    pub config: Result<Option<&'a Config>, &'a Error>,
    /// The CA URI used to open the token (already redacted for display), if there was one.
    pub uri: Option<String>,
    /// The token's CA key, or why it could not be opened.
    pub token: Result<&'a dyn CaKey, &'a Error>,
    /// `ca.pub`: `Ok(None)` when there is none.
    pub ca_pub: Result<Option<&'a KeyData>, &'a Error>,
    /// This laptop's clock.
    pub now: DateTime<Utc>,
}

/// Everything `status` shows, as `status --json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    /// [`FORMAT`].
    pub format: u32,
    pub state_dir: String,
    pub clock: ClockStatus,
    /// The CA URI used (`--ca`, else config.toml's `ca`); `null` when there is none.
    pub uri: Option<String>,
    pub token: TokenStatus,
    pub config: ConfigStatus,
    pub ca_pub: CaPubStatus,
    /// Which CA the ledger and revocations were read for.
    pub ca: CaStatus,
    pub ledger: LedgerStatus,
    pub backup_cas: Vec<BackupCa>,
    /// The backup CA list of config.toml could not be read.
    pub backup_cas_error: Option<Problem>,
    pub revocations: RevocationStatus,
    /// What dual control config.toml asks for (`null` without a config.toml).
    pub dual_control: Option<DualControlStatus>,
    /// What makes `status` exit 1, the first one first (empty: exit 0).
    pub problems: Vec<Problem>,
}

/// The dual-control policy in one line, and whether it is a warning (none enforced).
#[derive(Clone, Debug, Serialize)]
pub struct DualControlStatus {
    pub summary: String,
    pub warning: bool,
}

/// This laptop's clock against the newest ledger record.
#[derive(Clone, Debug, Serialize)]
pub struct ClockStatus {
    /// This laptop's clock, UTC (RFC 3339).
    pub now: String,
    /// The newest ledger line's time (`issued_at` or `revoked_at`), as written.
    pub newest_record: Option<String>,
    /// The clock is earlier than the newest record: it is wrong (mint refuses).
    pub behind: bool,
}

/// The PIN as the token reports it, before anyone types one.
#[derive(Clone, Debug, Serialize)]
pub struct PinStatus {
    /// Tries left when the token says (a YubiKey does; PKCS#11 only says final try or
    /// locked).
    pub tries_left: Option<u32>,
    /// Wrong PINs were entered since the last good one.
    pub count_low: bool,
    /// As `status` words it.
    pub state: String,
    /// What `mint` says about it (`policy::pin_tries`): `null` when it goes ahead.
    pub refusal: Option<String>,
}

/// The token and the CA key on it.
#[derive(Clone, Debug, Serialize)]
pub struct TokenStatus {
    pub found: bool,
    /// Why it was not found or could not be opened.
    pub error: Option<Problem>,
    /// The token, e.g. `token 'emergency-ca' (SoftHSM project SoftHSM v2, serial 1a2b)`.
    pub token: Option<String>,
    /// The key on it, e.g. `key 'breakglass-ca' (id 01a2)`.
    pub key: Option<String>,
    /// `ecdsa-p256`…
    pub algorithm: Option<String>,
    /// `SHA256:…` of the key on the token.
    pub fingerprint: Option<String>,
    pub pin: Option<PinStatus>,
    /// How the token uses the PIN beyond the login.
    pub pin_use: Option<String>,
    /// Every signature waits for a touch.
    pub touch_always: bool,
    /// The token's own facts (a YubiKey's firmware, PIN and touch policies, warnings), as
    /// `[name, value]` pairs.
    pub details: Vec<(String, String)>,
}

/// `config.toml`.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigStatus {
    pub found: bool,
    /// Why it cannot be used (a group-writable state directory, a syntax error…).
    pub error: Option<Problem>,
    pub fingerprint: Option<String>,
    pub created: Option<String>,
    pub checkpoints: Option<bool>,
    /// `backup_dir`: where the copy of the state directory is kept, for `doctor`.
    pub backup_dir: Option<String>,
    /// The key on the token is the CA config.toml names (`null` without both).
    pub matches_token: Option<bool>,
}

/// `ca.pub`, the CA public key `init` wrote beside config.toml.
#[derive(Clone, Debug, Serialize)]
pub struct CaPubStatus {
    pub found: bool,
    pub error: Option<Problem>,
    pub fingerprint: Option<String>,
    /// `null` without config.toml (or without ca.pub).
    pub matches_config: Option<bool>,
    /// `null` without the token (or without ca.pub).
    pub matches_token: Option<bool>,
}

/// The CA the ledger was read for: config.toml's fingerprint, else the token's, else ca.pub's.
#[derive(Clone, Debug, Serialize)]
pub struct CaStatus {
    pub fingerprint: Option<String>,
    /// `config.toml`, `token` or `ca.pub`.
    pub from: Option<String>,
    /// The ledger revokes this CA (`null` when its public key is not at hand).
    pub revoked: Option<bool>,
}

/// The newest issuance record.
#[derive(Clone, Debug, Serialize)]
pub struct NewestRecord {
    pub serial: u64,
    pub issued_at: String,
    pub requester: String,
}

/// The hash chain, by the cheap check.
#[derive(Clone, Debug, Serialize)]
pub struct ChainStatus {
    pub ok: bool,
    /// The first broken record, in words (`record serial 3 (line 4): …`).
    pub error: Option<Problem>,
}

/// `ledger.jsonl`.
#[derive(Clone, Debug, Serialize)]
pub struct LedgerStatus {
    pub file: String,
    pub exists: bool,
    /// It could not be read (a damaged line), or there is no CA to check it against; the
    /// figures below are then `null`.
    pub error: Option<Problem>,
    /// Issuance records.
    pub records: Option<u64>,
    pub newest: Option<NewestRecord>,
    /// What covers which records: the same figures as `log verify`.
    pub coverage: Option<Coverage>,
    pub chain: Option<ChainStatus>,
}

/// A backup CA of config.toml.
#[derive(Clone, Debug, Serialize)]
pub struct BackupCa {
    pub fingerprint: String,
    pub algorithm: String,
    /// Its comment (label) as the bundle and the sheet show it.
    pub comment: String,
    /// This CA's ledger revokes it.
    pub revoked: bool,
}

/// The ledger's revocations, merged ([`Revoked`]).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RevocationStatus {
    pub records: usize,
    /// The newest revocation's time.
    pub newest: Option<String>,
    /// The KRL version they give (the newest revocation's time as YYYYMMDDHHMMSS; 0 for none).
    pub krl_version: u64,
    /// This CA's revoked serials, as inclusive ranges.
    pub serials: Vec<(u64, u64)>,
    pub key_ids: usize,
    pub requester_keys: usize,
    pub ca_keys: usize,
}

impl RevocationStatus {
    fn of(r: &Revoked) -> Self {
        RevocationStatus {
            records: r.records,
            newest: r.newest.clone(),
            krl_version: r.version,
            serials: r.serials.clone(),
            key_ids: r.key_ids.len(),
            requester_keys: r.requester_keys.len(),
            ca_keys: r.ca_keys.len(),
        }
    }
}

/// What to do about a clock behind the newest ledger record.
pub const CLOCK_HINT: &str = "set the clock to the real time (compare with a phone: date -u); if the record's time is wrong instead (written with a clock that was ahead, or forged), check it with 'breakglass-ca log' and 'breakglass-ca log verify' against the copy kept outside this laptop";

fn problem(error: String, hint: &str) -> Problem {
    Problem {
        error,
        hint: Some(hint.to_string()),
    }
}

fn algorithm_name(key: &KeyData) -> String {
    crate::key::Algorithm::of_key(key)
        .map_or("unknown", crate::key::Algorithm::name)
        .to_string()
}

fn token_status(token: Result<&dyn CaKey, &Error>) -> (TokenStatus, Option<KeyInfo>) {
    match token {
        Ok(key) => {
            let info = key.info();
            let status = TokenStatus {
                found: true,
                error: None,
                token: Some(info.token.clone()),
                key: Some(info.key.clone()),
                algorithm: Some(algorithm_name(key.public_key())),
                fingerprint: Some(crate::key::fingerprint(key.public_key())),
                pin: Some(PinStatus {
                    tries_left: info.pin.tries_left,
                    count_low: info.pin.count_low,
                    state: info.pin.to_string(),
                    refusal: crate::policy::pin_tries(info.pin, false)
                        .err()
                        .map(|e| e.to_string()),
                }),
                pin_use: info.pin_use.clone(),
                touch_always: info.touch_always,
                details: info.details.clone(),
            };
            (status, Some(info))
        }
        Err(e) => (
            TokenStatus {
                found: false,
                error: Some(e.into()),
                token: None,
                key: None,
                algorithm: None,
                fingerprint: None,
                pin: None,
                pin_use: None,
                touch_always: false,
                details: Vec::new(),
            },
            None,
        ),
    }
}

/// Whether `now` is earlier than the ledger time `newest` (false when it does not parse: the
/// chain check names a bad time).
pub fn clock_behind(now: DateTime<Utc>, newest: Option<&str>) -> bool {
    newest
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| now < t)
}

impl StatusReport {
    /// The report of `inputs` (reads the ledger: [`Ledger::summary`]).
    pub fn gather(inputs: &Inputs<'_>) -> StatusReport {
        let mut problems = Vec::new();
        let config = inputs.config.ok().flatten();
        let (token, _info) = token_status(inputs.token);
        if let Some(e) = &token.error {
            problems.push(e.clone());
        }
        let token_key = inputs.token.ok().map(|k| k.public_key());
        let token_fp = token.fingerprint.clone();

        let config_status = match inputs.config {
            Ok(Some(c)) => ConfigStatus {
                found: true,
                error: None,
                fingerprint: Some(c.fingerprint.clone()),
                created: Some(c.created.clone()),
                checkpoints: Some(c.checkpoints),
                backup_dir: c
                    .backup_dir
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned()),
                matches_token: token_fp.as_ref().map(|fp| *fp == c.fingerprint),
            },
            Ok(None) => ConfigStatus {
                found: false,
                error: None,
                fingerprint: None,
                created: None,
                checkpoints: None,
                backup_dir: None,
                matches_token: None,
            },
            Err(e) => {
                problems.push(e.into());
                ConfigStatus {
                    found: false,
                    error: Some(e.into()),
                    fingerprint: None,
                    created: None,
                    checkpoints: None,
                    backup_dir: None,
                    matches_token: None,
                }
            }
        };
        if config_status.matches_token == Some(false) {
            problems.push(problem(
                format!(
                    "the key on this token ({}) is not the CA configured in {} ({})",
                    token_fp.as_deref().unwrap_or_default(),
                    inputs.state_dir.shown(),
                    Esc(config_status.fingerprint.as_deref().unwrap_or_default())
                ),
                "check you took the right token from the vault; a different CA needs its own --state-dir",
            ));
        }

        let ca_pub_key = inputs.ca_pub.ok().flatten();
        let ca_pub_fp = ca_pub_key.map(crate::key::fingerprint);
        let ca_pub = CaPubStatus {
            found: ca_pub_key.is_some(),
            error: inputs.ca_pub.err().map(Problem::from),
            fingerprint: ca_pub_fp.clone(),
            matches_config: ca_pub_fp
                .as_ref()
                .zip(config)
                .map(|(fp, c)| *fp == c.fingerprint),
            matches_token: ca_pub_fp
                .as_ref()
                .zip(token_fp.as_ref())
                .map(|(a, b)| a == b),
        };
        if let Some(e) = &ca_pub.error {
            problems.push(e.clone());
        }
        const CA_PUB_HINT: &str = "ca.pub was edited or replaced: restore it from the backup of the state directory (or the key sheet), and check the fingerprint against the paper in the vault";
        if ca_pub.matches_config == Some(false) {
            problems.push(problem(
                format!(
                    "{} holds the key {}, but config.toml names the CA {}",
                    inputs.state_dir.join(CA_PUB_FILE).shown(),
                    ca_pub_fp.as_deref().unwrap_or_default(),
                    Esc(config_status.fingerprint.as_deref().unwrap_or_default())
                ),
                CA_PUB_HINT,
            ));
        } else if ca_pub.matches_token == Some(false) && config.is_none() {
            problems.push(problem(
                format!(
                    "{} holds the key {}, but the token holds {}",
                    inputs.state_dir.join(CA_PUB_FILE).shown(),
                    ca_pub_fp.as_deref().unwrap_or_default(),
                    token_fp.as_deref().unwrap_or_default()
                ),
                CA_PUB_HINT,
            ));
        }

        // The CA this state directory is for: config.toml's, else the token's, else ca.pub's.
        let (ca_fp, from) = match (config, &token_fp, &ca_pub_fp) {
            (Some(c), _, _) => (Some(c.fingerprint.clone()), Some("config.toml")),
            (None, Some(fp), _) => (Some(fp.clone()), Some("token")),
            (None, None, Some(fp)) => (Some(fp.clone()), Some(CA_PUB_FILE)),
            (None, None, None) => (None, None),
        };
        let ca_key = ca_fp.as_ref().and_then(|fp| {
            [token_key, ca_pub_key]
                .into_iter()
                .flatten()
                .find(|k| crate::key::fingerprint(k) == *fp)
        });

        let ledger = Ledger::new(inputs.state_dir)
            .require_checkpoints(config.is_some_and(|c| c.checkpoints));
        let file = inputs.state_dir.join(LEDGER_FILE);
        let exists = std::fs::symlink_metadata(&file).is_ok();
        let mut ledger_status = LedgerStatus {
            file: file.to_string_lossy().into_owned(),
            exists,
            error: None,
            records: None,
            newest: None,
            coverage: None,
            chain: None,
        };
        let mut revoked = None;
        let mut newest_time = None;
        match ca_fp.as_deref().map(|fp| ledger.summary(fp)) {
            None => {
                ledger_status.error = Some(Problem {
                    error: "no CA to check the ledger against (no config.toml, token or ca.pub)"
                        .into(),
                    hint: None,
                });
            }
            Some(Err(e)) => {
                problems.push((&e).into());
                ledger_status.error = Some((&e).into());
            }
            Some(Ok(s)) => {
                if let Err(e) = &s.chain {
                    problems.push(e.into());
                }
                ledger_status.records = Some(s.records as u64);
                ledger_status.newest = s.last.as_ref().map(|r| NewestRecord {
                    serial: r.serial,
                    issued_at: r.issued_at.clone(),
                    requester: r.requester_comment.clone(),
                });
                ledger_status.coverage = Some(s.coverage.clone());
                ledger_status.chain = Some(ChainStatus {
                    ok: s.chain.is_ok(),
                    error: s.chain.as_ref().err().map(Problem::from),
                });
                newest_time = s.newest_time.clone();
                revoked = Some(s.revoked);
            }
        }

        let clock = ClockStatus {
            now: rfc3339(inputs.now),
            behind: clock_behind(inputs.now, newest_time.as_deref()),
            newest_record: newest_time,
        };
        if clock.behind {
            problems.push(problem(
                format!(
                    "this laptop's clock ({}) is earlier than the newest ledger record ({}): time went backwards",
                    clock.now,
                    Esc(clock.newest_record.as_deref().unwrap_or_default())
                ),
                CLOCK_HINT,
            ));
        }

        let revoked_keys: Vec<String> = revoked
            .as_ref()
            .map(|r| r.ca_keys.clone())
            .unwrap_or_default();
        let is_revoked = |k: &KeyData| {
            crate::ledger::revocation::key_line(k).is_ok_and(|l| revoked_keys.contains(&l))
        };
        let ca = CaStatus {
            fingerprint: ca_fp.clone(),
            from: from.map(str::to_string),
            revoked: ca_key.filter(|_| revoked.is_some()).map(is_revoked),
        };

        let mut backup_cas = Vec::new();
        let mut backup_cas_error = None;
        match crate::export::backup_cas(config, inputs.state_dir, &mut |_| {}) {
            Ok(lines) => {
                for b in lines {
                    backup_cas.push(BackupCa {
                        fingerprint: b.fingerprint(),
                        algorithm: b.algorithm().to_string(),
                        comment: b.line.splitn(3, ' ').nth(2).unwrap_or_default().to_string(),
                        revoked: is_revoked(&b.key),
                    });
                }
            }
            Err(e) => backup_cas_error = Some(Problem::from(&e)),
        }

        StatusReport {
            format: FORMAT,
            state_dir: inputs.state_dir.to_string_lossy().into_owned(),
            clock,
            uri: inputs.uri.clone(),
            token,
            config: config_status,
            ca_pub,
            ca,
            ledger: ledger_status,
            backup_cas,
            backup_cas_error,
            revocations: revoked
                .as_ref()
                .map(RevocationStatus::of)
                .unwrap_or_default(),
            dual_control: None,
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::soft::SoftKey;
    use crate::ledger::testing::{append_raw, issue, revoke};
    use chrono::TimeZone;

    fn config(fingerprint: &str) -> Config {
        Config {
            algorithm: "ecdsa-p256".into(),
            created: "2026-11-22T00:00:00Z".into(),
            backup_ca_pubkeys: vec![
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEiPWfHTVUvG5z0zfXVvb7xPMh6/tIRYQzoMAZFkKqXU vault-b"
                    .into(),
            ],
            checkpoints: false,
            backup_dir: Some("/media/BACKUP/x".into()),
            ..Config::for_tests(fingerprint)
        }
    }

    #[test]
    fn the_report_names_each_problem_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        issue(&ledger, "CA");
        issue(&ledger, "CA");
        revoke(&ledger, "CA", "2026-11-22T00:06:00Z", |v| {
            v.requester_keys.clear();
            v.ca_keys = vec![crate::ledger::RevokedKey::of(
                ssh_key::PublicKey::from_openssh(crate::ledger::testing::CAROL)
                    .unwrap()
                    .key_data(),
            )
            .unwrap()];
        });
        append_raw(&ledger, b"{\"serial\":3,");
        let c = config("CA");
        let token_error = Error::token("no token found").with_hint("plug it in");
        let soft = SoftKey::new(3);
        let at = |h: u32| Utc.with_ymd_and_hms(2026, 11, 22, h, 0, 0).unwrap();
        let gather = |now| {
            StatusReport::gather(&Inputs {
                state_dir: dir.path(),
                config: Ok(Some(&c)),
                uri: Some("pkcs11:token=t".into()),
                token: Err(&token_error),
                ca_pub: Ok(Some(soft.public_key())),
                now,
            })
        };
        let r = gather(at(1));
        assert!(!r.token.found && r.token.pin.is_none());
        assert_eq!(r.config.matches_token, None);
        assert_eq!(r.config.backup_dir.as_deref(), Some("/media/BACKUP/x"));
        assert_eq!(
            (r.ca.fingerprint.as_deref(), r.ca.from.as_deref()),
            (Some("CA"), Some("config.toml"))
        );
        // The token's error first, then ca.pub against config.toml; the clock is ahead.
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert_eq!(r.problems[0].error, "no token found");
        assert_eq!(r.problems[0].hint.as_deref(), Some("plug it in"));
        assert!(
            r.problems[1].error.contains("holds the key SHA256:")
                && r.problems[1].error.contains("config.toml names the CA CA")
        );
        assert!(!r.clock.behind);
        assert_eq!(
            r.clock.newest_record.as_deref(),
            Some("2026-11-22T00:06:00Z")
        );
        let cov = r.ledger.coverage.as_ref().unwrap();
        // (format-1 records without checkpoints: none covered)
        assert_eq!(
            (cov.last_serial, cov.revocations, cov.covered, cov.uncovered),
            (2, 1, 0, 3)
        );
        assert!(cov.torn_tail);
        assert_eq!(r.ledger.newest.as_ref().map(|n| n.serial), Some(2));
        assert!(r.ledger.chain.as_ref().unwrap().ok);
        assert_eq!(r.revocations.records, 1);
        assert_eq!(r.revocations.krl_version, 20261122000600);
        // The backup CA (carol's key) is revoked by that record.
        assert_eq!(r.backup_cas.len(), 1);
        assert!(r.backup_cas[0].revoked);
        assert_eq!(r.backup_cas[0].comment, "vault-b");
        // A clock before the newest record is a problem.
        let r = gather(Utc.with_ymd_and_hms(2026, 11, 21, 23, 0, 0).unwrap());
        assert!(r.clock.behind);
        assert!(r.problems[2]
            .error
            .contains("earlier than the newest ledger record (2026-11-22T00:06:00Z)"));
        // The JSON: format 1, ASCII.
        let json = crate::text::json_ascii(&r, false).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["format"], 1);
        assert_eq!(v["ledger"]["coverage"]["torn_tail"], true);
    }
}
