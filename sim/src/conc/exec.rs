//! The executor of a concurrent world: threads, the decision loop, quiescent points.
//!
//! Threads are the vCPUs (ids `0..vcpus`) and the device threads (the ids after). At each
//! top decision the scheduler picks a thread that can move; the thread takes one step:
//!
//! * a vCPU between instructions acknowledges a pending shootdown, or starts its next
//!   operation: an access (its instruction then moves through TLB lookup, walk and memory
//!   access, one lock-free step at a time) or a guest-kernel edit (atomic, under the lock);
//! * a vCPU whose instruction exited to the VMM handles the fault under the lock (a trapped
//!   access dispatches to the devices; a callback of a type without keep-lock runs with the
//!   lock dropped, in a [window](Exec::open) where other threads move);
//! * a device thread runs its next operation atomically under the lock.
//!
//! Every manager operation's platform calls are preemption points where other vCPUs' lock-free
//! steps may run ([`crate::conc::hw`]). Every `quiesce_every` operations (and at the end) no new
//! operation starts until the world is quiescent — no lock held, no shootdown pending, no
//! instruction in flight — where every sequential invariant is checked. Where the quiescent
//! points fell is recorded (as operation counts) and a replay puts them there again, so a
//! shrinker that removes an operation moves them with it instead of shifting every later one.

use std::collections::VecDeque;

use super::hw::{HwEvent, Instr, Pending, UNATTRIBUTED};
use super::oracle::{dirty_rule, Accesses};
use super::sched::{self, Move, THREAD};
use super::sched::{Point, Scheduler};
use super::{SchedulerKind, Shootdown};
use crate::check::{self, Failure, Invariant};
use crate::gen::{next_op_for, Entropy, Role};
use crate::mmu::guest_pt::vpi_of;
use crate::op::{AccessOutcome, Op, StepResult};
use crate::trace::TraceHasher;
use crate::world::World;

/// Where a concurrent run's operations come from.
pub enum Source<'a> {
    /// Drawn by the generator for each thread when it needs one.
    Generated(&'a mut dyn Entropy),
    /// A trace's operations, queued per thread, each with its index in the trace (what the
    /// trace's schedule names it by).
    Trace(Vec<VecDeque<(Move, Op)>>),
}

/// What a thread is doing at the executor's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    /// Nothing (a vCPU may still owe a shootdown acknowledgement).
    Idle,
    /// A vCPU carrying out the access of operation `op` (its instruction is in the machine).
    Access {
        /// Index of the operation in the run.
        op: usize,
    },
}

/// The executor's state (the world is passed alongside).
pub struct Exec<'a> {
    source: Source<'a>,
    /// Each thread's next operation, drawn ahead (a vCPU's, to see whether it is an access
    /// it can issue at once).
    lookahead: Vec<Option<(Move, Op)>>,
    /// For each operation started (in start order), what the schedule names it by: its
    /// index in the trace replayed, or its start index in a generated run.
    names: Vec<Move>,
    /// Operations each thread may start (generated runs under PCT: an equal share of the
    /// budget, because PCT assumes threads of bounded length; the highest-priority thread
    /// would otherwise take the whole budget and starve the others).
    quota: Vec<usize>,
    /// Operations each thread started.
    started: Vec<usize>,
    busy: Vec<Busy>,
    suspended: Vec<bool>,
    vcpus: usize,
    budget: usize,
    /// Operations started, in order, with their thread.
    pub ops: Vec<(u8, Op)>,
    accesses: Accesses,
    /// Draining for a quiescent point starts once this many operations started.
    next_quiesce: usize,
    quiesce: Quiesce,
    /// Where draining started for each quiescent point before the last (operation counts).
    quiesce_marks: Vec<u32>,
    quiescent_points: u64,
    full_every: u64,
    check: check::CheckMode,
    hasher: TraceHasher,
    migration: super::migration::Migration,
    /// The operation and vCPU of each access in flight, by access id.
    access_ops: std::collections::BTreeMap<u32, (usize, usize)>,
}

