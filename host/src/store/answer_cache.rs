//! Metadata store: the answer cache's rows (table `answer_cache`) and per-connection miss
//! counters (`answer_cache_stats`), migration 0005; each row's question vector, when one was
//! computed, migration 0008. The matching logic lives in [`crate::answer_cache`]; here every
//! change is one atomic statement or one transaction.
//!
//! Freshness is passed in as cut-offs (`used_since`: the sliding TTL on
//! `COALESCE(last_hit_at, created_at)`; `created_since`: the age limit for relative-time
//! questions), so a stale row is never returned or bumped even when two replicas race.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::codec::StoreRow;
use super::{Store, StoreError, with_pool};
use crate::embedding::{self, Embedding};

/// One cached question → SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheEntryRecord {
    /// UUID v4.
    pub id: String,
    /// The connection the SQL was written for.
    pub connection_id: String,
    /// The cache key (see [`crate::answer_cache::text::Question::normalized`]).
    pub question_normalized: String,
    /// The question as first asked.
    pub question_raw: String,
    /// The schema the SQL was written against.
    pub schema_fingerprint: String,
    /// The SQL.
    pub sql: String,
    /// The dialect plugin it was validated with.
    pub dialect: String,
    /// How often it was served.
    pub hit_count: i64,
    /// When it was stored (or last overwritten).
    pub created_at: DateTime<Utc>,
    /// When it was last served.
    pub last_hit_at: Option<DateTime<Utc>>,
}

/// What [`Store::cache_insert`] writes.
#[derive(Debug, Clone, Copy)]
pub struct NewCacheEntry<'a> {
    /// The connection.
    pub connection_id: &'a str,
    /// The cache key.
    pub question_normalized: &'a str,
    /// The question as asked.
    pub question_raw: &'a str,
    /// The schema fingerprint.
    pub schema_fingerprint: &'a str,
    /// The SQL.
    pub sql: &'a str,
    /// The dialect plugin name.
    pub dialect: &'a str,
    /// The question's vector, when the provider computed one.
    pub embedding: Option<&'a Embedding>,
}

/// An entry the similar-question step (or an eviction) compares, with its question's vector.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheCandidate {
    /// The entry.
    pub entry: CacheEntryRecord,
    /// Its question's vector; `None` when it was stored without one.
    pub embedding: Option<Embedding>,
}

/// Totals over every connection, for the stats route.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheTotals {
    /// Rows in the cache.
    pub total_entries: i64,
    /// Sum of the rows' hit counts.
    pub hit_count: i64,
    /// Sum of the connections' miss counters.
    pub miss_count: i64,
    /// The most-served questions: `(question_raw, hit_count)`, most hits first.
    pub top: Vec<(String, i64)>,
}

macro_rules! entry_columns {
    () => {
        "id, connection_id, question_normalized, question_raw, schema_fingerprint, sql, dialect, hit_count, \
         created_at, last_hit_at"
    };
}

/// Serve the exact entry if it is fresh: bump and read it in one statement.
const HIT_EXACT: &str = concat!(
    "UPDATE answer_cache SET hit_count = hit_count + 1, last_hit_at = $6 \
     WHERE connection_id = $1 AND question_normalized = $2 AND schema_fingerprint = $3 \
     AND COALESCE(last_hit_at, created_at) >= $4 AND created_at >= $5 RETURNING ",
    entry_columns!()
);

/// Serve one entry by id if it is (still) fresh.
const HIT_BY_ID: &str = concat!(
    "UPDATE answer_cache SET hit_count = hit_count + 1, last_hit_at = $3 \
     WHERE id = $1 AND COALESCE(last_hit_at, created_at) >= $2 RETURNING ",
    entry_columns!()
);

/// The exact entry when it is too old to serve: removed, so a fresh answer can take its key.
const DROP_STALE_EXACT: &str = "DELETE FROM answer_cache \
     WHERE connection_id = $1 AND question_normalized = $2 AND schema_fingerprint = $3 \
     AND (COALESCE(last_hit_at, created_at) < $4 OR created_at < $5)";

const CANDIDATES: &str = concat!(
    "SELECT ",
    entry_columns!(),
    ", question_embedding, embedding_model FROM answer_cache WHERE connection_id = $1 AND schema_fingerprint = $2 \
     AND COALESCE(last_hit_at, created_at) >= $3 \
     ORDER BY COALESCE(last_hit_at, created_at) DESC, id LIMIT $4"
);

