//! Starting the real `quarry serve` binary for a test, and talking to it over HTTP.
//!
//! [`ServerBuilder`] spawns the binary with a clean environment (only `PATH` and `HOME` survive,
//! so nothing on the machine leaks in), `SERVER_PORT=0`, its own temporary data folder and the
//! shared compiled-plugin cache. The server is ready when it prints its one stdout line
//! `quarry listening on http://127.0.0.1:PORT`; its stderr goes to a file under
//! `target/e2e-logs/` that tests read to prove secrets were never logged. The process is killed
//! when the [`Server`] is dropped.
//!
//! The binary is `QUARRY_BIN` when set; otherwise the support builds `target/debug/quarry` once
//! per test process (`cargo build -p quarry --bin quarry`, a no-op when it is fresh), so a run of
//! `cargo test -p quarry-e2e` never tests a stale server. `QUARRY_E2E_NO_BUILD=1` skips that
//! build and uses whatever binary is there.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, LazyLock, OnceLock, mpsc};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use crate::fake_llm::FakeLlm;
use crate::fixtures::Fixture;

/// The stdout line that says the server accepts connections, followed by its base URL.
const LISTENING: &str = "quarry listening on ";
/// How long a server may take to print its listening line. Generous: the first start in a fresh
/// checkout compiles every built-in plugin. A guard against a hang, not a speed check.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one HTTP request to the server may take before the test gives up (a hang guard).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The model name the fake LLM is configured under.
pub const LLM_MODEL: &str = "e2e-model";
/// The LLM API key every server gets unless a test sets its own.
pub const DEFAULT_LLM_KEY: &str = "sk-e2e-default-llm-key";

/// Servers allowed to run at once in one test process (`QUARRY_E2E_MAX_SERVERS`, default 4):
/// the machines this runs on have two cores, and every server is a debug build.
static SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let n = std::env::var("QUARRY_E2E_MAX_SERVERS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(4);
    Arc::new(Semaphore::new(n))
});

/// Whether a server of this process has started already. The first start may compile the
/// built-in plugins into the shared cache; the others wait for it instead of compiling the
/// same plugins in parallel.
static WARMED: Mutex<bool> = Mutex::const_new(false);

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives inside the workspace").to_path_buf()
}

/// Cargo's target folder: `CARGO_TARGET_DIR` (relative to the workspace root) or `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The shared folder where every test server caches its compiled plugins.
pub fn plugin_cache_dir() -> PathBuf {
    target_dir().join("e2e-plugin-cache")
}

/// The `quarry` binary to test: `QUARRY_BIN`, or the workspace's debug build, built once per
/// process. Panics with what to do when there is none.
pub fn quarry_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(locate_binary).clone().unwrap_or_else(|e| panic!("{e}"))
}

/// `release` or `debug`, from where the binary lives (for the benchmark's report).
pub fn binary_profile(bin: &Path) -> &'static str {
    if bin.components().any(|c| c.as_os_str() == "release") { "release" } else { "debug" }
}

