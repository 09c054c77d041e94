//! Everything about `checkpoints.jsonl`. After each issuance of a format-1 record (0.1.0 and
//! 0.2.0) the CA token signed the chain head as an SSH signature (SSHSIG, namespace
//! `breakglass-ca-ledger`), so that nobody without the token could rewrite the ledger
//! consistently; anyone can check one with `ssh-keygen -Y verify`. Format-2 records carry
//! their binding in their certificates instead (see `binding.rs`), and no checkpoint is
//! signed any more; the checkpoints of an old ledger are still checked. Here are the checking
//! of one checkpoint (and, for tests that build old ledgers, its signing), the one parser of
//! the file's lines, its newest checkpoint against the ledger, and the append (with the repair
//! of a crashed one).

use std::fs::OpenOptions;
use std::path::Path;

use serde::{Deserialize, Serialize};
use ssh_key::public::KeyData;
use ssh_key::{PublicKey, SshSig};

use super::chain::broken;
use super::jsonl::read_tail;
use super::BROKEN_HINT;
use crate::error::{Error, Result};
use crate::fsx;
use crate::text::ShowPath;

/// The SSHSIG namespace of checkpoint signatures.
pub const NAMESPACE: &str = "breakglass-ca-ledger";
/// Where checkpoints are kept, beside the ledger.
pub const FILE: &str = "checkpoints.jsonl";

/// The token's signature over the ledger head after serial `serial`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub serial: u64,
    /// SHA-256 (hex) of the ledger line of `serial`, which by the chain covers all before it.
    pub head: String,
    /// The armored SSHSIG over [`message`].
    pub signature: String,
}

/// The exact bytes signed: short, textual, and self-describing for an auditor.
pub fn message(ca_fingerprint: &str, serial: u64, head: &str) -> String {
    format!("breakglass-ca ledger checkpoint\nca {ca_fingerprint}\nserial {serial}\nhead {head}\n")
}

/// Have the token sign the head of the ledger, as 0.1.0 did after each mint (tests
/// build such ledgers with it).
#[cfg(test)]
pub fn sign(ca: &dyn crate::backend::CaKey, serial: u64, head: &str) -> Result<Checkpoint> {
    use ssh_key::{HashAlg, LineEnding};
    let fp = crate::key::fingerprint(ca.public_key());
    let msg = message(&fp, serial, head);
    let sig = crate::backend::with_signer(ca, "cannot sign the ledger checkpoint", |signer| {
        SshSig::sign(signer, NAMESPACE, HashAlg::Sha512, msg.as_bytes())
    })?;
    let signature = sig
        .to_pem(LineEnding::LF)
        .map_err(|e| Error::ssh("cannot encode the checkpoint signature", e))?;
    Ok(Checkpoint {
        serial,
        head: head.to_string(),
        signature,
    })
}

/// Check a checkpoint's signature with the CA public key.
pub fn verify(cp: &Checkpoint, ca: &KeyData) -> Result<()> {
    let fp = crate::key::fingerprint(ca);
    let sig = SshSig::from_pem(cp.signature.as_bytes()).map_err(|e| {
        Error::invalid(format!(
            "the checkpoint for serial {} cannot be read: {e}",
            cp.serial
        ))
    })?;
    PublicKey::from(ca.clone())
        .verify(
            NAMESPACE,
            message(&fp, cp.serial, &cp.head).as_bytes(),
            &sig,
        )
        .map_err(|_| {
            Error::invalid(format!(
                "the checkpoint for serial {} is not signed by this CA",
                cp.serial
            ))
        })
}

/// The one parser of a line of `checkpoints.jsonl` (without its newline).
pub fn parse_line(line: &[u8]) -> serde_json::Result<Checkpoint> {
    serde_json::from_slice(line)
}

/// The lines of `checkpoints.jsonl` (or of its end, from a line start), as every reader sees
/// them: a last line that lost only its newline counts, a torn one does not.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lines<'a> {
    /// Every complete line (no newline) in order, with a last one that lost only its newline.
    pub complete: Vec<&'a [u8]>,
    /// A torn last line (unterminated, and not a checkpoint) was left out.
    pub torn: bool,
}

/// Split the bytes of `checkpoints.jsonl` into its [`Lines`].
pub fn lines(bytes: &[u8]) -> Lines<'_> {
    let mut complete: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let last = complete.pop().unwrap_or_default(); // after the last newline
    let torn = !last.is_empty() && parse_line(last).is_err();
    if !last.is_empty() && !torn {
        complete.push(last);
    }
    Lines { complete, torn }
}

