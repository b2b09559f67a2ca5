//! `/api/v1/users` (admins only): list, add, read, change and delete users. Changing someone's
//! role, disabling them or setting their password signs them out everywhere; no change may leave
//! the server without an active admin (409).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::api::state::AppState;
use crate::auth::email::Email;
use crate::auth::{Role, password};
use crate::store::users::{NewUser, UserChanges, UserDeletion, UserUpdate};

use super::auth::{UserInfo, clean_display_name};
use super::error::{ApiError, ApiResult};
use super::extract::{AdminUser, Body};
use super::page::{PageParams, Paginated};

/// The users routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).put(update_user).delete(delete_user))
}

const NOT_FOUND: &str = "User not found";
const LAST_ADMIN: &str = "At least one active admin must remain";

/// `id` if it is a UUID; 404 otherwise (nothing else can name a user).
fn user_id(id: &str) -> ApiResult<&str> {
    uuid::Uuid::parse_str(id).map(|_| id).map_err(|_| ApiError::not_found(NOT_FOUND))
}

#[derive(Deserialize)]
struct CreateUserRequest {
    email: Email,
    password: String,
    #[serde(default = "default_role")]
    role: Role,
    #[serde(default)]
    display_name: Option<String>,
}

fn default_role() -> Role {
    Role::Member
}

#[derive(Deserialize)]
struct UpdateUserRequest {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    password: Option<String>,
}

/// `GET /users`: every user, oldest first, a page at a time.
async fn list_users(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    page: PageParams,
) -> ApiResult<Json<Paginated<UserInfo>>> {
    let product = state.product()?;
    let (users, total) = product.store.list_users(page.limit, page.offset).await?;
    Ok(Json(Paginated::new(users.iter().map(UserInfo::from).collect(), total, page)))
}

/// `POST /users`: add a user; 409 if the email is taken.
async fn create_user(
    State(state): State<Arc<AppState>>,
    AdminUser(admin): AdminUser,
    Body(req): Body<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<UserInfo>)> {
    let product = state.product()?;
    password::check_policy(&req.password).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let display_name = clean_display_name(req.display_name)?;
    let email = req.email.into_string();
    if product.store.user_by_email(&email).await?.is_some() {
        return Err(ApiError::conflict("A user with this email already exists"));
    }
    let password_hash = password::hash(req.password).await.map_err(ApiError::internal)?;
    let new = NewUser { email, display_name, password_hash, role: req.role };
    let user = product
        .store
        .create_user(new)
        .await?
        .ok_or_else(|| ApiError::conflict("A user with this email already exists"))?;
    tracing::info!(user_id = %user.id, by = %admin.user.id, role = user.role.as_str(), "user added");
    Ok((StatusCode::CREATED, Json(UserInfo::from(&user))))
}

/// `GET /users/{id}`.
async fn get_user(
    State(state): State<Arc<AppState>>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<UserInfo>> {
    let product = state.product()?;
    let user = product.store.user_by_id(user_id(&id)?).await?.ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(Json(UserInfo::from(&user)))
}

/// `PUT /users/{id}`: change the display name, role, state or password.
async fn update_user(
    State(state): State<Arc<AppState>>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Body(req): Body<UpdateUserRequest>,
) -> ApiResult<Json<UserInfo>> {
    let product = state.product()?;
    let mut changes = UserChanges { role: req.role, is_active: req.is_active, ..UserChanges::default() };
    if req.display_name.is_some() {
        changes.display_name = Some(clean_display_name(req.display_name)?);
    }
    if let Some(new_password) = req.password {
        password::check_policy(&new_password).map_err(|e| ApiError::bad_request(e.to_string()))?;
        changes.password_hash = Some(password::hash(new_password).await.map_err(ApiError::internal)?);
    }
    match product.store.update_user(user_id(&id)?, changes).await? {
        UserUpdate::Updated(user) => {
            tracing::info!(user_id = %user.id, by = %admin.user.id, "user changed");
            Ok(Json(UserInfo::from(&user)))
        }
        UserUpdate::NotFound => Err(ApiError::not_found(NOT_FOUND)),
        UserUpdate::LastAdmin => Err(ApiError::conflict(LAST_ADMIN)),
    }
}

/// `DELETE /users/{id}`.
async fn delete_user(
    State(state): State<Arc<AppState>>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let product = state.product()?;
    match product.store.delete_user(user_id(&id)?).await? {
        UserDeletion::Deleted => {
            tracing::info!(user_id = %id, by = %admin.user.id, "user deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        UserDeletion::NotFound => Err(ApiError::not_found(NOT_FOUND)),
        UserDeletion::LastAdmin => Err(ApiError::conflict(LAST_ADMIN)),
    }
}
