//! How the manager treats its own broken invariants (never the caller's bad arguments,
//! which are ordinary [`Error`]s).
//!
//! An internal inconsistency means a bug or memory corruption, so it must be loud where it
//! happens rather than surface many operations later. Every operation is split in two
//! phases: a *validation* phase that only reads and checks everything the operation will
//! rely on, and an *apply* phase that cannot fail. A broken invariant found while
//! validating ([`ensure!`]) panics at that line in debug, test and fuzz builds (and with the
//! `paranoid` feature), and in release builds makes the operation return
//! [`Error::Internal`] having changed nothing. The apply phase only re-asserts what
//! validation proved ([`expect_invariant!`]): loudly in the same builds, silently (and
//! harmlessly, because validation already proved it) in release.
//!
//! Loops follow the same rule (TigerBeetle's: every loop has a fixed upper bound). A `for`
//! over a slice or a range is bounded by construction; every other loop (`loop`, `while`, a
//! recursive descent) states its bound beside it and asserts it: running past the bound is a
//! broken invariant ([`ensure_bound!`] in a validation phase, [`loop_bound_exceeded`] where
//! the function cannot fail, after which the loop stops). The panic message starts with
//! [`LOOP_BOUND_EXCEEDED`], so a harness can tell a would-be hang from other broken
//! invariants (the simulator reports it as a `hang` failure).
//!
//! This is deliberate difference D7 (semantics §5). The invariants themselves are listed in
//! one place, on [`crate::Manager`] (semantics §6.1).

use crate::error::Error;

/// Whether a broken invariant panics where it breaks.
pub(crate) const PANIC_ON_BROKEN: bool = cfg!(any(debug_assertions, feature = "paranoid"));

/// Reports a broken invariant found while validating: a panic at the caller's line when
/// [`PANIC_ON_BROKEN`], else `Err(Error::Internal)`.
#[track_caller]
#[cold]
pub(crate) fn broken(what: std::fmt::Arguments<'_>) -> Result<(), Error> {
    if PANIC_ON_BROKEN {
        panic!("pgmsim: internal invariant broken: {what}");
    }
    Err(Error::Internal)
}

/// The prefix of the panic message of a loop that ran past its stated bound: a loop that
/// would otherwise never end (a walk that does not advance, a cycle in a linked structure).
pub const LOOP_BOUND_EXCEEDED: &str = "pgmsim: loop bound exceeded";

/// Reports a loop that ran past its stated bound: a panic at the caller's line (message
/// prefixed with [`LOOP_BOUND_EXCEEDED`]) when [`PANIC_ON_BROKEN`], else nothing (the caller
/// stops the loop; a validation phase returns `Err(Error::Internal)`, see [`ensure_bound!`]).
#[track_caller]
#[cold]
pub(crate) fn loop_bound_exceeded(what: std::fmt::Arguments<'_>) {
    if PANIC_ON_BROKEN {
        panic!("{LOOP_BOUND_EXCEEDED}: {what}");
    }
}

/// `ensure_bound!(cond, "what", args..)`: in a validation phase, asserts a loop's stated
/// bound (`cond`: the loop is still within it); returns `Err(Error::Internal)` from the
/// enclosing function, or panics here with [`LOOP_BOUND_EXCEEDED`], unless it holds.
macro_rules! ensure_bound {
    ($cond:expr, $($what:tt)+) => {
        if !($cond) {
            $crate::invariant::loop_bound_exceeded(format_args!($($what)+));
            return Err($crate::error::Error::Internal);
        }
    };
}

/// `ensure!(cond, "what", args..)`: in a validation phase, returns `Err(Error::Internal)`
/// from the enclosing function (or panics here, see the module docs) unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($what:tt)+) => {
        if !($cond) {
            $crate::invariant::broken(format_args!($($what)+))?;
        }
    };
}

/// `expect_invariant!(cond, "what", args..)`: in an apply phase, re-asserts what validation
/// proved; panics where it breaks when [`PANIC_ON_BROKEN`].
macro_rules! expect_invariant {
    ($cond:expr, $($what:tt)+) => {
        if $crate::invariant::PANIC_ON_BROKEN && !($cond) {
            panic!("pgmsim: internal invariant broken: {}", format_args!($($what)+));
        }
    };
}

pub(crate) use {ensure, ensure_bound, expect_invariant};
