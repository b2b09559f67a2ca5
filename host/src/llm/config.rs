//! Which LLM Quarry talks to, and how.
//!
//! Two sources feed one type. The environment (the variables the SQL Query Engine uses:
//! `LLM_BASE_URL`, `LLM_MODEL`, `LLM_API_KEY`, `LLM_TEMPERATURE`, plus `LLM_PROVIDER` and a few
//! tuning knobs) and, later, provider configs stored through the API both produce a
//! [`ProviderSpec`]: every field optional, nothing checked. [`ProviderSpec::resolve`] applies the
//! preset, fills defaults and checks everything, giving the [`ProviderSettings`] a call uses.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `LLM_PROVIDER` | a preset (`openai`, `groq`, `openrouter`, `openai-compatible`, `lmstudio`, `vllm`, `anthropic`, `ollama`) or the name of a provider plugin; default `openai-compatible` when only `LLM_BASE_URL` is set |
//! | `LLM_BASE_URL` | the API's base URL (a preset supplies one) |
//! | `LLM_MODEL` | the model (some presets supply one) |
//! | `LLM_API_KEY` | the key; never logged, never shown to plugins (presets also read `ANTHROPIC_API_KEY`, `GROQ_API_KEY`, `OPENROUTER_API_KEY`) |
//! | `LLM_TEMPERATURE` | sampling temperature, 0–2 |
//! | `LLM_MAX_TOKENS` | default bound on generated tokens |
//! | `LLM_OPTIONS` | provider options, `key=value,key=value` or a JSON object |
//! | `LLM_MAX_RETRIES` | retries of 429/5xx answers (default 2) |
//! | `LLM_TIMEOUT` | total time of one request (default 300s) |
//! | `LLM_CONNECT_TIMEOUT`, `LLM_FIRST_BYTE_TIMEOUT`, `LLM_IDLE_TIMEOUT` | finer timeouts (10s, 180s, 60s) |
//! | `LLM_MAX_RESPONSE_BYTES` | response-size cap (default 16MiB) |
//! | `LLM_EMBEDDING_MODEL` | the embedding model, for providers whose plugin offers embeddings (`openai` defaults to `text-embedding-3-small`); `off` turns a preset's default off |

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Url;

use super::error::ConfigError;
use crate::plugins::capabilities::http::{HttpPolicy, Secret};
use crate::plugins::manifest::{parse_bytes, parse_duration};

/// A named starting point: which plugin speaks the API, and its usual base URL and model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// What the operator writes in `LLM_PROVIDER`.
    pub name: &'static str,
    /// The provider plugin that speaks this API.
    pub plugin: &'static str,
    /// The base URL when none is given (`None`: the operator must give one).
    pub base_url: Option<&'static str>,
    /// The model when none is given.
    pub default_model: Option<&'static str>,
    /// The embedding model when none is given (`None`: no embeddings unless one is configured).
    pub default_embedding_model: Option<&'static str>,
    /// An environment variable holding the key, read when `LLM_API_KEY` is not set.
    pub key_env: Option<&'static str>,
    /// Suffixes removed from a given base URL, because the plugin adds them itself
    /// (`https://api.anthropic.com/v1` → `https://api.anthropic.com`).
    pub strip_suffixes: &'static [&'static str],
    /// One line for people.
    pub description: &'static str,
}

