//! The run configuration, drawn from the seed ("swarm testing"): every seed gets its own RAM
//! layout, vCPU count, TLB geometry, reverse-map capacity, paging mode, enabled operation
//! kinds and weights, and device behaviours, so a sweep explores many worlds instead of one.
//! Every knob can be forced from the command line; the configuration is printed and stored in
//! every trace.

use pgmsim::{HandlerKind, ManagerConfig, MemoryLayout, RangeKind, PAGE_SHIFT};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::conc::config::ConcurrencyOverrides;
use crate::conc::Concurrency;
use crate::mmu::{Mode, PlatformFaults};

mod layout_json;
mod validate;

pub use validate::{
    Backing, ConfigError, MAX_ADDRESS_SPACES, MAX_GUEST_PAGES, MAX_PT_POOL_PAGES, MAX_RAM_MIB, MAX_TLB_ENTRIES,
    MAX_VA_PAGES,
};

/// What a handler type's device does when a handler of that type is invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Record the call and let the access proceed by default.
    Record,
    /// An emulated device register: reads return a deterministic value, writes are absorbed.
    Register,
    /// MMIO2 dirty tracking: temp-off the written page, mark it dirty, write by default.
    DirtyTrack,
    /// Alias an MMIO2 page over the touched MMIO page on first access.
    AliasOnAccess,
    /// A framebuffer-style write log: temp-off the written page through the handler's id
    /// (the callback runs without the PGM lock, so its handler may be gone meanwhile: the id
    /// makes that a clean error); `reset` re-arms. Only in concurrent worlds.
    WriteLog,
}

/// One handler type of the run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeSpec {
    /// Kind.
    pub kind: HandlerKind,
    /// Not-in-HM flag.
    pub not_in_hm: bool,
    /// Keep-lock flag.
    pub keep_lock: bool,
    /// Device behaviour behind the callbacks.
    pub behaviour: Behaviour,
    /// Description.
    pub description: String,
}

/// Relative weights of the operation families (0 disables one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// Create + register in one call.
    pub register: u32,
    /// Deregister by address.
    pub deregister: u32,
    /// create / dup / register_ex / deregister_ex / destroy.
    pub ex_api: u32,
    /// reset and reset_mmio2_with_bitmap.
    pub reset: u32,
    /// page_temp_off.
    pub temp_off: u32,
    /// page_alias_mmio2 and page_alias_hc.
    pub alias: u32,
    /// reset_aliased_page (with accounting).
    pub reset_alias: u32,
    /// Queries and change_user_arg.
    pub query: u32,
    /// Deliberately invalid manager calls.
    pub invalid: u32,
    /// Guest kernel: map / unmap / protect / CR3 switch.
    pub kernel: u32,
    /// Guest accesses.
    pub access: u32,
    /// Dirty-bitmap harvest.
    pub harvest: u32,
    /// VM reset.
    pub vm_reset: u32,
}

impl Weights {
    /// The family names, in field order (for `--weight NAME=N`).
    pub const NAMES: [&'static str; 13] = [
        "register",
        "deregister",
        "ex_api",
        "reset",
        "temp_off",
        "alias",
        "reset_alias",
        "query",
        "invalid",
        "kernel",
        "access",
        "harvest",
        "vm_reset",
    ];

    /// Every weight, in [`Weights::NAMES`] order.
    pub fn values(&self) -> [u32; 13] {
        [
            self.register,
            self.deregister,
            self.ex_api,
            self.reset,
            self.temp_off,
            self.alias,
            self.reset_alias,
            self.query,
            self.invalid,
            self.kernel,
            self.access,
            self.harvest,
            self.vm_reset,
        ]
    }

    /// The sum of the weights (0: nothing to draw).
    pub fn total(&self) -> u64 {
        self.values().iter().map(|&w| w as u64).sum()
    }

