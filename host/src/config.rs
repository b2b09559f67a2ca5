//! Settings read from the environment, with their defaults.

use std::path::PathBuf;

/// Where plugins are dropped in, unless `QUARRY_PLUGINS_DIR` says otherwise.
pub const DEFAULT_PLUGINS_DIR: &str = "./plugins.d";
/// Where Quarry keeps its files, unless `QUARRY_DATA_DIR` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// Settings of the plugin runtime.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// The drop-in plugins folder.
    pub plugins_dir: PathBuf,
    /// Where compiled components are cached.
    pub cache_dir: PathBuf,
    /// How many plugin calls may run at once.
    pub max_concurrent_calls: u32,
}

impl PluginSettings {
    /// Read `QUARRY_PLUGINS_DIR`, `QUARRY_DATA_DIR`, `QUARRY_CACHE_DIR` and
    /// `QUARRY_PLUGIN_CONCURRENCY`. Compiled plugins are cached under `QUARRY_CACHE_DIR`, else
    /// `<QUARRY_DATA_DIR>/cache/plugins`; several servers may share one cache directory.
    pub fn from_env() -> Self {
        let data_dir = env_path("QUARRY_DATA_DIR").unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        Self {
            plugins_dir: env_path("QUARRY_PLUGINS_DIR").unwrap_or_else(|| PathBuf::from(DEFAULT_PLUGINS_DIR)),
            cache_dir: env_path("QUARRY_CACHE_DIR").unwrap_or_else(|| data_dir.join("cache").join("plugins")),
            max_concurrent_calls: std::env::var("QUARRY_PLUGIN_CONCURRENCY")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or(64),
        }
    }
}

fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Settings of the HTTP server and of the SQL Query Engine compatible routes, read from the same
/// environment variables SQL Query Engine uses.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `SERVER_HOST` (default `0.0.0.0`).
    pub host: String,
    /// `SERVER_PORT` (default 8000).
    pub port: u16,
    /// `BOT_NAME` (default `SQLBot`): the name in progress messages.
    pub bot_name: String,
    /// `COMPLETIONS_MODEL_NAME` (default `BOT_NAME`): the model id `/v1/models` lists.
    pub model_name: String,
    /// `OPENAI_API_KEY`, comma-separated: bearer keys accepted on `/v1`; empty means no auth.
    pub api_keys: Vec<String>,
    /// `DEFAULT_RETRY_COUNT` (default 5): repair attempts for `/v1` routes.
    pub default_retry_count: u32,
    /// `DEFAULT_SCHEMA_EXAMPLES` (default 5): sample values per column in the schema.
    pub default_schema_examples: u32,
    /// `DEFAULT_FEEDBACK_EXAMPLES` (default 3): result rows fed back to the LLM on repair.
    pub default_feedback_examples: u32,
}

impl ServerSettings {
    /// Read the server settings from the environment.
    pub fn from_env() -> Self {
        let bot_name = env_string("BOT_NAME").unwrap_or_else(|| "SQLBot".to_string());
        Self {
            host: env_string("SERVER_HOST").unwrap_or_else(|| "0.0.0.0".to_string()),
            port: env_parse("SERVER_PORT").unwrap_or(8000),
            model_name: env_string("COMPLETIONS_MODEL_NAME").unwrap_or_else(|| bot_name.clone()),
            bot_name,
            api_keys: std::env::var("OPENAI_API_KEY")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect(),
            default_retry_count: env_parse("DEFAULT_RETRY_COUNT").unwrap_or(5),
            default_schema_examples: env_parse("DEFAULT_SCHEMA_EXAMPLES").unwrap_or(5),
            default_feedback_examples: env_parse("DEFAULT_FEEDBACK_EXAMPLES").unwrap_or(3),
        }
    }
}

/// A non-empty environment variable.
pub fn env_string(key: &str) -> Option<String> {
    std::env::var(key).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// An environment variable parsed as `T`; unset or unparsable reads as `None` (and the latter is
/// logged, so a typo does not pass silently).
pub fn env_parse<T: std::str::FromStr>(key: &str) -> Option<T> {
    let raw = env_string(key)?;
    match raw.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            tracing::warn!("ignoring {key}={raw:?}: not a valid value");
            None
        }
    }
}

/// Where `quarry.toml` is looked for when `QUARRY_CONFIG` is not set (used only if it exists).
pub const DEFAULT_CONFIG_FILE: &str = "./quarry.toml";

