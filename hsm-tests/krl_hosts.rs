//! The KRL on hosts: the `RevokedKeys` line and KRL file from `host-config`, `install.sh`
//! installing the KRL (atomically, never an older version; alone with `--krl FILE`), and a real
//! sshd on 127.0.0.1 refusing what the KRL revokes, without a reload, while a login loop runs
//! through KRL swaps without a failure.
//!
//! The trees install.sh writes and sshd reads are under `target/` (`CARGO_TARGET_TMPDIR`),
//! owned by the user the tests run as (root in CI). The KRLs are built with the library's
//! `breakglass_ca::krl::Krl` (a serial section under the test CA, the CA key as an explicit
//! key); the sshd is the one of `hosts.rs`: its configuration only Includes the generated
//! snippet, and `--ssh-dir` is the `--out` directory, so its `sshd_config` is the one
//! install.sh checks with `sshd -t` and `sshd -T`.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use breakglass_ca::krl::{CertificateSection, Krl};
use ssh_key::public::KeyData;

use crate::common::*;
use crate::host_tree::{fake_first_on_path, installed_image, require_host_tools, sh};
use crate::hosts::{
    fake_tools, fingerprint, host_config, read, sshd_config, sshd_effective, sshd_t, tree,
};
use crate::sshd::{current_user, free_port, Sshd};

fn tools() -> bool {
    require_host_tools(&[])
}

/// The CA key of `hsm`, from `pubkey`.
fn ca_key(hsm: &Hsm) -> KeyData {
    ssh_key::PublicKey::from_openssh(read(&hsm.ca_pub_file()).trim())
        .unwrap()
        .key_data()
        .clone()
}

/// A KRL made by the library: version `version`, the `serials` under `ca` and the
/// `explicit` keys.
fn krl(version: u64, ca: &KeyData, serials: &[(u64, u64)], explicit: &[KeyData]) -> Vec<u8> {
    let certificates = if serials.is_empty() {
        Vec::new()
    } else {
        vec![CertificateSection {
            ca: Some(ca.clone()),
            serials: serials.to_vec(),
            key_ids: Vec::new(),
        }]
    };
    // The other fields (fingerprint sections) stay empty; set after the literal, as the
    // struct may have more fields than these.
    let mut k = Krl {
        version,
        generated: 1_796_121_196,
        comment: "breakglass-ca CA test".into(),
        ..Krl::default()
    };
    k.certificates = certificates;
    k.explicit_keys = explicit.to_vec();
    k.encode().unwrap()
}

/// The KRL version of 2026-12-01T10:33:16Z plus `seconds`: YYYYMMDDHHMMSS as a number.
fn version_at(seconds: u64) -> u64 {
    let base = chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
        .unwrap()
        .and_hms_opt(10, 33, 16)
        .unwrap();
    (base + chrono::Duration::seconds(seconds as i64))
        .format("%Y%m%d%H%M%S")
        .to_string()
        .parse()
        .unwrap()
}

/// `sh SCRIPT --krl FILE`.
fn install_krl(script: &Path, root: Option<&Path>, file: &Path) -> Output {
    sh(script, root, None, &[OsStr::new("--krl"), file.as_os_str()])
}

