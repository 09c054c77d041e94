//! The line formats sshd's messages arrive in, each told apart by how the line starts:
//!
//! - syslog, classic (`/var/log/auth.log`, rsyslog's traditional format) and `journalctl`'s
//!   default short output: `Dec  1 10:33:16 HOST sshd[PID]: MESSAGE` (`Dec 01` too, and a
//!   fraction of a second as `journalctl -o short-precise` writes it);
//! - syslog with an RFC 3339 time (rsyslog's `RSYSLOG_FileFormat`, `journalctl -o short-iso`
//!   and `short-iso-precise`): `2026-12-01T10:33:16.123456+00:00 HOST sshd[PID]: MESSAGE`
//!   (`+0000` and `Z` too);
//! - `journalctl -o json`: one JSON object per line, with `MESSAGE` (a string, or an array of
//!   bytes when it is not UTF-8), `_HOSTNAME`, `__REALTIME_TIMESTAMP` (microseconds since
//!   the epoch), `_PID` and `SYSLOG_IDENTIFIER`;
//! - `sshd -E FILE` (and `sshd -e` on stderr): the message alone, no time, no host, no PID,
//!   each line ending in CR LF.
//!
//! A classic syslog time has no year: it is taken to be in the current year of the local time
//! zone (`TZ` respected), or the year before if that would put it more than a day after now
//! (a December log read in January). See [`year_less`].

use chrono::{DateTime, Datelike, Local, LocalResult, NaiveDate, TimeZone, Utc};

/// One log line split into its prefix and sshd's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub time: Option<DateTime<Utc>>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    /// Whether the program that logged it is sshd (`sshd`, `sshd-session`, `sshd-auth`), or
    /// unknown (a line of `sshd -E` names none).
    pub sshd: bool,
    pub message: Message<'a>,
    pub format: Format,
}

/// The message bytes: borrowed from the line, or decoded from JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Message<'_> {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Message::Borrowed(b) => b,
            Message::Owned(v) => v,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `Mmm dd hh:mm:ss HOST TAG: MSG`.
    Syslog,
    /// `YYYY-MM-DDThh:mm:ss[.f]±hh:mm HOST TAG: MSG`.
    Rfc3339,
    /// `journalctl -o json`.
    Journal,
    /// The message alone (`sshd -E`).
    Bare,
}

/// The names sshd's processes log under (9.8 and later split the per-connection process off
/// as `sshd-session`, 10.0 the pre-authentication one as `sshd-auth`).
pub fn is_sshd(program: &[u8]) -> bool {
    matches!(program, b"sshd" | b"sshd-session" | b"sshd-auth")
}

/// Split `line` (no newline, no CR). `now` decides the year of a year-less time. A line that
/// starts like a syslog or journal line but is not one is `None`; anything else is a bare
/// message.
pub fn split(line: &[u8], now: DateTime<Local>) -> Option<LogLine<'_>> {
    match line.first() {
        Some(b'{') => journal(line),
        Some(b'0'..=b'9') if line.get(4) == Some(&b'-') && line.get(10) == Some(&b'T') => {
            let (time, rest) = rfc3339(line)?;
            tagged(rest, Some(time), Format::Rfc3339)
        }
        Some(b'A'..=b'Z') if month(line).is_some() && line.get(3) == Some(&b' ') => {
            let (time, rest) = classic(line, now)?;
            tagged(rest, time, Format::Syslog)
        }
        _ => Some(LogLine {
            time: None,
            host: None,
            pid: None,
            sshd: true,
            message: Message::Borrowed(line),
            format: Format::Bare,
        }),
    }
}

