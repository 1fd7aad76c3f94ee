//! The oracles of the concurrent world (`docs/semantics.md` §7.3).
//!
//! * **Linearizability of accesses**: each access collects the model's prediction in every
//!   state its window overlaps — when it starts, after every operation that completes while
//!   it is in flight, and (under an asynchronous shootdown) the states before operations whose
//!   flushes were not acknowledged when it started. Its outcome must equal one of them.
//! * **Dirty logging (KVM's rule)**: whenever the PGM lock is released, every page under
//!   dirty tracking is either dirty in the current log (temp-off) or writable nowhere: no TLB
//!   entry, shadow PTE or nested entry lets a write through without trapping.
//! * **Nothing lost, end to end**: the migration device copies the pages each harvest names
//!   to a destination; after a final quiescent harvest and copy, the destination equals the
//!   source on every tracked page.

use std::collections::BTreeMap;

use pgmsim::{Gpa, HandlerState, PAGE_SHIFT};
use pgmsim_model::Model;

use super::hw::Instr;
use crate::access::{predict, Prediction};
use crate::check::{Failure, Invariant};
use crate::mmu::Mode;
use crate::op::{AccessKind, AccessOutcome};
use crate::world::World;

/// One access's window: what it may legitimately have seen, and what it did.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    /// vCPU.
    pub vcpu: usize,
    /// Address space the vCPU ran when the access started.
    pub space: usize,
    /// Virtual address.
    pub va: pgmsim::Gva,
    /// Bytes.
    pub size: u8,
    /// Kind.
    pub kind: AccessKind,
    /// The model's predictions in the states of the window, deduplicated.
    pub candidates: Vec<Prediction>,
    /// Whether the instruction has begun (an issued access's window opens when it does).
    pub begun: bool,
    /// The outcome, once done.
    pub done: Option<AccessOutcome>,
}

/// The accesses in flight (and done but not yet judged), by id.
#[derive(Debug, Clone, Default)]
pub struct Accesses {
    open: BTreeMap<u32, AccessRecord>,
    next_id: u32,
    /// Predictions compared (the `linearization_checks` counter).
    pub checks: u64,
    /// Model states before operations whose shootdowns are not acknowledged yet.
    pub unacked: Vec<Model>,
}

impl Accesses {
    /// Records an issued access: until it begins, its window is the latest state (see
    /// [`Accesses::after_op`]).
    pub fn start(&mut self, world: &World, vcpu: usize, va: pgmsim::Gva, size: u8, kind: AccessKind) -> u32 {
        let space = world.guest().space_of(vcpu);
        let mut rec = AccessRecord {
            vcpu,
            space,
            va,
            size,
            kind,
            candidates: Vec::new(),
            begun: false,
            done: None,
        };
        self.open_window(world, &mut rec);
        let id = self.next_id;
        self.next_id += 1;
        self.open.insert(id, rec);
        id
    }

    /// The window as it opens now: the current state's prediction, plus those of the states
    /// an unacknowledged shootdown may still let it see.
    fn open_window(&self, world: &World, rec: &mut AccessRecord) {
        rec.candidates.clear();
        rec.candidates
            .push(predict(world, rec.space, rec.va, rec.size, rec.kind));
        for old in &self.unacked {
            push_new(
                &mut rec.candidates,
                predict_with(world, old, rec.space, rec.va, rec.size, rec.kind),
            );
        }
    }

    /// An operation completed: every open window gains the new state's prediction, then
    /// every completed access is judged. An access still waiting to begin has its window
    /// moved to the new state instead; one that began during the operation (its vCPU is
    /// past [`Instr::Ready`]) keeps the state before it, which its window opened in.
    pub fn after_op(&mut self, world: &World) -> Result<(), Failure> {
        let hw = world.machine().hw().expect("a concurrent machine");
        let mut open = std::mem::take(&mut self.open);
        for (&id, rec) in open.iter_mut() {
            if !rec.begun {
                let waiting = matches!(hw.cpus[rec.vcpu].instr, Instr::Ready(p) if p.id == id);
                if waiting {
                    self.open_window(world, rec);
                    continue;
                }
                rec.begun = true;
            }
            let p = predict(world, rec.space, rec.va, rec.size, rec.kind);
            push_new(&mut rec.candidates, p);
        }
        self.open = open;
        self.judge_done(world)
    }

    /// An access completed.
    pub fn complete(&mut self, id: u32, outcome: AccessOutcome) {
        if let Some(rec) = self.open.get_mut(&id) {
            rec.done = Some(outcome);
        }
    }

