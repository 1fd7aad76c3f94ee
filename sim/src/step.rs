//! One step: the operation applied to both sides (API calls), to the guest kernel, or to a
//! vCPU; the platform-event comparison; then the invariant checks due after it.

use pgmsim::Gpa;
use pgmsim_testkit::{ApiCall, Outcome};

use crate::check::{self, CheckMode, Failure, Invariant};
use crate::machine::KernelEdit;
use crate::mmu::guest_pt::va_of;
use crate::op::{Op, QueryAnswer, StepResult};
use crate::world::World;

impl World {
    /// Applies one step and checks the invariants due after it.
    pub fn apply(&mut self, op: &Op, mode: CheckMode) -> Result<StepResult, Failure> {
        self.log_mut().begin(op.name());
        let result = self.apply_unchecked(op)?;
        check::after_step(self, mode)?;
        self.log_mut().step += 1;
        Ok(result)
    }

    /// Applies one operation of a concurrent world (its thread holds the PGM lock); what it
    /// touched is checked at the next quiescent point.
    pub(crate) fn apply_concurrent(&mut self, op: &Op) -> Result<StepResult, Failure> {
        crate::run::watchdog::beat(self.step());
        self.log_mut().begin_op(op.name());
        self.apply_unchecked(op)
    }

    /// One operation on both sides, its error statistics and the platform-event comparison.
    fn apply_unchecked(&mut self, op: &Op) -> Result<StepResult, Failure> {
        let result = self.apply_op(op)?;
        crate::coverage::hooks::after_step(self, op, &result);
        let failed = match &result {
            StepResult::Manager(Err(e)) | StepResult::Harvest(Err(e)) => Some(*e),
            _ => None,
        };
        if let Some(e) = failed {
            self.log_mut().error(e);
        }
        let (sides, _, log) = self.parts_mut();
        log.touched.settle(failed.is_some());
        if log.touched.manager {
            let (a, b) = sides.take_events(log.events.as_mut());
            if a != b {
                return Err(self.failure(
                    Invariant::Differential,
                    format!("platform events: production {a:?}, model {b:?}"),
                ));
            }
        } else {
            sides.drain_events();
        }
        Ok(result)
    }

    fn apply_op(&mut self, op: &Op) -> Result<StepResult, Failure> {
        match *op {
            Op::Call(ref call) => {
                let outcome = self.call(call)?;
                Ok(step_result(outcome))
            }
            Op::Query { addr } => self.query(addr),
            Op::Map {
                space,
                vpi,
                gp,
                write,
                exec,
            } => Ok(self.kernel(
                space,
                vpi,
                KernelEdit::Map {
                    gp: Gpa(gp),
                    write,
                    exec,
                },
            )),
            Op::Unmap { space, vpi } => Ok(self.kernel(space, vpi, KernelEdit::Unmap)),
            Op::Protect {
                space,
                vpi,
                write,
                exec,
            } => Ok(self.kernel(space, vpi, KernelEdit::Protect { write, exec })),
            Op::SwitchCr3 { vcpu, space } => Ok(self.switch_cr3(vcpu, space)),
            Op::Access {
                vcpu,
                va,
                size,
                kind,
                value,
            } => self.access(vcpu, pgmsim::Gva(va), size, kind, value),
            Op::Harvest { tracker } => self.harvest(tracker),
        }
    }

    /// An API call on both sides, with its footprint recorded (the one place calls are
    /// applied, whether a step or a device callback makes them).
    pub(crate) fn call(&mut self, call: &ApiCall) -> Result<Outcome, Failure> {
        let placed = crate::coverage::hooks::placement(self, call);
        let (sides, _, log) = self.parts_mut();
        let footprint = log.touched.pages.len();
        log.touched.call(call, sides.model(), sides.model_names());
        crate::coverage::hooks::before_call(log, footprint, sides.prod());
        match sides.call(call) {
            Ok(outcome) => {
                crate::coverage::hooks::after_call(log, call, &outcome, placed);
                Ok(outcome)
            }
            Err(d) => Err(self.failure(Invariant::Differential, d.to_string())),
        }
    }

