//! Re-arming handlers (`PGMHandlerPhysicalReset`, `pgmHandlerPhysicalResetMmio2WithBitmap`).

use crate::error::{Error, OpResult, Status};
use crate::handler::HandlerKind;
use crate::manager::Manager;
use crate::ops::register::Arming;
use crate::page::PageType;
use crate::platform::Platform;

impl<P: Platform> Manager<P> {
    /// Undoes per-page changes of the handler starting at `addr`.
    ///
    /// Write / All: if pages are temp-off, raises every page back to the kind's state (shadow
    /// PTEs updated, TLBs flushed when mapped). Mmio: every aliased page becomes a plain MMIO
    /// page again, then the emulator's physical TLBs are flushed if an MMIO2 alias was among
    /// them. Both counts end at zero. Always `Success` (the original drops the resync status
    /// here).
    ///
    /// # Errors
    /// `NotFound` when no handler starts at `addr`.
    pub fn reset(&mut self, addr: u64) -> OpResult {
        self.platform.pgm_lock();
        let r = self.reset_locked(addr);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::reset`] with the PGM lock held.
    fn reset_locked(&mut self, addr: u64) -> OpResult {
        let slot = self.handler_at_start(addr)?;
        let (rec, reg) = self.registered(slot)?;
        let (kind, not_in_hm) = self.kind_of(rec)?;
        let span = self.span_of(&reg)?;
        match kind {
            HandlerKind::Mmio if reg.aliased_pages > 0 => {
                let mut flush_emulator = false;
                for r in span.pages() {
                    let ty = self.memory.at(r).page_type();
                    if ty.is_alias() {
                        flush_emulator |= ty == PageType::Mmio2AliasMmio;
                        self.reset_alias(r, false);
                    }
                }
                if flush_emulator {
                    self.platform.flush_emulator_phys_tlbs();
                }
            }
            HandlerKind::Write | HandlerKind::All if reg.temp_off_pages > 0 => {
                self.raise_pages(span, Arming { kind, not_in_hm }, None);
            }
            _ => {}
        }
        let reg = self.registration_mut(slot);
        reg.aliased_pages = 0;
        reg.temp_off_pages = 0;
        reg.unaccounted_aliases = 0;
        self.paranoid_check(&[slot]);
        Ok(Status::Success)
    }

    /// Re-arms the Write handler starting at `addr` and sets bit `offset + i` of `bitmap` for
    /// every page `i` of the handler that was off (dirty) and is now armed again: the harvest
    /// step of MMIO2 dirty-page tracking.
    ///
    /// Returns [`Status::SyncCr3`] when the platform fell back to a full resync.
    ///
    /// # Errors
    /// In order: `NotFound`; `WrongType` (not a Write handler); `InvalidParameter` when
    /// `bitmap` has fewer than `offset + page count` bits (the original trusts its caller:
    /// deliberate difference D6).
    pub fn reset_mmio2_with_bitmap(&mut self, addr: u64, bitmap: &mut [u64], offset: u32) -> OpResult {
        self.platform.pgm_lock();
        let r = self.reset_mmio2_with_bitmap_locked(addr, bitmap, offset);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::reset_mmio2_with_bitmap`] with the PGM lock held.
    fn reset_mmio2_with_bitmap_locked(&mut self, addr: u64, bitmap: &mut [u64], offset: u32) -> OpResult {
        let slot = self.handler_at_start(addr)?;
        let (rec, reg) = self.registered(slot)?;
        let (kind, not_in_hm) = self.kind_of(rec)?;
        if kind != HandlerKind::Write {
            return Err(Error::WrongType);
        }
        let bits_needed = offset as u64 + reg.page_count as u64;
        if bits_needed > (bitmap.len() as u64) * 64 {
            return Err(Error::InvalidParameter);
        }
        if reg.temp_off_pages == 0 {
            return Ok(Status::Success);
        }
        let span = self.span_of(&reg)?;
        let resync = self.raise_pages(span, Arming { kind, not_in_hm }, Some((bitmap, offset)));
        self.registration_mut(slot).temp_off_pages = 0;
        self.paranoid_check(&[slot]);
        Ok(if resync { Status::SyncCr3 } else { Status::Success })
    }
}
