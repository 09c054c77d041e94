//! `import-qr`: the CA key lines from a picture of their QR codes, for the image builder, who
//! has the printed sheet (or a `pubkey --format png`) and nothing else: no state directory,
//! no token. The lines go to stdout (for `host-config --ca-pubkey`), each key's fingerprint
//! and its blocks of four to stderr; with `--expect-fingerprint` only the keys whose
//! fingerprints were given, and nothing at all when one of them is not in the pictures.

use std::path::Path;

use crate::cli::ImportQrArgs;
use crate::error::{Error, Result};
use crate::export::sheet::fingerprint_blocks;
use crate::fsx;
use crate::qrscan::{self, CaKey};
use crate::text::{Esc, ShowPath};
use crate::ui::say;

pub fn run(args: &ImportQrArgs) -> Result<()> {
    let expected = expected_fingerprints(&args.expect_fingerprints)?;
    if args.images.iter().filter(|p| *p == Path::new("-")).count() > 1 {
        return Err(Error::usage("- (standard input) was given more than once")
            .with_hint("give each picture once; stdin holds one"));
    }
    let mut keys: Vec<CaKey> = Vec::new();
    let mut sources: Vec<String> = Vec::new();
    for path in &args.images {
        let name = if path == Path::new("-") {
            "the picture on stdin".to_string()
        } else {
            path.shown()
        };
        let found = read_picture(path, &name, &keys)?;
        for key in found {
            sources.push(format!("QR code {} in {name}", key.code));
            keys.push(key);
        }
    }
    let wanted: Vec<bool> = keys
        .iter()
        .map(|k| expected.is_empty() || expected.iter().any(|(_, fp)| qrscan::matches(&k.key, fp)))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        say(format!(
            "key {} of {}: {}, {}",
            i + 1,
            keys.len(),
            key.algorithm(),
            sources[i]
        ));
        say(format!("  {}", key.fingerprint()));
        say(format!("  {}", fingerprint_blocks(&key.fingerprint())));
        if !expected.is_empty() {
            say(if wanted[i] {
                "  matches --expect-fingerprint".to_string()
            } else {
                "  not printed: its fingerprint was not given with --expect-fingerprint".to_string()
            });
        }
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|(_, fp)| !keys.iter().any(|k| qrscan::matches(&k.key, fp)))
        .map(|(typed, _)| typed)
        .collect();
    if !missing.is_empty() {
        let found: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{} (key {})", k.fingerprint(), i + 1))
            .collect();
        let missing: Vec<String> = missing.iter().map(|m| format!("'{}'", Esc(m))).collect();
        return Err(Error::refused(format!(
            "no key in the picture has the fingerprint {} given with --expect-fingerprint; found {}; nothing was printed",
            missing.join(", "),
            if found.is_empty() { "none".to_string() } else { found.join(", ") }
        ))
        .with_hint("check the fingerprint again with the second person, on the printed sheet itself; if it is right, this picture is not of that sheet: do not use its keys"));
    }
    let printed: Vec<&CaKey> = keys
        .iter()
        .zip(&wanted)
        .filter(|(_, w)| **w)
        .map(|(k, _)| k)
        .collect();
    let text: String = printed.iter().map(|k| format!("{}\n", k.line)).collect();
    crate::cmd::write_stdout(&text)?;
    if expected.is_empty() {
        say(format!(
            "printed {} CA key line(s) on stdout: before you use them, read each fingerprint above aloud against the printed sheet with a second person, and check that none of the sheet's CAs is missing (or give each with --expect-fingerprint)",
            printed.len()
        ));
    } else {
        say(format!(
            "printed the {} CA key line(s) whose fingerprint was given on stdout",
            printed.len()
        ));
    }
    Ok(())
}

