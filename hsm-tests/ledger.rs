//! The ledger against real processes: concurrent mints on one state dir, mints killed with
//! SIGKILL at random moments, an exported bundle verified without the token and by the
//! auditor's script of docs/ledger.md, and a cut ledger shown by an earlier bundle.

use std::collections::BTreeSet;
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
        report.contains("400 record(s)")
            && report.contains("bound: 400 record(s), serials 1 to 400"),
        "{report}"
    );
    eprintln!(
        "concurrency: {WRITERS} writers x {EACH} mints -> {} distinct serials; {}",
        certs.len(),
        report.lines().next().unwrap()
    );
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

#[test]
fn bundles_verify_without_the_token_and_with_the_auditors_script() {
    let Some((hsm, key)) = setup() else { return };
    if !require(&["jq", "sha256sum", "od", "sh"]) {
        return;
    }
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
    ] {
        assert!(bundle.join(f).exists(), "bundle lacks {f}");
    }
    // A bound ledger has no checkpoint to hand over.
    assert_eq!(
        std::fs::read(bundle.join("checkpoints.jsonl")).unwrap(),
        b""
    );
    assert!(!bundle.join("checkpoint-latest.msg").exists());
    let howto = std::fs::read_to_string(bundle.join("VERIFY.txt")).unwrap();
    assert!(howto.contains("ledger-binding-v1@breakglass-ca"), "{howto}");

    // The auditor's script of docs/ledger.md, as printed there.
    let out = run_auditor_script(&bundle);
    assert_ok(&out, "the auditor's script");
    assert!(
        stdout(&out).contains("chain intact: 3 record(s); 0 old-format")
            && stdout(&out).contains("3 bound"),
        "{}",
        stdout(&out)
    );

    // Another machine: no token, no state dir, only the bundle.
    let verify_bundle = |dir: &Path| {
        run(Command::new(env!("CARGO_BIN_EXE_breakglass-ca"))
            .args(["--state-dir", "/nonexistent", "log", "verify", "--bundle"])
            .arg(dir)
            .env_remove("SOFTHSM2_CONF"))
    };
    let out = verify_bundle(&bundle);
    assert_ok(&out, "log verify --bundle");
    assert!(
        stdout(&out).contains("ledger OK: 3 record(s)")
            && stdout(&out).contains("bound: 3 record(s), serials 1 to 3"),
        "{}",
        stdout(&out)
    );

    // Tampered bundles fail, in both, naming the record. The first record's reason, alone:
    let text = std::fs::read_to_string(bundle.join("ledger.jsonl")).unwrap();
    let tampered = |name: &str, ledger: String| {
        let dir = hsm.path(name);
        std::fs::create_dir(&dir).unwrap();
        for f in ["checkpoints.jsonl", "ca.pub", "allowed_signers"] {
            std::fs::copy(bundle.join(f), dir.join(f)).unwrap();
        }
        std::fs::write(dir.join("ledger.jsonl"), ledger).unwrap();
        dir
    };
    let alone = tampered(
        "alone",
        text.replacen("\"reason\":\"INC-42 test\"", "\"reason\":\"routine\"", 1),
    );
    assert_fails(
        &verify_bundle(&alone),
        1,
        "record serial 1 (line 1): its reason differs from its signed metadata",
    );
    let out = run_auditor_script(&alone);
    assert!(
        !out.status.success()
            && stdout(&out).contains("FAILED: line 1: the record differs from its metadata"),
        "{}",
        stdout(&out)
    );
    // ...and in its metadata too (consistent, without the token): the binding tells.
    let both = tampered("both", text.replacen("INC-42 test", "INC-43 test", 2));
    assert_fails(
        &verify_bundle(&both),
        1,
        "record serial 1 (line 1): its metadata is not what the token signed",
    );
    let out = run_auditor_script(&both);
    assert!(
        !out.status.success()
            && stdout(&out).contains(
                "FAILED: line 1: the certificate does not carry the hash of the record's metadata"
            ),
        "{}",
        stdout(&out)
    );
    // A certificate whose signature was damaged: ssh-keygen -L refuses it.
    let r: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
    let cert = r["certificate"].as_str().unwrap();
    let blob = cert.split(' ').nth(1).unwrap();
    let last = blob.len() - 6;
    let flipped = if &blob[last..last + 1] == "A" {
        "B"
    } else {
        "A"
    };
    let bad_cert = format!("{}{flipped}{}", &blob[..last], &blob[last + 1..]);
    let broken = tampered("sig", text.replace(blob, &bad_cert));
    assert_fails(&verify_bundle(&broken), 1, "record serial 3 (line 3)");
    let out = run_auditor_script(&broken);
    assert!(
        !out.status.success() && stdout(&out).contains("FAILED: line 3:"),
        "{}",
        stdout(&out)
    );
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
        "record serial 1 (line 1): its metadata is not what the token signed",
    );
    // mint checks the newest record against its certificate's binding, and refuses.
    let out = hsm.mint(&key, &["-n", "breakglass", "-o", "-"]);
    assert_fails(
        &out,
        1,
        "the ledger's newest record (serial 1) does not verify: its metadata is not what the token signed",
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
fn records_cut_off_the_end_show_against_an_earlier_bundle() {
    // The one thing the ledger cannot show alone (docs/ledger.md section 4): the newest bound
    // records cut off. An earlier bundle shows it, with the commands of section 7.3.
    let Some((hsm, key)) = setup() else { return };
    for _ in 0..3 {
        assert_ok(&hsm.mint(&key, &["-n", "breakglass", "-o", "-"]), "mint");
    }
    let old = hsm.path("bundle-old");
    assert_ok(
        &run(hsm.cmd().args(["log", "export", "-o"]).arg(&old)),
        "log export",
    );
    let prefix_check = |new: &Path| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(r#"head -c "$(wc -c < "$1/ledger.jsonl")" "$2/ledger.jsonl" | cmp - "$1/ledger.jsonl" &&
  head -c "$(wc -c < "$1/checkpoints.jsonl")" "$2/checkpoints.jsonl" | cmp - "$1/checkpoints.jsonl" &&
  echo "the old bundle is a prefix of the new one""#)
            .arg("sh")
            .arg(&old)
            .arg(new)
            .output()
            .unwrap();
        out.status.success()
    };
    assert_ok(&hsm.mint(&key, &["-n", "breakglass", "-o", "-"]), "mint 4");
    let new = hsm.path("bundle-new");
    assert_ok(
        &run(hsm.cmd().args(["log", "export", "-o"]).arg(&new)),
        "log export",
    );
    assert!(
        prefix_check(&new),
        "an intact ledger continues its old bundle"
    );
    // Cut serials 3 and 4: the ledger alone still verifies...
    let path = hsm.state.join("ledger.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, kept).unwrap();
    assert!(verify_ok(&hsm).contains("ledger OK: 2 record(s)"));
    // ...but not against the earlier bundle.
    let cut = hsm.path("bundle-cut");
    assert_ok(
        &run(hsm.cmd().args(["log", "export", "-o"]).arg(&cut)),
        "log export",
    );
    assert!(
        !prefix_check(&cut),
        "the cut ledger passed the prefix check"
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
        3,
        "ledger, ca.pub and config.toml (a bound ledger has no checkpoints): {retired:?}"
    );
    let out = run(hsm.cmd().args(["pubkey", "-o", "-"]));
    assert!(stdout(&out).starts_with("ecdsa-sha2-nistp256 ") && !Path::new("-").exists());
}
