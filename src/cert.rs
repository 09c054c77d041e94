//! Building, signing and self-verifying user certificates. The token signs through
//! [`crate::backend::CaKey`]; every certificate is checked against the CA public key read from
//! the token before anyone may write it out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ssh_key::certificate::{Builder, CertType};
use ssh_key::public::KeyData;
use ssh_key::{Certificate, HashAlg, PublicKey};

use std::net::IpAddr;

use crate::backend::{self, CaKey};
use crate::error::{Error, Result};
use crate::key;
use crate::policy::Window;
use crate::text;

/// Critical options and extensions, as `-O` builds them (same names as `ssh-keygen -O`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertOptions {
    pub critical: BTreeMap<String, String>,
    pub extensions: BTreeMap<String, String>,
}

/// The standard extensions `-O` sets by name (as ssh-keygen does).
pub const EXTENSIONS: &[&str] = &[
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];

/// The extension `-O no-touch-required` sets: sshd then accepts a security-key signature made
/// without a touch. Only meaningful for sk-* keys.
pub const NO_TOUCH_REQUIRED: &str = "no-touch-required";

/// The critical options OpenSSH's sshd knows; it refuses a certificate with any other.
pub const KNOWN_CRITICAL: &[&str] = &["force-command", "source-address", "verify-required"];

/// Longest name of an `extension:` / `critical:` option.
pub const MAX_OPTION_NAME: usize = 255;
/// Longest value of an option (force-command, source-address, custom values).
pub const MAX_OPTION_VALUE: usize = 4096;

const ACCEPTED: &str = "accepted: clear, force-command=CMD, source-address=ADDR[/BITS][,ADDR[/BITS]], verify-required, permit-pty, permit-port-forwarding, permit-agent-forwarding, permit-X11-forwarding, permit-user-rc, no-pty, no-port-forwarding, no-agent-forwarding, no-x11-forwarding, no-user-rc, no-touch-required (security keys), extension:NAME[=VALUE], critical:NAME[=VALUE]";

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
    Error::usage(format!("-O {}: {why}", text::escape(opt))).with_hint(ACCEPTED)
}

/// Whether `name` is one of the options this tool sets by its own name (which `extension:`
/// and `critical:` must not shadow).
fn is_known_name(name: &str) -> bool {
    KNOWN_CRITICAL
        .iter()
        .chain(EXTENSIONS)
        .chain(&[NO_TOUCH_REQUIRED, crate::ledger::binding::EXTENSION])
        .any(|k| k.eq_ignore_ascii_case(name))
}

/// The `source-address` list as OpenSSH's `addr_match_cidr_list` takes it, and stricter where
/// sshd would read an entry differently than it looks: comma-separated, no spaces, no empty
/// entries, each `ADDR` or `ADDR/BITS` with no host bits set beyond the prefix; IPv4 in
/// dotted-quad form only (`10.1` and `010.0.0.1` mean other addresses to sshd).
pub fn check_source_address(opt: &str, list: &str) -> Result<()> {
    if list.is_empty() {
        return Err(option_error(
            opt,
            "needs a value, e.g. source-address=192.0.2.10/32",
        ));
    }
    for entry in list.split(',') {
        let bad = |why: &str| option_error(opt, &format!("'{}' {why}", text::escape(entry)));
        if entry.is_empty() {
            return Err(option_error(
                opt,
                "has an empty entry (a comma at the start, the end, or twice); sshd refuses the certificate",
            ));
        }
        if entry.len() > 49 {
            return Err(bad("is too long for an address"));
        }
        if !entry
            .chars()
            .all(|c| c.is_ascii_hexdigit() || ".:/".contains(c))
        {
            return Err(bad(
                "is not an IP address or CIDR (no spaces, names, wildcards or ! here)",
            ));
        }
        let (addr, prefix) = match entry.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (entry, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| bad("is not an IP address or CIDR"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let Some(prefix) = prefix else {
            continue;
        };
        let bits = match prefix.parse::<u32>() {
            Ok(p) if p <= max && !prefix.is_empty() => p,
            _ => return Err(bad("has a bad prefix length")),
        };
        let host_bits_set = match ip {
            IpAddr::V4(v4) => u32::from(v4).checked_shl(bits).unwrap_or(0) != 0,
            IpAddr::V6(v6) => u128::from(v6).checked_shl(bits).unwrap_or(0) != 0,
        };
        if host_bits_set {
            return Err(bad(&format!(
                "has host bits set beyond /{bits}; sshd refuses it (write the network address, e.g. 10.0.0.0/8)"
            )));
        }
    }
    Ok(())
}

/// A value typed after `=`: shown on the screen and written into the certificate, so no
/// control or invisible characters (a newline in force-command would be a second command line
/// to anyone reading it).
fn check_value(opt: &str, value: &str) -> Result<()> {
    if value.len() > MAX_OPTION_VALUE {
        return Err(option_error(opt, "the value is longer than 4096 bytes"));
    }
    if !text::is_safe(value) {
        return Err(option_error(
            opt,
            "the value contains a control or invisible character (newline, tab, escape…)",
        ));
    }
    Ok(())
}

fn check_custom_name(opt: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(option_error(
            opt,
            "needs a name, e.g. extension:login@example.com",
        ));
    }
    if name.len() > MAX_OPTION_NAME || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(option_error(
            opt,
            "the name must be printable ASCII without spaces, at most 255 bytes",
        ));
    }
    if name.eq_ignore_ascii_case(crate::ledger::binding::EXTENSION) {
        return Err(option_error(
            opt,
            "this extension is the ledger binding, which mint puts into every certificate itself",
        ));
    }
    if is_known_name(name) {
        return Err(option_error(
            opt,
            &format!(
                "{} is an option this tool sets by name: use -O {} instead",
                name,
                name.to_ascii_lowercase()
            ),
        ));
    }
    Ok(())
}

