-- Chat sessions and their turns (one row per question), PostgreSQL flavour.
-- Keep in step with ../sqlite/0001_sessions.sql: same tables, columns and meaning.
--
-- Tables are created unqualified, in the first schema of the connection's `search_path`.

CREATE TABLE sessions (
    id         TEXT        NOT NULL PRIMARY KEY,  -- caller-chosen chat id, 1..=256 characters
    title      TEXT        NOT NULL,              -- the first question, at most 80 characters
    turn_count BIGINT      NOT NULL DEFAULT 0,    -- how many turns the session holds
    last_seq   BIGINT      NOT NULL DEFAULT 0,    -- the `seq` of the newest turn; the next one gets +1
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL               -- time of the newest turn
);

-- Session listing, most recently active first.
CREATE INDEX sessions_recent ON sessions (updated_at DESC, id);

CREATE TABLE messages (
    id             TEXT        NOT NULL PRIMARY KEY,  -- UUID v4
    session_id     TEXT        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq            BIGINT      NOT NULL,              -- 1, 2, 3, ... within the session
    created_at     TIMESTAMPTZ NOT NULL,
    question       TEXT        NOT NULL,
    description    TEXT,                              -- the model's one-line plan
    sql            TEXT,
    dialect        TEXT,
    status         TEXT        NOT NULL,              -- executed | query_only | error | ...
    result_summary TEXT,                              -- short text fed to later prompts
    row_count      BIGINT,
    error          TEXT,
    input_tokens   BIGINT      NOT NULL DEFAULT 0,
    output_tokens  BIGINT      NOT NULL DEFAULT 0,
    timings_ms     JSONB       NOT NULL DEFAULT '{}', -- object: stage -> milliseconds
    attempts       JSONB       NOT NULL DEFAULT '[]', -- array: every generation / repair attempt
    UNIQUE (session_id, seq)                          -- also the index for a session's turns in order
);
