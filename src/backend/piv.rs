//! The YubiKey PIV backend on the `yubikey` crate. Quirks handled here: PIV has no "read public
//! key" command, so the public key comes from the X.509 certificate `init` writes into the slot
//! (which OpenSSH's PKCS#11, ykman and OpenSC read too); ECDSA signs a host-computed digest and
//! returns DER; RSA needs host-side PKCS#1 v1.5 padding. Every crate call runs behind a panic
//! guard (the crate is known to panic on some cards), and the crate's logging, which would
//! include APDUs with the PIN, is never enabled by this program.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256, Sha384, Sha512};
use ssh_key::public::{EcdsaPublicKey, KeyData, RsaPublicKey};
use ssh_key::{EcdsaCurve, Mpint};
use x509_cert::der::Encode;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;
use yubikey::certificate::{yubikey_signer, Certificate};
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{MgmKey, PinPolicy, TouchPolicy, YubiKey};
use zeroize::Zeroizing;

use super::{Absent, CaKey, KeyInfo, Note, PinStatus, Presence, Prompter, TokenSignature};
use crate::error::{Error, Result};
use crate::key::{self, Algorithm};
use crate::pin::Pin;
use crate::uri::YubikeyUri;

/// The factory PIN of every YubiKey; a CA must never keep it.
const FACTORY_PIN: &str = "123456";
/// Firmware below this is affected by EUCLEAK (ECDSA key recovery with physical access).
const EUCLEAK_FIXED: (u8, u8) = (5, 7);
/// How long a signature may take before the custodian is asked to touch the key.
const TOUCH_PROMPT_AFTER: Duration = Duration::from_millis(700);

/// Run a `yubikey` crate call; a panic inside it becomes an error instead of a crash.
fn guard<T>(what: &str, f: impl FnOnce() -> yubikey::Result<T>) -> Result<T> {
    settle(what, caught(f))
}

/// Run a `yubikey` crate call; `None` if it panicked.
fn caught<T>(f: impl FnOnce() -> yubikey::Result<T>) -> Option<yubikey::Result<T>> {
    crate::panic_guard::quietly(AssertUnwindSafe(f))
}

/// The outcome of a guarded `yubikey` call (`None`: it panicked) as a result.
fn settle<T>(what: &str, outcome: Option<yubikey::Result<T>>) -> Result<T> {
    match outcome {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(yk_error(what, e)),
        None => Err(Error::token(format!("{what}: the YubiKey library failed unexpectedly (an internal panic)"))
            .with_hint("re-insert the YubiKey and try again; if it persists, use the backup token and report this")),
    }
}

fn yk_error(what: &str, e: yubikey::Error) -> Error {
    match e {
        yubikey::Error::WrongPin { tries } => Error::wrong_pin(Some(u32::from(tries))),
        yubikey::Error::PinLocked => Error::wrong_pin(Some(0)),
        yubikey::Error::AuthenticationError => Error::token(format!("{what}: the card refused the operation (wrong management key, PIN not verified, or no touch)"))
            .with_hint("if the YubiKey was blinking, touch it when asked; otherwise check the management key or PIN"),
        other => Error::yubikey(what, other),
    }
}

/// A YubiKey found on the PC/SC readers.
struct Found {
    serial: u32,
    reader: String,
}

/// Whether a PC/SC failure only means that no reader is connected: a YubiKey is its own USB
/// reader, so pcsc-lite answers "no readers" when none is plugged in.
fn no_readers(e: &yubikey::Error) -> bool {
    matches!(
        e,
        yubikey::Error::PcscError {
            inner: Some(pcsc::Error::NoReadersAvailable)
        }
    )
}

