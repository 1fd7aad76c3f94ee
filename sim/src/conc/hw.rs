//! The hardware half of a concurrent machine: each vCPU's in-flight instruction, the
//! simulated PGM lock, pending TLB shootdowns, and the lock-free steps (TLB lookup,
//! hardware walk and TLB fill, the memory access, the exit that acknowledges a shootdown)
//! that may run at any decision point, including in the middle of a manager operation.
//!
//! It lives inside [`Machine`] because the machine is the manager's platform: every
//! platform call is a preemption point where the scheduler may run these steps inline,
//! while the manager holds `&mut` to its platform. What they did (accesses completed,
//! pages written) is queued as [`HwEvent`]s for the executor to judge after the operation.

use pgmsim::{Gpa, Gva};

use super::config::Shootdown;
use super::sched::{self, Move, Point, Scheduler, MAX_INLINE_STEPS, NONE, THREAD};
use super::timeline::{op_name, Event, HwStep, Mark, Within};
use crate::machine::Machine;
use crate::mmu::{rights_allow, Mode, Translation};
use crate::op::{AccessKind, AccessOutcome};

/// An access an instruction is carrying out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The access's number in this run (its oracle record).
    pub id: u32,
    /// The operation it carries out (what a schedule names it by).
    pub op: Move,
    /// Virtual address.
    pub va: Gva,
    /// Virtual page index.
    pub vpi: u32,
    /// Bytes.
    pub size: u8,
    /// Read, write or fetch.
    pub kind: AccessKind,
    /// Value written.
    pub value: u64,
    /// Faults resolved so far (an access converges within four).
    pub rounds: u8,
}

/// Where a vCPU is in its current instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instr {
    /// Between instructions, in guest mode.
    Idle,
    /// Issued but not begun: the next instruction is an access, which may begin at any
    /// decision point, including inline in another thread's manager operation (guest code
    /// does not wait for the PGM lock). Beginning acknowledges a pending shootdown first
    /// (an instruction boundary) and looks the page up.
    Ready(Pending),
    /// About to look the page up in its TLB.
    Lookup(Pending),
    /// Missed: about to walk the shadow (or guest and nested) tables.
    Walk(Pending),
    /// Past its TLB lookup: completes with this translation, whatever happens meanwhile.
    Access(Pending, Translation),
    /// Exited to the VMM with a fault: needs the PGM lock.
    Exit(Pending),
}

/// One vCPU as the hardware sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    /// The instruction in flight.
    pub instr: Instr,
    /// A shootdown this vCPU has not acknowledged yet.
    pub flush_pending: bool,
    /// Out of guest mode (in the VMM: fault handling, dispatch, kernel edits, waiting for
    /// the lock): TLB flushes apply at once, nothing runs on stale translations.
    pub in_vmm: bool,
}

/// Something a lock-free step did, for the executor to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HwEvent {
    /// An access completed without trapping.
    Completed {
        /// The access.
        id: u32,
        /// What it did.
        outcome: AccessOutcome,
        /// Value read.
        value: u64,
    },
    /// A guest write reached guest-physical `gp` (dirty-tracking ground truth).
    Wrote {
        /// The page written.
        gp: Gpa,
        /// Its backing.
        host: pgmsim::Hpa,
    },
}

/// The simulated PGM lock: recursive, owned by one thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PgmLock {
    /// The owning thread.
    pub owner: Option<u8>,
    /// Recursion depth.
    pub depth: u32,
}

/// Counters of a concurrent run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HwStats {
    /// Times a thread other than the one that could go on was chosen.
    pub preemptions: u64,
    /// PGM lock acquisitions (outermost).
    pub lock_acquisitions: u64,
    /// Shootdowns requested.
    pub shootdowns: u64,
    /// Lock-free steps run inside manager operations.
    pub inline_steps: u64,
    /// TLB lookups that hit.
    pub tlb_hits: u64,
    /// TLB lookups that missed.
    pub tlb_misses: u64,
}

/// A decision that belongs to no operation (a shootdown acknowledgement, a window's end).
pub const UNATTRIBUTED: u32 = u32::MAX;

