//! Users and sign-in: who a request comes from and what they may do.
//!
//! - [`password`]: the password policy and argon2id hashing (off the async workers);
//! - [`email`]: address syntax and the lower-cased form accounts are keyed by;
//! - [`tokens`]: access tokens (HS256 JWTs);
//! - [`refresh`]: refresh tokens (random, stored hashed, rotated on every use) and their cookie;
//! - [`rate_limit`]: per-client limits on the sign-in routes.
//!
//! [`Auth`] ties them together for the routes: it signs in, refreshes and signs out, and
//! [`Auth::authenticate`] turns a bearer token into a [`User`], checking the signature, expiry,
//! the deny-list, that the account is active, that the token was issued after the user's last
//! "sign out everywhere", and reading the role from the store (so a role change applies at once).
//!
//! The signing key comes from `QUARRY_JWT_SECRET` (at least 32 characters) or, when that is unset,
//! from the metadata store, where the first server to start puts a random 64-byte key: replicas
//! sharing a PostgreSQL store accept each other's tokens without configuration.

pub mod email;
pub mod password;
pub mod rate_limit;
pub mod refresh;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::RngCore;
use rand::rngs::OsRng;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::api::v1::error::ApiError;
use crate::store::users::{NewRefreshToken, Rotation, UserRecord};
use crate::store::{Store, StoreError};

use self::email::Email;
use self::rate_limit::{FixedWindow, Limited, RateLimiter, RedisWindow};
use self::tokens::{AccessKeys, TokenError};

/// Signing secret for access tokens (at least 32 characters); unset: a key kept in the store.
pub const JWT_SECRET_VAR: &str = "QUARRY_JWT_SECRET";
/// Access-token lifetime in seconds (default 1800).
pub const ACCESS_TTL_VAR: &str = "QUARRY_ACCESS_TOKEN_TTL_SECS";
/// Refresh-token lifetime in days (default 30).
pub const REFRESH_TTL_VAR: &str = "QUARRY_REFRESH_TOKEN_TTL_DAYS";
/// Sign-in requests per client address per minute and route (default 10; 0 turns the limit off).
pub const RATE_LIMIT_VAR: &str = "QUARRY_AUTH_RATE_LIMIT_PER_MIN";
/// `1` or `true`: the refresh cookie without `Secure`, for plain-HTTP development.
pub const INSECURE_COOKIES_VAR: &str = "QUARRY_INSECURE_COOKIES";

/// The store's name for the generated signing key.
const STORED_KEY_NAME: &str = "jwt_hs256";

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages connections, providers, settings and users; approves queries.
    Admin,
    /// Chats, manages their own sessions, adds examples and feedback.
    Member,
}

impl Role {
    /// `admin` or `member`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// The role stored as `text`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// A user as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// UUID.
    pub id: String,
    /// Sign-in name.
    pub email: String,
    /// Name shown in the UI.
    pub display_name: Option<String>,
    /// What they may do.
    pub role: Role,
}

/// Why sign-in could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A setting is unusable (the message names it and says what is expected, never its value).
    #[error("auth configuration: {0}")]
    Config(String),
    /// The generated signing key could not be read or stored.
    #[error("auth signing key: {0}")]
    Store(#[from] StoreError),
}

/// Lifetimes, cookie and rate-limit settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Access-token lifetime.
    pub access_ttl_secs: u64,
    /// Refresh-token lifetime.
    pub refresh_ttl_secs: u64,
    /// Whether the refresh cookie is `Secure`.
    pub secure_cookies: bool,
    /// Sign-in requests per client per minute and route; 0: unlimited.
    pub rate_limit_per_min: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { access_ttl_secs: 1800, refresh_ttl_secs: 30 * 86_400, secure_cookies: true, rate_limit_per_min: 10 }
    }
}

