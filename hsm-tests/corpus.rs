//! The bad-input corpus (issue 8): several hundred hostile inputs, read from
//! `hsm-tests/corpus/*.cases`, each run through the real binary against one SoftHSM2 token that
//! is initialised once. For every case the driver checks what every refusal must keep: the exit
//! code, no panic, no hang, an `error:` line, no raw unsafe character on stdout or stderr, no
//! PIN-like secret echoed, and a state directory (and the directory of the case's input files)
//! byte-for-byte unchanged on a refusal. The format of the case files is in
//! `hsm-tests/README.md` ("The bad-input corpus").
//!
//! Degenerate requester keys are built here byte by byte (small-order Ed25519 points, ECDSA
//! identities and off-curve points, RSA keys of the wrong size or exponent); the honest ones
//! too, so the corpus needs no key generator. Only the foreign CA and its certificates (for
//! `inspect`) come from `ssh-keygen`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use rand_core::{OsRng, RngCore};

use crate::common::*;

/// Each run is killed (and the case failed) after this long.
const DEADLINE: Duration = Duration::from_secs(30);
/// Address space of each run: reading `/dev/zero` into memory fails here, not in the OOM killer.
const MEMORY_LIMIT: u64 = 2 << 30;
/// Strings that must never appear in any output: the token PIN and SO PIN, and the PIN-like
/// secrets the cases plant (URIs, PIN files, config.toml), also percent-encoded.
const SECRETS: &[&str] = &[
    PIN,
    SO_PIN,
    "246810",
    "975310",
    "135790",
    "%32%34%36%38%31%30",
];
/// The comment of generated requester keys unless a case gives one (`key=ed25519#COMMENT`).
const COMMENT: &str = "alice@laptop";

// ---------------------------------------------------------------------------------------------
// The case files

#[derive(Debug)]
struct Case {
    id: String,
    category: String,
    origin: String,
    /// Accepted exit codes.
    exit: Vec<i32>,
    /// Cases of one group must all succeed or all fail (one parser for mint, status, verify).
    group: Option<String>,
    /// The class of issue 8 the case exercises (`-`: behaviour that already holds).
    class: String,
    setup: Vec<String>,
    needle: Option<String>,
    args: Vec<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hsm-tests/corpus")
}

fn load_cases() -> Vec<Case> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cases"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let category = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let origin = format!("{category}.cases:{}", n + 1);
            let f: Vec<&str> = line.splitn(6, '|').map(str::trim).collect();
            assert_eq!(f.len(), 6, "{origin}: expected 6 fields separated by |");
            let (codes, group) = match f[1].split_once('~') {
                Some((c, g)) => (c, Some(g.to_string())),
                None => (f[1], None),
            };
            let exit = codes
                .split('/')
                .map(|c| {
                    c.parse()
                        .unwrap_or_else(|_| panic!("{origin}: bad exit '{c}'"))
                })
                .collect();
            let dash = |s: &str| (s != "-").then(|| s.to_string());
            cases.push(Case {
                id: f[0].to_string(),
                category: category.clone(),
                origin,
                exit,
                group,
                class: f[2].to_string(),
                setup: dash(f[3])
                    .map(|s| s.split_whitespace().map(String::from).collect())
                    .unwrap_or_default(),
                needle: dash(f[4]),
                args: f[5].split_whitespace().map(String::from).collect(),
            });
        }
    }
    let mut seen = BTreeSet::new();
    for c in &cases {
        assert!(
            seen.insert(&c.id),
            "{}: duplicate case id {}",
            c.origin,
            c.id
        );
    }
    cases
}

/// `configs.txt`: `== NAME` then the text of a config.toml, with `{ca}`, `{algorithm}`,
/// `{fingerprint}` and `{created}` replaced by the baseline's values.
fn load_configs(base: &BaseConfig) -> BTreeMap<String, Vec<u8>> {
    let text = fs::read_to_string(corpus_dir().join("configs.txt")).unwrap();
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            if let Some((n, body)) = current.take() {
                out.insert(n, body);
            }
            current = Some((name.trim().to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((n, body)) = current {
        out.insert(n, body);
    }
    out.into_iter()
        .map(|(n, body)| {
            let body = body
                .replace("{ca}", &base.ca)
                .replace("{algorithm}", &base.algorithm)
                .replace("{fingerprint}", &base.fingerprint)
                .replace("{created}", &base.created);
            (n, body.into_bytes())
        })
        .collect()
}

/// The escapes of the case files: `\\ \s \t \n \r \e \0 \xHH \u{HEX}`.
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('\\') => out.push(b'\\'),
            Some('s') => out.push(b' '),
            Some('t') => out.push(b'\t'),
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('e') => out.push(0x1b),
            Some('0') => out.push(0),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).map_err(|_| format!("bad \\x{hex}"))?);
            }
            Some('u') => {
                if chars.next() != Some('{') {
                    return Err("\\u needs {HEX}".into());
                }
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let c = u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or(format!("bad \\u{{{hex}}}"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            other => return Err(format!("unknown escape \\{other:?}")),
        }
    }
    Ok(out)
}

fn unescape_str(s: &str) -> Result<String, String> {
    unescape(s).map(|b| String::from_utf8_lossy(&b).into_owned())
}

// ---------------------------------------------------------------------------------------------
// Requester keys, byte by byte

fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// An SSH mpint of a non-negative big-endian magnitude (minimal, with a 0 byte before a set
/// high bit).
fn mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let start = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let m = &magnitude[start..];
    let mut v = Vec::with_capacity(m.len() + 1);
    if m.first().is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(m);
    ssh_string(out, &v);
}

fn blob(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        ssh_string(&mut out, p);
    }
    out
}

