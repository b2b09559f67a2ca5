-- Configuration an admin edits through the API, SQLite flavour: semantic models, LLM provider
-- configs and live settings. Keep in step with ../postgres/0004_config.sql.
--
-- Timestamps are fixed-width RFC 3339 TEXT (as in 0001); JSON columns hold serialized JSON text.

-- One semantic model per connection (display names, value mappings, metrics, ...), the shape
-- of host/src/semantic. Connections are deleted softly, so no foreign key cascades into here.
CREATE TABLE semantic_models (
    connection_id TEXT NOT NULL PRIMARY KEY,  -- connections.id
    model         TEXT NOT NULL,              -- JSON: crate::semantic::SemanticModel
    updated_at    TEXT NOT NULL
) STRICT;

-- Saved LLM provider configurations; several per type may exist.
CREATE TABLE provider_configs (
    id             TEXT    NOT NULL PRIMARY KEY,  -- UUID v4
    provider_type  TEXT    NOT NULL,              -- a preset (openai, groq, anthropic, ...) or a provider plugin
    display_name   TEXT    NOT NULL,
    base_url       TEXT,                          -- NULL: the preset's
    model          TEXT,                          -- NULL: the preset's default
    temperature    REAL,                          -- 0..2
    max_tokens     INTEGER,                       -- >= 1
    api_key_sealed BLOB,                          -- the API key sealed by crate::secrets::Cipher; NULL: none
    is_active      INTEGER NOT NULL DEFAULT 0 CHECK (is_active IN (0, 1)),
    models_cache   TEXT    NOT NULL DEFAULT '[]', -- JSON array of model ids last listed
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
) STRICT;

-- "The newest (active) config of a type" and listing in creation order.
CREATE INDEX provider_configs_type ON provider_configs (provider_type, created_at DESC);
CREATE INDEX provider_configs_newest ON provider_configs (created_at DESC, id);

-- Settings applied live, one row per setting that differs from its default.
CREATE TABLE app_settings (
    key        TEXT NOT NULL PRIMARY KEY,  -- e.g. default_row_limit
    value      TEXT NOT NULL,              -- JSON value
    updated_at TEXT NOT NULL
) STRICT;
