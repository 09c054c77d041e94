//! OpenSSH key revocation lists, the binary format of OpenSSH's `PROTOCOL.krl`: the encoder
//! `krl -o` and `host-config` use, the decoder `krl --check` uses, and the check of one
//! certificate or key against a KRL (what sshd's `RevokedKeys` does). No ledger and no I/O
//! here: the ledger says what is revoked ([`crate::ledger::Revoked`]), this module says it in
//! bytes sshd reads.
//!
//! # What a KRL from the ledger holds
//! - The header: `KRL_MAGIC`, `KRL_FORMAT_VERSION` 1, `krl_version`, `generated_date`, flags 0,
//!   an empty reserved string, and the comment `breakglass-ca CA SHA256:<fp>`.
//!   `krl_version` is the newest revocation record's UTC time as the number YYYYMMDDHHMMSS
//!   (0 with nothing revoked): it only goes up, also across the switch to a backup CA's state
//!   directory, and `install.sh` refuses a KRL older than the installed one.
//!   `generated_date` is when the file was made (`krl -o`: now; `host-config`: the newest
//!   revocation's time, so that the same ledger gives the same bytes). sshd reads neither.
//! - One `KRL_SECTION_CERTIFICATES` under this CA's key, if a serial or key ID is revoked:
//!   the serials as `KRL_SECTION_CERT_SERIAL_LIST`, `…_RANGE` and `…_BITMAP` subsections,
//!   chosen with `krl.c`'s bit-cost model (`choose_next_state`), then one
//!   `KRL_SECTION_CERT_KEY_ID` subsection with the key IDs, sorted.
//! - One `KRL_SECTION_EXPLICIT_KEY` with every requester key and CA key revoked outright,
//!   sorted by their wire blobs. sshd checks a certificate's own key and its signing CA's key
//!   against the KRL: an explicit CA key revokes every certificate that CA signed.
//!
//! This is byte for byte what `ssh-keygen -k -f KRL -s ca.pub -z VERSION -C COMMENT` writes
//! from the spec lines `serial: N` / `serial: N-M`, `id: KEYID` and `key: <public key line>`
//! (once its generated date is the same), with one deliberate difference: a serial bitmap
//! never spans more than [`MAX_BITMAP_BITS`] serials. `krl.c` has no such limit, but its own
//! reader refuses a bitmap larger than `SSHBUF_MAX_BIGNUM` (2048 bytes): ssh-keygen (9.2, and
//! `krl.c` as of 2026) writes KRLs it and sshd cannot read ("bignum is too large") when some
//! 16,000 serials or more are densely revoked, and sshd then refuses every public-key login.
//! (A hand-written spec has one more trap: `ssh-keygen -k` cuts each line at `#`, so our key
//! IDs, `REQUESTER#SERIAL:REASON`, cannot be revoked by an `id:` line; [`Krl`] holds them as
//! they are.)
//!
//! Inspect one with `ssh-keygen -Q -l -f KRL`, check a certificate with
//! `ssh-keygen -Q -f KRL CERT` or `breakglass-ca krl --check CERT -f KRL`.
//!
//! # Decoding
//! [`Krl::decode`] reads what `krl.c`'s `ssh_krl_from_blob` accepts, bounded: at most
//! [`MAX_KRL_BYTES`] and [`MAX_ENTRIES`] revoked items, a bitmap at most as large as sshd
//! allows. Also the SHA-1 and SHA-256 fingerprint sections ssh-keygen writes for `sha1:`,
//! `sha256:` and `hash:` lines, and non-critical extensions (skipped, as OpenSSH 9.4+ does).
//! Refused: signature sections (OpenSSH 9.4+ refuses them too), critical extensions, unknown
//! sections, serial 0, trailing data, a key blob that is a certificate or not canonical, a
//! key ID that is not UTF-8. The result is canonical (see [`Krl::canonical`]): serials merged,
//! lists sorted, one certificate section per CA, as `krl.c` holds a KRL in memory.

use sha2::{Digest, Sha256};
use ssh_key::public::KeyData;
use ssh_key::{Certificate, HashAlg, PublicKey};

use crate::error::{Error, Result};
use crate::text::Esc;

/// `KRL_MAGIC`: "SSHKRL\n\0".
pub const KRL_MAGIC: &[u8; 8] = b"SSHKRL\n\0";
/// `KRL_FORMAT_VERSION`.
pub const KRL_FORMAT_VERSION: u32 = 1;

/// `KRL_SECTION_CERTIFICATES`: certificates revoked under one CA key (or any CA).
pub const KRL_SECTION_CERTIFICATES: u8 = 1;
/// `KRL_SECTION_EXPLICIT_KEY`: plain public keys, as wire blobs.
pub const KRL_SECTION_EXPLICIT_KEY: u8 = 2;
/// `KRL_SECTION_FINGERPRINT_SHA1`: SHA-1 hashes of plain public key blobs.
pub const KRL_SECTION_FINGERPRINT_SHA1: u8 = 3;
/// `KRL_SECTION_SIGNATURE`: never finished, refused by OpenSSH 9.4 and later (and here).
pub const KRL_SECTION_SIGNATURE: u8 = 4;
/// `KRL_SECTION_FINGERPRINT_SHA256`: SHA-256 hashes of plain public key blobs.
pub const KRL_SECTION_FINGERPRINT_SHA256: u8 = 5;
/// `KRL_SECTION_EXTENSION` (OpenSSH 9.4+).
pub const KRL_SECTION_EXTENSION: u8 = 255;

/// `KRL_SECTION_CERT_SERIAL_LIST`: serials, one `uint64` each.
pub const KRL_SECTION_CERT_SERIAL_LIST: u8 = 0x20;
/// `KRL_SECTION_CERT_SERIAL_RANGE`: `serial_min`, `serial_max`, inclusive.
pub const KRL_SECTION_CERT_SERIAL_RANGE: u8 = 0x21;
/// `KRL_SECTION_CERT_SERIAL_BITMAP`: `serial_offset` and an mpint whose bit N revokes
/// `serial_offset + N`.
pub const KRL_SECTION_CERT_SERIAL_BITMAP: u8 = 0x22;
/// `KRL_SECTION_CERT_KEY_ID`: key ID strings.
pub const KRL_SECTION_CERT_KEY_ID: u8 = 0x23;
/// `KRL_SECTION_CERT_EXTENSION` (OpenSSH 9.4+).
pub const KRL_SECTION_CERT_EXTENSION: u8 = 0x39;

/// The most serials one bitmap subsection spans: OpenSSH reads an mpint of at most
/// `SSHBUF_MAX_BIGNUM` = 2048 bytes (plus a leading zero byte).
pub const MAX_BITMAP_BITS: u64 = 16384;
/// The largest KRL file read (OpenSSH's own limit is 128 MiB; a ledger's KRL is a few KiB).
pub const MAX_KRL_BYTES: u64 = crate::fsx::limit::KRL;
/// The most revoked items (serial runs, key IDs, keys, hashes) a decoded KRL may hold.
pub const MAX_ENTRIES: usize = 1_000_000;

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
    /// `KRL_SECTION_FINGERPRINT_SHA1`: SHA-1 hashes of plain key blobs (ssh-keygen's `sha1:`).
    pub sha1_fingerprints: Vec<[u8; 20]>,
    /// `KRL_SECTION_FINGERPRINT_SHA256`: SHA-256 hashes of plain key blobs (ssh-keygen's
    /// `sha256:` and `hash:`).
    pub sha256_fingerprints: Vec<[u8; 32]>,
}

/// The certificates revoked under one CA key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateSection {
    pub ca: Option<KeyData>,
    /// Inclusive ranges, sorted, not overlapping.
    pub serials: Vec<(u64, u64)>,
    pub key_ids: Vec<String>,
}

/// Which key of a certificate a KRL names outright.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhichKey {
    /// The certificate's own (the requester's) public key.
    Certificate,
    /// The CA key that signed it: every certificate of that CA is revoked.
    SigningCa,
}

/// Why a KRL revokes a certificate or key: the section that matched, in the order sshd
/// checks them (`ssh_krl_check_key` in `krl.c`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokedBy {
    /// `KRL_SECTION_FINGERPRINT_SHA1` lists the key's SHA-1 hash.
    Sha1(WhichKey),
    /// `KRL_SECTION_FINGERPRINT_SHA256` lists the key's SHA-256 hash.
    Sha256(WhichKey),
    /// `KRL_SECTION_EXPLICIT_KEY` lists the key.
    ExplicitKey(WhichKey),
    /// `KRL_SECTION_CERT_KEY_ID` lists the certificate's key ID, under its CA or any CA.
    KeyId { key_id: String, any_ca: bool },
    /// A serial subsection covers the certificate's serial, under its CA or any CA.
    Serial {
        serial: u64,
        range: (u64, u64),
        any_ca: bool,
    },
}