fn key_line(alg: &str, blob: &[u8], comment: &[u8]) -> Vec<u8> {
    let mut out = format!("{alg} {}", Base64::encode_string(blob)).into_bytes();
    if !comment.is_empty() {
        out.push(b' ');
        out.extend_from_slice(comment);
    }
    out.push(b'\n');
    out
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    OsRng.fill_bytes(&mut v);
    v
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The eight points of small order (the torsion subgroup E[8]), canonically encoded.
const ED25519_SMALL_ORDER: &[(&str, &str)] = &[
    (
        "identity",
        "0100000000000000000000000000000000000000000000000000000000000000",
    ),
    (
        "order2",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ),
    (
        "zero",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
    (
        "order4",
        "0000000000000000000000000000000000000000000000000000000000000080",
    ),
    (
        "order8a",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    ),
    (
        "order8b",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    ),
    (
        "order8c",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    ),
    (
        "order8d",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    ),
];

/// Non-canonical encodings of small-order points (y >= p, or the sign bit set with x = 0).
const ED25519_NONCANONICAL: &[(&str, &str)] = &[
    (
        "noncanon-identity",
        "0100000000000000000000000000000000000000000000000000000000000080",
    ),
    (
        "noncanon-order2",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ),
    (
        "noncanon-p",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ),
    (
        "noncanon-p1",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ),
];

/// Check the tables above with curve25519-dalek: the first eight are exactly the torsion
/// subgroup (the multiples of an order-8 point), the others decode to small-order points.
fn check_ed25519_tables() {
    let t8 = CompressedEdwardsY(hex(ED25519_SMALL_ORDER[4].1).try_into().unwrap())
        .decompress()
        .unwrap();
    let mut multiples = BTreeSet::new();
    let mut p = EdwardsPoint::default();
    for _ in 0..8 {
        multiples.insert(p.compress().to_bytes().to_vec());
        p += t8;
    }
    let table: BTreeSet<Vec<u8>> = ED25519_SMALL_ORDER.iter().map(|(_, h)| hex(h)).collect();
    assert_eq!(table, multiples, "the small-order table is not E[8]");
    for (name, h) in ED25519_SMALL_ORDER.iter().chain(ED25519_NONCANONICAL) {
        let point = CompressedEdwardsY(hex(h).try_into().unwrap()).decompress();
        assert!(point.is_some_and(|p| p.is_small_order()), "{name}");
    }
    assert!(CompressedEdwardsY(ed25519_off_curve())
        .decompress()
        .is_none());
}

/// A 32-byte string that is not the encoding of any point (no x for this y).
fn ed25519_off_curve() -> [u8; 32] {
    (2u8..=255)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .find(|b| CompressedEdwardsY(*b).decompress().is_none())
        .unwrap()
}

fn ed25519_honest() -> Vec<u8> {
    let s = Scalar::from_bytes_mod_order(random(32).try_into().unwrap());
    EdwardsPoint::mul_base(&s).compress().to_bytes().to_vec()
}

/// (curve name, field size, an honest uncompressed SEC1 point)
fn ec_honest(curve: &str) -> (&'static str, usize, Vec<u8>) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    match curve {
        "p256" => (
            "nistp256",
            32,
            p256::SecretKey::random(&mut OsRng)
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        ),
        "p384" => (
            "nistp384",
            48,
            p384::SecretKey::random(&mut OsRng)
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        ),
        "p521" => (
            "nistp521",
            66,
            p521::SecretKey::random(&mut OsRng)
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        ),
        other => panic!("unknown curve {other}"),
    }
}

/// An ECDSA point: `honest`, `identity` (SEC1 0x00), `offcurve` (1, 1), `zero` (0, 0), `ynudge`
/// (an honest x with y + 1), `xff` (x beyond the field).
fn ec_point(curve: &str, kind: &str) -> Option<(&'static str, Vec<u8>)> {
    let (name, len, honest) = ec_honest(curve);
    let coord = |v: u8| {
        let mut c = vec![0u8; len];
        c[len - 1] = v;
        c
    };
    let point = match kind {
        "honest" => honest,
        "identity" => vec![0],
        "offcurve" => [&[4u8][..], &coord(1), &coord(1)].concat(),
        "zero" => [&[4u8][..], &coord(0), &coord(0)].concat(),
        "ynudge" => {
            let mut p = honest;
            let last = p.len() - 1;
            p[last] ^= 1;
            p
        }
        "xff" => {
            let mut p = honest;
            p[1..1 + len].fill(0xff);
            p
        }
        _ => return None,
    };
    Some((name, point))
}

/// An RSA modulus of exactly `bits` bits (top bit set), odd unless `even`.
fn rsa_modulus(bits: usize, even: bool) -> Vec<u8> {
    let mut n = random(bits.div_ceil(8));
    let top = bits % 8;
    if top != 0 {
        n[0] &= (1u8 << top) - 1;
        n[0] |= 1 << (top - 1);
    } else {
        n[0] |= 0x80;
    }
    let last = n.len() - 1;
    if even {
        n[last] &= !1;
    } else {
        n[last] |= 1;
    }
    n
}

fn rsa_blob(e: &[u8], n: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    ssh_string(&mut b, b"ssh-rsa");
    mpint(&mut b, e);
    mpint(&mut b, n);
    b
}

const E65537: &[u8] = &[1, 0, 1];

/// A requester key line from its generator name (`NAME`; the comment is [`COMMENT`]).
fn key(name: &str, comment: &[u8], fx: &Fixtures) -> Option<Vec<u8>> {
    if let Some(rest) = name.strip_prefix("picture-") {
        return picture(rest, fx);
    }
    let line = |alg: &str, b: Vec<u8>| Some(key_line(alg, &b, comment));
    let ed = |p: &[u8]| blob(&[b"ssh-ed25519", p]);
    if let Some(rest) = name.strip_prefix("ed25519-") {
        let table = ED25519_SMALL_ORDER.iter().chain(ED25519_NONCANONICAL);
        let point = match rest {
            "offcurve" => ed25519_off_curve().to_vec(),
            "short" => random(31),
            "long" => random(33),
            _ => hex(table.clone().find(|(n, _)| *n == rest)?.1),
        };
        return line("ssh-ed25519", ed(&point));
    }
    if let Some(rest) = name.strip_prefix("sk-ed25519") {
        let point = match rest {
            "" => ed25519_honest(),
            "-identity" => hex(ED25519_SMALL_ORDER[0].1),
            "-zero" => hex(ED25519_SMALL_ORDER[2].1),
            "-order8" => hex(ED25519_SMALL_ORDER[4].1),
            _ => return None,
        };
        let t = b"sk-ssh-ed25519@openssh.com";
        return line(std::str::from_utf8(t).unwrap(), blob(&[t, &point, b"ssh:"]));
    }
    if let Some(rest) = name.strip_prefix("sk-ecdsa") {
        let kind = rest.strip_prefix('-').unwrap_or("honest");
        let (curve, point) = ec_point("p256", kind)?;
        let t = b"sk-ecdsa-sha2-nistp256@openssh.com";
        return line(
            std::str::from_utf8(t).unwrap(),
            blob(&[t, curve.as_bytes(), &point, b"ssh:"]),
        );
    }
    if let Some(rest) = name.strip_prefix("ecdsa-") {
        let (curve, kind) = rest.split_once('-').unwrap_or((rest, "honest"));
        if kind == "curve-mismatch" {
            let (_, point) = ec_point("p384", "honest")?;
            let t = "ecdsa-sha2-nistp256";
            return line(t, blob(&[t.as_bytes(), b"nistp384", &point]));
        }
        let (cname, point) = ec_point(curve, kind)?;
        let t = format!("ecdsa-sha2-{cname}");
        return line(&t, blob(&[t.as_bytes(), cname.as_bytes(), &point]));
    }
    if let Some(rest) = name.strip_prefix("rsa-") {
        let b = match rest {
            "even" => rsa_blob(E65537, &rsa_modulus(2048, true)),
            "e1" => rsa_blob(&[1], &rsa_modulus(2048, false)),
            "e0" => rsa_blob(&[], &rsa_modulus(2048, false)),
            "e65536" => rsa_blob(&[1, 0, 0], &rsa_modulus(2048, false)),
            "e3" => rsa_blob(&[3], &rsa_modulus(2048, false)),
            "e-negative" => {
                let mut b = Vec::new();
                ssh_string(&mut b, b"ssh-rsa");
                ssh_string(&mut b, &[0x81, 0x01]);
                mpint(&mut b, &rsa_modulus(2048, false));
                b
            }
            bits => rsa_blob(E65537, &rsa_modulus(bits.parse().ok()?, false)),
        };
        return line("ssh-rsa", b);
    }
    let text = |s: &str| Some(s.as_bytes().to_vec());
    match name {
        "ed25519" => line("ssh-ed25519", ed(&ed25519_honest())),
        "ed25519+trailing" => line(
            "ssh-ed25519",
            [ed(&ed25519_honest()), vec![0, 0, 0, 1, 0]].concat(),
        ),
        "ed25519+leading-space" => line("ssh-ed25519", ed(&ed25519_honest())).map(|l| [b"  ", &l[..]].concat()),
        "ed25519+bom" => line("ssh-ed25519", ed(&ed25519_honest()))
            .map(|l| ["\u{feff}".as_bytes(), &l[..]].concat()),
        "dsa" => {
            let mut b = Vec::new();
            ssh_string(&mut b, b"ssh-dss");
            for len in [128, 20, 128, 128] {
                mpint(&mut b, &random(len));
            }
            line("ssh-dss", b)
        }
        "unknown-type" => line("ssh-foo", blob(&[b"ssh-foo", &random(32)])),
        "type-mismatch" => line("ssh-rsa", ed(&ed25519_honest())),
        "ca-key" => Some(fx.ca_line.clone().into_bytes()),
        "cert" => Some(fx.cert_line.clone().into_bytes()),
        "foreign-ca" => Some(fx.foreign_ca_pub.clone()),
        "foreign-cert" => Some(fx.foreign_cert.clone()),
        "foreign-cert-evil" => Some(fx.foreign_cert_evil.clone()),
        "private-openssh" => Some(fx.foreign_ca_private.clone()),
        "private-pem" => text("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAzz\n-----END RSA PRIVATE KEY-----\n"),
        "private-pkcs8" => text("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"),
        "private-one-line" => text("-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjE= -----END OPENSSH PRIVATE KEY-----\n"),
        "putty" => text("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: alice\nPublic-Lines: 2\nAAAAC3NzaC1lZDI1NTE5AAAAIA==\n"),
        "x509" => text("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"),
        "rfc4716" => {
            let b64 = Base64::encode_string(&ed(&ed25519_honest()));
            Some(format!("---- BEGIN SSH2 PUBLIC KEY ----\nComment: \"alice\"\n{b64}\n---- END SSH2 PUBLIC KEY ----\n").into_bytes())
        }
        "garbage" => text("this is not a key\n"),
        "bad-base64" => text("ssh-ed25519 AAAAC3Nz!!!!aC1lZDI1NTE5 alice@laptop\n"),
        "empty" => Some(Vec::new()),
        "blank" => text("\n  \n\t\n"),
        "two-keys" => Some(
            [
                key_line("ssh-ed25519", &ed(&ed25519_honest()), b"alice@laptop"),
                key_line("ssh-ed25519", &ed(&ed25519_honest()), b"mallory@laptop"),
            ]
            .concat(),
        ),
        "key-and-garbage" => Some(
            [
                key_line("ssh-ed25519", &ed(&ed25519_honest()), b"alice@laptop"),
                b"garbage\n".to_vec(),
            ]
            .concat(),
        ),
        "options-prefix" => Some(
            [
                b"command=\"/bin/sh\" ".to_vec(),
                key_line("ssh-ed25519", &ed(&ed25519_honest()), b"alice@laptop"),
            ]
            .concat(),
        ),
        "huge-comment" => line("ssh-ed25519", ed(&ed25519_honest()))
            .map(|l| [&l[..l.len() - 1], &vec![b'a'; 100_000][..], b"\n"].concat()),
        "huge-garbage" => Some(vec![b'A'; 1 << 20]),
        "huge-pin" => Some([format!("{PIN}\n").as_bytes(), &vec![b'x'; 100_000]].concat()),
        "huge-pin-line" => Some("246810".repeat(2000).into_bytes()),
        _ => None,
    }
}

/// The bytes a setup value names: `text:ESCAPED`, or a generator `NAME` / `NAME#COMMENT`.
fn generate(spec: &str, fx: &Fixtures) -> Result<Vec<u8>, String> {
    if let Some(t) = spec.strip_prefix("text:") {
        return unescape(t);
    }
    let (name, comment) = match spec.split_once('#') {
        Some((n, c)) => (n, unescape(c)?),
        None => (spec, COMMENT.as_bytes().to_vec()),
    };
    key(name, &comment, fx).ok_or_else(|| format!("unknown generator '{spec}'"))
}

// ---------------------------------------------------------------------------------------------
// Snapshots of a directory tree

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    File { mode: u32, bytes: Vec<u8> },
    Dir { mode: u32 },
    Link(PathBuf),
    Other { mode: u32 },
}

