//! `text::escape`, `text::escape_bytes` and `text::json_ascii`: whatever the input, the output
//! is safe to show on a terminal, safe text without a backslash is left as it is, and the JSON
//! is ASCII and reads back as the same string.
#![no_main]

use breakglass_ca::text::{escape, escape_bytes, is_safe, json_ascii};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let shown = escape_bytes(data);
    assert!(is_safe(&shown), "escape_bytes({data:?}) = {shown:?}");
    let text = String::from_utf8_lossy(data);
    let shown = escape(&text);
    assert!(is_safe(&shown), "escape({text:?}) = {shown:?}");
    if is_safe(&text) && !text.contains('\\') {
        assert_eq!(shown, text);
    } else {
        assert_ne!(shown, text, "{text:?} needed escaping");
    }
    for pretty in [false, true] {
        let json = json_ascii(text.as_ref(), pretty).unwrap();
        assert!(json.is_ascii(), "{json:?}");
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), text);
    }
});
