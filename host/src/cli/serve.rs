//! `quarry serve` (and bare `quarry`): run the HTTP API.
//!
//! Loads the plugins, builds the engine from the environment, binds `SERVER_HOST:SERVER_PORT`
//! (port 0: any free port) and prints exactly one line to stdout, `quarry listening on
//! http://<addr>`, which scripts and the end-to-end tests read to find the port; everything else
//! is logged to stderr. SIGHUP reloads the plugins folder (logging what changed); SIGTERM or
//! Ctrl-C stops accepting connections and finishes the requests in flight.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::state::AppState;
use crate::api::v1::state::Product;
use crate::config::{PluginSettings, ServerSettings};
use crate::pipeline::engine::{Engine, EngineConfig, Overrides};
use crate::store::Store;
use crate::plugins::{PluginRegistry, PluginSummary};

/// Options of `quarry serve`; each overrides its environment variable.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [env: SERVER_HOST, default 0.0.0.0].
    #[arg(long)]
    pub host: Option<String>,
    /// Port to listen on; 0 picks a free one [env: SERVER_PORT, default 8000].
    #[arg(long)]
    pub port: Option<u16>,
}

/// Serve until SIGTERM or Ctrl-C.
pub async fn run(args: ServeArgs, plugin_settings: &PluginSettings) -> anyhow::Result<ExitCode> {
    let mut settings = ServerSettings::from_env();
    if let Some(host) = args.host {
        settings.host = host;
    }
    if let Some(port) = args.port {
        settings.port = port;
    }

    let registry = super::load_registry(plugin_settings).await?;
    let set = registry.current();
    tracing::info!("{} plugins loaded in {:?}", set.list().len(), set.load_time);
    let mut config = EngineConfig::from_env().context("cannot start the engine")?;
    let defaults = if super::first_run::enabled() {
        super::first_run::fill_in(&mut config).await.context("cannot prepare the default database and provider")?
    } else {
        super::first_run::Defaults::default()
    };
    let store = Store::from_env(&config.settings.data_dir).await.context("cannot open the metadata store")?;
    let engine = Engine::new(registry.clone(), config, store).await.context("cannot start the engine")?;
    // One Redis handle for the whole server (rate limits, caches, progress); none without Redis.
    let redis = crate::shared_redis::Redis::from_env().context("cannot use the Redis settings")?.map(Arc::new);
    if let Some(redis) = &redis {
        tracing::info!("Redis at {} shares the caches, rate limits and progress between servers", redis.config());
        engine.share_schemas(redis.clone());
    }
    let missing = engine.missing_configuration(&Overrides::default());
    if !missing.is_empty() {
        tracing::warn!(
            "not configured: {}; questions fail until these are set (the /inference routes also take them as query parameters)",
            missing.join(", ")
        );
    }
    if settings.api_keys.is_empty() {
        tracing::info!("API key authentication disabled (set OPENAI_API_KEY to enable it on /v1)");
    } else {
        tracing::info!(
            "API key authentication enabled on /v1 ({} key(s))",
            settings.api_keys.len()
        );
    }
    tracing::info!("model name on /v1/models: {}", settings.model_name);

    let listener = TcpListener::bind((settings.host.as_str(), settings.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let data_dir = engine.config().settings.data_dir.clone();
    let product = Product::with_redis(engine.clone(), &data_dir, redis.clone())
        .await
        .context("cannot start the product API")?;
    super::first_run::seed_records(&product.store, &product.cipher, &defaults, &engine.config().llm).await;
    prune_answer_cache(&product).await;
    let state =
        Arc::new(AppState::new(Arc::new(engine), settings).with_product(Arc::new(product)).with_redis(redis));
    announce(addr)?;
    if defaults.demo.is_some() || defaults.provider.is_some() {
        let shown = if addr.ip().is_unspecified() { format!("http://localhost:{}", addr.port()) } else { format!("http://{addr}") };
        eprintln!("\n{}\n", super::first_run::banner(&shown, &defaults, &data_dir));
    }

    tokio::spawn(reload_on_sighup(registry));
    crate::api::serve(listener, crate::api::router(state), shutdown_signal())
        .await
        .context("server failed")?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Drop answer-cache entries older than the TTL (they are invisible already; this frees room).
async fn prune_answer_cache(product: &Product) {
    let ttl = match product.settings.current().await {
        Ok(s) => (s.cache_ttl_secs > 0).then(|| std::time::Duration::from_secs(s.cache_ttl_secs)),
        Err(e) => {
            tracing::warn!("cannot read the settings to prune the answer cache: {e}");
            return;
        }
    };
    match product.cache.prune(ttl).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("pruned {n} expired answer-cache entries"),
        Err(e) => tracing::warn!("cannot prune the answer cache: {e}"),
    }
}

/// The one line on stdout.
fn announce(addr: SocketAddr) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "quarry listening on http://{addr}")?;
    out.flush()?;
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

/// Reload the plugins on every SIGHUP, logging what changed.
async fn reload_on_sighup(registry: Arc<PluginRegistry>) {
    #[cfg(unix)]
    {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => signal,
            Err(e) => {
                tracing::warn!(
                    "cannot listen for SIGHUP (plugins cannot be reloaded without a restart): {e}"
                );
                return;
            }
        };
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading plugins");
            let before = registry.current().list();
            let set = registry.reload().await;
            let changes = plugin_changes(&before, &set.list());
            if changes.is_empty() {
                tracing::info!("plugins reloaded in {:?}: nothing changed", set.load_time);
            }
            for change in changes {
                tracing::info!("plugins reloaded: {change}");
            }
        }
    }
    #[cfg(not(unix))]
    drop(registry);
}

