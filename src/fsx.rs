//! Safe file I/O: every input is read with a size limit (so `/dev/zero` or a huge file is a
//! clear error, not an out-of-memory kill), and every output is written atomically.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Limits for the inputs the tool reads.
pub mod limit {
    /// A public key or certificate file: the largest OpenSSH key (RSA-16384) is about 3 KiB.
    pub const KEY_FILE: u64 = 64 * 1024;
    /// A PIN file.
    pub const PIN_FILE: u64 = 4 * 1024;
    /// `config.toml`.
    pub const CONFIG: u64 = 1024 * 1024;
}

/// Read at most `limit` bytes from `reader`; more is an error naming `what`.
pub fn read_limited(mut reader: impl Read, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .by_ref()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("cannot read the {what}"), e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit, what));
    }
    Ok(bytes)
}

fn too_large(limit: u64, what: &str) -> Error {
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
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file(&format!("read the {what}"), path, e)),
    };
    read_limited(file, limit, &format!("{what} {}", path.display())).map(Some)
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
        Error::usage(format!("the {what} {} is not UTF-8 text", path.display()))
            .with_hint("give the text file itself (an OpenSSH .pub file is one line of ASCII)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
