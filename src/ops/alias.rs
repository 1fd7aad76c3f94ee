//! MMIO page aliasing and its undoing (`PGMHandlerPhysicalPageAliasMmio2`,
//! `PGMHandlerPhysicalPageAliasHC`, `pgmHandlerPhysicalResetAliasedPage`, and the alias part
//! of VM reset, `pgmR3PhysRamReset`).

use crate::addr::{is_whole_pages, page_base};
use crate::api::NemMode;
use crate::error::{Error, OpResult, Status};
use crate::handler::HandlerKind;
use crate::layout::Mmio2Handle;
use crate::manager::Manager;
use crate::memory::PageRef;
use crate::page::{HandlerState, PageState, PageType, MAX_HOST_PHYS, NIL_PAGE_ID};
use crate::platform::Platform;

impl<P: Platform> Manager<P> {
    /// Validates "the page `page` of the Mmio handler starting at `addr`": `NotFound`,
    /// `InvalidParameter` (outside the handler), `AccessDenied` (not Mmio), `InvalidParameter`
    /// (not whole pages). Returns the handler's slot and the page's location.
    fn mmio_handler_page(&self, addr: u64, page: u64) -> Result<(u32, PageRef), Error> {
        let slot = self.handler_at_start(addr)?;
        let rec = self.record(slot)?;
        if page < rec.key || page > rec.key_last {
            return Err(Error::InvalidParameter);
        }
        if self.kind_of(rec).0 != HandlerKind::Mmio {
            return Err(Error::AccessDenied);
        }
        if !is_whole_pages(rec.key, rec.key_last) {
            return Err(Error::InvalidParameter);
        }
        let r = self.memory.locate(page).ok_or(Error::Internal)?;
        Ok((slot, r))
    }

    /// Backs the MMIO page `page` of the Mmio handler starting at `addr` by the MMIO2 page at
    /// `offset` in `region`: the page takes the MMIO2 backing and page id, becomes type
    /// `Mmio2AliasMmio`, allocated and `Disabled`; the page-map TLB entry is dropped and NEM
    /// told. A page aliased to another MMIO2 page is reset first (and the emulator's physical
    /// TLBs flushed). Shadow PTEs are left alone: the next fault maps the alias.
    ///
    /// Returns [`Status::AlreadyAliased`] (changing nothing) when already aliased to that page.
    ///
    /// # Errors
    /// In order: `NotSupportedInNemMode`; `OutOfRange` (unknown region, offset past its end);
    /// `NotMmio2` (target not an MMIO2 page); then as the handler checks above; `NotMmio2` when
    /// the page is neither MMIO nor an MMIO2 alias (the seed also leaks its lock here:
    /// deliberate difference 2).
    pub fn page_alias_mmio2(&mut self, addr: u64, page: u64, region: Mmio2Handle, offset: u64) -> OpResult {
        if self.config.nem == NemMode::Exclusive {
            return Err(Error::NotSupportedInNemMode);
        }
        let remap = *self.memory.mmio2_page(region, offset).ok_or(Error::OutOfRange)?;
        if remap.page_type() != PageType::Mmio2 {
            return Err(Error::NotMmio2);
        }
        let (slot, r) = self.mmio_handler_page(addr, page)?;
        let current = *self.memory.at(r);
        if current.page_type() != PageType::Mmio {
            if current.page_type() != PageType::Mmio2AliasMmio {
                return Err(Error::NotMmio2);
            }
            if current.host_phys() == remap.host_phys() {
                return Ok(Status::AlreadyAliased);
            }
            self.reset_alias(r, false);
            let rec = self.record_mut(slot)?;
            rec.aliased_pages = rec.aliased_pages.saturating_sub(1);
            self.platform.flush_emulator_phys_tlbs();
        }
        let previous = self.memory.at(r).host_phys();
        let p = self.memory.at_mut(r);
        p.set_host_phys(remap.host_phys());
        p.set_page_type(PageType::Mmio2AliasMmio);
        p.set_state(PageState::Allocated);
        p.set_page_id(remap.page_id());
        p.set_handler_state_only(HandlerState::Disabled);
        self.record_mut(slot)?.aliased_pages += 1;
        self.platform.invalidate_page_map_entry(self.page_addr(r));
        self.nem_backing_changed(r, previous);
        Ok(Status::Success)
    }

