//! A product-API server for `/api/v1` tests: the real router on 127.0.0.1 (a free port) over a
//! metadata store in a temporary folder, with the built-in plugins, and small helpers to call it
//! as a signed-in user.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quarry::api::state::AppState;
use quarry::api::v1::state::Product;
use quarry::config::{PipelineSettings, ServerSettings};
use quarry::db::ConnectOptions;
use quarry::llm::ProviderSpec;
use quarry::pipeline::engine::{Engine, EngineConfig};
use quarry::plugins::{PluginRegistry, Runtime, RuntimeConfig};
use quarry::schema::PrivacyPolicy;
use quarry::store::Store;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::{OnceCell, oneshot};

/// The first admin every harness registers.
pub const ADMIN_EMAIL: &str = "admin@example.com";
/// Their password (meets the password policy).
pub const ADMIN_PASSWORD: &str = "Correct-Horse-Battery-9";

/// The built-in plugins, loaded once per test binary (compiled artifacts shared on disk).
pub async fn registry() -> Arc<PluginRegistry> {
    static REGISTRY: OnceCell<Arc<PluginRegistry>> = OnceCell::const_new();
    REGISTRY
        .get_or_init(|| async {
            let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-artifact-cache");
            let runtime =
                Runtime::new(RuntimeConfig { cache_dir: Some(cache), ..RuntimeConfig::default() }).expect("runtime");
            PluginRegistry::load(runtime, None).await
        })
        .await
        .clone()
}

/// A running product-API server; stops when dropped.
pub struct ProductServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client without cookies (tests pass tokens explicitly).
    pub client: reqwest::Client,
    /// The metadata store the server uses (tests may look inside).
    pub store: Store,
    /// The data folder (key files, SQLite store); removed when dropped.
    pub data_dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl ProductServer {
    /// A server with a fresh SQLite store in a temporary data folder.
    pub async fn start() -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_sqlite(&data_dir.path().join("quarry.db")).await.expect("store");
        Self::start_on(store, data_dir).await
    }

    /// A server over `store`, keys kept in `data_dir`.
    pub async fn start_on(store: Store, data_dir: tempfile::TempDir) -> Self {
        let settings = PipelineSettings { data_dir: data_dir.path().to_path_buf(), ..PipelineSettings::default() };
        let config = EngineConfig {
            settings,
            database: None,
            llm: ProviderSpec::default(),
            privacy: PrivacyPolicy::default(),
            connect: ConnectOptions::default(),
        };
        let engine = Engine::new(registry().await, config, store.clone()).await.expect("engine");
        let product = Product::from_env(engine.clone(), data_dir.path()).await.expect("product");
        let state = AppState::new(Arc::new(engine), server_settings()).with_product(Arc::new(product));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = quarry::api::router(Arc::new(state));
        tokio::spawn(quarry::api::serve(listener, app, async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        Self { base, client, store, data_dir, _stop: stop }
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Send a request as the holder of `token` (none: anonymous) with an optional JSON body;
    /// the status and the body as JSON (`Value::Null` for an empty body, a string otherwise).
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    /// `GET path` as `token`.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// `POST path` with `body` as `token`.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// `PUT path` with `body` as `token`.
    pub async fn put(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    /// `DELETE path` as `token`.
    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// `POST /api/v1/chat` with `body` as `token`; the response, its stream not read yet.
    pub async fn chat_request(&self, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/chat"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("chat request")
    }

    /// `POST /api/v1/chat` with `body` as `token`, read to its end by a real SSE parser: the
    /// status and each frame's JSON. Not 200: the error body as the only item.
    pub async fn chat(&self, token: &str, body: &Value) -> (u16, Vec<Value>) {
        use eventsource_stream::Eventsource;
        use futures::StreamExt;

        let response = self.chat_request(token, body).await;
        let status = response.status().as_u16();
        if status != 200 {
            let text = response.text().await.unwrap_or_default();
            return (status, vec![serde_json::from_str(&text).unwrap_or(Value::String(text))]);
        }
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(content_type.starts_with("text/event-stream"), "chat answers with an event stream");
        let mut stream = response.bytes_stream().eventsource();
        let mut frames = Vec::new();
        while let Some(event) =
            tokio::time::timeout(Duration::from_secs(60), stream.next()).await.expect("a frame in time")
        {
            let event = event.expect("well-formed SSE");
            frames.push(serde_json::from_str(&event.data).expect("JSON data"));
        }
        (status, frames)
    }

    /// Register the first admin ([`ADMIN_EMAIL`]) and return their access token.
    pub async fn register_admin(&self) -> String {
        let body = json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "display_name": "Admin" });
        let (status, reply) = self.call(Method::POST, "/api/v1/auth/register", None, Some(&body)).await;
        assert_eq!(status, 201, "register: {reply}");
        reply["access_token"].as_str().expect("access_token").to_string()
    }

    /// As an admin (`admin_token`), add a user with `role` and return their access token.
    pub async fn add_user(&self, admin_token: &str, email: &str, role: &str) -> String {
        let body = json!({ "email": email, "password": ADMIN_PASSWORD, "role": role });
        let (status, reply) = self.post("/api/v1/users", admin_token, &body).await;
        assert_eq!(status, 201, "add user: {reply}");
        let body = json!({ "email": email, "password": ADMIN_PASSWORD });
        let (status, reply) = self.call(Method::POST, "/api/v1/auth/login", None, Some(&body)).await;
        assert_eq!(status, 200, "login: {reply}");
        reply["access_token"].as_str().expect("access_token").to_string()
    }
}

fn server_settings() -> ServerSettings {
    ServerSettings {
        host: "127.0.0.1".into(),
        port: 0,
        bot_name: "SQLBot".into(),
        model_name: "TestBot".into(),
        api_keys: Vec::new(),
        default_retry_count: 5,
        default_schema_examples: 5,
        default_feedback_examples: 3,
    }
}
