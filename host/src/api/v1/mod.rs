//! The product API under `/api/v1`, one module per resource group:
//! - [`auth`]: first-boot setup, sign-in, token refresh and rotation, sign-out, `me`;
//! - [`users`]: admins add and manage users and their roles;
//! - [`connections`]: database connections, their test, privacy, execution mode and schema;
//! - [`semantic`]: the semantic model of a connection;
//! - [`providers`]: LLM provider configurations;
//! - [`settings`]: settings applied live;
//! - [`chat`]: a question answered over SSE, approval, edit, server-side sort, feedback;
//! - [`sessions`]: conversation history;
//! - [`cache`]: the answer cache's stats and entries;
//! - [`examples`]: verified question → SQL pairs;
//! - [`export`]: an answer's stored results as a CSV download.
//!
//! Shared: [`error`] (`{"detail"}` errors), [`extract`] (JSON body, current user, admin),
//! [`page`] (`?limit&offset` and `{items,total,limit,offset}`), [`state`] (the parts behind it),
//! [`catalog`] (every route as `/openapi.json` lists it).

pub mod auth;
pub mod cache;
pub mod catalog;
pub mod chat;
pub mod connections;
pub mod error;
pub mod etag;
pub mod examples;
pub mod export;
pub mod extract;
pub mod page;
pub mod providers;
pub mod semantic;
pub mod sessions;
pub mod settings;
pub mod state;
pub mod users;

use std::sync::Arc;

use axum::Router;

use crate::api::state::AppState;

/// Every `/api/v1` route.
pub fn router() -> Router<Arc<AppState>> {
    let api = Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(connections::router())
        .merge(semantic::router())
        .merge(providers::router())
        .merge(settings::router())
        .merge(chat::router())
        .merge(sessions::router())
        .merge(cache::router())
        .merge(examples::router())
        .merge(export::router());
    Router::new().nest("/api/v1", api)
}
