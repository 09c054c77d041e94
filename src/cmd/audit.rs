//! `audit`: sshd logs against the ledgers, as a table (alarms first) or one JSON object per
//! event. Reads logs and ledgers only: no token, no PIN, nothing written or locked.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local, Utc};

use crate::audit::{Auditor, Judged, Kind, Ledgers, Options, Output, Stats, Verdict};
use crate::cli::{AuditArgs, Since};
use crate::cmd::Globals;
use crate::error::{Error, Result};
use crate::text::{self, Esc, ShowPath};
use crate::ui::{self, say};

/// The most bytes of an unparseable line `--verbose` shows.
const SHOWN_BYTES: usize = 300;

pub fn run(g: &Globals, args: &AuditArgs) -> Result<()> {
    check_args(args)?;
    let dirs = distinct(&g.state_dirs);
    let ledgers = Ledgers::load(&dirs, &mut |n| say(n))?;
    let now = Local::now();
    let since = args.since.map(|s| match s {
        Since::At(t) => t,
        // A duration longer than any time can go back (99999999h): since the beginning.
        Since::Ago(d) => i64::try_from(d.as_secs())
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .and_then(|d| now.with_timezone(&Utc).checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    });
    let names: Vec<String> = args
        .logs
        .iter()
        .map(|p| match p == Path::new("-") {
            true => "stdin".to_string(),
            false => p.shown(),
        })
        .collect();
    let mut auditor = Auditor::new(&ledgers, Options { now, since });
    let mut sink = Sink {
        json: args.json,
        verbose: args.verbose,
        names: &names,
        rows: Vec::new(),
        out: std::io::BufWriter::new(std::io::stdout().lock()),
        write_error: None,
        counts: Counts::default(),
    };
    for (i, path) in args.logs.iter().enumerate() {
        let host = match args.hosts.as_slice() {
            [] => None,
            [one] => Some(one.as_str()),
            many => many.get(i).map(String::as_str),
        };
        let reader = open(path)?;
        auditor.read(i, reader, host, &names[i], &mut |o| sink.take(o))?;
        if let Some(e) = sink.write_error.take() {
            return Err(Error::io("cannot write to stdout", e));
        }
    }
    auditor.finish(&mut |o| sink.take(o));
    if !args.json {
        sink.table()?;
    }
    if let Some(e) = sink.write_error.take() {
        return Err(Error::io("cannot write to stdout", e));
    }
    sink.out
        .flush()
        .map_err(|e| Error::io("cannot write to stdout", e))?;
    let counts = sink.counts.clone();
    drop(sink);
    summary(&ledgers, auditor.stats(), &counts, &names, since);
    if counts.alarms > 0 {
        return Err(Error::invalid(format!(
            "ALARM: {} certificate event(s) that the ledgers do not account for (listed first{})",
            counts.alarms,
            if args.json { ", verdict \"alarm\"" } else { "" }
        ))
        .with_hint("treat each as an incident until explained: 'breakglass-ca log show SERIAL' shows a serial's record; docs/runbook.md, section 3, step 4"));
    }
    Ok(())
}

fn check_args(args: &AuditArgs) -> Result<()> {
    if args.hosts.len() > 1 && args.hosts.len() != args.logs.len() {
        return Err(Error::usage(format!(
            "--host was given {} times for {} LOG file(s)",
            args.hosts.len(),
            args.logs.len()
        ))
        .with_hint("give --host once (for every LOG), or once per LOG in the same order"));
    }
    if args.logs.iter().filter(|p| *p == Path::new("-")).count() > 1 {
        return Err(Error::usage("'-' (stdin) was given more than once")
            .with_hint("stdin can be read once; give the other logs as files"));
    }
    if args.hosts.iter().any(|h| h.is_empty() || !text::is_safe(h)) {
        return Err(Error::usage("--host needs a plain host name"));
    }
    Ok(())
}

/// The state directories, each once (the same directory named twice is read once).
fn distinct(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut out = Vec::new();
    for d in dirs {
        let real = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        if !seen.contains(&real) {
            seen.push(real);
            out.push(d.clone());
        }
    }
    out
}

/// A log: a file (a pipe such as `<(journalctl …)` too), or stdin for `-`. Never a directory.
fn open(path: &Path) -> Result<Box<dyn Read>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin()));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::file("read the log", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::file("read the log", path, e))?;
    if meta.is_dir() {
        return Err(
            Error::usage(format!("the log {} is a directory", path.shown()))
                .with_hint("give the log files themselves, e.g. /var/log/auth.log"),
        );
    }
    Ok(Box::new(file))
}

