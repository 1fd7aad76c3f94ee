//! The operations, grouped by family; each file maps to a part of the seed.

mod alias;
mod deregister;
mod query;
mod register;
mod reset;
mod temp_off;
