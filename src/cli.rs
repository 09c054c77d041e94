//! Command-line definitions (clap) and nothing else: parsing lives here, behaviour in `cmd/`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::Duration;

const ABOUT: &str =
    "Emergency OpenSSH user certificate authority with the CA key on a hardware token";

const AFTER_HELP: &str = "\
The usual emergency, step by step (see docs/runbook.md):
  breakglass-ca status                              # right token? right CA fingerprint?
  breakglass-ca mint -n breakglass --reason 'INC-1234 bastion down' id_ed25519.pub
  # writes id_ed25519-cert.pub; the requester saves it beside their private key, as
  # ~/.ssh/id_ed25519-cert.pub, and logs in with:
  #   ssh -i ~/.ssh/id_ed25519 breakglass@HOST
  breakglass-ca mint -n breakglass --reason 'INC-1234 bastion down' alice.pub bob.pub
  # several requesters at once: one PIN, one certificate each (alice-cert.pub, bob-cert.pub);
  # mint's last lines give each requester's ssh command

The PIN is read from --pin-file, BREAKGLASS_CA_PIN_FILE, or typed at a prompt; never from argv.";

#[derive(Debug, Parser)]
#[command(name = "breakglass-ca", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// Accepted before the command too, as 0.1-0.3 scripts give it (hidden: the commands that
    /// open the token show it).
    #[arg(long, hide = true, value_name = "URI")]
    pub ca: Option<String>,

    /// Configuration and issuance ledger. Default: $XDG_STATE_HOME/breakglass-ca, else
    /// ~/.local/state/breakglass-ca. Only 'audit' takes it more than once (one per CA).
    #[arg(
        long,
        global = true,
        env = "BREAKGLASS_CA_STATE_DIR",
        hide_env_values = true,
        value_name = "DIR",
        action = clap::ArgAction::Append,
        display_order = 900
    )]
    pub state_dir: Vec<PathBuf>,

    /// Accepted before the command too, as 0.1-0.3 scripts give it (hidden: the commands that
    /// use the PIN show it).
    #[arg(long, hide = true, value_name = "PATH")]
    pub pin_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

impl Command {
    /// The `--ca` and `--pin-file` given after the command (or from their environment
    /// variables), on the commands that take them.
    pub fn token_options(&mut self) -> (Option<String>, Option<PathBuf>) {
        let (ca, pin) = match self {
            Command::Init(a) => (&mut a.token, Some(&mut a.pin)),
            Command::Mint(a) => (&mut a.token, Some(&mut a.pin)),
            Command::Pubkey(a) => (&mut a.token, None),
            Command::HostConfig(a) => (&mut a.token, None),
            Command::Status(a) => (&mut a.token, None),
            Command::Attest(a) => (&mut a.token, None),
            Command::Doctor(a) => (&mut a.token, Some(&mut a.pin)),
            _ => return (None, None),
        };
        (ca.ca.take(), pin.and_then(|p| p.pin_file.take()))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the CA key on the token (once, before any emergency) and write config.toml.
    Init(InitArgs),
    /// Print the CA public key for TrustedUserCAKeys (no PIN; ca.pub when the token is out).
    ///
    /// No PIN is needed. With the token plugged in, its key is checked against config.toml
    /// and the state directory's ca.pub; without it, ca.pub is used, checked against
    /// config.toml. stderr says which.
    Pubkey(PubkeyArgs),
    /// Sign a short-lived user certificate for a requester's public key.
    Mint(MintArgs),
    /// Show a certificate like `ssh-keygen -L` and check its signature, its CA and validity.
    Inspect(InspectArgs),
    /// Show the token, the CA key, the PIN state, the clock, the ledger (last serial, what the
    /// token's signatures cover, the chain), the backup CAs and the KRL version. No PIN.
    Status(StatusArgs),
    /// The issuance ledger: list it, show one record, verify it, export it for an auditor.
    Log(LogArgs),
    /// Print the token's attestation that the CA key was generated on it (YubiKey), as PEM.
    Attest(AttestArgs),
    /// Trust a second CA (a backup token in another vault) alongside this one: its line goes
    /// into the bundle, the sheet and the host configuration.
    AddBackupCa(AddBackupCaArgs),
    /// Write what a host image needs: an sshd_config.d snippet, the CA bundle (without the
    /// CAs the ledger revokes), principals files, the KRL (RevokedKeys) from the ledger,
    /// install.sh and a cloud-init fragment. No PIN needed.
    ///
    /// Without the token plugged in, the CA key comes from the state directory's ca.pub,
    /// checked against config.toml (stderr says which). With --ca-pubkey FILE, from that file
    /// alone: no state directory, no token.
    HostConfig(HostConfigArgs),
    /// Revoke certificates (by serial, key ID or requester key) or a whole CA: a record in
    /// the ledger. No token and no PIN needed.
    Revoke(RevokeArgs),
    /// Write the OpenSSH KRL (revocation list) from the ledger's revocations for hosts'
    /// RevokedKeys, or check whether a certificate is revoked. No token, no PIN.
    Krl(KrlArgs),
    /// Check sshd logs against the ledgers: every certificate login, offer and refusal, and
    /// an ALARM (exit 1) for what no ledger accounts for. No token, no PIN.
    Audit(AuditArgs),
    /// Write a request for dual control: what the certificate will say, for the requester to
    /// sign (proof of possession) and the approvers to approve. No token, no PIN.
    Request(RequestArgs),
    /// Check everything before an emergency (and at its start): the clock, the token and its
    /// key, the PIN tries, the ledger, the backup copy, file modes. Exit 1 if anything is
    /// serious. No PIN.
    Doctor(DoctorArgs),
    /// Print the completion script for a shell (the Debian package installs all three).
    Completions(CompletionsArgs),
    /// Print the manual page (roff), generated from these definitions:
    /// 'breakglass-ca man | man -l -'. The Debian package installs it as breakglass-ca(1).
    #[command(hide = true)]
    Man,
    /// Read the CA key lines back from a scan, photo or screenshot of their QR codes (the key
    /// sheet, or 'pubkey --format png'): the lines on stdout, their fingerprints on stderr.
    /// For the image builder: no state directory, no token.
    ImportQr(ImportQrArgs),
}

/// `--ca`, on the commands that open the CA key.
#[derive(Debug, Default, Args)]
pub struct CaArg {
    /// Where the CA key lives: pkcs11:token=LABEL;object=LABEL?module-path=/path/module.so
    /// or yubikey:slot-id=9c. Default: the `ca` line of config.toml.
    #[arg(
        long,
        env = "BREAKGLASS_CA",
        hide_env_values = true,
        value_name = "URI"
    )]
    pub ca: Option<String>,
}

