//! The `pgmsim` command line: run, sweep, replay, shrink, bench.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::check::CheckMode;
use crate::config::{Overrides, SimConfig, Weights};
use crate::mmu::Mode;
use crate::run::{replay, run_config, RunReport};
use crate::shrink::shrink;
use crate::trace::Trace;

/// Deterministic simulation of a hypervisor's guest-physical access handler manager.
#[derive(Debug, Parser)]
#[command(name = "pgmsim", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one seed.
    Run(RunArgs),
    /// Run a range of seeds (stops at the first failure unless --keep-going).
    Sweep(SweepArgs),
    /// Replay a trace file (or, with --fuzz, a fuzz input).
    Replay(ReplayArgs),
    /// Minimise a failing trace.
    Shrink(ShrinkArgs),
    /// Measure simulator throughput.
    Bench(BenchArgs),
    /// Print the configuration a seed draws (JSON; edit it and pass it back with --config).
    Config(ConfigArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Shadow,
    Nem,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CheckArg {
    Incremental,
    Full,
}

impl From<CheckArg> for CheckMode {
    fn from(c: CheckArg) -> Self {
        match c {
            CheckArg::Incremental => CheckMode::Incremental,
            CheckArg::Full => CheckMode::Full,
        }
    }
}

#[derive(Debug, Args, Clone)]
struct WorldArgs {
    /// Steps per seed.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Force the vCPU count (1-8).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    vcpus: Option<u8>,
    /// Force shadow paging or NEM.
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Force the main RAM range size in MiB (e.g. 4096 for a 4 GiB guest).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16384))]
    ram_mib: Option<u32>,
    /// Force the handler capacity (32-65536).
    #[arg(long, value_parser = clap::value_parser!(u32).range(32..=65536))]
    max_handlers: Option<u32>,
    /// Force the reverse-map capacity per page.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
    revmap: Option<u8>,
    /// Full check every N steps in incremental mode.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    full_check_every: Option<u32>,
    /// Force the TLB geometry, `SETSxWAYS` (e.g. 16x4).
    #[arg(long, value_parser = parse_tlb)]
    tlb: Option<(u16, u8)>,
    /// Force the number of guest address spaces (1-16).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
    address_spaces: Option<u8>,
    /// Force the size of the virtual window in pages (1-65536).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    va_pages: Option<u32>,
    /// Force MMIO2 dirty tracking on or off.
    #[arg(long)]
    dirty_tracking: Option<bool>,
    /// Force exclusive NEM mode (aliasing refused) on or off, in NEM mode.
    #[arg(long)]
    nem_exclusive: Option<bool>,
    /// Force an operation family's weight, `NAME=N` (repeatable; 0 disables it). Names:
    /// register, deregister, ex_api, reset, temp_off, alias, reset_alias, query, invalid,
    /// kernel, access, harvest, vm_reset.
    #[arg(long = "weight", value_parser = parse_weight)]
    weights: Vec<(usize, u32)>,
    /// Use this configuration (JSON, as printed by `pgmsim config`) for every seed instead of
    /// drawing one; the other flags still apply on top.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Check mode.
    #[arg(long, value_enum, default_value_t = CheckArg::Incremental)]
    check: CheckArg,
    /// Where failing traces are written.
    #[arg(long, default_value = "pgmsim-failures")]
    out: PathBuf,
    /// Shrink budget (replays).
    #[arg(long, default_value_t = 3000)]
    shrink_budget: u64,
}

