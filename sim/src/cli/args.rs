//! Command-line arguments: every subcommand's flags, their parsers, and how the world flags
//! become a configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::steplog::LogArgs;
use crate::check::CheckMode;
use crate::config::{Overrides, PlatformFault, SimConfig, Weights, MAX_RAM_MIB};
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

impl ShootdownArg {
    /// The protocol this flag names.
    pub(crate) fn protocol(self) -> crate::conc::Shootdown {
        match self {
            ShootdownArg::Sync => crate::conc::Shootdown::Sync,
            ShootdownArg::Async => crate::conc::Shootdown::Async,
        }
    }
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
    pub(crate) steps: u64,
    /// Force the vCPU count (1-8).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub(crate) vcpus: Option<u8>,
    /// Force shadow paging or NEM.
    #[arg(long, value_enum)]
    pub(crate) mode: Option<ModeArg>,
    /// Force the main RAM range size in MiB (e.g. 4096 for a 4 GiB guest).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_RAM_MIB as i64))]
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
    /// Force exclusive NEM mode (aliasing refused) on or off; `true` implies `--mode nem`.
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
    /// Schedule seed of concurrent worlds: the same world and workload under another
    /// schedule (with `--config` and `--seed`, everything but the schedule stays).
    #[arg(long)]
    pub(crate) schedule_seed: Option<u64>,
    /// Use this configuration (JSON, as printed by `pgmsim config`) for every seed instead of
    /// drawing one; the other flags still apply on top (`--ram-mib` resizes its first range).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Run on a deliberately broken platform, to see the checks catch it end to end (the
    /// fault is stored in the configuration, so its traces replay and shrink the same way).
    #[arg(long, value_enum)]
    pub(crate) platform_fault: Option<PlatformFault>,
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
            platform_fault: self.platform_fault,
            concurrency: crate::conc::config::ConcurrencyOverrides {
                enabled: self.concurrency,
                scheduler: self.scheduler,
                shootdown: self.shootdown.map(ShootdownArg::protocol),
                devices: self.devices,
                schedule_seed: self.schedule_seed,
            },
        }
    }

    /// The configuration file of `--config`, if any, parsed (unknown fields refused).
    pub(crate) fn base_config(&self) -> Result<Option<SimConfig>, String> {
        let Some(path) = &self.config else { return Ok(None) };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let config: SimConfig =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a pgmsim configuration: {e}", path.display()))?;
        Ok(Some(config))
    }

    /// The world of `seed`: the `--config` file or the seed's draw, with the flags applied,
    /// validated. The error names where the configuration came from and what is wrong.
    pub(crate) fn config_for(&self, seed: u64, base: &Option<SimConfig>) -> Result<SimConfig, String> {
        let ov = self.overrides();
        let config = match base {
            Some(c) => {
                let mut c = c.clone();
                c.apply(&ov);
                c
            }
            None => SimConfig::from_seed(seed, &ov),
        };
        config
            .validate()
            .map_err(|e| match (&self.config, self.has_overrides()) {
                (Some(path), true) => format!("{} with the command-line flags on top: {e}", path.display()),
                (Some(path), false) => format!("{}: {e}", path.display()),
                (None, _) => format!("seed {seed} with the command-line flags: {e}"),
            })?;
        Ok(config)
    }

    pub(crate) fn has_overrides(&self) -> bool {
        self.overrides() != Overrides::default()
    }
}

/// `--max-time` and `--step-timeout`, shared by the commands that run steps.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct TimeArgs {
    /// Stop after this long (`90`, `90s`, `15m`, `2h`, `500ms`); what ran is reported as
    /// incomplete.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) max_time: Option<Duration>,
    #[command(flatten)]
    pub(crate) step: StepTimeoutArg,
}

/// `--step-timeout`: the wall-clock watchdog of `run::watchdog`.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct StepTimeoutArg {
    /// A step that makes no progress for this long is a `hang` failure (its thread is
    /// abandoned; the run reports it, a sweep moves on to the next seed). The last resort
    /// for loops outside the manager's asserted bounds; `off` runs unwatched.
    #[arg(long, value_parser = parse_step_timeout, default_value = "60s")]
    pub(crate) step_timeout: StepTimeout,
}

impl StepTimeoutArg {
    /// Sets the process-wide step budget.
    pub(crate) fn install(self) {
        crate::run::watchdog::set_step_timeout(self.step_timeout.0);
    }
}

/// A step budget, or none (`off`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepTimeout(pub(crate) Option<Duration>);

fn parse_step_timeout(s: &str) -> Result<StepTimeout, String> {
    if s.trim() == "off" {
        return Ok(StepTimeout(None));
    }
    parse_duration(s).map(|d| StepTimeout(Some(d)))
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The seed.
    #[arg(long)]
    pub(crate) seed: u64,
    #[command(flatten)]
    pub(crate) world: WorldArgs,
    /// Also write the run's trace here (passing or not), streamed as the run goes.
    #[arg(long)]
    pub(crate) save_trace: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) time: TimeArgs,
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
    /// Worker threads, 1-1024 (default: available cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) jobs: Option<u16>,
    /// Keep going after failures (one trace, and its minimised form, per failure signature).
    #[arg(long)]
    pub(crate) keep_going: bool,
    /// List every seed's trace hash in the JSON report.
    #[arg(long)]
    pub(crate) seed_hashes: bool,
    #[command(flatten)]
    pub(crate) world: WorldArgs,
    #[command(flatten)]
    pub(crate) time: TimeArgs,
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
    /// Replay a concurrent trace under this shootdown protocol instead of its own (the same
    /// operations and schedule; the recorded trace hash then does not apply).
    #[arg(long, value_enum)]
    pub(crate) shootdown: Option<ShootdownArg>,
    #[command(flatten)]
    pub(crate) time: TimeArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) log: LogArgs,
}

/// A seed's exploration grows fast with its operations: `--steps` defaults to 10 here.
#[derive(Debug, Args)]
#[command(mut_arg("steps", |a| a.default_value("10")))]
pub(crate) struct ExploreArgs {
    /// A concurrent trace: its configuration, operations, threads and quiescent points are
    /// kept, only the schedule varies. Without it, `--seed` (and the world flags) make one.
    pub(crate) trace: Option<PathBuf>,
    /// Explore the operations `pgmsim run --seed S` would run (with `--steps` and the
    /// world flags; concurrency is forced on).
    #[arg(long, conflicts_with = "trace")]
    pub(crate) seed: Option<u64>,
    /// Explore every schedule with at most this many preemptions.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=16))]
    pub(crate) max_preemptions: u32,
    /// Stop after this many schedules (the report says the bound cut the search).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_schedules: u64,
    #[command(flatten)]
    pub(crate) world: WorldArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
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
    #[command(flatten)]
    pub(crate) step: StepTimeoutArg,
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
    /// Instead, the long-run benchmark: steps/s of one seed at 10^5 and 10^6 steps, and the
    /// peak memory of a run of this many steps (in a child process).
    #[arg(long, value_name = "STEPS")]
    pub(crate) long_run: Option<u64>,
    /// (Internal: the long run's child process.) Run seed 1 for this many steps and print
    /// the peak resident memory.
    #[arg(long, hide = true)]
    pub(crate) peak_memory_child: Option<u64>,
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

fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("expected a duration such as 90s, 15m or 2h, got {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s, m or h")),
    };
    if !(secs > 0.0 && secs <= 366.0 * 86400.0) {
        return Err(format!("{s:?}: the time limit must be positive and at most a year"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["", "0", "-1", "3 days", "1e400", "10y"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
