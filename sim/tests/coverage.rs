//! Coverage counting: every step lands in exactly the cells it should, transitions are the
//! pages' real before -> after, a sweep's coverage is the sum of its runs' for any --jobs.

use pgmsim::{HandlerState, PageType};
use pgmsim_sim::check::CheckMode;
use pgmsim_sim::conc::config::ConcurrencyOverrides;
use pgmsim_sim::config::{Overrides, SimConfig};
use pgmsim_sim::coverage::{Check, Coverage, Gaps, Transition};
use pgmsim_sim::op::Op;
use pgmsim_sim::sweep::{sweep, SweepSpec};
use pgmsim_sim::{run_seed, World};
use pgmsim_testkit::ApiCall;

fn sum(cov: &Coverage, op: &str) -> u64 {
    cov.results().filter(|(o, _, _)| *o == op).map(|(_, _, n)| n).sum()
}

fn sequential() -> Overrides {
    Overrides {
        concurrency: ConcurrencyOverrides {
            enabled: Some(false),
            ..Default::default()
        },
        ..Overrides::default()
    }
}

#[test]
fn every_step_is_counted_in_its_operation_row() {
    for seed in [1, 4, 9] {
        let r = run_seed(seed, 800, &sequential(), CheckMode::Incremental);
        assert!(r.failure.is_none());
        let cov = &r.stats.coverage;
        let steps = |name: &str| r.ops.iter().filter(|op| op.name() == name).count() as u64;
        for name in ["map", "unmap", "protect", "switch_cr3", "harvest"] {
            assert_eq!(sum(cov, name), steps(name), "seed {seed}: {name}");
        }
        let queries = steps("query");
        for name in ["is_registered", "is_all", "lookup"] {
            assert_eq!(
                sum(cov, name),
                queries,
                "seed {seed}: {name} answers one per query step"
            );
        }
        let accesses = sum(cov, "access.read") + sum(cov, "access.write") + sum(cov, "access.exec");
        assert_eq!(accesses, r.stats.accesses, "seed {seed}");
        // API calls: at least one per step (device callbacks add their own calls).
        for op in &r.ops {
            if let Op::Call(c) = op {
                assert!(sum(cov, c.name()) >= steps(c.name()), "seed {seed}: {}", c.name());
            }
        }
        let (_, _, full) = cov.checks().find(|c| c.0 == Check::ProductionCheckSync).unwrap();
        assert_eq!(full, r.stats.full_checks, "seed {seed}");
        assert!(
            Gaps::of(cov).unexpected.is_empty(),
            "seed {seed}: {:?}",
            Gaps::of(cov).unexpected
        );
        assert!(Gaps::of(cov).transitions_unexpected.is_empty(), "seed {seed}");
    }
}

#[test]
fn a_concurrent_run_counts_its_accesses_and_calls() {
    let ov = Overrides {
        concurrency: ConcurrencyOverrides {
            enabled: Some(true),
            ..Default::default()
        },
        ..Overrides::default()
    };
    let r = run_seed(5, 1500, &ov, CheckMode::Incremental);
    assert!(r.failure.is_none(), "{:?}", r.failure);
    let cov = &r.stats.coverage;
    let accesses = sum(cov, "access.read") + sum(cov, "access.write") + sum(cov, "access.exec");
    assert_eq!(accesses, r.stats.accesses, "accesses complete through the executor");
    assert!(sum(cov, "register") > 0);
    assert!(cov.features().keys().any(|k| k.starts_with("concurrency=threads")));
    assert!(Gaps::of(cov).unexpected.is_empty(), "{:?}", Gaps::of(cov).unexpected);
}

#[test]
fn transitions_are_the_pages_before_and_after() {
    let ov = Overrides {
        dirty_tracking: Some(false),
        ..sequential()
    };
    let mut w = World::new(SimConfig::from_seed(3, &ov)).unwrap();
    let first = 40 << 12;
    let register = ApiCall::Register {
        first,
        last: first + 0x1fff,
        ty: 0, // a Write type
        user: 0,
        described: false,
    };
    w.apply(&Op::Call(register), CheckMode::Full).unwrap();
    w.apply(
        &Op::Call(ApiCall::PageTempOff {
            addr: first,
            page: first,
        }),
        CheckMode::Full,
    )
    .unwrap();
    w.apply(&Op::Call(ApiCall::Deregister { addr: first }), CheckMode::Full)
        .unwrap();
    let t = |from, to| Transition {
        type_before: PageType::Ram,
        from,
        type_after: PageType::Ram,
        to,
    };
    let counted: Vec<(Transition, u64)> = w.stats().coverage.transitions().collect();
    assert_eq!(
        counted,
        [
            (t(HandlerState::None, HandlerState::Write), 2),
            (t(HandlerState::Disabled, HandlerState::None), 1),
            (t(HandlerState::Write, HandlerState::None), 1),
            (t(HandlerState::Write, HandlerState::Disabled), 1),
        ]
    );
    let cov = &w.stats().coverage;
    assert_eq!(cov.count("register", "Success"), 1);
    assert_eq!(cov.count("page_temp_off", "Success"), 1);
    assert_eq!(cov.count("deregister", "Success"), 1);
}

#[test]
fn a_sweep_counts_the_sum_of_its_runs_for_any_number_of_workers() {
    let spec = |jobs| SweepSpec {
        start: 0,
        end: 6,
        shard: None,
        jobs,
        keep_going: true,
        steps: 300,
        check: CheckMode::Incremental,
    };
    let world = |seed| SimConfig::from_seed(seed, &Overrides::default());
    let one = sweep(&spec(1), &world, false, &());
    let two = sweep(&spec(2), &world, false, &());
    assert_eq!(one.coverage, two.coverage);
    let mut sum = Coverage::default();
    for seed in 0..6 {
        sum.merge(
            &run_seed(seed, 300, &Overrides::default(), CheckMode::Incremental)
                .stats
                .coverage,
        );
    }
    assert_eq!(one.coverage, sum);
    let worlds = |prefix: &str| -> u64 {
        one.coverage
            .features()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    };
    assert_eq!(worlds("concurrency=sequential") + worlds("concurrency=threads"), 6);
    assert_eq!(worlds("mode="), 6);
    let json = one.coverage.to_json();
    for key in ["results", "transitions", "checks", "features"] {
        assert!(json.get(key).is_some(), "{key}");
    }
    assert!(json["results"]["register"]["Success"].as_u64().unwrap() > 0);
}

#[test]
fn nothing_counted_means_every_reachable_cell_is_missing() {
    let g = Gaps::of(&Coverage::default());
    assert!(g.never.contains(&("register", "Success")));
    assert!(!g.is_complete());
    assert!(g.unexpected.is_empty());
}
