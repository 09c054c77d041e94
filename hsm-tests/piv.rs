//! The YubiKey PIV backend against a software PIV card behind the real PC/SC stack: Debian's
//! pcscd with vsmartcard's vpcd reader driver, and `piv-card/` (Nitrokey's piv-authenticator
//! applet) as the card. pcscd and the cards run inside a private network and mount namespace
//! (vpcd listens on 0.0.0.0; only loopback exists in there, and /run/pcscd is a private
//! directory), are started by PID and killed by PID. The binary under test reaches that pcscd
//! through PCSCLITE_CSOCK_NAME.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::sshd::Sshd;

const FIRST_PORT: u16 = 35963;

fn card_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hsm-tests/piv-card/target/release/piv-card")
}

fn tools() -> bool {
    let card = card_binary();
    require_root("the PIV lab makes network and mount namespaces")
        && require(&[
            "ssh",
            "sshd",
            "pcscd",
            "unshare",
            "nsenter",
            "ip",
            "ssh-keygen",
            "/usr/lib/pcsc/drivers/serial/libifdvpcd.so",
            card.to_str().unwrap(),
        ])
}

/// pcscd and software cards in their own namespaces.
pub struct PivLab {
    pub dir: tempfile::TempDir,
    holder: Child,
    pcscd: Option<Child>,
    cards: Vec<(u16, u32, Child)>,
    pub state: PathBuf,
    pub pin_file: PathBuf,
}

impl PivLab {
    /// A namespace with pcscd and a two-slot vpcd reader, and one card (serial `serial`) in the
    /// first slot.
    pub fn start(serial: u32) -> PivLab {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run-pcscd");
        let conf = dir.path().join("reader.conf.d");
        std::fs::create_dir(&run).unwrap();
        std::fs::create_dir(&conf).unwrap();
        std::fs::create_dir_all("/run/pcscd").unwrap();
        // One vpcd reader entry serves two slots: cards on FIRST_PORT and FIRST_PORT + 1.
        std::fs::write(
            conf.join("vpcd"),
            format!("FRIENDLYNAME \"Yubico YubiKey vpcd\"\nDEVICENAME /dev/null:0x{FIRST_PORT:04X}\nLIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\n"),
        )
        .unwrap();
        // The namespace holder: private network (loopback only) and a private /run/pcscd.
        let holder = Command::new("unshare")
            .args(["-n", "-m", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind {} /run/pcscd && ip link set lo up && exec sleep 3600",
                run.display()
            ))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, "123456\n").unwrap();
        std::fs::set_permissions(
            &pin_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let mut lab = PivLab {
            state: dir.path().join("state"),
            dir,
            holder,
            pcscd: None,
            cards: Vec::new(),
            pin_file,
        };
        lab.wait_namespace();
        let log = std::fs::File::create(lab.dir.path().join("pcscd.log")).unwrap();
        lab.pcscd = Some(
            lab.in_ns(Command::new("pcscd").args(["-f", "-c"]).arg(&conf))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        lab.add_card(FIRST_PORT, serial);
        lab.wait_card(serial);
        lab
    }

    fn in_ns(&self, c: &mut Command) -> Command {
        let mut n = Command::new("nsenter");
        n.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-n", "-m", "--"])
            .arg(c.get_program())
            .args(c.get_args());
        n.stdin(Stdio::null());
        n
    }

    /// Wait (at most 10 s) until the holder has set up the namespace.
    fn wait_namespace(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", self.holder.id()))
                .unwrap_or_default();
            if mounts.contains(" /run/pcscd ") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the namespace for pcscd was not ready within 10 s");
    }

    /// Start a card on a vpcd port, its state kept under the lab directory (by serial).
    pub fn add_card(&mut self, port: u16, serial: u32) {
        let state = self.dir.path().join(format!("card-{serial}"));
        std::fs::create_dir_all(&state).unwrap();
        let log =
            std::fs::File::create(self.dir.path().join(format!("card-{serial}.log"))).unwrap();
        let child = self
            .in_ns(
                Command::new(card_binary())
                    .arg("--port")
                    .arg(port.to_string())
                    .arg("--serial")
                    .arg(serial.to_string())
                    .arg("--state")
                    .arg(&state),
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.cards.push((port, serial, child));
    }

    /// Kill the card with this serial (by PID) and start it again on the same port and state.
    pub fn restart_card(&mut self, serial: u32) {
        let i = self
            .cards
            .iter()
            .position(|(_, s, _)| *s == serial)
            .unwrap();
        let (port, _, mut child) = self.cards.remove(i);
        let _ = child.kill();
        let _ = child.wait();
        self.add_card(port, serial);
        self.wait_card(serial);
    }

    /// The binary, pointed at this lab's pcscd, state dir and PIN file.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_breakglass-ca"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BREAKGLASS_CA") {
                c.env_remove(k);
            }
        }
        c.env(
            "PCSCLITE_CSOCK_NAME",
            self.dir.path().join("run-pcscd/pcscd.comm"),
        )
        .env("BREAKGLASS_CA_STATE_DIR", &self.state)
        .env("BREAKGLASS_CA_PIN_FILE", &self.pin_file)
        .stdin(Stdio::null());
        c
    }

    /// Poll (at most 20 s) until the binary sees a YubiKey with this serial.
    pub fn wait_card(&self, serial: u32) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        while Instant::now() < deadline {
            let out = run(self.cmd().args([
                "--ca",
                &format!("yubikey:slot-id=95;serial={serial}"),
                "pubkey",
            ]));
            last = stderr(&out);
            if last.contains("has no readable certificate in slot") || out.status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "card {serial} not visible within 20 s: {last}\npcscd log: {}\ncard log: {}",
            std::fs::read_to_string(self.dir.path().join("pcscd.log")).unwrap_or_default(),
            std::fs::read_to_string(self.dir.path().join(format!("card-{serial}.log")))
                .unwrap_or_default()
        );
    }

    pub fn init(&self, uri: &str, extra: &[&str]) -> Output {
        run(self.cmd().args(["--ca", uri, "init"]).args(extra))
    }
}

