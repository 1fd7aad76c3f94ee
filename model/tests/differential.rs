//! Differential state-machine test: the reference model is proptest-state-machine's
//! `ReferenceStateMachine`, the production `Manager<RecordingPlatform>` the system under test.
//!
//! Transitions are calls of the testkit's vocabulary ([`ApiCall`]), covering every operation
//! of `PhysHandlerApi`, valid and invalid, generated from the model's current state with a
//! bias toward edges: handler keys and their neighbours, shared and adjacent pages, first and
//! last pages of RAM ranges, gaps, `u64::MAX`, and the pages of existing handlers for the
//! per-page operations. Both sides apply them through `apply_checked`, so every failed call is
//! also proven to change nothing. After every transition the test compares the outcomes, the
//! platform events, every RAM page descriptor, the handler list, the live count and
//! `check_sync` (see `common::assert_same_state`).

mod common;

use common::{Side, MMIO, MMIO2_MAPPED, MMIO_PAGES};
use pgmsim::page::MAX_HOST_PHYS;
use pgmsim::{HandlerKind, Hpa, Manager, PhysHandlerApi, PlatformEvent};
use pgmsim_model::Model;
use pgmsim_testkit::call::{NodeIx, TypeIx};
use pgmsim_testkit::{ApiCall, Outcome, RecordingPlatform};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

/// Every bitmap starts with this pattern in each word, so a stray clear shows as well as a
/// stray set.
const BITMAP_FILL: u64 = 0x8000_0000_0000_0001;

/// One transition: a call, or several calls in a row (a batch of creations, so the allocator
/// runs dry within a case).
#[derive(Debug, Clone)]
enum Transition {
    /// One call.
    Call(ApiCall),
    /// Calls applied in order as one transition.
    Batch(Vec<ApiCall>),
}

impl Transition {
    fn calls(&self) -> &[ApiCall] {
        match self {
            Transition::Call(c) => std::slice::from_ref(c),
            Transition::Batch(v) => v,
        }
    }
}

/// `count` creations of type `ty` with users `user, user + 1, ...`; a single call for 1.
fn creations(ty: TypeIx, user: u64, described: bool, count: u8) -> Transition {
    let create = |k: u8| ApiCall::Create {
        ty,
        user: user.wrapping_add(k as u64),
        described,
    };
    match count {
        0 | 1 => Transition::Call(create(0)),
        n => Transition::Batch((0..n).map(create).collect()),
    }
}

/// A registration of `[first, last]`: plain `register` (its node gets no creation index), or,
/// when `indexed`, `create` + `register_ex` of the node it creates, so later calls
/// (`deregister_ex`, `destroy`, `dup`, `handler_info`) can name the registered node by index
/// `next`, the index that node gets.
fn registration(
    next: NodeIx,
    indexed: bool,
    (first, last): (u64, u64),
    ty: TypeIx,
    user: u64,
    described: bool,
) -> Transition {
    if !indexed {
        return Transition::Call(ApiCall::Register {
            first,
            last,
            ty,
            user,
            described,
        });
    }
    Transition::Batch(vec![
        ApiCall::Create { ty, user, described },
        ApiCall::RegisterEx { h: next, first, last },
    ])
}

/// The reference side: the model, what the last transition's calls answered and what they
/// emitted.
#[derive(Debug, Clone)]
struct RefState {
    side: Side<Model>,
    outcomes: Vec<Outcome>,
    events: Vec<PlatformEvent>,
}

struct Reference;

