//! Requester keys through the real binary: every kind of degenerate key, built byte by byte
//! here, is refused by `mint` with exit 1, an `error:` line and the state directory unchanged;
//! honest keys of every type still mint, and the non-sk ones log in through a real sshd.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64ct::{Base64, Encoding};

use crate::common::*;
use crate::sshd::Sshd;

/// Every file under `dir` with its bytes (and every directory), to compare before and after.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(path.clone(), None);
                todo.push(path);
            } else {
                out.insert(path.clone(), Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// An SSH wire string.
fn s(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// An SSH mpint of a positive big-endian number.
fn mpint(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if v.first().is_some_and(|b| *b >= 0x80) {
        out.push(0);
    }
    out.extend_from_slice(v);
    s(&out)
}

/// A public key line `ALG BASE64 COMMENT` whose blob is the wire fields after the type.
fn key_line(alg: &str, fields: &[Vec<u8>], comment: &str) -> String {
    let mut blob = s(alg.as_bytes());
    for f in fields {
        blob.extend_from_slice(f);
    }
    format!("{alg} {} {comment}\n", Base64::encode_string(&blob))
}

/// The wire fields of an OpenSSH public key line (after the type string).
fn fields(line: &str) -> Vec<Vec<u8>> {
    let blob = Base64::decode_vec(line.split_whitespace().nth(1).unwrap()).unwrap();
    let mut rest = &blob[..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        out.push(rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    out.remove(0);
    out
}

fn hex(h: &str) -> Vec<u8> {
    base16ct::lower::decode_vec(h).unwrap()
}

/// The eight small-order points of the Ed25519 curve, and non-canonical encodings of them.
const SMALL_ORDER: [&str; 14] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

/// An odd number of exactly `bits` bits: the size checks need no real modulus.
fn odd(bits: usize) -> Vec<u8> {
    let mut n = vec![0xa5u8; bits.div_ceil(8)];
    let top = bits % 8;
    n[0] = if top == 0 { 0xa5 } else { (1 << (top - 1)) | 1 };
    *n.last_mut().unwrap() |= 1;
    n
}

fn setup() -> Option<Hsm> {
    if !require(&["softhsm2-util", "ssh-keygen", "ssh", "sshd", MODULE]) {
        return None;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    Some(hsm)
}

/// Mint for `line` must fail with exit 1, an `error:` line containing `needle` and a hint,
/// and leave the state directory byte for byte as it was.
fn refused(hsm: &Hsm, name: &str, line: &str, needle: &str) {
    let path = hsm.path(&format!("{name}.pub"));
    std::fs::write(&path, line).unwrap();
    let before = snapshot(&hsm.state);
    let out = hsm.mint(&path, &["-n", "breakglass"]);
    assert_fails(&out, 1, needle);
    let err = stderr(&out);
    assert!(err.contains("error: refused:"), "{name}: {err}");
    assert!(err.contains("hint:"), "{name}: no hint:\n{err}");
    assert!(
        !err.contains("PIN state"),
        "{name}: the token was opened before the key was refused:\n{err}"
    );
    assert!(
        !cert_path(&path).exists(),
        "{name}: a certificate was written"
    );
    assert!(
        snapshot(&hsm.state) == before,
        "{name}: the state directory changed"
    );
}

#[test]
fn degenerate_keys_are_refused_before_the_token_is_opened() {
    let Some(hsm) = setup() else { return };
    let dir = hsm.dir.path();

    for (i, h) in SMALL_ORDER.iter().enumerate() {
        let point = hex(h);
        refused(
            &hsm,
            &format!("ed-small-{i}"),
            &key_line("ssh-ed25519", &[s(&point)], "mallory@x"),
            "small-order point",
        );
        refused(
            &hsm,
            &format!("sk-ed-small-{i}"),
            &key_line(
                "sk-ssh-ed25519@openssh.com",
                &[s(&point), s(b"ssh:")],
                "mallory@x",
            ),
            "small-order point",
        );
    }

    // ECDSA on each curve: the identity, off the curve, compressed, the wrong curve inside.
    for (bits, curve) in [(256, "nistp256"), (384, "nistp384"), (521, "nistp521")] {
        let honest = keygen(
            dir,
            &format!("ec{bits}"),
            &["-t", "ecdsa", "-b", &bits.to_string()],
            "e@r",
        );
        let f = fields(&std::fs::read_to_string(&honest).unwrap());
        let point = f[1].clone();
        let alg = format!("ecdsa-sha2-{curve}");
        let with = |p: &[u8]| key_line(&alg, &[s(curve.as_bytes()), s(p)], "mallory@x");
        refused(
            &hsm,
            &format!("ec{bits}-identity"),
            &with(&[0]),
            "point at infinity",
        );
        let mut off = point.clone();
        *off.last_mut().unwrap() ^= 1;
        refused(
            &hsm,
            &format!("ec{bits}-off"),
            &with(&off),
            "not a point on the curve",
        );
        let mut zero = vec![4u8];
        zero.resize(point.len(), 0);
        refused(
            &hsm,
            &format!("ec{bits}-zero"),
            &with(&zero),
            "not a point on the curve",
        );
        let n = (point.len() - 1) / 2;
        let mut compressed = vec![2 + (point.last().unwrap() & 1)];
        compressed.extend_from_slice(&point[1..=n]);
        refused(
            &hsm,
            &format!("ec{bits}-compressed"),
            &with(&compressed),
            "compressed point",
        );
        let other = if curve == "nistp256" {
            "nistp384"
        } else {
            "nistp256"
        };
        refused(
            &hsm,
            &format!("ec{bits}-curve"),
            &key_line(&alg, &[s(other.as_bytes()), s(&point)], "mallory@x"),
            &format!("names the curve {other}"),
        );
    }

    // RSA: too short by bits (not bytes), too long, even modulus, e = 1, e even.
    let f4 = [1u8, 0, 1];
    let rsa = |e: &[u8], n: &[u8]| key_line("ssh-rsa", &[mpint(e), mpint(n)], "mallory@x");
    refused(
        &hsm,
        "rsa2041",
        &rsa(&f4, &odd(2041)),
        "has 2041 bits; at least 2048",
    );
    refused(&hsm, "rsa16385", &rsa(&f4, &odd(16385)), "at most 16384");
    refused(&hsm, "rsa16392", &rsa(&f4, &odd(16392)), "at most 16384");
    let mut even = odd(2048);
    *even.last_mut().unwrap() &= 0xfe;
    refused(&hsm, "rsa-even", &rsa(&f4, &even), "even modulus");
    refused(&hsm, "rsa-e1", &rsa(&[1], &odd(2048)), "e = 1");
    refused(
        &hsm,
        "rsa-e-even",
        &rsa(&[1, 0, 2], &odd(2048)),
        "even public exponent",
    );

    // sk-ecdsa with bad embedded points, and bad application strings.
    let ec = fields(&std::fs::read_to_string(dir.join("ec256.pub")).unwrap());
    let sk_ec = |p: &[u8], app: &[u8]| {
        key_line(
            "sk-ecdsa-sha2-nistp256@openssh.com",
            &[s(b"nistp256"), s(p), s(app)],
            "mallory@x",
        )
    };
    refused(
        &hsm,
        "sk-ec-identity",
        &sk_ec(&[0], b"ssh:"),
        "point at infinity",
    );
    let mut off = ec[1].clone();
    off[5] ^= 0x10;
    refused(
        &hsm,
        "sk-ec-off",
        &sk_ec(&off, b"ssh:"),
        "not a point on the curve",
    );
    refused(
        &hsm,
        "sk-ec-noapp",
        &sk_ec(&ec[1], b""),
        "application string is empty",
    );
    refused(
        &hsm,
        "sk-ec-ctlapp",
        &sk_ec(&ec[1], b"ssh:\x1b[2K"),
        "application string holds",
    );

    // Nothing was ever issued.
    assert!(
        !hsm.state.join("ledger.jsonl").exists() || {
            std::fs::read_to_string(hsm.state.join("ledger.jsonl"))
                .unwrap()
                .is_empty()
        }
    );
}

#[test]
fn honest_keys_of_every_type_mint_and_log_in() {
    let Some(hsm) = setup() else { return };
    let dir = hsm.dir.path();
    let sshd = Sshd::start(&[&hsm.ca_pub_file()], &["breakglass"], "");
    for (name, args) in [
        ("ed25519", &["-t", "ed25519"][..]),
        ("ecdsa256", &["-t", "ecdsa", "-b", "256"]),
        ("ecdsa384", &["-t", "ecdsa", "-b", "384"]),
        ("ecdsa521", &["-t", "ecdsa", "-b", "521"]),
        ("rsa2048", &["-t", "rsa", "-b", "2048"]),
        ("rsa3072", &["-t", "rsa", "-b", "3072"]),
    ] {
        let pubkey = keygen(dir, name, args, &format!("{name}@requester"));
        assert_ok(&hsm.mint(&pubkey, &["-n", "breakglass"]), name);
        let cert = cert_path(&pubkey);
        assert!(ssh_keygen_list(&cert).contains("breakglass"));
        assert!(
            sshd.login(&pubkey.with_extension(""), &cert),
            "sshd refused the {name} certificate:\n{}",
            sshd.log_text()
        );
    }

    // Security keys, made from honest points: they mint (logging in needs the authenticator).
    let ed = fields(&std::fs::read_to_string(dir.join("ed25519.pub")).unwrap());
    let ec = fields(&std::fs::read_to_string(dir.join("ecdsa256.pub")).unwrap());
    for (name, line) in [
        (
            "sk-ed25519",
            key_line(
                "sk-ssh-ed25519@openssh.com",
                &[s(&ed[0]), s(b"ssh:")],
                "sk@requester",
            ),
        ),
        (
            "sk-ecdsa",
            key_line(
                "sk-ecdsa-sha2-nistp256@openssh.com",
                &[s(b"nistp256"), s(&ec[1]), s(b"ssh:")],
                "sk@requester",
            ),
        ),
    ] {
        let pubkey = hsm.path(&format!("{name}.pub"));
        std::fs::write(&pubkey, &line).unwrap();
        // OpenSSH reads the key we built.
        let out = Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(&pubkey)
            .output()
            .unwrap();
        assert_ok(&out, &format!("ssh-keygen -l {name}"));
        // -O no-touch-required and verify-required are for security keys: accepted here.
        let out = hsm.mint(
            &pubkey,
            &[
                "-n",
                "breakglass",
                "-O",
                "no-touch-required",
                "-O",
                "verify-required",
            ],
        );
        assert_ok(&out, name);
        let listed = ssh_keygen_list(&cert_path(&pubkey));
        assert!(listed.contains("no-touch-required"), "{listed}");
        assert!(listed.contains("verify-required"), "{listed}");
        assert!(stderr(&out).contains("Extensions:     no-touch-required, permit-pty"));
    }
}
