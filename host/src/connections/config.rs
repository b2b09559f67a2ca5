//! A connection's config: the fields each source type takes, checked and turned into a
//! [`DatabaseUrl`]; masked for the edit form (`**redacted**`) and merged back on save.
//!
//! - PostgreSQL / MySQL: `host`, `port`, `database`, `username`, `password`, `ssl_mode`, or a
//!   `url` instead of the parts (MySQL also takes upstream's boolean `ssl`);
//! - SQLite: `path` to an existing file (opened read-only).
//!
//! Unknown keys are refused, so a typo is an error rather than a silently ignored setting. No
//! error message repeats a password.

use serde_json::{Map, Value, json};

use super::source::SourceType;
use crate::db::{DatabaseUrl, Engine};

/// What secret values are replaced by in `GET /connections/{id}/config`; sending it back keeps
/// the stored value.
pub const REDACTED_SENTINEL: &str = "**redacted**";

/// Key names whose values are secrets (compared case-insensitively).
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "secret",
    "key",
    "api_key",
    "token",
    "private_key",
    "client_secret",
    "access_key",
    "secret_key",
];

/// URL query parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &["password", "pass", "passwd", "sslpassword", "sslkey"];

/// SSL modes offered for PostgreSQL (libpq's names); MySQL takes all but `allow`.
pub const SSL_MODES: &[&str] = &["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

/// Longest host, database, user name or path accepted.
const MAX_FIELD_CHARS: usize = 1024;

/// Whether a config key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEYS.contains(&key.as_str())
        || ["_password", "_secret", "_token", "_key", "_passwd"].iter().any(|s| key.ends_with(s))
}

/// One problem with a config: which field and what is wrong (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The config key (empty for the config as a whole).
    pub field: String,
    /// What is wrong, for people.
    pub message: String,
}

impl ConfigProblem {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_string(), message: message.into() }
    }
}

/// A checked config, kept as the normalized JSON that gets sealed.
#[derive(Clone, PartialEq)]
pub struct ConnectionConfig {
    source_type: SourceType,
    json: Map<String, Value>,
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("source_type", &self.source_type)
            .field("config", &Value::Object(self.redacted()))
            .finish()
    }
}

impl ConnectionConfig {
    /// Check `value` as a config for `source_type`; every problem found, or the config with
    /// defaults filled in (port, `ssl_mode`).
    pub fn parse(source_type: SourceType, value: &Value) -> Result<ConnectionConfig, Vec<ConfigProblem>> {
        let Some(object) = value.as_object() else {
            return Err(vec![ConfigProblem::new("", "the config must be a JSON object")]);
        };
        let mut problems = Vec::new();
        let json = match source_type {
            SourceType::Sqlite => parse_sqlite(object, &mut problems),
            SourceType::Postgresql | SourceType::Mysql => parse_server(source_type, object, &mut problems),
        };
        if problems.is_empty() { Ok(ConnectionConfig { source_type, json }) } else { Err(problems) }
    }

    /// The source type it is for.
    pub fn source_type(&self) -> SourceType {
        self.source_type
    }

    /// The normalized JSON (contains the password: seal it, never show it).
    pub fn to_json(&self) -> Value {
        Value::Object(self.json.clone())
    }

    /// The JSON with secret values replaced by [`REDACTED_SENTINEL`], for the edit form.
    pub fn redacted(&self) -> Map<String, Value> {
        redact_config(&self.json)
    }