/// Addresses worth trying in the current state: range edges, gaps, handler keys and their
/// neighbours, page boundaries around them, and the extremes.
fn interesting(s: &RefState) -> Vec<u64> {
    let mut v = vec![0, 1, 0xfff, 0x1000, u64::MAX, !0xfff, (1 << 32) - 1, 1 << 32];
    for r in &s.side.api.layout().ram_ranges {
        let (f, l) = (r.first, r.last());
        v.extend([
            f,
            f + 1,
            f + 0x800,
            f + 0xfff,
            f + 0x1000,
            f + 0x1800,
            l - 0xfff,
            l - 0x800,
            l,
            l + 1,
        ]);
        v.extend([
            f.wrapping_sub(1),
            f.wrapping_sub(0x1000),
            f + ((r.pages as u64 / 2) << 12),
        ]);
    }
    for h in s.side.api.handlers() {
        let (k, l) = (h.key, h.key_last);
        v.extend([k, k + 1, k.wrapping_sub(1), l, l.wrapping_add(1), l.wrapping_sub(1)]);
        v.extend([
            k & !0xfff,
            l | 0xfff,
            (l | 0xfff).wrapping_add(1),
            (k & !0xfff).wrapping_sub(0x1000),
        ]);
        v.extend([k + ((l - k) / 2), (k & !0xfff).wrapping_sub(1)]);
    }
    v.sort_unstable();
    v.dedup();
    v
}

fn addr_s(s: &RefState) -> BoxedStrategy<u64> {
    let addrs = interesting(s);
    prop_oneof![
        8 => select(addrs),
        2 => (0..5usize, 0..16u64, select(vec![0u64, 0x7ff, 0x800, 0xfff, 0x123])).prop_map(|(r, p, o)| {
            let base = [0x0, 0x2_0000, 0x2_8000, MMIO, MMIO2_MAPPED][r];
            base + (p << 12) + o
        }),
        1 => any::<u64>(),
    ]
    .boxed()
}

/// `(first, last)` pairs: whole pages, sub-page, one byte, inverted, huge, ending just below
/// a handler, MMIO-range pages (for Mmio handlers), and arbitrary pairs.
fn range_s(s: &RefState) -> BoxedStrategy<(u64, u64)> {
    let addrs = interesting(s);
    let mut aligned: Vec<u64> = addrs.iter().map(|a| a & !0xfff).collect();
    aligned.dedup();
    let lens = vec![0u64, 1, 0xff, 0x7ff, 0x800, 0xffe, 0xfff, 0x1000, 0x17ff, 0x1fff];
    prop_oneof![
        5 => (select(aligned), 1u64..=4).prop_map(|(f, n)| (f, f.wrapping_add(n << 12).wrapping_sub(1))),
        4 => (select(addrs.clone()), select(lens.clone())).prop_map(|(f, n)| (f, f.wrapping_add(n))),
        2 => (select(addrs.clone()), select(lens)).prop_map(|(l, n)| (l.wrapping_sub(n), l)),
        3 => (0..MMIO_PAGES, 1u64..=4).prop_map(|(p, n)| (MMIO + (p << 12), MMIO + ((p + n) << 12) - 1)),
        2 => (select(addrs.clone()), select(addrs.clone())),
        1 => select(addrs).prop_flat_map(|f| {
            select(vec![(f, f.wrapping_add(1 << 32)), (f, u64::MAX), (f, f.wrapping_add((1 << 32) - 1))])
        }),
    ]
    .boxed()
}

/// Sub-page ranges: glued to an existing handler's ends, or slices of a few pages chosen so
/// that several handlers share them (including the first and last page of RAM ranges).
fn subpage_s(s: &RefState) -> BoxedStrategy<(u64, u64)> {
    let pages = vec![
        0x0u64,
        0x3000,
        0xf000,
        0x2_0000,
        0x2_7000,
        0x2_8000,
        MMIO2_MAPPED + 0x7000,
    ];
    let slices = (select(pages), 0..16u64, 1..8u64)
        .prop_map(|(p, a, n)| (p + a * 0x100, (p + a * 0x100 + n * 0x100 - 1).min(p + 0xfff)));
    let mut glue = Vec::new();
    for h in s.side.api.handlers() {
        glue.push((h.key_last.wrapping_add(1), true));
        glue.push((h.key.wrapping_sub(1), false));
    }
    if glue.is_empty() {
        return slices.boxed();
    }
    let glued = (select(glue), 0..0x1800u64).prop_map(|((at, up), n)| {
        if up {
            (at, at.wrapping_add(n))
        } else {
            (at.wrapping_sub(n), at)
        }
    });
    prop_oneof![slices, glued].boxed()
}

