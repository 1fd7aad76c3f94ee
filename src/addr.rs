//! Addresses and page arithmetic shared by every crate of the workspace.
//!
//! Three address spaces meet in a hypervisor's memory code, and mixing them up is a classic
//! bug: guest-virtual (what the guest's instructions use), guest-physical (what the guest's
//! page tables map to, and what handlers are registered over) and host-physical (the pages
//! that back guest memory). The handler API is about guest-physical memory, so its plain
//! `u64` addresses are guest-physical; every other address space is typed ([`Hpa`], [`Gva`]).
//! [`Gpa`] is for code that holds guest-physical and other addresses side by side (a
//! platform's translations, the simulator's MMU), in the style of rust-vmm's `GuestAddress`.

use std::fmt;

/// Guest pages are 4 KiB.
pub const PAGE_SHIFT: u32 = 12;
/// Size of a guest page in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Mask of the byte offset inside a page.
pub const PAGE_OFFSET_MASK: u64 = PAGE_SIZE - 1;
/// Largest handler length (bytes) accepted: the original assumes `last - first < 4 GiB`.
pub const MAX_HANDLER_SPAN: u64 = 1 << 32;

/// Start of the page containing `addr`.
#[inline]
pub const fn page_base(addr: u64) -> u64 {
    addr & !PAGE_OFFSET_MASK
}

/// Pages touched by the inclusive byte range `[first, last]`, partial edge pages included
/// (the original's `cPages`). Callers guarantee `first <= last` and a span of at most 4 GiB.
#[inline]
pub const fn pages_touched(first: u64, last: u64) -> u32 {
    ((last - page_base(first) + PAGE_SIZE) >> PAGE_SHIFT) as u32
}

/// Whether `[first, last]` covers whole pages only.
#[inline]
pub const fn is_whole_pages(first: u64, last: u64) -> bool {
    first & PAGE_OFFSET_MASK == 0 && last & PAGE_OFFSET_MASK == PAGE_OFFSET_MASK
}

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub struct $name(pub u64);

        impl $name {
            /// The raw address.
            #[inline]
            pub const fn raw(self) -> u64 {
                self.0
            }

            /// The start of the page containing the address.
            #[inline]
            pub const fn page_base(self) -> Self {
                $name(page_base(self.0))
            }

            /// The byte offset inside the page.
            #[inline]
            pub const fn page_offset(self) -> u64 {
                self.0 & PAGE_OFFSET_MASK
            }

            /// The address `bytes` further on (wrapping, as address arithmetic does).
            #[inline]
            pub const fn offset(self, bytes: u64) -> Self {
                $name(self.0.wrapping_add(bytes))
            }

            /// The address at byte `offset` (taken modulo the page size) of this address's
            /// page: a page base plus the offset of an access.
            #[inline]
            pub const fn with_offset(self, offset: u64) -> Self {
                $name(page_base(self.0) | (offset & PAGE_OFFSET_MASK))
            }
        }

        impl From<$name> for u64 {
            #[inline]
            fn from(a: $name) -> u64 {
                a.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

address_type!(
    /// A guest-physical address: what guest page tables map to and handlers cover.
    Gpa
);
address_type!(
    /// A host-physical address: the memory that backs a guest page (RAM, an MMIO2 page,
    /// an alias target, the shared zero page).
    Hpa
);
address_type!(
    /// A guest-virtual address: what the guest's instructions use, translated by its page
    /// tables (the manager never sees one; its platforms do).
    Gva
);
