//! The operation generator: one generator, driven either by a `ChaCha8Rng` (seeded runs)
//! or by fuzzer bytes (through [`Entropy`]), biased toward the places bugs live: handler
//! edges, shared sub-page pages, neighbours of existing handlers, first and last pages of
//! RAM ranges, aliased and temp-off pages.
//!
//! A handler's range is drawn as one of the `Placement`s, each on purpose and with a fixed
//! weight: random in a RAM range; near a handler; exactly adjacent to one from above
//! (`first = key_last + 1`) or below (`last = key - 1`); on a handler's first or last page
//! beside it; exactly filling the hole between two handlers; starting at a RAM range's first
//! byte or ending at its last; ending at 4 GiB - 1 or crossing 4 GiB (one drawn layout in
//! eight has a RAM range there; the others refuse them). `pgmsim coverage` counts the register calls by these
//! shapes (`coverage::cells::placement`, from the calls themselves), so a sweep shows each is
//! reached.

use pgmsim::{HandlerKind, Hpa, PhysHandlerApi, RangeKind, PAGE_SHIFT, PAGE_SIZE};
use pgmsim_testkit::ApiCall;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use crate::config::{Behaviour, Weights, FOUR_GIB};
use crate::mmu::guest_pt::va_of;
use crate::op::{AccessKind, Op};
use crate::world::World;

/// Pages just past the virtual window an access may name (it then gets a bad address):
/// the generator draws them now and then, and a trace may contain them.
pub const BAD_ADDRESS_PAGES: u32 = 16;

/// A source of randomness: a seeded RNG or fuzzer bytes (which read as zeros when exhausted).
pub trait Entropy {
    /// The next random bits of one decision: 64 from an RNG, fewer from a source that spends
    /// few bytes per decision (fuzzer bytes: 16).
    fn next_u64(&mut self) -> u64;

    /// The next 64 random bits, all of them, for a value whose high bits matter (a user
    /// argument, a value written): a source that yields fewer bits per draw reads more.
    fn next_wide(&mut self) -> u64 {
        self.next_u64()
    }
}

impl Entropy for ChaCha8Rng {
    fn next_u64(&mut self) -> u64 {
        RngCore::next_u64(self)
    }
}

/// Helpers over an entropy source.
pub struct Draw<'a> {
    e: &'a mut dyn Entropy,
}

impl<'a> Draw<'a> {
    /// Wraps a source.
    pub fn new(e: &'a mut dyn Entropy) -> Self {
        Draw { e }
    }
    /// Uniform in `0..n` (0 when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.e.next_u64() % n
        }
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// A uniformly chosen element.
    pub fn pick<'b, T>(&mut self, items: &'b [T]) -> Option<&'b T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len() as u64) as usize)
        }
    }
    /// 64 raw bits (from fuzzer bytes too: a value that a 16-bit draw would leave with
    /// zero high bits could never show a truncation).
    pub fn bits(&mut self) -> u64 {
        self.e.next_wide()
    }
    /// A handler's user argument: usually a small number, one time in four a full 64-bit
    /// value (the pointer a real device passes), so a slip that truncates it shows.
    pub fn user_arg(&mut self) -> u64 {
        if self.chance(25) {
            self.bits()
        } else {
            self.below(1 << 16)
        }
    }
}

type Span = pgmsim::HandlerSpan;

/// Everything the generator looks at, gathered once per step.
struct View<'w> {
    handlers: Vec<Span>,
    ranges: Vec<(u64, u64, RangeKind)>,
    pool: (u64, u64),
    /// The dirty trackers: only their harvests reset their ranges.
    tracked: &'w [crate::devices::DirtyTracker],
}

impl<'w> View<'w> {
    fn of(world: &'w World) -> View<'w> {
        View {
            // The model's list: the step loop proves it equals the production one after every
            // step, and reading it walks no tree.
            handlers: world
                .model()
                .handler_spans()
                .into_iter()
                .filter(|h| !world.devices().is_tracked(h.key))
                .collect(),
            ranges: world
                .config()
                .layout
                .ram_ranges
                .iter()
                .map(|r| (r.first, r.last(), r.kind))
                .collect(),
            pool: (world.guest().pool().range().0 .0, world.guest().pool().range().1 .0),
            tracked: &world.devices().trackers,
        }
    }

    /// `addr`, unless it lies in a dirty-tracked range: then `fallback` (an address derived
    /// from a handler must not name a tracker's handler, which the generator leaves alone).
    fn untracked(&self, addr: u64, fallback: u64) -> u64 {
        if self.tracked.iter().any(|t| (t.first..=t.last).contains(&addr)) {
            fallback
        } else {
            addr
        }
    }
}

const FAMILIES: usize = 13;

/// Which thread an operation is drawn for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A sequential world: any operation.
    Any,
    /// A vCPU thread of a concurrent world: guest-kernel edits and accesses of this vCPU.
    Vcpu(u8),
    /// A device thread of a concurrent world: manager operations, queries, harvests.
    Device,
}

/// The families a vCPU thread runs (guest kernel, accesses); device threads run the rest.
const VCPU_FAMILIES: [usize; 2] = [9, 10];

