//! The shape of the vocabulary's metadata: what every driver needs to know about a call
//! besides how to apply it. The rows themselves live next to the calls ([`crate::call::CALLS`]
//! and [`crate::call::ApiCall::visit_mut`]), so adding an operation edits one file.

use pgmsim::{HandlerKind, Hpa, Status};

use crate::call::{NodeIx, TypeIx};

/// One operand of a call, by the role it plays, as a mutable view into the call. The role
/// decides how generic code treats it: how the trace hash encodes it, which pages a step
/// touched, how a step log prints it, what the shrinker renumbers or simplifies.
#[derive(Debug)]
pub enum Operand<'a, A> {
    /// A handler kind (encoded as an 8-byte tag).
    Kind(&'a mut HandlerKind),
    /// A flag; printed as its label when set, encoded as one byte always.
    Flag(&'static str, &'a mut bool),
    /// Whether the call gives its own description; encoded only when set (older traces
    /// had no such field, and must keep their hash).
    Described(&'a mut bool),
    /// A handler node by creation index (4 bytes).
    Node(&'a mut NodeIx),
    /// A handler type by registration index (1 byte).
    Type(&'a mut TypeIx),
    /// A user argument (8 bytes).
    User(&'a mut u64),
    /// The guest-physical range a registration covers: first and last byte.
    Range(&'a mut A, &'a mut A),
    /// The start of the registered handler the call acts on (guest-physical).
    Handler(&'a mut A),
    /// The guest page the call acts on.
    Page(&'a mut A),
    /// The guest-physical address a query asks about.
    Addr(&'a mut A),
    /// A bitmap's size in 64-bit words (4 bytes).
    Words(&'a mut u32),
    /// A bit offset into a bitmap (4 bytes).
    BitOffset(&'a mut u32),
    /// The value of every bitmap word before the call; encoded only when non-zero.
    Fill(&'a mut u64),
    /// An MMIO2 region handle value (4 bytes).
    Region(&'a mut u32),
    /// A byte offset into an MMIO2 region (8 bytes).
    ByteOffset(&'a mut u64),
    /// A host-physical page (8 bytes).
    Host(&'a mut Hpa),
    /// Whether a reset does the accounting (1 byte).
    Accounting(&'a mut bool),
}

/// Which guest pages a call can change, for the simulator's incremental checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Footprint {
    /// No page: the call changes no page state (or changes nothing at all).
    Nothing,
    /// The pages its operands name: a registration's range plus a page either side, the
    /// range of the handler a start address or node names, a page and its handler.
    Operands,
    /// Every page of every MMIO handler (a VM reset undoes every alias).
    MmioHandlers,
}

/// What the testbed knows about one operation of the API, besides how to apply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSpec {
    /// The API method's name (statistics, coverage tables, step logs).
    pub name: &'static str,
    /// The operation's tag in the trace hash's encoding. Never reuse or renumber one: every
    /// recorded trace's hash depends on it.
    pub tag: u64,
    /// The simulator's generator family whose weight the shrinker keeps when a minimised
    /// trace still has this call (a name from the simulator's weight table).
    pub family: &'static str,
    /// Whether the call may change state (queries never do).
    pub mutates: bool,
    /// Whether a success creates a node that takes the next creation index.
    pub creates_node: bool,
    /// The pages it can change.
    pub footprint: Footprint,
    /// The informational status the call reports instead of success when the platform fell
    /// back to a full resync, if it can.
    pub resync_status: Option<Status>,
    /// Every result the call can produce (status and error names, or the answers of a
    /// query: `true` / `false`, `found` / `none`), per `docs/semantics.md` §3. Coverage
    /// reports any other cell as unexpected.
    pub results: &'static [&'static str],
}
