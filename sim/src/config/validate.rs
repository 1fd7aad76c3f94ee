//! What makes a configuration usable: everything `World::new` and the simulator's own
//! assumptions need, checked before any world is built, so a bad configuration (from a
//! `--config` file, a trace, or flags on top of either) is bad input — a message naming the
//! field, the range or region index and the limit, exit code 2 — never a "Setup" failure
//! that looks like a manager bug.

use pgmsim::{LayoutError, ManagerConfig, RangeKind, SetupError, PAGE_SHIFT};

use super::SimConfig;

/// Largest guest, over every RAM range: the largest main range `--ram-mib` accepts
/// (16 GiB) plus 1 GiB for the other ranges a seed draws.
pub const MAX_GUEST_PAGES: u64 = 17 << (30 - PAGE_SHIFT);
/// Largest `--ram-mib` (the main RAM range).
pub const MAX_RAM_MIB: u32 = 16 << 10;
/// Largest number of TLB entries per vCPU (sets × ways).
pub const MAX_TLB_ENTRIES: u32 = 1 << 14;
/// Largest virtual window, in pages.
pub const MAX_VA_PAGES: u32 = 1 << 16;
/// Largest number of guest address spaces.
pub const MAX_ADDRESS_SPACES: u8 = 16;
/// Largest page-table pool, in pages.
pub const MAX_PT_POOL_PAGES: u32 = 1 << 16;
/// Pages the first RAM range needs beyond the page-table pool.
pub const RAM_BEYOND_POOL: u32 = 9;

/// Who owns a stretch of host-physical backing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// `layout.zero_page`.
    ZeroPage,
    /// `layout.ram_ranges[i]` (a RAM range).
    Range(usize),
    /// `layout.mmio2_regions[i]`.
    Region(usize),
}

impl std::fmt::Display for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backing::ZeroPage => write!(f, "layout.zero_page"),
            Backing::Range(i) => write!(f, "layout.ram_ranges[{i}].host_base"),
            Backing::Region(i) => write!(f, "layout.mmio2_regions[{i}].host_base"),
        }
    }
}

/// What is wrong with a configuration: the field, the index and the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The layout breaks a rule of the production manager (semantics §2.1).
    #[error("layout.{0}")]
    Layout(LayoutError),
    /// The handler capacity is outside what the manager accepts.
    #[error(
        "max_handlers {value} must be in {}..={}",
        pgmsim::api::MIN_HANDLERS,
        pgmsim::api::MAX_HANDLERS
    )]
    MaxHandlers {
        /// The value given.
        value: u32,
    },
    /// A count outside its range.
    #[error("{field} {value} must be in {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value given.
        value: u64,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// Too many TLB entries per vCPU.
    #[error("tlb_sets x tlb_ways = {sets} x {ways} must be at most {MAX_TLB_ENTRIES} entries")]
    TlbEntries {
        /// Sets.
        sets: u16,
        /// Ways.
        ways: u8,
    },
    /// The page-table pool cannot hold one top-level table per address space.
    #[error("pt_pool_pages {pool} must be in address_spaces ({spaces})..={MAX_PT_POOL_PAGES}")]
    PtPool {
        /// Pool pages.
        pool: u32,
        /// Address spaces.
        spaces: u8,
    },
    /// There is no RAM range at all.
    #[error("layout.ram_ranges is empty: the first range holds the guest's page tables")]
    NoRanges,
    /// The first range is not plain RAM.
    #[error("layout.ram_ranges[0] must be RAM (it holds the guest's page-table pool)")]
    FirstRangeNotRam,
    /// The first range is too small for the pool.
    #[error("layout.ram_ranges[0] has {pages} pages; the page-table pool (pt_pool_pages = {pool}) needs at least {}", pool + RAM_BEYOND_POOL)]
    FirstRangeTooSmall {
        /// The range's pages.
        pages: u32,
        /// Pool pages.
        pool: u32,
    },
    /// Too many handler types.
    #[error("types: {count} handler types, at most {}", pgmsim::handler::MAX_HANDLER_TYPES)]
    TooManyTypes {
        /// Types given.
        count: usize,
    },
    /// The guest is larger than the simulator builds.
    #[error("the guest has {pages} pages ({} MiB) over all layout.ram_ranges; at most {MAX_GUEST_PAGES} pages ({} MiB)", pages >> 8, MAX_GUEST_PAGES >> 8)]
    GuestTooLarge {
        /// Pages over all ranges.
        pages: u64,
    },
    /// Two host backings overlap (every page must have its own host frame).
    #[error("{a} ({a_first:#x}..={a_last:#x}) and {b} ({b_first:#x}..={b_last:#x}) back the same host pages")]
    HostOverlap {
        /// One owner.
        a: Backing,
        /// Its first byte.
        a_first: u64,
        /// Its last byte.
        a_last: u64,
        /// The other owner.
        b: Backing,
        /// Its first byte.
        b_first: u64,
        /// Its last byte.
        b_last: u64,
    },
    /// Exclusive NEM asked for in shadow mode.
    #[error("nem_exclusive is true but mode is Shadow: exclusive NEM needs mode Nem")]
    NemExclusiveInShadow,
    /// Every operation family is disabled: the generator would have nothing to draw.
    #[error("weights: every operation family has weight 0; at least one must be positive")]
    NoWeights,
    /// The concurrency settings are unusable.
    #[error("concurrency: {0}")]
    Concurrency(String),
}

