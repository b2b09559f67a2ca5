//! `/api/v1/auth`: first-boot setup, sign-in, token refresh (rotated on every use, reuse revokes
//! the family), sign-out (one session or everywhere), the user's signed-in devices (each a
//! refresh-token family; one can be signed out) and the signed-in user's own profile.
//!
//! The refresh token travels both in the JSON body (`refresh_token`, for API clients) and in the
//! `quarry_rt` cookie (HttpOnly, for browsers); `/refresh` and `/logout` accept either.
//! `/register`, `/login` and `/refresh` are rate limited per client address ([`RateLimit`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::header::{CACHE_CONTROL, RETRY_AFTER, SET_COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::state::AppState;
use crate::auth::email::Email;
use crate::auth::rate_limit::client_ip;
use crate::auth::{Auth, Client, Role, Session, password, refresh};
use crate::store::users::{NewUser, RefreshFamily, UserChanges, UserRecord, UserUpdate};

use super::error::{ApiError, ApiResult};
use super::extract::{Body, CurrentUser, OptionalBody};
use super::page::{PageParams, Paginated};

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// The auth routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/auth/setup-status", get(setup_status))
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh_tokens))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
        .route("/auth/me", get(me).put(update_me))
        .route("/auth/sessions", get(list_sessions))
        .route("/auth/sessions/{id}", delete(revoke_session))
}

/// A user as the API shows them, with their account state.
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    /// UUID.
    pub id: String,
    /// Sign-in email (lower-cased).
    pub email: String,
    /// Name shown in the UI.
    pub display_name: Option<String>,
    /// `admin` or `member`.
    pub role: Role,
    /// False once disabled.
    pub is_active: bool,
    /// When created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<&UserRecord> for UserInfo {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            is_active: u.is_active,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// The client's address and User-Agent.
pub struct ClientMeta(pub Client);

impl<S: Send + Sync> FromRequestParts<S> for ClientMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientMeta(client_of(parts)))
    }
}

fn client_of(parts: &Parts) -> Client {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    Client {
        ip: client_ip(peer, &parts.headers),
        user_agent: parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(255).collect()),
    }
}

/// Counts the request against its route's per-client limit; 429 with `Retry-After` over it.
/// Put it first among a handler's extractors, so a refused request costs nothing more.
pub struct RateLimit;

impl FromRequestParts<Arc<AppState>> for RateLimit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let product = state.product().map_err(IntoResponse::into_response)?;
        let client = client_of(parts);
        match product.auth.rate_limit(parts.uri.path(), &client).await {
            Ok(()) => Ok(RateLimit),
            Err(limited) => {
                let secs = limited.retry_after_secs();
                let body = json!({ "detail": format!("Too many requests, retry in {secs} seconds") });
                Err((StatusCode::TOO_MANY_REQUESTS, [(RETRY_AFTER, secs.to_string())], Json(body)).into_response())
            }
        }
    }
}

#[derive(Debug, Serialize)]
struct SetupStatus {
    needs_setup: bool,
}

/// `GET /auth/setup-status`: whether no user exists yet.
async fn setup_status(State(state): State<Arc<AppState>>) -> ApiResult<Json<SetupStatus>> {
    let product = state.product()?;
    Ok(Json(SetupStatus { needs_setup: product.store.count_users().await? == 0 }))
}

#[derive(Deserialize)]
struct RegisterRequest {
    email: Email,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Deserialize)]
struct RefreshRequest {
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct UpdateMeRequest {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    current_password: Option<String>,
    #[serde(default)]
    new_password: Option<String>,
}

/// The user inside a sign-in answer.
#[derive(Debug, Serialize)]
struct SessionUser<'a> {
    id: &'a str,
    email: &'a str,
    display_name: Option<&'a str>,
    role: Role,
}

#[derive(Debug, Serialize)]
struct LoginResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: &'a str,
    user: SessionUser<'a>,
}

#[derive(Debug, Serialize)]
struct RefreshResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: &'a str,
}

/// A sign-in answer: the tokens and user, the refresh cookie, and no caching.
fn login_reply(status: StatusCode, auth: &Auth, session: &Session) -> Response {
    let user = &session.user;
    let body = LoginResponse {
        access_token: &session.access_token,
        token_type: "bearer",
        expires_in: session.expires_in,
        refresh_token: &session.refresh_token,
        user: SessionUser {
            id: &user.id,
            email: &user.email,
            display_name: user.display_name.as_deref(),
            role: user.role,
        },
    };
    let headers = [(SET_COOKIE, auth.refresh_cookie(&session.refresh_token)), (CACHE_CONTROL, "no-store".into())];
    (status, headers, Json(body)).into_response()
}

