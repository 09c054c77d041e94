//! `status`: which token and key were found, the algorithm and fingerprint, the PIN state,
//! config.toml and ca.pub, the clock against the ledger, the ledger's summary (records, the
//! newest serial, what a token signature covers, a torn tail, the chain), the backup CAs and
//! the revocations with the KRL version; as text, or as JSON with `--json`. Needs no PIN, and
//! reports everything but the token part when the token is not plugged in (exit 1).

use chrono::Utc;

use crate::backend::{self, CaKey};
use crate::cli::StatusArgs;
use crate::cmd::Globals;
use crate::config::CA_PUB_FILE;
use crate::error::{Error, Result};
use crate::status::{Inputs, Problem, StatusReport};
use crate::text::{self, Esc};
use crate::ui;

/// What `status` and `doctor` both open and read: config.toml (an error stops here: its
/// module path is not loaded from a file others could change), the token (or why not) and
/// ca.pub; then the report.
pub(crate) struct Opened {
    pub report: StatusReport,
    /// The token's own error, kept whole for the exit (its hint names the next step).
    pub token_error: Option<Error>,
}

pub(crate) fn open_and_gather(
    g: &Globals,
    config: std::result::Result<Option<&crate::config::Config>, &Error>,
) -> Opened {
    let uri = match config {
        Ok(c) => g.ca_uri(c),
        Err(_) => match &g.ca {
            Some(_) => g.ca_uri(None),
            None => Err(Error::config(
                "the token was not opened: config.toml cannot be used (see above)",
            )
            .with_hint("fix what is said about config.toml first, or pass --ca URI")),
        },
    };
    let shown_uri = uri.as_ref().ok().map(ToString::to_string);
    let token: Result<Box<dyn CaKey>> =
        uri.and_then(|u| backend::open(&u, std::sync::Arc::new(ui::Terminal)));
    let ca_pub = crate::cmd::ca_source::read_ca_pub(&g.state_dir.join(CA_PUB_FILE));
    let mut report = StatusReport::gather(&Inputs {
        state_dir: &g.state_dir,
        config,
        uri: shown_uri,
        token: token.as_deref(),
        ca_pub: ca_pub.as_ref().map(Option::as_ref),
        now: Utc::now(),
    });
    if let Ok(Some(c)) = config {
        let (summary, warning) = crate::cmd::mint_request::dual_text(c, &g.state_dir);
        report.dual_control = Some(crate::status::DualControlStatus { summary, warning });
    }
    Opened {
        report,
        token_error: token.err(),
    }
}

pub fn run(g: &Globals, args: &StatusArgs) -> Result<()> {
    let config = g.config()?;
    let Opened {
        report,
        token_error,
    } = open_and_gather(g, Ok(config.as_ref()));
    if args.json {
        let json = text::json_ascii(&report, true)
            .map_err(|e| Error::json("cannot build the JSON output", e))?;
        crate::cmd::write_stdout(&format!("{json}\n"))?;
    } else {
        ui::print(lines(&report).join("\n"))?;
    }
    if let Some(e) = token_error {
        return Err(e);
    }
    match report.problems.first() {
        None => Ok(()),
        Some(first) => Err(problems_error(&report.problems, first)),
    }
}

fn problems_error(all: &[Problem], first: &Problem) -> Error {
    let more = match all.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    Error::invalid(format!(
        "status found problems (see above): {}{more}",
        first.error
    ))
    .with_hint(first.hint.clone().unwrap_or_else(|| {
        "a config mismatch means another token or key than this state directory's CA; a broken chain: run 'breakglass-ca log verify'; 'breakglass-ca doctor' says what to do for each finding".into()
    }))
}

