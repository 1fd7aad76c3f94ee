//! The simulated devices behind handler callbacks, and the dirty-tracking ground truth.
//!
//! A callback's behaviour comes from its handler type: record and do the default, emulate a
//! device register, track dirty MMIO2 pages (temp-off the written page: the harvest's
//! bitmap reset re-arms it), or alias an MMIO2 page over the touched MMIO page on first
//! access. Callbacks that call back into the manager do so on both sides, through the same
//! API-call vocabulary as every other step.

use std::collections::{BTreeMap, BTreeSet};

use pgmsim::{HandlerInfo, Hpa, PAGE_OFFSET_MASK, PAGE_SHIFT};
use pgmsim_testkit::ApiCall;

use crate::config::Behaviour;
use crate::op::AccessKind;

/// One MMIO2 range under dirty tracking: the handler over it and what the guest wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyTracker {
    /// First byte of the tracked range (the handler's start).
    pub first: u64,
    /// Last byte.
    pub last: u64,
    /// Bit offset of this range in the harvested bitmap (running page index over trackers,
    /// as the original's caller computes it).
    pub bitmap_offset: u32,
    /// Pages (indices in the range) written since the previous harvest: the ground truth.
    pub written: BTreeSet<u32>,
    /// Host-physical backing of the range's first page (the MMIO2 region's).
    pub host_base: Hpa,
}

impl DirtyTracker {
    /// A tracker of `[first, last]` (backed from `host_base`) at bit `bitmap_offset`,
    /// nothing written yet.
    pub fn new(first: u64, last: u64, host_base: Hpa, bitmap_offset: u32) -> Self {
        DirtyTracker {
            first,
            last,
            bitmap_offset,
            written: BTreeSet::new(),
            host_base,
        }
    }

    /// Whether host page `host` backs a page of the range.
    pub fn backs(&self, host: Hpa) -> bool {
        let h = host.page_base().0;
        h >= self.host_base.0 && h < self.host_base.0 + ((self.pages() as u64) << PAGE_SHIFT)
    }

    /// Pages in the range.
    pub fn pages(&self) -> u32 {
        (((self.last - self.first) >> PAGE_SHIFT) + 1) as u32
    }

    /// The harvest call: `reset_mmio2_with_bitmap` over the range with a fresh bitmap.
    pub fn harvest_call(&self) -> ApiCall {
        let bits = self.bitmap_offset as u64 + self.pages() as u64;
        ApiCall::ResetMmio2WithBitmap {
            addr: self.first,
            words: bits.div_ceil(64) as u32,
            offset: self.bitmap_offset,
            fill: 0,
        }
    }

    /// The bitmap a harvest must return: one bit per page written since the last harvest.
    pub fn expected_bitmap(&self, words: usize) -> Vec<u64> {
        let mut expected = vec![0u64; words];
        for &p in &self.written {
            let bit = self.bitmap_offset as usize + p as usize;
            expected[bit / 64] |= 1 << (bit % 64);
        }
        expected
    }
}

/// Device state shared by the run (one copy: the devices are not under test).
#[derive(Debug, Clone, Default)]
pub struct Devices {
    /// Emulated registers: (handler start, byte offset) → last value written.
    pub registers: BTreeMap<(u64, u64), u64>,
    /// Dirty-tracked MMIO2 ranges.
    pub trackers: Vec<DirtyTracker>,
    /// Host pages backing tracked pages that were written through another guest-physical
    /// page (an MMIO2 alias): dirty tracking covers the tracked range only, so the migration
    /// cannot promise these.
    pub written_around: BTreeSet<Hpa>,
}

/// What a device did with its piece of a trapped access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The device served the access itself; reads return this value.
    Served(u64),
    /// Do the default access, after this manager call (made on both sides).
    Default(Option<ApiCall>),
    /// Do the default access, after turning `page` off through the id of the handler the
    /// callback was dispatched for (`page_temp_off_ex`).
    TempOffOwn {
        /// The page written.
        page: u64,
    },
}

impl Devices {
    /// Records a guest write reaching guest-physical `gp`, backed by host `host` (any path).
    pub fn note_write(&mut self, gp: u64, host: Hpa) {
        let mut tracked = false;
        for t in &mut self.trackers {
            if gp >= t.first && gp <= t.last {
                t.written.insert(((gp - t.first) >> PAGE_SHIFT) as u32);
                tracked = true;
            }
        }
        if !tracked && self.trackers.iter().any(|t| t.backs(host)) {
            self.written_around.insert(host.page_base());
        }
    }

    /// Whether `addr` lies in a tracked range (the generator keeps other operations away).
    pub fn is_tracked(&self, addr: u64) -> bool {
        self.trackers.iter().any(|t| addr >= t.first && addr <= t.last)
    }

    /// The value an emulated register returns: the last write, else a deterministic pattern
    /// derived from the handler's user argument and the offset.
    pub fn register_read(&self, key: u64, user: u64, offset: u64) -> u64 {
        match self.registers.get(&(key, offset)) {
            Some(v) => *v,
            None => {
                let mut z = user ^ offset.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                z = (z ^ (z >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z ^ (z >> 29)
            }
        }
    }

    /// Runs the device behind handler `h` for the piece `[addr, addr + len)` of an access.
    /// `mmio2_pages` is the size of MMIO2 region 1 (the alias-on-access source), if any.
    pub fn callback(
        &mut self,
        behaviour: Behaviour,
        h: &HandlerInfo,
        piece: (u64, u8),
        kind: AccessKind,
        value: u64,
        mmio2_pages: Option<u32>,
    ) -> Response {
        let (addr, len) = piece;
        let page = addr & !PAGE_OFFSET_MASK;
        match behaviour {
            Behaviour::Record => Response::Default(None),
            Behaviour::Register => {
                let offset = addr - h.key;
                if kind == AccessKind::Write {
                    self.registers.insert((h.key, offset), value);
                    Response::Served(0)
                } else {
                    Response::Served(self.register_read(h.key, h.user, offset) & mask(len as u64 * 8))
                }
            }
            Behaviour::DirtyTrack if kind == AccessKind::Write => {
                Response::Default(Some(ApiCall::PageTempOff { addr: h.key, page }))
            }
            Behaviour::DirtyTrack => Response::Default(None),
            Behaviour::WriteLog if kind == AccessKind::Write => Response::TempOffOwn { page },
            Behaviour::WriteLog => Response::Default(None),
            Behaviour::AliasOnAccess => Response::Default(mmio2_pages.map(|pages| ApiCall::PageAliasMmio2 {
                addr: h.key,
                page,
                region: 1,
                offset: (((page - h.key) >> PAGE_SHIFT) % pages as u64) << PAGE_SHIFT,
            })),
        }
    }
}

/// Low `bits` bits set.
pub fn mask(bits: u64) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}
