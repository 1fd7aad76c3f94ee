//! Hardening: no input makes any method panic, and every failed operation leaves the whole
//! state exactly as it was and calls nothing on the platform.
//!
//! Both drivers speak the testkit's call vocabulary ([`ApiCall`]) and run every call through
//! [`apply_checked`], the one shared proof that a failed call changed nothing (state digest,
//! handler list, live count, and a bitmap pre-filled with a pattern left untouched). Hostile
//! ids and type handles are named like any other: they are entries of [`Names`].
//!
//! Two drivers: a systematic cross product of hostile arguments, and a seeded random sweep of
//! ~20,000 calls with arguments biased towards the interesting values (handler edges, range
//! edges, stale ids), checking `check_sync` after every success.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use pgmsim::{
    HandlerId, HandlerKind, HandlerTypeConfig, HandlerTypeHandle, Hpa, Manager, ManagerConfig, MemoryLayout, NemMode,
    PhysHandlerApi, ShadowUpdate, Status,
};
use pgmsim_testkit::call::{apply_checked, NodeIx, TypeIx};
use pgmsim_testkit::{ApiCall, Names, Outcome, RecordingPlatform};

const RAM2: u64 = 0x4_0000;
const MMIO: u64 = 0x10_0000;
const MMIO2_GPA: u64 = 0x20_0000;
const HIGH: u64 = 0x1_0000_0000;
const NOWHERE: u64 = 0x80_0000;

/// Type indices of the world's types.
const WRITE: TypeIx = 0;
const ALL: TypeIx = 1;
const MMIO_TY: TypeIx = 2;
const WRITE_NIHM: TypeIx = 3;
/// Every bitmap starts with this pattern, so a failed call that wrote a bit shows.
const BITMAP_FILL: u64 = 0x8000_0000_0000_0001;

struct W {
    m: Manager<RecordingPlatform>,
    names: Names,
}

/// RAM, a second RAM range right after it, an MMIO range, MMIO2 region 1 mapped, region 2
/// unmapped, region 3 mapped above 4 GiB; types Write, All, Mmio, Write not-in-HM.
fn world(nem: NemMode, max_handlers: u32) -> W {
    let b = MemoryLayout::builder().ram(0, 64).ram(RAM2, 16).mmio(MMIO, 16);
    let (b, a) = b.mmio2_region(8);
    let (b, _unmapped) = b.mmio2_region(4);
    let (b, c) = b.mmio2_region(16);
    let l = b.map_mmio2(a, MMIO2_GPA).map_mmio2(c, HIGH).build().unwrap();
    let cfg = ManagerConfig {
        max_handlers,
        nem,
        ..ManagerConfig::default()
    };
    let mut m = Manager::new(l, cfg, RecordingPlatform::mapped()).unwrap();
    let mut names = Names::default();
    for (kind, nihm) in [
        (HandlerKind::Write, false),
        (HandlerKind::All, false),
        (HandlerKind::Mmio, false),
        (HandlerKind::Write, true),
    ] {
        let mut c = HandlerTypeConfig::new(kind, "t");
        c.not_in_hm = nihm;
        names.types.push(m.register_type(c).unwrap());
    }
    W { m, names }
}

impl W {
    /// Runs one call through [`apply_checked`]: on failure nothing may have changed and the
    /// platform must not have been called; on success `check_sync` must be clean (after the
    /// caller's own accounting for a reset of an aliased page without accounting, which this
    /// settles as the seed's callers do).
    fn run(&mut self, call: ApiCall) -> Outcome {
        self.m.platform_mut().take();
        let digest = |m: &Manager<RecordingPlatform>| m.state_digest();
        let outcome = apply_checked(&mut self.m, &mut self.names, &call, &digest).unwrap_or_else(|e| panic!("{e}"));
        if let Some(e) = outcome.error() {
            let events = &self.m.platform().events;
            assert!(
                events.is_empty(),
                "{call:?} failed with {e:?} but called the platform: {events:?}"
            );
        } else if call.mutates() {
            if let ApiCall::ResetAliasedPage {
                page,
                accounting: false,
            } = call
            {
                if self.m.is_registered(page) {
                    self.m.settle_unaccounted_alias(page).unwrap();
                }
            }
            let mismatches = self.m.check_sync();
            assert!(
                mismatches.is_empty(),
                "{call:?} gave {outcome:?} but broke the state: {mismatches:?}"
            );
        }
        outcome
    }

