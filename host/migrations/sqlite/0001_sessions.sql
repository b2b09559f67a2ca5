-- Chat sessions and their turns (one row per question), SQLite flavour.
-- Keep in step with ../postgres/0001_sessions.sql: same tables, columns and meaning.
--
-- Timestamps are TEXT in one fixed-width RFC 3339 form, `2025-01-31T09:15:02.123456Z` (UTC,
-- always six fractional digits), written by the host, so that comparing the text orders by time.
-- JSON columns hold serialized JSON text. STRICT makes SQLite refuse a value of the wrong type.

CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY,  -- caller-chosen chat id, 1..=256 characters
    title      TEXT    NOT NULL,              -- the first question, at most 80 characters
    turn_count INTEGER NOT NULL DEFAULT 0,    -- how many turns the session holds
    last_seq   INTEGER NOT NULL DEFAULT 0,    -- the `seq` of the newest turn; the next one gets +1
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL               -- time of the newest turn
) STRICT;

-- Session listing, most recently active first.
CREATE INDEX sessions_recent ON sessions (updated_at DESC, id);

CREATE TABLE messages (
    id             TEXT    NOT NULL PRIMARY KEY,  -- UUID v4
    session_id     TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,              -- 1, 2, 3, ... within the session
    created_at     TEXT    NOT NULL,
    question       TEXT    NOT NULL,
    description    TEXT,                          -- the model's one-line plan
    sql            TEXT,
    dialect        TEXT,
    status         TEXT    NOT NULL,              -- executed | query_only | error | ...
    result_summary TEXT,                          -- short text fed to later prompts
    row_count      INTEGER,
    error          TEXT,
    input_tokens   INTEGER NOT NULL DEFAULT 0,
    output_tokens  INTEGER NOT NULL DEFAULT 0,
    timings_ms     TEXT    NOT NULL DEFAULT '{}', -- JSON object: stage -> milliseconds
    attempts       TEXT    NOT NULL DEFAULT '[]', -- JSON array: every generation / repair attempt
    UNIQUE (session_id, seq)                      -- also the index for a session's turns in order
) STRICT;
