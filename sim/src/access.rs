//! Guest accesses: the production path (the MMU's hardware steps, the VMM's fault path,
//! handler dispatch to the devices), the model's prediction from the cache-free guest walk
//! and its own page states, and their comparison (invariant 4).

use pgmsim::{Gpa, Gva, HandlerState, Hpa, PageDescriptor, PageType, PhysHandlerApi, PAGE_OFFSET_MASK};

use crate::check::{Failure, Invariant};
use crate::config::Behaviour;
use pgmsim_testkit::ApiCall;

use crate::devices::{mask, Response};
use crate::mmu::guest_pt::{vpi_of, GuestPte};
use crate::mmu::page_map::{phys_target, PhysTarget};
use crate::mmu::{rights_allow, Mode, Translation};
use crate::op::{AccessKind, AccessOutcome, Piece, StepResult, Target};
use crate::world::World;

/// Whether a page's state makes this access trap to handlers. Reads and fetches trap on
/// `All`; writes on `Write` and `All`; `Disabled` never traps.
pub fn traps(d: &PageDescriptor, kind: AccessKind) -> bool {
    match d.handler_state() {
        HandlerState::All => true,
        HandlerState::Write => kind == AccessKind::Write,
        HandlerState::None | HandlerState::Disabled => false,
    }
}

/// The model's expectation, computed before the access runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prediction {
    /// The access's whole outcome.
    Outcome(AccessOutcome),
    /// Trapped: the pieces `(first, last, handler)` (targets are resolved after the
    /// callbacks ran).
    Trapped {
        /// Guest-physical address.
        gp: Gpa,
        /// Pieces.
        pieces: Vec<(u64, u64, Option<u64>)>,
    },
}

/// Splits `[first, last]` at handler boundaries: covered pieces name their handler.
/// `covering(a)` is the range of the handler containing `a`; `above(a)` the start of the
/// first handler above `a`.
pub fn split(
    first: u64,
    last: u64,
    covering: &dyn Fn(u64) -> Option<(u64, u64)>,
    above: &dyn Fn(u64) -> Option<u64>,
) -> Vec<(u64, u64, Option<u64>)> {
    let mut out = Vec::new();
    let mut at = first;
    loop {
        let (end, handler) = match covering(at) {
            Some((key, key_last)) => (key_last.min(last), Some(key)),
            None => match above(at) {
                Some(k) if k <= last => (k - 1, None),
                _ => (last, None),
            },
        };
        out.push((at, end, handler));
        if end == last {
            return out;
        }
        at = end + 1;
    }
}

/// The model's prediction of an access by a vCPU running `space`.
pub fn predict(world: &World, space: usize, va: Gva, size: u8, kind: AccessKind) -> Prediction {
    predict_on(world, world.model(), space, va, size, kind)
}

/// The prediction of an access against `model` (the current model, or an earlier state of
/// it) and the world's guest page tables.
pub fn predict_on(
    world: &World,
    model: &pgmsim_model::Model,
    space: usize,
    va: Gva,
    size: u8,
    kind: AccessKind,
) -> Prediction {
    if vpi_of(va, world.config().va_pages).is_none() {
        return Prediction::Outcome(AccessOutcome::BadAddress);
    }
    let Some(g) = world.guest().walk(space, va) else {
        return Prediction::Outcome(AccessOutcome::GuestFault { protection: false });
    };
    if !rights_allow(g.write, g.exec, kind) {
        return Prediction::Outcome(AccessOutcome::GuestFault { protection: true });
    }
    let gp = g.gp.with_offset(va.0);
    let Some(d) = model.page(gp.0) else {
        return Prediction::Outcome(AccessOutcome::Unassigned { gp });
    };
    if traps(&d, kind) {
        let handlers = model.handlers();
        let covering = |a: u64| model.lookup(a).map(|h| (h.key, h.key_last));
        let above = |a: u64| handlers.iter().find(|h| h.key > a).map(|h| h.key);
        let pieces = split(gp.0, gp.0 + size as u64 - 1, &covering, &above);
        return Prediction::Trapped { gp, pieces };
    }
    if d.page_type() == PageType::Mmio {
        return Prediction::Outcome(AccessOutcome::Unassigned { gp });
    }
    Prediction::Outcome(AccessOutcome::Direct {
        gp,
        host: d.host_phys().with_offset(va.0),
    })
}

