//! Token-free exports: `pubkey` (every format, with and without `--bundle`) and `host-config`
//! from `STATE/ca.pub` when the token is not plugged in, byte for byte what they write with
//! the token; a `ca.pub` that is not config.toml's CA, or not the token's key, refused with
//! the state directory unchanged and nothing written; a broken module still an error, never
//! a fallback; `--ca` naming another key never falls back. And `log verify --ca-pubkey FILE`,
//! the auditor's own copy of the key, on the state directory and on an exported bundle.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{
    assert_fails, assert_ok, keygen, run, snapshot_dir, snapshot_state, stderr, stdout, Hsm,
};

fn tools() -> bool {
    crate::common::require(&["softhsm2-util", "ssh-keygen"])
}

/// Every `pubkey` run compared: its arguments and the output file it writes (`None`: stdout).
fn exports() -> Vec<(Vec<&'static str>, Option<&'static str>)> {
    let mut all = Vec::new();
    for bundle in [false, true] {
        let b = |mut v: Vec<&'static str>| {
            if bundle {
                v.push("--bundle");
            }
            v
        };
        let file = |name: &'static str, bundled: &'static str| match bundle {
            false => Some(name),
            true => Some(bundled),
        };
        all.push((b(vec!["--format", "openssh"]), None));
        all.push((b(vec!["--format", "fingerprint"]), None));
        all.push((b(vec!["--format", "json"]), None));
        all.push((b(vec!["--format", "qr"]), None));
        all.push((b(vec!["--format", "png"]), file("qr.png", "qr-b.png")));
        all.push((b(vec!["--format", "svg"]), file("qr.svg", "qr-b.svg")));
        all.push((
            b(vec!["--format", "sheet"]),
            file("sheet.svg", "sheet-b.svg"),
        ));
    }
    all
}

/// Run `pubkey ARGS [-o DIR/FILE]`; the output (stdout, or the file's bytes) and stderr.
fn pubkey(hsm: &Hsm, args: &[&str], file: Option<&str>, dir: &Path) -> (Vec<u8>, String) {
    let mut c = hsm.cmd();
    c.arg("pubkey").args(args);
    if let Some(f) = file {
        c.arg("-o").arg(dir.join(f));
    }
    let out = run(&mut c);
    assert_ok(&out, &format!("pubkey {}", args.join(" ")));
    let bytes = match file {
        Some(f) => std::fs::read(dir.join(f)).unwrap(),
        None => out.stdout.clone(),
    };
    (bytes, stderr(&out))
}

