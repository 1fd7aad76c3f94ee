//! Every committed trace under the workspace's `tests/traces/` replays with every invariant
//! holding, in the check mode it was written with and with full checks.

use std::path::Path;

use pgmsim_sim::{replay, CheckMode, Trace};

#[test]
fn committed_traces_replay_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/traces");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "expected committed traces in {}", dir.display());
    for path in files {
        let trace = Trace::load(&path).unwrap_or_else(|e| panic!("{e}"));
        for check in [trace.check, CheckMode::Full] {
            let r = replay(&trace, check);
            assert!(
                r.failure.is_none(),
                "{} ({check:?}): {}",
                path.display(),
                r.failure.unwrap()
            );
            assert_eq!(r.ops.len(), trace.ops.len());
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
