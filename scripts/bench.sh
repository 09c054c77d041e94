#!/usr/bin/env bash
# bench.sh: whole-process time of `breakglass-ca mint` against `ssh-keygen -s ... -D MODULE`,
# both signing with the SAME ECDSA P-256 key on a private SoftHSM2 token.
#
#   bash scripts/bench.sh
#
# Prints the median of each (ms), the ratio ours/ssh-keygen and the goal (ratio <= 0.85), and a
# breakdown: process start (--version), module load + key lookup (pubkey, no PIN), and the rest
# of mint (login, sign, self-verify, fsynced ledger record, certificate file).
#
# Then the token signatures per certificate, counted through OpenSC's pkcs11-spy (C_SignInit
# calls: ours 1, ssh-keygen 1), and a batch of 20 keys in one `mint` against one
# `ssh-keygen -s` with the same 20 keys (the ratio is printed).
#
# Then `log verify` on ledgers of 20,000 and 100,000 records: records/s (goal >= 5,000) and
# peak RSS from /usr/bin/time -v (goal <= 64 MiB at both sizes); and the whole-process mint
# time with 100,000 records in the ledger against 10 (goal ratio <= 1.1). The large ledgers
# are made by examples/gen_ledger.rs: one process, the CA on the same SoftHSM2 token opened
# and logged in once, the ledger locked (again every 500 records), the issuance path of `mint`
# called N times
# (so each record's certificate, with its ledger binding, is signed by the token).
#
# Then the KRL size for 10,000 revoked serials in three patterns (contiguous 1..10000, every
# other serial of 1..20000, 10,000 random serials of 1..1,000,000 with a fixed seed): our
# encoding (examples/krl_size.rs, the library's KRL module) beside `ssh-keygen -k` for the same
# spec lines, in bytes and as a ratio, and whether `ssh-keygen -Q -l` reads each.
#
# Then `audit` on a generated log of a million lines (BENCH_AUDIT_LINES): 20 hosts, mostly
# non-certificate sshd, cron, kernel and systemd lines in the classic auth.log format, and about
# 0.4% certificate logins (each the 7 lines sshd 9.2 writes at LogLevel VERBOSE) of a generated
# 2,000-record ledger, 1% of them with serials in no ledger (alarms). Lines per second (goal
# >= 500,000, whole process, median of 3) and peak RSS, for a file and for the same log four
# times through stdin (memory stays flat: only events and pending connections are kept).
#
# Environment:
#   BENCH_WARMUP   warm-up runs per command, not measured (default 5)
#   BENCH_RUNS     measured runs per command (default 50)
#   BENCH_DIR      scratch folder, deleted and recreated (default <repo>/target/bench: the ledger
#                  is fsynced there, so keep it on the repo's filesystem)
#   BENCH_ENFORCE  if 1, exit 1 when the goal is missed
#   BENCH_SIZES    ledger sizes for log verify (default "20000 100000"; the largest is also
#                  the one mint is timed with); empty: skip that part
#   BENCH_VERIFY_RUNS  log verify runs per size, the median reported (default 3)
#   BENCH_MINT_RUNS    mint runs on each of the large and the 10-record ledger (default 20)
#   BENCH_BATCH_RUNS  runs of the 20-key batch and of ssh-keygen with 20 keys (default 10)
#   BENCH_LEDGER_CHECKPOINTS  which ledgers: 1 with config.toml's checkpoints = true, 0 with
#                  checkpoints = false; the records are bound either way (one signature per
#                  record to verify), so the default is "0"
#   BENCH_KRL      1 (default): the KRL sizes at the end; only: the KRL sizes alone (no
#                  token, no timing); 0: skip them
#   BENCH_AUDIT    1 (default): the audit rate at the end; only: the audit rate alone (no
#                  token); 0: skip it
#   BENCH_AUDIT_LINES  lines of the generated log (default 1000000)
set -euo pipefail

# libpcsclite-dev and pkg-config: the binary links the PC/SC library (YubiKey support).
# time: /usr/bin/time -v for the peak memory of log verify.
PACKAGES=(softhsm2 opensc openssh-client python3 libpcsclite-dev pkg-config time)
TOKEN_LABEL=emergency-ca
KEY_LABEL=breakglass-ca
GOAL=0.85

DIE_PREFIX=bench.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BENCH_DIR=${BENCH_DIR:-$REPO/target/bench}
BENCH_WARMUP=${BENCH_WARMUP:-5}
BENCH_RUNS=${BENCH_RUNS:-50}
BENCH_SIZES=${BENCH_SIZES-20000 100000}
BENCH_VERIFY_RUNS=${BENCH_VERIFY_RUNS:-3}
BENCH_MINT_RUNS=${BENCH_MINT_RUNS:-20}
BENCH_LEDGER_CHECKPOINTS=${BENCH_LEDGER_CHECKPOINTS-0}
BENCH_BATCH_RUNS=${BENCH_BATCH_RUNS:-10}
BENCH_KRL=${BENCH_KRL:-1}
BENCH_AUDIT=${BENCH_AUDIT:-1}
BENCH_AUDIT_LINES=${BENCH_AUDIT_LINES:-1000000}
MARKER=.breakglass-ca-bench