/// `--pin-file`, on the commands that log in to the token.
#[derive(Debug, Default, Args)]
pub struct PinFileArg {
    /// Read the token PIN from the first line of this file (instead of a prompt).
    #[arg(
        long,
        env = "BREAKGLASS_CA_PIN_FILE",
        hide_env_values = true,
        value_name = "PATH"
    )]
    pub pin_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub token: CaArg,

    /// One JSON object (ASCII, format 1; docs/ledger.md section 5.5) instead of the lines.
    #[arg(long)]
    pub json: bool,
}

const DOCTOR_AFTER_HELP: &str = "\
Run it in the yearly dry run and at the start of an emergency, with the token plugged in:
  breakglass-ca doctor
  breakglass-ca doctor --json

Each finding is 'ok', 'WARNING' or 'SERIOUS', with the next step below it. It checks: the state
directory's files (nobody else can change them), config.toml, the token and its key against
config.toml and ca.pub, the PIN tries (1 left or blocked is serious), a YubiKey's firmware and
PIN and touch policies, the PIN file (--pin-file) if one is given, the laptop clock against the
newest ledger record (behind it is serious), the ledger chain, and the copy of the state
directory at config.toml's backup_dir (it must hold the newest record). It needs no PIN and
changes nothing. Exit 0: nothing serious; 1: something is.";

#[derive(Debug, Args)]
#[command(after_help = DOCTOR_AFTER_HELP)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub token: CaArg,

    #[command(flatten)]
    pub pin: PinFileArg,

    /// One JSON object (ASCII): the findings with their level, check, what and next step.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    #[command(flatten)]
    pub token: CaArg,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LogArgs {
    /// One JSON object per record instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Print every requester key the ledger revokes, one OpenSSH public key line each (its
    /// fingerprint as comment), to carry them over to the backup CA's state directory with
    /// 'revoke --requester-key FILE' (docs/runbook.md, section 3.2). Nothing for none.
    #[arg(long, conflicts_with = "json")]
    pub revoked_keys: bool,

    #[command(subcommand)]
    pub action: Option<LogAction>,
}

