//! Shared test harness: a private SoftHSM2 token per test, the `breakglass-ca` binary run with
//! a clean environment, requester keys made by ssh-keygen, and the rule that in CI (`CI=true`)
//! a missing tool is a failure, never a skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const PIN: &str = "123456";
pub const SO_PIN: &str = "87654321";

/// Check the tools a test needs. Outside CI a missing tool skips the test with a printed
/// reason; in CI it fails it.
pub fn require(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !Path::new(t).exists() && which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "missing {} (install with: bash scripts/test.sh)",
        missing.join(", ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and {msg}: hsm-tests must run in CI");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// Like [`require`], for tests that must run as root (namespaces).
pub fn require_root(why: &str) -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&out.stdout).trim() == "0" {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and not root: {why}");
    }
    eprintln!("SKIPPED: not root: {why}");
    false
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|p| p.join(tool))
            .find(|p| p.exists())
    })
}

pub fn sshd_path() -> PathBuf {
    which("sshd").unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd"))
}

/// A private SoftHSM2 installation with one token, a state directory and a PIN file.
pub struct Hsm {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub state: PathBuf,
    pub pin_file: PathBuf,
    pub label: String,
}

impl Hsm {
    /// A fresh token labelled `label` in its own SoftHSM2 store.
    pub fn new(label: &str) -> Hsm {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        write_softhsm_conf(&conf, &tokens);
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        // private, as a custodian keeps it (a readable PIN file draws a warning)
        std::fs::set_permissions(
            &pin_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let hsm = Hsm {
            state: dir.path().join("state"),
            dir,
            conf,
            pin_file,
            label: label.to_string(),
        };
        hsm.add_token(label);
        hsm
    }

    /// Initialise another token in the same store.
    pub fn add_token(&self, label: &str) {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                SO_PIN,
                "--pin",
                PIN,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm2-util: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn uri(&self) -> String {
        format!("pkcs11:token={}?module-path={MODULE}", self.label)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with a clean environment: this token, state dir and PIN file.
    pub fn cmd(&self) -> Command {
        self.env(Command::new(env!("CARGO_BIN_EXE_breakglass-ca")))
    }

    /// The binary in a new session without a controlling terminal (`setsid -w`).
    pub fn cmd_without_terminal(&self) -> Command {
        let mut c = Command::new("setsid");
        c.arg("-w").arg(env!("CARGO_BIN_EXE_breakglass-ca"));
        self.env(c)
    }

    fn env(&self, mut c: Command) -> Command {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BREAKGLASS_CA") {
                c.env_remove(k);
            }
        }
        c.env("SOFTHSM2_CONF", &self.conf)
            .env("BREAKGLASS_CA_STATE_DIR", &self.state)
            .env("BREAKGLASS_CA_PIN_FILE", &self.pin_file)
            .stdin(Stdio::null());
        c
    }

    /// `breakglass-ca --ca URI init --algorithm ALG`, which must succeed; returns the CA line.
    pub fn init(&self, algorithm: &str) -> String {
        let out = run(self
            .cmd()
            .args(["--ca", &self.uri(), "init", "--algorithm", algorithm]));
        assert_ok(&out, "init");
        stdout(&out).trim().to_string()
    }

    /// Mint for `pubkey` with principal `principal`; returns the output.
    pub fn mint(&self, pubkey: &Path, extra: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(["mint", "--reason", "INC-42 test"])
            .args(extra)
            .arg(pubkey);
        run(&mut c)
    }

    /// The CA public key line, written to a file for TrustedUserCAKeys.
    pub fn ca_pub_file(&self) -> PathBuf {
        let path = self.path("ca.pub");
        let out = run(self.cmd().args(["pubkey", "-o"]).arg(&path));
        assert_ok(&out, "pubkey");
        path
    }
}

pub fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

/// Assert a failure with this exit code whose stderr contains `needle` and a hint line.
pub fn assert_fails(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code} with '{needle}', got:\n{err}"
    );
    assert!(err.contains(needle), "stderr lacks '{needle}':\n{err}");
    assert!(
        !err.contains("panicked"),
        "a panic reached the user:\n{err}"
    );
    assert!(!err.contains(PIN), "the PIN appeared in the output:\n{err}");
}

/// A requester key made by ssh-keygen: `ssh-keygen -t TYPE [-b BITS]`. Returns the .pub path.
pub fn keygen(dir: &Path, name: &str, args: &[&str], comment: &str) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", comment, "-f"])
        .arg(&key)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    key.with_extension("pub")
}

/// The `-cert.pub` path ssh-keygen's convention gives for a `.pub` path.
pub fn cert_path(pubkey: &Path) -> PathBuf {
    let s = pubkey.to_string_lossy();
    PathBuf::from(format!("{}-cert.pub", s.strip_suffix(".pub").unwrap()))
}

/// `ssh-keygen -L -f CERT`: OpenSSH parses the certificate and checks its CA signature.
pub fn ssh_keygen_list(cert: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(cert)
        .output()
        .unwrap();
    assert_ok(&out, &format!("ssh-keygen -L -f {}", cert.display()));
    stdout(&out)
}

/// The serial in an `ssh-keygen -L` listing.
pub fn listed_serial(listed: &str) -> u64 {
    listed
        .lines()
        .find_map(|l| l.trim().strip_prefix("Serial: "))
        .unwrap()
        .parse()
        .unwrap()
}

impl Hsm {
    /// `PROGRAM ARGS... breakglass-ca` with the clean environment of [`Hsm::cmd`], for running
    /// the binary through `nohup`, a pseudo-terminal driver and the like.
    pub fn cmd_through(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args).arg(env!("CARGO_BIN_EXE_breakglass-ca"));
        self.env(c)
    }

    /// Another program (a driver such as python3 or sh) with this token's clean environment.
    pub fn cmd_with(&self, program: &str) -> Command {
        self.env(Command::new(program))
    }
}

