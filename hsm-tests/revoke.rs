//! `revoke` on a real SoftHSM2 state directory: every form (serial, range, key ID, requester
//! key, this CA, a backup CA), every refusal with the state directory byte-for-byte unchanged,
//! `--force`, mint refused for a revoked key or CA before the PIN, a mint after a revocation
//! covering it, `log`, `log show`, `status`; revocations killed with SIGKILL at random
//! moments (also while waiting for the lock held by a mint at its PIN prompt): no record lost,
//! the chain intact, no serial reused; and a 0.1.0 ledger revoked into.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};

use crate::common::*;
use crate::lock::{mint_at_pin_prompt, wait_for_file};

fn revoke(hsm: &Hsm, args: &[&str]) -> Output {
    run(hsm.cmd().arg("revoke").args(args))
}

/// A refusal: the exit code, the message, a hint, and the state directory unchanged.
fn refused(hsm: &Hsm, args: &[&str], code: i32, needle: &str) {
    let before = snapshot_state(&hsm.state);
    let out = revoke(hsm, args);
    assert_fails(&out, code, needle);
    if code == 1 {
        assert!(
            stderr(&out).contains("hint: "),
            "no hint:\n{}",
            stderr(&out)
        );
    }
    assert_eq!(
        snapshot_state(&hsm.state),
        before,
        "revoke {} changed the state directory",
        args.join(" ")
    );
}

fn verify_ok(hsm: &Hsm) -> String {
    let out = run(hsm.cmd().args(["log", "verify"]));
    assert_ok(&out, "log verify");
    stdout(&out)
}

