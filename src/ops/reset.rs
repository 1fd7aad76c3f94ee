//! Re-arming handlers (`PGMHandlerPhysicalReset`, `pgmHandlerPhysicalResetMmio2WithBitmap`).

use crate::error::{Error, OpResult, Status};
use crate::handler::HandlerKind;
use crate::manager::Manager;
use crate::platform::Platform;

impl<P: Platform> Manager<P> {
    /// Undoes per-page changes of the handler starting at `addr`.
    ///
    /// Write / All: if pages are temp-off, raises every page back to the kind's state (shadow
    /// PTEs updated, TLBs flushed when mapped). Mmio: every aliased page becomes a plain MMIO
    /// page again, then the emulator's physical TLBs are flushed if an MMIO2 alias was among
    /// them. Both counts end at zero. Always `Success` (the seed drops the resync status here).
    ///
    /// # Errors
    /// `NotFound` when no handler starts at `addr`.
    pub fn reset(&mut self, addr: u64) -> OpResult {
        let slot = self.handler_at_start(addr)?;
        let rec = self.record(slot)?;
        let (key, page_count, aliased, temp_off) = (rec.key, rec.page_count, rec.aliased_pages, rec.temp_off_pages);
        match self.kind_of(rec).0 {
            HandlerKind::Mmio => {
                if aliased > 0 {
                    let (first, count) = self.page_span(key, page_count)?;
                    let mut flush_emulator = false;
                    for i in 0..count {
                        let r = Self::nth(first, i);
                        let ty = self.memory.at(r).page_type();
                        if ty.is_alias() {
                            flush_emulator |= ty == crate::page::PageType::Mmio2AliasMmio;
                            self.reset_alias(r, false);
                        }
                    }
                    if flush_emulator {
                        self.platform.flush_emulator_phys_tlbs();
                    }
                }
            }
            HandlerKind::Write | HandlerKind::All => {
                if temp_off > 0 {
                    self.set_page_states(slot, None);
                }
            }
        }
        let rec = self.record_mut(slot)?;
        rec.aliased_pages = 0;
        rec.temp_off_pages = 0;
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
    /// `bitmap` has fewer than `offset + page count` bits (the seed trusts its caller).
    pub fn reset_mmio2_with_bitmap(&mut self, addr: u64, bitmap: &mut [u64], offset: u32) -> OpResult {
        let slot = self.handler_at_start(addr)?;
        let rec = self.record(slot)?;
        if self.kind_of(rec).0 != HandlerKind::Write {
            return Err(Error::WrongType);
        }
        let bits_needed = offset as u64 + rec.page_count as u64;
        if bits_needed > (bitmap.len() as u64) * 64 {
            return Err(Error::InvalidParameter);
        }
        if rec.temp_off_pages == 0 {
            return Ok(Status::Success);
        }
        let resync = self.set_page_states(slot, Some((bitmap, offset)));
        self.record_mut(slot)?.temp_off_pages = 0;
        Ok(if resync { Status::SyncCr3 } else { Status::Success })
    }
}
