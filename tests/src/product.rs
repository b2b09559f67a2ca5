//! Talking to the product API (`/api/v1`) of a running server as a signed-in user: register or
//! sign in, send authorised requests, and read a `/api/v1/chat` answer stream into its frames.

use serde_json::{Value, json};

use crate::server::{HttpReply, JsonBody, Server};
use crate::sse::read_events;

/// A password the product's rules accept (12+ characters, upper case, digit, symbol).
pub const ADMIN_PASSWORD: &str = "Correct-Horse-42!";

/// A signed-in user of one server: its bearer token.
#[derive(Debug, Clone)]
pub struct User {
    /// The access token (`Authorization: Bearer …`).
    pub token: String,
}

/// One answer of `POST /api/v1/chat`: every frame in order, and the final `done` frame.
#[derive(Debug, Clone)]
pub struct ChatAnswer {
    /// Every `data:` frame, parsed.
    pub frames: Vec<Value>,
    /// The last frame, whose `type` is `done` (the whole answer).
    pub done: Value,
}

impl ChatAnswer {
    /// The frame types in order (for failure messages and order checks).
    pub fn types(&self) -> Vec<String> {
        self.frames.iter().map(|f| f["type"].as_str().unwrap_or("?").to_string()).collect()
    }
}

/// `POST /api/v1/auth/register` as the first user (who becomes the admin); panics unless 201/200.
pub async fn register(server: &Server, email: &str, password: &str) -> User {
    let reply = server
        .post("/api/v1/auth/register", &json!({ "email": email, "password": password, "display_name": "E2E Admin" }))
        .await;
    assert!(matches!(reply.status, 200 | 201), "register failed: {} {}", reply.status, reply.text);
    token_of(&reply)
}

/// `POST /api/v1/auth/login`; the raw reply (a test may expect a failure).
pub async fn login_reply(server: &Server, email: &str, password: &str) -> HttpReply {
    server.post("/api/v1/auth/login", &json!({ "email": email, "password": password })).await
}

/// Sign in; panics unless it works.
pub async fn login(server: &Server, email: &str, password: &str) -> User {
    let reply = login_reply(server, email, password).await;
    assert_eq!(reply.status, 200, "login failed: {}", reply.text);
    token_of(&reply)
}

fn token_of(reply: &HttpReply) -> User {
    let body = reply.json();
    let token = body["access_token"].as_str().unwrap_or_else(|| panic!("no access_token in {body}"));
    User { token: token.to_string() }
}

impl User {
    fn authorise(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.bearer_auth(&self.token)
    }

    /// `GET path` with this user's token.
    pub async fn get(&self, server: &Server, path: &str) -> HttpReply {
        server.send(self.authorise(server.http().get(server.url(path)))).await
    }

    /// `POST path` with a JSON body and this user's token.
    pub async fn post(&self, server: &Server, path: &str, body: &Value) -> HttpReply {
        server.send(self.authorise(server.http().post(server.url(path))).json_body(body)).await
    }

    /// `PUT path` with a JSON body and this user's token.
    pub async fn put(&self, server: &Server, path: &str, body: &Value) -> HttpReply {
        server.send(self.authorise(server.http().put(server.url(path))).json_body(body)).await
    }

    /// `POST /api/v1/chat` with `body`, read to the end. Panics unless it is a 200 event stream
    /// whose frames are JSON with a `type`, the last one `done`.
    pub async fn chat(&self, server: &Server, body: &Value) -> ChatAnswer {
        let response = self
            .authorise(server.http().post(server.url("/api/v1/chat")))
            .json_body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /api/v1/chat failed: {e}"));
        if response.status().as_u16() != 200 {
            let reply = HttpReply::read(response).await;
            panic!("POST /api/v1/chat: {} {}", reply.status, reply.text);
        }
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(content_type.starts_with("text/event-stream"), "chat content-type {content_type:?}");
        let frames: Vec<Value> = read_events(response)
            .await
            .iter()
            .map(|e| {
                serde_json::from_str(&e.data).unwrap_or_else(|err| panic!("a frame that is not JSON ({err}): {e:?}"))
            })
            .collect();
        for frame in &frames {
            assert!(frame["type"].is_string(), "a frame without a type: {frame}");
        }
        let done = frames.last().cloned().unwrap_or_else(|| panic!("the chat stream was empty"));
        assert_eq!(done["type"], "done", "the last frame is `done`; frames: {frames:?}");
        ChatAnswer { frames, done }
    }

    /// Ask `question` on `connection_id` (optionally in `session_id`).
    pub async fn ask(
        &self,
        server: &Server,
        connection_id: &str,
        question: &str,
        session_id: Option<&str>,
    ) -> ChatAnswer {
        let mut body = json!({ "connection_id": connection_id, "message": question });
        if let Some(session) = session_id {
            body["session_id"] = json!(session);
        }
        self.chat(server, &body).await
    }
}

/// A saved SQLite connection called `name` on a copy of `server`'s demo database, made by `admin`:
/// its id and the folder holding the copy (deleted when dropped). The copy lives outside every
/// data folder (the product refuses files inside its own), so servers on this machine share it.
pub async fn demo_copy_connection(server: &Server, admin: &User, name: &str) -> (String, tempfile::TempDir) {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection, Executor};

    let dir = tempfile::Builder::new().prefix("quarry-e2e-shop-").tempdir().expect("a folder for the shop");
    let path = dir.path().join("shop.db");
    let mut demo = SqliteConnectOptions::new()
        .filename(server.data_dir().join("demo.db"))
        .read_only(true)
        .connect()
        .await
        .expect("open the demo database");
    demo.execute(sqlx::AssertSqlSafe(format!("VACUUM INTO '{}'", path.display()))).await.expect("copy demo.db");
    demo.close().await.expect("close demo.db");
    let body = json!({ "name": name, "source_type": "sqlite", "config": { "path": path.display().to_string() } });
    let created = admin.post(server, "/api/v1/connections", &body).await;
    assert!(matches!(created.status, 200 | 201), "create connection: {} {}", created.status, created.text);
    let id = created.json()["id"].as_str().unwrap_or_else(|| panic!("no id in {}", created.text)).to_string();
    (id, dir)
}
