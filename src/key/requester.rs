//! Requester keys: parsing and validation. Every requester key is read from the
//! OpenSSH wire blob, field by field, and refused unless it is a key sshd would accept and
//! nobody but its owner can sign with: Ed25519 points that decode, canonically, and are not of
//! small order; ECDSA points on the named curve, not the identity, uncompressed, with
//! coordinates OpenSSH's own check accepts; RSA with an odd modulus of 2048 to 16384 bits and
//! an odd public exponent of at least 3; security keys (sk-*) the same for their embedded key.
//! A certificate for a degenerate key is a bearer token: anyone who reads the ledger can use it.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ssh_key::public::KeyData;
use ssh_key::PublicKey;

use crate::error::{Error, Result};
use crate::key::{self, Lines, NotOneLine};
use crate::text;

/// Smallest RSA modulus certified, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus OpenSSH accepts (`OPENSSL_RSA_MAX_MODULUS_BITS`), in bits.
pub const MAX_RSA_BITS: usize = 16384;
/// Longest security-key application string accepted.
pub const MAX_APPLICATION_BYTES: usize = 255;

const SEND_PUB: &str = "ask the requester for their public key file, e.g. ~/.ssh/id_ed25519.pub (one line starting ssh-ed25519, ecdsa-sha2-… or ssh-rsa)";
const NEW_KEY: &str =
    "this is not a key a real ssh-keygen makes: the requester should make a new one with ssh-keygen -t ed25519 and send the .pub file";

fn unreadable(why: impl std::fmt::Display) -> Error {
    Error::refused(format!("the requester's public key cannot be read ({why})")).with_hint(SEND_PUB)
}

fn degenerate(kind: &str, why: impl std::fmt::Display) -> Error {
    Error::refused(format!("the requester's {kind} key {why}")).with_hint(NEW_KEY)
}

/// Parse the requester's public key and refuse anything that must not be certified. `ca` is
/// the CA's own public key, which is never certified.
pub fn requester_key(text: &str, ca: &KeyData) -> Result<PublicKey> {
    let key = parse_requester_key(text)?;
    refuse_ca(&key, &key::fingerprint(ca))?;
    Ok(key)
}

/// Refuse the CA's own key (by its SHA256 fingerprint, as `config.toml` records it), so that
/// the check needs no token.
pub fn refuse_ca(key: &PublicKey, ca_fingerprint: &str) -> Result<()> {
    if key::fingerprint(key.key_data()) == ca_fingerprint {
        return Err(Error::refused("the requester's key is the CA key itself")
            .with_hint("certify the requester's own key, never the CA's"));
    }
    Ok(())
}

/// Parse one OpenSSH public key line and validate the key in it (everything but the CA check).
pub fn parse_requester_key(text: &str) -> Result<PublicKey> {
    let text = match key::one_line(text, Lines::Bare) {
        Ok(line) => line,
        // Read on: an empty input "cannot be read (no key data after the key type)".
        Err(NotOneLine::Empty) => "",
        Err(NotOneLine::PrivateKey) => return Err(Error::refused(
            "this is a PRIVATE key: it must never leave the requester's machine",
        )
        .with_hint("the requester should generate a new key pair (this one is exposed) and send only the .pub file")),
        Err(NotOneLine::Several(_)) => return Err(
            Error::refused("the public key input has more than one line").with_hint(SEND_PUB),
        ),
    };
    if key::is_certificate(text) {
        return Err(Error::refused("this is a certificate, not a public key").with_hint(SEND_PUB));
    }
    let mut fields = text.split_ascii_whitespace();
    let algorithm = fields.next().unwrap_or_default();
    if algorithm == "ssh-dss" {
        return Err(
            Error::refused("DSA keys are insecure and not accepted by current OpenSSH")
                .with_hint("the requester should make an Ed25519 key: ssh-keygen -t ed25519"),
        );
    }
    let b64 = fields
        .next()
        .ok_or_else(|| unreadable("no key data after the key type"))?;
    let blob = <base64ct::Base64 as base64ct::Encoding>::decode_vec(b64)
        .map_err(|_| unreadable("its key data is not valid base64"))?;
    check_blob(algorithm, &blob)?;
    let key = key::parse_line(text).map_err(unreadable)?;
    if matches!(key.key_data(), KeyData::Other(_) | KeyData::Dsa(_)) {
        return Err(
            Error::refused(format!("unsupported key type {}", text::escape(algorithm)))
                .with_hint(SEND_PUB),
        );
    }
    Ok(key)
}

