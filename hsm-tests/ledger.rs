//! The ledger against real processes: concurrent mints on one state dir, mints killed with
//! SIGKILL at random moments, checkpoints checked by `ssh-keygen -Y verify`, and an exported
//! bundle verified without the token.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

fn setup() -> Option<(Hsm, std::path::PathBuf)> {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return None;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let key = keygen(hsm.dir.path(), "req", &["-t", "ed25519"], "alice@laptop");
    Some((hsm, key))
}

/// serial -> certificate line, from `log --json`.
fn ledger_certs(hsm: &Hsm) -> BTreeMap<u64, String> {
    let out = run(hsm.cmd().args(["log", "--json"]));
    assert_ok(&out, "log --json");
    stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["serial"].as_u64().unwrap(),
                v["certificate"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verify_ok(hsm: &Hsm) -> String {
    let out = run(hsm.cmd().args(["log", "verify"]));
    assert_ok(&out, "log verify");
    stdout(&out)
}

#[test]
fn eight_concurrent_writers_never_share_a_serial() {
    let Some((hsm, key)) = setup() else { return };
    const WRITERS: usize = 8;
    const EACH: usize = 50;
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (hsm, key) = (&hsm, &key);
            s.spawn(move || {
                for i in 0..EACH {
                    let out = hsm.mint(
                        key,
                        &[
                            "-n",
                            "breakglass",
                            "-o",
                            "-",
                            "--requester",
                            &format!("writer{w}-{i}"),
                        ],
                    );
                    assert_ok(&out, &format!("writer {w} mint {i}"));
                }
            });
        }
    });
    let certs = ledger_certs(&hsm);
    assert_eq!(certs.len(), WRITERS * EACH);
    assert_eq!(
        certs.keys().copied().collect::<Vec<_>>(),
        (1..=(WRITERS * EACH) as u64).collect::<Vec<_>>()
    );
    let distinct: BTreeSet<&String> = certs.values().collect();
    assert_eq!(distinct.len(), WRITERS * EACH);
    let report = verify_ok(&hsm);
    assert!(
        report.contains("400 record(s)") && report.contains("the newest covers serial 400"),
        "{report}"
    );
    eprintln!(
        "concurrency: {WRITERS} writers x {EACH} mints -> {} distinct serials; {}",
        certs.len(),
        report.lines().next().unwrap()
    );
}

/// A tiny deterministic generator, so a failing run can be repeated.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_record_and_reuses_no_serial() {
    let Some((hsm, key)) = setup() else { return };
    let certs = hsm.path("certs");
    std::fs::create_dir(&certs).unwrap();
    // How long a whole mint takes here, so kills land everywhere inside one.
    let t = std::time::Instant::now();
    assert_ok(
        &hsm.mint(
            &key,
            &[
                "-n",
                "breakglass",
                "-o",
                certs.join("warmup-cert.pub").to_str().unwrap(),
            ],
        ),
        "warm-up mint",
    );
    let span = (t.elapsed().as_micros() as u64).max(1000) * 12 / 10;
    // SoftHSM 2.6 rewrites its token.object in place at every login, so a SIGKILL in that
    // instant corrupts SoftHSM's own store (a hardware token's is atomic). The key material
    // never changes during a mint, so the token files are put back after each kill: what this
    // test checks is our ledger and certificates, which are never restored.
    let tokens = hsm.dir.path().join("tokens");
    let snapshot = snapshot_dir(&tokens);
    const RUNS: usize = 150;
    let mut rng = Lcg(0x5eed);
    let mut killed_before_exit = 0;
    for i in 0..RUNS {
        let out = certs.join(format!("{i}-cert.pub"));
        let mut child = hsm
            .cmd()
            .args(["mint", "--reason", "kill test", "-n", "breakglass", "-o"])
            .arg(&out)
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.next(span)));
        if child.try_wait().unwrap().is_none() {
            killed_before_exit += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        restore_dir(&snapshot, &tokens);
    }
    // The survivors' state: chain intact (a torn tail at most a warning), every certificate file
    // that exists has its record, and no serial twice.
    let report = verify_ok(&hsm);
    let recorded = ledger_certs(&hsm);
    let mut files = 0;
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&certs).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with("-cert.pub") || name.starts_with('.') {
            continue; // a temporary file of a killed write: never renamed, so never handed out
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
            "{name} has no matching record"
        );
    }
    // A mint after all that continues the chain with the next serial.
    let last = *recorded.keys().last().unwrap();
    let out = hsm.mint(&key, &["-n", "breakglass", "-o", "-"]);
    assert_ok(&out, "mint after the kills");
    assert!(
        stderr(&out).contains(&format!("Issued serial {}", last + 1)),
        "{}",
        stderr(&out)
    );
    verify_ok(&hsm);
    eprintln!(
        "kill test: {RUNS} mints, {killed_before_exit} killed while running (span {span} us); {} records, {files} certificate files, all matched; verify: {}",
        recorded.len(),
        report.lines().next().unwrap()
    );
    assert!(
        killed_before_exit > RUNS / 4,
        "too few kills landed inside a mint: {killed_before_exit}"
    );
}

