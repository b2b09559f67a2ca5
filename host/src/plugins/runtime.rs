//! The shared wasmtime engine and the one function every plugin call goes through.
//!
//! One [`Engine`] (pooling allocator with copy-on-write memory and slots reset in place, epoch
//! interruption driven by a ticker thread) and one linker per world serve every plugin. Each call
//! gets a fresh `Store` with a memory cap and a deadline, runs inside an admission semaphore sized
//! to the pool, and is dropped afterwards; whatever goes wrong becomes a [`CallError`] naming the
//! plugin.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline,
};

use super::artifact_cache::ArtifactCache;
use super::bindings;
use super::capabilities::{events::EventsCapability, http::HttpCapability, llm::LlmCapability, log::LogCapability};
use super::error::CallError;
use super::manifest::{Limits, MAX_MEMORY_BYTES};
use super::sandbox::{Grants, MemoryCapExceeded, PluginState};

/// The wasmtime version the host is pinned to (see `host/Cargo.toml`); part of the artifact key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// How often the epoch advances; a runaway guest is stopped within one tick of its deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Dirty linear memory a pool slot keeps mapped between calls (see `engine_config`). Validating
/// a 3-join query dirties a few hundred KiB; a call that dirties more has the rest unmapped.
const MEMORY_KEEP_RESIDENT: usize = 2 << 20;

/// The same for a slot's tables (a Rust guest's function table is a few KiB).
const TABLE_KEEP_RESIDENT: usize = 1 << 20;

/// Slack for the outer wall-clock timeout, so a spinning guest is reported by the (more precise)
/// epoch deadline and the outer timeout only catches a guest parked in a host import.
const OUTER_TIMEOUT_GRACE: Duration = Duration::from_millis(100);

/// Settings of the plugin runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Plugin calls that may run at once (the size of the instance pool).
    pub max_concurrent_calls: u32,
    /// Where compiled components are cached; `None` compiles in memory.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling allocator (falls back to on-demand when the pool cannot be reserved).
    pub pooling: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { max_concurrent_calls: 64, cache_dir: None, pooling: true }
    }
}

/// The shared engine, linkers, artifact cache and admission control.
pub struct Runtime {
    engine: Engine,
    pub(crate) dialect_linker: Linker<PluginState>,
    pub(crate) provider_linker: Linker<PluginState>,
    pub(crate) explainer_linker: Linker<PluginState>,
    pub(crate) cache: ArtifactCache,
    slots: Semaphore,
    capacity: usize,
    pooled: bool,
}

/// A boxed future that borrows the call's store: what a call body returns.
pub type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl Runtime {
    /// Build the engine (pooling when possible), the linkers, and start the epoch ticker.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Arc<Self>> {
        let (engine, pooled) = if config.pooling {
            match Engine::new(&engine_config(Some(config.max_concurrent_calls))) {
                Ok(e) => (e, true),
                Err(e) => {
                    tracing::warn!("pooling allocator unavailable ({e}); using on-demand allocation");
                    (Engine::new(&engine_config(None)).map_err(anyhow_from_wasmtime)?, false)
                }
            }
        } else {
            (Engine::new(&engine_config(None)).map_err(anyhow_from_wasmtime)?, false)
        };
        start_epoch_ticker(&engine);
        let runtime = Runtime {
            dialect_linker: dialect_linker(&engine).map_err(anyhow_from_wasmtime)?,
            provider_linker: provider_linker(&engine).map_err(anyhow_from_wasmtime)?,
            explainer_linker: explainer_linker(&engine).map_err(anyhow_from_wasmtime)?,
            cache: ArtifactCache::new(config.cache_dir),
            slots: Semaphore::new(config.max_concurrent_calls as usize),
            capacity: config.max_concurrent_calls as usize,
            engine,
            pooled,
        };
        Ok(Arc::new(runtime))
    }

    /// The shared engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether the pooling allocator is in use.
    pub fn is_pooled(&self) -> bool {
        self.pooled
    }

    /// Run one call of `plugin` in a fresh store: admit it, arm the deadline, run `body`, and
    /// turn every failure into a [`CallError`]. The store is dropped before returning.
    pub async fn call<R, F>(&self, plugin: &str, limits: Limits, grants: Grants, body: F) -> Result<R, CallError>
    where
        R: Send,
        F: for<'a> FnOnce(&'a mut Store<PluginState>) -> CallFuture<'a, R> + Send,
    {
        let admitted_at = Instant::now();
        let _permit = match tokio::time::timeout(limits.timeout, self.slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(CallError::Busy {
                    plugin: plugin.to_string(),
                    capacity: self.capacity,
                    waited: admitted_at.elapsed(),
                });
            }
        };
        let redactor = grants.redactor.clone();
        // The deadline starts now, not when the call was queued: waiting is not the guest's fault.
        let deadline = Instant::now() + limits.timeout;
        let mut store = Store::new(&self.engine, PluginState::new(plugin, limits.memory_bytes, deadline, grants));
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Yield to tokio at every tick so a busy guest cannot starve other tasks.
                Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
            }
        });
        let outcome = tokio::time::timeout(limits.timeout + OUTER_TIMEOUT_GRACE, body(&mut store)).await;
        drop(store);
        match outcome {
            Err(_elapsed) => Err(CallError::Deadline { plugin: plugin.to_string(), limit: limits.timeout }),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(classify(plugin, limits, &err, |s| redactor.scrub(s))),
        }
    }
}

