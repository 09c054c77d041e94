//! `mint`: check the request, show the custodian what will be signed, ask for the PIN, issue
//! (ledger first), then write the certificate and a summary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::cert::{self, CertOptions};
use crate::cli::MintArgs;
use crate::cmd::{write_output, Globals};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::issue::{self, Issued, MintRequest, SystemClock};
use crate::ledger::Tail;
use crate::policy::{self, Policy, ValidityRequest, Window};
use crate::signals::Deferral;
use crate::text::Esc;
use crate::ui::{both_times, say};
use crate::{fsx, key, text};

/// ssh-keygen's convention: `id_ed25519.pub` gets `id_ed25519-cert.pub`; stdin gets stdout.
pub fn default_output(input: &Path) -> Option<PathBuf> {
    if input == Path::new("-") {
        return None;
    }
    let text = input.to_string_lossy();
    let stem = text.strip_suffix(".pub").unwrap_or(&text);
    Some(PathBuf::from(format!("{stem}-cert.pub")))
}

/// A mint request checked without the token or the ledger: what `run` needs from here on.
struct Checked {
    config: Config,
    req: MintRequest,
    /// The validity window as it would be now (shown before the PIN; computed again when
    /// signing).
    preview: Window,
    /// Where the certificate goes (`None`: stdout).
    output: Option<PathBuf>,
}

/// `mint`: check the request, lock the ledger, check the request against it, open the token
/// and show what will be signed, unlock, issue (ledger first), deliver, finish.
pub fn run(g: &Globals, args: &MintArgs) -> Result<()> {
    let Checked {
        config,
        req,
        preview,
        output,
    } = check_request(g, args)?;
    // One mint at a time per CA, from before the token is opened until the certificate is
    // written: a token serves one signer at a time, and the serial stays allocated to us.
    crate::fsx::ensure_dir(&g.state_dir)?;
    let ledger = crate::cmd::ledger(&g.state_dir).require_checkpoints(config.checkpoints);
    let mut locked = ledger.lock(&config.fingerprint)?;
    let forced = check_against_ledger(&config.policy, &preview, &req.validity, locked.tail())?;
    // Signals are deferred from the PIN on until the token is closed (declared before the
    // token, so dropped after it on every path).
    let signals = Deferral::new();
    let (uri, mut ca) = g.open_ca(Some(&config), true)?;
    show_request(&req, &preview, forced.as_deref());
    g.unlock(&signals, &uri, ca.as_mut(), args.force)?;

    let issued = issue::issue(ca.as_ref(), &mut locked, &config.policy, &req, &SystemClock)?;
    show_issue_notes(&issued);
    deliver(&issued, output.as_deref(), args.json, forced.as_deref())?;
    drop(locked);
    drop(ca);
    finish(signals, &issued, output.as_deref(), args.json)
}

/// Everything that can be refused without the token or the ledger, refused first: the
/// principals, reason, key ID and options, the configuration, the window, the requester's key
/// and name, and the output path.
fn check_request(g: &Globals, args: &MintArgs) -> Result<Checked> {
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
    let config = g.config()?.ok_or_else(|| {
        Error::usage(format!(
            "{} holds no configuration, so it has no ledger for this CA: serials would restart at 1",
            g.state_dir.display()
        ))
        .with_hint("use the state directory where 'breakglass-ca init' created this CA (--state-dir), or restore it from the backup kept with the token")
    })?;
    let preview = policy::window(&config.policy, &validity, Utc::now())?;
    // The requester's key and name, validated before anything is locked or opened.
    let key_text = fsx::read_text(&args.pubkey, fsx::limit::KEY_FILE, "requester's public key")?;
    let subject = key::parse_requester_key(&key_text)?;
    key::refuse_ca(&subject, &config.fingerprint)?;
    options.check_for_key(&subject)?;
    let requester = issue::requester_name(args.requester.as_deref(), &subject)?;
    let output = match args.output.as_deref() {
        Some(p) if p == Path::new("-") => None,
        Some(p) => Some(p.to_path_buf()),
        None => default_output(&args.pubkey),
    };

    if let Some(p) = &output {
        g.check_output(p)?;
    }
    let req = MintRequest {
        subject,
        requester,
        principals,
        reason,
        key_id: args.key_id.clone(),
        validity,
        options,
    };
    Ok(Checked {
        config,
        req,
        preview,
        output,
    })
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

/// What will be signed, shown before the PIN is asked for.
fn show_request(req: &MintRequest, preview: &Window, forced: Option<&str>) {
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
    say(format!(
        "Requester:      {} ({})",
        Esc(&req.requester),
        req.subject.fingerprint(Default::default())
    ));
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

/// What happened beside the issuance: a ledger repaired after an earlier mint's crash.
fn show_issue_notes(issued: &Issued) {
    if let Some(repaired) = &issued.repaired {
        say(format!("NOTE: {repaired}"));
    }
}

/// The last signal check, once the certificate is out: a signal that came meanwhile is
/// reported with what was already done.
fn finish(signals: Deferral, issued: &Issued, output: Option<&Path>, json: bool) -> Result<()> {
    let serial = issued.record.serial;
    signals.finish(
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
    )
}

/// Write the certificate (after the ledger record is durable) and print the summary.
fn deliver(issued: &Issued, output: Option<&Path>, json: bool, forced: Option<&str>) -> Result<()> {
    let r = &issued.record;
    match output {
        Some(path) => {
            crate::fsx::write_atomic(path, format!("{}\n", issued.line).as_bytes(), 0o644).map_err(|e| {
                Error::ledger(format!("serial {} is recorded in the ledger, but the certificate could not be written: {e}", r.serial))
                    .with_hint("the certificate is in the ledger: 'breakglass-ca log show SERIAL' prints it, or mint again")
            })?;
        }
        None if !json => write_output(None, &format!("{}\n", issued.line))?,
        None => {}
    }
    if json {
        let text = crate::text::json_ascii(r, true)
            .map_err(|e| Error::json("cannot encode the record as JSON", e))?;
        write_output(None, &format!("{text}\n"))?;
    }
    say("");
    say(format!(
        "Issued serial {}  key ID {}",
        r.serial,
        Esc(&r.key_id)
    ));
    say(format!("  principals:  {}", Esc(&r.principals.join(", "))));
    say(format!(
        "  valid from:  {}",
        both_times(issued.certificate.valid_after_time().into())
    ));
    say(format!(
        "  valid until: {}",
        both_times(issued.certificate.valid_before_time().into())
    ));
    // The extensions asked for; the ledger binding on a line of its own.
    let mut extensions = issued.certificate.extensions().clone();
    let binding = extensions.remove(crate::ledger::binding::EXTENSION);
    show_options(
        issued.certificate.critical_options(),
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
        Some(p) => say(format!("  certificate: {}", p.display())),
        None => say("  certificate: printed on stdout"),
    }
    say("Hand the certificate to the requester; they log in with: ssh -i KEY -o CertificateFile=KEY-cert.pub USER@HOST");
    Ok(())
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
}
