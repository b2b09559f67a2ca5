-- Question embeddings for the answer cache and the verified examples, SQLite flavour.
-- Keep in step with ../postgres/0008_question_embeddings.sql: same columns and meaning.
--
-- When the provider offers embeddings, the question's vector is stored with the row: each f32 as
-- 4 little-endian bytes, and the name of the model that computed it (vectors are compared only
-- with vectors of the same model). Both NULL for rows written without an embedder: those are
-- compared by their words.

ALTER TABLE answer_cache ADD COLUMN question_embedding BLOB;
ALTER TABLE answer_cache ADD COLUMN embedding_model TEXT;

ALTER TABLE examples ADD COLUMN question_embedding BLOB;
ALTER TABLE examples ADD COLUMN embedding_model TEXT;