impl std::fmt::Display for RevokedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whose = |w: &WhichKey| match w {
            WhichKey::Certificate => "its public key, outright",
            WhichKey::SigningCa => "its signing CA key, outright",
        };
        let all = |w: &WhichKey| match w {
            WhichKey::Certificate => "every certificate for that key",
            WhichKey::SigningCa => "every certificate that CA signed",
        };
        let scope = |any: &bool| if *any { "any CA" } else { "its CA" };
        match self {
            RevokedBy::Sha1(w) => write!(
                f,
                "{} by its SHA-1 hash (KRL_SECTION_FINGERPRINT_SHA1: {})",
                whose(w),
                all(w)
            ),
            RevokedBy::Sha256(w) => write!(
                f,
                "{} by its SHA-256 hash (KRL_SECTION_FINGERPRINT_SHA256: {})",
                whose(w),
                all(w)
            ),
            RevokedBy::ExplicitKey(w) => {
                write!(f, "{} (KRL_SECTION_EXPLICIT_KEY: {})", whose(w), all(w))
            }
            RevokedBy::KeyId { key_id, any_ca } => write!(
                f,
                "its key ID \"{}\" (KRL_SECTION_CERT_KEY_ID under {})",
                Esc(key_id),
                scope(any_ca)
            ),
            RevokedBy::Serial {
                serial,
                range: (lo, hi),
                any_ca,
            } => {
                let range = if lo == hi {
                    String::new()
                } else {
                    format!(": serials {lo}-{hi}")
                };
                write!(
                    f,
                    "its serial {serial} (KRL_SECTION_CERTIFICATES under {}{range})",
                    scope(any_ca)
                )
            }
        }
    }
}

/// How an encoded KRL is laid out: how many sections and subsections of each kind it holds
/// and what they revoke (for `krl -o`'s summary and the tests of the cost model).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// `KRL_SECTION_CERTIFICATES` sections.
    pub certificate_sections: usize,
    /// `KRL_SECTION_CERT_SERIAL_LIST` subsections, and the serials they hold.
    pub serial_lists: usize,
    pub listed_serials: u64,
    /// `KRL_SECTION_CERT_SERIAL_RANGE` subsections, and the serials they cover.
    pub serial_ranges: usize,
    pub ranged_serials: u64,
    /// `KRL_SECTION_CERT_SERIAL_BITMAP` subsections, and the serials they set.
    pub serial_bitmaps: usize,
    pub bitmap_serials: u64,
    /// `KRL_SECTION_CERT_KEY_ID` subsections, and the key IDs they hold.
    pub key_id_sections: usize,
    pub key_ids: usize,
    /// `KRL_SECTION_EXPLICIT_KEY` sections, and the keys they hold.
    pub explicit_key_sections: usize,
    pub explicit_keys: usize,
    /// `KRL_SECTION_FINGERPRINT_SHA1` / `_SHA256` hashes.
    pub sha1_fingerprints: usize,
    pub sha256_fingerprints: usize,
    /// Non-critical extension sections and subsections, skipped.
    pub extensions: usize,
}

impl Layout {
    /// The serials revoked, listed, ranged and in bitmaps together; the largest `u64` when
    /// they are more (a range can span every serial).
    pub fn serials(&self) -> u64 {
        self.listed_serials
            .saturating_add(self.ranged_serials)
            .saturating_add(self.bitmap_serials)
    }

    /// Whether the KRL revokes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.listed_serials == 0
            && self.ranged_serials == 0
            && self.bitmap_serials == 0
            && self.key_ids == 0
            && self.explicit_keys == 0
            && self.sha1_fingerprints == 0
            && self.sha256_fingerprints == 0
    }
}

impl Krl {
    /// The bytes of this KRL, in canonical form (see [`Krl::canonical`]), as `krl.c`'s
    /// `ssh_krl_to_blob` writes them (with [`MAX_BITMAP_BITS`] as the one difference).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let canon = Canon::of(self)?;
        let mut out = self.header();
        for section in &canon.certificates {
            let mut sect = Vec::new();
            match &section.ca_blob {
                Some(blob) => put_string(&mut sect, blob),
                None => put_string(&mut sect, b""),
            }
            put_string(&mut sect, b""); // reserved
            encode_serials(&section.serials, &mut sect);
            if !section.key_ids.is_empty() {
                let mut ids = Vec::new();
                for id in &section.key_ids {
                    put_string(&mut ids, id.as_bytes());
                }
                sect.push(KRL_SECTION_CERT_KEY_ID);
                put_string(&mut sect, &ids);
            }
            out.push(KRL_SECTION_CERTIFICATES);
            put_string(&mut out, &sect);
        }
        let mut blobs = |kind: u8, items: &mut dyn Iterator<Item = &[u8]>| {
            let mut sect = Vec::new();
            for item in items {
                put_string(&mut sect, item);
            }
            if !sect.is_empty() {
                out.push(kind);
                put_string(&mut out, &sect);
            }
        };
        blobs(
            KRL_SECTION_EXPLICIT_KEY,
            &mut canon.explicit_keys.iter().map(|(blob, _)| blob.as_slice()),
        );
        blobs(
            KRL_SECTION_FINGERPRINT_SHA1,
            &mut canon.sha1.iter().map(|h| h.as_slice()),
        );
        blobs(
            KRL_SECTION_FINGERPRINT_SHA256,
            &mut canon.sha256.iter().map(|h| h.as_slice()),
        );
        // Every string is shorter than the whole: if the whole fits a length field, so did
        // each (put_string never had to saturate). sshd reads at most 128 MiB anyway.
        if u32::try_from(out.len()).is_err() {
            return Err(Error::invalid(
                "the KRL would be larger than 4 GiB; OpenSSH reads at most 128 MiB",
            ));
        }
        Ok(out)
    }

    /// The header: magic, format version, `krl_version`, `generated_date`, flags, reserved,
    /// comment.
    fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(KRL_MAGIC);
        out.extend_from_slice(&KRL_FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.generated.to_be_bytes());
        out.extend_from_slice(&0u64.to_be_bytes()); // flags
        put_string(&mut out, b""); // reserved
        put_string(&mut out, self.comment.as_bytes());
        out
    }

    /// This KRL as `krl.c` holds one in memory, and as [`Krl::decode`] returns one: one
    /// certificate section per CA (in the order they first appear; none that revokes
    /// nothing), its serials merged into sorted runs (touching runs joined), its key IDs
    /// sorted and each once; explicit keys sorted by wire blob, hashes sorted, each once.
    pub fn canonical(&self) -> Result<Krl> {
        Ok(Canon::of(self)?.into_krl(self))
    }

    /// Read a KRL (see the module documentation for what is accepted).
    pub fn decode(bytes: &[u8]) -> Result<Krl> {
        Krl::decode_layout(bytes).map(|(krl, _)| krl)
    }

    /// Read a KRL, and say how it is laid out.
    pub fn decode_layout(bytes: &[u8]) -> Result<(Krl, Layout)> {
        Decoder::default().decode(bytes)
    }

    /// Whether this KRL revokes `cert`, and by which section: the checks of sshd
    /// (`ssh_krl_check_key`) in its order: the certificate's plain key by hash and as an
    /// explicit key; its key ID, then its serial (not 0), under its CA, then under any CA;
    /// then its signing CA's key by hash and as an explicit key.
    pub fn check(&self, cert: &Certificate) -> Result<Option<RevokedBy>> {
        if let Some(by) = self.key_revoked(cert.public_key(), WhichKey::Certificate)? {
            return Ok(Some(by));
        }
        let ca = cert.signature_key();
        for any_ca in [false, true] {
            let sections: Vec<&CertificateSection> = self
                .certificates
                .iter()
                .filter(|s| match &s.ca {
                    Some(k) => !any_ca && k == ca,
                    None => any_ca,
                })
                .collect();
            if let Some(id) = sections
                .iter()
                .flat_map(|s| s.key_ids.iter())
                .find(|id| id.as_str() == cert.key_id())
            {
                return Ok(Some(RevokedBy::KeyId {
                    key_id: id.clone(),
                    any_ca,
                }));
            }
            let serial = cert.serial();
            if serial != 0 {
                if let Some(range) = sections
                    .iter()
                    .flat_map(|s| s.serials.iter())
                    .find(|(lo, hi)| (*lo..=*hi).contains(&serial))
                {
                    return Ok(Some(RevokedBy::Serial {
                        serial,
                        range: *range,
                        any_ca,
                    }));
                }
            }
        }
        self.key_revoked(ca, WhichKey::SigningCa)
    }

    /// Whether this KRL revokes the plain key `key` (by hash or as an explicit key).
    pub fn check_key(&self, key: &KeyData) -> Result<Option<RevokedBy>> {
        self.key_revoked(key, WhichKey::Certificate)
    }

    fn key_revoked(&self, key: &KeyData, which: WhichKey) -> Result<Option<RevokedBy>> {
        let blob = key_blob(key)?;
        let sha1: [u8; 20] = sha1::Sha1::digest(&blob).into();
        if self.sha1_fingerprints.contains(&sha1) {
            return Ok(Some(RevokedBy::Sha1(which)));
        }
        let sha256: [u8; 32] = Sha256::digest(&blob).into();
        if self.sha256_fingerprints.contains(&sha256) {
            return Ok(Some(RevokedBy::Sha256(which)));
        }
        for k in &self.explicit_keys {
            if key_blob(k)? == blob {
                return Ok(Some(RevokedBy::ExplicitKey(which)));
            }
        }
        Ok(None)
    }
}

