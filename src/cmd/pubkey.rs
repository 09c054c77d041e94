//! `pubkey`: export the CA public key. Reads only public objects: no PIN, ever. The key comes
//! from the token, or from `STATE/ca.pub` when the token is not plugged in (checked against
//! config.toml; see [`crate::cmd::ca_source`]); stderr says which.
//!
//! Text formats (`openssh`, `fingerprint`, `json`) print this CA, or with `--bundle` this CA
//! and then every backup CA of config.toml. `qr` draws the line (or the bundle) on the
//! terminal, `png` and `svg` make an image of it for print, and `sheet` makes the printable A4
//! key sheet, which always lists the backup CAs. The bundle and the sheet leave out the CA
//! keys the ledger revokes (`revoke --ca`): the bundle names them in `#` comment lines, the
//! sheet marks them "REVOKED" with their fingerprint, and a note says so. This CA's line alone
//! is printed even when revoked (it is how another state directory revokes it), with a warning.

use std::io::IsTerminal;
use std::path::Path;

use ssh_key::public::KeyData;

use crate::cli::{PubkeyArgs, PubkeyFormat};
use crate::cmd::ca_source::CaSource;
use crate::cmd::{write_output_in, Globals};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::export::qr::Qr;
use crate::export::sheet::{self, Sheet};
use crate::export::{self, CaLine};
use crate::text::ShowPath;
use crate::ui::say;

/// A terminal narrower than this cannot show most QR codes; say so when the code is wider.
const NARROW_TERMINAL: usize = 80;

pub fn run(g: &Globals, args: &PubkeyArgs) -> Result<()> {
    let output = args.output.as_deref();
    let state_dir = g.state_dir.as_path();
    if let Some(p) = file_of(output) {
        let instead = match args.format {
            PubkeyFormat::Png => crate::cmd::Instead::FileOnly,
            _ => crate::cmd::Instead::Print,
        };
        g.check_output(p, instead)?;
    }
    let config = g.config()?;
    let source = g.ca_source(config.as_ref(), false)?;
    say(source.describe(&g.state_dir, config.as_ref()));
    let public = source.public_key();
    let primary = CaLine {
        line: crate::key::openssh_line(public)?,
        key: public.clone(),
    };
    let (own, backups) = own_config_and_backups(g, args, config.as_ref(), &primary)?;
    let revoked = revoked_cas(g, args, own, &primary, &backups)?;
    let shown = Shown::new(args.bundle, &primary, &backups, &revoked)?;
    let fingerprint = primary.fingerprint();
    match args.format {
        PubkeyFormat::Openssh => {
            write_output_in(output, state_dir, &format!("{}\n", shown.content))
        }
        PubkeyFormat::Fingerprint => {
            let text: String = shown
                .lines
                .iter()
                .map(|ca| format!("{}\n", ca.fingerprint()))
                .collect();
            write_output_in(output, state_dir, &text)
        }
        PubkeyFormat::Json => {
            let uri = source.uri().map(ToString::to_string).unwrap_or_default();
            let text = if args.bundle {
                bundle_json(public, &uri, &backups, &revoked)?
            } else {
                export::json(public, &uri)?
            };
            write_output_in(output, state_dir, &format!("{text}\n"))
        }
        PubkeyFormat::Qr => terminal_qr(output, state_dir, &shown, &fingerprint),
        PubkeyFormat::Png => png_qr(output, state_dir, &shown),
        PubkeyFormat::Svg => svg_qr(output, state_dir, &shown, &fingerprint),
        PubkeyFormat::Sheet => key_sheet(
            output,
            state_dir,
            &source,
            own,
            (primary, backups),
            &revoked,
        ),
    }
}

/// config.toml describes this CA only if it names this key (`--ca` may point elsewhere): that
/// configuration, if any, and for `--bundle` and the sheet its backup CAs. The backups of
/// another CA's configuration are refused for `--bundle` and left off the sheet, with a note.
fn own_config_and_backups<'c>(
    g: &Globals,
    args: &PubkeyArgs,
    config: Option<&'c Config>,
    primary: &CaLine,
) -> Result<(Option<&'c Config>, Vec<CaLine>)> {
    let fingerprint = primary.fingerprint();
    let own = config.filter(|c| c.fingerprint == fingerprint);
    let foreign = config.filter(|c| c.fingerprint != fingerprint);
    let wants_backups = args.bundle || args.format == PubkeyFormat::Sheet;
    if let (Some(c), true) = (foreign, wants_backups) {
        let message = format!(
            "the configuration in {} is for the CA {}, not for this key ({fingerprint})",
            g.state_dir.shown(),
            crate::text::Esc(&c.fingerprint)
        );
        if args.bundle {
            return Err(Error::config(format!(
                "{message}: its backup CAs do not belong to this key"
            ))
            .with_hint(
                "leave out --ca to use the configured CA, or point --state-dir at this CA's own state directory",
            ));
        }
        say(format!(
            "note: {message}; the sheet shows no backup CAs and no creation date"
        ));
    }
    let backups = if wants_backups {
        export::backup_cas(own, &g.state_dir, &mut say)?
    } else {
        Vec::new()
    };
    if args.bundle && own.is_none() && config.is_none() {
        say(format!(
            "note: no configuration in {}, so the bundle holds only this CA",
            g.state_dir.shown()
        ));
    }
    Ok((own, backups))
}