/// `(handler start, page)` pairs: mostly a registered handler's key with one of its pages
/// (at an offset), sometimes pages just outside it or an address inside instead of the key.
fn handler_page_s(s: &RefState, only: Option<HandlerKind>) -> BoxedStrategy<(u64, u64)> {
    let mut pairs = Vec::new();
    for h in s
        .side
        .api
        .handlers()
        .into_iter()
        .filter(|h| only.is_none_or(|k| k == h.kind))
    {
        for i in 0..h.page_count as u64 {
            let page = (h.key & !0xfff) + (i << 12);
            pairs.push((h.key, page.max(h.key)));
            pairs.push((h.key, page.max(h.key) + 0x123.min(h.key_last - page.max(h.key))));
        }
        pairs.push((h.key, h.key_last.wrapping_add(1)));
        pairs.push((h.key, h.key.wrapping_sub(1)));
        if h.key_last > h.key {
            pairs.push((h.key + 1, h.key + 1));
        }
    }
    if pairs.is_empty() {
        return if only.is_some() {
            handler_page_s(s, None)
        } else {
            (addr_s(s), addr_s(s)).boxed()
        };
    }
    prop_oneof![8 => select(pairs), 2 => (addr_s(s), addr_s(s))].boxed()
}

fn start_s(s: &RefState, only: Option<HandlerKind>) -> BoxedStrategy<u64> {
    let handlers = s.side.api.handlers();
    let keys: Vec<u64> = handlers
        .iter()
        .filter(|h| only.is_none_or(|k| k == h.kind))
        .map(|h| h.key)
        .collect();
    if keys.is_empty() {
        return addr_s(s);
    }
    prop_oneof![3 => select(keys), 1 => addr_s(s)].boxed()
}

/// A creation index: mostly an existing node (stale ones included), sometimes one past the end.
fn handler_index_s(s: &RefState) -> BoxedStrategy<NodeIx> {
    let n = s.side.names.nodes.len() as NodeIx;
    if n == 0 {
        return Just(0).boxed();
    }
    prop_oneof![9 => 0..n, 1 => Just(n)].boxed()
}

/// A type index: mostly a registered type, sometimes one or two past the end (a handle with
/// the right slot but wrong check bits, and one no side issues).
fn type_index_s(s: &RefState) -> BoxedStrategy<TypeIx> {
    let n = s.side.names.types.len() as TypeIx;
    prop_oneof![12 => 0..n, 1 => Just(n), 1 => Just(n + 1)].boxed()
}

fn kind_s() -> impl Strategy<Value = HandlerKind> {
    select(vec![HandlerKind::Write, HandlerKind::All, HandlerKind::Mmio])
}

/// Pages for alias resets: the MMIO range, the aliased ones (where alias resets succeed)
/// twice over, and any address.
fn alias_page_s(s: &RefState) -> BoxedStrategy<u64> {
    let mmio_pages: Vec<u64> = (0..MMIO_PAGES).map(|p| MMIO + (p << 12)).collect();
    let aliased: Vec<u64> = mmio_pages
        .iter()
        .copied()
        .filter(|&p| s.side.api.page(p).is_some_and(|d| d.page_type().is_alias()))
        .collect();
    if aliased.is_empty() {
        return prop_oneof![3 => select(mmio_pages), 1 => addr_s(s)].boxed();
    }
    prop_oneof![4 => select(aliased), 1 => select(mmio_pages), 1 => addr_s(s)].boxed()
}

/// User arguments worth telling apart.
fn user_s() -> impl Strategy<Value = u64> + Clone {
    select(vec![0u64, 1, 7, u64::MAX])
}

fn call(c: ApiCall) -> Transition {
    Transition::Call(c)
}

