//! Calling a `sql-dialect` plugin: prompt guidance and validation, with the host's checks on
//! what comes back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bindings::dialect::exports::quarry::plugin::dialect::{Policy, StatementKind, Validated, Violation};
use super::bindings::types::PluginInfo;
use super::error::CallError;
use super::loader::{Linked, LoadedPlugin};
use super::runtime::Runtime;
use super::sandbox::Grants;

/// Longest SQL the host sends to or accepts from a dialect plugin.
pub const MAX_SQL_BYTES: usize = 1 << 20;

/// A handle to a loaded `sql-dialect` plugin.
#[derive(Clone)]
pub struct DialectPlugin {
    runtime: Arc<Runtime>,
    plugin: Arc<LoadedPlugin>,
}

impl DialectPlugin {
    /// Wrap `plugin`, which must be a dialect.
    pub(crate) fn new(runtime: Arc<Runtime>, plugin: Arc<LoadedPlugin>) -> Option<Self> {
        matches!(plugin.linked, Linked::Dialect(_)).then_some(Self { runtime, plugin })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.plugin.manifest.name
    }

    /// The loaded plugin behind this handle.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    fn pre(&self) -> &super::bindings::dialect::SqlDialectPre<super::sandbox::PluginState> {
        match &self.plugin.linked {
            Linked::Dialect(pre) => pre,
            // `new` only wraps dialects.
            _ => unreachable!("DialectPlugin wraps a dialect"),
        }
    }

    /// The plugin's own description of itself.
    pub async fn info(&self) -> Result<PluginInfo, CallError> {
        let pre = self.pre().clone();
        self.runtime
            .call(self.name(), self.plugin.manifest.limits, Grants::default(), move |store| {
                Box::pin(async move {
                    let b = pre.instantiate_async(&mut *store).await?;
                    b.quarry_plugin_dialect().call_info(&mut *store).await
                })
            })
            .await
    }

    /// Dialect notes for the LLM prompt, asked of the plugin once per load (a failed call is
    /// not remembered, so the next question asks again).
    pub async fn prompt_guidance(&self) -> Result<String, CallError> {
        let guidance = self
            .plugin
            .guidance
            .get_or_try_init(|| {
                let pre = self.pre().clone();
                self.runtime.call(self.name(), self.plugin.manifest.limits, Grants::default(), move |store| {
                    Box::pin(async move {
                        let b = pre.instantiate_async(&mut *store).await?;
                        b.quarry_plugin_dialect().call_prompt_guidance(&mut *store).await
                    })
                })
            })
            .await?;
        Ok(guidance.clone())
    }

    /// Check `sql` against `policy`: `Ok(Ok(validated))` to run it, `Ok(Err(violations))` to
    /// refuse it, `Err` when the plugin itself failed.
    pub async fn validate(&self, sql: &str, policy: &Policy) -> Result<Result<Validated, Vec<Violation>>, CallError> {
        if sql.len() > MAX_SQL_BYTES {
            return Ok(Err(vec![Violation {
                code: "too-long".into(),
                message: format!("The query is {} bytes long; the limit is {MAX_SQL_BYTES} bytes.", sql.len()),
                offset: None,
            }]));
        }
        let pre = self.pre().clone();
        let sql_owned = sql.to_string();
        let policy = policy.clone();
        let verdict = self
            .runtime
            .call(self.name(), self.plugin.manifest.limits, Grants::default(), move |store| {
                Box::pin(async move {
                    let b = pre.instantiate_async(&mut *store).await?;
                    b.quarry_plugin_dialect().call_validate(&mut *store, &sql_owned, &policy).await
                })
            })
            .await?;
        self.check_verdict(verdict)
    }

    /// Time one `validate` call phase by phase, for `quarry bench plugins --breakdown`. Unlike a
    /// real call, the instance is called twice (plus once more with a trivial call): the second
    /// `validate` shows what the guest costs once its memory, allocator and statics are warm, so
    /// the difference to the first one is the price of a fresh instance.
    pub async fn measure_validate_phases(&self, sql: &str, policy: &Policy) -> Result<ValidatePhases, CallError> {
        let pre = self.pre().clone();
        let sql_owned = sql.to_string();
        let policy = policy.clone();
        let started = Instant::now();
        let mut phases = self
            .runtime
            .call(self.name(), self.plugin.manifest.limits, Grants::default(), move |store| {
                Box::pin(async move {
                    let mut phases = ValidatePhases::default();
                    let t = Instant::now();
                    let b = pre.instantiate_async(&mut *store).await?;
                    phases.instantiate = t.elapsed();
                    let t = Instant::now();
                    let _ = b.quarry_plugin_dialect().call_validate(&mut *store, &sql_owned, &policy).await?;
                    phases.first_validate = t.elapsed();
                    let t = Instant::now();
                    let _ = b.quarry_plugin_dialect().call_validate(&mut *store, &sql_owned, &policy).await?;
                    phases.second_validate = t.elapsed();
                    let t = Instant::now();
                    let _ = b.quarry_plugin_dialect().call_info(&mut *store).await?;
                    phases.trivial_call = t.elapsed();
                    Ok(phases)
                })
            })
            .await?;
        phases.total = started.elapsed();
        Ok(phases)
    }

    /// Refuse output the host cannot trust: an accepted statement must be non-empty SQL, and
    /// a refusal must say why.
    fn check_verdict(
        &self,
        verdict: Result<Validated, Vec<Violation>>,
    ) -> Result<Result<Validated, Vec<Violation>>, CallError> {
        let malformed =
            |detail: &str| CallError::Malformed { plugin: self.name().to_string(), detail: detail.to_string() };
        match &verdict {
            Ok(v) => {
                if v.sql.trim().is_empty() {
                    return Err(malformed("accepted a statement but returned empty SQL"));
                }
                if v.sql.len() > MAX_SQL_BYTES || v.sql.contains('\0') {
                    return Err(malformed("returned SQL that is too long or contains NUL bytes"));
                }
                if v.tables.iter().any(|t| t.is_empty() || t.chars().any(char::is_control)) {
                    return Err(malformed("listed a table name that is empty or contains control characters"));
                }
                if v.kind == StatementKind::Explain && !v.sql.trim_start().to_ascii_lowercase().starts_with("explain") {
                    return Err(malformed("said the statement is an EXPLAIN but the SQL is not"));
                }
            }
            Err(violations) => {
                if violations.is_empty() {
                    return Err(malformed("refused a statement without saying why"));
                }
            }
        }
        Ok(verdict)
    }
}

/// Where the time of one `validate` goes (see [`DialectPlugin::measure_validate_phases`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidatePhases {
    /// The whole call through the runtime: admission, store, instantiation, the calls, drop.
    pub total: Duration,
    /// Instantiating the pre-linked component in the fresh store.
    pub instantiate: Duration,
    /// The first `validate` in the fresh instance (what a real call pays).
    pub first_validate: Duration,
    /// The same `validate` again in the same instance (warm memory, allocator and statics).
    pub second_validate: Duration,
    /// `info()` after that: a call with trivial arguments and a small result.
    pub trivial_call: Duration,
}

/// The policy dialect plugins get when the caller has none: a row limit and nothing else.
pub fn default_policy(row_limit: Option<u64>) -> Policy {
    Policy { row_limit, allowed_tables: None, denied_functions: Vec::new() }
}
