//! Untrusted text never reaches a terminal raw: requester key comments, reasons, a token label,
//! a hand-edited ledger and config.toml holding escape sequences, C1 controls, bidi overrides,
//! line separators, NUL and DEL. Every command that shows them (`mint`, `log`, `log show`,
//! `log --json`, `status`, `inspect`, `pubkey --format json`, and the errors) prints them
//! escaped, and the JSON forms are ASCII.

use std::path::{Path, PathBuf};
use std::process::Output;

use breakglass_ca::text::is_unsafe_char;

use crate::common::*;

/// The attack of the issue: move up, erase the line, return, and print a fake requester.
const REDRAW: &str = "x\u{1b}[1A\u{1b}[2K\rRequester:      alice";

/// A comment, reason or field of each kind that must never reach a terminal raw.
const HOSTILE: &[&str] = &[
    REDRAW,
    "c1\u{85}next\u{9b}2J",
    "bidi\u{202e}txt.exe\u{2066}i\u{2069}",
    "ls\u{2028}ps\u{2029}end",
    "nul\0del\u{7f}",
    "zw\u{200b}sp\u{feff}",
];

fn setup() -> Option<Hsm> {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return None;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    Some(hsm)
}

/// `bytes` is UTF-8 and holds no character that can act on a terminal, except line ends.
pub fn assert_safe(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes)
        .unwrap_or_else(|e| panic!("{what}: output is not UTF-8 ({e}): {bytes:?}"));
    if let Some(c) = text.chars().find(|&c| c != '\n' && is_unsafe_char(c)) {
        panic!("{what}: a raw {c:?} reached the terminal:\n{text:?}");
    }
}

/// Both streams of a command are safe, and no panic reached the user.
fn assert_output_safe(what: &str, out: &Output) {
    assert_safe(&format!("{what} (stdout)"), &out.stdout);
    assert_safe(&format!("{what} (stderr)"), &out.stderr);
    assert!(
        !stderr(out).contains("panicked"),
        "{what}: a panic reached the user:\n{}",
        stderr(out)
    );
}

/// A new Ed25519 key whose .pub line carries `comment` (written byte for byte: ssh-keygen -C
/// cannot take every character).
fn key_with_comment(dir: &Path, name: &str, comment: &str) -> PathBuf {
    let pubkey = keygen(dir, name, &["-t", "ed25519"], "placeholder");
    let line = std::fs::read_to_string(&pubkey).unwrap();
    let mut fields = line.split_whitespace();
    let (kind, blob) = (fields.next().unwrap(), fields.next().unwrap());
    std::fs::write(&pubkey, format!("{kind} {blob} {comment}\n")).unwrap();
    pubkey
}

fn ledger_lines(hsm: &Hsm) -> Vec<String> {
    std::fs::read_to_string(hsm.state.join("ledger.jsonl"))
        .map(|t| t.lines().map(String::from).collect())
        .unwrap_or_default()
}

/// Run every command that shows the ledger, the config or the token; all must be safe.
/// Returns their outputs by name.
fn show_everything(hsm: &Hsm, serial: u64, cert: &Path) -> Vec<(&'static str, Output)> {
    let runs: Vec<(&'static str, Vec<std::ffi::OsString>)> = vec![
        ("log", vec!["log".into()]),
        (
            "log show",
            vec!["log".into(), "show".into(), serial.to_string().into()],
        ),
        ("log --json", vec!["log".into(), "--json".into()]),
        ("log verify", vec!["log".into(), "verify".into()]),
        ("status", vec!["status".into()]),
        ("inspect", vec!["inspect".into(), cert.into()]),
        (
            "pubkey --format json",
            vec!["pubkey".into(), "--format".into(), "json".into()],
        ),
    ];
    runs.into_iter()
        .map(|(name, args)| {
            let out = run(hsm.cmd().args(&args));
            assert_output_safe(name, &out);
            (name, out)
        })
        .collect()
}

