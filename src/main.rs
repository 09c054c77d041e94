//! The `breakglass-ca` binary: parse the command line, run it, print any error once with its
//! hint, and exit 0 (success), 1 (failure) or 2 (usage error). No panic reaches the user.

use std::process::ExitCode;

use breakglass_ca::ui::say;
use clap::error::{ContextKind, ContextValue};
use clap::Parser;

fn main() -> ExitCode {
    // A panic in a dependency must not print a Rust backtrace at a stressed custodian.
    std::panic::set_hook(Box::new(|info| {
        if breakglass_ca::panic_guard::catching() {
            return;
        }
        say(format!("error: internal error: {info}"));
        say("hint: nothing was issued unless a summary was printed above; please report this bug");
    }));
    let cli = match breakglass_ca::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // clap quotes the offending argument, which can hold anything, newlines included:
            // it is shown escaped (and `say` makes every line safe).
            let mut text = e.render().to_string();
            if let Some(ContextValue::String(raw)) = e.get(ContextKind::InvalidValue) {
                text = text.replace(raw.as_str(), &breakglass_ca::text::escape(raw));
            }
            say(text.trim_end());
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
        // --help and --version: our own text, on stdout.
        Err(e) => e.exit(),
    };
    match std::panic::catch_unwind(|| breakglass_ca::cmd::run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            // Messages embed comments, key IDs, labels and paths: `say` shows them safely.
            say(format!("error: {e}"));
            if let Some(hint) = e.hint() {
                say(format!("hint: {hint}"));
            }
            ExitCode::from(e.exit_code())
        }
        Err(_) => ExitCode::FAILURE,
    }
}
