//! The alarm on the host (`--alert-command`, `--alert-syslog`): `breakglass-ca-alert`, the
//! POSIX sh script that sshd runs as the `AuthorizedPrincipalsCommand` of the emergency
//! accounts, and what the snippet and `install.sh` need for it.
//!
//! sshd runs the hook (as root: it reads sshd's socket for the client address, which sshd
//! before 9.4 has no token for, and keeps root-only marks) each time it checks a certificate
//! from a trusted CA for one of these accounts, in the query phase too. The hook prints the
//! account's principals file and exits 0 at once; then, in the background in a session of its
//! own, once per connection and certificate, it logs to syslog (`auth.alert`, tag
//! `breakglass-ca`) and runs the alert command as `nobody` through `setpriv`, under
//! `timeout`, with the `BREAKGLASS_*` variables. The template is `alert.sh.in`; its awk
//! programs are here ([`ESCAPE_AWK`], [`SOCKET_AWK`], [`ADDRESS_AWK`]), so the unit tests run
//! exactly the text the hook holds.
//!
//! Without the alarm ([`HostConfig::alert`] `None`) nothing here is generated and every other
//! file is byte for byte what it was before.

use super::template::fill;
use super::{HostConfig, ALERT_HOOK, NO_PRINCIPALS_FILE, PRINCIPALS_DIR};
use crate::error::Result;

const TEMPLATE: &str = include_str!("alert.sh.in");

/// The alarm's settings. `None` in [`HostConfig::alert`] when there is neither syslog nor a
/// command: then no hook, and the snippet has `AuthorizedPrincipalsFile` as before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Log each use to syslog (`auth.alert`). Failures of the command are logged anyway.
    pub syslog: bool,
    /// The alert command: an absolute path of plain characters (checked by the caller).
    pub command: Option<String>,
    /// The command's hard time limit, in whole seconds.
    pub timeout_secs: u64,
}

/// The default `--alert-timeout`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// The `AuthorizedPrincipalsCommand` arguments: user, serial, CA fingerprint, key fingerprint,
/// key ID (last: it is the one that can hold anything). sshd 9.2 has no token for the client
/// address (`%C` came with 9.4; an unknown token would make sshd refuse the login).
pub const TOKENS: &str = "%u %s %F %f %i";

/// `escape`'s awk program: input is `od -An -v -tx1` output (hex bytes), `max` the byte limit.
/// Letters, digits and `. _ - : @ # + = , /` stay, every other byte becomes `\xHH`.
pub(super) const ESCAPE_AWK: &str = r#"
        BEGIN {
            safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:@#+=,/"
            for (n = 32; n < 127; n++) {
                c = sprintf("%c", n)
                if (index(safe, c)) keep[sprintf("%02x", n)] = c
            }
        }
        {
            for (i = 1; i <= NF; i++) {
                if (++count > max) { cut = 1; exit }
                out = out (($i in keep) ? keep[$i] : "\\x" $i)
            }
        }
        END { printf "%s%s", out, (cut ? "..." : "") }
    "#;

/// The foreground's awk program over sshd's `/proc/PID/net/tcp` and `tcp6`: the first
/// established connection (`st` 01) whose socket inode is in `INODES` (the environment, one a
/// line), printed as `INODE REMOTE` (`REMOTE` as the kernel prints it, hex `ADDR:PORT`).
pub(super) const SOCKET_AWK: &str = r#"
        BEGIN {
            n = split(ENVIRON["INODES"], list, "\n")
            for (i = 1; i <= n; i++) want[list[i]] = 1
        }
        FNR > 1 && $4 == "01" && ($10 in want) { print $10 " " $3; exit }
    "#;