impl Drop for PivLab {
    fn drop(&mut self) {
        for (_, _, c) in &mut self.cards {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(p) = &mut self.pcscd {
            let _ = p.kill();
            let _ = p.wait();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn ca_line(lab: &PivLab) -> PathBuf {
    let path = lab.dir.path().join("ca.pub");
    let out = run(lab.cmd().args(["pubkey", "-o"]).arg(&path));
    assert_ok(&out, "pubkey");
    path
}

fn flow(serial: u32, slot: &str, algorithm: &str) {
    if !tools() {
        return;
    }
    let lab = PivLab::start(serial);
    let uri = format!("yubikey:slot-id={slot}");
    let out = lab.init(
        &uri,
        &[
            "--algorithm",
            algorithm,
            "--protect-management-key",
            "--touch-policy",
            "never",
        ],
    );
    assert_ok(&out, &format!("init {algorithm} in {slot}"));
    assert!(
        stderr(&out).contains("FACTORY management key"),
        "{}",
        stderr(&out)
    );
    let line = stdout(&out).trim().to_string();
    // pubkey needs no PIN
    let mut c = lab.cmd();
    c.env_remove("BREAKGLASS_CA_PIN_FILE").arg("pubkey");
    let out = run(&mut c);
    assert_ok(&out, "pubkey without PIN");
    assert_eq!(stdout(&out).trim(), line);
    let ca = ca_line(&lab);
    let sshd = Sshd::start(&[&ca], &["breakglass"], "");
    for (name, args) in [
        ("ed25519", &["-t", "ed25519"][..]),
        ("ecdsa", &["-t", "ecdsa"][..]),
    ] {
        let key = keygen(lab.dir.path(), name, args, &format!("{name}@piv"));
        let out = run(lab
            .cmd()
            .args(["mint", "-n", "breakglass", "--reason", "INC-9 piv"])
            .arg(&key));
        assert_ok(&out, &format!("mint {name} with {algorithm} in {slot}"));
        let cert = cert_path(&key);
        ssh_keygen_list(&cert);
        assert!(
            sshd.login(&key.with_extension(""), &cert),
            "sshd refused:\n{}",
            sshd.log_text()
        );
    }
    let out = run(lab.cmd().args(["log", "verify"]));
    assert_ok(&out, "log verify");
    let out = run(lab.cmd().arg("status"));
    assert_ok(&out, "status");
    let serial_text = format!("YubiKey serial {serial}");
    for needle in [serial_text.as_str(), "firmware", "PIN:", "3 tries left"] {
        assert!(
            stdout(&out).contains(needle),
            "status lacks {needle}:\n{}",
            stdout(&out)
        );
    }
}

#[test]
fn p256_in_slot_9c() {
    flow(1001, "9c", "ecdsa-p256");
}

#[test]
fn p384_in_slot_9c() {
    flow(1002, "9c", "ecdsa-p384");
}

#[test]
fn p256_in_retired_slot_82() {
    flow(1003, "82", "ecdsa-p256");
}

#[test]
fn p384_in_retired_slot_95() {
    flow(1004, "95", "ecdsa-p384");
}

#[test]
fn pin_tries_and_the_last_try() {
    if !tools() {
        return;
    }
    let lab = PivLab::start(2001);
    assert_ok(
        &lab.init(
            "yubikey:slot-id=9c",
            &["--protect-management-key", "--touch-policy", "never"],
        ),
        "init",
    );
    let key = keygen(lab.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let wrong = lab.dir.path().join("wrong");
    std::fs::write(&wrong, "999999\n").unwrap();
    let mint = |pin: &Path, extra: &[&str]| {
        run(lab
            .cmd()
            .arg("--pin-file")
            .arg(pin)
            .args(["mint", "-n", "breakglass", "--reason", "r", "-o", "-"])
            .args(extra)
            .arg(&key))
    };
    assert_fails(&mint(&wrong, &[]), 1, "wrong PIN: 2 tries left");
    assert_fails(
        &mint(&wrong, &[]),
        1,
        "wrong PIN: 1 try left before the PIN is blocked",
    );
    // One try left: refused before the PIN is even tried, also with the right PIN.
    let out = mint(&lab.pin_file, &[]);
    assert_fails(&out, 1, "the token has 1 PIN try left");
    assert!(stderr(&out).contains("--force"));
    assert_ok(
        &mint(&lab.pin_file, &["--force"]),
        "mint --force with the right PIN",
    );
    let out = run(lab.cmd().arg("status"));
    assert!(
        stdout(&out).contains("3 tries left"),
        "the good PIN resets the counter:\n{}",
        stdout(&out)
    );
}

#[test]
fn two_cards_need_a_serial() {
    if !tools() {
        return;
    }
    let mut lab = PivLab::start(3001);
    lab.add_card(FIRST_PORT + 1, 3002);
    lab.wait_card(3002);
    let out = lab.init("yubikey:slot-id=9c", &["--protect-management-key"]);
    assert_fails(&out, 1, "2 YubiKeys are plugged in, refusing to guess");
    assert!(
        stderr(&out).contains("serial=3001") && stderr(&out).contains("serial=3002"),
        "{}",
        stderr(&out)
    );
    let out = lab.init(
        "yubikey:slot-id=9c;serial=3002",
        &["--protect-management-key", "--touch-policy", "never"],
    );
    assert_ok(&out, "init with serial=");
    let config = std::fs::read_to_string(lab.state.join("config.toml")).unwrap();
    assert!(config.contains("serial=3002"), "{config}");
    let key = keygen(lab.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    assert_ok(
        &run(lab
            .cmd()
            .args(["mint", "-n", "breakglass", "--reason", "r", "-o", "-"])
            .arg(&key)),
        "mint on the configured card",
    );
}

#[test]
fn management_key_sources() {
    if !tools() {
        return;
    }
    let lab = PivLab::start(4001);
    // The factory management key is never used silently.
    let out = lab.init("yubikey:slot-id=9c", &[]);
    assert_fails(&out, 1, "refusing to use the factory management key");
    assert!(stderr(&out).contains("--protect-management-key"));
    // Replaced by a random, PIN-protected one...
    assert_ok(
        &lab.init(
            "yubikey:slot-id=9c",
            &["--protect-management-key", "--touch-policy", "never"],
        ),
        "init --protect-management-key",
    );
    // ...which a later init finds on the card (PIN from a file: the protected key is used).
    // In this state directory init refuses before the card is touched; from a new one it
    // reaches the card and finds the slot taken.
    let out = lab.init("yubikey:slot-id=9c", &["--touch-policy", "never"]);
    assert_fails(&out, 1, "already holds a CA");
    let fresh = lab.dir.path().join("fresh-state");
    let init_fresh = |uri: &str, extra: &[&str]| {
        run(lab
            .cmd()
            .env("BREAKGLASS_CA_STATE_DIR", &fresh)
            .args(["--ca", uri, "init"])
            .args(extra))
    };
    let out = init_fresh("yubikey:slot-id=9c", &["--touch-policy", "never"]);
    assert_fails(&out, 1, "already holds a CA key");
    assert_ok(
        &lab.init(
            "yubikey:slot-id=9c",
            &["--force", "--touch-policy", "never"],
        ),
        "init --force with the protected key",
    );
    // A wrong key from a file is refused.
    let mgm = lab.dir.path().join("mgm");
    std::fs::write(&mgm, "0102030405060708".repeat(3)).unwrap();
    let out = init_fresh(
        "yubikey:slot-id=82",
        &["--management-key-file", mgm.to_str().unwrap()],
    );
    assert_fails(&out, 1, "the management key was not accepted");
    std::fs::write(&mgm, "not hex").unwrap();
    let out = init_fresh(
        "yubikey:slot-id=82",
        &["--management-key-file", mgm.to_str().unwrap()],
    );
    assert_fails(&out, 2, "is not 48 hex digits");
}

#[test]
fn a_card_restart_between_init_and_mint() {
    if !tools() {
        return;
    }
    let mut lab = PivLab::start(5001);
    let out = lab.init(
        "yubikey:slot-id=9c",
        &["--protect-management-key", "--touch-policy", "never"],
    );
    assert_ok(&out, "init");
    let line = stdout(&out).trim().to_string();
    lab.restart_card(5001);
    let out = run(lab.cmd().arg("pubkey"));
    assert_eq!(
        stdout(&out).trim(),
        line,
        "the key did not survive a card restart: {}",
        stderr(&out)
    );
    let key = keygen(lab.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let out = run(lab
        .cmd()
        .args(["mint", "-n", "breakglass", "--reason", "r"])
        .arg(&key));
    assert_ok(&out, "mint after the restart");
    ssh_keygen_list(&cert_path(&key));
}

#[test]
fn attestation_is_refused_clearly_on_the_test_card() {
    if !tools() {
        return;
    }
    let lab = PivLab::start(6001);
    assert_ok(
        &lab.init(
            "yubikey:slot-id=9c",
            &["--protect-management-key", "--touch-policy", "never"],
        ),
        "init",
    );
    assert_fails(
        &run(lab.cmd().arg("attest")),
        1,
        "attestation is not supported by this card",
    );
}

/// What the PIV backend tells the custodian (through the prompter `cmd/` passes in) reaches
/// stderr as whole lines, once each, in the order it happened.
#[test]
fn backend_notes_reach_stderr() {
    if !tools() {
        return;
    }
    let lab = PivLab::start(7001);
    let out = lab.init(
        "yubikey:slot-id=9c",
        &["--protect-management-key", "--touch-policy", "never"],
    );
    assert_ok(&out, "init");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    let at = |wanted: &dyn Fn(&str) -> bool, what: &str| {
        let found: Vec<usize> = (0..lines.len()).filter(|i| wanted(lines[*i])).collect();
        assert_eq!(found.len(), 1, "{what} should be one line of:\n{err}");
        found[0]
    };
    let order = [
        at(
            &|l| l.starts_with("Card: YubiKey serial 7001 (firmware "),
            "the card",
        ),
        at(
            &|l| {
                l == "WARNING: this YubiKey still uses the factory default PIN. Change the PIN and PUK before it goes into the vault (ykman piv access change-pin / change-puk)."
            },
            "the factory PIN",
        ),
        at(
            &|l| {
                l == "WARNING: this YubiKey still has the FACTORY management key: anyone holding it can replace keys without the PIN."
            },
            "the factory management key",
        ),
        at(
            &|l| {
                l == "The management key was replaced by a random one, stored on the card behind the PIN."
            },
            "the new management key",
        ),
        at(
            &|l| l == "Generating the ecdsa-p256 CA key in slot 9c",
            "the key generation",
        ),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "out of order:\n{err}"
    );
    // Replacing the key (from a new state directory) names the old one.
    let config = std::fs::read_to_string(lab.state.join("config.toml")).unwrap();
    let fp = config
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_string();
    let out = run(lab
        .cmd()
        .env("BREAKGLASS_CA_STATE_DIR", lab.dir.path().join("second"))
        .args([
            "--ca",
            "yubikey:slot-id=9c",
            "init",
            "--force",
            "--touch-policy",
            "never",
        ]));
    assert_ok(&out, "init --force");
    let replacing = format!("WARNING: --force: the CA key {fp} in slot 9c will be REPLACED");
    assert_eq!(
        stderr(&out).lines().filter(|l| *l == replacing).count(),
        1,
        "{}",
        stderr(&out)
    );
    // Logging in with the factory PIN warns once.
    let key = keygen(lab.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let out = run(lab
        .cmd()
        .env("BREAKGLASS_CA_STATE_DIR", lab.dir.path().join("second"))
        .args(["mint", "-n", "breakglass", "--reason", "r"])
        .arg(&key));
    assert_ok(&out, "mint");
    let factory = "WARNING: this YubiKey still uses the factory default PIN: change it (ykman piv access change-pin) before it goes back into the vault.";
    assert_eq!(
        stderr(&out).lines().filter(|l| *l == factory).count(),
        1,
        "{}",
        stderr(&out)
    );
}

/// Real hardware, selected by serial: `BREAKGLASS_TEST_YUBIKEY_SERIAL=N cargo test --test hsm
/// -- --ignored real_yubikey`. Destroys slot 82 of that YubiKey; touch it when asked.
#[test]
#[ignore]
fn real_yubikey_touch_and_attestation() {
    let serial = std::env::var("BREAKGLASS_TEST_YUBIKEY_SERIAL").expect(
        "set BREAKGLASS_TEST_YUBIKEY_SERIAL to the serial of a YubiKey whose slot 82 may be wiped",
    );
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("yubikey:slot-id=82;serial={serial}");
    let bin = env!("CARGO_BIN_EXE_breakglass-ca");
    let cmd = || {
        let mut c = Command::new(bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BREAKGLASS_CA") {
                c.env_remove(k);
            }
        }
        c.env("BREAKGLASS_CA_STATE_DIR", dir.path().join("state"));
        c
    };
    // The PIN is typed at the prompt; a factory management key is replaced by a protected one.
    let status = cmd()
        .args([
            "--ca",
            &uri,
            "init",
            "--force",
            "--touch-policy",
            "always",
            "--protect-management-key",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let key = keygen(dir.path(), "k", &["-t", "ed25519"], "hw@test");
    eprintln!("minting: type the PIN, then touch the YubiKey when asked");
    let out = cmd()
        .args(["mint", "-n", "breakglass", "--reason", "hardware test"])
        .arg(&key)
        .stdin(Stdio::inherit())
        .output()
        .unwrap();
    eprintln!("{}", stderr(&out));
    assert_ok(&out, "mint on real hardware");
    assert!(
        stderr(&out).contains("Touch the YubiKey now"),
        "no touch prompt was shown"
    );
    let out = cmd().arg("attest").output().unwrap();
    assert_ok(&out, "attest on real hardware");
    assert_eq!(stdout(&out).matches("BEGIN CERTIFICATE").count(), 2);
}

/// OpenSC's PKCS#11 module, with its PIV driver (`piv_II`).
const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
/// OpenSC's PKCS#11 call logger, in front of the module named by `PKCS11SPY`.
const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so";
/// Yubico's PKCS#11 module (Debian `ykcs11`).
const YKCS11: &str = "/usr/lib/x86_64-linux-gnu/libykcs11.so";

/// `pkcs11-tool --module M ARGS` against the lab's pcscd (the PIN, where given, in argv: a test
/// card's factory PIN).
fn pkcs11_tool(lab: &PivLab, module: &str, args: &[&str]) -> String {
    let out = run(Command::new("pkcs11-tool")
        .env(
            "PCSCLITE_CSOCK_NAME",
            lab.dir.path().join("run-pcscd/pcscd.comm"),
        )
        .args(["--module", module])
        .args(args)
        .stdin(Stdio::null()));
    assert_ok(&out, &format!("pkcs11-tool --module {module} {args:?}"));
    stdout(&out)
}

/// The PKCS#11 calls in a pkcs11-spy log, in order, a login with its user type and a
/// C_SignInit with its mechanism: `C_Login(CKU_USER)`, `C_SignInit(0x00001044)`.
fn spied_calls(log: &str) -> Vec<String> {
    let mut calls: Vec<String> = Vec::new();
    for line in log.lines() {
        let call = line
            .split_once(": ")
            .filter(|(n, c)| n.bytes().all(|b| b.is_ascii_digit()) && c.starts_with("C_"));
        if let Some((_, name)) = call {
            calls.push(name.trim().to_string());
        } else if let Some(user) = line.strip_prefix("[in] userType = ") {
            if let Some(last) = calls.last_mut().filter(|c| *c == "C_Login") {
                *last = format!("C_Login({})", user.trim());
            }
        } else if let Some(mechanism) = line.strip_prefix("[in] pMechanism->type = ") {
            if let Some(last) = calls.last_mut().filter(|c| *c == "C_SignInit") {
                *last = format!("C_SignInit({})", mechanism.trim());
            }
        }
    }
    calls
}

/// The card key made by `init` with the yubikey backend (slot 9c), used through a PKCS#11
/// middleware: `mint` with `--ca pkcs11:…?module-path=MODULE` on the same state directory (the
/// configured CA fingerprint must match). Slot 9c's private key has CKA_ALWAYS_AUTHENTICATE
/// there, so every signature needs C_Login(CKU_CONTEXT_SPECIFIC) between C_SignInit and the
/// signature: without it OpenSC answers CKR_USER_NOT_LOGGED_IN.
fn card_key_through_middleware(
    serial: u32,
    algorithm: &str,
    module: &str,
    uri: &str,
    token_label: &str,
) {
    if !(tools() && require(&["pkcs11-tool", module, SPY])) {
        return;
    }
    let lab = PivLab::start(serial);
    let out = lab.init(
        "yubikey:slot-id=9c",
        &[
            "--algorithm",
            algorithm,
            "--protect-management-key",
            "--touch-policy",
            "never",
        ],
    );
    assert_ok(&out, &format!("init {algorithm} in slot 9c"));
    let line = stdout(&out).trim().to_string();
    let ca = ca_line(&lab);
    // The middleware sees the token and the key, and the private key only after login, with
    // CKA_ALWAYS_AUTHENTICATE.
    let listed = pkcs11_tool(&lab, module, &["-L"]);
    assert!(
        listed.contains(&format!("token label        : {token_label}")),
        "{listed}"
    );
    let objects = pkcs11_tool(&lab, module, &["-O"]);
    assert!(!objects.contains("Private Key Object"), "{objects}");
    let objects = pkcs11_tool(&lab, module, &["-O", "--login", "--pin", "123456"]);
    let private = objects
        .split("Private Key Object")
        .nth(1)
        .unwrap_or_else(|| panic!("no private key after login:\n{objects}"));
    assert!(
        private.contains("ID:         02") && private.contains("always authenticate"),
        "{objects}"
    );
    // The same key, read through the middleware.
    let uri = format!("{uri}?module-path={module}");
    let out = run(lab.cmd().args(["--ca", &uri, "pubkey"]));
    assert_ok(&out, "pubkey through the middleware");
    assert_eq!(stdout(&out).trim(), line);
    let sshd = Sshd::start(&[&ca], &["breakglass"], "");
    let key = keygen(lab.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let out = run(lab
        .cmd()
        .args([
            "--ca",
            &uri,
            "mint",
            "-n",
            "breakglass",
            "--reason",
            "INC-10",
        ])
        .arg(&key));
    assert_ok(&out, &format!("mint through {module}"));
    // Said before the PIN is asked (the private key, hidden until login, is a PIV slot 9c key).
    let err = stderr(&out);
    let pin_use = err
        .lines()
        .position(|l| {
            l == "PIN use:        probably at every signature: a PIV slot 9c key has CKA_ALWAYS_AUTHENTICATE (the token shows it only after login); if so, the PIN is read once and given to the token again right before each signature"
        })
        .unwrap_or_else(|| panic!("no PIN use line:\n{err}"));
    let pin_state = err
        .lines()
        .position(|l| l.starts_with("PIN state:"))
        .unwrap();
    assert_eq!(pin_use, pin_state + 1, "{err}");
    let pin_use = err.lines().nth(pin_use).unwrap().to_string();
    let out = run(lab.cmd().args(["--ca", &uri, "status"]));
    assert_ok(&out, "status through the middleware");
    assert!(
        stdout(&out).lines().any(|l| l == pin_use),
        "{}",
        stdout(&out)
    );
    // The certificate is the CA's: OpenSSH checks its signature, names the CA, and logs in.
    let cert = cert_path(&key);
    let listing = ssh_keygen_list(&cert);
    let fp = run(Command::new("ssh-keygen").arg("-l").arg("-f").arg(&ca));
    let fp = stdout(&fp).split_whitespace().nth(1).unwrap().to_string();
    assert!(
        listing.contains(&format!("Signing CA: ECDSA {fp}")),
        "{listing}"
    );
    assert!(
        sshd.login(&key.with_extension(""), &cert),
        "sshd refused:\n{}",
        sshd.log_text()
    );
    // Through OpenSC's pkcs11-spy: every signature is C_SignInit with the hashing ECDSA
    // mechanism, C_Login(CKU_CONTEXT_SPECIFIC), then the data; the user logs in once.
    let spy_log = lab.dir.path().join("spy.log");
    let key3 = keygen(lab.dir.path(), "k3", &["-t", "ed25519"], "carol@laptop");
    let out = run(lab
        .cmd()
        .env("PKCS11SPY", module)
        .env("PKCS11SPY_OUTPUT", &spy_log)
        .args([
            "--ca",
            &uri.replace(module, SPY),
            "mint",
            "-n",
            "breakglass",
            "--reason",
            "INC-10 spy",
        ])
        .arg(&key3));
    assert_ok(&out, "mint through pkcs11-spy");
    // (The log holds the test card's factory PIN: it stays in the lab directory.)
    let calls = spied_calls(&std::fs::read_to_string(&spy_log).unwrap());
    let count = |name: &str| calls.iter().filter(|c| *c == name).count();
    assert_eq!(count("C_Login(CKU_USER)"), 1, "{calls:?}");
    assert_eq!(count("C_Sign"), 0, "{calls:?}");
    // The mechanism that hashes on the token, which PKCS#11 lets take the data in parts.
    // (This pkcs11-spy names CKM_ECDSA but gives the hashing ones in hex.)
    let hashing = match algorithm {
        "ecdsa-p256" => ["C_SignInit(CKM_ECDSA_SHA256)", "C_SignInit(0x00001044)"],
        _ => ["C_SignInit(CKM_ECDSA_SHA384)", "C_SignInit(0x00001045)"],
    };
    let inits: Vec<usize> = (0..calls.len())
        .filter(|i| calls[*i].starts_with("C_SignInit"))
        .collect();
    assert!(
        inits.iter().all(|i| hashing.contains(&calls[*i].as_str())),
        "{calls:?}"
    );
    // One token signature per certificate (the ledger binding is in it: no checkpoint).
    assert_eq!(inits.len(), 1, "{calls:?}");
    for i in &inits {
        assert_eq!(
            calls[i + 1..i + 4],
            [
                "C_Login(CKU_CONTEXT_SPECIFIC)",
                "C_SignUpdate",
                "C_SignFinal"
            ],
            "{calls:?}"
        );
    }
    assert_eq!(
        count("C_Login(CKU_CONTEXT_SPECIFIC)"),
        inits.len(),
        "{calls:?}"
    );
    // The ledger holds it and verifies; the yubikey backend goes on after it.
    assert_ok(&run(lab.cmd().args(["log", "verify"])), "log verify");
    let key2 = keygen(lab.dir.path(), "k2", &["-t", "ecdsa"], "bob@laptop");
    assert_ok(
        &run(lab
            .cmd()
            .args(["mint", "-n", "breakglass", "--reason", "INC-10b"])
            .arg(&key2)),
        "mint through the yubikey backend afterwards",
    );
    assert_eq!(listed_serial(&ssh_keygen_list(&cert_path(&key2))), 3);
    assert_ok(&run(lab.cmd().args(["log", "verify"])), "log verify");
}

/// OpenSC's `opensc-pkcs11.so` (PIV driver): slot 9c is CKA_ALWAYS_AUTHENTICATE.
fn through_opensc(serial: u32, algorithm: &str) {
    card_key_through_middleware(
        serial,
        algorithm,
        OPENSC,
        "pkcs11:token=breakglass-ca%20emergency%20SSH%20CA;object=SIGN%20pubkey;id=%02",
        "breakglass-ca emergency SSH CA",
    );
}

/// Yubico's `libykcs11.so`: slot 9c is CKA_ALWAYS_AUTHENTICATE there too.
fn through_ykcs11(serial: u32, algorithm: &str) {
    card_key_through_middleware(
        serial,
        algorithm,
        YKCS11,
        &format!("pkcs11:token=YubiKey%20PIV%20%23{serial};object=Public%20key%20for%20Digital%20Signature;id=%02"),
        &format!("YubiKey PIV #{serial}"),
    );
}

#[test]
fn p256_card_key_through_opensc_pkcs11() {
    through_opensc(8001, "ecdsa-p256");
}

#[test]
fn p384_card_key_through_opensc_pkcs11() {
    through_opensc(8002, "ecdsa-p384");
}

#[test]
fn p256_card_key_through_ykcs11() {
    through_ykcs11(8003, "ecdsa-p256");
}

#[test]
fn p384_card_key_through_ykcs11() {
    through_ykcs11(8004, "ecdsa-p384");
}
