//! `mint`: check the request, show the custodian what will be signed, ask for the PIN, issue
//! (ledger first), then write the certificate and a summary. Several keys are one batch: each
//! is checked before the PIN, all are signed under one login and recorded by one group commit
//! before any certificate is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::backend::KeyInfo;
use crate::cert::{self, CertOptions};
use crate::cli::MintArgs;
use crate::cmd::{write_stdout, Globals, NOTHING_ISSUED};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::issue::{self, Batch, MintRequest, Signed, SystemClock};
use crate::ledger::{Revocation, Tail};
use crate::policy::{self, Policy, ValidityRequest, Window};
use crate::signals::Deferral;
use crate::text::Esc;
use crate::text::ShowPath;
use crate::ui::{both_times, say};
use crate::{fsx, key, text};

/// ssh-keygen's convention: `id_ed25519.pub` gets `id_ed25519-cert.pub`; stdin gets stdout.
pub fn default_output(input: &Path) -> Option<PathBuf> {
    cert_beside(input, ".pub")
}

/// `NAME-cert.pub` beside `input` (`suffix` dropped from its name if it ends so); `None`
/// (stdout) for stdin.
pub fn cert_beside(input: &Path, suffix: &str) -> Option<PathBuf> {
    if input == Path::new("-") {
        return None;
    }
    let text = input.to_string_lossy();
    let stem = text.strip_suffix(suffix).unwrap_or(&text);
    Some(PathBuf::from(format!("{stem}-cert.pub")))
}

/// One requester key of a mint: its request and where its certificate goes.
struct Key {
    /// The PUBKEY argument (`-`: stdin).
    input: PathBuf,
    req: MintRequest,
    /// Where the certificate goes (`None`: stdout).
    output: Option<PathBuf>,
}

/// A mint request checked without the token or the ledger: what `run` needs from here on.
struct Checked {
    config: Config,
    /// One or more, in the order given (the order of their serials).
    keys: Vec<Key>,
    /// The validity window as it would be now (shown before the PIN; computed again when
    /// signing).
    preview: Window,
    /// What a signed request adds to the pre-PIN screen (its proof of possession, the
    /// approvals), and the dual-control line.
    screen: Vec<String>,
}

/// `mint`: check the request, lock the ledger, check the request against it, open the token
/// and show what will be signed, unlock, issue (ledger first), deliver, finish.
pub fn run(g: &Globals, args: &MintArgs) -> Result<()> {
    let Checked {
        config,
        keys,
        preview,
        screen,
    } = check_request(g, args)?;
    // One mint at a time per CA, from before the token is opened until the certificate is
    // written: a token serves one signer at a time, and the serial stays allocated to us.
    crate::fsx::ensure_dir(&g.state_dir)?;
    let ledger = crate::cmd::ledger(&g.state_dir).require_checkpoints(config.checkpoints);
    let mut locked = ledger.lock(&config.fingerprint)?;
    let first = keys
        .first()
        .ok_or_else(|| Error::usage("no public key given"))?;
    let forced =
        check_against_ledger(&config.policy, &preview, &first.req.validity, locked.tail())?;
    // A revoked CA issues nothing, and a revoked requester key gets nothing: refused before
    // the token is opened.
    for (i, k) in keys.iter().enumerate() {
        let fp = key::fingerprint(k.req.subject.key_data());
        crate::ledger::revocation::refuse_for_mint(
            locked.revocations(),
            &config.fingerprint,
            Some(&fp),
        )
        .map_err(|e| match keys.len() {
            1 => e,
            n => e.about(&which_key(i, n, &k.input)),
        })?;
        // A signed request is good for one certificate.
        issue::refuse_replay(&locked, &k.req)?;
    }
    // Signals are deferred from the PIN on until the token is closed (declared before the
    // token, so dropped after it on every path).
    let signals = Deferral::new();
    let (uri, mut ca) = g.open_ca(Some(&config), true)?;
    show_request(&keys, &preview, forced.as_deref(), locked.tail().serial);
    for line in &screen {
        say(line);
    }
    for line in uncovered_lines(locked.revocations(), locked.tail().serial) {
        say(line);
    }
    if keys.len() > 1 {
        show_signatures(keys.len(), &ca.info());
    }
    g.unlock(&signals, &uri, ca.as_mut(), args.force)?;

    let reqs: Vec<MintRequest> = keys.iter().map(|k| k.req.clone()).collect();
    let count = reqs.len();
    // Between two signatures of a batch, a signal stops it: nothing is written before the
    // last certificate is signed.
    let between = |i: usize| {
        signals.stop_if_taken(
            || {
                format!(
                    "before certificate {} of {count} was signed: {NOTHING_ISSUED}",
                    i + 1
                )
            },
            || "nothing to clean up: run the same mint again when ready".into(),
        )
    };
    let batch = issue::issue_batch(
        ca.as_ref(),
        &mut locked,
        &config.policy,
        &reqs,
        &SystemClock,
        &between,
    )?;
    show_issue_notes(&batch);
    let outputs: Vec<Option<&Path>> = keys.iter().map(|k| k.output.as_deref()).collect();
    deliver(&batch, &g.state_dir, &outputs, args.json, forced.as_deref())?;
    show_login(&batch, &keys, &outputs, args.json);
    drop(locked);
    drop(ca);
    finish(signals, &batch, &outputs, args.json)
}

