//! From sshd's messages to certificate events: one login is one event, however many lines
//! sshd wrote for it.
//!
//! sshd logs a certificate several times: the VERBOSE `Accepted certificate` line once when
//! the client offers it (the "query" before any signature) and again when it signs, then the
//! INFO `Accepted publickey` line of the login; a refusal logs its reason first (before 10.1
//! the reason alone, `Certificate invalid: expired`; `Authentication key … revoked by file`),
//! then `Failed publickey` with the serial. All of a connection's lines come from one process,
//! so they are joined by host and PID (by file and order for `sshd -E`, which logs no PID):
//! an offer waits for its login, a reason for its `Failed` line. An offer that no login
//! follows is an event of its own, and so is a reason that no line names.
//!
//! Only what is waiting is kept, at most [`MAX_PENDING`] processes: memory stays flat
//! whatever the size of the log.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::event::{Cert, Message, Outcome};

/// The most processes with something waiting; beyond it, the one waiting longest becomes an
/// event of its own.
pub const MAX_PENDING: usize = 4096;

/// What happened to a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `Accepted publickey`: a completed login.
    Login,
    /// The certificate passed sshd's checks but no login followed (the client only offered it,
    /// or another method was still required: `Partial publickey`).
    Offer,
    /// sshd refused it.
    Refused,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Offer => "offer",
            Kind::Refused => "refused",
        }
    }

    /// Whether sshd accepted the certificate (a login or an offer it accepted).
    pub fn accepted(self) -> bool {
        matches!(self, Kind::Login | Kind::Offer)
    }
}

/// Where a line came from: the index of the input and the line number (from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    pub input: usize,
    pub line: u64,
}

/// One certificate event, every field from the log (untrusted text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    /// From the line that decided it (the login, the refusal); `None` in `sshd -E` output.
    pub time: Option<DateTime<Utc>>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub source: Source,
    pub user: Option<String>,
    pub invalid_user: bool,
    pub from: Option<String>,
    pub port: Option<u16>,
    pub key_type: Option<String>,
    /// The certificate's key: the requester's.
    pub key_fingerprint: Option<String>,
    /// `None` when sshd named no certificate (a reason or revocation line alone).
    pub cert: Option<Cert>,
    /// sshd's reason for a refusal.
    pub reason: Option<String>,
    /// The KRL that refused it (`revoked by file`).
    pub revoked_by: Option<String>,
    /// An `Accepted publickey … -CERT` line that does not show its certificate (cut short).
    pub unreadable: bool,
}

impl Event {
    /// An event of `kind` with nothing known but where and when.
    pub fn blank(
        kind: Kind,
        time: Option<DateTime<Utc>>,
        host: Option<String>,
        pid: Option<u32>,
        source: Source,
    ) -> Event {
        Event {
            kind,
            time,
            host,
            pid,
            source,
            user: None,
            invalid_user: false,
            from: None,
            port: None,
            key_type: None,
            key_fingerprint: None,
            cert: None,
            reason: None,
            revoked_by: None,
            unreadable: false,
        }
    }
}

/// A message with where and when it was logged.
#[derive(Clone, Debug)]
pub struct Logged {
    pub message: Message,
    pub time: Option<DateTime<Utc>>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub source: Source,
}

/// The process a line belongs to: host and PID, or the input for lines without a PID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    host: Option<String>,
    pid: Option<u32>,
    input: Option<usize>,
}

#[derive(Default)]
struct Slot {
    offer: Option<Logged>,
    reason: Option<Logged>,
    /// When this slot was last touched (a counter), for eviction.
    touched: u64,
}

/// Joins messages into [`Event`]s.
#[derive(Default)]
pub struct Correlator {
    slots: HashMap<Key, Slot>,
    clock: u64,
}

fn same(a: &Cert, b: &Cert) -> bool {
    a.serial == b.serial && a.ca_fingerprint == b.ca_fingerprint && a.key_id == b.key_id
}