/// For `--bundle` and the sheet, with this CA's own configuration: the CA keys its ledger
/// revokes, as keys, with a note for each one of this bundle (primary and backups). None
/// otherwise (the ledger of another CA's state directory says nothing about this one).
fn revoked_cas(
    g: &Globals,
    args: &PubkeyArgs,
    own: Option<&Config>,
    primary: &CaLine,
    backups: &[CaLine],
) -> Result<Vec<KeyData>> {
    let wants_backups = args.bundle || args.format == PubkeyFormat::Sheet;
    if own.is_none() {
        return Ok(Vec::new());
    }
    let ledger = crate::cmd::ledger(&g.state_dir);
    if !wants_backups {
        // This CA's line alone, for any use: printed even when revoked (the backup CA's state
        // directory revokes it from this line too), but never without saying so. A ledger
        // that cannot be read does not stop it.
        let revoked_here = ledger
            .revoked(&primary.fingerprint())
            .and_then(|r| export::revoked_ca_keys(&r.ca_keys))
            .is_ok_and(|keys| keys.contains(&primary.key));
        if revoked_here {
            say(format!(
                "WARNING: this CA ({}) is revoked in the ledger ('breakglass-ca log'): hosts must not trust this line; for hosts use 'breakglass-ca pubkey --bundle' or 'host-config', which leave it out",
                primary.fingerprint()
            ));
        }
        return Ok(Vec::new());
    }
    let revoked = ledger.revoked(&primary.fingerprint())?;
    let keys = export::revoked_ca_keys(&revoked.ca_keys)?;
    let what = if args.bundle { "bundle" } else { "sheet" };
    for (i, ca) in std::iter::once(primary).chain(backups).enumerate() {
        if keys.contains(&ca.key) {
            say(format!(
                "note: {} ({}) is revoked in the ledger: the {what} marks it REVOKED and leaves it out",
                ca.fingerprint(),
                export::role(i)
            ));
        }
    }
    Ok(keys)
}

/// What the text and QR formats show: this CA's line, or with `--bundle` every CA line hosts
/// may trust, primary first, with a comment line for each revoked one.
struct Shown {
    lines: Vec<CaLine>,
    /// The lines as one text (no final newline): what is printed and what the QR code holds.
    content: String,
    /// What `content` is, for messages.
    what: String,
}

impl Shown {
    fn new(
        bundle: bool,
        primary: &CaLine,
        backups: &[CaLine],
        revoked: &[KeyData],
    ) -> Result<Shown> {
        if !bundle {
            return Ok(Shown {
                lines: vec![primary.clone()],
                content: primary.line.clone(),
                what: "the CA public key line".to_string(),
            });
        }
        let all: Vec<CaLine> = std::iter::once(primary.clone())
            .chain(backups.iter().cloned())
            .collect();
        let text = export::bundle_text(&all, revoked)?;
        let lines: Vec<CaLine> = export::trusted(&all, revoked)?
            .into_iter()
            .map(|(_, ca)| ca.clone())
            .collect();
        let what = format!("the bundle of {} CA line(s)", lines.len());
        Ok(Shown {
            lines,
            content: text.trim_end_matches('\n').to_string(),
            what,
        })
    }
}

/// `--format qr`: the code in text, with a note when it is wider than most terminals. ANSI
/// colours (black on white) only when it goes to a terminal; into a file or a pipe, plain half
/// blocks (dark on light as printed).
fn terminal_qr(
    output: Option<&Path>,
    state_dir: &Path,
    shown: &Shown,
    fingerprint: &str,
) -> Result<()> {
    let qr = Qr::for_screen(&shown.content, &shown.what)?;
    let to_terminal = file_of(output).is_none() && std::io::stdout().is_terminal();
    if to_terminal && qr.terminal_columns() > NARROW_TERMINAL {
        say(format!(
            "note: this QR code is {} columns wide; if the lines wrap, widen the terminal or make it smaller (or use --format png, svg or sheet)",
            qr.terminal_columns()
        ));
    }
    write_output_in(output, state_dir, &qr.terminal(to_terminal))?;
    say(format!(
        "QR code of {} ({}); CA fingerprint {fingerprint}",
        shown.what,
        qr.describe()
    ));
    Ok(())
}