/// Everything that can be refused without the token or the ledger, refused first: the
/// principals, reason, key ID and options, the configuration, the window, and for every key
/// its file, the key itself, the requester name and the output path (a refusal of one key of
/// several names it); several keys: `-o`, and each key and output once.
fn check_request(g: &Globals, args: &MintArgs) -> Result<Checked> {
    if args.request.is_some() {
        return check_signed_request(g, args);
    }
    let principals = policy::principals(&args.principals)?;
    let reason = args.reason.trim().to_string();
    if reason.is_empty() {
        return Err(Error::refused("--reason is empty")
            .with_hint("say why this access is needed, e.g. --reason 'INC-1234 bastion down'"));
    }
    if !crate::text::is_safe(&reason) {
        return Err(Error::refused(format!(
            "--reason holds a control or invisible character: {}",
            crate::text::Esc(&reason)
        ))
        .with_hint("the reason goes into the ledger and the key ID: write it as plain text on one line, e.g. --reason 'INC-1234 bastion down'"));
    }
    if let Some(id) = &args.key_id {
        policy::check_key_id(id)?;
    }
    let options = CertOptions::parse(&args.options)?;
    let validity = ValidityRequest {
        validity: args.validity,
        backdate: args.backdate,
        not_before: args.not_before,
        force: args.force_window,
    };
    let config = configured(g)?;
    super::mint_request::refuse_without_request(&config)?;
    let preview = policy::window(&config.policy, &validity, Utc::now())?;
    check_batch_args(args)?;
    let count = args.pubkeys.len();
    let mut keys: Vec<Key> = Vec::with_capacity(count);
    for (i, input) in args.pubkeys.iter().enumerate() {
        let (subject, requester, output) =
            check_key(g, args, &config, &options, input).map_err(|e| match count {
                1 => e,
                _ => e.about(&which_key(i, count, input)),
            })?;
        let key = Key {
            input: input.clone(),
            req: MintRequest {
                subject,
                requester,
                principals: principals.clone(),
                reason: reason.clone(),
                key_id: args.key_id.clone(),
                validity,
                options: options.clone(),
                dual: None,
            },
            output,
        };
        check_not_repeated(&keys, &key, i, count)?;
        keys.push(key);
    }
    let screen = vec![super::mint_request::dual_line(&config, &g.state_dir).0];
    Ok(Checked {
        config,
        keys,
        preview,
        screen,
    })
}

