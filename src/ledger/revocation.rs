//! SKELETON (lead): the issue-11 ledger helper fills this in: the revocation record kind, and
//! [`Revoked`], what all of a ledger's revocation records revoke, merged — the contract the KRL
//! builder (`krl -o`, `host-config`) and the exports compile against.

/// What a ledger's revocation records revoke, merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revoked {
    /// This CA's fingerprint (`SHA256:…`): the serials and key IDs below are its certificates.
    pub ca_fingerprint: String,
    /// This CA's revoked serials: inclusive ranges, sorted, merged, not overlapping, never 0.
    pub serials: Vec<(u64, u64)>,
    /// This CA's revoked key IDs, sorted, each once.
    pub key_ids: Vec<String>,
    /// Requester public keys revoked outright (every certificate for them), as OpenSSH
    /// public key lines without comment, sorted, each once.
    pub requester_keys: Vec<String>,
    /// CA public keys revoked outright (this CA or a backup CA: every certificate they
    /// signed), as OpenSSH public key lines without comment, sorted, each once.
    pub ca_keys: Vec<String>,
    /// How many revocation records the ledger holds.
    pub records: usize,
    /// The KRL version these revocations give: the newest revocation record's time, UTC, as
    /// the decimal digits YYYYMMDDHHMMSS read as a number (0 with no revocation). It only goes
    /// up: `revoke` never records two revocations in the same second, nor one older than the
    /// newest record.
    pub version: u64,
    /// The newest revocation record's time (RFC 3339, UTC), if any.
    pub newest: Option<String>,
}

impl super::Ledger {
    /// What this ledger's revocation records revoke (reads the whole ledger, shared lock).
    /// SKELETON: returns nothing revoked until the ledger helper implements it.
    pub fn revoked(&self, ca_fingerprint: &str) -> crate::Result<Revoked> {
        Ok(Revoked {
            ca_fingerprint: ca_fingerprint.to_string(),
            ..Revoked::default()
        })
    }
}
