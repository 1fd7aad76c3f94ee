//! Observing a trace step by step, for step logs and reports: replays it in the world its
//! configuration describes (as `replay` does, same world, same steps, same checks, so it
//! meets the same failure) and records, for every step, the result, every production platform
//! event, every page whose descriptor changed (before and after) and the handlers added,
//! removed or changed; at a failure, the production and model page maps around it.
//!
//! Changed pages are found by comparing the pages against a copy kept from the previous step:
//! every page when the guest has at most [`FULL_SCAN_PAGES`] pages (so nothing a step does
//! can hide), else the pages the step touched (everything after a step with a very large
//! span).
//!
//! A concurrent trace is replayed by the concurrent executor under its schedule
//! (`concurrent.rs`): each operation's record collects what the manager did while its thread
//! held the PGM lock, and the run's timeline gives one lane per thread.

mod concurrent;

pub use concurrent::Lanes;

use std::panic::{catch_unwind, AssertUnwindSafe};

use pgmsim::{HandlerKind, PageDescriptor, PageView, PlatformEvent, PAGE_SHIFT};
use pgmsim_testkit::render::{self, HandlerRow, HostNames, PageChange};

use crate::check::{self, CheckMode, Failure};
use crate::config::SimConfig;
use crate::describe::call_address;
use crate::op::{Op, StepResult};
use crate::run::panicked;
use crate::trace::Trace;
use crate::world::World;

/// Guests up to this many pages are compared page by page after every step.
pub const FULL_SCAN_PAGES: usize = 1 << 16;

/// Pages shown in a failure's page maps.
pub const FAILURE_WINDOW_PAGES: u32 = 128;

/// One observed step.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// The step.
    pub op: Op,
    /// Its result (`None`: the step failed; the failure is the observation's).
    pub result: Option<StepResult>,
    /// Every platform event the production manager sent, in order.
    pub events: Vec<PlatformEvent>,
    /// Pages whose descriptor changed, in address order.
    pub pages: Vec<PageChange>,
    /// Handlers added, removed or changed (`render::handler_change_lines`).
    pub handlers: Vec<String>,
    /// The thread that ran the step (concurrent traces; `None`: a sequential trace).
    pub thread: Option<u8>,
}

/// A registered handler's lifetime: registered by step `from` (`None`: before the first
/// step), deregistered by step `to` (`None`: still registered at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerBand {
    /// First byte.
    pub key: u64,
    /// Last byte.
    pub key_last: u64,
    /// Kind.
    pub kind: HandlerKind,
    /// Description.
    pub description: String,
    /// The step that registered it.
    pub from: Option<usize>,
    /// The step that deregistered it.
    pub to: Option<usize>,
}

/// A failure with the state around it: expected (model) against actual (production).
#[derive(Debug, Clone)]
pub struct FailureView {
    /// The failure as the check reported it.
    pub failure: Failure,
    /// First page of the maps.
    pub window: u64,
    /// Production page map of the window.
    pub production: String,
    /// Model page map of the window.
    pub model: String,
}

/// A trace, observed.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The world.
    pub config: SimConfig,
    /// How host pages are named.
    pub hosts: HostNames,
    /// Every page before the first step (after the world's setup), in address order.
    pub initial: Vec<(u64, PageView)>,
    /// The steps applied, the failing one last.
    pub steps: Vec<StepRecord>,
    /// Every handler registered at some point.
    pub handlers: Vec<HandlerBand>,
    /// The failure, if the trace fails.
    pub failure: Option<FailureView>,
    /// Index of the failing step (`None`: no failure, or one outside every step: the world's
    /// setup, the final full check, a concurrent world's quiescent point).
    pub failing: Option<usize>,
    /// A concurrent trace's threads, lock and schedule, one lane per thread.
    pub lanes: Option<Lanes>,
}

/// What the observer carries from one step to the next.
struct Watch {
    pages: Vec<(u64, PageDescriptor)>,
    handlers: Vec<HandlerRow>,
    full_scan: bool,
}

impl Watch {
    fn start(world: &World) -> Watch {
        let pages: Vec<(u64, PageDescriptor)> = world.prod().ram_pages().collect();
        Watch {
            full_scan: pages.len() <= FULL_SCAN_PAGES,
            pages,
            handlers: render::handler_rows(world.prod()),
        }
    }

