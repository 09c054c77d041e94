//! The last lines of `mint` give the ssh command for this certificate, for the files as they
//! are: `ssh -i KEY breakglass@HOST` when the certificate is `KEY-cert.pub` beside `KEY`,
//! `-o CertificateFile=…` otherwise, what to save where for a key from stdin or a certificate
//! on stdout. Each command here is run as printed, through bash, with only the host and the
//! test's own connection options filled in, and must log in to a real sshd: file names with
//! spaces, quotes, `$`, `%` (ssh's tokens), non-ASCII letters and an escape character, a key
//! under `$HOME` (shown as `~`), a batch.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use crate::sshd::Sshd;

fn setup() -> Option<Hsm> {
    if !require(&["softhsm2-util", "ssh-keygen", "ssh", "bash", MODULE])
        || !require(&[sshd_path().to_str().unwrap()])
    {
        return None;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    Some(hsm)
}

/// The `ssh …` command of a line of mint's output.
fn command_of(line: &str) -> &str {
    let at = line
        .find("ssh -")
        .unwrap_or_else(|| panic!("no ssh command in {line:?}"));
    &line[at..]
}

/// The lines after mint's "Hand the certificate…" line: the login lines.
fn login_lines(stderr: &str) -> Vec<String> {
    let at = stderr
        .find("Hand ")
        .unwrap_or_else(|| panic!("no login lines in:\n{stderr}"));
    stderr[at..].lines().map(str::to_string).collect()
}

/// Run `command` (as printed, `HOST` for the host) through bash in `dir`, with `HOME` set to
/// `home`, against the test's sshd: true if it logged in.
fn logs_in(sshd: &Sshd, command: &str, dir: &Path, home: &Path) -> bool {
    let options = format!(
        "ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none -o ConnectTimeout=10 \
         -o LogLevel=ERROR -p {} ",
        sshd.port
    );
    assert!(
        command.starts_with("ssh ") && command.ends_with(" breakglass@HOST"),
        "{command}"
    );
    let runnable = format!(
        "{}{} true",
        options,
        command["ssh ".len()..].replace("breakglass@HOST", &format!("{}@127.0.0.1", sshd.user))
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&runnable)
        .current_dir(dir)
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!("{runnable}: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}

fn mkdir(p: &Path) -> PathBuf {
    std::fs::create_dir_all(p).unwrap();
    p.to_path_buf()
}

#[test]
fn the_printed_login_command_logs_in() {
    let Some(hsm) = setup() else { return };
    let sshd = Sshd::start(&[&hsm.ca_pub_file()], &["breakglass"], "");
    let work = mkdir(&hsm.path("work"));
    let home = mkdir(&work.join("home"));
    let mint = |args: &[&str], key: &Path| {
        let mut c = hsm.cmd();
        c.current_dir(&work)
            .env("HOME", &home)
            .args(["mint", "--reason", "INC-42 login line", "-n", "breakglass"])
            .args(args)
            .arg(key);
        let out = run(&mut c);
        assert_ok(&out, &format!("mint {}", key.display()));
        let err = stderr(&out);
        assert!(
            breakglass_ca::text::is_safe(&err.replace('\n', "")),
            "raw control characters on stderr: {err:?}"
        );
        out
    };
    // (directory, key name): plain; spaces, a quote, $, % (ssh's tokens) and non-ASCII; an
    // escape character.
    for (dir, name) in [
        ("", "alice"),
        ("keys dir/it's $HOME ä %d", "bob"),
        ("esc\u{1b}[2Jdir", "carol"),
    ] {
        let d = mkdir(&work.join(dir));
        let key = keygen(&d, name, &["-t", "ed25519"], &format!("{name}@laptop"));
        let relative = key.strip_prefix(&work).unwrap();
        let lines = login_lines(&stderr(&mint(&[], relative)));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("Hand the certificate to the requester; they log in with"));
        let command = command_of(&lines[1]);
        assert!(!command.contains("CertificateFile"), "{command}");
        assert!(
            logs_in(&sshd, command, &work, &home),
            "{dir:?}/{name}: {command}"
        );
    }
    // A certificate under another name: -o CertificateFile, quoted for ssh as well.
    let key = keygen(&work, "dave", &["-t", "ecdsa"], "dave@laptop");
    mkdir(&work.join("out put"));
    let lines = login_lines(&stderr(&mint(
        &["-o", "out put/c 1%h.pub"],
        Path::new("dave.pub"),
    )));
    let command = command_of(&lines[1]);
    assert!(command.contains("CertificateFile"), "{command}");
    assert!(logs_in(&sshd, command, &work, &home), "{command}");
    // ... which is what makes it work: without it, ssh does not find the certificate.
    let without = command.split(" -o ").next().unwrap().to_string() + " breakglass@HOST";
    assert!(!logs_in(&sshd, &without, &work, &home), "{without}");
    assert!(key.exists());
    // Under $HOME: ~.
    let ssh_dir = mkdir(&home.join(".ssh"));
    let key = keygen(&ssh_dir, "id_ed25519", &["-t", "ed25519"], "erin@laptop");
    let lines = login_lines(&stderr(&mint(&[], &key)));
    assert_eq!(
        command_of(&lines[1]),
        "ssh -i ~/.ssh/id_ed25519 breakglass@HOST"
    );
    assert!(logs_in(&sshd, command_of(&lines[1]), &work, &home));
    // A key on stdin, the certificate on stdout: the requester saves it as the line says.
    let other_home = mkdir(&work.join("home2"));
    let ssh_dir = mkdir(&other_home.join(".ssh"));
    let key = keygen(&ssh_dir, "id_ed25519", &["-t", "ed25519"], "frank@laptop");
    let mut c = hsm.cmd();
    c.current_dir(&work)
        .args(["mint", "--reason", "INC-42 stdin", "-n", "breakglass", "-"])
        .stdin(std::fs::File::open(&key).unwrap());
    let out = run(&mut c);
    assert_ok(&out, "mint -");
    let lines = login_lines(&stderr(&out));
    assert!(
        lines[0].contains("save the certificate from stdout as KEY-cert.pub beside their private key KEY (usually ~/.ssh/id_ed25519-cert.pub)"),
        "{lines:?}"
    );
    std::fs::write(ssh_dir.join("id_ed25519-cert.pub"), &out.stdout).unwrap();
    assert!(logs_in(&sshd, command_of(&lines[1]), &work, &other_home));
    // A batch: one line each, each works.
    let batch = mkdir(&work.join("batch"));
    let keys: Vec<PathBuf> = ["gina", "hank"]
        .iter()
        .map(|n| keygen(&batch, n, &["-t", "ed25519"], &format!("{n}@laptop")))
        .collect();
    let mut c = hsm.cmd();
    c.current_dir(&batch).args([
        "mint",
        "--reason",
        "INC-42 batch",
        "-n",
        "breakglass",
        "gina.pub",
        "hank.pub",
    ]);
    let out = run(&mut c);
    assert_ok(&out, "batch");
    let lines = login_lines(&stderr(&out));
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, name) in lines[1..].iter().zip(["gina", "hank"]) {
        assert!(
            line.contains(&format!("({name}-cert.pub): ssh -i {name} ")),
            "{line}"
        );
        assert!(logs_in(&sshd, command_of(line), &batch, &home), "{line}");
    }
    assert_eq!(keys.len(), 2);
}

/// What ssh itself reads in a path beyond the shell never breaks the printed command: a
/// certificate named `#…` (a comment to ssh's option parser) or `~… …` (a home directory,
/// even inside its quotes) logs in as printed; with `${…}` in a name (ssh expands it, and has
/// no escape for it) the command names no such path, and logs in once the certificate is
/// saved where the line says.
#[test]
fn what_ssh_expands_never_breaks_the_command() {
    let Some(hsm) = setup() else { return };
    let sshd = Sshd::start(&[&hsm.ca_pub_file()], &["breakglass"], "");
    let work = mkdir(&hsm.path("work"));
    let home = mkdir(&work.join("home"));
    let mint = |args: &[&str], key: &str| {
        let mut c = hsm.cmd();
        c.current_dir(&work)
            .env("HOME", &home)
            .env("X", "elsewhere")
            .args([
                "mint",
                "--reason",
                "INC-42 ssh's expansions",
                "-n",
                "breakglass",
            ])
            .args(args)
            .arg(key);
        let out = run(&mut c);
        assert_ok(&out, &format!("mint {key}"));
        login_lines(&stderr(&out))
    };
    keygen(&work, "alice", &["-t", "ed25519"], "alice@laptop");
    for cert in ["#c.pub", "~a b.pub"] {
        let lines = mint(&["-o", cert], "alice.pub");
        let command = command_of(&lines[1]);
        assert!(command.contains("CertificateFile"), "{command}");
        assert!(logs_in(&sshd, command, &work, &home), "{cert}: {command}");
    }
    // ${X} in the certificate's name: saved as alice-cert.pub, as the line says.
    let lines = mint(&["-o", "c${X}.pub"], "alice.pub");
    let command = command_of(&lines[1]);
    assert!(!command.contains("${"), "{command}");
    assert!(
        lines[0].contains("save 'c${X}.pub' as alice-cert.pub beside the private key alice"),
        "{lines:?}"
    );
    assert!(!logs_in(&sshd, command, &work, &home), "{command}");
    std::fs::copy(work.join("c${X}.pub"), work.join("alice-cert.pub")).unwrap();
    assert!(logs_in(&sshd, command, &work, &home), "{command}");
    // ${X} in the key's directory: the private key cannot be named on ssh's command line.
    let dir = mkdir(&work.join("k${X}"));
    keygen(&dir, "bob", &["-t", "ed25519"], "bob@laptop");
    let lines = mint(&[], "k${X}/bob.pub");
    let command = command_of(&lines[1]);
    assert_eq!(
        command, "ssh -i ~/.ssh/id_ed25519 breakglass@HOST",
        "{lines:?}"
    );
    assert!(
        lines[0].contains("as KEY-cert.pub beside their private key KEY"),
        "{lines:?}"
    );
}

/// The examples of the top-level `--help` and of `mint --help` work as printed: `status`,
/// the mint of `id_ed25519.pub`, after which the requester (their key in `~/.ssh`) saves the
/// certificate as the comment says and logs in with the command it shows; the batch, and the
/// single mint of `mint --help`, whose requesters log in with the commands mint prints last.
#[test]
fn help_examples_work_as_printed() {
    let Some(hsm) = setup() else { return };
    let sshd = Sshd::start(&[&hsm.ca_pub_file()], &["breakglass"], "");
    let work = mkdir(&hsm.path("laptop"));
    let requester = mkdir(&hsm.path("requester"));
    let ssh_dir = mkdir(&requester.join(".ssh"));
    let example = |line: &str| {
        let out = run(hsm
            .cmd_with("sh")
            .arg("-c")
            .arg(line)
            .env("PATH", path_with_binary())
            .current_dir(&work));
        assert_ok(&out, line);
        out
    };
    let top = stdout(&run(hsm.cmd().arg("--help")));
    let examples: Vec<&str> = top
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("breakglass-ca "))
        .collect();
    assert_eq!(examples.len(), 3, "{top}");
    // status, as printed (the comment is the shell's).
    example(examples[0]);
    // The requester's key, as they send its .pub to the custodian.
    let key = keygen(&ssh_dir, "id_ed25519", &["-t", "ed25519"], "alice@laptop");
    assert!(examples[1].ends_with(" id_ed25519.pub"), "{}", examples[1]);
    std::fs::copy(&key, work.join("id_ed25519.pub")).unwrap();
    example(examples[1]);
    // What the comment tells the requester: save it as ~/.ssh/id_ed25519-cert.pub, log in.
    let comment: String = top
        .lines()
        .skip_while(|l| !l.contains(examples[1]))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        comment.contains("writes id_ed25519-cert.pub")
            && comment.contains("~/.ssh/id_ed25519-cert.pub"),
        "{comment}"
    );
    std::fs::copy(
        work.join("id_ed25519-cert.pub"),
        ssh_dir.join("id_ed25519-cert.pub"),
    )
    .unwrap();
    let command = command_of(&comment);
    assert_eq!(command, "ssh -i ~/.ssh/id_ed25519 breakglass@HOST");
    assert!(logs_in(&sshd, command, &work, &requester), "{command}");
    // The batch: each requester logs in with the line mint printed for them.
    for name in ["alice", "bob"] {
        keygen(&work, name, &["-t", "ed25519"], &format!("{name}@laptop"));
    }
    assert!(
        examples[2].ends_with(" alice.pub bob.pub"),
        "{}",
        examples[2]
    );
    let lines = login_lines(&stderr(&example(examples[2])));
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines[1..] {
        assert!(
            logs_in(&sshd, command_of(line), &work, &requester),
            "{line}"
        );
    }
    // mint --help: the single mint (a fresh key, as the batch example already used alice).
    let help = stdout(&run(hsm.cmd().args(["mint", "--help"])));
    let single = help
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("breakglass-ca mint") && l.ends_with(" alice.pub"))
        .unwrap_or_else(|| panic!("no single mint example in:\n{help}"));
    let again = mkdir(&work.join("again"));
    keygen(&again, "alice", &["-t", "ed25519"], "alice@laptop");
    let out = run(hsm
        .cmd_with("sh")
        .arg("-c")
        .arg(single)
        .env("PATH", path_with_binary())
        .current_dir(&again));
    assert_ok(&out, single);
    let lines = login_lines(&stderr(&out));
    assert_eq!(command_of(&lines[1]), "ssh -i alice breakglass@HOST");
    assert!(logs_in(&sshd, command_of(&lines[1]), &again, &requester));
    assert!(help.contains("ssh -i KEY USER@HOST"), "{help}");
}