/// install.sh into an image tree: it installs host-config's KRL (version 0, 0644, the bytes
/// host-config wrote); `--krl` installs a higher version and says which it replaced; a lower
/// version, the same one, a file that is not a KRL (garbage, empty, truncated, format 2, too
/// short, too large, a public key list), a symbolic link, a directory, a FIFO, a missing file,
/// and an installed file that is a link or not a KRL are refused or a no-op, each leaving the
/// tree byte for byte as it was (no temporary file left either); the whole script, whose KRL is
/// older than the installed one, refuses and changes no file at all.
#[test]
fn install_sh_installs_the_krl_and_never_an_older_one() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let work = target_dir();
    let out = host_config(
        &hsm,
        work.path(),
        "host",
        &["--user", "breakglass"],
        Some(Path::new("/etc/ssh")),
    );
    let script = out.join("install.sh");

    // host-config's KRL: empty, version 0, read by ssh-keygen.
    let generated = std::fs::read(out.join("breakglass-ca.krl")).unwrap();
    assert_eq!(&generated[..12], b"SSHKRL\n\0\0\0\0\x01");
    assert_eq!(krl_version_of(&out.join("breakglass-ca.krl")), 0);
    let listed = run(Command::new("ssh-keygen")
        .args(["-Q", "-l", "-f"])
        .arg(out.join("breakglass-ca.krl")));
    assert_ok(&listed, "ssh-keygen -Q -l -f breakglass-ca.krl");
    assert!(
        stdout(&listed).contains("# KRL version 0\n")
            && stdout(&listed).contains(&format!("breakglass-ca CA {}", fingerprint(&hsm))),
        "{}",
        stdout(&listed)
    );

    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let installed = root.join("etc/ssh/breakglass-ca.krl");
    let o = sh(&script, Some(&root), None, &[]);
    assert_ok(&o, "ROOT=DIR sh install.sh");
    assert!(
        stderr(&o).contains(&format!(
            "installed {} (KRL version 0)",
            installed.display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&installed).unwrap(), generated);
    assert_eq!(
        std::fs::metadata(&installed).unwrap().permissions().mode() & 0o7777,
        0o644
    );
    let o = sh(&script, Some(&root), None, &[]);
    assert_ok(&o, "ROOT=DIR sh install.sh, again");
    assert!(
        stderr(&o).contains("is already KRL version 0: nothing to do"),
        "{}",
        stderr(&o)
    );

    // A higher version.
    let ca = ca_key(&hsm);
    let v1 = 20261201103316;
    let k1 = work.path().join("v1.krl");
    std::fs::write(&k1, krl(v1, &ca, &[(1, 1)], &[])).unwrap();
    let o = install_krl(&script, Some(&root), &k1);
    assert_ok(&o, "install.sh --krl v1");
    let err = stderr(&o);
    assert!(err.contains(&format!("(KRL version {v1}, was 0)")), "{err}");
    assert!(
        err.contains("sha256 of ") && err.contains("ROOT is set"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&k1).unwrap()
    );
    assert_eq!(krl_version_of(&installed), v1);

    // Refusals: nothing changes.
    let bad = work.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    let higher = krl(v1 + 100, &ca, &[(1, 2)], &[]);
    let file = |name: &str, bytes: &[u8]| {
        let p = bad.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let mut format2 = higher.clone();
    format2[11] = 2;
    let big = file("big.krl", &higher);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(16 * 1024 * 1024 + 1)
        .unwrap();
    let link = bad.join("link.krl");
    std::os::unix::fs::symlink(file("target.krl", &higher), &link).unwrap();
    let fifo = bad.join("fifo.krl");
    assert_ok(
        &run(Command::new("mkfifo").arg(&fifo)),
        "mkfifo for the test",
    );
    let dir = bad.join("dir.krl");
    std::fs::create_dir(&dir).unwrap();
    let key_list = read(&hsm.ca_pub_file());
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "lower",
            file("lower.krl", &krl(v1 - 1, &ca, &[(1, 5)], &[])),
            "older than the installed",
        ),
        (
            "garbage",
            file("garbage.krl", b"not a KRL\n"),
            "is not an OpenSSH KRL",
        ),
        ("empty", file("empty.krl", b""), "is not an OpenSSH KRL"),
        (
            "too short",
            file("short.krl", &higher[..19]),
            "is not an OpenSSH KRL",
        ),
        (
            "truncated",
            file("truncated.krl", &higher[..higher.len() - 3]),
            "ssh-keygen cannot read",
        ),
        (
            "format 2",
            file("format2.krl", &format2),
            "is not an OpenSSH KRL",
        ),
        ("too large", big, "larger than 16 MiB"),
        (
            "a public key list",
            file("keys.krl", key_list.as_bytes()),
            "is not an OpenSSH KRL",
        ),
        ("a symbolic link", link, "is not a regular file"),
        ("a FIFO", fifo, "is not a regular file"),
        ("a directory", dir, "is not a regular file"),
        ("missing", bad.join("missing.krl"), "is not a regular file"),
    ];
    let before = tree(&root);
    for (what, path, needle) in &cases {
        let o = install_krl(&script, Some(&root), path);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(needle), "{what}: {err}");
        assert!(err.contains("Nothing was changed."), "{what}: {err}");
        assert_eq!(tree(&root), before, "{what} changed the tree");
    }
    // The lower one says what to do.
    let o = install_krl(&script, Some(&root), &cases[0].1);
    assert!(
        stderr(&o).contains(&format!("is KRL version {}, older", v1 - 1))
            && stderr(&o).contains("(version 20261201103316)")
            && stderr(&o).contains("krl -o FILE"),
        "{}",
        stderr(&o)
    );
    // The same version: nothing to do.
    let o = install_krl(&script, Some(&root), &k1);
    assert_ok(&o, "install.sh --krl v1 again");
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    assert_eq!(tree(&root), before);
    // Usage errors.
    for args in [vec!["--krl"], vec!["--bogus", "x"], vec!["--krl", "a", "b"]] {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let o = sh(&script, Some(&root), None, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("usage:"), "{}", stderr(&o));
    }

    // The whole script again: its KRL (version 0) is older than the installed one. It changes
    // nothing, not even the files it would otherwise rewrite.
    let bundle = root.join("etc/ssh/breakglass-ca.pub");
    std::fs::write(&bundle, format!("{}# local change\n", read(&bundle))).unwrap();
    let before = tree(&root);
    let o = sh(&script, Some(&root), None, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the KRL inside this script is KRL version 0, older than the installed")
            && err.contains("generated before the host's newest revocations")
            && err.contains("Nothing was changed."),
        "{err}"
    );
    assert_eq!(tree(&root), before, "the whole install changed files");

    // A higher one again.
    let v2 = v1 + 1000;
    let k2 = work.path().join("v2.krl");
    std::fs::write(&k2, krl(v2, &ca, &[(1, 3)], std::slice::from_ref(&ca))).unwrap();
    let o = install_krl(&script, Some(&root), &k2);
    assert_ok(&o, "install.sh --krl v2");
    assert!(
        stderr(&o).contains(&format!("(KRL version {v2}, was {v1})")),
        "{}",
        stderr(&o)
    );
    assert_eq!(krl_version_of(&installed), v2);
    // Red team: a higher version that no longer lists the CA key revoked outright (a KRL
    // from another state directory's ledger, or forged) lifted the whole-CA revocation.
    let before = tree(&root);
    let dropped = file("dropped.krl", &krl(v2 + 10, &ca, &[(1, 5)], &[]));
    let o = install_krl(&script, Some(&root), &dropped);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no longer revokes these CA keys")
            && err.contains(&fingerprint(&hsm))
            && err.contains("would let their certificates in again")
            && err.contains("Nothing was changed."),
        "{err}"
    );
    assert_eq!(
        tree(&root),
        before,
        "the KRL lifting a revocation changed the tree"
    );
    // A requester key (no CA of this host) revoked outright may go: only the CA keys of the
    // host's bundle are held to the rule (the runbook carries requester keys over to the
    // backup CA's ledger: 'log --revoked-keys', 'revoke --requester-key FILE').
    let req = keygen(work.path(), "req", &["-t", "ed25519"], "req");
    let req = ssh_key::PublicKey::from_openssh(read(&req).trim())
        .unwrap()
        .key_data()
        .clone();
    let with_req = file(
        "with-req.krl",
        &krl(v2 + 20, &ca, &[(1, 5)], &[ca.clone(), req]),
    );
    assert_ok(
        &install_krl(&script, Some(&root), &with_req),
        "install with-req",
    );
    let without_req = file(
        "without-req.krl",
        &krl(v2 + 30, &ca, &[(1, 5)], std::slice::from_ref(&ca)),
    );
    assert_ok(
        &install_krl(&script, Some(&root), &without_req),
        "install without-req",
    );
    assert_eq!(krl_version_of(&installed), v2 + 30);

    // An installed file that is a link, or not a KRL: refused, left as it is.
    let k3 = work.path().join("v3.krl");
    std::fs::write(&k3, krl(v2 + 1, &ca, &[], &[])).unwrap();
    std::fs::rename(&installed, work.path().join("moved.krl")).unwrap();
    std::os::unix::fs::symlink(&k2, &installed).unwrap();
    let o = install_krl(&script, Some(&root), &k3);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not a regular file"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_link(&installed).unwrap(), k2);
    std::fs::remove_file(&installed).unwrap();
    std::fs::write(&installed, b"ssh-ed25519 AAAA local revoked_keys list\n").unwrap();
    let o = install_krl(&script, Some(&root), &k3);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the installed") && stderr(&o).contains("is not a KRL"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        read(&installed),
        "ssh-ed25519 AAAA local revoked_keys list\n"
    );
    let leftovers: Vec<String> = std::fs::read_dir(root.join("etc/ssh"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp.") || n.contains(".prev."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `script` with the KRL inside it replaced by `krl` (its base64 between the heredoc
/// markers): a script whose KRL was crafted, or made from another state directory.
fn with_krl_inside(script: &Path, krl: &[u8], to: &Path) {
    use base64ct::Encoding;
    let text = read(script);
    let start = text
        .find("<<'BREAKGLASS_CA_EOF' || refuse \"cannot decode the KRL inside this script.\"\n")
        .unwrap();
    let start = start + text[start..].find('\n').unwrap() + 1;
    let end = start + text[start..].find("BREAKGLASS_CA_EOF\n").unwrap();
    let encoded = base64ct::Base64::encode_string(krl);
    std::fs::write(to, format!("{}{encoded}\n{}", &text[..start], &text[end..])).unwrap();
}

/// install.sh refuses a KRL whose version is neither 0 nor a plausible UTC time
/// YYYYMMDDHHMMSS (a crafted 2^64-1, installed, would keep every later KRL out), with
/// `--krl` and as the KRL inside the whole script, changing nothing; the edges of the rule
/// install. Then the same version: a KRL identical apart from its generated date is "nothing
/// to do"; one with other contents (two state directories that revoked in the same second) is
/// refused, exit 1, naming both SHA-256s and what to do, with `--krl` and as the whole
/// script's, the tree unchanged. A host that installed a crafted version before this check is
/// told so when a KRL is refused as older.
#[test]
fn install_sh_refuses_implausible_versions_and_a_same_version_with_other_contents() {
    if !tools() || !require(&["cmp", "sha256sum"]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let work = target_dir();
    let w = work.path();
    let (script, root) = installed_image(&hsm, w);
    let installed = root.join("etc/ssh/breakglass-ca.krl");
    let ca = ca_key(&hsm);
    let file = |name: &str, bytes: &[u8]| {
        let p = w.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    // Implausible versions: refused, with --krl and inside the whole script.
    let before = tree(&root);
    for (i, version) in [
        u64::MAX,
        1u64 << 63,
        1,
        2026120110331,   // 13 digits
        202612011033160, // 15 digits
        19991231235959,  // before 2000
        20261301103316,  // month 13
        20260001103316,  // month 0
        20261200103316,  // day 0
        20261232103316,  // day 32
        20261201243316,  // hour 24
        20261201106016,  // minute 60
        20261201103360,  // second 60
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = krl(version, &ca, &[(1, 1)], &[]);
        let o = install_krl(&script, Some(&root), &file(&format!("bad-{i}.krl"), &bytes));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{version}: {err}");
        assert!(
            err.contains(&format!(
                "is KRL version {version}, which no breakglass-ca KRL has"
            )) && err.contains("YYYYMMDDHHMMSS")
                && err.contains("Nothing was changed."),
            "{version}: {err}"
        );
        assert_eq!(tree(&root), before, "{version} changed the tree");
        let crafted = w.join(format!("install-{i}.sh"));
        with_krl_inside(&script, &bytes, &crafted);
        let o = sh(&crafted, Some(&root), None, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "whole script, {version}: {err}");
        assert!(
            err.contains(&format!(
                "the KRL inside this script is KRL version {version}, which no breakglass-ca KRL has"
            )),
            "{version}: {err}"
        );
        assert_eq!(tree(&root), before, "the whole script with {version}");
    }
    let refusal = {
        let o = install_krl(
            &script,
            Some(&root),
            &file("max.krl", &krl(u64::MAX, &ca, &[], &[])),
        );
        stderr(&o)
            .lines()
            .find(|l| l.contains("which no breakglass-ca"))
            .unwrap()
            .to_string()
    };
    // The edges of the rule install (each higher than the one before).
    for version in [20000101000000, 20261231235959, 99991231235959] {
        let k = file(
            &format!("ok-{version}.krl"),
            &krl(version, &ca, &[(1, 1)], &[]),
        );
        assert_ok(
            &install_krl(&script, Some(&root), &k),
            &format!("install.sh --krl of version {version}"),
        );
        assert_eq!(krl_version_of(&installed), version);
    }

    // A host that installed a crafted version before this check: told so.
    let frozen = krl(u64::MAX, &ca, &[], &[]);
    std::fs::write(&installed, &frozen).unwrap();
    let o = install_krl(
        &script,
        Some(&root),
        &file("later.krl", &krl(20270101000000, &ca, &[], &[])),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("older than the installed")
            && err.contains(
                "But no breakglass-ca KRL has the installed version 18446744073709551615"
            )
            && err.contains(&format!(
                "cp FILE {0}.new && mv {0}.new {0}",
                installed.display()
            )),
        "{err}"
    );
    assert_eq!(std::fs::read(&installed).unwrap(), frozen);

    // The same version.
    let v = 20270101000000;
    let ours = krl(v, &ca, &[(1, 1)], &[]);
    let k = file("same.krl", &ours);
    // The recovery the refusal names, as printed (FILE: the current KRL).
    let recipe = format!("cp FILE {0}.new && mv {0}.new {0}", installed.display());
    assert_ok(
        &run(Command::new("sh")
            .arg("-c")
            .arg(recipe.replacen("FILE", k.to_str().unwrap(), 1))),
        "the recovery by hand",
    );
    assert_eq!(std::fs::read(&installed).unwrap(), ours);
    // Identical apart from the generated date: nothing to do.
    let mut redated = ours.clone();
    redated[20..28].copy_from_slice(&2_000_000_000u64.to_be_bytes());
    assert_ne!(redated, ours);
    let before = tree(&root);
    let o = install_krl(&script, Some(&root), &file("redated.krl", &redated));
    assert_ok(&o, "install.sh --krl, the same KRL made later");
    assert!(
        stderr(&o).contains(&format!("is already KRL version {v}: nothing to do")),
        "{}",
        stderr(&o)
    );
    assert_eq!(tree(&root), before);
    // Other contents, the same version: refused, naming both SHA-256s.
    let sha = |b: &[u8]| {
        use sha2::Digest;
        base16ct::lower::encode_string(&sha2::Sha256::digest(b))
    };
    let mut others: Vec<(&str, Vec<u8>)> = vec![
        ("another serial", krl(v, &ca, &[(1, 2)], &[])),
        (
            "the CA revoked",
            krl(v, &ca, &[(1, 1)], std::slice::from_ref(&ca)),
        ),
    ];
    let mut other_comment = ours.clone();
    let at = other_comment.windows(4).position(|x| x == b"test").unwrap();
    other_comment[at..at + 4].copy_from_slice(b"TEST");
    others.push(("another comment", other_comment));
    for (what, bytes) in &others {
        let o = install_krl(&script, Some(&root), &file("other.krl", bytes));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert!(
            err.contains(&format!(
                "is KRL version {v}, the same as the installed {}",
                installed.display()
            )) && err.contains(&format!("installed: SHA-256 {}", sha(&ours)))
                && err.contains(&format!("new:       SHA-256 {}", sha(bytes)))
                && err.contains("Run 'breakglass-ca revoke' again in the state")
                && err.contains("Nothing was changed."),
            "{what}: {err}"
        );
        assert_eq!(tree(&root), before, "{what} changed the tree");
    }
    let same_second = stderr(&install_krl(
        &script,
        Some(&root),
        &file("other.krl", &others[0].1),
    ));
    // The whole script whose KRL has the installed version but other contents: refused.
    let crafted = w.join("install-same-version.sh");
    with_krl_inside(&script, &others[1].1, &crafted);
    let o = sh(&crafted, Some(&root), None, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "the KRL inside this script is KRL version {v}, the same as the installed"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(tree(&root), before);
    // ... and with the very same KRL inside, it installs the other files as usual.
    let crafted = w.join("install-same-krl.sh");
    with_krl_inside(&script, &ours, &crafted);
    assert_ok(
        &sh(&crafted, Some(&root), None, &[]),
        "the whole script, the same KRL",
    );
    assert_eq!(std::fs::read(&installed).unwrap(), ours);
    let leftovers: Vec<String> = std::fs::read_dir(root.join("etc/ssh"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp.") || n.contains(".prev."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    eprintln!("install.sh --krl of version 2^64-1: {refusal}");
    eprintln!("install.sh --krl, the same version with other contents:\n{same_second}");
}

/// `install.sh --krl` on a live host (fake sshd and systemctl on PATH): it checks `sshd -t`
/// and that sshd's configuration for every account names the KRL (`sshd -T`), and never
/// reloads sshd; when sshd does not use the KRL it says so and exits 1 (the KRL is in place).
#[test]
fn install_sh_krl_on_a_live_host_checks_that_sshd_uses_it() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let work = target_dir();
    let ssh_dir = work.path().join("etc-ssh");
    std::fs::create_dir(&ssh_dir).unwrap();
    std::fs::write(
        ssh_dir.join("sshd_config"),
        format!("Include {}/sshd_config.d/*.conf\n", ssh_dir.display()),
    )
    .unwrap();
    let out = host_config(
        &hsm,
        work.path(),
        "host",
        &["--user", "breakglass", "--user", "ops"],
        Some(&ssh_dir),
    );
    let script = out.join("install.sh");
    let (bin, calls) = fake_tools(work.path());
    let trusted = format!("{}/breakglass-ca.pub", ssh_dir.display());
    let revoked = format!("{}/breakglass-ca.krl", ssh_dir.display());
    let run_krl = |file: &Path, env: &[(&str, &str)]| {
        let _ = std::fs::remove_file(&calls);
        let mut c = Command::new("sh");
        fake_first_on_path(&mut c, &bin, &calls)
            .arg(&script)
            .arg("--krl")
            .arg(file)
            .env_remove("ROOT")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        (o, std::fs::read_to_string(&calls).unwrap_or_default())
    };
    let all = [
        ("FAKE_TRUSTED", trusted.as_str()),
        ("FAKE_REVOKED", revoked.as_str()),
    ];
    let mut c = Command::new("sh");
    fake_first_on_path(&mut c, &bin, &calls)
        .arg(&script)
        .env_remove("ROOT")
        .envs(all)
        .stdin(Stdio::null());
    assert_ok(&run(&mut c), "install.sh on the live host");

    let ca = ca_key(&hsm);
    let k1 = work.path().join("v1.krl");
    std::fs::write(&k1, krl(20261201103316, &ca, &[(1, 1)], &[])).unwrap();
    let (o, calls_text) = run_krl(&k1, &all);
    assert_ok(&o, "install.sh --krl on the live host");
    assert!(stderr(&o).contains("no reload needed"), "{}", stderr(&o));
    assert!(calls_text.contains("sshd -t -f"), "{calls_text}");
    for user in ["breakglass", "ops"] {
        assert!(
            calls_text.contains(&format!("user={user},host=localhost,addr=127.0.0.1")),
            "{calls_text}"
        );
    }
    assert!(!calls_text.contains("systemctl"), "{calls_text}");
    assert_eq!(
        krl_version_of(&ssh_dir.join("breakglass-ca.krl")),
        20261201103316
    );

    // sshd does not use the KRL (another RevokedKeys first): installed, but exit 1 and why.
    let k2 = work.path().join("v2.krl");
    std::fs::write(&k2, krl(20261201103317, &ca, &[(1, 2)], &[])).unwrap();
    let (o, calls_text) = run_krl(&k2, &[("FAKE_TRUSTED", &trusted)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("sshd does not use {revoked} for breakglass")),
        "{}",
        stderr(&o)
    );
    assert!(!calls_text.contains("systemctl"), "{calls_text}");
    assert_eq!(
        krl_version_of(&ssh_dir.join("breakglass-ca.krl")),
        20261201103317
    );

    // sshd -t fails: exit 1, and the KRL stays (going back would lift revocations).
    let k3 = work.path().join("v3.krl");
    std::fs::write(&k3, krl(20261201103318, &ca, &[(1, 3)], &[])).unwrap();
    let mut env = all.to_vec();
    env.push(("FAKE_SSHD_T_RC", "1"));
    let (o, _) = run_krl(&k3, &env);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("the KRL is in place"), "{}", stderr(&o));
    assert_eq!(
        krl_version_of(&ssh_dir.join("breakglass-ca.krl")),
        20261201103318
    );
}

/// A real sshd on 127.0.0.1, configured from host-config's output (with a backup CA from a
/// second token): `sshd -T` shows the KRL for the account only; `install.sh --krl` (live, real
/// `sshd -t` and `sshd -T`, no reload) installs a library-built KRL revoking serial 1 of this
/// CA: sshd refuses that certificate ("revoked by file") and accepts serial 2 of the same CA;
/// a KRL listing this CA's key refuses every certificate it signed, also one minted after,
/// while the backup CA's certificate still logs in; an older KRL is refused and the revocation
/// holds; without a readable KRL, sshd refuses every public-key login to the account.
#[test]
fn sshd_refuses_what_the_installed_krl_revokes() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let backup = Hsm::new("backup-ca");
    backup.init("ed25519");
    assert_ok(
        &run(hsm.cmd().arg("add-backup-ca").arg(backup.ca_pub_file())),
        "add-backup-ca",
    );
    let me = current_user();
    let work = target_dir();
    let out = host_config(&hsm, work.path(), "host", &["--user", &me], None);
    let krl_path = out.join("breakglass-ca.krl");
    let script = out.join("install.sh");
    let port = free_port();
    let config = sshd_config(&out, port, &out, &me, true);
    assert_ok(&sshd_t(&config), "sshd -t with the generated snippet");
    let mine = sshd_effective(&config, &me);
    let line = format!("revokedkeys {}\n", krl_path.display());
    assert!(mine.contains(&line), "{mine}");
    eprintln!("sshd -T -C user={me},...: {}", line.trim());
    let other = sshd_effective(&config, "someone-else");
    assert!(other.contains("revokedkeys none\n"), "{other}");
    let sshd = Sshd::from_config(target_dir(), port, &config);

    let keys = work.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let mint = |by: &Hsm, name: &str| {
        let pubkey = keygen(&keys, name, &["-t", "ed25519"], &format!("{name}@laptop"));
        assert_ok(&by.mint(&pubkey, &["-n", &me]), &format!("mint {name}"));
        (pubkey.with_extension(""), cert_path(&pubkey))
    };
    let a = mint(&hsm, "a");
    let b = mint(&hsm, "b");
    let c = mint(&backup, "c");
    assert_eq!(listed_serial(&ssh_keygen_list(&a.1)), 1);
    assert_eq!(listed_serial(&ssh_keygen_list(&b.1)), 2);
    let login = |(key, cert): &(PathBuf, PathBuf)| sshd.login(key, cert);
    for k in [&a, &b, &c] {
        assert!(login(k), "refused with the empty KRL:\n{}", sshd.log_text());
    }

    // Serial 1 of this CA.
    let ca = ca_key(&hsm);
    let k1 = work.path().join("serial-1.krl");
    std::fs::write(&k1, krl(20261201103316, &ca, &[(1, 1)], &[])).unwrap();
    let listed = run(Command::new("ssh-keygen").args(["-Q", "-l", "-f"]).arg(&k1));
    assert_ok(&listed, "ssh-keygen -Q -l -f serial-1.krl");
    assert!(
        stdout(&listed).contains("serial: 1\n"),
        "the library's KRL holds no serial section (is src/krl.rs's encoder still the skeleton?):\n{}",
        stdout(&listed)
    );
    let o = install_krl(&script, None, &k1);
    assert_ok(&o, "install.sh --krl (live, real sshd -t and -T)");
    assert!(stderr(&o).contains("no reload needed"), "{}", stderr(&o));
    assert!(!login(&a), "sshd accepted a revoked certificate");
    assert!(login(&b), "sshd refused serial 2:\n{}", sshd.log_text());
    assert!(
        login(&c),
        "sshd refused the backup CA:\n{}",
        sshd.log_text()
    );
    let log = sshd.log_text();
    let revoked_by = format!("revoked by file {}", krl_path.display());
    let a_line = log
        .lines()
        .find(|l| l.contains(&revoked_by))
        .unwrap_or_else(|| panic!("no 'revoked by file' line:\n{log}"));
    eprintln!("sshd logged: {a_line}");
    assert!(
        a_line.starts_with("Authentication key ED25519-CERT SHA256:"),
        "{a_line}"
    );

    // This CA's key: everything it signed, also a certificate minted after the KRL.
    let k2 = work.path().join("whole-ca.krl");
    std::fs::write(
        &k2,
        krl(20261201103400, &ca, &[(1, 1)], std::slice::from_ref(&ca)),
    )
    .unwrap();
    assert_ok(
        &install_krl(&script, None, &k2),
        "install.sh --krl whole CA",
    );
    let d = mint(&hsm, "d");
    for (what, k) in [("serial 1", &a), ("serial 2", &b), ("serial 3", &d)] {
        assert!(!login(k), "sshd accepted {what} of a revoked CA");
    }
    assert!(
        login(&c),
        "sshd refused the backup CA:\n{}",
        sshd.log_text()
    );
    // sshd 9.2 names the certificate's key (whose signing CA the KRL lists).
    let log = sshd.log_text();
    for (name, k) in [("b", &b), ("d", &d)] {
        let listed = run(Command::new("ssh-keygen").arg("-l").arg("-f").arg(&k.1));
        assert_ok(&listed, "ssh-keygen -l");
        let fp = stdout(&listed)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        let line = format!("Authentication key ED25519-CERT {fp} {revoked_by}");
        assert!(log.contains(&line), "no '{line}' for {name}:\n{log}");
        if name == "d" {
            eprintln!("sshd logged: {line}");
        }
    }
    // An older KRL is refused; the revocation holds.
    let o = install_krl(&script, None, &k1);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&krl_path).unwrap(),
        std::fs::read(&k2).unwrap()
    );
    assert!(!login(&b));

    // No readable KRL: sshd refuses every public-key login to the account (why the install is
    // atomic).
    let aside = work.path().join("aside.krl");
    std::fs::rename(&krl_path, &aside).unwrap();
    assert!(!login(&c), "sshd accepted a login without its KRL");
    let log = sshd.log_text();
    let missing = log
        .lines()
        .find(|l| l.starts_with("Error checking authentication key") && l.contains("No such file"))
        .unwrap_or_else(|| panic!("no 'Error checking' line:\n{log}"));
    eprintln!("sshd logged: {missing}");
    std::fs::rename(&aside, &krl_path).unwrap();
    assert!(login(&c), "{}", sshd.log_text());
}

/// Logins in a bounded loop (40) with a certificate no KRL revokes, while another thread runs
/// `install.sh --krl` with higher and higher KRL versions (each revoking more serials of this
/// CA, so each file is larger): no login fails, and every install succeeds. sshd reads the file
/// at each login, so a half-written or missing KRL would fail one.
#[test]
fn krl_swaps_during_logins_never_fail_a_login() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let me = current_user();
    let work = target_dir();
    let out = host_config(&hsm, work.path(), "host", &["--user", &me], None);
    let script = out.join("install.sh");
    let port = free_port();
    let config = sshd_config(&out, port, &out, &me, true);
    assert_ok(&sshd_t(&config), "sshd -t");
    let sshd = Sshd::from_config(target_dir(), port, &config);
    let pubkey = keygen(work.path(), "good", &["-t", "ed25519"], "good@laptop");
    assert_ok(&hsm.mint(&pubkey, &["-n", &me]), "mint");
    let (key, cert) = (pubkey.with_extension(""), cert_path(&pubkey));
    assert!(sshd.login(&key, &cert), "{}", sshd.log_text());

    // Serial 1 is the good certificate; the KRLs revoke other serials, more each time. The
    // installer runs until the logins are done (at most 2000 installs).
    let ca = ca_key(&hsm);
    let stop = Arc::new(AtomicBool::new(false));
    let installer = {
        let stop = stop.clone();
        let script = script.clone();
        let dir = work.path().join("swaps");
        std::fs::create_dir(&dir).unwrap();
        std::thread::spawn(move || {
            let mut done = Vec::new();
            for i in 0..2000u64 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                // One second later each time, as revoke's versions are (a plausible
                // YYYYMMDDHHMMSS: install.sh refuses any other).
                let version = version_at(i);
                let serials: Vec<(u64, u64)> =
                    (0..=i).map(|j| (100 + 3 * j, 100 + 3 * j)).collect();
                let path = dir.join(format!("swap-{i}.krl"));
                std::fs::write(&path, krl(version, &ca, &serials, &[])).unwrap();
                let o = install_krl(&script, None, &path);
                done.push((version, o.status.code(), stderr(&o)));
            }
            done
        })
    };
    let mut failed = Vec::new();
    for i in 0..40 {
        if !sshd.login(&key, &cert) {
            failed.push(i);
        }
    }
    stop.store(true, Ordering::SeqCst);
    let done = installer.join().unwrap();
    for (version, code, err) in &done {
        assert_eq!(*code, Some(0), "install of version {version} failed: {err}");
    }
    assert!(
        failed.is_empty(),
        "logins {failed:?} of 40 failed during {} KRL swaps:\n{}",
        done.len(),
        sshd.log_text()
    );
    assert!(
        done.len() >= 5,
        "only {} KRL swaps ran during the logins",
        done.len()
    );
    let last = done.last().unwrap().0;
    assert_eq!(krl_version_of(&out.join("breakglass-ca.krl")), last);
    let log = sshd.log_text();
    assert!(!log.contains("Error checking authentication key"), "{log}");
    eprintln!("40 logins, {} KRL swaps, none failed", done.len());
}

