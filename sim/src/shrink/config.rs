//! Shrinking a failing trace's configuration to what the failure needs: as few vCPUs,
//! address spaces and virtual pages as the steps use, the smallest TLB and handler
//! capacity, no dirty tracking, RAM ranges, MMIO2 regions and handler types that nothing
//! needs dropped (the steps renumbered to match), and the weights of operation families the
//! trace never uses set to 0 (weights only steer the generator, so the minimised
//! configuration names the families the failure is made of). Every candidate is judged by
//! replaying it; one that no longer fails the same way is discarded.

use pgmsim::RangeKind;
use pgmsim_testkit::Operand;

use crate::config::{Weights, MAX_VA_PAGES};
use crate::op::Op;
use crate::trace::Trace;

/// Returns the smallest configuration found for which `fails` still holds.
pub(super) fn shrink(mut best: Trace, fails: &mut dyn FnMut(&Trace) -> Option<Trace>) -> Trace {
    let mut try_ = |best: &mut Trace, edit: &dyn Fn(&mut Trace)| {
        let mut cand = best.clone();
        edit(&mut cand);
        if cand != *best {
            if let Some(t) = fails(&cand) {
                *best = t;
            }
        }
    };
    let used = Used::of(&best.ops);
    // A concurrent trace's threads are numbered after its vCPUs: the concurrency pass
    // removes idle vCPUs, renumbering the threads.
    if best.config.concurrency.is_none() {
        try_(&mut best, &|t| t.config.vcpus = 1);
        try_(&mut best, &|t| t.config.vcpus = t.config.vcpus.min(used.vcpus));
    }
    try_(&mut best, &|t| t.config.address_spaces = 1);
    try_(&mut best, &|t| {
        t.config.address_spaces = t.config.address_spaces.min(used.spaces)
    });
    try_(&mut best, &|t| t.config.va_pages = t.config.va_pages.min(used.va_pages));
    try_(&mut best, &|t| (t.config.tlb_sets, t.config.tlb_ways) = (1, 1));
    try_(&mut best, &|t| t.config.revmap_capacity = 8);
    try_(&mut best, &|t| t.config.boot_nodes = 0);
    try_(&mut best, &|t| {
        // The smallest table, as full as before: the same number of free slots.
        let free = t
            .config
            .handler_capacity()
            .unwrap_or(0)
            .saturating_sub(t.config.boot_nodes);
        t.config.max_handlers = t.config.max_handlers.min(32);
        let capacity = t.config.handler_capacity().unwrap_or(0);
        if t.config.boot_nodes > 0 {
            t.config.boot_nodes = capacity.saturating_sub(free);
        }
    });
    try_(&mut best, &|t| {
        // Without trackers every harvest finds none: index 0 says so.
        t.config.dirty_tracking = false;
        for op in &mut t.ops {
            if let Op::Harvest { tracker } = op {
                *tracker = 0;
            }
        }
    });
    for i in (1..best.config.layout.ram_ranges.len()).rev() {
        try_(&mut best, &|t| drop_range(t, i));
    }
    for r in (0..best.config.layout.mmio2_regions.len()).rev() {
        try_(&mut best, &|t| drop_region(t, r));
    }
    for ty in (0..best.config.types.len()).rev() {
        try_(&mut best, &|t| drop_type(t, ty));
    }
    try_(&mut best, &|t| {
        t.config.weights = used_weights(&t.ops, t.config.weights)
    });
    best
}

/// The largest indices the steps use (as counts: index + 1).
struct Used {
    vcpus: u8,
    spaces: u8,
    va_pages: u32,
}

impl Used {
    fn of(ops: &[Op]) -> Used {
        let mut u = Used {
            vcpus: 1,
            spaces: 1,
            va_pages: 1,
        };
        for op in ops {
            match *op {
                Op::Map { space, vpi, .. } | Op::Unmap { space, vpi } | Op::Protect { space, vpi, .. } => {
                    u.spaces = u.spaces.max(space.saturating_add(1));
                    u.va_pages = u.va_pages.max(vpi.saturating_add(1));
                }
                Op::SwitchCr3 { vcpu, space } => {
                    u.vcpus = u.vcpus.max(vcpu.saturating_add(1));
                    u.spaces = u.spaces.max(space.saturating_add(1));
                }
                Op::Access { vcpu, va, .. } => {
                    u.vcpus = u.vcpus.max(vcpu.saturating_add(1));
                    let vpi = crate::mmu::guest_pt::vpi_of(pgmsim::Gva(va), MAX_VA_PAGES).unwrap_or(0);
                    u.va_pages = u.va_pages.max(vpi.saturating_add(1));
                }
                _ => {}
            }
        }
        u
    }
}