#[derive(Clone, Debug, Default)]
struct Counts {
    events: u64,
    alarms: u64,
    logins: u64,
    offers: u64,
    refused: u64,
    other_ca: u64,
    unknown: u64,
}

struct Sink<'a, W: Write> {
    json: bool,
    verbose: bool,
    names: &'a [String],
    rows: Vec<Judged>,
    out: W,
    write_error: Option<std::io::Error>,
    counts: Counts,
}

impl<W: Write> Sink<'_, W> {
    fn take(&mut self, o: Output<'_>) {
        match o {
            Output::Unparseable { source, line, why } => {
                if self.verbose {
                    let shown = &line[..line.len().min(SHOWN_BYTES)];
                    say(format!(
                        "unparseable: {} line {} ({why}): {}{}",
                        self.names[source.input],
                        source.line,
                        text::escape_bytes(shown),
                        if line.len() > SHOWN_BYTES {
                            " [...]"
                        } else {
                            ""
                        }
                    ));
                }
            }
            Output::Event(j) => {
                let c = &mut self.counts;
                c.events += 1;
                match j.verdict {
                    Verdict::Alarm => c.alarms += 1,
                    Verdict::OtherCa => c.other_ca += 1,
                    Verdict::Unknown => c.unknown += 1,
                    Verdict::Ok | Verdict::Offer | Verdict::Refused => {}
                }
                match j.event.kind {
                    Kind::Login => c.logins += 1,
                    Kind::Offer => c.offers += 1,
                    Kind::Refused => c.refused += 1,
                }
                if self.json {
                    let line = text::json_ascii(&to_json(&j, self.names), false).map(|mut l| {
                        l.push('\n');
                        l
                    });
                    if let Ok(line) = line {
                        if self.write_error.is_none() {
                            if let Err(e) = self.out.write_all(line.as_bytes()) {
                                self.write_error = Some(e);
                            }
                        }
                    }
                } else {
                    self.rows.push(*j);
                }
            }
        }
    }

    /// The table: alarms first, then every other event, each group in log order.
    fn table(&mut self) -> Result<()> {
        let mut rows = std::mem::take(&mut self.rows);
        rows.sort_by_key(|j| (j.verdict != Verdict::Alarm, j.event.source));
        if rows.is_empty() {
            return Ok(());
        }
        let cells: Vec<[String; 9]> = rows.iter().map(cells).collect();
        const HEAD: [&str; 9] = [
            "TIME (UTC)",
            "HOST",
            "USER",
            "FROM",
            "SERIAL",
            "KEY ID",
            "REQUESTER",
            "REASON",
            "VERDICT",
        ];
        const MAX: [usize; 9] = [19, 20, 16, 24, 20, 36, 20, 28, 200];
        let mut width = [0usize; 9];
        for (i, h) in HEAD.iter().enumerate() {
            width[i] = h.len();
            for c in &cells {
                width[i] = width[i].max(c[i].chars().count().min(MAX[i]));
            }
        }
        let mut text = String::new();
        let row = |text: &mut String, c: &[String]| {
            let mut line = String::new();
            for (i, cell) in c.iter().enumerate() {
                let cell = cut(cell, MAX[i]);
                if i + 1 == c.len() {
                    line.push_str(&cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = width[i]));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        };
        let head: Vec<String> = HEAD.iter().map(|s| s.to_string()).collect();
        row(&mut text, &head);
        for (j, c) in rows.iter().zip(&cells) {
            row(&mut text, c);
            for a in &j.alarms {
                text.push_str(&format!("    ! {}: {}\n", a.kind.code(), a.text));
            }
            // An alarm's key ID in full when the column cut it.
            if let Some(id) = j.event.cert.as_ref().map(|c| Esc(&c.key_id).to_string()) {
                if !j.alarms.is_empty() && id.chars().count() > MAX[5] {
                    text.push_str(&format!("    key ID: {id}\n"));
                }
            }
            if self.verbose {
                for n in &j.notes {
                    text.push_str(&format!("    note: {n}\n"));
                }
                if let Some(r) = &j.record {
                    text.push_str(&match &r.approvers {
                        Some(a) if !a.is_empty() => format!(
                            "    approved by: {}\n",
                            a.iter()
                                .map(|n| Esc(n).to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        Some(_) => {
                            "    approved by: nobody (a signed request, no approval required)\n"
                                .into()
                        }
                        None => "    approved by: nobody (no signed request)\n".into(),
                    });
                }
                text.push_str(&format!(
                    "    at {} line {}\n",
                    self.names[j.event.source.input], j.event.source.line
                ));
            }
        }
        ui::print(text.trim_end())
    }
}

/// `text` in at most `max` characters (`...` at the end when cut).
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(3)).collect();
    s.push_str("...");
    s
}

