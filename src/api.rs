//! The operation set shared by the production manager and the reference model, so tests,
//! the simulator and the fuzz targets can drive either, or both in lock-step; and the
//! configuration both are built from.

use crate::addr::Hpa;
use crate::error::{Error, OpResult};
use crate::handler::{HandlerId, HandlerInfo, HandlerTypeConfig, HandlerTypeHandle, NodeInfo};
use crate::layout::{LayoutError, MemoryLayout, Mmio2Handle};
use crate::page::PageDescriptor;

/// Whether the VM runs with native execution (NEM) and how far that goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum NemMode {
    /// Shadow paging: no NEM notifications.
    #[default]
    Off,
    /// NEM is enabled: the manager sends NEM notifications.
    Notify,
    /// The VM runs in exclusive NEM mode: notifications, and aliasing is not supported.
    Exclusive,
}

impl NemMode {
    /// Whether NEM notifications are sent.
    pub const fn notifies(self) -> bool {
        !matches!(self, NemMode::Off)
    }
}

/// Smallest handler capacity accepted.
pub const MIN_HANDLERS: u32 = 32;
/// Largest handler capacity accepted.
pub const MAX_HANDLERS: u32 = 65536;
/// The original's default handler capacity.
pub const DEFAULT_HANDLERS: u32 = 6144;

/// Manager configuration besides the memory layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ManagerConfig {
    /// Handler capacity, in `[32, 65536]`; rounded up to a multiple of 16.
    pub max_handlers: u32,
    /// NEM mode.
    pub nem: NemMode,
    /// Salt of the handler-type handles' check bits.
    pub type_salt: u64,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            max_handlers: DEFAULT_HANDLERS,
            nem: NemMode::Off,
            type_salt: 0x93b7_557e_1937_aa00,
        }
    }
}

impl ManagerConfig {
    /// The capacity actually used: validated and rounded up to a multiple of 16 (the
    /// original's allocator works in 16-node chunks; small capacities: deliberate difference
    /// D13, semantics §2.2).
    pub fn capacity(&self) -> Result<u32, SetupError> {
        if !(MIN_HANDLERS..=MAX_HANDLERS).contains(&self.max_handlers) {
            return Err(SetupError::Capacity {
                max_handlers: self.max_handlers,
            });
        }
        Ok(self.max_handlers.div_ceil(16) * 16)
    }
}

/// Why a manager (or a model) could not be built: bad configuration, never a bug.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupError {
    /// The memory layout is malformed.
    #[error("bad layout: {0}")]
    Layout(#[from] LayoutError),
    /// The handler capacity is outside `[MIN_HANDLERS, MAX_HANDLERS]`.
    #[error("max_handlers {max_handlers} must be in {MIN_HANDLERS}..={MAX_HANDLERS}")]
    Capacity {
        /// The value given.
        max_handlers: u32,
    },
}

