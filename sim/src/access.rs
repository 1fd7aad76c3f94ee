//! Guest accesses: the production path through TLB → shadow PTE (or nested entry) → fault →
//! guest walk → handler dispatch or sync-and-retry, the model's prediction from the
//! cache-free guest walk and its own page states, and their comparison (invariant 4).

use pgmsim::{HandlerInfo, HandlerState, Mmio2Handle, PageDescriptor, PageType, PhysHandlerApi, PAGE_OFFSET_MASK};

use crate::check::{Failure, Invariant};
use crate::config::Behaviour;
use crate::mmu::guest_pt::{vpi_of, walk};
use crate::mmu::shadow::ShadowPte;
use crate::mmu::tlb::TlbEntry;
use crate::mmu::{phys_target, Mode, PhysTarget};
use crate::op::{AccessKind, AccessOutcome, Piece, Target};
use crate::world::World;

/// Whether a page's state makes this access trap to handlers. Reads and fetches trap on
/// `All`; writes on `Write` and `All`; `Disabled` never traps; an unaliased MMIO page traps
/// whenever a handler covers it.
pub fn traps(d: &PageDescriptor, kind: AccessKind) -> bool {
    match d.handler_state() {
        HandlerState::All => true,
        HandlerState::Write => kind == AccessKind::Write,
        HandlerState::None | HandlerState::Disabled => false,
    }
}

fn rights_allow(write: bool, exec: bool, kind: AccessKind) -> bool {
    match kind {
        AccessKind::Read => true,
        AccessKind::Write => write,
        AccessKind::Exec => exec,
    }
}

/// The model's expectation, computed before the access runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Prediction {
    Outcome(AccessOutcome),
    /// Trapped: the pieces (targets are resolved after the callbacks ran).
    Trapped {
        gp: u64,
        pieces: Vec<(u64, u64, Option<u64>)>,
    },
}

/// Splits `[first, last]` at handler boundaries: covered pieces name their handler.
fn split(
    first: u64,
    last: u64,
    handlers: &dyn Fn(u64) -> Option<(u64, u64)>,
    above: &dyn Fn(u64) -> Option<u64>,
) -> Vec<(u64, u64, Option<u64>)> {
    let mut out = Vec::new();
    let mut at = first;
    loop {
        match handlers(at) {
            Some((key, hl)) => {
                let end = hl.min(last);
                out.push((at, end, Some(key)));
                if end == last {
                    break;
                }
                at = end + 1;
            }
            None => {
                let end = match above(at) {
                    Some(k) if k <= last => k - 1,
                    _ => last,
                };
                out.push((at, end, None));
                if end == last {
                    break;
                }
                at = end + 1;
            }
        }
    }
    out
}

impl World {
    fn predict(&self, vcpu: usize, va: u64, size: u8, kind: AccessKind) -> Prediction {
        if vpi_of(va, self.config.va_pages).is_none() {
            return Prediction::Outcome(AccessOutcome::BadAddress);
        }
        let space = self.vcpu_space[vcpu] as usize;
        let Some(g) = walk(&self.mem, &self.pool, self.spaces[space], va) else {
            return Prediction::Outcome(AccessOutcome::GuestFault { protection: false });
        };
        let allowed = match kind {
            AccessKind::Read => true,
            AccessKind::Write => g.write,
            AccessKind::Exec => g.exec,
        };
        if !allowed {
            return Prediction::Outcome(AccessOutcome::GuestFault { protection: true });
        }
        let gp = g.gp | (va & PAGE_OFFSET_MASK);
        let Some(d) = self.model.page(gp) else {
            return Prediction::Outcome(AccessOutcome::Unassigned { gp });
        };
        if traps(&d, kind) {
            let last = gp + size as u64 - 1;
            let model = &self.model;
            let handlers = model.handlers();
            let covering = |a: u64| model.lookup(a).map(|h| (h.key, h.key_last));
            let above = |a: u64| handlers.iter().find(|h| h.key > a).map(|h| h.key);
            return Prediction::Trapped {
                gp,
                pieces: split(gp, last, &covering, &above),
            };
        }
        if d.page_type() == PageType::Mmio {
            return Prediction::Outcome(AccessOutcome::Unassigned { gp });
        }
        Prediction::Outcome(AccessOutcome::Direct {
            gp,
            host: d.host_phys().0 | (va & PAGE_OFFSET_MASK),
        })
    }

