//! The semantic model of a connection: display names, descriptions, value mappings, default
//! filters, join hints, relationships, metrics, segments and notes, and how it is rendered into
//! the prompt.
//!
//! - [`model`]: the shape ([`SemanticModel`]), read leniently (unknown keys dropped, bad enum
//!   names coerced);
//! - [`update`]: a partial update ([`SemanticModelUpdate`]) and how it merges;
//! - [`render`](mod@render): the prompt's "Business context" section ([`render()`]);
//! - [`load`], [`save_update`], [`delete`]: the model in the metadata store.

pub mod model;
pub mod render;
pub mod update;

pub use model::SemanticModel;
pub use render::render;
pub use update::{SemanticModelUpdate, UpdateError};

use crate::store::{Store, StoreError};

/// Why the semantic model could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum SemanticError {
    /// The update was refused; nothing changed.
    #[error(transparent)]
    Invalid(#[from] UpdateError),
    /// The stored document no longer fits the model's shape.
    #[error("the stored semantic model cannot be read: {0}")]
    Corrupt(String),
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The semantic model of `connection_id`, if one is stored.
pub async fn load(store: &Store, connection_id: &str) -> Result<Option<SemanticModel>, SemanticError> {
    match store.semantic_model(connection_id).await? {
        Some(stored) => Ok(Some(parse(stored.model)?)),
        None => Ok(None),
    }
}

/// Merge `update` into the stored model of `connection_id` (an empty one when none is stored)
/// and store the result, in one transaction; the merged model.
///
/// [`SemanticError::Invalid`] (nothing written) for a bad table or column key or a NUL character.
pub async fn save_update(
    store: &Store,
    connection_id: &str,
    update: SemanticModelUpdate,
) -> Result<SemanticModel, SemanticError> {
    update.validate()?;
    let stored = store
        .update_semantic_model(connection_id, |current| {
            let model = match current {
                Some(doc) => parse(doc)?,
                None => SemanticModel::default(),
            };
            serde_json::to_value(update.apply(model)).map_err(|e| SemanticError::Corrupt(e.to_string()))
        })
        .await??;
    parse(stored.model)
}

/// Remove the semantic model of `connection_id`; `false` if there was none.
pub async fn delete(store: &Store, connection_id: &str) -> Result<bool, SemanticError> {
    Ok(store.delete_semantic_model(connection_id).await?)
}

fn parse(doc: serde_json::Value) -> Result<SemanticModel, SemanticError> {
    serde_json::from_value(doc).map_err(|e| SemanticError::Corrupt(e.to_string()))
}