    /// Judges every completed access against its candidates.
    pub fn judge_done(&mut self, world: &World) -> Result<(), Failure> {
        let done: Vec<u32> = self
            .open
            .iter()
            .filter(|(_, r)| r.done.is_some())
            .map(|(&id, _)| id)
            .collect();
        for id in done {
            let rec = self.open.remove(&id).expect("listed");
            self.checks += 1;
            let outcome = rec.done.as_ref().expect("done");
            if !rec.candidates.iter().any(|c| explains(c, outcome)) {
                return Err(world.failure(
                    Invariant::Linearizability,
                    format!(
                        "vCPU {} {:?} of {} bytes at {:?}: did {outcome:x?}, but the model predicts one of {:x?} over the access's window",
                        rec.vcpu, rec.kind, rec.size, rec.va, rec.candidates
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Accesses in flight.
    pub fn in_flight(&self) -> usize {
        self.open.len()
    }
}

fn push_new(v: &mut Vec<Prediction>, p: Prediction) {
    if !v.contains(&p) {
        v.push(p);
    }
}

/// The model `old`'s prediction (an earlier state kept for an unacknowledged shootdown).
fn predict_with(world: &World, old: &Model, space: usize, va: pgmsim::Gva, size: u8, kind: AccessKind) -> Prediction {
    crate::access::predict_on(world, old, space, va, size, kind)
}

/// Whether a prediction explains an outcome. Trapped accesses compare their pieces (where
/// each default piece went is checked when it happens, under the lock).
fn explains(p: &Prediction, outcome: &AccessOutcome) -> bool {
    match (p, outcome) {
        (Prediction::Outcome(p), o) => p == o,
        (Prediction::Trapped { gp, pieces }, AccessOutcome::Trapped { gp: g, pieces: done }) => {
            gp == g
                && pieces.len() == done.len()
                && pieces
                    .iter()
                    .zip(done)
                    .all(|(p, d)| (p.0, p.1, p.2) == (d.first.0, d.last.0, d.handler))
        }
        _ => false,
    }
}

/// KVM's rule, at a lock release: every tracked page is dirty (temp-off) or writable
/// nowhere. A page is tracked while its tracker's write handler arms it (`Write`, or `All`
/// under a stronger neighbour); once no handler covers it (the range was deregistered) it is
/// no longer under dirty tracking, and forward sync, not this rule, says whether that state
/// is right.
pub fn dirty_rule(world: &World) -> Result<(), Failure> {
    let trackers = &world.devices().trackers;
    if trackers.is_empty() {
        return Ok(());
    }
    let clean = |gp: Gpa| {
        trackers.iter().any(|t| gp.0 >= t.first && gp.0 <= t.last)
            && world
                .prod()
                .page(gp.0)
                .is_some_and(|d| matches!(d.handler_state(), HandlerState::Write | HandlerState::All))
    };
    let fail = |what: String| world.failure(Invariant::DirtyLog, what);
    for (v, cpu) in world.mmu().vcpus().iter().enumerate() {
        if let Some(e) = cpu.tlb.iter().find(|e| e.t.write && clean(e.t.gp)) {
            return Err(fail(format!(
                "vCPU {v} TLB entry {e:?} lets writes to the clean tracked page {:?} through (the lock was just released)",
                e.t.gp
            )));
        }
    }
    for t in trackers {
        for i in 0..t.pages() as u64 {
            let gp = Gpa(t.first + (i << PAGE_SHIFT));
            if clean(gp) {
                writable_nowhere(world, gp).map_err(fail)?;
            }
        }
    }
    Ok(())
}

/// No shadow PTE (found through the reverse map) or nested entry lets writes to `gp` through.
fn writable_nowhere(world: &World, gp: Gpa) -> Result<(), String> {
    let mmu = world.mmu();
    if world.config().mode == Mode::Nem {
        if mmu.nested().get(gp).is_some_and(|n| n.prot.can_write()) {
            return Err(format!("nested entry of the clean tracked page {gp:?} allows writes"));
        }
        return Ok(());
    }
    let (refs, overflowed) = mmu.revmap().refs(gp);
    let writable = |v: usize, vpi: u32| {
        mmu.vcpus()[v]
            .shadow
            .get(vpi)
            .is_some_and(|s| s.t.gp == gp && s.t.write)
    };
    let hit = if overflowed {
        (0..mmu.vcpus().len()).find_map(|v| {
            mmu.vcpus()[v]
                .shadow
                .iter()
                .find(|(vpi, _)| writable(v, *vpi))
                .map(|(vpi, _)| (v, vpi))
        })
    } else {
        refs.iter()
            .map(|&(v, vpi)| (v as usize, vpi))
            .find(|&(v, vpi)| writable(v, vpi))
    };
    match hit {
        Some((v, vpi)) => Err(format!(
            "vCPU {v} shadow PTE of page {vpi} lets writes to the clean tracked page {gp:?} through"
        )),
        None => Ok(()),
    }
}