/// Validate an already parsed key again (the last check before signing).
pub fn check_public_key(key: &PublicKey) -> Result<()> {
    let blob = key.to_bytes().map_err(unreadable)?;
    check_blob(key.algorithm().as_str(), &blob)
}

/// Whether `key` is a FIDO security key (sk-ecdsa-…, sk-ssh-ed25519…), the only kind for
/// which the signature carries user-presence and user-verification flags.
pub fn is_security_key(key: &PublicKey) -> bool {
    matches!(
        key.key_data(),
        KeyData::SkEcdsaSha2NistP256(_) | KeyData::SkEd25519(_)
    )
}

/// The SSH wire format: length-prefixed strings.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn string(&mut self, what: &str) -> Result<&'a [u8]> {
        let truncated = || unreadable(format!("the key data ends before its {what}"));
        let (len, rest) = self.0.split_first_chunk::<4>().ok_or_else(truncated)?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(truncated());
        }
        let (value, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(value)
    }

    fn text(&mut self, what: &str) -> Result<&'a str> {
        std::str::from_utf8(self.string(what)?)
            .map_err(|_| unreadable(format!("its {what} is not text")))
    }

    fn finish(&self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(unreadable(format!(
                "{} bytes of unexpected data after the key",
                self.0.len()
            )))
        }
    }
}

/// Validate the wire blob of a key whose line names `algorithm`.
pub fn check_blob(algorithm: &str, blob: &[u8]) -> Result<()> {
    let mut wire = Wire(blob);
    let inner = wire.text("key type")?;
    if inner != algorithm {
        return Err(unreadable(format!(
            "the line says {} but the key data inside is {}",
            text::escape(algorithm),
            text::escape(inner)
        )));
    }
    match algorithm {
        "ssh-ed25519" => ed25519("Ed25519", wire.string("Ed25519 point")?)?,
        "sk-ssh-ed25519@openssh.com" => {
            ed25519("security-key Ed25519", wire.string("Ed25519 point")?)?;
            application(wire.text("application")?)?;
        }
        "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => {
            let curve = Curve::from_name(&algorithm[11..]).ok_or_else(|| unreadable("curve"))?;
            let named = wire.text("curve name")?;
            if named != curve.name() {
                return Err(degenerate(
                    "ECDSA",
                    format!(
                        "names the curve {} inside, but its type is {algorithm}",
                        text::escape(named)
                    ),
                ));
            }
            ecdsa(curve, "ECDSA", wire.string("curve point")?)?;
        }
        "sk-ecdsa-sha2-nistp256@openssh.com" => {
            let named = wire.text("curve name")?;
            if named != Curve::P256.name() {
                return Err(degenerate(
                    "security-key ECDSA",
                    format!(
                        "names the curve {} inside, but its type is {algorithm}",
                        text::escape(named)
                    ),
                ));
            }
            ecdsa(
                Curve::P256,
                "security-key ECDSA",
                wire.string("curve point")?,
            )?;
            application(wire.text("application")?)?;
        }
        "ssh-rsa" => {
            let e = mpint(wire.string("RSA exponent")?, "exponent e")?;
            let n = mpint(wire.string("RSA modulus")?, "modulus n")?;
            rsa(e, n)?;
        }
        _ => {
            return Err(
                Error::refused(format!("unsupported key type {}", text::escape(algorithm)))
                    .with_hint(SEND_PUB),
            )
        }
    }
    wire.finish()
}

