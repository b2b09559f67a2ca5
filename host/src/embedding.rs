//! Question embeddings: the provider's vectors for questions, when it offers them, so the answer
//! cache and the example library recognise a question asked in other words ("How many clients
//! do we have?" after "Count the customers").
//!
//! - [`Embedder`]: turns texts into vectors; [`LlmEmbedder`] asks the request's provider;
//! - [`Embedding`]: one text's vector and the model that made it. Vectors are compared only with
//!   vectors of the same model and dimension ([`Embedding::similarity`]): another model's
//!   numbers mean nothing;
//! - [`QuestionVectors`]: one request's view of the embedder. It asks at most once per question
//!   (later callers get the remembered vector), bounds the call by [`EMBED_TIMEOUT`], and after a
//!   failure logs once and answers `None`: callers then compare questions by their words, and a
//!   chat never fails for want of a vector; a provider whose call failed is left alone for
//!   [`FAILURE_COOL_DOWN`] (one warning, not one per question);
//! - [`to_bytes`] / [`from_bytes`]: how the metadata store keeps a vector (little-endian `f32`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::llm::LlmClient;

/// The longest a question waits for its vector before it is compared by its words.
pub const EMBED_TIMEOUT: Duration = Duration::from_secs(2);

/// One text's vector and the model that computed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// The embedding model, as the provider names it.
    pub model: String,
    /// The vector.
    pub vector: Vec<f32>,
}

impl Embedding {
    /// The cosine similarity of the two vectors, clamped to `[0, 1]`; `None` when they cannot be
    /// compared: another model, another dimension, or a zero vector.
    pub fn similarity(&self, other: &Embedding) -> Option<f64> {
        if self.model != other.model || self.vector.len() != other.vector.len() {
            return None;
        }
        let (mut dot, mut left, mut right) = (0.0f64, 0.0f64, 0.0f64);
        for (a, b) in self.vector.iter().zip(&other.vector) {
            let (a, b) = (f64::from(*a), f64::from(*b));
            dot += a * b;
            left += a * a;
            right += b * b;
        }
        let norms = left.sqrt() * right.sqrt();
        (norms > 0.0 && norms.is_finite()).then(|| (dot / norms).clamp(0.0, 1.0))
    }

    /// An embedding read back from the store: both columns set and the bytes a whole, non-empty
    /// number of `f32`s. Anything else is no embedding (the question is compared by its words).
    pub fn from_stored(model: Option<String>, bytes: Option<Vec<u8>>) -> Option<Embedding> {
        let model = model.filter(|m| !m.is_empty())?;
        let vector = from_bytes(&bytes?)?;
        Some(Embedding { model, vector })
    }
}

/// A vector as stored: each `f32` as 4 little-endian bytes.
pub fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The vector [`to_bytes`] wrote; `None` for no bytes or a length that is not a multiple of 4.
pub fn from_bytes(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Why no vectors came back.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The provider offers no embeddings (no embedding model configured, or its plugin has none).
    #[error("the provider offers no embeddings")]
    NotOffered,
    /// The provider failed (its message, with the API key already scrubbed).
    #[error("the embedding request failed: {0}")]
    Provider(String),
    /// No answer within the bound.
    #[error("no embeddings within {0:?}")]
    Timeout(Duration),
    /// An answer that cannot be used: the wrong number of vectors, empty or uneven ones, NaN.
    #[error("unusable embeddings: {0}")]
    Malformed(String),
    /// The provider failed moments ago; it is left alone for [`FAILURE_COOL_DOWN`].
    #[error("the embedding provider failed recently; not asked again yet")]
    CoolingDown,
}

/// A future returned by [`Embedder::embed`].
pub type EmbedFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Embedding>, EmbedError>> + Send + 'a>>;

/// Turns texts into vectors.
pub trait Embedder: Send + Sync {
    /// One embedding per text, in the order of `texts`.
    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a>;
}

/// After a provider's embedding call fails, how long requests skip it (and compare words) before
/// one tries again: a missing embedding model or a bad key must not cost every question a failed
/// round trip and a warning.
pub const FAILURE_COOL_DOWN: Duration = Duration::from_secs(60);

