//! The HTTP API, one module per family of routes:
//! - [`health`]: `GET /ping`;
//! - [`inference`]: SQL Query Engine's `/inference/*` routes;
//! - [`openai`]: the OpenAI-compatible `/v1` routes;
//! - [`docs`]: `/openapi.json` and the Swagger UI at `/docs`.
//!
//! Shared pieces: [`state`] (what every route reaches: the engine behind [`state::Backend`] and
//! the settings), [`job`] (a question running in its own task), [`validation`] (bodies checked
//! the way FastAPI checks them). [`router`] puts it together with the body-size limit, request
//! tracing (method, path and status only: never headers, query strings or bodies, which carry
//! keys and passwords) and permissive CORS (browsers and OpenWebUI call it).

pub mod docs;
pub mod health;
pub mod inference;
pub mod job;
pub mod openai;
pub mod state;
pub mod v1;
pub mod validation;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use self::state::AppState;

/// Largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Every route, with its middleware.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(health::router())
        .merge(inference::router())
        .merge(openai::router(state.clone()))
        .merge(v1::router())
        .merge(docs::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CorsLayer::permissive())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                // Failed requests are logged, with their reason, by the route families' errors.
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .with_state(state)
}

/// Serve `app` on `listener` until `shutdown` completes, then finish the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// FastAPI's 404 body.
async fn not_found() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "detail": "Not Found" })),
    )
}

/// FastAPI's 405 body.
async fn method_not_allowed() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({ "detail": "Method Not Allowed" })),
    )
}
