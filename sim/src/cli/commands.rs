//! What `config`, `run`, `replay` and `shrink` do with their arguments: call the library,
//! print, pick the exit code (see [`super::exit`]).

use std::path::Path;

use serde_json::json;

use super::args::{ConfigArgs, ReplayArgs, RunArgs, ShrinkArgs};
use super::exit;
use super::failure;
use super::out::{errln, outln};
use super::progress::StepProgress;
use crate::check::CheckMode;
use crate::op::Op;
use crate::run::watchdog::declared_by_watchdog;
use crate::run::{replay_watched, run_generated_watched, Deadline, Observer, RunReport, Stop};
use crate::shrink::shrink as shrink_trace;
use crate::trace::{Trace, TraceError, TraceWriter};

/// `pgmsim config`: the world of a seed as JSON.
pub(crate) fn config(a: ConfigArgs) -> i32 {
    let config = match a.world.base_config().and_then(|base| a.world.config_for(a.seed, &base)) {
        Ok(c) => c,
        Err(e) => return bad_input(&e),
    };
    outln!(
        "{}",
        serde_json::to_string_pretty(&config).expect("configurations serialise")
    );
    exit::OK
}

/// Prints a bad-input message; exit code 2.
pub(crate) fn bad_input(message: &str) -> i32 {
    errln!("pgmsim: {message}");
    exit::BAD_INPUT
}

/// The human one-line report of a run or replay.
fn print_line(r: &RunReport) {
    let s = &r.stats;
    let status = match (&r.failure, r.stopped) {
        (Some(_), _) => "FAILED".to_string(),
        (None, Some(Stop::MaxTime)) => "ok so far (stopped by --max-time)".into(),
        (None, Some(Stop::Output)) => "stopped (the trace file could not be written)".into(),
        (None, None) => "ok".into(),
    };
    outln!(
        "{}: {} steps, {} accesses ({} TLB hits, {} misses, {} shadow syncs), {} handler calls, {} guest faults, {} invariant checks ({} full), trace hash {:016x}: {status}",
        r.seed.map(|s| format!("seed {s}")).unwrap_or_else(|| "trace".into()),
        r.steps,
        s.accesses,
        s.tlb_hits,
        s.tlb_misses,
        s.shadow_syncs,
        s.handler_calls,
        s.guest_faults,
        s.invariant_checks,
        s.full_checks,
        r.trace_hash,
    );
}

/// Streams each step into a trace file; a write error stops the run.
struct SaveTrace {
    writer: Option<TraceWriter>,
    error: Option<TraceError>,
}

impl Observer for SaveTrace {
    fn applied(&mut self, op: &Op) -> Result<(), Stop> {
        let Some(w) = &mut self.writer else { return Ok(()) };
        if let Err(e) = w.op(op) {
            self.error = Some(e);
            self.writer = None;
            return Err(Stop::Output);
        }
        Ok(())
    }
}

impl SaveTrace {
    /// Finishes the file; the error, if anything went wrong.
    fn finish(self, r: &RunReport) -> Result<(), TraceError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.writer {
            Some(mut w) => {
                if r.config.concurrency.is_some() {
                    let t = r.trace();
                    w.set_concurrency(&t);
                }
                w.finish(r.failure.as_ref(), Some(r.trace_hash))
            }
            None => Ok(()),
        }
    }
}

/// `pgmsim run`: one seed, its trace streamed to `--save-trace`, nothing kept in memory.
pub(crate) fn run(a: RunArgs) -> i32 {
    let config = match a.world.base_config().and_then(|base| a.world.config_for(a.seed, &base)) {
        Ok(c) => c,
        Err(e) => return bad_input(&e),
    };
    if !a.json {
        outln!("seed {}: {}", a.seed, config.summary());
    }
    let check: CheckMode = a.world.check.into();
    let writer = match &a.save_trace {
        Some(path) => match TraceWriter::create(path, Some(a.seed), check, &config) {
            Ok(w) => Some(w),
            Err(e) => return bad_input(&e.to_string()),
        },
        None => None,
    };
    a.time.step.install();
    let save = SaveTrace { writer, error: None };
    let progress = StepProgress::new(a.world.steps, a.json);
    let observer = (save, (Deadline::after(a.time.max_time), progress));
    let (r, observer) = run_generated_watched(a.seed, config, a.world.steps, check, observer);
    match observer {
        Some((save, (_, progress))) => {
            progress.finish();
            if let Err(e) = save.finish(&r) {
                return bad_input(&e.to_string());
            }
        }
        // A step hung: the streamed file stays with the abandoned thread; write it whole.
        None => {
            if let Some(path) = &a.save_trace {
                if let Err(e) = r.trace().save(path) {
                    return bad_input(&e.to_string());
                }
            }
        }
    }
    if !r.failure.as_ref().is_some_and(declared_by_watchdog) {
        if let Err(code) = a.log.print(&r.trace(), r.check) {
            return code;
        }
    }
    print_report(&r, a.json, None);
    if !a.json {
        outln!("{}", crate::coverage::render(&r.stats.coverage).trim_end());
    }
    if r.failure.is_some() {
        failure::print(&r);
        failure::write(&r, &a.world.out, &format!("seed-{}", a.seed), a.world.shrink_budget);
        return exit::FAILURE;
    }
    if r.stopped == Some(Stop::MaxTime) {
        errln!(
            "pgmsim: stopped by --max-time after {} of {} steps; every step that ran passed",
            r.steps,
            a.world.steps
        );
    }
    exit::OK
}

