//! The `pgmsim` command line: parses arguments (`args`) and prints (`commands`); the work
//! is done by the library (`run`, `sweep`, `shrink`, `trace`).

mod args;
pub mod bench;
mod commands;
mod coverage;
mod explore_cmd;
mod failure;
mod long_run;
mod out;
mod progress;
mod report;
mod steplog;
mod sweep_cmd;

use clap::{Parser, Subcommand};

use out::errln;

use args::{BenchArgs, ConfigArgs, ExploreArgs, ReplayArgs, RunArgs, ShrinkArgs, SweepArgs};

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
    /// Run every schedule of a small concurrent trace (or of a seed's operations) with at
    /// most K preemptions, breadth-first by preemptions.
    Explore(ExploreArgs),
    /// Measure simulator throughput.
    Bench(BenchArgs),
    /// Print the configuration a seed draws (JSON; edit it and pass it back with --config).
    Config(ConfigArgs),
    /// Write a self-contained HTML report of a trace (page states over time, operations,
    /// the failure with expected versus actual).
    Report(report::ReportArgs),
    /// Sweep seeds and print what they exercised (operation x result, page transitions,
    /// checks, swarm features) and the cells never reached.
    Coverage(coverage::CoverageArgs),
}

/// Exit codes.
pub mod exit {
    /// Every invariant held (on everything that ran).
    pub const OK: i32 = 0;
    /// An invariant failed, or a replay's trace hash drifted.
    pub const FAILURE: i32 = 1;
    /// Bad arguments, a bad file or configuration, an unwritable output.
    pub const BAD_INPUT: i32 = 2;
    /// `replay --max-time` ran out before the last step (nothing failed before it).
    pub const INCOMPLETE: i32 = 3;
}

/// Runs the command line; returns the exit code ([`exit`]).
pub fn main_entry() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::BAD_INPUT } else { exit::OK };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        None => default_sweep(),
        Some(Command::Run(a)) => commands::run(a),
        Some(Command::Sweep(a)) => sweep_cmd::sweep(a),
        Some(Command::Replay(a)) => commands::replay(a),
        Some(Command::Shrink(a)) => commands::shrink(a),
        Some(Command::Explore(a)) => explore_cmd::explore(a),
        Some(Command::Bench(a)) => bench::cmd_bench(&a),
        Some(Command::Config(a)) => commands::config(a),
        Some(Command::Report(a)) => report::report(a),
        Some(Command::Coverage(a)) => coverage::coverage(a),
    }
}

/// The README's main job: the default sweep.
fn default_sweep() -> i32 {
    errln!(
        "pgmsim: no command given: running the default sweep (seeds 0..10000, 2000 steps each, all cores; see `pgmsim --help`)"
    );
    match Cli::try_parse_from(["pgmsim", "sweep", "--seeds", "0..10000", "--steps", "2000"]) {
        Ok(Cli {
            command: Some(Command::Sweep(args)),
        }) => sweep_cmd::sweep(args),
        _ => unreachable!("the default sweep's arguments parse"),
    }
}
