//! sshd's certificate messages, parsed exactly: the text after the syslog or journal prefix
//! (or a whole line of `sshd -E FILE`), as OpenSSH 9.2 to 10.x write it (`auth.c`,
//! `auth2-pubkey.c`, `sshkey.c`).
//!
//! sshd escapes every message with `strnvis` before it logs it (backslash doubled, bytes
//! outside printable ASCII as `\ooo` octal, and in syslog also newline and tab as `\n`, `\t`),
//! so each field is read from the escaped text and then decoded ([`unvis`]); the key ID and
//! the user name can still hold spaces and any text, so the fixed parts around them anchor
//! the parse: the INFO line from the right on `(serial N) CA TYPE FP`, the VERBOSE line on the
//! last `" (serial N) signed by TYPE CA FP via FILE`. A key ID containing such text cannot move
//! the serial or the CA that sshd wrote after it.

/// Where the message ends up in a login: the outcome sshd's `auth_log` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `Accepted publickey`: a completed login.
    Accepted,
    /// `Failed publickey`: the certificate was refused (VERBOSE, or INFO after several tries).
    Failed,
    /// `Partial publickey`: accepted, but another method is still required.
    Partial,
}

/// A certificate as sshd names it: its key ID, serial and signing CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cert {
    pub key_id: String,
    pub serial: u64,
    /// `ECDSA`, `ED25519`, `RSA`…
    pub ca_type: String,
    /// `SHA256:…` (or `MD5:…` on a host with `FingerprintHash md5`).
    pub ca_fingerprint: String,
}

/// One sshd message about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `Accepted|Failed|Partial publickey for [invalid user ]USER from ADDR port P ssh2:
    /// TYPE-CERT FP ID KEYID (serial N) CA TYPE FP[, INFO]`.
    Publickey {
        outcome: Outcome,
        user: String,
        invalid_user: bool,
        from: String,
        port: u16,
        /// `ED25519-CERT`…
        key_type: String,
        /// The certificate's public key (the requester's key): `SHA256:…`.
        key_fingerprint: String,
        cert: Cert,
    },
    /// VERBOSE `Accepted certificate ID "KEYID" (serial N) signed by TYPE CA FP via FILE`: the
    /// certificate passed every check (also when a client only offers it).
    CertAccepted { cert: Cert, via: String },
    /// OpenSSH 10.1 and later: `Refusing certificate ID "KEYID" serial=N signed by TYPE CA
    /// FP: REASON`.
    CertRefused { cert: Cert, reason: String },
    /// OpenSSH before 10.1: the refusal reason alone (`Certificate invalid: expired`,
    /// `Certificate does not contain an authorized principal`…), logged just before the
    /// `Failed publickey` line of the same process.
    Reason(String),
    /// `Authentication key TYPE-CERT FP revoked by file PATH` (no serial: the key is the
    /// certificate's), or sshd's error reading that file.
    Revoked {
        key_type: String,
        key_fingerprint: String,
        file: String,
        /// `Error checking authentication key … in revoked keys file …`: the KRL could not be
        /// read, so sshd refused every key.
        unreadable: bool,
    },
}

/// What a message is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Message(Message),
    /// Not about a certificate.
    Irrelevant,
    /// Looks like one of the certificate messages (it starts like one) but is not one exactly:
    /// cut short (sshd's syslog limit is 500 characters), damaged or forged. `login` is true
    /// for an `Accepted publickey … -CERT` line: a login whose certificate cannot be named.
    Unparseable {
        login: bool,
    },
}

/// The refusal reasons sshd logs alone (OpenSSH before 10.1), from `sshkey.c`'s
/// `sshkey_cert_check_authority` and `auth2-pubkey.c`'s `user_cert_trusted_ca`.
const REASONS: &[&str] = &[
    "Certificate does not contain an authorized principal",
    "Certificate lacks principal list",
    "Certificate contains unsupported critical options",
    "Certificate signed with disallowed algorithm",
    "Invalid certificate options",
    "Refused by certificate options",
    "Refused by certificate principals options",
];

