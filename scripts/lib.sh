# shellcheck shell=bash
# lib.sh: helpers shared by scripts/demo.sh, scripts/test.sh and scripts/bench.sh.
#
# Sourced, never run:
#   DIE_PREFIX=demo.sh                               # optional: prefix of die messages
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# On sourcing it exports DEBIAN_FRONTEND=noninteractive, sets REPO (the repository root) and
# changes into it. The caller sets `set -euo pipefail` itself.

MIN_RUST=1.89
MODULE=/usr/lib/softhsm/libsofthsm2.so
DIE_PREFIX=${DIE_PREFIX:-${0##*/}}

export DEBIAN_FRONTEND=noninteractive
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit

step() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$DIE_PREFIX" "$*" >&2
    exit 1
}

# --- packages ---------------------------------------------------------------------------------
missing_packages() {
    local p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$p"
        fi
    done
}

ensure_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        note "not a Debian system: not installing anything; expecting ${*} to be present"
        return 0
    fi
    local missing
    missing=$(missing_packages "$@")
    if [[ -z $missing ]]; then
        note "already installed: $*"
        return 0
    fi
    # shellcheck disable=SC2086 # one package name per word
    set -- $missing
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 ||
            die "packages missing ($*) and not root; run as root or: apt-get install -y $*"
        sudo=(sudo -n)
    fi
    note "installing: $*"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# The SoftHSM2 PKCS#11 module must exist (after ensure_packages softhsm2 ...).
require_module() {
    [[ -e $MODULE ]] || die "the SoftHSM2 PKCS#11 module $MODULE is missing (package softhsm2)"
}

# --- Rust toolchain ---------------------------------------------------------------------------
find_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/nonexistent}/.cargo/bin/cargo ]]; then
        PATH=$HOME/.cargo/bin:$PATH
        export PATH
    fi
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found (looked on PATH and in \$HOME/.cargo/bin): Rust >= $MIN_RUST is needed, e.g. installed with rustup (https://rustup.rs)"
    local v
    v=$(rustc --version 2>/dev/null | awk '{print $2}') || v=
    if [[ -n $v ]]; then
        local major minor
        IFS=. read -r major minor _ <<<"$v"
        if ((major < ${MIN_RUST%%.*} || (major == ${MIN_RUST%%.*} && minor < ${MIN_RUST#*.}))); then
            die "rustc $v is too old: Rust >= $MIN_RUST is needed (e.g. 'rustup update stable')"
        fi
    fi
    note "$(cargo --version)"
}

# find_cargo, then `cargo build --release --locked`; sets BIN to the built binary.
build_release() {
    find_cargo
    cargo build --release --locked </dev/null || die "cargo build --release --locked failed (see the errors above)"
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/breakglass-ca
    [[ -x $BIN ]] || die "the build did not produce $BIN"
}

# --- private SoftHSM2 token -------------------------------------------------------------------
# A fresh random PIN (24 hex digits) on stdout, without a newline.
random_pin() { head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# write_pin_file FILE: a fresh random PIN, one line (the caller's umask sets the mode).
write_pin_file() {
    random_pin >"$1"
    echo >>"$1"
}

# write_softhsm_conf DIR [COMMENT]: writes and exports SOFTHSM2_CONF=DIR/softhsm2.conf, with
# the token store in DIR/tokens (which the caller creates) and COMMENT, if given, as a first
# `# ...` line.
write_softhsm_conf() {
    export SOFTHSM2_CONF=$1/softhsm2.conf
    {
        [[ -z ${2:-} ]] || printf '# %s\n' "$2"
        cat <<EOF
directories.tokendir = $1/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
    } >"$SOFTHSM2_CONF"
}

# init_token LABEL SO_PIN PIN_FILE: initialises a token in the first free slot.
# softhsm2-util only takes PINs in argv (or at a terminal prompt): acceptable for a throw-away
# token; a real token is initialised by its custodians, not by these scripts.
init_token() {
    softhsm2-util --init-token --free --label "$1" \
        --so-pin "$2" --pin "$(head -n1 "$3")" >/dev/null
}