const ALL_OF_CONNECTION: &str = concat!(
    "SELECT ",
    entry_columns!(),
    ", question_embedding, embedding_model FROM answer_cache WHERE connection_id = $1 ORDER BY created_at, id LIMIT $2"
);

const RECORD_MISS: &str = "INSERT INTO answer_cache_stats (connection_id, miss_count) VALUES ($1, 1) \
     ON CONFLICT (connection_id) DO UPDATE SET miss_count = answer_cache_stats.miss_count + 1";

/// Takes the connection's stats row lock (creating the row) without changing it: serialises
/// inserts and LRU eviction per connection across replicas.
const LOCK_CONNECTION: &str = "INSERT INTO answer_cache_stats (connection_id, miss_count) VALUES ($1, 0) \
     ON CONFLICT (connection_id) DO UPDATE SET miss_count = answer_cache_stats.miss_count";

const UNDO_HIT: &str = "UPDATE answer_cache SET hit_count = hit_count - 1 WHERE id = $1 AND hit_count > 0";

const INSERT_KEEP: &str = "INSERT INTO answer_cache (id, connection_id, question_normalized, question_raw, \
     schema_fingerprint, sql, dialect, hit_count, created_at, last_hit_at, question_embedding, embedding_model) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, NULL, $9, $10) \
     ON CONFLICT (connection_id, question_normalized, schema_fingerprint) DO NOTHING";

const INSERT_OVERWRITE: &str = "INSERT INTO answer_cache (id, connection_id, question_normalized, question_raw, \
     schema_fingerprint, sql, dialect, hit_count, created_at, last_hit_at, question_embedding, embedding_model) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, NULL, $9, $10) \
     ON CONFLICT (connection_id, question_normalized, schema_fingerprint) DO UPDATE SET \
     question_raw = excluded.question_raw, sql = excluded.sql, dialect = excluded.dialect, \
     question_embedding = excluded.question_embedding, embedding_model = excluded.embedding_model, \
     created_at = excluded.created_at, last_hit_at = NULL";

/// Least recently used beyond the capacity: everything but the `$2` most recently used rows.
const EVICT_LRU: &str = "DELETE FROM answer_cache WHERE connection_id = $1 AND id NOT IN (\
     SELECT id FROM answer_cache WHERE connection_id = $1 \
     ORDER BY COALESCE(last_hit_at, created_at) DESC, created_at DESC, id DESC LIMIT $2)";

const DELETE_QUESTION: &str = "DELETE FROM answer_cache WHERE connection_id = $1 AND question_normalized = $2";
const DELETE_ONE_OF: &str = "DELETE FROM answer_cache WHERE connection_id = $1 AND id = $2";
const DELETE_CONNECTION: &str = "DELETE FROM answer_cache WHERE connection_id = $1";
const DELETE_CONNECTION_STATS: &str = "DELETE FROM answer_cache_stats WHERE connection_id = $1";
const DELETE_ENTRY: &str = "DELETE FROM answer_cache WHERE id = $1";
const PRUNE: &str = "DELETE FROM answer_cache WHERE COALESCE(last_hit_at, created_at) < $1";

const TOTALS: &str =
    "SELECT COUNT(*) AS entries, CAST(COALESCE(SUM(hit_count), 0) AS BIGINT) AS hits FROM answer_cache";
const MISSES: &str = "SELECT CAST(COALESCE(SUM(miss_count), 0) AS BIGINT) FROM answer_cache_stats";
const TOP: &str = "SELECT question_raw, hit_count FROM answer_cache WHERE hit_count > 0 \
     ORDER BY hit_count DESC, COALESCE(last_hit_at, created_at) DESC, id LIMIT $1";

const COUNT_PAGE: &str =
    "SELECT COUNT(*) FROM answer_cache WHERE connection_id = $1 AND LOWER(question_raw) LIKE $2 ESCAPE '\\'";
const PAGE: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM answer_cache WHERE connection_id = $1 AND LOWER(question_raw) LIKE $2 ESCAPE '\\' \
     ORDER BY hit_count DESC, COALESCE(last_hit_at, created_at) DESC, id LIMIT $3 OFFSET $4"
);

