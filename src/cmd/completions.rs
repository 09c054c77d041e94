//! `completions SHELL` and `man`: the shell completion scripts (`clap_complete`) and the
//! manual page (`clap_mangen`), generated from the clap definitions in `cli.rs`, so they never
//! drift from `--help`. `scripts/package.sh` puts both into the Debian package.
//!
//! The manual page is one page, `breakglass-ca(1)`, with every command in a section of its
//! own (`BREAKGLASS-CA MINT`, `BREAKGLASS-CA LOG VERIFY`…): a custodian searches one page, and
//! `man -t breakglass-ca` prints all of it for the vault binder. Its date is
//! `SOURCE_DATE_EPOCH`'s day when that is set, else none: the same definitions give the same
//! bytes.

use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

use crate::backend::pkcs11::MODULE_ENV;
use crate::cli::{Cli, CompletionsArgs, ShellArg};
use crate::cmd::write_stdout;
use crate::error::{Error, Result};
use crate::text::Esc;

/// The name the scripts complete and the page documents.
pub const BIN: &str = "breakglass-ca";

/// `completions SHELL`: the script on stdout.
pub fn run(args: &CompletionsArgs) -> Result<()> {
    write_stdout(&completion_script(args.shell))
}

/// `man`: the page on stdout.
pub fn man() -> Result<()> {
    let date = source_date(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())?;
    write_stdout(&man_page(date.as_deref()))
}

/// The completion script for `shell`.
pub fn completion_script(shell: ShellArg) -> String {
    let shell = match shell {
        ShellArg::Bash => clap_complete::Shell::Bash,
        ShellArg::Zsh => clap_complete::Shell::Zsh,
        ShellArg::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut out);
    let script = String::from_utf8_lossy(&out).into_owned();
    if shell != clap_complete::Shell::Bash {
        return script;
    }
    // clap_complete's bash script spells the state of a subcommand of a hyphenated binary
    // two ways: the loop sets `breakglass__ca__subcmd__mint`, the case arm expects
    // `breakglass__subcmd__ca__subcmd__mint`, and nothing after the command name completes
    // (clap issues 6421 and 6529). Spell the arms as the loop does; a no-op once fixed.
    script.replace(&BIN.replace('-', "__subcmd__"), &BIN.replace('-', "__"))
}

/// `SOURCE_DATE_EPOCH` (seconds since 1970) as the page's date, YYYY-MM-DD in UTC; none when
/// unset or empty. A value that is not such a number is an error, not a silent "now", as the
/// reproducible-builds specification asks.
pub fn source_date(epoch: Option<&str>) -> Result<Option<String>> {
    let Some(epoch) = epoch.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    epoch
        .parse::<i64>()
        .ok()
        .filter(|s| *s >= 0)
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| Some(t.format("%Y-%m-%d").to_string()))
        .ok_or_else(|| {
            Error::usage(format!(
                "SOURCE_DATE_EPOCH is '{}', not a number of seconds since 1970-01-01",
                Esc(epoch)
            ))
            .with_hint("unset it, or set it to e.g. $(git log -1 --format=%ct)")
        })
}

/// The whole manual page, as roff.
pub fn man_page(date: Option<&str>) -> String {
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let mut page = String::new();
    let top = Man::new(root.clone());
    // roff's preamble once (the apostrophe string every fragment uses), then the title line:
    // written here, since clap_mangen drops an empty date and shifts the fields after it.
    page.push_str(&Roff::new().render());
    page.push_str(&format!(
        ".TH {BIN} 1 \"{}\" \"{BIN} {}\" \"{BIN} manual\"\n",
        date.unwrap_or_default(),
        root.get_version().unwrap_or_default()
    ));
    page.push_str(&fragment(|w| top.render_name_section(w)));
    page.push_str(&fragment(|w| top.render_synopsis_section(w)));
    page.push_str(&description());
    page.push_str(&fragment(|w| top.render_options_section(w)));
    page.push_str(&commands_list(&root));
    page.push_str(&after_help(&root, "EXAMPLES", false));
    for sub in visible(&root) {
        command_sections(&mut page, sub, &[]);
    }
    page.push_str(&tail_sections(&root));
    ascii(&page)
}

/// Every character outside ASCII as groff's `\[uXXXX]`: the page reads the same under any
/// locale, and `groff` without a `preconv` step does not warn about it.
fn ascii(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

/// The subcommands shown in `--help`, in its order.
fn visible(cmd: &clap::Command) -> Vec<&clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect()
}

fn rendered(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = f(&mut out);
    out
}

