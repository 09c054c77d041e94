//! Dual control through the binary (issue 14): `request`, signatures made by the real
//! `ssh-keygen -Y sign` with Ed25519, ECDSA and RSA keys, `mint --request --request-sig
//! --approval` against an approvers file (`required_approvals = 2` of three approvers), every
//! refusal before the PIN with the state directory byte for byte unchanged, the certificate
//! logging in through a real sshd, the ledger recording the approvals (`log show`, `log
//! verify`, `audit --json`), and a tampered stored approval caught by `log verify`.
//! Security-key signatures are built byte by byte (no authenticator here) and checked against
//! `ssh-keygen -Y verify` too.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::*;
use crate::sshd::Sshd;

const TOOLS: &[&str] = &["softhsm2-util", "ssh-keygen"];

/// `ssh-keygen -Y sign -f KEY -n NAMESPACE < FILE > OUT` (the approvers' form); returns OUT.
fn sign(key: &Path, namespace: &str, file: &Path, out: &Path) -> PathBuf {
    let o = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-f"])
        .arg(key)
        .args(["-n", namespace])
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "ssh-keygen -Y sign: {}", stderr(&o));
    std::fs::write(out, &o.stdout).unwrap();
    out.to_path_buf()
}

/// The private key of a `.pub` path.
fn private(pubkey: &Path) -> PathBuf {
    pubkey.with_extension("")
}

/// Put `lines` at the top of config.toml (top-level keys come before `[policy]`).
fn configure(hsm: &Hsm, lines: &str) {
    let path = hsm.state.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{lines}\n{text}")).unwrap();
}

/// `request -n breakglass --reason R -o FILE KEY.pub` (and `extra`), which must succeed.
fn request(hsm: &Hsm, key: &Path, out: &Path, extra: &[&str]) -> Output {
    let o = run(hsm
        .cmd()
        .args(["request", "-n", "breakglass", "--reason", "INC-14 dual"])
        .args(extra)
        .arg("-o")
        .arg(out)
        .arg(key));
    assert_ok(&o, "request");
    o
}

fn mint_request(hsm: &Hsm, req: &Path, sig: &Path, approvals: &[&Path], extra: &[&str]) -> Output {
    let mut c = hsm.cmd();
    c.arg("mint")
        .arg("--request")
        .arg(req)
        .arg("--request-sig")
        .arg(sig);
    for a in approvals {
        c.arg("--approval").arg(a);
    }
    c.args(extra);
    run(&mut c)
}

/// A refusal: exit `code`, `needle` on stderr, before the token was opened (no `CA token:`
/// line, no PIN read), the state directory unchanged.
fn refused(
    hsm: &Hsm,
    o: &Output,
    code: i32,
    needle: &str,
    before: &std::collections::BTreeMap<String, (u32, Vec<u8>)>,
) {
    assert_fails(o, code, needle);
    let err = stderr(o);
    assert!(!err.contains("CA token:"), "the token was opened:\n{err}");
    assert!(
        err.lines().any(|l| l.starts_with("hint: ")),
        "no hint:\n{err}"
    );
    assert!(
        err.chars()
            .all(|c| c == '\n' || !breakglass_ca::text::is_unsafe_char(c)),
        "{err}"
    );
    assert_eq!(
        &snapshot_state(&hsm.state),
        before,
        "the state directory changed: {needle}"
    );
}

