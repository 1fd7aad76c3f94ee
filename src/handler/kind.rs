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

    const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
    const MUL1: u64 = 0xbf58_476d_1ce4_e5b9;
    const MUL2: u64 = 0x94d0_49bb_1331_11eb;

    /// The reference splitmix64 finaliser (Vigna's `splitmix64.c`), written out independently.
    fn splitmix64_mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(MUL1);
        z = (z ^ (z >> 27)).wrapping_mul(MUL2);
        z ^ (z >> 31)
    }

    /// Undoes `x ^ (x >> shift)` (the top `shift` bits are known, each pass recovers `shift` more).
    fn unxorshift(y: u64, shift: u32) -> u64 {
        let mut x = y;
        for _ in 0..64 / shift + 1 {
            x = y ^ (x >> shift);
        }
        x
    }

    /// The multiplicative inverse of an odd `m` modulo 2^64 (Newton's iteration, 6 doublings).
    fn inverse_mod_2_64(m: u64) -> u64 {
        let mut inv = m;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(m.wrapping_mul(inv)));
        }
        inv
    }

    /// The inverse of [`splitmix64_mix`] (the finaliser is a bijection).
    fn splitmix64_unmix(z: u64) -> u64 {
        let z = unxorshift(z, 31).wrapping_mul(inverse_mod_2_64(MUL2));
        let z = unxorshift(z, 27).wrapping_mul(inverse_mod_2_64(MUL1));
        unxorshift(z, 30)
    }

    /// The handle format, from the reference finaliser: check bits above the slot's five bits.
    fn reference_handle(slot: usize, salt: u64) -> u64 {
        let z = splitmix64_mix(salt.wrapping_add((slot as u64 + 1).wrapping_mul(GOLDEN_GAMMA)));
        (z & !0x1f) | slot as u64
    }

    /// Pins the published handle format, which traces and replays depend on: under salt 0 the
    /// first slots carry the first outputs of reference splitmix64 seeded with 0 (low five bits
    /// replaced by the slot), and the default salt gives fixed handles.
    #[test]
    fn type_handles_have_the_published_known_answers() {
        assert_eq!(
            splitmix64_mix(GOLDEN_GAMMA),
            0xe220_a839_7b1d_cdaf,
            "reference splitmix64, seed 0"
        );
        assert_eq!(HandlerTypeHandle::derive(0, 0).0, 0xe220_a839_7b1d_cda0);
        assert_eq!(HandlerTypeHandle::derive(1, 0).0, 0x6e78_9e6a_a1b9_65e1);
        assert_eq!(HandlerTypeHandle::derive(2, 0).0, 0x06c4_5d18_8009_4542);
        let salt = crate::api::ManagerConfig::default().type_salt;
        assert_eq!(HandlerTypeHandle::derive(0, salt).0, 0x09e4_a77e_9635_4e60);
        assert_eq!(HandlerTypeHandle::derive(31, salt).0, 0xa5d1_ccd4_9012_bedf);
    }

    /// Every slot's handle under many salts is the reference splitmix64 handle, round-trips its
    /// slot, is never NIL, and differs from the other slots' handles under the same salt.
    #[test]
    fn type_handles_follow_the_reference_mix_for_every_slot() {
        let mut salt = 0x0123_4567_89ab_cdefu64;
        for _ in 0..64 {
            let mut handles = Vec::new();
            for slot in 0..MAX_HANDLER_TYPES {
                let h = HandlerTypeHandle::derive(slot, salt);
                assert_eq!(h.0, reference_handle(slot, salt), "slot {slot}, salt {salt:#x}");
                assert_eq!(h.slot(), slot);
                assert_ne!(h, HandlerTypeHandle::NIL);
                handles.push(h);
            }
            handles.sort();
            handles.dedup();
            assert_eq!(handles.len(), MAX_HANDLER_TYPES, "salt {salt:#x}");
            salt = salt
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
        }
    }

    /// Pins the NIL fix-up: slot 31 under a salt whose mixed check bits are all ones would give
    /// NIL; with the salt solved through the inverse finaliser, the handle must be NIL with the
    /// top bit cleared instead, still a valid slot-31 handle.
    #[test]
    fn the_handle_that_would_be_nil_drops_its_top_bit() {
        for z in [0, 1, u64::MAX, GOLDEN_GAMMA] {
            assert_eq!(splitmix64_mix(splitmix64_unmix(z)), z, "the inverse undoes the mix");
        }
        let last = MAX_HANDLER_TYPES - 1;
        let salt = splitmix64_unmix(u64::MAX).wrapping_sub((last as u64 + 1).wrapping_mul(GOLDEN_GAMMA));
        assert_eq!(salt, 0x08aa_cd80_111c_2b20);
        assert_eq!(
            reference_handle(last, salt),
            u64::MAX,
            "this salt hits NIL before the fix-up"
        );
        let h = HandlerTypeHandle::derive(last, salt);
        assert_eq!(h.0, u64::MAX >> 1);
        assert_eq!(h.slot(), last);
        let mut t = TypeTable::new(salt);
        for i in 0..MAX_HANDLER_TYPES {
            t.register(HandlerTypeConfig::new(HandlerKind::Write, &format!("t{i}")))
                .unwrap();
        }
        assert_eq!(t.get(h).map(|c| &*c.description), Ok("t31"));
        assert_eq!(t.get(HandlerTypeHandle::NIL), Err(Error::InvalidHandle));
    }
}
