//! Traces: a run as JSON (configuration + operation list), self-contained so replaying needs
//! no seed and no generator, and the trace hash that fingerprints a run.
//!
//! Format version 2 writes addresses as `"0x…"` strings and one operation per line, and
//! records the run's trace hash; version 1 files (addresses as numbers, no hash) still load.
//! Files are written through [`TraceWriter`], which streams: a run never holds its whole
//! operation list to save it.

mod validate;
mod write;

use std::hash::Hasher;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::check::{CheckMode, Failure};
use crate::conc::sched::{self, Move};
use crate::config::SimConfig;
use crate::op::Op;

pub use validate::{OpError, TraceInvalid};
pub use write::TraceWriter;

/// Most scheduling decisions a trace may carry (a bound on what replaying it allocates).
pub const MAX_SCHEDULE: u64 = 1 << 26;

/// Format marker of trace files.
pub const TRACE_FORMAT: &str = "pgmsim-trace";
/// Version this build writes.
pub const TRACE_VERSION: u32 = 2;
/// Versions this build reads: 1 (addresses as numbers, no recorded hash) and 2.
pub const READABLE_VERSIONS: [u32; 2] = [1, 2];

/// A replayable run. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trace {
    /// Always [`TRACE_FORMAT`].
    pub format: String,
    /// One of [`READABLE_VERSIONS`]; written as [`TRACE_VERSION`].
    pub version: u32,
    /// The seed the run came from, if any (informational: replay does not use it).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Check mode the run used.
    pub check: CheckMode,
    /// The world.
    pub config: SimConfig,
    /// The steps.
    pub ops: Vec<Op>,
    /// The failure seen when the trace was written (informational).
    #[serde(default)]
    pub failure: Option<Failure>,
    /// The trace hash of the run that wrote the file (16 hex digits): a replay of every step
    /// must reproduce it, or the simulator's behaviour drifted.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hash_hex")]
    pub trace_hash: Option<u64>,
    /// Concurrent worlds: the thread that ran each operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<Vec<u8>>,
    /// Concurrent worlds: the schedule, replayed exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Concurrent worlds: where each quiescent point but the last began, as the number of
    /// operations started by then (absent: every `quiesce_every` operations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiesce: Option<Vec<u32>>,
}

/// A concurrent run's scheduling decisions ([`Move`]s), run-length encoded. In JSON, a list
/// of `[move, count]` pairs. A move is an operation's index in `ops` (the thread running
/// that operation takes a step), `"vN"` (vCPU N, running no operation, takes the exit that
/// acknowledges a shootdown) or `"-"` (the default choice: the thread that moved last goes
/// on); prefixed `"@"` it was taken at a preemption point inside the operation of the step
/// before (`"@-"`: the lock holder went on), prefixed `"!"` while that operation's
/// synchronous shootdown waited for acknowledgements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<(Move, u32)>);

/// One run of a schedule as JSON writes it.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum JsonMove {
    Op(u32),
    Mark(String),
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let runs: Vec<(JsonMove, u32)> = self
            .0
            .iter()
            .map(|&(m, n)| {
                let at = match (sched::is_local(m), sched::is_flush(m)) {
                    (false, _) => "",
                    (true, false) => "@",
                    (true, true) => "!",
                };
                let m = match (sched::op_of(m), sched::vcpu_of(m)) {
                    (Some(op), _) if at.is_empty() => JsonMove::Op(op),
                    (Some(op), _) => JsonMove::Mark(format!("{at}{op}")),
                    (_, Some(v)) => JsonMove::Mark(format!("{at}v{v}")),
                    _ => JsonMove::Mark(format!("{at}-")),
                };
                (m, n)
            })
            .collect();
        runs.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let runs: Vec<(JsonMove, u32)> = Vec::deserialize(d)?;
        let mut out = Vec::with_capacity(runs.len());
        for (m, n) in runs {
            let m = match m {
                JsonMove::Op(op) => parse_move(&op.to_string()),
                JsonMove::Mark(s) => parse_move(&s),
            };
            let m = m.ok_or_else(|| {
                serde::de::Error::custom(
                    "schedule: a move is \"-\", an operation index or \"vN\", each optionally after \"@\" or \"!\"",
                )
            })?;
            out.push((m, n));
        }
        Ok(Schedule(out))
    }
}

