//! Batch mint: several requester keys in one `mint`. One `C_Login` (counted through OpenSC's
//! `pkcs11-spy`), consecutive serials checked by `ssh-keygen -L`, a bad key refusing the whole
//! batch before the PIN (nothing opened, the state directory unchanged), and batches killed
//! with SIGKILL at random moments never leaving a certificate file without its record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64ct::{Base64, Encoding};

use crate::common::*;

/// OpenSC's logging PKCS#11 module: it forwards every call to `PKCS11SPY` and logs it.
const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";

fn setup(tools: &[&str]) -> Option<Hsm> {
    let mut all = vec!["softhsm2-util", "ssh-keygen", MODULE];
    all.extend_from_slice(tools);
    if !require(&all) {
        return None;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    Some(hsm)
}

/// `count` Ed25519 requester keys `DIR/user{i}.pub`, commented `user{i}@laptop`.
fn keys(dir: &Path, count: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..count)
        .map(|i| {
            keygen(
                dir,
                &format!("user{i}"),
                &["-t", "ed25519"],
                &format!("user{i}@laptop"),
            )
        })
        .collect()
}

/// The binary through `pkcs11-spy` (logging to `log`), on the same token.
fn spied(hsm: &Hsm, log: &Path) -> std::process::Command {
    let mut c = hsm.cmd();
    c.env("PKCS11SPY", MODULE)
        .env("PKCS11SPY_OUTPUT", log)
        .args([
            "--ca",
            &format!("pkcs11:token={}?module-path={SPY}", hsm.label),
        ]);
    c
}

/// How many times the spy log records a call to `function`.
fn calls(log: &Path, function: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(function))
        .count()
}