/// Settings of the NL→SQL pipeline. Each comes from its environment variable, else from the
/// `[pipeline]` table of the config file (same name in snake_case, without `QUARRY_`), else its
/// default; the environment wins over the file.
///
/// | variable | file key | default | meaning |
/// | --- | --- | --- | --- |
/// | `QUARRY_ROW_LIMIT` | `row_limit` | 1000 | rows a query may return (also the dialect's `LIMIT`) |
/// | `QUARRY_STATEMENT_TIMEOUT_MS` | `statement_timeout_ms` | 30000 | the database stops a query after this long |
/// | `QUARRY_SCHEMA_TTL_SECS` | `schema_ttl_secs` | 600 | how long an introspected schema is reused |
/// | `QUARRY_SCHEMA_TOKEN_BUDGET` | `schema_token_budget` | 6000 | larger schemas are linked down to the tables a question needs |
/// | `QUARRY_HISTORY_TURNS` | `history_turns` | 5 | earlier turns of the session shown to the model |
/// | `QUARRY_EXPLAINER` | `explainer` | `summary` | the explainer plugin (`none` for no explanation) |
/// | `QUARRY_DATA_DIR` | `data_dir` | `./data` | where the metadata store keeps its files |
/// | `QUARRY_SENSITIVE_COLUMNS` | `sensitive_columns` | none | column-name fragments masked in results (comma-separated; `recommended` for the built-in list) |
///
/// The file is `QUARRY_CONFIG`, or `./quarry.toml` when that exists. Other tables in it belong to
/// other parts of Quarry and are ignored here; an unknown key inside `[pipeline]` is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSettings {
    /// Rows a query may return.
    pub row_limit: u64,
    /// Time a query may run.
    pub statement_timeout: std::time::Duration,
    /// How long an introspected schema is reused.
    pub schema_ttl: std::time::Duration,
    /// Estimated prompt tokens the schema may take before it is linked down.
    pub schema_token_budget: usize,
    /// Earlier turns of the session shown to the model.
    pub history_turns: u32,
    /// The explainer plugin; empty for none.
    pub explainer: String,
    /// Where the metadata store keeps its files.
    pub data_dir: PathBuf,
    /// Column-name fragments whose values are masked in results.
    pub sensitive_columns: Vec<String>,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            row_limit: 1000,
            statement_timeout: std::time::Duration::from_millis(30_000),
            schema_ttl: std::time::Duration::from_secs(600),
            schema_token_budget: 6000,
            history_turns: 5,
            explainer: "summary".to_string(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            sensitive_columns: Vec::new(),
        }
    }
}

/// A config file Quarry cannot use.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or `[pipeline]` holds an unknown key or a wrong type.
    #[error("the config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

/// The `[pipeline]` table as written in the file; every key optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PipelineFile {
    row_limit: Option<u64>,
    statement_timeout_ms: Option<u64>,
    schema_ttl_secs: Option<u64>,
    schema_token_budget: Option<usize>,
    history_turns: Option<u32>,
    explainer: Option<String>,
    data_dir: Option<PathBuf>,
    sensitive_columns: Option<Vec<String>>,
}

/// The whole file: only `[pipeline]` is read here.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ConfigFile {
    pipeline: PipelineFile,
}

impl PipelineSettings {
    /// Read the config file (if any) and the environment.
    pub fn load() -> Result<Self, ConfigFileError> {
        let path = match env_path("QUARRY_CONFIG") {
            Some(p) => Some(p),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };
        let text = match &path {
            Some(p) => Some(std::fs::read_to_string(p).map_err(|source| ConfigFileError::Read { path: p.clone(), source })?),
            None => None,
        };
        let file_path = path.unwrap_or_default();
        Self::from_sources(text.as_deref(), &file_path, |k| std::env::var(k).ok())
    }

