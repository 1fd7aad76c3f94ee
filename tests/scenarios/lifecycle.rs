//! Registration and its failures in validation order, deregistration and query failures,
//! the node lifecycle (create, dup, register_ex, deregister_ex, destroy), allocator
//! exhaustion and recovery, and a platform that maps nothing.

use pgmsim::{
    Error, HandlerKind, HandlerState as S, ManagerConfig, MemoryLayout, PhysHandlerApi, PlatformEvent, Status,
};
use pgmsim_testkit::call::{NodeView, TypeIx};
use pgmsim_testkit::{ApiCall, Outcome, RecordingPlatform};

use crate::common::upd;
use crate::harness::{create_as, dereg, reg, Call, Scenario};
use crate::{alias_world, ram, K};

/// A type index no side issued (past the end of the names).
const MADE_UP: TypeIx = 99;

#[test]
fn register_failures_leave_state_unchanged() {
    let layout = MemoryLayout::builder().ram(0, 8).ram(0x8000, 4).build().unwrap();
    let mut sc = Scenario::new("register failures, in validation order, change nothing", layout);
    let w = sc.ty(HandlerKind::Write, false, "write");
    let a = sc.ty(HandlerKind::All, false, "all");
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok(
        "register Write 0x2000..=0x27ff",
        Status::Success,
        reg(0x2000, 0x27ff, w, 0),
    );
    let cases = [
        (
            "register with a made-up type handle",
            Error::InvalidHandle,
            reg(0x4000, 0x4fff, MADE_UP, 0),
        ),
        (
            "register 0x4fff..=0x4000 (first > last)",
            Error::InvalidParameter,
            reg(0x4fff, 0x4000, w, 0),
        ),
        (
            "register 0x0..=0x1_0000_0000 (over 4 GiB, checked before the RAM range)",
            Error::InvalidParameter,
            reg(0, 0x1_0000_0000, w, 0),
        ),
        (
            "register All 0x4000..=0x47ff (not whole pages)",
            Error::InvalidParameter,
            reg(0x4000, 0x47ff, a, 0),
        ),
        (
            "register Mmio 0x4800..=0x4fff (not whole pages)",
            Error::InvalidParameter,
            reg(0x4800, 0x4fff, mmio, 0),
        ),
        (
            "register 0x20000..=0x20fff (no RAM range)",
            Error::NoRamRange,
            reg(0x20000, 0x20fff, w, 0),
        ),
        (
            "register 0x7000..=0x8fff (straddles two RAM ranges)",
            Error::NoRamRange,
            reg(0x7000, 0x8fff, w, 0),
        ),
        (
            "register 0x1000..=0x2000 (overlaps the handler by one byte)",
            Error::Conflict,
            reg(0x1000, 0x2000, w, 0),
        ),
        (
            "register 0x27ff..=0x2fff (overlaps its last byte)",
            Error::Conflict,
            reg(0x27ff, 0x2fff, w, 0),
        ),
    ];
    for (text, error, call) in cases {
        sc.fails(text, error, call);
    }
    sc.ok(
        "register 0x2800..=0x2fff (adjacent is fine)",
        Status::Success,
        reg(0x2800, 0x2fff, w, 0),
    );
    sc.snapshot("register_failures_leave_state_unchanged");
    register_validation_order(&mut sc, w, a);
}

/// More of the order and the range rules, on the world of
/// [`register_failures_leave_state_unchanged`].
fn register_validation_order(sc: &mut Scenario, w: TypeIx, a: TypeIx) {
    sc.fails(
        "a bad handle comes before a bad range",
        Error::InvalidHandle,
        reg(0x5000, 0x4fff, MADE_UP, 0),
    );
    sc.ok(
        "one byte (deliberate difference 3)",
        Status::Success,
        reg(0x5000, 0x5000, w, 0),
    );
    assert_eq!(sc.handler(0x5000).page_count, 1);
    let nihm = sc.ty(HandlerKind::Write, true, "write-nohm");
    sc.fails(
        "not-in-HM needs whole pages",
        Error::InvalidParameter,
        reg(0x3000, 0x37ff, nihm, 0),
    );
    sc.fails("over 4 GiB", Error::InvalidParameter, reg(0x3000, 0x1_0000_3fff, a, 0));
    let text = "exactly 4 GiB passes the span check";
    sc.fails(text, Error::NoRamRange, reg(0x3000, 0x1_0000_2fff, a, 0));
    sc.fails("the very last byte", Error::NoRamRange, reg(u64::MAX, u64::MAX, w, 0));
    sc.ok(
        "create an All node",
        Status::Success,
        ApiCall::Create {
            ty: a,
            user: 1,
            described: false,
        },
    );
    let register_ex = |first, last| ApiCall::RegisterEx { h: 0, first, last };
    sc.ok("register_ex it", Status::Success, register_ex(0x6000, 0x6fff));
    sc.fails("register_ex it again", Error::WrongOrder, register_ex(0x7000, 0x7fff));
    sc.fails(
        "registered comes before a bad range",
        Error::WrongOrder,
        register_ex(5, 4),
    );
}

