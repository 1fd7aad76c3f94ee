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

pub(crate) use {ensure, expect_invariant};