/// A sheet with what legitimately differs between two printings blanked: the token's and the
/// key's description (read from the token, or "not read" from ca.pub) and the printing time.
fn sheet_without_token_facts(svg: &[u8]) -> String {
    String::from_utf8_lossy(svg)
        .lines()
        .map(|l| {
            if l.contains("id=\"primary-token\"") {
                "TOKEN".to_string()
            } else if l.contains("id=\"primary-key\"") {
                "KEY".to_string()
            } else if l.contains("Printed ") {
                "PRINTED".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text of the SVG element with this id.
fn svg_text(svg: &[u8], id: &str) -> String {
    let svg = String::from_utf8_lossy(svg);
    let at = svg.find(&format!("id=\"{id}\"")).unwrap();
    let start = at + svg[at..].find('>').unwrap() + 1;
    let end = start + svg[start..].find('<').unwrap();
    svg[start..end].to_string()
}

/// Take the token out: SoftHSM2 deletes it from its store (the module and its configuration
/// stay, as on a laptop with the middleware installed and the token in the vault).
fn unplug(hsm: &Hsm, label: &str) {
    let out = run(Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &hsm.conf)
        .args(["--delete-token", "--token", label]));
    assert_ok(&out, "softhsm2-util --delete-token");
}

/// A CA set up with a backup CA (so `--bundle` and the sheet have two lines).
fn ca_with_backup() -> (Hsm, String) {
    let hsm = Hsm::new("emergency-ca");
    let line = hsm.init("ecdsa-p256");
    let backup = keygen(hsm.dir.path(), "backup-ca", &["-t", "ed25519"], "backup");
    assert_ok(
        &run(hsm.cmd().arg("add-backup-ca").arg(&backup)),
        "add-backup-ca",
    );
    (hsm, line)
}

fn host_config(hsm: &Hsm, out: &Path) -> Output {
    run(hsm
        .cmd()
        .args(["host-config", "--user", "breakglass", "--out"])
        .arg(out))
}

fn sorted_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = snapshot_dir(dir);
    all.sort();
    all
}

fn fingerprint_of(line: &str, dir: &Path) -> String {
    let f = dir.join("fp.pub");
    std::fs::write(&f, format!("{line}\n")).unwrap();
    let out = run(Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&f));
    assert_ok(&out, "ssh-keygen -l");
    stdout(&out).split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn every_export_is_the_same_from_ca_pub_when_the_token_is_unplugged() {
    if !tools() {
        return;
    }
    let (hsm, line) = ca_with_backup();
    let fp = fingerprint_of(&line, hsm.dir.path());
    let with = tempfile::tempdir().unwrap();
    let without = tempfile::tempdir().unwrap();

    let mut from_token = Vec::new();
    for (args, file) in exports() {
        let (bytes, err) = pubkey(&hsm, &args, file, with.path());
        assert!(
            err.contains("CA key: from the token 'emergency-ca'")
                && err.contains(&format!("matches config.toml's fingerprint {fp}"))
                && err.contains("ca.pub does"),
            "pubkey {args:?}: {err}"
        );
        from_token.push(bytes);
    }
    let out = host_config(&hsm, &with.path().join("hosts"));
    assert_ok(&out, "host-config with the token");
    assert!(stderr(&out).contains("CA key: from the token 'emergency-ca'"));

    unplug(&hsm, "emergency-ca");
    let state = snapshot_state(&hsm.state);
    let said = format!(
        "CA key: from {} (token not plugged in: no token found through the PKCS#11 module",
        hsm.state.join("ca.pub").display()
    );
    for ((args, file), token_bytes) in exports().into_iter().zip(&from_token) {
        let (bytes, err) = pubkey(&hsm, &args, file, without.path());
        assert!(
            err.contains(&said) && err.contains(&format!("matches config.toml's fingerprint {fp}")),
            "pubkey {args:?}: {err}"
        );
        if args.contains(&"sheet") {
            assert_eq!(
                sheet_without_token_facts(&bytes),
                sheet_without_token_facts(token_bytes),
                "pubkey {args:?}: the sheets differ beyond the token's facts"
            );
            assert!(svg_text(token_bytes, "primary-token").contains("&apos;emergency-ca&apos;"));
            assert!(
                svg_text(&bytes, "primary-token").contains("not plugged in")
                    && svg_text(&bytes, "primary-key").contains("not read from the token"),
                "{}",
                svg_text(&bytes, "primary-token")
            );
        } else {
            assert!(
                &bytes == token_bytes,
                "pubkey {args:?} differs from ca.pub:\n{}\n-- with the token --\n{}",
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(token_bytes)
            );
        }
    }
    // What was compared is what was meant: the line, the bundle with the backup, the URI.
    assert_eq!(String::from_utf8_lossy(&from_token[0]).trim(), line);
    assert_eq!(String::from_utf8_lossy(&from_token[7]).lines().count(), 2);
    let json: serde_json::Value = serde_json::from_slice(&from_token[2]).unwrap();
    assert!(json["uri"]
        .as_str()
        .unwrap()
        .starts_with("pkcs11:token=emergency-ca;"));

    let out = host_config(&hsm, &without.path().join("hosts"));
    assert_ok(&out, "host-config from ca.pub");
    assert!(stderr(&out).contains(&said), "{}", stderr(&out));
    assert_eq!(
        sorted_tree(&without.path().join("hosts")),
        sorted_tree(&with.path().join("hosts")),
        "host-config from ca.pub wrote other files than with the token"
    );
    assert_eq!(
        snapshot_state(&hsm.state),
        state,
        "a read-only export changed the state"
    );

    // Another store with no token at all (SOFTHSM2_CONF at an empty token directory): the same.
    let conf = hsm.unplugged();
    let out = run(hsm.cmd().env("SOFTHSM2_CONF", &conf).arg("pubkey"));
    assert_ok(&out, "pubkey with an empty token store");
    assert_eq!(stdout(&out).trim(), line);

    // The label gone but another token present: that is not the CA's token either.
    hsm.add_token("someone-elses");
    let out = run(hsm.cmd().arg("pubkey"));
    assert_ok(&out, "pubkey with another token plugged in");
    assert_eq!(stdout(&out).trim(), line);
    assert!(
        stderr(&out)
            .contains("token not plugged in: none of the 1 token(s) present matches the CA URI"),
        "{}",
        stderr(&out)
    );

    // No ca.pub and no token: the token's error, and the hint says what would stand in.
    std::fs::remove_file(hsm.state.join("ca.pub")).unwrap();
    let out = run(hsm.cmd().arg("pubkey"));
    assert_fails(&out, 1, "no token matches the CA URI");
    assert!(stderr(&out).contains("would stand in for it, but it is missing"));
}

#[test]
fn a_ca_pub_that_is_not_the_configured_ca_is_refused_and_nothing_is_written() {
    if !tools() {
        return;
    }
    let (hsm, _) = ca_with_backup();
    let other = keygen(
        hsm.dir.path(),
        "other-ca",
        &["-t", "ecdsa", "-b", "256"],
        "other",
    );
    let other_fp = fingerprint_of(
        std::fs::read_to_string(&other).unwrap().trim(),
        hsm.dir.path(),
    );
    let ca_pub = hsm.state.join("ca.pub");
    let good = std::fs::read(&ca_pub).unwrap();
    let out_dir = tempfile::tempdir().unwrap();

    let refused = |hsm: &Hsm, needle: &str, what: &str| {
        let state = snapshot_state(&hsm.state);
        for (args, file) in exports() {
            let mut c = hsm.cmd();
            c.arg("pubkey").args(&args);
            let path = file.map(|f| out_dir.path().join(f));
            if let Some(p) = &path {
                c.arg("-o").arg(p);
            }
            let out = run(&mut c);
            assert_fails(&out, 1, needle);
            assert!(
                stderr(&out).contains("\nhint: "),
                "{what} {args:?}: {}",
                stderr(&out)
            );
            assert!(out.stdout.is_empty(), "{what} {args:?}: {}", stdout(&out));
            if let Some(p) = path {
                assert!(!p.exists(), "{what} {args:?}: {} was written", p.display());
            }
        }
        let hosts = out_dir.path().join("hosts");
        let out = host_config(hsm, &hosts);
        assert_fails(&out, 1, needle);
        assert!(!hosts.exists(), "{what}: host-config wrote its directory");
        assert_eq!(
            snapshot_state(&hsm.state),
            state,
            "{what}: the state changed"
        );
    };

    // Token present, ca.pub holds another key: the state directory is inconsistent.
    std::fs::write(&ca_pub, std::fs::read(&other).unwrap()).unwrap();
    refused(
        &hsm,
        "but the token's key is config.toml's CA",
        "token present",
    );
    let out = run(hsm.cmd().arg("pubkey"));
    assert!(stderr(&out).contains(&other_fp), "{}", stderr(&out));

    // Token unplugged, ca.pub holds another key: refused, never printed.
    unplug(&hsm, "emergency-ca");
    refused(&hsm, "but config.toml names the CA", "token unplugged");
    let out = run(hsm.cmd().arg("pubkey"));
    assert!(
        stderr(&out).contains(&format!("holds the key {other_fp}"))
            && stderr(&out).contains("restore ca.pub from the backup"),
        "{}",
        stderr(&out)
    );
    // Garbage in ca.pub: refused too.
    std::fs::write(&ca_pub, "not a key\n").unwrap();
    refused(
        &hsm,
        "does not hold an OpenSSH public key",
        "garbage ca.pub",
    );
    // Put back, it works again.
    std::fs::write(&ca_pub, &good).unwrap();
    assert_ok(&run(hsm.cmd().arg("pubkey")), "pubkey with ca.pub restored");
}

#[test]
fn a_broken_module_or_another_key_never_falls_back_to_ca_pub() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let line = hsm.init("ecdsa-p256");
    let state = snapshot_state(&hsm.state);
    let fails_without_fallback = |out: &Output, needle: &str, what: &str| {
        assert_fails(out, 1, needle);
        assert!(
            !stderr(out).contains("CA key: from"),
            "{what}: {}",
            stderr(out)
        );
        assert!(out.stdout.is_empty(), "{what}: {}", stdout(out));
    };

    // SoftHSM2 configuration missing: the module does not initialise.
    let out = run(hsm
        .cmd()
        .env("SOFTHSM2_CONF", hsm.path("no-such.conf"))
        .arg("pubkey"));
    fails_without_fallback(
        &out,
        "cannot initialise the PKCS#11 module",
        "no SoftHSM2 conf",
    );
    let out = run(hsm
        .cmd()
        .env("SOFTHSM2_CONF", hsm.path("no-such.conf"))
        .args(["host-config", "--user", "breakglass", "--out"])
        .arg(hsm.path("hosts")));
    fails_without_fallback(&out, "cannot initialise the PKCS#11 module", "host-config");
    assert!(!hsm.path("hosts").exists());

    // The configured module path does not exist (given as --ca with config.toml's token).
    let broken = format!(
        "pkcs11:token={}?module-path=/nonexistent/libsofthsm2.so",
        hsm.label
    );
    let out = run(hsm.cmd().args(["pubkey", "--ca", &broken]));
    fails_without_fallback(&out, "cannot load the PKCS#11 module", "missing module");

    // config.toml naming a module that is not there: the same (nothing to fall back on).
    let config = hsm.state.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let edited = text.replace(
        "module-path=/usr/lib/softhsm/libsofthsm2.so",
        "module-path=/nonexistent/libsofthsm2.so",
    );
    assert_ne!(edited, text);
    std::fs::write(&config, &edited).unwrap();
    let out = run(hsm.cmd().arg("pubkey"));
    fails_without_fallback(
        &out,
        "cannot load the PKCS#11 module",
        "config's module missing",
    );
    std::fs::write(&config, &text).unwrap();
    assert_eq!(snapshot_state(&hsm.state), state);

    // --ca naming another token's key: that token's key, no ca.pub check...
    let other = Hsm::new("other-ca");
    let other_line = other.init("ed25519");
    let other_uri = format!(
        "pkcs11:token=other-ca?module-path={}",
        crate::common::MODULE
    );
    let out = run(hsm
        .cmd()
        .env("SOFTHSM2_CONF", &other.conf)
        .args(["pubkey", "--ca", &other_uri]));
    assert_ok(&out, "pubkey --ca OTHER");
    assert_eq!(stdout(&out).trim(), other_line);
    assert!(
        stderr(&out).contains("not the CA of config.toml"),
        "{}",
        stderr(&out)
    );
    // ...and with that token unplugged, no fallback to this state directory's ca.pub.
    unplug(&other, "other-ca");
    let out = run(hsm
        .cmd()
        .env("SOFTHSM2_CONF", &other.conf)
        .args(["pubkey", "--ca", &other_uri]));
    fails_without_fallback(
        &out,
        "no token found through the PKCS#11 module",
        "--ca OTHER unplugged",
    );
    // The configured URI given as --ca is this CA: ca.pub stands in for it.
    unplug(&hsm, "emergency-ca");
    let uri = run(hsm.cmd().args(["pubkey", "--format", "json"]));
    assert_ok(&uri, "pubkey --format json from ca.pub");
    let uri: serde_json::Value = serde_json::from_slice(&uri.stdout).unwrap();
    let out = run(hsm
        .cmd()
        .args(["pubkey", "--ca", uri["uri"].as_str().unwrap()]));
    assert_ok(&out, "pubkey --ca CONFIGURED-URI, unplugged");
    assert_eq!(stdout(&out).trim(), line);
    // mint still needs the token: the same error as before.
    let key = keygen(hsm.dir.path(), "alice", &["-t", "ed25519"], "alice");
    let out = hsm.mint(&key, &["-n", "breakglass"]);
    assert_fails(&out, 1, "no token found through the PKCS#11 module");
    assert_eq!(snapshot_state(&hsm.state), state);
}

#[test]
fn log_verify_with_the_auditors_own_copy_of_the_ca_key() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let line = hsm.init("ecdsa-p256");
    let dir = hsm.dir.path();
    for name in ["alice", "bob"] {
        let key = keygen(dir, name, &["-t", "ed25519"], name);
        assert_ok(&hsm.mint(&key, &["-n", "breakglass"]), "mint");
    }
    let right = dir.join("auditor-ca.pub");
    std::fs::write(&right, format!("# from the key sheet\n{line}\n")).unwrap();
    let wrong = keygen(dir, "wrong-ca", &["-t", "ecdsa", "-b", "256"], "wrong");
    let fp = fingerprint_of(&line, dir);
    let wrong_fp = fingerprint_of(std::fs::read_to_string(&wrong).unwrap().trim(), dir);
    let verify = |args: &[&str], key: &Path| {
        run(hsm
            .cmd()
            .args(["log", "verify"])
            .args(args)
            .arg("--ca-pubkey")
            .arg(key))
    };

    // Without the token and without STATE/ca.pub: the file is the key used.
    unplug(&hsm, "emergency-ca");
    let state = snapshot_state(&hsm.state);
    let ca_pub = hsm.state.join("ca.pub");
    let saved = std::fs::read(&ca_pub).unwrap();
    std::fs::remove_file(&ca_pub).unwrap();
    let out = verify(&[], &right);
    assert_ok(&out, "log verify --ca-pubkey RIGHT");
    assert!(stdout(&out).starts_with("ledger OK: 2 record(s)"));
    assert!(stdout(&out).contains(&format!("every certificate signed by {fp}")));
    assert!(
        stderr(&out).contains(&format!(
            "CA key: from {} (given on the command line), matches config.toml's fingerprint {fp}",
            right.display()
        )),
        "{}",
        stderr(&out)
    );

    // The wrong key: exit 1, saying which key was used and which CA the ledger names.
    let out = verify(&[], &wrong);
    assert_fails(
        &out,
        1,
        &format!(
            "with the CA key from --ca-pubkey {} ({wrong_fp})",
            wrong.display()
        ),
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("it was issued by the CA {fp}, not {wrong_fp}"))
            && err.contains(&format!("is not the CA config.toml names ({fp})")),
        "{err}"
    );
    assert!(!stdout(&out).contains("ledger OK"));

    // An inconsistent STATE/ca.pub does not matter when the auditor brings the key.
    std::fs::copy(&wrong, &ca_pub).unwrap();
    assert_fails(
        &run(hsm.cmd().args(["log", "verify"])),
        1,
        "but config.toml names the CA",
    );
    assert_ok(
        &verify(&[], &right),
        "log verify --ca-pubkey RIGHT, ca.pub wrong",
    );
    std::fs::write(&ca_pub, &saved).unwrap();
    std::fs::set_permissions(&ca_pub, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    // Not one CA key line: usage errors before anything is read.
    let private = dir.join("wrong-ca");
    for (bad, needle) in [
        (private.as_path(), "holds a PRIVATE key"),
        (dir.join("alice-cert.pub").as_path(), "holds a certificate"),
        (dir.join("missing.pub").as_path(), "cannot read"),
    ] {
        assert_fails(
            &verify(&[], bad),
            if needle == "cannot read" { 1 } else { 2 },
            needle,
        );
    }
    assert_eq!(
        snapshot_state(&hsm.state),
        state,
        "log verify changed the state"
    );

    // An exported bundle: the file instead of the bundle's own ca.pub, and whether they differ.
    let bundle = dir.join("bundle");
    assert_ok(
        &run(hsm.cmd().args(["log", "export", "-o"]).arg(&bundle)),
        "log export",
    );
    let b = bundle.to_str().unwrap();
    let out = verify(&["--bundle", b], &right);
    assert_ok(&out, "log verify --bundle --ca-pubkey RIGHT");
    assert!(
        stderr(&out).contains("holds the same key"),
        "{}",
        stderr(&out)
    );
    let out = verify(&["--bundle", b], &wrong);
    assert_fails(&out, 1, "this ledger belongs to another CA");
    assert!(
        stderr(&out).contains(&format!(
            "WARNING: the bundle's ca.pub ({b}/ca.pub) holds another key ({fp})"
        )) && stderr(&out).contains(&format!("is not the CA the bundle's ca.pub names ({fp})")),
        "{}",
        stderr(&out)
    );
    // A forged bundle whose ca.pub is another key: it fails with its own ca.pub (the ledger
    // names this CA), and the auditor's file says why.
    std::fs::copy(&wrong, bundle.join("ca.pub")).unwrap();
    assert_fails(
        &run(hsm.cmd().args(["log", "verify", "--bundle", b])),
        1,
        "belongs to another CA",
    );
    let out = verify(&["--bundle", b], &right);
    assert_ok(
        &out,
        "log verify --bundle (ca.pub replaced) --ca-pubkey RIGHT",
    );
    assert!(
        stderr(&out).contains(&format!(
            "holds another key ({wrong_fp}): verifying with the key from --ca-pubkey"
        )),
        "{}",
        stderr(&out)
    );
}