/// `--format png`: a binary image, so only into a file.
fn png_qr(output: Option<&Path>, state_dir: &Path, shown: &Shown) -> Result<()> {
    let Some(path) = file_of(output) else {
        return Err(Error::usage("--format png writes a binary image and needs -o FILE")
            .with_hint("e.g. 'breakglass-ca pubkey --format png -o ca-qr.png'; for the terminal use --format qr, for stdout --format svg"));
    };
    let qr = Qr::for_print(&shown.content, &shown.what)?;
    crate::fsx::write_output(path, &qr.png()?, 0o644, state_dir)?;
    say(format!(
        "wrote {}: QR code of {} ({}, {} px per module)",
        path.shown(),
        shown.what,
        qr.describe(),
        crate::export::qr::PNG_MODULE_PX
    ));
    Ok(())
}

/// `--format svg`: the code for print, titled with what it holds.
fn svg_qr(output: Option<&Path>, state_dir: &Path, shown: &Shown, fingerprint: &str) -> Result<()> {
    let qr = Qr::for_print(&shown.content, &shown.what)?;
    let title = format!("breakglass-ca: {}, {fingerprint}", shown.what);
    write_output_in(output, state_dir, &qr.svg(&title))?;
    if let Some(path) = file_of(output) {
        say(format!(
            "wrote {}: QR code of {} ({}, {} mm per module); print it at 100 %",
            path.shown(),
            shown.what,
            qr.describe(),
            crate::export::qr::mm(qr.svg_module_mm())
        ));
    }
    Ok(())
}

/// What the sheet says in place of the token's facts when the key came from `ca.pub`.
const SHEET_NO_TOKEN: &str = "not plugged in: printed from ca.pub (label and serial not read)";
/// The same for the key's label and id.
const SHEET_NO_KEY: &str = "not read from the token: check the fingerprint below";

/// `--format sheet`: the A4 key sheet, with the URI and creation date of this CA's own
/// configuration when there is one; the `revoked` CA keys marked and left out. Made from
/// `ca.pub`, it says that the token was not read instead of its label and serial.
fn key_sheet(
    output: Option<&Path>,
    state_dir: &Path,
    source: &CaSource,
    own: Option<&Config>,
    (primary, backups): (CaLine, Vec<CaLine>),
    revoked: &[KeyData],
) -> Result<()> {
    let (token, key) = match source.token() {
        Some(t) => {
            let info = t.info();
            (info.token, info.key)
        }
        None => (SHEET_NO_TOKEN.to_string(), SHEET_NO_KEY.to_string()),
    };
    let uri = own
        .map(|c| c.ca.to_string())
        .or_else(|| source.uri().map(ToString::to_string))
        .unwrap_or_default();
    let fingerprint = primary.fingerprint();
    let all: Vec<CaLine> = std::iter::once(primary.clone())
        .chain(backups.iter().cloned())
        .collect();
    export::trusted(&all, revoked)?;
    let (revoked_lines, backups): (Vec<CaLine>, Vec<CaLine>) =
        backups.into_iter().partition(|b| revoked.contains(&b.key));
    let mut revoked_lines = revoked_lines;
    if revoked.contains(&primary.key) {
        revoked_lines.insert(0, primary.clone());
    }
    let sheet = Sheet {
        primary,
        token,
        key,
        uri,
        created: own.map(|c| c.created.clone()),
        backups,
        revoked: revoked_lines,
        printed: chrono::Utc::now(),
    };
    let svg = sheet::render(&sheet)?;
    write_output_in(output, state_dir, &svg)?;
    if let Some(path) = file_of(output) {
        say(format!(
            "wrote {}: the A4 key sheet of CA {fingerprint} with {} backup CA(s); print it at 100 % (no 'fit to page') and check the fingerprint on paper",
            path.shown(),
            sheet.backups.len()
        ));
    }
    Ok(())
}

/// `-o FILE`, unless it is absent or `-` (stdout).
fn file_of(output: Option<&Path>) -> Option<&Path> {
    output.filter(|p| *p != Path::new("-"))
}

