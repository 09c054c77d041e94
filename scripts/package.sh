#!/usr/bin/env bash
# package.sh: the Debian package of breakglass-ca for the offline laptop, built reproducibly.
#
#   bash scripts/package.sh                       # target/debian/breakglass-ca_<version>-1_<arch>.deb
#                                                 # and target/debian/SHA256SUMS
#   bash scripts/package.sh --check-reproducible  # then builds it again from a copy of this tree in
#                                                 # target/repro/ and compares binary and .deb byte
#                                                 # for byte (exit 1 if they differ)
#
# On Debian it installs what is missing (as root, no prompts): the packages below, and
# cargo-deb $CARGO_DEB_VERSION from the crate registry (cargo install --locked). Then:
#   1. SOURCE_DATE_EPOCH = the commit time of HEAD (unless set), used for every time stamp;
#   2. cargo build --release --locked, with the checkout, the target directory, the cargo and
#      rustup homes remapped to fixed paths (--remap-path-prefix), in target/package/ (its own
#      target directory: the flags differ from a plain build's, which keeps target/release/);
#   3. the man page (breakglass-ca man) and the bash, zsh and fish completions
#      (breakglass-ca completions SHELL) into target/deb-assets/;
#   4. cargo deb --no-build (metadata in Cargo.toml, [package.metadata.deb]): strips the
#      binary, gzips the man page, computes Depends from the libraries the binary links;
#   5. SHA256SUMS beside the package.
# stdout: the package's path, then its line of SHA256SUMS (progress goes to stderr).
# See docs/packaging.md.
#
# Environment:
#   SOURCE_DATE_EPOCH   the time stamped into the package (default: git log -1 --format=%ct)
#   CARGO_TARGET_DIR    where cargo builds (default: target/package)
set -euo pipefail

CARGO_DEB_VERSION=3.8.0
# - the binary links the PC/SC library (YubiKey support): libpcsclite-dev pkg-config
# - dpkg-shlibdeps, which cargo-deb asks for Depends: dpkg-dev; strip: binutils
# - the commit time: git
PACKAGES=(libpcsclite-dev pkg-config dpkg-dev binutils git)

DIE_PREFIX=package.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_reproducible=false
case ${1:-} in
'') ;;
--check-reproducible) check_reproducible=true ;;
-h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
*) die "unknown argument '$1' (usage: bash scripts/package.sh [--check-reproducible])" ;;
esac

start=$SECONDS

# --- run --------------------------------------------------------------------------------------
step "Packages (${PACKAGES[*]})"
ensure_packages "${PACKAGES[@]}"

step "Rust toolchain and cargo-deb $CARGO_DEB_VERSION"
find_cargo
if [[ $(cargo deb --version 2>/dev/null || true) == "cargo-deb $CARGO_DEB_VERSION" ]]; then
    note "cargo-deb $CARGO_DEB_VERSION already installed"
else
    note "installing cargo-deb $CARGO_DEB_VERSION (cargo install --locked)"
    cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION" </dev/null ||
        die "cargo install --locked cargo-deb --version $CARGO_DEB_VERSION failed (see above)"
    [[ $(cargo deb --version 2>/dev/null || true) == "cargo-deb $CARGO_DEB_VERSION" ]] ||
        die "cargo deb --version does not say cargo-deb $CARGO_DEB_VERSION after installing it (is \$CARGO_HOME/bin on PATH?)"
fi

