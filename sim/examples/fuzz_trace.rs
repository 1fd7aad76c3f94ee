//! Turns a fuzz input into a replayable trace through its target's report path (a freshly
//! built world, every operation recorded, a panic turned into a failure):
//!
//! ```sh
//! cargo run --release -p pgmsim-sim --example fuzz_trace -- ops_concurrent CRASH [-o x.json]
//! cargo run --release -p pgmsim-sim -- replay x.json      # then: pgmsim shrink x.json
//! ```
//!
//! Targets: `ops_concurrent`, `ops_differential` (the latter is also
//! `pgmsim replay --fuzz ops_differential`). Prints the failure, if any; exits 1 on a bad
//! command line or an unreadable input.

use std::path::PathBuf;
use std::process::ExitCode;

use pgmsim_sim::fuzzing;

/// The command line: target, input, and where to write the trace.
fn parse() -> Result<(String, PathBuf, PathBuf), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fuzz_trace ops_concurrent|ops_differential INPUT [-o TRACE.json]";
    let (target, input, output) = match args.as_slice() {
        [t, i] => (t, PathBuf::from(i), PathBuf::from(i).with_extension("trace.json")),
        [t, i, o, out] if o == "-o" => (t, PathBuf::from(i), PathBuf::from(out)),
        _ => return Err(usage.into()),
    };
    Ok((target.clone(), input, output))
}

/// Converts the input named on the command line and writes its trace.
fn main() -> ExitCode {
    let (target, input, output) = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let bytes = match std::fs::read(&input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: {e}", input.display());
            return ExitCode::FAILURE;
        }
    };
    let trace = match target.as_str() {
        "ops_concurrent" => fuzzing::ops_concurrent_trace(&bytes),
        "ops_differential" => fuzzing::ops_differential_trace(&bytes),
        other => {
            eprintln!("no trace for fuzz target {other:?} (ops_concurrent, ops_differential)");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = trace.save(&output) {
        eprintln!("{}: {e}", output.display());
        return ExitCode::FAILURE;
    }
    match &trace.failure {
        Some(f) => println!("{}: {} operations, failure: {f}", output.display(), trace.ops.len()),
        None => println!("{}: {} operations, no failure", output.display(), trace.ops.len()),
    }
    ExitCode::SUCCESS
}
