//! `status`: which token and key were found, the algorithm and fingerprint, the PIN state and
//! the ledger's last serial. Needs no PIN.

use crate::cmd::Globals;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::text::Esc;
use crate::ui;

pub fn run(g: &Globals) -> Result<()> {
    let config = g.config()?;
    let (uri, key) = g.open_ca(config.as_ref(), false)?;
    let info = key.info();
    let fingerprint = crate::key::fingerprint(key.public_key());
    let required = config.as_ref().is_some_and(|c| c.checkpoints);
    // Every record read, the chain walked and compared with the newest checkpoint (cheap: no
    // signature is checked; 'log verify' checks them all).
    let ledger = Ledger::new(&g.state_dir)
        .require_checkpoints(required)
        .summary(&fingerprint)?;
    let mut lines = vec![
        format!("CA URI:         {uri}"),
        format!("token:          {}", info.token),
        format!("key:            {}", info.key),
        format!("fingerprint:    {fingerprint}"),
        format!("PIN:            {}", info.pin),
        format!("state dir:      {}", Esc(&g.state_dir.to_string_lossy())),
    ];
    lines.push(match &config {
        Some(c) if c.fingerprint == fingerprint => {
            format!(
                "config:         matches this key (created {})",
                Esc(&c.created)
            )
        }
        Some(c) => format!(
            "config:         DOES NOT MATCH: config.toml is for the CA {}; this is another key",
            Esc(&c.fingerprint)
        ),
        None => "config:         none (run 'breakglass-ca init' or pass --state-dir)".into(),
    });
    if let Some(pin_use) = &info.pin_use {
        lines.push(format!("PIN use:        {pin_use}"));
    }
    if let Err(e) = &ledger.chain {
        lines.push(format!("ledger chain:   BROKEN: {e}"));
    }
    for (name, value) in &info.details {
        // The token's own facts (firmware, policies): untrusted text.
        lines.push(format!("{:<15} {}", format!("{}:", Esc(name)), Esc(value)));
    }
    lines.push(match &ledger.last {
        Some(r) => format!(
            "ledger:         {} certificate(s); last serial {} issued {} to {}",
            ledger.records,
            r.serial,
            Esc(&r.issued_at),
            Esc(&r.requester_comment)
        ),
        None => "ledger:         no certificate issued yet (next serial 1)".into(),
    });
    let revoked = &ledger.revoked;
    lines.push(match &revoked.newest {
        Some(newest) => format!(
            "revocations:    {} record(s), the newest {}; KRL version {}",
            revoked.records,
            Esc(newest),
            revoked.version
        ),
        None => "revocations:    none (KRL version 0)".into(),
    });
    if let Some(c) = &config {
        let (text, loud) = crate::cmd::mint_request::dual_text(c, &g.state_dir);
        lines.push(match loud {
            true => format!("dual control:   WARNING: {text}"),
            false => format!("dual control:   {text}"),
        });
    }
    let this = crate::ledger::revocation::key_line(key.public_key())?;
    if revoked.ca_keys.contains(&this) {
        lines.push(
            "CA revoked:     YES: this CA was revoked ('breakglass-ca log' shows when and why); mint refuses to issue from it"
                .into(),
        );
    }
    ui::print(lines.join("\n"))?;
    let config_mismatch = config
        .as_ref()
        .is_some_and(|c| c.fingerprint != fingerprint);
    if config_mismatch || ledger.chain.is_err() {
        return Err(Error::invalid("status found problems (see above)").with_hint(
            "a config mismatch means another token or key than this state directory's CA; a broken chain: run 'breakglass-ca log verify'",
        ));
    }
    Ok(())
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
