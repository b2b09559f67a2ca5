//! `GET /ping`: SQL Query Engine's liveness check, with the same body.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// The body of `GET /ping`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ping {
    /// Always 200.
    pub code: u16,
    /// "[ SQL Query Engine ]: Agent is alive and reachable."
    pub status: String,
    /// Always `sqlQueryEngine`.
    pub agent: String,
    /// The scheme the client used.
    pub scheme: String,
    /// The host the client addressed.
    pub host: String,
    /// The port the client addressed.
    pub port: String,
    /// The client's address.
    pub client_host: String,
    /// The client's port.
    pub client_port: u16,
}

/// The `/ping` route.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/ping", get(ping))
}

/// Liveness check: no authentication, no dependencies.
#[utoipa::path(get, path = "/ping", tag = "Ping", responses((status = 200, description = "The server is up", body = Ping)))]
pub async fn ping(ConnectInfo(client): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Json<Ping> {
    let authority = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h.to_string(), p.to_string())
        }
        _ => (authority.to_string(), String::new()),
    };
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http")
        .to_string();
    Json(Ping {
        code: 200,
        status: "[ SQL Query Engine ]: Agent is alive and reachable.".to_string(),
        agent: "sqlQueryEngine".to_string(),
        scheme,
        host,
        port,
        client_host: client.ip().to_string(),
        client_port: client.port(),
    })
}
