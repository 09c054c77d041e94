//! SIGINT, SIGTERM and SIGHUP at random moments of `mint` and `init`, on a real SoftHSM2 token.
//! SoftHSM 2.6 truncates and rewrites its `token.object` at every login (and writes object
//! files when it generates a key), so a signal's default action in that instant destroys the
//! token store, and with it the CA key. The binary defers these signals while the token is
//! logged in and the ledger and certificate are written (`src/signals.rs`); these tests check
//! that, whenever the signal lands, the token still opens with the same key, the ledger
//! verifies, every certificate file has its record, and the exit says what happened.
//!
//! The delays are random, from a seed printed at the start (`BREAKGLASS_TEST_SEED=N` repeats a
//! run), spread over 1.2 times a measured run from process start to exit, so signals land
//! before, during and after the deferred part.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use crate::common::*;

/// The signals a terminal, a session manager or `kill` sends, with their numbers and names.
const SIGNALS: [(Signal, i32, &str); 3] = [
    (Signal::INT, 2, "SIGINT"),
    (Signal::TERM, 15, "SIGTERM"),
    (Signal::HUP, 1, "SIGHUP"),
];

/// `BREAKGLASS_TEST_SEED`, else the clock; printed so that a failing run can be repeated.
fn seeded(test: &str) -> SplitMix {
    let seed = std::env::var("BREAKGLASS_TEST_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: seed {seed} (repeat with BREAKGLASS_TEST_SEED={seed})");
    SplitMix(seed)
}

/// Spawn `cmd`, send `sig` after `delay` (unless it already exited: it is not reaped before
/// the kill, so its pid cannot have been reused), and collect its output.
fn run_and_signal(mut cmd: Command, delay: Duration, sig: Signal) -> Output {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let pid = Pid::from_child(&child);
    let _ = kill_process(pid, sig);
    child.wait_with_output().unwrap()
}

/// How long `make()` takes from spawn to exit, the median of a few runs, in microseconds.
fn measure(mut make: impl FnMut(usize) -> Command, runs: usize) -> u64 {
    let mut times: Vec<u64> = (0..runs)
        .map(|i| {
            let t = Instant::now();
            let out = make(i).stdout(Stdio::null()).output().unwrap();
            assert_ok(&out, "warm-up run");
            t.elapsed().as_micros() as u64
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// The ledger as the test reads it (no binary involved): serial and certificate per complete
/// issuance line (revocation records, which hold no serial, are skipped), and whether a line
/// did not parse.
fn ledger_lines(hsm: &Hsm) -> (Vec<(u64, String)>, usize) {
    let text = std::fs::read_to_string(hsm.state.join("ledger.jsonl")).unwrap_or_default();
    let mut records = Vec::new();
    let mut bad = 0;
    for line in text.lines() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) if v["kind"] == "revocation" => {}
            Ok(v) => records.push((
                v["serial"].as_u64().unwrap(),
                v["certificate"].as_str().unwrap().to_string(),
            )),
            Err(_) => bad += 1,
        }
    }
    (records, bad)
}

/// What became of one signalled run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Exit 0: it finished before the signal came (or the signal came after it exited).
    Finished,
    /// Exit 128+signal, "nothing was issued": stopped before signing (or at the PIN).
    StoppedBefore,
    /// Exit 128+signal, "after serial N was recorded": record and certificate both written.
    StoppedAfter,
    /// Killed by the signal's default action before the deferral began: nothing issued.
    KilledBefore,
}

const MINT_OUTCOMES: [(Outcome, &str); 4] = [
    (Outcome::Finished, "finished normally (exit 0)"),
    (Outcome::StoppedBefore, "stopped before signing (128+sig)"),
    (Outcome::StoppedAfter, "stopped after recording (128+sig)"),
    (Outcome::KilledBefore, "killed before deferral"),
];

const INIT_OUTCOMES: [(Outcome, &str); 4] = [
    (Outcome::Finished, "finished normally (exit 0)"),
    (
        Outcome::StoppedBefore,
        "stopped before generating (128+sig)",
    ),
    (Outcome::StoppedAfter, "stopped after generating (128+sig)"),
    (Outcome::KilledBefore, "killed before deferral"),
];

/// One line per signal: how many runs ended each way.
fn figures(counts: &BTreeMap<(&str, Outcome), usize>, labels: &[(Outcome, &str); 4]) -> String {
    let mut lines = Vec::new();
    for (_, _, name) in SIGNALS {
        let row: Vec<String> = labels
            .iter()
            .map(|(o, what)| format!("{} {what}", counts.get(&(name, *o)).unwrap_or(&0)))
            .collect();
        lines.push(format!("  {name}: {}", row.join(", ")));
    }
    lines.join("\n")
}