/// sshd's other messages about a certificate's contents (`auth-options.c`, `sshd.c`): an
/// extension it does not know (every breakglass-ca certificate carries
/// `ledger-binding-v1@breakglass-ca`, so sshd logs this at each check), or the detail of a
/// refusal whose reason follows on its own line. No verdict in them.
const DETAILS: &[&str] = &[
    "Certificate extension \"",
    "Certificate critical option \"",
    "Certificate option \"",
    "Certificate has multiple ",
    "Certificate source-address ",
    "Certificate file is not a certificate",
];

/// The prefixes of syslog levels sshd writes before a message in syslog (`error: `…); on
/// stderr (`-E`) there are none.
const LEVELS: &[&[u8]] = &[
    b"error: ",
    b"fatal: ",
    b"debug1: ",
    b"debug2: ",
    b"debug3: ",
];

/// Parse one sshd message (the bytes after the `sshd[PID]: ` prefix, or a line of `sshd -E`).
pub fn parse(msg: &[u8]) -> Parsed {
    let mut msg = msg;
    while let Some(rest) = msg.strip_suffix(b"\r") {
        msg = rest;
    }
    let cut = maybe_cut(msg);
    for level in LEVELS {
        if let Some(rest) = msg.strip_prefix(*level) {
            msg = rest;
            break;
        }
    }
    // Messages relayed from the pre-authentication child.
    if let Some(rest) = msg.strip_suffix(b" [preauth]") {
        msg = rest;
    }
    for (prefix, outcome) in [
        (&b"Accepted publickey for "[..], Outcome::Accepted),
        (b"Failed publickey for ", Outcome::Failed),
        (b"Partial publickey for ", Outcome::Partial),
    ] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if !contains(rest, b"-CERT ") {
                return Parsed::Irrelevant;
            }
            return match publickey(outcome, rest).filter(|_| !cut) {
                Some(m) => Parsed::Message(m),
                None => Parsed::Unparseable {
                    login: outcome == Outcome::Accepted,
                },
            };
        }
    }
    if let Some(rest) = msg.strip_prefix(b"Accepted certificate ID \"") {
        return match cert_accepted(rest).filter(|_| !cut) {
            Some(m) => Parsed::Message(m),
            // Host-based authentication with a host certificate: not a user certificate.
            None if !contains(rest, b"\" (serial ") && contains(rest, b"\" signed by ") => {
                Parsed::Irrelevant
            }
            None => Parsed::Unparseable { login: false },
        };
    }
    if let Some(rest) = msg.strip_prefix(b"Refusing certificate ID \"") {
        return found(cert_refused(rest).filter(|_| !cut));
    }
    if let Some(rest) = msg.strip_prefix(b"Authentication key ") {
        return match revoked(rest, b" revoked by file ", false) {
            Some(m) => Parsed::Message(m),
            None if contains(rest, b"-CERT ") => Parsed::Unparseable { login: false },
            None => Parsed::Irrelevant,
        };
    }
    if let Some(rest) = msg.strip_prefix(b"Error checking authentication key ") {
        return match revoked(rest, b" in revoked keys file ", true) {
            Some(m) => Parsed::Message(m),
            None if contains(rest, b"-CERT ") => Parsed::Unparseable { login: false },
            None => Parsed::Irrelevant,
        };
    }
    if msg.starts_with(b"Certificate invalid: ") || REASONS.iter().any(|r| msg == r.as_bytes()) {
        return Parsed::Message(Message::Reason(text(msg)));
    }
    if DETAILS.iter().any(|d| msg.starts_with(d.as_bytes())) {
        return Parsed::Irrelevant;
    }
    if msg.starts_with(b"Certificate ") {
        return Parsed::Unparseable { login: false };
    }
    Parsed::Irrelevant
}