#[test]
fn requests_signed_by_ssh_keygen_with_every_key_type_mint_exactly_what_they_say() {
    if !require(TOOLS) {
        return;
    }
    let hsm = Hsm::new("dual-types");
    hsm.init("ecdsa-p256");
    // Nothing configured: status says so loudly.
    let status = stdout(&run(hsm.cmd().arg("status")));
    assert!(
        status.contains(
            "dual control:   WARNING: NONE: one custodian with the token and PIN can mint alone"
        ),
        "{status}"
    );
    let dir = hsm.path("keys");
    std::fs::create_dir(&dir).unwrap();
    for (i, (name, args)) in [
        ("ed", vec!["-t", "ed25519"]),
        ("p256", vec!["-t", "ecdsa", "-b", "256"]),
        ("p384", vec!["-t", "ecdsa", "-b", "384"]),
        ("p521", vec!["-t", "ecdsa", "-b", "521"]),
        ("rsa", vec!["-t", "rsa", "-b", "3072"]),
    ]
    .into_iter()
    .enumerate()
    {
        let key = keygen(&dir, name, &args, &format!("{name}@laptop"));
        let req = dir.join(format!("{name}.req"));
        let out = request(
            &hsm,
            &key,
            &req,
            &["-V", "10m", "-O", "source-address=127.0.0.1/32"],
        );
        let text = std::fs::read_to_string(&req).unwrap();
        assert!(
            text.starts_with("breakglass-ca request v1\nkey: "),
            "{text}"
        );
        assert!(
            text.contains(&format!("\nrequester: {name}@laptop\n")),
            "{text}"
        );
        assert!(
            text.contains("\noptions: permit-pty source-address=127.0.0.1/32\n"),
            "{text}"
        );
        // The exact line `request` prints for the requester works as printed, with the
        // requester's key where it names it.
        let err = stderr(&out);
        let line = err
            .lines()
            .find(|l| l.trim_start().starts_with("ssh-keygen -Y sign -f ~/.ssh/"))
            .unwrap_or_else(|| panic!("no signing line:\n{err}"))
            .trim()
            .to_string();
        let home = hsm.path(&format!("home-{name}"));
        let ssh_dir = home.join(".ssh");
        std::fs::create_dir_all(&ssh_dir).unwrap();
        let named = line
            .split_whitespace()
            .nth(4)
            .unwrap()
            .trim_start_matches("~/.ssh/");
        std::fs::copy(private(&key), ssh_dir.join(named)).unwrap();
        let o = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .env("HOME", &home)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_ok(&o, &line);
        let sig = dir.join(format!("{name}.req.sig"));
        assert!(sig.exists());
        let o = mint_request(&hsm, &req, &sig, &[], &[]);
        assert_ok(&o, &format!("mint --request {name}"));
        let err = stderr(&o);
        assert!(
            err.contains("Request:        signed by the requester's key SHA256:"),
            "{err}"
        );
        match i {
            0 => assert!(
                err.contains("WARNING: dual control: NONE: one custodian with the token and PIN can mint alone"),
                "{err}"
            ),
            _ => assert!(
                err.contains("Dual control:   none: a signed request"),
                "{err}"
            ),
        }
        let cert = dir.join(format!("{name}-cert.pub"));
        let listed = ssh_keygen_list(&cert);
        assert_eq!(listed_serial(&listed), i as u64 + 1);
        assert!(listed.contains("source-address 127.0.0.1/32"), "{listed}");
        assert!(
            listed.contains(&format!("Key ID: \"{name}@laptop#{}:INC-14-dual\"", i + 1)),
            "{listed}"
        );
        if i == 0 {
            // Only once: require_possession for the rest.
            configure(&hsm, "require_possession = true");
        }
    }
    let o = run(hsm.cmd().args(["log", "verify"]));
    assert_ok(&o, "log verify");
    assert!(stdout(&o).contains("signed requests: 5 record(s), each requester's signature verified, 0 approval(s) verified"), "{}", stdout(&o));
}

