//! `--ca` URIs (`uri::CaUri`): any text parses or is refused without a panic, and a URI that
//! parses prints (as `init` writes it into config.toml) as a URI that parses back to the same.
#![no_main]

use breakglass_ca::uri::CaUri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<CaUri>() {
        Ok(uri) => {
            let shown = uri.to_string();
            let again = shown.parse::<CaUri>().unwrap_or_else(|e| {
                panic!("{text:?} printed as {shown:?}, which does not parse: {e}")
            });
            assert_eq!(again, uri, "{text:?} printed as {shown:?}");
        }
        Err(e) => {
            // A refusal has a message (and never panics getting it).
            assert!(!e.to_string().is_empty());
        }
    }
});
