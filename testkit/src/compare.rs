//! Whole-state comparison of two sides of the API (the production manager and the reference
//! model, or two managers), through [`PhysHandlerApi`] only, so every lock-step driver (the
//! differential suite, the scenario suite) compares the same things the same way.

use pgmsim::{PageDescriptor, PhysHandlerApi, PlatformEvent};

use crate::call::Names;

/// `Err` describing the first way `b`'s observable state differs from `a`'s: every RAM page
/// of `a`'s layout (without the platform-owned NEM state bits), the registered handlers as
/// [`crate::call::HandlerView`]s (types by registration index, so each side's own handle
/// values do not matter) and the number of allocated nodes. Descriptions show `a` first.
pub fn same_state<A, B>(a: &A, a_names: &Names, b: &B, b_names: &Names) -> Result<(), String>
where
    A: PhysHandlerApi + ?Sized,
    B: PhysHandlerApi + ?Sized,
{
    for range in &a.layout().ram_ranges {
        for i in 0..range.pages as u64 {
            let page = range.first + (i << pgmsim::PAGE_SHIFT);
            let x = a.page(page).map(PageDescriptor::without_nem_state);
            let y = b.page(page).map(PageDescriptor::without_nem_state);
            if x != y {
                return Err(format!("page {page:#x}: {x:?} vs {y:?}"));
            }
        }
    }
    let x: Vec<_> = a.handlers().iter().map(|h| a_names.view(h)).collect();
    let y: Vec<_> = b.handlers().iter().map(|h| b_names.view(h)).collect();
    if x != y {
        return Err(format!("handlers: {x:#?} vs {y:#?}"));
    }
    if a.live_handlers() != b.live_handlers() {
        return Err(format!("live handlers: {} vs {}", a.live_handlers(), b.live_handlers()));
    }
    Ok(())
}

/// Whether an event is a NEM notification (the reference model records none: it keeps no
/// NEM state).
pub fn is_nem(event: &PlatformEvent) -> bool {
    matches!(
        event,
        PlatformEvent::NemHandlerRegistered { .. }
            | PlatformEvent::NemHandlerDeregistered { .. }
            | PlatformEvent::NemProtectionChanged { .. }
            | PlatformEvent::NemBackingChanged { .. }
    )
}

/// The events of `events` that are not NEM notifications, in order.
pub fn without_nem(events: &[PlatformEvent]) -> Vec<PlatformEvent> {
    events.iter().filter(|e| !is_nem(e)).cloned().collect()
}
