#!/usr/bin/env bash
# Bug injection ("does the simulator find real bugs fast?"): applies one named bug at a time to
# the production manager in a throw-away git worktree of HEAD, builds the simulator, sweeps
# seeds until the first failure, and reports the seed, step, invariant and minimised trace
# length. Every bug must be caught; the script exits 1 if one survives the sweep.
#
#   scripts/inject-bugs.sh              # all bugs, seeds 0..2000
#   SEEDS=0..200 scripts/inject-bugs.sh skip_edge_recalc
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${SEEDS:-0..2000}"
work="$(mktemp -d)"
git worktree add --detach "$work/tree" HEAD >/dev/null 2>&1
trap 'git worktree remove --force "$work/tree"; rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/inject}"
target_dir="$(cd "$(dirname "$CARGO_TARGET_DIR")" && pwd)/$(basename "$CARGO_TARGET_DIR")"
export CARGO_TARGET_DIR="$target_dir"

# name | file | text to replace | replacement
BUGS=$(cat <<'LIST'
skip_tlb_flush_on_upgrade|src/ops/register.rs|        if flush {|        if flush && false {
skip_edge_recalc|src/ops/deregister.rs|        if state == HandlerState::None {|        if true {
temp_off_no_count|src/ops/temp_off.rs|self.record_mut(slot)?.temp_off_pages += 1;|let _ = self.record_mut(slot)?;
alias_no_pagemap_invalidate|src/ops/alias.rs|        self.platform.invalidate_page_map_entry(self.page_addr(r));\n        self.nem_backing_changed(r, previous);|        self.nem_backing_changed(r, previous);
reset_no_rearm|src/ops/reset.rs|                if temp_off > 0 {|                if temp_off > 1 {
upgrade_skips_disabled|src/ops/register.rs|if page.handler_state() >= state {|if page.handler_state() >= state \|\| page.handler_state() == crate::page::HandlerState::Disabled {
deregister_keeps_alias|src/ops/deregister.rs|            if self.memory.at(r).page_type().is_alias() {|            if self.memory.at(r).page_type().is_alias() \&\& false {
alias_reset_no_pte_flush|src/ops/alias.rs|        self.platform.update_shadow_ptes(gc_phys, &before, true);|        let _ = &before;
temp_off_no_nem_notify|src/ops/temp_off.rs|            self.nem_protection_changed(r);|            let _ = r;
register_drops_not_in_hm|src/ops/register.rs|            page.set_handler_state(state, not_in_hm);|            page.set_handler_state(state, false);
LIST
)

survivors=0
while IFS='|' read -r name file from to; do
    if [ "$#" -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
    (cd "$work/tree" && git checkout -q -- src)
    python3 - "$work/tree/$file" "$from" "$to" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2].replace("\\n", "\n"), sys.argv[3].replace("\\n", "\n").replace("\\|", "|").replace("\\&", "&")
text = open(path).read()
if old not in text:
    sys.exit(f"bug {path}: text to replace not found")
open(path, "w").write(text.replace(old, new, 1))
PY
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
    else
        echo "SURVIVED  $name"
        survivors=$((survivors + 1))
    fi
done <<<"$BUGS"
[ "$survivors" -eq 0 ]
