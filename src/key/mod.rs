//! Keys in one place: the algorithms a CA key can have ([`Algorithm`]), its fingerprint and
//! OpenSSH line, and the one reader of text that holds public keys ([`key_lines`],
//! [`one_line`]): a requester's `.pub`, a backup CA's `.pub`, `ca.pub`, a `--ca-pubkey` file,
//! a `backup_ca_pubkeys` entry. The inputs differ a little on purpose (a requester's key is
//! one line and nothing else; a key file may carry `#` comments), and each says so through
//! [`Lines`]; each words its own refusals from [`NotOneLine`]. The validation of a
//! requester's key (is it a key nobody but its owner can sign with?) is in [`requester`].

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ssh_key::public::KeyData;
use ssh_key::{EcdsaCurve, HashAlg, PublicKey};

use crate::error::{Error, Result};
use crate::text::ShowPath;

pub mod requester;

pub use requester::{
    check_public_key, is_security_key, parse_requester_key, refuse_ca, requester_key,
};

/// Comment put on exported CA lines.
pub const CA_COMMENT: &str = "breakglass-ca";

/// Key algorithms a CA key can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl Algorithm {
    pub const ALL: [Algorithm; 6] = [
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP384,
        Algorithm::Ed25519,
        Algorithm::Rsa2048,
        Algorithm::Rsa3072,
        Algorithm::Rsa4096,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::EcdsaP384 => "ecdsa-p384",
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Rsa2048 => "rsa-2048",
            Algorithm::Rsa3072 => "rsa-3072",
            Algorithm::Rsa4096 => "rsa-4096",
        }
    }

    /// The algorithm of an existing public key, if it is one a CA may use.
    pub fn of_key(key: &KeyData) -> Option<Algorithm> {
        match key {
            KeyData::Ecdsa(k) => match k.curve() {
                EcdsaCurve::NistP256 => Some(Algorithm::EcdsaP256),
                EcdsaCurve::NistP384 => Some(Algorithm::EcdsaP384),
                EcdsaCurve::NistP521 => None,
            },
            KeyData::Ed25519(_) => Some(Algorithm::Ed25519),
            KeyData::Rsa(k) => match k.n.as_positive_bytes().map(|b| b.len() * 8) {
                Some(2048) => Some(Algorithm::Rsa2048),
                Some(3072) => Some(Algorithm::Rsa3072),
                Some(4096) => Some(Algorithm::Rsa4096),
                _ => None,
            },
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                Error::usage(format!("unknown algorithm '{s}'")).with_hint(
                    "choose one of: ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-3072, rsa-4096 (PKCS#11), or ecdsa-p256, ecdsa-p384, rsa-2048 (YubiKey)",
                )
            })
    }
}

/// `SHA256:…`, as `ssh-keygen -l -E sha256` prints it and `config.toml` records it.
pub fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The CA's OpenSSH line, `ecdsa-sha2-nistp256 AAAA… breakglass-ca`, no trailing newline.
pub fn openssh_line(key: &KeyData) -> Result<String> {
    PublicKey::new(key.clone(), CA_COMMENT)
        .to_openssh()
        .map_err(|e| Error::ssh("cannot encode the CA public key", e))
}

/// How the lines of a text holding public keys are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    /// The whole text, trimmed, is the key line: any second line, even a blank one or a `#`
    /// comment, is one too many. A requester's key is sent as its `.pub` file and nothing else.
    Bare,
    /// Each line trimmed; blank lines and `#` comment lines are skipped, as sshd reads
    /// `TrustedUserCAKeys`: `ca.pub`, a backup CA's `.pub`, a `--ca-pubkey` file.
    Commented,
}

/// Why a text does not hold exactly one public key line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotOneLine {
    /// It holds a private key (`-----BEGIN … PRIVATE KEY-----`).
    PrivateKey,
    /// It holds no key line.
    Empty,
    /// It holds this many key lines.
    Several(usize),
}

