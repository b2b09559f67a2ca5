//! `plugin.toml`: what a plugin says about itself and what it may use.
//!
//! ```toml
//! [plugin]
//! name = "postgres"          # [a-z0-9-], unique among loaded plugins
//! kind = "sql-dialect"       # llm-provider | sql-dialect | result-explainer
//! version = "0.1.0"          # the plugin's own version
//! wit = "0.1"                # the quarry:plugin version it was built against
//! component = "postgres.wasm"  # file next to plugin.toml (plugins folder only)
//! sha256 = "…"               # optional pin of the component's bytes
//! description = "…"
//!
//! [limits]
//! memory = "64MiB"           # linear-memory cap per instance
//! timeout = "2s"             # wall-clock cap per call
//!
//! [network]                  # providers only
//! endpoints = ["https://api.example.com"]   # origins beyond the configured base URL
//! ```

use std::time::Duration;

use serde::Deserialize;

/// The largest memory cap a manifest may ask for; the pooling allocator reserves this per slot.
pub const MAX_MEMORY_BYTES: u64 = 512 << 20;
/// Memory cap when a manifest names none.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
/// Longest per-call timeout a manifest may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// The WIT package versions this host can load, as `major.minor`.
pub const SUPPORTED_WIT: &[&str] = &["0.1"];

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// World `llm-provider`.
    LlmProvider,
    /// World `sql-dialect`.
    SqlDialect,
    /// World `result-explainer`.
    ResultExplainer,
}

impl PluginKind {
    /// The WIT world name.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::LlmProvider => "llm-provider",
            PluginKind::SqlDialect => "sql-dialect",
            PluginKind::ResultExplainer => "result-explainer",
        }
    }

    /// The interface the component must export (without package or version).
    pub fn export_interface(self) -> &'static str {
        match self {
            PluginKind::LlmProvider => "provider",
            PluginKind::SqlDialect => "dialect",
            PluginKind::ResultExplainer => "explainer",
        }
    }

    /// Per-call timeout when the manifest names none: providers wait on the network.
    pub fn default_timeout(self) -> Duration {
        match self {
            PluginKind::LlmProvider => Duration::from_secs(120),
            PluginKind::SqlDialect | PluginKind::ResultExplainer => Duration::from_secs(2),
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.world())
    }
}

/// A manifest that could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not valid TOML or missing fields.
    #[error("plugin.toml is not valid: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A field has a value the host cannot accept.
    #[error("plugin.toml field `{field}`: {reason}")]
    Field {
        /// The offending field.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    plugin: RawPlugin,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    network: RawNetwork,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: String,
    kind: PluginKind,
    version: String,
    wit: String,
    component: Option<String>,
    sha256: Option<String>,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory: Option<String>,
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    endpoints: Vec<String>,
}

/// A checked `plugin.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Unique machine name.
    pub name: String,
    /// Which world the component implements.
    pub kind: PluginKind,
    /// The plugin's own version.
    pub version: String,
    /// The `quarry:plugin` version (`major.minor`) it targets.
    pub wit: String,
    /// Component file name, relative to the manifest (plugins folder only).
    pub component: Option<String>,
    /// Expected sha256 of the component bytes, lower-case hex.
    pub sha256: Option<String>,
    /// One line for people.
    pub description: String,
    /// Resource limits for each call.
    pub limits: Limits,
    /// Extra origins (`scheme://host[:port]`) a provider may reach.
    pub endpoints: Vec<String>,
}

/// Per-call resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear-memory cap per instance, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock cap per call.
    pub timeout: Duration,
}

impl Manifest {
    /// Parse and check a manifest.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text)?;
        let p = raw.plugin;
        check_name(&p.name)?;
        if p.version.trim().is_empty() {
            return Err(field("plugin.version", "must not be empty"));
        }
        let wit = check_wit(&p.wit)?;
        if let Some(sha) = &p.sha256 {
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(field("plugin.sha256", "must be 64 hexadecimal digits"));
            }
        }
        if let Some(c) = &p.component {
            if c.contains('/') || c.contains('\\') || c.starts_with('.') || c.is_empty() {
                return Err(field("plugin.component", "must be a plain file name next to plugin.toml"));
            }
        }
        let memory_bytes = match raw.limits.memory.as_deref() {
            None => DEFAULT_MEMORY_BYTES,
            Some(s) => parse_bytes(s).ok_or_else(|| field("limits.memory", "expected a size like \"64MiB\""))?,
        };
        if memory_bytes == 0 || memory_bytes > MAX_MEMORY_BYTES {
            return Err(field("limits.memory", format!("must be between 1 byte and {} MiB", MAX_MEMORY_BYTES >> 20)));
        }
        let timeout = match raw.limits.timeout.as_deref() {
            None => p.kind.default_timeout(),
            Some(s) => parse_duration(s).ok_or_else(|| field("limits.timeout", "expected a duration like \"2s\" or \"500ms\""))?,
        };
        if timeout.is_zero() || timeout > MAX_TIMEOUT {
            return Err(field("limits.timeout", format!("must be between 1ms and {}s", MAX_TIMEOUT.as_secs())));
        }
        for e in &raw.network.endpoints {
            check_origin(e)?;
        }
        if !raw.network.endpoints.is_empty() && p.kind != PluginKind::LlmProvider {
            return Err(field("network.endpoints", "only llm-provider plugins may reach the network"));
        }
        Ok(Manifest {
            name: p.name,
            kind: p.kind,
            version: p.version,
            wit,
            component: p.component,
            sha256: p.sha256.map(|s| s.to_ascii_lowercase()),
            description: p.description,
            limits: Limits { memory_bytes, timeout },
            endpoints: raw.network.endpoints,
        })
    }
}

