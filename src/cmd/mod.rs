//! One module per subcommand, and what they share: resolving the CA URI and state directory,
//! opening the CA key and checking it is the one this state directory was set up for, and
//! unlocking it with the PIN after showing the custodian what was selected.

pub mod add_backup_ca;
pub mod audit;
pub mod ca_source;
pub mod completions;
pub mod doctor;
pub mod host_config;
pub mod import_qr;
pub mod init;
pub mod inspect;
pub mod krl;
pub mod log;
pub mod login;
pub mod mint;
pub mod mint_request;
pub mod pubkey;
pub mod request;
pub mod revoke;
pub mod status;

use std::path::{Path, PathBuf};

use ssh_key::HashAlg;

use crate::backend::{self, CaKey};
use crate::cli::{Cli, Command};
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::fsx;
use crate::pin::{self, Pin, PinSource};
use crate::policy;
use crate::signals::Deferral;
use crate::text::ShowPath;
use crate::ui::say;
use crate::uri::CaUri;

/// What an interrupted mint says when it stopped before signing.
pub const NOTHING_ISSUED: &str = "nothing was issued, the token and ledger are intact";

/// The global options, resolved.
pub struct Globals {
    pub ca: Option<String>,
    pub state_dir: PathBuf,
    /// Every `--state-dir` given (`audit` reads several), `state_dir` first; just
    /// `state_dir` when none was given.
    pub state_dirs: Vec<PathBuf>,
    pub pin_file: Option<PathBuf>,
}

impl Globals {
    pub fn config(&self) -> Result<Option<Config>> {
        Config::load(&self.state_dir)
    }

    /// `--ca` (or BREAKGLASS_CA), else the `ca` line of config.toml.
    pub fn ca_uri(&self, config: Option<&Config>) -> Result<CaUri> {
        match (&self.ca, config) {
            (Some(uri), _) => uri.parse(),
            (None, Some(c)) => Ok(c.ca.clone()),
            (None, None) => Err(Error::usage(format!(
                "no CA key given and no configuration in {}",
                self.state_dir.shown()
            ))
            .with_hint("pass --ca URI (or set BREAKGLASS_CA), or point --state-dir at the directory where 'breakglass-ca init' was run")),
        }
    }

    /// Open the CA key without a PIN. When the key is meant to be this state directory's CA
    /// (`strict`, or no `--ca` given), refuse one whose fingerprint differs from the
    /// configuration's: a different token behind the same URI.
    pub fn open_ca(
        &self,
        config: Option<&Config>,
        strict: bool,
    ) -> Result<(CaUri, Box<dyn CaKey>)> {
        let uri = self.ca_uri(config)?;
        let key = backend::open(&uri, std::sync::Arc::new(crate::ui::Terminal))?;
        if let Some(c) = config.filter(|_| strict || self.ca.is_none()) {
            self.check_token_key(c, key.public_key())?;
        }
        Ok((uri, key))
    }

    /// Check an output file path before anything is done (`-` is stdout): a plain file or
    /// nothing there yet, in a directory that exists, outside the state directory. `instead`
    /// says what the command offers instead of a file, for the refusal's hint.
    pub fn check_output(&self, path: &Path, instead: Instead) -> Result<()> {
        if path == Path::new("-") {
            return Ok(());
        }
        fsx::check_replaceable(path, instead.hint())?;
        fsx::check_outside_state_dir(path, &self.state_dir)
    }

    /// The same for an output directory to be created (`log export -o`, `host-config --out`).
    pub fn check_output_dir(&self, path: &Path) -> Result<()> {
        fsx::check_outside_state_dir(path, &self.state_dir)
    }