/// Every YubiKey present, by serial. Opening each is how the crate learns its serial.
fn list_keys() -> Result<Vec<Found>> {
    let opened = caught(yubikey::reader::Context::open);
    if matches!(&opened, Some(Err(e)) if no_readers(e)) {
        return Ok(Vec::new());
    }
    let mut ctx = settle("cannot reach the smart-card service (pcscd)", opened).map_err(|e| {
        e.with_hint("is pcscd running? (systemctl start pcscd, or install the pcscd package)")
    })?;
    let listed = caught(|| ctx.iter().map(|i| i.collect::<Vec<_>>()));
    if matches!(&listed, Some(Err(e)) if no_readers(e)) {
        return Ok(Vec::new());
    }
    let readers = settle("cannot list smart-card readers", listed)?;
    let mut found = Vec::new();
    for reader in readers {
        let name = reader.name().into_owned();
        if let Ok(yk) = guard("open", || reader.open()) {
            found.push(Found {
                serial: yk.serial().0,
                reader: name,
            });
        }
    }
    Ok(found)
}

/// Open the one YubiKey the URI selects: by `serial=`, or the only one present.
fn open_card(uri: &YubikeyUri) -> Result<YubiKey> {
    open_card_if_present(uri)?.into_result()
}

/// [`open_card`], with no YubiKey at all, or none with the URI's serial, as
/// [`Presence::Absent`].
fn open_card_if_present(uri: &YubikeyUri) -> Result<Presence<YubiKey>> {
    let found = list_keys()?;
    let listing = || {
        found
            .iter()
            .map(|f| format!("  serial={} ({})", f.serial, f.reader))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let serial =
        match (uri.serial, found.as_slice()) {
            (_, []) => {
                let what = "no YubiKey found";
                let error = Error::token(what).with_hint(
                "plug the YubiKey in (and check that pcscd is running: pcsc_scan lists readers)",
            );
                return Ok(Presence::Absent(Absent::new(what, error)));
            }
            (Some(s), _) if found.iter().any(|f| f.serial == s) => s,
            (Some(s), _) => {
                let error = Error::token(format!(
                    "no YubiKey with serial {s}; present:\n{}",
                    listing()
                ))
                .with_hint("fix serial= in the CA URI");
                let what = format!(
                    "no YubiKey with serial {s} (other YubiKeys: {})",
                    found.len()
                );
                return Ok(Presence::Absent(Absent::new(what, error)));
            }
            (None, [one]) => one.serial,
            (None, several) => return Err(Error::token(format!(
                "{} YubiKeys are plugged in, refusing to guess:\n{}",
                several.len(),
                listing()
            ))
            .with_hint(
                "add ;serial=N to the CA URI (yubikey:slot-id=9c;serial=N), or unplug the others",
            )),
        };
    guard("cannot open the YubiKey", || {
        YubiKey::open_by_serial(yubikey::Serial(serial))
    })
    .map(Presence::Present)
}

fn slot_id(slot: u8) -> Result<SlotId> {
    SlotId::try_from(slot).map_err(|_| Error::usage(format!("{slot:02x} is not a PIV key slot")))
}

/// The PIV algorithm for a CA algorithm, or a usage error for one a PIV slot cannot hold.
pub fn algorithm_id(a: Algorithm) -> Result<AlgorithmId> {
    match a {
        Algorithm::EcdsaP256 => Ok(AlgorithmId::EccP256),
        Algorithm::EcdsaP384 => Ok(AlgorithmId::EccP384),
        Algorithm::Rsa2048 => Ok(AlgorithmId::Rsa2048),
        Algorithm::Ed25519 => Err(Error::usage(
            "this YubiKey library does not support Ed25519 PIV keys",
        )
        .with_hint("use --algorithm ecdsa-p256 (default) or ecdsa-p384 on a YubiKey")),
        other => Err(
            Error::usage(format!("{other} is not available in a YubiKey PIV slot")).with_hint(
                "use --algorithm ecdsa-p256 (default), ecdsa-p384 or rsa-2048 on a YubiKey",
            ),
        ),
    }
}

/// The OpenSSH form of a slot's public key.
fn key_data(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyData> {
    let bad = |why: &str| Error::token(format!("the slot's public key cannot be used: {why}"));
    let bits = spki.subject_public_key.raw_bytes();
    let oid = spki.algorithm.oid.to_string();
    match oid.as_str() {
        "1.2.840.10045.2.1" => EcdsaPublicKey::from_sec1_bytes(bits)
            .map(KeyData::Ecdsa)
            .map_err(|_| bad("invalid EC point")),
        "1.2.840.113549.1.1.1" => {
            use rsa::traits::PublicKeyParts;
            let der = spki.to_der().map_err(|_| bad("cannot encode"))?;
            let key = <rsa::RsaPublicKey as rsa::pkcs8::DecodePublicKey>::from_public_key_der(&der)
                .map_err(|_| bad("invalid RSA key"))?;
            let mpint = |n: &rsa::BigUint| {
                Mpint::from_positive_bytes(&n.to_bytes_be()).map_err(|_| bad("RSA number"))
            };
            Ok(KeyData::Rsa(RsaPublicKey {
                e: mpint(key.e())?,
                n: mpint(key.n())?,
            }))
        }
        other => Err(bad(&format!("unsupported algorithm {other}"))),
    }
}

/// PKCS#1 v1.5 type-1 padding of a SHA-512 DigestInfo, for a 2048-bit key (the card does raw
/// RSA). The DigestInfo prefix is `rsa`'s; the padding around it is the few lines of RFC 8017
/// 9.2 that `rsa` only applies inside its own private-key operation.
fn pkcs1_sha512(message: &[u8], len: usize) -> Vec<u8> {
    let prefix = rsa::Pkcs1v15Sign::new::<Sha512>().prefix;
    let digest = Sha512::digest(message);
    let t_len = prefix.len() + digest.len();
    let mut em = vec![0xff; len];
    em[0] = 0x00;
    em[1] = 0x01;
    em[len - t_len - 1] = 0x00;
    em[len - t_len..len - digest.len()].copy_from_slice(&prefix);
    em[len - digest.len()..].copy_from_slice(&digest);
    em
}

/// Run `f` (a signature on the card); if it takes long, the card is waiting for a touch and
/// the custodian is told so.
fn with_touch_prompt<T>(prompter: &dyn Prompter, f: impl FnOnce() -> T) -> T {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            if wait.recv_timeout(TOUCH_PROMPT_AFTER).is_err() {
                prompter.note(&Note::TouchNow);
            }
        });
        let out = f();
        let _ = done.send(());
        out
    })
}