impl WorldArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            vcpus: self.vcpus,
            mode: self.mode.map(|m| match m {
                ModeArg::Shadow => Mode::Shadow,
                ModeArg::Nem => Mode::Nem,
            }),
            ram_mib: self.ram_mib,
            max_handlers: self.max_handlers,
            revmap_capacity: self.revmap,
            tlb: self.tlb,
            full_check_every: self.full_check_every,
            address_spaces: self.address_spaces,
            va_pages: self.va_pages,
            dirty_tracking: self.dirty_tracking,
            nem_exclusive: self.nem_exclusive,
            weights: {
                let mut w = [None; Weights::NAMES.len()];
                for &(i, n) in &self.weights {
                    w[i] = Some(n);
                }
                w
            },
        }
    }

    /// The configuration file of `--config`, if any, validated (exit code 2 on a bad file).
    fn base_config(&self) -> Result<Option<SimConfig>, i32> {
        let Some(path) = &self.config else { return Ok(None) };
        let text = std::fs::read_to_string(path).map_err(|e| {
            eprintln!("pgmsim: {}: {e}", path.display());
            2
        })?;
        let config: SimConfig = serde_json::from_str(&text).map_err(|e| {
            eprintln!("pgmsim: {}: not a pgmsim configuration: {e}", path.display());
            2
        })?;
        config.validate().map_err(|e| {
            eprintln!("pgmsim: {}: {e}", path.display());
            2
        })?;
        Ok(Some(config))
    }

    /// The world of `seed`: the `--config` file or the seed's draw, with the flags applied.
    fn config_for(&self, seed: u64, base: &Option<SimConfig>) -> SimConfig {
        let ov = self.overrides();
        match base {
            Some(c) => {
                let mut c = c.clone();
                c.apply(&ov);
                c
            }
            None => SimConfig::from_seed(seed, &ov),
        }
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The seed.
    #[arg(long)]
    seed: u64,
    #[command(flatten)]
    world: WorldArgs,
    /// Also write the run's trace here (passing or not).
    #[arg(long)]
    save_trace: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct SweepArgs {
    /// Seed range, `A..B` (B excluded).
    #[arg(long, value_parser = parse_range, default_value = "0..200")]
    seeds: (u64, u64),
    /// Run only shard I of N (`I/N`, seeds where (seed - A) % N == I).
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Worker threads (default: available cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Keep going after failures.
    #[arg(long)]
    keep_going: bool,
    #[command(flatten)]
    world: WorldArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// Trace file (or fuzz input with --fuzz).
    trace: PathBuf,
    /// Treat the file as an input of this fuzz target and convert it to a trace first.
    #[arg(long, value_parser = ["ops_differential"])]
    fuzz: Option<String>,
    /// Where to write the converted trace (with --fuzz).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Check mode (default: the trace's own).
    #[arg(long, value_enum)]
    check: Option<CheckArg>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ShrinkArgs {
    /// Failing trace.
    trace: PathBuf,
    /// Output file (default: TRACE with `.min.json`).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Replay budget.
    #[arg(long, default_value_t = 5000)]
    budget: u64,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// The seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    world: WorldArgs,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Seeds per measurement.
    #[arg(long, default_value_t = 8)]
    seeds: u64,
    /// Steps per seed.
    #[arg(long, default_value_t = 20000)]
    steps: usize,
}

fn parse_tlb(s: &str) -> Result<(u16, u8), String> {
    let (a, b) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected SETSxWAYS, got {s:?}"))?;
    let sets: u16 = a.trim().parse().map_err(|e| format!("bad set count {a:?}: {e}"))?;
    let ways: u8 = b.trim().parse().map_err(|e| format!("bad way count {b:?}: {e}"))?;
    if sets == 0 || ways == 0 || sets as u32 * ways as u32 > 1 << 14 {
        return Err(format!(
            "TLB {sets}x{ways}: need at least 1x1 and at most 16384 entries"
        ));
    }
    Ok((sets, ways))
}

fn parse_weight(s: &str) -> Result<(usize, u32), String> {
    let (name, n) = s.split_once('=').ok_or_else(|| format!("expected NAME=N, got {s:?}"))?;
    let i = Weights::NAMES.iter().position(|w| *w == name.trim()).ok_or_else(|| {
        format!(
            "unknown operation family {name:?}; one of {}",
            Weights::NAMES.join(", ")
        )
    })?;
    let n: u32 = n.trim().parse().map_err(|e| format!("bad weight {n:?}: {e}"))?;
    Ok((i, n))
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("expected A..B, got {s:?}"))?;
    let a: u64 = a.trim().parse().map_err(|e| format!("bad start {a:?}: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("bad end {b:?}: {e}"))?;
    if a >= b {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok((a, b))
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("expected I/N, got {s:?}"))?;
    let i: u64 = i.trim().parse().map_err(|e| format!("bad shard index {i:?}: {e}"))?;
    let n: u64 = n.trim().parse().map_err(|e| format!("bad shard count {n:?}: {e}"))?;
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= I < N"));
    }
    Ok((i, n))
}

/// Exit codes: 0 all invariants held, 1 a failure, 2 bad arguments or input.
pub fn main_entry() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        None => default_sweep(),
        Some(Command::Run(a)) => cmd_run(a),
        Some(Command::Sweep(a)) => cmd_sweep(a),
        Some(Command::Replay(a)) => cmd_replay(a),
        Some(Command::Shrink(a)) => cmd_shrink(a),
        Some(Command::Bench(a)) => crate::cli_bench::cmd_bench(a.json, a.seeds, a.steps),
        Some(Command::Config(a)) => cmd_config(a),
    }
}

fn default_sweep() -> i32 {
    eprintln!(
        "pgmsim: no command given: running the default sweep (seeds 0..10000, 2000 steps each, all cores; see `pgmsim --help`)"
    );
    match Cli::try_parse_from(["pgmsim", "sweep", "--seeds", "0..10000", "--steps", "2000"]) {
        Ok(Cli {
            command: Some(Command::Sweep(args)),
        }) => cmd_sweep(args),
        _ => unreachable!("the default sweep's arguments parse"),
    }
}

fn cmd_config(a: ConfigArgs) -> i32 {
    let base = match a.world.base_config() {
        Ok(b) => b,
        Err(code) => return code,
    };
    let config = a.world.config_for(a.seed, &base);
    println!(
        "{}",
        serde_json::to_string_pretty(&config).expect("configurations serialise")
    );
    0
}

/// Writes the failing trace and its minimised form, prints everything a user needs, returns 1.
fn report_failure(r: &RunReport, out: &Path, budget: u64) -> i32 {
    let f = r.failure.as_ref().expect("called on failures");
    let name = match r.seed {
        Some(s) => format!("seed-{s}"),
        None => "trace".to_string(),
    };
    let full = out.join(format!("{name}.json"));
    let min = out.join(format!("{name}.min.json"));
    eprintln!(
        "FAILURE{}: {f}",
        r.seed.map(|s| format!(" (seed {s})")).unwrap_or_default()
    );
    eprintln!("  config: {}", r.config.summary());
    if let Some(op) = r.ops.last() {
        eprintln!(
            "  failing step {}: {}",
            f.step,
            serde_json::to_string(op).unwrap_or_default()
        );
    }
    let trace = r.trace();
    if let Err(e) = trace.save(&full) {
        eprintln!("  could not write {}: {e}", full.display());
        return 1;
    }
    eprintln!("  trace: {} ({} steps)", full.display(), trace.ops.len());
    match shrink(&trace, budget) {
        Some(s) => match s.trace.save(&min) {
            Ok(()) => {
                eprintln!(
                    "  minimised: {} ({} steps, {} replays; {})",
                    min.display(),
                    s.trace.ops.len(),
                    s.replays,
                    s.trace.failure.as_ref().map(|f| f.to_string()).unwrap_or_default()
                );
                eprintln!(
                    "  replay with: cargo run --release -p pgmsim-sim -- replay {}",
                    min.display()
                );
            }
            Err(e) => eprintln!("  could not write {}: {e}", min.display()),
        },
        None => eprintln!("  (the failure did not reproduce on replay: nondeterminism?)"),
    }
    1
}

fn print_report(r: &RunReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(&r.summary()).expect("summary serialises"));
    } else {
        let s = &r.stats;
        println!(
            "{}: {} steps, {} accesses ({} TLB hits, {} misses, {} shadow syncs), {} handler calls, {} guest faults, {} invariant checks ({} full), trace hash {:016x}: {}",
            r.seed.map(|s| format!("seed {s}")).unwrap_or_else(|| "trace".into()),
            r.ops.len(),
            s.accesses,
            s.tlb_hits,
            s.tlb_misses,
            s.shadow_syncs,
            s.handler_calls,
            s.guest_faults,
            s.invariant_checks,
            s.full_checks,
            r.trace_hash,
            if r.failure.is_some() { "FAILED" } else { "ok" }
        );
    }
}

