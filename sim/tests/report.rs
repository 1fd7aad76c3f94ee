//! Step logs and HTML reports of a committed failing trace, and the lanes of concurrency data:
//! structure checks that need no browser (`.ci/browser-check.sh` renders the same report in
//! headless Chromium).

use std::path::PathBuf;

use pgmsim_sim::observe::Observation;
use pgmsim_sim::report::{trace_report, LaneData};
use pgmsim_sim::{replay, steplog, Invariant, Trace};

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
    let html = trace_report(&obs, "failing trace", None);
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

#[test]
fn lanes_render_when_concurrency_data_is_given() {
    let trace = failing_trace();
    let obs = Observation::of(&trace, trace.check).expect("a sequential trace");
    let lanes = LaneData {
        threads: 2,
        per_step: vec![(0, true), (0, false), (1, true), (1, true), (0, false), (1, true)],
    };
    lanes.validate(trace.ops.len()).expect("fits the trace");
    let html = trace_report(&obs, "lanes", Some(&lanes));
    assert!(html.contains("data-lanes=\"2\""));
    let data = report_data(&html);
    assert_eq!(data["lanes"]["threads"], 2);
    assert_eq!(data["lanes"]["per_step"][2], serde_json::json!([1, true]));
    let short = LaneData {
        threads: 2,
        per_step: vec![(0, false)],
    };
    assert!(short.validate(6).unwrap_err().contains("1 entries"));
    let bad_thread = LaneData {
        threads: 1,
        per_step: vec![(0, false), (3, true)],
    };
    assert!(bad_thread.validate(2).unwrap_err().contains("thread 3"));
}

#[test]
fn a_passing_trace_reports_no_failure() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/traces/nem-seed-12.json");
    let trace = Trace::load(&path).unwrap();
    let obs = Observation::of(&trace, trace.check).expect("a sequential trace");
    assert!(obs.failure.is_none());
    let html = trace_report(&obs, "passing", None);
    assert!(!html.contains("id=\"failure\""));
    let data = report_data(&html);
    assert!(data["failure"].is_null());
    assert!(!data["rows"].as_array().unwrap().is_empty());
    assert!(steplog::render(&obs, 0, 3).ends_with("every invariant held\n"));
}
