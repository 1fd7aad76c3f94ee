//! Guest-physical address arithmetic shared by every crate of the workspace.

/// Guest pages are 4 KiB.
pub const PAGE_SHIFT: u32 = 12;
/// Size of a guest page in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Mask of the byte offset inside a page.
pub const PAGE_OFFSET_MASK: u64 = PAGE_SIZE - 1;
/// Largest handler length (bytes) accepted: the seed assumes `last - first < 4 GiB`.
pub const MAX_HANDLER_SPAN: u64 = 1 << 32;
/// "Not registered" marker for a handler key, the seed's `NIL_RTGCPHYS`.
pub const NIL_GC_PHYS: u64 = u64::MAX;

/// Start of the page containing `addr`.
#[inline]
pub const fn page_base(addr: u64) -> u64 {
    addr & !PAGE_OFFSET_MASK
}

/// Page frame number of `addr`.
#[inline]
pub const fn page_number(addr: u64) -> u64 {
    addr >> PAGE_SHIFT
}

/// Pages touched by the inclusive byte range `[first, last]`, partial edge pages included
/// (the seed's `cPages`). Callers guarantee `first <= last` and a span of at most 4 GiB.
#[inline]
pub const fn pages_touched(first: u64, last: u64) -> u32 {
    ((last - page_base(first) + PAGE_SIZE) >> PAGE_SHIFT) as u32
}

/// Whether `[first, last]` covers whole pages only.
#[inline]
pub const fn is_whole_pages(first: u64, last: u64) -> bool {
    first & PAGE_OFFSET_MASK == 0 && last & PAGE_OFFSET_MASK == PAGE_OFFSET_MASK
}
