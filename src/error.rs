//! Typed results of every operation (semantics §1.10): the original's `VERR_*` failures as
//! [`Error`] and its informational `VINF_*` successes as [`Status`].

/// Why an operation failed. A failed operation never changes any state.
///
/// One variant per failure the original can report; the comment on each names the original's status.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Error {
    /// `VERR_INVALID_HANDLE`: a handler-type handle or handler id that is unknown, stale or garbage.
    #[error("invalid, stale or unknown handle")]
    InvalidHandle,
    /// `VERR_INVALID_PARAMETER`: a malformed range, misaligned handler, page outside the handler,
    /// bitmap too small, or an address past what a page descriptor can hold.
    #[error("invalid parameter")]
    InvalidParameter,
    /// `VERR_OUT_OF_RESOURCES`: the handler allocator or the handler-type table is full.
    #[error("out of resources")]
    OutOfResources,
    /// `VERR_WRONG_ORDER`: registering a registered handler, or destroying one still registered.
    #[error("wrong order (already registered, or destroy while registered)")]
    WrongOrder,
    /// `VERR_PGM_HANDLER_PHYSICAL_NO_RAM_RANGE`: the range is not inside exactly one RAM range.
    #[error("range is not inside a single RAM range")]
    NoRamRange,
    /// `VERR_PGM_HANDLER_PHYSICAL_CONFLICT`: the range overlaps a registered handler by a byte or more.
    #[error("range conflicts with a registered handler")]
    Conflict,
    /// `VERR_PGM_HANDLER_NOT_FOUND`: no handler starts at (or, for queries, contains) the address.
    #[error("no such handler")]
    NotFound,
    /// `VERR_ACCESS_DENIED`: the operation does not apply to the handler's kind.
    #[error("operation not allowed for this handler kind")]
    AccessDenied,
    /// `VERR_PGM_PHYS_NOT_MMIO2`: the page cannot be aliased (not MMIO, or aliased the other way).
    #[error("page is not an MMIO / MMIO2 page")]
    NotMmio2,
    /// `VERR_OUT_OF_RANGE`: unknown MMIO2 region or offset past its end.
    #[error("MMIO2 handle or offset out of range")]
    OutOfRange,
    /// `VERR_WRONG_TYPE`: bitmap reset of a non-Write handler, or alias reset of a page that is not aliased.
    #[error("wrong handler or page type")]
    WrongType,
    /// `VERR_PGM_NOT_SUPPORTED_FOR_NEM_MODE`: aliasing while the VM runs in exclusive NEM mode.
    #[error("not supported in NEM mode")]
    NotSupportedInNemMode,
    /// `VERR_PGM_HANDLER_IPE_*` / `VERR_PGM_PHYS_HANDLER_IPE`: an internal inconsistency was detected.
    #[error("internal processing error")]
    Internal,
}

/// How an operation succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Status {
    /// `VINF_SUCCESS`.
    Success,
    /// `VINF_PGM_GCPHYS_ALIASED`: registered, but the platform had to fall back to a full shadow
    /// resync (a page's reverse map overflowed, or the page was mapped in a way it cannot track).
    GcPhysAliased,
    /// `VINF_PGM_SYNC_CR3`: the bitmap reset re-armed pages but the platform needs a full resync.
    SyncCr3,
    /// `VINF_PGM_HANDLER_ALREADY_ALIASED`: the page already has the requested (kind of) alias.
    AlreadyAliased,
}

/// Result of a manager operation.
pub type OpResult = Result<Status, Error>;

impl Error {
    /// The variant's name, for statistics and coverage tables.
    pub const fn name(self) -> &'static str {
        match self {
            Error::InvalidHandle => "InvalidHandle",
            Error::InvalidParameter => "InvalidParameter",
            Error::OutOfResources => "OutOfResources",
            Error::WrongOrder => "WrongOrder",
            Error::NoRamRange => "NoRamRange",
            Error::Conflict => "Conflict",
            Error::NotFound => "NotFound",
            Error::AccessDenied => "AccessDenied",
            Error::NotMmio2 => "NotMmio2",
            Error::OutOfRange => "OutOfRange",
            Error::WrongType => "WrongType",
            Error::NotSupportedInNemMode => "NotSupportedInNemMode",
            Error::Internal => "Internal",
        }
    }

    /// Every variant, in declaration order.
    pub const ALL: [Error; 13] = [
        Error::InvalidHandle,
        Error::InvalidParameter,
        Error::OutOfResources,
        Error::WrongOrder,
        Error::NoRamRange,
        Error::Conflict,
        Error::NotFound,
        Error::AccessDenied,
        Error::NotMmio2,
        Error::OutOfRange,
        Error::WrongType,
        Error::NotSupportedInNemMode,
        Error::Internal,
    ];
}

impl Status {
    /// The variant's name, for statistics and coverage tables.
    pub const fn name(self) -> &'static str {
        match self {
            Status::Success => "Success",
            Status::GcPhysAliased => "GcPhysAliased",
            Status::SyncCr3 => "SyncCr3",
            Status::AlreadyAliased => "AlreadyAliased",
        }
    }

    /// Every variant, in declaration order.
    pub const ALL: [Status; 4] = [
        Status::Success,
        Status::GcPhysAliased,
        Status::SyncCr3,
        Status::AlreadyAliased,
    ];
}
