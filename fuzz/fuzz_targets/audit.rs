//! `audit`'s reading of sshd logs: any bytes, as one log (every line format, the sshd -E
//! joining, the pid correlation) and as one sshd message, without a panic; a certificate that
//! the message parser reads has its serial and CA exactly as sshd wrote them after the key ID
//! (`(serial N) CA TYPE FP`, `" (serial N) signed by TYPE CA FP`), whatever the key ID holds.
#![no_main]

use breakglass_ca::audit::event::{parse, Message, Parsed};
use breakglass_ca::audit::{format, Auditor, Ledgers, Options, Output};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ledgers = Ledgers::default();
    let now = chrono::Local::now();
    let mut auditor = Auditor::new(&ledgers, Options { now, since: None });
    let mut events = 0u64;
    let mut take = |o: Output<'_>| {
        if let Output::Event(j) = o {
            events += 1;
            for a in &j.alarms {
                assert!(breakglass_ca::text::is_safe(&a.text), "{:?}", a.text);
            }
        }
    };
    let read = auditor.read(0, data, Some("fuzz"), "fuzz", &mut take);
    // The one refusal: a gzip file (its magic first), with the way to read it.
    assert_eq!(read.is_err(), data.starts_with(&[0x1f, 0x8b]), "{read:?}");
    auditor.finish(&mut take);
    let newlines = data.iter().filter(|b| **b == b'\n').count() as u64;
    assert!(auditor.stats().lines <= newlines + 1);
    assert!(events <= auditor.stats().lines);

    let _ = format::split(data, now);
    let text = String::from_utf8_lossy(data);
    match parse(data) {
        Parsed::Message(Message::Publickey { cert, .. }) => {
            let tail = format!(
                " (serial {}) CA {} {}",
                cert.serial, cert.ca_type, cert.ca_fingerprint
            );
            assert!(text.contains(&tail), "{text:?}: {cert:?}");
        }
        Parsed::Message(Message::CertAccepted { cert, .. }) => {
            let tail = format!("\" (serial {}) signed by ", cert.serial);
            assert!(text.contains(&tail), "{text:?}: {cert:?}");
            assert!(text.contains(&cert.ca_fingerprint), "{text:?}: {cert:?}");
        }
        _ => {}
    }
});