/// This state directory's `config.toml`, which a mint needs.
fn configured(g: &Globals) -> Result<Config> {
    g.config()?.ok_or_else(|| {
        Error::usage(format!(
            "{} holds no configuration, so it has no ledger for this CA: serials would restart at 1",
            g.state_dir.shown()
        ))
        .with_hint("use the state directory where 'breakglass-ca init' created this CA (--state-dir), or restore it from the backup kept with the token")
    })
}

/// `mint --request`: the one key of a signed request, checked (see
/// [`super::mint_request::check`]).
fn check_signed_request(g: &Globals, args: &MintArgs) -> Result<Checked> {
    let config = configured(g)?;
    let from = super::mint_request::check(g, args, &config)?;
    let preview = policy::window(&config.policy, &from.req.validity, Utc::now())?;
    let mut screen = from.lines;
    screen.push(super::mint_request::dual_line(&config, &g.state_dir).0);
    Ok(Checked {
        config,
        keys: vec![Key {
            input: from.input,
            req: from.req,
            output: from.output,
        }],
        preview,
        screen,
    })
}

/// The arguments a batch cannot have: `-o` names one file, stdin holds one key.
fn check_batch_args(args: &MintArgs) -> Result<()> {
    let count = args.pubkeys.len();
    if count > 1 && args.output.is_some() {
        return Err(Error::usage(format!(
            "-o names one certificate file, but {count} public keys were given"
        ))
        .with_hint("drop -o: each certificate is written to KEY-cert.pub beside its KEY.pub, or mint each key on its own with -o"));
    }
    if args.pubkeys.iter().filter(|p| *p == Path::new("-")).count() > 1 {
        return Err(
            Error::usage("'-' (stdin) is given more than once: stdin holds one key")
                .with_hint("give '-' once, and the other keys as files"),
        );
    }
    Ok(())
}

/// A PUBKEY argument as the screen names it (escaped; `-` is stdin).
fn input_name(input: &Path) -> String {
    match input == Path::new("-") {
        true => "stdin".to_string(),
        false => text::escape(&input.to_string_lossy()).into_owned(),
    }
}

/// "key 2 of 5 (bob.pub)": which key of a batch an error is about.
fn which_key(i: usize, count: usize, input: &Path) -> String {
    format!("key {} of {count} ({})", i + 1, input_name(input))
}

/// The requester's key in `input` and its name, validated, and where its certificate goes,
/// checked: nothing is locked or opened yet.
fn check_key(
    g: &Globals,
    args: &MintArgs,
    config: &Config,
    options: &CertOptions,
    input: &Path,
) -> Result<(ssh_key::PublicKey, String, Option<PathBuf>)> {
    let key_text = fsx::read_text(input, fsx::limit::KEY_FILE, "requester's public key")?;
    let subject = key::parse_requester_key(&key_text)?;
    key::refuse_ca(&subject, &config.fingerprint)?;
    options.check_for_key(&subject)?;
    let requester = issue::requester_name(args.requester.as_deref(), &subject)?;
    let output = match args.output.as_deref() {
        Some(p) if p == Path::new("-") => None,
        Some(p) => Some(p.to_path_buf()),
        None => default_output(input),
    };

    if let Some(p) = &output {
        g.check_output(p, crate::cmd::Instead::Certificate)?;
    }
    Ok((subject, requester, output))
}

/// Each key once in a batch (a second certificate for the same key in one mint is a slip,
/// never a need), and each certificate file once (`a` and `a.pub` both give `a-cert.pub`).
fn check_not_repeated(keys: &[Key], key: &Key, i: usize, count: usize) -> Result<()> {
    let this = which_key(i, count, &key.input);
    for (j, earlier) in keys.iter().enumerate() {
        let that = which_key(j, count, &earlier.input);
        if earlier.req.subject.key_data() == key.req.subject.key_data() {
            return Err(Error::refused(format!(
                "{this} is the same public key as {that} ({})",
                key.req.subject.fingerprint(Default::default())
            ))
            .with_hint("each key gets one certificate per mint: give it once (a requester with two keys gives two different keys)"));
        }
        let same_output = match (&earlier.output, &key.output) {
            (Some(a), Some(b)) => {
                a == b
                    || matches!((fsx::resolve_output(a), fsx::resolve_output(b)), (Ok(a), Ok(b)) if a == b)
            }
            _ => false,
        };
        if same_output {
            return Err(Error::usage(format!(
                "{this} and {that} would both be written to {}",
                text::escape(&key.output.as_deref().unwrap_or(Path::new("-")).to_string_lossy())
            ))
            .with_hint("rename one of the key files (the certificate goes to KEY-cert.pub beside KEY.pub), or mint them one at a time with -o"));
        }
    }
    Ok(())
}

