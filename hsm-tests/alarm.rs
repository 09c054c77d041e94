//! The alarm on the host, end to end: `host-config --alert-command` output installed by its own
//! `install.sh` on a host tree under `target/` (as on a live host: the real `sshd -t` and
//! `sshd -T`; only `systemctl` and `service` are fakes), a real sshd on 127.0.0.1 started on
//! that tree with `UsePAM no` and `UsePAM yes`, and logins with certificates minted by the
//! binary on SoftHSM2 tokens or signed by `ssh-keygen -s` with a file CA added as a backup.
//!
//! Syslog: the hook runs the stock `logger`, which writes to `/dev/log` as on any host. sshd
//! runs in a private mount namespace (`unshare --mount`, root only) in which `/dev` is a small
//! tmpfs holding the device nodes sshd needs and a `log` that is this test's datagram socket,
//! and `/run` is a directory of the test tree (the hook's marks land there). The test reads
//! each datagram as a syslog daemon gets it: `<PRI>`, time, tag, message (auth.alert is
//! `<33>`, auth.info `<38>`). What this proves: what the hook hands to syslog, byte for byte;
//! not what a given syslog daemon then does with it. Nothing outside `target/` is touched.
//!
//! The alert commands are small scripts of the test tree: `record` writes its environment
//! (`env -0`) and `id -u` into a directory anyone may write; `fail` exits 1; `hang` sleeps
//! for ever; and a path that does not exist.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::host_tree::{assert_installed_live, require_host_tools, sh, FakeReload};
use crate::hosts::{cloud_init_entries, fingerprint, host_config, read, sshd_config};
use crate::sshd::{current_user, free_port, ssh_login_command};

/// The alert commands' time limit in these tests.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How much longer than [`TIMEOUT`] a login may take at most (the hook is detached: logins
/// take well under a second; this is the bound the test holds them to).
const MARGIN: Duration = Duration::from_secs(3);

fn tools() -> bool {
    require_host_tools(&["unshare", "mount", "logger", "setpriv", "setsid", "timeout"])
        && require_root("the alarm tests run sshd in a private mount namespace")
}

