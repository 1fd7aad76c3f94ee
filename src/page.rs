//! The packed page descriptor (the original's `PGMPAGE`) and the NEM protection rule.
//!
//! A descriptor is 16 bytes: one 64-bit word of bit fields and the page id. Packing matters
//! because a 4 GiB guest has a million of them and `check_sync` walks them all.

use crate::addr::{Hpa, PAGE_SHIFT};

/// What backs a guest page and how the guest may reach it (the original's `PGMPAGETYPE`).
///
/// Values match the original's so descriptors print the way VirtualBox logs do (semantics §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum PageType {
    /// Never a valid page; only seen in a corrupted descriptor.
    Invalid = 0,
    /// Ordinary guest RAM.
    Ram = 1,
    /// Device memory with its own backing (a mapped MMIO2 region).
    Mmio2 = 2,
    /// An MMIO page currently backed by an MMIO2 page (`page_alias_mmio2`).
    Mmio2AliasMmio = 3,
    /// An MMIO page backed by an arbitrary host page for shadow paging only (`page_alias_hc`).
    SpecialAliasMmio = 4,
    /// Shadowed ROM (RAM-like).
    RomShadow = 5,
    /// Read-only memory.
    Rom = 6,
    /// Memory-mapped I/O with no backing: every access traps.
    Mmio = 7,
}

impl PageType {
    const ALL: [PageType; 8] = [
        PageType::Invalid,
        PageType::Ram,
        PageType::Mmio2,
        PageType::Mmio2AliasMmio,
        PageType::SpecialAliasMmio,
        PageType::RomShadow,
        PageType::Rom,
        PageType::Mmio,
    ];

    /// Whether the page is an alias of another backing (either alias kind).
    pub const fn is_alias(self) -> bool {
        matches!(self, PageType::Mmio2AliasMmio | PageType::SpecialAliasMmio)
    }

    /// Whether the type is read-write-execute (the original's `PGMPAGETYPE_IS_RWX`).
    pub const fn is_rwx(self) -> bool {
        (self as u8) >= 1 && (self as u8) <= PageType::RomShadow as u8
    }
}

/// Allocation state of a page's backing (the original's `PGM_PAGE_STATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum PageState {
    /// Backed by the shared zero page.
    Zero = 0,
    /// Backed by its own host page.
    Allocated = 1,
    /// Allocated, with shadow mappings kept read-only to catch the first write.
    WriteMonitored = 2,
    /// Shared copy-on-write with other VMs.
    Shared = 3,
    /// Ballooned out: no backing.
    Ballooned = 4,
}

impl PageState {
    const ALL: [PageState; 5] = [
        PageState::Zero,
        PageState::Allocated,
        PageState::WriteMonitored,
        PageState::Shared,
        PageState::Ballooned,
    ];
}

/// Access-handler state of a page, ordered by priority: a page shared by several handlers
/// takes the maximum of their states (the original's `PGM_PAGE_HNDL_PHYS_STATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum HandlerState {
    /// No handler touches the page.
    None = 0,
    /// A handler covers the page but monitoring is off (temp-off, alias; "dirty" for MMIO2 tracking).
    Disabled = 1,
    /// Writes trap.
    Write = 2,
    /// Every access traps.
    All = 3,
}

impl HandlerState {
    /// Decodes the two-bit field.
    pub const fn from_bits(bits: u8) -> HandlerState {
        match bits & 3 {
            0 => HandlerState::None,
            1 => HandlerState::Disabled,
            2 => HandlerState::Write,
            _ => HandlerState::All,
        }
    }

    /// One character for page maps: `.` none, `d` disabled, `W` write, `A` all.
    pub const fn glyph(self) -> char {
        match self {
            HandlerState::None => '.',
            HandlerState::Disabled => 'd',
            HandlerState::Write => 'W',
            HandlerState::All => 'A',
        }
    }
}

/// Protection of a page in the nested page tables under NEM (the original's `NEM_PAGE_PROT_*` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NemProtection(pub u8);

impl NemProtection {
    /// No access: every access exits to the VMM.
    pub const NONE: NemProtection = NemProtection(0);
    /// Reads allowed.
    pub const READ: u8 = 1;
    /// Instruction fetches allowed.
    pub const EXECUTE: u8 = 2;
    /// Writes allowed.
    pub const WRITE: u8 = 4;
    /// Read + execute.
    pub const RX: NemProtection = NemProtection(Self::READ | Self::EXECUTE);
    /// Read + write + execute.
    pub const RWX: NemProtection = NemProtection(Self::READ | Self::EXECUTE | Self::WRITE);

