//! What a trace's steps may contain: exactly what the generator guarantees, so a replayed
//! failure is always a finding about the manager (or the simulator), never a step the
//! simulator was not built for. A step outside these bounds is bad input (exit code 2)
//! instead of being wrapped around or clamped silently.
//!
//! The generator guarantees, for a world of configuration `c`:
//! * vCPU indices are below `c.vcpus`, address-space indices below `c.address_spaces`,
//!   virtual page indices below `c.va_pages`;
//! * an access is 1, 2, 4 or 8 bytes inside one page of the virtual window or of the
//!   [`BAD_ADDRESS_PAGES`](crate::gen::BAD_ADDRESS_PAGES) pages just past it (a bad address);
//! * the guest kernel never maps a page of its own page-table pool (the first
//!   `c.pt_pool_pages` pages of the first RAM range): the guest edits its page tables only
//!   through map / unmap / protect steps, never by plain writes;
//! * a harvest names a dirty tracker or the one index past them (a harvest that finds no
//!   tracker; with no tracker at all, index 0 or 1);
//! * a bitmap reset allocates at most `MAX_BITMAP_WORDS` words.

use pgmsim::{Gva, PAGE_SHIFT, PAGE_SIZE};
use pgmsim_testkit::call::MAX_BITMAP_WORDS;
use pgmsim_testkit::ApiCall;

use crate::config::{ConfigError, SimConfig};
use crate::mmu::guest_pt::{va_of, vpi_of};
use crate::op::Op;

/// Why a trace is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceInvalid {
    /// Not a pgmsim trace.
    #[error("format is {0:?}, expected \"pgmsim-trace\"")]
    Format(String),
    /// A version this build does not read.
    #[error("version {0} is not supported (this build reads versions 1 and 2)")]
    Version(u32),
    /// The configuration is unusable.
    #[error("config: {0}")]
    Config(ConfigError),
    /// A concurrent trace's threads or schedule are unusable.
    #[error("{0}")]
    Concurrency(String),
    /// A step is outside what the generator produces.
    #[error("ops[{index}] ({name}): {error}")]
    Op {
        /// Index of the step (0-based).
        index: usize,
        /// The step's kind.
        name: &'static str,
        /// What is wrong.
        error: OpError,
    },
}

/// A step outside the generator's guarantees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// No such vCPU.
    #[error("vcpu {vcpu} does not exist (config.vcpus = {vcpus}; indices are 0-based)")]
    Vcpu {
        /// Given.
        vcpu: u8,
        /// Configured.
        vcpus: u8,
    },
    /// No such address space.
    #[error("space {space} does not exist (config.address_spaces = {spaces}; indices are 0-based)")]
    Space {
        /// Given.
        space: u8,
        /// Configured.
        spaces: u8,
    },
    /// Virtual page outside the window.
    #[error("vpi {vpi} is outside the virtual window (config.va_pages = {va_pages})")]
    Vpi {
        /// Given.
        vpi: u32,
        /// Configured.
        va_pages: u32,
    },
    /// The guest would map its own page tables.
    #[error("gp {gp:#x} is a page of the guest's page-table pool ({first:#x}..={last:#x}); the guest never maps it")]
    PoolPage {
        /// Given.
        gp: u64,
        /// First pool byte.
        first: u64,
        /// Last pool byte.
        last: u64,
    },
    /// Not 1, 2, 4 or 8 bytes.
    #[error("size {size} must be 1, 2, 4 or 8")]
    Size {
        /// Given.
        size: u8,
    },
    /// The access crosses a page boundary.
    #[error("va {va:#x} + size {size} crosses a page boundary")]
    CrossesPage {
        /// Given.
        va: u64,
        /// Given.
        size: u8,
    },
    /// The access is outside the virtual window.
    #[error(
        "va {va:#x} is outside the virtual window and the pages just past it, {first:#x}..={last:#x} (config.va_pages)"
    )]
    OutsideWindow {
        /// Given.
        va: u64,
        /// First byte of the window.
        first: u64,
        /// Last byte of the window.
        last: u64,
    },
    /// No such dirty tracker.
    #[error("tracker {tracker} is beyond the {trackers} dirty tracker(s) of this world (at most {}, one past the last)", (*trackers).max(1))]
    Tracker {
        /// Given.
        tracker: u8,
        /// Trackers the world has.
        trackers: usize,
    },
    /// A bitmap larger than a call allocates.
    #[error("words {words} is more than {MAX_BITMAP_WORDS}")]
    BitmapWords {
        /// Given.
        words: u32,
    },
}

