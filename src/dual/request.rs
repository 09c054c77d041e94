//! The request: a small canonical text a requester signs with `ssh-keygen -Y sign -n
//! breakglass-ca-request` (the proof of possession) and approvers sign with
//! `-n breakglass-ca-approval`. It says everything `mint` will put into the certificate:
//!
//! ```text
//! breakglass-ca request v1
//! key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI…
//! fingerprint: SHA256:…
//! requester: alice@example.com
//! principals: breakglass,root
//! validity: 15m
//! options: permit-pty source-address=192.0.2.10/32
//! reason: INC-1234 bastion down
//! nonce: 5f0c…(32 hex digits)
//! created: 2026-12-01T10:00:00Z
//! ```
//!
//! Ten lines, each `NAME: VALUE`, in exactly this order, each ending in LF (no CR, no blank
//! line, nothing after the last), at most [`MAX_REQUEST_BYTES`]. [`Request::parse`] is strict:
//! a text is a request only if [`Request::render`] gives back exactly its bytes, so two texts
//! never mean the same request, and what the approvers signed is what `mint` reads. Nothing of
//! it is ever shown raw: every field is checked (printable, no control or invisible
//! character) and shown escaped.
//!
//! `options` are the certificate's options as `-O` spells them, after `clear`: the
//! extensions and then the critical options, each sorted, separated by one space, a space
//! inside a value written `%20` and a `%` written `%25`; `none` for no option at all.

use chrono::{DateTime, Utc};
use ssh_key::PublicKey;

use crate::cert::{self, CertOptions};
use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::issue::rfc3339;
use crate::text;

/// The first line of a request in this format.
pub const HEADER: &str = "breakglass-ca request v1";
/// The largest request (an RSA-16384 key line is some 2.8 KiB).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// The longest reason in a request.
pub const MAX_REASON_BYTES: usize = 1024;
/// How many random bytes the nonce has (hex in the request).
pub const NONCE_BYTES: usize = 16;

/// The fields after the header, in their order.
pub const FIELDS: [&str; 9] = [
    "key",
    "fingerprint",
    "requester",
    "principals",
    "validity",
    "options",
    "reason",
    "nonce",
    "created",
];

/// A request, every field checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The requester's public key (no comment).
    pub key: PublicKey,
    pub requester: String,
    pub principals: Vec<String>,
    pub validity: Duration,
    pub options: CertOptions,
    pub reason: String,
    /// [`NONCE_BYTES`] random bytes, lowercase hex: a request is good for one certificate.
    pub nonce: String,
    /// When it was made, by the clock of the machine that ran `request` (whole seconds).
    pub created: DateTime<Utc>,
}

fn bad(why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("the request {why}")).with_hint(
        "give the request file exactly as 'breakglass-ca request' wrote it (and as it was signed); an edited request is a new request: make it again",
    )
}

