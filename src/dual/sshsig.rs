//! SSH signatures (`ssh-keygen -Y sign` output, OpenSSH's PROTOCOL.sshsig) as requesters and
//! approvers make them: the armored text read strictly but forgivingly (surrounding blank
//! lines, trailing spaces and CR from a paste), bounded, and verified with the `ssh-key`
//! crate for every key type `ssh-keygen` signs with: Ed25519, ECDSA P-256/P-384/P-521, RSA
//! (`rsa-sha2-512` and `rsa-sha2-256`; SHA-1 `ssh-rsa` signatures are not accepted) and the
//! security keys `sk-ssh-ed25519@openssh.com` and `sk-ecdsa-sha2-nistp256@openssh.com`. On
//! top of what the crate checks: the SSHSIG version is 1, the namespace is the one expected
//! (named in the refusal), the key is the one expected, the signature is of the type that key
//! makes (the crate verifies a security key's bytes whatever type the signature names), and a
//! security key's signature carries the user-presence flag (the key was touched: `ssh-keygen
//! -Y verify` does not ask for it, sshd does by default).

use std::io::BufRead;

use base64ct::{Base64, Encoding};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, SshSig};

use crate::error::{Error, Result};

pub const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
pub const END: &str = "-----END SSH SIGNATURE-----";
/// The largest armored signature read (an RSA-16384 signature with its key is some 6 KiB).
pub const MAX_SIGNATURE_BYTES: usize = 16 * 1024;
/// The most lines of an armored signature read from a terminal.
const MAX_LINES: usize = 400;
/// The user-presence flag of a security-key signature (`SSH_SK_USER_PRESENCE_REQD`).
const USER_PRESENT: u8 = 0x01;

/// An armored signature: its text as kept in the ledger (armored as `ssh-keygen` writes it:
/// BEGIN, the base64 in lines of 70, END, LF line ends, a final LF), and the signature.
#[derive(Clone, Debug)]
pub struct Armored {
    pub text: String,
    pub sig: SshSig,
}

fn bad(why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("it is not an SSH signature: {why}")).with_hint(
        "give the .sig file 'ssh-keygen -Y sign' wrote, from -----BEGIN SSH SIGNATURE----- to -----END SSH SIGNATURE-----",
    )
}