/// A rendered fragment without roff's preamble (which every fragment starts with).
fn fragment(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let text = String::from_utf8_lossy(&rendered(f)).into_owned();
    let preamble = Roff::new().render();
    match text.strip_prefix(&preamble) {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

fn roff_text(roff: &Roff) -> String {
    fragment(|w| roff.to_writer(w))
}

fn description() -> String {
    let mut r = Roff::new();
    r.control("SH", ["DESCRIPTION"]);
    r.text([
        roman("Each command has a section of its own below, with the text of "),
        bold(format!("{BIN} COMMAND --help")),
        roman(". The option "),
        bold("--state-dir"),
        roman(" is accepted by every command, before or after its name."),
    ]);
    roff_text(&r)
}

fn commands_list(root: &clap::Command) -> String {
    let mut r = Roff::new();
    r.control("SH", ["COMMANDS"]);
    for sub in visible(root) {
        r.control("TP", []);
        r.text([bold(format!("{BIN} {}", sub.get_name()))]);
        if let Some(about) = sub.get_about() {
            r.text([roman(about.to_string())]);
        }
    }
    roff_text(&r)
}

/// One command's section (`.SH "BREAKGLASS-CA LOG SHOW"`), then its subcommands'.
fn command_sections(page: &mut String, cmd: &clap::Command, parents: &[&str]) {
    let mut path: Vec<&str> = parents.to_vec();
    path.push(cmd.get_name());
    // The global options and --help are on the top of the page, not repeated per command.
    let mut cmd = cmd.clone();
    for global in ["state_dir", "help"] {
        if cmd.get_arguments().any(|a| a.get_id() == global) {
            cmd = cmd.mut_arg(global, |a| a.hide(true));
        }
    }
    let mut r = Roff::new();
    r.control(
        "SH",
        [format!("{BIN} {}", path.join(" ")).to_uppercase().as_str()],
    );
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        for line in about.to_string().lines() {
            if line.trim().is_empty() {
                r.control("PP", []);
            } else {
                r.text([roman(line)]);
            }
        }
    }
    page.push_str(&roff_text(&r));
    let man = Man::new(cmd.clone());
    page.push_str(&subsections(&fragment(|w| man.render_synopsis_section(w))));
    let has_options = cmd
        .get_arguments()
        .any(|a| !a.is_hide_set() && a.get_id() != "version");
    if has_options {
        page.push_str(&subsections(&fragment(|w| man.render_options_section(w))));
    }
    page.push_str(&after_help(&cmd, "Examples and notes", true));
    for sub in visible(&cmd) {
        command_sections(page, sub, &path);
    }
}

/// Turn a fragment's `.SH HEADING` lines into `.SS Heading` (inside a command's section).
fn subsections(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line.strip_prefix(".SH ") {
            Some(heading) => {
                let heading = heading.trim_matches('"').to_lowercase();
                let mut chars = heading.chars();
                let title: String = chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default();
                out.push_str(&format!(".SS \"{title}\"\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The text after `--help`'s options: prose is filled, indented lines (the examples) are
/// kept as they are, a blank line starts a paragraph. A first line "Examples:" is the
/// heading's.
fn after_help(cmd: &clap::Command, heading: &str, sub: bool) -> String {
    let Some(text) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) else {
        return String::new();
    };
    let text = text.to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.first().map(|l| l.trim()) == Some("Examples:") {
        lines.remove(0);
    }
    let mut r = Roff::new();
    r.control(if sub { "SS" } else { "SH" }, [heading]);
    let mut in_example = false;
    for line in lines {
        let example = line.starts_with("  ");
        if example != in_example {
            if example {
                r.control("RS", ["4"]);
                r.control("nf", []);
            } else {
                r.control("fi", []);
                r.control("RE", []);
            }
            in_example = example;
        }
        if line.trim().is_empty() {
            r.control("PP", []);
        } else if example {
            r.text([roman(&line[2..])]);
        } else {
            r.text([roman(line)]);
        }
    }
    if in_example {
        r.control("fi", []);
        r.control("RE", []);
    }
    roff_text(&r)
}

/// ENVIRONMENT (every option's variable, and the PKCS#11 module's), FILES, EXIT STATUS, SEE
/// ALSO.
fn tail_sections(root: &clap::Command) -> String {
    let mut r = Roff::new();
    r.control("SH", ["ENVIRONMENT"]);
    let mut seen: Vec<String> = Vec::new();
    let mut stack = vec![root];
    while let Some(cmd) = stack.pop() {
        for arg in cmd.get_arguments() {
            let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            let env = env.to_string_lossy().into_owned();
            if seen.contains(&env) {
                continue;
            }
            r.control("TP", []);
            r.text([bold(env.clone())]);
            r.text([
                roman("The default of "),
                bold(format!("--{long}")),
                roman(match arg.get_help() {
                    Some(h) => format!(": {h}"),
                    None => ".".into(),
                }),
            ]);
            seen.push(env);
        }
        let mut subs: Vec<&clap::Command> = cmd.get_subcommands().collect();
        subs.reverse();
        stack.extend(subs);
    }
    r.control("TP", []);
    r.text([bold(MODULE_ENV)]);
    r.text([roman(
        "The PKCS#11 module to load when the CA URI has no module-path.",
    )]);

    r.control("SH", ["FILES"]);
    r.text([roman(
        "The state directory (--state-dir; default $XDG_STATE_HOME/breakglass-ca, else \
         ~/.local/state/breakglass-ca) holds:",
    )]);
    for (name, what) in [
        (
            "config.toml",
            "which CA key to use, its fingerprint and the policy (written by init)",
        ),
        ("ca.pub", "the CA public key line"),
        (
            "ledger.jsonl",
            "the hash-chained issuance ledger, one record per certificate or revocation",
        ),
        (
            "checkpoints.jsonl",
            "only for a ledger begun by 0.1.0: its checkpoints",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(name)]);
        r.text([roman(what)]);
    }
    r.text([
        roman("The runbook, host and ledger documents are in "),
        bold("/usr/share/doc/breakglass-ca/"),
        roman("."),
    ]);

    r.control("SH", ["EXIT STATUS"]);
    for (code, what) in [
        ("0", "success"),
        (
            "1",
            "failure: a refusal, an error, a broken ledger, an ALARM from audit, a revoked \
             certificate from krl --check",
        ),
        ("2", "usage error: a wrong option or argument"),
        (
            "128+N",
            "interrupted by signal N (e.g. 130 for SIGINT) while the PIN was read or the token \
             used",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(code)]);
        r.text([roman(what)]);
    }

    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("ssh-keygen"),
        roman("(1), "),
        bold("ssh"),
        roman("(1), "),
        bold("sshd_config"),
        roman("(5), "),
        bold("softhsm2-util"),
        roman("(1), "),
        bold("pkcs11-tool"),
        roman("(1)"),
    ]);
    roff_text(&r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_date_is_the_day_of_the_epoch_in_utc() {
        assert_eq!(source_date(None).unwrap(), None);
        assert_eq!(source_date(Some("")).unwrap(), None);
        assert_eq!(
            source_date(Some("0")).unwrap().as_deref(),
            Some("1970-01-01")
        );
        assert_eq!(
            source_date(Some("1767225599")).unwrap().as_deref(),
            Some("2025-12-31")
        );
        for bad in ["now", "-1", "1.5", " 1", "99999999999999999999"] {
            let e = source_date(Some(bad)).unwrap_err();
            assert!(e.to_string().contains("SOURCE_DATE_EPOCH"), "{bad}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn the_page_has_every_visible_command_and_no_hidden_one() {
        let page = man_page(Some("2026-01-02"));
        assert!(
            page.starts_with(&Roff::new().render()),
            "one preamble first"
        );
        assert_eq!(page.matches(&Roff::new().render()).count(), 1);
        assert!(page.contains(".TH breakglass-ca 1 \"2026-01-02\" \"breakglass-ca "));
        let root = Cli::command();
        for sub in visible(&root) {
            let head = format!(".SH \"BREAKGLASS-CA {}\"", sub.get_name().to_uppercase());
            assert!(page.contains(&head), "{head}");
        }
        for nested in ["LOG SHOW", "LOG VERIFY", "LOG EXPORT", "COMPLETIONS"] {
            assert!(
                page.contains(&format!("BREAKGLASS-CA {nested}\"")),
                "{nested}"
            );
        }
        assert!(!page.contains("BREAKGLASS-CA MAN\""), "man is hidden");
        assert!(!page.contains("BREAKGLASS-CA HELP"));
        // Examples are kept line by line, not filled into one paragraph.
        assert!(page.contains(".nf\nbreakglass\\-ca krl \\-o breakglass\\-ca.krl\n"));
        // Environment variables by name, never a value.
        assert!(page.contains("BREAKGLASS_CA_PIN_FILE"));
        assert!(page.contains("BREAKGLASS_CA_PKCS11_MODULE"));
        // ASCII only: the ellipses of the help text as groff escapes.
        assert!(page.is_ascii());
        assert!(page.contains("\\[u2026]"));
    }

    #[test]
    fn without_source_date_epoch_the_page_has_no_date() {
        let page = man_page(None);
        assert!(page.contains(".TH breakglass-ca 1 \"\" \"breakglass-ca "));
        assert!(!page.contains("[env:"));
    }

    #[test]
    fn completion_scripts_name_the_commands() {
        for (shell, head) in [
            (ShellArg::Bash, "_breakglass__ca()"),
            (ShellArg::Zsh, "#compdef breakglass-ca"),
            (ShellArg::Fish, "complete -c breakglass-ca"),
        ] {
            let s = completion_script(shell);
            assert!(s.contains(head), "{shell:?}");
            assert!(s.contains("mint") && s.contains("host-config"), "{shell:?}");
        }
    }
}
