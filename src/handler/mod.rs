//! Handlers: kinds and types, the bounded allocator, the range tree, and the plain views
//! ([`HandlerInfo`], [`NodeInfo`], [`HandlerSpan`]) every crate compares.

pub(crate) mod alloc;
pub mod kind;
pub(crate) mod tree;

use std::sync::Arc;

pub use alloc::HandlerId;
pub(crate) use alloc::{HandlerRecord, HandlerSlab, Registration};
pub(crate) use kind::TypeTable;
pub use kind::{HandlerKind, HandlerTypeConfig, HandlerTypeHandle, MAX_HANDLER_TYPES};
pub(crate) use tree::RangeTree;
pub use tree::TreeFault;

/// Where a registered handler is and what it traps, without its description: the cheap view
/// for callers that walk the handler layout often (generators, checkers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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

/// A plain copy of one registered handler's public fields, as listed by `handlers()` and
/// `lookup()`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HandlerInfo {
    /// First byte.
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

/// A handler node, registered or not, as `handler_info(id)` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NodeInfo {
    /// Type handle.
    pub ty: HandlerTypeHandle,
    /// Kind of the type.
    pub kind: HandlerKind,
    /// User argument.
    pub user: u64,
    /// Description.
    pub description: Arc<str>,
    /// The registered handler, `None` while the node is not registered.
    pub registered: Option<HandlerInfo>,
}