#[test]
fn mints_signalled_at_random_moments_keep_the_token_and_the_ledger() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    const PER_SIGNAL: usize = 100;
    let hsm = Hsm::new("emergency-ca");
    let ca_line = hsm.init("ecdsa-p256");
    let key = keygen(hsm.dir.path(), "req", &["-t", "ed25519"], "alice@laptop");
    let certs = hsm.path("certs");
    std::fs::create_dir(&certs).unwrap();
    let mint = |name: &str| {
        let mut c = hsm.cmd();
        c.args(["mint", "--reason", "signal test", "-n", "breakglass", "-o"])
            .arg(certs.join(name))
            .arg(&key);
        c
    };
    let typical = measure(|i| mint(&format!("warm{i}-cert.pub")), 5);
    let span = typical * 12 / 10;
    let tokens_dir = hsm.dir.path().join("tokens");
    let tokens = snapshot_dir(&tokens_dir);
    let mut rng = seeded("mint signal test");
    eprintln!("a mint takes {typical} us here; delays are spread over 0..{span} us");

    let mut counts: BTreeMap<(&str, Outcome), usize> = BTreeMap::new();
    let mut problems: Vec<String> = Vec::new();
    let mut corrupted: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut prev, _) = ledger_lines(&hsm);
    let started = Instant::now();
    for i in 0..PER_SIGNAL * SIGNALS.len() {
        let (sig, signo, name) = SIGNALS[i % SIGNALS.len()];
        let delay = rng.below(span);
        let file = format!("{i}-cert.pub");
        let out_path = certs.join(&file);
        let out = run_and_signal(mint(&file), Duration::from_micros(delay), sig);
        let err = stderr(&out);
        let what = format!("run {i} ({name} after {delay} us)");

        // The token must still open, with the same key.
        let pubkey = run(hsm.cmd().arg("pubkey"));
        if !pubkey.status.success() || stdout(&pubkey).trim() != ca_line {
            *corrupted.entry(name).or_default() += 1;
            problems.push(format!(
                "{what}: the token no longer opens with the CA key: {}",
                stderr(&pubkey).trim()
            ));
            restore_dir(&tokens, &tokens_dir);
        }

        // At most one new record; a certificate file only with its record, and its record only
        // with the file (these signals are deferred, unlike SIGKILL).
        let (now, bad) = ledger_lines(&hsm);
        if bad > 0 {
            problems.push(format!("{what}: {bad} ledger line(s) do not parse"));
        }
        let new = now.len() as i64 - prev.len() as i64;
        let cert = std::fs::read_to_string(&out_path).ok();
        let issued = match (new, &cert) {
            (0, None) => false,
            (1, Some(text)) if now.last().map(|r| r.1.as_str()) == Some(text.trim()) => true,
            (1, Some(_)) => {
                problems.push(format!("{what}: {file} differs from its record"));
                true
            }
            (1, None) => {
                problems.push(format!("{what}: serial recorded, no certificate written"));
                true
            }
            (0, Some(_)) => {
                problems.push(format!("{what}: {file} written without a record"));
                false
            }
            (n, _) => {
                problems.push(format!("{what}: the ledger changed by {n} records"));
                n > 0
            }
        };
        let serial = now.last().map(|r| r.0).unwrap_or(0);
        prev = now;

        let outcome = if out.status.code() == Some(0) {
            issued.then_some(Outcome::Finished)
        } else if out.status.code() == Some(128 + signo) {
            let head = format!("error: interrupted ({name}) ");
            let after = format!(
                "after serial {serial} was recorded: the certificate was written to {}",
                out_path.display()
            );
            if !err.contains(&head) {
                None
            } else if err.contains("nothing was issued, the token and ledger are intact") {
                (!issued).then_some(Outcome::StoppedBefore)
            } else if err.contains(&after) {
                issued.then_some(Outcome::StoppedAfter)
            } else {
                None
            }
        } else if out.status.signal() == Some(signo) {
            // The default action only runs before the deferral begins: process start, loading
            // the PKCS#11 module, opening the token read-only and reading its public key
            // (nothing there writes to SoftHSM's store), checking the request, and for SIGTERM
            // and SIGHUP reading the PIN file. SIGINT is deferred from the PIN on, the other
            // two from just before C_Login, all three until the process exits. So a death by
            // the signal must mean nothing was issued.
            (!issued).then_some(Outcome::KilledBefore)
        } else {
            None
        };
        match outcome {
            Some(o) => *counts.entry((name, o)).or_default() += 1,
            None => problems.push(format!(
                "{what}: unexpected exit {:?} (signal {:?}, issued {issued}):\n{err}",
                out.status.code(),
                out.status.signal()
            )),
        }
        assert!(
            !err.contains("panicked") && !err.contains(PIN),
            "{what}: {err}"
        );

        if i % 50 == 49 {
            check_all(&hsm, &certs, &mut problems);
        }
    }
    let elapsed = started.elapsed();
    check_all(&hsm, &certs, &mut problems);
    // The chain goes on with the next serial after all that.
    let (records, _) = ledger_lines(&hsm);
    let last = records.last().map(|r| r.0).unwrap_or(0);
    let out = hsm.mint(&key, &["-n", "breakglass", "-o", "-"]);
    assert_ok(&out, "mint after the signals");
    assert!(stderr(&out).contains(&format!("Issued serial {}", last + 1)));

    let runs = PER_SIGNAL * SIGNALS.len();
    eprintln!(
        "mint signal test: {runs} signalled mints in {:.1} s, {} records, token destroyed {} time(s) {corrupted:?}, {} problem(s)\n{}",
        elapsed.as_secs_f64(),
        records.len(),
        corrupted.values().sum::<usize>(),
        problems.len(),
        figures(&counts, &MINT_OUTCOMES)
    );
    assert!(
        problems.is_empty(),
        "{} problem(s), the first ones:\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The signals must have landed inside the deferred part, both before and after signing.
    for (_, _, name) in SIGNALS {
        let inside = counts.get(&(name, Outcome::StoppedBefore)).unwrap_or(&0)
            + counts.get(&(name, Outcome::StoppedAfter)).unwrap_or(&0);
        assert!(
            inside >= 3,
            "only {inside} {name} landed while deferred:\n{}",
            figures(&counts, &MINT_OUTCOMES)
        );
    }
}