/// Every file under `dir`, relative path -> content.
fn snapshot_dir(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out
}

fn restore_dir(snapshot: &[(std::path::PathBuf, Vec<u8>)], dir: &Path) {
    for (rel, content) in snapshot {
        std::fs::write(dir.join(rel), content).unwrap();
    }
}

#[test]
fn checkpoints_verify_with_ssh_keygen_and_bundles_verify_without_the_token() {
    let Some((hsm, key)) = setup() else { return };
    for _ in 0..3 {
        assert_ok(&hsm.mint(&key, &["-n", "breakglass", "-o", "-"]), "mint");
    }
    let bundle = hsm.path("bundle");
    let out = run(hsm.cmd().args(["log", "export", "-o"]).arg(&bundle));
    assert_ok(&out, "log export");
    for f in [
        "ledger.jsonl",
        "checkpoints.jsonl",
        "ca.pub",
        "allowed_signers",
        "VERIFY.txt",
        "checkpoint-latest.msg",
        "checkpoint-latest.sig",
    ] {
        assert!(bundle.join(f).exists(), "bundle lacks {f}");
    }
    // The auditor's OpenSSH-only check, as VERIFY.txt tells it.
    let msg = std::fs::read_to_string(bundle.join("checkpoint-latest.msg")).unwrap();
    assert!(msg.contains("serial 3\n"), "{msg}");
    let line3 = std::fs::read_to_string(bundle.join("ledger.jsonl"))
        .unwrap()
        .lines()
        .nth(2)
        .unwrap()
        .to_string();
    use sha2::Digest;
    let head: String = sha2::Sha256::digest(line3.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(msg.contains(&format!("head {head}\n")), "{msg} vs {head}");
    let verify = Command::new("sh")
        .arg("-c")
        .arg("ssh-keygen -Y verify -f allowed_signers -I breakglass-ca -n breakglass-ca-ledger -s checkpoint-latest.sig < checkpoint-latest.msg")
        .current_dir(&bundle)
        .output()
        .unwrap();
    assert_ok(&verify, "ssh-keygen -Y verify");
    assert!(
        stdout(&verify).contains("Good \"breakglass-ca-ledger\" signature"),
        "{}",
        stdout(&verify)
    );

    // Another machine: no token, no state dir, only the bundle.
    let out = Command::new(env!("CARGO_BIN_EXE_breakglass-ca"))
        .args(["--state-dir", "/nonexistent", "log", "verify", "--bundle"])
        .arg(&bundle)
        .env_remove("SOFTHSM2_CONF")
        .output()
        .unwrap();
    assert_ok(&out, "log verify --bundle");
    assert!(
        stdout(&out).contains("ledger OK: 3 record(s)"),
        "{}",
        stdout(&out)
    );

    // A tampered bundle fails, naming the record.
    let ledger = bundle.join("ledger.jsonl");
    let text = std::fs::read_to_string(&ledger).unwrap();
    std::fs::write(
        &ledger,
        text.replacen("\"reason\":\"INC-42 test\"", "\"reason\":\"routine\"", 1),
    )
    .unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_breakglass-ca"))
        .args(["log", "verify", "--bundle"])
        .arg(&bundle));
    assert_fails(&out, 1, "serial 1 was edited");
}

