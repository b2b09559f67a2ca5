//! The `http` import: outbound HTTP performed by the host for provider plugins.
//!
//! A plugin never builds a URL. It names an *endpoint* (`default` is the operator's base URL; a
//! manifest may add origins of its own) and a path, and the host:
//!
//! - joins them and refuses a path that tries to leave the endpoint (`//host`, `scheme:`, `..`);
//! - refuses a literal `authorization` / `x-api-key` / `api-key` header: the plugin writes the
//!   placeholder `{secret:NAME}` and the host fills it in, only for the endpoint the secret is
//!   bound to, so a plugin can neither read a key nor aim it at another host;
//! - re-checks every resolved address (no loopback, link-local, cloud metadata or unspecified
//!   addresses unless the operator's base URL is itself local, as for Ollama on localhost);
//! - never follows a redirect (the plugin sees the 3xx and reports it);
//! - retries 429 and 5xx answers (and failed connects) before the first byte, with exponential
//!   backoff and jitter, honouring `Retry-After` (seconds or HTTP-date) and `retry-after-ms`;
//! - applies connect, first-byte, idle (between chunks) and total timeouts, and a response-size
//!   cap, and streams bodies chunk by chunk through the `body-stream` resource;
//! - logs every request and every refusal, and scrubs every secret from errors and log lines.
//!
//! A call without an [`HttpGrant`] gets [`HttpCapability::denied`], which refuses everything.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use wasmtime::component::{Resource, ResourceTable};

use crate::plugins::bindings::provider::quarry::plugin::http::{
    Host, HostBodyStream, HttpError, Method, Request, ResponseHead,
};
use crate::plugins::redact::Redactor;

/// The endpoint name of the operator's configured base URL.
pub const DEFAULT_ENDPOINT: &str = "default";

/// Headers that carry credentials: a plugin may only put a `{secret:NAME}` placeholder in them.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// Headers the host sets itself (framing, routing): a plugin may not set them.
const HOST_HEADERS: &[&str] =
    &["host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive", "proxy-connection"];

/// Statuses retried before the first byte: rate limits and transient upstream failures
/// (529 is Anthropic's "overloaded").
const RETRY_STATUSES: &[u16] = &[429, 500, 502, 503, 504, 529];

// ---------------------------------------------------------------------------------------------
// Secrets

/// A secret value (an API key). It never prints: `Debug` and `Display` show `[REDACTED]`, and the
/// only way to read it is [`Secret::expose`], which the host calls when it fills in a placeholder
/// or builds a [`Redactor`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself. Call only to use it, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::plugins::redact::MASK)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

// ---------------------------------------------------------------------------------------------
// Policy and grant

/// Limits of one plugin call's outbound HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpPolicy {
    /// Time to establish a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Time from sending a request to its response head. A non-streamed completion only answers
    /// when the whole text is generated, so this is generous by default.
    pub first_byte_timeout: Duration,
    /// Longest silence between two chunks of a body.
    pub idle_timeout: Duration,
    /// Wall-clock cap on one request: retries, waiting and reading the whole body.
    pub total_timeout: Duration,
    /// Largest response body; a longer one is cut and reported as `too-large`.
    pub max_response_bytes: u64,
    /// Retries of a 429/5xx answer or a failed connect, before the first byte.
    pub max_retries: u32,
    /// First backoff delay; doubled on each retry, with jitter.
    pub retry_base_delay: Duration,
    /// Longest wait before a retry. A server asking for longer gets its answer passed on to the
    /// plugin (which reports `rate-limited` with the delay) instead of a retry.
    pub max_retry_delay: Duration,
    /// Requests one plugin call may make (a runaway plugin must not hammer an API).
    pub max_requests_per_call: u32,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(180),
            idle_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(300),
            max_response_bytes: 16 << 20,
            max_retries: 2,
            retry_base_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
            max_requests_per_call: 16,
        }
    }
}

