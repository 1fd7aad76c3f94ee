//! `api_robustness`: calls of the shared vocabulary ([`ApiCall`]) with unconstrained
//! arguments on the production manager alone. Every call goes through
//! [`apply_checked`], the one shared proof that a failed call changed nothing; a failed call
//! must not call the platform either, a successful one must leave `check_sync` clean, the
//! queries must agree with each other, and the handler list must stay sorted and disjoint.
//!
//! Addresses are [`AddrChoice`]s, resolved against the current state with
//! [`ApiCall::map_addr`], so fuzzer bytes land on handler and range edges instead of on
//! `NotFound`; handler nodes and types are named by creation index through [`Names`], so a
//! past-the-end index is a forged id and a destroyed node's index a stale one.

use arbitrary::{Arbitrary, Unstructured};
use pgmsim::{
    HandlerKind, HandlerSpan, HandlerTypeConfig, Hpa, Manager, ManagerConfig, NemMode, PhysHandlerApi, PAGE_SHIFT,
    PAGE_SIZE,
};
use pgmsim_testkit::call::apply_checked;
use pgmsim_testkit::{ApiCall, Names, Outcome, RecordingPlatform};

use super::shrink_layout;
use crate::config::{Overrides, SimConfig};

/// Most calls one input runs.
pub const MAX_API_CALLS: usize = 512;
/// Largest bitmap a `reset_mmio2_with_bitmap` call of this target passes, in words: larger
/// ones test nothing a few words do not, and would only make the target slow.
pub const MAX_FUZZ_BITMAP_WORDS: u32 = 8;
/// Pages of the first range of an input's layout, and of every other range and region: every
/// mutating call digests the whole state twice, so a small guest keeps calls cheap, and range
/// edges close together.
const LAYOUT_FIRST_PAGES: u32 = 8;
/// See [`LAYOUT_FIRST_PAGES`].
const LAYOUT_OTHER_PAGES: u32 = 4;
/// Handler capacities an input picks from: small ones reach exhaustion in a few calls, and
/// every failed or checked call digests the whole slab and tree, which grow with capacity.
const CAPACITIES: [u32; 4] = [32, 32, 32, 64];
/// Pages of MMIO2 region a non-hostile alias offset reaches.
const ALIAS_OFFSET_PAGES: u64 = 64;

/// Where an address argument comes from: mostly near something that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum AddrChoice {
    /// Any 64-bit value.
    Raw(u64),
    /// Start of the `n`-th registered handler (modulo their number) plus a small delta.
    HandlerStart(u8, i16),
    /// Last byte of the `n`-th registered handler plus a small delta.
    HandlerLast(u8, i16),
    /// First byte of the `n`-th RAM range plus a small delta.
    RangeFirst(u8, i16),
    /// Last byte of the `n`-th RAM range plus a small delta.
    RangeLast(u8, i16),
    /// Page `p` of the `n`-th RAM range (any offset within the page).
    RangePage(u8, u16, u16),
    /// `len` bytes from the address resolved just before in the same call (the first byte
    /// of a range, for its last byte): `previous + len - 1`, wrapping, so lengths (empty,
    /// huge, sub-page, whole pages) stay expressible.
    AfterPrevious(LenChoice),
}

/// A length, for [`AddrChoice::AfterPrevious`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum LenChoice {
    /// Any value (0 and huge ones give `last < first`).
    Raw(u64),
    /// Whole pages.
    Pages(u8),
    /// A few bytes.
    Bytes(u16),
}

impl LenChoice {
    fn bytes(self) -> u64 {
        match self {
            LenChoice::Raw(v) => v,
            LenChoice::Pages(n) => (n as u64) << PAGE_SHIFT,
            LenChoice::Bytes(n) => n as u64,
        }
    }
}

/// An input: the world, then calls until the input is used up.
#[derive(Debug, Clone, Arbitrary)]
pub struct ApiInput {
    /// Picks the memory layout (as a simulator seed would, then cut down).
    pub layout_seed: u64,
    /// 0: shadow paging, 1: NEM, 2: exclusive NEM.
    pub nem: u8,
    /// Handler capacity selector (small capacities reach exhaustion).
    pub capacity: u8,
    /// The calls.
    pub calls: Vec<ApiCall<AddrChoice>>,
}

fn near(base: u64, delta: i16) -> u64 {
    base.wrapping_add(delta as i64 as u64)
}

/// The manager under test and the names its ids have.
struct ApiWorld {
    m: Manager<RecordingPlatform>,
    names: Names,
}