    /// Runs `call`, which must succeed plainly.
    fn ok(&mut self, call: ApiCall) {
        let what = format!("{call:?}");
        assert_eq!(self.run(call).status(), Some(Ok(Status::Success)), "{what}");
    }

    /// Every query at `addr`, through the vocabulary, agreeing with each other and with the
    /// manager's own fast paths (hinted lookup, range lookup, plain tree walks).
    fn queries(&mut self, addr: u64) {
        let Outcome::Registered(reg) = self.run(ApiCall::IsRegistered { addr }) else {
            panic!("is_registered")
        };
        let Outcome::Lookup(found) = self.run(ApiCall::Lookup { addr }) else {
            panic!("lookup")
        };
        let Outcome::IsAll(is_all) = self.run(ApiCall::IsAll { addr }) else {
            panic!("is_all")
        };
        self.run(ApiCall::Page { addr });
        assert_eq!(reg, found.is_some());
        assert_eq!(reg, is_all.is_ok());
        assert_eq!(reg, self.m.lookup_range(addr).is_some());
        let by_tree = self
            .m
            .lookup_matching_or_above(addr)
            .filter(|h| h.key <= addr)
            .map(|h| h.key);
        assert_eq!(found.map(|h| h.key), by_tree, "lookup({addr:#x})");
        assert_eq!(self.m.handler_id_at(addr).is_some(), reg);
        let _ = self.m.lookup_matching_or_below(addr);
    }
}

/// A world with handlers of every kind, temp-off pages and aliases; its named nodes are an
/// unregistered node, a stale one, a registered one and seven ids no node has.
fn populated(nem: NemMode) -> W {
    let mut w = world(nem, 64);
    let reg = |first: u64, last: u64, ty: TypeIx, user: u64| ApiCall::Register {
        first,
        last,
        ty,
        user,
        described: false,
    };
    w.ok(reg(0x1000, 0x17ff, WRITE, 1));
    w.ok(reg(0x1800, 0x2fff, WRITE, 2));
    w.ok(reg(0x4000, 0x5fff, ALL, 3));
    w.ok(ApiCall::PageTempOff {
        addr: 0x4000,
        page: 0x5000,
    });
    w.ok(reg(0x6000, 0x6fff, WRITE_NIHM, 4));
    w.ok(reg(MMIO, MMIO + 0x3fff, MMIO_TY, 5));
    if nem != NemMode::Exclusive {
        w.ok(ApiCall::PageAliasMmio2 {
            addr: MMIO,
            page: MMIO + 0x1000,
            region: 1,
            offset: 0,
        });
        w.ok(ApiCall::PageAliasHc {
            addr: MMIO,
            page: MMIO + 0x2000,
            host: Hpa(0x7000_0000),
        });
    }
    w.ok(reg(MMIO2_GPA, MMIO2_GPA + 0x7fff, WRITE, 6));
    w.ok(ApiCall::PageTempOff {
        addr: MMIO2_GPA,
        page: MMIO2_GPA + 0x3000,
    });
    w.ok(reg(HIGH, HIGH + 0xffff, WRITE, 7));
    w.ok(reg(0x3ffff, 0x3ffff, WRITE, 8));
    w.ok(ApiCall::Create {
        ty: WRITE,
        user: 9,
        described: false,
    }); // node 0: unregistered
    w.ok(ApiCall::Create {
        ty: ALL,
        user: 10,
        described: false,
    }); // node 1: stale
    w.ok(ApiCall::Destroy { h: 1 });
    let registered = w.m.handler_id_at(0x4000).unwrap(); // node 2: registered
    w.names.nodes.extend([
        registered,
        HandlerId(0),
        HandlerId(u64::MAX),
        HandlerId(0x1234_5678_9abc_def0),
        HandlerId(registered.0 ^ (1 << 32)),
        HandlerId(registered.0 + 1),
        HandlerId(63),
        HandlerId(64),
    ]);
    assert_eq!(w.m.check_sync(), vec![]);
    w
}