#[test]
fn log_lists_shows_and_refuses_a_tampered_ledger() {
    let Some((hsm, key)) = setup() else { return };
    let mut c = hsm.cmd();
    c.args([
        "mint",
        "-n",
        "breakglass,root",
        "--reason",
        "INC-7 disk full",
        "-o",
        "-",
    ])
    .arg(&key);
    assert_ok(&run(&mut c), "mint");
    let out = run(hsm.cmd().arg("log"));
    assert_ok(&out, "log");
    let table = stdout(&out);
    assert!(
        table.contains("SERIAL")
            && table.contains("breakglass,root")
            && table.contains("INC-7 disk full"),
        "{table}"
    );
    let out = run(hsm.cmd().args(["log", "show", "1"]));
    assert_ok(&out, "log show 1");
    assert!(
        stdout(&out).contains("\"key_id\": \"alice@laptop#1:INC-7-disk-full\"")
            && stdout(&out).contains("Serial: 1")
    );
    assert_fails(
        &run(hsm.cmd().args(["log", "show", "9"])),
        2,
        "no record with serial 9",
    );
    // Edit the ledger: verify names it, status reports it, mint refuses to extend it.
    let path = hsm.state.join("ledger.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("INC-7 disk full", "INC-8 routine")).unwrap();
    assert_fails(
        &run(hsm.cmd().args(["log", "verify"])),
        1,
        "differs from what the token signed",
    );
    // mint compares the newest record with the token's newest checkpoint, and refuses.
    let out = hsm.mint(&key, &["-n", "breakglass", "-o", "-"]);
    assert_fails(
        &out,
        1,
        "record serial 1 differs from what the token signed",
    );
    assert_fails(&run(hsm.cmd().arg("status")), 1, "status found problems");
}

#[test]
fn output_dash_is_stdout_and_devices_are_never_replaced() {
    let Some((hsm, key)) = setup() else { return };
    let out = hsm.mint(&key, &["-n", "breakglass", "-o", "-"]);
    assert_ok(&out, "mint -o -");
    assert!(stdout(&out).starts_with("ssh-ed25519-cert-v01@openssh.com "));
    assert!(!Path::new("-").exists());
    let link = hsm.path("link-cert.pub");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    let out = hsm.mint(&key, &["-n", "breakglass", "-o", link.to_str().unwrap()]);
    assert_fails(&out, 2, "is a symbolic link, not a regular file");
    assert!(
        !stderr(&out).contains("Issued serial"),
        "refused before a serial was spent"
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn records_cut_off_the_end_never_get_their_serials_reissued() {
    let Some((hsm, key)) = setup() else { return };
    for _ in 0..3 {
        assert_ok(&hsm.mint(&key, &["-n", "breakglass", "-o", "-"]), "mint");
    }
    let path = hsm.state.join("ledger.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, kept).unwrap();
    let out = hsm.mint(&key, &["-n", "breakglass", "-o", "-"]);
    assert_fails(
        &out,
        1,
        "the token signed the ledger up to serial 3, but it now ends at serial 2",
    );
    assert_fails(&run(hsm.cmd().arg("status")), 1, "status found problems");
    assert_fails(
        &run(hsm.cmd().args(["log", "verify"])),
        1,
        "covers serial 3, but the ledger ends at serial 2",
    );
}

#[test]
fn a_replaced_ca_starts_a_fresh_ledger_and_the_old_one_is_kept() {
    let Some((hsm, key)) = setup() else { return };
    assert_ok(
        &hsm.mint(&key, &["-n", "breakglass", "-o", "-"]),
        "mint with the first CA",
    );
    assert_ok(
        &run(hsm.cmd().args(["--ca", &hsm.uri(), "init", "--force"])),
        "init --force",
    );
    let out = hsm.mint(&key, &["-n", "breakglass", "-o", "-"]);
    assert_ok(&out, "mint with the new CA");
    assert!(
        stderr(&out).contains("Issued serial 1 "),
        "{}",
        stderr(&out)
    );
    verify_ok(&hsm);
    let retired: Vec<String> = std::fs::read_dir(&hsm.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-retired-"))
        .collect();
    assert_eq!(
        retired.len(),
        4,
        "ledger, checkpoints, ca.pub and config.toml: {retired:?}"
    );
    let out = run(hsm.cmd().args(["pubkey", "-o", "-"]));
    assert!(stdout(&out).starts_with("ecdsa-sha2-nistp256 ") && !Path::new("-").exists());
}