    /// Combine a config file's text (`path` only names it in errors) with variables from `env`.
    /// Unparsable or zero values in the environment are logged and ignored, like
    /// [`env_parse`] does.
    pub fn from_sources(
        file: Option<&str>,
        path: &std::path::Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigFileError> {
        let file = match file {
            Some(text) => {
                toml::from_str::<ConfigFile>(text)
                    .map_err(|e| ConfigFileError::Parse { path: path.to_path_buf(), message: e.to_string() })?
                    .pipeline
            }
            None => PipelineFile::default(),
        };
        let get = |k: &str| env(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        // A positive number from the environment, else from the file; zero means "unset" in both.
        let number = |key: &str, from_file: Option<u64>| -> Option<u64> {
            let from_env = get(key).and_then(|raw| match raw.parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    tracing::warn!("ignoring {key}={raw:?}: not a positive whole number");
                    None
                }
            });
            from_env.or(from_file.filter(|n| *n > 0))
        };
        let d = Self::default();
        let list = |raw: Vec<String>| -> Vec<String> {
            raw.iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .flat_map(|s| {
                    if s.eq_ignore_ascii_case("recommended") {
                        crate::schema::RECOMMENDED_SENSITIVE_PATTERNS.iter().map(|p| p.to_string()).collect()
                    } else {
                        vec![s.to_string()]
                    }
                })
                .collect()
        };
        Ok(Self {
            row_limit: number("QUARRY_ROW_LIMIT", file.row_limit).unwrap_or(d.row_limit),
            statement_timeout: number("QUARRY_STATEMENT_TIMEOUT_MS", file.statement_timeout_ms)
                .map(std::time::Duration::from_millis)
                .unwrap_or(d.statement_timeout),
            schema_ttl: number("QUARRY_SCHEMA_TTL_SECS", file.schema_ttl_secs)
                .map(std::time::Duration::from_secs)
                .unwrap_or(d.schema_ttl),
            schema_token_budget: number("QUARRY_SCHEMA_TOKEN_BUDGET", file.schema_token_budget.map(|n| n as u64))
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .unwrap_or(d.schema_token_budget),
            // Zero history is a valid choice (no follow-ups), so it is read without `number`.
            history_turns: match get("QUARRY_HISTORY_TURNS") {
                Some(raw) => raw.parse().unwrap_or_else(|_| {
                    tracing::warn!("ignoring QUARRY_HISTORY_TURNS={raw:?}: not a whole number");
                    file.history_turns.unwrap_or(d.history_turns)
                }),
                None => file.history_turns.unwrap_or(d.history_turns),
            },
            explainer: match get("QUARRY_EXPLAINER").or(file.explainer) {
                Some(name) if name.eq_ignore_ascii_case("none") => String::new(),
                Some(name) => name.trim().to_string(),
                None => d.explainer,
            },
            data_dir: get("QUARRY_DATA_DIR").map(PathBuf::from).or(file.data_dir).unwrap_or(d.data_dir),
            sensitive_columns: match get("QUARRY_SENSITIVE_COLUMNS") {
                Some(raw) => list(vec![raw]),
                None => list(file.sensitive_columns.unwrap_or_default()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let none = PipelineSettings::from_sources(None, Path::new(""), vars(&[])).unwrap();
        assert_eq!(none, PipelineSettings::default());
        let file = "[server]\nport = 1\n[pipeline]\nrow_limit = 50\nstatement_timeout_ms = 500\nexplainer = \"none\"\nsensitive_columns = [\"email\"]\n";
        let s = PipelineSettings::from_sources(Some(file), Path::new("q.toml"), vars(&[("QUARRY_ROW_LIMIT", "70"), ("QUARRY_HISTORY_TURNS", "0")])).unwrap();
        assert_eq!(s.row_limit, 70, "the environment wins");
        assert_eq!(s.statement_timeout, Duration::from_millis(500));
        assert_eq!(s.history_turns, 0);
        assert_eq!(s.explainer, "");
        assert_eq!(s.sensitive_columns, vec!["email".to_string()]);
        let s = PipelineSettings::from_sources(None, Path::new(""), vars(&[("QUARRY_ROW_LIMIT", "0"), ("QUARRY_SENSITIVE_COLUMNS", "recommended, pin")])).unwrap();
        assert_eq!(s.row_limit, 1000, "zero is ignored");
        assert!(s.sensitive_columns.contains(&"password".to_string()) && s.sensitive_columns.contains(&"pin".to_string()));
    }

    #[test]
    fn unknown_pipeline_keys_are_errors() {
        let err = PipelineSettings::from_sources(Some("[pipeline]\nrow_limt = 5\n"), Path::new("q.toml"), vars(&[])).unwrap_err();
        assert!(err.to_string().contains("row_limt") && err.to_string().contains("q.toml"), "{err}");
    }
}