    /// Runs one guest access on the production side and checks it against the model's
    /// prediction. Returns the outcome and the value read.
    pub fn access(
        &mut self,
        vcpu: u8,
        va: u64,
        size: u8,
        kind: AccessKind,
        value: u64,
    ) -> Result<(AccessOutcome, u64), Failure> {
        let vcpu = vcpu as usize % self.vcpus();
        let size = match size {
            1 | 2 | 4 | 8 => size,
            _ => 1,
        };
        // Keep the access inside its page.
        let va = if (va & PAGE_OFFSET_MASK) + size as u64 > 0x1000 {
            va & !(size as u64 - 1)
        } else {
            va
        };
        self.stats.accesses += 1;
        let predicted = self.predict(vcpu, va, size, kind);
        let (outcome, read) = self.run_access(vcpu, va, size, kind, value)?;
        self.compare(&predicted, &outcome)?;
        if matches!(outcome, AccessOutcome::GuestFault { .. }) {
            self.stats.guest_faults += 1;
        }
        Ok((outcome, read))
    }

    fn compare(&self, predicted: &Prediction, actual: &AccessOutcome) -> Result<(), Failure> {
        let fail = |detail: String| Failure::new(self.step, Invariant::Differential, detail);
        match (predicted, actual) {
            (Prediction::Outcome(p), a) if p == a => Ok(()),
            (
                Prediction::Trapped { gp, pieces },
                AccessOutcome::Trapped {
                    gp: agp,
                    pieces: actual_pieces,
                },
            ) if gp == agp && pieces.len() == actual_pieces.len() => {
                for (p, a) in pieces.iter().zip(actual_pieces) {
                    if (p.0, p.1, p.2) != (a.first, a.last, a.handler) {
                        return Err(fail(format!(
                            "access pieces: model expected {pieces:?}, production did {actual_pieces:?}"
                        )));
                    }
                    if a.target == Target::Device {
                        continue;
                    }
                    // Defaults resolve against the state after the callbacks ran.
                    let expected = match self.model.page(a.first).map(|d| phys_target(&d)) {
                        Some(PhysTarget::Backing(h)) => Target::Host(h | (a.first & PAGE_OFFSET_MASK)),
                        Some(PhysTarget::Mmio) | None => Target::MmioDefault,
                    };
                    if expected != a.target {
                        return Err(fail(format!(
                            "access piece {:#x}..={:#x}: default went to {:?}, the model's page says {:?}",
                            a.first, a.last, a.target, expected
                        )));
                    }
                }
                Ok(())
            }
            (p, a) => Err(fail(format!("access: model expected {p:?}, production did {a:?}"))),
        }
    }