/// An Ed25519 public key: 32 bytes that decode, canonically, to a point of the prime-order
/// subgroup. A small-order point (the identity, all zeros, the other torsion points) verifies
/// signatures that anyone can make.
fn ed25519(kind: &str, bytes: &[u8]) -> Result<()> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| degenerate(kind, format!("is {} bytes long, not 32", bytes.len())))?;
    let point = CompressedEdwardsY(bytes)
        .decompress()
        .ok_or_else(|| degenerate(kind, "is not a point on the curve"))?;
    if point.is_small_order() {
        return Err(degenerate(
            kind,
            "is a small-order point: signatures for it can be forged by anyone",
        ));
    }
    if point.compress().to_bytes() != bytes {
        return Err(degenerate(kind, "is not canonically encoded"));
    }
    if !point.is_torsion_free() {
        return Err(degenerate(
            kind,
            "has a small-order component, which no real Ed25519 key has",
        ));
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn from_name(name: &str) -> Option<Curve> {
        match name {
            "nistp256" => Some(Curve::P256),
            "nistp384" => Some(Curve::P384),
            "nistp521" => Some(Curve::P521),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "nistp256",
            Curve::P384 => "nistp384",
            Curve::P521 => "nistp521",
        }
    }

    /// Bytes of one coordinate.
    fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// The group order, big-endian.
    fn order(self) -> Vec<u8> {
        use p256::elliptic_curve::bigint::Encoding;
        use p256::elliptic_curve::Curve as _;
        match self {
            Curve::P256 => p256::NistP256::ORDER.to_be_bytes().to_vec(),
            Curve::P384 => p384::NistP384::ORDER.to_be_bytes().to_vec(),
            Curve::P521 => p521::NistP521::ORDER.to_be_bytes().to_vec(),
        }
    }

    fn on_curve(self, point: &[u8]) -> bool {
        match self {
            Curve::P256 => p256::PublicKey::from_sec1_bytes(point).is_ok(),
            Curve::P384 => p384::PublicKey::from_sec1_bytes(point).is_ok(),
            Curve::P521 => p521::PublicKey::from_sec1_bytes(point).is_ok(),
        }
    }
}

/// An ECDSA public key as sshd takes it (`sshkey_ec_validate_public`): an uncompressed SEC1
/// point on the curve, not the identity, each coordinate longer than half the order's bits
/// and smaller than the order minus one.
fn ecdsa(curve: Curve, kind: &str, point: &[u8]) -> Result<()> {
    let refuse = |why: &str| degenerate(kind, format!("({}) {why}", curve.name()));
    match point.first() {
        None | Some(0) => return Err(refuse("is the point at infinity (the identity)")),
        Some(2 | 3) => {
            return Err(refuse(
                "is a compressed point, which OpenSSH does not accept",
            ))
        }
        Some(4) => {}
        Some(_) => return Err(refuse("is not an elliptic-curve point encoding")),
    }
    let n = curve.field_len();
    if point.len() != 1 + 2 * n {
        return Err(refuse(&format!(
            "is {} bytes long; a point on this curve is {}",
            point.len(),
            1 + 2 * n
        )));
    }
    if !curve.on_curve(point) {
        return Err(refuse("is not a point on the curve"));
    }
    let order = curve.order();
    let half = bits(&order) / 2;
    let order_minus_one = minus_one(&order);
    for c in [&point[1..=n], &point[1 + n..]] {
        if bits(c) <= half || !less(c, &order_minus_one) {
            return Err(refuse(
                "has a coordinate out of the range sshd accepts (too small, or not below the group order)",
            ));
        }
    }
    Ok(())
}

/// The magnitude of an SSH mpint, refused if negative or not minimally encoded.
fn mpint<'a>(bytes: &'a [u8], what: &str) -> Result<&'a [u8]> {
    match bytes {
        [] => Ok(bytes),
        [b, ..] if *b >= 0x80 => Err(degenerate("RSA", format!("has a negative {what}"))),
        [0] | [0, 0..=0x7f, ..] => Err(unreadable(format!(
            "its RSA {what} is not minimally encoded"
        ))),
        [0, rest @ ..] => Ok(rest),
        _ => Ok(bytes),
    }
}