/// `log verify` passes, every certificate file has its record (same certificate, serial from
/// the certificate itself), and no serial is in two files.
fn check_all(hsm: &Hsm, certs: &Path, problems: &mut Vec<String>) {
    let verify = run(hsm.cmd().args(["log", "verify"]));
    if !verify.status.success() {
        problems.push(format!("log verify failed: {}", stderr(&verify)));
    }
    let (records, _) = ledger_lines(hsm);
    let by_serial: BTreeMap<u64, &str> = records.iter().map(|(s, c)| (*s, c.as_str())).collect();
    let serials: Vec<u64> = records.iter().map(|r| r.0).collect();
    if serials != (1..=serials.len() as u64).collect::<Vec<_>>() {
        problems.push(format!("ledger serials are not 1..n: {serials:?}"));
    }
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(certs).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with("-cert.pub") || name.starts_with('.') {
            continue; // a temporary file is never renamed into place, so never handed out
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let cert = ssh_key::Certificate::from_openssh(text.trim()).unwrap();
        if !seen.insert(cert.serial()) {
            problems.push(format!("serial {} in two certificate files", cert.serial()));
        }
        if by_serial.get(&cert.serial()).copied() != Some(text.trim()) {
            problems.push(format!("{name} (serial {}) has no record", cert.serial()));
        }
    }
}

