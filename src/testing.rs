//! Test tooling that needs the manager's internals (feature `testing`): deliberate
//! corruption of its state, so tests can prove `check_sync` sees each kind of inconsistency,
//! and a digest of its whole state, so tests can prove a failed operation changed nothing.
//! Nothing in normal operation calls this.

use std::hash::{Hash, Hasher};

use crate::error::Error;
use crate::handler::Registration;
use crate::manager::Manager;
use crate::page::HandlerState;
use crate::platform::Platform;

/// One injected inconsistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// Overwrite a page's handler state (full setter, not-in-HM kept).
    PageState {
        /// Guest page.
        page: u64,
        /// State to write.
        state: HandlerState,
    },
    /// Flip a page's not-in-HM flag.
    NotInHm {
        /// Guest page.
        page: u64,
    },
    /// Overwrite the aliased count of the handler containing `handler`.
    AliasedCount {
        /// Address inside the handler.
        handler: u64,
        /// New count.
        count: u32,
    },
    /// Overwrite the temp-off count of the handler containing `handler`.
    TempOffCount {
        /// Address inside the handler.
        handler: u64,
        /// New count.
        count: u32,
    },
    /// Overwrite the page count of the handler containing `handler`.
    PageCount {
        /// Address inside the handler.
        handler: u64,
        /// New count.
        count: u32,
    },
    /// Overwrite the tree node of the handler containing `handler` (no rebalancing).
    TreeRange {
        /// Address inside the handler.
        handler: u64,
        /// New first byte.
        key: u64,
        /// New last byte.
        last: u64,
    },
    /// Flip the allocator's free bit of the handler containing `handler`.
    FreeBit {
        /// Address inside the handler.
        handler: u64,
    },
    /// Overwrite the stored AVL height of the tree node of the handler containing `handler`.
    TreeHeight {
        /// Address inside the handler.
        handler: u64,
        /// New height.
        height: u8,
    },
    /// Overwrite the tree's node count.
    TreeCount {
        /// New count.
        count: u32,
    },
}

impl<P: Platform> Manager<P> {
    /// Applies a corruption. `NotFound` if the page or handler does not exist.
    pub fn inject(&mut self, corruption: Corruption) -> Result<(), Error> {
        match corruption {
            Corruption::PageState { page, state } => {
                let r = self.memory.locate(page).ok_or(Error::NotFound)?;
                let p = self.memory.at_mut(r);
                let keep = p.not_in_hm();
                p.set_handler_state(state, keep);
            }
            Corruption::NotInHm { page } => {
                let r = self.memory.locate(page).ok_or(Error::NotFound)?;
                let p = self.memory.at_mut(r);
                let (state, flag) = (p.handler_state(), p.not_in_hm());
                p.set_handler_state(state, !flag);
            }
            Corruption::AliasedCount { handler, count } => self.registration_at(handler)?.aliased_pages = count,
            Corruption::TempOffCount { handler, count } => self.registration_at(handler)?.temp_off_pages = count,
            Corruption::PageCount { handler, count } => self.registration_at(handler)?.page_count = count,
            Corruption::TreeRange { handler, key, last } => {
                let slot = self.tree.lookup(handler).ok_or(Error::NotFound)?;
                self.tree.corrupt_range(slot, key, last);
            }
            Corruption::FreeBit { handler } => {
                let slot = self.tree.lookup(handler).ok_or(Error::NotFound)?;
                self.slab.corrupt_free_bit(slot);
            }
            Corruption::TreeHeight { handler, height } => {
                let slot = self.tree.lookup(handler).ok_or(Error::NotFound)?;
                self.tree.corrupt_height(slot, height);
            }
            Corruption::TreeCount { count } => self.tree.corrupt_len(count),
        }
        Ok(())
    }

    /// Settles the aliased-page count the way the original's callers of
    /// `reset_aliased_page(.., accounting = false)` do: they own that count and decrement it
    /// themselves. `NotFound` if no handler contains `handler`.
    pub fn settle_unaccounted_alias(&mut self, handler: u64) -> Result<(), Error> {
        let reg = self.registration_at(handler)?;
        if reg.unaccounted_aliases == 0 || reg.aliased_pages == 0 {
            return Err(Error::InvalidParameter);
        }
        reg.unaccounted_aliases -= 1;
        reg.aliased_pages -= 1;
        Ok(())
    }

    fn registration_at(&mut self, addr: u64) -> Result<&mut Registration, Error> {
        let slot = self.tree.lookup(addr).ok_or(Error::NotFound)?;
        self.slab
            .by_slot_mut(slot)
            .and_then(|r| r.registration.as_mut())
            .ok_or(Error::NotFound)
    }

    /// A digest of the whole manager state (descriptors, handler nodes, tree, types), used to
    /// prove that a failed operation changed nothing. The lookup hints are left out: they are
    /// a cache, not state.
    pub fn state_digest(&self) -> u64 {
        let mut h = DigestHasher(0);
        self.memory.hash(&mut h);
        self.slab.hash(&mut h);
        self.tree.hash(&mut h);
        self.types.hash(&mut h);
        h.finish()
    }
}

/// The digest's hasher: a multiply-rotate step per word (as FxHash), several times faster
/// than SipHash on the descriptors (the fuzz targets digest the state around every call).
/// For a fixed running value each step is injective in its word, and every later step is a
/// bijection of the running value, so two states whose hashed words differ in one place
/// always digest differently; any wider difference collides only by accident (2^-64), and
/// callers compare the handler list and live count besides.
struct DigestHasher(u64);

impl DigestHasher {
    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// One word per integer the state hashes (u8, u32, u64, and usize for lengths and enum
/// discriminants); nothing hashed is 16 bits wide, so `write_u16` keeps the default.
impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.word(i as u64);
    }

    fn write_u32(&mut self, i: u32) {
        self.word(i as u64);
    }

    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
