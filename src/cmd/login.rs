//! The last lines of `mint`: the ssh command each requester logs in with, for the files as
//! they are. ssh finds a certificate by itself only as `KEY-cert.pub` beside the private key
//! `KEY` (`ssh -i KEY` loads `KEY-cert.pub`); any other name needs `-o CertificateFile=CERT`.
//! The public key file `KEY.pub` tells where the private key is (`KEY`); a key from stdin does
//! not, and then the line says where the requester saves the certificate.
//!
//! Paths come from the command line, but file names can hold anything: every path and the user
//! are one shell word ([`shell_word`]: single quotes when needed, and bash's `$'\xNN'` for a
//! byte that must not reach a terminal raw), so the line is safe to show and works when pasted
//! into bash or zsh. What ssh itself expands in these paths is escaped too: `%` (its tokens) as
//! `%%`, which `-i` does not accept, so such a key is given as `-o IdentityFile=…`; a value of
//! `-o` with spaces or quotes is quoted for ssh's own parser as well, and a relative one that
//! starts with `~` or `#` (a home directory, a comment to that parser) gets `./`. ssh also
//! expands `${VAR}` in both, with no escape at all: a path holding `${` is never put into the
//! command (the requester is told to save the certificate under ssh's own name instead), and a
//! user ssh would read as a URI (`ssh://…`) or an option goes in as `-l USER`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ssh_key::Algorithm as KeyAlgorithm;

/// One certificate of a mint, as the login line needs it.
pub struct Issued<'a> {
    pub serial: u64,
    /// The PUBKEY argument (`-`: stdin).
    pub input: &'a Path,
    /// Where the certificate was written (`None`: stdout).
    pub output: Option<&'a Path>,
    /// The first principal: the account to log in as.
    pub user: &'a str,
    /// The requester key's algorithm (for the usual file name of a key from stdin).
    pub algorithm: KeyAlgorithm,
}

/// Where the host goes in the lines.
const HOST: &str = "HOST";