impl AuthConfig {
    /// The settings from the environment; an unparsable value is an error naming the variable.
    pub fn from_env() -> Result<Self, AuthError> {
        let mut config = AuthConfig::default();
        if let Some(secs) = env_number(ACCESS_TTL_VAR)? {
            config.access_ttl_secs = secs.clamp(1, 365 * 86_400);
        }
        if let Some(days) = env_number(REFRESH_TTL_VAR)? {
            config.refresh_ttl_secs = days.clamp(1, 3650) * 86_400;
        }
        if let Some(n) = env_number(RATE_LIMIT_VAR)? {
            config.rate_limit_per_min = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Ok(v) = std::env::var(INSECURE_COOKIES_VAR) {
            config.secure_cookies = !matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes");
        }
        Ok(config)
    }
}

/// The signing secret from `QUARRY_JWT_SECRET`'s value: `None` when unset or empty (use the
/// stored key), an error when shorter than [`tokens::MIN_SECRET_BYTES`] characters.
fn configured_secret(value: Option<&str>) -> Result<Option<Vec<u8>>, AuthError> {
    match value {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() < tokens::MIN_SECRET_BYTES => Err(AuthError::Config(format!(
            "{JWT_SECRET_VAR} must be at least {} characters long; set a longer random value, or unset it to \
             have a key generated and kept in the metadata store",
            tokens::MIN_SECRET_BYTES
        ))),
        Some(s) => Ok(Some(s.as_bytes().to_vec())),
    }
}

fn env_number(var: &str) -> Result<Option<u64>, AuthError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| AuthError::Config(format!("{var} must be a whole non-negative number"))),
        _ => Ok(None),
    }
}

/// The sign-in rate limiter: counted in `redis`, shared by the replicas, when Redis is configured
/// (see [`crate::shared_redis`]); otherwise in this process.
fn sign_in_limiter(per_min: u32, redis: Option<Arc<crate::shared_redis::Redis>>) -> Arc<dyn RateLimiter> {
    let window = Duration::from_secs(60);
    match redis {
        Some(redis) => {
            tracing::info!(
                "sign-in rate limit: {per_min}/min per client, counted in Redis at {} \
                 (in-process while Redis is down)",
                redis.config()
            );
            Arc::new(RedisWindow::new(redis, per_min, window))
        }
        None => {
            tracing::info!(
                "sign-in rate limit: {per_min}/min per client, counted in this process \
                 (set QUARRY_REDIS_URL to share it between replicas)"
            );
            Arc::new(FixedWindow::new(per_min, window))
        }
    }
}

/// Where a sign-in request came from, kept with its refresh token and used for rate limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// The client's address (see [`rate_limit::client_ip`]).
    pub ip: Option<std::net::IpAddr>,
    /// Its User-Agent, at most 255 characters.
    pub user_agent: Option<String>,
}

/// Tokens handed to a client that signed in or refreshed.
#[derive(Debug, Clone)]
pub struct Session {
    /// The access token (JWT).
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
    /// The refresh token (also sent as the cookie).
    pub refresh_token: String,
    /// The user it belongs to.
    pub user: UserRecord,
}

/// Sign-in: token signing keys and lifetimes, rate limits.
pub struct Auth {
    config: AuthConfig,
    keys: AccessKeys,
    limiter: Arc<dyn RateLimiter>,
    /// A hash of a random password, verified against when the email is unknown so that a
    /// failed sign-in takes as long whether or not the account exists.
    dummy_hash: OnceCell<String>,
}

impl Auth {
    /// Settings from the environment; the signing key from `QUARRY_JWT_SECRET` or `store`; the
    /// rate limits counted in `redis` when the server has it. Also deletes expired tokens from
    /// the store.
    pub async fn load(store: &Store, redis: Option<Arc<crate::shared_redis::Redis>>) -> Result<Auth, AuthError> {
        let config = AuthConfig::from_env()?;
        let configured = std::env::var(JWT_SECRET_VAR).ok();
        let secret = match configured_secret(configured.as_deref())? {
            Some(secret) => secret,
            None => {
                let mut candidate = [0u8; 64];
                OsRng.fill_bytes(&mut candidate);
                let stored = store.auth_key(STORED_KEY_NAME, &hex::encode(candidate)).await?;
                let key = hex::decode(stored.trim())
                    .map_err(|_| AuthError::Config("the signing key in the metadata store is not hex".into()))?;
                if key.len() < tokens::MIN_SECRET_BYTES {
                    return Err(AuthError::Config("the signing key in the metadata store is too short".into()));
                }
                key
            }
        };
        if let Err(e) = store.purge_expired_tokens().await {
            tracing::warn!("could not delete expired tokens: {e}");
        }
        let limiter = sign_in_limiter(config.rate_limit_per_min, redis);
        Ok(Auth::new(config, &secret, limiter))
    }

