//! The scenario harness: the production manager and the reference model driven in lock-step
//! through the testkit's call vocabulary, with a transition table recorded from the
//! production side.
//!
//! After every call the harness asserts that both sides agree: the outcome (on a platform
//! that answers every PTE update with a resync, the production's `GcPhysAliased` / `SyncCr3`
//! compare as the model's `Success`: the model never asks for a resync), the platform events
//! (NEM notifications aside: the model keeps no NEM state), every page, the handler list,
//! the live count, and `check_sync` against the mismatches the model expects. Every call runs
//! through `apply_checked` (or, for the two calls the vocabulary cannot say, the same
//! `Before` capture), so a failed call is proven to change nothing on either side. A
//! scenario then checks its own expectations on the production side (`events`, `mgr`) and
//! snapshots the table where the old snapshot suite did.

use std::hash::{DefaultHasher, Hash, Hasher};

use insta::{assert_snapshot, Settings};
use pgmsim::{
    Error, HandlerInfo, HandlerKind, HandlerState, HandlerTypeConfig, Manager, ManagerConfig, MemoryLayout, NemMode,
    PhysHandlerApi, PlatformEvent, Status,
};
use pgmsim_model::Model;
use pgmsim_testkit::call::{apply_checked, Before, NodeIx, TypeIx};
use pgmsim_testkit::render::{self, TransitionTable};
use pgmsim_testkit::{compare, ApiCall, Names, Outcome, RecordingPlatform};

/// One step of a scenario: a call of the vocabulary, or one of the two calls it cannot say,
/// run the same way on both sides.
#[derive(Debug, Clone)]
pub enum Call {
    /// A call of the vocabulary.
    Api(ApiCall),
    /// `register` or `create` with this description (the vocabulary only knows "custom").
    Described(ApiCall, &'static str),
    /// `reset_mmio2_with_bitmap` on a caller's bitmap as it stands (the vocabulary's bitmaps
    /// start with every word equal), e.g. one an earlier harvest filled.
    Bitmap {
        /// Handler start.
        addr: u64,
        /// The bitmap before the call.
        bitmap: Vec<u64>,
        /// Bit offset.
        offset: u32,
    },
}

impl From<ApiCall> for Call {
    fn from(call: ApiCall) -> Call {
        Call::Api(call)
    }
}

/// `register(first, last, ty, user)` with the type's description.
pub fn reg(first: u64, last: u64, ty: TypeIx, user: u64) -> Call {
    Call::Api(ApiCall::Register {
        first,
        last,
        ty,
        user,
        described: false,
    })
}

/// `register(first, last, ty, user, Some(description))`.
pub fn reg_as(first: u64, last: u64, ty: TypeIx, user: u64, description: &'static str) -> Call {
    let call = ApiCall::Register {
        first,
        last,
        ty,
        user,
        described: true,
    };
    Call::Described(call, description)
}

/// `create(ty, user, Some(description))`.
pub fn create_as(ty: TypeIx, user: u64, description: &'static str) -> Call {
    let call = ApiCall::Create {
        ty,
        user,
        described: true,
    };
    Call::Described(call, description)
}

fn model_digest(model: &Model) -> u64 {
    let mut h = DefaultHasher::new();
    format!("{model:?}").hash(&mut h);
    h.finish()
}

fn manager_digest(mgr: &Manager<RecordingPlatform>) -> u64 {
    mgr.state_digest()
}

/// Runs `call` on one side; panics if a failed call changed anything.
fn run_side<S: PhysHandlerApi>(api: &mut S, names: &mut Names, call: &Call, digest: &dyn Fn(&S) -> u64) -> Outcome {
    let (before, outcome) = match call {
        Call::Api(c) => return apply_checked(api, names, c, digest).unwrap_or_else(|e| panic!("{e}")),
        Call::Described(
            ApiCall::Register {
                first, last, ty, user, ..
            },
            description,
        ) => {
            let before = Before::capture(api, digest);
            let r = api.register(*first, *last, names.ty(*ty), *user, Some(description));
            (before, Outcome::Status(r))
        }
        Call::Described(ApiCall::Create { ty, user, .. }, description) => {
            let before = Before::capture(api, digest);
            let r = api.create(names.ty(*ty), *user, Some(description));
            (before, Outcome::Created(r.map(|id| names.nodes.push(id))))
        }
        Call::Bitmap { addr, bitmap, offset } => {
            let before = Before::capture(api, digest);
            let mut after = bitmap.clone();
            let r = api.reset_mmio2_with_bitmap(*addr, &mut after, *offset);
            assert!(
                r.is_ok() || after == *bitmap,
                "{call:?} failed with {r:?} but wrote the bitmap"
            );
            (before, Outcome::Bitmap(r, after))
        }
        Call::Described(other, _) => panic!("only register and create take a description: {other:?}"),
    };
    if let Some(e) = outcome.error() {
        before
            .unchanged(api, digest)
            .unwrap_or_else(|what| panic!("{call:?} failed with {e:?} but changed the state: {what}"));
    }
    outcome
}

/// The production's outcome as the model sees it: on a resyncing platform the informational
/// resync statuses are the model's `Success`.
fn as_model_sees(outcome: &Outcome, resync: bool) -> Outcome {
    let plain = |r: &Result<Status, Error>| match r {
        Ok(Status::GcPhysAliased | Status::SyncCr3) if resync => Ok(Status::Success),
        other => *other,
    };
    match outcome {
        Outcome::Status(r) => Outcome::Status(plain(r)),
        Outcome::Bitmap(r, bits) => Outcome::Bitmap(plain(r), bits.clone()),
        other => other.clone(),
    }
}

/// The error of a failed call, queries included.
fn error_of(outcome: &Outcome) -> Option<Error> {
    match outcome {
        Outcome::IsAll(Err(e)) | Outcome::Info(Err(e)) | Outcome::TypeConfig(Err(e)) => Some(*e),
        other => other.error(),
    }
}

/// A scenario under construction: both sides, the names each handed out, and the production
/// side's transition table.
pub struct Scenario {
    mgr: Manager<RecordingPlatform>,
    names: Names,
    model: Model,
    model_names: Names,
    table: TransitionTable,
    events: Vec<PlatformEvent>,
    resync: bool,
}

impl Scenario {
    /// A scenario over `layout` with the default configuration, every page mapped.
    pub fn new(title: &str, layout: MemoryLayout) -> Self {
        Self::with(title, layout, ManagerConfig::default(), RecordingPlatform::mapped())
    }