impl Krl {
    /// The KRL of a ledger's revocations for the CA key `ca` (see `BRIEF`: one certificate
    /// section under `ca` with the serials and key IDs, and every revoked requester key and CA
    /// key as an explicit key), version `revoked.version`, generated at `generated`. The
    /// result is canonical; `revoked` must be about `ca` (its fingerprint).
    pub fn from_revoked(
        revoked: &crate::ledger::Revoked,
        ca: &KeyData,
        generated: u64,
    ) -> Result<Krl> {
        let fingerprint = ca.fingerprint(HashAlg::Sha256).to_string();
        if revoked.ca_fingerprint != fingerprint {
            return Err(Error::ledger(format!(
                "the revocations read are for the CA {}, not for this CA ({fingerprint})",
                Esc(&revoked.ca_fingerprint)
            ))
            .with_hint("the ledger and ca.pub of this state directory disagree: run 'breakglass-ca log verify'"));
        }
        let mut certificates = Vec::new();
        if !revoked.serials.is_empty() || !revoked.key_ids.is_empty() {
            certificates.push(CertificateSection {
                ca: Some(ca.clone()),
                serials: revoked.serials.clone(),
                key_ids: revoked.key_ids.clone(),
            });
        }
        let mut explicit_keys = Vec::new();
        for (what, lines) in [
            ("requester key", &revoked.requester_keys),
            ("CA key", &revoked.ca_keys),
        ] {
            for line in lines {
                if crate::key::is_certificate(line) {
                    return Err(Error::ledger(format!(
                        "a revoked {what} in the ledger is a certificate, not a public key: {}",
                        Esc(line)
                    )));
                }
                let key = crate::key::parse_line(line).map_err(|e| {
                    Error::ssh(
                        format!(
                            "a revoked {what} in the ledger cannot be read ({})",
                            Esc(line)
                        ),
                        e,
                    )
                })?;
                explicit_keys.push(key.key_data().clone());
            }
        }
        Krl {
            version: revoked.version,
            generated,
            comment: format!("breakglass-ca CA {fingerprint}"),
            certificates,
            explicit_keys,
            ..Krl::default()
        }
        .canonical()
    }
}

// --- canonical form ---------------------------------------------------------------------

/// A KRL in canonical form, with the wire blobs of its keys.
struct Canon {
    certificates: Vec<CanonSection>,
    /// (blob, key), sorted by blob, each once.
    explicit_keys: Vec<(Vec<u8>, KeyData)>,
    sha1: Vec<[u8; 20]>,
    sha256: Vec<[u8; 32]>,
}

struct CanonSection {
    ca: Option<KeyData>,
    ca_blob: Option<Vec<u8>>,
    serials: Vec<(u64, u64)>,
    key_ids: Vec<String>,
}

impl Canon {
    fn of(krl: &Krl) -> Result<Canon> {
        if krl.comment.contains('\0') {
            return Err(Error::invalid("a KRL comment cannot hold a NUL character"));
        }
        let mut certificates: Vec<CanonSection> = Vec::new();
        for section in &krl.certificates {
            for &(lo, hi) in &section.serials {
                if lo == 0 || lo > hi {
                    return Err(Error::invalid(format!(
                        "cannot revoke the serials {lo}-{hi}: a KRL revokes serials from 1 up, in ranges low to high"
                    )));
                }
            }
            if let Some(id) = section.key_ids.iter().find(|id| id.contains('\0')) {
                return Err(Error::invalid(format!(
                    "cannot revoke the key ID \"{}\": it holds a NUL character",
                    Esc(id)
                )));
            }
            if section.serials.is_empty() && section.key_ids.is_empty() {
                continue;
            }
            let i = match certificates.iter().position(|c| c.ca == section.ca) {
                Some(i) => i,
                None => {
                    let ca_blob = section.ca.as_ref().map(key_blob).transpose()?;
                    certificates.push(CanonSection {
                        ca: section.ca.clone(),
                        ca_blob,
                        serials: Vec::new(),
                        key_ids: Vec::new(),
                    });
                    certificates.len() - 1
                }
            };
            let c = &mut certificates[i];
            c.serials.extend_from_slice(&section.serials);
            c.key_ids.extend(section.key_ids.iter().cloned());
        }
        for c in &mut certificates {
            c.serials = merge_runs(std::mem::take(&mut c.serials));
            c.key_ids.sort();
            c.key_ids.dedup();
        }
        let mut explicit_keys = krl
            .explicit_keys
            .iter()
            .map(|k| key_blob(k).map(|b| (b, k.clone())))
            .collect::<Result<Vec<_>>>()?;
        explicit_keys.sort_by(|a, b| a.0.cmp(&b.0));
        explicit_keys.dedup_by(|a, b| a.0 == b.0);
        let mut sha1 = krl.sha1_fingerprints.clone();
        sha1.sort();
        sha1.dedup();
        let mut sha256 = krl.sha256_fingerprints.clone();
        sha256.sort();
        sha256.dedup();
        Ok(Canon {
            certificates,
            explicit_keys,
            sha1,
            sha256,
        })
    }

    fn into_krl(self, header: &Krl) -> Krl {
        Krl {
            version: header.version,
            generated: header.generated,
            comment: header.comment.clone(),
            certificates: self
                .certificates
                .into_iter()
                .map(|c| CertificateSection {
                    ca: c.ca,
                    serials: c.serials,
                    key_ids: c.key_ids,
                })
                .collect(),
            explicit_keys: self.explicit_keys.into_iter().map(|(_, k)| k).collect(),
            sha1_fingerprints: self.sha1,
            sha256_fingerprints: self.sha256,
        }
    }
}

