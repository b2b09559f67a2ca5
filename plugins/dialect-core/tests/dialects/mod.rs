//! The three built-in dialect definitions, compiled into the native tests from their crates'
//! sources. The dialect crates are `cdylib`-only (an `rlib` crate type beside it defeats LTO and
//! grows each component by ~15%), so they cannot be dependencies; their `export_dialect!` call
//! expands to nothing off `wasm32`.

// Not every test binary uses every dialect.
#![allow(dead_code)]

#[path = "../../../dialect-mysql/src/lib.rs"]
pub mod mysql;
#[path = "../../../dialect-postgres/src/lib.rs"]
pub mod postgres;
#[path = "../../../dialect-sqlite/src/lib.rs"]
pub mod sqlite;
