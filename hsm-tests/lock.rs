//! The ledger lock against a custodian who is slow and a lock file that is deleted: a mint
//! waits at its PIN prompt on a pseudo-terminal (no PIN file) while `ledger.lock` is deleted
//! and a second mint runs to completion; then the PIN is typed into the first. No serial may
//! repeat, in the ledger or in the certificates.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Runs a command on a pseudo-terminal (its controlling terminal), so that the PIN is asked
/// on it. Touches READY when the PIN prompt appears, waits for GO to exist, types the PIN,
/// and exits with the command's exit code, its terminal output on stdout. Every wait is
/// bounded by TIMEOUT seconds (exit 125 then, the command killed).
const PTY_DRIVER: &str = r#"
import os, pty, select, signal, sys, time
ready, go, pin, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
argv = sys.argv[5:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b""
state = "prompt"
deadline = time.time() + timeout
while True:
    if time.time() > deadline:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        sys.stdout.buffer.write(out)
        print("\nDRIVER: timed out waiting in state " + state)
        sys.exit(125)
    if state == "prompt" and b"PIN for" in out:
        open(ready, "w").close()
        state = "waiting"
    if state == "waiting" and os.path.exists(go):
        os.write(fd, pin.encode() + b"\n")
        state = "typed"
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"#;

pub(crate) fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// serial of every issuance record in the ledger, via `log --json` (revocation records, which
/// hold no serial, are skipped).
fn ledger_serials(hsm: &Hsm) -> Vec<u64> {
    let out = run(hsm.cmd().args(["log", "--json"]));
    assert_ok(&out, "log --json");
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] != "revocation")
        .map(|v| v["serial"].as_u64().unwrap())
        .collect()
}

/// `mint --reason REASON -n breakglass KEY` on a pseudo-terminal (python3's pty driver, no PIN
/// file), waiting at its PIN prompt: the child, the file the driver creates once the prompt
/// shows, and the file that makes it type the PIN.
pub(crate) fn mint_at_pin_prompt(hsm: &Hsm, reason: &str, key: &Path) -> (Child, PathBuf, PathBuf) {
    let driver = hsm.path("pty-driver.py");
    std::fs::write(&driver, PTY_DRIVER).unwrap();
    let (ready, go) = (hsm.path("ready"), hsm.path("go"));
    let child = hsm
        .cmd_with("python3")
        .env_remove("BREAKGLASS_CA_PIN_FILE")
        .arg(&driver)
        .arg(&ready)
        .arg(&go)
        .arg(PIN)
        .arg("90")
        .arg(env!("CARGO_BIN_EXE_breakglass-ca"))
        .args(["mint", "--reason", reason, "-n", "breakglass"])
        .arg(key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, ready, go)
}

