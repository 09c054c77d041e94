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

/// Where the PIN comes from is said before it is read; a CA URI whose pin-source names one
/// file while --pin-file (or BREAKGLASS_CA_PIN_FILE) names another is refused, without
/// reading either: the URI's file used to win silently, a wrong PIN in it costing a try.
#[test]
fn the_pin_source_is_said_and_two_pin_files_are_refused() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let mint = |c: &mut std::process::Command| {
        run(c
            .args(["mint", "-n", "breakglass", "--reason", "r", "-o", "-"])
            .arg(&key))
    };
    let out = mint(&mut hsm.cmd());
    assert_ok(&out, "mint");
    let line = format!(
        "PIN from:       the file {} (BREAKGLASS_CA_PIN_FILE)",
        hsm.pin_file.display()
    );
    assert!(stderr(&out).lines().any(|l| l == line), "{}", stderr(&out));
    let copy = hsm.path("pin-copy");
    std::fs::copy(&hsm.pin_file, &copy).unwrap();
    let out = mint(
        hsm.cmd()
            .env_remove("BREAKGLASS_CA_PIN_FILE")
            .arg("--pin-file")
            .arg(&copy),
    );
    assert_ok(&out, "mint --pin-file");
    let line = format!("PIN from:       the file {} (--pin-file)", copy.display());
    assert!(stderr(&out).lines().any(|l| l == line), "{}", stderr(&out));
    // The URI's pin-source names a file with a wrong PIN, the environment the right one.
    let wrong = hsm.path("wrong-pin");
    std::fs::write(&wrong, "000000\n").unwrap();
    let uri = |pin: &Path| format!("{}&pin-source=file:{}", hsm.uri(), pin.display());
    let before = snapshot_state(&hsm.state);
    let out = mint(hsm.cmd().args(["--ca", &uri(&wrong)]));
    assert_fails(&out, 2, "which of them holds the PIN is unclear");
    assert!(
        stderr(&out).contains("BREAKGLASS_CA_PIN_FILE"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot_state(&hsm.state), before);
    let out = run(hsm.cmd().arg("status"));
    assert!(
        stdout(&out).contains("ok (the token does not report a count)"),
        "a wrong PIN was tried: {}",
        stdout(&out)
    );
    // The same file both ways, or the URI's alone: used, and said.
    let out = mint(hsm.cmd().args(["--ca", &uri(&hsm.pin_file)]));
    assert_ok(&out, "mint with the same file twice");
    let out = mint(
        hsm.cmd()
            .env_remove("BREAKGLASS_CA_PIN_FILE")
            .args(["--ca", &uri(&copy)]),
    );
    assert_ok(&out, "mint with pin-source");
    let line = format!(
        "PIN from:       the file {} (pin-source of the CA URI)",
        copy.display()
    );
    assert!(stderr(&out).lines().any(|l| l == line), "{}", stderr(&out));
}

