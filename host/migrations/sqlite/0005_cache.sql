-- The answer cache (question -> SQL per connection), its per-connection counters, and the
-- verified examples (question -> SQL pairs used as few-shot), SQLite flavour.
-- Keep in step with ../postgres/0005_cache.sql: same tables, columns and meaning.
--
-- Timestamps are fixed-width RFC 3339 TEXT (see 0001_sessions.sql). No foreign key to the
-- connections table: whoever deletes a connection clears its cache and examples explicitly.

CREATE TABLE answer_cache (
    id                  TEXT    NOT NULL PRIMARY KEY,  -- UUID v4
    connection_id       TEXT    NOT NULL,
    question_normalized TEXT    NOT NULL,              -- content tokens (see answer_cache/text.rs)
    question_raw        TEXT    NOT NULL,              -- the question as first asked
    schema_fingerprint  TEXT    NOT NULL,              -- the schema the SQL was written against
    sql                 TEXT    NOT NULL,
    dialect             TEXT    NOT NULL,              -- dialect plugin name: postgres, mysql, sqlite, ...
    hit_count           INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT    NOT NULL,
    last_hit_at         TEXT,                          -- NULL until the first hit
    UNIQUE (connection_id, question_normalized, schema_fingerprint)
) STRICT;

-- Candidates of a connection for the similar-question step, and browsing by hits.
CREATE INDEX answer_cache_by_connection ON answer_cache (connection_id, schema_fingerprint);
CREATE INDEX answer_cache_by_hits ON answer_cache (connection_id, hit_count DESC);

-- One row per connection that has missed: the miss counter. Its row is also what store_entry
-- upserts first, which serialises inserts (and LRU eviction) per connection.
CREATE TABLE answer_cache_stats (
    connection_id TEXT    NOT NULL PRIMARY KEY,
    miss_count    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE examples (
    id                  TEXT NOT NULL PRIMARY KEY,  -- UUID v4
    connection_id       TEXT NOT NULL,
    question            TEXT NOT NULL,
    question_normalized TEXT NOT NULL,
    sql                 TEXT NOT NULL,
    sql_hash            TEXT NOT NULL,              -- SHA-256 hex of sql: the dedupe key (sql may be long)
    dialect             TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (connection_id, question_normalized, sql_hash)
) STRICT;

CREATE INDEX examples_by_connection ON examples (connection_id, created_at, id);
