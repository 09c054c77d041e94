//! PINs: where they come from (a URI `pin-source`, `--pin-file`, its environment variable, or
//! a no-echo prompt on the terminal) and the `Pin` type that holds one, zeroized on drop and
//! never shown by `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::fsx;
use crate::text::{visible, Esc};

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

/// Keep secrets out of core dumps, for the whole process and before any PIN is read: the
/// core size limit (soft and hard) is set to 0, and the process is made non-dumpable
/// (`PR_SET_DUMPABLE` 0), which also stops other processes of the same user from attaching
/// a debugger or reading its memory through /proc. A crash inside the token library then
/// leaves no copy of the PIN on disk.
pub fn forbid_core_dumps() -> Result<()> {
    use rustix::process::{set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit};
    let fail = |what: &str, e: rustix::io::Errno| {
        Error::io(
            format!("cannot {what}, so a crash could write the PIN to disk"),
            e.into(),
        )
    };
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| fail("turn off core dumps (RLIMIT_CORE)", e))?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| fail("make the process non-dumpable (PR_SET_DUMPABLE)", e))?;
    Ok(())
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

    /// [`PinSource::choose`] for a command that reads the PIN, and how to name the source on
    /// the screen before it is read (`pin_file_from`: `--pin-file`, or the environment
    /// variable it came from). Two different files (the URI's `pin-source` and `--pin-file`)
    /// are refused: the custodian who gives `--pin-file` means that file, and a wrong PIN in
    /// the other would cost a try.
    pub fn resolve(
        uri_source: Option<&Path>,
        pin_file: Option<&Path>,
        pin_file_from: &str,
    ) -> Result<(Self, String)> {
        let shown = |p: &Path| Esc(&p.to_string_lossy()).to_string();
        match (uri_source, pin_file) {
            (Some(u), Some(f)) if u != f => Err(Error::usage(format!(
                "the CA URI's pin-source names the PIN file {}, and {pin_file_from} names {}: which of them holds the PIN is unclear",
                shown(u),
                shown(f)
            ))
            .with_hint(format!(
                "give one PIN file: leave {pin_file_from} out, or remove pin-source from the CA URI (--ca, BREAKGLASS_CA or the ca line of config.toml); nothing was read or tried"
            ))),
            (Some(u), _) => Ok((
                PinSource::File(u.to_path_buf()),
                format!("the file {} (pin-source of the CA URI)", shown(u)),
            )),
            (None, Some(f)) => Ok((
                PinSource::File(f.to_path_buf()),
                format!("the file {} ({pin_file_from})", shown(f)),
            )),
            (None, None) => Ok((PinSource::Prompt, "a prompt on this terminal".to_string())),
        }
    }

    /// Read the PIN, and whether its file can be read by others (the caller warns: see
    /// `cmd::read_pin`). `what` names the token in the prompt ("PIN for token 'emergency-ca': ").
    pub fn read(&self, what: &str) -> Result<(Pin, Option<LoosePinFile>)> {
        match self {
            PinSource::File(path) => read_pin_file(path),
            PinSource::Prompt => {
                // The token's description comes from the token: the prompt shows it safely.
                let value = Zeroizing::new(
                    rpassword::prompt_password(format!("PIN for {}: ", visible(what))).map_err(|e| {
                        Error::usage(format!("cannot ask for the PIN on a terminal ({e})")).with_hint(
                            "run this on a terminal, or give the PIN in a file with --pin-file PATH (or BREAKGLASS_CA_PIN_FILE)",
                        )
                    })?,
                );
                Ok((Pin::new(value)?, None))
            }
        }
    }
}

/// A PIN file that its group or other users can read: the fact, returned to the command
/// layer, which prints the warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoosePinFile {
    pub path: PathBuf,
    /// The permission bits (`0o644`).
    pub mode: u32,
}

impl fmt::Display for LoosePinFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match (self.mode & 0o040 != 0, self.mode & 0o004 != 0) {
            (true, true) => "its group and all other users",
            (true, false) => "its group",
            _ => "all other users",
        };
        let path = self.path.to_string_lossy();
        write!(
            f,
            "the PIN file {} can be read by {who} (mode {:04o}); make it private: chmod 600 {}",
            Esc(&path),
            self.mode & 0o7777,
            Esc(&path)
        )
    }
}

