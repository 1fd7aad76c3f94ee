//! Boot nodes: a world that starts with a nearly full handler table, where the next-fit
//! allocator reuses a freed slot within a create or two (what makes a stale id's ABA
//! reachable in a short trace).

use pgmsim::PhysHandlerApi;
use pgmsim_sim::config::{ConfigError, Overrides};
use pgmsim_sim::{SimConfig, World};

fn concurrent_boot_world() -> SimConfig {
    (0..200)
        .map(|seed| SimConfig::from_seed(seed, &Overrides::default()))
        .find(|c| c.boot_nodes > 0)
        .expect("some seed under 200 draws a boot world")
}

#[test]
fn boot_nodes_take_their_slots_on_both_sides() {
    let config = concurrent_boot_world();
    assert!(
        config.concurrency.is_some(),
        "boot nodes are drawn for concurrent worlds"
    );
    let capacity = config.handler_capacity().expect("valid capacity");
    let expected = config.boot_nodes + config.dirty_trackers();
    let free = capacity - expected;
    assert!((1..=2).contains(&free), "one or two slots left free, not {free}");
    let world = World::new(config).expect("a boot world builds");
    assert_eq!(world.prod().live_handlers(), expected);
    assert_eq!(world.model().live_handlers(), expected);
}

#[test]
fn a_boot_world_reuses_a_freed_slot_at_once() {
    let mut config = concurrent_boot_world();
    let capacity = config.handler_capacity().expect("valid capacity");
    config.boot_nodes = capacity - config.dirty_trackers() - 1;
    let world = World::new(config).expect("a boot world builds");
    let mut prod = world.prod().clone();
    let ty = world.sides().prod_names().ty(0);
    let a = prod.create(ty, 1, None).expect("the last free slot");
    assert!(prod.create(ty, 2, None).is_err(), "the table is full");
    prod.destroy(a).expect("destroy");
    let b = prod.create(ty, 3, None).expect("the freed slot");
    assert_eq!(a.slot(), b.slot(), "next-fit wrapped straight back to the freed slot");
    assert_ne!(a, b, "a new generation: the stale id names nothing");
}

#[test]
fn too_many_boot_nodes_is_a_config_error_naming_the_field() {
    let mut config = concurrent_boot_world();
    config.boot_nodes = config.handler_capacity().expect("valid capacity");
    match config.validate() {
        Err(ConfigError::OutOfRange { field, .. }) => assert_eq!(field, "boot_nodes"),
        other => panic!("expected boot_nodes out of range, got {other:?}"),
    }
}

#[test]
fn sequential_worlds_have_no_boot_nodes_and_old_traces_parse() {
    for seed in 0..100 {
        let c = SimConfig::from_seed(seed, &Overrides::default());
        if c.concurrency.is_none() {
            assert_eq!(c.boot_nodes, 0, "seed {seed}");
            let json = serde_json::to_string(&c).expect("serialises");
            assert!(
                !json.contains("boot_nodes"),
                "absent when 0, so older traces read the same"
            );
        }
    }
}
