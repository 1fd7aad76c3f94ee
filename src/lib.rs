//! # pgmsim: a guest-physical access handler manager
//!
//! A Rust re-implementation of VirtualBox's PGM physical access handlers: the part of a VMM
//! that lets devices watch guest-physical memory (MMIO, write monitoring, dirty-page
//! tracking, MMIO2 aliasing). It keeps, for every guest page, a packed descriptor with the
//! page's handler state, and a bounded set of handlers in a range tree; every change it makes
//! to what the guest may do is reported to a [`Platform`] (shadow page tables, TLBs, NEM).
//!
//! The semantics follow the original (`PGMAllHandler.cpp`) line by line; `docs/semantics.md`
//! in the repository describes every operation, its validation order, the numbered
//! deliberate differences (D1, D2, ...) and the invariants. Every operation returns
//! `Result<Status, Error>`, never panics on any input, and changes nothing when it fails. A
//! broken *internal* invariant is different: see [`invariant`](crate::Manager#invariants).
//!
//! | original function | method |
//! |---|---|
//! | `pgmHandlerPhysicalExCreate` / `ExDup` | [`Manager::create`] / [`Manager::dup`] |
//! | `pgmHandlerPhysicalExRegister` / `PGMHandlerPhysicalRegister` | [`Manager::register_ex`] / [`Manager::register`] |
//! | `pgmHandlerPhysicalExDeregister` / `ExDestroy` / `PGMHandlerPhysicalDeregister` | [`Manager::deregister_ex`] / [`Manager::destroy`] / [`Manager::deregister`] |
//! | `PGMHandlerPhysicalChangeUserArg` | [`Manager::change_user_arg`] |
//! | `PGMHandlerPhysicalReset` / `pgmHandlerPhysicalResetMmio2WithBitmap` | [`Manager::reset`] / [`Manager::reset_mmio2_with_bitmap`] |
//! | `PGMHandlerPhysicalPageTempOff` | [`Manager::page_temp_off`] |
//! | `PGMHandlerPhysicalPageAliasMmio2` / `PageAliasHC` | [`Manager::page_alias_mmio2`] / [`Manager::page_alias_hc`] |
//! | `pgmHandlerPhysicalResetAliasedPage` (+ VM reset) | [`Manager::reset_aliased_page`] / [`Manager::vm_reset`] |
//! | `PGMHandlerPhysicalIsRegistered` / `pgmHandlerPhysicalIsAll` | [`Manager::is_registered`] / [`Manager::is_all`] |
//! | `PGMAssertHandlerAndFlagsInSync` | [`Manager::check_sync`] |
//!
//! ```
//! use pgmsim::{HandlerKind, HandlerTypeConfig, Manager, MemoryLayout, Status};
//!
//! let layout = MemoryLayout::builder().ram(0, 16).build().unwrap();
//! let mut pgm = Manager::with_layout(layout).unwrap();
//! let ty = pgm.register_type(HandlerTypeConfig::new(HandlerKind::Write, "framebuffer")).unwrap();
//! assert_eq!(pgm.register(0x2000, 0x3fff, ty, 7, None), Ok(Status::Success));
//! assert!(pgm.is_registered(0x2abc));
//! assert!(pgm.check_sync().is_empty());
//! ```
//!
//! Features: `serde` (serialisation of the plain data types), `arbitrary` (fuzzing),
//! `testing` (corruption injection and the state digest, for tests), `paranoid` (re-verify
//! every touched invariant after each operation; on in the simulator and the fuzz targets).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod api;
pub mod check;
pub mod error;
pub mod handler;
mod invariant;
pub mod layout;
pub mod manager;
mod memory;
mod ops;
pub mod page;
mod paranoid;
pub mod platform;
#[cfg(feature = "testing")]
pub mod testing;

pub use addr::{Gpa, Gva, Hpa, PAGE_OFFSET_MASK, PAGE_SHIFT, PAGE_SIZE};
pub use api::{ManagerConfig, NemMode, PhysHandlerApi, SetupError};
pub use check::Mismatch;
pub use error::{Error, OpResult, Status};
pub use handler::{HandlerId, HandlerInfo, HandlerKind, HandlerSpan, HandlerTypeConfig, HandlerTypeHandle, NodeInfo};
pub use invariant::LOOP_BOUND_EXCEEDED;
pub use layout::{LayoutError, MemoryLayout, Mmio2Handle, RangeKind};
pub use manager::Manager;
pub use page::{HandlerState, NemProtection, PageDescriptor, PageState, PageType, PageView};
pub use platform::{NoopPlatform, Platform, PlatformEvent, ShadowUpdate};
