//! Every refusal of the issuance policy, through the real binary and a real token: the exit
//! code, the message, and that nothing was issued.

use std::path::Path;

use crate::common::*;

fn setup() -> Option<Hsm> {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return None;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    Some(hsm)
}

fn ledger_len(hsm: &Hsm) -> usize {
    std::fs::read_to_string(hsm.state.join("ledger.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn mint_fails(hsm: &Hsm, pubkey: &Path, args: &[&str], code: i32, needle: &str) {
    let before = ledger_len(hsm);
    let out = hsm.mint(pubkey, args);
    assert_fails(&out, code, needle);
    assert!(
        stderr(&out).contains("hint:") || code == 2,
        "no hint for '{needle}':\n{}",
        stderr(&out)
    );
    assert_eq!(
        ledger_len(hsm),
        before,
        "a refused mint wrote a ledger record ({needle})"
    );
    assert!(
        !cert_path(pubkey).exists() || needle.is_empty(),
        "a refused mint wrote a certificate"
    );
}

#[test]
fn principal_refusals() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let long = "p".repeat(256);
    mint_fails(&hsm, &key, &[], 2, "no principal given");
    for (args, needle) in [
        (vec!["-n", "a,"], "it is empty"),
        (vec!["-n", "a b"], "whitespace"),
        (vec!["-n", "a\u{1}b"], "control character"),
        (vec!["-n", "*"], "wildcard"),
        (vec!["-n", "ro?t"], "wildcard"),
        (vec!["-n", long.as_str()], "longer than 255 bytes"),
    ] {
        mint_fails(&hsm, &key, &args, 1, needle);
    }
}

#[test]
fn validity_refusals() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    for (v, code, needle) in [
        ("2h", 1, "longer than the policy maximum 1h"),
        ("61m", 1, "longer than the policy maximum 1h"),
        ("0m", 2, "it is zero"),
        ("-5m", 2, "negative"),
        ("99999999999999999999h", 2, "too large"),
        ("15", 2, "no unit"),
    ] {
        mint_fails(
            &hsm,
            &key,
            &["-n", "breakglass", &format!("--validity={v}")],
            code,
            needle,
        );
    }
    mint_fails(
        &hsm,
        &key,
        &["-n", "breakglass", "--backdate", "3h"],
        1,
        "backdate 3h is longer",
    );
    mint_fails(
        &hsm,
        &key,
        &["-n", "breakglass", "--not-before", "yesterday"],
        2,
        "not an RFC 3339 time",
    );
    mint_fails(
        &hsm,
        &key,
        &["-n", "breakglass", "--not-before", "1960-01-01T00:00:00Z"],
        1,
        "does not fit in a date",
    );
    // config.toml's policy is what caps: lower it and 30m is refused.
    let cfg = hsm.state.join("config.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_validity = \"1h\"", "max_validity = \"20m\"");
    std::fs::write(&cfg, text).unwrap();
    mint_fails(
        &hsm,
        &key,
        &["-n", "breakglass", "-V", "30m"],
        1,
        "longer than the policy maximum 20m",
    );
}

