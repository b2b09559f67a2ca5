//! What every provider that offers embeddings needs: its settings seen as a `provider-config` (so
//! the completion code's header and option helpers serve both), the embedding model, and putting
//! vectors an API returns with indices back in the order of the texts.

use crate::{EmbeddingConfig, ProviderConfig, ProviderError};

impl From<&EmbeddingConfig> for ProviderConfig {
    /// The same settings, naming the embedding model.
    fn from(cfg: &EmbeddingConfig) -> Self {
        ProviderConfig { model: cfg.model.clone(), has_api_key: cfg.has_api_key, options: cfg.options.clone() }
    }
}

/// The configured embedding model, or an error saying it is missing.
pub fn model(cfg: &EmbeddingConfig) -> Result<&str, ProviderError> {
    let m = cfg.model.trim();
    if m.is_empty() {
        return Err(ProviderError::ModelNotFound("no embedding model is configured (set LLM_EMBEDDING_MODEL)".into()));
    }
    Ok(m)
}

/// Vectors an API returned as `(index, vector)` in any order, put in the order of the `count`
/// texts. Every index from 0 to `count - 1` must appear exactly once; anything else means the
/// answer does not fit the request.
pub fn in_order(items: Vec<(usize, Vec<f32>)>, count: usize) -> Result<Vec<Vec<f32>>, ProviderError> {
    let malformed =
        |what: String| ProviderError::MalformedResponse(format!("the embeddings do not fit the texts: {what}"));
    if items.len() != count {
        return Err(malformed(format!("{} vectors for {count} texts", items.len())));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; count];
    for (index, vector) in items {
        match slots.get_mut(index) {
            Some(slot @ None) => *slot = Some(vector),
            Some(Some(_)) => return Err(malformed(format!("index {index} appears twice"))),
            None => return Err(malformed(format!("index {index} is out of range for {count} texts"))),
        }
    }
    // Equal counts and no duplicates leave no slot empty; say so rather than panic if that breaks.
    slots.into_iter().enumerate().map(|(i, v)| v.ok_or_else(|| malformed(format!("index {i} is missing")))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_put_in_the_order_of_their_indices() {
        let got = in_order(vec![(2, vec![2.0]), (0, vec![0.0]), (1, vec![1.0])], 3).expect("in order");
        assert_eq!(got, vec![vec![0.0], vec![1.0], vec![2.0]]);
    }

    #[test]
    fn missing_duplicate_or_stray_indices_are_malformed() {
        for (items, count) in [
            (vec![(0, vec![0.0])], 2),
            (vec![(0, vec![0.0]), (0, vec![1.0])], 2),
            (vec![(0, vec![0.0]), (5, vec![1.0])], 2),
        ] {
            assert!(matches!(in_order(items, count), Err(ProviderError::MalformedResponse(_))));
        }
    }

    #[test]
    fn a_blank_model_is_refused_naming_the_setting() {
        let cfg = EmbeddingConfig { model: " ".into(), has_api_key: false, options: vec![] };
        assert!(matches!(model(&cfg), Err(ProviderError::ModelNotFound(m)) if m.contains("LLM_EMBEDDING_MODEL")));
    }
}
