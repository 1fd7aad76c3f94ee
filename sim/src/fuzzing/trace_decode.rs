//! `trace_decode`: arbitrary bytes as a trace file. The decoder must answer an error or a
//! valid trace that survives a serialise / parse round trip; a small enough valid trace is
//! replayed too (a replay may break an invariant, but must not panic).

use crate::run::replay;
use crate::trace::Trace;

/// Most operations `trace_decode` replays of a decoded trace.
pub const MAX_DECODE_REPLAY_OPS: usize = 64;
/// Largest guest (in pages) `trace_decode` replays: bigger worlds are valid but slow to build,
/// which would only make the target slow, not find more.
pub const MAX_DECODE_REPLAY_PAGES: u64 = 1 << 14;

/// Decodes arbitrary bytes as a trace file: the decoder must return an error or a valid trace
/// that survives a serialise / parse round trip; a small enough valid trace is also replayed
/// (a replay that breaks an invariant is fine; a panic is a bug). `Err` describes a broken
/// promise of the decoder.
pub fn trace_decode(bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    let Ok(mut trace) = Trace::from_json(&text, "fuzz") else {
        return Ok(());
    };
    trace
        .validate()
        .map_err(|e| format!("from_json accepted a trace validate rejects: {e}"))?;
    let json = serde_json::to_string(&trace).map_err(|e| format!("a decoded trace does not serialise: {e}"))?;
    let again = Trace::from_json(&json, "fuzz").map_err(|e| format!("a decoded trace does not round-trip: {e}"))?;
    if again != trace {
        return Err("a decoded trace changes in a serialise / parse round trip".into());
    }
    if trace.config.layout.total_pages() <= MAX_DECODE_REPLAY_PAGES {
        trace.ops.truncate(MAX_DECODE_REPLAY_OPS);
        let _ = replay(&trace, trace.check);
    }
    Ok(())
}