type Snapshot = BTreeMap<PathBuf, Entry>;

fn snapshot(root: &Path) -> Snapshot {
    fn walk(root: &Path, rel: &Path, out: &mut Snapshot) {
        let path = root.join(rel);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o7777;
        let t = meta.file_type();
        let entry = if t.is_symlink() {
            Entry::Link(fs::read_link(&path).unwrap())
        } else if t.is_dir() {
            let mut names: Vec<_> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                walk(root, &rel.join(n), out);
            }
            Entry::Dir { mode }
        } else if t.is_file() {
            Entry::File {
                mode,
                bytes: fs::read(&path).unwrap(),
            }
        } else {
            // FIFOs, devices, sockets: never opened.
            Entry::Other { mode }
        };
        out.insert(rel.to_path_buf(), entry);
    }
    let mut out = Snapshot::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn describe_diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (p, e) in before {
        match after.get(p) {
            None => out.push(format!("removed {}", p.display())),
            Some(a) if a != e => out.push(format!("changed {}", p.display())),
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("added {}", p.display()));
    }
    out
}

fn restore(root: &Path, snap: &Snapshot) {
    if fs::symlink_metadata(root).is_ok() {
        let _ = fs::set_permissions(root, fs::Permissions::from_mode(0o700));
        if fs::symlink_metadata(root).unwrap().is_dir() {
            fs::remove_dir_all(root).unwrap();
        } else {
            fs::remove_file(root).unwrap();
        }
    }
    let mut dirs = Vec::new();
    for (rel, e) in snap {
        let p = root.join(rel);
        match e {
            Entry::Dir { mode } => {
                fs::create_dir_all(&p).unwrap();
                dirs.push((p, *mode));
            }
            Entry::File { mode, bytes } => {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, bytes).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
            }
            Entry::Link(target) => std::os::unix::fs::symlink(target, &p).unwrap(),
            Entry::Other { .. } => panic!("cannot restore {}", p.display()),
        }
    }
    // Directory modes last (deepest first), so a read-only directory is filled first.
    for (p, mode) in dirs.into_iter().rev() {
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The baseline: one token, one CA, three issued certificates

struct BaseConfig {
    ca: String,
    algorithm: String,
    fingerprint: String,
    created: String,
}

struct Fixtures {
    ca_line: String,
    cert_line: String,
    foreign_ca_pub: Vec<u8>,
    foreign_ca_private: Vec<u8>,
    foreign_cert: Vec<u8>,
    foreign_cert_evil: Vec<u8>,
    base: BaseConfig,
    configs: BTreeMap<String, Vec<u8>>,
    config_bytes: Vec<u8>,
    checkpoints: Vec<u8>,
}

fn ssh_keygen(args: &[&str]) {
    let out = Command::new("ssh-keygen").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn baseline(hsm: &Hsm) -> Fixtures {
    fs::set_permissions(&hsm.pin_file, fs::Permissions::from_mode(0o600)).unwrap();
    hsm.init("ecdsa-p256");
    let base_dir = hsm.path("baseline");
    fs::create_dir(&base_dir).unwrap();
    let key = base_dir.join("alice.pub");
    fs::write(
        &key,
        key_line(
            "ssh-ed25519",
            &blob(&[b"ssh-ed25519", &ed25519_honest()]),
            COMMENT.as_bytes(),
        ),
    )
    .unwrap();
    for n in 1..=3 {
        let out = run(hsm
            .cmd()
            .args(["mint", "-n", "breakglass", "-V", "1h", "--reason"])
            .arg(format!("corpus-baseline-{n}"))
            .arg(&key));
        assert_ok(&out, "baseline mint");
    }
    let cert_line = fs::read_to_string(cert_path(&key)).unwrap();

    // A foreign CA (ssh-keygen) and its certificates, for inspect.
    let foreign = hsm.path("foreign");
    fs::create_dir(&foreign).unwrap();
    let f = |n: &str| foreign.join(n).to_string_lossy().into_owned();
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "foreign-ca",
        "-f",
        &f("ca"),
    ]);
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        COMMENT,
        "-f",
        &f("user"),
    ]);
    ssh_keygen(&[
        "-q",
        "-s",
        &f("ca"),
        "-I",
        "foreign",
        "-n",
        "breakglass",
        "-V",
        "-5m:+2h",
        &f("user.pub"),
    ]);
    let foreign_cert = fs::read(f("user-cert.pub")).unwrap();
    ssh_keygen(&[
        "-q",
        "-s",
        &f("ca"),
        "-I",
        "evil\u{1b}[2J\u{1b}[1;1H\u{202e}id",
        "-n",
        "root\u{1b}[31m,\u{200b}admin",
        "-V",
        "-5m:+2h",
        &f("user.pub"),
    ]);
    let foreign_cert_evil = fs::read(f("user-cert.pub")).unwrap();

    let config_bytes = fs::read(hsm.state.join("config.toml")).unwrap();
    let value: toml::Value = toml::from_str(&String::from_utf8_lossy(&config_bytes)).unwrap();
    let s = |k: &str| value[k].as_str().unwrap().to_string();
    let base = BaseConfig {
        ca: s("ca"),
        algorithm: s("algorithm"),
        fingerprint: s("fingerprint"),
        created: s("created"),
    };
    Fixtures {
        ca_line: fs::read_to_string(hsm.state.join("ca.pub")).unwrap(),
        cert_line,
        foreign_ca_pub: fs::read(f("ca.pub")).unwrap(),
        foreign_ca_private: fs::read(f("ca")).unwrap(),
        foreign_cert,
        foreign_cert_evil,
        configs: load_configs(&base),
        base,
        config_bytes,
        // None since format 2 (bound records need no checkpoint).
        checkpoints: fs::read(hsm.state.join("checkpoints.jsonl")).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Planting a case

/// What a case needs besides its argv: where stdin and the PIN come from, extra environment.
#[derive(Default)]
struct Plan {
    stdin: Option<PathBuf>,
    /// `None`: the corpus PIN file; `Some(None)`: no PIN source at all.
    pin: Option<Option<PathBuf>>,
    env: Vec<(String, OsString)>,
    /// Environment variables removed (`unset=NAME`), e.g. the corpus's state directory.
    unset: Vec<String>,
    tokens: Vec<String>,
}

fn lines_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if v.last().is_some_and(Vec::is_empty) {
        v.pop();
    }
    v
}