/// A move as JSON spells it: `[@!](-|N|vN)`.
fn parse_move(s: &str) -> Option<Move> {
    let (local, rest) = match (s.strip_prefix('@'), s.strip_prefix('!')) {
        (Some(rest), _) => (sched::LOCAL, rest),
        (_, Some(rest)) => (sched::LOCAL | sched::FLUSH, rest),
        _ => (0, s),
    };
    let m = match rest {
        "-" => sched::DEFAULT,
        r => match r.strip_prefix('v') {
            Some(v) => sched::with_vcpu(0, v.parse().ok()?),
            None => Some(r.parse::<u32>().ok()?).filter(|&op| op < sched::DEFAULT)?,
        },
    };
    Some(local | m)
}

impl Schedule {
    /// Run-length encodes decisions.
    pub fn encode(decisions: &[Move]) -> Schedule {
        let mut runs: Vec<(Move, u32)> = Vec::new();
        for &d in decisions {
            match runs.last_mut() {
                Some((t, n)) if *t == d && *n < u32::MAX => *n += 1,
                _ => runs.push((d, 1)),
            }
        }
        Schedule(runs)
    }

    /// The decisions.
    pub fn decode(&self) -> Vec<Move> {
        self.0
            .iter()
            .flat_map(|&(t, n)| std::iter::repeat_n(t, n as usize))
            .collect()
    }

    /// Number of decisions.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|&(_, n)| n as u64).sum()
    }

    /// Whether there is no decision.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a trace file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not valid JSON for a trace.
    #[error("{path}: not a pgmsim trace: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// Valid JSON but not a usable trace.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: TraceInvalid,
    },
}

impl Trace {
    /// A trace of `ops` in the world of `config`.
    pub fn new(seed: Option<u64>, check: CheckMode, config: SimConfig, ops: Vec<Op>) -> Trace {
        Trace {
            format: TRACE_FORMAT.into(),
            version: TRACE_VERSION,
            seed,
            check,
            config,
            ops,
            failure: None,
            trace_hash: None,
            threads: None,
            schedule: None,
            quiesce: None,
        }
    }

    /// Parses and validates trace JSON; `path` only names the source in errors.
    pub fn from_json(text: &str, path: &str) -> Result<Trace, TraceError> {
        let t: Trace = serde_json::from_str(text).map_err(|source| TraceError::Parse {
            path: path.into(),
            source,
        })?;
        t.validate().map_err(|reason| TraceError::Invalid {
            path: path.into(),
            reason,
        })?;
        Ok(t)
    }

    /// Checks what serde cannot: format, version, a buildable configuration, and every step
    /// within what the generator guarantees (see [`validate`](self::validate)).
    pub fn validate(&self) -> Result<(), TraceInvalid> {
        if self.format != TRACE_FORMAT {
            return Err(TraceInvalid::Format(self.format.clone()));
        }
        if !READABLE_VERSIONS.contains(&self.version) {
            return Err(TraceInvalid::Version(self.version));
        }
        self.config.validate().map_err(TraceInvalid::Config)?;
        validate::ops(&self.config, &self.ops)?;
        self.validate_concurrency().map_err(TraceInvalid::Concurrency)
    }

