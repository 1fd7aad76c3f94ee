//! Invariant 5: translation safety. No TLB entry and no shadow PTE grants more than the
//! guest PTE ∧ the page's handler state allows, every TLB entry agrees with its shadow PTE
//! (shadow mode) or nested entry (NEM mode), every translation maps the page's current
//! backing (so every alias maps its backing), and the physical page-map TLB caches only
//! current targets.

use pgmsim::{HandlerState, PageDescriptor, PageType};

use super::{Failure, Invariant};
use crate::mmu::guest_pt::{va_of, walk};
use crate::mmu::shadow::ShadowPte;
use crate::mmu::tlb::TlbEntry;
use crate::mmu::{phys_target, Mode};
use crate::world::World;

/// What the page's handler state lets hardware do without trapping: (map at all, write).
fn handler_allows(d: &PageDescriptor) -> (bool, bool) {
    if d.page_type() == PageType::Mmio {
        return (false, false);
    }
    match d.handler_state() {
        HandlerState::All => (false, false),
        HandlerState::Write => (true, false),
        HandlerState::None | HandlerState::Disabled => (true, true),
    }
}

fn violation(world: &World, detail: String) -> Failure {
    Failure::new(world.step, Invariant::TranslationSafety, detail)
}

/// Checks one cached translation (`what` names it) of `vcpu` for virtual page `vpi`.
#[allow(clippy::too_many_arguments)]
fn check_translation(
    world: &World,
    what: &str,
    vcpu: usize,
    vpi: u32,
    gp: u64,
    host: u64,
    write: bool,
    exec: bool,
) -> Result<(), Failure> {
    let space = world.vcpu_space[vcpu] as usize;
    let g = walk(&world.mem, &world.pool, world.spaces[space], va_of(vpi));
    let Some(g) = g else {
        return Err(violation(
            world,
            format!("vCPU {vcpu} {what} for unmapped page {vpi} (gp {gp:#x})"),
        ));
    };
    if g.gp != gp {
        return Err(violation(
            world,
            format!(
                "vCPU {vcpu} {what} for page {vpi} maps gp {gp:#x}, the guest maps {:#x}",
                g.gp
            ),
        ));
    }
    if (write && !g.write) || (exec && !g.exec) {
        return Err(violation(
            world,
            format!(
                "vCPU {vcpu} {what} for page {vpi} grants write={write} exec={exec}, guest PTE allows write={} exec={}",
                g.write, g.exec
            ),
        ));
    }
    let Some(d) = world.prod.page(gp) else {
        return Err(violation(
            world,
            format!("vCPU {vcpu} {what} maps gp {gp:#x} outside RAM"),
        ));
    };
    if host != d.host_phys() {
        return Err(violation(
            world,
            format!(
                "vCPU {vcpu} {what} for gp {gp:#x} maps host {host:#x}, the page's backing is {:#x} ({d:?})",
                d.host_phys()
            ),
        ));
    }
    if world.config.mode == Mode::Shadow {
        let (map, w) = handler_allows(d);
        if !map || (write && !w) {
            return Err(violation(
                world,
                format!("vCPU {vcpu} {what} for gp {gp:#x} grants write={write} but the page is {d:?}"),
            ));
        }
    }
    Ok(())
}

fn check_tlb_entry(world: &World, vcpu: usize, e: &TlbEntry) -> Result<(), Failure> {
    check_translation(world, "TLB entry", vcpu, e.vpi, e.gp, e.host, e.write, e.exec)?;
    let mmu = world.prod.platform();
    match world.config.mode {
        Mode::Shadow => {
            let s = mmu.vcpus[vcpu].shadow.get(e.vpi);
            let agrees =
                s.is_some_and(|s| s.gp == e.gp && s.host == e.host && (!e.write || s.write) && (!e.exec || s.exec));
            if !agrees {
                return Err(violation(
                    world,
                    format!("vCPU {vcpu} TLB entry {e:?} disagrees with its shadow PTE {s:?} (a missed TLB flush)"),
                ));
            }
        }
        Mode::Nem => {
            let n = mmu.nested.get(e.gp);
            let ok = n.is_some_and(|n| {
                n.host == e.host
                    && n.prot.can_read()
                    && (!e.write || n.prot.can_write())
                    && (!e.exec || n.prot.can_execute())
            });
            if !ok {
                return Err(violation(
                    world,
                    format!("vCPU {vcpu} combined TLB entry {e:?} exceeds nested entry {n:?}"),
                ));
            }
        }
    }
    Ok(())
}

fn check_shadow(world: &World, vcpu: usize, vpi: u32, s: &ShadowPte) -> Result<(), Failure> {
    check_translation(world, "shadow PTE", vcpu, vpi, s.gp, s.host, s.write, s.exec)
}

/// Translation safety over the touched pages (or everything when `full`).
pub fn check(world: &World, full: bool) -> Result<(), Failure> {
    let mmu = world.prod.platform();
    let t = &world.touched;
    let interesting = |vcpu: usize, vpi: u32, gp: u64| {
        full || t.pages.binary_search(&gp).is_ok() || t.vpages.contains(&(world.vcpu_space[vcpu], vpi))
    };
    for (v, cpu) in mmu.vcpus.iter().enumerate() {
        for e in cpu.tlb.iter() {
            if interesting(v, e.vpi, e.gp) {
                check_tlb_entry(world, v, e)?;
            }
        }
        if world.config.mode == Mode::Shadow {
            if full {
                for (vpi, s) in cpu.shadow.iter() {
                    check_shadow(world, v, vpi, s)?;
                }
            } else {
                for &(space, vpi) in &t.vpages {
                    if world.vcpu_space[v] == space {
                        if let Some(s) = cpu.shadow.get(vpi) {
                            check_shadow(world, v, vpi, s)?;
                        }
                    }
                }
            }
        }
    }
    if world.config.mode == Mode::Shadow && !full {
        for &gp in &t.pages {
            let (refs, overflowed) = mmu.revmap.refs(gp);
            if overflowed {
                for (v, cpu) in mmu.vcpus.iter().enumerate() {
                    for (vpi, s) in cpu.shadow.iter().filter(|(_, s)| s.gp == gp) {
                        check_shadow(world, v, vpi, s)?;
                    }
                }
            }
            for &(v, vpi) in refs {
                if let Some(s) = mmu.vcpus[v as usize].shadow.get(vpi) {
                    check_shadow(world, v as usize, vpi, s)?;
                }
            }
        }
    }
    for (gp, target) in mmu.page_map.iter() {
        if !full && t.pages.binary_search(gp).is_err() {
            continue;
        }
        let current = world.prod.page(*gp).map(|d| phys_target(&d));
        if current != Some(*target) {
            return Err(violation(
                world,
                format!("page-map TLB caches {target:?} for gp {gp:#x}, the page's target is {current:?}"),
            ));
        }
    }
    Ok(())
}