/// Providers whose embedding call failed recently, by [`LlmEmbedder::identity`], with when.
static RECENT_FAILURES: LazyLock<Mutex<HashMap<String, Instant>>> = LazyLock::new(Default::default);

/// An [`Embedder`] asking a provider through its [`LlmClient`].
pub struct LlmEmbedder {
    client: LlmClient,
    identity: String,
}

impl LlmEmbedder {
    /// An embedder over `client`, if its provider offers embeddings (an embedding model is
    /// configured and its plugin computes them).
    pub fn over(client: LlmClient) -> Option<Self> {
        let settings = client.settings();
        let identity = format!(
            "{}|{}|{}",
            settings.plugin,
            settings.base_url,
            settings.embedding_model.as_deref().unwrap_or_default()
        );
        client.offers_embeddings().then_some(Self { client, identity })
    }

    fn cooling_down(&self) -> bool {
        let failures = RECENT_FAILURES.lock().unwrap_or_else(|e| e.into_inner());
        failures.get(&self.identity).is_some_and(|at| at.elapsed() < FAILURE_COOL_DOWN)
    }

    fn remember(&self, failed: bool) {
        let mut failures = RECENT_FAILURES.lock().unwrap_or_else(|e| e.into_inner());
        if failed {
            failures.insert(self.identity.clone(), Instant::now());
        } else {
            failures.remove(&self.identity);
        }
    }
}

impl Embedder for LlmEmbedder {
    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(async move {
            if self.cooling_down() {
                return Err(EmbedError::CoolingDown);
            }
            let outcome = match self.client.embed(texts).await {
                Ok(Some(found)) => checked(&found.model, found.vectors, texts.len()),
                Ok(None) => Err(EmbedError::NotOffered),
                // The client's errors have the API key scrubbed already.
                Err(e) => Err(EmbedError::Provider(e.to_string())),
            };
            self.remember(outcome.is_err());
            outcome
        })
    }
}

/// `vectors` from `model` as embeddings of `expected` texts, if they are usable: one per text,
/// all of one non-zero dimension, every number finite.
pub fn checked(model: &str, vectors: Vec<Vec<f32>>, expected: usize) -> Result<Vec<Embedding>, EmbedError> {
    if model.trim().is_empty() {
        return Err(EmbedError::Malformed("no model name".into()));
    }
    if vectors.len() != expected {
        return Err(EmbedError::Malformed(format!("{} vectors for {expected} texts", vectors.len())));
    }
    let dimension = vectors.first().map_or(0, Vec::len);
    if vectors.iter().any(|v| v.is_empty() || v.len() != dimension) {
        return Err(EmbedError::Malformed("vectors of different or zero dimension".into()));
    }
    if vectors.iter().flatten().any(|x| !x.is_finite()) {
        return Err(EmbedError::Malformed("a number that is not finite".into()));
    }
    Ok(vectors.into_iter().map(|vector| Embedding { model: model.to_string(), vector }).collect())
}

/// One request's vectors: the embedder asked at most once per question text, within
/// [`EMBED_TIMEOUT`]; after a failure, `None` for everything (logged once).
pub struct QuestionVectors {
    embedder: Option<Arc<dyn Embedder>>,
    timeout: Duration,
    /// Vectors by trimmed text; `None` remembers that this text got none. Held across the call,
    /// so a second caller waits for the first one's answer instead of asking again.
    known: tokio::sync::Mutex<HashMap<String, Option<Embedding>>>,
    failed: AtomicBool,
    calls: AtomicUsize,
}