fn hostile_addresses(m: &Manager<RecordingPlatform>) -> Vec<u64> {
    let mut v = vec![
        0,
        1,
        0xfff,
        0x3ffff,
        RAM2 - 1,
        RAM2,
        RAM2 + 0xffff,
        RAM2 + 0x10000,
        MMIO - 1,
        MMIO + 0xffff,
        MMIO + 0x10000,
        MMIO2_GPA + 0x7fff,
        MMIO2_GPA + 0x8000,
        HIGH - 1,
        HIGH + 0xffff,
        NOWHERE,
        1 << 32,
        (1 << 52) - 1,
        1 << 52,
        u64::MAX - 0xfff,
        u64::MAX - 1,
        u64::MAX,
        0xdead_beef_cafe_f00d,
    ];
    for h in m.handlers() {
        v.extend([
            h.key,
            h.key + 1,
            h.key_last,
            h.key_last.wrapping_add(1),
            h.key.wrapping_sub(1),
        ]);
    }
    v.sort();
    v.dedup();
    v
}

/// The hostile argument sets of one world.
struct Hostile {
    addrs: Vec<u64>,
    /// Handler starts of the populated world, and three addresses where none starts.
    keys: Vec<u64>,
    /// Named nodes (the ten of [`populated`]).
    nodes: NodeIx,
    /// Type indices: the four types and four handles nobody issued.
    types: Vec<TypeIx>,
    regions: [u32; 6],
    region_offsets: [u64; 8],
    hosts: [u64; 5],
    bitmap_offsets: [u32; 8],
}

impl Hostile {
    fn of(w: &mut W) -> Hostile {
        let first = w.names.types[1];
        w.names.types.extend([
            HandlerTypeHandle(0),
            HandlerTypeHandle::NIL,
            HandlerTypeHandle(first.0 ^ 0x40),
            HandlerTypeHandle(7),
        ]);
        Hostile {
            addrs: hostile_addresses(&w.m),
            keys: w
                .m
                .handlers()
                .iter()
                .map(|h| h.key)
                .chain([0, NOWHERE, u64::MAX])
                .collect(),
            nodes: w.names.nodes.len() as NodeIx,
            types: (0..8).collect(),
            regions: [1, 2, 3, 0, 4, u32::MAX],
            region_offsets: [0, 0xfff, 0x3000, 0x7fff, 0x8000, 0x10000, 1 << 40, u64::MAX],
            hosts: [0, 0x1000, 0xffff_ffff_f000, 1 << 48, u64::MAX],
            bitmap_offsets: [0, 1, 63, 64, 1 << 31, u32::MAX - 64, u32::MAX - 1, u32::MAX],
        }
    }

    /// Calls taking a node: info, dup, register_ex over odd ranges, destroy twice.
    fn nodes(&self, w: &mut W) -> usize {
        let mut errors = 0;
        let ranges = [
            (0x9000u64, 0x9fffu64),
            (5, 4),
            (0, u64::MAX),
            (u64::MAX, u64::MAX),
            (0x3f000, RAM2 + 0xfff),
        ];
        for h in 0..self.nodes {
            w.run(ApiCall::HandlerInfo { h });
            errors += w.run(ApiCall::Dup { h }).error().is_some() as usize;
            for (first, last) in ranges {
                errors += w.run(ApiCall::RegisterEx { h, first, last }).error().is_some() as usize;
            }
        }
        for h in 0..self.nodes {
            errors += w.run(ApiCall::Destroy { h }).error().is_some() as usize;
            errors += w.run(ApiCall::Destroy { h }).error().is_some() as usize;
        }
        errors
    }

