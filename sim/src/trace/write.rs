//! Writing trace files as a stream: the header (format, version, seed, check mode,
//! configuration) first, then one operation per line as the run applies it, then the
//! failure and the trace hash. Memory stays flat however long the run; the file is written
//! under a temporary name and renamed when finished, so a killed run leaves no truncated
//! trace behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Schedule, TraceError, TRACE_FORMAT, TRACE_VERSION};
use crate::check::{CheckMode, Failure};
use crate::config::SimConfig;
use crate::op::Op;

/// A trace file being written.
pub struct TraceWriter {
    out: BufWriter<File>,
    path: PathBuf,
    partial: PathBuf,
    ops: u64,
    threads: Option<Vec<u8>>,
    schedule: Option<Schedule>,
    quiesce: Option<Vec<u32>>,
}

#[derive(Serialize)]
struct Header<'a> {
    format: &'a str,
    version: u32,
    seed: Option<u64>,
    check: CheckMode,
    config: &'a SimConfig,
}

#[derive(Serialize)]
struct Trailer<'a> {
    failure: Option<&'a Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threads: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<Schedule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quiesce: Option<Vec<u32>>,
}

impl TraceWriter {
    /// Starts `path` (its directory is created): writes the header.
    pub fn create(
        path: &Path,
        seed: Option<u64>,
        check: CheckMode,
        config: &SimConfig,
    ) -> Result<TraceWriter, TraceError> {
        let io = |source| TraceError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        let partial = path.with_file_name(name);
        let mut out = BufWriter::new(File::create(&partial).map_err(io)?);
        let header = serde_json::to_string_pretty(&Header {
            format: TRACE_FORMAT,
            version: TRACE_VERSION,
            seed,
            check,
            config,
        })
        .expect("headers serialise");
        // `{ …fields… }` without its closing brace, then the operation list opens.
        let open = header
            .strip_suffix("\n}")
            .expect("a pretty JSON object ends with a brace");
        write!(out, "{open},\n  \"ops\": [").map_err(io)?;
        Ok(TraceWriter {
            out,
            path: path.to_path_buf(),
            partial,
            ops: 0,
            threads: None,
            schedule: None,
            quiesce: None,
        })
    }

    fn io(&self, source: std::io::Error) -> TraceError {
        TraceError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Appends one operation.
    pub fn op(&mut self, op: &Op) -> Result<(), TraceError> {
        let sep = if self.ops == 0 { "\n    " } else { ",\n    " };
        let line = serde_json::to_string(op).expect("steps serialise");
        self.ops += 1;
        write!(self.out, "{sep}{line}").map_err(|e| self.io(e))
    }

    /// A concurrent run's thread per operation, schedule and quiescent points, written with
    /// the trailer.
    pub fn set_concurrency(&mut self, t: &super::Trace) {
        self.threads = t.threads.clone();
        self.schedule = t.schedule.clone();
        self.quiesce = t.quiesce.clone();
    }

    /// Operations written so far.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Closes the list, writes the failure and the trace hash, and moves the file into place.
    pub fn finish(mut self, failure: Option<&Failure>, trace_hash: Option<u64>) -> Result<(), TraceError> {
        let trailer = serde_json::to_string_pretty(&Trailer {
            failure,
            trace_hash: trace_hash.map(|h| format!("{h:016x}")),
            threads: self.threads.take(),
            schedule: self.schedule.take(),
            quiesce: self.quiesce.take(),
        })
        .expect("trailers serialise");
        let fields = trailer
            .strip_prefix('{')
            .expect("a pretty JSON object starts with a brace");
        let close = if self.ops == 0 { "]" } else { "\n  ]" };
        writeln!(self.out, "{close},{fields}").map_err(|e| self.io(e))?;
        self.out.flush().map_err(|e| self.io(e))?;
        std::fs::rename(&self.partial, &self.path).map_err(|e| self.io(e))
    }
}

impl Drop for TraceWriter {
    fn drop(&mut self) {
        // Unfinished (an error, or the run was abandoned): no half-written file remains.
        let _ = std::fs::remove_file(&self.partial);
    }
}
