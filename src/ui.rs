//! How times and selections are shown to a custodian on stderr: every time in UTC and local
//! time, and what was selected before a PIN is asked for.

use chrono::{DateTime, Local, Utc};

/// `2026-11-22 03:00:00 UTC (04:00:00 local, +01:00)`.
pub fn both_times(t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&Local);
    format!(
        "{} UTC ({} local, {})",
        t.format("%Y-%m-%d %H:%M:%S"),
        local.format("%Y-%m-%d %H:%M:%S"),
        local.format("%:z")
    )
}

/// Print a line to stderr (progress and summaries never go to stdout).
pub fn say(line: impl AsRef<str>) {
    eprintln!("{}", line.as_ref());
}
