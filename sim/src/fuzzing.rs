//! The fuzz targets' logic, in the library so `cargo test` replays every corpus input
//! through exactly the function libFuzzer runs, and `pgmsim replay --fuzz` turns an input
//! into a trace.

use arbitrary::{Arbitrary, Unstructured};
use pgmsim::{
    Error, HandlerId, HandlerKind, HandlerTypeConfig, HandlerTypeHandle, Hpa, Manager, ManagerConfig, Mmio2Handle,
    NemMode, PhysHandlerApi, PAGE_SHIFT, PAGE_SIZE,
};
use pgmsim_testkit::RecordingPlatform;

use crate::check::CheckMode;
use crate::config::{Overrides, SimConfig};
use crate::gen::Entropy;
use crate::run::{replay, run_entropy, RunReport};
use crate::trace::Trace;

/// Most steps an `ops_differential` input can drive.
pub const MAX_FUZZ_STEPS: usize = 256;

/// Fuzzer bytes as an entropy source: two bytes per draw, so most bytes steer a decision;
/// zeros once the input is used up.
pub struct ByteEntropy<'a> {
    u: Unstructured<'a>,
}

impl<'a> ByteEntropy<'a> {
    /// Wraps fuzzer bytes.
    pub fn new(bytes: &'a [u8]) -> Self {
        ByteEntropy {
            u: Unstructured::new(bytes),
        }
    }

    /// Whether the input is used up.
    pub fn is_empty(&self) -> bool {
        self.u.is_empty()
    }
}

impl Entropy for ByteEntropy<'_> {
    fn next_u64(&mut self) -> u64 {
        self.u.arbitrary::<u16>().unwrap_or(0) as u64
    }
}

/// The world an `ops_differential` input runs in: its first eight bytes pick a swarm
/// configuration (as a seed would), small enough to fuzz fast.
pub fn fuzz_config(bytes: &[u8]) -> SimConfig {
    let mut seed = [0u8; 8];
    let n = bytes.len().min(8);
    seed[..n].copy_from_slice(&bytes[..n]);
    let ov = Overrides {
        full_check_every: Some(u32::MAX),
        ..Overrides::default()
    };
    let mut config = SimConfig::from_seed(u64::from_le_bytes(seed), &ov);
    // Small worlds: a fuzz input is a few dozen steps, so the per-input cost of building the
    // world and of the final full check must stay small.
    config.va_pages = config.va_pages.min(64);
    config.vcpus = config.vcpus.min(4);
    config.tlb_sets = config.tlb_sets.min(8);
    config
}

/// Runs an `ops_differential` input: configuration from the first bytes, then one generated
/// step per draw until the input is used up.
pub fn ops_differential(bytes: &[u8]) -> RunReport {
    let config = fuzz_config(bytes);
    let rest = bytes.get(8..).unwrap_or(&[]);
    let mut e = ByteEntropy::new(rest);
    let steps = (rest.len() / 16).clamp(1, MAX_FUZZ_STEPS);
    run_entropy(config, steps, &mut e)
}

/// The trace of an `ops_differential` input.
pub fn ops_differential_trace(bytes: &[u8]) -> Trace {
    let mut t = ops_differential(bytes).trace();
    t.check = CheckMode::Incremental;
    t
}

// ---------------------------------------------------------------------------------------------
// api_robustness: raw calls with unconstrained arguments on the production manager alone.
// ---------------------------------------------------------------------------------------------

/// Where an address argument comes from: mostly near something that exists, so the raw bits
/// of the input do not waste most calls on `NotFound`.
#[derive(Debug, Clone, Copy, Arbitrary)]
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
}

/// A length argument (`last = first + len - 1`, wrapping).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum LenChoice {
    /// Any value (including 0 and huge ones: `last < first`).
    Raw(u64),
    /// Whole pages.
    Pages(u8),
    /// A few bytes.
    Bytes(u16),
}

/// A handler-type handle argument.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum TypeChoice {
    /// A registered type.
    Known(u8),
    /// A registered type with one bit flipped (stale check bits or slot).
    Flipped(u8, u8),
    /// Any bits.
    Raw(u64),
}

