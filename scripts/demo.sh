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

# libpcsclite-dev and pkg-config: the binary links the PC/SC library (YubiKey support).
PACKAGES=(softhsm2 opensc openssh-client libpcsclite-dev pkg-config)
TOKEN_LABEL=emergency-ca
KEY_LABEL=breakglass-ca

DIE_PREFIX=demo.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DEMO_DIR=${BREAKGLASS_DEMO_DIR:-$REPO/demo}
MARKER=.breakglass-ca-demo

# --- run --------------------------------------------------------------------------------------
step "1/7 Packages (${PACKAGES[*]})"
ensure_packages "${PACKAGES[@]}"
require_module

step "2/7 Building breakglass-ca (cargo build --release --locked)"
build_release
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
write_softhsm_conf "$DEMO_DIR" "SoftHSM2 configuration for the breakglass-ca demo token (written by scripts/demo.sh)"
# Fresh random PINs, never printed: only the 0600 files hold them.
PIN_FILE=$DEMO_DIR/pin
SO_PIN_FILE=$DEMO_DIR/so-pin
write_pin_file "$PIN_FILE"
write_pin_file "$SO_PIN_FILE"
chmod 0600 "$PIN_FILE" "$SO_PIN_FILE"
init_token "$TOKEN_LABEL" "$(head -n1 "$SO_PIN_FILE")" "$PIN_FILE"
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
      $BIN --state-dir $STATE doctor
      $BIN --state-dir $STATE mint --pin-file $PIN_FILE \\
          -n breakglass --reason 'demo: again' -o - $REQ_KEY.pub
EOF
