#!/usr/bin/env bash
# Renders HTML reports in a real browser (Debian's headless Chromium) and fails on a script
# error, a script that did not run, or an empty timeline:
#   1. the report of the committed failing trace (tests/traces/failing/): --dump-dom is
#      checked, a screenshot kept;
#   2. the report of the committed failing concurrent trace: one lane per thread, each lane
#      painted, lock intervals present, the failing step marked; a screenshot kept;
#   3. the report of a 100,000-step trace and of a 20,000-step concurrent one: must render,
#      sizes and times printed.
# The page writes its verdict into #report-status (data-state="ok", data-rows, data-steps,
# data-painted = sampled non-background pixels of the timeline; for concurrent traces
# data-lanes, data-lane-ops, data-lane-locks, data-lanes-painted); window.onerror adds
# #report-error. Expects ./target/release/pgmsim to be built. Artefacts: $BROWSER_CHECK_DIR
# (default target/browser-check); the screenshot's path is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
chromium --version

out="${BROWSER_CHECK_DIR:-target/browser-check}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
pgmsim=./target/release/pgmsim
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
  --no-first-run --user-data-dir="$profile" --hide-scrollbars)

# check_dom FILE.dom.html STEPS: the script ran without error and painted a non-empty timeline.
check_dom() {
  local dom="$1" steps="$2" status
  status="$(grep -o '<p id="report-status"[^>]*>' "$dom" || true)"
  echo "  status: $status"
  if grep -q 'id="report-error"' "$dom"; then
    echo "FAIL: script error: $(grep -o '<pre id="report-error">[^<]*' "$dom")"
    exit 1
  fi
  attr() { echo "$status" | grep -o "data-$1=\"[^\"]*\"" | cut -d'"' -f2; }
  [ "$(attr state)" = ok ] || { echo "FAIL: the report's script did not finish"; exit 1; }
  [ "$(attr steps)" = "$steps" ] || { echo "FAIL: expected $steps steps, the page says $(attr steps)"; exit 1; }
  [ "$(attr rows)" -gt 0 ] || { echo "FAIL: empty timeline (no page rows)"; exit 1; }
  [ "$(attr painted)" -gt 0 ] || { echo "FAIL: empty timeline (nothing painted)"; exit 1; }
}

# check_lanes FILE.dom.html THREADS: one lane per thread, every lane painted, operations and
# lock-held intervals present.
check_lanes() {
  local dom="$1" threads="$2" status
  status="$(grep -o '<p id="report-status"[^>]*>' "$dom" || true)"
  attr() { echo "$status" | grep -o "data-$1=\"[^\"]*\"" | cut -d'"' -f2; }
  [ "$(attr lanes)" = "$threads" ] || { echo "FAIL: expected $threads lanes, the page says '$(attr lanes)'"; exit 1; }
  [ "$(attr lanes-painted)" = "$threads" ] || { echo "FAIL: empty lanes: $(attr lanes-painted) of $threads painted"; exit 1; }
  [ "$(attr lane-ops)" -gt 0 ] || { echo "FAIL: no operations in the lanes"; exit 1; }
  [ "$(attr lane-locks)" -gt 0 ] || { echo "FAIL: no lock-held intervals in the lanes"; exit 1; }
  [ "$(grep -c '<tr class="lane"' "$dom")" = "$threads" ] || { echo "FAIL: the threads table has no row per thread"; exit 1; }
}

trace=tests/traces/failing/forgotten-tlb-flush-realias.json
"$pgmsim" report "$trace" -o "$out/failing.html"
timeout 120 chromium "${flags[@]}" --dump-dom "file://$out/failing.html" 2>/dev/null >"$out/failing.dom.html"
check_dom "$out/failing.dom.html" 6
grep -q 'data-lanes="0"' "$out/failing.dom.html" || { echo "FAIL: a sequential trace has no lanes"; exit 1; }
grep -q 'id="failure" data-step="5"' "$out/failing.dom.html" || { echo "FAIL: failing step not marked"; exit 1; }
timeout 120 chromium "${flags[@]}" --window-size=1280,1100 --screenshot="$out/failing.png" \
  "file://$out/failing.html" 2>/dev/null
[ -s "$out/failing.png" ] || { echo "FAIL: no screenshot"; exit 1; }
echo "browser check: failing-trace report OK; screenshot: $out/failing.png"

conc=tests/traces/failing/concurrent-forgotten-flush-dirty-log.json
"$pgmsim" report "$conc" -o "$out/concurrent.html"
timeout 120 chromium "${flags[@]}" --dump-dom "file://$out/concurrent.html" 2>/dev/null >"$out/concurrent.dom.html"
check_dom "$out/concurrent.dom.html" 4
check_lanes "$out/concurrent.dom.html" 3
grep -q 'id="failure" data-step="3"' "$out/concurrent.dom.html" || { echo "FAIL: failing step not marked"; exit 1; }
timeout 120 chromium "${flags[@]}" --window-size=1280,1100 --screenshot="$out/concurrent.png" \
  "file://$out/concurrent.html" 2>/dev/null
[ -s "$out/concurrent.png" ] || { echo "FAIL: no screenshot"; exit 1; }
echo "browser check: concurrent-trace report OK (3 lanes); screenshot: $out/concurrent.png"

"$pgmsim" run --seed 1 --concurrency off --steps 100000 --save-trace "$out/large.json" --json >/dev/null
"$pgmsim" report "$out/large.json" -o "$out/large.html"
start=$(date +%s%N)
timeout 120 chromium "${flags[@]}" --dump-dom "file://$out/large.html" 2>/dev/null >"$out/large.dom.html"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_dom "$out/large.dom.html" 100000
page_ms="$(grep -o 'data-ms="[0-9]*"' "$out/large.dom.html" | cut -d'"' -f2)"
echo "browser check: 100,000-step report ($(du -k "$out/large.html" | cut -f1) KiB): drawn ${page_ms} ms after navigation start (${ms} ms with the browser start)"

"$pgmsim" run --seed 1 --concurrency on --steps 20000 --save-trace "$out/large-concurrent.json" --json >/dev/null
start=$(date +%s%N)
"$pgmsim" report "$out/large-concurrent.json" -o "$out/large-concurrent.html"
written_ms=$(( ($(date +%s%N) - start) / 1000000 ))
timeout 120 chromium "${flags[@]}" --dump-dom "file://$out/large-concurrent.html" 2>/dev/null >"$out/large-concurrent.dom.html"
check_dom "$out/large-concurrent.dom.html" 20000
threads="$(grep -o 'data-lanes="[0-9]*"' "$out/large-concurrent.dom.html" | head -1 | cut -d'"' -f2)"
check_lanes "$out/large-concurrent.dom.html" "$threads"
page_ms="$(grep -o 'data-ms="[0-9]*"' "$out/large-concurrent.dom.html" | cut -d'"' -f2)"
echo "browser check: 20,000-step concurrent report ($threads lanes, $(du -k "$out/large-concurrent.html" | cut -f1) KiB, written in ${written_ms} ms): drawn ${page_ms} ms after navigation start"