/// The newest signed checkpoint in `dir`, if any: the last of the [`lines`] of the end of
/// `checkpoints.jsonl`.
pub fn newest(dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(FILE);
    let Some(file) = fsx::open_private(&path, OpenOptions::new().read(true))? else {
        return Ok(None);
    };
    let (bytes, _) = read_tail(&file, &path)?;
    let Some(last) = lines(&bytes).complete.last().copied() else {
        return Ok(None);
    };
    parse_line(last).map(Some).map_err(|e| {
        Error::ledger(format!(
            "the newest checkpoint in {} cannot be read: {e}",
            path.shown()
        ))
        .with_hint(BROKEN_HINT)
    })
}

/// The ledger in `dir` must still hold what the token last signed: a record at the
/// checkpoint's serial (records cut off the end would otherwise get their serials reissued),
/// with the signed hash when it is the newest record. `newest` is the newest issuance
/// record's serial and line hash (`None` when that line was not read: only its serial is
/// compared). `required` (`checkpoints = true`): records without any checkpoint (no
/// `checkpoints.jsonl`, or one that holds none) are an error.
pub fn check_ledger(
    dir: &Path,
    newest_record: Option<(u64, Option<&str>)>,
    required: bool,
) -> Result<()> {
    let Some(cp) = newest(dir)? else {
        // No checkpoint at all: the file was removed or emptied (the same to a forger).
        return match (required, newest_record) {
            (true, Some((last, _))) => Err(missing(&dir.join(FILE), last)),
            _ => Ok(()),
        };
    };
    let (last, head) = newest_record.unwrap_or((0, Some("")));
    if cp.serial > last {
        return Err(broken(format!(
            "the token signed the ledger up to serial {}, but it now ends at serial {last}: records were removed from the end, and their serials must not be issued again",
            cp.serial
        )));
    }
    if cp.serial == last && head.is_some_and(|h| cp.head != h) {
        return Err(broken(format!(
            "record serial {last} differs from what the token signed: it was edited"
        )));
    }
    Ok(())
}

/// The error for records without `checkpoints.jsonl` (at `path`) while config.toml says
/// `checkpoints = true`.
pub fn missing(path: &Path, last_serial: u64) -> Error {
    Error::ledger(format!(
        "the ledger has records up to serial {last_serial}, but {} is missing or holds no checkpoint although config.toml has checkpoints = true: the token's signatures over the ledger were removed",
        path.shown()
    ))
    .with_hint(
        "restore checkpoints.jsonl from the backup kept with the token, then run 'breakglass-ca log verify'. Only if this CA ran with checkpoints = false until now: set checkpoints = false in config.toml again (its records are then checked by their certificates' signatures only)",
    )
}

/// Create an empty `checkpoints.jsonl` in `dir` if there is none (with the first record, when
/// checkpoints are required: from then on a missing file means it was removed).
pub(super) fn create_if_missing(dir: &Path) -> Result<()> {
    let path = dir.join(FILE);
    if std::fs::symlink_metadata(&path).is_err() {
        fsx::create_private(&path, OpenOptions::new().append(true))?;
    }
    Ok(())
}

