//! KRLs against OpenSSH's own reader: KRLs built by `breakglass_ca::krl` for file CAs made by
//! ssh-keygen (ECDSA and Ed25519) and certificates made by `ssh-keygen -s`, checked with
//! `ssh-keygen -Q` (REVOKED for exactly the revoked ones), listed with `ssh-keygen -Q -l`,
//! compared byte for byte with `ssh-keygen -k` from the same spec lines, read back by our
//! decoder, and `krl --check` agreeing with `ssh-keygen -Q` on every certificate. Then
//! `krl -o` on a SoftHSM2 state directory: no token, no PIN, nothing written into the state
//! directory, and the `--help` examples run as printed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use breakglass_ca::krl::{CertificateSection, Krl, RevokedBy, WhichKey};
use ssh_key::public::KeyData;
use ssh_key::Certificate;

use crate::common::*;

/// The bytes of the generated date in a KRL header (after magic, format and version).
const DATE: std::ops::Range<usize> = 20..28;
const VERSION: u64 = 20261201103316;
const COMMENT: &str = "breakglass-ca krl test";

fn keygen_cmd() -> Command {
    let mut c = Command::new("ssh-keygen");
    c.stdin(Stdio::null());
    c
}

fn ok(c: &mut Command, what: &str) -> Output {
    let o = run(c);
    assert_ok(&o, what);
    o
}

fn key_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn key_data(path: &Path) -> KeyData {
    ssh_key::PublicKey::from_openssh(&key_line(path))
        .unwrap()
        .key_data()
        .clone()
}

/// A certificate made by `ssh-keygen -s CA -z SERIAL -I ID` for a copy of `user` named
/// `name.pub`; returns the certificate's path.
fn sign(dir: &Path, ca: &Path, user: &Path, name: &str, serial: u64, id: &str) -> PathBuf {
    let pub_path = dir.join(format!("{name}.pub"));
    std::fs::copy(user, &pub_path).unwrap();
    ok(
        keygen_cmd()
            .args(["-q", "-s"])
            .arg(ca)
            .args(["-I", id, "-n", "breakglass", "-V", "-5m:+1h", "-z"])
            .arg(serial.to_string())
            .arg(&pub_path),
        "ssh-keygen -s",
    );
    cert_path(&pub_path)
}

/// `ssh-keygen -Q -f KRL CERT`: true for REVOKED (exit 1), false for ok (exit 0).
fn keygen_revoked(krl: &Path, cert: &Path) -> bool {
    let o = run(keygen_cmd().arg("-Q").arg("-f").arg(krl).arg(cert));
    let out = stdout(&o);
    match o.status.code() {
        Some(0) => {
            assert!(out.trim_end().ends_with(": ok"), "{out}");
            false
        }
        Some(1) => {
            assert!(out.trim_end().ends_with(": REVOKED"), "{out}");
            true
        }
        _ => panic!(
            "ssh-keygen -Q -f {} {}: {out}{}",
            krl.display(),
            cert.display(),
            stderr(&o)
        ),
    }
}

/// `breakglass-ca krl --check CERT -f KRL` with no state directory: true for REVOKED.
fn our_revoked(dir: &Path, krl: &Path, cert: &Path) -> bool {
    let o = run(Command::new(env!("CARGO_BIN_EXE_breakglass-ca"))
        .env("BREAKGLASS_CA_STATE_DIR", dir.join("no-state"))
        .env_remove("BREAKGLASS_CA")
        .env_remove("BREAKGLASS_CA_PIN_FILE")
        .stdin(Stdio::null())
        .args(["krl", "--check"])
        .arg(cert)
        .arg("-f")
        .arg(krl));
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
        _ => panic!("krl --check: {out}{err}"),
    }
}