/// Why a grant could not be built from the operator's configuration.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GrantError {
    /// The base URL is not an absolute `http(s)` URL.
    #[error("base URL {url:?} is not valid: {reason}")]
    BadUrl {
        /// The URL as given (never contains a secret: credentials in URLs are refused).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A secret and the one endpoint it may be sent to.
#[derive(Debug, Clone)]
struct SecretBinding {
    name: String,
    value: Secret,
    endpoint: String,
}

/// What one provider call may reach over HTTP: its endpoints, its secrets and their bindings,
/// its limits, and the pooled client to use. Cheap to clone.
#[derive(Clone)]
pub struct HttpGrant {
    endpoints: Arc<BTreeMap<String, Url>>,
    /// The base URL's host when it is this machine: only that host may be a local address.
    local_host: Option<String>,
    secrets: Arc<Vec<SecretBinding>>,
    policy: HttpPolicy,
    client: reqwest::Client,
}

impl std::fmt::Debug for HttpGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpGrant")
            .field("endpoints", &self.endpoints.iter().map(|(k, v)| (k, v.as_str())).collect::<Vec<_>>())
            .field("secrets", &self.secrets.iter().map(|s| (&s.name, &s.endpoint)).collect::<Vec<_>>())
            .field("policy", &self.policy)
            .finish()
    }
}

impl HttpGrant {
    /// A grant whose `default` endpoint is `base_url`, plus `extra_origins` (from the plugin's
    /// manifest) each named by its origin string, with `secrets` bound to `default`.
    pub fn new(
        clients: &HttpClients,
        base_url: &str,
        extra_origins: &[String],
        secrets: Vec<(String, Secret)>,
        policy: HttpPolicy,
    ) -> Result<Self, GrantError> {
        let base = parse_base(base_url)?;
        let local_host = is_local_host(&base).then(|| base.host_str().unwrap_or_default().to_string());
        let mut endpoints = BTreeMap::new();
        endpoints.insert(DEFAULT_ENDPOINT.to_string(), base);
        for origin in extra_origins {
            let url = parse_base(origin)?;
            endpoints.insert(origin.trim_end_matches('/').to_string(), url);
        }
        let secrets = secrets
            .into_iter()
            .filter(|(_, v)| !v.expose().is_empty())
            .map(|(name, value)| SecretBinding { name, value, endpoint: DEFAULT_ENDPOINT.to_string() })
            .collect();
        let client = clients.client(policy.connect_timeout, local_host.clone())?;
        Ok(Self { endpoints: Arc::new(endpoints), local_host, secrets: Arc::new(secrets), policy, client })
    }

    /// The secret values of this grant, for the call's [`Redactor`].
    pub fn secret_values(&self) -> Vec<String> {
        self.secrets.iter().map(|s| s.value.expose().to_string()).collect()
    }

    /// The grant's limits.
    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }
}

/// An absolute `http(s)` URL without credentials, query or fragment; no trailing `/`.
fn parse_base(raw: &str) -> Result<Url, GrantError> {
    let bad = |reason: &str| GrantError::BadUrl { url: raw.to_string(), reason: reason.to_string() };
    let url = Url::parse(raw.trim()).map_err(|e| GrantError::BadUrl { url: raw.to_string(), reason: e.to_string() })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Refused without echoing it back: the message would carry the credentials.
        return Err(GrantError::BadUrl { url: "(hidden: it contains credentials)".into(), reason: "credentials belong in LLM_API_KEY, not in the URL".into() });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or a fragment"));
    }
    let trimmed = url.as_str().trim_end_matches('/').to_string();
    Url::parse(&trimmed).map_err(|e| GrantError::BadUrl { url: raw.to_string(), reason: e.to_string() })
}

/// Whether the URL's host is this machine (loopback address or `localhost`).
fn is_local_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost"),
        None => false,
    }
}

/// Addresses no provider may reach unless its base URL is local: loopback, unspecified,
/// link-local (which holds the cloud metadata service, 169.254.169.254), multicast/broadcast,
/// and AWS's IPv6 metadata address.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified() || v4.is_link_local() || v4.is_broadcast() || v4.is_multicast(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_ip(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pooled clients

/// The host's pooled HTTP clients, shared by every call (connections are reused across calls).
/// One client per (connect timeout, local host) pair: the resolver of a client whose operator
/// configured a local base URL lets that one host resolve to a loopback address.
#[derive(Clone, Default)]
pub struct HttpClients {
    inner: Arc<Mutex<HashMap<(Duration, Option<String>), reqwest::Client>>>,
}

