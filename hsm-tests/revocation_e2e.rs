//! Revocation end to end, through the command line only: certificates minted by the binary on
//! SoftHSM2 tokens, revoked with `breakglass-ca revoke` in every form, the KRL written by
//! `breakglass-ca krl -o` and read by OpenSSH (`ssh-keygen -Q`, `ssh-keygen -Q -l`, a KRL of
//! `ssh-keygen -k` from the same spec lines), by `krl --check`, and by a real sshd on
//! 127.0.0.1 configured from `host-config`'s output and installed with its `install.sh`; the
//! lost-token switch to the backup CA; `install.sh --krl` ordering; `log verify` between
//! revocations and mints.
//!
//! No KRL here is built by the library. The host trees are under `target/`
//! (`CARGO_TARGET_TMPDIR`): `host-config --ssh-dir` names such a tree, `install.sh` runs as on
//! a live host (ROOT unset, the real `sshd -t` and `sshd -T`; only `systemctl` and `service`
//! are fakes that record their calls), and the sshd started on the tree's `sshd_config`
//! `Include`s the installed snippet.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use crate::host_tree::{installed_image, require_host_tools, sh, LiveHost};
use crate::hosts::{fingerprint, host_config, key_part, read, tree};
use crate::sshd::{current_user, Sshd};

/// The bytes of the generated date in a KRL header (after magic, format and version).
const DATE: std::ops::Range<usize> = 20..28;

fn tools() -> bool {
    require_host_tools(&["sha256sum"])
}