impl Store {
    /// Serve the entry with this exact key if it was used at or after `used_since` and created
    /// at or after `created_since`: `hit_count + 1` and `last_hit_at = now` in the same
    /// statement that reads it. `None` when there is no such fresh entry.
    pub async fn cache_hit_exact(
        &self,
        connection_id: &str,
        question_normalized: &str,
        schema_fingerprint: &str,
        used_since: DateTime<Utc>,
        created_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<CacheEntryRecord>, StoreError> {
        Ok(with_pool!(self, |pool, codec| {
            let row = sqlx::query(HIT_EXACT)
                .bind(connection_id)
                .bind(question_normalized)
                .bind(schema_fingerprint)
                .bind(codec::time(used_since))
                .bind(codec::time(created_since))
                .bind(codec::time(now))
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(entry_from_row).transpose()?
        }))
    }

    /// Delete the entry with this exact key when it is stale by the same cut-offs as
    /// [`Store::cache_hit_exact`]; how many rows went (0 or 1).
    pub async fn cache_drop_stale(
        &self,
        connection_id: &str,
        question_normalized: &str,
        schema_fingerprint: &str,
        used_since: DateTime<Utc>,
        created_since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool, codec| {
            sqlx::query(DROP_STALE_EXACT)
                .bind(connection_id)
                .bind(question_normalized)
                .bind(schema_fingerprint)
                .bind(codec::time(used_since))
                .bind(codec::time(created_since))
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Serve the entry `id` if it was used at or after `used_since` (bump and read in one
    /// statement); `None` if it is gone or stale.
    pub async fn cache_hit_id(
        &self,
        id: &str,
        used_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<CacheEntryRecord>, StoreError> {
        Ok(with_pool!(self, |pool, codec| {
            let row = sqlx::query(HIT_BY_ID)
                .bind(id)
                .bind(codec::time(used_since))
                .bind(codec::time(now))
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(entry_from_row).transpose()?
        }))
    }

    /// The connection's entries for `schema_fingerprint` used at or after `used_since`, most
    /// recently used first, at most `limit`, with their vectors.
    pub async fn cache_candidates(
        &self,
        connection_id: &str,
        schema_fingerprint: &str,
        used_since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CacheCandidate>, StoreError> {
        Ok(with_pool!(self, |pool, codec| {
            let rows = sqlx::query(CANDIDATES)
                .bind(connection_id)
                .bind(schema_fingerprint)
                .bind(codec::time(used_since))
                .bind(sql_count(limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(candidate_from_row).collect::<Result<Vec<_>, _>>()?
        }))
    }

    /// Every entry of the connection (any fingerprint, fresh or not), oldest first, at most
    /// `limit`, with their vectors.
    pub async fn cache_entries_of(&self, connection_id: &str, limit: usize) -> Result<Vec<CacheCandidate>, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            let rows =
                sqlx::query(ALL_OF_CONNECTION).bind(connection_id).bind(sql_count(limit)).fetch_all(pool).await?;
            rows.iter().map(candidate_from_row).collect::<Result<Vec<_>, _>>()?
        }))
    }

    /// Count one miss for the connection (one atomic upsert).
    pub async fn cache_record_miss(&self, connection_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool, _codec| {
            sqlx::query(RECORD_MISS).bind(connection_id).execute(pool).await?;
        });
        Ok(())
    }

    /// Turn a hit the caller refused back into a miss: the entry's `hit_count − 1` (not below
    /// 0) and the connection's miss counter + 1, in one transaction.
    pub async fn cache_undo_hit(&self, connection_id: &str, entry_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            sqlx::query(UNDO_HIT).bind(entry_id).execute(&mut *tx).await?;
            sqlx::query(RECORD_MISS).bind(connection_id).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Store an entry and evict the connection's least recently used entries beyond `capacity`,
    /// in one transaction. An entry with the same key is kept unless `overwrite` (then its SQL,
    /// dialect, question, vector and `created_at` are replaced and `last_hit_at` cleared). Returns
    /// whether `entry` was written, and how many entries were evicted.
    pub async fn cache_insert(
        &self,
        entry: NewCacheEntry<'_>,
        overwrite: bool,
        capacity: usize,
        now: DateTime<Utc>,
    ) -> Result<(bool, u64), StoreError> {
        for (field, value) in [
            ("connection_id", entry.connection_id),
            ("question", entry.question_raw),
            ("schema_fingerprint", entry.schema_fingerprint),
            ("sql", entry.sql),
            ("dialect", entry.dialect),
            ("embedding_model", entry.embedding.map_or("", |e| e.model.as_str())),
        ] {
            check_text(field, value)?;
        }
        let id = Uuid::new_v4().to_string();
        let insert = if overwrite { INSERT_OVERWRITE } else { INSERT_KEEP };
        let (vector, model) = stored_embedding(entry.embedding);
        Ok(with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            sqlx::query(LOCK_CONNECTION).bind(entry.connection_id).execute(&mut *tx).await?;
            let written = sqlx::query(insert)
                .bind(&id)
                .bind(entry.connection_id)
                .bind(entry.question_normalized)
                .bind(entry.question_raw)
                .bind(entry.schema_fingerprint)
                .bind(entry.sql)
                .bind(entry.dialect)
                .bind(codec::time(now))
                .bind(&vector)
                .bind(model)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let evicted = sqlx::query(EVICT_LRU)
                .bind(entry.connection_id)
                .bind(sql_count(capacity.max(1)))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            (written > 0, evicted)
        }))
    }

    /// Delete the connection's entries whose key is `question_normalized` (any fingerprint) and
    /// those with an id in `ids`, in one transaction; how many went.
    pub async fn cache_delete_matching(
        &self,
        connection_id: &str,
        question_normalized: &str,
        ids: &[String],
    ) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            let mut deleted = sqlx::query(DELETE_QUESTION)
                .bind(connection_id)
                .bind(question_normalized)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            for id in ids {
                deleted +=
                    sqlx::query(DELETE_ONE_OF).bind(connection_id).bind(id).execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            deleted
        }))
    }

    /// Delete every entry of the connection (its miss counter stays); how many went.
    pub async fn cache_clear_connection(&self, connection_id: &str) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            sqlx::query(DELETE_CONNECTION).bind(connection_id).execute(pool).await?.rows_affected()
        }))
    }

    /// Delete every entry of the connection and its miss counter (the connection is gone), in
    /// one transaction; how many entries went.
    pub async fn cache_forget_connection(&self, connection_id: &str) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            let deleted = sqlx::query(DELETE_CONNECTION).bind(connection_id).execute(&mut *tx).await?.rows_affected();
            sqlx::query(DELETE_CONNECTION_STATS).bind(connection_id).execute(&mut *tx).await?;
            tx.commit().await?;
            deleted
        }))
    }

    /// Delete one entry; whether it existed.
    pub async fn cache_delete_entry(&self, id: &str) -> Result<bool, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            sqlx::query(DELETE_ENTRY).bind(id).execute(pool).await?.rows_affected() > 0
        }))
    }

    /// Delete every entry last used before `used_before`; how many went.
    pub async fn cache_prune(&self, used_before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool, codec| {
            sqlx::query(PRUNE).bind(codec::time(used_before)).execute(pool).await?.rows_affected()
        }))
    }

    /// Totals over all connections and the `top` most-served questions.
    pub async fn cache_totals(&self, top: usize) -> Result<CacheTotals, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            let row = sqlx::query(TOTALS).fetch_one(pool).await?;
            let total_entries = row.int("entries")?;
            let hit_count = row.int("hits")?;
            let miss_count: i64 = sqlx::query_scalar(MISSES).fetch_one(pool).await?;
            let rows = sqlx::query(TOP).bind(sql_count(top)).fetch_all(pool).await?;
            let top = rows
                .iter()
                .map(|r| Ok((r.text("question_raw")?, r.int("hit_count")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            CacheTotals { total_entries, hit_count, miss_count, top }
        }))
    }

    /// One page of the connection's entries, most hits first, optionally only those whose
    /// question contains `search` (case-insensitive), with the number of matching entries.
    pub async fn cache_page(
        &self,
        connection_id: &str,
        search: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<CacheEntryRecord>, i64), StoreError> {
        let pattern = like_pattern(search.unwrap_or(""));
        check_text("search", &pattern)?;
        Ok(with_pool!(self, |pool, _codec| {
            let total: i64 = sqlx::query_scalar(COUNT_PAGE).bind(connection_id).bind(&pattern).fetch_one(pool).await?;
            let rows = sqlx::query(PAGE)
                .bind(connection_id)
                .bind(&pattern)
                .bind(sql_count(limit))
                .bind(sql_count(offset))
                .fetch_all(pool)
                .await?;
            (rows.iter().map(entry_from_row).collect::<Result<Vec<_>, _>>()?, total)
        }))
    }
}

