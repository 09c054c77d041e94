//! Benchmark helper (not part of the product binary): append COUNT records to the ledger of a
//! state directory in one process, through the same issuance path as `mint`: the CA opened
//! and logged in once, the ledger locked (again every 500 records), and `issue::issue` COUNT times (a certificate
//! and, with `checkpoints = true`, a checkpoint signed by the token for each).
//!
//!   cargo run --release --example gen_ledger -- STATE_DIR PIN_FILE USER.pub COUNT
//!
//! `scripts/bench.sh` uses it to make large ledgers for `log verify`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use breakglass_ca::cert::CertOptions;
use breakglass_ca::config::Config;
use breakglass_ca::issue::{issue, MintRequest, SystemClock};
use breakglass_ca::ledger::Ledger;
use breakglass_ca::policy::ValidityRequest;
use breakglass_ca::{backend, pin, ui, Error, Result};

/// How many records are appended under one lock.
const RELOCK_EVERY: u64 = 500;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, pin_file, user, count] = args.as_slice() else {
        eprintln!("usage: gen_ledger STATE_DIR PIN_FILE USER.pub COUNT");
        return ExitCode::from(2);
    };
    match run(Path::new(dir), Path::new(pin_file), Path::new(user), count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_ledger: {}", breakglass_ca::text::Esc(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path, pin_file: &Path, user: &Path, count: &str) -> Result<()> {
    let count: u64 = count
        .parse()
        .map_err(|_| Error::usage(format!("COUNT must be a number, not {count}")))?;
    let config = Config::load(dir)?
        .ok_or_else(|| Error::usage(format!("{} holds no config.toml", dir.display())))?;
    let mut key = backend::open(&config.ca, Arc::new(ui::Terminal))?;
    let (pin, _) = pin::read_pin_file(pin_file)?;
    key.login(&pin)?;
    drop(pin);
    let line = breakglass_ca::fsx::read_text(user, breakglass_ca::fsx::limit::KEY_FILE, "key")?;
    let subject = ssh_key::PublicKey::from_openssh(line.trim())
        .map_err(|e| Error::ssh("cannot read the user key", e))?;
    let ledger = Ledger::new(dir).require_checkpoints(config.checkpoints);
    let mut locked = ledger.lock(&config.fingerprint)?;
    for i in 0..count {
        if i > 0 && i % RELOCK_EVERY == 0 {
            // A lock held across many appends re-reads all of them before each (see
            // `Locked::check_unchanged`): take it again now and then, as mint does each time.
            drop(locked);
            locked = ledger.lock(&config.fingerprint)?;
        }
        let req = MintRequest {
            subject: subject.clone(),
            requester: "bench".into(),
            principals: vec!["breakglass".into()],
            reason: format!("bench record {i}"),
            key_id: None,
            validity: ValidityRequest::default(),
            options: CertOptions::default(),
            dual: None,
        };
        issue(
            key.as_ref(),
            &mut locked,
            &config.policy,
            &req,
            &SystemClock,
        )?;
    }
    Ok(())
}