    /// The weight of family `i` (in [`Weights::NAMES`] order).
    pub fn get(&self, i: usize) -> Option<u32> {
        let mut copy = *self;
        copy.get_mut(i).map(|w| *w)
    }

    /// The weight of family `i` (in [`Weights::NAMES`] order), mutably.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut u32> {
        Some(match i {
            0 => &mut self.register,
            1 => &mut self.deregister,
            2 => &mut self.ex_api,
            3 => &mut self.reset,
            4 => &mut self.temp_off,
            5 => &mut self.alias,
            6 => &mut self.reset_alias,
            7 => &mut self.query,
            8 => &mut self.invalid,
            9 => &mut self.kernel,
            10 => &mut self.access,
            11 => &mut self.harvest,
            12 => &mut self.vm_reset,
            _ => return None,
        })
    }

    /// The default mix.
    pub const DEFAULT: Weights = Weights {
        register: 8,
        deregister: 5,
        ex_api: 4,
        reset: 3,
        temp_off: 4,
        alias: 4,
        reset_alias: 1,
        query: 3,
        invalid: 4,
        kernel: 10,
        access: 40,
        harvest: 2,
        vm_reset: 1,
    };
}

/// A deliberate defect of the simulated platform, to see the checks catch a broken
/// platform end to end (`--platform-fault`); stored in the configuration so traces of such
/// runs replay and shrink the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PlatformFault {
    /// The platform ignores every request to flush the TLBs.
    ForgetTlbFlushes,
    /// A TLB flush waits for acknowledgements that never come: its bounded, asserted poll
    /// loop runs out, a deterministic `hang` at the first step that flushes.
    FlushNeverAcknowledged,
    /// A TLB flush never returns (its thread blocks for good): a hang outside every bounded
    /// loop, which only the wall-clock watchdog (`--step-timeout`) catches.
    FlushStalls,
}

/// Everything that defines a world; stored in every trace. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Guest-physical layout (addresses as `"0x…"` strings).
    #[serde(with = "layout_json")]
    pub layout: MemoryLayout,
    /// Handler capacity.
    pub max_handlers: u32,
    /// Number of vCPUs (1..=8).
    pub vcpus: u8,
    /// Shadow paging or NEM.
    pub mode: Mode,
    /// In NEM mode: exclusive NEM, where aliasing is not supported.
    pub nem_exclusive: bool,
    /// TLB sets.
    pub tlb_sets: u16,
    /// TLB ways.
    pub tlb_ways: u8,
    /// Reverse-map references per guest page before overflow.
    pub revmap_capacity: u8,
    /// Guest address spaces (page-table roots).
    pub address_spaces: u8,
    /// Size of the simulated virtual window, in pages.
    pub va_pages: u32,
    /// Pages at the start of the first RAM range reserved for guest page tables.
    pub pt_pool_pages: u32,
    /// Handler types, registered in this order on both sides.
    pub types: Vec<TypeSpec>,
    /// Register a dirty-tracking handler over every mapped MMIO2 range at start.
    pub dirty_tracking: bool,
    /// Handler nodes the devices create at start and keep unregistered (as a VMM pre-creates
    /// the nodes of MMIO2 ranges it maps later). Nodes are taken next-fit, so a freed slot is
    /// reused only once the allocator wraps around the table: a table this full wraps within
    /// a create or two, which is what makes a stale id's ABA (a callback's id naming the
    /// newcomer in its slot) reachable by a short trace. Absent (0) in most worlds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub boot_nodes: u32,
    /// Operation weights.
    pub weights: Weights,
    /// Full invariant check every this many steps in incremental mode.
    pub full_check_every: u32,
    /// A deliberate platform defect (absent: a correct platform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_fault: Option<PlatformFault>,
    /// Threads, scheduler and shootdown protocol of a concurrent world; absent for a
    /// sequential world (every step atomic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
}

