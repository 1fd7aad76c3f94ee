//! What each subcommand does with its arguments: call the library, print, pick the exit code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::args::{ConfigArgs, ReplayArgs, RunArgs, ShrinkArgs, SweepArgs};
use crate::check::CheckMode;
use crate::run::{replay as replay_trace, run_config, RunReport};
use crate::shrink::shrink as shrink_trace;
use crate::sweep::{self, Progress, SweepSpec};
use crate::trace::Trace;

/// `pgmsim config`: the world of a seed as JSON.
pub(crate) fn config(a: ConfigArgs) -> i32 {
    let base = match a.world.base_config() {
        Ok(b) => b,
        Err(code) => return code,
    };
    let config = a.world.config_for(a.seed, &base);
    println!(
        "{}",
        serde_json::to_string_pretty(&config).expect("configurations serialise")
    );
    0
}

/// Where a failing run's files go: the trace, the minimised trace and its HTML report.
fn failure_paths(r: &RunReport, out: &Path) -> [PathBuf; 3] {
    let name = match r.seed {
        Some(s) => format!("seed-{s}"),
        None => "trace".to_string(),
    };
    ["json", "min.json", "min.html"].map(|ext| out.join(format!("{name}.{ext}")))
}

/// Writes the failing trace, its minimised form and that one's report, prints everything a
/// user needs, returns 1.
fn report_failure(r: &RunReport, out: &Path, budget: u64) -> i32 {
    let f = r.failure.as_ref().expect("called on failures");
    let [full, min, html] = failure_paths(r, out);
    eprintln!(
        "FAILURE{}: {f}",
        r.seed.map(|s| format!(" (seed {s})")).unwrap_or_default()
    );
    eprintln!("  config: {}", r.config.summary());
    if let Some(op) = r.ops.last() {
        eprintln!(
            "  failing step {}: {}",
            f.step,
            serde_json::to_string(op).unwrap_or_default()
        );
    }
    let trace = r.trace();
    if let Err(e) = trace.save(&full) {
        eprintln!("  could not write {}: {e}", full.display());
        return 1;
    }
    eprintln!("  trace: {} ({} steps)", full.display(), trace.ops.len());
    match shrink_trace(&trace, budget) {
        Some(s) => match s.trace.save(&min) {
            Ok(()) => {
                eprintln!(
                    "  minimised: {} ({} steps, {} replays; {})",
                    min.display(),
                    s.trace.ops.len(),
                    s.replays,
                    s.trace.failure.as_ref().map(|f| f.to_string()).unwrap_or_default()
                );
                eprintln!(
                    "  replay with: cargo run --release -p pgmsim-sim -- replay {} --log",
                    min.display()
                );
                let title = format!("pgmsim report: {}", min.display());
                match super::report::write_trace_report(&s.trace, s.trace.check, &title, None, &html) {
                    Ok(_) => eprintln!("  report: {}", html.display()),
                    Err(e) => eprintln!("  could not write the report: {e}"),
                }
            }
            Err(e) => eprintln!("  could not write {}: {e}", min.display()),
        },
        None => eprintln!("  (the failure did not reproduce on replay: nondeterminism?)"),
    }
    1
}

fn print_report(r: &RunReport, json: bool) {
    if json {
        let mut v = serde_json::to_value(r.summary()).expect("summary serialises");
        v["coverage"] = r.stats.coverage.to_json();
        println!("{v}");
    } else {
        let s = &r.stats;
        println!(
            "{}: {} steps, {} accesses ({} TLB hits, {} misses, {} shadow syncs), {} handler calls, {} guest faults, {} invariant checks ({} full), trace hash {:016x}: {}",
            r.seed.map(|s| format!("seed {s}")).unwrap_or_else(|| "trace".into()),
            r.ops.len(),
            s.accesses,
            s.tlb_hits,
            s.tlb_misses,
            s.shadow_syncs,
            s.handler_calls,
            s.guest_faults,
            s.invariant_checks,
            s.full_checks,
            r.trace_hash,
            if r.failure.is_some() { "FAILED" } else { "ok" }
        );
    }
}

