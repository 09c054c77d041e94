//! Untrusted text on a terminal: everything that comes from a key file, a certificate, the
//! ledger, config.toml or a token (comments, key IDs, reasons, principals, labels) is shown
//! through [`escape`], so that no escape sequence, carriage return, C1 control, bidi override
//! or line/paragraph separator can redraw what the custodian is checking.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must never reach a terminal raw: C0 and C1 controls and DEL, the Unicode
/// line/paragraph separators, bidi embeddings, overrides and isolates, other invisible
/// format characters that can disguise text (zero-width spaces and joiners, BOM, soft hyphen,
/// tag characters, variation selectors), blanks other than the space (a no-break space passes
/// for one), characters drawn as a blank (Hangul fillers, braille blank) and private use.
pub fn is_unsafe_char(c: char) -> bool {
    is_unsafe_char_0_3(c)
        || matches!(c,
            '\u{206a}'..='\u{206f}'              // deprecated format characters
            // Blanks that pass for a space (a no-break space in an option value reads as two
            // options) and characters that show as nothing or as a blank.
            | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
            | '\u{ad}'                             // soft hyphen
            | '\u{34f}'                            // combining grapheme joiner
            | '\u{600}'..='\u{605}' | '\u{6dd}' | '\u{70f}' | '\u{890}'..='\u{891}' | '\u{8e2}'
            | '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}' // Hangul fillers
            | '\u{17b4}' | '\u{17b5}'              // Khmer inherent vowels
            | '\u{180b}'..='\u{180f}'              // Mongolian selectors and vowel separator
            | '\u{2800}'                           // braille blank
            | '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}' // variation selectors
            | '\u{110bd}' | '\u{110cd}' | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e007f}'            // tag characters
            // Private use: a terminal's font draws anything there.
            | '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..='\u{10ffff}'
        )
}