    /// A concurrent trace names a valid thread per operation and a bounded schedule.
    fn validate_concurrency(&self) -> Result<(), String> {
        let Some(c) = &self.config.concurrency else {
            return match (&self.threads, &self.schedule, &self.quiesce) {
                (None, None, None) => Ok(()),
                _ => Err(
                    "threads / schedule / quiesce given for a sequential world (no `concurrency` in the config)".into(),
                ),
            };
        };
        let threads = self.config.vcpus as usize + c.devices as usize;
        let owners = self.threads.as_deref().unwrap_or_default();
        if owners.len() != self.ops.len() {
            return Err(format!(
                "threads lists {} threads for {} ops",
                owners.len(),
                self.ops.len()
            ));
        }
        if let Some((i, t)) = owners.iter().enumerate().find(|(_, &t)| t as usize >= threads) {
            return Err(format!("threads[{i}] is {t}, but the world has {threads} threads"));
        }
        for (i, (op, &t)) in self.ops.iter().zip(owners).enumerate() {
            let on_vcpu = t < self.config.vcpus;
            let fits = match *op {
                Op::Access { vcpu, .. } | Op::SwitchCr3 { vcpu, .. } => vcpu == t,
                Op::Map { .. } | Op::Unmap { .. } | Op::Protect { .. } => on_vcpu,
                _ => !on_vcpu,
            };
            if !fits {
                return Err(format!(
                    "ops[{i}] runs on thread {t}, which cannot run it (threads 0..{} are the vCPUs and run their own accesses and guest-kernel edits; the others are device threads and run everything else)",
                    self.config.vcpus
                ));
            }
        }
        if self.schedule.as_ref().is_some_and(|s| s.len() > MAX_SCHEDULE) {
            return Err(format!("the schedule has more than {MAX_SCHEDULE} decisions"));
        }
        let moves = self.schedule.as_ref().map(Schedule::decode).unwrap_or_default();
        for (i, &m) in moves.iter().enumerate() {
            let bad = match (sched::op_of(m), sched::vcpu_of(m)) {
                (Some(op), _) => op as usize >= self.ops.len(),
                (_, Some(v)) => v >= self.config.vcpus,
                _ => false,
            };
            if bad {
                return Err(format!(
                    "schedule decision {i} moves {m:#x}, which is neither an operation of the trace nor a vCPU"
                ));
            }
        }
        let marks = self.quiesce.as_deref().unwrap_or_default();
        if let Some(i) = (1..marks.len()).find(|&i| marks[i] <= marks[i - 1]) {
            return Err(format!(
                "quiesce[{i}] is {}, not above quiesce[{}] = {}",
                marks[i],
                i - 1,
                marks[i - 1]
            ));
        }
        if marks.last().is_some_and(|&m| m as usize > self.ops.len()) {
            return Err(format!(
                "quiesce names operation counts up to {}, but the trace has {} ops",
                marks[marks.len() - 1],
                self.ops.len()
            ));
        }
        Ok(())
    }

    /// Reads a trace file.
    pub fn load(path: &Path) -> Result<Trace, TraceError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: name.clone(),
            source,
        })?;
        Trace::from_json(&text, &name)
    }

    /// Writes the trace (format version [`TRACE_VERSION`], whatever version it was read as).
    pub fn save(&self, path: &Path) -> Result<(), TraceError> {
        let mut w = TraceWriter::create(path, self.seed, self.check, &self.config)?;
        for op in &self.ops {
            w.op(op)?;
        }
        w.set_concurrency(self);
        w.finish(self.failure.as_ref(), self.trace_hash)
    }
}

/// The trace hash as 16 lower-case hex digits (as `--json` prints it); `0x` is accepted.
mod hash_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(h) => s.collect_str(&format_args!("{h:016x}")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let digits = text.trim_start_matches("0x");
        u64::from_str_radix(digits, 16)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("trace_hash {text:?} is not 16 hex digits: {e}")))
    }
}

/// FNV-1a, 64-bit: a stable hash (unlike `DefaultHasher`, whose algorithm may change between
/// Rust releases) so the same run hashes the same on every machine and toolchain.
#[derive(Debug, Clone, Copy)]
pub struct TraceHasher(u64);

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for TraceHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }
    fn write_u32(&mut self, v: u32) {
        self.write(&v.to_le_bytes());
    }
    fn write_u16(&mut self, v: u16) {
        self.write(&v.to_le_bytes());
    }
    fn write_usize(&mut self, v: usize) {
        self.write(&(v as u64).to_le_bytes());
    }
    fn write_isize(&mut self, v: isize) {
        self.write(&(v as i64).to_le_bytes());
    }
}

impl crate::encode::Sink for TraceHasher {
    fn bytes(&mut self, b: &[u8]) {
        Hasher::write(self, b);
    }
}

impl TraceHasher {
    /// Folds one step and its result in, in the encoding of [`crate::encode`].
    pub fn add_step(&mut self, op: &Op, result: &crate::op::StepResult) {
        let mut e = crate::encode::Encoder::new(self);
        e.op(op);
        e.result(result);
    }

    /// Folds in an operation of a concurrent run as it completes: its index, its thread,
    /// the operation and its result.
    pub fn add_concurrent_step(&mut self, index: u32, thread: u8, op: &Op, result: &crate::op::StepResult) {
        let mut e = crate::encode::Encoder::new(self);
        e.concurrent_step(index, thread);
        e.op(op);
        e.result(result);
    }

    /// Folds in a concurrent run's schedule (every decision, in order).
    pub fn add_schedule(&mut self, decisions: &[Move]) {
        crate::encode::Encoder::new(self).schedule(decisions);
    }
}