/// Whether `text` holds a private key, which only its owner may ever see.
pub fn holds_private_key(text: &str) -> bool {
    text.contains("PRIVATE KEY-----")
}

/// The key lines of `text`, read as `lines` says. No line is checked here: see
/// [`parse_line`].
pub fn key_lines(text: &str, lines: Lines) -> Vec<&str> {
    match lines {
        Lines::Bare => text.trim().lines().collect(),
        Lines::Commented => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect(),
    }
}

/// The one key line of `text`, read as `lines` says; a private key is refused first, whatever
/// else the text holds.
pub fn one_line(text: &str, lines: Lines) -> Result<&str, NotOneLine> {
    if holds_private_key(text) {
        return Err(NotOneLine::PrivateKey);
    }
    match key_lines(text, lines).as_slice() {
        [] => Err(NotOneLine::Empty),
        [line] => Ok(line),
        several => Err(NotOneLine::Several(several.len())),
    }
}

/// The key type a line starts with (`ssh-ed25519`, …), or `""`.
pub fn key_type(line: &str) -> &str {
    line.split_ascii_whitespace().next().unwrap_or_default()
}

/// Whether a key line is an OpenSSH certificate (`…-cert-v01@openssh.com`), which ssh-key
/// would only call an unknown key type.
pub fn is_certificate(line: &str) -> bool {
    key_type(line).contains("-cert-v01@openssh.com")
}

/// One OpenSSH public key line (`TYPE BASE64 [COMMENT]`, surrounding spaces ignored).
pub fn parse_line(line: &str) -> Result<PublicKey, ssh_key::Error> {
    PublicKey::from_openssh(line.trim())
}

/// Why sshd could not read `key` at all, if it could not: its wire blob checked as every
/// requester key is (an ECDSA point uncompressed and on its curve, an RSA key sshd takes, an
/// Ed25519 point that decodes). For CA key lines that go into bundles: `ssh-key` reads some
/// encodings (a compressed ECDSA point) that sshd skips, which would make another key of the
/// same CA key for every comparison here, a revoked one included.
pub fn sshd_cannot_read(key: &PublicKey) -> Option<String> {
    match requester::check_public_key(key) {
        Ok(()) => None,
        Err(Error::Message { message, .. }) => Some(message.replacen("the requester's ", "", 1)),
        Err(e) => Some(e.to_string()),
    }
}