/// The concurrent half of a machine.
#[derive(Debug, Clone)]
pub struct Hw {
    /// The vCPUs.
    pub cpus: Vec<Cpu>,
    /// The PGM lock.
    pub lock: PgmLock,
    /// How shootdowns reach the vCPUs.
    pub shootdown: Shootdown,
    /// The scheduler.
    pub sched: Scheduler,
    /// Every decision taken, in order: the schedule.
    pub decisions: Vec<Move>,
    /// For each decision, the operation it belongs to ([`UNATTRIBUTED`]: none): the
    /// operation the chosen thread works on at a top decision, the lock holder's at an
    /// inline or flush decision. The shrinker removes an operation's decisions with it.
    pub decision_ops: Vec<u32>,
    /// The operation the decisions being taken now belong to.
    pub op: u32,
    /// The thread whose step is running at top level.
    pub current: u8,
    /// The thread that moved last at top level.
    pub last: u8,
    /// What lock-free steps did since the executor last looked.
    pub events: Vec<HwEvent>,
    /// Counters.
    pub stats: HwStats,
    /// What each thread did, when an observer records it (`None`: not recorded; recording
    /// never changes what the run does).
    pub timeline: Option<Vec<Event>>,
}

impl Hw {
    /// A concurrent machine half with `vcpus` idle vCPUs.
    pub fn new(vcpus: usize, shootdown: Shootdown, sched: Scheduler) -> Hw {
        Hw {
            cpus: vec![
                Cpu {
                    instr: Instr::Idle,
                    flush_pending: false,
                    in_vmm: false,
                };
                vcpus
            ],
            lock: PgmLock::default(),
            shootdown,
            sched,
            decisions: Vec::new(),
            decision_ops: Vec::new(),
            op: UNATTRIBUTED,
            current: 0,
            last: 0,
            events: Vec::new(),
            stats: HwStats::default(),
            timeline: None,
        }
    }

    /// Asks the scheduler, records the decision (by what it moved, see [`Move`]) and counts
    /// preemptions; `names[i]` names what choosing `candidates[i]` moves.
    pub fn decide(&mut self, point: Point, candidates: &[u8], names: &[Move]) -> u8 {
        let choice = self.sched.pick(point, self.last, candidates, names);
        // Top and flush decisions name what moved even when it was the default: their default
        // (the thread that moved last) depends on the decisions before, which a shrinker may
        // remove. "The holder goes on" at an inline point is the same whatever came before.
        let named = candidates.iter().position(|&t| t == choice).map(|i| names[i]);
        self.decisions.push(sched::recorded(point, named));
        self.decision_ops.push(self.op);
        let preempted = match point {
            Point::Inline { .. } => choice != NONE,
            _ => candidates.contains(&self.last) && choice != self.last,
        };
        self.stats.preemptions += u64::from(preempted);
        if preempted && point == Point::Top {
            self.note(Mark::Preempt {
                from: self.last,
                to: choice,
            });
        }
        choice
    }

    /// Records `mark` if the timeline is recorded, stamped with the decisions taken so far.
    pub fn note(&mut self, mark: Mark) {
        let at = self.decisions.len() as u64;
        if let Some(t) = &mut self.timeline {
            t.push(Event { at, mark });
        }
    }

    /// Records the lock-free step vCPU `v` is about to take, run `within` a context.
    pub fn note_hw(&mut self, v: usize, within: Within) {
        if self.timeline.is_none() {
            return;
        }
        let mark = Mark::Hw {
            vcpu: v as u8,
            op: op_name(self.vcpu_move(v)),
            step: HwStep::of(self.cpus[v].instr),
            within,
        };
        self.note(mark);
    }

    /// Whether vCPU `v`'s next step is a lock-free hardware step.
    pub fn can_step(&self, v: usize) -> bool {
        let cpu = &self.cpus[v];
        !cpu.in_vmm
            && match cpu.instr {
                Instr::Ready(_) | Instr::Lookup(_) | Instr::Walk(_) | Instr::Access(..) => true,
                Instr::Idle => cpu.flush_pending,
                Instr::Exit(_) => false,
            }
    }

    /// What vCPU `v`'s next step moves: the operation its instruction carries out, or the
    /// vCPU itself (an exit acknowledging a shootdown).
    pub fn vcpu_move(&self, v: usize) -> Move {
        match self.cpus[v].instr {
            Instr::Ready(p) | Instr::Lookup(p) | Instr::Walk(p) | Instr::Access(p, _) | Instr::Exit(p) => p.op,
            Instr::Idle => THREAD | v as Move,
        }
    }