/// A CA key in a YubiKey PIV slot.
pub struct PivKey {
    card: RefCell<YubiKey>,
    slot: SlotId,
    public: KeyData,
    algorithm: Algorithm,
    /// Kept (zeroized) while the key is open: slots with PIN policy "always" need the PIN
    /// before every signature (the certificate and the ledger checkpoint).
    pin: Option<Pin>,
    /// Where the touch prompt and warnings go.
    prompter: Arc<dyn Prompter>,
}

impl PivKey {
    /// Open the slot the URI names and read its public key from the slot's certificate (no PIN).
    pub fn open(uri: &YubikeyUri, prompter: Arc<dyn Prompter>) -> Result<Self> {
        Self::open_if_present(uri, prompter)?.into_result()
    }

    /// [`PivKey::open`], with no YubiKey the URI selects as [`Presence::Absent`] (a YubiKey
    /// that is there without the key in the slot is an error).
    pub fn open_if_present(
        uri: &YubikeyUri,
        prompter: Arc<dyn Prompter>,
    ) -> Result<Presence<Self>> {
        let mut card = match open_card_if_present(uri)? {
            Presence::Present(card) => card,
            Presence::Absent(a) => return Ok(Presence::Absent(a)),
        };
        let slot = slot_id(uri.slot)?;
        let public = read_slot_key(&mut card, slot)?.ok_or_else(|| {
            Error::token(format!(
                "YubiKey {} has no readable certificate in slot {:02x}, so it holds no CA key this tool can use",
                card.serial(),
                uri.slot
            ))
            .with_hint("check the serial and slot-id: this is not the CA YubiKey, or not its slot. Only to set up a NEW CA on it: 'breakglass-ca --state-dir NEW-DIR --ca URI init' (it writes the certificate; a state directory that already has a CA is refused)")
        })?;
        let algorithm = Algorithm::of_key(&public).ok_or_else(|| {
            Error::token(format!(
                "slot {:02x} holds a key type this tool does not use as a CA",
                uri.slot
            ))
        })?;
        Ok(Presence::Present(PivKey {
            card: RefCell::new(card),
            slot,
            public,
            algorithm,
            pin: None,
            prompter,
        }))
    }

