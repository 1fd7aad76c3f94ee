//! Where the step loop feeds the counters. Each hook is one call from the step loop
//! (`step.rs`, `check/mod.rs`, `World::new`) and costs a few adds per step: API results are
//! counted where calls are applied, page transitions from the descriptors of the pages a
//! call's footprint names (captured just before the call) against the same pages after the
//! step.

use pgmsim::{PageDescriptor, PhysHandlerApi};
use pgmsim_testkit::{ApiCall, Outcome};

use super::cells::{self, op, Transition};
use super::counters::{Check, Scope};
use crate::mmu::Mode;
use crate::op::{Op, StepResult};
use crate::world::{StepLog, World};

/// Descriptors of the pages the current operation's calls may change, captured before the
/// call that named each page; consumed by [`after_step`].
#[derive(Debug, Clone, Default)]
pub struct PagesBefore {
    pages: Vec<(u64, Option<PageDescriptor>)>,
}

impl PagesBefore {
    /// Forgets everything captured.
    pub fn clear(&mut self) {
        self.pages.clear();
    }

    /// The captured pages, each with its earliest descriptor, in address order.
    pub fn settled(&mut self) -> &[(u64, Option<PageDescriptor>)] {
        // Stable sort + dedup keeps each page's first capture: its state before the step.
        self.pages.sort_by_key(|p| p.0);
        self.pages.dedup_by_key(|p| p.0);
        &self.pages
    }
}

/// Before an API call: captures the descriptors of the call's footprint, the touched pages
/// from index `footprint` on (`World::call`, right after `Touched::call` appended them).
pub(crate) fn before_call(log: &mut StepLog, footprint: usize, prod: &dyn PhysHandlerApi) {
    if log.coverage_off {
        return;
    }
    for &gp in log.touched.pages.get(footprint..).unwrap_or_default() {
        log.before.pages.push((gp, prod.page(gp)));
    }
}

/// Before an API call: the placements of a register / register_ex call's range against the
/// handlers registered now and the layout (`cells::placement`; 0 for other calls).
pub(crate) fn placement(world: &World, call: &ApiCall) -> u16 {
    let (first, last) = match *call {
        _ if world.log().coverage_off => return 0,
        ApiCall::Register { first, last, .. } | ApiCall::RegisterEx { first, last, .. } => (first, last),
        _ => return 0,
    };
    let ranges: Vec<(u64, u64)> = world
        .config()
        .layout
        .ram_ranges
        .iter()
        .map(|r| (r.first, r.last()))
        .collect();
    cells::placement(first, last, &world.model().handler_spans(), &ranges)
}

/// After an API call: counts its result, and the placements `placed` of a register call
/// (from [`placement`], taken before the call).
pub(crate) fn after_call(log: &mut StepLog, call: &ApiCall, outcome: &Outcome, placed: u16) {
    if log.coverage_off {
        return;
    }
    let result = cells::outcome_result(outcome);
    log.stats.coverage.result(cells::api_op(call), result);
    if placed != 0 {
        let ok = matches!(outcome, Outcome::Status(Ok(_)));
        log.stats.coverage.placement(placed, ok);
    }
}