[[ $BENCH_WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number, not '$BENCH_WARMUP'"
[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a number >= 1, not '$BENCH_RUNS'"
[[ $BENCH_SIZES =~ ^[0-9\ ]*$ ]] || die "BENCH_SIZES must be numbers, not '$BENCH_SIZES'"
[[ $BENCH_VERIFY_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_VERIFY_RUNS must be a number >= 1"
[[ $BENCH_MINT_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_MINT_RUNS must be a number >= 1"
[[ $BENCH_LEDGER_CHECKPOINTS =~ ^[01\ ]*$ ]] || die "BENCH_LEDGER_CHECKPOINTS must be 1, 0 or '1 0'"
[[ $BENCH_KRL =~ ^(0|1|only)$ ]] || die "BENCH_KRL must be 1, 0 or only, not '$BENCH_KRL'"
[[ $BENCH_AUDIT =~ ^(0|1|only)$ ]] || die "BENCH_AUDIT must be 1, 0 or only, not '$BENCH_AUDIT'"
[[ $BENCH_AUDIT_LINES =~ ^[1-9][0-9]*$ ]] || die "BENCH_AUDIT_LINES must be a number >= 1"

# fresh_bench_dir: delete (if this script made it) and recreate $BENCH_DIR, absolute.
fresh_bench_dir() {
    if [[ -e $BENCH_DIR ]]; then
        [[ -f $BENCH_DIR/$MARKER ]] ||
            die "$BENCH_DIR exists and was not made by this script; not deleting it (set BENCH_DIR)"
        rm -rf -- "$BENCH_DIR"
    fi
    mkdir -p -- "$BENCH_DIR"
    BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
    : >"$BENCH_DIR/$MARKER"
}

# krl_sizes: the KRL size for 10,000 revoked serials in three patterns, ours and ssh-keygen's.
krl_sizes() {
    step "KRL size: 10,000 revoked serials, ours (examples/krl_size) vs ssh-keygen -k"
    cargo build --release --locked --example krl_size </dev/null ||
        die "cargo build --release --example krl_size failed (see the errors above)"
    local krl_size=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/krl_size
    local dir=$BENCH_DIR/krl
    mkdir -p -- "$dir"
    ssh-keygen -q -t ecdsa -b 256 -N '' -C bench-krl-ca -f "$dir/ca" </dev/null
    export KRL_SIZE=$krl_size KRL_DIR=$dir
    python3 - <<'PY'
import os, random, subprocess, sys

e = os.environ
KRL_SIZE, D = e["KRL_SIZE"], e["KRL_DIR"]
CA = f"{D}/ca.pub"
rng = random.Random(20261201)
patterns = [
    ("contiguous 1..10000", [(1, 10000)]),
    ("every other of 1..20000", [(s, s) for s in range(1, 20001, 2)]),
    ("random 10,000 of 1..1,000,000 (seed 20261201)",
     [(s, s) for s in sorted(rng.sample(range(1, 1_000_001), 10_000))]),
]

def readable(path):
    p = subprocess.run(["ssh-keygen", "-Q", "-l", "-f", path], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True)
    if p.returncode != 0:
        return False, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "?"
    serials = sum(1 for l in p.stdout.splitlines() if l.startswith("serial: "))
    return True, f"{serials} serial line(s)"

print(f"\nKRL size for 10,000 revoked serials under one ECDSA P-256 CA, bytes "
      f"(ssh-keygen -Q -l: does OpenSSH read it?):")
print(f"  {'pattern':48s} {'ours':>8s} {'ssh-keygen':>11s} {'ratio':>6s}  readable (ours / ssh-keygen)")
for i, (name, runs) in enumerate(patterns):
    spec = f"{D}/spec-{i}"
    with open(spec, "w") as f:
        for lo, hi in runs:
            f.write(f"serial: {lo}\n" if lo == hi else f"serial: {lo}-{hi}\n")
    ours_krl, theirs_krl = f"{D}/ours-{i}.krl", f"{D}/ssh-keygen-{i}.krl"
    p = subprocess.run([KRL_SIZE, CA, spec, ours_krl], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench.sh: error: krl_size failed on {name}:\n{p.stderr}")
    ours = int(p.stdout.strip())
    p = subprocess.run(["ssh-keygen", "-q", "-k", "-f", theirs_krl, "-s", CA, "-z", "1", spec],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench.sh: error: ssh-keygen -k failed on {name}:\n{p.stderr}")
    theirs = os.path.getsize(theirs_krl)
    (ok_ours, why_ours), (ok_theirs, why_theirs) = readable(ours_krl), readable(theirs_krl)
    if not ok_ours:
        sys.exit(f"bench.sh: error: ssh-keygen cannot read our KRL for {name}: {why_ours}")
    print(f"  {name:48s} {ours:8d} {theirs:11d} {ours / theirs:6.3f}  "
          f"yes ({why_ours}) / {'yes (' + why_theirs + ')' if ok_theirs else 'NO: ' + why_theirs}")
PY
}

# audit_rate: `audit` on a generated log of BENCH_AUDIT_LINES lines against a generated ledger.
audit_rate() {
    step "audit: $BENCH_AUDIT_LINES generated auth.log lines against a generated ledger"
    local dir=$BENCH_DIR/audit
    mkdir -p -- "$dir"
    mkdir -m 0700 "$dir/state"
    ssh-keygen -q -t ecdsa -b 256 -N '' -C bench-audit-ca -f "$dir/ca" </dev/null
    cp -- "$dir/ca.pub" "$dir/state/ca.pub"
    export BIN AUDIT_DIR=$dir AUDIT_LINES=$BENCH_AUDIT_LINES
    AUDIT_CA=$(ssh-keygen -l -f "$dir/ca.pub" | cut -d' ' -f2)
    export AUDIT_CA
    set +e
    python3 - <<'PY'
import datetime, json, os, random, re, statistics, subprocess, sys

e = os.environ
BIN, D, N, CA = e["BIN"], e["AUDIT_DIR"], int(e["AUDIT_LINES"]), e["AUDIT_CA"]
STATE, LOG = f"{D}/state", f"{D}/auth.log"
GOAL = 500_000
rng = random.Random(20261201)
RECORDS = 2000
# A day of log ending an hour ago, in local time as rsyslog writes it (the year rule of a
# classic syslog time puts it in this year).
start = (datetime.datetime.now(datetime.timezone.utc)
         - datetime.timedelta(days=1, hours=1)).replace(microsecond=0)
SPAN = 86400

def fp(k):  # a 43-character unpadded base64 fingerprint
    a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return "SHA256:" + "".join(a[(k * 7 + i * 13 + (k >> 3)) % 64] for i in range(43))

def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")

def stamp(t):
    return t.astimezone().strftime("%b %e %H:%M:%S")

# The ledger: what audit reads of it (it checks no signature: log verify does).
records = []
with open(f"{STATE}/ledger.jsonl", "w") as f:
    for s in range(1, RECORDS + 1):
        t = start + datetime.timedelta(seconds=SPAN * s // RECORDS)
        r = {"format": 2, "serial": s, "key_id": f"user{s % 50}@laptop#{s}:INC-{1000 + s}",
             "principals": ["breakglass"], "valid_after": iso(t - datetime.timedelta(minutes=5)),
             "valid_before": iso(t + datetime.timedelta(minutes=10)),
             "requester_key_type": "ssh-ed25519", "requester_fingerprint": fp(s % 50),
             "requester_comment": f"user{s % 50}@laptop", "reason": f"INC-{1000 + s} bench",
             "critical_options": {}, "extensions": ["permit-pty"], "certificate_sha256": fp(s),
             "certificate": "ssh-ed25519-cert-v01@openssh.com AAAA", "ca_fingerprint": CA,
             "issued_at": iso(t), "host": "laptop", "tool_version": "bench", "prev_hash": "0" * 64,
             "metadata": "bench"}
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
        records.append((s, r["key_id"], t, r["requester_fingerprint"]))
os.chmod(f"{STATE}/ledger.jsonl", 0o600)

hosts = [f"web-{i}" for i in range(20)]
noise = [
    'sshd[{p}]: Connection from 198.51.100.{a} port {port} on 10.0.0.5 port 22 rdomain ""',
    "sshd[{p}]: Invalid user admin from 203.0.113.{a} port {port}",
    "sshd[{p}]: Failed password for invalid user admin from 203.0.113.{a} port {port} ssh2",
    "sshd[{p}]: Received disconnect from 203.0.113.{a} port {port}:11: Bye Bye [preauth]",
    "sshd[{p}]: Disconnected from invalid user admin 203.0.113.{a} port {port} [preauth]",
    "sshd[{p}]: Accepted publickey for deploy from 10.0.0.{a} port {port} ssh2: ED25519 " + fp(9999),
    "sshd[{p}]: pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)",
    "sshd[{p}]: Connection closed by authenticating user root 203.0.113.{a} port {port} [preauth]",
    "CRON[{p}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
    "CRON[{p}]: (root) CMD (test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily ))",
    'kernel: [{p}.123456] audit: type=1400 audit({p}.000:12): apparmor="STATUS" operation="profile_load"',
    "systemd[1]: Started session-{p}.scope - Session {p} of User deploy.",
    "systemd-logind[412]: New session {p} of user deploy.",
]
lines = logins = rogue = 0
with open(LOG, "w") as out:
    while lines < N:
        h, p = rng.choice(hosts), rng.randrange(1000, 99999)
        if rng.random() < 0.004 and N - lines >= 7:
            s, kid, t, kfp = records[rng.randrange(RECORDS)]
            if rng.random() < 0.01:
                s, kid, rogue = 900_000 + lines, "rogue", rogue + 1
            via = f"signed by ECDSA CA {CA} via /etc/ssh/breakglass-ca.pub"
            ext = 'Certificate extension "ledger-binding-v1@breakglass-ca" is not supported'
            for m in (
                'Connection from 198.51.100.7 port 40000 on 10.0.0.5 port 22 rdomain ""',
                ext,
                f'Accepted certificate ID "{kid}" (serial {s}) {via}',
                "Postponed publickey for breakglass from 198.51.100.7 port 40000 ssh2 [preauth]",
                ext,
                f'Accepted certificate ID "{kid}" (serial {s}) {via}',
                f"Accepted publickey for breakglass from 198.51.100.7 port 40000 ssh2: "
                f"ED25519-CERT {kfp} ID {kid} (serial {s}) CA ECDSA {CA}",
            ):
                out.write(f"{stamp(t)} {h} sshd[{p}]: {m}\n")
            lines += 7
            logins += 1
            continue
        t = start + datetime.timedelta(seconds=SPAN * lines // N)
        line = rng.choice(noise).format(p=p, a=rng.randrange(1, 254), port=rng.randrange(1024, 65535))
        out.write(f"{stamp(t)} {h} {line}\n")
        lines += 1
size = os.path.getsize(LOG)
print(f"log: {lines} lines ({size / 1e6:.0f} MB), {logins} certificate logins of which "
      f"{rogue} with serials in no ledger; ledger: {RECORDS} records")

def run(argv, stdin=None, copies=1):
    p = subprocess.run(["/usr/bin/time", "-v"] + argv, stdin=stdin, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != (1 if rogue else 0) or f"{rogue * copies} ALARM(S)" not in p.stderr:
        sys.exit(f"bench.sh: error: {' '.join(argv)} (exit {p.returncode}):\n{p.stderr}")
    if f"read {lines * copies} line(s)" not in p.stderr:
        sys.exit(f"bench.sh: error: audit did not read every line:\n{p.stderr}")
    m = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    h, mi, s = m.groups()
    wall = int(h or 0) * 3600 + int(mi) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return wall, rss / 1024

with open(LOG, "rb") as f:  # into the page cache
    while f.read(1 << 20):
        pass
ok = True
print(f"\naudit, whole process, median of 3 runs, {os.cpu_count()} CPU(s) (goal >= {GOAL:,} lines/s):")
for name, argv in (("table", []), ("--json", ["--json"])):
    runs = [run([BIN, "--state-dir", STATE, "audit"] + argv + [LOG]) for _ in range(3)]
    wall = statistics.median(r[0] for r in runs)
    rate = lines / max(wall, 0.001)
    ok &= rate >= GOAL
    print(f"  {name:7s} {lines} lines: {wall:6.2f} s  {rate:12,.0f} lines/s  peak RSS "
          f"{max(r[1] for r in runs):6.1f} MiB  {'MET' if rate >= GOAL else 'NOT MET'}")
cat = subprocess.Popen(["cat", LOG, LOG, LOG, LOG], stdout=subprocess.PIPE)
wall, rss = run([BIN, "--state-dir", STATE, "audit", "--json", "-"], stdin=cat.stdout, copies=4)
cat.wait()
print(f"  --json  the log 4 times through stdin ({4 * lines} lines): {wall:6.2f} s  "
      f"peak RSS {rss:6.1f} MiB (memory flat: events stream out)")
sys.exit(0 if ok or e.get("BENCH_ENFORCE") != "1" else 3)
PY
    local rc=$?
    set -e
    case $rc in
    0) ;;
    3) die "goal missed (BENCH_ENFORCE=1)" ;;
    *) exit "$rc" ;;
    esac
}

# --- set-up -----------------------------------------------------------------------------------
step "Packages (${PACKAGES[*]})"
ensure_packages "${PACKAGES[@]}"
require_module

step "Release build"
build_release
if [[ $BENCH_KRL == only ]]; then
    fresh_bench_dir
    krl_sizes
    note "scratch files: $BENCH_DIR/krl"
    exit 0
fi
if [[ $BENCH_AUDIT == only ]]; then
    fresh_bench_dir
    audit_rate
    note "scratch files: $BENCH_DIR/audit"
    exit 0
fi
if [[ -n ${BENCH_SIZES// /} ]]; then
    cargo build --release --locked --example gen_ledger </dev/null ||
        die "cargo build --release --example gen_ledger failed (see the errors above)"
    GEN=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/gen_ledger
fi

step "A SoftHSM2 token with one P-256 CA key, in $BENCH_DIR"
umask 077
fresh_bench_dir
mkdir -m 0700 "$BENCH_DIR/tokens" "$BENCH_DIR/state" "$BENCH_DIR/out"
write_softhsm_conf "$BENCH_DIR"
PIN_FILE=$BENCH_DIR/pin
write_pin_file "$PIN_FILE"
SO_PIN=$(random_pin)
init_token "$TOKEN_LABEL" "$SO_PIN" "$PIN_FILE"
unset SO_PIN
# ssh-keygen reads the PIN through SSH_ASKPASS; shell built-ins only, so no extra exec.
ASKPASS=$BENCH_DIR/askpass
{
    echo '#!/bin/sh'
    printf "IFS= read -r pin < '%s'\n" "${PIN_FILE//\'/\'\\\'\'}"
    cat <<'EOF'
printf '%s\n' "$pin"
EOF
} >"$ASKPASS"
chmod 0700 "$ASKPASS"
umask 022

unset BREAKGLASS_CA BREAKGLASS_CA_STATE_DIR BREAKGLASS_CA_PIN_FILE BREAKGLASS_CA_PKCS11_MODULE
STATE=$BENCH_DIR/state
URI="pkcs11:token=$TOKEN_LABEL;object=$KEY_LABEL?module-path=$MODULE"
"$BIN" --ca "$URI" --state-dir "$STATE" --pin-file "$PIN_FILE" \
    init --algorithm ecdsa-p256 </dev/null >/dev/null 2>"$BENCH_DIR/init.log" ||
    die "breakglass-ca init failed: $(cat "$BENCH_DIR/init.log")"
"$BIN" --state-dir "$STATE" pubkey -o "$BENCH_DIR/CA.pub" </dev/null
ssh-keygen -q -t ed25519 -N '' -C bench-user -f "$BENCH_DIR/user" </dev/null
note "CA: $(ssh-keygen -l -f "$BENCH_DIR/CA.pub")"
note "ssh-keygen sees: $(ssh-keygen -D "$MODULE" 2>/dev/null | ssh-keygen -l -f - 2>/dev/null || echo '?')"

step "Timing: $BENCH_WARMUP warm-up + $BENCH_RUNS measured runs of each command, interleaved"
note "$(nproc) CPU(s), $(uname -sr), $(ssh -V 2>&1)"
export BIN BENCH_DIR STATE PIN_FILE MODULE ASKPASS BENCH_WARMUP BENCH_RUNS GOAL
set +e
python3 - <<'PY'
import os, shutil, statistics, subprocess, sys, time

e = os.environ
BIN, D, STATE, PIN, MODULE, ASKPASS = (e[k] for k in
    ("BIN", "BENCH_DIR", "STATE", "PIN_FILE", "MODULE", "ASKPASS"))
WARM, RUNS, GOAL = int(e["BENCH_WARMUP"]), int(e["BENCH_RUNS"]), float(e["GOAL"])
CA, USER, OUT = f"{D}/CA.pub", f"{D}/user.pub", f"{D}/out"

env = dict(e)
kg_env = dict(env, SSH_ASKPASS=ASKPASS, SSH_ASKPASS_REQUIRE="force")
kg_env.pop("DISPLAY", None)

def ours_mint(i):
    return [BIN, "--state-dir", STATE, "--pin-file", PIN, "mint", "-n", "breakglass",
            "--reason", f"bench run {i}", "-V", "5m", "--backdate", "1m",
            "-o", f"{OUT}/ours-{i}-cert.pub", USER], env

def keygen_sign(i):
    pub = f"{OUT}/kg-{i}.pub"
    shutil.copyfile(USER, pub)  # a fresh copy per run: outputs never collide
    return ["ssh-keygen", "-s", CA, "-D", MODULE, "-I", "id", "-n", "breakglass",
            "-V", "-1m:+5m", "-z", str(i + 1), pub], kg_env

cases = {
    "mint":     ("breakglass-ca mint", ours_mint),
    "keygen":   ("ssh-keygen -s CA.pub -D MODULE", keygen_sign),
    "true":     ("/bin/true (spawn baseline)", lambda i: (["/bin/true"], env)),
    "version":  ("breakglass-ca --version", lambda i: ([BIN, "--version"], env)),
    "pubkey":   ("breakglass-ca pubkey", lambda i: ([BIN, "--state-dir", STATE, "pubkey"], env)),
    "kglist":   ("ssh-keygen -D MODULE (list)", lambda i: (["ssh-keygen", "-D", MODULE], env)),
}
times = {k: [] for k in cases}
names = list(cases)

for i in range(WARM + RUNS):
    k0 = i % len(names)
    for k in names[k0:] + names[:k0]:  # rotate the order against drift
        argv, run_env = cases[k][1](i)
        t0 = time.perf_counter_ns()
        p = subprocess.run(argv, env=run_env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t1 = time.perf_counter_ns()
        if p.returncode != 0:
            sys.stderr.write(f"bench.sh: error: run {i} of '{cases[k][0]}' failed "
                             f"(exit {p.returncode}):\n  {' '.join(argv)}\n"
                             f"{p.stderr.decode(errors='replace')}")
            sys.exit(1)
        if i >= WARM:
            times[k].append((t1 - t0) / 1e6)

# Both made real certificates from the same CA key.
def signing_ca(cert):
    out = subprocess.run(["ssh-keygen", "-L", "-f", cert], capture_output=True, text=True,
                         check=True).stdout
    return next(l.split()[3] for l in out.splitlines() if "Signing CA:" in l)
last = WARM + RUNS - 1
ca_fp = subprocess.run(["ssh-keygen", "-l", "-f", CA], capture_output=True, text=True,
                       check=True).stdout.split()[1]
for c in (f"{OUT}/ours-{last}-cert.pub", f"{OUT}/kg-{last}-cert.pub"):
    got = signing_ca(c)
    if got != ca_fp:
        sys.exit(f"bench.sh: error: {c} is signed by {got}, not the CA {ca_fp}")

med = {k: statistics.median(v) for k, v in times.items()}
def pct(v, q):
    s = sorted(v)
    return s[min(len(s) - 1, int(q * len(s)))]
print(f"\nmedians over {RUNS} runs (after {WARM} warm-up), whole process, ms "
      f"[p10 .. p90]:")
for k in names:
    v = times[k]
    print(f"  {cases[k][0]:32s} {med[k]:7.2f}   [{pct(v, .1):6.2f} .. {pct(v, .9):6.2f}]")
ratio = med["mint"] / med["keygen"]
print()
print(f"ours (breakglass-ca mint):   {med['mint']:.2f} ms")
print(f"ssh-keygen -s -D (PKCS#11):  {med['keygen']:.2f} ms")
print(f"ratio ours/ssh-keygen:       {ratio:.3f}")
print(f"goal: ratio <= {GOAL:.2f}        {'MET' if ratio <= GOAL else 'NOT MET'}")
print()
print("where our time goes (differences of medians):")
print(f"  spawn and wait (any process)        {med['true']:7.2f} ms  (/bin/true)")
print(f"  + our start, argument parsing       {med['version'] - med['true']:7.2f} ms  "
      f"(--version - /bin/true)")
print(f"  + module load, C_Initialize, find   {med['pubkey'] - med['version']:7.2f} ms  "
      f"(pubkey - --version)")
print(f"  + login, sign, verify, ledger, file {med['mint'] - med['pubkey']:7.2f} ms  "
      f"(mint - pubkey)")
print(f"  ssh-keygen: start + module + list   {med['kglist']:7.2f} ms; "
      f"+ PIN, sign, write {med['keygen'] - med['kglist']:.2f} ms")
print(f"  floor: loading the module in a fresh process (pubkey) alone takes "
      f"{med['pubkey'] / med['keygen']:.2f} of ssh-keygen's time")
sys.exit(0 if ratio <= GOAL or os.environ.get("BENCH_ENFORCE") != "1" else 3)
PY
rc=$?
set -e
case $rc in
0) ;;
3) die "goal missed (BENCH_ENFORCE=1)" ;;
*) exit "$rc" ;;
esac

# --- token signatures per certificate, and a batch of 20 ----------------------------------
SPY=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so
[[ -f $SPY ]] || die "OpenSC's pkcs11-spy is missing ($SPY): apt-get install opensc"
step "Token signatures per certificate (pkcs11-spy), and a batch of 20 keys"
for i in $(seq 1 20); do
    ssh-keygen -q -t ed25519 -N '' -C "batch-user-$i" -f "$BENCH_DIR/batch-$i" </dev/null
done
export SPY BENCH_BATCH_RUNS URI
set +e
python3 - <<'PY'
import os, shutil, statistics, subprocess, sys, time

e = os.environ
BIN, D, STATE, PIN, MODULE, ASKPASS, SPY = (e[k] for k in
    ("BIN", "BENCH_DIR", "STATE", "PIN_FILE", "MODULE", "ASKPASS", "SPY"))
RUNS = int(e["BENCH_BATCH_RUNS"])
CA, USER, OUT = f"{D}/CA.pub", f"{D}/user.pub", f"{D}/out"
kg_env = dict(e, SSH_ASKPASS=ASKPASS, SSH_ASKPASS_REQUIRE="force")
kg_env.pop("DISPLAY", None)

def run(argv, env):
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit(f"bench.sh: error: {' '.join(argv)} failed (exit {p.returncode}):\n"
                 f"{p.stderr.decode(errors='replace')}")

def sign_inits(argv, env):
    log = f"{D}/spy.log"
    if os.path.exists(log):
        os.remove(log)
    run(argv, dict(env, PKCS11SPY=MODULE, PKCS11SPY_OUTPUT=log))
    with open(log, errors="replace") as f:
        return sum(1 for line in f if "C_SignInit" in line and "Returned" not in line)

spy_uri = e["URI"].replace(f"module-path={MODULE}", f"module-path={SPY}")
ours = sign_inits([BIN, "--ca", spy_uri, "--state-dir", STATE, "--pin-file", PIN, "mint",
                   "-n", "breakglass", "--reason", "bench spy", "-o", f"{OUT}/spy-cert.pub",
                   USER], e)
shutil.copyfile(USER, f"{OUT}/spy-kg.pub")
theirs = sign_inits(["ssh-keygen", "-s", CA, "-D", SPY, "-I", "id", "-n", "breakglass",
                     "-V", "-1m:+5m", f"{OUT}/spy-kg.pub"], kg_env)
print(f"token signatures per certificate (C_SignInit through pkcs11-spy): "
      f"breakglass-ca mint {ours}, ssh-keygen -s -D {theirs}")

keys = [f"{D}/batch-{i}.pub" for i in range(1, 21)]
times = {"ours": [], "keygen": []}
for i in range(RUNS + 1):
    batch_dir = f"{OUT}/batch-{i}"
    os.mkdir(batch_dir)
    mine = []
    for k in keys:
        shutil.copyfile(k, f"{batch_dir}/{os.path.basename(k)}")
        mine.append(f"{batch_dir}/{os.path.basename(k)}")
    kg_dir = f"{OUT}/kg-batch-{i}"
    os.mkdir(kg_dir)
    theirs = []
    for k in keys:
        shutil.copyfile(k, f"{kg_dir}/{os.path.basename(k)}")
        theirs.append(f"{kg_dir}/{os.path.basename(k)}")
    for name, argv, env in (
        ("ours", [BIN, "--state-dir", STATE, "--pin-file", PIN, "mint", "-n", "breakglass",
                  "--reason", f"bench batch {i}", "-V", "5m"] + mine, e),
        ("keygen", ["ssh-keygen", "-s", CA, "-D", MODULE, "-I", "id", "-n", "breakglass",
                    "-V", "-1m:+5m"] + theirs, kg_env),
    ):
        t0 = time.perf_counter_ns()
        run(argv, env)
        if i > 0:  # the first round is a warm-up
            times[name].append((time.perf_counter_ns() - t0) / 1e6)
med = {k: statistics.median(v) for k, v in times.items()}
print(f"batch of 20 keys, median of {RUNS} runs: breakglass-ca mint {med['ours']:.2f} ms, "
      f"ssh-keygen -s -D with the same 20 keys {med['keygen']:.2f} ms, "
      f"ratio {med['ours'] / med['keygen']:.3f}")
PY
rc=$?
set -e
[[ $rc == 0 ]] || exit "$rc"

# --- log verify on large ledgers, and mint with a large ledger ------------------------------
if [[ -n ${BENCH_SIZES// /} ]]; then
    step "log verify on ${BENCH_SIZES// /, } records, and mint with the largest ledger vs 10 records"
    # Every ledger is this CA's: a state directory with the same config.toml and ca.pub;
    # with checkpoints = false for mode 0 (one signature per record, as in the format where
    # the certificate carries its ledger binding).
    new_state() { # DIR MODE
        mkdir -m 0700 "$1"
        cp -p -- "$STATE/config.toml" "$STATE/ca.pub" "$1/"
        if [[ $2 == 0 ]]; then
            sed -i 's/^checkpoints = true$/checkpoints = false/' "$1/config.toml"
        fi
    }
    for mode in $BENCH_LEDGER_CHECKPOINTS; do
        have=0
        prev=
        for n in $(tr ' ' '\n' <<<"$BENCH_SIZES" | sort -n | uniq); do
            dir=$BENCH_DIR/ledger-$mode-$n
            if [[ -n $prev ]]; then cp -a -- "$prev" "$dir"; else new_state "$dir" "$mode"; fi
            t0=$(date +%s.%N)
            "$GEN" "$dir" "$PIN_FILE" "$BENCH_DIR/user.pub" $((n - have)) </dev/null ||
                die "gen_ledger failed for $n records"
            t1=$(date +%s.%N)
            note "checkpoints=$mode: $n records made ($((n - have)) new, $(python3 -c "print(f'{$t1 - $t0:.1f}')") s)"
            have=$n
            prev=$dir
        done
        new_state "$BENCH_DIR/ledger-$mode-small" "$mode"
        "$GEN" "$BENCH_DIR/ledger-$mode-small" "$PIN_FILE" "$BENCH_DIR/user.pub" 10 </dev/null ||
            die "gen_ledger failed for 10 records"
    done
    export BENCH_SIZES BENCH_VERIFY_RUNS BENCH_MINT_RUNS BENCH_LEDGER_CHECKPOINTS
    set +e
    python3 - <<'PY'
import os, re, statistics, subprocess, sys, time

e = os.environ
BIN, D, PIN = e["BIN"], e["BENCH_DIR"], e["PIN_FILE"]
sizes = sorted({int(s) for s in e["BENCH_SIZES"].split()})
VRUNS, MRUNS = int(e["BENCH_VERIFY_RUNS"]), int(e["BENCH_MINT_RUNS"])
RATE_GOAL, RSS_GOAL, MINT_GOAL = 5000, 64, 1.1
ok = True

def verify(name, n):
    p = subprocess.run(["/usr/bin/time", "-v", BIN, "--state-dir", f"{D}/ledger-{name}",
                        "log", "verify"], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True)
    if p.returncode != 0 or f"ledger OK: {n} record(s)" not in p.stdout:
        sys.exit(f"bench.sh: error: log verify of {n} records failed:\n{p.stdout}{p.stderr}")
    m = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    h, mi, s = m.groups()
    wall = int(h or 0) * 3600 + int(mi) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    progress = sum(1 for l in p.stderr.splitlines() if l.startswith("verified "))
    return wall, rss / 1024, progress

modes = e["BENCH_LEDGER_CHECKPOINTS"].split()
label = {"1": "checkpoints = true in config.toml (bound records: 1 signature each)",
         "0": "checkpoints = false (bound records: 1 signature each)"}
print(f"\nlog verify, whole process, median of {VRUNS} run(s), {os.cpu_count()} CPU(s) "
      f"(goal >= {RATE_GOAL} records/s, peak RSS <= {RSS_GOAL} MiB):")
for mode in modes:
    print(f" ledgers with {label[mode]}:")
    for n in sizes:
        runs = [verify(f"{mode}-{n}", n) for _ in range(VRUNS)]
        wall = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        rate = n / wall
        met = rate >= RATE_GOAL and rss <= RSS_GOAL
        ok &= met
        print(f"  {n:>7} records: {wall:6.2f} s  {rate:8.0f} records/s  peak RSS {rss:6.1f} MiB"
              f"  ({runs[0][2]} progress line(s))  {'MET' if met else 'NOT MET'}")

big = sizes[-1]
def mint(state, i):
    argv = [BIN, "--state-dir", state, "--pin-file", PIN, "mint", "-n", "breakglass",
            "--reason", f"bench ledger size {i}", "-V", "5m", "--backdate", "1m",
            "-o", f"{D}/out/size-{os.path.basename(state)}-{i}-cert.pub", f"{D}/user.pub"]
    t0 = time.perf_counter_ns()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    t1 = time.perf_counter_ns()
    if p.returncode != 0:
        sys.exit(f"bench.sh: error: mint into {state} failed:\n{p.stderr.decode(errors='replace')}")
    return (t1 - t0) / 1e6
print(f"\nmint, whole process, median of {MRUNS} alternated runs each (goal ratio <= {MINT_GOAL}):")
for mode in modes:
    times = {"big": [], "small": []}
    for i in range(MRUNS + 2):
        order = [("big", f"{D}/ledger-{mode}-{big}"), ("small", f"{D}/ledger-{mode}-small")]
        if i % 2:
            order.reverse()
        for k, state in order:
            t = mint(state, i)
            if i >= 2:  # two warm-up rounds
                times[k].append(t)
    mb, ms = statistics.median(times["big"]), statistics.median(times["small"])
    ratio = mb / ms
    ok &= ratio <= MINT_GOAL
    print(f" ledgers with {label[mode]}:")
    print(f"  with {big} records in the ledger: {mb:7.2f} ms")
    print(f"  with 10 records in the ledger:     {ms:7.2f} ms")
    print(f"  ratio: {ratio:.3f}   {'MET' if ratio <= MINT_GOAL else 'NOT MET'}")
sys.exit(0 if ok or e.get("BENCH_ENFORCE") != "1" else 3)
PY
    rc=$?
    set -e
    case $rc in
    0) ;;
    3) die "goal missed (BENCH_ENFORCE=1)" ;;
    *) exit "$rc" ;;
    esac
fi
if [[ $BENCH_KRL == 1 ]]; then
    krl_sizes
fi
if [[ $BENCH_AUDIT == 1 ]]; then
    audit_rate
fi
note "scratch files (token, state, certificates): $BENCH_DIR"
