-- The embedding model of a saved provider config, PostgreSQL flavour; keep in step with
-- ../sqlite/0007_provider_embedding_model.sql.

ALTER TABLE provider_configs ADD COLUMN embedding_model TEXT;  -- NULL: the type's default (openai: text-embedding-3-small); 'off': none