/// What the steps are checked against, derived once from the configuration.
struct Bounds {
    vcpus: u8,
    spaces: u8,
    va_pages: u32,
    pool: (u64, u64),
    trackers: usize,
}

impl Bounds {
    fn of(c: &SimConfig) -> Bounds {
        let pool_first = c.layout.ram_ranges.first().map_or(0, |r| r.first);
        Bounds {
            vcpus: c.vcpus,
            spaces: c.address_spaces,
            va_pages: c.va_pages,
            pool: (pool_first, pool_first + ((c.pt_pool_pages as u64) << PAGE_SHIFT) - 1),
            trackers: c.dirty_trackers() as usize,
        }
    }

    fn vcpu(&self, vcpu: u8) -> Result<(), OpError> {
        if vcpu < self.vcpus {
            return Ok(());
        }
        Err(OpError::Vcpu {
            vcpu,
            vcpus: self.vcpus,
        })
    }

    fn page(&self, space: u8, vpi: u32) -> Result<(), OpError> {
        if space >= self.spaces {
            return Err(OpError::Space {
                space,
                spaces: self.spaces,
            });
        }
        if vpi >= self.va_pages {
            return Err(OpError::Vpi {
                vpi,
                va_pages: self.va_pages,
            });
        }
        Ok(())
    }

    fn access(&self, vcpu: u8, va: u64, size: u8) -> Result<(), OpError> {
        self.vcpu(vcpu)?;
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(OpError::Size { size });
        }
        let reach = self.va_pages + crate::gen::BAD_ADDRESS_PAGES;
        if vpi_of(Gva(va), reach).is_none() {
            return Err(OpError::OutsideWindow {
                va,
                first: va_of(0).0,
                last: va_of(reach).0 - 1,
            });
        }
        if (va & (PAGE_SIZE - 1)) + size as u64 > PAGE_SIZE {
            return Err(OpError::CrossesPage { va, size });
        }
        Ok(())
    }

    fn check(&self, op: &Op) -> Result<(), OpError> {
        match *op {
            Op::Map { space, vpi, gp, .. } => {
                self.page(space, vpi)?;
                let (first, last) = self.pool;
                if (first..=last).contains(&gp) {
                    return Err(OpError::PoolPage { gp, first, last });
                }
                Ok(())
            }
            Op::Unmap { space, vpi } | Op::Protect { space, vpi, .. } => self.page(space, vpi),
            Op::SwitchCr3 { vcpu, space } => {
                self.vcpu(vcpu)?;
                self.page(space, 0)
            }
            Op::Access { vcpu, va, size, .. } => self.access(vcpu, va, size),
            Op::Harvest { tracker } if tracker as usize > self.trackers.max(1) => Err(OpError::Tracker {
                tracker,
                trackers: self.trackers,
            }),
            Op::Call(ApiCall::ResetMmio2WithBitmap { words, .. }) if words > MAX_BITMAP_WORDS => {
                Err(OpError::BitmapWords { words })
            }
            _ => Ok(()),
        }
    }
}

/// Checks every step of a trace in the world of `config`.
pub(super) fn ops(config: &SimConfig, ops: &[Op]) -> Result<(), TraceInvalid> {
    let bounds = Bounds::of(config);
    for (index, op) in ops.iter().enumerate() {
        bounds.check(op).map_err(|error| TraceInvalid::Op {
            index,
            name: op.name(),
            error,
        })?;
    }
    Ok(())
}