fn field(field: &'static str, reason: impl Into<String>) -> ManifestError {
    ManifestError::Field { field, reason: reason.into() }
}

fn check_name(name: &str) -> Result<(), ManifestError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok { Ok(()) } else { Err(field("plugin.name", "must be 1-64 characters of a-z, 0-9 and '-'")) }
}

/// Accept `0.1` or `0.1.x`; refuse versions this host cannot load, saying which it can.
fn check_wit(wit: &str) -> Result<String, ManifestError> {
    let mut parts = wit.trim().split('.');
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        return Err(field("plugin.wit", format!("expected a version like \"0.1\", got {wit:?}")));
    };
    if major.parse::<u32>().is_err() || minor.parse::<u32>().is_err() {
        return Err(field("plugin.wit", format!("expected a version like \"0.1\", got {wit:?}")));
    }
    let mm = format!("{major}.{minor}");
    if !SUPPORTED_WIT.contains(&mm.as_str()) {
        return Err(field(
            "plugin.wit",
            format!("targets quarry:plugin@{mm}; this host supports {}", SUPPORTED_WIT.join(", ")),
        ));
    }
    Ok(mm)
}

fn check_origin(origin: &str) -> Result<(), ManifestError> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| field("network.endpoints", format!("{origin:?} must start with http:// or https://")))?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') || host.contains('@') || host.contains('?') {
        return Err(field("network.endpoints", format!("{origin:?} must be an origin: scheme://host[:port]")));
    }
    Ok(())
}

/// Parse sizes like `64MiB`, `512KiB`, `1GiB`, `1048576`.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "kb" | "k" => 1 << 10,
        "mib" | "mb" | "m" => 1 << 20,
        "gib" | "gb" | "g" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Parse durations like `2s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" | "" => Some(Duration::from_secs(n)),
        "m" | "min" => Some(Duration::from_secs(n.checked_mul(60)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [plugin]
        name = "postgres"
        kind = "sql-dialect"
        version = "0.1.0"
        wit = "0.1"
        [limits]
        memory = "32MiB"
        timeout = "750ms"
    "#;

    #[test]
    fn parses_a_good_manifest() {
        let m = Manifest::parse(GOOD).expect("valid");
        assert_eq!(m.kind, PluginKind::SqlDialect);
        assert_eq!(m.limits.memory_bytes, 32 << 20);
        assert_eq!(m.limits.timeout, Duration::from_millis(750));
    }

    #[test]
    fn defaults_limits_by_kind() {
        let m = Manifest::parse(
            "[plugin]\nname='p'\nkind='llm-provider'\nversion='1'\nwit='0.1.3'\n",
        )
        .expect("valid");
        assert_eq!(m.wit, "0.1");
        assert_eq!(m.limits.timeout, Duration::from_secs(120));
        assert_eq!(m.limits.memory_bytes, DEFAULT_MEMORY_BYTES);
    }

    #[test]
    fn refuses_an_unsupported_wit_version_naming_the_supported_ones() {
        let err = Manifest::parse(&GOOD.replace("wit = \"0.1\"", "wit = \"0.3\"")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("quarry:plugin@0.3") && msg.contains("0.1"), "{msg}");
    }

    #[test]
    fn refuses_bad_names_limits_and_paths() {
        for (from, to) in [
            ("name = \"postgres\"", "name = \"Postgres!\""),
            ("memory = \"32MiB\"", "memory = \"9GiB\""),
            ("memory = \"32MiB\"", "memory = \"lots\""),
            ("timeout = \"750ms\"", "timeout = \"0s\""),
            ("wit = \"0.1\"", "wit = \"one\""),
            ("version = \"0.1.0\"", "version = \"0.1.0\"\ncomponent = \"../../etc/passwd\""),
            ("version = \"0.1.0\"", "version = \"0.1.0\"\nshoe_size = 3"),
        ] {
            assert!(Manifest::parse(&GOOD.replace(from, to)).is_err(), "{to} should be refused");
        }
    }

    #[test]
    fn only_providers_get_network_endpoints() {
        let text = format!("{GOOD}\n[network]\nendpoints = [\"https://example.com\"]\n");
        assert!(Manifest::parse(&text).is_err());
    }

    #[test]
    fn parses_sizes_and_durations() {
        assert_eq!(parse_bytes("1GiB"), Some(1 << 30));
        assert_eq!(parse_bytes("12"), Some(12));
        assert_eq!(parse_bytes("12 parsecs"), None);
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("fast"), None);
    }
}