    /// The pages that changed since the previous step, the copy brought up to date.
    fn page_changes(&mut self, world: &World) -> Vec<PageChange> {
        let mut out = Vec::new();
        let mut note = |slot: &mut (u64, PageDescriptor), now: PageDescriptor| {
            if slot.1.without_nem_state() != now.without_nem_state() {
                out.push(PageChange {
                    addr: slot.0,
                    before: PageView::from(slot.1),
                    after: PageView::from(now),
                });
            }
            slot.1 = now;
        };
        let touched = world.touched();
        if self.full_scan || touched.all || touched.large_span {
            for (slot, (_, now)) in self.pages.iter_mut().zip(world.prod().ram_pages()) {
                note(slot, now);
            }
            return out;
        }
        let mut gps = touched.pages.clone();
        gps.sort_unstable();
        gps.dedup();
        for gp in gps {
            if let (Ok(i), Some(now)) = (self.pages.binary_search_by_key(&gp, |p| p.0), world.prod().page(gp)) {
                note(&mut self.pages[i], now);
            }
        }
        out
    }

    /// The handler changes since the last look (as lines), the bands brought up to date at
    /// `step`.
    fn handler_changes(&mut self, world: &World, bands: &mut Vec<HandlerBand>, step: usize) -> Vec<String> {
        let now = render::handler_rows(world.prod());
        let lines = render::handler_change_lines(&self.handlers, &now);
        update_bands(bands, &self.handlers, &now, step);
        self.handlers = now;
        lines
    }
}

impl Observation {
    /// Replays `trace` with `check` and observes every step: a sequential trace step by
    /// step, a concurrent one under its schedule by the concurrent executor. (`Result` for
    /// traces no observer can replay; every trace `replay` accepts is observed.)
    pub fn of(trace: &Trace, check: CheckMode) -> Result<Observation, String> {
        if trace.config.concurrency.is_some() {
            return Ok(concurrent::observe(trace, check));
        }
        Ok(Observation::sequential(trace, check))
    }

    /// An observation of `config` with nothing observed yet.
    fn empty(config: &SimConfig) -> Observation {
        Observation {
            hosts: HostNames::of(&config.layout),
            config: config.clone(),
            initial: Vec::new(),
            steps: Vec::new(),
            handlers: Vec::new(),
            failure: None,
            failing: None,
            lanes: None,
        }
    }

    fn sequential(trace: &Trace, check: CheckMode) -> Observation {
        let mut obs = Observation::empty(&trace.config);
        let Some(mut world) = recording_world(trace, &mut obs) else {
            return obs;
        };
        let mut watch = Watch::start(&world);
        obs.initial = watch.pages.iter().map(|&(a, d)| (a, PageView::from(d))).collect();
        obs.handlers = watch.handlers.iter().map(|h| HandlerBand::of(h, None)).collect();
        for op in &trace.ops {
            let r = catch_unwind(AssertUnwindSafe(|| world.apply(op, check)));
            let (result, failure) = match r {
                Ok(Ok(r)) => (Some(r), None),
                Ok(Err(f)) => (None, Some(f)),
                Err(payload) => (None, Some(panicked(world.step(), "applying the step", payload))),
            };
            obs.record(&world, &mut watch, op.clone(), result);
            if let Some(f) = failure {
                obs.failing = (f.step as usize == obs.steps.len() - 1).then_some(obs.steps.len() - 1);
                obs.failure = Some(FailureView::at(&world, Some(op), f));
                return obs;
            }
        }
        match catch_unwind(AssertUnwindSafe(|| check::full_check(&mut world))) {
            Ok(Ok(())) => {}
            Ok(Err(f)) => obs.failure = Some(FailureView::at(&world, None, f)),
            Err(payload) => {
                let f = panicked(world.step(), "the final full check", payload);
                obs.failure = Some(FailureView::bare(f));
            }
        }
        obs
    }

    fn record(&mut self, world: &World, watch: &mut Watch, op: Op, result: Option<StepResult>) {
        let index = self.steps.len();
        let pages = watch.page_changes(world);
        let mut handlers = Vec::new();
        if world.touched().manager {
            handlers = watch.handler_changes(world, &mut self.handlers, index);
        }
        self.steps.push(StepRecord {
            op,
            result,
            events: world.step_events().to_vec(),
            pages,
            handlers,
            thread: None,
        });
    }

