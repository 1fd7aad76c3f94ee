//! Invariant 4 (state part): production and model hold the same page descriptors and the
//! same handler list (types compared by registration index). Results, events and access
//! outcomes are compared where they happen (`Sides::call`, the step loop, the access path).

use pgmsim::PhysHandlerApi;

use super::{Failure, Invariant};
use crate::world::World;

/// Descriptors of touched pages (or all pages) are equal on both sides (NEM bits excluded:
/// they belong to the platform).
pub fn pages(world: &World, full: bool) -> Result<(), Failure> {
    let fail = |page: u64, a, b| {
        Failure::new(
            world.step(),
            Invariant::Differential,
            format!("page {page:#x}: production {a:?}, model {b:?}"),
        )
    };
    if full {
        for (addr, p) in world.prod().ram_pages() {
            let m = world.model().page(addr);
            if m != Some(p.without_nem_state()) {
                return Err(fail(addr, Some(p.without_nem_state()), m));
            }
        }
        return Ok(());
    }
    for &page in &world.touched().pages {
        let a = world.prod().page(page).map(|d| d.without_nem_state());
        let b = world.model().page(page);
        if a != b {
            return Err(fail(page, a, b));
        }
    }
    Ok(())
}

/// Handler lists and live node counts are equal (both lists walked in step, neither copied;
/// they are built only to describe a difference).
pub fn handlers(world: &World) -> Result<(), Failure> {
    let sides = world.sides();
    let (an, bn) = (sides.prod_names(), sides.model_names());
    let mut a = world.prod().handler_iter();
    let mut b = world.model().handler_iter();
    let mut first = None;
    for i in 0.. {
        match (a.next(), b.next()) {
            (None, None) => break,
            (Some(x), Some(y)) if an.same_handler(&x, bn, &y) => {}
            _ => {
                first = Some(i);
                break;
            }
        }
    }
    if let Some(first) = first {
        let (a, b) = (world.prod().handlers(), world.model().handlers());
        return Err(Failure::new(
            world.step(),
            Invariant::Differential,
            format!(
                "handler lists differ at #{first}: production {:?}, model {:?} ({} vs {} handlers)",
                a.get(first),
                b.get(first),
                a.len(),
                b.len()
            ),
        ));
    }
    let (la, lb) = (
        PhysHandlerApi::live_handlers(world.prod()),
        world.model().live_handlers(),
    );
    if la != lb {
        return Err(Failure::new(
            world.step(),
            Invariant::Differential,
            format!("live handler nodes: production {la}, model {lb}"),
        ));
    }
    Ok(())
}
