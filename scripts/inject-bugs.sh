#!/usr/bin/env bash
# Bug injection ("does the simulator find real bugs fast?"): applies each bug of the catalogue
# (scripts/bugs.toml) in turn to a throw-away worktree of HEAD, sweeps the default seeds on one
# thread until the first failure (60 s at most), minimises the failing trace, and prints one
# table: bug, caught, seed, seconds, invariant, minimised steps, vCPUs (and, with --rates, the
# race bugs' hit rates over 1,000 schedules under random and PCT scheduling).
#
#   scripts/inject-bugs.sh --list                      # the catalogue
#   scripts/inject-bugs.sh                             # every bug
#   scripts/inject-bugs.sh --rates flush_before_pte_update
#   scripts/inject-bugs.sh --fuzz --max-time 60        # hunt with the ops_differential fuzz target
#
# Exit status 1 if a bug survives or minimises to more than 10 steps (a race to more than two
# vCPUs). Needs python3 (3.11+) and git; builds into target/inject.
set -euo pipefail
exec python3 "$(dirname "$0")/inject_bugs.py" "$@"
