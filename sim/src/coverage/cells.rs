//! The coverage vocabulary: the operations and results a run counts, and the cells the API
//! can produce (`docs/semantics.md` §3, one line per operation) or the simulator cannot reach
//! (with the reason), so `pgmsim coverage` can list what a sweep never exercised.

use pgmsim::{Error, HandlerState, PageType, Status};
use pgmsim_testkit::{ApiCall, Outcome, CALLS};

use crate::config::FOUR_GIB;
use crate::mmu::guest_pt::KernelError;
use crate::op::{AccessKind, AccessOutcome};

/// What a write or an instruction fetch can meet: a read's outcomes plus a protection fault.
const WRITE_OR_EXEC: &[&str] = &[
    "direct",
    "trapped",
    "guest_fault",
    "protection_fault",
    "unassigned",
    "bad_address",
];

/// The simulator's own steps, after the API calls in [`OPS`], with the results each can
/// produce by the simulator's own definitions.
const SIM_OPS: [(&str, &[&str]); 8] = [
    // The guest kernel (`mmu::guest_pt`): a map can run out of page-table pages; unmap and
    // protect need a mapping.
    ("map", &["Success", "PoolExhausted"]),
    ("unmap", &["Success", "NotMapped"]),
    ("protect", &["Success", "NotMapped"]),
    ("switch_cr3", &["Success"]),
    // Guest accesses (`access.rs`): reads are never refused by the rights of a present page.
    (
        "access.read",
        &["direct", "trapped", "guest_fault", "unassigned", "bad_address"],
    ),
    ("access.write", WRITE_OR_EXEC),
    ("access.exec", WRITE_OR_EXEC),
    // Harvests (the bitmap reset's status, `SyncCr3` included, is counted under
    // reset_mmio2_with_bitmap; a harvest step records only the bitmap or the error).
    ("harvest", &["Success", "NotFound", "no_tracker"]),
];

/// Index of the first simulator step in [`OPS`] (everything before is an API call).
pub const FIRST_SIM_OP: usize = CALLS.len();

/// How many operations are counted.
pub const OP_COUNT: usize = FIRST_SIM_OP + SIM_OPS.len();

/// The operations counted: every API call (by its method name, in [`CALLS`] order), then
/// the simulator's own steps (guest kernel edits, accesses by kind, harvests).
pub const OPS: [&str; OP_COUNT] = {
    let mut ops = [""; OP_COUNT];
    let mut i = 0;
    while i < OP_COUNT {
        ops[i] = CAN_PRODUCE[i].0;
        i += 1;
    }
    ops
};

/// The results each operation can produce: an API call's from its [`CallSpec::results`]
/// (`docs/semantics.md` §3), the simulator's steps from their own definitions. A cell
/// outside this list is never counted unless something is wrong; `pgmsim coverage` reports
/// such cells as unexpected.
///
/// [`CallSpec::results`]: pgmsim_testkit::CallSpec::results
pub const CAN_PRODUCE: [(&str, &[&str]); OP_COUNT] = {
    let mut rows: [(&str, &[&str]); OP_COUNT] = [("", &[]); OP_COUNT];
    let mut i = 0;
    while i < OP_COUNT {
        rows[i] = if i < FIRST_SIM_OP {
            (CALLS[i].name, CALLS[i].results)
        } else {
            SIM_OPS[i - FIRST_SIM_OP]
        };
        i += 1;
    }
    rows
};