/// A syslog socket: every datagram sent to it, kept in order.
struct Syslog {
    path: PathBuf,
    got: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syslog {
    fn bind(path: PathBuf) -> Syslog {
        let sock = UnixDatagram::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::SeqCst) {
                if let Ok(n) = sock.recv(&mut buf) {
                    g.lock().unwrap().push(buf[..n].to_vec());
                }
            }
        });
        Syslog {
            path,
            got,
            stop,
            thread: Some(thread),
        }
    }

    /// The messages (after `TAG: `) with priority `pri` and tag breakglass-ca; every datagram
    /// must be printable ASCII.
    fn messages(&self, pri: u8) -> Vec<String> {
        let got = self.got.lock().unwrap();
        got.iter()
            .map(|d| {
                assert!(
                    d.iter().all(|b| (0x20..0x7f).contains(b)),
                    "a syslog datagram is not printable ASCII: {:?}",
                    String::from_utf8_lossy(d)
                );
                String::from_utf8(d.clone()).unwrap()
            })
            .filter(|d| d.starts_with(&format!("<{pri}>")))
            .filter_map(|d| {
                d.split_once(" breakglass-ca: ")
                    .map(|(_, m)| m.trim_end().to_string())
            })
            .collect()
    }

    fn all(&self) -> String {
        let got = self.got.lock().unwrap();
        got.iter()
            .map(|d| format!("{}\n", String::from_utf8_lossy(d)))
            .collect()
    }

    /// Wait (at most `limit`) until `n` messages of priority `pri` contain `needle`.
    fn wait_for(&self, pri: u8, needle: &str, n: usize, limit: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let found: Vec<String> = self
                .messages(pri)
                .into_iter()
                .filter(|m| m.contains(needle))
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                start.elapsed() < limit,
                "no {n} syslog message(s) <{pri}> with {needle:?} within {limit:?}:\n{}",
                self.all()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// sshd in its own mount namespace (private /dev with the test's /dev/log, private /run),
/// killed by PID when dropped (unshare and sh exec into sshd: the child's PID is sshd's).
struct NsSshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl NsSshd {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NsSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const NAMESPACE_SETUP: &str = r#"set -e
W=$1
mount --bind "$W/run" /run
mount -t tmpfs -o mode=0755,size=1m breakglass-test-dev "$W/dev"
for n in null zero full random urandom tty; do
    : >"$W/dev/$n"
    mount --bind "/dev/$n" "$W/dev/$n"
done
ln -s /proc/self/fd "$W/dev/fd"
ln -s /proc/self/fd/0 "$W/dev/stdin"
ln -s /proc/self/fd/1 "$W/dev/stdout"
ln -s /proc/self/fd/2 "$W/dev/stderr"
mkdir "$W/dev/pts" "$W/dev/shm"
: >"$W/dev/log"
mount --bind "$W/syslog.sock" "$W/dev/log"
mount --move "$W/dev" /dev
exec "$2" -D -f "$3" -E "$4"
"#;

/// A host: a tree under `target/` (root-owned, 0755 all the way, as sshd wants for the hook)
/// with the ssh directory, the sshd configuration, the syslog socket, the alert commands.
struct Host {
    dir: tempfile::TempDir,
    ssh_dir: PathBuf,
    port: u16,
    config: PathBuf,
    fake: FakeReload,
    records: PathBuf,
    syslog: Syslog,
}

impl Host {
    fn new(use_pam: bool) -> Host {
        let dir = target_dir();
        let w = dir.path();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode(w, 0o755);
        for d in ["etc-ssh", "run", "run/sshd", "dev", "bin", "records"] {
            std::fs::create_dir(w.join(d)).unwrap();
            mode(&w.join(d), 0o755);
        }
        // The alert commands run as nobody: they may write here only.
        mode(&w.join("records"), 0o1777);
        let ssh_dir = w.join("etc-ssh");
        let port = free_port();
        let config = sshd_config(&ssh_dir, port, &ssh_dir, &current_user(), true);
        let text = read(&config);
        let pam = if use_pam { "UsePAM yes" } else { "UsePAM no" };
        let text = text
            .lines()
            .map(|l| if l.starts_with("UsePAM ") { pam } else { l })
            .map(|l| format!("{l}\n"))
            .collect::<String>();
        assert!(text.contains(&format!("\n{pam}\n")));
        std::fs::write(&config, text).unwrap();
        let records = w.join("records");
        let script = |name: &str, body: &str| {
            let p = w.join("bin").join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
            mode(&p, 0o755);
        };
        script(
            "record",
            &format!(
                "f={r}/$$\nenv -0 >\"$f.tmp\"\nid -u >\"$f.uid\"\nmv \"$f.tmp\" \"$f.env\"\n",
                r = records.display()
            ),
        );
        script("fail", "echo 'oops from the alert command' >&2\nexit 1\n");
        script(
            "hang",
            &format!(
                "echo $$ >{r}/hang.pid\nexec sleep 1000\n",
                r = records.display()
            ),
        );
        let syslog = Syslog::bind(w.join("syslog.sock"));
        Host {
            fake: FakeReload::new(w),
            dir,
            ssh_dir,
            port,
            config,
            records,
            syslog,
        }
    }

    fn w(&self) -> &Path {
        self.dir.path()
    }

    fn bin(&self, name: &str) -> String {
        self.w().join("bin").join(name).display().to_string()
    }

    /// `sh install.sh` from `bundle` as on a live host (ROOT unset), at most 60 s.
    fn install(&self, bundle: &Path) -> Output {
        sh(&bundle.join("install.sh"), None, Some(&self.fake), &[])
    }

    fn install_ok(&self, bundle: &Path) {
        assert_installed_live(&self.install(bundle), &self.fake);
    }

    /// Start sshd on this host's configuration in its private mount namespace.
    fn sshd(&self) -> NsSshd {
        let log = self.w().join(format!("sshd-{}.log", self.port));
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(NAMESPACE_SETUP)
            .arg("sh")
            .arg(self.w())
            .arg(sshd_path())
            .arg(&self.config)
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut s = NsSshd {
            child,
            port: self.port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", s.port)).is_err() {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("sshd exited ({status}): {}", s.log_text());
            }
            assert!(Instant::now() < deadline, "sshd is not listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// The records of the `record` command: one map of its environment per run.
    fn records(&self) -> Vec<BTreeMap<String, Vec<u8>>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.records)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension() == Some(OsStr::new("env")))
            .collect();
        names.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        names
            .iter()
            .map(|p| {
                let mut env: BTreeMap<String, Vec<u8>> = std::fs::read(p)
                    .unwrap()
                    .split(|b| *b == 0)
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let eq = kv.iter().position(|b| *b == b'=').unwrap();
                        (
                            String::from_utf8(kv[..eq].to_vec()).unwrap(),
                            kv[eq + 1..].to_vec(),
                        )
                    })
                    .collect();
                let uid = read(&p.with_extension("uid"));
                env.insert("(uid)".into(), uid.trim().as_bytes().to_vec());
                env
            })
            .collect()
    }

    /// Wait (at most 10 s) for `n` records, then make sure no more come (300 ms).
    fn wait_records(&self, n: usize) -> Vec<BTreeMap<String, Vec<u8>>> {
        let start = Instant::now();
        while self.records().len() < n {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} alert command run(s), expected {n}; syslog:\n{}",
                self.records().len(),
                self.syslog.all()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        let got = self.records();
        assert_eq!(got.len(), n, "more alert command runs than logins");
        got
    }
}