/// The lines `mint` ends with: one certificate gets a sentence and its command; several get a
/// sentence and one line each (`serial N (FILE): ...`). `home` is `$HOME`, shown as `~`;
/// `json`: a certificate for stdout went there inside its ledger record.
pub fn lines(issued: &[Issued<'_>], home: Option<&OsStr>, json: bool) -> Vec<String> {
    match issued {
        [one] => {
            let how = how(one, home, json);
            let head = match &how.save {
                Some(save) => format!(
                    "Hand the certificate to the requester: they {save}, and log in with ({HOST}: the server):"
                ),
                None => format!(
                    "Hand the certificate to the requester; they log in with ({HOST}: the server):"
                ),
            };
            vec![head, format!("  {}", how.command)]
        }
        many => {
            let mut out = vec![format!(
                "Hand each certificate to its requester; they log in with ({HOST}: the server):"
            )];
            for one in many {
                let how = how(one, home, json);
                let certificate = match one.output {
                    Some(p) => crate::text::escape(&p.to_string_lossy()).into_owned(),
                    None => "stdout".into(),
                };
                let save = how.save.map(|s| format!("{s}, then ")).unwrap_or_default();
                out.push(format!(
                    "  serial {} ({certificate}): {save}{}",
                    one.serial, how.command
                ));
            }
            out
        }
    }
}

/// How one requester logs in: what they do with the certificate first, if anything, and the
/// command.
struct How {
    save: Option<String>,
    command: String,
}

fn how(one: &Issued<'_>, home: Option<&OsStr>, json: bool) -> How {
    let from_stdin = one.input == Path::new("-");
    let private = match from_stdin {
        true => None,
        false => private_key(one.input).filter(|k| !ssh_expands_env(k)),
    };
    let target = destination(one.user);
    let on_stdout = match json {
        true => "the certificate (the \"certificate\" of the JSON record on stdout)",
        false => "the certificate from stdout",
    };
    match (private, one.output) {
        // The key's own file: KEY.pub, so the private key is KEY.
        (Some(key), output) => {
            let beside = cert_beside(key);
            let (save, certificate) = match output {
                None => (
                    Some(format!(
                        "save {on_stdout} as {} beside the private key {}",
                        shown_path(&beside, home),
                        shown_path(key, home)
                    )),
                    None,
                ),
                Some(cert) if same_file(cert, &beside) => (None, None),
                // ssh would read another file for this name: the name it loads by itself.
                Some(cert) if ssh_expands_env(cert) => (
                    Some(format!(
                        "save {} as {} beside the private key {}",
                        shown_path(cert, home),
                        shown_path(&beside, home),
                        shown_path(key, home)
                    )),
                    None,
                ),
                Some(cert) => (None, Some(cert)),
            };
            How {
                save,
                command: command(&identity(key, home), certificate, home, &target),
            }
        }
        // From stdin, or a file not named KEY.pub: the private key's name is not known.
        (None, output) => {
            let usual = format!("~/.ssh/{}", usual_name(&one.algorithm));
            let what = match (from_stdin, output) {
                (_, None) => on_stdout.to_string(),
                (true, Some(cert)) => shown_path(cert, home),
                (false, Some(cert)) => format!(
                    "{} (for the key in {})",
                    shown_path(cert, home),
                    shown_path(one.input, home)
                ),
            };
            How {
                save: Some(format!(
                    "save {what} as KEY-cert.pub beside their private key KEY (usually {usual}-cert.pub)"
                )),
                command: format!("ssh -i {usual} {target}"),
            }
        }
    }
}

/// `ssh IDENTITY [-o CertificateFile=CERT] USER@HOST`.
fn command(
    identity: &str,
    certificate: Option<&Path>,
    home: Option<&OsStr>,
    target: &str,
) -> String {
    match certificate {
        None => format!("ssh {identity} {target}"),
        Some(cert) => format!(
            "ssh {identity} {} {target}",
            ssh_option("CertificateFile", cert, home)
        ),
    }
}

/// `-i KEY`, or `-o IdentityFile=KEY` for a path with `%`: ssh checks `-i`'s file under its
/// literal name but opens it with its tokens expanded, so no spelling of such a path works
/// with `-i`.
fn identity(key: &Path, home: Option<&OsStr>) -> String {
    match key.as_os_str().as_bytes().contains(&b'%') {
        true => ssh_option("IdentityFile", key, home),
        false => format!("-i {}", shown_path(key, home)),
    }
}

/// `-o NAME=VALUE` for a path: `%` doubled (ssh's tokens), the value in double quotes for
/// ssh's own parser when it holds a space, a quote or a backslash, and the whole a shell word.
fn ssh_option(name: &str, path: &Path, home: Option<&OsStr>) -> String {
    let (tilde, rest) = split_home(path, home);
    // A relative path that starts with ~ is not a home directory to ssh, and one that starts
    // with # is not a comment (ssh's parser would find no value: "Missing argument").
    let mut value: Vec<u8> = match (tilde, rest.first()) {
        (false, Some(b'~' | b'#')) => b"./".to_vec(),
        _ => Vec::new(),
    };
    value.extend(rest.iter().flat_map(|&b| match b {
        b'%' => vec![b'%', b'%'],
        b => vec![b],
    }));
    let needs_quotes = value
        .iter()
        .any(|b| b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'\\'));
    if needs_quotes {
        let mut quoted = vec![b'"'];
        for &b in &value {
            if matches!(b, b'"' | b'\\') {
                quoted.push(b'\\');
            }
            quoted.push(b);
        }
        quoted.push(b'"');
        value = quoted;
    }
    // ssh expands a leading ~ itself, also inside the quotes.
    let tilde = match (tilde, needs_quotes) {
        (false, _) => "",
        (true, false) => "~/",
        (true, true) => {
            value.insert(1, b'/');
            value.insert(1, b'~');
            ""
        }
    };
    let mut word = format!("{name}=").into_bytes();
    word.extend_from_slice(tilde.as_bytes());
    word.extend_from_slice(&value);
    format!("-o {}", shell_word(&word))
}

