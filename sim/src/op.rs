//! The steps of a simulation, and what each produced.
//!
//! A step is either a call of the handler API ([`ApiCall`], the vocabulary every driver of
//! the API shares) or something the rest of the machine does: the guest kernel edits its
//! page tables, a vCPU switches address space or accesses memory, the dirty-tracking device
//! harvests. Steps carry concrete addresses and name handler nodes by creation index, so a
//! trace stays meaningful (and deterministic) when the shrinker removes earlier steps: a
//! removed creation turns later calls on it into the same error on both sides.

use pgmsim::{Error, Gpa, Hpa, Status};
use pgmsim_testkit::{ApiCall, Outcome};
use serde::{Deserialize, Serialize};

use crate::mmu::guest_pt::KernelError;

/// Read, write or instruction fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessKind {
    /// Data read.
    Read,
    /// Data write.
    Write,
    /// Instruction fetch.
    Exec,
}

/// One step of a simulation. Serialised as one JSON object tagged by `"op"`; API calls use
/// their [`ApiCall`] names (`register`, `temp_off`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `is_registered`, `is_all` and `lookup` at `addr`, in one step.
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
    /// A call of the handler API.
    #[serde(untagged)]
    Call(ApiCall),
}

impl Op {
    /// Short name of the step kind (statistics keys): the API method's name for calls.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Query { .. } => "query",
            Op::Map { .. } => "map",
            Op::Unmap { .. } => "unmap",
            Op::Protect { .. } => "protect",
            Op::SwitchCr3 { .. } => "switch_cr3",
            Op::Access { .. } => "access",
            Op::Harvest { .. } => "harvest",
            Op::Call(call) => call.name(),
        }
    }
}

impl From<ApiCall> for Op {
    fn from(call: ApiCall) -> Op {
        Op::Call(call)
    }
}

/// Where one piece of a trapped access went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Host memory at this address.
    Host(Hpa),
    /// The MMIO default: reads give zeros, writes are dropped.
    MmioDefault,
    /// The device handled it itself (emulated register).
    Device,
}

/// One byte range of a trapped access and who served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Piece {
    /// First guest-physical byte.
    pub first: Gpa,
    /// Last guest-physical byte.
    pub last: Gpa,
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
        gp: Gpa,
    },
    /// Went straight to memory.
    Direct {
        /// Guest-physical address.
        gp: Gpa,
        /// Host-physical address.
        host: Hpa,
    },
    /// Trapped and dispatched to handlers.
    Trapped {
        /// Guest-physical address.
        gp: Gpa,
        /// Pieces in address order.
        pieces: Vec<Piece>,
    },
}

/// The answers of a query step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueryAnswer {
    /// `is_registered`.
    pub registered: bool,
    /// `is_all`.
    pub is_all: Result<bool, Error>,
    /// Start of the handler `lookup` found.
    pub handler: Option<u64>,
}

/// The result of one step, as hashed into the trace hash (see `crate::encode`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    /// A mutating API call: its status (create / dup: `Success` when a node was created).
    Manager(Result<Status, Error>),
    /// A query step.
    Query(QueryAnswer),
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
    /// The step did nothing observable (a harvest with no tracker).
    Nothing,
    /// An API query call's answer.
    Answer(Outcome),
}