/// An RSA public key: an odd modulus of MIN..=MAX bits and an odd exponent, 3 <= e < n.
fn rsa(e: &[u8], n: &[u8]) -> Result<()> {
    let n_bits = bits(n);
    if n_bits < MIN_RSA_BITS {
        return Err(Error::refused(format!(
            "the requester's RSA key has {n_bits} bits; at least {MIN_RSA_BITS} are required"
        ))
        .with_hint("the requester should make an Ed25519 key: ssh-keygen -t ed25519"));
    }
    if n_bits > MAX_RSA_BITS {
        return Err(Error::refused(format!(
            "the requester's RSA key has {n_bits} bits; OpenSSH accepts at most {MAX_RSA_BITS}"
        ))
        .with_hint("the requester should make an Ed25519 key: ssh-keygen -t ed25519"));
    }
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err(degenerate(
            "RSA",
            "has an even modulus: it is not an RSA key",
        ));
    }
    if e.last().is_none_or(|b| b & 1 == 0) {
        return Err(degenerate("RSA", "has an even public exponent e"));
    }
    if bits(e) < 2 {
        return Err(degenerate(
            "RSA",
            "has the public exponent e = 1: anyone can sign for it",
        ));
    }
    if !less(e, n) {
        return Err(degenerate(
            "RSA",
            "has a public exponent not smaller than its modulus",
        ));
    }
    Ok(())
}

/// A security key's application string (the FIDO relying party, "ssh:" from ssh-keygen).
/// sshd only hashes it; refused are what cannot be shown or is not a relying-party name:
/// empty, longer than 255 bytes, or holding control or invisible characters.
fn application(app: &str) -> Result<()> {
    let why = if app.is_empty() {
        "is empty"
    } else if app.len() > MAX_APPLICATION_BYTES {
        "is longer than 255 bytes"
    } else if !text::is_safe(app) || app.contains(char::is_whitespace) {
        "holds control, invisible or space characters"
    } else {
        return Ok(());
    };
    Err(degenerate(
        "security-key",
        format!("application string {why}"),
    ))
}