/// sshd cuts what it logs: at 500 bytes in syslog (`syslog(pri, "%.500s", …)`, and so in
/// the journal), at 1021 on stderr (`-E`). A certificate line that long may have lost its
/// real tail, and then its last `(serial N) CA …` is text of the key ID: a rogue
/// certificate's key ID could name a ledger serial so. Such a line names no certificate.
pub const SSHD_CUT: usize = 500;

fn maybe_cut(msg: &[u8]) -> bool {
    msg.len() >= SSHD_CUT
}

fn found(m: Option<Message>) -> Parsed {
    match m {
        Some(m) => Parsed::Message(m),
        None => Parsed::Unparseable { login: false },
    }
}

/// After `… publickey for `: `[invalid user ]USER from ADDR port P ssh2: TYPE FP ID KEYID
/// (serial N) CA TYPE FP[, INFO]`. The user is what comes before the first ` from ` that is
/// followed by the fixed middle; the key ID is between that middle and the tail found from
/// the right.
fn publickey(outcome: Outcome, rest: &[u8]) -> Option<Message> {
    let (rest, invalid_user) = match rest.strip_prefix(b"invalid user ") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let (head, cert_tail) = info_tail(rest)?;
    // head: USER from ADDR port P ssh2: TYPE-CERT FP ID KEYID
    let mut search = 0;
    while let Some(at) = find(&head[search..], b" from ").map(|i| i + search) {
        if let Some((from, port, key_type, key_fingerprint, key_id)) = middle(&head[at + 6..]) {
            let user = &head[..at];
            if user.is_empty() {
                return None;
            }
            return Some(Message::Publickey {
                outcome,
                user: text(user),
                invalid_user,
                from,
                port,
                key_type,
                key_fingerprint,
                cert: Cert {
                    key_id: text(key_id),
                    ..cert_tail
                },
            });
        }
        search = at + 1;
    }
    None
}

/// `ADDR port P ssh2: TYPE-CERT FP ID KEYID` -> its parts.
fn middle(s: &[u8]) -> Option<(String, u16, String, String, &[u8])> {
    let (addr, s) = word(s)?;
    let s = s.strip_prefix(b"port ")?;
    let (port, s) = word(s)?;
    let port = number(port)?.try_into().ok()?;
    let s = s.strip_prefix(b"ssh2: ")?;
    let (key_type, s) = word(s)?;
    if !key_type.ends_with(b"-CERT") || !is_type(key_type) {
        return None;
    }
    let (fp, s) = word(s)?;
    if !is_fingerprint(fp) {
        return None;
    }
    let key_id = s.strip_prefix(b"ID ")?;
    Some((text(addr), port, text(key_type), text(fp), key_id))
}

/// The INFO line's tail, found from the right: the last ` (serial N) CA TYPE FP[, INFO]`
/// that runs to the end. Returns what comes before it and the certificate (key ID empty).
fn info_tail(s: &[u8]) -> Option<(&[u8], Cert)> {
    let mut end = s.len();
    while let Some(at) = rfind(&s[..end], b" (serial ") {
        if let Some(cert) = info_tail_at(&s[at + 9..]) {
            return Some((&s[..at], cert));
        }
        end = at;
    }
    None
}

/// `N) CA TYPE FP` to the end, or followed by `, INFO` (a security key's signature count).
fn info_tail_at(s: &[u8]) -> Option<Cert> {
    let close = s.iter().position(|b| *b == b')')?;
    let serial = number(&s[..close])?;
    let s = s[close..].strip_prefix(b") CA ")?;
    let (ca_type, s) = word(s)?;
    if !is_type(ca_type) {
        return None;
    }
    let fp_end = s.iter().position(|b| *b == b',').unwrap_or(s.len());
    let (fp, info) = s.split_at(fp_end);
    if !is_fingerprint(fp) || !(info.is_empty() || info.starts_with(b", ")) {
        return None;
    }
    Some(Cert {
        key_id: String::new(),
        serial,
        ca_type: text(ca_type),
        ca_fingerprint: text(fp),
    })
}