impl Correlator {
    /// Take one message; every event it completes goes to `out`.
    pub fn push(&mut self, m: Logged, out: &mut dyn FnMut(Event)) {
        let key = Key {
            host: m.host.clone(),
            pid: m.pid,
            input: m.pid.is_none().then_some(m.source.input),
        };
        self.clock += 1;
        if !self.slots.contains_key(&key) && self.slots.len() >= MAX_PENDING {
            self.evict(out);
        }
        let slot = self.slots.entry(key.clone()).or_default();
        slot.touched = self.clock;
        match &m.message {
            Message::CertAccepted { cert, .. } => {
                let repeat = matches!(&slot.offer, Some(Logged { message: Message::CertAccepted { cert: c, .. }, .. }) if same(c, cert));
                if !repeat {
                    if let Some(old) = slot.offer.replace(m) {
                        out(offer(old));
                    }
                }
            }
            Message::Publickey { outcome, cert, .. } => {
                let outcome = *outcome;
                let offered = slot.offer.take();
                if let Some(o) = offered {
                    let matches = matches!(&o.message, Message::CertAccepted { cert: c, .. } if same(c, cert));
                    if !matches {
                        out(offer(o));
                    }
                }
                let reason = slot.reason.take();
                match outcome {
                    Outcome::Accepted => {
                        if let Some(r) = reason {
                            out(alone(r));
                        }
                        out(from_publickey(&m, Kind::Login, None));
                    }
                    Outcome::Partial => {
                        if let Some(r) = reason {
                            out(alone(r));
                        }
                        out(from_publickey(&m, Kind::Offer, None));
                    }
                    Outcome::Failed => {
                        let (mine, other) = match reason {
                            Some(r) if reason_fits(&r.message, &m.message) => (Some(r), None),
                            r => (None, r),
                        };
                        if let Some(r) = other {
                            out(alone(r));
                        }
                        out(from_publickey(&m, Kind::Refused, mine.as_ref()));
                    }
                }
            }
            Message::CertRefused { .. } | Message::Reason(_) | Message::Revoked { .. } => {
                if let Some(old) = slot.reason.replace(m) {
                    out(alone(old));
                }
            }
        }
        if slot.offer.is_none() && slot.reason.is_none() {
            self.slots.remove(&key);
        }
    }

    /// Everything still waiting becomes an event (at the end of the input), oldest first.
    pub fn finish(&mut self, out: &mut dyn FnMut(Event)) {
        let mut slots: Vec<Slot> = self.slots.drain().map(|(_, s)| s).collect();
        slots.sort_by_key(|s| s.touched);
        for s in slots {
            flush(s, out);
        }
    }

    /// How many processes have something waiting.
    pub fn pending(&self) -> usize {
        self.slots.len()
    }

    fn evict(&mut self, out: &mut dyn FnMut(Event)) {
        let oldest = self
            .slots
            .iter()
            .min_by_key(|(_, s)| s.touched)
            .map(|(k, _)| k.clone());
        if let Some(slot) = oldest.and_then(|k| self.slots.remove(&k)) {
            flush(slot, out);
        }
    }
}

fn flush(s: Slot, out: &mut dyn FnMut(Event)) {
    let mut events: Vec<Event> = Vec::new();
    if let Some(o) = s.offer {
        events.push(offer(o));
    }
    if let Some(r) = s.reason {
        events.push(alone(r));
    }
    events.sort_by_key(|e| e.source);
    for e in events {
        out(e);
    }
}

/// Whether a waiting refusal belongs to the `Failed publickey` line `failed`: a revocation of
/// the same key, a 10.1 refusal of the same certificate, or a reason alone (which names
/// nothing: the next `Failed` line of the process is its certificate's).
fn reason_fits(reason: &Message, failed: &Message) -> bool {
    let Message::Publickey {
        key_fingerprint,
        cert,
        ..
    } = failed
    else {
        return false;
    };
    match reason {
        Message::Reason(_) => true,
        Message::Revoked {
            key_fingerprint: k, ..
        } => k == key_fingerprint,
        Message::CertRefused { cert: c, .. } => same(c, cert),
        _ => false,
    }
}

