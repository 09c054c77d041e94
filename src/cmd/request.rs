//! `request`: write a dual-control request (see [`crate::dual::request`]) for the requester
//! to sign and the approvers to approve, and say exactly how. No token, no PIN; the state
//! directory is only read (for the policy's defaults and the CA's fingerprint), and may be
//! missing on a requester's machine.

use std::io::IsTerminal;
use std::path::Path;

use chrono::Utc;

use crate::cert::CertOptions;
use crate::cli::{RequestArgs, RequestFormat};
use crate::cmd::{write_stdout, Globals, Instead};
use crate::dual::{Request, APPROVAL_NAMESPACE, REQUEST_NAMESPACE};
use crate::error::Result;
use crate::export::qr::Qr;
use crate::text::{Esc, ShowPath};
use crate::ui::{both_times, say};
use crate::{fsx, issue, key, policy};

pub fn run(g: &Globals, args: &RequestArgs) -> Result<()> {
    let principals = policy::principals(&args.principals)?;
    let reason = crate::dual::request::check_reason(&args.reason)?;
    let options = CertOptions::parse(&args.options)?;
    let config = g.config()?;
    let policy = config.as_ref().map(|c| c.policy).unwrap_or_default();
    let validity = args.validity.unwrap_or(policy.default_validity);
    // What mint would refuse, refused now: the validity, the key, the options for it.
    policy::window(
        &policy,
        &policy::ValidityRequest {
            validity: Some(validity),
            ..Default::default()
        },
        Utc::now(),
    )?;
    let key_text = fsx::read_text(&args.pubkey, fsx::limit::KEY_FILE, "requester's public key")?;
    let subject = key::parse_requester_key(&key_text)?;
    if let Some(c) = &config {
        key::refuse_ca(&subject, &c.fingerprint)?;
    }
    options.check_for_key(&subject)?;
    let requester = issue::requester_name(args.requester.as_deref(), &subject)?;
    g.check_output(&args.output, Instead::Print)?;
    if args.format == RequestFormat::Qr && args.output == Path::new("-") {
        return Err(crate::error::Error::usage(
            "--format qr prints the QR code on stdout: the request cannot go there too",
        )
        .with_hint("write the request to a file: -o alice.req"));
    }
    let request = Request::new(
        &subject,
        &requester,
        principals,
        validity,
        options,
        &reason,
        Utc::now(),
    )?;
    let text = request.render()?;
    let to_stdout = args.output == Path::new("-");
    match to_stdout {
        true => write_stdout(&text)?,
        false => fsx::write_output(&args.output, text.as_bytes(), 0o644, &g.state_dir)?,
    }
    let max_age = config
        .as_ref()
        .map(|c| c.dual().max_request_age)
        .unwrap_or(crate::dual::approval::DEFAULT_MAX_AGE);
    let required = config.as_ref().map_or(0, |c| c.required_approvals);
    for line in instructions(
        &request,
        &args.output,
        max_age,
        required,
        config.as_ref().map(|c| c.fingerprint.as_str()),
    ) {
        say(line);
    }
    if args.format == RequestFormat::Qr {
        let qr = Qr::for_screen(&text, "the request").map_err(|e| {
            e.with_hint("the request was written; send the file itself (a large RSA key makes it too long for one QR code)")
        })?;
        let to_terminal = std::io::stdout().is_terminal();
        write_stdout(&qr.terminal(to_terminal))?;
        if to_terminal && qr.terminal_columns() > 100 {
            say(format!(
                "note: this QR code is {} columns wide; if the lines wrap, widen the terminal or make it smaller",
                qr.terminal_columns()
            ));
        }
        say(format!(
            "QR code of the request ({}): scanned, it gives the request text byte for byte",
            qr.describe()
        ));
    }
    Ok(())
}

