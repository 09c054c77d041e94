//! `init`: generate the CA key on the token, refuse to replace one without `--force`, write
//! config.toml and ca.pub, and print the public key line and fingerprint for the hosts.

use std::path::{Path, PathBuf};

use chrono::Utc;
use ssh_key::public::KeyData;

use crate::backend::piv::{self, InitOptions, MgmSource};
use crate::backend::pkcs11::{self, Existing};
use crate::backend::{Algorithm, CaKey};
use crate::checkpoint;
use crate::cli::{InitArgs, PinPolicyArg, TouchPolicyArg};
use crate::cmd::Globals;
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::export;
use crate::issue::rfc3339;
use crate::ledger::{Ledger, LEDGER_FILE};
use crate::pin::{Pin, PinSource};
use crate::signals::Deferral;
use crate::ui::say;
use crate::uri::{CaUri, Pkcs11Uri, YubikeyUri};

/// What an interrupted init says when it stopped before generating.
const NOTHING_GENERATED: &str = "no key was generated, the token and state directory are unchanged";

pub fn run(g: &Globals, args: &InitArgs) -> Result<()> {
    // Signals are deferred from the PIN on until config.toml and ca.pub are written (declared
    // first, so dropped after the token on every path).
    let signals = Deferral::new();
    let algorithm: Algorithm = args.algorithm.parse()?;
    let old_config = g.config()?;
    let uri = g.ca_uri(old_config.as_ref())?;
    let source = PinSource::choose(
        uri.pin_source().map(PathBuf::as_path),
        g.pin_file.as_deref(),
    );
    let (public, uri) = match &uri {
        CaUri::Pkcs11(p11) => init_pkcs11(p11, algorithm, args.force, &source, &signals)?,
        CaUri::Yubikey(yk) => init_piv(yk, algorithm, args, &source, &signals)?,
    };
    let fingerprint = export::fingerprint(&public);
    config::ensure_dir(&g.state_dir)?;
    retire_previous_ca(&g.state_dir, old_config.as_ref(), &fingerprint)?;
    let config = Config {
        ca: uri.to_string(),
        algorithm: algorithm.to_string(),
        fingerprint: fingerprint.clone(),
        created: rfc3339(Utc::now()),
        backup_ca_pubkeys: old_config
            .as_ref()
            .map(|c| c.backup_ca_pubkeys.clone())
            .unwrap_or_default(),
        checkpoints: old_config.as_ref().is_none_or(|c| c.checkpoints),
        policy: old_config.map(|c| c.policy).unwrap_or_default(),
    };
    let path = config.save(&g.state_dir)?;
    let line = export::openssh_line(&public)?;
    config::write_atomic(
        &g.state_dir.join(config::CA_PUB_FILE),
        format!("{line}\n").as_bytes(),
        0o644,
    )?;
    println!("{line}");
    say(format!("CA fingerprint: {fingerprint}"));
    say(format!("Configuration:  {}", path.display()));
    say("Next: put the line above into every host's TrustedUserCAKeys file ('breakglass-ca pubkey' prints it again, no PIN needed).");
    signals.finish(
        || "after the CA key was generated: init completed, config.toml and ca.pub were written".into(),
        || "the new CA is ready: 'breakglass-ca status' shows it, 'breakglass-ca pubkey' prints its line".into(),
    )
}

fn init_pkcs11(
    p11: &Pkcs11Uri,
    algorithm: Algorithm,
    force: bool,
    source: &PinSource,
    signals: &Deferral,
) -> Result<(KeyData, CaUri)> {
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
        if !force {
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
    let pin = crate::cmd::read_pin(
        signals,
        source,
        &existing.token().describe(),
        NOTHING_GENERATED,
    )?;
    existing.token().login(&pin)?;
    drop(pin);
    signals.stop_if_taken(
        || format!("before the key was generated: {NOTHING_GENERATED}"),
        || "nothing to clean up: run init again when ready".into(),
    )?;
    say(format!(
        "Generating the {algorithm} CA key '{label}' on the token (RSA can take a minute)"
    ));
    let key = pkcs11::generate(existing, algorithm, &label)?;
    Ok((key.public_key().clone(), CaUri::Pkcs11(key.uri(&p11))))
}

fn init_piv(
    yk: &YubikeyUri,
    algorithm: Algorithm,
    args: &InitArgs,
    source: &PinSource,
    signals: &Deferral,
) -> Result<(KeyData, CaUri)> {
    let mgm = match &args.management_key_file {
        Some(p) => MgmSource::File(p.clone()),
        None => MgmSource::CardOrPrompt,
    };
    let opts = InitOptions {
        algorithm,
        force: args.force,
        pin_policy: match args.pin_policy {
            PinPolicyArg::Never => yubikey::PinPolicy::Never,
            PinPolicyArg::Once => yubikey::PinPolicy::Once,
            PinPolicyArg::Always => yubikey::PinPolicy::Always,
        },
        touch_policy: match args.touch_policy {
            TouchPolicyArg::Never => yubikey::TouchPolicy::Never,
            TouchPolicyArg::Always => yubikey::TouchPolicy::Always,
            TouchPolicyArg::Cached => yubikey::TouchPolicy::Cached,
        },
        mgm,
        protect_management_key: args.protect_management_key,
    };
    let pin: Pin = crate::cmd::read_pin(
        signals,
        source,
        &format!("YubiKey slot {:02x}", yk.slot),
        NOTHING_GENERATED,
    )?;
    let key = piv::init(yk, &opts, &pin)?;
    // Pin the card by serial in the configuration, so another YubiKey is never picked up.
    let uri = YubikeyUri {
        serial: Some(key.serial()),
        ..yk.clone()
    };
    Ok((key.public_key().clone(), CaUri::Yubikey(uri)))
}

/// When the CA key changes, the previous CA's ledger, checkpoints and public key are renamed
/// aside together (`<name>-retired-<time>.<ext>`), never deleted: its records stay evidence and
/// stay verifiable, and the new CA starts its own serials at 1.
fn retire_previous_ca(dir: &Path, old: Option<&Config>, fingerprint: &str) -> Result<()> {
    let records = Ledger::new(dir).read()?;
    let ledger_foreign = records
        .last()
        .is_some_and(|(_, r)| r.ca_fingerprint != fingerprint);
    if !ledger_foreign && old.is_none_or(|c| c.fingerprint == fingerprint) {
        return Ok(());
    }
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    for name in [LEDGER_FILE, checkpoint::FILE, config::CA_PUB_FILE] {
        let from = dir.join(name);
        if from.exists() {
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            let to = dir.join(format!("{stem}-retired-{stamp}.{ext}"));
            std::fs::rename(&from, &to).map_err(|e| Error::file("set aside", &from, e))?;
        }
    }
    config::sync_dir(dir).map_err(|e| Error::file("sync", dir, e))?;
    if !records.is_empty() {
        say(format!(
            "The previous CA's ledger ({} records), checkpoints and ca.pub were kept as *-retired-{stamp}.*",
            records.len()
        ));
    }
    Ok(())
}