impl ApiWorld {
    /// The world of `input`: its layout and configuration, the four standard types.
    fn new(input: &ApiInput) -> Option<ApiWorld> {
        let mut layout = SimConfig::from_seed(input.layout_seed, &Overrides::default()).layout;
        shrink_layout(&mut layout, LAYOUT_FIRST_PAGES, LAYOUT_OTHER_PAGES);
        let nem = match input.nem % 3 {
            0 => NemMode::Off,
            1 => NemMode::Notify,
            _ => NemMode::Exclusive,
        };
        let config = ManagerConfig {
            max_handlers: CAPACITIES[input.capacity as usize % CAPACITIES.len()],
            nem,
            ..ManagerConfig::default()
        };
        let mut m = Manager::new(layout, config, RecordingPlatform::mapped()).ok()?;
        let mut names = Names::default();
        for (kind, not_in_hm) in [
            (HandlerKind::Write, false),
            (HandlerKind::All, false),
            (HandlerKind::Mmio, false),
            (HandlerKind::Write, true),
        ] {
            let mut c = HandlerTypeConfig::new(kind, "t");
            c.not_in_hm = not_in_hm;
            names.types.push(m.register_type(c).ok()?);
        }
        Some(ApiWorld { m, names })
    }

    /// The call with every address resolved against the current state, in field order.
    fn resolve(&self, call: ApiCall<AddrChoice>) -> ApiCall {
        // The handler list only when an address asks for it (most calls do not).
        let spans = std::cell::OnceCell::new();
        let handler = |n: u8| {
            let spans: &Vec<HandlerSpan> = spans.get_or_init(|| self.m.handler_spans());
            spans.get(n as usize % spans.len().max(1)).copied()
        };
        let ranges = &self.m.layout().ram_ranges;
        let range = |n: u8| ranges.get(n as usize % ranges.len().max(1));
        let mut previous = 0u64;
        let call = call.map_addr(|a| {
            let addr = match a {
                AddrChoice::Raw(v) => v,
                AddrChoice::HandlerStart(n, d) => near(handler(n).map_or(0, |h| h.key), d),
                AddrChoice::HandlerLast(n, d) => near(handler(n).map_or(u64::MAX, |h| h.key_last), d),
                AddrChoice::RangeFirst(n, d) => near(range(n).map_or(0, |r| r.first), d),
                AddrChoice::RangeLast(n, d) => near(range(n).map_or(0, |r| r.last()), d),
                AddrChoice::RangePage(n, p, off) => range(n).map_or(0, |r| {
                    let page = p as u64 % (r.pages as u64 + 1);
                    r.first
                        .wrapping_add(page << PAGE_SHIFT)
                        .wrapping_add(off as u64 % PAGE_SIZE)
                }),
                AddrChoice::AfterPrevious(len) => previous.wrapping_add(len.bytes()).wrapping_sub(1),
            };
            previous = addr;
            addr
        });
        self.shape(call)
    }

    /// Folds the numbers that index something into the range where they mean something, so
    /// most calls get past validation; a value with its top bit set is left as it is, so
    /// hostile values stay reachable. Bitmaps stay small (an allocation per call).
    fn shape(&self, call: ApiCall) -> ApiCall {
        let regions = self.m.layout().mmio2_regions.len() as u32;
        match call {
            ApiCall::ResetMmio2WithBitmap {
                addr,
                words,
                offset,
                fill,
            } => ApiCall::ResetMmio2WithBitmap {
                addr,
                words: words % (MAX_FUZZ_BITMAP_WORDS + 1),
                offset: if offset >> 31 == 0 { offset % 512 } else { offset },
                fill,
            },
            ApiCall::PageAliasMmio2 {
                addr,
                page,
                region,
                offset,
            } => ApiCall::PageAliasMmio2 {
                addr,
                page,
                // Handle `k` names region `k - 1`: 0 and one past the end are invalid.
                region: if region >> 31 == 0 {
                    region % (regions + 2)
                } else {
                    region
                },
                offset: if offset >> 63 == 0 {
                    (offset % ALIAS_OFFSET_PAGES) << PAGE_SHIFT
                } else {
                    offset
                },
            },
            ApiCall::PageAliasHc { addr, page, host } if host.0 >> 63 == 0 => ApiCall::PageAliasHc {
                addr,
                page,
                host: Hpa(host.0 % (1 << 40)),
            },
            other => other,
        }
    }

    /// Runs one call and checks the robustness contract.
    fn call(&mut self, call: ApiCall<AddrChoice>) -> Result<(), String> {
        let call = self.resolve(call);
        self.m.platform_mut().take();
        let digest = |m: &Manager<RecordingPlatform>| m.state_digest();
        let outcome = apply_checked(&mut self.m, &mut self.names, &call, &digest)?;
        if let Some(e) = outcome.error() {
            let events = self.m.platform_mut().take();
            if !events.is_empty() {
                return Err(format!(
                    "{call:?} failed with {e:?} but called the platform: {events:?}"
                ));
            }
            return Ok(());
        }
        if !call.mutates() {
            return self.queries_agree(&call, &outcome);
        }
        // Without accounting, the caller owns the handler's aliased-page count (the
        // original's callers decrement it themselves): settle it, as they do.
        if let ApiCall::ResetAliasedPage {
            page,
            accounting: false,
        } = call
        {
            if self.m.is_registered(page) {
                self.m
                    .settle_unaccounted_alias(page)
                    .map_err(|e| format!("{call:?}: cannot apply the caller's accounting: {e:?}"))?;
            }
        }
        let mismatches = self.m.check_sync();
        if !mismatches.is_empty() {
            return Err(format!("{call:?} gave {outcome:?} but broke the state: {mismatches:?}"));
        }
        Ok(())
    }