/// The total weight of the families a thread of `role` draws from (0: it has nothing to do).
pub fn role_weight(world: &World, role: Role) -> u64 {
    let w = world.config().weights;
    let vcpu = w.kernel as u64 + w.access as u64;
    let all: u64 = (0..Weights::NAMES.len())
        .filter_map(|i| w.get(i))
        .map(|x| x as u64)
        .sum();
    match role {
        Role::Any => all,
        Role::Vcpu(_) => vcpu,
        Role::Device => all - vcpu,
    }
}

/// Draws the next operation for `world`.
pub fn next_op(world: &World, e: &mut dyn Entropy) -> Op {
    next_op_for(world, e, Role::Any)
}

/// Draws the next operation for a thread of `role`.
pub fn next_op_for(world: &World, e: &mut dyn Entropy, role: Role) -> Op {
    let mut d = Draw::new(e);
    let view = View::of(world);
    let w = world.config().weights;
    let mapped: usize = world.guest().mapped_pages();
    if role != Role::Device && mapped < 4 && d.chance(70) {
        return map_op(world, &view, &mut d);
    }
    if !matches!(role, Role::Vcpu(_)) {
        if let Some(call) = race_callback(world, &view, &mut d) {
            return call.into();
        }
    }
    let mut weights: [u32; FAMILIES] = [
        w.register,
        w.deregister,
        w.ex_api,
        w.reset,
        w.temp_off,
        w.alias,
        w.reset_alias,
        w.query,
        w.invalid,
        w.kernel,
        w.access,
        w.harvest,
        w.vm_reset,
    ];
    for (i, wt) in weights.iter_mut().enumerate() {
        let vcpu_family = VCPU_FAMILIES.contains(&i);
        match role {
            Role::Vcpu(_) if !vcpu_family => *wt = 0,
            Role::Device if vcpu_family => *wt = 0,
            _ => {}
        }
    }
    let forced = match role {
        Role::Vcpu(v) => Some(v),
        _ => None,
    };
    let total: u64 = weights.iter().map(|&x| x as u64).sum();
    let mut roll = d.below(total.max(1));
    let mut family = FAMILIES - 1;
    for (i, &wt) in weights.iter().enumerate() {
        if roll < wt as u64 {
            family = i;
            break;
        }
        roll -= wt as u64;
    }
    match family {
        0 => register_op(world, &view, &mut d).into(),
        1 => deregister_op(&view, &mut d).into(),
        2 => ex_op(world, &view, &mut d).into(),
        3 => reset_op(&view, &mut d).into(),
        4 => temp_off_op(&view, &mut d).into(),
        5 => alias_op(world, &view, &mut d).into(),
        6 => reset_alias_op(world, &view, &mut d).into(),
        7 => query_op(world, &view, &mut d),
        8 => invalid_op(world, &view, &mut d).into(),
        9 => kernel_op(world, &view, &mut d, forced),
        10 => access_op(world, &view, &mut d, forced),
        11 => Op::Harvest {
            tracker: d.below(world.devices().trackers.len().max(1) as u64 + 1) as u8,
        },
        _ => Op::Call(ApiCall::VmReset),
    }
}

/// A page-aligned address inside a RAM range, away from the page-table pool and the tracked
/// ranges, biased to range edges.
fn some_page(world: &World, view: &View, d: &mut Draw, want: Option<RangeFilter>) -> Option<u64> {
    let candidates: Vec<&(u64, u64, RangeKind)> = view
        .ranges
        .iter()
        .filter(|r| !world.devices().is_tracked(r.0))
        .filter(|r| match want {
            Some(RangeFilter::Mmio) => matches!(r.2, RangeKind::Mmio),
            Some(RangeFilter::NotMmio) => !matches!(r.2, RangeKind::Mmio),
            None => true,
        })
        .collect();
    let &&(first, last, _) = d.pick(&candidates)?;
    let lo = if first == view.pool.0 { view.pool.1 + 1 } else { first };
    if lo > last {
        return None;
    }
    let pages = ((last - lo) >> PAGE_SHIFT) + 1;
    let idx = match d.below(8) {
        0 => 0,
        1 => pages - 1,
        _ => d.below(pages),
    };
    Some(lo + (idx << PAGE_SHIFT))
}

#[derive(Clone, Copy)]
enum RangeFilter {
    Mmio,
    NotMmio,
}

fn types_of(world: &World, pred: impl Fn(HandlerKind, Behaviour) -> bool) -> Vec<u8> {
    world
        .config()
        .types
        .iter()
        .enumerate()
        .filter(|(_, t)| pred(t.kind, t.behaviour))
        .map(|(i, _)| i as u8)
        .collect()
}

/// Where [`range_for`] puts a handler's range. Every shape but `Random` is drawn on purpose,
/// because a boundary bug of the manager's interval tree, page-state bookkeeping or range
/// lookup shows only at that exact shape (`coverage::cells::placement` classifies the calls the
/// simulator applies by the same shapes, so a sweep shows each is reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Anywhere in a RAM range of the right kind, biased to its first and last pages.
    Random,
    /// Near an existing handler: the pages right after or before it (whole-page types), or
    /// a gap of 0, 8 or 16 bytes after or before it (sub-page types).
    Near,
    /// Starting one byte above a handler (`first = key_last + 1`).
    AdjacentAbove,
    /// Ending one byte below a handler (`last = key - 1`).
    AdjacentBelow,
    /// On a handler's first page, below it.
    SharesFirstPage,
    /// On a handler's last page, above it.
    SharesLastPage,
    /// Exactly the gap between two handlers (`key_last + 1 ..= next key - 1`).
    Hole,
    /// Starting at a RAM range's first byte.
    RamStart,
    /// Ending at a RAM range's last byte.
    RamEnd,
    /// Ending at 4 GiB - 1.
    EndsAt4Gib,
    /// Crossing 4 GiB.
    Crosses4Gib,
}