#[derive(Debug, Subcommand)]
pub enum LogAction {
    /// Print one record in full, with its certificate (and whether it was revoked); or a
    /// revocation record (R1, R2... in 'log') with --revocation K.
    Show {
        /// The serial number (as sshd logs it: "serial N").
        #[arg(required_unless_present = "revocation")]
        serial: Option<u64>,

        /// Show the K-th revocation record instead (R1 is 1).
        #[arg(long, value_name = "K", conflicts_with = "serial")]
        revocation: Option<u64>,
    },
    /// Check the hash chain, every stored certificate and its ledger binding (and the
    /// checkpoints of records written by 0.1.0). Exit 1 naming the first broken record.
    Verify {
        /// Verify an exported bundle (a directory written by 'log export') instead of the
        /// state directory. Needs no token and no configuration.
        #[arg(long, value_name = "DIR")]
        bundle: Option<PathBuf>,

        /// Verify with this copy of the CA public key (one OpenSSH line, e.g. from the key
        /// sheet or a host's TrustedUserCAKeys), instead of ca.pub (the state directory's or
        /// the bundle's) or the token.
        #[arg(long, value_name = "FILE")]
        ca_pubkey: Option<PathBuf>,
    },
    /// Write a bundle an auditor can verify on another machine without the token: the ledger,
    /// its checkpoints if any (0.1.0), the CA public key and instructions.
    Export {
        /// The directory to create.
        #[arg(short = 'o', long, value_name = "DIR")]
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub token: CaArg,

    #[command(flatten)]
    pub pin: PinFileArg,

    /// Key algorithm: ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-3072 or rsa-4096 on a
    /// PKCS#11 token; ecdsa-p256, ecdsa-p384 or rsa-2048 on a YubiKey.
    #[arg(long, default_value = "ecdsa-p256", value_name = "ALG")]
    pub algorithm: String,

    /// Replace an existing CA key with the same label (or in the same PIV slot). Every host
    /// trusting the old key must then be given the new one.
    #[arg(long)]
    pub force: bool,

    /// YubiKey only: when the PIN is needed to sign.
    #[arg(long, value_enum, default_value = "always", value_name = "POLICY")]
    pub pin_policy: PinPolicyArg,

    /// YubiKey only: when a touch is needed to sign. "always": the key is in a vault, and
    /// physical presence is the point.
    #[arg(long, value_enum, default_value = "always", value_name = "POLICY")]
    pub touch_policy: TouchPolicyArg,

    /// YubiKey only: the management key, as 48 hex digits in this file. Without it: the
    /// PIN-protected key stored on the card if there is one, else a prompt. Never the
    /// factory default.
    #[arg(long, value_name = "PATH")]
    pub management_key_file: Option<PathBuf>,

    /// YubiKey only: if the card still has the factory management key, replace it with a
    /// random one stored on the card behind the PIN.
    #[arg(long)]
    pub protect_management_key: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PinPolicyArg {
    Never,
    Once,
    Always,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TouchPolicyArg {
    Never,
    Always,
    Cached,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PubkeyFormat {
    /// The line for TrustedUserCAKeys.
    Openssh,
    /// The SHA256 fingerprint, as `ssh-keygen -l` shows it.
    Fingerprint,
    /// Line, fingerprint, algorithm and URI as JSON.
    Json,
    /// A QR code of the line in text: black on white on a terminal; plain half blocks (dark
    /// on light, no colours) into a file or a pipe.
    Qr,
    /// A QR code of the line as a PNG image (needs -o).
    Png,
    /// A QR code of the line as an SVG image.
    Svg,
    /// A printable A4 page (SVG): QR, fingerprint, key line and instructions for the vault binder.
    Sheet,
}

#[derive(Debug, Args)]
pub struct PubkeyArgs {
    #[command(flatten)]
    pub token: CaArg,

    #[arg(long, value_enum, default_value = "openssh", value_name = "F")]
    pub format: PubkeyFormat,

    /// Every CA line: this CA first, then the backup CAs from config.toml (for one
    /// TrustedUserCAKeys file). A CA the ledger revokes is left out, named in a '#' line.
    #[arg(long)]
    pub bundle: bool,

    /// Write to this file instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

const IMPORT_QR_AFTER_HELP: &str = "\
Examples:
  breakglass-ca import-qr sheet-scan.png
  breakglass-ca import-qr --expect-fingerprint \"$FP\" sheet-photo.jpg > ca.pub
  # FP: the primary CA's fingerprint as a second person reads it from the printed sheet

The key lines go to stdout, one per line, in the sheet's order (the primary CA first, then
the backup CAs); each key's fingerprint, also in blocks of four, goes to stderr. Before using
the lines, read each fingerprint aloud against the printed sheet with a second person, or
give it with --expect-fingerprint (once per CA to take): then only the keys whose fingerprint
was given are printed, and nothing is printed (exit 1) if one of them is not in the picture.
Pictures: PNG or JPEG, at most 50 MiB and 50 megapixels (docs/hosts.md, section 2.5).";

#[derive(Debug, Args)]
#[command(after_help = IMPORT_QR_AFTER_HELP)]
pub struct ImportQrArgs {
    /// The pictures: PNG or JPEG files (- for stdin), e.g. a scan of the key sheet.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,

    /// A CA fingerprint as read from the sheet: SHA256:... or its blocks of four (spaces,
    /// case and the SHA256: prefix do not matter). Repeat it for each CA to take; only the
    /// keys given are printed, and a fingerprint not found refuses everything.
    #[arg(long = "expect-fingerprint", value_name = "FP")]
    pub expect_fingerprints: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AddBackupCaArgs {
    /// The backup CA's public key file (its 'breakglass-ca pubkey' output).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Name the backup's token on the key sheet: e.g. --label 'YubiKey 5 NFC serial 23456789'.
    /// It becomes the comment of the backup's line, which every host's CA file holds too: name
    /// the token, not where it is kept. Letters, digits, spaces and . _ - @ : + = , / only, at
    /// most 64 characters. For a backup CA already listed, it replaces the label. Without it
    /// the sheet has a field to write them in by hand.
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
}

const HOST_CONFIG_AFTER_HELP: &str = "\
Examples:
  breakglass-ca host-config --user breakglass --out host-bundle
  breakglass-ca host-config --user breakglass --alert-command /usr/local/sbin/page --out host-bundle
  breakglass-ca host-config --user breakglass --no-alert-syslog --out host-bundle
  breakglass-ca host-config --user breakglass --ca-pubkey ca.pub --ca-pubkey backup.pub --out image
  breakglass-ca host-config --user breakglass --ca-pubkey ca.pub --krl ca.krl --out image

Without the custodian's state directory and token (an image builder, a CI job): --ca-pubkey
FILE gives this CA's public key line (the key sheet's, checked against its fingerprint), again
for each backup CA, and --krl FILE the custodian's current KRL (without it the KRL revokes
nothing). The files are the same as the custodian's host-config writes for the same keys, KRL
and options (docs/hosts.md, section 1.1).

The alarm (on by default): sshd runs <ssh-dir>/breakglass-ca-alert each time it checks a
certificate for these accounts (when it is offered, and again when it is used: the alarm
fires once per connection and certificate, for failed attempts too). The hook prints the
principals and lets sshd go on at once; in the background it logs to syslog (auth.alert, tag
breakglass-ca) and runs the alert command as user nobody, killed after --alert-timeout, with
BREAKGLASS_USER, BREAKGLASS_SERIAL, BREAKGLASS_KEY_ID, BREAKGLASS_CLIENT_ADDR,
BREAKGLASS_CA_FINGERPRINT, BREAKGLASS_MESSAGE and more (docs/hosts.md, section 5.2). A
failing, hanging or missing command never delays or stops the login; its failure is logged
to syslog. --no-alert-syslog without --alert-command: no hook, AuthorizedPrincipalsFile as
before.";

#[derive(Debug, Args)]
#[command(after_help = HOST_CONFIG_AFTER_HELP)]
pub struct HostConfigArgs {
    #[command(flatten)]
    pub token: CaArg,

    /// Account that emergency certificates may log in as; repeat for several (e.g. breakglass
    /// and root). Each gets its own Match block.
    #[arg(long = "user", value_name = "NAME", required = true)]
    pub users: Vec<String>,

    /// Principal a certificate must carry to log in as these users; repeatable. Default: the
    /// user's own name.
    #[arg(long = "principal", value_name = "P")]
    pub principals: Vec<String>,

    /// Where the files will live on the host; the paths inside the snippet use it.
    #[arg(long, default_value = "/etc/ssh", value_name = "DIR")]
    pub ssh_dir: PathBuf,

    /// Where to write the bundle now (it must not exist yet).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Run this program on the host at every use of an emergency certificate, as user nobody,
    /// with the details in BREAKGLASS_* variables: an absolute path, no arguments (wrap them
    /// in a script). Its failures are logged to syslog and never stop the login.
    #[arg(long, value_name = "CMD")]
    pub alert_command: Option<PathBuf>,

    /// The alert command's hard time limit; it is killed then. Default 10s, at most 5m.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub alert_timeout: Option<Duration>,

    /// Log every use of an emergency certificate to syslog (auth.alert, tag breakglass-ca).
    /// On by default.
    #[arg(long, overrides_with = "no_alert_syslog")]
    pub alert_syslog: bool,

    /// Do not log the uses to syslog (the alert command's failures still are).
    #[arg(long, overrides_with = "alert_syslog")]
    pub no_alert_syslog: bool,

    /// Take the CA key from this public key file instead (the key sheet's line, or the
    /// custodian's 'breakglass-ca pubkey' output): no state directory, no token. Repeat it
    /// for the backup CAs, this CA first; '-' reads stdin (once). Not with --ca or --state-dir.
    #[arg(long = "ca-pubkey", value_name = "FILE")]
    pub ca_pubkey: Vec<PathBuf>,

    /// With --ca-pubkey: the KRL to install, as the custodian gave it ('breakglass-ca krl -o',
    /// or the breakglass-ca.krl of their host-config) instead of an empty one. It must be a
    /// KRL of these CA keys.
    #[arg(long, value_name = "FILE")]
    pub krl: Option<PathBuf>,
}

fn duration(s: &str) -> Result<Duration, String> {
    s.parse::<Duration>().map_err(|e| e.to_string())
}

fn rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "'{}' is not an RFC 3339 time such as 2026-01-31T03:00:00Z ({e})",
                crate::text::Esc(s)
            )
        })
}

