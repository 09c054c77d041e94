//! Durations as custodians type them: `90s`, `15m`, `1h`, `1h30m`. A unit is required, so a
//! bare `15` is never guessed to mean seconds or minutes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// A strictly positive number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(u64);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Duration(secs)
    }

    pub fn as_secs(self) -> u64 {
        self.0
    }
}

fn bad(text: &str, why: &str) -> Error {
    Error::usage(format!(
        "invalid duration '{}': {why}",
        crate::text::Esc(text)
    ))
    .with_hint("write a number with a unit: 90s, 15m, 1h or 1h30m")
}

impl FromStr for Duration {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let s = text.trim();
        if s.starts_with('-') {
            return Err(bad(text, "it is negative"));
        }
        if s.is_empty() {
            return Err(bad(text, "it is empty"));
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit: u64 = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => {
                    return Err(bad(
                        text,
                        &format!(
                            "unknown unit '{}' (use s, m or h)",
                            crate::text::escape(c.encode_utf8(&mut [0; 4]))
                        ),
                    ))
                }
            };
            if digits.is_empty() {
                return Err(bad(
                    text,
                    &format!(
                        "'{}' has no number before it",
                        crate::text::escape(c.encode_utf8(&mut [0; 4]))
                    ),
                ));
            }
            let n: u64 = digits
                .parse()
                .map_err(|_| bad(text, "the number is too large"))?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .filter(|v| *v <= i64::MAX as u64)
                .ok_or_else(|| bad(text, "it is too large"))?;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(bad(text, "the last number has no unit"));
        }
        if total == 0 {
            return Err(bad(text, "it is zero"));
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if m > 0 {
            out.push_str(&format!("{m}m"));
        }
        if s > 0 || out.is_empty() {
            out.push_str(&format!("{s}s"));
        }
        f.write_str(&out)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e: Error| serde::de::Error::custom(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_durations() {
        for (text, secs) in [
            ("90s", 90),
            ("15m", 900),
            ("1h", 3600),
            ("1h30m", 5400),
            (" 2m5s ", 125),
        ] {
            assert_eq!(text.parse::<Duration>().unwrap().as_secs(), secs, "{text}");
        }
        assert_eq!(Duration::from_secs(5400).to_string(), "1h30m");
        assert_eq!(Duration::from_secs(59).to_string(), "59s");
    }

    #[test]
    fn rejected_durations() {
        for (text, why) in [
            ("", "empty"),
            ("15", "no unit"),
            ("-5m", "negative"),
            ("0m", "zero"),
            ("0s0m", "zero"),
            ("5d", "unknown unit"),
            ("m", "no number"),
            ("99999999999999999999s", "too large"),
            ("9999999999999999h", "too large"),
        ] {
            let err = text.parse::<Duration>().unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