/// What sshd would refuse (or silently ignore) is refused at mint, before the token is opened,
/// and the state directory is left as it was.
#[test]
fn what_sshd_would_refuse_is_refused_at_mint() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let many = (0..257)
        .map(|i| format!("p{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let long_id = format!("{}\"", "i".repeat(255));
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["-n", &many], 1, "257 principals"),
        (vec!["-n", "root\u{200b}"], 1, "not printable ASCII"),
        (vec!["-n", "r\u{43e}\u{43e}t"], 1, "not printable ASCII"),
        (vec!["-n", "#root"], 1, "contains #"),
        (vec!["-n", "ops#1"], 1, "contains #"),
        (vec!["-n", "breakglass", "-I", "x\"y"], 1, "contains \""),
        (
            vec!["-n", "breakglass", "-I", &long_id],
            1,
            "longer than 255",
        ),
        (
            vec![
                "-n",
                "breakglass",
                "-O",
                "source-address=10.0.0.1",
                "-O",
                "source-address=0.0.0.0/0",
            ],
            2,
            "critical option source-address is given twice",
        ),
        (
            vec!["-n", "breakglass", "-O", "source-address=10.0.0.1,"],
            2,
            "empty entry",
        ),
        (
            vec![
                "-n",
                "breakglass",
                "-O",
                "source-address=10.0.0.1, 10.0.0.2",
            ],
            2,
            "not an IP address",
        ),
        (
            vec!["-n", "breakglass", "-O", "source-address=10.0.0.1/8"],
            2,
            "host bits set",
        ),
        (
            vec!["-n", "breakglass", "-O", "source-address=10.1"],
            2,
            "not an IP address",
        ),
        (
            vec![
                "-n",
                "breakglass",
                "-O",
                "force-command=/bin/true\nrm -rf /",
            ],
            2,
            "control or invisible",
        ),
        (
            vec![
                "-n",
                "breakglass",
                "-O",
                "force-command=/bin/true",
                "-O",
                "force-command=/bin/sh",
            ],
            2,
            "given twice",
        ),
        (
            vec!["-n", "breakglass", "-O", "critical:force-command=/bin/sh"],
            2,
            "use -O force-command",
        ),
        (
            vec!["-n", "breakglass", "-O", "extension:a b"],
            2,
            "printable ASCII",
        ),
        (
            vec!["-n", "breakglass", "-O", "no-touch-required"],
            1,
            "only to security keys",
        ),
        (
            vec!["-n", "breakglass", "-O", "verify-required"],
            1,
            "only to security keys",
        ),
        (
            vec!["-n", "breakglass", "--requester", "bob\u{1b}[2J"],
            1,
            "control or invisible",
        ),
    ];
    for (args, code, needle) in cases {
        let before = crate::requester_keys::snapshot(&hsm.state);
        let out = hsm.mint(&key, &args);
        assert_fails(&out, code, needle);
        let err = stderr(&out);
        assert!(err.contains("error: "), "{err}");
        assert!(err.contains("hint:"), "no hint for {needle}:\n{err}");
        assert!(
            !err.contains("PIN state"),
            "token opened for {needle}:\n{err}"
        );
        assert!(!err.contains('\u{1b}'), "raw escape in the error:\n{err}");
        assert!(
            crate::requester_keys::snapshot(&hsm.state) == before,
            "{needle}: state changed"
        );
        assert!(!cert_path(&key).exists());
    }

    // A key comment crafted to redraw the screen: refused, with the hint to name the requester.
    let evil = hsm.path("evil.pub");
    let line = std::fs::read_to_string(&key).unwrap();
    let parts: Vec<&str> = line.split_whitespace().collect();
    std::fs::write(
        &evil,
        format!(
            "{} {} alice\u{1b}[1A\u{1b}[2K\rRequester: bob\n",
            parts[0], parts[1]
        ),
    )
    .unwrap();
    let before = crate::requester_keys::snapshot(&hsm.state);
    let out = hsm.mint(&evil, &["-n", "breakglass"]);
    assert_fails(&out, 1, "the public key's comment");
    assert!(
        stderr(&out).contains("--requester NAME"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains('\u{1b}'));
    assert!(crate::requester_keys::snapshot(&hsm.state) == before);
    // Named by the custodian, it mints; the certificate file carries no such comment.
    let out = hsm.mint(&evil, &["-n", "breakglass", "--requester", "alice"]);
    assert_ok(&out, "mint with --requester over a hostile comment");
    let cert = std::fs::read_to_string(cert_path(&evil)).unwrap();
    assert!(!cert.contains('\u{1b}') && !cert.contains('\r'), "{cert:?}");
}

/// extension:NAME[=VALUE] and critical:NAME[=VALUE] reach the certificate as ssh-keygen makes
/// them, and the pre-PIN screen and summary list them.
#[test]
fn custom_options_reach_the_certificate_and_the_screen() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let out = hsm.mint(
        &key,
        &[
            "-n",
            "breakglass",
            "-O",
            "clear",
            "-O",
            "extension:login@github.com=alice",
            "-O",
            "critical:audit@example.com=INC-42",
            "-O",
            "force-command=/usr/bin/uptime -p",
            "-O",
            "source-address=127.0.0.1,192.0.2.0/24",
        ],
    );
    assert_ok(&out, "mint with custom options");
    let listed = ssh_keygen_list(&cert_path(&key));
    for needle in [
        // the value inside, as a wire string: "alice", "INC-42"
        "login@github.com UNKNOWN OPTION: 00000005616c696365",
        "audit@example.com UNKNOWN OPTION: 00000006494e432d3432",
        "force-command /usr/bin/uptime -p",
        "source-address 127.0.0.1,192.0.2.0/24",
    ] {
        assert!(
            listed
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .contains(needle),
            "ssh-keygen -L lacks {needle}:\n{listed}"
        );
    }
    assert!(!listed.contains("permit-pty"), "{listed}");
    let err = stderr(&out);
    let screen = err.split("PIN state").next().unwrap();
    assert!(
        screen.contains("Critical:       audit@example.com=\"INC-42\", force-command=\"/usr/bin/uptime -p\", source-address=\"127.0.0.1,192.0.2.0/24\""),
        "{err}"
    );
    assert!(
        screen.contains("Extensions:     login@github.com=\"alice\""),
        "{err}"
    );
    assert!(
        screen.contains("NOTE: audit@example.com is not a critical option OpenSSH knows"),
        "{err}"
    );
    let summary = err.split("Issued serial").nth(1).unwrap();
    assert!(
        summary.contains("critical:    audit@example.com=\"INC-42\", force-command"),
        "{err}"
    );
    assert!(
        summary.contains("extensions:  login@github.com=\"alice\"\n"),
        "{err}"
    );
    assert!(
        summary.contains("ledger:      bound to its record (ledger-binding-v1@breakglass-ca="),
        "{err}"
    );
}

