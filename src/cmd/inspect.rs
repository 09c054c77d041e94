//! `inspect`: print a certificate the way `ssh-keygen -L` does, then check it: the signature,
//! the CA (given `--ca-pubkey`) and the validity window. Exits 1 on a bad signature, a foreign
//! CA or an expired certificate.

use chrono::{DateTime, Utc};
use ssh_key::{Certificate, HashAlg, PublicKey};

use crate::cli::InspectArgs;
use crate::cmd::{read_input, Globals};
use crate::error::{Error, Result};
use crate::ui::both_times;

/// The `ssh-keygen -L` style description of a certificate.
pub fn describe(cert: &Certificate, name: &str) -> String {
    let list = |items: Vec<String>| {
        if items.is_empty() {
            " (none)".to_string()
        } else {
            items
                .iter()
                .map(|i| format!("\n                {i}"))
                .collect()
        }
    };
    let fmt_time = |t: u64| {
        DateTime::<Utc>::from_timestamp(t as i64, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_else(|| t.to_string())
    };
    let critical = cert
        .critical_options()
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k} {v}")
            }
        })
        .collect();
    let extensions = cert.extensions().keys().cloned().collect();
    format!(
        "{name}:\n        Type: {} {} certificate\n        Public key: {}-CERT {}\n        Signing CA: {} {} (using {})\n        Key ID: \"{}\"\n        Serial: {}\n        Valid: from {} to {} (UTC)\n        Principals:{}\n        Critical Options:{}\n        Extensions:{}",
        cert.algorithm().to_certificate_type(),
        if cert.cert_type().is_user() { "user" } else { "host" },
        key_kind(cert.public_key().algorithm()),
        cert.public_key().fingerprint(HashAlg::Sha256),
        key_kind(cert.signature_key().algorithm()),
        cert.signature_key().fingerprint(HashAlg::Sha256),
        cert.signature().algorithm(),
        cert.key_id(),
        cert.serial(),
        fmt_time(cert.valid_after()),
        fmt_time(cert.valid_before()),
        list(cert.valid_principals().to_vec()),
        list(critical),
        list(extensions),
    )
}

fn key_kind(alg: ssh_key::Algorithm) -> &'static str {
    match alg {
        ssh_key::Algorithm::Ecdsa { .. } => "ECDSA",
        ssh_key::Algorithm::Ed25519 => "ED25519",
        ssh_key::Algorithm::Rsa { .. } => "RSA",
        ssh_key::Algorithm::SkEcdsaSha2NistP256 => "ECDSA-SK",
        ssh_key::Algorithm::SkEd25519 => "ED25519-SK",
        _ => "OTHER",
    }
}

pub fn run(_g: &Globals, args: &InspectArgs) -> Result<()> {
    let text = read_input(&args.cert, "certificate")?;
    let cert = Certificate::from_openssh(text.trim()).map_err(|e| {
        Error::ssh(
            format!("{} is not an OpenSSH certificate", args.cert.display()),
            e,
        )
    })?;
    println!("{}", describe(&cert, &args.cert.display().to_string()));

    let mut problems = Vec::new();
    match cert.verify_signature() {
        Ok(()) => println!("Signature: valid (made by the Signing CA above)"),
        Err(_) => {
            problems.push("the signature does NOT verify: the certificate was altered or forged")
        }
    }
    if let Some(path) = &args.ca_pubkey {
        let ca_text = read_input(path, "CA public key")?;
        let ca_keys = ca_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                PublicKey::from_openssh(l).map_err(|e| {
                    Error::ssh(format!("{} holds an unreadable key", path.display()), e)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if ca_keys.iter().any(|k| k.key_data() == cert.signature_key()) {
            println!("CA: signed by a key in {}", path.display());
        } else {
            problems.push("it was signed by a different CA than the one given with --ca-pubkey");
        }
    }
    let now = Utc::now();
    let after = DateTime::<Utc>::from(cert.valid_after_time());
    let before = DateTime::<Utc>::from(cert.valid_before_time());
    if now >= before {
        println!("Validity: EXPIRED at {}", both_times(before));
        problems.push("it has expired");
    } else if now < after {
        println!("Validity: not yet valid; starts {}", both_times(after));
    } else {
        println!("Validity: valid now, until {}", both_times(before));
    }
    match problems.as_slice() {
        [] => Ok(()),
        _ => Err(Error::invalid(format!(
            "the certificate is not good: {}",
            problems.join("; ")
        ))
        .with_hint("mint a new certificate for the requester")),
    }
}