/// Command-line overrides of the drawn configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Force the vCPU count.
    pub vcpus: Option<u8>,
    /// Force the mode.
    pub mode: Option<Mode>,
    /// Force the size of the main RAM range, in MiB (e.g. 4096 for a 4 GiB guest).
    pub ram_mib: Option<u32>,
    /// Force the handler capacity.
    pub max_handlers: Option<u32>,
    /// Force the reverse-map capacity.
    pub revmap_capacity: Option<u8>,
    /// Force the TLB geometry (sets, ways).
    pub tlb: Option<(u16, u8)>,
    /// Force the full-check interval.
    pub full_check_every: Option<u32>,
    /// Force the number of guest address spaces (1..=16).
    pub address_spaces: Option<u8>,
    /// Force the size of the virtual window, in pages.
    pub va_pages: Option<u32>,
    /// Force MMIO2 dirty tracking on or off.
    pub dirty_tracking: Option<bool>,
    /// Force exclusive NEM mode on or off (only meaningful in NEM mode).
    pub nem_exclusive: Option<bool>,
    /// Force single operation weights, by [`Weights::NAMES`] index.
    pub weights: [Option<u32>; Weights::NAMES.len()],
    /// Run on a deliberately defective platform.
    pub platform_fault: Option<PlatformFault>,
    /// Force concurrency settings.
    pub concurrency: ConcurrencyOverrides,
}

const CONFIG_STREAM: u64 = 0x636f_6e66_6967; // "config"
const BOOT_NODES_STREAM: u64 = 0x626f_6f74; // "boot"
const RAM_AT_4GIB_STREAM: u64 = 0x3467_6962; // "4gib"
/// 4 GiB: the first guest-physical byte a 32-bit address cannot name (the layouts, the
/// generator's placements and their coverage cells all measure against it).
pub(crate) const FOUR_GIB: u64 = 1 << 32;

/// A RAM range at 4 GiB (its first byte and pages) for one drawn layout in eight: half end
/// exactly at 4 GiB - 1, half cross it, so registrations ending at or crossing 4 GiB can
/// succeed (a 32-bit truncation of a range's end or length shows only there). Drawn from a
/// stream of its own, so the other seven layouts in eight are what they were without it.
fn draw_ram_at_4gib(seed: u64) -> Option<(u64, u32)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ RAM_AT_4GIB_STREAM);
    if !rng.random_ratio(1, 8) {
        return None;
    }
    let pages = rng.random_range(2..=16u32);
    let below = if rng.random_bool(0.5) {
        pages
    } else {
        rng.random_range(1..pages)
    };
    Some((FOUR_GIB - ((below as u64) << PAGE_SHIFT), pages))
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The standard handler types; the generator picks which to use.
pub fn standard_types() -> Vec<TypeSpec> {
    let t = |kind, not_in_hm, keep_lock, behaviour, d: &str| TypeSpec {
        kind,
        not_in_hm,
        keep_lock,
        behaviour,
        description: d.to_string(),
    };
    vec![
        t(HandlerKind::Write, false, false, Behaviour::Record, "write monitor"),
        t(
            HandlerKind::Write,
            true,
            true,
            Behaviour::Record,
            "write monitor (not in HM)",
        ),
        t(HandlerKind::All, false, true, Behaviour::Register, "all-access device"),
        t(HandlerKind::Mmio, false, false, Behaviour::Register, "MMIO device"),
        t(
            HandlerKind::Mmio,
            false,
            true,
            Behaviour::AliasOnAccess,
            "MMIO with MMIO2 alias",
        ),
        t(
            HandlerKind::Write,
            false,
            true,
            Behaviour::DirtyTrack,
            "MMIO2 dirty page tracing",
        ),
        t(
            HandlerKind::Write,
            false,
            false,
            Behaviour::Register,
            "sub-page register",
        ),
    ]
}