/// What differs between two plugin lists, one line per plugin added, removed or changed.
fn plugin_changes(before: &[PluginSummary], after: &[PluginSummary]) -> Vec<String> {
    let key = |p: &PluginSummary| (p.kind.to_string(), p.name.clone());
    let old: BTreeMap<_, &PluginSummary> = before.iter().map(|p| (key(p), p)).collect();
    let new: BTreeMap<_, &PluginSummary> = after.iter().map(|p| (key(p), p)).collect();
    let mut changes = Vec::new();
    for (k, p) in &new {
        match old.get(k) {
            None => changes.push(format!(
                "added {} `{}` {} ({})",
                k.0, k.1, p.version, p.source
            )),
            Some(o) if o.version != p.version || o.source != p.source || o.wit != p.wit => changes
                .push(format!(
                    "updated {} `{}`: {} ({}) -> {} ({})",
                    k.0, k.1, o.version, o.source, p.version, p.source
                )),
            Some(_) => {}
        }
    }
    for (k, o) in &old {
        if !new.contains_key(k) {
            changes.push(format!(
                "removed {} `{}` {} ({})",
                k.0, k.1, o.version, o.source
            ));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::PluginKind;

    fn plugin(name: &str, version: &str) -> PluginSummary {
        PluginSummary {
            name: name.into(),
            kind: PluginKind::SqlDialect,
            version: version.into(),
            wit: "0.1.0".into(),
            source: "built-in".into(),
            description: String::new(),
            memory_bytes: 0,
            timeout_ms: 0,
            embeddings: false,
        }
    }

    #[test]
    fn describes_plugin_changes() {
        let before = [plugin("a", "1.0"), plugin("b", "1.0")];
        let after = [plugin("a", "1.1"), plugin("c", "0.1")];
        let changes = plugin_changes(&before, &after);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(
            changes[0].starts_with("updated") && changes[0].contains("1.0 (built-in) -> 1.1"),
            "{changes:?}"
        );
        assert!(
            changes[1].starts_with("added") && changes[2].starts_with("removed"),
            "{changes:?}"
        );
        assert!(plugin_changes(&before, &before).is_empty());
    }
}
