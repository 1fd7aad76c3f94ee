//! The simulated world, in parts: the two sides (production manager on the simulated
//! machine, reference model) with the names each handed out, the devices behind handler
//! callbacks, and the step log. Fields are private; the generator and the checks read the
//! world through the accessors here.

mod log;
mod sides;
mod touched;

use pgmsim::{Gpa, HandlerTypeConfig, Manager, ManagerConfig, NemMode, PhysHandlerApi, RangeKind};
use pgmsim_model::Model;
use pgmsim_testkit::ApiCall;

pub use log::{Stats, StepLog};
pub use sides::{Disagreement, PinnedSpan, Sides};
pub use touched::Touched;

use crate::check::{Failure, Invariant};
use crate::config::{Behaviour, SimConfig};
use crate::devices::{Devices, DirtyTracker};
use crate::machine::{Guest, Machine};
use crate::mmu::guest_pt::PtPool;
use crate::mmu::nem::{nem_state_for, NestedEntry};
use crate::mmu::{Mmu, MmuShape, Mode, PlatformFaults};

/// Everything one simulation owns. A clone is the same world (the fuzz targets build each
/// world once and run every input on a clone).
#[derive(Clone)]
pub struct World {
    /// Never changes once the world is built: shared by clones.
    config: std::sync::Arc<SimConfig>,
    sides: Sides,
    devices: Devices,
    log: StepLog,
}

impl World {
    /// Builds the world of `config`: both sides, types, address spaces, dirty trackers, and
    /// the platform defects the configuration records (none in drawn worlds).
    pub fn new(config: SimConfig) -> Result<World, Failure> {
        let faults = config.platform_faults();
        World::with_faults(config, faults)
    }

    /// Builds a world whose platform has deliberate defects (tests of the checks only).
    pub fn with_faults(config: SimConfig, faults: PlatformFaults) -> Result<World, Failure> {
        let machine = Machine::new(mmu_shape(&config), guest_of(&config)?, faults);
        let mgr_config = manager_config(&config);
        crate::check::setup_rules(&config.layout, mgr_config).map_err(Failure::setup)?;
        let prod = Manager::new(config.layout.clone(), mgr_config, machine)
            .map_err(|e| Failure::setup(format!("manager: {e}")))?;
        let mut model =
            Model::new(config.layout.clone(), mgr_config).map_err(|e| Failure::setup(format!("model: {e}")))?;
        model.set_all_pages_mapped(false);
        let mut world = World {
            sides: Sides::new(prod, model),
            devices: Devices::default(),
            log: StepLog::default(),
            config: std::sync::Arc::new(config),
        };
        world.register_types()?;
        if world.config.mode == Mode::Nem {
            world.map_nested_ram()?;
        }
        world.setup_dirty_tracking()?;
        world.create_boot_nodes()?;
        world.log.stats.coverage.world_drawn(&world.config);
        Ok(world)
    }

    fn register_types(&mut self) -> Result<(), Failure> {
        for t in &self.config.types {
            let tc = HandlerTypeConfig {
                kind: t.kind,
                not_in_hm: t.not_in_hm,
                keep_lock: t.keep_lock,
                description: t.description.as_str().into(),
            };
            self.sides.register_type(tc).map_err(Failure::setup)?;
        }
        Ok(())
    }

    /// A native API maps all of RAM at start; from then on only notifications change it.
    fn map_nested_ram(&mut self) -> Result<(), Failure> {
        let pages: Vec<(u64, pgmsim::PageDescriptor)> = self.sides.prod().ram_pages().collect();
        for (gp, d) in pages {
            let prot = d.nem_protection();
            let entry = NestedEntry {
                host: d.host_phys(),
                prot,
            };
            self.sides.machine_mut().mmu_mut().map_nested(Gpa(gp), entry);
            self.sides
                .prod_mut()
                .set_nem_state(gp, nem_state_for(prot))
                .map_err(|e| Failure::setup(format!("nem state of {gp:#x}: {e:?}")))?;
        }
        Ok(())
    }

    /// Registers a dirty-tracking handler over every mapped MMIO2 range (like the original's
    /// MMIO2 registration with `TRACK_DIRTY_PAGES`).
    fn setup_dirty_tracking(&mut self) -> Result<(), Failure> {
        let ty = self
            .config
            .types
            .iter()
            .position(|t| t.behaviour == Behaviour::DirtyTrack);
        let (true, Some(ty)) = (self.config.dirty_tracking, ty) else {
            return Ok(());
        };
        let layout = &self.config.layout;
        let ranges: Vec<(u64, u64, pgmsim::Hpa)> = layout
            .ram_ranges
            .iter()
            .filter_map(|r| match r.kind {
                RangeKind::Mmio2 { region } => Some((r.first, r.last(), layout.mmio2_region(region)?.host_base)),
                _ => None,
            })
            .collect();
        let mut offset = 0u32;
        for (first, last, host_base) in ranges {
            let call = ApiCall::Register {
                first,
                last,
                ty: ty as u8,
                user: first,
                described: false,
            };
            let outcome = self.sides.call(&call).map_err(|d| Failure::setup(d.to_string()))?;
            if let Some(e) = outcome.error() {
                return Err(Failure::setup(format!("dirty tracker at {first:#x}: {e:?}")));
            }
            let t = DirtyTracker::new(first, last, host_base, offset);
            offset += t.pages();
            self.devices.trackers.push(t);
        }
        self.sides.drain_events();
        Ok(())
    }

