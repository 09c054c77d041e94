//! Durations (`-V`, `--backdate`, `[policy]`): any text parses or is refused without a panic; a
//! duration that parses is positive, fits an i64 of seconds, was written with digits and the
//! units s, m, h only, and prints as text that parses back to the same.
#![no_main]

use breakglass_ca::duration::Duration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = text.parse::<Duration>() {
        assert!(d.as_secs() > 0, "{text:?} parsed as zero");
        assert!(
            d.as_secs() <= i64::MAX as u64,
            "{text:?} does not fit an i64"
        );
        assert!(
            text.trim()
                .chars()
                .all(|c| c.is_ascii_digit() || "smh".contains(c)),
            "{text:?} parsed although it holds other characters"
        );
        let shown = d.to_string();
        assert_eq!(
            shown.parse::<Duration>().ok(),
            Some(d),
            "{text:?} printed as {shown:?}"
        );
    }
});
