//! `audit`: sshd's logs against the ledgers. Every certificate sshd logged (a login, an offer,
//! a refusal) is matched with the ledgers of our CAs, and whatever the ledgers do not account
//! for is an alarm: a serial or key ID they do not hold, a login outside its certificate's
//! window or as a user its principals do not list, a revoked certificate that was accepted,
//! serial 0.
//!
//! - [`format`]: the line formats (syslog, RFC 3339, journald JSON, `sshd -E`) and the
//!   year rule of classic syslog times;
//! - [`event`]: sshd's certificate messages, parsed exactly;
//! - [`correlate`]: the messages of one connection joined into one event;
//! - [`ledgers`]: the CAs and ledgers of the state directories, and the verdicts.
//!
//! The input is read as a stream: one line at a time (at most [`MAX_LINE`] bytes are kept of
//! a line), and only the events and what [`correlate`] waits for are kept, so memory stays
//! flat whatever the size of the log. Most lines of a log are not about certificates: a line
//! is looked at only if it contains `ertificate` or `-CERT ` (or is a journal entry whose
//! message is an array of bytes), found with `memchr::memmem`.
//!
//! The library prints nothing: events and unparseable lines go to a callback ([`Output`]),
//! which `cmd/audit.rs` renders.

pub mod correlate;
pub mod event;
pub mod format;
pub mod ledgers;

use std::io::{BufRead, BufReader, Read};

use chrono::{DateTime, Local, Utc};
use memchr::memmem::Finder;

pub use correlate::{Event, Kind, Source};
pub use ledgers::{Alarm, AlarmKind, Judged, Ledgers, Role, Verdict};

use crate::error::{Error, Result};

/// The most bytes of one line that are kept; the rest of a longer line is skipped (sshd's own
/// messages are at most 500 bytes in syslog, 1 KiB on stderr; a journal entry as JSON a few).
pub const MAX_LINE: usize = 64 * 1024;

/// What the audit reports while it reads.
pub enum Output<'a> {
    /// A certificate event and its verdict.
    Event(Box<Judged>),
    /// A line that looks like an sshd certificate line but is not one exactly (cut short,
    /// damaged, forged), or a line in no known format that mentions certificates, or one
    /// longer than [`MAX_LINE`]: its start (raw bytes: untrusted).
    Unparseable {
        source: Source,
        line: &'a [u8],
        why: &'static str,
    },
}

/// What was read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines read (an `sshd -E` message that a raw newline split counts once).
    pub lines: u64,
    /// Lines that are sshd certificate messages.
    pub certificate_lines: u64,
    /// See [`Output::Unparseable`].
    pub unparseable: u64,
    /// Longer than [`MAX_LINE`].
    pub too_long: u64,
    /// Events before `--since`, left out.
    pub before_since: u64,
    /// Certificate lines without a host name (no syslog prefix, no `--host`).
    pub without_host: u64,
    /// Lines an `sshd -E` file holds as fragments of one message (a raw newline in a key ID),
    /// joined back.
    pub joined: u64,
}

/// The settings of one audit.
#[derive(Clone, Debug)]
pub struct Options {
    /// Now, for the year of a classic syslog time.
    pub now: DateTime<Local>,
    /// Events before this are left out.
    pub since: Option<DateTime<Utc>>,
}

/// One audit over any number of inputs.
pub struct Auditor<'l> {
    ledgers: &'l Ledgers,
    options: Options,
    correlator: correlate::Correlator,
    stats: Stats,
    finders: [Finder<'static>; 3],
}

/// A physical line: its bytes (CR stripped) and whether it was cut at [`MAX_LINE`].
struct Lines<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
}

impl<R: Read> Lines<R> {
    /// The next line into `self.buf`; `None` at the end. `Some(true)`: it was longer than
    /// [`MAX_LINE`] (only its start is kept).
    fn next(&mut self) -> std::io::Result<Option<bool>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                return Ok(any.then_some(too_long));
            }
            any = true;
            let (chunk, used, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            let room = MAX_LINE - self.buf.len();
            if chunk.len() > room {
                too_long = true;
                self.buf.extend_from_slice(&chunk[..room]);
            } else {
                self.buf.extend_from_slice(chunk);
            }
            self.reader.consume(used);
            if done {
                return Ok(Some(too_long));
            }
        }
    }
}