/// The clock rule and the window rules against the newest ledger record, before the
/// custodian is asked for anything (checked again when signing). Returns the note of what
/// `--force-window` allowed, if it did.
fn check_against_ledger(
    policy: &Policy,
    preview: &Window,
    validity: &ValidityRequest,
    tail: &Tail,
) -> Result<Option<String>> {
    let last_issued_at = tail.last_issued_at.as_deref();
    issue::check_clock(Utc::now(), last_issued_at, validity)?;
    issue::check_window(policy, preview, Utc::now(), last_issued_at, validity)
}

/// What will be signed, shown before the PIN is asked for: for several keys, every one with
/// its serial (`first` is the first one's; the lock keeps them).
fn show_request(keys: &[Key], preview: &Window, forced: Option<&str>, first: u64) {
    let Some(req) = keys.first().map(|k| &k.req) else {
        return;
    };
    say(format!("Clock now:      {}", both_times(Utc::now())));
    say(format!(
        "Valid from:     {}",
        both_times(preview.valid_after)
    ));
    say(format!(
        "Valid until:    {}",
        both_times(preview.valid_before)
    ));
    if req.validity.not_before.is_some() && !preview.contains(Utc::now()) {
        say("NOTE: --not-before puts the window outside this laptop's clock; that is what you asked for.");
    }
    say(format!(
        "Principals:     {}",
        Esc(&req.principals.join(", "))
    ));
    if let [key] = keys {
        say(format!(
            "Requester:      {} ({})",
            Esc(&key.req.requester),
            key.req.subject.fingerprint(Default::default())
        ));
    } else {
        say(format!(
            "Requesters:     {} keys, one certificate each, in this order:",
            keys.len()
        ));
        for (serial, key) in (first..).zip(keys) {
            say(format!(
                "  serial {serial}:  {} ({}) from {}",
                Esc(&key.req.requester),
                key.req.subject.fingerprint(Default::default()),
                input_name(&key.input)
            ));
        }
    }
    show_options(
        &req.options.critical,
        &req.options.extensions,
        "Critical:       ",
        "Extensions:     ",
    );
    for name in req.options.unknown_critical() {
        say(format!("NOTE: {} is not a critical option OpenSSH knows: sshd refuses a certificate that carries it.", text::escape(name)));
    }
    if let Some(note) = forced {
        say(format!("NOTE: {note}"));
    }
}

/// How many of the revocation records a mint will cover are listed one by one.
const REVOCATIONS_SHOWN: usize = 5;