fn output<'a>(outs: &'a [(&str, Output)], name: &str) -> &'a Output {
    &outs.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn hostile_key_comments_are_shown_escaped() {
    let Some(hsm) = setup() else { return };
    for (i, comment) in HOSTILE.iter().enumerate() {
        let key = key_with_comment(hsm.dir.path(), &format!("k{i}"), comment);
        let out = hsm.mint(&key, &["-n", "breakglass", "--requester", "safe-name"]);
        assert_output_safe(&format!("mint for {comment:?}"), &out);
        assert_ok(&out, &format!("mint for {comment:?}"));
        let err = stderr(&out);
        assert!(err.contains("Requester:      safe-name (SHA256:"), "{err}");
        assert_eq!(
            err.matches("Requester:").count(),
            1,
            "a second Requester line:\n{err}"
        );
        // The certificate file carries the comment, made visible: it is shown on terminals.
        let cert = cert_path(&key);
        assert_safe("the certificate file", &std::fs::read(&cert).unwrap());
        ssh_keygen_list(&cert);

        let serial = i as u64 + 1;
        let outs = show_everything(&hsm, serial, &cert);
        for name in [
            "log",
            "log show",
            "log --json",
            "log verify",
            "status",
            "inspect",
        ] {
            assert_ok(output(&outs, name), name);
        }
        let inspect = stdout(output(&outs, "inspect"));
        assert!(inspect.contains("Comment: \""), "{inspect}");
        assert!(inspect.contains("CA: signed by this CA"), "{inspect}");
    }
    // The REDRAW comment, on every screen that shows it, stays on the line it belongs to.
    let key = hsm.path("k0.pub");
    let inspect = stdout(&run(hsm.cmd().arg("inspect").arg(cert_path(&key))));
    assert!(
        !inspect.lines().any(|l| l.starts_with("Requester:")),
        "{inspect}"
    );
    assert!(
        inspect.contains("x\\\\e[1A\\\\e[2K\\\\rRequester:"),
        "{inspect}"
    );
}

#[test]
fn a_reason_with_control_characters_is_refused() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    for reason in HOSTILE
        .iter()
        .filter(|r| !r.contains('\0'))
        .copied()
        .chain(["tab\there", "INC-1\nRequester: alice"])
    {
        let before = ledger_lines(&hsm);
        let mut c = hsm.cmd();
        c.args(["mint", "-n", "breakglass", "--reason", reason])
            .arg(&key);
        let out = run(&mut c);
        assert_output_safe(&format!("mint --reason {reason:?}"), &out);
        assert_fails(&out, 1, "--reason holds a control or invisible character");
        assert!(stderr(&out).contains("hint: "), "{}", stderr(&out));
        assert_eq!(ledger_lines(&hsm), before, "{reason:?} changed the ledger");
        assert!(!cert_path(&key).exists());
    }
}

/// Every byte of a URI value percent-encoded except letters and digits.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

#[test]
fn a_token_label_with_escape_sequences_is_shown_escaped() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let label = "ca\u{1b}[2J\u{9b}1m\u{202e}\r";
    let hsm = Hsm::new(label);
    let uri = format!("pkcs11:token={}?module-path={MODULE}", pct(label));
    let out = run(hsm
        .cmd()
        .args(["--ca", &uri, "init", "--algorithm", "ecdsa-p256"]));
    assert_output_safe("init", &out);
    assert_ok(&out, "init");
    let shown = "token 'ca\\e[2J\\u{9b}1m\\u{202e}\\r'";
    assert!(stderr(&out).contains(shown), "{}", stderr(&out));

    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let out = hsm.mint(&key, &["-n", "breakglass"]);
    assert_output_safe("mint", &out);
    assert_ok(&out, "mint");
    assert!(
        stderr(&out).contains(&format!("CA token:       {shown}")),
        "{}",
        stderr(&out)
    );

    let outs = show_everything(&hsm, 1, &cert_path(&key));
    let status = stdout(output(&outs, "status"));
    assert!(status.contains(shown), "{status}");
    let json = stdout(output(&outs, "pubkey --format json"));
    assert!(json.is_ascii(), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v["uri"].as_str().unwrap().to_lowercase().contains("%1b"),
        "{json}"
    );

    // A URI that matches no token lists the tokens present, escaped.
    let out = run(hsm.cmd().args([
        "--ca",
        &format!("pkcs11:token=nope?module-path={MODULE}"),
        "status",
    ]));
    assert_output_safe("status with a wrong token", &out);
    assert_fails(&out, 1, "no token matches the CA URI");
    assert!(stderr(&out).contains(shown), "{}", stderr(&out));
}