#[test]
fn inits_signalled_at_random_moments_leave_one_consistent_ca() {
    if !require(&["softhsm2-util", MODULE]) {
        return;
    }
    const PER_SIGNAL: usize = 20;
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let init = || {
        let mut c = hsm.cmd();
        c.args([
            "--ca",
            &hsm.uri(),
            "init",
            "--algorithm",
            "ecdsa-p256",
            "--force",
        ]);
        c
    };
    // The URI without an id: it fails if two keys carry the label (a replacement cut short).
    let by_label = format!(
        "pkcs11:token={};object=breakglass-ca?module-path={MODULE}",
        hsm.label
    );
    let ca_pub = || {
        std::fs::read_to_string(hsm.state.join("ca.pub"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let typical = measure(|_| init(), 3);
    let span = typical * 12 / 10;
    let mut rng = seeded("init signal test");
    eprintln!("an init takes {typical} us here; delays are spread over 0..{span} us");
    let tokens_dir = hsm.dir.path().join("tokens");
    let mut counts: BTreeMap<(&str, Outcome), usize> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut before = ca_pub();
    for i in 0..PER_SIGNAL * SIGNALS.len() {
        let (sig, signo, name) = SIGNALS[i % SIGNALS.len()];
        let delay = rng.below(span);
        let what = format!("init {i} ({name} after {delay} us)");
        let out = run_and_signal(init(), Duration::from_micros(delay), sig);
        let err = stderr(&out);
        // One key with the label, the configured one, and ca.pub is its line.
        let labelled = run(hsm.cmd().args(["--ca", &by_label, "pubkey"]));
        let configured = run(hsm.cmd().arg("pubkey"));
        let now = ca_pub();
        let consistent = labelled.status.success()
            && configured.status.success()
            && stdout(&labelled).trim() == now
            && stdout(&configured).trim() == now;
        if !consistent {
            problems.push(format!(
                "{what}: token and state directory disagree: {} / {}",
                stderr(&labelled).trim(),
                stderr(&configured).trim()
            ));
            // Start again from a fresh token so the count can go on.
            std::fs::remove_dir_all(&tokens_dir).unwrap();
            std::fs::create_dir(&tokens_dir).unwrap();
            hsm.add_token(&hsm.label);
            assert_ok(&run(&mut init()), "init on a fresh token");
            before = ca_pub();
            continue;
        }
        let replaced = now != before;
        // Stopped before the key was generated: at the PIN (while it was read) or after the
        // login.
        let before_generating = "no key was generated, the token and state directory are unchanged";
        let after_generating =
            "after the CA key was generated: init completed, config.toml and ca.pub were written";
        let outcome = if out.status.code() == Some(0) {
            replaced.then_some(Outcome::Finished)
        } else if out.status.code() == Some(128 + signo)
            && err.contains(&format!("error: interrupted ({name}) "))
        {
            if err.contains(before_generating) {
                (!replaced).then_some(Outcome::StoppedBefore)
            } else if err.contains(after_generating) {
                replaced.then_some(Outcome::StoppedAfter)
            } else {
                None
            }
        } else if out.status.signal() == Some(signo) {
            // As for mint: deferred from the PIN on, so a death leaves the old CA in place.
            (!replaced).then_some(Outcome::KilledBefore)
        } else {
            None
        };
        match outcome {
            Some(o) => *counts.entry((name, o)).or_default() += 1,
            None => problems.push(format!(
                "{what}: unexpected exit {:?} (signal {:?}, replaced {replaced}):\n{err}",
                out.status.code(),
                out.status.signal()
            )),
        }
        before = now;
    }
    eprintln!(
        "init signal test: {} signalled inits, {} problem(s)\n{}",
        PER_SIGNAL * SIGNALS.len(),
        problems.len(),
        figures(&counts, &INIT_OUTCOMES)
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Runs `argv` on a new pseudo-terminal (its controlling terminal, so rpassword's /dev/tty),
/// waits for the PIN prompt and for the terminal's echo to be off, then does MODE: `ctrl-c`
/// types Ctrl-C, `term` sends SIGTERM, `pin` types the PIN and Enter. Prints one JSON line:
/// exit code or signal, whether echo is on again afterwards, and what the terminal showed.
/// Every wait is bounded; a run that does not end is killed and reported as hung.
const PTY_DRIVER: &str = r#"
import fcntl, json, os, select, signal, sys, termios, time
mode, argv = sys.argv[1], sys.argv[2:]
master, slave = os.openpty()
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
out = b""
def pump(timeout):
    global out
    r, _, _ = select.select([master], [], [], timeout)
    if not r:
        return False
    try:
        data = os.read(master, 4096)
    except OSError:
        return False
    out += data
    return bool(data)
deadline = time.time() + 30
prompted = False
while time.time() < deadline:
    pump(0.02)
    if b"PIN for" in out and not termios.tcgetattr(slave)[3] & termios.ECHO:
        prompted = True
        break
if prompted:
    time.sleep(0.1)
    if mode == "ctrl-c":
        os.write(master, b"\x03")
    elif mode == "term":
        os.kill(pid, signal.SIGTERM)
    elif mode == "pin":
        os.write(master, os.environ["TEST_PIN"].encode() + b"\r")
status = None
while time.time() < deadline:
    pump(0.02)
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
hung = status is None
if hung:
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
while pump(0.05):
    pass
print(json.dumps({
    "prompted": prompted,
    "hung": hung,
    "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
    "echo": bool(termios.tcgetattr(slave)[3] & termios.ECHO),
    "output": out.decode(errors="replace"),
}))
"#;

fn mint_on_a_terminal(hsm: &Hsm, key: &Path, out: &Path, mode: &str) -> serde_json::Value {
    let mut c = hsm.cmd_through("python3", &["-c", PTY_DRIVER, mode]);
    c.env_remove("BREAKGLASS_CA_PIN_FILE")
        .env("TEST_PIN", PIN)
        .args(["mint", "--reason", "pty test", "-n", "breakglass", "-o"])
        .arg(out)
        .arg(key);
    let res = run(&mut c);
    assert_ok(&res, "the pty driver");
    let v: serde_json::Value = serde_json::from_str(stdout(&res).trim()).unwrap();
    assert_eq!(v["prompted"], true, "no PIN prompt: {v}");
    assert_eq!(v["hung"], false, "the mint did not end: {v}");
    v
}

#[test]
fn ctrl_c_at_the_pin_prompt_stops_cleanly_and_restores_the_terminal() {
    if !require(&["softhsm2-util", "ssh-keygen", "python3", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let ca_line = hsm.init("ecdsa-p256");
    let key = keygen(hsm.dir.path(), "req", &["-t", "ed25519"], "alice@laptop");
    let ledger = hsm.state.join("ledger.jsonl");
    let empty = || std::fs::read(&ledger).unwrap_or_default().is_empty();
    let cert = hsm.path("req-cert.pub");

    // Ctrl-C at the prompt: rpassword raises SIGINT, which is deferred there, so the prompt
    // returns, the terminal gets its echo back, and the mint says nothing was issued.
    let v = mint_on_a_terminal(&hsm, &key, &cert, "ctrl-c");
    let shown = v["output"].as_str().unwrap();
    assert_eq!(v["exit"], 130, "{v}");
    assert!(
        shown.contains("error: interrupted (SIGINT) at the PIN prompt: nothing was issued, the token and ledger are intact"),
        "{shown}"
    );
    assert_eq!(v["echo"], true, "the terminal was left without echo: {v}");
    assert!(empty() && !cert.exists());

    // SIGTERM while the prompt waits ends the process at once (a deferred SIGTERM would leave
    // the prompt waiting for Enter); nothing has been written to the token yet.
    let v = mint_on_a_terminal(&hsm, &key, &cert, "term");
    assert_eq!(v["signal"], 15, "{v}");
    assert!(empty() && !cert.exists());
    let pubkey = run(hsm.cmd().arg("pubkey"));
    assert_ok(&pubkey, "pubkey after SIGTERM at the prompt");
    assert_eq!(stdout(&pubkey).trim(), ca_line);

    // And the PIN typed at the same prompt mints.
    let v = mint_on_a_terminal(&hsm, &key, &cert, "pin");
    assert_eq!(v["exit"], 0, "{v}");
    assert!(
        v["output"].as_str().unwrap().contains("Issued serial 1"),
        "{v}"
    );
    assert_eq!(v["echo"], true, "{v}");
    assert!(cert.exists());
}

#[test]
fn a_sighup_ignored_by_nohup_stays_ignored() {
    if !require(&["softhsm2-util", "ssh-keygen", "nohup", MODULE]) {
        return;
    }
    const RUNS: usize = 20;
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let key = keygen(hsm.dir.path(), "req", &["-t", "ed25519"], "alice@laptop");
    let mint = || {
        let mut c = hsm.cmd_through("nohup", &[]);
        c.args([
            "mint",
            "--reason",
            "nohup test",
            "-n",
            "breakglass",
            "-o",
            "-",
        ])
        .arg(&key);
        c
    };
    let span = measure(|_| mint(), 3) * 12 / 10;
    let mut rng = seeded("nohup test");
    for i in 0..RUNS {
        let delay = rng.below(span);
        let child = mint()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // From the moment nohup has set SIGHUP to be ignored (before it execs the binary).
        let status = format!("/proc/{}/status", child.id());
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            let text = std::fs::read_to_string(&status).unwrap_or_default();
            let ignored = text
                .lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
                .unwrap_or(0);
            if ignored & 1 != 0 || text.contains("State:\tZ") {
                break;
            }
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_micros(delay));
        let _ = kill_process(Pid::from_child(&child), Signal::HUP);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {i} (SIGHUP after {delay} us) under nohup: {:?}\n{}",
            out.status,
            stderr(&out)
        );
    }
    let (records, _) = ledger_lines(&hsm);
    assert_eq!(records.len(), RUNS + 3);
}