/// The answer of `lookup` as the table shows it.
fn lookup_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Lookup(Some(h)) => format!("Some({:#x}..={:#x} user {:#x})", h.key, h.key_last, h.user),
        other => format!("{other:?}"),
    }
}

#[test]
fn deregister_and_query_failures_leave_state_unchanged() {
    let mut sc = Scenario::new("deregister / change_user_arg failures change nothing; queries", ram(8));
    let w = sc.ty(HandlerKind::Write, false, "write");
    let a = sc.ty(HandlerKind::All, false, "all");
    sc.ok(
        "register Write 0x1000..=0x2fff user 0x10",
        Status::Success,
        reg(0x1000, 0x2fff, w, 0x10),
    );
    sc.ok(
        "register All 0x4000..=0x4fff user 0x20",
        Status::Success,
        reg(0x4000, 0x4fff, a, 0x20),
    );
    let text = "deregister 0x2000 (inside, not the start: deliberate difference D1)";
    sc.fails(text, Error::NotFound, dereg(0x2000));
    sc.fails("deregister 0x6000 (no handler)", Error::NotFound, dereg(0x6000));
    let change = |addr, user| ApiCall::ChangeUserArg { addr, user };
    sc.fails("change user arg via 0x1800", Error::NotFound, change(0x1800, 0x99));
    sc.ok(
        "change user arg of 0x1000 to 0x11",
        Status::Success,
        change(0x1000, 0x11),
    );
    sc.expect_events(&[]);
    assert_eq!(sc.handler(0x1800).user, 0x11);
    let steps = [
        (
            "is_registered(0x2abc)",
            ApiCall::IsRegistered { addr: 0x2abc },
            Outcome::Registered(true),
        ),
        (
            "is_registered(0x3000)",
            ApiCall::IsRegistered { addr: 0x3000 },
            Outcome::Registered(false),
        ),
        (
            "is_all(0x1000)",
            ApiCall::IsAll { addr: 0x1000 },
            Outcome::IsAll(Ok(false)),
        ),
        (
            "is_all(0x4fff)",
            ApiCall::IsAll { addr: 0x4fff },
            Outcome::IsAll(Ok(true)),
        ),
    ];
    for (text, call, want) in steps {
        assert_eq!(sc.step(text, call), want, "{text}");
    }
    let text = "is_all(0x3000) (no handler: deliberate difference D1)";
    sc.fails(text, Error::NotFound, ApiCall::IsAll { addr: 0x3000 });
    let found = sc.step_shown("lookup(0x2fff)", ApiCall::Lookup { addr: 0x2fff }, |o, _| {
        lookup_text(o)
    });
    assert_eq!(lookup_text(&found), "Some(0x1000..=0x2fff user 0x11)");
    sc.snapshot("deregister_and_query_failures_leave_state_unchanged");
    queries_for_each_kind(&mut sc);
}