/// A handler-id argument.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum IdChoice {
    /// A handler created earlier (possibly freed since: stale).
    Known(u8),
    /// A handler created earlier with one bit flipped.
    Flipped(u8, u8),
    /// Any bits.
    Raw(u64),
}

/// An MMIO2 region handle argument.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum RegionChoice {
    /// Region `n` modulo the number of regions.
    Known(u8),
    /// Any value.
    Raw(u32),
}

/// A page offset inside an MMIO2 region.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum OffsetChoice {
    /// Page `n` (times the page size).
    Page(u8),
    /// Any value.
    Raw(u64),
}

/// One raw API call.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum ApiCall {
    /// `register_type` with any flags.
    RegisterType {
        /// 0: Write, 1: All, other: Mmio.
        kind: u8,
        /// Not-in-HM flag.
        not_in_hm: bool,
        /// Keep-lock flag.
        keep_lock: bool,
    },
    /// `create`.
    Create(TypeChoice, u64, bool),
    /// `dup`.
    Dup(IdChoice),
    /// `register_ex`.
    RegisterEx(IdChoice, AddrChoice, LenChoice),
    /// `register`.
    Register(AddrChoice, LenChoice, TypeChoice, u64),
    /// `deregister_ex`.
    DeregisterEx(IdChoice),
    /// `destroy`.
    Destroy(IdChoice),
    /// `deregister`.
    Deregister(AddrChoice),
    /// `change_user_arg`.
    ChangeUserArg(AddrChoice, u64),
    /// `reset`.
    Reset(AddrChoice),
    /// `reset_mmio2_with_bitmap` with a bitmap of `words` words and any offset.
    ResetMmio2WithBitmap(AddrChoice, u8, u32),
    /// `page_temp_off`.
    PageTempOff(AddrChoice, AddrChoice),
    /// `page_alias_mmio2`.
    PageAliasMmio2(AddrChoice, AddrChoice, RegionChoice, OffsetChoice),
    /// `page_alias_hc`.
    PageAliasHc(AddrChoice, AddrChoice, u64),
    /// `reset_aliased_page`.
    ResetAliasedPage(AddrChoice, bool),
    /// `vm_reset`.
    VmReset,
    /// Every query at one address, cross-checked.
    Query(AddrChoice),
    /// `handler_info` of an id.
    Info(IdChoice),
}

/// An `api_robustness` input: the world, then calls until the input is used up.
#[derive(Debug, Clone, Arbitrary)]
pub struct ApiInput {
    /// Picks the memory layout (as a simulator seed would).
    pub layout_seed: u64,
    /// 0: shadow paging, 1: NEM, 2: exclusive NEM.
    pub nem: u8,
    /// Handler capacity selector (small capacities reach exhaustion).
    pub capacity: u8,
    /// The calls.
    pub calls: Vec<ApiCall>,
}

/// Most calls one `api_robustness` input runs.
pub const MAX_API_CALLS: usize = 512;

struct ApiWorld {
    m: Manager<RecordingPlatform>,
    types: Vec<HandlerTypeHandle>,
    ids: Vec<HandlerId>,
}

fn near(base: u64, delta: i16) -> u64 {
    base.wrapping_add(delta as i64 as u64)
}

fn flip(v: u64, bit: u8) -> u64 {
    v ^ (1u64 << (bit % 64))
}

impl ApiWorld {
    fn addr(&self, a: AddrChoice) -> u64 {
        let ranges = &self.m.layout().ram_ranges;
        let range = |n: u8| ranges.get(n as usize % ranges.len().max(1));
        let handler = |n: u8| {
            let hs = self.m.handlers();
            hs.get(n as usize % hs.len().max(1)).map(|h| (h.key, h.key_last))
        };
        match a {
            AddrChoice::Raw(v) => v,
            AddrChoice::HandlerStart(n, d) => near(handler(n).map_or(0, |h| h.0), d),
            AddrChoice::HandlerLast(n, d) => near(handler(n).map_or(u64::MAX, |h| h.1), d),
            AddrChoice::RangeFirst(n, d) => near(range(n).map_or(0, |r| r.first), d),
            AddrChoice::RangeLast(n, d) => near(range(n).map_or(0, |r| r.last()), d),
            AddrChoice::RangePage(n, p, off) => range(n).map_or(0, |r| {
                let page = p as u64 % (r.pages as u64 + 1);
                r.first
                    .wrapping_add(page << PAGE_SHIFT)
                    .wrapping_add(off as u64 % PAGE_SIZE)
            }),
        }
    }

