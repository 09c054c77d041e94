//! `add-backup-ca FILE`: trust a second CA (a backup token in another vault) alongside this
//! one. Its public key line goes into config.toml, and from there into the CA bundle, the key
//! sheet and the host configuration.

use std::path::Path;

use ssh_key::PublicKey;

use crate::backend::Algorithm;
use crate::cli::AddBackupCaArgs;
use crate::cmd::{read_input, Globals};
use crate::config::CONFIG_FILE;
use crate::error::{Error, Result};
use crate::export::{self, BACKUP_COMMENT};
use crate::ui::say;

pub fn run(g: &Globals, args: &AddBackupCaArgs) -> Result<()> {
    let Some(mut config) = g.config()? else {
        return Err(Error::config(format!(
            "no {CONFIG_FILE} in {}: a backup CA is added to this CA's configuration",
            g.state_dir.display()
        ))
        .with_hint("point --state-dir (or BREAKGLASS_CA_STATE_DIR) at the directory where 'breakglass-ca init' was run for the primary CA, or run init there first"));
    };
    let text = read_input(&args.file, "backup CA public key")?;
    let key = backup_key(&text, &args.file)?;
    let fp = export::fingerprint(key.key_data());
    if fp == config.fingerprint {
        return Err(Error::refused(format!(
            "{} is this CA's own key ({fp}), not a backup",
            args.file.display()
        ))
        .with_hint("give the public key of the OTHER token: run 'breakglass-ca pubkey -o backup-ca.pub' with the backup token and its own --state-dir"));
    }
    for line in &config.backup_ca_pubkeys {
        let listed = PublicKey::from_openssh(line.trim()).ok();
        if listed.as_ref().map(PublicKey::key_data) == Some(key.key_data()) {
            return Err(Error::refused(format!(
                "the backup CA {fp} is already listed in {}",
                g.state_dir.join(CONFIG_FILE).display()
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
            args.file.display(),
            export::shown_comment(&comment),
            export::COMMENT_RULE
        ));
    }
    say(format!(
        "Added backup CA {fp} ({algorithm}) to {}.",
        path.display()
    ));
    say(format!(
        "This CA and {} backup CA(s) are now trusted together.",
        config.backup_ca_pubkeys.len()
    ));
    say("Next: run 'breakglass-ca host-config ...' again and roll the new files out to every host image,");
    say("      and reprint the vault sheet ('breakglass-ca pubkey --format sheet -o FILE'), which lists the backups too.");
    Ok(())
}

/// Read the one public key line of a backup CA file and refuse anything that cannot be one.
fn backup_key(text: &str, file: &Path) -> Result<PublicKey> {
    let name = file.display();
    let hint = "give the backup CA's public key: the output of 'breakglass-ca pubkey' run with the backup token (one line starting ecdsa-sha2-…, ssh-ed25519 or ssh-rsa)";
    if text.contains("PRIVATE KEY-----") {
        return Err(Error::refused(format!(
            "{name} holds a PRIVATE key; only the backup CA's public key is needed"
        ))
        .with_hint("a CA private key belongs on its token only; a CA key that was ever in a file is exposed and must not be trusted"));
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let line = match lines.as_slice() {
        [] => {
            return Err(Error::refused(format!("{name} holds no public key line")).with_hint(hint))
        }
        [line] => *line,
        _ => {
            return Err(Error::refused(format!(
                "{name} holds {} key lines; add one backup CA at a time",
                lines.len()
            ))
            .with_hint(hint))
        }
    };
    let algorithm = line.split_whitespace().next().unwrap_or_default();
    if algorithm.contains("-cert-v01@openssh.com") {
        return Err(
            Error::refused(format!("{name} holds a certificate, not a CA public key"))
                .with_hint(hint),
        );
    }
    let key = PublicKey::from_openssh(line).map_err(|e| {
        Error::refused(format!("{name} is not an OpenSSH public key ({e})")).with_hint(hint)
    })?;
    if Algorithm::of_key(key.key_data()).is_none() {
        return Err(Error::refused(format!(
            "{name} holds a {algorithm} key, which cannot be a breakglass CA key"
        ))
        .with_hint("a CA key is ecdsa-p256, ecdsa-p384, ed25519 or RSA with 2048, 3072 or 4096 bits, made on a token with 'breakglass-ca init'"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPg1Q+KGCuYkBhj62eL5GTpL+Nz3uo3gA6grASzJ/8BuUX+8Lzh/y3w03WgmRPUQ7/PgOKfUhmp3NoHNj0geaAw= breakglass-ca";

    #[test]
    fn backup_key_refusals() {
        let f = Path::new("b.pub");
        let ok = backup_key(&format!("# backup\n\n{P256}\n"), f).unwrap();
        let (line, replaced) = export::backup_line(&ok).unwrap();
        assert!(line.ends_with(&format!(" {BACKUP_COMMENT}")), "{line}");
        assert_eq!(replaced, None);
        for (text, why) in [
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----\n",
                "PRIVATE",
            ),
            ("# nothing\n", "no public key line"),
            ("ssh-ed25519-cert-v01@openssh.com AAAA x\n", "certificate"),
            ("ssh-ed25519 AAAA!!\n", "not an OpenSSH public key"),
            (&format!("{P256}\n{P256}\n"), "2 key lines"),
        ] {
            let err = backup_key(text, f).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
