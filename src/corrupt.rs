//! Deliberate corruption of manager state, so tests can prove `check_sync` sees each kind of
//! inconsistency. Nothing in normal operation calls this.

use crate::error::Error;
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
    /// Applies a corruption (tests only). `NotFound` if the page or handler does not exist.
    #[doc(hidden)]
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
            Corruption::AliasedCount { handler, count } => self.slot_record(handler)?.aliased_pages = count,
            Corruption::TempOffCount { handler, count } => self.slot_record(handler)?.temp_off_pages = count,
            Corruption::PageCount { handler, count } => self.slot_record(handler)?.page_count = count,
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

    fn slot_record(&mut self, addr: u64) -> Result<&mut crate::handler::HandlerRecord, Error> {
        let slot = self.tree.lookup(addr).ok_or(Error::NotFound)?;
        self.record_mut(slot)
    }
}
