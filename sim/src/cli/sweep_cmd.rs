//! `pgmsim sweep`: a range of seeds on all cores; one trace (and its minimised form) per
//! distinct failure signature; a JSON report identical for any `--jobs`.

use serde_json::{json, Value};

use super::args::SweepArgs;
use super::commands::bad_input;
use super::exit;
use super::failure::{self, invariant_name, Written};
use super::out::{errln, outln};
use super::progress::SweepProgress;
use crate::sweep::{self, SweepReport, SweepSpec};

/// `pgmsim sweep`.
pub(crate) fn sweep(a: SweepArgs) -> i32 {
    let base = match a.world.base_config() {
        Ok(b) => b,
        Err(e) => return bad_input(&e),
    };
    let spec = SweepSpec {
        start: a.seeds.0,
        end: a.seeds.1,
        shard: a.shard,
        jobs: a
            .jobs
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        keep_going: a.keep_going,
        steps: a.world.steps,
        check: a.world.check.into(),
        max_time: a.time.max_time,
        seed_hashes: a.seed_hashes,
    };
    a.time.step.install();
    // A flag combination no seed can use is reported before any seed runs.
    if let Err(e) = a.world.config_for(spec.seed(0), &base) {
        return bad_input(&e);
    }
    let progress = SweepProgress::new(spec.len(), a.json);
    let started = std::time::Instant::now();
    let report = sweep::sweep(&spec, &|seed| a.world.config_for(seed, &base), &progress);
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    if let Some((seed, e)) = &report.config_error {
        return bad_input(&format!("the sweep stopped before seed {seed}: {e}"));
    }
    let written = write_failures(&a, &report);
    if a.json {
        outln!("{}", report_json(&spec, &report, &written));
        errln!("swept {} seeds in {secs:.1}s", report.seeds);
    } else {
        print_line(&spec, &report, secs);
        outln!("{}", crate::coverage::render(&report.coverage).trim_end());
    }
    if let Some(path) = &a.report {
        match write_sweep_report(path, &spec, &report, &written) {
            Ok(()) => errln!("sweep report: {}", path.display()),
            Err(e) => return bad_input(&e),
        }
    }
    if report.failures.is_empty() {
        exit::OK
    } else {
        exit::FAILURE
    }
}

/// `--report`: the sweep's HTML page (coverage tables, failures with links to the files
/// written for their signature).
fn write_sweep_report(
    path: &std::path::Path,
    spec: &SweepSpec,
    r: &SweepReport,
    written: &[Option<Written>],
) -> Result<(), String> {
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
    let files_of = |seed: u64| -> Vec<(String, String)> {
        let found = r
            .representatives
            .iter()
            .zip(written)
            .find(|(rep, _)| rep.run.seed == Some(seed));
        let Some((_, Some(w))) = found else {
            return Vec::new();
        };
        let mut files = vec![("trace".to_string(), w.trace.clone())];
        if let Some((min, _)) = &w.minimised {
            files.push(("minimised trace".to_string(), min.clone()));
            files.push(("report".to_string(), min.with_extension("html")));
        }
        files
            .into_iter()
            .filter(|(_, p)| p.exists())
            .map(|(l, p)| (l, super::report::href(path, &p)))
            .collect()
    };
    let failures: Vec<crate::report::SweepFailure> = r
        .failures
        .iter()
        .map(|f| crate::report::SweepFailure {
            seed: Some(f.seed),
            failure: f.failure.clone(),
            files: files_of(f.seed),
        })
        .collect();
    super::report::write_sweep_report(path, &summary, &r.coverage, &failures)
}

/// One trace and its minimised form per failure signature (the signature's first seed).
fn write_failures(a: &SweepArgs, report: &SweepReport) -> Vec<Option<Written>> {
    report
        .representatives
        .iter()
        .map(|rep| {
            errln!("signature {} ({} failing seed(s)):", rep.signature, rep.count);
            failure::print(&rep.run);
            let name = format!("seed-{}", rep.run.seed.unwrap_or_default());
            failure::write(&rep.run, &a.world.out, &name, a.world.shrink_budget)
        })
        .collect()
}

/// The `--json` report: only what the seeds determine (no timing, no thread count), so it
/// is byte-identical for any `--jobs` (documented in `docs/json.md`).
fn report_json(spec: &SweepSpec, r: &SweepReport, written: &[Option<Written>]) -> Value {
    let failing: Vec<Value> = r
        .failures
        .iter()
        .map(|f| {
            json!({
                "seed": f.seed,
                "signature": f.signature,
                "invariant": invariant_name(f.failure.invariant),
                "step": f.failure.step,
                "detail": f.failure.detail,
            })
        })
        .collect();
    let signatures: Vec<Value> = r
        .representatives
        .iter()
        .zip(written)
        .map(|(rep, w)| {
            json!({
                "signature": rep.signature,
                "seeds": rep.count,
                "first_seed": rep.run.seed,
                "trace": w.as_ref().map(|w| w.trace.display().to_string()),
                "trace_steps": w.as_ref().map(|w| w.steps),
                "minimised": w.as_ref().and_then(|w| w.minimised.as_ref()).map(|m| m.0.display().to_string()),
                "minimised_steps": w.as_ref().and_then(|w| w.minimised.as_ref()).map(|m| m.1),
            })
        })
        .collect();
    let mut v = json!({
        "range": format!("{}..{}", spec.start, spec.end),
        "shard": spec.shard.map(|(i, n)| format!("{i}/{n}")),
        "steps_per_seed": spec.steps,
        "check": spec.check,
        "seeds": r.seeds,
        "complete": r.complete,
        "steps": r.steps,
        "accesses": r.accesses,
        "invariant_checks": r.invariant_checks,
        "failures": r.failures.len(),
        "failing_seeds": r.failing_seeds(),
        "failing": failing,
        "signatures": signatures,
        "combined_hash": format!("{:016x}", r.combined_hash),
        "coverage": r.coverage.to_json(),
    });
    if spec.seed_hashes {
        v["seed_hashes"] = r
            .seed_hashes
            .iter()
            .map(|&(seed, h)| json!({"seed": seed, "trace_hash": format!("{h:016x}")}))
            .collect();
    }
    v
}

fn print_line(spec: &SweepSpec, r: &SweepReport, secs: f64) {
    outln!(
        "sweep {}..{}{}: {} seeds{}, {} steps, {} accesses, {} invariant checks in {secs:.1}s ({:.0} steps/s on {} threads): {} failure(s), {} signature(s); combined hash {:016x}",
        spec.start,
        spec.end,
        spec.shard.map(|(i, k)| format!(" shard {i}/{k}")).unwrap_or_default(),
        r.seeds,
        if r.complete { "" } else { " (stopped by --max-time: incomplete)" },
        r.steps,
        r.accesses,
        r.invariant_checks,
        r.steps as f64 / secs.max(1e-9),
        spec.jobs,
        r.failures.len(),
        r.representatives.len(),
        r.combined_hash
    );
}
