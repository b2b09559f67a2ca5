//! Metadata store: users, refresh tokens, revoked access tokens and the token signing key
//! (tables `users`, `refresh_tokens`, `revoked_access_tokens`, `auth_keys`, migration 0002).
//!
//! Writes that must agree with each other are serialised by the database: on PostgreSQL by a
//! transaction-scoped advisory lock ([`USERS_LOCK`]) that every change to who exists or who is an
//! admin takes, so first-boot registration and "never zero active admins" hold across replicas;
//! on SQLite by the write lock a `BEGIN IMMEDIATE` transaction takes. Refresh-token rotation is a
//! conditional update whose row count says whether this request won the token.
//!
//! Emails are stored lower-cased (the caller normalises them), which makes the `UNIQUE` index
//! case-insensitive on both backends.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::codec::{self, StoreRow};
use super::{Store, StoreError, with_pool};
use crate::auth::{Role, User};

/// Insert a refresh token row (`$executor` is a pool or `&mut *tx`).
macro_rules! insert_refresh {
    ($executor:expr, $codec:ident, $user_id:expr, $family_id:expr, $token:expr) => {{
        let token: &NewRefreshToken = $token;
        sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at, device_hint, ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&token.id)
        .bind($user_id)
        .bind($family_id)
        .bind(&token.token_hash)
        .bind($codec::time(token.created_at))
        .bind($codec::time(token.expires_at))
        .bind(&token.device_hint)
        .bind(&token.ip)
        .execute($executor)
        .await?;
    }};
}

/// Revoke every live refresh token of a user inside transaction `$tx`, except the family `$keep`.
macro_rules! revoke_refresh_of_user {
    ($tx:ident, $codec:ident, $user_id:expr, $keep:expr, $now:expr) => {{
        let keep: Option<&str> = $keep;
        match keep {
            Some(family) => {
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $1 \
                     WHERE user_id = $2 AND revoked_at IS NULL AND family_id <> $3",
                )
                .bind($codec::time($now))
                .bind($user_id)
                .bind(family)
                .execute(&mut *$tx)
                .await?;
            }
            None => {
                sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                    .bind($codec::time($now))
                    .bind($user_id)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    }};
}

/// The PostgreSQL advisory lock key taken by every write that changes which users exist or who
/// is an active admin ("QUARRYUS" in ASCII).
pub const USERS_LOCK: i64 = 0x5155_4152_5259_5553;

/// A user row, password hash included: for sign-in code only, never for a response.
#[derive(Clone, PartialEq)]
pub struct UserRecord {
    /// UUID v4.
    pub id: String,
    /// Lower-cased email, unique.
    pub email: String,
    /// Name shown in the UI.
    pub display_name: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// What they may do.
    pub role: Role,
    /// False once an admin disabled the account.
    pub is_active: bool,
    /// Access tokens issued before this instant are refused.
    pub tokens_invalidated_at: Option<DateTime<Utc>>,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for UserRecord {
    /// Everything but the password hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field("is_active", &self.is_active)
            .field("tokens_invalidated_at", &self.tokens_invalidated_at)
            .finish_non_exhaustive()
    }
}

impl UserRecord {
    /// The user as the rest of the API sees them.
    pub fn user(&self) -> User {
        User {
            id: self.id.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
        }
    }

    fn is_active_admin(&self) -> bool {
        self.is_active && self.role == Role::Admin
    }
}

/// What [`Store::register_first_user`] and [`Store::create_user`] need.
#[derive(Clone)]
pub struct NewUser {
    /// Lower-cased, validated email.
    pub email: String,
    /// Name shown in the UI.
    pub display_name: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// What they may do.
    pub role: Role,
}

/// A change to a user; `None` fields stay as they are.
#[derive(Clone, Default)]
pub struct UserChanges {
    /// `Some(None)` clears the display name.
    pub display_name: Option<Option<String>>,
    /// A new role.
    pub role: Option<Role>,
    /// Enable or disable the account.
    pub is_active: Option<bool>,
    /// A new argon2id PHC string.
    pub password_hash: Option<String>,
    /// Sign the user out everywhere even if nothing above requires it. Changing the role,
    /// disabling the account or setting a password always does.
    pub sign_out: bool,
    /// When signing out: the refresh-token family to keep (the device making the change).
    pub keep_family: Option<String>,
}

/// What [`Store::update_user`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum UserUpdate {
    /// The user as they are now.
    Updated(UserRecord),
    /// No user has that id.
    NotFound,
    /// Refused: the change would leave no active admin.
    LastAdmin,
}