fn shown_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn or_dash(s: Option<&str>) -> String {
    s.map_or("-".to_string(), |s| Esc(s).to_string())
}

fn cells(j: &Judged) -> [String; 9] {
    let e = &j.event;
    let user = e.user.as_deref().map(|u| match e.invalid_user {
        true => format!("{u} (invalid)"),
        false => u.to_string(),
    });
    let from = e.from.as_deref().map(|f| match e.port {
        Some(p) => format!("{f}:{p}"),
        None => f.to_string(),
    });
    [
        shown_time(e.time),
        or_dash(e.host.as_deref()),
        or_dash(user.as_deref()),
        or_dash(from.as_deref()),
        e.cert.as_ref().map_or("-".into(), |c| c.serial.to_string()),
        or_dash(e.cert.as_ref().map(|c| c.key_id.as_str())),
        or_dash(j.requester().as_deref()),
        or_dash(j.record.as_ref().map(|r| r.reason.as_str())),
        verdict_text(j),
    ]
}

/// The verdict column: `ALARM not-in-ledger`, `ok`, `refused: Certificate invalid: expired`,
/// `other CA: login`…
fn verdict_text(j: &Judged) -> String {
    let e = &j.event;
    let refused = || match &e.reason {
        Some(r) => format!("refused: {}", Esc(r)),
        None => "refused".to_string(),
    };
    match j.verdict {
        Verdict::Alarm => {
            let kinds: Vec<&str> = j.alarms.iter().map(|a| a.kind.code()).collect();
            format!("ALARM {}", kinds.join(","))
        }
        Verdict::Ok => "ok".into(),
        Verdict::Offer => "offer (accepted, no login)".into(),
        Verdict::Refused => refused(),
        Verdict::OtherCa => match e.kind {
            Kind::Refused => format!("other CA, {}", refused()),
            k => format!("other CA: {}", k.name()),
        },
        Verdict::Unknown => match e.kind {
            Kind::Refused => format!("{}, CA unknown", refused()),
            k => format!("{}, CA unknown", k.name()),
        },
    }
}

/// One event as `--json` writes it (the fields are documented in docs/hosts.md, section 5):
/// the fields in this order, `null` for what the log does not say.
#[derive(serde::Serialize)]
struct JsonEvent<'a> {
    time: Option<String>,
    host: Option<&'a str>,
    pid: Option<u32>,
    log: &'a str,
    line: u64,
    event: &'static str,
    verdict: &'static str,
    alarms: Vec<JsonAlarm<'a>>,
    user: Option<&'a str>,
    invalid_user: bool,
    from: Option<&'a str>,
    port: Option<u16>,
    key_type: Option<&'a str>,
    key_fingerprint: Option<&'a str>,
    key_id: Option<&'a str>,
    serial: Option<u64>,
    ca_type: Option<&'a str>,
    ca_fingerprint: Option<&'a str>,
    ca: Option<&'static str>,
    state_dir: Option<String>,
    sshd_reason: Option<&'a str>,
    revoked_by_file: Option<&'a str>,
    record: Option<JsonRecord<'a>>,
    revoked: Option<JsonRevoked>,
    requesters: Vec<JsonRequester<'a>>,
    notes: &'a [String],
}

#[derive(serde::Serialize)]
struct JsonAlarm<'a> {
    kind: &'static str,
    text: &'a str,
}

#[derive(serde::Serialize)]
struct JsonRecord<'a> {
    serial: u64,
    key_id: &'a str,
    principals: &'a [String],
    valid_after: &'a str,
    valid_before: &'a str,
    requester: &'a str,
    requester_fingerprint: &'a str,
    reason: &'a str,
    /// The approvers of a certificate minted from a signed request (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    approvers: Option<&'a [String]>,
}