/// A host's own `RevokedKeys`, checked with the real `sshd -T`: a global line (before or
/// after the Include) applies to the host's other accounts, and the snippet's `Match User`
/// line replaces it for the emergency account; a `Match` block read earlier (a
/// `sshd_config.d/00-local.conf` with `Match all`) wins over the snippet, and
/// `install.sh --krl` on the live host (real `sshd -t` and `sshd -T`) says so and exits 1.
#[test]
fn a_hosts_own_revoked_keys_line() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let me = current_user();
    let work = target_dir();
    let out = host_config(&hsm, work.path(), "host", &["--user", &me], None);
    let ours = format!("revokedkeys {}/breakglass-ca.krl\n", out.display());
    let host_krl = work.path().join("host.krl");
    let config = sshd_config(&out, free_port(), &out, &me, true);
    let base = read(&config);
    let include = format!(
        "Include {}/sshd_config.d/breakglass-ca.conf\n",
        out.display()
    );
    assert!(base.ends_with(&include), "{base}");
    let global = format!("RevokedKeys {}\n", host_krl.display());
    for (where_, text) in [
        ("before the Include", format!("{global}{base}")),
        ("after the Include", format!("{base}{global}")),
    ] {
        std::fs::write(&config, &text).unwrap();
        assert_ok(&sshd_t(&config), where_);
        let mine = sshd_effective(&config, &me);
        assert!(mine.contains(&ours), "{where_}: {mine}");
        let other = sshd_effective(&config, "someone-else");
        assert!(
            other.contains(&format!("revokedkeys {}\n", host_krl.display())),
            "{where_}: {other}"
        );
        eprintln!(
            "global RevokedKeys {where_}: sshd -T for {me}: {}; for someone-else: revokedkeys {}",
            ours.trim(),
            host_krl.display()
        );
    }

    // An earlier Match block wins.
    let local = out.join("sshd_config.d/00-local.conf");
    std::fs::write(&local, format!("Match all\n    {global}")).unwrap();
    let glob = format!("Include {}/sshd_config.d/*.conf\n", out.display());
    std::fs::write(&config, base.replace(&include, &glob)).unwrap();
    assert_ok(&sshd_t(&config), "sshd -t with 00-local.conf");
    let mine = sshd_effective(&config, &me);
    assert!(
        mine.contains(&format!("revokedkeys {}\n", host_krl.display())) && !mine.contains(&ours),
        "{mine}"
    );
    eprintln!(
        "Match all in 00-local.conf: sshd -T for {me}: revokedkeys {}",
        host_krl.display()
    );
    let k1 = work.path().join("v1.krl");
    std::fs::write(&k1, krl(20261201103316, &ca_key(&hsm), &[(1, 1)], &[])).unwrap();
    let o = install_krl(&out.join("install.sh"), None, &k1);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "sshd does not use {}/breakglass-ca.krl for {me}",
            out.display()
        )),
        "{}",
        stderr(&o)
    );
}

