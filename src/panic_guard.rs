//! Turning a panic inside a dependency (the `yubikey` crate is known to panic on some cards)
//! into an error, without the panic hook printing anything while it is being caught.

use std::cell::Cell;
use std::panic::{catch_unwind, UnwindSafe};

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Whether a panic on this thread is being caught by [`quietly`] (the hook stays silent then).
pub fn catching() -> bool {
    CATCHING.with(Cell::get)
}

/// Run `f`; a panic becomes `None`.
pub fn quietly<T>(f: impl FnOnce() -> T + UnwindSafe) -> Option<T> {
    let before = CATCHING.with(|c| c.replace(true));
    let out = catch_unwind(f).ok();
    CATCHING.with(|c| c.set(before));
    out
}
