//! `doctor` on SoftHSM2: a healthy state directory (with its backup copy at `backup_dir`)
//! exits 0; each serious case exits 1 naming the problem in a `SERIOUS` line with its next
//! step: the token absent, `ca.pub` edited, `config.toml`'s fingerprint not the token's key,
//! the clock behind the newest record, a world-writable state directory, a directory above it
//! others can change, a stale backup, a "backup" that is the state directory itself.
//! `doctor` changes nothing (the state directory and the backup byte for byte). The PIN-tries
//! and YubiKey-policy findings are unit tests (`src/doctor.rs`): SoftHSM2 reports neither.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

fn tools() -> bool {
    require(&["softhsm2-util", "ssh-keygen", MODULE])
}

/// An initialised CA with one certificate, and a current copy of its state directory named
/// by `backup_dir` in config.toml.
fn healthy() -> (Hsm, std::path::PathBuf) {
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let alice = keygen(hsm.dir.path(), "alice", &["-t", "ed25519"], "alice@laptop");
    assert_ok(&hsm.mint(&alice, &["-n", "breakglass", "-o", "-"]), "mint");
    let backup = hsm.path("backup-stick");
    let cfg = hsm.state.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    // The key goes above the [policy] table, as docs/runbook.md section 1.6 says.
    let with = text.replacen(
        "\n[policy]",
        &format!("backup_dir = \"{}\"\n\n[policy]", backup.display()),
        1,
    );
    assert_ne!(with, text);
    std::fs::write(&cfg, with).unwrap();
    copy_state(&hsm, &backup);
    (hsm, backup)
}

/// `cp -a STATE/. BACKUP/`, as the runbook does it.
fn copy_state(hsm: &Hsm, backup: &Path) {
    std::fs::create_dir_all(backup).unwrap();
    let out = run(std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", hsm.state.display()))
        .arg(backup));
    assert_ok(&out, "cp -a");
}

/// `doctor` run by `c`, checked to change nothing in the state directory or the
/// backup.
fn doctor(hsm: &Hsm, backup: &Path, c: &mut std::process::Command) -> std::process::Output {
    let (state, copy) = (snapshot_state(&hsm.state), snapshot_state(backup));
    let out = run(c.arg("doctor"));
    assert_eq!(
        snapshot_state(&hsm.state),
        state,
        "doctor changed the state"
    );
    assert_eq!(snapshot_state(backup), copy, "doctor changed the backup");
    out
}

/// A serious finding for `check`, whose line contains `what`, with a next step below it; exit
/// 1 naming it.
fn assert_serious(out: &std::process::Output, check: &str, what: &str) {
    assert_fails(out, 1, "doctor found ");
    let text = stdout(out);
    let line = format!("SERIOUS  {check}: ");
    let at = text
        .lines()
        .position(|l| l.starts_with(&line) && l.contains(what))
        .unwrap_or_else(|| panic!("no '{line}…{what}…' in:\n{text}"));
    let next = text.lines().nth(at + 1).unwrap_or_default();
    assert!(
        next.starts_with("         next: "),
        "no next step for it:\n{text}"
    );
    assert!(text.contains(" SERIOUS, "), "{text}");
}

#[test]
fn doctor_on_a_healthy_state_directory_exits_0() {
    if !tools() {
        return;
    }
    let (hsm, backup) = healthy();
    let out = doctor(&hsm, &backup, &mut hsm.cmd());
    assert_ok(&out, "doctor");
    let text = stdout(&out);
    assert!(!text.contains("SERIOUS  "), "{text}");
    for needle in [
        "ok       files: the state directory ",
        "ok       config: config.toml names the CA SHA256:",
        "ok       token: token 'emergency-ca'",
        "ok       key: the key on the token is the CA of config.toml",
        "ok       ca.pub: ",
        "ok       PIN: ok (the token does not report a count)",
        "ok       PIN file: the PIN file ",
        "ok       clock: ",
        "ok       ledger: 1 certificate(s), the newest serial 1 issued ",
        "holds the ledger's newest record (serial 1 (line 1))",
        "\n0 SERIOUS, 0 warning(s), ",
    ] {
        assert!(text.contains(needle), "doctor lacks {needle}:\n{text}");
    }
    let out = doctor(&hsm, &backup, hsm.cmd().env("BREAKGLASS_CA", hsm.uri()));
    assert_ok(&out, "doctor with --ca from the environment");
    let out = run(hsm.cmd().args(["doctor", "--json"]));
    assert_ok(&out, "doctor --json");
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (v["format"].as_u64(), v["serious"].as_u64()),
        (Some(1), Some(0))
    );
    let findings = v["findings"].as_array().unwrap();
    assert!(findings.len() >= 10, "{v:#}");
    assert!(findings.iter().all(|f| f["level"] == "ok"), "{v:#}");
    assert!(findings.iter().any(|f| f["check"] == "backup"));
}

