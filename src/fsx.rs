//! Safe file I/O, in one place: every input is read with a size limit (so `/dev/zero` or a
//! huge file is a clear error, not an out-of-memory kill); every output is written atomically
//! (a new temporary file with a random name, fsynced, its mode set exactly, renamed into
//! place, the directory fsynced) and never through a symbolic link; the state directory's
//! files are opened without following a link, and an output path inside the state directory
//! is refused.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::text::ShowPath;

/// The mode of every file the tool creates in the state directory, whatever the umask.
pub const PRIVATE_FILE: u32 = 0o600;
/// The mode of the state directory, whatever the umask.
pub const PRIVATE_DIR: u32 = 0o700;

/// Limits for the inputs the tool reads.
pub mod limit {
    /// A public key or certificate file: the largest OpenSSH key (RSA-16384) is about 3 KiB.
    pub const KEY_FILE: u64 = 64 * 1024;
    /// A PIN file.
    pub const PIN_FILE: u64 = 4 * 1024;
    /// `config.toml`.
    pub const CONFIG: u64 = 1024 * 1024;
    /// `ledger.jsonl` or `checkpoints.jsonl`: some 300,000 records.
    pub const LEDGER: u64 = 1024 * 1024 * 1024;
    /// A KRL file (`krl --check -f`): a ledger's KRL is a few KiB; OpenSSH reads up to 128 MiB.
    pub const KRL: u64 = 16 * 1024 * 1024;
    /// A list of public key lines (`revoke --requester-key FILE`): as much as one ledger line
    /// can hold (thousands of keys).
    pub const KEY_LIST: u64 = 1024 * 1024;
    /// A scan, photo or screenshot of QR codes (`import-qr`): a phone photo is 2-10 MiB, an
    /// A4 page scanned at 600 dpi as greyscale PNG about 10 MiB.
    pub const IMAGE: u64 = 50 * 1024 * 1024;
}

/// Read at most `limit` bytes from `reader`; more is an error naming `what`.
pub fn read_limited(mut reader: impl Read, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .by_ref()
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("cannot read the {what}"), e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit, what));
    }
    Ok(bytes)
}

/// The error for an input larger than `limit` bytes.
pub fn too_large(limit: u64, what: &str) -> Error {
    Error::usage(format!(
        "the {what} is larger than {} KiB; refusing to read it",
        limit / 1024
    ))
    .with_hint("check the file name: this is not the file that was meant")
}

/// [`read_limited`] for a secret (a PIN, a management key): read into one buffer allocated
/// up front and zeroized on drop, so no reallocation leaves a copy behind in freed memory.
pub fn read_limited_secret(
    mut reader: impl Read,
    limit: u64,
    what: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let size = usize::try_from(limit)
        .ok()
        .and_then(|l| l.checked_add(1))
        .ok_or_else(|| too_large(limit, what))?;
    let mut buf = zeroize::Zeroizing::new(vec![0u8; size]);
    let mut len = 0;
    while len < size {
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("cannot read the {what}"), e)),
        }
    }
    if len as u64 > limit {
        return Err(too_large(limit, what));
    }
    buf.truncate(len);
    Ok(buf)
}

/// Read the file at `path`, at most `limit` bytes. `Ok(None)` if it does not exist.
pub fn read_file_limited(path: &Path, limit: u64, what: &str) -> Result<Option<Vec<u8>>> {
    let Some(file) = open_input(path, what)? else {
        return Ok(None);
    };
    read_limited(file, limit, &format!("{what} {}", path.shown())).map(Some)
}

/// Open an input file (a key, a certificate, a PIN file, a management key file) without
/// waiting: a FIFO, socket or directory is refused at once instead of blocking the command
/// (a FIFO with no writer would hang `mint` while it holds the ledger lock). `Ok(None)` if
/// it does not exist.
pub fn open_input(path: &Path, what: &str) -> Result<Option<File>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file(&format!("read the {what}"), path, e)),
    };
    let kind = file
        .metadata()
        .map_err(|e| Error::file(&format!("read the {what}"), path, e))?
        .file_type();
    use std::os::unix::fs::FileTypeExt;
    let refused = if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() || kind.is_socket() {
        Some("a pipe or socket")
    } else {
        None
    };
    match refused {
        Some(kind) => Err(Error::usage(format!(
            "the {what} {} is {kind}, not a file",
            crate::text::escape(&path.to_string_lossy())
        ))
        .with_hint("give the file itself; to pass text through a pipe, use - (standard input) where the command takes it")),
        None => Ok(Some(file)),
    }
}