impl Placement {
    /// The placements with their weights (out of 100): the neighbour shapes together about
    /// half, the RAM-range and 4 GiB edges a few percent, the rest random.
    const WEIGHTS: [(Placement, u64); 11] = [
        (Placement::Random, 46),
        (Placement::Near, 18),
        (Placement::AdjacentAbove, 7),
        (Placement::AdjacentBelow, 7),
        (Placement::SharesFirstPage, 4),
        (Placement::SharesLastPage, 4),
        (Placement::Hole, 6),
        (Placement::RamStart, 3),
        (Placement::RamEnd, 3),
        (Placement::EndsAt4Gib, 1),
        (Placement::Crosses4Gib, 1),
    ];

    fn draw(d: &mut Draw) -> Placement {
        let total: u64 = Self::WEIGHTS.iter().map(|w| w.1).sum();
        let mut roll = d.below(total);
        for (p, w) in Self::WEIGHTS {
            if roll < w {
                return p;
            }
            roll -= w;
        }
        Placement::Random
    }
}

/// What [`range_for`] knows about the handler type it places.
struct Shape {
    /// The type needs whole pages (All, Mmio, not-in-HM Write, write-log Write).
    whole: bool,
    /// The RAM ranges a handler of the type may go in.
    filter: Option<RangeFilter>,
}

impl Shape {
    /// A length for a handler of this shape: 1 to 3 pages, or up to 0x300 bytes (one byte a
    /// quarter of the time: one-byte handlers are accepted, D3).
    fn len(&self, d: &mut Draw) -> u64 {
        if self.whole {
            (d.below(3) + 1) << PAGE_SHIFT
        } else if d.chance(25) {
            1
        } else {
            d.below(0x300) + 1
        }
    }
    /// A range of this shape's length starting at `first`.
    fn from(&self, d: &mut Draw, first: u64) -> (u64, u64) {
        (first, first.wrapping_add(self.len(d) - 1))
    }
    /// A range of this shape's length ending at `last`.
    fn to(&self, d: &mut Draw, last: u64) -> (u64, u64) {
        (last.wrapping_sub(self.len(d) - 1), last)
    }
}

const PAGE_MASK: u64 = PAGE_SIZE - 1;

/// A range for a handler of type `ty`: one of the [`Placement`]s.
fn range_for(world: &World, view: &View, d: &mut Draw, ty: u8) -> (u64, u64) {
    let spec = &world.config().types[ty as usize % world.config().types.len()];
    // A write log turns written pages off (`page_temp_off_ex`), which needs whole pages.
    let whole = spec.kind != HandlerKind::Write || spec.not_in_hm || spec.behaviour == Behaviour::WriteLog;
    let filter = match spec.kind {
        HandlerKind::Mmio => Some(RangeFilter::Mmio),
        _ => Some(RangeFilter::NotMmio),
    };
    let shape = Shape { whole, filter };
    let placed = match Placement::draw(d) {
        Placement::Random => None,
        Placement::Near => near(view, d, &shape),
        Placement::AdjacentAbove => adjacent_above(view, d, &shape),
        Placement::AdjacentBelow => adjacent_below(view, d, &shape),
        Placement::SharesFirstPage => shares_first_page(view, d, &shape),
        Placement::SharesLastPage => shares_last_page(view, d, &shape),
        Placement::Hole => hole(view, d, &shape).or_else(|| adjacent_above(view, d, &shape)),
        Placement::RamStart => ram_start(world, view, d, &shape),
        Placement::RamEnd => ram_end(world, view, d, &shape),
        Placement::EndsAt4Gib => ends_at_4gib(view, d, &shape),
        Placement::Crosses4Gib => Some(crosses_4gib(view, d, &shape)),
    };
    placed.unwrap_or_else(|| random_range(world, view, d, &shape))
}

/// Anywhere in a RAM range of the right kind ([`some_page`]: biased to range edges).
fn random_range(world: &World, view: &View, d: &mut Draw, shape: &Shape) -> (u64, u64) {
    let page = some_page(world, view, d, shape.filter).unwrap_or(0x1000);
    if shape.whole {
        let pages = match d.below(10) {
            0 => d.below(32) + 1,
            _ => d.below(3) + 1,
        };
        (page, page + (pages << PAGE_SHIFT) - 1)
    } else if d.chance(60) {
        // Sub-page: part of one page, often a quarter so several can share it.
        let quarter = d.below(4) * 0x400;
        let len = [0x400, 0x200, 0x100, 1][d.below(4) as usize];
        (page + quarter, page + quarter + len - 1)
    } else {
        let start = page + d.below(PAGE_SIZE);
        let len = d.below(3 * PAGE_SIZE) + 1;
        (start, start + len - 1)
    }
}

