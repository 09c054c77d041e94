//! `doctor`: the findings of [`crate::doctor`] for a stressed custodian, one line each with
//! its level and, below it, the next step; or JSON with `--json`. Exit 1 if any is serious.
//! No PIN, nothing changed.

use std::path::PathBuf;

use crate::cli::DoctorArgs;
use crate::cmd::status::open_and_gather;
use crate::cmd::Globals;
use crate::doctor::{self, Finding, Level};
use crate::error::{Error, Result};
use crate::pin::PinSource;
use crate::status::Problem;
use crate::text::{self, ShowPath};
use crate::ui;

pub fn run(g: &Globals, args: &DoctorArgs) -> Result<()> {
    // A config.toml that cannot be used is a finding, not the end: the rest is still checked
    // (without loading the module it names).
    let config = g.config();
    let opened = open_and_gather(g, config.as_ref().map(Option::as_ref));
    let cfg = config.as_ref().ok().and_then(Option::as_ref);
    let uri = match (cfg, &g.ca) {
        (Some(_), _) | (None, Some(_)) => g.ca_uri(cfg).ok(),
        (None, None) => None,
    };
    let (source, pin_conflict) = match uri.as_ref().map(|u| g.pin_source(u)) {
        Some(Ok((source, _))) => (source, None),
        Some(Err(e)) => (PinSource::Prompt, Some(Problem::from(&e))),
        None => (PinSource::choose(None, g.pin_file.as_deref()), None),
    };
    let pin_file: Option<PathBuf> = match source {
        PinSource::File(p) => Some(p),
        PinSource::Prompt => None,
    };
    let findings = doctor::check(&doctor::Inputs {
        report: &opened.report,
        state_dir: &g.state_dir,
        backup_dir: cfg.and_then(|c| c.backup_dir.as_deref()),
        pin_file: pin_file.as_deref(),
        pin_conflict,
        uid: rustix::process::geteuid().as_raw(),
    });
    let (serious, warnings, fine) = doctor::counts(&findings);
    if args.json {
        let value = Json {
            format: 1,
            state_dir: g.state_dir.to_string_lossy().into_owned(),
            serious,
            warnings,
            ok: fine,
            findings: &findings,
        };
        let json = text::json_ascii(&value, true)
            .map_err(|e| Error::json("cannot build the JSON output", e))?;
        crate::cmd::write_stdout(&format!("{json}\n"))?;
    } else {
        ui::print(render(&g.state_dir.shown(), &findings))?;
    }
    match findings.iter().find(|f| f.level == Level::Serious) {
        None => Ok(()),
        Some(first) => Err(Error::invalid(format!(
            "doctor found {serious} serious problem(s); the first: {}: {}",
            first.check, first.what
        ))
        .with_hint(
            "do what each SERIOUS finding's next step says, then run 'breakglass-ca doctor' again",
        )),
    }
}

/// `doctor --json`.
#[derive(serde::Serialize)]
struct Json<'a> {
    format: u32,
    state_dir: String,
    serious: usize,
    warnings: usize,
    ok: usize,
    findings: &'a [Finding],
}

/// The text: a header, each finding (`SERIOUS  token: …`, its next step below), the counts.
pub fn render(state_dir: &str, findings: &[Finding]) -> String {
    let mut out = format!("breakglass-ca doctor: state directory {state_dir}\n");
    for f in findings {
        out.push_str(&format!("\n{:<8} {}: {}", f.level.word(), f.check, f.what));
        if let Some(next) = &f.next {
            out.push_str(&format!("\n{:<8} next: {next}", ""));
        }
    }
    let (serious, warnings, fine) = doctor::counts(findings);
    out.push_str(&format!(
        "\n\n{serious} SERIOUS, {warnings} warning(s), {fine} ok{}",
        match (serious, warnings) {
            (0, 0) => ": ready",
            (0, _) => ": ready; fix the warnings when there is time",
            _ => ": fix the SERIOUS ones before minting",
        }
    ));
    out
}