/// The presets, in the order `quarry llm` lists them.
pub const PRESETS: &[Preset] = &[
    Preset { name: "openai", plugin: "openai", base_url: Some("https://api.openai.com/v1"), default_model: Some("gpt-4o-mini"), default_embedding_model: Some("text-embedding-3-small"), key_env: None, strip_suffixes: &[], description: "OpenAI" },
    Preset { name: "groq", plugin: "openai", base_url: Some("https://api.groq.com/openai/v1"), default_model: Some("llama-3.3-70b-versatile"), default_embedding_model: None, key_env: Some("GROQ_API_KEY"), strip_suffixes: &[], description: "Groq, through its OpenAI-compatible API" },
    Preset { name: "openrouter", plugin: "openai", base_url: Some("https://openrouter.ai/api/v1"), default_model: None, default_embedding_model: None, key_env: Some("OPENROUTER_API_KEY"), strip_suffixes: &[], description: "OpenRouter" },
    Preset { name: "openai-compatible", plugin: "openai", base_url: None, default_model: None, default_embedding_model: None, key_env: None, strip_suffixes: &[], description: "any server speaking OpenAI Chat Completions (vLLM, LM Studio, llama.cpp, Ollama /v1, …)" },
    Preset { name: "lmstudio", plugin: "openai", base_url: Some("http://localhost:1234/v1"), default_model: None, default_embedding_model: None, key_env: None, strip_suffixes: &[], description: "LM Studio's local server" },
    Preset { name: "vllm", plugin: "openai", base_url: Some("http://localhost:8000/v1"), default_model: None, default_embedding_model: None, key_env: None, strip_suffixes: &[], description: "a local vLLM server" },
    Preset { name: "anthropic", plugin: "anthropic", base_url: Some("https://api.anthropic.com"), default_model: Some("claude-sonnet-4-5"), default_embedding_model: None, key_env: Some("ANTHROPIC_API_KEY"), strip_suffixes: &["/v1"], description: "Anthropic Claude (Messages API)" },
    Preset { name: "offline", plugin: "offline", base_url: Some("http://offline.invalid"), default_model: Some("offline"), default_embedding_model: None, key_env: None, strip_suffixes: &[], description: "the built-in offline translator: common questions from the schema alone, no network (the URL is never contacted)" },
    Preset { name: "ollama", plugin: "ollama", base_url: Some("http://localhost:11434"), default_model: None, default_embedding_model: None, key_env: None, strip_suffixes: &["/v1", "/api"], description: "Ollama's native API" },
];

/// Values of `LLM_EMBEDDING_MODEL` that turn embeddings off (a preset's default included).
const EMBEDDINGS_OFF: &[&str] = &["off", "none"];

/// Other names operators use for a preset.
const ALIASES: &[(&str, &str)] = &[("claude", "anthropic"), ("openai_compatible", "openai-compatible"), ("lm-studio", "lmstudio")];

/// The preset called `name` (or one of its aliases).
pub fn preset(name: &str) -> Option<&'static Preset> {
    let name = name.trim().to_ascii_lowercase();
    let name = ALIASES.iter().find(|(a, _)| *a == name).map(|(_, p)| p.to_string()).unwrap_or(name);
    PRESETS.iter().find(|p| p.name == name)
}

/// A provider configuration as given: every field optional, nothing checked yet.
#[derive(Debug, Clone, Default)]
pub struct ProviderSpec {
    /// A preset name or a provider plugin name.
    pub provider: Option<String>,
    /// The API's base URL.
    pub base_url: Option<String>,
    /// The model.
    pub model: Option<String>,
    /// The embedding model (`off` or `none`: no embeddings, not even the preset's default).
    pub embedding_model: Option<String>,
    /// The API key.
    pub api_key: Option<Secret>,
    /// Default sampling temperature.
    pub temperature: Option<f32>,
    /// Default bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Provider options (see each provider's documentation).
    pub options: BTreeMap<String, String>,
    /// Retries of 429/5xx answers.
    pub max_retries: Option<u32>,
    /// Total time of one request.
    pub timeout: Option<Duration>,
    /// Time to connect.
    pub connect_timeout: Option<Duration>,
    /// Time to the response head.
    pub first_byte_timeout: Option<Duration>,
    /// Longest silence between two chunks.
    pub idle_timeout: Option<Duration>,
    /// Response-size cap in bytes.
    pub max_response_bytes: Option<u64>,
}

