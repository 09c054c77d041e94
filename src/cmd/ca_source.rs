//! Where a command's CA public key comes from, decided in one place: the token the CA URI
//! selects (no PIN), checked against `config.toml` and `STATE/ca.pub`; `STATE/ca.pub` when
//! that token is not plugged in, checked against `config.toml`; or public key files given on
//! the command line (an auditor's or an image builder's own copies). `pubkey` and
//! `host-config` take [`Globals::ca_source`], `log verify` [`Globals::verify_source`],
//! `inspect` and `krl` [`Globals::ca_pub`].

use std::path::{Path, PathBuf};

use ssh_key::public::KeyData;
use ssh_key::PublicKey;

use crate::backend::{self, CaKey, Presence};
use crate::cmd::Globals;
use crate::config::{Config, CA_PUB_FILE};
use crate::error::{Error, Result};
use crate::fsx;
use crate::key::{self, Lines, NotOneLine};
use crate::text::{Esc, ShowPath};
use crate::uri::CaUri;

/// A CA public key read from a file, and the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaFile {
    pub path: PathBuf,
    pub key: KeyData,
}

impl CaFile {
    pub fn fingerprint(&self) -> String {
        key::fingerprint(&self.key)
    }
}

/// Where the CA public key came from.
pub enum CaSource {
    /// The token the URI selects, opened without a PIN. When it is meant to be this state
    /// directory's CA, its key matched `config.toml`, and `ca.pub` if there is one.
    Token { uri: CaUri, key: Box<dyn CaKey> },
    /// `STATE/ca.pub`, which matched `config.toml`'s fingerprint (and `uri` is its URI, if
    /// there is one). `absent`: it stands in for the token, which is not plugged in (what
    /// was looked for); `None`: the command reads it first (`log verify`).
    CaPub {
        uri: Option<CaUri>,
        file: CaFile,
        absent: Option<String>,
    },
    /// Public key files given on the command line (`--ca-pubkey FILE`), this CA first, then
    /// any backup CAs; never empty. No token and no state directory involved.
    Files(Vec<CaFile>),
}

impl CaSource {
    /// The CA public key (with [`CaSource::Files`], the first file's).
    pub fn public_key(&self) -> &KeyData {
        match self {
            CaSource::Token { key, .. } => key.public_key(),
            CaSource::CaPub { file, .. } => &file.key,
            CaSource::Files(files) => &files[0].key,
        }
    }

    /// The CA URI: the token's, or `config.toml`'s for `ca.pub`; none for key files.
    pub fn uri(&self) -> Option<&CaUri> {
        match self {
            CaSource::Token { uri, .. } => Some(uri),
            CaSource::CaPub { uri, .. } => uri.as_ref(),
            CaSource::Files(_) => None,
        }
    }

    /// The open token, if the key came from one.
    pub fn token(&self) -> Option<&dyn CaKey> {
        match self {
            CaSource::Token { key, .. } => Some(key.as_ref()),
            _ => None,
        }
    }

    /// The key files after the first (backup CAs given on the command line).
    pub fn backup_files(&self) -> &[CaFile] {
        match self {
            CaSource::Files(files) => &files[1..],
            _ => &[],
        }
    }

    /// The stderr line saying where the CA key came from and what it was checked against.
    pub fn describe(&self, state_dir: &Path, config: Option<&Config>) -> String {
        let fp = key::fingerprint(self.public_key());
        let checked = match config {
            Some(c) if c.fingerprint == fp => {
                format!("matches config.toml's fingerprint {fp}")
            }
            Some(c) => format!(
                "fingerprint {fp}, not the CA of config.toml ({})",
                Esc(&c.fingerprint)
            ),
            None => format!("fingerprint {fp} (no config.toml to check it against)"),
        };
        match self {
            CaSource::Token { key, .. } => {
                let ca_pub = state_dir.join(CA_PUB_FILE);
                let also = match config {
                    Some(c) if c.fingerprint == fp && exists(&ca_pub) => {
                        format!(", as {} does", ca_pub.shown())
                    }
                    _ => String::new(),
                };
                let token = key.info().token;
                // "token 'LABEL' (…)" for PKCS#11, "YubiKey serial N (…)" for PIV.
                let token = token.strip_prefix("token ").unwrap_or(&token);
                format!("CA key: from the token {token}, {checked}{also}")
            }
            CaSource::CaPub { file, absent, .. } => {
                let why = match absent {
                    Some(what) => format!(" (token not plugged in: {what})"),
                    None => String::new(),
                };
                format!("CA key: from {}{why}, {checked}", file.path.shown())
            }
            CaSource::Files(files) => {
                let checked = match config {
                    Some(_) => checked,
                    None => format!("fingerprint {fp}"),
                };
                let mut out = format!(
                    "CA key: from {} (given on the command line), {checked}",
                    files[0].path.shown()
                );
                for (i, f) in files[1..].iter().enumerate() {
                    out.push_str(&format!(
                        "\nbackup CA {}: from {} ({})",
                        i + 1,
                        f.path.shown(),
                        f.fingerprint()
                    ));
                }
                out
            }
        }
    }
}