/// The pages right after or before a handler (whole-page), or a gap of 0, 8 or 16 bytes
/// after or before it (sub-page).
fn near(view: &View, d: &mut Draw, shape: &Shape) -> Option<(u64, u64)> {
    let h = *d.pick(&view.handlers)?;
    if shape.whole {
        return Some(if d.chance(50) {
            shape.from(d, ((h.key_last >> PAGE_SHIFT) + 1) << PAGE_SHIFT)
        } else {
            shape.to(d, (h.key & !PAGE_MASK).wrapping_sub(1))
        });
    }
    let gap = d.below(3) * 8;
    Some(if d.chance(50) {
        shape.from(d, h.key_last.wrapping_add(1 + gap))
    } else {
        shape.to(d, h.key.wrapping_sub(1 + gap))
    })
}

/// Starting one byte above a handler; for a whole-page type whose neighbour ends inside a
/// page, at the next page (the nearest whole-page range).
fn adjacent_above(view: &View, d: &mut Draw, shape: &Shape) -> Option<(u64, u64)> {
    let h = *d.pick(&view.handlers)?;
    let first = h.key_last.wrapping_add(1);
    let first = if shape.whole {
        first.wrapping_add(PAGE_MASK) & !PAGE_MASK
    } else {
        first
    };
    Some(shape.from(d, first))
}

/// Ending one byte below a handler; for a whole-page type whose neighbour starts inside a
/// page, at the end of the page before (the nearest whole-page range).
fn adjacent_below(view: &View, d: &mut Draw, shape: &Shape) -> Option<(u64, u64)> {
    let h = *d.pick(&view.handlers)?;
    let last = if shape.whole { h.key & !PAGE_MASK } else { h.key }.wrapping_sub(1);
    Some(shape.to(d, last))
}

/// Inside a handler's first page, below it, not overlapping it. When the handler starts at
/// its page's first byte (always, for a whole-page neighbour), or the type needs whole pages,
/// that whole page: an overlap, refused with `Conflict`.
fn shares_first_page(view: &View, d: &mut Draw, shape: &Shape) -> Option<(u64, u64)> {
    let h = *d.pick(&view.handlers)?;
    let page = h.key & !PAGE_MASK;
    if shape.whole || h.key == page {
        return Some((page, page + PAGE_MASK));
    }
    let first = page + d.below(h.key - page);
    Some((first, first + d.below(h.key - first)))
}

/// Inside a handler's last page, above it, not overlapping it; like [`shares_first_page`],
/// the whole page (a `Conflict`) when there is no room or the type needs whole pages.
fn shares_last_page(view: &View, d: &mut Draw, shape: &Shape) -> Option<(u64, u64)> {
    let h = *d.pick(&view.handlers)?;
    let page = h.key_last & !PAGE_MASK;
    let end = page + PAGE_MASK;
    if shape.whole || h.key_last == end {
        return Some((page, end));
    }
    let last = end - d.below(end - h.key_last);
    Some((last - d.below(last - h.key_last), last))
}

/// The largest hole [`hole`] fills: 32 pages, the largest handler the random placement draws.
const MAX_HOLE: u64 = 32 << PAGE_SHIFT;

/// Exactly the gap between two neighbouring handlers, preferring gaps that could hold a
/// handler of this shape (inside one RAM range; whole pages for a whole-page type).
fn hole(view: &View, d: &mut Draw, shape: &Shape) -> Option<(u64, u64)> {
    // Handler-sized holes only: filling a gigabyte between two far-apart handlers would make
    // every later operation on that handler walk all its pages (a 4 GiB guest ran 140x slower).
    let holes: Vec<(u64, u64)> = view
        .handlers
        .windows(2)
        .filter(|w| w[1].key > w[0].key_last + 1 && w[1].key - w[0].key_last - 1 <= MAX_HOLE)
        .map(|w| (w[0].key_last + 1, w[1].key - 1))
        .collect();
    let fits = |&(first, last): &(u64, u64)| {
        let aligned = first & PAGE_MASK == 0 && last & PAGE_MASK == PAGE_MASK;
        let in_ram = view.ranges.iter().any(|r| r.0 <= first && last <= r.1);
        in_ram && (aligned || !shape.whole)
    };
    let fitting: Vec<(u64, u64)> = holes.iter().copied().filter(fits).collect();
    d.pick(if fitting.is_empty() { &holes } else { &fitting }).copied()
}

/// The RAM ranges (first, last) a handler of this shape may go in, the tracked ones left out.
fn ranges_for(world: &World, view: &View, shape: &Shape) -> Vec<(u64, u64)> {
    view.ranges
        .iter()
        .filter(|r| !world.devices().is_tracked(r.0))
        .filter(|r| match shape.filter {
            Some(RangeFilter::Mmio) => matches!(r.2, RangeKind::Mmio),
            Some(RangeFilter::NotMmio) => !matches!(r.2, RangeKind::Mmio),
            None => true,
        })
        .map(|r| (r.0, r.1))
        .collect()
}

/// Starting at a RAM range's first byte (the first range's is address 0).
fn ram_start(world: &World, view: &View, d: &mut Draw, shape: &Shape) -> Option<(u64, u64)> {
    let &(first, _) = d.pick(&ranges_for(world, view, shape))?;
    Some(shape.from(d, first))
}

/// Ending at a RAM range's last byte.
fn ram_end(world: &World, view: &View, d: &mut Draw, shape: &Shape) -> Option<(u64, u64)> {
    let &(_, last) = d.pick(&ranges_for(world, view, shape))?;
    Some(shape.to(d, last))
}