/// The index of operation `name` in [`OPS`] (at compile time; a name not there fails the
/// build).
const fn op_index(name: &str) -> usize {
    let mut i = 0;
    while i < OP_COUNT {
        if str_eq(OPS[i], name) {
            return i;
        }
        i += 1;
    }
    panic!("no such operation")
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The results counted: every [`Status`], every [`Error`], the answers of queries, the guest
/// kernel's errors, the outcomes of guest accesses, and a harvest without a tracker.
pub const RESULTS: [&str; 30] = [
    "Success",
    "GcPhysAliased",
    "SyncCr3",
    "AlreadyAliased",
    "InvalidHandle",
    "InvalidParameter",
    "OutOfResources",
    "WrongOrder",
    "NoRamRange",
    "Conflict",
    "NotFound",
    "AccessDenied",
    "NotMmio2",
    "OutOfRange",
    "WrongType",
    "NotSupportedInNemMode",
    "Internal",
    "true",
    "false",
    "found",
    "none",
    "PoolExhausted",
    "NotMapped",
    "direct",
    "trapped",
    "guest_fault",
    "protection_fault",
    "unassigned",
    "bad_address",
    "no_tracker",
];

const TRUE: usize = 17;
const FOUND: usize = 19;
const POOL_EXHAUSTED: usize = 21;
const DIRECT: usize = 23;
const NO_TRACKER: usize = 29;

/// Index of an API call's operation in [`OPS`].
pub fn api_op(call: &ApiCall) -> usize {
    call.index()
}

/// Operation indices of the query step's three answers and of the simulator's steps.
pub(crate) mod op {
    use super::op_index;
    pub const IS_REGISTERED: usize = op_index("is_registered");
    pub const IS_ALL: usize = op_index("is_all");
    pub const LOOKUP: usize = op_index("lookup");
    pub const MAP: usize = op_index("map");
    pub const UNMAP: usize = op_index("unmap");
    pub const PROTECT: usize = op_index("protect");
    pub const SWITCH_CR3: usize = op_index("switch_cr3");
    pub const ACCESS_READ: usize = op_index("access.read");
    pub const HARVEST: usize = op_index("harvest");
}

/// Index of a status in [`RESULTS`].
pub fn status_result(s: Status) -> usize {
    match s {
        Status::Success => 0,
        Status::GcPhysAliased => 1,
        Status::SyncCr3 => 2,
        Status::AlreadyAliased => 3,
    }
}

/// Index of an error in [`RESULTS`] (the errors follow the statuses in declaration order).
pub fn error_result(e: Error) -> usize {
    4 + Error::ALL.iter().position(|x| *x == e).unwrap_or(Error::ALL.len() - 1)
}

/// Index of an operation result in [`RESULTS`].
pub fn op_result(r: Result<Status, Error>) -> usize {
    match r {
        Ok(s) => status_result(s),
        Err(e) => error_result(e),
    }
}

/// Index of a yes / no answer.
pub fn bool_result(b: bool) -> usize {
    if b {
        TRUE
    } else {
        TRUE + 1
    }
}

/// Index of a found / not found answer.
pub fn found_result(found: bool) -> usize {
    if found {
        FOUND
    } else {
        FOUND + 1
    }
}

/// Index of what an API call answered.
pub fn outcome_result(o: &Outcome) -> usize {
    match o {
        Outcome::Status(r) | Outcome::Bitmap(r, _) => op_result(*r),
        Outcome::Created(r) | Outcome::TypeRegistered(r) => op_result(r.map(|()| Status::Success)),
        Outcome::Registered(b) => bool_result(*b),
        Outcome::IsAll(r) => r.map_or_else(error_result, bool_result),
        Outcome::Lookup(h) => found_result(h.is_some()),
        Outcome::Page(p) => found_result(p.is_some()),
        Outcome::Info(r) => op_result(r.as_ref().map(|_| Status::Success).map_err(|e| *e)),
        Outcome::TypeConfig(r) => op_result(r.as_ref().map(|_| Status::Success).map_err(|e| *e)),
    }
}

/// Index of a guest-kernel result.
pub fn kernel_result(r: Result<(), KernelError>) -> usize {
    match r {
        Ok(()) => 0,
        Err(KernelError::PoolExhausted) => POOL_EXHAUSTED,
        Err(KernelError::NotMapped) => POOL_EXHAUSTED + 1,
    }
}

/// Operation index of an access of `kind`.
pub fn access_op(kind: AccessKind) -> usize {
    op::ACCESS_READ
        + match kind {
            AccessKind::Read => 0,
            AccessKind::Write => 1,
            AccessKind::Exec => 2,
        }
}

/// Index of an access outcome.
pub fn access_result(o: &AccessOutcome) -> usize {
    DIRECT
        + match o {
            AccessOutcome::Direct { .. } => 0,
            AccessOutcome::Trapped { .. } => 1,
            AccessOutcome::GuestFault { protection: false } => 2,
            AccessOutcome::GuestFault { protection: true } => 3,
            AccessOutcome::Unassigned { .. } => 4,
            AccessOutcome::BadAddress => 5,
        }
}

/// Index of a harvest without a tracker.
pub const fn no_tracker_result() -> usize {
    NO_TRACKER
}

/// Cells an operation can produce that the default sweep cannot reach, and why (the README
/// lists them). A cell here that a sweep does reach is reported as unexpected, so the list
/// cannot go stale silently.
pub const UNREACHABLE: [(&str, &str, &str); 6] = [
    (
        "page_temp_off_ex",
        "AccessDenied",
        "only a write-log callback calls it, for the handler it was dispatched for, whose type (a \
         Write type) a node keeps for life; AccessDenied needs an Mmio handler",
    ),
    (
        "reset_aliased_page",
        "NotFound",
        "with accounting, NotFound needs an aliased page outside every handler; aliases exist only \
         inside the Mmio handler that made them, and deregistering a handler undoes its aliases first \
         (semantics 3.4, 3.19)",
    ),
    (
        "reset_aliased_page",
        "Internal",
        "reported only for a broken internal invariant, in release builds (D7); the simulator builds \
         the manager with `paranoid`, where a broken invariant panics (and becomes a Panic failure)",
    ),
    (
        "vm_reset",
        "Internal",
        "reported only for a broken internal invariant, in release builds (D7); the simulator builds \
         the manager with `paranoid`, where a broken invariant panics (and becomes a Panic failure)",
    ),
    (
        "map",
        "PoolExhausted",
        "the drawn worlds' page-table pool (24 pages) holds every table of up to 3 address spaces of \
         up to 1024 pages; forced worlds reach it (--address-spaces 16 --va-pages 65536)",
    ),
    (
        "harvest",
        "NotFound",
        "the generator never names a tracked MMIO2 range's handler, so the dirty tracker's handler is \
         never deregistered",
    ),
];

/// The shapes of a register / register_ex call's range, classified against the handlers
/// registered just before the call and the layout's RAM ranges (not by how the generator drew
/// it): a call can have several (a range filling a hole is adjacent on both sides). Counted
/// per call as attempted, and as registered when the call succeeded.
pub const PLACEMENTS: [&str; 9] = [
    "adjacent_below",
    "adjacent_above",
    "shares_first_page",
    "shares_last_page",
    "ends_at_ram_end",
    "starts_at_ram_start",
    "ends_at_4gib",
    "crosses_4gib",
    "fills_hole",
];

/// The two counts of a placement.
pub const PLACEMENT_COUNTS: [&str; 2] = ["attempted", "registered"];

/// Placement cells the default sweep cannot reach, and why (like [`UNREACHABLE`]: reached
/// anyway, they are reported as unexpected). None since one drawn layout in eight has a RAM
/// range at 4 GiB.
pub const PLACEMENT_UNREACHABLE: [(&str, &str, &str); 0] = [];

/// The [`PLACEMENTS`] of a handler range `first..=last` (bit `i` set: `PLACEMENTS[i]`),
/// against the registered `handlers` (sorted by start, disjoint) and the RAM ranges
/// (`(first, last)` pairs). An inverted range has none.
///
/// * `adjacent_below`: it ends one byte below a handler; `adjacent_above`: it starts one
///   byte above one; `fills_hole`: both.
/// * `shares_first_page` / `shares_last_page`: it does not overlap a handler but covers part
///   of that handler's first / last page.
/// * `ends_at_ram_end` / `starts_at_ram_start`: it ends at a RAM range's last byte / starts
///   at its first.
/// * `ends_at_4gib`: it ends at 4 GiB - 1; `crosses_4gib`: it holds both 4 GiB - 1 and 4 GiB.
pub fn placement(first: u64, last: u64, handlers: &[pgmsim::HandlerSpan], ranges: &[(u64, u64)]) -> u16 {
    if first > last {
        return 0;
    }
    let page = |a: u64| a >> pgmsim::PAGE_SHIFT;
    // Only the nearest handler below and above the range can touch its pages or edges
    // without overlapping it: the handlers are disjoint and sorted.
    let below = handlers
        .partition_point(|h| h.key_last < first)
        .checked_sub(1)
        .map(|i| &handlers[i]);
    let above = handlers.get(handlers.partition_point(|h| h.key <= last));
    let adjacent_above = below.is_some_and(|h| h.key_last + 1 == first);
    let adjacent_below = above.is_some_and(|h| last.checked_add(1) == Some(h.key));
    let shares = |edge: fn(&pgmsim::HandlerSpan) -> u64| {
        below.is_some_and(|h| page(edge(h)) >= page(first)) || above.is_some_and(|h| page(edge(h)) <= page(last))
    };
    let bits = [
        adjacent_below,
        adjacent_above,
        shares(|h| h.key),
        shares(|h| h.key_last),
        ranges.iter().any(|r| r.1 == last),
        ranges.iter().any(|r| r.0 == first),
        last == FOUR_GIB - 1,
        first < FOUR_GIB && last >= FOUR_GIB,
        adjacent_below && adjacent_above,
    ];
    bits.iter().enumerate().fold(0, |m, (i, &b)| m | (b as u16) << i)
}

/// Page-state transitions, counted per page whenever an operation changes its handler state
/// or its page type: `(type before, state before, type after, state after)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Transition {
    /// Page type before the step.
    pub type_before: PageType,
    /// Handler state before the step.
    pub from: HandlerState,
    /// Page type after the step.
    pub type_after: PageType,
    /// Handler state after the step.
    pub to: HandlerState,
}