/// The name of a generated operation before it starts (it is then named by its start index).
const UNNAMED: Move = u32::MAX;

/// Most faults one access may take. Sequentially four suffice; here other threads may undo a
/// synced translation before the access uses it (a full resync, a rights change), so the
/// bound only catches a livelock.
const MAX_ROUNDS: u8 = 64;

/// Longest a callback window stays open (top decisions) before its vCPU resumes.
const MAX_WINDOW: usize = 64;

impl<'a> Exec<'a> {
    /// An executor for `world` running at most `budget` operations from `source`, under the
    /// configured scheduler and quiescent points unless `recorded` gives them (a replay).
    pub fn new(
        world: &mut World,
        source: Source<'a>,
        budget: usize,
        check: check::CheckMode,
        recorded: Option<Recorded>,
    ) -> Exec<'a> {
        let c = world.config().concurrency.expect("a concurrent world");
        let (sched, quiesce) = match recorded {
            Some(r) => (Some(r.schedule), r.quiesce.map(Quiesce::At)),
            None => (None, None),
        };
        let quiesce = quiesce.unwrap_or(Quiesce::Every(c.quiesce_every.max(1) as usize));
        let vcpus = world.vcpus();
        let threads = vcpus + c.devices as usize;
        let horizon = budget as u64 * 6;
        let sched = sched.unwrap_or_else(|| Scheduler::new(c.scheduler, c.schedule_seed, threads, horizon));
        world.make_concurrent(sched, c.shootdown);
        let share = match (c.scheduler, &source) {
            (SchedulerKind::Pct { .. }, Source::Generated(_)) => budget.div_ceil(threads),
            _ => usize::MAX,
        };
        Exec {
            source,
            lookahead: vec![None; threads],
            names: Vec::new(),
            quota: vec![share; threads],
            started: vec![0; threads],
            busy: vec![Busy::Idle; threads],
            suspended: vec![false; threads],
            vcpus,
            budget,
            ops: Vec::new(),
            accesses: Accesses::default(),
            next_quiesce: quiesce.first(),
            quiesce,
            quiesce_marks: Vec::new(),
            quiescent_points: 0,
            full_every: (world.config().full_check_every as u64 / c.quiesce_every as u64).max(1),
            check,
            hasher: TraceHasher::default(),
            migration: super::migration::Migration::new(world),
            access_ops: Default::default(),
        }
    }

    /// Runs until every operation ran and the world is quiescent.
    pub fn run(&mut self, world: &mut World) -> Result<(), Failure> {
        loop {
            self.issue_accesses(world)?;
            let candidates = self.candidates(world, None);
            if candidates.is_empty() {
                self.quiescent_point(world)?;
                if !self.has_work(world) {
                    return self.finish(world);
                }
                self.quiesce_marks.push(self.next_quiesce as u32);
                self.next_quiesce = self.quiesce.after(self.ops.len());
                continue;
            }
            let t = self.decide_top(world, &candidates);
            self.step(world, t)?;
        }
    }

    /// A top decision, attributed to the operation the chosen thread works on (and the
    /// decisions its step takes with it).
    fn decide_top(&mut self, world: &mut World, candidates: &[u8]) -> u8 {
        let names: Vec<Move> = candidates.iter().map(|&t| self.move_of(world, t as usize)).collect();
        let hw = world.hw_mut();
        let t = hw.decide(Point::Top, candidates, &names);
        let name = names[candidates.iter().position(|&c| c == t).expect("a candidate")];
        let op = if name & THREAD == 0 { name } else { UNATTRIBUTED };
        *hw.decision_ops.last_mut().expect("just decided") = op;
        hw.op = op;
        t
    }

    /// What thread `t`'s next step moves: the operation it works on or starts next, or the
    /// thread itself (a vCPU's exit acknowledging a shootdown).
    fn move_of(&self, world: &World, t: usize) -> Move {
        match self.busy[t] {
            Busy::Access { op } => self.names[op],
            Busy::Idle if t < self.vcpus && world.machine().hw().is_some_and(|h| h.cpus[t].flush_pending) => {
                THREAD | t as Move
            }
            Busy::Idle => self.next_name(t),
        }
    }

    /// The name thread `t`'s next operation will have.
    fn next_name(&self, t: usize) -> Move {
        let queued = match &self.source {
            Source::Trace(queues) => queues[t].front().map(|q| q.0),
            Source::Generated(_) => None,
        };
        match self.lookahead[t].as_ref().map(|l| l.0).or(queued) {
            Some(name) if name != UNNAMED => name,
            _ => self.ops.len() as Move,
        }
    }

    /// The final quiescent point: one more harvest and copy, then the end-to-end check.
    fn finish(&mut self, world: &mut World) -> Result<(), Failure> {
        let device = self.vcpus as u8;
        world.hw_mut().op = UNATTRIBUTED;
        self.migration.final_harvest(world, device)?;
        // Quiescent again: every vCPU (idle) takes the exit that acknowledges what the final
        // harvest shot down.
        for v in 0..self.vcpus {
            if world.machine().hw().is_some_and(|h| h.cpus[v].flush_pending) {
                world.machine_mut().hw_step(v);
            }
        }
        check::full_check(world)
    }

    /// The trace hash so far (operations in completion order, then the schedule).
    pub fn trace_hash(&self, world: &World) -> u64 {
        let mut h = self.hasher;
        let decisions = world.machine().hw().map_or(&[][..], |hw| &hw.decisions[..]);
        h.add_schedule(decisions);
        std::hash::Hasher::finish(&h)
    }

    /// Threads that can move now; `me` is a thread suspended in its own window, which may
    /// resume (listed) while every other suspended thread waits.
    fn candidates(&self, world: &World, me: Option<u8>) -> Vec<u8> {
        let draining = self.draining();
        let hw = world.machine().hw().expect("a concurrent machine");
        (0..self.busy.len() as u8)
            .filter(|&t| {
                if Some(t) == me {
                    return true;
                }
                if self.suspended[t as usize] {
                    return false;
                }
                let t = t as usize;
                match (t < self.vcpus, self.busy[t]) {
                    (true, Busy::Access { .. }) => true,
                    (true, Busy::Idle) => hw.cpus[t].flush_pending || (!draining && self.has_op(world, t)),
                    (false, _) => !draining && self.has_op(world, t),
                }
            })
            .collect()
    }

    fn draining(&self) -> bool {
        self.ops.len() >= self.budget || self.ops.len() >= self.next_quiesce
    }

    fn has_work(&self, world: &World) -> bool {
        self.ops.len() < self.budget && (0..self.busy.len()).any(|t| self.has_op(world, t))
    }

    fn role(&self, t: usize) -> Role {
        if t < self.vcpus {
            Role::Vcpu(t as u8)
        } else {
            Role::Device
        }
    }

    /// Whether thread `t` has another operation to start.
    fn has_op(&self, world: &World, t: usize) -> bool {
        self.lookahead[t].is_some()
            || match &self.source {
                Source::Generated(_) => {
                    self.ops.len() < self.budget
                        && self.started[t] < self.quota[t]
                        && crate::gen::role_weight(world, self.role(t)) > 0
                }
                Source::Trace(queues) => queues.get(t).is_some_and(|q| !q.is_empty()),
            }
    }

    /// Thread `t`'s next operation (it has one) and its name ([`UNNAMED`] when generated:
    /// it is named by its start index).
    fn take_op(&mut self, world: &World, t: usize) -> (Move, Op) {
        if let Some(op) = self.lookahead[t].take() {
            return op;
        }
        let role = self.role(t);
        self.started[t] += 1;
        match &mut self.source {
            Source::Generated(e) => (UNNAMED, next_op_for(world, &mut **e, role)),
            Source::Trace(queues) => queues[t].pop_front().expect("listed as a candidate"),
        }
    }

    /// Issues the next access of every idle vCPU whose next operation is one: guest code
    /// runs on without waiting for anyone, so the access may begin at any decision point
    /// from now on, inline in another thread's operation included.
    fn issue_accesses(&mut self, world: &mut World) -> Result<(), Failure> {
        for v in 0..self.vcpus {
            if self.draining() || self.busy[v] != Busy::Idle || self.suspended[v] || !self.has_op(world, v) {
                continue;
            }
            if self.lookahead[v].is_none() {
                self.lookahead[v] = Some(self.take_op(world, v));
            }
            if matches!(self.lookahead[v], Some((_, Op::Access { .. }))) {
                let (name, op) = self.lookahead[v].take().expect("just seen");
                self.begin_op(world, v, name, op)?;
            }
        }
        Ok(())
    }

    /// One step of thread `t`.
    fn step(&mut self, world: &mut World, t: u8) -> Result<(), Failure> {
        if super::debug() {
            let tu = t as usize;
            let instr = (tu < self.vcpus).then(|| world.machine().hw().expect("c").cpus[tu]);
            eprintln!(
                "DBG step t={t} busy={:?} cpu={:?} ops={}",
                self.busy[tu],
                instr,
                self.ops.len()
            );
        }
        world.hw_mut().current = t;
        world.hw_mut().last = t;
        let tu = t as usize;
        let result = match (tu < self.vcpus, self.busy[tu]) {
            (true, Busy::Access { op }) => self.access_step(world, tu, op),
            (true, Busy::Idle) if world.machine().hw().expect("concurrent").cpus[tu].flush_pending => {
                world.machine_mut().hw_step(tu);
                Ok(())
            }
            _ => self.start_op(world, tu),
        };
        result?;
        self.drain_events(world)
    }

    /// Starts thread `t`'s next operation.
    fn start_op(&mut self, world: &mut World, t: usize) -> Result<(), Failure> {
        let (name, op) = self.take_op(world, t);
        self.begin_op(world, t, name, op)
    }

    /// Numbers operation `op` of thread `t` and starts it: an access is issued, anything
    /// else runs at once under the lock.
    fn begin_op(&mut self, world: &mut World, t: usize, name: Move, op: Op) -> Result<(), Failure> {
        let index = self.ops.len();
        self.names.push(if name == UNNAMED { index as Move } else { name });
        if super::debug() {
            eprintln!("DBG op #{index} t={t} {op:?}");
        }
        self.ops.push((t as u8, op.clone()));
        match op {
            Op::Access {
                va, size, kind, value, ..
            } if t < self.vcpus => self.start_access(world, t, index, (pgmsim::Gva(va), size, kind, value)),
            _ => self.locked_op(world, t, index, &op),
        }
    }

    /// Opens an access's window and starts its instruction.
    fn start_access(
        &mut self,
        world: &mut World,
        v: usize,
        index: usize,
        (va, size, kind, value): (pgmsim::Gva, u8, crate::op::AccessKind, u64),
    ) -> Result<(), Failure> {
        world.log_mut().begin_op("access");
        world.log_mut().stats.accesses += 1;
        let size = if matches!(size, 1 | 2 | 4 | 8) { size } else { 1 };
        let va = if (va.0 & 0xfff) + size as u64 > 0x1000 {
            pgmsim::Gva(va.0 & !(size as u64 - 1))
        } else {
            va
        };
        let space = world.guest().space_of(v) as u8;
        let Some(vpi) = vpi_of(va, world.config().va_pages) else {
            let result = StepResult::Access {
                outcome: AccessOutcome::BadAddress,
                value: 0,
            };
            crate::coverage::hooks::access_done(world, &self.ops[index].1, &result);
            self.op_done(world, index, result);
            return Ok(());
        };
        world.log_mut().touched.vpages.push((space, vpi));
        let id = self.accesses.start(world, v, va, size, kind);
        self.access_ops.insert(id, (index, v));
        let p = Pending {
            id,
            op: self.names[index],
            va,
            vpi,
            size,
            kind,
            value,
            rounds: 0,
        };
        world.hw_mut().cpus[v].instr = Instr::Ready(p);
        self.busy[v] = Busy::Access { op: index };
        Ok(())
    }

    /// One step of a vCPU's access: a lock-free hardware step, or the fault path.
    fn access_step(&mut self, world: &mut World, v: usize, op: usize) -> Result<(), Failure> {
        let instr = world.machine().hw().expect("concurrent").cpus[v].instr;
        match instr {
            Instr::Exit(p) => self.fault(world, v, op, p),
            Instr::Idle => {
                self.busy[v] = Busy::Idle;
                Ok(())
            }
            _ => {
                world.machine_mut().hw_step(v);
                Ok(())
            }
        }
    }

    /// The VMM's fault path of vCPU `v` under the lock: done (access complete), or retry.
    fn fault(&mut self, world: &mut World, v: usize, op: usize, p: Pending) -> Result<(), Failure> {
        if p.rounds >= MAX_ROUNDS {
            let detail = format!("access to {:?} did not converge after {MAX_ROUNDS} faults", p.va);
            return Err(world.failure(Invariant::TranslationSafety, detail));
        }
        self.acquire(world, v);
        let fault = world.fault(v, p.vpi, p.va, p.size, p.kind, p.value, self);
        let released = if fault.is_ok() {
            self.release(world, v)
        } else {
            // The fault path failed (perhaps inside a callback window, without the lock):
            // that failure is the one to report.
            world.hw_mut().lock = Default::default();
            Ok(())
        };
        let fault = fault?;
        released?;
        let next = match fault {
            crate::access::Fault::Retry => Instr::Lookup(Pending {
                rounds: p.rounds + 1,
                ..p
            }),
            crate::access::Fault::Done(outcome, value) => {
                if matches!(outcome, AccessOutcome::GuestFault { .. }) {
                    world.log_mut().stats.guest_faults += 1;
                }
                self.access_done(world, p.id, outcome, value);
                let _ = op;
                Instr::Idle
            }
        };
        world.hw_mut().cpus[v].instr = next;
        world.machine_mut().leave_vmm(v);
        Ok(())
    }

    /// Runs a non-access operation atomically under the lock (a device operation, or a
    /// vCPU's kernel edit), then lets every open access window see its effect.
    fn locked_op(&mut self, world: &mut World, t: usize, index: usize, op: &Op) -> Result<(), Failure> {
        let async_shootdown = world
            .config()
            .concurrency
            .is_some_and(|c| c.shootdown == Shootdown::Async);
        let before = async_shootdown.then(|| world.model().clone());
        self.acquire(world, t);
        let result = world.apply_concurrent(op);
        let released = self.release(world, t);
        let result = result?;
        released?;
        if t < self.vcpus {
            world.machine_mut().leave_vmm(t);
        }
        if let (Op::Harvest { tracker }, StepResult::Harvest(Ok(bitmap))) = (op, &result) {
            self.migration.copy(world, *tracker as usize, bitmap);
        }
        if let Some(before) = before.filter(|_| world.machine().hw().is_some_and(|h| h.any_flush_pending())) {
            self.accesses.unacked.push(before);
        }
        self.op_done(world, index, result);
        self.accesses.after_op(world)
    }

    /// An access completed: its window closes (it is judged once no operation can still
    /// add to it) and its operation is done.
    fn access_done(&mut self, world: &mut World, id: u32, outcome: AccessOutcome, value: u64) {
        self.accesses.complete(id, outcome.clone());
        if let Some((op, v)) = self.access_ops.remove(&id) {
            self.busy[v] = Busy::Idle;
            let result = StepResult::Access { outcome, value };
            crate::coverage::hooks::access_done(world, &self.ops[op].1, &result);
            self.op_done(world, op, result);
        }
    }

    /// Bookkeeping of a completed operation: the step counter and the trace hash.
    fn op_done(&mut self, world: &mut World, index: usize, result: StepResult) {
        let (t, op) = &self.ops[index];
        self.hasher.add_concurrent_step(index as u32, *t, op, &result);
        world.log_mut().step += 1;
    }

    /// Takes the PGM lock for thread `t` (it is always free at a top decision: every holder
    /// releases it before its step ends, or drops it around a callback window).
    fn acquire(&mut self, world: &mut World, t: usize) {
        if t < self.vcpus {
            world.machine_mut().enter_vmm(t);
        }
        if super::debug() {
            eprintln!("DBG acquire t={t} lock={:?}", world.hw_mut().lock);
        }
        let hw = world.hw_mut();
        assert!(
            hw.lock.owner.is_none(),
            "the PGM lock is held by thread {:?} at a decision point",
            hw.lock.owner
        );
        hw.lock.owner = Some(t as u8);
        hw.lock.depth = 1;
        hw.stats.lock_acquisitions += 1;
    }

    /// Releases thread `t`'s PGM lock; the manager must have released everything it took,
    /// and KVM's dirty-logging rule must hold.
    fn release(&mut self, world: &mut World, t: usize) -> Result<(), Failure> {
        if super::debug() {
            eprintln!("DBG release t={t} lock={:?}", world.hw_mut().lock);
        }
        let hw = world.hw_mut();
        let depth = hw.lock.depth;
        hw.lock = Default::default();
        if depth != 1 {
            let detail = format!("thread {t}'s operation returned with the PGM lock at depth {depth} (expected 1)");
            return Err(world.failure(Invariant::LockDiscipline, detail));
        }
        dirty_rule(world)
    }

    /// Hands what lock-free steps did to the oracles and the dirty-tracking ground truth.
    fn drain_events(&mut self, world: &mut World) -> Result<(), Failure> {
        let events = std::mem::take(&mut world.hw_mut().events);
        for e in events {
            match e {
                HwEvent::Completed { id, outcome, value } => self.access_done(world, id, outcome, value),
                HwEvent::Wrote { gp, host } => world.note_write(gp.0, host),
            }
        }
        if !world.machine().hw().expect("concurrent").any_flush_pending() {
            self.accesses.unacked.clear();
        }
        self.accesses.judge_done(world)
    }

    /// A quiescent point: every invariant of the sequential world holds.
    fn quiescent_point(&mut self, world: &mut World) -> Result<(), Failure> {
        let hw = world.machine().hw().expect("concurrent");
        if hw.lock.owner.is_some() || hw.any_flush_pending() || self.accesses.in_flight() > 0 {
            let detail = format!(
                "no thread can move but the world is not quiescent (lock {:?}, vCPUs {:?}, {} accesses in flight)",
                hw.lock,
                hw.cpus,
                self.accesses.in_flight()
            );
            return Err(world.failure(Invariant::LockDiscipline, detail));
        }
        self.quiescent_points += 1;
        let full = self.check == check::CheckMode::Full || self.quiescent_points.is_multiple_of(self.full_every);
        check::quiescent(world, full)
    }

    /// Renames the schedule's moves and attributions from trace indices to start indices:
    /// the trace this run writes lists its operations in start order.
    fn rename_to_start_order(&self, world: &mut World) {
        let start: std::collections::BTreeMap<Move, Move> =
            self.names.iter().enumerate().map(|(i, &n)| (n, i as Move)).collect();
        let Some(hw) = world.machine_mut().hw_mut() else { return };
        let start_of = |op: Move| *start.get(&op).expect("a recorded move names an operation that started");
        for d in hw.decisions.iter_mut() {
            if let Some(op) = sched::op_of(*d) {
                *d = sched::with_op(*d, start_of(op));
            }
        }
        for d in hw.decision_ops.iter_mut().filter(|d| **d != UNATTRIBUTED) {
            *d = start_of(*d);
        }
    }

    /// A callback window of vCPU `me`: the lock is dropped and other threads move until the
    /// scheduler resumes `me` (or the window's bound).
    pub(crate) fn open(&mut self, world: &mut World, me: usize) -> Result<(), Failure> {
        self.release(world, me)?;
        self.suspended[me] = true;
        let mine = world.hw_mut().op;
        for _ in 0..MAX_WINDOW {
            self.issue_accesses(world)?;
            let candidates = self.candidates(world, Some(me as u8));
            let t = self.decide_top(world, &candidates);
            if t as usize == me {
                break;
            }
            self.step(world, t)?;
        }
        self.suspended[me] = false;
        let hw = world.hw_mut();
        hw.current = me as u8;
        hw.op = mine;
        Ok(())
    }
}

