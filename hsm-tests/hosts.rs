//! The host bundle: sshd -t, a loopback sshd that only Includes the snippet, backup CAs, install.sh.
//!
//! The sshd here is started by this file (not `sshd.rs`, whose configuration trusts CA keys
//! globally): its configuration sets only the listener, host key, logging and `UsePAM`, and
//! `Include`s the generated snippet, whose paths point into the `--out` directory
//! (`--ssh-dir` = `--out`). It listens on 127.0.0.1 on a free port, serves the current user,
//! and is killed by PID when dropped.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::*;
use crate::sshd::{current_user, free_port, needs_pam, Sshd};

fn tools() -> bool {
    require(&["softhsm2-util", "ssh-keygen", "ssh", "sshd", MODULE])
}

/// `breakglass-ca host-config ARGS --out DIR/NAME`, without any PIN source; with
/// `--ssh-dir` = `--out` unless `ssh_dir` says otherwise, and `--no-alert-syslog` unless ARGS
/// name an alarm option (these tests are about trust and KRLs, on the snippet without the
/// alarm hook; `alarm.rs` tests the alarm). Returns the output directory.
pub(crate) fn host_config(
    hsm: &Hsm,
    dir: &Path,
    name: &str,
    args: &[&str],
    ssh_dir: Option<&Path>,
) -> PathBuf {
    let out = dir.join(name);
    let mut c = hsm.cmd();
    c.env_remove("BREAKGLASS_CA_PIN_FILE")
        .arg("host-config")
        .args(args);
    if !args.iter().any(|a| a.contains("alert")) {
        c.arg("--no-alert-syslog");
    }
    c.arg("--ssh-dir")
        .arg(ssh_dir.unwrap_or(&out))
        .arg("--out")
        .arg(&out);
    let o = run(&mut c);
    assert_ok(&o, "host-config");
    assert!(stdout(&o).is_empty(), "host-config printed on stdout");
    out
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Every entry under `root`: relative path -> (mode, content; empty for directories).
pub(crate) fn tree(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let m = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.insert(format!("{rel}/"), (m, Vec::new()));
                walk(root, &path, out);
            } else {
                out.insert(rel, (m, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The loopback sshd configuration: nothing about keys or principals but the Include.
pub(crate) fn sshd_config(dir: &Path, port: u16, out: &Path, user: &str, verbose: bool) -> PathBuf {
    let host_key = dir.join("ssh_host_ed25519_key");
    if !host_key.exists() {
        let o = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .output()
            .unwrap();
        assert_ok(&o, "ssh-keygen host key");
    }
    let use_pam = if needs_pam(user) { "yes" } else { "no" };
    let log_level = if verbose { "LogLevel VERBOSE\n" } else { "" };
    let config = dir.join(if verbose {
        "sshd_config"
    } else {
        "sshd_config.info"
    });
    std::fs::write(
        &config,
        format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\nPidFile {d}/sshd.pid\n{log_level}\
             UsePAM {use_pam}\nStrictModes no\nPasswordAuthentication no\n\
             Include {out}/sshd_config.d/breakglass-ca.conf\n",
            hk = host_key.display(),
            d = dir.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    config
}

/// `sshd -t -f CONFIG`.
pub(crate) fn sshd_t(config: &Path) -> Output {
    let _ = std::fs::create_dir_all("/run/sshd");
    Command::new(sshd_path())
        .arg("-t")
        .arg("-f")
        .arg(config)
        .output()
        .unwrap()
}

/// `sshd -T -f CONFIG -C user=USER,host=x,addr=127.0.0.1`: the effective settings for USER.
pub(crate) fn sshd_effective(config: &Path, user: &str) -> String {
    let out = Command::new(sshd_path())
        .arg("-T")
        .arg("-f")
        .arg(config)
        .arg("-C")
        .arg(format!("user={user},host=x,addr=127.0.0.1"))
        .output()
        .unwrap();
    assert_ok(&out, "sshd -T");
    stdout(&out)
}

/// Check the configuration with `sshd -t`, then start a real sshd on 127.0.0.1 with it.
fn start_sshd(out: &Path) -> Sshd {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = sshd_config(dir.path(), port, out, &current_user(), true);
    assert_ok(&sshd_t(&config), "sshd -t with the generated snippet");
    Sshd::from_config(dir, port, &config)
}

pub(crate) fn key_part(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn fingerprint(hsm: &Hsm) -> String {
    let out = run(hsm.cmd().args(["pubkey", "--format", "fingerprint"]));
    assert_ok(&out, "pubkey --format fingerprint");
    stdout(&out).trim().to_string()
}

/// sshd -t accepts a configuration that only Includes the snippet; the snippet applies to the
/// configured user only; a certificate for the configured principal logs in, one for another
/// principal does not; sshd logs the key ID and serial.
#[test]
fn snippet_passes_sshd_t_and_logins_follow_the_principals() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let ca_line = hsm.init("ecdsa-p256");
    let me = current_user();
    let work = tempfile::tempdir().unwrap();
    let out = host_config(
        &hsm,
        work.path(),
        "host",
        &["--user", &me, "--principal", "breakglass"],
        None,
    );

    // The files, their modes and contents.
    let bundle = out.join("breakglass-ca.pub");
    assert_eq!(read(&bundle), format!("{ca_line}\n"));
    assert_eq!(
        read(&out.join("breakglass-ca-principals").join(&me)),
        "breakglass\n"
    );
    let snippet = read(&out.join("sshd_config.d/breakglass-ca.conf"));
    assert!(snippet.contains(&fingerprint(&hsm)), "{snippet}");
    assert!(snippet.contains("LogLevel VERBOSE"), "{snippet}");
    assert!(snippet.contains(&format!(
        "Match User {me}\n    TrustedUserCAKeys {b}\n    RevokedKeys {o}/breakglass-ca.krl\n    AuthorizedPrincipalsFile {o}/breakglass-ca-principals/%u\n    AuthorizedKeysFile none\n    PubkeyAuthentication yes\n",
        b = bundle.display(),
        o = out.display()
    )), "{snippet}");
    for f in [
        "breakglass-ca.pub",
        "breakglass-ca.krl",
        "sshd_config.d/breakglass-ca.conf",
        "cloud-init.yaml",
    ] {
        assert_eq!(mode(&out.join(f)), 0o644, "{f}");
    }
    assert_eq!(mode(&out.join("install.sh")), 0o755);
    assert_eq!(mode(&out.join("sshd_config.d")), 0o755);
    assert_eq!(mode(&out.join("breakglass-ca-principals")), 0o755);

    // What sshd makes of it: the Match block is for this user only, and it ends with the file.
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = sshd_config(cfg_dir.path(), free_port(), &out, &me, false);
    assert_ok(&sshd_t(&config), "sshd -t");
    let mine = sshd_effective(&config, &me);
    assert!(
        mine.contains(&format!("trustedusercakeys {}\n", bundle.display())),
        "{mine}"
    );
    assert!(mine.contains("authorizedkeysfile none\n"), "{mine}");
    assert!(mine.contains("authenticationmethods publickey\n"), "{mine}");
    assert!(
        mine.contains("loglevel VERBOSE\n"),
        "the Match block must raise LogLevel even where sshd_config does not:\n{mine}"
    );
    let other = sshd_effective(&config, "someone-else");
    assert!(other.contains("trustedusercakeys none\n"), "{other}");
    assert!(other.contains("loglevel INFO\n"), "{other}");

    // A real login.
    let sshd = start_sshd(&out);
    let good = keygen(work.path(), "good", &["-t", "ed25519"], "alice@laptop");
    assert_ok(&hsm.mint(&good, &["-n", "breakglass"]), "mint breakglass");
    assert!(
        sshd.login(&good.with_extension(""), &cert_path(&good)),
        "sshd refused the configured principal:\n{}",
        sshd.log_text()
    );
    let wrong = keygen(work.path(), "wrong", &["-t", "ed25519"], "mallory@laptop");
    assert_ok(&hsm.mint(&wrong, &["-n", "someone-else"]), "mint other");
    assert!(
        !sshd.login(&wrong.with_extension(""), &cert_path(&wrong)),
        "sshd accepted a certificate for another principal:\n{}",
        sshd.log_text()
    );
    // The user's own name is not a principal once --principal is given.
    let own = keygen(work.path(), "own", &["-t", "ed25519"], "eve@laptop");
    assert_ok(&hsm.mint(&own, &["-n", &me]), "mint own name");
    assert!(!sshd.login(&own.with_extension(""), &cert_path(&own)));

    let log = sshd.log_text();
    assert!(
        log.contains(&format!(
            "Accepted certificate ID \"alice@laptop#1:INC-42-test\" (serial 1) signed by ECDSA CA {} via {}",
            fingerprint(&hsm),
            bundle.display()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("Accepted publickey for {me} from 127.0.0.1")),
        "{log}"
    );
    assert!(
        log.contains("ID alice@laptop#1:INC-42-test (serial 1) CA ECDSA"),
        "{log}"
    );
    assert!(
        log.contains("Certificate does not contain an authorized principal"),
        "{log}"
    );
    assert!(!log.contains("(serial 2) signed by"), "{log}");
}

/// A second token's CA, added with add-backup-ca, goes into the bundle after this CA; sshd
/// accepts certificates from both, and still refuses a third CA.
#[test]
fn a_backup_ca_added_with_add_backup_ca_is_trusted_too() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let primary_line = hsm.init("ecdsa-p256");
    let backup = Hsm::new("backup-ca");
    let backup_line = backup.init("ecdsa-p384");
    let stranger = Hsm::new("stranger-ca");
    stranger.init("ecdsa-p256");

    let backup_pub = backup.ca_pub_file();
    let out = run(hsm.cmd().arg("add-backup-ca").arg(&backup_pub));
    assert_ok(&out, "add-backup-ca");
    let backup_fp = fingerprint(&backup);
    assert_eq!(stdout(&out).trim(), backup_fp);
    let err = stderr(&out);
    assert!(err.contains("host-config"), "{err}");
    assert!(err.contains("sheet"), "{err}");
    let config = read(&hsm.state.join("config.toml"));
    assert!(config.contains(&key_part(&backup_line)), "{config}");

    let me = current_user();
    let work = tempfile::tempdir().unwrap();
    let host = host_config(&hsm, work.path(), "host", &["--user", &me], None);
    let bundle = read(&host.join("breakglass-ca.pub"));
    let lines: Vec<&str> = bundle.lines().collect();
    assert_eq!(lines.len(), 2, "{bundle}");
    assert_eq!(lines[0], primary_line, "this CA comes first");
    assert_eq!(key_part(lines[1]), key_part(&backup_line));
    // Without --principal, the principal is the user's own name.
    assert_eq!(
        read(&host.join("breakglass-ca-principals").join(&me)),
        format!("{me}\n")
    );
    let snippet = read(&host.join("sshd_config.d/breakglass-ca.conf"));
    assert!(
        snippet.contains(&format!("{backup_fp} (ecdsa-p384, backup CA)")),
        "{snippet}"
    );

    let sshd = start_sshd(&host);
    let by_backup = keygen(work.path(), "b", &["-t", "ed25519"], "bob@laptop");
    assert_ok(&backup.mint(&by_backup, &["-n", &me]), "mint by backup");
    assert!(
        sshd.login(&by_backup.with_extension(""), &cert_path(&by_backup)),
        "sshd refused the backup CA's certificate:\n{}",
        sshd.log_text()
    );
    let by_primary = keygen(work.path(), "p", &["-t", "ecdsa"], "pat@laptop");
    assert_ok(&hsm.mint(&by_primary, &["-n", &me]), "mint by primary");
    assert!(
        sshd.login(&by_primary.with_extension(""), &cert_path(&by_primary)),
        "{}",
        sshd.log_text()
    );
    let by_stranger = keygen(work.path(), "s", &["-t", "ed25519"], "sam@laptop");
    assert_ok(
        &stranger.mint(&by_stranger, &["-n", &me]),
        "mint by stranger",
    );
    assert!(!sshd.login(&by_stranger.with_extension(""), &cert_path(&by_stranger)));

    let log = sshd.log_text();
    assert!(
        log.contains(&format!(
            "Accepted certificate ID \"bob@laptop#1:INC-42-test\" (serial 1) signed by ECDSA CA {backup_fp} via"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "Accepted certificate ID \"pat@laptop#1:INC-42-test\" (serial 1) signed by ECDSA CA {}",
            fingerprint(&hsm)
        )),
        "{log}"
    );
    assert!(
        !log.contains("Accepted certificate ID \"sam@laptop"),
        "{log}"
    );
    assert!(
        log.contains(&format!("Failed publickey for {me} from 127.0.0.1"))
            && log.contains(&format!(
                "ID sam@laptop#1:INC-42-test (serial 1) CA ECDSA {}",
                fingerprint(&stranger)
            )),
        "{log}"
    );
}

/// A directory of fake `sshd`, `systemctl` and `service` commands that record their calls,
/// so install.sh can be run without touching this machine's sshd.
pub(crate) fn fake_tools(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("fake-bin");
    std::fs::create_dir(&bin).unwrap();
    let calls = dir.join("calls.log");
    let sshd = "#!/bin/sh\necho \"sshd $*\" >>\"$FAKE_CALLS\"\ncase \"$1\" in\n  -t) exit \"${FAKE_SSHD_T_RC:-0}\" ;;\n  -T) echo 'port 22'; echo \"trustedusercakeys ${FAKE_TRUSTED:-none}\"; echo \"revokedkeys ${FAKE_REVOKED:-none}\" ;;\nesac\n";
    let other = |name: &str| format!("#!/bin/sh\necho \"{name} $*\" >>\"$FAKE_CALLS\"\n");
    for (name, body) in [
        ("sshd", sshd.to_string()),
        ("systemctl", other("systemctl")),
        ("service", other("service")),
    ] {
        let p = bin.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (bin, calls)
}

/// `sh install.sh` with the fake tools first on PATH.
pub(crate) fn install(
    script: &Path,
    root: Option<&Path>,
    bin: &Path,
    calls: &Path,
    env: &[(&str, &str)],
) -> Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("sh");
    c.arg(script)
        .env("PATH", path)
        .env("FAKE_CALLS", calls)
        .env_remove("ROOT")
        .stdin(Stdio::null());
    if let Some(r) = root {
        c.env("ROOT", r);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// install.sh into a ROOT tree: same tree when run twice (contents and modes), files 0644 and
/// directories 0755, stale principals files removed, the sshd_config Include checked (never
/// edited), and sshd neither checked nor reloaded.
#[test]
fn install_sh_twice_into_a_root_gives_the_same_tree() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let work = tempfile::tempdir().unwrap();
    let out = host_config(
        &hsm,
        work.path(),
        "host",
        &[
            "--user",
            "breakglass",
            "--user",
            "ops",
            "--principal",
            "oncall,breakglass",
        ],
        Some(Path::new("/etc/ssh")),
    );
    let script = out.join("install.sh");
    let (bin, calls) = fake_tools(work.path());

    // No sshd_config in the tree yet: installed, with a note about the Include.
    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = install(&script, Some(&root), &bin, &calls, &[]);
    assert_ok(&o, "install.sh into an empty root");
    assert!(
        stderr(&o).contains("Include /etc/ssh/sshd_config.d/*.conf"),
        "{}",
        stderr(&o)
    );

    // With Debian's sshd_config: twice, the same tree.
    let sshd_config = root.join("etc/ssh/sshd_config");
    std::fs::write(
        &sshd_config,
        "# Debian\nInclude /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/ssh/breakglass-ca-principals/old-user"),
        "x\n",
    )
    .unwrap();
    let o = install(&script, Some(&root), &bin, &calls, &[]);
    assert_ok(&o, "install.sh (1)");
    assert!(stderr(&o).contains("removed"), "{}", stderr(&o));
    let first = tree(&root);
    let o = install(&script, Some(&root), &bin, &calls, &[]);
    assert_ok(&o, "install.sh (2)");
    let second = tree(&root);
    assert_eq!(first, second, "install.sh is not idempotent");
    assert!(
        !calls.exists(),
        "sshd/systemctl ran with ROOT set: {}",
        read(&calls)
    );

    // Exactly the generated files, with their modes.
    let ssh = root.join("etc/ssh");
    for (rel, src) in [
        ("breakglass-ca.pub", "breakglass-ca.pub"),
        (
            "sshd_config.d/breakglass-ca.conf",
            "sshd_config.d/breakglass-ca.conf",
        ),
        (
            "breakglass-ca-principals/breakglass",
            "breakglass-ca-principals/breakglass",
        ),
        (
            "breakglass-ca-principals/ops",
            "breakglass-ca-principals/ops",
        ),
    ] {
        assert_eq!(read(&ssh.join(rel)), read(&out.join(src)), "{rel}");
        assert_eq!(mode(&ssh.join(rel)), 0o644, "{rel}");
    }
    assert_eq!(
        read(&ssh.join("breakglass-ca-principals/ops")),
        "oncall\nbreakglass\n"
    );
    for d in [
        "etc",
        "etc/ssh",
        "etc/ssh/sshd_config.d",
        "etc/ssh/breakglass-ca-principals",
    ] {
        assert_eq!(mode(&root.join(d)), 0o755, "{d}");
    }
    let names: Vec<&String> = second.keys().collect();
    assert_eq!(
        names,
        [
            "etc/",
            "etc/ssh/",
            "etc/ssh/breakglass-ca-principals/",
            "etc/ssh/breakglass-ca-principals/breakglass",
            "etc/ssh/breakglass-ca-principals/ops",
            "etc/ssh/breakglass-ca.krl",
            "etc/ssh/breakglass-ca.pub",
            "etc/ssh/sshd_config",
            "etc/ssh/sshd_config.d/",
            "etc/ssh/sshd_config.d/breakglass-ca.conf",
        ],
        "unexpected files (a temporary file left behind?)"
    );

    // ROOT=/ means the live host, and is not tested here; an sshd_config without the Include
    // (or with it only inside a Match block) is an error, and is never edited.
    for text in [
        "Port 22\n",
        "Match User nobody\n    Include /etc/ssh/sshd_config.d/*.conf\n",
    ] {
        std::fs::write(&sshd_config, text).unwrap();
        let o = install(&script, Some(&root), &bin, &calls, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("does not Include sshd_config.d"), "{err}");
        assert!(
            err.contains("    Include /etc/ssh/sshd_config.d/*.conf"),
            "{err}"
        );
        assert_eq!(read(&sshd_config), text, "install.sh edited sshd_config");
    }
}

/// install.sh on a live host (ROOT empty; --ssh-dir in a temporary directory, fake sshd and
/// systemctl): it reloads only after `sshd -t` passes and `sshd -T` shows the CA bundle in
/// use, and a snippet that sshd -t rejects does not stay on disk.
#[test]
fn install_sh_on_a_live_host_checks_before_reloading() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let work = tempfile::tempdir().unwrap();
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
        &["--user", "breakglass"],
        Some(&ssh_dir),
    );
    let script = out.join("install.sh");
    let (bin, calls) = fake_tools(work.path());
    let snippet = ssh_dir.join("sshd_config.d/breakglass-ca.conf");
    let trusted = format!("{}/breakglass-ca.pub", ssh_dir.display());
    let calls_text = || std::fs::read_to_string(&calls).unwrap_or_default();

    // sshd -t fails: no reload, and the new snippet is removed again.
    let o = install(&script, None, &bin, &calls, &[("FAKE_SSHD_T_RC", "1")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("NOT reloaded"), "{}", stderr(&o));
    assert!(
        !snippet.exists(),
        "a snippet sshd -t rejects stayed on disk"
    );
    assert!(calls_text().contains(&format!("sshd -t -f {}/sshd_config", ssh_dir.display())));
    assert!(!calls_text().contains("systemctl"), "{}", calls_text());

    // sshd -t passes but the bundle is not in effect: no reload.
    std::fs::remove_file(&calls).unwrap();
    let o = install(&script, None, &bin, &calls, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not use"), "{}", stderr(&o));
    assert!(calls_text().contains("sshd -T"), "{}", calls_text());
    assert!(!calls_text().contains("systemctl"), "{}", calls_text());

    // The bundle is in effect but not the KRL (another RevokedKeys read first): no reload.
    std::fs::remove_file(&calls).unwrap();
    let o = install(&script, None, &bin, &calls, &[("FAKE_TRUSTED", &trusted)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not use") && stderr(&o).contains("breakglass-ca.krl for"),
        "{}",
        stderr(&o)
    );
    assert!(!calls_text().contains("systemctl"), "{}", calls_text());

    // Both pass: reloaded.
    std::fs::remove_file(&calls).unwrap();
    let revoked = format!("{}/breakglass-ca.krl", ssh_dir.display());
    let o = install(
        &script,
        None,
        &bin,
        &calls,
        &[("FAKE_TRUSTED", &trusted), ("FAKE_REVOKED", &revoked)],
    );
    assert_ok(&o, "install.sh on a live host");
    assert!(
        calls_text().contains("sshd -T -f")
            && calls_text().contains("user=breakglass,host=localhost,addr=127.0.0.1"),
        "{}",
        calls_text()
    );
    assert!(
        calls_text().ends_with("systemctl reload ssh\n"),
        "{}",
        calls_text()
    );
    assert_eq!(
        read(&snippet),
        read(&out.join("sshd_config.d/breakglass-ca.conf"))
    );

    // sshd -t fails on a re-install: the snippet that was there is put back.
    let local = format!("{}# the previous version\n", read(&snippet));
    std::fs::write(&snippet, &local).unwrap();
    std::fs::remove_file(&calls).unwrap();
    let o = install(&script, None, &bin, &calls, &[("FAKE_SSHD_T_RC", "1")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        read(&snippet),
        local,
        "the previous snippet was not restored"
    );
    assert!(!calls_text().contains("systemctl"), "{}", calls_text());
    let leftovers: Vec<String> = std::fs::read_dir(ssh_dir.join("sshd_config.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["breakglass-ca.conf"]);
}

/// add-backup-ca refuses what cannot be a backup CA, with exit code 1 and a reason, and
/// leaves config.toml as it was.
#[test]
fn add_backup_ca_refusals() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let dir = hsm.dir.path();
    let add = |file: &Path| {
        let mut c = hsm.cmd();
        c.env_remove("BREAKGLASS_CA_PIN_FILE")
            .arg("add-backup-ca")
            .arg(file);
        run(&mut c)
    };

    // A good one first (any CA-capable key stands in for a backup token's key).
    let backup = keygen(dir, "backup", &["-t", "ed25519"], "vault-b");
    assert_ok(&add(&backup), "add-backup-ca");
    let config_before = read(&hsm.state.join("config.toml"));

    assert_fails(&add(&backup), 1, "is already listed");
    assert_fails(&add(&backup.with_extension("")), 1, "holds a PRIVATE key");
    assert_fails(&add(&hsm.ca_pub_file()), 1, "is this CA's own key");
    let requester = keygen(dir, "req", &["-t", "ed25519"], "r@laptop");
    assert_ok(&hsm.mint(&requester, &["-n", "breakglass"]), "mint");
    assert_fails(
        &add(&cert_path(&requester)),
        1,
        "holds a certificate, not a CA public key",
    );
    let p521 = keygen(dir, "p521", &["-t", "ecdsa", "-b", "521"], "p521");
    assert_fails(&add(&p521), 1, "cannot be a breakglass CA key");
    let bad = dir.join("bad.pub");
    std::fs::write(&bad, "ssh-ed25519 AAAA-not-base64 x\n").unwrap();
    assert_fails(&add(&bad), 1, "is not an OpenSSH public key");
    std::fs::write(&bad, "# only a comment\n").unwrap();
    assert_fails(&add(&bad), 1, "holds no public key line");
    assert_fails(&add(&dir.join("missing.pub")), 1, "cannot read");
    assert_eq!(read(&hsm.state.join("config.toml")), config_before);

    // No config.toml: say where it was looked for and what to do.
    let mut c = hsm.cmd();
    c.env("BREAKGLASS_CA_STATE_DIR", dir.join("elsewhere"))
        .arg("add-backup-ca")
        .arg(&backup);
    let o = run(&mut c);
    assert_fails(&o, 1, "no config.toml in");
    assert!(stderr(&o).contains("hint: "), "{}", stderr(&o));
}

/// host-config refuses bad names and an existing --out, and writes nothing then.
#[test]
fn host_config_refusals() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let hc = |args: &[&str]| {
        let mut c = hsm.cmd();
        c.env_remove("BREAKGLASS_CA_PIN_FILE")
            .arg("host-config")
            .args(args)
            .arg("--out")
            .arg(&out);
        run(&mut c)
    };
    assert_fails(&hc(&["--user", "Root"]), 2, "is not a valid account name");
    assert_fails(&hc(&["--user", "a b"]), 2, "is not a valid account name");
    assert_fails(
        &hc(&["--user", &"a".repeat(33)]),
        2,
        "is not a valid account name",
    );
    assert_fails(&hc(&["--user", "bg", "--principal", "a*"]), 1, "wildcard");
    assert_fails(
        &hc(&["--user", "bg", "--ssh-dir", "etc/ssh"]),
        2,
        "absolute path",
    );
    assert_fails(
        &hc(&["--user", "bg", "--ssh-dir", "/etc/%u"]),
        2,
        "absolute path",
    );
    assert!(!out.exists());
    std::fs::create_dir(&out).unwrap();
    assert_fails(&hc(&["--user", "bg"]), 2, "already exists");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

/// `yaml.safe_load` (what cloud-init uses) of FILE by PyYAML, as JSON. PyYAML is required
/// like any other tool: without it the test is skipped, and in CI (`CI=true`) it fails. The
/// JSON is written as UTF-8, so a string PyYAML read as lone surrogates fails here.
fn pyyaml(file: &Path) -> Option<serde_json::Value> {
    if !require(&["python3"]) {
        return None;
    }
    let script = "import json, sys\n\
                  try:\n    import yaml\nexcept ImportError:\n    sys.exit(3)\n\
                  with open(sys.argv[1], 'rb') as f:\n    doc = yaml.safe_load(f.read().decode('utf-8'))\n\
                  sys.stdout.buffer.write(json.dumps(doc, ensure_ascii=False).encode('utf-8'))";
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .output()
        .unwrap();
    match o.status.code() {
        Some(0) => Some(serde_json::from_slice(&o.stdout).unwrap()),
        Some(3) => {
            let msg = "PyYAML (Debian python3-yaml) is not installed (install with: bash scripts/test.sh)";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true and {msg}: hsm-tests must run in CI");
            }
            eprintln!("SKIPPED: {msg}");
            None
        }
        _ => panic!(
            "PyYAML rejects {}: {}\n{}",
            file.display(),
            stderr(&o),
            read(file)
        ),
    }
}

/// One `write_files` entry: path, owner, permissions, content (decoded for `encoding: b64`).
pub(crate) type WriteFile = (String, String, String, Vec<u8>);

/// cloud-init.yaml as PyYAML reads it: the `write_files` entries (each with exactly the keys
/// path, owner, permissions and content, and `encoding: b64` for the KRL only) and the
/// `runcmd` list, and nothing else at the top.
pub(crate) fn cloud_init_entries(file: &Path) -> Option<(Vec<WriteFile>, serde_json::Value)> {
    let doc = pyyaml(file)?;
    let top = doc.as_object().expect("cloud-init.yaml is not a mapping");
    let mut keys: Vec<&String> = top.keys().collect();
    keys.sort();
    assert_eq!(keys, ["runcmd", "write_files"], "{doc}");
    let files = doc["write_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let e = e.as_object().unwrap();
            let mut keys: Vec<&String> = e.keys().collect();
            keys.sort();
            let field = |k: &str| e[k].as_str().unwrap().to_string();
            let content = if field("path").ends_with("/breakglass-ca.krl") {
                assert_eq!(
                    keys,
                    ["content", "encoding", "owner", "path", "permissions"],
                    "{e:?}"
                );
                assert_eq!(field("encoding"), "b64");
                use base64ct::Encoding;
                base64ct::Base64::decode_vec(&field("content")).unwrap()
            } else {
                assert_eq!(keys, ["content", "owner", "path", "permissions"], "{e:?}");
                field("content").into_bytes()
            };
            (field("path"), field("owner"), field("permissions"), content)
        })
        .collect();
    Some((files, doc["runcmd"].clone()))
}

/// The host files of an `--out` directory as cloud-init.yaml must hold them, under SSH_DIR, in
/// the order they are installed (the KRL before the snippet that names it).
pub(crate) fn expected_write_files(out: &Path, ssh_dir: &str, users: &[&str]) -> Vec<WriteFile> {
    let mut rels = vec!["breakglass-ca.pub".to_string()];
    rels.extend(
        users
            .iter()
            .map(|u| format!("breakglass-ca-principals/{u}")),
    );
    rels.push("breakglass-ca.krl".into());
    rels.push("sshd_config.d/breakglass-ca.conf".into());
    rels.iter()
        .map(|rel| {
            (
                format!("{ssh_dir}/{rel}"),
                "root:root".to_string(),
                "0644".to_string(),
                std::fs::read(out.join(rel)).unwrap(),
            )
        })
        .collect()
}

/// cloud-init.yaml is a #cloud-config document that PyYAML reads as exactly the host files
/// (paths, owner, modes and contents) and the runcmd that checks and reloads sshd.
#[test]
fn cloud_init_yaml_parses_and_holds_every_file() {
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
    let work = tempfile::tempdir().unwrap();
    let out = host_config(
        &hsm,
        work.path(),
        "host",
        &[
            "--user",
            "breakglass",
            "--user",
            "root",
            "--principal",
            "breakglass",
        ],
        Some(Path::new("/etc/ssh")),
    );
    let file = out.join("cloud-init.yaml");
    let text = read(&file);
    assert!(text.starts_with("#cloud-config\n"), "{text}");
    let expected = expected_write_files(&out, "/etc/ssh", &["breakglass", "root"]);
    assert_eq!(
        String::from_utf8_lossy(&expected[0].3).lines().count(),
        2,
        "primary and backup"
    );
    let Some((files, runcmd)) = cloud_init_entries(&file) else {
        return;
    };
    assert_eq!(files, expected);
    assert_eq!(
        runcmd,
        serde_json::json!([[
            "sh",
            "-c",
            "sshd -t -f /etc/ssh/sshd_config && { systemctl reload ssh || systemctl reload sshd || service ssh reload; }"
        ]])
    );
}

/// A string as a TOML basic string, every character outside printable ASCII escaped (so the
/// file holds `\n`, `\r`, `\u2029` ... inside the quotes).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Whether `text` could act on a terminal: a control character other than a line feed, or
/// what `text::is_unsafe_char` names.
fn has_raw_unsafe(text: &str) -> bool {
    text.chars()
        .any(|c| c != '\n' && breakglass_ca::text::is_unsafe_char(c))
}

/// Backup CA lines whose comments try to break out of the generated files (a CR, U+0085,
/// U+2028, U+2029 or a `\n` that would end the cloud-init scalar and add a `write_files`
/// entry, a line equal to install.sh's heredoc delimiter, escape sequences, a `#` trick, an
/// over-long comment), added with add-backup-ca FILE and written into config.toml directly:
/// every generated file holds the keys with `breakglass-ca-backup` for those comments (a plain
/// one is kept), printable ASCII only; PyYAML reads cloud-init.yaml as exactly the host files;
/// install.sh passes `sh -n` and installs exactly those files; sshd -t accepts the snippet and
/// sshd accepts a certificate from the backup token whose line had the CR; `pubkey --bundle`
/// (text and JSON) and the key sheet are clean as well; the custodian is told each time.
#[test]
fn hostile_backup_ca_comments_never_reach_a_generated_file() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let primary_line = hsm.init("ecdsa-p256");
    let backup = Hsm::new("backup-ca");
    let backup_line = backup.init("ed25519");
    let work = tempfile::tempdir().unwrap();
    let keys = work.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let payload = "write_files:\n- path: /etc/cron.d/pwn\n  content: '* * * * * root touch /pwned'";
    let other_key = |name: &str| {
        let pubkey = keygen(&keys, name, &["-t", "ed25519"], "x");
        key_part(&read(&pubkey))
    };

    // Through add-backup-ca FILE: (key, comment in the file, comment hosts get).
    let via_file: Vec<(String, String, &str)> = vec![
        (
            key_part(&backup_line),
            format!("vault{}", payload.replace('\n', "\r")),
            "breakglass-ca-backup",
        ),
        (
            other_key("nel"),
            format!("x{}", payload.replace('\n', "\u{85}")),
            "breakglass-ca-backup",
        ),
        (
            other_key("lsep"),
            format!("x\u{2028}{}", payload.replace('\n', "\u{2028}")),
            "breakglass-ca-backup",
        ),
        (
            other_key("esc"),
            "x\u{1b}[1A\u{1b}[2K\rFingerprint: SHA256:forged".into(),
            "breakglass-ca-backup",
        ),
        (
            other_key("hash"),
            "vault # - path: /etc/cron.d/pwn".into(),
            "breakglass-ca-backup",
        ),
        (
            other_key("plain"),
            "vault-b, safe 2".into(),
            "vault-b, safe 2",
        ),
    ];
    for (i, (key, comment, _)) in via_file.iter().enumerate() {
        let file = keys.join(format!("backup-{i}.pub"));
        std::fs::write(&file, format!("{key} {comment}\n")).unwrap();
        let o = run(hsm
            .cmd()
            .env_remove("BREAKGLASS_CA_PIN_FILE")
            .arg("add-backup-ca")
            .arg(&file));
        assert_ok(&o, &format!("add-backup-ca {comment:?}"));
        let err = stderr(&o);
        assert!(!has_raw_unsafe(&err), "raw control text on stderr: {err:?}");
        assert_eq!(
            err.contains("is not plain text"),
            i != via_file.len() - 1,
            "{err}"
        );
        if i == 2 {
            // The key sheet with the first three (all it holds of these): a valid SVG,
            // printable ASCII.
            let sheet = work.path().join("sheet.svg");
            let o = run(hsm
                .cmd()
                .env_remove("BREAKGLASS_CA_PIN_FILE")
                .args(["pubkey", "--format", "sheet", "-o"])
                .arg(&sheet));
            assert_ok(&o, "pubkey --format sheet");
            let svg = read(&sheet);
            assert!(
                svg.bytes().all(|b| b == b'\n' || (0x20..0x7f).contains(&b)),
                "{svg:?}"
            );
            assert!(!svg.contains("pwn") && !svg.contains("forged"));
            // Each line once (its text elements together: the sheet wraps lines in columns).
            let text: String = svg
                .split("<text")
                .skip(1)
                .map(|t| &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()])
                .collect();
            assert_eq!(text.matches("breakglass-ca-backup").count(), 3);
            resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
        }
    }
    let config_path = hsm.state.join("config.toml");
    let config = read(&config_path);
    assert!(
        !config.contains("pwn") && !config.contains("forged"),
        "{config}"
    );
    assert!(!has_raw_unsafe(&config), "{config:?}");

    // Written into config.toml directly (edited, or restored from a USB stick).
    let eof = "x\nBREAKGLASS_CA_EOF\ntouch /pwned\ncat <<'BREAKGLASS_CA_EOF'";
    let via_config: Vec<(String, String, &str)> = vec![
        (
            other_key("lf"),
            format!("x\n{payload}"),
            "breakglass-ca-backup",
        ),
        (
            other_key("psep"),
            format!("x\u{2029}{}", payload.replace('\n', "\u{2029}")),
            "breakglass-ca-backup",
        ),
        (other_key("eof"), eof.into(), "breakglass-ca-backup"),
        (other_key("long"), "pwn".repeat(30), "breakglass-ca-backup"),
    ];
    let mut table: toml::Table = toml::from_str(&config).unwrap();
    let stored: Vec<String> = table
        .remove("backup_ca_pubkeys")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored.len(), via_file.len());
    let mut entries: Vec<String> = stored.iter().map(|l| toml_string(l)).collect();
    entries.extend(
        via_config
            .iter()
            .map(|(key, comment, _)| toml_string(&format!("{key} {comment}"))),
    );
    let edited = format!(
        "backup_ca_pubkeys = [\n    {},\n]\n{}",
        entries.join(",\n    "),
        toml::to_string(&table).unwrap()
    );
    assert!(
        edited.contains("\\nwrite_files:\\n- path: /etc/cron.d/pwn"),
        "{edited}"
    );
    assert!(edited.contains("\\u2029") && edited.contains("\\nBREAKGLASS_CA_EOF\\n"));
    std::fs::write(&config_path, &edited).unwrap();

    let expected_bundle: String = std::iter::once(primary_line.clone())
        .chain(
            via_file
                .iter()
                .chain(&via_config)
                .map(|(key, _, shown)| format!("{key} {shown}")),
        )
        .map(|l| format!("{l}\n"))
        .collect();
    let n = via_file.len() + via_config.len() + 1;

    let me = current_user();
    let gen = |name: &str, ssh_dir: Option<&Path>| {
        let out = work.path().join(name);
        let o = run(hsm
            .cmd()
            .env_remove("BREAKGLASS_CA_PIN_FILE")
            .args(["host-config", "--user", &me, "--user", "breakglass"])
            .arg("--no-alert-syslog")
            .arg("--ssh-dir")
            .arg(ssh_dir.unwrap_or(&out))
            .arg("--out")
            .arg(&out));
        assert_ok(&o, "host-config");
        let err = stderr(&o);
        assert!(!has_raw_unsafe(&err), "raw control text on stderr: {err:?}");
        for k in via_file.len() + 1..n {
            assert!(
                err.contains(&format!("note: backup_ca_pubkeys entry {k} in "))
                    && err.contains("is not plain text"),
                "entry {k} not reported:\n{err}"
            );
        }
        assert!(
            !err.contains(&format!("entry {} in", via_file.len())),
            "{err}"
        );
        out
    };
    let image = gen("image", Some(Path::new("/etc/ssh")));
    let live = gen("live", None);

    // Every generated file but the binary KRL: printable ASCII, nothing of the payloads.
    for out in [&image, &live] {
        let files = tree(out);
        assert_eq!(files.len(), 9, "{:?}", files.keys().collect::<Vec<_>>());
        for (rel, (_, bytes)) in files.iter().filter(|(rel, _)| *rel != "breakglass-ca.krl") {
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(
                text.bytes()
                    .all(|b| b == b'\n' || (0x20..0x7f).contains(&b)),
                "{rel}: not printable ASCII: {text:?}"
            );
            for needle in ["pwn", "forged", "touch /pwned", "vault #"] {
                assert!(!text.contains(needle), "{rel} holds {needle:?}:\n{text}");
            }
        }
        assert_eq!(read(&out.join("breakglass-ca.pub")), expected_bundle);
    }

    // OpenSSH reads every bundle line, with the fingerprints the snippet lists.
    let listed = Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(live.join("breakglass-ca.pub"))
        .output()
        .unwrap();
    assert_ok(&listed, "ssh-keygen -l -f bundle");
    let listed = stdout(&listed);
    assert_eq!(listed.lines().count(), n, "{listed}");
    let snippet = read(&live.join("sshd_config.d/breakglass-ca.conf"));
    let ca_comments: Vec<&str> = snippet
        .lines()
        .filter(|l| l.starts_with("#  SHA256:"))
        .collect();
    assert_eq!(ca_comments.len(), n, "{snippet}");
    for (line, comment) in listed.lines().zip(&ca_comments) {
        let fp = line.split_whitespace().nth(1).unwrap();
        assert!(
            comment.starts_with(&format!("#  {fp} (")),
            "{comment} vs {line}"
        );
    }
    for line in snippet.lines() {
        assert!(
            line.is_empty()
                || line.starts_with('#')
                || line.starts_with("Match User ")
                || line.starts_with("    "),
            "{line}"
        );
    }

    // cloud-init.yaml: exactly the host files.
    let ci = image.join("cloud-init.yaml");
    assert!(read(&ci).starts_with("#cloud-config\n"));
    let users = [me.as_str(), "breakglass"];
    if let Some((files, runcmd)) = cloud_init_entries(&ci) {
        assert_eq!(files, expected_write_files(&image, "/etc/ssh", &users));
        assert_eq!(runcmd.as_array().unwrap().len(), 1, "{runcmd}");
        assert!(runcmd[0][2]
            .as_str()
            .unwrap()
            .starts_with("sshd -t -f /etc/ssh/sshd_config && "));
    }

    // install.sh: one quoted heredoc per host file, sh -n, and ROOT=DIR installs exactly them.
    let script = image.join("install.sh");
    let text = read(&script);
    // Four host files and the KRL (in base64, decoded by `base64 -d <<'...' || refuse ...`).
    assert_eq!(text.matches("<<'BREAKGLASS_CA_EOF'\n").count(), 4, "{text}");
    assert_eq!(text.matches("<<'BREAKGLASS_CA_EOF'").count(), 5, "{text}");
    assert_eq!(
        text.lines().filter(|l| *l == "BREAKGLASS_CA_EOF").count(),
        5
    );
    let o = Command::new("sh").arg("-n").arg(&script).output().unwrap();
    assert_ok(&o, "sh -n install.sh");
    let (bin, calls) = fake_tools(work.path());
    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = install(&script, Some(&root), &bin, &calls, &[]);
    assert_ok(&o, "ROOT=DIR sh install.sh");
    assert!(!root.join("pwned").exists() && !calls.exists());
    let mut want: BTreeMap<String, (u32, Vec<u8>)> = BTreeMap::new();
    for d in [
        "etc/",
        "etc/ssh/",
        "etc/ssh/sshd_config.d/",
        "etc/ssh/breakglass-ca-principals/",
    ] {
        want.insert(d.into(), (0o755, Vec::new()));
    }
    for (path, _, _, content) in expected_write_files(&image, "/etc/ssh", &users) {
        want.insert(path[1..].to_string(), (0o644, content));
    }
    assert_eq!(tree(&root), want);

    // sshd -t accepts the snippet, and a certificate from the backup token whose comment held
    // the CR logs in.
    let sshd = start_sshd(&live);
    let requester = keygen(work.path(), "req", &["-t", "ed25519"], "bob@laptop");
    assert_ok(&backup.mint(&requester, &["-n", &me]), "mint by the backup");
    assert!(
        sshd.login(&requester.with_extension(""), &cert_path(&requester)),
        "sshd refused the backup CA's certificate:\n{}",
        sshd.log_text()
    );
    drop(sshd);

    // pubkey --bundle (text and JSON) and the key sheet.
    let pubkey = |args: &[&str]| {
        let o = run(hsm
            .cmd()
            .env_remove("BREAKGLASS_CA_PIN_FILE")
            .arg("pubkey")
            .args(args));
        assert_ok(&o, &format!("pubkey {args:?}"));
        assert!(!has_raw_unsafe(&stderr(&o)), "{:?}", stderr(&o));
        o
    };
    assert_eq!(stdout(&pubkey(&["--bundle"])), expected_bundle);
    let json = stdout(&pubkey(&["--bundle", "--format", "json"]));
    assert!(json.is_ascii() && !json.contains("pwn"), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let lines: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}\n", e["public_key"].as_str().unwrap()))
        .collect();
    assert_eq!(lines.concat(), expected_bundle);
}
