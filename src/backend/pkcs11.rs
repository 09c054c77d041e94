//! The PKCS#11 backend on `cryptoki`: token and key selection by RFC 7512 URI, key generation on
//! the token, and signing. Token quirks stay here: EC points wrapped in DER OCTET STRINGs,
//! Ed25519 curve parameters given as an OID or as the string "edwards25519", and `CKM_ECDSA`
//! signing a digest and returning fixed-width `r||s`.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;
use der::asn1::OctetStringRef;
use der::Decode;
use sha2::{Digest, Sha256, Sha384};
use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData, RsaPublicKey};
use ssh_key::{EcdsaCurve, Mpint};

use super::{CaKey, KeyInfo, PinStatus, TokenSignature};
use crate::error::{Error, Result};
use crate::key::Algorithm;
use crate::pin::Pin;
use crate::text::Esc;
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
            .map(|p| format!("  module-path={}", p.display()))
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
        let (slot, info) =
            match selected.as_slice() {
                [one] => (one.0, one.1.clone()),
                [] if all.is_empty() => return Err(Error::token(format!(
                    "no token found through the PKCS#11 module {}",
                    Esc(&module.to_string_lossy())
                ))
                .with_hint(
                    "plug the token in (or check the module is the right one for it) and try again",
                )),
                [] => {
                    return Err(Error::token(format!(
                        "no token matches the CA URI; tokens present:\n{}",
                        listing(&all.iter().collect::<Vec<_>>())
                    ))
                    .with_hint("fix token= (or serial=) in the CA URI"))
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
        Ok(Token {
            ctx,
            session,
            slot,
            info,
        })
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
    private: Option<ObjectHandle>,
}

impl Pkcs11Key {
    /// Select the token and key the URI names, reading only public objects (no PIN).
    pub fn open(uri: &Pkcs11Uri) -> Result<Self> {
        let token = Token::open(uri)?;
        let object = token.select_key(uri)?;
        Self::from_object(token, object)
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
        Ok(Pkcs11Key {
            token,
            label: object.label,
            id: object.id,
            public,
            algorithm,
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
            touch_always: false,
        }
    }

    fn login(&mut self, pin: &Pin) -> Result<()> {
        self.token.login(pin)?;
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if self.id.is_empty() {
            template.push(Attribute::Label(self.label.as_bytes().to_vec()));
        } else {
            template.push(Attribute::Id(self.id.clone()));
        }
        let found = self.token.find(&template)?;
        match found.as_slice() {
            [one] => {
                self.private = Some(*one);
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
        let key = self.private.ok_or_else(|| {
            Error::token("internal error: signing before logging in to the token")
        })?;
        let sign = |mechanism: &Mechanism, data: &[u8]| {
            self.token
                .session
                .sign(mechanism, key, data)
                .map_err(|e| Error::pkcs11(format!("{} refused to sign", self.token.describe()), e))
        };
        Ok(match self.algorithm {
            Algorithm::EcdsaP256 => TokenSignature::Ecdsa {
                curve: EcdsaCurve::NistP256,
                rs: sign(&Mechanism::Ecdsa, &Sha256::digest(message))?,
            },
            Algorithm::EcdsaP384 => TokenSignature::Ecdsa {
                curve: EcdsaCurve::NistP384,
                rs: sign(&Mechanism::Ecdsa, &Sha384::digest(message))?,
            },
            Algorithm::Ed25519 => TokenSignature::Ed25519(sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                message,
            )?),
            Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => {
                TokenSignature::RsaSha512(sign(&Mechanism::Sha512RsaPkcs, message)?)
            }
        })
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