const MINT_AFTER_HELP: &str = "\
Examples:
  breakglass-ca mint -n breakglass --reason 'INC-1234 bastion down' alice.pub
  breakglass-ca mint -n breakglass --reason 'INC-1234 bastion down' alice.pub bob.pub carol.pub

The certificate for KEY.pub is KEY-cert.pub beside it. ssh finds a certificate by itself when
it lies beside the private key KEY as KEY-cert.pub: ssh -i KEY USER@HOST. mint's last lines
give the command for the files as they are (with -o CertificateFile=... for another name).

With several keys: one PIN and one login, one certificate per key in the order given
(consecutive serials, written to alice-cert.pub, bob-cert.pub, carol-cert.pub), all of them
signed and recorded in the ledger before any is written. A key that would be refused refuses
the whole batch before the PIN is asked.";

#[derive(Debug, Args)]
#[command(after_help = MINT_AFTER_HELP)]
pub struct MintArgs {
    #[command(flatten)]
    pub token: CaArg,

    #[command(flatten)]
    pub pin: PinFileArg,

    /// Account(s) the certificate may log in as; repeat or separate with commas. Required.
    #[arg(short = 'n', long = "principal", value_name = "PRINCIPAL")]
    pub principals: Vec<String>,

    /// Why this emergency access exists (ticket, incident). Recorded in the ledger and,
    /// shortened, in the key ID. With --request: the request's (give it only to check).
    #[arg(
        long,
        value_name = "TEXT",
        required_unless_present = "request",
        default_value = "",
        hide_default_value = true
    )]
    pub reason: String,

    /// Key ID logged by sshd. Default: REQUESTER#SERIAL:REASON.
    #[arg(short = 'I', long, value_name = "ID")]
    pub key_id: Option<String>,

    /// Name of the requester for the key ID and ledger. Default: the public key's comment.
    #[arg(long, value_name = "NAME")]
    pub requester: Option<String>,

    /// How long the certificate is valid: 90s, 15m, 1h. Default 15m, at most the policy's
    /// max_validity (1h unless config.toml says otherwise).
    #[arg(short = 'V', long, value_name = "DURATION", value_parser = duration)]
    pub validity: Option<Duration>,

    /// Start this long before now, against host clock skew. Default 5m.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub backdate: Option<Duration>,

    /// Start at this absolute time (RFC 3339) instead of now minus backdate: for a laptop
    /// whose clock is known to be wrong. A window that has already ended, or that starts more
    /// than the policy's max_start_ahead (1h) after the later of this laptop's clock and the
    /// newest ledger record, is refused unless --force-window.
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    pub not_before: Option<DateTime<Utc>>,

    /// Issue a --not-before window that has already ended or starts beyond max_start_ahead
    /// (the screen and the summary say so). Only for a laptop whose clock is known to be
    /// wrong; --force does not do this.
    #[arg(long)]
    pub force_window: bool,

    /// Certificate option, as ssh-keygen -O; repeatable, applied in order. Critical options
    /// (each at most once): force-command=CMD, source-address=ADDR[/BITS][,ADDR[/BITS]],
    /// verify-required (security keys only). Extensions: permit-pty (the default),
    /// permit-port-forwarding, permit-agent-forwarding, permit-X11-forwarding, permit-user-rc,
    /// their no-… forms, clear (drops them all), no-touch-required (security keys only).
    /// Others: extension:NAME[=VALUE] and critical:NAME[=VALUE] (printable ASCII name; sshd
    /// refuses certificates with a critical option it does not know).
    #[arg(short = 'O', value_name = "OPTION")]
    pub options: Vec<String>,

    /// Where to write the certificate ('-' for stdout); only with one PUBKEY. Default:
    /// KEY-cert.pub beside each KEY.pub, or stdout for a key that came from stdin.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print the ledger record as JSON on stdout (with several keys: one record per line).
    #[arg(long)]
    pub json: bool,

    /// Go ahead even though the token has only one PIN try left (and nothing else: an odd
    /// validity window needs --force-window).
    #[arg(long)]
    pub force: bool,

    /// A signed request ('breakglass-ca request'): mint exactly what it says, after checking
    /// the requester's signature (proof of possession), its age and the approvals, before
    /// the PIN. -n, -V, -O, --reason, --requester and PUBKEY may then be left out; given, they
    /// must say what the request says. '-' for stdin.
    #[arg(long, value_name = "FILE", requires = "request_sig")]
    pub request: Option<PathBuf>,

    /// The requester's signature over the request (ssh-keygen -Y sign -n
    /// breakglass-ca-request), or '-' to paste it (read up to its END line).
    #[arg(long, value_name = "FILE", requires = "request")]
    pub request_sig: Option<PathBuf>,

    /// An approver's signature over the request (ssh-keygen -Y sign -n
    /// breakglass-ca-approval); repeat once per approver; '-' to paste one.
    #[arg(long = "approval", value_name = "FILE", requires = "request")]
    pub approvals: Vec<PathBuf>,

    /// The requester's public key file (e.g. id_ed25519.pub), or '-' for stdin. Several: one
    /// certificate each, with the same principals, reason, window and options ('-' at most
    /// once, each key once). With --request: optional, and it must be the request's key.
    #[arg(value_name = "PUBKEY", required_unless_present = "request")]
    pub pubkeys: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The certificate file (e.g. id_ed25519-cert.pub), or '-' for stdin.
    #[arg(value_name = "CERT")]
    pub cert: PathBuf,

    /// Check the certificate was signed by a CA public key in this file. Default: this state
    /// directory's CA (its ca.pub) and the backup CAs of its config.toml.
    #[arg(long, value_name = "FILE")]
    pub ca_pubkey: Option<PathBuf>,
}

