//! `audit` against a real sshd: a loopback sshd (127.0.0.1) configured only from
//! `host-config`'s output, installed with its `install.sh` into a host tree under `target/`
//! (as on a live host: the real `sshd -t` and `sshd -T`, fake `systemctl`), `LogLevel
//! VERBOSE` and `-E FILE`. Logins with a ledger certificate, with certificates signed by the
//! same token key through `ssh-keygen -s CA.pub -D MODULE` (serial 4242, and serial 0: in no
//! ledger), a wrong principal, an expired certificate and a revoked one (`revoke`, `krl -o`,
//! `install.sh --krl`). `audit` on sshd's log reports each, exits 1 for the rogue
//! certificates, writes nothing to the state directory, and its `--json` parses. The log,
//! converted to auth.log (classic and RFC 3339), journalctl's short output and
//! `journalctl -o json`, gives the same events.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::*;
use crate::host_tree::{require_host_tools, LiveHost};
use crate::hosts::{fingerprint, host_config, read};
use crate::sshd::current_user;

fn tools() -> bool {
    require_host_tools(&[])
}

/// `ssh-keygen -s CA.pub -D MODULE`: a certificate signed by the token's CA key outside
/// breakglass-ca (the PIN through SSH_ASKPASS), so in no ledger.
fn rogue(
    hsm: &Hsm,
    dir: &Path,
    ca_pub: &Path,
    pubkey: &Path,
    id: &str,
    principal: &str,
    serial: u64,
) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let askpass = dir.join("askpass");
    std::fs::write(&askpass, format!("#!/bin/sh\necho {PIN}\n")).unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let copy = dir.join(format!("rogue-{serial}.pub"));
    std::fs::copy(pubkey, &copy).unwrap();
    let o = run(Command::new("ssh-keygen")
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .arg("-s")
        .arg(ca_pub)
        .args(["-D", MODULE, "-I", id, "-n", principal, "-z"])
        .arg(serial.to_string())
        .args(["-V", "-5m:+30m"])
        .arg(&copy)
        .stdin(Stdio::null()));
    assert_ok(&o, "ssh-keygen -s CA.pub -D MODULE");
    cert_path(&copy)
}

/// `breakglass-ca audit ARGS` (no PIN source at all).
fn audit(hsm: &Hsm, args: &[&OsStr]) -> Output {
    run(hsm
        .cmd()
        .env_remove("BREAKGLASS_CA_PIN_FILE")
        .arg("audit")
        .args(args))
}

/// The `--json` events, parsed, in the order written.
fn json_events(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| {
            assert!(l.is_ascii(), "{l}");
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))
        })
        .collect()
}

/// What an event must keep whatever the format (not its time, PID, line or log).
fn essence(v: &serde_json::Value) -> String {
    let keys = [
        "event",
        "verdict",
        "alarms",
        "user",
        "from",
        "port",
        "key_type",
        "key_fingerprint",
        "key_id",
        "serial",
        "ca_type",
        "ca_fingerprint",
        "ca",
        "sshd_reason",
        "revoked_by_file",
        "record",
        "host",
    ];
    keys.iter()
        .map(|k| format!("{k}={}", v[k]))
        .collect::<Vec<_>>()
        .join(" ")
}

