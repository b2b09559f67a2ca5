//! What the host grants to plugins, one module per capability (Spin's "factors"): each owns its
//! per-call state and implements its WIT import. Adding a capability touches one new file here and
//! the linker set-up in `linker.rs`.

pub mod events;
pub mod http;
pub mod llm;
pub mod log;