    /// Every address pair for register / temp-off / both aliases.
    fn pairs(&self, w: &mut W) -> usize {
        let mut errors = 0;
        for &a in &self.addrs {
            for &b in &self.addrs {
                for &ty in &self.types {
                    let call = ApiCall::Register {
                        first: a,
                        last: b,
                        ty,
                        user: 0,
                        described: false,
                    };
                    errors += w.run(call).error().is_some() as usize;
                }
                errors += w.run(ApiCall::PageTempOff { addr: a, page: b }).error().is_some() as usize;
                let host = Hpa(self.hosts[(a ^ b) as usize % self.hosts.len()]);
                errors += w.run(ApiCall::PageAliasHc { addr: a, page: b, host }).error().is_some() as usize;
                let region = self.regions[a as usize % self.regions.len()];
                let offset = self.region_offsets[b as usize % self.region_offsets.len()];
                let call = ApiCall::PageAliasMmio2 {
                    addr: a,
                    page: b,
                    region,
                    offset,
                };
                errors += w.run(call).error().is_some() as usize;
            }
        }
        errors
    }

    /// The aliases' full region x offset x host product, at every handler start of the
    /// populated world.
    fn aliases(&self, w: &mut W) -> usize {
        let mut errors = 0;
        for &addr in &self.keys {
            for &page in &self.addrs {
                for host in self.hosts {
                    let call = ApiCall::PageAliasHc {
                        addr,
                        page,
                        host: Hpa(host),
                    };
                    errors += w.run(call).error().is_some() as usize;
                }
                for region in self.regions {
                    for offset in self.region_offsets {
                        let call = ApiCall::PageAliasMmio2 {
                            addr,
                            page,
                            region,
                            offset,
                        };
                        errors += w.run(call).error().is_some() as usize;
                    }
                }
            }
        }
        errors
    }

    /// Single-address calls: user argument, bitmap reset, alias resets, reset, queries.
    fn singles(&self, w: &mut W) -> usize {
        let mut errors = 0;
        for &addr in &self.addrs {
            errors += w.run(ApiCall::ChangeUserArg { addr, user: u64::MAX }).error().is_some() as usize;
            for words in [0u32, 1, 2, 1 << 10] {
                for offset in self.bitmap_offsets {
                    let call = ApiCall::ResetMmio2WithBitmap {
                        addr,
                        words,
                        offset,
                        fill: BITMAP_FILL,
                    };
                    errors += w.run(call).error().is_some() as usize;
                }
            }
            for accounting in [true, false] {
                let call = ApiCall::ResetAliasedPage { page: addr, accounting };
                errors += w.run(call).error().is_some() as usize;
            }
            errors += w.run(ApiCall::Reset { addr }).error().is_some() as usize;
            w.queries(addr);
        }
        errors + w.run(ApiCall::VmReset).error().is_some() as usize
    }

    /// Deregisters everything at every hostile address and every node, twice each.
    fn teardown(&self, w: &mut W) -> usize {
        let mut errors = 0;
        for &addr in &self.addrs {
            errors += w.run(ApiCall::Deregister { addr }).error().is_some() as usize;
            errors += w.run(ApiCall::Deregister { addr }).error().is_some() as usize;
        }
        for h in 0..self.nodes {
            errors += w.run(ApiCall::DeregisterEx { h }).error().is_some() as usize;
            errors += w.run(ApiCall::DeregisterEx { h }).error().is_some() as usize;
        }
        errors
    }
}

#[test]
fn hostile_arguments_never_panic_and_failures_change_nothing() {
    for nem in [NemMode::Notify, NemMode::Off, NemMode::Exclusive] {
        let mut w = populated(nem);
        let hostile = Hostile::of(&mut w);
        for &a in &hostile.addrs {
            w.queries(a);
        }
        let errors = hostile.nodes(&mut w)
            + hostile.pairs(&mut w)
            + hostile.aliases(&mut w)
            + hostile.singles(&mut w)
            + hostile.teardown(&mut w);
        assert!(errors > 10_000, "the hostile driver mostly produces errors ({errors})");
    }
}