/// Read a UTF-8 text input (`-` for stdin), at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64, what: &str) -> Result<String> {
    let bytes = if path == Path::new("-") {
        read_limited(std::io::stdin().lock(), limit, &format!("{what} on stdin"))?
    } else {
        read_file_limited(path, limit, what)?.ok_or_else(|| {
            Error::file(
                &format!("read the {what}"),
                path,
                std::io::ErrorKind::NotFound.into(),
            )
        })?
    };
    String::from_utf8(bytes).map_err(|_| {
        Error::usage(format!("the {what} {} is not UTF-8 text", path.shown()))
            .with_hint("give the text file itself (an OpenSSH .pub file is one line of ASCII)")
    })
}

/// Write a file so that readers see the old or the new content, never half of it: a new
/// temporary file with a random name in the same directory (created exclusively, so nothing
/// planted there is followed), the content, its mode set to exactly `mode` (whatever the
/// umask), fsync, rename over `path`, fsync of the directory. A symbolic link or anything but
/// a regular file at `path` is refused, never replaced or followed.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    write_file(path, content, mode, true, None)
}

/// Like [`write_atomic`], but `path` must not exist: an existing file is never replaced.
pub fn write_new(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    write_file(path, content, mode, false, None)
}

/// Write an output (a certificate, a QR code, exported text) atomically, never into the state
/// directory `state_dir`. The check is made on the directory actually written into, opened
/// once, and every later step goes through that open directory: a directory of the path
/// swapped for a link after the check (while the custodian typed the PIN) changes nothing.
pub fn write_output(path: &Path, content: &[u8], mode: u32, state_dir: &Path) -> Result<()> {
    write_file(path, content, mode, true, Some(state_dir))
}

fn write_file(
    path: &Path,
    content: &[u8],
    mode: u32,
    replace: bool,
    outside: Option<&Path>,
) -> Result<()> {
    use std::os::fd::AsRawFd;
    let dir_path = parent_dir(path);
    let name = path.file_name().ok_or_else(|| {
        Error::usage(format!("{} does not name a file", path.shown()))
            .with_hint("give the path of a file, e.g. DIR/NAME")
    })?;
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir_path)
        .map_err(|e| Error::file("open the directory", dir_path, e))?;
    if let Some(state_dir) = outside {
        let here = dir
            .metadata()
            .map_err(|e| Error::file("examine", dir_path, e))?;
        if let Ok(state) = std::fs::metadata(state_dir) {
            if (here.dev(), here.ino()) == (state.dev(), state.ino()) {
                return Err(Error::usage(format!(
                    "{} is inside the state directory {}; refusing to write there",
                    path.shown(),
                    state_dir.shown()
                ))
                .with_hint("the state directory holds the ledger and configuration and nothing else: write the output somewhere else"));
            }
        }
    }
    // Everything from here on is relative to the directory opened above.
    let base = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let target = base.join(name);
    check_replaceable_as(&target, path, NOT_A_PLAIN_FILE)?;
    // The name shows which file a leftover temporary belongs to; kept short for NAME_MAX.
    let short: String = name.to_string_lossy().chars().take(64).collect();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{short}."))
        .suffix(".tmp")
        .tempfile_in(&base)
        .map_err(|e| Error::file("create a temporary file in", dir_path, e))?;
    tmp.write_all(content)
        .and_then(|_| tmp.as_file().set_permissions(Permissions::from_mode(mode)))
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::file("write", path, e))?;
    let persisted = if replace {
        tmp.persist(&target).map(|_| ())
    } else {
        tmp.persist_noclobber(&target).map(|_| ())
    };
    persisted.map_err(|e| Error::file("write", path, e.error))?;
    dir.sync_all().map_err(|e| Error::file("sync", dir_path, e))
}