/// `ssh` with `key` and `cert` to the current user at 127.0.0.1:PORT running `true`: whether
/// it got in, and how long it took.
fn login(port: u16, key: &Path, cert: &Path) -> (bool, Duration) {
    let start = Instant::now();
    let mut c = ssh_login_command(key, cert, port, &current_user());
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let out = wait_bounded(&mut child, Duration::from_secs(60));
    let took = start.elapsed();
    if !out.status.success() {
        eprintln!("ssh login failed: {}", stderr(&out));
    }
    (out.status.success(), took)
}

/// What the hook's escape makes of a key ID (docs/hosts.md, section 5.2): letters, digits and
/// `. _ - : @ # + = , /` kept, every other byte as `\xHH`, at most 160 bytes, then `...`.
fn escaped(bytes: &[u8]) -> String {
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"._-:@#+=,/".contains(&b);
    let mut s: String = bytes
        .iter()
        .take(160)
        .map(|&b| {
            if safe(b) {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    if bytes.len() > 160 {
        s.push_str("...");
    }
    s
}

/// sshd's `Accepted publickey for USER from ADDR port P ssh2: TYPE-CERT KEYFP ID … (serial N)
/// CA TYPE CAFP` line for serial `serial`: (port, key fingerprint, CA fingerprint), each
/// login's in order.
fn accepted(log: &str, serial: u64) -> Vec<(String, String, String)> {
    let anchor = format!(" (serial {serial}) CA ");
    log.lines()
        .filter(|l| l.starts_with("Accepted publickey for ") && l.contains(&anchor))
        .map(|l| {
            let (head, ca) = l.rsplit_once(&anchor).unwrap();
            let ca_fp = ca.split(' ').nth(1).unwrap().to_string();
            let port = head
                .split_once(" port ")
                .unwrap()
                .1
                .split(' ')
                .next()
                .unwrap()
                .to_string();
            let key_fp = head
                .split_once("-CERT ")
                .unwrap()
                .1
                .split(' ')
                .next()
                .unwrap()
                .to_string();
            (port, key_fp, ca_fp)
        })
        .collect()
}

fn text(env: &BTreeMap<String, Vec<u8>>, k: &str) -> String {
    String::from_utf8(
        env.get(k)
            .unwrap_or_else(|| panic!("no {k} in {env:?}"))
            .clone(),
    )
    .unwrap()
}

/// The ledger's key ID for each serial (`log --json`).
fn ledger_key_ids(hsm: &Hsm) -> BTreeMap<u64, String> {
    let out = run(hsm.cmd().args(["log", "--json"]));
    assert_ok(&out, "log --json");
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] != "revocation")
        .map(|v| {
            (
                v["serial"].as_u64().unwrap(),
                v["key_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The alert command runs once per login (sshd checks the certificate twice: when it is
/// offered and when it is used; the second check is logged at auth.info as "checked again",
/// and runs nothing), as nobody, with the serial, key ID, user, client address and port, CA
/// and key fingerprints of the ledger record and of sshd's own `Accepted publickey` line; the
/// syslog line says the same; cloud-init.yaml carries the same hook.
fn once_per_login(use_pam: bool) {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let me = current_user();
    let host = Host::new(use_pam);
    let record = host.bin("record");
    let bundle = host_config(
        &hsm,
        host.w(),
        "bundle",
        &[
            "--user",
            &me,
            "--alert-command",
            &record,
            "--alert-timeout",
            "2s",
        ],
        Some(&host.ssh_dir),
    );
    let snippet = read(&bundle.join("sshd_config.d/breakglass-ca.conf"));
    assert!(snippet.contains(&format!(
        "    AuthorizedPrincipalsCommand {}/breakglass-ca-alert %u %s %F %f %i\n    AuthorizedPrincipalsCommandUser root\n",
        host.ssh_dir.display()
    )));
    host.install_ok(&bundle);
    let hook = host.ssh_dir.join("breakglass-ca-alert");
    assert_eq!(
        std::fs::metadata(&hook).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert_eq!(read(&hook), read(&bundle.join("breakglass-ca-alert")));
    if let Some((files, _)) = cloud_init_entries(&bundle.join("cloud-init.yaml")) {
        let entry = files
            .iter()
            .find(|f| f.0.ends_with("/breakglass-ca-alert"))
            .expect("cloud-init.yaml carries the hook");
        assert_eq!(entry.2, "0755");
        assert_eq!(entry.3, std::fs::read(&hook).unwrap());
        let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        assert!(
            names.iter().position(|n| n.ends_with("-alert"))
                < names.iter().position(|n| n.ends_with(".conf")),
            "the hook goes in before the snippet: {names:?}"
        );
    }
    let sshd = host.sshd();

    let keys = host.w().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let pubkey = keygen(&keys, "alice", &["-t", "ed25519"], "alice@laptop");
    assert_ok(&hsm.mint(&pubkey, &["-n", &me]), "mint");
    let (key, cert) = (pubkey.with_extension(""), cert_path(&pubkey));
    let ca_fp = fingerprint(&hsm);
    let ids = ledger_key_ids(&hsm);

    let (ok, took) = login(sshd.port, &key, &cert);
    assert!(ok, "login refused:\n{}", sshd.log_text());
    eprintln!("UsePAM {use_pam}: login with the alarm took {took:?}");
    host.wait_records(1);
    let (ok, took) = login(sshd.port, &key, &cert);
    assert!(ok, "second login refused:\n{}", sshd.log_text());
    eprintln!("UsePAM {use_pam}: second login took {took:?}");
    let records = host.wait_records(2);
    let log = sshd.log_text();
    let lines = accepted(&log, 1);
    assert_eq!(lines.len(), 2, "{log}");
    // sshd checked the certificate twice per login: the offer and the signature.
    assert_eq!(
        log.matches("Accepted certificate ID \"").count(),
        4,
        "{log}"
    );
    let alerts = host
        .syslog
        .wait_for(33, "emergency certificate: ", 2, Duration::from_secs(10));
    let again = host.syslog.wait_for(
        38,
        "checked again in the same connection",
        2,
        Duration::from_secs(10),
    );
    for (i, (env, (port, key_fp, sshd_ca))) in records.iter().zip(&lines).enumerate() {
        assert_eq!(text(env, "(uid)"), "65534", "the command runs as nobody");
        assert_eq!(text(env, "BREAKGLASS_USER"), me);
        assert_eq!(text(env, "BREAKGLASS_SERIAL"), "1");
        assert_eq!(text(env, "BREAKGLASS_KEY_ID"), ids[&1]);
        assert_eq!(text(env, "BREAKGLASS_KEY_ID_RAW"), ids[&1]);
        assert_eq!(text(env, "BREAKGLASS_CA_FINGERPRINT"), ca_fp);
        assert_eq!(&text(env, "BREAKGLASS_CA_FINGERPRINT"), sshd_ca);
        assert_eq!(text(env, "BREAKGLASS_CA_ROLE"), "this");
        assert_eq!(&text(env, "BREAKGLASS_KEY_FINGERPRINT"), key_fp);
        assert_eq!(text(env, "BREAKGLASS_CLIENT_ADDR"), "127.0.0.1");
        assert_eq!(&text(env, "BREAKGLASS_CLIENT_PORT"), port);
        let pid = text(env, "BREAKGLASS_SSHD_PID");
        assert!(pid.parse::<u32>().is_ok(), "{pid}");
        let fields = format!(
            "user={me} serial=1 key_id={} ca={ca_fp} ca_role=this from=127.0.0.1 port={port} key={key_fp} sshd_pid={pid}",
            ids[&1]
        );
        assert_eq!(
            text(env, "BREAKGLASS_MESSAGE"),
            format!("emergency certificate: {fields}")
        );
        assert_eq!(alerts[i], format!("emergency certificate: {fields}"), "{i}");
        assert_eq!(
            again[i],
            format!("emergency certificate checked again in the same connection: {fields}")
        );
        let mut names: Vec<&str> = env.keys().map(|k| k.as_str()).collect();
        names.retain(|k| !k.starts_with("BREAKGLASS_") && *k != "(uid)");
        assert_eq!(names, ["HOME", "LANG", "PATH", "PWD"], "{env:?}");
    }
    assert_ne!(lines[0].0, lines[1].0, "two connections, two client ports");
    // PAM was in use (or not): its session lines reach the same syslog socket.
    assert_eq!(
        host.syslog
            .all()
            .contains("pam_unix(sshd:session): session opened for user"),
        use_pam,
        "{}",
        host.syslog.all()
    );
    eprintln!("sshd:\n{log}\nsyslog:\n{}", host.syslog.all());
    // The marks are in the test tree's /run, one per connection.
    let marks = std::fs::read_dir(host.w().join("run/breakglass-ca"))
        .unwrap()
        .count();
    assert_eq!(marks, 2);
}

#[test]
fn the_alert_command_runs_once_per_login_use_pam_no() {
    once_per_login(false);
}

#[test]
fn the_alert_command_runs_once_per_login_use_pam_yes() {
    once_per_login(true);
}

/// With an alert command that exits 1 (and --no-alert-syslog), one that sleeps for ever and
/// one that does not exist, every login gets in, within the time limit and a margin (the
/// hook does not wait for the command at all), and the failure is logged to syslog
/// (auth.alert): the exit status; the kill after the time limit (and the sleeping process is
/// gone); the missing file. With UsePAM no and yes.
fn failures_never_stop_the_login(use_pam: bool) {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let me = current_user();
    let host = Host::new(use_pam);
    let keys = host.w().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let pubkey = keygen(&keys, "bob", &["-t", "ed25519"], "bob@laptop");
    assert_ok(&hsm.mint(&pubkey, &["-n", &me, "-V", "30m"]), "mint");
    let (key, cert) = (pubkey.with_extension(""), cert_path(&pubkey));
    let missing = host.bin("does-not-exist");
    let cases = [
        (host.bin("fail"), true, "alert command failed: exit 1: "),
        (
            host.bin("hang"),
            false,
            "alert command failed: killed after the time limit of 2s: ",
        ),
        (
            missing.clone(),
            false,
            "alert command failed: it is missing or not executable: ",
        ),
    ];
    let mut sshd = None;
    for (i, (cmd, no_syslog, failure)) in cases.iter().enumerate() {
        let mut args = vec![
            "--user",
            &me,
            "--alert-command",
            cmd,
            "--alert-timeout",
            "2s",
        ];
        if *no_syslog {
            args.push("--no-alert-syslog");
        }
        let bundle = host_config(
            &hsm,
            host.w(),
            &format!("bundle-{i}"),
            &args,
            Some(&host.ssh_dir),
        );
        let o = host.install(&bundle);
        assert_ok(&o, "install.sh");
        if *cmd == missing {
            assert!(
                stderr(&o).contains(&format!(
                    "note: the alert command {missing} is not an executable file (yet)"
                )),
                "{}",
                stderr(&o)
            );
        }
        // sshd reads the hook anew at every check: one sshd for all three.
        let s = sshd.get_or_insert_with(|| host.sshd());
        let before = host.syslog.messages(33).len();
        let start = Instant::now();
        let (ok, took) = login(s.port, &key, &cert);
        assert!(ok, "{cmd}: the login was refused:\n{}", s.log_text());
        eprintln!("UsePAM {use_pam}, {cmd}: the login took {took:?}");
        assert!(took < TIMEOUT + MARGIN, "{cmd}: the login took {took:?}");
        let found = host
            .syslog
            .wait_for(33, failure, 1, Duration::from_secs(15));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains(&format!("command={cmd} serial=1 sshd_pid=")),
            "{found:?}"
        );
        let alerts: Vec<String> = host.syslog.messages(33)[before..]
            .iter()
            .filter(|m| m.starts_with("emergency certificate: "))
            .cloned()
            .collect();
        assert_eq!(alerts.len(), usize::from(!*no_syslog), "{alerts:?}");
        if cmd.ends_with("/hang") {
            let waited = start.elapsed();
            assert!(waited >= TIMEOUT, "killed after {waited:?}");
            eprintln!("UsePAM {use_pam}: the hanging command was reported killed {waited:?} after the login began");
            let pid = read(&host.records.join("hang.pid")).trim().to_string();
            let gone = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists() {
                assert!(
                    gone.elapsed() < Duration::from_secs(10),
                    "the hanging command {pid} still runs"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    eprintln!("syslog:\n{}", host.syslog.all());
}

#[test]
fn a_failing_hanging_or_missing_command_never_stops_the_login_use_pam_no() {
    failures_never_stop_the_login(false);
}

#[test]
fn a_failing_hanging_or_missing_command_never_stops_the_login_use_pam_yes() {
    failures_never_stop_the_login(true);
}

/// Key IDs that would run commands if anything in the hook evaluated them: one minted with
/// `-I` (all mint accepts: `$(`, backticks, `;`, quotes, `%`, a backslash), one signed by
/// `ssh-keygen -s` with a file CA trusted as a backup CA (spaces, double quotes, a line feed,
/// control bytes, UTF-8, `%` tokens, over 160 bytes), and one of 255 `%` (the longest escaped
/// form: the syslog line still ends with its last field). Both log in; nothing runs (no canary
/// file appears); the alert command gets the exact bytes in BREAKGLASS_KEY_ID_RAW and the
/// escaped form in BREAKGLASS_KEY_ID; the syslog line holds the escaped form only (every
/// datagram printable ASCII, every line whole); the backup CA's certificate alerts too, as
/// `ca_role=backup`.
#[test]
fn hostile_key_ids_run_nothing_and_are_logged_escaped() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let me = current_user();
    let host = Host::new(false);
    let w = host.w().to_path_buf();
    let file_ca = w.join("file-ca");
    let o = run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "file-ca", "-f"])
        .arg(&file_ca));
    assert_ok(&o, "ssh-keygen file CA");
    assert_ok(
        &run(hsm
            .cmd()
            .arg("add-backup-ca")
            .arg(file_ca.with_extension("pub"))),
        "add-backup-ca",
    );
    let record = host.bin("record");
    let bundle = host_config(
        &hsm,
        &w,
        "bundle",
        &["--user", &me, "--alert-command", &record],
        Some(&host.ssh_dir),
    );
    host.install_ok(&bundle);
    let sshd = host.sshd();
    let keys = w.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let canary = |n: u32| w.join(format!("c{n}"));

    let minted_id = format!(
        "pwn$(touch${{IFS}}{})`touch${{IFS}}{}`;touch${{IFS}}{};'q'%u%s%%\\",
        canary(1).display(),
        canary(2).display(),
        canary(3).display()
    );
    assert!(minted_id.len() <= 255, "{}", minted_id.len());
    let a = keygen(&keys, "a", &["-t", "ed25519"], "a@laptop");
    assert_ok(
        &hsm.mint(&a, &["-n", &me, "-I", &minted_id]),
        "mint -I hostile",
    );

    let mut signed_id = format!(
        "evil \"quoted\" $(touch {}) `touch {}` ; %u %i %% \\ \nsecond line \x01\x1b[2K é ",
        canary(4).display(),
        canary(5).display()
    )
    .into_bytes();
    signed_id.extend(std::iter::repeat_n(b'A', 200));
    let b = keygen(&keys, "b", &["-t", "ed25519"], "b@laptop");
    let o = run(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&file_ca)
        .arg("-I")
        .arg(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
            &signed_id,
        ))
        .args(["-n", &me, "-V", "-5m:+30m", "-z", "77"])
        .arg(&b));
    assert_ok(&o, "ssh-keygen -s file CA");
    let longest = vec![b'%'; 255];
    let c = keygen(&keys, "c", &["-t", "ed25519"], "c@laptop");
    let o = run(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&file_ca)
        .arg("-I")
        .arg(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
            &longest,
        ))
        .args(["-n", &me, "-V", "-5m:+30m", "-z", "78"])
        .arg(&c));
    assert_ok(&o, "ssh-keygen -s file CA, 255 %");

    for (pubkey, serial) in [(&a, "1"), (&b, "77"), (&c, "78")] {
        let (ok, _) = login(sshd.port, &pubkey.with_extension(""), &cert_path(pubkey));
        assert!(ok, "serial {serial} refused:\n{}", sshd.log_text());
    }
    let records = host.wait_records(3);
    let alerts = host
        .syslog
        .wait_for(33, "emergency certificate: ", 3, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    for n in 1..=5 {
        assert!(
            !canary(n).exists(),
            "a key ID ran a command: {}",
            canary(n).display()
        );
    }
    let file_ca_fp = {
        let o = run(Command::new("ssh-keygen")
            .arg("-lf")
            .arg(file_ca.with_extension("pub")));
        stdout(&o).split(' ').nth(1).unwrap().to_string()
    };
    for (serial, id, role, ca) in [
        (
            "1",
            minted_id.as_bytes().to_vec(),
            "this",
            fingerprint(&hsm),
        ),
        ("77", signed_id.clone(), "backup", file_ca_fp.clone()),
        ("78", longest.clone(), "backup", file_ca_fp),
    ] {
        let env = records
            .iter()
            .find(|e| e["BREAKGLASS_SERIAL"] == serial.as_bytes())
            .unwrap_or_else(|| panic!("no record for serial {serial}"));
        assert_eq!(env["BREAKGLASS_KEY_ID_RAW"], id, "serial {serial}");
        assert_eq!(text(env, "BREAKGLASS_KEY_ID"), escaped(&id));
        assert_eq!(text(env, "BREAKGLASS_CA_ROLE"), role);
        assert_eq!(text(env, "BREAKGLASS_CA_FINGERPRINT"), ca);
        let line = alerts
            .iter()
            .find(|m| m.contains(&format!(" serial={serial} ")))
            .unwrap();
        assert!(
            line.contains(&format!(" key_id={} ca={ca} ca_role={role} ", escaped(&id))),
            "{line}"
        );
    }
    assert!(escaped(&signed_id).ends_with("AAA..."));
    // The longest escaped form: 160 bytes as \x25, and the line is whole (logger keeps 1 KiB).
    assert_eq!(escaped(&longest), format!("{}...", r"\x25".repeat(160)));
    let again = host.syslog.wait_for(
        38,
        &format!("key_id={}", escaped(&longest)),
        1,
        Duration::from_secs(10),
    );
    for line in alerts.iter().chain(&again) {
        let pid = line.rsplit_once(" sshd_pid=").unwrap().1;
        assert!(pid.parse::<u32>().is_ok(), "cut short: {line}");
        assert!(line.len() < 1024, "{} characters: {line}", line.len());
    }
    eprintln!("sshd:\n{}\nsyslog:\n{}", sshd.log_text(), host.syslog.all());
}

/// install.sh on a live host refuses a hook sshd would refuse to run (a directory above it
/// writable by its group), and a file at the snippet's AuthorizedPrincipalsFile (it would be
/// read before the hook): the snippet goes away again, sshd is not reloaded. Into an image
/// tree (ROOT=) it only warns.
#[test]
fn install_sh_refuses_a_hook_sshd_would_not_run() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let me = current_user();
    let host = Host::new(false);
    let bundle = host_config(
        &hsm,
        host.w(),
        "bundle",
        &["--user", &me, "--alert-syslog"],
        Some(&host.ssh_dir),
    );
    let snippet = host.ssh_dir.join("sshd_config.d/breakglass-ca.conf");
    let set_mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let calls = || host.fake.calls_text();

    set_mode(&host.ssh_dir, 0o775);
    let o = host.install(&bundle);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "ERROR: {} can be written by others than root (drwxrwxr-x",
            host.ssh_dir.display()
        )) && err.contains("sshd was NOT reloaded")
            && err.contains("is removed again"),
        "{err}"
    );
    assert!(!snippet.exists());
    assert!(!calls().contains("reload"), "{}", calls());

    set_mode(&host.ssh_dir, 0o755);
    let none = host.ssh_dir.join("breakglass-ca-principals/.none");
    std::fs::write(&none, format!("{me}\n")).unwrap();
    let o = host.install(&bundle);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "ERROR: {} exists; sshd would read it before the alarm hook",
            none.display()
        )),
        "{}",
        stderr(&o)
    );
    assert!(!snippet.exists());
    std::fs::remove_file(&none).unwrap();
    host.install_ok(&bundle);
    assert!(snippet.exists());

    // Into an image tree: a warning, and the files are in place.
    let root = host.w().join("image");
    std::fs::create_dir(&root).unwrap();
    set_mode(&root, 0o777);
    let o = Command::new("sh")
        .arg(bundle.join("install.sh"))
        .env("ROOT", &root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ok(&o, "ROOT=DIR sh install.sh");
    assert!(
        stderr(&o).contains(&format!(
            "ERROR: {} can be written by others than root",
            root.display()
        )) && stderr(&o).contains("WARNING: the host gets the owners and modes of this image tree"),
        "{}",
        stderr(&o)
    );
    let hook = root
        .join(host.ssh_dir.strip_prefix("/").unwrap())
        .join("breakglass-ca-alert");
    assert_eq!(
        std::fs::metadata(&hook).unwrap().permissions().mode() & 0o7777,
        0o755
    );
}

