//! The one error type of the crate: every failure a custodian can meet, with its cause kept
//! and, where the next step is not obvious, a hint line saying what to do.
//!
//! A failure the tool describes in its own words is a [`Error::Message`] of some [`Kind`]; a
//! failure of a library (PKCS#11, the YubiKey, a file, an OpenSSH encoding, TOML, JSON, PNG)
//! keeps that library's error as its `source`, under a context that says what was being done.
//! Every variant carries a hint slot, so [`Error::with_hint`] works on all of them.

use crate::text::ShowPath;
use std::path::Path;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a [`Error::Message`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The command line was wrong (exit code 2).
    Usage,
    /// The issuance policy refused the request (shown after "refused: ").
    Refused,
    /// A certificate or ledger failed a check (`inspect`, `log verify`).
    Invalid,
    /// A token or key could not be selected, or is in a state we cannot use.
    Token,
    /// The issuance ledger is damaged or inconsistent.
    Ledger,
    /// The configuration file is unreadable or invalid.
    Config,
}

impl Kind {
    /// What the message is shown after.
    fn prefix(self) -> &'static str {
        match self {
            Kind::Refused => "refused: ",
            Kind::Usage | Kind::Invalid | Kind::Token | Kind::Ledger | Kind::Config => "",
        }
    }
}

/// Every error the tool reports. Messages are lowercase and specific; `hint()` gives the next
/// step. No variant ever carries a PIN.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A failure described in words (see [`Kind`]).
    #[error("{}{message}", kind.prefix())]
    Message {
        kind: Kind,
        message: String,
        hint: Option<String>,
    },

    /// The PIN was wrong; the token said how many tries are left if it could.
    #[error("wrong PIN{}", tries_text(*.tries_left))]
    WrongPin {
        tries_left: Option<u32>,
        hint: Option<String>,
    },

    /// A PKCS#11 call failed.
    #[error("{context}: {source}")]
    Pkcs11 {
        context: String,
        #[source]
        source: cryptoki::error::Error,
        hint: Option<String>,
    },

    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
        hint: Option<String>,
    },

    /// An OpenSSH key or certificate could not be parsed, built or verified.
    #[error("{context}: {source}")]
    Ssh {
        context: String,
        #[source]
        source: ssh_key::Error,
        hint: Option<String>,
    },

    /// SIGINT, SIGTERM or SIGHUP came while the token was in use; the command stopped at a safe
    /// point. `message` says what was and was not issued. Exit code 128 + the signal.
    #[error("interrupted ({}) {message}", crate::signals::name(*signal))]
    Interrupted {
        signal: i32,
        message: String,
        hint: Option<String>,
    },

    /// A YubiKey (PIV) call failed.
    #[error("{context}: {source}")]
    Yubikey {
        context: String,
        #[source]
        source: yubikey::Error,
        hint: Option<String>,
    },

    /// A TOML document (config.toml) could not be read: the parser's message without its
    /// excerpt of the file. (Boxed: it is the largest cause by far.)
    #[error("{context}: {}", source.message())]
    TomlRead {
        context: String,
        #[source]
        source: Box<toml::de::Error>,
        hint: Option<String>,
    },

    /// A TOML document could not be written.
    #[error("{context}: {source}")]
    TomlWrite {
        context: String,
        #[source]
        source: toml::ser::Error,
        hint: Option<String>,
    },

    /// A JSON document could not be built or read.
    #[error("{context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
        hint: Option<String>,
    },

    /// A PNG image could not be encoded.
    #[error("{context}: {source}")]
    Png {
        context: String,
        #[source]
        source: png::EncodingError,
        hint: Option<String>,
    },
}

fn tries_text(tries: Option<u32>) -> String {
    match tries {
        Some(0) => ": the PIN is now blocked".into(),
        Some(1) => ": 1 try left before the PIN is blocked".into(),
        Some(n) => format!(": {n} tries left"),
        None => String::new(),
    }
}

/// The `hint` field of any variant (every variant has one), by reference or mutably.
macro_rules! hint_of {
    ($error:expr) => {
        match $error {
            Error::Message { hint, .. }
            | Error::WrongPin { hint, .. }
            | Error::Pkcs11 { hint, .. }
            | Error::Io { hint, .. }
            | Error::Ssh { hint, .. }
            | Error::Interrupted { hint, .. }
            | Error::Yubikey { hint, .. }
            | Error::TomlRead { hint, .. }
            | Error::TomlWrite { hint, .. }
            | Error::Json { hint, .. }
            | Error::Png { hint, .. } => hint,
        }
    };
}