impl HttpClients {
    /// An empty pool; clients are built on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn client(&self, connect_timeout: Duration, local_host: Option<String>) -> Result<reqwest::Client, GrantError> {
        let key = (connect_timeout, local_host);
        // A poisoned lock only means another thread panicked while inserting; the map is fine.
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("quarry/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver { local_host: key.1.clone() }));
        if key.1.is_some() {
            // A proxy cannot reach this machine's loopback on our behalf.
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| GrantError::Client(e.to_string()))?;
        map.insert(key, client.clone());
        Ok(client)
    }
}

/// Resolves names with the system resolver, then drops forbidden addresses (see
/// [`is_forbidden_ip`]), except for the operator's own local host.
struct GuardedResolver {
    local_host: Option<String>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let local_ok = self.local_host.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = resolved.filter(|a| local_ok || !is_forbidden_ip(a.ip())).collect();
            if allowed.is_empty() {
                let err = std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host} resolves only to local or link-local addresses, which a provider may not reach"),
                );
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The capability

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// The body of a streaming response, as a resource the guest reads chunk by chunk.
pub struct BodyStream {
    stream: Option<ByteStream>,
    read: u64,
    cap: u64,
    idle: Duration,
    deadline: Instant,
}

/// Per-call state of the `http` capability.
pub struct HttpCapability {
    table: ResourceTable,
    plugin: String,
    grant: Option<HttpGrant>,
    redactor: Redactor,
    requests: u32,
}

impl Default for HttpCapability {
    fn default() -> Self {
        Self::denied()
    }
}

impl HttpCapability {
    /// A capability that refuses every request.
    pub fn denied() -> Self {
        Self { table: ResourceTable::new(), plugin: String::new(), grant: None, redactor: Redactor::default(), requests: 0 }
    }

    /// The capability of one call of `plugin`, limited to `grant`; errors and log lines are
    /// scrubbed by `redactor`.
    pub fn new(plugin: &str, grant: HttpGrant, redactor: Redactor) -> Self {
        Self { table: ResourceTable::new(), plugin: plugin.to_string(), grant: Some(grant), redactor, requests: 0 }
    }

    /// Refuse a request: log it (scrubbed) and build the error.
    fn refuse(&self, req: &Request, reason: String) -> HttpError {
        let reason = self.redactor.scrub(&reason);
        tracing::warn!(
            plugin = %self.plugin,
            endpoint = %self.redactor.scrub(&req.endpoint),
            path = %self.redactor.scrub(&req.path),
            "outbound request refused: {reason}"
        );
        HttpError::Denied(reason)
    }

