//! Building, signing and self-verifying user certificates. The token signs through
//! [`crate::backend::CaKey`]; every certificate is checked against the CA public key read from
//! the token before anyone may write it out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ssh_key::certificate::{Builder, CertType};
use ssh_key::public::KeyData;
use ssh_key::{Certificate, HashAlg, PublicKey};

use crate::backend::{self, CaKey};
use crate::error::{Error, Result};
use crate::policy::Window;

/// Critical options and extensions, as `-O` builds them (same names as `ssh-keygen -O`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertOptions {
    pub critical: BTreeMap<String, String>,
    pub extensions: BTreeMap<String, String>,
}

const EXTENSIONS: &[&str] = &[
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];

impl Default for CertOptions {
    /// Least privilege: a terminal, nothing else.
    fn default() -> Self {
        let mut extensions = BTreeMap::new();
        extensions.insert("permit-pty".to_string(), String::new());
        CertOptions {
            critical: BTreeMap::new(),
            extensions,
        }
    }
}

fn option_error(opt: &str, why: &str) -> Error {
    Error::usage(format!("-O {opt}: {why}")).with_hint(
        "accepted: clear, force-command=CMD, source-address=CIDR[,CIDR], verify-required, permit-pty, permit-port-forwarding, permit-agent-forwarding, permit-X11-forwarding, permit-user-rc, and no-pty, no-port-forwarding, no-agent-forwarding, no-x11-forwarding, no-user-rc",
    )
}

fn check_cidr(opt: &str, cidr: &str) -> Result<()> {
    let (addr, prefix) = cidr.split_once('/').unwrap_or((cidr, ""));
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|_| option_error(opt, &format!("'{cidr}' is not an IP address or CIDR")))?;
    if !prefix.is_empty() {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match prefix.parse::<u8>() {
            Ok(p) if p <= max => {}
            _ => {
                return Err(option_error(
                    opt,
                    &format!("'{cidr}' has a bad prefix length"),
                ))
            }
        }
    }
    Ok(())
}

impl CertOptions {
    /// Apply `-O` options in order, as ssh-keygen does: `clear` drops every extension.
    pub fn parse(options: &[String]) -> Result<Self> {
        let mut out = CertOptions::default();
        for opt in options {
            let (name, value) = match opt.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (opt.as_str(), None),
            };
            let lower = name.to_ascii_lowercase();
            match (lower.as_str(), value) {
                ("clear", None) => out.extensions.clear(),
                ("force-command", Some(cmd)) if !cmd.trim().is_empty() => {
                    out.critical.insert("force-command".into(), cmd.into());
                }
                ("source-address", Some(list)) => {
                    for cidr in list.split(',') {
                        check_cidr(opt, cidr)?;
                    }
                    out.critical.insert("source-address".into(), list.into());
                }
                ("verify-required", None) => {
                    out.critical.insert("verify-required".into(), String::new());
                }
                (ext, None) if ext.starts_with("permit-") => {
                    let canonical = EXTENSIONS
                        .iter()
                        .find(|e| e.eq_ignore_ascii_case(ext))
                        .ok_or_else(|| option_error(opt, "unknown extension"))?;
                    out.extensions.insert((*canonical).into(), String::new());
                }
                (neg, None) if neg.starts_with("no-") => {
                    let canonical = EXTENSIONS
                        .iter()
                        .find(|e| e[7..].eq_ignore_ascii_case(&neg[3..]))
                        .ok_or_else(|| option_error(opt, "unknown option"))?;
                    out.extensions.remove(*canonical);
                }
                ("force-command" | "source-address", _) => {
                    return Err(option_error(
                        opt,
                        "needs a value, e.g. force-command=/usr/bin/true",
                    ))
                }
                _ => return Err(option_error(opt, "unknown option")),
            }
        }
        Ok(out)
    }
}

/// Everything that goes into one certificate.
#[derive(Clone, Debug)]
pub struct CertSpec {
    pub subject: PublicKey,
    pub serial: u64,
    pub key_id: String,
    pub principals: Vec<String>,
    pub window: Window,
    pub options: CertOptions,
}

fn unix(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp()).unwrap_or(0)
}

