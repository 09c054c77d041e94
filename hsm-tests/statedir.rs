//! The state directory against a careless custodian and a hostile neighbour: `init` never
//! takes over a live CA, retired sets are never overwritten, files are private whatever the
//! umask, links are never followed, outputs never land inside it, and every refusal leaves it
//! byte-for-byte unchanged (the ledger's repairs included).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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

fn mint_ok(hsm: &Hsm, key: &Path) -> String {
    let out = hsm.mint(key, &["-n", "breakglass", "-o", "-"]);
    assert_ok(&out, "mint");
    stderr(&out)
}

/// Run `c`, which must fail with `code` and `needle`, and leave the state directory as it was.
fn refused_unchanged(hsm: &Hsm, c: &mut std::process::Command, code: i32, needle: &str) {
    let before = snapshot_state(&hsm.state);
    let out = run(c);
    assert_fails(&out, code, needle);
    assert!(stderr(&out).contains("hint:"), "no hint:\n{}", stderr(&out));
    assert!(!stderr(&out).contains("Issued serial"), "{}", stderr(&out));
    assert_eq!(
        snapshot_state(&hsm.state),
        before,
        "the refusal '{needle}' changed the state directory"
    );
}

#[test]
fn init_in_a_live_state_directory_refuses_whatever_the_token_holds() {
    let Some((hsm, key)) = setup() else { return };
    mint_ok(&hsm, &key);
    // A blank token (initialised, no key) in the reader, and init without --force.
    hsm.add_token("blank");
    let blank = format!("pkcs11:token=blank?module-path={MODULE}");
    refused_unchanged(
        &hsm,
        hsm.cmd().args(["--ca", &blank, "init"]),
        1,
        "already holds a CA",
    );
    // Only ca.pub, or only the ledger, is a live CA too.
    let cfg = hsm.state.join("config.toml");
    let aside = hsm.path("config.toml.aside");
    std::fs::rename(&cfg, &aside).unwrap();
    refused_unchanged(
        &hsm,
        hsm.cmd().args(["--ca", &blank, "init"]),
        1,
        "ca.pub, ledger.jsonl with 1 record(s)",
    );
    std::fs::rename(&aside, &cfg).unwrap();
    // The blank token's hint no longer says to run init here.
    let out = run(hsm.cmd().args(["--ca", &blank, "status"]));
    assert_fails(&out, 1, "no CA key matching the URI");
    let err = stderr(&out);
    assert!(
        err.contains("NEW-DIR") && err.contains("right token"),
        "{err}"
    );
    // A new state directory for the blank token works.
    let other = hsm.path("other-state");
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA_STATE_DIR", &other)
        .args(["--ca", &blank, "init"]));
    assert_ok(&out, "init in a new state directory");
    // And the live CA still mints, from serial 2.
    assert!(mint_ok(&hsm, &key).contains("Issued serial 2 "));
}