/// What [`Store::delete_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserDeletion {
    /// Gone, with their refresh tokens and chat sessions.
    Deleted,
    /// No user has that id.
    NotFound,
    /// Refused: they are the last active admin.
    LastAdmin,
}

/// A refresh token to store (only its hash; the token itself is never stored).
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// UUID v4.
    pub id: String,
    /// SHA-256 hex of the token.
    pub token_hash: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// The client's User-Agent, at most 255 characters.
    pub device_hint: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
}

/// What presenting a refresh token to [`Store::rotate_refresh_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid: it is now marked rotated and its successor is stored.
    Rotated {
        /// Whose token it was.
        user_id: String,
        /// The family the successor joined.
        family_id: String,
    },
    /// The token had already been rotated or revoked: its whole family is revoked now.
    Reused,
    /// The token has expired (nothing changed).
    Expired,
    /// No such token.
    Unknown,
}

/// The user columns, in the order [`user_from_row`] reads them.
macro_rules! user_columns {
    () => {
        "id, email, display_name, password_hash, role, is_active, tokens_invalidated_at, created_at, updated_at"
    };
}

const USER_BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
const USER_BY_EMAIL: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1");
const PAGE_OF_USERS: &str =
    concat!("SELECT ", user_columns!(), " FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2");

fn user_from_row(row: &impl StoreRow) -> Result<UserRecord, sqlx::Error> {
    let role_text = row.text("role")?;
    let role = Role::parse(&role_text).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: "role".into(),
        source: format!("unknown role {role_text:?}").into(),
    })?;
    Ok(UserRecord {
        id: row.text("id")?,
        email: row.text("email")?,
        display_name: row.opt_text("display_name")?,
        password_hash: row.text("password_hash")?,
        role,
        is_active: row.boolean("is_active")?,
        tokens_invalidated_at: row.opt_time("tokens_invalidated_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// Whether a failed write broke a unique index.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Active admins other than `$2` (`$1` is `true`): a change may not leave none.
const OTHER_ACTIVE_ADMINS: &str = "SELECT COUNT(*) FROM users WHERE role = 'admin' AND is_active = $1 AND id <> $2";

impl Store {
    /// How many users exist (active or not).
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let n: i64 = with_pool!(self, |pool, _codec| {
            sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?
        });
        Ok(n)
    }

    /// Create `user` only if no user exists yet: `None` when one does. Safe when many requests,
    /// on many replicas, race: exactly one of them creates the first user.
    pub async fn register_first_user(&self, user: NewUser) -> Result<Option<UserRecord>, StoreError> {
        self.insert_user(user, true).await
    }

    /// Create `user`; `None` when the email is taken.
    pub async fn create_user(&self, user: NewUser) -> Result<Option<UserRecord>, StoreError> {
        self.insert_user(user, false).await
    }

    async fn insert_user(&self, user: NewUser, only_if_first: bool) -> Result<Option<UserRecord>, StoreError> {
        let id = Uuid::new_v4().to_string();
        let now = codec::now();
        let postgres = self.backend() == "postgres";
        let inserted = with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            if postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(USERS_LOCK).execute(&mut *tx).await?;
            }
            if only_if_first {
                let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut *tx).await?;
                if existing > 0 {
                    return Ok(None);
                }
            }
            let inserted = sqlx::query(
                "INSERT INTO users (id, email, display_name, password_hash, role, is_active, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&id)
            .bind(&user.email)
            .bind(&user.display_name)
            .bind(&user.password_hash)
            .bind(user.role.as_str())
            .bind(true)
            .bind(codec::time(now))
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {
                    tx.commit().await?;
                    true
                }
                Err(e) if is_unique_violation(&e) => false,
                Err(e) => return Err(e.into()),
            }
        });
        if !inserted {
            return Ok(None);
        }
        Ok(Some(UserRecord {
            id,
            email: user.email,
            display_name: user.display_name,
            password_hash: user.password_hash,
            role: user.role,
            is_active: true,
            tokens_invalidated_at: None,
            created_at: now,
            updated_at: now,
        }))
    }

    /// The user with `id`, if any.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let user = with_pool!(self, |pool, _codec| {
            let row = sqlx::query(USER_BY_ID).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(user_from_row).transpose()?
        });
        Ok(user)
    }

    /// The user with `email` (already lower-cased), if any.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let user = with_pool!(self, |pool, _codec| {
            let row = sqlx::query(USER_BY_EMAIL).bind(email).fetch_optional(pool).await?;
            row.as_ref().map(user_from_row).transpose()?
        });
        Ok(user)
    }

    /// One page of users, oldest first, and how many there are in all.
    pub async fn list_users(&self, limit: i64, offset: i64) -> Result<(Vec<UserRecord>, i64), StoreError> {
        let page = with_pool!(self, |pool, _codec| {
            let rows = sqlx::query(PAGE_OF_USERS).bind(limit).bind(offset).fetch_all(pool).await?;
            let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?;
            let users = rows.iter().map(user_from_row).collect::<Result<Vec<_>, _>>()?;
            (users, total)
        });
        Ok(page)
    }

    /// Apply `changes` to the user `id` in one transaction. Changing the role, disabling the
    /// account, setting a password or `sign_out` revoke their refresh tokens (but
    /// `keep_family`) and refuse every access token issued so far. Refused with
    /// [`UserUpdate::LastAdmin`] if no active admin would remain.
    pub async fn update_user(&self, id: &str, changes: UserChanges) -> Result<UserUpdate, StoreError> {
        let now = codec::now();
        let postgres = self.backend() == "postgres";
        let outcome = with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            if postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(USERS_LOCK).execute(&mut *tx).await?;
            }
            let Some(row) = sqlx::query(USER_BY_ID).bind(id).fetch_optional(&mut *tx).await? else {
                return Ok(UserUpdate::NotFound);
            };
            let before = user_from_row(&row)?;
            let mut after = before.clone();
            if let Some(name) = changes.display_name.clone() {
                after.display_name = name;
            }
            if let Some(role) = changes.role {
                after.role = role;
            }
            if let Some(active) = changes.is_active {
                after.is_active = active;
            }
            if let Some(hash) = changes.password_hash.clone() {
                after.password_hash = hash;
            }
            if before.is_active_admin() && !after.is_active_admin() {
                let others: i64 =
                    sqlx::query_scalar(OTHER_ACTIVE_ADMINS).bind(true).bind(id).fetch_one(&mut *tx).await?;
                if others == 0 {
                    return Ok(UserUpdate::LastAdmin);
                }
            }
            let sign_out = changes.sign_out
                || after.role != before.role
                || (before.is_active && !after.is_active)
                || changes.password_hash.is_some();
            if sign_out {
                after.tokens_invalidated_at = Some(now);
                revoke_refresh_of_user!(tx, codec, id, changes.keep_family.as_deref(), now);
            }
            after.updated_at = now;
            sqlx::query(
                "UPDATE users SET display_name = $1, role = $2, is_active = $3, password_hash = $4, \
                 tokens_invalidated_at = $5, updated_at = $6 WHERE id = $7",
            )
            .bind(&after.display_name)
            .bind(after.role.as_str())
            .bind(after.is_active)
            .bind(&after.password_hash)
            .bind(after.tokens_invalidated_at.map(codec::time))
            .bind(codec::time(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            UserUpdate::Updated(after)
        });
        Ok(outcome)
    }

    /// Delete the user `id` with their refresh tokens and their chat sessions (questions, answers
    /// and results they saw), unless they are the last active admin. All or nothing.
    pub async fn delete_user(&self, id: &str) -> Result<UserDeletion, StoreError> {
        let postgres = self.backend() == "postgres";
        let outcome = with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            if postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(USERS_LOCK).execute(&mut *tx).await?;
            }
            let Some(row) = sqlx::query(USER_BY_ID).bind(id).fetch_optional(&mut *tx).await? else {
                return Ok(UserDeletion::NotFound);
            };
            if user_from_row(&row)?.is_active_admin() {
                let others: i64 =
                    sqlx::query_scalar(OTHER_ACTIVE_ADMINS).bind(true).bind(id).fetch_one(&mut *tx).await?;
                if others == 0 {
                    return Ok(UserDeletion::LastAdmin);
                }
            }
            // Explicitly, not only by the foreign key's cascade: SQLite enforces it only when
            // the connection enabled foreign keys.
            sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM messages WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            UserDeletion::Deleted
        });
        Ok(outcome)
    }

    /// Store a refresh token that starts a new family (a sign-in) for `user_id`.
    pub async fn insert_refresh_token(
        &self,
        user_id: &str,
        family_id: &str,
        token: &NewRefreshToken,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool, codec| {
            insert_refresh!(pool, codec, user_id, family_id, token);
        });
        Ok(())
    }

    /// Exchange the refresh token whose hash is `token_hash` for `next`, in one transaction.
    ///
    /// A token that was already rotated or revoked is a reuse (a stolen copy, or the thief's
    /// copy after the owner's): its whole family is revoked. Two requests racing with the same
    /// token cannot both win: the rotation is a conditional update, and the loser is a reuse.
    pub async fn rotate_refresh_token(&self, token_hash: &str, next: &NewRefreshToken) -> Result<Rotation, StoreError> {
        let now = codec::now();
        let outcome = with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            let row = sqlx::query(
                "SELECT id, user_id, family_id, expires_at, rotated_at, revoked_at FROM refresh_tokens \
                 WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(Rotation::Unknown);
            };
            let id = row.text("id")?;
            let user_id = row.text("user_id")?;
            let family_id = row.text("family_id")?;
            let spent = row.opt_time("rotated_at")?.is_some() || row.opt_time("revoked_at")?.is_some();
            let won = !spent && {
                if row.time("expires_at")? <= now {
                    return Ok(Rotation::Expired);
                }
                let done = sqlx::query(
                    "UPDATE refresh_tokens SET rotated_at = $1 \
                     WHERE id = $2 AND rotated_at IS NULL AND revoked_at IS NULL",
                )
                .bind(codec::time(now))
                .bind(&id)
                .execute(&mut *tx)
                .await?;
                done.rows_affected() == 1
            };
            if won {
                insert_refresh!(&mut *tx, codec, &user_id, &family_id, next);
                tx.commit().await?;
                Rotation::Rotated { user_id, family_id }
            } else {
                sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                    .bind(codec::time(now))
                    .bind(&family_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Rotation::Reused
            }
        });
        Ok(outcome)
    }

    /// Revoke the family of the refresh token whose hash is `token_hash`, if it belongs to
    /// `user_id`; whether there was such a token.
    pub async fn revoke_refresh_family(&self, token_hash: &str, user_id: &str) -> Result<bool, StoreError> {
        let now = codec::now();
        let found = with_pool!(self, |pool, codec| {
            let done = sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family_id IN \
                 (SELECT family_id FROM refresh_tokens WHERE token_hash = $2 AND user_id = $3)",
            )
            .bind(codec::time(now))
            .bind(token_hash)
            .bind(user_id)
            .execute(pool)
            .await?;
            done.rows_affected() > 0
        });
        Ok(found)
    }

    /// The refresh-token family of the token whose hash is `token_hash`, if it belongs to `user_id`.
    pub async fn refresh_family_of(&self, token_hash: &str, user_id: &str) -> Result<Option<String>, StoreError> {
        let family = with_pool!(self, |pool, _codec| {
            sqlx::query_scalar::<_, String>(
                "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2",
            )
            .bind(token_hash)
            .bind(user_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(family)
    }

    /// Sign `user_id` out everywhere: revoke all their refresh tokens and refuse every access
    /// token issued before now. False when there is no such user.
    pub async fn sign_out_everywhere(&self, user_id: &str) -> Result<bool, StoreError> {
        let now = codec::now();
        let found = with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            let done = sqlx::query("UPDATE users SET tokens_invalidated_at = $1, updated_at = $1 WHERE id = $2")
                .bind(codec::time(now))
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            revoke_refresh_of_user!(tx, codec, user_id, None::<&str>, now);
            tx.commit().await?;
            done.rows_affected() > 0
        });
        Ok(found)
    }

    /// Refuse the access token `jti` until it expires at `expires_at`; also forget revoked
    /// tokens that have expired since.
    pub async fn revoke_access_token(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        let now = codec::now();
        with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < $1")
                .bind(codec::time(now))
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti)
            .bind(codec::time(expires_at))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Whether the access token `jti` was signed out.
    pub async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let n: i64 = with_pool!(self, |pool, _codec| {
            sqlx::query_scalar("SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_one(pool)
                .await?
        });
        Ok(n > 0)
    }

    /// The signing key stored under `name`, storing `candidate` first if there is none. Every
    /// caller (every replica) gets the same key, whoever stored it.
    pub async fn auth_key(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        let now = codec::now();
        let key = with_pool!(self, |pool, codec| {
            sqlx::query(
                "INSERT INTO auth_keys (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(candidate)
            .bind(codec::time(now))
            .execute(pool)
            .await?;
            sqlx::query_scalar::<_, String>("SELECT secret FROM auth_keys WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await?
        });
        Ok(key)
    }

    /// Delete refresh tokens and revoked access tokens that have expired.
    pub async fn purge_expired_tokens(&self) -> Result<(), StoreError> {
        let now = codec::now();
        with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
                .bind(codec::time(now))
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < $1")
                .bind(codec::time(now))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}

/// One signed-in device: a refresh-token family that can still refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    /// The family's id (shared by every token rotated from one sign-in).
    pub id: String,
    /// The User-Agent of its latest token, at most 255 characters.
    pub device_hint: Option<String>,
    /// The address its latest token was issued to.
    pub ip: Option<String>,
    /// When the device signed in (the family's first token).
    pub created_at: DateTime<Utc>,
    /// When its latest token stops working.
    pub expires_at: DateTime<Utc>,
}

/// A family is live while its latest token (never rotated) is neither revoked nor expired;
/// `$1` is the user, `$2` now. Every live family has exactly one such token.
macro_rules! live_heads {
    () => {
        "FROM refresh_tokens t WHERE t.user_id = $1 AND t.rotated_at IS NULL AND t.revoked_at IS NULL \
         AND t.expires_at > $2"
    };
}

impl Store {
    /// A page of `user_id`'s live refresh-token families, newest sign-in first, and how many
    /// there are.
    pub async fn list_refresh_families(
        &self,
        user_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<RefreshFamily>, i64), StoreError> {
        let now = codec::now();
        let page = with_pool!(self, |pool, codec| {
            let rows = sqlx::query(concat!(
                "SELECT t.family_id, t.device_hint, t.ip, t.expires_at, \
                 (SELECT MIN(f.created_at) FROM refresh_tokens f WHERE f.family_id = t.family_id) AS started_at ",
                live_heads!(),
                " ORDER BY started_at DESC, t.family_id LIMIT $3 OFFSET $4"
            ))
            .bind(user_id)
            .bind(codec::time(now))
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
            let total: i64 = sqlx::query_scalar(concat!("SELECT COUNT(*) ", live_heads!()))
                .bind(user_id)
                .bind(codec::time(now))
                .fetch_one(pool)
                .await?;
            let families = rows
                .iter()
                .map(|row| {
                    Ok(RefreshFamily {
                        id: row.text("family_id")?,
                        device_hint: row.opt_text("device_hint")?,
                        ip: row.opt_text("ip")?,
                        created_at: row.time("started_at")?,
                        expires_at: row.time("expires_at")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            (families, total)
        });
        Ok(page)
    }

    /// Revoke `user_id`'s live refresh-token family `family_id` (that device is signed out at
    /// its next refresh); false when the user has no such live family.
    pub async fn revoke_refresh_family_by_id(&self, user_id: &str, family_id: &str) -> Result<bool, StoreError> {
        let now = codec::now();
        let found = with_pool!(self, |pool, codec| {
            let done = sqlx::query(concat!(
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND family_id IN (SELECT t.family_id ",
                live_heads!(),
                " AND t.family_id = $3)"
            ))
            .bind(user_id)
            .bind(codec::time(now))
            .bind(family_id)
            .execute(pool)
            .await?;
            done.rows_affected() > 0
        });
        Ok(found)
    }
}
