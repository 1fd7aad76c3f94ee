//! The data a trace report's script draws, as one JSON value: the timeline rows (only pages
//! whose descriptor ever changed, or that start with a handler on them), each as its initial
//! state and its changes; the handler bands; one line per step for the operation list; the
//! events and changes of each step for the details; the failure; the lanes of a concurrent
//! trace (`lanes.rs`).

use std::collections::BTreeSet;

use pgmsim::{HandlerState, PageView, PAGE_SIZE};
use pgmsim_testkit::render::{self, event_line, page_change_lines, type_glyph};
use serde_json::{json, Value};

use crate::describe::{is_error, op_line, result_line};
use crate::observe::Observation;
use crate::op::{Op, StepResult};

/// Operation classes, for the colour of a step in the operation strip.
const CLASS_API: u8 = 0;
const CLASS_API_ERROR: u8 = 1;
const CLASS_KERNEL: u8 = 2;
const CLASS_ACCESS: u8 = 3;
const CLASS_TRAPPED: u8 = 4;
const CLASS_FAULT: u8 = 5;
const CLASS_QUERY: u8 = 6;
const CLASS_HARVEST: u8 = 7;
const CLASS_FAILED: u8 = 8;
const CLASS_UNFINISHED: u8 = 9;

/// The class of a step; one without a result failed if it is the failing step, else (a
/// concurrent trace) it was still running when the run stopped at the failure.
fn class(op: &Op, result: Option<&StepResult>, failing: bool) -> u8 {
    let Some(r) = result else {
        return if failing { CLASS_FAILED } else { CLASS_UNFINISHED };
    };
    match (op, r) {
        (Op::Access { .. }, StepResult::Access { outcome, .. }) => match outcome {
            crate::op::AccessOutcome::Trapped { .. } => CLASS_TRAPPED,
            crate::op::AccessOutcome::GuestFault { .. } => CLASS_FAULT,
            _ => CLASS_ACCESS,
        },
        (Op::Map { .. } | Op::Unmap { .. } | Op::Protect { .. } | Op::SwitchCr3 { .. }, _) => CLASS_KERNEL,
        (Op::Query { .. }, _) => CLASS_QUERY,
        (Op::Harvest { .. }, _) => CLASS_HARVEST,
        (Op::Call(c), r) if !c.mutates() && !is_error(r) => CLASS_QUERY,
        (_, r) if is_error(r) => CLASS_API_ERROR,
        _ => CLASS_API,
    }
}

fn state_code(s: HandlerState) -> u8 {
    s as u8
}

/// Row of the timeline: one page.
struct Row {
    addr: u64,
    initial: PageView,
    changes: Vec<(usize, PageView)>,
}

/// The pages that get a row: those that change at some step, or start with a handler state
/// or an alias type, in address order.
fn rows(obs: &Observation) -> Vec<Row> {
    let changed: BTreeSet<u64> = obs.steps.iter().flat_map(|s| s.pages.iter().map(|c| c.addr)).collect();
    let mut rows: Vec<Row> = obs
        .initial
        .iter()
        .filter(|(a, p)| changed.contains(a) || p.handler_state != HandlerState::None || p.page_type.is_alias())
        .map(|&(addr, initial)| Row {
            addr,
            initial,
            changes: Vec::new(),
        })
        .collect();
    for (i, s) in obs.steps.iter().enumerate() {
        for c in &s.pages {
            if let Ok(r) = rows.binary_search_by_key(&c.addr, |r| r.addr) {
                rows[r].changes.push((i, c.after));
            }
        }
    }
    rows
}

