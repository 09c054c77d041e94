//! The one error type of the crate: every failure a custodian can meet, with its cause kept
//! and, where the next step is not obvious, a hint line saying what to do.

use std::path::Path;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the tool reports. Messages are lowercase and specific; `hint()` gives the next
/// step. No variant ever carries a PIN.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line was wrong (exit code 2).
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },

    /// The issuance policy refused the request.
    #[error("refused: {message}")]
    Refused {
        message: String,
        hint: Option<String>,
    },

    /// A certificate or ledger failed a check (`inspect`, `log verify`).
    #[error("{message}")]
    Invalid {
        message: String,
        hint: Option<String>,
    },

    /// A token or key could not be selected, or is in a state we cannot use.
    #[error("{message}")]
    Token {
        message: String,
        hint: Option<String>,
    },

    /// The PIN was wrong; the token said how many tries are left if it could.
    #[error("wrong PIN{}", tries_text(*.tries_left))]
    WrongPin { tries_left: Option<u32> },

    /// A PKCS#11 call failed.
    #[error("{context}: {source}")]
    Pkcs11 {
        context: String,
        #[source]
        source: cryptoki::error::Error,
    },

    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// An OpenSSH key or certificate could not be parsed, built or verified.
    #[error("{context}: {source}")]
    Ssh {
        context: String,
        #[source]
        source: ssh_key::Error,
    },

    /// The issuance ledger is damaged or inconsistent.
    #[error("{message}")]
    Ledger {
        message: String,
        hint: Option<String>,
    },

    /// The configuration file is unreadable or invalid.
    #[error("{message}")]
    Config {
        message: String,
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
}

fn tries_text(tries: Option<u32>) -> String {
    match tries {
        Some(0) => ": the PIN is now blocked".into(),
        Some(1) => ": 1 try left before the PIN is blocked".into(),
        Some(n) => format!(": {n} tries left"),
        None => String::new(),
    }
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: None,
        }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Error::Refused {
            message: message.into(),
            hint: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid {
            message: message.into(),
            hint: None,
        }
    }

    pub fn token(message: impl Into<String>) -> Self {
        Error::Token {
            message: message.into(),
            hint: None,
        }
    }

    pub fn ledger(message: impl Into<String>) -> Self {
        Error::Ledger {
            message: message.into(),
            hint: None,
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
            hint: None,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An I/O error about a file: "cannot <verb> <path>: <cause>".
    pub fn file(verb: &str, path: &Path, source: std::io::Error) -> Self {
        Error::io(format!("cannot {verb} {}", path.display()), source)
    }

    pub fn ssh(context: impl Into<String>, source: ssh_key::Error) -> Self {
        Error::Ssh {
            context: context.into(),
            source,
        }
    }

    pub fn pkcs11(context: impl Into<String>, source: cryptoki::error::Error) -> Self {
        Error::Pkcs11 {
            context: context.into(),
            source,
        }
    }

    /// Attach or replace the hint line of the variants that carry one.
    #[must_use]
    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        match &mut self {
            Error::Usage { hint, .. }
            | Error::Refused { hint, .. }
            | Error::Invalid { hint, .. }
            | Error::Token { hint, .. }
            | Error::Ledger { hint, .. }
            | Error::Config { hint, .. }
            | Error::Interrupted { hint, .. } => *hint = Some(text.into()),
            _ => {}
        }
        self
    }

    /// What to do next, when it is not obvious from the message.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. }
            | Error::Refused { hint, .. }
            | Error::Invalid { hint, .. }
            | Error::Token { hint, .. }
            | Error::Ledger { hint, .. }
            | Error::Config { hint, .. }
            | Error::Interrupted { hint, .. } => hint.clone(),
            Error::WrongPin { tries_left: Some(0) } => Some(
                "the PIN is blocked: unblock it with the SO PIN / PUK (see the runbook), or use the backup token".into(),
            ),
            Error::WrongPin { tries_left: Some(1) } => Some(
                "stop and check the PIN with the second custodian; one more wrong PIN blocks the token".into(),
            ),
            Error::WrongPin { .. } => Some("check the PIN and try again".into()),
            Error::Pkcs11 { source, .. } => pkcs11_hint(source),
            Error::Io { .. } | Error::Ssh { .. } => None,
        }
    }

    /// The process exit code for this error: 2 for usage errors, 128 + the signal for an
    /// interruption (130 SIGINT, 143 SIGTERM, 129 SIGHUP), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage { .. } => 2,
            Error::Interrupted { signal, .. } => {
                u8::try_from(128i32.saturating_add(*signal)).unwrap_or(1)
            }
            _ => 1,
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