    fn run_access(
        &mut self,
        vcpu: usize,
        va: u64,
        size: u8,
        kind: AccessKind,
        value: u64,
    ) -> Result<(AccessOutcome, u64), Failure> {
        let Some(vpi) = vpi_of(va, self.config.va_pages) else {
            return Ok((AccessOutcome::BadAddress, 0));
        };
        let off = va & PAGE_OFFSET_MASK;
        for _ in 0..4 {
            let mode = self.config.mode;
            let mmu = self.prod.platform_mut();
            let cpu = &mmu.vcpus[vcpu];
            if let Some(e) = cpu.tlb.lookup(vpi) {
                if rights_allow(e.write, e.exec, kind) {
                    let (gp, host) = (e.gp | off, e.host | off);
                    self.stats.tlb_hits += 1;
                    return Ok(self.direct(gp, host, size, kind, value));
                }
            }
            self.stats.tlb_misses += 1;
            if mode == Mode::Shadow {
                if let Some(s) = cpu.shadow.get(vpi).copied() {
                    if rights_allow(s.write, s.exec, kind) {
                        mmu.vcpus[vcpu].tlb.insert(TlbEntry {
                            vpi,
                            gp: s.gp,
                            host: s.host,
                            write: s.write,
                            exec: s.exec,
                        });
                        continue;
                    }
                }
            }
            // Fault: walk the guest's tables.
            let space = self.vcpu_space[vcpu] as usize;
            let Some(g) = walk(&self.mem, &self.pool, self.spaces[space], va) else {
                return Ok((AccessOutcome::GuestFault { protection: false }, 0));
            };
            if !rights_allow(g.write, g.exec, kind) {
                return Ok((AccessOutcome::GuestFault { protection: true }, 0));
            }
            let gp = g.gp | off;
            let Some(d) = self.prod.page(gp) else {
                return Ok((AccessOutcome::Unassigned { gp }, self.unassigned_value(size, kind)));
            };
            match mode {
                Mode::Shadow => {
                    if traps(&d, kind) {
                        return self.dispatch(gp, size, kind, value);
                    }
                    if d.page_type() == PageType::Mmio {
                        return Ok((AccessOutcome::Unassigned { gp }, self.unassigned_value(size, kind)));
                    }
                    let write = g.write && d.handler_state() != HandlerState::Write;
                    let pte = ShadowPte {
                        gp: g.gp,
                        host: d.host_phys().0,
                        write,
                        exec: g.exec,
                        guest_write: g.write,
                    };
                    self.prod.platform_mut().install_shadow(vcpu, vpi, pte);
                    self.stats.shadow_syncs += 1;
                }
                Mode::Nem => {
                    let nested = self.prod.platform().nested.get(g.gp).copied();
                    if let Some(n) = nested {
                        let allowed = match kind {
                            AccessKind::Read => n.prot.can_read(),
                            AccessKind::Write => n.prot.can_write(),
                            AccessKind::Exec => n.prot.can_execute(),
                        };
                        if allowed {
                            let e = TlbEntry {
                                vpi,
                                gp: g.gp,
                                host: n.host,
                                write: g.write && n.prot.can_write(),
                                exec: g.exec && n.prot.can_execute(),
                            };
                            self.prod.platform_mut().vcpus[vcpu].tlb.insert(e);
                            self.stats.shadow_syncs += 1;
                            continue;
                        }
                    }
                    if traps(&d, kind) {
                        return self.dispatch(gp, size, kind, value);
                    }
                    if d.page_type() == PageType::Mmio {
                        return Ok((AccessOutcome::Unassigned { gp }, self.unassigned_value(size, kind)));
                    }
                    return Err(Failure::new(
                        self.step,
                        Invariant::NemSync,
                        format!("NEM exit at gp {gp:#x} for a {kind:?} the descriptor allows ({d:?}; nested {nested:?}): a missed NEM notification"),
                    ));
                }
            }
        }
        Err(Failure::new(
            self.step,
            Invariant::TranslationSafety,
            format!("access to {va:#x} did not converge after resyncs"),
        ))
    }

    fn unassigned_value(&self, size: u8, kind: AccessKind) -> u64 {
        match kind {
            AccessKind::Write => 0,
            _ => mask(size as u64 * 8),
        }
    }

    fn direct(&mut self, gp: u64, host: u64, size: u8, kind: AccessKind, value: u64) -> (AccessOutcome, u64) {
        let read = match kind {
            AccessKind::Write => {
                self.mem.write(host, size, value);
                self.devices.note_write(gp);
                0
            }
            _ => self.mem.read(host, size),
        };
        (AccessOutcome::Direct { gp, host }, read)
    }

