//! `status --json` (format 1, docs/ledger.md section 5.5) against `log verify`: the same
//! records, newest serial, coverage and torn tail, on a ledger with several mints and
//! revocations, a torn tail, a lost newline and the ledger of 0.1.0; without the token the
//! rest is still reported (exit 1); `status` changes nothing.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::*;

fn tools() -> bool {
    require(&["softhsm2-util", "ssh-keygen", MODULE])
}

/// The figures `log verify` prints.
#[derive(Debug, Default, PartialEq, Eq)]
struct Figures {
    last_serial: u64,
    old_records: u64,
    bound_records: u64,
    revocations: u64,
    uncovered_revocations: u64,
    newest_checkpoint: u64,
    torn_tail: bool,
    unterminated: bool,
}

/// The number after `prefix` in `text` (digits up to the first non-digit).
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let at = text.find(prefix)? + prefix.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `log verify`, which must pass, read back into its figures.
fn verify_figures(hsm: &Hsm) -> Figures {
    if !hsm.state.join("ledger.jsonl").exists() {
        return Figures::default(); // 'log verify': there is no ledger
    }
    let out = run(hsm.cmd().args(["log", "verify"]));
    assert_ok(&out, "log verify");
    let text = stdout(&out);
    let mut f = Figures {
        last_serial: number_after(&text, "ledger OK: ").unwrap(),
        revocations: number_after(&text, ", and ").unwrap_or(0),
        torn_tail: text.contains("warning: the ledger ends in a half-written record"),
        unterminated: text.contains("warning: the ledger's last record lost its final newline"),
        ..Figures::default()
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("old format (no ledger binding): ") {
            f.old_records = number_after(rest, "").unwrap();
            f.newest_checkpoint = number_after(rest, "the newest covers serial ").unwrap();
        }
        if let Some(rest) = line.strip_prefix("bound: ") {
            f.bound_records = number_after(rest, "").unwrap();
        }
        if line.starts_with("revocations: ") {
            assert_eq!(number_after(line, "revocations: "), Some(f.revocations));
            f.uncovered_revocations = number_after(line, "binding, ").unwrap();
        }
    }
    f
}