/// Prints a run's report: one JSON object (with `extra` fields merged in) or one line.
fn print_report(r: &RunReport, json: bool, extra: Option<serde_json::Value>) {
    if !json {
        print_line(r);
        return;
    }
    let mut v = serde_json::to_value(r.summary()).expect("summaries serialise");
    v["coverage"] = r.stats.coverage.to_json();
    if let (Some(obj), Some(serde_json::Value::Object(more))) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    outln!("{v}");
}

fn load_or_exit(path: &Path) -> Result<Trace, i32> {
    Trace::load(path).map_err(|e| bad_input(&e.to_string()))
}

/// With `--fuzz`: the input converted to a trace, written next to it; the path `shrink` takes.
fn fuzz_trace(a: &ReplayArgs) -> Result<(Trace, std::path::PathBuf), i32> {
    let bytes = std::fs::read(&a.trace).map_err(|e| bad_input(&format!("{}: {e}", a.trace.display())))?;
    let t = crate::fuzzing::ops_differential_trace(&bytes);
    let out = a.output.clone().unwrap_or_else(|| a.trace.with_extension("trace.json"));
    t.save(&out).map_err(|e| bad_input(&e.to_string()))?;
    errln!("fuzz input converted to {} ({} steps)", out.display(), t.ops.len());
    Ok((t, out))
}

/// `pgmsim replay`: a trace file, or a fuzz input converted to one. Reports drift of the
/// trace hash the file records.
pub(crate) fn replay(a: ReplayArgs) -> i32 {
    let loaded = match &a.fuzz {
        Some(_) => fuzz_trace(&a),
        None => load_or_exit(&a.trace).map(|t| (t, a.trace.clone())),
    };
    let (mut trace, shrink_path) = match loaded {
        Ok(x) => x,
        Err(code) => return code,
    };
    if let Some(s) = a.shootdown {
        let Some(c) = trace.config.concurrency.as_mut() else {
            return bad_input(&format!(
                "{}: --shootdown applies to concurrent traces; this one is sequential",
                a.trace.display()
            ));
        };
        if c.shootdown != s.protocol() {
            c.shootdown = s.protocol();
            // Another protocol is another run: the recorded hash and failure say nothing
            // about it.
            trace.trace_hash = None;
            trace.failure = None;
        }
    }
    let check = a.check.map_or(trace.check, CheckMode::from);
    if trace.failure.as_ref().is_some_and(declared_by_watchdog) {
        // The step log replays unwatched; this trace would hang it.
        errln!("note: the trace records a hang the watchdog declared; no step log (the replay below is watched)");
    } else if let Err(code) = a.log.print(&trace, check) {
        return code;
    }
    a.time.step.install();
    let progress = StepProgress::new(trace.ops.len() as u64, a.json);
    let (r, observer) = replay_watched(&trace, check, (Deadline::after(a.time.max_time), progress));
    if let Some((_, progress)) = observer {
        progress.finish();
    }
    let drift = trace
        .trace_hash
        .filter(|&h| r.steps == trace.ops.len() as u64 && h != r.trace_hash);
    let extra = json!({
        "recorded_trace_hash": trace.trace_hash.map(|h| format!("{h:016x}")),
        "hash_drift": drift.is_some(),
    });
    print_report(&r, a.json, Some(extra));
    if r.failure.is_some() {
        failure::print(&r);
        failure::hint("minimise", &format!("shrink {}", shrink_path.display()));
        return exit::FAILURE;
    }
    if let Some(recorded) = drift {
        errln!(
            "pgmsim: trace hash drift: {} records {recorded:016x}, this build replays {:016x}: the simulator's behaviour changed since the trace was written",
            a.trace.display(),
            r.trace_hash
        );
        return exit::FAILURE;
    }
    if r.stopped == Some(Stop::MaxTime) {
        errln!(
            "pgmsim: stopped by --max-time after {} of {} steps: the trace was not replayed completely",
            r.steps,
            trace.ops.len()
        );
        return exit::INCOMPLETE;
    }
    if let Some(f) = &trace.failure {
        errln!("note: the trace records a failure ({f}) that no longer happens");
    }
    exit::OK
}

/// `pgmsim shrink`: minimise a failing trace.
pub(crate) fn shrink(a: ShrinkArgs) -> i32 {
    let trace = match load_or_exit(&a.trace) {
        Ok(t) => t,
        Err(c) => return c,
    };
    a.step.install();
    let out = a.output.unwrap_or_else(|| {
        let stem = a
            .trace
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "trace".into());
        a.trace.with_file_name(format!("{stem}.min.json"))
    });
    let Some(s) = shrink_trace(&trace, a.budget) else {
        return bad_input(&format!(
            "{}: the trace does not fail when replayed; nothing to shrink",
            a.trace.display()
        ));
    };
    if let Err(e) = s.trace.save(&out) {
        return bad_input(&e.to_string());
    }
    let f = s.trace.failure.as_ref().expect("a shrunk trace fails");
    outln!(
        "{} steps -> {} steps ({} replays): invariant {} {}",
        trace.ops.len(),
        s.trace.ops.len(),
        s.replays,
        failure::invariant_name(f.invariant),
        failure::where_(f, s.trace.ops.len() as u64)
    );
    outln!("written to {}", out.display());
    failure::hint("replay", &format!("replay {}", out.display()));
    exit::OK
}
