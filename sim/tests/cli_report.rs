//! The command line of step logs, reports and coverage: `replay --log`, `run --log`,
//! `report`, `coverage`, `sweep --report`, coverage in `--json`.

use std::path::PathBuf;
use std::process::Command;

fn pgmsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgmsim"))
        .args(args)
        .output()
        .expect("run pgmsim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn failing_trace() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/traces/failing/forgotten-tlb-flush-realias.json"
    )
    .to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgmsim-cli-report-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn replay_log_prints_steps_in_hex_and_ends_with_the_failure() {
    let (code, out, _) = pgmsim(&["replay", &failing_trace(), "--log", "--from", "4", "--to", "5"]);
    assert_eq!(code, 1, "the trace fails");
    assert!(out.contains("steps 4..=5 of 0..=5"), "{out}");
    assert!(out.contains("step 5: page_alias_mmio2 handler 0x000b2000"), "{out}");
    assert!(!out.contains("step 3:"), "--from limits the log: {out}");
    assert!(out.contains("FAILED at step 5: invariant TranslationSafety"), "{out}");
    let (code, _, err) = pgmsim(&["replay", &failing_trace(), "--from", "2"]);
    assert_eq!(code, 2, "--from needs --log: {err}");
    let (code, _, err) = pgmsim(&["replay", &failing_trace(), "--log", "--json"]);
    assert_eq!(code, 2, "--log and --json conflict: {err}");
}

#[test]
fn run_log_and_json_coverage() {
    let (code, out, _) = pgmsim(&[
        "run",
        "--seed",
        "3",
        "--concurrency",
        "off",
        "--steps",
        "30",
        "--log",
        "--to",
        "2",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("step 0: ") && out.contains("step 2: ") && !out.contains("step 3: "),
        "{out}"
    );
    assert!(
        out.contains("coverage: operation x result"),
        "run prints the coverage table: {out}"
    );
    let (code, out, _) = pgmsim(&["run", "--seed", "3", "--steps", "100", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in ["results", "transitions", "checks", "features"] {
        assert!(v["coverage"].get(key).is_some(), "coverage.{key} in {out}");
    }
    let (code, out, err) = pgmsim(&["run", "--seed", "1", "--concurrency", "on", "--steps", "20", "--log"]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "threads: vCPU 0",
        "step 0 begins on ",
        "takes the PGM lock",
        "releases the PGM lock",
        "every invariant held",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in {out}");
    }
}

#[test]
fn report_writes_one_html_file() {
    let dir = scratch("report");
    let html = dir.join("r.html");
    let (code, out, err) = pgmsim(&["report", &failing_trace(), "-o", html.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("6 steps; fails: step 5"), "{out}");
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.contains("id=\"timeline-canvas\"") && text.contains("id=\"failure\" data-step=\"5\""));
    assert!(text.contains("data-lanes=\"0\""), "a sequential trace has no lanes");
    let conc = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/traces/failing/concurrent-forgotten-flush-dirty-log.json");
    let html = dir.join("c.html");
    let (code, out, err) = pgmsim(&["report", conc.to_str().unwrap(), "-o", html.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("4 steps; fails: step 3"), "{out}");
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.contains("data-lanes=\"3\"") && text.contains("id=\"failure\" data-step=\"3\""));
    assert!(text.contains("<tr class=\"lane\" data-thread=\"2\""));
    let (code, _, err) = pgmsim(&["report", &failing_trace(), "--lanes", "x.json"]);
    assert_eq!(code, 2, "lanes come from the trace, not a file");
    assert!(err.contains("--lanes"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn coverage_lists_what_a_sweep_never_reached() {
    let (code, out, err) = pgmsim(&["coverage", "--seeds", "0..4", "--steps", "200", "--jobs", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("coverage of seeds 0..4"), "{out}");
    assert!(out.contains("never reached: "), "{out}");
    assert!(out.contains("not reachable by the default sweep"), "{out}");
    let (code, _, _) = pgmsim(&["coverage", "--seeds", "0..2", "--steps", "50", "--strict"]);
    assert_eq!(code, 1, "two short seeds cannot reach every cell");
    let (code, out, _) = pgmsim(&["coverage", "--seeds", "0..2", "--steps", "50", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(!v["never_reached"].as_array().unwrap().is_empty());
}

#[test]
fn sweep_report_has_the_coverage_tables_and_the_failures() {
    let dir = scratch("sweep");
    let html = dir.join("sweep.html");
    let (code, _, err) = pgmsim(&[
        "sweep",
        "--seeds",
        "0..3",
        "--steps",
        "100",
        "--report",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&html).unwrap();
    for id in [
        "id=\"coverage-results\"",
        "id=\"coverage-transitions\"",
        "id=\"coverage-checks\"",
        "id=\"coverage-features\"",
        "id=\"failures\" data-count=\"0\"",
    ] {
        assert!(text.contains(id), "missing {id}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failing_run_writes_the_report_next_to_the_minimised_trace() {
    let dir = scratch("failing");
    let world = dir.join("w.json");
    let (code, config, _) = pgmsim(&["config", "--seed", "6", "--mode", "shadow"]);
    assert_eq!(code, 0);
    let mut v: serde_json::Value = serde_json::from_str(&config).unwrap();
    v["concurrency"] = serde_json::Value::Null;
    v["platform_fault"] = serde_json::json!("forget_tlb_flushes");
    std::fs::write(&world, v.to_string()).unwrap();
    let out = dir.join("out");
    let (code, _, err) = pgmsim(&[
        "run",
        "--seed",
        "6",
        "--config",
        world.to_str().unwrap(),
        "--steps",
        "3000",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "a platform that forgets TLB flushes is caught: {err}");
    assert!(err.contains("report: "), "{err}");
    let report = std::fs::read_to_string(out.join("seed-6.min.html")).expect("the report of the minimised trace");
    assert!(report.contains("id=\"failure\""));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failing_concurrent_run_writes_the_report_with_lanes_next_to_the_minimised_trace() {
    let dir = scratch("failing-concurrent");
    let out = dir.join("out");
    let (code, _, err) = pgmsim(&[
        "run",
        "--seed",
        "1",
        "--concurrency",
        "on",
        "--vcpus",
        "2",
        "--devices",
        "1",
        "--steps",
        "400",
        "--platform-fault",
        "forget-tlb-flushes",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "a platform that forgets TLB flushes is caught: {err}");
    assert!(err.contains("report: "), "{err}");
    let report = std::fs::read_to_string(out.join("seed-1.min.html")).expect("the report of the minimised trace");
    assert!(report.contains("id=\"failure\"") && report.contains("data-lanes=\"3\""));
    let _ = std::fs::remove_dir_all(dir);
}