    /// The card's serial number.
    pub fn serial(&self) -> u32 {
        self.card.borrow().serial().0
    }

    fn describe_card(card: &YubiKey) -> String {
        format!(
            "YubiKey serial {} (firmware {})",
            card.serial(),
            card.version()
        )
    }

    /// Firmware, policies and PIN/PUK facts, for `status`; and whether the slot's touch policy
    /// is `always`.
    fn details(
        card: &mut YubiKey,
        slot: SlotId,
        algorithm: Algorithm,
    ) -> (Vec<(String, String)>, bool) {
        let v = card.version();
        let mut out = vec![("firmware".to_string(), v.to_string())];
        let ecdsa = matches!(algorithm, Algorithm::EcdsaP256 | Algorithm::EcdsaP384);
        if (v.major, v.minor) < EUCLEAK_FIXED && ecdsa {
            out.push((
                "WARNING".into(),
                "firmware below 5.7 is affected by EUCLEAK (ECDSA key recovery with physical access and lab equipment): keep the YubiKey in the vault and plan a replacement".into(),
            ));
        }
        let mut touch_always = false;
        match guard("metadata", || piv::metadata(card, slot)) {
            Ok(meta) => {
                if let Some((pin, touch)) = meta.policy {
                    out.push(("policies".into(), format!("PIN {pin:?}, touch {touch:?}")));
                    touch_always = touch == TouchPolicy::Always;
                }
            }
            Err(_) => out.push((
                "policies".into(),
                "not reported by this card (GET METADATA unsupported)".into(),
            )),
        }
        (out, touch_always)
    }
}

impl super::Attest for PivKey {
    /// The slot's attestation certificate, then the device's intermediate from slot f9.
    fn attestation_pem(&self) -> Result<String> {
        let mut card = self.card.borrow_mut();
        let unsupported = |e: Error| {
            Error::token(format!("attestation is not supported by this card: {e}"))
                .with_hint("attestation needs a real YubiKey (firmware 4.3 or later) and a key generated on it")
        };
        let leaf = guard("attest", || piv::attest(&mut card, self.slot)).map_err(unsupported)?;
        let intermediate = guard("read the attestation certificate (slot f9)", || {
            Certificate::read(&mut card, SlotId::Attestation)
        })
        .map_err(unsupported)?;
        let inter_der = intermediate
            .cert
            .to_der()
            .map_err(|e| Error::token(format!("cannot encode: {e}")))?;
        Ok(format!("{}{}", pem(&leaf)?, pem(&inter_der)?))
    }
}

/// A certificate as PEM, LF line endings.
fn pem(der: &[u8]) -> Result<String> {
    pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der)
        .map_err(|e| Error::token(format!("cannot encode the attestation certificate: {e}")))
}