/// Append a signed checkpoint to `checkpoints.jsonl` in `dir` (the caller holds the ledger
/// lock; tests that build old ledgers). A torn last line is saved aside before it is cut; one that lost only its newline
/// gets it back.
#[cfg(test)]
pub(super) fn append(dir: &Path, cp: &Checkpoint) -> Result<()> {
    use super::jsonl::{append_line, cut, save_fragment};
    let path = dir.join(FILE);
    let file = match fsx::open_private(&path, OpenOptions::new().read(true).append(true))? {
        Some(f) => f,
        None => fsx::create_private(&path, OpenOptions::new().read(true).append(true))?,
    };
    let (bytes, start) = read_tail(&file, &path)?;
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let fragment = bytes.get(keep..).unwrap_or_default();
        if parse_line(fragment).is_ok() {
            append_line(&file, &path, b"")?;
        } else {
            save_fragment(dir, "checkpoints", fragment)?;
            cut(&file, &path, start + keep as u64)?;
        }
    }
    let line =
        serde_json::to_string(cp).map_err(|e| Error::json("cannot encode the checkpoint", e))?;
    append_line(&file, &path, line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{issue, snapshot};
    use super::*;
    use crate::backend::soft::SoftKey;
    use crate::backend::CaKey;
    use crate::ledger::Ledger;

    #[test]
    fn sign_and_verify() {
        let ca = SoftKey::new(3);
        let cp = sign(&ca, 7, "abcd").unwrap();
        assert!(cp.signature.starts_with("-----BEGIN SSH SIGNATURE-----"));
        verify(&cp, ca.public_key()).unwrap();
        let mut other = cp.clone();
        other.head = "abce".into();
        assert!(verify(&other, ca.public_key()).is_err());
        assert!(verify(&cp, SoftKey::new(4).public_key()).is_err());
    }

    #[test]
    fn one_parser_for_every_reader_of_the_file() {
        let line = |serial: u64| {
            serde_json::to_string(&Checkpoint {
                serial,
                head: "h".into(),
                signature: "s".into(),
            })
            .unwrap()
        };
        let (a, b) = (line(1), line(2));
        // Complete lines, a last one that lost only its newline, a torn one.
        let whole = format!("{a}\n{b}\n");
        assert_eq!(
            lines(whole.as_bytes()),
            Lines {
                complete: vec![a.as_bytes(), b.as_bytes()],
                torn: false
            }
        );
        let short = format!("{a}\n{b}");
        assert_eq!(lines(short.as_bytes()).complete.len(), 2);
        assert!(!lines(short.as_bytes()).torn);
        let torn = format!("{a}\n{{\"serial\":2,");
        assert_eq!(
            lines(torn.as_bytes()),
            Lines {
                complete: vec![a.as_bytes()],
                torn: true
            }
        );
        assert_eq!(lines(b""), Lines::default());
        // `newest` reads the same lines: the last complete one, or the one that lost its
        // newline; a damaged last complete line is an error, never skipped.
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(newest(dir.path()).unwrap(), None);
        for (text, serial) in [(&whole, 2), (&short, 2), (&torn, 1)] {
            std::fs::write(dir.path().join(FILE), text).unwrap();
            assert_eq!(
                newest(dir.path()).unwrap().unwrap().serial,
                serial,
                "{text}"
            );
        }
        std::fs::write(dir.path().join(FILE), format!("{a}\ngarbage\n")).unwrap();
        let err = newest(dir.path()).unwrap_err().to_string();
        assert!(err.contains("the newest checkpoint in"), "{err}");
    }

    #[test]
    fn a_torn_checkpoint_line_is_saved_aside_before_it_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let cp = |serial| Checkpoint {
            serial,
            head: "h".into(),
            signature: "s".into(),
        };
        append(dir.path(), &cp(1)).unwrap();
        let path = dir.path().join(FILE);
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"{\"serial\":2,\"he");
        std::fs::write(&path, &text).unwrap();
        append(dir.path(), &cp(2)).unwrap();
        let files = snapshot(dir.path());
        let side = files
            .iter()
            .find(|(name, _)| name.starts_with("checkpoints.torn-"))
            .unwrap();
        assert_eq!(side.1, b"{\"serial\":2,\"he");
        let text = std::fs::read(&path).unwrap();
        assert_eq!(lines(&text).complete.len(), 2);
        // A last line that lost only its newline gets it back.
        std::fs::write(&path, &text[..text.len() - 1]).unwrap();
        append(dir.path(), &cp(3)).unwrap();
        let text = std::fs::read(&path).unwrap();
        let all: Vec<u64> = lines(&text)
            .complete
            .iter()
            .map(|l| parse_line(l).unwrap().serial)
            .collect();
        assert_eq!(all, [1, 2, 3]);
    }

    #[test]
    fn with_checkpoints_on_records_without_the_checkpoint_file_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path()).require_checkpoints(true);
        issue(&ledger, "CA");
        // The first record creates the checkpoint file; this test signs no checkpoint into it,
        // and a file that holds none is as good as a removed one.
        let cps = dir.path().join(FILE);
        assert_eq!(std::fs::read(&cps).unwrap(), b"");
        for removed in [false, true] {
            if removed {
                std::fs::remove_file(&cps).unwrap();
            }
            let before = snapshot(dir.path());
            let err = ledger.lock("CA").err().unwrap();
            assert!(
                err.to_string()
                    .contains("checkpoints.jsonl is missing or holds no checkpoint"),
                "{err}"
            );
            assert!(err.hint().unwrap().contains("restore checkpoints.jsonl"));
            assert_eq!(snapshot(dir.path()), before);
            let err = check_ledger(dir.path(), Some((1, Some("h"))), true).unwrap_err();
            assert!(err.to_string().contains("is missing"), "{err}");
        }
        // Without the setting, the same ledger is continued.
        Ledger::new(dir.path()).lock("CA").unwrap();
    }
}
