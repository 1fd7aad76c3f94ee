//! The simulated world: the production manager wired to the software MMU, the reference
//! model beside it, host memory, the guest kernel's page tables and the devices.

use std::collections::BTreeMap;
use std::fmt::Debug;

use pgmsim::{
    HandlerId, HandlerTypeConfig, HandlerTypeHandle, Manager, ManagerConfig, NemMode, PhysHandlerApi, RangeKind,
    PAGE_SHIFT,
};
use pgmsim_model::Model;
use serde::Serialize;

use crate::check::{Failure, Invariant};
use crate::config::{Behaviour, SimConfig};
use crate::devices::{Devices, DirtyTracker};
use crate::memory::HostMemory;
use crate::mmu::guest_pt::PtPool;
use crate::mmu::nem::{nem_state_for, NestedEntry};
use crate::mmu::{Mmu, Mode, PlatformFaults};

/// Counters reported by `pgmsim run --json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Steps applied, per operation kind.
    pub ops: BTreeMap<&'static str, u64>,
    /// Failed manager operations, per error kind (identical on both sides by construction).
    pub errors: BTreeMap<&'static str, u64>,
    /// Guest accesses.
    pub accesses: u64,
    /// Handler callbacks invoked.
    pub handler_calls: u64,
    /// Accesses the guest's own tables refused.
    pub guest_faults: u64,
    /// Accesses served by a TLB entry.
    pub tlb_hits: u64,
    /// TLB misses (each access may miss more than once while it is resolved).
    pub tlb_misses: u64,
    /// Shadow PTEs synced on faults.
    pub shadow_syncs: u64,
    /// Invariant checks performed (one per invariant per step, or per full pass).
    pub invariant_checks: u64,
    /// Full checks performed.
    pub full_checks: u64,
}

/// Guest pages (and handlers) one step touched, for incremental checks.
#[derive(Debug, Clone, Default)]
pub struct Touched {
    /// Guest page bases.
    pub pages: Vec<u64>,
    /// Virtual pages whose translations changed: (address space, page index).
    pub vpages: Vec<(u8, u32)>,
    /// The step may have changed anything: check everything.
    pub all: bool,
    /// A manager operation ran (handler list and events must be compared).
    pub manager: bool,
    /// A span was too large to list page by page; only its edges were listed. If the
    /// operation succeeded the step is checked in full, if it failed (and so changed nothing)
    /// the edges suffice.
    pub large_span: bool,
}

impl Touched {
    /// Marks every page of `[first, last]` plus one page either side (edge recalculation
    /// reaches the neighbours' shared pages); very large spans degrade to a full check.
    pub fn span(&mut self, first: u64, last: u64) {
        let lo = (first >> PAGE_SHIFT).saturating_sub(1);
        let hi = (last >> PAGE_SHIFT).saturating_add(1);
        if hi - lo > 4096 {
            self.large_span = true;
            for p in [lo, lo + 1, lo + 2, hi - 2, hi - 1, hi] {
                self.pages.push(p << PAGE_SHIFT);
            }
            return;
        }
        for p in lo..=hi {
            self.pages.push(p << PAGE_SHIFT);
        }
    }

    fn clear(&mut self) {
        self.pages.clear();
        self.vpages.clear();
        self.all = false;
        self.manager = false;
        self.large_span = false;
    }
}

/// Everything one simulation owns.
pub struct World {
    /// The configuration.
    pub config: SimConfig,
    /// The production manager, whose platform is the MMU.
    pub prod: Manager<Mmu>,
    /// The reference model.
    pub model: Model,
    /// Host memory.
    pub mem: HostMemory,
    /// Page-table pool.
    pub pool: PtPool,
    /// Top-level table of each address space.
    pub spaces: Vec<u64>,
    /// Each vCPU's current address space (the guest's view; the MMU keeps its own copy).
    pub vcpu_space: Vec<u8>,
    /// Mapped virtual pages per address space (guest-physical page), for the generator.
    pub mappings: Vec<BTreeMap<u32, u64>>,
    /// Type handles by type index (equal on both sides).
    pub types: Vec<HandlerTypeHandle>,
    /// Handler nodes by creation index: (production id, model id).
    pub nodes: Vec<(HandlerId, HandlerId)>,
    /// Devices.
    pub devices: Devices,
    /// Counters.
    pub stats: Stats,
    /// What the current step touched.
    pub touched: Touched,
    /// Index of the step being applied.
    pub step: u64,
}

