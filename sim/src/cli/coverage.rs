//! `pgmsim coverage --seeds A..B`: sweeps the seeds (every one, failing or not) and prints
//! what they exercised and which cells they never reached.

use clap::Args;

use super::args::{parse_range, workers, WorldArgs};
use crate::coverage::{self, Gaps};
use crate::sweep::{self, SweepSpec};

/// `pgmsim coverage` flags.
#[derive(Debug, Args)]
pub(crate) struct CoverageArgs {
    /// Seed range, `A..B` (B excluded).
    #[arg(long, value_parser = parse_range, default_value = "0..200")]
    pub(crate) seeds: (u64, u64),
    /// Worker threads (default: available cores).
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    #[command(flatten)]
    pub(crate) world: WorldArgs,
    /// Exit with code 1 when a reachable cell was never reached or an unexpected one counted.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `pgmsim coverage`.
pub(crate) fn coverage(a: CoverageArgs) -> i32 {
    let base = match a.world.base_config() {
        Ok(b) => b,
        Err(e) => return super::commands::bad_input(&e),
    };
    let spec = SweepSpec {
        start: a.seeds.0,
        end: a.seeds.1,
        shard: None,
        jobs: workers(a.jobs),
        keep_going: true,
        steps: a.world.steps,
        check: a.world.check.into(),
        max_time: None,
        seed_hashes: false,
    };
    let report = sweep::sweep(&spec, &|seed| a.world.config_for(seed, &base), &());
    let gaps = Gaps::of(&report.coverage);
    let failing: Vec<u64> = report.failing_seeds();
    if a.json {
        let never: Vec<String> = gaps.never.iter().map(|(o, r)| format!("{o} x {r}")).collect();
        let t_never: Vec<String> = gaps.transitions_never.iter().map(coverage::transition_text).collect();
        let v = serde_json::json!({
            "seeds": report.seeds,
            "steps": report.steps,
            "failing_seeds": failing,
            "coverage": report.coverage.to_json(),
            "never_reached": never,
            "transitions_never_reached": t_never,
            "placements_never_reached": gaps.placements_never.iter().map(|(p, c)| format!("{p} x {c}")).collect::<Vec<_>>(),
            "unexpected": gaps
                .unexpected
                .iter()
                .map(|(o, r, n)| format!("{o} x {r}: {n}"))
                .chain(gaps.placements_unexpected.iter().map(|(p, c, n)| format!("placement {p} x {c}: {n}")))
                .collect::<Vec<_>>(),
        });
        super::out::outln!("{v}");
    } else {
        super::out::outln!(
            "coverage of seeds {}..{} ({} steps each): {} seeds, {} steps, {} failing",
            spec.start,
            spec.end,
            spec.steps,
            report.seeds,
            report.steps,
            failing.len()
        );
        super::out::outln!("{}", coverage::render(&report.coverage).trim_end());
        super::out::outln!("{}", coverage::render_gaps(&gaps).trim_end());
    }
    if !failing.is_empty() {
        super::out::errln!("pgmsim: failing seeds: {failing:?} (run one with `pgmsim run --seed S` for its trace)");
        return 1;
    }
    if a.strict && !gaps.is_complete() {
        super::out::errln!("pgmsim: coverage incomplete (--strict)");
        return 1;
    }
    0
}