/// Types, node creation, registration and its undoing.
fn lifecycle_s(s: &RefState) -> BoxedStrategy<Transition> {
    let user = user_s();
    let next = s.side.names.nodes.len() as NodeIx;
    let mmio_range = (0..MMIO_PAGES, 1u64..=4).prop_map(|(p, n)| (MMIO + (p << 12), MMIO + ((p + n) << 12) - 1));
    prop_oneof![
        1 => (kind_s(), any::<bool>(), any::<bool>())
            .prop_map(|(kind, not_in_hm, keep_lock)| call(ApiCall::RegisterType { kind, not_in_hm, keep_lock })),
        5 => (type_index_s(s), user.clone(), any::<bool>(), select(vec![1u8, 1, 1, 1, 4, 12, 30]))
            .prop_map(|(ty, user, described, count)| creations(ty, user, described, count)),
        2 => handler_index_s(s).prop_map(|h| call(ApiCall::Dup { h })),
        6 => (handler_index_s(s), range_s(s))
            .prop_map(|(h, (first, last))| call(ApiCall::RegisterEx { h, first, last })),
        10 => (any::<bool>(), range_s(s), type_index_s(s), user.clone(), any::<bool>())
            .prop_map(move |(ix, range, ty, user, desc)| registration(next, ix, range, ty, user, desc)),
        // Sub-page Write handlers next to existing handlers and inside a few shared pages:
        // the edge-page paths of registration and deregistration.
        6 => (any::<bool>(), subpage_s(s), user.clone())
            .prop_map(move |(indexed, range, user)| registration(next, indexed, range, 0, user, false)),
        // Mmio handlers over the MMIO range: the only place aliases can exist.
        6 => (any::<bool>(), mmio_range, user.clone())
            .prop_map(move |(indexed, range, user)| registration(next, indexed, range, 3, user, false)),
        3 => handler_index_s(s).prop_map(|h| call(ApiCall::DeregisterEx { h })),
        3 => handler_index_s(s).prop_map(|h| call(ApiCall::Destroy { h })),
        6 => start_s(s, None).prop_map(|addr| call(ApiCall::Deregister { addr })),
        1 => (start_s(s, None), user).prop_map(|(addr, user)| call(ApiCall::ChangeUserArg { addr, user })),
    ]
    .boxed()
}

/// Resets, temp-off, the dirty bitmap and aliasing.
fn page_ops_s(s: &RefState) -> BoxedStrategy<Transition> {
    let offsets = select(vec![0u32, 1, 3, 60, 64, 100, 200, u32::MAX]);
    let regions = select(vec![0u32, 1, 1, 1, 2, 2, 2, 3]);
    let region_offsets = select(vec![
        0u64,
        0,
        0x1000,
        0x1234,
        0x2000,
        0x3000,
        0x3fff,
        0x4000,
        0x7000,
        0x8000,
        u64::MAX,
    ]);
    let hosts = select(vec![
        0x5000u64,
        0xdead_b000,
        0xdead_b123,
        MAX_HOST_PHYS,
        MAX_HOST_PHYS + 1,
    ]);
    let temp_off_pages = prop_oneof![
        3 => handler_page_s(s, Some(HandlerKind::Write)),
        3 => handler_page_s(s, Some(HandlerKind::All)),
        1 => handler_page_s(s, None),
    ];
    prop_oneof![
        4 => start_s(s, None).prop_map(|addr| call(ApiCall::Reset { addr })),
        3 => (start_s(s, Some(HandlerKind::Write)), 0..4u32, offsets).prop_map(|(addr, words, offset)| {
            call(ApiCall::ResetMmio2WithBitmap { addr, words, offset, fill: BITMAP_FILL })
        }),
        7 => temp_off_pages.prop_map(|(addr, page)| call(ApiCall::PageTempOff { addr, page })),
        8 => (handler_page_s(s, Some(HandlerKind::Mmio)), regions, region_offsets)
            .prop_map(|((addr, page), region, offset)| call(ApiCall::PageAliasMmio2 { addr, page, region, offset })),
        3 => (handler_page_s(s, Some(HandlerKind::Mmio)), hosts)
            .prop_map(|((addr, page), host)| call(ApiCall::PageAliasHc { addr, page, host: Hpa(host) })),
        5 => (alias_page_s(s), select(vec![true, true, false]))
            .prop_map(|(page, accounting)| call(ApiCall::ResetAliasedPage { page, accounting })),
        1 => Just(call(ApiCall::VmReset)),
    ]
    .boxed()
}