/// The backup CA key `add-backup-ca` reads from `file`: exactly one public key line (`#`
/// comments and blank lines allowed), not a private key or a certificate, of an algorithm a
/// CA key can have.
pub fn backup_ca_key(text: &str, file: &Path) -> Result<PublicKey> {
    let name = file.shown();
    let hint = "give the backup CA's public key: the output of 'breakglass-ca pubkey' run with the backup token (one line starting ecdsa-sha2-…, ssh-ed25519 or ssh-rsa)";
    let line = match one_line(text, Lines::Commented) {
        Ok(line) => line,
        Err(NotOneLine::PrivateKey) => {
            return Err(Error::refused(format!(
                "{name} holds a PRIVATE key; only the backup CA's public key is needed"
            ))
            .with_hint("a CA private key belongs on its token only; a CA key that was ever in a file is exposed and must not be trusted"))
        }
        Err(NotOneLine::Empty) => {
            return Err(Error::refused(format!("{name} holds no public key line")).with_hint(hint))
        }
        Err(NotOneLine::Several(n)) => {
            return Err(Error::refused(format!(
                "{name} holds {n} key lines; add one backup CA at a time"
            ))
            .with_hint(hint))
        }
    };
    if is_certificate(line) {
        return Err(
            Error::refused(format!("{name} holds a certificate, not a CA public key"))
                .with_hint(hint),
        );
    }
    let key = parse_line(line).map_err(|e| {
        Error::refused(format!("{name} is not an OpenSSH public key ({e})")).with_hint(hint)
    })?;
    if Algorithm::of_key(key.key_data()).is_none() {
        return Err(Error::refused(format!(
            "{name} holds a {} key, which cannot be a breakglass CA key",
            key_type(line)
        ))
        .with_hint("a CA key is ecdsa-p256, ecdsa-p384, ed25519 or RSA with 2048, 3072 or 4096 bits, made on a token with 'breakglass-ca init'"));
    }
    if let Some(why) = sshd_cannot_read(&key) {
        return Err(Error::refused(format!(
            "{name} holds a key sshd cannot read, so hosts would never trust it: its {why}"
        ))
        .with_hint(hint));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPg1Q+KGCuYkBhj62eL5GTpL+Nz3uo3gA6grASzJ/8BuUX+8Lzh/y3w03WgmRPUQ7/PgOKfUhmp3NoHNj0geaAw= breakglass-ca";

    /// [`P256`]'s key with its point in compressed form (OpenSSH reads only uncompressed ones).
    const P256_COMPRESSED: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAAAhAvg1Q+KGCuYkBhj62eL5GTpL+Nz3uo3gA6grASzJ/8Bu vault";

    #[test]
    fn algorithm_names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(a.name().parse::<Algorithm>().unwrap(), a);
        }
        assert!("dsa".parse::<Algorithm>().is_err());
    }

    #[test]
    fn line_rules() {
        let text = "# a comment\n\n  ssh-ed25519 AAAA x  \n  # indented comment\n";
        assert_eq!(key_lines(text, Lines::Commented), ["ssh-ed25519 AAAA x"]);
        assert_eq!(one_line(text, Lines::Commented), Ok("ssh-ed25519 AAAA x"));
        // Bare: the comment lines count.
        assert_eq!(one_line(text, Lines::Bare), Err(NotOneLine::Several(4)));
        assert_eq!(
            one_line("  ssh-ed25519 AAAA x \n", Lines::Bare),
            Ok("ssh-ed25519 AAAA x")
        );
        for lines in [Lines::Bare, Lines::Commented] {
            assert_eq!(one_line(" \n\n ", lines), Err(NotOneLine::Empty));
            assert_eq!(
                one_line("a\nb\n-----BEGIN OPENSSH PRIVATE KEY-----\n", lines),
                Err(NotOneLine::PrivateKey)
            );
        }
        assert_eq!(
            one_line("# only\n", Lines::Commented),
            Err(NotOneLine::Empty)
        );
        assert!(is_certificate("ssh-ed25519-cert-v01@openssh.com AAAA x"));
        assert!(!is_certificate("ssh-ed25519 AAAA x"));
        assert_eq!(key_type(""), "");
        assert!(parse_line(&format!("  {P256}  ")).is_ok());
    }

    #[test]
    fn fingerprint_and_ca_line() {
        let key = parse_line(P256).unwrap();
        let line = openssh_line(key.key_data()).unwrap();
        assert!(line.ends_with(" breakglass-ca"), "{line}");
        assert_eq!(parse_line(&line).unwrap().key_data(), key.key_data());
        let fp = fingerprint(key.key_data());
        assert!(fp.starts_with("SHA256:"), "{fp}");
        assert_eq!(fp, key.fingerprint(HashAlg::Sha256).to_string());
    }

    #[test]
    fn backup_ca_key_refusals() {
        let f = Path::new("b.pub");
        let ok = backup_ca_key(&format!("# backup\n\n{P256}\n"), f).unwrap();
        let (line, replaced) = crate::export::backup_line(&ok).unwrap();
        assert!(
            line.ends_with(&format!(" {}", crate::export::BACKUP_COMMENT)),
            "{line}"
        );
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
            // Red team: the same P-256 key with its point compressed, which sshd cannot read:
            // a backup CA that never works (and a revoked CA's variant the bundle kept).
            (P256_COMPRESSED, "compressed point"),
        ] {
            let err = backup_ca_key(text, f).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