fn blank(kind: Kind, l: &Logged) -> Event {
    Event::blank(kind, l.time, l.host.clone(), l.pid, l.source)
}

/// An `Accepted certificate` line that no login followed.
fn offer(l: Logged) -> Event {
    let mut e = blank(Kind::Offer, &l);
    if let Message::CertAccepted { cert, .. } = l.message {
        e.cert = Some(cert);
    }
    e
}

/// A refusal line that no `Failed publickey` line followed.
fn alone(l: Logged) -> Event {
    let mut e = blank(Kind::Refused, &l);
    apply_reason(&mut e, &l.message);
    e
}

fn apply_reason(e: &mut Event, m: &Message) {
    match m {
        Message::Reason(r) => e.reason = Some(r.clone()),
        Message::CertRefused { cert, reason } => {
            e.reason = Some(reason.clone());
            if e.cert.is_none() {
                e.cert = Some(cert.clone());
            }
        }
        Message::Revoked {
            key_type,
            key_fingerprint,
            file,
            unreadable,
        } => {
            e.reason = Some(if *unreadable {
                format!("the revoked keys file {file} cannot be read (sshd refuses every key)")
            } else {
                "revoked (RevokedKeys)".to_string()
            });
            e.revoked_by = (!unreadable).then(|| file.clone());
            e.key_type.get_or_insert_with(|| key_type.clone());
            e.key_fingerprint
                .get_or_insert_with(|| key_fingerprint.clone());
        }
        Message::Publickey { .. } | Message::CertAccepted { .. } => {}
    }
}

