//! The handler range tree: an AVL tree of non-overlapping inclusive byte ranges, keyed by
//! their first byte, with nodes stored by slab slot (the original's `RTCHardAvlRangeTree`).
//!
//! Nodes live in one compact array indexed by the handler's slab slot, so a lookup touches
//! 32-byte nodes only, and the tree can never hold more nodes than the slab has slots.
//! Every operation is O(log n); insert refuses any byte overlap, so keys are unique. Every
//! descent (the lookups' loops, the recursive insert and remove) is bounded by [`MAX_HEIGHT`],
//! which an AVL tree of the largest capacity cannot exceed; the bound is asserted where
//! heights are maintained and again wherever a descent would pass it (a cycle or a corrupt
//! height), and the in-order walk visits at most as many nodes as there are slots.

use crate::api::MAX_HANDLERS;
use crate::error::Error;
use crate::invariant::{expect_invariant, loop_bound_exceeded};

/// "No node".
pub(crate) const NIL: u32 = u32::MAX;

/// Highest an AVL tree of [`MAX_HANDLERS`] nodes can be: below 1.4405 log2(n + 2), so 23 for
/// 65536 nodes; one spare level.
pub(crate) const MAX_HEIGHT: u8 = 24;
const _: () = assert!(MAX_HANDLERS <= 1 << 16, "raise MAX_HEIGHT with the capacity");

/// A descent that ended after [`MAX_HEIGHT`] levels still at node `n` (not [`NIL`]) ran past
/// its bound: a cycle, or a tree taller than an AVL tree of the capacity can be.
#[inline]
#[track_caller]
fn descent_too_deep(n: u32) {
    if n != NIL {
        loop_bound_exceeded(format_args!("a tree descent passed {MAX_HEIGHT} levels (at slot {n})"));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Node {
    key: u64,
    last: u64,
    left: u32,
    right: u32,
    height: u8,
    linked: bool,
}

const EMPTY: Node = Node {
    key: 0,
    last: 0,
    left: NIL,
    right: NIL,
    height: 0,
    linked: false,
};

/// A structural problem found by [`RangeTree::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum TreeFault {
    /// In-order keys are not strictly ascending, or two ranges overlap.
    Order {
        /// Slot of the first node of the offending pair.
        slot: u32,
    },
    /// A node's range has `key > last`.
    Inverted {
        /// Slot of the node.
        slot: u32,
    },
    /// A stored height is wrong or the node is unbalanced.
    Balance {
        /// Slot of the node.
        slot: u32,
    },
    /// The number of reachable nodes differs from the count kept.
    Count,
}

/// AVL range tree over slab slots.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RangeTree {
    nodes: Vec<Node>,
    root: u32,
    len: u32,
}

impl RangeTree {
    /// An empty tree for slots `0..capacity`.
    pub fn new(capacity: u32) -> Self {
        RangeTree {
            nodes: vec![EMPTY; capacity as usize],
            root: NIL,
            len: 0,
        }
    }

    /// Number of ranges in the tree.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// The range stored for `slot`, if the slot is in the tree.
    pub fn range_of(&self, slot: u32) -> Option<(u64, u64)> {
        let n = self.nodes.get(slot as usize)?;
        n.linked.then_some((n.key, n.last))
    }