/// The revocation records this mint signs into the chain for good, for the pre-PIN screen:
/// those after the newest issuance record (`next` is the serial about to be issued), which
/// the first certificate's ledger binding covers. Anyone who can write the ledger can append
/// one (no token is needed to revoke), e.g. of the backup CA: the custodian sees it before
/// signing. Every field from the ledger is escaped; many are cut to the first few and a count.
fn uncovered_lines(revs: &[Revocation], next: u64) -> Vec<String> {
    let newest = next.saturating_sub(1);
    let after: Vec<(usize, &Revocation)> = revs
        .iter()
        .enumerate()
        .map(|(i, v)| (i + 1, v))
        .filter(|(_, v)| v.last_serial == newest)
        .collect();
    let Some(((first, _), (last, _))) = after.first().zip(after.last()) else {
        return Vec::new();
    };
    let mut lines = vec![format!(
        "Revocations:    this mint signs {} revocation record(s) written since the last certificate into the ledger for good (its ledger binding covers them). If you did not make or expect one, do not type the PIN: press Ctrl-C (nothing is issued) and check it: 'breakglass-ca log show --revocation K'",
        after.len()
    )];
    for (k, v) in after.iter().take(REVOCATIONS_SHOWN) {
        lines.push(format!(
            "  R{k}  {}  by {}:  {}  (reason: {})",
            Esc(&v.revoked_at),
            Esc(&v.revoked_by),
            Esc(&crate::cmd::log::what(v, 4)),
            Esc(&v.reason)
        ));
    }
    if after.len() > REVOCATIONS_SHOWN {
        let (from, _) = after[REVOCATIONS_SHOWN];
        lines.push(format!(
            "  ... and {} more (R{from} to R{last}; 'breakglass-ca log' lists R{first} to R{last})",
            after.len() - REVOCATIONS_SHOWN
        ));
    }
    lines
}

/// A batch: how many signatures the token will make, and how many touches a YubiKey with touch
/// policy `always` will want.
fn show_signatures(keys: usize, info: &KeyInfo) {
    for line in signature_lines(keys, info) {
        say(line);
    }
}

/// "Signatures:     the token will sign 3 times: 3 certificates", and the touches when every
/// signature needs one.
fn signature_lines(keys: usize, info: &KeyInfo) -> Vec<String> {
    let count = issue::signatures(keys);
    let mut lines = vec![format!(
        "Signatures:     the token will sign {count} times: {keys} certificates"
    )];
    if info.touch_always {
        lines.push(format!(
            "Touches:        the YubiKey wants a touch for every signature: touch it {count} times, each time it blinks"
        ));
    }
    lines
}

/// What happened beside the issuance: a ledger repaired after an earlier mint's crash.
fn show_issue_notes(batch: &Batch) {
    if let Some(repaired) = &batch.repaired {
        say(format!("NOTE: {repaired}"));
    }
}

/// Where one certificate went, for the last signal check.
fn delivered(output: Option<&Path>, json: bool) -> String {
    match (output, json) {
        (Some(p), _) => crate::text::escape(&p.to_string_lossy()).into_owned(),
        (None, false) => "stdout".into(),
        (None, true) => "stdout (its record)".into(),
    }
}

/// The last signal check, once the certificates are out: a signal that came meanwhile is
/// reported with what was already done.
fn finish(signals: Deferral, batch: &Batch, outputs: &[Option<&Path>], json: bool) -> Result<()> {
    let serials: Vec<u64> = batch.certificates.iter().map(|c| c.record.serial).collect();
    match (serials.as_slice(), outputs) {
        ([serial], [output]) => signals.finish(
            || {
                let delivered = match (output, json) {
                    (Some(p), _) => format!(
                        "the certificate was written to {}",
                        crate::text::escape(&p.to_string_lossy())
                    ),
                    (None, false) => "the certificate was printed on stdout".into(),
                    (None, true) => "the record was printed on stdout".into(),
                };
                format!("after serial {serial} was recorded: {delivered}")
            },
            || {
                format!(
                    "the certificate is valid and in the ledger: hand it over ('breakglass-ca log show {serial}' prints it again)"
                )
            },
        ),
        _ => signals.finish(
            || {
                let to: Vec<String> = outputs.iter().map(|o| delivered(*o, json)).collect();
                format!(
                    "after serials {} to {} were recorded: the certificates were written to {}",
                    serials.first().copied().unwrap_or_default(),
                    serials.last().copied().unwrap_or_default(),
                    to.join(", ")
                )
            },
            || "the certificates are valid and in the ledger: hand them over ('breakglass-ca log show SERIAL' prints each again)".into(),
        ),
    }
}

