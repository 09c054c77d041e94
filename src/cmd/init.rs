//! `init`: generate the CA key on the token, refuse to replace one without `--force`, write
//! config.toml and ca.pub, and print the public key line and fingerprint for the hosts.

use std::path::Path;

use chrono::Utc;
use ssh_key::public::KeyData;

use crate::backend::piv::{self, InitOptions, MgmSource};
use crate::backend::pkcs11::{self, Existing};
use crate::backend::CaKey;
use crate::cli::{InitArgs, PinPolicyArg, TouchPolicyArg};
use crate::cmd::Globals;
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::fsx;
use crate::issue::rfc3339;
use crate::key::{self, Algorithm};
use crate::ledger::checkpoint;
use crate::ledger::{Ledger, LEDGER_FILE};
use crate::pin::{Pin, PinSource};
use crate::signals::Deferral;
use crate::text::ShowPath;
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
    check_algorithm(&uri, algorithm)?;
    // A state directory that already has a CA is never taken over without --force, whatever
    // the token holds: a blank token in the reader must not retire the live CA.
    if !args.force {
        if let Some(what) = live_ca(&g.state_dir, old_config.as_ref())? {
            return Err(Error::refused(format!(
                "the state directory {} already holds a CA ({what})",
                g.state_dir.shown()
            ))
            .with_hint("hosts trust that CA and its ledger is evidence. To look at it: 'breakglass-ca status'. To create another CA (a backup token, a new token), give init a new --state-dir. To replace this CA deliberately (its files are kept as *-retired-*), run init again with --force"));
        }
    }
    let (source, from) = g.pin_source(&uri)?;
    say(format!("PIN from:       {from}"));
    let (public, uri) = match &uri {
        CaUri::Pkcs11(p11) => init_pkcs11(p11, algorithm, args.force, &source, &signals)?,
        CaUri::Yubikey(yk) => init_piv(yk, algorithm, args, &source, &signals)?,
    };
    let fingerprint = key::fingerprint(&public);
    fsx::ensure_dir(&g.state_dir)?;
    // Under the ledger lock: no mint runs while the files change.
    let _lock = crate::cmd::ledger(&g.state_dir).exclusive()?;
    retire_previous_ca(&g.state_dir, old_config.as_ref(), &fingerprint, Utc::now())?;
    let config = Config {
        ca: uri.clone(),
        algorithm: algorithm.to_string(),
        fingerprint: fingerprint.clone(),
        created: rfc3339(Utc::now()),
        backup_ca_pubkeys: old_config
            .as_ref()
            .map(|c| c.backup_ca_pubkeys.clone())
            .unwrap_or_default(),
        checkpoints: old_config.as_ref().is_none_or(|c| c.checkpoints),
        require_possession: false,
        approvers_file: None,
        required_approvals: 0,
        max_request_age: None,
        backup_dir: old_config.as_ref().and_then(|c| c.backup_dir.clone()),
        policy: old_config.map(|c| c.policy).unwrap_or_default(),
    };
    let path = config.save(&g.state_dir)?;
    let line = key::openssh_line(&public)?;
    fsx::write_atomic(
        &g.state_dir.join(config::CA_PUB_FILE),
        format!("{line}\n").as_bytes(),
        fsx::PRIVATE_FILE,
    )?;
    println!("{line}");
    say(format!("CA fingerprint: {fingerprint}"));
    say(format!("Configuration:  {}", path.shown()));
    say("Next: put the line above into every host's TrustedUserCAKeys file ('breakglass-ca pubkey' prints it again, no PIN needed).");
    signals.finish(
        || "after the CA key was generated: init completed, config.toml and ca.pub were written".into(),
        || "the new CA is ready: 'breakglass-ca status' shows it, 'breakglass-ca pubkey' prints its line".into(),
    )
}

/// The algorithm must be one this kind of token offers: a usage error before anything else.
fn check_algorithm(uri: &CaUri, algorithm: Algorithm) -> Result<()> {
    match uri {
        CaUri::Pkcs11(_) if algorithm == Algorithm::Rsa2048 => Err(Error::usage(
            "rsa-2048 is only offered for YubiKey PIV slots",
        )
        .with_hint(
            "on a PKCS#11 token use ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-3072 or rsa-4096",
        )),
        CaUri::Pkcs11(_) => Ok(()),
        CaUri::Yubikey(_) => piv::algorithm_id(algorithm).map(|_| ()),
    }
}