fn join_lines(lines: &[Vec<u8>]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| [&l[..], b"\n"].concat())
        .collect()
}

fn replace(hay: &[u8], from: &str, to: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(hay);
    assert!(text.contains(from), "'{from}' not found in the baseline");
    let i = text.find(from).unwrap();
    [&hay[..i], to, &hay[i + from.len()..]].concat()
}

/// `line` with the value of its first `"serial"` field replaced (a bound record starts with
/// `"format"`, a checkpoint and an old record with `"serial"`).
fn set_serial(line: &[u8], serial: &str) -> Vec<u8> {
    let key = b"\"serial\":";
    let at = line.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let end = at + line[at..].iter().position(|b| *b == b',').unwrap();
    [&line[..at], serial.as_bytes(), &line[end..]].concat()
}

/// Every damage [`damage`] knows (checked by `corpus_data_is_well_formed`).
const DAMAGES: &[&str] = &[
    "torn-tail",
    "nul-tail",
    "lost-newline",
    "blank-mid",
    "blank-end",
    "crlf",
    "edit-first",
    "edit-last",
    "delete-first",
    "delete-middle",
    "delete-last",
    "reorder",
    "unbind-last",
    "rebind-last",
    "foreign-ca",
    "nul-line",
    "nonutf8",
    "serial-max-alone",
    "serial-max-then-one",
    "serial-zero",
    "serial-overflow",
    "serial-negative",
    "comment-escape",
    "comment-bidi",
    "empty",
    "missing",
    "dir",
    "symlink",
    "cp-beyond",
    "cp-garbage",
    "cp-torn",
    "cp-missing",
    "cp-empty",
];

/// Damage the ledger or checkpoints of the state directory (`ledger=NAME[,NAME]`).
fn damage(state: &Path, case_dir: &Path, name: &str, fx: &Fixtures) -> Result<(), String> {
    let lp = state.join("ledger.jsonl");
    let cp = state.join("checkpoints.jsonl");
    let ledger = fs::read(&lp).unwrap_or_default();
    let mut l = lines_of(&ledger);
    let write = |bytes: &[u8]| fs::write(&lp, bytes).unwrap();
    let append = |path: &Path, bytes: &[u8]| {
        let mut all = fs::read(path).unwrap_or_default();
        all.extend_from_slice(bytes);
        fs::write(path, all).unwrap();
    };
    match name {
        "torn-tail" => append(&lp, b"{\"serial\":4,\"key_id\":\"tor"),
        "nul-tail" => append(&lp, &[0u8; 40]),
        "lost-newline" => write(&ledger[..ledger.len() - 1]),
        "blank-mid" => {
            l.insert(1, Vec::new());
            write(&join_lines(&l))
        }
        "blank-end" => append(&lp, b"\n"),
        "crlf" => write(
            &ledger
                .iter()
                .flat_map(|b| {
                    if *b == b'\n' {
                        vec![b'\r', b'\n']
                    } else {
                        vec![*b]
                    }
                })
                .collect::<Vec<_>>(),
        ),
        "edit-first" => {
            l[0] = replace(&l[0], "corpus-baseline-1", b"corpus-baseline-X");
            write(&join_lines(&l))
        }
        "edit-last" => {
            l[2] = replace(&l[2], "corpus-baseline-3", b"corpus-baseline-X");
            write(&join_lines(&l))
        }
        "delete-first" => {
            l.remove(0);
            write(&join_lines(&l))
        }
        "delete-middle" => {
            l.remove(1);
            write(&join_lines(&l))
        }
        "delete-last" => {
            l.remove(2);
            write(&join_lines(&l))
        }
        "reorder" => {
            l.swap(1, 2);
            write(&join_lines(&l))
        }
        "unbind-last" => {
            // The newest bound record turned into an old-format one: format and metadata gone.
            let text = String::from_utf8_lossy(&l[2]).into_owned();
            let start = text.find(",\"metadata\":").unwrap();
            l[2] = format!("{}}}", &text[..start])
                .replacen("{\"format\":2,", "{", 1)
                .into_bytes();
            write(&join_lines(&l))
        }
        "rebind-last" => {
            // The newest record's tool_version changed in the field and in its metadata alike:
            // consistent, but not what the token signed.
            let text = String::from_utf8_lossy(&l[2]).into_owned();
            let version = env!("CARGO_PKG_VERSION");
            assert_eq!(text.matches(version).count(), 2, "{text}");
            l[2] = text.replace(version, "9.9.9").into_bytes();
            write(&join_lines(&l))
        }
        "foreign-ca" => {
            let fake = format!("SHA256:{}", "A".repeat(43));
            let text = String::from_utf8_lossy(&ledger).replace(&fx.base.fingerprint, &fake);
            write(text.as_bytes())
        }
        "nul-line" => {
            l[0] = vec![0u8; l[0].len()];
            write(&join_lines(&l))
        }
        "nonutf8" => {
            l[1] = replace(&l[1], "corpus-baseline-2", b"corpus-baseline-\xff");
            write(&join_lines(&l))
        }
        "serial-max-alone" => write(&join_lines(&[set_serial(&l[0], &u64::MAX.to_string())])),
        "serial-max-then-one" => {
            l[1] = set_serial(&l[1], &u64::MAX.to_string());
            write(&join_lines(&l))
        }
        "serial-zero" => {
            l[0] = set_serial(&l[0], "0");
            write(&join_lines(&l))
        }
        "serial-overflow" => {
            l[2] = set_serial(&l[2], "18446744073709551616");
            write(&join_lines(&l))
        }
        "serial-negative" => {
            l[2] = set_serial(&l[2], "-3");
            write(&join_lines(&l))
        }
        "comment-escape" => {
            l[2] = replace(
                &l[2],
                &format!("\"requester_comment\":\"{COMMENT}\""),
                b"\"requester_comment\":\"\\u001b[2J\\u001b[1;1Hbob\\r\\u0085\\u009b31m\"",
            );
            write(&join_lines(&l))
        }
        "comment-bidi" => {
            l[2] = replace(
                &l[2],
                &format!("\"requester_comment\":\"{COMMENT}\""),
                "\"requester_comment\":\"\u{202e}bob\u{2028}fake\u{2029}\u{200b}\"".as_bytes(),
            );
            write(&join_lines(&l))
        }
        "empty" => write(b""),
        "missing" => fs::remove_file(&lp).unwrap(),
        "dir" => {
            fs::remove_file(&lp).unwrap();
            fs::create_dir(&lp).unwrap();
        }
        "symlink" => {
            let elsewhere = case_dir.join("elsewhere-ledger.jsonl");
            fs::rename(&lp, &elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, &lp).unwrap();
        }
        "cp-beyond" => {
            // A checkpoint for a serial the ledger does not have (bound ledgers have none to
            // copy: one that no token signed).
            let c = lines_of(&fx.checkpoints);
            let forged = format!(
                "{{\"serial\":4,\"head\":\"{}\",\"signature\":\"x\"}}",
                "0".repeat(64)
            );
            let last = c.last().cloned().unwrap_or(forged.into_bytes());
            append(&cp, &[set_serial(&last, "4"), b"\n".to_vec()].concat());
        }
        "cp-garbage" => append(&cp, b"garbage\n"),
        "cp-torn" => append(&cp, b"{\"serial\":4,\"he"),
        "cp-missing" => {
            let _ = fs::remove_file(&cp); // bound ledgers have none
        }
        "cp-empty" => fs::write(&cp, b"").unwrap(),
        other => return Err(format!("unknown ledger damage '{other}'")),
    }
    Ok(())
}