impl Armored {
    /// Read an armored signature. Blank lines around it and spaces (or a CR) at the end of a
    /// line are ignored; anything else outside the BEGIN and END lines is refused.
    pub fn parse(text: &str) -> Result<Armored> {
        if text.len() > MAX_SIGNATURE_BYTES {
            return Err(bad(format!(
                "it is larger than {} KiB",
                MAX_SIGNATURE_BYTES / 1024
            )));
        }
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.trim_end_matches([' ', '\t', '\r']))
            .skip_while(|l| l.is_empty())
            .collect();
        let end = lines
            .iter()
            .rposition(|l| !l.is_empty())
            .map_or(0, |i| i + 1);
        let lines = &lines[..end];
        match (lines.first(), lines.last()) {
            (Some(&BEGIN), Some(&END)) if lines.len() >= 3 => {}
            (Some(&BEGIN), _) => return Err(bad(format!("it does not end with {END}"))),
            _ => return Err(bad(format!("it does not start with {BEGIN}"))),
        }
        let body = &lines[1..lines.len() - 1];
        let mut b64 = String::new();
        for line in body {
            if line.is_empty()
                || !line
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
            {
                return Err(bad("a line between BEGIN and END is not base64"));
            }
            b64.push_str(line);
        }
        let blob = Base64::decode_vec(&b64).map_err(|_| bad("its base64 does not decode"))?;
        // Armored again in the one layout the PEM reader takes (ssh-keygen's: 70 columns).
        let mut pem = format!("{BEGIN}\n");
        let encoded = Base64::encode_string(&blob);
        for chunk in encoded.as_bytes().chunks(70) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str(END);
        pem.push('\n');
        let sig =
            crate::panic_guard::quietly(std::panic::AssertUnwindSafe(|| SshSig::from_pem(&pem)))
                .ok_or_else(|| bad("it cannot be decoded"))?
                .map_err(|e| bad(format!("it cannot be decoded ({e})")))?;
        if sig.version() != 1 {
            return Err(bad(format!(
                "it is SSHSIG version {}, not 1",
                sig.version()
            )));
        }
        Ok(Armored { text: pem, sig })
    }

    /// The key that made it (which the signature names; [`Armored::verify`] checks it).
    pub fn signer(&self) -> &KeyData {
        self.sig.public_key()
    }

    /// The signer's `SHA256:` fingerprint.
    pub fn signer_fingerprint(&self) -> String {
        crate::key::fingerprint(self.signer())
    }

    /// Whether this is a valid signature of `key` over `message` in `namespace`, and why not.
    pub fn verify(
        &self,
        key: &KeyData,
        namespace: &str,
        message: &[u8],
    ) -> std::result::Result<(), Problem> {
        if self.signer() != key {
            return Err(Problem::OtherKey(self.signer_fingerprint()));
        }
        if self.sig.namespace() != namespace {
            return Err(Problem::Namespace(self.sig.namespace().to_string()));
        }
        // The type of signature this key makes: the crate verifies a security key's bytes
        // whatever type the signature says it is, and skips the touch check below for one it
        // does not know.
        let made_by_key = match key {
            KeyData::Rsa(_) => matches!(self.sig.algorithm(), Algorithm::Rsa { hash: Some(_) }),
            k => self.sig.algorithm() == k.algorithm(),
        };
        if !made_by_key {
            return Err(Problem::Algorithm(self.sig.algorithm().to_string()));
        }
        let public = ssh_key::PublicKey::from(key.clone());
        let verified = crate::panic_guard::quietly(std::panic::AssertUnwindSafe(|| {
            public.verify(namespace, message, &self.sig)
        }));
        if !matches!(verified, Some(Ok(()))) {
            return Err(Problem::Invalid);
        }
        if matches!(key, KeyData::SkEd25519(_) | KeyData::SkEcdsaSha2NistP256(_)) {
            // The signature data ends with the flags byte and a 4-byte counter.
            let data = self.sig.signature_bytes();
            let flags = data
                .len()
                .checked_sub(5)
                .and_then(|i| data.get(i))
                .copied()
                .unwrap_or(0);
            if flags & USER_PRESENT == 0 {
                return Err(Problem::NoTouch);
            }
        }
        Ok(())
    }
}

/// Why a signature is not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// It was made by another key (this fingerprint).
    OtherKey(String),
    /// It was made for another namespace (this one).
    Namespace(String),
    /// It does not verify over the message.
    Invalid,
    /// A security key signed without being touched.
    NoTouch,
    /// A signature of this type, which the key does not make (a security-key signature
    /// relabelled, with its flags inside).
    Algorithm(String),
}

impl Problem {
    /// What it says after "the signature ...".
    pub fn describe(&self, expected_namespace: &str) -> String {
        match self {
            Problem::OtherKey(fp) => format!("is made by another key ({fp})"),
            Problem::Namespace(ns) => format!(
                "is made for the namespace \"{}\", not \"{expected_namespace}\" (ssh-keygen -Y sign -n {expected_namespace})",
                super::request::shown(ns)
            ),
            Problem::Invalid => "does not verify over this request: it was made over another text (or the request was edited after it was signed)".into(),
            Problem::NoTouch => "is a security-key signature made without a touch (the user-presence flag is not set)".into(),
            Problem::Algorithm(alg) => format!(
                "is a signature of type {}, which this key does not make (ssh-keygen -Y sign makes the right one)",
                super::request::shown(alg)
            ),
        }
    }
}