/// The example alert command of docs/hosts.md, section 5.2, exactly as printed but for its
/// webhook URL (a listener of this test on 127.0.0.1), installed as the section says (group
/// of nobody, 0750): one emergency login posts one `text=HOST: emergency certificate: …`
/// with the syslog line's text.
#[test]
fn the_documented_webhook_command_pages() {
    if !tools() || !require(&["curl"]) {
        return;
    }
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/hosts.md")).unwrap();
    let start = doc
        .find("```sh\n#!/bin/sh\n# /usr/local/sbin/breakglass-page")
        .expect("docs/hosts.md holds the example alert command")
        + "```sh\n".len();
    let script = &doc[start..start + doc[start..].find("```").unwrap()];
    let url_line = "URL='https://hooks.example.org/services/T000/B000/XXXXXXXX'\n";
    assert!(script.contains(url_line), "{script}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || -> Vec<String> {
        use std::io::{Read, Write};
        let mut bodies = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) && bodies.is_empty() {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = conn.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if body.len() >= len {
                        assert!(head.starts_with("POST /hook "), "{head}");
                        bodies.push(body.to_string());
                        break;
                    }
                }
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
        bodies
    });

    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let me = current_user();
    let host = Host::new(false);
    let page = host.w().join("bin/breakglass-page");
    std::fs::write(
        &page,
        script.replace(url_line, &format!("URL='http://127.0.0.1:{port}/hook'\n")),
    )
    .unwrap();
    let o = run(Command::new("sh")
        .arg("-c")
        .arg("chgrp \"$(id -gn nobody)\" \"$1\" && chmod 0750 \"$1\"")
        .arg("sh")
        .arg(&page));
    assert_ok(&o, "chgrp/chmod as docs/hosts.md says");
    let page = page.display().to_string();
    let bundle = host_config(
        &hsm,
        host.w(),
        "bundle",
        &["--user", &me, "--alert-command", &page],
        Some(&host.ssh_dir),
    );
    host.install_ok(&bundle);
    let sshd = host.sshd();
    let keys = host.w().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let pubkey = keygen(&keys, "carol", &["-t", "ed25519"], "carol@laptop");
    assert_ok(&hsm.mint(&pubkey, &["-n", &me]), "mint");
    let (ok, _) = login(sshd.port, &pubkey.with_extension(""), &cert_path(&pubkey));
    assert!(ok, "login refused:\n{}", sshd.log_text());
    let bodies = server.join().unwrap();
    assert_eq!(
        bodies.len(),
        1,
        "no page arrived; syslog:\n{}",
        host.syslog.all()
    );
    let text = form_value(&bodies[0], "text");
    let alert = host
        .syslog
        .wait_for(33, "emergency certificate: ", 1, Duration::from_secs(10));
    let hostname = stdout(&run(Command::new("uname").arg("-n")));
    assert_eq!(text, format!("{}: {}", hostname.trim(), alert[0]));
    assert!(
        host.syslog
            .messages(33)
            .iter()
            .all(|m| !m.contains("failed")),
        "{}",
        host.syslog.all()
    );
}