/// Red team: the lost-token switch. The primary CA is revoked in its state directory and that
/// KRL is on the host; the backup CA's state directory then revokes a serial of its own: its
/// KRL, of a higher version, holds only its own ledger's revocations, and install.sh took it,
/// so the host accepted the lost CA's certificates again (its bundle still trusts that CA).
/// install.sh refuses such a KRL; once the backup's ledger revokes the lost CA too, its KRL
/// installs and keeps it revoked.
#[test]
fn a_backup_cas_krl_never_lifts_the_lost_cas_revocation() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ed25519");
    hsm.add_token("backup-ca");
    let state2 = hsm.path("backup-state");
    let backup = |c: &mut Command| {
        c.env("BREAKGLASS_CA_STATE_DIR", &state2);
    };
    let mut c = hsm.cmd();
    backup(&mut c);
    let o = run(c.args([
        "--ca",
        &format!("pkcs11:token=backup-ca?module-path={MODULE}"),
        "init",
        "--algorithm",
        "ed25519",
    ]));
    assert_ok(&o, "init backup");
    let backup_pub = hsm.path("backup-ca.pub");
    std::fs::write(&backup_pub, stdout(&o)).unwrap();
    assert_ok(
        &run(hsm.cmd().arg("add-backup-ca").arg(&backup_pub)),
        "add-backup-ca",
    );
    let lost_pub = hsm.ca_pub_file();
    let work = target_dir();
    let alice = keygen(work.path(), "alice", &["-t", "ed25519"], "alice");
    let lost_cert = work.path().join("lost-cert.pub");
    assert_ok(
        &hsm.mint(
            &alice,
            &["-n", "breakglass", "-o", lost_cert.to_str().unwrap()],
        ),
        "mint from the primary",
    );
    let out = host_config(
        &hsm,
        work.path(),
        "host",
        &["--user", "breakglass"],
        Some(Path::new("/etc/ssh")),
    );
    let script = out.join("install.sh");
    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    assert_ok(&sh(&script, Some(&root), None, &[]), "install.sh");
    let installed = root.join("etc/ssh/breakglass-ca.krl");
    let revoked = |cert: &Path| {
        let o = run(Command::new("ssh-keygen")
            .args(["-Q", "-f"])
            .arg(&installed)
            .arg(cert));
        stdout(&o).contains("REVOKED")
    };
    let krl_out = |state: Option<&Path>, name: &str| {
        let path = work.path().join(name);
        let mut c = hsm.cmd();
        if state.is_some() {
            backup(&mut c);
        }
        assert_ok(&run(c.arg("krl").arg("-o").arg(&path)), "krl -o");
        path
    };
    // The token is lost: revoke it, publish the KRL.
    assert_ok(
        &run(hsm
            .cmd()
            .args(["revoke", "--ca", "--reason", "INC-9 token lost"])),
        "revoke --ca",
    );
    let k1 = krl_out(None, "lost.krl");
    assert_ok(&install_krl(&script, Some(&root), &k1), "install lost.krl");
    assert!(revoked(&lost_cert));
    // The backup's state directory, in a later second, revokes one of its own serials.
    std::thread::sleep(Duration::from_millis(1100));
    let mut c = hsm.cmd();
    backup(&mut c);
    let backup_cert = work.path().join("backup-cert.pub");
    assert_ok(
        &run(c
            .args(["mint", "--reason", "INC-9", "-n", "breakglass", "-o"])
            .arg(&backup_cert)
            .arg(&alice)),
        "mint from the backup",
    );
    let mut c = hsm.cmd();
    backup(&mut c);
    assert_ok(
        &run(c.args(["revoke", "--serial", "1", "--reason", "INC-10 leaked"])),
        "revoke in the backup",
    );
    let k2 = krl_out(Some(&state2), "backup.krl");
    let before = tree(&root);
    let o = install_krl(&script, Some(&root), &k2);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("would let their certificates in again"),
        "{err}"
    );
    assert_eq!(tree(&root), before);
    assert!(revoked(&lost_cert), "the lost CA's revocation was lifted");
    // The backup's ledger revokes the lost CA too (the procedure the refusal names): its KRL
    // installs, and both revocations hold.
    std::thread::sleep(Duration::from_millis(1100));
    for args in [
        vec!["add-backup-ca", lost_pub.to_str().unwrap()],
        vec![
            "revoke",
            "--ca",
            lost_pub.to_str().unwrap(),
            "--reason",
            "INC-9 token lost",
        ],
    ] {
        let mut c = hsm.cmd();
        backup(&mut c);
        assert_ok(&run(c.args(&args)), &args.join(" "));
    }
    let k3 = krl_out(Some(&state2), "backup-2.krl");
    assert_ok(
        &install_krl(&script, Some(&root), &k3),
        "install backup-2.krl",
    );
    assert!(revoked(&lost_cert), "the lost CA's revocation was lifted");
    assert!(revoked(&backup_cert));
}