    /// After a query at an address: every query at that address agrees with the others.
    fn queries_agree(&self, call: &ApiCall, outcome: &Outcome) -> Result<(), String> {
        let addr = match *call {
            ApiCall::IsRegistered { addr } | ApiCall::IsAll { addr } | ApiCall::Lookup { addr } => addr,
            ApiCall::Page { addr } => addr,
            _ => return Ok(()),
        };
        let reg = self.m.is_registered(addr);
        let info = self.m.lookup(addr);
        let is_all = self.m.is_all(addr);
        if reg != info.is_some() || reg != is_all.is_ok() {
            return Err(format!(
                "{call:?} answered {outcome:?}; at {addr:#x} is_registered {reg}, lookup {info:?}, is_all {is_all:?} disagree"
            ));
        }
        if let Some(h) = &info {
            if !(h.key <= addr && addr <= h.key_last) {
                return Err(format!("lookup({addr:#x}) returned {h:?}, which does not contain it"));
            }
            if is_all != Ok(h.kind != HandlerKind::Write) {
                return Err(format!(
                    "is_all({addr:#x}) = {is_all:?} disagrees with the kind of {h:?}"
                ));
            }
            if self.m.page(addr).is_none() {
                return Err(format!("{addr:#x} is in handler {h:?} but has no page"));
            }
        }
        Ok(())
    }

    /// The handler list is sorted and disjoint, and lookup finds every listed handler at
    /// both ends.
    fn handler_list_consistent(&self) -> Result<(), String> {
        let hs = self.m.handlers();
        if let Some(pair) = hs.windows(2).find(|p| p[0].key_last >= p[1].key) {
            return Err(format!(
                "handlers() not sorted and disjoint: {:?} then {:?}",
                pair[0], pair[1]
            ));
        }
        let spans: Vec<HandlerSpan> = self.m.handler_spans();
        if spans.len() != hs.len() {
            return Err(format!("{} handler spans for {} handlers", spans.len(), hs.len()));
        }
        for h in &hs {
            if self.m.lookup(h.key).as_ref() != Some(h) || self.m.lookup(h.key_last).as_ref() != Some(h) {
                return Err(format!("handler {h:?} is listed but lookup does not find it"));
            }
        }
        Ok(())
    }
}

/// Runs an input on a fresh production manager; `Err` describes the first broken promise (a
/// failed call that changed state or called the platform, a successful one that left
/// `check_sync` unclean, queries that disagree, a handler list out of order). Panics are
/// bugs too.
pub fn api_robustness(bytes: &[u8]) -> Result<(), String> {
    match ApiInput::arbitrary_take_rest(Unstructured::new(bytes)) {
        Ok(input) => run_input(input),
        Err(_) => Ok(()),
    }
}

/// Runs a decoded input (at most [`MAX_API_CALLS`] of its calls); see [`api_robustness`].
pub fn run_input(input: ApiInput) -> Result<(), String> {
    let Some(mut w) = ApiWorld::new(&input) else {
        return Ok(());
    };
    for (i, call) in input.calls.into_iter().take(MAX_API_CALLS).enumerate() {
        w.call(call).map_err(|e| format!("call {i}: {e}"))?;
    }
    w.handler_list_consistent()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_end_resolves_after_its_start() {
        let input = ApiInput {
            layout_seed: 3,
            nem: 0,
            capacity: 0,
            calls: Vec::new(),
        };
        let w = ApiWorld::new(&input).expect("world");
        let first = w.m.layout().ram_ranges[0].first;
        let call = ApiCall::Register {
            first: AddrChoice::RangePage(0, 5, 0),
            last: AddrChoice::AfterPrevious(LenChoice::Pages(2)),
            ty: 0,
            user: 0,
            described: false,
        };
        let ApiCall::Register { first: a, last: b, .. } = w.resolve(call) else {
            panic!("a register call resolves to a register call")
        };
        assert_eq!(a, first + (5 << PAGE_SHIFT));
        assert_eq!(b, a + 2 * PAGE_SIZE - 1);
    }

    #[test]
    fn a_registered_range_is_found_by_handler_choices() {
        let input = ApiInput {
            layout_seed: 3,
            nem: 0,
            capacity: 0,
            calls: Vec::new(),
        };
        let mut w = ApiWorld::new(&input).expect("world");
        let register = ApiCall::Register {
            first: AddrChoice::RangePage(0, 5, 0),
            last: AddrChoice::AfterPrevious(LenChoice::Pages(1)),
            ty: 0,
            user: 0,
            described: false,
        };
        w.call(register).expect("a plain registration keeps every promise");
        let h = w.m.handlers()[0].clone();
        let deregister = w.resolve(ApiCall::Deregister {
            addr: AddrChoice::HandlerStart(7, 0),
        });
        assert_eq!(deregister, ApiCall::Deregister { addr: h.key });
        let lookup = w.resolve(ApiCall::Lookup {
            addr: AddrChoice::HandlerLast(0, 1),
        });
        assert_eq!(lookup, ApiCall::Lookup { addr: h.key_last + 1 });
    }
}