impl World {
    /// Builds the world of `config`: both managers, types, address spaces, dirty trackers.
    pub fn new(config: SimConfig) -> Result<World, Failure> {
        World::with_faults(config, PlatformFaults::default())
    }

    /// Builds a world whose platform has deliberate defects (tests of the checks only).
    pub fn with_faults(config: SimConfig, faults: PlatformFaults) -> Result<World, Failure> {
        let setup = |what: &str, e: &dyn Debug| Failure::setup(format!("{what}: {e:?}"));
        let layout = config.layout.clone();
        let nem = match (config.mode, config.nem_exclusive) {
            (Mode::Shadow, _) => NemMode::Off,
            (Mode::Nem, false) => NemMode::Notify,
            (Mode::Nem, true) => NemMode::Exclusive,
        };
        let mgr_config = ManagerConfig {
            max_handlers: config.max_handlers,
            nem,
            ..ManagerConfig::default()
        };
        let (pool_gp, pool_host) = match layout.ram_ranges.first().map(|r| (r.first, r.kind, r.pages)) {
            Some((first, RangeKind::Ram { host_base }, pages)) if pages > config.pt_pool_pages + 8 => {
                (first, host_base)
            }
            _ => {
                return Err(setup(
                    "layout",
                    &"the first RAM range must be RAM with room for the page-table pool",
                ))
            }
        };
        let mut mem = HostMemory::default();
        let mut pool = PtPool::new(pool_gp, pool_host, config.pt_pool_pages);
        let spaces: Vec<u64> = (0..config.address_spaces.max(1))
            .map(|_| {
                pool.alloc(&mut mem)
                    .ok_or_else(|| setup("pool", &"too small for the address spaces"))
            })
            .collect::<Result<_, _>>()?;
        let mut mmu = Mmu::new(
            config.mode,
            config.vcpus.clamp(1, 8),
            spaces[0],
            config.tlb_sets as usize,
            config.tlb_ways as usize,
            config.va_pages,
            config.revmap_capacity as usize,
        );
        mmu.faults = faults;
        let mut prod = Manager::new(layout.clone(), mgr_config, mmu).map_err(|e| setup("manager", &e))?;
        let mut model = Model::new(layout.clone(), mgr_config).map_err(|e| setup("model", &e))?;
        model.set_all_pages_mapped(false);
        let mut types = Vec::new();
        for t in &config.types {
            let tc = HandlerTypeConfig {
                kind: t.kind,
                not_in_hm: t.not_in_hm,
                keep_lock: t.keep_lock,
                description: t.description.as_str().into(),
            };
            let a = prod.register_type(tc.clone()).map_err(|e| setup("type", &e))?;
            let b = model.register_type(tc).map_err(|e| setup("type", &e))?;
            if a != b {
                return Err(setup("type handles differ", &(a, b)));
            }
            types.push(a);
        }
        if config.mode == Mode::Nem {
            // A native API maps all of RAM at start; from then on only notifications change it.
            for range in &layout.ram_ranges {
                for i in 0..range.pages {
                    let gp = range.first + ((i as u64) << PAGE_SHIFT);
                    let d = prod.page(gp).ok_or_else(|| setup("nem", &gp))?;
                    let prot = d.nem_protection();
                    prod.platform_mut().nested.set(
                        gp,
                        NestedEntry {
                            host: d.host_phys().0,
                            prot,
                        },
                    );
                    prod.set_nem_state(gp, nem_state_for(prot))
                        .map_err(|e| setup("nem", &e))?;
                }
            }
        }
        let mut world = World {
            vcpu_space: vec![0; config.vcpus.clamp(1, 8) as usize],
            mappings: vec![BTreeMap::new(); spaces.len()],
            config,
            prod,
            model,
            mem,
            pool,
            spaces,
            types,
            nodes: Vec::new(),
            devices: Devices::default(),
            stats: Stats::default(),
            touched: Touched::default(),
            step: 0,
        };
        world.setup_dirty_tracking()?;
        Ok(world)
    }