/// The lines of the ledger, each parsed as JSON.
fn ledger_json(hsm: &Hsm) -> Vec<serde_json::Value> {
    std::fs::read_to_string(hsm.state.join("ledger.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn is_revocation(v: &serde_json::Value) -> bool {
    v["kind"] == "revocation"
}

/// The serials of the issuance records, in ledger order.
fn issued_serials(hsm: &Hsm) -> Vec<u64> {
    ledger_json(hsm)
        .iter()
        .filter(|v| !is_revocation(v))
        .map(|v| v["serial"].as_u64().unwrap())
        .collect()
}

#[test]
fn every_revoke_form_and_every_refusal() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let dir = hsm.dir.path();
    let alice = keygen(dir, "alice", &["-t", "ed25519"], "alice@laptop");
    let bob = keygen(dir, "bob", &["-t", "ed25519"], "bob@laptop");
    let dave = keygen(dir, "dave", &["-t", "ed25519"], "dave@laptop");
    for (key, id) in [(&alice, "alice-1"), (&alice, "alice-2"), (&bob, "bob-1")] {
        let out = hsm.mint(key, &["-n", "breakglass", "-I", id, "-o", "-"]);
        assert_ok(&out, "mint");
    }
    // A backup CA on a second token, trusted by this state directory.
    hsm.add_token("backup-ca");
    let backup_uri = format!("pkcs11:token=backup-ca?module-path={MODULE}");
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA_STATE_DIR", hsm.path("backup-state"))
        .args(["--ca", &backup_uri, "init", "--algorithm", "ed25519"]));
    assert_ok(&out, "init backup");
    let backup_pub = hsm.path("backup-ca.pub");
    std::fs::write(&backup_pub, stdout(&out)).unwrap();
    assert_ok(
        &run(hsm.cmd().arg("add-backup-ca").arg(&backup_pub)),
        "add-backup-ca",
    );
    // Another CA nobody here trusts, a certificate, a private key, garbage.
    hsm.add_token("stranger-ca");
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA_STATE_DIR", hsm.path("stranger-state"))
        .args([
            "--ca",
            &format!("pkcs11:token=stranger-ca?module-path={MODULE}"),
            "init",
        ]));
    assert_ok(&out, "init stranger");
    let stranger_pub = hsm.path("stranger.pub");
    std::fs::write(&stranger_pub, stdout(&out)).unwrap();
    // Serial 4, written to alice-cert.pub beside alice.pub.
    assert_ok(
        &hsm.mint(&alice, &["-n", "breakglass", "-I", "alice-3"]),
        "mint to a file",
    );
    let cert = cert_path(&alice);
    assert!(cert.exists());
    let private = dir.join("alice");
    let garbage = hsm.path("garbage.pub");
    std::fs::write(&garbage, "ssh-ed25519 AAAA!!!! x\n").unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (alice_s, cert_s, private_s, garbage_s) = (s(&alice), s(&cert), s(&private), s(&garbage));
    let (stranger_s, backup_s) = (s(&stranger_pub), s(&backup_pub));
    let r = ["--reason", "INC-7 test"];
    fn with<'a>(a: &[&'a str]) -> Vec<&'a str> {
        [a, &["--reason", "INC-7 test"][..]].concat()
    }

    // Refusals: nothing written, nothing changed.
    refused(&hsm, &r, 2, "nothing to revoke");
    for (args, code, message) in [
        (
            &["--serial", "0"][..],
            1,
            "serial 0 was never issued by this CA",
        ),
        (
            &["--serial", "99"][..],
            1,
            "serial 99 was never issued by this CA: the newest serial is 4",
        ),
        (&["--serial", "2-5"][..], 1, "serial 5 was never issued"),
        (&["--serial", "5-3"][..], 2, "the range 5-3 is empty"),
        (&["--serial", "x"][..], 2, "is not a serial or a range"),
        (
            &["--key-id", "nobody"][..],
            1,
            "no certificate in the ledger has the key ID \"nobody\"",
        ),
    ] {
        refused(&hsm, &with(args), code, message);
    }
    // (A requester key this CA never certified is revoked, not refused: see
    // a_requester_key_never_certified_and_a_file_of_keys_are_revoked.)
    refused(
        &hsm,
        &with(&["--requester-key", &private_s]),
        1,
        "PRIVATE key",
    );
    refused(
        &hsm,
        &with(&["--requester-key", &cert_s]),
        1,
        "this is a certificate, not a public key",
    );
    refused(
        &hsm,
        &with(&["--requester-key", &garbage_s]),
        1,
        "the requester's public key cannot be read",
    );
    let before = snapshot_state(&hsm.state);
    let out = revoke(&hsm, &with(&["--requester-key", "/nonexistent.pub"]));
    assert_fails(
        &out,
        1,
        "cannot read the requester's public key /nonexistent.pub",
    );
    assert_eq!(snapshot_state(&hsm.state), before);
    refused(
        &hsm,
        &with(&["--ca", &stranger_s]),
        1,
        "nor a backup CA in config.toml, nor a retired CA",
    );
    let out = revoke(&hsm, &with(&["--ca", &stranger_s]));
    assert!(stderr(&out).contains("add-backup-ca"), "{}", stderr(&out));
    refused(
        &hsm,
        &with(&["--ca", &cert_s]),
        1,
        "holds a certificate, not a CA public key",
    );
    refused(&hsm, &with(&["--ca", &private_s]), 1, "holds a PRIVATE key");
    // Red team: an empty FILE (`--ca "$BACKUP"` with the variable unset) revoked this CA,
    // for good, instead of the backup CA meant.
    for empty in [&["--ca", ""][..], &["--ca="][..]] {
        refused(
            &hsm,
            &with(empty),
            2,
            "the file name is empty (an unset variable?)",
        );
    }
    refused(
        &hsm,
        &with(&["--ca", &garbage_s]),
        1,
        "is not an OpenSSH public key",
    );
    refused(
        &hsm,
        &["--serial", "1", "--reason", "  "],
        1,
        "--reason is empty",
    );
    refused(
        &hsm,
        &["--serial", "1", "--reason", "INC-1\u{1b}[2J"],
        1,
        "control or invisible",
    );
    refused(
        &hsm,
        &["--serial", "1", "--reason", "a\u{202e}b"],
        1,
        "control or invisible",
    );
    // A mint is still fine: nothing was revoked.
    assert_eq!(issued_serials(&hsm), [1, 2, 3, 4]);

    // --serial: one record, no serial spent.
    let shown = revoke_ok(&hsm, &with(&["--serial", "1"]));
    assert!(
        shown.contains("serial 1: key ID \"alice-1\", requester alice@laptop"),
        "{shown}"
    );
    assert!(shown.contains("KRL version: 2"), "{shown}");
    assert!(shown.contains("breakglass-ca krl -o"), "{shown}");
    let lines = ledger_json(&hsm);
    assert_eq!(lines.len(), 5);
    assert!(is_revocation(&lines[4]));
    assert_eq!(lines[4]["serials"], serde_json::json!([[1, 1]]));
    assert_eq!(lines[4]["last_serial"], 4);
    let raw = std::fs::read_to_string(hsm.state.join("ledger.jsonl")).unwrap();
    assert!(raw
        .lines()
        .last()
        .unwrap()
        .starts_with("{\"kind\":\"revocation\",\"format\":1,"));
    // Twice: an error naming the earlier one; --force with nothing left: exit 0, nothing.
    refused(
        &hsm,
        &with(&["--serial", "1"]),
        1,
        "serial 1 is already revoked: revocation R1, on ",
    );
    let before = snapshot_state(&hsm.state);
    let out = revoke(&hsm, &with(&["--serial", "1", "--force"]));
    assert_ok(&out, "revoke --force of what is revoked");
    assert!(stdout(&out).contains("nothing changed"), "{}", stdout(&out));
    assert!(stderr(&out).contains("already revoked, skipped: serial 1 (revocation R1)"));
    assert_eq!(snapshot_state(&hsm.state), before);
    // --force with a range over it: the rest is recorded.
    revoke_ok(&hsm, &with(&["--serial", "1-2", "--force"]));
    assert_eq!(ledger_json(&hsm)[5]["serials"], serde_json::json!([[2, 2]]));
    // --key-id, --requester-key, combined with a serial: one record.
    revoke_ok(
        &hsm,
        &with(&[
            "--key-id",
            "bob-1",
            "--requester-key",
            &alice_s,
            "--serial",
            "4",
        ]),
    );
    let v = &ledger_json(&hsm)[6];
    assert_eq!(v["key_ids"], serde_json::json!(["bob-1"]));
    assert_eq!(v["serials"], serde_json::json!([[4, 4]]));
    let alice_line = std::fs::read_to_string(&alice).unwrap();
    let alice_key: Vec<&str> = alice_line.split_whitespace().take(2).collect();
    assert_eq!(v["requester_keys"][0]["key"], alice_key.join(" "));
    assert!(verify_ok(&hsm)
        .contains("the newest 3 revocation record(s) (after serial 4) are not yet covered"));

    // mint refuses a revoked requester key before the PIN (a batch too), changing nothing.
    let before = snapshot_state(&hsm.state);
    for keys in [vec![&alice], vec![&dave, &alice]] {
        let mut c = hsm.cmd();
        c.args(["mint", "--reason", "INC-8", "-n", "breakglass"])
            .args(keys);
        let out = run(&mut c);
        assert_fails(&out, 1, "was revoked on ");
        assert!(
            !stderr(&out).contains("CA token:"),
            "the token was opened:\n{}",
            stderr(&out)
        );
        assert_eq!(snapshot_state(&hsm.state), before);
    }
    // A mint after the revocations chains to them and covers them.
    let out = hsm.mint(&dave, &["-n", "breakglass", "-o", "-"]);
    assert_ok(&out, "mint after revocations");
    assert_eq!(issued_serials(&hsm), [1, 2, 3, 4, 5]);
    let verified = verify_ok(&hsm);
    assert!(
        verified.contains("ledger OK: 5 record(s), serials 1 to 5, and 3 revocation record(s)"),
        "{verified}"
    );
    assert!(
        verified.contains("3 covered by the token's signature"),
        "{verified}"
    );
    assert!(!verified.contains("warning"), "{verified}");
    // An exported bundle: verified by the tool and by the auditor's script of docs/ledger.md.
    let bundle = hsm.path("bundle");
    assert_ok(
        &run(hsm.cmd().args(["log", "export", "-o"]).arg(&bundle)),
        "log export",
    );
    let out = run(hsm.cmd().args(["log", "verify", "--bundle"]).arg(&bundle));
    assert_ok(&out, "log verify --bundle");
    let out = run_auditor_script(&bundle);
    assert_ok(&out, "the auditor's script");
    assert!(
        stdout(&out).contains("chain intact: 5 record(s); 0 old-format"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("revocations: 3 record(s); the newest 0 not yet covered"),
        "{}",
        stdout(&out)
    );
    // The script finds a revocation removed from the middle.
    let text = std::fs::read_to_string(bundle.join("ledger.jsonl")).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 5)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(bundle.join("ledger.jsonl"), kept.join("\n") + "\n").unwrap();
    let out = run_auditor_script(&bundle);
    assert!(
        !out.status.success()
            && stdout(&out).contains("FAILED: line 6: prev_hash is not the hash of line 5"),
        "{}",
        stdout(&out)
    );

    // log, log --json, log show, status.
    let out = run(hsm.cmd().arg("log"));
    assert_ok(&out, "log");
    let log = stdout(&out);
    assert!(
        log.contains("    R1  ") && log.contains("revoked               serial 1  INC-7 test"),
        "{log}"
    );
    assert!(
        log.contains("R3") && log.contains("key ID \"bob-1\""),
        "{log}"
    );
    let out = run(hsm.cmd().args(["log", "--json"]));
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.starts_with("{\"kind\":\"revocation\""))
            .count(),
        3
    );
    let out = run(hsm.cmd().args(["log", "show", "2"]));
    assert_ok(&out, "log show 2");
    assert!(
        stdout(&out).contains("REVOKED (its serial) on "),
        "{}",
        stdout(&out)
    );
    let out = run(hsm.cmd().args(["log", "show", "3"]));
    assert!(
        stdout(&out).contains("REVOKED (its key ID)"),
        "{}",
        stdout(&out)
    );
    let out = run(hsm.cmd().args(["log", "show", "5"]));
    assert!(!stdout(&out).contains("REVOKED"), "{}", stdout(&out));
    let out = run(hsm.cmd().args(["log", "show", "--revocation", "3"]));
    assert_ok(&out, "log show --revocation 3");
    assert!(
        stdout(&out).contains("Revocation R3 (ledger line 7): revoked on "),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("covered by the CA token's signature through serial 5"),
        "{}",
        stdout(&out)
    );
    assert_fails(
        &run(hsm.cmd().args(["log", "show", "--revocation", "9"])),
        2,
        "no revocation R9 in the ledger (R1 to R3)",
    );
    let out = run(hsm.cmd().arg("status"));
    assert_ok(&out, "status");
    assert!(
        stdout(&out).contains("revocations:    3 record(s), the newest "),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("KRL version 2"), "{}", stdout(&out));

    // The backup CA, then this CA: mint refuses, before the PIN.
    revoke_ok(&hsm, &with(&["--ca", &backup_s]));
    assert!(ledger_json(&hsm)[8]["ca_keys"][0]["key"]
        .as_str()
        .unwrap()
        .starts_with("ssh-ed25519 "));
    refused(
        &hsm,
        &with(&["--ca", &backup_s]),
        1,
        "is already revoked: revocation R4",
    );
    let shown = revoke_ok(&hsm, &["--reason", "INC-9 token lost", "--ca"]);
    assert!(
        shown.contains("(this CA, from this state directory's ca.pub)"),
        "{shown}"
    );
    // Red team: the backup CA's ledger does not hold this revocation; a KRL made there alone
    // lifts it on hosts. The next step says so, with the command.
    let ca_pub = hsm.state.join("ca.pub");
    assert!(
        shown.contains("revoke this CA there too")
            && shown.contains(&format!(
                "add-backup-ca {}', then 'breakglass-ca --state-dir STATE2 revoke --ca {} --reason",
                ca_pub.display(),
                ca_pub.display()
            )),
        "{shown}"
    );
    let before = snapshot_state(&hsm.state);
    let out = hsm.mint(&dave, &["-n", "breakglass", "-o", "-"]);
    assert_fails(&out, 1, "was revoked on ");
    assert!(
        stderr(&out).contains("(reason: INC-9 token lost)"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("backup CA"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("CA token:"), "{}", stderr(&out));
    assert_eq!(snapshot_state(&hsm.state), before);
    let out = run(hsm.cmd().arg("status"));
    assert!(
        stdout(&out).contains("CA revoked:     YES"),
        "{}",
        stdout(&out)
    );
    verify_ok(&hsm);
    // Red team: 'pubkey' (the line for TrustedUserCAKeys, runbook 1.4; also -o, json, qr)
    // printed the revoked CA's line without a word. It still prints it (the backup CA's state
    // directory needs it to revoke this CA too), with a warning.
    for format in ["openssh", "json", "fingerprint"] {
        let out = run(hsm.cmd().args(["pubkey", "--format", format]));
        assert_ok(&out, "pubkey");
        assert!(
            stderr(&out).contains("WARNING: this CA (SHA256:")
                && stderr(&out).contains("is revoked in the ledger")
                && stderr(&out).contains("pubkey --bundle"),
            "{format}: {}",
            stderr(&out)
        );
    }
    // --ca is the token URI on the commands that open the token; revoke's --ca is the CA to
    // revoke, and the token URI after 'revoke' is not taken for it.
    let out = run(hsm.cmd().args(["status", "--ca", &hsm.uri()]));
    assert_ok(&out, "status --ca URI");
}

/// `revoke --requester-key` of a key this CA never certified revokes it (a compromised key
/// revoked ahead, or one carried over from the lost CA's ledger), with a note, and mint then
/// refuses it; a file of several key lines (blank lines and `#` comments skipped, a key
/// twice kept once) is one record; a certificate, a private key, garbage or the CA's own key
/// on any line is refused naming the line, as is a file without a key line or one too large,
/// the state directory unchanged. `log --revoked-keys` prints every revoked requester key as
/// an OpenSSH line with its fingerprint (nothing and a note for none), which `revoke
/// --requester-key` in another state directory takes as it is.
#[test]
fn a_requester_key_never_certified_and_a_file_of_keys_are_revoked() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let dir = hsm.dir.path();
    let alice = keygen(dir, "alice", &["-t", "ed25519"], "alice@laptop");
    let carol = keygen(dir, "carol", &["-t", "ed25519"], "carol@laptop");
    let dave = keygen(dir, "dave", &["-t", "ecdsa"], "dave@laptop");
    let erin = keygen(dir, "erin", &["-t", "rsa", "-b", "3072"], "erin@laptop");
    assert_ok(&hsm.mint(&alice, &["-n", "breakglass"]), "mint alice");
    let fp = |p: &Path| {
        let o = run(std::process::Command::new("ssh-keygen").arg("-lf").arg(p));
        stdout(&o).split_whitespace().nth(1).unwrap().to_string()
    };
    let line = |p: &Path| std::fs::read_to_string(p).unwrap().trim().to_string();
    let key_part = |p: &Path| {
        line(p)
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // A key never certified: revoked, with a note; mint refuses it before the PIN.
    let out = revoke(
        &hsm,
        &[
            "--requester-key",
            &s(&carol),
            "--reason",
            "INC-20 key leaked",
        ],
    );
    assert_ok(&out, "revoke --requester-key of a key never certified");
    let (shown, err) = (stdout(&out), stderr(&out));
    assert!(
        shown.contains(&format!(
            "requester key {} (ssh-ed25519, carol@laptop): every certificate for it, from any CA; no certificate of this CA was issued for it",
            fp(&carol)
        )),
        "{shown}"
    );
    assert!(
        err.contains(&format!(
            "note: no certificate of this CA was issued for {}; revoked anyway: hosts with the KRL refuse every certificate for it, from any CA, and mint refuses it",
            fp(&carol)
        )),
        "{err}"
    );
    let v = ledger_json(&hsm).pop().unwrap();
    assert_eq!(v["requester_keys"][0]["key"], key_part(&carol));
    assert_eq!(v["requester_keys"][0]["fingerprint"], fp(&carol));
    let before = snapshot_state(&hsm.state);
    let o = hsm.mint(&carol, &["-n", "breakglass", "-o", "-"]);
    assert_fails(
        &o,
        1,
        &format!("the requester's key {} was revoked on ", fp(&carol)),
    );
    assert!(!stderr(&o).contains("CA token:"), "{}", stderr(&o));
    assert_eq!(snapshot_state(&hsm.state), before);

    // A file of several keys: one record; alice's certificate named, the others noted.
    let list = hsm.path("keys.pub");
    std::fs::write(
        &list,
        format!(
            "# compromised on INC-21\n\n  {}  \n{}\n# alice too\n{}\n{}\n",
            line(&dave),
            line(&erin),
            line(&alice),
            line(&dave)
        ),
    )
    .unwrap();
    let out = revoke(
        &hsm,
        &["--requester-key", &s(&list), "--reason", "INC-21 laptops"],
    );
    assert_ok(&out, "revoke --requester-key of a key list");
    let (shown, err) = (stdout(&out), stderr(&out));
    assert!(
        shown.contains(&format!(
            "requester key {} (ssh-ed25519, alice@laptop): every certificate for it, from any CA; in this ledger serial(s) 1",
            fp(&alice)
        )),
        "{shown}"
    );
    for k in [&dave, &erin] {
        assert!(
            err.contains(&format!(
                "note: no certificate of this CA was issued for {}",
                fp(k)
            )),
            "{err}"
        );
    }
    assert_eq!(err.matches("note: no certificate").count(), 2, "{err}");
    let v = ledger_json(&hsm).pop().unwrap();
    let mut want = vec![key_part(&alice), key_part(&dave), key_part(&erin)];
    want.sort();
    let got: Vec<String> = v["requester_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    assert_eq!(ledger_json(&hsm).len(), 3, "one record for the whole file");
    verify_ok(&hsm);

    // Refusals naming the line, nothing changed.
    let ca_line = std::fs::read_to_string(hsm.state.join("ca.pub")).unwrap();
    let private = std::fs::read_to_string(dir.join("alice")).unwrap();
    let cert = std::fs::read_to_string(cert_path(&alice)).unwrap();
    let fresh = keygen(dir, "fresh", &["-t", "ed25519"], "fresh@laptop");
    let fresh_line = line(&fresh);
    let bad = |name: &str, text: &str| {
        let p = hsm.path(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases = [
        (
            bad("cert.list", &format!("{fresh_line}\n\n{cert}")),
            ", line 3: this is a certificate, not a public key",
        ),
        (
            bad("private.list", &format!("{fresh_line}\n{private}")),
            ", line 2: this is a PRIVATE key",
        ),
        (
            bad(
                "garbage.list",
                &format!("{fresh_line}\nssh-ed25519 AAAA!!!! x\n"),
            ),
            ", line 2: the requester's public key cannot be read",
        ),
        (
            bad("ca.list", &format!("# keys\n{fresh_line}\n{ca_line}")),
            ", line 3: this is the CA's own key, not a requester's",
        ),
        (
            bad("empty.list", "# nothing here\n\n"),
            "holds no public key line",
        ),
    ];
    for (file, needle) in &cases {
        refused(
            &hsm,
            &["--requester-key", &s(file), "--reason", "INC-22"],
            1,
            needle,
        );
    }
    let big = hsm.path("big.list");
    std::fs::write(&big, format!("{fresh_line}\n").repeat(20_000)).unwrap();
    refused(
        &hsm,
        &["--requester-key", &s(&big), "--reason", "INC-22"],
        2,
        "is larger than 1024 KiB",
    );
    // Already revoked: refused; --force records the rest.
    let again = bad("again.list", &format!("{}\n{fresh_line}\n", line(&carol)));
    refused(
        &hsm,
        &["--requester-key", &s(&again), "--reason", "INC-23"],
        1,
        &format!(
            "the requester key {} is already revoked: revocation R1",
            fp(&carol)
        ),
    );
    assert_ok(
        &revoke(
            &hsm,
            &[
                "--requester-key",
                &s(&again),
                "--reason",
                "INC-23",
                "--force",
            ],
        ),
        "revoke --force",
    );

    // log --revoked-keys: every one, as OpenSSH lines with their fingerprints.
    let o = run(hsm.cmd().args(["log", "--revoked-keys"]));
    assert_ok(&o, "log --revoked-keys");
    let printed = stdout(&o);
    let mut want: Vec<String> = [&alice, &carol, &dave, &erin, &fresh]
        .iter()
        .map(|k| format!("{} {}", key_part(k), fp(k)))
        .collect();
    want.sort();
    assert_eq!(
        printed,
        want.iter().map(|l| format!("{l}\n")).collect::<String>()
    );
    assert!(
        stderr(&o).contains("revokes 5 requester key(s)"),
        "{}",
        stderr(&o)
    );
    let carried = hsm.path("carried-keys.pub");
    std::fs::write(&carried, &printed).unwrap();
    // ssh-keygen reads it as a list of public keys, with the fingerprints as comments.
    let o = run(std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&carried));
    assert_ok(&o, "ssh-keygen -lf carried-keys.pub");
    assert_eq!(stdout(&o).lines().count(), 5, "{}", stdout(&o));
    assert_fails(
        &run(hsm.cmd().args(["log", "--revoked-keys", "--json"])),
        2,
        "cannot be used with",
    );

    // Another state directory (a second CA): nothing revoked yet, then all carried over in one
    // record, exactly the same keys.
    hsm.add_token("backup-ca");
    let state2 = hsm.path("state2");
    let backup = |args: &[&str]| run(hsm.cmd().env("BREAKGLASS_CA_STATE_DIR", &state2).args(args));
    assert_ok(
        &backup(&[
            "--ca",
            &format!("pkcs11:token=backup-ca?module-path={MODULE}"),
            "init",
        ]),
        "init backup",
    );
    let o = backup(&["log", "--revoked-keys"]);
    assert_ok(&o, "log --revoked-keys, nothing revoked");
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("revokes no requester key: nothing printed"),
        "{}",
        stderr(&o)
    );
    let o = backup(&[
        "revoke",
        "--requester-key",
        &s(&carried),
        "--reason",
        "INC-24 carried over from the lost CA",
    ]);
    assert_ok(&o, "revoke --requester-key carried-keys.pub in the backup");
    assert_eq!(
        stderr(&o)
            .matches("note: no certificate of this CA")
            .count(),
        5,
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("more requester key"), "{}", stderr(&o));
    let o = backup(&["log", "--revoked-keys"]);
    assert_eq!(stdout(&o), printed);
}

#[test]
fn a_retired_ca_of_the_state_directory_can_be_revoked() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let old = hsm.init("ecdsa-p256");
    let old_pub = hsm.path("old.pub");
    std::fs::write(&old_pub, format!("{old}\n")).unwrap();
    let out = run(hsm.cmd().args(["--ca", &hsm.uri(), "init", "--force"]));
    assert_ok(&out, "init --force");
    let shown = revoke_ok(
        &hsm,
        &[
            "--ca",
            old_pub.to_str().unwrap(),
            "--reason",
            "INC-3 old key",
        ],
    );
    assert!(
        shown.contains("a retired CA of this state directory"),
        "{shown}"
    );
    verify_ok(&hsm);
}

/// Kill `revoke` runs with SIGKILL at random moments, and one while it waits for the lock of
/// a mint at its PIN prompt: every revocation is recorded whole or not at all, the chain stays
/// intact, no serial is reused, and a mint afterwards chains to them and binds them.
#[test]
fn revocations_survive_kill_9() {
    if !require(&["softhsm2-util", "ssh-keygen", "python3", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let alice = keygen(hsm.dir.path(), "alice", &["-t", "ed25519"], "alice@laptop");
    const CERTS: u64 = 22;
    for _ in 0..CERTS {
        assert_ok(&hsm.mint(&alice, &["-n", "breakglass", "-o", "-"]), "mint");
    }

    // 1. A revoke waiting for the lock of a mint at its PIN prompt, killed while it waits:
    // nothing is written. A second one waits, and records once the mint is done.
    let (mut first, ready, go) = mint_at_pin_prompt(&hsm, "INC-1 held", &alice);
    if !wait_for_file(&ready, Duration::from_secs(60)) {
        let out = wait_bounded(&mut first, Duration::from_secs(100));
        panic!(
            "the mint never asked for its PIN:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    let before = snapshot_state(&hsm.state);
    let waiting = |serial: &str| {
        hsm.cmd()
            .args([
                "revoke",
                "--serial",
                serial,
                "--reason",
                "INC-2 while a mint waits",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let killed = waiting("1");
    std::thread::sleep(Duration::from_millis(500));
    kill_process(Pid::from_child(&killed), Signal::KILL).unwrap();
    let out = killed.wait_with_output().unwrap();
    assert!(
        stderr(&out).contains("Waiting for another mint"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        snapshot_state(&hsm.state),
        before,
        "a revoke killed while waiting wrote something"
    );
    let mut second = waiting("2");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        second.try_wait().unwrap().is_none(),
        "the revoke did not wait for the mint's lock"
    );
    std::fs::write(&go, "").unwrap();
    let out = wait_bounded(&mut first, Duration::from_secs(60));
    assert_ok(&out, "the held mint");
    let out = wait_bounded(&mut second, Duration::from_secs(60));
    assert_ok(&out, "the waiting revoke");
    let lines = ledger_json(&hsm);
    assert_eq!(lines.len() as u64, CERTS + 2);
    assert_eq!(
        lines.last().unwrap()["last_serial"],
        CERTS + 1,
        "the revoke came after the mint"
    );

    // 2. Revokes killed at random moments, each revoking the next serial.
    let mut rng = Lcg(std::env::var("BREAKGLASS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11));
    // How long a revoke takes here (one that finds nothing to do reads and checks the same),
    // so the kills fall all over it.
    let mut times: Vec<u128> = (0..3)
        .map(|_| {
            let t = std::time::Instant::now();
            let out = revoke(&hsm, &["--serial", "2", "--force", "--reason", "timing"]);
            assert_ok(&out, "timing run");
            t.elapsed().as_micros()
        })
        .collect();
    times.sort();
    let span = u64::try_from(times[1] * 4).unwrap().max(1000);
    let (mut recorded, mut killed_runs) = (0, 0);
    for serial in 3..=CERTS {
        let mut c = hsm.cmd();
        c.args([
            "revoke",
            "--serial",
            &serial.to_string(),
            "--reason",
            &format!("INC-{serial} kill"),
        ]);
        let child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.next(span)));
        let _ = kill_process(Pid::from_child(&child), Signal::KILL);
        let out = child.wait_with_output().unwrap();
        let revoked = ledger_json_lenient(&hsm)
            .iter()
            .any(|v| is_revocation(v) && v["serials"] == serde_json::json!([[serial, serial]]));
        match out.status.code() {
            Some(0) => assert!(
                revoked,
                "revoke of {serial} said it was done but left no record"
            ),
            None => killed_runs += 1,
            Some(c) => panic!("revoke of {serial}: exit {c}: {}", stderr(&out)),
        }
        if revoked {
            recorded += 1;
        }
        // Whatever happened, the ledger verifies (a torn last line is a warning).
        let out = run(hsm.cmd().args(["log", "verify"]));
        assert_ok(
            &out,
            &format!("log verify after the kill of revoke {serial}"),
        );
    }
    eprintln!(
        "revocations_survive_kill_9: a revoke takes {} us; {killed_runs} of {} revokes killed, {recorded} recorded",
        times[1],
        CERTS - 2
    );
    assert!(
        killed_runs > 0,
        "no revoke was killed: the test tests nothing"
    );
    // 3. A mint after them: no serial reused, every revocation covered.
    assert_ok(
        &hsm.mint(&alice, &["-n", "breakglass", "-o", "-"]),
        "mint after the kills",
    );
    let serials = issued_serials(&hsm);
    assert_eq!(
        serials,
        (1..=CERTS + 2).collect::<Vec<_>>(),
        "a serial was reused or lost"
    );
    let verified = verify_ok(&hsm);
    assert!(!verified.contains("warning"), "{verified}");
    assert!(
        verified.contains(&format!("revocations: {} record(s)", recorded + 1)),
        "{verified}"
    );
}

/// The complete lines of the ledger that parse as JSON (a torn last line left out).
fn ledger_json_lenient(hsm: &Hsm) -> Vec<serde_json::Value> {
    std::fs::read_to_string(hsm.state.join("ledger.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_0_1_0_ledger_is_revoked_into_and_still_verifies() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let hsm = fixture_0_1_0();
    let before = verify_ok(&hsm);
    assert!(before.contains("old format"), "{before}");
    let shown = revoke_ok(
        &hsm,
        &["--serial", "2", "--reason", "INC-5 old certificate"],
    );
    assert!(shown.contains("serial 2"), "{shown}");
    let verified = verify_ok(&hsm);
    assert!(
        verified.contains("old format (no ledger binding): 3 record(s)"),
        "{verified}"
    );
    assert!(verified.contains("revocations: 1 record(s)"), "{verified}");
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "k@laptop");
    assert_ok(
        &hsm.mint(&key, &["-n", "breakglass", "-o", "-"]),
        "mint after",
    );
    let verified = verify_ok(&hsm);
    assert!(
        verified.contains("bound: 1 record(s), serials 4 to 4"),
        "{verified}"
    );
    assert!(!verified.contains("warning"), "{verified}");
    // A program that reads the ledger as 0.2.0 did (every line an issuance record) no longer
    // can: the format change the version says.
    let lines = ledger_json(&hsm);
    assert!(lines[3].get("serial").is_none() && is_revocation(&lines[3]));
}

/// Red team: anyone who can write the ledger can append a revocation (no token is needed),
/// e.g. of the backup CA, and the next mint's ledger binding signs it into the chain for good.
/// `mint` lists the revocation records it is about to cover before the PIN prompt (on a real
/// pseudo-terminal: before "PIN for"), every field from the ledger escaped (a hostile
/// `revoked_by`, a reason with a backslash); the mint after it lists none; many are cut to the
/// first five and a count.
#[test]
fn mint_shows_the_revocations_it_signs_before_the_pin() {
    if !require(&["softhsm2-util", "ssh-keygen", "python3", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let dir = hsm.dir.path();
    // A backup CA trusted by this state directory.
    hsm.add_token("backup-ca");
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA_STATE_DIR", hsm.path("backup-state"))
        .args([
            "--ca",
            &format!("pkcs11:token=backup-ca?module-path={MODULE}"),
            "init",
            "--algorithm",
            "ed25519",
        ]));
    assert_ok(&out, "init backup");
    let backup_pub = hsm.path("backup-ca.pub");
    std::fs::write(&backup_pub, stdout(&out)).unwrap();
    assert_ok(
        &run(hsm.cmd().arg("add-backup-ca").arg(&backup_pub)),
        "add-backup-ca",
    );
    let backup_fp = {
        let o = run(std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&backup_pub));
        stdout(&o).split_whitespace().nth(1).unwrap().to_string()
    };
    let alice = keygen(dir, "alice", &["-t", "ed25519"], "alice@laptop");
    assert_ok(
        &hsm.mint(&alice, &["-n", "breakglass", "-o", "-"]),
        "mint 1",
    );
    // R1 by the custodian; R2, the backup CA, "by" someone with an escape sequence.
    revoke_ok(
        &hsm,
        &["--serial", "1", "--reason", "INC-60 \\e[31m not red"],
    );
    revoke_ok(
        &hsm,
        &[
            "--ca",
            backup_pub.to_str().unwrap(),
            "--reason",
            "INC-61 rotation",
        ],
    );
    let ledger = hsm.state.join("ledger.jsonl");
    let text = std::fs::read_to_string(&ledger).unwrap();
    let last = text.lines().last().unwrap();
    let by = serde_json::from_str::<serde_json::Value>(last).unwrap()["revoked_by"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = last.replacen(
        &format!("\"revoked_by\":\"{by}\""),
        "\"revoked_by\":\"mallory\\u001b[2J\\u202e\"",
        1,
    );
    assert_ne!(forged, last);
    std::fs::write(&ledger, text.replacen(last, &forged, 1)).unwrap();
    verify_ok(&hsm);

    // The mint on a pseudo-terminal, the PIN typed at its prompt.
    let bob = keygen(dir, "bob", &["-t", "ed25519"], "bob@laptop");
    let (mut child, ready, go) = mint_at_pin_prompt(&hsm, "INC-62", &bob);
    std::fs::write(&go, "").unwrap();
    let out = wait_bounded(&mut child, Duration::from_secs(100));
    let screen = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{screen}");
    assert!(ready.exists(), "no PIN prompt:\n{screen}");
    let at = |needle: &str| {
        screen
            .find(needle)
            .unwrap_or_else(|| panic!("no '{needle}' on the screen:\n{screen}"))
    };
    let prompt = at("PIN for");
    for needle in [
        "Revocations:    this mint signs 2 revocation record(s) written since the last certificate",
        "  R1  ",
        "serial 1  (reason: INC-60 \\\\e[31m not red)",
        "  R2  ",
        &format!("by mallory\\e[2J\\u{{202e}}:  CA {backup_fp}  (reason: INC-61 rotation)"),
    ] {
        assert!(
            at(needle) < prompt,
            "'{needle}' after the PIN prompt:\n{screen}"
        );
    }
    assert!(
        !screen.contains('\u{1b}') && !screen.contains('\u{202e}'),
        "a raw escape reached the terminal:\n{screen:?}"
    );
    assert!(screen.contains("Issued serial 2 "), "{screen}");
    let shown: Vec<&str> = screen
        .lines()
        .filter(|l| l.starts_with("Revocations:") || l.starts_with("  R"))
        .collect();

    // The next mint covers nothing new: no such lines.
    let carol = keygen(dir, "carol", &["-t", "ed25519"], "carol@laptop");
    let out = hsm.mint(&carol, &["-n", "breakglass", "-o", "-"]);
    assert_ok(&out, "mint 3");
    assert!(!stderr(&out).contains("Revocations:"), "{}", stderr(&out));

    // Seven revocations (requester keys never certified): the first five, then a count.
    for i in 0..7 {
        let k = keygen(dir, &format!("k{i}"), &["-t", "ed25519"], "k");
        revoke_ok(
            &hsm,
            &[
                "--requester-key",
                k.to_str().unwrap(),
                "--reason",
                &format!("INC-7{i}"),
            ],
        );
    }
    let dave = keygen(dir, "dave", &["-t", "ed25519"], "dave@laptop");
    let out = hsm.mint(&dave, &["-n", "breakglass", "-o", "-"]);
    assert_ok(&out, "mint 4");
    let err = stderr(&out);
    let prompt = err.find("CA token:").unwrap();
    assert!(
        err.find("this mint signs 7 revocation record(s)").unwrap() < prompt
            && err.contains("  R7  ")
            && err.contains("(reason: INC-74)")
            && !err.contains("(reason: INC-75)")
            && err.contains("  ... and 2 more (R8 to R9; 'breakglass-ca log' lists R3 to R9)"),
        "{err}"
    );
    eprintln!("mint before the PIN:\n{}", shown.join("\n"));
}