#[test]
fn doctor_names_each_serious_problem() {
    if !tools() {
        return;
    }
    let (hsm, backup) = healthy();
    // The token not plugged in (an empty token store).
    let conf = hsm.unplugged();
    let out = doctor(&hsm, &backup, hsm.cmd().env("SOFTHSM2_CONF", &conf));
    assert_serious(
        &out,
        "token",
        "the CA token could not be opened: no token found",
    );
    // Without the token the rest is still checked.
    assert!(
        stdout(&out).contains("ok       ledger: 1 certificate(s)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("ok       backup: "),
        "{}",
        stdout(&out)
    );

    // ca.pub edited (another key put there).
    let ca_pub = hsm.state.join("ca.pub");
    let saved = std::fs::read(&ca_pub).unwrap();
    let other = keygen(hsm.dir.path(), "other", &["-t", "ed25519"], "other");
    std::fs::copy(&other, &ca_pub).unwrap();
    let out = doctor(&hsm, &backup, &mut hsm.cmd());
    assert_serious(
        &out,
        "ca.pub",
        "not the CA config.toml names: it was edited or replaced",
    );
    std::fs::write(&ca_pub, &saved).unwrap();

    // config.toml names another fingerprint than the token's key.
    let cfg = hsm.state.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let at = text.find("fingerprint = \"SHA256:").unwrap() + "fingerprint = \"SHA256:".len();
    let mut edited = text.clone();
    edited.replace_range(at..at + 4, "AAAA");
    std::fs::write(&cfg, &edited).unwrap();
    let out = doctor(&hsm, &backup, &mut hsm.cmd());
    assert_serious(&out, "key", "is not the CA config.toml names (SHA256:AAAA");
    std::fs::write(&cfg, &text).unwrap();

    // The clock behind the newest record (a revocation dated 2099).
    revoke_ok(&hsm, &["--serial", "1", "--reason", "INC-2 leaked"]);
    let ledger = hsm.state.join("ledger.jsonl");
    let lines = std::fs::read_to_string(&ledger).unwrap();
    let at = lines.rfind("\"revoked_at\":\"").unwrap() + "\"revoked_at\":\"".len();
    let mut forged = lines.clone();
    forged.replace_range(at..at + 20, "2099-01-01T00:00:00Z");
    std::fs::write(&ledger, &forged).unwrap();
    copy_state(&hsm, &backup);
    let out = doctor(&hsm, &backup, &mut hsm.cmd());
    assert_serious(
        &out,
        "clock",
        "is earlier than the newest ledger record (2099-01-01T00:00:00Z)",
    );
    std::fs::write(&ledger, &lines).unwrap();
    copy_state(&hsm, &backup);
    assert_ok(&doctor(&hsm, &backup, &mut hsm.cmd()), "doctor");

    // A world-writable state directory.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hsm.state, std::fs::Permissions::from_mode(0o757)).unwrap();
    let out = doctor(&hsm, &backup, &mut hsm.cmd());
    assert_serious(&out, "files", "can be changed by all users");
    assert!(
        stdout(&out).contains(&format!("chmod 700 {}", hsm.state.display())),
        "{}",
        stdout(&out)
    );
    std::fs::set_permissions(&hsm.state, std::fs::Permissions::from_mode(0o700)).unwrap();

    // A stale backup: a certificate issued after the copy was made.
    let bob = keygen(hsm.dir.path(), "bob", &["-t", "ed25519"], "bob@laptop");
    assert_ok(&hsm.mint(&bob, &["-n", "breakglass", "-o", "-"]), "mint");
    let out = doctor(&hsm, &backup, &mut hsm.cmd());
    assert_serious(
        &out,
        "backup",
        "is stale: it ends at a revocation after serial 1 (line 2), the ledger at serial 2 (line 3) (1 line(s) more)",
    );
    assert!(
        stdout(&out).contains("cp -a STATE/. BACKUP/"),
        "{}",
        stdout(&out)
    );
    // The CA URI's pin-source and BREAKGLASS_CA_PIN_FILE name different files: mint refuses.
    let other_pin = hsm.path("other-pin");
    std::fs::copy(&hsm.pin_file, &other_pin).unwrap();
    let uri = format!("{}&pin-source=file:{}", hsm.uri(), other_pin.display());
    let out = doctor(&hsm, &backup, hsm.cmd().args(["--ca", &uri]));
    assert_serious(
        &out,
        "PIN file",
        "mint would refuse: the CA URI's pin-source names the PIN file",
    );
    // The backup stick as a link to the state directory itself: no backup at all.
    std::fs::remove_dir_all(&backup).unwrap();
    std::os::unix::fs::symlink(&hsm.state, &backup).unwrap();
    let out = doctor(&hsm, &backup, &mut hsm.cmd());
    assert_serious(
        &out,
        "backup",
        "is the state directory itself: it is no backup",
    );
    std::fs::remove_file(&backup).unwrap();
    copy_state(&hsm, &backup);
    // A directory above the state directory others can change: they could swap the state
    // directory for another.
    let above = hsm.state.parent().unwrap().to_path_buf();
    let mode = std::fs::metadata(&above).unwrap().permissions().mode();
    std::fs::set_permissions(&above, std::fs::Permissions::from_mode(0o775)).unwrap();
    let out = doctor(&hsm, &backup, &mut hsm.cmd());
    std::fs::set_permissions(&above, std::fs::Permissions::from_mode(mode)).unwrap();
    assert_serious(
        &out,
        "files",
        "above the state directory can be changed by its group",
    );
    // The backup stick not mounted: a warning only.
    let aside = hsm.path("stick-unmounted");
    std::fs::rename(&backup, &aside).unwrap();
    let out = doctor(&hsm, &aside, &mut hsm.cmd());
    assert_ok(&out, "doctor");
    assert!(
        stdout(&out).contains("WARNING  backup: the backup directory "),
        "{}",
        stdout(&out)
    );
}