/// Whether something is at `path` (a link counts: reading it is refused later).
fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

impl Globals {
    /// The CA public key for the commands that only export it (`pubkey`, `host-config`): the
    /// token the CA URI selects, else, when no such token is plugged in, `STATE/ca.pub`.
    ///
    /// When the key is meant to be this state directory's CA (`strict`, or `--ca` not given
    /// or naming config.toml's URI), the token's key must be config.toml's and `ca.pub` (if
    /// there is one) must hold that same key. `ca.pub` stands in for the token only for
    /// config.toml's URI, after matching config.toml's fingerprint: a `--ca` naming another
    /// key needs that token. A failure other than "not plugged in" (a module that does not
    /// load, several matching tokens, a token without the key) is never hidden by `ca.pub`.
    pub fn ca_source(&self, config: Option<&Config>, strict: bool) -> Result<CaSource> {
        let uri = self.ca_uri(config)?;
        // config.toml's own URI: `ca.pub` describes the key it names.
        let own = config.filter(|c| self.ca.is_none() || uri == c.ca);
        let checked = config.filter(|_| strict || own.is_some());
        let opened = backend::open_if_present(&uri, std::sync::Arc::new(crate::ui::Terminal))?;
        match opened {
            Presence::Present(key) => {
                if let Some(c) = checked {
                    self.check_token_key(c, key.public_key())?;
                    self.check_ca_pub_is(c, key.public_key())?;
                }
                Ok(CaSource::Token { uri, key })
            }
            Presence::Absent(absent) => {
                let Some(c) = own else {
                    return Err(absent.error);
                };
                match self.ca_pub(Some(c))? {
                    Some(file) => Ok(CaSource::CaPub {
                        uri: Some(uri),
                        file,
                        absent: Some(absent.what),
                    }),
                    None => {
                        let hint = absent.error.hint().unwrap_or_default();
                        Err(absent.error.with_hint(format!(
                            "{hint}; without the token, {} would stand in for it, but it is missing: restore it from the backup of the state directory (the key line on the key sheet is the same)",
                            self.state_dir.join(CA_PUB_FILE).shown()
                        )))
                    }
                }
            }
        }
    }

    /// The token's key must be the CA `config` names (another token behind the same URI is
    /// refused).
    pub fn check_token_key(&self, config: &Config, key: &KeyData) -> Result<()> {
        let fp = key::fingerprint(key);
        if config.fingerprint == fp {
            return Ok(());
        }
        Err(Error::token(format!(
            "the key on this token ({fp}) is not the CA configured in {} ({})",
            self.state_dir.shown(),
            Esc(&config.fingerprint)
        ))
        .with_hint(
            "check you took the right token from the vault; a different CA needs its own --state-dir",
        ))
    }

    /// With the token's key already matched to `config`: `STATE/ca.pub`, if there is one,
    /// must hold the same key (it stands in for the token elsewhere).
    fn check_ca_pub_is(&self, config: &Config, token_key: &KeyData) -> Result<()> {
        let path = self.state_dir.join(CA_PUB_FILE);
        match read_ca_pub(&path)? {
            None => Ok(()),
            Some(k) if &k == token_key => Ok(()),
            Some(k) => Err(Error::config(format!(
                "{} holds the key {}, but the token's key is config.toml's CA {}: refusing to go on with an inconsistent state directory (nothing was written)",
                path.shown(),
                key::fingerprint(&k),
                Esc(&config.fingerprint)
            ))
            .with_hint(format!(
                "{} is the copy of the CA key used without the token ('log verify', 'krl', and 'pubkey' or 'host-config' with the token unplugged): restore it from the backup of the state directory; or move it aside, and 'breakglass-ca pubkey' prints the token's line to put there",
                path.shown()
            ))),
        }
    }

    /// `STATE/ca.pub`, checked against `config`'s fingerprint when there is a configuration;
    /// `None` if there is no such file.
    pub fn ca_pub(&self, config: Option<&Config>) -> Result<Option<CaFile>> {
        let path = self.state_dir.join(CA_PUB_FILE);
        let Some(key) = read_ca_pub(&path)? else {
            return Ok(None);
        };
        if let Some(c) = config {
            let fp = key::fingerprint(&key);
            if fp != c.fingerprint {
                return Err(Error::config(format!(
                    "{} holds the key {fp}, but config.toml names the CA {}: refusing to use it",
                    path.shown(),
                    Esc(&c.fingerprint)
                ))
                .with_hint(format!(
                    "this state directory is inconsistent: restore ca.pub from the backup of the state directory, or from the key line on the key sheet (its fingerprint must be {})",
                    Esc(&c.fingerprint)
                )));
            }
        }
        Ok(Some(CaFile { path, key }))
    }