/// `%text%` for `LIKE … ESCAPE '\'`, lowercased, with `%`, `_` and `\` taken literally.
pub(super) fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn entry_from_row(row: &impl StoreRow) -> Result<CacheEntryRecord, sqlx::Error> {
    Ok(CacheEntryRecord {
        id: row.text("id")?,
        connection_id: row.text("connection_id")?,
        question_normalized: row.text("question_normalized")?,
        question_raw: row.text("question_raw")?,
        schema_fingerprint: row.text("schema_fingerprint")?,
        sql: row.text("sql")?,
        dialect: row.text("dialect")?,
        hit_count: row.int("hit_count")?,
        created_at: row.time("created_at")?,
        last_hit_at: row.opt_time("last_hit_at")?,
    })
}

fn candidate_from_row(row: &impl StoreRow) -> Result<CacheCandidate, sqlx::Error> {
    let embedding = Embedding::from_stored(row.opt_text("embedding_model")?, row.opt_bytes("question_embedding")?);
    Ok(CacheCandidate { entry: entry_from_row(row)?, embedding })
}

/// A vector's two columns: the bytes and the model name (both `NULL` without a vector).
pub(super) fn stored_embedding(embedding: Option<&Embedding>) -> (Option<Vec<u8>>, Option<&str>) {
    match embedding {
        Some(e) => (Some(embedding::to_bytes(&e.vector)), Some(e.model.as_str())),
        None => (None, None),
    }
}