/// `is_all` for each kind and `is_registered` / `lookup` at any address inside a handler, on
/// the world of [`deregister_and_query_failures_leave_state_unchanged`].
fn queries_for_each_kind(sc: &mut Scenario) {
    let nihm = sc.ty(HandlerKind::Write, true, "write-nohm");
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok(
        "register not-in-HM Write 0x6000..=0x6fff",
        Status::Success,
        reg(0x6000, 0x6fff, nihm, 0),
    );
    sc.ok(
        "register Mmio over RAM 0x7000..=0x7fff",
        Status::Success,
        reg(0x7000, 0x7fff, mmio, 0),
    );
    assert_eq!(sc.mgr().page(0x6000).map(|d| d.not_in_hm()), Some(true));
    let kinds = [
        (0x4fff, Ok(true)),
        (0x2100, Ok(false)),
        (0x6000, Ok(false)),
        (0x7800, Ok(true)),
    ];
    for (addr, want) in kinds
        .into_iter()
        .chain([(0x3000, Err(Error::NotFound)), (u64::MAX, Err(Error::NotFound))])
    {
        assert_eq!(
            sc.step("is_all", ApiCall::IsAll { addr }),
            Outcome::IsAll(want),
            "is_all({addr:#x})"
        );
    }
    for (addr, inside) in [
        (0x1000, true),
        (0x1fff, true),
        (0x2000, true),
        (0x2fff, true),
        (0xfff, false),
        (0x3000, false),
    ] {
        assert_eq!(
            sc.step("is_registered", ApiCall::IsRegistered { addr }),
            Outcome::Registered(inside)
        );
        let Outcome::Lookup(found) = sc.step("lookup", ApiCall::Lookup { addr }) else {
            panic!("lookup")
        };
        assert_eq!(found.map(|h| h.key), inside.then_some(0x1000), "lookup({addr:#x})");
    }
}

/// The node view of creation index `h`.
fn node_view(sc: &mut Scenario, h: u32) -> NodeView {
    match sc.step("handler_info", ApiCall::HandlerInfo { h }) {
        Outcome::Info(Ok(view)) => view,
        other => panic!("handler_info({h}): {other:?}"),
    }
}

#[test]
fn handler_lifecycle_create_dup_register_ex_deregister_ex_destroy() {
    let title = "handler node lifecycle: create, dup, register_ex, deregister_ex, destroy";
    let mut sc = Scenario::new(title, ram(8));
    let w = sc.ty(HandlerKind::Write, false, "write");
    let a = sc.ty(HandlerKind::All, false, "all");
    let (first, dup, write) = (0, 1, 2);
    sc.step("create All user 0x1 \"first\"", create_as(a, 1, "first"));
    sc.step("dup first", ApiCall::Dup { h: first });
    sc.step(
        "create Write user 0x3 (type description)",
        ApiCall::Create {
            ty: w,
            user: 3,
            described: false,
        },
    );
    sc.fails(
        "create with a made-up type",
        Error::InvalidHandle,
        ApiCall::Create {
            ty: MADE_UP,
            user: 0,
            described: false,
        },
    );
    let register_ex = |h, first, last| ApiCall::RegisterEx { h, first, last };
    sc.ok(
        "register_ex first 0x1000..=0x1fff",
        Status::Success,
        register_ex(first, 0x1000, 0x1fff),
    );
    sc.ok(
        "register_ex dup 0x3000..=0x3fff",
        Status::Success,
        register_ex(dup, 0x3000, 0x3fff),
    );
    sc.fails(
        "register_ex first again",
        Error::WrongOrder,
        register_ex(first, 0x5000, 0x5fff),
    );
    let text = "register_ex Write node over dup (conflict)";
    sc.fails(text, Error::Conflict, register_ex(write, 0x3800, 0x3fff));
    sc.fails(
        "destroy first while registered",
        Error::WrongOrder,
        ApiCall::Destroy { h: first },
    );
    lifecycle_teardown(&mut sc);
    sc.snapshot("handler_lifecycle_create_dup_register_ex_deregister_ex_destroy");
}