#[test]
fn requester_key_refusals() {
    let Some(hsm) = setup() else { return };
    let dir = hsm.dir.path();
    let rsa1024 = keygen(dir, "rsa1024", &["-t", "rsa", "-b", "1024"], "weak@r");
    mint_fails(
        &hsm,
        &rsa1024,
        &["-n", "breakglass"],
        1,
        "at least 2048 are required",
    );

    let dsa = dir.join("dsa.pub");
    std::fs::write(&dsa, "ssh-dss AAAAB3NzaC1kc3MAAACBAKxq dsa@r\n").unwrap();
    mint_fails(
        &hsm,
        &dsa,
        &["-n", "breakglass"],
        1,
        "DSA keys are insecure",
    );

    let malformed = dir.join("malformed.pub");
    std::fs::write(
        &malformed,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroken bad@r\n",
    )
    .unwrap();
    mint_fails(&hsm, &malformed, &["-n", "breakglass"], 1, "cannot be read");

    let ok = keygen(dir, "ok", &["-t", "ed25519"], "ok@r");
    let private = dir.join("private.pub");
    std::fs::copy(dir.join("ok"), &private).unwrap();
    mint_fails(&hsm, &private, &["-n", "breakglass"], 1, "PRIVATE key");

    assert_ok(&hsm.mint(&ok, &["-n", "breakglass"]), "mint ok");
    let cert_as_key = dir.join("certificate.pub");
    std::fs::copy(cert_path(&ok), &cert_as_key).unwrap();
    mint_fails(
        &hsm,
        &cert_as_key,
        &["-n", "breakglass"],
        1,
        "this is a certificate",
    );

    let ca_key = hsm.ca_pub_file();
    let ca_copy = dir.join("ca-as-requester.pub");
    std::fs::copy(&ca_key, &ca_copy).unwrap();
    mint_fails(
        &hsm,
        &ca_copy,
        &["-n", "breakglass"],
        1,
        "the CA key itself",
    );

    let nameless = keygen(dir, "nameless", &["-t", "ed25519"], "");
    mint_fails(
        &hsm,
        &nameless,
        &["-n", "breakglass"],
        1,
        "no comment naming its owner",
    );
    assert_ok(
        &hsm.mint(&nameless, &["-n", "breakglass", "--requester", "carol"]),
        "mint with --requester",
    );
}

#[test]
fn key_id_reason_and_option_refusals() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let long = "i".repeat(256);
    mint_fails(
        &hsm,
        &key,
        &["-n", "breakglass", "-I", "has space"],
        1,
        "printable ASCII without spaces",
    );
    mint_fails(
        &hsm,
        &key,
        &["-n", "breakglass", "-I", &long],
        1,
        "longer than 255 bytes",
    );
    mint_fails(
        &hsm,
        &key,
        &["-n", "breakglass", "-O", "permit-everything"],
        2,
        "unknown extension",
    );
    mint_fails(
        &hsm,
        &key,
        &["-n", "breakglass", "-O", "source-address=300.1.1.1"],
        2,
        "not an IP address",
    );
    let out = run(hsm
        .cmd()
        .args(["mint", "-n", "breakglass", "--reason", "  "])
        .arg(&key));
    assert_fails(&out, 1, "--reason is empty");
    let out = run(hsm.cmd().args(["mint", "-n", "breakglass"]).arg(&key));
    assert_fails(&out, 2, "--reason");
}

#[test]
fn pin_problems_are_clear() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    // No PIN source and no terminal.
    let mut c = hsm.cmd_without_terminal();
    c.env_remove("BREAKGLASS_CA_PIN_FILE")
        .args(["mint", "-n", "breakglass", "--reason", "r"])
        .arg(&key);
    let out = run(&mut c);
    assert_fails(&out, 2, "cannot ask for the PIN on a terminal");
    // A wrong PIN.
    let wrong = hsm.path("wrong-pin");
    std::fs::write(&wrong, "000000\n").unwrap();
    let out = run(hsm
        .cmd()
        .arg("--pin-file")
        .arg(&wrong)
        .args(["mint", "-n", "breakglass", "--reason", "r"])
        .arg(&key));
    assert_fails(&out, 1, "wrong PIN");
    // An empty PIN file is not an empty PIN.
    std::fs::write(&wrong, "\n").unwrap();
    let out = run(hsm
        .cmd()
        .arg("--pin-file")
        .arg(&wrong)
        .args(["mint", "-n", "breakglass", "--reason", "r"])
        .arg(&key));
    assert_fails(&out, 2, "empty first line");
    // --pin does not exist, and pin-value is refused in URIs.
    let out = run(hsm.cmd().args(["--pin", "123456", "status"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(hsm
        .cmd()
        .args(["--ca", &format!("{}&pin-value=123456", hsm.uri()), "pubkey"]));
    assert_fails(&out, 2, "pin-value is not accepted");
}