    /// Backs the MMIO page `page` of the Mmio handler starting at `addr` by the host page
    /// `host_phys`, for shadow paging only (the VT-x APIC access page): type
    /// `SpecialAliasMmio`, page id nil, `Disabled`.
    ///
    /// Returns [`Status::AlreadyAliased`] when the page is already special-aliased, whatever
    /// the host page (as the seed does).
    ///
    /// # Errors
    /// `NotSupportedInNemMode`; the handler checks; `InvalidParameter` when `host_phys` does
    /// not fit a descriptor (over 48 bits); `NotMmio2` when the page is neither MMIO nor
    /// special-aliased (an MMIO2 alias included).
    pub fn page_alias_hc(&mut self, addr: u64, page: u64, host_phys: u64) -> OpResult {
        if self.config.nem == NemMode::Exclusive {
            return Err(Error::NotSupportedInNemMode);
        }
        let (slot, r) = self.mmio_handler_page(addr, page)?;
        if host_phys > MAX_HOST_PHYS {
            return Err(Error::InvalidParameter);
        }
        let current = *self.memory.at(r);
        if current.page_type() != PageType::Mmio {
            return if current.page_type() == PageType::SpecialAliasMmio {
                Ok(Status::AlreadyAliased)
            } else {
                Err(Error::NotMmio2)
            };
        }
        let p = self.memory.at_mut(r);
        p.set_host_phys(host_phys);
        p.set_page_type(PageType::SpecialAliasMmio);
        p.set_state(PageState::Allocated);
        p.set_page_id(NIL_PAGE_ID);
        p.set_handler_state_only(HandlerState::Disabled);
        self.record_mut(slot)?.aliased_pages += 1;
        self.platform.invalidate_page_map_entry(self.page_addr(r));
        self.nem_backing_changed(r, current.host_phys());
        Ok(Status::Success)
    }

    /// Turns the aliased page containing `page` back into a plain MMIO page
    /// (`pgmHandlerPhysicalResetAliasedPage`): shadow PTEs mapping it are cleared first and
    /// every TLB flushed, then the page gets the zero page, type `Mmio`, state `Zero`, page id
    /// nil and handler state `All`; the page-map TLB entry and the emulator's physical TLBs
    /// are flushed. With `accounting`, the containing handler's aliased count drops by one;
    /// without, the caller owns the count (and `check_sync` reports it until fixed).
    ///
    /// # Errors
    /// `InvalidParameter` (address in no RAM range); `WrongType` (page not aliased);
    /// `Internal` (aliased page not `Disabled`); with `accounting`: `NotFound` (no handler
    /// contains the page), `Internal` (its aliased count is already zero).
    pub fn reset_aliased_page(&mut self, page: u64, accounting: bool) -> OpResult {
        let r = self.memory.locate(page).ok_or(Error::InvalidParameter)?;
        let current = self.memory.at(r);
        if !current.page_type().is_alias() {
            return Err(Error::WrongType);
        }
        if current.handler_state() != HandlerState::Disabled {
            return Err(Error::Internal);
        }
        let slot = if accounting {
            let slot = self.tree.lookup(page).ok_or(Error::NotFound)?;
            if self.record(slot)?.aliased_pages == 0 {
                return Err(Error::Internal);
            }
            Some(slot)
        } else {
            None
        };
        self.reset_alias(r, true);
        if let Some(slot) = slot {
            self.record_mut(slot)?.aliased_pages -= 1;
        }
        Ok(Status::Success)
    }

    /// Resets every aliased page with accounting, as VM reset does (`pgmR3PhysRamReset`),
    /// then flushes the emulator's physical TLBs once if any page was reset.
    ///
    /// # Errors
    /// `Internal` (before changing anything) if an aliased page's handler cannot account
    /// for it.
    pub fn vm_reset(&mut self) -> OpResult {
        let mut work = Vec::new();
        for slot in self.tree.in_order() {
            let rec = self.record(slot)?;
            if self.kind_of(rec).0 != HandlerKind::Mmio {
                continue;
            }
            let (first, count) = self.page_span(rec.key, rec.page_count)?;
            let before = work.len();
            for i in 0..count {
                let r = Self::nth(first, i);
                let p = self.memory.at(r);
                if p.page_type().is_alias() {
                    if p.handler_state() != HandlerState::Disabled {
                        return Err(Error::Internal);
                    }
                    work.push((slot, r));
                }
            }
            if (work.len() - before) as u64 > rec.aliased_pages as u64 {
                return Err(Error::Internal);
            }
        }
        for &(slot, r) in &work {
            self.reset_alias(r, false);
            self.record_mut(slot)?.aliased_pages -= 1;
        }
        if !work.is_empty() {
            self.platform.flush_emulator_phys_tlbs();
        }
        Ok(Status::Success)
    }

    /// The shared worker of every alias reset: clear the shadow PTEs, flush TLBs, make the
    /// page a zero-backed MMIO page in state `All`, drop the page-map TLB entry, optionally
    /// flush the emulator's physical TLBs, and tell NEM the backing changed.
    pub(crate) fn reset_alias(&mut self, r: PageRef, flush_emulator: bool) {
        let gc_phys = page_base(self.memory.addr_of(r));
        let before = *self.memory.at(r);
        self.platform.update_shadow_ptes(gc_phys, &before, true);
        self.platform.flush_all_tlbs();
        let zero = self.layout.zero_page;
        let p = self.memory.at_mut(r);
        p.set_host_phys(zero);
        p.set_page_type(PageType::Mmio);
        p.set_state(PageState::Zero);
        p.set_page_id(NIL_PAGE_ID);
        p.set_handler_state_only(HandlerState::All);
        self.platform.invalidate_page_map_entry(gc_phys);
        if flush_emulator {
            self.platform.flush_emulator_phys_tlbs();
        }
        self.nem_backing_changed(r, before.host_phys());
    }
}