impl ProviderSpec {
    /// Read the `LLM_*` environment variables. A variable that is set but unreadable is an error
    /// (a typo in `LLM_TEMPERATURE` must not pass silently).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read the same variables through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let provider = get("LLM_PROVIDER");
        let key_env = provider.as_deref().and_then(preset).and_then(|p| p.key_env);
        let api_key = get("LLM_API_KEY").or_else(|| key_env.and_then(&get)).map(Secret::new);
        Ok(Self {
            provider,
            base_url: get("LLM_BASE_URL"),
            model: get("LLM_MODEL"),
            embedding_model: get("LLM_EMBEDDING_MODEL"),
            api_key,
            temperature: parse_var(&get, "LLM_TEMPERATURE", |v| v.parse().ok())?,
            max_tokens: parse_var(&get, "LLM_MAX_TOKENS", |v| v.parse().ok())?,
            options: match get("LLM_OPTIONS") {
                Some(raw) => parse_options(&raw).map_err(|reason| ConfigError::BadValue { setting: "LLM_OPTIONS".into(), reason })?,
                None => BTreeMap::new(),
            },
            max_retries: parse_var(&get, "LLM_MAX_RETRIES", |v| v.parse().ok())?,
            timeout: parse_var(&get, "LLM_TIMEOUT", parse_duration)?,
            connect_timeout: parse_var(&get, "LLM_CONNECT_TIMEOUT", parse_duration)?,
            first_byte_timeout: parse_var(&get, "LLM_FIRST_BYTE_TIMEOUT", parse_duration)?,
            idle_timeout: parse_var(&get, "LLM_IDLE_TIMEOUT", parse_duration)?,
            max_response_bytes: parse_var(&get, "LLM_MAX_RESPONSE_BYTES", parse_bytes)?,
        })
    }

    /// `self` with every field `over` sets replaced (command-line flags over the environment).
    pub fn overlay(mut self, over: ProviderSpec) -> Self {
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        // A different provider named on top brings its own defaults: drop the base URL that
        // belonged to the old one unless a new one is given too.
        if over.provider.is_some() && over.provider != self.provider && over.base_url.is_none() {
            self.base_url = None;
        }
        take!(provider, base_url, model, embedding_model, api_key, temperature, max_tokens, max_retries, timeout, connect_timeout, first_byte_timeout, idle_timeout, max_response_bytes);
        self.options.extend(over.options);
        self
    }

    /// Apply the preset, fill defaults and check everything.
    pub fn resolve(self) -> Result<ProviderSettings, ConfigError> {
        let name = match (&self.provider, &self.base_url) {
            (Some(p), _) => p.trim().to_ascii_lowercase(),
            // Only a base URL: the SQL Query Engine's set-up, an OpenAI-compatible server.
            (None, Some(_)) => "openai-compatible".to_string(),
            (None, None) => return Err(ConfigError::NotConfigured),
        };
        let preset = preset(&name);
        let plugin = match preset {
            Some(p) => p.plugin.to_string(),
            None => {
                let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    return Err(bad("LLM_PROVIDER", format!("{name:?} is neither a preset ({}) nor a plugin name", preset_names())));
                }
                name.clone()
            }
        };
        let base_url = match self.base_url.as_deref().or(preset.and_then(|p| p.base_url)) {
            Some(u) => normalise_base_url(u, preset.map(|p| p.strip_suffixes).unwrap_or(&[]))?,
            None => return Err(ConfigError::MissingBaseUrl { provider: name }),
        };
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t) {
                return Err(bad("LLM_TEMPERATURE", format!("{t} is outside 0–2")));
            }
        if self.max_tokens == Some(0) {
            return Err(bad("LLM_MAX_TOKENS", "must be at least 1".into()));
        }
        let defaults = HttpPolicy::default();
        let positive = |setting: &str, d: Option<Duration>, default: Duration| -> Result<Duration, ConfigError> {
            match d {
                Some(d) if d.is_zero() => Err(bad(setting, "must be more than zero".into())),
                Some(d) => Ok(d),
                None => Ok(default),
            }
        };
        let total = positive("LLM_TIMEOUT", self.timeout, defaults.total_timeout)?;
        let http = HttpPolicy {
            connect_timeout: positive("LLM_CONNECT_TIMEOUT", self.connect_timeout, defaults.connect_timeout)?,
            first_byte_timeout: positive("LLM_FIRST_BYTE_TIMEOUT", self.first_byte_timeout, defaults.first_byte_timeout.min(total))?,
            idle_timeout: positive("LLM_IDLE_TIMEOUT", self.idle_timeout, defaults.idle_timeout)?,
            total_timeout: total,
            max_response_bytes: match self.max_response_bytes {
                Some(0) => return Err(bad("LLM_MAX_RESPONSE_BYTES", "must be more than zero".into())),
                Some(n) => n,
                None => defaults.max_response_bytes,
            },
            max_retries: self.max_retries.unwrap_or(defaults.max_retries).min(10),
            ..defaults
        };
        Ok(ProviderSettings {
            model: self.model.filter(|m| !m.trim().is_empty()).or_else(|| preset.and_then(|p| p.default_model).map(str::to_string)),
            embedding_model: effective_embedding_model(
                self.embedding_model.as_deref(),
                preset.and_then(|p| p.default_embedding_model),
            ),
            provider: preset.map(|p| p.name.to_string()).unwrap_or(name),
            plugin,
            base_url,
            api_key: self.api_key.filter(|k| !k.expose().trim().is_empty()),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            options: self.options.into_iter().collect(),
            http,
        })
    }
}

