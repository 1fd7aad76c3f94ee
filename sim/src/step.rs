//! The one function that applies a step to both sides: manager operations through
//! `World::both`, guest-kernel edits followed by INVLPG, guest accesses through the access
//! engine, harvests with the dirty-tracking rule; then the invariant checks.

use pgmsim::{HandlerId, HandlerTypeHandle, Mmio2Handle, PhysHandlerApi, PlatformEvent, Status};

use crate::check::{self, CheckMode, Failure, Invariant};
use crate::mmu::guest_pt::{self, va_of};
use crate::op::{Op, StepResult};
use crate::world::World;

/// The variant name of an error (statistics keys), without formatting.
fn error_name(e: &pgmsim::Error) -> &'static str {
    use pgmsim::Error::*;
    match e {
        InvalidHandle => "InvalidHandle",
        InvalidParameter => "InvalidParameter",
        OutOfResources => "OutOfResources",
        WrongOrder => "WrongOrder",
        NoRamRange => "NoRamRange",
        Conflict => "Conflict",
        NotFound => "NotFound",
        AccessDenied => "AccessDenied",
        NotMmio2 => "NotMmio2",
        OutOfRange => "OutOfRange",
        WrongType => "WrongType",
        NotSupportedInNemMode => "NotSupportedInNemMode",
        Internal => "Internal",
    }
}

/// A garbage handle for out-of-range references: never issued by either side.
const fn garbage_id(h: u32) -> HandlerId {
    HandlerId(0xdead_0000_0000_0000 | h as u64)
}

impl World {
    fn type_handle(&self, ty: u8) -> HandlerTypeHandle {
        self.types
            .get(ty as usize)
            .copied()
            .unwrap_or(HandlerTypeHandle(0x5eed_0000_0000_0000 | ty as u64))
    }

    fn node(&self, h: u32) -> (HandlerId, HandlerId) {
        self.nodes
            .get(h as usize)
            .copied()
            .unwrap_or((garbage_id(h), garbage_id(h)))
    }

    /// Marks the range of the handler containing `addr` (per the model) as touched.
    fn touch_handler_at(&mut self, addr: u64) {
        if let Some(h) = self.model.lookup(addr) {
            self.touched.span(h.key, h.key_last);
        } else {
            self.touched.span(addr, addr);
        }
    }

    fn touch_node(&mut self, model_id: HandlerId) {
        if let Ok(h) = self.model.handler_info(model_id) {
            if h.key != u64::MAX {
                self.touched.span(h.key, h.key_last);
            }
        }
    }

    /// Compares the observable platform events of the step (shadow PTE updates, page-map
    /// invalidations, emulator TLB flushes) and clears both logs.
    fn compare_events(&mut self) -> Result<(), Failure> {
        let keep = |e: &PlatformEvent| {
            matches!(
                e,
                PlatformEvent::UpdateShadowPtes { .. }
                    | PlatformEvent::InvalidatePageMapEntry { .. }
                    | PlatformEvent::FlushEmulatorPhysTlbs
            )
        };
        let a: Vec<PlatformEvent> = self.prod.platform_mut().log.drain(..).filter(keep).collect();
        let b: Vec<PlatformEvent> = self.model.take_events().into_iter().filter(keep).collect();
        if a != b {
            return Err(Failure::new(
                self.step,
                Invariant::Differential,
                format!("platform events: production {a:?}, model {b:?}"),
            ));
        }
        Ok(())
    }

    /// Applies one step and checks the invariants due after it.
    pub fn apply(&mut self, op: &Op, mode: CheckMode) -> Result<StepResult, Failure> {
        self.begin_step();
        *self.stats.ops.entry(op.name()).or_default() += 1;
        let result = self.apply_op(op)?;
        if self.touched.large_span && !matches!(result, StepResult::Manager(Err(_)) | StepResult::Harvest(Err(_))) {
            self.touched.all = true;
        }
        if let StepResult::Manager(Err(e)) | StepResult::Harvest(Err(e)) = &result {
            *self.stats.errors.entry(error_name(e)).or_default() += 1;
        }
        if self.touched.manager {
            self.compare_events()?;
        } else {
            self.drain_events();
        }
        check::after_step(self, mode)?;
        self.step += 1;
        Ok(result)
    }