/// The public key of the certificate in `slot`, or `None` if the slot has none.
fn read_slot_key(card: &mut YubiKey, slot: SlotId) -> Result<Option<KeyData>> {
    match crate::panic_guard::quietly(AssertUnwindSafe(|| Certificate::read(card, slot))) {
        Some(Ok(cert)) => key_data(&cert.cert.tbs_certificate.subject_public_key_info).map(Some),
        // An empty slot: NotFound on a YubiKey, an empty (invalid) object on some other cards.
        Some(Err(yubikey::Error::NotFound | yubikey::Error::InvalidObject)) => Ok(None),
        Some(Err(e)) => Err(yk_error("cannot read the slot's certificate", e)),
        None => Err(Error::token(
            "the YubiKey library failed reading the slot (an internal panic)",
        )),
    }
}

impl CaKey for PivKey {
    fn public_key(&self) -> &KeyData {
        &self.public
    }

    fn info(&self) -> KeyInfo {
        let mut card = self.card.borrow_mut();
        let tries = guard("PIN tries", || card.get_pin_retries()).ok();
        let (details, touch_always) = Self::details(&mut card, self.slot, self.algorithm);
        KeyInfo {
            token: Self::describe_card(&card),
            key: format!("slot {:02x} ({})", u8::from(self.slot), self.algorithm),
            pin: PinStatus {
                tries_left: tries.map(u32::from),
                count_low: tries.is_some_and(|t| t < 3),
            },
            details,
            pin_use: None,
            touch_always,
        }
    }

    fn login(&mut self, pin: &Pin) -> Result<()> {
        verify_pin(&mut self.card.borrow_mut(), pin)?;
        if pin.expose() == FACTORY_PIN {
            self.prompter.note(&Note::FactoryPin);
        }
        self.pin = Some(Pin::new(Zeroizing::new(pin.expose().to_owned()))?);
        Ok(())
    }

    fn sign(&self, message: &[u8]) -> Result<TokenSignature> {
        let mut card = self.card.borrow_mut();
        if let Some(pin) = &self.pin {
            // PIN policy "always" consumes the verification with each signature.
            verify_pin(&mut card, pin)?;
        }
        let (alg, input) = match self.algorithm {
            Algorithm::EcdsaP256 => (AlgorithmId::EccP256, Sha256::digest(message).to_vec()),
            Algorithm::EcdsaP384 => (AlgorithmId::EccP384, Sha384::digest(message).to_vec()),
            Algorithm::Rsa2048 => (AlgorithmId::Rsa2048, pkcs1_sha512(message, 256)),
            other => {
                return Err(Error::token(format!(
                    "{other} cannot be used in a PIV slot"
                )))
            }
        };
        let slot = self.slot;
        let out = with_touch_prompt(&*self.prompter, || {
            guard("the YubiKey refused to sign", || {
                piv::sign_data(&mut card, &input, alg, slot)
            })
        })?;
        let der = out.as_slice();
        let fixed = |curve| -> Result<TokenSignature> {
            let rs = match curve {
                EcdsaCurve::NistP256 => {
                    p256::ecdsa::Signature::from_der(der).map(|s| s.to_bytes().to_vec())
                }
                _ => p384::ecdsa::Signature::from_der(der).map(|s| s.to_bytes().to_vec()),
            }
            .map_err(|_| Error::token("the YubiKey returned a malformed ECDSA signature"))?;
            Ok(TokenSignature::Ecdsa { curve, rs })
        };
        match self.algorithm {
            Algorithm::EcdsaP256 => fixed(EcdsaCurve::NistP256),
            Algorithm::EcdsaP384 => fixed(EcdsaCurve::NistP384),
            _ => Ok(TokenSignature::RsaSha512(der.to_vec())),
        }
    }

    fn attestation(&self) -> Option<&dyn super::Attest> {
        Some(self)
    }
}

/// Where the management key comes from for `init`.
pub enum MgmSource {
    /// A file holding the 24-byte 3DES key as 48 hex digits.
    File(std::path::PathBuf),
    /// The PIN-protected key stored on the card (by `--protect-management-key` or ykman), else
    /// a no-echo prompt.
    CardOrPrompt,
}

