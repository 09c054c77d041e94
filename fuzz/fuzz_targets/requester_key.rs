//! The requester key validator (`key::requester_key`, what `mint` runs on the key file):
//! any input is accepted or refused without a panic, and every key it accepts passes the
//! checks of issue 8, made here independently: an Ed25519 point (also inside sk-ssh-ed25519)
//! decodes and is not of small order; an ECDSA point (also inside sk-ecdsa) is on its curve and
//! not the identity; an RSA modulus is odd, of 2048 to 16384 bits, with an odd e of at least 3;
//! no DSA, no unknown type, never the CA key itself.
//!
//! The first byte chooses the form of the rest: even, the text of a .pub file as it is; odd, a
//! key blob, put into a `TYPE BASE64 COMMENT` line (TYPE read from the blob), so the fuzzer
//! works on the encoded key itself.
#![no_main]

use base64ct::{Base64, Encoding};
use breakglass_ca::key::requester_key;
use curve25519_dalek::edwards::CompressedEdwardsY;
use libfuzzer_sys::fuzz_target;
use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData};

/// The CA key: the Ed25519 base point, so that "the CA key itself" can be found too.
fn ca() -> KeyData {
    KeyData::Ed25519(Ed25519PublicKey(
        curve25519_dalek::constants::ED25519_BASEPOINT_COMPRESSED.to_bytes(),
    ))
}

fn line_from_blob(blob: &[u8]) -> String {
    let alg = blob
        .get(4..)
        .zip(blob.get(..4))
        .and_then(|(rest, len)| {
            let n = u32::from_be_bytes(len.try_into().ok()?) as usize;
            std::str::from_utf8(rest.get(..n)?).ok()
        })
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("ssh-ed25519");
    format!("{alg} {} fuzz@example", Base64::encode_string(blob))
}

fn ed25519_ok(bytes: &[u8; 32]) -> bool {
    CompressedEdwardsY(*bytes)
        .decompress()
        .is_some_and(|p| !p.is_small_order())
}

fn ecdsa_ok(key: &EcdsaPublicKey) -> bool {
    let sec1 = key.as_sec1_bytes();
    match key {
        EcdsaPublicKey::NistP256(_) => p256::PublicKey::from_sec1_bytes(sec1).is_ok(),
        EcdsaPublicKey::NistP384(_) => p384::PublicKey::from_sec1_bytes(sec1).is_ok(),
        EcdsaPublicKey::NistP521(_) => p521::PublicKey::from_sec1_bytes(sec1).is_ok(),
    }
}

/// The number of bits of a big-endian magnitude.
fn bits(magnitude: &[u8]) -> usize {
    let m: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
    m.first().map_or(0, |top| {
        (m.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
    })
}

fn check(input: &str, key: &KeyData, ca: &KeyData) {
    assert_ne!(key, ca, "the CA key itself was accepted: {input:?}");
    match key {
        KeyData::Ed25519(k) => assert!(
            ed25519_ok(&k.0),
            "a degenerate Ed25519 key was accepted: {input:?}"
        ),
        KeyData::SkEd25519(k) => assert!(
            ed25519_ok(&k.public_key().0),
            "a degenerate sk-ssh-ed25519 key was accepted: {input:?}"
        ),
        KeyData::Ecdsa(k) => assert!(
            ecdsa_ok(k),
            "a degenerate ECDSA key was accepted: {input:?}"
        ),
        KeyData::SkEcdsaSha2NistP256(k) => assert!(
            p256::PublicKey::from_sec1_bytes(k.ec_point().as_bytes()).is_ok(),
            "a degenerate sk-ecdsa key was accepted: {input:?}"
        ),
        KeyData::Rsa(k) => {
            let n = k.n.as_positive_bytes().unwrap_or_default();
            let e = k.e.as_positive_bytes().unwrap_or_default();
            let n_bits = bits(n);
            assert!(
                (2048..=16384).contains(&n_bits),
                "an RSA key of {n_bits} bits was accepted: {input:?}"
            );
            assert!(
                n.last().is_some_and(|b| b & 1 == 1),
                "an even RSA modulus was accepted: {input:?}"
            );
            assert!(
                e.last().is_some_and(|b| b & 1 == 1) && bits(e) >= 2,
                "RSA e = {e:02x?} was accepted: {input:?}"
            );
        }
        KeyData::Dsa(_) => panic!("a DSA key was accepted: {input:?}"),
        _ => panic!("a key of unknown type was accepted: {input:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let text = if mode % 2 == 0 {
        match std::str::from_utf8(rest) {
            Ok(t) => t.to_string(),
            Err(_) => return,
        }
    } else {
        line_from_blob(rest)
    };
    let ca = ca();
    if let Ok(key) = requester_key(&text, &ca) {
        check(&text, key.key_data(), &ca);
        // What was accepted is accepted again from its own encoding.
        let again = key.to_openssh().expect("an accepted key encodes");
        let key2 = requester_key(&again, &ca).unwrap_or_else(|e| {
            panic!("{text:?} was accepted, its encoding {again:?} is refused: {e}")
        });
        assert_eq!(key2.key_data(), key.key_data());
    }
});