fn row_json(row: &Row, contiguous: bool, range_kind: &str) -> Value {
    // Only changes of the drawn fields (handler state, type) become runs; the rest is in
    // the step details.
    let mut last = (row.initial.handler_state, row.initial.page_type);
    let mut ch = Vec::new();
    for &(step, p) in &row.changes {
        if (p.handler_state, p.page_type) != last {
            last = (p.handler_state, p.page_type);
            ch.push(json!([
                step,
                state_code(p.handler_state),
                type_glyph(p.page_type).to_string()
            ]));
        }
    }
    json!({
        "a": render::addr(row.addr),
        "k": range_kind,
        "g": u8::from(!contiguous),
        "s": state_code(row.initial.handler_state),
        "t": type_glyph(row.initial.page_type).to_string(),
        "ch": ch,
    })
}

fn range_kind(obs: &Observation, addr: u64) -> &'static str {
    let r = obs
        .config
        .layout
        .ram_ranges
        .iter()
        .find(|r| addr >= r.first && addr <= r.last());
    match r.map(|r| r.kind) {
        Some(pgmsim::RangeKind::Ram { .. }) => "RAM",
        Some(pgmsim::RangeKind::Mmio) => "MMIO",
        Some(pgmsim::RangeKind::Mmio2 { .. }) => "MMIO2",
        None => "?",
    }
}

fn bands_json(obs: &Observation, rows: &[Row]) -> Vec<Value> {
    let mut out = Vec::new();
    for b in &obs.handlers {
        let first = b.key & !(PAGE_SIZE - 1);
        let last = b.key_last & !(PAGE_SIZE - 1);
        let r0 = rows.partition_point(|r| r.addr < first);
        let r1 = rows.partition_point(|r| r.addr <= last);
        if r0 >= r1 {
            continue;
        }
        out.push(json!({
            "r0": r0,
            "r1": r1 - 1,
            "k": format!("{:?}", b.kind),
            "d": b.description,
            "a": format!("{}-{}", render::addr(b.key), render::addr(b.key_last)),
            "f": b.from.map_or(-1, |f| f as i64),
            "t": b.to,
        }));
    }
    out
}

fn steps_json(obs: &Observation) -> (Vec<Value>, Vec<Value>) {
    let mut ops = Vec::with_capacity(obs.steps.len());
    let mut details = Vec::new();
    for (i, s) in obs.steps.iter().enumerate() {
        let failing = obs.failing == Some(i);
        let result = match &s.result {
            Some(r) => result_line(r),
            None if failing => "FAILED".to_string(),
            None => "did not complete (the run stopped at the failure)".to_string(),
        };
        let line = op_line(&s.op, &obs.config);
        let line = match (s.thread, &obs.lanes) {
            (Some(t), Some(l)) => format!("[{}] {line}", l.thread_name(t)),
            _ => line,
        };
        ops.push(json!([line, result, class(&s.op, s.result.as_ref(), failing)]));
        let events: Vec<String> = s.events.iter().map(event_line).collect();
        let mut changes = page_change_lines(s.pages.iter().copied(), &obs.hosts);
        changes.extend(s.handlers.iter().cloned());
        if !events.is_empty() || !changes.is_empty() {
            details.push(json!([i, events, changes]));
        }
    }
    (ops, details)
}

/// The report's data.
pub fn payload(obs: &Observation, title: &str) -> Value {
    let rows = rows(obs);
    let rows_json: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let contiguous = i > 0 && rows[i - 1].addr + PAGE_SIZE == r.addr;
            row_json(r, contiguous, range_kind(obs, r.addr))
        })
        .collect();
    let (ops, details) = steps_json(obs);
    let failure = obs.failure.as_ref().map(|f| {
        json!({
            "step": obs.failing_step(),
            "invariant": format!("{:?}", f.failure.invariant),
            "detail": f.failure.detail,
        })
    });
    json!({
        "title": title,
        "world": obs.config.summary(),
        "steps": obs.steps.len(),
        "rows": rows_json,
        "bands": bands_json(obs, &rows),
        "ops": ops,
        "details": details,
        "failure": failure,
        "lanes": super::lanes::lanes_json(obs),
    })
}