/// What `init` needs besides the URI.
pub struct InitOptions {
    pub algorithm: Algorithm,
    pub force: bool,
    pub pin_policy: PinPolicy,
    pub touch_policy: TouchPolicy,
    pub mgm: MgmSource,
    pub protect_management_key: bool,
}

/// The management key from 48 hex digits (either case, surrounding spaces ignored), decoded
/// by `base16ct` (constant-time) into a buffer that is zeroized.
fn read_mgm_hex(text: &str, source: &str) -> Result<MgmKey> {
    let mut bytes = Zeroizing::new([0u8; 24]);
    let hex = text.trim();
    match base16ct::mixed::decode(hex, &mut bytes[..]) {
        Ok(key) if key.len() == 24 => {}
        _ => {
            return Err(Error::usage(format!(
                "the management key from {source} is not 48 hex digits (a 24-byte 3DES key)"
            )))
        }
    }
    MgmKey::from_bytes(&bytes[..]).map_err(|e| yk_error("invalid management key", e))
}

/// Create the CA key in the slot: refuse to replace one without `--force`, authenticate with a
/// management key that is never silently the factory default, generate the key with the
/// requested PIN and touch policies, write a self-signed certificate for it into the slot.
pub fn init(
    uri: &YubikeyUri,
    opts: &InitOptions,
    pin: &Pin,
    prompter: Arc<dyn Prompter>,
) -> Result<PivKey> {
    let alg = algorithm_id(opts.algorithm)?;
    let slot = slot_id(uri.slot)?;
    let mut card = open_card(uri)?;
    prompter.note(&Note::Card(PivKey::describe_card(&card)));
    refuse_existing_key(&mut card, slot, opts.force, &*prompter)?;
    verify_pin(&mut card, pin)?;
    if pin.expose() == FACTORY_PIN {
        prompter.note(&Note::FactoryPinAtInit);
    }
    authenticate(&mut card, opts, &*prompter)?;
    let public = generate_key(&mut card, slot, alg, opts, pin, &*prompter)?;
    Ok(PivKey {
        card: RefCell::new(card),
        slot,
        public,
        algorithm: opts.algorithm,
        pin: None,
        prompter,
    })
}

/// `init`, step 1: a key already in the slot is refused, or with `--force` announced.
fn refuse_existing_key(
    card: &mut YubiKey,
    slot: SlotId,
    force: bool,
    prompter: &dyn Prompter,
) -> Result<()> {
    let Some(old) = read_slot_key(card, slot)? else {
        return Ok(());
    };
    let fp = key::fingerprint(&old);
    let slot = u8::from(slot);
    if !force {
        return Err(Error::token(format!("slot {slot:02x} of this YubiKey already holds a CA key ({fp})"))
            .with_hint("every host trusts that key; to keep it, use 'breakglass-ca pubkey'. To replace it (and re-provision every host), run init again with --force"));
    }
    prompter.note(&Note::Replacing {
        fingerprint: fp,
        slot,
    });
    Ok(())
}

/// Verify the PIN on the card (a wrong one is [`Error::WrongPin`] with the tries left).
fn verify_pin(card: &mut YubiKey, pin: &Pin) -> Result<()> {
    guard("cannot verify the PIN", || {
        card.verify_pin(pin.expose().as_bytes())
    })
}

/// `init`, step 2: authenticate with the management key. The factory key is replaced by a
/// random one stored PIN-protected on the card (`--protect-management-key`) or refused;
/// another comes from [`MgmSource`].
fn authenticate(card: &mut YubiKey, opts: &InitOptions, prompter: &dyn Prompter) -> Result<()> {
    let factory_mgm = guard("management key", || card.authenticate(MgmKey::default())).is_ok();
    if !factory_mgm {
        let key = management_key(card, &opts.mgm, prompter)?;
        return guard("the management key was not accepted", || {
            card.authenticate(key)
        });
    }
    prompter.note(&Note::FactoryManagementKey);
    if !opts.protect_management_key {
        return Err(Error::token("refusing to use the factory management key")
            .with_hint("add --protect-management-key to replace it with a random key stored PIN-protected on the card (recommended), or set your own with ykman and pass --management-key-file"));
    }
    let new = MgmKey::generate();
    guard("cannot store the new management key", || {
        new.set_protected(card)
    })?;
    prompter.note(&Note::ManagementKeyReplaced);
    guard("cannot authenticate with the new management key", || {
        card.authenticate(new.clone())
    })
}

