-- Product-API chat: who a session belongs to and which connection it asks, and per turn the
-- explanation, the (masked) result, cache use, approval and feedback. SQLite flavour; keep in step
-- with ../postgres/0006_chat.sql. Sessions from the SQL Query Engine and OpenAI routes leave them NULL.

ALTER TABLE sessions ADD COLUMN user_id TEXT;        -- owner (users.id); NULL outside the product API
ALTER TABLE sessions ADD COLUMN connection_id TEXT;  -- the saved connection asked
ALTER TABLE sessions ADD COLUMN provider TEXT;       -- the provider config (or type) asked for

CREATE INDEX sessions_by_owner ON sessions (user_id, updated_at DESC, id);

ALTER TABLE messages ADD COLUMN user_message_id TEXT;         -- id of the question as a message
ALTER TABLE messages ADD COLUMN explanation TEXT;
ALTER TABLE messages ADD COLUMN results TEXT;                 -- JSON: columns, column_types, rows, ... (masked)
ALTER TABLE messages ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN feedback TEXT;                -- thumbs_up | thumbs_down | NULL
ALTER TABLE messages ADD COLUMN approved_by TEXT;             -- users.id of who ran a held query
ALTER TABLE messages ADD COLUMN approved_at TEXT;