    /// Index of the failing step, if a step failed (a failure of the final full check is
    /// after the last step).
    pub fn failing_step(&self) -> Option<usize> {
        self.failing
    }
}

/// Closes the bands of the handlers gone between `before` and `after` and opens bands for the
/// new ones, at `step`.
fn update_bands(bands: &mut Vec<HandlerBand>, before: &[HandlerRow], after: &[HandlerRow], step: usize) {
    let same = |a: &HandlerRow, b: &HandlerRow| {
        (a.info.key, a.info.key_last, a.info.kind) == (b.info.key, b.info.key_last, b.info.kind)
    };
    for old in before.iter().filter(|o| !after.iter().any(|n| same(n, o))) {
        let open = bands.iter_mut().rev().find(|b| {
            b.to.is_none() && (b.key, b.key_last, b.kind) == (old.info.key, old.info.key_last, old.info.kind)
        });
        if let Some(b) = open {
            b.to = Some(step);
        }
    }
    for new in after.iter().filter(|n| !before.iter().any(|o| same(n, o))) {
        bands.push(HandlerBand::of(new, Some(step)));
    }
}

impl StepRecord {
    /// A step not yet applied (no result, nothing recorded), run by `thread` if concurrent.
    fn new(op: Op, thread: Option<u8>) -> StepRecord {
        StepRecord {
            op,
            result: None,
            events: Vec::new(),
            pages: Vec::new(),
            handlers: Vec::new(),
            thread,
        }
    }
}

impl HandlerBand {
    fn of(h: &HandlerRow, from: Option<usize>) -> HandlerBand {
        HandlerBand {
            key: h.info.key,
            key_last: h.info.key_last,
            kind: h.info.kind,
            description: h.info.description.to_string(),
            from,
            to: None,
        }
    }
}

impl FailureView {
    fn bare(failure: Failure) -> FailureView {
        FailureView {
            failure,
            window: 0,
            production: String::new(),
            model: String::new(),
        }
    }

    /// The failure with the page maps of both sides around the page `op` names (or the
    /// first page the failing step touched).
    fn at(world: &World, op: Option<&Op>, failure: Failure) -> FailureView {
        let touched = world.touched().pages.iter().min().copied();
        let Some(focus) = op.and_then(|op| focus(world, op)).or(touched) else {
            return FailureView::bare(failure);
        };
        let line = 64u64 << PAGE_SHIFT;
        let window = focus.saturating_sub(16 << PAGE_SHIFT) / line * line;
        FailureView {
            failure,
            window,
            production: render::page_map_range(world.prod(), window, FAILURE_WINDOW_PAGES),
            model: render::page_map_range(world.model(), window, FAILURE_WINDOW_PAGES),
        }
    }
}

/// The guest-physical address a step is about: the call's address, the mapped page, the
/// page an access reaches through the guest's tables, the harvested range.
fn focus(world: &World, op: &Op) -> Option<u64> {
    match *op {
        Op::Call(ref c) => call_address(c),
        Op::Query { addr } => Some(addr),
        Op::Map { gp, .. } => Some(gp),
        Op::Access { vcpu, va, .. } => {
            let space = world.guest().space_of(vcpu as usize % world.vcpus().max(1));
            world.guest().walk(space, pgmsim::Gva(va)).map(|g| g.gp.0)
        }
        Op::Unmap { space, vpi } | Op::Protect { space, vpi, .. } => {
            let s = space as usize % world.guest().spaces().max(1);
            world.guest().mappings(s).get(&vpi).map(|g| g.0)
        }
        Op::Harvest { tracker } => world.devices().trackers.get(tracker as usize).map(|t| t.first),
        Op::SwitchCr3 { .. } => None,
    }
}

/// The world of `trace`, recording platform events; `None` (with the failure in `obs`) when it
/// cannot be built.
pub(super) fn recording_world(trace: &Trace, obs: &mut Observation) -> Option<World> {
    match catch_unwind(AssertUnwindSafe(|| World::new(trace.config.clone()))) {
        Ok(Ok(mut w)) => {
            w.record_events(true);
            Some(w)
        }
        Ok(Err(f)) => {
            obs.failure = Some(FailureView::bare(f));
            None
        }
        Err(payload) => {
            obs.failure = Some(FailureView::bare(panicked(0, "building the world", payload)));
            None
        }
    }
}