#[test]
fn a_bad_request_or_a_contradicting_mint_is_refused_before_the_pin_and_changes_nothing() {
    if !require(TOOLS) {
        return;
    }
    let hsm = Hsm::new("dual-refusals");
    hsm.init("ed25519");
    let dir = hsm.path("keys");
    std::fs::create_dir(&dir).unwrap();
    let alice = keygen(&dir, "alice", &["-t", "ed25519"], "alice@laptop");
    let mallory = keygen(&dir, "mallory", &["-t", "ed25519"], "mallory@laptop");
    let req = dir.join("alice.req");
    request(&hsm, &alice, &req, &[]);
    let sig = sign(
        &private(&alice),
        "breakglass-ca-request",
        &req,
        &dir.join("alice.req.sig"),
    );
    // A plain mint is refused once config.toml requires a request.
    configure(&hsm, "require_possession = true");
    let before = snapshot_state(&hsm.state);
    let o = hsm.mint(&alice, &["-n", "breakglass"]);
    refused(
        &hsm,
        &o,
        1,
        "config.toml says require_possession = true: this CA mints only a signed request",
        &before,
    );
    // Another key's signature: the substituted-key attack.
    let other = sign(
        &private(&mallory),
        "breakglass-ca-request",
        &req,
        &dir.join("mallory.sig"),
    );
    let o = mint_request(&hsm, &req, &other, &[], &[]);
    refused(
        &hsm,
        &o,
        1,
        "the request signature is made by another key (SHA256:",
        &before,
    );
    // Mallory's request with his key, but alice's key in it: the signature is alice's? No:
    // a request naming alice's key signed by mallory is the same refusal; and one naming
    // mallory's key, signed by him, is a request of his own. An approval passed as the
    // request signature:
    let approval = sign(
        &private(&alice),
        "breakglass-ca-approval",
        &req,
        &dir.join("ns.sig"),
    );
    let o = mint_request(&hsm, &req, &approval, &[], &[]);
    refused(
        &hsm,
        &o,
        1,
        "is an approval (namespace breakglass-ca-approval)",
        &before,
    );
    // The request edited after it was signed (and an edit that is not canonical).
    let text = std::fs::read_to_string(&req).unwrap();
    let edited = dir.join("edited.req");
    std::fs::write(
        &edited,
        text.replace("principals: breakglass", "principals: root"),
    )
    .unwrap();
    let o = mint_request(&hsm, &edited, &sig, &[], &[]);
    refused(&hsm, &o, 1, "does not verify over this request", &before);
    std::fs::write(&edited, text.replace('\n', "\r\n")).unwrap();
    let o = mint_request(&hsm, &edited, &sig, &[], &[]);
    refused(&hsm, &o, 1, "carriage return", &before);
    // Expired, and from the future: signed as they are (so only their age is wrong).
    let created = text
        .lines()
        .find(|l| l.starts_with("created: "))
        .unwrap()
        .to_string();
    let at = |mins: i64| {
        (chrono::Utc::now() + chrono::TimeDelta::minutes(mins))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    for (mins, needle) in [
        (-61, "older than max_request_age (1h)"),
        (10, "after this laptop's clock"),
    ] {
        let aged = dir.join(format!("aged{mins}.req"));
        std::fs::write(
            &aged,
            text.replace(&created, &format!("created: {}", at(mins))),
        )
        .unwrap();
        let s = sign(
            &private(&alice),
            "breakglass-ca-request",
            &aged,
            &dir.join(format!("aged{mins}.sig")),
        );
        let o = mint_request(&hsm, &aged, &s, &[], &[]);
        refused(&hsm, &o, 1, needle, &before);
    }
    // Options that contradict the request, and the ones a request decides alone.
    for (extra, code, needle) in [
        (
            vec!["-n", "root"],
            2,
            "-n root contradicts the request, which says breakglass",
        ),
        (
            vec!["-V", "30m"],
            2,
            "-V 30m contradicts the request, which says 15m",
        ),
        (
            vec!["-O", "no-pty"],
            2,
            "-O no-pty contradicts the request, which says permit-pty",
        ),
        (
            vec!["--reason", "INC-15 other"],
            2,
            "--reason INC-15 other contradicts the request",
        ),
        (
            vec!["--requester", "bob"],
            2,
            "--requester bob contradicts the request",
        ),
        (vec!["-I", "x"], 2, "-I cannot be given with --request"),
        (
            vec!["--force-window"],
            2,
            "--force-window cannot be given with --request",
        ),
    ] {
        let o = mint_request(&hsm, &req, &sig, &[], &extra);
        refused(&hsm, &o, code, needle, &before);
    }
    let o = mint_request(&hsm, &req, &sig, &[], &[mallory.to_str().unwrap()]);
    refused(&hsm, &o, 2, "PUBKEY", &before);
    let o = mint_request(
        &hsm,
        &req,
        &sig,
        &[],
        &[alice.to_str().unwrap(), mallory.to_str().unwrap()],
    );
    refused(&hsm, &o, 2, "a request is for one key", &before);
    // Approvals without an approvers file.
    let o = mint_request(&hsm, &req, &sig, &[&approval], &[]);
    refused(&hsm, &o, 2, "names no approvers_file", &before);
    // What it says, repeated, is fine; then the same request again is a replay.
    let o = mint_request(
        &hsm,
        &req,
        &sig,
        &[],
        &[
            "-n",
            "breakglass",
            "--reason",
            "INC-14 dual",
            alice.to_str().unwrap(),
        ],
    );
    assert_ok(&o, "mint --request with matching options");
    assert!(cert_path(&alice).exists());
    let before = snapshot_state(&hsm.state);
    let o = mint_request(
        &hsm,
        &req,
        &sig,
        &[],
        &["-o", dir.join("again-cert.pub").to_str().unwrap()],
    );
    refused(
        &hsm,
        &o,
        1,
        "this request was already used: serial 1 was issued for it",
        &before,
    );
    assert!(!dir.join("again-cert.pub").exists());
}

/// bob (ed25519), carol (ecdsa) and dave (rsa) approve; 2 are required.
struct Approvers {
    hsm: Hsm,
    dir: PathBuf,
    alice: PathBuf,
    req: PathBuf,
    sig: PathBuf,
    keys: Vec<PathBuf>,
}

fn approvers() -> Approvers {
    let hsm = Hsm::new("dual-approvals");
    hsm.init("ecdsa-p256");
    let dir = hsm.path("keys");
    std::fs::create_dir(&dir).unwrap();
    let alice = keygen(&dir, "alice", &["-t", "ed25519"], "alice@laptop");
    let keys = vec![
        keygen(&dir, "bob", &["-t", "ed25519"], "bob@laptop"),
        keygen(&dir, "carol", &["-t", "ecdsa"], "carol@laptop"),
        keygen(&dir, "dave", &["-t", "rsa", "-b", "3072"], "dave@laptop"),
    ];
    let mut file = String::from("# who may approve an emergency certificate\n");
    for (name, k) in ["bob", "carol", "dave"].iter().zip(&keys) {
        let ns = match *name {
            "carol" => "namespaces=\"breakglass-ca-approval\" ",
            "dave" => "namespaces=\"git,file\" ",
            _ => "",
        };
        file.push_str(&format!(
            "{name} {ns}{}",
            std::fs::read_to_string(k).unwrap()
        ));
    }
    let path = hsm.state.join("approvers");
    std::fs::write(&path, file).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    configure(
        &hsm,
        "approvers_file = \"approvers\"\nrequired_approvals = 2",
    );
    let req = dir.join("alice.req");
    request(&hsm, &alice, &req, &[]);
    let sig = sign(
        &private(&alice),
        "breakglass-ca-request",
        &req,
        &dir.join("alice.req.sig"),
    );
    Approvers {
        hsm,
        dir,
        alice,
        req,
        sig,
        keys,
    }
}

#[test]
fn two_of_three_approvals_mint_and_log_in_and_nothing_less_does() {
    if !require(&["softhsm2-util", "ssh-keygen", "ssh", "jq"]) {
        return;
    }
    let a = approvers();
    let (hsm, dir) = (&a.hsm, &a.dir);
    let approve = |k: &Path, ns: &str, name: &str| sign(&private(k), ns, &a.req, &dir.join(name));
    let bob = approve(&a.keys[0], "breakglass-ca-approval", "bob.sig");
    let carol = approve(&a.keys[1], "breakglass-ca-approval", "carol.sig");
    let dave = approve(&a.keys[2], "breakglass-ca-approval", "dave.sig");
    let status = run(hsm.cmd().arg("status"));
    assert!(stdout(&status).contains("dual control:   2 approval(s) required (3 approver(s) listed), and a signed request; requests expire after 1h"), "{}", stdout(&status));
    let before = snapshot_state(&hsm.state);
    let alice_self = approve(&a.alice, "breakglass-ca-approval", "alice-self.sig");
    let eve = keygen(dir, "eve", &["-t", "ed25519"], "eve@laptop");
    let eve = approve(&eve, "breakglass-ca-approval", "eve.sig");
    let carol_file = approve(&a.keys[1], "file", "carol-file.sig");
    let carol_req = approve(&a.keys[1], "breakglass-ca-request", "carol-req.sig");
    let cases: Vec<(Vec<&Path>, &str)> = vec![
        (vec![], "2 approval(s) needed, 0 valid: approved by nobody; missing: 2 more of bob, carol, dave"),
        (vec![&bob], "2 approval(s) needed, 1 valid: approved by bob (SHA256:"),
        (vec![&bob], "missing: 1 more of carol, dave"),
        (vec![&bob, &bob], "is a second approval by bob (each approver counts once)"),
        (vec![&bob, &alice_self], "is signed by the requester's own key"),
        (vec![&bob, &eve], "is signed by a key that is not in the approvers file (SHA256:"),
        (vec![&bob, &carol_file], "by carol is made for the namespace \"file\", not \"breakglass-ca-approval\""),
        (vec![&bob, &dave], "is by dave, but line 4 of the approvers file allows only namespaces=\"git,file\""),
        (vec![&bob, &carol, &bob], "not counted: --approval"),
        (vec![&bob, &carol_req], "is a request signature (namespace breakglass-ca-request)"),
    ];
    for (approvals, needle) in cases {
        let o = mint_request(hsm, &a.req, &a.sig, &approvals, &[]);
        refused(hsm, &o, 1, needle, &before);
    }
    // bob from a file, carol pasted on stdin (read up to the END line): 2 of 3.
    let mut c = hsm.cmd();
    c.args(["mint", "--request"])
        .arg(&a.req)
        .arg("--request-sig")
        .arg(&a.sig)
        .arg("--approval")
        .arg(&bob)
        .args(["--approval", "-"])
        .stdin(std::fs::File::open(&carol).unwrap());
    let o = run(&mut c);
    assert_ok(&o, "mint 2 of 3");
    let err = stderr(&o);
    assert!(
        err.contains("Approvals:      2 valid, 2 required: bob (SHA256:"),
        "{err}"
    );
    assert!(err.contains("carol (SHA256:"), "{err}");
    assert!(
        err.contains("Dual control:   2 approval(s) required"),
        "{err}"
    );
    let cert = dir.join("alice-cert.pub");
    let listed = ssh_keygen_list(&cert);
    assert!(
        listed.contains("ledger-binding-v1@breakglass-ca"),
        "{listed}"
    );
    // The certificate logs in through a real sshd.
    let sshd = Sshd::start(&[&hsm.ca_pub_file()], &["breakglass"], "");
    assert!(sshd.login(&private(&a.alice), &cert), "{}", sshd.log_text());
    // The ledger: log show lists the request and both approvals; log verify re-verifies.
    let show = stdout(&run(hsm.cmd().args(["log", "show", "1"])));
    assert!(show.contains("\"dual_control\": {"), "{show}");
    assert!(show.contains("\"approver\": \"bob\""), "{show}");
    assert!(
        show.contains("Request:        signed by alice@laptop's key SHA256:"),
        "{show}"
    );
    assert!(show.contains("Approved by:    bob (SHA256:"), "{show}");
    let o = run(hsm.cmd().args(["log", "verify"]));
    assert_ok(&o, "log verify");
    assert!(stdout(&o).contains("signed requests: 1 record(s), each requester's signature verified, 2 approval(s) verified"), "{}", stdout(&o));
    // audit shows the approvers of the login.
    let o = run(hsm
        .cmd()
        .args(["audit", "--json", "--host", "h"])
        .arg(&sshd.log));
    let events = stdout(&o);
    let accepted = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["record"]["serial"] == 1)
        .unwrap_or_else(|| panic!("no event for serial 1:\n{events}\n{}", stderr(&o)));
    assert_eq!(
        accepted["record"]["approvers"],
        serde_json::json!(["bob", "carol"])
    );
    let o = run(hsm
        .cmd()
        .args(["audit", "--verbose", "--host", "h"])
        .arg(&sshd.log));
    assert!(
        stdout(&o).contains("approved by: bob, carol"),
        "{}",
        stdout(&o)
    );
    // The OpenSSH-only check of docs/ledger.md (section 3.4), run as printed (for line 1).
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ledger.md"))
        .unwrap();
    let block = doc
        .split("To check one record's signatures with OpenSSH alone")
        .nth(1)
        .and_then(|rest| rest.split("```\n").nth(1))
        .unwrap()
        .replace("sed -n 5p", "sed -n 1p");
    let check_dir = dir.join("by-hand");
    std::fs::create_dir(&check_dir).unwrap();
    std::fs::copy(
        hsm.state.join("ledger.jsonl"),
        check_dir.join("ledger.jsonl"),
    )
    .unwrap();
    let o = Command::new("sh")
        .arg("-ec")
        .arg(&block)
        .current_dir(&check_dir)
        .output()
        .unwrap();
    assert_ok(&o, &block);
    let good = stdout(&o) + &stderr(&o);
    assert!(
        good.contains("Good \"breakglass-ca-request\" signature for requester"),
        "{good}"
    );
    assert!(
        good.contains("Good \"breakglass-ca-approval\" signature for bob"),
        "{good}"
    );
    // The same request again: a replay, refused.
    let before = snapshot_state(&hsm.state);
    let o = mint_request(
        hsm,
        &a.req,
        &a.sig,
        &[&bob, &carol],
        &["-o", dir.join("x-cert.pub").to_str().unwrap()],
    );
    refused(hsm, &o, 1, "this request was already used", &before);
    // Tampering with a stored approval is detected by log verify.
    let ledger = hsm.state.join("ledger.jsonl");
    let original = std::fs::read_to_string(&ledger).unwrap();
    let mut record: serde_json::Value = serde_json::from_str(original.trim_end()).unwrap();
    record["dual_control"]["approvals"][1]["approver"] = "mallory".into();
    std::fs::write(
        &ledger,
        format!("{}\n", serde_json::to_string(&record).unwrap()),
    )
    .unwrap();
    let o = run(hsm.cmd().args(["log", "verify"]));
    assert_fails(&o, 1, "its dual_control differs from its signed metadata");
    // The same edit in the signed metadata too: the certificate's binding no longer matches.
    let meta = record["metadata"].as_str().unwrap().replacen(
        "\"approver\":\"carol\"",
        "\"approver\":\"mallory\"",
        1,
    );
    record["metadata"] = meta.into();
    std::fs::write(
        &ledger,
        format!("{}\n", serde_json::to_string(&record).unwrap()),
    )
    .unwrap();
    let o = run(hsm.cmd().args(["log", "verify"]));
    assert_fails(&o, 1, "its metadata is not what the token signed");
    std::fs::write(&ledger, &original).unwrap();
    assert_ok(
        &run(hsm.cmd().args(["log", "verify"])),
        "log verify restored",
    );
}