    fn ty(&self, t: TypeChoice) -> HandlerTypeHandle {
        let known = |n: u8| self.types.get(n as usize % self.types.len().max(1)).copied();
        match t {
            TypeChoice::Known(n) => known(n).unwrap_or(HandlerTypeHandle::NIL),
            TypeChoice::Flipped(n, b) => HandlerTypeHandle(flip(known(n).unwrap_or(HandlerTypeHandle::NIL).0, b)),
            TypeChoice::Raw(v) => HandlerTypeHandle(v),
        }
    }

    fn id(&self, i: IdChoice) -> HandlerId {
        let known = |n: u8| {
            self.ids
                .get(n as usize % self.ids.len().max(1))
                .copied()
                .unwrap_or(HandlerId(0))
        };
        match i {
            IdChoice::Known(n) => known(n),
            IdChoice::Flipped(n, b) => HandlerId(flip(known(n).0, b)),
            IdChoice::Raw(v) => HandlerId(v),
        }
    }

    fn len(l: LenChoice) -> u64 {
        match l {
            LenChoice::Raw(v) => v,
            LenChoice::Pages(n) => (n as u64) << PAGE_SHIFT,
            LenChoice::Bytes(n) => n as u64,
        }
    }

    fn region(&self, r: RegionChoice) -> Mmio2Handle {
        match r {
            // Handle `k` names `mmio2_regions[k - 1]`; 0 and one past the end are invalid.
            RegionChoice::Known(n) => Mmio2Handle((n as usize % (self.m.layout().mmio2_regions.len() + 2)) as u32),
            RegionChoice::Raw(v) => Mmio2Handle(v),
        }
    }

    /// Cross-checks every query at `addr` against the others.
    fn queries(&self, addr: u64) -> Result<(), String> {
        let reg = self.m.is_registered(addr);
        let info = self.m.lookup(addr);
        if reg != info.is_some() || reg != self.m.is_all(addr).is_ok() {
            return Err(format!(
                "queries at {addr:#x} disagree: is_registered {reg}, lookup {info:?}"
            ));
        }
        if let Some(h) = &info {
            if !(h.key <= addr && addr <= h.key_last) {
                return Err(format!("lookup({addr:#x}) returned {h:?}, which does not contain it"));
            }
            if self.m.is_all(addr) != Ok(h.kind != HandlerKind::Write) {
                return Err(format!("is_all({addr:#x}) disagrees with the kind of {h:?}"));
            }
        }
        let _ = self.m.page(addr);
        Ok(())
    }