    /// The password (or the URL's), for scrubbing messages.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.json {
            if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
                if is_secret_key(k) {
                    out.push(s.to_string());
                } else if k == "url" {
                    out.extend(url_secrets(s));
                }
            }
        }
        out
    }

    /// The URL to connect with.
    pub fn url(&self) -> Result<DatabaseUrl, ConfigProblem> {
        let text = |k: &str| self.json.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        match self.source_type {
            SourceType::Sqlite => {
                let path = text("path");
                // sqlx percent-decodes the file name, so `%`, `?` and `#` must be encoded.
                let encoded = path.replace('%', "%25").replace('?', "%3F").replace('#', "%23");
                DatabaseUrl::parse(&format!("sqlite:{encoded}")).map_err(|e| ConfigProblem::new("path", e.to_string()))
            }
            SourceType::Postgresql | SourceType::Mysql => {
                if let Some(url) = self.json.get("url").and_then(Value::as_str) {
                    return DatabaseUrl::parse(url).map_err(|e| ConfigProblem::new("url", e.to_string()));
                }
                let scheme = if self.source_type == SourceType::Postgresql { "postgres" } else { "mysql" };
                let mut url = url::Url::parse(&format!("{scheme}://localhost/"))
                    .map_err(|e| ConfigProblem::new("", e.to_string()))?;
                let host = text("host");
                let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
                url.set_host(Some(&host)).map_err(|_| ConfigProblem::new("host", "not a valid host name"))?;
                let port = self.json.get("port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok());
                url.set_port(port).map_err(|_| ConfigProblem::new("port", "not a valid port"))?;
                url.set_username(&text("username")).map_err(|_| ConfigProblem::new("username", "not valid"))?;
                let password = text("password");
                if !password.is_empty() {
                    url.set_password(Some(&password)).map_err(|_| ConfigProblem::new("password", "not valid"))?;
                }
                url.path_segments_mut()
                    .map_err(|_| ConfigProblem::new("database", "not valid"))?
                    .clear()
                    .push(&text("database"));
                let ssl_mode = text("ssl_mode");
                match self.source_type {
                    SourceType::Postgresql => url.query_pairs_mut().append_pair("sslmode", &ssl_mode),
                    _ => url.query_pairs_mut().append_pair("ssl-mode", mysql_ssl_mode(&ssl_mode)),
                };
                DatabaseUrl::parse(url.as_str()).map_err(|e| ConfigProblem::new("", e.to_string()))
            }
        }
    }

    /// A config for the edit form sent back: values equal to [`REDACTED_SENTINEL`] (and a URL
    /// password equal to it) take the value stored in `old`. A sentinel with nothing stored
    /// behind it is a problem. The result still has to go through [`ConnectionConfig::parse`].
    pub fn merge_redacted(new: &Value, old: &ConnectionConfig) -> Result<Value, Vec<ConfigProblem>> {
        let Some(object) = new.as_object() else {
            return Err(vec![ConfigProblem::new("", "the config must be a JSON object")]);
        };
        let mut out = object.clone();
        let mut problems = Vec::new();
        let old_password = old
            .json
            .get("password")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| old.json.get("url").and_then(Value::as_str).and_then(url_password));
        for (key, value) in out.iter_mut() {
            if value.as_str() == Some(REDACTED_SENTINEL) {
                let stored = old.json.get(key).filter(|v| !v.is_null()).cloned().or_else(|| {
                    // The form may switch between a URL and the parts; the password carries over.
                    (key == "password").then(|| old_password.clone().map(Value::String)).flatten()
                });
                match stored {
                    Some(stored) => *value = stored,
                    None => problems.push(ConfigProblem::new(key, "there is no stored value to keep")),
                }
            } else if key == "url"
                && let Some(text) = value.as_str()
            {
                match merge_url(text, old) {
                    Ok(merged) => *value = Value::String(merged),
                    Err(p) => problems.push(p),
                }
            }
        }
        if problems.is_empty() { Ok(Value::Object(out)) } else { Err(problems) }
    }
}

/// Redact secret values of any config-like JSON object (also inside a `url`).
pub fn redact_config(json: &Map<String, Value>) -> Map<String, Value> {
    json.iter()
        .map(|(k, v)| {
            let shown = match v {
                Value::String(s) if is_secret_key(k) && !s.is_empty() => Value::String(REDACTED_SENTINEL.into()),
                Value::String(s) if k == "url" => Value::String(redact_url(s)),
                Value::String(_) | Value::Null | Value::Bool(_) | Value::Number(_) => v.clone(),
                _ if is_secret_key(k) => Value::String(REDACTED_SENTINEL.into()),
                _ => v.clone(),
            };
            (k.clone(), shown)
        })
        .collect()
}

/// A URL with its password and secret parameters replaced by the sentinel; unparsable text is
/// replaced entirely (it may hold a password anywhere).
fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return REDACTED_SENTINEL.to_string();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some(REDACTED_SENTINEL));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str());
                (k.into_owned(), if secret { REDACTED_SENTINEL.to_string() } else { v.into_owned() })
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

fn url_password(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    url.password().map(|p| percent_decode(p))
}