/// `HOST TAG: MSG` after the time. TAG is `PROGRAM[PID]` or `PROGRAM`.
fn tagged(rest: &[u8], time: Option<DateTime<Utc>>, format: Format) -> Option<LogLine<'_>> {
    let rest = rest.strip_prefix(b" ")?;
    let sp = rest.iter().position(|b| *b == b' ')?;
    let (host, rest) = (&rest[..sp], &rest[sp + 1..]);
    let colon = rest.iter().take(128).position(|b| *b == b':')?;
    let tag = &rest[..colon];
    if tag.contains(&b' ') || host.is_empty() {
        return None;
    }
    let msg = &rest[colon + 1..];
    let msg = msg.strip_prefix(b" ").unwrap_or(msg);
    let (program, pid) = match tag.iter().position(|b| *b == b'[') {
        Some(open) if tag.ends_with(b"]") => (&tag[..open], digits(&tag[open + 1..tag.len() - 1])),
        _ => (tag, None),
    };
    // rsyslog's "message repeated N times: [ MSG]".
    let msg = repeated(msg).unwrap_or(msg);
    Some(LogLine {
        time,
        host: Some(String::from_utf8_lossy(host).into_owned()),
        pid: pid.and_then(|p| u32::try_from(p).ok()),
        sshd: is_sshd(program),
        message: Message::Borrowed(msg),
        format,
    })
}

fn repeated(msg: &[u8]) -> Option<&[u8]> {
    let rest = msg.strip_prefix(b"message repeated ")?;
    let at = memchr::memmem::find(rest, b" times: [ ")?;
    digits(&rest[..at])?;
    rest[at + 10..].strip_suffix(b"]")
}

fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn month(line: &[u8]) -> Option<u32> {
    let m = line.get(..3)?;
    MONTHS
        .iter()
        .position(|x| &x[..] == m)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// `Mmm dd hh:mm:ss[.ffffff]` (day space- or zero-padded) -> the time and the rest of the
/// line. A time that names no real date (`Feb 30`) is no time, but the line still parses.
fn classic(line: &[u8], now: DateTime<Local>) -> Option<(Option<DateTime<Utc>>, &[u8])> {
    let mon = month(line)?;
    let day = match (line.get(4)?, line.get(5)?) {
        (b' ', d) if d.is_ascii_digit() => u32::from(d - b'0'),
        (a, b) if a.is_ascii_digit() && b.is_ascii_digit() => {
            u32::from(a - b'0') * 10 + u32::from(b - b'0')
        }
        _ => return None,
    };
    if line.get(6) != Some(&b' ') {
        return None;
    }
    let (h, m, s) = clock(line.get(7..15)?)?;
    let mut rest = &line[15..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    Some((year_less(mon, day, h, m, s, now), rest))
}

/// `hh:mm:ss`.
fn clock(s: &[u8]) -> Option<(u32, u32, u32)> {
    let two = |i: usize| -> Option<u32> {
        let (a, b) = (s.get(i)?, s.get(i + 1)?);
        (a.is_ascii_digit() && b.is_ascii_digit())
            .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
    };
    if s.get(2) != Some(&b':') || s.get(5) != Some(&b':') {
        return None;
    }
    Some((two(0)?, two(3)?, two(6)?))
}

/// The year rule for a syslog time without one: the local date and time in the current year,
/// or in the year before when that is more than a day after `now`; a date that the year does
/// not have (Feb 29) is tried in the years before, up to four. In a daylight-saving change
/// the earlier of two readings is taken, and a time that does not exist locally (skipped
/// forward) is read an hour later.
pub fn year_less(
    month: u32,
    day: u32,
    h: u32,
    m: u32,
    s: u32,
    now: DateTime<Local>,
) -> Option<DateTime<Utc>> {
    let limit = now.with_timezone(&Utc) + chrono::Duration::days(1);
    let year = now.year();
    for y in [year, year - 1, year - 2, year - 3, year - 4] {
        let Some(naive) =
            NaiveDate::from_ymd_opt(y, month, day).and_then(|d| d.and_hms_opt(h, m, s))
        else {
            continue;
        };
        let local = match Local.from_local_datetime(&naive) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
            LocalResult::None => {
                match Local.from_local_datetime(&(naive + chrono::Duration::hours(1))) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
                    LocalResult::None => continue,
                }
            }
        };
        let t = local.with_timezone(&Utc);
        if t <= limit {
            return Some(t);
        }
    }
    None
}

