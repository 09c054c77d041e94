#!/usr/bin/env bash
# test.sh: the whole test suite, as CI runs it (.ci/run calls this script).
#
#   bash scripts/test.sh
#
# On Debian it installs the packages the tests need if they are missing (as root, no prompts),
# prepares sshd's privilege-separation directory, then runs, in order:
#   cargo fmt --check                                   (if rustfmt is installed)
#   cargo clippy --all-targets --locked -- -D warnings  (if clippy is installed)
#   bash scripts/package.sh                             (the .deb, for hsm-tests/package.rs)
#   cargo test --locked                                 (unit tests + hsm-tests/, the "hsm" test)
# Exits non-zero if any of them fails. Extra arguments go to `cargo test`.
set -euo pipefail

# Debian packages the tests use.
# - SoftHSM2 tokens and a real sshd: softhsm2 opensc openssh-server openssh-client
# - PC/SC, linked by the binary for YubiKeys: libpcsclite-dev pkg-config
# - the software PIV card (hsm-tests/piv-card) behind real pcscd: pcscd vsmartcard-vpcd
#   libclang-dev (bindgen for littlefs2-sys), iproute2 util-linux (namespaces)
# - PyYAML, which cloud-init parses user data with, to read cloud-init.yaml: python3-yaml
# - the pseudo-terminal driver of hsm-tests/signals.rs: python3
# - the card key through a second PKCS#11 middleware (hsm-tests/piv.rs; OpenSC's is in opensc): ykcs11
# - the package's man page and completions, each in its program (hsm-tests/package.rs):
#   man-db groff-base zsh fish
# - import-qr's second opinion on the same degraded pictures (hsm-tests/import_qr.rs): zbar-tools;
#   the sheet's text rendered in real fonts around its codes: fonts-dejavu-core
TEST_PACKAGES=(softhsm2 opensc openssh-server openssh-client libpcsclite-dev pkg-config curl gawk
    pcscd vsmartcard-vpcd libclang-dev iproute2 util-linux bsdutils python3 python3-yaml ykcs11 jq
    man-db groff-base zsh fish zbar-tools fonts-dejavu-core)

DIE_PREFIX=test.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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

# The software PIV card the PIV tests talk to (a separate crate with its own Cargo.lock).
run piv-card cargo build --release --locked --manifest-path hsm-tests/piv-card/Cargo.toml

# The Debian package (release build, cargo-deb): hsm-tests/package.rs unpacks and checks it.
# Its path goes to the tests in BREAKGLASS_TEST_DEB; without it, in CI, those tests fail.
unset BREAKGLASS_TEST_DEB
package_out=$REPO/target/package.stdout
package() { bash scripts/package.sh >"$package_out"; }
if run package package; then
    BREAKGLASS_TEST_DEB=$(head -n1 "$package_out")
    export BREAKGLASS_TEST_DEB
    note "package: $BREAKGLASS_TEST_DEB"
fi

run tests cargo test --locked "$@"

step "Summary"
if ((${#failed[@]})); then
    note "FAILED: ${failed[*]}"
    exit 1
fi
note "all passed"
