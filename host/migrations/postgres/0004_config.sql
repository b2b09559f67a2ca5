-- Configuration an admin edits through the API, PostgreSQL flavour: semantic models, LLM
-- provider configs and live settings. Keep in step with ../sqlite/0004_config.sql.

-- One semantic model per connection (display names, value mappings, metrics, ...), the shape
-- of host/src/semantic. Connections are deleted softly, so no foreign key cascades into here.
CREATE TABLE semantic_models (
    connection_id TEXT        NOT NULL PRIMARY KEY,  -- connections.id
    model         JSONB       NOT NULL,              -- crate::semantic::SemanticModel
    updated_at    TIMESTAMPTZ NOT NULL
);

-- Saved LLM provider configurations; several per type may exist.
CREATE TABLE provider_configs (
    id             TEXT             NOT NULL PRIMARY KEY,  -- UUID v4
    provider_type  TEXT             NOT NULL,              -- a preset (openai, groq, anthropic, ...) or a provider plugin
    display_name   TEXT             NOT NULL,
    base_url       TEXT,                                   -- NULL: the preset's
    model          TEXT,                                   -- NULL: the preset's default
    temperature    DOUBLE PRECISION,                       -- 0..2
    max_tokens     BIGINT,                                 -- >= 1
    api_key_sealed BYTEA,                                  -- the API key sealed by crate::secrets::Cipher; NULL: none
    is_active      BOOLEAN          NOT NULL DEFAULT FALSE,
    models_cache   JSONB            NOT NULL DEFAULT '[]', -- model ids last listed
    created_at     TIMESTAMPTZ      NOT NULL,
    updated_at     TIMESTAMPTZ      NOT NULL
);

-- "The newest (active) config of a type" and listing in creation order.
CREATE INDEX provider_configs_type ON provider_configs (provider_type, created_at DESC);
CREATE INDEX provider_configs_newest ON provider_configs (created_at DESC, id);

-- Settings applied live, one row per setting that differs from its default.
CREATE TABLE app_settings (
    key        TEXT        NOT NULL PRIMARY KEY,  -- e.g. default_row_limit
    value      JSONB       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