/// The embedding model in use: `given` (blank counts as not given), else `default`; `off` or
/// `none` means no embeddings at all.
pub fn effective_embedding_model(given: Option<&str>, default: Option<&str>) -> Option<String> {
    match given.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) if EMBEDDINGS_OFF.contains(&m.to_ascii_lowercase().as_str()) => None,
        Some(m) => Some(m.to_string()),
        None => default.map(str::to_string),
    }
}

/// A checked provider configuration: what one [`super::LlmClient`] uses.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// The preset or plugin name the operator chose (`groq`, `anthropic`, `my-provider`).
    pub provider: String,
    /// The provider plugin that is called.
    pub plugin: String,
    /// The API's base URL (the plugin's `default` endpoint), without a trailing `/`.
    pub base_url: String,
    /// The model, if one is configured (completions need one; listing models does not).
    pub model: Option<String>,
    /// The embedding model, if one is configured; without one the provider offers no embeddings.
    pub embedding_model: Option<String>,
    /// The API key; it never prints.
    pub api_key: Option<Secret>,
    /// Default temperature for requests that set none.
    pub temperature: Option<f32>,
    /// Default token bound for requests that set none.
    pub max_tokens: Option<u32>,
    /// Provider options, passed to the plugin.
    pub options: Vec<(String, String)>,
    /// Timeouts, retries and the size cap of the plugin's HTTP.
    pub http: HttpPolicy,
}

fn bad(setting: &str, reason: String) -> ConfigError {
    ConfigError::BadValue { setting: setting.to_string(), reason }
}

fn preset_names() -> String {
    PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

fn parse_var<T>(get: &impl Fn(&str) -> Option<String>, key: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, ConfigError> {
    match get(key) {
        None => Ok(None),
        Some(raw) => parse(&raw).map(Some).ok_or_else(|| bad(key, format!("{raw:?} is not a valid value"))),
    }
}

/// `key=value,key=value`, or a JSON object of strings, numbers and booleans.
fn parse_options(raw: &str) -> Result<BTreeMap<String, String>, String> {
    if raw.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw).map_err(|e| format!("not a JSON object: {e}"))?;
        return map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => Ok((k, v.to_string())),
                _ => Err(format!("option `{k}` must be a string, number or boolean")),
            })
            .collect();
    }
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
            _ => Err(format!("expected key=value, got {pair:?}")),
        })
        .collect()
}