/// The management key from its file, or the PIN-protected one on the card, else the prompt.
fn management_key(
    card: &mut YubiKey,
    source: &MgmSource,
    prompter: &dyn Prompter,
) -> Result<MgmKey> {
    match source {
        MgmSource::File(path) => {
            // A secret like the PIN: read bounded, into a buffer that is zeroized.
            let file = crate::fsx::open_input(path, "management key file")?.ok_or_else(|| {
                Error::file(
                    "read the management key file",
                    path,
                    std::io::ErrorKind::NotFound.into(),
                )
            })?;
            let name = crate::text::escape(&path.to_string_lossy()).into_owned();
            let bytes = crate::fsx::read_limited_secret(
                file,
                crate::fsx::limit::PIN_FILE,
                &format!("management key file {name}"),
            )?;
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                Error::usage(format!(
                    "the management key from {name} is not 48 hex digits (a 24-byte 3DES key)"
                ))
            })?;
            read_mgm_hex(text, &name)
        }
        MgmSource::CardOrPrompt => {
            if let Ok(key) = guard("protected management key", || MgmKey::get_protected(card)) {
                return Ok(key);
            }
            let text = prompter.secret("Management key (48 hex digits): ").map_err(|e| {
                Error::usage(format!("cannot ask for the management key on a terminal ({e})"))
                    .with_hint("pass --management-key-file PATH, or store it PIN-protected on the card (ykman piv access change-management-key --generate --protect)")
            })?;
            read_mgm_hex(&text, "the prompt")
        }
    }
}

/// `init`, step 3: generate the key in the slot with the PIN and touch policies, write its
/// certificate and check that it reads back as the new key.
fn generate_key(
    card: &mut YubiKey,
    slot: SlotId,
    alg: AlgorithmId,
    opts: &InitOptions,
    pin: &Pin,
    prompter: &dyn Prompter,
) -> Result<KeyData> {
    prompter.note(&Note::Generating {
        algorithm: opts.algorithm,
        slot: u8::from(slot),
        touch: !matches!(opts.touch_policy, TouchPolicy::Never),
    });
    let spki = guard("the YubiKey could not generate the key", || {
        piv::generate(card, slot, alg, opts.pin_policy, opts.touch_policy)
    })?;
    let public = key_data(&spki)?;
    verify_pin(card, pin)?;
    write_certificate(card, slot, opts.algorithm, spki, prompter)?;
    if read_slot_key(card, slot)?.as_ref() != Some(&public) {
        return Err(Error::token(
            "the certificate read back from the slot does not match the new key",
        ));
    }
    Ok(public)
}

