//! The image builder's side (issue 15): `host-config --ca-pubkey FILE [--ca-pubkey FILE]...
//! [--krl FILE]` run by another person on another machine, with no state directory and no
//! token: a clean environment (no `BREAKGLASS_*` variable, no SoftHSM2 configuration) whose
//! `HOME` and `XDG_STATE_HOME` are empty directories that stay empty. Its tree is byte for
//! byte the custodian's `host-config` tree (every file and directory, and its mode) for the
//! same keys and options; with `--krl` its KRL is that file; bad inputs are refused before
//! `--out` is created; a real sshd set up from its bundle accepts that CA's certificates only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::*;
use crate::hosts::{read, sshd_config, sshd_t, tree};
use crate::sshd::{current_user, Sshd};

fn tools() -> bool {
    require(&["softhsm2-util", "ssh-keygen", MODULE])
}

/// The image builder's machine: an empty home and state home, nothing else.
struct Builder {
    dir: tempfile::TempDir,
}

impl Builder {
    fn new() -> Builder {
        let dir = tempfile::tempdir().unwrap();
        for d in ["home", "xdg-state"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        Builder { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with only `HOME`, `XDG_STATE_HOME` and `PATH`, in this machine's directory.
    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_breakglass-ca"));
        c.env_clear()
            .env("HOME", self.path("home"))
            .env("XDG_STATE_HOME", self.path("xdg-state"))
            .env("PATH", "/usr/bin:/bin")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    /// `host-config ARGS --out OUT`.
    fn host_config(&self, args: &[&str], out: &Path) -> Output {
        run(self
            .cmd()
            .arg("host-config")
            .args(args)
            .arg("--out")
            .arg(out))
    }

    /// Nothing was created in the empty home or state home (no state directory, no lock).
    fn assert_home_untouched(&self) {
        for d in ["home", "xdg-state"] {
            let entries: Vec<_> = std::fs::read_dir(self.path(d)).unwrap().collect();
            assert!(entries.is_empty(), "{d} is no longer empty: {entries:?}");
        }
    }
}

/// The custodian's `host-config ARGS --out OUT`, beside the state directory, token plugged in.
fn custodian(hsm: &Hsm, args: &[&str], out: &Path) -> Output {
    run(hsm
        .cmd()
        .env_remove("BREAKGLASS_CA_PIN_FILE")
        .arg("host-config")
        .args(args)
        .arg("--out")
        .arg(out))
}

fn fingerprint_of(pubkey: &Path) -> String {
    let out = run(Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(pubkey));
    assert_ok(&out, "ssh-keygen -l");
    stdout(&out).split_whitespace().nth(1).unwrap().to_string()
}

/// The option sets both sides are run with.
const OPTION_SETS: &[&[&str]] = &[
    &["--user", "breakglass"],
    &[
        "--user",
        "breakglass",
        "--user",
        "root",
        "--principal",
        "ops,root",
        "--principal",
        "oncall",
    ],
    &[
        "--user",
        "breakglass",
        "--alert-command",
        "/usr/local/sbin/page",
        "--alert-timeout",
        "30s",
    ],
    &[
        "--user",
        "breakglass",
        "--user",
        "ops",
        "--alert-command",
        "/usr/local/sbin/page",
        "--no-alert-syslog",
    ],
    &["--user", "breakglass", "--no-alert-syslog"],
    &["--user", "bg", "--ssh-dir", "/etc/ssh-emergency/"],
];

/// With 0 and 1 backup CAs, for every option set: the builder's tree (from `ca.pub` and the
/// backup's file, in an empty environment) is the custodian's (from the token and the state
/// directory), every file, directory and mode. The builder's stderr names each file with its
/// fingerprint; its home stays empty.
#[test]
fn the_builders_tree_is_the_custodians_byte_for_byte() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let work = tempfile::tempdir().unwrap();
    let b = Builder::new();
    // What the custodian hands over: ca.pub, and the backup CA's line as add-backup-ca got it.
    let ca_pub = hsm.ca_pub_file();
    std::fs::copy(&ca_pub, b.path("ca.pub")).unwrap();
    let backup = keygen(work.path(), "backup-ca", &["-t", "ed25519"], "vault-b");
    std::fs::copy(&backup, b.path("backup-ca.pub")).unwrap();
    let fp = fingerprint_of(&ca_pub);
    let backup_fp = fingerprint_of(&backup);

    let mut compared = 0;
    for backups in [0, 1] {
        if backups == 1 {
            assert_ok(
                &run(hsm.cmd().arg("add-backup-ca").arg(&backup)),
                "add-backup-ca",
            );
        }
        for (i, options) in OPTION_SETS.iter().enumerate() {
            let name = format!("b{backups}-o{i}");
            let c_out = work.path().join(format!("custodian-{name}"));
            let o = custodian(&hsm, options, &c_out);
            assert_ok(&o, &format!("custodian host-config {options:?}"));
            assert!(
                stderr(&o).contains("CA key: from the token 'emergency-ca'"),
                "{}",
                stderr(&o)
            );

            let mut args = vec!["--ca-pubkey", "ca.pub"];
            if backups == 1 {
                args.extend(["--ca-pubkey", "backup-ca.pub"]);
            }
            args.extend_from_slice(options);
            let b_out = b.path(&format!("builder-{name}"));
            let o = b.host_config(&args, &b_out);
            assert_ok(&o, &format!("builder host-config {args:?}"));
            assert!(stdout(&o).is_empty(), "{}", stdout(&o));
            let err = stderr(&o);
            assert!(
                err.contains(&format!(
                    "CA key: from ca.pub (given on the command line), fingerprint {fp}\n"
                )),
                "{err}"
            );
            assert_eq!(
                err.contains(&format!("backup CA 1: from backup-ca.pub ({backup_fp})\n")),
                backups == 1,
                "{err}"
            );
            assert!(err.contains("no --krl given"), "{err}");
            assert!(!err.contains("state directory"), "{err}");

            let (c, b_tree) = (tree(&c_out), tree(&b_out));
            assert_eq!(
                c.keys().collect::<Vec<_>>(),
                b_tree.keys().collect::<Vec<_>>(),
                "{name}: the same files"
            );
            for (path, (mode, bytes)) in &c {
                let (b_mode, b_bytes) = &b_tree[path];
                assert_eq!(mode, b_mode, "{name}: the mode of {path}");
                assert!(bytes == b_bytes, "{name}: {path} differs");
            }
            assert_eq!(
                read(&b_out.join("breakglass-ca.pub")).lines().count(),
                1 + backups
            );
            compared += c.len();
        }
    }
    assert!(compared > 100, "{compared}");

    // The primary on stdin gives the same tree again.
    let out = b.path("from-stdin");
    let o = run(b
        .cmd()
        .args([
            "host-config",
            "--ca-pubkey",
            "-",
            "--ca-pubkey",
            "backup-ca.pub",
        ])
        .args(OPTION_SETS[0])
        .arg("--out")
        .arg(&out)
        .stdin(std::fs::File::open(&ca_pub).unwrap()));
    assert_ok(&o, "host-config --ca-pubkey -");
    assert_eq!(tree(&out), tree(&b.path("builder-b1-o0")));
    b.assert_home_untouched();
}

/// The custodian's tree with revocations (a serial and the backup CA revoked in the ledger):
/// the builder given the same keys and the custodian's `breakglass-ca.krl` writes the same
/// tree, the backup CA left out of the bundle and named REVOKED. With `krl -o`'s file the baked
/// KRL (and the one install.sh installs) is that file, byte for byte. A KRL that is not one, or
/// is another CA's, is refused and nothing is written; a KRL revoking every CA given is refused
/// as the custodian's host-config refuses it.
#[test]
fn the_builders_krl_is_the_custodians_file() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let work = tempfile::tempdir().unwrap();
    let b = Builder::new();
    std::fs::copy(hsm.ca_pub_file(), b.path("ca.pub")).unwrap();
    let backup = keygen(work.path(), "backup-ca", &["-t", "ed25519"], "vault-b");
    std::fs::copy(&backup, b.path("backup-ca.pub")).unwrap();
    assert_ok(
        &run(hsm.cmd().arg("add-backup-ca").arg(&backup)),
        "add-backup-ca",
    );
    for n in ["a", "b"] {
        let k = keygen(work.path(), n, &["-t", "ed25519"], n);
        assert_ok(&hsm.mint(&k, &["-n", "breakglass"]), "mint");
    }
    revoke_ok(&hsm, &["--serial", "1", "--reason", "INC-7 laptop lost"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let backup_s = backup.to_str().unwrap();
    revoke_ok(
        &hsm,
        &["--ca", backup_s, "--reason", "INC-8 vault token lost"],
    );

    let options = ["--user", "breakglass", "--principal", "ops"];
    let c_out = work.path().join("custodian");
    assert_ok(&custodian(&hsm, &options, &c_out), "custodian host-config");
    let c_bundle = read(&c_out.join("breakglass-ca.pub"));
    assert!(c_bundle.contains("# REVOKED, do not trust: "), "{c_bundle}");
    let c_krl = std::fs::read(c_out.join("breakglass-ca.krl")).unwrap();
    std::fs::write(b.path("bundle.krl"), &c_krl).unwrap();

    let mut args = vec![
        "--ca-pubkey",
        "ca.pub",
        "--ca-pubkey",
        "backup-ca.pub",
        "--krl",
        "bundle.krl",
    ];
    args.extend_from_slice(&options);
    let b_out = b.path("builder");
    let o = b.host_config(&args, &b_out);
    assert_ok(&o, "builder host-config --krl");
    let err = stderr(&o);
    assert!(
        err.contains("from bundle.krl as given: revokes 1 serial(s), 0 key ID(s), 1 key(s)"),
        "{err}"
    );
    assert!(err.contains("REVOKED, not trusted"), "{err}");
    assert_eq!(
        tree(&c_out),
        tree(&b_out),
        "the same tree, revocations included"
    );

    // `krl -o`'s file (generated now, a second after the newest revocation, so other bytes
    // than host-config's, generated at that revocation): baked as it is.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let krl_o = b.path("now.krl");
    assert_ok(&run(hsm.cmd().args(["krl", "-o"]).arg(&krl_o)), "krl -o");
    assert_ne!(std::fs::read(&krl_o).unwrap(), c_krl);
    args[5] = "now.krl";
    let out = b.path("builder-now");
    assert_ok(
        &b.host_config(&args, &out),
        "builder host-config --krl now.krl",
    );
    assert_eq!(
        std::fs::read(out.join("breakglass-ca.krl")).unwrap(),
        std::fs::read(&krl_o).unwrap()
    );
    let q = run(Command::new("ssh-keygen")
        .args(["-Q", "-l", "-f"])
        .arg(out.join("breakglass-ca.krl")));
    assert_ok(&q, "ssh-keygen -Q -l");
    if require(&["sh", "base64", "od"]) {
        let root = work.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let o = run(Command::new("sh")
            .arg(out.join("install.sh"))
            .env("ROOT", &root)
            .stdin(Stdio::null()));
        assert_ok(&o, "ROOT=DIR sh install.sh");
        assert_eq!(
            std::fs::read(root.join("etc/ssh/breakglass-ca.krl")).unwrap(),
            std::fs::read(&krl_o).unwrap()
        );
    }

    // The command of docs/hosts.md, section 1.1, as printed.
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/hosts.md")).unwrap();
    let line = doc
        .lines()
        .find(|l| l.starts_with("breakglass-ca host-config ") && l.contains("--ca-pubkey"))
        .expect("docs/hosts.md shows host-config --ca-pubkey");
    std::fs::copy(b.path("backup-ca.pub"), b.path("backup.pub")).unwrap();
    std::fs::copy(b.path("bundle.krl"), b.path("ca.krl")).unwrap();
    let o = run(b.cmd().args(line.split(' ').skip(1)));
    assert_ok(&o, line);
    assert_eq!(
        std::fs::read(b.path("host-bundle/breakglass-ca.krl")).unwrap(),
        c_krl
    );

    // Refused, nothing written.
    let refused = |krl: &str, keys: &[&str], code: i32, needle: &str| {
        let out = b.path("refused");
        let mut args: Vec<&str> = keys.iter().flat_map(|k| ["--ca-pubkey", k]).collect();
        args.extend(["--krl", krl, "--user", "breakglass"]);
        assert_fails(&b.host_config(&args, &out), code, needle);
        assert!(!out.exists(), "{krl}: --out was created");
    };
    std::fs::write(b.path("garbage.krl"), b"SSHKRL\n\0 but nothing more").unwrap();
    refused("garbage.krl", &["ca.pub"], 1, "--krl garbage.krl");
    refused("ca.pub", &["ca.pub"], 1, "--krl ca.pub");
    refused("no-such.krl", &["ca.pub"], 1, "no-such.krl");
    let other = Hsm::new("other-ca");
    other.init("ed25519");
    let k = keygen(work.path(), "c", &["-t", "ed25519"], "c");
    assert_ok(&other.mint(&k, &["-n", "breakglass"]), "mint (other CA)");
    let other_fp = fingerprint_of(&other.ca_pub_file());
    assert_ok(
        &run(other
            .cmd()
            .args(["krl", "-o"])
            .arg(b.path("other-empty.krl"))),
        "krl -o (other CA, nothing revoked)",
    );
    revoke_ok(&other, &["--serial", "1", "--reason", "INC-9"]);
    assert_ok(
        &run(other.cmd().args(["krl", "-o"]).arg(b.path("other.krl"))),
        "krl -o (other CA)",
    );
    for krl in ["other.krl", "other-empty.krl"] {
        refused(
            krl,
            &["ca.pub", "backup-ca.pub"],
            1,
            &format!("is a KRL of the CA {other_fp}, which is none of the --ca-pubkey keys"),
        );
    }
    // The primary alone with that KRL (which revokes a key not given: allowed).
    let out = b.path("primary-alone");
    let o = b.host_config(
        &[
            "--ca-pubkey",
            "ca.pub",
            "--krl",
            "bundle.krl",
            "--user",
            "breakglass",
        ],
        &out,
    );
    assert_ok(
        &o,
        "the primary alone, with the KRL that revokes the backup",
    );
    assert_eq!(read(&out.join("breakglass-ca.pub")).lines().count(), 1);
    // This CA revoked too: every CA given is revoked, as the custodian's host-config says.
    let ca_s = b.path("ca.pub");
    revoke_ok(
        &hsm,
        &["--ca", ca_s.to_str().unwrap(), "--reason", "INC-10"],
    );
    assert_ok(
        &run(hsm.cmd().args(["krl", "-o"]).arg(b.path("all.krl"))),
        "krl -o",
    );
    let c_out = work.path().join("custodian-all");
    assert_fails(
        &custodian(&hsm, &options, &c_out),
        1,
        "hosts would trust no CA",
    );
    for keys in [&["ca.pub"][..], &["ca.pub", "backup-ca.pub"]] {
        refused("all.krl", keys, 1, "revokes every CA key given");
    }
    b.assert_home_untouched();
}

/// The inputs a builder can get wrong: each a clear error with the tool's exit code (2 for a
/// file that is not one CA public key line or options that contradict, 1 for a file that cannot
/// be read), and `--out` never created.
#[test]
fn bad_inputs_are_refused_and_nothing_is_written() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let b = Builder::new();
    let ca_pub = b.path("ca.pub");
    std::fs::copy(hsm.ca_pub_file(), &ca_pub).unwrap();
    let private = keygen(b.dir.path(), "private", &["-t", "ed25519"], "x");
    let requester = keygen(b.dir.path(), "alice", &["-t", "ed25519"], "alice");
    assert_ok(&hsm.mint(&requester, &["-n", "breakglass"]), "mint");
    let ca_line = read(&ca_pub);
    std::fs::write(b.path("two.pub"), format!("{ca_line}{}", read(&private))).unwrap();
    std::fs::write(b.path("empty.pub"), "").unwrap();
    std::fs::write(b.path("comments.pub"), "# the CA\n\n").unwrap();
    let cases: &[(&[&str], &str, i32, &str)] = &[
        (
            &["--ca-pubkey", "private"],
            "",
            2,
            "--ca-pubkey private holds a PRIVATE key",
        ),
        (
            &["--ca-pubkey", "alice-cert.pub"],
            "",
            2,
            "--ca-pubkey alice-cert.pub holds a certificate, not a CA public key",
        ),
        (
            &["--ca-pubkey", "two.pub"],
            "",
            2,
            "--ca-pubkey two.pub holds 2 key lines",
        ),
        (
            &["--ca-pubkey", "empty.pub"],
            "",
            2,
            "holds no public key line",
        ),
        (
            &["--ca-pubkey", "comments.pub"],
            "",
            2,
            "holds no public key line",
        ),
        (&["--ca-pubkey", "missing.pub"], "", 1, "missing.pub"),
        (
            &["--ca-pubkey", "ca.pub", "--ca-pubkey", "ca.pub"],
            "",
            2,
            "--ca-pubkey ca.pub holds the same key as --ca-pubkey ca.pub",
        ),
        (
            &["--ca-pubkey", "-", "--ca-pubkey", "-"],
            "",
            2,
            "--ca-pubkey - was given twice; stdin can be read once",
        ),
        (
            &["--ca-pubkey", "ca.pub", "--ca-pubkey", "private"],
            "",
            2,
            "PRIVATE key",
        ),
        (
            &["--ca-pubkey", "ca.pub", "--state-dir", "state"],
            "",
            2,
            "--ca-pubkey gives the CA key, but --state-dir names the state directory state too",
        ),
        (
            &["--ca-pubkey", "ca.pub", "--ca", "pkcs11:token=emergency-ca"],
            "",
            2,
            "but --ca names a token too",
        ),
        (
            &["--ca-pubkey", "ca.pub"],
            "BREAKGLASS_CA_STATE_DIR",
            2,
            "but BREAKGLASS_CA_STATE_DIR names the state directory",
        ),
        (
            &["--ca-pubkey", "ca.pub"],
            "BREAKGLASS_CA",
            2,
            "but BREAKGLASS_CA names a token too",
        ),
        (
            &["--ca-pubkey", "ca.pub", "--krl", "-"],
            "",
            2,
            "--krl needs a file",
        ),
    ];
    let out = b.path("out");
    for (args, env, code, needle) in cases {
        let mut c = b.cmd();
        c.arg("host-config")
            .args(*args)
            .args(["--user", "breakglass", "--out"])
            .arg(&out);
        match *env {
            "BREAKGLASS_CA_STATE_DIR" => {
                c.env(env, &hsm.state);
            }
            "BREAKGLASS_CA" => {
                c.env(env, hsm.uri());
            }
            _ => {}
        }
        if args.contains(&"-") {
            c.stdin(std::fs::File::open(&ca_pub).unwrap());
        }
        let o = run(&mut c);
        assert_fails(&o, *code, needle);
        assert!(stderr(&o).contains("\nhint: "), "{args:?}: {}", stderr(&o));
        assert!(!out.exists(), "{args:?}: --out was created");
    }
    assert!(!b.path("state").exists());
    // --krl without --ca-pubkey: the state directory's ledger makes the KRL.
    let before = snapshot_state(&hsm.state);
    std::fs::write(b.path("x.krl"), b"").unwrap();
    let o = custodian(
        &hsm,
        &["--krl", b.path("x.krl").to_str().unwrap(), "--user", "bg"],
        &out,
    );
    assert_fails(&o, 2, "goes with --ca-pubkey");
    assert!(!out.exists());
    assert_eq!(snapshot_state(&hsm.state), before);
    b.assert_home_untouched();
}

/// A real sshd (127.0.0.1, its tree under target/) that Includes the snippet of the builder's
/// bundle (`--ca-pubkey ca.pub --krl FILE`, `--ssh-dir` = the bundle): a certificate this CA
/// minted logs in; one the KRL revokes, and one from another CA with the same principal, do
/// not.
#[test]
fn sshd_set_up_from_the_builders_bundle_trusts_that_ca_only() {
    if !require(&["softhsm2-util", "ssh-keygen", "ssh", "sshd", MODULE]) {
        return;
    }
    let me = current_user();
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let keys = target_dir();
    let good = keygen(keys.path(), "good", &["-t", "ed25519"], "alice@laptop");
    assert_ok(&hsm.mint(&good, &["-n", &me]), "mint");
    let revoked = keygen(keys.path(), "revoked", &["-t", "ed25519"], "bob@laptop");
    assert_ok(&hsm.mint(&revoked, &["-n", &me]), "mint");
    revoke_ok(&hsm, &["--serial", "2", "--reason", "INC-11 key leaked"]);

    let b = Builder::new();
    std::fs::copy(hsm.ca_pub_file(), b.path("ca.pub")).unwrap();
    assert_ok(
        &run(hsm.cmd().args(["krl", "-o"]).arg(b.path("current.krl"))),
        "krl -o",
    );
    let tree_dir = target_dir();
    let bundle = tree_dir.path().join("bundle");
    let o = b.host_config(
        &[
            "--ca-pubkey",
            "ca.pub",
            "--krl",
            "current.krl",
            "--user",
            &me,
            "--no-alert-syslog",
            "--ssh-dir",
            bundle.to_str().unwrap(),
        ],
        &bundle,
    );
    assert_ok(&o, "builder host-config");

    // Another CA (a file key) signs a certificate for the same principal.
    let stranger = keygen(keys.path(), "stranger-ca", &["-t", "ed25519"], "stranger");
    let mallory = keygen(keys.path(), "mallory", &["-t", "ed25519"], "mallory@laptop");
    let signed = run(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(stranger.with_extension(""))
        .args(["-I", "mallory", "-n", &me, "-V", "-5m:+1h", "-z", "1"])
        .arg(&mallory));
    assert_ok(&signed, "ssh-keygen -s (another CA)");

    let sshd_dir = target_dir();
    let port = crate::sshd::free_port();
    let config = sshd_config(sshd_dir.path(), port, &bundle, &me, true);
    assert_ok(&sshd_t(&config), "sshd -t with the builder's snippet");
    let sshd = Sshd::from_config(sshd_dir, port, &config);
    assert!(
        sshd.login(&good.with_extension(""), &cert_path(&good)),
        "sshd refused this CA's certificate:\n{}",
        sshd.log_text()
    );
    assert!(
        !sshd.login(&revoked.with_extension(""), &cert_path(&revoked)),
        "sshd accepted a certificate the KRL revokes:\n{}",
        sshd.log_text()
    );
    assert!(
        !sshd.login(&mallory.with_extension(""), &cert_path(&mallory)),
        "sshd accepted another CA's certificate:\n{}",
        sshd.log_text()
    );
    let log = sshd.log_text();
    assert!(log.contains("revoked by file"), "{log}");
    assert!(
        log.contains(&format!("Accepted publickey for {me} from 127.0.0.1")),
        "{log}"
    );
    b.assert_home_untouched();
}