/// Ending at 4 GiB - 1. In a layout with RAM at 4 GiB - 1 (one drawn layout in eight),
/// always there. The others have no RAM there (their high MMIO2 range starts at or above
/// 4 GiB, everything else ends far below), so half the time the range ends at 4 GiB - 1
/// anyway (refused: `NoRamRange`) and half the time at the last byte of the highest RAM
/// range below 4 GiB.
fn ends_at_4gib(view: &View, d: &mut Draw, shape: &Shape) -> Option<(u64, u64)> {
    let has_ram = view.ranges.iter().any(|r| r.0 < FOUR_GIB && FOUR_GIB - 1 <= r.1);
    if has_ram || d.chance(50) {
        return Some(shape.to(d, FOUR_GIB - 1));
    }
    let below = view.ranges.iter().filter(|r| r.1 < FOUR_GIB).map(|r| r.1).max()?;
    Some(shape.to(d, below))
}

/// Crossing 4 GiB: a page or a few bytes on each side (a layout whose RAM range spans 4 GiB,
/// one drawn layout in sixteen, can register it; the others refuse it: `NoRamRange`).
fn crosses_4gib(view: &View, d: &mut Draw, shape: &Shape) -> (u64, u64) {
    if shape.whole {
        // Within the range that spans 4 GiB, if there is one (pages on each side, at most 2).
        let span = view.ranges.iter().find(|r| r.0 < FOUR_GIB && FOUR_GIB <= r.1);
        let room = |bytes: u64| d_pages(bytes).min(2);
        let (below_max, above_max) = span.map_or((2, 2), |r| (room(FOUR_GIB - r.0), room(r.1 + 1 - FOUR_GIB)));
        let (below, above) = (d.below(below_max) + 1, d.below(above_max) + 1);
        (FOUR_GIB - (below << PAGE_SHIFT), FOUR_GIB + (above << PAGE_SHIFT) - 1)
    } else {
        (FOUR_GIB - d.below(0x100) - 1, FOUR_GIB + d.below(0x100))
    }
}

/// Whole pages in `bytes` (at least one).
fn d_pages(bytes: u64) -> u64 {
    (bytes >> PAGE_SHIFT).max(1)
}

fn register_op(world: &World, view: &View, d: &mut Draw) -> ApiCall {
    let tys = types_of(world, |_, b| {
        b != Behaviour::DirtyTrack || world.devices().trackers.is_empty()
    });
    let ty = *d.pick(&tys).unwrap_or(&0);
    let (first, last) = range_for(world, view, d, ty);
    ApiCall::register(first, last, ty, d.user_arg())
}

/// A handler's start, now and then one byte in or its last byte (`NotFound`: the exact
/// start is needed). Never an address of a dirty-tracked range: one byte past a one-byte
/// handler can be the start of the tracker right above it (a handler ending at 4 GiB - 1
/// under an MMIO2 region mapped at 4 GiB), and a reset there would re-arm the tracked pages
/// and drop their dirty bits behind the harvester's back — a broken device contract, not a
/// manager bug (the original's dirty bitmap is its pages' temporarily-off states too).
fn handler_start(view: &View, d: &mut Draw) -> u64 {
    match d.pick(&view.handlers) {
        Some(h) => {
            let addr = match d.below(10) {
                0 => h.key + 1,
                1 => h.key_last,
                _ => h.key,
            };
            view.untracked(addr, h.key)
        }
        // Anywhere below 4 GiB, which holds the low MMIO2 region's tracker; address 0 (main
        // RAM, never tracked) instead of it.
        None => view.untracked(d.below(1 << 20) << PAGE_SHIFT, 0),
    }
}

fn deregister_op(view: &View, d: &mut Draw) -> ApiCall {
    ApiCall::Deregister {
        addr: handler_start(view, d),
    }
}

fn ex_op(world: &World, view: &View, d: &mut Draw) -> ApiCall {
    let nodes = world.nodes() as u64;
    let node = |d: &mut Draw| {
        if nodes == 0 || d.chance(5) {
            d.below(nodes + 3) as u32
        } else {
            d.below(nodes) as u32
        }
    };
    // Type-table pressure grows once a run starts adding types, so many runs fill the table
    // and meet `OutOfResources`; once it is full, a type registration is rare again.
    let registered = world.sides().model_names().types.len() as u64;
    let extra = registered.saturating_sub(world.config().types.len() as u64);
    let register_type = if registered >= pgmsim::handler::MAX_HANDLER_TYPES as u64 {
        d.below(16) == 0
    } else {
        d.below(7 + extra) < 1 + extra
    };
    if register_type {
        return ApiCall::RegisterType {
            kind: [HandlerKind::Write, HandlerKind::All, HandlerKind::Mmio][d.below(3) as usize],
            not_in_hm: d.chance(30),
            keep_lock: d.chance(50),
        };
    }
    match d.below(6) {
        0 | 1 => {
            let tys = types_of(world, |_, b| b != Behaviour::DirtyTrack);
            // Now and then a type added during the run, or one past the last (`InvalidHandle`).
            let ty = if d.chance(5) {
                (registered + d.below(2)).saturating_sub(1) as u8
            } else {
                *d.pick(&tys).unwrap_or(&0)
            };
            ApiCall::Create {
                ty,
                user: d.user_arg(),
                described: false,
            }
        }
        2 => ApiCall::Dup { h: node(d) },
        3 => {
            let h = node(d);
            let ty = world.node_type(h).unwrap_or(0);
            let (first, last) = range_for(world, view, d, ty);
            // Now and then reversed (`InvalidParameter` for a node that could register).
            let (first, last) = if d.chance(4) { (last, first) } else { (first, last) };
            ApiCall::RegisterEx { h, first, last }
        }
        4 => ApiCall::DeregisterEx { h: node(d) },
        _ => ApiCall::Destroy { h: node(d) },
    }
}