    /// Runs one call and checks the robustness contract.
    fn call(&mut self, c: ApiCall) -> Result<(), String> {
        self.m.platform_mut().take();
        let before = self.m.state_digest();
        let live = self.m.live_handlers();
        let mut reset_without_accounting = None;
        let r: Result<(), Error> = match c {
            ApiCall::RegisterType {
                kind,
                not_in_hm,
                keep_lock,
            } => {
                let kind = match kind % 3 {
                    0 => HandlerKind::Write,
                    1 => HandlerKind::All,
                    _ => HandlerKind::Mmio,
                };
                let mut tc = HandlerTypeConfig::new(kind, "fuzz");
                tc.not_in_hm = not_in_hm;
                tc.keep_lock = keep_lock;
                self.m.register_type(tc).map(|t| self.types.push(t))
            }
            ApiCall::Create(t, user, desc) => {
                let ty = self.ty(t);
                self.m
                    .create(ty, user, desc.then_some("fuzz"))
                    .map(|id| self.ids.push(id))
            }
            ApiCall::Dup(i) => {
                let id = self.id(i);
                self.m.dup(id).map(|id| self.ids.push(id))
            }
            ApiCall::RegisterEx(i, a, l) => {
                let (id, first) = (self.id(i), self.addr(a));
                self.m
                    .register_ex(id, first, first.wrapping_add(Self::len(l)).wrapping_sub(1))
                    .map(drop)
            }
            ApiCall::Register(a, l, t, user) => {
                let (first, ty) = (self.addr(a), self.ty(t));
                let last = first.wrapping_add(Self::len(l)).wrapping_sub(1);
                self.m.register(first, last, ty, user, Some("fuzz")).map(drop)
            }
            ApiCall::DeregisterEx(i) => {
                let id = self.id(i);
                self.m.deregister_ex(id).map(drop)
            }
            ApiCall::Destroy(i) => {
                let id = self.id(i);
                self.m.destroy(id).map(drop)
            }
            ApiCall::Deregister(a) => {
                let addr = self.addr(a);
                self.m.deregister(addr).map(drop)
            }
            ApiCall::ChangeUserArg(a, user) => {
                let addr = self.addr(a);
                self.m.change_user_arg(addr, user).map(drop)
            }
            ApiCall::Reset(a) => {
                let addr = self.addr(a);
                self.m.reset(addr).map(drop)
            }
            ApiCall::ResetMmio2WithBitmap(a, words, offset) => {
                let addr = self.addr(a);
                let mut bitmap = vec![0u64; words as usize];
                let r = self.m.reset_mmio2_with_bitmap(addr, &mut bitmap, offset);
                if r.is_err() && bitmap.iter().any(|&w| w != 0) {
                    return Err(format!("{c:?}: failed with {r:?} but wrote the bitmap"));
                }
                r.map(drop)
            }
            ApiCall::PageTempOff(a, p) => {
                let (addr, page) = (self.addr(a), self.addr(p));
                self.m.page_temp_off(addr, page).map(drop)
            }
            ApiCall::PageAliasMmio2(a, p, r, o) => {
                let (addr, page, region) = (self.addr(a), self.addr(p), self.region(r));
                let offset = match o {
                    OffsetChoice::Page(n) => (n as u64) << PAGE_SHIFT,
                    OffsetChoice::Raw(v) => v,
                };
                self.m.page_alias_mmio2(addr, page, region, offset).map(drop)
            }
            ApiCall::PageAliasHc(a, p, host) => {
                let (addr, page) = (self.addr(a), self.addr(p));
                self.m.page_alias_hc(addr, page, Hpa(host)).map(drop)
            }
            ApiCall::ResetAliasedPage(p, accounting) => {
                let page = self.addr(p);
                if !accounting {
                    reset_without_accounting = Some(page);
                }
                self.m.reset_aliased_page(page, accounting).map(drop)
            }
            ApiCall::VmReset => self.m.vm_reset().map(drop),
            ApiCall::Query(a) => {
                let addr = self.addr(a);
                self.queries(addr)?;
                Ok(())
            }
            ApiCall::Info(i) => {
                let id = self.id(i);
                self.m.handler_info(id).map(drop)
            }
        };
        match r {
            Err(e) => {
                if self.m.state_digest() != before || self.m.live_handlers() != live {
                    return Err(format!("{c:?}: failed with {e:?} but changed the state"));
                }
                let events = self.m.platform_mut().take();
                if !events.is_empty() {
                    return Err(format!("{c:?}: failed with {e:?} but called the platform: {events:?}"));
                }
            }
            Ok(()) => {
                // Without accounting, the caller owns the handler's aliased-page count (the
                // seed's callers decrement it themselves): apply that, as they do.
                if let Some(page) = reset_without_accounting {
                    if self.m.lookup(page).is_some() {
                        self.m
                            .settle_unaccounted_alias(page)
                            .map_err(|e| format!("{c:?}: cannot apply the caller's accounting: {e:?}"))?;
                    }
                }
                let mismatches = self.m.check_sync();
                if !mismatches.is_empty() {
                    return Err(format!("{c:?}: succeeded but broke the state: {mismatches:?}"));
                }
            }
        }
        Ok(())
    }
}

