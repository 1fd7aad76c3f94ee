//! Steps and their results as one line of text each, addresses in hex: the vocabulary of
//! step logs and reports. API calls use the shared renderer (`pgmsim_testkit::render`);
//! the simulator's own steps (kernel edits, accesses, harvests) are described here.

use pgmsim_testkit::render::{addr, call_line, outcome_line, words_text};
use pgmsim_testkit::{ApiCall, Operand};

use crate::config::SimConfig;
use crate::mmu::guest_pt::va_of;
use crate::op::{AccessKind, AccessOutcome, Op, Piece, QueryAnswer, StepResult, Target};

/// One step as text, with the handler type's description for calls that name a type.
pub fn op_line(op: &Op, config: &SimConfig) -> String {
    let rights =
        |write: bool, exec: bool| format!("r{}{}", if write { "w" } else { "-" }, if exec { "x" } else { "-" });
    match *op {
        Op::Call(ref call) => {
            let mut s = call_line(call);
            call.visit(&mut |operand| {
                if let Operand::Type(ty) = operand {
                    if let Some(t) = config.types.get(*ty as usize) {
                        s.push_str(&format!(" ({})", t.description));
                    }
                }
            });
            s
        }
        Op::Query { addr: a } => format!("query {} (is_registered, is_all, lookup)", addr(a)),
        Op::Map {
            space,
            vpi,
            gp,
            write,
            exec,
        } => format!(
            "map space {space} va {} -> gp {} {}",
            addr(va_of(vpi).0),
            addr(gp),
            rights(write, exec)
        ),
        Op::Unmap { space, vpi } => format!("unmap space {space} va {}", addr(va_of(vpi).0)),
        Op::Protect {
            space,
            vpi,
            write,
            exec,
        } => format!(
            "protect space {space} va {} {}",
            addr(va_of(vpi).0),
            rights(write, exec)
        ),
        Op::SwitchCr3 { vcpu, space } => format!("switch_cr3 vCPU {vcpu} -> space {space}"),
        Op::Access {
            vcpu,
            va,
            size,
            kind,
            value,
        } => match kind {
            AccessKind::Write => format!("write vCPU {vcpu} va {} size {size} value {value:#x}", addr(va)),
            AccessKind::Read => format!("read vCPU {vcpu} va {} size {size}", addr(va)),
            AccessKind::Exec => format!("fetch vCPU {vcpu} va {} size {size}", addr(va)),
        },
        Op::Harvest { tracker } => format!("harvest dirty tracker #{tracker}"),
    }
}

fn piece_text(p: &Piece) -> String {
    let target = match p.target {
        Target::Host(h) => format!("host {}", addr(h)),
        Target::MmioDefault => "MMIO default".to_string(),
        Target::Device => "device".to_string(),
    };
    let by = p
        .handler
        .map_or_else(|| "no handler".to_string(), |h| format!("handler {}", addr(h)));
    format!("{}-{} {by} -> {target}", addr(p.first), addr(p.last))
}

/// What a guest access did.
pub fn access_text(o: &AccessOutcome) -> String {
    match o {
        AccessOutcome::BadAddress => "bad address (outside the virtual window)".to_string(),
        AccessOutcome::GuestFault { protection: false } => "guest fault (not present)".to_string(),
        AccessOutcome::GuestFault { protection: true } => "guest fault (protection)".to_string(),
        AccessOutcome::Unassigned { gp } => format!("unassigned gp {}", addr(*gp)),
        AccessOutcome::Direct { gp, host } => format!("direct gp {} -> host {}", addr(*gp), addr(*host)),
        AccessOutcome::Trapped { gp, pieces } => {
            let p: Vec<String> = pieces.iter().map(piece_text).collect();
            format!("trapped at gp {}: {}", addr(*gp), p.join("; "))
        }
    }
}

fn query_text(q: &QueryAnswer) -> String {
    let is_all = match q.is_all {
        Ok(b) => b.to_string(),
        Err(e) => format!("error {}", e.name()),
    };
    let lookup = q
        .handler
        .map_or_else(|| "none".to_string(), |h| format!("handler at {}", addr(h)));
    format!("registered: {}, is_all: {is_all}, lookup: {lookup}", q.registered)
}

/// A step's result as text.
pub fn result_line(r: &StepResult) -> String {
    match r {
        StepResult::Manager(Ok(s)) => s.name().to_string(),
        StepResult::Manager(Err(e)) | StepResult::Harvest(Err(e)) => format!("error {}", e.name()),
        StepResult::Query(q) => query_text(q),
        StepResult::Kernel(Ok(())) => "ok".to_string(),
        StepResult::Kernel(Err(e)) => format!("error {e:?}"),
        StepResult::Access { outcome, value } => match outcome {
            AccessOutcome::Direct { .. } | AccessOutcome::Trapped { .. } | AccessOutcome::Unassigned { .. } => {
                format!("{}, read {value:#x}", access_text(outcome))
            }
            _ => access_text(outcome),
        },
        StepResult::Harvest(Ok(words)) => format!("bitmap {}", words_text(words)),
        StepResult::Nothing => "nothing (no such tracker)".to_string(),
        StepResult::Answer(o) => outcome_line(o),
    }
}

/// Whether a result is an error (or a guest fault): what a report colours as failed.
pub fn is_error(r: &StepResult) -> bool {
    match r {
        StepResult::Manager(r) => r.is_err(),
        StepResult::Harvest(r) => r.is_err(),
        StepResult::Kernel(r) => r.is_err(),
        StepResult::Answer(o) => o.error().is_some(),
        StepResult::Access { outcome, .. } => matches!(outcome, AccessOutcome::GuestFault { .. }),
        StepResult::Query(_) | StepResult::Nothing => false,
    }
}

/// The guest-physical address a step names, if any (the page a failure report centres on):
/// the page it acts on, else the first address among its operands.
pub fn call_address(call: &ApiCall) -> Option<u64> {
    let (mut page, mut other) = (None, None);
    call.visit(&mut |operand| match operand {
        Operand::Page(p) => page = Some(*p),
        Operand::Range(a, _) | Operand::Handler(a) | Operand::Addr(a) => {
            other = other.or(Some(*a));
        }
        _ => {}
    });
    page.or(other)
}
