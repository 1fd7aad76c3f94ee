//! `pgmsim explore`: every schedule of a small concurrent trace (or of a seed's operations)
//! with at most K preemptions; the first failing schedule written as a replayable trace and
//! shrunk. The search itself is `crate::conc::explore`.

use serde_json::{json, Value};

use super::args::ExploreArgs;
use super::commands::bad_input;
use super::exit;
use super::failure::{self, invariant_name, Written};
use super::out::{errln, outln};
use crate::check::CheckMode;
use crate::conc::explore::{explore as explore_trace, Exploration, ExploreSpec};
use crate::run::run_config;
use crate::trace::Trace;

/// `pgmsim explore`.
pub(crate) fn explore(a: ExploreArgs) -> i32 {
    let (trace, name) = match source(&a) {
        Ok(t) => t,
        Err(e) => return bad_input(&e),
    };
    let spec = ExploreSpec {
        max_preemptions: a.max_preemptions,
        max_schedules: a.max_schedules,
        check: a.world.check.into(),
    };
    let started = std::time::Instant::now();
    let found = match explore_trace(&trace, &spec) {
        Ok(f) => f,
        Err(e) => return bad_input(&format!("{name}: {e}")),
    };
    let secs = started.elapsed().as_secs_f64();
    let written = found.first_failure.as_ref().and_then(|r| {
        errln!("first failing schedule (#{}):", first_index(&found));
        failure::print(r);
        failure::write(r, &a.world.out, &format!("{name}-explore"), a.world.shrink_budget)
    });
    if a.json {
        outln!("{}", report_json(&a, &trace, &found, written.as_ref()));
        errln!("explored {} schedules in {secs:.1}s", found.schedules);
    } else {
        print_report(&a, &trace, &found, secs);
    }
    if found.failures > 0 {
        exit::FAILURE
    } else {
        exit::OK
    }
}

/// The trace to explore and the name its failure files take: TRACE as it is, or the
/// operations `run --seed S` runs (concurrency forced on).
fn source(a: &ExploreArgs) -> Result<(Trace, String), String> {
    match (&a.trace, a.seed) {
        (Some(path), None) => {
            if a.world.config.is_some() || a.world.has_overrides() {
                return Err("the world flags (--config, --vcpus, --shootdown, ...) apply to --seed only: a trace keeps its own configuration".into());
            }
            let t = Trace::load(path).map_err(|e| e.to_string())?;
            if t.config.concurrency.is_none() {
                return Err(format!(
                    "{} is a sequential trace: explore varies the schedule of a concurrent one",
                    path.display()
                ));
            }
            let stem = path
                .file_stem()
                .map_or("trace".into(), |s| s.to_string_lossy().to_string());
            Ok((t, stem))
        }
        (None, Some(seed)) => {
            if a.world.concurrency == Some(false) {
                return Err("explore varies schedules of concurrent worlds: --concurrency off leaves none".into());
            }
            let mut world = a.world.clone();
            world.concurrency = Some(true);
            let config = world.base_config().and_then(|base| world.config_for(seed, &base))?;
            let check: CheckMode = a.world.check.into();
            let r = run_config(seed, config, a.world.steps as usize, check);
            Ok((r.trace(), format!("seed-{seed}")))
        }
        _ => Err("give a concurrent TRACE or --seed S (with --steps N, kept small)".into()),
    }
}

/// The number (from 0, in exploration order) of the first failing schedule.
fn first_index(found: &Exploration) -> u64 {
    found.signatures.iter().map(|s| s.first_schedule).min().unwrap_or(0)
}

/// The human report: what was explored, by preemption count, what failed.
fn print_report(a: &ExploreArgs, trace: &Trace, found: &Exploration, secs: f64) {
    let threads = trace
        .threads
        .as_ref()
        .map_or(0, |t| t.iter().collect::<std::collections::BTreeSet<_>>().len());
    let by: Vec<String> = found
        .by_preemptions
        .iter()
        .enumerate()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    outln!(
        "explore: {} operations on {threads} threads, schedules with at most {} preemption(s)",
        trace.ops.len(),
        a.max_preemptions
    );
    outln!(
        "schedules explored: {} in {secs:.1}s (by preemptions {}); {} distinct trace hashes; combined hash {:016x}",
        found.schedules,
        by.join(", "),
        found.distinct_trace_hashes,
        found.combined_hash
    );
    if !found.complete {
        outln!(
            "the bound --max-schedules {} cut the search: schedules within the preemption bound were left unexplored",
            a.max_schedules
        );
    }
    outln!(
        "failures: {} schedule(s), {} distinct signature(s)",
        found.failures,
        found.signatures.len()
    );
    for s in &found.signatures {
        outln!(
            "  {}: {} schedule(s), first #{} ({} preemption(s))",
            s.signature,
            s.schedules,
            s.first_schedule,
            s.preemptions
        );
    }
}

/// The `--json` report: only what the trace and the bounds determine (no timing), so two
/// explorations of the same trace print the same bytes (documented in `docs/json.md`).
fn report_json(a: &ExploreArgs, trace: &Trace, found: &Exploration, written: Option<&Written>) -> Value {
    let signatures: Vec<Value> = found
        .signatures
        .iter()
        .map(|s| {
            json!({
                "signature": s.signature,
                "schedules": s.schedules,
                "first_schedule": s.first_schedule,
                "preemptions": s.preemptions,
            })
        })
        .collect();
    let first = found.first_failure.as_ref().and_then(|r| r.failure.as_ref()).map(|f| {
        json!({
            "schedule": first_index(found),
            "invariant": invariant_name(f.invariant),
            "step": f.step,
            "detail": f.detail,
            "trace": written.map(|w| w.trace.display().to_string()),
            "trace_steps": written.map(|w| w.steps),
            "minimised": written.and_then(|w| w.minimised.as_ref()).map(|m| m.0.display().to_string()),
            "minimised_steps": written.and_then(|w| w.minimised.as_ref()).map(|m| m.1),
        })
    });
    json!({
        "trace": a.trace.as_ref().map(|p| p.display().to_string()),
        "seed": a.seed,
        "operations": trace.ops.len(),
        "max_preemptions": a.max_preemptions,
        "max_schedules": a.max_schedules,
        "schedules": found.schedules,
        "by_preemptions": found.by_preemptions,
        "complete": found.complete,
        "failures": found.failures,
        "signatures": signatures,
        "first_failure": first,
        "distinct_trace_hashes": found.distinct_trace_hashes,
        "combined_hash": format!("{:016x}", found.combined_hash),
    })
}
