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
    /// lines that carry none. Events and unparseable lines go to `out` as they are found.
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
                .map_err(|e| Error::io(format!("cannot read {}", crate::text::escape(name)), e))?;
            let Some(too_long) = next else { break };
            line_no += 1;
            if line_no == 1 && lines.buf.starts_with(&[0x1f, 0x8b]) {
                return Err(Error::usage(format!(
                    "{} is compressed (gzip)",
                    crate::text::escape(name)
                ))
                .with_hint(format!(
                    "decompress it into the audit: zcat {} | breakglass-ca audit -",
                    crate::text::escape(name)
                )));
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