/// After `Accepted certificate ID "`: `KEYID" (serial N) signed by TYPE CA FP via FILE`, the
/// last such anchor (FILE is the host's own setting, the key ID anything).
fn cert_accepted(s: &[u8]) -> Option<Message> {
    let (key_id, (cert, via)) = quoted_key_id(s, b"\" (serial ", accepted_tail)?;
    Some(Message::CertAccepted {
        cert: Cert { key_id, ..cert },
        via,
    })
}

/// A quoted key ID (anything, `"` included) before the last `anchor` whose rest `tail`
/// accepts: the key ID's text and what `tail` made of the rest.
fn quoted_key_id<T>(
    s: &[u8],
    anchor: &[u8],
    tail: impl Fn(&[u8]) -> Option<T>,
) -> Option<(String, T)> {
    let mut end = s.len();
    while let Some(at) = rfind(&s[..end], anchor) {
        if let Some(rest) = tail(&s[at + anchor.len()..]) {
            return Some((text(&s[..at]), rest));
        }
        end = at;
    }
    None
}

/// `N) signed by TYPE CA FP via FILE` (TrustedUserCAKeys), or `N) signed by CA TYPE FP
/// found at FILE:LINE` (a `cert-authority` line of authorized_keys).
fn accepted_tail(s: &[u8]) -> Option<(Cert, String)> {
    let close = s.iter().position(|b| *b == b')')?;
    let serial = number(&s[..close])?;
    let s = s[close..].strip_prefix(b") signed by ")?;
    let (ca_type, fp, via) = match s.strip_prefix(b"CA ") {
        Some(s) => {
            let (ca_type, s) = word(s)?;
            let (fp, s) = word(s)?;
            (ca_type, fp, s.strip_prefix(b"found at ")?)
        }
        None => {
            let (ca_type, s) = word(s)?;
            let s = s.strip_prefix(b"CA ")?;
            let (fp, s) = word(s)?;
            (ca_type, fp, s.strip_prefix(b"via ")?)
        }
    };
    if !is_type(ca_type) || !is_fingerprint(fp) || via.is_empty() {
        return None;
    }
    Some((
        Cert {
            key_id: String::new(),
            serial,
            ca_type: text(ca_type),
            ca_fingerprint: text(fp),
        },
        text(via),
    ))
}

/// After `Refusing certificate ID "`: `KEYID" serial=N signed by TYPE CA FP: REASON`.
fn cert_refused(s: &[u8]) -> Option<Message> {
    let (key_id, (cert, reason)) = quoted_key_id(s, b"\" serial=", refused_tail)?;
    Some(Message::CertRefused {
        cert: Cert { key_id, ..cert },
        reason,
    })
}

/// `N signed by TYPE CA FP: REASON`, or (an authorized_keys `cert-authority`, 10.1 and
/// later) `N signed by TYPE CA FP via FILE:LINE: REASON`.
fn refused_tail(s: &[u8]) -> Option<(Cert, String)> {
    let (serial, s) = word(s)?;
    let serial = number(serial)?;
    let s = s.strip_prefix(b"signed by ")?;
    let (ca_type, s) = word(s)?;
    let s = s.strip_prefix(b"CA ")?;
    // FP, then `: REASON` or ` via LOC: REASON` (LOC holds a ':' but no ': ').
    let sp = s.iter().position(|b| *b == b' ')?;
    let (fp, reason) = match s[..sp].strip_suffix(b":") {
        Some(fp) => (fp, &s[sp + 1..]),
        None => {
            let via = s[sp..].strip_prefix(b" via ")?;
            (&s[..sp], &via[find(via, b": ")? + 2..])
        }
    };
    if !is_type(ca_type) || !is_fingerprint(fp) || reason.is_empty() {
        return None;
    }
    Some((
        Cert {
            key_id: String::new(),
            serial,
            ca_type: text(ca_type),
            ca_fingerprint: text(fp),
        },
        text(reason),
    ))
}

