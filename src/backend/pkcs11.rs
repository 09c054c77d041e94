//! The PKCS#11 backend on `cryptoki`: token and key selection by RFC 7512 URI, key generation on
//! the token, and signing. Token quirks stay here: EC points wrapped in DER OCTET STRINGs,
//! Ed25519 curve parameters given as an OID or as the string "edwards25519", and `CKM_ECDSA`
//! signing a digest and returning fixed-width `r||s`.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;
use der::asn1::OctetStringRef;
use der::Decode;
use sha2::{Digest, Sha256, Sha384};
use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData, RsaPublicKey};
use ssh_key::{EcdsaCurve, Mpint};
use zeroize::Zeroizing;

use super::{Absent, CaKey, KeyInfo, PinStatus, Presence, TokenSignature};
use crate::error::{Error, Result};
use crate::key::Algorithm;
use crate::pin::Pin;
use crate::text::Esc;
use crate::text::ShowPath;
use crate::uri::Pkcs11Uri;

/// Environment variable naming the PKCS#11 module when the URI has no `module-path`.
pub const MODULE_ENV: &str = "BREAKGLASS_CA_PKCS11_MODULE";

/// Label given to a new CA key when the URI names none.
pub const DEFAULT_LABEL: &str = "breakglass-ca";

// CKA_EC_PARAMS as the token holds them: DER, compared and written byte for byte, so kept as
// bytes (a unit test checks them against `der`'s encoding of the dotted OIDs).
/// The OID 1.2.840.10045.3.1.7 (prime256v1).
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// The OID 1.3.132.0.34 (secp384r1).
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// The OID 1.3.101.112 (id-Ed25519).
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// The PrintableString "edwards25519", which some tokens use instead of the OID.
const PRINTABLE_ED25519: &[u8] = b"\x13\x0cedwards25519";

/// Where PKCS#11 modules usually live on Linux, for the "which module?" error.
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu/softhsm",
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/local/lib/pkcs11",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/local/lib",
];

/// Names that are PKCS#11 modules when found in a general library directory.
const MODULE_NAMES: &[&str] = &[
    "libsofthsm2.so",
    "opensc-pkcs11.so",
    "libykcs11.so",
    "yubihsm_pkcs11.so",
    "libnitrokey-hsm.so",
];