/// A display name as given: trimmed, empty meaning none; 422 if too long or with control characters.
pub fn clean_display_name(name: Option<String>) -> ApiResult<Option<String>> {
    let Some(name) = name else { return Ok(None) };
    let name = name.trim();
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(ApiError::unprocessable(format!(
            "display_name must be at most {MAX_DISPLAY_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable("display_name must not contain control characters"));
    }
    Ok((!name.is_empty()).then(|| name.to_string()))
}

/// `POST /auth/register`: the first user, an admin; 409 once anyone exists.
async fn register(
    _limit: RateLimit,
    State(state): State<Arc<AppState>>,
    ClientMeta(client): ClientMeta,
    Body(req): Body<RegisterRequest>,
) -> ApiResult<Response> {
    let product = state.product()?;
    let setup_done = || ApiError::conflict("Setup already complete; ask an admin to add you");
    // Cheap early answer; the insert below is what decides under concurrency.
    if product.store.count_users().await? > 0 {
        return Err(setup_done());
    }
    password::check_policy(&req.password).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let display_name = clean_display_name(req.display_name)?;
    let password_hash = password::hash(req.password).await.map_err(ApiError::internal)?;
    let new = NewUser { email: req.email.into_string(), display_name, password_hash, role: Role::Admin };
    let user = product.store.register_first_user(new).await?.ok_or_else(setup_done)?;
    tracing::info!(user_id = %user.id, "first admin registered");
    let session = product.auth.start_session(&product.store, user, &client).await?;
    Ok(login_reply(StatusCode::CREATED, &product.auth, &session))
}

/// `POST /auth/login`.
async fn login(
    _limit: RateLimit,
    State(state): State<Arc<AppState>>,
    ClientMeta(client): ClientMeta,
    Body(req): Body<LoginRequest>,
) -> ApiResult<Response> {
    let product = state.product()?;
    let user = product.auth.check_credentials(&product.store, &req.email, req.password).await?;
    let session = product.auth.start_session(&product.store, user, &client).await?;
    Ok(login_reply(StatusCode::OK, &product.auth, &session))
}

/// The refresh token of a request: the body's `refresh_token`, else the cookie.
fn presented_refresh_token(body: Option<RefreshRequest>, headers: &HeaderMap) -> Option<String> {
    body.and_then(|b| b.refresh_token).filter(|t| !t.is_empty()).or_else(|| refresh::from_cookie(headers))
}

/// `POST /auth/refresh`: new access and refresh tokens for a valid refresh token.
async fn refresh_tokens(
    _limit: RateLimit,
    State(state): State<Arc<AppState>>,
    ClientMeta(client): ClientMeta,
    headers: HeaderMap,
    OptionalBody(body): OptionalBody<RefreshRequest>,
) -> ApiResult<Response> {
    let product = state.product()?;
    let auth = &product.auth;
    let Some(token) = presented_refresh_token(body, &headers) else {
        return Err(ApiError::unauthorized("Refresh token missing"));
    };
    match auth.refresh_session(&product.store, &token, &client).await {
        Ok(session) => {
            let body = RefreshResponse {
                access_token: &session.access_token,
                token_type: "bearer",
                expires_in: session.expires_in,
                refresh_token: &session.refresh_token,
            };
            let headers =
                [(SET_COOKIE, auth.refresh_cookie(&session.refresh_token)), (CACHE_CONTROL, "no-store".into())];
            Ok((headers, Json(body)).into_response())
        }
        // A refused refresh token is of no further use to the browser: drop the cookie.
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Ok(([(SET_COOKIE, auth.clear_cookie())], e).into_response()),
        Err(e) => Err(e),
    }
}

/// `POST /auth/logout`: this access token and refresh-token family stop working.
async fn logout(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    headers: HeaderMap,
    OptionalBody(body): OptionalBody<RefreshRequest>,
) -> ApiResult<Response> {
    let product = state.product()?;
    let token = presented_refresh_token(body, &headers);
    product.auth.sign_out(&product.store, &current.user.id, &current.token_id, token.as_deref()).await?;
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, product.auth.clear_cookie())]).into_response())
}