impl SimConfig {
    /// Draws the configuration of `seed`, then applies `ov`.
    pub fn from_seed(seed: u64, ov: &Overrides) -> SimConfig {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ CONFIG_STREAM);
        let layout = draw_layout(&mut rng, ov.ram_mib, draw_ram_at_4gib(seed));
        let mode = ov
            .mode
            .unwrap_or(if rng.random_bool(0.25) { Mode::Nem } else { Mode::Shadow });
        let pick = |rng: &mut ChaCha8Rng, w: u32| {
            if rng.random_bool(0.85) {
                rng.random_range(1..=w.max(1))
            } else {
                0
            }
        };
        let d = Weights::DEFAULT;
        let weights = Weights {
            register: pick(&mut rng, d.register).max(1),
            deregister: pick(&mut rng, d.deregister),
            ex_api: pick(&mut rng, d.ex_api),
            reset: pick(&mut rng, d.reset),
            temp_off: pick(&mut rng, d.temp_off),
            alias: pick(&mut rng, d.alias),
            reset_alias: pick(&mut rng, d.reset_alias),
            query: pick(&mut rng, d.query),
            invalid: pick(&mut rng, d.invalid),
            kernel: pick(&mut rng, d.kernel).max(1),
            access: pick(&mut rng, d.access).max(1),
            harvest: pick(&mut rng, d.harvest),
            vm_reset: pick(&mut rng, d.vm_reset),
        };
        let sets = [4u16, 8, 16, 32][rng.random_range(0..4)];
        let ways = [1u8, 2, 4][rng.random_range(0..3)];
        let mut cfg = SimConfig {
            layout,
            max_handlers: [32u32, 64, 256][rng.random_range(0..3)],
            vcpus: rng.random_range(1..=8),
            mode,
            nem_exclusive: mode == Mode::Nem && rng.random_bool(0.3),
            tlb_sets: sets,
            tlb_ways: ways,
            revmap_capacity: [1u8, 2, 4, 8][rng.random_range(0..4)],
            address_spaces: rng.random_range(1..=3),
            va_pages: [64u32, 256, 1024][rng.random_range(0..3)],
            pt_pool_pages: 24,
            types: standard_types(),
            dirty_tracking: rng.random_bool(0.7),
            boot_nodes: 0,
            weights,
            full_check_every: 64,
            platform_fault: None,
            concurrency: None,
        };
        cfg.apply_world(ov);
        if let Some(c) = Concurrency::draw(seed, &ov.concurrency) {
            cfg.make_concurrent(c);
            cfg.boot_nodes = cfg.draw_boot_nodes(seed);
        }
        cfg
    }

    /// Half of the concurrent worlds start with a nearly full handler table: every slot
    /// but one or two taken by boot nodes, so slot reuse (and a stale id's ABA) comes
    /// within a few creates. Drawn from a stream of its own, so the rest of the world and
    /// its schedule are the same with or without.
    pub(crate) fn draw_boot_nodes(&self, seed: u64) -> u32 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ BOOT_NODES_STREAM);
        let free = rng.random_range(1..=2u32);
        if !rng.random_ratio(1, 2) {
            return 0;
        }
        self.handler_capacity()
            .unwrap_or(0)
            .saturating_sub(self.dirty_trackers() + free)
    }

    /// The handler table's size for `max_handlers` (the manager's rounding), if valid.
    pub fn handler_capacity(&self) -> Option<u32> {
        let config = ManagerConfig {
            max_handlers: self.max_handlers,
            ..ManagerConfig::default()
        };
        config.capacity().ok()
    }

    /// How many dirty-tracking handlers the world registers at start.
    pub fn dirty_trackers(&self) -> u32 {
        let tracking = self.dirty_tracking && self.types.iter().any(|t| t.behaviour == Behaviour::DirtyTrack);
        let mmio2 = self
            .layout
            .ram_ranges
            .iter()
            .filter(|r| matches!(r.kind, RangeKind::Mmio2 { .. }))
            .count() as u32;
        if tracking {
            mmio2
        } else {
            0
        }
    }

    /// Turns a sequential world concurrent: at least two vCPUs, and the write-log device
    /// whose callbacks run without the PGM lock.
    pub fn make_concurrent(&mut self, c: Concurrency) {
        self.vcpus = self.vcpus.max(2);
        if !self.types.iter().any(|t| t.behaviour == Behaviour::WriteLog) {
            self.types.push(TypeSpec {
                kind: HandlerKind::Write,
                not_in_hm: false,
                keep_lock: false,
                behaviour: Behaviour::WriteLog,
                description: "framebuffer write log".into(),
            });
        }
        self.concurrency = Some(c);
    }

    /// Applies command-line overrides, concurrency included (for a configuration given
    /// whole, e.g. by `--config`), as given: the result is checked by
    /// [`SimConfig::validate`], never silently adjusted. `ram_mib` resizes the first RAM
    /// range; `nem_exclusive: Some(true)` implies NEM mode unless a mode is forced.
    pub fn apply(&mut self, ov: &Overrides) {
        self.apply_world(ov);
        match (self.concurrency, ov.concurrency.enabled) {
            (_, Some(false)) => self.concurrency = None,
            (None, Some(true)) => self.make_concurrent(Concurrency {
                devices: 1,
                scheduler: crate::conc::SchedulerKind::Random,
                shootdown: crate::conc::Shootdown::Sync,
                quiesce_every: 64,
                schedule_seed: 0,
            }),
            _ => {}
        }
        if let Some(c) = self.concurrency.as_mut() {
            c.scheduler = ov.concurrency.scheduler.unwrap_or(c.scheduler);
            c.shootdown = ov.concurrency.shootdown.unwrap_or(c.shootdown);
            c.devices = ov.concurrency.devices.unwrap_or(c.devices);
            c.schedule_seed = ov.concurrency.schedule_seed.unwrap_or(c.schedule_seed);
        }
    }

    /// Applies every override but concurrency's.
    fn apply_world(&mut self, ov: &Overrides) {
        if let Some(v) = ov.vcpus {
            self.vcpus = v;
        }
        if let Some(m) = ov.mode {
            self.mode = m;
            if m == Mode::Shadow {
                self.nem_exclusive = false;
            }
        }
        if let Some(mib) = ov.ram_mib {
            if let Some(main) = self.layout.ram_ranges.first_mut() {
                main.pages = (mib as u64 * 256).min(u32::MAX as u64) as u32;
            }
        }
        if let Some(n) = ov.max_handlers {
            self.max_handlers = n;
        }
        if let Some(r) = ov.revmap_capacity {
            self.revmap_capacity = r;
        }
        if let Some((s, w)) = ov.tlb {
            self.tlb_sets = s;
            self.tlb_ways = w;
        }
        if let Some(n) = ov.full_check_every {
            self.full_check_every = n;
        }
        if let Some(n) = ov.address_spaces {
            self.address_spaces = n;
        }
        if let Some(n) = ov.va_pages {
            self.va_pages = n;
        }
        if let Some(d) = ov.dirty_tracking {
            self.dirty_tracking = d;
        }
        if let Some(x) = ov.nem_exclusive {
            self.nem_exclusive = x;
            if x && ov.mode.is_none() {
                self.mode = Mode::Nem;
            }
        }
        for (i, w) in ov.weights.iter().enumerate() {
            if let (Some(w), Some(slot)) = (w, self.weights.get_mut(i)) {
                *slot = *w;
            }
        }
        if ov.platform_fault.is_some() {
            self.platform_fault = ov.platform_fault;
        }
    }

    /// The simulated platform's defects.
    pub fn platform_faults(&self) -> PlatformFaults {
        PlatformFaults {
            forget_tlb_flushes: self.platform_fault == Some(PlatformFault::ForgetTlbFlushes),
            flush_never_acknowledged: self.platform_fault == Some(PlatformFault::FlushNeverAcknowledged),
            flush_stalls: self.platform_fault == Some(PlatformFault::FlushStalls),
        }
    }

    /// One-line summary for logs.
    pub fn summary(&self) -> String {
        let ram: u64 = self.layout.total_pages() << PAGE_SHIFT;
        format!(
            "mode={:?}{} vcpus={} tlb={}x{} revmap={} spaces={} va_pages={} handlers<={} ranges={} mmio2={} guest={} KiB dirty_tracking={} weights={:?}",
            self.mode,
            if self.nem_exclusive { "(exclusive)" } else { "" },
            self.vcpus,
            self.tlb_sets,
            self.tlb_ways,
            self.revmap_capacity,
            self.address_spaces,
            self.va_pages,
            self.max_handlers,
            self.layout.ram_ranges.len(),
            self.layout.mmio2_regions.len(),
            ram >> 10,
            self.dirty_tracking,
            self.weights
        ) + &match self.boot_nodes {
            0 => String::new(),
            n => format!(" boot_nodes={n}"),
        } + &self.platform_fault.map(|f| format!(" platform_fault={f:?}")).unwrap_or_default()
            + &match &self.concurrency {
                Some(c) => format!(
                    " concurrent(devices={} scheduler={} shootdown={:?} quiesce_every={})",
                    c.devices, c.scheduler, c.shootdown, c.quiesce_every
                ),
                None => String::new(),
            }
    }
}

