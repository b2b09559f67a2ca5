//! Quarry's host: the NL→SQL engine and the sandboxed WebAssembly plugin runtime it stands on.
//!
//! - [`plugins`]: loading, sandboxing and calling provider, dialect and explainer components;
//! - [`config`]: settings from the environment;
//! - [`llm`]: the operator's LLM, called through its provider plugin;
//! - [`store`]: the metadata store (chat sessions and their turns), SQLite or PostgreSQL;
//! - [`cli`]: the `quarry` command line.

pub mod api;
pub mod cli;
pub mod config;
pub mod db;
pub mod llm;
pub mod pipeline;
pub mod plugins;
pub mod schema;
pub mod store;
