//! Live hosts for `install.sh` under `target/`: an ssh directory with its own `sshd_config`,
//! fake `systemctl` and `service` commands that record their calls (the real sshd stays on
//! PATH for install.sh's `sshd -t` and `sshd -T`), and `sh install.sh` bounded in time.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;
use crate::hosts::{host_config, sshd_config};
use crate::sshd::{free_port, Sshd};

/// What the tests that run install.sh on a host tree with a real sshd need; `extra` are the
/// test's own.
pub fn require_host_tools(extra: &[&str]) -> bool {
    let mut tools = vec![
        "softhsm2-util",
        "ssh-keygen",
        "ssh",
        "sshd",
        "base64",
        "od",
        "sync",
    ];
    tools.extend_from_slice(extra);
    tools.push(MODULE);
    require(&tools)
}

/// Fake `systemctl` and `service` in `bin` (0755), each appending `NAME ARGS` to `calls`.
pub struct FakeReload {
    pub bin: PathBuf,
    pub calls: PathBuf,
}

impl FakeReload {
    /// Make them in `dir/fake-bin`, recording to `dir/calls.log`.
    pub fn new(dir: &Path) -> FakeReload {
        let bin = dir.join("fake-bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        for name in ["systemctl", "service"] {
            let p = bin.join(name);
            std::fs::write(
                &p,
                format!("#!/bin/sh\necho \"{name} $*\" >>\"$FAKE_CALLS\"\n"),
            )
            .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        FakeReload {
            bin,
            calls: dir.join("calls.log"),
        }
    }

    /// The calls recorded so far ("" before the first).
    pub fn calls_text(&self) -> String {
        std::fs::read_to_string(&self.calls).unwrap_or_default()
    }
}

/// Put the fake commands in `bin` first on `c`'s PATH and have them record to `calls`.
pub fn fake_first_on_path<'c>(c: &'c mut Command, bin: &Path, calls: &Path) -> &'c mut Command {
    c.env(
        "PATH",
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
    .env("FAKE_CALLS", calls)
}

/// `sh SCRIPT ARGS...` at most 60 s: with `ROOT` set to `root` (an image tree), or unset (a
/// live host), with the fake reload commands of `fake` (if any) first on PATH.
pub fn sh(
    script: &Path,
    root: Option<&Path>,
    fake: Option<&FakeReload>,
    args: &[&OsStr],
) -> Output {
    let mut c = Command::new("sh");
    c.arg(script)
        .args(args)
        .env_remove("ROOT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(r) = root {
        c.env("ROOT", r);
    }
    if let Some(f) = fake {
        fake_first_on_path(&mut c, &f.bin, &f.calls);
    }
    let mut child = c.spawn().unwrap();
    wait_bounded(&mut child, Duration::from_secs(60))
}

/// `o`, a live `sh install.sh`, succeeded: checked by the real `sshd -t` and `sshd -T`, and
/// reloaded through `fake`.
pub fn assert_installed_live(o: &Output, fake: &FakeReload) {
    assert_ok(o, "sh install.sh (live, real sshd -t and -T)");
    assert!(
        stderr(o).contains("sshd checked and reloaded"),
        "{}",
        stderr(o)
    );
    assert!(
        fake.calls_text().contains("systemctl reload ssh"),
        "{}",
        fake.calls_text()
    );
}

/// A host: an ssh directory under `target/` with its own `sshd_config` (listener, host key,
/// `LogLevel VERBOSE`, `UsePAM`, the `Include` of `sshd_config.d`), where `install.sh`
/// installs as on a live host, with fake reload commands.
pub struct LiveHost {
    _dir: tempfile::TempDir,
    pub ssh_dir: PathBuf,
    pub port: u16,
    pub config: PathBuf,
    pub fake: FakeReload,
}

impl LiveHost {
    pub fn new(user: &str) -> LiveHost {
        let dir = target_dir();
        let ssh_dir = dir.path().join("etc-ssh");
        std::fs::create_dir(&ssh_dir).unwrap();
        let port = free_port();
        let config = sshd_config(&ssh_dir, port, &ssh_dir, user, true);
        let fake = FakeReload::new(dir.path());
        LiveHost {
            _dir: dir,
            ssh_dir,
            port,
            config,
            fake,
        }
    }

    /// Where install.sh puts the KRL.
    pub fn krl(&self) -> PathBuf {
        self.ssh_dir.join("breakglass-ca.krl")
    }

    /// `sh BUNDLE/install.sh ARGS` as on a live host (ROOT unset), at most 60 s.
    pub fn install(&self, bundle: &Path, args: &[&OsStr]) -> Output {
        sh(&bundle.join("install.sh"), None, Some(&self.fake), args)
    }

    /// `sh BUNDLE/install.sh`, which must install, check and reload.
    pub fn install_ok(&self, bundle: &Path) {
        assert_installed_live(&self.install(bundle, &[]), &self.fake);
    }

    /// `sh BUNDLE/install.sh --krl FILE` (ROOT unset).
    pub fn install_krl(&self, bundle: &Path, file: &Path) -> Output {
        self.install(bundle, &[OsStr::new("--krl"), file.as_os_str()])
    }

    /// Start a real sshd on this host's configuration.
    pub fn sshd(&self) -> Sshd {
        Sshd::from_config(target_dir(), self.port, &self.config)
    }
}

/// `host-config --user breakglass --ssh-dir /etc/ssh` into `w/host`, then `ROOT=w/root sh
/// install.sh` into an image tree, which must succeed: (its install.sh, the root).
pub fn installed_image(hsm: &Hsm, w: &Path) -> (PathBuf, PathBuf) {
    let out = host_config(
        hsm,
        w,
        "host",
        &["--user", "breakglass"],
        Some(Path::new("/etc/ssh")),
    );
    let script = out.join("install.sh");
    let root = w.join("root");
    std::fs::create_dir(&root).unwrap();
    assert_ok(
        &sh(&script, Some(&root), None, &[]),
        "ROOT=DIR sh install.sh",
    );
    (script, root)
}