    /// Whether reads are allowed.
    pub const fn can_read(self) -> bool {
        self.0 & Self::READ != 0
    }
    /// Whether writes are allowed.
    pub const fn can_write(self) -> bool {
        self.0 & Self::WRITE != 0
    }
    /// Whether instruction fetches are allowed.
    pub const fn can_execute(self) -> bool {
        self.0 & Self::EXECUTE != 0
    }
}

/// Page id meaning "no page" (the original's `NIL_GMM_PAGEID`).
pub const NIL_PAGE_ID: u32 = u32::MAX;
/// Largest host-physical address a descriptor can hold (a 36-bit frame number).
pub const MAX_HOST_PHYS: u64 = (1 << 48) - 1;

const STATE_MASK: u64 = 0b11;
const NOT_IN_HM_BIT: u64 = 1 << 2;
const NEM_SHIFT: u32 = 10;
const NEM_MASK: u64 = 0b11 << NEM_SHIFT;
const FRAME_SHIFT: u32 = 12;
const FRAME_BITS: u32 = 36;
const FRAME_MASK: u64 = ((1u64 << FRAME_BITS) - 1) << FRAME_SHIFT;
const PSTATE_SHIFT: u32 = 48;
const PSTATE_MASK: u64 = 0b111 << PSTATE_SHIFT;
const TYPE_SHIFT: u32 = 51;
const TYPE_MASK: u64 = 0b111 << TYPE_SHIFT;

// The constants tie together: the frame field holds exactly every page of the largest host
// address, fields never overlap, and every enum value fits its field.
const _: () = assert!(FRAME_SHIFT == PAGE_SHIFT);
const _: () = assert!(FRAME_MASK | PAGE_OFFSET_BITS == MAX_HOST_PHYS);
const _: () = assert!(STATE_MASK & NOT_IN_HM_BIT == 0 && (STATE_MASK | NOT_IN_HM_BIT) & NEM_MASK == 0);
const _: () = assert!(NEM_MASK & FRAME_MASK == 0 && FRAME_MASK & PSTATE_MASK == 0 && PSTATE_MASK & TYPE_MASK == 0);
const _: () = assert!((PageState::ALL.len() as u64 - 1) << PSTATE_SHIFT <= PSTATE_MASK);
const _: () = assert!((PageType::ALL.len() as u64 - 1) << TYPE_SHIFT == TYPE_MASK);
const _: () = assert!(HandlerState::All as u64 == STATE_MASK);
const PAGE_OFFSET_BITS: u64 = (1 << PAGE_SHIFT) - 1;

/// One guest page: type, backing state, host-physical backing, page id, handler state,
/// not-in-HM flag and NEM state, packed into 16 bytes.
///
/// Layout of the first word (as in the original): bits 1:0 handler state, 2 not-in-HM,
/// 11:10 NEM state, 47:12 host frame, 50:48 page state, 53:51 page type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct PageDescriptor {
    word: u64,
    page_id: u32,
    spare: u32,
}

// Exactly 16 bytes: a 4 GiB guest has a million descriptors and `check_sync` walks them all.
const _: () = assert!(std::mem::size_of::<PageDescriptor>() == 16);

impl PageDescriptor {
    /// A descriptor with no handler state and NEM state 0.
    ///
    /// `host` is truncated to its frame; callers keep it at or below [`MAX_HOST_PHYS`].
    pub const fn new(page_type: PageType, state: PageState, host: Hpa, page_id: u32) -> Self {
        let word = (host.0 & FRAME_MASK) | ((state as u64) << PSTATE_SHIFT) | ((page_type as u64) << TYPE_SHIFT);
        PageDescriptor {
            word,
            page_id,
            spare: 0,
        }
    }

    /// Handler state of the page.
    #[inline]
    pub const fn handler_state(&self) -> HandlerState {
        HandlerState::from_bits((self.word & STATE_MASK) as u8)
    }

    /// Sets the handler state and the not-in-HM flag together (the original's full setter).
    #[inline]
    pub fn set_handler_state(&mut self, state: HandlerState, not_in_hm: bool) {
        self.word =
            (self.word & !(STATE_MASK | NOT_IN_HM_BIT)) | state as u64 | if not_in_hm { NOT_IN_HM_BIT } else { 0 };
    }

    /// Sets only the handler state, keeping the not-in-HM flag (the original's `_ONLY` setter).
    #[inline]
    pub fn set_handler_state_only(&mut self, state: HandlerState) {
        self.word = (self.word & !STATE_MASK) | state as u64;
    }