fn cmd_run(a: RunArgs) -> i32 {
    let base = match a.world.base_config() {
        Ok(b) => b,
        Err(code) => return code,
    };
    let config = a.world.config_for(a.seed, &base);
    if !a.json {
        println!("seed {}: {}", a.seed, config.summary());
    }
    let r = run_config(a.seed, config, a.world.steps, a.world.check.into());
    print_report(&r, a.json);
    if let Some(path) = &a.save_trace {
        if let Err(e) = r.trace().save(path) {
            eprintln!("pgmsim: {e}");
            return 2;
        }
    }
    if r.failure.is_some() {
        return report_failure(&r, &a.world.out, a.world.shrink_budget);
    }
    0
}

fn cmd_sweep(a: SweepArgs) -> i32 {
    let base = match a.world.base_config() {
        Ok(b) => b,
        Err(code) => return code,
    };
    let check: CheckMode = a.world.check.into();
    let (start, end) = a.seeds;
    let seeds: Vec<u64> = (start..end)
        .filter(|s| a.shard.is_none_or(|(i, n)| (s - start) % n == i))
        .collect();
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failures: Mutex<Vec<RunReport>> = Mutex::new(Vec::new());
    let done = AtomicU64::new(0);
    let totals: Mutex<(u64, u64, u64)> = Mutex::new((0, 0, 0));
    let tty = std::io::stderr().is_terminal() && !a.json;
    let bar = if tty {
        let b = indicatif::ProgressBar::new(seeds.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {elapsed_precise} eta {eta} {msg}")
                .expect("valid template"),
        );
        Some(b)
    } else {
        None
    };
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&seed) = seeds.get(i) else { break };
                let r = run_config(seed, a.world.config_for(seed, &base), a.world.steps, check);
                {
                    let mut t = totals.lock().expect("totals lock");
                    t.0 += r.ops.len() as u64;
                    t.1 += r.stats.accesses;
                    t.2 += r.stats.invariant_checks;
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(f) = &r.failure {
                    if let Some(b) = &bar {
                        b.println(format!("seed {seed}: FAILED: {f}"));
                    } else if !a.json {
                        eprintln!("seed {seed}: FAILED: {f}");
                    }
                    failures.lock().expect("failures lock").push(r);
                    if !a.keep_going {
                        stop.store(true, Ordering::Relaxed);
                    }
                } else if let Some(b) = &bar {
                    b.inc(1);
                } else if !a.json && (n.is_multiple_of((seeds.len() as u64 / 20).max(50)) || n as usize == seeds.len())
                {
                    eprintln!("{n}/{} seeds done", seeds.len());
                }
            });
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut failures = failures.into_inner().expect("failures lock");
    failures.sort_by_key(|r| r.seed);
    let (steps, accesses, checks) = *totals.lock().expect("totals lock");
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    if a.json {
        let v = serde_json::json!({
            "seeds": n,
            "steps": steps,
            "accesses": accesses,
            "invariant_checks": checks,
            "failures": failures.len(),
            "failing_seeds": failures.iter().filter_map(|r| r.seed).collect::<Vec<_>>(),
            "seconds": secs,
        });
        println!("{v}");
    } else {
        println!(
            "sweep {}..{}{}: {n} seeds, {steps} steps, {accesses} accesses, {checks} invariant checks in {secs:.1}s ({:.0} steps/s on {jobs} threads): {} failure(s)",
            start,
            end,
            a.shard.map(|(i, k)| format!(" shard {i}/{k}")).unwrap_or_default(),
            steps as f64 / secs.max(1e-9),
            failures.len()
        );
    }
    match failures.first() {
        Some(r) => report_failure(r, &a.world.out, a.world.shrink_budget),
        None => 0,
    }
}