/// The background's awk program: `remote` (hex `ADDR:PORT` from `/proc/net/tcp` or `tcp6`:
/// each 32-bit word of the address in the host's byte order, `little` = 1 on little-endian
/// hosts) as `ADDR PORT`: IPv4 dotted, IPv4-mapped IPv6 as IPv4 (as sshd logs it), other IPv6
/// in RFC 5952 form.
pub(super) const ADDRESS_AWK: &str = r#"
        function hex(s,    i, v) {
            v = 0
            for (i = 1; i <= length(s); i++)
                v = v * 16 + index("0123456789abcdef", tolower(substr(s, i, 1))) - 1
            return v
        }
        function word(w) {
            if (little == 1) return substr(w, 7, 2) substr(w, 5, 2) substr(w, 3, 2) substr(w, 1, 2)
            return w
        }
        function dotted(b) {
            return hex(substr(b, 1, 2)) "." hex(substr(b, 3, 2)) "." hex(substr(b, 5, 2)) "." hex(substr(b, 7, 2))
        }
        BEGIN {
            if (split(remote, r, ":") != 2) exit
            a = r[1]
            if (length(a) == 8) {
                addr = dotted(word(a))
            } else if (length(a) == 32) {
                b = tolower(word(substr(a, 1, 8)) word(substr(a, 9, 8)) word(substr(a, 17, 8)) word(substr(a, 25, 8)))
                if (substr(b, 1, 20) == "00000000000000000000" && substr(b, 21, 4) == "ffff") {
                    addr = dotted(substr(b, 25, 8))
                } else {
                    best = 0; start = 0; run = 0
                    for (i = 1; i <= 8; i++) {
                        g[i] = sprintf("%x", hex(substr(b, i * 4 - 3, 4)))
                        if (g[i] == "0") { run++; if (run > best) { best = run; start = i - run + 1 } } else run = 0
                    }
                    addr = ""
                    for (i = 1; i <= 8; i++) {
                        if (best >= 2 && i == start) { addr = addr "::"; i += best - 1; continue }
                        if (addr != "" && substr(addr, length(addr)) != ":") addr = addr ":"
                        addr = addr g[i]
                    }
                }
            } else exit
            print addr " " hex(r[2])
        }
    "#;

/// The hook's path on the host.
pub(super) fn hook_path(host: &HostConfig) -> String {
    host.host_path(ALERT_HOOK)
}

/// The Match block's principals lines: the hook instead of the principals file.
/// `AuthorizedPrincipalsFile` names a file that does not exist (and that install.sh checks
/// stays so): `none` would not do, sshd 9.2 reads `none` in a Match block as `~/none`, a file
/// in the account's home that would then be read first, and a match there would skip the
/// hook; and without the line a global `AuthorizedPrincipalsFile` of the host would be read
/// first. The hook's user is root.
pub(super) fn match_lines(host: &HostConfig) -> String {
    format!(
        "    AuthorizedPrincipalsFile {}\n    AuthorizedPrincipalsCommand {} {TOKENS}\n    AuthorizedPrincipalsCommandUser root\n",
        host.host_path(NO_PRINCIPALS_FILE),
        hook_path(host)
    )
}

/// The snippet's comment lines about the alarm, after the logging lines.
pub(super) fn snippet_comment(host: &HostConfig, alert: &Alert) -> String {
    let mut s = String::from("#\n");
    s.push_str(
        "# The alarm: for each certificate sshd checks for these accounts, it runs the hook\n",
    );
    s.push_str(&format!("#   {}\n", hook_path(host)));
    s.push_str("# (AuthorizedPrincipalsCommand, as root), which prints the principals file\n");
    s.push_str(&format!(
        "# {}/USER and, in the background, alerts:\n",
        host.host_path(PRINCIPALS_DIR)
    ));
    if alert.syslog {
        s.push_str("#   syslog auth.alert, tag breakglass-ca\n");
    }
    if let Some(c) = &alert.command {
        s.push_str(&format!(
            "#   {c}, as nobody, at most {}s (its failures go to syslog)\n",
            alert.timeout_secs
        ));
    }
    s.push_str("# AuthorizedPrincipalsFile names a file that must not exist, so that no other principals\n");
    s.push_str("# file is read before the hook.\n");
    s
}