/// After `Authentication key ` (or `Error checking authentication key `): `TYPE-CERT FP`
/// then `sep` and the file.
fn revoked(s: &[u8], sep: &[u8], unreadable: bool) -> Option<Message> {
    let (key_type, s) = word(s)?;
    let (fp, s) = word(s)?;
    let s = s.strip_prefix(&sep[1..])?;
    if !key_type.ends_with(b"-CERT") || !is_type(key_type) || !is_fingerprint(fp) {
        return None;
    }
    // The error form ends `: REASON` after the file.
    let file = if unreadable {
        match rfind(s, b": ") {
            Some(at) => &s[..at],
            None => s,
        }
    } else {
        s
    };
    if file.is_empty() {
        return None;
    }
    Some(Message::Revoked {
        key_type: text(key_type),
        key_fingerprint: text(fp),
        file: text(file),
        unreadable,
    })
}

/// The first word of `s` (no space in it, not empty) and what follows its one space.
fn word(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = s.iter().position(|b| *b == b' ')?;
    (at > 0).then(|| (&s[..at], &s[at + 1..]))
}

/// Decimal digits only, as `%llu` writes them.
fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// A key type as `sshkey_type` names it: `ED25519-CERT`, `ECDSA-SK`, `RSA`.
fn is_type(s: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'-')
}

