//! `pgmsim explore`: the schedules it counts are exactly those a brute-force enumeration of
//! every choice sequence finds; it is deterministic; it finds a failure that needs a
//! preemption and writes a trace that replays failing. Also the deliberate difference D16:
//! the committed asynchronous-shootdown trace fails under `--shootdown async` and passes
//! under `--shootdown sync`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::pgmsim;
use pgmsim_sim::conc::explore::{explore, ExploreSpec};
use pgmsim_sim::conc::Shootdown;
use pgmsim_sim::run::run_guided;
use pgmsim_sim::{replay, CheckMode, Invariant, Trace};

/// Two threads (vCPU 0: map, write, write; the device: a harvest) under asynchronous
/// shootdowns; the default schedule already fails (D16).
const D16: &str = "tests/traces/failing/async-shootdown-loses-write.json";
/// vCPU 0 writes a tracked page, then reads another one (a 1x1 TLB: the read evicts the
/// writable entry); the device harvests. Clean unless the harvest runs between the two.
const RACE: &str = "tests/traces/async-harvest-race.json";

fn path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn load(rel: &str) -> Trace {
    Trace::load(&path(rel)).expect("committed trace loads")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgmsim-explore-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every complete choice sequence of `trace` with at most `k` preemptions, found by
/// depth-first enumeration of every alternative at every decision point (no frontier, no
/// costs carried along: each sequence's preemptions are counted from its own points).
fn brute_force(trace: &Trace, k: u32) -> BTreeSet<Vec<u8>> {
    let mut found = BTreeSet::new();
    let mut stack = vec![Vec::<u8>::new()];
    while let Some(prefix) = stack.pop() {
        let (_, g) = run_guided(trace, CheckMode::Incremental, prefix.clone());
        let taken: Vec<u8> = g.points.iter().map(|b| b.taken).collect();
        assert_eq!(&taken[..prefix.len()], &prefix[..], "a run follows its prefix");
        let preemptions = |upto: usize, last: u8| {
            g.points[..upto]
                .iter()
                .zip(&taken)
                .filter(|(b, &t)| b.preempting && t != b.default)
                .count()
                + usize::from(g.points[upto].preempting && last != g.points[upto].default)
        };
        match (prefix.len()..g.points.len()).find(|&j| g.points[j].options > 1) {
            None => {
                let total = g.points.iter().filter(|b| b.preempting && b.taken != b.default).count();
                if total <= k as usize {
                    found.insert(taken);
                }
            }
            Some(j) => {
                for a in 0..g.points[j].options {
                    if preemptions(j, a) <= k as usize {
                        let mut p = taken[..j].to_vec();
                        p.push(a);
                        stack.push(p);
                    }
                }
            }
        }
    }
    found
}

fn spec(k: u32) -> ExploreSpec {
    ExploreSpec {
        max_preemptions: k,
        max_schedules: 100_000,
        check: CheckMode::Incremental,
    }
}

#[test]
fn explore_counts_exactly_the_schedules_brute_force_finds() {
    let trace = load(D16);
    for k in [0, 1, 2, 3, 8] {
        let e = explore(&trace, &spec(k)).unwrap();
        let all = brute_force(&trace, k);
        assert!(e.complete, "k={k}");
        assert_eq!(e.schedules, all.len() as u64, "k={k}");
        assert_eq!(e.by_preemptions.iter().sum::<u64>(), e.schedules);
        // Every schedule explored is a different run.
        assert_eq!(e.distinct_trace_hashes, e.schedules, "k={k}");
    }
    // Hand-checked figures of this trace: 1 schedule without preemption, 6 with one, 10 with
    // two, 8 with three, none with more (25 in all).
    let e = explore(&trace, &spec(8)).unwrap();
    assert_eq!(&e.by_preemptions[..5], &[1, 6, 10, 8, 0]);
}

#[test]
fn a_bounded_search_runs_the_first_schedules_of_the_unbounded_order_and_says_so() {
    let trace = load(D16);
    let all = explore(&trace, &spec(2)).unwrap();
    let cut = explore(
        &trace,
        &ExploreSpec {
            max_schedules: 5,
            ..spec(2)
        },
    )
    .unwrap();
    assert_eq!((cut.schedules, cut.complete), (5, false));
    assert_eq!(cut.by_preemptions, vec![1, 4, 0], "breadth-first by preemptions");
    assert!(all.complete && all.schedules > 5);
}

#[test]
fn explore_is_deterministic_and_reports_json() {
    let out = scratch("det");
    let args = [
        "explore",
        &path(RACE).display().to_string(),
        "--json",
        "--out",
        &out.display().to_string(),
        "--shrink-budget",
        "50",
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (c1, o1, _) = pgmsim(&args);
    let (c2, o2, _) = pgmsim(&args);
    assert_eq!((c1, c2), (1, 1), "failures found: exit code 1");
    assert_eq!(o1, o2, "two explorations print the same JSON");
    let v: serde_json::Value = serde_json::from_str(&o1).unwrap();
    let e = explore(&load(RACE), &spec(2)).unwrap();
    assert_eq!(v["schedules"], e.schedules);
    assert_eq!(v["by_preemptions"], serde_json::json!(e.by_preemptions));
    assert_eq!(v["failures"], e.failures);
    assert_eq!(v["complete"], true);
    assert_eq!(v["combined_hash"], format!("{:016x}", e.combined_hash));
}

#[test]
fn explore_finds_a_race_that_needs_a_preemption_and_saves_a_failing_trace() {
    let trace = load(RACE);
    assert!(
        replay(&trace, CheckMode::Incremental).failure.is_none(),
        "its own schedule passes"
    );
    let none = explore(&trace, &spec(0)).unwrap();
    assert_eq!(
        (none.failures, none.complete),
        (0, true),
        "no schedule without preemption fails"
    );
    let one = explore(&trace, &spec(1)).unwrap();
    assert!(one.failures > 0);
    assert_eq!(one.signatures[0].preemptions, 1);
    let first = one.first_failure.as_ref().unwrap();
    assert_eq!(first.failure.as_ref().unwrap().invariant, Invariant::DirtyLog);

    let out = scratch("race");
    let (code, stdout, stderr) = pgmsim(&[
        "explore",
        &path(RACE).display().to_string(),
        "--max-preemptions",
        "1",
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("failures: 5 schedule(s), 1 distinct signature(s)"),
        "{stdout}"
    );
    for saved in ["async-harvest-race-explore.json", "async-harvest-race-explore.min.json"] {
        let file = out.join(saved).display().to_string();
        let (code, stdout, stderr) = pgmsim(&["replay", &file, "--json"]);
        assert_eq!(code, 1, "{saved} replays failing: {stderr}");
        let v: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
        assert_eq!(v["hash_drift"], false, "{saved} replays exactly");
        assert_eq!(v["failure"]["invariant"], "dirty_log");
    }
}

#[test]
fn d16_the_committed_trace_fails_with_async_shootdowns_and_passes_with_sync_ones() {
    let trace = load(D16);
    assert_eq!(trace.config.concurrency.unwrap().shootdown, Shootdown::Async);
    let failed = replay(&trace, CheckMode::Incremental);
    let f = failed
        .failure
        .expect("fire-and-forget flushes leave a writable TLB entry");
    assert_eq!(f.invariant, Invariant::DirtyLog);
    assert!(f.detail.contains("TLB entry"), "{}", f.detail);
    let mut sync = trace.clone();
    sync.config.concurrency.as_mut().unwrap().shootdown = Shootdown::Sync;
    for check in [CheckMode::Incremental, CheckMode::Full] {
        let r = replay(&sync, check);
        assert!(r.failure.is_none(), "{:?}", r.failure);
        assert_eq!(r.steps, 4);
    }
    // Every schedule (not only the recorded one) passes with synchronous shootdowns, and
    // the race that needs a preemption does not fail under any schedule with up to three.
    for (mut t, k) in [(trace.clone(), 8), (load(RACE), 3)] {
        t.config.concurrency.as_mut().unwrap().shootdown = Shootdown::Sync;
        let e = explore(&t, &spec(k)).unwrap();
        assert_eq!((e.failures, e.complete), (0, true), "{:?}", e.signatures);
        assert!(e.schedules >= 10);
    }
    let e = explore(&trace, &spec(8)).unwrap();
    assert_eq!((e.schedules, e.failures), (25, 2), "under async");
    // The same through the command line.
    let file = path(D16).display().to_string();
    assert_eq!(pgmsim(&["replay", &file]).0, 1);
    let (code, out, err) = pgmsim(&["replay", &file, "--shootdown", "sync"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(pgmsim(&["replay", &file, "--shootdown", "async"]).0, 1);
}

#[test]
fn bad_explore_and_replay_arguments_are_refused() {
    let race = path(RACE).display().to_string();
    let sequential = path("tests/traces/shadow-seed-11.json").display().to_string();
    for (args, says) in [
        (vec!["explore"], "give a concurrent TRACE or --seed"),
        (vec!["explore", sequential.as_str()], "sequential trace"),
        (vec!["explore", race.as_str(), "--vcpus", "2"], "apply to --seed only"),
        (vec!["explore", race.as_str(), "--seed", "3"], "cannot be used with"),
        (vec!["explore", race.as_str(), "--max-schedules", "0"], "max-schedules"),
        (
            vec!["explore", "--seed", "3", "--concurrency", "off"],
            "--concurrency off",
        ),
        (
            vec!["replay", sequential.as_str(), "--shootdown", "async"],
            "sequential",
        ),
    ] {
        let (code, _, err) = pgmsim(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn explore_from_a_seed_explores_that_seeds_operations() {
    let out = scratch("seed");
    let (code, stdout, stderr) = pgmsim(&[
        "explore",
        "--seed",
        "5",
        "--steps",
        "3",
        "--vcpus",
        "2",
        "--devices",
        "1",
        "--max-preemptions",
        "1",
        "--json",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(code == 0 || code == 1, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["operations"], 3);
    assert_eq!(v["seed"], 5);
    assert!(v["schedules"].as_u64().unwrap() >= 1);
    assert_eq!(v["complete"], true);
    // Without --steps, a seed's first 10 operations.
    let (_, stdout, stderr) = pgmsim(&[
        "explore",
        "--seed",
        "5",
        "--vcpus",
        "2",
        "--devices",
        "1",
        "--max-preemptions",
        "0",
        "--json",
        "--out",
        &out.display().to_string(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(v["operations"], 10);
}
