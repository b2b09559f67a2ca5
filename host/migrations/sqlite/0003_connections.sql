-- Saved database connections, SQLite flavour. Keep in step with ../postgres/0003_connections.sql.
--
-- The whole connection config (host, port, user, password, ... or a URL or a file path) is one
-- JSON document sealed with AES-256-GCM (see host/src/secrets): no credential is stored in the
-- clear. A delete is soft (is_active = 0) and wipes the sealed config and the schema cache.
-- Timestamps are fixed-width RFC 3339 TEXT (as in 0001); JSON columns hold serialized JSON text.

CREATE TABLE connections (
    id                  TEXT    NOT NULL PRIMARY KEY,  -- UUID v4
    name                TEXT    NOT NULL,              -- unique among active connections
    source_type         TEXT    NOT NULL CHECK (source_type IN ('postgresql', 'mysql', 'sqlite')),
    config_sealed       BLOB    NOT NULL,              -- sealed config JSON; empty once deleted
    privacy             TEXT    NOT NULL DEFAULT '{}', -- JSON: exclusions, sensitive patterns, row filter
    execution_mode      TEXT    NOT NULL DEFAULT 'auto_execute'
                        CHECK (execution_mode IN ('auto_execute', 'review_first', 'generate_only')),
    is_active           INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    schema_json         TEXT,                          -- JSON: the last introspection (crate::schema::Schema)
    schema_fingerprint  TEXT,                          -- its structure hash
    schema_refreshed_at TEXT,                          -- when it was read
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL
) STRICT;

-- Names are unique among active connections; a deleted connection frees its name.
CREATE UNIQUE INDEX connections_active_name ON connections (name) WHERE is_active = 1;

-- Listing, newest first.
CREATE INDEX connections_newest ON connections (created_at DESC, id);