fn checkpoint_lines(hsm: &Hsm) -> usize {
    std::fs::read_to_string(hsm.state.join("checkpoints.jsonl"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn verify_ok(hsm: &Hsm) -> String {
    let out = run(hsm.cmd().args(["log", "verify"]));
    assert_ok(&out, "log verify");
    stdout(&out)
}

/// Copies of `keys` in a new directory `dir`, so that a run's certificates land there.
fn copy_keys(dir: &Path, keys: &[PathBuf]) -> Vec<PathBuf> {
    std::fs::create_dir(dir).unwrap();
    keys.iter()
        .map(|k| {
            let to = dir.join(k.file_name().unwrap());
            std::fs::copy(k, &to).unwrap();
            to
        })
        .collect()
}

#[test]
fn five_keys_one_login_five_consecutive_serials() {
    let Some(hsm) = setup(&[SPY]) else { return };
    // One mint first, so the batch does not start at serial 1.
    let first = keygen(hsm.dir.path(), "first", &["-t", "ed25519"], "first@laptop");
    assert_ok(&hsm.mint(&first, &["-n", "breakglass"]), "first mint");
    let keys = keys(&hsm.path("req"), 5);
    let log = hsm.path("spy.log");
    let checkpoints_before = checkpoint_lines(&hsm);
    let out = run(spied(&hsm, &log)
        .args(["mint", "--reason", "INC-42 batch", "-n", "breakglass"])
        .args(&keys));
    assert_ok(&out, "batch mint");
    let err = stderr(&out);
    // One login, one PIN; one signature per certificate, plus any checkpoint it signed.
    assert_eq!(calls(&log, "C_Login"), 1, "{err}");
    let checkpoints = checkpoint_lines(&hsm) - checkpoints_before;
    assert!(checkpoints <= 1, "one checkpoint at most for the batch");
    assert_eq!(calls(&log, "C_SignInit"), 5 + checkpoints);
    // The pre-PIN screen lists every key and the signatures, before the PIN state.
    let pin_at = err.find("PIN state:").unwrap();
    let listed = err.find("Requesters:     5 keys").unwrap();
    assert!(listed < pin_at, "{err}");
    let signs = err
        .find(&format!("the token will sign {} times", 5 + checkpoints))
        .unwrap();
    assert!(signs < pin_at, "{err}");
    let recorded = ledger_certs(&hsm);
    for (i, key) in keys.iter().enumerate() {
        let serial = 2 + i as u64;
        let fp = stdout(&run(std::process::Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(key)));
        let fp = fp.split_whitespace().nth(1).unwrap();
        let line = format!("  serial {serial}:  user{i}@laptop ({fp}) from");
        assert!(err[..pin_at].contains(&line), "missing '{line}':\n{err}");
        // ssh-keygen parses each certificate and checks its signature; serials in order.
        let cert = cert_path(key);
        let listed = ssh_keygen_list(&cert);
        assert_eq!(listed_serial(&listed), serial, "{listed}");
        assert!(listed.contains(&format!("user{i}@laptop#{serial}:INC-42-batch")));
        let text = std::fs::read_to_string(&cert).unwrap();
        assert_eq!(recorded.get(&serial).map(String::as_str), Some(text.trim()));
        assert!(err.contains(&format!("Issued serial {serial}  key ID")));
    }
    assert_eq!(recorded.len(), 6);
    assert!(
        err.contains("Hand each certificate to its requester"),
        "{err}"
    );
    verify_ok(&hsm);
    // A single key still signs once (and prints no batch lines).
    let log1 = hsm.path("spy1.log");
    let out = run(spied(&hsm, &log1)
        .args([
            "mint",
            "--reason",
            "INC-42 one",
            "-n",
            "breakglass",
            "-o",
            "-",
        ])
        .arg(&first));
    assert_ok(&out, "single mint");
    assert_eq!(calls(&log1, "C_Login"), 1);
    assert!(!stderr(&out).contains("Requesters:"));
    assert!(!stderr(&out).contains("Signatures:"));
    assert!(stderr(&out).contains("Requester:      first@laptop ("));
}

#[test]
fn json_prints_one_record_per_line_and_stdin_gives_one_key() {
    let Some(hsm) = setup(&[]) else { return };
    let keys = keys(&hsm.path("req"), 3);
    let mut c = hsm.cmd();
    c.args([
        "mint",
        "--reason",
        "INC-42 json",
        "-n",
        "breakglass",
        "--json",
    ])
    .arg(&keys[0])
    .arg("-")
    .arg(&keys[2])
    .stdin(std::fs::File::open(&keys[1]).unwrap());
    let out = run(&mut c);
    assert_ok(&out, "batch mint --json");
    let records: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let serials: Vec<u64> = records
        .iter()
        .map(|r| r["serial"].as_u64().unwrap())
        .collect();
    assert_eq!(serials, [1, 2, 3]);
    assert_eq!(records[1]["requester_comment"], "user1@laptop");
    // The key from stdin has no file to write beside: its record (with its certificate) is
    // on stdout; the others are written beside their keys.
    assert!(!cert_path(&keys[1]).exists());
    for i in [0, 2] {
        let text = std::fs::read_to_string(cert_path(&keys[i])).unwrap();
        assert_eq!(records[i]["certificate"].as_str(), Some(text.trim()));
    }
    assert!(stderr(&out).contains("from stdin"), "{}", stderr(&out));
    verify_ok(&hsm);
}

/// An Ed25519 public key line whose point has small order (8): a key anyone can sign for.
fn small_order_key(path: &Path) {
    let point: Vec<u8> = (0..32)
        .map(|i| {
            let hex = "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05";
            u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect();
    let mut blob = Vec::new();
    for part in [b"ssh-ed25519".as_slice(), &point] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    let line = format!(
        "ssh-ed25519 {} mallory@laptop\n",
        Base64::encode_string(&blob)
    );
    std::fs::write(path, line).unwrap();
}

#[test]
fn one_bad_key_refuses_the_whole_batch_before_the_pin() {
    let Some(hsm) = setup(&[SPY]) else { return };
    let req = hsm.path("req");
    let good = keys(&req, 3);
    let order8 = req.join("order8.pub");
    small_order_key(&order8);
    let rsa1024 = keygen(&req, "rsa1024", &["-t", "rsa", "-b", "1024"], "weak@laptop");
    let nameless = keygen(&req, "nameless", &["-t", "ed25519"], "");
    // `dup` and `dup.pub` are different keys whose certificates would both be dup-cert.pub.
    let other = keygen(&req, "other", &["-t", "ed25519"], "other@laptop");
    std::fs::copy(&other, req.join("dup")).unwrap();
    let dup = keygen(&req, "dupkey", &["-t", "ed25519"], "dup@laptop");
    std::fs::rename(&dup, req.join("dup.pub")).unwrap();
    // A mint first, so the state directory has a ledger, a lock and checkpoints.
    assert_ok(&hsm.mint(&good[0], &["-n", "breakglass"]), "first mint");
    std::fs::remove_file(cert_path(&good[0])).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (g0, g1, g2) = (s(&good[0]), s(&good[1]), s(&good[2]));
    let cases: Vec<(Vec<String>, i32, String)> = vec![
        (
            vec![g0.clone(), g1.clone(), s(&order8)],
            1,
            format!("key 3 of 3 ({})", s(&order8)),
        ),
        (
            vec![s(&rsa1024), g0.clone(), g1.clone()],
            1,
            format!(
                "key 1 of 3 ({}): the requester's RSA key has 1024 bits",
                s(&rsa1024)
            ),
        ),
        (
            vec![g0.clone(), s(&nameless)],
            1,
            format!(
                "key 2 of 2 ({}): the public key has no comment",
                s(&nameless)
            ),
        ),
        (
            vec![g0.clone(), g1.clone(), g0.clone()],
            1,
            format!("key 3 of 3 ({g0}) is the same public key as key 1 of 3 ({g0})"),
        ),
        (
            vec![s(&req.join("dup")), s(&req.join("dup.pub"))],
            2,
            "would both be written to".into(),
        ),
        (
            vec![g0.clone(), "-".into(), g2.clone(), "-".into()],
            2,
            "'-' (stdin) is given more than once".into(),
        ),
        (
            vec![
                "-o".into(),
                s(&hsm.path("x-cert.pub")),
                g0.clone(),
                g1.clone(),
            ],
            2,
            "-o names one certificate file, but 2 public keys were given".into(),
        ),
        (
            vec![g0.clone(), s(&req.join("missing.pub"))],
            1,
            format!("key 2 of 2 ({})", s(&req.join("missing.pub"))),
        ),
        (
            vec![
                "-O".into(),
                "verify-required".into(),
                g0.clone(),
                g1.clone(),
            ],
            1,
            format!("key 1 of 2 ({g0})"),
        ),
    ];
    for (i, (args, code, needle)) in cases.iter().enumerate() {
        let state = snapshot_state(&hsm.state);
        let inputs = snapshot_state(&req);
        let log = hsm.path(&format!("spy-{i}.log"));
        let out = run(spied(&hsm, &log)
            .args(["mint", "--reason", "INC-42 refused", "-n", "breakglass"])
            .args(args));
        assert_fails(&out, *code, needle);
        let err = stderr(&out);
        assert!(!err.contains("PIN"), "the PIN was asked for:\n{err}");
        assert!(!err.contains("Requesters:"), "{err}");
        assert_eq!(snapshot_state(&hsm.state), state, "state changed: {args:?}");
        assert_eq!(snapshot_state(&req), inputs, "a file was written: {args:?}");
        // Nothing opened: the token module was never even loaded.
        assert_eq!(calls(&log, "C_Initialize"), 0, "{args:?}");
    }
    // The good keys alone still go through, continuing the ledger.
    let out = run(hsm.cmd().args([
        "mint",
        "--reason",
        "INC-42 good",
        "-n",
        "breakglass",
        &g1,
        &g2,
    ]));
    assert_ok(&out, "good batch");
    assert_eq!(listed_serial(&ssh_keygen_list(&cert_path(&good[1]))), 2);
    assert_eq!(listed_serial(&ssh_keygen_list(&cert_path(&good[2]))), 3);
}

/// The lines of the runnable batch example of `mint --help`, run as shown.
#[test]
fn the_help_batch_example_works() {
    let Some(hsm) = setup(&["sh"]) else { return };
    let help = stdout(&run(hsm.cmd().args(["mint", "--help"])));
    let example = help
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("breakglass-ca mint") && l.contains("alice.pub bob.pub"))
        .unwrap_or_else(|| panic!("no batch example in mint --help:\n{help}"))
        .to_string();
    let work = hsm.path("work");
    std::fs::create_dir(&work).unwrap();
    let names: Vec<&str> = example
        .split_whitespace()
        .filter(|w| w.ends_with(".pub"))
        .collect();
    for name in &names {
        let stem = name.strip_suffix(".pub").unwrap();
        keygen(&work, stem, &["-t", "ed25519"], &format!("{stem}@laptop"));
    }
    let path = path_with_binary();
    let out = run(hsm
        .cmd_with("sh")
        .arg("-c")
        .arg(&example)
        .env("PATH", path)
        .current_dir(&work));
    assert_ok(&out, &example);
    for (i, name) in names.iter().enumerate() {
        let cert = cert_path(&work.join(name));
        assert_eq!(listed_serial(&ssh_keygen_list(&cert)), 1 + i as u64);
    }
    // The top-level help shows a batch too.
    let top = stdout(&run(hsm.cmd().arg("--help")));
    assert!(top.contains("alice.pub bob.pub"), "{top}");
}

#[test]
fn sigkill_during_batches_never_leaves_a_certificate_without_its_record() {
    let Some(hsm) = setup(&[]) else { return };
    const KEYS: usize = 4;
    const RUNS: usize = 30;
    let source = keys(&hsm.path("source"), KEYS);
    // Each run gets its own copies of the keys, so its certificates land in its own directory.
    let run_keys = |name: &str| copy_keys(&hsm.path(name), &source);
    let batch = |keys: &[PathBuf]| {
        let mut c = hsm.cmd();
        c.args(["mint", "--reason", "kill test", "-n", "breakglass"])
            .args(keys)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    // How long a whole batch takes here, so kills land everywhere inside one.
    let t = std::time::Instant::now();
    assert_ok(&run(&mut batch(&run_keys("warmup"))), "warm-up batch");
    let span = (t.elapsed().as_micros() as u64).max(1000) * 12 / 10;
    // As in ledger.rs: SoftHSM 2.6 rewrites its store in place at every login, so a SIGKILL
    // there corrupts SoftHSM's own files; they are put back after each kill. Our ledger and
    // certificates are never restored.
    let tokens = hsm.dir.path().join("tokens");
    let snapshot = snapshot_dir(&tokens);
    let mut rng = Lcg(0xba7c4);
    let mut killed = 0;
    let mut dirs = vec![hsm.path("warmup")];
    for i in 0..RUNS {
        let name = format!("run{i}");
        let keys = run_keys(&name);
        dirs.push(hsm.path(&name));
        let mut child = batch(&keys).spawn().unwrap();
        // Half the kills anywhere, half in the last part, where signing, the group commit and
        // the certificate files are.
        let delay = match i % 2 {
            0 => rng.next(span),
            _ => span / 2 + rng.next(span / 2),
        };
        std::thread::sleep(Duration::from_micros(delay));
        if child.try_wait().unwrap().is_none() {
            killed += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        for (rel, content) in &snapshot {
            std::fs::write(tokens.join(rel), content).unwrap();
        }
    }
    let report = verify_ok(&hsm);
    let recorded = ledger_certs(&hsm);
    let mut files = 0;
    let mut seen = BTreeSet::new();
    for dir in &dirs {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with("-cert.pub") || name.starts_with('.') {
                continue; // a key, or a temporary file of a killed write (never renamed)
            }
            files += 1;
            let serial = listed_serial(&ssh_keygen_list(&path));
            assert!(
                seen.insert(serial),
                "serial {serial} in two certificate files"
            );
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(
                recorded.get(&serial).map(String::as_str),
                Some(text.trim()),
                "{} has no matching record",
                path.display()
            );
        }
    }
    // Serials were never reused: the ledger holds 1..n, and a batch after all that
    // continues it.
    let serials: Vec<u64> = recorded.keys().copied().collect();
    assert_eq!(serials, (1..=serials.len() as u64).collect::<Vec<_>>());
    let last = serials.len() as u64;
    let keys = run_keys("after");
    let out = run(hsm
        .cmd()
        .args(["mint", "--reason", "after kills", "-n", "breakglass"])
        .args(&keys));
    assert_ok(&out, "batch after the kills");
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            listed_serial(&ssh_keygen_list(&cert_path(key))),
            last + 1 + i as u64
        );
    }
    verify_ok(&hsm);
    eprintln!(
        "batch kill test: {RUNS} batches of {KEYS}, {killed} killed while running (span {span} us); {} records, {files} certificate files, all matched; verify: {}",
        recorded.len(),
        report.lines().next().unwrap()
    );
    assert!(
        killed > RUNS / 4,
        "too few kills landed inside a batch: {killed}"
    );
}

/// SIGINT at random moments of a 12-key batch: a batch is issued whole or not at all. Between
/// two of its signatures the signal stops it with nothing written (`before certificate K of
/// 12 was signed: nothing was issued`); once the last is signed, everything is recorded and
/// written before the exit says so.
#[test]
fn sigint_during_a_batch_issues_all_of_it_or_nothing() {
    use rustix::process::{kill_process, Pid, Signal};
    use std::os::unix::process::ExitStatusExt;
    let Some(hsm) = setup(&[]) else { return };
    const KEYS: usize = 12;
    const RUNS: usize = 24;
    let source = keys(&hsm.path("source"), KEYS);
    let copy_to = |name: &str| copy_keys(&hsm.path(name), &source);
    let batch = |keys: &[PathBuf]| {
        let mut c = hsm.cmd();
        c.args(["mint", "--reason", "signal test", "-n", "breakglass"])
            .args(keys)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let t = std::time::Instant::now();
    assert_ok(&run(&mut batch(&copy_to("warmup"))), "warm-up batch");
    let span = (t.elapsed().as_micros() as u64).max(1000) * 12 / 10;
    let mut rng = Lcg(0x5167);
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for i in 0..RUNS {
        let keys = copy_to(&format!("run{i}"));
        let before = ledger_certs(&hsm).len();
        let child = batch(&keys).spawn().unwrap();
        let delay = match i % 2 {
            0 => rng.next(span),
            _ => span / 2 + rng.next(span / 2),
        };
        std::thread::sleep(Duration::from_micros(delay));
        let _ = kill_process(Pid::from_child(&child), Signal::INT);
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        let added = ledger_certs(&hsm).len() - before;
        let written = keys.iter().filter(|k| cert_path(k).exists()).count();
        let outcome = match (out.status.code(), out.status.signal()) {
            (Some(0), _) => "issued",
            (None, Some(2)) => "ended by the signal",
            (Some(130), _) if err.contains("after serials") => "interrupted after issuing",
            (Some(130), _) if err.contains("was signed: nothing was issued") => {
                "stopped between signatures"
            }
            (Some(130), _) if err.contains("nothing was issued") => "stopped before signing",
            _ => panic!("unexpected exit {:?}:\n{err}", out.status),
        };
        let whole = match outcome {
            "issued" | "interrupted after issuing" => KEYS,
            _ => 0,
        };
        assert_eq!((added, written), (whole, whole), "{outcome}:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        *outcomes.entry(outcome).or_default() += 1;
    }
    verify_ok(&hsm);
    eprintln!("batch SIGINT test: {RUNS} batches of {KEYS} (span {span} us): {outcomes:?}");
}
