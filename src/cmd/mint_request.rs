//! `mint --request FILE --request-sig FILE [--approval FILE]...`: everything about a signed
//! request that `mint` checks before the ledger is locked and long before the PIN (the
//! request, its age, the proof of possession, the approvals against the approvers file, and
//! that no command-line option contradicts the request), and the dual-control line every
//! mint shows. The replay check (a request whose nonce the ledger holds) is made under the
//! lock, before the token is opened (`issue::refuse_replay`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::cert::CertOptions;
use crate::cli::MintArgs;
use crate::cmd::Globals;
use crate::config::Config;
use crate::dual::approval::{self, Given};
use crate::dual::signers::{self, Signers};
use crate::dual::sshsig::{self, Armored};
use crate::dual::{DualControl, Request};
use crate::error::{Error, Result};
use crate::issue::MintRequest;
use crate::text::{Esc, ShowPath};
use crate::ui::say;
use crate::{fsx, key, policy};

/// A signed request, checked: the one key to certify and what the pre-PIN screen says.
pub struct FromRequest {
    pub req: MintRequest,
    /// The request file (`-`: stdin), for messages.
    pub input: PathBuf,
    /// Where the certificate goes (`None`: stdout).
    pub output: Option<PathBuf>,
    /// The lines for the pre-PIN screen.
    pub lines: Vec<String>,
}

/// How an input is named in messages: `--approval bob.sig`, `--request-sig stdin`.
fn named(option: &str, path: &Path) -> String {
    match path == Path::new("-") {
        true => format!("{option} - (stdin)"),
        false => format!("{option} {}", crate::text::escape(&path.to_string_lossy())),
    }
}

/// Read an armored signature from `path`, or from stdin up to its END line for `-` (with a
/// prompt on a terminal).
fn read_signature(path: &Path, option: &str, what: &str) -> Result<Armored> {
    let text = if path == Path::new("-") {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            say(format!(
                "Paste the {what} ({option}), ending with the line {}:",
                sshsig::END
            ));
        }
        sshsig::read_armor(&mut stdin.lock(), &format!("{what} on stdin"))?
    } else {
        fsx::read_text(path, sshsig::MAX_SIGNATURE_BYTES as u64, what)?
    };
    Armored::parse(&text)
}

/// `ssh-keygen`'s convention for the certificate of a request: `alice.req` gives
/// `alice-cert.pub`, any other name `NAME-cert.pub`; stdin gives stdout.
pub fn default_output(request: &Path) -> Option<PathBuf> {
    crate::cmd::mint::cert_beside(request, ".req")
}

/// A command-line option that says something the request already says must say the same.
fn contradiction(option: &str, given: &str, request: &str) -> Error {
    Error::usage(format!(
        "{option} {} contradicts the request, which says {}",
        Esc(given),
        Esc(request)
    ))
    .with_hint("with --request, mint issues exactly what the request says: leave the option out (or make and sign a new request)")
}

/// Refuse a plain mint (no `--request`) when `config.toml` requires one.
pub fn refuse_without_request(config: &Config) -> Result<()> {
    let dual = config.dual();
    if !dual.needs_request() {
        return Ok(());
    }
    let why = match dual.required_approvals {
        0 => "require_possession = true".to_string(),
        n => format!("required_approvals = {n}"),
    };
    Err(Error::refused(format!(
        "config.toml says {why}: this CA mints only a signed request (--request FILE --request-sig FILE{})",
        match dual.required_approvals {
            0 => String::new(),
            _ => " --approval FILE...".into(),
        }
    ))
    .with_hint("make the request: breakglass-ca request -n PRINCIPAL --reason TEXT -o REQUEST KEY.pub, have it signed (docs/runbook.md, \"Two-person rule\")"))
}

/// The approvers file of `config` (in the state directory `dir`), if one is configured.
pub fn approvers(config: &Config, dir: &Path) -> Result<Option<Signers>> {
    match config.dual().approvers_path(dir) {
        Some(path) => signers::load(&path).map(Some),
        None => Ok(None),
    }
}

