//! `/api/v1` routes: settings applied live.
//!
//! - `GET /settings`: every setting (any signed-in user);
//! - `PUT /settings`: change any subset (admins). Each value is range-checked; an unknown key,
//!   a value out of range or of the wrong kind is a 422 naming the field, and nothing is saved.
//!   A new `log_level` takes effect in this process at once (and in other replicas within
//!   seconds).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

use crate::api::state::AppState;
use crate::api::validation::{FieldError, Invalid};
use crate::app_settings::{Settings, SettingsError};

use super::error::{ApiError, ApiResult};
use super::extract::{AdminUser, Body, CurrentUser};

/// The settings routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/settings", get(read).put(change))
}

async fn read(State(state): State<Arc<AppState>>, _user: CurrentUser) -> ApiResult<Json<Settings>> {
    let product = state.product()?;
    Ok(Json(product.settings.current().await?))
}

async fn change(
    State(state): State<Arc<AppState>>,
    AdminUser(_admin): AdminUser,
    Body(changes): Body<Map<String, Value>>,
) -> Result<Json<Settings>, Response> {
    let product = state.product().map_err(IntoResponse::into_response)?;
    match product.settings.update(&changes).await {
        Ok(settings) => Ok(Json(settings)),
        Err(SettingsError::Invalid(problems)) => {
            let errors = problems
                .into_iter()
                .map(|p| {
                    let input = changes.get(&p.field).cloned().unwrap_or(Value::Null);
                    FieldError::new("value_error", vec!["body".into(), Value::from(p.field)], p.message, input)
                })
                .collect();
            Err(Invalid(errors).into_response())
        }
        Err(SettingsError::Store(e)) => Err(ApiError::from(e).into_response()),
    }
}
