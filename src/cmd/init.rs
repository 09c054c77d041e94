//! `init`: generate the CA key on the token, refuse to replace one without `--force`, write
//! config.toml, and print the public key line and fingerprint for the hosts.

use std::path::PathBuf;

use chrono::Utc;

use crate::backend::pkcs11::{self, Existing};
use crate::backend::{self, Algorithm, CaKey};
use crate::cli::InitArgs;
use crate::cmd::Globals;
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::export;
use crate::issue::rfc3339;
use crate::ledger::{Ledger, LEDGER_FILE};
use crate::pin::PinSource;
use crate::ui::say;
use crate::uri::CaUri;

pub fn run(g: &Globals, args: &InitArgs) -> Result<()> {
    let algorithm: Algorithm = args.algorithm.parse()?;
    let old_config = g.config()?;
    let uri = g.ca_uri(old_config.as_ref())?;
    let CaUri::Pkcs11(p11) = &uri else {
        return Err(backend::yubikey_unavailable());
    };
    if algorithm == Algorithm::Rsa2048 {
        return Err(Error::usage("rsa-2048 is only offered for YubiKey PIV slots")
            .with_hint("on a PKCS#11 token use ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-3072 or rsa-4096"));
    }
    let (existing, p11) = pkcs11::open_for_init(p11)?;
    let label = p11
        .object
        .clone()
        .unwrap_or_else(|| pkcs11::DEFAULT_LABEL.into());
    if let Existing::Key(old) = &existing {
        let fp = export::fingerprint(old.public_key());
        if !args.force {
            return Err(Error::token(format!(
                "a CA key '{label}' already exists on {} ({}, {fp})",
                existing.token().describe(),
                old.algorithm()
            ))
            .with_hint("every host trusts that key; to keep it, use 'breakglass-ca pubkey'. To replace it (and re-provision every host), run init again with --force"));
        }
        say(format!(
            "WARNING: --force: the existing CA key {fp} will be DELETED; hosts trusting it will refuse new certificates until they get the new key"
        ));
    }
    say(format!("Token: {}", existing.token().describe()));
    say(format!(
        "Generating a {algorithm} CA key '{label}' on the token (this can take a while for RSA)"
    ));
    let source = PinSource::choose(
        uri.pin_source().map(PathBuf::as_path),
        g.pin_file.as_deref(),
    );
    let pin = source.read(&existing.token().describe())?;
    existing.token().login(&pin)?;
    drop(pin);
    let key = pkcs11::generate(existing, algorithm, &label)?;
    let fingerprint = export::fingerprint(key.public_key());

    config::ensure_dir(&g.state_dir)?;
    retire_foreign_ledger(&g.state_dir, &fingerprint)?;
    let config = Config {
        ca: CaUri::Pkcs11(key.uri(&p11)).to_string(),
        algorithm: algorithm.to_string(),
        fingerprint: fingerprint.clone(),
        created: rfc3339(Utc::now()),
        checkpoints: old_config.as_ref().is_none_or(|c| c.checkpoints),
        policy: old_config.map(|c| c.policy).unwrap_or_default(),
    };
    let path = config.save(&g.state_dir)?;
    let line = export::openssh_line(key.public_key())?;
    config::write_atomic(
        &g.state_dir.join(config::CA_PUB_FILE),
        format!("{line}\n").as_bytes(),
        0o644,
    )?;
    println!("{line}");
    say(format!("CA fingerprint: {fingerprint}"));
    say(format!("Configuration:  {}", path.display()));
    say("Next: put the line above into every host's TrustedUserCAKeys file ('breakglass-ca pubkey' prints it again, no PIN needed).");
    Ok(())
}

/// A ledger left by another CA key in this state directory is renamed aside, never deleted:
/// its records stay evidence, and the new CA starts its own serials at 1.
fn retire_foreign_ledger(dir: &std::path::Path, fingerprint: &str) -> Result<()> {
    let ledger = Ledger::new(dir);
    let records = ledger.read()?;
    match records.last() {
        Some((_, last)) if last.ca_fingerprint != fingerprint => {
            let to = dir.join(format!(
                "ledger-retired-{}.jsonl",
                Utc::now().format("%Y%m%dT%H%M%SZ")
            ));
            std::fs::rename(ledger.path(), &to)
                .map_err(|e| Error::file("retire the old ledger", &dir.join(LEDGER_FILE), e))?;
            config::sync_dir(dir).map_err(|e| Error::file("sync", dir, e))?;
            say(format!(
                "The previous CA's ledger ({} records) was kept as {}",
                records.len(),
                to.display()
            ));
            Ok(())
        }
        _ => Ok(()),
    }
}
