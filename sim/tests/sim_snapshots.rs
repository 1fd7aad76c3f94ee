//! Simulator summaries: the JSON summary (with `trace_hash`) of fixed seeds, so any change to
//! the generator, the world or the step loop is a visible, reviewed diff. The snapshots live
//! in the workspace's `snapshots/` folder beside the transition tables of the scenario suite.

use insta::{assert_snapshot, Settings};

fn settings() -> Settings {
    let mut s = Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

fn sim_summary(seed: u64, mode: pgmsim_sim::mmu::Mode) -> String {
    let ov = pgmsim_sim::config::Overrides {
        mode: Some(mode),
        ..Default::default()
    };
    let r = pgmsim_sim::run_seed(seed, 1500, &ov, pgmsim_sim::CheckMode::Incremental);
    assert!(r.failure.is_none(), "seed {seed}: {:?}", r.failure);
    serde_json::to_string_pretty(&r.summary()).expect("summary serialises")
}

#[test]
fn sim_summary_seed_1_shadow() {
    settings().bind(|| {
        assert_snapshot!(
            "sim_summary_seed_1_shadow",
            sim_summary(1, pgmsim_sim::mmu::Mode::Shadow)
        )
    });
}

#[test]
fn sim_summary_seed_2_nem() {
    settings().bind(|| assert_snapshot!("sim_summary_seed_2_nem", sim_summary(2, pgmsim_sim::mmu::Mode::Nem)));
}

#[test]
fn sim_summary_seed_3_shadow() {
    settings().bind(|| {
        assert_snapshot!(
            "sim_summary_seed_3_shadow",
            sim_summary(3, pgmsim_sim::mmu::Mode::Shadow)
        )
    });
}
