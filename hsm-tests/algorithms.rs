//! Every CA algorithm on SoftHSM2: init, pubkey against `ssh-keygen -D`, mint for every
//! requester key type, `ssh-keygen -L`, and a real sshd that accepts the certificates.

use std::process::Command;

use crate::common::*;
use crate::sshd::Sshd;

/// Requester key types: ed25519, ecdsa 256/384/521, rsa-3072.
const REQUESTER_KEYS: [(&str, &[&str]); 5] = [
    ("ed25519", &["-t", "ed25519"]),
    ("ecdsa256", &["-t", "ecdsa", "-b", "256"]),
    ("ecdsa384", &["-t", "ecdsa", "-b", "384"]),
    ("ecdsa521", &["-t", "ecdsa", "-b", "521"]),
    ("rsa3072", &["-t", "rsa", "-b", "3072"]),
];

fn tools() -> bool {
    require(&["softhsm2-util", "ssh-keygen", "ssh", "sshd", MODULE])
}

/// `ssh-keygen -D MODULE` lists the token's public keys (EC and RSA in OpenSSH 9.2).
fn ssh_keygen_d(hsm: &Hsm) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-D")
        .arg(MODULE)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .output()
        .unwrap();
    assert_ok(&out, "ssh-keygen -D");
    stdout(&out)
}

fn key_part(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn whole_flow(algorithm: &str) {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let line = hsm.init(algorithm);

    // pubkey: no PIN (none given), equal to what init printed and to ssh-keygen -D.
    let mut c = hsm.cmd();
    c.env_remove("BREAKGLASS_CA_PIN_FILE").arg("pubkey");
    let out = run(&mut c);
    assert_ok(&out, "pubkey");
    assert_eq!(stdout(&out).trim(), line);
    if algorithm != "ed25519" {
        let listed = ssh_keygen_d(&hsm);
        assert!(
            listed.lines().any(|l| key_part(l) == key_part(&line)),
            "ssh-keygen -D does not list {line}:\n{listed}"
        );
    }
    let out = run(hsm.cmd().args(["pubkey", "--format", "fingerprint"]));
    let fp = stdout(&out).trim().to_string();
    let ca_pub = hsm.ca_pub_file();
    let keygen_fp = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&ca_pub)
        .output()
        .unwrap();
    assert!(
        stdout(&keygen_fp).contains(&fp),
        "{fp} vs {}",
        stdout(&keygen_fp)
    );

    // mint for every requester key type, checked by ssh-keygen -L and accepted by sshd.
    let sshd = Sshd::start(&[&ca_pub], &["breakglass"], "");
    let mut serials = Vec::new();
    for (name, args) in REQUESTER_KEYS {
        let pubkey = keygen(hsm.dir.path(), name, args, &format!("{name}@requester"));
        let out = hsm.mint(&pubkey, &["-n", "breakglass"]);
        assert_ok(&out, &format!("mint for {name} with a {algorithm} CA"));
        let cert = cert_path(&pubkey);
        let listed = ssh_keygen_list(&cert);
        assert!(listed.contains("breakglass"), "{listed}");
        // The ledger binding rides along as a non-critical extension sshd ignores: ssh-keygen
        // -L shows it (name, then its bytes in hex: length 64, then 64 ASCII hex digits).
        assert!(
            listed.contains("ledger-binding-v1@breakglass-ca UNKNOWN OPTION: 00000040")
                && listed.contains("(len 68)"),
            "{listed}"
        );
        if algorithm.starts_with("rsa") {
            assert!(
                listed.contains("using rsa-sha2-512"),
                "RSA CA must sign with rsa-sha2-512:\n{listed}"
            );
        }
        let serial = listed_serial(&listed);
        serials.push(serial);
        assert!(
            sshd.login(&pubkey.with_extension(""), &cert),
            "sshd refused a {name} certificate from a {algorithm} CA:\n{}",
            sshd.log_text()
        );
    }
    assert_eq!(serials, [1, 2, 3, 4, 5]);
    // Each of them carries its own record's hash, and the ledger verifies without checkpoints.
    let ledger = std::fs::read_to_string(hsm.state.join("ledger.jsonl")).unwrap();
    for line in ledger.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["format"], 2, "{line}");
    }
    assert!(!hsm.state.join("checkpoints.jsonl").exists());
    let out = run(hsm.cmd().args(["log", "verify"]));
    assert_ok(&out, "log verify");
    assert!(
        stdout(&out).contains("bound: 5 record(s), serials 1 to 5"),
        "{}",
        stdout(&out)
    );
    let log = sshd.log_text();
    assert!(
        log.contains("Accepted certificate ID \"ed25519@requester#1:INC-42-test\" (serial 1)"),
        "{log}"
    );

    // inspect agrees, and checks the CA given with --ca-pubkey.
    let cert = cert_path(&hsm.path("ed25519.pub"));
    let out = run(hsm
        .cmd()
        .arg("inspect")
        .arg(&cert)
        .arg("--ca-pubkey")
        .arg(&ca_pub));
    assert_ok(&out, "inspect");
    assert!(stdout(&out).contains("Signature: valid"));
}

