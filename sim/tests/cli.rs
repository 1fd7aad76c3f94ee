//! The `pgmsim` command line: exit codes, JSON summary, trace round trip.

mod common;

use common::pgmsim;

#[test]
fn run_prints_a_json_summary_with_every_field() {
    let (code, out, _) = pgmsim(&["run", "--seed", "4", "--steps", "200", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    for key in [
        "seed",
        "steps",
        "config",
        "ops",
        "errors",
        "accesses",
        "handler_calls",
        "guest_faults",
        "tlb_hits",
        "tlb_misses",
        "shadow_syncs",
        "invariant_checks",
        "failures",
        "trace_hash",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {out}");
    }
    assert_eq!(v["steps"], 200);
    assert_eq!(v["failures"], 0);
}

#[test]
fn saved_trace_replays_to_the_same_hash() {
    let dir = std::env::temp_dir().join(format!("pgmsim-cli-{}", std::process::id()));
    let path = dir.join("t.json");
    let p = path.to_str().unwrap();
    let (code, run_out, _) = pgmsim(&["run", "--seed", "8", "--steps", "150", "--json", "--save-trace", p]);
    assert_eq!(code, 0);
    let (code, replay_out, _) = pgmsim(&["replay", p, "--json"]);
    assert_eq!(code, 0);
    let a: serde_json::Value = serde_json::from_str(run_out.trim()).unwrap();
    let b: serde_json::Value = serde_json::from_str(replay_out.trim()).unwrap();
    assert_eq!(a["trace_hash"], b["trace_hash"]);
    // A passing trace has nothing to shrink: a clear message and exit code 2.
    let (code, _, err) = pgmsim(&["shrink", p]);
    assert_eq!(code, 2);
    assert!(err.contains("does not fail"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_arguments_and_files_exit_2_with_a_message() {
    let (code, _, err) = pgmsim(&["run"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--seed"), "{err}");
    let (code, _, err) = pgmsim(&["sweep", "--seeds", "5..3"]);
    assert_eq!(code, 2);
    assert!(err.contains("empty range"), "{err}");
    let (code, _, err) = pgmsim(&["sweep", "--shard", "3/2"]);
    assert_eq!(code, 2);
    assert!(err.contains("shard"), "{err}");
    let (code, _, err) = pgmsim(&["run", "--seed", "1", "--vcpus", "9"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = pgmsim(&["replay", "/nonexistent/trace.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/trace.json"), "{err}");
    let dir = std::env::temp_dir().join(format!("pgmsim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"format\": \"something else\"}").unwrap();
    let (code, _, err) = pgmsim(&["replay", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not a pgmsim trace"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sweep_with_shards_and_committed_trace_replay_pass() {
    let (code, out, _) = pgmsim(&["sweep", "--seeds", "0..6", "--shard", "1/2", "--steps", "100", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["seeds"], 3);
    assert_eq!(v["failures"], 0);
    let trace = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/traces/nem-seed-12.json");
    let (code, _, err) = pgmsim(&["replay", trace]);
    assert_eq!(code, 0, "{err}");
}