/// The password and secret parameters of a URL (decoded and as written).
fn url_secrets(text: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(p) = url.password() {
        out.push(p.to_string());
        out.push(percent_decode(p));
    }
    for (k, v) in url.query_pairs() {
        if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) && !v.is_empty() {
            out.push(v.into_owned());
        }
    }
    out
}

/// Put stored secrets back into a URL whose password or secret parameters are the sentinel.
fn merge_url(text: &str, old: &ConnectionConfig) -> Result<String, ConfigProblem> {
    if !text.contains(REDACTED_SENTINEL) && !text.contains("%2A%2Aredacted%2A%2A") {
        return Ok(text.to_string());
    }
    let mut url = url::Url::parse(text).map_err(|_| ConfigProblem::new("url", "not a valid URL"))?;
    let old_url = old.json.get("url").and_then(Value::as_str).and_then(|u| url::Url::parse(u).ok());
    if url.password().map(percent_decode).as_deref() == Some(REDACTED_SENTINEL) {
        let stored = old_url
            .as_ref()
            .and_then(|u| u.password().map(percent_decode))
            .or_else(|| old.json.get("password").and_then(Value::as_str).map(str::to_string))
            .ok_or_else(|| ConfigProblem::new("url", "there is no stored password to keep"))?;
        url.set_password(Some(&stored)).map_err(|_| ConfigProblem::new("url", "not a valid URL"))?;
    }
    if url.query().is_some() {
        let old_pairs: Vec<(String, String)> = old_url
            .map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
            .unwrap_or_default();
        let mut pairs = Vec::new();
        for (k, v) in url.query_pairs() {
            let value = if v == REDACTED_SENTINEL {
                old_pairs
                    .iter()
                    .find(|(ok, _)| *ok == k)
                    .map(|(_, ov)| ov.clone())
                    .ok_or_else(|| ConfigProblem::new("url", format!("there is no stored value of {k} to keep")))?
            } else {
                v.into_owned()
            };
            pairs.push((k.into_owned(), value));
        }
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Ok(url.to_string())
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// sqlx's MySQL `ssl-mode` for one of [`SSL_MODES`].
fn mysql_ssl_mode(mode: &str) -> &'static str {
    match mode {
        "disable" => "disabled",
        "require" => "required",
        "verify-ca" => "verify_ca",
        "verify-full" => "verify_identity",
        _ => "preferred",
    }
}

/// A non-empty string of at most [`MAX_FIELD_CHARS`] characters without NUL.
fn required_text(object: &Map<String, Value>, key: &str, problems: &mut Vec<ConfigProblem>) -> Option<String> {
    match object.get(key) {
        None | Some(Value::Null) => {
            problems.push(ConfigProblem::new(key, "Field required"));
            None
        }
        Some(value) => optional_text(value, key, problems).filter(|s| {
            let empty = s.trim().is_empty();
            if empty {
                problems.push(ConfigProblem::new(key, "must not be empty"));
            }
            !empty
        }),
    }
}

fn optional_text(value: &Value, key: &str, problems: &mut Vec<ConfigProblem>) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) if s.contains('\0') => {
            problems.push(ConfigProblem::new(key, "contains a NUL character"));
            None
        }
        Value::String(s) if s.chars().count() > MAX_FIELD_CHARS => {
            problems.push(ConfigProblem::new(key, format!("longer than {MAX_FIELD_CHARS} characters")));
            None
        }
        Value::String(s) => Some(s.clone()),
        _ => {
            problems.push(ConfigProblem::new(key, "Input should be a valid string"));
            None
        }
    }
}

fn parse_sqlite(object: &Map<String, Value>, problems: &mut Vec<ConfigProblem>) -> Map<String, Value> {
    for key in object.keys().filter(|k| k.as_str() != "path") {
        problems.push(ConfigProblem::new(key, "unknown field for a sqlite connection (expected: path)"));
    }
    let path = required_text(object, "path", problems).map(|p| p.trim().to_string());
    if let Some(p) = &path {
        let lower = p.to_ascii_lowercase();
        if lower.starts_with(":memory:") || lower.starts_with("file:") || lower.starts_with("sqlite:") {
            problems.push(ConfigProblem::new("path", "must be the path of a database file"));
        }
    }
    let mut json = Map::new();
    json.insert("path".into(), json!(path.unwrap_or_default()));
    json
}

