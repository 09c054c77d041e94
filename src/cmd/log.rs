//! `log`: the issuance ledger as a table or JSON, one record in full, its verification, and an
//! export bundle that an auditor verifies without the token.

use std::io::BufWriter;
use std::path::Path;

use ssh_key::public::KeyData;
use ssh_key::{Certificate, HashAlg};

use crate::cli::{LogAction, LogArgs};
use crate::cmd::ca_source::{read_ca_pub, read_key_file, CaFile, CaSource};
use crate::cmd::{inspect, Globals};
use crate::config::{Config, CA_PUB_FILE};
use crate::error::{Error, Result};
use crate::fsx::{self, write_new};
use crate::ledger::checkpoint;
use crate::ledger::{Copy, Entry, Ledger, Revocation, Verified, LEDGER_FILE};
use crate::text::ShowPath;
use crate::text::{self, Esc};
use crate::ui::{self, say};

pub fn run(g: &Globals, args: &LogArgs) -> Result<()> {
    match &args.action {
        None if args.revoked_keys => revoked_keys(g),
        None => list(g, args.json),
        Some(LogAction::Show {
            serial: Some(serial),
            ..
        }) => show(g, *serial),
        Some(LogAction::Show {
            revocation: Some(k),
            ..
        }) => show_revocation(g, *k),
        Some(LogAction::Show { .. }) => Err(Error::usage(
            "log show needs a serial, or --revocation K",
        )
        .with_hint("'breakglass-ca log' lists every record: a certificate by its serial, a revocation as R1, R2...")),
        Some(LogAction::Verify { bundle, ca_pubkey }) => {
            let given = ca_pubkey
                .as_deref()
                .map(|p| read_key_file(p, "--ca-pubkey"))
                .transpose()?;
            match bundle {
                Some(dir) => verify_bundle(dir, given.as_ref()).map(|_| ()),
                None => verify_state(g, given.as_ref(), None).map(|_| ()),
            }
        }
        Some(LogAction::Export { output }) => export(g, output),
    }
}

fn records(g: &Globals) -> Result<Vec<(String, Entry)>> {
    Ledger::new(&g.state_dir).read()
}

fn list(g: &Globals, json: bool) -> Result<()> {
    if !g.state_dir.join(LEDGER_FILE).exists() && g.config()?.is_none() {
        return Err(Error::usage(format!("{} holds no CA configuration and no ledger", g.state_dir.shown()))
            .with_hint("point --state-dir (or BREAKGLASS_CA_STATE_DIR) at the directory where 'breakglass-ca init' was run"));
    }
    let records = records(g)?;
    let mut out = String::new();
    if json {
        // Each ledger line, the same JSON value in ASCII: a C1 control, bidi override or
        // U+2028 in a record cannot act on the terminal that shows it.
        for (line, _) in &records {
            out.push_str(&text::ascii_json_text(line));
            out.push('\n');
        }
    } else {
        out.push_str(&table(&records));
        if records.is_empty() {
            say(format!(
                "no certificates issued yet (ledger {})",
                g.state_dir.join(LEDGER_FILE).shown()
            ));
        }
    }
    crate::cmd::write_stdout(&out)
}

/// `log --revoked-keys`: every requester key the ledger revokes, as OpenSSH public key lines
/// with their fingerprint as comment (sorted, each once), on stdout; a note on stderr. No
/// token: the CA comes from config.toml. The lines are what `revoke --requester-key FILE`
/// reads in another state directory.
fn revoked_keys(g: &Globals) -> Result<()> {
    let config = g.config()?.ok_or_else(|| {
        Error::usage(format!(
            "{} holds no CA configuration, so it has no ledger to read revocations from",
            g.state_dir.shown()
        ))
        .with_hint("point --state-dir (or BREAKGLASS_CA_STATE_DIR) at the directory where 'breakglass-ca init' was run")
    })?;
    let revoked = crate::cmd::ledger(&g.state_dir).revoked(&config.fingerprint)?;
    let mut out = String::new();
    for line in &revoked.requester_keys {
        let key = crate::key::parse_line(line)
            .map_err(|e| Error::ssh("a revoked requester key cannot be read", e))?;
        out.push_str(&format!(
            "{line} {}\n",
            crate::key::fingerprint(key.key_data())
        ));
    }
    match revoked.requester_keys.len() {
        0 => say(format!(
            "note: the ledger of the CA {} revokes no requester key: nothing printed",
            Esc(&config.fingerprint)
        )),
        n => say(format!(
            "note: the ledger of the CA {} revokes {n} requester key(s); revoke them in another state directory with 'breakglass-ca --state-dir STATE2 revoke --requester-key FILE --reason ...'",
            Esc(&config.fingerprint)
        )),
    }
    crate::cmd::write_stdout(&out)
}

