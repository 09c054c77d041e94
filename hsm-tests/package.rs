//! The Debian package `scripts/package.sh` builds: unpacked with `dpkg-deb -x` into a root
//! under `target/`, its files and control fields, the unpacked binary against a fresh SoftHSM2
//! token, the man page through `man -l` and `groff -ww`, each completion script loaded (and
//! completing) in its shell, and `SHA256SUMS`.
//!
//! The package comes from `BREAKGLASS_TEST_DEB` (scripts/test.sh builds it first and sets it).
//! Without it, outside CI, the first test runs `scripts/package.sh` itself; with `CI=true` and
//! no package, every test here fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::common::{self, assert_ok, run, stderr, stdout, Hsm};

const VAR: &str = "BREAKGLASS_TEST_DEB";
const TOOLS: &[&str] = &["dpkg-deb", "sha256sum", "gzip"];

struct Unpacked {
    deb: PathBuf,
    root: PathBuf,
}

impl Unpacked {
    fn bin(&self) -> PathBuf {
        self.root.join("usr/bin/breakglass-ca")
    }

    fn file(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

/// The package, unpacked once per test process.
fn unpacked() -> &'static Unpacked {
    static ONCE: OnceLock<Unpacked> = OnceLock::new();
    ONCE.get_or_init(|| {
        let deb = package();
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package-root");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let out = run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
        assert_ok(&out, "dpkg-deb -x");
        Unpacked { deb, root }
    })
}

/// `BREAKGLASS_TEST_DEB`, or (outside CI only) what `scripts/package.sh` builds now.
fn package() -> PathBuf {
    if let Some(deb) = std::env::var_os(VAR).filter(|v| !v.is_empty()) {
        let deb = PathBuf::from(deb);
        assert!(deb.is_file(), "{VAR}={} is not a file", deb.display());
        return deb;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and {VAR} is not set: scripts/test.sh runs scripts/package.sh before the tests and sets it"
    );
    eprintln!("{VAR} is not set: running scripts/package.sh (minutes on a cold target/package)");
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package.sh"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/package.sh failed");
    PathBuf::from(stdout(&out).lines().next().unwrap())
}

/// `dpkg-deb -c`: (mode, owner, path) of every entry, directories with a trailing `/`.
fn contents(deb: &Path) -> Vec<(String, String, String, String)> {
    let out = run(Command::new("dpkg-deb").arg("-c").arg(deb));
    assert_ok(&out, "dpkg-deb -c");
    stdout(&out)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 6, "an entry with a space or a link: {l}");
            let time = format!("{} {}", f[3], f[4]);
            (
                f[0].to_string(),
                f[1].to_string(),
                time,
                f[5].trim_start_matches('.').to_string(),
            )
        })
        .collect()
}

fn field(deb: &Path, name: &str) -> String {
    let out = run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name));
    assert_ok(&out, &format!("dpkg-deb -f {name}"));
    stdout(&out).trim_end().to_string()
}

/// A command with a private HOME and XDG directories in `home`, so no shell reads the
/// caller's configuration or writes into it.
fn in_home(program: &str, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null());
    c
}

fn ok_quiet(out: &Output, what: &str) {
    assert_ok(out, what);
    assert!(
        out.stderr.is_empty(),
        "{what} wrote to stderr:\n{}",
        stderr(out)
    );
}

