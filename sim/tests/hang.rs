//! A hang is a failure (issue #11 item 5): a step that would never end becomes a `hang`
//! failure with its trace, which shrinks like any other, and a sweep with `--keep-going`
//! moves on past it. Two test-only platform faults make the hangs: `flush-never-acknowledged`
//! (a poll loop that runs out its asserted bound: the deterministic path every loop of the
//! manager takes) and `flush-stalls` (a flush that never returns: only the wall-clock
//! watchdog, `--step-timeout`, sees it). Nothing here sleeps; the watchdog's budget is the
//! only wait.

use std::path::{Path, PathBuf};

mod common;

use common::pgmsim;

use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgmsim-hang-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"))
}

fn load(path: &Path) -> Value {
    json(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// A sequential shadow-mode world of seed 1 (it flushes the TLBs within 300 steps) on a
/// platform with `fault`.
const WORLD: [&str; 6] = ["--mode", "shadow", "--concurrency", "off", "--platform-fault", ""];

fn world(fault: &str) -> Vec<&str> {
    let mut w = WORLD.to_vec();
    w[5] = fault;
    w
}

#[test]
fn a_loop_past_its_bound_is_a_hang_with_a_trace_that_shrinks() {
    let dir = scratch("bounded");
    let mut args = vec!["run", "--seed", "1", "--steps", "300", "--json", "--out", s(&dir)];
    args.extend(world("flush-never-acknowledged"));
    let (code, out, err) = pgmsim(&args);
    assert_eq!(code, 1, "{err}");
    let summary = json(&out);
    let failure = &summary["failure"];
    assert_eq!(failure["invariant"], "hang", "{summary}");
    assert!(
        failure["detail"].as_str().unwrap().contains("loop bound exceeded"),
        "{failure}"
    );
    let step = failure["step"].as_u64().unwrap();
    assert_eq!(
        summary["steps"].as_u64(),
        Some(step + 1),
        "the hung step is the last one"
    );

    let trace = load(&dir.join("seed-1.json"));
    assert_eq!(trace["failure"]["invariant"], "hang");
    assert_eq!(trace["ops"].as_array().unwrap().len() as u64, step + 1);
    let min = load(&dir.join("seed-1.min.json"));
    assert_eq!(min["failure"]["invariant"], "hang", "the minimised trace still hangs");
    let min_steps = min["ops"].as_array().unwrap().len();
    assert!(min_steps <= 10, "minimised to {min_steps} steps");

    // The minimised trace replays to the same hang (deterministically: no watchdog needed).
    let (code, out, err) = pgmsim(&[
        "replay",
        s(&dir.join("seed-1.min.json")),
        "--json",
        "--step-timeout",
        "off",
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(json(&out)["failure"]["invariant"], "hang");
}

#[test]
fn a_step_that_never_returns_is_a_hang_after_the_step_timeout() {
    let dir = scratch("stall");
    let mut args = vec![
        "run",
        "--seed",
        "1",
        "--steps",
        "300",
        "--json",
        "--out",
        s(&dir),
        "--step-timeout",
        "500ms",
        "--shrink-budget",
        "3",
    ];
    args.extend(world("flush-stalls"));
    let (code, out, err) = pgmsim(&args);
    assert_eq!(code, 1, "{err}");
    let summary = json(&out);
    let failure = &summary["failure"];
    assert_eq!(failure["invariant"], "hang", "{summary}");
    assert!(
        failure["detail"].as_str().unwrap().contains("--step-timeout"),
        "{failure}"
    );
    let step = failure["step"].as_u64().unwrap();
    assert!(
        summary["failing_op"].is_object(),
        "the hung step's operation is known: {summary}"
    );

    // The trace holds the steps before the hung one (rerun) and the hung one.
    let trace = load(&dir.join("seed-1.json"));
    assert_eq!(trace["failure"]["invariant"], "hang");
    assert_eq!(trace["ops"].as_array().unwrap().len() as u64, step + 1);

    // `shrink` judges every candidate under the watchdog: one that hangs fails with `hang`.
    let (code, out, err) = pgmsim(&[
        "shrink",
        s(&dir.join("seed-1.json")),
        "--budget",
        "2",
        "--step-timeout",
        "500ms",
        "-o",
        s(&dir.join("shrunk.json")),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(load(&dir.join("shrunk.json"))["failure"]["invariant"], "hang");
}

/// A sweep with `--keep-going` covers every seed: a seed that hangs is a failure and the
/// next seed runs.
fn sweep_keeps_going(fault: &str, extra: &[&str]) -> Value {
    let dir = scratch(fault);
    let mut args = vec![
        "sweep",
        "--seeds",
        "0..6",
        "--steps",
        "200",
        "--jobs",
        "1",
        "--keep-going",
        "--json",
        "--shrink-budget",
        "0",
        "--out",
        s(&dir),
    ];
    args.extend(world(fault));
    args.extend(extra);
    let (code, out, err) = pgmsim(&args);
    assert_eq!(code, 1, "{err}");
    let report = json(&out);
    assert_eq!(report["seeds"], 6, "every seed covered: {report}");
    assert_eq!(report["complete"], true);
    let failing = report["failing"].as_array().unwrap();
    assert!(failing.len() >= 2, "several seeds hang: {report}");
    for f in failing {
        assert_eq!(f["invariant"], "hang", "{f}");
    }
    for sig in report["signatures"].as_array().unwrap() {
        let trace = load(Path::new(sig["trace"].as_str().unwrap()));
        assert_eq!(trace["failure"]["invariant"], "hang");
    }
    report
}

#[test]
fn a_sweep_keeps_going_past_a_loop_past_its_bound() {
    sweep_keeps_going("flush-never-acknowledged", &[]);
}

#[test]
fn a_sweep_keeps_going_past_a_stalled_step() {
    let r = sweep_keeps_going("flush-stalls", &["--step-timeout", "300ms"]);
    let detail = r["failing"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("--step-timeout"), "{detail}");
}