/// Significant bits of a big-endian unsigned number.
fn bits(be: &[u8]) -> usize {
    let be = strip(be);
    match be.first() {
        None => 0,
        Some(b) => (be.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
    }
}

fn strip(be: &[u8]) -> &[u8] {
    let zeros = be.iter().take_while(|b| **b == 0).count();
    &be[zeros..]
}

/// `a < b` for big-endian unsigned numbers of any length.
fn less(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (strip(a), strip(b));
    (a.len(), a) < (b.len(), b)
}

/// `x - 1` for a big-endian number greater than zero.
fn minus_one(x: &[u8]) -> Vec<u8> {
    let mut out = x.to_vec();
    for b in out.iter_mut().rev() {
        if *b > 0 {
            *b -= 1;
            break;
        }
        *b = 0xff;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::{Base64, Encoding};
    use ssh_key::HashAlg;

    /// An SSH wire string.
    fn s(bytes: &[u8]) -> Vec<u8> {
        let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    /// A key line: `ALG BASE64 comment`, the blob being the concatenated wire fields.
    fn line(alg: &str, fields: &[Vec<u8>]) -> String {
        let mut blob = s(alg.as_bytes());
        for f in fields {
            blob.extend_from_slice(f);
        }
        format!("{alg} {} test@r", Base64::encode_string(&blob))
    }

    fn hex(h: &str) -> Vec<u8> {
        base16ct::lower::decode_vec(h).unwrap()
    }

    fn refused(text: &str, why: &str) {
        let err = parse_requester_key(text).unwrap_err();
        assert!(
            err.kind() == Some(crate::error::Kind::Refused),
            "{text}: {err}"
        );
        assert!(err.to_string().contains(why), "{text}: {err}");
        assert!(err.hint().is_some(), "{text}");
    }

    /// The eight small-order points of Curve25519 in Edwards form, canonically encoded.
    const TORSION: [&str; 8] = [
        "0100000000000000000000000000000000000000000000000000000000000000", // identity
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
        "0000000000000000000000000000000000000000000000000000000000000000", // order 4
        "0000000000000000000000000000000000000000000000000000000000000080", // order 4
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", // order 8
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", // order 8
    ];

    /// Non-canonical encodings of small-order points: y + p, and x = 0 with the sign bit set.
    const TORSION_NONCANONICAL: [&str; 6] = [
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // 1 + p
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // 1 + p, sign
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // 0 + p
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // 0 + p, sign
        "0100000000000000000000000000000000000000000000000000000000000080", // -0, y = 1
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // -0, y = -1
    ];

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNavtkUczswcdQ6Tv9hME8G/tCojuHEEgwNfhaEp9TO alice@laptop";

    #[test]
    fn the_torsion_list_is_the_real_one() {
        let mut ours: Vec<Vec<u8>> = TORSION.iter().map(|h| hex(h)).collect();
        let mut real: Vec<Vec<u8>> = curve25519_dalek::constants::EIGHT_TORSION
            .iter()
            .map(|p| p.compress().to_bytes().to_vec())
            .collect();
        ours.sort();
        real.sort();
        assert_eq!(ours, real);
    }

    #[test]
    fn small_order_ed25519_refused() {
        for h in TORSION.iter().chain(TORSION_NONCANONICAL.iter()) {
            let text = line("ssh-ed25519", &[s(&hex(h))]);
            refused(&text, "small-order point");
            let sk = line("sk-ssh-ed25519@openssh.com", &[s(&hex(h)), s(b"ssh:")]);
            refused(&sk, "small-order point");
        }
    }

    #[test]
    fn bad_ed25519_encodings_refused() {
        // A y with no x on the curve.
        let mut off = None;
        for y in 2u8..=255 {
            let mut b = [0u8; 32];
            b[0] = y;
            if CompressedEdwardsY(b).decompress().is_none() {
                off = Some(b);
                break;
            }
        }
        refused(
            &line("ssh-ed25519", &[s(&off.unwrap())]),
            "not a point on the curve",
        );
        // y + p for a small y that is a point of large order: decodes, but not canonically.
        let mut found = false;
        for y in 2u8..19 {
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            let Some(p) = CompressedEdwardsY(canonical).decompress() else {
                continue;
            };
            if p.is_small_order() {
                continue;
            }
            let mut plus_p =
                hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
            plus_p[0] += y;
            refused(
                &line("ssh-ed25519", &[s(&plus_p)]),
                "not canonically encoded",
            );
            found = true;
        }
        assert!(found);
        // A point with a torsion component: an honest key plus a point of order 8.
        let honest = PublicKey::from_openssh(ED).unwrap();
        let KeyData::Ed25519(pk) = honest.key_data() else {
            panic!()
        };
        let p = CompressedEdwardsY(pk.0).decompress().unwrap()
            + curve25519_dalek::constants::EIGHT_TORSION[1];
        refused(
            &line("ssh-ed25519", &[s(p.compress().as_bytes())]),
            "small-order component",
        );
        refused(&line("ssh-ed25519", &[s(&[7; 31])]), "31 bytes long");
        refused(&line("ssh-ed25519", &[s(&[7; 33])]), "33 bytes long");
    }

    /// A valid point on each curve (the generator), uncompressed.
    fn generator(curve: Curve) -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        match curve {
            Curve::P256 => p256::AffinePoint::GENERATOR
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            Curve::P384 => p384::AffinePoint::GENERATOR
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            Curve::P521 => p521::AffinePoint::GENERATOR
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    fn ecdsa_line(curve: Curve, point: &[u8]) -> String {
        line(
            &format!("ecdsa-sha2-{}", curve.name()),
            &[s(curve.name().as_bytes()), s(point)],
        )
    }

    #[test]
    fn degenerate_ecdsa_refused() {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            let g = generator(curve);
            parse_requester_key(&ecdsa_line(curve, &g)).unwrap();
            refused(&ecdsa_line(curve, &[0]), "point at infinity");
            refused(&ecdsa_line(curve, &[]), "point at infinity");
            let mut off = g.clone();
            *off.last_mut().unwrap() ^= 1;
            refused(&ecdsa_line(curve, &off), "not a point on the curve");
            let mut zeros = vec![4u8];
            zeros.resize(g.len(), 0);
            refused(&ecdsa_line(curve, &zeros), "not a point on the curve");
            let mut compressed = vec![2 + (g.last().unwrap() & 1)];
            compressed.extend_from_slice(&g[1..=curve.field_len()]);
            refused(&ecdsa_line(curve, &compressed), "compressed point");
            refused(&ecdsa_line(curve, &g[..g.len() - 1]), "bytes long");
            let mut bad_tag = g.clone();
            bad_tag[0] = 6;
            refused(&ecdsa_line(curve, &bad_tag), "not an elliptic-curve point");
        }
        // The curve inside must be the one the type names.
        let p384 = generator(Curve::P384);
        refused(
            &line("ecdsa-sha2-nistp256", &[s(b"nistp384"), s(&p384)]),
            "names the curve nistp384",
        );
        // sk-ecdsa: the same checks on the embedded point.
        let sk = |curve: &[u8], point: &[u8], app: &[u8]| {
            line(
                "sk-ecdsa-sha2-nistp256@openssh.com",
                &[s(curve), s(point), s(app)],
            )
        };
        let g = generator(Curve::P256);
        let key = parse_requester_key(&sk(b"nistp256", &g, b"ssh:")).unwrap();
        assert!(is_security_key(&key));
        refused(&sk(b"nistp256", &[0], b"ssh:"), "point at infinity");
        let mut off = g.clone();
        off[10] ^= 1;
        refused(&sk(b"nistp256", &off, b"ssh:"), "not a point on the curve");
        refused(&sk(b"nistp384", &p384, b"ssh:"), "names the curve");
        refused(&sk(b"nistp256", &g, b""), "application string is empty");
        refused(
            &sk(b"nistp256", &g, b"ssh:\x1b[2J"),
            "application string holds",
        );
        refused(&sk(b"nistp256", &g, &[b'a'; 256]), "longer than 255");
        // sshd does not require the "ssh:" prefix (it only hashes the string).
        parse_requester_key(&sk(b"nistp256", &g, b"example.com")).unwrap();
    }

    #[test]
    fn ecdsa_coordinates_in_sshd_range() {
        // A point whose x is tiny: P-256 has a point with x = 3? Find a small x on the curve.
        use p256::elliptic_curve::sec1::FromEncodedPoint;
        for x in 1u8..=255 {
            let mut comp = vec![2u8];
            comp.resize(33, 0);
            comp[32] = x;
            let Ok(ep) = p256::EncodedPoint::from_bytes(&comp) else {
                continue;
            };
            let Some(point) =
                Option::<p256::AffinePoint>::from(p256::AffinePoint::from_encoded_point(&ep))
            else {
                continue;
            };
            use p256::elliptic_curve::sec1::ToEncodedPoint;
            let unc = point.to_encoded_point(false);
            refused(
                &ecdsa_line(Curve::P256, unc.as_bytes()),
                "coordinate out of the range",
            );
            return;
        }
        panic!("no small x found");
    }

    fn rsa_line(e: &[u8], n: &[u8]) -> String {
        let m = |v: &[u8]| {
            let mut out = Vec::new();
            if v.first().is_some_and(|b| *b >= 0x80) {
                out.push(0);
            }
            out.extend_from_slice(v);
            s(&out)
        };
        line("ssh-rsa", &[m(e), m(n)])
    }

    /// An odd number of exactly `bits` bits (not a real modulus; enough for the size checks).
    fn odd(bits: usize) -> Vec<u8> {
        let mut n = vec![0xa5u8; bits.div_ceil(8)];
        let top = bits % 8;
        n[0] = if top == 0 {
            0x80 | 0x25
        } else {
            (1 << (top - 1)) | 1
        };
        *n.last_mut().unwrap() |= 1;
        n
    }

    #[test]
    fn bad_rsa_refused() {
        let f4 = [1u8, 0, 1];
        assert_eq!(bits(&odd(2041)), 2041);
        assert_eq!(bits(&odd(2048)), 2048);
        parse_requester_key(&rsa_line(&f4, &odd(2048))).unwrap();
        parse_requester_key(&rsa_line(&f4, &odd(16384))).unwrap();
        parse_requester_key(&rsa_line(&[3], &odd(3072))).unwrap();
        refused(&rsa_line(&f4, &odd(2041)), "has 2041 bits; at least 2048");
        refused(&rsa_line(&f4, &odd(2047)), "has 2047 bits");
        refused(
            &rsa_line(&f4, &odd(16385)),
            "has 16385 bits; OpenSSH accepts at most 16384",
        );
        let mut even = odd(2048);
        *even.last_mut().unwrap() &= 0xfe;
        refused(&rsa_line(&f4, &even), "even modulus");
        refused(&rsa_line(&[1], &odd(2048)), "e = 1");
        refused(&rsa_line(&[1, 0, 2], &odd(2048)), "even public exponent");
        refused(&rsa_line(&[], &odd(2048)), "even public exponent");
        refused(
            &rsa_line(&odd(2048), &odd(2048)),
            "not smaller than its modulus",
        );
        // Negative and non-minimal mpints.
        refused(&line("ssh-rsa", &[s(&[0x81]), s(&odd(2048))]), "negative");
        refused(
            &line("ssh-rsa", &[s(&[0, 3]), s(&odd(2048))]),
            "not minimally encoded",
        );
        // A real 1024-bit key, as ssh-keygen made it.
        let rsa1024 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDEX9LRvnB5xAyzYZQbjf2t+Z8UeBq6+mFs5h7hOk3n5Cix2osFx2CVUJzz55FiUcGC+K44f+PFBuxkDtAXXr18USnLpu434x/EeW940EYY8W/G/WgeB8GZEQMN9sqWfma/EiYR4IL/d+PIQV5QPZBBV+be00m1iRkL5vN3gprrKQ== t";
        refused(rsa1024, "at least 2048");
    }

    #[test]
    fn wire_format_errors() {
        let honest = PublicKey::from_openssh(ED).unwrap();
        let KeyData::Ed25519(pk) = honest.key_data() else {
            panic!()
        };
        parse_requester_key(&line("ssh-ed25519", &[s(&pk.0)])).unwrap();
        refused(
            &line("ssh-ed25519", &[s(&pk.0), s(b"x")]),
            "unexpected data",
        );
        refused(&line("ssh-ed25519", &[]), "ends before its Ed25519 point");
        let mut blob = s(b"ssh-rsa");
        blob.extend_from_slice(&[0, 0, 1]);
        refused(
            &format!("ssh-rsa {} x", Base64::encode_string(&blob)),
            "ends before",
        );
        // The text says one type, the blob another.
        let ed_blob = s(b"ssh-ed25519");
        refused(
            &format!("ssh-rsa {} x", Base64::encode_string(&ed_blob)),
            "the line says ssh-rsa but the key data inside is ssh-ed25519",
        );
        refused(&line("ssh-foo@example.com", &[]), "unsupported key type");
        refused("ssh-ed25519", "no key data");
        refused(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroken x",
            "not valid base64",
        );
    }

    fn ca() -> KeyData {
        KeyData::Ed25519(ssh_key::public::Ed25519PublicKey([9; 32]))
    }

    #[test]
    fn requester_keys() {
        let key = requester_key(ED, &ca()).unwrap();
        assert_eq!(key.comment(), "alice@laptop");
        check_public_key(&key).unwrap();
        assert!(!is_security_key(&key));
        for (text, why) in [
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
                "PRIVATE key",
            ),
            ("ssh-ed25519-cert-v01@openssh.com AAAA x", "certificate"),
            ("ssh-dss AAAAB3NzaC1kc3MAAACBAP x", "DSA"),
            ("ssh-ed25519 AAAAnotbase64!!", "cannot be read"),
            ("", "cannot be read"),
            ("ssh-ed25519 AAAA\nssh-ed25519 BBBB", "more than one line"),
        ] {
            let err = requester_key(text, &ca()).unwrap_err();
            assert!(err.to_string().contains(why), "{text}: {err}");
        }
        let own = requester_key(ED, &ca()).unwrap();
        let err = requester_key(ED, own.key_data()).unwrap_err();
        assert!(err.to_string().contains("CA key itself"));
        let fp = own.fingerprint(HashAlg::Sha256).to_string();
        assert!(refuse_ca(&own, &fp).is_err());
        assert!(refuse_ca(&own, "SHA256:other").is_ok());
    }

    #[test]
    fn big_endian_helpers() {
        assert_eq!(bits(&[]), 0);
        assert_eq!(bits(&[0, 0, 1]), 1);
        assert_eq!(bits(&[0x80, 0]), 16);
        assert!(less(&[0, 1], &[2]));
        assert!(!less(&[3], &[0, 2]));
        assert_eq!(minus_one(&[1, 0]), [0, 0xff]);
        assert_eq!(Curve::P521.order().len(), 72);
        assert_eq!(bits(&Curve::P521.order()), 521);
        assert_eq!(bits(&Curve::P384.order()), 384);
    }
}