/// `YYYY-MM-DDThh:mm:ss[.f](Z|±hh:mm|±hhmm)` -> the time and the rest of the line.
fn rfc3339(line: &[u8]) -> Option<(DateTime<Utc>, &[u8])> {
    let end = line.iter().take(40).position(|b| *b == b' ')?;
    let stamp = std::str::from_utf8(&line[..end]).ok()?;
    // ±hhmm (journalctl before systemd 254) -> ±hh:mm.
    let normal;
    let stamp = match stamp
        .len()
        .checked_sub(5)
        .and_then(|i| stamp.get(i..).map(|t| (i, t)))
    {
        Some((i, tz))
            if (tz.starts_with('+') || tz.starts_with('-'))
                && tz[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            normal = format!("{}{}:{}", &stamp[..i], &tz[..3], &tz[3..]);
            normal.as_str()
        }
        _ => stamp,
    };
    let t = DateTime::parse_from_rfc3339(stamp).ok()?;
    Some((t.with_timezone(&Utc), &line[end..]))
}

/// One line of `journalctl -o json`.
fn journal(line: &[u8]) -> Option<LogLine<'_>> {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(rename = "MESSAGE")]
        message: Option<serde_json::Value>,
        #[serde(rename = "_HOSTNAME")]
        hostname: Option<serde_json::Value>,
        #[serde(rename = "__REALTIME_TIMESTAMP")]
        realtime: Option<serde_json::Value>,
        #[serde(rename = "_PID")]
        pid: Option<serde_json::Value>,
        #[serde(rename = "SYSLOG_IDENTIFIER")]
        identifier: Option<serde_json::Value>,
        #[serde(rename = "_COMM")]
        comm: Option<serde_json::Value>,
    }
    let e: Entry = serde_json::from_slice(line).ok()?;
    let message = field_bytes(e.message.as_ref()?)?;
    let as_text = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .and_then(field_bytes)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let time = as_text(&e.realtime)
        .and_then(|t| digits(t.as_bytes()))
        .and_then(|us| i64::try_from(us).ok())
        .and_then(DateTime::from_timestamp_micros);
    let pid = as_text(&e.pid)
        .and_then(|p| digits(p.as_bytes()))
        .and_then(|p| u32::try_from(p).ok());
    // _COMM is the kernel's name of the process (journald sets it, a sender cannot); a
    // line whose SYSLOG_IDENTIFIER says sshd but that another program sent is not sshd's.
    let ident = as_text(&e.identifier);
    let comm = as_text(&e.comm);
    let sshd = ident.as_deref().is_some_and(|i| is_sshd(i.as_bytes()))
        && comm.as_deref().is_none_or(|c| is_sshd(c.as_bytes()));
    Some(LogLine {
        time,
        host: as_text(&e.hostname),
        pid,
        sshd,
        message: Message::Owned(message),
        format: Format::Journal,
    })
}

