//! The last resort against a step that never ends: a wall-clock watchdog.
//!
//! Hangs are first caught deterministically: every loop in the production manager has a
//! stated bound that is asserted, and a loop that passes it panics with
//! [`pgmsim::LOOP_BOUND_EXCEEDED`], which the run loop reports as [`Invariant::Hang`] at the
//! step it happened in (same seed, same step, every time; a shrink replays it like any other
//! failure). What is left is a loop outside the bounded ones — in the model, the simulator's
//! own MMU or devices, a platform that never returns. For those, a command run with
//! `--step-timeout S` (on by default in the CLI, off in the library) runs the world on a
//! worker thread and watches a heartbeat the run loop bumps at every step (and before the
//! final full check): a step that makes no progress for `S` seconds becomes a `Hang` failure
//! at that step. Building the world is not watched: the clock starts at the first beat.
//!
//! A thread stuck in a loop cannot be killed, so it is *abandoned*: it keeps its world (and,
//! if it spins, a core) until the process exits. The watchdog then reruns the steps before
//! the stuck one on a fresh thread (they completed before, so they complete again; this
//! rerun is watched too) to recover the trace up to and including the stuck step, its
//! counters and trace hash, so the failure is written, reported and shrunk like any other.
//! `run` and `replay` report and exit; a sweep records the seed and moves on to the next
//! one (with `--keep-going`, past it); `shrink` counts a candidate that hangs as failing
//! with `Hang`, and stops judging candidates once it has left eight threads stuck (each may
//! spin on a core; more would slow every later replay until it too looked hung). Every
//! candidate that hangs costs one budget of wall clock, so shrinking a watchdog hang is slow:
//! pass a smaller `--step-timeout` to `shrink` when steps are known to be fast. The wall clock decides only *whether* a step is declared hung, never what a
//! completed run reports, and the budget is generous (a normal step takes microseconds).
//! Concurrent worlds bump the heartbeat at every operation; their trace cannot be cut at
//! the stuck operation (a seeded run's operations are only known at its end), so a hang
//! there is reported with the seed's configuration and no operations (rerun the seed), or
//! with the whole replayed trace.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[cfg(doc)]
use crate::check::Invariant;

/// Progress of one watched run.
#[derive(Debug, Default)]
struct Pulse {
    /// Bumped at every beat.
    beats: AtomicU64,
    /// The step under way at the last beat.
    step: AtomicU64,
}

thread_local! {
    /// The pulse of the watched run on this thread, if any.
    static PULSE: RefCell<Option<Arc<Pulse>>> = const { RefCell::new(None) };
}

/// Threads abandoned in a hung step so far, in this process.
static ABANDONED: AtomicU64 = AtomicU64::new(0);

/// Threads abandoned in a hung step so far (each keeps its world, and a core if it spins,
/// until the process exits; a shrink stops judging candidates after a few).
pub fn abandoned_threads() -> u64 {
    ABANDONED.load(Ordering::Relaxed)
}

/// The process-wide step budget in milliseconds (0: no watchdog).
static STEP_TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);

/// Sets the step budget of every watched run from now on (`None`: runs are not watched, and
/// run inline on the caller's thread). The CLI sets it from `--step-timeout`.
pub fn set_step_timeout(limit: Option<Duration>) {
    let ms = limit.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
    STEP_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// The step budget, if runs are watched.
pub fn step_timeout() -> Option<Duration> {
    match STEP_TIMEOUT_MS.load(Ordering::Relaxed) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// Marks progress: step `step` (0-based) is under way. Free when the run is not watched
/// (one thread-local read).
#[inline]
pub(crate) fn beat(step: u64) {
    PULSE.with_borrow(|p| {
        if let Some(p) = p {
            p.beats.fetch_add(1, Ordering::Relaxed);
            p.step.store(step, Ordering::Relaxed);
        }
    });
}

/// What a watched run came to.
pub(crate) enum Watched<T> {
    /// It finished (failing or not).
    Done(T),
    /// Step `step` made no progress for the budget; its thread is abandoned.
    Hung {
        /// The step under way.
        step: u64,
        /// The budget it exceeded.
        limit: Duration,
    },
}

/// Runs `f` on a worker thread watched by the step budget, or inline when there is none.
/// A panic that escapes `f` (the run loops catch their own) is resumed on this thread.
pub(crate) fn watch<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Watched<T> {
    let Some(limit) = step_timeout() else {
        return Watched::Done(f());
    };
    let pulse = Arc::new(Pulse::default());
    let (tx, rx) = mpsc::channel();
    let theirs = Arc::clone(&pulse);
    let worker = std::thread::Builder::new()
        .name("pgmsim-run".into())
        // As much stack as a main thread gets.
        .stack_size(8 << 20)
        .spawn(move || {
            PULSE.set(Some(theirs));
            let _ = tx.send(f());
        });
    let worker = match worker {
        Ok(w) => w,
        Err(e) => panic!("pgmsim: cannot start a watched run thread: {e}"),
    };
    // Looks four times per budget, so a hang is declared between 1 and 1.25 budgets after
    // the last beat. The clock starts at the first beat: building the world is not watched
    // (its work is bounded by the validated layout, and the largest guest takes longer than
    // a step budget in a debug build).
    let look = (limit / 4).max(Duration::from_millis(1));
    let mut seen = 0;
    let mut since = Instant::now();
    loop {
        match rx.recv_timeout(look) {
            Ok(t) => return Watched::Done(t),
            Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("a run thread that returned has sent its result"),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let beats = pulse.beats.load(Ordering::Relaxed);
                if beats == 0 {
                    continue;
                }
                if beats != seen {
                    seen = beats;
                    since = Instant::now();
                } else if since.elapsed() >= limit {
                    ABANDONED.fetch_add(1, Ordering::Relaxed);
                    return Watched::Hung {
                        step: pulse.step.load(Ordering::Relaxed),
                        limit,
                    };
                }
            }
        }
    }
}

/// Whether `f` is a hang the watchdog declared (replaying its trace would hang again, so
/// whatever replays it unwatched — a step log, an HTML report — must not).
pub fn declared_by_watchdog(f: &crate::check::Failure) -> bool {
    f.invariant == crate::check::Invariant::Hang && f.detail.contains(WATCHDOG_MARK)
}

/// What the detail of every watchdog hang contains.
const WATCHDOG_MARK: &str = "(--step-timeout)";

/// The failure detail of a watchdog hang (no wall-clock figure but the budget, so it is the
/// same every time).
pub(crate) fn detail(step: u64, limit: Duration) -> String {
    format!(
        "step {step} made no progress for {}s {WATCHDOG_MARK}: a loop outside the manager's bounded ones; its thread was abandoned",
        limit.as_secs_f64()
    )
}