    /// The CA public key `log verify` checks the state directory's ledger with: the files
    /// given (`--ca-pubkey`), else `STATE/ca.pub` (matching config.toml), else the token (no
    /// PIN), which must be config.toml's CA.
    pub fn verify_source(&self, config: Option<&Config>, given: &[CaFile]) -> Result<CaSource> {
        if !given.is_empty() {
            return Ok(CaSource::Files(given.to_vec()));
        }
        if let Some(file) = self.ca_pub(config)? {
            return Ok(CaSource::CaPub {
                uri: config.map(|c| c.ca.clone()),
                file,
                absent: None,
            });
        }
        let (uri, key) = self.open_ca(config, true)?;
        Ok(CaSource::Token { uri, key })
    }
}

/// The CA line of a `ca.pub` (never read through a link, bounded): its first key line;
/// `None` if there is no such file.
pub fn read_ca_pub(path: &Path) -> Result<Option<KeyData>> {
    let Some(bytes) = fsx::read_private(path, fsx::limit::KEY_FILE, "CA public key")? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines = key::key_lines(&text, Lines::Commented);
    // The first key line; none reads as an empty line, which ssh-key refuses.
    key::parse_line(lines.first().copied().unwrap_or_default())
        .map(|k| Some(k.key_data().clone()))
        .map_err(|e| {
            Error::ssh(
                format!("{} does not hold an OpenSSH public key", path.shown()),
                e,
            )
            .with_hint("restore it from the backup of the state directory, or write the key line of the key sheet into it (its fingerprint must be config.toml's)")
        })
}

/// A CA public key file given on the command line (`-` for stdin): exactly one OpenSSH public
/// key line (`#` comments and blank lines allowed), of a key a breakglass CA can have; not a
/// private key or a certificate. `option` names the option, for the messages.
pub fn read_key_file(path: &Path, option: &str) -> Result<CaFile> {
    read_key_line(path, option).map(|k| CaFile {
        path: path.to_path_buf(),
        key: k.key_data().clone(),
    })
}

