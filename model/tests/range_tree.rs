//! quickcheck properties of the production range structure, `pgmsim::handler::RangeTree`,
//! against the obvious model: a `Vec` of `(slot, key, last)` searched linearly.
//!
//! Operations are generated over a small key space (so overlaps, adjacency, equal keys and
//! misses are common) with a sprinkling of extreme keys; after every step each query must
//! agree with the naive answer at addresses around every range, and `verify()` must be empty.

use pgmsim::handler::RangeTree;
use pgmsim::Error;
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