    /// Sign-in with explicit settings, key and rate limiter.
    pub fn new(config: AuthConfig, secret: &[u8], limiter: Arc<dyn RateLimiter>) -> Auth {
        Auth { config, keys: AccessKeys::new(secret), limiter, dummy_hash: OnceCell::new() }
    }

    /// The settings in force.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Count one sign-in request on `route` from `client`; `Err` when over the limit.
    pub async fn rate_limit(&self, route: &str, client: &Client) -> Result<(), Limited> {
        let who = client.ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        self.limiter.hit(&format!("{route}|{who}")).await
    }

    /// The user a bearer access token belongs to, and the token's id; 401 otherwise.
    pub async fn authenticate(&self, store: &Store, token: &str) -> Result<(User, String), ApiError> {
        let claims = self.keys.verify(token).map_err(|e| match e {
            TokenError::Expired => ApiError::unauthorized("Token expired"),
            _ => ApiError::unauthorized("Not authenticated"),
        })?;
        if store.is_access_token_revoked(&claims.jti).await? {
            return Err(ApiError::unauthorized("Token revoked"));
        }
        let user = store.user_by_id(&claims.sub).await?.ok_or_else(|| ApiError::unauthorized("Not authenticated"))?;
        if !user.is_active {
            return Err(ApiError::unauthorized("Account is disabled"));
        }
        if user.tokens_invalidated_at.is_some_and(|t| claims.issued_at_micros() < t.timestamp_micros()) {
            return Err(ApiError::unauthorized("Token revoked"));
        }
        Ok((user.user(), claims.jti))
    }

