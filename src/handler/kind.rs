//! Handler kinds, handler types and the opaque, validated type handles.

use std::sync::Arc;

use crate::error::Error;
use crate::page::HandlerState;

/// What a handler traps (the original's `PGMPHYSHANDLERKIND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum HandlerKind {
    /// Traps writes; may cover part of a page unless the type is not-in-HM.
    Write,
    /// Traps every access; whole pages only.
    All,
    /// Traps every access to MMIO pages; whole pages only; pages may be aliased.
    Mmio,
}

impl HandlerKind {
    /// The page state a handler of this kind raises its pages to.
    pub const fn page_state(self) -> HandlerState {
        match self {
            HandlerKind::Write => HandlerState::Write,
            HandlerKind::All | HandlerKind::Mmio => HandlerState::All,
        }
    }

    /// Whether handlers of this kind (with this not-in-HM flag) must cover whole pages.
    pub const fn needs_whole_pages(self, not_in_hm: bool) -> bool {
        !matches!(self, HandlerKind::Write) || not_in_hm
    }
}

/// Everything a handler type carries (the original's `PGMPHYSHANDLERTYPEINT`, minus callbacks:
/// the simulator attaches behaviours by type slot).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HandlerTypeConfig {
    /// What the handlers of this type trap.
    pub kind: HandlerKind,
    /// Traps must be handled outside hardware-assisted execution; whole pages only.
    pub not_in_hm: bool,
    /// The callback runs with the manager lock held.
    pub keep_lock: bool,
    /// Description, used by handlers created without one.
    pub description: Arc<str>,
}

impl HandlerTypeConfig {
    /// A type of the given kind with no flags.
    pub fn new(kind: HandlerKind, description: &str) -> Self {
        HandlerTypeConfig {
            kind,
            not_in_hm: false,
            keep_lock: false,
            description: description.into(),
        }
    }
}

/// Most handler types a manager holds (the original's `PGMPHYSHANDLERTYPE_COUNT`).
pub const MAX_HANDLER_TYPES: usize = 32;
const SLOT_MASK: u64 = (MAX_HANDLER_TYPES as u64) - 1;

// The slot lives in the handle's low bits: the limit must be a power of two so the mask
// holds exactly the slots 0..MAX_HANDLER_TYPES.
const _: () = assert!(MAX_HANDLER_TYPES.is_power_of_two() && SLOT_MASK as usize + 1 == MAX_HANDLER_TYPES);

/// Opaque handle of a registered handler type: slot index in the low five bits, check bits
/// above, so zeroed, stale or made-up handles are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HandlerTypeHandle(pub u64);

impl HandlerTypeHandle {
    /// "No type", the original's `NIL_PGMPHYSHANDLERTYPE`.
    pub const NIL: HandlerTypeHandle = HandlerTypeHandle(u64::MAX);

    /// The handle of slot `slot` under a manager's `salt`.
    ///
    /// The original draws the check bits at random; ours derive them from the slot and the salt
    /// (splitmix64) so runs are reproducible while a handle from another salt is refused
    /// (deliberate difference D9, semantics §1.6).
    pub const fn derive(slot: usize, salt: u64) -> Self {
        let mut z = salt.wrapping_add((slot as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let mut h = (z & !SLOT_MASK) | slot as u64;
        if h == u64::MAX {
            h &= !(1 << 63);
        }
        HandlerTypeHandle(h)
    }

    /// The slot index encoded in the handle.
    pub const fn slot(self) -> usize {
        (self.0 & SLOT_MASK) as usize
    }
}

/// The registered handler types (never freed, at most [`MAX_HANDLER_TYPES`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TypeTable {
    salt: u64,
    types: Vec<(HandlerTypeHandle, HandlerTypeConfig)>,
}

impl TypeTable {
    /// An empty table whose handles use `salt`.
    pub fn new(salt: u64) -> Self {
        TypeTable {
            salt,
            types: Vec::new(),
        }
    }

    /// Registers a type; `OutOfResources` past the 32nd.
    pub fn register(&mut self, config: HandlerTypeConfig) -> Result<HandlerTypeHandle, Error> {
        if self.types.len() >= MAX_HANDLER_TYPES {
            return Err(Error::OutOfResources);
        }
        let handle = HandlerTypeHandle::derive(self.types.len(), self.salt);
        self.types.push((handle, config));
        Ok(handle)
    }

    /// The type behind a handle, if the handle is exactly one this table gave out.
    #[inline]
    pub fn get(&self, handle: HandlerTypeHandle) -> Result<&HandlerTypeConfig, Error> {
        match self.types.get(handle.slot()) {
            Some((h, config)) if *h == handle => Ok(config),
            _ => Err(Error::InvalidHandle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_encode_slot_and_refuse_strangers() {
        let mut t = TypeTable::new(42);
        let a = t.register(HandlerTypeConfig::new(HandlerKind::Write, "a")).unwrap();
        let b = t.register(HandlerTypeConfig::new(HandlerKind::All, "b")).unwrap();
        assert_eq!(a.slot(), 0);
        assert_eq!(b.slot(), 1);
        assert_eq!(t.get(b).unwrap().kind, HandlerKind::All);
        assert_eq!(t.get(HandlerTypeHandle(b.0 ^ 0x100)), Err(Error::InvalidHandle));
        assert_eq!(t.get(HandlerTypeHandle(0)), Err(Error::InvalidHandle));
        assert_eq!(t.get(HandlerTypeHandle::NIL), Err(Error::InvalidHandle));
        assert_eq!(t.get(HandlerTypeHandle::derive(0, 43)), Err(Error::InvalidHandle));
        for i in 2..MAX_HANDLER_TYPES {
            t.register(HandlerTypeConfig::new(HandlerKind::Mmio, &format!("t{i}")))
                .unwrap();
        }
        assert_eq!(
            t.register(HandlerTypeConfig::new(HandlerKind::Mmio, "x")),
            Err(Error::OutOfResources)
        );
    }
}
