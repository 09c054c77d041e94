//! The KRL decoder (`krl::Krl::decode`, what `krl --check -f` runs on a KRL file): any input
//! is read or refused without a panic; a KRL that is read encodes (it holds nothing sshd would
//! refuse), and its encoding reads back as the same KRL and encodes to the same bytes; checking
//! a certificate against it does not panic, and a KRL that lists the certificate's key or its
//! CA's key as an explicit key revokes it. The seeds (`fuzz/seeds/krl`) were written by
//! `ssh-keygen -k` and by `examples/krl_size`, with the CA and key of the certificate below.
#![no_main]

use std::sync::OnceLock;

use breakglass_ca::krl::Krl;
use libfuzzer_sys::fuzz_target;
use ssh_key::Certificate;

/// Signed by the CA key of the seeds, for one of their explicit keys (serial 5, key ID
/// "fuzz-cert").
const CERT: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIAhkZR/mCnd/V8VasmKA2RKgOOeFOA2sNXpQIC4h7bLXAAAAIL6V7wZjOqDKj3xEbHFyRJhRifZv9pJetVZ2rH0O0yEpAAAAAAAAAAUAAAABAAAACWZ1enotY2VydAAAAA4AAAAKYnJlYWtnbGFzcwAAAABpVbkAAAAAAHwkXwAAAAAAAAAAggAAABVwZXJtaXQtWDExLWZvcndhcmRpbmcAAAAAAAAAF3Blcm1pdC1hZ2VudC1mb3J3YXJkaW5nAAAAAAAAABZwZXJtaXQtcG9ydC1mb3J3YXJkaW5nAAAAAAAAAApwZXJtaXQtcHR5AAAAAAAAAA5wZXJtaXQtdXNlci1yYwAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACByUW/Hfr5RtFq2vm1ugQ0Sjk4CIC8p+N5RH/C26Qrp7AAAAFMAAAALc3NoLWVkMjU1MTkAAABAOxPS8s5KWxUwvSWyn7drY+3ReBH5zPO3q/KFZSabAbATVYQS+VGj3JmGRZvFJSFzdSINLRHDIjtaJTPZbmvABA==";

fn cert() -> &'static Certificate {
    static CERT_: OnceLock<Certificate> = OnceLock::new();
    CERT_.get_or_init(|| Certificate::from_openssh(CERT).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Ok(krl) = Krl::decode(data) else {
        return;
    };
    let bytes = krl.encode().expect("a decoded KRL encodes");
    let again = Krl::decode(&bytes).expect("an encoded KRL decodes");
    assert_eq!(again, krl, "the encoding reads back as the same KRL");
    assert_eq!(again.encode().unwrap(), bytes, "and encodes to the same bytes");
    let cert = cert();
    let result = krl.check(cert).expect("the check runs");
    if krl.explicit_keys.contains(cert.public_key())
        || krl.explicit_keys.contains(cert.signature_key())
    {
        assert!(result.is_some(), "an explicit key revokes");
    }
});
