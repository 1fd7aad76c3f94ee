//! The manager's neighbour lookups (`lookup_matching_or_below`, `lookup_matching_or_above`)
//! against registered handlers: at every range edge, one byte off each edge, mid-range and
//! in the gaps, the answer is the handler holding the address, else the nearest one on that
//! side, exactly as a scan of the registered handlers says.

use pgmsim::{HandlerInfo, HandlerKind, HandlerTypeConfig, Manager, ManagerConfig, MemoryLayout, NoopPlatform, Status};

/// 64 RAM pages at 0, with write handlers: two adjacent whole pages' worth, two sharing a
/// page, one three pages long and one far above, plus an all-access handler.
fn manager() -> Manager<NoopPlatform> {
    let layout = MemoryLayout::builder().ram(0, 64).build().unwrap();
    let mut m = Manager::new(layout, ManagerConfig::default(), NoopPlatform).unwrap();
    let write = m
        .register_type(HandlerTypeConfig::new(HandlerKind::Write, "write"))
        .unwrap();
    let all = m
        .register_type(HandlerTypeConfig::new(HandlerKind::All, "all"))
        .unwrap();
    for (first, last, ty, user) in [
        (0x1000, 0x1fff, write, 1),
        (0x2000, 0x27ff, write, 2),
        (0x2800, 0x2bff, write, 3),
        (0x5000, 0x7fff, write, 4),
        (0x2_0000, 0x2_1fff, all, 5),
        (0x3_f000, 0x3_f00f, write, 6),
    ] {
        assert_eq!(m.register(first, last, ty, user, None), Ok(Status::Success));
    }
    m
}

/// Addresses around every registered handler and the ends of the address space.
fn probes(m: &Manager<NoopPlatform>) -> Vec<u64> {
    let mut probes = vec![0, 1, 0x40_0000, u64::MAX];
    for h in m.handlers() {
        probes.extend([
            h.key,
            h.key.wrapping_sub(1),
            h.key_last,
            h.key_last.wrapping_add(1),
            h.key + (h.key_last - h.key) / 2,
        ]);
    }
    probes
}

/// The handler holding `addr`, else the one with the highest range below it (by scan).
fn naive_below(handlers: &[HandlerInfo], addr: u64) -> Option<HandlerInfo> {
    handlers.iter().filter(|h| h.key <= addr).max_by_key(|h| h.key).cloned()
}

/// The handler holding `addr`, else the one with the lowest range above it (by scan).
fn naive_above(handlers: &[HandlerInfo], addr: u64) -> Option<HandlerInfo> {
    handlers
        .iter()
        .find(|h| h.key <= addr && addr <= h.key_last)
        .or_else(|| handlers.iter().filter(|h| h.key > addr).min_by_key(|h| h.key))
        .cloned()
}

/// Pins `lookup_matching_or_below`: the holder of the address, else the nearest handler
/// below it (its full info), and nothing below the first handler.
#[test]
fn lookup_matching_or_below_finds_the_holder_or_the_nearest_handler_below() {
    let m = manager();
    let handlers = m.handlers();
    assert_eq!(handlers.len(), 6);
    for addr in probes(&m) {
        assert_eq!(
            m.lookup_matching_or_below(addr),
            naive_below(&handlers, addr),
            "or_below({addr:#x})"
        );
    }
    let at = |a: u64| m.lookup_matching_or_below(a).map(|h| (h.key, h.user));
    assert_eq!(at(0x0fff), None, "below the first handler");
    assert_eq!(at(0x1000), Some((0x1000, 1)));
    assert_eq!(at(0x2bff), Some((0x2800, 3)), "the second handler sharing the page");
    assert_eq!(at(0x2c00), Some((0x2800, 3)), "the gap after it");
    assert_eq!(at(0x4fff), Some((0x2800, 3)));
    assert_eq!(at(0x8000), Some((0x5000, 4)));
    assert_eq!(at(u64::MAX), Some((0x3_f000, 6)), "the last handler");
    let info = m.lookup_matching_or_below(0x2_4000).unwrap();
    assert_eq!(
        (info.key_last, info.kind, &*info.description),
        (0x2_1fff, HandlerKind::All, "all")
    );
}

/// Pins `lookup_matching_or_above` the same way: the holder, else the nearest handler above,
/// and nothing past the last handler.
#[test]
fn lookup_matching_or_above_finds_the_holder_or_the_nearest_handler_above() {
    let m = manager();
    let handlers = m.handlers();
    for addr in probes(&m) {
        assert_eq!(
            m.lookup_matching_or_above(addr),
            naive_above(&handlers, addr),
            "or_above({addr:#x})"
        );
    }
    let at = |a: u64| m.lookup_matching_or_above(a).map(|h| (h.key, h.user));
    assert_eq!(at(0), Some((0x1000, 1)));
    assert_eq!(at(0x2c00), Some((0x5000, 4)));
    assert_eq!(at(0x3_f010), None, "past the last handler");
}

/// Pins that the lookups follow deregistration: a handler gone is skipped for its neighbour,
/// and with every handler gone both lookups answer nothing.
#[test]
fn neighbour_lookups_skip_deregistered_handlers() {
    let mut m = manager();
    assert_eq!(m.deregister(0x2800), Ok(Status::Success));
    assert_eq!(m.lookup_matching_or_below(0x2900).map(|h| h.user), Some(2));
    assert_eq!(m.lookup_matching_or_above(0x2900).map(|h| h.user), Some(4));
    for h in m.handlers() {
        assert_eq!(m.deregister(h.key), Ok(Status::Success));
    }
    for addr in [0, 0x1000, 0x2900, u64::MAX] {
        assert_eq!(m.lookup_matching_or_below(addr), None);
        assert_eq!(m.lookup_matching_or_above(addr), None);
    }
}
