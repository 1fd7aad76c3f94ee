//! The two sides of every differential step: the production manager (whose platform is the
//! simulated machine) and the reference model, each with the names it handed out, and the
//! one function that applies an API call to both and demands the same answer.

use pgmsim::{PhysHandlerApi, PlatformEvent, Status};
use pgmsim_model::Model;
use pgmsim_testkit::{apply, ApiCall, Names, Outcome};

use crate::machine::Machine;
use pgmsim::Manager;

/// Production and model, side by side.
#[derive(Debug, Clone)]
pub struct Sides {
    prod: Manager<Machine>,
    model: Model,
    prod_names: Names,
    model_names: Names,
    /// What each pinned name (`PINNED | k`, index `k`) was registered as when it was pinned:
    /// a device that unplugs the handler a callback runs for knows where to plug it back.
    pinned: Vec<Option<PinnedSpan>>,
}

/// Where the handler a callback was dispatched for was registered, and as what, when the
/// callback pinned it (it may since have been deregistered and destroyed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedSpan {
    /// First byte.
    pub key: u64,
    /// Last byte, inclusive.
    pub key_last: u64,
    /// The handler's type, as a registration index.
    pub ty: u8,
    /// Its user argument.
    pub user: u64,
}

/// How the two sides answered one call, when they disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The call.
    pub call: String,
    /// The production manager's outcome.
    pub production: Outcome,
    /// The model's outcome.
    pub model: Outcome,
    /// Whether the machine fell back to a full resync during the production call.
    pub resynced: bool,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: production returned {:?}, model returned {:?} (resync: {})",
            self.call, self.production, self.model, self.resynced
        )
    }
}

impl Sides {
    /// Both sides, with no types or nodes named yet.
    pub fn new(prod: Manager<Machine>, model: Model) -> Sides {
        Sides {
            prod,
            model,
            prod_names: Names::default(),
            model_names: Names::default(),
            pinned: Vec::new(),
        }
    }

    /// The production manager.
    pub fn prod(&self) -> &Manager<Machine> {
        &self.prod
    }