/// `USER@HOST` as one shell word; `-l USER HOST` for a user ssh would take for an option, or
/// for a URI (`ssh://root@HOST` logs in as root).
fn destination(user: &str) -> String {
    let uri = user
        .get(..6)
        .is_some_and(|head| head.eq_ignore_ascii_case("ssh://"));
    match user.starts_with('-') || uri {
        true => format!("-l {} {HOST}", shell_word(user.as_bytes())),
        false => shell_word(format!("{user}@{HOST}").as_bytes()),
    }
}

/// `KEY` for `KEY.pub`; `None` for a file not named so.
fn private_key(input: &Path) -> Option<&Path> {
    let bytes = input.as_os_str().as_bytes();
    let stem = bytes.strip_suffix(b".pub")?;
    let name_empty = stem.is_empty() || stem.ends_with(b"/");
    (!name_empty).then(|| Path::new(OsStr::from_bytes(stem)))
}

/// Whether ssh would expand part of this path as an environment variable (`${VAR}`, in
/// `-i`, `IdentityFile` and `CertificateFile`, which have no escape for it).
fn ssh_expands_env(path: &Path) -> bool {
    path.as_os_str().as_bytes().windows(2).any(|w| w == b"${")
}

/// `KEY-cert.pub` beside `KEY`: the certificate ssh loads for `-i KEY`.
fn cert_beside(key: &Path) -> std::path::PathBuf {
    let mut bytes = key.as_os_str().as_bytes().to_vec();
    bytes.extend_from_slice(b"-cert.pub");
    std::path::PathBuf::from(OsStr::from_bytes(&bytes))
}

/// Whether two paths name the same file (the certificate was written, so it exists).
fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b)
}

/// The usual name of a private key of this type (`ssh-keygen -t TYPE` without `-f`).
fn usual_name(algorithm: &KeyAlgorithm) -> &'static str {
    match algorithm {
        KeyAlgorithm::Ed25519 => "id_ed25519",
        KeyAlgorithm::Ecdsa { .. } => "id_ecdsa",
        KeyAlgorithm::SkEd25519 => "id_ed25519_sk",
        KeyAlgorithm::SkEcdsaSha2NistP256 => "id_ecdsa_sk",
        KeyAlgorithm::Dsa => "id_dsa",
        _ => "id_rsa",
    }
}

/// `~/rest` when `path` is under `home`, else the path; and whether it was.
fn split_home<'p>(path: &'p Path, home: Option<&OsStr>) -> (bool, &'p [u8]) {
    let bytes = path.as_os_str().as_bytes();
    let home = home
        .map(|h| h.as_bytes())
        .map(|h| h.strip_suffix(b"/").unwrap_or(h))
        .filter(|h| h.starts_with(b"/") && h.len() > 1);
    if let Some(rest) = home.and_then(|h| bytes.strip_prefix(h)) {
        if let Some(rest) = rest.strip_prefix(b"/").filter(|r| !r.is_empty()) {
            return (true, rest);
        }
    }
    (false, bytes)
}

/// A path as one shell word, `~/` for `$HOME`. A relative path that starts with `~` gets
/// `./` first, or the shell (or ssh) would take it for a home directory.
fn shown_path(path: &Path, home: Option<&OsStr>) -> String {
    match split_home(path, home) {
        (true, rest) => format!("~/{}", shell_word(rest)),
        (false, bytes) if bytes.starts_with(b"~") => {
            let mut dotted = b"./".to_vec();
            dotted.extend_from_slice(bytes);
            shell_word(&dotted)
        }
        (false, bytes) => shell_word(bytes),
    }
}

