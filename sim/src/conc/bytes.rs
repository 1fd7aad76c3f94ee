//! A scheduler that reads its decisions from bytes (a fuzzer's input), so coverage guides
//! the search for interleavings (`pgmsim_sim::fuzzing::ops_concurrent`).
//!
//! Only a point with a real choice reads a byte: a top or flush point with one candidate,
//! or an inline point where no other vCPU can step, takes its only option and reads
//! nothing, so every byte steers a decision that could have gone another way. A byte `b`
//! counts from the default ([`default_choice`]): the point has `n` options (its candidates,
//! and "the holder goes on" at an inline point), and `b` takes the `(b mod n)`-th option
//! after the default, wrapping round. Zero is the default: the thread that moved last goes
//! on, no lock-free step interrupts a manager operation. Once the bytes run out, every
//! decision is the default. The decisions are recorded like any other scheduler's, so the
//! run replays exactly from its trace under [`Scheduler::Replay`](super::sched::Scheduler).

use super::sched::{default_choice, Point, NONE};

/// The state of a byte-driven schedule (plain data, so a machine stays `Clone`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByteSchedule {
    bytes: Vec<u8>,
    at: usize,
}

impl ByteSchedule {
    /// A schedule that reads `bytes`, one per real choice.
    pub fn new(bytes: &[u8]) -> ByteSchedule {
        ByteSchedule {
            bytes: bytes.to_vec(),
            at: 0,
        }
    }

    /// Bytes read so far (decisions that had a choice, while bytes lasted).
    pub fn read(&self) -> usize {
        self.at
    }

    /// Picks among `candidates` at `point` (see the module documentation); `last` is the
    /// thread that moved last. Inline points may have no candidate (the holder goes on).
    pub fn pick(&mut self, point: Point, last: u8, candidates: &[u8]) -> u8 {
        let default = default_choice(point, last, candidates);
        let inline = matches!(point, Point::Inline { .. });
        // Options: at an inline point "none" (the default) then the candidates; elsewhere
        // the candidates, the default among them.
        let n = candidates.len() + usize::from(inline);
        if n <= 1 {
            return default;
        }
        let Some(&b) = self.bytes.get(self.at) else {
            return default;
        };
        self.at += 1;
        let from = if inline {
            0
        } else {
            candidates.iter().position(|&c| c == default).unwrap_or(0)
        };
        match (from + b as usize) % n {
            0 if inline => NONE,
            i if inline => candidates[i - 1],
            i => candidates[i],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_missing_bytes_take_the_default() {
        let mut s = ByteSchedule::new(&[0, 0]);
        assert_eq!(s.pick(Point::Top, 2, &[0, 2, 3]), 2);
        assert_eq!(s.pick(Point::Inline { holder: 1 }, 1, &[0]), NONE);
        assert_eq!(s.read(), 2);
        // Used up: the default, nothing read.
        assert_eq!(s.pick(Point::Top, 7, &[0, 2, 3]), 0);
        assert_eq!(s.pick(Point::Flush, 3, &[0, 3]), 3);
        assert_eq!(s.read(), 2);
    }

    #[test]
    fn a_byte_counts_options_from_the_default() {
        let mut s = ByteSchedule::new(&[1, 2, 3, 1, 2, 5]);
        // Top, default 2 (position 1) among [0, 2, 3]: 1 -> 3, 2 -> 0 (wraps), 3 -> 2.
        assert_eq!(s.pick(Point::Top, 2, &[0, 2, 3]), 3);
        assert_eq!(s.pick(Point::Top, 2, &[0, 2, 3]), 0);
        assert_eq!(s.pick(Point::Top, 2, &[0, 2, 3]), 2);
        // Inline, options [none, 0, 3]: 1 -> vCPU 0, 2 -> vCPU 3, 5 -> vCPU 3.
        assert_eq!(s.pick(Point::Inline { holder: 1 }, 1, &[0, 3]), 0);
        assert_eq!(s.pick(Point::Inline { holder: 1 }, 1, &[0, 3]), 3);
        assert_eq!(s.pick(Point::Inline { holder: 1 }, 1, &[0, 3]), 3);
        assert_eq!(s.read(), 6);
    }

    #[test]
    fn points_without_a_choice_read_nothing() {
        let mut s = ByteSchedule::new(&[1]);
        assert_eq!(s.pick(Point::Top, 0, &[4]), 4);
        assert_eq!(s.pick(Point::Flush, 0, &[1]), 1);
        assert_eq!(s.pick(Point::Inline { holder: 0 }, 0, &[]), NONE);
        assert_eq!(s.read(), 0);
        assert_eq!(s.pick(Point::Inline { holder: 0 }, 0, &[1]), 1);
        assert_eq!(s.read(), 1);
    }
}