    /// Show what was selected, check the PIN tries, read the PIN and log in, with signals
    /// deferred by `signals` from the prompt on (see [`crate::signals`]); stop if one came.
    pub fn unlock(
        &self,
        signals: &Deferral,
        uri: &CaUri,
        key: &mut dyn CaKey,
        force: bool,
    ) -> Result<()> {
        let info = key.info();
        let fp = key.public_key().fingerprint(HashAlg::Sha256);
        say(format!("CA token:       {}", info.token));
        say(format!("CA key:         {}", info.key));
        say(format!("CA fingerprint: {fp}"));
        say(format!("PIN state:      {}", info.pin));
        if let Some(pin_use) = &info.pin_use {
            say(format!("PIN use:        {pin_use}"));
        }
        let (source, from) = self.pin_source(uri)?;
        say(format!("PIN from:       {from}"));
        policy::pin_tries(info.pin, force)?;
        let pin = read_pin(signals, &source, &info.token, NOTHING_ISSUED)?;
        key.login(&pin)?;
        drop(pin);
        signals.stop_if_taken(
            || format!("before signing: {NOTHING_ISSUED}"),
            || "nothing to clean up: run the same mint again when ready".into(),
        )
    }
}

impl Globals {
    /// Where the PIN for `uri` comes from, and how to say it ([`PinSource::resolve`]): a
    /// `--pin-file` that is the value of `BREAKGLASS_CA_PIN_FILE` is named as that variable.
    pub fn pin_source(&self, uri: &CaUri) -> Result<(PinSource, String)> {
        let from_env = self
            .pin_file
            .as_deref()
            .is_some_and(|p| std::env::var_os(PIN_FILE_ENV).is_some_and(|v| Path::new(&v) == p));
        PinSource::resolve(
            uri.pin_source().map(PathBuf::as_path),
            self.pin_file.as_deref(),
            if from_env { PIN_FILE_ENV } else { "--pin-file" },
        )
    }
}

/// The environment variable of `--pin-file`.
pub const PIN_FILE_ENV: &str = "BREAKGLASS_CA_PIN_FILE";

/// What a command offers instead of an `-o FILE` that is refused (a symbolic link, a
/// directory, a device): the hint differs, since leaving `-o` out or giving `-o -` does
/// different things per command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instead {
    /// Leaving `-o` out, or `-o -`, prints it (`pubkey`).
    Print,
    /// Leaving `-o` out writes KEY-cert.pub beside KEY.pub; `-o -` prints it (`mint`).
    Certificate,
    /// Binary: `-o -` writes it into a pipe, never onto a terminal; no `-o` is an error
    /// (`krl -o`).
    Pipe,
    /// Binary, into a file only (`pubkey --format png`).
    FileOnly,
}

impl Instead {
    /// The hint for a refused output path: the one place it is worded.
    pub fn hint(self) -> &'static str {
        match self {
            Instead::Print => "give the path of a plain file (nothing was replaced); to print it instead, leave -o out or use -o -",
            Instead::Certificate => "give the path of a plain file (nothing was replaced), or leave -o out to write KEY-cert.pub beside KEY.pub, or use -o - to print the certificate",
            Instead::Pipe => "give the path of a plain file (nothing was replaced), e.g. -o breakglass-ca.krl; a KRL is binary: -o - writes it into a pipe only, never onto a terminal",
            Instead::FileOnly => "give the path of a plain file (nothing was replaced), e.g. -o ca-qr.png: the image is binary and goes into a file only",
        }
    }
}

/// Read the PIN from `source`, warning on stderr when its file can be read by others.
pub fn read_pin(
    signals: &Deferral,
    source: &PinSource,
    what: &str,
    untouched: &str,
) -> Result<Pin> {
    let (pin, loose) = signals.read_pin(source, what, untouched)?;
    if let Some(loose) = loose {
        say(format!("WARNING: {loose}"));
    }
    Ok(pin)
}

/// Read a small input file (a key or a certificate), or stdin for `-`, with a size limit.
pub fn read_input(path: &Path, what: &str) -> Result<String> {
    fsx::read_text(path, fsx::limit::KEY_FILE, what)
}

/// Write command output to stdout.
pub fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("cannot write to stdout", e))
}