const REVOKE_AFTER_HELP: &str = "\
Examples:
  breakglass-ca revoke --serial 7 --reason 'INC-1234 certificate sent to the wrong person'
  breakglass-ca revoke --serial 7-9 --serial 12 --reason 'INC-1234 leaked'
  breakglass-ca revoke --key-id 'alice#7:INC-1234' --reason 'INC-1234 leaked'
  breakglass-ca revoke --requester-key alice.pub --reason 'INC-1235 laptop stolen'
  breakglass-ca revoke --ca --reason 'INC-1236 token lost'
  breakglass-ca revoke --ca backup-ca.pub --reason 'INC-1237 backup token lost'
  breakglass-ca revoke --requester-key carried-keys.pub --reason 'INC-1238 carried over'

Options can repeat and be combined: one command writes one revocation record. Then write
the KRL and put it on every host: breakglass-ca krl -o breakglass-ca.krl (docs/runbook.md,
\"Revoke a certificate\"). A --requester-key FILE may hold several key lines, e.g. what
'breakglass-ca log --revoked-keys' prints in the lost CA's state directory after a lost
token (docs/runbook.md, section 3.2).";

#[derive(Debug, Args)]
#[command(after_help = REVOKE_AFTER_HELP)]
pub struct RevokeArgs {
    /// Revoke this serial, or the range N-M (as 'breakglass-ca log' and sshd's "serial N"
    /// show them); repeatable, or separated by commas.
    #[arg(long = "serial", value_name = "N[-M]", value_parser = serial_range, value_delimiter = ',')]
    pub serials: Vec<(u64, u64)>,

    /// Revoke every certificate of this CA with this key ID (sshd logs it as ID "…");
    /// repeatable.
    #[arg(long = "key-id", value_name = "ID")]
    pub key_ids: Vec<String>,

    /// Revoke every certificate for the public key in this file, from any CA (also a key no
    /// certificate of this CA was issued for: revoked ahead); a file of several key lines
    /// (blank lines and # comments skipped, as 'log --revoked-keys' writes it) revokes each;
    /// repeatable.
    #[arg(long = "requester-key", value_name = "FILE")]
    pub requester_keys: Vec<PathBuf>,

    /// Revoke a whole CA: this one when no FILE is given, or the CA whose public key is in
    /// FILE (a backup CA of config.toml, or a retired CA of this state directory).
    #[arg(
        long = "ca",
        value_name = "FILE",
        num_args = 0..=1,
        default_missing_value = THIS_CA,
        value_parser = clap::builder::TypedValueParser::try_map(clap::builder::OsStringValueParser::new(), ca_target)
    )]
    pub cas: Vec<CaTarget>,

    /// Why (ticket, incident). Recorded in the ledger.
    #[arg(long, value_name = "TEXT", required = true)]
    pub reason: String,

    /// Skip what is already revoked (the earlier record stands) and record the rest.
    #[arg(long)]
    pub force: bool,
}

