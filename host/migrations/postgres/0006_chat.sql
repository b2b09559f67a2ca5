-- Product-API chat: who a session belongs to and which connection it asks, and per turn the
-- explanation, the (masked) result, cache use, approval and feedback. PostgreSQL flavour; keep in
-- step with ../sqlite/0006_chat.sql. Sessions from the SQL Query Engine and OpenAI routes leave them NULL.

ALTER TABLE sessions ADD COLUMN user_id TEXT;
ALTER TABLE sessions ADD COLUMN connection_id TEXT;
ALTER TABLE sessions ADD COLUMN provider TEXT;

CREATE INDEX sessions_by_owner ON sessions (user_id, updated_at DESC, id);

ALTER TABLE messages ADD COLUMN user_message_id TEXT;
ALTER TABLE messages ADD COLUMN explanation TEXT;
ALTER TABLE messages ADD COLUMN results JSONB;
ALTER TABLE messages ADD COLUMN cache_hit BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE messages ADD COLUMN feedback TEXT;
ALTER TABLE messages ADD COLUMN approved_by TEXT;
ALTER TABLE messages ADD COLUMN approved_at TIMESTAMPTZ;