    /// Creates the configuration's boot nodes on both sides: unregistered nodes of the first
    /// type that no step names (they hold slots and nothing else).
    fn create_boot_nodes(&mut self) -> Result<(), Failure> {
        for i in 0..self.config.boot_nodes {
            self.sides
                .create_unnamed(u64::from(i))
                .map_err(|e| Failure::setup(format!("boot node {i}: {e}")))?;
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Both sides.
    pub fn sides(&self) -> &Sides {
        &self.sides
    }

    /// The production manager.
    pub fn prod(&self) -> &Manager<Machine> {
        self.sides.prod()
    }

    /// The reference model.
    pub fn model(&self) -> &Model {
        self.sides.model()
    }

    /// The simulated machine.
    pub fn machine(&self) -> &Machine {
        self.sides.machine()
    }

    /// The MMU.
    pub fn mmu(&self) -> &Mmu {
        self.sides.machine().mmu()
    }

    /// The guest.
    pub fn guest(&self) -> &Guest {
        self.sides.machine().guest()
    }

    /// The devices.
    pub fn devices(&self) -> &Devices {
        &self.devices
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.log.stats
    }

    /// What the current step touched.
    pub fn touched(&self) -> &Touched {
        &self.log.touched
    }

    /// Starts (or stops) keeping every production platform event of each step, for step
    /// logs and reports ([`World::step_events`]).
    pub fn record_events(&mut self, on: bool) {
        self.log.events = on.then(Vec::new);
    }

    /// The production platform events of the last step, if recording.
    pub fn step_events(&self) -> &[pgmsim::PlatformEvent] {
        self.log.events.as_deref().unwrap_or_default()
    }

    /// Index of the step being applied (0-based).
    pub fn step(&self) -> u64 {
        self.log.step
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.guest().vcpus()
    }

    /// Handler nodes created so far (create / dup), by creation index.
    pub fn nodes(&self) -> usize {
        self.sides.nodes()
    }

    /// The registration index of node `h`'s type (per the model), if the node exists.
    pub fn node_type(&self, h: u32) -> Option<u8> {
        let names = self.sides.model_names();
        let id = *names.nodes.get(h as usize)?;
        let info = self.model().handler_info(id).ok()?;
        names.type_index(info.ty)
    }

    /// A failure of `invariant` at the current step.
    pub fn failure(&self, invariant: Invariant, detail: String) -> Failure {
        Failure::new(self.log.step, invariant, detail)
    }

    pub(crate) fn parts_mut(&mut self) -> (&mut Sides, &mut Devices, &mut StepLog) {
        (&mut self.sides, &mut self.devices, &mut self.log)
    }

    pub(crate) fn log(&self) -> &StepLog {
        &self.log
    }

    pub(crate) fn log_mut(&mut self) -> &mut StepLog {
        &mut self.log
    }

    /// Makes the world concurrent: the machine gets its vCPU states, lock and scheduler.
    pub(crate) fn make_concurrent(&mut self, sched: crate::conc::sched::Scheduler, shootdown: crate::conc::Shootdown) {
        let hw = crate::conc::hw::Hw::new(self.vcpus(), shootdown, sched);
        self.sides.machine_mut().set_hw(hw);
    }

    /// The concurrent half of the machine (concurrent worlds only).
    pub(crate) fn hw_mut(&mut self) -> &mut crate::conc::hw::Hw {
        self.sides.machine_mut().hw_mut().expect("a concurrent world")
    }

    /// The simulated machine, mutably.
    pub(crate) fn machine_mut(&mut self) -> &mut Machine {
        self.sides.machine_mut()
    }

    /// Records a guest write reaching `gp` (dirty-tracking ground truth).
    pub(crate) fn note_write(&mut self, gp: u64, host: pgmsim::Hpa) {
        self.devices.note_write(gp, host);
    }

    /// Whether the world is concurrent.
    pub fn is_concurrent(&self) -> bool {
        self.machine().hw().is_some()
    }
}

fn mmu_shape(config: &SimConfig) -> MmuShape {
    MmuShape {
        mode: config.mode,
        vcpus: config.vcpus.clamp(1, 8),
        tlb_sets: config.tlb_sets as usize,
        tlb_ways: config.tlb_ways as usize,
        va_pages: config.va_pages,
        revmap_capacity: config.revmap_capacity as usize,
    }
}

fn manager_config(config: &SimConfig) -> ManagerConfig {
    let nem = match (config.mode, config.nem_exclusive) {
        (Mode::Shadow, _) => NemMode::Off,
        (Mode::Nem, false) => NemMode::Notify,
        (Mode::Nem, true) => NemMode::Exclusive,
    };
    ManagerConfig {
        max_handlers: config.max_handlers,
        nem,
        ..ManagerConfig::default()
    }
}

/// The guest: page tables in a pool at the start of the first RAM range.
fn guest_of(config: &SimConfig) -> Result<Guest, Failure> {
    let first = config.layout.ram_ranges.first().map(|r| (r.first, r.kind, r.pages));
    let (pool_gp, pool_host) = match first {
        Some((first, RangeKind::Ram { host_base }, pages)) if pages > config.pt_pool_pages + 8 => (first, host_base),
        _ => {
            return Err(Failure::setup(
                "layout: the first RAM range must be RAM with room for the page-table pool".into(),
            ))
        }
    };
    let pool = PtPool::new(Gpa(pool_gp), pool_host, config.pt_pool_pages);
    Guest::new(pool, config.address_spaces, config.vcpus.clamp(1, 8) as usize)
        .ok_or_else(|| Failure::setup("pool: too small for the address spaces".into()))
}