/// `word` as one word for sh, bash and zsh, and safe on a terminal: as it is when it holds only
/// letters, digits and `_ - . / @ % + , :` (and `=` after its first character); else in single
/// quotes (`'` as `'\''`), with each byte of a character that must not reach a terminal raw
/// ([`crate::text::is_unsafe_char`], and bytes that are not UTF-8) as bash's and zsh's
/// `$'\xNN'`.
pub fn shell_word(word: &[u8]) -> String {
    let plain = |(i, b): (usize, &u8)| {
        b.is_ascii_alphanumeric() || b"_-./@%+,:".contains(b) || (*b == b'=' && i > 0)
    };
    if !word.is_empty() && word.iter().enumerate().all(plain) {
        return String::from_utf8_lossy(word).into_owned();
    }
    let mut out = String::new();
    let mut quoted = false;
    let mut open = |out: &mut String, want: bool| {
        if quoted != want {
            out.push('\'');
            quoted = want;
        }
    };
    for chunk in word.utf8_chunks() {
        for c in chunk.valid().chars() {
            if crate::text::is_unsafe_char(c) {
                open(&mut out, false);
                out.push_str("$'");
                for b in c.encode_utf8(&mut [0; 4]).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
                out.push('\'');
            } else if c == '\'' {
                open(&mut out, false);
                out.push_str("\\'");
            } else {
                open(&mut out, true);
                out.push(c);
            }
        }
        if !chunk.invalid().is_empty() {
            open(&mut out, false);
            out.push_str("$'");
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02x}"));
            }
            out.push('\'');
        }
    }
    open(&mut out, false);
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one<'a>(input: &'a str, output: Option<&'a str>) -> Issued<'a> {
        Issued {
            serial: 7,
            input: Path::new(input),
            output: output.map(Path::new),
            user: "breakglass",
            algorithm: KeyAlgorithm::Ed25519,
        }
    }

    fn home() -> Option<&'static OsStr> {
        Some(OsStr::new("/home/custodian"))
    }

    #[test]
    fn the_login_line_for_each_way_a_certificate_goes() {
        let line = |input, output| lines(&[one(input, output)], home(), false)[1].clone();
        // ssh's convention: no -o.
        assert_eq!(
            line("alice.pub", Some("alice-cert.pub")),
            "  ssh -i alice breakglass@HOST"
        );
        assert_eq!(
            line(
                "/home/custodian/.ssh/id_ed25519.pub",
                Some("/home/custodian/.ssh/id_ed25519-cert.pub")
            ),
            "  ssh -i ~/.ssh/id_ed25519 breakglass@HOST"
        );
        // Another name: -o CertificateFile.
        assert_eq!(
            line("alice.pub", Some("/tmp/c.pub")),
            "  ssh -i alice -o CertificateFile=/tmp/c.pub breakglass@HOST"
        );
        assert_eq!(
            line(
                "/home/custodian/in/alice.pub",
                Some("/home/custodian/out/a b.pub")
            ),
            "  ssh -i ~/in/alice -o 'CertificateFile=\"~/out/a b.pub\"' breakglass@HOST"
        );
        // Spaces, quotes, $, a leading ~ and control characters in file names.
        assert_eq!(
            line(
                "my keys/it's $HOME.pub",
                Some("my keys/it's $HOME-cert.pub")
            ),
            "  ssh -i 'my keys/it'\\''s $HOME' breakglass@HOST"
        );
        assert_eq!(
            line("~x.pub", Some("~x-cert.pub")),
            "  ssh -i './~x' breakglass@HOST"
        );
        assert_eq!(
            line(
                "a\u{1b}[2Jb/k\u{202e}.pub",
                Some("a\u{1b}[2Jb/k\u{202e}-cert.pub")
            ),
            "  ssh -i 'a'$'\\x1b''[2Jb/k'$'\\xe2\\x80\\xae' breakglass@HOST"
        );
        // ssh's tokens: % doubled, and IdentityFile instead of -i.
        assert_eq!(
            line("p%d/alice.pub", Some("c%h.pub")),
            "  ssh -o IdentityFile=p%%d/alice -o CertificateFile=c%%h.pub breakglass@HOST"
        );
        // Stdout: save it beside the key.
        let both = lines(&[one("alice.pub", None)], home(), false);
        assert_eq!(
            both[0],
            "Hand the certificate to the requester: they save the certificate from stdout as alice-cert.pub beside the private key alice, and log in with (HOST: the server):"
        );
        assert_eq!(both[1], "  ssh -i alice breakglass@HOST");
        let json = lines(&[one("alice.pub", None)], home(), true);
        assert!(
            json[0].contains("the \"certificate\" of the JSON record on stdout"),
            "{}",
            json[0]
        );
        // Stdin: the usual name of the key type.
        let stdin = lines(&[one("-", None)], home(), false);
        assert_eq!(
            stdin[0],
            "Hand the certificate to the requester: they save the certificate from stdout as KEY-cert.pub beside their private key KEY (usually ~/.ssh/id_ed25519-cert.pub), and log in with (HOST: the server):"
        );
        assert_eq!(stdin[1], "  ssh -i ~/.ssh/id_ed25519 breakglass@HOST");
        let stdin = lines(&[one("-", Some("/home/custodian/c.pub"))], home(), false);
        assert!(
            stdin[0].contains("save ~/c.pub as KEY-cert.pub"),
            "{}",
            stdin[0]
        );
        let mut rsa = one("-", None);
        rsa.algorithm = KeyAlgorithm::Rsa { hash: None };
        assert_eq!(
            lines(&[rsa], home(), false)[1],
            "  ssh -i ~/.ssh/id_rsa breakglass@HOST"
        );
        // A key file not named KEY.pub: its private key is not known either.
        let odd = lines(&[one("alicekey", Some("alicekey-cert.pub"))], home(), false);
        assert!(
            odd[0].contains("save alicekey-cert.pub (for the key in alicekey) as KEY-cert.pub"),
            "{}",
            odd[0]
        );
        // The user: the first principal, one word.
        let mut odd_user = one("alice.pub", Some("alice-cert.pub"));
        odd_user.user = "o'brien";
        assert_eq!(
            lines(&[odd_user], home(), false)[1],
            "  ssh -i alice 'o'\\''brien@HOST'"
        );
        let mut dash = one("alice.pub", Some("alice-cert.pub"));
        dash.user = "-oProxyCommand=x";
        assert_eq!(
            lines(&[dash], home(), false)[1],
            "  ssh -i alice -l -oProxyCommand=x HOST"
        );
    }

    /// What ssh itself does with a path or a user, beyond the shell: it expands `${VAR}` in
    /// `-i` and `CertificateFile` (no escape exists), reads a `-o` value that starts with `#`
    /// as a comment ("Missing argument"), expands a leading `~` also inside its quotes, and
    /// reads `ssh://…@HOST` as a URI (another user). None of these may be in a printed command.
    #[test]
    fn what_ssh_itself_expands_is_never_in_the_command() {
        let got = |input, output| lines(&[one(input, output)], home(), false);
        // ${VAR} in the key's name: ssh would open another file; the private key cannot be
        // named on the command line, so the requester is told to save it under the usual name.
        let l = got("k${HOME}/alice.pub", Some("k${HOME}/alice-cert.pub"));
        assert_eq!(l[1], "  ssh -i ~/.ssh/id_ed25519 breakglass@HOST", "{l:?}");
        assert!(
            l[0].contains("as KEY-cert.pub beside their private key KEY"),
            "{l:?}"
        );
        let l = got("/home/custodian/a${X}/alice.pub", None);
        assert!(!l[1].contains("${"), "{l:?}");
        // ${VAR} in the certificate's name: saved beside the key under ssh's own name.
        let l = got("alice.pub", Some("c${HOME}.pub"));
        assert_eq!(l[1], "  ssh -i alice breakglass@HOST", "{l:?}");
        assert!(
            l[0].contains("save 'c${HOME}.pub' as alice-cert.pub beside the private key alice"),
            "{l:?}"
        );
        // A leading # in a -o value: ./ first.
        let l = got("alice.pub", Some("#c.pub"));
        assert_eq!(
            l[1],
            "  ssh -i alice -o 'CertificateFile=./#c.pub' breakglass@HOST"
        );
        let l = got("p%d/alice.pub", Some("#c 1.pub"));
        assert_eq!(
            l[1],
            "  ssh -o IdentityFile=p%%d/alice -o 'CertificateFile=\"./#c 1.pub\"' breakglass@HOST"
        );
        // A relative path starting with ~ that ssh's parser needs quoted: ./ inside the quotes.
        let l = got("alice.pub", Some("~a b.pub"));
        assert_eq!(
            l[1],
            "  ssh -i alice -o 'CertificateFile=\"./~a b.pub\"' breakglass@HOST"
        );
        // A user ssh would read as a URI: -l.
        for user in ["ssh://root", "SSH://root"] {
            let mut uri = one("alice.pub", Some("alice-cert.pub"));
            uri.user = user;
            assert_eq!(
                lines(&[uri], home(), false)[1],
                format!("  ssh -i alice -l {user} HOST")
            );
        }
    }

    /// ssh's own parser reads each `-o` value of a printed command as the path it stands for
    /// (`ssh -G` parses the options, the way a login does, without connecting).
    #[test]
    fn ssh_parses_the_options_as_printed() {
        if std::process::Command::new("ssh")
            .arg("-V")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED: no ssh");
            return;
        }
        for cert in ["#c.pub", "#c 1.pub", "~a b.pub", "a \"q\" b.pub", "c%h.pub"] {
            let l = lines(&[one("alice.pub", Some(cert))], home(), false);
            let command = l[1].trim().replacen("ssh ", "ssh -F /dev/null -G ", 1);
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(&command)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{command}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let want = if cert.starts_with(['#', '~']) {
                format!("./{cert}")
            } else {
                cert.to_string()
            };
            // -G shows the value as stored: %% still doubled.
            let want = format!("certificatefile {}", want.replace('%', "%%"));
            assert!(
                text.lines().any(|l| l == want),
                "{command}: no {want:?} in\n{text}"
            );
        }
    }

    #[test]
    fn several_certificates_one_line_each() {
        let got = lines(
            &[one("alice.pub", Some("alice-cert.pub")), one("-", None)],
            home(),
            false,
        );
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[1],
            "  serial 7 (alice-cert.pub): ssh -i alice breakglass@HOST"
        );
        assert_eq!(
            got[2],
            "  serial 7 (stdout): save the certificate from stdout as KEY-cert.pub beside their private key KEY (usually ~/.ssh/id_ed25519-cert.pub), then ssh -i ~/.ssh/id_ed25519 breakglass@HOST"
        );
    }

    #[test]
    fn shell_words_are_safe_and_exact() {
        assert_eq!(
            shell_word(b"a-b_c.d/e@f%g+h,i:j=k"),
            "a-b_c.d/e@f%g+h,i:j=k"
        );
        assert_eq!(shell_word(b"=x"), "'=x'");
        assert_eq!(shell_word(b""), "''");
        assert_eq!(shell_word(b"a b"), "'a b'");
        assert_eq!(shell_word(b"'"), "\\'");
        assert_eq!(shell_word(b"a\nb"), "'a'$'\\x0a''b'");
        assert_eq!(shell_word(b"\xff/x"), "$'\\xff''/x'");
        assert_eq!(shell_word("é".as_bytes()), "'é'");
        for word in [
            &b"plain"[..],
            b"two words",
            b"it's",
            b"$(reboot)`x`;&|<>*?[]{}!#~",
            b"\x1b[2Kforged\r",
            b"\xff\xfe",
            "\u{202e}bidi\u{2028}".as_bytes(),
            b"",
        ] {
            let shown = shell_word(word);
            assert!(crate::text::is_safe(&shown), "{shown:?}");
            // bash reads it back as exactly the bytes.
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(format!("printf %s {shown}"))
                .output()
                .unwrap();
            assert_eq!(out.stdout, word, "{shown}");
        }
    }
}