/// A file written in pieces (a copy too large to hold in memory) and put in place like
/// [`write_new`] by [`NewFile::finish`]: until then it is a temporary file beside `path`,
/// removed if this is dropped.
pub struct NewFile {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl NewFile {
    /// A new temporary file for `path` (which must be a plain file path, see
    /// [`check_replaceable`]), in the same directory.
    pub fn create(path: &Path) -> Result<Self> {
        check_replaceable(path, NOT_A_PLAIN_FILE)?;
        let dir = parent_dir(path);
        let name = path.file_name().ok_or_else(|| {
            Error::usage(format!("{} does not name a file", path.shown()))
                .with_hint("give the path of a file, e.g. DIR/NAME")
        })?;
        // The name shows which file a leftover temporary belongs to; kept short for NAME_MAX.
        let short: String = name.to_string_lossy().chars().take(64).collect();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{short}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| Error::file("create a temporary file in", dir, e))?;
        Ok(NewFile {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Its mode set to exactly `mode`, fsynced, renamed to its path (which must not exist),
    /// the directory fsynced.
    pub fn finish(self, mode: u32) -> Result<()> {
        self.put_in_place(mode, false)
    }

    fn put_in_place(self, mode: u32, replace: bool) -> Result<()> {
        let NewFile { tmp, path } = self;
        tmp.as_file()
            .set_permissions(Permissions::from_mode(mode))
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| Error::file("write", &path, e))?;
        let persisted = if replace {
            tmp.persist(&path).map(|_| ())
        } else {
            tmp.persist_noclobber(&path).map(|_| ())
        };
        persisted.map_err(|e| Error::file("write", &path, e.error))?;
        let dir = parent_dir(&path);
        sync_dir(dir).map_err(|e| Error::file("sync", dir, e))
    }
}

impl Write for NewFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

/// The directory a path is in (`.` for a bare name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The hint for a path that is not a plain file, when nothing better fits (a command's `-o`
/// says what it offers instead of a file: `cmd::Instead`).
pub const NOT_A_PLAIN_FILE: &str =
    "give the path of a plain file, or move away what is there (nothing was replaced)";

/// Refuse an output path that is not a plain file: renaming over a device, a FIFO or a
/// symlink would replace it with a plain file, and opening one would follow it. `hint` is the
/// refusal's hint.
pub fn check_replaceable(path: &Path, hint: &str) -> Result<()> {
    check_replaceable_as(path, path, hint)
}

/// [`check_replaceable`] of `path`, named `shown` in messages.
fn check_replaceable_as(path: &Path, shown: &Path, hint: &str) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::usage(format!(
            "{} is a symbolic link, not a regular file; refusing to follow it",
            shown.shown()
        ))
        .with_hint(hint)),
        Ok(meta) if !meta.file_type().is_file() => Err(Error::usage(format!(
            "{} exists and is not a regular file; refusing to replace it",
            shown.shown()
        ))
        .with_hint(hint)),
        _ => Ok(()),
    }
}

/// Rename `from` to `to`, which must not exist (a link, then the old name removed): never
/// over another file. The caller fsyncs the directory.
pub fn rename_new(from: &Path, to: &Path) -> Result<()> {
    std::fs::hard_link(from, to)
        .and_then(|_| std::fs::remove_file(from))
        .map_err(|e| Error::file(&format!("rename {} to", from.shown()), to, e))
}

/// fsync a directory, so that a new or renamed entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Create the state directory if it does not exist: mode 0700 exactly, whatever the umask
/// (and so are the missing directories above it).
pub fn ensure_dir(dir: &Path) -> Result<()> {
    create_dir_all(dir, PRIVATE_DIR)
}

/// Create `dir` and any missing directory above it, each with exactly `mode`.
pub fn create_dir_all(dir: &Path, mode: u32) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(Error::usage(format!("{} is not a directory", at.shown()))
                    .with_hint("give the path of a directory"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(at);
                match at.parent() {
                    Some(p) if !p.as_os_str().is_empty() => at = p,
                    _ => break,
                }
            }
            Err(e) => return Err(Error::file("examine", at, e)),
        }
    }
    missing
        .into_iter()
        .rev()
        .try_for_each(|d| create_dir(d, mode))
}

/// Create the directory `dir`, which must not exist, with exactly `mode`.
pub fn create_dir(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(dir)
        .and_then(|_| std::fs::set_permissions(dir, Permissions::from_mode(mode)))
        .map_err(|e| Error::file("create the directory", dir, e))?;
    sync_dir(parent_dir(dir)).map_err(|e| Error::file("sync", parent_dir(dir), e))
}