/// The characters 0.3 refused in what it stored (a reason, a name): C0 and C1 controls and
/// DEL, the line/paragraph separators, bidi embeddings, overrides and isolates, zero-width
/// spaces and joiners, LRM/RLM, word joiner, invisible operators, BOM.
fn is_unsafe_char_0_3(c: char) -> bool {
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

/// Whether `s`, read back from a record an older version wrote (a revocation's reason), holds
/// only what that version let in: new input is checked with [`is_safe`], which refuses more
/// (a no-break space, a soft hyphen), but a ledger written before still verifies. It is shown
/// through [`escape`] all the same.
pub fn is_safe_stored(s: &str) -> bool {
    !s.chars().any(is_unsafe_char_0_3)
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

/// The last line of defence at every sink (stderr, stdout, a prompt): each unsafe character
/// made visible as [`escape`] shows it, everything else (backslashes included) left alone. So
/// text that was already escaped passes unchanged, and text that was not can still not act
/// on the terminal. Callers escape untrusted fields with [`Esc`]; this catches what they miss.
pub fn visible(s: &str) -> Cow<'_, str> {
    if is_safe(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_char(c) {
            out.push_str(&escape(c.encode_utf8(&mut [0; 4])));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A `Display` wrapper that escapes: `format!("{}", Esc(comment))`. Width and alignment
/// (`{:<24}`) apply to the escaped text.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&escape(self.0))
    }
}

/// A path as messages show it: [`escape`]d, so that a file name with a newline, an escape
/// sequence or a bidi override cannot forge or hide a line: `path.shown()` where
/// `path.display()` would be.
pub trait ShowPath {
    fn shown(&self) -> String;
}

impl ShowPath for std::path::Path {
    fn shown(&self) -> String {
        escape(&self.to_string_lossy()).into_owned()
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

/// JSON with every non-ASCII character written as a `\uXXXX` escape, and DEL as `\u007f`
/// (serde_json already escapes C0 controls): the output is plain printable ASCII, so C1
/// controls, bidi overrides and U+2028/U+2029 cannot act on a terminal. For YAML use
/// [`yaml_ascii`]: a YAML reader does not join the UTF-16 surrogate pairs that JSON needs for
/// characters beyond U+FFFF.
pub fn json_ascii<T: serde::Serialize + ?Sized>(
    value: &T,
    pretty: bool,
) -> serde_json::Result<String> {
    ascii(value, pretty, false)
}

/// YAML for generated files (cloud-init.yaml): the JSON of [`json_ascii`] (pretty), except
/// that characters beyond U+FFFF are written as YAML's `\UXXXXXXXX`. Every string is a
/// double-quoted scalar, every character outside printable ASCII an escape, so no value can
/// hold a raw line break (YAML also breaks lines at CR, U+0085, U+2028 and U+2029), a `#` that
/// starts a comment, or a character PyYAML refuses (DEL); PyYAML's `safe_load` (what
/// cloud-init uses) reads back exactly the strings that were written.
pub fn yaml_ascii<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    ascii(value, true, true)
}

fn ascii<T: serde::Serialize + ?Sized>(
    value: &T,
    pretty: bool,
    yaml: bool,
) -> serde_json::Result<String> {
    let mut out = Vec::new();
    if pretty {
        let mut ser = serde_json::Serializer::with_formatter(
            &mut out,
            AsciiFormatter(serde_json::ser::PrettyFormatter::new(), yaml),
        );
        value.serialize(&mut ser)?;
    } else {
        let mut ser = serde_json::Serializer::with_formatter(
            &mut out,
            AsciiFormatter(serde_json::ser::CompactFormatter, yaml),
        );
        value.serialize(&mut ser)?;
    }
    // Only ASCII was written.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// An already valid JSON text (a ledger line) with every non-ASCII character and DEL written
/// as a `\uXXXX` escape: the same JSON value, key order and all, in plain ASCII. Outside
/// strings JSON is ASCII, and a valid string holds no raw C0 control, so only characters
/// inside strings change. ASCII text is returned borrowed, unchanged.
pub fn ascii_json_text(json: &str) -> Cow<'_, str> {
    if json.bytes().all(|b| b.is_ascii() && b != 0x7f) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    Cow::Owned(out)
}

/// A serde_json formatter that escapes DEL and non-ASCII characters (for YAML: those beyond
/// U+FFFF as `\UXXXXXXXX`, not as a surrogate pair) and delegates the rest.
struct AsciiFormatter<F>(F, bool);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for AsciiFormatter<F> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            // DEL is ASCII but a control character: escaped too.
            if c.is_ascii() && c != '\u{7f}' {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            if self.1 && c > '\u{ffff}' {
                write!(writer, "\\U{:08x}", c as u32)?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
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
    fn blanks_and_invisible_characters_that_pass_for_others_are_made_visible() {
        // A no-break space passes for a space (an option value that reads as two options),
        // a soft hyphen or a tag character for nothing, a Hangul filler or a braille blank
        // for a blank: none is shown raw, and a run of them is not a plain name.
        for c in [
            '\u{a0}',
            '\u{ad}',
            '\u{34f}',
            '\u{115f}',
            '\u{1160}',
            '\u{1680}',
            '\u{180e}',
            '\u{2000}',
            '\u{200a}',
            '\u{202f}',
            '\u{205f}',
            '\u{206a}',
            '\u{206f}',
            '\u{2800}',
            '\u{3000}',
            '\u{3164}',
            '\u{fe00}',
            '\u{fe0f}',
            '\u{ffa0}',
            '\u{e000}',
            '\u{f8ff}',
            '\u{e0001}',
            '\u{e0041}',
            '\u{e0100}',
            '\u{f0000}',
            '\u{10fffd}',
        ] {
            let s = format!("a{c}b");
            assert!(!is_safe(&s), "{:x}", c as u32);
            assert_eq!(escape(&s), format!("a\\u{{{:x}}}b", c as u32));
        }
        // Letters of every script stay as they are.
        assert!(is_safe("Zoë Ünïcode Łódź Ελένη Юлия 李雷 😀"));
    }

    #[test]
    fn bytes_that_are_not_utf8() {
        assert_eq!(escape_bytes(b"ok\xff\x1b"), "ok\\xff\\e");
    }

    #[test]
    fn json_is_ascii_and_round_trips() {
        let v = serde_json::json!({"c": "a\u{85}b\u{2028}\u{202e}\u{1b}é😀", "n": [1, 2]});
        for pretty in [false, true] {
            let text = json_ascii(&v, pretty).unwrap();
            assert!(text.is_ascii(), "{text}");
            assert!(
                text.contains("\\u0085") && text.contains("\\ud83d\\ude00"),
                "{text}"
            );
            assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
        }
        assert_eq!(
            json_ascii(&v, false).unwrap(),
            serde_json::to_string(&v)
                .unwrap()
                .replace('é', "\\u00e9")
                .replace('😀', "\\ud83d\\ude00")
                .replace('\u{85}', "\\u0085")
                .replace('\u{2028}', "\\u2028")
                .replace('\u{202e}', "\\u202e")
        );
        assert_eq!(json_ascii("a\u{7f}", false).unwrap(), "\"a\\u007f\"");
    }

    #[test]
    fn yaml_is_printable_ascii_with_one_escape_per_character() {
        let v = serde_json::json!({"c": "a\u{7f}\u{85}\u{2028}\r\n#x\u{1b}😀", "n": ["\"'"]});
        let text = yaml_ascii(&v).unwrap();
        assert!(
            text.bytes()
                .all(|b| b == b'\n' || (0x20..0x7f).contains(&b)),
            "{text}"
        );
        for escape in [
            "\\u007f",
            "\\u0085",
            "\\u2028",
            "\\r\\n#x\\u001b",
            "\\U0001f600",
        ] {
            assert!(text.contains(escape), "{escape} in {text}");
        }
        assert!(!text.contains("\\ud83d"), "{text}");
        // Without characters beyond U+FFFF it is the pretty JSON.
        let bmp = serde_json::json!({"c": "a\u{7f}é\u{2029}"});
        assert_eq!(yaml_ascii(&bmp).unwrap(), json_ascii(&bmp, true).unwrap());
    }

    #[test]
    fn visible_is_a_safety_net_that_leaves_escaped_text_alone() {
        let fake = "bob\u{1b}[1A\r\u{85}\u{202e}\u{2028}\0\u{7f}";
        assert_eq!(
            visible(fake),
            "bob\\e[1A\\r\\u{85}\\u{202e}\\u{2028}\\u{0}\\u{7f}"
        );
        assert!(is_safe(&visible(fake)));
        // Already escaped text (backslashes and all) passes unchanged.
        for raw in [fake, "a\\b", "x\\ny\n"] {
            let shown = escape(raw);
            assert_eq!(visible(&shown), shown);
        }
        assert!(matches!(visible("C:\\dir"), Cow::Borrowed(_)));
    }

    #[test]
    fn esc_pads_the_escaped_text() {
        assert_eq!(format!("[{:<6}]", Esc("a\rb")), "[a\\rb  ]");
        assert_eq!(format!("[{:>4}]", Esc("ab")), "[  ab]");
    }

    #[test]
    fn del_is_escaped_in_json() {
        let v = serde_json::json!({"c": "a\u{7f}b"});
        let text = json_ascii(&v, false).unwrap();
        assert_eq!(text, r#"{"c":"a\u007fb"}"#);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
    }

    #[test]
    fn json_text_made_ascii_keeps_value_and_order() {
        let line = "{\"z\":\"x\u{1b}\u{85}\u{2028}\u{7f}é😀\",\"a\":[\"\u{202e}\"]}";
        // serde_json writes ESC as \u001b, so a raw one cannot be in valid JSON.
        let line = line.replace('\u{1b}', "\\u001b");
        let ascii = ascii_json_text(&line);
        assert!(ascii.is_ascii() && !ascii.contains('\u{7f}'), "{ascii}");
        assert!(ascii.starts_with("{\"z\":"), "{ascii}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&ascii).unwrap(),
            serde_json::from_str::<serde_json::Value>(&line).unwrap()
        );
        assert!(matches!(ascii_json_text("{\"a\":1}"), Cow::Borrowed(_)));
    }
}
