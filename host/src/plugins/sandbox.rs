//! The state of one plugin call (its `Store` data): an empty WASI context, the capabilities the
//! call was granted, the memory limiter and the deadline.
//!
//! A store lives for exactly one call and is dropped afterwards, whatever happened, so nothing a
//! plugin keeps in memory survives into another request.

use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::capabilities::events::EventsCapability;
use super::capabilities::http::{HttpCapability, HttpGrant};
use super::capabilities::{llm::LlmCapability, log::LogCapability};
use super::redact::Redactor;

/// Largest table a plugin may grow (function references); generous for Rust guests.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Raised (as the trap's error) when a guest asks for memory past its cap.
#[derive(Debug, thiserror::Error)]
#[error("memory cap of {cap} bytes exceeded: {requested} bytes requested")]
pub struct MemoryCapExceeded {
    /// Bytes the guest asked for in total.
    pub requested: u64,
    /// The cap.
    pub cap: u64,
}

/// Caps linear memory per instance and reports a hit as [`MemoryCapExceeded`].
pub struct MemoryLimiter {
    cap: u64,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        if desired > self.cap {
            return Err(wasmtime::Error::new(MemoryCapExceeded { requested: desired, cap: self.cap }));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Capabilities granted to one call. Anything not granted is refused by its import.
#[derive(Default)]
pub struct Grants {
    /// Outbound HTTP (providers): the endpoints, secrets and limits of this call.
    pub http: Option<HttpGrant>,
    /// Streamed events (providers).
    pub events: Option<EventsCapability>,
    /// Completions through the host (explainers).
    pub llm: Option<LlmCapability>,
    /// Secrets to scrub from logs and errors.
    pub redactor: Redactor,
}

impl Grants {
    /// The grants of one provider call: outbound HTTP as `http` allows, streamed events to
    /// `events` (if streaming), and a redactor that knows the grant's secrets plus `extra_secrets`.
    pub fn provider(http: HttpGrant, events: Option<EventsCapability>, extra_secrets: Vec<String>) -> Self {
        let mut secrets = http.secret_values();
        secrets.extend(extra_secrets);
        Self { redactor: Redactor::new(secrets), http: Some(http), events, llm: None }
    }
}

/// The data of one call's `Store`.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) deadline: Instant,
    pub(crate) log: LogCapability,
    pub(crate) http: HttpCapability,
    pub(crate) events: EventsCapability,
    pub(crate) llm: LlmCapability,
}

impl PluginState {
    /// State for one call of `plugin`, capped at `memory_cap` bytes and stopped at `deadline`.
    pub fn new(plugin: &str, memory_cap: u64, deadline: Instant, grants: Grants) -> Self {
        // Nothing: no arguments, no environment, no preopened directories, no sockets, no name
        // lookups; stdin is closed and stdout/stderr are discarded.
        let wasi = WasiCtxBuilder::new().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter { cap: memory_cap },
            deadline,
            http: match grants.http {
                Some(grant) => HttpCapability::new(plugin, grant, grants.redactor.clone()),
                None => HttpCapability::denied(),
            },
            log: LogCapability::new(plugin, grants.redactor),
            events: grants.events.unwrap_or_default(),
            llm: grants.llm.unwrap_or_default(),
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