/// Column widths of the `log` table (SERIAL is right-aligned in 6, REASON is last and whole).
const ISSUED_W: usize = 19;
const PRINCIPALS_W: usize = 20;
const REQUESTER_W: usize = 24;
const VALID_W: usize = 36;

/// The `log` table: a header, then one row per record in ledger order (revocations as R1,
/// R2...). Every field comes from the ledger file, which anyone who can write it controls: each
/// is escaped, and the principals and requester are cut to their column (`...`), so a long or
/// hostile one cannot push the others out of line (`log show` and `log --json` give them
/// whole). Times with their year, in UTC.
fn table(records: &[(String, Entry)]) -> String {
    let mut out = format!(
        "{:>6}  {:<ISSUED_W$}  {:<PRINCIPALS_W$}  {:<REQUESTER_W$}  {:<VALID_W$}  {}\n",
        "SERIAL", "ISSUED (UTC)", "PRINCIPALS", "REQUESTER", "VALID (UTC)", "REASON"
    );
    let mut k = 0;
    for (_, e) in records {
        let row = match e {
            Entry::Issued(r) => format!(
                "{:>6}  {}  {}  {}  {}  {}",
                r.serial,
                cell(&table_time(&r.issued_at), ISSUED_W),
                cell(&r.principals.join(","), PRINCIPALS_W),
                cell(&r.requester_comment, REQUESTER_W),
                window(&r.valid_after, &r.valid_before),
                Esc(&r.reason)
            ),
            Entry::Revoked(v) => {
                k += 1;
                format!(
                    "{:>6}  {}  {}  {}  {}",
                    format!("R{k}"),
                    cell(&table_time(&v.revoked_at), ISSUED_W),
                    cell("revoked", PRINCIPALS_W),
                    Esc(&what(v, 4)),
                    Esc(&v.reason)
                )
            }
        };
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

/// `text` escaped, cut to `width` characters (the last three `...` when cut) and padded to it.
fn cell(text: &str, width: usize) -> String {
    let shown = text::escape(text);
    let count = shown.chars().count();
    if count <= width {
        return format!("{shown}{}", " ".repeat(width - count));
    }
    let mut cut: String = shown.chars().take(width.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

/// An RFC 3339 time of the ledger as the table shows it: `2026-11-22 03:00:00` (UTC); anything
/// else as it is (escaped by [`cell`]).
fn table_time(t: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => t.to_string(),
    }
}

/// A validity window as the VALID column shows it, with its year: `2026-11-22 03:00:00 -
/// 03:20:00` within a day, `2026-11-22 23:50:00 - 11-23 00:10:00` across midnight (both pad
/// to the column), and both dates in full across a new year (5 characters beyond it). Times
/// that do not parse are shown as they are, cut to the column (UTC).
fn window(from: &str, until: &str) -> String {
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let (Some(a), Some(b)) = (parse(from), parse(until)) else {
        return cell(&format!("{from} - {until}"), VALID_W);
    };
    let end = if a.date_naive() == b.date_naive() {
        "%H:%M:%S"
    } else if a.format("%Y").to_string() == b.format("%Y").to_string() {
        "%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    format!(
        "{:<VALID_W$}",
        format!("{} - {}", a.format("%Y-%m-%d %H:%M:%S"), b.format(end))
    )
}

fn show(g: &Globals, serial: u64) -> Result<()> {
    let records = records(g)?;
    let Some(r) = records
        .iter()
        .filter_map(|(_, e)| e.issued())
        .find(|r| r.serial == serial)
    else {
        let last = records.last().map_or(0, |(_, e)| e.serial_after());
        return Err(Error::usage(format!(
            "no record with serial {serial} in the ledger (serials 1 to {last})"
        ))
        .with_hint("'breakglass-ca log' lists every record"));
    };
    let pretty =
        text::json_ascii(r, true).map_err(|e| Error::json("cannot format the record", e))?;
    let cert = Certificate::from_openssh(&r.certificate).map_err(|e| {
        Error::ssh(
            format!("the certificate of serial {serial} cannot be parsed"),
            e,
        )
    })?;
    let mut revoked = String::new();
    for (k, v) in revocations(&records) {
        let how = if v.revokes_serial(serial) {
            Some("its serial".to_string())
        } else if v.revokes_key_id(&r.key_id) {
            Some("its key ID".to_string())
        } else if v.revokes_requester(&r.requester_fingerprint) {
            Some(format!(
                "its requester key {}",
                Esc(&r.requester_fingerprint)
            ))
        } else if v.revokes_ca(&r.ca_fingerprint) {
            Some("the whole CA".to_string())
        } else {
            None
        };
        if let Some(how) = how {
            revoked.push_str(&format!(
                "\nREVOKED ({how}) {} (revocation R{k}; 'breakglass-ca log show --revocation {k}')",
                v.when_why()
            ));
        }
    }
    ui::print(format!(
        "{pretty}\n\n{}{}\n\n{}{revoked}",
        inspect::describe(&cert, &format!("serial {serial}")),
        dual_lines(r),
        Esc(&r.certificate)
    ))
}

/// What `log show` says of a record's signed request and approvals (escaped; `log verify`
/// checks them).
fn dual_lines(r: &crate::ledger::Record) -> String {
    let Some(d) = &r.dual_control else {
        return "\n\nDual control:   none (minted without a signed request)".into();
    };
    let fp = |line: &str| {
        crate::key::parse_line(line)
            .map(|k| crate::key::fingerprint(k.key_data()))
            .unwrap_or_else(|_| "unreadable key".into())
    };
    let mut out = format!(
        "\n\nRequest:        signed by {}'s key {} (proof of possession), nonce {}",
        Esc(&r.requester_comment),
        Esc(&r.requester_fingerprint),
        Esc(d.nonce().unwrap_or("-"))
    );
    out.push_str(&format!(
        "\nApprovals:      {} of {} required",
        d.approvals.len(),
        d.approvals_required
    ));
    for a in &d.approvals {
        out.push_str(&format!(
            "\nApproved by:    {} ({})",
            Esc(&a.approver),
            fp(&a.key)
        ));
    }
    out
}

/// The revocation records of `records`, numbered from 1 (R1, R2... in `log`).
fn revocations(records: &[(String, Entry)]) -> impl Iterator<Item = (usize, &Revocation)> {
    records
        .iter()
        .filter_map(|(_, e)| e.revocation())
        .enumerate()
        .map(|(i, v)| (i + 1, v))
}

/// What a revocation revokes, in a few words (at most `parts` items, then "+N more").
pub fn what(v: &Revocation, parts: usize) -> String {
    let mut all: Vec<String> = Vec::new();
    for (lo, hi) in &v.serials {
        all.push(match lo == hi {
            true => format!("serial {lo}"),
            false => format!("serials {lo}-{hi}"),
        });
    }
    for id in &v.key_ids {
        all.push(format!("key ID \"{id}\""));
    }
    for k in &v.requester_keys {
        all.push(format!("requester key {}", k.fingerprint));
    }
    for k in &v.ca_keys {
        let this = match k.fingerprint == v.ca_fingerprint {
            true => " (this CA)",
            false => "",
        };
        all.push(format!("CA {}{this}", k.fingerprint));
    }
    let more = all.len().saturating_sub(parts);
    all.truncate(parts);
    let mut out = all.join(", ");
    if more > 0 {
        out.push_str(&format!(", +{more} more"));
    }
    out
}

/// `log show --revocation K`: the K-th revocation record in full, what it revokes, and
/// whether a token signature covers it yet.
fn show_revocation(g: &Globals, k: u64) -> Result<()> {
    let records = records(g)?;
    let count = records
        .iter()
        .filter(|(_, e)| e.revocation().is_some())
        .count();
    let found = records
        .iter()
        .enumerate()
        .filter_map(|(i, (_, e))| e.revocation().map(|v| (i, v)))
        .nth(usize::try_from(k).unwrap_or(usize::MAX).wrapping_sub(1));
    let Some((index, v)) = found else {
        return Err(Error::usage(match count {
            0 => "the ledger holds no revocation record".to_string(),
            n => format!("no revocation R{k} in the ledger (R1 to R{n})"),
        })
        .with_hint("'breakglass-ca log' lists every record; revocations are R1, R2..."));
    };
    let pretty =
        text::json_ascii(v, true).map_err(|e| Error::json("cannot format the record", e))?;
    let covered = records
        .iter()
        .skip(index + 1)
        .filter_map(|(_, e)| e.issued())
        .find(|r| r.is_bound());
    let covered = match covered {
        Some(r) => format!(
            "covered by the CA token's signature through serial {}'s ledger binding (its prev_hash chain)",
            r.serial
        ),
        None => "NOT yet covered by a token signature: the next certificate's ledger binding covers it; keep an outside copy of the ledger until then".to_string(),
    };
    ui::print(format!(
        "{pretty}\n\nRevocation R{k} (ledger line {}): revoked {}\nhost:     {}\nrevokes:  {}\nsigned:   {covered}",
        index + 1,
        v.when_why(),
        Esc(&v.host),
        Esc(&what(v, usize::MAX)),
    ))
}

/// The CA public key for `log verify` (and `revoke`): `ca.pub` written by init, else the
/// token (no PIN); it must match the configuration's fingerprint (see
/// [`Globals::verify_source`]).
pub(crate) fn ca_key(g: &Globals, config: Option<&Config>) -> Result<KeyData> {
    Ok(g.verify_source(config, &[])?.public_key().clone())
}

/// What was verified: the key, and the report with the exact bytes checked.
struct Checked {
    ca: KeyData,
    verified: Verified,
}

/// `log verify`: the state directory's ledger, with its CA key and configuration (the bytes
/// verified copied to `copy`, for `log export`); with `given` (`--ca-pubkey FILE`), that key
/// instead of `ca.pub` or the token.
fn verify_state(g: &Globals, given: Option<&CaFile>, copy: Option<Copy<'_>>) -> Result<Checked> {
    let config = g.config()?;
    let source = g.verify_source(
        config.as_ref(),
        given.map(std::slice::from_ref).unwrap_or_default(),
    )?;
    if given.is_some() {
        say(source.describe(&g.state_dir, config.as_ref()));
    }
    let required = config.as_ref().is_some_and(|c| c.checkpoints);
    let checked = verify_dir(&g.state_dir, source.public_key().clone(), required, copy);
    let Some(file) = given else {
        return checked;
    };
    let other = config
        .as_ref()
        .filter(|c| c.fingerprint != file.fingerprint())
        .map(|c| ("config.toml".to_string(), c.fingerprint.clone()));
    if let (Ok(_), Some((_, theirs))) = (&checked, &other) {
        say(format!(
            "WARNING: the ledger verified with the key from --ca-pubkey {}, but config.toml names another CA ({}): this state directory's configuration is not this ledger's",
            file.path.shown(),
            Esc(theirs)
        ));
    }
    explain_given(file, other, checked)
}

/// `log verify --bundle DIR`: a bundle holding its own `ca.pub`; with `given`
/// (`--ca-pubkey FILE`), that key instead, saying whether the bundle's `ca.pub` is the same.
fn verify_bundle(dir: &Path, given: Option<&CaFile>) -> Result<Checked> {
    let path = dir.join(CA_PUB_FILE);
    let Some(file) = given else {
        let ca = read_ca_pub(&path)?
            .ok_or_else(|| Error::file("read", &path, std::io::ErrorKind::NotFound.into()))?;
        return verify_dir(dir, ca, false, None);
    };
    say(CaSource::Files(vec![file.clone()]).describe(dir, None));
    let other = match read_ca_pub(&path) {
        Ok(Some(k)) if k == file.key => {
            say(format!(
                "the bundle's ca.pub ({}) holds the same key",
                path.shown()
            ));
            None
        }
        Ok(Some(k)) => {
            say(format!(
                "WARNING: the bundle's ca.pub ({}) holds another key ({}): verifying with the key from --ca-pubkey {}",
                path.shown(),
                crate::key::fingerprint(&k),
                file.path.shown()
            ));
            Some((
                "the bundle's ca.pub".to_string(),
                crate::key::fingerprint(&k),
            ))
        }
        Ok(None) => {
            say(format!("note: the bundle holds no {CA_PUB_FILE}"));
            None
        }
        Err(e) => {
            say(format!("note: the bundle's {CA_PUB_FILE} is not used: {e}"));
            None
        }
    };
    explain_given(file, other, verify_dir(dir, file.key.clone(), false, None))
}

/// A verification with `--ca-pubkey FILE` that failed says which key it used and, when
/// `other` (what the state directory or bundle names) is another key, that this is why.
fn explain_given(
    file: &CaFile,
    other: Option<(String, String)>,
    checked: Result<Checked>,
) -> Result<Checked> {
    checked.map_err(|e| {
        if e.exit_code() == 2 {
            // Not a verification failure (no ledger there): the key is not the question.
            return e;
        }
        let e = e.about(&format!(
            "with the CA key from --ca-pubkey {} ({})",
            file.path.shown(),
            file.fingerprint()
        ));
        match other {
            Some((what, theirs)) => e.with_hint(format!(
                "the key in {} is not the CA {what} names ({}): check it against the fingerprint on the key sheet; if it is the right key, this ledger belongs to another CA",
                file.path.shown(),
                Esc(&theirs)
            )),
            None => e,
        }
    })
}

/// Verify the ledger in `dir` (both files streamed once, under the ledger lock where there is
/// one, and exactly those bytes checked, and copied to `copy`) and say what was found.
fn verify_dir(dir: &Path, ca: KeyData, required: bool, copy: Option<Copy<'_>>) -> Result<Checked> {
    let verified = crate::cmd::ledger(dir)
        .require_checkpoints(required)
        .verify_copy(&ca, copy)?
        .ok_or_else(|| {
            Error::usage(format!(
                "there is no ledger at {}",
                dir.join(LEDGER_FILE).shown()
            ))
            .with_hint("point --state-dir (or --bundle) at the directory that holds ledger.jsonl")
        })?;
    let report = &verified.report;
    let revocations = match report.revocations {
        0 => String::new(),
        n => format!(", and {n} revocation record(s)"),
    };
    ui::print(format!(
        "ledger OK: {} record(s), serials 1 to {}{revocations}, chain intact, every certificate signed by {}",
        report.last_serial,
        report.last_serial,
        ca.fingerprint(HashAlg::Sha256)
    ))?;
    for line in parts(report) {
        ui::print(line)?;
    }
    for w in &report.warnings {
        ui::print(format!("warning: {w}"))?;
    }
    Ok(Checked { ca, verified })
}

/// The lines of `log verify` that say what covers which part of the ledger: the format-1
/// records (0.1.0) and their checkpoints, then the bound records.
fn parts(report: &crate::ledger::Report) -> Vec<String> {
    let old = report.old_records;
    let mut out = Vec::new();
    if old > 0 || report.checkpoints > 0 {
        let covered = if report.bound_records > 0 && old > 0 {
            format!(", and all of them by serial {}'s binding", old + 1)
        } else {
            String::new()
        };
        out.push(format!(
            "old format (no ledger binding): {old} record(s), serials 1 to {old}; checkpoints: {} signed by the CA token; the newest covers serial {}{covered}",
            report.checkpoints,
            report.last_signed_serial()
        ));
    }
    if report.bound_records > 0 {
        out.push(format!(
            "bound: {} record(s), serials {} to {}; each certificate carries its record's ledger binding, signed with it by the CA token",
            report.bound_records,
            old + 1,
            report.last_serial
        ));
    }
    if report.requests > 0 {
        out.push(format!(
            "signed requests: {} record(s), each requester's signature verified, {} approval(s) verified, each request used once",
            report.requests, report.approvals
        ));
    }
    if report.revocations > 0 {
        let covered = report
            .revocations
            .saturating_sub(report.uncovered_revocations);
        out.push(format!(
            "revocations: {} record(s); {covered} covered by the token's signature through a later certificate's ledger binding, {} not yet",
            report.revocations, report.uncovered_revocations
        ));
    }
    out
}

/// Verify the state directory's ledger, copying both files into `out` as they are verified:
/// they are put in place only once everything verified.
fn copy_verified(g: &Globals, out: &Path) -> Result<Checked> {
    let new = |name: &str| fsx::NewFile::create(&out.join(name)).map(BufWriter::new);
    let mut ledger = new(LEDGER_FILE)?;
    let mut cps = new(checkpoint::FILE)?;
    let checked = verify_state(
        g,
        None,
        Some(Copy {
            ledger: &mut ledger,
            checkpoints: &mut cps,
        }),
    )?;
    for (file, name) in [(ledger, LEDGER_FILE), (cps, checkpoint::FILE)] {
        file.into_inner()
            .map_err(|e| Error::file("write", &out.join(name), e.into_error()))?
            .finish(0o644)?;
    }
    Ok(checked)
}

/// `log export`: verify, writing exactly the bytes verified into a new directory.
fn export(g: &Globals, out: &Path) -> Result<()> {
    g.check_output_dir(out)?;
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(Error::usage(format!("{} already exists", out.shown()))
            .with_hint("choose a new directory for the bundle"));
    }
    fsx::create_dir(out, fsx::PRIVATE_DIR)?;
    let checked = copy_verified(g, out);
    if checked.is_err() {
        // Nothing was put in place: the directory made above is empty again.
        let _ = std::fs::remove_dir(out);
    }
    let Checked {
        ca,
        verified: Verified { report, .. },
    } = checked?;
    let line = crate::key::openssh_line(&ca)?;
    write_new(
        &out.join(CA_PUB_FILE),
        format!("{line}\n").as_bytes(),
        0o644,
    )?;
    write_new(
        &out.join("allowed_signers"),
        format!(
            "breakglass-ca namespaces=\"{}\" {line}\n",
            checkpoint::NAMESPACE
        )
        .as_bytes(),
        0o644,
    )?;
    let fp = crate::key::fingerprint(&ca);
    let mut howto = format!(
        "breakglass-ca ledger bundle\n\nCA: {fp}\nrecords: {} (serials 1 to {})\n\n\
         1. Check the CA fingerprint above against the printed key sheet or a host's TrustedUserCAKeys:\n\
         \x20  ssh-keygen -l -E sha256 -f ca.pub\n\
         2. Verify everything (chain, checkpoints, every certificate and its ledger binding) with the tool, no token needed:\n\
         \x20  breakglass-ca log verify --bundle .\n\
         \x20  Without it: the auditor's scripts in docs/ledger.md (section 7.2) check the chain, each record's binding\n\
         \x20  (jq -r .metadata | sha256sum against the certificate's {ext} extension) and the checkpoint.\n",
        report.last_serial,
        report.last_serial,
        ext = crate::ledger::binding::EXTENSION
    );
    if let Some(cp) = &report.newest_checkpoint {
        write_new(
            &out.join("checkpoint-latest.msg"),
            checkpoint::message(&fp, cp.serial, &cp.head).as_bytes(),
            0o644,
        )?;
        write_new(
            &out.join("checkpoint-latest.sig"),
            cp.signature.as_bytes(),
            0o644,
        )?;
        howto.push_str(&format!(
            "3. Or check the newest checkpoint with OpenSSH alone. It signs the SHA-256 of ledger line {s}:\n\
             \x20  sed -n '{s}p' ledger.jsonl | tr -d '\\n' | sha256sum     # must equal the 'head' in checkpoint-latest.msg\n\
             \x20  ssh-keygen -Y verify -f allowed_signers -I breakglass-ca -n {ns} -s checkpoint-latest.sig < checkpoint-latest.msg\n\
             \x20  This proves the token signed line {s}. It covers the earlier lines only together with the chain\n\
             \x20  (each line's prev_hash is the SHA-256 of the line before it): step 2 checks that, or the script in docs/ledger.md.\n",
            s = cp.serial,
            ns = checkpoint::NAMESPACE
        ));
    }
    write_new(&out.join("VERIFY.txt"), howto.as_bytes(), 0o644)?;
    say(format!(
        "Bundle written to {} (see VERIFY.txt inside).",
        out.shown()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testing::record;
    use crate::ledger::Tail;

    fn tail(serial: u64) -> Tail {
        Tail {
            serial,
            prev_hash: "x".into(),
            last_issued_at: None,
        }
    }

    /// Years on every row, columns in line whatever the requester and principals hold (cut,
    /// escaped), windows across midnight and a new year, and a revocation's row.
    #[test]
    fn the_table_shows_years_and_keeps_its_columns() {
        let mut short = record(&tail(1), "CA");
        short.issued_at = "2026-11-22T03:00:07Z".into();
        short.valid_after = "2026-11-22T02:55:07Z".into();
        short.valid_before = "2026-11-22T03:15:07Z".into();
        let mut long = record(&tail(2), "CA");
        long.requester_comment = format!("{}@a-very-long-laptop-name.example.org", "x".repeat(40));
        long.principals = vec!["breakglass".into(), "root".into(), "postgres-admin".into()];
        long.issued_at = "2026-12-31T23:55:00+00:00".into();
        long.valid_after = "2026-12-31T23:50:00Z".into();
        long.valid_before = "2027-01-01T00:10:00Z".into();
        let mut midnight = record(&tail(3), "CA");
        midnight.requester_comment = "mallory\u{1b}[2K\rforged".into();
        midnight.issued_at = "2027-03-01T23:59:00Z".into();
        midnight.valid_after = "2027-03-01T23:54:00Z".into();
        midnight.valid_before = "2027-03-02T00:14:00Z".into();
        let mut odd = record(&tail(4), "CA");
        odd.issued_at = "not a time".into();
        let revocation: Revocation = serde_json::from_value(serde_json::json!({
            "kind": "revocation", "format": 1, "serials": [[2, 2]], "key_ids": [],
            "requester_keys": [], "ca_keys": [], "reason": "INC-9 leaked",
            "revoked_at": "2027-03-02T08:00:00Z", "revoked_by": "c", "host": "h",
            "tool_version": "0", "ca_fingerprint": "CA", "last_serial": 3, "prev_hash": "x"
        }))
        .unwrap();
        let records: Vec<(String, Entry)> = [short, long, midnight, odd]
            .into_iter()
            .map(|r| (String::new(), Entry::Issued(r)))
            .chain([(String::new(), Entry::Revoked(revocation))])
            .collect();
        let text = table(&records);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert_eq!(
            lines[1],
            "     1  2026-11-22 03:00:07  breakglass            alice                     2026-11-22 02:55:07 - 03:15:07        test"
        );
        assert_eq!(
            lines[2],
            "     2  2026-12-31 23:55:00  breakglass,root,p...  xxxxxxxxxxxxxxxxxxxxx...  2026-12-31 23:50:00 - 2027-01-01 00:10:00  test"
        );
        assert_eq!(
            lines[3],
            "     3  2027-03-01 23:59:00  breakglass            mallory\\e[2K\\rforged      2027-03-01 23:54:00 - 03-02 00:14:00  test"
        );
        assert!(
            lines[4].starts_with("     4  not a time           breakglass"),
            "{}",
            lines[4]
        );
        assert_eq!(
            lines[5],
            "    R1  2027-03-02 08:00:00  revoked               serial 2  INC-9 leaked"
        );
        // Every column but VALID's starts where the header's does, on every row.
        let header = lines[0];
        for name in ["PRINCIPALS", "REQUESTER", "VALID"] {
            let at = header.find(name).unwrap();
            for row in &lines[1..5] {
                assert_eq!(row.chars().nth(at - 2), Some(' '), "{name}: {row}");
                assert_ne!(row.chars().nth(at), Some(' '), "{name}: {row}");
            }
        }
        // The REASON column too, except after the new year's window (41 characters).
        let reason = header.find("REASON").unwrap();
        for row in [lines[1], lines[3], lines[4]] {
            assert_eq!(&row[reason..], "test", "{row}");
        }
    }
}
