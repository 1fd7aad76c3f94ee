#!/usr/bin/env bash
# Mutation testing of the production crate (`pgmsim`, src/) against the whole workspace's tests
# (`cargo test --workspace`, the README's test command): every mutant cargo-mutants generates in
# src/ is built and must make some test fail.
#
# usage: scripts/mutants.sh [K/N] [more cargo-mutants arguments]
#   scripts/mutants.sh            every mutant (about 1,000; days on a 2-core machine)
#   scripts/mutants.sh 3/30       shard 3 of 30: every 30th mutant from the 4th (round-robin, so a
#                                 shard samples every file; shards count from 0). The nightly
#                                 workflow runs one shard per night.
#   scripts/mutants.sh --list     list the mutants, run nothing
#   scripts/mutants.sh --iterate  the full run, resumable: skips every mutant already caught or
#                                 unviable in mutants/out/all (cargo-mutants' --iterate), so a run
#                                 stopped part-way goes on where it stopped, and missed mutants are
#                                 tried again once they have a test
#
# Every build uses the `mutants` profile (root Cargo.toml: opt-level 1, no debug info): a mutant
# rebuilds the workspace's tests and runs all of them, and optimised test binaries run the
# workspace's tests in about 20 s instead of 100 s, for about 10 s more build.
#
# Results go to mutants/out/<shard>/mutants.out/ (caught.txt, missed.txt, timeout.txt,
# unviable.txt, outcomes.json). The score is caught / (caught + missed); every missed mutant
# either gets a test or a line in mutants/equivalent.txt saying why no test can catch it.
# The script fails (exit 2) only for a missed mutant that file does not explain, so a nightly
# shard fails exactly when somebody has a test to write or an equivalence to argue.
set -euo pipefail
cd "$(dirname "$0")/.."

shard=""
if [[ "${1:-}" =~ ^[0-9]+/[0-9]+$ ]]; then
  shard="$1"
  shift
fi
command -v cargo-mutants >/dev/null 2>&1 || cargo install cargo-mutants --locked

name="${shard:-all}"
out="mutants/out/${name//\//-of-}"
mkdir -p "$out"

# `--features pgmsim/paranoid`: the features the workspace's tests build the production crate
# with (the simulator turns `paranoid` on), so the production crate's own tests, which
# scripts/mutants-cargo runs first on their own, are the very binaries the workspace run uses.
args=(--package pgmsim --output "$out" --profile mutants --features pgmsim/paranoid)
# A test timeout of three times the baseline's, unless the caller sets one (`--timeout S`,
# which `--baseline skip` needs).
[[ " $* " == *" --timeout "* ]] || args+=(--timeout-multiplier 3)
if [[ -n "$shard" ]]; then
  args+=(--shard "$shard" --sharding round-robin)
fi
# cargo-mutants 27 tests only the mutated package (`--test-workspace` did not change that here):
# `-- --workspace` makes every `cargo test` it runs the whole workspace's. cargo-mutants calls
# back into cargo through $CARGO, which is scripts/mutants-cargo: it runs the production
# crate's own tests first and the workspace's only when they pass (same verdict, less building).
# cargo-mutants is run directly, not as `cargo mutants`, since cargo would reset $CARGO.
export MUTANTS_REAL_CARGO="${MUTANTS_REAL_CARGO:-$(command -v cargo)}"
export CARGO="$PWD/scripts/mutants-cargo"
status=0
cargo-mutants mutants "${args[@]}" "$@" -- --workspace || status=$?
# cargo-mutants exits 2 when some mutant was missed: judge those against the known
# equivalents (matched without their line:column, which edits above them shift).
missed="$out/mutants.out/missed.txt"
if [[ $status -eq 2 && -f "$missed" ]]; then
  status=0
  while IFS= read -r mutant; do
    if ! scripts/mutants-explained "$mutant"; then
      echo "unexplained survivor: $mutant" >&2
      status=2
    fi
  done <"$missed"
fi
exit "$status"