// ---------------------------------------------------------------------------------------------
// Seeded random sweep
// ---------------------------------------------------------------------------------------------

/// Named garbage nodes the sweep starts with: eight random ids, eight small ones (slot below
/// 64, generation 0: never issued).
const GARBAGE_NODES: NodeIx = 16;

struct Sweep {
    w: W,
    rng: ChaCha8Rng,
    stats: [u32; 2],
}

impl Sweep {
    fn new(nem: NemMode, max_handlers: u32, seed: u64) -> Sweep {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut w = world(nem, max_handlers);
        let first = w.names.types[0];
        w.names.types.push(HandlerTypeHandle(first.0 ^ 0x20));
        let random: Vec<HandlerId> = (0..8).map(|_| HandlerId(rng.random())).collect();
        let small: Vec<HandlerId> = (0..8).map(|_| HandlerId(rng.random_range(0..64))).collect();
        w.names.nodes.extend(random.into_iter().chain(small));
        Sweep { w, rng, stats: [0; 2] }
    }

    /// An address biased towards handler edges, page boundaries and range edges.
    fn addr(&mut self) -> u64 {
        let rng = &mut self.rng;
        match rng.random_range(0..10) {
            0..=3 => {
                let hs = self.w.m.handlers();
                if hs.is_empty() {
                    return rng.random_range(0..0x4_0000);
                }
                let h = &hs[rng.random_range(0..hs.len())];
                match rng.random_range(0..6) {
                    0 | 1 => h.key,
                    2 => h.key_last,
                    3 => h.key_last.wrapping_add(1),
                    4 => h.key.wrapping_sub(1),
                    _ => h.key.wrapping_add(rng.random_range(0..=h.key_last - h.key)),
                }
            }
            4..=7 => {
                let (base, pages) =
                    [(0u64, 64u64), (RAM2, 16), (MMIO, 16), (MMIO2_GPA, 8), (HIGH, 16)][rng.random_range(0..5)];
                let page = base + rng.random_range(0..pages + 1) * 0x1000;
                match rng.random_range(0..4) {
                    0 | 1 => page,
                    2 => page + rng.random_range(0..0x1000),
                    _ => page.wrapping_sub(1),
                }
            }
            8 => [0, NOWHERE, 1 << 32, u64::MAX, u64::MAX - 0xfff, 1 << 52][rng.random_range(0..6)],
            _ => rng.random(),
        }
    }

    /// A last byte for `first`: mostly a few pages or a sub-page piece, sometimes hostile.
    fn last_for(&mut self, first: u64) -> u64 {
        let rng = &mut self.rng;
        match rng.random_range(0..8) {
            0..=3 => (first | 0xfff).wrapping_add(rng.random_range(0..4) * 0x1000),
            4 | 5 => first.wrapping_add(rng.random_range(0..0x1800)),
            6 => first.wrapping_sub(rng.random_range(1..0x1000)),
            _ => self.addr(),
        }
    }

    /// A type: mostly a real one, sometimes a garbage handle (wrong check bits, or past the
    /// end of the names).
    fn ty(&mut self) -> TypeIx {
        match self.rng.random_range(0..12) {
            0 => 5 + self.rng.random_range(0..2),
            1 => 4,
            n => n % 4,
        }
    }

    /// A node: mostly one the sweep created, sometimes garbage.
    fn node(&mut self) -> NodeIx {
        let n = self.w.names.nodes.len() as NodeIx;
        match self.rng.random_range(0..8) {
            0 => self.rng.random_range(0..8),
            1 => self.rng.random_range(8..GARBAGE_NODES),
            _ if n > GARBAGE_NODES => self.rng.random_range(GARBAGE_NODES..n),
            _ => n,
        }
    }

    /// A page for a per-page call on the handler at `addr`: nearby, or anywhere.
    fn page_near(&mut self, addr: u64) -> u64 {
        if self.rng.random() {
            addr.wrapping_add(self.rng.random_range(0..0x4000))
        } else {
            self.addr()
        }
    }