/// The second half of the node lifecycle: `deregister_ex` keeps the node (it registers again),
/// `destroy` frees it for good (its id stays stale for every call), `deregister` frees a
/// registered node, and an unregistered node answers `handler_info`.
fn lifecycle_teardown(sc: &mut Scenario) {
    let (first, dup, write) = (0, 1, 2);
    let register_ex = |h, first, last| ApiCall::RegisterEx { h, first, last };
    sc.ok(
        "deregister_ex first (node kept)",
        Status::Success,
        ApiCall::DeregisterEx { h: first },
    );
    let text = "deregister_ex first again (not registered)";
    sc.fails(text, Error::NotFound, ApiCall::DeregisterEx { h: first });
    let text = "register_ex first again at 0x5000..=0x6fff";
    sc.ok(text, Status::Success, register_ex(first, 0x5000, 0x6fff));
    sc.ok(
        "deregister_ex first",
        Status::Success,
        ApiCall::DeregisterEx { h: first },
    );
    sc.ok("destroy first", Status::Success, ApiCall::Destroy { h: first });
    sc.fails(
        "destroy first again (stale id)",
        Error::InvalidHandle,
        ApiCall::Destroy { h: first },
    );
    sc.fails("dup of the stale id", Error::InvalidHandle, ApiCall::Dup { h: first });
    let text = "register_ex with the stale id";
    sc.fails(text, Error::InvalidHandle, register_ex(first, 0x5000, 0x5fff));
    let text = "deregister dup via its start 0x3000 (frees the node)";
    sc.ok(text, Status::Success, dereg(0x3000));
    sc.fails(
        "handler_info of the freed dup",
        Error::InvalidHandle,
        ApiCall::HandlerInfo { h: dup },
    );
    let text = "handler_info of the unregistered Write node";
    let info = sc.step_shown(text, ApiCall::HandlerInfo { h: write }, |o, _| match o {
        Outcome::Info(Ok(v)) => {
            let registered = v.registered.is_some();
            format!(
                "Ok(registered {registered}, {:?}, user {:#x}, {:?})",
                v.kind, v.user, v.description
            )
        }
        other => format!("{other:?}"),
    });
    assert!(matches!(info, Outcome::Info(Ok(_))));
    sc.ok("destroy the Write node", Status::Success, ApiCall::Destroy { h: write });
    assert_eq!(sc.mgr().live_handlers(), 0);
}

/// What `create` and `dup` make: the type's description unless one is given, the user
/// argument, no registration; a dup of a registered node copies type, user and description
/// and is itself unregistered.
#[test]
fn created_and_duplicated_nodes() {
    let mut sc = Scenario::new("created and duplicated nodes", ram(8));
    let w = sc.ty(HandlerKind::Write, false, "write");
    let a = sc.ty(HandlerKind::All, false, "all");
    sc.ok(
        "create Write user 11",
        Status::Success,
        ApiCall::Create {
            ty: w,
            user: 11,
            described: false,
        },
    );
    sc.ok("create All user 12 \"mine\"", Status::Success, create_as(a, 12, "mine"));
    let (v0, v1) = (node_view(&mut sc, 0), node_view(&mut sc, 1));
    assert_eq!(
        (v0.ty, v0.kind, v0.user, &*v0.description, &v0.registered),
        (Some(w), HandlerKind::Write, 11, "write", &None)
    );
    assert_eq!(
        (v1.ty, v1.kind, v1.user, &*v1.description, &v1.registered),
        (Some(a), HandlerKind::All, 12, "mine", &None)
    );
    assert_eq!(
        (sc.mgr().live_handlers(), sc.mgr().handlers().len()),
        (2, 0),
        "created nodes are not registered"
    );
    sc.ok(
        "register_ex node 1",
        Status::Success,
        ApiCall::RegisterEx {
            h: 1,
            first: 0x3000,
            last: 0x3fff,
        },
    );
    sc.ok("dup the registered node", Status::Success, ApiCall::Dup { h: 1 });
    let copy = node_view(&mut sc, 2);
    assert_eq!(
        (copy.ty, copy.user, &*copy.description, &copy.registered),
        (Some(a), 12, "mine", &None)
    );
    sc.ok(
        "register_ex the copy",
        Status::Success,
        ApiCall::RegisterEx {
            h: 2,
            first: 0x4000,
            last: 0x4fff,
        },
    );
    let registered = node_view(&mut sc, 2).registered.expect("registered");
    assert_eq!(
        (registered.key, registered.key_last, registered.page_count),
        (0x4000, 0x4fff, 1)
    );
}

/// Registrations of one-page handlers of type `ty` on `pages`, as one batch step shown as
/// `k of n Ok(Success)`; returns `k of n`.
fn register_pages(sc: &mut Scenario, text: &str, pages: impl Iterator<Item = u64>, ty: TypeIx) -> String {
    let calls: Vec<Call> = pages.map(|p| reg(p * K, p * K + K - 1, ty, p)).collect();
    let n = calls.len();
    let outcomes = sc.batch(text, calls, |outcomes| {
        let ok = outcomes
            .iter()
            .filter(|o| o.status() == Some(Ok(Status::Success)))
            .count();
        format!("{ok} of {n} Ok(Success)")
    });
    let ok = outcomes
        .iter()
        .filter(|o| o.status() == Some(Ok(Status::Success)))
        .count();
    format!("{ok} of {n}")
}

