//! Temporarily turning monitoring off for one page (`PGMHandlerPhysicalPageTempOff`).

use crate::addr::is_whole_pages;
use crate::error::{Error, OpResult, Status};
use crate::handler::{HandlerId, HandlerKind};
use crate::invariant::ensure;
use crate::manager::Manager;
use crate::page::HandlerState;
use crate::platform::Platform;

impl<P: Platform> Manager<P> {
    /// Turns monitoring off for the page containing `page` inside the Write or All handler
    /// starting at `addr`: the page becomes `Disabled` and the handler's temp-off count grows.
    /// A page already off is a successful no-op.
    ///
    /// Shadow PTEs and TLBs are not touched ("the caller must do required page table
    /// modifications"); NEM is told the new protection. `reset` re-arms the page.
    ///
    /// # Errors
    /// In order: `NotFound` (no handler starts at `addr`), `InvalidParameter` (page outside
    /// the handler, or the handler is not whole pages: the original only asserts, deliberate
    /// difference D1), `AccessDenied` (an Mmio handler).
    pub fn page_temp_off(&mut self, addr: u64, page: u64) -> OpResult {
        self.platform.pgm_lock();
        let r = self.page_temp_off_locked(addr, page);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::page_temp_off`] with the PGM lock held.
    fn page_temp_off_locked(&mut self, addr: u64, page: u64) -> OpResult {
        let slot = self.handler_at_start(addr)?;
        self.temp_off_slot(slot, page)
    }

    /// Turns monitoring off for the page containing `page` of the handler node `id`, as
    /// [`Manager::page_temp_off`] does for the handler starting at an address.
    ///
    /// This is how a callback names the handler it was called for: an id is only good while
    /// that node lives, so a callback whose handler was deregistered (and perhaps replaced by
    /// another handler at the same address) while it ran without the PGM lock gets a clean
    /// error and changes nothing (semantics §7.4), where an address would silently name the
    /// newcomer.
    ///
    /// # Errors
    /// In order: `InvalidHandle` (stale or unknown id), `NotFound` (the node is not
    /// registered), then as [`Manager::page_temp_off`].
    pub fn page_temp_off_ex(&mut self, id: HandlerId, page: u64) -> OpResult {
        self.platform.pgm_lock();
        let r = self.page_temp_off_ex_locked(id, page);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::page_temp_off_ex`] with the PGM lock held.
    fn page_temp_off_ex_locked(&mut self, id: HandlerId, page: u64) -> OpResult {
        if !self.slab.get(id)?.is_registered() {
            return Err(Error::NotFound);
        }
        self.temp_off_slot(id.slot(), page)
    }

    /// The shared body of both temp-off operations, from the handler's checks on.
    fn temp_off_slot(&mut self, slot: u32, page: u64) -> OpResult {
        let (rec, reg) = self.registered(slot)?;
        if page < reg.key || page > reg.key_last || !is_whole_pages(reg.key, reg.key_last) {
            return Err(Error::InvalidParameter);
        }
        if !matches!(self.kind_of(rec)?.0, HandlerKind::Write | HandlerKind::All) {
            return Err(Error::AccessDenied);
        }
        let r = self.memory.locate(page);
        ensure!(r.is_some(), "page {page:#x} of a registered handler is in no RAM range");
        let r = r.ok_or(Error::Internal)?;
        if self.memory.at(r).handler_state() != HandlerState::Disabled {
            self.memory.at_mut(r).set_handler_state_only(HandlerState::Disabled);
            self.registration_mut(slot).temp_off_pages += 1;
            self.nem_protection_changed(r);
            self.paranoid_check(&[slot]);
        }
        Ok(Status::Success)
    }
}
