//! Printing that survives a closed pipe: `pgmsim run | head -c 1` or `pgmsim sweep | true`
//! must end quietly, not panic the way `println!` does. Once a stream is closed, further
//! writes to it are dropped; the command finishes and exits with its own status.

use std::fmt::Arguments;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

fn write_line(closed: &AtomicBool, w: &mut dyn Write, args: Arguments) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    if w.write_fmt(args)
        .and_then(|()| w.write_all(b"\n"))
        .and_then(|()| w.flush())
        .is_err()
    {
        // A closed pipe or a full disk: nothing sensible can be printed about it.
        closed.store(true, Ordering::Relaxed);
    }
}

/// One line on standard output.
pub(crate) fn out(args: Arguments) {
    write_line(&STDOUT_CLOSED, &mut std::io::stdout().lock(), args);
}

/// One line on standard error.
pub(crate) fn err(args: Arguments) {
    write_line(&STDERR_CLOSED, &mut std::io::stderr().lock(), args);
}

/// `println!` that ends quietly on a closed pipe.
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::out::out(format_args!($($t)*)) };
}

/// `eprintln!` that ends quietly on a closed pipe.
macro_rules! errln {
    ($($t:tt)*) => { $crate::cli::out::err(format_args!($($t)*)) };
}

pub(crate) use {errln, outln};