impl crate::access::CallbackWindow for Exec<'_> {
    fn open(&mut self, world: &mut World, vcpu: usize) -> Result<(), Failure> {
        Exec::open(self, world, vcpu)
    }
    fn close(&mut self, world: &mut World, vcpu: usize) -> Result<(), Failure> {
        self.acquire(world, vcpu);
        Ok(())
    }
    fn after_call(&mut self, world: &mut World) -> Result<(), Failure> {
        // Every window gains the new state first, then what completed during the call
        // (inline, with the lock held) is judged.
        self.accesses.after_op(world)?;
        self.drain_events(world)
    }
}

/// Runs a concurrent world: `budget` operations from `source`, checked as it goes. Returns
/// the operations (with their threads) started, the schedule and the trace hash.
pub fn execute(
    world: &mut World,
    source: Source<'_>,
    budget: usize,
    check: check::CheckMode,
    recorded: Option<Recorded>,
) -> ConcurrentRun {
    let mut ex = Exec::new(world, source, budget, check, recorded);
    let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ex.run(world))) {
        Ok(r) => r,
        Err(panic) => Err(crate::run::panicked(
            world.step(),
            "running the concurrent world",
            panic,
        )),
    };
    ex.rename_to_start_order(world);
    let accesses_checked = ex.accesses.checks;
    let hash = ex.trace_hash(world);
    ConcurrentRun {
        ops: std::mem::take(&mut ex.ops),
        schedule: world.machine().hw().map(|h| h.decisions.clone()).unwrap_or_default(),
        decision_ops: world.machine().hw().map(|h| h.decision_ops.clone()).unwrap_or_default(),
        quiesce: std::mem::take(&mut ex.quiesce_marks),
        trace_hash: hash,
        failure: result.err(),
        linearization_checks: accesses_checked,
    }
}