const fn tr(type_before: PageType, from: HandlerState, type_after: PageType, to: HandlerState) -> Transition {
    Transition {
        type_before,
        from,
        type_after,
        to,
    }
}

/// The transitions a page of each type the simulator's layouts have (RAM, MMIO2, MMIO) can
/// make in one step, by `docs/semantics.md` §3:
///
/// * raising (§3.2) takes `.` to the handler's state (`W`, or `A` for All and Mmio);
///   releasing (§3.4) takes any state back to `.`; temp-off (§3.16) takes `W` or `A` to `d`
///   and reset or a harvest (§3.14, §3.15) takes `d` back. `W -> A` and `A -> W` cannot
///   happen: All and Mmio handlers cover whole pages, and a page with a Write handler's
///   bytes on it conflicts with them; `. -> d` cannot happen: only a registered handler's
///   pages can be temp-off.
/// * aliasing (§3.17, §3.18) takes an MMIO page from `A` (its Mmio handler) to `d` with the
///   alias type; undoing it (§3.3) takes it back to MMIO `A`, or to `.` when the handler is
///   deregistered (§3.4). A re-alias keeps type and state (not a transition); one alias
///   kind never becomes the other (`NotMmio2`).
pub const POSSIBLE_TRANSITIONS: [Transition; 33] = {
    use HandlerState::{All as A, Disabled as D, None as N, Write as W};
    use PageType::{Mmio, Mmio2, Mmio2AliasMmio as Alias2, Ram, SpecialAliasMmio as AliasHc};
    const fn plain(t: PageType) -> [Transition; 9] {
        [
            tr(t, N, t, W),
            tr(t, N, t, A),
            tr(t, W, t, N),
            tr(t, A, t, N),
            tr(t, W, t, D),
            tr(t, A, t, D),
            tr(t, D, t, W),
            tr(t, D, t, A),
            tr(t, D, t, N),
        ]
    }
    let (r, m2, m) = (plain(Ram), plain(Mmio2), plain(Mmio));
    [
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
        m2[0],
        m2[1],
        m2[2],
        m2[3],
        m2[4],
        m2[5],
        m2[6],
        m2[7],
        m2[8],
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5],
        m[6],
        m[7],
        m[8],
        tr(Mmio, A, Alias2, D),
        tr(Mmio, A, AliasHc, D),
        tr(Alias2, D, Mmio, A),
        tr(AliasHc, D, Mmio, A),
        tr(Alias2, D, Mmio, N),
        tr(AliasHc, D, Mmio, N),
    ]
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_indices_follow_the_names() {
        for s in Status::ALL {
            assert_eq!(RESULTS[status_result(s)], s.name());
        }
        for e in Error::ALL {
            assert_eq!(RESULTS[error_result(e)], e.name());
        }
        assert_eq!(RESULTS[bool_result(true)], "true");
        assert_eq!(RESULTS[found_result(false)], "none");
        assert_eq!(RESULTS[kernel_result(Err(KernelError::NotMapped))], "NotMapped");
        assert_eq!(RESULTS[access_result(&AccessOutcome::BadAddress)], "bad_address");
        assert_eq!(RESULTS[no_tracker_result()], "no_tracker");
        assert_eq!(OPS[access_op(AccessKind::Exec)], "access.exec");
        assert_eq!(OPS[op::HARVEST], "harvest");
    }

    #[test]
    fn placements_classify_the_range_against_its_neighbours() {
        use pgmsim::{HandlerKind, HandlerSpan};
        let span = |key, key_last| HandlerSpan {
            key,
            key_last,
            kind: HandlerKind::Write,
            not_in_hm: false,
        };
        let hs = [span(0x1100, 0x11ff), span(0x1400, 0x2fff)];
        let ram = [(0, 0xf_ffff), (0xffff_0000, 0x1_0000_ffff)];
        let names = |m: u16| -> Vec<&str> { (0..9).filter(|i| m & 1 << i != 0).map(|i| PLACEMENTS[i]).collect() };
        assert_eq!(
            names(placement(0x1000, 0x10ff, &hs, &ram)),
            ["adjacent_below", "shares_first_page", "shares_last_page"]
        );
        assert_eq!(
            names(placement(0x1200, 0x13ff, &hs, &ram)),
            [
                "adjacent_below",
                "adjacent_above",
                "shares_first_page",
                "shares_last_page",
                "fills_hole"
            ]
        );
        assert_eq!(names(placement(0x3000, 0x3fff, &hs, &ram)), ["adjacent_above"]);
        assert_eq!(names(placement(0x3001, 0x3fff, &hs, &ram)), Vec::<&str>::new());
        // The first handler lies on one page: its first page is its last.
        assert_eq!(
            names(placement(0x1300, 0x130f, &hs, &ram)),
            ["shares_first_page", "shares_last_page"]
        );
        assert_eq!(
            names(placement(
                0x3000,
                0x3000,
                &[span(0x2000, 0x2fff), span(0x3400, 0x34ff)],
                &ram
            )),
            ["adjacent_above", "shares_first_page", "shares_last_page"]
        );
        assert_eq!(
            names(placement(0x1000, 0x1fff, &hs, &ram)),
            Vec::<&str>::new(),
            "overlaps"
        );
        assert_eq!(names(placement(0, 0xfff, &hs, &ram)), ["starts_at_ram_start"]);
        assert_eq!(names(placement(0xf_f000, 0xf_ffff, &hs, &ram)), ["ends_at_ram_end"]);
        assert_eq!(names(placement(0xffff_f000, 0xffff_ffff, &hs, &ram)), ["ends_at_4gib"]);
        assert_eq!(
            names(placement(0xffff_f000, 0x1_0000_0fff, &hs, &ram)),
            ["crosses_4gib"]
        );
        assert_eq!(placement(0x2000, 0x1000, &hs, &ram), 0, "inverted");
        assert_eq!(
            names(placement(u64::MAX, u64::MAX, &[span(0, 0xfff)], &ram)),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn the_universe_names_known_operations_and_results() {
        for (i, (op, results)) in CAN_PRODUCE.iter().enumerate() {
            assert_eq!(OPS[i], *op);
            for r in *results {
                assert!(RESULTS.contains(r), "{op}: {r}");
            }
        }
        for (op, r, _) in UNREACHABLE {
            let i = OPS.iter().position(|o| *o == op).expect("known operation");
            assert!(CAN_PRODUCE[i].1.contains(&r), "{op} x {r} is not producible");
        }
        for (p, c, _) in PLACEMENT_UNREACHABLE {
            assert!(PLACEMENTS.contains(&p) && PLACEMENT_COUNTS.contains(&c), "{p} x {c}");
        }
    }
}