/// The value of `key` in an `application/x-www-form-urlencoded` body.
fn form_value(body: &str, key: &str) -> String {
    let raw = body
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {body}"));
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&raw[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The `host-config --help` examples, run as printed (each in a directory of its own): the
/// first gives the hook with syslog and no command, the second the hook with the command, the
/// third no hook and the snippet of 0.3.0; the fourth and fifth, on a machine without the
/// state directory or the token (no BREAKGLASS_CA_STATE_DIR or SOFTHSM2_CONF, an empty
/// XDG_STATE_HOME), from `ca.pub` and a backup CA's file, and with the custodian's KRL, which
/// is baked as it is.
#[test]
fn host_config_help_examples_run_as_printed() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let help = stdout(&run(hsm.cmd().args(["host-config", "--help"])));
    let examples: Vec<&str> = help
        .lines()
        .filter_map(|l| l.strip_prefix("  breakglass-ca "))
        .collect();
    assert_eq!(examples.len(), 5, "{help}");
    let ca_pub = hsm.ca_pub_file();
    let empty_state_home = hsm.path("empty-state-home");
    std::fs::create_dir(&empty_state_home).unwrap();
    for (i, example) in examples.iter().enumerate() {
        let cwd = hsm.path(&format!("example-{i}"));
        std::fs::create_dir(&cwd).unwrap();
        let mut c = hsm.cmd();
        c.env_remove("BREAKGLASS_CA_PIN_FILE").current_dir(&cwd);
        if example.contains("--ca-pubkey") {
            // What the custodian handed over, by the names the examples use.
            std::fs::copy(&ca_pub, cwd.join("ca.pub")).unwrap();
            keygen(&cwd, "backup", &["-t", "ed25519"], "vault-b");
            assert_ok(
                &run(hsm.cmd().args(["krl", "-o"]).arg(cwd.join("ca.krl"))),
                "krl -o",
            );
            c.env_remove("BREAKGLASS_CA_STATE_DIR")
                .env_remove("SOFTHSM2_CONF")
                .env("XDG_STATE_HOME", &empty_state_home);
        }
        let o = run(c.args(example.split(' ')));
        assert_ok(&o, example);
        let words: Vec<&str> = example.split(' ').collect();
        let at = words.iter().position(|w| *w == "--out").unwrap();
        let out = cwd.join(words[at + 1]);
        let hook = out.join("breakglass-ca-alert");
        let snippet = read(&out.join("sshd_config.d/breakglass-ca.conf"));
        let bundle = read(&out.join("breakglass-ca.pub"));
        match i {
            0 | 3 | 4 => {
                let h = read(&hook);
                assert!(h.contains("\nALERT_SYSLOG=yes\n") && h.contains("\nALERT_COMMAND=''\n"));
            }
            1 => assert!(read(&hook).contains("\nALERT_COMMAND='/usr/local/sbin/page'\n")),
            _ => {
                assert!(!hook.exists());
                assert!(snippet.contains(
                    "\n    AuthorizedPrincipalsFile /etc/ssh/breakglass-ca-principals/%u\n"
                ));
                assert!(!snippet.contains("AuthorizedPrincipalsCommand"));
            }
        }
        assert_eq!(
            bundle.lines().count(),
            if i == 3 { 2 } else { 1 },
            "{bundle}"
        );
        if i == 4 {
            assert_eq!(
                std::fs::read(out.join("breakglass-ca.krl")).unwrap(),
                std::fs::read(cwd.join("ca.krl")).unwrap()
            );
        }
        assert_eq!(
            stderr(&o).contains("(given on the command line)"),
            i >= 3,
            "{}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("breakglass-ca-alert") == (i != 2),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(std::fs::read_dir(&empty_state_home).unwrap().count(), 0);
}