/// `pgmsim run`: one seed.
pub(crate) fn run(a: RunArgs) -> i32 {
    let base = match a.world.base_config() {
        Ok(b) => b,
        Err(code) => return code,
    };
    let config = a.world.config_for(a.seed, &base);
    if !a.json {
        println!("seed {}: {}", a.seed, config.summary());
    }
    let r = run_config(a.seed, config, a.world.steps, a.world.check.into());
    if let Err(code) = a.log.print(&r.trace(), r.check) {
        return code;
    }
    print_report(&r, a.json);
    if !a.json {
        print!("{}", crate::coverage::render(&r.stats.coverage));
    }
    if let Some(path) = &a.save_trace {
        if let Err(e) = r.trace().save(path) {
            eprintln!("pgmsim: {e}");
            return 2;
        }
    }
    if r.failure.is_some() {
        return report_failure(&r, &a.world.out, a.world.shrink_budget);
    }
    0
}

/// Prints failures as they happen and a progress bar (or periodic lines) on a terminal.
struct SweepProgress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    total: u64,
    done: std::sync::atomic::AtomicU64,
}

impl Progress for SweepProgress {
    fn seed_done(&self, seed: u64, failed: Option<&RunReport>) {
        let n = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        match (failed.and_then(|r| r.failure.as_ref()), &self.bar) {
            (Some(f), Some(b)) => b.println(format!("seed {seed}: FAILED: {f}")),
            (Some(f), None) if !self.quiet => eprintln!("seed {seed}: FAILED: {f}"),
            (None, Some(b)) => b.inc(1),
            (None, None) if !self.quiet && (n.is_multiple_of((self.total / 20).max(50)) || n == self.total) => {
                eprintln!("{n}/{} seeds done", self.total)
            }
            _ => {}
        }
    }
}

/// `pgmsim sweep`: a range of seeds on all cores.
pub(crate) fn sweep(a: SweepArgs) -> i32 {
    let base = match a.world.base_config() {
        Ok(b) => b,
        Err(code) => return code,
    };
    let spec = SweepSpec {
        start: a.seeds.0,
        end: a.seeds.1,
        shard: a.shard,
        jobs: super::args::workers(a.jobs),
        keep_going: a.keep_going,
        steps: a.world.steps,
        check: a.world.check.into(),
    };
    let progress = SweepProgress {
        bar: (std::io::stderr().is_terminal() && !a.json).then(|| {
            let b = indicatif::ProgressBar::new(spec.len());
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {elapsed_precise} eta {eta} {msg}")
                    .expect("valid template"),
            );
            b
        }),
        quiet: a.json,
        total: spec.len(),
        done: Default::default(),
    };
    let started = std::time::Instant::now();
    let report = sweep::sweep(&spec, &|seed| a.world.config_for(seed, &base), false, &progress);
    if let Some(b) = &progress.bar {
        b.finish_and_clear();
    }
    print_sweep(&a, &spec, &report, started.elapsed().as_secs_f64());
    let code = match report.failures.first() {
        Some(r) => report_failure(r, &a.world.out, a.world.shrink_budget),
        None => 0,
    };
    match &a.report {
        Some(path) => match write_sweep_report(path, &spec, &report, &a.world.out) {
            Ok(()) => {
                eprintln!("sweep report: {}", path.display());
                code
            }
            Err(e) => {
                eprintln!("pgmsim: {e}");
                2
            }
        },
        None => code,
    }
}

fn write_sweep_report(path: &Path, spec: &SweepSpec, r: &sweep::SweepReport, out: &Path) -> Result<(), String> {
    let summary = crate::report::SweepSummary {
        title: format!("pgmsim sweep {}..{}", spec.start, spec.end),
        what: format!(
            "seeds {}..{}{}, {} steps each",
            spec.start,
            spec.end,
            spec.shard.map(|(i, n)| format!(" shard {i}/{n}")).unwrap_or_default(),
            spec.steps
        ),
        seeds: r.seeds,
        steps: r.steps,
        invariant_checks: r.invariant_checks,
    };
    // Only the first failure is written out and shrunk (`report_failure`).
    let labels = ["trace", "minimised trace", "report"];
    let failures: Vec<crate::report::SweepFailure> = r
        .failures
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let files = labels
                .iter()
                .zip(failure_paths(f, out))
                .filter(|(_, p)| i == 0 && p.exists())
                .map(|(l, p)| (l.to_string(), super::report::href(path, &p)))
                .collect();
            Some(crate::report::SweepFailure {
                seed: f.seed,
                failure: f.failure.clone()?,
                files,
            })
        })
        .collect();
    super::report::write_sweep_report(path, &summary, &r.coverage, &failures)
}