/// The hook script.
pub(super) fn render(host: &HostConfig, alert: &Alert) -> Result<String> {
    let mut steps = String::new();
    if alert.syslog {
        steps.push_str(
            "#    - it logs the certificate's use to syslog: auth.alert, tag breakglass-ca;\n",
        );
    }
    if let Some(c) = &alert.command {
        steps.push_str(&format!(
            "#    - it runs {c} as user nobody,\n#      killed after {} s, with BREAKGLASS_* variables.\n",
            alert.timeout_secs
        ));
    }
    let mut cases = String::new();
    for (i, ca) in host.cas.iter().enumerate() {
        if host.is_revoked(ca) {
            continue;
        }
        let role = if i == 0 { "this" } else { "backup" };
        cases.push_str(&format!(
            "        '{}') ca_role={role} ;;\n",
            ca.fingerprint()
        ));
    }
    let users: Vec<&str> = host.user_names().collect();
    let timeout = alert.timeout_secs.to_string();
    fill(
        "alarm hook",
        TEMPLATE,
        &[
            ("USER_LIST", &users.join(", ")),
            ("HOOK_PATH", &hook_path(host)),
            ("PRINCIPALS_PATH", &host.host_path(PRINCIPALS_DIR)),
            ("ALERT_STEPS", &steps),
            ("CA_KEYS", &host.ca_comment("#")),
            ("ALERT_SYSLOG", if alert.syslog { "yes" } else { "no" }),
            ("ALERT_COMMAND", alert.command.as_deref().unwrap_or("")),
            ("ALERT_TIMEOUT", &timeout),
            ("ESCAPE_AWK", ESCAPE_AWK),
            ("CA_CASES", &cases),
            ("ADDRESS_AWK", ADDRESS_AWK),
            ("USER_PATTERN", &users.join("|")),
            ("SOCKET_AWK", SOCKET_AWK),
            // The shell's "$@" (a template cannot hold a bare at sign).
            ("POSITIONAL", "\"$@\""),
        ],
    )
}

/// install.sh's alarm functions (at `@ALERT_FUNCTIONS@`, after `put`).
const INSTALL_FUNCTIONS: &str = r#"
# The alarm hook (docs/hosts.md, section 5.2): sshd runs it for every certificate it checks
# for these accounts.
HOOK="$DEST/@HOOK@"
NO_PRINCIPALS_FILE="$DEST/@NO_PRINCIPALS_FILE@"
ALERT_COMMAND='@ALERT_COMMAND@'

# put_exec FILE: as put, for the hook: mode 0755 before it is renamed into place.
put_exec() {
    tmp="$1.tmp.$$"
    rm -f "$tmp"
    cat >"$tmp"
    chmod 0755 "$tmp"
    mv -f "$tmp" "$1"
    say "installed $1"
}

# hook_check: OpenSSH runs the hook only if it and every directory above it belong to root
# and no one else may write to them; otherwise sshd refuses every certificate login to these
# accounts ("Unsafe AuthorizedPrincipalsCommand"). And AuthorizedPrincipalsFile must name no file (one there would be read before
# the hook, and a principal in it would skip the alarm). Says what is wrong, and fails.
hook_check() {
    ok=0
    if [ -e "$NO_PRINCIPALS_FILE" ] || [ -L "$NO_PRINCIPALS_FILE" ]; then
        say "ERROR: $NO_PRINCIPALS_FILE exists; sshd would read it before the alarm hook, and"
        say "a certificate whose principal it lists would log in without the alarm. Remove it."
        ok=1
    fi
    if [ -n "$ROOT" ]; then
        p=$HOOK
        top=$ROOT
    else
        p=$(readlink -f -- "$HOOK" 2>/dev/null) || p=$HOOK
        top=/
    fi
    while :; do
        info=$(ls -ldn -- "$p" 2>/dev/null | awk '{ print $3 " " $1 }')
        owner=${info%% *}
        perms=${info#* }
        if [ -z "$info" ]; then
            say "ERROR: cannot read the owner and mode of $p."
            ok=1
        elif [ "$owner" != 0 ]; then
            say "ERROR: $p belongs to user id $owner, not root: sshd refuses to run the alarm hook"
            say "below it, and with it every certificate login to these accounts."
            ok=1
        else
            case $perms in
                ?????w* | ????????w*)
                    say "ERROR: $p can be written by others than root ($perms): OpenSSH refuses to"
                    say "run the alarm hook below it, and with it every certificate login to these accounts."
                    ok=1
                    ;;
            esac
        fi
        if [ "$p" = "$top" ] || [ "$p" = / ] || [ "$p" = . ]; then break; fi
        p=$(dirname -- "$p")
    done
    return "$ok"
}

# alert_command_note: say so if the alert command is not (yet) an executable file here.
alert_command_note() {
    [ -n "$ALERT_COMMAND" ] || return 0
    if [ ! -f "$ROOT$ALERT_COMMAND" ] || [ ! -x "$ROOT$ALERT_COMMAND" ]; then
        say "note: the alert command $ROOT$ALERT_COMMAND is not an executable file (yet); until it"
        say "is, every alarm logs 'alert command failed' to syslog (the logins still work)."
        return 0
    fi
    info=$(ls -ldnL -- "$ROOT$ALERT_COMMAND" 2>/dev/null | awk '{ print $3 " " $1 }')
    case ${info#* } in
        ?????w* | ????????w*)
            say "WARNING: the alert command $ROOT$ALERT_COMMAND can be written by others than its"
            say "owner: whoever can write it decides what runs at every emergency login."
            ;;
    esac
}
"#;

