//! Untrusted text on a terminal: everything that comes from a key file, a certificate, the
//! ledger, config.toml or a token (comments, key IDs, reasons, principals, labels) is shown
//! through [`escape`], so that no escape sequence, carriage return, C1 control, bidi override
//! or line/paragraph separator can redraw what the custodian is checking.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must never reach a terminal raw: C0 and C1 controls and DEL, the Unicode
/// line/paragraph separators, bidi embeddings, overrides and isolates, and other invisible
/// format characters that can disguise text (zero-width spaces and joiners, BOM).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{2028}' | '\u{2029}'                // line / paragraph separator
            | '\u{200b}'..='\u{200f}'              // zero-width space/joiners, LRM, RLM
            | '\u{202a}'..='\u{202e}'              // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'              // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}'              // bidi isolates
            | '\u{061c}'                           // Arabic letter mark
            | '\u{feff}'                           // BOM / zero-width no-break space
            | '\u{fff9}'..='\u{fffb}'              // interlinear annotation
        )
}

/// Whether `s` can be shown as it is.
pub fn is_safe(s: &str) -> bool {
    !s.chars().any(is_unsafe_char)
}

/// `s` with every unsafe character made visible: `\n`, `\r`, `\t`, `\e` for ESC, and `\u{…}`
/// for the rest. A backslash that could be mistaken for one of these escapes is doubled, so
/// the shown text is unambiguous. Safe text is returned borrowed, unchanged.
pub fn escape(s: &str) -> Cow<'_, str> {
    if is_safe(s) && !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A `Display` wrapper that escapes: `format!("{}", Esc(comment))`.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

/// Escape bytes that may not be UTF-8 (a torn ledger line, a file name): invalid bytes are
/// shown as `\x..`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(&escape(chunk.valid()));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_text_is_borrowed() {
        assert!(matches!(escape("alice@laptop"), Cow::Borrowed(_)));
        assert_eq!(escape("Zoë ünïcode"), "Zoë ünïcode");
    }

    #[test]
    fn terminal_attacks_are_made_visible() {
        let fake = "bob\u{1b}[1A\u{1b}[2K\rRequester:      alice";
        assert_eq!(escape(fake), "bob\\e[1A\\e[2K\\rRequester:      alice");
        for (raw, shown) in [
            ("a\u{85}b", "a\\u{85}b"),
            ("a\u{9b}31m", "a\\u{9b}31m"),
            ("a\u{2028}b\u{2029}", "a\\u{2028}b\\u{2029}"),
            ("\u{202e}txt.exe", "\\u{202e}txt.exe"),
            ("a\u{200b}b", "a\\u{200b}b"),
            ("a\u{7f}", "a\\u{7f}"),
            ("a\0b", "a\\u{0}b"),
            ("x\\ny", "x\\\\ny"),
            ("\u{2066}i\u{2069}", "\\u{2066}i\\u{2069}"),
        ] {
            assert_eq!(escape(raw), shown, "{raw:?}");
            assert!(is_safe(&escape(raw)));
        }
    }

    #[test]
    fn bytes_that_are_not_utf8() {
        assert_eq!(escape_bytes(b"ok\xff\x1b"), "ok\\xff\\e");
    }
}
