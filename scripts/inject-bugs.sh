#!/usr/bin/env bash
# Bug injection ("does the simulator find real bugs fast?"): applies one named bug at a time to
# the production manager in a throw-away git worktree of HEAD and hunts it.
#
# Sweep mode (default): builds the simulator, sweeps seeds until the first failure, and reports
# the seed, step, invariant and minimised trace length. Every bug must be caught; exits 1 if
# one survives the sweep.
#
# Fuzz mode (--fuzz): builds the `ops_differential` fuzz target (cargo fuzz, -O -s none) and
# runs it on one core for at most FUZZ_SECONDS twice per bug: from the committed corpus and
# from an empty one, reporting the seconds to the first crash and the broken invariant. The
# unmodified tree runs first, from the corpus, as the control: it must not crash. Every bug
# must be found from the committed corpus; exits 1 otherwise (or if the control crashes).
#
#   scripts/inject-bugs.sh                        # sweep mode, all bugs, seeds 0..2000
#   SEEDS=0..200 scripts/inject-bugs.sh skip_edge_recalc
#   scripts/inject-bugs.sh --fuzz                 # fuzz mode, all bugs, 60 s per run
#   FUZZ_SECONDS=30 scripts/inject-bugs.sh --fuzz reset_no_rearm
#
# The catalogue (BUGS below) is data: one line per bug, `name|file|text|replacement`. The
# text may not contain `|`; in either, `\n` is a newline, and in the replacement `\|` and
# `\&` stand for `|` and `&`.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=sweep
if [ "${1:-}" = "--fuzz" ]; then
    MODE=fuzz
    shift
fi
SEEDS="${SEEDS:-0..2000}"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
# libFuzzer flags of both fuzz runs: the target's own options (fuzz/options), a fixed
# mutation seed, the smoke test's limits.
mapfile -t FUZZ_FLAGS < <(sed -nE 's/^([a-z_]+) *= *([^ ]+) *$/-\1=\2/p' fuzz/options/ops_differential.options)
FUZZ_FLAGS+=(-seed=1 -timeout=25 -rss_limit_mb=2048)
work="$(mktemp -d)"
git worktree add --detach "$work/tree" HEAD >/dev/null 2>&1
trap 'git worktree remove --force "$work/tree"; rm -rf "$work"' EXIT
absolute() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
mkdir -p target
export CARGO_TARGET_DIR="$(absolute "${CARGO_TARGET_DIR:-target/inject}")"
FUZZ_TARGET_DIR="$(absolute "${FUZZ_TARGET_DIR:-target/inject-fuzz}")"