/// Map a wasmtime error from a call to the typed error that says what happened.
fn classify(plugin: &str, limits: Limits, err: &wasmtime::Error, scrub: impl Fn(&str) -> String) -> CallError {
    let plugin = plugin.to_string();
    if let Some(cap) = err.downcast_ref::<MemoryCapExceeded>() {
        return CallError::MemoryCap { plugin, requested: cap.requested, cap: cap.cap };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Deadline { plugin, limit: limits.timeout },
        Some(Trap::StackOverflow) => CallError::StackOverflow { plugin },
        Some(trap) => CallError::Trapped { plugin, detail: scrub(&trap.to_string()) },
        None => CallError::Host { plugin, detail: scrub(&format!("{err:#}")) },
    }
}

fn engine_config(pool_size: Option<u32>) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.memory_init_cow(true);
    // Keep well over 1 MiB between the guest's stack limit and the fiber's stack: host imports
    // run on the fiber, and overflowing it would abort the process.
    config.max_wasm_stack(1 << 20);
    config.async_stack_size(4 << 20);
    if let Some(n) = pool_size {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_memories(n)
            .total_tables(n * 4)
            .total_stacks(n)
            .total_core_instances(n * 8)
            .max_memory_size(MAX_MEMORY_BYTES as usize);
        // Reset a slot in place after each call instead of unmapping its pages, so the next fresh
        // instance finds them mapped rather than page-faulting on every page it touches (a third
        // of a `validate` call otherwise). The reset copies the original contents back (the
        // memory image, or zeros), so nothing one call leaves in memory reaches the next. This
        // pays only with `PAGEMAP_SCAN` (Linux 6.7+), which finds the pages a call dirtied;
        // without it wasmtime would rewrite the whole first `keep_resident` bytes on every call.
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(Enabled::Auto)
                .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
                .table_keep_resident(TABLE_KEEP_RESIDENT);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advance the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("quarry-epoch".into()).spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    });
    if let Err(e) = spawned {
        // Without the ticker no deadline fires; the outer wall-clock timeout still does.
        tracing::error!("cannot start the epoch ticker thread: {e}");
    }
}

fn add_common(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    bindings::dialect::quarry::plugin::log::add_to_linker::<_, HasSelf<LogCapability>>(linker, |s| &mut s.log)?;
    Ok(())
}

fn dialect_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    add_common(&mut linker)?;
    Ok(linker)
}

fn provider_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    add_common(&mut linker)?;
    bindings::provider::quarry::plugin::http::add_to_linker::<_, HasSelf<HttpCapability>>(&mut linker, |s| {
        &mut s.http
    })?;
    bindings::provider::quarry::plugin::events::add_to_linker::<_, HasSelf<EventsCapability>>(&mut linker, |s| {
        &mut s.events
    })?;
    Ok(linker)
}

fn explainer_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    add_common(&mut linker)?;
    bindings::explainer::quarry::plugin::llm::add_to_linker::<_, HasSelf<LlmCapability>>(&mut linker, |s| &mut s.llm)?;
    Ok(linker)
}

/// wasmtime 48's error is its own type; convert at the binary's edge.
pub fn anyhow_from_wasmtime(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}
