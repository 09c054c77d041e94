//! The CA key behind one small trait, whatever token holds it. Backends deal with their
//! hardware's quirks (digests, DER or fixed-width ECDSA, EC point wrapping) and hand back a
//! [`TokenSignature`]; [`TokenSignature::into_ssh`] is the one place that turns a token's
//! signature into OpenSSH's wire format. Backends never print: what they tell or ask the
//! custodian while they work (a touch prompt, a warning, a management key) goes through the
//! [`Prompter`] that `cmd/` passes in, as [`Note`]s.

pub mod piv;
pub mod pkcs11;
#[cfg(test)]
pub mod soft;

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use ssh_key::public::KeyData;
use ssh_key::{EcdsaCurve, HashAlg};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::pin::Pin;
use crate::uri::CaUri;

/// The CA key algorithms live with the other key facts in [`crate::key`]; kept here too for
/// the callers that name it through the backend.
use crate::key::Algorithm;

/// How a backend talks to the custodian while it works, in the style of rage's `Callbacks`:
/// the backend says what and when, `cmd/` decides where (stderr, the terminal) and tests
/// record it. Shared with the thread that shows the touch prompt, hence `Sync`.
pub trait Prompter: Sync {
    /// Tell the custodian something now.
    fn note(&self, note: &Note);

    /// Ask for a secret without echo (the PIV management key when the card keeps none).
    fn secret(&self, prompt: &str) -> std::io::Result<Zeroizing<String>>;
}

/// What a backend tells the custodian. The text is the [`Display`](fmt::Display) form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A signature takes long: the YubiKey waits for a touch.
    TouchNow,
    /// Logged in with the YubiKey's factory PIN.
    FactoryPin,
    /// `init`: the card that was opened (already escaped: it comes from the card).
    Card(String),
    /// `init --force`: the CA key in the slot will be replaced.
    Replacing { fingerprint: String, slot: u8 },
    /// `init`: the PIN given is the factory PIN.
    FactoryPinAtInit,
    /// `init`: the card still has the factory management key.
    FactoryManagementKey,
    /// `init`: the factory management key was replaced by a random, PIN-protected one.
    ManagementKeyReplaced,
    /// `init`: the key is being generated; with `touch`, the card will want a touch.
    Generating {
        algorithm: Algorithm,
        slot: u8,
        touch: bool,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::TouchNow => f.write_str("Touch the YubiKey now (its light is blinking)."),
            Note::FactoryPin => f.write_str("WARNING: this YubiKey still uses the factory default PIN: change it (ykman piv access change-pin) before it goes back into the vault."),
            Note::Card(card) => write!(f, "Card: {card}"),
            Note::Replacing { fingerprint, slot } => write!(
                f,
                "WARNING: --force: the CA key {fingerprint} in slot {slot:02x} will be REPLACED"
            ),
            Note::FactoryPinAtInit => f.write_str("WARNING: this YubiKey still uses the factory default PIN. Change the PIN and PUK before it goes into the vault (ykman piv access change-pin / change-puk)."),
            Note::FactoryManagementKey => f.write_str("WARNING: this YubiKey still has the FACTORY management key: anyone holding it can replace keys without the PIN."),
            Note::ManagementKeyReplaced => f.write_str("The management key was replaced by a random one, stored on the card behind the PIN."),
            Note::Generating {
                algorithm,
                slot,
                touch,
            } => write!(
                f,
                "Generating the {algorithm} CA key in slot {slot:02x}{}",
                if *touch {
                    " (touch the YubiKey when it blinks)"
                } else {
                    ""
                }
            ),
        }
    }
}

/// A signature as a token produced it, already normalised by the backend: ECDSA as fixed-width
/// big-endian `r||s`, Ed25519 as its 64 bytes, RSA as a PKCS#1 v1.5 SHA-512 signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSignature {
    Ecdsa { curve: EcdsaCurve, rs: Vec<u8> },
    Ed25519(Vec<u8>),
    RsaSha512(Vec<u8>),
}

impl TokenSignature {
    /// The OpenSSH signature. ECDSA `r` and `s` are checked to lie in 1..n by the curve's own
    /// `ecdsa::Signature` and written by ssh-key as canonical mpints: leading zero bytes
    /// stripped, one zero byte added when the top bit is set (sshd rejects anything else).
    pub fn into_ssh(self) -> Result<ssh_key::Signature> {
        let (algorithm, blob) = match self {
            TokenSignature::Ecdsa { curve, rs } => return ecdsa_to_ssh(curve, &rs),
            TokenSignature::Ed25519(sig) => {
                if sig.len() != 64 {
                    return Err(malformed(format!(
                        "{} bytes of Ed25519 signature",
                        sig.len()
                    )));
                }
                (ssh_key::Algorithm::Ed25519, sig)
            }
            TokenSignature::RsaSha512(sig) => (
                ssh_key::Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                sig,
            ),
        };
        ssh_key::Signature::new(algorithm, blob)
            .map_err(|e| Error::ssh("cannot build the SSH signature", e))
    }
}