/// What the VMM's fault path decided.
pub(crate) enum Fault {
    /// The access is done (guest fault, unassigned, dispatched to handlers).
    Done(AccessOutcome, u64),
    /// A translation was installed: retry the instruction.
    Retry,
}

impl World {
    /// Runs one guest access on the production side and checks it against the model's
    /// prediction. Returns the outcome and the value read.
    pub(crate) fn access(
        &mut self,
        vcpu: u8,
        va: Gva,
        size: u8,
        kind: AccessKind,
        value: u64,
    ) -> Result<StepResult, Failure> {
        let vcpu = vcpu as usize % self.vcpus();
        let space = self.guest().space_of(vcpu);
        if let Some(vpi) = vpi_of(va, self.config().va_pages) {
            self.log_mut().touched.vpages.push((space as u8, vpi));
        }
        let size = if matches!(size, 1 | 2 | 4 | 8) { size } else { 1 };
        // Keep the access inside its page.
        let va = if (va.0 & PAGE_OFFSET_MASK) + size as u64 > 0x1000 {
            Gva(va.0 & !(size as u64 - 1))
        } else {
            va
        };
        self.log_mut().stats.accesses += 1;
        let predicted = predict(self, space, va, size, kind);
        let (outcome, read) = self.run_access(vcpu, va, size, kind, value)?;
        self.compare(&predicted, &outcome)?;
        if matches!(outcome, AccessOutcome::GuestFault { .. }) {
            self.log_mut().stats.guest_faults += 1;
        }
        Ok(StepResult::Access { outcome, value: read })
    }

    /// The production path: TLB, hardware walk, fault; at most four rounds.
    fn run_access(
        &mut self,
        vcpu: usize,
        va: Gva,
        size: u8,
        kind: AccessKind,
        value: u64,
    ) -> Result<(AccessOutcome, u64), Failure> {
        let Some(vpi) = vpi_of(va, self.config().va_pages) else {
            return Ok((AccessOutcome::BadAddress, 0));
        };
        for _ in 0..4 {
            if let Some(t) = self.mmu().tlb_lookup(vcpu, vpi, kind) {
                self.log_mut().stats.tlb_hits += 1;
                return Ok(self.direct(t, va, size, kind, value));
            }
            self.log_mut().stats.tlb_misses += 1;
            if self.mmu().mode() == Mode::Shadow && self.machine_mut().mmu_mut().walk_shadow(vcpu, vpi, kind).is_some()
            {
                continue;
            }
            match self.fault(vcpu, vpi, va, size, kind, value, &mut ())? {
                Fault::Done(outcome, read) => return Ok((outcome, read)),
                Fault::Retry => {}
            }
        }
        Err(self.failure(
            Invariant::TranslationSafety,
            format!("access to {va:?} did not converge after resyncs"),
        ))
    }