/// The KRL version `revoke` printed (`KRL version: N (...)`).
fn revoke_version(printed: &str) -> u64 {
    printed
        .lines()
        .find_map(|l| l.strip_prefix("KRL version: "))
        .unwrap_or_else(|| panic!("no KRL version in:\n{printed}"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// `breakglass-ca krl -o FILE` (no PIN source at all), which must succeed; returns stderr.
fn krl_o(hsm: &Hsm, file: &Path) -> String {
    let out = run(hsm
        .cmd()
        .env_remove("BREAKGLASS_CA_PIN_FILE")
        .arg("krl")
        .arg("-o")
        .arg(file));
    assert_ok(&out, "krl -o");
    stderr(&out)
}

/// `ssh-keygen -Q -f KRL CERT`: (revoked?, the line it printed).
fn keygen_q(krl: &Path, cert: &Path) -> (bool, String) {
    let o = run(Command::new("ssh-keygen")
        .arg("-Q")
        .arg("-f")
        .arg(krl)
        .arg(cert)
        .stdin(Stdio::null()));
    let out = stdout(&o).trim_end().to_string();
    let revoked = match o.status.code() {
        Some(0) => {
            assert!(out.ends_with(": ok"), "{out}");
            false
        }
        Some(1) => {
            assert!(out.ends_with(": REVOKED"), "{out}");
            true
        }
        _ => panic!(
            "ssh-keygen -Q -f {} {}: {out}{}",
            krl.display(),
            cert.display(),
            stderr(&o)
        ),
    };
    assert_eq!(out.lines().count(), 1, "{out}");
    (revoked, out)
}

/// `ssh-keygen -Q -l -f KRL`.
fn keygen_list(krl: &Path) -> String {
    let o = run(Command::new("ssh-keygen")
        .args(["-Q", "-l", "-f"])
        .arg(krl)
        .stdin(Stdio::null()));
    assert_ok(&o, &format!("ssh-keygen -Q -l -f {}", krl.display()));
    stdout(&o)
}

/// The `# KRL version N` of an `ssh-keygen -Q -l` listing.
fn listed_version(listing: &str) -> u64 {
    listing
        .lines()
        .find_map(|l| l.strip_prefix("# KRL version "))
        .unwrap_or_else(|| panic!("no version in:\n{listing}"))
        .parse()
        .unwrap()
}

/// A listing without its `# Generated at` line (the one line two KRLs of the same content
/// made at different moments differ in).
fn without_date(listing: &str) -> String {
    listing
        .lines()
        .filter(|l| !l.starts_with("# Generated at "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `breakglass-ca krl --check CERT [-f KRL]` in `hsm`'s state directory: true for REVOKED
/// (exit 1), false for ok (exit 0).
fn our_check(hsm: &Hsm, cert: &Path, krl: Option<&Path>) -> bool {
    let mut c = hsm.cmd();
    c.env_remove("BREAKGLASS_CA_PIN_FILE")
        .args(["krl", "--check"])
        .arg(cert);
    if let Some(k) = krl {
        c.arg("-f").arg(k);
    }
    let o = run(&mut c);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(!err.contains("panicked"), "{err}");
    match o.status.code() {
        Some(0) => {
            assert_eq!(out, format!("{}: ok\n", cert.display()), "{err}");
            false
        }
        Some(1) => {
            assert!(
                out.starts_with(&format!("{}: REVOKED by ", cert.display())),
                "{out}{err}"
            );
            assert!(err.contains("error: the certificate is revoked: "), "{err}");
            true
        }
        _ => panic!("krl --check {}: {out}{err}", cert.display()),
    }
}

/// The SHA256 fingerprint `ssh-keygen -l` gives for a key or certificate file.
fn keygen_fp(path: &Path) -> String {
    let o = run(Command::new("ssh-keygen").arg("-l").arg("-f").arg(path));
    assert_ok(&o, "ssh-keygen -l");
    stdout(&o).split_whitespace().nth(1).unwrap().to_string()
}

/// The ledger's revocation records (the lines starting `{"kind":"revocation"`), parsed.
fn revocation_records(hsm: &Hsm) -> Vec<serde_json::Value> {
    read(&hsm.state.join("ledger.jsonl"))
        .lines()
        .filter(|l| l.starts_with("{\"kind\":\"revocation\","))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `2026-12-01T10:33:16Z` as the KRL version 20261201103316.
fn version_from_time(t: &str) -> u64 {
    t.trim_end_matches('Z')
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// One revocation step: `revoke` ARGS, the spec lines it adds for `ssh-keygen -k`, the
/// certificates it revokes (names) and the lines it adds to `ssh-keygen -Q -l`'s listing.
struct Step<'a> {
    name: &'static str,
    args: Vec<&'a str>,
    spec: String,
    revokes: Vec<&'static str>,
    listed: Vec<String>,
}

/// One certificate of the test: its name, certificate file and whether the primary CA signed
/// it.
struct Cert {
    name: &'static str,
    cert: PathBuf,
    primary: bool,
}

/// ssh-keygen -Q (on our KRL and on ssh-keygen -k's), `krl --check` with and without `-f`:
/// exactly `revoked` (names) are REVOKED. Returns the lines ssh-keygen -Q printed.
fn check_all(
    hsm: &Hsm,
    step: &str,
    ours: &Path,
    theirs: &Path,
    certs: &[Cert],
    revoked: &BTreeSet<&str>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for c in certs {
        let want = revoked.contains(c.name);
        let (got, line) = keygen_q(ours, &c.cert);
        assert_eq!(got, want, "{step}: ssh-keygen -Q on {}: {line}", c.name);
        lines.push(line);
        let (got, line) = keygen_q(theirs, &c.cert);
        assert_eq!(
            got, want,
            "{step}: ssh-keygen -Q with ssh-keygen -k's KRL on {}: {line}",
            c.name
        );
        assert_eq!(
            our_check(hsm, &c.cert, Some(ours)),
            want,
            "{step}: krl --check -f on {}",
            c.name
        );
        assert_eq!(
            our_check(hsm, &c.cert, None),
            want,
            "{step}: krl --check (the ledger's KRL) on {}",
            c.name
        );
    }
    lines
}

/// Ten certificates from the primary (ed25519, ECDSA and RSA requester keys, a key ID given
/// with `-I` to two of them) and two from a backup CA; revoked step by step through
/// `revoke --serial N`, `--serial N-M`, `--key-id`, `--requester-key` and `--ca`, with
/// `krl -o` after each step. At every step: `ssh-keygen -Q` says REVOKED for exactly the
/// certificates revoked so far and ok for the others; `ssh-keygen -Q -l` lists the version
/// (higher at every step, the newest revocation's time, as `revoke` and `status` say) and the
/// sections; `ssh-keygen -k -s ca.pub -z VERSION` from the equivalent spec lines writes the
/// same bytes (the date aside) and revokes the same set; `krl --check`, with and without `-f`,
/// agrees with `ssh-keygen -Q` on every certificate.
#[test]
fn ssh_keygen_reads_what_each_revoke_form_revokes() {
    if !tools() {
        return;
    }
    let primary = Hsm::new("primary-ca");
    primary.init("ecdsa-p256");
    let backup = Hsm::new("backup-ca");
    backup.init("ed25519");
    let ca_pub = primary.ca_pub_file();
    assert_ok(
        &run(primary.cmd().arg("add-backup-ca").arg(backup.ca_pub_file())),
        "add-backup-ca",
    );
    let ca_fp = fingerprint(&primary);
    let comment = format!("breakglass-ca CA {ca_fp}");
    let work = target_dir();
    let d = work.path();
    let keys: Vec<(&str, PathBuf)> = [
        ("alice", &["-t", "ed25519"][..]),
        ("bob", &["-t", "ecdsa"][..]),
        ("carol", &["-t", "rsa", "-b", "3072"][..]),
        ("dave", &["-t", "ed25519"][..]),
        ("erin", &["-t", "ecdsa", "-b", "384"][..]),
    ]
    .iter()
    .map(|(n, a)| (*n, keygen(d, n, a, &format!("{n}@laptop"))))
    .collect();
    let key = |n: &str| keys.iter().find(|(k, _)| *k == n).unwrap().1.clone();
    // name, signed by, requester, -I
    let plan: [(&'static str, &Hsm, &str, Option<&str>); 12] = [
        ("p1", &primary, "alice", None),
        ("p2", &primary, "alice", None),
        ("p3", &primary, "bob", Some("shared-ops")),
        ("p4", &primary, "carol", Some("shared-ops")),
        ("p5", &primary, "carol", None),
        ("p6", &primary, "dave", None),
        ("p7", &primary, "erin", None),
        ("p8", &primary, "bob", None),
        ("p9", &primary, "dave", None),
        ("p10", &primary, "erin", None),
        ("b1", &backup, "bob", None),
        ("b2", &backup, "erin", None),
    ];
    let mut certs = Vec::new();
    for (name, by, who, id) in plan {
        let cert = d.join(format!("{name}-cert.pub"));
        let mut extra = vec!["-n", "breakglass", "-o", cert.to_str().unwrap()];
        if let Some(id) = id {
            extra.extend(["-I", id]);
        }
        assert_ok(&by.mint(&key(who), &extra), &format!("mint {name}"));
        certs.push(Cert {
            name,
            cert,
            primary: std::ptr::eq(by, &primary),
        });
    }
    for (i, c) in certs.iter().take(10).enumerate() {
        let listed = ssh_keygen_list(&c.cert);
        assert_eq!(listed_serial(&listed), i as u64 + 1, "{}", c.name);
    }
    assert!(ssh_keygen_list(&certs[2].cert).contains("Key ID: \"shared-ops\""));
    let all_primary: Vec<&str> = certs.iter().filter(|c| c.primary).map(|c| c.name).collect();

    // Before any revocation: version 0, nothing revoked.
    let k0 = d.join("step0.krl");
    krl_o(&primary, &k0);
    let listing = keygen_list(&k0);
    assert_eq!(listed_version(&listing), 0, "{listing}");
    for c in &certs {
        assert!(
            !keygen_q(&k0, &c.cert).0,
            "{} revoked by an empty KRL",
            c.name
        );
    }

    let bob_line = key_part(&read(&key("bob")));
    let ca_line = key_part(&read(&ca_pub));
    let bob_pub = key("bob");
    let bob_s = bob_pub.to_str().unwrap();
    let step = |name, args, spec, revokes, listed| Step {
        name,
        args,
        spec,
        revokes,
        listed,
    };
    let steps = vec![
        step(
            "serial",
            vec!["--serial", "2"],
            "serial: 2\n".into(),
            vec!["p2"],
            vec!["serial: 2".into()],
        ),
        step(
            "range",
            vec!["--serial", "5-7"],
            "serial: 5-7\n".into(),
            vec!["p5", "p6", "p7"],
            vec!["serial: 5-7".into()],
        ),
        step(
            "key-id",
            vec!["--key-id", "shared-ops"],
            "id: shared-ops\n".into(),
            vec!["p3", "p4"],
            vec!["id: shared-ops".into()],
        ),
        step(
            "requester-key",
            vec!["--requester-key", bob_s],
            format!("key: {bob_line}\n"),
            // every certificate for bob's key, also the backup CA's
            vec!["p3", "p8", "b1"],
            vec![format!(
                "hash: {} # ecdsa-sha2-nistp256",
                keygen_fp(&key("bob"))
            )],
        ),
        step(
            "whole-ca",
            vec!["--ca"],
            format!("key: {ca_line}\n"),
            all_primary.clone(),
            vec![format!("hash: {ca_fp} # ecdsa-sha2-nistp256")],
        ),
    ];

    let mut spec = String::new();
    let mut revoked: BTreeSet<&str> = BTreeSet::new();
    let mut expected_lines: Vec<String> = Vec::new();
    let mut last_version = 0;
    let mut transcript = Vec::new();
    for (n, st) in steps.into_iter().enumerate() {
        let n = n + 1;
        let Step {
            name: step,
            args,
            spec: spec_lines,
            revokes: adds,
            listed: listed_lines,
        } = st;
        let mut full = args.clone();
        full.extend(["--reason", "INC-77 e2e"]);
        let printed = revoke_ok(&primary, &full);
        let version = revoke_version(&printed);
        assert!(
            version > last_version,
            "{step}: KRL version {version} after {last_version}"
        );
        let records = revocation_records(&primary);
        assert_eq!(records.len(), n, "{step}");
        assert_eq!(
            version,
            version_from_time(records[n - 1]["revoked_at"].as_str().unwrap()),
            "{step}: the version is the newest revocation's time"
        );
        let status = run(primary.cmd().arg("status"));
        assert_ok(&status, "status");
        assert!(
            stdout(&status).contains(&format!("; KRL version {version}\n"))
                && stdout(&status).contains(&format!("revocations:    {n} record(s)")),
            "{step}: {}",
            stdout(&status)
        );

        let ours = d.join(format!("step{n}-{step}.krl"));
        let said = krl_o(&primary, &ours);
        assert!(said.contains(&format!("  version:   {version} ")), "{said}");
        assert_eq!(krl_version_of(&ours), version);

        // ssh-keygen -k from the equivalent spec lines.
        spec.push_str(&spec_lines);
        let spec_file = d.join(format!("step{n}.spec"));
        std::fs::write(&spec_file, &spec).unwrap();
        let theirs = d.join(format!("step{n}-ssh-keygen.krl"));
        let o = run(Command::new("ssh-keygen")
            .args(["-q", "-k", "-f"])
            .arg(&theirs)
            .arg("-s")
            .arg(&ca_pub)
            .args(["-z", &version.to_string(), "-C", &comment])
            .arg(&spec_file)
            .stdin(Stdio::null()));
        assert_ok(&o, "ssh-keygen -k");
        let our_bytes = std::fs::read(&ours).unwrap();
        let mut their_bytes = std::fs::read(&theirs).unwrap();
        their_bytes[DATE].copy_from_slice(&our_bytes[DATE]);
        assert_eq!(
            their_bytes, our_bytes,
            "{step}: krl -o differs from ssh-keygen -k of:\n{spec}"
        );

        // ssh-keygen -Q -l: the version, the comment, the sections.
        let listing = keygen_list(&ours);
        assert_eq!(listed_version(&listing), version, "{listing}");
        assert!(
            listing.contains(&format!("# Comment: {comment}\n")),
            "{listing}"
        );
        assert_eq!(
            without_date(&listing),
            without_date(&keygen_list(&theirs)),
            "{step}"
        );
        expected_lines.extend(listed_lines);
        let ca_section = format!("# CA key ecdsa-sha2-nistp256 {ca_fp}\n");
        assert!(listing.contains(&ca_section), "{step}:\n{listing}");
        for l in &expected_lines {
            assert!(
                listing.lines().any(|x| x == l),
                "{step}: no '{l}' in:\n{listing}"
            );
        }
        let body: Vec<&str> = listing
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(
            body.len(),
            expected_lines.len(),
            "{step}: unexpected lines in:\n{listing}"
        );

        revoked.extend(adds);
        let q = check_all(&primary, step, &ours, &theirs, &certs, &revoked);
        transcript.push(format!("after revoke {} (step {n}):", args.join(" ")));
        transcript.extend(listing.lines().map(|l| format!("  ssh-keygen -Q -l: {l}")));
        transcript.extend(q.iter().map(|l| format!("  ssh-keygen -Q: {l}")));
        last_version = version;
    }
    // The end: every certificate of the primary revoked, the backup's b2 still good.
    let all: BTreeSet<&str> = certs.iter().map(|c| c.name).collect();
    assert_eq!(
        all.difference(&revoked).copied().collect::<Vec<_>>(),
        ["b2"]
    );
    // The ledger still lists every certificate by serial, revocation lines aside.
    let listed = ledger_certs(&primary);
    assert_eq!(
        listed.keys().copied().collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    for (i, c) in certs.iter().take(10).enumerate() {
        assert_eq!(
            key_part(&listed[&(i as u64 + 1)]),
            key_part(&read(&c.cert)),
            "{}",
            c.name
        );
    }
    for l in transcript {
        eprintln!("{l}");
    }
}

/// sshd's log line saying `cert` was refused by this host's KRL: `Authentication key
/// ED25519-CERT SHA256:… revoked by file …/breakglass-ca.krl` (sshd 9.2 names the
/// certificate's own key, also when its signing CA is what the KRL lists).
fn revoked_line(sshd: &Sshd, host: &LiveHost, cert: &Path) -> String {
    let want = format!(
        "Authentication key ED25519-CERT {} revoked by file {}",
        keygen_fp(cert),
        host.krl().display()
    );
    let log = sshd.log_text();
    log.lines()
        .find(|l| *l == want)
        .unwrap_or_else(|| panic!("no '{want}' in the sshd log:\n{log}"))
        .to_string()
}

/// A real sshd (127.0.0.1) on a host set up by `install.sh` from `host-config`'s output, with
/// a primary CA and a backup CA (second token, own state directory). `revoke --serial` +
/// `krl -o` + `install.sh --krl`: the revoked certificate is refused ("revoked by file"), one
/// of the same CA still logs in. The lost-token flow: `revoke --ca` in the primary's state
/// directory; in the backup's, `add-backup-ca` with the primary's ca.pub, `revoke --ca` of
/// it, `krl -o`, `install.sh --krl`: every certificate of the primary is refused (also one
/// minted just before), the backup's logs in, the primary's older KRL is refused; the
/// requester keys the primary's ledger revoked are carried over (`log --revoked-keys` there,
/// `revoke --requester-key FILE` in the backup's): the backup CA's certificate for one is
/// refused ("revoked by file") and `mint` from the backup refuses them; `mint` from
/// the primary's state directory is refused with the state unchanged; `host-config` from the
/// backup's leaves the primary out of `breakglass-ca.pub` and carries the KRL, and its
/// `install.sh` on a fresh host gives the same verdicts; `pubkey --bundle` and the key sheet
/// mark the primary REVOKED and leave it out.
#[test]
fn sshd_honours_revocations_and_the_lost_token_switch() {
    if !tools() {
        return;
    }
    let primary = Hsm::new("primary-ca");
    primary.init("ecdsa-p256");
    let backup = Hsm::new("backup-ca");
    let backup_line = backup.init("ed25519");
    let primary_pub = primary.ca_pub_file();
    let backup_pub = backup.ca_pub_file();
    assert_ok(
        &run(primary.cmd().arg("add-backup-ca").arg(&backup_pub)),
        "add-backup-ca",
    );
    let primary_fp = fingerprint(&primary);
    let me = current_user();
    let work = target_dir();
    let w = work.path();

    // The host, from the primary's host-config.
    let host = LiveHost::new(&me);
    let bundle = host_config(
        &primary,
        w,
        "bundle-primary",
        &["--user", &me],
        Some(&host.ssh_dir),
    );
    host.install_ok(&bundle);
    assert_eq!(krl_version_of(&host.krl()), 0);
    let sshd = host.sshd();

    let keys = w.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let mint = |by: &Hsm, name: &str| {
        let pubkey = keygen(&keys, name, &["-t", "ed25519"], &format!("{name}@laptop"));
        assert_ok(&by.mint(&pubkey, &["-n", &me]), &format!("mint {name}"));
        (pubkey.with_extension(""), cert_path(&pubkey))
    };
    let login = |s: &Sshd, (key, cert): &(PathBuf, PathBuf)| s.login(key, cert);
    let a = mint(&primary, "a");
    let b = mint(&primary, "b");
    let c = mint(&backup, "c");
    assert_eq!(listed_serial(&ssh_keygen_list(&a.1)), 1);
    for k in [&a, &b, &c] {
        assert!(
            login(&sshd, k),
            "refused before any revocation:\n{}",
            sshd.log_text()
        );
    }

    // One certificate, by serial.
    let printed = revoke_ok(
        &primary,
        &[
            "--serial",
            "1",
            "--reason",
            "INC-80 sent to the wrong person",
        ],
    );
    let v1 = revoke_version(&printed);
    let k1 = w.join("serial-1.krl");
    krl_o(&primary, &k1);
    let o = host.install_krl(&bundle, &k1);
    assert_ok(&o, "install.sh --krl (live)");
    let installed_msg = stderr(&o);
    assert!(
        installed_msg.contains(&format!(
            "installed {} (KRL version {v1}, was 0)",
            host.krl().display()
        )) && installed_msg.contains("no reload needed"),
        "{installed_msg}"
    );
    assert!(!login(&sshd, &a), "sshd accepted the revoked serial 1");
    let a_line = revoked_line(&sshd, &host, &a.1);
    assert!(
        login(&sshd, &b),
        "sshd refused serial 2:\n{}",
        sshd.log_text()
    );
    assert!(
        login(&sshd, &c),
        "sshd refused the backup CA:\n{}",
        sshd.log_text()
    );
    let accepted_b = sshd
        .log_text()
        .lines()
        .find(|l| l.starts_with("Accepted certificate ID \"b@laptop#2:"))
        .unwrap_or_else(|| panic!("no Accepted line for b:\n{}", sshd.log_text()))
        .to_string();

    // Two requester keys revoked in the primary's ledger: g, which the backup CA certified
    // too, and h, which only the primary did. The primary's KRL is not published yet.
    let g = mint(&backup, "g");
    let h = mint(&primary, "h");
    for k in [&g, &h] {
        assert!(login(&sshd, k), "{}", sshd.log_text());
    }
    let pub_of = |k: &(PathBuf, PathBuf)| k.0.with_extension("pub");
    revoke_ok(
        &primary,
        &[
            "--requester-key",
            pub_of(&g).to_str().unwrap(),
            "--requester-key",
            pub_of(&h).to_str().unwrap(),
            "--reason",
            "INC-82 laptops stolen",
        ],
    );

    // The token is lost. A certificate minted just before.
    let d = mint(&primary, "d");
    assert!(login(&sshd, &d), "{}", sshd.log_text());
    revoke_ok(&primary, &["--ca", "--reason", "INC-81 token lost"]);
    // The backup's state directory: trust the primary's key there (to revoke it), revoke it.
    let listed = read(&backup.state.join("config.toml"));
    if !listed.contains(&key_part(&read(&primary_pub))) {
        assert_ok(
            &run(backup.cmd().arg("add-backup-ca").arg(&primary_pub)),
            "add-backup-ca PRIMARY in the backup's state directory",
        );
    }
    let printed = revoke_ok(
        &backup,
        &[
            "--ca",
            primary_pub.to_str().unwrap(),
            "--reason",
            "INC-81 token lost",
        ],
    );
    let vb_ca = revoke_version(&printed);
    assert!(
        vb_ca > v1,
        "the backup's KRL version {vb_ca} is not above {v1}"
    );
    // Runbook 3.2, step 2: the requester keys revoked in the primary's ledger, carried over
    // (no token, no jq): each KRL holds one ledger's revocations.
    let o = run(primary
        .cmd()
        .env_remove("BREAKGLASS_CA_PIN_FILE")
        .args(["log", "--revoked-keys"]));
    assert_ok(&o, "log --revoked-keys in the primary's state directory");
    let carried = w.join("carried-keys.pub");
    std::fs::write(&carried, &o.stdout).unwrap();
    assert_eq!(read(&carried).lines().count(), 2, "{}", read(&carried));
    let printed = revoke_ok(
        &backup,
        &[
            "--requester-key",
            carried.to_str().unwrap(),
            "--reason",
            "INC-81 carried over from the lost CA",
        ],
    );
    let vb = revoke_version(&printed);
    assert!(vb > vb_ca, "{vb} {vb_ca}");
    let kb = w.join("backup.krl");
    krl_o(&backup, &kb);
    let o = host.install_krl(&bundle, &kb);
    assert_ok(&o, "install.sh --krl, the backup's KRL");
    let switch_msg = stderr(&o);
    for (name, k) in [("a", &a), ("b", &b), ("d", &d)] {
        assert!(
            !login(&sshd, k),
            "sshd accepted {name} of the revoked primary"
        );
    }
    assert!(
        login(&sshd, &c),
        "sshd refused the backup CA:\n{}",
        sshd.log_text()
    );
    // The carried keys: the backup CA's certificate for g is refused, as is h's.
    for (name, k) in [("g", &g), ("h", &h)] {
        assert!(
            !login(&sshd, k),
            "sshd accepted {name}, whose key the lost CA's ledger revoked"
        );
    }
    let g_line = revoked_line(&sshd, &host, &g.1);
    revoked_line(&sshd, &host, &h.1);
    let d_line = revoked_line(&sshd, &host, &d.1);
    revoked_line(&sshd, &host, &b.1);
    // The primary's older KRL is refused; the file stays the backup's.
    let o = host.install_krl(&bundle, &k1);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("older than the installed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(host.krl()).unwrap(),
        std::fs::read(&kb).unwrap()
    );
    assert!(!login(&sshd, &b));

    // mint from the primary's state directory: refused, nothing changed.
    let e_pub = keygen(&keys, "e", &["-t", "ed25519"], "e@laptop");
    let before = snapshot_state(&primary.state);
    let o = primary.mint(&e_pub, &["-n", &me]);
    assert_fails(
        &o,
        1,
        &format!("refused: this CA ({primary_fp}) was revoked on "),
    );
    assert!(stderr(&o).contains("INC-81 token lost"), "{}", stderr(&o));
    assert!(stderr(&o).contains("hint: "), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("PIN"),
        "the PIN was asked:\n{}",
        stderr(&o)
    );
    assert_eq!(
        snapshot_state(&primary.state),
        before,
        "a refused mint changed the state"
    );
    assert!(!cert_path(&e_pub).exists());
    let mint_refusal = stderr(&o).lines().next().unwrap().to_string();
    // mint from the backup refuses the carried keys, before the PIN, nothing changed.
    let before = snapshot_state(&backup.state);
    let mut carried_refusal = String::new();
    for k in [&g, &h] {
        let o = backup.mint(&pub_of(k), &["-n", &me, "-o", "-"]);
        assert_fails(&o, 1, "was revoked on ");
        assert!(
            stderr(&o).contains("(reason: INC-81 carried over from the lost CA)")
                && !stderr(&o).contains("CA token:"),
            "{}",
            stderr(&o)
        );
        carried_refusal = stderr(&o).lines().next().unwrap().to_string();
    }
    assert_eq!(snapshot_state(&backup.state), before);

    // host-config from the backup's state directory, installed on a fresh host.
    let host2 = LiveHost::new(&me);
    let bundle2 = host_config(
        &backup,
        w,
        "bundle-backup",
        &["--user", &me],
        Some(&host2.ssh_dir),
    );
    let trusted = read(&bundle2.join("breakglass-ca.pub"));
    assert!(
        !trusted.contains(&key_part(&read(&primary_pub))),
        "{trusted}"
    );
    assert_eq!(
        trusted,
        format!("{backup_line}\n# REVOKED, do not trust: {primary_fp} (ecdsa-p256, backup CA)\n")
    );
    let krl2 = bundle2.join("breakglass-ca.krl");
    assert_eq!(krl_version_of(&krl2), vb);
    let mut host_krl = std::fs::read(&krl2).unwrap();
    let ours = std::fs::read(&kb).unwrap();
    host_krl[DATE].copy_from_slice(&ours[DATE]);
    assert_eq!(
        host_krl, ours,
        "host-config's KRL is not krl -o's (the date aside)"
    );
    host2.install_ok(&bundle2);
    assert_eq!(
        std::fs::read(host2.krl()).unwrap(),
        std::fs::read(&krl2).unwrap()
    );
    let sshd2 = host2.sshd();
    let f = mint(&backup, "f");
    assert!(login(&sshd2, &c), "{}", sshd2.log_text());
    assert!(login(&sshd2, &f), "{}", sshd2.log_text());
    for (name, k) in [("a", &a), ("b", &b), ("d", &d)] {
        assert!(
            !login(&sshd2, k),
            "the fresh host accepted {name} of the revoked primary"
        );
        assert!(keygen_q(&host2.krl(), &k.1).0, "{name}");
    }
    assert!(!login(&sshd2, &g), "the fresh host accepted g");
    let d_line2 = revoked_line(&sshd2, &host2, &d.1);
    assert!(!keygen_q(&host2.krl(), &c.1).0);

    // pubkey --bundle and the key sheet from the backup's state directory.
    let o = run(backup
        .cmd()
        .env_remove("BREAKGLASS_CA_PIN_FILE")
        .args(["pubkey", "--bundle"]));
    assert_ok(&o, "pubkey --bundle");
    assert_eq!(stdout(&o), trusted);
    assert!(
        stderr(&o).contains(&format!(
            "note: {primary_fp} (backup CA) is revoked in the ledger: the bundle marks it REVOKED and leaves it out"
        )),
        "{}",
        stderr(&o)
    );
    let sheet = w.join("sheet.svg");
    let o = run(backup
        .cmd()
        .env_remove("BREAKGLASS_CA_PIN_FILE")
        .args(["pubkey", "--format", "sheet", "-o"])
        .arg(&sheet));
    assert_ok(&o, "pubkey --format sheet");
    let svg = read(&sheet);
    assert!(
        svg.contains("Revoked CAs (1): REVOKED — do not trust"),
        "{svg}"
    );
    assert!(
        svg.contains(&format!(
            "text-decoration=\"line-through\">{primary_fp}</text>"
        )),
        "{svg}"
    );
    assert_eq!(svg.matches(primary_fp.as_str()).count(), 1, "{svg}");
    let blob = read(&primary_pub)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        !svg.contains(&blob[..40]),
        "the sheet prints the revoked key line"
    );
    assert!(svg.contains(&fingerprint(&backup)));

    // log verify in both state directories.
    for (who, hsm) in [("primary", &primary), ("backup", &backup)] {
        let o = run(hsm.cmd().args(["log", "verify"]));
        assert_ok(&o, &format!("log verify ({who})"));
    }

    eprintln!(
        "install.sh --krl: {}",
        installed_msg
            .lines()
            .find(|l| l.contains("installed"))
            .unwrap()
    );
    eprintln!("sshd logged (serial 1 revoked): {a_line}");
    eprintln!("sshd logged (serial 2 of the same CA): {accepted_b}");
    eprintln!(
        "install.sh --krl (backup's KRL): {}",
        switch_msg
            .lines()
            .find(|l| l.contains("installed"))
            .unwrap()
    );
    eprintln!("sshd logged (primary revoked, minted just before): {d_line}");
    eprintln!("sshd logged on the fresh host: {d_line2}");
    eprintln!("mint from the primary: {mint_refusal}");
    eprintln!("sshd logged (g's key carried over from the lost CA's ledger): {g_line}");
    eprintln!("mint from the backup of a carried key: {carried_refusal}");
    eprintln!("breakglass-ca.pub from the backup:\n{trusted}");
}

/// `install.sh --krl` ordering with KRLs from `krl -o`: the KRL of an earlier `krl -o`
/// installed after a later one is refused (exit 1, the installed file and the whole tree byte
/// for byte unchanged); the same KRL twice, or one written again with nothing revoked between,
/// is a no-op; a host-config bundle made before the revocations refuses as a whole; a later
/// KRL installs over it.
#[test]
fn install_sh_orders_the_krls_of_krl_o() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let work = target_dir();
    let w = work.path();
    for n in ["a", "b", "c"] {
        let k = keygen(w, n, &["-t", "ed25519"], &format!("{n}@laptop"));
        assert_ok(&hsm.mint(&k, &["-n", "breakglass"]), "mint");
    }
    let (script, root) = installed_image(&hsm, w);
    let installed = root.join("etc/ssh/breakglass-ca.krl");
    assert_eq!(krl_version_of(&installed), 0);
    let krl = |f: &Path| {
        sh(
            &script,
            Some(&root),
            None,
            &[OsStr::new("--krl"), f.as_os_str()],
        )
    };

    revoke_ok(&hsm, &["--serial", "1", "--reason", "INC-90 one"]);
    let k1 = w.join("k1.krl");
    krl_o(&hsm, &k1);
    revoke_ok(&hsm, &["--serial", "2", "--reason", "INC-90 two"]);
    let k2 = w.join("k2.krl");
    krl_o(&hsm, &k2);
    let (v1, v2) = (krl_version_of(&k1), krl_version_of(&k2));
    assert!(v2 > v1, "{v2} {v1}");

    let o = krl(&k2);
    assert_ok(&o, "install.sh --krl k2");
    assert!(
        stderr(&o).contains(&format!("(KRL version {v2}, was 0)")),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&k2).unwrap()
    );
    let before = tree(&root);

    // The earlier one: refused.
    let o = krl(&k1);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("is KRL version {v1}, older than the installed"))
            && err.contains(&format!("(version {v2}). A KRL never goes back"))
            && err.contains("Nothing was changed."),
        "{err}"
    );
    assert_eq!(tree(&root), before, "a refused KRL changed the tree");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&k2).unwrap()
    );
    let refusal = err
        .lines()
        .find(|l| l.contains("older than"))
        .unwrap()
        .to_string();

    // The same one twice, and one written again from the same ledger: no-ops.
    let k2b = w.join("k2-again.krl");
    krl_o(&hsm, &k2b);
    assert_eq!(krl_version_of(&k2b), v2);
    for f in [&k2, &k2b] {
        let o = krl(f);
        assert_ok(&o, "install.sh --krl, the same version");
        assert!(
            stderr(&o).contains(&format!("is already KRL version {v2}: nothing to do")),
            "{}",
            stderr(&o)
        );
        assert_eq!(tree(&root), before, "a no-op changed the tree");
    }

    // The bundle made before the revocations (its KRL is version 0): refused as a whole.
    let o = sh(&script, Some(&root), None, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the KRL inside this script is KRL version 0, older"),
        "{}",
        stderr(&o)
    );
    assert_eq!(tree(&root), before);

    // A later one installs.
    revoke_ok(&hsm, &["--serial", "3", "--reason", "INC-90 three"]);
    let k3 = w.join("k3.krl");
    krl_o(&hsm, &k3);
    let o = krl(&k3);
    assert_ok(&o, "install.sh --krl k3");
    let v3 = krl_version_of(&k3);
    assert!(
        stderr(&o).contains(&format!("(KRL version {v3}, was {v2})")),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&k3).unwrap()
    );
    eprintln!("install.sh --krl with an earlier krl -o: {refusal}");
}

/// `log verify` between revocations and mints: it passes, says how many revocation records
/// there are and how many a later certificate's binding covers, and warns about the uncovered
/// ones only while they are the newest lines (`warning: the newest N revocation record(s)
/// (after serial S) are not yet covered by a token signature`, docs/ledger.md section 3.3).
#[test]
fn log_verify_counts_revocations_and_warns_only_about_the_newest() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let d = hsm.dir.path();
    let key = |n: &str| keygen(d, n, &["-t", "ed25519"], &format!("{n}@laptop"));
    let (alice, bob, carol) = (key("alice"), key("bob"), key("carol"));
    let mint = |k: &Path, id: &str| {
        let cert = d.join(format!("{id}-cert.pub"));
        let o = hsm.mint(
            k,
            &["-n", "breakglass", "-I", id, "-o", cert.to_str().unwrap()],
        );
        assert_ok(&o, &format!("mint {id}"));
    };
    let verify = || {
        let o = run(hsm
            .cmd()
            .env_remove("BREAKGLASS_CA_PIN_FILE")
            .args(["log", "verify"]));
        assert_ok(&o, "log verify");
        (stdout(&o), stderr(&o))
    };
    // (records, serials, revocations, covered, uncovered)
    let expect = |step: &str, records: u64, revocations: u64, uncovered: u64| {
        let (out, err) = verify();
        let all = format!("{out}{err}");
        let first = out.lines().next().unwrap_or_default();
        let want = if revocations == 0 {
            format!("ledger OK: {records} record(s), serials 1 to {records}, chain intact")
        } else {
            format!(
                "ledger OK: {records} record(s), serials 1 to {records}, and {revocations} revocation record(s), chain intact"
            )
        };
        assert!(first.starts_with(&want), "{step}: {first}\n{all}");
        if revocations > 0 {
            let line = format!(
                "revocations: {revocations} record(s); {} covered by the token's signature through a later certificate's ledger binding, {uncovered} not yet",
                revocations - uncovered
            );
            assert!(
                out.lines().any(|l| l == line),
                "{step}: no '{line}':\n{all}"
            );
        } else {
            assert!(!all.contains("revocations:"), "{step}:\n{all}");
        }
        let warning = format!(
            "warning: the newest {uncovered} revocation record(s) (after serial {records}) are not yet covered by a token signature"
        );
        if uncovered > 0 {
            assert!(all.contains(&warning), "{step}: no '{warning}':\n{all}");
            assert_eq!(all.matches("warning:").count(), 1, "{step}:\n{all}");
        } else {
            assert!(!all.contains("warning:"), "{step}: a warning:\n{all}");
        }
        all
    };

    mint(&alice, "a1");
    mint(&bob, "b2");
    expect("no revocation", 2, 0, 0);
    revoke_ok(&hsm, &["--serial", "1", "--reason", "INC-70 one"]);
    let newest = expect("one revocation, the newest line", 2, 1, 1);
    mint(&carol, "c3");
    let covered = expect("a mint after it", 3, 1, 0);
    revoke_ok(&hsm, &["--key-id", "b2", "--reason", "INC-70 two"]);
    revoke_ok(
        &hsm,
        &[
            "--requester-key",
            bob.to_str().unwrap(),
            "--reason",
            "INC-70 three",
        ],
    );
    expect("two more, the newest lines", 3, 3, 2);
    mint(&carol, "c4");
    mint(&alice, "a5");
    expect("two mints after them", 5, 3, 0);
    revoke_ok(&hsm, &["--serial", "4-5", "--reason", "INC-70 four"]);
    let last = expect("one more at the end", 5, 4, 1);
    // `status` counts them too.
    let o = run(hsm.cmd().arg("status"));
    assert_ok(&o, "status");
    assert!(
        stdout(&o).contains("revocations:    4 record(s), the newest "),
        "{}",
        stdout(&o)
    );
    eprintln!("log verify, the newest line a revocation:\n{newest}");
    eprintln!("log verify, a mint after it:\n{covered}");
    eprintln!("log verify at the end:\n{last}");
}
