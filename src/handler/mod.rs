//! Handlers: kinds and types, the bounded allocator, the range tree, and the plain
//! [`HandlerInfo`] view every crate compares.

pub mod alloc;
pub mod kind;
pub mod tree;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use alloc::{HandlerId, HandlerRecord, HandlerSlab};
pub use kind::{HandlerKind, HandlerTypeConfig, HandlerTypeHandle, TypeTable, MAX_HANDLER_TYPES};
pub use tree::{RangeTree, TreeFault};

/// Where a registered handler is and what it traps, without its description: the cheap view
/// for callers that walk the handler layout often (generators, checkers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HandlerSpan {
    /// First byte.
    pub key: u64,
    /// Last byte, inclusive.
    pub key_last: u64,
    /// Kind of the type.
    pub kind: HandlerKind,
    /// The type's not-in-HM flag.
    pub not_in_hm: bool,
}

/// A plain copy of one handler's public fields, as listed by `handlers()` and `lookup()`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HandlerInfo {
    /// First byte ([`crate::addr::NIL_GC_PHYS`] if not registered).
    pub key: u64,
    /// Last byte, inclusive.
    pub key_last: u64,
    /// Pages touched, partial edge pages included.
    pub page_count: u32,
    /// Aliased pages.
    pub aliased_pages: u32,
    /// Temporarily-off pages.
    pub temp_off_pages: u32,
    /// Type handle.
    pub ty: HandlerTypeHandle,
    /// Kind of the type.
    pub kind: HandlerKind,
    /// User argument.
    pub user: u64,
    /// Description.
    pub description: Arc<str>,
}
