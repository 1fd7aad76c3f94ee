//! The operations a simulation step can apply, and what each one produced.
//!
//! Operations carry concrete addresses and refer to handler nodes by their creation index,
//! so a trace stays meaningful (and deterministic) when the shrinker removes earlier steps:
//! a removed registration turns later operations on it into the same error on both sides.

use pgmsim::{Error, Status};
use serde::{Deserialize, Serialize};

use crate::mmu::guest_pt::KernelError;

/// Read, write or instruction fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessKind {
    /// Data read.
    Read,
    /// Data write.
    Write,
    /// Instruction fetch.
    Exec,
}

/// One step of a simulation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `register(first, last, type, user)`.
    Register {
        /// First byte.
        first: u64,
        /// Last byte.
        last: u64,
        /// Index into the configuration's types (out of range: a garbage handle).
        ty: u8,
        /// User argument.
        user: u64,
    },
    /// `create(type, user)`; the node gets the next creation index.
    Create {
        /// Type index.
        ty: u8,
        /// User argument.
        user: u64,
    },
    /// `dup(node)`; the copy gets the next creation index.
    Dup {
        /// Creation index of the source (out of range: a garbage id).
        h: u32,
    },
    /// `register_ex(node, first, last)`.
    RegisterEx {
        /// Creation index.
        h: u32,
        /// First byte.
        first: u64,
        /// Last byte.
        last: u64,
    },
    /// `deregister_ex(node)`.
    DeregisterEx {
        /// Creation index.
        h: u32,
    },
    /// `destroy(node)`.
    Destroy {
        /// Creation index.
        h: u32,
    },
    /// `deregister(addr)`.
    Deregister {
        /// Handler start.
        addr: u64,
    },
    /// `change_user_arg(addr, user)`.
    ChangeUserArg {
        /// Handler start.
        addr: u64,
        /// New user argument.
        user: u64,
    },
    /// `reset(addr)`.
    Reset {
        /// Handler start.
        addr: u64,
    },
    /// `reset_mmio2_with_bitmap(addr, [0; words], offset)` outside dirty tracking.
    ResetBitmap {
        /// Handler start.
        addr: u64,
        /// Bitmap size in 64-bit words.
        words: u32,
        /// Bit offset.
        offset: u32,
    },
    /// `page_temp_off(addr, page)`.
    TempOff {
        /// Handler start.
        addr: u64,
        /// Page.
        page: u64,
    },
    /// `page_alias_mmio2(addr, page, region, offset)`.
    AliasMmio2 {
        /// Handler start.
        addr: u64,
        /// Page.
        page: u64,
        /// MMIO2 handle value.
        region: u32,
        /// Byte offset into the region.
        offset: u64,
    },
    /// `page_alias_hc(addr, page, host)`.
    AliasHc {
        /// Handler start.
        addr: u64,
        /// Page.
        page: u64,
        /// Host-physical page.
        host: u64,
    },
    /// `reset_aliased_page(page, accounting)`.
    ResetAliased {
        /// Page.
        page: u64,
        /// With accounting.
        accounting: bool,
    },
    /// `vm_reset()`.
    VmReset,
    /// `is_registered`, `is_all` and `lookup` at `addr`.
    Query {
        /// Any address.
        addr: u64,
    },
    /// Guest kernel maps a virtual page, then INVLPG on every vCPU using the space.
    Map {
        /// Address space.
        space: u8,
        /// Virtual page index.
        vpi: u32,
        /// Guest-physical page.
        gp: u64,
        /// Writable.
        write: bool,
        /// Executable.
        exec: bool,
    },
    /// Guest kernel unmaps a virtual page, then INVLPG.
    Unmap {
        /// Address space.
        space: u8,
        /// Virtual page index.
        vpi: u32,
    },
    /// Guest kernel changes a page's rights, then INVLPG.
    Protect {
        /// Address space.
        space: u8,
        /// Virtual page index.
        vpi: u32,
        /// Writable.
        write: bool,
        /// Executable.
        exec: bool,
    },
    /// A vCPU loads the CR3 of another address space.
    SwitchCr3 {
        /// vCPU.
        vcpu: u8,
        /// Address space.
        space: u8,
    },
    /// A guest access.
    Access {
        /// vCPU.
        vcpu: u8,
        /// Virtual address.
        va: u64,
        /// 1, 2, 4 or 8 bytes, within one page.
        size: u8,
        /// Read, write or fetch.
        kind: AccessKind,
        /// Value written.
        value: u64,
    },
    /// The dirty-tracking device harvests its bitmap (`reset_mmio2_with_bitmap`).
    Harvest {
        /// Index of the tracked MMIO2 range.
        tracker: u8,
    },
}