/// `N` or `N-M` (digits only, N <= M).
/// What one `revoke --ca` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaTarget {
    /// `--ca` without FILE: this state directory's CA.
    ThisCa,
    /// `--ca FILE`: the CA public key in FILE.
    File(PathBuf),
}

/// The value of `--ca` given without FILE: a text no command line can hold (an argument
/// cannot contain NUL), so an empty FILE (`--ca "$UNSET"`) is never taken for this CA.
const THIS_CA: &str = "\0this CA";

fn ca_target(s: std::ffi::OsString) -> Result<CaTarget, String> {
    if s == THIS_CA {
        return Ok(CaTarget::ThisCa);
    }
    if s.is_empty() {
        return Err("the file name is empty (an unset variable?); to revoke this state directory's own CA, give --ca with no value at all".into());
    }
    Ok(CaTarget::File(PathBuf::from(s)))
}

fn serial_range(s: &str) -> Result<(u64, u64), String> {
    let number = |t: &str| {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "'{}' is not a serial or a range such as 7 or 7-9",
                crate::text::Esc(s)
            ));
        }
        t.parse::<u64>()
            .map_err(|_| format!("'{}' is too large for a serial", crate::text::Esc(s)))
    };
    let (lo, hi) = match s.trim().split_once('-') {
        Some((lo, hi)) => (number(lo)?, number(hi)?),
        None => {
            let n = number(s.trim())?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(format!(
            "the range {lo}-{hi} is empty: write the lower serial first"
        ));
    }
    Ok((lo, hi))
}

