//! The counters of one run (or, merged, of a sweep): flat tables indexed by small integers,
//! so counting costs an add per event and merging is element-wise.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::cells::{Transition, OPS, PLACEMENTS, RESULTS};
use crate::config::{Behaviour, SimConfig};
use crate::mmu::Mode;

/// The invariant checks whose runs are counted (`docs/semantics.md` §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// 4: the step's observable platform events equal the model's.
    PlatformEvents,
    /// 4: a guest access went where the model predicted.
    AccessOutcome,
    /// 6: a harvested bitmap names exactly the pages written.
    DirtyBitmap,
    /// 4: page descriptors equal the model's.
    DifferentialPages,
    /// 4: handler lists and live node counts equal the model's.
    DifferentialHandlers,
    /// 1-3: page states re-derived from the handler list, counts.
    SyncPages,
    /// 1-3: the production `check_sync` reports exactly what the model expects.
    ProductionCheckSync,
    /// 5: no cached translation grants more than the guest PTE and the page state allow.
    TranslationSafety,
    /// 5 (NEM): nested protections equal what the descriptors imply.
    NemSync,
}

impl Check {
    /// Every check, in table order.
    pub const ALL: [Check; 9] = [
        Check::PlatformEvents,
        Check::AccessOutcome,
        Check::DirtyBitmap,
        Check::DifferentialPages,
        Check::DifferentialHandlers,
        Check::SyncPages,
        Check::ProductionCheckSync,
        Check::TranslationSafety,
        Check::NemSync,
    ];

    /// Name in tables: the invariant number and what is compared.
    pub fn name(self) -> &'static str {
        match self {
            Check::PlatformEvents => "4 platform events",
            Check::AccessOutcome => "4 access outcome",
            Check::DirtyBitmap => "6 dirty bitmap",
            Check::DifferentialPages => "4 page descriptors",
            Check::DifferentialHandlers => "4 handler lists",
            Check::SyncPages => "1-3 page states from handlers",
            Check::ProductionCheckSync => "1-3 production check_sync",
            Check::TranslationSafety => "5 translation safety",
            Check::NemSync => "5 NEM protections",
        }
    }
}

/// Whether a check ran over what one step touched or over the whole world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The step's own comparison, or an incremental check of touched pages (in a concurrent
    /// world: at a quiescent point, over what was touched since the previous one).
    Step,
    /// Part of a full check.
    Full,
}

/// What a run (or a sweep) exercised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    results: Vec<u64>,
    transitions: BTreeMap<Transition, u64>,
    checks: Vec<u64>,
    /// Per placement (`PLACEMENTS` order): register / register_ex calls attempted, and of
    /// those the ones that succeeded.
    placements: Vec<[u64; 2]>,
    /// Swarm features of the worlds drawn (`mode=nem`, `vcpus=3`, ...) → number of worlds.
    features: BTreeMap<String, u64>,
}

impl Default for Coverage {
    fn default() -> Self {
        Coverage {
            results: vec![0; OPS.len() * RESULTS.len()],
            transitions: BTreeMap::new(),
            checks: vec![0; Check::ALL.len() * 2],
            placements: vec![[0; 2]; PLACEMENTS.len()],
            features: BTreeMap::new(),
        }
    }
}

impl Coverage {
    /// Counts one result of operation `op` (indices into `OPS` and `RESULTS`).
    #[inline]
    pub fn result(&mut self, op: usize, result: usize) {
        self.results[op * RESULTS.len() + result] += 1;
    }

    /// Counts one page's transition.
    #[inline]
    pub fn transition(&mut self, t: Transition) {
        *self.transitions.entry(t).or_default() += 1;
    }

    /// Counts one run of a check.
    #[inline]
    pub fn check(&mut self, check: Check, scope: Scope) {
        self.checks[check as usize * 2 + scope as usize] += 1;
    }

    /// Counts one register / register_ex call by its placements (a `cells::placement` mask)
    /// and whether it succeeded.
    #[inline]
    pub fn placement(&mut self, mask: u16, registered: bool) {
        for (i, n) in self.placements.iter_mut().enumerate() {
            if mask & 1 << i != 0 {
                n[0] += 1;
                n[1] += registered as u64;
            }
        }
    }

