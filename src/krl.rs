//! OpenSSH key revocation lists, the binary format of OpenSSH's `PROTOCOL.krl`: the encoder
//! `krl -o` and `host-config` use, the decoder `krl --check` uses, and the check of one
//! certificate or key against a KRL (what sshd's `RevokedKeys` does). No ledger and no I/O
//! here: the ledger says what is revoked ([`crate::ledger::Revoked`]), this module says it in
//! bytes sshd reads.
//!
//! SKELETON (lead): the issue-11 KRL helper fills this in. The types below are the contract
//! other modules compile against; `empty` is already correct.

use ssh_key::public::KeyData;

/// `KRL_MAGIC`: "SSHKRL\n\0".
pub const KRL_MAGIC: &[u8; 8] = b"SSHKRL\n\0";
/// `KRL_FORMAT_VERSION`.
pub const KRL_FORMAT_VERSION: u32 = 1;

/// One KRL, as the sections of PROTOCOL.krl hold it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Krl {
    /// `krl_version`: only goes up.
    pub version: u64,
    /// `generated_date`: seconds since the epoch.
    pub generated: u64,
    pub comment: String,
    /// `KRL_SECTION_CERTIFICATES`, one per CA key (`None`: any CA).
    pub certificates: Vec<CertificateSection>,
    /// `KRL_SECTION_EXPLICIT_KEY`: plain public keys (a requester key, a whole CA).
    pub explicit_keys: Vec<KeyData>,
}

/// The certificates revoked under one CA key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateSection {
    pub ca: Option<KeyData>,
    /// Inclusive ranges, sorted, not overlapping.
    pub serials: Vec<(u64, u64)>,
    pub key_ids: Vec<String>,
}

impl Krl {
    /// The bytes of this KRL.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(KRL_MAGIC);
        out.extend_from_slice(&KRL_FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.generated.to_be_bytes());
        out.extend_from_slice(&0u64.to_be_bytes()); // flags
        out.extend_from_slice(&0u32.to_be_bytes()); // reserved: empty string
        out.extend_from_slice(&(self.comment.len() as u32).to_be_bytes());
        out.extend_from_slice(self.comment.as_bytes());
        // SKELETON: sections are the KRL helper's work.
        out
    }
}

impl Krl {
    /// The KRL of a ledger's revocations for the CA key `ca` (see `BRIEF`: one certificate
    /// section under `ca` with the serials and key IDs, and every revoked requester key and CA
    /// key as an explicit key), version `revoked.version`, generated at `generated`.
    /// SKELETON: sections are the KRL helper's work.
    pub fn from_revoked(
        revoked: &crate::ledger::Revoked,
        _ca: &KeyData,
        generated: u64,
    ) -> crate::Result<Krl> {
        Ok(Krl {
            version: revoked.version,
            generated,
            comment: format!("breakglass-ca CA {}", revoked.ca_fingerprint),
            ..Krl::default()
        })
    }
}
