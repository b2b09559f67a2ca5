//! LLM provider configurations saved through the API: which provider types exist, how a saved or
//! unsaved configuration becomes a [`ProviderSpec`], checking one live ([`test`]) and listing its
//! models ([`list_models`]), and [`resolve`], which picks the configuration a chat uses.
//!
//! A saved API key is sealed with [`Cipher`] and opened only in memory, right before a call;
//! it never appears in a response, a log line or an error message.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::llm::config::{PRESETS, preset};
use crate::llm::{LlmClient, LlmError, ProviderSpec, Secret, user_prompt};
use crate::plugins::capabilities::http::HttpClients;
use crate::plugins::{PluginKind, PluginRegistry};
use crate::secrets::{Cipher, SecretsError};
use crate::store::providers::ProviderRecord;
use crate::store::{Store, StoreError};

/// Tokens a health check asks for: enough for any model to say something, cheap for all.
pub const TEST_MAX_TOKENS: u32 = 16;

/// A provider type: a preset or a loaded provider plugin without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderType {
    /// What a config's `provider_type` holds (`openai`, `groq`, `my-plugin`).
    pub name: String,
    /// For people.
    pub display_name: String,
    /// The provider plugin that speaks its API.
    pub plugin: String,
    /// The base URL used when a config gives none (`None`: a config must give one).
    pub default_base_url: Option<String>,
    /// The model used when a config gives none.
    pub default_model: Option<String>,
    /// The embedding model used when a config gives none (`None`: no embeddings by default).
    pub default_embedding_model: Option<String>,
    /// Whether its plugin, as loaded now, exports embeddings.
    pub exports_embeddings: bool,
}

/// Every provider type: the presets, then each loaded provider plugin that no preset names.
pub fn provider_types(registry: &PluginRegistry) -> Vec<ProviderType> {
    let set = registry.current();
    let exports_embeddings = |plugin: &str| set.provider(plugin).is_some_and(|p| p.has_embeddings());
    let mut types: Vec<ProviderType> = PRESETS
        .iter()
        .map(|p| ProviderType {
            name: p.name.to_string(),
            display_name: p.description.to_string(),
            plugin: p.plugin.to_string(),
            default_base_url: p.base_url.map(str::to_string),
            default_model: p.default_model.map(str::to_string),
            default_embedding_model: p.default_embedding_model.map(str::to_string),
            exports_embeddings: exports_embeddings(p.plugin),
        })
        .collect();
    let mut plugins = set.names(PluginKind::LlmProvider);
    plugins.sort();
    for name in plugins {
        if !types.iter().any(|t| t.name == name) {
            types.push(ProviderType {
                display_name: format!("{name} (provider plugin)"),
                plugin: name.clone(),
                exports_embeddings: exports_embeddings(&name),
                name,
                default_base_url: None,
                default_model: None,
                default_embedding_model: None,
            });
        }
    }
    types
}

/// The provider type called `name` (a preset's alias such as `claude` gives `anthropic`).
pub fn provider_type(registry: &PluginRegistry, name: &str) -> Option<ProviderType> {
    let canonical = preset(name).map(|p| p.name.to_string()).unwrap_or_else(|| name.trim().to_string());
    provider_types(registry).into_iter().find(|t| t.name == canonical)
}

/// A configuration to call, saved or not (every field as given).
#[derive(Clone, Default)]
pub struct Unsaved {
    /// The provider type (already known to exist).
    pub provider_type: String,
    /// The base URL; `None`: the type's.
    pub base_url: Option<String>,
    /// The model; `None`: the type's default.
    pub model: Option<String>,
    /// The embedding model; `None`: the type's default (`off`: none).
    pub embedding_model: Option<String>,
    /// The API key; `None` (or blank): the type's environment variable, when the config uses
    /// the type's own base URL.
    pub api_key: Option<Secret>,
    /// Default temperature.
    pub temperature: Option<f32>,
    /// Default token bound.
    pub max_tokens: Option<u32>,
}