impl Request {
    /// A new request for `key` (its comment dropped), with a fresh nonce, created `now`:
    /// every field checked as `mint` checks it.
    pub fn new(
        key: &PublicKey,
        requester: &str,
        principals: Vec<String>,
        validity: Duration,
        options: CertOptions,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Request> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut nonce)
            .map_err(|e| Error::invalid(format!("cannot read random bytes for the nonce: {e}")))?;
        let mut key = key.clone();
        key.set_comment("");
        let request = Request {
            key,
            requester: requester.to_string(),
            principals,
            validity,
            options,
            reason: reason.to_string(),
            nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(),
            created: chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now),
        };
        // The same checks as a request read back.
        Request::parse(request.render()?.as_bytes())
    }

    /// The mint this request asks for (its key, requester, principals, reason, validity and
    /// options), with `backdate` and `dual`, the request's signatures and approvals.
    pub fn mint_request(
        &self,
        backdate: Option<Duration>,
        dual: super::DualControl,
    ) -> crate::issue::MintRequest {
        crate::issue::MintRequest {
            subject: self.key.clone(),
            requester: self.requester.clone(),
            principals: self.principals.clone(),
            reason: self.reason.clone(),
            key_id: None,
            validity: crate::policy::ValidityRequest {
                validity: Some(self.validity),
                backdate,
                not_before: None,
                force: false,
            },
            options: self.options.clone(),
            dual: Some(dual),
        }
    }

    /// The requester key's `SHA256:` fingerprint.
    pub fn fingerprint(&self) -> String {
        crate::key::fingerprint(self.key.key_data())
    }

    /// The exact text (ten lines, each ending in LF).
    pub fn render(&self) -> Result<String> {
        let key = PublicKey::new(self.key.key_data().clone(), "")
            .to_openssh()
            .map_err(|e| Error::ssh("cannot encode the requester's key", e))?;
        let values = [
            key.trim_end().to_string(),
            self.fingerprint(),
            self.requester.clone(),
            self.principals.join(","),
            self.validity.to_string(),
            render_options(&self.options),
            self.reason.clone(),
            self.nonce.clone(),
            rfc3339(self.created),
        ];
        let mut out = format!("{HEADER}\n");
        for (name, value) in FIELDS.iter().zip(values) {
            out.push_str(&format!("{name}: {value}\n"));
        }
        Ok(out)
    }

    /// Read a request: exactly the text [`Request::render`] gives for it, nothing else.
    pub fn parse(bytes: &[u8]) -> Result<Request> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(bad(format!(
                "is larger than {} KiB: this is not a request",
                MAX_REQUEST_BYTES / 1024
            )));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| bad("is not UTF-8 text"))?;
        if text.contains('\r') {
            return Err(bad(
                "has a carriage return (CR LF line ends, from a mail program or an editor): the signatures are over the bytes with LF line ends",
            ));
        }
        let Some(body) = text.strip_suffix('\n') else {
            return Err(bad("does not end with a line feed"));
        };
        let lines: Vec<&str> = body.split('\n').collect();
        let Some((header, fields)) = lines.split_first() else {
            return Err(bad("is empty"));
        };
        if *header != HEADER {
            return Err(match header.strip_prefix("breakglass-ca request ") {
                Some(v) => bad(format!(
                    "is in format {}, which this version of breakglass-ca does not know (it reads {HEADER})",
                    shown(v)
                )),
                None => bad(format!(
                    "does not start with the line '{HEADER}' (it starts '{}')",
                    shown(header)
                )),
            });
        }
        let mut values = Vec::with_capacity(FIELDS.len());
        for (i, name) in FIELDS.iter().enumerate() {
            let line_no = i + 2;
            let Some(line) = fields.get(i) else {
                return Err(bad(format!(
                    "ends at line {}: line {line_no} must be '{name}: …'",
                    line_no - 1
                )));
            };
            if !text::is_safe(line) {
                return Err(bad(format!(
                    "has a control or invisible character at line {line_no}: {}",
                    shown(line)
                )));
            }
            let Some(value) = line.strip_prefix(name).and_then(|l| l.strip_prefix(": ")) else {
                return Err(bad(format!(
                    "line {line_no} must be '{name}: …', it is '{}'",
                    shown(line)
                )));
            };
            values.push((line_no, *name, value));
        }
        if fields.len() > FIELDS.len() {
            return Err(bad(format!(
                "has more than {} lines (line {} is '{}')",
                FIELDS.len() + 1,
                FIELDS.len() + 2,
                shown(fields[FIELDS.len()])
            )));
        }
        let field = |i: usize| values[i].2;
        let at = |i: usize, e: Error| {
            let (line_no, name, _) = values[i];
            bad(format!("line {line_no} ({name}): {}", plain(&e)))
        };
        let key = parse_key(field(0)).map_err(|e| at(0, e))?;
        if field(2).is_empty() {
            return Err(at(2, Error::invalid("the requester's name is empty")));
        }
        let requester = crate::issue::requester_name(Some(field(2)), &key).map_err(|e| at(2, e))?;
        let principals =
            crate::policy::principals(&[field(3).to_string()]).map_err(|e| at(3, e))?;
        let validity: Duration = field(4).parse().map_err(|e| at(4, e))?;
        let options = parse_options(field(5)).map_err(|e| at(5, e))?;
        let reason = check_reason(field(6)).map_err(|e| at(6, e))?;
        let nonce = field(7);
        if nonce.len() != 2 * NONCE_BYTES
            || !nonce
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(at(
                7,
                Error::invalid(format!(
                    "the nonce must be {} lowercase hex digits",
                    2 * NONCE_BYTES
                )),
            ));
        }
        let created = DateTime::parse_from_rfc3339(field(8))
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                at(
                    8,
                    Error::invalid(format!(
                        "not an RFC 3339 time such as 2026-12-01T10:00:00Z ({e})"
                    )),
                )
            })?;
        let request = Request {
            key,
            requester,
            principals,
            validity,
            options,
            reason,
            nonce: nonce.to_string(),
            created,
        };
        if request.fingerprint() != field(1) {
            return Err(at(
                1,
                Error::invalid(format!(
                    "it is not the fingerprint of the key on line 2 ({})",
                    request.fingerprint()
                )),
            ));
        }
        // Canonical: the text is exactly what rendering the request gives.
        let again = request.render()?;
        if again.as_bytes() != bytes {
            let (n, expected) = again
                .lines()
                .zip(text.lines())
                .enumerate()
                .find(|(_, (a, b))| a != b)
                .map(|(n, (a, _))| (n + 1, a.to_string()))
                .unwrap_or((0, String::new()));
            return Err(bad(format!(
                "is not written as breakglass-ca writes it: line {n} would be '{}'",
                shown(&expected)
            )));
        }
        Ok(request)
    }
}

