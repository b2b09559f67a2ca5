//! `GET /v1/models`: the one model Quarry offers, the SQL engine.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use super::error::OpenAiErrorBody;
use super::types::{Model, ModelList};
use crate::api::state::AppState;

/// List the models: one, named by `COMPLETIONS_MODEL_NAME` (default `BOT_NAME`, default `SQLBot`).
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "OpenAI Compatible",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The model list", body = ModelList),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
    )
)]
pub async fn list_models(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: vec![Model {
            id: state.settings.model_name.clone(),
            object: "model",
            created: state.started,
            owned_by: "sql-query-engine",
        }],
    })
}