#[derive(serde::Serialize)]
struct JsonRevoked {
    at: String,
    how: &'static str,
}

#[derive(serde::Serialize)]
struct JsonRequester<'a> {
    requester: &'a str,
    serial: u64,
}

fn to_json<'a>(j: &'a Judged, names: &'a [String]) -> JsonEvent<'a> {
    let e = &j.event;
    let c = e.cert.as_ref();
    JsonEvent {
        time: e.time.map(crate::issue::rfc3339),
        host: e.host.as_deref(),
        pid: e.pid,
        log: &names[e.source.input],
        line: e.source.line,
        event: e.kind.name(),
        verdict: j.verdict.code(),
        alarms: j
            .alarms
            .iter()
            .map(|a| JsonAlarm {
                kind: a.kind.code(),
                text: &a.text,
            })
            .collect(),
        user: e.user.as_deref(),
        invalid_user: e.invalid_user,
        from: e.from.as_deref(),
        port: e.port,
        key_type: e.key_type.as_deref(),
        key_fingerprint: e.key_fingerprint.as_deref(),
        key_id: c.map(|c| c.key_id.as_str()),
        serial: c.map(|c| c.serial),
        ca_type: c.map(|c| c.ca_type.as_str()),
        ca_fingerprint: c.map(|c| c.ca_fingerprint.as_str()),
        ca: j.ca.as_ref().map(|(role, _)| role.name()),
        state_dir: j.ca.as_ref().map(|(_, d)| d.to_string_lossy().into_owned()),
        sshd_reason: e.reason.as_deref(),
        revoked_by_file: e.revoked_by.as_deref(),
        record: j.record.as_ref().map(|r| JsonRecord {
            serial: r.serial,
            key_id: &r.key_id,
            principals: &r.principals,
            valid_after: &r.valid_after,
            valid_before: &r.valid_before,
            requester: &r.requester,
            requester_fingerprint: &r.requester_fingerprint,
            reason: &r.reason,
            approvers: r.approvers.as_deref(),
        }),
        revoked: j.revoked.as_ref().map(|r| JsonRevoked {
            at: crate::issue::rfc3339(r.at),
            how: r.how,
        }),
        requesters: j
            .requesters
            .iter()
            .map(|(n, s)| JsonRequester {
                requester: n,
                serial: *s,
            })
            .collect(),
        notes: &j.notes,
    }
}

fn summary(
    ledgers: &Ledgers,
    s: &Stats,
    c: &Counts,
    names: &[String],
    since: Option<DateTime<Utc>>,
) {
    let mut cas: Vec<String> = Vec::new();
    for ca in ledgers.cas() {
        let what = match ca.ledger_path() {
            Some(p) => format!("ledger {}", p.shown()),
            None => "no ledger given".to_string(),
        };
        cas.push(format!(
            "{} ({} CA, {what})",
            Esc(&ca.fingerprint),
            ca.role.name()
        ));
    }
    say(format!("our CAs: {}", cas.join("; ")));
    say(format!(
        "read {} line(s) from {}; {} certificate event(s): {} login(s), {} offer(s), {} refused; {} of other CAs; {} ALARM(S)",
        s.lines,
        names.join(", "),
        c.events,
        c.logins,
        c.offers,
        c.refused,
        c.other_ca,
        c.alarms
    ));
    if let Some(t) = since {
        say(format!(
            "left out: {} event(s) before {} (--since)",
            s.before_since,
            ui::both_times(t)
        ));
    }
    if s.unparseable > 0 {
        say(format!(
            "note: {} line(s) look like sshd certificate lines but could not be read ({} longer than 64 KiB); --verbose shows them",
            s.unparseable, s.too_long
        ));
    }
    if c.unknown > 0 {
        say(format!("note: {} event(s) name no CA that can be compared (a refusal reason alone: sshd logs the serial of a refusal only at LogLevel VERBOSE)", c.unknown));
    }
    if s.without_host > 0 {
        say(format!(
            "note: {} certificate line(s) name no host (sshd -E output): give --host NAME",
            s.without_host
        ));
    }
    if s.joined > 0 {
        say(format!("note: {} line(s) of an sshd -E log were parts of messages with a raw newline (in a key ID), joined back", s.joined));
    }
    if s.certificate_lines == 0 {
        say("note: no certificate event found: are these sshd's logs (journalctl -u ssh, /var/log/auth.log)?");
    }
}
