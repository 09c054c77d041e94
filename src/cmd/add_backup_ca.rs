//! `add-backup-ca [--label TEXT] FILE`: trust a second CA (a backup token in another vault)
//! alongside this one. Its public key line goes into config.toml, and from there into the CA
//! bundle, the key sheet and the host configuration. `--label` names its token on the key
//! sheet: it is the line's comment (plain text only, see `export::plain_comment`), so no
//! configuration format changes; given for a key already listed, it relabels it.

use ssh_key::PublicKey;

use crate::cli::AddBackupCaArgs;
use crate::cmd::{read_input, Globals};
use crate::config::CONFIG_FILE;
use crate::error::{Error, Result};
use crate::export::{self, BACKUP_COMMENT};
use crate::key::{self, Algorithm};
use crate::text::ShowPath;
use crate::ui::say;

pub fn run(g: &Globals, args: &AddBackupCaArgs) -> Result<()> {
    let Some(mut config) = g.config()? else {
        return Err(Error::config(format!(
            "no {CONFIG_FILE} in {}: a backup CA is added to this CA's configuration",
            g.state_dir.shown()
        ))
        .with_hint("point --state-dir (or BREAKGLASS_CA_STATE_DIR) at the directory where 'breakglass-ca init' was run for the primary CA, or run init there first"));
    };
    let label = args.label.as_deref().map(check_label).transpose()?;
    let text = read_input(&args.file, "backup CA public key")?;
    let mut key = key::backup_ca_key(&text, &args.file)?;
    if let Some(label) = label {
        key = PublicKey::new(key.key_data().clone(), label);
    }
    let fp = key::fingerprint(key.key_data());
    if fp == config.fingerprint {
        return Err(Error::refused(format!(
            "{} is this CA's own key ({fp}), not a backup",
            args.file.shown()
        ))
        .with_hint("give the public key of the OTHER token: run 'breakglass-ca pubkey -o backup-ca.pub' with the backup token and its own --state-dir"));
    }
    let listed = config.backup_ca_pubkeys.iter().position(|line| {
        PublicKey::from_openssh(line.trim()).is_ok_and(|listed| listed.key_data() == key.key_data())
    });
    let (line, replaced) = export::backup_line(&key)?;
    let algorithm = Algorithm::of_key(key.key_data()).map_or("unknown", Algorithm::name);
    match (listed, label) {
        (Some(i), Some(label)) => {
            config.backup_ca_pubkeys[i] = line;
            let path = config.save(&g.state_dir)?;
            println!("{fp}");
            say(format!(
                "Backup CA {fp} ({algorithm}) in {} is now labelled '{label}'.",
                path.shown()
            ));
            say("Next: reprint the vault sheet ('breakglass-ca pubkey --format sheet -o FILE'); host-config puts the new label into the bundle's comment.");
            return Ok(());
        }
        (Some(_), None) => {
            return Err(Error::refused(format!(
                "the backup CA {fp} is already listed in {}",
                g.state_dir.join(CONFIG_FILE).shown()
            ))
            .with_hint("nothing to do ('breakglass-ca pubkey --bundle' shows every CA line); to name its token on the key sheet, give --label TEXT"));
        }
        (None, _) => config.backup_ca_pubkeys.push(line),
    }
    let path = config.save(&g.state_dir)?;
    println!("{fp}");
    if let Some(comment) = replaced {
        say(format!(
            "note: the key's comment in {} is not plain text ({}); it is stored as '{BACKUP_COMMENT}' ({})",
            args.file.shown(),
            export::shown_comment(&comment),
            export::COMMENT_RULE
        ));
    }
    match label {
        Some(label) => say(format!(
            "Added backup CA {fp} ({algorithm}, token '{label}') to {}.",
            path.shown()
        )),
        None => say(format!(
            "Added backup CA {fp} ({algorithm}) to {}; the key sheet has a field for its token's label and serial (or give them with --label TEXT).",
            path.shown()
        )),
    }
    say(format!(
        "This CA and {} backup CA(s) are now trusted together.",
        config.backup_ca_pubkeys.len()
    ));
    say("Next: run 'breakglass-ca host-config ...' again and roll the new files out to every host image,");
    say("      and reprint the vault sheet ('breakglass-ca pubkey --format sheet -o FILE'), which lists the backups too.");
    Ok(())
}

/// `--label TEXT`: plain text as a comment of a CA line may hold ([`export::plain_comment`]),
/// trimmed.
fn check_label(label: &str) -> Result<&str> {
    export::plain_comment(label).ok_or_else(|| {
        Error::usage(format!(
            "--label '{}' cannot name the token: {}",
            crate::text::Esc(label),
            export::COMMENT_RULE
        ))
        .with_hint("e.g. --label 'YubiKey 5 NFC serial 23456789'")
    })
}