    fn apply_op(&mut self, op: &Op) -> Result<StepResult, Failure> {
        use StepResult::Manager as M;
        match *op {
            Op::Register { first, last, ty, user } => {
                self.touched.manager = true;
                self.touched.span(first, last.max(first));
                let t = self.type_handle(ty);
                Ok(M(self.both_resync("register", Status::GcPhysAliased, |m| {
                    m.register(first, last, t, user, None)
                })?))
            }
            Op::Create { ty, user } => {
                self.touched.manager = true;
                let t = self.type_handle(ty);
                let a = self.prod.create(t, user, None);
                let b = self.model.create(t, user, None);
                self.created("create", a, b)
            }
            Op::Dup { h } => {
                self.touched.manager = true;
                let (pa, pb) = self.node(h);
                let a = self.prod.dup(pa);
                let b = self.model.dup(pb);
                self.created("dup", a, b)
            }
            Op::RegisterEx { h, first, last } => {
                self.touched.manager = true;
                self.touched.span(first, last.max(first));
                let (a, b) = self.node(h);
                let before = self.prod.platform().stats.resyncs;
                let ra = self.prod.register_ex(a, first, last);
                let resynced = self.prod.platform().stats.resyncs != before;
                let rb = self.model.register_ex(b, first, last);
                Ok(M(self.same_resync(
                    "register_ex",
                    ra,
                    rb,
                    resynced,
                    Status::GcPhysAliased,
                )?))
            }
            Op::DeregisterEx { h } => {
                self.touched.manager = true;
                let (a, b) = self.node(h);
                self.touch_node(b);
                let ra = self.prod.deregister_ex(a);
                let rb = self.model.deregister_ex(b);
                self.same("deregister_ex", ra, rb)
            }
            Op::Destroy { h } => {
                self.touched.manager = true;
                let (a, b) = self.node(h);
                let ra = self.prod.destroy(a);
                let rb = self.model.destroy(b);
                self.same("destroy", ra, rb)
            }
            Op::Deregister { addr } => {
                self.touched.manager = true;
                self.touch_handler_at(addr);
                Ok(M(self.both("deregister", |m| m.deregister(addr))?))
            }
            Op::ChangeUserArg { addr, user } => {
                self.touched.manager = true;
                Ok(M(self.both("change_user_arg", |m| m.change_user_arg(addr, user))?))
            }
            Op::Reset { addr } => {
                self.touched.manager = true;
                self.touch_handler_at(addr);
                Ok(M(self.both("reset", |m| m.reset(addr))?))
            }
            Op::ResetBitmap { addr, words, offset } => {
                self.touched.manager = true;
                self.touch_handler_at(addr);
                let words = words.min(1 << 16) as usize;
                let (mut ba, mut bb) = (vec![0u64; words], vec![0u64; words]);
                let before = self.prod.platform().stats.resyncs;
                let ra = self.prod.reset_mmio2_with_bitmap(addr, &mut ba, offset);
                let resynced = self.prod.platform().stats.resyncs != before;
                let rb = self.model.reset_mmio2_with_bitmap(addr, &mut bb, offset);
                if ba != bb {
                    return Err(self.differential(format!(
                        "reset_mmio2_with_bitmap bitmaps: production {ba:?}, model {bb:?}"
                    )));
                }
                Ok(M(self.same_resync(
                    "reset_mmio2_with_bitmap",
                    ra,
                    rb,
                    resynced,
                    Status::SyncCr3,
                )?))
            }
            Op::TempOff { addr, page } => {
                self.touched.manager = true;
                self.touched.span(page, page);
                self.touch_handler_at(addr);
                Ok(M(self.both("page_temp_off", |m| m.page_temp_off(addr, page))?))
            }
            Op::AliasMmio2 {
                addr,
                page,
                region,
                offset,
            } => {
                self.touched.manager = true;
                self.touched.span(page, page);
                Ok(M(self.both("page_alias_mmio2", |m| {
                    m.page_alias_mmio2(addr, page, Mmio2Handle(region), offset)
                })?))
            }
            Op::AliasHc { addr, page, host } => {
                self.touched.manager = true;
                self.touched.span(page, page);
                Ok(M(self.both("page_alias_hc", |m| m.page_alias_hc(addr, page, host))?))
            }
            Op::ResetAliased { page, accounting } => {
                self.touched.manager = true;
                self.touched.span(page, page);
                self.touch_handler_at(page);
                Ok(M(self.both("reset_aliased_page", |m| {
                    m.reset_aliased_page(page, accounting)
                })?))
            }
            Op::VmReset => {
                self.touched.manager = true;
                // VM reset only changes aliased pages, which lie in Mmio handlers.
                let mmio: Vec<(u64, u64)> = self
                    .model
                    .handlers()
                    .iter()
                    .filter(|h| h.kind == pgmsim::HandlerKind::Mmio)
                    .map(|h| (h.key, h.key_last))
                    .collect();
                for (first, last) in mmio {
                    self.touched.span(first, last);
                }
                Ok(M(self.both("vm_reset", |m| m.vm_reset())?))
            }
            Op::Query { addr } => {
                let registered = self.both("is_registered", |m| m.is_registered(addr))?;
                let is_all = self.both("is_all", |m| m.is_all(addr))?;
                let handler = self.both("lookup", |m| m.lookup(addr))?.map(|h| h.key);
                Ok(StepResult::Query {
                    registered,
                    is_all,
                    handler,
                })
            }
            Op::Map {
                space,
                vpi,
                gp,
                write,
                exec,
            } => self.kernel_edit(
                space,
                vpi,
                |w, cr3, va| guest_pt::map(&mut w.mem, &mut w.pool, cr3, va, gp, write, exec),
                Some(gp),
            ),
            Op::Unmap { space, vpi } => self.kernel_edit(
                space,
                vpi,
                |w, cr3, va| guest_pt::unmap(&mut w.mem, &mut w.pool, cr3, va),
                None,
            ),
            Op::Protect {
                space,
                vpi,
                write,
                exec,
            } => self.kernel_edit(
                space,
                vpi,
                |w, cr3, va| guest_pt::protect(&mut w.mem, &mut w.pool, cr3, va, write, exec),
                None,
            ),
            Op::SwitchCr3 { vcpu, space } => {
                let v = vcpu as usize % self.vcpus();
                let s = space as usize % self.spaces.len();
                self.vcpu_space[v] = s as u8;
                let cr3 = self.spaces[s];
                self.prod.platform_mut().load_cr3(v, s as u8, cr3);
                Ok(StepResult::Kernel(Ok(())))
            }
            Op::Access {
                vcpu,
                va,
                size,
                kind,
                value,
            } => {
                if let Some(vpi) = guest_pt::vpi_of(va, self.config.va_pages) {
                    let space = self.vcpu_space[vcpu as usize % self.vcpus()];
                    self.touched.vpages.push((space, vpi));
                }
                let (outcome, value) = self.access(vcpu, va, size, kind, value)?;
                Ok(StepResult::Access { outcome, value })
            }
            Op::Harvest { tracker } => self.harvest(tracker),
        }
    }