/// What a concurrent run produced.
#[derive(Debug, Clone)]
pub struct ConcurrentRun {
    /// Operations in start order, with their threads.
    pub ops: Vec<(u8, Op)>,
    /// Every scheduling decision.
    pub schedule: Vec<Move>,
    /// The operation each decision belongs to (`u32::MAX`: none).
    pub decision_ops: Vec<u32>,
    /// Where each quiescent point but the last began (operations started by then).
    pub quiesce: Vec<u32>,
    /// The trace hash.
    pub trace_hash: u64,
    /// The failure, if any.
    pub failure: Option<Failure>,
    /// Access outcomes judged against their windows.
    pub linearization_checks: u64,
}

/// What a replay takes from its trace besides the operations.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The schedule (a [`Scheduler::Replay`]).
    pub schedule: Scheduler,
    /// Where the quiescent points began (absent in older traces: every `quiesce_every`
    /// operations, as a generated run places them).
    pub quiesce: Option<Vec<u32>>,
}

/// Where quiescent points go.
#[derive(Debug, Clone)]
enum Quiesce {
    /// Every this many operations (generated runs).
    Every(usize),
    /// At these operation counts, ascending (replays).
    At(Vec<u32>),
}

impl Quiesce {
    /// The first point.
    fn first(&self) -> usize {
        self.after(0)
    }

    /// The next point once `started` operations started and the world was quiescent.
    fn after(&self, started: usize) -> usize {
        match self {
            Quiesce::Every(n) => started + n,
            Quiesce::At(marks) => marks
                .iter()
                .map(|&m| m as usize)
                .find(|&m| m > started)
                .unwrap_or(usize::MAX),
        }
    }
}