    /// Check the request against the grant and build what to send.
    fn prepare(&mut self, req: &Request) -> Result<(HttpGrant, Prepared), HttpError> {
        let Some(grant) = self.grant.clone() else {
            return Err(self.refuse(req, "this plugin has no network access".into()));
        };
        self.requests += 1;
        if self.requests > grant.policy.max_requests_per_call {
            return Err(self.refuse(req, format!("a call may make at most {} requests", grant.policy.max_requests_per_call)));
        }
        let Some(base) = grant.endpoints.get(&req.endpoint) else {
            let known: Vec<&str> = grant.endpoints.keys().map(String::as_str).collect();
            return Err(self.refuse(req, format!("endpoint `{}` is not allowed; this provider may reach: {}", req.endpoint, known.join(", "))));
        };
        let url = match join(base, &req.path) {
            Ok(u) => u,
            Err(PathError::Escapes(why)) => return Err(self.refuse(req, why)),
            Err(PathError::Invalid(why)) => return Err(HttpError::Invalid(self.redactor.scrub(&why))),
        };
        // An address literal skips the resolver's check: apply it here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            let is_operators_own = grant.local_host.as_deref() == url.host_str();
            if is_forbidden_ip(ip) && !is_operators_own {
                return Err(self.refuse(req, format!("{ip} is a local or link-local address, which this provider may not reach")));
            }
        }
        let headers = match headers(&grant, &req.endpoint, &req.headers) {
            Ok(h) => h,
            Err(PathError::Escapes(why)) => return Err(self.refuse(req, why)),
            Err(PathError::Invalid(why)) => return Err(HttpError::Invalid(self.redactor.scrub(&why))),
        };
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        Ok((grant, Prepared { method, url, headers, body: req.body.clone(), endpoint: req.endpoint.clone(), path: req.path.clone() }))
    }

    /// Send with retries; returns the response head and the body stream positioned at its start.
    async fn execute(&mut self, req: &Request) -> Result<(ResponseHead, BodyStream), HttpError> {
        let (grant, p) = self.prepare(req)?;
        let policy = grant.policy;
        let started = Instant::now();
        let deadline = started + policy.total_timeout;
        let mut attempt: u32 = 0;
        loop {
            let request = grant
                .client
                .request(p.method.clone(), p.url.clone())
                .headers(p.headers.clone())
                .body(p.body.clone())
                .build()
                .map_err(|e| HttpError::Invalid(self.redactor.scrub(&error_chain(&e))))?;
            let first_byte = (Instant::now() + policy.first_byte_timeout).min(deadline);
            let outcome = tokio::time::timeout_at(first_byte.into(), grant.client.execute(request)).await;
            let retry_in = match outcome {
                Err(_elapsed) => {
                    self.log_failure(&p, attempt, started, "no response head in time");
                    return Err(HttpError::Timeout);
                }
                Ok(Err(e)) => {
                    let detail = self.redactor.scrub(&error_chain(&e));
                    if e.is_timeout() {
                        self.log_failure(&p, attempt, started, &detail);
                        return Err(HttpError::Timeout);
                    }
                    if !e.is_connect() || attempt >= policy.max_retries {
                        self.log_failure(&p, attempt, started, &detail);
                        return Err(HttpError::Connect(detail));
                    }
                    backoff(&policy, attempt)
                }
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    let wants_retry = RETRY_STATUSES.contains(&status.as_u16()) && attempt < policy.max_retries;
                    let delay = server_delay(resp.headers()).unwrap_or_else(|| backoff(&policy, attempt));
                    let fits = delay <= policy.max_retry_delay && Instant::now() + delay < deadline;
                    if !(wants_retry && fits) {
                        tracing::debug!(
                            plugin = %self.plugin, endpoint = %p.endpoint, method = %p.method,
                            path = %self.redactor.scrub(&p.path), status = status.as_u16(), attempts = attempt + 1,
                            elapsed_ms = started.elapsed().as_millis() as u64, "outbound request"
                        );
                        return Ok((head(status, resp.headers()), BodyStream {
                            stream: Some(Box::pin(resp.bytes_stream())),
                            read: 0,
                            cap: policy.max_response_bytes,
                            idle: policy.idle_timeout,
                            deadline,
                        }));
                    }
                    delay
                }
            };
            attempt += 1;
            tracing::info!(
                plugin = %self.plugin, endpoint = %p.endpoint, path = %self.redactor.scrub(&p.path),
                "retrying outbound request in {} ms (retry {attempt} of {})", retry_in.as_millis(), policy.max_retries
            );
            tokio::time::sleep(retry_in).await;
        }
    }

    fn log_failure(&self, p: &Prepared, attempt: u32, started: Instant, detail: &str) {
        tracing::warn!(
            plugin = %self.plugin, endpoint = %p.endpoint, method = %p.method, path = %self.redactor.scrub(&p.path),
            attempts = attempt + 1, elapsed_ms = started.elapsed().as_millis() as u64,
            "outbound request failed: {detail}"
        );
    }
}

/// A checked request, ready to send (and re-send on retry).
struct Prepared {
    method: reqwest::Method,
    url: Url,
    headers: HeaderMap,
    body: Vec<u8>,
    endpoint: String,
    path: String,
}

enum PathError {
    /// The request tries to reach somewhere it may not: refused as `denied`.
    Escapes(String),
    /// The request is malformed: refused as `invalid`.
    Invalid(String),
}