    /// Register placements with their counts: `(placement, attempted, registered)`.
    pub fn placements(&self) -> impl Iterator<Item = (&'static str, u64, u64)> + '_ {
        PLACEMENTS.iter().zip(&self.placements).map(|(&p, n)| (p, n[0], n[1]))
    }

    /// A placement's count by name, `"attempted"` or `"registered"` (0 for unknown names).
    pub fn placement_count(&self, placement: &str, count: &str) -> u64 {
        let column = match count {
            "attempted" => 0,
            "registered" => 1,
            _ => return 0,
        };
        PLACEMENTS
            .iter()
            .position(|p| *p == placement)
            .map_or(0, |i| self.placements[i][column])
    }

    /// Counts the swarm features of a world as it was drawn (once per world).
    pub fn world_drawn(&mut self, c: &SimConfig) {
        let mode = match (c.mode, c.nem_exclusive) {
            (Mode::Shadow, _) => "shadow",
            (Mode::Nem, false) => "nem",
            (Mode::Nem, true) => "nem (exclusive)",
        };
        let mut features = vec![
            format!("mode={mode}"),
            format!("vcpus={}", c.vcpus),
            format!("tlb={}x{}", c.tlb_sets, c.tlb_ways),
            format!("revmap={}", c.revmap_capacity),
            format!("address_spaces={}", c.address_spaces),
            format!("dirty_tracking={}", c.dirty_tracking),
            format!("mmio2_regions={}", c.layout.mmio2_regions.len()),
        ];
        match &c.concurrency {
            None => features.push("concurrency=sequential".to_string()),
            Some(conc) => features.extend([
                format!("concurrency=threads {}", c.vcpus as u32 + conc.devices as u32),
                format!("concurrency=scheduler {}", conc.scheduler),
                format!("concurrency=shootdown {:?}", conc.shootdown),
            ]),
        }
        for b in [
            Behaviour::Record,
            Behaviour::Register,
            Behaviour::DirtyTrack,
            Behaviour::AliasOnAccess,
            Behaviour::WriteLog,
        ] {
            if c.types.iter().any(|t| t.behaviour == b) {
                features.push(format!("device={b:?}"));
            }
        }
        for (i, name) in crate::config::Weights::NAMES.iter().enumerate() {
            let mut w = c.weights;
            if w.get_mut(i).is_some_and(|w| *w == 0) {
                features.push(format!("family off={name}"));
            }
        }
        if c.platform_fault.is_some() {
            features.push("injected platform fault".to_string());
        }
        for f in features {
            *self.features.entry(f).or_default() += 1;
        }
    }

    /// Adds another run's (or sweep's) counts.
    pub fn merge(&mut self, other: &Coverage) {
        for (a, b) in self.results.iter_mut().zip(&other.results) {
            *a += b;
        }
        for (t, n) in &other.transitions {
            *self.transitions.entry(*t).or_default() += n;
        }
        for (a, b) in self.checks.iter_mut().zip(&other.checks) {
            *a += b;
        }
        for (a, b) in self.placements.iter_mut().zip(&other.placements) {
            a[0] += b[0];
            a[1] += b[1];
        }
        for (k, v) in &other.features {
            *self.features.entry(k.clone()).or_default() += v;
        }
    }

    /// The count of operation `op` × result `result`, by name (0 for unknown names).
    pub fn count(&self, op: &str, result: &str) -> u64 {
        match (
            OPS.iter().position(|o| *o == op),
            RESULTS.iter().position(|r| *r == result),
        ) {
            (Some(o), Some(r)) => self.results[o * RESULTS.len() + r],
            _ => 0,
        }
    }

    /// Every counted operation × result cell, in table order: `(op, result, count)`.
    pub fn results(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        self.results
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (OPS[i / RESULTS.len()], RESULTS[i % RESULTS.len()], n))
    }

    /// Every counted transition with its count, in order (page type, state, ...).
    pub fn transitions(&self) -> impl Iterator<Item = (Transition, u64)> + '_ {
        self.transitions.iter().map(|(&t, &n)| (t, n))
    }

    /// How often each check ran: `(check, per step or incremental, in full checks)`.
    pub fn checks(&self) -> impl Iterator<Item = (Check, u64, u64)> + '_ {
        Check::ALL
            .iter()
            .map(|&c| (c, self.checks[c as usize * 2], self.checks[c as usize * 2 + 1]))
    }

    /// The swarm features and how many worlds had each.
    pub fn features(&self) -> &BTreeMap<String, u64> {
        &self.features
    }

    /// The counts as JSON (`--json`): `results` {op: {result: n}}, `transitions` [{type,
    /// from, to, type_after, count}], `checks` {name: {step, full}}, `placements` {name:
    /// {attempted, registered}}, `features` {name: worlds}.
    pub fn to_json(&self) -> Value {
        let mut results = serde_json::Map::new();
        for (op, r, n) in self.results() {
            let row = results.entry(op).or_insert_with(|| json!({}));
            row[r] = json!(n);
        }
        let transitions: Vec<Value> = self
            .transitions()
            .map(|(t, n)| {
                json!({
                    "type": format!("{:?}", t.type_before),
                    "from": format!("{:?}", t.from),
                    "type_after": format!("{:?}", t.type_after),
                    "to": format!("{:?}", t.to),
                    "count": n,
                })
            })
            .collect();
        let checks: serde_json::Map<String, Value> = self
            .checks()
            .map(|(c, step, full)| (c.name().to_string(), json!({"step": step, "full": full})))
            .collect();
        let placements: serde_json::Map<String, Value> = self
            .placements()
            .map(|(p, tried, ok)| (p.to_string(), json!({"attempted": tried, "registered": ok})))
            .collect();
        json!({
            "results": results,
            "transitions": transitions,
            "checks": checks,
            "placements": placements,
            "features": self.features,
        })
    }
}
