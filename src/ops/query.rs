//! Queries (`PGMHandlerPhysicalIsRegistered`, `pgmHandlerPhysicalIsAll`, lookups) and the
//! user-argument change (`PGMHandlerPhysicalChangeUserArg`).

use crate::error::{Error, OpResult, Status};
use crate::handler::{HandlerId, HandlerInfo, HandlerKind, HandlerSpan};
use crate::manager::Manager;
use crate::platform::Platform;

impl<P: Platform> Manager<P> {
    /// Sets the user argument of the handler starting at `addr`.
    ///
    /// # Errors
    /// `NotFound` when no handler starts exactly at `addr`.
    pub fn change_user_arg(&mut self, addr: u64, user: u64) -> OpResult {
        let slot = self.handler_at_start(addr)?;
        self.record_mut(slot)?.user = user;
        Ok(Status::Success)
    }

    /// Whether a registered handler contains `addr`.
    pub fn is_registered(&self, addr: u64) -> bool {
        self.find_slot(addr).is_some()
    }

    /// Whether the handler containing `addr` traps reads too (any kind but Write).
    ///
    /// # Errors
    /// `NotFound` when no handler contains `addr` (the seed asserts and answers `true`:
    /// deliberate difference 1).
    pub fn is_all(&self, addr: u64) -> Result<bool, Error> {
        let slot = self.find_slot(addr).ok_or(Error::NotFound)?;
        Ok(self.kind_of(self.record(slot)?).0 != HandlerKind::Write)
    }

    /// The handler containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: u64) -> Option<HandlerInfo> {
        let slot = self.find_slot(addr)?;
        self.slab.by_slot(slot).map(|r| self.info_of(r))
    }

    /// Key range and type of the handler containing `addr`, without cloning the description:
    /// the trap-dispatch path of a VMM.
    #[inline]
    pub fn lookup_range(&self, addr: u64) -> Option<(u64, u64, HandlerKind, u64)> {
        let slot = self.find_slot(addr)?;
        let r = self.slab.by_slot(slot)?;
        Some((r.key, r.key_last, self.kind_of(r).0, r.user))
    }

    /// The handler containing `addr`, else the first one above it.
    pub fn lookup_matching_or_above(&self, addr: u64) -> Option<HandlerInfo> {
        let slot = self.tree.lookup_matching_or_above(addr)?;
        self.slab.by_slot(slot).map(|r| self.info_of(r))
    }

    /// The handler containing `addr`, else the last one below it.
    pub fn lookup_matching_or_below(&self, addr: u64) -> Option<HandlerInfo> {
        let slot = self.tree.lookup_matching_or_below(addr)?;
        self.slab.by_slot(slot).map(|r| self.info_of(r))
    }

    /// Fields of an allocated node, registered or not.
    ///
    /// # Errors
    /// `InvalidHandle` for a stale or unknown id.
    pub fn handler_info(&self, id: HandlerId) -> Result<HandlerInfo, Error> {
        Ok(self.info_of(self.slab.get(id)?))
    }

    /// The id of the registered handler containing `addr`.
    pub fn handler_id_at(&self, addr: u64) -> Option<HandlerId> {
        self.slab.id_of(self.tree.lookup(addr)?)
    }

    /// Every registered handler's range, kind and not-in-HM flag in ascending address order,
    /// without copying descriptions (for callers that only need the layout of handlers).
    pub fn handler_spans(&self) -> Vec<HandlerSpan> {
        self.tree
            .in_order()
            .into_iter()
            .filter_map(|s| {
                let r = self.slab.by_slot(s)?;
                let (kind, not_in_hm) = self.kind_of(r);
                Some(HandlerSpan {
                    key: r.key,
                    key_last: r.key_last,
                    kind,
                    not_in_hm,
                })
            })
            .collect()
    }

    /// Registered handlers in ascending address order.
    pub fn handlers(&self) -> Vec<HandlerInfo> {
        self.tree
            .in_order()
            .into_iter()
            .filter_map(|s| self.slab.by_slot(s).map(|r| self.info_of(r)))
            .collect()
    }
}