    /// Whether any vCPU still owes a shootdown acknowledgement.
    pub fn any_flush_pending(&self) -> bool {
        self.cpus.iter().any(|c| c.flush_pending)
    }
}

impl Machine {
    /// A preemption point inside a manager operation: lets the scheduler run lock-free
    /// steps of other vCPUs now.
    pub(crate) fn preempt(&mut self) {
        for step in 0..MAX_INLINE_STEPS {
            let Some(hw) = self.hw_mut() else { return };
            let holder = hw.current;
            let candidates: Vec<u8> = (0..hw.cpus.len() as u8)
                .filter(|&v| v != holder && hw.can_step(v as usize))
                .collect();
            // Decided even with no candidate: the operation's inline decisions then line up
            // with its own platform calls, whatever the other threads do.
            let names: Vec<Move> = candidates.iter().map(|&v| hw.vcpu_move(v as usize)).collect();
            let choice = hw.decide(Point::Inline { holder }, &candidates, &names);
            if choice == NONE {
                if hw.sched.fell_back() {
                    hw.sched.skip_inline_rest(step);
                }
                return;
            }
            hw.stats.inline_steps += 1;
            let op = op_name(hw.op);
            hw.note_hw(choice as usize, Within::Inline { holder, op });
            self.hw_step(choice as usize);
        }
    }

    /// A shootdown: every vCPU must drop its TLB. vCPUs out of guest mode do so at once;
    /// the others at their next exit. Synchronously, the requester then waits (running the
    /// steps the scheduler picks) until every vCPU has acknowledged.
    pub(crate) fn shootdown(&mut self) {
        let Some(hw) = self.hw_mut() else { return };
        hw.stats.shootdowns += 1;
        let mut flush_now = Vec::new();
        let mut pending = 0u16;
        for (v, cpu) in hw.cpus.iter_mut().enumerate() {
            if cpu.in_vmm {
                flush_now.push(v);
            } else {
                cpu.flush_pending = true;
                pending |= 1 << v;
            }
        }
        let (thread, op) = (hw.current, op_name(hw.op));
        hw.note(Mark::Shootdown { thread, op, pending });
        let sync = hw.shootdown == Shootdown::Sync;
        for v in flush_now {
            self.mmu_mut().flush_tlb(v);
        }
        if sync {
            self.wait_for_acks();
        }
    }

    /// The guest kernel's INVLPG of `vpi` reaches the vCPUs running `space` as its own TLB
    /// shootdown does on real hardware: an IPI each acknowledges at an instruction boundary.
    /// A vCPU whose instruction is past its lookup with a translation of that page therefore
    /// completes it first (the kernel's shootdown waits for it); without this, the write
    /// could land through a translation whose shadow PTE and TLB entry are gone, after a
    /// later harvest found no mapping of the page left to flush.
    pub(crate) fn retire_in_flight(&mut self, vcpus: &[usize], vpi: u32) {
        for &v in vcpus {
            let Some(hw) = self.hw_mut() else { return };
            if !matches!(hw.cpus[v].instr, Instr::Access(p, _) if p.vpi == vpi) {
                continue;
            }
            let (requester, op) = (hw.current, op_name(hw.op));
            hw.note_hw(v, Within::FlushWait { requester, op });
            self.hw_step(v);
        }
    }

    /// Runs the pending vCPUs' steps, as the scheduler picks them, until all acknowledged.
    fn wait_for_acks(&mut self) {
        // Each vCPU needs at most lookup, walk, access and the exit: four steps.
        for _ in 0..4 * self.guest().vcpus() + 1 {
            let Some(hw) = self.hw_mut() else { return };
            let waiting: Vec<u8> = (0..hw.cpus.len() as u8)
                .filter(|&v| hw.cpus[v as usize].flush_pending)
                .collect();
            if waiting.is_empty() {
                return;
            }
            let names: Vec<Move> = waiting.iter().map(|&v| hw.vcpu_move(v as usize)).collect();
            let choice = hw.decide(Point::Flush, &waiting, &names);
            let (requester, op) = (hw.current, op_name(hw.op));
            hw.note_hw(choice as usize, Within::FlushWait { requester, op });
            self.hw_step(choice as usize);
        }
        panic!(
            "a synchronous shootdown did not complete: vCPU states {:?}",
            self.hw().map(|h| &h.cpus)
        );
    }

