//! Addresses in JSON as hex strings (`"0x7f000"`), the form engineers read them in.
//!
//! Serialising writes a lower-case `0x`-prefixed string. Deserialising accepts that string
//! or a plain JSON number, so files written before addresses became strings (trace format
//! version 1) still load. Use with `#[serde(with = "pgmsim_testkit::hex::u64")]` (a plain
//! `u64` address), `hex::hpa` (a host-physical address) or, for the address type parameter
//! of [`crate::ApiCall`], the [`HexAddr`] trait through `hex::addr`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// Parses `0x…` (hex) or plain decimal digits.
pub fn parse(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(&h.replace('_', ""), 16),
        None => t.parse::<u64>(),
    };
    parsed.map_err(|e| format!("{s:?} is not an address (0x-prefixed hex or decimal): {e}"))
}

struct AddrVisitor;

impl Visitor<'_> for AddrVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an address: a \"0x…\" hex string or a non-negative integer")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("address {v} is negative")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse(v).map_err(E::custom)
    }
}

/// A plain `u64` address.
pub mod u64 {
    use super::*;

    /// Writes `0x…`.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{v:#x}"))
    }

    /// Reads `0x…` or a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(AddrVisitor)
    }
}

/// A host-physical address ([`pgmsim::Hpa`]).
pub mod hpa {
    use super::*;
    use pgmsim::Hpa;

    /// Writes `0x…`.
    pub fn serialize<S: Serializer>(v: &Hpa, s: S) -> Result<S::Ok, S::Error> {
        super::u64::serialize(&v.0, s)
    }

    /// Reads `0x…` or a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hpa, D::Error> {
        super::u64::deserialize(d).map(Hpa)
    }
}

/// An address type that (de)serialises as a hex string: the type parameter of
/// [`crate::ApiCall`] in traces.
pub trait HexAddr: Sized {
    /// The address as a number.
    fn to_u64(&self) -> u64;
    /// The address from a number.
    fn from_u64(v: u64) -> Self;
}

impl HexAddr for u64 {
    fn to_u64(&self) -> u64 {
        *self
    }
    fn from_u64(v: u64) -> Self {
        v
    }
}

/// Any [`HexAddr`].
pub mod addr {
    use super::*;

    /// Writes `0x…`.
    pub fn serialize<A: HexAddr, S: Serializer>(v: &A, s: S) -> Result<S::Ok, S::Error> {
        super::u64::serialize(&v.to_u64(), s)
    }

    /// Reads `0x…` or a number.
    pub fn deserialize<'de, A: HexAddr, D: Deserializer<'de>>(d: D) -> Result<A, D::Error> {
        super::u64::deserialize(d).map(A::from_u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct T {
        #[serde(with = "super::u64")]
        a: u64,
    }

    #[test]
    fn writes_hex_and_reads_hex_or_numbers() {
        let t = T { a: 0x1_0000_8000 };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"a":"0x100008000"}"#);
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
        assert_eq!(serde_json::from_str::<T>(r#"{"a":4295000064}"#).unwrap(), t);
        assert_eq!(serde_json::from_str::<T>(r#"{"a":"4295000064"}"#).unwrap(), t);
        assert_eq!(
            serde_json::from_str::<T>(r#"{"a":"0xffffffffffffffff"}"#).unwrap().a,
            u64::MAX
        );
        for bad in [
            r#"{"a":"0xg"}"#,
            r#"{"a":-1}"#,
            r#"{"a":"0x1ffffffffffffffff"}"#,
            r#"{"a":1.5}"#,
        ] {
            assert!(serde_json::from_str::<T>(bad).is_err(), "{bad}");
        }
    }
}