/// `status --json`, parsed (it exits 0 unless `expect_ok` is false).
pub fn status_json(c: &mut Command, expect_ok: bool) -> Value {
    let out = run(c.args(["status", "--json"]));
    if expect_ok {
        assert_ok(&out, "status --json");
    } else {
        assert_fails(&out, 1, "");
    }
    let text = stdout(&out);
    assert!(text.is_ascii(), "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The figures of `status --json`, and its own checks that they add up.
fn status_figures(v: &Value) -> Figures {
    assert_eq!(v["format"], 1);
    let l = &v["ledger"];
    let c = &l["coverage"];
    let n = |f: &str| c[f].as_u64().unwrap_or_else(|| panic!("{f}: {c}"));
    assert_eq!(l["chain"]["ok"], true, "{l}");
    assert_eq!(l["records"].as_u64(), Some(n("last_serial")), "{l}");
    let total = n("old_records") + n("bound_records") + n("revocations");
    assert_eq!(n("covered") + n("uncovered"), total, "{c}");
    assert_eq!(c["newest_covered"], n("uncovered") == 0, "{c}");
    if n("last_serial") > 0 {
        assert_eq!(
            l["newest"]["serial"].as_u64(),
            Some(n("last_serial")),
            "{l}"
        );
    }
    assert_eq!(
        v["revocations"]["records"].as_u64(),
        Some(n("revocations")),
        "{v}"
    );
    Figures {
        last_serial: n("last_serial"),
        old_records: n("old_records"),
        bound_records: n("bound_records"),
        revocations: n("revocations"),
        uncovered_revocations: n("uncovered_revocations"),
        newest_checkpoint: n("newest_checkpoint"),
        torn_tail: c["torn_tail"].as_bool().unwrap(),
        unterminated: c["unterminated"].as_bool().unwrap(),
    }
}

/// `status --json` and `log verify` agree, and `status` changed nothing; returns the JSON.
fn agree(hsm: &Hsm, want: (u64, u64, u64, u64)) -> Value {
    let before = snapshot_state(&hsm.state);
    let v = status_json(&mut hsm.cmd(), true);
    assert_eq!(
        snapshot_state(&hsm.state),
        before,
        "status changed the state"
    );
    let ours = status_figures(&v);
    assert_eq!(ours, verify_figures(hsm), "{v:#}");
    let c = &v["ledger"]["coverage"];
    let got =
        ["last_serial", "revocations", "covered", "uncovered"].map(|f| c[f].as_u64().unwrap());
    assert_eq!(
        (got[0], got[1], got[2], got[3]),
        want,
        "(last serial, revocations, covered, uncovered): {c}"
    );
    v
}

fn mint(hsm: &Hsm, key: &Path, reason: &str) {
    let out = run(hsm
        .cmd()
        .args(["mint", "-n", "breakglass", "-o", "-", "--reason", reason])
        .arg(key));
    assert_ok(&out, "mint");
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// Several mints, revocations covered and not, a torn tail and a record that lost its newline:
/// `status --json` says what `log verify` says, every time.
#[test]
fn status_json_matches_log_verify() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ed25519");
    let alice = keygen(hsm.dir.path(), "alice", &["-t", "ed25519"], "alice@laptop");
    let v = agree(&hsm, (0, 0, 0, 0));
    assert_eq!(v["ledger"]["newest"], Value::Null);
    assert_eq!(v["clock"]["newest_record"], Value::Null);
    assert_eq!(v["revocations"]["krl_version"], 0);
    for i in 1..=3 {
        mint(&hsm, &alice, &format!("INC-{i} test"));
    }
    agree(&hsm, (3, 0, 3, 0));
    revoke_ok(&hsm, &["--serial", "1", "--reason", "INC-4 leaked"]);
    let v = agree(&hsm, (3, 1, 3, 1));
    assert_eq!(v["ledger"]["coverage"]["newest_covered"], false);
    assert_eq!(v["ledger"]["coverage"]["uncovered_revocations"], 1);
    mint(&hsm, &alice, "INC-5 test");
    agree(&hsm, (4, 1, 5, 0));
    revoke_ok(&hsm, &["--serial", "2-3", "--reason", "INC-6 leaked"]);
    let v = agree(&hsm, (4, 2, 5, 1));
    // The facts around the figures.
    assert_eq!(v["ledger"]["newest"]["requester"], "alice@laptop");
    assert_eq!(v["ledger"]["newest"]["serial"], 4);
    assert_eq!(v["revocations"]["serials"], serde_json::json!([[1, 3]]));
    let krl = v["revocations"]["krl_version"].as_u64().unwrap();
    let newest = v["revocations"]["newest"].as_str().unwrap();
    assert_eq!(v["clock"]["newest_record"].as_str(), Some(newest));
    assert_eq!(v["clock"]["behind"], false);
    assert_eq!(
        krl.to_string(),
        newest.replace(['-', ':', 'T', 'Z'], ""),
        "the KRL version is the newest revocation's time"
    );
    assert_eq!(v["token"]["found"], true);
    assert_eq!(v["token"]["algorithm"], "ed25519");
    assert_eq!(v["config"]["matches_token"], true);
    assert_eq!(v["ca_pub"]["matches_config"], true);
    assert_eq!(v["ca"]["revoked"], false);
    assert_eq!(v["problems"], serde_json::json!([]));
    let fp = v["token"]["fingerprint"].as_str().unwrap();
    assert!(
        hsm.ca_pub_fingerprint().contains(fp),
        "{fp} is not ca.pub's"
    );
    // The human status shows the same facts.
    let out = run(hsm.cmd().arg("status"));
    assert_ok(&out, "status");
    let text = stdout(&out);
    for needle in [
        "ledger:         4 certificate(s); last serial 4 issued ".to_string(),
        "signed:         5 of 6 record(s) covered by a token signature; the newest 1 not yet"
            .to_string(),
        format!("; KRL version {krl}\n"),
        "ledger chain:   OK".to_string(),
        "ca.pub:         matches config.toml".to_string(),
        format!("the newest ledger record is {newest}"),
        "backup CAs:     none in config.toml".to_string(),
    ] {
        assert!(text.contains(&needle), "status lacks {needle}:\n{text}");
    }

    // A torn tail (half a line appended, as a crash mid-append leaves it): counted by both,
    // the figures unchanged.
    let ledger = hsm.state.join("ledger.jsonl");
    let whole = std::fs::read(&ledger).unwrap();
    let text = String::from_utf8(whole.clone()).unwrap();
    let last = text.lines().last().unwrap();
    append(&ledger, &last.as_bytes()[..last.len() / 2]);
    let v = agree(&hsm, (4, 2, 5, 1));
    assert_eq!(v["ledger"]["coverage"]["torn_tail"], true);
    let out = run(hsm.cmd().arg("status"));
    assert_ok(&out, "status");
    assert!(
        stdout(&out).contains("ledger tail:    a half-written record"),
        "{}",
        stdout(&out)
    );
    // A record that lost only its newline.
    std::fs::write(&ledger, &whole[..whole.len() - 1]).unwrap();
    let v = agree(&hsm, (4, 2, 5, 1));
    assert_eq!(v["ledger"]["coverage"]["unterminated"], true);
    assert_eq!(v["ledger"]["coverage"]["torn_tail"], false);
}

/// The state directory of 0.1.0 (format-1 records and their checkpoints), then continued by a
/// bound record: the old part, its checkpoint and the coverage as `log verify` reports them.
#[test]
fn status_json_of_a_0_1_0_ledger_matches_log_verify() {
    if !tools() {
        return;
    }
    let hsm = fixture_0_1_0();
    let v = agree(&hsm, (3, 0, 3, 0));
    let c = &v["ledger"]["coverage"];
    assert_eq!(
        (c["old_records"].as_u64(), c["newest_checkpoint"].as_u64()),
        (Some(3), Some(3))
    );
    // Checkpoints cut back to the first two: serial 3 is covered by nothing (log verify warns).
    let cps = hsm.state.join("checkpoints.jsonl");
    let all = std::fs::read_to_string(&cps).unwrap();
    let two: String = all.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&cps, two).unwrap();
    let v = agree(&hsm, (3, 0, 2, 1));
    assert_eq!(v["ledger"]["coverage"]["newest_checkpoint"], 2);
    std::fs::write(&cps, all).unwrap();
    // A bound record covers them all.
    let key = keygen(hsm.dir.path(), "req", &["-t", "ed25519"], "alice@laptop");
    mint(&hsm, &key, "INC-7 after the upgrade");
    let v = agree(&hsm, (4, 0, 4, 0));
    let c = &v["ledger"]["coverage"];
    assert_eq!(
        (c["old_records"].as_u64(), c["bound_records"].as_u64()),
        (Some(3), Some(1))
    );
}

impl Hsm {
    /// The fingerprint line of the state directory's ca.pub (`ssh-keygen -l`).
    fn ca_pub_fingerprint(&self) -> String {
        let out = run(Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(self.state.join("ca.pub")));
        assert_ok(&out, "ssh-keygen -l");
        stdout(&out)
    }
}

/// Without the token: config, ledger, backup CAs and KRL still reported, the token part says
/// it was not found, exit 1 with the token's own error; nothing changed.
#[test]
fn status_without_the_token_reports_the_rest() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let alice = keygen(hsm.dir.path(), "alice", &["-t", "ed25519"], "alice@laptop");
    mint(&hsm, &alice, "INC-1 test");
    let backup = keygen(hsm.dir.path(), "backup", &["-t", "ed25519"], "vault-b");
    assert_ok(
        &run(hsm
            .cmd()
            .arg("add-backup-ca")
            .arg(backup.with_extension("pub"))),
        "add-backup-ca",
    );
    revoke_ok(&hsm, &["--serial", "1", "--reason", "INC-2 leaked"]);
    let conf = hsm.unplugged();
    let before = snapshot_state(&hsm.state);
    let out = run(hsm.cmd().env("SOFTHSM2_CONF", &conf).arg("status"));
    assert_fails(&out, 1, "no token found through the PKCS#11 module");
    let text = stdout(&out);
    for needle in [
        "token:          NOT FOUND: no token found",
        "(from config.toml; the token's key is not checked)",
        "not compared with the token (not found)",
        "ca.pub:         matches config.toml",
        "ledger:         1 certificate(s); last serial 1 issued ",
        "ledger chain:   OK",
        "revocations:    1 record(s), the newest ",
        "backup CA:      SHA256:",
        "(ed25519, vault-b)",
    ] {
        assert!(text.contains(needle), "status lacks {needle}:\n{text}");
    }
    let mut c = hsm.cmd();
    c.env("SOFTHSM2_CONF", &conf);
    let v = status_json(&mut c, false);
    assert_eq!(v["token"]["found"], false);
    assert!(v["token"]["error"]["error"]
        .as_str()
        .unwrap()
        .contains("no token found"));
    assert!(v["token"]["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("plug the token in"));
    assert_eq!(v["ca"]["from"], "config.toml");
    assert_eq!(v["ledger"]["records"], 1);
    assert_eq!(v["ledger"]["coverage"]["uncovered_revocations"], 1);
    assert!(v["revocations"]["krl_version"].as_u64().unwrap() > 20_000_000_000_000);
    assert_eq!(v["problems"].as_array().unwrap().len(), 1, "{v:#}");
    let keygen_l = run(Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(backup.with_extension("pub")));
    let b = &v["backup_cas"][0];
    assert!(
        stdout(&keygen_l).contains(b["fingerprint"].as_str().unwrap()),
        "{b}"
    );
    assert_eq!(
        (b["comment"].as_str(), b["revoked"].as_bool()),
        (Some("vault-b"), Some(false))
    );
    assert_eq!(snapshot_state(&hsm.state), before);
    // The backup CA revoked: status says so.
    let backup_pub = backup.with_extension("pub");
    revoke_ok(
        &hsm,
        &[
            "--ca",
            backup_pub.to_str().unwrap(),
            "--reason",
            "INC-3 lost",
        ],
    );
    let mut c = hsm.cmd();
    c.env("SOFTHSM2_CONF", &conf);
    let v = status_json(&mut c, false);
    assert_eq!(v["backup_cas"][0]["revoked"], true);
    let out = run(hsm.cmd().env("SOFTHSM2_CONF", &conf).arg("status"));
    assert!(
        stdout(&out).contains(", vault-b) REVOKED"),
        "{}",
        stdout(&out)
    );
    // No config.toml and no --ca: nothing to open (exit 2, as before).
    let empty = hsm.path("empty-state");
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA_STATE_DIR", &empty)
        .args(["status", "--json"]));
    assert_fails(&out, 2, "no CA key given and no configuration");
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["config"]["found"], false);
    assert_eq!(v["ledger"]["records"], Value::Null);
}