/// A count as the `BIGINT` both backends take (saturating).
pub(super) fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// PostgreSQL refuses NUL in text; refuse it on both backends alike.
pub(super) fn check_text(field: &str, value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::InvalidInput(format!("{field} contains a NUL character")));
    }
    Ok(())
}

/// The connection's generation (0 without a row).
const GENERATION: &str = "SELECT generation FROM answer_cache_generations WHERE connection_id = $1";
/// One more generation; the new number.
const BUMP_GENERATION: &str = "INSERT INTO answer_cache_generations (connection_id, generation) VALUES ($1, 1) \
     ON CONFLICT (connection_id) DO UPDATE SET generation = answer_cache_generations.generation + 1 \
     RETURNING generation";
const ENTRY_CONNECTION: &str = "SELECT connection_id FROM answer_cache WHERE id = $1";
const ENTRY_BY_KEY: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM answer_cache WHERE connection_id = $1 AND question_normalized = $2 AND schema_fingerprint = $3"
);
/// Hits served from another tier, counted later: never moves `last_hit_at` back.
const COUNT_HITS: &str = "UPDATE answer_cache SET hit_count = hit_count + $2, \
     last_hit_at = CASE WHEN last_hit_at IS NULL OR last_hit_at < $3 THEN $3 ELSE last_hit_at END WHERE id = $1";

/// Generations (table `answer_cache_generations`, migration 0009), for copies of entries kept
/// outside the store (the Redis tier of [`crate::answer_cache`]): a copy made under an older
/// generation than the connection's current one is never served.
impl Store {
    /// The connection's current cache generation (0 when it never had one).
    pub async fn cache_generation(&self, connection_id: &str) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            sqlx::query_scalar::<_, i64>(GENERATION).bind(connection_id).fetch_optional(pool).await?.unwrap_or(0)
        }))
    }

    /// Start a new generation for the connection (after deleting some of its entries): every
    /// copy made under an earlier one is stale. The new generation.
    pub async fn cache_bump_generation(&self, connection_id: &str) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            sqlx::query_scalar::<_, i64>(BUMP_GENERATION).bind(connection_id).fetch_one(pool).await?
        }))
    }

    /// The connection of entry `id`, if it exists.
    pub async fn cache_entry_connection(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            sqlx::query_scalar::<_, String>(ENTRY_CONNECTION).bind(id).fetch_optional(pool).await?
        }))
    }

    /// The entry with this exact key, fresh or not, without counting a hit.
    pub async fn cache_entry_by_key(
        &self,
        connection_id: &str,
        question_normalized: &str,
        schema_fingerprint: &str,
    ) -> Result<Option<CacheEntryRecord>, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            let row = sqlx::query(ENTRY_BY_KEY)
                .bind(connection_id)
                .bind(question_normalized)
                .bind(schema_fingerprint)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(entry_from_row).transpose()?
        }))
    }

    /// Count `hits` more hits of entry `id`, the last at `last_at`; whether the entry exists.
    pub async fn cache_count_hits(&self, id: &str, hits: i64, last_at: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(with_pool!(self, |pool, codec| {
            sqlx::query(COUNT_HITS).bind(id).bind(hits).bind(codec::time(last_at)).execute(pool).await?.rows_affected()
                > 0
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern(""), "%%");
        assert_eq!(like_pattern("50%_Off\\"), "%50\\%\\_off\\\\%");
    }
}