/// What dual control `config` (in the state directory `dir`) gives, and whether that is a
/// warning: for `status` and every mint.
pub fn dual_text(config: &Config, dir: &Path) -> (String, bool) {
    let count = approvers(config, dir)
        .ok()
        .flatten()
        .map(|s| s.names().len());
    config.dual().describe(count)
}

/// The dual-control line of the pre-PIN screen, and whether it is a warning.
pub fn dual_line(config: &Config, dir: &Path) -> (String, bool) {
    let (line, loud) = dual_text(config, dir);
    match loud {
        true => (format!("WARNING: dual control: {line}"), true),
        false => (format!("Dual control:   {line}"), false),
    }
}

/// Check `mint --request …` (see the module).
pub fn check(g: &Globals, args: &MintArgs, config: &Config) -> Result<FromRequest> {
    let input = args
        .request
        .clone()
        .ok_or_else(|| Error::usage("internal error: no --request"))?;
    let sig_path = args.request_sig.clone().ok_or_else(|| {
        Error::usage("--request needs --request-sig FILE: the requester's signature over it (ssh-keygen -Y sign -n breakglass-ca-request)")
    })?;
    // What a request decides alone.
    for (given, option) in [
        (args.key_id.is_some(), "-I"),
        (args.not_before.is_some(), "--not-before"),
        (args.force_window, "--force-window"),
    ] {
        if given {
            return Err(Error::usage(format!(
                "{option} cannot be given with --request: the request decides the certificate (its key ID is the default one, its window starts now)"
            ))
            .with_hint("leave it out; if this laptop's clock is wrong, set it right (the request's age is checked against it too)"));
        }
    }
    if args.pubkeys.len() > 1 {
        return Err(Error::usage(format!(
            "{} public keys were given with --request: a request is for one key",
            args.pubkeys.len()
        ))
        .with_hint("mint each request on its own"));
    }
    let stdin_uses = std::iter::once(&input)
        .chain(std::iter::once(&sig_path))
        .chain(&args.approvals)
        .chain(&args.pubkeys)
        .filter(|p| *p == Path::new("-"))
        .count();
    if stdin_uses > 1 {
        return Err(Error::usage(
            "'-' (stdin) is given more than once: stdin holds one request or one signature",
        )
        .with_hint(
            "give '-' once (e.g. for the approval pasted on the terminal), the others as files",
        ));
    }
    if args.approvals.len() > approval::MAX_APPROVALS {
        return Err(Error::usage(format!(
            "{} approvals were given; at most {} are read",
            args.approvals.len(),
            approval::MAX_APPROVALS
        )));
    }
    let dual = config.dual();
    let now = Utc::now();
    // The approvers file first: a broken one is a configuration error, whatever is given.
    let signers = approvers(config, &g.state_dir)?;
    if signers.is_none() && !args.approvals.is_empty() {
        return Err(Error::usage(
            "--approval was given, but config.toml names no approvers_file: nobody could be checked as an approver",
        )
        .with_hint("add approvers_file = \"approvers\" and required_approvals = N to config.toml (docs/runbook.md, \"Two-person rule\"), or leave --approval out"));
    }
    let about = |option: &str, path: &Path| {
        let name = named(option, path);
        move |e: Error| e.about(&name)
    };
    // The request.
    let text = fsx::read_text(
        &input,
        crate::dual::request::MAX_REQUEST_BYTES as u64 + 1,
        "request",
    )
    .map_err(about("--request", &input))?;
    let request = Request::parse(text.as_bytes()).map_err(about("--request", &input))?;
    // Its signature: the proof of possession.
    let sig = read_signature(&sig_path, "--request-sig", "requester's signature")
        .map_err(about("--request-sig", &sig_path))?;
    approval::check_possession(&request, text.as_bytes(), &sig)?;
    approval::check_age(&request, now, dual.max_request_age)?;
    key::refuse_ca(&request.key, &config.fingerprint)?;
    key::check_public_key(&request.key)?;
    request.options.check_for_key(&request.key)?;
    // The command line says nothing else.
    if !args.principals.is_empty() {
        let given = policy::principals(&args.principals)?;
        if given != request.principals {
            return Err(contradiction(
                "-n",
                &given.join(","),
                &request.principals.join(","),
            ));
        }
    }
    if let Some(v) = args.validity.filter(|v| *v != request.validity) {
        return Err(contradiction(
            "-V",
            &v.to_string(),
            &request.validity.to_string(),
        ));
    }
    if !args.options.is_empty() {
        let given = CertOptions::parse(&args.options)?;
        if given != request.options {
            return Err(contradiction(
                "-O",
                &args.options.join(" "),
                &crate::dual::request::render_options(&request.options),
            ));
        }
    }
    if !args.reason.trim().is_empty() && args.reason.trim() != request.reason {
        return Err(contradiction(
            "--reason",
            args.reason.trim(),
            &request.reason,
        ));
    }
    if let Some(r) = args
        .requester
        .as_deref()
        .filter(|r| r.trim() != request.requester)
    {
        return Err(contradiction("--requester", r, &request.requester));
    }
    if let Some(path) = args.pubkeys.first() {
        let key_text = fsx::read_text(path, fsx::limit::KEY_FILE, "requester's public key")?;
        let subject = key::parse_requester_key(&key_text)?;
        if subject.key_data() != request.key.key_data() {
            return Err(contradiction(
                "PUBKEY",
                &format!(
                    "{} ({})",
                    path.shown(),
                    key::fingerprint(subject.key_data())
                ),
                &format!("the key {}", request.fingerprint()),
            ));
        }
    }
    // The approvals.
    let mut given = Vec::with_capacity(args.approvals.len());
    for path in &args.approvals {
        let sig =
            read_signature(path, "--approval", "approval").map_err(about("--approval", path))?;
        given.push(Given {
            source: named("--approval", path),
            sig,
        });
    }
    let empty = Signers::default();
    let approvals = approval::check_approvals(
        &request,
        text.as_bytes(),
        signers.as_ref().unwrap_or(&empty),
        &given,
        dual.required_approvals as usize,
        now,
    )?;
    // Where the certificate goes.
    let output = match (args.output.as_deref(), args.pubkeys.first()) {
        (Some(p), _) if p == Path::new("-") => None,
        (Some(p), _) => Some(p.to_path_buf()),
        (None, Some(k)) => crate::cmd::mint::default_output(k),
        (None, None) => default_output(&input),
    };
    if let Some(p) = &output {
        g.check_output(p, crate::cmd::Instead::Certificate)?;
    }
    let mut lines = vec![format!(
        "Request:        signed by the requester's key {} (proof of possession), created {}, nonce {}",
        request.fingerprint(),
        crate::issue::rfc3339(request.created),
        request.nonce
    )];
    let names: Vec<String> = approvals
        .iter()
        .map(|a| {
            let fp = crate::key::parse_line(&a.key)
                .map(|k| key::fingerprint(k.key_data()))
                .unwrap_or_default();
            format!("{} ({fp})", Esc(&a.approver))
        })
        .collect();
    lines.push(match (dual.required_approvals, names.is_empty()) {
        (0, true) => "Approvals:      none (required_approvals = 0)".into(),
        (n, _) => format!(
            "Approvals:      {} valid, {n} required: {}",
            names.len(),
            match names.is_empty() {
                true => "none".to_string(),
                false => names.join(", "),
            }
        ),
    });
    if let Some(s) = &signers {
        lines.extend(s.notes.iter().map(|n| format!("NOTE: {n}")));
    }
    let req = request.mint_request(
        args.backdate,
        DualControl {
            request: text,
            request_signature: sig.text,
            approvals_required: dual.required_approvals,
            max_request_age: dual.max_request_age,
            approvals,
        },
    );
    Ok(FromRequest {
        req,
        input,
        output,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requests_certificate_goes_beside_it() {
        assert_eq!(
            default_output(Path::new("a/alice.req")),
            Some(PathBuf::from("a/alice-cert.pub"))
        );
        assert_eq!(
            default_output(Path::new("alice.txt")),
            Some(PathBuf::from("alice.txt-cert.pub"))
        );
        assert_eq!(default_output(Path::new("-")), None);
    }
}