    /// The VMM's fault path (under its lock): walk the guest's tables, look up the page,
    /// then dispatch a trapped access, refuse an unassigned one, or install a translation.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fault(
        &mut self,
        vcpu: usize,
        vpi: u32,
        va: Gva,
        size: u8,
        kind: AccessKind,
        value: u64,
        window: &mut dyn CallbackWindow,
    ) -> Result<Fault, Failure> {
        let space = self.guest().space_of(vcpu);
        let Some(g) = self.guest().walk(space, va) else {
            return Ok(Fault::Done(AccessOutcome::GuestFault { protection: false }, 0));
        };
        if !rights_allow(g.write, g.exec, kind) {
            return Ok(Fault::Done(AccessOutcome::GuestFault { protection: true }, 0));
        }
        let gp = g.gp.with_offset(va.0);
        let Some(d) = self.prod().page(gp.0) else {
            return Ok(Fault::Done(
                AccessOutcome::Unassigned { gp },
                unassigned_value(size, kind),
            ));
        };
        if self.mmu().mode() == Mode::Nem && self.machine_mut().mmu_mut().walk_nested(vcpu, vpi, g, kind).is_some() {
            self.log_mut().stats.shadow_syncs += 1;
            return Ok(Fault::Retry);
        }
        if traps(&d, kind) {
            let (outcome, read) = self.dispatch(vcpu, gp, (size, kind, value), window)?;
            return Ok(Fault::Done(outcome, read));
        }
        if d.page_type() == PageType::Mmio {
            return Ok(Fault::Done(
                AccessOutcome::Unassigned { gp },
                unassigned_value(size, kind),
            ));
        }
        match self.mmu().mode() {
            Mode::Shadow => self.sync_shadow(vcpu, vpi, g, &d),
            Mode::Nem => Err(self.failure(
                Invariant::NemSync,
                format!(
                    "NEM exit at gp {gp:?} for a {kind:?} the descriptor allows ({d:?}; nested {:?}): a missed NEM notification",
                    self.mmu().nested().get(g.gp)
                ),
            )),
        }
    }

    fn sync_shadow(&mut self, vcpu: usize, vpi: u32, g: GuestPte, d: &PageDescriptor) -> Result<Fault, Failure> {
        self.machine_mut().mmu_mut().sync_shadow(vcpu, vpi, g, d);
        self.log_mut().stats.shadow_syncs += 1;
        Ok(Fault::Retry)
    }

    /// The memory access itself, with the translation the instruction got.
    fn direct(&mut self, t: Translation, va: Gva, size: u8, kind: AccessKind, value: u64) -> (AccessOutcome, u64) {
        let (gp, host) = (t.gp.with_offset(va.0), t.host.with_offset(va.0));
        let read = match kind {
            AccessKind::Write => {
                self.write_memory(host, size, value, gp);
                0
            }
            _ => self.guest().read(host, size),
        };
        (AccessOutcome::Direct { gp, host }, read)
    }

    fn write_memory(&mut self, host: Hpa, size: u8, value: u64, gp: Gpa) {
        let (sides, devices, _) = self.parts_mut();
        sides.machine_mut().guest_mut().write(host, size, value);
        devices.note_write(gp.0, host);
    }

    /// Dispatches a trapped access: split at handler boundaries, call each covering
    /// handler's device, do the rest by default.
    fn dispatch(
        &mut self,
        vcpu: usize,
        gp: Gpa,
        (size, kind, value): (u8, AccessKind, u64),
        window: &mut dyn CallbackWindow,
    ) -> Result<(AccessOutcome, u64), Failure> {
        self.log_mut().touched.page(gp.0);
        let pieces = {
            let prod = self.prod();
            let covering = |a: u64| prod.lookup_range(a).map(|(k, l, _, _)| (k, l));
            let above = |a: u64| prod.lookup_matching_or_above(a).filter(|h| h.key > a).map(|h| h.key);
            split(gp.0, gp.0 + size as u64 - 1, &covering, &above)
        };
        let mut out = Vec::with_capacity(pieces.len());
        let mut read = 0u64;
        for (first, last, handler) in pieces {
            let len = (last - first + 1) as u8;
            let shift = (first - gp.0) * 8;
            let piece_value = (value >> shift) & mask(len as u64 * 8);
            let served = match handler {
                Some(key) => self.callback(vcpu, key, (Gpa(first), len, kind, piece_value), window)?,
                None => None,
            };
            let (target, v) = match served {
                Some(v) => (Target::Device, v),
                None => self.default_piece(Gpa(first), len, kind, piece_value),
            };
            if kind != AccessKind::Write {
                read |= (v & mask(len as u64 * 8)) << shift;
            }
            out.push(Piece {
                first: Gpa(first),
                last: Gpa(last),
                handler,
                target,
            });
        }
        Ok((AccessOutcome::Trapped { gp, pieces: out }, read))
    }

    /// The device behind the handler starting at `key` handles one piece: `Some(value)` when
    /// it served the access itself, `None` for "do the default". In a concurrent world the
    /// handler may have gone during an earlier piece's callback (run without the lock): the
    /// piece is then done by default.
    fn callback(
        &mut self,
        vcpu: usize,
        key: u64,
        (first, len, kind, value): (Gpa, u8, AccessKind, u64),
        window: &mut dyn CallbackWindow,
    ) -> Result<Option<u64>, Failure> {
        let concurrent = self.machine().hw().is_some();
        let info = match self.prod().lookup(key) {
            Some(info) if info.key == key => info,
            _ if concurrent => return Ok(None),
            _ => {
                let detail = format!("handler {key:#x} vanished during dispatch");
                return Err(self.failure(Invariant::Differential, detail));
            }
        };
        self.log_mut().stats.handler_calls += 1;
        let spec = self.config().types.get(info.ty.slot()).cloned();
        let (behaviour, keep_lock) = spec.map_or((Behaviour::Record, true), |t| (t.behaviour, t.keep_lock));
        let pinned = match behaviour {
            Behaviour::WriteLog => self.parts_mut().0.pin(key),
            _ => None,
        };
        if !keep_lock {
            // The callback runs without the lock while other threads go on; it calls back
            // into the manager (taking the lock) at the end, and the dispatch goes on from
            // there with the lock held.
            window.open(self, vcpu)?;
            window.close(self, vcpu)?;
        }
        let mmio2_pages = self.config().layout.mmio2_regions.first().map(|r| r.pages);
        let response = self
            .parts_mut()
            .1
            .callback(behaviour, &info, (first.0, len), kind, value, mmio2_pages);
        let served = match response {
            Response::Served(v) => Some(v),
            Response::Default(call) => {
                if let Some(call) = call {
                    self.call(&call)?;
                    window.after_call(self)?;
                }
                None
            }
            Response::TempOffOwn { page } => {
                self.callback_call(pinned, page)?;
                window.after_call(self)?;
                None
            }
        };
        if let Some(h) = pinned {
            self.parts_mut().0.unpin(h);
        }
        Ok(served)
    }

    /// A callback calls back into the manager for the handler it was dispatched for, by id.
    /// If that handler has gone meanwhile, the call must fail cleanly and change nothing.
    fn callback_call(&mut self, pinned: Option<u32>, page: u64) -> Result<(), Failure> {
        let Some(h) = pinned else { return Ok(()) };
        let call = ApiCall::PageTempOffEx { h, page };
        let gone = self
            .model()
            .handler_info(self.sides().model_names().node(h))
            .map_or(true, |n| n.registered.is_none());
        let before = self.prod().state_digest();
        let outcome = match self.call(&call) {
            Ok(outcome) => outcome,
            // The sides disagree about a call back for a handler that has gone: the model
            // refused the stale id, so the production manager took it for another handler
            // (say a new one in the node's reused slot: ABA) or refused it differently.
            Err(f) if gone && f.invariant == Invariant::Differential => {
                let detail = format!(
                    "a callback called back for a handler that has gone and was not refused as the model refused it \
                     (state changed: {}): {}",
                    self.prod().state_digest() != before,
                    f.detail
                );
                return Err(self.failure(Invariant::Callback, detail));
            }
            Err(f) => return Err(f),
        };
        if gone && (outcome.error().is_none() || self.prod().state_digest() != before) {
            let detail = format!(
                "a callback called back with {call:?} for a handler that has gone: {outcome:?} (state changed: {})",
                self.prod().state_digest() != before
            );
            return Err(self.failure(Invariant::Callback, detail));
        }
        Ok(())
    }

    /// The default access of one piece, through the physical page-map TLB.
    fn default_piece(&mut self, first: Gpa, len: u8, kind: AccessKind, value: u64) -> (Target, u64) {
        let page = first.page_base();
        let descriptor = self.prod().page(page.0);
        let target = match self.machine_mut().mmu_mut().default_target(page, descriptor) {
            PhysTarget::Backing(h) => Target::Host(h.with_offset(first.0)),
            PhysTarget::Mmio => Target::MmioDefault,
        };
        let v = match (target, kind) {
            (Target::Host(h), AccessKind::Write) => {
                self.write_memory(h, len, value, first);
                0
            }
            (Target::Host(h), _) => self.guest().read(h, len),
            _ => 0,
        };
        (target, v)
    }

    /// Compares the production outcome with the model's prediction.
    fn compare(&self, predicted: &Prediction, actual: &AccessOutcome) -> Result<(), Failure> {
        let fail = |detail: String| self.failure(Invariant::Differential, detail);
        match (predicted, actual) {
            (Prediction::Outcome(p), a) if p == a => Ok(()),
            (Prediction::Trapped { gp, pieces }, AccessOutcome::Trapped { gp: agp, pieces: done })
                if gp == agp && pieces.len() == done.len() =>
            {
                for (p, a) in pieces.iter().zip(done) {
                    if (p.0, p.1, p.2) != (a.first.0, a.last.0, a.handler) {
                        return Err(fail(format!(
                            "access pieces: model expected {pieces:x?}, production did {done:x?}"
                        )));
                    }
                    self.compare_default(a).map_err(fail)?;
                }
                Ok(())
            }
            (p, a) => Err(fail(format!("access: model expected {p:x?}, production did {a:x?}"))),
        }
    }

    /// A piece done by default must go where the model's page (after the callbacks ran) says.
    fn compare_default(&self, a: &Piece) -> Result<(), String> {
        if a.target == Target::Device {
            return Ok(());
        }
        let expected = match self.model().page(a.first.0).map(|d| phys_target(&d)) {
            Some(PhysTarget::Backing(h)) => Target::Host(h.with_offset(a.first.0)),
            Some(PhysTarget::Mmio) | None => Target::MmioDefault,
        };
        if expected != a.target {
            return Err(format!(
                "access piece {:?}..={:?}: default went to {:?}, the model's page says {:?}",
                a.first, a.last, a.target, expected
            ));
        }
        Ok(())
    }
}

