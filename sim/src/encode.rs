//! The trace hash's input: an explicit, documented byte encoding of every step and its
//! result, so the same run hashes the same on every machine and with every toolchain (std's
//! derived `Hash` promises neither).
//!
//! # Encoding
//!
//! Each step appends `encode(op)` then `encode(result)` to one FNV-1a-64 stream
//! ([`crate::trace::TraceHasher`]). Values encode as:
//!
//! | value | bytes |
//! |---|---|
//! | `u8`, `bool` | 1 byte (`bool`: 0 or 1) |
//! | `u32` | 4 bytes, little-endian |
//! | `u64`, addresses | 8 bytes, little-endian |
//! | an enum variant | its tag as 8 bytes little-endian, then its fields in order |
//! | `Option` / `Result` | tag (`None`/`Ok` = 0, `Some`/`Err` = 1) as 8 bytes, then the value |
//! | a list | its length as 8 bytes, then the elements |
//!
//! A concurrent run folds each operation as it completes, headed by tag 30, its index in
//! start order (`u32`) and its thread (`u8`); then, at the end, its schedule: tag 31, the
//! number of decisions, and one byte per decision.
//!
//! The tags are the tables below ([`op_tag`], the `StepResult`, outcome, status and error
//! tags). They were chosen to equal the byte stream the simulator's first trace format
//! produced, so every trace recorded since then keeps its hash. New fields of a step that
//! are at their default (`described: false`, `fill: 0`) encode nothing; set, they append.

use pgmsim::{Error, Status};
use pgmsim_testkit::{ApiCall, Operand};

use crate::mmu::guest_pt::KernelError;
use crate::op::{AccessKind, AccessOutcome, Op, Piece, StepResult, Target};

/// A sink for the encoding (the trace hasher, or a byte buffer in tests).
pub trait Sink {
    /// Appends bytes.
    fn bytes(&mut self, b: &[u8]);
}

impl Sink for Vec<u8> {
    fn bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

/// Encodes values into a [`Sink`].
pub struct Encoder<'a> {
    sink: &'a mut dyn Sink,
}

