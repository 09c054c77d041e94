//! The file operations `ledger.jsonl` and `checkpoints.jsonl` share, as append-only JSON-lines
//! files: their end read from a line start (bounded), one line appended and fsynced, and the
//! repair of a crashed append (a torn fragment saved aside in a new file before it is cut).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsx;
use crate::text::ShowPath;

/// How much of the end of a file is read at first: several records of any size.
pub(super) const TAIL_CHUNK: u64 = 64 * 1024;

/// The end of the file, from a line start, holding at least three line ends (the whole file
/// if it has fewer); and the offset it starts at.
pub(super) fn read_tail(file: &File, path: &Path) -> Result<(Vec<u8>, u64)> {
    read_tail_holding(file, path, &|_| true)
}

/// [`read_tail`], reading further back until `enough` says the end read (from a line start)
/// suffices, or to the start of the file.
pub(super) fn read_tail_holding(
    file: &File,
    path: &Path,
    enough: &dyn Fn(&[u8]) -> bool,
) -> Result<(Vec<u8>, u64)> {
    let io = |e| Error::file("read", path, e);
    let len = file.metadata().map_err(io)?.len();
    if len > fsx::limit::LEDGER {
        return Err(Error::ledger(format!(
            "{} is larger than {} MiB; refusing to read it",
            path.shown(),
            fsx::limit::LEDGER / (1024 * 1024)
        ))
        .with_hint("this is not a ledger written by breakglass-ca: restore the state directory from the backup"));
    }
    let mut chunk = TAIL_CHUNK;
    loop {
        let start = len.saturating_sub(chunk);
        let bytes = read_range(file, start, len).map_err(io)?;
        if start == 0 {
            return Ok((bytes, 0));
        }
        if bytes.iter().filter(|b| **b == b'\n').count() >= 3 {
            // drop the partial first line
            let first = bytes.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
            if enough(&bytes[first..]) {
                let mut bytes = bytes;
                return Ok((bytes.split_off(first), start + first as u64));
            }
        }
        chunk = chunk.saturating_mul(4);
    }
}

/// The bytes of `file` from `start` to `end`.
pub(super) fn read_range(mut file: &File, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(start))?;
    file.take(end.saturating_sub(start))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// How many lines end before `offset` (for the line number in an error).
pub(super) fn count_lines(mut file: &File, offset: u64) -> std::io::Result<usize> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = file.take(offset);
    let mut buf = vec![0u8; 64 * 1024];
    let mut count = 0;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(count);
        }
        count += buf.iter().take(n).filter(|b| **b == b'\n').count();
    }
}

/// Append one line and fsync it (an empty `line` restores a lost final newline).
pub(super) fn append_line(mut file: &File, path: &Path, line: &[u8]) -> Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line);
    bytes.push(b'\n');
    file.write_all(&bytes)
        .and_then(|_| file.sync_data())
        .map_err(|e| Error::file("append to", path, e))
}

/// Keep a torn fragment in a new side file beside `path` (`<stem>.torn-<time>`, never one
/// that exists), fsynced, before anything is cut.
pub(super) fn save_fragment(dir: &Path, stem: &str, fragment: &[u8]) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.9fZ");
    for n in 0..100u32 {
        let name = match n {
            0 => format!("{stem}.torn-{stamp}"),
            n => format!("{stem}.torn-{stamp}-{n}"),
        };
        let side = dir.join(name);
        if std::fs::symlink_metadata(&side).is_ok() {
            continue;
        }
        fsx::write_new(&side, fragment, fsx::PRIVATE_FILE)?;
        return Ok(side);
    }
    Err(Error::ledger(format!(
        "cannot find a free name for the torn fragment of {stem} in {}",
        dir.shown()
    )))
}

/// Cut the file at `len` (a torn fragment already saved aside) and fsync it.
pub(super) fn cut(file: &File, path: &Path, len: u64) -> Result<()> {
    file.set_len(len)
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::file("repair", path, e))
}

#[cfg(test)]
mod tests {
    use super::super::testing::snapshot;
    use super::*;

    #[test]
    fn torn_fragments_never_overwrite_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let names: std::collections::BTreeSet<PathBuf> = (0..20)
            .map(|i| save_fragment(dir.path(), "ledger", format!("{i}").as_bytes()).unwrap())
            .collect();
        assert_eq!(names.len(), 20);
        assert_eq!(snapshot(dir.path()).len(), 20);
    }
}
