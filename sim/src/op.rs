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
/// their [`ApiCall`] names (`register`, `temp_off`, ...). Addresses are `"0x…"` strings
/// (numbers are read too); unknown fields are refused with a message naming the step.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(remote = "Self", tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// `is_registered`, `is_all` and `lookup` at `addr`, in one step.
    Query {
        /// Any address.
        #[serde(with = "pgmsim_testkit::hex::u64")]
        addr: u64,
    },
    /// Guest kernel maps a virtual page, then INVLPG on every vCPU using the space.
    Map {
        /// Address space.
        space: u8,
        /// Virtual page index.
        vpi: u32,
        /// Guest-physical page.
        #[serde(with = "pgmsim_testkit::hex::u64")]
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
        #[serde(with = "pgmsim_testkit::hex::u64")]
        va: u64,
        /// 1, 2, 4 or 8 bytes, within one page.
        size: u8,
        /// Read, write or fetch.
        kind: AccessKind,
        /// Value written (a bit pattern: a `"0x…"` string like the addresses, so JSON tools
        /// that read numbers as doubles cannot round it).
        #[serde(with = "pgmsim_testkit::hex::u64")]
        value: u64,
    },
    /// The dirty-tracking device harvests its bitmap (`reset_mmio2_with_bitmap`).
    Harvest {
        /// Index of the tracked MMIO2 range.
        tracker: u8,
    },
    /// A call of the handler API.
    #[serde(skip)]
    Call(ApiCall),
}

/// The `op` tags of the steps that are not API calls.
const MACHINE_STEPS: [&str; 7] = ["query", "map", "unmap", "protect", "switch_cr3", "access", "harvest"];

impl Serialize for Op {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Op::Call(call) => call.serialize(s),
            // The derived (remote = "Self") serialiser of the machine steps.
            step => Op::serialize(step, s),
        }
    }
}

/// Dispatches on the `op` tag, so a malformed step gets the message of the one shape it
/// names (an untagged fallback would only say "did not match any variant").
impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Op, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        let Some(tag) = v.get("op").and_then(serde_json::Value::as_str).map(str::to_owned) else {
            return Err(D::Error::custom(format!("a step needs an \"op\" field naming it: {v}")));
        };
        let step = if MACHINE_STEPS.contains(&tag.as_str()) {
            Op::deserialize(v)
        } else {
            ApiCall::deserialize(v).map(Op::Call)
        };
        step.map_err(|e| D::Error::custom(format!("step \"{tag}\": {e}")))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_hex_or_numbers_and_refuse_unknown_fields() {
        let map: Op =
            serde_json::from_str(r#"{"op":"map","space":0,"vpi":3,"gp":"0x2f000","write":true,"exec":false}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"op":"map","space":0,"vpi":3,"gp":"0x2f000","write":true,"exec":false}"#
        );
        let old: Op =
            serde_json::from_str(r#"{"op":"map","space":0,"vpi":3,"gp":192512,"write":true,"exec":false}"#).unwrap();
        assert_eq!(old, map);
        let call: Op =
            serde_json::from_str(r#"{"op":"register","first":"0x1000","last":4095,"ty":1,"user":7}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&call).unwrap(),
            r#"{"op":"register","first":"0x1000","last":"0xfff","ty":1,"user":7}"#
        );
        for bad in [
            r#"{"op":"map","space":0,"vpi":3,"gp":"0x2f000","write":true,"exec":false,"typo":1}"#,
            r#"{"op":"register","first":"0x1000","last":4095,"ty":1,"user":7,"vcpu":2}"#,
            r#"{"op":"no_such_step"}"#,
        ] {
            let e = serde_json::from_str::<Op>(bad).unwrap_err().to_string();
            assert!(e.contains("unknown"), "{e}");
        }
        let e = serde_json::from_str::<Op>(r#"{"op":"map","space":0}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("step \"map\"") && e.contains("missing field"), "{e}");
    }
}
