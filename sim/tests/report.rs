//! Step logs and HTML reports of committed traces, sequential and concurrent (one lane per
//! thread, from the replayed schedule):
//! structure checks that need no browser (`.ci/browser-check.sh` renders the same report in
//! headless Chromium).

use std::path::PathBuf;

use pgmsim_sim::observe::Observation;
use pgmsim_sim::report::trace_report;
use pgmsim_sim::{replay, steplog, CheckMode, Invariant, Trace};

fn failing_trace() -> Trace {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/traces/failing/forgotten-tlb-flush-realias.json");
    Trace::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The JSON the report's script reads.
fn report_data(html: &str) -> serde_json::Value {
    let start = html
        .find("<script type=\"application/json\" id=\"report-data\">")
        .expect("data element");
    let body = &html[start..];
    let open = body.find('>').unwrap() + 1;
    let close = body.find("</script>").unwrap();
    serde_json::from_str(&body[open..close].replace("<\\/", "</")).expect("report data is JSON")
}

#[test]
fn observing_meets_the_same_failure_as_replay() {
    let trace = failing_trace();
    let r = replay(&trace, trace.check);
    let obs = Observation::of(&trace, trace.check).expect("a sequential trace");
    let (a, b) = (
        r.failure.expect("the trace fails"),
        obs.failure.clone().expect("observed").failure,
    );
    assert_eq!(a, b);
    assert_eq!(a.invariant, Invariant::TranslationSafety);
    assert_eq!(obs.failing_step(), Some(5));
    assert_eq!(obs.steps.len(), trace.ops.len());
}

#[test]
fn the_step_log_shows_operations_results_events_and_pages_in_hex() {
    let trace = failing_trace();
    let obs = Observation::of(&trace, trace.check).expect("a sequential trace");
    let log = steplog::render(&obs, 0, usize::MAX);
    for needle in [
        "step 0: register 0x000b2000-0x000b3fff type #4",
        "result: Success",
        "events: update PTEs 0x000b2000 -> A",
        "pages: pages 0x000b2000-0x000b3fff (2): state . -> A",
        "+ handler 0x000b2000-0x000b3fff Mmio",
        "page  0x000b2000: state A -> d, type m -> a",
        "step 5: page_alias_mmio2 handler 0x000b2000 page 0x000b218f MMIO2 #3",
        "flush all TLBs",
        "FAILED at step 5: invariant TranslationSafety",
        "expected vs actual: vCPU 0 TLB entry",
        "production (actual):",
        "model (expected):",
    ] {
        assert!(log.contains(needle), "missing {needle:?} in\n{log}");
    }
    let part = steplog::render(&obs, 2, 3);
    assert!(part.contains("step 2: read") && part.contains("step 3: map"), "{part}");
    assert!(!part.contains("step 1:") && !part.contains("step 4:"), "{part}");
    assert!(
        part.contains("FAILED at step 5"),
        "a limited log still ends with the failure"
    );
}

#[test]
fn the_report_is_one_self_contained_file_with_timeline_operations_and_failure() {
    let trace = failing_trace();
    let obs = Observation::of(&trace, trace.check).expect("a sequential trace");
    let html = trace_report(&obs, "failing trace");
    assert!(html.starts_with("<!DOCTYPE html>"));
    for external in ["<script src", "<link", "http://", "https://", "@import", "url("] {
        assert!(!html.contains(external), "the report must not load {external:?}");
    }
    for id in [
        "id=\"report-status\"",
        "id=\"timeline-canvas\"",
        "id=\"ops\"",
        "id=\"step-details\"",
        "id=\"failure\" data-step=\"5\"",
        "id=\"map-production\"",
        "id=\"map-model\"",
        "window.onerror",
    ] {
        assert!(html.contains(id), "missing {id}");
    }
    let data = report_data(&html);
    assert_eq!(data["steps"], 6);
    assert_eq!(data["ops"].as_array().unwrap().len(), 6);
    assert_eq!(data["failure"]["step"], 5);
    assert_eq!(data["failure"]["invariant"], "TranslationSafety");
    let rows = data["rows"].as_array().unwrap();
    let addrs: Vec<&str> = rows.iter().map(|r| r["a"].as_str().unwrap()).collect();
    assert_eq!(addrs, ["0x000b2000", "0x000b3000"], "only the pages that changed");
    // Page 0x000b2000: none, All from step 0, then an MMIO2 alias (d, 'a') from step 2.
    assert_eq!(rows[0]["s"], 0);
    assert_eq!(rows[0]["ch"], serde_json::json!([[0, 3, "m"], [2, 1, "a"]]));
    let bands = data["bands"].as_array().unwrap();
    assert_eq!(bands.len(), 1);
    assert_eq!(
        (bands[0]["r0"].clone(), bands[0]["r1"].clone(), bands[0]["f"].clone()),
        (0.into(), 1.into(), 0.into())
    );
    assert!(data["lanes"].is_null());
    let op5 = &data["ops"][5];
    assert_eq!(op5[2], 8, "the failing step is classed as failed");
}

fn trace_at(rel: &str) -> Trace {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    Trace::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A passing concurrent trace (2 vCPUs, 1 device thread, synchronous shootdowns, an access
/// inline in a deregistration) and a failing one (a platform that forgets TLB flushes: the
/// harvest leaves a writable TLB entry to a clean tracked page).
const PASSING_CONCURRENT: &str = "tests/traces/concurrent-seed-19.json";
const FAILING_CONCURRENT: &str = "tests/traces/failing/concurrent-forgotten-flush-dirty-log.json";

#[test]
fn observing_a_concurrent_trace_changes_nothing_and_meets_the_same_failure() {
    for rel in [PASSING_CONCURRENT, FAILING_CONCURRENT] {
        let trace = trace_at(rel);
        let r = replay(&trace, trace.check);
        let obs = Observation::of(&trace, trace.check).expect("observed");
        let lanes = obs.lanes.as_ref().expect("a concurrent trace has lanes");
        assert_eq!(lanes.trace_hash, r.trace_hash, "{rel}: the observer changed the run");
        assert_eq!(Some(r.trace_hash), trace.trace_hash, "{rel}: recorded hash");
        assert_eq!(r.failure, obs.failure.as_ref().map(|f| f.failure.clone()), "{rel}");
        assert_eq!(obs.steps.len(), trace.ops.len(), "{rel}");
        assert_eq!(lanes.threads, 3);
        let owners = trace.threads.clone().unwrap();
        for (i, s) in obs.steps.iter().enumerate() {
            assert_eq!(s.thread, Some(owners[i]), "{rel}: step {i}'s thread");
        }
    }
    let obs = Observation::of(&trace_at(FAILING_CONCURRENT), CheckMode::Incremental).unwrap();
    assert_eq!(obs.failing_step(), Some(3), "the harvest fails");
    assert!(obs.steps[3].result.is_none() && obs.steps[2].result.is_some());
}

/// `[thread, x0, x1, ...]` intervals of the lanes data, per thread.
fn intervals(v: &serde_json::Value, x0: usize) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new(); 3];
    for i in v.as_array().unwrap() {
        let t = i[0].as_u64().unwrap() as usize;
        out[t].push((i[x0].as_f64().unwrap(), i[x0 + 1].as_f64().unwrap()));
    }
    out
}

#[test]
fn a_concurrent_report_has_one_lane_per_thread_with_lock_intervals() {
    let trace = trace_at(PASSING_CONCURRENT);
    let obs = Observation::of(&trace, trace.check).unwrap();
    let html = trace_report(&obs, "concurrent");
    assert!(html.contains("data-lanes=\"3\""));
    let data = report_data(&html);
    let lanes = &data["lanes"];
    assert_eq!(lanes["threads"], 3);
    assert_eq!(lanes["names"], serde_json::json!(["vCPU 0", "vCPU 1", "device 2"]));
    let steps = trace.ops.len() as f64;
    let locks = intervals(&lanes["locks"], 1);
    let mut all: Vec<(f64, f64)> = locks.iter().flatten().copied().collect();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for (t, l) in locks.iter().enumerate() {
        assert!(!l.is_empty(), "thread {t} held the lock at some point");
        let ops = obs.steps.iter().filter(|s| s.thread == Some(t as u8)).count();
        let row = format!(
            "<tr class=\"lane\" data-thread=\"{t}\" data-ops=\"{ops}\" data-locks=\"{}\">",
            l.len()
        );
        assert!(html.contains(&row), "missing {row}");
    }
    for w in all.windows(2) {
        assert!(w[0].0 <= w[0].1 && w[0].1 <= steps, "{w:?}");
        assert!(w[0].1 <= w[1].0, "the PGM lock is held by one thread at a time: {w:?}");
    }
    // Operations line up with the timeline: step k begins at k, on its own thread's lane.
    let owners = trace.threads.clone().unwrap();
    for op in lanes["ops"].as_array().unwrap() {
        let (t, k) = (op[0].as_u64().unwrap(), op[1].as_u64().unwrap());
        assert_eq!(t, u64::from(owners[k as usize]));
        assert_eq!(op[2].as_f64().unwrap(), k as f64);
        assert!(op[3].as_f64().unwrap() > op[2].as_f64().unwrap() && op[4] == 1);
    }
    let kinds: Vec<u64> = lanes["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_u64().unwrap())
        .collect();
    for (kind, what) in [
        (0, "inline step"),
        (1, "own step"),
        (2, "flush-wait step"),
        (3, "acknowledgement"),
        (4, "shootdown"),
        (5, "preemption"),
    ] {
        assert!(kinds.contains(&kind), "no {what} mark");
    }
    assert!(data["ops"][0][0].as_str().unwrap().starts_with("[device 2] register"));
}

#[test]
fn a_failing_concurrent_report_and_step_log_show_the_failure_and_the_threads() {
    let trace = trace_at(FAILING_CONCURRENT);
    let obs = Observation::of(&trace, trace.check).unwrap();
    let data = report_data(&trace_report(&obs, "failing concurrent"));
    assert_eq!(data["failure"]["step"], 3);
    assert_eq!(data["failure"]["invariant"], "DirtyLog");
    assert_eq!(data["ops"][3][2], 8, "the failing step is classed as failed");
    let log = steplog::render(&obs, 0, usize::MAX);
    let expected = [
        "threads: vCPU 0, vCPU 1, device 2; 15 scheduler decisions",
        "[d0] step 0 begins on vCPU 0: write vCPU 0 va 0x400031d39e size 1",
        "[d1] preemption: vCPU 1 runs, vCPU 0 could have gone on",
        "[d1]   vCPU 1 takes the PGM lock (step 1)",
        "[d1]   vCPU 1 releases the PGM lock (step 1)",
        "[d3] vCPU 0 walks the tables after a TLB miss (step 0)",
        "[d4] step 0 ends on vCPU 0: write",
        "  result: trapped at gp 0x10000839e",
        "  pages: page  0x100008000: state W -> d",
        "[d11] step 3 begins on device 2: harvest dirty tracker #0",
        "[d15]   device 2 releases the PGM lock (step 3)",
        "step 3 on device 2: harvest dirty tracker #0\n  result: FAILED (below)",
        "  events: update PTEs 0x100008000 -> W",
        "FAILED at step 3: invariant DirtyLog",
        "expected vs actual: vCPU 0 TLB entry",
        "production (actual):",
        "model (expected):",
    ];
    let mut at = 0;
    for needle in expected {
        let found = log[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("missing {needle:?} (in order) in\n{log}"));
        at += found;
    }
    let part = steplog::render(&obs, 1, 1);
    assert!(
        part.contains("step 1 begins on vCPU 1") && part.contains("step 1 ends"),
        "{part}"
    );
    assert!(
        !part.contains("step 0 begins") && !part.contains("step 3 begins"),
        "{part}"
    );
    assert!(
        part.contains("FAILED at step 3"),
        "a limited log still ends with the failure"
    );
}

#[test]
fn a_concurrent_step_log_shows_inline_steps_and_shootdown_waits_where_they_happened() {
    let trace = trace_at(PASSING_CONCURRENT);
    let obs = Observation::of(&trace, trace.check).unwrap();
    let log = steplog::render(&obs, 0, usize::MAX);
    let dereg = log.find("step 12 begins on device 2: deregister").expect("step 12");
    let inline = log
        .find("  inline in step 12 of device 2: vCPU 1 walks the tables")
        .expect("inline step");
    let end = log.find("step 12 ends on device 2").expect("step 12 ends");
    assert!(
        dereg < inline && inline < end,
        "the inline step is inside step 12:\n{log}"
    );
    assert!(log.contains("device 2 requests a TLB shootdown (step 0); vCPU 0, vCPU 1 must acknowledge"));
    assert!(log.contains("  while step 0 of device 2 waits for its shootdown: vCPU 0 exits and acknowledges"));
    assert!(log.ends_with("every invariant held\n"), "{log}");
}

#[test]
fn a_passing_trace_reports_no_failure() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/traces/nem-seed-12.json");
    let trace = Trace::load(&path).unwrap();
    let obs = Observation::of(&trace, trace.check).expect("a sequential trace");
    assert!(obs.failure.is_none());
    let html = trace_report(&obs, "passing");
    assert!(!html.contains("id=\"failure\""));
    let data = report_data(&html);
    assert!(data["failure"].is_null());
    assert!(!data["rows"].as_array().unwrap().is_empty());
    assert!(steplog::render(&obs, 0, 3).ends_with("every invariant held\n"));
}

#[test]
fn observing_generated_concurrent_runs_keeps_their_trace_hashes() {
    use pgmsim_sim::conc::Shootdown;
    for seed in 0..8u64 {
        let mut ov = pgmsim_sim::Overrides::default();
        ov.concurrency.enabled = Some(true);
        if seed % 2 == 1 {
            ov.concurrency.shootdown = Some(Shootdown::Async);
        }
        let r = pgmsim_sim::run_seed(seed, 120, &ov, CheckMode::Incremental);
        let trace = r.trace();
        let obs = Observation::of(&trace, CheckMode::Incremental).unwrap();
        let lanes = obs.lanes.as_ref().expect("lanes");
        assert_eq!(
            lanes.trace_hash, r.trace_hash,
            "seed {seed}: the observer changed the run"
        );
        assert_eq!(obs.failure.is_some(), r.failure.is_some(), "seed {seed}");
        let begun = lanes
            .events
            .iter()
            .filter(|e| matches!(e.mark, pgmsim_sim::conc::timeline::Mark::Begin { .. }))
            .count();
        assert_eq!(begun, trace.ops.len(), "seed {seed}: every operation began once");
    }
}
