-- The answer cache (question -> SQL per connection), its per-connection counters, and the
-- verified examples (question -> SQL pairs used as few-shot), PostgreSQL flavour.
-- Keep in step with ../sqlite/0005_cache.sql: same tables, columns and meaning.
--
-- No foreign key to the connections table: whoever deletes a connection clears its cache and
-- examples explicitly.

CREATE TABLE answer_cache (
    id                  TEXT        NOT NULL PRIMARY KEY,  -- UUID v4
    connection_id       TEXT        NOT NULL,
    question_normalized TEXT        NOT NULL,              -- content tokens (see answer_cache/text.rs)
    question_raw        TEXT        NOT NULL,              -- the question as first asked
    schema_fingerprint  TEXT        NOT NULL,              -- the schema the SQL was written against
    sql                 TEXT        NOT NULL,
    dialect             TEXT        NOT NULL,              -- dialect plugin name: postgres, mysql, sqlite, ...
    hit_count           BIGINT      NOT NULL DEFAULT 0,
    created_at          TIMESTAMPTZ NOT NULL,
    last_hit_at         TIMESTAMPTZ,                       -- NULL until the first hit
    UNIQUE (connection_id, question_normalized, schema_fingerprint)
);

-- Candidates of a connection for the similar-question step, and browsing by hits.
CREATE INDEX answer_cache_by_connection ON answer_cache (connection_id, schema_fingerprint);
CREATE INDEX answer_cache_by_hits ON answer_cache (connection_id, hit_count DESC);

-- One row per connection that has missed: the miss counter. Its row is also what store_entry
-- upserts first, which serialises inserts (and LRU eviction) per connection.
CREATE TABLE answer_cache_stats (
    connection_id TEXT   NOT NULL PRIMARY KEY,
    miss_count    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE examples (
    id                  TEXT        NOT NULL PRIMARY KEY,  -- UUID v4
    connection_id       TEXT        NOT NULL,
    question            TEXT        NOT NULL,
    question_normalized TEXT        NOT NULL,
    sql                 TEXT        NOT NULL,
    sql_hash            TEXT        NOT NULL,              -- SHA-256 hex of sql: the dedupe key (sql may be long)
    dialect             TEXT        NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (connection_id, question_normalized, sql_hash)
);

CREATE INDEX examples_by_connection ON examples (connection_id, created_at, id);
