#!/usr/bin/env bash
# demo.sh: the main job of breakglass-ca on an embedded default.
#
# Creates a private SoftHSM2 token in a local folder, initialises an ECDSA P-256 CA key on it,
# mints a short-lived certificate for a freshly generated requester key, and shows it.
# Runs non-interactively (no stdin needed); on Debian it installs what is missing (as root).
#
#   bash scripts/demo.sh
#
# Environment:
#   BREAKGLASS_DEMO_DIR  where the token, state and keys go (default: <repo>/demo). A second
#                        run deletes and recreates it, but only if an earlier run created it.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(softhsm2 opensc openssh-client)
MODULE=/usr/lib/softhsm/libsofthsm2.so
TOKEN_LABEL=emergency-ca
KEY_LABEL=breakglass-ca
MIN_RUST=1.89

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
DEMO_DIR=${BREAKGLASS_DEMO_DIR:-$REPO/demo}
MARKER=.breakglass-ca-demo

step() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() {
    printf 'demo.sh: error: %s\n' "$*" >&2
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
step "1/7 Packages (${PACKAGES[*]})"
ensure_packages "${PACKAGES[@]}"
[[ -e $MODULE ]] || die "the SoftHSM2 PKCS#11 module $MODULE is missing (package softhsm2)"

step "2/7 Building breakglass-ca (cargo build --release --locked)"
find_cargo
cargo build --release --locked </dev/null || die "cargo build --release --locked failed (see the errors above)"
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/breakglass-ca
[[ -x $BIN ]] || die "the build did not produce $BIN"
note "binary: $BIN"

step "3/7 A fresh private SoftHSM2 token in $DEMO_DIR"
if [[ -e $DEMO_DIR ]]; then
    if [[ -f $DEMO_DIR/$MARKER ]]; then
        note "removing the previous demo folder"
        rm -rf -- "$DEMO_DIR"
    elif [[ -d $DEMO_DIR && -z $(ls -A -- "$DEMO_DIR") ]]; then
        rmdir -- "$DEMO_DIR"
    else
        die "$DEMO_DIR exists and was not made by this script; not deleting it (move it away or set BREAKGLASS_DEMO_DIR)"
    fi
fi
umask 077
mkdir -p -- "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
: >"$DEMO_DIR/$MARKER"
printf '*\n' >"$DEMO_DIR/.gitignore" # keep the token and PIN out of git
mkdir -m 0700 "$DEMO_DIR/tokens" "$DEMO_DIR/state" "$DEMO_DIR/requester"
export SOFTHSM2_CONF=$DEMO_DIR/softhsm2.conf
cat >"$SOFTHSM2_CONF" <<EOF
# SoftHSM2 configuration for the breakglass-ca demo token (written by scripts/demo.sh)
directories.tokendir = $DEMO_DIR/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
# Fresh random PINs, never printed: only the 0600 files hold them.
PIN_FILE=$DEMO_DIR/pin
SO_PIN_FILE=$DEMO_DIR/so-pin
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PIN_FILE"
echo >>"$PIN_FILE"
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SO_PIN_FILE"
echo >>"$SO_PIN_FILE"
chmod 0600 "$PIN_FILE" "$SO_PIN_FILE"
# softhsm2-util only takes PINs in argv (or at a terminal prompt): acceptable for a throw-away
# demo token; a real token is initialised by its custodians, not by this script.
softhsm2-util --init-token --free --label "$TOKEN_LABEL" \
    --so-pin "$(head -n1 "$SO_PIN_FILE")" --pin "$(head -n1 "$PIN_FILE")" >/dev/null
note "token '$TOKEN_LABEL' in $DEMO_DIR/tokens (SOFTHSM2_CONF=$SOFTHSM2_CONF)"
note "PIN in $PIN_FILE (mode 0600), SO PIN in $SO_PIN_FILE"
umask 022

URI="pkcs11:token=$TOKEN_LABEL;object=$KEY_LABEL?module-path=$MODULE"
STATE=$DEMO_DIR/state
# Only the flags below say which CA, state and PIN to use.
unset BREAKGLASS_CA BREAKGLASS_CA_STATE_DIR BREAKGLASS_CA_PIN_FILE BREAKGLASS_CA_PKCS11_MODULE
bgca() { "$BIN" --state-dir "$STATE" --pin-file "$PIN_FILE" "$@" </dev/null; }

step "4/7 breakglass-ca init --algorithm ecdsa-p256 (the CA key is generated on the token)"
bgca --ca "$URI" init --algorithm ecdsa-p256 >"$DEMO_DIR/ca.pub"
note "CA public key: $(cat "$DEMO_DIR/ca.pub")"
bgca pubkey --format fingerprint >&2
note "what the token holds, seen by OpenSSH without a PIN (ssh-keygen -D):"
ssh-keygen -D "$MODULE" 2>/dev/null | sed 's/^/    /' >&2 || true

step "5/7 A requester key (ssh-keygen -t ed25519)"
REQ_KEY=$DEMO_DIR/requester/id_ed25519
ssh-keygen -q -t ed25519 -N '' -C "alice@demo" -f "$REQ_KEY" </dev/null
note "requester key: $REQ_KEY.pub"

step "6/7 breakglass-ca mint -n breakglass --reason 'demo: ...'"
bgca mint -n breakglass --reason 'demo: INC-0000 bastion unreachable' "$REQ_KEY.pub"
CERT=$REQ_KEY-cert.pub
[[ -s $CERT ]] || die "mint did not write $CERT"

step "7/7 The certificate: breakglass-ca inspect, then ssh-keygen -L"
bgca inspect --ca-pubkey "$DEMO_DIR/ca.pub" "$CERT"
echo >&2
ssh-keygen -L -f "$CERT"

step "Done. Where everything is:"
cat >&2 <<EOF
    demo folder        $DEMO_DIR
    SoftHSM2 config    $SOFTHSM2_CONF  (token store: $DEMO_DIR/tokens)
    token / key        $URI
    PIN file           $PIN_FILE (0600; SO PIN: $SO_PIN_FILE)
    state (config)     $STATE/config.toml
    ledger             $STATE/ledger.jsonl
    CA public key      $DEMO_DIR/ca.pub  (for TrustedUserCAKeys on hosts)
    requester key      $REQ_KEY (+ .pub)
    certificate        $CERT

    Try it yourself:
      export SOFTHSM2_CONF=$SOFTHSM2_CONF
      $BIN --state-dir $STATE status
      $BIN --state-dir $STATE --pin-file $PIN_FILE \\
          mint -n breakglass --reason 'demo: again' -o - $REQ_KEY.pub
EOF
