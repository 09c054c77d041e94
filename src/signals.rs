//! SIGINT, SIGTERM and SIGHUP are deferred while a command works with the CA token, so that
//! Ctrl-C, a `kill` or a closed terminal never cuts the token or the ledger in half.
//!
//! Why: SoftHSM 2.6 truncates its `token.object` and writes it again at every `C_Login`, and
//! writes object files when it generates a key. A signal's default action in that instant
//! leaves an empty token store: the CA key is gone. A signal between the ledger record and the
//! certificate file leaves a serial recorded that was never handed out.
//!
//! How: a [`Deferral`] is created (inert) before the token is opened and dropped after the
//! token is closed. While it defers a signal, the signal only sets a flag; the command asks
//! [`Deferral::stop_if_taken`] at defined points and stops there with [`Error::Interrupted`],
//! saying what was and was not issued (exit code 128 + the signal: 130, 143, 129).
//!
//! When: [`Deferral::read_pin`] defers SIGINT from the PIN prompt on: rpassword reads the
//! terminal in raw mode and turns Ctrl-C into `raise(SIGINT)`, so with SIGINT deferred the
//! prompt returns, the terminal is restored, and the command stops with "at the PIN prompt"
//! (before, the process died there with the terminal's echo off). SIGTERM and SIGHUP are
//! deferred once the PIN is read, just before `C_Login`: while the prompt waits, they end the
//! process as usual (a prompt would not return for them). Nothing before `C_Login` writes to
//! the token (SoftHSM 2.6 only reads the store to open it, list it and read public keys; the
//! `generation` file is rewritten in place with the same 8 bytes, never truncated), so a
//! signal there costs nothing; `hsm-tests/signals.rs` lands signals all over a run to show it.
//! Callers declare the `Deferral` before the token, so on every path the session is closed
//! (`C_CloseSession`, `C_Finalize`) while signals are still deferred. On an error path,
//! dropping it ends the deferral; after the last check ([`Deferral::finish`], once the
//! certificate or `config.toml` is written) it lasts until the process exits.
//!
//! A signal ignored when the process started (SIGHUP under `nohup`) is left ignored. SIGKILL
//! and power loss cannot be deferred: the runbook says to back up a SoftHSM2 token directory
//! like the key it is.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};

use crate::error::{Error, Result};
use crate::pin::{LoosePinFile, Pin, PinSource};

/// The signals that are deferred, in the order of [`Handlers::default_action`].
const DEFERRED: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// The handlers, installed once per process on first use and never removed.
struct Handlers {
    /// The signal that came while deferred (the last one, if several), 0 for none.
    taken: Arc<AtomicUsize>,
    /// Per signal of [`DEFERRED`]: true while the signal's default action applies.
    default_action: [Arc<AtomicBool>; 3],
}

static HANDLERS: OnceLock<std::result::Result<Handlers, String>> = OnceLock::new();

fn handlers() -> Result<&'static Handlers> {
    HANDLERS.get_or_init(install).as_ref().map_err(|e| {
        Error::io(
            "cannot install the signal handlers",
            std::io::Error::other(e.clone()),
        )
    })
}

fn install() -> std::result::Result<Handlers, String> {
    let ignored = std::fs::read_to_string("/proc/self/status")
        .map(|s| ignored_mask(&s))
        .unwrap_or(0);
    let handlers = Handlers {
        taken: Arc::new(AtomicUsize::new(0)),
        default_action: [(); 3].map(|_| Arc::new(AtomicBool::new(true))),
    };
    for (sig, default) in DEFERRED.iter().zip(&handlers.default_action) {
        if is_ignored(ignored, *sig) {
            continue;
        }
        // The default action goes first: while it applies, the process ends before the flag
        // is set, exactly as without a handler.
        signal_hook::flag::register_conditional_default(*sig, Arc::clone(default))
            .and_then(|_| {
                signal_hook::flag::register_usize(*sig, Arc::clone(&handlers.taken), *sig as usize)
            })
            .map_err(|e| format!("{}: {e}", name(*sig)))?;
    }
    Ok(handlers)
}