/// Check a base URL and put it in canonical form (no trailing `/`, preset suffixes removed).
fn normalise_base_url(raw: &str, strip: &[&str]) -> Result<String, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|e| bad("LLM_BASE_URL", format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad("LLM_BASE_URL", format!("{raw:?} must be an http:// or https:// URL")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("LLM_BASE_URL", "must not contain credentials (put the key in LLM_API_KEY)".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("LLM_BASE_URL", format!("{raw:?} must not have a query or fragment")));
    }
    let mut s = url.as_str().trim_end_matches('/').to_string();
    for suffix in strip {
        if let Some(rest) = s.strip_suffix(suffix) {
            s = rest.to_string();
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(vars: &[(&str, &str)]) -> Result<ProviderSpec, ConfigError> {
        let map: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ProviderSpec::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn only_a_base_url_means_an_openai_compatible_server() {
        let s = spec(&[("LLM_BASE_URL", "http://vllm:8000/v1/"), ("LLM_MODEL", "qwen"), ("LLM_TEMPERATURE", "0.1")]).unwrap().resolve().unwrap();
        assert_eq!((s.provider.as_str(), s.plugin.as_str(), s.base_url.as_str()), ("openai-compatible", "openai", "http://vllm:8000/v1"));
        assert_eq!(s.model.as_deref(), Some("qwen"));
        assert_eq!(s.temperature, Some(0.1));
        assert!(s.api_key.is_none());
    }

    #[test]
    fn presets_pick_the_plugin_base_url_model_and_key_variable() {
        let s = spec(&[("LLM_PROVIDER", "groq"), ("GROQ_API_KEY", "gsk-123456")]).unwrap().resolve().unwrap();
        assert_eq!((s.plugin.as_str(), s.base_url.as_str()), ("openai", "https://api.groq.com/openai/v1"));
        assert_eq!(s.model.as_deref(), Some("llama-3.3-70b-versatile"));
        assert_eq!(s.api_key.as_ref().map(Secret::expose), Some("gsk-123456"));
        let s = spec(&[("LLM_PROVIDER", "Claude"), ("LLM_BASE_URL", "https://proxy.example.com/v1")]).unwrap().resolve().unwrap();
        assert_eq!((s.provider.as_str(), s.base_url.as_str()), ("anthropic", "https://proxy.example.com"));
        let s = spec(&[("LLM_PROVIDER", "ollama")]).unwrap().resolve().unwrap();
        assert_eq!(s.base_url, "http://localhost:11434");
        let s = spec(&[("LLM_PROVIDER", "my-llm"), ("LLM_BASE_URL", "https://x.example.com")]).unwrap().resolve().unwrap();
        assert_eq!(s.plugin, "my-llm");
    }

    #[test]
    fn bad_values_are_errors_that_name_the_variable_and_never_the_key() {
        let err = spec(&[("LLM_BASE_URL", "http://x"), ("LLM_TEMPERATURE", "warm")]).unwrap_err();
        assert!(err.to_string().contains("LLM_TEMPERATURE"), "{err}");
        assert!(matches!(spec(&[]).unwrap().resolve(), Err(ConfigError::NotConfigured)));
        assert!(matches!(spec(&[("LLM_PROVIDER", "openai-compatible")]).unwrap().resolve(), Err(ConfigError::MissingBaseUrl { .. })));
        let err = spec(&[("LLM_BASE_URL", "https://me:sk-secret-1@x.com")]).unwrap().resolve().unwrap_err();
        assert!(!err.to_string().contains("sk-secret-1"), "{err}");
        assert!(spec(&[("LLM_BASE_URL", "http://x"), ("LLM_TEMPERATURE", "3")]).unwrap().resolve().is_err());
        let s = spec(&[("LLM_BASE_URL", "http://x"), ("LLM_API_KEY", "sk-abcdef-123")]).unwrap().resolve().unwrap();
        assert!(!format!("{s:?}").contains("sk-abcdef-123"));
    }

    #[test]
    fn options_and_durations_parse() {
        let s = spec(&[("LLM_BASE_URL", "http://x"), ("LLM_OPTIONS", "stream_usage=false, organization=org-1"), ("LLM_TIMEOUT", "90s"), ("LLM_MAX_RETRIES", "0")])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(s.options, vec![("organization".to_string(), "org-1".to_string()), ("stream_usage".to_string(), "false".to_string())]);
        assert_eq!(s.http.total_timeout, Duration::from_secs(90));
        assert_eq!(s.http.max_retries, 0);
        let s = spec(&[("LLM_BASE_URL", "http://x"), ("LLM_OPTIONS", r#"{"num_ctx": 8192, "think": true}"#)]).unwrap().resolve().unwrap();
        assert_eq!(s.options[0], ("num_ctx".to_string(), "8192".to_string()));
    }

    #[test]
    fn the_embedding_model_comes_from_the_variable_else_the_preset_and_can_be_turned_off() {
        let s = spec(&[("LLM_PROVIDER", "openai")]).unwrap().resolve().unwrap();
        assert_eq!(s.embedding_model.as_deref(), Some("text-embedding-3-small"));
        let s = spec(&[("LLM_PROVIDER", "openai"), ("LLM_EMBEDDING_MODEL", "text-embedding-3-large")])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(s.embedding_model.as_deref(), Some("text-embedding-3-large"));
        let s = spec(&[("LLM_PROVIDER", "openai"), ("LLM_EMBEDDING_MODEL", "Off")]).unwrap().resolve().unwrap();
        assert_eq!(s.embedding_model, None);
        let s = spec(&[("LLM_PROVIDER", "ollama")]).unwrap().resolve().unwrap();
        assert_eq!(s.embedding_model, None, "no preset default: no embeddings unless configured");
        let s = spec(&[("LLM_BASE_URL", "http://x"), ("LLM_EMBEDDING_MODEL", " nomic-embed-text ")])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(s.embedding_model.as_deref(), Some("nomic-embed-text"));
    }

    #[test]
    fn flags_overlay_the_environment() {
        let env = spec(&[("LLM_PROVIDER", "ollama"), ("LLM_BASE_URL", "http://gpu:11434"), ("LLM_MODEL", "llama3")]).unwrap();
        let over = ProviderSpec { provider: Some("openai".into()), ..ProviderSpec::default() };
        let s = env.overlay(over).resolve().unwrap();
        assert_eq!(s.base_url, "https://api.openai.com/v1", "the ollama base URL must not carry over to openai");
        assert_eq!(s.model.as_deref(), Some("llama3"));
    }
}