/// The layout of a seed: main RAM from 0, one to three more RAM ranges, one or two MMIO
/// ranges, one to three MMIO2 regions (one mapped low, one above 4 GiB, one unmapped), and
/// `at_4gib`'s RAM range when there is room for it below the high MMIO2 range.
fn draw_layout(rng: &mut ChaCha8Rng, ram_mib: Option<u32>, at_4gib: Option<(u64, u32)>) -> MemoryLayout {
    let main_pages = match ram_mib {
        Some(mib) => (mib.max(1) as u64 * 256).min(1 << 22) as u32,
        None => rng.random_range(48..=192),
    };
    let mut b = MemoryLayout::builder().ram(0, main_pages);
    let mut next = ((main_pages as u64) << PAGE_SHIFT) + rng.random_range(1..=16u64) * 0x1000;
    for _ in 0..rng.random_range(1..=3) {
        let pages = rng.random_range(4..=64);
        b = b.ram(next, pages);
        next += ((pages as u64) << PAGE_SHIFT) + rng.random_range(0..=8u64) * 0x1000;
    }
    for _ in 0..rng.random_range(1..=2) {
        let pages = rng.random_range(2..=32);
        b = b.mmio(next, pages);
        next += ((pages as u64) << PAGE_SHIFT) + rng.random_range(1..=8u64) * 0x1000;
    }
    let regions = rng.random_range(1..=3);
    let mut high = None;
    for i in 0..regions {
        let pages = rng.random_range(2..=24);
        let (nb, h) = b.mmio2_region(pages);
        b = nb;
        // The first region is mapped above 4 GiB (the seed's historic 32-bit-mask bug), the
        // second below the high one; a third stays unmapped (an alias source only).
        if i == 0 {
            high = Some((h, pages));
        } else if i == 1 {
            b = b.map_mmio2(h, next);
            next += ((pages as u64) << PAGE_SHIFT) + 0x1000;
        }
    }
    if let Some((first, pages)) = at_4gib.filter(|&(first, _)| next <= first) {
        b = b.ram(first, pages);
        next = first + ((pages as u64) << PAGE_SHIFT);
    }
    if let Some((h, _)) = high {
        b = b.map_mmio2(h, next.max(FOUR_GIB) + rng.random_range(0..16u64) * 0x1000);
    }
    match b.build() {
        Ok(l) => l,
        Err(_) => MemoryLayout::builder()
            .ram(0, 64)
            .mmio(0x10_0000, 8)
            .build()
            .expect("fallback layout is valid"),
    }
}