/// PKCS#11 modules present on this machine.
pub fn modules_found() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in MODULE_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let general = !dir.contains("pkcs11") && !dir.contains("softhsm");
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_module = if general {
                MODULE_NAMES.contains(&name.as_str())
            } else {
                name.ends_with(".so")
            };
            let path = entry.path();
            if is_module && !found.contains(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn module_path(uri: &Pkcs11Uri) -> Result<PathBuf> {
    if let Some(p) = &uri.module_path {
        return Ok(p.clone());
    }
    if let Some(p) = std::env::var_os(MODULE_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let found = modules_found();
    let list = if found.is_empty() {
        "none were found in the usual places (is the token's middleware installed?)".to_string()
    } else {
        found
            .iter()
            .map(|p| format!("  module-path={}", p.shown()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Err(Error::usage(format!(
        "the CA URI does not say which PKCS#11 module to load; modules found on this machine:\n{list}"
    ))
    .with_hint(format!(
        "add ?module-path=PATH to the URI, or set {MODULE_ENV}=PATH"
    )))
}

fn load(path: &Path) -> Result<Pkcs11> {
    crate::fsx::check_trusted_code(path)?;
    let ctx = Pkcs11::new(path).map_err(|e| {
        Error::pkcs11(
            format!(
                "cannot load the PKCS#11 module {}",
                Esc(&path.to_string_lossy())
            ),
            e,
        )
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(Error::pkcs11(
                format!(
                    "cannot initialise the PKCS#11 module {}",
                    Esc(&path.to_string_lossy())
                ),
                e,
            ))
        }
    }
    Ok(ctx)
}

/// The token as the custodian sees it. Label, manufacturer, model and serial come from the
/// token and are escaped here, so every message and prompt that names the token is safe.
fn describe_token(info: &TokenInfo) -> String {
    format!(
        "token '{}' ({} {}, serial {})",
        Esc(info.label()),
        Esc(info.manufacturer_id().trim()),
        Esc(info.model().trim()),
        Esc(info.serial_number().trim())
    )
}

fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// A token selected by a URI, with a read-only session open on it.
pub struct Token {
    /// The loaded module: kept for as long as the session lives, and used for token
    /// information and read-write sessions.
    ctx: Pkcs11,
    session: Session,
    slot: Slot,
    info: TokenInfo,
}

impl Token {
    /// Find the one token the URI's `token=` and `serial=` select. None or several is an error
    /// that lists what is there.
    pub fn open(uri: &Pkcs11Uri) -> Result<Token> {
        Token::open_if_present(uri)?.into_result()
    }

    /// [`Token::open`], with "no initialised token at all" and "no token the URI selects" as
    /// [`Presence::Absent`]: the module loaded and answered, the token is not plugged in.
    pub fn open_if_present(uri: &Pkcs11Uri) -> Result<Presence<Token>> {
        let module = module_path(uri)?;
        let ctx = load(&module)?;
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| Error::pkcs11("cannot list the tokens", e))?;
        let mut all = Vec::new();
        for slot in slots {
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| Error::pkcs11("cannot read token information", e))?;
            // Uninitialised tokens (SoftHSM's spare slot, blank cards) cannot hold a CA key.
            if info.token_initialized() {
                all.push((slot, info));
            }
        }
        let matches = |info: &TokenInfo| {
            uri.token.as_deref().is_none_or(|t| info.label() == t)
                && uri
                    .serial
                    .as_deref()
                    .is_none_or(|s| info.serial_number().trim() == s)
        };
        let listing = |items: &[&(Slot, TokenInfo)]| {
            items
                .iter()
                .map(|(_, i)| format!("  {}", describe_token(i)))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let selected: Vec<_> = all.iter().filter(|(_, i)| matches(i)).collect();
        let (slot, info) = match selected.as_slice() {
            [one] => (one.0, one.1.clone()),
            [] if all.is_empty() => {
                let what = format!(
                    "no token found through the PKCS#11 module {}",
                    Esc(&module.to_string_lossy())
                );
                let error = Error::token(what.clone()).with_hint(
                    "plug the token in (or check the module is the right one for it) and try again",
                );
                return Ok(Presence::Absent(Absent::new(what, error)));
            }
            [] => {
                let error = Error::token(format!(
                    "no token matches the CA URI; tokens present:\n{}",
                    listing(&all.iter().collect::<Vec<_>>())
                ))
                .with_hint("fix token= (or serial=) in the CA URI");
                let what = format!(
                    "none of the {} token(s) present matches the CA URI",
                    all.len()
                );
                return Ok(Presence::Absent(Absent::new(what, error)));
            }
            several => {
                return Err(Error::token(format!(
                    "{} tokens match the CA URI, refusing to guess:\n{}",
                    several.len(),
                    listing(several)
                ))
                .with_hint("add token=LABEL or serial=SERIAL to the CA URI to choose one"))
            }
        };
        let session = ctx.open_ro_session(slot).map_err(|e| {
            Error::pkcs11(
                format!("cannot open a session on {}", describe_token(&info)),
                e,
            )
        })?;
        Ok(Presence::Present(Token {
            ctx,
            session,
            slot,
            info,
        }))
    }

    pub fn describe(&self) -> String {
        describe_token(&self.info)
    }

    /// The PIN state as the token reports it now.
    pub fn pin_status(&self) -> PinStatus {
        let info = self
            .ctx
            .get_token_info(self.slot)
            .unwrap_or_else(|_| self.info.clone());
        let tries_left = if info.user_pin_locked() {
            Some(0)
        } else if info.user_pin_final_try() {
            Some(1)
        } else {
            None
        };
        PinStatus {
            tries_left,
            count_low: info.user_pin_count_low(),
        }
    }

    /// Log the user in. Already logged in (another session of this process) is fine.
    pub fn login(&self, pin: &Pin) -> Result<()> {
        let auth = AuthPin::from(pin.expose().to_owned());
        match self.session.login(UserType::User, Some(&auth)) {
            Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(cryptoki::error::Error::Pkcs11(RvError::PinIncorrect, _)) => {
                Err(Error::wrong_pin(self.pin_status().tries_left))
            }
            Err(cryptoki::error::Error::Pkcs11(RvError::PinLocked, _)) => {
                Err(Error::wrong_pin(Some(0)))
            }
            Err(e) => Err(Error::pkcs11(
                format!("cannot log in to {}", self.describe()),
                e,
            )),
        }
    }

    /// The private keys that belong to the public key with this id (or, without an id, label).
    fn private_keys(&self, id: &[u8], label: &str) -> Result<Vec<ObjectHandle>> {
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if id.is_empty() {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        } else {
            template.push(Attribute::Id(id.to_vec()));
        }
        self.find(&template)
    }

    /// CKA_ALWAYS_AUTHENTICATE of the one private key with this id, if the token shows it now
    /// (many show private keys only after login). An absent attribute is false.
    fn always_authenticate(&self, id: &[u8], label: &str) -> Result<Option<bool>> {
        match self.private_keys(id, label)?.as_slice() {
            [one] => self.key_always_authenticates(*one).map(Some),
            _ => Ok(None),
        }
    }

    /// The token's mechanisms; none if it will not say.
    fn mechanisms(&self) -> Vec<MechanismType> {
        self.ctx.get_mechanism_list(self.slot).unwrap_or_default()
    }

    fn key_always_authenticates(&self, key: ObjectHandle) -> Result<bool> {
        let attrs = self
            .session
            .get_attributes(key, &[AttributeType::AlwaysAuthenticate])
            .map_err(|e| Error::pkcs11("cannot read the private key's attributes", e))?;
        Ok(attrs
            .iter()
            .any(|a| matches!(a, Attribute::AlwaysAuthenticate(true))))
    }

    /// Sign in one part (C_SignInit, C_Sign). With `reauth`, the key has
    /// CKA_ALWAYS_AUTHENTICATE: C_SignInit, then C_Login(CKU_CONTEXT_SPECIFIC) with the PIN
    /// already read, then the data (C_SignUpdate, C_SignFinal: cryptoki 0.12 has no C_Sign
    /// without its own C_SignInit; [`Split`] picks a mechanism that may be fed in parts).
    fn sign(
        &self,
        mechanism: &Mechanism,
        key: ObjectHandle,
        data: &[u8],
        reauth: Option<&Pin>,
    ) -> Result<Vec<u8>> {
        let refused = |e| Error::pkcs11(format!("{} refused to sign", self.describe()), e);
        let Some(pin) = reauth else {
            return self.session.sign(mechanism, key, data).map_err(refused);
        };
        self.session.sign_init(mechanism, key).map_err(refused)?;
        let auth = AuthPin::from(pin.expose().to_owned());
        match self.session.login(UserType::ContextSpecific, Some(&auth)) {
            Ok(()) => {}
            Err(cryptoki::error::Error::Pkcs11(RvError::PinIncorrect, _)) => {
                return Err(Error::wrong_pin(self.pin_status().tries_left))
            }
            Err(cryptoki::error::Error::Pkcs11(RvError::PinLocked, _)) => {
                return Err(Error::wrong_pin(Some(0)))
            }
            Err(e) => {
                return Err(Error::pkcs11(
                    format!(
                        "{} did not take the PIN for this signature (C_Login with CKU_CONTEXT_SPECIFIC, which its CKA_ALWAYS_AUTHENTICATE key needs)",
                        self.describe()
                    ),
                    e,
                ))
            }
        }
        self.session.sign_update(data).map_err(|e| {
            Error::pkcs11(
                format!(
                    "{} cannot sign with this key: it has CKA_ALWAYS_AUTHENTICATE, so the data must follow the PIN in a call of its own (C_SignUpdate), and the token refused that for {}",
                    self.describe(),
                    mechanism.mechanism_type()
                ),
                e,
            )
            .with_hint("use a CA key without CKA_ALWAYS_AUTHENTICATE (keys made by 'breakglass-ca init' have none), or a middleware for this token that offers a hashing mechanism (CKM_ECDSA_SHA256, CKM_ECDSA_SHA384)")
        })?;
        self.session.sign_final().map_err(refused)
    }

    fn find(&self, template: &[Attribute]) -> Result<Vec<ObjectHandle>> {
        self.session
            .find_objects(template)
            .map_err(|e| Error::pkcs11(format!("cannot search {}", self.describe()), e))
    }

    /// Public keys matching the URI's `object=` and `id=`.
    fn public_keys(&self, uri: &Pkcs11Uri) -> Result<Vec<PublicObject>> {
        let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
        if let Some(label) = &uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        self.find(&template)?
            .into_iter()
            .map(|h| self.read_public(h))
            .collect()
    }

    fn read_public(&self, handle: ObjectHandle) -> Result<PublicObject> {
        let attrs = self
            .session
            .get_attributes(
                handle,
                &[
                    AttributeType::Label,
                    AttributeType::Id,
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                    AttributeType::Modulus,
                    AttributeType::PublicExponent,
                ],
            )
            .map_err(|e| Error::pkcs11("cannot read a public key's attributes", e))?;
        let mut obj = PublicObject {
            label: String::new(),
            id: Vec::new(),
            key: Err(String::from("no key type")),
        };
        let (mut key_type, mut params, mut point, mut modulus, mut exponent) =
            (None, None, None, None, None);
        for attr in attrs {
            match attr {
                Attribute::Label(l) => obj.label = String::from_utf8_lossy(&l).into_owned(),
                Attribute::Id(i) => obj.id = i,
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                Attribute::Modulus(m) => modulus = Some(m),
                Attribute::PublicExponent(e) => exponent = Some(e),
                _ => {}
            }
        }
        obj.key = match key_type {
            Some(t) if t == KeyType::EC => ec_key(params.as_deref(), point.as_deref()),
            Some(t) if t == KeyType::EC_EDWARDS => ed25519_key(params.as_deref(), point.as_deref()),
            Some(t) if t == KeyType::RSA => rsa_key(modulus.as_deref(), exponent.as_deref()),
            Some(t) => Err(format!("unsupported key type {t}")),
            None => Err("the token did not say the key type".into()),
        };
        Ok(obj)
    }

    /// The one public key the URI selects (or the only key on the token if the URI names none).
    fn select_key(&self, uri: &Pkcs11Uri) -> Result<PublicObject> {
        let mut keys = self.public_keys(uri)?;
        match keys.len() {
            1 => Ok(keys.remove(0)),
            0 => {
                let all = self.public_keys(&Pkcs11Uri::default())?;
                let msg = format!("no CA key matching the URI on {}", self.describe());
                let hint = if all.is_empty() {
                    "this token holds no keys: check you took the right token from the vault (a blank or new token is not the CA). Only to set up a NEW CA on it: 'breakglass-ca --state-dir NEW-DIR --ca URI init' (a state directory that already has a CA is refused)".to_string()
                } else {
                    format!(
                        "keys on this token:\n{}\nfix object= or id= in the CA URI",
                        list_keys(&all)
                    )
                };
                Err(Error::token(msg).with_hint(hint))
            }
            n => Err(Error::token(format!(
                "{n} keys on {} match the CA URI, refusing to guess:\n{}",
                self.describe(),
                list_keys(&keys)
            ))
            .with_hint("add object=LABEL or id=ID to the CA URI to choose one")),
        }
    }

    /// Generate a key pair on the token: the private half sensitive, never extractable, a
    /// token object usable only for signing. The session must be logged in. Returns the new
    /// key's CKA_ID (random, so it never collides with an older key of the same label).
    fn generate(&self, algorithm: Algorithm, label: &str) -> Result<Vec<u8>> {
        let mut id = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
        let common = |private: bool| {
            vec![
                Attribute::Token(true),
                Attribute::Private(private),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.to_vec()),
            ]
        };
        // Sign only: the private key cannot decrypt, unwrap (import other keys under it),
        // derive or sign-recover, and the public key cannot encrypt, wrap or derive.
        let mut public = common(false);
        public.extend([
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Derive(false),
        ]);
        let mut private = common(true);
        private.extend([
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::SignRecover(false),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
        ]);
        let mechanism = match algorithm {
            Algorithm::EcdsaP256 | Algorithm::EcdsaP384 => {
                let oid = if algorithm == Algorithm::EcdsaP256 {
                    OID_P256
                } else {
                    OID_P384
                };
                public.push(Attribute::EcParams(oid.to_vec()));
                Mechanism::EccKeyPairGen
            }
            Algorithm::Ed25519 => {
                public.push(Attribute::EcParams(OID_ED25519.to_vec()));
                Mechanism::EccEdwardsKeyPairGen
            }
            Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => {
                let bits = match algorithm {
                    Algorithm::Rsa2048 => 2048u64,
                    Algorithm::Rsa3072 => 3072,
                    _ => 4096,
                };
                public.push(Attribute::ModulusBits(bits.into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        let rw = self.ctx.open_rw_session(self.slot).map_err(|e| {
            Error::pkcs11(
                format!("cannot open a read-write session on {}", self.describe()),
                e,
            )
        })?;
        rw.generate_key_pair(&mechanism, &public, &private)
            .map_err(|e| {
                Error::pkcs11(
                    format!("{} cannot generate a {algorithm} key", self.describe()),
                    e,
                )
            })?;
        Ok(id.to_vec())
    }

    /// Destroy a key pair (the public and private objects with this label and id).
    fn destroy(&self, label: &str, id: &[u8]) -> Result<()> {
        let rw = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(|e| Error::pkcs11("cannot open a read-write session", e))?;
        let template = [
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let handles = rw
            .find_objects(&template)
            .map_err(|e| Error::pkcs11("cannot find the old key's objects", e))?;
        for h in handles {
            rw.destroy_object(h)
                .map_err(|e| Error::pkcs11("cannot delete the old CA key", e))?;
        }
        Ok(())
    }
}

fn list_keys(keys: &[PublicObject]) -> String {
    keys.iter()
        .map(|k| {
            let what = match &k.key {
                Ok(key) => Algorithm::of_key(key)
                    .map(|a| a.name().to_string())
                    .unwrap_or_else(|| key.algorithm().to_string()),
                Err(why) => why.clone(),
            };
            format!(
                "  object={} id={} ({})",
                Esc(&k.label),
                hex(&k.id),
                Esc(&what)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A public key object as found on the token.
struct PublicObject {
    label: String,
    id: Vec<u8>,
    /// The key, or why it cannot be used.
    key: std::result::Result<KeyData, String>,
}

/// The contents of a DER OCTET STRING, or `None` if `der` is not exactly one.
fn der_octet_string(der: &[u8]) -> Option<&[u8]> {
    OctetStringRef::from_der(der).ok().map(|o| o.as_bytes())
}

/// CKA_EC_POINT is a DER OCTET STRING around the point; a few tokens give the bare point.
fn unwrap_point(point: &[u8], expected: usize) -> Option<&[u8]> {
    match der_octet_string(point) {
        Some(inner) if inner.len() == expected => Some(inner),
        _ if point.len() == expected => Some(point),
        _ => None,
    }
}

fn ec_key(params: Option<&[u8]>, point: Option<&[u8]>) -> std::result::Result<KeyData, String> {
    let (params, point) = params
        .zip(point)
        .ok_or("EC key without parameters or point")?;
    let len = match params {
        p if p == OID_P256 => 65,
        p if p == OID_P384 => 97,
        _ => return Err("EC key on a curve other than P-256 or P-384".into()),
    };
    let sec1 = unwrap_point(point, len).ok_or("EC point in an unexpected encoding")?;
    EcdsaPublicKey::from_sec1_bytes(sec1)
        .map(KeyData::Ecdsa)
        .map_err(|e| format!("invalid EC point: {e}"))
}

fn ed25519_key(
    params: Option<&[u8]>,
    point: Option<&[u8]>,
) -> std::result::Result<KeyData, String> {
    let (params, point) = params
        .zip(point)
        .ok_or("Ed25519 key without parameters or point")?;
    if params != OID_ED25519 && params != PRINTABLE_ED25519 {
        return Err("Edwards key on a curve other than Ed25519".into());
    }
    let raw = unwrap_point(point, 32).ok_or("Ed25519 point in an unexpected encoding")?;
    let bytes: [u8; 32] = raw
        .try_into()
        .map_err(|_| "Ed25519 point of the wrong length")?;
    Ok(KeyData::Ed25519(Ed25519PublicKey(bytes)))
}

fn rsa_key(
    modulus: Option<&[u8]>,
    exponent: Option<&[u8]>,
) -> std::result::Result<KeyData, String> {
    let (n, e) = modulus
        .zip(exponent)
        .ok_or("RSA key without modulus or exponent")?;
    let key = RsaPublicKey {
        e: Mpint::from_positive_bytes(e).map_err(|e| e.to_string())?,
        n: Mpint::from_positive_bytes(n).map_err(|e| e.to_string())?,
    };
    Ok(KeyData::Rsa(key))
}

/// A CA key on a PKCS#11 token.
pub struct Pkcs11Key {
    token: Token,
    label: String,
    id: Vec<u8>,
    public: KeyData,
    algorithm: Algorithm,
    /// What is known before the PIN about the private key's CKA_ALWAYS_AUTHENTICATE.
    always_auth: AlwaysAuth,
    private: Option<PrivateKey>,
}

/// Whether the token asks for the PIN again before every signature with the CA key
/// (CKA_ALWAYS_AUTHENTICATE), as far as it can be known before the PIN is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AlwaysAuth {
    /// The private key is visible before login and has the attribute false (or not at all).
    No,
    /// The private key is visible before login and has the attribute true.
    Yes,
    /// The private key shows only after login (PIV middleware hides it), and the key is a PIV
    /// Digital Signature key (slot 9c), which always asks for the PIN per signature unless the
    /// card was told otherwise when the key was made.
    PivSignatureKey,
    /// The private key shows only after login.
    Unknown,
}

impl AlwaysAuth {
    /// The pre-PIN screen's line, when there is something to say.
    fn note(self) -> Option<String> {
        match self {
            AlwaysAuth::Yes => Some(format!(
                "this key asks for the PIN at every signature (CKA_ALWAYS_AUTHENTICATE): {HANDED_AGAIN}"
            )),
            AlwaysAuth::PivSignatureKey => Some(format!(
                "probably at every signature: a PIV slot 9c key has CKA_ALWAYS_AUTHENTICATE (the token shows it only after login); if so, {HANDED_AGAIN}"
            )),
            AlwaysAuth::No | AlwaysAuth::Unknown => None,
        }
    }
}

const HANDED_AGAIN: &str =
    "the PIN is read once and given to the token again right before each signature";

/// PIV middleware (OpenSC's `piv_II` driver, Yubico's ykcs11) number the PIV slots as CKA_ID:
/// 01 is slot 9a, 02 slot 9c (Digital Signature), 03 slot 9d, 04 slot 9e.
fn is_piv_signature_key(manufacturer: &str, model: &str, id: &[u8]) -> bool {
    let manufacturer = manufacturer.trim();
    let piv = manufacturer == "piv_II"
        || (manufacturer.starts_with("Yubico") && model.trim().starts_with("YubiKey"));
    piv && id == [0x02]
}

/// The CA private key after login. With CKA_ALWAYS_AUTHENTICATE the PIN is kept (zeroized on
/// drop, redacted in `Debug`) for as long as the key is open, and given to the token with
/// `CKU_CONTEXT_SPECIFIC` right before each signature.
struct PrivateKey {
    handle: ObjectHandle,
    reauth: Option<Pin>,
    split: Split,
}

impl Pkcs11Key {
    /// Select the token and key the URI names, reading only public objects (no PIN).
    pub fn open(uri: &Pkcs11Uri) -> Result<Self> {
        Self::open_if_present(uri)?.into_result()
    }

    /// [`Pkcs11Key::open`], with no token the URI selects as [`Presence::Absent`] (a token
    /// that is there but lacks the key is an error).
    pub fn open_if_present(uri: &Pkcs11Uri) -> Result<Presence<Self>> {
        let token = match Token::open_if_present(uri)? {
            Presence::Present(t) => t,
            Presence::Absent(a) => return Ok(Presence::Absent(a)),
        };
        let object = token.select_key(uri)?;
        Self::from_object(token, object).map(Presence::Present)
    }

    fn from_object(token: Token, object: PublicObject) -> Result<Self> {
        let public = object.key.map_err(|why| {
            Error::token(format!(
                "key '{}' on {} cannot be a CA key: {why}",
                Esc(&object.label),
                token.describe()
            ))
        })?;
        let algorithm = Algorithm::of_key(&public).ok_or_else(|| {
            Error::token(format!(
                "key '{}' is a {} key, which this tool does not use as a CA",
                Esc(&object.label),
                public.algorithm()
            ))
        })?;
        // Only for the pre-PIN screen: a token that cannot say is no reason to stop here.
        let visible = token.always_authenticate(&object.id, &object.label);
        let info = &token.info;
        let always_auth = match visible.ok().flatten() {
            Some(true) => AlwaysAuth::Yes,
            Some(false) => AlwaysAuth::No,
            None if is_piv_signature_key(info.manufacturer_id(), info.model(), &object.id) => {
                AlwaysAuth::PivSignatureKey
            }
            None => AlwaysAuth::Unknown,
        };
        Ok(Pkcs11Key {
            token,
            label: object.label,
            id: object.id,
            public,
            algorithm,
            always_auth,
            private: None,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The URI that selects exactly this key, for config.toml.
    pub fn uri(&self, base: &Pkcs11Uri) -> Pkcs11Uri {
        Pkcs11Uri {
            token: Some(self.token.info.label().to_string()),
            object: Some(self.label.clone()),
            id: Some(self.id.clone()),
            ..base.clone()
        }
    }
}

/// What `init` found on the token before generating. Used once per run, so the size
/// difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Existing {
    /// No key matches: the token, ready for a new one.
    NoKey(Token),
    /// The key that matches, which `--force` replaces.
    Key(Pkcs11Key),
}

/// Open the token for `init` and look for a key with the URI's label (default
/// [`DEFAULT_LABEL`]) or id.
pub fn open_for_init(uri: &Pkcs11Uri) -> Result<(Existing, Pkcs11Uri)> {
    let mut uri = uri.clone();
    if uri.object.is_none() && uri.id.is_none() {
        uri.object = Some(DEFAULT_LABEL.to_string());
    }
    let token = Token::open(&uri)?;
    let mut keys = token.public_keys(&uri)?;
    let existing = match keys.len() {
        0 => Existing::NoKey(token),
        1 => Existing::Key(Pkcs11Key::from_object(token, keys.remove(0))?),
        n => {
            return Err(Error::token(format!(
                "{n} keys on {} already match the CA URI:\n{}",
                token.describe(),
                list_keys(&keys)
            ))
            .with_hint("choose another object= label for the new CA, or remove the stray keys with the token's own tools"))
        }
    };
    Ok((existing, uri))
}

/// Generate the CA key on the token, replacing an existing one only after the new key exists.
/// The token must be logged in.
pub fn generate(existing: Existing, algorithm: Algorithm, label: &str) -> Result<Pkcs11Key> {
    let (token, old) = match existing {
        Existing::NoKey(t) => (t, None),
        Existing::Key(k) => (k.token, Some((k.label, k.id))),
    };
    let id = token.generate(algorithm, label)?;
    if let Some((old_label, old_id)) = old {
        token.destroy(&old_label, &old_id)?;
    }
    let object = token.select_key(&Pkcs11Uri {
        object: Some(label.to_string()),
        id: Some(id),
        ..Pkcs11Uri::default()
    })?;
    Pkcs11Key::from_object(token, object)
}

impl Existing {
    pub fn token(&self) -> &Token {
        match self {
            Existing::NoKey(t) => t,
            Existing::Key(k) => &k.token,
        }
    }
}

impl CaKey for Pkcs11Key {
    fn public_key(&self) -> &KeyData {
        &self.public
    }

    fn info(&self) -> KeyInfo {
        KeyInfo {
            token: self.token.describe(),
            key: format!(
                "key '{}' (id {}, {})",
                Esc(&self.label),
                hex(&self.id),
                self.algorithm
            ),
            pin: self.token.pin_status(),
            details: Vec::new(),
            pin_use: self.always_auth.note(),
            touch_always: false,
        }
    }

    fn login(&mut self, pin: &Pin) -> Result<()> {
        self.token.login(pin)?;
        let found = self.token.private_keys(&self.id, &self.label)?;
        match found.as_slice() {
            [one] => {
                // Known for sure only now: PIV middleware show the private key after login.
                let (reauth, split) = if self.token.key_always_authenticates(*one)? {
                    self.always_auth = AlwaysAuth::Yes;
                    let pin = Pin::new(Zeroizing::new(pin.expose().to_owned()))?;
                    (
                        Some(pin),
                        Split::for_reauth(self.algorithm, &self.token.mechanisms()),
                    )
                } else {
                    self.always_auth = AlwaysAuth::No;
                    (None, Split::No)
                };
                self.private = Some(PrivateKey {
                    handle: *one,
                    reauth,
                    split,
                });
                Ok(())
            }
            [] => Err(Error::token(format!(
                "{} has the public key '{}' but no private key with the same id",
                self.token.describe(),
                Esc(&self.label)
            ))
            .with_hint("this token cannot sign for this CA; check you have the right token")),
            several => Err(Error::token(format!(
                "{} private keys on {} share the id {}, refusing to guess",
                several.len(),
                self.token.describe(),
                hex(&self.id)
            ))),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<TokenSignature> {
        let key = self.private.as_ref().ok_or_else(|| {
            Error::token("internal error: signing before logging in to the token")
        })?;
        let (mechanism, input) = signing_input(self.algorithm, message, key.split);
        let out = self
            .token
            .sign(&mechanism, key.handle, &input, key.reauth.as_ref())?;
        Ok(match self.algorithm {
            Algorithm::EcdsaP256 => TokenSignature::Ecdsa {
                curve: EcdsaCurve::NistP256,
                rs: out,
            },
            Algorithm::EcdsaP384 => TokenSignature::Ecdsa {
                curve: EcdsaCurve::NistP384,
                rs: out,
            },
            Algorithm::Ed25519 => TokenSignature::Ed25519(out),
            Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => {
                TokenSignature::RsaSha512(out)
            }
        })
    }
}

/// How a signature reaches the token when the data go in a separate call (C_SignUpdate, after
/// the context-specific login) rather than in C_Sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Split {
    /// One call: C_SignInit, C_Sign.
    No,
    /// C_SignUpdate, C_SignFinal with the mechanism that hashes on the token
    /// (`CKM_ECDSA_SHA256`/`SHA384`): PKCS#11 defines multi-part signing for those, not for
    /// `CKM_ECDSA`, which SoftHSM2 refuses to take in parts.
    Hashing,
    /// C_SignUpdate, C_SignFinal with the usual mechanism: the token offers no hashing ECDSA
    /// mechanism, or the key is RSA (`CKM_SHA512_RSA_PKCS` hashes already) or Ed25519
    /// (`CKM_EDDSA`, which has nothing else).
    Plain,
}

impl Split {
    /// For a key with CKA_ALWAYS_AUTHENTICATE, on a token offering `mechanisms`.
    fn for_reauth(algorithm: Algorithm, mechanisms: &[MechanismType]) -> Split {
        let hashing = match algorithm {
            Algorithm::EcdsaP256 => MechanismType::ECDSA_SHA256,
            Algorithm::EcdsaP384 => MechanismType::ECDSA_SHA384,
            _ => return Split::Plain,
        };
        if mechanisms.contains(&hashing) {
            Split::Hashing
        } else {
            Split::Plain
        }
    }
}

/// The mechanism and the bytes the token signs for `message`: ECDSA over the digest (or the
/// message, with the mechanism that hashes), Ed25519 over the message, RSA PKCS#1 v1.5 with
/// SHA-512 over the message.
fn signing_input(
    algorithm: Algorithm,
    message: &[u8],
    split: Split,
) -> (Mechanism<'static>, Vec<u8>) {
    match (algorithm, split) {
        (Algorithm::EcdsaP256, Split::Hashing) => (Mechanism::EcdsaSha256, message.to_vec()),
        (Algorithm::EcdsaP384, Split::Hashing) => (Mechanism::EcdsaSha384, message.to_vec()),
        (Algorithm::EcdsaP256, _) => (Mechanism::Ecdsa, Sha256::digest(message).to_vec()),
        (Algorithm::EcdsaP384, _) => (Mechanism::Ecdsa, Sha384::digest(message).to_vec()),
        (Algorithm::Ed25519, _) => (
            Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            message.to_vec(),
        ),
        (Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096, _) => {
            (Mechanism::Sha512RsaPkcs, message.to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_short_and_long_form_der() {
        let mut p256 = vec![0x04, 0x41, 0x04];
        p256.extend([0xaa; 64]);
        assert_eq!(unwrap_point(&p256, 65).unwrap().len(), 65);
        // P-521 points need a long-form length: 04 81 85 04 ...
        let mut p521 = vec![0x04, 0x81, 0x85, 0x04];
        p521.extend([0xbb; 132]);
        assert_eq!(unwrap_point(&p521, 133).unwrap().len(), 133);
        // a bare point is accepted when its length is right
        let bare: Vec<u8> = p256[2..].to_vec();
        assert_eq!(unwrap_point(&bare, 65).unwrap(), &bare[..]);
        // wrong lengths are refused
        assert!(unwrap_point(&p256[..40], 65).is_none());
        assert!(der_octet_string(&[0x04, 0x82, 0x00]).is_none());
    }

    #[test]
    fn ec_params_are_the_der_of_their_oids() {
        use der::asn1::{ObjectIdentifier, PrintableStringRef};
        use der::Encode;
        for (bytes, oid) in [
            (OID_P256, "1.2.840.10045.3.1.7"),
            (OID_P384, "1.3.132.0.34"),
            (OID_ED25519, "1.3.101.112"),
        ] {
            let oid = ObjectIdentifier::new(oid).unwrap();
            assert_eq!(oid.to_der().unwrap(), bytes, "{oid}");
        }
        let printable = PrintableStringRef::new("edwards25519").unwrap();
        assert_eq!(printable.to_der().unwrap(), PRINTABLE_ED25519);
    }

    #[test]
    fn the_pre_pin_screen_says_when_the_pin_is_given_per_signature() {
        assert_eq!(
            AlwaysAuth::Yes.note().unwrap(),
            "this key asks for the PIN at every signature (CKA_ALWAYS_AUTHENTICATE): the PIN is read once and given to the token again right before each signature"
        );
        assert_eq!(
            AlwaysAuth::PivSignatureKey.note().unwrap(),
            "probably at every signature: a PIV slot 9c key has CKA_ALWAYS_AUTHENTICATE (the token shows it only after login); if so, the PIN is read once and given to the token again right before each signature"
        );
        assert_eq!(AlwaysAuth::No.note(), None);
        assert_eq!(AlwaysAuth::Unknown.note(), None);
    }

    #[test]
    fn piv_slot_9c_through_opensc_and_ykcs11() {
        // What the two middleware report for the software card of hsm-tests/piv.rs.
        assert!(is_piv_signature_key("piv_II", "PKCS#15 emulated", &[2]));
        assert!(is_piv_signature_key(
            "Yubico (www.yubico.com)",
            "YubiKey XXX",
            &[2]
        ));
        assert!(!is_piv_signature_key("piv_II", "PKCS#15 emulated", &[1]));
        assert!(!is_piv_signature_key("piv_II", "PKCS#15 emulated", &[2, 0]));
        assert!(!is_piv_signature_key("SoftHSM project", "SoftHSM v2", &[2]));
        assert!(!is_piv_signature_key("Yubico", "YubiHSM", &[2]));
    }

    #[test]
    fn a_reauthenticated_signature_prefers_the_hashing_ecdsa_mechanism() {
        let opensc = [
            MechanismType::ECDSA,
            MechanismType::ECDSA_SHA256,
            MechanismType::ECDSA_SHA384,
        ];
        let softhsm = [MechanismType::ECDSA, MechanismType::EDDSA];
        for (alg, mechanisms, split) in [
            (Algorithm::EcdsaP256, &opensc[..], Split::Hashing),
            (Algorithm::EcdsaP384, &opensc[..], Split::Hashing),
            (Algorithm::EcdsaP384, &opensc[..2], Split::Plain),
            (Algorithm::EcdsaP256, &softhsm[..], Split::Plain),
            (Algorithm::EcdsaP256, &[][..], Split::Plain),
            (Algorithm::Ed25519, &softhsm[..], Split::Plain),
            (Algorithm::Rsa3072, &opensc[..], Split::Plain),
        ] {
            assert_eq!(Split::for_reauth(alg, mechanisms), split, "{alg}");
        }
    }

    #[test]
    fn signing_input_per_algorithm_and_split() {
        let msg = b"the certificate's signed data";
        let check = |alg, split, mechanism: MechanismType, input: Vec<u8>| {
            let (m, i) = signing_input(alg, msg, split);
            assert_eq!(m.mechanism_type(), mechanism, "{alg} {split:?}");
            assert_eq!(i, input, "{alg} {split:?}");
        };
        for split in [Split::No, Split::Plain] {
            check(
                Algorithm::EcdsaP256,
                split,
                MechanismType::ECDSA,
                Sha256::digest(msg).to_vec(),
            );
            check(
                Algorithm::EcdsaP384,
                split,
                MechanismType::ECDSA,
                Sha384::digest(msg).to_vec(),
            );
        }
        check(
            Algorithm::EcdsaP256,
            Split::Hashing,
            MechanismType::ECDSA_SHA256,
            msg.to_vec(),
        );
        check(
            Algorithm::EcdsaP384,
            Split::Hashing,
            MechanismType::ECDSA_SHA384,
            msg.to_vec(),
        );
        for split in [Split::No, Split::Plain, Split::Hashing] {
            check(
                Algorithm::Ed25519,
                split,
                MechanismType::EDDSA,
                msg.to_vec(),
            );
            check(
                Algorithm::Rsa4096,
                split,
                MechanismType::SHA512_RSA_PKCS,
                msg.to_vec(),
            );
        }
    }

    #[test]
    fn ed25519_params_as_oid_or_printable_string() {
        let mut point = vec![0x04, 0x20];
        point.extend([7u8; 32]);
        for params in [OID_ED25519, PRINTABLE_ED25519] {
            let key = ed25519_key(Some(params), Some(&point)).unwrap();
            assert_eq!(key, KeyData::Ed25519(Ed25519PublicKey([7u8; 32])));
        }
        assert!(ed25519_key(Some(OID_P256), Some(&point)).is_err());
    }
}