/// The `--expect-fingerprint` values, each as typed and as compared.
fn expected_fingerprints(typed: &[String]) -> Result<Vec<(String, String)>> {
    typed
        .iter()
        .map(|t| match qrscan::normalise_fingerprint(t) {
            Some(fp) => Ok((t.clone(), fp)),
            None => Err(Error::usage(format!(
                "--expect-fingerprint '{}' is not a SHA256 fingerprint",
                Esc(t)
            ))
            .with_hint("give it as the sheet prints it: SHA256: and 43 characters, or the 11 blocks of four read aloud (spaces and case do not matter)")),
        })
        .collect()
}

/// The new CA keys of one picture (those not in `known`), in the sheet's order; notes on
/// stderr.
fn read_picture(path: &Path, name: &str, known: &[CaKey]) -> Result<Vec<CaKey>> {
    let about = |e: Error| e.about(name);
    let bytes = if path == Path::new("-") {
        fsx::read_limited(
            std::io::stdin().lock(),
            fsx::limit::IMAGE,
            "picture on stdin",
        )?
    } else {
        fsx::read_file_limited(path, fsx::limit::IMAGE, "picture")?.ok_or_else(|| {
            Error::file(
                "read the picture",
                path,
                std::io::ErrorKind::NotFound.into(),
            )
        })?
    };
    let picture = qrscan::decode(&bytes).map_err(about)?;
    drop(bytes);
    let (w, h) = picture.grey.dimensions();
    let format = picture.format.name();
    let scan = qrscan::find_codes(picture.grey).map_err(about)?;
    if scan.incomplete {
        return Err(Error::invalid(format!(
            "{name}: gave up looking for QR codes after {} s ({} of {} passes over the picture done, {} code(s) found); nothing was printed",
            qrscan::TIMEOUT.as_secs(),
            scan.passes.len(),
            qrscan::Variant::ALL.len(),
            scan.codes.len()
        ))
        .with_hint("crop the picture to the QR codes, or scan the sheet at 300 dpi: a smaller picture is searched faster"));
    }
    if scan.codes.is_empty() {
        let seen = match scan.unreadable {
            0 => "found no QR code".to_string(),
            n => format!("found {n} QR code(s) but could read none of them"),
        };
        return Err(Error::invalid(format!("{name}: {seen} ({format}, {w}×{h} pixels)"))
            .with_hint("photograph the codes straight on, in even light, filling most of the picture, or scan the sheet at 300 dpi; the primary CA's code alone is enough for a first try"));
    }
    if scan.unreadable > 0 {
        return Err(Error::invalid(format!(
            "{name}: found {} QR code(s) but could read only {} of them ({format}, {w}×{h} pixels); nothing was printed",
            scan.codes.len() + scan.unreadable,
            scan.codes.len()
        ))
        .with_hint("a backup CA must not be left out unnoticed: take the picture again, sharper and straight on, or scan the sheet at 300 dpi"));
    }
    let known_keys: Vec<_> = known.iter().map(|k| k.key.clone()).collect();
    let keys = qrscan::ca_keys(&scan.codes, &known_keys, &|n| {
        format!("QR code {n} in {name}")
    })?;
    say(format!(
        "{name}: {format}, {w}×{h} pixels: {} QR code(s), {} CA key(s), in the sheet's order (the primary CA first, then the backup CAs)",
        scan.codes.len(),
        keys.keys.len()
    ));
    for (n, comment) in &keys.comments {
        say(format!("note: QR code {n} in {name} also says {comment}"));
    }
    for (n, fingerprint) in &keys.repeats {
        say(format!(
            "note: QR code {n} in {name} holds {fingerprint} again; it is listed once"
        ));
    }
    for key in &keys.keys {
        if let Some(comment) = &key.dropped_comment {
            say(format!(
                "note: QR code {} in {name}: the key's comment {} is not plain text and was left out ({})",
                key.code,
                crate::export::shown_comment(comment),
                crate::export::COMMENT_RULE
            ));
        }
    }
    Ok(keys.keys)
}