/// install.sh's check of the hook (at `@ALERT_CHECK@`, after the Include check, before the
/// ROOT exit): on a live host, a hook sshd would refuse puts the previous snippet back.
const INSTALL_CHECK: &str = r#"
if ! hook_check; then
    if [ -n "$ROOT" ]; then
        say "WARNING: the host gets the owners and modes of this image tree: fix them before it boots."
    else
        say "sshd was NOT reloaded."
        if [ -f "$PREV" ]; then
            mv -f "$PREV" "$SNIPPET"
            say "The previous $SNIPPET is back in place."
        else
            rm -f "$SNIPPET"
            say "$SNIPPET is removed again."
        fi
        say "Fix the problem, then run this script again."
        exit 1
    fi
fi
alert_command_note
"#;

/// install.sh's `sshd -T` check of the hook, per account (at `@ALERT_SSHD_CHECK@`, inside the
/// loop over the accounts).
const INSTALL_SSHD_CHECK: &str = r#"    if ! sshd_uses authorizedprincipalscommand "$SSH_DIR/@HOOK@ @TOKENS@" "$user" ||
        ! sshd_uses authorizedprincipalsfile "$SSH_DIR/@NO_PRINCIPALS_FILE@" "$user"; then
        say "ERROR: sshd does not use the alarm hook $SSH_DIR/@HOOK@ for $user: is another"
        say "AuthorizedPrincipalsCommand, AuthorizedPrincipalsFile or Match block read first?"
        say "sshd was NOT reloaded. Check with:"
        say "    sshd -T -C user=$user,host=x,addr=127.0.0.1 | grep -i authorizedprincipals"
        exit 1
    fi
"#;