impl std::fmt::Debug for QuestionVectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuestionVectors")
            .field("embedder", &self.embedder.is_some())
            .field("failed", &self.failed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl QuestionVectors {
    /// No embedder: every question is compared by its words.
    pub fn none() -> Self {
        Self::build(None)
    }

    /// Vectors from `embedder`.
    pub fn new(embedder: Arc<dyn Embedder>) -> Self {
        Self::build(Some(embedder))
    }

    fn build(embedder: Option<Arc<dyn Embedder>>) -> Self {
        Self {
            embedder,
            timeout: EMBED_TIMEOUT,
            known: tokio::sync::Mutex::new(HashMap::new()),
            failed: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
        }
    }

    /// The same, waiting at most `timeout` for a vector.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether vectors may come: there is an embedder and it has not failed.
    pub fn available(&self) -> bool {
        self.embedder.is_some() && !self.failed.load(Ordering::Relaxed)
    }

    /// How many times the embedder was asked.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// The vector of `text` (trimmed), asking the embedder only the first time; `None` without
    /// an embedder, for a blank text, or when the embedder failed or was too slow.
    pub async fn of(&self, text: &str) -> Option<Embedding> {
        let text = text.trim();
        let embedder = self.embedder.as_ref()?;
        if text.is_empty() {
            return None;
        }
        let mut known = self.known.lock().await;
        if let Some(found) = known.get(text) {
            return found.clone();
        }
        if self.failed.load(Ordering::Relaxed) {
            return None;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let texts = [text.to_string()];
        let outcome = match tokio::time::timeout(self.timeout, embedder.embed(&texts)).await {
            Ok(Ok(mut vectors)) if vectors.len() == 1 => Ok(vectors.remove(0)),
            Ok(Ok(vectors)) => Err(EmbedError::Malformed(format!("{} vectors for 1 text", vectors.len()))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(EmbedError::Timeout(self.timeout)),
        };
        let found = match outcome {
            Ok(embedding) => Some(embedding),
            Err(e) => {
                // Once per request: the rest of it goes on comparing words without asking again.
                let quiet = matches!(e, EmbedError::NotOffered | EmbedError::CoolingDown);
                if !self.failed.swap(true, Ordering::Relaxed) && !quiet {
                    tracing::warn!("question embeddings unavailable, comparing questions by their words: {e}");
                }
                None
            }
        };
        known.insert(text.to_string(), found.clone());
        found
    }
}

/// A deterministic embedder for unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{EmbedError, EmbedFuture, Embedder, checked};

    /// Words that mean one thing each get one dimension: "clients" and "customers" embed alike,
    /// as do "Berlin" and "Paris" (real models rate those close too).
    const CONCEPTS: &[&[&str]] = &[
        &["customer", "customers", "client", "clients", "buyer", "buyers"],
        &["count", "many", "number"],
        &["revenue", "sales", "income", "turnover", "total"],
        &["berlin", "paris", "london"],
        &["order", "orders"],
        &["product", "products", "item", "items"],
        &["top", "best"],
    ];

    /// Words that carry nothing.
    const IGNORED: &[&str] = &[
        "how", "the", "do", "we", "have", "what", "was", "in", "of", "a", "are", "there", "is", "by", "show", "me",
        "for", "did", "make", "all",
    ];

    /// Dimensions: one per concept, then a few that other words are hashed into.
    const DIMENSIONS: usize = 16;

    /// Concept vectors of model `model`, counting its calls; `fail` makes every call fail.
    pub(crate) struct Concepts {
        pub(crate) model: &'static str,
        pub(crate) fail: bool,
        pub(crate) calls: AtomicUsize,
    }

    impl Concepts {
        /// A working embedder of model `model`.
        pub(crate) fn new(model: &'static str) -> Self {
            Self { model, fail: false, calls: AtomicUsize::new(0) }
        }

        /// An embedder whose every call fails.
        pub(crate) fn failing() -> Self {
            Self { model: "concepts", fail: true, calls: AtomicUsize::new(0) }
        }

        /// Calls so far.
        pub(crate) fn calls(&self) -> usize {
            self.calls.load(Ordering::Relaxed)
        }
    }

    /// The concept vector of `text`.
    pub(crate) fn vector(text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; DIMENSIONS];
        for word in text.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            if IGNORED.contains(&word) {
                continue;
            }
            let slot = CONCEPTS.iter().position(|words| words.contains(&word)).unwrap_or_else(|| {
                let spare = DIMENSIONS - CONCEPTS.len();
                CONCEPTS.len() + word.bytes().map(usize::from).sum::<usize>() % spare
            });
            v[slot] += 1.0;
        }
        v
    }

    impl Embedder for Concepts {
        fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                if self.fail {
                    return Err(EmbedError::Provider("HTTP 500".into()));
                }
                checked(self.model, texts.iter().map(|t| vector(t)).collect(), texts.len())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedding(model: &str, vector: &[f32]) -> Embedding {
        Embedding { model: model.into(), vector: vector.to_vec() }
    }

    #[test]
    fn similarity_is_cosine_within_one_model() {
        let a = embedding("m", &[1.0, 0.0]);
        assert_eq!(a.similarity(&embedding("m", &[2.0, 0.0])), Some(1.0));
        let diagonal = a.similarity(&embedding("m", &[1.0, 1.0])).expect("comparable");
        assert!((diagonal - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-9);
        assert_eq!(a.similarity(&embedding("m", &[-1.0, 0.0])), Some(0.0), "opposite is clamped to 0");
        assert_eq!(a.similarity(&embedding("other", &[1.0, 0.0])), None);
        assert_eq!(a.similarity(&embedding("m", &[1.0, 0.0, 0.0])), None);
        assert_eq!(a.similarity(&embedding("m", &[0.0, 0.0])), None);
    }

    #[test]
    fn bytes_round_trip_little_endian() {
        let v = [1.0f32, -0.5, f32::MIN_POSITIVE, 3.25e7];
        let bytes = to_bytes(&v);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..4], &1.0f32.to_le_bytes());
        assert_eq!(from_bytes(&bytes).as_deref(), Some(&v[..]));
        assert_eq!(from_bytes(&[]), None);
        assert_eq!(from_bytes(&[0, 0, 0]), None);
        assert_eq!(Embedding::from_stored(Some("m".into()), Some(bytes.clone())), Some(embedding("m", &v)));
        assert_eq!(Embedding::from_stored(None, Some(bytes)), None);
        assert_eq!(Embedding::from_stored(Some("m".into()), None), None);
    }

    #[test]
    fn unusable_vectors_are_refused() {
        assert!(checked("m", vec![vec![1.0], vec![2.0]], 2).is_ok());
        assert!(checked("m", vec![vec![1.0]], 2).is_err());
        assert!(checked("m", vec![vec![1.0], vec![1.0, 2.0]], 2).is_err());
        assert!(checked("m", vec![vec![]], 1).is_err());
        assert!(checked("m", vec![vec![f32::NAN]], 1).is_err());
        assert!(checked(" ", vec![vec![1.0]], 1).is_err());
    }

    /// Answers with the text's length, or fails, or never answers; counts its calls.
    struct Scripted {
        mode: &'static str,
    }

    impl Embedder for Scripted {
        fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
            Box::pin(async move {
                match self.mode {
                    "fail" => Err(EmbedError::Provider("500".into())),
                    "hang" => std::future::pending().await,
                    _ => checked("len", texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect(), texts.len()),
                }
            })
        }
    }

    #[tokio::test]
    async fn each_question_is_embedded_once() {
        let vectors = QuestionVectors::new(Arc::new(Scripted { mode: "ok" }));
        let first = vectors.of(" count the customers ").await.expect("vector");
        assert_eq!(first.vector, vec![19.0, 1.0]);
        assert_eq!(vectors.of("count the customers").await, Some(first));
        assert_eq!(vectors.calls(), 1);
        assert!(vectors.of("   ").await.is_none());
        assert!(vectors.of("another one").await.is_some());
        assert_eq!(vectors.calls(), 2);
        assert!(vectors.available());
        assert!(QuestionVectors::none().of("count the customers").await.is_none());
    }

    #[tokio::test]
    async fn a_failure_or_a_timeout_means_no_vectors_for_the_request() {
        let failing = QuestionVectors::new(Arc::new(Scripted { mode: "fail" }));
        assert!(failing.of("count the customers").await.is_none());
        assert!(!failing.available());
        assert!(failing.of("another question").await.is_none());
        assert_eq!(failing.calls(), 1, "not asked again after a failure");

        let hanging = QuestionVectors::new(Arc::new(Scripted { mode: "hang" })).with_timeout(Duration::from_millis(20));
        assert!(hanging.of("count the customers").await.is_none());
        assert!(!hanging.available());
    }
}
