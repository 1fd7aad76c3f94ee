//! Command-line arguments: every subcommand's flags, their parsers, and how the world flags
//! become a configuration.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::steplog::LogArgs;
use crate::check::CheckMode;
use crate::config::{Overrides, SimConfig, Weights};
use crate::mmu::Mode;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
    Shadow,
    Nem,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ShootdownArg {
    Sync,
    Async,
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected `on` or `off`, got {s:?}")),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CheckArg {
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
pub(crate) struct WorldArgs {
    /// Steps per seed.
    #[arg(long, default_value_t = 2000)]
    pub(crate) steps: usize,
    /// Force the vCPU count (1-8).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub(crate) vcpus: Option<u8>,
    /// Force shadow paging or NEM.
    #[arg(long, value_enum)]
    pub(crate) mode: Option<ModeArg>,
    /// Force the main RAM range size in MiB (e.g. 4096 for a 4 GiB guest).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub(crate) ram_mib: Option<u32>,
    /// Force the handler capacity (32-65536).
    #[arg(long, value_parser = clap::value_parser!(u32).range(32..=65536))]
    pub(crate) max_handlers: Option<u32>,
    /// Force the reverse-map capacity per page.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
    pub(crate) revmap: Option<u8>,
    /// Full check every N steps in incremental mode.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) full_check_every: Option<u32>,
    /// Force the TLB geometry, `SETSxWAYS` (e.g. 16x4).
    #[arg(long, value_parser = parse_tlb)]
    pub(crate) tlb: Option<(u16, u8)>,
    /// Force the number of guest address spaces (1-16).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub(crate) address_spaces: Option<u8>,
    /// Force the size of the virtual window in pages (1-65536).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub(crate) va_pages: Option<u32>,
    /// Force MMIO2 dirty tracking on or off.
    #[arg(long)]
    pub(crate) dirty_tracking: Option<bool>,
    /// Force exclusive NEM mode (aliasing refused) on or off, in NEM mode.
    #[arg(long)]
    pub(crate) nem_exclusive: Option<bool>,
    /// Force an operation family's weight, `NAME=N` (repeatable; 0 disables it). Names:
    /// register, deregister, ex_api, reset, temp_off, alias, reset_alias, query, invalid,
    /// kernel, access, harvest, vm_reset.
    #[arg(long = "weight", value_parser = parse_weight)]
    pub(crate) weights: Vec<(usize, u32)>,
    /// Force a concurrent world (`on`) or a sequential one (`off`); by default about one
    /// seed in three is concurrent.
    #[arg(long, value_parser = parse_on_off)]
    pub(crate) concurrency: Option<bool>,
    /// Scheduler of concurrent worlds: `random` or `pct:D` (D = 1..3).
    #[arg(long)]
    pub(crate) scheduler: Option<crate::conc::SchedulerKind>,
    /// Shootdown protocol of concurrent worlds: `sync` (default) or `async`.
    #[arg(long, value_enum)]
    pub(crate) shootdown: Option<ShootdownArg>,
    /// Device threads of concurrent worlds (1 or 2).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub(crate) devices: Option<u8>,
    /// Use this configuration (JSON, as printed by `pgmsim config`) for every seed instead of
    /// drawing one; the other flags still apply on top.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Check mode.
    #[arg(long, value_enum, default_value_t = CheckArg::Incremental)]
    pub(crate) check: CheckArg,
    /// Where failing traces are written.
    #[arg(long, default_value = "pgmsim-failures")]
    pub(crate) out: PathBuf,
    /// Shrink budget (replays).
    #[arg(long, default_value_t = 3000)]
    pub(crate) shrink_budget: u64,
}

impl WorldArgs {
    pub(crate) fn overrides(&self) -> Overrides {
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
            concurrency: crate::conc::config::ConcurrencyOverrides {
                enabled: self.concurrency,
                scheduler: self.scheduler,
                shootdown: self.shootdown.map(|s| match s {
                    ShootdownArg::Sync => crate::conc::Shootdown::Sync,
                    ShootdownArg::Async => crate::conc::Shootdown::Async,
                }),
                devices: self.devices,
            },
        }
    }

    /// The configuration file of `--config`, if any, validated (exit code 2 on a bad file).
    pub(crate) fn base_config(&self) -> Result<Option<SimConfig>, i32> {
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
    pub(crate) fn config_for(&self, seed: u64, base: &Option<SimConfig>) -> SimConfig {
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
pub(crate) struct RunArgs {
    /// The seed.
    #[arg(long)]
    pub(crate) seed: u64,
    #[command(flatten)]
    pub(crate) world: WorldArgs,
    /// Also write the run's trace here (passing or not).
    #[arg(long)]
    pub(crate) save_trace: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) log: LogArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// Seed range, `A..B` (B excluded).
    #[arg(long, value_parser = parse_range, default_value = "0..200")]
    pub(crate) seeds: (u64, u64),
    /// Run only shard I of N (`I/N`, seeds where (seed - A) % N == I).
    #[arg(long, value_parser = parse_shard)]
    pub(crate) shard: Option<(u64, u64)>,
    /// Worker threads (default: available cores).
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Keep going after failures.
    #[arg(long)]
    pub(crate) keep_going: bool,
    #[command(flatten)]
    pub(crate) world: WorldArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also write an HTML report of the sweep (coverage tables, failures found) here.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// Trace file (or fuzz input with --fuzz).
    pub(crate) trace: PathBuf,
    /// Treat the file as an input of this fuzz target and convert it to a trace first.
    #[arg(long, value_parser = ["ops_differential"])]
    pub(crate) fuzz: Option<String>,
    /// Where to write the converted trace (with --fuzz).
    #[arg(short, long)]
    pub(crate) output: Option<PathBuf>,
    /// Check mode (default: the trace's own).
    #[arg(long, value_enum)]
    pub(crate) check: Option<CheckArg>,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) log: LogArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ShrinkArgs {
    /// Failing trace.
    pub(crate) trace: PathBuf,
    /// Output file (default: TRACE with `.min.json`).
    #[arg(short, long)]
    pub(crate) output: Option<PathBuf>,
    /// Replay budget.
    #[arg(long, default_value_t = 5000)]
    pub(crate) budget: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// The seed.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    #[command(flatten)]
    pub(crate) world: WorldArgs,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    /// Seeds per measurement.
    #[arg(long, default_value_t = 8)]
    pub(crate) seeds: u64,
    /// Steps per seed.
    #[arg(long, default_value_t = 20000)]
    pub(crate) steps: usize,
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

/// Worker threads of `--jobs`: the given number (at least 1), else every core.
pub(crate) fn workers(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

pub(crate) fn parse_range(s: &str) -> Result<(u64, u64), String> {
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