/// Untrusted text for an error message: escaped and cut.
pub(crate) fn shown(s: &str) -> String {
    let e = text::escape(s);
    match e.chars().count() > 80 {
        true => format!("{}...", e.chars().take(77).collect::<String>()),
        false => e.into_owned(),
    }
}

/// An error's message without its kind's prefix (`refused: `), for nesting it in another.
fn plain(e: &Error) -> String {
    match e {
        Error::Message { message, .. } => message.clone(),
        e => e.to_string(),
    }
}

/// The `key:` value: a requester key as `mint` accepts one, written without a comment.
fn parse_key(value: &str) -> Result<PublicKey> {
    if value.split_ascii_whitespace().count() != 2 {
        return Err(Error::invalid(
            "the key line must be the key type and its base64 data, without a comment",
        ));
    }
    crate::key::parse_requester_key(value)
}

/// The reason as `mint --reason` takes it, and at most [`MAX_REASON_BYTES`].
pub fn check_reason(reason: &str) -> Result<String> {
    let trimmed = reason.trim();
    if trimmed.is_empty() {
        return Err(Error::refused("the reason is empty")
            .with_hint("say why this access is needed, e.g. --reason 'INC-1234 bastion down'"));
    }
    if !text::is_safe(trimmed) {
        return Err(Error::refused(format!(
            "the reason holds a control or invisible character: {}",
            text::Esc(trimmed)
        )));
    }
    if trimmed.len() > MAX_REASON_BYTES {
        return Err(Error::refused(format!(
            "the reason is longer than {MAX_REASON_BYTES} bytes"
        ))
        .with_hint("give the ticket and a short sentence; details belong in the ticket"));
    }
    Ok(trimmed.to_string())
}

/// A value inside an `options:` item: `%` and space percent-encoded, nothing else.
fn encode_value(v: &str) -> String {
    v.replace('%', "%25").replace(' ', "%20")
}