fn init_pkcs11(
    p11: &Pkcs11Uri,
    algorithm: Algorithm,
    force: bool,
    source: &PinSource,
    signals: &Deferral,
) -> Result<(KeyData, CaUri)> {
    let (existing, p11) = pkcs11::open_for_init(p11)?;
    let label = p11
        .object
        .clone()
        .unwrap_or_else(|| pkcs11::DEFAULT_LABEL.into());
    if let Existing::Key(old) = &existing {
        let fp = key::fingerprint(old.public_key());
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
    let key = piv::init(yk, &opts, &pin, std::sync::Arc::new(crate::ui::Terminal))?;
    // Pin the card by serial in the configuration, so another YubiKey is never picked up.
    let uri = YubikeyUri {
        serial: Some(key.serial()),
        ..yk.clone()
    };
    Ok((key.public_key().clone(), CaUri::Yubikey(uri)))
}

/// What in `dir` shows that it already belongs to a CA: config.toml, ca.pub, a ledger or
/// checkpoints that are not empty. `None` for a new or empty state directory.
fn live_ca(dir: &Path, config: Option<&Config>) -> Result<Option<String>> {
    let mut found = Vec::new();
    if let Some(c) = config {
        found.push(format!(
            "{} for the CA {}",
            config::CONFIG_FILE,
            c.fingerprint
        ));
    } else if exists(&dir.join(config::CONFIG_FILE)) {
        found.push(config::CONFIG_FILE.to_string());
    }
    if exists(&dir.join(config::CA_PUB_FILE)) {
        found.push(config::CA_PUB_FILE.to_string());
    }
    let nonempty = |name: &str| {
        std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.len() > 0 || !m.is_file())
    };
    if nonempty(LEDGER_FILE) {
        found.push(match Ledger::new(dir).read() {
            Ok(records) => format!("{LEDGER_FILE} with {} record(s)", records.len()),
            Err(_) => format!("{LEDGER_FILE} (damaged)"),
        });
    }
    if nonempty(checkpoint::FILE) {
        found.push(checkpoint::FILE.to_string());
    }
    Ok((!found.is_empty()).then(|| found.join(", ")))
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The files of a CA that `init --force` sets aside when the key changes.
const RETIRED: [&str; 4] = [
    LEDGER_FILE,
    checkpoint::FILE,
    config::CA_PUB_FILE,
    config::CONFIG_FILE,
];

/// `ledger.jsonl` -> `ledger-retired-<stamp>.jsonl`.
fn retired_name(name: &str, stamp: &str) -> String {
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    format!("{stem}-retired-{stamp}.{ext}")
}

/// When the CA key changes, the previous CA's ledger, checkpoints, public key and
/// configuration are renamed aside together (`<name>-retired-<time>.<ext>`), never deleted
/// and never over an earlier retired set: its records stay evidence and stay verifiable, and
/// the new CA starts its own serials at 1. The caller holds the ledger lock.
fn retire_previous_ca(
    dir: &Path,
    old: Option<&Config>,
    fingerprint: &str,
    now: chrono::DateTime<Utc>,
) -> Result<()> {
    if old.is_some_and(|c| c.fingerprint == fingerprint) {
        return Ok(());
    }
    let present: Vec<&str> = RETIRED
        .into_iter()
        .filter(|n| exists(&dir.join(n)))
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let records = Ledger::new(dir).read().map(|r| r.len()).ok();
    let base = now.format("%Y%m%dT%H%M%S%.9fZ").to_string();
    let stamp = (0..1000u32)
        .map(|n| match n {
            0 => base.clone(),
            n => format!("{base}-{n}"),
        })
        .find(|stamp| {
            RETIRED
                .iter()
                .all(|n| !exists(&dir.join(retired_name(n, stamp))))
        })
        .ok_or_else(|| {
            Error::config(format!(
                "cannot find a free name for the retired files in {}",
                dir.shown()
            ))
        })?;
    for name in &present {
        fsx::rename_new(&dir.join(name), &dir.join(retired_name(name, &stamp)))?;
    }
    fsx::sync_dir(dir).map_err(|e| Error::file("sync", dir, e))?;
    say(format!(
        "The previous CA's files ({}{}) were kept as *-retired-{stamp}.*",
        present.join(", "),
        records.map_or(String::new(), |n| format!("; {n} ledger record(s)"))
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut all: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        all.sort();
        all
    }

    #[test]
    fn retirements_in_the_same_instant_keep_every_set() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        for round in 0..3 {
            for name in RETIRED {
                std::fs::write(dir.path().join(name), format!("{name} {round}")).unwrap();
            }
            retire_previous_ca(dir.path(), None, "SHA256:new", now).unwrap();
            for name in RETIRED {
                assert!(!exists(&dir.path().join(name)), "{name} left in place");
            }
        }
        let files = snapshot(dir.path());
        assert_eq!(files.len(), 12, "{files:?}");
        for name in RETIRED {
            for round in 0..3 {
                let content = format!("{name} {round}").into_bytes();
                assert!(
                    files
                        .iter()
                        .any(|(n, c)| n.contains("-retired-") && *c == content),
                    "{name} of round {round} was lost: {files:?}"
                );
            }
        }
    }

    #[test]
    fn a_live_state_directory_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(live_ca(dir.path(), None).unwrap(), None);
        std::fs::write(dir.path().join(LEDGER_FILE), "").unwrap();
        assert_eq!(live_ca(dir.path(), None).unwrap(), None);
        std::fs::write(dir.path().join(LEDGER_FILE), "x\n").unwrap();
        assert_eq!(
            live_ca(dir.path(), None).unwrap().as_deref(),
            Some("ledger.jsonl (damaged)")
        );
        std::fs::write(dir.path().join(config::CA_PUB_FILE), "k").unwrap();
        assert!(live_ca(dir.path(), None)
            .unwrap()
            .unwrap()
            .contains("ca.pub"));
    }
}
