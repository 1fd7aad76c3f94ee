//! Traces: a run as JSON (configuration + operation list), self-contained so replaying needs
//! no seed and no generator, and the trace hash that fingerprints a run.

use std::hash::Hasher;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::check::{CheckMode, Failure};
use crate::config::SimConfig;
use crate::op::Op;

/// Most scheduling decisions a trace may carry (a bound on what replaying it allocates).
pub const MAX_SCHEDULE: u64 = 1 << 26;

/// Format marker of trace files.
pub const TRACE_FORMAT: &str = "pgmsim-trace";
/// Current trace version.
pub const TRACE_VERSION: u32 = 1;

/// A replayable run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Always [`TRACE_FORMAT`].
    pub format: String,
    /// [`TRACE_VERSION`].
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
    /// Concurrent worlds: the thread that ran each operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<Vec<u8>>,
    /// Concurrent worlds: the schedule, replayed exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

/// A concurrent run's scheduling decisions, run-length encoded: `[thread, count]` pairs
/// (thread 255: "the lock holder went on" at a preemption point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule(pub Vec<(u8, u32)>);

impl Schedule {
    /// Run-length encodes decisions.
    pub fn encode(decisions: &[u8]) -> Schedule {
        let mut runs: Vec<(u8, u32)> = Vec::new();
        for &d in decisions {
            match runs.last_mut() {
                Some((t, n)) if *t == d && *n < u32::MAX => *n += 1,
                _ => runs.push((d, 1)),
            }
        }
        Schedule(runs)
    }

    /// The decisions.
    pub fn decode(&self) -> Vec<u8> {
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
        reason: String,
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
            threads: None,
            schedule: None,
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

    /// Checks what serde cannot: format, version and a buildable configuration.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != TRACE_FORMAT {
            return Err(format!("format is {:?}, expected {TRACE_FORMAT:?}", self.format));
        }
        if self.version != TRACE_VERSION {
            return Err(format!(
                "version {} is not supported (this build reads {TRACE_VERSION})",
                self.version
            ));
        }
        self.config.validate()?;
        self.validate_concurrency()
    }

    /// A concurrent trace names a valid thread per operation and a bounded schedule.
    fn validate_concurrency(&self) -> Result<(), String> {
        let Some(c) = &self.config.concurrency else {
            return match (&self.threads, &self.schedule) {
                (None, None) => Ok(()),
                _ => Err("threads / schedule given for a sequential world (no `concurrency` in the config)".into()),
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
        if self.schedule.as_ref().is_some_and(|s| s.len() > MAX_SCHEDULE) {
            return Err(format!("the schedule has more than {MAX_SCHEDULE} decisions"));
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

    /// Writes the trace as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), TraceError> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|source| TraceError::Io {
                    path: name.clone(),
                    source,
                })?;
            }
        }
        let text = serde_json::to_string_pretty(self).expect("traces always serialise");
        std::fs::write(path, text + "\n").map_err(|source| TraceError::Io { path: name, source })
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
    pub fn add_schedule(&mut self, decisions: &[u8]) {
        crate::encode::Encoder::new(self).schedule(decisions);
    }
}
