//! Differential state-machine test: the reference model is proptest-state-machine's
//! `ReferenceStateMachine`, the production `Manager<RecordingPlatform>` the system under test.
//!
//! Transitions cover every operation of `PhysHandlerApi`, valid and invalid, generated from
//! the model's current state with a bias toward edges: handler keys and their neighbours,
//! shared and adjacent pages, first and last pages of RAM ranges, gaps, `u64::MAX`, and the
//! pages of existing handlers for the per-page operations. After every transition the test
//! compares the outcome, the platform events, every RAM page descriptor, the handler list, the
//! live count and `check_sync` (see `common::assert_same_state`).

mod common;

use common::{Op, Outcome, Side, MMIO, MMIO2_MAPPED, MMIO_PAGES};
use pgmsim::page::MAX_HOST_PHYS;
use pgmsim::{HandlerKind, Manager, PhysHandlerApi, PlatformEvent, RecordingPlatform};
use pgmsim_model::Model;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

/// The reference side: the model, what the last transition answered and emitted.
#[derive(Debug, Clone)]
struct RefState {
    side: Side<Model>,
    outcome: Outcome,
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
        1 => select(addrs).prop_flat_map(|f| select(vec![(f, f.wrapping_add(1 << 32)), (f, u64::MAX), (f, f.wrapping_add((1 << 32) - 1))])),
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

fn handler_index_s(s: &RefState) -> BoxedStrategy<usize> {
    let n = s.side.created.len();
    if n == 0 {
        return Just(0).boxed();
    }
    prop_oneof![9 => 0..n, 1 => Just(n)].boxed()
}

fn type_index_s(s: &RefState) -> BoxedStrategy<usize> {
    let n = s.side.types.len();
    prop_oneof![12 => 0..n, 1 => Just(n), 1 => Just(n + 1)].boxed()
}

fn kind_s() -> impl Strategy<Value = HandlerKind> {
    select(vec![HandlerKind::Write, HandlerKind::All, HandlerKind::Mmio])
}

impl ReferenceStateMachine for Reference {
    type State = RefState;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<RefState> {
        Just(RefState {
            side: common::new_model(),
            outcome: Outcome::Nothing,
            events: Vec::new(),
        })
        .boxed()
    }