/// The error for a symbolic link where a state file must be.
fn symlink_refused(path: &Path) -> Error {
    Error::config(format!(
        "{} is a symbolic link; refusing to follow it",
        path.shown()
    ))
    .with_hint("the files of the state directory are never links: check where it points and what it holds, then put the file itself there (or restore the state directory from the backup)")
}

/// Open a file of the state directory (`opts` says how) without following a symbolic link
/// at `path` and without blocking on a FIFO; it must be a regular file. `Ok(None)` if it does
/// not exist (and `opts` does not create it). A file created here gets mode 0600.
pub fn open_private(path: &Path, opts: &mut OpenOptions) -> Result<Option<File>> {
    let file = match opts
        .mode(PRIVATE_FILE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(symlink_refused(path)),
        Err(e) => return Err(Error::file("open", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::file("examine", path, e))?;
    if !meta.file_type().is_file() {
        return Err(Error::config(format!(
            "{} is not a regular file; refusing to use it",
            path.shown()
        ))
        .with_hint("the files of the state directory are plain files: move this one aside and restore the file from the backup"));
    }
    Ok(Some(file))
}

/// Create a new file of the state directory, mode 0600 exactly (whatever the umask), never
/// through a link; it must not exist. The directory is fsynced, so the new entry survives a
/// crash.
pub fn create_private(path: &Path, opts: &mut OpenOptions) -> Result<File> {
    let file = open_private(path, opts.create_new(true))?
        .ok_or_else(|| Error::file("create", path, std::io::ErrorKind::NotFound.into()))?;
    file.set_permissions(Permissions::from_mode(PRIVATE_FILE))
        .and_then(|_| sync_dir(parent_dir(path)))
        .map_err(|e| Error::file("create", path, e))?;
    Ok(file)
}

/// Read a file of the state directory (never through a link), at most `limit` bytes.
/// `Ok(None)` if it does not exist.
pub fn read_private(path: &Path, limit: u64, what: &str) -> Result<Option<Vec<u8>>> {
    match open_private(path, OpenOptions::new().read(true))? {
        Some(file) => read_limited(file, limit, &format!("{what} {}", path.shown())).map(Some),
        None => Ok(None),
    }
}

/// Refuse a state directory that another user could change: one writable by its group or by
/// others, or owned by someone other than this user or root. Its `config.toml` names the
/// PKCS#11 module this tool loads, so whoever can replace that file runs code as the
/// custodian. A directory that does not exist yet is fine (it is created 0700).
pub fn check_private_dir(dir: &Path) -> Result<()> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::file("examine the state directory", dir, e)),
    };
    if !meta.is_dir() {
        return Err(Error::usage(format!(
            "the state directory {} is not a directory",
            dir.shown()
        ))
        .with_hint("point --state-dir (or BREAKGLASS_CA_STATE_DIR) at a directory"));
    }
    check_owner_and_mode(
        dir,
        &meta,
        "the state directory",
        &format!("chmod 700 {}", dir.shown()),
    )
}

/// The same rule for one file (`config.toml`), from its metadata.
pub fn check_private_file(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    check_owner_and_mode(
        path,
        meta,
        "the configuration",
        &format!("chmod 600 {}", path.shown()),
    )
}

/// Refuse to load a shared library (the PKCS#11 module) that another user could have replaced:
/// the file and every directory above it must belong to root or to this user, and be writable
/// by nobody else (a sticky directory such as /tmp excepted: others cannot rename in it).
pub fn check_trusted_code(path: &Path) -> Result<()> {
    let me = rustix::process::geteuid().as_raw();
    let Ok(real) = std::fs::canonicalize(path) else {
        return Ok(()); // the loader says clearly that it is missing
    };
    for p in real.ancestors() {
        let Ok(meta) = std::fs::metadata(p) else {
            continue;
        };
        let mode = meta.permissions().mode();
        let sticky_dir = meta.is_dir() && mode & 0o1000 != 0;
        let owner_ok = meta.uid() == 0 || meta.uid() == me;
        let writable_by_others = mode & 0o022 != 0 && !sticky_dir;
        if !owner_ok || writable_by_others {
            let why = if !owner_ok {
                format!("belongs to another user (uid {})", meta.uid())
            } else {
                "can be changed by other users".to_string()
            };
            return Err(Error::config(format!(
                "the PKCS#11 module {} cannot be trusted: {} {why}; refusing to load it",
                path.shown(),
                p.shown()
            ))
            .with_hint("this tool loads the module into the process that holds the PIN: use the module installed by the distribution (e.g. /usr/lib/softhsm/libsofthsm2.so), or make the file and its directories root's and not writable by others"));
        }
    }
    Ok(())
}

