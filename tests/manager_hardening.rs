//! Hardening: no input makes any method panic, and every failed operation leaves the whole
//! state (`state_digest()`) exactly as it was and calls nothing on the platform.
//!
//! Two drivers: a systematic cross product of hostile arguments, and a seeded random sweep of
//! ~20,000 calls with arguments biased towards the interesting values (handler edges, range
//! edges, stale ids), checking `check_sync` after every success.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use pgmsim::{
    Corruption, Error, HandlerId, HandlerKind, HandlerTypeConfig, HandlerTypeHandle, Manager, ManagerConfig,
    MemoryLayout, Mmio2Handle, NemMode, OpResult, PhysHandlerApi, RecordingPlatform, ShadowUpdate, Status,
};

const RAM2: u64 = 0x4_0000;
const MMIO: u64 = 0x10_0000;
const MMIO2_GPA: u64 = 0x20_0000;
const HIGH: u64 = 0x1_0000_0000;
const NOWHERE: u64 = 0x80_0000;

struct W {
    m: Manager<RecordingPlatform>,
    types: Vec<HandlerTypeHandle>,
    regions: Vec<Mmio2Handle>,
}

fn world(nem: NemMode, max_handlers: u32) -> W {
    let b = MemoryLayout::builder().ram(0, 64).ram(RAM2, 16).mmio(MMIO, 16);
    let (b, a) = b.mmio2_region(8);
    let (b, bb) = b.mmio2_region(4);
    let (b, c) = b.mmio2_region(16);
    let l = b.map_mmio2(a, MMIO2_GPA).map_mmio2(c, HIGH).build().unwrap();
    let cfg = ManagerConfig {
        max_handlers,
        nem,
        ..ManagerConfig::default()
    };
    let mut m = Manager::new(l, cfg, RecordingPlatform::mapped()).unwrap();
    let mut types = Vec::new();
    for (kind, nihm) in [
        (HandlerKind::Write, false),
        (HandlerKind::All, false),
        (HandlerKind::Mmio, false),
        (HandlerKind::Write, true),
    ] {
        let mut c = HandlerTypeConfig::new(kind, "t");
        c.not_in_hm = nihm;
        types.push(m.register_type(c).unwrap());
    }
    W {
        m,
        types,
        regions: vec![a, bb, c],
    }
}

/// Which call was made, for the failure message and the `check_sync` exemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Other,
    ResetAliasedNoAccounting(u64),
}