    fn transitions(s: &RefState) -> BoxedStrategy<Op> {
        // Pages of the MMIO range, the aliased ones (where alias resets succeed) twice over.
        let mmio_pages = (0..MMIO_PAGES).map(|p| MMIO + (p << 12));
        let aliased = mmio_pages
            .clone()
            .filter(|&p| s.side.api.page(p).is_some_and(|d| d.page_type().is_alias()));
        let aliased: Vec<u64> = aliased.collect();
        let alias_pages = if aliased.is_empty() {
            prop_oneof![3 => select(mmio_pages.collect::<Vec<_>>()), 1 => addr_s(s)].boxed()
        } else {
            prop_oneof![4 => select(aliased), 1 => select(mmio_pages.collect::<Vec<_>>()), 1 => addr_s(s)].boxed()
        };
        let user = select(vec![0u64, 1, 7, u64::MAX]);
        prop_oneof![
            1 => (kind_s(), any::<bool>()).prop_map(|(kind, not_in_hm)| Op::RegisterType { kind, not_in_hm }),
            4 => (type_index_s(s), user.clone(), any::<bool>(), select(vec![1u8, 1, 1, 1, 4, 12, 30]))
                .prop_map(|(ty, user, described, count)| Op::Create { ty, user, described, count }),
            2 => handler_index_s(s).prop_map(|h| Op::Dup { h }),
            6 => (handler_index_s(s), range_s(s)).prop_map(|(h, (first, last))| Op::RegisterEx { h, first, last }),
            10 => (range_s(s), type_index_s(s), user.clone(), any::<bool>())
                .prop_map(|((first, last), ty, user, described)| Op::Register { first, last, ty, user, described }),
            // Sub-page Write handlers next to existing handlers and inside a few shared pages:
            // the edge-page paths of registration and deregistration.
            6 => (subpage_s(s), user.clone())
                .prop_map(|((first, last), user)| Op::Register { first, last, ty: 0, user, described: false }),
            // Mmio handlers over the MMIO range: the only place aliases can exist.
            6 => (0..MMIO_PAGES, 1u64..=4, user.clone())
                .prop_map(|(p, n, user)| Op::Register { first: MMIO + (p << 12), last: MMIO + ((p + n) << 12) - 1, ty: 3, user, described: false }),
            3 => handler_index_s(s).prop_map(|h| Op::DeregisterEx { h }),
            3 => handler_index_s(s).prop_map(|h| Op::Destroy { h }),
            6 => start_s(s, None).prop_map(|addr| Op::Deregister { addr }),
            1 => (start_s(s, None), user).prop_map(|(addr, user)| Op::ChangeUserArg { addr, user }),
            4 => start_s(s, None).prop_map(|addr| Op::Reset { addr }),
            3 => (start_s(s, Some(HandlerKind::Write)), 0..4usize, select(vec![0u32, 1, 3, 60, 64, 100, 200, u32::MAX]))
                .prop_map(|(addr, words, offset)| Op::ResetMmio2WithBitmap { addr, words, offset }),
            7 => prop_oneof![
                    3 => handler_page_s(s, Some(HandlerKind::Write)),
                    3 => handler_page_s(s, Some(HandlerKind::All)),
                    1 => handler_page_s(s, None),
                ].prop_map(|(addr, page)| Op::PageTempOff { addr, page }),
            8 => (handler_page_s(s, Some(HandlerKind::Mmio)), select(vec![0u32, 1, 1, 1, 2, 2, 2, 3]),
                  select(vec![0u64, 0, 0x1000, 0x1234, 0x2000, 0x3000, 0x3fff, 0x4000, 0x7000, 0x8000, u64::MAX]))
                .prop_map(|((addr, page), region, offset)| Op::PageAliasMmio2 { addr, page, region, offset }),
            3 => (handler_page_s(s, Some(HandlerKind::Mmio)), select(vec![0x5000u64, 0xdead_b000, 0xdead_b123, MAX_HOST_PHYS, MAX_HOST_PHYS + 1]))
                .prop_map(|((addr, page), host_phys)| Op::PageAliasHc { addr, page, host_phys }),
            5 => (alias_pages, select(vec![true, true, false]))
                .prop_map(|(page, accounting)| Op::ResetAliasedPage { page, accounting }),
            1 => Just(Op::VmReset),
            1 => addr_s(s).prop_map(|addr| Op::IsRegistered { addr }),
            1 => addr_s(s).prop_map(|addr| Op::IsAll { addr }),
            1 => addr_s(s).prop_map(|addr| Op::Lookup { addr }),
            1 => handler_index_s(s).prop_map(|h| Op::HandlerInfo { h }),
            1 => type_index_s(s).prop_map(|ty| Op::TypeConfig { ty }),
            1 => addr_s(s).prop_map(|addr| Op::Page { addr }),
        ]
        .boxed()
    }

    fn apply(mut s: RefState, op: &Op) -> RefState {
        s.outcome = s.side.perform(op);
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
        assert_eq!(sut.types, r.side.types, "type handles must be equal on both sides");
        sut
    }

    fn apply(mut sut: Self::SystemUnderTest, r: &RefState, op: Op) -> Self::SystemUnderTest {
        let outcome = sut.perform(&op);
        assert_eq!(outcome, r.outcome, "outcome of {op:?} (production left, model right)");
        let events = sut.api.platform_mut().take();
        assert_eq!(
            events, r.events,
            "platform events of {op:?} (production left, model right)"
        );
        assert_eq!(
            sut.created.len(),
            r.side.created.len(),
            "both sides created the same handlers"
        );
        sut
    }

    fn check_invariants(sut: &Self::SystemUnderTest, r: &RefState) {
        common::assert_same_state(&r.side.api, &sut.api, &"the last transition");
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
        let (mut s, ops, _) = tree.current();
        let mut max_live = 0;
        for op in ops {
            s = Reference::apply(s, &op);
            let name = format!("{op:?}")
                .split([' ', '{'])
                .next()
                .unwrap_or_default()
                .to_string();
            let err = match &s.outcome {
                Outcome::Op(Err(e)) | Outcome::Bitmap(Err(e), _) | Outcome::Type(Err(e)) => {
                    format!(" {e:?}")
                }
                Outcome::Ids(v) => v
                    .iter()
                    .find_map(|r| r.err())
                    .map_or(String::new(), |e| format!(" {e:?}")),
                _ => String::new(),
            };
            *mix.entry(format!("{name}{err}")).or_default() += 1;
            max_live = max_live.max(s.side.api.live_handlers());
        }
        exhausted += u32::from(max_live == s.side.api.capacity());
    }
    for (k, v) in mix {
        println!("{k:40} {v}");
    }
    println!("cases reaching capacity: {exhausted}/256");
}
