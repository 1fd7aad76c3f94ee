//! The migration device: every harvest of a dirty-tracked MMIO2 range copies the pages its
//! bitmap names to a destination, while vCPUs keep writing. After a final quiescent harvest
//! and copy, the destination must equal the source on every tracked page: a dirty page the
//! log lost shows here, whichever way it was lost.

use std::collections::BTreeMap;

use pgmsim::PAGE_SHIFT;

use crate::check::{Failure, Invariant};
use crate::op::{Op, StepResult};
use crate::world::World;

/// The destination of the migration: the last copy of each tracked page, by guest page.
#[derive(Debug, Clone, Default)]
pub struct Migration {
    dest: BTreeMap<u64, Vec<u8>>,
}

impl Migration {
    /// A destination that starts as a copy of the source (all tracked pages, as they are).
    pub fn new(world: &World) -> Migration {
        let mut m = Migration::default();
        for t in &world.devices().trackers {
            for i in 0..t.pages() as u64 {
                m.copy_page(world, t.first + (i << PAGE_SHIFT));
            }
        }
        m
    }

    fn copy_page(&mut self, world: &World, gp: u64) {
        let bytes = source(world, gp);
        self.dest.insert(gp, bytes);
    }

    /// Copies the pages a harvest of tracker `tracker` named.
    pub fn copy(&mut self, world: &World, tracker: usize, bitmap: &[u64]) {
        let Some(t) = world.devices().trackers.get(tracker) else {
            return;
        };
        for i in 0..t.pages() as u64 {
            let bit = t.bitmap_offset as u64 + i;
            if bitmap
                .get((bit / 64) as usize)
                .is_some_and(|w| w & (1 << (bit % 64)) != 0)
            {
                self.copy_page(world, t.first + (i << PAGE_SHIFT));
            }
        }
    }

    /// The final harvest of every tracker (as device thread `device`, under the lock), its
    /// copy, and the end-to-end comparison.
    pub fn final_harvest(&mut self, world: &mut World, device: u8) -> Result<(), Failure> {
        world.hw_mut().current = device;
        for tracker in 0..world.devices().trackers.len() {
            let op = Op::Harvest { tracker: tracker as u8 };
            world.hw_mut().lock.owner = Some(device);
            world.hw_mut().lock.depth = 1;
            let result = world.apply_concurrent(&op);
            world.hw_mut().lock = Default::default();
            if let StepResult::Harvest(Ok(bitmap)) = result? {
                self.copy(world, tracker, &bitmap);
            }
        }
        for (&gp, copy) in &self.dest {
            // A page written around its tracking (through another mapping of its backing), or
            // no longer tracked at all (its handler was deregistered), is not the harvest's.
            let exempt = world.prod().page(gp).is_some_and(|d| {
                world.devices().written_around.contains(&d.host_phys())
                    || d.handler_state() == pgmsim::HandlerState::None
            });
            if !exempt && !same_as_source(world, gp, copy) {
                return Err(world.failure(
                    Invariant::DirtyLog,
                    format!("after the final harvest, the migration destination's copy of tracked page {gp:#x} differs from the source: a dirty page was lost"),
                ));
            }
        }
        Ok(())
    }
}

/// The bytes behind guest page `gp` now (empty: not backed; all zeros: never written).
fn source(world: &World, gp: u64) -> Vec<u8> {
    match world.prod().page(gp).map(|d| d.host_phys()) {
        Some(h) => world
            .guest()
            .page(h)
            .map_or_else(|| vec![0; pgmsim::PAGE_SIZE as usize], |p| p.to_vec()),
        None => Vec::new(),
    }
}

/// A page never written.
static ZERO_PAGE: [u8; pgmsim::PAGE_SIZE as usize] = [0; pgmsim::PAGE_SIZE as usize];

/// Whether `copy` holds the bytes behind guest page `gp` now (as [`source`] would read them,
/// without copying them).
fn same_as_source(world: &World, gp: u64, copy: &[u8]) -> bool {
    match world.prod().page(gp).map(|d| d.host_phys()) {
        Some(h) => match world.guest().page(h) {
            Some(p) => copy == &p[..],
            None => copy == &ZERO_PAGE[..],
        },
        None => copy.is_empty(),
    }
}
