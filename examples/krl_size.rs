//! Benchmark helper (not part of the product binary): encode a KRL with breakglass-ca's KRL
//! module from an `ssh-keygen -k` spec file, and print its size in bytes.
//!
//!   cargo run --release --example krl_size -- CA.pub SPEC [OUT.krl]
//!
//! SPEC holds the lines `serial: N`, `serial: N-M`, `id: KEYID` (under the CA of CA.pub) and
//! `key: <public key line>`, as `ssh-keygen -k -s CA.pub -z 1 SPEC` reads them; `#` comments
//! and blank lines are skipped. The KRL has version 1, generated date 0 and no comment.
//! `scripts/bench.sh` prints its size beside ssh-keygen's for the same spec.

use std::process::ExitCode;

use breakglass_ca::krl::{CertificateSection, Krl};
use breakglass_ca::{key, Error, Result};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ca, spec, out) = match args.as_slice() {
        [ca, spec] => (ca, spec, None),
        [ca, spec, out] => (ca, spec, Some(out)),
        _ => {
            eprintln!("usage: krl_size CA.pub SPEC [OUT.krl]");
            return ExitCode::from(2);
        }
    };
    match run(ca, spec, out) {
        Ok(size) => {
            println!("{size}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("krl_size: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(ca: &str, spec: &str, out: Option<&String>) -> Result<usize> {
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| Error::io(p.to_string(), e));
    let ca = key::parse_line(read(ca)?.trim())
        .map_err(|e| Error::ssh("CA.pub", e))?
        .key_data()
        .clone();
    let mut section = CertificateSection {
        ca: Some(ca),
        ..CertificateSection::default()
    };
    let mut krl = Krl {
        version: 1,
        ..Krl::default()
    };
    for line in read(spec)?.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let bad = || Error::usage(format!("bad spec line: {line}"));
        let (kind, value) = line.split_once(':').ok_or_else(bad)?;
        let value = value.trim();
        match kind {
            "serial" => {
                let (lo, hi) = value.split_once('-').unwrap_or((value, value));
                let lo = lo.parse().map_err(|_| bad())?;
                let hi = hi.parse().map_err(|_| bad())?;
                section.serials.push((lo, hi));
            }
            "id" => section.key_ids.push(value.to_string()),
            "key" => krl.explicit_keys.push(
                key::parse_line(value)
                    .map_err(|e| Error::ssh("key line", e))?
                    .key_data()
                    .clone(),
            ),
            _ => return Err(bad()),
        }
    }
    krl.certificates.push(section);
    let bytes = krl.encode()?;
    if let Some(out) = out {
        std::fs::write(out, &bytes).map_err(|e| Error::io(out.clone(), e))?;
    }
    Ok(bytes.len())
}