/// The first line of `path`, without its line ending, read with a size limit into a buffer
/// that is zeroized; and the file's permissions if others can read it.
pub fn read_pin_file(path: &Path) -> Result<(Pin, Option<LoosePinFile>)> {
    use std::os::unix::fs::PermissionsExt;
    let file = fsx::open_input(path, "PIN file")?.ok_or_else(|| {
        Error::file(
            "read the PIN file",
            path,
            std::io::ErrorKind::NotFound.into(),
        )
        .with_hint(
            "check the path given with --pin-file, BREAKGLASS_CA_PIN_FILE or pin-source=file:",
        )
    })?;
    // The permissions of the file that was opened, not of whatever the path names later.
    let mode = file
        .metadata()
        .map_err(|e| Error::file("read the PIN file", path, e))?
        .permissions()
        .mode();
    let loose = (mode & 0o044 != 0).then(|| LoosePinFile {
        path: path.to_path_buf(),
        mode,
    });
    let content = fsx::read_limited_secret(
        file,
        fsx::limit::PIN_FILE,
        &format!("PIN file {}", Esc(&path.to_string_lossy())),
    )?;
    let line = content.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| {
        Error::usage(format!(
            "the PIN file {} is not UTF-8 text",
            Esc(&path.to_string_lossy())
        ))
    })?;
    let pin = Pin::new(Zeroizing::new(text.to_owned())).map_err(|_| {
        Error::usage(format!(
            "the PIN file {} has an empty first line",
            Esc(&path.to_string_lossy())
        ))
        .with_hint("write the PIN on the first line of the file")
    })?;
    Ok((pin, loose))
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
        assert_eq!(read_pin_file(&p).unwrap().0.expose(), "123456");
        std::fs::write(&p, "9999").unwrap();
        assert_eq!(read_pin_file(&p).unwrap().0.expose(), "9999");
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

    #[test]
    fn two_different_pin_files_are_refused() {
        let (uri, flag) = (Path::new("/uri"), Path::new("/flag"));
        let err = PinSource::resolve(Some(uri), Some(flag), "--pin-file").unwrap_err();
        assert!(
            err.to_string().contains(
                "pin-source names the PIN file /uri, and --pin-file names /flag: which of them holds the PIN is unclear"
            ),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
        assert!(err.hint().unwrap().contains("nothing was read"), "{err:?}");
        let (source, said) = PinSource::resolve(Some(uri), Some(uri), "--pin-file").unwrap();
        assert_eq!(source, PinSource::File(uri.into()));
        assert_eq!(said, "the file /uri (pin-source of the CA URI)");
        let (source, said) = PinSource::resolve(None, Some(flag), "ENV").unwrap();
        assert_eq!(source, PinSource::File(flag.into()));
        assert_eq!(said, "the file /flag (ENV)");
        let (source, said) = PinSource::resolve(None, None, "--pin-file").unwrap();
        assert_eq!(
            (source, said.as_str()),
            (PinSource::Prompt, "a prompt on this terminal")
        );
        let odd = Path::new("/p\x1b[2J");
        let (_, said) = PinSource::resolve(None, Some(odd), "--pin-file").unwrap();
        assert!(crate::text::is_safe(&said), "{said:?}");
    }

    #[test]
    fn a_pin_file_others_can_read_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pin");
        std::fs::write(&p, "123456\n").unwrap();
        for (mode, who) in [
            (0o644, Some("its group and all other users")),
            (0o640, Some("its group (")),
            (0o604, Some("all other users")),
            (0o600, None),
            (0o400, None),
            (0o620, None),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let (pin, loose) = read_pin_file(&p).unwrap();
            assert_eq!(pin.expose(), "123456");
            match (loose, who) {
                (None, None) => {}
                (Some(l), Some(who)) => {
                    let text = l.to_string();
                    assert!(text.contains(who), "{mode:o}: {text}");
                    assert!(text.contains(&format!("mode {mode:04o}")), "{text}");
                    assert!(
                        text.ends_with(&format!("chmod 600 {}", p.display())),
                        "{text}"
                    );
                    assert!(!text.contains("123456"));
                }
                (l, w) => panic!("{mode:o}: {l:?} vs {w:?}"),
            }
        }
    }

    #[test]
    fn a_huge_pin_file_is_a_clear_error() {
        let err = read_pin_file(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than 4 KiB"), "{err}");
        assert!(err.contains("PIN file /dev/zero"), "{err}");
    }

    #[test]
    fn core_dumps_are_off_after_forbid_core_dumps() {
        use rustix::process::{dumpable_behavior, getrlimit, DumpableBehavior, Resource};
        forbid_core_dumps().unwrap();
        let limit = getrlimit(Resource::Core);
        assert_eq!((limit.current, limit.maximum), (Some(0), Some(0)));
        assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
        // Idempotent: a second call (another command in the same process) still succeeds.
        forbid_core_dumps().unwrap();
    }
}
