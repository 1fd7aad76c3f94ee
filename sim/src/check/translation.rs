//! Invariant 5: translation safety. No TLB entry and no shadow PTE grants more than the
//! guest PTE ∧ the page's handler state allows, every TLB entry agrees with its shadow PTE
//! (shadow mode) or nested entry (NEM mode), every translation maps the page's current
//! backing (so every alias maps its backing), and the physical page-map TLB caches only
//! current targets.

use pgmsim::{HandlerState, PageDescriptor, PageType};

use super::{Failure, Invariant};
use crate::mmu::guest_pt::va_of;
use crate::mmu::page_map::phys_target;
use crate::mmu::shadow::ShadowPte;
use crate::mmu::tlb::TlbEntry;
use crate::mmu::{Mode, Translation};
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
    world.failure(Invariant::TranslationSafety, detail)
}

/// Checks one cached translation (`what` names it) of `vcpu` for virtual page `vpi`
/// against the guest's own tables and the page's descriptor.
fn check_translation(world: &World, what: &str, vcpu: usize, vpi: u32, t: &Translation) -> Result<(), Failure> {
    let (gp, host) = (t.gp, t.host);
    let Some(g) = world.guest().walk(world.guest().space_of(vcpu), va_of(vpi)) else {
        return Err(violation(
            world,
            format!("vCPU {vcpu} {what} for unmapped page {vpi} (gp {gp:?})"),
        ));
    };
    let space = world.guest().space_of(vcpu);
    if world.guest().mappings(space).get(&vpi) != Some(&g.gp) {
        let detail = format!(
            "vCPU {vcpu} {what} for page {vpi}: the guest tables give {:?}, the guest kernel mapped {:?}",
            g.gp,
            world.guest().mappings(space).get(&vpi)
        );
        return Err(violation(world, detail));
    }
    if g.gp != gp {
        let detail = format!(
            "vCPU {vcpu} {what} for page {vpi} maps gp {gp:?}, the guest maps {:?}",
            g.gp
        );
        return Err(violation(world, detail));
    }
    if (t.write && !g.write) || (t.exec && !g.exec) {
        let detail = format!(
            "vCPU {vcpu} {what} for page {vpi} grants write={} exec={}, guest PTE allows write={} exec={}",
            t.write, t.exec, g.write, g.exec
        );
        return Err(violation(world, detail));
    }
    let Some(d) = world.prod().page(gp.0) else {
        return Err(violation(
            world,
            format!("vCPU {vcpu} {what} maps gp {gp:?} outside RAM"),
        ));
    };
    if host != d.host_phys() {
        let detail = format!(
            "vCPU {vcpu} {what} for gp {gp:?} maps host {host:?}, the page's backing is {:?} ({d:?})",
            d.host_phys()
        );
        return Err(violation(world, detail));
    }
    if world.config().mode == Mode::Shadow {
        let (map, w) = handler_allows(&d);
        if !map || (t.write && !w) {
            let detail = format!(
                "vCPU {vcpu} {what} for gp {gp:?} grants write={} but the page is {d:?}",
                t.write
            );
            return Err(violation(world, detail));
        }
    }
    Ok(())
}

fn check_tlb_entry(world: &World, vcpu: usize, e: &TlbEntry) -> Result<(), Failure> {
    check_translation(world, "TLB entry", vcpu, e.vpi, &e.t)?;
    let mmu = world.mmu();
    let agrees = match world.config().mode {
        Mode::Shadow => {
            let s = mmu.vcpus()[vcpu].shadow.get(e.vpi);
            s.is_some_and(|s| {
                s.t.gp == e.t.gp && s.t.host == e.t.host && (!e.t.write || s.t.write) && (!e.t.exec || s.t.exec)
            })
        }
        Mode::Nem => {
            let n = mmu.nested().get(e.t.gp);
            n.is_some_and(|n| {
                n.host == e.t.host
                    && n.prot.can_read()
                    && (!e.t.write || n.prot.can_write())
                    && (!e.t.exec || n.prot.can_execute())
            })
        }
    };
    if !agrees {
        let detail = match world.config().mode {
            Mode::Shadow => format!(
                "vCPU {vcpu} TLB entry {e:?} disagrees with its shadow PTE {:?} (a missed TLB flush)",
                mmu.vcpus()[vcpu].shadow.get(e.vpi)
            ),
            Mode::Nem => format!(
                "vCPU {vcpu} combined TLB entry {e:?} exceeds nested entry {:?}",
                mmu.nested().get(e.t.gp)
            ),
        };
        return Err(violation(world, detail));
    }
    Ok(())
}

fn check_shadow(world: &World, vcpu: usize, vpi: u32, s: &ShadowPte) -> Result<(), Failure> {
    check_translation(world, "shadow PTE", vcpu, vpi, &s.t)
}

/// Translation safety over the touched pages (or everything when `full`).
pub fn check(world: &World, full: bool) -> Result<(), Failure> {
    check_tlbs(world, full)?;
    if world.config().mode == Mode::Shadow {
        check_shadow_tables(world, full)?;
    }
    check_page_map(world, full)
}

fn check_tlbs(world: &World, full: bool) -> Result<(), Failure> {
    let t = world.touched();
    for (v, cpu) in world.mmu().vcpus().iter().enumerate() {
        let space = world.guest().space_of(v) as u8;
        for e in cpu.tlb.iter() {
            if full || t.pages.binary_search(&e.t.gp.0).is_ok() || t.vpages.contains(&(space, e.vpi)) {
                check_tlb_entry(world, v, e)?;
            }
        }
    }
    Ok(())
}

fn check_shadow_tables(world: &World, full: bool) -> Result<(), Failure> {
    let mmu = world.mmu();
    for (v, cpu) in mmu.vcpus().iter().enumerate() {
        if full {
            for (vpi, s) in cpu.shadow.iter() {
                check_shadow(world, v, vpi, s)?;
            }
            continue;
        }
        let space = world.guest().space_of(v) as u8;
        for &(_, vpi) in world.touched().vpages.iter().filter(|(s, _)| *s == space) {
            if let Some(s) = cpu.shadow.get(vpi) {
                check_shadow(world, v, vpi, s)?;
            }
        }
    }
    if full {
        return Ok(());
    }
    for &gp in &world.touched().pages {
        let (refs, overflowed) = mmu.revmap().refs(pgmsim::Gpa(gp));
        if overflowed {
            for (v, cpu) in mmu.vcpus().iter().enumerate() {
                for (vpi, s) in cpu.shadow.iter().filter(|(_, s)| s.t.gp.0 == gp) {
                    check_shadow(world, v, vpi, s)?;
                }
            }
        }
        for &(v, vpi) in refs {
            if let Some(s) = mmu.vcpus()[v as usize].shadow.get(vpi) {
                check_shadow(world, v as usize, vpi, s)?;
            }
        }
    }
    Ok(())
}

fn check_page_map(world: &World, full: bool) -> Result<(), Failure> {
    for (gp, target) in world.mmu().page_map().iter() {
        if !full && world.touched().pages.binary_search(&gp.0).is_err() {
            continue;
        }
        let current = world.prod().page(gp.0).map(|d| phys_target(&d));
        if current != Some(*target) {
            let detail = format!("page-map TLB caches {target:?} for gp {gp:?}, the page's target is {current:?}");
            return Err(violation(world, detail));
        }
    }
    Ok(())
}