/// Read an armored signature from `reader` (a terminal, a pipe) up to and including its END
/// line, without waiting for the end of the input: at most [`MAX_SIGNATURE_BYTES`] and a few
/// hundred lines. `what` names it in an error.
pub fn read_armor(reader: &mut impl BufRead, what: &str) -> Result<String> {
    let mut text = String::new();
    let mut limited = std::io::Read::take(&mut *reader, MAX_SIGNATURE_BYTES as u64 + 1);
    for _ in 0..MAX_LINES {
        let mut line = Vec::new();
        let n = limited
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(format!("cannot read the {what}"), e))?;
        if text.len() + n > MAX_SIGNATURE_BYTES {
            return Err(crate::fsx::too_large(MAX_SIGNATURE_BYTES as u64, what));
        }
        if n == 0 {
            return Err(Error::usage(format!(
                "the {what} ended before the line {END}"
            ))
            .with_hint("paste the whole signature, from -----BEGIN SSH SIGNATURE----- to -----END SSH SIGNATURE-----"));
        }
        let line = String::from_utf8(line)
            .map_err(|_| Error::invalid(format!("the {what} is not text")))?;
        let done = line.trim_end() == END;
        text.push_str(&line);
        if done {
            return Ok(text);
        }
    }
    Err(Error::usage(format!(
        "the {what} has more than {MAX_LINES} lines without {END}"
    )))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ssh_key::{HashAlg, LineEnding, PrivateKey};

    /// An Ed25519 key from a seed, and an SSHSIG it makes.
    pub(crate) fn ed25519(seed: u8) -> PrivateKey {
        PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]))
    }

    pub(crate) fn sign(key: &PrivateKey, namespace: &str, msg: &[u8]) -> String {
        SshSig::sign(key, namespace, HashAlg::Sha512, msg)
            .unwrap()
            .to_pem(LineEnding::LF)
            .unwrap()
    }

    #[test]
    fn a_signature_verifies_for_its_key_namespace_and_message_only() {
        let alice = ed25519(1);
        let bob = ed25519(2);
        let text = sign(&alice, "breakglass-ca-request", b"hello\n");
        let a = Armored::parse(&text).unwrap();
        let key = alice.public_key().key_data();
        a.verify(key, "breakglass-ca-request", b"hello\n").unwrap();
        assert_eq!(
            a.verify(key, "breakglass-ca-request", b"hello"),
            Err(Problem::Invalid)
        );
        assert_eq!(
            a.verify(key, "breakglass-ca-approval", b"hello\n"),
            Err(Problem::Namespace("breakglass-ca-request".into()))
        );
        assert!(matches!(
            a.verify(
                bob.public_key().key_data(),
                "breakglass-ca-request",
                b"hello\n"
            ),
            Err(Problem::OtherKey(_))
        ));
        // The kept text is the armor, each line trimmed, LF only.
        assert_eq!(a.text, text);
        let pasted = format!("\n\n  \n{}  \n\n", text.replace('\n', "\r\n"));
        let b = Armored::parse(&pasted).unwrap();
        assert_eq!(b.text, text);
        b.verify(key, "breakglass-ca-request", b"hello\n").unwrap();
    }

    #[test]
    fn a_long_namespace_is_named_short() {
        let alice = ed25519(1);
        let ns = format!("{}\u{1b}", "n".repeat(10_000));
        let a = Armored::parse(&sign(&alice, &ns, b"m")).unwrap();
        let p = a
            .verify(
                alice.public_key().key_data(),
                "breakglass-ca-approval",
                b"m",
            )
            .unwrap_err();
        let said = p.describe("breakglass-ca-approval");
        assert!(said.len() < 300 && crate::text::is_safe(&said), "{said}");
    }

    #[test]
    fn broken_armor_is_refused_clearly() {
        let text = sign(&ed25519(1), "n", b"m");
        let body: Vec<&str> = text.lines().collect();
        for (input, needle) in [
            (String::new(), "does not start with"),
            ("hello".to_string(), "does not start with"),
            (text.replace(END, ""), "does not end with"),
            (format!("{text}trailing\n"), "does not end with"),
            (format!("x\n{text}"), "does not start with"),
            (
                text.replacen(body[1], &format!("{}!", body[1]), 1),
                "not base64",
            ),
            (text.replacen(body[1], "", 1), "not base64"),
            (text.replacen(body[1], "AAAA", 1), "decode"),
            (format!("{BEGIN}\n{END}\n"), "does not end with"),
            (format!("{BEGIN}\nQUJD\n{END}\n"), "cannot be decoded"),
            ("x".repeat(MAX_SIGNATURE_BYTES + 1), "larger than 16 KiB"),
        ] {
            let err = Armored::parse(&input).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    /// An SSHSIG blob armored, from its fields.
    fn armor(version: u32, key: &[u8], namespace: &str, hash: &str, sig: &[u8]) -> String {
        let s = |b: &[u8]| [&(b.len() as u32).to_be_bytes()[..], b].concat();
        let blob = [
            &b"SSHSIG"[..],
            &version.to_be_bytes(),
            &s(key),
            &s(namespace.as_bytes()),
            &s(b""),
            &s(hash.as_bytes()),
            &s(sig),
        ]
        .concat();
        let b64 = Base64::encode_string(&blob);
        let body: Vec<String> = b64
            .as_bytes()
            .chunks(70)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        format!("{BEGIN}\n{}\n{END}\n", body.join("\n"))
    }

    #[test]
    fn sha1_rsa_unknown_hashes_and_versions_are_refused() {
        let s = |b: &[u8]| [&(b.len() as u32).to_be_bytes()[..], b].concat();
        let alice = ed25519(1);
        let public = alice.public_key().key_data().ed25519().unwrap().0;
        let key = [s(b"ssh-ed25519"), s(&public)].concat();
        let good = SshSig::sign(&alice, "n", HashAlg::Sha512, b"m").unwrap();
        let ed_sig = [s(b"ssh-ed25519"), s(good.signature().as_bytes())].concat();
        // The armor built here is what ssh-keygen writes.
        let ok = armor(1, &key, "n", "sha512", &ed_sig);
        Armored::parse(&ok)
            .unwrap()
            .verify(alice.public_key().key_data(), "n", b"m")
            .unwrap();
        // An RSA key with an ssh-rsa (SHA-1) signature: refused whatever its bytes.
        let mut n = vec![0u8, 0xc5];
        n.extend(std::iter::repeat_n(0x5a, 255));
        let rsa_key = [s(b"ssh-rsa"), s(&[1, 0, 1]), s(&n)].concat();
        let sha1_sig = [s(b"ssh-rsa"), s(&[0x42; 256])].concat();
        for (text, needle) in [
            (
                armor(1, &rsa_key, "n", "sha512", &sha1_sig),
                "cannot be decoded",
            ),
            (armor(1, &key, "n", "sha1", &ed_sig), "cannot be decoded"),
            (armor(1, &key, "n", "sha384", &ed_sig), "cannot be decoded"),
            (armor(1, &key, "n", "SHA512", &ed_sig), "cannot be decoded"),
            (armor(2, &key, "n", "sha512", &ed_sig), "cannot be decoded"),
            (
                armor(0, &key, "n", "sha512", &ed_sig),
                "SSHSIG version 0, not 1",
            ),
            (armor(1, &key, "", "sha512", &ed_sig), "cannot be decoded"),
            // A signature labelled for another algorithm than its key's.
            (
                armor(
                    1,
                    &key,
                    "n",
                    "sha512",
                    &[
                        s(b"sk-ssh-ed25519@openssh.com"),
                        s(&[0; 64]),
                        vec![1, 0, 0, 0, 1],
                    ]
                    .concat(),
                ),
                "",
            ),
        ] {
            match Armored::parse(&text) {
                Err(e) => assert!(
                    !needle.is_empty() && e.to_string().contains(needle),
                    "{needle}: {e}"
                ),
                Ok(a) => {
                    assert!(needle.is_empty(), "{needle}: parsed");
                    assert_eq!(
                        a.verify(alice.public_key().key_data(), "n", b"m"),
                        Err(Problem::Algorithm("sk-ssh-ed25519@openssh.com".into()))
                    );
                }
            }
        }
        // Bytes after the signature, and a BEGIN line inside the armor.
        let trailing = armor(1, &key, "n", "sha512", &ed_sig)
            .replace(&format!("\n{END}"), &format!("AAAA\n{END}"));
        assert!(Armored::parse(&trailing).is_err());
        let nested = ok.replacen(&format!("{BEGIN}\n"), &format!("{BEGIN}\n{BEGIN}\n"), 1);
        assert!(Armored::parse(&nested)
            .unwrap_err()
            .to_string()
            .contains("not base64"));
        let twice = format!("{ok}{ok}");
        assert!(Armored::parse(&twice).is_err());
    }

    #[test]
    fn a_security_key_signature_relabelled_as_another_type_is_refused() {
        // A security key signs SHA256(application) || flags || counter || SHA256(data); made
        // without a touch (flags 0) and put in a signature of another type, with the flags
        // and counter inside its data, the same bytes verify: the touch must still be asked
        // for, and a type the key does not make refused (as ssh-keygen -Y verify does).
        use sha2::{Digest, Sha256};
        let s = |b: &[u8]| [&(b.len() as u32).to_be_bytes()[..], b].concat();
        let msg = b"breakglass-ca request v1\n";
        let ns = "breakglass-ca-approval";
        let signed = SshSig::signed_data(ns, HashAlg::Sha512, msg).unwrap();
        let app = b"ssh:";
        let trailer = [0u8, 0, 0, 0, 42]; // flags 0 (no touch), counter 42
        let to_sign = [
            &Sha256::digest(app)[..],
            &trailer,
            &Sha256::digest(&signed)[..],
        ]
        .concat();
        let ed = ssh_key::private::Ed25519Keypair::from_seed(&[7u8; 32]);
        let ed_key = [
            s(b"sk-ssh-ed25519@openssh.com"),
            s(ed.public.as_ref()),
            s(app),
        ]
        .concat();
        let ed_sig: ssh_key::Signature = signature::Signer::sign(&ed, &to_sign);
        let ec = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
        let point = ec.verifying_key().to_encoded_point(false);
        let ec_key = [
            s(b"sk-ecdsa-sha2-nistp256@openssh.com"),
            s(b"nistp256"),
            s(point.as_bytes()),
            s(app),
        ]
        .concat();
        let ec_sig: p256::ecdsa::Signature = signature::Signer::sign(&ec, &to_sign);
        let mpint = |b: &[u8]| {
            let mut m: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
            if m.first().is_some_and(|x| x & 0x80 != 0) {
                m.insert(0, 0);
            }
            s(&m)
        };
        let ec_inner = [mpint(&ec_sig.r().to_bytes()), mpint(&ec_sig.s().to_bytes())].concat();
        for (key, label, data) in [
            (
                &ed_key,
                &b"sk-ssh-ed25519@openssh.com"[..],
                ed_sig.as_bytes().to_vec(),
            ),
            (
                &ec_key,
                &b"sk-ecdsa-sha2-nistp256@openssh.com"[..],
                ec_inner.clone(),
            ),
        ] {
            let key_data = ssh_key::PublicKey::from_bytes(key)
                .unwrap()
                .key_data()
                .clone();
            // As the key makes it: verifies, and is refused for want of a touch.
            let proper = [s(label), s(&data), trailer.to_vec()].concat();
            let a = Armored::parse(&armor(1, key, ns, "sha512", &proper)).unwrap();
            assert_eq!(a.verify(&key_data, ns, msg), Err(Problem::NoTouch));
            // Relabelled, the trailer inside: refused all the same.
            for other in [
                &b"webauthn-sk-ecdsa-sha2-nistp256@openssh.com"[..],
                b"x-relabelled@example.com",
            ] {
                let relabelled = [s(other), s(&[&data[..], &trailer].concat())].concat();
                let text = armor(1, key, ns, "sha512", &relabelled);
                let verdict = Armored::parse(&text).map(|a| a.verify(&key_data, ns, msg));
                assert!(
                    matches!(verdict, Err(_) | Ok(Err(Problem::Algorithm(_)))),
                    "{}: {verdict:?}",
                    String::from_utf8_lossy(other)
                );
            }
        }
    }

    #[test]
    fn a_pasted_signature_is_read_up_to_its_end_line_only() {
        let text = sign(&ed25519(1), "n", b"m");
        let input = format!("{text}after the end\n");
        let mut reader = std::io::Cursor::new(input.as_bytes());
        assert_eq!(read_armor(&mut reader, "signature").unwrap(), text);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
        assert_eq!(rest, "after the end\n");
        let err = read_armor(
            &mut std::io::Cursor::new(&text.as_bytes()[..40]),
            "signature on stdin",
        )
        .unwrap_err();
        assert!(err.to_string().contains("ended before the line"), "{err}");
        let huge = "A".repeat(MAX_SIGNATURE_BYTES + 10);
        let err = read_armor(&mut std::io::Cursor::new(huge.as_bytes()), "signature").unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        let many = "A\n".repeat(MAX_LINES + 1);
        let err = read_armor(&mut std::io::Cursor::new(many.as_bytes()), "signature").unwrap_err();
        assert!(err.to_string().contains("more than 400 lines"), "{err}");
    }
}