/// Every query.
fn queries_s(s: &RefState) -> BoxedStrategy<Transition> {
    prop_oneof![
        addr_s(s).prop_map(|addr| call(ApiCall::IsRegistered { addr })),
        addr_s(s).prop_map(|addr| call(ApiCall::IsAll { addr })),
        addr_s(s).prop_map(|addr| call(ApiCall::Lookup { addr })),
        handler_index_s(s).prop_map(|h| call(ApiCall::HandlerInfo { h })),
        type_index_s(s).prop_map(|ty| call(ApiCall::TypeConfig { ty })),
        addr_s(s).prop_map(|addr| call(ApiCall::Page { addr })),
    ]
    .boxed()
}

impl ReferenceStateMachine for Reference {
    type State = RefState;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<RefState> {
        Just(RefState {
            side: common::new_model(),
            outcomes: Vec::new(),
            events: Vec::new(),
        })
        .boxed()
    }

    fn transitions(s: &RefState) -> BoxedStrategy<Transition> {
        // Group weights are the sums of their members' weights.
        prop_oneof![49 => lifecycle_s(s), 31 => page_ops_s(s), 6 => queries_s(s)].boxed()
    }

    fn apply(mut s: RefState, t: &Transition) -> RefState {
        s.outcomes = t.calls().iter().map(|c| s.side.run(c)).collect();
        s.events = s.side.api.take_events();
        s
    }
}

struct ManagerUnderTest;

impl StateMachineTest for ManagerUnderTest {
    type SystemUnderTest = Side<Manager<RecordingPlatform>>;
    type Reference = Reference;

    fn init_test(r: &RefState) -> Self::SystemUnderTest {
        let sut = common::new_manager();
        // Handle values differ by design (the model issues its own); the indices agree.
        assert_eq!(sut.names.types.len(), r.side.names.types.len(), "same initial types");
        sut
    }

    fn apply(mut sut: Self::SystemUnderTest, r: &RefState, t: Transition) -> Self::SystemUnderTest {
        let outcomes: Vec<Outcome> = t.calls().iter().map(|c| sut.run(c)).collect();
        assert_eq!(outcomes, r.outcomes, "outcomes of {t:?} (production left, model right)");
        let events = sut.api.platform_mut().take();
        assert_eq!(
            events, r.events,
            "platform events of {t:?} (production left, model right)"
        );
        assert_eq!(
            sut.names.nodes.len(),
            r.side.names.nodes.len(),
            "both sides created the same nodes"
        );
        assert_eq!(
            sut.names.types.len(),
            r.side.names.types.len(),
            "both sides registered the same types"
        );
        sut
    }

    fn check_invariants(sut: &Self::SystemUnderTest, r: &RefState) {
        common::assert_same_state(&r.side, sut, &"the last transition");
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        // 256 by default; PROPTEST_CASES=N for a longer soak.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        max_shrink_iters: 20_000,
        // Integration tests have no lib.rs beside them, so name the file (relative to model/).
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/differential.txt"))),
        .. ProptestConfig::default()
    })]

    /// 256 cases of 40 to 60 transitions: over 12,000 compared transitions per run.
    #[test]
    fn model_and_manager_agree(sequential 40..60 => ManagerUnderTest);
}

/// Diagnostic, not a check: how often each operation succeeds or fails with which error in
/// the generated mix, and how many cases reach allocator exhaustion. Run with
/// `cargo test -p pgmsim-model --test differential transition_mix -- --ignored --nocapture`.
#[test]
#[ignore]
fn transition_mix() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;
    let mut runner = TestRunner::deterministic();
    let mut mix: BTreeMap<String, u32> = BTreeMap::new();
    let mut exhausted = 0;
    for _ in 0..256 {
        let tree = Reference::sequential_strategy(40..60)
            .new_tree(&mut runner)
            .expect("strategy");
        let (mut s, transitions, _) = tree.current();
        let mut max_live = 0;
        for t in transitions {
            s = Reference::apply(s, &t);
            for (call, outcome) in t.calls().iter().zip(&s.outcomes) {
                *mix.entry(format!("{} {}", call.name(), outcome.result_name()))
                    .or_default() += 1;
            }
            max_live = max_live.max(s.side.api.live_handlers());
        }
        exhausted += u32::from(max_live == s.side.api.capacity());
    }
    for (k, v) in mix {
        println!("{k:40} {v}");
    }
    println!("cases reaching capacity: {exhausted}/256");
}
