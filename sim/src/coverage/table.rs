//! Coverage as text: the tables `run`, `sweep` and `coverage` print, and the cells a sweep
//! never reached.

use std::fmt::Write as _;

use pgmsim_testkit::render::type_name;

use super::cells::{
    Transition, CAN_PRODUCE, PLACEMENTS, PLACEMENT_COUNTS, PLACEMENT_UNREACHABLE, POSSIBLE_TRANSITIONS, UNREACHABLE,
};
use super::counters::Coverage;

/// What a sweep did not reach, or reached unexpectedly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gaps {
    /// Operation × result cells the API can produce that no run reached (the documented
    /// unreachable ones excluded).
    pub never: Vec<(&'static str, &'static str)>,
    /// Documented unreachable cells with their reasons.
    pub unreachable: Vec<(&'static str, &'static str, &'static str)>,
    /// Cells counted although outside what the operation can produce, or documented as
    /// unreachable: a bug in the simulator or in the declaration.
    pub unexpected: Vec<(&'static str, &'static str, u64)>,
    /// Possible page transitions no run made.
    pub transitions_never: Vec<Transition>,
    /// Transitions counted although declared impossible.
    pub transitions_unexpected: Vec<(Transition, u64)>,
    /// Register placement × count (`attempted`, `registered`) cells no run reached (the
    /// documented unreachable ones excluded).
    pub placements_never: Vec<(&'static str, &'static str)>,
    /// Documented unreachable placement cells with their reasons.
    pub placements_unreachable: Vec<(&'static str, &'static str, &'static str)>,
    /// Documented unreachable placement cells counted anyway.
    pub placements_unexpected: Vec<(&'static str, &'static str, u64)>,
}

impl Gaps {
    /// The gaps of `cov`.
    pub fn of(cov: &Coverage) -> Gaps {
        let mut g = Gaps {
            unreachable: UNREACHABLE.to_vec(),
            placements_unreachable: PLACEMENT_UNREACHABLE.to_vec(),
            ..Gaps::default()
        };
        let documented = |op: &str, r: &str| UNREACHABLE.iter().any(|u| u.0 == op && u.1 == r);
        for (op, results) in CAN_PRODUCE {
            for r in results {
                if cov.count(op, r) == 0 && !documented(op, r) {
                    g.never.push((op, r));
                }
            }
        }
        for (op, r, n) in cov.results() {
            let producible = CAN_PRODUCE.iter().any(|(o, rs)| *o == op && rs.contains(&r));
            if !producible || documented(op, r) {
                g.unexpected.push((op, r, n));
            }
        }
        let counted: Vec<(Transition, u64)> = cov.transitions().collect();
        for t in POSSIBLE_TRANSITIONS {
            if !counted.iter().any(|(c, _)| *c == t) {
                g.transitions_never.push(t);
            }
        }
        for &(t, n) in &counted {
            if !POSSIBLE_TRANSITIONS.contains(&t) {
                g.transitions_unexpected.push((t, n));
            }
        }
        for p in PLACEMENTS {
            for c in PLACEMENT_COUNTS {
                let n = cov.placement_count(p, c);
                let documented = PLACEMENT_UNREACHABLE.iter().any(|u| u.0 == p && u.1 == c);
                match (n, documented) {
                    (0, false) => g.placements_never.push((p, c)),
                    (n, true) if n > 0 => g.placements_unexpected.push((p, c, n)),
                    _ => {}
                }
            }
        }
        g
    }

    /// Whether everything reachable was reached and nothing unexpected happened.
    pub fn is_complete(&self) -> bool {
        self.never.is_empty()
            && self.unexpected.is_empty()
            && self.transitions_never.is_empty()
            && self.transitions_unexpected.is_empty()
            && self.placements_never.is_empty()
            && self.placements_unexpected.is_empty()
    }
}

/// One transition as text: `RAM  . -> W`, or with the type change `MMIO -> MMIO2 alias`.
pub fn transition_text(t: &Transition) -> String {
    let states = format!("{} -> {}", t.from.glyph(), t.to.glyph());
    if t.type_before == t.type_after {
        format!("{:<14} {states}", type_name(t.type_before))
    } else {
        format!(
            "{:<14} {states}  (type {} -> {})",
            type_name(t.type_before),
            type_name(t.type_before),
            type_name(t.type_after)
        )
    }
}

/// The coverage tables: operation × result (`-` marks a cell the operation can produce that
/// no run reached), page transitions, invariant checks, swarm features.
pub fn render(cov: &Coverage) -> String {
    let mut out = String::from("coverage: operation x result (count; '-' = never reached)\n");
    for (op, results) in CAN_PRODUCE {
        let cells: Vec<String> = results
            .iter()
            .map(|r| match cov.count(op, r) {
                0 => format!("{r} -"),
                n => format!("{r} {n}"),
            })
            .collect();
        let _ = writeln!(out, "  {op:<24} {}", cells.join(", "));
    }
    out.push_str("coverage: page handler-state transitions (page type, from -> to: pages)\n");
    for (t, n) in cov.transitions() {
        let _ = writeln!(out, "  {:<52} {n}", transition_text(&t));
    }
    let _ = writeln!(
        out,
        "coverage: invariant checks ({:>12} {:>14})",
        "per step", "in full checks"
    );
    for (c, step, full) in cov.checks() {
        let _ = writeln!(out, "  {:<34} {step:>12} {full:>14}", c.name());
    }
    out.push_str("coverage: register placements (register / register_ex calls: attempted, registered)\n");
    for (p, tried, ok) in cov.placements() {
        let _ = writeln!(out, "  {p:<24} {tried:>10} {ok:>10}");
    }
    out.push_str("coverage: swarm features (worlds)\n");
    let features: Vec<String> = cov.features().iter().map(|(k, v)| format!("{k}: {v}")).collect();
    for chunk in features.chunks(6) {
        let _ = writeln!(out, "  {}", chunk.join(", "));
    }
    out
}

/// The gaps as text: never reached, documented unreachable, unexpected.
pub fn render_gaps(g: &Gaps) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "never reached: {} operation x result cell(s), {} page transition(s), {} register placement(s)",
        g.never.len(),
        g.transitions_never.len(),
        g.placements_never.len()
    );
    for (op, r) in &g.never {
        let _ = writeln!(out, "  {op} x {r}");
    }
    for t in &g.transitions_never {
        let _ = writeln!(out, "  transition {}", transition_text(t));
    }
    for (p, c) in &g.placements_never {
        let _ = writeln!(out, "  placement {p} x {c}");
    }
    if !g.unreachable.is_empty() || !g.placements_unreachable.is_empty() {
        let _ = writeln!(
            out,
            "not reachable by the default sweep ({} cells, see README):",
            g.unreachable.len() + g.placements_unreachable.len()
        );
        for (op, r, why) in &g.unreachable {
            let _ = writeln!(out, "  {op} x {r}: {why}");
        }
        for (p, c, why) in &g.placements_unreachable {
            let _ = writeln!(out, "  placement {p} x {c}: {why}");
        }
    }
    if !g.unexpected.is_empty() || !g.transitions_unexpected.is_empty() || !g.placements_unexpected.is_empty() {
        out.push_str(
            "UNEXPECTED (declared impossible, or documented as not reachable by the default sweep, yet counted):\n",
        );
        for (op, r, n) in &g.unexpected {
            let _ = writeln!(out, "  {op} x {r}: {n}");
        }
        for (t, n) in &g.transitions_unexpected {
            let _ = writeln!(out, "  transition {}: {n}", transition_text(t));
        }
        for (p, c, n) in &g.placements_unexpected {
            let _ = writeln!(out, "  placement {p} x {c}: {n}");
        }
    }
    out
}