fn parse_server(
    source_type: SourceType,
    object: &Map<String, Value>,
    problems: &mut Vec<ConfigProblem>,
) -> Map<String, Value> {
    let parts = ["host", "port", "database", "username", "password", "ssl_mode"];
    let is_mysql = source_type == SourceType::Mysql;
    for key in object.keys() {
        let known = key == "url" || parts.contains(&key.as_str()) || (is_mysql && key == "ssl");
        if !known {
            let expected = if is_mysql {
                "host, port, database, username, password, ssl_mode (or ssl), or url"
            } else {
                "host, port, database, username, password, ssl_mode, or url"
            };
            problems.push(ConfigProblem::new(key, format!("unknown field (expected: {expected})")));
        }
    }
    let mut json = Map::new();
    if let Some(url_value) = object.get("url").filter(|v| !v.is_null()) {
        for key in object.keys().filter(|k| k.as_str() != "url" && !object[k.as_str()].is_null()) {
            problems.push(ConfigProblem::new(key, "give either url or the separate fields, not both"));
        }
        let Some(url) = optional_text(url_value, "url", problems) else {
            return json;
        };
        match DatabaseUrl::parse(&url) {
            Ok(parsed) => {
                let expected = if is_mysql { Engine::MySql } else { Engine::Postgres };
                if parsed.engine() != expected {
                    let schemes = if is_mysql { "mysql:// or mariadb://" } else { "postgres:// or postgresql://" };
                    problems.push(ConfigProblem::new("url", format!("a {source_type} URL starts with {schemes}")));
                }
            }
            // The parser's messages never repeat the URL.
            Err(e) => problems.push(ConfigProblem::new("url", e.to_string())),
        }
        json.insert("url".into(), Value::String(url.trim().to_string()));
        return json;
    }
    let host = required_text(object, "host", problems).map(|h| h.trim().to_string());
    if let Some(h) = &host
        && h.chars().any(|c| c.is_whitespace() || "/@?#".contains(c))
    {
        problems.push(ConfigProblem::new("host", "not a valid host name"));
    }
    let default_port = if is_mysql { 3306 } else { 5432 };
    let port = match object.get("port") {
        None | Some(Value::Null) => Some(default_port),
        Some(Value::Number(n)) => n.as_u64().filter(|p| (1..=65535).contains(p)),
        Some(Value::String(s)) if s.trim().is_empty() => Some(default_port),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok().filter(|p| (1..=65535).contains(p)),
        Some(_) => None,
    };
    if port.is_none() {
        problems.push(ConfigProblem::new("port", "must be a port number from 1 to 65535"));
    }
    let database = required_text(object, "database", problems);
    let username = required_text(object, "username", problems);
    let password = object.get("password").and_then(|v| optional_text(v, "password", problems)).unwrap_or_default();
    let ssl_mode = match (object.get("ssl_mode"), object.get("ssl")) {
        (Some(Value::String(m)), _) => {
            let m = m.trim().to_ascii_lowercase();
            let allowed = SSL_MODES.iter().any(|s| *s == m && !(is_mysql && m == "allow"));
            if !allowed {
                let options = if is_mysql { &SSL_MODES[..] } else { SSL_MODES };
                let options: Vec<&str> = options.iter().copied().filter(|o| !(is_mysql && *o == "allow")).collect();
                problems.push(ConfigProblem::new("ssl_mode", format!("must be one of {}", options.join(", "))));
            }
            m
        }
        (None | Some(Value::Null), Some(Value::Bool(ssl))) if is_mysql => {
            if *ssl {
                "require".into()
            } else {
                "disable".into()
            }
        }
        (None | Some(Value::Null), None | Some(Value::Null)) => "prefer".into(),
        (None | Some(Value::Null), Some(_)) => {
            problems.push(ConfigProblem::new("ssl", "Input should be a valid boolean"));
            "prefer".into()
        }
        (Some(_), _) => {
            problems.push(ConfigProblem::new("ssl_mode", "Input should be a valid string"));
            "prefer".into()
        }
    };
    json.insert("host".into(), json!(host.unwrap_or_default()));
    json.insert("port".into(), json!(port.unwrap_or(default_port)));
    json.insert("database".into(), json!(database.unwrap_or_default()));
    json.insert("username".into(), json!(username.unwrap_or_default()));
    json.insert("password".into(), json!(password));
    json.insert("ssl_mode".into(), json!(ssl_mode));
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(value: Value) -> Result<ConnectionConfig, Vec<ConfigProblem>> {
        ConnectionConfig::parse(SourceType::Postgresql, &value)
    }

    #[test]
    fn server_parts_become_a_url() {
        let c =
            pg(json!({"host": "db.local", "database": "shop/x", "username": "me", "password": "p@ss:w/rd"})).unwrap();
        assert_eq!(c.to_json()["port"], 5432);
        assert_eq!(c.to_json()["ssl_mode"], "prefer");
        let url = c.url().unwrap();
        assert_eq!(url.engine(), Engine::Postgres);
        assert_eq!(url.password().as_deref(), Some("p@ss:w/rd"));
        assert!(url.expose().contains("/shop%2Fx?sslmode=prefer"), "{}", url.expose());
        assert!(!format!("{c:?}").contains("p@ss"));

        let my = ConnectionConfig::parse(
            SourceType::Mysql,
            &json!({"host": "::1", "port": "3307", "database": "d", "username": "u", "ssl": true}),
        )
        .unwrap();
        assert_eq!(my.url().unwrap().expose(), "mysql://u@[::1]:3307/d?ssl-mode=required");
    }

    #[test]
    fn problems_name_fields_not_values() {
        let problems = pg(json!({"host": "h", "port": 70000, "username": "", "password": 5, "colour": "x",
                                 "ssl_mode": "sometimes"}))
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for f in ["colour", "port", "database", "username", "password", "ssl_mode"] {
            assert!(fields.contains(&f), "{f} missing from {problems:?}");
        }
        let problems = pg(json!({"url": "postgres://u:hunter22@h/db", "host": "h"})).unwrap_err();
        assert_eq!(problems[0].field, "host");
        let problems = pg(json!({"url": "mysql://u:hunter22@h/db"})).unwrap_err();
        assert!(!format!("{problems:?}").contains("hunter22"));
        assert!(pg(json!("text")).is_err());
        assert!(ConnectionConfig::parse(SourceType::Sqlite, &json!({"path": ":memory:"})).is_err());
        assert!(ConnectionConfig::parse(SourceType::Sqlite, &json!({"path": "/x.db", "host": "h"})).is_err());
    }

    #[test]
    fn sqlite_paths_are_encoded() {
        let c = ConnectionConfig::parse(SourceType::Sqlite, &json!({"path": "/tmp/a?b#c%d.db"})).unwrap();
        assert_eq!(c.url().unwrap().expose(), "sqlite:/tmp/a%3Fb%23c%25d.db");
    }

    #[test]
    fn redaction_and_merge() {
        let old = pg(json!({"host": "h", "database": "d", "username": "u", "password": "s3cret"})).unwrap();
        let shown = old.redacted();
        assert_eq!(shown["password"], REDACTED_SENTINEL);
        assert_eq!(shown["host"], "h");
        let mut back = Value::Object(shown);
        back["host"] = json!("h2");
        let merged = ConnectionConfig::merge_redacted(&back, &old).unwrap();
        let again = pg(merged).unwrap();
        assert_eq!(again.to_json()["password"], "s3cret");
        assert_eq!(again.to_json()["host"], "h2");

        let with_url = pg(json!({"url": "postgres://u:top%2Fsecret@h/db?sslmode=require&sslpassword=kp"})).unwrap();
        let shown = with_url.redacted();
        let text = shown["url"].as_str().unwrap();
        assert!(!text.contains("top") && !text.contains("kp"), "{text}");
        assert!(with_url.secrets().contains(&"top/secret".to_string()));
        let merged = ConnectionConfig::merge_redacted(&Value::Object(shown), &with_url).unwrap();
        let again = pg(merged).unwrap().url().unwrap();
        assert_eq!(again.password().as_deref(), Some("top/secret"));
        assert!(again.expose().contains("sslpassword=kp"));

        // A sentinel with nothing behind it is refused.
        let no_pw = pg(json!({"host": "h", "database": "d", "username": "u"})).unwrap();
        let problems =
            ConnectionConfig::merge_redacted(&json!({"host": "h", "token": REDACTED_SENTINEL}), &no_pw).unwrap_err();
        assert_eq!(problems[0].field, "token");
    }
}
