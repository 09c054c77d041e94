//! A real OpenSSH server on 127.0.0.1 for the tests: started as the current user on a free
//! port, told which CA keys and principals to trust, and killed by PID when dropped.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::sshd_path;

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
    pub log: PathBuf,
    pub user: String,
}

pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// With `UsePAM no`, sshd refuses accounts whose password field is locked (`!`); root in some
/// images is. PAM's account check does not, so use PAM then (only possible as root).
pub fn needs_pam(user: &str) -> bool {
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    shadow
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{user}:")))
        .is_some_and(|rest| rest.starts_with('!'))
}

/// `ssh -i KEY -o CertificateFile=CERT -p PORT USER@127.0.0.1 true`, with no configuration
/// file, known hosts, agent or prompt, and a 10 s connect timeout.
pub fn ssh_login_command(key: &Path, cert: &Path, port: u16, user: &str) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-i")
        .arg(key)
        .arg("-o")
        .arg(format!("CertificateFile={}", cert.display()))
        .args([
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
            "-p",
        ])
        .arg(port.to_string())
        .arg(format!("{user}@127.0.0.1"))
        .arg("true");
    c
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// Start sshd trusting the CA lines in `ca_keys` for logins as the current user whose
    /// certificate names one of `principals`. `extra` is appended to the configuration.
    pub fn start(ca_keys: &[&Path], principals: &[&str], extra: &str) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let user = current_user();
        let _ = std::fs::create_dir_all("/run/sshd");
        let host_key = dir.path().join("ssh_host_ed25519_key");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .output()
            .unwrap();
        assert!(out.status.success());
        let trusted = dir.path().join("trusted_user_ca_keys.pub");
        let mut lines = String::new();
        for k in ca_keys {
            lines.push_str(&std::fs::read_to_string(k).unwrap());
        }
        std::fs::write(&trusted, lines).unwrap();
        std::fs::create_dir(dir.path().join("principals")).unwrap();
        std::fs::write(
            dir.path().join("principals").join(&user),
            principals
                .iter()
                .map(|p| format!("{p}\n"))
                .collect::<String>(),
        )
        .unwrap();
        let port = free_port();
        let config = dir.path().join("sshd_config");
        let use_pam = if needs_pam(&user) { "yes" } else { "no" };
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\nPidFile {d}/sshd.pid\nLogLevel VERBOSE\n\
                 PubkeyAuthentication yes\nTrustedUserCAKeys {tr}\nAuthorizedPrincipalsFile {d}/principals/%u\n\
                 AuthorizedKeysFile none\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM {use_pam}\nStrictModes no\nPermitRootLogin prohibit-password\n{extra}\n",
                hk = host_key.display(),
                d = dir.path().display(),
                tr = trusted.display(),
            ),
        )
        .unwrap();
        Sshd::from_config(dir, port, &config)
    }

    /// Start sshd on an existing configuration (in `dir`, listening on `port`).
    pub fn from_config(dir: tempfile::TempDir, port: u16, config: &Path) -> Sshd {
        let user = current_user();
        let log = dir.path().join("sshd.log");
        let child = Command::new(sshd_path())
            .args(["-D", "-f"])
            .arg(config)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut sshd = Sshd {
            dir,
            port,
            child,
            log,
            user,
        };
        sshd.wait_listening();
        sshd
    }

    /// Poll the port, at most 10 s.
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited ({status}): {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "sshd did not listen on port {} within 10 s: {}",
            self.port,
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Try to log in with the private key `key` and its certificate `cert`; true on success.
    /// The client's own error output goes to the test's stderr, for diagnosis.
    pub fn login(&self, key: &Path, cert: &Path) -> bool {
        let out = ssh_login_command(key, cert, self.port, &self.user)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "ssh login with {} failed ({:?}): {}",
                cert.display(),
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.status.success()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