/// [`read_key_file`], with the line's comment kept (a backup CA's comment goes into
/// `host-config`'s bundle, as `add-backup-ca` keeps it).
pub fn read_key_line(path: &Path, option: &str) -> Result<PublicKey> {
    let hint = "give a file holding the CA's public key line (as 'breakglass-ca pubkey' prints it, or the first line of a host's TrustedUserCAKeys file)";
    let text = fsx::read_text(path, fsx::limit::KEY_FILE, "CA public key").map_err(|e| match e
        .hint()
    {
        Some(_) => e,
        None => e.with_hint(hint),
    })?;
    let name = format!("{option} {}", path.shown());
    let line = match key::one_line(&text, Lines::Commented) {
        Ok(line) => line,
        Err(NotOneLine::PrivateKey) => {
            return Err(Error::usage(format!(
                "{name} holds a PRIVATE key; only the CA's public key is needed"
            ))
            .with_hint("a CA private key belongs on its token only; a CA key that was ever in a file is exposed and must not be trusted"))
        }
        Err(NotOneLine::Empty) => {
            return Err(Error::usage(format!("{name} holds no public key line")).with_hint(hint))
        }
        Err(NotOneLine::Several(n)) => {
            return Err(Error::usage(format!(
                "{name} holds {n} key lines; it must hold the one CA key"
            ))
            .with_hint(hint))
        }
    };
    if key::is_certificate(line) {
        return Err(
            Error::usage(format!("{name} holds a certificate, not a CA public key"))
                .with_hint(hint),
        );
    }
    let parsed = key::parse_line(line).map_err(|e| {
        Error::usage(format!("{name} is not an OpenSSH public key line ({e})")).with_hint(hint)
    })?;
    if key::Algorithm::of_key(parsed.key_data()).is_none() {
        return Err(Error::usage(format!(
            "{name} holds a {} key, which cannot be a breakglass CA key",
            key::key_type(line)
        ))
        .with_hint(hint));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi ca";

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn key_files_hold_exactly_one_ca_key() {
        let dir = tempfile::tempdir().unwrap();
        let ok = read_key_file(
            &file(dir.path(), "ok", &format!("# the CA\n\n  {ED}\n")),
            "--ca-pubkey",
        )
        .unwrap();
        assert_eq!(ok.fingerprint(), key::fingerprint(&ok.key));
        let cases = [
            ("empty", String::new(), "holds no public key line"),
            ("two", format!("{ED}\n{ED}\n"), "holds 2 key lines"),
            (
                "private",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n".into(),
                "PRIVATE key",
            ),
            (
                "cert",
                "ssh-ed25519-cert-v01@openssh.com AAAA x\n".into(),
                "holds a certificate",
            ),
            ("garbage", "not a key\n".into(), "is not an OpenSSH public key line"),
            (
                "dsa",
                "ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b/JmYLdrmVClpJ+f6AR7ECLCT7up1/63xhv4O1fnxqimFQ8E+4P208UewwI1VBNaFpEy9nXzrith1yrv8iIDGZ3RSAHHAAAAFQCXYFCPFSMLzLKSuYKi64QL8Fgc9QAAAIEA9+GghdabPd7LvKtcNrhXuXmUr7v6OuqC+VdMCz0HgmdRWVeOutRZT+ZxBxCBgLRJFnEj6EwoFhO3zwkyjMim4TwWeotUfI0o4KOuHiuzpnWRbqN/C/ohNWLx+2J6ASQ7zKTxvqhRkImog9/hWuWfBpKLZl6Ae1UlZAFMO/7PSSoAAACBAKKSU2PFl/qOLxIwmBZPPIcJshVe7bVUpFvyl3BbJDow8rXfskl8wO63OzP/qLmcJM0+JbcRU/53JjTuyk31drV2qxhIOsLDC9dGCWj47Y7TyhPdXh/0dthTRBy6bqGtRPxGa7gJov1xm/UuYYXPIUR/3x9MAZvZ5xvE0kYXO+rx x\n".into(),
                "cannot be a breakglass CA key",
            ),
        ];
        for (name, text, want) in cases {
            let err = read_key_file(&file(dir.path(), name, &text), "--ca-pubkey").unwrap_err();
            let shown = err.to_string();
            assert!(shown.contains(want), "{name}: {shown}");
            assert!(shown.starts_with("--ca-pubkey "), "{name}: {shown}");
            assert_eq!(err.exit_code(), 2, "{name}");
            assert!(err.hint().is_some(), "{name}");
        }
        let err = read_key_file(&dir.path().join("missing"), "--ca-pubkey").unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    /// The stderr line of each source: where the key came from, and what it was checked
    /// against.
    #[test]
    fn each_source_says_where_its_key_came_from() {
        let k = key::parse_line(ED).unwrap().key_data().clone();
        let fp = key::fingerprint(&k);
        let file = |p: &str| CaFile {
            path: PathBuf::from(p),
            key: k.clone(),
        };
        let state = Path::new("/state");
        let ca_pub = CaSource::CaPub {
            uri: Some("pkcs11:token=t".parse().unwrap()),
            file: file("/state/ca.pub"),
            absent: Some("no YubiKey found".into()),
        };
        assert_eq!(
            ca_pub.describe(state, Some(&Config::for_tests(&fp))),
            format!("CA key: from /state/ca.pub (token not plugged in: no YubiKey found), matches config.toml's fingerprint {fp}")
        );
        assert_eq!(ca_pub.uri().unwrap().to_string(), "pkcs11:token=t");
        assert!(ca_pub.token().is_none());
        let files = CaSource::Files(vec![file("a.pub"), file("b\u{1b}.pub")]);
        assert_eq!(
            files.describe(state, None),
            format!("CA key: from a.pub (given on the command line), fingerprint {fp}\nbackup CA 1: from b\\e.pub ({fp})")
        );
        assert!(files
            .describe(state, Some(&Config::for_tests("SHA256:other")))
            .contains("not the CA of config.toml (SHA256:other)"));
        assert_eq!(files.backup_files().len(), 1);
        assert!(files.uri().is_none());
    }

    #[test]
    fn ca_pub_reads_its_first_key_line_and_refuses_a_link() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_ca_pub(&dir.path().join("ca.pub")).unwrap(), None);
        let p = file(dir.path(), "ca.pub", &format!("# c\n{ED}\n"));
        let k = read_ca_pub(&p).unwrap().unwrap();
        assert_eq!(
            key::openssh_line(&k).unwrap(),
            ED.replace(" ca", " breakglass-ca")
        );
        let bad = file(dir.path(), "bad.pub", "nothing\n");
        assert!(read_ca_pub(&bad)
            .unwrap_err()
            .to_string()
            .contains("does not hold an OpenSSH public key"));
        let link = dir.path().join("link.pub");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(read_ca_pub(&link).is_err());
    }
}