fn reset_op(view: &View, d: &mut Draw) -> ApiCall {
    let addr = handler_start(view, d);
    if d.chance(25) {
        let words = d.below(4) as u32;
        ApiCall::ResetMmio2WithBitmap {
            addr,
            words,
            offset: d.below(100) as u32,
            fill: 0,
        }
    } else {
        ApiCall::Reset { addr }
    }
}

fn whole_page_handlers(view: &View, kinds: &[HandlerKind]) -> Vec<Span> {
    view.handlers
        .iter()
        .filter(|h| kinds.contains(&h.kind) && h.key & 0xfff == 0 && h.key_last & 0xfff == 0xfff)
        .cloned()
        .collect()
}

fn page_in(h: &Span, d: &mut Draw) -> u64 {
    let pages = ((h.key_last - h.key) >> PAGE_SHIFT) + 1;
    match d.below(20) {
        0 => h.key_last + 1,
        1 => h.key.wrapping_sub(PAGE_SIZE),
        _ => h.key + (d.below(pages) << PAGE_SHIFT) + d.below(PAGE_SIZE),
    }
}

/// A write-log callback runs without the PGM lock, its handler pinned by id (concurrent
/// worlds only): now and then a device thread races it. It deregisters that handler, keeping
/// its node or unplugging it (deregistered and destroyed, as `deregister` does); registers a
/// kept node elsewhere; or plugs an unplugged device back in where it was, with a new node
/// that a nearly full handler table may put in the very slot the callback's stale id names
/// (ABA). The callback's call back must be refused cleanly (`NotFound`, `InvalidParameter`,
/// `InvalidHandle`; the `Callback` invariant checks it changes nothing).
fn race_callback(world: &World, view: &View, d: &mut Draw) -> Option<ApiCall> {
    let names = world.sides().model_names();
    let k = names.pinned.iter().position(Option::is_some)?;
    if !d.chance(50) {
        return None;
    }
    let h = pgmsim_testkit::call::PINNED | k as u32;
    let Ok(info) = world.model().handler_info(names.node(h)) else {
        // Unplugged: plug it back in, unless something else took its place meanwhile.
        let span = world.sides().pinned_span(h)?;
        let taken = view
            .handlers
            .iter()
            .any(|o| o.key <= span.key_last && span.key <= o.key_last);
        return (!taken).then(|| ApiCall::register(span.key, span.key_last, span.ty, span.user));
    };
    if let Some(reg) = info.registered {
        return Some(if d.chance(50) {
            ApiCall::Deregister { addr: reg.key }
        } else {
            ApiCall::DeregisterEx { h }
        });
    }
    let (first, last) = range_for(world, view, d, names.type_index(info.ty).unwrap_or(0));
    Some(ApiCall::RegisterEx { h, first, last })
}

fn temp_off_op(view: &View, d: &mut Draw) -> ApiCall {
    let hs = whole_page_handlers(view, &[HandlerKind::Write, HandlerKind::All]);
    match d.pick(&hs) {
        Some(h) => ApiCall::PageTempOff {
            addr: h.key,
            page: page_in(h, d),
        },
        None => {
            let addr = handler_start(view, d);
            ApiCall::PageTempOff {
                addr,
                page: handler_start(view, d),
            }
        }
    }
}

fn alias_op(world: &World, view: &View, d: &mut Draw) -> ApiCall {
    if d.chance(6) {
        if let Some(call) = misdirected_alias(world, view, d) {
            return call;
        }
    }
    let hs = whole_page_handlers(view, &[HandlerKind::Mmio]);
    let regions = world.config().layout.mmio2_regions.len() as u64;
    let Some(h) = d.pick(&hs).cloned() else {
        let addr = handler_start(view, d);
        return ApiCall::PageAliasHc {
            addr,
            page: handler_start(view, d),
            host: Hpa(0x7000_0000),
        };
    };
    let page = page_in(&h, d);
    if d.chance(25) {
        let host = (0x4000_0000 + (d.below(16) << PAGE_SHIFT)) | if d.chance(5) { 1 << 60 } else { 0 };
        return ApiCall::PageAliasHc {
            addr: h.key,
            page,
            host: Hpa(host),
        };
    }
    let region = if d.chance(5) {
        d.below(regions + 2) as u32
    } else {
        d.below(regions) as u32 + 1
    };
    // Region 0 (and one past the end) is a deliberately invalid handle: no region, no size.
    let spec = (region as usize)
        .checked_sub(1)
        .and_then(|i| world.config().layout.mmio2_regions.get(i));
    let pages = spec.map_or(4, |r| r.pages as u64);
    let offset = if d.chance(5) {
        (pages + d.below(4)) << PAGE_SHIFT
    } else {
        d.below(pages) << PAGE_SHIFT
    };
    ApiCall::PageAliasMmio2 {
        addr: h.key,
        page,
        region,
        offset,
    }
}

