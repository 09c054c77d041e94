//! The one way generated host texts are filled in: `@NAME@` placeholders in a fixed template,
//! replaced in a single pass.

use crate::error::{Error, Result};

/// Fill `template` (called `what` in errors): each `@NAME@` (capital letters and `_`) is
/// replaced by its value, and a line that is nothing but `@NAME@` is replaced together with its
/// line break by a value of whole lines (empty, or ending in a line break). A value is inserted
/// as it is, never scanned for placeholders itself, so no input can add one. A placeholder
/// without a value, a `@` that starts none, or a partial line for a whole-line placeholder is
/// a bug in breakglass-ca: an error, and nothing is written.
pub(super) fn fill(what: &str, template: &str, values: &[(&str, &str)]) -> Result<String> {
    let bug = |why: String| {
        Error::invalid(format!("the {what} template {why}"))
            .with_hint("report this as a bug in breakglass-ca")
    };
    let value_of = |name: &str| {
        let named = !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        values
            .iter()
            .find(|(n, _)| named && *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| bug(format!("has the placeholder @{name}@, which has no value")))
    };
    let mut out = String::with_capacity(template.len() * 2);
    for line in template.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let whole = body
            .strip_prefix('@')
            .and_then(|b| b.strip_suffix('@'))
            .filter(|name| !name.contains('@') && line.ends_with('\n'));
        if let Some(name) = whole {
            let value = value_of(name)?;
            if !value.is_empty() && !value.ends_with('\n') {
                return Err(bug(format!(
                    "puts @{name}@ on a line of its own, but its value is not whole lines"
                )));
            }
            out.push_str(value);
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find('@') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let Some(end) = after.find('@') else {
                return Err(bug(format!(
                    "has a '@' that starts no placeholder: {body:?}"
                )));
            };
            out.push_str(value_of(&after[..end])?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_inline_and_as_whole_lines() {
        let t = "a @X@ b @Y@\n@LINES@\nend @X@\n";
        let got = fill("t", t, &[("X", "1"), ("Y", "@X@"), ("LINES", "l1\nl2\n")]).unwrap();
        // A value is never scanned again: "@X@" from Y stays as it is.
        assert_eq!(got, "a 1 b @X@\nl1\nl2\nend 1\n");
        assert_eq!(fill("t", "@LINES@\n", &[("LINES", "")]).unwrap(), "");
        assert_eq!(fill("t", "no placeholder", &[]).unwrap(), "no placeholder");
    }

    #[test]
    fn template_bugs_are_errors() {
        for (t, why) in [
            ("a @NOPE@\n", "no value"),
            ("a @x@\n", "no value"),
            ("a @@\n", "no value"),
            ("mail me@example.org\n", "starts no placeholder"),
            ("@LINES@\n", "not whole lines"),
        ] {
            let err = fill("t", t, &[("LINES", "no line break")]).unwrap_err();
            assert!(err.to_string().contains(why), "{t:?}: {err}");
            assert!(err.to_string().starts_with("the t template"), "{err}");
        }
    }
}