    /// Registers a dirty-tracking handler over every mapped MMIO2 range (like the seed's MMIO2
    /// registration with `TRACK_DIRTY_PAGES`).
    fn setup_dirty_tracking(&mut self) -> Result<(), Failure> {
        if !self.config.dirty_tracking {
            return Ok(());
        }
        let Some(ty) = self
            .config
            .types
            .iter()
            .position(|t| t.behaviour == Behaviour::DirtyTrack)
        else {
            return Ok(());
        };
        let handle = self.types[ty];
        let mut offset = 0u32;
        let ranges: Vec<_> = self
            .config
            .layout
            .ram_ranges
            .iter()
            .filter(|r| matches!(r.kind, RangeKind::Mmio2 { .. }))
            .map(|r| (r.first, r.last()))
            .collect();
        for (first, last) in ranges {
            let r = self.both("register dirty tracker", |m| {
                m.register(first, last, handle, first, None)
            })?;
            if r.is_err() {
                return Err(Failure::setup(format!("dirty tracker at {first:#x}: {r:?}")));
            }
            let t = DirtyTracker {
                first,
                last,
                bitmap_offset: offset,
                written: Default::default(),
            };
            offset += t.pages();
            self.devices.trackers.push(t);
        }
        self.drain_events();
        Ok(())
    }

    /// Applies the same call to the production manager and the model and demands the same
    /// answer (invariant 4).
    pub fn both<R: PartialEq + Debug>(
        &mut self,
        what: &str,
        f: impl Fn(&mut dyn PhysHandlerApi) -> R,
    ) -> Result<R, Failure> {
        let a = f(&mut self.prod);
        let b = f(&mut self.model);
        if a != b {
            return Err(Failure::new(
                self.step,
                Invariant::Differential,
                format!("{what}: production returned {a:?}, model returned {b:?}"),
            ));
        }
        Ok(a)
    }

    /// Like [`World::both`] for an operation whose success status reports a platform
    /// fallback to a full resync (`GcPhysAliased` from registration, `SyncCr3` from the bitmap
    /// reset). The model cannot know what the MMU's reverse map did, so when the MMU resynced
    /// during the production call, the model's `Success` is expected as `resync_status`.
    pub fn both_resync(
        &mut self,
        what: &str,
        resync_status: pgmsim::Status,
        f: impl Fn(&mut dyn PhysHandlerApi) -> pgmsim::OpResult,
    ) -> Result<pgmsim::OpResult, Failure> {
        let before = self.prod.platform().stats.resyncs;
        let a = f(&mut self.prod);
        let resynced = self.prod.platform().stats.resyncs != before;
        let b = f(&mut self.model);
        self.same_resync(what, a, b, resynced, resync_status)
    }

    /// Compares two operation results, allowing the resync status when the MMU resynced.
    pub fn same_resync(
        &self,
        what: &str,
        a: pgmsim::OpResult,
        b: pgmsim::OpResult,
        resynced: bool,
        resync_status: pgmsim::Status,
    ) -> Result<pgmsim::OpResult, Failure> {
        let expected = match b {
            Ok(pgmsim::Status::Success) if resynced => Ok(resync_status),
            other => other,
        };
        if a != expected {
            return Err(Failure::new(
                self.step,
                Invariant::Differential,
                format!("{what}: production returned {a:?}, model returned {b:?} (resync: {resynced})"),
            ));
        }
        Ok(a)
    }

    /// Drops the recorded platform events of both sides.
    pub fn drain_events(&mut self) {
        self.prod.platform_mut().log.clear();
        self.model.take_events();
    }

    /// Resets the per-step bookkeeping before a step.
    pub fn begin_step(&mut self) {
        self.touched.clear();
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.vcpu_space.len()
    }
}