const KRL_AFTER_HELP: &str = "\
A KRL (OpenSSH key revocation list) tells sshd which certificates and keys to refuse
(RevokedKeys in sshd_config, which host-config sets up). It is built from the revocations
recorded in the ledger ('breakglass-ca revoke'), for this state directory's CA (its ca.pub).
No token and no PIN are needed: it works with the token lost or locked.

Examples:
  breakglass-ca krl -o breakglass-ca.krl
  ssh-keygen -Q -l -f breakglass-ca.krl
  breakglass-ca krl --check alice-cert.pub
  breakglass-ca krl --check alice-cert.pub -f breakglass-ca.krl

Then copy breakglass-ca.krl to every host and install it there, as root, with the install.sh
of the 'host-config' bundle: sh install.sh --krl breakglass-ca.krl

--check prints 'CERT: ok' and exits 0 if the certificate is not revoked, or 'CERT: REVOKED'
and the reason, exit 1, like 'ssh-keygen -Q -f KRL CERT'. An unreadable certificate or KRL
also exits 1, with an error.";

#[derive(Debug, Args)]
#[command(after_help = KRL_AFTER_HELP)]
pub struct KrlArgs {
    /// Write the KRL to this file (it is binary; '-' writes it to stdout, into a pipe only).
    #[arg(
        short = 'o',
        long,
        value_name = "FILE",
        required_unless_present = "check",
        conflicts_with = "check"
    )]
    pub output: Option<PathBuf>,

    /// Say whether this certificate is revoked, and by which part of the KRL ('-' for stdin).
    #[arg(long, value_name = "CERT")]
    pub check: Option<PathBuf>,

    /// With --check: the KRL file to check against (e.g. a copy of a host's KRL). Default:
    /// the KRL the ledger gives now.
    #[arg(short = 'f', long = "krl", value_name = "KRL", requires = "check")]
    pub krl: Option<PathBuf>,
}

const AUDIT_AFTER_HELP: &str = "\
Get the logs of each host (or of the central log host) onto the custodian laptop, e.g.:
  journalctl -u ssh -u sshd -o json --since -2d > web-1.json     # on web-1
  cp /var/log/auth.log web-2-auth.log                             # on web-2
Then, on the laptop (no token, no PIN; nothing is written):
  breakglass-ca audit web-1.json web-2-auth.log
  breakglass-ca audit --since 24h web-1.json
  breakglass-ca --state-dir ~/ca-primary --state-dir ~/ca-backup audit web-1.json
  breakglass-ca audit --host web-3 web-3-sshd-E.log
  breakglass-ca audit --json web-1.json > web-1-events.jsonl
  zcat web-2-auth.log.2.gz | breakglass-ca audit -

It reads auth.log/secure (classic or RFC 3339 times), journalctl's output (default,
-o short-iso, -o json) and 'sshd -E FILE' logs, and checks every certificate sshd logged
against the ledgers of our CAs: the state directory's CA, its retired CAs and its backup CAs
(give each backup CA's state directory with another --state-dir). Give the logs of a host in
time order. Alarms are listed first. Exit 0: no alarm; 1: ALARM (or an error); 2: usage.

ALARM: a serial or key ID of our CA that no ledger holds (the token was used outside
breakglass-ca, or a ledger was cut); a login outside its certificate's window (a host clock);
as a user its principals do not list; a revoked certificate accepted after its revocation;
serial 0; a backup CA whose ledger was not given. Other CAs' certificates are only counted.
sshd logs the serial of a refusal only at LogLevel VERBOSE. See docs/hosts.md, section 5.";

/// `--since`: an RFC 3339 time, or a duration back from now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    At(DateTime<Utc>),
    Ago(Duration),
}

