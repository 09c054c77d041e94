//! `add-backup-ca FILE`: trust a second CA (a backup token in another vault) alongside this
//! one. Its public key line goes into config.toml, and from there into the CA bundle, the key
//! sheet and the host configuration.

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
    let text = read_input(&args.file, "backup CA public key")?;
    let key = key::backup_ca_key(&text, &args.file)?;
    let fp = key::fingerprint(key.key_data());
    if fp == config.fingerprint {
        return Err(Error::refused(format!(
            "{} is this CA's own key ({fp}), not a backup",
            args.file.shown()
        ))
        .with_hint("give the public key of the OTHER token: run 'breakglass-ca pubkey -o backup-ca.pub' with the backup token and its own --state-dir"));
    }
    for line in &config.backup_ca_pubkeys {
        let listed = PublicKey::from_openssh(line.trim()).ok();
        if listed.as_ref().map(PublicKey::key_data) == Some(key.key_data()) {
            return Err(Error::refused(format!(
                "the backup CA {fp} is already listed in {}",
                g.state_dir.join(CONFIG_FILE).shown()
            ))
            .with_hint("nothing to do; 'breakglass-ca pubkey --bundle' shows every CA line"));
        }
    }
    let algorithm = Algorithm::of_key(key.key_data()).map_or("unknown", Algorithm::name);
    let (line, replaced) = export::backup_line(&key)?;
    config.backup_ca_pubkeys.push(line);
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
    say(format!(
        "Added backup CA {fp} ({algorithm}) to {}.",
        path.shown()
    ));
    say(format!(
        "This CA and {} backup CA(s) are now trusted together.",
        config.backup_ca_pubkeys.len()
    ));
    say("Next: run 'breakglass-ca host-config ...' again and roll the new files out to every host image,");
    say("      and reprint the vault sheet ('breakglass-ca pubkey --format sheet -o FILE'), which lists the backups too.");
    Ok(())
}
