//! Signed checkpoints of the ledger: after each issuance the CA token signs the chain head as an
//! SSH signature (SSHSIG, namespace `breakglass-ca-ledger`), so that nobody without the token
//! can rewrite the ledger consistently. Anyone can check one with `ssh-keygen -Y verify`.

use serde::{Deserialize, Serialize};
use ssh_key::public::KeyData;
use ssh_key::{HashAlg, LineEnding, PublicKey, SshSig};

use crate::backend::{self, CaKey};
use crate::error::{Error, Result};

/// The SSHSIG namespace of checkpoint signatures.
pub const NAMESPACE: &str = "breakglass-ca-ledger";
/// Where checkpoints are kept, beside the ledger.
pub const FILE: &str = "checkpoints.jsonl";

/// The token's signature over the ledger head after serial `serial`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub serial: u64,
    /// SHA-256 (hex) of the ledger line of `serial`, which by the chain covers all before it.
    pub head: String,
    /// The armored SSHSIG over [`message`].
    pub signature: String,
}

/// The exact bytes signed: short, textual, and self-describing for an auditor.
pub fn message(ca_fingerprint: &str, serial: u64, head: &str) -> String {
    format!("breakglass-ca ledger checkpoint\nca {ca_fingerprint}\nserial {serial}\nhead {head}\n")
}

/// Have the token sign the head of the ledger.
pub fn sign(ca: &dyn CaKey, serial: u64, head: &str) -> Result<Checkpoint> {
    let fp = ca.public_key().fingerprint(HashAlg::Sha256).to_string();
    let msg = message(&fp, serial, head);
    let sig = backend::with_signer(ca, "cannot sign the ledger checkpoint", |signer| {
        SshSig::sign(signer, NAMESPACE, HashAlg::Sha512, msg.as_bytes())
    })?;
    let signature = sig
        .to_pem(LineEnding::LF)
        .map_err(|e| Error::ssh("cannot encode the checkpoint signature", e))?;
    Ok(Checkpoint {
        serial,
        head: head.to_string(),
        signature,
    })
}

/// Check a checkpoint's signature with the CA public key.
pub fn verify(cp: &Checkpoint, ca: &KeyData) -> Result<()> {
    let fp = ca.fingerprint(HashAlg::Sha256).to_string();
    let sig = SshSig::from_pem(cp.signature.as_bytes()).map_err(|e| {
        Error::invalid(format!(
            "the checkpoint for serial {} cannot be read: {e}",
            cp.serial
        ))
    })?;
    PublicKey::from(ca.clone())
        .verify(
            NAMESPACE,
            message(&fp, cp.serial, &cp.head).as_bytes(),
            &sig,
        )
        .map_err(|_| {
            Error::invalid(format!(
                "the checkpoint for serial {} is not signed by this CA",
                cp.serial
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::soft::SoftKey;

    #[test]
    fn sign_and_verify() {
        let ca = SoftKey::new(3);
        let cp = sign(&ca, 7, "abcd").unwrap();
        assert!(cp.signature.starts_with("-----BEGIN SSH SIGNATURE-----"));
        verify(&cp, ca.public_key()).unwrap();
        let mut other = cp.clone();
        other.head = "abce".into();
        assert!(verify(&other, ca.public_key()).is_err());
        assert!(verify(&cp, SoftKey::new(4).public_key()).is_err());
    }
}