#[test]
fn contents_are_the_binary_man_page_completions_and_docs() {
    if !common::require(&["dpkg-deb", "sha256sum", "gzip", "readelf"]) {
        return;
    }
    let p = unpacked();
    let entries = contents(&p.deb);
    let mut files: Vec<(String, String)> = entries
        .iter()
        .filter(|(mode, ..)| !mode.starts_with('d'))
        .map(|(mode, _, _, path)| (path.clone(), mode.clone()))
        .collect();
    files.sort();
    let doc = "/usr/share/doc/breakglass-ca";
    let mut want: Vec<(String, String)> = [
        ("/usr/bin/breakglass-ca", "-rwxr-xr-x"),
        ("/usr/share/man/man1/breakglass-ca.1.gz", "-rw-r--r--"),
        (
            "/usr/share/bash-completion/completions/breakglass-ca",
            "-rw-r--r--",
        ),
        (
            "/usr/share/zsh/vendor-completions/_breakglass-ca",
            "-rw-r--r--",
        ),
        (
            "/usr/share/fish/vendor_completions.d/breakglass-ca.fish",
            "-rw-r--r--",
        ),
        ("/usr/share/doc/breakglass-ca/README.md", "-rw-r--r--"),
        ("/usr/share/doc/breakglass-ca/CHANGELOG.md", "-rw-r--r--"),
        ("/usr/share/doc/breakglass-ca/copyright", "-rw-r--r--"),
    ]
    .iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for e in std::fs::read_dir(&docs).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            want.push((format!("{doc}/docs/{name}"), "-rw-r--r--".into()));
            // The same bytes as in the tree.
            assert_eq!(
                std::fs::read(p.file(&format!("{doc}/docs/{name}"))).unwrap(),
                std::fs::read(docs.join(&name)).unwrap(),
                "docs/{name}"
            );
        }
    }
    want.sort();
    assert_eq!(files, want, "the package's files and modes");
    // Every entry owned by root, every time stamp the same (SOURCE_DATE_EPOCH).
    for (mode, owner, time, path) in &entries {
        assert_eq!(owner, "0/0", "{path}");
        assert_eq!(time, &entries[0].2, "{path} ({mode})");
    }
    // The binary is stripped: no symbol table, no debug sections.
    let out = run(Command::new("readelf").args(["-S", "-W"]).arg(p.bin()));
    assert_ok(&out, "readelf -S");
    let sections = stdout(&out);
    assert!(sections.contains(" .text "), "{sections}");
    assert!(
        !sections.contains(" .symtab ") && !sections.contains(" .debug_"),
        "not stripped:\n{sections}"
    );
}