    /// The production manager, mutably.
    pub fn prod_mut(&mut self) -> &mut Manager<Machine> {
        &mut self.prod
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// What creation and registration indices mean on the production side.
    pub fn prod_names(&self) -> &Names {
        &self.prod_names
    }

    /// What creation and registration indices mean on the model side.
    pub fn model_names(&self) -> &Names {
        &self.model_names
    }

    /// The machine (the production manager's platform).
    pub fn machine(&self) -> &Machine {
        self.prod.platform()
    }

    /// The machine, mutably.
    pub fn machine_mut(&mut self) -> &mut Machine {
        self.prod.platform_mut()
    }

    /// Handler nodes created so far (create / dup), by creation index.
    pub fn nodes(&self) -> usize {
        self.model_names.nodes.len()
    }

    /// Creates a node of the first type on both sides without naming it (a boot node no
    /// step refers to); both must succeed.
    pub fn create_unnamed(&mut self, user: u64) -> Result<(), String> {
        let a = self.prod.create(self.prod_names.ty(0), user, None);
        let b = self.model.create(self.model_names.ty(0), user, None);
        match (a, b) {
            (Ok(_), Ok(_)) => Ok(()),
            (a, b) => Err(format!("create: production returned {a:?}, model returned {b:?}")),
        }
    }

    /// Applies `call` to the production manager, then to the model, and demands the same
    /// outcome (invariant 4). The model cannot know what the machine's reverse map did, so
    /// when the machine resynced during the production call, the model's `Success` of a
    /// call that reports resyncs is expected as that call's resync status. Returns the
    /// production outcome.
    pub fn call(&mut self, call: &ApiCall) -> Result<Outcome, Box<Disagreement>> {
        let before = self.prod.platform().mmu().stats().resyncs;
        let production = apply(&mut self.prod, &mut self.prod_names, call);
        let resynced = self.prod.platform().mmu().stats().resyncs != before;
        let model = apply(&mut self.model, &mut self.model_names, call);
        let expected = match (call.spec().resync_status, &model) {
            (Some(status), Outcome::Status(Ok(Status::Success))) if resynced => Outcome::Status(Ok(status)),
            (Some(status), Outcome::Bitmap(Ok(Status::Success), bits)) if resynced => {
                Outcome::Bitmap(Ok(status), bits.clone())
            }
            _ => model.clone(),
        };
        if production != expected {
            return Err(Box::new(Disagreement {
                call: format!("{call:?}"),
                production,
                model,
                resynced,
            }));
        }
        Ok(production)
    }

    /// A query both sides must answer alike; `Err` names both answers.
    pub fn query<R: PartialEq + std::fmt::Debug>(
        &self,
        what: &str,
        f: impl Fn(&dyn PhysHandlerApi) -> R,
    ) -> Result<R, String> {
        let (a, b) = (f(&self.prod), f(&self.model));
        if a != b {
            return Err(format!("{what}: production returned {a:?}, model returned {b:?}"));
        }
        Ok(a)
    }

    /// The observable platform events since the last call on each side (shadow-PTE
    /// updates, page-map invalidations, emulator TLB flushes; TLB flushes and NEM
    /// notifications depend on what the machine has mapped, so translation safety checks
    /// those instead), and clears both logs. With `keep_all`, every production event (unfiltered)
    /// is also appended to it, for step logs and reports.
    pub fn take_events(
        &mut self,
        keep_all: Option<&mut Vec<PlatformEvent>>,
    ) -> (Vec<PlatformEvent>, Vec<PlatformEvent>) {
        let observable = |e: &PlatformEvent| {
            matches!(
                e,
                PlatformEvent::UpdateShadowPtes { .. }
                    | PlatformEvent::InvalidatePageMapEntry { .. }
                    | PlatformEvent::FlushEmulatorPhysTlbs
            )
        };
        let all = self.prod.platform_mut().mmu_mut().take_log();
        if let Some(k) = keep_all {
            k.extend_from_slice(&all);
        }
        let a = all.into_iter().filter(observable).collect();
        let b = self.model.take_events().into_iter().filter(observable).collect();
        (a, b)
    }

    /// Drops the recorded platform events of both sides.
    pub fn drain_events(&mut self) {
        self.prod.platform_mut().mmu_mut().clear_log();
        self.model.take_events();
    }

    /// Names the handler registered at `key` on both sides by its ids (for a callback to call
    /// back with); `None` unless both sides have one there.
    pub fn pin(&mut self, key: u64) -> Option<u32> {
        let a = self.prod.handler_id_at(key)?;
        let b = self.model.handler_id_at(key)?;
        let span = self.model.lookup(key).map(|info| PinnedSpan {
            key: info.key,
            key_last: info.key_last,
            ty: self.model_names.type_index(info.ty).unwrap_or(0),
            user: info.user,
        });
        let k = self.prod_names.pin(a);
        let k2 = self.model_names.pin(b);
        debug_assert_eq!(k, k2, "both sides pin in step");
        let i = (k & !pgmsim_testkit::call::PINNED) as usize;
        if self.pinned.len() <= i {
            self.pinned.resize(i + 1, None);
        }
        self.pinned[i] = span;
        Some(k)
    }

    /// Frees a name [`Sides::pin`] gave.
    pub fn unpin(&mut self, h: u32) {
        self.prod_names.unpin(h);
        self.model_names.unpin(h);
        if let Some(p) = self.pinned.get_mut((h & !pgmsim_testkit::call::PINNED) as usize) {
            *p = None;
        }
    }

    /// What pinned name `h` was registered as when it was pinned (`None` once unpinned).
    pub fn pinned_span(&self, h: u32) -> Option<PinnedSpan> {
        self.pinned
            .get((h & !pgmsim_testkit::call::PINNED) as usize)
            .copied()
            .flatten()
    }

    /// Registers one handler type on both sides; `Err` when they disagree.
    pub fn register_type(&mut self, config: pgmsim::HandlerTypeConfig) -> Result<(), String> {
        let a = self.prod.register_type(config.clone());
        let b = self.model.register_type(config);
        match (a, b) {
            (Ok(a), Ok(b)) => {
                self.prod_names.types.push(a);
                self.model_names.types.push(b);
                Ok(())
            }
            (a, b) => Err(format!("register_type: production {a:?}, model {b:?}")),
        }
    }
}