fn malformed(why: String) -> Error {
    Error::token(format!("the token returned a malformed signature: {why}"))
}

/// Fixed-width `r||s` on `curve` as an OpenSSH signature.
fn ecdsa_to_ssh(curve: EcdsaCurve, rs: &[u8]) -> Result<ssh_key::Signature> {
    let width = match curve {
        EcdsaCurve::NistP256 => 32,
        EcdsaCurve::NistP384 => 48,
        EcdsaCurve::NistP521 => 66,
    };
    if rs.len() != 2 * width {
        return Err(malformed(format!(
            "{} bytes of r||s for {curve}, expected {}",
            rs.len(),
            2 * width
        )));
    }
    let out_of_range = |_| malformed("r or s is zero or not below the order of the curve".into());
    let ssh = match curve {
        EcdsaCurve::NistP256 => p256::ecdsa::Signature::from_slice(rs)
            .map_err(out_of_range)?
            .try_into(),
        EcdsaCurve::NistP384 => p384::ecdsa::Signature::from_slice(rs)
            .map_err(out_of_range)?
            .try_into(),
        EcdsaCurve::NistP521 => p521::ecdsa::Signature::from_slice(rs)
            .map_err(out_of_range)?
            .try_into(),
    };
    ssh.map_err(|e| Error::ssh("cannot encode an ECDSA signature", e))
}

/// What the token says about its PIN, before anyone types one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinStatus {
    /// Tries left, when the token says (PKCS#11 only says "final try" or "locked").
    pub tries_left: Option<u32>,
    /// The token reports that wrong PINs have been entered since the last good one.
    pub count_low: bool,
}

impl fmt::Display for PinStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.tries_left, self.count_low) {
            (Some(0), _) => f.write_str("BLOCKED"),
            (Some(1), _) => f.write_str("1 try left (the next wrong PIN blocks it)"),
            (Some(n), _) => write!(f, "{n} tries left"),
            (None, true) => f.write_str("a wrong PIN was entered recently (count not reported)"),
            (None, false) => f.write_str("ok (the token does not report a count)"),
        }
    }
}

/// What was selected, for the custodian to check before typing the PIN.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    /// The token, e.g. `token 'emergency-ca' (SoftHSM project SoftHSM v2, serial 1a2b)`.
    pub token: String,
    /// The key on it, e.g. `key 'breakglass-ca' (id 01a2)`.
    pub key: String,
    pub pin: PinStatus,
    /// Further facts the token reports (firmware, policies, warnings), for `status`.
    pub details: Vec<(String, String)>,
    /// How the token uses the PIN beyond the login, for the pre-PIN screen and `status`: e.g.
    /// a key that asks for it at every signature.
    pub pin_use: Option<String>,
    /// Every signature waits for a touch (a YubiKey slot with touch policy `always`); false
    /// where the token does not say.
    pub touch_always: bool,
}

/// A CA key on a token: its public half, readable without a PIN, and signing after login.
pub trait CaKey {
    /// The CA public key, as read from the token.
    fn public_key(&self) -> &KeyData;

    /// Which token and key these are, and the PIN state.
    fn info(&self) -> KeyInfo;

    /// Log in with the PIN. A wrong PIN is [`Error::WrongPin`] with the tries left if known.
    fn login(&mut self, pin: &Pin) -> Result<()>;

    /// Sign `message` (the whole message; the backend hashes it if its token signs digests).
    fn sign(&self, message: &[u8]) -> Result<TokenSignature>;

    /// The optional attestation ability, where the token has it.
    fn attestation(&self) -> Option<&dyn Attest> {
        None
    }
}

/// Optional ability: prove the key was generated on the device.
pub trait Attest {
    /// The attestation certificate chain as PEM, leaf first.
    fn attestation_pem(&self) -> Result<String>;
}

/// Adapts a [`CaKey`] to ssh-key's signer trait, keeping the backend's own error (the
/// `signature` crate's error type would lose it).
pub struct SshSigner<'a> {
    key: &'a dyn CaKey,
    failure: RefCell<Option<Error>>,
}

impl signature::Signer<ssh_key::Signature> for SshSigner<'_> {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<ssh_key::Signature, signature::Error> {
        self.key
            .sign(msg)
            .and_then(TokenSignature::into_ssh)
            .map_err(|e| {
                *self.failure.borrow_mut() = Some(e);
                signature::Error::new()
            })
    }
}

impl From<&SshSigner<'_>> for KeyData {
    fn from(signer: &SshSigner<'_>) -> KeyData {
        signer.key.public_key().clone()
    }
}