/// The private key file `ssh-keygen` makes for a key of this type, as the signing line names
/// it (the requester may keep it elsewhere).
pub fn usual_private_key(key: &ssh_key::PublicKey) -> &'static str {
    use ssh_key::public::KeyData;
    match key.key_data() {
        KeyData::Ed25519(_) => "~/.ssh/id_ed25519",
        KeyData::Ecdsa(_) => "~/.ssh/id_ecdsa",
        KeyData::Rsa(_) => "~/.ssh/id_rsa",
        KeyData::SkEd25519(_) => "~/.ssh/id_ed25519_sk",
        KeyData::SkEcdsaSha2NistP256(_) => "~/.ssh/id_ecdsa_sk",
        _ => "~/.ssh/id_ed25519",
    }
}

/// What `request` tells the custodian (stderr): the request, then the exact commands.
fn instructions(
    request: &Request,
    output: &Path,
    max_age: crate::duration::Duration,
    required: u32,
    ca: Option<&str>,
) -> Vec<String> {
    let file = match output == Path::new("-") {
        true => "REQUEST".to_string(),
        false => shell_word(output),
    };
    let expires = chrono::TimeDelta::try_seconds(max_age.as_secs() as i64)
        .and_then(|d| request.created.checked_add_signed(d));
    let mut lines = vec![
        match output == Path::new("-") {
            true => "Request printed on stdout (save it as REQUEST, byte for byte).".to_string(),
            false => format!("Request written to {}.", output.shown()),
        },
        format!(
            "  requester:   {} ({})",
            Esc(&request.requester),
            request.fingerprint()
        ),
        format!("  principals:  {}", Esc(&request.principals.join(", "))),
        format!("  validity:    {}", request.validity),
        format!(
            "  options:     {}",
            Esc(&crate::dual::request::render_options(&request.options))
        ),
        format!("  reason:      {}", Esc(&request.reason)),
        format!("  nonce:       {}", request.nonce),
        format!(
            "  expires:     {} (max_request_age {max_age} after its creation)",
            expires.map_or("-".to_string(), both_times)
        ),
    ];
    if let Some(ca) = ca {
        lines.push(format!(
            "  for the CA:  {} (this state directory's)",
            Esc(ca)
        ));
    }
    let private = usual_private_key(&request.key);
    lines.push(String::new());
    lines.push(format!(
        "1. The requester signs it with the private key of {} (proof of possession), which writes {file}.sig:",
        request.fingerprint()
    ));
    lines.push(format!(
        "     ssh-keygen -Y sign -f {private} -n {REQUEST_NAMESPACE} {file}"
    ));
    lines.push(
        "2. Each approver reads it and signs it with their own key (NAME: the approver's name):"
            .into(),
    );
    lines.push(format!(
        "     ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n {APPROVAL_NAMESPACE} < {file} > NAME.sig"
    ));
    lines.push(format!(
        "3. The custodian mints it{}:",
        match required {
            0 => String::new(),
            n => format!(" ({n} approval(s) required)"),
        }
    ));
    lines.push(format!(
        "     breakglass-ca mint --request {file} --request-sig {file}.sig --approval NAME.sig ..."
    ));
    lines
}

/// A path as one shell word for a printed command line: as it is when it holds only plain
/// characters, else in single quotes (and escaped for the terminal: an unsafe character in
/// a file name shows as `\e`, `\u{…}`).
pub fn shell_word(path: &Path) -> String {
    let s = path.to_string_lossy();
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-+@:,=".contains(&b));
    match plain {
        true => s.into_owned(),
        false => format!("'{}'", crate::text::visible(&s.replace('\'', "'\\''"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_one_shell_word_on_the_screen() {
        assert_eq!(shell_word(Path::new("alice.req")), "alice.req");
        assert_eq!(shell_word(Path::new("/tmp/a b.req")), "'/tmp/a b.req'");
        assert_eq!(shell_word(Path::new("it's")), "'it'\\''s'");
        assert_eq!(shell_word(Path::new("a\u{1b}[2J")), "'a\\e[2J'");
    }
}