#[test]
fn retirements_keep_config_toml_and_never_overwrite_an_earlier_set() {
    let Some((hsm, key)) = setup() else { return };
    let config_1 = std::fs::read(hsm.state.join("config.toml")).unwrap();
    mint_ok(&hsm, &key);
    let ledger_1 = std::fs::read(hsm.state.join("ledger.jsonl")).unwrap();
    // Two retirements as fast as the token allows (often within one second).
    for _ in 0..2 {
        let out = run(hsm.cmd().args(["--ca", &hsm.uri(), "init", "--force"]));
        assert_ok(&out, "init --force");
        assert!(stderr(&out).contains("-retired-"), "{}", stderr(&out));
    }
    let retired: Vec<String> = std::fs::read_dir(&hsm.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-retired-"))
        .collect();
    // First set: ledger, ca.pub, config.toml (a bound ledger has no checkpoints). Second:
    // ca.pub and config.toml (that CA issued nothing).
    assert_eq!(retired.len(), 5, "{retired:?}");
    let configs: Vec<Vec<u8>> = retired
        .iter()
        .filter(|n| n.starts_with("config-retired-"))
        .map(|n| std::fs::read(hsm.state.join(n)).unwrap())
        .collect();
    assert_eq!(configs.len(), 2);
    assert!(
        configs.contains(&config_1),
        "the first config.toml was lost"
    );
    let ledgers: Vec<Vec<u8>> = retired
        .iter()
        .filter(|n| n.starts_with("ledger-retired-"))
        .map(|n| std::fs::read(hsm.state.join(n)).unwrap())
        .collect();
    assert_eq!(ledgers, [ledger_1]);
    assert!(mint_ok(&hsm, &key).contains("Issued serial 1 "));
}

#[test]
fn state_files_are_private_whatever_the_umask() {
    if !require(&["softhsm2-util", "ssh-keygen", "sh", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let key = keygen(hsm.dir.path(), "req", &["-t", "ed25519"], "alice@laptop");
    let under_umask = |umask: &str, args: &[&str]| {
        let mut c = hsm.cmd_with("sh");
        c.arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_breakglass-ca"))
            .args(args);
        run(&mut c)
    };
    assert_ok(
        &under_umask("000", &["--ca", &hsm.uri(), "init"]),
        "init (umask 000)",
    );
    let key_s = key.to_str().unwrap().to_string();
    assert_ok(
        &under_umask(
            "000",
            &["mint", "--reason", "r", "-n", "breakglass", &key_s],
        ),
        "mint (umask 000)",
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&hsm.state), 0o700, "state directory");
    for name in ["config.toml", "ca.pub", "ledger.jsonl", "ledger.lock"] {
        assert_eq!(mode(&hsm.state.join(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&cert_path(&key)), 0o644, "the certificate");
    // A umask that takes the owner's rights away changes nothing either.
    let other = hsm.path("state-2");
    let mut c = hsm.cmd_with("sh");
    c.env("BREAKGLASS_CA_STATE_DIR", &other)
        .arg("-c")
        .arg("umask 0277; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_breakglass-ca"))
        .args(["--ca", &hsm.uri(), "init", "--force"]);
    assert_ok(&run(&mut c), "init (umask 0277)");
    assert_eq!(mode(&other), 0o700);
    assert_eq!(mode(&other.join("config.toml")), 0o600);
}

#[test]
fn outputs_inside_the_state_directory_are_refused_before_anything_is_issued() {
    let Some((hsm, key)) = setup() else { return };
    mint_ok(&hsm, &key);
    let st = |name: &str| hsm.state.join(name).to_str().unwrap().to_string();
    let key_s = key.to_str().unwrap().to_string();
    for args in [
        vec![
            "mint",
            "--reason",
            "r",
            "-n",
            "x",
            "-o",
            &st("ledger.jsonl"),
            &key_s,
        ],
        vec![
            "mint",
            "--reason",
            "r",
            "-n",
            "x",
            "-o",
            &st("new-cert.pub"),
            &key_s,
        ],
        vec!["pubkey", "-o", &st("ca.pub")],
        vec!["pubkey", "--format", "png", "-o", &st("qr.png")],
        vec!["log", "export", "-o", &st("bundle")],
        vec!["host-config", "--user", "breakglass", "--out", &st("hosts")],
    ] {
        refused_unchanged(
            &hsm,
            hsm.cmd().args(&args),
            2,
            "is inside the state directory",
        );
    }
    // Through a link to the state directory, too.
    let link = hsm.path("link");
    std::os::unix::fs::symlink(&hsm.state, &link).unwrap();
    let through = link.join("ledger.jsonl");
    refused_unchanged(
        &hsm,
        hsm.cmd()
            .args(["mint", "--reason", "r", "-n", "x", "-o"])
            .arg(&through)
            .arg(&key),
        2,
        "is inside the state directory",
    );
    // An output directory that does not exist is refused before a serial is spent.
    refused_unchanged(
        &hsm,
        hsm.cmd()
            .args(["mint", "--reason", "r", "-n", "x", "-o"])
            .arg(hsm.path("no/such/dir/cert.pub"))
            .arg(&key),
        2,
        "does not exist",
    );
}

#[test]
fn links_in_the_state_directory_are_never_followed() {
    let Some((hsm, key)) = setup() else { return };
    mint_ok(&hsm, &key);
    // A bound ledger has no checkpoints.jsonl; one that is there (an old ledger's) is read.
    std::fs::write(hsm.state.join("checkpoints.jsonl"), b"").unwrap();
    std::fs::set_permissions(
        hsm.state.join("checkpoints.jsonl"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    for name in [
        "ledger.jsonl",
        "checkpoints.jsonl",
        "ledger.lock",
        "config.toml",
    ] {
        let path = hsm.state.join(name);
        let real = hsm.path(&format!("real-{name}"));
        std::fs::rename(&path, &real).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        let content = std::fs::read(&real).unwrap();
        refused_unchanged(
            &hsm,
            hsm.cmd()
                .args(["mint", "--reason", "r", "-n", "x", "-o", "-"])
                .arg(&key),
            1,
            &format!("{name} is a symbolic link; refusing to follow it"),
        );
        assert_eq!(std::fs::read(&real).unwrap(), content, "{name} was changed");
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&real, &path).unwrap();
    }
    // ca.pub for log verify, and the ledger for status.
    let path = hsm.state.join("ca.pub");
    let real = hsm.path("real-ca.pub");
    std::fs::rename(&path, &real).unwrap();
    std::os::unix::fs::symlink(&real, &path).unwrap();
    refused_unchanged(
        &hsm,
        hsm.cmd().args(["log", "verify"]),
        1,
        "ca.pub is a symbolic link",
    );
    std::fs::remove_file(&path).unwrap();
    std::fs::rename(&real, &path).unwrap();
    assert!(mint_ok(&hsm, &key).contains("Issued serial 2 "));
}

#[test]
fn a_state_directory_or_config_others_can_write_is_refused() {
    let Some((hsm, key)) = setup() else { return };
    std::fs::set_permissions(&hsm.state, std::fs::Permissions::from_mode(0o770)).unwrap();
    for args in [vec!["status"], vec!["pubkey"], vec!["log", "verify"]] {
        refused_unchanged(
            &hsm,
            hsm.cmd().args(&args),
            1,
            "can be changed by its group",
        );
    }
    let out = hsm.mint(&key, &["-n", "breakglass", "-o", "-"]);
    assert_fails(&out, 1, "can be changed by its group");
    assert!(
        stderr(&out).contains(&format!("chmod 700 {}", hsm.state.display())),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(&hsm.state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let cfg = hsm.state.join("config.toml");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o646)).unwrap();
    let out = run(hsm.cmd().arg("status"));
    assert_fails(&out, 1, "can be changed by all users");
    assert!(
        stderr(&out).contains(&format!("chmod 600 {}", cfg.display())),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(mint_ok(&hsm, &key).contains("Issued serial 1 "));
}

#[test]
fn a_removed_checkpoint_file_is_an_error_until_a_bound_record_covers_the_old_ones() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    // A 0.1.0 ledger (format 1) needs its checkpoints with checkpoints = true.
    let hsm = fixture_0_1_0();
    let key = keygen(hsm.dir.path(), "req", &["-t", "ed25519"], "alice@laptop");
    let cps = std::fs::read(hsm.state.join("checkpoints.jsonl")).unwrap();
    std::fs::remove_file(hsm.state.join("checkpoints.jsonl")).unwrap();
    refused_unchanged(
        &hsm,
        hsm.cmd()
            .args(["mint", "--reason", "r", "-n", "x", "-o", "-"])
            .arg(&key),
        1,
        "checkpoints.jsonl is missing",
    );
    assert_fails(&run(hsm.cmd().arg("status")), 1, "status found problems");
    let out = run(hsm.cmd().arg("status"));
    assert!(stdout(&out).contains("is missing"), "{}", stdout(&out));
    refused_unchanged(
        &hsm,
        hsm.cmd().args(["log", "verify"]),
        1,
        "checkpoints.jsonl is missing",
    );
    // Restored, and continued by a bound record: its signed link covers the old records,
    // so their checkpoints are no longer needed.
    std::fs::write(hsm.state.join("checkpoints.jsonl"), &cps).unwrap();
    std::fs::set_permissions(
        hsm.state.join("checkpoints.jsonl"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert!(mint_ok(&hsm, &key).contains("Issued serial 4 "));
    std::fs::remove_file(hsm.state.join("checkpoints.jsonl")).unwrap();
    assert_ok(&run(hsm.cmd().arg("status")), "status");
    let out = run(hsm.cmd().args(["log", "verify"]));
    assert_ok(&out, "log verify");
    assert!(
        stdout(&out).contains(
            "old format (no ledger binding): 3 record(s), serials 1 to 3; checkpoints: 0"
        ) && stdout(&out).contains("bound: 1 record(s), serials 4 to 4"),
        "{}",
        stdout(&out)
    );
    assert!(mint_ok(&hsm, &key).contains("Issued serial 5 "));
}

#[test]
fn a_blank_line_is_damage_for_mint_status_and_verify() {
    let Some((hsm, key)) = setup() else { return };
    mint_ok(&hsm, &key);
    let path = hsm.state.join("ledger.jsonl");
    let mut text = std::fs::read(&path).unwrap();
    text.extend_from_slice(b"\n");
    std::fs::write(&path, &text).unwrap();
    refused_unchanged(
        &hsm,
        hsm.cmd()
            .args(["mint", "--reason", "r", "-n", "x", "-o", "-"])
            .arg(&key),
        1,
        "damaged at line 2: a blank line",
    );
    refused_unchanged(&hsm, hsm.cmd().arg("status"), 1, "damaged at line 2");
    refused_unchanged(
        &hsm,
        hsm.cmd().args(["log", "verify"]),
        1,
        "line 2 is not a ledger record",
    );
}

#[test]
fn a_refused_mint_never_repairs_and_a_complete_record_is_never_cut() {
    let Some((hsm, key)) = setup() else { return };
    mint_ok(&hsm, &key);
    mint_ok(&hsm, &key);
    let path = hsm.state.join("ledger.jsonl");
    // Serial 2's record loses only its final newline.
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() - 1]).unwrap();
    // A mint refused after the lock (wrong PIN) changes nothing: no newline added.
    let wrong = hsm.path("wrong-pin");
    std::fs::write(&wrong, "000000\n").unwrap();
    refused_unchanged(
        &hsm,
        hsm.cmd()
            .arg("--pin-file")
            .arg(&wrong)
            .args(["mint", "--reason", "r", "-n", "x", "-o", "-"])
            .arg(&key),
        1,
        "wrong PIN",
    );
    // status and verify count serial 2; the next mint is serial 3 and restores the newline.
    let out = run(hsm.cmd().arg("status"));
    assert_ok(&out, "status");
    assert!(stdout(&out).contains("last serial 2"), "{}", stdout(&out));
    let out = hsm.mint(&key, &["-n", "breakglass", "-o", "-"]);
    assert_ok(&out, "mint");
    let err = stderr(&out);
    assert!(err.contains("Issued serial 3 "), "{err}");
    assert!(
        err.contains("serial 2) had lost its final newline"),
        "{err}"
    );
    assert!(std::fs::read(&path).unwrap().starts_with(&text));
    assert_ok(&run(hsm.cmd().args(["log", "verify"])), "log verify");

    // A torn fragment: a refused mint leaves it in place and saves nothing...
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"serial\":4,\"key_id\":\"half").unwrap();
    drop(f);
    refused_unchanged(
        &hsm,
        hsm.cmd()
            .arg("--pin-file")
            .arg(&wrong)
            .args(["mint", "--reason", "r", "-n", "x", "-o", "-"])
            .arg(&key),
        1,
        "wrong PIN",
    );
    // ... and the next issued mint saves it aside (0600) before cutting it.
    let out = hsm.mint(&key, &["-n", "breakglass", "-o", "-"]);
    assert_ok(&out, "mint");
    assert!(
        stderr(&out).contains("Issued serial 4 "),
        "{}",
        stderr(&out)
    );
    let torn: Vec<_> = std::fs::read_dir(&hsm.state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("ledger.torn-"))
        .collect();
    assert_eq!(torn.len(), 1);
    assert_eq!(
        std::fs::read(&torn[0]).unwrap(),
        b"{\"serial\":4,\"key_id\":\"half"
    );
    assert_eq!(
        std::fs::metadata(&torn[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_ok(&run(hsm.cmd().args(["log", "verify"])), "log verify");
}

#[test]
fn log_export_writes_exactly_what_it_verified() {
    let Some((hsm, key)) = setup() else { return };
    mint_ok(&hsm, &key);
    mint_ok(&hsm, &key);
    let bundle = hsm.path("bundle");
    let out = run(hsm.cmd().args(["log", "export", "-o"]).arg(&bundle));
    assert_ok(&out, "log export");
    for name in ["ledger.jsonl", "checkpoints.jsonl"] {
        assert_eq!(
            std::fs::read(bundle.join(name)).unwrap(),
            std::fs::read(hsm.state.join(name)).unwrap_or_default(),
            "{name}"
        );
    }
    // A state directory that fails verification exports nothing.
    let path = hsm.state.join("ledger.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("INC-42 test", "INC-43 test", 1)).unwrap();
    let second = hsm.path("bundle-2");
    refused_unchanged(
        &hsm,
        hsm.cmd().args(["log", "export", "-o"]).arg(&second),
        1,
        "record serial 1 (line 1): its reason differs from its signed metadata",
    );
    assert!(!second.exists());
}

#[test]
fn old_state_directory_verifies_and_is_continued_by_bound_records() {
    if !require(&[
        "softhsm2-util",
        "ssh-keygen",
        "jq",
        "sha256sum",
        "od",
        "sh",
        MODULE,
    ]) {
        return;
    }
    let hsm = fixture_0_1_0();
    let before = |name: &str| std::fs::read(hsm.state.join(name)).unwrap();
    let (ledger_0, cps_0) = (before("ledger.jsonl"), before("checkpoints.jsonl"));
    let out = run(hsm.cmd().args(["log", "verify"]));
    assert_ok(&out, "log verify of the 0.1.0 ledger");
    assert_eq!(
        stdout(&out).lines().skip(1).collect::<Vec<_>>(),
        ["old format (no ledger binding): 3 record(s), serials 1 to 3; checkpoints: 3 signed by the CA token; the newest covers serial 3"],
        "{}",
        stdout(&out)
    );
    assert_ok(&run(hsm.cmd().arg("status")), "status");
    let key = keygen(hsm.dir.path(), "req", &["-t", "ed25519"], "dave@laptop");
    assert!(mint_ok(&hsm, &key).contains("Issued serial 4 "));
    assert!(mint_ok(&hsm, &key).contains("Issued serial 5 "));
    // The old records and checkpoints are untouched; no checkpoint was signed.
    let ledger = before("ledger.jsonl");
    assert_eq!(&ledger[..ledger_0.len()], &ledger_0[..]);
    assert_eq!(before("checkpoints.jsonl"), cps_0);
    let out = run(hsm.cmd().args(["log", "verify"]));
    assert_ok(&out, "log verify");
    assert!(
        stdout(&out).contains("ledger OK: 5 record(s), serials 1 to 5")
            && stdout(&out).contains("checkpoints: 3 signed by the CA token; the newest covers serial 3, and all of them by serial 4's binding")
            && stdout(&out).contains("bound: 2 record(s), serials 4 to 5"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).lines().all(|l| !l.starts_with("warning")));
    // The bundle: the old checkpoint checked by ssh-keygen -Y verify, and the whole ledger by
    // the auditor's script.
    let bundle = hsm.path("bundle");
    assert_ok(
        &run(hsm.cmd().args(["log", "export", "-o"]).arg(&bundle)),
        "log export",
    );
    let msg = std::fs::read_to_string(bundle.join("checkpoint-latest.msg")).unwrap();
    assert!(msg.contains("serial 3\n"), "{msg}");
    let verify = run(std::process::Command::new("sh")
        .arg("-c")
        .arg("ssh-keygen -Y verify -f allowed_signers -I breakglass-ca -n breakglass-ca-ledger -s checkpoint-latest.sig < checkpoint-latest.msg")
        .current_dir(&bundle));
    assert_ok(&verify, "ssh-keygen -Y verify");
    let out = run_auditor_script(&bundle);
    assert_ok(&out, "the auditor's script");
    assert!(
        stdout(&out).contains("chain intact: 5 record(s); 3 old-format, the newest checkpoint covers serial 3; 2 bound"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn old_state_directory_checkpoints_still_catch_a_cut() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let hsm = fixture_0_1_0();
    let key = keygen(hsm.dir.path(), "req", &["-t", "ed25519"], "dave@laptop");
    let path = hsm.state.join("ledger.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, kept).unwrap();
    refused_unchanged(
        &hsm,
        hsm.cmd()
            .args(["mint", "--reason", "r", "-n", "x", "-o", "-"])
            .arg(&key),
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
fn one_token_signature_per_mint_through_pkcs11_spy() {
    const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";
    if !require(&["softhsm2-util", "ssh-keygen", MODULE, SPY]) {
        return;
    }
    let hsm = fixture_0_1_0();
    let key = keygen(hsm.dir.path(), "req", &["-t", "ed25519"], "dave@laptop");
    let log = hsm.path("spy.log");
    for n in 1..=2 {
        let out = run(hsm
            .cmd()
            .args([
                "--ca",
                &format!("pkcs11:token=fixture-010?module-path={SPY}"),
                "mint",
                "--reason",
                "INC-9 spy",
                "-n",
                "breakglass",
                "-o",
                "-",
            ])
            .arg(&key)
            .env("PKCS11SPY", MODULE)
            .env("PKCS11SPY_OUTPUT", &log));
        assert_ok(&out, "mint through pkcs11-spy");
        let calls = std::fs::read_to_string(&log).unwrap();
        let count = |call: &str| {
            calls
                .lines()
                .filter(|l| l.split(": ").nth(1) == Some(call))
                .count()
        };
        assert_eq!(count("C_SignInit"), n, "one C_SignInit per mint:\n{calls}");
        assert_eq!(count("C_Login"), n, "one C_Login per mint");
    }
}