/// A valid MMIO2 target named at the wrong handler: a Write or All handler (`AccessDenied`),
/// or one byte past a handler's start (`NotFound`).
fn misdirected_alias(world: &World, view: &View, d: &mut Draw) -> Option<ApiCall> {
    let regions = world.config().layout.mmio2_regions.len() as u64;
    let hs = whole_page_handlers(view, &[HandlerKind::Write, HandlerKind::All]);
    let h = d.pick(&hs)?;
    (regions > 0).then(|| ApiCall::PageAliasMmio2 {
        addr: if d.chance(50) { h.key } else { h.key + 1 },
        page: h.key,
        region: d.below(regions) as u32 + 1,
        offset: 0,
    })
}

fn reset_alias_op(world: &World, view: &View, d: &mut Draw) -> ApiCall {
    let mut aliased = Vec::new();
    for h in whole_page_handlers(view, &[HandlerKind::Mmio]) {
        for p in (h.key >> PAGE_SHIFT)..=(h.key_last >> PAGE_SHIFT) {
            if world
                .model()
                .page(p << PAGE_SHIFT)
                .is_some_and(|pd| pd.page_type().is_alias())
            {
                aliased.push(p << PAGE_SHIFT);
            }
        }
    }
    let page = d.pick(&aliased).copied().unwrap_or_else(|| handler_start(view, d));
    ApiCall::ResetAliasedPage {
        page,
        accounting: !d.chance(3),
    }
}

fn query_op(world: &World, view: &View, d: &mut Draw) -> Op {
    if d.chance(30) {
        if let Some(h) = d.pick(&view.handlers) {
            // Now and then one byte in: `NotFound` (the exact start is needed, D1).
            let addr = if d.chance(10) {
                view.untracked(h.key + 1, h.key)
            } else {
                h.key
            };
            return Op::Call(ApiCall::ChangeUserArg {
                addr,
                user: d.user_arg(),
            });
        }
    }
    if d.chance(15) {
        return Op::Call(info_call(world, view, d));
    }
    Op::Query {
        addr: handler_start(view, d).wrapping_add(d.below(0x2000)),
    }
}

/// The API's other queries: a node's fields (stale and unknown nodes included), a type's
/// configuration (one past the last included), a page's descriptor (outside RAM included).
fn info_call(world: &World, view: &View, d: &mut Draw) -> ApiCall {
    match d.below(3) {
        0 => ApiCall::HandlerInfo {
            h: d.below(world.nodes() as u64 + 2) as u32,
        },
        1 => ApiCall::TypeConfig {
            ty: d.below(world.sides().model_names().types.len() as u64 + 2) as u8,
        },
        _ => ApiCall::Page {
            addr: if d.chance(10) {
                0x7_0000_0000 + d.below(1 << 20)
            } else {
                handler_start(view, d).wrapping_add(d.below(0x2000))
            },
        },
    }
}

fn invalid_op(world: &World, view: &View, d: &mut Draw) -> ApiCall {
    let h = handler_start(view, d);
    match d.below(10) {
        0 => ApiCall::register(h + 0x100, h, 0, 0),
        1 => ApiCall::register(h, h + 0x2000, 200, 0),
        2 => ApiCall::register(u64::MAX - 0xfff, u64::MAX, 2, 0),
        3 => ApiCall::register(0, 0x1_0000_0000, 0, 0),
        4 => {
            let (first, last) = view.ranges.first().map_or((0, 0xfff), |r| (r.1 - 0xfff, r.1 + 0x1000));
            ApiCall::register(first, last, 2, 0)
        }
        5 => ApiCall::Destroy {
            h: d.below(world.nodes() as u64 + 2) as u32,
        },
        6 => ApiCall::PageTempOff {
            addr: h,
            page: u64::MAX,
        },
        7 => ApiCall::PageAliasMmio2 {
            addr: h,
            page: h,
            region: 0,
            offset: u64::MAX,
        },
        8 => ApiCall::ResetMmio2WithBitmap {
            addr: h,
            words: 0,
            offset: u32::MAX,
            fill: 0,
        },
        _ => ApiCall::Deregister {
            addr: view.untracked(h.wrapping_add(1), h),
        },
    }
}

fn map_target(world: &World, view: &View, d: &mut Draw) -> u64 {
    // Bias toward pages that handlers cover, and toward MMIO / MMIO2 / aliasable pages.
    // Never a page of the page-table pool (handlers may cover it): the guest edits its page
    // tables only through kernel steps, and replay refuses traces that map the pool.
    if !view.handlers.is_empty() && d.chance(50) {
        let h = d.pick(&view.handlers).expect("non-empty");
        let pages = ((h.key_last >> PAGE_SHIFT) - (h.key >> PAGE_SHIFT)) + 1;
        let gp = ((h.key >> PAGE_SHIFT) + d.below(pages)) << PAGE_SHIFT;
        if !(view.pool.0..=view.pool.1).contains(&gp) {
            return gp;
        }
    }
    if !world.devices().trackers.is_empty() && d.chance(25) {
        let t = d.pick(&world.devices().trackers).expect("non-empty");
        return t.first + (d.below(t.pages() as u64) << PAGE_SHIFT);
    }
    if d.chance(3) {
        return 0x7_0000_0000 + (d.below(16) << PAGE_SHIFT); // in no RAM range
    }
    some_page(world, view, d, None).unwrap_or(0x10_0000)
}

fn map_op(world: &World, view: &View, d: &mut Draw) -> Op {
    let space = d.below(world.guest().spaces() as u64) as u8;
    Op::Map {
        space,
        vpi: d.below(world.config().va_pages as u64) as u32,
        gp: map_target(world, view, d),
        write: d.chance(80),
        exec: d.chance(30),
    }
}

