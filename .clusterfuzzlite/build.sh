#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: the same `cargo fuzz build -O` as .ci/fuzz-smoke.sh, but
# with the image's nightly toolchain and its default sanitizer (address), then every target
# binary, its seed corpus (corpus + regressions) and its options (the shared limits plus
# fuzz/options/<target>.options, if any) into $OUT. Every file of fuzz/fuzz_targets/ is a
# target: ops_differential, ops_concurrent, api_robustness, trace_decode.
cd "$SRC/pgmsim"
cargo fuzz build -O
for src in fuzz/fuzz_targets/*.rs; do
    t="$(basename "$src" .rs)"
    cp "fuzz/target/x86_64-unknown-linux-gnu/release/$t" "$OUT/"
    seeds="$(mktemp -d)"
    for d in "fuzz/corpus/$t" "fuzz/regressions/$t"; do
        if [ -d "$d" ]; then
            find "$d" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$seeds/" \;
        fi
    done
    (cd "$seeds" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
    rm -rf "$seeds"
    printf '[libfuzzer]\ntimeout = 25\nrss_limit_mb = 2048\n' > "$OUT/$t.options"
    if [ -f "fuzz/options/$t.options" ]; then
        grep -E '^[a-z_]+ *=' "fuzz/options/$t.options" >> "$OUT/$t.options"
    fi
done