impl Error {
    /// A [`Error::Message`] of `kind`, without a hint.
    pub fn message(kind: Kind, message: impl Into<String>) -> Self {
        Error::Message {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::message(Kind::Usage, message)
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Error::message(Kind::Refused, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::message(Kind::Invalid, message)
    }

    pub fn token(message: impl Into<String>) -> Self {
        Error::message(Kind::Token, message)
    }

    pub fn ledger(message: impl Into<String>) -> Self {
        Error::message(Kind::Ledger, message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Error::message(Kind::Config, message)
    }

    /// A wrong PIN, with the tries left if the token said.
    pub fn wrong_pin(tries_left: Option<u32>) -> Self {
        Error::WrongPin {
            tries_left,
            hint: None,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
            hint: None,
        }
    }

    /// An I/O error about a file: "cannot <verb> <path>: <cause>".
    pub fn file(verb: &str, path: &Path, source: std::io::Error) -> Self {
        Error::io(format!("cannot {verb} {}", path.shown()), source)
    }

    pub fn ssh(context: impl Into<String>, source: ssh_key::Error) -> Self {
        Error::Ssh {
            context: context.into(),
            source,
            hint: None,
        }
    }

    pub fn pkcs11(context: impl Into<String>, source: cryptoki::error::Error) -> Self {
        Error::Pkcs11 {
            context: context.into(),
            source,
            hint: None,
        }
    }

    /// A stop at a safe point after `signal` came (see [`crate::signals`]).
    pub fn interrupted(signal: i32, message: impl Into<String>) -> Self {
        Error::Interrupted {
            signal,
            message: message.into(),
            hint: None,
        }
    }

    pub fn yubikey(context: impl Into<String>, source: yubikey::Error) -> Self {
        Error::Yubikey {
            context: context.into(),
            source,
            hint: None,
        }
    }

    pub fn toml_read(context: impl Into<String>, source: toml::de::Error) -> Self {
        Error::TomlRead {
            context: context.into(),
            source: Box::new(source),
            hint: None,
        }
    }

    pub fn toml_write(context: impl Into<String>, source: toml::ser::Error) -> Self {
        Error::TomlWrite {
            context: context.into(),
            source,
            hint: None,
        }
    }

    pub fn json(context: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            context: context.into(),
            source,
            hint: None,
        }
    }

    pub fn png(context: impl Into<String>, source: png::EncodingError) -> Self {
        Error::Png {
            context: context.into(),
            source,
            hint: None,
        }
    }

    /// The kind of a [`Error::Message`]; `None` for the other variants.
    pub fn kind(&self) -> Option<Kind> {
        match self {
            Error::Message { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The hint slot every variant has.
    fn hint_slot(&mut self) -> &mut Option<String> {
        hint_of!(self)
    }

    /// Attach or replace the hint line (every variant has one; a given hint replaces the
    /// default one of a wrong PIN or a PKCS#11 failure).
    #[must_use]
    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        *self.hint_slot() = Some(text.into());
        self
    }

    /// What to do next, when it is not obvious from the message: the hint given with
    /// [`Error::with_hint`], else the default for a wrong PIN or a PKCS#11 failure.
    pub fn hint(&self) -> Option<String> {
        let given: &Option<String> = hint_of!(self);
        if let Some(hint) = given {
            return Some(hint.clone());
        }
        match self {
            Error::WrongPin { tries_left: Some(0), .. } => Some(
                "the PIN is blocked: unblock it with the SO PIN / PUK (see the runbook), or use the backup token".into(),
            ),
            Error::WrongPin { tries_left: Some(1), .. } => Some(
                "stop and check the PIN with the second custodian; one more wrong PIN blocks the token".into(),
            ),
            Error::WrongPin { .. } => Some("check the PIN and try again".into()),
            Error::Pkcs11 { source, .. } => pkcs11_hint(source),
            _ => None,
        }
    }

    /// The process exit code for this error: 2 for usage errors, 128 + the signal for an
    /// interruption (130 SIGINT, 143 SIGTERM, 129 SIGHUP), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Message {
                kind: Kind::Usage, ..
            } => 2,
            Error::Interrupted { signal, .. } => {
                u8::try_from(128i32.saturating_add(*signal)).unwrap_or(1)
            }
            _ => 1,
        }
    }

    /// The same error about one of several things (`what`, e.g. "key 2 of 5 (bob.pub)"),
    /// put before its message or context. A wrong PIN or an interruption is left as it is.
    #[must_use]
    pub fn about(mut self, what: &str) -> Self {
        match &mut self {
            Error::Message { message: text, .. }
            | Error::Pkcs11 { context: text, .. }
            | Error::Io { context: text, .. }
            | Error::Ssh { context: text, .. }
            | Error::Yubikey { context: text, .. }
            | Error::TomlRead { context: text, .. }
            | Error::TomlWrite { context: text, .. }
            | Error::Json { context: text, .. }
            | Error::Png { context: text, .. } => *text = format!("{what}: {text}"),
            Error::WrongPin { .. } | Error::Interrupted { .. } => {}
        }
        self
    }
}

fn pkcs11_hint(source: &cryptoki::error::Error) -> Option<String> {
    use cryptoki::error::{Error as E, RvError};
    match source {
        E::LibraryLoading(_) => Some(
            "check the module-path in the CA URI (or BREAKGLASS_CA_PKCS11_MODULE) names an installed PKCS#11 module".into(),
        ),
        E::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved, _) => {
            Some("is the token plugged in? re-insert it and try again".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn every_variant() -> Vec<Error> {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        vec![
            Error::usage("u"),
            Error::refused("r"),
            Error::invalid("i"),
            Error::token("t"),
            Error::ledger("l"),
            Error::config("c"),
            Error::wrong_pin(Some(2)),
            Error::pkcs11("p", cryptoki::error::Error::NotSupported),
            Error::io("o", io()),
            Error::ssh("s", ssh_key::Error::AlgorithmUnknown),
            Error::interrupted(2, "n"),
            Error::yubikey("y", yubikey::Error::NotFound),
            Error::toml_read("tr", toml::from_str::<toml::Value>("x =").unwrap_err()),
            Error::toml_write("tw", <toml::ser::Error as serde::ser::Error>::custom("w")),
            Error::json("j", serde_json::from_str::<u8>("x").unwrap_err()),
            Error::png("g", png::EncodingError::from(io())),
        ]
    }

    /// The messages read as before the kinds were one variant: only a refusal has a prefix.
    #[test]
    fn messages_and_exit_codes() {
        let shown: Vec<(String, u8)> = every_variant()
            .iter()
            .map(|e| (e.to_string(), e.exit_code()))
            .collect();
        let want = [
            ("u", 2),
            ("refused: r", 1),
            ("i", 1),
            ("t", 1),
            ("l", 1),
            ("c", 1),
            ("wrong PIN: 2 tries left", 1),
            ("p: Feature not supported", 1),
            ("o: gone", 1),
            ("s: unknown algorithm", 1),
            ("interrupted (SIGINT) n", 130),
            ("y: not found", 1),
        ];
        for (got, want) in shown.iter().zip(want) {
            assert_eq!((got.0.as_str(), got.1), want);
        }
        // TOML: the parser's message, not its multi-line excerpt of the file.
        assert!(!shown[12].0.contains('\n'), "{}", shown[12].0);
        assert!(shown[12].0.starts_with("tr: "), "{}", shown[12].0);
        assert_eq!(shown[13].0, "tw: w");
        assert!(
            shown[14].0.starts_with("j: expected value"),
            "{}",
            shown[14].0
        );
        assert_eq!(shown[15].0, "g: gone");
        assert_eq!(Error::usage("x").kind(), Some(Kind::Usage));
        assert_eq!(Error::refused("x").kind(), Some(Kind::Refused));
        assert_eq!(Error::wrong_pin(None).kind(), None);
    }

    /// A library failure keeps its error as the source, for a caller to look at.
    #[test]
    fn library_errors_keep_their_source() {
        for e in &every_variant()[7..] {
            if matches!(e, Error::Interrupted { .. }) {
                continue;
            }
            assert!(e.source().is_some(), "{e:?}");
        }
        let e = &every_variant()[15];
        let png = e.source().unwrap().downcast_ref::<png::EncodingError>();
        assert!(matches!(png, Some(png::EncodingError::IoError(_))), "{e:?}");
    }

    #[test]
    fn with_hint_works_on_every_variant() {
        for e in every_variant() {
            let shown = e.to_string();
            let e = e.with_hint("do this");
            assert_eq!(e.hint().as_deref(), Some("do this"), "{e:?}");
            assert_eq!(e.to_string(), shown);
        }
        // Without one, a wrong PIN and some PKCS#11 failures still have their default.
        assert!(Error::wrong_pin(Some(1))
            .hint()
            .unwrap()
            .contains("one more wrong PIN"));
        assert_eq!(Error::io("o", std::io::Error::other("x")).hint(), None);
    }

    #[test]
    fn about_names_which_one_and_keeps_the_rest() {
        let e = Error::refused("the key is too short")
            .with_hint("h")
            .about("key 2 of 3 (bob.pub)");
        assert_eq!(
            e.to_string(),
            "refused: key 2 of 3 (bob.pub): the key is too short"
        );
        assert_eq!(e.hint().as_deref(), Some("h"));
        assert_eq!(e.kind(), Some(Kind::Refused));
        for e in every_variant() {
            let shown = e.to_string();
            let exit = e.exit_code();
            let e = e.about("k");
            assert_eq!(e.exit_code(), exit);
            match e {
                Error::WrongPin { .. } | Error::Interrupted { .. } => {
                    assert_eq!(e.to_string(), shown)
                }
                _ => assert!(e.to_string().contains("k: "), "{e}"),
            }
        }
    }
}