#[test]
fn control_fields_depends_recommends_suggests() {
    if !common::require(TOOLS) {
        return;
    }
    let deb = &unpacked().deb;
    assert_eq!(field(deb, "Package"), "breakglass-ca");
    assert_eq!(
        field(deb, "Version"),
        format!("{}-1", env!("CARGO_PKG_VERSION"))
    );
    let depends = field(deb, "Depends");
    assert!(
        depends.split(", ").any(|d| d.starts_with("libpcsclite1")),
        "Depends: {depends}"
    );
    assert!(depends.contains("libc6"), "Depends: {depends}");
    assert_eq!(field(deb, "Recommends"), "pcscd");
    let suggests = field(deb, "Suggests");
    for s in ["softhsm2", "opensc"] {
        assert!(suggests.split(", ").any(|x| x == s), "Suggests: {suggests}");
    }
    // The synopsis is one line of at most 80 characters (the extended text follows it).
    let description = field(deb, "Description");
    let synopsis = description.lines().next().unwrap();
    assert!(synopsis.len() <= 80, "synopsis: {synopsis}");
    assert!(description.lines().count() > 1, "no extended description");
    let name = p_name(deb);
    assert!(
        name.starts_with(&format!("breakglass-ca_{}-1_", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );
}

fn p_name(deb: &Path) -> String {
    deb.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn the_unpacked_binary_runs_a_demo_flow_on_softhsm() {
    if !common::require(&[
        "dpkg-deb",
        "sha256sum",
        "gzip",
        "softhsm2-util",
        "ssh-keygen",
    ]) {
        return;
    }
    let p = unpacked();
    let bin = p.bin();
    let bin = bin.to_str().unwrap();
    let out = run(Command::new(bin).arg("--version"));
    assert_ok(&out, "--version");
    assert_eq!(
        stdout(&out),
        format!("breakglass-ca {}\n", env!("CARGO_PKG_VERSION"))
    );

    let hsm = Hsm::new("pkg-ca");
    let out =
        run(hsm
            .cmd_with(bin)
            .args(["init", "--ca", &hsm.uri(), "--algorithm", "ecdsa-p256"]));
    assert_ok(&out, "init");
    let line = stdout(&out).trim().to_string();
    assert!(line.starts_with("ecdsa-sha2-nistp256 "), "{line}");

    let ca_pub = hsm.path("ca.pub");
    let out = run(hsm.cmd_with(bin).args(["pubkey", "-o"]).arg(&ca_pub));
    assert_ok(&out, "pubkey");
    assert_eq!(std::fs::read_to_string(&ca_pub).unwrap().trim(), line);

    let key = common::keygen(
        hsm.dir.path(),
        "id_ed25519",
        &["-t", "ed25519"],
        "alice@pkg",
    );
    let out = run(hsm
        .cmd_with(bin)
        .args(["mint", "-n", "breakglass", "--reason", "INC-1 package test"])
        .arg(&key));
    assert_ok(&out, "mint");
    let cert = common::cert_path(&key);
    let listed = common::ssh_keygen_list(&cert);
    assert_eq!(common::listed_serial(&listed), 1);

    let out = run(hsm
        .cmd_with(bin)
        .arg("inspect")
        .arg("--ca-pubkey")
        .arg(&ca_pub)
        .arg(&cert));
    assert_ok(&out, "inspect");
    assert!(stdout(&out).contains("breakglass"), "{}", stdout(&out));

    let out = run(hsm.cmd_with(bin).args(["log", "verify"]));
    assert_ok(&out, "log verify");
}

/// The man page, gunzipped.
fn man_page(p: &Unpacked) -> PathBuf {
    let gz = p.file("/usr/share/man/man1/breakglass-ca.1.gz");
    let plain = p.root.join("breakglass-ca.1");
    let out = run(Command::new("gzip").arg("-dc").arg(&gz));
    assert_ok(&out, "gzip -dc");
    std::fs::write(&plain, &out.stdout).unwrap();
    plain
}

/// The page without its `.TH` line (whose date is the package's SOURCE_DATE_EPOCH).
fn without_title(page: &str) -> String {
    page.lines()
        .filter(|l| !l.starts_with(".TH "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_man_page_renders_without_warnings() {
    if !common::require(&["dpkg-deb", "sha256sum", "gzip", "man", "groff"]) {
        return;
    }
    let p = unpacked();
    let page = man_page(p);
    let home = common::target_dir();

    let out = run(Command::new("groff")
        .args(["-ww", "-man", "-z"])
        .arg(&page)
        .stdin(Stdio::null()));
    ok_quiet(&out, "groff -ww -man -z");
    let out = run(Command::new("groff")
        .args(["-ww", "-man", "-Tutf8"])
        .arg(&page)
        .stdin(Stdio::null()));
    ok_quiet(&out, "groff -ww -man -Tutf8");

    for file in [
        page.clone(),
        p.file("/usr/share/man/man1/breakglass-ca.1.gz"),
    ] {
        let out = run(in_home("man", home.path())
            .env("MANWIDTH", "80")
            .arg("-l")
            .arg(&file));
        ok_quiet(&out, &format!("man -l {}", file.display()));
        let text = stdout(&out);
        for heading in [
            "NAME",
            "SYNOPSIS",
            "COMMANDS",
            "EXAMPLES",
            "BREAKGLASS-CA MINT",
            "BREAKGLASS-CA LOG VERIFY",
            "BREAKGLASS-CA COMPLETIONS",
            "ENVIRONMENT",
            "EXIT STATUS",
        ] {
            assert!(
                text.lines().any(|l| l == heading),
                "no {heading} heading in man -l"
            );
        }
        // Examples keep their lines; the footer has the version and the package's date.
        assert!(text.contains("\n           breakglass-ca krl -o breakglass-ca.krl\n"));
        let footer = text.trim_end().lines().last().unwrap().to_string();
        let dated = footer.split_whitespace().any(|w| {
            let b = w.as_bytes();
            b.len() == 10 && b[4] == b'-' && b[7] == b'-' && w[..4].parse::<u16>().is_ok()
        });
        assert!(
            dated && footer.contains(&format!("breakglass-ca {}", env!("CARGO_PKG_VERSION"))),
            "footer: {footer}"
        );
    }

    // The packaged page is what this binary generates, and a variable of the caller's never
    // reaches it.
    let packaged = std::fs::read_to_string(&page).unwrap();
    assert!(packaged.is_ascii());
    let out = run(Command::new(p.bin())
        .arg("man")
        .env("BREAKGLASS_CA_PIN_FILE", "/secret/pin-file-path")
        .env("BREAKGLASS_CA", "pkcs11:token=secret-label")
        .env_remove("SOURCE_DATE_EPOCH"));
    assert_ok(&out, "man");
    let generated = stdout(&out);
    assert!(
        !generated.contains("secret"),
        "a variable's value in the page"
    );
    assert_eq!(without_title(&generated), without_title(&packaged));
    let out = run(Command::new(p.bin())
        .arg("man")
        .env("SOURCE_DATE_EPOCH", "yesterday"));
    common::assert_fails(&out, 2, "SOURCE_DATE_EPOCH");
}

/// The completion script `path` of the package equals `completions SHELL` of its binary.
fn packaged_script(p: &Unpacked, shell: &str, path: &str) -> PathBuf {
    let file = p.file(path);
    let out = run(Command::new(p.bin()).args(["completions", shell]));
    assert_ok(&out, &format!("completions {shell}"));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        out.stdout,
        "{path} is not what 'completions {shell}' prints"
    );
    file
}

/// What bash completes for `words` (the last one being completed), with `script` loaded.
fn bash_complete(script: &Path, home: &Path, words: &[&str]) -> Vec<String> {
    let driver = r#"
        set -e
        source "$1"; shift
        spec=$(complete -p breakglass-ca)
        fn=${spec##*-F }; fn=${fn%% *}
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        "$fn" breakglass-ca "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let out = run(in_home("bash", home)
        .args(["--noprofile", "--norc", "-c", driver, "driver"])
        .arg(script)
        .args(words));
    ok_quiet(&out, &format!("bash completion of {words:?}"));
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn the_bash_completion_loads_and_completes() {
    if !common::require(&["dpkg-deb", "sha256sum", "gzip", "bash"]) {
        return;
    }
    let p = unpacked();
    let script = packaged_script(
        p,
        "bash",
        "/usr/share/bash-completion/completions/breakglass-ca",
    );
    let home = common::target_dir();
    let out = run(in_home("bash", home.path()).arg("-n").arg(&script));
    ok_quiet(&out, "bash -n");
    // Loads in POSIX mode too (bash as /bin/sh).
    let out = run(in_home("bash", home.path())
        .args([
            "--posix",
            "-c",
            "source \"$1\" && complete -p breakglass-ca",
            "sh",
        ])
        .arg(&script));
    ok_quiet(&out, "bash --posix: source");

    let h = home.path();
    assert_eq!(
        bash_complete(&script, h, &["breakglass-ca", "mi"]),
        ["mint"]
    );
    // After the command name: its options and values (clap_complete's hyphenated-name bug
    // would complete nothing here).
    assert_eq!(
        bash_complete(&script, h, &["breakglass-ca", "mint", "--pr"]),
        ["--principal"]
    );
    let shells = bash_complete(&script, h, &["breakglass-ca", "completions", ""]);
    for s in ["bash", "zsh", "fish"] {
        assert!(shells.iter().any(|x| x == s), "{shells:?}");
    }
    let formats = bash_complete(&script, h, &["breakglass-ca", "pubkey", "--format", "s"]);
    assert_eq!(formats, ["svg", "sheet"]);
    assert_eq!(
        bash_complete(&script, h, &["breakglass-ca", "log", "verify", "--b"]),
        ["--bundle"]
    );
}

#[test]
fn the_zsh_completion_loads() {
    if !common::require(&["dpkg-deb", "sha256sum", "gzip", "zsh"]) {
        return;
    }
    let p = unpacked();
    let script = packaged_script(p, "zsh", "/usr/share/zsh/vendor-completions/_breakglass-ca");
    let home = common::target_dir();
    let out = run(in_home("zsh", home.path()).arg("-n").arg(&script));
    ok_quiet(&out, "zsh -n");
    // As zsh finds it installed: from a directory on fpath, by compinit.
    let driver = r#"
        fpath=("$1" $fpath)
        autoload -Uz compinit && compinit -u -D
        [[ ${_comps[breakglass-ca]} == _breakglass-ca ]] || { print -u2 "not registered: ${_comps[breakglass-ca]}"; exit 1 }
        autoload +X _breakglass-ca || exit 1
        (( ${+functions[_breakglass-ca]} )) && print loaded
    "#;
    let out = run(in_home("zsh", home.path())
        .args(["-f", "-c", driver, "driver"])
        .arg(script.parent().unwrap()));
    ok_quiet(&out, "zsh: compinit with the package's vendor-completions");
    assert_eq!(stdout(&out), "loaded\n");
}

#[test]
fn the_fish_completion_loads_and_completes() {
    if !common::require(&["dpkg-deb", "sha256sum", "gzip", "fish"]) {
        return;
    }
    let p = unpacked();
    let script = packaged_script(
        p,
        "fish",
        "/usr/share/fish/vendor_completions.d/breakglass-ca.fish",
    );
    let home = common::target_dir();
    let out = run(in_home("fish", home.path())
        .arg("--no-execute")
        .arg(&script));
    ok_quiet(&out, "fish --no-execute");
    let complete = |line: &str| -> Vec<String> {
        let out = run(in_home("fish", home.path())
            .args(["--no-config", "-c", "source $argv[1]; complete -C $argv[2]"])
            .arg(&script)
            .arg(line));
        ok_quiet(&out, &format!("fish: complete -C '{line}'"));
        stdout(&out)
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(complete("breakglass-ca mi"), ["mint"]);
    assert_eq!(complete("breakglass-ca mint --pr"), ["--principal"]);
    assert_eq!(
        complete("breakglass-ca pubkey --format s"),
        ["sheet", "svg"]
    );
}

#[test]
fn sha256sums_verifies_and_catches_a_changed_byte() {
    if !common::require(TOOLS) {
        return;
    }
    let p = unpacked();
    let dir = p.deb.parent().unwrap();
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 1, "{sums}");
    assert!(sums.ends_with(&format!("  {}\n", p_name(&p.deb))), "{sums}");
    let out = run(Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(dir));
    ok_quiet(&out, "sha256sum -c SHA256SUMS");
    assert_eq!(stdout(&out), format!("{}: OK\n", p_name(&p.deb)));

    // A copy on the "USB stick" with one byte changed fails the check.
    let stick = common::target_dir();
    let mut bytes = std::fs::read(&p.deb).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(stick.path().join(p_name(&p.deb)), &bytes).unwrap();
    std::fs::write(stick.path().join("SHA256SUMS"), &sums).unwrap();
    let out = run(Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(stick.path()));
    assert!(!out.status.success());
    assert!(stdout(&out).contains("FAILED"), "{}", stdout(&out));
}

#[test]
fn the_completions_help_examples_work_as_printed() {
    if !common::require(&["dpkg-deb", "sha256sum", "gzip", "bash"]) {
        return;
    }
    let p = unpacked();
    let out = run(Command::new(p.bin()).args(["completions", "--help"]));
    assert_ok(&out, "completions --help");
    let help = stdout(&out);
    let lines: Vec<&str> = help
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| l.starts_with("mkdir ") || l.starts_with("breakglass-ca "))
        .collect();
    assert_eq!(lines.len(), 6, "{help}");
    let home = common::target_dir();
    let path = format!(
        "{}:{}",
        p.bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(in_home("bash", home.path()).env("PATH", path).args([
        "--noprofile",
        "--norc",
        "-e",
        "-c",
        &lines.join("\n"),
    ]));
    ok_quiet(&out, "the completions --help examples");
    for (file, packaged) in [
        (
            ".local/share/bash-completion/completions/breakglass-ca",
            "/usr/share/bash-completion/completions/breakglass-ca",
        ),
        (
            ".config/fish/completions/breakglass-ca.fish",
            "/usr/share/fish/vendor_completions.d/breakglass-ca.fish",
        ),
        (
            ".zfunc/_breakglass-ca",
            "/usr/share/zsh/vendor-completions/_breakglass-ca",
        ),
    ] {
        assert_eq!(
            std::fs::read(home.path().join(file)).unwrap(),
            std::fs::read(p.file(packaged)).unwrap(),
            "{file}"
        );
    }
}