/// `--format json --bundle`: an array, this CA first (as without --bundle, plus
/// `"role": "primary"`), then each backup CA (`"role": "backup"`); a CA key in `revoked` is
/// left out (the notes name it), so every `public_key` of the array may be trusted.
fn bundle_json(
    public: &KeyData,
    uri: &str,
    backups: &[CaLine],
    revoked: &[KeyData],
) -> Result<String> {
    let mut primary: serde_json::Value = serde_json::from_str(&export::json(public, uri)?)
        .map_err(|e| Error::json("cannot build the JSON output", e))?;
    if let Some(object) = primary.as_object_mut() {
        object.insert("role".into(), "primary".into());
    }
    let mut all = Vec::new();
    if !revoked.contains(public) {
        all.push(primary);
    }
    for ca in backups.iter().filter(|ca| !revoked.contains(&ca.key)) {
        all.push(serde_json::json!({
            "public_key": ca.line,
            "fingerprint": ca.fingerprint(),
            "algorithm": ca.algorithm(),
            "role": "backup",
        }));
    }
    export::json_text(&serde_json::Value::Array(all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use ssh_key::PublicKey;

    fn config_with(backups: Vec<String>) -> Config {
        Config {
            backup_ca_pubkeys: backups,
            ..Config::for_tests("SHA256:x")
        }
    }

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi backup-1";

    #[test]
    fn backups_parse_and_keep_their_comment() {
        let dir = Path::new("/state");
        assert!(export::backup_cas(None, dir, &mut |_| {})
            .unwrap()
            .is_empty());
        let c = config_with(vec![format!("  {ED}\n")]);
        let got = export::backup_cas(Some(&c), dir, &mut |_| {}).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].line, ED);
        assert_eq!(
            got[0].fingerprint(),
            got[0].key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
        );
    }

    #[test]
    fn a_bad_backup_line_is_a_config_error_naming_it() {
        let c = config_with(vec![ED.into(), "ssh-ed25519 AAAAnotbase64!!".into()]);
        let err = export::backup_cas(Some(&c), Path::new("/state"), &mut |_| {}).unwrap_err();
        let text = err.to_string();
        assert!(err.kind() == Some(crate::error::Kind::Config), "{err:?}");
        assert!(text.contains("entry 2"), "{text}");
        assert!(text.contains("/state/config.toml"), "{text}");
        assert!(err.hint().unwrap().contains("add-backup-ca"));
    }

    #[test]
    fn bundle_json_lists_primary_then_backups() {
        let c = config_with(vec![ED.into()]);
        let backups = export::backup_cas(Some(&c), Path::new("/s"), &mut |_| {}).unwrap();
        let primary = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClkAV2VerYjibbKIeVQBgYmDr4K1uI9+YR6l5i1s6yV x",
        )
        .unwrap();
        let text = bundle_json(primary.key_data(), "pkcs11:token=t", &backups, &[]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0]["role"], "primary");
        assert_eq!(a[0]["uri"], "pkcs11:token=t");
        assert_eq!(a[1]["role"], "backup");
        assert_eq!(a[1]["public_key"], ED);
        assert_eq!(a[1]["algorithm"], "ed25519");
    }

    /// Hand-made revoked sets: the JSON bundle and the shown bundle leave a revoked CA out (the
    /// text bundle names it in a comment); with every CA revoked, both refuse.
    #[test]
    fn revoked_cas_are_left_out_of_json_and_text_bundles() {
        let c = config_with(vec![ED.into()]);
        let backups = export::backup_cas(Some(&c), Path::new("/s"), &mut |_| {}).unwrap();
        let public = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClkAV2VerYjibbKIeVQBgYmDr4K1uI9+YR6l5i1s6yV x",
        )
        .unwrap();
        let primary = CaLine {
            line: crate::key::openssh_line(public.key_data()).unwrap(),
            key: public.key_data().clone(),
        };
        let backup_revoked = vec![backups[0].key.clone()];
        let text = bundle_json(public.key_data(), "u", &backups, &backup_revoked).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["role"], "primary");
        let primary_revoked = vec![primary.key.clone()];
        let text = bundle_json(public.key_data(), "u", &backups, &primary_revoked).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["role"], "backup");
        assert_eq!(v[0]["public_key"], ED);

        let shown = Shown::new(true, &primary, &backups, &primary_revoked).unwrap();
        assert_eq!(shown.lines, backups);
        assert_eq!(
            shown.content,
            format!(
                "{ED}\n# REVOKED, do not trust: {} (ed25519, this CA)",
                primary.fingerprint()
            )
        );
        assert_eq!(shown.what, "the bundle of 1 CA line(s)");
        // Without --bundle, this CA's line alone, as before.
        let alone = Shown::new(false, &primary, &backups, &primary_revoked).unwrap();
        assert_eq!(alone.content, primary.line);
        let both = vec![primary.key.clone(), backups[0].key.clone()];
        assert!(Shown::new(true, &primary, &backups, &both).is_err());
    }
}