fn check_owner_and_mode(
    path: &Path,
    meta: &std::fs::Metadata,
    what: &str,
    chmod: &str,
) -> Result<()> {
    const WHY: &str = "config.toml names the PKCS#11 module this tool loads, so nobody but the custodian may be able to change it or its directory";
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(Error::config(format!(
            "{what} {} belongs to another user (uid {}); refusing to use it",
            path.shown(),
            meta.uid()
        ))
        .with_hint(format!(
            "{WHY}: use your own state directory (--state-dir), or have it owned by you (chown) after checking its files"
        )));
    }
    let writers = match meta.mode() & 0o022 {
        0 => return Ok(()),
        0o020 => "its group",
        0o002 => "all users",
        _ => "its group and all users",
    };
    Err(Error::config(format!(
        "{what} {} can be changed by {writers}; refusing to use it",
        path.shown()
    ))
    .with_hint(format!("{WHY}: check its files, then run: {chmod}")))
}

/// Refuse an output path inside the state directory (a certificate over `ledger.jsonl`, a
/// bundle among the state files), and one whose directory does not exist (before anything is
/// issued). Both are compared resolved: the output's directory canonicalised (the output need
/// not exist yet), and the state directory.
pub fn check_outside_state_dir(path: &Path, state_dir: &Path) -> Result<()> {
    let resolved = resolve_output(path)?;
    let Ok(state) = std::fs::canonicalize(state_dir) else {
        return Ok(()); // no state directory yet: nothing in it to overwrite
    };
    if resolved.starts_with(&state) {
        return Err(Error::usage(format!(
            "{} is inside the state directory {}; refusing to write there",
            path.shown(),
            state_dir.shown()
        ))
        .with_hint("the state directory holds the ledger and configuration and nothing else: write the output somewhere else"));
    }
    Ok(())
}

