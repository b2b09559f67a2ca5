-- Saved database connections, PostgreSQL flavour. Keep in step with ../sqlite/0003_connections.sql.
--
-- The whole connection config (host, port, user, password, ... or a URL or a file path) is one
-- JSON document sealed with AES-256-GCM (see host/src/secrets): no credential is stored in the
-- clear. A delete is soft (is_active = false) and wipes the sealed config and the schema cache.

CREATE TABLE connections (
    id                  TEXT        NOT NULL PRIMARY KEY,  -- UUID v4
    name                TEXT        NOT NULL,              -- unique among active connections
    source_type         TEXT        NOT NULL CHECK (source_type IN ('postgresql', 'mysql', 'sqlite')),
    config_sealed       BYTEA       NOT NULL,              -- sealed config JSON; empty once deleted
    privacy             JSONB       NOT NULL DEFAULT '{}', -- exclusions, sensitive patterns, row filter
    execution_mode      TEXT        NOT NULL DEFAULT 'auto_execute'
                        CHECK (execution_mode IN ('auto_execute', 'review_first', 'generate_only')),
    is_active           BOOLEAN     NOT NULL DEFAULT TRUE,
    schema_json         JSONB,                             -- the last introspection (crate::schema::Schema)
    schema_fingerprint  TEXT,                              -- its structure hash
    schema_refreshed_at TIMESTAMPTZ,                       -- when it was read
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

-- Names are unique among active connections; a deleted connection frees its name.
CREATE UNIQUE INDEX connections_active_name ON connections (name) WHERE is_active;

-- Listing, newest first.
CREATE INDEX connections_newest ON connections (created_at DESC, id);