    /// Whether hardware-assisted execution must not handle this page's traps itself.
    #[inline]
    pub const fn not_in_hm(&self) -> bool {
        self.word & NOT_IN_HM_BIT != 0
    }

    /// The two NEM state bits the platform keeps in the descriptor.
    #[inline]
    pub const fn nem_state(&self) -> u8 {
        ((self.word & NEM_MASK) >> NEM_SHIFT) as u8
    }

    /// Stores the NEM state bits (only the low two bits are kept).
    #[inline]
    pub fn set_nem_state(&mut self, nem_state: u8) {
        self.word = (self.word & !NEM_MASK) | (((nem_state as u64) & 3) << NEM_SHIFT);
    }

    /// The same descriptor with NEM state 0: the part that is the manager's, not the platform's.
    #[inline]
    pub const fn without_nem_state(self) -> Self {
        PageDescriptor {
            word: self.word & !NEM_MASK,
            ..self
        }
    }

    /// Host-physical address of the backing page.
    #[inline]
    pub const fn host_phys(&self) -> Hpa {
        Hpa(self.word & FRAME_MASK)
    }

    /// Sets the host-physical backing (truncated to its frame).
    #[inline]
    pub fn set_host_phys(&mut self, host: Hpa) {
        self.word = (self.word & !FRAME_MASK) | (host.0 & FRAME_MASK);
    }

    /// Allocation state of the backing.
    #[inline]
    pub const fn state(&self) -> PageState {
        let v = ((self.word & PSTATE_MASK) >> PSTATE_SHIFT) as usize;
        // Only `set_state` writes the field, with a `PageState`: any other value is corruption.
        debug_assert!(v < PageState::ALL.len(), "corrupt page-state encoding");
        if v < PageState::ALL.len() {
            PageState::ALL[v]
        } else {
            PageState::Ballooned
        }
    }

    /// Sets the allocation state.
    #[inline]
    pub fn set_state(&mut self, state: PageState) {
        self.word = (self.word & !PSTATE_MASK) | ((state as u64) << PSTATE_SHIFT);
    }

    /// Page type.
    #[inline]
    pub const fn page_type(&self) -> PageType {
        PageType::ALL[((self.word & TYPE_MASK) >> TYPE_SHIFT) as usize]
    }

    /// Sets the page type.
    #[inline]
    pub fn set_page_type(&mut self, page_type: PageType) {
        self.word = (self.word & !TYPE_MASK) | ((page_type as u64) << TYPE_SHIFT);
    }

    /// Page id of the backing ([`NIL_PAGE_ID`] for the zero page and MMIO).
    #[inline]
    pub const fn page_id(&self) -> u32 {
        self.page_id
    }

    /// Sets the page id.
    #[inline]
    pub fn set_page_id(&mut self, page_id: u32) {
        self.page_id = page_id;
    }

    /// The raw first word, for digests and corruption tests.
    #[inline]
    pub const fn raw_word(&self) -> u64 {
        self.word
    }

    /// Protection NEM must give this page (the original's `pgmPhysPageCalcNemProtection`).
    ///
    /// MMIO (and invalid) pages and pages in state `All` get none; `Write` pages and ROM get
    /// read + execute; other RWX pages get read + write + execute when allocated, read + execute
    /// otherwise (so the first write can allocate them). The not-in-HM flag does not matter.
    pub const fn nem_protection(&self) -> NemProtection {
        let ty = self.page_type();
        if matches!(ty, PageType::Mmio | PageType::Invalid) {
            return NemProtection::NONE;
        }
        match self.handler_state() {
            HandlerState::All => NemProtection::NONE,
            HandlerState::Write => NemProtection::RX,
            HandlerState::None | HandlerState::Disabled => {
                if matches!(ty, PageType::Rom) {
                    NemProtection::RX
                } else if matches!(self.state(), PageState::Allocated) {
                    NemProtection::RWX
                } else {
                    NemProtection::RX
                }
            }
        }
    }
}

impl std::fmt::Debug for PageDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{{{:?} {:?} hc={} id={:#x} hndl={:?}{} nem={}}}",
            self.page_type(),
            self.state(),
            self.host_phys(),
            self.page_id(),
            self.handler_state(),
            if self.not_in_hm() { " not-in-hm" } else { "" },
            self.nem_state()
        )
    }
}

