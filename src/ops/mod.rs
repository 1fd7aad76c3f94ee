//! The operations, grouped by family; each file maps to a part of the original and to a
//! section of `docs/semantics.md`.

mod alias;
mod deregister;
mod query;
pub(crate) mod register;
mod reset;
mod temp_off;