/// The physical access handler API, implemented by the production [`crate::Manager`] and by
/// the reference model (`docs/semantics.md` §3 describes every operation).
///
/// Every operation returns `Result<Status, Error>` (or a plain answer for queries), never
/// panics, and changes nothing when it fails. Operations naming a handler take its exact start
/// address; queries take any address inside it.
pub trait PhysHandlerApi {
    /// Registers a handler type (`PGMR3HandlerPhysicalTypeRegister`); at most 32.
    fn register_type(&mut self, config: HandlerTypeConfig) -> Result<HandlerTypeHandle, Error>;
    /// Creates an unregistered handler (`pgmHandlerPhysicalExCreate`).
    fn create(&mut self, ty: HandlerTypeHandle, user: u64, description: Option<&str>) -> Result<HandlerId, Error>;
    /// Duplicates an unregistered or registered handler's type, user and description
    /// (`pgmHandlerPhysicalExDup`).
    fn dup(&mut self, source: HandlerId) -> Result<HandlerId, Error>;
    /// Registers an existing handler over `[first, last]` (`pgmHandlerPhysicalExRegister`).
    fn register_ex(&mut self, id: HandlerId, first: u64, last: u64) -> OpResult;
    /// Creates and registers a handler (`PGMHandlerPhysicalRegister`).
    fn register(
        &mut self,
        first: u64,
        last: u64,
        ty: HandlerTypeHandle,
        user: u64,
        description: Option<&str>,
    ) -> OpResult;
    /// Deregisters a handler, keeping its node (`pgmHandlerPhysicalExDeregister`).
    fn deregister_ex(&mut self, id: HandlerId) -> OpResult;
    /// Frees an unregistered handler (`pgmHandlerPhysicalExDestroy`).
    fn destroy(&mut self, id: HandlerId) -> OpResult;
    /// Deregisters and frees the handler starting at `addr` (`PGMHandlerPhysicalDeregister`).
    fn deregister(&mut self, addr: u64) -> OpResult;
    /// Changes the user argument (`PGMHandlerPhysicalChangeUserArg`).
    fn change_user_arg(&mut self, addr: u64, user: u64) -> OpResult;
    /// Re-arms temp-off pages or undoes every alias (`PGMHandlerPhysicalReset`).
    fn reset(&mut self, addr: u64) -> OpResult;
    /// Re-arms a Write handler, setting bit `offset + page index` for every page re-armed
    /// (`pgmHandlerPhysicalResetMmio2WithBitmap`).
    fn reset_mmio2_with_bitmap(&mut self, addr: u64, bitmap: &mut [u64], offset: u32) -> OpResult;
    /// Turns monitoring off for one page (`PGMHandlerPhysicalPageTempOff`).
    fn page_temp_off(&mut self, addr: u64, page: u64) -> OpResult;
    /// Turns monitoring off for one page of the handler node `id`: how a callback names the
    /// handler it was called for (semantics §3.16).
    fn page_temp_off_ex(&mut self, id: HandlerId, page: u64) -> OpResult;
    /// Backs one MMIO page by an MMIO2 page (`PGMHandlerPhysicalPageAliasMmio2`).
    fn page_alias_mmio2(&mut self, addr: u64, page: u64, region: Mmio2Handle, offset: u64) -> OpResult;
    /// Backs one MMIO page by a host page (`PGMHandlerPhysicalPageAliasHC`).
    fn page_alias_hc(&mut self, addr: u64, page: u64, host: Hpa) -> OpResult;
    /// Turns an aliased page back into an MMIO page (`pgmHandlerPhysicalResetAliasedPage`).
    fn reset_aliased_page(&mut self, page: u64, accounting: bool) -> OpResult;
    /// Resets every aliased page with accounting, as the VM-reset path does.
    fn vm_reset(&mut self) -> OpResult;
    /// Whether a handler contains `addr` (`PGMHandlerPhysicalIsRegistered`).
    fn is_registered(&self, addr: u64) -> bool;
    /// Whether the handler containing `addr` is not a Write handler (`pgmHandlerPhysicalIsAll`).
    fn is_all(&self, addr: u64) -> Result<bool, Error>;
    /// The handler containing `addr`.
    fn lookup(&self, addr: u64) -> Option<HandlerInfo>;
    /// The fields of an allocated handler node, registered or not.
    fn handler_info(&self, id: HandlerId) -> Result<NodeInfo, Error>;
    /// Registered handlers in ascending address order.
    fn handlers(&self) -> Vec<HandlerInfo>;
    /// Number of allocated handler nodes (registered or not).
    fn live_handlers(&self) -> u32;
    /// The descriptor of the page containing `addr` (RAM ranges only).
    fn page(&self, addr: u64) -> Option<PageDescriptor>;
    /// The memory layout the manager was built with.
    fn layout(&self) -> &MemoryLayout;
    /// The configuration of a handler type.
    fn type_config(&self, ty: HandlerTypeHandle) -> Result<HandlerTypeConfig, Error>;
}