fn locate_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("QUARRY_BIN").filter(|b| !b.is_empty()) {
        // Cargo runs tests and benchmarks in this crate's folder: a relative path may also be
        // meant from the workspace root, where the command was typed.
        let bin = PathBuf::from(bin);
        let from_root = workspace_root().join(&bin);
        return if bin.is_file() {
            Ok(bin)
        } else if from_root.is_file() {
            Ok(from_root)
        } else {
            Err(format!("QUARRY_BIN={} is not a file", bin.display()))
        };
    }
    let bin = target_dir().join("debug").join(format!("quarry{}", std::env::consts::EXE_SUFFIX));
    if std::env::var_os("QUARRY_E2E_NO_BUILD").is_none() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .args(["build", "-p", "quarry", "--bin", "quarry"])
            .current_dir(workspace_root())
            .output()
            .map_err(|e| {
                format!("cannot run cargo to build the server ({e}); run `cargo build -p quarry` or set QUARRY_BIN")
            })?;
        if !output.status.success() {
            return Err(format!(
                "`cargo build -p quarry --bin quarry` failed; fix the build or set QUARRY_BIN:\n{}",
                tail(&String::from_utf8_lossy(&output.stderr), 40)
            ));
        }
    }
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} not found: run `cargo build -p quarry` (or set QUARRY_BIN)", bin.display()))
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What a server is started with; [`ServerBuilder::start`] runs it.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    name: String,
    env: BTreeMap<String, String>,
    /// A data folder the caller owns (kept after the server stops); `None`: a fresh temporary one.
    data_dir: Option<PathBuf>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    /// A server named after the current test (its log file carries the name), listening on
    /// 127.0.0.1 on a free port, logging at `info` (`debug` for Quarry itself).
    pub fn new() -> Self {
        let name = std::thread::current().name().unwrap_or("server").replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let env =
            [
                ("SERVER_HOST", "127.0.0.1"),
                ("SERVER_PORT", "0"),
                ("RUST_LOG", "info,quarry=debug"),
                ("NO_COLOR", "1"),
                // Tests configure what they need; the zero-config defaults (demo database,
                // offline model) have their own tests, which remove this.
                ("QUARRY_ZERO_CONFIG", "0"),
            ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        Self { name, env, data_dir: None }
    }

    /// Use `dir` as the data folder (`QUARRY_DATA_DIR`) instead of a fresh temporary one. The
    /// caller owns it, so it outlives the server: a second server on the same folder is a restart.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// Use `llm` as the model: `LLM_PROVIDER=openai`, `LLM_BASE_URL`, `LLM_MODEL` and
    /// `LLM_API_KEY` (the [`DEFAULT_LLM_KEY`] unless set otherwise later). A server started
    /// without this has no model configured at all (no provider preset either, whose default
    /// base URL would be a real API).
    pub fn llm(self, llm: &FakeLlm) -> Self {
        self.env("LLM_PROVIDER", "openai")
            .env("LLM_BASE_URL", &llm.base_url())
            .env("LLM_MODEL", LLM_MODEL)
            .env("LLM_API_KEY", DEFAULT_LLM_KEY)
    }

    /// Query `db`: `QUARRY_DATABASE_URL`.
    pub fn database(self, db: &Fixture) -> Self {
        self.env("QUARRY_DATABASE_URL", db.server_url())
    }

    /// Set one environment variable (replacing a default).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Leave a default variable unset.
    pub fn without(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    /// Start the server and wait until it listens. Panics (with the server's stderr) when it
    /// exits or stays silent instead.
    pub async fn start(self) -> Server {
        let bin = tokio::task::spawn_blocking(quarry_bin).await.expect("locating the quarry binary");
        let slot = SLOTS.clone().acquire_owned().await.expect("the server semaphore is never closed");
        let mut warmed = WARMED.lock().await;
        if *warmed {
            drop(warmed);
            return self.spawn(&bin, slot).await;
        }
        let server = self.spawn(&bin, slot).await;
        *warmed = true;
        server
    }

    async fn spawn(self, bin: &Path, slot: OwnedSemaphorePermit) -> Server {
        let (owned_dir, data_path) = match &self.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let dir = tempfile::Builder::new().prefix("quarry-e2e-").tempdir().expect("create a data folder");
                let path = dir.path().to_path_buf();
                (Some(dir), path)
            }
        };
        let logs = target_dir().join("e2e-logs");
        std::fs::create_dir_all(&logs).expect("create target/e2e-logs");
        let stderr_path =
            logs.join(format!("{}-{}.stderr", self.name, &uuid::Uuid::new_v4().simple().to_string()[..8]));
        let stderr = std::fs::File::create(&stderr_path).expect("create the server's stderr file");
        let cache = plugin_cache_dir();
        std::fs::create_dir_all(&cache).expect("create the plugin cache folder");
        let plugins_dir = data_path.join("plugins.d");
        std::fs::create_dir_all(&plugins_dir).expect("create an empty plugins folder");

        let mut cmd = Command::new(bin);
        cmd.arg("serve").env_clear().current_dir(&data_path);
        for key in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        cmd.env("QUARRY_DATA_DIR", &data_path)
            .env("QUARRY_CACHE_DIR", &cache)
            .env("QUARRY_PLUGINS_DIR", &plugins_dir)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));

        // Read stdout on a thread: the first line says where the server listens; the rest is
        // drained so the server can never block on a full pipe.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel::<Result<String, String>>();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = match lines.next() {
                Some(Ok(line)) => match line.strip_prefix(LISTENING) {
                    Some(url) => Ok(url.trim().trim_end_matches('/').to_string()),
                    None => Err(format!("its first stdout line was {line:?}, not {LISTENING:?}…")),
                },
                Some(Err(e)) => Err(format!("reading its stdout failed: {e}")),
                None => Err("it closed stdout (exited?) before saying it listens".to_string()),
            };
            let _ = tx.send(first);
            for _ in lines {}
        });
        let ready =
            tokio::task::spawn_blocking(move || rx.recv_timeout(READY_TIMEOUT)).await.expect("waiting for the server");
        let base_url = match ready {
            Ok(Ok(url)) => url,
            failed => {
                let why = match failed {
                    Ok(Err(why)) => why,
                    _ => format!("it printed nothing on stdout within {READY_TIMEOUT:?}"),
                };
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!(
                    "quarry serve did not start: {why} ({status}).\nstderr ({}):\n{}",
                    stderr_path.display(),
                    tail(&log, 60)
                );
            }
        };
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("an HTTP client");
        Server { child, base_url, stderr_path, data_path, _data_dir: owned_dir, http, _slot: slot }
    }
}