fn api_world(input: &ApiInput) -> Option<ApiWorld> {
    let layout = SimConfig::from_seed(input.layout_seed, &Overrides::default()).layout;
    let nem = match input.nem % 3 {
        0 => NemMode::Off,
        1 => NemMode::Notify,
        _ => NemMode::Exclusive,
    };
    let max_handlers = [32u32, 48, 64, 256][input.capacity as usize % 4];
    let config = ManagerConfig {
        max_handlers,
        nem,
        ..ManagerConfig::default()
    };
    let mut m = Manager::new(layout, config, RecordingPlatform::mapped()).ok()?;
    let mut types = Vec::new();
    for (kind, not_in_hm) in [
        (HandlerKind::Write, false),
        (HandlerKind::All, false),
        (HandlerKind::Mmio, false),
        (HandlerKind::Write, true),
    ] {
        let mut c = HandlerTypeConfig::new(kind, "t");
        c.not_in_hm = not_in_hm;
        types.push(m.register_type(c).ok()?);
    }
    Some(ApiWorld {
        m,
        types,
        ids: Vec::new(),
    })
}

/// Runs an `api_robustness` input on a fresh production manager; `Err` describes the first
/// broken promise (a failed call that changed state or called the platform, a successful one
/// that left `check_sync` unclean, queries that disagree). Panics are bugs too.
pub fn api_robustness(bytes: &[u8]) -> Result<(), String> {
    let Ok(input) = ApiInput::arbitrary_take_rest(Unstructured::new(bytes)) else {
        return Ok(());
    };
    let Some(mut w) = api_world(&input) else { return Ok(()) };
    for (i, &c) in input.calls.iter().take(MAX_API_CALLS).enumerate() {
        w.call(c).map_err(|e| format!("call {i}: {e}"))?;
    }
    // The handler list is sorted and disjoint, and every listed handler is found by lookup.
    let hs = w.m.handlers();
    for pair in hs.windows(2) {
        if pair[0].key_last >= pair[1].key {
            return Err(format!(
                "handlers() not sorted and disjoint: {:?} then {:?}",
                pair[0], pair[1]
            ));
        }
    }
    for h in &hs {
        if w.m.lookup(h.key).as_ref() != Some(h) || w.m.lookup(h.key_last).as_ref() != Some(h) {
            return Err(format!("handler {h:?} is listed but lookup does not find it"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// trace_decode: arbitrary bytes as a trace file.
// ---------------------------------------------------------------------------------------------

/// Most operations `trace_decode` replays of a decoded trace.
pub const MAX_DECODE_REPLAY_OPS: usize = 64;
/// Largest guest (in pages) `trace_decode` replays: bigger worlds are valid but slow to build,
/// which would only make the target slow, not find more.
pub const MAX_DECODE_REPLAY_PAGES: u64 = 1 << 14;

/// Decodes arbitrary bytes as a trace file: the decoder must return an error or a valid trace
/// that survives a serialise / parse round trip; a small enough valid trace is also replayed
/// (a replay that breaks an invariant is fine; a panic is a bug). `Err` describes a broken
/// promise of the decoder.
pub fn trace_decode(bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    let Ok(mut trace) = Trace::from_json(&text, "fuzz") else {
        return Ok(());
    };
    trace
        .validate()
        .map_err(|e| format!("from_json accepted a trace validate rejects: {e}"))?;
    let json = serde_json::to_string(&trace).map_err(|e| format!("a decoded trace does not serialise: {e}"))?;
    let again = Trace::from_json(&json, "fuzz").map_err(|e| format!("a decoded trace does not round-trip: {e}"))?;
    if again != trace {
        return Err("a decoded trace changes in a serialise / parse round trip".into());
    }
    if trace.config.layout.total_pages() <= MAX_DECODE_REPLAY_PAGES {
        trace.ops.truncate(MAX_DECODE_REPLAY_OPS);
        let _ = replay(&trace, trace.check);
    }
    Ok(())
}