#[test]
fn deleting_the_lock_while_a_mint_waits_at_its_pin_prompt_never_repeats_a_serial() {
    if !require(&["softhsm2-util", "ssh-keygen", "python3", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let key_a = keygen(hsm.dir.path(), "a", &["-t", "ed25519"], "alice@laptop");
    let key_b = keygen(hsm.dir.path(), "b", &["-t", "ed25519"], "bob@laptop");
    assert_ok(
        &hsm.mint(&key_a, &["-n", "breakglass", "-o", "-"]),
        "mint 1",
    );

    let (mut first, ready, go) = mint_at_pin_prompt(&hsm, "INC-1 first", &key_a);
    if !wait_for_file(&ready, Duration::from_secs(60)) {
        let out = wait_bounded(&mut first, Duration::from_secs(100));
        panic!(
            "the first mint never asked for its PIN:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    // The first mint holds the lock and waits for its PIN. The lock file is deleted...
    let lock = hsm.state.join("ledger.lock");
    std::fs::remove_file(&lock).unwrap();
    // ... and a second mint runs to completion meanwhile (it does not wait: the lock it takes
    // is a new file).
    let mut second = hsm
        .cmd()
        .args(["mint", "--reason", "INC-2 second", "-n", "breakglass"])
        .arg(&key_b)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let second = wait_bounded(&mut second, Duration::from_secs(60));
    assert_ok(&second, "second mint");
    assert!(
        stderr(&second).contains("Issued serial 2 "),
        "{}",
        stderr(&second)
    );
    // Now the PIN is typed into the first.
    std::fs::write(&go, "").unwrap();
    let first = wait_bounded(&mut first, Duration::from_secs(100));
    let screen = stdout(&first);
    assert_ne!(
        first.status.code(),
        Some(125),
        "driver timed out:\n{screen}"
    );
    assert!(!screen.contains(PIN), "the PIN was echoed:\n{screen}");
    assert!(!screen.contains("panicked"), "{screen}");
    // It must not issue serial 2 again: it refuses, having signed and written nothing.
    assert_eq!(first.status.code(), Some(1), "{screen}");
    assert!(
        screen.contains("changed while this mint held its lock") && screen.contains("hint:"),
        "{screen}"
    );
    assert!(!screen.contains("Issued serial"), "{screen}");
    assert!(
        !cert_path(&key_a).exists(),
        "the refused mint wrote a certificate"
    );

    // No serial twice: in the ledger, and in every certificate file (checked by OpenSSH).
    let serials = ledger_serials(&hsm);
    assert_eq!(serials, [1, 2], "ledger serials");
    let mut seen = BTreeSet::new();
    for cert in [cert_path(&key_a), cert_path(&key_b)] {
        if cert.exists() {
            let serial = listed_serial(&ssh_keygen_list(&cert));
            assert!(seen.insert(serial), "serial {serial} in two certificates");
            assert!(serials.contains(&serial), "serial {serial} has no record");
        }
    }
    let out = run(hsm.cmd().args(["log", "verify"]));
    assert_ok(&out, "log verify");
    // The lock works again: a third mint continues with serial 3.
    let out = hsm.mint(&key_a, &["-n", "breakglass"]);
    assert_ok(&out, "third mint");
    assert!(
        stderr(&out).contains("Issued serial 3 "),
        "{}",
        stderr(&out)
    );
    assert_eq!(listed_serial(&ssh_keygen_list(&cert_path(&key_a))), 3);
    assert_ok(&run(hsm.cmd().args(["log", "verify"])), "log verify");
    eprintln!(
        "lock test: the waiting mint refused after the lock was deleted and serial 2 issued by another; ledger {serials:?}"
    );
}

/// The same pseudo-terminal mint, with nothing else happening: it is the control that shows
/// the driver works (and a deleted lock alone does not make a mint fail).
#[test]
fn a_mint_whose_lock_file_is_deleted_still_issues_when_nothing_else_ran() {
    if !require(&["softhsm2-util", "ssh-keygen", "python3", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let key = keygen(hsm.dir.path(), "a", &["-t", "ed25519"], "alice@laptop");
    let (mut child, ready, go) = mint_at_pin_prompt(&hsm, "INC-1", &key);
    assert!(
        wait_for_file(&ready, Duration::from_secs(60)),
        "no PIN prompt"
    );
    std::fs::remove_file(hsm.state.join("ledger.lock")).unwrap();
    std::fs::write(&go, "").unwrap();
    let out = wait_bounded(&mut child, Duration::from_secs(100));
    let screen = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{screen}");
    assert!(screen.contains("Issued serial 1 "), "{screen}");
    assert!(!screen.contains(PIN), "the PIN was echoed:\n{screen}");
    assert_eq!(listed_serial(&ssh_keygen_list(&cert_path(&key))), 1);
    assert!(hsm.state.join("ledger.lock").exists());
    assert_ok(&run(hsm.cmd().args(["log", "verify"])), "log verify");
}

/// A mint (and `log verify`) that finds the lock held by another process waits for it, says
/// so on stderr once (the ledger reports it as a note, `cmd/` prints it), and goes on when the
/// lock is released.
#[test]
fn a_command_that_finds_the_lock_held_says_it_waits_then_goes_on() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let key = keygen(hsm.dir.path(), "a", &["-t", "ed25519"], "alice@laptop");
    const WAITING: &str = "Waiting for another mint on this state directory to finish...\n";
    for (what, args) in [
        (
            "mint",
            vec!["mint", "--reason", "INC-1", "-n", "breakglass"],
        ),
        ("log verify", vec!["log", "verify"]),
    ] {
        // Held as another mint holds it (flock on ledger.lock).
        let held = std::fs::File::open(hsm.state.join("ledger.lock")).unwrap();
        held.lock().unwrap();
        let mut c = hsm.cmd();
        c.args(&args);
        if what == "mint" {
            c.arg(&key);
        }
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "{what} did not wait for the lock"
        );
        drop(held);
        let out = wait_bounded(&mut child, Duration::from_secs(60));
        assert_ok(&out, what);
        let err = stderr(&out);
        assert!(err.starts_with(WAITING), "{what}: {err}");
        assert_eq!(err.matches(WAITING).count(), 1, "{what}: {err}");
        if what == "mint" {
            assert!(err.contains("Issued serial 1 "), "{err}");
        } else {
            assert!(
                stdout(&out).contains("ledger OK: 1 record(s)"),
                "{}",
                stdout(&out)
            );
        }
    }
    // Nobody holds it: nothing said.
    let out = hsm.mint(&key, &["-n", "breakglass"]);
    assert_ok(&out, "mint");
    assert!(!stderr(&out).contains("Waiting"), "{}", stderr(&out));
}