impl Op {
    /// Short name of the operation kind (statistics keys).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Register { .. } => "register",
            Op::Create { .. } => "create",
            Op::Dup { .. } => "dup",
            Op::RegisterEx { .. } => "register_ex",
            Op::DeregisterEx { .. } => "deregister_ex",
            Op::Destroy { .. } => "destroy",
            Op::Deregister { .. } => "deregister",
            Op::ChangeUserArg { .. } => "change_user_arg",
            Op::Reset { .. } => "reset",
            Op::ResetBitmap { .. } => "reset_mmio2_with_bitmap",
            Op::TempOff { .. } => "page_temp_off",
            Op::AliasMmio2 { .. } => "page_alias_mmio2",
            Op::AliasHc { .. } => "page_alias_hc",
            Op::ResetAliased { .. } => "reset_aliased_page",
            Op::VmReset => "vm_reset",
            Op::Query { .. } => "query",
            Op::Map { .. } => "map",
            Op::Unmap { .. } => "unmap",
            Op::Protect { .. } => "protect",
            Op::SwitchCr3 { .. } => "switch_cr3",
            Op::Access { .. } => "access",
            Op::Harvest { .. } => "harvest",
        }
    }
}

/// Where one piece of a trapped access went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Host memory at this address.
    Host(u64),
    /// The MMIO default: reads give zeros, writes are dropped.
    MmioDefault,
    /// The device handled it itself (emulated register).
    Device,
}

/// One byte range of a trapped access and who served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Piece {
    /// First guest-physical byte.
    pub first: u64,
    /// Last guest-physical byte.
    pub last: u64,
    /// Start of the handler invoked, or `None` for a byte range no handler covers.
    pub handler: Option<u64>,
    /// Where the bytes went.
    pub target: Target,
}

/// What a guest access did.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessOutcome {
    /// The virtual address is outside the simulated window.
    BadAddress,
    /// The guest's own tables refused it (not present, or rights).
    GuestFault {
        /// The page was mapped but the rights forbid the access.
        protection: bool,
    },
    /// Guest-physical address in no RAM range, or an MMIO page with no handler.
    Unassigned {
        /// Guest-physical address.
        gp: u64,
    },
    /// Went straight to memory.
    Direct {
        /// Guest-physical address.
        gp: u64,
        /// Host-physical address.
        host: u64,
    },
    /// Trapped and dispatched to handlers.
    Trapped {
        /// Guest-physical address.
        gp: u64,
        /// Pieces in address order.
        pieces: Vec<Piece>,
    },
}

/// The result of one step, as recorded in traces and hashed into the trace hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    /// A manager operation.
    Manager(Result<Status, Error>),
    /// A query: is_registered, is_all, lookup's start.
    Query {
        /// `is_registered`.
        registered: bool,
        /// `is_all`.
        is_all: Result<bool, Error>,
        /// Start of the handler `lookup` found.
        handler: Option<u64>,
    },
    /// A guest-kernel edit.
    Kernel(Result<(), KernelError>),
    /// A guest access and the value read (0 for writes).
    Access {
        /// What happened.
        outcome: AccessOutcome,
        /// Value read.
        value: u64,
    },
    /// A harvest: the bitmap words.
    Harvest(Result<Vec<u64>, Error>),
    /// The step did nothing (e.g. a harvest with no tracker).
    Nothing,
}