    /// A registration range: well-formed half the time, so registrations succeed often.
    fn range(&mut self) -> (u64, u64) {
        let a = self.addr();
        let b = self.last_for(a);
        if self.rng.random() {
            return (a, b);
        }
        let bases = [(0u64, 64u64), (RAM2, 16), (MMIO, 16), (MMIO2_GPA, 8), (HIGH, 16)];
        let (base, pages) = bases[self.rng.random_range(0..bases.len())];
        let n = self.rng.random_range(1..4);
        let mut a = base + self.rng.random_range(0..pages - n + 1) * 0x1000;
        let mut b = a + n * 0x1000 - 1;
        if self.rng.random_range(0..3) == 0 {
            a += self.rng.random_range(0..0x800);
            b -= self.rng.random_range(0..0x800);
        }
        (a, b)
    }

    fn lifecycle_call(&mut self, op: u32) -> ApiCall {
        match op {
            0..=3 => {
                let ((first, last), ty, user) = (self.range(), self.ty(), self.rng.random());
                ApiCall::register(first, last, ty, user)
            }
            4 => ApiCall::Create {
                ty: self.ty(),
                user: 0,
                described: true,
            },
            5 => ApiCall::Dup { h: self.node() },
            6 => {
                let (h, first) = (self.node(), self.addr());
                ApiCall::RegisterEx {
                    h,
                    first,
                    last: self.last_for(first),
                }
            }
            7 => ApiCall::DeregisterEx { h: self.node() },
            8 => ApiCall::Destroy { h: self.node() },
            9 | 10 => ApiCall::Deregister { addr: self.addr() },
            11 => ApiCall::ChangeUserArg {
                addr: self.addr(),
                user: 1,
            },
            _ => ApiCall::Reset { addr: self.addr() },
        }
    }

    fn page_call(&mut self, op: u32) -> ApiCall {
        let addr = self.addr();
        match op {
            13 => {
                let words = [0u32, 1, 2, 4][self.rng.random_range(0..4)];
                let offset = match self.rng.random_range(0..4) {
                    0 => 0,
                    1 => self.rng.random_range(0..100),
                    2 => u32::MAX - self.rng.random_range(0..100),
                    _ => self.rng.random(),
                };
                ApiCall::ResetMmio2WithBitmap {
                    addr,
                    words,
                    offset,
                    fill: BITMAP_FILL,
                }
            }
            14 | 15 => ApiCall::PageTempOff {
                addr,
                page: self.page_near(addr),
            },
            16 => {
                let page = self.page_near(addr);
                let region = [self.rng.random_range(0..6), 1, 2, 3, 1, 2][self.rng.random_range(0..6)];
                let offset = match self.rng.random_range(0..4) {
                    0 => self.rng.random(),
                    _ => self.rng.random_range(0..0x11000),
                };
                ApiCall::PageAliasMmio2 {
                    addr,
                    page,
                    region,
                    offset,
                }
            }
            _ => {
                let page = self.page_near(addr);
                let host = match self.rng.random_range(0..4) {
                    0 => self.rng.random(),
                    _ => self.rng.random_range(0..1u64 << 40),
                };
                ApiCall::PageAliasHc {
                    addr,
                    page,
                    host: Hpa(host),
                }
            }
        }
    }

    fn step(&mut self) {
        if self.rng.random_range(0..50) == 0 {
            let flush_tlbs = self.rng.random();
            let resync = self.rng.random_range(0..4) == 0;
            self.w.m.platform_mut().answer = ShadowUpdate { flush_tlbs, resync };
        }
        let call = match self.rng.random_range(0..20) {
            op @ 0..=12 => self.lifecycle_call(op),
            op @ 13..=17 => self.page_call(op),
            18 => {
                let page = if self.rng.random() {
                    MMIO + self.rng.random_range(0..0x11000)
                } else {
                    self.addr()
                };
                ApiCall::ResetAliasedPage {
                    page,
                    accounting: self.rng.random_range(0..3) != 0,
                }
            }
            _ if self.rng.random_range(0..10) == 0 => ApiCall::VmReset,
            _ => {
                let addr = self.addr();
                self.w.queries(addr);
                self.stats[1] += 1;
                return;
            }
        };
        let failed = self.w.run(call).error().is_some();
        self.stats[usize::from(!failed)] += 1;
    }

