//! The setup rules, checked when a world is built: the manager's layout validation and capacity
//! rounding against the model's own statement of them (`pgmsim_model::rules`).
//!
//! A world only ever runs on a valid layout, so a validation rule that wrongly *accepts* a bad
//! layout would never show in the steps that follow. Each world therefore also asks both sides
//! about a handful of near-misses of its own layout (one rule broken at a time) and about the
//! capacities at and around the limits: both must give the same verdict, error fields included.
//! The probes are derived from the layout alone, so they cost nothing in determinism.

use pgmsim::{Hpa, ManagerConfig, MemoryLayout, Mmio2Handle, RangeKind};
use pgmsim_model::rules;

/// Compares both sides' verdicts on `layout`, its near-misses and the capacity limits; the
/// first disagreement, described.
pub fn setup_rules(layout: &MemoryLayout, config: ManagerConfig) -> Result<(), String> {
    for (what, probe) in near_misses(layout) {
        let (prod, model) = (probe.validate(), rules::validate_layout(&probe));
        if prod != model {
            return Err(format!(
                "layout validation of {what}: manager {prod:?}, model {model:?}"
            ));
        }
    }
    let (fewest, most) = rules::HANDLER_LIMITS;
    for max_handlers in [
        config.max_handlers,
        fewest - 1,
        fewest,
        fewest + 1,
        47,
        48,
        49,
        most,
        most + 1,
    ] {
        let prod = ManagerConfig { max_handlers, ..config }.capacity();
        let model = rules::capacity(max_handlers);
        if prod != model {
            return Err(format!(
                "capacity of {max_handlers} handlers: manager {prod:?}, model {model:?}"
            ));
        }
    }
    Ok(())
}

/// The layout itself and copies of it with one rule broken each (where the layout has what
/// the rule is about).
fn near_misses(layout: &MemoryLayout) -> Vec<(&'static str, MemoryLayout)> {
    let mut probes = vec![("the world's layout", layout.clone())];
    let mut probe = |what, edit: &dyn Fn(&mut MemoryLayout) -> bool| {
        let mut l = layout.clone();
        if edit(&mut l) {
            probes.push((what, l));
        }
    };
    probe("a misaligned zero page", &|l| {
        l.zero_page = Hpa(l.zero_page.0 | 0x800);
        true
    });
    probe("a zero page above the host limit", &|l| {
        l.zero_page = Hpa(rules::MAX_HOST_ADDRESS + 1);
        true
    });
    probe("an empty first range", &|l| first_range(l, |r| r.pages = 0));
    probe("a misaligned first range", &|l| first_range(l, |r| r.first |= 0x10));
    probe("a range past the guest space", &|l| {
        last_range(l, |r| {
            r.first = (rules::MAX_GUEST_ADDRESS + 1) - (r.pages as u64 - 1) * rules::PAGE
        })
    });
    probe("the ranges in reverse order", &|l| {
        l.ram_ranges.reverse();
        l.ram_ranges.len() > 1
    });
    probe("the second range overlapping the first", &|l| {
        l.ram_ranges.len() > 1 && {
            l.ram_ranges[1].first = l.ram_ranges[0].last() & !(rules::PAGE - 1);
            true
        }
    });
    probe("RAM backing past the host limit", &|l| {
        ram_range(l, Hpa(rules::MAX_HOST_ADDRESS & !0xfff))
    });
    probe("RAM backing misaligned", &|l| ram_range(l, Hpa(0x1234)));
    probe("an empty MMIO2 region", &|l| {
        l.mmio2_regions.first_mut().map(|r| r.pages = 0).is_some()
    });
    probe("MMIO2 backing past the host limit", &|l| {
        let top = Hpa(rules::MAX_HOST_ADDRESS & !0xfff);
        l.mmio2_regions.first_mut().map(|r| r.host_base = top).is_some()
    });
    probe("an MMIO2 range naming no region", &|l| mmio2_range(l, |r| r.0 += 100));
    probe("an MMIO2 range naming region 0", &|l| mmio2_range(l, |r| r.0 = 0));
    probe("an MMIO2 region of another size", &|l| {
        l.mmio2_regions.first_mut().map(|r| r.pages += 1).is_some() && has_mmio2_range(l)
    });
    probe("an MMIO2 region mapped twice", &|l| map_twice(l));
    probes
}

fn first_range(l: &mut MemoryLayout, edit: impl Fn(&mut pgmsim::layout::RamRangeSpec)) -> bool {
    l.ram_ranges.first_mut().map(edit).is_some()
}

fn last_range(l: &mut MemoryLayout, edit: impl Fn(&mut pgmsim::layout::RamRangeSpec)) -> bool {
    l.ram_ranges.last_mut().map(edit).is_some()
}

/// Moves the first RAM-backed range's backing to `base`.
fn ram_range(l: &mut MemoryLayout, base: Hpa) -> bool {
    let range = l
        .ram_ranges
        .iter_mut()
        .find(|r| matches!(r.kind, RangeKind::Ram { .. }));
    range.map(|r| r.kind = RangeKind::Ram { host_base: base }).is_some()
}

/// Edits the region handle of the first MMIO2 range.
fn mmio2_range(l: &mut MemoryLayout, edit: impl Fn(&mut Mmio2Handle)) -> bool {
    l.ram_ranges
        .iter_mut()
        .find_map(|r| match &mut r.kind {
            RangeKind::Mmio2 { region } => Some(region),
            _ => None,
        })
        .map(edit)
        .is_some()
}

fn has_mmio2_range(l: &MemoryLayout) -> bool {
    l.ram_ranges.iter().any(|r| matches!(r.kind, RangeKind::Mmio2 { .. }))
}

/// Appends, past the last range, a second mapping of the first mapped MMIO2 region.
fn map_twice(l: &mut MemoryLayout) -> bool {
    let Some(mapped) = l
        .ram_ranges
        .iter()
        .find(|r| matches!(r.kind, RangeKind::Mmio2 { .. }))
        .cloned()
    else {
        return false;
    };
    let Some(last) = l.ram_ranges.last().map(|r| r.last()) else {
        return false;
    };
    let mut again = mapped;
    again.first = last + 1;
    l.ram_ranges.push(again);
    true
}