    /// Dispatches a trapped access: split at handler boundaries, call each covering
    /// handler's device, do the rest by default.
    fn dispatch(&mut self, gp: u64, size: u8, kind: AccessKind, value: u64) -> Result<(AccessOutcome, u64), Failure> {
        self.touched.pages.push(gp & !PAGE_OFFSET_MASK);
        let last = gp + size as u64 - 1;
        let pieces = {
            let prod = &self.prod;
            let covering = |a: u64| prod.lookup_range(a).map(|(k, l, _, _)| (k, l));
            let above = |a: u64| prod.lookup_matching_or_above(a).filter(|h| h.key > a).map(|h| h.key);
            split(gp, last, &covering, &above)
        };
        let mut out = Vec::with_capacity(pieces.len());
        let mut read = 0u64;
        for (first, plast, handler) in pieces {
            let len = (plast - first + 1) as u8;
            let shift = (first - gp) * 8;
            let piece_value = (value >> shift) & mask(len as u64 * 8);
            let mut device_value = None;
            if let Some(key) = handler {
                self.stats.handler_calls += 1;
                let info = self.prod.lookup(key).ok_or_else(|| {
                    Failure::new(
                        self.step,
                        Invariant::Differential,
                        format!("handler {key:#x} vanished during dispatch"),
                    )
                })?;
                device_value = self.device_call(&info, first, len, kind, piece_value)?;
            }
            let target = match device_value {
                Some(_) => Target::Device,
                None => self.prod_default_target(first),
            };
            let v = match (target, kind) {
                (Target::Device, _) => device_value.unwrap_or(0),
                (Target::Host(h), AccessKind::Write) => {
                    self.mem.write(h, len, piece_value);
                    self.devices.note_write(first);
                    0
                }
                (Target::Host(h), _) => self.mem.read(h, len),
                (Target::MmioDefault, _) => 0,
            };
            if kind != AccessKind::Write {
                read |= (v & mask(len as u64 * 8)) << shift;
            }
            out.push(Piece {
                first,
                last: plast,
                handler,
                target,
            });
        }
        Ok((AccessOutcome::Trapped { gp, pieces: out }, read))
    }

    /// Resolves a default access through the physical page-map TLB, filling it on a miss.
    fn prod_default_target(&mut self, gp: u64) -> Target {
        let page = gp & !PAGE_OFFSET_MASK;
        let (memory, mmu) = self.prod.memory_and_platform();
        let target = match mmu.page_map.lookup(page) {
            Some(t) => t,
            None => {
                let t = memory.page(page).map_or(PhysTarget::Mmio, phys_target);
                mmu.page_map.fill(page, t);
                t
            }
        };
        match target {
            PhysTarget::Backing(h) => Target::Host(h | (gp & PAGE_OFFSET_MASK)),
            PhysTarget::Mmio => Target::MmioDefault,
        }
    }

    /// Runs the device behind a handler. `Some(value)` when the device served the access
    /// itself, `None` for "do the default". Manager calls the device makes go to both sides.
    fn device_call(
        &mut self,
        h: &HandlerInfo,
        addr: u64,
        len: u8,
        kind: AccessKind,
        value: u64,
    ) -> Result<Option<u64>, Failure> {
        let behaviour = self
            .config
            .types
            .get(h.ty.slot())
            .map_or(Behaviour::Record, |t| t.behaviour);
        let page = addr & !PAGE_OFFSET_MASK;
        match behaviour {
            Behaviour::Record => Ok(None),
            Behaviour::Register => {
                let offset = addr - h.key;
                if kind == AccessKind::Write {
                    self.devices.registers.insert((h.key, offset), value);
                    Ok(Some(0))
                } else {
                    Ok(Some(
                        self.devices.register_read(h.key, h.user, offset) & mask(len as u64 * 8),
                    ))
                }
            }
            Behaviour::DirtyTrack => {
                if kind == AccessKind::Write {
                    let key = h.key;
                    self.touched.manager = true;
                    self.touched.pages.push(page);
                    let _ = self.both("dirty-tracking callback page_temp_off", |m| m.page_temp_off(key, page))?;
                }
                Ok(None)
            }
            Behaviour::AliasOnAccess => {
                let region = self.config.layout.mmio2_regions.first().map(|r| r.pages);
                if let Some(pages) = region {
                    let offset = (((page - h.key) >> 12) % pages as u64) << 12;
                    let key = h.key;
                    self.touched.manager = true;
                    self.touched.pages.push(page);
                    let _ = self.both("alias-on-access callback page_alias_mmio2", |m| {
                        m.page_alias_mmio2(key, page, Mmio2Handle(1), offset)
                    })?;
                }
                Ok(None)
            }
        }
    }
}

/// Low `bits` bits set.
pub fn mask(bits: u64) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}
