//! The approvers file (`approvers_file` in `config.toml`): OpenSSH's `allowed_signers` format
//! (ssh-keygen(1), "ALLOWED SIGNERS"), one approver key per line:
//!
//! ```text
//! # name[,name...] [options] keytype base64 [comment]
//! bob namespaces="breakglass-ca-approval" ssh-ed25519 AAAAC3Nza… bob@laptop
//! carol,carol@example.com valid-before="20271231Z" sk-ssh-ed25519@openssh.com AAAAGnNr…
//! ```
//!
//! The principals are the approver's names: the first one is how refusals, the ledger and
//! `audit` name them, and two lines with the same first name are one approver with two keys.
//! A name (ASCII case aside) and a key belong to one approver only: `bob,robert …` and
//! `robert …`, `bob …` and `Bob …`, or one key under two first names are refused (one person
//! could approve twice).
//! Names are plain (printable ASCII, no wildcard, no quotes: they are compared, never matched
//! as patterns). Options: `namespaces="…"` (patterns as OpenSSH matches them; a line that does
//! not allow `breakglass-ca-approval` cannot approve), `valid-after="…"` and `valid-before="…"`
//! (`YYYYMMDD[HHMM[SS]]`, with `Z` or `UTC` for UTC, else local time, as ssh-keygen reads
//! them), and `cert-authority`, which is not supported: such a line is skipped with a note
//! (approvals are signed with an approver's own key, never with a certificate). Any other
//! option, a malformed line, a certificate or a key `mint` would not accept is an error naming
//! the line. Bounded: [`MAX_FILE_BYTES`], [`MAX_APPROVERS`] key lines.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use ssh_key::PublicKey;

use crate::error::{Error, Result};
use crate::text;

/// The largest approvers file read.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// The most key lines it may hold.
pub const MAX_APPROVERS: usize = 1000;
/// The longest approver name.
pub const MAX_NAME_BYTES: usize = 128;

/// One key line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The principals; the first is the approver's name.
    pub names: Vec<String>,
    /// The key (its comment dropped).
    pub key: PublicKey,
    /// `namespaces="…"`, if given.
    pub namespaces: Option<String>,
    pub valid_after: Option<DateTime<Utc>>,
    pub valid_before: Option<DateTime<Utc>>,
    /// Its line number in the file.
    pub line: usize,
}

impl Signer {
    /// The approver's name.
    pub fn name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or_default()
    }

    /// Why this line may not sign in `namespace` at `at`, if it may not.
    pub fn refuses(&self, namespace: &str, at: DateTime<Utc>) -> Option<String> {
        if let Some(list) = &self.namespaces {
            if !match_pattern_list(namespace, list) {
                return Some(format!(
                    "line {} of the approvers file allows only namespaces=\"{}\"",
                    self.line,
                    super::request::shown(list)
                ));
            }
        }
        if let Some(t) = self.valid_after.filter(|t| at < *t) {
            return Some(format!(
                "the key is valid only from {} (valid-after, line {} of the approvers file)",
                crate::issue::rfc3339(t),
                self.line
            ));
        }
        if let Some(t) = self.valid_before.filter(|t| at >= *t) {
            return Some(format!(
                "the key was valid only until {} (valid-before, line {} of the approvers file)",
                crate::issue::rfc3339(t),
                self.line
            ));
        }
        None
    }
}

/// The approvers file, read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signers {
    pub signers: Vec<Signer>,
    /// What was skipped, and why (for the custodian's screen).
    pub notes: Vec<String>,
}

impl Signers {
    /// The distinct approver names, in file order.
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.signers {
            if !out.contains(&s.name()) {
                out.push(s.name());
            }
        }
        out
    }

    /// Whether `name` is one of the names of the approver `approver` (ASCII case aside).
    pub fn is_named(&self, approver: &str, name: &str) -> bool {
        self.signers
            .iter()
            .filter(|s| s.name() == approver)
            .flat_map(|s| &s.names)
            .any(|n| n.eq_ignore_ascii_case(name))
    }

    /// The lines whose key is `key`.
    pub fn with_key<'a>(
        &'a self,
        key: &'a ssh_key::public::KeyData,
    ) -> impl Iterator<Item = &'a Signer> + 'a {
        self.signers.iter().filter(move |s| s.key.key_data() == key)
    }
}