impl<'a> Encoder<'a> {
    /// An encoder writing to `sink`.
    pub fn new(sink: &'a mut dyn Sink) -> Self {
        Encoder { sink }
    }
    fn u8(&mut self, v: u8) {
        self.sink.bytes(&[v]);
    }
    fn bool(&mut self, v: bool) {
        self.u8(v as u8);
    }
    fn u32(&mut self, v: u32) {
        self.sink.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.sink.bytes(&v.to_le_bytes());
    }
    fn tag(&mut self, t: u64) {
        self.u64(t);
    }
    fn option_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.tag(0),
            Some(x) => {
                self.tag(1);
                self.u64(x);
            }
        }
    }

    /// Encodes a step.
    pub fn op(&mut self, op: &Op) {
        self.tag(op_tag(op));
        match *op {
            Op::Query { addr } => self.u64(addr),
            Op::Map {
                space,
                vpi,
                gp,
                write,
                exec,
            } => {
                self.u8(space);
                self.u32(vpi);
                self.u64(gp);
                self.bool(write);
                self.bool(exec);
            }
            Op::Unmap { space, vpi } => {
                self.u8(space);
                self.u32(vpi);
            }
            Op::Protect {
                space,
                vpi,
                write,
                exec,
            } => {
                self.u8(space);
                self.u32(vpi);
                self.bool(write);
                self.bool(exec);
            }
            Op::SwitchCr3 { vcpu, space } => {
                self.u8(vcpu);
                self.u8(space);
            }
            Op::Access {
                vcpu,
                va,
                size,
                kind,
                value,
            } => {
                self.u8(vcpu);
                self.u64(va);
                self.u8(size);
                self.tag(access_kind_tag(kind));
                self.u64(value);
            }
            Op::Harvest { tracker } => self.u8(tracker),
            Op::Call(ref call) => self.call(call),
        }
    }

    /// A call's operands, in declaration order, each as its role says (the table in the
    /// module docs); `described` and `fill` at their defaults encode nothing.
    fn call(&mut self, call: &ApiCall) {
        call.visit(&mut |operand| self.operand(operand));
    }

    fn operand(&mut self, operand: Operand<'_, u64>) {
        match operand {
            Operand::Kind(kind) => self.tag(*kind as u64),
            Operand::Flag(_, b) | Operand::Accounting(b) => self.bool(*b),
            Operand::Described(b) => {
                if *b {
                    self.bool(true);
                }
            }
            Operand::Node(h) => self.u32(*h),
            Operand::Type(t) => self.u8(*t),
            Operand::Range(first, last) => {
                self.u64(*first);
                self.u64(*last);
            }
            Operand::User(v) | Operand::Handler(v) | Operand::Page(v) | Operand::Addr(v) | Operand::ByteOffset(v) => {
                self.u64(*v)
            }
            Operand::Words(v) | Operand::BitOffset(v) | Operand::Region(v) => self.u32(*v),
            Operand::Fill(v) => {
                if *v != 0 {
                    self.u64(*v);
                }
            }
            Operand::Host(h) => self.u64(h.0),
        }
    }

    /// The header of a concurrent run's step: tag 30, the operation's index, its thread.
    pub fn concurrent_step(&mut self, index: u32, thread: u8) {
        self.tag(30);
        self.u32(index);
        self.u8(thread);
    }

    /// A concurrent run's schedule: tag 31, its length, every decision (a
    /// [`Move`](crate::conc::sched::Move)).
    pub fn schedule(&mut self, decisions: &[u32]) {
        self.tag(31);
        self.u64(decisions.len() as u64);
        for &d in decisions {
            self.u32(d);
        }
    }

    /// Encodes a step's result.
    pub fn result(&mut self, r: &StepResult) {
        match r {
            StepResult::Manager(s) => {
                self.tag(0);
                self.status(s);
            }
            StepResult::Query(q) => {
                self.tag(1);
                self.bool(q.registered);
                match q.is_all {
                    Ok(b) => {
                        self.tag(0);
                        self.bool(b);
                    }
                    Err(e) => {
                        self.tag(1);
                        self.tag(error_tag(e));
                    }
                }
                self.option_u64(q.handler);
            }
            StepResult::Kernel(k) => {
                self.tag(2);
                match k {
                    Ok(()) => self.tag(0),
                    Err(e) => {
                        self.tag(1);
                        self.tag(match e {
                            KernelError::PoolExhausted => 0,
                            KernelError::NotMapped => 1,
                        });
                    }
                }
            }
            StepResult::Access { outcome, value } => {
                self.tag(3);
                self.outcome(outcome);
                self.u64(*value);
            }
            StepResult::Harvest(h) => {
                self.tag(4);
                match h {
                    Ok(words) => {
                        self.tag(0);
                        self.u64(words.len() as u64);
                        words.iter().for_each(|&w| self.u64(w));
                    }
                    Err(e) => {
                        self.tag(1);
                        self.tag(error_tag(*e));
                    }
                }
            }
            StepResult::Nothing => self.tag(5),
            StepResult::Answer(outcome) => {
                self.tag(6);
                let json = serde_json::to_string(outcome).expect("outcomes serialise");
                self.u64(json.len() as u64);
                self.sink.bytes(json.as_bytes());
            }
        }
    }

    fn status(&mut self, s: &Result<Status, Error>) {
        match s {
            Ok(st) => {
                self.tag(0);
                self.tag(status_tag(*st));
            }
            Err(e) => {
                self.tag(1);
                self.tag(error_tag(*e));
            }
        }
    }

    fn outcome(&mut self, o: &AccessOutcome) {
        match o {
            AccessOutcome::BadAddress => self.tag(0),
            AccessOutcome::GuestFault { protection } => {
                self.tag(1);
                self.bool(*protection);
            }
            AccessOutcome::Unassigned { gp } => {
                self.tag(2);
                self.u64(gp.0);
            }
            AccessOutcome::Direct { gp, host } => {
                self.tag(3);
                self.u64(gp.0);
                self.u64(host.0);
            }
            AccessOutcome::Trapped { gp, pieces } => {
                self.tag(4);
                self.u64(gp.0);
                self.u64(pieces.len() as u64);
                pieces.iter().for_each(|p| self.piece(p));
            }
        }
    }

    fn piece(&mut self, p: &Piece) {
        self.u64(p.first.0);
        self.u64(p.last.0);
        self.option_u64(p.handler);
        match p.target {
            Target::Host(h) => {
                self.tag(0);
                self.u64(h.0);
            }
            Target::MmioDefault => self.tag(1),
            Target::Device => self.tag(2),
        }
    }
}

/// The tag of a step: an API call's is its [`pgmsim_testkit::CallSpec::tag`] (0-14 for the
/// calls the first trace format knew, 22-29 for later ones); the simulator's own steps
/// have 15-21.
pub fn op_tag(op: &Op) -> u64 {
    match op {
        Op::Query { .. } => 15,
        Op::Map { .. } => 16,
        Op::Unmap { .. } => 17,
        Op::Protect { .. } => 18,
        Op::SwitchCr3 { .. } => 19,
        Op::Access { .. } => 20,
        Op::Harvest { .. } => 21,
        Op::Call(call) => call.spec().tag,
    }
}

fn access_kind_tag(k: AccessKind) -> u64 {
    match k {
        AccessKind::Read => 0,
        AccessKind::Write => 1,
        AccessKind::Exec => 2,
    }
}

fn status_tag(s: Status) -> u64 {
    Status::ALL.iter().position(|&x| x == s).map_or(u64::MAX, |i| i as u64)
}

fn error_tag(e: Error) -> u64 {
    Error::ALL.iter().position(|&x| x == e).map_or(u64::MAX, |i| i as u64)
}