fn config_text(name: &str, fx: &Fixtures) -> Result<Vec<u8>, String> {
    let base = &fx.config_bytes;
    Ok(match name {
        "nonutf8" => [&base[..], b"# \xff\xfe not UTF-8\n"].concat(),
        "nul" => [&base[..], b"\0\0\0\n"].concat(),
        "huge" => [&base[..], b"# ", &vec![b'x'; 2 << 20], b"\n"].concat(),
        "huge-line" => [b"ca = \"", &vec![b'x'; 2 << 20][..], b"\"\n"].concat(),
        other => fx
            .configs
            .get(other)
            .cloned()
            .ok_or(format!("unknown config '{other}' (configs.txt)"))?,
    })
}

fn plant(case: &Case, hsm: &Hsm, case_dir: &Path, fx: &Fixtures) -> Result<Plan, String> {
    let mut plan = Plan::default();
    let mut pin_mode = None;
    let ctx = Ctx::new(hsm, case_dir);
    for s in &case.setup {
        let (k, v) = s
            .split_once('=')
            .ok_or(format!("setup '{s}' is not KEY=VALUE"))?;
        let v = placeholders(v, &ctx)?;
        let v = v.as_str();
        let path_or_gen = |v: &str, name: &str| -> Result<PathBuf, String> {
            if let Some(p) = v.strip_prefix('@') {
                return Ok(PathBuf::from(p));
            }
            let p = case_dir.join(name);
            fs::write(&p, generate(v, fx)?).unwrap();
            Ok(p)
        };
        match k {
            "key" => {
                fs::write(case_dir.join("key.pub"), generate(v, fx)?).unwrap();
            }
            k if k.starts_with("file:") => {
                fs::write(case_dir.join(&k[5..]), generate(v, fx)?).unwrap();
            }
            k if k.starts_with("state:") => {
                let p = hsm.state.join(&k[6..]);
                fs::write(&p, generate(v, fx)?).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
            }
            "stdin" => plan.stdin = Some(path_or_gen(v, "stdin")?),
            "pin" => {
                plan.pin = Some(match v {
                    "none" => None,
                    "missing" => Some(case_dir.join("no-such-pin")),
                    "dir" => {
                        let d = case_dir.join("pin-dir");
                        fs::create_dir(&d).unwrap();
                        Some(d)
                    }
                    v => {
                        let p = path_or_gen(v, "pin")?;
                        if !v.starts_with('@') {
                            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
                        }
                        Some(p)
                    }
                })
            }
            "pinmode" => pin_mode = Some(u32::from_str_radix(v, 8).map_err(|e| e.to_string())?),
            "config" => {
                let p = hsm.state.join("config.toml");
                fs::remove_file(&p).unwrap();
                match v.strip_prefix('@') {
                    Some(target) => std::os::unix::fs::symlink(target, &p).unwrap(),
                    None if v == "dir" => fs::create_dir(&p).unwrap(),
                    None if v == "missing" => {}
                    None => fs::write(&p, config_text(v, fx)?).unwrap(),
                }
            }
            "ledger" => {
                for d in v.split(',') {
                    damage(&hsm.state, case_dir, d, fx)?;
                }
            }
            k if k.starts_with("chmod:") => {
                let mode = u32::from_str_radix(v, 8).map_err(|e| e.to_string())?;
                fs::set_permissions(hsm.state.join(&k[6..]), fs::Permissions::from_mode(mode))
                    .unwrap();
            }
            "token" => {
                hsm.add_token(v);
                plan.tokens.push(v.to_string());
            }
            k if k.starts_with("env:") => {
                let value = unescape(v)?;
                plan.env
                    .push((k[4..].to_string(), OsString::from_vec(value)));
            }
            "unset" => plan.unset.push(v.to_string()),
            other => return Err(format!("unknown setup '{other}'")),
        }
    }
    let key = case_dir.join("key.pub");
    if !key.exists() && case.args.iter().any(|a| a.contains("{key}")) {
        fs::write(&key, generate("ed25519", fx)?).unwrap();
    }
    if let Some(mode) = pin_mode {
        let p = match &plan.pin {
            Some(Some(p)) => p.clone(),
            _ => return Err("pinmode= needs pin=".into()),
        };
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }
    Ok(plan)
}

// ---------------------------------------------------------------------------------------------
// Expanding the arguments

struct Ctx {
    dir: PathBuf,
    state: PathBuf,
    label: String,
}

impl Ctx {
    fn new(hsm: &Hsm, dir: &Path) -> Ctx {
        Ctx {
            dir: dir.to_path_buf(),
            state: hsm.state.clone(),
            label: hsm.label.clone(),
        }
    }
}

fn placeholder(name: &str, ctx: &Ctx) -> Result<String, String> {
    let uri = |label: &str| format!("pkcs11:token={label}?module-path={MODULE}");
    if let Some(rest) = name.strip_prefix("now") {
        let mut t = chrono::Utc::now();
        if !rest.is_empty() {
            let (sign, amount) = rest.split_at(1);
            let (n, unit) = amount.split_at(amount.len() - 1);
            let n: i64 = n.parse().map_err(|_| format!("bad {{{name}}}"))?;
            let secs = n * match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                _ => return Err(format!("bad {{{name}}}")),
            };
            let d = chrono::TimeDelta::seconds(secs);
            t = if sign == "-" { t - d } else { t + d };
        }
        return Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    if let Some(rest) = name.strip_prefix("rep:") {
        let (n, text) = rest.split_once(':').ok_or("rep:N:TEXT")?;
        return Ok(text.repeat(n.parse().map_err(|_| "rep:N:TEXT")?));
    }
    if let Some(rest) = name.strip_prefix("seq:") {
        let (n, prefix) = rest.split_once(':').ok_or("seq:N:PREFIX")?;
        let n: usize = n.parse().map_err(|_| "seq:N:PREFIX")?;
        return Ok((1..=n)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(","));
    }
    if let Some(label) = name.strip_prefix("uri:") {
        return Ok(uri(label));
    }
    Ok(match name {
        "key" => ctx.dir.join("key.pub").to_string_lossy().into_owned(),
        "dir" => ctx.dir.to_string_lossy().into_owned(),
        "state" => ctx.state.to_string_lossy().into_owned(),
        "uri" => uri(&ctx.label),
        "module" => MODULE.to_string(),
        "label" => ctx.label.clone(),
        other => return Err(format!("unknown placeholder {{{other}}}")),
    })
}