/// Read the approvers file at `path`: it must be a plain file (never through a link) that only
/// its owner (this user or root) can change, as `config.toml`: whoever can write it chooses
/// who approves.
pub fn load(path: &std::path::Path) -> Result<Signers> {
    use crate::text::ShowPath;
    let Some(file) = crate::fsx::open_private(path, std::fs::OpenOptions::new().read(true))? else {
        return Err(Error::config(format!(
            "the approvers file {} (approvers_file in config.toml) does not exist",
            path.shown()
        ))
        .with_hint("restore it from the backup kept with the token, or fix approvers_file in config.toml (a relative path is read from the state directory)"));
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::file("examine", path, e))?;
    crate::fsx::check_private_file(path, &meta)?;
    let bytes = crate::fsx::read_limited(
        file,
        MAX_FILE_BYTES,
        &format!("approvers file {}", path.shown()),
    )?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::config(format!(
            "the approvers file {} is not UTF-8 text",
            path.shown()
        ))
    })?;
    parse(&text).map_err(|e| match e {
        Error::Message {
            kind,
            message,
            hint,
        } => Error::Message {
            kind,
            message: message.replacen(
                "the approvers file",
                &format!("the approvers file {}", path.shown()),
                1,
            ),
            hint,
        },
        e => e,
    })
}

fn at(line: usize, why: impl std::fmt::Display) -> Error {
    Error::config(format!("the approvers file, line {line}: {why}")).with_hint(
        "each line is NAME[,NAME...] [namespaces=\"breakglass-ca-approval\"] KEYTYPE BASE64 [COMMENT], as in an OpenSSH allowed_signers file",
    )
}

/// Read an approvers file.
pub fn parse(text: &str) -> Result<Signers> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(crate::fsx::too_large(MAX_FILE_BYTES, "approvers file"));
    }
    let mut out = Signers::default();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_matches([' ', '\t', '\r']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !text::is_safe(line) {
            return Err(at(
                n,
                format!(
                    "it has a control or invisible character: {}",
                    super::request::shown(line)
                ),
            ));
        }
        if out.signers.len() >= MAX_APPROVERS {
            return Err(at(n, format!("more than {MAX_APPROVERS} key lines")));
        }
        match parse_line(line, n)? {
            Some(s) => out.signers.push(s),
            None => out.notes.push(format!(
                "the approvers file, line {n}: cert-authority is not supported (an approval is signed with the approver's own key); the line is skipped"
            )),
        }
    }
    check_distinct(&out.signers)?;
    Ok(out)
}

/// Every name and every key is one approver's: a name (whatever its ASCII case) or a key on
/// the lines of two first names would let one person approve twice, under two names.
fn check_distinct(signers: &[Signer]) -> Result<()> {
    use std::collections::HashMap;
    let mut names: HashMap<String, &Signer> = HashMap::new();
    let mut keys: HashMap<String, &Signer> = HashMap::new();
    for s in signers {
        for name in &s.names {
            let owner = *names.entry(name.to_ascii_lowercase()).or_insert(s);
            if owner.name() != s.name() {
                return Err(at(
                    s.line,
                    format!(
                        "the name {} is also a name of {} (line {}): a name is one approver's, whatever its case",
                        super::request::shown(name),
                        super::request::shown(owner.name()),
                        owner.line
                    ),
                ));
            }
        }
        let owner = *keys
            .entry(crate::key::fingerprint(s.key.key_data()))
            .or_insert(s);
        if owner.name() != s.name() {
            return Err(at(
                s.line,
                format!(
                    "this key is also {}'s (line {}): a key is one approver's",
                    super::request::shown(owner.name()),
                    owner.line
                ),
            ));
        }
    }
    Ok(())
}

/// Split `s` at the first space or tab outside double quotes.
fn token(s: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
            _ => {}
        }
    }
    (s, "")
}

/// Whether `s` starts with a key type (else it starts with options).
fn starts_with_key_type(s: &str) -> bool {
    let t = token(s).0;
    t.starts_with("ssh-") || t.starts_with("ecdsa-sha2-") || t.starts_with("sk-")
}

