//! Quarry's host: the NL→SQL engine and the sandboxed WebAssembly plugin runtime it stands on.
//!
//! - [`plugins`]: loading, sandboxing and calling provider, dialect and explainer components;
//! - [`config`]: settings from the environment;
//! - [`llm`]: the operator's LLM, called through its provider plugin;
//! - [`store`]: the metadata store (chat sessions and their turns), SQLite or PostgreSQL;
//! - [`cli`]: the `quarry` command line.

pub mod answer_cache;
pub mod api;
pub mod app_settings;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod db;
pub mod demo;
pub mod embedding;
pub mod examples;
pub mod llm;
pub mod pipeline;
pub mod plugins;
pub mod progress_bus;
pub mod providers;
pub mod schema;
pub mod secrets;
pub mod semantic;
pub mod shared_redis;
pub mod store;
