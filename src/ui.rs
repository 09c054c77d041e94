//! How times and selections are shown to a custodian on stderr: every time in UTC and local
//! time, and what was selected before a PIN is asked for.
//!
//! Every line that reaches the terminal goes through [`say`] (stderr) or [`print`] (stdout):
//! text is split into lines and each line passes [`text::visible`], so no escape sequence,
//! carriage return, C1 control or bidi override can act on the terminal, whatever a caller
//! forgot to escape. Callers still escape untrusted fields with [`text::Esc`], which also makes
//! an embedded newline visible instead of starting a line of its own.

use std::io::Write;

use chrono::{DateTime, Local, Utc};
use zeroize::Zeroizing;

use crate::backend::{Note, Prompter};
use crate::error::{Error, Result};
use crate::text;

/// `2026-11-22 03:00:00 UTC (04:00:00 local, +01:00)`.
pub fn both_times(t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&Local);
    format!(
        "{} UTC ({} local, {})",
        t.format("%Y-%m-%d %H:%M:%S"),
        local.format("%Y-%m-%d %H:%M:%S"),
        local.format("%:z")
    )
}

/// `text` as terminal lines: split at `\n`, each line made safe, each ending in `\n`.
pub fn lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.split('\n') {
        out.push_str(&text::visible(line));
        out.push('\n');
    }
    out
}

/// Print a line (or lines) to stderr: progress and summaries never go to stdout.
pub fn say(line: impl AsRef<str>) {
    let _ = std::io::stderr()
        .lock()
        .write_all(lines(line.as_ref()).as_bytes());
}

/// Print text meant for a person to stdout (a listing, a description), made safe as by
/// [`say`]. Machine output that must stay byte-exact (a certificate, JSON, a QR code) goes
/// through `cmd::write_output` instead.
pub fn print(text: impl AsRef<str>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(lines(text.as_ref()).as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("cannot write to stdout", e))
}

/// The custodian's terminal, for the backends: notes on stderr through [`say`], secrets asked
/// without echo.
pub struct Terminal;

impl Prompter for Terminal {
    fn note(&self, note: &Note) {
        say(note.to_string());
    }

    fn secret(&self, prompt: &str) -> std::io::Result<Zeroizing<String>> {
        rpassword::prompt_password(prompt).map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_made_safe() {
        assert_eq!(lines("a\nb"), "a\nb\n");
        assert_eq!(lines(""), "\n");
        let shown = lines("CA token: x\u{1b}[1A\u{1b}[2K\rRequester: alice\nnext\u{9b}2J");
        assert_eq!(
            shown,
            "CA token: x\\e[1A\\e[2K\\rRequester: alice\nnext\\u{9b}2J\n"
        );
        assert!(shown.chars().all(|c| c == '\n' || !text::is_unsafe_char(c)));
    }
}
