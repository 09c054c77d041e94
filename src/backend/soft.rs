//! A software P-256 CA key, for unit tests of the code above the backends (issuance, ledger
//! verification). The real tokens are exercised by `hsm-tests/`.

use p256::ecdsa::{signature::Signer, Signature, SigningKey};
use ssh_key::public::{EcdsaPublicKey, KeyData};
use ssh_key::EcdsaCurve;

use super::{CaKey, KeyInfo, PinStatus, TokenSignature};
use crate::error::Result;
use crate::pin::Pin;

pub struct SoftKey {
    key: SigningKey,
    public: KeyData,
}

impl SoftKey {
    /// A deterministic key from a seed byte (tests want reproducible keys).
    pub fn new(seed: u8) -> Self {
        let key = SigningKey::from_slice(&[seed.max(1); 32]).unwrap(); // allow-panic: test-only module
        let point = key.verifying_key().to_encoded_point(false);
        let public = KeyData::Ecdsa(EcdsaPublicKey::from_sec1_bytes(point.as_bytes()).unwrap()); // allow-panic: test-only
        SoftKey { key, public }
    }
}

impl CaKey for SoftKey {
    fn public_key(&self) -> &KeyData {
        &self.public
    }

    fn info(&self) -> KeyInfo {
        KeyInfo {
            token: "software test key".into(),
            key: "p256".into(),
            pin: PinStatus::default(),
            details: Vec::new(),
            pin_use: None,
            touch_always: false,
        }
    }

    fn login(&mut self, _pin: &Pin) -> Result<()> {
        Ok(())
    }

    fn sign(&self, message: &[u8]) -> Result<TokenSignature> {
        let sig: Signature = self.key.sign(message);
        Ok(TokenSignature::Ecdsa {
            curve: EcdsaCurve::NistP256,
            rs: sig.to_bytes().to_vec(),
        })
    }
}