#[test]
fn a_ledger_and_config_edited_by_hand_are_shown_escaped() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    assert_ok(&hsm.mint(&key, &["-n", "breakglass"]), "mint");

    // Whoever can write the ledger chooses every field of it.
    let lines = ledger_lines(&hsm);
    let mut record: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let all = HOSTILE.join("|");
    for field in ["key_id", "requester_comment", "reason", "issued_at", "host"] {
        record[field] = all.clone().into();
    }
    record["principals"] = serde_json::json!([REDRAW, "breakglass"]);
    record["extensions"] = serde_json::json!([HOSTILE[1]]);
    record["critical_options"] = serde_json::json!({ "force-command": HOSTILE[2] });
    let cert_line = record["certificate"].as_str().unwrap().to_string();
    let mut parts = cert_line.splitn(3, ' ');
    let (kind, blob) = (parts.next().unwrap(), parts.next().unwrap());
    record["certificate"] = format!("{kind} {blob} {all}").into();
    let edited = serde_json::to_string(&record).unwrap();
    assert!(edited.contains('\u{85}') && edited.contains('\u{7f}'));
    std::fs::write(hsm.state.join("ledger.jsonl"), format!("{edited}\n")).unwrap();

    // And whoever can write config.toml, its values.
    let config_path = hsm.state.join("config.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let config: String = config
        .lines()
        .map(|l| {
            if l.starts_with("created") {
                "created = \"2026\\u001b[2J\\u009b\\u202e\\r\"\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&config_path, config).unwrap();

    let outs = show_everything(&hsm, 1, &cert_path(&key));
    let log = stdout(output(&outs, "log"));
    assert_ok(output(&outs, "log"), "log");
    assert!(log.contains("x\\e[1A\\e[2K\\rRequester:"), "{log}");
    assert_eq!(
        log.lines().count(),
        2,
        "a record became several lines:\n{log}"
    );

    let show = output(&outs, "log show");
    assert_ok(show, "log show");
    let show = stdout(show);
    assert!(
        show.contains("\\u001b[1A") && show.contains("\\u0085"),
        "{show}"
    );
    assert!(show.contains("Comment: \"x\\e[1A"), "{show}");

    let json = output(&outs, "log --json");
    assert_ok(json, "log --json");
    let json = stdout(json);
    assert!(json.is_ascii(), "{json}");
    let back: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(back, record, "log --json changed the record");

    let status = stdout(output(&outs, "status"));
    assert!(
        status.contains("created 2026\\e[2J\\u{9b}\\u{202e}\\r"),
        "{status}"
    );
    assert!(status.contains("issued x\\e[1A"), "{status}");

    // A mint on top of the edited ledger shows nothing raw either, whether it goes ahead or not.
    let key2 = keygen(hsm.dir.path(), "k2", &["-t", "ed25519"], "bob@laptop");
    assert_output_safe(
        "mint after the edit",
        &hsm.mint(&key2, &["-n", "breakglass"]),
    );
}

/// Red-team finding: a newline in a value clap quotes, in a file name or in a path made the
/// output show a line of the attacker's choosing (`hint: …`, `Signature: valid`).
#[test]
fn newlines_in_arguments_and_paths_never_start_a_line() {
    let Some(hsm) = setup() else { return };
    let key = keygen(hsm.dir.path(), "k", &["-t", "ed25519"], "alice@laptop");
    let forged_dir = hsm.path("x\nSignature: valid");
    let cases: Vec<(&str, Output)> = vec![
        (
            "mint -V",
            run(hsm
                .cmd()
                .args([
                    "mint",
                    "-n",
                    "bg",
                    "--reason",
                    "r",
                    "-V",
                    "1m\nhint: run init --force",
                ])
                .arg(&key)),
        ),
        (
            "mint --not-before",
            run(hsm
                .cmd()
                .args([
                    "mint",
                    "-n",
                    "bg",
                    "--reason",
                    "r",
                    "--not-before",
                    "x\nhint: y",
                ])
                .arg(&key)),
        ),
        (
            "inspect a missing path",
            run(hsm.cmd().arg("inspect").arg(forged_dir.join("c-cert.pub"))),
        ),
        (
            "mint -o into a missing directory",
            run(hsm
                .cmd()
                .args(["mint", "-n", "bg", "--reason", "r", "-o"])
                .arg(forged_dir.join("c-cert.pub"))
                .arg(&key)),
        ),
    ];
    for (what, out) in &cases {
        assert!(!out.status.success(), "{what}: {}", stderr(out));
        assert_output_safe(what, out);
        for line in stderr(out).lines().chain(stdout(out).lines()) {
            for forged in ["hint: run init", "hint: y", "Signature: valid"] {
                assert!(!line.starts_with(forged), "{what}: a forged line: {line}");
            }
        }
    }
}
