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
        max_time: None,
        seed_hashes: false,
    };
    let world = |seed| Ok(SimConfig::from_seed(seed, &Overrides::default()));
    let one = sweep(&spec(1), &world, &());
    let two = sweep(&spec(2), &world, &());
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

/// Every register placement the generator draws on purpose (issue #11 item 7) is reached by
/// a short sweep, attempted and registered; the two 4 GiB ones register only in the layouts
/// with RAM there (one in eight), so the sweep takes 48 seeds.
#[test]
fn a_short_sweep_reaches_every_register_placement() {
    let spec = SweepSpec {
        start: 0,
        end: 48,
        shard: None,
        jobs: 1,
        keep_going: true,
        steps: 400,
        check: CheckMode::Incremental,
        max_time: None,
        seed_hashes: false,
    };
    let report = sweep(
        &spec,
        &|seed| Ok(SimConfig::from_seed(seed, &Overrides::default())),
        &(),
    );
    assert!(report.failing_seeds().is_empty(), "{:?}", report.failing_seeds());
    let cov = &report.coverage;
    let placements: Vec<(&str, u64, u64)> = cov.placements().collect();
    assert_eq!(placements.len(), 9);
    for (p, tried, ok) in placements {
        assert!(tried > 0, "{p} never attempted");
        assert!(ok > 0, "{p}: {ok} registered");
    }
    let g = Gaps::of(cov);
    assert!(g.placements_never.is_empty(), "{:?}", g.placements_never);
    assert!(g.placements_unexpected.is_empty(), "{:?}", g.placements_unexpected);
    let json = cov.to_json();
    assert!(json["placements"]["fills_hole"]["registered"].as_u64().unwrap() > 0);
}

/// Placements are classified from the call's range, the handlers before it and the layout,
/// whoever made the call: here hand-written calls in a world given a RAM range across 4 GiB.
#[test]
fn placements_classify_the_calls_applied() {
    use pgmsim::layout::RamRangeSpec;
    use pgmsim::{Hpa, RangeKind};
    let ov = Overrides {
        dirty_tracking: Some(false),
        ..sequential()
    };
    let mut config = SimConfig::from_seed(3, &ov);
    // The drawn high MMIO2 range (at or just above 4 GiB) makes way; its region stays.
    config.layout.ram_ranges.retain(|r| r.last() < 0xffff_0000);
    config.layout.ram_ranges.push(RamRangeSpec {
        first: 0xffff_0000,
        pages: 32,
        kind: RangeKind::Ram {
            host_base: Hpa(0x8000_0000),
        },
    });
    config.layout.ram_ranges.sort_by_key(|r| r.first);
    let mut w = World::new(config).unwrap();
    let mut register = |first: u64, last: u64| {
        let call = ApiCall::Register {
            first,
            last,
            ty: 0, // a Write type: any byte range
            user: 0,
            described: false,
        };
        w.apply(&Op::Call(call), CheckMode::Full).unwrap();
    };
    let base = 40 << 12;
    register(base + 0x100, base + 0x1ff);
    register(base + 0x400, base + 0x4ff); // shares the first's (only) page
    register(base + 0x200, base + 0x3ff); // fills the hole: adjacent both ways, same page
    register(base + 0x4ff, base + 0x5ff); // overlaps: a Conflict, only attempted
    register(base + 0x500, base + 0x500); // one byte above the last
    register(0xffff_f000, 0xffff_ffff);
    register(0xffff_e000, 0x1_0000_0fff); // overlaps the one before: a Conflict
    register(0x1_0000_1000, 0x1_0000_ffff); // ends at the range's end
    register(0xffff_0000, 0xffff_0fff);
    let cov = &w.stats().coverage;
    let count = |p: &str| {
        (
            cov.placement_count(p, "attempted"),
            cov.placement_count(p, "registered"),
        )
    };
    assert_eq!(count("fills_hole"), (1, 1));
    assert_eq!(count("adjacent_below"), (1, 1));
    assert_eq!(count("adjacent_above"), (2, 2));
    // Every call on that page but the first; the overlapping one is refused.
    assert_eq!(count("shares_first_page"), (4, 3));
    assert_eq!(count("shares_last_page"), (4, 3));
    assert_eq!(count("ends_at_4gib"), (1, 1));
    assert_eq!(count("crosses_4gib"), (1, 0));
    assert_eq!(count("ends_at_ram_end"), (1, 1));
    assert_eq!(count("starts_at_ram_start"), (1, 1));
    assert_eq!(cov.count("register", "Conflict"), 2);
    let g = Gaps::of(cov);
    assert!(g.placements_unexpected.is_empty(), "{:?}", g.placements_unexpected);
}