    /// One lock-free step of vCPU `v`.
    pub(crate) fn hw_step(&mut self, v: usize) {
        let Some(instr) = self.hw().map(|h| h.cpus[v].instr) else {
            return;
        };
        let next = match instr {
            Instr::Idle => {
                self.acknowledge(v);
                Instr::Idle
            }
            Instr::Ready(p) => {
                self.acknowledge(v);
                self.lookup(v, p)
            }
            Instr::Lookup(p) => self.lookup(v, p),
            Instr::Walk(p) => self.walk(v, p),
            Instr::Access(p, t) => {
                self.complete_direct(p, t);
                Instr::Idle
            }
            Instr::Exit(p) => Instr::Exit(p),
        };
        self.set_instr(v, next);
    }

    /// The TLB lookup: a hit goes on to the access, a miss to the walk.
    fn lookup(&mut self, v: usize, p: Pending) -> Instr {
        let t = self.mmu().tlb_lookup(v, p.vpi, p.kind);
        if let Some(hw) = self.hw_mut() {
            hw.stats.tlb_hits += u64::from(t.is_some());
            hw.stats.tlb_misses += u64::from(t.is_none());
        }
        match t {
            Some(t) => Instr::Access(p, t),
            None => Instr::Walk(p),
        }
    }

    /// The exit at an instruction boundary: acknowledge a pending shootdown.
    fn acknowledge(&mut self, v: usize) {
        let Some(hw) = self.hw_mut() else { return };
        if !hw.cpus[v].flush_pending {
            return;
        }
        hw.cpus[v].flush_pending = false;
        hw.note(Mark::Ack { vcpu: v as u8 });
        self.mmu_mut().flush_tlb(v);
    }

    /// The hardware walk: fills the TLB, or exits to the VMM.
    fn walk(&mut self, v: usize, p: Pending) -> Instr {
        let t = match self.mmu().mode() {
            Mode::Shadow => self.mmu_mut().walk_shadow(v, p.vpi, p.kind),
            Mode::Nem => {
                let space = self.guest().space_of(v);
                match self.guest().walk(space, p.va) {
                    Some(g) if rights_allow(g.write, g.exec, p.kind) => self.mmu_mut().walk_nested(v, p.vpi, g, p.kind),
                    _ => None,
                }
            }
        };
        match t {
            Some(t) => Instr::Access(p, t),
            None => Instr::Exit(p),
        }
    }

    /// The memory access of a translated instruction.
    fn complete_direct(&mut self, p: Pending, t: Translation) {
        let (gp, host) = (t.gp.with_offset(p.va.0), t.host.with_offset(p.va.0));
        let value = match p.kind {
            AccessKind::Write => {
                self.guest_mut().write(host, p.size, p.value);
                self.push_event(HwEvent::Wrote { gp, host });
                0
            }
            _ => self.guest().read(host, p.size),
        };
        let outcome = AccessOutcome::Direct { gp, host };
        self.push_event(HwEvent::Completed {
            id: p.id,
            outcome,
            value,
        });
    }

    fn set_instr(&mut self, v: usize, instr: Instr) {
        let Some(hw) = self.hw_mut() else { return };
        hw.cpus[v].instr = instr;
        if let Instr::Exit(_) = instr {
            self.enter_vmm(v);
        }
    }

    /// vCPU `v` leaves guest mode: a pending shootdown applies now.
    pub(crate) fn enter_vmm(&mut self, v: usize) {
        let Some(hw) = self.hw_mut() else { return };
        hw.cpus[v].in_vmm = true;
        if std::mem::replace(&mut hw.cpus[v].flush_pending, false) {
            hw.note(Mark::Ack { vcpu: v as u8 });
            self.mmu_mut().flush_tlb(v);
        }
    }

    /// vCPU `v` re-enters guest mode.
    pub(crate) fn leave_vmm(&mut self, v: usize) {
        if let Some(hw) = self.hw_mut() {
            hw.cpus[v].in_vmm = false;
        }
    }

    fn push_event(&mut self, e: HwEvent) {
        if let Some(hw) = self.hw_mut() {
            hw.events.push(e);
        }
    }
}