/// Run an ssh-key signing operation (certificate builder, SSHSIG) with `key` as the signer.
/// A token failure comes back as the backend's own error; any other failure as an SSH error
/// described by `context`.
pub fn with_signer<T>(
    key: &dyn CaKey,
    context: &str,
    op: impl FnOnce(&SshSigner<'_>) -> ssh_key::Result<T>,
) -> Result<T> {
    let signer = SshSigner {
        key,
        failure: RefCell::new(None),
    };
    op(&signer).map_err(|e| {
        signer
            .failure
            .into_inner()
            .unwrap_or_else(|| Error::ssh(context, e))
    })
}

/// Open the CA key that `uri` names. Nothing is asked and no PIN is used; what the key has
/// to tell the custodian later (a touch prompt) goes to `prompter`.
pub fn open(uri: &CaUri, prompter: Arc<dyn Prompter>) -> Result<Box<dyn CaKey>> {
    open_if_present(uri, prompter)?.into_result()
}

/// Whether what a URI selects is there. `Absent` only when the middleware works and simply
/// finds no token (or no YubiKey) the URI selects: not plugged in, or another one is. Any
/// other failure (a module that does not load, pcscd unreachable, a token that cannot be
/// read, several tokens that match, a present token without the key) is an error, never
/// `Absent`: a command that can do without the token must not hide those.
pub enum Presence<T> {
    Present(T),
    Absent(Absent),
}

/// No token the URI selects is present: what was looked for, in a few words, and the error a
/// command that needs the token reports (with its hint).
#[derive(Debug)]
pub struct Absent {
    /// E.g. `no token found through the PKCS#11 module /usr/lib/softhsm/libsofthsm2.so`,
    /// `no YubiKey found` (escaped, one line).
    pub what: String,
    pub error: Error,
}

impl Absent {
    pub fn new(what: impl Into<String>, error: Error) -> Absent {
        Absent {
            what: what.into(),
            error,
        }
    }
}

impl<T> Presence<T> {
    /// The value, or the absence as the error it is for a command that needs the token.
    pub fn into_result(self) -> Result<T> {
        match self {
            Presence::Present(v) => Ok(v),
            Presence::Absent(a) => Err(a.error),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Presence<U> {
        match self {
            Presence::Present(v) => Presence::Present(f(v)),
            Presence::Absent(a) => Presence::Absent(a),
        }
    }
}

/// [`open`], telling "no such token is plugged in" apart from every other failure (see
/// [`Presence`]): for the commands that can use the state directory's `ca.pub` instead.
pub fn open_if_present(
    uri: &CaUri,
    prompter: Arc<dyn Prompter>,
) -> Result<Presence<Box<dyn CaKey>>> {
    Ok(match uri {
        CaUri::Pkcs11(u) => {
            pkcs11::Pkcs11Key::open_if_present(u)?.map(|k| Box::new(k) as Box<dyn CaKey>)
        }
        CaUri::Yubikey(u) => {
            piv::PivKey::open_if_present(u, prompter)?.map(|k| Box::new(k) as Box<dyn CaKey>)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_read_as_before() {
        for (note, text) in [
            (Note::TouchNow, "Touch the YubiKey now (its light is blinking)."),
            (Note::FactoryPin, "WARNING: this YubiKey still uses the factory default PIN: change it (ykman piv access change-pin) before it goes back into the vault."),
            (Note::Card("YubiKey serial 7 (firmware 5.7.1)".into()), "Card: YubiKey serial 7 (firmware 5.7.1)"),
            (Note::Replacing { fingerprint: "SHA256:x".into(), slot: 0x9c }, "WARNING: --force: the CA key SHA256:x in slot 9c will be REPLACED"),
            (Note::FactoryPinAtInit, "WARNING: this YubiKey still uses the factory default PIN. Change the PIN and PUK before it goes into the vault (ykman piv access change-pin / change-puk)."),
            (Note::FactoryManagementKey, "WARNING: this YubiKey still has the FACTORY management key: anyone holding it can replace keys without the PIN."),
            (Note::ManagementKeyReplaced, "The management key was replaced by a random one, stored on the card behind the PIN."),
            (Note::Generating { algorithm: Algorithm::EcdsaP384, slot: 0x82, touch: false }, "Generating the ecdsa-p384 CA key in slot 82"),
            (Note::Generating { algorithm: Algorithm::EcdsaP256, slot: 0x9c, touch: true }, "Generating the ecdsa-p256 CA key in slot 9c (touch the YubiKey when it blinks)"),
        ] {
            assert_eq!(note.to_string(), text);
        }
    }

    fn ecdsa(curve: EcdsaCurve, rs: Vec<u8>) -> Vec<u8> {
        let sig = TokenSignature::Ecdsa { curve, rs }.into_ssh().unwrap();
        sig.as_bytes().to_vec()
    }

    #[test]
    fn ecdsa_plain_values() {
        let mut rs = vec![0x11; 32];
        rs.extend([0x22; 32]);
        let blob = ecdsa(EcdsaCurve::NistP256, rs);
        assert_eq!(&blob[..4], &[0, 0, 0, 32]);
        assert_eq!(&blob[4..36], &[0x11; 32]);
        assert_eq!(&blob[36..40], &[0, 0, 0, 32]);
        assert_eq!(&blob[40..], &[0x22; 32]);
    }

    #[test]
    fn ecdsa_high_bit_gets_one_zero_byte() {
        // s = c0…c0, not ff…ff: that is above the order of P-256, refused below.
        let mut rs = vec![0x80; 32];
        rs.extend([0xc0; 32]);
        let blob = ecdsa(EcdsaCurve::NistP256, rs);
        assert_eq!(&blob[..5], &[0, 0, 0, 33, 0]);
        assert_eq!(&blob[5..37], &[0x80; 32]);
        assert_eq!(&blob[37..42], &[0, 0, 0, 33, 0]);
    }

    #[test]
    fn ecdsa_leading_zeros_are_stripped() {
        // r = 00 00 7f ..., s = 00 80 ...: r loses two bytes, s loses its zero and regains one.
        let mut r = vec![0, 0, 0x7f];
        r.extend([1; 29]);
        let mut s = vec![0, 0x80];
        s.extend([2; 30]);
        let blob = ecdsa(EcdsaCurve::NistP256, [r, s].concat());
        assert_eq!(&blob[..5], &[0, 0, 0, 30, 0x7f]);
        assert_eq!(&blob[34..39], &[0, 0, 0, 32, 0]);
        assert_eq!(blob[39], 0x80);
        assert_eq!(blob.len(), 4 + 30 + 4 + 32);
    }

    #[test]
    fn ecdsa_p384_width_and_bad_lengths() {
        let blob = ecdsa(EcdsaCurve::NistP384, vec![0x01; 96]);
        assert_eq!(&blob[..4], &[0, 0, 0, 48]);
        for (curve, len) in [(EcdsaCurve::NistP256, 63), (EcdsaCurve::NistP384, 64)] {
            let err = TokenSignature::Ecdsa {
                curve,
                rs: vec![1; len],
            }
            .into_ssh()
            .unwrap_err();
            assert!(err.to_string().contains("malformed signature"), "{err}");
        }
        let zero_r = [vec![0; 32], vec![1; 32]].concat();
        assert!(TokenSignature::Ecdsa {
            curve: EcdsaCurve::NistP256,
            rs: zero_r
        }
        .into_ssh()
        .is_err());
    }

    #[test]
    fn ecdsa_out_of_range_refused() {
        use p256::elliptic_curve::bigint::Encoding;
        use p256::elliptic_curve::Curve;
        let n = p256::NistP256::ORDER.to_be_bytes().to_vec();
        let mut below = n.clone();
        *below.last_mut().unwrap() -= 1;
        let one = [vec![0; 31], vec![1]].concat();
        ecdsa(EcdsaCurve::NistP256, [below.clone(), below].concat());
        for rs in [
            [n.clone(), one.clone()].concat(),
            [one.clone(), n].concat(),
            [one, vec![0xff; 32]].concat(),
        ] {
            let err = TokenSignature::Ecdsa {
                curve: EcdsaCurve::NistP256,
                rs,
            }
            .into_ssh()
            .unwrap_err();
            assert!(err.to_string().contains("not below the order"), "{err}");
        }
    }

    #[test]
    fn ssh_encoding_verifies_with_p256() {
        // Real signatures over many messages: the converted blob must verify as an SSH signature.
        use p256::ecdsa::{signature::Signer, Signature, SigningKey};
        use signature::Verifier;
        use ssh_key::public::EcdsaPublicKey;
        let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let public = KeyData::Ecdsa(
            EcdsaPublicKey::from_sec1_bytes(sk.verifying_key().to_encoded_point(false).as_bytes())
                .unwrap(),
        );
        let mut short = 0;
        for i in 0u32..600 {
            let msg = i.to_be_bytes();
            let sig: Signature = sk.sign(&msg);
            let rs = sig.to_bytes().to_vec();
            if rs[0] < 0x01 || rs[0] >= 0x80 || rs[32] < 0x01 || rs[32] >= 0x80 {
                short += 1;
            }
            let ssh = TokenSignature::Ecdsa {
                curve: EcdsaCurve::NistP256,
                rs,
            }
            .into_ssh()
            .unwrap();
            public.verify(&msg, &ssh).unwrap();
        }
        assert!(
            short > 0,
            "the sample must include r or s with a zero or high first byte"
        );
    }
}
