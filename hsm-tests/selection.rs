//! Choosing the token and key: ambiguity is an error that lists the candidates, `init` never
//! replaces a key without `--force`, and the configuration notices a different token.

use crate::common::*;

fn tools() -> bool {
    require(&["softhsm2-util", "ssh-keygen", MODULE])
}

#[test]
fn two_tokens_without_token_attribute_is_ambiguous() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.add_token("second-ca");
    let uri = format!("pkcs11:?module-path={MODULE}");
    let out = run(hsm.cmd().args(["--ca", &uri, "pubkey"]));
    assert_fails(&out, 1, "2 tokens match the CA URI, refusing to guess");
    let err = stderr(&out);
    assert!(
        err.contains("token 'emergency-ca'") && err.contains("token 'second-ca'"),
        "{err}"
    );
    assert!(
        err.contains("hint: add token=LABEL or serial=SERIAL"),
        "{err}"
    );
    // token= selects one.
    hsm.init("ecdsa-p256");
    let out = run(hsm.cmd().args([
        "--ca",
        &uri.replace("pkcs11:", "pkcs11:token=emergency-ca"),
        "pubkey",
    ]));
    assert_ok(&out, "pubkey with token=");
    // No such token lists the ones present.
    let out = run(hsm.cmd().args([
        "--ca",
        &uri.replace("pkcs11:", "pkcs11:token=nope"),
        "pubkey",
    ]));
    assert_fails(&out, 1, "no token matches the CA URI; tokens present");
}

#[test]
fn two_keys_with_one_label_is_ambiguous() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    // A second key with the same label, made by another tool.
    let out = std::process::Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", &hsm.conf)
        .args([
            "--module",
            MODULE,
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "breakglass-ca",
            "--id",
            "99",
        ])
        .output()
        .unwrap();
    assert_ok(&out, "pkcs11-tool --keypairgen");
    let out = run(hsm.cmd().args([
        "--ca",
        &format!("pkcs11:token=emergency-ca;object=breakglass-ca?module-path={MODULE}"),
        "pubkey",
    ]));
    assert_fails(&out, 1, "2 keys on token 'emergency-ca'");
    assert!(stderr(&out).contains("id=99"), "{}", stderr(&out));
    // id= selects one.
    let out = run(hsm.cmd().args([
        "--ca",
        &format!("pkcs11:token=emergency-ca;id=%99?module-path={MODULE}"),
        "pubkey",
    ]));
    assert_ok(&out, "pubkey with id=");
    // A missing key names the keys that are there.
    let out = run(hsm.cmd().args([
        "--ca",
        &format!("pkcs11:token=emergency-ca;object=nope?module-path={MODULE}"),
        "pubkey",
    ]));
    assert_fails(&out, 1, "no CA key matching the URI");
    assert!(
        stderr(&out).contains("object=breakglass-ca"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_refuses_to_replace_without_force() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let first = hsm.init("ecdsa-p256");
    // The state directory has a CA: refused before the token is even opened.
    let out = run(hsm.cmd().args(["--ca", &hsm.uri(), "init"]));
    assert_fails(&out, 1, "already holds a CA");
    assert!(stderr(&out).contains("--force"));
    // A new state directory, but the token has the key: refused too.
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA_STATE_DIR", hsm.path("other-state"))
        .args(["--ca", &hsm.uri(), "init"]));
    assert_fails(&out, 1, "a CA key 'breakglass-ca' already exists");
    assert!(stderr(&out).contains("--force"));
    assert!(!hsm.path("other-state").exists());
    let out = run(hsm.cmd().args([
        "--ca",
        &hsm.uri(),
        "init",
        "--algorithm",
        "ed25519",
        "--force",
    ]));
    assert_ok(&out, "init --force");
    let second = stdout(&out).trim().to_string();
    assert_ne!(first, second);
    assert!(second.starts_with("ssh-ed25519 "));
    // exactly one key left on the token: pubkey without object= works and gives the new key.
    let out = run(hsm.cmd().args(["--ca", &hsm.uri(), "pubkey"]));
    assert_eq!(stdout(&out).trim(), second);
}

#[test]
fn a_different_token_behind_the_configured_uri_is_refused() {
    if !tools() {
        return;
    }
    let a = Hsm::new("emergency-ca");
    a.init("ecdsa-p256");
    let b = Hsm::new("emergency-ca");
    b.init("ecdsa-p256");
    // b's token with a's state dir: the fingerprints differ.
    let key = keygen(a.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let mut c = b.cmd();
    c.env("BREAKGLASS_CA_STATE_DIR", &a.state)
        .args(["--ca", &b.uri(), "mint", "-n", "x", "--reason", "r"])
        .arg(&key);
    assert_fails(&run(&mut c), 1, "is not the CA configured in");
}

#[test]
fn missing_module_path_lists_modules() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let mut c = hsm.cmd();
    c.env_remove("BREAKGLASS_CA_PKCS11_MODULE").args([
        "--ca",
        "pkcs11:token=emergency-ca",
        "pubkey",
    ]);
    let out = run(&mut c);
    assert_fails(&out, 2, "does not say which PKCS#11 module to load");
    assert!(stderr(&out).contains(MODULE), "{}", stderr(&out));
    let mut c = hsm.cmd();
    c.env("BREAKGLASS_CA_PKCS11_MODULE", MODULE).args([
        "--ca",
        "pkcs11:token=emergency-ca",
        "status",
    ]);
    assert_fails(&run(&mut c), 1, "no CA key matching the URI");
    let out = run(hsm.cmd().args([
        "--ca",
        "pkcs11:token=emergency-ca?module-path=/nonexistent.so",
        "pubkey",
    ]));
    assert_fails(&out, 1, "cannot load the PKCS#11 module /nonexistent.so");
}

#[test]
fn status_reports_token_key_and_ledger() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p384");
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    assert_ok(&hsm.mint(&key, &["-n", "breakglass"]), "mint");
    let mut c = hsm.cmd();
    c.env_remove("BREAKGLASS_CA_PIN_FILE").arg("status");
    let out = run(&mut c);
    assert_ok(&out, "status");
    let text = stdout(&out);
    for needle in [
        "token 'emergency-ca'",
        "ecdsa-p384",
        "SHA256:",
        "last serial 1",
        "alice@laptop",
        "PIN:",
    ] {
        assert!(text.contains(needle), "status lacks {needle}:\n{text}");
    }
}
