//! Stages `schema` and `link`: the database's schema (introspected once per database and key,
//! then cached for the TTL), cut down to the tables a question needs when it is too large for
//! the prompt, and rendered as the DDL-like text the model reads.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::db::Database;
use crate::schema::{IntrospectOptions, PrivacyPolicy, RenderOptions, Schema, SchemaCache, link_with, render};

use super::engine::EngineError;

/// The schema as the prompt shows it.
#[derive(Debug, Clone)]
pub(crate) struct PromptSchema {
    /// The rendered DDL-like text.
    pub text: String,
    /// Tables in the full schema.
    pub total_tables: usize,
    /// Tables kept by linking.
    pub linked_tables: usize,
    /// Estimated tokens of `text`.
    pub tokens: usize,
    /// Names of the tables kept (for the business context).
    pub table_names: Vec<String>,
}

/// The cached schema of `db` for `schema_key` with `samples` values per column, introspected now
/// if there is none (or it expired).
///
/// The cache key holds the database, the caller's key, the sample count and the privacy policy: a
/// new key (SQL Query Engine's way to force a fresh description), another sample count or changed
/// exclusions read the schema again (an excluded table must not linger in the prompt for a TTL).
pub(crate) async fn load(
    cache: &SchemaCache,
    db: &Database,
    db_key: &str,
    schema_key: Option<&str>,
    samples: u32,
    privacy: &PrivacyPolicy,
) -> Result<Arc<Schema>, EngineError> {
    let policy = serde_json::to_vec(privacy).unwrap_or_default();
    let policy = hex::encode(Sha256::digest(&policy));
    let key = format!("{db_key}\u{1f}{}\u{1f}{samples}\u{1f}{policy}", schema_key.unwrap_or(""));
    let opts = IntrospectOptions {
        sample_values_per_column: samples as usize,
        privacy: privacy.clone(),
        ..IntrospectOptions::default()
    };
    cache.get(&key, db, &opts).await.map_err(|e| match e {
        crate::db::DbError::Connect(_) => EngineError::Database(e),
        other => EngineError::Schema(other),
    })
}

/// The tables of `schema` relevant to `question` within `budget_tokens`, rendered with up to
/// `samples` sample values per column.
pub(crate) fn link_and_render(schema: &Schema, question: &str, budget_tokens: usize, samples: u32) -> PromptSchema {
    let opts = RenderOptions { samples_per_column: samples as usize, ..RenderOptions::default() };
    let linked = link_with(schema, question, budget_tokens, &opts);
    let rendered = render(&linked, &opts);
    PromptSchema {
        text: rendered.text,
        total_tables: schema.tables.len(),
        linked_tables: linked.tables.len(),
        tokens: rendered.tokens,
        table_names: linked.tables.iter().map(|t| t.name.clone()).collect(),
    }
}