/// `SHA256:` + 43 base64 characters (unpadded, as `ssh-keygen -l` writes it; SHA384 64,
/// SHA512 86), or `MD5:` + 16 hex pairs: exactly, so a fingerprint cut short is none.
fn is_fingerprint(s: &[u8]) -> bool {
    let b64 = |r: &[u8], n: usize| {
        r.len() == n
            && r.iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
    };
    match s {
        [b'S', b'H', b'A', b'2', b'5', b'6', b':', r @ ..] => b64(r, 43),
        [b'S', b'H', b'A', b'3', b'8', b'4', b':', r @ ..] => b64(r, 64),
        [b'S', b'H', b'A', b'5', b'1', b'2', b':', r @ ..] => b64(r, 86),
        [b'M', b'D', b'5', b':', r @ ..] => {
            r.len() == 47
                && r.chunks(3).all(|c| {
                    c[0].is_ascii_hexdigit()
                        && c[1].is_ascii_hexdigit()
                        && c.get(2).is_none_or(|b| *b == b':')
                })
        }
        _ => false,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::rfind(hay, needle)
}

/// A field as text: its `strnvis` escapes decoded ([`unvis`]), then read as UTF-8 (an invalid
/// byte becomes U+FFFD). Shown later through `text::Esc`.
fn text(s: &[u8]) -> String {
    String::from_utf8_lossy(&unvis(s)).into_owned()
}

/// Undo OpenSSH's `strnvis` (VIS_CSTYLE, VIS_OCTAL, VIS_SAFE): `\\`, `\n`, `\t`, `\r`, `\b`,
/// `\a`, `\v`, `\f`, `\s`, `\0` and `\ooo`. A backslash that starts none of these is kept.
pub fn unvis(s: &[u8]) -> Vec<u8> {
    if !s.contains(&b'\\') {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b != b'\\' || i + 1 >= s.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let next = s[i + 1];
        let octal = |j: usize| s.get(j).filter(|c| (b'0'..=b'7').contains(c)).copied();
        let decoded = match next {
            b'\\' => Some((b'\\', 2)),
            b'n' => Some((b'\n', 2)),
            b't' => Some((b'\t', 2)),
            b'r' => Some((b'\r', 2)),
            b'b' => Some((8, 2)),
            b'a' => Some((7, 2)),
            b'v' => Some((11, 2)),
            b'f' => Some((12, 2)),
            b's' => Some((b' ', 2)),
            b'0'..=b'3' => match (octal(i + 2), octal(i + 3)) {
                (Some(x), Some(y)) => {
                    let v =
                        u32::from(next - b'0') * 64 + u32::from(x - b'0') * 8 + u32::from(y - b'0');
                    u8::try_from(v).ok().map(|v| (v, 4))
                }
                _ if next == b'0' => Some((0, 2)),
                _ => None,
            },
            _ => None,
        };
        match decoded {
            Some((v, n)) => {
                out.push(v);
                i += n;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "SHA256:v1NVoyF2+6SW8XSTrHaHpaU4zv7xP1VyTk01VhJMozE";
    const KEY: &str = "SHA256:BCWxkWIub9X6d/9cVqrUcOgVfBg6/sRbUItLgccfjM4";

    fn msg(s: &str) -> Message {
        match parse(s.as_bytes()) {
            Parsed::Message(m) => m,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn cert(key_id: &str, serial: u64) -> Cert {
        Cert {
            key_id: key_id.into(),
            serial,
            ca_type: "ECDSA".into(),
            ca_fingerprint: CA.into(),
        }
    }

    #[test]
    fn the_lines_of_sshd_9_2_parse_exactly() {
        // As captured from sshd 9.2 (LogLevel VERBOSE, -E), CR and all.
        let m = msg(&format!("Accepted publickey for root from 127.0.0.1 port 43100 ssh2: ED25519-CERT {KEY} ID alice@laptop#7:INC-1 x\\\\y (serial 7) CA ECDSA {CA}\r"));
        assert_eq!(
            m,
            Message::Publickey {
                outcome: Outcome::Accepted,
                user: "root".into(),
                invalid_user: false,
                from: "127.0.0.1".into(),
                port: 43100,
                key_type: "ED25519-CERT".into(),
                key_fingerprint: KEY.into(),
                cert: cert("alice@laptop#7:INC-1 x\\y", 7),
            }
        );
        let m = msg(&format!("Accepted certificate ID \"alice@laptop#7:INC-1 x\\\\y\" (serial 7) signed by ECDSA CA {CA} via /tmp/exp/ca.pub"));
        assert_eq!(
            m,
            Message::CertAccepted {
                cert: cert("alice@laptop#7:INC-1 x\\y", 7),
                via: "/tmp/exp/ca.pub".into()
            }
        );
        let m = msg(&format!("Failed publickey for root from ::1 port 43106 ssh2: ED25519-CERT {KEY} ID wrong (serial 8) CA ECDSA {CA}"));
        assert!(
            matches!(m, Message::Publickey { outcome: Outcome::Failed, ref from, .. } if from == "::1")
        );
        assert_eq!(
            msg("error: Certificate does not contain an authorized principal"),
            Message::Reason("Certificate does not contain an authorized principal".into())
        );
        assert_eq!(
            msg("Certificate invalid: expired\r"),
            Message::Reason("Certificate invalid: expired".into())
        );
        assert_eq!(
            msg(&format!(
                "error: Authentication key ED25519-CERT {KEY} revoked by file /etc/ssh/b.krl"
            )),
            Message::Revoked {
                key_type: "ED25519-CERT".into(),
                key_fingerprint: KEY.into(),
                file: "/etc/ssh/b.krl".into(),
                unreadable: false
            }
        );
        assert!(matches!(
            msg(&format!("error: Error checking authentication key ED25519-CERT {KEY} in revoked keys file /etc/ssh/b.krl: No such file or directory")),
            Message::Revoked { unreadable: true, ref file, .. } if file == "/etc/ssh/b.krl"
        ));
        // OpenSSH 10.1 and later.
        assert_eq!(
            msg(&format!("error: Refusing certificate ID \"bob#3:x\" serial=3 signed by ECDSA CA {CA}: Certificate invalid: expired")),
            Message::CertRefused {
                cert: cert("bob#3:x", 3),
                reason: "Certificate invalid: expired".into()
            }
        );
        // An authorized_keys cert-authority line (9.2 and 10.x), refused (10.1 and later).
        assert_eq!(
            msg(&format!("Accepted certificate ID \"a b\" (serial 5) signed by CA ECDSA {CA} found at /root/.ssh/authorized_keys:3")),
            Message::CertAccepted {
                cert: cert("a b", 5),
                via: "/root/.ssh/authorized_keys:3".into()
            }
        );
        assert_eq!(
            msg(&format!("error: Refusing certificate ID \"a\" serial=5 signed by ECDSA CA {CA} via /root/.ssh/authorized_keys:3: Certificate invalid: expired")),
            Message::CertRefused {
                cert: cert("a", 5),
                reason: "Certificate invalid: expired".into()
            }
        );
        // A security key's signature count after the CA.
        assert!(matches!(
            msg(&format!("Accepted publickey for u from 10.0.0.1 port 1 ssh2: ED25519-SK-CERT {KEY} ID a (serial 9) CA ED25519 {CA}, signature count = 4")),
            Message::Publickey { ref cert, .. } if cert.serial == 9 && cert.ca_type == "ED25519"
        ));
        for irrelevant in [
            "Postponed publickey for root from 127.0.0.1 port 43100 ssh2 [preauth]",
            &format!("Failed publickey for root from 127.0.0.1 port 43106 ssh2: ED25519 {KEY}"),
            &format!("Accepted publickey for root from 127.0.0.1 port 1 ssh2: ED25519 {KEY}"),
            "Connection closed by authenticating user root 127.0.0.1 port 43106 [preauth]",
            "Certificate extension \"ledger-binding-v1@breakglass-ca\" is not supported",
            "error: Certificate critical option \"x\" is not supported",
            &format!("Accepted certificate ID \"h\" signed by ECDSA CA {CA} from root@host1"),
            "",
        ] {
            assert_eq!(
                parse(irrelevant.as_bytes()),
                Parsed::Irrelevant,
                "{irrelevant}"
            );
        }
    }

    #[test]
    fn a_key_id_or_user_holding_the_anchors_cannot_move_the_serial_or_ca() {
        let evil = format!("evil (serial 5) CA ECDSA {CA}\\nAccepted x");
        let m = msg(&format!("Accepted publickey for root from 127.0.0.1 port 45700 ssh2: ED25519-CERT {KEY} ID {evil} (serial 0) CA ECDSA {CA}"));
        let Message::Publickey { cert: c, user, .. } = m else {
            panic!()
        };
        assert_eq!(c.serial, 0);
        assert_eq!(
            c.key_id,
            format!("evil (serial 5) CA ECDSA {CA}\nAccepted x")
        );
        assert_eq!(user, "root");
        let m = msg(&format!("Accepted certificate ID \"a\" (serial 5) signed by ECDSA CA {CA} via /x\" (serial 0) signed by RSA CA SHA256:AAAAbbbbCCCCddddEEEEffffGGGGhhhhIIIIjjjjKKK via /etc/ssh/ca.pub"));
        let Message::CertAccepted { cert: c, via } = m else {
            panic!()
        };
        assert_eq!((c.serial, c.ca_type.as_str()), (0, "RSA"));
        assert_eq!(via, "/etc/ssh/ca.pub");
        assert!(c.key_id.contains("(serial 5)"));
        // A user name that holds the whole middle: the serial and CA still come from the tail.
        let m = msg(&format!("Failed publickey for invalid user x from 1.2.3.4 port 1 ssh2: ED25519-CERT {KEY} ID y from 10.0.0.9 port 22 ssh2: ED25519-CERT {KEY} ID real (serial 42) CA ECDSA {CA}"));
        let Message::Publickey {
            cert: c,
            invalid_user,
            ..
        } = m
        else {
            panic!()
        };
        assert!(invalid_user);
        assert_eq!(c.serial, 42);
        assert_eq!(c.ca_fingerprint, CA);
    }

    #[test]
    fn cut_or_damaged_certificate_lines_are_unparseable_not_guessed() {
        let full = format!("Accepted publickey for root from 127.0.0.1 port 1 ssh2: ED25519-CERT {KEY} ID a (serial 7) CA ECDSA {CA}");
        // Every cut of the line that keeps -CERT (sshd cuts syslog messages at 500 bytes).
        let start = full.find("-CERT").unwrap() + 6;
        for cut in start..full.len() - 1 {
            let got = parse(&full.as_bytes()[..cut]);
            assert!(
                matches!(got, Parsed::Unparseable { login: true }),
                "{cut}: {got:?}"
            );
        }
        for bad in [
            format!("Accepted publickey for root from 127.0.0.1 port 1 ssh2: ED25519-CERT {KEY} ID a (serial 99999999999999999999999) CA ECDSA {CA}"),
            format!("Accepted publickey for root from 127.0.0.1 port 70000 ssh2: ED25519-CERT {KEY} ID a (serial 1) CA ECDSA {CA}"),
            format!("Accepted publickey for  from 127.0.0.1 port 1 ssh2: ED25519-CERT {KEY} ID a (serial 1) CA ECDSA {CA}"),
            format!("Accepted publickey for root from 127.0.0.1 port 1 ssh2: ED25519-CERT {KEY} ID a (serial 1) CA ECDSA nope"),
        ] {
            assert!(matches!(parse(bad.as_bytes()), Parsed::Unparseable { .. }), "{bad}");
        }
        for bad in [
            "Accepted certificate ID \"a\" (serial 7) signed by ECDSA CA",
            "Refusing certificate ID \"a\" serial=x signed by",
            "Certificate invalid",
        ] {
            assert_eq!(
                parse(bad.as_bytes()),
                Parsed::Unparseable { login: false },
                "{bad}"
            );
        }
    }

    #[test]
    fn a_key_id_that_pushes_the_real_tail_past_sshds_cut_cannot_name_a_serial() {
        // sshd cuts a syslog message at 500 bytes (`syslog(pri, "%.500s", …)`), 1021 on
        // stderr: a key ID that ends in a forged tail and is padded so that the cut falls just
        // after it leaves a line whose last `(serial N) CA` is the forged one.
        let head = format!("Accepted publickey for root from 10.0.0.1 port 2222 ssh2: ED25519-CERT {KEY} ID alice#5:x");
        let forged = format!(" (serial 5) CA ECDSA {CA}");
        // Padding after `, ` (where sshd writes a security key's signature count): any cut
        // in it leaves serial 5 and the key ID `alice#5:x`.
        for cut in [500, 600, 1021] {
            let line = format!("{head}{forged}, {}", "A".repeat(2000));
            assert_eq!(
                parse(&line.as_bytes()[..cut]),
                Parsed::Unparseable { login: true },
                "{cut}"
            );
        }
        for cut in [500, 1021] {
            let pad = cut - head.len() - forged.len();
            let line = format!("{head}{}{forged}", "A".repeat(pad));
            assert_eq!(line.len(), cut);
            assert_eq!(
                parse(line.as_bytes()),
                Parsed::Unparseable { login: true },
                "{cut}"
            );
            let line = format!("Accepted certificate ID \"alice#5:x{}\" (serial 5) signed by ECDSA CA {CA} via /etc/ssh/breakglass-ca.pub", "A".repeat(cut));
            assert_eq!(
                parse(&line.as_bytes()[..cut]),
                Parsed::Unparseable { login: false },
                "{cut}"
            );
        }
        // Just under the cut, the line is whole and parses.
        let line = format!(
            "{head}{}{forged}",
            "A".repeat(499 - head.len() - forged.len())
        );
        assert!(matches!(parse(line.as_bytes()), Parsed::Message(_)));
    }

    #[test]
    fn strnvis_is_undone() {
        assert_eq!(unvis(b"a\\\\b"), b"a\\b");
        assert_eq!(unvis(b"\\033[2J\\n\\t\\s\\0x"), b"\x1b[2J\n\t \0x");
        assert_eq!(unvis(b"caf\\303\\251"), "caf\u{e9}".as_bytes());
        assert_eq!(unvis(b"\\q\\"), b"\\q\\");
        assert_eq!(unvis(b"\\777"), b"\\777");
        assert_eq!(text(b"\\377"), "\u{fffd}");
    }
}