impl Unsaved {
    /// The configuration as a [`ProviderSpec`].
    ///
    /// Without a key, a preset's key variable (`GROQ_API_KEY`, `ANTHROPIC_API_KEY`, …; `OPENAI_API_KEY`
    /// for `openai`) is used, but only when the base URL is the preset's own: an operator's key
    /// must never be sent to a server an API caller chose.
    pub fn spec(self) -> ProviderSpec {
        let base_url = self.base_url.filter(|u| !u.trim().is_empty());
        let api_key = self
            .api_key
            .filter(|k| !k.expose().trim().is_empty())
            .or_else(|| env_key(&self.provider_type, base_url.as_deref()));
        ProviderSpec {
            provider: Some(self.provider_type),
            base_url,
            model: self.model.filter(|m| !m.trim().is_empty()),
            embedding_model: self.embedding_model.filter(|m| !m.trim().is_empty()),
            api_key,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            ..ProviderSpec::default()
        }
    }

    /// A saved configuration, its key opened with `cipher`.
    pub fn from_record(record: &ProviderRecord, cipher: &Cipher) -> Result<Unsaved, SecretsError> {
        let api_key = match &record.api_key_sealed {
            Some(sealed) => Some(Secret::new(cipher.open_str(sealed)?)),
            None => None,
        };
        Ok(Unsaved {
            provider_type: record.provider_type.clone(),
            base_url: record.base_url.clone(),
            model: record.model.clone(),
            embedding_model: record.embedding_model.clone(),
            api_key,
            temperature: record.temperature.map(|t| t as f32),
            max_tokens: record.max_tokens.and_then(|n| u32::try_from(n).ok()),
        })
    }
}

/// The operator's key for a preset from the environment, when `base_url` is the preset's own.
fn env_key(provider_type: &str, base_url: Option<&str>) -> Option<Secret> {
    let p = preset(provider_type)?;
    let own_url = match (base_url, p.base_url) {
        (None, Some(_)) => true,
        (Some(given), Some(default)) => given.trim().trim_end_matches('/') == default,
        _ => false,
    };
    if !own_url {
        return None;
    }
    let var = p.key_env.or((p.name == "openai").then_some("OPENAI_API_KEY"))?;
    std::env::var(var).ok().filter(|k| !k.trim().is_empty()).map(Secret::new)
}

/// Why a provider could not be called.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The configuration cannot be used (a bad base URL, none where the type needs one, no
    /// model for a completion): the caller's to fix.
    #[error("{0}")]
    Config(String),
    /// The provider's API failed: unreachable, refused the key, timed out, answered garbage.
    #[error("{0}")]
    Upstream(String),
}

/// One process-wide pool of HTTP clients for provider calls made from the API.
fn http_clients() -> HttpClients {
    static CLIENTS: OnceLock<HttpClients> = OnceLock::new();
    CLIENTS.get_or_init(HttpClients::new).clone()
}

fn client(registry: &Arc<PluginRegistry>, spec: ProviderSpec) -> Result<(LlmClient, Vec<String>), CallError> {
    // Scrub the key from anything we say, even though the client already does.
    let secrets: Vec<String> = spec.api_key.iter().map(|k| k.expose().to_string()).filter(|k| k.len() >= 4).collect();
    let settings = spec.resolve().map_err(|e| CallError::Config(scrub(&e.to_string(), &secrets)))?;
    Ok((LlmClient::new(registry.clone(), settings, http_clients()), secrets))
}

fn call_error(e: LlmError, secrets: &[String]) -> CallError {
    let message = scrub(&e.to_string(), secrets);
    match e {
        LlmError::Config(_) | LlmError::UnknownProvider { .. } => CallError::Config(message),
        _ => CallError::Upstream(message),
    }
}

fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
}