/// A self-signed certificate for the slot's key, so that the public key can be read without a
/// PIN (by this tool, OpenSSH's PKCS#11 provider, ykman and OpenSC).
fn write_certificate(
    card: &mut YubiKey,
    slot: SlotId,
    algorithm: Algorithm,
    spki: SubjectPublicKeyInfoOwned,
    prompter: &dyn Prompter,
) -> Result<()> {
    let bad = |e: String| Error::token(format!("cannot build the slot certificate: {e}"));
    let serial = SerialNumber::new(&[0x01]).map_err(|e| bad(e.to_string()))?;
    let validity = Validity::from_now(Duration::from_secs(100 * 365 * 24 * 3600))
        .map_err(|e| bad(e.to_string()))?;
    let subject =
        Name::from_str("CN=breakglass-ca emergency SSH CA").map_err(|e| bad(e.to_string()))?;
    let result =
        with_touch_prompt(prompter, || match algorithm {
            Algorithm::EcdsaP256 => Certificate::generate_self_signed::<_, p256::NistP256>(
                card,
                slot,
                serial,
                validity,
                subject,
                spki,
                |_| Ok(()),
            )
            .map(|_| ()),
            Algorithm::EcdsaP384 => Certificate::generate_self_signed::<_, p384::NistP384>(
                card,
                slot,
                serial,
                validity,
                subject,
                spki,
                |_| Ok(()),
            )
            .map(|_| ()),
            _ => Certificate::generate_self_signed::<
                _,
                yubikey_signer::YubiRsa<yubikey_signer::Rsa2048>,
            >(card, slot, serial, validity, subject, spki, |_| Ok(()))
            .map(|_| ()),
        });
    result.map_err(|e| yk_error("cannot write the certificate into the slot", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only "no readers" means "not plugged in"; pcscd not running stays an error.
    #[test]
    fn only_no_readers_reads_as_absent() {
        let pcsc = |e| yubikey::Error::PcscError { inner: Some(e) };
        assert!(no_readers(&pcsc(pcsc::Error::NoReadersAvailable)));
        for other in [
            pcsc(pcsc::Error::NoService),
            pcsc(pcsc::Error::NoSmartcard),
            yubikey::Error::PcscError { inner: None },
            yubikey::Error::NotFound,
        ] {
            assert!(!no_readers(&other), "{other:?}");
        }
    }

    #[test]
    fn pkcs1_padding_layout() {
        let em = pkcs1_sha512(b"abc", 256);
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..2], &[0x00, 0x01]);
        let zero = em.iter().skip(2).position(|b| *b != 0xff).unwrap() + 2;
        assert_eq!(em[zero], 0x00);
        assert_eq!(256 - zero - 1, 19 + 64);
        assert_eq!(em[256 - 64..], Sha512::digest(b"abc")[..]);
        // The DER DigestInfo header for SHA-512 (RFC 8017 9.2, note 1).
        assert_eq!(
            em[zero + 1..256 - 64],
            [
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40
            ]
        );
    }

    /// A prompter that records what it was told.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<Note>>);

    impl Prompter for Recorder {
        fn note(&self, note: &Note) {
            self.0.lock().unwrap().push(note.clone());
        }

        fn secret(&self, _prompt: &str) -> std::io::Result<Zeroizing<String>> {
            Err(std::io::ErrorKind::Unsupported.into())
        }
    }

    #[test]
    fn touch_prompt_only_when_the_card_takes_long() {
        let quick = Recorder::default();
        assert_eq!(with_touch_prompt(&quick, || 7), 7);
        assert!(quick.0.lock().unwrap().is_empty());
        let slow = Recorder::default();
        with_touch_prompt(&slow, || std::thread::sleep(TOUCH_PROMPT_AFTER * 2));
        assert_eq!(*slow.0.lock().unwrap(), [Note::TouchNow]);
    }

    #[test]
    fn attestation_pem_layout() {
        // Two short DER blobs: 64-column base64 lines, LF endings, one block after the other.
        let one = pem(&[0x30; 49]).unwrap();
        let b64 = "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw";
        assert_eq!(
            one,
            format!("-----BEGIN CERTIFICATE-----\n{b64}\nMA==\n-----END CERTIFICATE-----\n")
        );
    }

    #[test]
    fn management_key_hex() {
        let ok = "0102030405060708".repeat(3);
        assert!(read_mgm_hex(&ok, "t").is_ok());
        assert!(read_mgm_hex(&format!(" {}\n", "0A0b".repeat(12)), "t").is_ok());
        for bad in [
            "",
            "0102",
            &"zz".repeat(24),
            &"01".repeat(25),
            &"+1".repeat(24),
            &"0".repeat(47),
        ] {
            assert!(read_mgm_hex(bad, "t").is_err(), "{bad}");
        }
    }
}
