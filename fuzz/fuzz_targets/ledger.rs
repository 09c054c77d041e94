//! The ledger readers (`Record::parse_line`, the one line parser of `mint`, `status` and
//! `log verify`): the bytes before the first 0xff are `ledger.jsonl`, the
//! rest `checkpoints.jsonl`. Nothing panics in the line parser, in `ledger::verify::verify` (what
//! `log verify` runs), in `Ledger::read`, `chain_heads` and `checkpoint::check_ledger`, or in
//! `Ledger::lock` (what `mint` runs before the token is opened, torn-tail repair included); a
//! record that parses serialises to a line that parses back to the same record.
#![no_main]

use std::sync::OnceLock;

use breakglass_ca::ledger::{chain_heads, Ledger, Record};
use libfuzzer_sys::fuzz_target;
use ssh_key::public::{EcdsaPublicKey, KeyData};
use ssh_key::{Certificate, HashAlg};

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
}

/// The CA: the signer of the first record's certificate when there is one (so that a real
/// ledger given as a seed is verified in depth), else a fixed P-256 point.
fn ca_of(records: &[Record]) -> KeyData {
    records
        .first()
        .and_then(|r| Certificate::from_openssh(&r.certificate).ok())
        .map(|c| c.signature_key().clone())
        .unwrap_or_else(|| {
            use p256::elliptic_curve::sec1::ToEncodedPoint;
            let point = p256::AffinePoint::GENERATOR.to_encoded_point(false);
            KeyData::Ecdsa(EcdsaPublicKey::from_sec1_bytes(point.as_bytes()).unwrap())
        })
}

fuzz_target!(|data: &[u8]| {
    let (ledger, checkpoints) = match data.iter().position(|b| *b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut records = Vec::new();
    for line in ledger.split(|b| *b == b'\n') {
        if let Ok(record) = Record::parse_line(line) {
            let again = serde_json::to_string(&record).unwrap();
            assert_eq!(Record::parse_line(again.as_bytes()).unwrap(), record);
            records.push(record);
        }
    }
    let ca = ca_of(&records);
    let fingerprint = ca.fingerprint(HashAlg::Sha256).to_string();
    let _ = breakglass_ca::ledger::verify::verify(ledger, checkpoints, &ca);

    let dir = dir().path();
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    std::fs::write(dir.join("ledger.jsonl"), ledger).unwrap();
    std::fs::write(dir.join("checkpoints.jsonl"), checkpoints).unwrap();
    let l = Ledger::new(dir);
    if let Ok(read) = l.read() {
        if let Ok(heads) = chain_heads(&read, &fingerprint) {
            let newest = read
                .last()
                .map(|(_, r)| r.serial)
                .zip(heads.last().map(String::as_str));
            let _ = breakglass_ca::ledger::checkpoint::check_ledger(dir, newest, true);
        }
    }
    let _ = l.lock(&fingerprint).map(|locked| locked.tail().serial);
});