/// --not-before: a window already over, or starting beyond max_start_ahead, is refused unless
/// --force-window (not --force), and a forced one is announced before the PIN and after.
#[test]
fn not_before_window_rules() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    // A first record, so that the ledger and its lock exist and refusals change nothing.
    assert_ok(&hsm.mint(&key, &["-n", "breakglass"]), "first mint");
    std::fs::remove_file(cert_path(&key)).unwrap();
    let at = |mins: i64| (chrono::Utc::now() + chrono::TimeDelta::minutes(mins)).to_rfc3339();
    let (past, soon, later) = (at(-120), at(30), at(180));
    for (args, needle) in [
        (
            vec!["--not-before", past.as_str(), "-V", "10m"],
            "which is already past",
        ),
        (
            vec!["--not-before", later.as_str()],
            "more than the policy's max_start_ahead (1h)",
        ),
        (
            vec!["--not-before", later.as_str(), "--force"],
            "max_start_ahead",
        ),
    ] {
        let before = crate::requester_keys::snapshot(&hsm.state);
        let out = hsm.mint(&key, &[&["-n", "breakglass"][..], &args].concat());
        assert_fails(&out, 1, needle);
        assert!(stderr(&out).contains("--force-window"), "{}", stderr(&out));
        assert!(!stderr(&out).contains("PIN state"), "{}", stderr(&out));
        assert!(
            crate::requester_keys::snapshot(&hsm.state) == before,
            "{needle}"
        );
        assert!(!cert_path(&key).exists());
    }
    assert_ok(
        &hsm.mint(&key, &["-n", "breakglass", "--not-before", &soon]),
        "30 minutes ahead is within max_start_ahead",
    );
    for args in [
        ["--not-before", later.as_str(), "-V", "10m"],
        ["--not-before", past.as_str(), "-V", "10m"],
    ] {
        let out = hsm.mint(
            &key,
            &[&["-n", "breakglass", "--force-window"][..], &args].concat(),
        );
        assert_ok(&out, "--force-window");
        let err = stderr(&out);
        let (screen, summary) = err.split_once("Issued serial").unwrap();
        assert!(
            screen
                .split("PIN state")
                .next()
                .unwrap()
                .contains("NOTE: --force-window allowed this"),
            "{err}"
        );
        assert!(
            summary.contains("NOTE: --force-window allowed this"),
            "{err}"
        );
    }
    // The allowance comes from config.toml.
    let cfg = hsm.state.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("max_start_ahead = \"1h\""), "{text}");
    std::fs::write(
        &cfg,
        text.replace("max_start_ahead = \"1h\"", "max_start_ahead = \"4h\""),
    )
    .unwrap();
    assert_ok(
        &hsm.mint(&key, &["-n", "breakglass", "--not-before", &later]),
        "3h ahead with max_start_ahead = 4h",
    );
    // A config.toml written before max_start_ahead existed still loads (default 1h).
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("max_start_ahead = \"4h\"\n", "")).unwrap();
    assert_fails(
        &hsm.mint(&key, &["-n", "breakglass", "--not-before", &later]),
        1,
        "max_start_ahead (1h)",
    );
}

/// An output directory that does not exist is refused before the ledger is locked or the
/// token opened: no serial is spent.
#[test]
fn missing_output_directory_is_refused_first() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    assert_ok(&hsm.mint(&key, &["-n", "breakglass"]), "first mint");
    let before = crate::requester_keys::snapshot(&hsm.state);
    let missing = hsm.path("no/such/dir/k-cert.pub");
    let out = run(hsm
        .cmd()
        .args(["mint", "--reason", "r", "-n", "breakglass", "-o"])
        .arg(&missing)
        .arg(&key));
    assert_fails(&out, 2, "does not exist");
    assert!(
        stderr(&out).contains("nothing was done"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("PIN state"), "{}", stderr(&out));
    assert!(crate::requester_keys::snapshot(&hsm.state) == before);
    let out = run(hsm.cmd().args(["log", "--json"]));
    assert_eq!(stdout(&out).lines().count(), 1, "a serial was spent");
}
