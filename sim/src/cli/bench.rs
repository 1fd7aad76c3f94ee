//! `pgmsim bench`: simulator throughput, measured (wall clock here only measures, it never
//! shapes a run).

use std::time::Instant;

use serde_json::json;

use super::args::BenchArgs;
use super::exit;
use super::out::{errln, outln};
use crate::check::CheckMode;
use crate::config::{Overrides, SimConfig};
use crate::mmu::guest_pt::va_of;
use crate::mmu::Mode;
use crate::op::{AccessKind, Op};
use crate::run::run_generated;
use crate::world::World;

fn steps_per_sec(seeds: u64, steps: usize, ov: &Overrides, check: CheckMode) -> (f64, u64) {
    let t = Instant::now();
    let mut total = 0u64;
    for seed in 0..seeds {
        let r = run_generated(seed, SimConfig::from_seed(seed, ov), steps as u64, check, &mut ());
        if let Some(f) = &r.failure {
            errln!("bench seed {seed} failed: {f}");
        }
        total += r.steps;
    }
    (total as f64 / t.elapsed().as_secs_f64(), total)
}

/// Steps per second of the step loop alone (world built and final check excluded), so the
/// per-step cost can be compared across guest sizes.
fn loop_steps_per_sec(seeds: u64, steps: usize, ov: &Overrides) -> f64 {
    let mut total = 0u64;
    let mut secs = 0f64;
    for seed in 0..seeds {
        let Ok(mut w) = World::new(SimConfig::from_seed(seed, ov)) else {
            continue;
        };
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
        let t = Instant::now();
        for _ in 0..steps {
            let op = crate::gen::next_op(&w, &mut rng);
            if let Err(f) = w.apply(&op, CheckMode::Incremental) {
                errln!("bench seed {seed} failed: {f}");
                break;
            }
            total += 1;
        }
        secs += t.elapsed().as_secs_f64();
    }
    total as f64 / secs.max(1e-9)
}

/// A one-vCPU shadow-mode world with virtual page 3 mapped writable to a RAM page, and a read
/// of that page at a given offset: the TLB-hit path's fixture (shared with the criterion bench).
pub fn tlb_hit_world() -> (World, impl Fn(u64) -> Op) {
    let ov = Overrides {
        mode: Some(Mode::Shadow),
        vcpus: Some(1),
        full_check_every: Some(u32::MAX),
        dirty_tracking: Some(false),
        ..Overrides::default()
    };
    let mut w = World::new(SimConfig::from_seed(1, &ov)).expect("bench world");
    let gp = w.guest().pool().range().1 .0 + 1;
    let map = Op::Map {
        space: 0,
        vpi: 3,
        gp,
        write: true,
        exec: false,
    };
    w.apply(&map, CheckMode::Incremental).expect("map");
    let read = |i: u64| Op::Access {
        vcpu: 0,
        va: va_of(3).0 + (i * 8) % 4096,
        size: 8,
        kind: AccessKind::Read,
        value: 0,
    };
    (w, read)
}

/// Guest accesses per second when every access hits the TLB (with all per-step checks on).
fn tlb_hit_rate(n: u64) -> f64 {
    let (mut w, read) = tlb_hit_world();
    w.apply(&read(0), CheckMode::Incremental).expect("warm");
    let t = Instant::now();
    for i in 0..n {
        if let Err(f) = w.apply(&read(i), CheckMode::Incremental) {
            errln!("bench access failed: {f}");
            break;
        }
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Steps per second of concurrent worlds (threads, scheduler and everything else drawn per
/// seed), incremental checks, on this one thread: by the wall clock, and by this thread's
/// CPU time when known (what the load of a shared machine does not distort).
fn concurrent_rate(seeds: u64, steps: usize) -> (f64, Option<f64>, u64) {
    let ov = Overrides {
        concurrency: crate::conc::config::ConcurrencyOverrides {
            enabled: Some(true),
            ..Default::default()
        },
        ..Overrides::default()
    };
    let cpu = super::long_run::thread_cpu_secs();
    let (wall, total) = steps_per_sec(seeds, steps, &ov, CheckMode::Incremental);
    let cpu = cpu
        .zip(super::long_run::thread_cpu_secs())
        .map(|(a, b)| total as f64 / (b - a).max(1e-9));
    (wall, cpu, total)
}

/// `pgmsim bench`: the throughput table, the long-run benchmark, or its child process.
pub(crate) fn cmd_bench(a: &BenchArgs) -> i32 {
    if let Some(steps) = a.peak_memory_child {
        return super::long_run::child(steps);
    }
    if let Some(steps) = a.long_run {
        return super::long_run::bench(steps, a.json);
    }
    throughput(a.json, a.seeds, a.steps)
}

/// Runs the throughput measurements; prints JSON or a table.
fn throughput(as_json: bool, seeds: u64, steps: usize) -> i32 {
    let default = Overrides::default();
    let (inc, inc_steps) = steps_per_sec(seeds, steps, &default, CheckMode::Incremental);
    let (full, full_steps) = steps_per_sec(seeds.min(4), steps / 4, &default, CheckMode::Full);
    let (conc, conc_cpu, conc_steps) = concurrent_rate(seeds, steps);
    let hits = tlb_hit_rate(1_000_000);
    let small = Overrides {
        ram_mib: Some(64),
        mode: Some(Mode::Shadow),
        full_check_every: Some(u32::MAX),
        ..default
    };
    let big = Overrides {
        ram_mib: Some(4096),
        ..small
    };
    let ram64 = loop_steps_per_sec(seeds.min(4), steps, &small);
    let ram4g = loop_steps_per_sec(seeds.min(4), steps, &big);
    if as_json {
        outln!(
            "{}",
            json!({
                "steps_per_sec_incremental": inc.round(),
                "steps_incremental": inc_steps,
                "steps_per_sec_full": full.round(),
                "steps_full": full_steps,
                "steps_per_sec_concurrent": conc.round(),
                "steps_per_cpu_sec_concurrent": conc_cpu.map(f64::round),
                "steps_concurrent": conc_steps,
                "tlb_hit_accesses_per_sec": hits.round(),
                "loop_steps_per_sec_64mib_guest": ram64.round(),
                "loop_steps_per_sec_4gib_guest": ram4g.round(),
            })
        );
    } else {
        outln!("default mix, incremental checks: {inc:>12.0} steps/s ({inc_steps} steps)");
        outln!("default mix, full checks:        {full:>12.0} steps/s ({full_steps} steps)");
        let per_cpu = conc_cpu.map_or(String::new(), |c| format!(", {c:.0} per CPU second"));
        outln!("concurrent worlds, incremental:  {conc:>12.0} steps/s ({conc_steps} steps, one thread{per_cpu})");
        outln!("TLB-hit guest accesses:          {hits:>12.0} accesses/s (differential check on)");
        outln!("64 MiB guest, incremental:       {ram64:>12.0} steps/s (step loop only, no periodic full check)");
        outln!("4 GiB guest, incremental:        {ram4g:>12.0} steps/s (step loop only, no periodic full check)");
    }
    exit::OK
}
