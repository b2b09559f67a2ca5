-- The answer cache's generation per connection, SQLite flavour.
-- Keep in step with ../postgres/0009_answer_cache_generations.sql: same table and meaning.
--
-- Every deletion of a connection's cache entries (clear, schema refresh, privacy or semantic
-- change, a thumbs-down eviction, deleting one entry, an overwrite) adds one to its generation,
-- after the deletion. Copies of entries kept elsewhere (Redis) carry the generation they were
-- made under and are served only while it is current, so a deletion makes them unservable even
-- when that other place could not be told. A connection without a row is at generation 0. Rows
-- are kept when a connection is deleted: a generation never goes back.

CREATE TABLE answer_cache_generations (
    connection_id TEXT    NOT NULL PRIMARY KEY,
    generation    INTEGER NOT NULL
) STRICT;