    /// A scenario with a configuration and a platform; the model is told whether the
    /// platform maps pages.
    pub fn with(title: &str, layout: MemoryLayout, config: ManagerConfig, platform: RecordingPlatform) -> Self {
        let (mapped, resync) = (platform.answer.flush_tlbs, platform.answer.resync);
        let mgr = Manager::new(layout.clone(), config, platform).expect("valid layout and config");
        let mut model = Model::new(layout, config).expect("the model accepts what production accepts");
        model.set_all_pages_mapped(mapped);
        let table = TransitionTable::start(title, &mgr);
        Scenario {
            mgr,
            names: Names::default(),
            model,
            model_names: Names::default(),
            table,
            events: Vec::new(),
            resync,
        }
    }

    /// A scenario in NEM mode `nem`, noted in the table.
    pub fn nem(title: &str, layout: MemoryLayout, nem: NemMode) -> Self {
        let config = ManagerConfig {
            nem,
            ..ManagerConfig::default()
        };
        let mut sc = Self::with(title, layout, config, RecordingPlatform::mapped());
        sc.note(format!("NEM mode: {nem:?}"));
        sc
    }

    /// Registers a handler type on both sides (setup, noted in the table); its index.
    pub fn ty(&mut self, kind: HandlerKind, not_in_hm: bool, description: &str) -> TypeIx {
        let mut config = HandlerTypeConfig::new(kind, description);
        config.not_in_hm = not_in_hm;
        self.names
            .types
            .push(self.mgr.register_type(config.clone()).expect("type slot"));
        self.model_names
            .types
            .push(self.model.register_type(config).expect("type slot"));
        let flag = if not_in_hm { ", not-in-HM" } else { "" };
        self.note(format!("handler type {description:?}: {kind:?}{flag}"));
        (self.names.types.len() - 1) as TypeIx
    }

    /// Runs `call` on both sides, asserts they agree, and returns the production outcome
    /// (nothing is recorded).
    fn run(&mut self, call: &Call) -> Outcome {
        assert!(self.mgr.platform().events.is_empty(), "stray events before {call:?}");
        let got = run_side(&mut self.mgr, &mut self.names, call, &manager_digest);
        let want = run_side(&mut self.model, &mut self.model_names, call, &model_digest);
        assert_eq!(
            as_model_sees(&got, self.resync),
            want,
            "outcome of {call:?} (production left, model right)"
        );
        let events = self.mgr.platform_mut().take();
        let model_events = self.model.take_events();
        assert_eq!(
            compare::without_nem(&events),
            model_events,
            "platform events of {call:?} (production left)"
        );
        if let Err(diff) = compare::same_state(&self.mgr, &self.names, &self.model, &self.model_names) {
            panic!("after {call:?}, production and model differ (production first): {diff}");
        }
        let expected = self.model.expected_sync_mismatches();
        assert_eq!(
            self.mgr.check_sync(),
            expected,
            "check_sync after {call:?} (model's expectation right)"
        );
        self.events.extend(events);
        got
    }

    /// Records the step `text` with its result text and the events since the last step;
    /// `check_sync` mismatches (only ever the ones the model expects) are noted.
    fn record(&mut self, text: &str, result: String) {
        let events = std::mem::take(&mut self.events);
        self.table.record(text, &Shown(result), &events, &self.mgr);
        self.events = events;
        for m in self.mgr.check_sync() {
            // Pretty hex Debug, folded onto one line: addresses read as addresses.
            let line = format!("{m:#x?}").split_whitespace().collect::<Vec<_>>().join(" ");
            self.table.note(format!("check_sync: {line}"));
        }
    }