/// The model ids the provider offers, sorted and without duplicates.
pub async fn list_models(registry: &Arc<PluginRegistry>, spec: ProviderSpec) -> Result<Vec<String>, CallError> {
    let (client, secrets) = client(registry, spec)?;
    let models = client.list_models().await.map_err(|e| call_error(e, &secrets))?;
    let mut ids: Vec<String> = models.into_iter().map(|m| m.id).filter(|id| !id.trim().is_empty()).collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The result of a live check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TestOutcome {
    /// Whether the provider answered.
    pub success: bool,
    /// What happened, for people (never the key).
    pub message: String,
}

/// Check a configuration live: a tiny completion when it has a model (its own or the type's
/// default), else a model listing; then, when the provider offers embeddings, one embedding,
/// reported in the message (a failed embedding does not fail the check: without embeddings
/// Quarry compares questions by their words). Never fails: a failure is `success: false` with
/// the reason.
pub async fn test(registry: &Arc<PluginRegistry>, spec: ProviderSpec) -> TestOutcome {
    let fail = |message: String| TestOutcome { success: false, message };
    let (client, secrets) = match client(registry, spec) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    let started = Instant::now();
    let who = format!("{} at {}", client.settings().provider, client.settings().base_url);
    let outcome = match client.settings().model.clone() {
        Some(model) => {
            let mut req = user_prompt("Reply with the single word OK.");
            req.max_tokens = Some(TEST_MAX_TOKENS);
            req.temperature = Some(0.0);
            client.complete(req).await.map(|_| format!("{who} answered with model {model}"))
        }
        None => client.list_models().await.map(|m| format!("{who} lists {} models", m.len())),
    };
    let ms = started.elapsed().as_millis();
    match outcome {
        Ok(message) => {
            let mut message = format!("{message} in {ms} ms");
            if client.offers_embeddings() {
                message.push_str(&match client.embed(&["Quarry health check".to_string()]).await {
                    Ok(Some(e)) => {
                        format!("; embeddings from {} ({} dimensions)", e.model, e.vectors.first().map_or(0, Vec::len))
                    }
                    Ok(None) => String::new(),
                    Err(e) => format!("; embeddings failed: {}", call_error(e, &secrets)),
                });
            }
            TestOutcome { success: true, message: scrub(&message, &secrets) }
        }
        Err(e) => fail(call_error(e, &secrets).to_string()),
    }
}

/// Why [`resolve`] found no configuration.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Nothing matches `wanted` (no config with that id, none of that type, or none at all when
    /// nothing was wanted): the caller may fall back to the environment's provider.
    #[error("no saved provider configuration matches {0}")]
    NotFound(String),
    /// The saved key cannot be opened (another secret key, or damaged).
    #[error("the saved API key of provider config {id} cannot be opened: {source}")]
    Key {
        /// The config.
        id: String,
        /// Why.
        #[source]
        source: SecretsError,
    },
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The saved configuration a chat should use, as a [`ProviderSpec`] with its key opened:
/// - `wanted` a config id (UUID): that config, active or not;
/// - `wanted` a provider type (`groq`, `claude`, a plugin name): the newest active config of
///   that type, else its newest config;
/// - nothing (or blank): the newest active config, else the newest config.
///
/// [`ResolveError::NotFound`] when nothing matches; the spec is not checked (call
/// [`ProviderSpec::resolve`]).
pub async fn resolve(store: &Store, cipher: &Cipher, wanted: Option<&str>) -> Result<ProviderSpec, ResolveError> {
    let wanted = wanted.map(str::trim).filter(|w| !w.is_empty());
    let record = match wanted {
        Some(w) if uuid::Uuid::parse_str(w).is_ok() => store.provider(&w.to_ascii_lowercase()).await?,
        Some(w) => {
            let name = preset(w).map(|p| p.name.to_string()).unwrap_or_else(|| w.to_string());
            store.preferred_provider(Some(&name)).await?
        }
        None => store.preferred_provider(None).await?,
    };
    let record = record.ok_or_else(|| {
        ResolveError::NotFound(wanted.map(|w| format!("{w:?}")).unwrap_or_else(|| "any provider".to_string()))
    })?;
    let unsaved =
        Unsaved::from_record(&record, cipher).map_err(|source| ResolveError::Key { id: record.id.clone(), source })?;
    Ok(unsaved.spec())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::providers::NewProvider;

    async fn store() -> Store {
        Store::open("sqlite::memory:").await.unwrap()
    }

    async fn save(store: &Store, cipher: &Cipher, ty: &str, model: &str, key: Option<&str>, active: bool) -> String {
        let record = store
            .insert_provider(NewProvider {
                provider_type: ty.into(),
                display_name: format!("{ty} {model}"),
                base_url: Some("http://127.0.0.1:9/v1".into()),
                model: Some(model.into()),
                api_key_sealed: key.map(|k| cipher.seal_str(k)),
                is_active: active,
                ..NewProvider::default()
            })
            .await
            .unwrap();
        // Creation times must differ for "newest" to mean something.
        tokio::time::sleep(Duration::from_millis(5)).await;
        record.id
    }

    #[tokio::test]
    async fn resolve_by_id_type_or_preference() {
        let store = store().await;
        let cipher = Cipher::generate();
        assert!(matches!(resolve(&store, &cipher, None).await, Err(ResolveError::NotFound(_))));

        let old_groq = save(&store, &cipher, "groq", "g-old", Some("gsk-old-key"), true).await;
        let _new_groq_inactive = save(&store, &cipher, "groq", "g-new", None, false).await;
        let openai = save(&store, &cipher, "openai", "o-1", Some("sk-openai-key"), false).await;

        let spec = resolve(&store, &cipher, Some(&openai)).await.unwrap();
        assert_eq!((spec.provider.as_deref(), spec.model.as_deref()), (Some("openai"), Some("o-1")));
        assert_eq!(spec.api_key.as_ref().map(Secret::expose), Some("sk-openai-key"));

        let spec = resolve(&store, &cipher, Some("groq")).await.unwrap();
        assert_eq!(spec.model.as_deref(), Some("g-old"), "the newest ACTIVE config of the type");
        assert_eq!(spec.api_key.as_ref().map(Secret::expose), Some("gsk-old-key"));

        let spec = resolve(&store, &cipher, Some("OpenAI")).await.unwrap();
        assert_eq!(spec.model.as_deref(), Some("o-1"), "inactive, but the only one of its type");

        let spec = resolve(&store, &cipher, None).await.unwrap();
        assert_eq!(spec.model.as_deref(), Some("g-old"), "the newest active config overall");

        store.delete_provider(&old_groq).await.unwrap();
        let spec = resolve(&store, &cipher, None).await.unwrap();
        assert_eq!(spec.model.as_deref(), Some("o-1"), "no active config: the newest one");

        assert!(matches!(resolve(&store, &cipher, Some("anthropic")).await, Err(ResolveError::NotFound(_))));
        let missing = uuid::Uuid::new_v4().to_string();
        assert!(matches!(resolve(&store, &cipher, Some(&missing)).await, Err(ResolveError::NotFound(_))));

        let other_key = Cipher::generate();
        let err = resolve(&store, &other_key, Some(&openai)).await.unwrap_err();
        assert!(matches!(err, ResolveError::Key { .. }));
        assert!(!err.to_string().contains("sk-openai-key"));
    }

    #[test]
    fn the_operators_key_only_goes_to_the_presets_own_url() {
        // SAFETY of the test: a variable no other test reads.
        unsafe { std::env::set_var("GROQ_API_KEY", "gsk-from-env") };
        let own = Unsaved { provider_type: "groq".into(), ..Unsaved::default() }.spec();
        assert_eq!(own.api_key.as_ref().map(Secret::expose), Some("gsk-from-env"));
        let elsewhere = Unsaved {
            provider_type: "groq".into(),
            base_url: Some("http://evil.example/v1".into()),
            ..Unsaved::default()
        }
        .spec();
        assert!(elsewhere.api_key.is_none());
        let given =
            Unsaved { provider_type: "groq".into(), api_key: Some(Secret::new("gsk-given")), ..Unsaved::default() }
                .spec();
        assert_eq!(given.api_key.as_ref().map(Secret::expose), Some("gsk-given"));
    }
}