impl W {
    /// Runs one call: on failure the digest must be unchanged and the platform untouched; on
    /// success `check_sync` must be clean (after the caller's own accounting for a reset of
    /// an aliased page without accounting, which this applies as the seed's callers do).
    fn run<T: std::fmt::Debug>(
        &mut self,
        what: &str,
        call: Call,
        f: impl FnOnce(&mut Manager<RecordingPlatform>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.m.platform_mut().take();
        let before = self.m.state_digest();
        let live = self.m.live_handlers();
        let r = f(&mut self.m);
        match &r {
            Err(_) => {
                assert_eq!(
                    self.m.state_digest(),
                    before,
                    "{what}: failed with {r:?} but changed the state"
                );
                assert_eq!(self.m.live_handlers(), live, "{what}");
                assert_eq!(
                    self.m.platform().events,
                    vec![],
                    "{what}: failed with {r:?} but called the platform"
                );
            }
            Ok(_) => {
                if let Call::ResetAliasedNoAccounting(page) = call {
                    if let Some(h) = self.m.lookup(page) {
                        let count = h.aliased_pages - 1;
                        self.m
                            .inject(Corruption::AliasedCount { handler: page, count })
                            .unwrap();
                    }
                }
                assert_eq!(
                    self.m.check_sync(),
                    vec![],
                    "{what}: succeeded with {r:?} but broke the state"
                );
            }
        }
        r
    }

    fn queries(&self, addr: u64) {
        let reg = self.m.is_registered(addr);
        assert_eq!(reg, self.m.lookup(addr).is_some());
        assert_eq!(reg, self.m.is_all(addr).is_ok());
        assert_eq!(reg, self.m.lookup_range(addr).is_some());
        // The hinted fast path agrees with a plain tree walk.
        let by_tree = self
            .m
            .lookup_matching_or_above(addr)
            .filter(|h| h.key <= addr)
            .map(|h| h.key);
        assert_eq!(self.m.lookup(addr).map(|h| h.key), by_tree, "lookup({addr:#x})");
        let _ = self.m.lookup_matching_or_below(addr);
        let _ = self.m.handler_id_at(addr);
        let _ = self.m.page(addr);
    }
}

/// A world with handlers of every kind, temp-off pages and aliases.
fn populated(nem: NemMode) -> (W, Vec<HandlerId>) {
    let mut w = world(nem, 64);
    let [wr, all, mmio, nihm] = [w.types[0], w.types[1], w.types[2], w.types[3]];
    let ok = |r: OpResult| assert!(r.is_ok(), "{r:?}");
    ok(w.m.register(0x1000, 0x17ff, wr, 1, None));
    ok(w.m.register(0x1800, 0x2fff, wr, 2, None));
    ok(w.m.register(0x4000, 0x5fff, all, 3, None));
    ok(w.m.page_temp_off(0x4000, 0x5000));
    ok(w.m.register(0x6000, 0x6fff, nihm, 4, None));
    ok(w.m.register(MMIO, MMIO + 0x3fff, mmio, 5, None));
    if nem != NemMode::Exclusive {
        ok(w.m.page_alias_mmio2(MMIO, MMIO + 0x1000, w.regions[0], 0));
        ok(w.m.page_alias_hc(MMIO, MMIO + 0x2000, 0x7000_0000));
    }
    ok(w.m.register(MMIO2_GPA, MMIO2_GPA + 0x7fff, wr, 6, None));
    ok(w.m.page_temp_off(MMIO2_GPA, MMIO2_GPA + 0x3000));
    ok(w.m.register(HIGH, HIGH + 0xffff, wr, 7, None));
    ok(w.m.register(0x3ffff, 0x3ffff, wr, 8, None));
    let unregistered = w.m.create(wr, 9, None).unwrap();
    let stale = w.m.create(all, 10, None).unwrap();
    w.m.destroy(stale).unwrap();
    let registered = w.m.handler_id_at(0x4000).unwrap();
    assert_eq!(w.m.check_sync(), vec![]);
    let ids = vec![
        unregistered,
        stale,
        registered,
        HandlerId(0),
        HandlerId(u64::MAX),
        HandlerId(0x1234_5678_9abc_def0),
        HandlerId(registered.0 ^ (1 << 32)),
        HandlerId(registered.0 + 1),
        HandlerId(63),
        HandlerId(64),
    ];
    (w, ids)
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

#[test]
fn hostile_arguments_never_panic_and_failures_change_nothing() {
    for nem in [NemMode::Notify, NemMode::Off, NemMode::Exclusive] {
        let (mut w, ids) = populated(nem);
        let addrs = hostile_addresses(&w.m);
        let mut types = w.types.clone();
        types.extend([
            HandlerTypeHandle(0),
            HandlerTypeHandle::NIL,
            HandlerTypeHandle(w.types[1].0 ^ 0x40),
            HandlerTypeHandle(7),
        ]);
        let mut regions = w.regions.clone();
        regions.extend([Mmio2Handle(0), Mmio2Handle(4), Mmio2Handle(u32::MAX)]);
        let region_offsets = [0u64, 0xfff, 0x3000, 0x7fff, 0x8000, 0x10000, 1 << 40, u64::MAX];
        let host = [0u64, 0x1000, 0xffff_ffff_f000, 1 << 48, u64::MAX];
        let bitmap_offsets = [0u32, 1, 63, 64, 1 << 31, u32::MAX - 64, u32::MAX - 1, u32::MAX];
        let mut errors = 0usize;
        let mut count = |r: bool| errors += r as usize;

        // Queries on everything.
        for &a in &addrs {
            w.queries(a);
        }
        // Handle-taking calls.
        for &id in &ids {
            let _ = w.m.handler_info(id);
            count(w.run("dup", Call::Other, |m| m.dup(id)).is_err());
            for &(f, l) in &[
                (0x9000u64, 0x9fffu64),
                (5, 4),
                (0, u64::MAX),
                (u64::MAX, u64::MAX),
                (0x3f000, RAM2 + 0xfff),
            ] {
                count(w.run("register_ex", Call::Other, |m| m.register_ex(id, f, l)).is_err());
            }
        }
        // Double destroy, destroy while registered, deregister_ex twice.
        for &id in &ids {
            count(w.run("destroy", Call::Other, |m| m.destroy(id)).is_err());
            count(w.run("destroy again", Call::Other, |m| m.destroy(id)).is_err());
        }
        // Address pairs: every pair for register / temp-off / alias-hc; the MMIO2 alias
        // gets the full region x offset product on a smaller set of pairs.
        let keys: Vec<u64> =
            w.m.handlers()
                .iter()
                .map(|h| h.key)
                .chain([0, NOWHERE, u64::MAX])
                .collect();
        for &a in &addrs {
            for &b in &addrs {
                for &ty in &types {
                    count(
                        w.run("register", Call::Other, |m| m.register(a, b, ty, 0, None))
                            .is_err(),
                    );
                }
                count(w.run("page_temp_off", Call::Other, |m| m.page_temp_off(a, b)).is_err());
                let h = host[(a ^ b) as usize % host.len()];
                count(
                    w.run("page_alias_hc", Call::Other, |m| m.page_alias_hc(a, b, h))
                        .is_err(),
                );
                let (r, o) = (
                    regions[(a as usize) % regions.len()],
                    region_offsets[(b as usize) % region_offsets.len()],
                );
                count(
                    w.run("page_alias_mmio2", Call::Other, |m| m.page_alias_mmio2(a, b, r, o))
                        .is_err(),
                );
            }
        }
        for &a in &keys {
            for &b in &addrs {
                for &h in &host {
                    count(
                        w.run("page_alias_hc", Call::Other, |m| m.page_alias_hc(a, b, h))
                            .is_err(),
                    );
                }
                for &r in &regions {
                    for &o in &region_offsets {
                        count(
                            w.run("page_alias_mmio2", Call::Other, |m| m.page_alias_mmio2(a, b, r, o))
                                .is_err(),
                        );
                    }
                }
            }
        }
        // Single addresses.
        for &a in &addrs {
            count(
                w.run("change_user_arg", Call::Other, |m| m.change_user_arg(a, u64::MAX))
                    .is_err(),
            );
            for len in [0usize, 1, 2, 1 << 10] {
                for &o in &bitmap_offsets {
                    let mut bm = vec![0u64; len];
                    count(
                        w.run("reset_mmio2_with_bitmap", Call::Other, |m| {
                            m.reset_mmio2_with_bitmap(a, &mut bm, o)
                        })
                        .is_err(),
                    );
                }
            }
            count(
                w.run("reset_aliased_page(acc)", Call::Other, |m| {
                    m.reset_aliased_page(a, true)
                })
                .is_err(),
            );
            count(
                w.run("reset_aliased_page", Call::ResetAliasedNoAccounting(a), |m| {
                    m.reset_aliased_page(a, false)
                })
                .is_err(),
            );
            count(w.run("reset", Call::Other, |m| m.reset(a)).is_err());
            w.queries(a);
        }
        count(w.run("vm_reset", Call::Other, |m| m.vm_reset()).is_err());
        // Deregister everything at every hostile address, twice (double deregister).
        for &a in &addrs {
            count(w.run("deregister", Call::Other, |m| m.deregister(a)).is_err());
            count(w.run("deregister again", Call::Other, |m| m.deregister(a)).is_err());
        }
        for &id in &ids {
            count(w.run("deregister_ex", Call::Other, |m| m.deregister_ex(id)).is_err());
            count(
                w.run("deregister_ex again", Call::Other, |m| m.deregister_ex(id))
                    .is_err(),
            );
        }
        assert!(errors > 10_000, "the hostile driver mostly produces errors ({errors})");
    }
}

// ---------------------------------------------------------------------------------------------
// Seeded random sweep
// ---------------------------------------------------------------------------------------------

struct Sweep {
    w: W,
    rng: ChaCha8Rng,
    ids: Vec<HandlerId>,
    stats: [u32; 2],
}

impl Sweep {
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
                let base = [0u64, RAM2, MMIO, MMIO2_GPA, HIGH][rng.random_range(0..5)];
                let pages = [64u64, 16, 16, 8, 16][[0u64, RAM2, MMIO, MMIO2_GPA, HIGH]
                    .iter()
                    .position(|&b| b == base)
                    .unwrap()];
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

    fn ty(&mut self) -> HandlerTypeHandle {
        let types = &self.w.types;
        match self.rng.random_range(0..12) {
            0 => HandlerTypeHandle(self.rng.random()),
            1 => HandlerTypeHandle(types[0].0 ^ 0x20),
            n => types[n as usize % types.len()],
        }
    }

    fn id(&mut self) -> HandlerId {
        match self.rng.random_range(0..8) {
            0 => HandlerId(self.rng.random()),
            1 => HandlerId(self.rng.random_range(0..64)),
            _ if !self.ids.is_empty() => self.ids[self.rng.random_range(0..self.ids.len())],
            _ => HandlerId(0),
        }
    }

    fn step(&mut self, i: usize) {
        if self.rng.random_range(0..50) == 0 {
            let flush_tlbs = self.rng.random();
            let resync = self.rng.random_range(0..4) == 0;
            self.w.m.platform_mut().answer = ShadowUpdate { flush_tlbs, resync };
        }
        let op = self.rng.random_range(0..20);
        let what = format!("step {i} op {op}");
        let r = match op {
            0..=3 => {
                let (mut a, ty, user) = (self.addr(), self.ty(), self.rng.random());
                let mut b = self.last_for(a);
                if self.rng.random() {
                    // A well-formed range, so registrations succeed often enough.
                    let bases = [(0u64, 64u64), (RAM2, 16), (MMIO, 16), (MMIO2_GPA, 8), (HIGH, 16)];
                    let (base, pages) = bases[self.rng.random_range(0..bases.len())];
                    let n = self.rng.random_range(1..4);
                    a = base + self.rng.random_range(0..pages - n + 1) * 0x1000;
                    b = a + n * 0x1000 - 1;
                    if self.rng.random_range(0..3) == 0 {
                        a += self.rng.random_range(0..0x800);
                        b -= self.rng.random_range(0..0x800);
                    }
                }
                self.w
                    .run(&what, Call::Other, |m| m.register(a, b, ty, user, None))
                    .map(|_| ())
            }
            4 => {
                let ty = self.ty();
                let r = self.w.run(&what, Call::Other, |m| m.create(ty, 0, Some("c")));
                if let Ok(id) = r {
                    self.ids.push(id);
                }
                r.map(|_| ())
            }
            5 => {
                let src = self.id();
                let r = self.w.run(&what, Call::Other, |m| m.dup(src));
                if let Ok(id) = r {
                    self.ids.push(id);
                }
                r.map(|_| ())
            }
            6 => {
                let (id, a) = (self.id(), self.addr());
                let b = self.last_for(a);
                self.w.run(&what, Call::Other, |m| m.register_ex(id, a, b)).map(|_| ())
            }
            7 => {
                let id = self.id();
                self.w.run(&what, Call::Other, |m| m.deregister_ex(id)).map(|_| ())
            }
            8 => {
                let id = self.id();
                self.w.run(&what, Call::Other, |m| m.destroy(id)).map(|_| ())
            }
            9 | 10 => {
                let a = self.addr();
                self.w.run(&what, Call::Other, |m| m.deregister(a)).map(|_| ())
            }
            11 => {
                let a = self.addr();
                self.w.run(&what, Call::Other, |m| m.change_user_arg(a, 1)).map(|_| ())
            }
            12 => {
                let a = self.addr();
                self.w.run(&what, Call::Other, |m| m.reset(a)).map(|_| ())
            }
            13 => {
                let a = self.addr();
                let len = [0usize, 1, 2, 4][self.rng.random_range(0..4)];
                let off = match self.rng.random_range(0..4) {
                    0 => 0,
                    1 => self.rng.random_range(0..100),
                    2 => u32::MAX - self.rng.random_range(0..100),
                    _ => self.rng.random(),
                };
                let mut bm = vec![0u64; len];
                self.w
                    .run(&what, Call::Other, |m| m.reset_mmio2_with_bitmap(a, &mut bm, off))
                    .map(|_| ())
            }
            14 | 15 => {
                let a = self.addr();
                let p = if self.rng.random() {
                    a.wrapping_add(self.rng.random_range(0..0x4000))
                } else {
                    self.addr()
                };
                self.w.run(&what, Call::Other, |m| m.page_temp_off(a, p)).map(|_| ())
            }
            16 => {
                let a = self.addr();
                let p = if self.rng.random() {
                    a.wrapping_add(self.rng.random_range(0..0x4000))
                } else {
                    self.addr()
                };
                let r = match self.rng.random_range(0..6) {
                    0 => Mmio2Handle(self.rng.random_range(0..6)),
                    n => self.w.regions[n as usize % 3],
                };
                let off = match self.rng.random_range(0..4) {
                    0 => self.rng.random(),
                    _ => self.rng.random_range(0..0x11000),
                };
                self.w
                    .run(&what, Call::Other, |m| m.page_alias_mmio2(a, p, r, off))
                    .map(|_| ())
            }
            17 => {
                let a = self.addr();
                let p = if self.rng.random() {
                    a.wrapping_add(self.rng.random_range(0..0x4000))
                } else {
                    self.addr()
                };
                let h = if self.rng.random_range(0..4) == 0 {
                    self.rng.random()
                } else {
                    self.rng.random_range(0..1u64 << 40)
                };
                self.w.run(&what, Call::Other, |m| m.page_alias_hc(a, p, h)).map(|_| ())
            }
            18 => {
                let p = if self.rng.random() {
                    MMIO + self.rng.random_range(0..0x11000)
                } else {
                    self.addr()
                };
                let acc = self.rng.random_range(0..3) != 0;
                let call = if acc {
                    Call::Other
                } else {
                    Call::ResetAliasedNoAccounting(p)
                };
                self.w.run(&what, call, |m| m.reset_aliased_page(p, acc)).map(|_| ())
            }
            _ => {
                if self.rng.random_range(0..10) == 0 {
                    self.w.run(&what, Call::Other, |m| m.vm_reset()).map(|_| ())
                } else {
                    let a = self.addr();
                    self.w.queries(a);
                    Ok(())
                }
            }
        };
        self.stats[r.is_ok() as usize] += 1;
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
        let mut s = Sweep {
            w: world(nem, cap),
            rng: ChaCha8Rng::seed_from_u64(seed),
            ids: Vec::new(),
            stats: [0; 2],
        };
        for i in 0..7000 {
            s.step(i);
        }
        // Tear everything down: the world must come back to its initial descriptors.
        for h in s.w.m.handlers() {
            if let Some(id) = s.w.m.handler_id_at(h.key) {
                assert!(s.w.m.deregister_ex(id).is_ok());
                assert!(s.w.m.destroy(id).is_ok());
            }
        }
        for id in s.ids.clone() {
            let _ = s.w.m.destroy(id);
        }
        assert_eq!(s.w.m.live_handlers(), 0);
        assert_eq!(s.w.m.check_sync(), vec![]);
        let fresh = world(nem, cap);
        for (a, b) in s.w.m.memory().ranges().iter().zip(fresh.m.memory().ranges()) {
            for (i, (p, q)) in a.pages.iter().zip(&b.pages).enumerate() {
                assert_eq!(
                    p.without_nem_state(),
                    q.without_nem_state(),
                    "page {:#x}",
                    a.first + ((i as u64) << 12)
                );
            }
        }
        total[0] += s.stats[0];
        total[1] += s.stats[1];
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
        let mut s = Sweep {
            w: world(NemMode::Notify, 32),
            rng: ChaCha8Rng::seed_from_u64(seed),
            ids: Vec::new(),
            stats: [0; 2],
        };
        for i in 0..500 {
            s.step(i);
        }
        (s.w.m.state_digest(), s.stats)
    };
    assert_eq!(digest(7), digest(7));
}

#[test]
fn status_values_seen_by_hostile_driver_are_the_documented_ones() {
    // AlreadyAliased from both aliases, GcPhysAliased from register, SyncCr3 from the bitmap.
    let (mut w, _) = populated(NemMode::Notify);
    let r2a = w.regions[0];
    assert_eq!(
        w.m.page_alias_mmio2(MMIO, MMIO + 0x1000, r2a, 0),
        Ok(Status::AlreadyAliased)
    );
    assert_eq!(w.m.page_alias_hc(MMIO, MMIO + 0x2000, 0), Ok(Status::AlreadyAliased));
    w.m.platform_mut().answer.resync = true;
    assert_eq!(
        w.m.register(0x9000, 0x9fff, w.types[0], 0, None),
        Ok(Status::GcPhysAliased)
    );
    assert_eq!(w.m.reset_mmio2_with_bitmap(MMIO2_GPA, &mut [0], 0), Ok(Status::SyncCr3));
    assert_eq!(w.m.check_sync(), vec![]);
}