    fn differential(&self, detail: String) -> Failure {
        Failure::new(self.step, Invariant::Differential, detail)
    }

    fn same(&self, what: &str, a: pgmsim::OpResult, b: pgmsim::OpResult) -> Result<StepResult, Failure> {
        if a != b {
            return Err(self.differential(format!("{what}: production returned {a:?}, model returned {b:?}")));
        }
        Ok(StepResult::Manager(a))
    }

    fn created(
        &mut self,
        what: &str,
        a: Result<HandlerId, pgmsim::Error>,
        b: Result<HandlerId, pgmsim::Error>,
    ) -> Result<StepResult, Failure> {
        match (a, b) {
            (Ok(x), Ok(y)) => {
                self.nodes.push((x, y));
                Ok(StepResult::Manager(Ok(pgmsim::Status::Success)))
            }
            (Err(x), Err(y)) if x == y => Ok(StepResult::Manager(Err(x))),
            (a, b) => Err(self.differential(format!("{what}: production returned {a:?}, model returned {b:?}"))),
        }
    }

    /// A guest-kernel page-table edit in `space`, then INVLPG on every vCPU running it.
    fn kernel_edit(
        &mut self,
        space: u8,
        vpi: u32,
        edit: impl FnOnce(&mut World, u64, u64) -> Result<(), guest_pt::KernelError>,
        mapped_to: Option<u64>,
    ) -> Result<StepResult, Failure> {
        let s = space as usize % self.spaces.len();
        let vpi = vpi % self.config.va_pages.max(1);
        let cr3 = self.spaces[s];
        let r = edit(self, cr3, va_of(vpi));
        if r.is_ok() {
            match mapped_to {
                Some(gp) => {
                    self.mappings[s].insert(vpi, gp & !0xfff);
                }
                // protect keeps the mapping; unmap removes it (decided by the walk).
                None if self.mappings[s].contains_key(&vpi)
                    && guest_pt::walk(&self.mem, &self.pool, cr3, va_of(vpi)).is_none() =>
                {
                    self.mappings[s].remove(&vpi);
                }
                None => {}
            }
            for v in 0..self.vcpus() {
                if self.vcpu_space[v] as usize == s {
                    self.prod.platform_mut().invlpg(v, vpi);
                }
            }
        }
        self.touched.vpages.push((s as u8, vpi));
        Ok(StepResult::Kernel(r))
    }