/// The human `status`: one fact a line, `name:` padded to 16 columns. Every text from the
/// token, the ledger or config.toml is escaped.
pub fn lines(r: &StatusReport) -> Vec<String> {
    let mut out = Vec::new();
    let mut line =
        |name: &str, value: String| out.push(format!("{:<15} {value}", format!("{name}:")));
    line(
        "CA URI",
        r.uri
            .clone()
            .unwrap_or_else(|| "none (no --ca and no config.toml)".into()),
    );
    let t = &r.token;
    match &t.error {
        None => {
            line("token", t.token.clone().unwrap_or_default());
            line("key", t.key.clone().unwrap_or_default());
            line("fingerprint", t.fingerprint.clone().unwrap_or_default());
            if let Some(pin) = &t.pin {
                line("PIN", pin.state.clone());
            }
        }
        Some(e) => {
            line("token", format!("NOT FOUND: {}", e.error));
            if let Some(fp) = &r.ca.fingerprint {
                line(
                    "fingerprint",
                    format!(
                        "{} (from {}; the token's key is not checked)",
                        Esc(fp),
                        r.ca.from.as_deref().unwrap_or_default()
                    ),
                );
            }
        }
    }
    line("state dir", Esc(&r.state_dir).to_string());
    let c = &r.config;
    line(
        "config",
        match (c.found, c.matches_token) {
            (true, Some(true)) => format!(
                "matches this key (created {})",
                Esc(c.created.as_deref().unwrap_or_default())
            ),
            (true, Some(false)) => format!(
                "DOES NOT MATCH: config.toml is for the CA {}; this is another key",
                Esc(c.fingerprint.as_deref().unwrap_or_default())
            ),
            (true, None) => format!(
                "for the CA {} (created {}); not compared with the token (not found)",
                Esc(c.fingerprint.as_deref().unwrap_or_default()),
                Esc(c.created.as_deref().unwrap_or_default())
            ),
            (false, _) => "none (run 'breakglass-ca init' or pass --state-dir)".into(),
        },
    );
    let p = &r.ca_pub;
    line(
        "ca.pub",
        match (&p.error, p.found, p.matches_config, p.matches_token) {
            (Some(e), _, _, _) => format!("UNREADABLE: {}", e.error),
            (None, false, _, _) => {
                "none ('log verify' and the token-free exports need the token without it)".into()
            }
            (None, true, Some(false), _) => format!(
                "DOES NOT MATCH: it holds {}, config.toml names another CA",
                p.fingerprint.as_deref().unwrap_or_default()
            ),
            (None, true, _, Some(false)) => format!(
                "DOES NOT MATCH: it holds {}, the token another key",
                p.fingerprint.as_deref().unwrap_or_default()
            ),
            (None, true, Some(true), _) => "matches config.toml".into(),
            (None, true, None, _) => {
                format!("holds {}", p.fingerprint.as_deref().unwrap_or_default())
            }
        },
    );
    if let Some(pin_use) = &t.pin_use {
        line("PIN use", pin_use.clone());
    }
    for (name, value) in &t.details {
        // The token's own facts (firmware, policies): untrusted text.
        line(&Esc(name).to_string(), Esc(value).to_string());
    }
    let clock = &r.clock;
    let now = chrono::DateTime::parse_from_rfc3339(&clock.now)
        .map(|t| ui::both_times(t.with_timezone(&Utc)))
        .unwrap_or_else(|_| clock.now.clone());
    line(
        "clock",
        match (&clock.newest_record, clock.behind) {
            (None, _) => format!("{now}; no ledger record yet"),
            (Some(t), false) => format!("{now}; the newest ledger record is {}", Esc(t)),
            (Some(t), true) => format!(
                "{now}: BEHIND the newest ledger record ({}): set it to the real time",
                Esc(t)
            ),
        },
    );
    let l = &r.ledger;
    match (&l.error, &l.newest, l.records) {
        (Some(e), _, _) => line("ledger", format!("UNREADABLE: {}", e.error)),
        (None, Some(n), Some(records)) => line(
            "ledger",
            format!(
                "{records} certificate(s); last serial {} issued {} to {}",
                n.serial,
                Esc(&n.issued_at),
                Esc(&n.requester)
            ),
        ),
        (None, _, _) => line("ledger", "no certificate issued yet (next serial 1)".into()),
    }
    if let Some(chain) = &l.chain {
        line(
            "ledger chain",
            match &chain.error {
                None => "OK (the hash chain and the newest record; 'breakglass-ca log verify' checks every signature)".into(),
                Some(e) => format!("BROKEN: {}", e.error),
            },
        );
    }
    if let Some(cov) = &l.coverage {
        let total = cov.covered + cov.uncovered;
        if total > 0 {
            line(
                "signed",
                match cov.uncovered {
                    0 => format!("all {total} record(s) covered by a token signature"),
                    n => format!(
                        "{} of {total} record(s) covered by a token signature; the newest {n} not yet{}",
                        cov.covered,
                        match cov.uncovered_revocations {
                            0 => String::new(),
                            k => format!(
                                " ({k} revocation(s): the next certificate's ledger binding covers them)"
                            ),
                        }
                    ),
                },
            );
        }
        if cov.torn_tail {
            line("ledger tail", "a half-written record from an interrupted mint or revoke at the end (no certificate was handed out for it; the next mint sets it aside)".into());
        }
        if cov.unterminated {
            line("ledger tail", "the last record lost its final newline (an interrupted mint; its serial stays issued, the next mint restores the newline)".into());
        }
    }
    let v = &r.revocations;
    line(
        "revocations",
        match &v.newest {
            Some(newest) => format!(
                "{} record(s), the newest {}; KRL version {}",
                v.records,
                Esc(newest),
                v.krl_version
            ),
            None => "none (KRL version 0)".into(),
        },
    );
    if let Some(d) = &r.dual_control {
        let warning = if d.warning { "WARNING: " } else { "" };
        line("dual control", format!("{warning}{}", d.summary));
    }
    if r.ca.revoked == Some(true) {
        line(
            "CA revoked",
            "YES: this CA was revoked ('breakglass-ca log' shows when and why); mint refuses to issue from it".into(),
        );
    }
    if let Some(e) = &r.backup_cas_error {
        line("backup CAs", format!("UNREADABLE: {}", e.error));
    } else if r.backup_cas.is_empty() && c.found {
        line("backup CAs", "none in config.toml".into());
    }
    for b in &r.backup_cas {
        line(
            "backup CA",
            format!(
                "{} ({}, {}){}",
                b.fingerprint,
                b.algorithm,
                Esc(&b.comment),
                if b.revoked { " REVOKED" } else { "" }
            ),
        );
    }
    out
}

/// `attest`: the attestation chain, where the token can give one.
pub fn attest(g: &Globals) -> Result<()> {
    let config = g.config()?;
    let (_, key) = g.open_ca(config.as_ref(), false)?;
    let attest = key.attestation().ok_or_else(|| {
        Error::token("this token cannot attest its keys (only YubiKey PIV slots can)")
            .with_hint("for a PKCS#11 token, keep the vendor's key-generation record instead")
    })?;
    crate::cmd::write_stdout(&attest.attestation_pem()?)
}
