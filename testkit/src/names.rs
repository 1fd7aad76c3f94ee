//! What creation indices mean on one side: the ids it handed out, in order, and the views
//! of handlers and nodes with types named by registration index, so two sides that agree
//! compare equal whatever ids each issued.

use pgmsim::{HandlerId, HandlerInfo, HandlerKind, HandlerTypeHandle, NodeInfo};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::call::{NodeIx, TypeIx};

/// The node and type ids one side handed out, in creation order: what creation indices mean
/// on that side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// Handler ids in creation order (freed ones stay, as stale ids).
    pub nodes: Vec<HandlerId>,
    /// Type handles in registration order.
    pub types: Vec<HandlerTypeHandle>,
    /// Ids pinned by [`Names::pin`], named by [`PINNED`]` | k` (`None`: a free slot).
    pub pinned: Vec<Option<HandlerId>>,
}

/// The bit that marks a node index as naming a pinned id rather than a creation index.
pub const PINNED: NodeIx = 1 << 31;

impl Names {
    /// The id of node `h`; past the end, an id no side ever issues.
    pub fn node(&self, h: NodeIx) -> HandlerId {
        let found = if h & PINNED != 0 {
            self.pinned.get((h & !PINNED) as usize).copied().flatten()
        } else {
            self.nodes.get(h as usize).copied()
        };
        found.unwrap_or(HandlerId(0xdead_0000_0000_0000 | h as u64))
    }

    /// Names an id some side looked up itself (a handler a callback was dispatched for,
    /// which may never have had a creation index), without shifting creation indices. The
    /// lowest free pinned slot is reused, so pins cost no memory over a long run.
    pub fn pin(&mut self, id: HandlerId) -> NodeIx {
        let k = match self.pinned.iter().position(Option::is_none) {
            Some(k) => {
                self.pinned[k] = Some(id);
                k
            }
            None => {
                self.pinned.push(Some(id));
                self.pinned.len() - 1
            }
        };
        PINNED | k as NodeIx
    }

    /// Frees a pinned name.
    pub fn unpin(&mut self, h: NodeIx) {
        if let Some(slot) = self.pinned.get_mut((h & !PINNED) as usize) {
            *slot = None;
        }
    }

    /// The handle of type `t`; past the end, alternately the first type's slot with flipped
    /// check bits (must be refused, not resolved by slot) and a handle no side issues.
    pub fn ty(&self, t: TypeIx) -> HandlerTypeHandle {
        if let Some(&h) = self.types.get(t as usize) {
            return h;
        }
        let past = t as usize - self.types.len();
        match self.types.first() {
            Some(first) if past.is_multiple_of(2) => HandlerTypeHandle(first.0 ^ 0x100),
            _ => HandlerTypeHandle(0x5eed_0000_0000_0000 | t as u64),
        }
    }

    /// The registration index of a handle this side issued.
    pub fn type_index(&self, handle: HandlerTypeHandle) -> Option<TypeIx> {
        self.types.iter().position(|&h| h == handle).map(|i| i as TypeIx)
    }

    /// A handler's fields with its type named by index, comparable across sides.
    pub fn view(&self, info: &HandlerInfo) -> HandlerView {
        HandlerView {
            key: info.key,
            key_last: info.key_last,
            page_count: info.page_count,
            aliased_pages: info.aliased_pages,
            temp_off_pages: info.temp_off_pages,
            ty: self.type_index(info.ty),
            kind: info.kind,
            user: info.user,
            description: info.description.clone(),
        }
    }

    /// Whether two sides' handlers are the same handler: every field equal, the types by
    /// registration index (`self` names `a`'s side, `other` names `b`'s).
    pub fn same_handler(&self, a: &HandlerInfo, other: &Names, b: &HandlerInfo) -> bool {
        (
            a.key,
            a.key_last,
            a.page_count,
            a.aliased_pages,
            a.temp_off_pages,
            a.kind,
            a.user,
        ) == (
            b.key,
            b.key_last,
            b.page_count,
            b.aliased_pages,
            b.temp_off_pages,
            b.kind,
            b.user,
        ) && a.description == b.description
            && self.type_index(a.ty) == other.type_index(b.ty)
    }

    /// A node's fields with its type named by index.
    pub fn node_view(&self, info: &NodeInfo) -> NodeView {
        NodeView {
            ty: self.type_index(info.ty),
            kind: info.kind,
            user: info.user,
            description: info.description.clone(),
            registered: info.registered.as_ref().map(|h| self.view(h)),
        }
    }
}

/// [`HandlerInfo`] with the type named by registration index: equal on every side that
/// agrees, whatever handle values each issued.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HandlerView {
    /// First byte.
    pub key: u64,
    /// Last byte, inclusive.
    pub key_last: u64,
    /// Pages touched.
    pub page_count: u32,
    /// Aliased pages.
    pub aliased_pages: u32,
    /// Temporarily-off pages.
    pub temp_off_pages: u32,
    /// Type index (`None`: a handle this side's names do not know).
    pub ty: Option<TypeIx>,
    /// Kind.
    pub kind: HandlerKind,
    /// User argument.
    pub user: u64,
    /// Description.
    pub description: Arc<str>,
}

/// [`NodeInfo`] with the type named by registration index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeView {
    /// Type index.
    pub ty: Option<TypeIx>,
    /// Kind.
    pub kind: HandlerKind,
    /// User argument.
    pub user: u64,
    /// Description.
    pub description: Arc<str>,
    /// The registered handler, if any.
    pub registered: Option<HandlerView>,
}
