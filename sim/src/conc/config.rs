//! How a concurrent world runs, as drawn from the seed (swarm) or forced from the command
//! line. Absent from a configuration, the world is sequential: every step is atomic, which
//! is exactly the one-thread schedule.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which scheduler picks the thread that moves at each decision point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SchedulerKind {
    /// Uniformly among the threads that can move; lock-free steps of other vCPUs interleave
    /// a manager operation at each of its platform calls with a fixed probability.
    Random,
    /// PCT (Burckhardt et al., ASPLOS 2010): random thread priorities and `depth - 1`
    /// priority-change points; the highest-priority thread that can move always moves.
    Pct {
        /// Bug depth targeted (1..=3).
        depth: u8,
    },
}

impl std::fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchedulerKind::Random => write!(f, "random"),
            SchedulerKind::Pct { depth } => write!(f, "pct:{depth}"),
        }
    }
}

impl std::str::FromStr for SchedulerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "random" => Ok(SchedulerKind::Random),
            other => {
                let depth = other
                    .strip_prefix("pct:")
                    .ok_or_else(|| format!("expected `random` or `pct:D`, got {other:?}"))?;
                let depth: u8 = depth.parse().map_err(|e| format!("bad PCT depth {depth:?}: {e}"))?;
                if !(1..=3).contains(&depth) {
                    return Err(format!("PCT depth must be 1..=3, not {depth}"));
                }
                Ok(SchedulerKind::Pct { depth })
            }
        }
    }
}

/// How a TLB flush request reaches the vCPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shootdown {
    /// The requester waits until every vCPU has acknowledged (KVM's
    /// `kvm_flush_remote_tlbs`). What the manager's contract requires.
    Sync,
    /// Set a flag on every vCPU, poke, return (the original's `PGM_INVL_ALL_VCPU_TLBS` →
    /// `HMFlushTlbOnAllVCpus`). Not enough for rights reductions callers rely on (D16).
    Async,
}

/// A concurrent world's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    /// Device threads issuing manager operations (1 or 2).
    pub devices: u8,
    /// The scheduler.
    pub scheduler: SchedulerKind,
    /// The shootdown protocol.
    pub shootdown: Shootdown,
    /// Bring the world to a quiescent point (and check it) every this many operations.
    pub quiesce_every: u32,
    /// Seed of the scheduler's own random stream, so the same operations can be run under
    /// other schedules.
    pub schedule_seed: u64,
}

/// Command-line forcing of the concurrency settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConcurrencyOverrides {
    /// Force concurrency on or off.
    pub enabled: Option<bool>,
    /// Force the scheduler.
    pub scheduler: Option<SchedulerKind>,
    /// Force the shootdown protocol.
    pub shootdown: Option<Shootdown>,
    /// Force the number of device threads.
    pub devices: Option<u8>,
    /// Force the schedule seed (the same world and workload under another schedule).
    pub schedule_seed: Option<u64>,
}

/// The stream concurrency is drawn from: separate from the rest of the configuration, so
/// drawing it leaves every sequential seed's world exactly as it was.
const CONCURRENCY_STREAM: u64 = 0x636f_6e63_7572_7265; // "concurre"

impl Concurrency {
    /// The concurrency of `seed`'s world: about one seed in three is concurrent (2–8 vCPUs,
    /// 1–2 device threads, random or PCT scheduling, synchronous shootdowns), then `ov`.
    pub fn draw(seed: u64, ov: &ConcurrencyOverrides) -> Option<Concurrency> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ CONCURRENCY_STREAM);
        let drawn = rng.random_ratio(1, 3);
        let c = Concurrency {
            devices: rng.random_range(1..=2),
            scheduler: if rng.random_bool(0.5) {
                SchedulerKind::Random
            } else {
                SchedulerKind::Pct {
                    depth: rng.random_range(1..=3),
                }
            },
            shootdown: Shootdown::Sync,
            quiesce_every: [16u32, 64, 256][rng.random_range(0..3)],
            schedule_seed: rng.random(),
        };
        if !ov.enabled.unwrap_or(drawn) {
            return None;
        }
        Some(Concurrency {
            devices: ov.devices.unwrap_or(c.devices).clamp(1, 2),
            schedule_seed: ov.schedule_seed.unwrap_or(c.schedule_seed),
            scheduler: ov.scheduler.unwrap_or(c.scheduler),
            shootdown: ov.shootdown.unwrap_or(c.shootdown),
            ..c
        })
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=2).contains(&self.devices) {
            return Err(format!("concurrency.devices must be 1 or 2, not {}", self.devices));
        }
        if let SchedulerKind::Pct { depth } = self.scheduler {
            if !(1..=3).contains(&depth) {
                return Err(format!("concurrency.scheduler PCT depth must be 1..=3, not {depth}"));
            }
        }
        if self.quiesce_every == 0 {
            return Err("concurrency.quiesce_every must be at least 1".into());
        }
        Ok(())
    }
}