# name | file | text to replace | replacement
BUGS=$(cat <<'LIST'
skip_tlb_flush_on_upgrade|src/ops/register.rs|        if flush {|        if flush && false {
skip_edge_recalc|src/ops/deregister.rs|        if below != HandlerState::None {|        if below != HandlerState::None \&\& false {
temp_off_no_count|src/ops/temp_off.rs|self.registration_mut(slot).temp_off_pages += 1;|let _ = self.registration_mut(slot);
alias_no_pagemap_invalidate|src/ops/alias.rs|        self.platform.invalidate_page_map_entry(Gpa(self.memory.addr_of(r)));\n        self.nem_backing_changed(r, previous);|        self.nem_backing_changed(r, previous);
reset_no_rearm|src/ops/reset.rs|HandlerKind::All if reg.temp_off_pages > 0 => {|HandlerKind::All if reg.temp_off_pages > 1 => {
upgrade_skips_disabled|src/ops/register.rs|if page.handler_state() >= state {|if page.handler_state() >= state \|\| page.handler_state() == crate::page::HandlerState::Disabled {
deregister_keeps_alias|src/ops/deregister.rs|            if aliased {|            if aliased \&\& false {
alias_reset_no_pte_flush|src/ops/alias.rs|        self.platform.update_shadow_ptes(gc_phys, &before, true);|        let _ = &before;
temp_off_no_nem_notify|src/ops/temp_off.rs|            self.nem_protection_changed(r);|            let _ = r;
register_drops_not_in_hm|src/ops/register.rs|            page.set_handler_state(state, not_in_hm);|            page.set_handler_state(state, false);
LIST
)

# Restores the worktree's src/ and applies one bug to it.
apply_bug() {
    local file=$1 from=$2 to=$3
    (cd "$work/tree" && git checkout -q -- src)
    python3 - "$work/tree/$file" "$from" "$to" <<'PY'
import sys
def unescape(s):
    return s.replace("\\n", "\n").replace("\\|", "|").replace("\\&", "&")
path, old, new = sys.argv[1], unescape(sys.argv[2]), unescape(sys.argv[3])
text = open(path).read()
if old not in text:
    sys.exit(f"bug {path}: text to replace not found")
open(path, "w").write(text.replace(old, new, 1))
PY
}

# Sweep mode: one line per bug.
sweep_bug() {
    local name=$1
    if ! (cd "$work/tree" && cargo build -q --release -p pgmsim-sim 2>"$work/build.log"); then
        cat "$work/build.log" >&2
        exit 1
    fi
    out=$("$CARGO_TARGET_DIR/release/pgmsim" sweep --seeds "$SEEDS" --steps 2000 --jobs 1 \
        --shrink-budget 500 --out "$work/fail-$name" 2>&1 || true)
    if grep -q "^FAILURE" <<<"$out"; then
        first=$(grep -m1 "^FAILURE" <<<"$out" | sed -E 's/^FAILURE \((seed [0-9]+)\): step ([0-9]+): invariant ([A-Za-z]+).*/\1, step \2, \3/')
        min=$(grep -m1 "minimised:" <<<"$out" | sed -E 's/.*\(([0-9]+) steps,.*/\1/')
        echo "caught    $name: $first; minimised to $min steps"
        return 0
    fi
    echo "SURVIVED  $name"
    return 1
}

# Fuzz mode: builds the target of the worktree as it is now.
build_fuzz_target() {
    if ! (cd "$work/tree/fuzz" && RUSTC_BOOTSTRAP=1 cargo fuzz build -O -s none ops_differential \
        --target-dir "$FUZZ_TARGET_DIR" >"$work/build.log" 2>&1); then
        cat "$work/build.log" >&2
        exit 1
    fi
}

# Runs the built target for at most FUZZ_SECONDS on a copy of corpus directory $1 (empty if
# none); prints "<seconds> <invariant>" after a crash, "- -" otherwise.
fuzz_once() {
    local seeds=$1 corpus="$work/corpus" log="$work/fuzz.log"
    rm -rf "$corpus" "$work/artifacts" && mkdir -p "$corpus" "$work/artifacts"
    if [ -n "$seeds" ]; then
        find "$seeds" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$corpus/" \;
    fi
    local start end
    start=$(date +%s.%N)
    "$FUZZ_TARGET_DIR/x86_64-unknown-linux-gnu/release/ops_differential" "$corpus" "${FUZZ_FLAGS[@]}" \
        -max_total_time="$FUZZ_SECONDS" -artifact_prefix="$work/artifacts/" >"$log" 2>&1 || true
    end=$(date +%s.%N)
    if ls "$work/artifacts"/crash-* >/dev/null 2>&1; then
        local invariant
        # The broken invariant of a failed check, or where the manager's own re-verification
        # (`paranoid`) or anything else panicked.
        invariant=$(grep -m1 -oE "invariant [A-Za-z]+ failed" "$log" | awk '{ print "invariant:" $2 }' || true)
        if [ -z "$invariant" ]; then
            invariant=$(grep -m1 -oE "panicked at [^:]+" "$log" | sed -E 's#^panicked at .*/tree/#panic:#' || true)
        fi
        printf '%s %s\n' "$(awk "BEGIN { printf \"%.1f\", $end - $start }")" "${invariant:-crash}"
    else
        echo "- -"
    fi
}

fuzz_bug() {
    local name=$1
    build_fuzz_target
    read -r c_secs c_what < <(fuzz_once "$work/tree/fuzz/corpus/ops_differential")
    if [ "$name" = "(none)" ]; then
        printf '%-28s %-22s\n' "$name" "${c_secs/-/clean}"
        [ "$c_secs" = "-" ]
        return
    fi
    read -r e_secs e_what < <(fuzz_once "")
    printf '%-28s %-8s %-28s %-8s %s\n' "$name" "$c_secs" "$c_what" "$e_secs" "$e_what"
    [ "$c_secs" != "-" ]
}

failures=0
if [ "$MODE" = fuzz ]; then
    echo "fuzz mode: ops_differential, at most ${FUZZ_SECONDS} s per run, flags ${FUZZ_FLAGS[*]}"
    printf '%-28s %-8s %-28s %-8s %s\n' bug "corpus s" "(invariant)" "empty s" "(invariant)"
    (cd "$work/tree" && git checkout -q -- src)
    fuzz_bug "(none)" || { echo "the unmodified tree crashes: fix that first" >&2; exit 1; }
fi
while IFS='|' read -r name file from to; do
    if [ "$#" -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
    apply_bug "$file" "$from" "$to"
    if [ "$MODE" = fuzz ]; then
        fuzz_bug "$name" || failures=$((failures + 1))
    else
        sweep_bug "$name" || failures=$((failures + 1))
    fi
done <<<"$BUGS"
[ "$failures" -eq 0 ]