/// Where an output path really is: its directory canonicalised, joined with its name.
pub fn resolve_output(path: &Path) -> Result<PathBuf> {
    let ends_in_name = matches!(path.components().next_back(), Some(Component::Normal(_)));
    let (dir, name) = match path.file_name() {
        Some(name) if ends_in_name => (parent_dir(path), Some(name)),
        _ => (path, None),
    };
    let canon = std::fs::canonicalize(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::usage(format!("the directory {} does not exist", dir.shown()))
                .with_hint("create it first, or give another output path; nothing was done")
        } else {
            Error::file("resolve", dir, e)
        }
    })?;
    Ok(match name {
        Some(n) => canon.join(n),
        None => canon,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Red-team finding: a world-writable PKCS#11 module (or directory above it) was loaded.
    #[test]
    fn code_others_could_replace_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.so");
        std::fs::write(&m, b"x").unwrap();
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&m, Permissions::from_mode(0o644)).unwrap();
        check_trusted_code(&m).unwrap();
        std::fs::set_permissions(&m, Permissions::from_mode(0o666)).unwrap();
        let err = check_trusted_code(&m).unwrap_err().to_string();
        assert!(err.contains("can be changed by other users"), "{err}");
        std::fs::set_permissions(&m, Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o777)).unwrap();
        assert!(check_trusted_code(&m).is_err());
        // A sticky directory (like /tmp) above it is fine.
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o1777)).unwrap();
        check_trusted_code(&m).unwrap();
        check_trusted_code(Path::new("/usr/lib/softhsm/libsofthsm2.so")).unwrap();
    }

    /// Red-team finding: the output's directory swapped for a link to the state directory
    /// while the custodian typed the PIN made the certificate replace the ledger.
    #[test]
    fn an_output_is_never_written_into_the_state_directory_even_through_a_swapped_link() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        create_dir(&state, 0o700).unwrap();
        std::fs::write(state.join("ledger.jsonl"), "records\n").unwrap();
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        let out = shared.join("out");
        std::fs::create_dir(&out).unwrap();
        let target = out.join("ledger.jsonl");
        // Checked while `out` is a real directory...
        check_outside_state_dir(&target, &state).unwrap();
        // ...then swapped for a link to the state directory before the write.
        std::fs::rename(&out, shared.join("out.real")).unwrap();
        std::os::unix::fs::symlink(&state, &out).unwrap();
        let err = write_output(&target, b"cert\n", 0o644, &state)
            .unwrap_err()
            .to_string();
        assert!(err.contains("inside the state directory"), "{err}");
        assert_eq!(
            std::fs::read(state.join("ledger.jsonl")).unwrap(),
            b"records\n"
        );
        // An honest output is written.
        let ok = shared.join("out.real").join("c-cert.pub");
        write_output(&ok, b"cert\n", 0o644, &state).unwrap();
        assert_eq!(std::fs::read(&ok).unwrap(), b"cert\n");
    }

    #[test]
    fn over_the_limit_is_an_error() {
        let err = read_limited(std::io::repeat(0), 1024, "thing").unwrap_err();
        assert!(err.to_string().contains("larger than 1 KiB"), "{err}");
        assert_eq!(read_limited(&b"abc"[..], 3, "thing").unwrap(), b"abc");
    }

    #[test]
    fn secrets_are_read_bounded_too() {
        let err =
            read_limited_secret(std::io::repeat(b'1'), limit::PIN_FILE, "PIN file").unwrap_err();
        assert!(err.to_string().contains("larger than 4 KiB"), "{err}");
        let pin = read_limited_secret(&b"123456\n"[..], limit::PIN_FILE, "PIN file").unwrap();
        assert_eq!(&pin[..], b"123456\n");
        let exact = vec![b'7'; 4096];
        assert_eq!(
            read_limited_secret(&exact[..], limit::PIN_FILE, "PIN file")
                .unwrap()
                .len(),
            4096
        );
    }

    #[test]
    fn dev_zero_is_refused() {
        let err = read_text(Path::new("/dev/zero"), limit::KEY_FILE, "public key").unwrap_err();
        assert!(err.to_string().contains("larger than 64 KiB"), "{err}");
    }

    #[test]
    fn missing_and_not_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        assert!(read_file_limited(&p, 10, "x").unwrap().is_none());
        assert!(read_text(&p, 10, "key").is_err());
        std::fs::write(&p, b"\xff\xfe").unwrap();
        assert!(read_text(&p, 10, "key")
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn atomic_writes_set_the_exact_mode_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        // 0666 is not what the umask (022 or stricter) would leave: the mode is set exactly.
        write_atomic(&p, b"one", 0o666).unwrap();
        assert_eq!(
            (std::fs::read(&p).unwrap(), mode(&p)),
            (b"one".to_vec(), 0o666)
        );
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(
            (std::fs::read(&p).unwrap(), mode(&p)),
            (b"two".to_vec(), 0o600)
        );
        // nothing left behind
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // write_new never replaces
        assert!(write_new(&p, b"three", 0o600).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        write_new(&dir.path().join("new"), b"n", 0o640).unwrap();
        assert_eq!(mode(&dir.path().join("new")), 0o640);
    }

    #[test]
    fn atomic_writes_never_follow_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // The temporary names of the old writer, planted as links to the victim.
        let p = dir.path().join("cert.pub");
        for pid in [std::process::id(), 1, 2] {
            std::os::unix::fs::symlink(&victim, dir.path().join(format!(".cert.pub.tmp-{pid}")))
                .unwrap();
        }
        write_atomic(&p, b"cert", 0o644).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&p).unwrap(), b"cert");
        // A link at the target itself is refused, not followed and not replaced.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = write_atomic(&link, b"x", 0o644).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let err = write_atomic(dir.path(), b"x", 0o644)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn private_files_are_never_opened_through_a_link_or_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("config.toml");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        let err = read_private(&link, 100, "configuration").unwrap_err();
        assert!(
            err.to_string()
                .contains("config.toml is a symbolic link; refusing to follow it"),
            "{err}"
        );
        assert!(err.hint().is_some());
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // no reader: a plain open would block forever
            let err = read_private(&fifo, 100, "ledger").unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
        assert!(read_private(&dir.path().join("none"), 100, "x")
            .unwrap()
            .is_none());
        let created = dir.path().join("created");
        create_private(&created, OpenOptions::new().write(true)).unwrap();
        assert_eq!(mode(&created), 0o600);
        assert!(create_private(&created, OpenOptions::new().write(true)).is_err());
    }

    #[test]
    fn directories_get_their_exact_mode() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b/state");
        ensure_dir(&state).unwrap();
        for d in [dir.path().join("a"), dir.path().join("a/b"), state.clone()] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        ensure_dir(&state).unwrap(); // exists: fine
        let out = dir.path().join("out");
        create_dir(&out, 0o775).unwrap();
        assert_eq!(mode(&out), 0o775);
        assert!(create_dir(&out, 0o755).is_err());
    }

    #[test]
    fn a_state_directory_others_can_write_is_refused_with_the_chmod() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        check_private_dir(&state).unwrap(); // not there yet
        ensure_dir(&state).unwrap();
        check_private_dir(&state).unwrap();
        for (m, who) in [
            (0o770, "its group"),
            (0o707, "all users"),
            (0o1777, "its group and all users"),
        ] {
            std::fs::set_permissions(&state, Permissions::from_mode(m)).unwrap();
            let err = check_private_dir(&state).unwrap_err();
            assert!(err.to_string().contains(who), "{m:o}: {err}");
            assert!(
                err.hint()
                    .unwrap()
                    .contains(&format!("chmod 700 {}", state.display())),
                "{err:?}"
            );
        }
        std::fs::set_permissions(&state, Permissions::from_mode(0o755)).unwrap();
        check_private_dir(&state).unwrap();
        let file = dir.path().join("x");
        std::fs::write(&file, "").unwrap();
        assert!(check_private_dir(&file).is_err());
    }

    #[test]
    fn a_state_directory_of_another_user_is_refused() {
        if rustix::process::geteuid().as_raw() != 0 {
            eprintln!("SKIPPED: needs root to give a directory to another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        ensure_dir(&state).unwrap();
        std::os::unix::fs::chown(&state, Some(4242), Some(4242)).unwrap();
        let err = check_private_dir(&state).unwrap_err();
        assert!(
            err.to_string()
                .contains("belongs to another user (uid 4242)"),
            "{err}"
        );
        // root's own is fine for root; so would be a directory owned by root for any user
        std::os::unix::fs::chown(&state, Some(0), Some(0)).unwrap();
        check_private_dir(&state).unwrap();
    }

    #[test]
    fn outputs_inside_the_state_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        ensure_dir(&state.join("sub")).unwrap();
        std::fs::write(state.join("ledger.jsonl"), "").unwrap();
        let link = dir.path().join("link-to-state");
        std::os::unix::fs::symlink(&state, &link).unwrap();
        for inside in [
            state.join("ledger.jsonl"),
            state.join("new-file"),
            state.join("sub/x"),
            state.join("sub/../ledger.jsonl"),
            link.join("ledger.jsonl"),
            link.join("new"),
            state.join("sub/.."),
            state.clone(),
        ] {
            let err = check_outside_state_dir(&inside, &state).unwrap_err();
            assert!(
                err.to_string().contains("is inside the state directory"),
                "{}: {err}",
                inside.display()
            );
            assert!(err.hint().is_some());
        }
        check_outside_state_dir(&dir.path().join("cert.pub"), &state).unwrap();
        check_outside_state_dir(&dir.path().join("state2"), &state).unwrap();
        // The state directory seen through a relative path.
        let err = check_outside_state_dir(
            &dir.path().join("state/../state/x"),
            &dir.path().join("./state"),
        );
        assert!(err.is_err());
        // An output directory that does not exist is refused up front.
        let err = check_outside_state_dir(&dir.path().join("nope/cert.pub"), &state)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        // No state directory yet: nothing to protect.
        check_outside_state_dir(&dir.path().join("x"), &dir.path().join("none")).unwrap();
    }

    #[test]
    fn rename_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        assert!(rename_new(&a, &b).is_err());
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
        std::fs::remove_file(&b).unwrap();
        rename_new(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read(&b).unwrap(), b"a");
    }
}