fn print_sweep(a: &SweepArgs, spec: &SweepSpec, r: &sweep::SweepReport, secs: f64) {
    if a.json {
        let v = serde_json::json!({
            "seeds": r.seeds,
            "steps": r.steps,
            "accesses": r.accesses,
            "invariant_checks": r.invariant_checks,
            "failures": r.failures.len(),
            "failing_seeds": r.failures.iter().filter_map(|f| f.seed).collect::<Vec<_>>(),
            "combined_hash": format!("{:016x}", r.combined_hash),
            "seconds": secs,
            "coverage": r.coverage.to_json(),
        });
        println!("{v}");
        return;
    }
    println!(
        "sweep {}..{}{}: {} seeds, {} steps, {} accesses, {} invariant checks in {secs:.1}s ({:.0} steps/s on {} threads): {} failure(s)",
        spec.start,
        spec.end,
        spec.shard.map(|(i, k)| format!(" shard {i}/{k}")).unwrap_or_default(),
        r.seeds,
        r.steps,
        r.accesses,
        r.invariant_checks,
        r.steps as f64 / secs.max(1e-9),
        spec.jobs,
        r.failures.len()
    );
    print!("{}", crate::coverage::render(&r.coverage));
}

fn load_or_exit(path: &Path) -> Result<Trace, i32> {
    Trace::load(path).map_err(|e| {
        eprintln!("pgmsim: {e}");
        2
    })
}

/// `pgmsim replay`: a trace file, or a fuzz input converted to one.
pub(crate) fn replay(a: ReplayArgs) -> i32 {
    // With --fuzz, the converted trace is what `shrink` takes.
    let mut shrink_path = a.trace.clone();
    let trace = match &a.fuzz {
        Some(_) => {
            let bytes = match std::fs::read(&a.trace) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("pgmsim: {}: {e}", a.trace.display());
                    return 2;
                }
            };
            let t = crate::fuzzing::ops_differential_trace(&bytes);
            let out = a.output.clone().unwrap_or_else(|| a.trace.with_extension("trace.json"));
            if let Err(e) = t.save(&out) {
                eprintln!("pgmsim: {e}");
                return 2;
            }
            eprintln!("fuzz input converted to {} ({} steps)", out.display(), t.ops.len());
            shrink_path = out;
            t
        }
        None => match load_or_exit(&a.trace) {
            Ok(t) => t,
            Err(c) => return c,
        },
    };
    let check = a.check.map_or(trace.check, CheckMode::from);
    if let Err(code) = a.log.print(&trace, check) {
        return code;
    }
    let r = replay_trace(&trace, check);
    print_report(&r, a.json);
    if let Some(f) = &r.failure {
        eprintln!("FAILURE: {f}");
        eprintln!(
            "  shrink with: cargo run --release -p pgmsim-sim -- shrink {}",
            shrink_path.display()
        );
        return 1;
    }
    0
}

/// `pgmsim shrink`: minimise a failing trace.
pub(crate) fn shrink(a: ShrinkArgs) -> i32 {
    let trace = match load_or_exit(&a.trace) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let out = a.output.unwrap_or_else(|| {
        let stem = a
            .trace
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "trace".into());
        a.trace.with_file_name(format!("{stem}.min.json"))
    });
    match shrink_trace(&trace, a.budget) {
        None => {
            eprintln!(
                "pgmsim: {}: the trace does not fail when replayed; nothing to shrink",
                a.trace.display()
            );
            2
        }
        Some(s) => {
            if let Err(e) = s.trace.save(&out) {
                eprintln!("pgmsim: {e}");
                return 2;
            }
            println!(
                "{} steps -> {} steps ({} replays): {}",
                trace.ops.len(),
                s.trace.ops.len(),
                s.replays,
                s.trace.failure.as_ref().map(|f| f.to_string()).unwrap_or_default()
            );
            println!("written to {}", out.display());
            println!(
                "replay with: cargo run --release -p pgmsim-sim -- replay {}",
                out.display()
            );
            0
        }
    }
}