fn decode_value(v: &str) -> Result<String> {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3);
        match code {
            Some("20") => out.push(' '),
            Some("25") => out.push('%'),
            _ => {
                return Err(Error::invalid(
                    "a % in an option must be %20 (a space) or %25 (a %)",
                ))
            }
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `-O` spelling of each option in `options`, after `clear`: extensions first, then
/// critical options, each sorted by name.
pub fn option_items(options: &CertOptions) -> Vec<String> {
    let mut items = Vec::new();
    let with = |name: String, v: &str| match v.is_empty() {
        true => name,
        false => format!("{name}={v}"),
    };
    for (k, v) in &options.extensions {
        let standard = cert::EXTENSIONS.contains(&k.as_str()) || k == cert::NO_TOUCH_REQUIRED;
        items.push(match standard {
            true => k.clone(),
            false => with(format!("extension:{k}"), v),
        });
    }
    for (k, v) in &options.critical {
        items.push(match k.as_str() {
            "force-command" | "source-address" => with(k.clone(), v),
            "verify-required" if v.is_empty() => k.clone(),
            _ => with(format!("critical:{k}"), v),
        });
    }
    items
}

/// The `options:` value.
pub fn render_options(options: &CertOptions) -> String {
    let items: Vec<String> = option_items(options)
        .iter()
        .map(|i| encode_value(i))
        .collect();
    match items.is_empty() {
        true => "none".to_string(),
        false => items.join(" "),
    }
}

/// Read an `options:` value back (it must be exactly what [`render_options`] writes).
pub fn parse_options(value: &str) -> Result<CertOptions> {
    let mut args = vec!["clear".to_string()];
    if value != "none" {
        for item in value.split(' ') {
            if item.is_empty() {
                return Err(Error::invalid("options are separated by one space each"));
            }
            args.push(decode_value(item)?);
        }
    }
    let options = CertOptions::parse(&args)?;
    if render_options(&options) != value {
        return Err(Error::invalid(format!(
            "the options are not written in their one order and spelling: '{}'",
            shown(&render_options(&options))
        )));
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn key() -> PublicKey {
        PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO alice@laptop",
        )
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
    }

    fn request(options: &[&str]) -> Request {
        let opts: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        Request::new(
            &key(),
            "alice@example.com",
            vec!["breakglass".into(), "root".into()],
            Duration::from_secs(900),
            CertOptions::parse(&opts).unwrap(),
            "INC-1234 bastion down",
            now(),
        )
        .unwrap()
    }

    #[test]
    fn a_request_renders_and_reads_back_byte_for_byte() {
        let r = request(&[
            "force-command=/usr/bin/systemctl restart 100% nginx",
            "source-address=192.0.2.10/32",
            "permit-port-forwarding",
            "extension:login@example.com=a b",
        ]);
        let text = r.render().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10, "{text}");
        assert_eq!(lines[0], HEADER);
        assert!(lines[1].starts_with("key: ssh-ed25519 AAAA") && !lines[1].ends_with("laptop"));
        assert_eq!(lines[2], format!("fingerprint: {}", r.fingerprint()));
        assert_eq!(lines[3], "requester: alice@example.com");
        assert_eq!(lines[4], "principals: breakglass,root");
        assert_eq!(lines[5], "validity: 15m");
        assert_eq!(
            lines[6],
            "options: extension:login@example.com=a%20b permit-port-forwarding permit-pty force-command=/usr/bin/systemctl%20restart%20100%25%20nginx source-address=192.0.2.10/32"
        );
        assert_eq!(lines[7], "reason: INC-1234 bastion down");
        assert!(lines[8].starts_with("nonce: ") && lines[8].len() == 7 + 32);
        assert_eq!(lines[9], "created: 2026-12-01T10:00:00Z");
        assert!(text.ends_with('\n') && text.is_ascii());
        let back = Request::parse(text.as_bytes()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.render().unwrap(), text);
        // The nonce is fresh each time.
        assert_ne!(request(&[]).nonce, request(&[]).nonce);
        // No option at all.
        let none = request(&["clear"]);
        assert!(none.render().unwrap().contains("\noptions: none\n"));
        assert_eq!(
            Request::parse(none.render().unwrap().as_bytes()).unwrap(),
            none
        );
    }

    #[test]
    fn a_request_that_reads_as_another_is_refused() {
        // An approver reads the request on a screen: a no-break space in an option value
        // shows "extension:x=a source-address=192.0.2.10/32", two options, when the
        // certificate would carry one unknown extension and no source restriction.
        let text = request(&["permit-pty"]).render().unwrap();
        for (from, to) in [
            (
                "options: permit-pty",
                "options: extension:x=a\u{a0}source-address=192.0.2.10/32 permit-pty",
            ),
            ("reason: INC-1234", "reason: INC-1234\u{ad}"),
            (
                "reason: INC-1234 bastion",
                "reason: INC-1234\u{3164}bastion",
            ),
            ("requester: alice", "requester: alice\u{2800}"),
            (
                "requester: alice@example.com",
                "requester: alice\u{a0}\u{a0}\u{a0}x",
            ),
        ] {
            let forged = text.replacen(from, to, 1);
            assert_ne!(forged, text);
            let err = Request::parse(forged.as_bytes()).unwrap_err().to_string();
            assert!(
                err.contains("control or invisible character"),
                "{to}: {err}"
            );
            assert!(text::is_safe(&err), "{err}");
        }
        // Options that would mean the same certificate written another way: one spelling.
        for options in [
            "permit-pty permit-pty",
            "PERMIT-PTY",
            "Permit-pty",
            "permit-pty extension:permit-pty",
            "permit-pty extension:x=",
            "permit-pty extension:x=%61",
            "permit-pty extension:x=a%2",
            "permit-pty critical:verify-required",
            "permit-pty  force-command=/bin/true",
            "force-command=/bin/true permit-pty",
            "permit-pty no-pty",
            "clear permit-pty",
            "permit-pty ",
            "",
            "None",
        ] {
            let forged = text.replacen("options: permit-pty", &format!("options: {options}"), 1);
            assert!(Request::parse(forged.as_bytes()).is_err(), "{options}");
        }
        // And `request` cannot make one.
        let opts = ["extension:x=a\u{a0}source-address=192.0.2.10/32".to_string()];
        assert!(CertOptions::parse(&opts).is_err());
        let err = check_reason("INC-1\u{a0}\u{a0}down")
            .unwrap_err()
            .to_string();
        assert!(err.contains("control or invisible"), "{err}");
    }

    #[test]
    fn every_deviation_from_the_canonical_text_is_refused() {
        let text = request(&[]).render().unwrap();
        let nonce_line = text.lines().nth(8).unwrap().to_string();
        let swap = |from: &str, to: &str| text.replacen(from, to, 1);
        let lines: Vec<&str> = text.lines().collect();
        let without = |i: usize| {
            let mut l = lines.clone();
            l.remove(i);
            format!("{}\n", l.join("\n"))
        };
        let dup = {
            let mut l = lines.clone();
            l.insert(4, lines[3]);
            format!("{}\n", l.join("\n"))
        };
        let other_key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi";
        let cases: Vec<(String, &str)> = vec![
            (text.replace('\n', "\r\n"), "carriage return"),
            (text.trim_end().to_string(), "does not end with a line feed"),
            (format!("{text}\n"), "more than 10 lines"),
            (format!("{text}extra: x\n"), "more than 10 lines"),
            (swap("v1", "v2"), "format v2"),
            (swap("breakglass-ca request v1", "hello"), "does not start"),
            (without(4), "line 5 must be 'principals: …'"),
            (dup, "line 5 must be 'principals: …'"),
            (
                swap("reason: ", "reason:  "),
                "not written as breakglass-ca",
            ),
            (
                swap("reason: INC-1234", "reason: INC-\u{1b}[2J"),
                "control or invisible",
            ),
            (
                swap("reason: INC-1234", "reason: INC-\u{202e}1"),
                "control or invisible",
            ),
            (
                swap("validity: 15m", "validity: 900s"),
                "line 6 would be 'validity: 15m'",
            ),
            (swap("validity: 15m", "validity: 15"), "line 6 (validity)"),
            (
                swap("principals: breakglass,root", "principals: root,root"),
                "line 5 would be",
            ),
            (
                swap("principals: breakglass,root", "principals: *"),
                "wildcard",
            ),
            (
                swap("options: permit-pty", "options: no-pty"),
                "not written in their one order",
            ),
            (
                swap("options: permit-pty", "options: permit-pty  permit-user-rc"),
                "one space each",
            ),
            (
                swap("options: permit-pty", "options: force-command=a%41"),
                "%20",
            ),
            (
                swap("options: permit-pty", "options: frobnicate"),
                "unknown option",
            ),
            (swap(&nonce_line, "nonce: 00"), "32 lowercase hex"),
            (
                swap(
                    &nonce_line,
                    &nonce_line.to_uppercase().replace("NONCE", "nonce"),
                ),
                "nonce",
            ),
            (
                swap("2026-12-01T10:00:00Z", "2026-12-01T11:00:00+01:00"),
                "line 10 would be 'created: 2026-12-01T10:00:00Z'",
            ),
            (swap("2026-12-01T10:00:00Z", "yesterday"), "RFC 3339"),
            (
                swap("fingerprint: SHA256:", "fingerprint: SHA256:x"),
                "not the fingerprint",
            ),
            (
                swap(lines[1], &format!("key: {other_key}")),
                "not the fingerprint",
            ),
            (
                swap(lines[1], &format!("{} alice", lines[1])),
                "without a comment",
            ),
            (
                swap(
                    "requester: alice@example.com",
                    "requester: alice  (SHA256:x)",
                ),
                "line 4 (requester)",
            ),
            (
                swap("requester: alice@example.com", "requester: "),
                "name is empty",
            ),
            ("x".repeat(MAX_REQUEST_BYTES + 1), "larger than 8 KiB"),
            (String::new(), "does not end with a line feed"),
            ("\n".into(), "does not start"),
        ];
        for (input, needle) in cases {
            let err = Request::parse(input.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}\n{input}");
            assert!(text::is_safe(&err), "{err}");
        }
        let err = Request::parse(b"breakglass-ca request v1\nkey: \xff\n").unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        // A long reason.
        let long = swap("INC-1234 bastion down", &"x".repeat(MAX_REASON_BYTES + 1));
        let err = Request::parse(long.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("longer than 1024"), "{err}");
    }
}