/// Build and sign the certificate, then verify it against the token's public key.
pub fn sign(ca: &dyn CaKey, spec: &CertSpec) -> Result<Certificate> {
    let build = |e| Error::ssh("cannot build the certificate", e);
    let mut builder = Builder::new_with_random_nonce(
        &mut rand_core::OsRng,
        spec.subject.key_data().clone(),
        unix(spec.window.valid_after),
        unix(spec.window.valid_before),
    )
    .map_err(build)?;
    builder.serial(spec.serial).map_err(build)?;
    builder.cert_type(CertType::User).map_err(build)?;
    builder.key_id(spec.key_id.clone()).map_err(build)?;
    for p in &spec.principals {
        builder.valid_principal(p.clone()).map_err(build)?;
    }
    for (name, value) in &spec.options.critical {
        builder
            .critical_option(name.clone(), value.clone())
            .map_err(build)?;
    }
    for (name, value) in &spec.options.extensions {
        builder
            .extension(name.clone(), value.clone())
            .map_err(build)?;
    }
    // The comment is not signed; the requester chose it. It goes into the -cert.pub file and
    // the ledger, which people read on terminals: unsafe characters made visible.
    builder
        .comment(crate::text::visible(spec.subject.comment()))
        .map_err(build)?;
    let cert = backend::with_signer(ca, "cannot sign the certificate", |signer| {
        builder.sign(signer)
    })?;
    verify(&cert, ca.public_key(), spec)?;
    Ok(cert)
}

/// Check a freshly signed certificate: signed by `ca`, for the requested key, principals,
/// serial and window. A failure here means the token or this tool misbehaved: nothing is issued.
pub fn verify(cert: &Certificate, ca: &KeyData, spec: &CertSpec) -> Result<()> {
    let fail = |what: &str| {
        Error::token(format!(
            "the signed certificate failed its self-check: {what}; it was NOT issued"
        ))
        .with_hint("try again; if it happens again, the token is faulty: use the backup token")
    };
    if cert.signature_key() != ca {
        return Err(fail("it names another CA key"));
    }
    let ca_fp = ca.fingerprint(HashAlg::Sha256);
    cert.validate_at(cert.valid_after(), [&ca_fp])
        .map_err(|_| fail("its signature does not verify with the CA public key"))?;
    if cert.public_key() != spec.subject.key_data()
        || cert.serial() != spec.serial
        || cert.valid_principals() != spec.principals.as_slice()
        || cert.key_id() != spec.key_id
        || cert.cert_type() != CertType::User
    {
        return Err(fail("its contents differ from the request"));
    }
    Ok(())
}

/// The SHA256 fingerprint of a certificate's whole encoding, as the ledger records it.
pub fn certificate_sha256(cert: &Certificate) -> Result<String> {
    use sha2::Digest;
    let blob = cert
        .to_bytes()
        .map_err(|e| Error::ssh("cannot encode the certificate", e))?;
    let digest = sha2::Sha256::digest(&blob);
    Ok(format!(
        "SHA256:{}",
        <base64ct::Base64Unpadded as base64ct::Encoding>::encode_string(&digest)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> Result<CertOptions> {
        CertOptions::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn default_is_permit_pty_only() {
        let o = parse(&[]).unwrap();
        assert!(o.critical.is_empty());
        assert_eq!(o.extensions.keys().collect::<Vec<_>>(), ["permit-pty"]);
    }

    #[test]
    fn options_apply_in_order() {
        let o = parse(&[
            "clear",
            "permit-agent-forwarding",
            "permit-x11-forwarding",
            "no-agent-forwarding",
            "force-command=/usr/bin/uptime",
            "source-address=10.0.0.0/8,192.0.2.1,2001:db8::/32",
            "verify-required",
        ])
        .unwrap();
        assert_eq!(
            o.extensions.keys().collect::<Vec<_>>(),
            ["permit-X11-forwarding"]
        );
        assert_eq!(o.critical["force-command"], "/usr/bin/uptime");
        assert_eq!(
            o.critical["source-address"],
            "10.0.0.0/8,192.0.2.1,2001:db8::/32"
        );
        assert!(o.critical.contains_key("verify-required"));
        assert!(parse(&["no-pty"]).unwrap().extensions.is_empty());
    }

    #[test]
    fn bad_options_refused() {
        for (opt, why) in [
            ("permit-everything", "unknown extension"),
            ("frobnicate", "unknown option"),
            ("force-command", "needs a value"),
            ("force-command=", "needs a value"),
            ("source-address=10.0.0.0/33", "prefix"),
            ("source-address=example.com", "not an IP"),
            ("no-frobs", "unknown option"),
            ("clear=1", "unknown option"),
        ] {
            let err = parse(&[opt]).unwrap_err();
            assert!(err.to_string().contains(why), "{opt}: {err}");
            assert_eq!(err.exit_code(), 2);
        }
    }
}