/// One non-comment line; `None` for a `cert-authority` line (skipped).
fn parse_line(line: &str, n: usize) -> Result<Option<Signer>> {
    let (principals, rest) = token(line);
    if principals.contains('"') {
        return Err(at(
            n,
            "the names are quoted: write them plainly, separated by commas",
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for name in principals.split(',') {
        let why = if name.is_empty() {
            Some("is empty")
        } else if name.len() > MAX_NAME_BYTES {
            Some("is longer than 128 bytes")
        } else if !name.bytes().all(|b| b.is_ascii_graphic()) {
            Some("is not printable ASCII")
        } else if name.contains(['*', '?', '!']) {
            Some("holds a pattern character (* ? !): approver names are compared, never matched")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(at(
                n,
                format!(
                    "the approver name \"{}\" {why}",
                    super::request::shown(name)
                ),
            ));
        }
        if !names.iter().any(|m| m == name) {
            names.push(name.to_string());
        }
    }
    if rest.is_empty() {
        return Err(at(n, "there is no key after the names"));
    }
    let (options, key_text) = match starts_with_key_type(rest) {
        true => ("", rest),
        false => token(rest),
    };
    let mut signer_options = Options::default();
    if !options.is_empty() {
        signer_options = parse_options(options).map_err(|why| at(n, why))?;
    }
    if signer_options.cert_authority {
        return Ok(None);
    }
    if crate::key::is_certificate(key_text) {
        return Err(at(
            n,
            "it holds a certificate: give the approver's public key",
        ));
    }
    let mut fields = key_text.split_ascii_whitespace();
    let key_line = format!(
        "{} {}",
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default()
    );
    let mut key = crate::key::parse_requester_key(&key_line).map_err(|e| {
        at(
            n,
            match e {
                Error::Message { message, .. } => {
                    message.replace("the requester's public key", "the key")
                }
                e => e.to_string(),
            },
        )
    })?;
    key.set_comment("");
    Ok(Some(Signer {
        names,
        key,
        namespaces: signer_options.namespaces,
        valid_after: signer_options.valid_after,
        valid_before: signer_options.valid_before,
        line: n,
    }))
}

#[derive(Default)]
struct Options {
    cert_authority: bool,
    namespaces: Option<String>,
    valid_after: Option<DateTime<Utc>>,
    valid_before: Option<DateTime<Utc>>,
}

/// `opt[,opt...]`, each `name` or `name="value"`.
fn parse_options(s: &str) -> std::result::Result<Options, String> {
    let mut out = Options::default();
    let mut rest = s;
    while !rest.is_empty() {
        let (name, value, after) = match rest.find(['=', ',']) {
            Some(i) if rest.as_bytes()[i] == b'=' => {
                let name = &rest[..i];
                let v = &rest[i + 1..];
                let Some(v) = v.strip_prefix('"') else {
                    return Err(format!(
                        "the value of {} must be in double quotes",
                        super::request::shown(name)
                    ));
                };
                let Some(end) = v.find('"') else {
                    return Err(format!(
                        "the value of {} has no closing quote",
                        super::request::shown(name)
                    ));
                };
                (name, Some(&v[..end]), &v[end + 1..])
            }
            Some(i) => (&rest[..i], None, &rest[i..]),
            None => (rest, None, ""),
        };
        rest = match after.strip_prefix(',') {
            Some(r) if !r.is_empty() => r,
            Some(_) => return Err("an option list ends with a comma".into()),
            None if after.is_empty() => "",
            None => return Err("options must be separated by commas".into()),
        };
        let twice = |set: bool| match set {
            true => Err(format!("the option {name} is given twice")),
            false => Ok(()),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("cert-authority", None) => out.cert_authority = true,
            ("namespaces", Some(v)) => {
                twice(out.namespaces.is_some())?;
                out.namespaces = Some(v.to_string());
            }
            ("valid-after", Some(v)) => {
                twice(out.valid_after.is_some())?;
                out.valid_after = Some(parse_time(v)?);
            }
            ("valid-before", Some(v)) => {
                twice(out.valid_before.is_some())?;
                out.valid_before = Some(parse_time(v)?);
            }
            _ => {
                return Err(format!(
                    "unknown option {} (known: namespaces=\"…\", valid-after=\"…\", valid-before=\"…\", cert-authority)",
                    super::request::shown(name)
                ))
            }
        }
    }
    if let (Some(a), Some(b)) = (out.valid_after, out.valid_before) {
        if b <= a {
            return Err("valid-before is not after valid-after".into());
        }
    }
    Ok(out)
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, then `Z` or `UTC` for UTC, else local
/// time: as ssh-keygen reads valid-after and valid-before.
pub fn parse_time(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    let bad = || {
        format!(
            "\"{}\" is not a time such as 20271231 or 202712312359Z",
            super::request::shown(s)
        )
    };
    let (digits, utc) = if let Some(d) = s.strip_suffix(['Z', 'z']) {
        (d, true)
    } else if s.len() > 3 && s[s.len() - 3..].eq_ignore_ascii_case("UTC") {
        (&s[..s.len() - 3], true)
    } else {
        (s, false)
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|d| d.parse::<u32>().ok());
    let (hms, len_ok) = match digits.len() {
        8 => ((0, 0, 0), true),
        12 => (
            (num(8..10).unwrap_or(99), num(10..12).unwrap_or(99), 0),
            true,
        ),
        14 => (
            (
                num(8..10).unwrap_or(99),
                num(10..12).unwrap_or(99),
                num(12..14).unwrap_or(99),
            ),
            true,
        ),
        _ => ((0, 0, 0), false),
    };
    if !len_ok {
        return Err(bad());
    }
    let date = NaiveDate::from_ymd_opt(
        digits
            .get(0..4)
            .and_then(|d| d.parse().ok())
            .ok_or_else(bad)?,
        num(4..6).ok_or_else(bad)?,
        num(6..8).ok_or_else(bad)?,
    )
    .ok_or_else(bad)?;
    let naive: NaiveDateTime = date.and_hms_opt(hms.0, hms.1, hms.2).ok_or_else(bad)?;
    match utc {
        true => Ok(Utc.from_utc_datetime(&naive)),
        false => Local
            .from_local_datetime(&naive)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| format!("\"{}\" is not one time in this laptop's time zone (a clock change): add Z for UTC", super::request::shown(s))),
    }
}

/// OpenSSH's `match_pattern_list`: comma-separated patterns with `*` and `?`; a match of a
/// pattern starting with `!` is a refusal whatever else matches.
pub fn match_pattern_list(s: &str, list: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        match pattern.strip_prefix('!') {
            Some(p) if glob(s.as_bytes(), p.as_bytes()) => return false,
            Some(_) => {}
            None if glob(s.as_bytes(), pattern.as_bytes()) => matched = true,
            None => {}
        }
    }
    matched
}

/// `*` any run, `?` any one byte. Iterative (no recursion, linear backtracking).
fn glob(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                si += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO";
    const CAROL: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi";

    #[test]
    fn an_allowed_signers_file_reads_with_its_options() {
        let text = format!(
            "# approvers\n\n  bob {BOB} bob@laptop\ncarol,carol@example.com namespaces=\"breakglass-ca-approval,git\",valid-after=\"20260101\",valid-before=\"20271231Z\" {CAROL}\nbob namespaces=\"git\" {BOB}\ndave cert-authority {BOB}\n"
        );
        let s = parse(&text).unwrap();
        assert_eq!(s.signers.len(), 3);
        assert_eq!(s.names(), ["bob", "carol"]);
        assert_eq!(s.notes.len(), 1);
        assert!(s.notes[0].contains("line 6: cert-authority is not supported"));
        let carol = &s.signers[1];
        assert_eq!(carol.names, ["carol", "carol@example.com"]);
        assert_eq!(carol.line, 4);
        assert_eq!(carol.key.comment(), "");
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(carol.valid_before, Some(t("2027-12-31T00:00:00Z")));
        assert!(carol
            .refuses("breakglass-ca-approval", t("2026-06-01T00:00:00Z"))
            .is_none());
        let why = carol
            .refuses("breakglass-ca-request", t("2026-06-01T00:00:00Z"))
            .unwrap();
        assert!(why.contains("allows only namespaces"), "{why}");
        let why = carol
            .refuses("breakglass-ca-approval", t("2028-01-01T00:00:00Z"))
            .unwrap();
        assert!(
            why.contains("valid only until 2027-12-31T00:00:00Z"),
            "{why}"
        );
        assert_eq!(s.with_key(s.signers[0].key.key_data()).count(), 2);
        assert!(s.is_named("carol", "Carol@Example.com") && !s.is_named("bob", "carol"));
    }

    #[test]
    fn bad_lines_are_refused_naming_the_line() {
        for (line, needle) in [
            ("bob".to_string(), "no key after the names"),
            (format!("\"bob\" {BOB}"), "quoted"),
            (format!("b* {BOB}"), "pattern character"),
            (format!("bob,,x {BOB}"), "is empty"),
            (format!("b\u{e9}b {BOB}"), "not printable ASCII"),
            (format!("bob frob {BOB}"), "unknown option frob"),
            (format!("bob namespaces=x {BOB}"), "double quotes"),
            (format!("bob namespaces=\"x {BOB}"), "closing quote"),
            (
                format!("bob namespaces=\"a\",namespaces=\"b\" {BOB}"),
                "given twice",
            ),
            (format!("bob valid-before=\"2027\" {BOB}"), "not a time"),
            (format!("bob valid-before=\"20271332\" {BOB}"), "not a time"),
            (
                format!("bob valid-after=\"20280101\",valid-before=\"20270101\" {BOB}"),
                "not after",
            ),
            (format!("bob namespaces=\"a\", {BOB}"), "ends with a comma"),
            ("bob ssh-ed25519 AAAA".to_string(), "line 1"),
            ("bob ssh-dss AAAAB3NzaC1kc3MAAACBAP".to_string(), "DSA"),
            (
                "bob ssh-ed25519-cert-v01@openssh.com AAAA".to_string(),
                "certificate",
            ),
            (format!("bob {BOB}\u{1b}[2J"), "control or invisible"),
            (format!("{} {BOB}", "a".repeat(129)), "longer than 128"),
        ] {
            let err = parse(&line).unwrap_err().to_string();
            assert!(err.contains(needle), "{line}: {err}");
            assert!(err.contains("line 1"), "{err}");
            assert!(text::is_safe(&err), "{err}");
        }
        // Whatever the line, the error is short.
        for line in [
            format!("{} {BOB}", "a".repeat(100_000)),
            format!("bob {}=\"x\" {BOB}", "o".repeat(100_000)),
            format!("bob valid-before=\"{}\" {BOB}", "1".repeat(100_000)),
            format!("bob {BOB} {}\u{1b}", "c".repeat(100_000)),
        ] {
            let err = parse(&line).unwrap_err().to_string();
            assert!(err.len() < 600, "{}", err.len());
        }
        let many = format!("bob {BOB}\n").repeat(MAX_APPROVERS + 1);
        assert!(parse(&many)
            .unwrap_err()
            .to_string()
            .contains("more than 1000"));
        let huge = "#".repeat(MAX_FILE_BYTES as usize + 1);
        assert!(parse(&huge)
            .unwrap_err()
            .to_string()
            .contains("larger than"));
    }

    #[test]
    fn one_name_or_one_key_for_two_approvers_is_refused() {
        for (text, needle) in [
            // robert is one of bob's names, and an approver of his own: one person, two
            // approvals.
            (
                format!("bob,robert {BOB}\nrobert {CAROL}\n"),
                "line 2: the name robert is also a name of bob (line 1)",
            ),
            (
                format!("robert {CAROL}\nbob,Robert {BOB}\n"),
                "line 2: the name Robert is also a name of robert (line 1)",
            ),
            // The same first name spelled another way.
            (
                format!("bob {BOB}\nBob {CAROL}\n"),
                "line 2: the name Bob is also a name of bob (line 1)",
            ),
            // One key on the lines of two approvers: which one signed?
            (
                format!("bob {BOB}\ncarol {BOB} bob-again\n"),
                "line 2: this key is also bob's (line 1)",
            ),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        // One approver with two keys, and one key on two lines of one approver: fine.
        let s = parse(&format!(
            "bob,robert {BOB}\nbob namespaces=\"git\" {BOB}\nbob {CAROL}\n"
        ))
        .unwrap();
        assert_eq!(s.names(), ["bob"]);
    }

    #[test]
    fn patterns_and_times_as_openssh_reads_them() {
        assert!(match_pattern_list(
            "breakglass-ca-approval",
            "breakglass-ca-*"
        ));
        assert!(match_pattern_list(
            "breakglass-ca-approval",
            "git,breakglass-ca-approval"
        ));
        assert!(!match_pattern_list(
            "breakglass-ca-approval",
            "*,!breakglass-ca-approval"
        ));
        assert!(!match_pattern_list(
            "breakglass-ca-approval",
            "breakglass-ca-request"
        ));
        assert!(match_pattern_list("abc", "a?c"));
        assert!(!match_pattern_list("abc", "a?"));
        assert!(match_pattern_list("a", "*"));
        assert!(!match_pattern_list(
            &"a".repeat(200),
            &format!("{}b", "*a".repeat(50))
        ));
        let t = |s: &str| parse_time(s).unwrap().to_rfc3339();
        assert_eq!(t("20271231Z"), "2027-12-31T00:00:00+00:00");
        assert_eq!(t("202712312359z"), "2027-12-31T23:59:00+00:00");
        assert_eq!(t("20271231235958UTC"), "2027-12-31T23:59:58+00:00");
        assert!(parse_time("20271231").is_ok());
        for bad in [
            "",
            "2027",
            "2027123",
            "202712312",
            "20271231T",
            "2027123a",
            "20270230",
            "202712312460Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