    /// Tears everything down: the world must come back to its initial descriptors.
    fn teardown(mut self, nem: NemMode, max_handlers: u32) -> [u32; 2] {
        for h in self.w.m.handlers() {
            if let Some(id) = self.w.m.handler_id_at(h.key) {
                assert!(self.w.m.deregister_ex(id).is_ok());
                assert!(self.w.m.destroy(id).is_ok());
            }
        }
        for &id in &self.w.names.nodes {
            let _ = self.w.m.destroy(id);
        }
        assert_eq!(self.w.m.live_handlers(), 0);
        assert_eq!(self.w.m.check_sync(), vec![]);
        let fresh = world(nem, max_handlers);
        for ((a, p), (b, q)) in self.w.m.ram_pages().zip(fresh.m.ram_pages()) {
            assert_eq!(a, b);
            assert_eq!(p.without_nem_state(), q.without_nem_state(), "page {a:#x}");
        }
        self.stats
    }
}

#[test]
fn seeded_random_sweep_20k_calls() {
    let runs = [
        (0xC0FFEEu64, NemMode::Notify, 32u32),
        (0xBADC0DE, NemMode::Off, 48),
        (0x5EED, NemMode::Exclusive, 32),
    ];
    let mut total = [0u32; 2];
    for (seed, nem, cap) in runs {
        let mut s = Sweep::new(nem, cap, seed);
        for _ in 0..7000 {
            s.step();
        }
        let stats = s.teardown(nem, cap);
        total[0] += stats[0];
        total[1] += stats[1];
    }
    // The bias must produce plenty of both outcomes.
    assert!(
        total[0] > 4000 && total[1] > 2000,
        "errors {} / successes {}",
        total[0],
        total[1]
    );
}

#[test]
fn seeded_random_sweep_is_deterministic() {
    let digest = |seed| {
        let mut s = Sweep::new(NemMode::Notify, 32, seed);
        for _ in 0..500 {
            s.step();
        }
        (s.w.m.state_digest(), s.stats)
    };
    assert_eq!(digest(7), digest(7));
    assert_ne!(
        digest(7).0,
        digest(8).0,
        "different seeds drive the manager differently"
    );
}

#[test]
fn status_values_seen_by_hostile_driver_are_the_documented_ones() {
    // AlreadyAliased from both aliases, GcPhysAliased from register, SyncCr3 from the bitmap.
    let mut w = populated(NemMode::Notify);
    let alias = ApiCall::PageAliasMmio2 {
        addr: MMIO,
        page: MMIO + 0x1000,
        region: 1,
        offset: 0,
    };
    assert_eq!(w.run(alias).status(), Some(Ok(Status::AlreadyAliased)));
    let alias = ApiCall::PageAliasHc {
        addr: MMIO,
        page: MMIO + 0x2000,
        host: Hpa(0),
    };
    assert_eq!(w.run(alias).status(), Some(Ok(Status::AlreadyAliased)));
    w.m.platform_mut().answer.resync = true;
    let reg = ApiCall::Register {
        first: 0x9000,
        last: 0x9fff,
        ty: WRITE,
        user: 0,
        described: false,
    };
    assert_eq!(w.run(reg).status(), Some(Ok(Status::GcPhysAliased)));
    let bitmap = ApiCall::ResetMmio2WithBitmap {
        addr: MMIO2_GPA,
        words: 1,
        offset: 0,
        fill: 0,
    };
    assert_eq!(w.run(bitmap), Outcome::Bitmap(Ok(Status::SyncCr3), vec![1 << 3]));
    assert_eq!(w.m.check_sync(), vec![]);
}