impl CertOptions {
    /// Apply `-O` options in order, as ssh-keygen does: `clear` drops every standard extension
    /// (custom `extension:` ones stay, as in ssh-keygen). A critical option given twice, or an
    /// `extension:` name given twice, is refused: the last one would silently win.
    pub fn parse(options: &[String]) -> Result<Self> {
        let mut out = CertOptions::default();
        for opt in options {
            let (name, value) = match opt.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (opt.as_str(), None),
            };
            let lower = name.to_ascii_lowercase();
            let set_critical = |out: &mut CertOptions, key: &str, value: &str| {
                if out.critical.contains_key(key) {
                    return Err(option_error(
                        opt,
                        &format!("critical option {} is given twice", text::escape(key)),
                    )
                    .with_hint(format!(
                        "give each critical option once; for several source addresses use one list: -O source-address=10.0.0.1,192.0.2.0/24 (it was: {})",
                        text::escape(&out.critical[key])
                    )));
                }
                out.critical.insert(key.to_string(), value.to_string());
                Ok(())
            };
            if let Some((kind, custom)) = lower
                .strip_prefix("extension:")
                .map(|_| ("extension", &name[10..]))
                .or_else(|| {
                    lower
                        .strip_prefix("critical:")
                        .map(|_| ("critical", &name[9..]))
                })
            {
                check_custom_name(opt, custom)?;
                let value = value.unwrap_or_default();
                check_value(opt, value)?;
                if kind == "critical" {
                    set_critical(&mut out, custom, value)?;
                } else if out.extensions.contains_key(custom) {
                    return Err(option_error(
                        opt,
                        &format!("extension {} is given twice", text::escape(custom)),
                    ));
                } else {
                    out.extensions.insert(custom.to_string(), value.to_string());
                }
                continue;
            }
            match (lower.as_str(), value) {
                ("clear", None) => out
                    .extensions
                    .retain(|k, _| !EXTENSIONS.contains(&k.as_str()) && k != NO_TOUCH_REQUIRED),
                ("force-command", Some(cmd)) if !cmd.trim().is_empty() => {
                    check_value(opt, cmd)?;
                    set_critical(&mut out, "force-command", cmd)?;
                }
                ("source-address", Some(list)) => {
                    check_source_address(opt, list)?;
                    set_critical(&mut out, "source-address", list)?;
                }
                ("verify-required", None) => set_critical(&mut out, "verify-required", "")?,
                (NO_TOUCH_REQUIRED, None) => {
                    out.extensions
                        .insert(NO_TOUCH_REQUIRED.to_string(), String::new());
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

    /// Refuse options that mean nothing for this requester key: `no-touch-required` and
    /// `verify-required` act only on security-key (sk-*) signatures; for any other key sshd
    /// ignores them, so the custodian would believe in a protection that is not there.
    pub fn check_for_key(&self, subject: &PublicKey) -> Result<()> {
        if key::is_security_key(subject) {
            return Ok(());
        }
        for (name, present) in [
            (
                NO_TOUCH_REQUIRED,
                self.extensions.contains_key(NO_TOUCH_REQUIRED),
            ),
            (
                "verify-required",
                self.critical.contains_key("verify-required"),
            ),
        ] {
            if present {
                return Err(Error::refused(format!(
                    "-O {name} applies only to security keys (sk-ssh-ed25519, sk-ecdsa-sha2-nistp256); the requester's key is {}",
                    subject.algorithm().as_str()
                ))
                .with_hint(format!("leave out -O {name}")));
            }
        }
        Ok(())
    }

    /// Critical options not known to OpenSSH (from `critical:NAME`): sshd refuses a
    /// certificate that carries one.
    pub fn unknown_critical(&self) -> Vec<&str> {
        self.critical
            .keys()
            .map(String::as_str)
            .filter(|k| !KNOWN_CRITICAL.contains(k))
            .collect()
    }
}

/// `name=value, name` for the pre-PIN screen and the summary, escaped; `none` when empty.
pub fn show_options(options: &BTreeMap<String, String>) -> String {
    let shown: Vec<String> = options
        .iter()
        .map(|(k, v)| match v.is_empty() {
            true => text::escape(k).into_owned(),
            // Quoted, so that a value holding ", name" cannot pass for more options.
            false => format!(
                "{}=\"{}\"",
                text::escape(k),
                text::escape(v).replace('"', "\\\"")
            ),
        })
        .collect();
    if shown.is_empty() {
        "none".to_string()
    } else {
        shown.join(", ")
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
    /// The ledger binding (the hash of the record's metadata), put into the certificate as
    /// the extension [`crate::ledger::binding::EXTENSION`].
    pub binding: Option<String>,
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
    if let Some(binding) = &spec.binding {
        builder
            .extension(crate::ledger::binding::EXTENSION, binding.clone())
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
        || cert.extensions().get(crate::ledger::binding::EXTENSION) != spec.binding.as_ref()
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
            (
                "extension:ledger-binding-v1@breakglass-ca=00",
                "the ledger binding",
            ),
            (
                "critical:Ledger-Binding-V1@breakglass-ca",
                "the ledger binding",
            ),
            ("frobnicate", "unknown option"),
            ("force-command", "needs a value"),
            ("force-command=", "needs a value"),
            ("source-address=10.0.0.0/33", "prefix"),
            ("source-address=example.com", "not an IP"),
            ("no-frobs", "unknown option"),
            ("clear=1", "unknown option"),
            ("force-command=/bin/true\nrm -rf /", "control or invisible"),
            ("force-command=/bin/true\r", "control or invisible"),
            ("force-command=a\u{202e}b", "control or invisible"),
            ("source-address=", "needs a value"),
            ("source-address=10.0.0.1,", "empty entry"),
            ("source-address=,10.0.0.1", "empty entry"),
            ("source-address=10.0.0.1,,10.0.0.2", "empty entry"),
            ("source-address= 10.0.0.1", "not an IP address"),
            ("source-address=10.0.0.1, 10.0.0.2", "not an IP address"),
            ("source-address=10.0.0.1/8", "host bits set"),
            ("source-address=2001:db8::1/32", "host bits set"),
            ("source-address=1.2.3.4/0", "host bits set"),
            ("source-address=10.0.0.0/", "bad prefix"),
            ("source-address=10.0.0.0/+8", "not an IP address"),
            ("source-address=10.0.0.0/-1", "not an IP address"),
            ("source-address=!10.0.0.1", "not an IP address"),
            ("source-address=*", "not an IP address"),
            ("source-address=10.0.0.*", "not an IP address"),
            ("source-address=fe80::1%eth0", "not an IP address"),
            ("source-address=10.0.0.256", "not an IP address"),
            ("source-address=0x0a.0.0.1", "not an IP address"),
            ("source-address=10.1", "not an IP address"),
            ("source-address=010.0.0.1", "not an IP address"),
            ("source-address=::/129", "bad prefix"),
            ("extension:", "needs a name"),
            ("critical:", "needs a name"),
            ("extension:a b", "printable ASCII"),
            ("extension:r\u{e9}sum\u{e9}", "printable ASCII"),
            ("extension:x=a\nb", "control or invisible"),
            ("critical:force-command=/bin/sh", "use -O force-command"),
            ("critical:Source-Address=0.0.0.0/0", "use -O source-address"),
            ("critical:verify-required", "use -O verify-required"),
            ("extension:permit-pty", "use -O permit-pty"),
            ("extension:no-touch-required", "use -O no-touch-required"),
            (
                "critical:permit-X11-forwarding",
                "use -O permit-x11-forwarding",
            ),
        ] {
            let err = parse(&[opt]).unwrap_err();
            assert!(err.to_string().contains(why), "{opt}: {err}");
            assert_eq!(err.exit_code(), 2);
        }
    }

    /// What ssh-keygen -O source-address accepts (OpenSSH 9.2), we accept too.
    #[test]
    fn source_addresses_ssh_keygen_accepts() {
        for list in [
            "10.0.0.1",
            "10.0.0.0/8",
            "10.0.0.1,10.0.0.1",
            "0.0.0.0/0",
            "::/0",
            "2001:db8::/32",
            "2001:DB8::/32",
            "10.0.0.0/08",
            "10.0.0.0/008",
            "::ffff:10.0.0.1",
            "1.2.3.4/32",
            "192.0.2.0/24,2001:db8::/48",
        ] {
            let o = parse(&[&format!("source-address={list}")]).unwrap();
            assert_eq!(o.critical["source-address"], list);
        }
    }

    #[test]
    fn repeated_critical_options_refused() {
        for opts in [
            &["source-address=10.0.0.1", "source-address=0.0.0.0/0"][..],
            &["force-command=/bin/true", "force-command=/bin/sh"],
            &["verify-required", "verify-required"],
            &["critical:x@example.com=1", "critical:x@example.com=2"],
            &["extension:x@example.com", "extension:x@example.com=2"],
        ] {
            let err = parse(opts).unwrap_err();
            assert!(err.to_string().contains("given twice"), "{opts:?}: {err}");
            assert_eq!(err.exit_code(), 2);
        }
        let err = parse(&["source-address=10.0.0.1", "source-address=0.0.0.0/0"]).unwrap_err();
        assert!(err.hint().unwrap().contains("one list"), "{:?}", err.hint());
        // Repeating an extension flag is harmless.
        parse(&["permit-pty", "permit-pty"]).unwrap();
    }

    #[test]
    fn custom_options_and_no_touch_required() {
        let o = parse(&[
            "clear",
            "no-touch-required",
            "extension:login@github.com=alice",
            "critical:x-audit@example.com",
            "Extension:permit-thing@example.com",
        ])
        .unwrap();
        assert_eq!(
            o.extensions.keys().collect::<Vec<_>>(),
            [
                "login@github.com",
                "no-touch-required",
                "permit-thing@example.com"
            ]
        );
        assert_eq!(o.extensions["login@github.com"], "alice");
        assert_eq!(o.critical["x-audit@example.com"], "");
        assert_eq!(o.unknown_critical(), ["x-audit@example.com"]);
        // clear drops the standard extensions, keeps custom ones (as ssh-keygen does).
        let o = parse(&["extension:a@b", "no-touch-required", "permit-pty", "clear"]).unwrap();
        assert_eq!(o.extensions.keys().collect::<Vec<_>>(), ["a@b"]);
        assert_eq!(show_options(&o.extensions), "a@b");
        let o = parse(&["force-command=/usr/bin/uptime -p", "extension:k=v w"]).unwrap();
        assert_eq!(
            show_options(&o.critical),
            "force-command=\"/usr/bin/uptime -p\""
        );
        // A value that reads like more options is shown as one.
        let tricky = parse(&["extension:x@y=1, permit-port-forwarding"]).unwrap();
        assert_eq!(
            show_options(&tricky.extensions),
            "permit-pty, x@y=\"1, permit-port-forwarding\""
        );
        assert_eq!(show_options(&o.extensions), "k=\"v w\", permit-pty");
        assert_eq!(show_options(&BTreeMap::new()), "none");
    }

    #[test]
    fn security_key_only_options() {
        let ed = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO a",
        )
        .unwrap();
        let KeyData::Ed25519(pk) = ed.key_data() else {
            panic!()
        };
        let sk = PublicKey::from(KeyData::SkEd25519(ssh_key::public::SkEd25519::new(
            *pk, "ssh:",
        )));
        for opt in ["no-touch-required", "verify-required"] {
            let o = parse(&[opt]).unwrap();
            let err = o.check_for_key(&ed).unwrap_err();
            assert!(err.to_string().contains("only to security keys"), "{err}");
            assert!(err.hint().unwrap().contains(opt));
            o.check_for_key(&sk).unwrap();
        }
        parse(&[]).unwrap().check_for_key(&ed).unwrap();
    }
}
