//! The `pgmsim` command line: parses arguments (`args`) and prints (`commands`); the work
//! is done by the library (`run`, `sweep`, `shrink`, `trace`).

mod args;
pub mod bench;
mod commands;
mod coverage;
mod report;
mod steplog;

use clap::{Parser, Subcommand};

use args::{BenchArgs, ConfigArgs, ReplayArgs, RunArgs, ShrinkArgs, SweepArgs};

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
    /// Write a self-contained HTML report of a trace (page states over time, operations,
    /// the failure with expected versus actual).
    Report(report::ReportArgs),
    /// Sweep seeds and print what they exercised (operation x result, page transitions,
    /// checks, swarm features) and the cells never reached.
    Coverage(coverage::CoverageArgs),
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
        Some(Command::Run(a)) => commands::run(a),
        Some(Command::Sweep(a)) => commands::sweep(a),
        Some(Command::Replay(a)) => commands::replay(a),
        Some(Command::Shrink(a)) => commands::shrink(a),
        Some(Command::Bench(a)) => bench::cmd_bench(a.json, a.seeds, a.steps),
        Some(Command::Config(a)) => commands::config(a),
        Some(Command::Report(a)) => report::report(a),
        Some(Command::Coverage(a)) => coverage::coverage(a),
    }
}

/// The README's main job: the default sweep.
fn default_sweep() -> i32 {
    eprintln!(
        "pgmsim: no command given: running the default sweep (seeds 0..10000, 2000 steps each, all cores; see `pgmsim --help`)"
    );
    match Cli::try_parse_from(["pgmsim", "sweep", "--seeds", "0..10000", "--steps", "2000"]) {
        Ok(Cli {
            command: Some(Command::Sweep(args)),
        }) => commands::sweep(args),
        _ => unreachable!("the default sweep's arguments parse"),
    }
}
