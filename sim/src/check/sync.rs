//! Invariants 1–3: page states against handlers (forward and reverse) and accounting.
//!
//! The full variant runs the production manager's own `check_sync` and demands exactly the
//! mismatches the model predicts (none, unless an alias was reset without accounting); the
//! incremental variant re-derives the state of every touched page here, from the handler
//! list, so a bug in `check_sync` itself cannot hide a bug in the manager.

use pgmsim::{HandlerState, Mismatch, PAGE_SHIFT};

use super::{Failure, Invariant};
use crate::world::World;

fn invariant_of(m: &Mismatch) -> Invariant {
    match m {
        Mismatch::PageState { .. } | Mismatch::NotInHm { .. } => Invariant::ForwardSync,
        Mismatch::StrayState { .. } | Mismatch::MissingState { .. } => Invariant::ReverseSync,
        _ => Invariant::Accounting,
    }
}

/// The production `check_sync` reports exactly what the model expects.
pub fn production_check_sync(world: &World) -> Result<(), Failure> {
    let got = world.prod().check_sync();
    let expected = world.model().expected_sync_mismatches();
    if let Some(m) = got.iter().find(|m| !expected.contains(m)) {
        return Err(Failure::new(
            world.step(),
            invariant_of(m),
            format!("check_sync: {m:?} (all: {got:?})"),
        ));
    }
    if let Some(m) = expected.iter().find(|m| !got.contains(m)) {
        return Err(Failure::new(
            world.step(),
            Invariant::Accounting,
            format!("check_sync missed the expected {m:?} (reported: {got:?})"),
        ));
    }
    Ok(())
}

/// Forward / reverse state of each touched page (all handler pages when `full`), and the
/// counts of each handler touching them.
///
/// The handlers over a page come from the model: every caller runs this right after
/// `differential::handlers` proved the production list equal to the model's (ranges, kinds,
/// types), and asking the model runs none of the production manager's instrumented tree walks.
pub fn pages(world: &World, full: bool) -> Result<(), Failure> {
    let mut handlers_seen: Vec<u64> = Vec::new();
    if full {
        let spans = world.model().handler_spans();
        let pages = spans
            .iter()
            .flat_map(|h| ((h.key >> PAGE_SHIFT)..=(h.key_last >> PAGE_SHIFT)).map(|p| p << PAGE_SHIFT));
        for page in pages {
            page_state(world, page, &mut handlers_seen)?;
        }
    } else {
        for &page in &world.touched().pages {
            page_state(world, page, &mut handlers_seen)?;
        }
    }
    if handlers_seen.is_empty() {
        return Ok(());
    }
    handler_counts(world, handlers_seen)
}

/// Invariants 1 and 2 for one page: its state is the strongest of the handlers over it (or
/// Disabled), its not-in-HM flag is the first handler's, and a page without handlers has
/// neither. Adds the handlers seen (by first byte) to `seen`.
fn page_state(world: &World, page: u64, seen: &mut Vec<u64>) -> Result<(), Failure> {
    let Some(desc) = world.prod().page(page) else {
        return Ok(());
    };
    let mut expected = HandlerState::None;
    let mut first_not_in_hm = None;
    // Highest first, so the flag left at the end is the first (lowest) handler's.
    for h in world.model().spans_touching(page) {
        expected = expected.max(pgmsim_model::rules::state_of_kind(h.kind));
        first_not_in_hm = Some(h.not_in_hm);
        if !seen.contains(&h.key) {
            seen.push(h.key);
        }
    }
    let actual = desc.handler_state();
    let fail = |invariant, detail| Err(Failure::new(world.step(), invariant, detail));
    match first_not_in_hm {
        None if actual != HandlerState::None || desc.not_in_hm() => fail(
            Invariant::ReverseSync,
            format!(
                "page {page:#x} has state {actual:?} (not-in-HM {}) but no handler",
                desc.not_in_hm()
            ),
        ),
        None => Ok(()),
        Some(_) if actual == HandlerState::None => fail(
            Invariant::ReverseSync,
            format!("page {page:#x} is covered by a handler but has state None"),
        ),
        Some(_) if actual != expected && actual != HandlerState::Disabled => fail(
            Invariant::ForwardSync,
            format!("page {page:#x}: expected state {expected:?} (or Disabled), found {actual:?}"),
        ),
        Some(flag) if desc.not_in_hm() != flag => fail(
            Invariant::ForwardSync,
            format!(
                "page {page:#x}: not-in-HM {} but the handler's type says {flag}",
                desc.not_in_hm()
            ),
        ),
        Some(_) => Ok(()),
    }
}

/// Invariant 3 for the handlers seen (by first byte): each one's aliased and
/// temporarily-off counts equal what its pages show (skipping handlers whose aliased count
/// the model expects to be stale).
fn handler_counts(world: &World, seen: Vec<u64>) -> Result<(), Failure> {
    for key in seen {
        if world.model().aliased_count_is_stale(key) {
            continue;
        }
        let Some(h) = world.prod().lookup(key) else {
            continue;
        };
        let (mut aliased, mut off) = (0u32, 0u32);
        for p in (h.key >> PAGE_SHIFT)..=(h.key_last >> PAGE_SHIFT) {
            if let Some(d) = world.prod().page(p << PAGE_SHIFT) {
                if d.page_type().is_alias() {
                    aliased += 1;
                } else if d.handler_state() == HandlerState::Disabled {
                    off += 1;
                }
            }
        }
        if aliased != h.aliased_pages || off != h.temp_off_pages {
            let detail = format!(
                "handler {:#x}: counts aliased={} temp_off={} but pages show aliased={aliased} disabled={off}",
                h.key, h.aliased_pages, h.temp_off_pages
            );
            return Err(Failure::new(world.step(), Invariant::Accounting, detail));
        }
    }
    Ok(())
}