impl From<SetupError> for ConfigError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Layout(l) => ConfigError::Layout(l),
            SetupError::Capacity { max_handlers } => ConfigError::MaxHandlers { value: max_handlers },
        }
    }
}

fn range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange { field, value, min, max })
    }
}

impl SimConfig {
    /// Checks everything `World::new` and the simulator assume, so no configuration (from a
    /// trace, `--config` or flags) can fail to build, allocate absurdly, or break an
    /// assumption the generator keeps (disjoint host backing, a page-table pool in RAM).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.layout.validate().map_err(ConfigError::Layout)?;
        let manager = ManagerConfig {
            max_handlers: self.max_handlers,
            ..ManagerConfig::default()
        };
        let capacity = manager.capacity()?;
        // Boot nodes and dirty trackers are created at start: both must fit, with a slot
        // left for the steps.
        let max_boot = capacity.saturating_sub(self.dirty_trackers() + 1);
        range("boot_nodes", self.boot_nodes.into(), 0, max_boot.into())?;
        self.validate_machine()?;
        self.validate_guest_memory()?;
        if self.types.len() > pgmsim::handler::MAX_HANDLER_TYPES {
            return Err(ConfigError::TooManyTypes {
                count: self.types.len(),
            });
        }
        if self.weights.total() == 0 {
            return Err(ConfigError::NoWeights);
        }
        if let Some(c) = &self.concurrency {
            c.validate().map_err(ConfigError::Concurrency)?;
        }
        Ok(())
    }

    /// vCPUs, TLBs, the virtual window, address spaces and check interval: every vCPU
    /// allocates a shadow PTE per virtual page and its TLB up front, so both are bounded.
    fn validate_machine(&self) -> Result<(), ConfigError> {
        range("vcpus", self.vcpus.into(), 1, 8)?;
        range("va_pages", self.va_pages.into(), 1, MAX_VA_PAGES.into())?;
        range("tlb_sets", self.tlb_sets.into(), 1, MAX_TLB_ENTRIES.into())?;
        range("tlb_ways", self.tlb_ways.into(), 1, u8::MAX.into())?;
        if self.tlb_sets as u32 * self.tlb_ways as u32 > MAX_TLB_ENTRIES {
            return Err(ConfigError::TlbEntries {
                sets: self.tlb_sets,
                ways: self.tlb_ways,
            });
        }
        range("revmap_capacity", self.revmap_capacity.into(), 1, u8::MAX.into())?;
        range(
            "address_spaces",
            self.address_spaces.into(),
            1,
            MAX_ADDRESS_SPACES.into(),
        )?;
        range("full_check_every", self.full_check_every.into(), 1, u32::MAX.into())?;
        if self.nem_exclusive && self.mode == crate::mmu::Mode::Shadow {
            return Err(ConfigError::NemExclusiveInShadow);
        }
        if self.pt_pool_pages < self.address_spaces as u32 || self.pt_pool_pages > MAX_PT_POOL_PAGES {
            return Err(ConfigError::PtPool {
                pool: self.pt_pool_pages,
                spaces: self.address_spaces,
            });
        }
        Ok(())
    }

    /// The page-table pool at the start of a RAM first range, the guest's size, and host
    /// backings that never share a frame (the simulator keys guest memory by host frame).
    fn validate_guest_memory(&self) -> Result<(), ConfigError> {
        let first = self.layout.ram_ranges.first().ok_or(ConfigError::NoRanges)?;
        if !matches!(first.kind, RangeKind::Ram { .. }) {
            return Err(ConfigError::FirstRangeNotRam);
        }
        if first.pages < self.pt_pool_pages + RAM_BEYOND_POOL {
            return Err(ConfigError::FirstRangeTooSmall {
                pages: first.pages,
                pool: self.pt_pool_pages,
            });
        }
        let pages = self.layout.total_pages();
        if pages > MAX_GUEST_PAGES {
            return Err(ConfigError::GuestTooLarge { pages });
        }
        let mut backings: Vec<(u64, u64, Backing)> = vec![(
            self.layout.zero_page.0,
            self.layout.zero_page.0 + (1 << PAGE_SHIFT) - 1,
            Backing::ZeroPage,
        )];
        for (i, r) in self.layout.ram_ranges.iter().enumerate() {
            if let RangeKind::Ram { host_base } = r.kind {
                backings.push((
                    host_base.0,
                    host_base.0 + ((r.pages as u64) << PAGE_SHIFT) - 1,
                    Backing::Range(i),
                ));
            }
        }
        for (i, r) in self.layout.mmio2_regions.iter().enumerate() {
            let last = r.host_base.0 + ((r.pages as u64) << PAGE_SHIFT) - 1;
            backings.push((r.host_base.0, last, Backing::Region(i)));
        }
        backings.sort_by_key(|&(first, _, _)| first);
        for pair in backings.windows(2) {
            let ((a_first, a_last, a), (b_first, b_last, b)) = (pair[0], pair[1]);
            if b_first <= a_last {
                return Err(ConfigError::HostOverlap {
                    a,
                    a_first,
                    a_last,
                    b,
                    b_first,
                    b_last,
                });
            }
        }
        Ok(())
    }
}