impl<'l> Auditor<'l> {
    pub fn new(ledgers: &'l Ledgers, options: Options) -> Self {
        Auditor {
            ledgers,
            options,
            correlator: correlate::Correlator::default(),
            stats: Stats::default(),
            finders: [
                Finder::new(b"ertificate").into_owned(),
                Finder::new(b"-CERT ").into_owned(),
                Finder::new(b"\"MESSAGE\":[").into_owned(),
            ],
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether a line can be about a certificate at all.
    fn may_matter(&self, line: &[u8]) -> bool {
        self.finders[0].find(line).is_some()
            || self.finders[1].find(line).is_some()
            || (line.first() == Some(&b'{') && self.finders[2].find(line).is_some())
    }

    /// Read one input (number `input`, for [`Source`]) to its end. `host` names the host of
    /// lines that carry none; `name` is how messages name the input (shown as it is: the
    /// caller escapes a path). Events and unparseable lines go to `out` as they are found.
    pub fn read(
        &mut self,
        input: usize,
        reader: impl Read,
        host: Option<&str>,
        name: &str,
        out: &mut dyn FnMut(Output<'_>),
    ) -> Result<()> {
        let mut lines = Lines {
            reader: BufReader::with_capacity(256 * 1024, reader),
            buf: Vec::with_capacity(4096),
        };
        let mut line_no: u64 = 0;
        // sshd -E ends every message with CR LF; once a file shows that, a line ending in LF
        // alone is part of a message with a raw newline (sshd leaves it raw on stderr): it
        // is joined with what follows, up to the next CR LF.
        let mut crlf = false;
        let mut held: Vec<u8> = Vec::new();
        let mut held_from: u64 = 0;
        loop {
            let next = lines
                .next()
                .map_err(|e| Error::io(format!("cannot read {name}"), e))?;
            let Some(too_long) = next else { break };
            line_no += 1;
            if line_no == 1 && lines.buf.starts_with(&[0x1f, 0x8b]) {
                return Err(
                    Error::usage(format!("{name} is compressed (gzip)")).with_hint(format!(
                        "decompress it into the audit: zcat {name} | breakglass-ca audit -"
                    )),
                );
            }
            let mut ends_cr = false;
            if lines.buf.last() == Some(&b'\r') && !too_long {
                lines.buf.pop();
                ends_cr = true;
                crlf = true;
            }
            if crlf && !ends_cr && !too_long {
                if held.len() + lines.buf.len() < MAX_LINE {
                    if held.is_empty() {
                        held_from = line_no;
                    } else {
                        held.push(b'\n');
                    }
                    held.extend_from_slice(&lines.buf);
                    continue;
                }
                // Not an sshd -E file after all.
                crlf = false;
            }
            if !held.is_empty() {
                let mut whole = std::mem::take(&mut held);
                let source = Source {
                    input,
                    line: held_from,
                };
                self.stats.lines += 1;
                if ends_cr {
                    // The end of the message the fragments began.
                    whole.push(b'\n');
                    whole.extend_from_slice(&lines.buf);
                    self.stats.joined += line_no - held_from;
                    self.line(&whole, false, source, host, out);
                    continue;
                }
                self.line(&whole, false, source, host, out);
            }
            self.stats.lines += 1;
            let source = Source {
                input,
                line: line_no,
            };
            let buf = std::mem::take(&mut lines.buf);
            self.line(&buf, too_long, source, host, out);
            lines.buf = buf;
        }
        if !held.is_empty() {
            self.stats.lines += 1;
            let source = Source {
                input,
                line: held_from,
            };
            self.line(&held, false, source, host, out);
        }
        Ok(())
    }

    fn line(
        &mut self,
        line: &[u8],
        too_long: bool,
        source: Source,
        host: Option<&str>,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        if !self.may_matter(line) {
            if too_long {
                self.stats.too_long += 1;
            }
            return;
        }
        if too_long {
            self.stats.too_long += 1;
            self.stats.unparseable += 1;
            out(Output::Unparseable {
                source,
                line,
                why: "longer than 64 KiB",
            });
            return;
        }
        let Some(l) = format::split(line, self.options.now) else {
            self.stats.unparseable += 1;
            out(Output::Unparseable {
                source,
                line,
                why: "not in a known log format",
            });
            return;
        };
        if !l.sshd {
            return;
        }
        let message = match event::parse(l.message.bytes()) {
            event::Parsed::Irrelevant => return,
            event::Parsed::Unparseable { login } => {
                self.stats.unparseable += 1;
                out(Output::Unparseable {
                    source,
                    line,
                    why: if login {
                        "a certificate login sshd's line does not fully show"
                    } else {
                        "not exactly one of sshd's certificate messages"
                    },
                });
                if login {
                    let host = l.host.clone().or_else(|| host.map(str::to_string));
                    let event = Event {
                        unreadable: true,
                        ..Event::blank(Kind::Login, l.time, host, l.pid, source)
                    };
                    self.emit(event, out);
                }
                return;
            }
            event::Parsed::Message(m) => m,
        };
        self.stats.certificate_lines += 1;
        let host = l.host.or_else(|| host.map(str::to_string));
        if host.is_none() {
            self.stats.without_host += 1;
        }
        let logged = correlate::Logged {
            message,
            time: l.time,
            host,
            pid: l.pid,
            source,
        };
        let (ledgers, since) = (self.ledgers, self.options.since);
        let stats = &mut self.stats;
        self.correlator.push(logged, &mut |e| {
            emit_to(ledgers, since, stats, e, out);
        });
    }

    fn emit(&mut self, e: Event, out: &mut dyn FnMut(Output<'_>)) {
        emit_to(self.ledgers, self.options.since, &mut self.stats, e, out);
    }

    /// The end of every input: what still waits becomes events.
    pub fn finish(&mut self, out: &mut dyn FnMut(Output<'_>)) {
        let (ledgers, since) = (self.ledgers, self.options.since);
        let stats = &mut self.stats;
        self.correlator.finish(&mut |e| {
            emit_to(ledgers, since, stats, e, out);
        });
    }
}

fn emit_to(
    ledgers: &Ledgers,
    since: Option<DateTime<Utc>>,
    stats: &mut Stats,
    e: Event,
    out: &mut dyn FnMut(Output<'_>),
) {
    if let (Some(since), Some(t)) = (since, e.time) {
        if t < since {
            stats.before_since += 1;
            return;
        }
    }
    out(Output::Event(Box::new(ledgers.judge(e))));
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use chrono::TimeZone;

    use super::*;
    use crate::ledger::testing;
    use crate::ledger::Ledger;

    pub(crate) const FIXTURES: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/hsm-tests/fixtures/audit");
    /// The fixtures' CA and client key.
    pub(crate) const CA: &str = "SHA256:WI/LiSarIc7EmOVHRvrofSsBIPuTMvEt4izrrj9GjWY";
    pub(crate) const KEY: &str = "SHA256:mTGpH0uxv8yXVg1xikpVN3A3HHctu5tSWlVePjuBRZs";

    /// A state directory with the fixtures' `ca.pub` and records 1..=10, the key IDs of 7 to
    /// 10 those of the fixtures' certificates (7 for principal root, valid 11:55 to 12:30 on
    /// 2026-12-01), serial 10 revoked at 11:00.
    pub(crate) fn fixture_state() -> (tempfile::TempDir, Ledgers) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            Path::new(FIXTURES).join("ca.pub"),
            dir.path().join("ca.pub"),
        )
        .unwrap();
        let ledger = Ledger::new(dir.path());
        for _ in 0..10 {
            let mut locked = ledger.lock(CA).unwrap();
            let mut r = testing::record(locked.tail(), CA);
            if r.serial >= 7 {
                r.key_id = format!("alice@laptop#{}:INC-1234-bastion", r.serial);
                r.requester_fingerprint = KEY.into();
                r.valid_after = "2026-12-01T11:55:00Z".into();
                r.valid_before = "2026-12-01T12:30:00Z".into();
                r.principals = vec![if r.serial == 7 { "root" } else { "breakglass" }.into()];
            }
            locked.append(&r).unwrap();
        }
        testing::revoke(&ledger, CA, "2026-12-01T11:00:00Z", |v| {
            v.serials = vec![(10, 10)];
            v.requester_keys.clear();
        });
        let ledgers = Ledgers::load(&[dir.path().to_path_buf()], &mut |_| {}).unwrap();
        (dir, ledgers)
    }

    pub(crate) fn now() -> DateTime<Local> {
        Local
            .from_local_datetime(
                &chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
                    .unwrap()
                    .and_hms_opt(13, 0, 0)
                    .unwrap(),
            )
            .unwrap()
    }

    /// Audit `bytes` as one input; the events (sorted by where they are) and the unparseable
    /// lines' reasons.
    pub(crate) fn audit(
        ledgers: &Ledgers,
        bytes: &[u8],
        host: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> (Vec<Judged>, Vec<&'static str>, Stats) {
        let mut a = Auditor::new(ledgers, Options { now: now(), since });
        let mut events = Vec::new();
        let mut bad = Vec::new();
        let mut take = |o: Output<'_>| match o {
            Output::Event(j) => events.push(*j),
            Output::Unparseable { why, .. } => bad.push(why),
        };
        a.read(0, bytes, host, "test", &mut take).unwrap();
        a.finish(&mut take);
        events.sort_by_key(|j| j.event.source);
        (events, bad, a.stats().clone())
    }

    /// What must be the same whatever the format (the -E run had other ports and PIDs).
    type Seen = (
        Kind,
        Verdict,
        Option<String>,
        Option<u64>,
        Option<String>,
        Option<String>,
        Option<String>,
    );

    fn seen(j: &Judged) -> Seen {
        let e = &j.event;
        (
            e.kind,
            j.verdict,
            e.cert.as_ref().map(|c| c.key_id.clone()),
            e.cert.as_ref().map(|c| c.serial),
            e.reason.clone(),
            e.user.clone(),
            e.key_fingerprint.clone(),
        )
    }

    #[test]
    fn every_format_of_the_real_sshd_lines_gives_the_same_events() {
        let (_dir, ledgers) = fixture_state();
        let evil = "evil (serial 5) CA ECDSA SHA256:abc\nAccepted x\\y\u{1b}[2J".to_string();
        let root = Some("root".to_string());
        let key = Some(KEY.to_string());
        let id = |n: u64| Some(format!("alice@laptop#{n}:INC-1234-bastion"));
        let expected: Vec<Seen> = vec![
            (
                Kind::Login,
                Verdict::Ok,
                id(7),
                Some(7),
                None,
                root.clone(),
                key.clone(),
            ),
            (
                Kind::Refused,
                Verdict::Refused,
                id(8),
                Some(8),
                Some("Certificate does not contain an authorized principal".into()),
                root.clone(),
                key.clone(),
            ),
            (
                Kind::Refused,
                Verdict::Refused,
                id(9),
                Some(9),
                Some("Certificate invalid: expired".into()),
                root.clone(),
                key.clone(),
            ),
            (
                Kind::Login,
                Verdict::Alarm,
                Some(evil),
                Some(0),
                None,
                root.clone(),
                key.clone(),
            ),
            (
                Kind::Refused,
                Verdict::Refused,
                id(10),
                Some(10),
                Some("revoked (RevokedKeys)".into()),
                root.clone(),
                key.clone(),
            ),
            (
                Kind::Refused,
                Verdict::OtherCa,
                Some("mallory#3".into()),
                Some(3),
                None,
                root.clone(),
                key.clone(),
            ),
            (
                Kind::Offer,
                Verdict::Offer,
                id(7),
                Some(7),
                None,
                None,
                None,
            ),
        ];
        for (file, host) in [
            ("sshd-E.log", Some("web-1")),
            ("auth.log", None),
            ("auth-rfc3339.log", None),
            ("journal-short.txt", None),
            ("journal-short-iso.txt", None),
            ("journal.json", None),
        ] {
            let bytes = std::fs::read(Path::new(FIXTURES).join(file)).unwrap();
            let (events, bad, stats) = audit(&ledgers, &bytes, host, None);
            let got: Vec<Seen> = events.iter().map(seen).collect();
            assert_eq!(got, expected, "{file}");
            assert!(bad.is_empty(), "{file}: {bad:?}");
            assert_eq!(stats.without_host, 0, "{file}");
            assert!(events
                .iter()
                .all(|j| j.event.host.as_deref() == Some("web-1")));
            let alarm = &events[3].alarms;
            assert_eq!(alarm.len(), 1, "{file}: {alarm:?}");
            assert_eq!(alarm[0].kind, AlarmKind::SerialZero);
            if file == "sshd-E.log" {
                assert_eq!(stats.joined, 3, "the evil key ID's newline, three times");
                assert!(events
                    .iter()
                    .all(|j| j.event.time.is_none() && j.event.pid.is_none()));
                continue;
            }
            // 12:00:33 UTC for the login, from the syslog prefix or the journal.
            let t = events[0].event.time.unwrap();
            assert_eq!(
                t.format("%Y-%m-%d %H:%M:%S").to_string(),
                "2026-12-01 12:00:33",
                "{file}"
            );
            assert_eq!(events[0].event.pid, Some(26749));
            assert_eq!(events[0].event.port, Some(45588));
            assert_eq!(events[4].revoked.as_ref().unwrap().how, "its serial");
        }
    }

    #[test]
    fn since_leaves_out_earlier_events_but_not_timeless_ones() {
        let (_dir, ledgers) = fixture_state();
        let bytes = std::fs::read(Path::new(FIXTURES).join("auth-rfc3339.log")).unwrap();
        let since = DateTime::parse_from_rfc3339("2026-12-01T12:00:34Z")
            .unwrap()
            .to_utc();
        let (events, _, stats) = audit(&ledgers, &bytes, None, Some(since));
        assert_eq!((events.len(), stats.before_since), (6, 1));
        let bytes = std::fs::read(Path::new(FIXTURES).join("sshd-E.log")).unwrap();
        let (events, _, _) = audit(&ledgers, &bytes, None, Some(since));
        assert_eq!(events.len(), 7);
        assert!(events.iter().all(|j| j.event.host.is_none()));
    }

    #[test]
    fn hostile_lines_never_panic_never_mislead() {
        let (_dir, ledgers) = fixture_state();
        let good = format!("Dec  1 12:00:33 web-1 sshd[1]: Accepted publickey for root from 127.0.0.1 port 1 ssh2: ED25519-CERT {KEY} ID alice@laptop#7:INC-1234-bastion (serial 7) CA ECDSA {CA}");
        let mut log: Vec<u8> = Vec::new();
        // A key ID holding another certificate's tail: serial 7 of our CA claimed, 4242 true.
        log.extend_from_slice(format!("Dec  1 12:00:34 web-1 sshd[2]: Accepted publickey for root from 10.0.0.1 port 2 ssh2: ED25519-CERT {KEY} ID alice@laptop#7:INC-1234-bastion (serial 7) CA ECDSA {CA} (serial 4242) CA ECDSA {CA}\n").as_bytes());
        // Escape sequences, NUL, invalid UTF-8 in the fields.
        log.extend_from_slice(
            &format!("Dec  1 12:00:35 web-1 sshd[3]: Accepted publickey for r\x1b[2Joot\0 from 10.0.0.\u{1} port 3 ssh2: ED25519-CERT {KEY} ID a\x1b]0;x\x07\0\u{2} (serial 7) CA ECDSA {CA}\n")
                .replace('\u{1}', "\u{fffd}")
                .into_bytes()
                .iter()
                .map(|b| if *b == 2 { 0xfe } else { *b })
                .collect::<Vec<u8>>(),
        );
        // A huge line that mentions certificates.
        log.extend_from_slice(b"Accepted certificate ID \"");
        log.extend(std::iter::repeat_n(b'A', MAX_LINE * 3));
        log.extend_from_slice(b"\" (serial 1)\n");
        // Cut short (sshd's syslog limit): a login that cannot be named.
        log.extend_from_slice(&good.as_bytes()[..good.len() - 20]);
        log.push(b'\n');
        // Garbage that mentions certificates, a bare NUL line, a forged journal line.
        log.extend_from_slice(b"Certificate \xff\0\n\0\0Certificate\n\n{\"MESSAGE\":[1,2,999]}\n");
        log.extend_from_slice(br#"{"SYSLOG_IDENTIFIER":"sshd","_COMM":"logger","MESSAGE":"Accepted publickey for root from 1.2.3.4 port 1 ssh2: ED25519-CERT x"}"#);
        log.push(b'\n');
        log.extend_from_slice(good.as_bytes());
        let (events, bad, stats) = audit(&ledgers, &log, None, None);
        assert_eq!(stats.lines, 10);
        assert_eq!(stats.too_long, 1);
        let serials: Vec<Option<u64>> = events
            .iter()
            .map(|j| j.event.cert.as_ref().map(|c| c.serial))
            .collect();
        assert_eq!(serials, vec![Some(4242), Some(7), None, Some(7)]);
        assert_eq!(events[0].alarms[0].kind, AlarmKind::NotInLedger);
        assert!(events[0]
            .event
            .cert
            .as_ref()
            .unwrap()
            .key_id
            .ends_with(&format!("(serial 7) CA ECDSA {CA}")));
        // The hostile fields, decoded, are judged as they are (no such key ID) and kept raw
        // for the renderer, which escapes them.
        let e = &events[1];
        assert_eq!(e.alarms[0].kind, AlarmKind::KeyIdMismatch);
        assert_eq!(e.event.user.as_deref(), Some("r\u{1b}[2Joot\0"));
        assert_eq!(e.event.from.as_deref(), Some("10.0.0.\u{fffd}"));
        assert_eq!(events[2].alarms[0].kind, AlarmKind::UnreadableLogin);
        assert_eq!(events[3].verdict, Verdict::Ok);
        assert_eq!(
            bad,
            vec![
                "longer than 64 KiB",
                "a certificate login sshd's line does not fully show",
                "not exactly one of sshd's certificate messages",
                "not in a known log format",
            ]
        );
        // Every alarm text is safe to show.
        for j in &events {
            for a in &j.alarms {
                assert!(crate::text::is_safe(&a.text), "{}", a.text);
            }
        }
    }

    #[test]
    fn an_sshd_e_file_with_lf_only_lines_is_read_line_by_line() {
        let (_dir, ledgers) = fixture_state();
        // A copy whose CRs were stripped: every line stands alone (nothing is joined).
        let bytes = std::fs::read(Path::new(FIXTURES).join("sshd-E.log")).unwrap();
        let stripped: Vec<u8> = bytes.into_iter().filter(|b| *b != b'\r').collect();
        let (events, bad, stats) = audit(&ledgers, &stripped, Some("h"), None);
        assert_eq!(stats.joined, 0);
        // The evil key ID's lines are each cut: two offers and the login unreadable.
        assert!(events.iter().any(|j| j
            .alarms
            .iter()
            .any(|a| a.kind == AlarmKind::UnreadableLogin)));
        assert!(!bad.is_empty());
    }

    #[test]
    fn a_compressed_log_is_refused_with_the_way_to_read_it() {
        let (_dir, ledgers) = fixture_state();
        let mut a = Auditor::new(
            &ledgers,
            Options {
                now: now(),
                since: None,
            },
        );
        let err = a
            .read(
                0,
                &[0x1f, 0x8b, 8, 0, 0][..],
                None,
                "auth.log.2.gz",
                &mut |_| {},
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("auth.log.2.gz is compressed"),
            "{err}"
        );
        assert!(err
            .hint()
            .unwrap()
            .contains("zcat auth.log.2.gz | breakglass-ca audit -"));
    }
}