/// Inclusive runs sorted and merged, overlapping and touching ones joined (as `krl.c`'s
/// `insert_serial_range` keeps them).
fn merge_runs(mut runs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    runs.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(runs.len());
    for (lo, hi) in runs {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// The SSH wire blob of a plain public key.
fn key_blob(key: &KeyData) -> Result<Vec<u8>> {
    PublicKey::from(key.clone())
        .to_bytes()
        .map_err(|e| Error::ssh("cannot encode a public key for the KRL", e))
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    // Saturates only past 4 GiB, which `encode` refuses as a whole.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

// --- the serial subsections: krl.c's cost model -----------------------------------------

/// `choose_next_state` of `krl.c`: the subsection type for the next run of `contig`
/// serials, and whether to start a new bitmap. `can_extend` is false when the current bitmap
/// cannot take the run without passing [`MAX_BITMAP_BITS`] (the one addition to `krl.c`).
fn choose_next_state(
    current: u8,
    contig: u64,
    last: bool,
    last_gap: u64,
    next_gap: u64,
    can_extend: bool,
) -> (u8, bool) {
    let contig = contig.min(1 << 31);
    let last_gap = last_gap.min(1 << 31);
    let next_gap = next_gap.min(1 << 31);
    // The cost of switching to each: a range section holds one range, so it always costs a
    // new section; a new bitmap costs its type and offset.
    let (mut range, mut restart) = (8u64, 8 + 64u64);
    let (mut list, mut bitmap) = match current {
        KRL_SECTION_CERT_SERIAL_LIST => (0, 8 + 64),
        KRL_SECTION_CERT_SERIAL_BITMAP => (8, 0),
        _ => (8, 8 + 64),
    };
    let tail = |n: u64| if last { 0 } else { n };
    list += 64 * contig + tail(8 + 64);
    range += 2 * 64 + tail(8 + 64);
    bitmap += last_gap + contig + tail(next_gap.min(8 + 64));
    restart += contig + tail(next_gap.min(8 + 64));
    let bytes = |bits: u64| bits.div_ceil(8);
    let (list, range, restart) = (bytes(list), bytes(range), bytes(restart));
    let bitmap = if current == KRL_SECTION_CERT_SERIAL_BITMAP && !can_extend {
        u64::MAX
    } else {
        bytes(bitmap)
    };
    let (mut state, mut cost, mut force) = (KRL_SECTION_CERT_SERIAL_BITMAP, bitmap, false);
    if range < cost {
        (state, cost) = (KRL_SECTION_CERT_SERIAL_RANGE, range);
    }
    if list < cost {
        (state, cost) = (KRL_SECTION_CERT_SERIAL_LIST, list);
    }
    if restart < cost {
        (state, force) = (KRL_SECTION_CERT_SERIAL_BITMAP, true);
    }
    (state, force)
}

/// A serial subsection being built.
enum Building {
    None,
    List(Vec<u8>),
    Range(Vec<u8>),
    /// The first serial, and the bits from it on (bit N of byte N/8 is `start + N`).
    Bitmap(u64, Vec<u8>),
}

impl Building {
    fn state(&self) -> u8 {
        match self {
            Building::None => 0,
            Building::List(_) => KRL_SECTION_CERT_SERIAL_LIST,
            Building::Range(_) => KRL_SECTION_CERT_SERIAL_RANGE,
            Building::Bitmap(..) => KRL_SECTION_CERT_SERIAL_BITMAP,
        }
    }

    /// Write the subsection out (type and string), if any.
    fn flush(self, out: &mut Vec<u8>) {
        let state = self.state();
        let body = match self {
            Building::None => return,
            Building::List(b) | Building::Range(b) => b,
            Building::Bitmap(start, bits) => {
                let mut body = start.to_be_bytes().to_vec();
                // The mpint: big-endian, no leading zero bytes, one zero byte before a set
                // high bit (sshbuf_put_bignum2_bytes).
                let mut be: Vec<u8> = bits.iter().rev().copied().skip_while(|b| *b == 0).collect();
                if be.first().is_some_and(|b| b & 0x80 != 0) {
                    be.insert(0, 0);
                }
                put_string(&mut body, &be);
                body
            }
        };
        out.push(state);
        put_string(out, &body);
    }
}

/// The serial subsections of sorted, merged runs, as `revoked_certs_generate` makes them.
fn encode_serials(runs: &[(u64, u64)], out: &mut Vec<u8>) {
    let mut building = Building::None;
    let mut last = 0u64;
    for (i, &(lo, hi)) in runs.iter().enumerate() {
        let next = runs.get(i + 1);
        let is_last = next.is_none();
        let gap = next.map_or(0, |n| n.0 - hi);
        let contig = 1 + (hi - lo);
        let state = building.state();
        let can_extend = match &building {
            Building::Bitmap(start, _) => hi - start < MAX_BITMAP_BITS,
            _ => true,
        };
        let last_gap = if state == 0 { 0 } else { lo - last };
        let (mut next_state, mut force) =
            choose_next_state(state, contig, is_last, last_gap, gap, can_extend);
        // A new bitmap for a run longer than a bitmap may be (never cheaper than a range in
        // the cost model, but it must not happen): a range.
        if next_state == KRL_SECTION_CERT_SERIAL_BITMAP
            && (force || state != next_state)
            && contig > MAX_BITMAP_BITS
        {
            (next_state, force) = (KRL_SECTION_CERT_SERIAL_RANGE, false);
        }
        if state != 0 && (force || next_state != state || state == KRL_SECTION_CERT_SERIAL_RANGE) {
            std::mem::replace(&mut building, Building::None).flush(out);
        }
        if matches!(building, Building::None) {
            building = match next_state {
                KRL_SECTION_CERT_SERIAL_LIST => Building::List(Vec::new()),
                KRL_SECTION_CERT_SERIAL_RANGE => Building::Range(Vec::new()),
                _ => Building::Bitmap(lo, Vec::new()),
            };
        }
        match &mut building {
            Building::List(b) => {
                for s in lo..=hi {
                    b.extend_from_slice(&s.to_be_bytes());
                }
            }
            Building::Range(b) => {
                b.extend_from_slice(&lo.to_be_bytes());
                b.extend_from_slice(&hi.to_be_bytes());
            }
            Building::Bitmap(start, bits) => {
                // Within MAX_BITMAP_BITS of start (can_extend, or a new bitmap of a short run).
                let (from, to) = (lo - *start, hi - *start);
                let need = usize::try_from(to / 8 + 1).unwrap_or(usize::MAX);
                if bits.len() < need {
                    bits.resize(need, 0);
                }
                for n in from..=to {
                    if let Some(byte) = usize::try_from(n / 8).ok().and_then(|i| bits.get_mut(i)) {
                        *byte |= 1 << (n % 8);
                    }
                }
            }
            Building::None => {}
        }
        last = hi;
    }
    building.flush(out);
}

// --- decoding ---------------------------------------------------------------------------

fn bad(message: impl std::fmt::Display) -> Error {
    Error::invalid(format!("not a valid KRL: {message}"))
}

/// A bounded reader of SSH wire data; `base` is the offset of `buf` in the file, for messages.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        match end {
            Some(end) => {
                let out = &self.buf[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(bad(format!(
                "{what} at byte {} is cut short (the data ends first)",
                self.offset()
            ))),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A length-prefixed string, and the offset its content starts at.
    fn string(&mut self, what: &str) -> Result<(&'a [u8], usize)> {
        let len = self.u32(what)?;
        let start = self.offset();
        let len = usize::try_from(len).map_err(|_| bad(format!("{what} is too long")))?;
        self.take(len, what).map(|s| (s, start))
    }

    /// A string without NUL bytes (`sshbuf_get_cstring`).
    fn cstring(&mut self, what: &str) -> Result<&'a [u8]> {
        let at = self.offset();
        let (s, _) = self.string(what)?;
        if s.contains(&0) {
            return Err(bad(format!("{what} at byte {at} holds a NUL byte")));
        }
        Ok(s)
    }

    fn finish(&self, what: &str) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(bad(format!(
                "{what} has {} unread byte(s) at byte {}",
                self.buf.len() - self.pos,
                self.offset()
            )))
        }
    }
}

#[derive(Default)]
struct Decoder {
    entries: usize,
    layout: Layout,
    sections: Vec<CertificateSection>,
    keys: Vec<KeyData>,
    sha1: Vec<[u8; 20]>,
    sha256: Vec<[u8; 32]>,
}

impl Decoder {
    fn count(&mut self, n: usize) -> Result<()> {
        self.entries = self.entries.saturating_add(n);
        if self.entries > MAX_ENTRIES {
            return Err(bad(format!(
                "it revokes more than {MAX_ENTRIES} items (serial runs, key IDs, keys); this tool reads at most that many"
            )));
        }
        Ok(())
    }

    fn decode(mut self, bytes: &[u8]) -> Result<(Krl, Layout)> {
        if u64::try_from(bytes.len()).map_or(true, |n| n > MAX_KRL_BYTES) {
            return Err(bad(format!(
                "it is larger than {MAX_KRL_BYTES} bytes, the most this tool reads"
            )));
        }
        let mut r = Reader::new(bytes, 0);
        if bytes.len() < KRL_MAGIC.len() || &bytes[..KRL_MAGIC.len()] != KRL_MAGIC {
            return Err(bad("it does not start with the KRL magic \"SSHKRL\\n\\0\""));
        }
        r.take(KRL_MAGIC.len(), "the magic")?;
        let format = r.u32("the format version")?;
        if format != KRL_FORMAT_VERSION {
            return Err(bad(format!(
                "its format version is {format}, not {KRL_FORMAT_VERSION}"
            )));
        }
        let version = r.u64("krl_version")?;
        let generated = r.u64("generated_date")?;
        let _flags = r.u64("flags")?; // none are defined; krl.c ignores them
        r.string("the reserved header field")?;
        let comment = String::from_utf8_lossy(r.cstring("the comment")?).into_owned();
        while !r.is_empty() {
            let at = r.offset();
            let kind = r.u8("a section type")?;
            let (body, start) = r.string("a section")?;
            let mut s = Reader::new(body, start);
            match kind {
                KRL_SECTION_CERTIFICATES => self.certificates(&mut s)?,
                KRL_SECTION_EXPLICIT_KEY => {
                    self.layout.explicit_key_sections += 1;
                    while !s.is_empty() {
                        let at = s.offset();
                        let (blob, _) = s.string("an explicit key")?;
                        self.count(1)?;
                        self.keys.push(plain_key(blob, at, "an explicit key")?);
                        self.layout.explicit_keys += 1;
                    }
                }
                KRL_SECTION_FINGERPRINT_SHA1 => {
                    while !s.is_empty() {
                        let hash = hash_of::<20>(&mut s, "a SHA-1 fingerprint")?;
                        self.count(1)?;
                        self.sha1.push(hash);
                        self.layout.sha1_fingerprints += 1;
                    }
                }
                KRL_SECTION_FINGERPRINT_SHA256 => {
                    while !s.is_empty() {
                        let hash = hash_of::<32>(&mut s, "a SHA-256 fingerprint")?;
                        self.count(1)?;
                        self.sha256.push(hash);
                        self.layout.sha256_fingerprints += 1;
                    }
                }
                KRL_SECTION_EXTENSION => {
                    extension(&mut s, "an extension section")?;
                    self.layout.extensions += 1;
                }
                KRL_SECTION_SIGNATURE => {
                    return Err(bad(format!(
                        "it holds a signature section (at byte {at}), which OpenSSH 9.4 and later refuse"
                    )))
                }
                other => {
                    return Err(bad(format!(
                        "unknown section type {other} at byte {at}"
                    )))
                }
            }
            s.finish("a section")?;
        }
        let krl = Krl {
            version,
            generated,
            comment,
            certificates: self.sections,
            explicit_keys: self.keys,
            sha1_fingerprints: self.sha1,
            sha256_fingerprints: self.sha256,
        };
        // Merging and sorting makes nothing larger: the bounds above hold.
        Ok((krl.canonical()?, self.layout))
    }

    fn certificates(&mut self, s: &mut Reader<'_>) -> Result<()> {
        self.layout.certificate_sections += 1;
        let at = s.offset();
        let (ca_blob, _) = s.string("a certificate section's CA key")?;
        let ca = if ca_blob.is_empty() {
            None
        } else {
            Some(plain_key(ca_blob, at, "a certificate section's CA key")?)
        };
        s.string("a certificate section's reserved field")?;
        let mut serials = Vec::new();
        let mut key_ids = Vec::new();
        while !s.is_empty() {
            let at = s.offset();
            let kind = s.u8("a certificate subsection type")?;
            let (body, start) = s.string("a certificate subsection")?;
            let mut sub = Reader::new(body, start);
            match kind {
                KRL_SECTION_CERT_SERIAL_LIST => {
                    self.layout.serial_lists += 1;
                    while !sub.is_empty() {
                        let serial = sub.u64("a listed serial")?;
                        if serial == 0 {
                            return Err(bad(format!("serial 0 is listed at byte {at}")));
                        }
                        self.count(1)?;
                        serials.push((serial, serial));
                        self.layout.listed_serials += 1;
                    }
                }
                KRL_SECTION_CERT_SERIAL_RANGE => {
                    self.layout.serial_ranges += 1;
                    let lo = sub.u64("serial_min")?;
                    let hi = sub.u64("serial_max")?;
                    if lo == 0 || lo > hi {
                        return Err(bad(format!(
                            "the serial range {lo}-{hi} at byte {at} is not a range of serials from 1 up"
                        )));
                    }
                    self.count(1)?;
                    serials.push((lo, hi));
                    self.layout.ranged_serials =
                        self.layout.ranged_serials.saturating_add(hi - lo + 1);
                }
                KRL_SECTION_CERT_SERIAL_BITMAP => {
                    self.layout.serial_bitmaps += 1;
                    let offset = sub.u64("serial_offset")?;
                    let (mpint, _) = sub.string("a serial bitmap")?;
                    let set = self.bitmap(offset, mpint, at, &mut serials)?;
                    self.layout.bitmap_serials = self.layout.bitmap_serials.saturating_add(set);
                }
                KRL_SECTION_CERT_KEY_ID => {
                    self.layout.key_id_sections += 1;
                    while !sub.is_empty() {
                        let at = sub.offset();
                        let id = sub.cstring("a key ID")?;
                        let id = String::from_utf8(id.to_vec()).map_err(|_| {
                            bad(format!("the key ID at byte {at} is not UTF-8 text"))
                        })?;
                        self.count(1)?;
                        key_ids.push(id);
                        self.layout.key_ids += 1;
                    }
                }
                KRL_SECTION_CERT_EXTENSION => {
                    extension(&mut sub, "a certificate extension subsection")?;
                    self.layout.extensions += 1;
                }
                other => {
                    return Err(bad(format!(
                        "unknown certificate subsection type {other} at byte {at}"
                    )))
                }
            }
            sub.finish("a certificate subsection")?;
        }
        self.sections.push(CertificateSection {
            ca,
            serials,
            key_ids,
        });
        Ok(())
    }

    /// The runs of set bits of a bitmap subsection; how many serials it sets.
    fn bitmap(
        &mut self,
        offset: u64,
        mpint: &[u8],
        at: usize,
        serials: &mut Vec<(u64, u64)>,
    ) -> Result<u64> {
        // sshbuf_get_bignum2_bytes_direct: not negative, at most SSHBUF_MAX_BIGNUM bytes
        // (one more for a leading zero), leading zeros dropped.
        const MAX_BYTES: usize = (MAX_BITMAP_BITS / 8) as usize;
        if mpint.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(bad(format!("the serial bitmap at byte {at} is negative")));
        }
        if mpint.len() > MAX_BYTES + 1 || (mpint.len() == MAX_BYTES + 1 && mpint[0] != 0) {
            return Err(bad(format!(
                "the serial bitmap at byte {at} is larger than OpenSSH reads ({MAX_BITMAP_BITS} bits)"
            )));
        }
        let be: Vec<u8> = mpint.iter().copied().skip_while(|b| *b == 0).collect();
        let nbits = match be.first() {
            None => return Ok(0),
            Some(top) => (be.len() as u64 - 1) * 8 + u64::from(8 - top.leading_zeros()),
        };
        if offset.checked_add(nbits - 1).is_none() {
            return Err(bad(format!(
                "the serial bitmap at byte {at} runs past the largest serial"
            )));
        }
        let bit = |n: u64| {
            let byte = be.len() - 1 - (n / 8) as usize;
            be[byte] >> (n % 8) & 1 == 1
        };
        let mut set = 0u64;
        let mut n = 0u64;
        while n < nbits {
            if !bit(n) {
                n += 1;
                continue;
            }
            let start = n;
            while n < nbits && bit(n) {
                n += 1;
            }
            let (lo, hi) = (offset + start, offset + n - 1);
            if lo == 0 {
                return Err(bad(format!(
                    "the serial bitmap at byte {at} revokes serial 0"
                )));
            }
            self.count(1)?;
            serials.push((lo, hi));
            set += n - start;
        }
        Ok(set)
    }
}

