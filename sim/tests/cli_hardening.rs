//! The command line as a demanding user and an adversary use it: each test reproduces a
//! probe of the hardening issue against the built binary (item numbers in the names).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;

use common::pgmsim;

use serde_json::Value;

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"))
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgmsim-hardening-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The configuration seed 1 draws, as JSON.
fn config_of_seed(seed: u64) -> Value {
    let (code, out, err) = pgmsim(&["config", "--seed", &seed.to_string()]);
    assert_eq!(code, 0, "{err}");
    json(&out)
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// A passing trace of `steps` steps of `seed`, as JSON.
fn trace_of_seed(dir: &Path, seed: u64, steps: u64) -> Value {
    let path = dir.join(format!("seed-{seed}-trace.json"));
    let (code, _, err) = pgmsim(&[
        "run",
        "--seed",
        &seed.to_string(),
        "--steps",
        &steps.to_string(),
        "--save-trace",
        s(&path),
    ]);
    assert_eq!(code, 0, "{err}");
    json(&std::fs::read_to_string(path).unwrap())
}

/// Runs pgmsim under an address-space limit (Linux `ulimit -v`, in KiB).
#[cfg(target_os = "linux")]
fn pgmsim_with_memory_limit(kib: u64, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_pgmsim"))
        .args(args);
    let out = cmd.output().expect("run pgmsim under ulimit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(target_os = "linux")]
#[test]
fn item1_a_sweep_of_any_range_runs_in_flat_memory() {
    // Collecting the seeds up front needed 8 bytes per seed: 4 GiB for 0..10^9, and the whole
    // machine for 0..u64::MAX. Under a 1 GiB address-space limit both must run and stop at
    // --max-time with a report of the covered prefix.
    for range in ["0..18446744073709551615", "0..1000000000"] {
        let (code, out, err) = pgmsim_with_memory_limit(
            1 << 20,
            &[
                "sweep",
                "--seeds",
                range,
                "--jobs",
                "1",
                "--steps",
                "1",
                "--max-time",
                "2",
                "--json",
            ],
        );
        assert_eq!(code, 0, "{range}: {err}");
        let v = json(&out);
        assert_eq!(v["complete"], false, "{range}");
        assert!(v["seeds"].as_u64().unwrap() > 0, "{range}: {out}");
        assert_eq!(v["failures"], 0);
    }
}

#[test]
fn item2_the_largest_guest_run_accepts_replays() {
    let dir = scratch("item2");
    let big = dir.join("big.json");
    let (code, _, err) = pgmsim(&[
        "run",
        "--seed",
        "1",
        "--ram-mib",
        "16384",
        "--steps",
        "2",
        "--save-trace",
        s(&big),
    ]);
    assert_eq!(code, 0, "{err}");
    // Loading is where "guest larger than 16 GiB" refused it; replay loads it the same way.
    let trace = pgmsim_sim::Trace::load(&big).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(trace.config.layout.ram_ranges[0].pages, 16384 * 256);
    // Beyond the largest guest, run refuses up front, as replay would.
    let (code, _, err) = pgmsim(&["run", "--seed", "1", "--ram-mib", "16385"]);
    assert_eq!(code, 2, "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn item3_configuration_errors_are_bad_input_naming_field_index_and_limit() {
    let dir = scratch("item3");
    let out_dir = dir.join("failures");
    let base = config_of_seed(1);
    let passing = trace_of_seed(&dir, 1, 5);
    let mut cases: Vec<(Value, &str)> = Vec::new();
    for n in [20u64, 70000] {
        let mut c = base.clone();
        c["max_handlers"] = n.into();
        cases.push((c, "max_handlers"));
    }
    let mut c = base.clone();
    c["layout"]["ram_ranges"][0]["pages"] = 20.into();
    cases.push((c, "ram_ranges[0] has 20 pages"));
    let mut c = base.clone();
    c["layout"]["ram_ranges"][1]["first"] = "0x1001".into();
    cases.push((c, "ram_ranges[1]: first 0x1001 must be page aligned"));
    let mut c = base.clone();
    c["layout"]["ram_ranges"][2]["first"] = "0x1000".into();
    cases.push((c, "ram_ranges[2]: first 0x1000 must be above"));
    let mut c = base.clone();
    c["layout"]["ram_ranges"][1]["pages"] = 0.into();
    cases.push((c, "ram_ranges[1]: pages must be at least 1"));
    let mut c = base.clone();
    c["layout"]["mmio2_regions"][0]["host_base"] = "0x123".into();
    cases.push((c, "mmio2_regions[0]: host_base 0x123"));
    let mut c = base.clone();
    c["tlb_sets"] = 1024.into();
    c["tlb_ways"] = 32.into();
    cases.push((c, "tlb_sets x tlb_ways"));
    let mut c = base.clone();
    c["address_spaces"] = 0.into();
    cases.push((c, "address_spaces 0 must be in 1..=16"));
    for (i, (config, needle)) in cases.iter().enumerate() {
        let file = dir.join(format!("c{i}.json"));
        write_json(&file, config);
        let (code, _, err) = pgmsim(&["run", "--seed", "1", "--config", s(&file), "--out", s(&out_dir)]);
        assert_eq!(code, 2, "{needle}: {err}");
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        assert!(!err.contains("Setup") && !err.contains("FAILURE"), "{err}");
        // The same configuration inside a trace: replay and shrink refuse it too.
        let mut t = passing.clone();
        t["config"] = config.clone();
        let trace = dir.join(format!("t{i}.json"));
        write_json(&trace, &t);
        for cmd in ["replay", "shrink"] {
            let (code, _, err) = pgmsim(&[cmd, s(&trace)]);
            assert_eq!(code, 2, "{cmd} {needle}: {err}");
            assert!(err.contains(needle), "{cmd}: expected {needle:?} in: {err}");
        }
    }
    assert!(!out_dir.exists(), "no failure traces for bad input");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn item4_traces_outside_the_generators_guarantees_are_refused() {
    let dir = scratch("item4");
    let t = trace_of_seed(&dir, 3, 40);
    // Mapping a page of the guest's page-table pool (then writing through it).
    let mut pool = t.clone();
    let ops = pool["ops"].as_array_mut().unwrap();
    ops.push(serde_json::json!({"op": "map", "space": 0, "vpi": 1, "gp": "0x2000", "write": true, "exec": false}));
    ops.push(serde_json::json!({"op": "access", "vcpu": 0, "va": "0x4000001000", "size": 8, "kind": "write", "value": "0x1"}));
    let file = dir.join("pool.json");
    write_json(&file, &pool);
    let (code, _, err) = pgmsim(&["replay", s(&file)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("page-table pool"), "{err}");
    // Two RAM ranges sharing one host backing.
    let mut c = config_of_seed(3);
    c["layout"]["ram_ranges"][1]["kind"]["Ram"]["host_base"] =
        c["layout"]["ram_ranges"][0]["kind"]["Ram"]["host_base"].clone();
    let file = dir.join("shared.json");
    write_json(&file, &c);
    let (code, _, err) = pgmsim(&["sweep", "--seeds", "0..4", "--config", s(&file)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("ram_ranges[0].host_base") && err.contains("ram_ranges[1].host_base"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn item5_no_silent_wrong_answers() {
    let dir = scratch("item5");
    // Every family disabled: nothing to draw (it used to run vm_reset 2000 times).
    let mut args = vec!["run", "--seed", "1", "--steps", "50"];
    let weights: Vec<String> = pgmsim_sim::config::Weights::NAMES
        .iter()
        .map(|n| format!("--weight={n}=0"))
        .collect();
    args.extend(weights.iter().map(String::as_str));
    let (code, _, err) = pgmsim(&args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("weights"), "{err}");
    // --ram-mib applies on top of --config (it resizes the first range).
    let mut c = config_of_seed(2);
    c["layout"]["ram_ranges"].as_array_mut().unwrap().truncate(1);
    c["layout"]["ram_ranges"][0]["pages"] = 64.into();
    c["layout"]["mmio2_regions"] = serde_json::json!([]);
    let file = dir.join("one-range.json");
    write_json(&file, &c);
    let (code, out, err) = pgmsim(&["config", "--config", s(&file), "--ram-mib", "2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["layout"]["ram_ranges"][0]["pages"], 512);
    // A typo in a configuration field, in a trace field, in a step field.
    let mut typo = config_of_seed(2);
    typo["vcpu"] = 2.into();
    write_json(&file, &typo);
    let (code, _, err) = pgmsim(&["run", "--seed", "2", "--config", s(&file)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown field `vcpu`"), "{err}");
    let t = trace_of_seed(&dir, 2, 30);
    let mut bad = t.clone();
    bad["check_mode"] = "full".into();
    let mut step = t.clone();
    step["ops"][0]["vcpus"] = 1.into();
    for (v, needle) in [(bad, "unknown field `check_mode`"), (step, "unknown field `vcpus`")] {
        write_json(&file, &v);
        let (code, _, err) = pgmsim(&["replay", s(&file)]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(needle), "{err}");
    }
    // Out-of-range vCPU, address-space and page indices no longer wrap around.
    let vcpus = t["config"]["vcpus"].as_u64().unwrap();
    let spaces = t["config"]["address_spaces"].as_u64().unwrap();
    let pages = t["config"]["va_pages"].as_u64().unwrap();
    for (op, needle) in [
        (
            serde_json::json!({"op": "switch_cr3", "vcpu": vcpus, "space": 0}),
            "vcpu",
        ),
        (serde_json::json!({"op": "unmap", "space": spaces, "vpi": 0}), "space"),
        (
            serde_json::json!({"op": "protect", "space": 0, "vpi": pages, "write": true, "exec": false}),
            "vpi",
        ),
    ] {
        let mut v = t.clone();
        v["ops"].as_array_mut().unwrap().push(op);
        write_json(&file, &v);
        let (code, _, err) = pgmsim(&["replay", s(&file)]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("ops[30] (") && err.contains(needle), "{err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn item6_a_closed_pipe_ends_quietly() {
    for args in [
        &["run", "--seed", "7", "--steps", "50"][..],
        &["sweep", "--seeds", "0..20", "--steps", "20"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgmsim"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pgmsim");
        drop(child.stdout.take()); // the reader is gone before anything is printed
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    }
}

/// A sweep on a platform that forgets TLB flushes: many failing seeds.
fn faulty_sweep(out: &Path, jobs: &str, keep_going: bool, shrink_budget: &str) -> Value {
    let mut args = vec![
        "sweep",
        "--seeds",
        "0..30",
        "--steps",
        "400",
        "--mode",
        "shadow",
        "--platform-fault",
        "forget-tlb-flushes",
        "--jobs",
        jobs,
        "--json",
        "--seed-hashes",
        "--shrink-budget",
        shrink_budget,
        "--out",
        s(out),
    ];
    if keep_going {
        args.push("--keep-going");
    }
    let (code, stdout, err) = pgmsim(&args);
    assert_eq!(code, 1, "{err}");
    json(&stdout)
}

#[test]
fn item7_keep_going_keeps_one_trace_per_failure_signature() {
    let dir = scratch("item7");
    let v = faulty_sweep(&dir, "2", true, "200");
    let failing = v["failing"].as_array().unwrap();
    assert!(failing.len() >= 3, "{v}");
    assert_eq!(v["failures"].as_u64().unwrap() as usize, failing.len());
    for f in failing {
        assert!(
            f["seed"].is_u64() && f["signature"].as_str().unwrap().contains('@'),
            "{f}"
        );
    }
    let signatures = v["signatures"].as_array().unwrap();
    assert!(signatures.len() >= 2, "distinct signatures: {v}");
    // Each signature's trace and minimised trace (and, next to the latter, its report).
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2 * signatures.len(), "{files:?}");
    for sig in signatures {
        let count = failing.iter().filter(|f| f["signature"] == sig["signature"]).count();
        assert_eq!(sig["seeds"].as_u64().unwrap() as usize, count);
        for key in ["trace", "minimised"] {
            let path = sig[key].as_str().unwrap();
            let (code, _, err) = pgmsim(&["replay", path]);
            assert_eq!(code, 1, "{path} fails again: {err}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn item8_the_sweep_report_is_identical_for_any_jobs() {
    let dir = scratch("item8");
    for keep_going in [false, true] {
        let reports: Vec<String> = ["1", "2", "3"]
            .iter()
            .map(|jobs| faulty_sweep(&dir.join("out"), jobs, keep_going, "1").to_string())
            .collect();
        assert_eq!(reports[0], reports[1], "keep-going {keep_going}");
        assert_eq!(reports[0], reports[2], "keep-going {keep_going}");
        let v = json(&reports[0]);
        assert!(v["combined_hash"].as_str().unwrap().len() == 16);
        let hashes = v["seed_hashes"].as_array().unwrap();
        assert_eq!(hashes.len() as u64, v["seeds"].as_u64().unwrap());
        if !keep_going {
            assert_eq!(v["failing_seeds"].as_array().unwrap().len(), 1, "stops at the lowest");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn item9_a_saved_trace_is_streamed_and_equals_the_regenerated_one() {
    let dir = scratch("item9");
    let saved = trace_of_seed(&dir, 12, 400);
    let trace = pgmsim_sim::run_seed(12, 400, &Default::default(), pgmsim_sim::CheckMode::Incremental).trace();
    let regenerated: Value = serde_json::to_value(&trace).unwrap();
    assert_eq!(saved, regenerated);
    assert!(!dir.join("seed-12-trace.json.partial").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn item10_replay_reports_trace_hash_drift() {
    let dir = scratch("item10");
    let mut t = trace_of_seed(&dir, 5, 60);
    let recorded = t["trace_hash"].as_str().unwrap().to_string();
    let file = dir.join("t.json");
    write_json(&file, &t);
    let (code, out, _) = pgmsim(&["replay", s(&file), "--json"]);
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(
        (v["trace_hash"].as_str(), v["hash_drift"].as_bool()),
        (Some(&*recorded), Some(false))
    );
    t["trace_hash"] = "0123456789abcdef".into();
    write_json(&file, &t);
    let (code, _, err) = pgmsim(&["replay", s(&file)]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("drift") && err.contains("0123456789abcdef") && err.contains(&recorded),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn item11_max_time_bounds_run_sweep_and_replay() {
    let dir = scratch("item11");
    let started = std::time::Instant::now();
    let (code, out, err) = pgmsim(&[
        "run",
        "--seed",
        "3",
        "--steps",
        "100000000",
        "--max-time",
        "1",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["complete"], false);
    assert!(v["steps"].as_u64().unwrap() < 100_000_000);
    assert!(err.contains("--max-time"), "{err}");
    // A long trace replayed with full checks, cut short: exit 3, not a pass.
    let path = dir.join("long.json");
    let (code, _, err) = pgmsim(&["run", "--seed", "3", "--steps", "3000", "--save-trace", s(&path)]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = pgmsim(&["replay", s(&path), "--check", "full", "--max-time", "200ms", "--json"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(json(&out)["complete"], false);
    assert!(err.contains("not replayed completely"), "{err}");
    let (code, _, err) = pgmsim(&["sweep", "--seeds", "0..100000", "--max-time", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        started.elapsed().as_secs() < 120,
        "every command stopped near its limit"
    );
    let (code, _, err) = pgmsim(&["replay", s(&path), "--max-time", "soon"]);
    assert_eq!(code, 2, "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn item12_failures_read_well_and_minimised_configurations_are_small() {
    let dir = scratch("item12");
    let (code, _, err) = pgmsim(&[
        "run",
        "--seed",
        "7",
        "--steps",
        "1000",
        "--platform-fault",
        "forget-tlb-flushes",
        "--shrink-budget",
        "400",
        "--out",
        s(&dir),
    ]);
    assert_eq!(code, 1, "{err}");
    for needle in [
        "invariant translation_safety at step",
        "steps count from 0",
        "failing operation: {\"op\":",
        "expected vs actual:",
        "replay with: pgmsim replay",
        "cargo run --release -p pgmsim-sim -- replay",
    ] {
        assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    }
    let full: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("seed-7.json")).unwrap()).unwrap();
    let min: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("seed-7.min.json")).unwrap()).unwrap();
    let count = |v: &Value, k: &str| v["config"]["layout"][k].as_array().unwrap().len();
    assert!(
        count(&min, "ram_ranges") < count(&full, "ram_ranges"),
        "unused ranges dropped"
    );
    assert!(min["config"]["types"].as_array().unwrap().len() < full["config"]["types"].as_array().unwrap().len());
    let zero_weights = |v: &Value| {
        v["config"]["weights"]
            .as_object()
            .unwrap()
            .values()
            .filter(|w| *w == 0)
            .count()
    };
    assert!(
        zero_weights(&min) > zero_weights(&full),
        "unused families' weights dropped"
    );
    // Addresses in traces are hex strings.
    assert!(min["config"]["layout"]["ram_ranges"][0]["first"]
        .as_str()
        .unwrap()
        .starts_with("0x"));
    // replay names the failing operation and the step too.
    let (code, _, err) = pgmsim(&["replay", s(&dir.join("seed-7.min.json"))]);
    assert_eq!(code, 1);
    assert!(
        err.contains("failing operation") && err.contains("pgmsim shrink"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