/// A running `quarry serve`; killed when dropped.
pub struct Server {
    child: Child,
    base_url: String,
    stderr_path: PathBuf,
    data_path: PathBuf,
    _data_dir: Option<tempfile::TempDir>,
    http: reqwest::Client,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("quarry's stderr is kept in {}", self.stderr_path.display());
        }
    }
}

/// A JSON request body, without reqwest's `json` feature: the support asks for no feature the
/// server's own crate does not use, so building the server from here (`cargo build -p quarry`)
/// and from `cargo test --workspace` produce the same binary instead of rebuilding each other's.
pub trait JsonBody {
    /// Send `body` as `application/json`.
    fn json_body(self, body: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &Value) -> Self {
        self.header("content-type", "application/json").body(body.to_string())
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// The HTTP status.
    pub status: u16,
    /// The `content-type` header ("" when absent).
    pub content_type: String,
    /// The body as text.
    pub text: String,
}

impl HttpReply {
    /// Read `response` to the end.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let text = response.text().await.unwrap_or_else(|e| panic!("reading a {status} response failed: {e}"));
        Self { status, content_type, text }
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("expected a JSON body, got {} {:?}: {e}", self.status, self.text))
    }

    /// The body as JSON after checking the status; panics with the body otherwise.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        self.json()
    }
}

impl Server {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The server's URL for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The HTTP client tests use (with the [`REQUEST_TIMEOUT`] hang guard).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Send `request` and read the whole response.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> HttpReply {
        let response = request.send().await.unwrap_or_else(|e| panic!("request to quarry failed: {e}"));
        HttpReply::read(response).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> HttpReply {
        self.send(self.http.get(self.url(path))).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> HttpReply {
        self.send(self.http.post(self.url(path)).json_body(body)).await
    }

    /// `POST /inference/{route}/{chat_id}` (SQL Query Engine's routes: `sqlQueryEngine`,
    /// `sqlQueryGeneration`, `sqlQueryEvaluation`).
    pub async fn inference(&self, route: &str, chat_id: &str, body: &Value) -> HttpReply {
        self.post(&format!("/inference/{route}/{chat_id}"), body).await
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The server's data folder (`QUARRY_DATA_DIR`).
    pub fn data_dir(&self) -> &Path {
        &self.data_path
    }

    /// Where the server's stderr is written.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// Panic if `secret` appears in the server's stderr.
    pub fn assert_not_logged(&self, secret: &str) {
        let log = self.stderr();
        if let Some(at) = log.find(secret) {
            let line_start = log[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = log[at..].find('\n').map_or(log.len(), |i| at + i);
            panic!(
                "a secret appears in quarry's stderr ({}):\n{}",
                self.stderr_path.display(),
                &log[line_start..line_end]
            );
        }
    }
}
