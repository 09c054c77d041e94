#!/usr/bin/env bash
# test.sh: the whole test suite, as CI runs it (.ci/run calls this script).
#
#   bash scripts/test.sh
#
# On Debian it installs the packages the tests need if they are missing (as root, no prompts),
# prepares sshd's privilege-separation directory, then runs, in order:
#   cargo fmt --check                                   (if rustfmt is installed)
#   cargo clippy --all-targets --locked -- -D warnings  (if clippy is installed)
#   cargo test --locked                                 (unit tests + hsm-tests/, the "hsm" test)
# Exits non-zero if any of them fails. Extra arguments go to `cargo test`.
set -euo pipefail

# Debian packages the tests use. Add more here (e.g. pcscd for PIV tests).
TEST_PACKAGES=(softhsm2 opensc openssh-server openssh-client)
MIN_RUST=1.89

export DEBIAN_FRONTEND=noninteractive
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

step() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() {
    printf 'test.sh: error: %s\n' "$*" >&2
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

# --- run --------------------------------------------------------------------------------------
step "Packages (${TEST_PACKAGES[*]})"
ensure_packages "${TEST_PACKAGES[@]}"

step "sshd privilege-separation directory /run/sshd"
if [[ -d /run/sshd ]]; then
    note "exists"
elif [[ $(id -u) -eq 0 ]]; then
    # shellcheck disable=SC2174 # /run exists: -m applies to /run/sshd, the only new directory
    mkdir -m 0755 -p /run/sshd
    note "created"
elif command -v sudo >/dev/null 2>&1 && sudo -n mkdir -m 0755 -p /run/sshd 2>/dev/null; then
    note "created (sudo)"
else
    note "missing and cannot create it as $(id -un): tests that start sshd as root need it"
fi

step "Rust toolchain"
find_cargo

# Tests must not pick up a CA, state directory or PIN from the caller's environment.
unset BREAKGLASS_CA BREAKGLASS_CA_STATE_DIR BREAKGLASS_CA_PIN_FILE BREAKGLASS_CA_PKCS11_MODULE

failed=()
run() {
    local name=$1
    shift
    step "$name: $*"
    if "$@" </dev/null; then
        note "$name: ok"
    else
        local rc=$?
        note "$name: FAILED (exit $rc)"
        failed+=("$name")
    fi
}

if cargo fmt --version >/dev/null 2>&1; then
    run fmt cargo fmt --check
else
    step "fmt: skipped"
    note "rustfmt is not installed (rustup component add rustfmt); continuing"
fi

if cargo clippy --version >/dev/null 2>&1; then
    run clippy cargo clippy --all-targets --locked -- -D warnings
else
    step "clippy: skipped"
    note "clippy is not installed (rustup component add clippy); continuing"
fi

run tests cargo test --locked "$@"

step "Summary"
if ((${#failed[@]})); then
    note "FAILED: ${failed[*]}"
    exit 1
fi
note "all passed"