fn from_publickey(l: &Logged, kind: Kind, reason: Option<&Logged>) -> Event {
    let mut e = blank(kind, l);
    if let Message::Publickey {
        user,
        invalid_user,
        from,
        port,
        key_type,
        key_fingerprint,
        cert,
        ..
    } = &l.message
    {
        e.user = Some(user.clone());
        e.invalid_user = *invalid_user;
        e.from = Some(from.clone());
        e.port = Some(*port);
        e.key_type = Some(key_type.clone());
        e.key_fingerprint = Some(key_fingerprint.clone());
        e.cert = Some(cert.clone());
    }
    if let Some(r) = reason {
        apply_reason(&mut e, &r.message);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::super::event::{parse, Parsed};
    use super::*;

    const CA: &str = "SHA256:v1NVoyF2+6SW8XSTrHaHpaU4zv7xP1VyTk01VhJMozE";
    const KEY: &str = "SHA256:BCWxkWIub9X6d/9cVqrUcOgVfBg6/sRbUItLgccfjM4";

    fn run(lines: &[(u32, &str)]) -> Vec<Event> {
        let mut c = Correlator::default();
        let mut events = Vec::new();
        for (i, (pid, text)) in lines.iter().enumerate() {
            let Parsed::Message(message) = parse(text.as_bytes()) else {
                panic!("{text}")
            };
            let m = Logged {
                message,
                time: None,
                host: Some("h".into()),
                pid: (*pid != 0).then_some(*pid),
                source: Source {
                    input: 0,
                    line: i as u64 + 1,
                },
            };
            c.push(m, &mut |e| events.push(e));
        }
        c.finish(&mut |e| events.push(e));
        events
    }

    fn accepted_cert(id: &str, serial: u64) -> String {
        format!("Accepted certificate ID \"{id}\" (serial {serial}) signed by ECDSA CA {CA} via /etc/ssh/ca.pub")
    }

    fn publickey(outcome: &str, id: &str, serial: u64) -> String {
        format!("{outcome} publickey for root from 127.0.0.1 port 4 ssh2: ED25519-CERT {KEY} ID {id} (serial {serial}) CA ECDSA {CA}")
    }

    #[test]
    fn one_login_is_one_event_and_an_offer_alone_is_its_own() {
        let events = run(&[
            (10, &accepted_cert("a", 1)),
            (11, &accepted_cert("b", 2)), // another connection offers and leaves
            (10, &accepted_cert("a", 1)),
            (10, &publickey("Accepted", "a", 1)),
            (12, "error: Certificate invalid: expired"),
            (12, &publickey("Failed", "c", 3)),
            (
                13,
                &format!("error: Authentication key ED25519-CERT {KEY} revoked by file /k"),
            ),
            (13, &publickey("Failed", "d", 4)),
            (
                14,
                "error: Certificate does not contain an authorized principal",
            ),
        ]);
        let got: Vec<(Kind, Option<u64>, Option<&str>, u64)> = events
            .iter()
            .map(|e| {
                (
                    e.kind,
                    e.cert.as_ref().map(|c| c.serial),
                    e.reason.as_deref(),
                    e.source.line,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Kind::Login, Some(1), None, 4),
                (
                    Kind::Refused,
                    Some(3),
                    Some("Certificate invalid: expired"),
                    6
                ),
                (Kind::Refused, Some(4), Some("revoked (RevokedKeys)"), 8),
                (Kind::Offer, Some(2), None, 2),
                (
                    Kind::Refused,
                    None,
                    Some("Certificate does not contain an authorized principal"),
                    9
                ),
            ]
        );
        assert_eq!(events[2].revoked_by.as_deref(), Some("/k"));
        assert_eq!(events[0].user.as_deref(), Some("root"));
    }

    #[test]
    fn lines_without_a_pid_join_in_order_and_memory_stays_bounded() {
        let events = run(&[
            (0, &accepted_cert("a", 1)),
            (0, &accepted_cert("a", 1)),
            (0, &publickey("Accepted", "a", 1)),
            (0, &accepted_cert("x", 9)),
            (0, &accepted_cert("y", 8)),
        ]);
        let kinds: Vec<_> = events
            .iter()
            .map(|e| (e.kind, e.cert.as_ref().unwrap().serial))
            .collect();
        assert_eq!(
            kinds,
            vec![(Kind::Login, 1), (Kind::Offer, 9), (Kind::Offer, 8)]
        );
        // Offers from more processes than MAX_PENDING: the oldest are let go as events.
        let mut c = Correlator::default();
        let mut n = 0;
        let Parsed::Message(message) = parse(accepted_cert("a", 1).as_bytes()) else {
            panic!()
        };
        for pid in 0..(MAX_PENDING as u32 * 3) {
            let m = Logged {
                message: message.clone(),
                time: None,
                host: None,
                pid: Some(pid + 1),
                source: Source {
                    input: 0,
                    line: u64::from(pid),
                },
            };
            c.push(m, &mut |_| n += 1);
            assert!(c.pending() <= MAX_PENDING);
        }
        assert_eq!(n, MAX_PENDING * 2);
        c.finish(&mut |_| n += 1);
        assert_eq!((n, c.pending()), (MAX_PENDING * 3, 0));
    }

    #[test]
    fn a_revocation_of_another_key_is_not_this_refusals_reason() {
        let events = run(&[
            (5, "error: Authentication key ED25519-CERT SHA256:AAAAbbbbCCCCddddEEEEffffGGGGhhhhIIIIjjjjKKK revoked by file /k"),
            (5, &publickey("Failed", "c", 3)),
        ]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].cert, None);
        assert_eq!(
            events[0].key_fingerprint.as_deref(),
            Some("SHA256:AAAAbbbbCCCCddddEEEEffffGGGGhhhhIIIIjjjjKKK")
        );
        assert_eq!(events[1].reason, None);
    }
}
