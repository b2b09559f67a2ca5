//! Zero-configuration start: what `quarry` does when nothing is configured, so a new user sees an
//! answer within a minute of cloning.
//!
//! - No database configured (`QUARRY_DATABASE_URL`, `POSTGRES_HOST`): the bundled demo shop
//!   (`<data>/demo.db`, generated on first start) is the default database.
//! - No LLM configured (`LLM_*`): a local Ollama if one answers at `localhost:11434` (its first
//!   model), otherwise the built-in `offline` provider, which needs no network.
//! - The product API gets the same defaults as saved records on an empty store: a ready
//!   connection "Demo shop" and a provider config — created once; an operator's own records are
//!   never touched.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::connections::{ConnectionConfig, PrivacySettings, SourceType, seal_config};
use crate::db::DatabaseUrl;
use crate::llm::ProviderSpec;
use crate::pipeline::engine::EngineConfig;
use crate::secrets::Cipher;
use crate::store::Store;
use crate::store::connections::NewConnection;
use crate::store::providers::NewProvider;

/// Where a local Ollama answers by default.
const OLLAMA_URL: &str = "http://localhost:11434";
/// How long the start-up probe waits for it.
const OLLAMA_PROBE: Duration = Duration::from_millis(700);
/// The name of the demo connection.
pub const DEMO_CONNECTION: &str = "Demo shop";

/// Whether to fill in defaults: yes unless `QUARRY_ZERO_CONFIG` is `0`, `false` or `off` (for
/// deployments that must fail loudly when their database or LLM setting is missing).
pub fn enabled() -> bool {
    !matches!(
        std::env::var("QUARRY_ZERO_CONFIG").map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Ok("0" | "false" | "off" | "no")
    )
}

/// The defaults this start filled in (for the banner).
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// The demo database, when it is the default database.
    pub demo: Option<crate::demo::DemoInfo>,
    /// The provider chosen when none was configured: `ollama (MODEL)` or `offline`.
    pub provider: Option<String>,
}

/// Fill in the database and LLM `config` lacks.
pub async fn fill_in(config: &mut EngineConfig) -> anyhow::Result<Defaults> {
    let mut defaults = Defaults::default();
    if config.database.is_none() {
        let demo = crate::demo::ensure(config.settings.data_dir.join("demo.db")).await?;
        if demo.created {
            tracing::info!("created the demo database at {}", demo.path.display());
        }
        config.database = Some(DatabaseUrl::parse(&demo.url)?);
        defaults.demo = Some(demo);
    }
    // Any LLM setting at all (a provider or a base URL) is the operator's choice: left alone.
    if config.llm.provider.is_none() && config.llm.base_url.is_none() {
        let (spec, label) = match local_ollama_model().await {
            Some(model) => (
                ProviderSpec {
                    provider: Some("ollama".into()),
                    base_url: Some(OLLAMA_URL.into()),
                    model: Some(model.clone()),
                    ..ProviderSpec::default()
                },
                format!("ollama ({model})"),
            ),
            None => (
                ProviderSpec {
                    provider: Some("offline".into()),
                    model: Some("offline".into()),
                    ..ProviderSpec::default()
                },
                "offline".to_string(),
            ),
        };
        config.llm = spec;
        defaults.provider = Some(label);
    }
    Ok(defaults)
}

/// The first model of a local Ollama, if one answers quickly.
async fn local_ollama_model() -> Option<String> {
    let client = reqwest::Client::builder().timeout(OLLAMA_PROBE).build().ok()?;
    let body = client.get(format!("{OLLAMA_URL}/api/tags")).send().await.ok()?.bytes().await.ok()?;
    let tags: serde_json::Value = serde_json::from_slice(&body).ok()?;
    tags["models"].as_array()?.first()?["name"].as_str().map(str::to_string)
}

/// On an empty store, save the defaults as records the product API shows: the demo connection
/// and the chosen provider. Failures are logged: they cost the shortcut, not the start.
pub async fn seed_records(store: &Store, cipher: &Cipher, defaults: &Defaults, llm: &ProviderSpec) {
    if let Err(e) = seed(store, cipher, defaults, llm).await {
        tracing::warn!("could not save the default connection and provider: {e}");
    }
}

async fn seed(store: &Store, cipher: &Cipher, defaults: &Defaults, llm: &ProviderSpec) -> anyhow::Result<()> {
    if let Some(demo) = &defaults.demo {
        let (existing, _) = store.list_connections(1, 0).await?;
        if existing.is_empty() {
            let config =
                ConnectionConfig::parse(SourceType::Sqlite, &json!({ "path": demo.path.display().to_string() }))
                    .map_err(|problems| anyhow::anyhow!("demo connection config: {problems:?}"))?;
            let new = NewConnection {
                name: DEMO_CONNECTION.to_string(),
                source_type: SourceType::Sqlite.as_str().to_string(),
                config_sealed: seal_config(&config, cipher),
                privacy: PrivacySettings::default().to_json(),
                execution_mode: "auto_execute".to_string(),
            };
            if store.create_connection(new).await?.is_ok() {
                tracing::info!("saved the demo database as the connection \"{DEMO_CONNECTION}\"");
            }
        }
    }
    if defaults.provider.is_some() && store.providers().await?.is_empty() {
        let provider_type = llm.provider.clone().unwrap_or_else(|| "offline".into());
        store
            .insert_provider(NewProvider {
                display_name: provider_type.clone(),
                provider_type,
                base_url: llm.base_url.clone(),
                model: llm.model.clone(),
                embedding_model: llm.embedding_model.clone(),
                temperature: None,
                max_tokens: None,
                api_key_sealed: None,
                is_active: true,
            })
            .await?;
    }
    Ok(())
}

/// The console lines that tell a new user where to go and what to try.
pub fn banner(addr: &str, defaults: &Defaults, data_dir: &Path) -> String {
    let mut lines = vec![format!("Quarry is ready at {addr}  (API docs: {addr}/docs)")];
    if let Some(demo) = &defaults.demo {
        lines.push(format!("Database: the demo shop ({}) — set QUARRY_DATABASE_URL for your own", demo.path.display()));
    }
    if let Some(provider) = &defaults.provider {
        lines.push(format!("LLM: {provider} — set LLM_PROVIDER / LLM_BASE_URL / LLM_MODEL for another"));
    }
    lines.push(format!("Data folder: {}", data_dir.display()));
    if let Some(question) = crate::demo::SUGGESTED_QUESTIONS.first() {
        lines.push("Try:".to_string());
        lines.push(format!(
            "  curl -s {addr}/v1/chat/completions -H 'content-type: application/json' \\\n    -d '{{\"model\":\"quarry\",\"stream\":false,\"messages\":[{{\"role\":\"user\",\"content\":\"{question}\"}}]}}'"
        ));
        let more: Vec<&str> = crate::demo::SUGGESTED_QUESTIONS.iter().skip(1).copied().collect();
        lines.push(format!("  More questions: {}", more.join(" · ")));
        lines.push(format!("  Or open {addr}/docs and create the first admin with POST /api/v1/auth/register"));
    }
    lines.join("\n")
}