    /// The user whose email and password these are. 401 "Invalid email or password" for an
    /// unknown email or a wrong password (equally slow either way), 403 for a disabled account.
    pub async fn check_credentials(
        &self,
        store: &Store,
        email: &str,
        password: String,
    ) -> Result<UserRecord, ApiError> {
        let invalid = || ApiError::unauthorized("Invalid email or password");
        let user = match Email::parse(email) {
            Ok(email) => store.user_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        let Some(user) = user else {
            let dummy = self.dummy_hash().await?;
            let _ = password::verify(password, dummy).await.map_err(ApiError::internal)?;
            return Err(invalid());
        };
        if !password::verify(password, user.password_hash.clone()).await.map_err(ApiError::internal)? {
            return Err(invalid());
        }
        if !user.is_active {
            return Err(ApiError::forbidden("Account is disabled"));
        }
        Ok(user)
    }

    async fn dummy_hash(&self) -> Result<String, ApiError> {
        let hash = self
            .dummy_hash
            .get_or_try_init(|| async {
                let mut random = [0u8; 32];
                OsRng.fill_bytes(&mut random);
                password::hash(hex::encode(random)).await
            })
            .await
            .map_err(ApiError::internal)?;
        Ok(hash.clone())
    }

    /// Start a new session (a new refresh-token family) for `user`.
    pub async fn start_session(&self, store: &Store, user: UserRecord, client: &Client) -> Result<Session, ApiError> {
        let (refresh_token, row) = self.new_refresh_token(client);
        store.insert_refresh_token(&user.id, &Uuid::new_v4().to_string(), &row).await?;
        self.session(user, refresh_token)
    }

    /// Exchange a refresh token for new tokens. 401 for an unknown, expired or disabled-account
    /// token; a token presented again after it was rotated or revoked revokes its whole family
    /// (401 "Refresh token reuse detected; sign in again").
    pub async fn refresh_session(&self, store: &Store, presented: &str, client: &Client) -> Result<Session, ApiError> {
        if presented.is_empty() || presented.chars().count() > refresh::MAX_TOKEN_CHARS {
            return Err(ApiError::unauthorized("Invalid refresh token"));
        }
        let presented_hash = refresh::digest(presented);
        let (refresh_token, row) = self.new_refresh_token(client);
        match store.rotate_refresh_token(&presented_hash, &row).await? {
            Rotation::Rotated { user_id, .. } => {
                let user = store.user_by_id(&user_id).await?;
                match user {
                    Some(user) if user.is_active => self.session(user, refresh_token),
                    // Disabling revokes the tokens, so this is a race with the disabling: undo.
                    _ => {
                        store.revoke_refresh_family(&row.token_hash, &user_id).await?;
                        Err(ApiError::unauthorized("Account is disabled"))
                    }
                }
            }
            Rotation::Reused => Err(ApiError::unauthorized("Refresh token reuse detected; sign in again")),
            Rotation::Expired => Err(ApiError::unauthorized("Refresh token expired")),
            Rotation::Unknown => Err(ApiError::unauthorized("Invalid refresh token")),
        }
    }

    /// Sign out one session: refuse the access token `jti` from now on and, if given, revoke the
    /// family of `refresh_token` (only if it is `user_id`'s).
    pub async fn sign_out(
        &self,
        store: &Store,
        user_id: &str,
        jti: &str,
        refresh_token: Option<&str>,
    ) -> Result<(), ApiError> {
        self.deny(store, jti).await?;
        if let Some(token) = refresh_token.filter(|t| t.chars().count() <= refresh::MAX_TOKEN_CHARS) {
            store.revoke_refresh_family(&refresh::digest(token), user_id).await?;
        }
        Ok(())
    }

    /// Sign out everywhere: revoke every refresh token of `user_id` and refuse every access
    /// token issued so far (`jti`, the current one, explicitly too).
    pub async fn sign_out_everywhere(&self, store: &Store, user_id: &str, jti: &str) -> Result<(), ApiError> {
        store.sign_out_everywhere(user_id).await?;
        self.deny(store, jti).await
    }

    /// Put the access token `jti` on the deny-list until it can no longer be valid anyway.
    async fn deny(&self, store: &Store, jti: &str) -> Result<(), ApiError> {
        let ttl = i64::try_from(self.config.access_ttl_secs).unwrap_or(i64::MAX / 2);
        let until = Utc::now() + chrono::Duration::seconds(ttl.min(10 * 365 * 86_400));
        store.revoke_access_token(jti, until).await?;
        Ok(())
    }

    /// The `Set-Cookie` value carrying `refresh_token`.
    pub fn refresh_cookie(&self, refresh_token: &str) -> String {
        let max_age = i64::try_from(self.config.refresh_ttl_secs).unwrap_or(i64::MAX / 2);
        refresh::set_cookie(refresh_token, max_age, self.config.secure_cookies)
    }

    /// The `Set-Cookie` value removing the refresh cookie.
    pub fn clear_cookie(&self) -> String {
        refresh::clear_cookie(self.config.secure_cookies)
    }

    fn new_refresh_token(&self, client: &Client) -> (String, NewRefreshToken) {
        let token = refresh::generate();
        let now = Utc::now();
        let ttl = i64::try_from(self.config.refresh_ttl_secs).unwrap_or(i64::MAX / 2);
        let row = NewRefreshToken {
            id: Uuid::new_v4().to_string(),
            token_hash: refresh::digest(&token),
            created_at: now,
            expires_at: now + chrono::Duration::seconds(ttl.min(10 * 365 * 86_400)),
            device_hint: client.user_agent.as_ref().map(|ua| ua.chars().take(255).collect()),
            ip: client.ip.map(|ip| ip.to_string()),
        };
        (token, row)
    }

    fn session(&self, user: UserRecord, refresh_token: String) -> Result<Session, ApiError> {
        let access = self.keys.issue(&user.id, Utc::now(), self.config.access_ttl_secs).map_err(ApiError::internal)?;
        Ok(Session { access_token: access.token, expires_in: self.config.access_ttl_secs, refresh_token, user })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_jwt_secret_is_refused_with_a_clear_message() {
        let err = configured_secret(Some("too-short")).unwrap_err().to_string();
        assert!(err.contains("QUARRY_JWT_SECRET must be at least 32 characters"), "{err}");
        assert!(!err.contains("too-short"), "the secret is not repeated: {err}");
        let long = "x".repeat(32);
        assert_eq!(configured_secret(Some(&long)).unwrap(), Some(long.into_bytes()));
        assert_eq!(configured_secret(None).unwrap(), None);
        assert_eq!(configured_secret(Some("")).unwrap(), None);
    }

    #[tokio::test]
    async fn the_generated_key_is_created_once_and_shared() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let first = store.auth_key(STORED_KEY_NAME, "aa").await.unwrap();
        let second = store.auth_key(STORED_KEY_NAME, "bb").await.unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("aa", "aa"));
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::Admin, Role::Member] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("owner"), None);
    }
}