#[test]
fn no_dual_control_is_said_loudly_in_status_and_every_mint() {
    if !require(TOOLS) {
        return;
    }
    let a = approvers();
    let hsm = &a.hsm;
    // The unreachable approver: the organisation turns approvals off.
    let path = hsm.state.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("required_approvals = 2", "required_approvals = 0"),
    )
    .unwrap();
    let status = stdout(&run(hsm.cmd().arg("status")));
    assert!(status.contains("dual control:   WARNING: NONE: required_approvals = 0 although approvers_file is set (3 approver(s) listed): one custodian can mint alone"), "{status}");
    let o = hsm.mint(&a.alice, &["-n", "breakglass"]);
    assert_ok(&o, "mint without approvals");
    assert!(
        stderr(&o).contains("WARNING: dual control: NONE: required_approvals = 0"),
        "{}",
        stderr(&o)
    );
    // A request minted then still records it, and says none were required.
    let o = mint_request(
        hsm,
        &a.req,
        &a.sig,
        &[],
        &["-o", a.dir.join("r-cert.pub").to_str().unwrap()],
    );
    assert_ok(&o, "mint --request without approvals");
    assert!(
        stderr(&o).contains("Approvals:      none (required_approvals = 0)"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("WARNING: dual control: NONE"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_help_examples_run_as_printed_and_the_qr_code_reads_back() {
    if !require(TOOLS) {
        return;
    }
    let hsm = Hsm::new("dual-help");
    hsm.init("ecdsa-p256");
    let dir = hsm.path("work");
    std::fs::create_dir(&dir).unwrap();
    let alice = keygen(&dir, "alice", &["-t", "ed25519"], "alice@laptop");
    let bob = keygen(&dir, "bob", &["-t", "ed25519"], "bob@laptop");
    let carol = keygen(&dir, "carol", &["-t", "ed25519"], "carol@laptop");
    let approvers = format!(
        "bob {}carol {}",
        std::fs::read_to_string(&bob).unwrap(),
        std::fs::read_to_string(&carol).unwrap()
    );
    std::fs::write(hsm.state.join("approvers"), approvers).unwrap();
    configure(
        &hsm,
        "approvers_file = \"approvers\"\nrequired_approvals = 2",
    );
    let help = stdout(&run(hsm.cmd().args(["request", "--help"])));
    // Continuation lines (a trailing backslash) joined, as the shell joins them.
    let joined = help.replace("\\\n", " ");
    let examples: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("breakglass-ca ") || l.starts_with("ssh-keygen "))
        .collect();
    assert_eq!(examples.len(), 6, "{help}");
    for (who, key) in [("requester", &alice), ("bob", &bob), ("carol", &carol)] {
        let home = dir.join(format!("home-{who}"));
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::copy(private(key), home.join(".ssh/id_ed25519")).unwrap();
    }
    let path = path_with_binary();
    let run_line = |line: &str, home: &str| {
        let mut c = hsm.cmd_with("sh");
        c.arg("-c")
            .arg(
                line.split(" # ")
                    .next()
                    .unwrap()
                    .split("   #")
                    .next()
                    .unwrap(),
            )
            .current_dir(&dir)
            .env("PATH", &path)
            .env("HOME", dir.join(home));
        let o = run(&mut c);
        assert_ok(&o, line);
        o
    };
    for line in &examples[..3] {
        run_line(line, "home-requester");
    }
    // The QR code (the third example) is on stdout and reads back to the request file.
    let qr = stdout(&run(hsm.cmd().current_dir(&dir).args([
        "request",
        "-n",
        "breakglass",
        "--reason",
        "INC-1234 bastion down",
        "--format",
        "qr",
        "-o",
        "alice.req",
        "alice.pub",
    ])));
    assert!(
        qr.contains('\u{2588}') || qr.contains('\u{2580}') || qr.contains('\u{2584}'),
        "{qr}"
    );
    let req = std::fs::read_to_string(dir.join("alice.req")).unwrap();
    let decoded = crate::qr::decode_terminal(&qr, false);
    assert_eq!(decoded.len(), 1, "{qr}");
    assert_eq!(decoded[0].1, req);
    run_line(examples[3], "home-requester");
    run_line(examples[4], "home-bob");
    run_line(&examples[4].replace("bob.sig", "carol.sig"), "home-carol");
    let o = run_line(examples[5], "home-requester");
    assert!(
        stderr(&o).contains("Approvals:      2 valid, 2 required"),
        "{}",
        stderr(&o)
    );
    assert!(dir.join("alice-cert.pub").exists());
}

/// Security-key signatures, built byte by byte from a known key (no authenticator here):
/// `ssh-keygen -Y verify` and breakglass-ca agree on the honest one; a signature without the
/// user-presence flag, which ssh-keygen accepts, is refused here.
#[test]
fn security_key_signatures_verify_as_ssh_keygen_verifies_them_and_need_a_touch() {
    if !require(&["ssh-keygen"]) {
        return;
    }
    use breakglass_ca::dual::{sshsig::Problem, Armored};
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let message = b"breakglass-ca request v1\nexample\n";
    let ns = "breakglass-ca-approval";
    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend((s.len() as u32).to_be_bytes());
        out.extend(s);
    }
    let armor = |blob: &[u8]| {
        use base64ct::Encoding;
        let b64 = base64ct::Base64::encode_string(blob);
        let body: Vec<String> = b64
            .as_bytes()
            .chunks(70)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        format!(
            "-----BEGIN SSH SIGNATURE-----\n{}\n-----END SSH SIGNATURE-----\n",
            body.join("\n")
        )
    };
    let signed = |hash: &[u8]| {
        let mut d = b"SSHSIG".to_vec();
        string(&mut d, ns.as_bytes());
        string(&mut d, b"");
        string(&mut d, b"sha512");
        string(&mut d, hash);
        d
    };
    let hash = sha2::Sha512::digest(message);
    let to_sign = signed(&hash);
    let app = b"ssh:";
    // Ed25519-SK.
    let sk = ssh_key::private::Ed25519Keypair::from_seed(&[7u8; 32]);
    let mut pk_blob = Vec::new();
    string(&mut pk_blob, b"sk-ssh-ed25519@openssh.com");
    string(&mut pk_blob, sk.public.as_ref());
    string(&mut pk_blob, app);
    // ECDSA-SK (P-256).
    let ec = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
    let point = ec.verifying_key().to_encoded_point(false);
    let mut ec_blob = Vec::new();
    string(&mut ec_blob, b"sk-ecdsa-sha2-nistp256@openssh.com");
    string(&mut ec_blob, b"nistp256");
    string(&mut ec_blob, point.as_bytes());
    string(&mut ec_blob, app);
    for (name, blob, flags) in [
        ("ed", &pk_blob, 0x01u8),
        ("ed-untouched", &pk_blob, 0x00),
        ("ec", &ec_blob, 0x01),
        ("ec-untouched", &ec_blob, 0x04),
    ] {
        let counter = 42u32.to_be_bytes();
        let mut data = Sha256::digest(app).to_vec();
        data.push(flags);
        data.extend(counter);
        data.extend(Sha256::digest(&to_sign));
        let is_ed = name.starts_with("ed");
        let mut sig_blob = Vec::new();
        if is_ed {
            use signature::Signer;
            let s: ssh_key::Signature = sk.sign(&data);
            string(&mut sig_blob, b"sk-ssh-ed25519@openssh.com");
            string(&mut sig_blob, s.as_bytes());
        } else {
            use p256::ecdsa::signature::Signer;
            let s: p256::ecdsa::Signature = ec.sign(&data);
            let mut inner = Vec::new();
            for part in [s.r().to_bytes(), s.s().to_bytes()] {
                let mut m = part.to_vec();
                while m.first() == Some(&0) {
                    m.remove(0);
                }
                if m.first().is_some_and(|b| b & 0x80 != 0) {
                    m.insert(0, 0);
                }
                string(&mut inner, &m);
            }
            string(&mut sig_blob, b"sk-ecdsa-sha2-nistp256@openssh.com");
            string(&mut sig_blob, &inner);
        }
        sig_blob.push(flags);
        sig_blob.extend(counter);
        let mut sshsig = b"SSHSIG".to_vec();
        sshsig.extend(1u32.to_be_bytes());
        string(&mut sshsig, blob);
        string(&mut sshsig, ns.as_bytes());
        string(&mut sshsig, b"");
        string(&mut sshsig, b"sha512");
        string(&mut sshsig, &sig_blob);
        let text = armor(&sshsig);
        // OpenSSH's verdict.
        use base64ct::Encoding;
        let key_line = format!(
            "{} {}",
            if is_ed {
                "sk-ssh-ed25519@openssh.com"
            } else {
                "sk-ecdsa-sha2-nistp256@openssh.com"
            },
            base64ct::Base64::encode_string(blob)
        );
        let signers = dir.path().join("allowed");
        std::fs::write(&signers, format!("bob {key_line}\n")).unwrap();
        let sig_file = dir.path().join(format!("{name}.sig"));
        std::fs::write(&sig_file, &text).unwrap();
        let msg_file = dir.path().join("msg");
        std::fs::write(&msg_file, message).unwrap();
        let o = Command::new("ssh-keygen")
            .args(["-Y", "verify", "-f"])
            .arg(&signers)
            .args(["-I", "bob", "-n", ns, "-s"])
            .arg(&sig_file)
            .stdin(std::fs::File::open(&msg_file).unwrap())
            .output()
            .unwrap();
        assert_ok(&o, &format!("ssh-keygen -Y verify ({name})"));
        // Ours.
        let a = Armored::parse(&text).unwrap();
        let key = breakglass_ca::key::parse_line(&key_line).unwrap();
        let verdict = a.verify(key.key_data(), ns, message);
        match name.ends_with("untouched") {
            false => assert_eq!(verdict, Ok(()), "{name}"),
            true => assert_eq!(verdict, Err(Problem::NoTouch), "{name}"),
        }
        assert_eq!(
            a.verify(key.key_data(), ns, b"other"),
            Err(Problem::Invalid),
            "{name}"
        );
        // The same bytes relabelled as another signature type, the flags and counter inside
        // its data: ssh-keygen refuses it, and so do we (the crate verifies it, touch or not).
        let label_len = if is_ed { 26 } else { 34 };
        let inner = &sig_blob[4 + label_len..];
        let data_len = u32::from_be_bytes(inner[..4].try_into().unwrap()) as usize;
        let mut relabelled = Vec::new();
        string(
            &mut relabelled,
            b"webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
        );
        string(&mut relabelled, &inner[4..4 + data_len + 5]);
        let mut sshsig = b"SSHSIG".to_vec();
        sshsig.extend(1u32.to_be_bytes());
        string(&mut sshsig, blob);
        string(&mut sshsig, ns.as_bytes());
        string(&mut sshsig, b"");
        string(&mut sshsig, b"sha512");
        string(&mut sshsig, &relabelled);
        let text = armor(&sshsig);
        std::fs::write(&sig_file, &text).unwrap();
        let o = Command::new("ssh-keygen")
            .args(["-Y", "verify", "-f"])
            .arg(&signers)
            .args(["-I", "bob", "-n", ns, "-s"])
            .arg(&sig_file)
            .stdin(std::fs::File::open(&msg_file).unwrap())
            .output()
            .unwrap();
        assert!(!o.status.success(), "ssh-keygen accepts it ({name})");
        let verdict = Armored::parse(&text).map(|a| a.verify(key.key_data(), ns, message));
        assert!(
            matches!(verdict, Ok(Err(Problem::Algorithm(_)))),
            "{name}: {verdict:?}"
        );
    }
}
