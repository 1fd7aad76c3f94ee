//! Invariant 5 (NEM): the nested page table, kept only through NEM notifications, gives
//! every page exactly the protection and backing its descriptor implies.

use pgmsim::Gpa;

use super::{Failure, Invariant};
use crate::mmu::Mode;
use crate::world::World;

/// Nested entries of touched pages (or all pages) match their descriptors.
pub fn check(world: &World, full: bool) -> Result<(), Failure> {
    if world.config().mode != Mode::Nem {
        return Ok(());
    }
    let nested = world.mmu().nested();
    let one = |gp: u64| -> Result<(), Failure> {
        let Some(d) = world.prod().page(gp) else {
            return Ok(());
        };
        let n = nested.get(Gpa(gp));
        let ok = n.is_some_and(|n| n.prot == d.nem_protection() && n.host == d.host_phys());
        if ok {
            Ok(())
        } else {
            Err(Failure::new(
                world.step(),
                Invariant::NemSync,
                format!(
                    "gp {gp:#x}: nested entry {n:?}, descriptor {d:?} implies protection {:?} host {}",
                    d.nem_protection(),
                    d.host_phys()
                ),
            ))
        }
    };
    if full {
        for (gp, _) in world.prod().ram_pages() {
            one(gp)?;
        }
    } else {
        for &gp in &world.touched().pages {
            one(gp)?;
        }
    }
    Ok(())
}