/// Drops `layout.ram_ranges[i]`; an MMIO2 range's region goes too, and the dirty tracker
/// it had (harvests of it make the candidate invalid; later trackers are renumbered).
fn drop_range(t: &mut Trace, i: usize) {
    let layout = &mut t.config.layout;
    let tracker = layout.ram_ranges[..i]
        .iter()
        .filter(|r| matches!(r.kind, RangeKind::Mmio2 { .. }))
        .count();
    let removed = layout.ram_ranges.remove(i);
    if let RangeKind::Mmio2 { region } = removed.kind {
        if t.config.dirty_tracking {
            renumber_harvests(&mut t.ops, tracker);
        }
        drop_region(t, region.0 as usize - 1);
    }
}

/// Harvests of tracker `gone` become invalid (past every tracker), later ones move down.
fn renumber_harvests(ops: &mut [Op], gone: usize) {
    for op in ops {
        if let Op::Harvest { tracker } = op {
            match (*tracker as usize).cmp(&gone) {
                std::cmp::Ordering::Equal => *tracker = u8::MAX,
                std::cmp::Ordering::Greater => *tracker -= 1,
                std::cmp::Ordering::Less => {}
            }
        }
    }
}

/// Drops `layout.mmio2_regions[r]` when no range maps it and no step aliases it; handles
/// above it move down in the ranges and the steps.
fn drop_region(t: &mut Trace, r: usize) {
    let handle = r as u32 + 1;
    let layout = &mut t.config.layout;
    let mapped = layout
        .ram_ranges
        .iter()
        .any(|x| matches!(x.kind, RangeKind::Mmio2 { region } if region.0 == handle));
    let aliased = t.ops.iter().any(|op| match op {
        Op::Call(call) => {
            let mut named = false;
            call.visit(&mut |o| named |= matches!(o, Operand::Region(r) if *r == handle));
            named
        }
        _ => false,
    });
    if mapped || aliased || r >= layout.mmio2_regions.len() {
        return;
    }
    layout.mmio2_regions.remove(r);
    for x in &mut layout.ram_ranges {
        if let RangeKind::Mmio2 { region } = &mut x.kind {
            if region.0 > handle {
                region.0 -= 1;
            }
        }
    }
    for op in &mut t.ops {
        if let Op::Call(call) = op {
            call.visit_mut(&mut |o| {
                if let Operand::Region(r) = o {
                    if *r > handle {
                        *r -= 1;
                    }
                }
            });
        }
    }
}

/// Drops `types[ty]` when no step names it; later type indices move down.
fn drop_type(t: &mut Trace, ty: usize) {
    let ty = ty as u8;
    let named = t.ops.iter().any(|op| match op {
        Op::Call(call) => {
            let mut named = false;
            call.visit(&mut |o| named |= matches!(o, Operand::Type(x) if *x == ty));
            named
        }
        _ => false,
    });
    if named {
        return;
    }
    t.config.types.remove(ty as usize);
    for op in &mut t.ops {
        if let Op::Call(call) = op {
            call.visit_mut(&mut |o| {
                if let Operand::Type(x) = o {
                    if *x > ty {
                        *x -= 1;
                    }
                }
            });
        }
    }
}

/// The operation family ([`Weights::NAMES`] index) that draws a step of this kind.
fn family(op: &Op) -> usize {
    let name = match op {
        Op::Query { .. } => "query",
        Op::Map { .. } | Op::Unmap { .. } | Op::Protect { .. } | Op::SwitchCr3 { .. } => "kernel",
        Op::Access { .. } => "access",
        Op::Harvest { .. } => "harvest",
        Op::Call(call) => call.spec().family,
    };
    let i = Weights::NAMES.iter().position(|n| *n == name);
    i.expect("every call's family is a weight's name")
}

/// The weights with every family the steps do not use set to 0 (unchanged for no steps).
fn used_weights(ops: &[Op], mut w: Weights) -> Weights {
    if ops.is_empty() {
        return w;
    }
    let mut used = [false; Weights::NAMES.len()];
    for op in ops {
        used[family(op)] = true;
    }
    for (i, u) in used.iter().enumerate() {
        if let (false, Some(slot)) = (u, w.get_mut(i)) {
            *slot = 0;
        }
    }
    // A family used but disabled in the original stays as it was; keep something positive.
    if w.total() == 0 {
        for (i, u) in used.iter().enumerate() {
            if let (true, Some(slot)) = (u, w.get_mut(i)) {
                *slot = 1;
            }
        }
    }
    w
}