/// Write command output to a file (atomically, never into `state_dir`; see
/// [`fsx::write_output`]), or stdout for none or `-`.
pub fn write_output_in(output: Option<&Path>, state_dir: &Path, text: &str) -> Result<()> {
    match output.filter(|p| *p != Path::new("-")) {
        Some(p) => fsx::write_output(p, text.as_bytes(), 0o644, state_dir),
        None => write_stdout(text),
    }
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    // Before anything else, whatever the command: no PIN may ever end up in a core dump.
    pin::forbid_core_dumps()?;
    // Generated from the definitions alone, or from key files or pictures alone: no state
    // directory needed (a package build; the image builder's `host-config --ca-pubkey` and
    // `import-qr`).
    match &cli.command {
        Command::Completions(a) => return completions::run(a),
        Command::Man => return completions::man(),
        Command::ImportQr(a) => return import_qr::run(a),
        Command::HostConfig(a) if !a.ca_pubkey.is_empty() => {
            return host_config::run_from_files(&cli.state_dir, cli.ca.as_deref(), a);
        }
        _ => {}
    }
    if cli.state_dir.len() > 1 && !matches!(cli.command, Command::Audit(_)) {
        return Err(Error::usage(format!(
            "--state-dir was given {} times; only 'audit' reads several state directories",
            cli.state_dir.len()
        ))
        .with_hint("give --state-dir once: the state directory of the CA this command is for"));
    }
    let state_dir = config::state_dir(cli.state_dir.first().map(PathBuf::as_path))?;
    let mut state_dirs = cli.state_dir;
    if state_dirs.is_empty() {
        state_dirs.push(state_dir.clone());
    }
    let mut command = cli.command;
    let (ca, pin_file) = command.token_options();
    let globals = Globals {
        ca: once(
            "--ca",
            "BREAKGLASS_CA",
            cli.ca.map(Into::into),
            ca.map(Into::into),
        )?
        .map(|s: std::ffi::OsString| s.to_string_lossy().into_owned())
        .filter(|s| !s.trim().is_empty()),
        state_dir,
        state_dirs,
        pin_file: once(
            "--pin-file",
            "BREAKGLASS_CA_PIN_FILE",
            cli.pin_file,
            pin_file,
        )?,
    };
    match command {
        Command::Init(a) => init::run(&globals, &a),
        Command::Pubkey(a) => pubkey::run(&globals, &a),
        Command::Mint(a) => mint::run(&globals, &a),
        Command::Inspect(a) => inspect::run(&globals, &a),
        Command::Status(a) => status::run(&globals, &a),
        Command::Log(a) => log::run(&globals, &a),
        Command::Attest(_) => status::attest(&globals),
        Command::AddBackupCa(a) => add_backup_ca::run(&globals, &a),
        Command::HostConfig(a) => host_config::run(&globals, &a),
        Command::Revoke(a) => revoke::run(&globals, &a),
        Command::Krl(a) => krl::run(&globals, &a),
        Command::Audit(a) => audit::run(&globals, &a),
        Command::Request(a) => request::run(&globals, &a),
        Command::Doctor(a) => doctor::run(&globals, &a),
        Command::Completions(a) => completions::run(&a),
        Command::Man => completions::man(),
        Command::ImportQr(a) => import_qr::run(&a),
    }
}

/// An option given before the command (as 0.1-0.3 scripts do) or after it: one value. The one
/// before the command wins over the environment variable, as an option always does.
fn once<T: PartialEq + From<std::ffi::OsString>>(
    name: &str,
    env: &str,
    before: Option<T>,
    after: Option<T>,
) -> Result<Option<T>> {
    let from_env = std::env::var_os(env).map(T::from);
    match (before, after) {
        (Some(b), Some(a)) if a != b && Some(&a) != from_env.as_ref() => {
            Err(Error::usage(format!(
                "{name} was given twice with different values, before the command and after it"
            ))
            .with_hint(format!("give {name} once, after the command")))
        }
        (Some(b), _) => Ok(Some(b)),
        (None, a) => Ok(a),
    }
}

/// The ledger in `dir`, its notes (waiting for another mint's lock) shown on stderr.
pub fn ledger(dir: &Path) -> crate::ledger::Ledger {
    crate::ledger::Ledger::new(dir).on_note(|note| say(note.to_string()))
}