/// Plain, serialisable view of a descriptor (for traces, JSON and snapshots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PageView {
    /// Page type.
    pub page_type: PageType,
    /// Allocation state.
    pub state: PageState,
    /// Host-physical backing.
    pub host_phys: Hpa,
    /// Page id.
    pub page_id: u32,
    /// Handler state.
    pub handler_state: HandlerState,
    /// Not-in-HM flag.
    pub not_in_hm: bool,
}

impl From<PageDescriptor> for PageView {
    fn from(d: PageDescriptor) -> Self {
        PageView {
            page_type: d.page_type(),
            state: d.state(),
            host_phys: d.host_phys(),
            page_id: d.page_id(),
            handler_state: d.handler_state(),
            not_in_hm: d.not_in_hm(),
        }
    }
}

/// The page id of an allocated backing page: its host frame number.
pub const fn page_id_for(host: Hpa) -> u32 {
    (host.0 >> PAGE_SHIFT) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_without_disturbing_each_other() {
        let mut d = PageDescriptor::new(PageType::Mmio2, PageState::Allocated, Hpa(0xabc_d000), 7);
        d.set_handler_state(HandlerState::Write, true);
        d.set_nem_state(3);
        assert_eq!(d.page_type(), PageType::Mmio2);
        assert_eq!(d.state(), PageState::Allocated);
        assert_eq!(d.host_phys(), Hpa(0xabc_d000));
        assert_eq!(d.handler_state(), HandlerState::Write);
        assert!(d.not_in_hm());
        assert_eq!(d.nem_state(), 3);
        d.set_handler_state_only(HandlerState::Disabled);
        assert!(d.not_in_hm(), "the _only setter keeps not-in-HM");
        d.set_handler_state(HandlerState::None, false);
        assert!(!d.not_in_hm());
        d.set_host_phys(Hpa(MAX_HOST_PHYS));
        assert_eq!(d.host_phys(), Hpa(MAX_HOST_PHYS & !0xfff));
        assert_eq!(d.page_type(), PageType::Mmio2);
        assert_eq!(d.without_nem_state().nem_state(), 0);
    }

    #[test]
    fn nem_protection_follows_type_state_and_handler() {
        let mut ram = PageDescriptor::new(PageType::Ram, PageState::Allocated, Hpa(0x1000), 1);
        assert_eq!(ram.nem_protection(), NemProtection::RWX);
        ram.set_handler_state(HandlerState::Write, false);
        assert_eq!(ram.nem_protection(), NemProtection::RX);
        ram.set_handler_state(HandlerState::All, false);
        assert_eq!(ram.nem_protection(), NemProtection::NONE);
        ram.set_handler_state(HandlerState::Disabled, false);
        assert_eq!(ram.nem_protection(), NemProtection::RWX);
        ram.set_state(PageState::Zero);
        assert_eq!(ram.nem_protection(), NemProtection::RX);
        let mmio = PageDescriptor::new(PageType::Mmio, PageState::Zero, Hpa(0x1000), NIL_PAGE_ID);
        assert_eq!(mmio.nem_protection(), NemProtection::NONE);
        let rom = PageDescriptor::new(PageType::Rom, PageState::Allocated, Hpa(0x1000), 1);
        assert_eq!(rom.nem_protection(), NemProtection::RX);
    }

    /// RWX types are the ones a guest may read, write and execute when nothing monitors
    /// them: RAM and RAM-like backings, never ROM, MMIO or the invalid type.
    #[test]
    fn rwx_types_are_ram_mmio2_aliases_and_shadowed_rom() {
        let rwx: Vec<PageType> = PageType::ALL.into_iter().filter(|t| t.is_rwx()).collect();
        assert_eq!(
            rwx,
            [
                PageType::Ram,
                PageType::Mmio2,
                PageType::Mmio2AliasMmio,
                PageType::SpecialAliasMmio,
                PageType::RomShadow
            ]
        );
    }

    /// The debug form is what assertion failures and traces print for a page: every field.
    #[test]
    fn debug_form_names_every_field() {
        let mut d = PageDescriptor::new(PageType::Ram, PageState::Allocated, Hpa(0x5000), 9);
        d.set_handler_state(HandlerState::Write, true);
        d.set_nem_state(2);
        let text = format!("{d:?}");
        for part in [
            "Ram",
            "Allocated",
            "hc=",
            "0x5000",
            "id=0x9",
            "hndl=Write",
            "not-in-hm",
            "nem=2",
        ] {
            assert!(text.contains(part), "{text:?} lacks {part:?}");
        }
    }
}