    /// Slot of the range containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: u64) -> Option<u32> {
        let mut n = self.root;
        for _ in 0..MAX_HEIGHT {
            if n == NIL {
                break;
            }
            let node = &self.nodes[n as usize];
            if addr < node.key {
                n = node.left;
            } else if addr > node.last {
                n = node.right;
            } else {
                return Some(n);
            }
        }
        descent_too_deep(n);
        None
    }

    /// Slot of the range containing `addr`, else of the first range above it.
    pub fn lookup_matching_or_above(&self, addr: u64) -> Option<u32> {
        let mut best = NIL;
        let mut n = self.root;
        for _ in 0..MAX_HEIGHT {
            if n == NIL {
                break;
            }
            let node = &self.nodes[n as usize];
            if addr < node.key {
                best = n;
                n = node.left;
            } else if addr > node.last {
                n = node.right;
            } else {
                return Some(n);
            }
        }
        descent_too_deep(n);
        (best != NIL).then_some(best)
    }

    /// Slot of the range containing `addr`, else of the last range below it.
    pub fn lookup_matching_or_below(&self, addr: u64) -> Option<u32> {
        let mut best = NIL;
        let mut n = self.root;
        for _ in 0..MAX_HEIGHT {
            if n == NIL {
                break;
            }
            let node = &self.nodes[n as usize];
            if addr < node.key {
                n = node.left;
            } else if addr > node.last {
                best = n;
                n = node.right;
            } else {
                return Some(n);
            }
        }
        descent_too_deep(n);
        (best != NIL).then_some(best)
    }

    /// Whether `[key, last]` overlaps a range in the tree by at least one byte.
    pub fn overlaps(&self, key: u64, last: u64) -> bool {
        self.lookup_matching_or_above(key)
            .is_some_and(|s| self.nodes[s as usize].key <= last)
    }

    /// Inserts `[key, last]` for `slot`. Refuses inverted ranges (`InvalidParameter`), slots
    /// out of range or already linked (`Internal`) and any byte overlap (`Conflict`); on error
    /// the tree is unchanged.
    pub fn insert(&mut self, slot: u32, key: u64, last: u64) -> Result<(), Error> {
        if key > last {
            return Err(Error::InvalidParameter);
        }
        match self.nodes.get(slot as usize) {
            Some(n) if !n.linked => {}
            _ => return Err(Error::Internal),
        }
        if self.overlaps(key, last) {
            return Err(Error::Conflict);
        }
        self.nodes[slot as usize] = Node {
            key,
            last,
            left: NIL,
            right: NIL,
            height: 1,
            linked: true,
        };
        self.root = self.insert_at(self.root, slot, 0);
        self.len += 1;
        Ok(())
    }

    /// Removes `slot`'s range; `false` (and no change) if the slot is not in the tree.
    pub fn remove(&mut self, slot: u32) -> bool {
        let Some(&node) = self.nodes.get(slot as usize) else {
            return false;
        };
        if !node.linked || self.lookup(node.key) != Some(slot) {
            return false;
        }
        self.root = self.remove_at(self.root, node.key, 0);
        self.nodes[slot as usize] = EMPTY;
        self.len -= 1;
        true
    }

    /// Slots in ascending key order.
    pub fn in_order(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.len as usize);
        out.extend(self.iter());
        out
    }

    /// Slots in ascending key order, one at a time and without allocating (the per-step
    /// handler-list comparison of the simulator walks the tree this way).
    pub fn iter(&self) -> InOrder<'_> {
        InOrder {
            tree: self,
            stack: [NIL; MAX_HEIGHT as usize + 1],
            depth: 0,
            next: self.root,
            pushes: 0,
        }
    }

    /// Checks order, non-overlap, heights, balance and the node count.
    pub fn verify(&self) -> Vec<TreeFault> {
        let mut faults = Vec::new();
        let order = self.in_order();
        if order.len() != self.len as usize {
            faults.push(TreeFault::Count);
        }
        for &s in &order {
            let n = &self.nodes[s as usize];
            if n.key > n.last {
                faults.push(TreeFault::Inverted { slot: s });
            }
            let (hl, hr) = (self.height(n.left), self.height(n.right));
            if u16::from(n.height) != u16::from(hl.max(hr)) + 1 || hl.abs_diff(hr) > 1 {
                faults.push(TreeFault::Balance { slot: s });
            }
        }
        for pair in order.windows(2) {
            let (a, b) = (&self.nodes[pair[0] as usize], &self.nodes[pair[1] as usize]);
            if a.last >= b.key || a.key >= b.key {
                faults.push(TreeFault::Order { slot: pair[0] });
            }
        }
        faults
    }

    /// Overwrites a node's range without rebalancing: corruption injection for tests.
    #[cfg(feature = "testing")]
    pub(crate) fn corrupt_range(&mut self, slot: u32, key: u64, last: u64) {
        if let Some(n) = self.nodes.get_mut(slot as usize) {
            n.key = key;
            n.last = last;
        }
    }

    /// Overwrites a node's stored height: corruption injection for tests.
    #[cfg(feature = "testing")]
    pub(crate) fn corrupt_height(&mut self, slot: u32, height: u8) {
        if let Some(n) = self.nodes.get_mut(slot as usize) {
            n.height = height;
        }
    }

    /// Overwrites the node count: corruption injection for tests.
    #[cfg(feature = "testing")]
    pub(crate) fn corrupt_len(&mut self, len: u32) {
        self.len = len;
    }

    #[inline]
    fn height(&self, n: u32) -> u8 {
        if n == NIL {
            0
        } else {
            self.nodes[n as usize].height
        }
    }

    fn fix_height(&mut self, n: u32) {
        let node = self.nodes[n as usize];
        let height = self.height(node.left).max(self.height(node.right)) + 1;
        expect_invariant!(height <= MAX_HEIGHT, "tree height {height} exceeds {MAX_HEIGHT}");
        self.nodes[n as usize].height = height;
    }

    fn rotate_right(&mut self, n: u32) -> u32 {
        let l = self.nodes[n as usize].left;
        self.nodes[n as usize].left = self.nodes[l as usize].right;
        self.nodes[l as usize].right = n;
        self.fix_height(n);
        self.fix_height(l);
        l
    }

    fn rotate_left(&mut self, n: u32) -> u32 {
        let r = self.nodes[n as usize].right;
        self.nodes[n as usize].right = self.nodes[r as usize].left;
        self.nodes[r as usize].left = n;
        self.fix_height(n);
        self.fix_height(r);
        r
    }

    fn rebalance(&mut self, n: u32) -> u32 {
        self.fix_height(n);
        let node = self.nodes[n as usize];
        let (hl, hr) = (self.height(node.left), self.height(node.right));
        if hl > hr + 1 {
            let l = self.nodes[node.left as usize];
            if self.height(l.left) < self.height(l.right) {
                self.nodes[n as usize].left = self.rotate_left(node.left);
            }
            return self.rotate_right(n);
        }
        if hr > hl + 1 {
            let r = self.nodes[node.right as usize];
            if self.height(r.right) < self.height(r.left) {
                self.nodes[n as usize].right = self.rotate_right(node.right);
            }
            return self.rotate_left(n);
        }
        n
    }

    /// Recursive descent, `depth` levels below the root. Bound: [`MAX_HEIGHT`] levels (a
    /// deeper one is a cycle: it stops there, or panics, rather than overflow the stack).
    fn insert_at(&mut self, n: u32, slot: u32, depth: u8) -> u32 {
        if n == NIL {
            return slot;
        }
        if depth >= MAX_HEIGHT {
            descent_too_deep(n);
            return n;
        }
        if self.nodes[slot as usize].key < self.nodes[n as usize].key {
            let l = self.insert_at(self.nodes[n as usize].left, slot, depth + 1);
            self.nodes[n as usize].left = l;
        } else {
            let r = self.insert_at(self.nodes[n as usize].right, slot, depth + 1);
            self.nodes[n as usize].right = r;
        }
        self.rebalance(n)
    }

    /// Recursive descent to the leftmost node, `depth` levels below the root. Bound:
    /// [`MAX_HEIGHT`] levels, as [`Self::insert_at`].
    fn remove_min(&mut self, n: u32, depth: u8) -> (u32, u32) {
        let left = self.nodes[n as usize].left;
        if left == NIL || depth >= MAX_HEIGHT {
            if left != NIL {
                descent_too_deep(n);
            }
            return (self.nodes[n as usize].right, n);
        }
        let (l, min) = self.remove_min(left, depth + 1);
        self.nodes[n as usize].left = l;
        (self.rebalance(n), min)
    }

    /// Recursive descent, `depth` levels below the root. Bound: [`MAX_HEIGHT`] levels, as
    /// [`Self::insert_at`].
    fn remove_at(&mut self, n: u32, key: u64, depth: u8) -> u32 {
        if n == NIL {
            return NIL;
        }
        if depth >= MAX_HEIGHT {
            descent_too_deep(n);
            return n;
        }
        let node = self.nodes[n as usize];
        if key < node.key {
            let l = self.remove_at(node.left, key, depth + 1);
            self.nodes[n as usize].left = l;
        } else if key > node.key {
            let r = self.remove_at(node.right, key, depth + 1);
            self.nodes[n as usize].right = r;
        } else {
            if node.left == NIL {
                return node.right;
            }
            if node.right == NIL {
                return node.left;
            }
            let (r, min) = self.remove_min(node.right, depth + 1);
            self.nodes[min as usize].left = node.left;
            self.nodes[min as usize].right = r;
            return self.rebalance(min);
        }
        self.rebalance(n)
    }
}