step "Reproducible build settings"
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null) ||
        die "not a git checkout: set SOURCE_DATE_EPOCH (seconds since 1970) for the package's time stamps"
    if [[ -n $(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
        note "WARNING: the checkout has uncommitted changes: this package is not the commit's"
    fi
fi
[[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH='$SOURCE_DATE_EPOCH' is not a number of seconds"
export SOURCE_DATE_EPOCH
export TZ=UTC LC_ALL=C CARGO_INCREMENTAL=0
umask 022
TARGET=${CARGO_TARGET_DIR:-$REPO/target/package}
mkdir -p -- "$TARGET"
TARGET=$(cd -- "$TARGET" && pwd)
export CARGO_TARGET_DIR=$TARGET
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
# The last matching --remap-path-prefix wins: the target directory (inside the checkout by
# default) comes after the checkout. CARGO_ENCODED_RUSTFLAGS (separated by 0x1f) keeps paths
# with spaces whole, and replaces any RUSTFLAGS of the caller.
unset RUSTFLAGS
flags=(
    "--remap-path-prefix=$cargo_home=/cargo"
    "--remap-path-prefix=$rustup_home=/rustup"
    "--remap-path-prefix=$REPO=/build/breakglass-ca"
    "--remap-path-prefix=$TARGET=/build/target"
)
CARGO_ENCODED_RUSTFLAGS=$(
    IFS=$'\x1f'
    printf '%s' "${flags[*]}"
)
export CARGO_ENCODED_RUSTFLAGS
note "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH ($(date -u -d "@$SOURCE_DATE_EPOCH" '+%Y-%m-%d %H:%M:%S UTC'))"
note "CARGO_TARGET_DIR=$TARGET"
note "rustflags: ${flags[*]}"

step "cargo build --release --locked --bin breakglass-ca"
cargo build --release --locked --bin breakglass-ca </dev/null ||
    die "cargo build --release --locked failed (see the errors above)"
BIN=$TARGET/release/breakglass-ca
[[ -x $BIN ]] || die "the build did not produce $BIN"

step "Man page and completions into target/deb-assets/"
ASSETS=$REPO/target/deb-assets
rm -rf -- "$ASSETS"
mkdir -p -- "$ASSETS"
# Generated from the clap definitions only; no variable of the caller's may reach them.
gen() { env -u BREAKGLASS_CA -u BREAKGLASS_CA_STATE_DIR -u BREAKGLASS_CA_PIN_FILE \
    -u BREAKGLASS_CA_PKCS11_MODULE "$BIN" "$@" </dev/null; }
gen man >"$ASSETS/breakglass-ca.1"
gen completions bash >"$ASSETS/breakglass-ca.bash"
gen completions zsh >"$ASSETS/_breakglass-ca"
gen completions fish >"$ASSETS/breakglass-ca.fish"
# cargo-deb stamps SOURCE_DATE_EPOCH on the files it packs; these get it too, for anyone
# comparing the staging directories.
touch -d "@$SOURCE_DATE_EPOCH" -- "$ASSETS"/*
for f in "$ASSETS"/*; do note "$(wc -c <"$f") bytes  ${f#"$REPO"/}"; done

step "cargo deb --no-build"
OUT=$REPO/target/debian
mkdir -p -- "$OUT"
rm -f -- "$OUT"/breakglass-ca_*.deb "$OUT/SHA256SUMS"
cargo deb --no-build --locked --output "$OUT/" </dev/null >&2 ||
    die "cargo deb failed (see above)"
debs=("$OUT"/breakglass-ca_*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || die "expected one package in $OUT, found: ${debs[*]}"
DEB=${debs[0]}
(cd -- "$OUT" && sha256sum -- "${DEB##*/}" >SHA256SUMS)
(cd -- "$OUT" && sha256sum -c --quiet SHA256SUMS) || die "SHA256SUMS does not verify"
while IFS= read -r line; do note "  $line"; done < <(dpkg-deb -f "$DEB" Package Version Architecture Depends Recommends Suggests)
note "size: $(wc -c <"$DEB") bytes; built in $((SECONDS - start)) s"

if $check_reproducible; then
    step "Reproducibility: the same tree again, copied to target/repro/src, its own target directory"
    REPRO=$REPO/target/repro
    rm -rf -- "$REPRO"
    mkdir -p -- "$REPRO/src"
    # The files git knows (committed or not) and new files it does not ignore: the tree as built.
    # (A file deleted but not yet committed is left out.)
    git -C "$REPO" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            if [[ -e $REPO/$f || -L $REPO/$f ]]; then printf '%s\0' "$f"; fi
        done |
        tar -C "$REPO" --null -T - -cf - | tar -C "$REPRO/src" -xf -
    (cd -- "$REPRO/src" && env -u CARGO_TARGET_DIR bash scripts/package.sh) >"$REPRO/stdout" ||
        die "the second build failed"
    DEB2=$(head -n1 "$REPRO/stdout")
    BIN2=$REPRO/src/target/package/release/breakglass-ca
    same=true
    if cmp -s -- "$BIN" "$BIN2"; then
        note "binary: identical ($(sha256sum <"$BIN" | cut -c1-64))"
    else
        note "binary: DIFFERENT: $BIN and $BIN2"
        same=false
    fi
    if cmp -s -- "$DEB" "$DEB2"; then
        note "package: identical ($(sha256sum <"$DEB" | cut -c1-64))"
    else
        note "package: DIFFERENT: $DEB and $DEB2"
        same=false
    fi
    $same || die "the two builds differ (compare them with diffoscope, or dpkg-deb -c / -I on each)"
fi

# --- result -----------------------------------------------------------------------------------
printf '%s\n' "$DEB"
cat -- "$OUT/SHA256SUMS"