/// The `SigIgn:` mask of `/proc/self/status` (bit n-1 for signal n), 0 if absent.
fn ignored_mask(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

fn is_ignored(mask: u64, sig: i32) -> bool {
    (1..=64).contains(&sig) && mask & (1u64 << (sig - 1)) != 0
}

/// `SIGINT`, `SIGTERM`, `SIGHUP` (or `signal N`).
pub fn name(sig: i32) -> String {
    signal_hook::low_level::signal_name(sig)
        .map(str::to_string)
        .unwrap_or_else(|| format!("signal {sig}"))
}

/// Deferral of SIGINT, SIGTERM and SIGHUP for one command (one at a time per process). Inert
/// when created; [`Deferral::read_pin`] (or [`Deferral::defer_all`]) starts it. Dropping it on
/// an error path ends it: the default actions apply again, and a signal not asked about is
/// forgotten (the error is reported instead). After [`Deferral::finish`] it lasts until exit.
#[derive(Default)]
pub struct Deferral {
    started: AtomicBool,
    /// Set by [`Deferral::finish`]: the deferral then lasts until the process exits.
    finished: bool,
}

impl Deferral {
    pub fn new() -> Deferral {
        Deferral::default()
    }

    fn defer(&self, signals: &[i32]) -> Result<()> {
        let h = handlers()?;
        self.started.store(true, Ordering::SeqCst);
        for (sig, default) in DEFERRED.iter().zip(&h.default_action) {
            if signals.contains(sig) {
                default.store(false, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    /// Defer all three from now on.
    pub fn defer_all(&self) -> Result<()> {
        self.defer(&DEFERRED)
    }

    /// The signal that came while deferred, if one did.
    pub fn taken(&self) -> Option<i32> {
        if !self.started.load(Ordering::SeqCst) {
            return None;
        }
        let h = HANDLERS.get()?.as_ref().ok()?;
        match h.taken.load(Ordering::SeqCst) {
            0 => None,
            sig => i32::try_from(sig).ok(),
        }
    }

    /// A defined stopping point: if a signal came, stop with [`Error::Interrupted`], whose
    /// message is "interrupted (SIGNAL) " + `what()` (what was and was not done).
    pub fn stop_if_taken(
        &self,
        what: impl FnOnce() -> String,
        hint: impl FnOnce() -> String,
    ) -> Result<()> {
        match self.taken() {
            Some(sig) => Err(Error::interrupted(sig, what()).with_hint(hint())),
            None => Ok(()),
        }
    }

    /// The last stopping point, once everything is written and the token is closed: stop if
    /// a signal came, as [`Deferral::stop_if_taken`]. Deferral then lasts until the process
    /// exits, so a signal in the last instant (returning from `main`) changes nothing: the
    /// exit code says what happened, and a death by the signal always means nothing was done.
    pub fn finish(
        mut self,
        what: impl FnOnce() -> String,
        hint: impl FnOnce() -> String,
    ) -> Result<()> {
        self.finished = true;
        self.stop_if_taken(what, hint)
    }

    /// Read the PIN with SIGINT deferred, so that Ctrl-C at the prompt returns from it (and
    /// the terminal is restored); stop if a signal came; then defer all three, for the login
    /// that follows. `untouched` says what was not done ("nothing was issued, ..."). Returns
    /// what [`PinSource::read`] returns.
    pub fn read_pin(
        &self,
        source: &PinSource,
        what: &str,
        untouched: &str,
    ) -> Result<(Pin, Option<LoosePinFile>)> {
        self.defer(&[SIGINT])?;
        let pin = source.read(what);
        let at = match source {
            PinSource::Prompt => "at the PIN prompt",
            PinSource::File(_) => "while the PIN was read",
        };
        self.stop_if_taken(
            || format!("{at}: {untouched}"),
            || "nothing to clean up: run the same command again when ready".into(),
        )?;
        let pin = pin?;
        self.defer_all()?;
        Ok(pin)
    }
}

impl Drop for Deferral {
    fn drop(&mut self) {
        if self.finished || !self.started.load(Ordering::SeqCst) {
            return;
        }
        if let Some(Ok(h)) = HANDLERS.get() {
            for default in &h.default_action {
                default.store(true, Ordering::SeqCst);
            }
            h.taken.store(0, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signal_hook::low_level::raise;

    #[test]
    fn ignored_signals_from_proc_status() {
        let status = "Name:\tx\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\nSigCgt:\t0\n";
        let mask = ignored_mask(status);
        assert!(is_ignored(mask, SIGHUP));
        assert!(is_ignored(mask, 13)); // SIGPIPE
        assert!(!is_ignored(mask, SIGINT));
        assert!(!is_ignored(mask, SIGTERM));
        assert_eq!(ignored_mask("Name:\tx\n"), 0);
        assert!(!is_ignored(u64::MAX, 0));
        assert!(!is_ignored(u64::MAX, 65));
    }

    #[test]
    fn names() {
        assert_eq!(name(SIGINT), "SIGINT");
        assert_eq!(name(SIGTERM), "SIGTERM");
        assert_eq!(name(SIGHUP), "SIGHUP");
    }

    /// One test for everything that raises signals in this process, so that no other test
    /// runs while a default action could apply.
    #[test]
    fn deferred_signals_become_a_stop_with_exit_code_128_plus_the_signal() {
        let inert = Deferral::new();
        assert_eq!(inert.taken(), None);
        drop(inert);

        let d = Deferral::new();
        d.defer_all().unwrap();
        assert_eq!(d.taken(), None);
        d.stop_if_taken(|| unreachable!(), || unreachable!())
            .unwrap();
        raise(SIGTERM).unwrap(); // would end the test process without the deferral
        assert_eq!(d.taken(), Some(SIGTERM));
        let err = d
            .stop_if_taken(
                || "before signing: nothing was issued".into(),
                || "run it again".into(),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "interrupted (SIGTERM) before signing: nothing was issued"
        );
        assert_eq!(err.exit_code(), 143);
        assert_eq!(err.hint().as_deref(), Some("run it again"));
        raise(SIGHUP).unwrap();
        let err = d.stop_if_taken(String::new, String::new).unwrap_err();
        assert_eq!(err.exit_code(), 129);
        drop(d);

        // A new deferral starts clean; at the PIN (a file here) only SIGINT is deferred.
        let dir = tempfile::tempdir().unwrap();
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, "123456\n").unwrap();
        let d = Deferral::new();
        assert_eq!(d.taken(), None);
        let (pin, _) = d
            .read_pin(
                &PinSource::File(pin_file.clone()),
                "token",
                "nothing was issued",
            )
            .unwrap();
        assert_eq!(pin.expose(), "123456");
        raise(SIGINT).unwrap();
        let err = d
            .read_pin(&PinSource::File(pin_file), "token", "nothing was issued")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "interrupted (SIGINT) while the PIN was read: nothing was issued"
        );
        assert_eq!(err.exit_code(), 130);
        assert!(err.hint().unwrap().contains("run the same command again"));
        drop(d);

        // After finish, signals stay deferred: nothing is left to cut short.
        let d = Deferral::new();
        assert_eq!(d.taken(), None);
        d.defer_all().unwrap();
        d.finish(String::new, String::new).unwrap();
        raise(SIGTERM).unwrap();
        let h = handlers().unwrap();
        assert_eq!(h.taken.load(Ordering::SeqCst), SIGTERM as usize);
        assert!(!h.default_action[1].load(Ordering::SeqCst));
        // Give the test process its default actions back (Ctrl-C on `cargo test` must work).
        for default in &h.default_action {
            default.store(true, Ordering::SeqCst);
        }
        h.taken.store(0, Ordering::SeqCst);
    }
}