/// Join `base` and a relative `path` (with optional query), refusing anything that could leave
/// the endpoint: an authority (`//host`), a scheme, `..`/`.` segments, backslashes, fragments.
fn join(base: &Url, path: &str) -> Result<Url, PathError> {
    if path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(PathError::Invalid("the path contains spaces or control characters".into()));
    }
    if path.contains('#') {
        return Err(PathError::Invalid("the path must not have a fragment".into()));
    }
    if !path.is_empty() && !path.starts_with('/') && !path.starts_with('?') {
        return Err(PathError::Escapes(format!("path {path:?} must start with `/`: it may not name a scheme or a host")));
    }
    let (path_part, _query) = path.split_once('?').unwrap_or((path, ""));
    if path_part.starts_with("//") || path_part.contains('\\') || path_part.contains('@') {
        return Err(PathError::Escapes(format!("path {path:?} may not name a host")));
    }
    let escapes = path_part.split('/').any(|seg| {
        let s = seg.to_ascii_lowercase().replace("%2e", ".");
        s == ".." || s == "." || s.contains("%2f") || s.contains("%5c")
    });
    if escapes {
        return Err(PathError::Escapes(format!("path {path:?} may not leave the endpoint's base path")));
    }
    let joined = format!("{}{}", base.as_str().trim_end_matches('/'), path);
    let url = Url::parse(&joined).map_err(|e| PathError::Invalid(format!("path {path:?} does not make a valid URL: {e}")))?;
    // Belt and braces: whatever the parser did, the result must stay under the base.
    let same_origin = url.scheme() == base.scheme() && url.host_str() == base.host_str() && url.port_or_known_default() == base.port_or_known_default();
    if !same_origin || !url.path().starts_with(base.path().trim_end_matches('/')) {
        return Err(PathError::Escapes(format!("path {path:?} leaves the endpoint")));
    }
    Ok(url)
}

/// Check the plugin's headers and fill in secret placeholders bound to `endpoint`.
fn headers(grant: &HttpGrant, endpoint: &str, raw: &[(String, String)]) -> Result<HeaderMap, PathError> {
    let mut map = HeaderMap::new();
    for (name, value) in raw {
        let lower = name.trim().to_ascii_lowercase();
        let header = HeaderName::from_bytes(lower.as_bytes()).map_err(|_| PathError::Invalid(format!("{name:?} is not a valid header name")))?;
        if HOST_HEADERS.contains(&lower.as_str()) {
            return Err(PathError::Escapes(format!("header `{lower}` is set by the host, not by plugins")));
        }
        let has_placeholder = value.contains("{secret:");
        if CREDENTIAL_HEADERS.contains(&lower.as_str()) && !has_placeholder {
            return Err(PathError::Escapes(format!(
                "header `{lower}` may only carry a {{secret:NAME}} placeholder; the host fills in the key"
            )));
        }
        let filled = if has_placeholder { substitute(grant, endpoint, value)? } else { value.clone() };
        let mut hv = HeaderValue::from_str(&filled).map_err(|_| PathError::Invalid(format!("the value of header `{lower}` is not valid")))?;
        if has_placeholder {
            // Keeps hyper and reqwest from ever printing it.
            hv.set_sensitive(true);
        }
        map.append(header, hv);
    }
    Ok(map)
}