/// A word of the case file: placeholders `{...}` replaced, then the escapes decoded.
fn expand(word: &str, ctx: &Ctx) -> Result<Vec<u8>, String> {
    if word == "''" {
        return Ok(Vec::new());
    }
    unescape(&placeholders(word, ctx)?)
}

/// Placeholders `{...}` replaced, escapes left as they are.
fn placeholders(word: &str, ctx: &Ctx) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('{') {
        if rest[..i].ends_with("\\u") {
            // an escape \u{HEX}, not a placeholder
            let end = rest[i..].find('}').map_or(rest.len(), |e| i + e + 1);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find('}')
            .ok_or(format!("unclosed {{ in '{word}'"))?
            + i;
        out.push_str(&placeholder(&rest[i + 1..end], ctx)?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The subcommand of an argv (after the global options).
fn subcommand(args: &[Vec<u8>]) -> String {
    let mut i = 0;
    while i < args.len() {
        match &args[i][..] {
            b"--ca" | b"--state-dir" | b"--pin-file" => i += 2,
            a if a.starts_with(b"--") && a.contains(&b'=') => i += 1,
            a => return String::from_utf8_lossy(a).into_owned(),
        }
    }
    String::new()
}

// ---------------------------------------------------------------------------------------------
// Running and judging one case

struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    hung: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn run_bounded(mut c: Command, out_dir: &Path) -> Outcome {
    let out_path = out_dir.join("stdout");
    let err_path = out_dir.join("stderr");
    c.stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap());
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            use rustix::process::{setrlimit, setsid, Resource, Rlimit};
            let lim = |n: u64| Rlimit {
                current: Some(n),
                maximum: Some(n),
            };
            let _ = setsid();
            let _ = setrlimit(Resource::As, lim(MEMORY_LIMIT));
            let _ = setrlimit(Resource::Cpu, lim(60));
            let _ = setrlimit(Resource::Fsize, lim(64 << 20));
            let _ = setrlimit(Resource::Core, lim(0));
            Ok(())
        });
    }
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let (status, hung) = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break (s, false);
        }
        if start.elapsed() > DEADLINE {
            child.kill().unwrap();
            break (child.wait().unwrap(), true);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    let read = |p: &Path| {
        let mut b = fs::read(p).unwrap();
        b.truncate(1 << 20);
        b
    };
    Outcome {
        code: status.code(),
        signal: status.signal(),
        hung,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

/// The records of a ledger: every line (the last one even without its newline) that parses as
/// JSON with a numeric serial.
fn records(bytes: &[u8]) -> Vec<(Vec<u8>, u64)> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).ok()?;
            Some((l.to_vec(), v.get("serial")?.as_u64()?))
        })
        .collect()
}

/// After a successful mint: every record the ledger held is still there, in order, and the
/// serials only grow (no serial issued twice, no evidence cut).
fn ledger_kept(before: &Snapshot, after: &Snapshot) -> Option<String> {
    let file = |s: &Snapshot| match s.get(Path::new("ledger.jsonl")) {
        Some(Entry::File { bytes, .. }) => Some(bytes.clone()),
        _ => None,
    };
    let (Some(old), Some(new)) = (file(before), file(after)) else {
        return None;
    };
    let (old, new) = (records(&old), records(&new));
    if new.len() < old.len() || new[..old.len()] != old[..] {
        return Some(format!(
            "a successful mint lost or rewrote ledger records (serials before {:?}, after {:?})",
            old.iter().map(|r| r.1).collect::<Vec<_>>(),
            new.iter().map(|r| r.1).collect::<Vec<_>>()
        ));
    }
    if new.windows(2).any(|w| w[1].1 <= w[0].1) {
        return Some(format!(
            "the ledger's serials do not grow after a successful mint: {:?}",
            new.iter().map(|r| r.1).collect::<Vec<_>>()
        ));
    }
    None
}

fn excerpt(bytes: &[u8]) -> String {
    let text = breakglass_ca::text::escape_bytes(bytes);
    let text: String = text.chars().take(600).collect();
    text.replace("\\n", "\n      ")
}

fn judge(
    case: &Case,
    out: &Outcome,
    command: &str,
    state: (&Snapshot, &Snapshot),
    inputs: (&Snapshot, &Snapshot),
) -> Vec<String> {
    let mut why = Vec::new();
    if out.hung {
        why.push(format!("hung: killed after {} s", DEADLINE.as_secs()));
    } else if let Some(sig) = out.signal {
        why.push(format!("killed by signal {sig}"));
    }
    if let Some(code) = out.code {
        if !case.exit.contains(&code) {
            why.push(format!("exit {code}, expected {:?}", case.exit));
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    if all.contains("panicked") || all.contains("internal error") {
        why.push("a panic reached the user".into());
    }
    let refused = out.code != Some(0);
    if refused && !out.hung && !stderr.lines().any(|l| l.starts_with("error:")) {
        why.push("no 'error:' line on stderr".into());
    }
    if let Some(needle) = &case.needle {
        let needle = unescape_str(needle).unwrap();
        if !stderr.contains(&needle) {
            why.push(format!("stderr lacks '{needle}'"));
        }
    }
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        match std::str::from_utf8(bytes) {
            Err(e) => why.push(format!(
                "raw non-UTF-8 byte on {name} at offset {}",
                e.valid_up_to()
            )),
            Ok(text) => {
                if let Some(c) = text
                    .chars()
                    .find(|c| *c != '\n' && breakglass_ca::text::is_unsafe_char(*c))
                {
                    why.push(format!("raw U+{:04X} on {name}", c as u32));
                }
            }
        }
        for s in SECRETS {
            if String::from_utf8_lossy(bytes).contains(s) {
                why.push(format!("the PIN-like secret {s} appeared on {name}"));
            }
        }
    }
    let writes = matches!(command, "mint" | "init");
    if refused || !writes {
        let d = describe_diff(state.0, state.1);
        if !d.is_empty() {
            why.push(format!(
                "the state directory changed ({}{})",
                if refused {
                    "refusal: "
                } else {
                    "read-only command: "
                },
                d.join(", ")
            ));
        }
        let d = describe_diff(inputs.0, inputs.1);
        if !d.is_empty() {
            why.push(format!(
                "the case's input directory changed ({})",
                d.join(", ")
            ));
        }
    } else if command == "mint" {
        why.extend(ledger_kept(state.0, state.1));
    }
    why
}

struct Verdict {
    outcome: String,
    success: Option<bool>,
    why: Vec<String>,
    state_changed_on_refusal: bool,
    panicked: bool,
}

fn run_case(case: &Case, hsm: &Hsm, fx: &Fixtures, work: &Path) -> Verdict {
    let case_dir = work.join("case");
    let out_dir = work.join("out");
    for d in [&case_dir, &out_dir] {
        if d.exists() {
            let _ = fs::set_permissions(d, fs::Permissions::from_mode(0o700));
            fs::remove_dir_all(d).unwrap();
        }
        fs::create_dir(d).unwrap();
    }
    let fail = |why: String| Verdict {
        outcome: "data error".into(),
        success: None,
        why: vec![why],
        state_changed_on_refusal: false,
        panicked: false,
    };
    let plan = match plant(case, hsm, &case_dir, fx) {
        Ok(p) => p,
        Err(e) => return fail(format!("data error: {e}")),
    };
    let ctx = Ctx::new(hsm, &case_dir);
    let args = match case
        .args
        .iter()
        .map(|w| expand(w, &ctx))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(a) => a,
        Err(e) => return fail(format!("data error: {e}")),
    };
    let command = subcommand(&args);
    let mut c = hsm.cmd();
    c.current_dir(&case_dir)
        .args(args.into_iter().map(OsString::from_vec));
    match &plan.pin {
        None => {}
        Some(None) => {
            c.env_remove("BREAKGLASS_CA_PIN_FILE");
        }
        Some(Some(p)) => {
            c.env("BREAKGLASS_CA_PIN_FILE", p);
        }
    }
    for (k, v) in &plan.env {
        c.env(k, v);
    }
    for k in &plan.unset {
        c.env_remove(k);
    }
    c.stdin(match &plan.stdin {
        Some(p) => Stdio::from(fs::File::open(p).unwrap()),
        None => Stdio::null(),
    });
    let state_before = snapshot(&hsm.state);
    let inputs_before = snapshot(&case_dir);
    let out = run_bounded(c, &out_dir);
    let state_after = snapshot(&hsm.state);
    let inputs_after = snapshot(&case_dir);
    let mut why = judge(
        case,
        &out,
        &command,
        (&state_before, &state_after),
        (&inputs_before, &inputs_after),
    );
    let refused = out.code != Some(0);
    let state_changed_on_refusal = refused && state_before != state_after;
    let all = [&out.stdout[..], &out.stderr[..]].concat();
    let all = String::from_utf8_lossy(&all);
    let panicked =
        out.signal.is_some() || all.contains("panicked") || all.contains("internal error");
    if !why.is_empty() {
        why.push(format!("stderr: {}", excerpt(&out.stderr)));
        if !out.stdout.is_empty() {
            why.push(format!("stdout: {}", excerpt(&out.stdout)));
        }
    }
    Verdict {
        outcome: match (out.hung, out.code, out.signal) {
            (true, _, _) => "hang".into(),
            (_, Some(c), _) => c.to_string(),
            (_, None, Some(s)) => format!("signal {s}"),
            _ => "?".into(),
        },
        success: (!out.hung).then_some(out.code == Some(0)),
        why,
        state_changed_on_refusal,
        panicked,
    }
}