fn since(s: &str) -> Result<Since, String> {
    if let Ok(d) = s.parse::<Duration>() {
        return Ok(Since::Ago(d));
    }
    rfc3339(s).map(Since::At).map_err(|_| {
        format!(
            "'{}' is neither a duration back from now (90m, 24h) nor an RFC 3339 time (2026-12-01T10:00:00Z)",
            crate::text::Esc(s)
        )
    })
}

#[derive(Debug, Args)]
#[command(after_help = AUDIT_AFTER_HELP)]
pub struct AuditArgs {
    /// One JSON object per certificate event (ASCII), in log order, for a SIEM; the summary
    /// still goes to stderr.
    #[arg(long)]
    pub json: bool,

    /// Only events at or after TIME: RFC 3339 (2026-12-01T10:00:00Z) or a duration back from
    /// now (90m, 24h). Lines without a time (sshd -E) are always kept.
    #[arg(long, value_name = "TIME", value_parser = since)]
    pub since: Option<Since>,

    /// The host of lines that name none (sshd -E output). Once: for every LOG; or once per
    /// LOG, in the same order.
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,

    /// Also show (escaped) the lines that look like sshd certificate lines but could not be
    /// read, and notes on each event.
    #[arg(short, long)]
    pub verbose: bool,

    /// Log files to read, in time order ('-' for stdin).
    #[arg(value_name = "LOG", required = true)]
    pub logs: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RequestFormat {
    /// Write the request file and print what to sign it with.
    Text,
    /// The same, and the request as a QR code on this terminal (for a phone).
    Qr,
}

const REQUEST_AFTER_HELP: &str = "\
Examples:
  breakglass-ca request -n breakglass --reason 'INC-1234 bastion down' -o alice.req alice.pub
  breakglass-ca request -n breakglass -V 30m --reason 'INC-1234 db' -o alice.req alice.pub
  breakglass-ca request -n breakglass --reason 'INC-1234' --format qr -o alice.req alice.pub

Then, with stock OpenSSH (docs/runbook.md, \"Two-person rule\"):
  # the requester signs it with the key in it (this writes alice.req.sig):
  ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n breakglass-ca-request alice.req
  # each approver reads it and signs it with their own key:
  ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n breakglass-ca-approval < alice.req > bob.sig
  # the custodian mints exactly what it says (the approvals checked before the PIN):
  breakglass-ca mint --request alice.req --request-sig alice.req.sig \\
      --approval bob.sig --approval carol.sig

The request file must reach the signers and the custodian byte for byte (LF line ends): an
edited request is a new request. It is good for one certificate, for max_request_age (1h
unless config.toml says otherwise) from its creation.";

#[derive(Debug, Args)]
#[command(after_help = REQUEST_AFTER_HELP)]
pub struct RequestArgs {
    /// Account(s) the certificate may log in as; repeat or separate with commas. Required.
    #[arg(
        short = 'n',
        long = "principal",
        value_name = "PRINCIPAL",
        required = true
    )]
    pub principals: Vec<String>,

    /// Why this emergency access is needed (ticket, incident). The approvers read it.
    #[arg(long, value_name = "TEXT", required = true)]
    pub reason: String,

    /// How long the certificate will be valid: 90s, 15m, 1h. Default: the policy's
    /// default_validity (15m).
    #[arg(short = 'V', long, value_name = "DURATION", value_parser = duration)]
    pub validity: Option<Duration>,

    /// Certificate option, as ssh-keygen -O (see 'mint --help'); repeatable.
    #[arg(short = 'O', value_name = "OPTION")]
    pub options: Vec<String>,

    /// Name of the requester. Default: the public key's comment.
    #[arg(long, value_name = "NAME")]
    pub requester: Option<String>,

    /// Where to write the request ('-' for stdout).
    #[arg(short = 'o', long, value_name = "FILE", required = true)]
    pub output: PathBuf,

    #[arg(long, value_enum, default_value = "text", value_name = "F")]
    pub format: RequestFormat,

    /// The requester's public key file (e.g. id_ed25519.pub), or '-' for stdin.
    #[arg(value_name = "PUBKEY")]
    pub pubkey: PathBuf,
}

const COMPLETIONS_AFTER_HELP: &str = "\
The Debian package installs all three already. By hand, for one user:
  mkdir -p ~/.local/share/bash-completion/completions
  breakglass-ca completions bash > ~/.local/share/bash-completion/completions/breakglass-ca
  mkdir -p ~/.config/fish/completions
  breakglass-ca completions fish > ~/.config/fish/completions/breakglass-ca.fish
  mkdir -p ~/.zfunc
  breakglass-ca completions zsh > ~/.zfunc/_breakglass-ca
and, for zsh, in ~/.zshrc before compinit: fpath=(~/.zfunc $fpath)";

#[derive(Debug, Args)]
#[command(after_help = COMPLETIONS_AFTER_HELP)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: ShellArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}