/// Replace every `{secret:NAME}` in `value`, refusing names that are unknown or bound elsewhere.
fn substitute(grant: &HttpGrant, endpoint: &str, value: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(value.len() + 64);
    let mut rest = value;
    while let Some(start) = rest.find("{secret:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "{secret:".len()..];
        let Some(end) = after.find('}') else {
            return Err(PathError::Invalid("an unterminated {secret:…} placeholder".into()));
        };
        let name = &after[..end];
        let binding = grant
            .secrets
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| PathError::Escapes(format!("no secret `{name}` is configured for this provider")))?;
        if binding.endpoint != endpoint {
            return Err(PathError::Escapes(format!(
                "secret `{name}` may only be sent to endpoint `{}`, not to `{endpoint}`",
                binding.endpoint
            )));
        }
        out.push_str(binding.value.expose());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The response head the plugin sees. An HTTP-date `Retry-After` is also given as
/// `retry-after-ms`, so a plugin needs no clock or date parser to report the delay.
fn head(status: StatusCode, headers: &HeaderMap) -> ResponseHead {
    let mut out: Vec<(String, String)> =
        headers.iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    if !headers.contains_key("retry-after-ms") {
        if let Some(date) = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| httpdate::parse_http_date(v.trim()).ok()) {
            let ms = date.duration_since(SystemTime::now()).unwrap_or_default().as_millis();
            out.push(("retry-after-ms".into(), ms.to_string()));
        }
    }
    ResponseHead { status: status.as_u16(), headers: out }
}

/// The delay a server asked for: `retry-after-ms`, else `Retry-After` in seconds or as an HTTP-date.
pub fn server_delay(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite() && *v >= 0.0) {
        return Some(Duration::from_secs_f64(ms.min(1e9) / 1000.0));
    }
    let value = get("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(SystemTime::now()).unwrap_or_default())
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random, so many clients
/// hit by the same outage do not retry in lock-step.
fn backoff(policy: &HttpPolicy, attempt: u32) -> Duration {
    let exp = policy.retry_base_delay.saturating_mul(1u32 << attempt.min(16)).min(policy.max_retry_delay);
    let half = exp / 2;
    half + half.mul_f64(random_unit())
}

/// A random number in [0, 1) without a dependency: std's hasher keys are random per process,
/// and a counter makes each call differ.
fn random_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A reqwest error with its causes ("error sending request: connection refused").
fn error_chain(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

impl BodyStream {
    /// The next chunk: `None` at the end; an error on timeout, cap or a broken connection (after
    /// which the stream is closed and the connection dropped).
    async fn next_chunk(&mut self, redactor: &Redactor) -> Result<Option<Vec<u8>>, HttpError> {
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        let wake = (Instant::now() + self.idle).min(self.deadline);
        let next = tokio::time::timeout_at(wake.into(), stream.next()).await;
        let result = match next {
            Err(_elapsed) => Err(HttpError::Timeout),
            Ok(None) => Ok(None),
            Ok(Some(Err(e))) if e.is_timeout() => Err(HttpError::Timeout),
            Ok(Some(Err(e))) => Err(HttpError::Connect(redactor.scrub(&error_chain(&e)))),
            Ok(Some(Ok(bytes))) => {
                self.read += bytes.len() as u64;
                if self.read > self.cap { Err(HttpError::TooLarge(self.cap)) } else { return Ok(Some(bytes.to_vec())) }
            }
        };
        // Whatever ended the stream, drop the connection now rather than at the end of the call.
        self.stream = None;
        result
    }
}

impl Host for HttpCapability {
    async fn send(&mut self, req: Request) -> wasmtime::Result<Result<(ResponseHead, Vec<u8>), HttpError>> {
        let (head, mut body) = match self.execute(&req).await {
            Ok(ok) => ok,
            Err(e) => return Ok(Err(e)),
        };
        let mut bytes = Vec::new();
        loop {
            match body.next_chunk(&self.redactor).await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                Ok(None) => return Ok(Ok((head, bytes))),
                Err(e) => {
                    tracing::warn!(plugin = %self.plugin, endpoint = %req.endpoint, path = %self.redactor.scrub(&req.path), "reading a response body failed: {e:?}");
                    return Ok(Err(e));
                }
            }
        }
    }

    async fn send_streaming(&mut self, req: Request) -> wasmtime::Result<Result<(ResponseHead, Resource<BodyStream>), HttpError>> {
        match self.execute(&req).await {
            Ok((head, body)) => Ok(Ok((head, self.table.push(body)?))),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl HostBodyStream for HttpCapability {
    async fn next(&mut self, stream: Resource<BodyStream>) -> wasmtime::Result<Result<Option<Vec<u8>>, HttpError>> {
        let redactor = self.redactor.clone();
        let body = self.table.get_mut(&stream)?;
        let result = body.next_chunk(&redactor).await;
        if let Err(e) = &result {
            tracing::warn!(plugin = %self.plugin, "reading a streamed response failed: {e:?}");
        }
        Ok(result)
    }

    async fn drop(&mut self, stream: Resource<BodyStream>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(base: &str) -> HttpGrant {
        HttpGrant::new(
            &HttpClients::new(),
            base,
            &["https://extra.example.com".to_string()],
            vec![("api_key".into(), Secret::new("sk-test-123456"))],
            HttpPolicy::default(),
        )
        .expect("grant")
    }

    #[test]
    fn joins_paths_under_the_base_and_refuses_escapes() {
        let base = Url::parse("https://api.example.com/openai/v1").expect("url");
        assert_eq!(join(&base, "/chat/completions").ok().map(String::from), Some("https://api.example.com/openai/v1/chat/completions".into()));
        assert_eq!(join(&base, "/models?limit=5").ok().map(String::from), Some("https://api.example.com/openai/v1/models?limit=5".into()));
        for bad in ["//evil.com/x", "http://evil.com/x", "/../x", "/a/%2e%2e/b", "/a\\b", "evil.com", "/x@evil.com", "/a/%2F..%2Fb"] {
            assert!(matches!(join(&base, bad), Err(PathError::Escapes(_))), "{bad} should be refused");
        }
        assert!(matches!(join(&base, "/a b"), Err(PathError::Invalid(_))));
    }

    #[test]
    fn fills_placeholders_only_for_the_bound_endpoint_and_refuses_literal_keys() {
        let g = grant("https://api.example.com/v1");
        let h = headers(&g, DEFAULT_ENDPOINT, &[("Authorization".into(), "Bearer {secret:api_key}".into())]).ok().expect("ok");
        assert_eq!(h.get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer sk-test-123456"));
        assert!(h.get("authorization").is_some_and(HeaderValue::is_sensitive));
        assert!(matches!(headers(&g, "https://extra.example.com", &[("x-api-key".into(), "{secret:api_key}".into())]), Err(PathError::Escapes(m)) if m.contains("may only be sent")));
        assert!(matches!(headers(&g, DEFAULT_ENDPOINT, &[("authorization".into(), "Bearer sk-literal".into())]), Err(PathError::Escapes(_))));
        assert!(matches!(headers(&g, DEFAULT_ENDPOINT, &[("x-thing".into(), "{secret:nope}".into())]), Err(PathError::Escapes(m)) if m.contains("nope")));
        assert!(matches!(headers(&g, DEFAULT_ENDPOINT, &[("Host".into(), "evil.com".into())]), Err(PathError::Escapes(_))));
    }

    #[test]
    fn base_urls_must_be_plain_http_origins_and_paths() {
        assert!(HttpGrant::new(&HttpClients::new(), "ftp://x", &[], vec![], HttpPolicy::default()).is_err());
        let err = HttpGrant::new(&HttpClients::new(), "https://user:hunter22@x.com", &[], vec![], HttpPolicy::default()).unwrap_err();
        assert!(!err.to_string().contains("hunter22"), "{err}");
        assert!(HttpGrant::new(&HttpClients::new(), "https://x.com/v1?key=1", &[], vec![], HttpPolicy::default()).is_err());
        assert_eq!(grant("https://api.example.com/v1/").endpoints[DEFAULT_ENDPOINT].as_str(), "https://api.example.com/v1");
    }

    #[test]
    fn forbidden_addresses() {
        for ip in ["127.0.0.1", "0.0.0.0", "169.254.169.254", "::1", "fe80::1", "::ffff:127.0.0.1", "fd00:ec2::254"] {
            assert!(is_forbidden_ip(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["10.0.0.5", "192.168.1.10", "8.8.8.8", "2001:db8::1"] {
            assert!(!is_forbidden_ip(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn reads_retry_after_in_all_its_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(server_delay(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(server_delay(&h), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert("retry-after", HeaderValue::from_str(&later).expect("date"));
        let d = server_delay(&h).expect("date parsed");
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        assert!(head(StatusCode::TOO_MANY_REQUESTS, &h).headers.iter().any(|(k, _)| k == "retry-after-ms"));
    }

    #[test]
    fn backoff_grows_and_stays_capped() {
        let p = HttpPolicy { retry_base_delay: Duration::from_millis(100), max_retry_delay: Duration::from_secs(1), ..HttpPolicy::default() };
        let d0 = backoff(&p, 0);
        assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100), "{d0:?}");
        let d9 = backoff(&p, 9);
        assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_secs(1), "{d9:?}");
    }
}