/// Write each certificate (after the ledger records are durable) and print its summary.
fn deliver(
    batch: &Batch,
    state_dir: &Path,
    outputs: &[Option<&Path>],
    json: bool,
    forced: Option<&str>,
) -> Result<()> {
    let certs = &batch.certificates;
    let one = certs.len() == 1;
    for (i, (signed, output)) in certs.iter().zip(outputs).enumerate() {
        let r = &signed.record;
        match output {
            Some(path) => {
                crate::fsx::write_output(path, format!("{}\n", signed.line).as_bytes(), 0o644, state_dir).map_err(|e| {
                    let err = Error::ledger(format!("serial {} is recorded in the ledger, but the certificate could not be written: {e}", r.serial));
                    match certs.get(i + 1..).and_then(|rest| rest.last()) {
                        Some(last) => err.with_hint(format!("serials {} to {} are in the ledger, their certificates not written yet: 'breakglass-ca log show SERIAL' prints each", r.serial, last.record.serial)),
                        None => err.with_hint("the certificate is in the ledger: 'breakglass-ca log show SERIAL' prints it, or mint again"),
                    }
                })?;
            }
            None if !json => write_stdout(&format!("{}\n", signed.line))?,
            None => {}
        }
        if json {
            let text = crate::text::json_ascii(r, one)
                .map_err(|e| Error::json("cannot encode the record as JSON", e))?;
            write_stdout(&format!("{text}\n"))?;
        }
        summary(signed, *output, forced);
    }
    Ok(())
}

/// The last lines: the ssh command each requester logs in with (`cmd::login`).
fn show_login(batch: &Batch, keys: &[Key], outputs: &[Option<&Path>], json: bool) {
    let issued: Vec<crate::cmd::login::Issued<'_>> = batch
        .certificates
        .iter()
        .zip(keys)
        .zip(outputs)
        .map(|((signed, key), output)| crate::cmd::login::Issued {
            serial: signed.record.serial,
            input: &key.input,
            output: *output,
            user: signed
                .record
                .principals
                .first()
                .map_or("USER", String::as_str),
            algorithm: key.req.subject.algorithm(),
        })
        .collect();
    let home = std::env::var_os("HOME");
    for line in crate::cmd::login::lines(&issued, home.as_deref(), json) {
        say(line);
    }
}

/// What was issued for one key, on stderr.
fn summary(signed: &Signed, output: Option<&Path>, forced: Option<&str>) {
    let r = &signed.record;
    say("");
    say(format!(
        "Issued serial {}  key ID {}",
        r.serial,
        Esc(&r.key_id)
    ));
    say(format!("  principals:  {}", Esc(&r.principals.join(", "))));
    say(format!(
        "  valid from:  {}",
        both_times(signed.certificate.valid_after_time().into())
    ));
    say(format!(
        "  valid until: {}",
        both_times(signed.certificate.valid_before_time().into())
    ));
    // The extensions asked for; the ledger binding on a line of its own.
    let mut extensions = signed.certificate.extensions().clone();
    let binding = extensions.remove(crate::ledger::binding::EXTENSION);
    show_options(
        signed.certificate.critical_options(),
        &extensions,
        "  critical:    ",
        "  extensions:  ",
    );
    if let Some(hash) = binding {
        say(format!(
            "  ledger:      bound to its record ({}={hash})",
            crate::ledger::binding::EXTENSION
        ));
    }
    if let Some(note) = forced {
        say(format!("  NOTE: {note}"));
    }
    match output {
        Some(p) => say(format!("  certificate: {}", p.shown())),
        None => say("  certificate: printed on stdout"),
    }
}

