//! MMIO page aliasing and its undoing (`PGMHandlerPhysicalPageAliasMmio2`,
//! `PGMHandlerPhysicalPageAliasHC`, `pgmHandlerPhysicalResetAliasedPage`, and the alias part
//! of VM reset, `pgmR3PhysRamReset`).

use crate::addr::{is_whole_pages, Gpa, Hpa};
use crate::api::NemMode;
use crate::error::{Error, OpResult, Status};
use crate::handler::HandlerKind;
use crate::invariant::ensure;
use crate::layout::Mmio2Handle;
use crate::manager::Manager;
use crate::memory::PageRef;
use crate::page::{HandlerState, PageDescriptor, PageState, PageType, MAX_HOST_PHYS, NIL_PAGE_ID};
use crate::platform::Platform;

impl<P: Platform> Manager<P> {
    /// Validates "the page `page` of the Mmio handler starting at `addr`": `NotFound`,
    /// `InvalidParameter` (outside the handler), `AccessDenied` (not Mmio), `InvalidParameter`
    /// (not whole pages). Returns the handler's slot and the page's location.
    fn mmio_handler_page(&self, addr: u64, page: u64) -> Result<(u32, PageRef), Error> {
        let slot = self.handler_at_start(addr)?;
        let (rec, reg) = self.registered(slot)?;
        if page < reg.key || page > reg.key_last {
            return Err(Error::InvalidParameter);
        }
        if self.kind_of(rec)?.0 != HandlerKind::Mmio {
            return Err(Error::AccessDenied);
        }
        if !is_whole_pages(reg.key, reg.key_last) {
            return Err(Error::InvalidParameter);
        }
        let r = self.memory.locate(page);
        ensure!(r.is_some(), "page {page:#x} of a registered handler is in no RAM range");
        Ok((slot, r.ok_or(Error::Internal)?))
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
    /// the page is neither MMIO nor an MMIO2 alias (the original also leaks its lock here:
    /// deliberate difference D2).
    pub fn page_alias_mmio2(&mut self, addr: u64, page: u64, region: Mmio2Handle, offset: u64) -> OpResult {
        self.platform.pgm_lock();
        let r = self.page_alias_mmio2_locked(addr, page, region, offset);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::page_alias_mmio2`] with the PGM lock held.
    fn page_alias_mmio2_locked(&mut self, addr: u64, page: u64, region: Mmio2Handle, offset: u64) -> OpResult {
        if self.config.nem == NemMode::Exclusive {
            return Err(Error::NotSupportedInNemMode);
        }
        let remap = *self.memory.mmio2_page(region, offset).ok_or(Error::OutOfRange)?;
        if remap.page_type() != PageType::Mmio2 {
            return Err(Error::NotMmio2);
        }
        let (slot, r) = self.mmio_handler_page(addr, page)?;
        let current = *self.memory.at(r);
        let realias = match current.page_type() {
            PageType::Mmio => false,
            PageType::Mmio2AliasMmio if current.host_phys() == remap.host_phys() => return Ok(Status::AlreadyAliased),
            PageType::Mmio2AliasMmio => true,
            _ => return Err(Error::NotMmio2),
        };
        let (_, reg) = self.registered(slot)?;
        ensure!(
            !realias || reg.aliased_pages > 0,
            "aliased page {page:#x} but its handler counts none"
        );
        if realias {
            self.reset_alias(r, false);
            self.registration_mut(slot).aliased_pages -= 1;
            self.platform.flush_emulator_phys_tlbs();
        }
        let previous = self.memory.at(r).host_phys();
        self.alias_page(r, PageType::Mmio2AliasMmio, remap.host_phys(), remap.page_id());
        self.registration_mut(slot).aliased_pages += 1;
        self.platform.invalidate_page_map_entry(Gpa(self.memory.addr_of(r)));
        self.nem_backing_changed(r, previous);
        self.paranoid_check(&[slot]);
        Ok(Status::Success)
    }

    /// Backs the MMIO page `page` of the Mmio handler starting at `addr` by the host page
    /// `host`, for shadow paging only (the VT-x APIC access page): type `SpecialAliasMmio`,
    /// page id nil, `Disabled`.
    ///
    /// Returns [`Status::AlreadyAliased`] when the page is already special-aliased, whatever
    /// the host page (as the original does).
    ///
    /// # Errors
    /// `NotSupportedInNemMode`; the handler checks; `InvalidParameter` when `host` does not
    /// fit a descriptor (over 48 bits: deliberate difference D11); `NotMmio2` when the page is
    /// neither MMIO nor special-aliased (an MMIO2 alias included).
    pub fn page_alias_hc(&mut self, addr: u64, page: u64, host: Hpa) -> OpResult {
        self.platform.pgm_lock();
        let r = self.page_alias_hc_locked(addr, page, host);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::page_alias_hc`] with the PGM lock held.
    fn page_alias_hc_locked(&mut self, addr: u64, page: u64, host: Hpa) -> OpResult {
        if self.config.nem == NemMode::Exclusive {
            return Err(Error::NotSupportedInNemMode);
        }
        let (slot, r) = self.mmio_handler_page(addr, page)?;
        if host.0 > MAX_HOST_PHYS {
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
        self.alias_page(r, PageType::SpecialAliasMmio, host, NIL_PAGE_ID);
        self.registration_mut(slot).aliased_pages += 1;
        self.platform.invalidate_page_map_entry(Gpa(self.memory.addr_of(r)));
        self.nem_backing_changed(r, current.host_phys());
        self.paranoid_check(&[slot]);
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
    /// `InvalidParameter` (address in no RAM range); `WrongType` (page not aliased); with
    /// `accounting`, `NotFound` (no handler contains the page). `Internal` only for a broken
    /// invariant (an aliased page not `Disabled`, or an alias its handler does not count).
    /// All checked before anything changes (the original asserts: deliberate difference D10).
    pub fn reset_aliased_page(&mut self, page: u64, accounting: bool) -> OpResult {
        self.platform.pgm_lock();
        let r = self.reset_aliased_page_locked(page, accounting);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::reset_aliased_page`] with the PGM lock held.
    fn reset_aliased_page_locked(&mut self, page: u64, accounting: bool) -> OpResult {
        let r = self.memory.locate(page).ok_or(Error::InvalidParameter)?;
        let current = self.memory.at(r);
        if !current.page_type().is_alias() {
            return Err(Error::WrongType);
        }
        ensure!(
            current.handler_state() == HandlerState::Disabled,
            "aliased page {page:#x} is not Disabled"
        );
        let owner = self.tree.lookup(page);
        if accounting {
            let slot = owner.ok_or(Error::NotFound)?;
            let (_, reg) = self.registered(slot)?;
            ensure!(
                reg.aliased_pages > 0,
                "aliased page {page:#x} but its handler counts no alias"
            );
        } else if let Some(slot) = owner {
            self.registered(slot)?;
        }
        self.reset_alias(r, true);
        if let Some(slot) = owner {
            let reg = self.registration_mut(slot);
            if accounting {
                reg.aliased_pages -= 1;
            } else {
                reg.unaccounted_aliases += 1;
            }
            self.paranoid_check(&[slot]);
        }
        Ok(Status::Success)
    }

    /// Resets every aliased page with accounting, as VM reset does (`pgmR3PhysRamReset`),
    /// then flushes the emulator's physical TLBs once if any page was reset.
    ///
    /// # Errors
    /// `Internal` (before changing anything) only for a broken invariant: an aliased page its
    /// handler cannot account for.
    pub fn vm_reset(&mut self) -> OpResult {
        self.platform.pgm_lock();
        let r = self.vm_reset_locked();
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::vm_reset`] with the PGM lock held.
    fn vm_reset_locked(&mut self) -> OpResult {
        let work = self.aliased_pages_to_reset()?;
        for &(slot, r) in &work {
            self.reset_alias(r, false);
            self.registration_mut(slot).aliased_pages -= 1;
        }
        if !work.is_empty() {
            self.platform.flush_emulator_phys_tlbs();
        }
        let mut slots: Vec<u32> = work.iter().map(|&(slot, _)| slot).collect();
        slots.dedup();
        self.paranoid_check(&slots);
        Ok(Status::Success)
    }

    /// Validation phase of VM reset: every aliased page of every Mmio handler, checked.
    fn aliased_pages_to_reset(&self) -> Result<Vec<(u32, PageRef)>, Error> {
        let mut work = Vec::new();
        for slot in self.tree.iter() {
            let (rec, reg) = self.registered(slot)?;
            if self.kind_of(rec)?.0 != HandlerKind::Mmio {
                continue;
            }
            let before = work.len();
            for r in self.span_of(&reg)?.pages() {
                let p = self.memory.at(r);
                if p.page_type().is_alias() {
                    ensure!(
                        p.handler_state() == HandlerState::Disabled,
                        "aliased page is not Disabled"
                    );
                    work.push((slot, r));
                }
            }
            let found = work.len() - before;
            ensure!(
                found <= reg.aliased_pages as usize,
                "{found} aliased pages, the handler counts {}",
                reg.aliased_pages
            );
        }
        Ok(work)
    }

    /// Makes a page an alias: new type, backing and page id, allocated, `Disabled`.
    fn alias_page(&mut self, r: PageRef, page_type: PageType, host: Hpa, page_id: u32) {
        let p = self.memory.at_mut(r);
        p.set_host_phys(host);
        p.set_page_type(page_type);
        p.set_state(PageState::Allocated);
        p.set_page_id(page_id);
        p.set_handler_state_only(HandlerState::Disabled);
    }

    /// The shared worker of every alias reset: clear the shadow PTEs, flush TLBs, make the
    /// page a zero-backed MMIO page in state `All`, drop the page-map TLB entry, optionally
    /// flush the emulator's physical TLBs, and tell NEM the backing changed.
    pub(crate) fn reset_alias(&mut self, r: PageRef, flush_emulator: bool) {
        let gc_phys = Gpa(self.memory.addr_of(r));
        let before: PageDescriptor = *self.memory.at(r);
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