/// Every entry of a directory (not recursive): name -> (mode, content or link target).
/// Two equal snapshots mean the directory is byte-for-byte unchanged.
pub fn snapshot_state(dir: &Path) -> std::collections::BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut all = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return all;
    };
    for e in entries {
        let e = e.unwrap();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        let content = if meta.file_type().is_symlink() {
            std::fs::read_link(e.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
                .into_bytes()
        } else if meta.is_file() {
            std::fs::read(e.path()).unwrap()
        } else {
            Vec::new()
        };
        all.insert(
            e.file_name().to_string_lossy().into_owned(),
            (meta.permissions().mode(), content),
        );
    }
    all
}

/// Wait for a child at most `limit`; kill it (SIGKILL) if it is still running then.
pub fn wait_bounded(child: &mut std::process::Child, limit: std::time::Duration) -> Output {
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a child ran longer than {limit:?} and was killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    use std::io::Read;
    if let Some(mut o) = child.stdout.take() {
        o.read_to_end(&mut stdout).unwrap();
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_end(&mut stderr).unwrap();
    }
    Output {
        status: child.wait().unwrap(),
        stdout,
        stderr,
    }
}

/// The auditor's script of docs/ledger.md section 7.2, exactly as the document prints it.
pub fn auditor_script() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ledger.md")).unwrap();
    let start = doc
        .find("```sh\n#!/bin/sh\n# Check a breakglass-ca ledger bundle")
        .expect("docs/ledger.md holds the auditor's script")
        + "```sh\n".len();
    let len = doc[start..].find("```").unwrap();
    doc[start..start + len].to_string()
}

/// Run the auditor's script (see [`auditor_script`]) with `sh` inside `bundle`.
pub fn run_auditor_script(bundle: &Path) -> Output {
    let script = bundle.join("..").join("audit.sh");
    std::fs::write(&script, auditor_script()).unwrap();
    run(Command::new("sh").arg(&script).current_dir(bundle))
}

/// The state directory and SoftHSM2 token made by breakglass-ca 0.1.0
/// (`hsm-tests/fixtures/ledger-0.1.0`, see its README), copied into a new temporary directory
/// with the modes the tool asks for: three format-1 records and their three checkpoints.
pub fn fixture_0_1_0() -> Hsm {
    use std::os::unix::fs::PermissionsExt as _;
    let from = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/hsm-tests/fixtures/ledger-0.1.0"
    ));
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("cp")
        .arg("-r")
        .arg(from.join("state"))
        .arg(from.join("tokens"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = dir.path().join("state");
    // 0.1.0's init left an empty ledger.lock (git keeps no empty files here).
    std::fs::write(state.join("ledger.lock"), b"").unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    for e in std::fs::read_dir(&state).unwrap() {
        std::fs::set_permissions(e.unwrap().path(), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    let conf = dir.path().join("softhsm2.conf");
    write_softhsm_conf(&conf, &dir.path().join("tokens"));
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    Hsm {
        state,
        dir,
        conf,
        pin_file,
        label: "fixture-010".into(),
    }
}

/// A tiny deterministic generator, so a failing run can be repeated.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Every file under `dir` (recursively), relative path -> content: for putting a token store
/// back after a kill (SoftHSM's own store is not crash-safe; see hsm-tests/README.md).
pub fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out
}

/// Put back what [`snapshot_dir`] took of `dir`.
pub fn restore_dir(snapshot: &[(PathBuf, Vec<u8>)], dir: &Path) {
    for (rel, content) in snapshot {
        std::fs::write(dir.join(rel), content).unwrap();
    }
}

/// serial -> certificate line, from `log --json` (revocation records, which hold no serial,
/// are skipped).
pub fn ledger_certs(hsm: &Hsm) -> std::collections::BTreeMap<u64, String> {
    let out = run(hsm.cmd().args(["log", "--json"]));
    assert_ok(&out, "log --json");
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] != "revocation")
        .map(|v| {
            (
                v["serial"].as_u64().unwrap(),
                v["certificate"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A new directory under `target/` (`CARGO_TARGET_TMPDIR`), for trees sshd reads and
/// install.sh writes (not /tmp).
pub fn target_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// The version in a KRL file's header: the big-endian u64 at byte 12.
pub fn krl_version_of(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    u64::from_be_bytes(bytes[12..20].try_into().unwrap())
}

/// `breakglass-ca revoke ARGS`, which must succeed; returns stdout.
pub fn revoke_ok(hsm: &Hsm, args: &[&str]) -> String {
    let out = run(hsm.cmd().arg("revoke").args(args));
    assert_ok(&out, &format!("revoke {}", args.join(" ")));
    stdout(&out)
}

/// Write a SoftHSM2 config at `conf` whose token store is `tokens`.
pub fn write_softhsm_conf(conf: &Path, tokens: &Path) {
    std::fs::write(
        conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
}

impl Hsm {
    /// A SoftHSM2 config (for `SOFTHSM2_CONF`) over an empty token store: the token not
    /// plugged in.
    pub fn unplugged(&self) -> PathBuf {
        let tokens = self.path("no-tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = self.path("unplugged.conf");
        write_softhsm_conf(&conf, &tokens);
        conf
    }
}

/// The PATH with this build's binary first, so that `breakglass-ca` in an example is it.
pub fn path_with_binary() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_breakglass-ca"))
        .parent()
        .unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// splitmix64: a tiny seedable generator, deterministic for a seed (picture noise, signal
/// delays); not for anything secret.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