/// The critical options and extensions, one line each (escaped; "none" when empty).
fn show_options(
    critical: &BTreeMap<String, String>,
    extensions: &BTreeMap<String, String>,
    c: &str,
    e: &str,
) {
    say(format!("{c}{}", cert::show_options(critical)));
    say(format!("{e}{}", cert::show_options(extensions)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revocation(last_serial: u64, by: &str, reason: &str) -> Revocation {
        Revocation {
            kind: crate::ledger::revocation::RecordKind::Revocation,
            format: 1,
            serials: vec![(1, 1), (3, 5)],
            key_ids: vec!["k".into()],
            requester_keys: Vec::new(),
            ca_keys: vec![crate::ledger::RevokedKey {
                key: "ssh-ed25519 AAAA".into(),
                fingerprint: "SHA256:backup".into(),
            }],
            reason: reason.into(),
            revoked_at: "2026-12-01T10:33:16Z".into(),
            revoked_by: by.into(),
            host: "h".into(),
            tool_version: "0.3.0".into(),
            ca_fingerprint: "SHA256:this".into(),
            last_serial,
            prev_hash: "x".into(),
        }
    }

    #[test]
    fn the_revocations_a_mint_covers_are_shown_escaped_and_cut_short() {
        // R1 before serial 2, R2 and R3 after it: serial 3 is next.
        let revs = vec![
            revocation(1, "alice", "old"),
            revocation(2, "mallory\u{1b}[2J", "INC-1 \\e[31m"),
            revocation(2, "bob", "INC-2"),
        ];
        let lines = uncovered_lines(&revs, 3);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("Revocations:    this mint signs 2 revocation record(s)"));
        assert_eq!(
            lines[1],
            "  R2  2026-12-01T10:33:16Z  by mallory\\e[2J:  serial 1, serials 3-5, key ID \"k\", CA SHA256:backup  (reason: INC-1 \\\\e[31m)"
        );
        assert!(lines[2].starts_with("  R3  "), "{}", lines[2]);
        // Nothing after the newest certificate: nothing shown.
        assert!(uncovered_lines(&revs, 4).is_empty());
        assert!(uncovered_lines(&[], 1).is_empty());
        // No certificate yet: every revocation is covered by the first one.
        let revs: Vec<Revocation> = (0..8).map(|_| revocation(0, "a", "r")).collect();
        let lines = uncovered_lines(&revs, 1);
        assert_eq!(lines.len(), 1 + REVOCATIONS_SHOWN + 1, "{lines:?}");
        assert!(lines[0].contains("signs 8 revocation record(s)"));
        assert_eq!(
            lines.last().unwrap(),
            "  ... and 3 more (R6 to R8; 'breakglass-ca log' lists R1 to R8)"
        );
    }

    #[test]
    fn output_follows_ssh_keygen() {
        assert_eq!(
            default_output(Path::new("a/id_ed25519.pub")),
            Some(PathBuf::from("a/id_ed25519-cert.pub"))
        );
        assert_eq!(
            default_output(Path::new("key")),
            Some(PathBuf::from("key-cert.pub"))
        );
        assert_eq!(default_output(Path::new("-")), None);
    }

    #[test]
    fn a_batch_says_how_often_the_token_signs_and_names_each_key() {
        let mut info = KeyInfo {
            token: "t".into(),
            key: "k".into(),
            pin: Default::default(),
            details: Vec::new(),
            pin_use: None,
            touch_always: false,
        };
        assert_eq!(
            signature_lines(3, &info),
            ["Signatures:     the token will sign 3 times: 3 certificates"]
        );
        info.touch_always = true;
        assert_eq!(
            signature_lines(5, &info),
            [
                "Signatures:     the token will sign 5 times: 5 certificates",
                "Touches:        the YubiKey wants a touch for every signature: touch it 5 times, each time it blinks"
            ]
        );
        assert_eq!(
            which_key(1, 5, Path::new("bob.pub")),
            "key 2 of 5 (bob.pub)"
        );
        assert_eq!(which_key(0, 2, Path::new("-")), "key 1 of 2 (stdin)");
        assert_eq!(
            which_key(0, 2, Path::new("a\u{1b}[2J.pub")),
            "key 1 of 2 (a\\e[2J.pub)"
        );
        assert_eq!(delivered(None, true), "stdout (its record)");
    }
}
