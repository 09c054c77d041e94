//! PINs: where they come from (a URI `pin-source`, `--pin-file`, its environment variable, or
//! a no-echo prompt on the terminal) and the `Pin` type that holds one, zeroized on drop and
//! never shown by `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A PIN in memory: zeroized when dropped, redacted in `Debug`, no `Display`, no `Clone`.
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Wrap a PIN, refusing an empty one (an unreadable source must never become an empty PIN).
    pub fn new(value: Zeroizing<String>) -> Result<Self> {
        if value.is_empty() {
            return Err(Error::usage("the PIN is empty"));
        }
        Ok(Pin(value))
    }

    /// The PIN's characters, for handing to the token library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// Where the PIN will come from, decided before anything is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinSource {
    /// The first line of a file.
    File(PathBuf),
    /// A no-echo prompt on the controlling terminal.
    Prompt,
}

impl PinSource {
    /// First found wins: the URI's `pin-source`, then `--pin-file` (or its environment
    /// variable, which clap folds into the same option), then the terminal.
    pub fn choose(uri_source: Option<&Path>, pin_file: Option<&Path>) -> Self {
        match uri_source.or(pin_file) {
            Some(p) => PinSource::File(p.to_path_buf()),
            None => PinSource::Prompt,
        }
    }

    /// Read the PIN. `what` names the token in the prompt ("PIN for token 'emergency-ca': ").
    pub fn read(&self, what: &str) -> Result<Pin> {
        match self {
            PinSource::File(path) => read_pin_file(path),
            PinSource::Prompt => {
                let value = rpassword::prompt_password(format!("PIN for {what}: ")).map_err(|e| {
                    Error::usage(format!("cannot ask for the PIN on a terminal ({e})")).with_hint(
                        "run this on a terminal, or give the PIN in a file with --pin-file PATH (or BREAKGLASS_CA_PIN_FILE)",
                    )
                })?;
                Pin::new(Zeroizing::new(value))
            }
        }
    }
}

/// The first line of `path`, without its line ending.
pub fn read_pin_file(path: &Path) -> Result<Pin> {
    let content =
        Zeroizing::new(std::fs::read(path).map_err(|e| Error::file("read the PIN file", path, e))?);
    let line = content.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line)
        .map_err(|_| Error::usage(format!("the PIN file {} is not UTF-8 text", path.display())))?;
    Pin::new(Zeroizing::new(text.to_owned())).map_err(|_| {
        Error::usage(format!(
            "the PIN file {} has an empty first line",
            path.display()
        ))
        .with_hint("write the PIN on the first line of the file")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_pin() {
        let pin = Pin::new(Zeroizing::new("123456".into())).unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
        assert!(!format!("{:?}", Some(&pin)).contains("123456"));
    }

    #[test]
    fn pin_file_first_line_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pin");
        std::fs::write(&p, "123456\r\nsecond line\n").unwrap();
        assert_eq!(read_pin_file(&p).unwrap().expose(), "123456");
        std::fs::write(&p, "9999").unwrap();
        assert_eq!(read_pin_file(&p).unwrap().expose(), "9999");
    }

    #[test]
    fn empty_or_missing_pin_file_is_an_error_not_an_empty_pin() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pin");
        std::fs::write(&p, "\nx\n").unwrap();
        assert!(read_pin_file(&p)
            .unwrap_err()
            .to_string()
            .contains("empty first line"));
        let missing = dir.path().join("nope");
        let err = read_pin_file(&missing).unwrap_err().to_string();
        assert!(err.contains("cannot read the PIN file"), "{err}");
    }

    #[test]
    fn source_precedence() {
        let uri = Path::new("/uri");
        let flag = Path::new("/flag");
        assert_eq!(
            PinSource::choose(Some(uri), Some(flag)),
            PinSource::File(uri.into())
        );
        assert_eq!(
            PinSource::choose(None, Some(flag)),
            PinSource::File(flag.into())
        );
        assert_eq!(PinSource::choose(None, None), PinSource::Prompt);
    }
}