#[test]
fn allocator_exhaustion_capacity_32() {
    let config = ManagerConfig {
        max_handlers: 32,
        ..ManagerConfig::default()
    };
    let title = "handler allocator with capacity 32: exhaustion is an error, freeing one makes room";
    let mut sc = Scenario::with(title, ram(48), config, RecordingPlatform::mapped());
    let w = sc.ty(HandlerKind::Write, false, "write");
    let text = "register 32 one-page Write handlers on pages 0-31 (one batch step)";
    assert_eq!(register_pages(&mut sc, text, 0..32, w), "32 of 32");
    assert_eq!((sc.mgr().capacity(), sc.mgr().live_handlers()), (32, 32));
    sc.fails(
        "register a 33rd on page 40",
        Error::OutOfResources,
        reg(40 * K, 41 * K - 1, w, 40),
    );
    let text = "register over page 3 (full allocator is checked before the range)";
    sc.fails(text, Error::OutOfResources, reg(3 * K, 4 * K - 1, w, 0));
    sc.fails(
        "create",
        Error::OutOfResources,
        ApiCall::Create {
            ty: w,
            user: 0,
            described: false,
        },
    );
    sc.ok("deregister page 5's handler", Status::Success, dereg(5 * K));
    sc.ok(
        "register on page 40 now fits",
        Status::Success,
        reg(40 * K, 41 * K - 1, w, 40),
    );
    sc.fails(
        "register on page 41 (full again)",
        Error::OutOfResources,
        reg(41 * K, 42 * K - 1, w, 41),
    );
    sc.snapshot("allocator_exhaustion_capacity_32");
    let all = allocator_refills(&mut sc, w);
    allocator_nodes(&mut sc, all);
}

/// Freeing every third handler makes room for exactly that many sub-page ones; draining the
/// allocator completely and refilling it works. Returns the All type it registers.
fn allocator_refills(sc: &mut Scenario, w: TypeIx) -> TypeIx {
    for p in (0..32u64).step_by(3) {
        sc.ok("deregister", Status::Success, dereg(p * K));
    }
    assert_eq!(sc.mgr().live_handlers(), 32 - 11);
    for p in (32..48u64).filter(|&p| p != 40).take(11) {
        sc.ok(
            "register the upper half of a page",
            Status::Success,
            reg(p * K + 0x800, p * K + 0xfff, w, 0),
        );
    }
    sc.fails("full again", Error::OutOfResources, reg(3 * K, 4 * K - 1, w, 0));
    let calls = sc.mgr().handlers().iter().map(|h| dereg(h.key)).collect();
    sc.batch("drain", calls, |o| format!("{} deregistered", o.len()));
    assert_eq!(sc.mgr().live_handlers(), 0);
    let all = sc.ty(HandlerKind::All, false, "all");
    assert_eq!(register_pages(sc, "refill", 0..32, all), "32 of 32");
    let calls = sc.mgr().handlers().iter().map(|h| dereg(h.key)).collect();
    sc.batch("drain again", calls, |o| format!("{} deregistered", o.len()));
    all
}

