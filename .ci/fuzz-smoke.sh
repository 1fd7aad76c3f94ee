#!/usr/bin/env bash
# Fuzz smoke test: build every cargo-fuzz target (ops_differential, ops_concurrent,
# api_robustness, trace_decode) on the stable toolchain (RUSTC_BOOTSTRAP=1, no sanitizer) and
# run each for FUZZ_SECONDS (default 45: four targets, three minutes of fuzzing in all, plus
# the build) on a temporary copy of its committed corpus and regressions, so the repository is
# never modified, with the target's options from fuzz/options/<target>.options. Any crash,
# timeout or OOM fails the script; the reproducer is left in fuzz/artifacts/<target>/
# (gitignored) for upload. Each run ends with libFuzzer's
# final stats (stat::average_exec_per_sec and friends).
#
#   .ci/fuzz-smoke.sh                     # every target, 45 s each
#   FUZZ_SECONDS=10 .ci/fuzz-smoke.sh     # quicker
#   .ci/fuzz-smoke.sh trace_decode        # some targets only
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-45}"
export RUSTC_BOOTSTRAP=1
# The same flags for build and run, so `cargo fuzz run` reuses the build.
FLAGS=(-O -s none)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

start=$(date +%s)
cargo fuzz build "${FLAGS[@]}"
echo "fuzz-smoke: built ${#targets[@]} targets in $(($(date +%s) - start)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
    corpus="$work/$t"
    mkdir -p "$corpus"
    for src in "fuzz/corpus/$t" "fuzz/regressions/$t"; do
        if [ -d "$src" ]; then
            find "$src" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$corpus/" \;
        fi
    done
    options=()
    if [ -f "fuzz/options/$t.options" ]; then
        mapfile -t options < <(sed -nE 's/^([a-z_]+) *= *([^ ]+) *$/-\1=\2/p' "fuzz/options/$t.options")
    fi
    echo "fuzz-smoke: $t for ${FUZZ_SECONDS} s on $(find "$corpus" -type f | wc -l) seed inputs ${options[*]}"
    if ! cargo fuzz run "${FLAGS[@]}" "$t" "$corpus" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 "${options[@]}"; then
        echo "fuzz-smoke: $t FAILED (reproducer in fuzz/artifacts/$t/)" >&2
        failed+=("$t")
    fi
done

echo "fuzz-smoke: done in $(($(date +%s) - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-smoke: crashes in: ${failed[*]}" >&2
    exit 1
fi
