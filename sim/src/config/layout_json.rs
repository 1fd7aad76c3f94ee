//! The memory layout in configuration and trace JSON: the production crate's
//! [`MemoryLayout`] with every address as a `"0x…"` string (numbers are read too, so older
//! files load) and unknown fields refused. The shape is the derived one of `pgmsim`
//! (`{"Ram": {"host_base": …}}`, `"Mmio"`, `{"Mmio2": {"region": n}}`), so only the
//! number format changed.

use pgmsim::{Hpa, MemoryLayout, Mmio2Handle, RangeKind};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use pgmsim::layout::{Mmio2RegionSpec, RamRangeSpec};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutJson {
    ram_ranges: Vec<RangeJson>,
    mmio2_regions: Vec<RegionJson>,
    #[serde(with = "pgmsim_testkit::hex::hpa")]
    zero_page: Hpa,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeJson {
    #[serde(with = "pgmsim_testkit::hex::u64")]
    first: u64,
    pages: u32,
    kind: KindJson,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
enum KindJson {
    Ram {
        #[serde(with = "pgmsim_testkit::hex::hpa")]
        host_base: Hpa,
    },
    Mmio,
    Mmio2 {
        region: u32,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionJson {
    pages: u32,
    #[serde(with = "pgmsim_testkit::hex::hpa")]
    host_base: Hpa,
}

/// Writes a layout.
pub fn serialize<S: Serializer>(l: &MemoryLayout, s: S) -> Result<S::Ok, S::Error> {
    LayoutJson {
        ram_ranges: l
            .ram_ranges
            .iter()
            .map(|r| RangeJson {
                first: r.first,
                pages: r.pages,
                kind: match r.kind {
                    RangeKind::Ram { host_base } => KindJson::Ram { host_base },
                    RangeKind::Mmio => KindJson::Mmio,
                    RangeKind::Mmio2 { region } => KindJson::Mmio2 { region: region.0 },
                },
            })
            .collect(),
        mmio2_regions: l
            .mmio2_regions
            .iter()
            .map(|r| RegionJson {
                pages: r.pages,
                host_base: r.host_base,
            })
            .collect(),
        zero_page: l.zero_page,
    }
    .serialize(s)
}

/// Reads a layout (not validated: [`crate::config::SimConfig::validate`] does that).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MemoryLayout, D::Error> {
    let j = LayoutJson::deserialize(d)?;
    Ok(MemoryLayout {
        ram_ranges: j
            .ram_ranges
            .into_iter()
            .map(|r| RamRangeSpec {
                first: r.first,
                pages: r.pages,
                kind: match r.kind {
                    KindJson::Ram { host_base } => RangeKind::Ram { host_base },
                    KindJson::Mmio => RangeKind::Mmio,
                    KindJson::Mmio2 { region } => RangeKind::Mmio2 {
                        region: Mmio2Handle(region),
                    },
                },
            })
            .collect(),
        mmio2_regions: j
            .mmio2_regions
            .into_iter()
            .map(|r| Mmio2RegionSpec {
                pages: r.pages,
                host_base: r.host_base,
            })
            .collect(),
        zero_page: j.zero_page,
    })
}