/// Exhaustion by nodes: creation, registration and dup fail with `OutOfResources` (before
/// the range is looked at); existing nodes still register; one destroy makes room for
/// exactly one node, in the freed slot under a new id; the destroyed id stays invalid.
fn allocator_nodes(sc: &mut Scenario, all: TypeIx) {
    sc.ok("register one handler", Status::Success, reg(K, 2 * K - 1, all, 0));
    let creations = (0..33)
        .map(|user| {
            Call::Api(ApiCall::Create {
                ty: all,
                user,
                described: false,
            })
        })
        .collect();
    let outcomes = sc.batch("33 creations", creations, |o| format!("{} creations", o.len()));
    assert_eq!(outcomes.iter().filter(|o| o.error().is_none()).count(), 31);
    assert_eq!(outcomes.last(), Some(&Outcome::Created(Err(Error::OutOfResources))));
    sc.fails("register", Error::OutOfResources, reg(2 * K, 3 * K - 1, all, 0));
    sc.fails(
        "the range comes after the capacity",
        Error::OutOfResources,
        reg(0x2000, 0x1fff, all, 0),
    );
    sc.fails("dup", Error::OutOfResources, ApiCall::Dup { h: 0 });
    let text = "existing nodes still register";
    sc.ok(
        text,
        Status::Success,
        ApiCall::RegisterEx {
            h: 5,
            first: 0x2000,
            last: 0x2fff,
        },
    );
    let freed = sc.node(7);
    sc.ok("destroy node 7", Status::Success, ApiCall::Destroy { h: 7 });
    sc.ok("dup: room for one", Status::Success, ApiCall::Dup { h: 0 });
    assert_eq!(
        (sc.node(31).slot(), sc.node(31) != freed),
        (freed.slot(), true),
        "the freed slot, a new id"
    );
    sc.fails("dup: full again", Error::OutOfResources, ApiCall::Dup { h: 0 });
    sc.ok("deregister the handler", Status::Success, dereg(K));
    sc.ok("register in its place", Status::Success, reg(3 * K, 4 * K - 1, all, 0));
    sc.fails(
        "the destroyed id stays stale",
        Error::InvalidHandle,
        ApiCall::HandlerInfo { h: 7 },
    );
    sc.fails(
        "also for register_ex",
        Error::InvalidHandle,
        ApiCall::RegisterEx {
            h: 7,
            first: 0x4000,
            last: 0x4fff,
        },
    );
}

#[test]
fn unmapped_pages_need_no_tlb_flush() {
    let title = "platform reports nothing mapped: PTE updates but no TLB flush";
    let mut sc = Scenario::with(title, ram(8), ManagerConfig::default(), RecordingPlatform::default());
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok(
        "register 0x1000..=0x2fff Write",
        Status::Success,
        reg(0x1000, 0x2fff, w, 0),
    );
    sc.expect_events(&[upd(0x1000, S::Write, false), upd(0x2000, S::Write, false)]);
    sc.ok(
        "temp-off 0x2000",
        Status::Success,
        ApiCall::PageTempOff {
            addr: 0x1000,
            page: 0x2000,
        },
    );
    sc.ok("reset 0x1000", Status::Success, ApiCall::Reset { addr: 0x1000 });
    sc.expect_events(&[upd(0x2000, S::Write, false)]);
    sc.snapshot("unmapped_pages_need_no_tlb_flush");
    // Recalculating a shared edge page flushes exactly when the platform says so (the seed
    // reads an uninitialised flag there: deliberate difference D4).
    sc.ok("register 0x4000..=0x47ff", Status::Success, reg(0x4000, 0x47ff, w, 0));
    sc.ok("register 0x4800..=0x4fff", Status::Success, reg(0x4800, 0x4fff, w, 0));
    sc.ok("deregister 0x4800", Status::Success, dereg(0x4800));
    sc.expect_events(&[upd(0x4000, S::Write, false)]);
}

/// With a platform that maps nothing, upgrades update PTEs but never flush TLBs, while alias
/// resets still flush unconditionally.
#[test]
fn unmapped_platform_still_flushes_for_alias_resets() {
    let title = "platform reports nothing mapped: alias resets flush anyway";
    let mut sc = Scenario::with(
        title,
        alias_world().0,
        ManagerConfig::default(),
        RecordingPlatform::default(),
    );
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok(
        "register Mmio 0x10000..=0x11fff",
        Status::Success,
        reg(0x10000, 0x11fff, mmio, 0),
    );
    sc.expect_events(&[upd(0x10000, S::All, false), upd(0x11000, S::All, false)]);
    let alias = ApiCall::PageAliasMmio2 {
        addr: 0x10000,
        page: 0x10000,
        region: 1,
        offset: 0,
    };
    sc.ok("alias 0x10000", Status::Success, alias);
    sc.ok("reset", Status::Success, ApiCall::Reset { addr: 0x10000 });
    sc.expect_events(&[
        upd(0x10000, S::Disabled, true),
        PlatformEvent::FlushAllTlbs,
        crate::common::invalidate(0x10000),
        PlatformEvent::FlushEmulatorPhysTlbs,
    ]);
}