fn mapped_vpi(world: &World, space: usize, d: &mut Draw) -> Option<u32> {
    let m = world.guest().mappings(space);
    if m.is_empty() {
        return None;
    }
    let i = d.below(m.len() as u64) as usize;
    m.keys().nth(i).copied()
}

/// The virtual page a protect or unmap edits: a mapped one, now and then any (`NotMapped`).
fn edit_target(world: &World, space: usize, d: &mut Draw) -> Option<u32> {
    if d.chance(3) {
        return Some(d.below(world.config().va_pages as u64) as u32);
    }
    mapped_vpi(world, space, d)
}

fn kernel_op(world: &World, view: &View, d: &mut Draw, forced: Option<u8>) -> Op {
    let space = d.below(world.guest().spaces() as u64) as usize;
    match d.below(10) {
        0..=3 => map_op(world, view, d),
        4 | 5 => match edit_target(world, space, d) {
            Some(vpi) => Op::Protect {
                space: space as u8,
                vpi,
                write: d.chance(50),
                exec: d.chance(30),
            },
            None => map_op(world, view, d),
        },
        6 | 7 => match edit_target(world, space, d) {
            Some(vpi) => Op::Unmap {
                space: space as u8,
                vpi,
            },
            None => map_op(world, view, d),
        },
        _ => Op::SwitchCr3 {
            vcpu: forced.unwrap_or_else(|| d.below(world.vcpus() as u64) as u8),
            space: space as u8,
        },
    }
}

fn access_op(world: &World, view: &View, d: &mut Draw, forced: Option<u8>) -> Op {
    let vcpu = forced.unwrap_or_else(|| d.below(world.vcpus() as u64) as u8);
    let space = world.guest().space_of(vcpu as usize);
    // Prefer virtual pages that map a page some handler covers: a few cheap samples.
    let mut vpi = None;
    if d.chance(60) {
        for _ in 0..8 {
            let Some(v) = mapped_vpi(world, space, d) else { break };
            let gp = world.guest().mappings(space).get(&v).map_or(0, |g| g.0);
            let i = view.handlers.partition_point(|h| h.key_last < gp);
            if view.handlers.get(i).is_some_and(|h| h.key < gp + PAGE_SIZE) {
                vpi = Some(v);
                break;
            }
        }
    }
    let vpi = match vpi.or_else(|| mapped_vpi(world, space, d)) {
        Some(v) if d.chance(95) => v,
        // Now and then just past the virtual window: a bad address.
        _ if d.chance(5) => world.config().va_pages + d.below(BAD_ADDRESS_PAGES as u64) as u32,
        _ => d.below(world.config().va_pages as u64) as u32,
    };
    let size = [1u8, 2, 4, 8][d.below(4) as usize];
    // Offsets near handler edges and quarter-page boundaries hit sub-page handler edges.
    let gp = world.guest().mappings(space).get(&vpi).map_or(0, |g| g.0);
    let i = view.handlers.partition_point(|h| h.key_last < gp);
    let offset = match (d.below(4), view.handlers.get(i)) {
        (0, Some(h)) if h.key < gp + PAGE_SIZE => {
            let edge = if d.chance(50) { h.key } else { h.key_last + 1 };
            edge.wrapping_sub(d.below(size as u64 + 1)) & (PAGE_SIZE - 1)
        }
        (1, _) => (d.below(4) * 0x400).wrapping_sub(d.below(size as u64 + 1)) & 0xfff,
        _ => d.below(PAGE_SIZE),
    };
    let offset = offset.min(PAGE_SIZE - size as u64);
    let kind = match d.below(20) {
        0..=9 => AccessKind::Read,
        10..=17 => AccessKind::Write,
        _ => AccessKind::Exec,
    };
    Op::Access {
        vcpu,
        va: va_of(vpi).0 + offset,
        size,
        kind,
        value: d.bits(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::ops_differential::ByteEntropy;

    /// A one-byte handler at 4 GiB - 1 right below a dirty-tracked MMIO2 range at 4 GiB (a
    /// fuzz world found by `ops_differential`): "one byte in" would be the tracker's start,
    /// and a reset there drops its dirty bits. The generator names the handler's own start
    /// instead; with no tracker above, one byte in stays.
    #[test]
    fn one_byte_in_never_names_a_tracker() {
        let below_4gib = Span {
            key: 0xffff_ffff,
            key_last: 0xffff_ffff,
            kind: HandlerKind::Write,
            not_in_hm: false,
        };
        let trackers = [crate::devices::DirtyTracker::new(
            0x1_0000_0000,
            0x1_0000_ffff,
            pgmsim::Hpa(0x20_0000),
            0,
        )];
        let mut view = View {
            handlers: vec![below_4gib],
            ranges: Vec::new(),
            pool: (0, 0xfff),
            tracked: &trackers,
        };
        // Zero draws: the first handler, then the "one byte in" arm.
        let start = |view: &View| handler_start(view, &mut Draw::new(&mut ByteEntropy::new(&[])));
        assert_eq!(start(&view), 0xffff_ffff);
        assert_eq!(view.untracked(0x1_0000_8000, 7), 7);
        view.tracked = &[];
        assert_eq!(start(&view), 0x1_0000_0000);
    }
}