/// A ca.pub that does not match config.toml, and a clock behind the newest record: status
/// names both and exits 1.
#[test]
fn status_names_a_ca_pub_edited_and_a_clock_behind() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ed25519");
    let alice = keygen(hsm.dir.path(), "alice", &["-t", "ed25519"], "alice@laptop");
    mint(&hsm, &alice, "INC-1 test");
    revoke_ok(&hsm, &["--serial", "1", "--reason", "INC-2 leaked"]);
    let ledger = hsm.state.join("ledger.jsonl");
    let text = std::fs::read_to_string(&ledger).unwrap();
    let at = text.rfind("\"revoked_at\":\"").unwrap() + "\"revoked_at\":\"".len();
    let mut forged = text.clone();
    forged.replace_range(at..at + 20, "2099-01-01T00:00:00Z");
    std::fs::write(&ledger, &forged).unwrap();
    let before = snapshot_state(&hsm.state);
    let v = status_json(&mut hsm.cmd(), false);
    assert_eq!(v["clock"]["behind"], true);
    assert_eq!(v["clock"]["newest_record"], "2099-01-01T00:00:00Z");
    let out = run(hsm.cmd().arg("status"));
    assert_fails(
        &out,
        1,
        "status found problems (see above): this laptop's clock (",
    );
    assert!(
        stdout(&out).contains("BEHIND the newest ledger record (2099-01-01T00:00:00Z)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(snapshot_state(&hsm.state), before);
    std::fs::write(&ledger, &text).unwrap();
    // ca.pub replaced by another key.
    let other = keygen(hsm.dir.path(), "other", &["-t", "ed25519"], "other");
    std::fs::copy(other.with_extension("pub"), hsm.state.join("ca.pub")).unwrap();
    let v = status_json(&mut hsm.cmd(), false);
    assert_eq!(v["ca_pub"]["matches_config"], false);
    assert_eq!(v["ca_pub"]["matches_token"], false);
    let out = run(hsm.cmd().arg("status"));
    assert_fails(&out, 1, "ca.pub holds the key SHA256:");
    assert!(
        stdout(&out).contains("ca.pub:         DOES NOT MATCH"),
        "{}",
        stdout(&out)
    );
}