fn load_or_exit(path: &Path) -> Result<Trace, i32> {
    Trace::load(path).map_err(|e| {
        eprintln!("pgmsim: {e}");
        2
    })
}

fn cmd_replay(a: ReplayArgs) -> i32 {
    // With --fuzz, the converted trace is what `shrink` takes.
    let mut shrink_path = a.trace.clone();
    let trace = match &a.fuzz {
        Some(_) => {
            let bytes = match std::fs::read(&a.trace) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("pgmsim: {}: {e}", a.trace.display());
                    return 2;
                }
            };
            let t = crate::fuzzing::ops_differential_trace(&bytes);
            let out = a.output.clone().unwrap_or_else(|| a.trace.with_extension("trace.json"));
            if let Err(e) = t.save(&out) {
                eprintln!("pgmsim: {e}");
                return 2;
            }
            eprintln!("fuzz input converted to {} ({} steps)", out.display(), t.ops.len());
            shrink_path = out;
            t
        }
        None => match load_or_exit(&a.trace) {
            Ok(t) => t,
            Err(c) => return c,
        },
    };
    let check = a.check.map_or(trace.check, CheckMode::from);
    let r = replay(&trace, check);
    print_report(&r, a.json);
    if let Some(f) = &r.failure {
        eprintln!("FAILURE: {f}");
        eprintln!(
            "  shrink with: cargo run --release -p pgmsim-sim -- shrink {}",
            shrink_path.display()
        );
        return 1;
    }
    0
}

fn cmd_shrink(a: ShrinkArgs) -> i32 {
    let trace = match load_or_exit(&a.trace) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let out = a.output.unwrap_or_else(|| {
        let stem = a
            .trace
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "trace".into());
        a.trace.with_file_name(format!("{stem}.min.json"))
    });
    match shrink(&trace, a.budget) {
        None => {
            eprintln!(
                "pgmsim: {}: the trace does not fail when replayed; nothing to shrink",
                a.trace.display()
            );
            2
        }
        Some(s) => {
            if let Err(e) = s.trace.save(&out) {
                eprintln!("pgmsim: {e}");
                return 2;
            }
            println!(
                "{} steps -> {} steps ({} replays): {}",
                trace.ops.len(),
                s.trace.ops.len(),
                s.replays,
                s.trace.failure.as_ref().map(|f| f.to_string()).unwrap_or_default()
            );
            println!("written to {}", out.display());
            println!(
                "replay with: cargo run --release -p pgmsim-sim -- replay {}",
                out.display()
            );
            0
        }
    }
}