/// `POST /auth/logout-all`: every session of this user stops working.
async fn logout_all(State(state): State<Arc<AppState>>, current: CurrentUser) -> ApiResult<Response> {
    let product = state.product()?;
    product.auth.sign_out_everywhere(&product.store, &current.user.id, &current.token_id).await?;
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, product.auth.clear_cookie())]).into_response())
}

/// `GET /auth/me`.
async fn me(State(state): State<Arc<AppState>>, current: CurrentUser) -> ApiResult<Json<UserInfo>> {
    let product = state.product()?;
    let user = product.store.user_by_id(&current.user.id).await?;
    let user = user.ok_or_else(|| ApiError::unauthorized("Not authenticated"))?;
    Ok(Json(UserInfo::from(&user)))
}

/// `PUT /auth/me`: change the display name and/or the password. A password change needs the
/// current password and signs out every other session: refresh tokens other than this device's
/// (the cookie's) are revoked, and access tokens issued so far, this one included, are refused,
/// so this device continues through `/auth/refresh`.
async fn update_me(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    headers: HeaderMap,
    Body(req): Body<UpdateMeRequest>,
) -> ApiResult<Json<UserInfo>> {
    let product = state.product()?;
    let store = &product.store;
    let user_id = &current.user.id;
    let mut changes = UserChanges::default();
    if req.display_name.is_some() {
        changes.display_name = Some(clean_display_name(req.display_name)?);
    }
    if let Some(new_password) = req.new_password {
        let Some(current_password) = req.current_password.filter(|p| !p.is_empty()) else {
            return Err(ApiError::bad_request("current_password is required to set a new password"));
        };
        let record = store.user_by_id(user_id).await?.ok_or_else(|| ApiError::unauthorized("Not authenticated"))?;
        let matches = password::verify(current_password, record.password_hash).await.map_err(ApiError::internal)?;
        if !matches {
            return Err(ApiError::bad_request("Current password is incorrect"));
        }
        password::check_policy(&new_password).map_err(|e| ApiError::bad_request(e.to_string()))?;
        changes.password_hash = Some(password::hash(new_password).await.map_err(ApiError::internal)?);
        changes.keep_family = match refresh::from_cookie(&headers) {
            Some(token) => store.refresh_family_of(&refresh::digest(&token), user_id).await?,
            None => None,
        };
    }
    match store.update_user(user_id, changes).await? {
        UserUpdate::Updated(user) => Ok(Json(UserInfo::from(&user))),
        UserUpdate::NotFound => Err(ApiError::unauthorized("Not authenticated")),
        // Nothing a user changes about themselves here touches their role or state.
        UserUpdate::LastAdmin => Err(ApiError::conflict("At least one active admin must remain")),
    }
}

/// A signed-in device, as `GET /auth/sessions` lists it.
#[derive(Debug, Serialize)]
struct DeviceSession {
    /// The refresh-token family's id (what `DELETE /auth/sessions/{id}` takes).
    id: String,
    /// The device's User-Agent (at most 255 characters), when it sent one.
    device_hint: Option<String>,
    /// The address it last signed in or refreshed from.
    ip_address: Option<String>,
    /// When it signed in.
    created_at: chrono::DateTime<chrono::Utc>,
    /// When it must sign in again unless it refreshes first.
    expires_at: chrono::DateTime<chrono::Utc>,
}

impl From<RefreshFamily> for DeviceSession {
    fn from(f: RefreshFamily) -> Self {
        Self {
            id: f.id,
            device_hint: f.device_hint,
            ip_address: f.ip,
            created_at: f.created_at,
            expires_at: f.expires_at,
        }
    }
}

/// `GET /auth/sessions`: the user's signed-in devices (live refresh-token families), newest first.
async fn list_sessions(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    page: PageParams,
) -> ApiResult<Json<Paginated<DeviceSession>>> {
    let product = state.product()?;
    let (families, total) = product.store.list_refresh_families(&current.user.id, page.limit, page.offset).await?;
    Ok(Json(Paginated::new(families.into_iter().map(DeviceSession::from).collect(), total, page)))
}

/// `DELETE /auth/sessions/{id}`: sign one device out: its refresh token stops working (its
/// short-lived access token runs out by itself). 404 unless it is a live session of this user.
async fn revoke_session(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let product = state.product()?;
    if !product.store.revoke_refresh_family_by_id(&current.user.id, &id).await? {
        return Err(ApiError::not_found("Session not found"));
    }
    Ok(StatusCode::NO_CONTENT)
}