/// A fixed-size hash string of a fingerprint section.
fn hash_of<const N: usize>(s: &mut Reader<'_>, what: &str) -> Result<[u8; N]> {
    let at = s.offset();
    let (bytes, _) = s.string(what)?;
    <[u8; N]>::try_from(bytes).map_err(|_| {
        bad(format!(
            "{what} at byte {at} is {} bytes long, not {N}",
            bytes.len()
        ))
    })
}

/// An extension (section or certificate subsection): a non-critical one is skipped, a
/// critical one refused, as OpenSSH 9.4+ does.
fn extension(s: &mut Reader<'_>, what: &str) -> Result<()> {
    let at = s.offset();
    let name = s.cstring("an extension name")?;
    let critical = s.u8("an extension's critical flag")?;
    s.string("an extension's contents")?;
    if critical != 0 {
        return Err(bad(format!(
            "{what} at byte {at} is the critical extension \"{}\", which is not supported",
            Esc(&String::from_utf8_lossy(name))
        )));
    }
    Ok(())
}

/// A plain public key from its wire blob: not a certificate, and encoded the one way OpenSSH
/// encodes it (so that comparing blobs, as sshd does, and comparing keys agree).
fn plain_key(blob: &[u8], at: usize, what: &str) -> Result<KeyData> {
    let algorithm = Reader::new(blob, at)
        .cstring(what)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default();
    if algorithm.contains("-cert-v0") {
        return Err(bad(format!(
            "{what} at byte {at} is a certificate ({}), not a plain key",
            Esc(&algorithm)
        )));
    }
    let key = PublicKey::from_bytes(blob).map_err(|e| {
        bad(format!(
            "{what} at byte {at} ({}) cannot be read: {e}",
            Esc(&algorithm)
        ))
    })?;
    if key.to_bytes().ok().as_deref() != Some(blob) {
        return Err(bad(format!(
            "{what} at byte {at} ({}) is not encoded as OpenSSH encodes it",
            Esc(&algorithm)
        )));
    }
    Ok(key.key_data().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::soft::SoftKey;
    use crate::backend::CaKey;
    use crate::cert::{self, CertOptions, CertSpec};
    use crate::ledger::Revoked;
    use crate::policy::Window;

    const ALICE: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO";
    const BOB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEyRQ7JpLyEU+9S3jVTdDRuxSuUSRAgNZ4Y0bq4ew+Xj";

    /// An SSH string: a u32 length, then the bytes.
    fn s(bytes: &[u8]) -> Vec<u8> {
        let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    fn u64s(values: &[u64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    fn header(version: u64, generated: u64, comment: &str) -> Vec<u8> {
        let mut h = b"SSHKRL\n\0".to_vec();
        h.extend_from_slice(&[0, 0, 0, 1]);
        h.extend_from_slice(&version.to_be_bytes());
        h.extend_from_slice(&generated.to_be_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&s(b""));
        h.extend_from_slice(&s(comment.as_bytes()));
        h
    }

    fn key(line: &str) -> KeyData {
        crate::key::parse_line(line).unwrap().key_data().clone()
    }

    fn blob(k: &KeyData) -> Vec<u8> {
        key_blob(k).unwrap()
    }

    /// A KRL of serials only, under CA `ca`.
    fn serials(ca: Option<KeyData>, runs: &[(u64, u64)]) -> Krl {
        Krl {
            certificates: vec![CertificateSection {
                ca,
                serials: runs.to_vec(),
                key_ids: vec![],
            }],
            ..Krl::default()
        }
    }

    /// The certificates section (type and string) around `subsections`, for the any-CA key.
    fn any_ca_section(subsections: &[u8]) -> Vec<u8> {
        let mut body = s(b"");
        body.extend(s(b""));
        body.extend_from_slice(subsections);
        let mut out = vec![KRL_SECTION_CERTIFICATES];
        out.extend(s(&body));
        out
    }

    fn sub(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend(s(body));
        out
    }

    fn layout(krl: &Krl) -> Layout {
        let bytes = krl.encode().unwrap();
        let (back, layout) = Krl::decode_layout(&bytes).unwrap();
        assert_eq!(back, krl.canonical().unwrap(), "round trip");
        layout
    }

    #[test]
    fn an_empty_krl_is_the_header_alone() {
        let krl = Krl {
            version: 20261201103316,
            generated: 1_790_000_000,
            comment: "breakglass-ca CA SHA256:x".into(),
            ..Krl::default()
        };
        let want = header(20261201103316, 1_790_000_000, "breakglass-ca CA SHA256:x");
        assert_eq!(krl.encode().unwrap(), want);
        assert_eq!(Krl::decode(&want).unwrap(), krl);
        assert!(Krl::decode_layout(&want).unwrap().1.is_empty());
    }

    #[test]
    fn one_serial_is_a_list() {
        let got = serials(None, &[(5, 5)]).encode().unwrap();
        let mut want = header(0, 0, "");
        want.extend(any_ca_section(&sub(
            KRL_SECTION_CERT_SERIAL_LIST,
            &u64s(&[5]),
        )));
        assert_eq!(got, want);
    }

    #[test]
    fn a_run_of_serials_is_a_range() {
        let got = serials(None, &[(3, 300)]).encode().unwrap();
        let mut want = header(0, 0, "");
        want.extend(any_ca_section(&sub(
            KRL_SECTION_CERT_SERIAL_RANGE,
            &u64s(&[3, 300]),
        )));
        assert_eq!(got, want);
    }

    #[test]
    fn close_serials_are_a_bitmap_an_mpint_with_a_zero_before_a_high_bit() {
        // 10, 12, 14, 16: bits 0, 2, 4, 6 from 10 = 0x55.
        let got = serials(None, &[(10, 10), (12, 12), (14, 14), (16, 16)])
            .encode()
            .unwrap();
        let mut body = u64s(&[10]);
        body.extend(s(&[0x55]));
        let mut want = header(0, 0, "");
        want.extend(any_ca_section(&sub(KRL_SECTION_CERT_SERIAL_BITMAP, &body)));
        assert_eq!(got, want);
        // 10, 12, 14, 17: bits 0, 2, 4, 7 = 0x95, high bit set: 00 95.
        let got = serials(None, &[(10, 10), (12, 12), (14, 14), (17, 17)])
            .encode()
            .unwrap();
        let mut body = u64s(&[10]);
        body.extend(s(&[0x00, 0x95]));
        let mut want = header(0, 0, "");
        want.extend(any_ca_section(&sub(KRL_SECTION_CERT_SERIAL_BITMAP, &body)));
        assert_eq!(got, want);
        // Nine bits: two bytes, big-endian (bit 8 in the first byte).
        let got = serials(None, &[(10, 10), (12, 12), (14, 14), (16, 16), (18, 18)])
            .encode()
            .unwrap();
        let mut body = u64s(&[10]);
        body.extend(s(&[0x01, 0x55]));
        assert!(got.ends_with(&body), "{got:x?}");
    }

    #[test]
    fn key_ids_sorted_after_the_serials_and_the_ca_key_first() {
        let ca = SoftKey::new(3).public_key().clone();
        let krl = Krl {
            certificates: vec![CertificateSection {
                ca: Some(ca.clone()),
                serials: vec![(7, 7)],
                key_ids: vec!["bob#2".into(), "alice#1".into(), "bob#2".into()],
            }],
            ..Krl::default()
        };
        let mut body = s(&blob(&ca));
        body.extend(s(b""));
        body.extend(sub(KRL_SECTION_CERT_SERIAL_LIST, &u64s(&[7])));
        let mut ids = s(b"alice#1");
        ids.extend(s(b"bob#2"));
        body.extend(sub(KRL_SECTION_CERT_KEY_ID, &ids));
        let mut want = header(0, 0, "");
        want.push(KRL_SECTION_CERTIFICATES);
        want.extend(s(&body));
        assert_eq!(krl.encode().unwrap(), want);
    }

    #[test]
    fn explicit_keys_and_hashes_sorted_by_blob_after_the_certificates() {
        let (a, b) = (key(ALICE), key(BOB));
        let ca = SoftKey::new(3).public_key().clone();
        let krl = Krl {
            certificates: vec![CertificateSection {
                ca: Some(ca.clone()),
                serials: vec![],
                key_ids: vec!["x".into()],
            }],
            explicit_keys: vec![b.clone(), ca.clone(), a.clone(), b.clone()],
            sha1_fingerprints: vec![[2; 20], [1; 20]],
            sha256_fingerprints: vec![[9; 32]],
            ..Krl::default()
        };
        let got = krl.encode().unwrap();
        let mut blobs = vec![blob(&a), blob(&b), blob(&ca)];
        blobs.sort();
        let mut keys = Vec::new();
        for b in &blobs {
            keys.extend(s(b));
        }
        let mut tail = sub(KRL_SECTION_EXPLICIT_KEY, &keys);
        let mut sha1 = s(&[1; 20]);
        sha1.extend(s(&[2; 20]));
        tail.extend(sub(KRL_SECTION_FINGERPRINT_SHA1, &sha1));
        tail.extend(sub(KRL_SECTION_FINGERPRINT_SHA256, &s(&[9; 32])));
        assert!(got.ends_with(&tail));
        let mut cert = s(&blob(&ca));
        cert.extend(s(b""));
        cert.extend(sub(KRL_SECTION_CERT_KEY_ID, &s(b"x")));
        let mut want = header(0, 0, "");
        want.push(KRL_SECTION_CERTIFICATES);
        want.extend(s(&cert));
        want.extend(tail);
        assert_eq!(got, want);
        let back = Krl::decode(&got).unwrap();
        assert_eq!(back.explicit_keys.len(), 3);
        assert_eq!(back, krl.canonical().unwrap());
    }

    #[test]
    fn the_cost_model_picks_range_bitmap_or_list() {
        // Contiguous: one range.
        let l = layout(&serials(None, &[(1, 10_000)]));
        assert_eq!(
            (l.serial_ranges, l.serial_lists, l.serial_bitmaps),
            (1, 0, 0)
        );
        assert_eq!(l.ranged_serials, 10_000);
        // Dense, scattered (every other serial): bitmaps only, none larger than sshd reads.
        let every_other: Vec<(u64, u64)> = (1..=20_000).step_by(2).map(|s| (s, s)).collect();
        let l = layout(&serials(None, &every_other));
        assert_eq!((l.serial_ranges, l.serial_lists), (0, 0), "{l:?}");
        assert_eq!(l.serial_bitmaps, 2, "{l:?}");
        assert_eq!(l.bitmap_serials, 10_000);
        // Sparse: one list.
        let sparse: Vec<(u64, u64)> = (1..=50).map(|i| (i * 1_000_003, i * 1_000_003)).collect();
        let l = layout(&serials(None, &sparse));
        assert_eq!(
            (l.serial_lists, l.serial_ranges, l.serial_bitmaps),
            (1, 0, 0)
        );
        assert_eq!(l.listed_serials, 50);
        // Mixed: a run, then scattered ones close together, then far ones.
        let mut mixed = vec![(1, 500)];
        mixed.extend((600..700).step_by(3).map(|s| (s, s)));
        mixed.extend([(10_000_000, 10_000_000), (20_000_000, 20_000_000)]);
        let l = layout(&serials(None, &mixed));
        assert_eq!(
            (l.serial_ranges, l.serial_bitmaps, l.serial_lists),
            (1, 1, 1),
            "{l:?}"
        );
    }

    #[test]
    fn a_bitmap_never_spans_more_than_sshd_reads() {
        // 40,000 dense serials: krl.c would make one 80,000-bit bitmap sshd cannot read.
        let dense: Vec<(u64, u64)> = (1..=80_000).step_by(2).map(|s| (s, s)).collect();
        let bytes = serials(None, &dense).encode().unwrap();
        let (back, l) = Krl::decode_layout(&bytes).unwrap();
        assert_eq!(l.serial_bitmaps, 5, "{l:?}");
        assert_eq!(back.certificates[0].serials, dense);
        // And with runs inside (bitmaps of runs of 3): still within the limit.
        let runs: Vec<(u64, u64)> = (0..20_000).map(|i| (i * 5 + 1, i * 5 + 3)).collect();
        let bytes = serials(None, &runs).encode().unwrap();
        assert_eq!(Krl::decode(&bytes).unwrap().certificates[0].serials, runs);
    }

    #[test]
    fn serials_are_merged_and_sections_per_ca_joined() {
        let ca = SoftKey::new(3).public_key().clone();
        let krl = Krl {
            certificates: vec![
                CertificateSection {
                    ca: Some(ca.clone()),
                    serials: vec![(10, 20), (1, 3)],
                    key_ids: vec!["b".into()],
                },
                CertificateSection::default(),
                CertificateSection {
                    ca: Some(ca.clone()),
                    serials: vec![(4, 4), (15, 30)],
                    key_ids: vec!["a".into()],
                },
            ],
            ..Krl::default()
        };
        let canon = krl.canonical().unwrap();
        assert_eq!(
            canon.certificates,
            vec![CertificateSection {
                ca: Some(ca),
                serials: vec![(1, 4), (10, 30)],
                key_ids: vec!["a".into(), "b".into()],
            }]
        );
        assert_eq!(Krl::decode(&krl.encode().unwrap()).unwrap(), canon);
    }

    #[test]
    fn what_sshd_would_refuse_is_not_encoded() {
        for bad_runs in [vec![(0, 3)], vec![(5, 4)]] {
            let krl = serials(None, &bad_runs);
            assert!(krl.encode().is_err());
        }
        let krl = Krl {
            certificates: vec![CertificateSection {
                ca: None,
                serials: vec![],
                key_ids: vec!["a\0b".into()],
            }],
            ..Krl::default()
        };
        assert!(krl.encode().is_err());
    }

    fn cert_for(ca: &SoftKey, subject: &str, serial: u64, key_id: &str) -> Certificate {
        let now = chrono::Utc::now();
        let spec = CertSpec {
            subject: PublicKey::from_openssh(subject).unwrap(),
            serial,
            key_id: key_id.into(),
            principals: vec!["breakglass".into()],
            window: Window {
                valid_after: now - chrono::TimeDelta::minutes(1),
                valid_before: now + chrono::TimeDelta::minutes(10),
            },
            options: CertOptions::default(),
            binding: None,
        };
        cert::sign(ca, &spec).unwrap()
    }

    #[test]
    fn a_certificate_is_checked_as_sshd_does() {
        let ca = SoftKey::new(3);
        let other = SoftKey::new(4);
        let ca_key = ca.public_key().clone();
        let c = |serial, id: &str| cert_for(&ca, ALICE, serial, id);
        let mut krl = Krl {
            certificates: vec![
                CertificateSection {
                    ca: Some(ca_key.clone()),
                    serials: vec![(5, 9)],
                    key_ids: vec!["stolen".into()],
                },
                CertificateSection {
                    ca: None,
                    serials: vec![(100, 100)],
                    key_ids: vec!["anywhere".into()],
                },
            ],
            ..Krl::default()
        };
        assert_eq!(krl.check(&c(4, "x")).unwrap(), None);
        assert_eq!(
            krl.check(&c(6, "x")).unwrap(),
            Some(RevokedBy::Serial {
                serial: 6,
                range: (5, 9),
                any_ca: false
            })
        );
        // The key ID is checked before the serial.
        assert_eq!(
            krl.check(&c(6, "stolen")).unwrap(),
            Some(RevokedBy::KeyId {
                key_id: "stolen".into(),
                any_ca: false
            })
        );
        // Another CA's certificate with a revoked serial is not revoked; the any-CA section
        // applies to every CA.
        let theirs = cert_for(&other, ALICE, 6, "stolen");
        assert_eq!(krl.check(&theirs).unwrap(), None);
        let theirs = cert_for(&other, ALICE, 100, "x");
        assert!(matches!(
            krl.check(&theirs).unwrap(),
            Some(RevokedBy::Serial { any_ca: true, .. })
        ));
        let theirs = cert_for(&other, ALICE, 1, "anywhere");
        assert!(matches!(
            krl.check(&theirs).unwrap(),
            Some(RevokedBy::KeyId { any_ca: true, .. })
        ));
        // Serial 0 is never revoked by serial (a section can't even hold it).
        assert_eq!(krl.check(&c(0, "x")).unwrap(), None);
        // The requester key outright: before anything else, from any CA.
        krl.explicit_keys.push(key(ALICE));
        assert_eq!(
            krl.check(&c(6, "stolen")).unwrap(),
            Some(RevokedBy::ExplicitKey(WhichKey::Certificate))
        );
        assert_eq!(
            krl.check_key(&key(ALICE)).unwrap(),
            Some(RevokedBy::ExplicitKey(WhichKey::Certificate))
        );
        assert_eq!(krl.check_key(&key(BOB)).unwrap(), None);
        // The CA key outright: every certificate it signed, last.
        krl.explicit_keys = vec![ca_key.clone()];
        let bob = cert_for(&ca, BOB, 1, "x");
        assert_eq!(
            krl.check(&bob).unwrap(),
            Some(RevokedBy::ExplicitKey(WhichKey::SigningCa))
        );
        assert_eq!(krl.check(&cert_for(&other, BOB, 1, "x")).unwrap(), None);
        // By hash.
        let bob_blob = blob(&key(BOB));
        let krl = Krl {
            sha256_fingerprints: vec![Sha256::digest(&bob_blob).into()],
            ..Krl::default()
        };
        assert_eq!(
            krl.check(&bob).unwrap(),
            Some(RevokedBy::Sha256(WhichKey::Certificate))
        );
        let krl = Krl {
            sha1_fingerprints: vec![sha1::Sha1::digest(blob(&ca_key)).into()],
            ..Krl::default()
        };
        assert_eq!(
            krl.check(&bob).unwrap(),
            Some(RevokedBy::Sha1(WhichKey::SigningCa))
        );
        let shown = RevokedBy::KeyId {
            key_id: "x\u{1b}[2J".into(),
            any_ca: false,
        }
        .to_string();
        assert!(!shown.contains('\u{1b}'), "{shown}");
    }

    #[test]
    fn from_revoked_is_what_the_brief_says() {
        let ca = SoftKey::new(3).public_key().clone();
        let backup = SoftKey::new(4).public_key().clone();
        let backup_line = crate::key::openssh_line(&backup).unwrap();
        let fp = crate::key::fingerprint(&ca);
        let revoked = Revoked {
            ca_fingerprint: fp.clone(),
            serials: vec![(3, 3), (7, 12)],
            key_ids: vec!["alice#3:INC-1".into()],
            requester_keys: vec![BOB.into()],
            ca_keys: vec![backup_line],
            records: 4,
            version: 20261201103316,
            newest: Some("2026-12-01T10:33:16Z".into()),
        };
        let krl = Krl::from_revoked(&revoked, &ca, 1_790_000_000).unwrap();
        assert_eq!(krl.version, 20261201103316);
        assert_eq!(krl.generated, 1_790_000_000);
        assert_eq!(krl.comment, format!("breakglass-ca CA {fp}"));
        assert_eq!(
            krl.certificates,
            vec![CertificateSection {
                ca: Some(ca.clone()),
                serials: vec![(3, 3), (7, 12)],
                key_ids: vec!["alice#3:INC-1".into()],
            }]
        );
        let mut want = vec![key(BOB), backup.clone()];
        want.sort_by_key(blob);
        assert_eq!(krl.explicit_keys, want);
        assert_eq!(Krl::decode(&krl.encode().unwrap()).unwrap(), krl);

        // Nothing revoked: the header alone, version 0.
        let none = Revoked {
            ca_fingerprint: fp.clone(),
            ..Revoked::default()
        };
        let krl = Krl::from_revoked(&none, &ca, 5).unwrap();
        assert_eq!(
            krl.encode().unwrap(),
            header(0, 5, &format!("breakglass-ca CA {fp}"))
        );
        // Only a key: no certificates section.
        let keys_only = Revoked {
            ca_keys: vec![crate::key::openssh_line(&ca).unwrap()],
            ..none.clone()
        };
        let krl = Krl::from_revoked(&keys_only, &ca, 5).unwrap();
        assert!(krl.certificates.is_empty());
        assert_eq!(krl.explicit_keys, vec![ca.clone()]);
        // Another CA's revocations, a certificate or garbage as a key: refused.
        assert!(Krl::from_revoked(&none, &backup, 5).is_err());
        let cert_line = cert_for(&SoftKey::new(3), ALICE, 1, "x")
            .to_openssh()
            .unwrap();
        for line in [cert_line, "ssh-ed25519 AAAA".to_string()] {
            let bad = Revoked {
                requester_keys: vec![line],
                ..none.clone()
            };
            assert!(Krl::from_revoked(&bad, &ca, 5).is_err());
        }
    }

    /// A KRL with every kind of section, for the hostile-input tests.
    fn rich() -> Vec<u8> {
        let ca = SoftKey::new(3).public_key().clone();
        let mut runs = vec![(1, 500)];
        runs.extend((600..700).step_by(3).map(|s| (s, s)));
        runs.extend([(10_000_000, 10_000_000), (20_000_000, 20_000_000)]);
        Krl {
            version: 7,
            generated: 8,
            comment: "c".into(),
            certificates: vec![
                CertificateSection {
                    ca: Some(ca.clone()),
                    serials: runs,
                    key_ids: vec!["a".into(), "b".into()],
                },
                CertificateSection {
                    ca: None,
                    serials: vec![(9, 9)],
                    key_ids: vec!["any".into()],
                },
            ],
            explicit_keys: vec![key(ALICE), ca],
            sha1_fingerprints: vec![[1; 20]],
            sha256_fingerprints: vec![[2; 32]],
        }
        .encode()
        .unwrap()
    }

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let good = rich();
        Krl::decode(&good).unwrap();
        // Every truncation is refused, except at the end of a section: the sections before.
        let mut whole = 0;
        for n in 0..good.len() {
            if let Ok(krl) = Krl::decode(&good[..n]) {
                assert_eq!(krl.encode().unwrap(), &good[..n], "truncated at {n}");
                whole += 1;
            }
        }
        assert_eq!(whole, 5, "the header, then each of the first four sections");
        // Every byte changed, a few ways: an error or a KRL, never a panic.
        for i in 0..good.len() {
            for v in [0x00, 0xff, 0x80, good[i] ^ 1, good[i].wrapping_add(1)] {
                let mut b = good.clone();
                b[i] = v;
                let _ = Krl::decode(&b);
            }
        }
        // Random bytes, with and without a valid header in front.
        let mut rng = Lcg(42);
        let head = header(1, 2, "x");
        for round in 0..3000 {
            let len = (rng.next() % 300) as usize;
            let mut b: Vec<u8> = if round % 2 == 0 {
                head.clone()
            } else {
                Vec::new()
            };
            b.extend((0..len).map(|_| rng.next() as u8));
            let _ = Krl::decode(&b);
        }
        // Random sections of plausible types.
        for _ in 0..3000 {
            let mut b = head.clone();
            for _ in 0..(rng.next() % 4) {
                b.push([1, 2, 3, 4, 5, 255, 0x20, 0x22][(rng.next() % 8) as usize]);
                let body: Vec<u8> = (0..rng.next() % 64).map(|_| rng.next() as u8).collect();
                b.extend(s(&body));
            }
            let _ = Krl::decode(&b);
        }
    }

    #[test]
    fn hostile_sizes_are_refused_before_any_allocation() {
        // A string claiming 4 GiB.
        let mut b = header(0, 0, "");
        b.push(KRL_SECTION_CERTIFICATES);
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        let err = Krl::decode(&b).unwrap_err().to_string();
        assert!(err.contains("cut short"), "{err}");
        // A file over the limit.
        let big = vec![0u8; MAX_KRL_BYTES as usize + 1];
        assert!(Krl::decode(&big)
            .unwrap_err()
            .to_string()
            .contains("larger than"));
        // Bitmaps that would expand into millions of runs: refused at MAX_ENTRIES.
        let mut subs = Vec::new();
        let mut body = u64s(&[1]);
        body.extend(s(&[0x55; 2048]));
        for _ in 0..130 {
            subs.extend(sub(KRL_SECTION_CERT_SERIAL_BITMAP, &body));
        }
        let mut b = header(0, 0, "");
        b.extend(any_ca_section(&subs));
        let err = Krl::decode(&b).unwrap_err().to_string();
        assert!(err.contains("more than 1000000 items"), "{err}");
        // A bitmap larger than sshd reads.
        let mut body = u64s(&[1]);
        body.extend(s(&[0x01; 2049]));
        let mut b = header(0, 0, "");
        b.extend(any_ca_section(&sub(KRL_SECTION_CERT_SERIAL_BITMAP, &body)));
        assert!(Krl::decode(&b)
            .unwrap_err()
            .to_string()
            .contains("larger than OpenSSH reads"));
    }

    #[test]
    fn what_sshd_refuses_is_refused() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"SSHKRL\n".to_vec(), "magic"),
            (
                [&KRL_MAGIC[..], &[0, 0, 0, 2]].concat(),
                "format version is 2",
            ),
            (
                [
                    header(0, 0, ""),
                    any_ca_section(&sub(KRL_SECTION_CERT_SERIAL_LIST, &u64s(&[0]))),
                ]
                .concat(),
                "serial 0",
            ),
            (
                [
                    header(0, 0, ""),
                    any_ca_section(&sub(KRL_SECTION_CERT_SERIAL_RANGE, &u64s(&[5, 4]))),
                ]
                .concat(),
                "5-4",
            ),
            (
                [
                    header(0, 0, ""),
                    any_ca_section(&sub(KRL_SECTION_CERT_SERIAL_RANGE, &u64s(&[1, 2, 3]))),
                ]
                .concat(),
                "unread",
            ),
            (
                [header(0, 0, ""), any_ca_section(&sub(0x30, b""))].concat(),
                "unknown certificate subsection type 48",
            ),
            (
                [header(0, 0, ""), sub(9, b"")].concat(),
                "unknown section type 9",
            ),
            (
                [header(0, 0, ""), sub(KRL_SECTION_SIGNATURE, b"")].concat(),
                "signature",
            ),
            (
                [
                    header(0, 0, ""),
                    sub(KRL_SECTION_FINGERPRINT_SHA256, &s(&[1; 20])),
                ]
                .concat(),
                "20 bytes long, not 32",
            ),
            (
                [header(0, 0, ""), sub(KRL_SECTION_EXPLICIT_KEY, &s(b"junk"))].concat(),
                "cannot be read",
            ),
            (
                [
                    header(0, 0, ""),
                    any_ca_section(&sub(KRL_SECTION_CERT_KEY_ID, &s(b"a\0b"))),
                ]
                .concat(),
                "NUL",
            ),
            (
                [
                    header(0, 0, ""),
                    any_ca_section(&sub(KRL_SECTION_CERT_KEY_ID, &s(&[0xff, 0xfe]))),
                ]
                .concat(),
                "not UTF-8",
            ),
            (
                [
                    header(0, 0, ""),
                    sub(
                        KRL_SECTION_EXTENSION,
                        &[s(b"x@y"), vec![1], s(b"")].concat(),
                    ),
                ]
                .concat(),
                "critical extension",
            ),
        ];
        for (bytes, needle) in cases {
            let err = Krl::decode(&bytes).unwrap_err().to_string();
            assert!(err.starts_with("not a valid KRL: "), "{err}");
            assert!(err.contains(needle), "{needle}: {err}");
        }
        // A certificate as an explicit key.
        let cert = cert_for(&SoftKey::new(3), ALICE, 1, "x");
        let cert_blob = cert.to_bytes().unwrap();
        let b = [
            header(0, 0, ""),
            sub(KRL_SECTION_EXPLICIT_KEY, &s(&cert_blob)),
        ]
        .concat();
        let err = Krl::decode(&b).unwrap_err().to_string();
        assert!(err.contains("is a certificate"), "{err}");
        // A non-critical extension is skipped.
        let b = [
            header(0, 0, ""),
            sub(
                KRL_SECTION_EXTENSION,
                &[s(b"x@y"), vec![0], s(b"z")].concat(),
            ),
        ]
        .concat();
        let (krl, layout) = Krl::decode_layout(&b).unwrap();
        assert_eq!((krl, layout.extensions), (Krl::default(), 1));
        // A bitmap with leading zero bytes (sshd trims them) and an empty one.
        let mut body = u64s(&[10]);
        body.extend(s(&[0, 0, 0x05]));
        let mut empty = u64s(&[10]);
        empty.extend(s(b""));
        let subs = [
            sub(KRL_SECTION_CERT_SERIAL_BITMAP, &body),
            sub(KRL_SECTION_CERT_SERIAL_BITMAP, &empty),
        ]
        .concat();
        let b = [header(0, 0, ""), any_ca_section(&subs)].concat();
        assert_eq!(
            Krl::decode(&b).unwrap().certificates[0].serials,
            vec![(10, 10), (12, 12)]
        );
        // A bitmap running past the largest serial, or setting serial 0.
        let bitmap = |offset: u64, bits: u8| {
            let mut body = u64s(&[offset]);
            body.extend(s(&[bits]));
            [
                header(0, 0, ""),
                any_ca_section(&sub(KRL_SECTION_CERT_SERIAL_BITMAP, &body)),
            ]
            .concat()
        };
        assert!(Krl::decode(&bitmap(u64::MAX, 0x03))
            .unwrap_err()
            .to_string()
            .contains("past the largest serial"));
        assert!(Krl::decode(&bitmap(0, 0x03))
            .unwrap_err()
            .to_string()
            .contains("serial 0"));
        assert_eq!(
            Krl::decode(&bitmap(0, 0x02)).unwrap().certificates[0].serials,
            vec![(1, 1)]
        );
    }

    #[test]
    fn round_trips_of_random_krls() {
        let mut rng = Lcg(7);
        let ca = SoftKey::new(3).public_key().clone();
        for _ in 0..200 {
            let mut runs = Vec::new();
            let mut at = 1 + rng.next() % 100;
            for _ in 0..rng.next() % 300 {
                let len = match rng.next() % 4 {
                    0 => rng.next() % 400,
                    _ => rng.next() % 3,
                };
                runs.push((at, at + len));
                at += len
                    + 1
                    + match rng.next() % 3 {
                        0 => rng.next() % 100_000,
                        _ => 1 + rng.next() % 20,
                    };
            }
            let krl = serials(Some(ca.clone()), &runs);
            let bytes = krl.encode().unwrap();
            let back = Krl::decode(&bytes).unwrap();
            assert_eq!(back, krl.canonical().unwrap());
            assert_eq!(back.encode().unwrap(), bytes);
        }
    }
}
