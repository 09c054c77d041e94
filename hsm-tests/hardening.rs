//! Secrets and the CA key: core dumps are off for every command, a PIN file others can read
//! is warned about, a huge PIN file or a PIN in the URI (any spelling) is a clear error that
//! never echoes it, the CA private key on the token can only sign, and `inspect` checks a
//! certificate against this state directory's CA.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn setup(algorithm: &str) -> Option<Hsm> {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return None;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init(algorithm);
    Some(hsm)
}

/// The soft and hard core size limits of a running process, from /proc/PID/limits.
fn core_limits(pid: u32) -> Option<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max core file size"))?;
    let mut fields = line["Max core file size".len()..].split_whitespace();
    Some((fields.next()?.to_string(), fields.next()?.to_string()))
}

#[test]
fn core_dumps_are_off_while_a_command_runs() {
    let Some(hsm) = setup("ecdsa-p256") else {
        return;
    };
    // Two commands that wait on stdin (a certificate, a requester key) before they finish.
    for args in [
        vec!["inspect", "-"],
        vec!["mint", "-n", "breakglass", "--reason", "INC-1 core", "-"],
    ] {
        let mut child = hsm.cmd().args(&args).stdin(Stdio::piped()).spawn().unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = None;
        while Instant::now() < deadline {
            seen = core_limits(pid);
            // The soft limit is often 0 already; the hard limit says the binary set it.
            if seen
                .as_ref()
                .is_some_and(|(soft, hard)| soft == "0" && hard == "0")
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            seen,
            Some(("0".to_string(), "0".to_string())),
            "{args:?}: core dumps not turned off"
        );
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{args:?} did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn pin_file_permissions_size_and_pins_in_uris() {
    let Some(hsm) = setup("ecdsa-p256") else {
        return;
    };
    let pin = hsm.pin_file.display().to_string();
    let warning = format!(
        "WARNING: the PIN file {pin} can be read by its group and all other users (mode 0644); make it private: chmod 600 {pin}"
    );
    std::fs::set_permissions(&hsm.pin_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let k1 = keygen(hsm.dir.path(), "k1", &["-t", "ed25519"], "alice@laptop");
    let out = hsm.mint(&k1, &["-n", "breakglass"]);
    assert_ok(&out, "mint with a 0644 PIN file");
    assert!(stderr(&out).contains(&warning), "{}", stderr(&out));

    std::fs::set_permissions(&hsm.pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let k2 = keygen(hsm.dir.path(), "k2", &["-t", "ed25519"], "alice@laptop");
    let out = hsm.mint(&k2, &["-n", "breakglass"]);
    assert_ok(&out, "mint with a 0600 PIN file");
    assert!(
        !stderr(&out).contains("WARNING: the PIN file"),
        "{}",
        stderr(&out)
    );

    // /dev/zero as the PIN file: a clear error, nothing issued.
    let ledger = std::fs::read(hsm.state.join("ledger.jsonl")).unwrap();
    let k3 = keygen(hsm.dir.path(), "k3", &["-t", "ed25519"], "alice@laptop");
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA_PIN_FILE", "/dev/zero")
        .args(["mint", "-n", "breakglass", "--reason", "INC-1 zero"])
        .arg(&k3));
    assert_fails(&out, 2, "the PIN file /dev/zero is larger than 4 KiB");
    assert_eq!(
        std::fs::read(hsm.state.join("ledger.jsonl")).unwrap(),
        ledger
    );
    assert!(!cert_path(&k3).exists());

    // A PIN typed into the URI, in any spelling the parser reads as pin-value, is refused and
    // never echoed.
    for attr in [
        "pin-value=",
        "Pin-Value=",
        "PIN-VALUE=",
        "pin%2dvalue=",
        "pin%2Dvalue=",
        "pin-value =",
        "PiN%2DvAlUe = ",
    ] {
        for uri in [
            format!("pkcs11:token=emergency-ca?module-path={MODULE}&{attr}{PIN}"),
            format!("pkcs11:{attr}{PIN};token=emergency-ca?module-path={MODULE}"),
        ] {
            let out = run(hsm.cmd().args(["--ca", &uri, "status"]));
            assert_fails(&out, 2, "pin-value is not accepted");
            assert!(!stdout(&out).contains(PIN));
        }
    }
}

/// pkcs11-tool's listing of the token's objects of `kind` (privkey, pubkey), logged in.
fn list_objects(hsm: &Hsm, kind: &str) -> String {
    let out = Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env("BREAKGLASS_TEST_PIN", PIN)
        .args(["--module", MODULE, "--token-label", "emergency-ca"])
        .args(["--login", "--pin", "env:BREAKGLASS_TEST_PIN"])
        .args(["--list-objects", "--type", kind])
        .output()
        .unwrap();
    assert_ok(&out, "pkcs11-tool --list-objects");
    stdout(&out)
}

fn field<'a>(listing: &'a str, name: &str) -> Vec<&'a str> {
    listing
        .lines()
        .filter_map(|l| l.trim().strip_prefix(name))
        .map(str::trim)
        .collect()
}

#[test]
fn the_ca_private_key_can_only_sign() {
    if !require(&["softhsm2-util", "ssh-keygen", "pkcs11-tool", MODULE]) {
        return;
    }
    for algorithm in [
        "ecdsa-p256",
        "ecdsa-p384",
        "ed25519",
        "rsa-3072",
        "rsa-4096",
    ] {
        let hsm = Hsm::new("emergency-ca");
        hsm.init(algorithm);
        let private = list_objects(&hsm, "privkey");
        assert_eq!(
            field(&private, "Usage:"),
            ["sign"],
            "{algorithm}:\n{private}"
        );
        let access = field(&private, "Access:");
        assert_eq!(access.len(), 1, "{algorithm}:\n{private}");
        for needed in ["sensitive", "never extractable", "local"] {
            assert!(access[0].contains(needed), "{algorithm}:\n{private}");
        }
        assert!(
            !access[0].split(", ").any(|a| a == "extractable"),
            "{algorithm}: {}",
            access[0]
        );
        let public = list_objects(&hsm, "pubkey");
        assert_eq!(
            field(&public, "Usage:"),
            ["verify"],
            "{algorithm}:\n{public}"
        );
        // And the key still signs: a mint works.
        let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
        assert_ok(&hsm.mint(&key, &["-n", "breakglass"]), algorithm);
    }
}

#[test]
fn inspect_checks_against_the_state_directorys_ca() {
    let Some(hsm) = setup("ecdsa-p256") else {
        return;
    };
    let other = Hsm::new("other-ca");
    other.init("ed25519");
    let own = keygen(hsm.dir.path(), "own", &["-t", "ed25519"], "own@r");
    assert_ok(&hsm.mint(&own, &["-n", "breakglass"]), "mint by this CA");
    let foreign = keygen(hsm.dir.path(), "foreign", &["-t", "ed25519"], "foreign@r");
    assert_ok(
        &other.mint(&foreign, &["-n", "breakglass"]),
        "mint by the other CA",
    );
    let fp = |h: &Hsm| {
        let out = run(h.cmd().args(["pubkey", "--format", "fingerprint"]));
        stdout(&out).trim().to_string()
    };
    let (ours, theirs) = (fp(&hsm), fp(&other));

    let out = run(hsm.cmd().arg("inspect").arg(cert_path(&own)));
    assert_ok(&out, "inspect own");
    let text = stdout(&out);
    assert!(
        text.contains(&format!("CA: signed by this CA ({ours}, from ")),
        "{text}"
    );
    assert!(text.contains("ca.pub)"), "{text}");

    // A certificate from another CA is not this CA's, although its signature is consistent.
    let out = run(hsm.cmd().arg("inspect").arg(cert_path(&foreign)));
    assert_fails(&out, 1, "NOT signed by this CA");
    let text = stdout(&out);
    assert!(text.contains("Signature: valid"), "{text}");
    assert!(text.contains("CA: NOT signed by this CA"), "{text}");
    assert!(text.contains(&theirs), "{text}");

    // Once the other CA is a backup CA of this one, its certificates are accepted, and say so.
    let out = run(hsm
        .cmd()
        .arg("add-backup-ca")
        .arg(other.state.join("ca.pub")));
    assert_ok(&out, "add-backup-ca");
    let out = run(hsm.cmd().arg("inspect").arg(cert_path(&foreign)));
    assert_ok(&out, "inspect a backup CA's certificate");
    assert!(
        stdout(&out).contains(&format!(
            "CA: signed by backup CA 1 of config.toml ({theirs})"
        )),
        "{}",
        stdout(&out)
    );

    // Without ca.pub, config.toml's fingerprint still decides.
    std::fs::remove_file(hsm.state.join("ca.pub")).unwrap();
    let third = Hsm::new("third-ca");
    third.init("ecdsa-p256");
    let stranger = keygen(hsm.dir.path(), "stranger", &["-t", "ed25519"], "s@r");
    assert_ok(
        &third.mint(&stranger, &["-n", "breakglass"]),
        "mint by a third CA",
    );
    let out = run(hsm.cmd().arg("inspect").arg(cert_path(&stranger)));
    assert_fails(&out, 1, "NOT signed by this CA");
    assert!(stdout(&out).contains("the fingerprint in config.toml"));
    let out = run(hsm.cmd().arg("inspect").arg(cert_path(&own)));
    assert_ok(&out, "inspect own without ca.pub");

    // A ca.pub that is not config.toml's CA: the state directory is inconsistent.
    std::fs::copy(third.state.join("ca.pub"), hsm.state.join("ca.pub")).unwrap();
    let out = run(hsm.cmd().arg("inspect").arg(cert_path(&own)));
    assert_fails(&out, 1, "but config.toml names the CA");

    // No state directory: only self-consistency, said plainly, and exit 0.
    let empty = tempfile::tempdir().unwrap();
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA_STATE_DIR", empty.path())
        .arg("inspect")
        .arg(cert_path(&foreign)));
    assert_ok(&out, "inspect without a state directory");
    assert!(
        stdout(&out).contains("CA: NOT CHECKED") && stdout(&out).contains("self-consistency"),
        "{}",
        stdout(&out)
    );

    // The certificate is read with a size limit.
    let out = run(hsm.cmd().args(["inspect", "/dev/zero"]));
    assert_fails(&out, 2, "larger than 64 KiB");
    let mut child = hsm
        .cmd()
        .args(["inspect", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'A'; 64 * 1024];
        for _ in 0..4 {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_fails(&out, 2, "larger than 64 KiB");
}

/// Red-team finding: a FIFO as the PIN file made `mint` wait forever while it held the ledger
/// lock (and SIGINT was deferred there); a FIFO key file or certificate hung too. Each is
/// refused at once, and nothing is changed.
#[test]
fn pipes_given_as_inputs_are_refused_at_once() {
    let Some(hsm) = setup("ecdsa-p256") else {
        return;
    };
    if !require(&["mkfifo"]) {
        return;
    }
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let fifo = hsm.path("fifo");
    let made = run(std::process::Command::new("mkfifo").arg(&fifo));
    assert_ok(&made, "mkfifo");
    let before = snapshot_state(&hsm.state);
    let cases: Vec<(&str, std::process::Command)> = vec![
        ("a FIFO PIN file", {
            let mut c = hsm.cmd();
            c.arg("--pin-file")
                .arg(&fifo)
                .args(["mint", "-n", "bg", "--reason", "r"])
                .arg(&key);
            c
        }),
        ("a FIFO key file", {
            let mut c = hsm.cmd();
            c.args(["mint", "-n", "bg", "--reason", "r", "-o", "-"])
                .arg(&fifo);
            c
        }),
        ("a FIFO certificate", {
            let mut c = hsm.cmd();
            c.arg("inspect").arg(&fifo);
            c
        }),
    ];
    for (what, mut cmd) in cases {
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_bounded(&mut child, std::time::Duration::from_secs(20));
        assert_fails(&out, 2, "is a pipe or socket, not a file");
        assert!(stderr(&out).contains("hint:"), "{what}: {}", stderr(&out));
        assert_eq!(
            snapshot_state(&hsm.state),
            before,
            "{what} changed the state"
        );
    }
}
