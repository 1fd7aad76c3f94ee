//! Queries (`PGMHandlerPhysicalIsRegistered`, `pgmHandlerPhysicalIsAll`, lookups) and the
//! user-argument change (`PGMHandlerPhysicalChangeUserArg`).

use crate::addr::PAGE_SHIFT;
use crate::error::{Error, OpResult, Status};
use crate::handler::{HandlerId, HandlerInfo, HandlerKind, HandlerSpan, NodeInfo};
use crate::manager::Manager;
use crate::page::PageDescriptor;
use crate::platform::Platform;

impl<P: Platform> Manager<P> {
    /// Sets the user argument of the handler starting at `addr`.
    ///
    /// # Errors
    /// `NotFound` when no handler starts exactly at `addr`.
    pub fn change_user_arg(&mut self, addr: u64, user: u64) -> OpResult {
        self.platform.pgm_lock();
        let r = self.change_user_arg_locked(addr, user);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::change_user_arg`] with the PGM lock held.
    fn change_user_arg_locked(&mut self, addr: u64, user: u64) -> OpResult {
        let slot = self.handler_at_start(addr)?;
        if let Some(rec) = self.slab.by_slot_mut(slot) {
            rec.user = user;
        }
        Ok(Status::Success)
    }

    /// Whether a registered handler contains `addr`.
    pub fn is_registered(&self, addr: u64) -> bool {
        self.find_slot(addr).is_some()
    }

    /// Whether the handler containing `addr` traps reads too (any kind but Write).
    ///
    /// # Errors
    /// `NotFound` when no handler contains `addr` (the original asserts and answers `true`:
    /// deliberate difference D1).
    pub fn is_all(&self, addr: u64) -> Result<bool, Error> {
        let slot = self.find_slot(addr).ok_or(Error::NotFound)?;
        let (rec, _) = self.registered(slot)?;
        Ok(self.kind_of(rec)?.0 != HandlerKind::Write)
    }

    /// The handler containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: u64) -> Option<HandlerInfo> {
        self.info_at(self.find_slot(addr)?)
    }

    /// Key range, kind and user argument of the handler containing `addr`, without cloning
    /// the description: the trap-dispatch path of a VMM.
    #[inline]
    pub fn lookup_range(&self, addr: u64) -> Option<(u64, u64, HandlerKind, u64)> {
        let (rec, reg) = self.registered(self.find_slot(addr)?).ok()?;
        Some((reg.key, reg.key_last, self.kind_of(rec).ok()?.0, rec.user))
    }

    /// The handler containing `addr`, else the first one above it.
    pub fn lookup_matching_or_above(&self, addr: u64) -> Option<HandlerInfo> {
        self.info_at(self.tree.lookup_matching_or_above(addr)?)
    }

    /// The handler containing `addr`, else the last one below it.
    pub fn lookup_matching_or_below(&self, addr: u64) -> Option<HandlerInfo> {
        self.info_at(self.tree.lookup_matching_or_below(addr)?)
    }

    /// Fields of an allocated node, registered or not.
    ///
    /// # Errors
    /// `InvalidHandle` for a stale or unknown id.
    pub fn handler_info(&self, id: HandlerId) -> Result<NodeInfo, Error> {
        self.node_info(self.slab.get(id)?)
    }

    /// The id of the registered handler containing `addr`.
    pub fn handler_id_at(&self, addr: u64) -> Option<HandlerId> {
        self.slab.id_of(self.find_slot(addr)?)
    }

    /// Every registered handler's range, kind and not-in-HM flag in ascending address order,
    /// without copying descriptions (for callers that only need the layout of handlers).
    pub fn handler_spans(&self) -> Vec<HandlerSpan> {
        self.tree
            .iter()
            .filter_map(|s| {
                let (rec, reg) = self.registered(s).ok()?;
                let (kind, not_in_hm) = self.kind_of(rec).ok()?;
                Some(HandlerSpan {
                    key: reg.key,
                    key_last: reg.key_last,
                    kind,
                    not_in_hm,
                })
            })
            .collect()
    }

    /// The descriptor of the page containing `addr` (RAM ranges only).
    #[inline]
    pub fn page(&self, addr: u64) -> Option<PageDescriptor> {
        self.memory.page(addr).copied()
    }

    /// Every page of every RAM range with its guest-physical address, in address order (a
    /// walk over the descriptors, for full checks and renderings).
    pub fn ram_pages(&self) -> impl Iterator<Item = (u64, PageDescriptor)> + '_ {
        self.memory.ranges().iter().flat_map(|range| {
            range
                .pages
                .iter()
                .enumerate()
                .map(move |(i, d)| (range.first + ((i as u64) << PAGE_SHIFT), *d))
        })
    }

    /// Registered handlers in ascending address order.
    pub fn handlers(&self) -> Vec<HandlerInfo> {
        self.handler_iter().collect()
    }

    /// Registered handlers in ascending address order, one at a time: what [`handlers`]
    /// lists, without building the list (a caller comparing the handlers walks the tree
    /// once and allocates nothing).
    ///
    /// [`handlers`]: Self::handlers
    pub fn handler_iter(&self) -> impl Iterator<Item = HandlerInfo> + '_ {
        self.tree.iter().filter_map(|s| self.info_at(s))
    }

    /// The registered handler in a tree slot (a broken invariant reads as no handler).
    fn info_at(&self, slot: u32) -> Option<HandlerInfo> {
        let (rec, reg) = self.registered(slot).ok()?;
        self.info_of(rec, reg).ok()
    }
}