// ---------------------------------------------------------------------------------------------

/// The case files are well formed: every exit code, setup item, generator, configuration,
/// damage, escape and placeholder is known. Needs no token, so a new case is checked in a
/// second (`cargo test --test hsm corpus::corpus_data`).
#[test]
fn corpus_data_is_well_formed() {
    check_ed25519_tables();
    let cases = load_cases();
    assert!(cases.len() >= 300, "{} cases", cases.len());
    let base = BaseConfig {
        ca: "pkcs11:token=x".into(),
        algorithm: "ecdsa-p256".into(),
        fingerprint: "SHA256:x".into(),
        created: "2026-01-01T00:00:00Z".into(),
    };
    let fx = Fixtures {
        ca_line: String::new(),
        cert_line: String::new(),
        foreign_ca_pub: Vec::new(),
        foreign_ca_private: Vec::new(),
        foreign_cert: Vec::new(),
        foreign_cert_evil: Vec::new(),
        configs: load_configs(&base),
        base,
        config_bytes: Vec::new(),
        checkpoints: Vec::new(),
    };
    let ctx = Ctx {
        dir: PathBuf::from("/case"),
        state: PathBuf::from("/state"),
        label: "corpus-ca".into(),
    };
    let mut errors = Vec::new();
    for case in &cases {
        let mut check = |what: Result<(), String>| {
            if let Err(e) = what {
                errors.push(format!("{} ({}): {e}", case.id, case.origin));
            }
        };
        check(if case.exit.iter().all(|c| (0..=2).contains(c)) {
            Ok(())
        } else {
            Err(format!("exit codes {:?}", case.exit))
        });
        for word in &case.args {
            check(expand(word, &ctx).map(|_| ()));
        }
        if let Some(n) = &case.needle {
            check(unescape(n).map(|_| ()));
        }
        for item in &case.setup {
            check(check_setup(item, &fx, &ctx));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn check_setup(item: &str, fx: &Fixtures, ctx: &Ctx) -> Result<(), String> {
    let (k, v) = item
        .split_once('=')
        .ok_or(format!("setup '{item}' is not KEY=VALUE"))?;
    let v = placeholders(v, ctx)?;
    let octal = |v: &str| {
        u32::from_str_radix(v, 8)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    match k {
        "key" | "stdin" | "pin" if v.starts_with('@') => Ok(()),
        "pin" if ["none", "missing", "dir"].contains(&v.as_str()) => Ok(()),
        "key" | "stdin" | "pin" => generate(&v, fx).map(|_| ()),
        k if k.starts_with("file:") || k.starts_with("state:") => generate(&v, fx).map(|_| ()),
        "pinmode" => octal(&v),
        k if k.starts_with("chmod:") => octal(&v),
        "config" if v.starts_with('@') || v == "dir" || v == "missing" => Ok(()),
        "config" => config_text(&v, fx).map(|_| ()),
        "ledger" => v
            .split(',')
            .find(|d| !DAMAGES.contains(d))
            .map_or(Ok(()), |d| Err(format!("unknown ledger damage '{d}'"))),
        "token" if !v.is_empty() => Ok(()),
        k if k.starts_with("env:") => unescape(&v).map(|_| ()),
        "unset" if !v.is_empty() => Ok(()),
        other => Err(format!("unknown setup '{other}'")),
    }
}

#[test]
fn bad_input_corpus() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    check_ed25519_tables();
    let started = Instant::now();
    let cases = load_cases();
    let filter = std::env::var("BREAKGLASS_CORPUS").ok();
    let selected: Vec<&Case> = cases
        .iter()
        .filter(|c| filter.as_deref().is_none_or(|f| c.id.contains(f)))
        .collect();
    if filter.is_none() {
        assert!(
            cases.len() >= 300,
            "the corpus has {} cases; issue 8 asks for at least 300",
            cases.len()
        );
    }

    let hsm = Hsm::new("corpus-ca");
    let fx = baseline(&hsm);
    let baseline_state = snapshot(&hsm.state);
    let work = hsm.path("work");
    fs::create_dir(&work).unwrap();

    let mut failures: Vec<(String, Vec<String>)> = Vec::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_category: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut groups: BTreeMap<String, Vec<(String, Option<bool>)>> = BTreeMap::new();
    let mut per_class: BTreeMap<String, usize> = BTreeMap::new();
    let (mut panics, mut hangs, mut changed) = (0, 0, 0);
    for case in &selected {
        restore(&hsm.state, &baseline_state);
        let r = run_case(case, &hsm, &fx, &work);
        *codes.entry(r.outcome.clone()).or_default() += 1;
        panics += usize::from(r.panicked);
        hangs += usize::from(r.outcome == "hang");
        changed += usize::from(r.state_changed_on_refusal);
        let entry = per_category.entry(case.category.clone()).or_default();
        entry.0 += 1;
        if let Some(g) = &case.group {
            groups
                .entry(g.clone())
                .or_default()
                .push((case.id.clone(), r.success));
        }
        if !r.why.is_empty() {
            entry.1 += 1;
            *per_class.entry(case.class.clone()).or_default() += 1;
            let mut why = r.why;
            why.insert(0, format!("class {} ({})", case.class, case.origin));
            failures.push((case.id.clone(), why));
        }
    }
    restore(&hsm.state, &baseline_state);
    for (g, members) in &groups {
        let outcomes: BTreeSet<_> = members.iter().map(|(_, s)| *s).collect();
        if outcomes.len() > 1 {
            let detail: Vec<String> = members
                .iter()
                .map(|(id, s)| format!("{id}: {}", if *s == Some(true) { "ok" } else { "refused" }))
                .collect();
            failures.push((
                format!("group ~{g}"),
                vec![format!(
                    "these cases must agree (one ledger parser): {}",
                    detail.join(", ")
                )],
            ));
        }
    }

    println!(
        "\nbad-input corpus: {} cases in {:.1} s",
        selected.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "exit codes: {}",
        codes
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("panics: {panics}, hangs: {hangs}, state changes on refusal: {changed}");
    println!("{:<12} {:>6} {:>8}", "category", "cases", "failing");
    for (cat, (n, f)) in &per_category {
        println!("{cat:<12} {n:>6} {f:>8}");
    }
    if !per_class.is_empty() {
        println!(
            "failing cases by class of issue 8 ('-': behaviour that already held): {}",
            per_class
                .iter()
                .map(|(c, n)| format!("{c}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !failures.is_empty() {
        let mut report = format!("{} failing case(s):\n", failures.len());
        for (id, why) in &failures {
            report.push_str(&format!("  {id}: {}\n", why.join("\n    ")));
        }
        println!("{report}");
        let ids: Vec<&str> = failures.iter().map(|(id, _)| id.as_str()).collect();
        panic!(
            "{} of {} corpus cases failed (details above): {}",
            failures.len(),
            selected.len(),
            ids.join(" ")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Pictures for import-qr (`picture-NAME`)

/// A PNG of one QR code (level M, 4 px per module, quiet zone) holding `payload`'s bytes.
fn qr_picture(payload: &[u8]) -> image::GrayImage {
    let code = qrcode::QrCode::with_error_correction_level(payload, qrcode::EcLevel::M).unwrap();
    let n = code.width() as u32;
    let px = 4;
    image::GrayImage::from_fn((n + 8) * px, (n + 8) * px, |x, y| {
        let (mx, my) = ((x / px) as i64 - 4, (y / px) as i64 - 4);
        let inside = (0..n as i64).contains(&mx) && (0..n as i64).contains(&my);
        let dark = inside && code[(mx as usize, my as usize)] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    })
}

fn png_of(img: &image::GrayImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn jpeg_of(img: &image::GrayImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(img)
        .unwrap();
    out
}

/// CRC-32 of a PNG chunk's type and data.
fn png_crc(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG signature and a header of `w`×`h`, then the start of a cut-off image data chunk.
fn png_header(w: u32, h: u32, depth: u8, colour: u8) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, colour, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&png_crc(&ihdr).to_be_bytes());
    png.extend_from_slice(&65536u32.to_be_bytes());
    png.extend_from_slice(b"IDAT\x78\x9c\x00\x00\x00\xff\xff\x00\x00\x00");
    png
}

/// The picture generators of the import-qr cases: QR codes of hostile payloads, damaged and
/// huge pictures, other formats.
fn picture(name: &str, fx: &Fixtures) -> Option<Vec<u8>> {
    let honest = key("ed25519", b"vault-b", fx)?;
    let honest = String::from_utf8_lossy(&honest).trim().to_string();
    let qr = |payload: &[u8]| Some(png_of(&qr_picture(payload)));
    let ca = fx.ca_line.as_bytes();
    match name {
        "qr-ca" => qr(ca),
        "qr-ca-jpeg" => Some(jpeg_of(&qr_picture(ca))),
        "qr-bundle" => qr(format!(
            "{}\n{honest}\n# REVOKED, do not trust: SHA256:x (ed25519, backup CA)",
            fx.ca_line
        )
        .as_bytes()),
        "qr-private" => qr(&fx.foreign_ca_private),
        "qr-private-pem" => qr(
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        ),
        "qr-cert" => qr(fx.cert_line.as_bytes()),
        "qr-foreign-cert" => qr(&fx.foreign_cert),
        "qr-garbage" => qr(b"this is not a key"),
        "qr-url" => qr(b"https://example.org/ca.pub"),
        "qr-escape" => qr("\u{1b}[2J\u{1b}[1;1Hssh-ed25519 AAAA fake\r\u{202e}\u{85}ok".as_bytes()),
        "qr-binary" => qr(&[0xff, 0xfe, 0x00, 0x9b, 0x1b, 0x5b, 0x32, 0x4a]),
        "qr-empty" => qr(b""),
        "qr-blank" => qr(b" \n\n# nothing here\n"),
        "qr-dsa" => qr(&key("dsa", b"x", fx)?),
        "qr-p521" => qr(&key("ecdsa-p521", b"x", fx)?),
        "qr-rsa-1024" => qr(&key("rsa-1024", b"x", fx)?),
        "qr-ed25519-identity" => qr(&key("ed25519-identity", b"x", fx)?),
        "qr-ecdsa-offcurve" => qr(&key("ecdsa-p256-offcurve", b"x", fx)?),
        "qr-key-and-garbage" => qr(format!("{}\ngarbage", fx.ca_line).as_bytes()),
        "qr-comment-escape" => {
            let line = key("ed25519", b"vault\x1b[2J\xe2\x80\xae", fx)?;
            qr(&line)
        }
        "qr-rfc4716" => qr(&key("rfc4716", b"x", fx)?),
        "two-codes" => {
            let (a, b) = (qr_picture(ca), qr_picture(honest.as_bytes()));
            let (w, h) = (a.width() + b.width(), a.height().max(b.height()));
            let mut img = image::GrayImage::from_pixel(w, h, image::Luma([255]));
            image::imageops::replace(&mut img, &a, 0, 0);
            image::imageops::replace(&mut img, &b, i64::from(a.width()), 0);
            Some(png_of(&img))
        }
        "nocode" => Some(png_of(&image::GrayImage::from_pixel(
            300,
            200,
            image::Luma([240]),
        ))),
        "png-truncated" => {
            let png = png_of(&qr_picture(ca));
            Some(png[..png.len() / 2].to_vec())
        }
        "png-header-only" => Some(png_of(&qr_picture(ca))[..33].to_vec()),
        "png-bad-crc" => {
            let mut png = png_of(&qr_picture(ca));
            png[29] ^= 0xff;
            Some(png)
        }
        "png-huge" => Some(png_header(10_000, 10_000, 1, 0)),
        "png-wide" => Some(png_header(2_000_000_000, 1, 8, 0)),
        "png-zero" => Some(png_header(0, 0, 8, 0)),
        "png-rgba16" => Some(png_header(6000, 6000, 16, 6)),
        "png-bomb" => {
            // A whole, valid PNG of 100 megapixels (1-bit, all white): some 12 KiB.
            let mut out = Vec::new();
            let mut enc = png::Encoder::new(&mut out, 10_000, 10_000);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::One);
            enc.set_compression(png::Compression::Best);
            let mut writer = enc.write_header().unwrap();
            writer.write_image_data(&vec![0xff; 1250 * 10_000]).unwrap();
            writer.finish().unwrap();
            Some(out)
        }
        "jpeg-truncated" => {
            let jpeg = jpeg_of(&qr_picture(ca));
            Some(jpeg[..jpeg.len() / 3].to_vec())
        }
        "jpeg-huge" => {
            let mut jpeg = jpeg_of(&image::GrayImage::from_pixel(8, 8, image::Luma([200])));
            let sof = jpeg.windows(2).position(|m| m == [0xff, 0xc0])?;
            jpeg[sof + 5..sof + 9].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
            Some(jpeg)
        }
        "gif" => Some(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()),
        "webp" => Some(b"RIFF\x1a\x00\x00\x00WEBPVP8 \x0e\x00\x00\x00".to_vec()),
        "heic" => Some(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic".to_vec()),
        "pdf" => Some(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec()),
        "svg" => {
            Some(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n".to_vec())
        }
        "huge" => Some(vec![0x89; 50 * 1024 * 1024 + 1]),
        _ => None,
    }
}
