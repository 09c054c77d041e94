//! Examples of `--help` texts that no other test runs, run as printed: `revoke --help`'s, each
//! on its own (the state directory put back after each), in a directory holding the files
//! they name, against a ledger with the serials and key ID they name. (The top-level and
//! `mint --help` examples are run in `login_line`, `host-config`'s in `alarm`, `krl`'s in
//! `krl`, `audit`'s in `audit`.) And how `--ca` and `--pin-file` before the command, after it
//! and in the environment go together.

use crate::common::*;

#[test]
fn revoke_help_examples_work_as_printed() {
    if !require(&["softhsm2-util", "ssh-keygen", "sh", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let work = hsm.path("work");
    std::fs::create_dir(&work).unwrap();
    // Serials 1 to 12, serial 7 alice's with the key ID the examples name.
    let keys: Vec<String> = (1..=12)
        .map(|i| {
            let name = if i == 7 {
                "alice".to_string()
            } else {
                format!("user{i}")
            };
            keygen(&work, &name, &["-t", "ed25519"], &name);
            format!("{name}.pub")
        })
        .collect();
    let mut c = hsm.cmd();
    c.current_dir(&work)
        .args(["mint", "-n", "breakglass", "--reason", "INC-1234"])
        .args(&keys);
    assert_ok(&run(&mut c), "the batch of 12");
    let show = stdout(&run(hsm.cmd().args(["log", "show", "7"])));
    assert!(show.contains("alice#7:INC-1234"), "{show}");
    // The backup CA and the carried-over keys the examples name.
    let backup = keygen(&work, "backup-ca", &["-t", "ed25519"], "breakglass-ca");
    assert_ok(
        &run(hsm.cmd().arg("add-backup-ca").arg(&backup)),
        "add-backup-ca",
    );
    let carried: String = ["carol", "dan"]
        .iter()
        .map(|n| std::fs::read_to_string(keygen(&work, n, &["-t", "ed25519"], n)).unwrap())
        .collect();
    std::fs::write(work.join("carried-keys.pub"), carried).unwrap();

    let help = stdout(&run(hsm.cmd().args(["revoke", "--help"])));
    let examples: Vec<&str> = help
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("breakglass-ca revoke "))
        .collect();
    assert_eq!(examples.len(), 7, "{help}");
    let path = path_with_binary();
    let before = snapshot_dir(&hsm.state);
    for example in &examples {
        restore_dir(&before, &hsm.state);
        let out = run(hsm
            .cmd_with("sh")
            .arg("-c")
            .arg(example)
            .env("PATH", &path)
            .current_dir(&work));
        assert_ok(&out, example);
        let log = stdout(&run(hsm.cmd().arg("log")));
        // One revocation record: one row R1 (fingerprints in the rows may hold "R2").
        let rows: Vec<&str> = log
            .lines()
            .filter(|l| l.trim_start().starts_with('R'))
            .collect();
        assert!(
            rows.len() == 1 && rows[0].starts_with("    R1  "),
            "{example}: {log}"
        );
    }
    // The KRL line of the text after the examples, too.
    let krl = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        krl.contains("breakglass-ca krl -o breakglass-ca.krl"),
        "{help}"
    );
    let out = run(hsm
        .cmd_with("sh")
        .arg("-c")
        .arg("breakglass-ca krl -o breakglass-ca.krl")
        .env("PATH", &path)
        .current_dir(&work));
    assert_ok(&out, "krl -o breakglass-ca.krl");
    assert!(work.join("breakglass-ca.krl").exists());
}

/// `--ca` and `--pin-file` before the command (0.1-0.3 scripts) and after it: the command
/// line wins over the environment variable, wherever on it the option stands; two different
/// values on the command line are a usage error, the same value twice is fine.
#[test]
fn token_options_before_the_command_beat_the_environment() {
    if !require(&["softhsm2-util", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let uri = hsm.uri();
    let other = format!("pkcs11:token=no-such-token?module-path={MODULE}");
    // The environment names another token; the option before the command wins.
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA", &other)
        .args(["--ca", &uri, "status"]));
    assert_ok(&out, "--ca before status, BREAKGLASS_CA elsewhere");
    // ... as it does after the command.
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA", &other)
        .args(["status", "--ca", &uri]));
    assert_ok(&out, "status --ca, BREAKGLASS_CA elsewhere");
    let out = run(hsm.cmd().args(["--ca", &uri, "status", "--ca", &uri]));
    assert_ok(&out, "the same --ca twice");
    let out = run(hsm.cmd().args(["--ca", &uri, "status", "--ca", &other]));
    assert_fails(&out, 2, "--ca was given twice with different values");
    // The PIN file: BREAKGLASS_CA_PIN_FILE holds a wrong PIN, --pin-file before mint the
    // right one.
    let wrong = hsm.path("wrong-pin");
    std::fs::write(&wrong, "000000\n").unwrap();
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "k@laptop");
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA_PIN_FILE", &wrong)
        .arg("--pin-file")
        .arg(&hsm.pin_file)
        .args([
            "mint",
            "-n",
            "breakglass",
            "--reason",
            "INC-1 pin file",
            "-o",
            "-",
        ])
        .arg(&key));
    assert_ok(&out, "--pin-file before mint, BREAKGLASS_CA_PIN_FILE wrong");
    let before = snapshot_state(&hsm.state);
    let out = run(hsm
        .cmd()
        .arg("--pin-file")
        .arg(&hsm.pin_file)
        .args([
            "mint",
            "-n",
            "breakglass",
            "--reason",
            "INC-1 pin file",
            "-o",
            "-",
            "--pin-file",
        ])
        .arg(&wrong)
        .arg(&key));
    assert_fails(&out, 2, "--pin-file was given twice with different values");
    assert_eq!(snapshot_state(&hsm.state), before);
}
