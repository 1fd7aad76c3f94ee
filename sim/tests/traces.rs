//! Trace files: the committed ones replay clean (in their check mode and with full checks)
//! to the hash they record; format version 1
//! still loads; version 2 round-trips; everything the generator produces is a valid trace
//! (replay's checks are exactly the generator's guarantees, no stricter).

use std::path::{Path, PathBuf};

use pgmsim_sim::config::{Overrides, SimConfig, MAX_RAM_MIB};
use pgmsim_sim::mmu::Mode;
use pgmsim_sim::{replay, run_seed, CheckMode, Trace};

fn committed() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/traces");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "expected committed traces in {}", dir.display());
    files
}

#[test]
fn committed_traces_replay_clean_to_their_recorded_hash() {
    for path in committed() {
        let trace = Trace::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let recorded = trace
            .trace_hash
            .unwrap_or_else(|| panic!("{} records no trace_hash", path.display()));
        for check in [trace.check, CheckMode::Full] {
            let r = replay(&trace, check);
            assert!(
                r.failure.is_none(),
                "{} ({check:?}): {}",
                path.display(),
                r.failure.unwrap()
            );
            assert_eq!(r.steps, trace.ops.len() as u64);
            assert_eq!(r.ops.len(), trace.ops.len());
            assert_eq!(r.trace_hash, recorded, "{} ({check:?}): hash drift", path.display());
        }
    }
}

#[test]
fn version_1_traces_load_and_version_2_round_trips() {
    let v1 = committed()
        .into_iter()
        .map(|p| Trace::load(&p).unwrap())
        .find(|t| t.version == 1)
        .expect("a committed version-1 trace (addresses as numbers)");
    let dir = std::env::temp_dir().join(format!("pgmsim-traces-{}", std::process::id()));
    let path = dir.join("v2.json");
    v1.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\"version\": 2") && text.contains("\"first\": \"0x"),
        "hex addresses"
    );
    let v2 = Trace::load(&path).unwrap();
    assert_eq!(v2.ops, v1.ops);
    assert_eq!(v2.config, v1.config);
    assert_eq!(v2.trace_hash, v1.trace_hash);
    assert_eq!(replay(&v2, v2.check).trace_hash, v1.trace_hash.unwrap());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn everything_the_generator_produces_is_a_valid_trace() {
    for seed in 0..60u64 {
        let mode = if seed % 3 == 0 { Mode::Nem } else { Mode::Shadow };
        let ov = Overrides {
            mode: Some(mode),
            ..Overrides::default()
        };
        let r = run_seed(seed, 600, &ov, CheckMode::Incremental);
        assert!(r.failure.is_none(), "seed {seed}: {}", r.failure.unwrap());
        r.trace().validate().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

#[test]
fn every_configuration_a_seed_draws_is_valid_up_to_the_largest_guest() {
    for seed in 0..300u64 {
        for ram_mib in [None, Some(1), Some(4096), Some(MAX_RAM_MIB)] {
            let ov = Overrides {
                ram_mib,
                ..Overrides::default()
            };
            SimConfig::from_seed(seed, &ov)
                .validate()
                .unwrap_or_else(|e| panic!("seed {seed} ram_mib {ram_mib:?}: {e}"));
        }
    }
}

#[test]
fn malformed_traces_are_clear_errors() {
    for (text, needle) in [
        ("", "not a pgmsim trace"),
        ("{}", "not a pgmsim trace"),
        ("[1,2]", "not a pgmsim trace"),
    ] {
        let e = Trace::from_json(text, "t.json").unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains("t.json"), "{e}");
    }
    let r = pgmsim_sim::run_seed(3, 5, &Default::default(), CheckMode::Incremental);
    let mut t = r.trace();
    t.version = 99;
    let e = Trace::from_json(&serde_json::to_string(&t).unwrap(), "v.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("version 99"), "{e}");
    let mut t = r.trace();
    t.config.vcpus = 0;
    let e = Trace::from_json(&serde_json::to_string(&t).unwrap(), "c.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("vcpus"), "{e}");
}