fn read_cert(path: &Path) -> Certificate {
    Certificate::from_openssh(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}

/// The test's certificates: this CA's and another CA's, for four requesters.
struct World {
    dir: tempfile::TempDir,
    ca_pub: PathBuf,
    users: Vec<PathBuf>,
    /// name -> (certificate path, signed by this CA?)
    certs: Vec<(String, PathBuf, bool)>,
}

fn world(algorithm: &[&str]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let ca_pub = keygen(dir.path(), "ca", algorithm, "test CA");
    let ca = dir.path().join("ca");
    let other = keygen(dir.path(), "other-ca", &["-t", "ed25519"], "other CA");
    let other = other.with_extension("");
    let users: Vec<PathBuf> = [
        ("alice", &["-t", "ed25519"][..]),
        ("bob", &["-t", "ed25519"][..]),
        ("carol", &["-t", "ecdsa"][..]),
        ("dave", &["-t", "ecdsa", "-b", "384"][..]),
    ]
    .iter()
    .map(|(n, a)| keygen(dir.path(), n, a, n))
    .collect();
    let d = dir.path();
    let mut certs = Vec::new();
    let mut add = |ca: &Path, ours: bool, user: usize, name: &str, serial: u64, id: &str| {
        let path = sign(d, ca, &users[user], name, serial, id);
        certs.push((name.to_string(), path, ours));
    };
    for serial in 1..=12u64 {
        let user = (serial as usize - 1) % 3;
        add(
            &ca,
            true,
            user,
            &format!("c{serial}"),
            serial,
            &format!("user{user}-{serial}"),
        );
    }
    add(&ca, true, 3, "c13", 13, "carol-stolen");
    add(&ca, true, 3, "c0", 0, "no-serial");
    add(&ca, true, 0, "c5000", 5000, "far-away");
    add(&other, false, 0, "o1", 1, "other-1");
    add(&other, false, 3, "o2", 2, "carol-stolen");
    add(&other, false, 3, "o100", 100, "other-100");
    World {
        dir,
        ca_pub,
        users,
        certs,
    }
}

/// One revocation scenario: the spec lines for ssh-keygen -k, the same for our library, and
/// the names of the certificates it revokes.
struct Scenario {
    name: &'static str,
    serials: Vec<(u64, u64)>,
    key_ids: Vec<&'static str>,
    keys: Vec<PathBuf>,
    revoked: Vec<&'static str>,
}

fn scenarios(w: &World) -> Vec<Scenario> {
    let ours = |names: &[&'static str]| names.to_vec();
    vec![
        Scenario {
            name: "serial",
            serials: vec![(2, 2)],
            key_ids: vec![],
            keys: vec![],
            revoked: ours(&["c2"]),
        },
        Scenario {
            name: "range",
            serials: vec![(4, 9)],
            key_ids: vec![],
            keys: vec![],
            revoked: ours(&["c4", "c5", "c6", "c7", "c8", "c9"]),
        },
        Scenario {
            name: "scattered",
            serials: vec![(1, 1), (3, 3), (5, 5), (7, 7), (9, 9), (5000, 5000)],
            key_ids: vec![],
            keys: vec![],
            revoked: ours(&["c1", "c3", "c5", "c7", "c9", "c5000"]),
        },
        Scenario {
            // Only under this CA: the other CA's certificate with that key ID stays good.
            name: "key-id",
            serials: vec![],
            key_ids: vec!["carol-stolen", "no-serial"],
            keys: vec![],
            revoked: ours(&["c13", "c0"]),
        },
        Scenario {
            // Bob's key outright (serials 2, 5, 8, 11), from any CA; dave's too (c13, c0,
            // o2, o100).
            name: "requester-key",
            serials: vec![],
            key_ids: vec![],
            keys: vec![w.users[1].clone(), w.users[3].clone()],
            revoked: ours(&["c2", "c5", "c8", "c11", "c13", "c0", "o2", "o100"]),
        },
        Scenario {
            name: "whole-ca",
            serials: vec![],
            key_ids: vec![],
            keys: vec![w.ca_pub.clone()],
            revoked: ours(&[
                "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13",
                "c0", "c5000",
            ]),
        },
        Scenario {
            name: "everything",
            serials: vec![(1, 1), (3, 4), (10, 12)],
            key_ids: vec!["far-away"],
            keys: vec![w.users[1].clone()],
            revoked: ours(&[
                "c1", "c3", "c4", "c10", "c11", "c12", "c5000", "c2", "c5", "c8",
            ]),
        },
    ]
}

fn library_krl(w: &World, s: &Scenario) -> Krl {
    let mut certificates = Vec::new();
    if !s.serials.is_empty() || !s.key_ids.is_empty() {
        certificates.push(CertificateSection {
            ca: Some(key_data(&w.ca_pub)),
            serials: s.serials.clone(),
            key_ids: s.key_ids.iter().map(|s| s.to_string()).collect(),
        });
    }
    Krl {
        version: VERSION,
        generated: 1_790_000_000,
        comment: COMMENT.into(),
        certificates,
        explicit_keys: s.keys.iter().map(|k| key_data(k)).collect(),
        ..Krl::default()
    }
}

fn spec(s: &Scenario) -> String {
    let mut out = String::new();
    for &(lo, hi) in &s.serials {
        if lo == hi {
            out.push_str(&format!("serial: {lo}\n"));
        } else {
            out.push_str(&format!("serial: {lo}-{hi}\n"));
        }
    }
    for id in &s.key_ids {
        out.push_str(&format!("id: {id}\n"));
    }
    for k in &s.keys {
        out.push_str(&format!("key: {}\n", key_line(k)));
    }
    out
}

fn with_date(bytes: &[u8], date: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[DATE].copy_from_slice(date);
    b
}

fn revocations_agree_with_openssh(algorithm: &[&str]) {
    if !require(&["ssh-keygen"]) {
        return;
    }
    let w = world(algorithm);
    let d = w.dir.path();
    let ca_fp = {
        let o = ok(
            keygen_cmd().arg("-l").arg("-f").arg(&w.ca_pub),
            "ssh-keygen -l",
        );
        stdout(&o).split_whitespace().nth(1).unwrap().to_string()
    };
    for s in scenarios(&w) {
        let krl = library_krl(&w, &s);
        let ours = d.join(format!("{}.krl", s.name));
        let bytes = krl.encode().unwrap();
        std::fs::write(&ours, &bytes).unwrap();

        // The same spec through ssh-keygen -k: byte for byte the same after the date.
        let spec_file = d.join(format!("{}.spec", s.name));
        std::fs::write(&spec_file, spec(&s)).unwrap();
        let theirs = d.join(format!("{}-ssh-keygen.krl", s.name));
        ok(
            keygen_cmd()
                .args(["-q", "-k", "-f"])
                .arg(&theirs)
                .arg("-s")
                .arg(&w.ca_pub)
                .args(["-z", &VERSION.to_string(), "-C", COMMENT])
                .arg(&spec_file),
            "ssh-keygen -k",
        );
        let their_bytes = std::fs::read(&theirs).unwrap();
        assert_eq!(
            with_date(&their_bytes, &bytes[DATE]),
            bytes,
            "{}: our KRL differs from ssh-keygen -k's",
            s.name
        );
        // Our decoder reads ssh-keygen's KRL as the KRL we meant.
        let decoded = Krl::decode(&their_bytes).unwrap();
        assert_eq!(
            Krl {
                generated: krl.generated,
                ..decoded
            },
            krl.canonical().unwrap(),
            "{}",
            s.name
        );

        // ssh-keygen -Q, ssh-keygen's KRL, our check and krl --check: exactly the set.
        let want: BTreeSet<&str> = s.revoked.iter().copied().collect();
        for (name, cert, _) in &w.certs {
            let expected = want.contains(name.as_str());
            let by_keygen = keygen_revoked(&ours, cert);
            assert_eq!(by_keygen, expected, "{}: ssh-keygen -Q on {name}", s.name);
            assert_eq!(
                keygen_revoked(&theirs, cert),
                expected,
                "{}: {name}",
                s.name
            );
            let lib = krl.check(&read_cert(cert)).unwrap();
            assert_eq!(
                lib.is_some(),
                expected,
                "{}: library check of {name}",
                s.name
            );
            assert_eq!(
                our_revoked(d, &ours, cert),
                by_keygen,
                "{}: krl --check {name}",
                s.name
            );
        }

        // ssh-keygen -Q -l lists the sections.
        let o = ok(
            keygen_cmd().args(["-Q", "-l", "-f"]).arg(&ours),
            "ssh-keygen -Q -l",
        );
        let listed = stdout(&o);
        assert!(
            listed.starts_with(&format!("# KRL version {VERSION}\n")),
            "{listed}"
        );
        assert!(
            listed.contains(&format!("# Comment: {COMMENT}\n")),
            "{listed}"
        );
        let has_ca_section = !s.serials.is_empty() || !s.key_ids.is_empty();
        assert_eq!(
            listed.contains(&format!(
                "# CA key {} {ca_fp}",
                key_line(&w.ca_pub).split(' ').next().unwrap()
            )),
            has_ca_section,
            "{listed}"
        );
        for &(lo, hi) in &s.serials {
            let line = if lo == hi {
                format!("serial: {lo}\n")
            } else {
                format!("serial: {lo}-{hi}\n")
            };
            assert!(listed.contains(&line), "{}: {line} not in {listed}", s.name);
        }
        for id in &s.key_ids {
            assert!(listed.contains(&format!("id: {id}\n")), "{listed}");
        }
        for k in &s.keys {
            let o = ok(keygen_cmd().arg("-l").arg("-f").arg(k), "ssh-keygen -l");
            let fp = stdout(&o).split_whitespace().nth(1).unwrap().to_string();
            assert!(
                listed.contains(&format!("hash: {fp} # ")),
                "{fp} not in {listed}"
            );
        }
    }
}

#[test]
fn revocations_agree_with_openssh_ecdsa_ca() {
    revocations_agree_with_openssh(&["-t", "ecdsa"]);
}

#[test]
fn revocations_agree_with_openssh_ed25519_ca() {
    revocations_agree_with_openssh(&["-t", "ed25519"]);
}

/// Random serial patterns (runs and gaps of many lengths, fixed seed), within a span where no
/// bitmap reaches MAX_BITMAP_BITS: byte for byte what ssh-keygen -k writes, and both revoke
/// the same serials. This pins the choice of list, range and bitmap to krl.c's cost model.
#[test]
fn random_serial_patterns_match_ssh_keygen_byte_for_byte() {
    if !require(&["ssh-keygen"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca_pub = keygen(d, "ca", &["-t", "ed25519"], "ca");
    let mut rng = Lcg(20261201);
    let mut kinds = BTreeSet::new();
    for round in 0..40 {
        let mut runs = Vec::new();
        let mut at = 1 + rng.next(50);
        for _ in 0..1 + rng.next(120) {
            let len = match rng.next(5) {
                0 => rng.next(300),
                1 => rng.next(20),
                _ => 0,
            };
            if at + len > 15_000 {
                break;
            }
            runs.push((at, at + len));
            at += len
                + 2
                + match rng.next(4) {
                    0 => rng.next(2_000),
                    1 => rng.next(150),
                    _ => rng.next(12),
                };
        }
        // Far-off serials too, in lists.
        if round % 3 == 0 {
            runs.push((1_000_000 + rng.next(1000), 1_000_000 + 1000));
            runs.push((u64::MAX - 5, u64::MAX - 5));
        }
        let s = Scenario {
            name: "random",
            serials: runs.clone(),
            key_ids: vec![],
            keys: vec![],
            revoked: vec![],
        };
        let krl = Krl {
            version: 3,
            certificates: vec![CertificateSection {
                ca: Some(key_data(&ca_pub)),
                serials: runs,
                key_ids: vec![],
            }],
            ..Krl::default()
        };
        let bytes = krl.encode().unwrap();
        let (_, layout) = Krl::decode_layout(&bytes).unwrap();
        for (n, kind) in [
            (layout.serial_lists, "list"),
            (layout.serial_ranges, "range"),
            (layout.serial_bitmaps, "bitmap"),
        ] {
            if n > 0 {
                kinds.insert(kind);
            }
        }
        let spec_file = d.join(format!("r{round}.spec"));
        std::fs::write(&spec_file, spec(&s)).unwrap();
        let theirs = d.join(format!("r{round}.krl"));
        ok(
            keygen_cmd()
                .args(["-q", "-k", "-f"])
                .arg(&theirs)
                .arg("-s")
                .arg(&ca_pub)
                .args(["-z", "3"])
                .arg(&spec_file),
            "ssh-keygen -k",
        );
        let their_bytes = std::fs::read(&theirs).unwrap();
        assert_eq!(
            with_date(&their_bytes, &bytes[DATE]),
            bytes,
            "round {round}: our KRL differs from ssh-keygen -k's ({layout:?})"
        );
    }
    assert_eq!(kinds.len(), 3, "the patterns used every kind: {kinds:?}");
}

/// 10,000 serials, every other one: ssh-keygen -k makes one 20,000-bit bitmap that its own
/// reader refuses ("bignum is too large"); ours splits it into bitmaps OpenSSH reads.
#[test]
fn dense_serials_stay_readable_by_openssh() {
    if !require(&["ssh-keygen"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca_pub = keygen(d, "ca", &["-t", "ed25519"], "ca");
    let ca = d.join("ca");
    let user = keygen(d, "user", &["-t", "ed25519"], "user");
    let serials: Vec<(u64, u64)> = (1..=20_000).step_by(2).map(|s| (s, s)).collect();
    let krl = Krl {
        version: 1,
        certificates: vec![CertificateSection {
            ca: Some(key_data(&ca_pub)),
            serials: serials.clone(),
            key_ids: vec![],
        }],
        ..Krl::default()
    };
    let bytes = krl.encode().unwrap();
    let (_, layout) = Krl::decode_layout(&bytes).unwrap();
    assert_eq!(layout.serial_bitmaps, 2, "{layout:?}");
    let path = d.join("dense.krl");
    std::fs::write(&path, &bytes).unwrap();
    let o = ok(
        keygen_cmd().args(["-Q", "-l", "-f"]).arg(&path),
        "ssh-keygen -Q -l",
    );
    let listed = stdout(&o);
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("serial: ")).count(),
        10_000
    );
    assert!(listed.contains("\nserial: 19999\n"));
    for (serial, revoked) in [
        (1, true),
        (2, false),
        (16383, true),
        (16385, true),
        (19999, true),
        (20000, false),
        (20001, false),
    ] {
        let cert = sign(d, &ca, &user, &format!("u{serial}"), serial, "x");
        assert_eq!(keygen_revoked(&path, &cert), revoked, "serial {serial}");
        assert_eq!(our_revoked(d, &path, &cert), revoked, "serial {serial}");
    }
    // What ssh-keygen makes of the same spec (recorded, not required: a later OpenSSH may
    // fix it).
    let spec: String = serials
        .iter()
        .map(|(s, _)| format!("serial: {s}\n"))
        .collect();
    std::fs::write(d.join("dense.spec"), spec).unwrap();
    let theirs = d.join("dense-ssh-keygen.krl");
    ok(
        keygen_cmd()
            .args(["-q", "-k", "-f"])
            .arg(&theirs)
            .arg("-s")
            .arg(&ca_pub)
            .args(["-z", "1"])
            .arg(d.join("dense.spec")),
        "ssh-keygen -k",
    );
    let o = run(keygen_cmd().args(["-Q", "-l", "-f"]).arg(&theirs));
    eprintln!(
        "ssh-keygen -k for 10,000 every-other serials: {} bytes; ssh-keygen -Q -l on it: exit {:?} {}",
        std::fs::metadata(&theirs).unwrap().len(),
        o.status.code(),
        stderr(&o).trim()
    );
}

/// ssh-keygen's hash sections (`sha1:`, `sha256:`, `hash:`) and the any-CA section (`-s
/// none`): our decoder reads them and our check agrees with ssh-keygen -Q.
#[test]
fn ssh_keygen_hash_and_wildcard_krls_decode() {
    if !require(&["ssh-keygen"]) {
        return;
    }
    let w = world(&["-t", "ecdsa"]);
    let d = w.dir.path();
    let fp = |k: &Path| {
        let o = ok(keygen_cmd().arg("-l").arg("-f").arg(k), "ssh-keygen -l");
        stdout(&o).split_whitespace().nth(1).unwrap().to_string()
    };
    let spec = format!(
        "sha1: {}\nsha256: {}\nhash: {}\n",
        key_line(&w.users[0]),
        key_line(&w.users[1]),
        fp(&w.ca_pub)
    );
    std::fs::write(d.join("hash.spec"), spec).unwrap();
    let krl_path = d.join("hash.krl");
    ok(
        keygen_cmd()
            .args(["-q", "-k", "-f"])
            .arg(&krl_path)
            .arg(d.join("hash.spec")),
        "ssh-keygen -k",
    );
    let (krl, layout) = Krl::decode_layout(&std::fs::read(&krl_path).unwrap()).unwrap();
    assert_eq!(
        (layout.sha1_fingerprints, layout.sha256_fingerprints),
        (1, 2)
    );
    for (name, cert, ours) in &w.certs {
        let lib = krl.check(&read_cert(cert)).unwrap();
        // Every certificate of this CA (its key's hash), and alice's and bob's from any CA.
        let key = read_cert(cert).public_key().clone();
        let expected = *ours || key == key_data(&w.users[0]) || key == key_data(&w.users[1]);
        assert_eq!(lib.is_some(), expected, "{name}: {lib:?}");
        assert_eq!(keygen_revoked(&krl_path, cert), expected, "{name}");
        assert_eq!(our_revoked(d, &krl_path, cert), expected, "{name}");
        let c = read_cert(cert);
        if c.public_key() == &key_data(&w.users[0]) {
            assert_eq!(lib, Some(RevokedBy::Sha1(WhichKey::Certificate)));
        } else if c.public_key() == &key_data(&w.users[1]) {
            assert_eq!(lib, Some(RevokedBy::Sha256(WhichKey::Certificate)));
        } else if *ours {
            assert_eq!(lib, Some(RevokedBy::Sha256(WhichKey::SigningCa)));
        }
    }

    // Key IDs under any CA (-s none): the other CA's "carol-stolen" too.
    std::fs::write(d.join("any.spec"), "id: carol-stolen\n").unwrap();
    let any = d.join("any.krl");
    ok(
        keygen_cmd()
            .args(["-q", "-k", "-s", "none", "-f"])
            .arg(&any)
            .arg(d.join("any.spec")),
        "ssh-keygen -k -s none",
    );
    let krl = Krl::decode(&std::fs::read(&any).unwrap()).unwrap();
    assert_eq!(krl.certificates.len(), 1);
    assert_eq!(krl.certificates[0].ca, None);
    for (name, cert, _) in &w.certs {
        let expected = name == "c13" || name == "o2";
        let lib = krl.check(&read_cert(cert)).unwrap();
        assert_eq!(lib.is_some(), expected, "{name}");
        if expected {
            assert!(matches!(lib, Some(RevokedBy::KeyId { any_ca: true, .. })));
        }
        assert_eq!(keygen_revoked(&any, cert), expected, "{name}");
        assert_eq!(our_revoked(d, &any, cert), expected, "{name}");
    }
}

/// Run `breakglass-ca ARGS` in `cwd` with the state directory and nothing else: no token
/// configuration (SOFTHSM2_CONF removed), no PIN file.
fn tokenless(hsm: &Hsm, cwd: &Path) -> Command {
    let mut c = hsm.cmd();
    c.env_remove("BREAKGLASS_CA_PIN_FILE")
        .env("SOFTHSM2_CONF", hsm.path("no-such-softhsm2.conf"))
        .current_dir(cwd);
    c
}

/// `krl -o` on a state directory with no revocations: a valid empty KRL, made without the
/// token; never written into the state directory, which stays byte-for-byte unchanged.
#[test]
fn krl_output_from_an_empty_ledger() {
    if !require(&["softhsm2-util", "ssh-keygen", "python3", MODULE]) {
        return;
    }
    let hsm = Hsm::new("krl-ca");
    let ca_line = hsm.init("ecdsa-p256");
    let user = keygen(hsm.dir.path(), "alice", &["-t", "ed25519"], "alice");
    assert_ok(&hsm.mint(&user, &["-n", "breakglass"]), "mint");
    let cert = cert_path(&user);
    let out_dir = hsm.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    let before = snapshot_state(&hsm.state);

    let o = run(tokenless(&hsm, &out_dir).args(["krl", "-o", "breakglass-ca.krl"]));
    assert_ok(&o, "krl -o");
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    let path = out_dir.join("breakglass-ca.krl");
    let bytes = std::fs::read(&path).unwrap();
    let sha = {
        use sha2::Digest;
        base16ct::lower::encode_string(&sha2::Sha256::digest(&bytes))
    };
    for needle in [
        &format!(
            "wrote breakglass-ca.krl: an OpenSSH KRL, {} bytes, SHA-256 {sha}",
            bytes.len()
        )[..],
        "version:   0 (no revocation recorded)",
        "revokes:   nothing (an empty KRL",
        "ssh-keygen -Q -l -f breakglass-ca.krl",
        "sh install.sh --krl breakglass-ca.krl",
    ] {
        assert!(err.contains(needle), "'{needle}' not in:\n{err}");
    }
    let krl = Krl::decode(&bytes).unwrap();
    let ca = ssh_key::PublicKey::from_openssh(&ca_line).unwrap();
    let fp = ca.fingerprint(ssh_key::HashAlg::Sha256).to_string();
    assert_eq!(krl.version, 0);
    assert_eq!(krl.comment, format!("breakglass-ca CA {fp}"));
    assert!(krl.certificates.is_empty() && krl.explicit_keys.is_empty());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        krl.generated <= now && krl.generated + 120 > now,
        "{}",
        krl.generated
    );
    let o = ok(
        keygen_cmd().args(["-Q", "-l", "-f"]).arg(&path),
        "ssh-keygen -Q -l",
    );
    let listed = stdout(&o);
    assert!(listed.starts_with("# KRL version 0\n"), "{listed}");
    assert!(
        listed.contains(&format!("# Comment: breakglass-ca CA {fp}\n")),
        "{listed}"
    );
    assert!(!keygen_revoked(&path, &cert));

    // --check with -f and without (the KRL the ledger gives now).
    let o = run(tokenless(&hsm, &out_dir)
        .args(["krl", "--check"])
        .arg(&cert)
        .args(["-f", "breakglass-ca.krl"]));
    assert_ok(&o, "krl --check -f");
    assert_eq!(stdout(&o), format!("{}: ok\n", cert.display()));
    let o = run(tokenless(&hsm, &out_dir)
        .args(["krl", "--check"])
        .arg(&cert));
    assert_ok(&o, "krl --check");
    assert_eq!(stdout(&o), format!("{}: ok\n", cert.display()));
    assert!(
        stderr(&o).contains("against the KRL this ledger gives now (version 0"),
        "{}",
        stderr(&o)
    );

    // Into a pipe: the same KRL; onto a terminal: refused.
    let o = run(tokenless(&hsm, &out_dir).args(["krl", "-o", "-"]));
    assert_ok(&o, "krl -o -");
    assert_eq!(Krl::decode(&o.stdout).unwrap().comment, krl.comment);
    let script = format!(
        "import os, pty, sys\npid, fd = pty.fork()\nif pid == 0:\n    os.execv({bin:?}, [{bin:?}, 'krl', '-o', '-'])\nout = b''\nwhile True:\n    try:\n        chunk = os.read(fd, 4096)\n    except OSError:\n        break\n    if not chunk:\n        break\n    out += chunk\n_, status = os.waitpid(pid, 0)\nsys.stdout.write(out.decode(errors='replace'))\nsys.exit(os.waitstatus_to_exitcode(status))\n",
        bin = env!("CARGO_BIN_EXE_breakglass-ca")
    );
    let mut py = hsm.cmd_with("python3");
    py.env_remove("BREAKGLASS_CA_PIN_FILE")
        .args(["-c", &script])
        .current_dir(&out_dir);
    let o = run(&mut py);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("refusing to write it to the terminal"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("SSHKRL"));

    // Into the state directory, by any path: refused, nothing written.
    for target in [
        hsm.state.join("breakglass-ca.krl"),
        hsm.state.join("ledger.jsonl"),
        out_dir.join("../state/x.krl"),
    ] {
        let o = run(tokenless(&hsm, &out_dir).args(["krl", "-o"]).arg(&target));
        assert_fails(&o, 2, "inside the state directory");
    }
    std::os::unix::fs::symlink(&hsm.state, out_dir.join("link")).unwrap();
    let o = run(tokenless(&hsm, &out_dir).args(["krl", "-o", "link/x.krl"]));
    assert_fails(&o, 2, "inside the state directory");
    assert_eq!(
        snapshot_state(&hsm.state),
        before,
        "the state directory changed"
    );
}

/// Hostile inputs to `krl --check`: clear errors, exit 1 (2 for the command line), no panic.
#[test]
fn krl_check_refuses_what_is_not_a_certificate_or_a_krl() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let hsm = Hsm::new("krl-hostile");
    hsm.init("ecdsa-p256");
    let d = hsm.dir.path();
    let user = keygen(d, "alice", &["-t", "ed25519"], "alice");
    assert_ok(&hsm.mint(&user, &["-n", "breakglass"]), "mint");
    let cert = cert_path(&user);
    let good_krl = d.join("good.krl");
    assert_ok(
        &run(tokenless(&hsm, d).args(["krl", "-o"]).arg(&good_krl)),
        "krl -o",
    );
    let before = snapshot_state(&hsm.state);

    let write = |name: &str, content: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let private = d.join("alice");
    let two = write(
        "two.pub",
        format!(
            "{}\n{}",
            std::fs::read_to_string(&cert).unwrap(),
            std::fs::read_to_string(&cert).unwrap()
        )
        .as_bytes(),
    );
    let bad_certs: Vec<(PathBuf, &str)> = vec![
        (private, "holds a PRIVATE key, not a certificate"),
        (
            user.clone(),
            "holds a plain public key (ssh-ed25519), not a certificate",
        ),
        (
            write("garbage.pub", b"\x1b[2Jhello"),
            "is not an OpenSSH certificate",
        ),
        (write("empty.pub", b""), "holds no certificate"),
        (two, "holds 2 lines"),
        (
            write("bad-cert.pub", b"ssh-ed25519-cert-v01@openssh.com AAAA x"),
            "is not a readable OpenSSH certificate",
        ),
        (d.join("missing-cert.pub"), "cannot read the certificate"),
        (d.to_path_buf(), "is a directory"),
    ];
    for (path, needle) in bad_certs {
        let o = run(tokenless(&hsm, d)
            .args(["krl", "--check"])
            .arg(&path)
            .arg("-f")
            .arg(&good_krl));
        assert_fails(&o, if needle == "is a directory" { 2 } else { 1 }, needle);
        assert!(!stderr(&o).contains('\u{1b}'), "{}", stderr(&o));
    }
    let mut truncated = std::fs::read(&good_krl).unwrap();
    truncated.pop();
    let bad_krls: Vec<(PathBuf, &str)> = vec![
        (
            write("text.krl", b"serial: 1\n"),
            "not a valid KRL: it does not start with the KRL magic",
        ),
        (write("cut.krl", &truncated), "not a valid KRL: "),
        (write("empty.krl", b""), "does not start with the KRL magic"),
        (cert.clone(), "does not start with the KRL magic"),
        (d.join("missing.krl"), "cannot read the KRL"),
    ];
    for (path, needle) in bad_krls {
        let o = run(tokenless(&hsm, d)
            .args(["krl", "--check"])
            .arg(&cert)
            .arg("-f")
            .arg(&path));
        assert_fails(&o, 1, needle);
        assert!(
            stdout(&o).is_empty(),
            "an answer despite a bad KRL: {}",
            stdout(&o)
        );
    }
    // A KRL over the size limit is refused without reading it all.
    let big = d.join("big.krl");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(breakglass_ca::krl::MAX_KRL_BYTES + 1).unwrap();
    let o = run(tokenless(&hsm, d)
        .args(["krl", "--check"])
        .arg(&cert)
        .arg("-f")
        .arg(&big));
    assert_fails(&o, 2, "is larger than 16384 KiB");
    // Usage: -f without --check, neither -o nor --check, both.
    for args in [
        &["krl", "-f", "x.krl"][..],
        &["krl"][..],
        &["krl", "-o", "x", "--check", "y"][..],
    ] {
        let o = run(tokenless(&hsm, d).args(args));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(
        snapshot_state(&hsm.state),
        before,
        "the state directory changed"
    );
}

/// Every example of `krl --help` works as printed (in a directory holding alice-cert.pub).
#[test]
fn krl_help_examples_work_as_printed() {
    if !require(&["softhsm2-util", "ssh-keygen", "sh", MODULE]) {
        return;
    }
    let hsm = Hsm::new("krl-help");
    hsm.init("ecdsa-p256");
    let work = hsm.path("work");
    std::fs::create_dir(&work).unwrap();
    let user = keygen(&work, "alice", &["-t", "ed25519"], "alice");
    assert_ok(&hsm.mint(&user, &["-n", "breakglass"]), "mint");
    assert!(work.join("alice-cert.pub").exists());
    let help = stdout(&ok(
        tokenless(&hsm, &work).args(["krl", "--help"]),
        "krl --help",
    ));
    let examples: Vec<&str> = help
        .split("Examples:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(examples.len(), 4, "{help}");
    let path = path_with_binary();
    for example in examples {
        let mut sh = hsm.cmd_with("sh");
        sh.env_remove("BREAKGLASS_CA_PIN_FILE")
            .env("SOFTHSM2_CONF", hsm.path("no-such-softhsm2.conf"))
            .env("PATH", &path)
            .current_dir(&work)
            .args(["-c", example]);
        assert_ok(&run(&mut sh), example);
    }
    assert!(work.join("breakglass-ca.krl").exists());
}

/// Red team: a revocation dated in the future (a forged newest line, or one written with a
/// clock far ahead) sets the KRL version; hosts that install that KRL refuse every later
/// one as older, a whole-CA revocation included. `krl -o` and `host-config` made it without a
/// word; they now warn before it is published.
#[test]
fn a_krl_version_later_than_the_clock_is_warned_about() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let hsm = Hsm::new("krl-ca");
    hsm.init("ed25519");
    let user = keygen(hsm.dir.path(), "alice", &["-t", "ed25519"], "alice");
    assert_ok(&hsm.mint(&user, &["-n", "breakglass", "-o", "-"]), "mint");
    assert_ok(
        &run(hsm
            .cmd()
            .args(["revoke", "--serial", "1", "--reason", "INC-1"])),
        "revoke",
    );
    let out_dir = hsm.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    let o = run(tokenless(&hsm, &out_dir).args(["krl", "-o", "now.krl"]));
    assert_ok(&o, "krl -o");
    assert!(!stderr(&o).contains("WARNING"), "{}", stderr(&o));
    // The newest line's time moved to 2099 (it is still a well-formed record).
    let ledger = hsm.state.join("ledger.jsonl");
    let text = std::fs::read_to_string(&ledger).unwrap();
    let at = text.rfind("\"revoked_at\":\"").unwrap() + "\"revoked_at\":\"".len();
    let mut forged = text.clone();
    forged.replace_range(at..at + 20, "2099-01-01T00:00:00Z");
    std::fs::write(&ledger, forged).unwrap();
    let o = run(tokenless(&hsm, &out_dir).args(["krl", "-o", "future.krl"]));
    assert_ok(&o, "krl -o");
    let err = stderr(&o);
    assert!(
        err.contains("WARNING: the KRL version 20990101000000 is the newest revocation's time, 2099-01-01T00:00:00Z, later than this computer's clock")
            && err.contains("refuse every later KRL"),
        "{err}"
    );
    let o = run(hsm.cmd().current_dir(&out_dir).args([
        "host-config",
        "--user",
        "breakglass",
        "--out",
        "host",
    ]));
    assert_ok(&o, "host-config");
    assert!(
        stderr(&o).contains("WARNING: the KRL version 20990101000000"),
        "{}",
        stderr(&o)
    );
}

/// An `-o` that is not a plain file (a symbolic link, a directory) is refused with a hint
/// that fits the command: `krl -o` has no "leave -o out" (that is an error there) and its
/// `-o -` is for a pipe only; `mint` writes KEY-cert.pub without -o; `pubkey` prints without
/// -o; `pubkey --format png` writes a file only. Nothing is written anywhere.
#[test]
fn a_refused_output_path_gets_the_hint_of_its_command() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let hsm = Hsm::new("krl-ca");
    hsm.init("ed25519");
    let user = keygen(hsm.dir.path(), "alice", &["-t", "ed25519"], "alice");
    let out = hsm.path("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(hsm.path("elsewhere"), out.join("link")).unwrap();
    std::fs::create_dir(out.join("dir")).unwrap();
    let before = (snapshot_state(&hsm.state), snapshot_state(&out));
    let user_s = user.to_str().unwrap();
    // (command, what the hint must say, what it must not say)
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["krl", "-o"],
            "a KRL is binary: -o - writes it into a pipe only, never onto a terminal",
            "leave -o out",
        ),
        (
            &["mint", "--reason", "INC-1", "-n", "breakglass", user_s, "-o"],
            "leave -o out to write KEY-cert.pub beside KEY.pub, or use -o - to print the certificate",
            "for the terminal",
        ),
        (
            &["pubkey", "-o"],
            "to print it instead, leave -o out or use -o -",
            "KRL",
        ),
        (
            &["pubkey", "--format", "png", "-o"],
            "the image is binary and goes into a file only",
            "leave -o out",
        ),
    ];
    for (args, want, not) in cases {
        for (target, why) in [
            ("link", "is a symbolic link, not a regular file"),
            ("dir", "exists and is not a regular file"),
        ] {
            let o = run(hsm.cmd().current_dir(&out).args(args).arg(target));
            assert_fails(&o, 2, why);
            let hint = stderr(&o)
                .lines()
                .find(|l| l.starts_with("hint: "))
                .unwrap_or_else(|| panic!("{args:?} {target}: no hint:\n{}", stderr(&o)))
                .to_string();
            assert!(
                hint.contains(want) && !hint.contains(not),
                "{args:?} {target}: {hint}"
            );
        }
    }
    assert_eq!(
        (snapshot_state(&hsm.state), snapshot_state(&out)),
        before,
        "a refused output changed something"
    );
    assert!(!hsm.path("elsewhere").exists());
}
