#!/usr/bin/env bash
# fuzz.sh: a short bounded run of every cargo-fuzz target in fuzz/ (see fuzz/README.md).
#
#   bash scripts/fuzz.sh            # 20 s per target
#   bash scripts/fuzz.sh 300        # 5 min per target
#   bash scripts/fuzz.sh 0          # only replay fuzz/seeds and fuzz/regressions
#
# Needs a nightly toolchain (rustup toolchain install nightly) and cargo-fuzz
# (cargo install cargo-fuzz --locked). Not part of scripts/test.sh (fuzz/README.md says why).
# Each target runs from fuzz/corpus/TARGET (kept between runs, not in git) plus the committed
# fuzz/seeds/TARGET and fuzz/regressions/TARGET. A crash leaves its input in
# fuzz/artifacts/TARGET/; the script goes on with the other targets and exits 1 at the end.
set -euo pipefail

DIE_PREFIX=fuzz.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds=${1:-20}
[[ $seconds =~ ^[0-9]+$ ]] || die "usage: bash scripts/fuzz.sh [SECONDS per target]"
find_cargo
cargo +nightly --version >/dev/null 2>&1 ||
    die "no nightly toolchain: rustup toolchain install nightly"
cargo +nightly fuzz --version >/dev/null 2>&1 ||
    die "cargo-fuzz is not installed: cargo install cargo-fuzz --locked"

step "Build the fuzz targets"
cargo +nightly fuzz build

failed=()
for target in $(cargo +nightly fuzz list); do
    mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target" "fuzz/regressions/$target"
    if ((seconds == 0)); then
        step "$target: replay seeds and regressions"
        limits=(-runs=0)
    else
        step "$target: $seconds s"
        limits=(-max_total_time="$seconds")
    fi
    # A hang is a failure too: libFuzzer's -timeout is per input, the outer timeout per target.
    if timeout $((seconds + 120)) cargo +nightly fuzz run "$target" "fuzz/corpus/$target" \
        "fuzz/seeds/$target" "fuzz/regressions/$target" -- "${limits[@]}" -timeout=10 \
        -print_final_stats=1 </dev/null; then
        note "$target: ok"
    else
        note "$target: FAILED (see fuzz/artifacts/$target/)"
        failed+=("$target")
    fi
done

step "Summary"
if ((${#failed[@]})); then
    note "FAILED: ${failed[*]}"
    exit 1
fi
note "all targets ran without a crash"