/// sshd's `-E` messages (CR LF each; a raw LF inside one stays in it).
fn messages(log: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(log);
    let mut out: Vec<String> = text.split("\r\n").map(str::to_string).collect();
    if out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

/// The -E messages as other formats would carry them, for host `web-1`: a PID per
/// connection (a new one at each `Connection from`), times one second apart from `start`,
/// the message escaped as sshd escapes it for syslog (a newline as `\n`, a tab as `\t`, a
/// CR as `\r`) and error-level lines with syslog's `error: `.
fn convert(msgs: &[String], start: chrono::DateTime<chrono::Utc>) -> Vec<(&'static str, Vec<u8>)> {
    let (mut classic, mut rfc, mut short, mut json) =
        (String::new(), String::new(), String::new(), String::new());
    short.push_str("-- Boot 0123456789abcdef0123456789abcdef --\n");
    let mut pid = 1000u32;
    for (i, m) in msgs.iter().enumerate() {
        if m.starts_with("Connection from ") {
            pid += 1;
        }
        let mut m = m
            .replace('\n', "\\n")
            .replace('\t', "\\t")
            .replace('\r', "\\r");
        if m.starts_with("Certificate ") || m.starts_with("Authentication key ") {
            m = format!("error: {m}");
        }
        let t = start + chrono::Duration::seconds(i as i64);
        let local = t.with_timezone(&chrono::Local);
        classic.push_str(&format!(
            "{} web-1 sshd[{pid}]: {m}\n",
            local.format("%b %e %H:%M:%S")
        ));
        short.push_str(&format!(
            "{} web-1 sshd[{pid}]: {m}\n",
            local.format("%b %d %H:%M:%S")
        ));
        rfc.push_str(&format!(
            "{} web-1 sshd[{pid}]: {m}\n",
            t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        ));
        let entry = serde_json::json!({
            "__REALTIME_TIMESTAMP": t.timestamp_micros().to_string(),
            "_HOSTNAME": "web-1",
            "_PID": pid.to_string(),
            "SYSLOG_IDENTIFIER": "sshd",
            "_COMM": "sshd",
            "MESSAGE": if m.contains("serial 0)") { serde_json::json!(m.as_bytes()) } else { serde_json::json!(m) },
        });
        json.push_str(&format!("{entry}\n"));
    }
    vec![
        ("auth.log", classic.into_bytes()),
        ("auth-rfc3339.log", rfc.into_bytes()),
        ("journal-short.txt", short.into_bytes()),
        ("journal.json", json.into_bytes()),
    ]
}

#[test]
fn audit_reports_each_certificate_a_real_sshd_logged() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("audit-ca");
    hsm.init("ecdsa-p256");
    let ca_pub = hsm.ca_pub_file();
    let ca_fp = fingerprint(&hsm);
    let me = current_user();
    let work = target_dir();
    let w = work.path();
    let keys = w.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let host = LiveHost::new(&me);
    let bundle = host_config(&hsm, w, "bundle", &["--user", &me], Some(&host.ssh_dir));
    let o = host.install(&bundle, &[]);
    assert_ok(&o, "sh install.sh");
    let sshd = host.sshd();
    let login = |key: &Path, cert: &Path| sshd.login(&key.with_extension(""), cert);
    let mint = |name: &str, extra: &[&str]| {
        let pubkey = keygen(&keys, name, &["-t", "ed25519"], &format!("{name}@laptop"));
        let o = hsm.mint(&pubkey, extra);
        assert_ok(&o, &format!("mint {name}"));
        (pubkey.clone(), cert_path(&pubkey))
    };

    // 1: a ledger certificate logs in.
    let (a, a_cert) = mint("alice", &["-n", &me]);
    assert!(login(&a, &a_cert), "{}", sshd.log_text());
    // Signed by the same token key outside breakglass-ca: serial 4242 (its key ID claims
    // serial 1's in sshd's own words) and serial 0 (a newline and an escape in its key ID).
    let claim = format!("alice@laptop#1:INC-42 (serial 1) CA ECDSA {ca_fp}");
    let r4242 = rogue(&hsm, w, &ca_pub, &a, &claim, &me, 4242);
    assert!(login(&a, &r4242), "{}", sshd.log_text());
    let r0 = rogue(
        &hsm,
        w,
        &ca_pub,
        &a,
        "zero\nAccepted publickey for x\x1b[2J",
        &me,
        0,
    );
    assert!(login(&a, &r0), "{}", sshd.log_text());
    // 2: a principal the host does not list.
    let (b, b_cert) = mint("bob", &["-n", "nobody-here"]);
    assert!(!login(&b, &b_cert));
    // 3: expired: a window that ended an hour ago.
    let past = (chrono::Utc::now() - chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (c, c_cert) = mint(
        "carol",
        &[
            "-n",
            &me,
            "--not-before",
            &past,
            "-V",
            "15m",
            "--force-window",
        ],
    );
    assert!(!login(&c, &c_cert));
    // 4: revoked, and the KRL installed.
    let (d, d_cert) = mint("dave", &["-n", &me]);
    assert_ok(
        &run(hsm
            .cmd()
            .args(["revoke", "--serial", "4", "--reason", "INC-43 leaked"])),
        "revoke",
    );
    let krl = w.join("breakglass-ca.krl");
    assert_ok(
        &run(hsm
            .cmd()
            .env_remove("BREAKGLASS_CA_PIN_FILE")
            .arg("krl")
            .arg("-o")
            .arg(&krl)),
        "krl -o",
    );
    assert_ok(
        &host.install(&bundle, &[OsStr::new("--krl"), krl.as_os_str()]),
        "install.sh --krl",
    );
    assert!(!login(&d, &d_cert));
    let log = std::fs::read(&sshd.log).unwrap();
    drop(sshd);

    // The table: exit 1 (the rogue certificates), alarms first; the state directory intact.
    let before = snapshot_state(&hsm.state);
    let o = audit(
        &hsm,
        &[
            OsStr::new("--host"),
            OsStr::new("test-host"),
            sshd_log(w, &log).as_os_str(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        snapshot_state(&hsm.state),
        before,
        "audit changed the state directory"
    );
    let table = stdout(&o);
    let err = stderr(&o);
    eprintln!("audit (table):\n{table}{err}");
    assert!(
        err.contains("error: ALARM: 2 certificate event(s)"),
        "{err}"
    );
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(rows.len(), 6, "{table}");
    let row = |serial: &str| {
        *rows
            .iter()
            .find(|r| r.split_whitespace().nth(4) == Some(serial))
            .unwrap_or_else(|| panic!("no row for serial {serial}:\n{table}"))
    };
    assert!(
        rows[0].contains(" 4242 ") && rows[0].ends_with("ALARM not-in-ledger"),
        "{table}"
    );
    assert!(
        rows[1].contains(" 0 ") && rows[1].ends_with("ALARM serial-zero"),
        "{table}"
    );
    assert!(
        row("1").ends_with(" ok")
            && row("1").contains("alice@laptop")
            && row("1").contains("INC-42 test"),
        "{table}"
    );
    assert!(
        row("2").ends_with("refused: Certificate does not contain an authorized principal"),
        "{table}"
    );
    assert!(
        row("3").ends_with("refused: Certificate invalid: expired"),
        "{table}"
    );
    assert!(
        row("4").ends_with("refused: revoked (RevokedKeys)"),
        "{table}"
    );
    // Nothing untrusted reaches the terminal raw: the rogue key IDs are escaped.
    assert!(
        !table.contains('\x1b') && table.contains("zero\\nAccepted publickey for x\\e[2J"),
        "{table}"
    );

    // --json: one object per event, ASCII, the same verdicts.
    let o = audit(
        &hsm,
        &[
            OsStr::new("--json"),
            OsStr::new("--host"),
            OsStr::new("test-host"),
            sshd_log(w, &log).as_os_str(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let events = json_events(&o);
    eprintln!(
        "audit --json, first line:\n{}",
        stdout(&o).lines().next().unwrap()
    );
    let by_serial = |s: u64| {
        events
            .iter()
            .find(|v| v["serial"] == s)
            .unwrap_or_else(|| panic!("no event for serial {s}: {events:?}"))
    };
    assert_eq!(events.len(), 6);
    assert_eq!(by_serial(1)["verdict"], "ok");
    assert_eq!(by_serial(1)["event"], "login");
    assert_eq!(by_serial(1)["record"]["requester"], "alice@laptop");
    assert_eq!(by_serial(1)["ca_fingerprint"], ca_fp.as_str());
    assert_eq!(by_serial(4242)["alarms"][0]["kind"], "not-in-ledger");
    assert_eq!(by_serial(4242)["key_id"], claim.as_str());
    assert_eq!(by_serial(0)["alarms"][0]["kind"], "serial-zero");
    assert_eq!(
        by_serial(0)["key_id"],
        "zero\nAccepted publickey for x\u{1b}[2J"
    );
    assert_eq!(by_serial(2)["verdict"], "refused");
    assert_eq!(by_serial(3)["sshd_reason"], "Certificate invalid: expired");
    assert_eq!(
        by_serial(4)["revoked_by_file"],
        host.ssh_dir.join("breakglass-ca.krl").to_str().unwrap()
    );
    assert_eq!(by_serial(4)["revoked"]["how"], "its serial");

    // The same lines as auth.log, journalctl and journald JSON: the same events.
    let want: Vec<String> = {
        let mut v: Vec<String> = events.iter().map(essence).collect();
        v.sort();
        v.iter()
            .map(|s| s.replace("\"test-host\"", "\"web-1\""))
            .collect()
    };
    let start = chrono::Utc::now() - chrono::Duration::seconds(120);
    for (name, bytes) in convert(&messages(&log), start) {
        let file = w.join(name);
        std::fs::write(&file, &bytes).unwrap();
        let o = audit(&hsm, &[OsStr::new("--json"), file.as_os_str()]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        let mut got: Vec<String> = json_events(&o).iter().map(essence).collect();
        got.sort();
        assert_eq!(got, want, "{name}:\n{}", read(&file));
        assert!(
            json_events(&o).iter().all(|v| v["time"].is_string()),
            "{name}"
        );
    }
}

/// sshd's -E log, copied where the test can name it.
fn sshd_log(dir: &Path, log: &[u8]) -> PathBuf {
    let p = dir.join("sshd-E.log");
    std::fs::write(&p, log).unwrap();
    p
}

/// `--state-dir` more than once: every command but `audit` refuses it. `audit` with the
/// primary's state directory alone: a login with the backup CA's certificate is an alarm
/// (no ledger given for that CA); with both, it is the backup ledger's record. A certificate
/// of a CA retired by `init --force` is found in the retired ledger.
#[test]
fn audit_reads_the_backup_and_retired_ledgers_of_several_state_directories() {
    if !tools() {
        return;
    }
    let primary = Hsm::new("primary-ca");
    primary.init("ecdsa-p256");
    let backup = Hsm::new("backup-ca");
    backup.init("ed25519");
    let work = target_dir();
    let w = work.path();
    let key = keygen(w, "alice", &["-t", "ed25519"], "alice@laptop");
    let cert_of = |hsm: &Hsm, name: &str| {
        let out = w.join(format!("{name}-cert.pub"));
        let o = hsm.mint(&key, &["-n", "breakglass", "-o", out.to_str().unwrap()]);
        assert_ok(&o, &format!("mint {name}"));
        out
    };
    let old_cert = cert_of(&primary, "old");
    let old_fp = fingerprint(&primary);
    let o = run(primary
        .cmd()
        .args(["--ca", &primary.uri(), "init", "--force"]));
    assert_ok(&o, "init --force");
    assert_ne!(fingerprint(&primary), old_fp);
    let backup_pub = backup.ca_pub_file();
    assert_ok(
        &run(primary.cmd().arg("add-backup-ca").arg(&backup_pub)),
        "add-backup-ca",
    );
    let backup_cert = cert_of(&backup, "backup");

    let line = |cert: &Path, pid: u32| {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
        format!("{now} web-1 sshd[{pid}]: {}\n", info_line(cert, pid))
    };
    let log = w.join("auth.log");
    std::fs::write(&log, line(&old_cert, 11) + &line(&backup_cert, 12)).unwrap();

    // Every other command refuses a second --state-dir.
    for args in [&["status"][..], &["log"], &["krl", "-o", "x.krl"]] {
        let o = run(primary
            .cmd()
            .arg("--state-dir")
            .arg(&primary.state)
            .arg("--state-dir")
            .arg(&backup.state)
            .args(args));
        assert_fails(
            &o,
            2,
            "--state-dir was given 2 times; only 'audit' reads several state directories",
        );
    }

    let audit_json = |dirs: &[&Path]| {
        let mut c = primary.cmd();
        c.env_remove("BREAKGLASS_CA_STATE_DIR");
        for d in dirs {
            c.arg("--state-dir").arg(d);
        }
        run(c.arg("audit").arg("--json").arg(&log))
    };
    let o = audit_json(&[&primary.state]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let events = json_events(&o);
    assert_eq!(events[0]["verdict"], "ok", "{events:?}");
    assert_eq!(events[0]["ca"], "retired");
    assert_eq!(events[0]["record"]["requester"], "alice@laptop");
    assert_eq!(events[1]["verdict"], "alarm");
    assert_eq!(events[1]["ca"], "backup");
    assert_eq!(events[1]["alarms"][0]["kind"], "no-ledger");
    assert!(
        events[1]["alarms"][0]["text"]
            .as_str()
            .unwrap()
            .contains("add --state-dir"),
        "{events:?}"
    );
    // Both state directories (the same one twice is read once).
    let o = audit_json(&[&primary.state, &backup.state, &primary.state]);
    assert_ok(&o, "audit with both state directories");
    let events = json_events(&o);
    assert_eq!(events[1]["verdict"], "ok", "{events:?}");
    assert_eq!(events[1]["ca"], "this");
    assert_eq!(events[1]["state_dir"], backup.state.to_str().unwrap());
    let err = stderr(&o);
    assert!(
        err.contains("2 login(s)") && err.contains("0 ALARM(S)"),
        "{err}"
    );
}

/// sshd's INFO message for a login as breakglass with `cert` (its key, key ID, serial and CA
/// read back with ssh-keygen -L), from port 4PID.
fn info_line(cert: &Path, pid: u32) -> String {
    let listed = ssh_keygen_list(cert);
    let field = |name: &str| {
        listed
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    let key_fp = field("Public key: ").split(' ').nth(1).unwrap().to_string();
    let ca = field("Signing CA: ");
    let mut ca = ca.split(' ');
    let ca_type = match ca.next().unwrap() {
        "ED25519" => "ED25519",
        _ => "ECDSA",
    };
    let ca_fp = ca.next().unwrap();
    let id = field("Key ID: ");
    format!(
        "Accepted publickey for breakglass from 192.0.2.7 port 4{pid} ssh2: ED25519-CERT {key_fp} ID {} (serial {}) CA {ca_type} {ca_fp}",
        id.trim_matches('"'),
        field("Serial: ")
    )
}

/// Every laptop example of `audit --help` works as printed: one login with a ledger
/// certificate, no alarm (exit 0), in a directory holding the logs it names and a HOME with
/// the primary's and the backup's state directories.
#[test]
fn audit_help_examples_work_as_printed() {
    if !require(&["softhsm2-util", "ssh-keygen", "sh", "gzip", "zcat", MODULE]) {
        return;
    }
    let primary = Hsm::new("primary-ca");
    primary.init("ecdsa-p256");
    let backup = Hsm::new("backup-ca");
    backup.init("ed25519");
    assert_ok(
        &run(primary.cmd().arg("add-backup-ca").arg(backup.ca_pub_file())),
        "add-backup-ca",
    );
    let home = target_dir();
    let work = home.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let key = keygen(&work, "alice", &["-t", "ed25519"], "alice@laptop");
    let cert = |hsm: &Hsm, name: &str| {
        let out = work.join(format!("{name}-cert.pub"));
        assert_ok(
            &hsm.mint(&key, &["-n", "breakglass", "-o", out.to_str().unwrap()]),
            "mint",
        );
        out
    };
    let a = cert(&primary, "a");
    for (from, to) in [(&primary.state, "ca-primary"), (&backup.state, "ca-backup")] {
        assert_ok(
            &run(Command::new("cp")
                .arg("-a")
                .arg(from)
                .arg(home.path().join(to))),
            "cp -a",
        );
    }
    let now = chrono::Utc::now();
    let msgs = [info_line(&a, 21)];
    let journal = serde_json::json!({
        "__REALTIME_TIMESTAMP": now.timestamp_micros().to_string(),
        "_HOSTNAME": "web-1", "_PID": "21", "SYSLOG_IDENTIFIER": "sshd", "_COMM": "sshd",
        "MESSAGE": msgs[0],
    });
    std::fs::write(work.join("web-1.json"), format!("{journal}\n")).unwrap();
    let classic = format!(
        "{} web-2 sshd[22]: {}\n",
        now.with_timezone(&chrono::Local).format("%b %e %H:%M:%S"),
        info_line(&a, 22)
    );
    std::fs::write(work.join("web-2-auth.log"), &classic).unwrap();
    std::fs::write(
        work.join("web-3-sshd-E.log"),
        format!("{}\r\n", info_line(&a, 23)),
    )
    .unwrap();
    let gz = run(Command::new("sh")
        .current_dir(&work)
        .args(["-c", "gzip -c web-2-auth.log > web-2-auth.log.2.gz"]));
    assert_ok(&gz, "gzip");
    let help = stdout(&run(primary.cmd().args(["audit", "--help"])));
    let examples: Vec<&str> = help
        .split("Then, on the laptop (no token, no PIN; nothing is written):\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{help}"))
        .lines()
        .take_while(|l| !l.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(examples.len(), 6, "{help}");
    let path = path_with_binary();
    for example in examples {
        let mut sh = primary.cmd_with("sh");
        sh.env_remove("BREAKGLASS_CA_PIN_FILE")
            .env("HOME", home.path())
            .env("PATH", &path)
            .current_dir(&work)
            .args(["-c", example]);
        let o = run(&mut sh);
        assert_ok(&o, example);
        let err = stderr(&o);
        assert!(
            !err.contains("event(s): 0 login(s)") && err.contains("; 0 ALARM(S)"),
            "{example}: {err}"
        );
    }
    let events = std::fs::read_to_string(work.join("web-1-events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 1, "{events}");
    assert!(events.contains("\"verdict\":\"ok\""), "{events}");
}

/// Hostile log lines through the binary: escape sequences, C1 controls, a bidi override,
/// NUL, DEL, invalid UTF-8 in every field sshd would log, a key ID holding another
/// certificate's tail, a 200 KB line, a journal entry with an array MESSAGE: no panic, every
/// line of stdout and stderr safe for a terminal (also with --verbose, which shows the
/// unreadable lines), the JSON ASCII and parseable, the serial sshd wrote last the one judged.
/// No token: the state directory holds only the fixtures' `ca.pub`.
#[test]
fn hostile_logs_never_reach_the_terminal_raw() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("hsm-tests/fixtures/audit");
    let state = target_dir();
    std::fs::copy(fixtures.join("ca.pub"), state.path().join("ca.pub")).unwrap();
    let ca = "SHA256:WI/LiSarIc7EmOVHRvrofSsBIPuTMvEt4izrrj9GjWY";
    let key = "SHA256:mTGpH0uxv8yXVg1xikpVN3A3HHctu5tSWlVePjuBRZs";
    let nasty = "\x1b[2J\x1b]0;owned\x07\u{9b}1A\u{202e}\0\x7f\r";
    let mut log: Vec<u8> = std::fs::read(fixtures.join("auth.log")).unwrap();
    for (i, field) in [nasty, "a\u{2028}b", "\\033[1m"].iter().enumerate() {
        log.extend_from_slice(
            format!(
                "Dec  1 12:01:0{i} web-1{field} sshd[9{i}]: Accepted publickey for root{field} from 10.0.0.{field} port 1 ssh2: ED25519-CERT {key} ID x{field} (serial 1) CA ECDSA {ca} (serial 77{i}) CA ECDSA {ca}\n"
            )
            .as_bytes(),
        );
    }
    log.extend_from_slice(b"Dec  1 12:02:00 web-1 sshd[99]: Accepted certificate ID \"\xff\xfe\x1b[31m\" (serial 3) signed by ECDSA CA ");
    log.extend_from_slice(ca.as_bytes());
    log.extend_from_slice(b" via /etc/ssh/\x1b[0m\xc0.pub\n");
    log.extend_from_slice(
        b"Dec  1 12:02:01 web-1 sshd[98]: Certificate invalid: \x1b[2J\xe2\x80\xae\n",
    );
    log.extend_from_slice(b"Accepted certificate ID \"");
    log.extend(std::iter::repeat_n(b'\x1b', 200_000));
    log.extend_from_slice(b"\n{\"SYSLOG_IDENTIFIER\":\"sshd\",\"_HOSTNAME\":\"h\\u001b[2J\",\"MESSAGE\":[27,91,50,74,67,101,114,116,105,102,105,99,97,116,101,32,255]}\n");
    let file = state.path().join("hostile.log");
    std::fs::write(&file, &log).unwrap();
    let audit = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_breakglass-ca"));
        c.env("BREAKGLASS_CA_STATE_DIR", state.path())
            .env_remove("BREAKGLASS_CA_PIN_FILE")
            .arg("audit")
            .args(args)
            .arg(&file)
            .stdin(Stdio::null());
        run(&mut c)
    };
    let safe = |what: &str, bytes: &[u8]| {
        let text =
            String::from_utf8(bytes.to_vec()).unwrap_or_else(|_| panic!("{what}: not UTF-8"));
        for line in text.lines() {
            assert!(
                !line
                    .chars()
                    .any(|c| c.is_control() || ('\u{2028}'..='\u{202e}').contains(&c)),
                "{what}: raw control or bidi character in {line:?}"
            );
        }
        assert!(!text.contains("panicked"), "{what}: {text}");
        text
    };
    for args in [&[][..], &["--verbose"]] {
        let o = audit(args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let out = safe("stdout", &o.stdout);
        let err = safe("stderr", &o.stderr);
        assert!(
            out.contains("770") && out.contains("771") && out.contains("772"),
            "{out}"
        );
        if args.is_empty() {
            assert!(err.contains("--verbose shows them"), "{err}");
        } else {
            assert!(
                err.contains("unparseable: ") && err.contains("\\e"),
                "{err}"
            );
        }
    }
    let o = audit(&["--json"]);
    safe("stderr", &o.stderr);
    let events = json_events(&o);
    let serials: Vec<u64> = events.iter().filter_map(|v| v["serial"].as_u64()).collect();
    for s in [770, 771, 772] {
        assert!(serials.contains(&s), "{serials:?}");
        let v = events.iter().find(|v| v["serial"] == s).unwrap();
        assert_eq!(v["alarms"][0]["kind"], "not-in-ledger", "{v}");
    }
    let first = events.iter().find(|v| v["serial"] == 770).unwrap();
    assert_eq!(first["user"], format!("root{nasty}").as_str());
    assert!(first["key_id"]
        .as_str()
        .unwrap()
        .ends_with(&format!("(serial 1) CA ECDSA {ca}")));
}
