//! Replays every committed fuzz input (`fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`)
//! through the library function the libFuzzer target calls, under plain `cargo test` on stable:
//! the corpora double as regression tests, and a fixed crash stays fixed.

use std::path::{Path, PathBuf};

use pgmsim_sim::fuzzing;

/// Every file of `fuzz/corpus/<target>` and `fuzz/regressions/<target>`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let p = e.expect("readable corpus directory").path();
            if p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Runs `f` on every input of `target`, collecting every failure (a panic included).
fn replay_all(target: &str, min_inputs: usize, f: impl Fn(&[u8]) -> Result<(), String>) {
    let files = inputs(target);
    assert!(
        files.len() >= min_inputs,
        "{target}: expected at least {min_inputs} committed inputs, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for p in &files {
        let bytes = std::fs::read(p).expect("readable corpus file");
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&bytes))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{}: {e}", p.display())),
            Err(_) => failures.push(format!("{}: panicked", p.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} inputs fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// Every input on the fuzzing path (a cloned world, no trace) and on the report path (a
/// freshly built world through `run_entropy`): both clean, and they agree.
#[test]
fn ops_differential_corpus() {
    replay_all("ops_differential", 1, |b| {
        let fast = fuzzing::ops_differential(b).err();
        let report = fuzzing::ops_differential_report(b).failure;
        if fast != report {
            return Err(format!("fuzzing path {fast:?}, report path {report:?}"));
        }
        fast.map_or(Ok(()), |f| Err(f.to_string()))
    });
}

/// Every input on the fuzzing path (a cloned world, the byte-driven schedule) and on the
/// report path (a freshly built world through the simulator's concurrent run): both clean,
/// and they agree.
#[test]
fn ops_concurrent_corpus() {
    replay_all("ops_concurrent", 1, |b| {
        let fast = fuzzing::ops_concurrent(b).err();
        let report = fuzzing::ops_concurrent_report(b).failure;
        if fast != report {
            return Err(format!("fuzzing path {fast:?}, report path {report:?}"));
        }
        fast.map_or(Ok(()), |f| Err(f.to_string()))
    });
}

#[test]
fn api_robustness_corpus() {
    replay_all("api_robustness", 1, fuzzing::api_robustness);
}

#[test]
fn trace_decode_corpus() {
    replay_all("trace_decode", 1, fuzzing::trace_decode);
}

/// `pgmsim replay --fuzz` turns an input into a trace that replays to the same result.
#[test]
fn ops_differential_trace_replays_identically() {
    for p in inputs("ops_differential").iter().take(8) {
        let bytes = std::fs::read(p).expect("readable corpus file");
        let run = fuzzing::ops_differential_report(&bytes);
        let trace = fuzzing::ops_differential_trace(&bytes);
        let text = serde_json::to_string(&trace).expect("traces serialise");
        let trace = pgmsim_sim::Trace::from_json(&text, "corpus").expect("the converted trace is valid");
        let again = pgmsim_sim::replay(&trace, trace.check);
        assert_eq!(again.ops, run.ops, "{}", p.display());
        assert_eq!(again.trace_hash, run.trace_hash, "{}", p.display());
    }
}

/// An `ops_concurrent` input's trace (its operations, threads and recorded schedule)
/// replays to the same run.
#[test]
fn ops_concurrent_trace_replays_identically() {
    for p in inputs("ops_concurrent").iter().take(8) {
        let bytes = std::fs::read(p).expect("readable corpus file");
        let run = fuzzing::ops_concurrent_report(&bytes);
        let trace = fuzzing::ops_concurrent_trace(&bytes);
        let text = serde_json::to_string(&trace).expect("traces serialise");
        let trace = pgmsim_sim::Trace::from_json(&text, "corpus").expect("the converted trace is valid");
        let again = pgmsim_sim::replay(&trace, trace.check);
        assert_eq!(again.ops, run.ops, "{}", p.display());
        assert_eq!(again.threads, run.threads, "{}", p.display());
        assert_eq!(again.trace_hash, run.trace_hash, "{}", p.display());
    }
}