    fn query(&mut self, addr: u64) -> Result<StepResult, Failure> {
        let sides = self.sides();
        let answer = (|| {
            Ok::<_, String>(QueryAnswer {
                registered: sides.query("is_registered", |m| m.is_registered(addr))?,
                is_all: sides.query("is_all", |m| m.is_all(addr))?,
                handler: sides.query("lookup", |m| m.lookup(addr).map(|h| h.key))?,
            })
        })();
        answer
            .map(StepResult::Query)
            .map_err(|e| self.failure(Invariant::Differential, e))
    }

    /// A guest-kernel page-table edit in `space`, then INVLPG on every vCPU running it (in a
    /// concurrent world, after an instruction in flight on that page retires).
    fn kernel(&mut self, space: u8, vpi: u32, edit: KernelEdit) -> StepResult {
        let s = space as usize % self.guest().spaces();
        let vpi = vpi % self.config().va_pages.max(1);
        let (sides, _, log) = self.parts_mut();
        let guest = sides.machine_mut().parts_mut().1;
        let running: Vec<usize> = (0..guest.vcpus()).filter(|&v| guest.space_of(v) == s).collect();
        let r = guest.edit(s, vpi, va_of(vpi), edit);
        if r.is_ok() {
            sides.machine_mut().retire_in_flight(&running, vpi);
            let mmu = sides.machine_mut().parts_mut().0;
            for &v in &running {
                mmu.invlpg(v, vpi);
            }
        }
        log.touched.vpages.push((s as u8, vpi));
        StepResult::Kernel(r)
    }

    /// vCPU `vcpu` loads the CR3 of `space`.
    fn switch_cr3(&mut self, vcpu: u8, space: u8) -> StepResult {
        let v = vcpu as usize % self.vcpus();
        let s = space as usize % self.guest().spaces();
        let (mmu, guest) = self.parts_mut().0.machine_mut().parts_mut();
        guest.switch(v, s);
        mmu.load_cr3(v, s as u8, guest.cr3(s));
        StepResult::Kernel(Ok(()))
    }

    /// The dirty-tracking device harvests: both sides re-arm with a bitmap, which must agree
    /// and name exactly the pages written since the last harvest (invariant 6).
    fn harvest(&mut self, tracker: u8) -> Result<StepResult, Failure> {
        let Some(t) = self.devices().trackers.get(tracker as usize).cloned() else {
            return Ok(StepResult::Nothing);
        };
        let call = t.harvest_call();
        let Outcome::Bitmap(r, bitmap) = self.call(&call)? else {
            return Err(self.failure(Invariant::Differential, format!("{call:?} answered no bitmap")));
        };
        // In a concurrent world a write may land through a translation taken before the
        // harvest re-armed its page; the dirty-log oracles judge harvests there instead.
        if r.is_ok() && !self.is_concurrent() {
            let expected = t.expected_bitmap(bitmap.len());
            if expected != bitmap {
                return Err(self.failure(
                    Invariant::DirtyTracking,
                    format!(
                        "harvest of {:#x}: bitmap {bitmap:x?}, pages written since the last harvest {:?} (expected {expected:x?})",
                        t.first, t.written
                    ),
                ));
            }
        }
        if r.is_ok() {
            self.parts_mut().1.trackers[tracker as usize].written.clear();
        }
        Ok(StepResult::Harvest(r.map(|_| bitmap)))
    }
}

/// The recorded result of an API call step.
fn step_result(outcome: Outcome) -> StepResult {
    match outcome {
        Outcome::Status(r) | Outcome::Bitmap(r, _) => StepResult::Manager(r),
        Outcome::Created(r) | Outcome::TypeRegistered(r) => StepResult::Manager(r.map(|()| pgmsim::Status::Success)),
        answer => StepResult::Answer(answer),
    }
}