#[test]
fn ecdsa_p256_ca() {
    whole_flow("ecdsa-p256");
}

#[test]
fn ecdsa_p384_ca() {
    whole_flow("ecdsa-p384");
}

#[test]
fn ed25519_ca() {
    whole_flow("ed25519");
}

#[test]
fn rsa_3072_ca() {
    whole_flow("rsa-3072");
}

#[test]
fn rsa_4096_ca() {
    whole_flow("rsa-4096");
}

/// sshd refuses a wrong principal, an expired certificate and a certificate from another CA.
#[test]
fn sshd_refuses_what_it_must() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let other = Hsm::new("other-ca");
    other.init("ecdsa-p256");
    let sshd = Sshd::start(&[&hsm.ca_pub_file()], &["breakglass"], "");

    let good = keygen(hsm.dir.path(), "good", &["-t", "ed25519"], "good@r");
    assert_ok(&hsm.mint(&good, &["-n", "breakglass"]), "mint good");
    assert!(
        sshd.login(&good.with_extension(""), &cert_path(&good)),
        "{}",
        sshd.log_text()
    );

    let wrong = keygen(hsm.dir.path(), "wrong", &["-t", "ed25519"], "wrong@r");
    assert_ok(
        &hsm.mint(&wrong, &["-n", "someone-else"]),
        "mint wrong principal",
    );
    assert!(!sshd.login(&wrong.with_extension(""), &cert_path(&wrong)));

    let expired = keygen(hsm.dir.path(), "expired", &["-t", "ed25519"], "expired@r");
    let start = (chrono::Utc::now() - chrono::TimeDelta::hours(2)).to_rfc3339();
    assert_ok(
        &hsm.mint(
            &expired,
            &[
                "-n",
                "breakglass",
                "--not-before",
                &start,
                "-V",
                "10m",
                "--force-window",
            ],
        ),
        "mint expired",
    );
    assert!(!sshd.login(&expired.with_extension(""), &cert_path(&expired)));
    let out = run(hsm.cmd().arg("inspect").arg(cert_path(&expired)));
    assert_fails(&out, 1, "expired");

    let foreign = keygen(hsm.dir.path(), "foreign", &["-t", "ed25519"], "foreign@r");
    assert_ok(
        &other.mint(&foreign, &["-n", "breakglass"]),
        "mint by other CA",
    );
    assert!(!sshd.login(&foreign.with_extension(""), &cert_path(&foreign)));
    let out = run(hsm
        .cmd()
        .arg("inspect")
        .arg(cert_path(&foreign))
        .arg("--ca-pubkey")
        .arg(hsm.ca_pub_file()));
    assert_fails(&out, 1, "different CA");

    let log = sshd.log_text();
    assert!(
        log.contains("Certificate does not contain an authorized principal"),
        "{log}"
    );
    assert!(log.contains("expired"), "{log}");
}