/// The in-order walk of a [`RangeTree`] ([`RangeTree::iter`]): an explicit stack of the
/// left spine, at most one slot per level, so it never allocates.
///
/// Bounds: each slot is pushed once in a tree, so at most `nodes.len()` pushes in all, and
/// the stack is never deeper than the tree is high ([`MAX_HEIGHT`]). More is a cycle or a
/// corrupt tree: asserted, and in release the walk ends there (`verify` then reports the
/// count mismatch).
pub(crate) struct InOrder<'t> {
    tree: &'t RangeTree,
    stack: [u32; MAX_HEIGHT as usize + 1],
    depth: usize,
    next: u32,
    pushes: usize,
}

impl InOrder<'_> {
    /// Ends the walk for good (a broken bound).
    fn stop(&mut self) -> Option<u32> {
        self.next = NIL;
        self.depth = 0;
        None
    }
}

impl Iterator for InOrder<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while self.next != NIL {
            self.pushes += 1;
            if self.pushes > self.tree.nodes.len() {
                loop_bound_exceeded(format_args!("the in-order walk passed {} nodes", self.tree.nodes.len()));
                return self.stop();
            }
            if self.depth == self.stack.len() {
                loop_bound_exceeded(format_args!("the in-order walk went deeper than {MAX_HEIGHT} levels"));
                return self.stop();
            }
            self.stack[self.depth] = self.next;
            self.depth += 1;
            self.next = self.tree.nodes[self.next as usize].left;
        }
        self.depth = self.depth.checked_sub(1)?;
        let top = self.stack[self.depth];
        self.next = self.tree.nodes[top as usize].right;
        Some(top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with a cycle (node 0's right child is itself): what a broken rotation could
    /// leave. Every walk stops at its stated bound, with the loop-bound panic.
    fn cyclic() -> RangeTree {
        let mut t = RangeTree::new(4);
        t.insert(0, 0x1000, 0x1fff).unwrap();
        t.nodes[0].right = 0;
        t.nodes[0].left = 0;
        t
    }

    #[test]
    #[should_panic(expected = "pgmsim: loop bound exceeded: a tree descent passed 24 levels")]
    fn a_cyclic_lookup_stops_at_its_bound() {
        cyclic().lookup(0x5000);
    }

    #[test]
    #[should_panic(expected = "pgmsim: loop bound exceeded: a tree descent passed 24 levels")]
    fn a_cyclic_insert_stops_at_its_bound() {
        let _ = cyclic().insert(1, 0x5000, 0x5fff);
    }

    #[test]
    #[should_panic(expected = "pgmsim: loop bound exceeded: the in-order walk passed 4 nodes")]
    fn a_cyclic_in_order_walk_stops_at_its_bound() {
        cyclic().in_order();
    }

    #[test]
    fn insert_lookup_neighbours_remove() {
        let mut t = RangeTree::new(64);
        for i in 0..40u32 {
            let key = (i as u64) * 0x100;
            t.insert(i, key, key + 0x7f).unwrap();
        }
        assert!(t.verify().is_empty());
        assert_eq!(t.lookup(0x105), Some(1));
        assert_eq!(t.lookup(0x180), None);
        assert_eq!(t.lookup_matching_or_above(0x180), Some(2));
        assert_eq!(t.lookup_matching_or_below(0x180), Some(1));
        assert_eq!(t.lookup_matching_or_below(0x7f), Some(0));
        assert_eq!(t.lookup_matching_or_above(40 * 0x100), None);
        assert_eq!(
            t.insert(50, 0x17f, 0x1ff),
            Err(Error::Conflict),
            "one shared byte conflicts"
        );
        assert_eq!(t.insert(50, 0x80, 0xff), Ok(()), "adjacent ranges are fine");
        assert_eq!(t.insert(51, 5, 4), Err(Error::InvalidParameter));
        assert_eq!(
            t.insert(50, 0x9000, 0x9000),
            Err(Error::Internal),
            "slot already linked"
        );
        for i in (0..40u32).step_by(3) {
            assert!(t.remove(i));
            assert!(!t.remove(i));
            assert!(t.verify().is_empty());
        }
        assert_eq!(t.lookup(0x0), None);
        assert_eq!(t.lookup(0x105), Some(1));
        assert_eq!(t.len(), 40 + 1 - 14);
    }

    /// Links `slot` as `[key, key + 0xff]` with the given children, by hand (height fixed later).
    fn link(t: &mut RangeTree, slot: u32, key: u64, left: u32, right: u32) {
        t.nodes[slot as usize] = Node {
            key,
            last: key + 0xff,
            left,
            right,
            height: 1,
            linked: true,
        };
    }

    /// Stores the true height of every node below `n` of a hand-built tree; returns `n`'s.
    fn fix_heights(t: &mut RangeTree, n: u32) -> u8 {
        if n == NIL {
            return 0;
        }
        let (l, r) = (t.nodes[n as usize].left, t.nodes[n as usize].right);
        let h = fix_heights(t, l).max(fix_heights(t, r)).saturating_add(1);
        t.nodes[n as usize].height = h;
        h
    }

    /// A tree that is one path of `len` nodes, slot k at depth k, each the left child (keys
    /// falling) or the right child (keys rising) of the one above; true heights stored.
    fn path(len: u32, leftward: bool) -> RangeTree {
        let mut t = RangeTree::new(64);
        for k in 0..len {
            let next = if k + 1 < len { k + 1 } else { NIL };
            if leftward {
                link(&mut t, k, (64 - u64::from(k)) * 0x1000, next, NIL);
            } else {
                link(&mut t, k, (u64::from(k) + 1) * 0x1000, NIL, next);
            }
        }
        t.root = 0;
        t.len = len;
        fix_heights(&mut t, 0);
        t
    }

    /// Three ranges `[0x1000, 0x1fff]` (slot 0), `[0x2000, 0x2fff]` (slot 1, the root) and
    /// `[0x3000, 0x3fff]` (slot 2).
    fn three() -> RangeTree {
        let mut t = RangeTree::new(8);
        for (slot, key) in [(0, 0x1000), (1, 0x2000), (2, 0x3000)] {
            t.insert(slot, key, key + 0xfff).unwrap();
        }
        assert_eq!(t.root, 1);
        t
    }

    /// Pins that the neighbour lookups answer at the first node holding the address, also at
    /// the range's first byte (or-above) and last byte (or-below): descending past it would
    /// visit nodes for nothing, and on the cyclic tree trip the loop bound.
    #[test]
    fn neighbour_lookups_stop_at_the_range_holding_the_address() {
        let t = cyclic();
        for addr in [0x1000, 0x1800, 0x1fff] {
            assert_eq!(t.lookup_matching_or_above(addr), Some(0), "or_above({addr:#x})");
            assert_eq!(t.lookup_matching_or_below(addr), Some(0), "or_below({addr:#x})");
        }
    }

    /// Pins that remove refuses a linked slot the tree cannot reach by its own key (a corrupt
    /// range): it must neither empty the slot nor unlink the node another slot's key leads to.
    #[test]
    fn removing_a_slot_its_key_does_not_reach_changes_nothing() {
        // Slot 0's range moved above every other: the descent by its key never meets it.
        let mut t = three();
        t.nodes[0].key = 0x5000;
        t.nodes[0].last = 0x5fff;
        let before = t.clone();
        assert!(!t.remove(0));
        assert_eq!(t, before);
        // Slot 0's key now leads to the root (slot 1): removing slot 0 must not unlink slot 1.
        let mut t = three();
        t.nodes[0].key = 0x2000;
        let before = t.clone();
        assert!(!t.remove(0));
        assert_eq!(t, before);
        assert_eq!(t.lookup(0x2800), Some(1));
    }

    /// Pins that verify checks the stored height and the balance each on its own: a leaf with
    /// a wrong height is a fault although balanced, a right-leaning path with true heights is a
    /// fault (at its top) although every height is right.
    #[test]
    fn verify_reports_a_wrong_height_and_an_unbalanced_node_separately() {
        let mut t = RangeTree::new(4);
        t.insert(0, 0x1000, 0x1fff).unwrap();
        assert_eq!(t.verify(), vec![]);
        t.nodes[0].height = 2;
        assert_eq!(
            t.verify(),
            vec![TreeFault::Balance { slot: 0 }],
            "wrong height, balanced"
        );
        let t = path(3, false);
        assert_eq!(
            t.verify(),
            vec![TreeFault::Balance { slot: 0 }],
            "true heights, unbalanced"
        );
    }

    /// Pins that insert breaks a key tie the way the lookups do (to the right): a range inserted
    /// at the key of a corrupt, inverted node (`last < key`, which every lookup passes on the
    /// right) lands where lookups find it.
    #[test]
    fn insert_at_an_inverted_nodes_key_goes_where_lookups_look() {
        let mut t = three();
        t.nodes[1].last = 0x1fff;
        assert_eq!(t.insert(3, 0x2000, 0x27ff), Ok(()));
        assert_eq!(t.in_order(), vec![0, 1, 3, 2]);
        assert_eq!(t.lookup(0x2000), Some(3));
        assert_eq!(t.lookup_matching_or_below(0x27ff), Some(3));
    }

    /// Pins that the insert descent counts its own depth from the root and stops at
    /// [`MAX_HEIGHT`] levels, at the node that deep (slot 24 of a 30-deep rightward path).
    /// Called directly: insert's overlap lookup walks the same path and would stop first.
    #[test]
    #[should_panic(expected = "a tree descent passed 24 levels (at slot 24)")]
    fn a_too_deep_insert_descent_to_the_right_stops_at_level_24() {
        let mut t = path(30, false);
        link(&mut t, 40, 0x100_0000, NIL, NIL);
        t.insert_at(t.root, 40, 0);
    }

    /// As above, leftward: the insert descent's bound counts left steps too.
    #[test]
    #[should_panic(expected = "a tree descent passed 24 levels (at slot 24)")]
    fn a_too_deep_insert_descent_to_the_left_stops_at_level_24() {
        let mut t = path(30, true);
        link(&mut t, 40, 0, NIL, NIL);
        t.insert_at(t.root, 40, 0);
    }

    /// The in-order walk keeps one slot per level on a fixed stack: a leftward path deeper
    /// than [`MAX_HEIGHT`] (no cycle, so the push count stays within the slots) stops it.
    #[test]
    #[should_panic(expected = "the in-order walk went deeper than 24 levels")]
    fn a_too_deep_in_order_walk_stops_at_level_24() {
        path(30, true).in_order();
    }

    /// The lazy walk yields what `in_order` lists: every node once, in key order.
    #[test]
    fn the_in_order_walk_and_the_list_agree() {
        let t = three();
        assert_eq!(t.iter().collect::<Vec<_>>(), t.in_order());
        assert_eq!(t.iter().count(), t.len as usize);
    }

    /// A tree whose node to remove (slot `at`, at depth `at`: the root, or the root's left or
    /// right child) has two children, the right one heading a leftward path so deep that its
    /// minimum lies past [`MAX_HEIGHT`]: slot k at depth k down to slot 30. Returns the tree.
    fn deep_successor(at: u32, side_left: bool) -> RangeTree {
        let mut t = RangeTree::new(64);
        let x_key = 0x100_0000;
        for k in at + 1..=30 {
            let next = if k < 30 { k + 1 } else { NIL };
            link(&mut t, k, x_key + u64::from(40 - k) * 0x1000, next, NIL);
        }
        link(&mut t, 41, 0x10_0000, NIL, NIL);
        link(&mut t, at, x_key, 41, at + 1);
        t.root = at;
        if at == 1 {
            if side_left {
                link(&mut t, 51, 0x2000_0000, NIL, NIL);
                link(&mut t, 50, 0x1000_0000, 1, 51);
            } else {
                link(&mut t, 51, 0, NIL, NIL);
                link(&mut t, 50, 0x1000, 51, 1);
            }
            t.root = 50;
        }
        t.len = t.nodes.iter().filter(|n| n.linked).count() as u32;
        let root = t.root;
        fix_heights(&mut t, root);
        assert_eq!(t.lookup(x_key), Some(at));
        t
    }

    /// Pins that the remove descent counts depth from the root: removing the root, whose
    /// successor lies past [`MAX_HEIGHT`] levels, stops at the node 24 levels deep (slot 24).
    #[test]
    #[should_panic(expected = "a tree descent passed 24 levels (at slot 24)")]
    fn removing_the_root_with_a_too_deep_successor_stops_at_level_24() {
        deep_successor(0, false).remove(0);
    }

    /// As above for the root's left child: the step down to it counts as a level.
    #[test]
    #[should_panic(expected = "a tree descent passed 24 levels (at slot 24)")]
    fn removing_a_left_child_with_a_too_deep_successor_stops_at_level_24() {
        deep_successor(1, true).remove(1);
    }

    /// As above for the root's right child.
    #[test]
    #[should_panic(expected = "a tree descent passed 24 levels (at slot 24)")]
    fn removing_a_right_child_with_a_too_deep_successor_stops_at_level_24() {
        deep_successor(1, false).remove(1);
    }
}

/// quickcheck properties of the tree against the obvious model: a `Vec` of `(slot, key,
/// last)` searched linearly.
///
/// Operations are generated over a small key space (so overlaps, adjacency, equal keys and
/// misses are common) with a sprinkling of extreme keys; after every step each query must
/// agree with the naive answer at addresses around every range, and `verify()` must be empty.
#[cfg(test)]
mod properties {
    use super::RangeTree;
    use crate::error::Error;
    use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

    const SLOTS: u32 = 40;

    /// One step against both structures.
    #[derive(Debug, Clone)]
    enum Step {
        Insert { slot: u32, key: u64, last: u64 },
        Remove { slot: u32 },
        Probe { addr: u64 },
    }

    fn key(g: &mut Gen) -> u64 {
        match u8::arbitrary(g) % 16 {
            0 => *g
                .choose(&[0, 1, u64::MAX, u64::MAX - 1, 1 << 32, (1 << 32) - 1])
                .unwrap_or(&0),
            1 => u64::arbitrary(g),
            _ => u64::arbitrary(g) % 0x400,
        }
    }

    impl Arbitrary for Step {
        fn arbitrary(g: &mut Gen) -> Self {
            match u8::arbitrary(g) % 10 {
                0..=5 => {
                    let key = key(g);
                    let last = match u8::arbitrary(g) % 6 {
                        0 => key,
                        1 => key.wrapping_sub(u64::arbitrary(g) % 4), // sometimes inverted
                        2 => u64::MAX,
                        _ => key.saturating_add(u64::arbitrary(g) % 0x40),
                    };
                    Step::Insert {
                        slot: u32::arbitrary(g) % (SLOTS + 2),
                        key,
                        last,
                    }
                }
                6..=7 => Step::Remove {
                    slot: u32::arbitrary(g) % (SLOTS + 2),
                },
                _ => Step::Probe { addr: key(g) },
            }
        }

        fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
            match *self {
                Step::Insert { slot, key, last } => Box::new(
                    (key, last)
                        .shrink()
                        .map(move |(key, last)| Step::Insert { slot, key, last })
                        .chain(slot.shrink().map(move |slot| Step::Insert { slot, key, last })),
                ),
                Step::Remove { slot } => Box::new(slot.shrink().map(|slot| Step::Remove { slot })),
                Step::Probe { addr } => Box::new(addr.shrink().map(|addr| Step::Probe { addr })),
            }
        }
    }

    /// The naive structure: what is in the tree, as a plain list.
    #[derive(Default)]
    struct Naive {
        ranges: Vec<(u32, u64, u64)>,
    }

    impl Naive {
        fn insert(&mut self, slot: u32, key: u64, last: u64) -> Result<(), Error> {
            if key > last {
                return Err(Error::InvalidParameter);
            }
            if slot >= SLOTS || self.ranges.iter().any(|r| r.0 == slot) {
                return Err(Error::Internal);
            }
            if self.ranges.iter().any(|&(_, k, l)| k <= last && l >= key) {
                return Err(Error::Conflict);
            }
            self.ranges.push((slot, key, last));
            Ok(())
        }

        fn remove(&mut self, slot: u32) -> bool {
            let before = self.ranges.len();
            self.ranges.retain(|r| r.0 != slot);
            before != self.ranges.len()
        }

        fn lookup(&self, addr: u64) -> Option<u32> {
            self.ranges
                .iter()
                .find(|&&(_, k, l)| k <= addr && addr <= l)
                .map(|r| r.0)
        }

        fn above(&self, addr: u64) -> Option<u32> {
            self.lookup(addr).or_else(|| {
                self.ranges
                    .iter()
                    .filter(|r| r.1 > addr)
                    .min_by_key(|r| r.1)
                    .map(|r| r.0)
            })
        }

        fn below(&self, addr: u64) -> Option<u32> {
            self.lookup(addr).or_else(|| {
                self.ranges
                    .iter()
                    .filter(|r| r.2 < addr)
                    .max_by_key(|r| r.1)
                    .map(|r| r.0)
            })
        }

        fn sorted(&self) -> Vec<u32> {
            let mut v = self.ranges.clone();
            v.sort_by_key(|r| r.1);
            v.into_iter().map(|r| r.0).collect()
        }
    }

    /// Every query the tree answers, at every address near a range edge plus `extra`.
    fn agree(tree: &RangeTree, naive: &Naive, extra: u64) -> Result<(), String> {
        let mut probes = vec![0, u64::MAX, extra, extra.wrapping_sub(1), extra.wrapping_add(1)];
        for &(_, k, l) in &naive.ranges {
            probes.extend([k, l, k.wrapping_sub(1), l.wrapping_add(1), k + (l - k) / 2]);
        }
        for a in probes {
            if tree.lookup(a) != naive.lookup(a) {
                return Err(format!(
                    "lookup({a:#x}): tree {:?}, naive {:?}",
                    tree.lookup(a),
                    naive.lookup(a)
                ));
            }
            if tree.lookup_matching_or_above(a) != naive.above(a) {
                return Err(format!(
                    "or_above({a:#x}): tree {:?}, naive {:?}",
                    tree.lookup_matching_or_above(a),
                    naive.above(a)
                ));
            }
            if tree.lookup_matching_or_below(a) != naive.below(a) {
                return Err(format!(
                    "or_below({a:#x}): tree {:?}, naive {:?}",
                    tree.lookup_matching_or_below(a),
                    naive.below(a)
                ));
            }
        }
        if tree.in_order() != naive.sorted() {
            return Err(format!(
                "in_order: tree {:?}, naive {:?}",
                tree.in_order(),
                naive.sorted()
            ));
        }
        if tree.len() as usize != naive.ranges.len() {
            return Err(format!("len: tree {}, naive {}", tree.len(), naive.ranges.len()));
        }
        for &(slot, k, l) in &naive.ranges {
            if tree.range_of(slot) != Some((k, l)) {
                return Err(format!("range_of({slot}): {:?}", tree.range_of(slot)));
            }
        }
        let faults = tree.verify();
        if !faults.is_empty() {
            return Err(format!("verify: {faults:?}"));
        }
        Ok(())
    }

    fn run(steps: Vec<Step>) -> TestResult {
        let mut tree = RangeTree::new(SLOTS);
        let mut naive = Naive::default();
        for (i, step) in steps.iter().enumerate() {
            let extra = match *step {
                Step::Insert { slot, key, last } => {
                    let (t, n) = (tree.insert(slot, key, last), naive.insert(slot, key, last));
                    if t != n {
                        return TestResult::error(format!("step {i} {step:?}: insert tree {t:?}, naive {n:?}"));
                    }
                    key
                }
                Step::Remove { slot } => {
                    let (t, n) = (tree.remove(slot), naive.remove(slot));
                    if t != n {
                        return TestResult::error(format!("step {i} {step:?}: remove tree {t}, naive {n}"));
                    }
                    0
                }
                Step::Probe { addr } => addr,
            };
            if let Err(e) = agree(&tree, &naive, extra) {
                return TestResult::error(format!("after step {i} {step:?}: {e}"));
            }
        }
        TestResult::passed()
    }

    /// Random operation sequences: every answer equals the naive one, and the tree verifies.
    #[test]
    fn range_tree_matches_naive_ranges() {
        QuickCheck::new()
            .tests(300)
            .rng(Gen::new(120))
            .quickcheck(run as fn(Vec<Step>) -> TestResult);
    }

    /// Dense fills: inserting many adjacent one-page ranges in a scrambled order, then removing
    /// every other one, keeps the tree balanced and every neighbour query right.
    #[test]
    fn range_tree_dense_adjacent_fill() {
        fn prop(order: Vec<u8>) -> TestResult {
            let mut steps = Vec::new();
            for (i, &o) in order.iter().take(SLOTS as usize).enumerate() {
                let key = (o as u64 % 64) * 0x10;
                steps.push(Step::Insert {
                    slot: i as u32,
                    key,
                    last: key + 0xf,
                });
            }
            steps.extend((0..SLOTS).step_by(2).map(|slot| Step::Remove { slot }));
            run(steps)
        }
        QuickCheck::new()
            .tests(200)
            .quickcheck(prop as fn(Vec<u8>) -> TestResult);
    }

    /// The unit facts the properties rely on, as plain checks.
    #[test]
    fn range_tree_edges() {
        let mut t = RangeTree::new(4);
        assert_eq!(t.insert(0, u64::MAX, u64::MAX), Ok(()), "a one-byte range at the top");
        assert_eq!(t.insert(1, 0, u64::MAX - 1), Ok(()), "adjacent below it");
        assert_eq!(t.lookup_matching_or_above(5), Some(1));
        assert_eq!(t.lookup_matching_or_below(u64::MAX), Some(0));
        assert_eq!(t.insert(2, 7, 7), Err(Error::Conflict));
        assert_eq!(t.insert(4, 7, 7), Err(Error::Internal), "slot past capacity");
        assert!(t.verify().is_empty());
    }
}