/// install.sh's alarm parts, filled: (functions, check, sshd check); all empty without the
/// alarm, so install.sh is then what it was.
pub(super) fn install_parts(host: &HostConfig) -> Result<(String, String, String)> {
    let Some(alert) = &host.alert else {
        return Ok(Default::default());
    };
    let values = [
        ("HOOK", ALERT_HOOK),
        ("NO_PRINCIPALS_FILE", NO_PRINCIPALS_FILE),
        ("ALERT_COMMAND", alert.command.as_deref().unwrap_or("")),
        ("TOKENS", TOKENS),
    ];
    Ok((
        fill("install.sh alarm functions", INSTALL_FUNCTIONS, &values)?,
        fill("install.sh alarm check", INSTALL_CHECK, &values)?,
        fill("install.sh alarm sshd check", INSTALL_SSHD_CHECK, &values)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostconf::tests::{sample, sample_alert};
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// The awks the hook may meet: `awk` (mawk on Debian, gawk on RHEL), and mawk and gawk
    /// by name where they are installed.
    const AWKS: [&str; 3] = ["awk", "mawk", "gawk"];

    /// `awk PROGRAM ARGS` with `input` on stdin and `env` set, with every awk of [`AWKS`]
    /// there is, which must all print the same; stdout. `None` without awk (outside CI).
    fn awk(program: &str, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Option<String> {
        let mut got: Option<String> = None;
        for name in AWKS {
            if name != "awk" && Command::new(name).arg("BEGIN {}").output().is_err() {
                continue;
            }
            let Some(out) = awk_with(name, program, args, env, input) else {
                continue;
            };
            if let Some(first) = &got {
                assert_eq!(&out, first, "{name} prints something else than awk");
            }
            got = Some(out);
        }
        got
    }

    fn awk_with(
        name: &str,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        input: &[u8],
    ) -> Option<String> {
        let mut c = Command::new(name);
        c.args(args)
            .arg(program)
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = match c.spawn() {
            Ok(c) => c,
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("SKIPPED: no awk ({e})");
                return None;
            }
            Err(e) => panic!("CI=true and no awk: {e}"),
        };
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "awk failed");
        Some(String::from_utf8(out.stdout).unwrap())
    }

    /// What the hook's `escape` makes of `bytes` (the rule of docs/hosts.md, section 5.2).
    fn escaped(bytes: &[u8], max: usize) -> String {
        let safe = |b: u8| b.is_ascii_alphanumeric() || b"._-:@#+=,/".contains(&b);
        let mut s: String = bytes
            .iter()
            .take(max)
            .map(|&b| {
                if safe(b) {
                    (b as char).to_string()
                } else {
                    format!("\\x{b:02x}")
                }
            })
            .collect();
        if bytes.len() > max {
            s.push_str("...");
        }
        s
    }

    #[test]
    fn awk_programs_fit_between_single_quotes() {
        for p in [ESCAPE_AWK, SOCKET_AWK, ADDRESS_AWK] {
            assert!(!p.contains('\''), "{p}");
            assert!(!p.contains('\t'), "{p}");
        }
    }

    /// `escape`: od's hex bytes in, the safe set kept, every other byte (quotes, `$`, `` ` ``,
    /// `;`, `%`, `\`, spaces, control bytes, UTF-8) as `\xHH`, cut at `max` with `...`.
    #[test]
    fn escape_keeps_the_safe_set_and_hex_escapes_the_rest() {
        let mut all: Vec<u8> = (1..=255u8).collect();
        all.extend_from_slice(b"$(id)`id`;'\"%u\\ \n");
        for (input, max) in [
            (&b"alice@laptop#7:INC-42-db-down"[..], 200),
            (&all[..], 1000),
            (&all[..], 200),
            (&b""[..], 200),
            (&b"abc"[..], 3),
            (&b"abcd"[..], 3),
        ] {
            let hex: String = input
                .iter()
                .map(|b| format!(" {b:02x}"))
                .collect::<Vec<_>>()
                .chunks(16)
                .map(|c| format!("{}\n", c.concat()))
                .collect();
            let Some(got) = awk(
                ESCAPE_AWK,
                &["-v", &format!("max={max}")],
                &[],
                hex.as_bytes(),
            ) else {
                return;
            };
            assert_eq!(got, escaped(input, max), "{input:?}");
            assert!(got.bytes().all(|b| b.is_ascii_graphic()), "{got}");
        }
        let got = awk(
            ESCAPE_AWK,
            &["-v", "max=200"],
            &[],
            b" 24 28 69 64 29 22 27 5c\n",
        );
        assert_eq!(
            got.as_deref().unwrap_or(r"\x24\x28id\x29\x22\x27\x5c"),
            r"\x24\x28id\x29\x22\x27\x5c"
        );
    }

    /// The socket: the first established (st 01) TCP line whose inode sshd holds.
    #[test]
    fn socket_is_the_established_one_sshd_holds() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            \x20  0: 0100007F:59D7 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n\
            \x20  1: 0100007F:59D7 0100007F:C1F2 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1\n\
            \x20  2: 0100007F:59D7 0100007F:C1F4 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 20 4 30 10 -1\n";
        for (inodes, want) in [
            ("9\n333\n", "333 0100007F:C1F4\n"),
            ("111\n222", "222 0100007F:C1F2\n"),
            ("111\n", ""),
            ("", ""),
        ] {
            let Some(got) = awk(SOCKET_AWK, &[], &[("INODES", inodes)], tcp.as_bytes()) else {
                return;
            };
            assert_eq!(got, want, "{inodes:?}");
        }
    }

    /// The address as sshd logs it, from /proc/net/tcp's and tcp6's hex, on little- and
    /// big-endian hosts.
    #[test]
    fn address_from_proc_net_tcp() {
        for (remote, little, want) in [
            ("0100007F:C1F2", "1", "127.0.0.1 49650\n"),
            ("7F000001:C1F2", "256", "127.0.0.1 49650\n"),
            ("0A02000C:0016", "1", "12.0.2.10 22\n"),
            // ::ffff:192.0.2.10 (IPv4-mapped: sshd logs the IPv4 address)
            (
                "0000000000000000FFFF00000A0200C0:D431",
                "1",
                "192.0.2.10 54321\n",
            ),
            // 2001:db8::1
            (
                "B80D0120000000000000000001000000:0050",
                "1",
                "2001:db8::1 80\n",
            ),
            (
                "20010DB8000000000000000000000001:0050",
                "256",
                "2001:db8::1 80\n",
            ),
            // ::1
            ("00000000000000000000000001000000:0001", "1", "::1 1\n"),
            // fe80::a:1:0
            (
                "000080FE000000000A00000000000100:FFFF",
                "1",
                "fe80::a:1:0 65535\n",
            ),
            // 2001:0:0:1:0:0:1:1: of two equal zero runs, the first becomes ::
            (
                "00000120010000000000000001000100:0001",
                "1",
                "2001::1:0:0:1:1 1\n",
            ),
            // 2001:db8:0:1:1:1:1:1 (a single zero group stays)
            (
                "B80D0120010000000100010001000100:0001",
                "1",
                "2001:db8:0:1:1:1:1:1 1\n",
            ),
            ("garbage", "1", ""),
            ("0100007F", "1", ""),
        ] {
            let Some(got) = awk(
                ADDRESS_AWK,
                &[
                    "-v",
                    &format!("remote={remote}"),
                    "-v",
                    &format!("little={little}"),
                ],
                &[],
                b"",
            ) else {
                return;
            };
            assert_eq!(got, want, "{remote}");
        }
    }

    /// The hook and install.sh with the alarm parse as POSIX sh (dash, when it is there).
    #[test]
    fn hook_and_install_sh_parse_as_sh() {
        let mut host = sample();
        host.alert = Some(sample_alert());
        let files = host.output_files().unwrap();
        let dir = tempfile::tempdir().unwrap();
        for f in files
            .iter()
            .filter(|f| f.path == ALERT_HOOK || f.path == "install.sh")
        {
            let path = dir.path().join(f.path.replace('/', "_"));
            std::fs::write(&path, f.content.as_bytes()).unwrap();
            for shell in ["sh", "dash", "bash"] {
                if let Ok(o) = Command::new(shell).arg("-n").arg(&path).output() {
                    assert!(
                        o.status.success(),
                        "{shell} -n {}: {}",
                        f.path,
                        String::from_utf8_lossy(&o.stderr)
                    );
                }
            }
        }
        let hook = files.iter().find(|f| f.path == ALERT_HOOK).unwrap();
        assert_eq!(hook.mode, 0o755);
        let text = hook.content.text().unwrap();
        assert!(text.contains("    breakglass|root) cat -- \"$PRINCIPALS/$user\""));
        assert!(text.contains("\nALERT_COMMAND='/usr/local/sbin/breakglass-page'\n"));
        assert!(text.contains("\nALERT_TIMEOUT=10\n"));
        assert!(text.contains("\nALERT_SYSLOG=yes\n"));
        assert!(text.contains(
            "        'SHA256:v101hqzXUxw5UzU4vKn3rNQN53PcG35wkt0/4sHts5Q') ca_role=this ;;\n"
        ));
        assert!(!text.contains("eval"));
    }

    /// The Match blocks ask the hook; without the alarm they read the principals file as
    /// before; a revoked backup CA gets no role (sshd never asks about it).
    #[test]
    fn match_blocks_with_and_without_the_alarm() {
        let mut host = sample();
        let before = super::super::snippet::render(&host).unwrap();
        assert_eq!(
            before
                .matches("    AuthorizedPrincipalsFile /etc/ssh/breakglass-ca-principals/%u\n")
                .count(),
            2
        );
        assert!(!before.contains("AuthorizedPrincipalsCommand"));
        host.alert = Some(Alert {
            syslog: true,
            command: None,
            timeout_secs: 10,
        });
        let with = super::super::snippet::render(&host).unwrap();
        assert_eq!(
            with.matches(
                "    AuthorizedPrincipalsFile /etc/ssh/breakglass-ca-principals/.none\n    AuthorizedPrincipalsCommand /etc/ssh/breakglass-ca-alert %u %s %F %f %i\n    AuthorizedPrincipalsCommandUser root\n    AuthorizedKeysFile none\n"
            )
            .count(),
            2,
            "{with}"
        );
        assert!(!with.contains("principals/%u"));
        let hook = render(&host, host.alert.as_ref().unwrap()).unwrap();
        assert!(hook.contains("\nALERT_COMMAND=''\n") && hook.contains("\nALERT_SYSLOG=yes\n"));
        host.cas.push(crate::hostconf::tests::ca(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi b",
        ));
        host.revoked_cas = vec![host.cas[1].key.clone()];
        let hook = render(&host, host.alert.as_ref().unwrap()).unwrap();
        assert_eq!(hook.matches("') ca_role=").count(), 1, "{hook}");
    }
}
