//! What a call answered ([`Outcome`]), and the robustness contract every driver checks: a
//! call that failed changed nothing ([`Before`], [`apply_checked`]).

use pgmsim::{Error, HandlerInfo, HandlerTypeConfig, OpResult, PageView, PhysHandlerApi};
use serde::{Deserialize, Serialize};

use crate::call::{apply, ApiCall};
use crate::names::{HandlerView, Names, NodeView};

/// What a call answered, free of side-specific ids and handles.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A status-returning operation.
    Status(OpResult),
    /// `create` / `dup`: whether a node was created (its id went to [`Names`]).
    Created(Result<(), Error>),
    /// `register_type`: the slot-free answer (its handle went to [`Names`]).
    TypeRegistered(Result<(), Error>),
    /// `reset_mmio2_with_bitmap` and the bitmap afterwards.
    Bitmap(OpResult, Vec<u64>),
    /// `is_registered`.
    Registered(bool),
    /// `is_all`.
    IsAll(Result<bool, Error>),
    /// `lookup`.
    Lookup(Option<HandlerView>),
    /// `handler_info`.
    Info(Result<NodeView, Error>),
    /// `type_config`.
    TypeConfig(Result<HandlerTypeConfig, Error>),
    /// `page`, without the platform-owned NEM state bits.
    Page(Option<PageView>),
}

impl Outcome {
    /// The error, if the call failed.
    pub fn error(&self) -> Option<Error> {
        match self {
            Outcome::Status(Err(e))
            | Outcome::Created(Err(e))
            | Outcome::TypeRegistered(Err(e))
            | Outcome::Bitmap(Err(e), _) => Some(*e),
            _ => None,
        }
    }

    /// The status of a status-returning call.
    pub fn status(&self) -> Option<OpResult> {
        match self {
            Outcome::Status(r) | Outcome::Bitmap(r, _) => Some(*r),
            Outcome::Created(r) | Outcome::TypeRegistered(r) => Some(r.map(|()| pgmsim::Status::Success)),
            _ => None,
        }
    }

    /// A short name of the result for statistics and coverage: `Success`, an informational
    /// status, an error's name, or `answer` for queries.
    pub fn result_name(&self) -> &'static str {
        match self.status() {
            Some(Ok(s)) => s.name(),
            Some(Err(e)) => e.name(),
            None => "answer",
        }
    }
}

/// What a failed call must leave exactly as it was, captured before the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Before {
    digest: u64,
    live: u32,
    handlers: Vec<HandlerInfo>,
}

impl Before {
    /// Captures `api`'s state; `digest` is the side's digest of its whole state (the
    /// production manager's `state_digest`, or any hash of a model's state).
    pub fn capture<S: PhysHandlerApi + ?Sized>(api: &S, digest: &dyn Fn(&S) -> u64) -> Before {
        Before {
            digest: digest(api),
            live: api.live_handlers(),
            handlers: api.handlers(),
        }
    }

    /// `Err` naming what changed since the capture. The handler list and the live count are
    /// compared besides the digest, so a digest that stopped seeing changes cannot hide one.
    pub fn unchanged<S: PhysHandlerApi + ?Sized>(&self, api: &S, digest: &dyn Fn(&S) -> u64) -> Result<(), String> {
        if api.live_handlers() != self.live {
            return Err(format!("live handlers {} -> {}", self.live, api.live_handlers()));
        }
        if api.handlers() != self.handlers {
            return Err("the handler list changed".into());
        }
        if digest(api) != self.digest {
            return Err("the state digest changed".into());
        }
        Ok(())
    }
}

/// [`apply`], then the robustness contract: a call that failed changed nothing (and a
/// failed bitmap reset left the bitmap as it was). `Err` describes the broken promise.
pub fn apply_checked<S: PhysHandlerApi>(
    api: &mut S,
    names: &mut Names,
    call: &ApiCall,
    digest: &dyn Fn(&S) -> u64,
) -> Result<Outcome, String> {
    let before = call.mutates().then(|| Before::capture(api, digest));
    let outcome = apply(api, names, call);
    if let (Some(before), Some(e)) = (before, outcome.error()) {
        before
            .unchanged(api, digest)
            .map_err(|what| format!("{call:?} failed with {e:?} but changed the state: {what}"))?;
        if let (Outcome::Bitmap(_, bitmap), ApiCall::ResetMmio2WithBitmap { fill, .. }) = (&outcome, call) {
            if bitmap.iter().any(|w| w != fill) {
                return Err(format!("{call:?} failed with {e:?} but wrote the bitmap"));
            }
        }
    }
    Ok(outcome)
}
