//! `pgmsim bench --long-run STEPS`: a run's cost must be linear in its steps and its memory
//! flat. Measures steps/s of one seed over 10^5 and over 10^6 steps (their ratio should stay
//! within 20 %), and the peak resident memory of a run of STEPS steps (10^7: under 64 MiB),
//! measured in a child process so nothing else this process did counts. The world is the
//! seed's sequential one (concurrency forced off): the concurrent executor keeps every
//! operation and scheduling decision of a run, by design, to write its trace.

use std::time::Instant;

use serde_json::{json, Value};

use super::exit;
use super::out::{errln, outln};
use crate::check::CheckMode;
use crate::conc::config::ConcurrencyOverrides;
use crate::config::{Overrides, SimConfig};
use crate::run::run_generated;

/// The seed every long-run measurement uses (its sequential world).
const SEED: u64 = 1;
/// Largest acceptable difference of steps/s between 10^5 and 10^6 steps.
const RATE_TOLERANCE: f64 = 0.20;
/// Largest acceptable peak memory of the long run, in KiB.
const PEAK_LIMIT_KIB: u64 = 64 << 10;

fn config() -> SimConfig {
    let ov = Overrides {
        concurrency: ConcurrencyOverrides {
            enabled: Some(false),
            ..ConcurrencyOverrides::default()
        },
        ..Overrides::default()
    };
    SimConfig::from_seed(SEED, &ov)
}

/// CPU time this thread has used, in seconds (Linux `schedstat`), if known: unlike the wall
/// clock, it does not count the time other processes of a shared machine took.
pub(super) fn thread_cpu_secs() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// Steps per second of `steps` steps of [`SEED`] (world built and final check included):
/// by the wall clock, and by this thread's CPU time when known.
fn rate(steps: u64) -> (f64, Option<f64>) {
    let cpu = thread_cpu_secs();
    let t = Instant::now();
    let r = run_generated(SEED, config(), steps, CheckMode::Incremental, &mut ());
    let wall = t.elapsed().as_secs_f64();
    if let Some(f) = &r.failure {
        errln!("long-run seed {SEED} failed: {f}");
    }
    let cpu = cpu
        .zip(thread_cpu_secs())
        .map(|(a, b)| r.steps as f64 / (b - a).max(1e-9));
    (r.steps as f64 / wall, cpu)
}

/// This process's peak resident set size in KiB (Linux: `VmHWM`), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The child: runs `steps` steps of [`SEED`] and prints its peak memory as JSON.
pub(crate) fn child(steps: u64) -> i32 {
    let t = Instant::now();
    let r = run_generated(SEED, config(), steps, CheckMode::Incremental, &mut ());
    outln!(
        "{}",
        json!({
            "steps": r.steps,
            "seconds": t.elapsed().as_secs_f64(),
            "failed": r.failure.is_some(),
            "peak_rss_kib": peak_rss_kib(),
        })
    );
    exit::OK
}

/// Runs the child for `steps` steps; its JSON line.
fn run_child(steps: u64) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let out = std::process::Command::new(exe)
        .args(["bench", "--peak-memory-child", &steps.to_string()])
        .output()
        .map_err(|e| format!("cannot start the long run: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).map_err(|e| format!("the long run printed {text:?}: {e}"))
}

/// The long-run benchmark.
pub(crate) fn bench(memory_steps: u64, as_json: bool) -> i32 {
    let (short, short_cpu) = rate(100_000);
    let (long, long_cpu) = rate(1_000_000);
    // The cost per step: CPU time where known (a shared machine's load does not count).
    let ratio = match (short_cpu, long_cpu) {
        (Some(a), Some(b)) => b / a,
        _ => long / short,
    };
    let child = match run_child(memory_steps) {
        Ok(v) => v,
        Err(e) => {
            errln!("pgmsim: {e}");
            return exit::BAD_INPUT;
        }
    };
    let peak = child["peak_rss_kib"].as_u64();
    let rate_ok = (ratio - 1.0).abs() <= RATE_TOLERANCE;
    let memory_ok = peak.is_some_and(|p| p < PEAK_LIMIT_KIB);
    if as_json {
        outln!(
            "{}",
            json!({
                "seed": SEED,
                "concurrency": "off",
                "steps_per_sec_1e5": short.round(),
                "steps_per_sec_1e6": long.round(),
                "steps_per_cpu_sec_1e5": short_cpu.map(f64::round),
                "steps_per_cpu_sec_1e6": long_cpu.map(f64::round),
                "rate_ratio": (ratio * 1000.0).round() / 1000.0,
                "rate_within_20_percent": rate_ok,
                "long_run_steps": child["steps"],
                "long_run_seconds": child["seconds"],
                "peak_rss_kib": peak,
                "peak_under_64_mib": memory_ok,
            })
        );
    } else {
        let cpu = |c: Option<f64>| c.map_or(String::new(), |c| format!(" ({c:.0} per CPU second)"));
        outln!(
            "seed {SEED} (sequential world), 10^5 steps:  {short:>10.0} steps/s{}",
            cpu(short_cpu)
        );
        outln!(
            "seed {SEED} (sequential world), 10^6 steps:  {long:>10.0} steps/s{} (ratio {ratio:.3}; target within 20 %: {})",
            cpu(long_cpu),
            if rate_ok { "met" } else { "MISSED" }
        );
        outln!(
            "seed {SEED} (sequential world), {memory_steps} steps: peak resident memory {} (target under 64 MiB: {}; {:.0} s)",
            peak.map_or("unknown (no /proc)".to_string(), |p| format!(
                "{:.1} MiB",
                p as f64 / 1024.0
            )),
            if memory_ok { "met" } else { "MISSED" },
            child["seconds"].as_f64().unwrap_or_default()
        );
    }
    exit::OK
}