/// After a step applied without failing: the simulator steps' results, the page
/// transitions of the step, and the step-level comparisons that ran.
pub(crate) fn after_step(world: &mut World, op: &Op, result: &StepResult) {
    let (sides, _, log) = world.parts_mut();
    if log.coverage_off {
        return;
    }
    let cov = &mut log.stats.coverage;
    match (op, result) {
        (Op::Query { .. }, StepResult::Query(q)) => {
            cov.result(op::IS_REGISTERED, cells::bool_result(q.registered));
            let is_all = q.is_all.map_or_else(cells::error_result, cells::bool_result);
            cov.result(op::IS_ALL, is_all);
            cov.result(op::LOOKUP, cells::found_result(q.handler.is_some()));
        }
        (Op::Map { .. }, StepResult::Kernel(r)) => cov.result(op::MAP, cells::kernel_result(*r)),
        (Op::Unmap { .. }, StepResult::Kernel(r)) => cov.result(op::UNMAP, cells::kernel_result(*r)),
        (Op::Protect { .. }, StepResult::Kernel(r)) => cov.result(op::PROTECT, cells::kernel_result(*r)),
        (Op::SwitchCr3 { .. }, StepResult::Kernel(r)) => cov.result(op::SWITCH_CR3, cells::kernel_result(*r)),
        (Op::Access { kind, .. }, StepResult::Access { outcome, .. }) => {
            cov.result(cells::access_op(*kind), cells::access_result(outcome));
            cov.check(Check::AccessOutcome, Scope::Step);
        }
        (Op::Harvest { .. }, StepResult::Harvest(r)) => {
            cov.result(
                op::HARVEST,
                cells::op_result(r.as_ref().map(|_| pgmsim::Status::Success).map_err(|e| *e)),
            );
            if r.is_ok() {
                cov.check(Check::DirtyBitmap, Scope::Step);
            }
        }
        (Op::Harvest { .. }, StepResult::Nothing) => cov.result(op::HARVEST, cells::no_tracker_result()),
        _ => {}
    }
    if log.touched.manager {
        cov.check(Check::PlatformEvents, Scope::Step);
    }
    let prod = sides.prod();
    for &(gp, before) in log.before.settled() {
        let (Some(b), Some(a)) = (before, prod.page(gp)) else {
            continue;
        };
        if b.handler_state() != a.handler_state() || b.page_type() != a.page_type() {
            log.stats.coverage.transition(Transition {
                type_before: b.page_type(),
                from: b.handler_state(),
                type_after: a.page_type(),
                to: a.handler_state(),
            });
        }
    }
    log.before.clear();
}

/// A guest access of a concurrent world completed: its executor runs accesses as hardware
/// steps, not through [`after_step`], so their outcomes are counted here.
pub(crate) fn access_done(world: &mut World, op: &Op, result: &StepResult) {
    if world.log().coverage_off {
        return;
    }
    if let (Op::Access { kind, .. }, StepResult::Access { outcome, .. }) = (op, result) {
        let cov = &mut world.log_mut().stats.coverage;
        cov.result(cells::access_op(*kind), cells::access_result(outcome));
    }
}

/// The incremental checks about to run after a step (`check::after_step`).
pub(crate) fn incremental_checks(world: &mut World) {
    if world.log().coverage_off {
        return;
    }
    let manager = world.touched().manager;
    let nem = world.config().mode == Mode::Nem;
    let cov = &mut world.log_mut().stats.coverage;
    cov.check(Check::DifferentialPages, Scope::Step);
    if manager {
        cov.check(Check::DifferentialHandlers, Scope::Step);
        cov.check(Check::SyncPages, Scope::Step);
    }
    cov.check(Check::TranslationSafety, Scope::Step);
    if nem {
        cov.check(Check::NemSync, Scope::Step);
    }
}

/// The checks of a concurrent world's quiescent point over what was touched since the last
/// one (`check::quiescent`).
pub(crate) fn quiescent_checks(world: &mut World) {
    if world.log().coverage_off {
        return;
    }
    let nem = world.config().mode == Mode::Nem;
    let cov = &mut world.log_mut().stats.coverage;
    for c in [
        Check::DifferentialPages,
        Check::DifferentialHandlers,
        Check::SyncPages,
        Check::TranslationSafety,
    ] {
        cov.check(c, Scope::Step);
    }
    if nem {
        cov.check(Check::NemSync, Scope::Step);
    }
}

/// A full check about to run (`check::full_check`).
pub(crate) fn full_checks(world: &mut World) {
    if world.log().coverage_off {
        return;
    }
    let nem = world.config().mode == Mode::Nem;
    let cov = &mut world.log_mut().stats.coverage;
    for c in [
        Check::ProductionCheckSync,
        Check::DifferentialPages,
        Check::DifferentialHandlers,
        Check::SyncPages,
        Check::TranslationSafety,
    ] {
        cov.check(c, Scope::Full);
    }
    if nem {
        cov.check(Check::NemSync, Scope::Full);
    }
}