    /// Runs and records one call; the result is shown as the production answered it.
    pub fn step(&mut self, text: &str, call: impl Into<Call>) -> Outcome {
        self.step_shown(text, call, shown)
    }

    /// Runs and records one call, showing the result as `show` renders it.
    pub fn step_shown(
        &mut self,
        text: &str,
        call: impl Into<Call>,
        show: impl FnOnce(&Outcome, &Names) -> String,
    ) -> Outcome {
        self.events.clear();
        let outcome = self.run(&call.into());
        let result = show(&outcome, &self.names);
        self.record(text, result);
        outcome
    }

    /// Runs and records a call that must succeed with `expected`.
    pub fn ok(&mut self, text: &str, expected: Status, call: impl Into<Call>) {
        let outcome = self.step(text, call);
        assert_eq!(outcome.status(), Some(Ok(expected)), "{text}");
    }

    /// Runs and records a call that must fail with `expected`, call no platform hook and
    /// change nothing the table shows (the state itself is proven unchanged on both sides).
    pub fn fails(&mut self, text: &str, expected: Error, call: impl Into<Call>) {
        let outcome = self.step(text, call);
        assert_eq!(error_of(&outcome), Some(expected), "{text}: {outcome:?}");
        let last = self.table.steps().last().expect("just recorded");
        assert!(last.events.is_empty(), "{text}: a failed call called the platform");
        assert!(last.changes.is_empty(), "{text}: a failed call changed the rendering");
    }

    /// Runs several calls as one recorded step (each checked on both sides), shown as
    /// `summary` renders their outcomes.
    pub fn batch(&mut self, text: &str, calls: Vec<Call>, summary: impl FnOnce(&[Outcome]) -> String) -> Vec<Outcome> {
        self.events.clear();
        let outcomes: Vec<Outcome> = calls.iter().map(|c| self.run(c)).collect();
        self.record(text, summary(&outcomes));
        outcomes
    }

    /// Attaches a line to the last step (or, before any, to the initial state).
    pub fn note(&mut self, line: impl Into<String>) {
        self.table.note(line);
    }

    /// Every platform event of the last step on the production side, NEM notifications
    /// included.
    pub fn events(&self) -> &[PlatformEvent] {
        &self.events
    }

    /// Asserts the last step's production events: `want`, written with the NEM notifications
    /// a NEM-notifying manager sends, which are left out when NEM is off.
    pub fn expect_events(&self, want: &[PlatformEvent]) {
        let want = if self.mgr.config().nem.notifies() {
            want.to_vec()
        } else {
            compare::without_nem(want)
        };
        assert_eq!(self.events, want, "events of step {}", self.table.steps().len());
    }

    /// The production manager.
    pub fn mgr(&self) -> &Manager<RecordingPlatform> {
        &self.mgr
    }

    /// The production manager's handler-node id of creation index `h`.
    pub fn node(&self, h: NodeIx) -> pgmsim::HandlerId {
        self.names.node(h)
    }

    /// The handler state of the page containing `addr` (both sides agree on it).
    pub fn hs(&self, addr: u64) -> HandlerState {
        crate::common::hs(&self.mgr, addr)
    }

    /// The registered handler containing `addr`.
    pub fn handler(&self, addr: u64) -> HandlerInfo {
        self.mgr
            .lookup(addr)
            .unwrap_or_else(|| panic!("no handler contains {addr:#x}"))
    }

    /// The transition table so far, rendered.
    pub fn render(&self) -> String {
        self.table.render()
    }

    /// Snapshots the table so far as `snapshots/<name>.snap`.
    pub fn snapshot(&self, name: &str) {
        let mut s = Settings::clone_current();
        s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
        s.set_prepend_module_to_snapshot(false);
        s.set_omit_expression(true);
        s.bind(|| assert_snapshot!(name, self.render()));
    }
}

/// A result shown verbatim in the table.
struct Shown(String);

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A result as the API returned it: the status, `node <slot> gen <generation>` for a created
/// node, the answer of a query.
pub fn shown(outcome: &Outcome, names: &Names) -> String {
    match outcome {
        Outcome::Status(r) | Outcome::Bitmap(r, _) => format!("{r:?}"),
        Outcome::Created(Ok(())) => {
            let id = *names.nodes.last().expect("a created node is named");
            format!("Ok({})", render::handler_id(id))
        }
        Outcome::Created(Err(e)) | Outcome::TypeRegistered(Err(e)) => format!("Err({e:?})"),
        Outcome::Registered(answer) => answer.to_string(),
        Outcome::IsAll(r) => format!("{r:?}"),
        Outcome::Info(Err(e)) => format!("Err({e:?})"),
        other => format!("{other:?}"),
    }
}

/// `deregister(addr)`.
pub fn dereg(addr: u64) -> Call {
    Call::Api(ApiCall::Deregister { addr })
}