/// A journal field: a string, or an array of bytes (how journalctl writes a value that is not
/// UTF-8 text). A field given several times (an array of strings) is not one value.
fn field_bytes(v: &serde_json::Value) -> Option<Vec<u8>> {
    match v {
        serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        Local
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2026, 12, 1)
                    .unwrap()
                    .and_hms_opt(12, 0, 0)
                    .unwrap(),
            )
            .unwrap()
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Local
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(y, mo, d)
                    .unwrap()
                    .and_hms_opt(h, mi, s)
                    .unwrap(),
            )
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn every_prefix_form_splits_into_time_host_pid_and_message() {
        let msg = b"Accepted publickey for root from 127.0.0.1 port 1 ssh2: x";
        let cases: Vec<(Vec<u8>, Option<DateTime<Utc>>, Format)> = vec![
            (
                [&b"Dec  1 10:33:16 web-1 sshd[3687]: "[..], msg].concat(),
                Some(local(2026, 12, 1, 10, 33, 16)),
                Format::Syslog,
            ),
            (
                [&b"Dec 01 10:33:16 web-1 sshd[3687]: "[..], msg].concat(),
                Some(local(2026, 12, 1, 10, 33, 16)),
                Format::Syslog,
            ),
            (
                [&b"Dec 01 10:33:16.123456 web-1 sshd[3687]: "[..], msg].concat(),
                Some(local(2026, 12, 1, 10, 33, 16)),
                Format::Syslog,
            ),
            (
                [
                    &b"2026-12-01T10:33:16.123456+00:00 web-1 sshd[3687]: "[..],
                    msg,
                ]
                .concat(),
                DateTime::from_timestamp(1_796_121_196, 123_456_000),
                Format::Rfc3339,
            ),
            (
                [&b"2026-12-01T11:33:16+0100 web-1 sshd[3687]: "[..], msg].concat(),
                DateTime::from_timestamp(1_796_121_196, 0),
                Format::Rfc3339,
            ),
            (
                [&b"2026-12-01T10:33:16Z web-1 sshd-session[3687]: "[..], msg].concat(),
                DateTime::from_timestamp(1_796_121_196, 0),
                Format::Rfc3339,
            ),
        ];
        for (line, time, format) in cases {
            let l = split(&line, now()).unwrap();
            assert_eq!(l.time, time, "{}", String::from_utf8_lossy(&line));
            assert_eq!(l.format, format);
            assert_eq!(l.host.as_deref(), Some("web-1"));
            assert_eq!(l.pid, Some(3687));
            assert!(l.sshd);
            assert_eq!(l.message.bytes(), msg);
        }
        let l = split(
            b"Dec  1 10:33:16 web-1 CRON[12]: pam_unix(cron:session)",
            now(),
        )
        .unwrap();
        assert!(!l.sshd);
        let l = split(
            b"Dec  1 10:33:16 web-1 sshd[9]: message repeated 2 times: [ Failed x]",
            now(),
        )
        .unwrap();
        assert_eq!(l.message.bytes(), b"Failed x");
        let l = split(b"Accepted certificate ID \"x\"", now()).unwrap();
        assert_eq!((l.format, l.host, l.time), (Format::Bare, None, None));
        for broken in [
            &b"Dec  1 10:33"[..],
            b"Dec  1 10:33:16",
            b"2026-12-01Tnope x y: z",
            b"{",
        ] {
            assert_eq!(
                split(broken, now()),
                None,
                "{}",
                String::from_utf8_lossy(broken)
            );
        }
    }

    #[test]
    fn journal_json_with_a_string_or_byte_array_message() {
        let line = br#"{"__REALTIME_TIMESTAMP":"1796121196123456","_HOSTNAME":"web-1","_PID":"3687","SYSLOG_IDENTIFIER":"sshd","_COMM":"sshd","MESSAGE":"Accepted x"}"#;
        let l = split(line, now()).unwrap();
        assert_eq!(l.time, DateTime::from_timestamp(1_796_121_196, 123_456_000));
        assert_eq!(
            (l.host.as_deref(), l.pid, l.sshd),
            (Some("web-1"), Some(3687), true)
        );
        assert_eq!(l.message.bytes(), b"Accepted x");
        let line = br#"{"_HOSTNAME":"h","SYSLOG_IDENTIFIER":"sshd","MESSAGE":[65,255,0]}"#;
        assert_eq!(split(line, now()).unwrap().message.bytes(), b"A\xff\0");
        // Sent by another program under sshd's name.
        let line = br#"{"SYSLOG_IDENTIFIER":"sshd","_COMM":"logger","MESSAGE":"x"}"#;
        assert!(!split(line, now()).unwrap().sshd);
        for bad in [
            &br#"{"MESSAGE":null}"#[..],
            br#"{"MESSAGE":["a","b"]}"#,
            br#"{"MESSAGE":[256]}"#,
            br#"{"_PID":"1"}"#,
        ] {
            assert_eq!(split(bad, now()), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_year_rule() {
        // Today and earlier this year: this year; up to a day ahead (clock skew): this year.
        assert_eq!(
            year_less(12, 1, 10, 0, 0, now()),
            Some(local(2026, 12, 1, 10, 0, 0))
        );
        assert_eq!(
            year_less(1, 5, 0, 0, 0, now()),
            Some(local(2026, 1, 5, 0, 0, 0))
        );
        assert_eq!(
            year_less(12, 2, 11, 0, 0, now()),
            Some(local(2026, 12, 2, 11, 0, 0))
        );
        // More than a day ahead: last year's.
        assert_eq!(
            year_less(12, 3, 0, 0, 0, now()),
            Some(local(2025, 12, 3, 0, 0, 0))
        );
        // Feb 29: the last leap year not in the future.
        assert_eq!(
            year_less(2, 29, 0, 0, 0, now()),
            Some(local(2024, 2, 29, 0, 0, 0))
        );
        assert_eq!(year_less(2, 30, 0, 0, 0, now()), None);
        assert_eq!(year_less(1, 1, 25, 0, 0, now()), None);
    }
}