    /// The dirty-tracking device harvests: both sides re-arm with a bitmap, the bitmaps must
    /// agree with each other and name exactly the pages written since the last harvest.
    fn harvest(&mut self, tracker: u8) -> Result<StepResult, Failure> {
        let Some(t) = self.devices.trackers.get(tracker as usize).cloned() else {
            return Ok(StepResult::Nothing);
        };
        self.touched.manager = true;
        self.touched.span(t.first, t.last);
        let bits = t.bitmap_offset as usize + t.pages() as usize;
        let words = bits.div_ceil(64);
        let (mut ba, mut bb) = (vec![0u64; words], vec![0u64; words]);
        let before = self.prod.platform().stats.resyncs;
        let ra = self.prod.reset_mmio2_with_bitmap(t.first, &mut ba, t.bitmap_offset);
        let resynced = self.prod.platform().stats.resyncs != before;
        let rb = self.model.reset_mmio2_with_bitmap(t.first, &mut bb, t.bitmap_offset);
        let ra = self.same_resync("harvest", ra, rb, resynced, Status::SyncCr3)?;
        if ba != bb {
            return Err(self.differential(format!(
                "harvest of {:#x}: production {ra:?} {ba:?}, model {rb:?} {bb:?}",
                t.first
            )));
        }
        if ra.is_ok() {
            let mut expected = vec![0u64; words];
            for &p in &t.written {
                let bit = t.bitmap_offset as usize + p as usize;
                expected[bit / 64] |= 1 << (bit % 64);
            }
            if expected != ba {
                return Err(Failure::new(
                    self.step,
                    Invariant::DirtyTracking,
                    format!(
                        "harvest of {:#x}: bitmap {ba:x?}, pages written since the last harvest {:?} (expected {expected:x?})",
                        t.first, t.written
                    ),
                ));
            }
            self.devices.trackers[tracker as usize].written.clear();
        }
        Ok(StepResult::Harvest(ra.map(|_| ba)))
    }
}
