//! Volume: 2,000 ECDSA P-256 certificates from one SoftHSM2 key, every one checked by
//! `ssh-keygen -L` (which parses the mpints strictly and verifies the signature). About 1 in
//! 128 token signatures has an r or s needing mpint care; 2,000 leaves it nowhere to hide.
//! Two minting workers share the state dir, so serials are also allocated concurrently.

use std::collections::BTreeSet;

use crate::common::*;

const COUNT: usize = 2000;
const WORKERS: usize = 2;

#[test]
fn two_thousand_p256_certificates() {
    if !require(&["softhsm2-util", "ssh-keygen", MODULE]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");
    let key = keygen(hsm.dir.path(), "req", &["-t", "ed25519"], "bulk@requester");
    let certs = hsm.path("certs");
    std::fs::create_dir(&certs).unwrap();
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let (hsm, key, certs) = (&hsm, &key, &certs);
            s.spawn(move || {
                for i in (w..COUNT).step_by(WORKERS) {
                    let out_path = certs.join(format!("{i}-cert.pub"));
                    let out =
                        hsm.mint(key, &["-n", "breakglass", "-o", out_path.to_str().unwrap()]);
                    assert_ok(&out, &format!("mint #{i}"));
                }
            });
        }
    });
    let mut serials = BTreeSet::new();
    for i in 0..COUNT {
        let serial = listed_serial(&ssh_keygen_list(&certs.join(format!("{i}-cert.pub"))));
        assert!(serials.insert(serial), "serial {serial} issued twice");
    }
    assert_eq!(serials, (1..=COUNT as u64).collect::<BTreeSet<_>>());
}