/// Where a callback of a type without keep-lock runs: with the PGM lock dropped, while
/// other threads go on (concurrent worlds); nothing happens in a sequential world.
pub trait CallbackWindow {
    /// Releases the lock of `vcpu`'s dispatch and lets other threads run.
    fn open(&mut self, world: &mut World, vcpu: usize) -> Result<(), Failure>;
    /// Takes the lock back to finish the dispatch.
    fn close(&mut self, world: &mut World, vcpu: usize) -> Result<(), Failure>;
    /// A callback's call back into the manager changed the state: accesses in flight may
    /// see the new state.
    fn after_call(&mut self, world: &mut World) -> Result<(), Failure>;
}

/// The sequential world's window: callbacks are atomic.
impl CallbackWindow for () {
    fn open(&mut self, _: &mut World, _: usize) -> Result<(), Failure> {
        Ok(())
    }
    fn close(&mut self, _: &mut World, _: usize) -> Result<(), Failure> {
        Ok(())
    }
    fn after_call(&mut self, _: &mut World) -> Result<(), Failure> {
        Ok(())
    }
}

/// What an unassigned access reads: all-ones for reads, nothing for writes.
fn unassigned_value(size: u8, kind: AccessKind) -> u64 {
    match kind {
        AccessKind::Write => 0,
        _ => mask(size as u64 * 8),
    }
}
