//! The cache's behaviour on an in-memory SQLite store with a clock the tests move: exact and
//! similar hits, the numeric and relative-time guards, the sliding TTL, LRU eviction; then
//! similar hits by vectors (a deterministic concept embedder): paraphrases in other words, the
//! named-value guard, the per-entry fallback to words, one embedding per question, failures.

use std::sync::Mutex;

use chrono::TimeZone;

use super::*;
use crate::embedding::Embedder;
use crate::embedding::testing::Concepts;

const CONN: &str = "conn-1";
const FP: &str = "fp-1";

/// A cache over a fresh in-memory store, and a handle to move its clock.
async fn cache() -> (AnswerCache, Arc<Mutex<DateTime<Utc>>>) {
    let store = Store::open("sqlite::memory:").await.expect("store");
    let start = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).single().expect("date");
    let now = Arc::new(Mutex::new(start));
    let clock_now = now.clone();
    let clock: Clock = Arc::new(move || *clock_now.lock().expect("clock"));
    (AnswerCache::new(store).with_clock(clock), now)
}

fn advance(now: &Mutex<DateTime<Utc>>, secs: i64) {
    let mut t = now.lock().expect("clock");
    *t += chrono::Duration::seconds(secs);
}

async fn put(cache: &AnswerCache, question: &str, sql: &str) {
    assert!(cache.store_entry(CONN, question, FP, sql, "sqlite", false).await.expect("store"));
}

async fn ask(cache: &AnswerCache, question: &str) -> Option<CacheHit> {
    cache.lookup(CONN, question, FP, &CachePolicy::default()).await.expect("lookup")
}

#[tokio::test]
async fn exact_then_similar_hits_and_misses() {
    let (cache, _) = cache().await;
    put(&cache, "How many customers?", "SELECT COUNT(*) FROM customers").await;
    put(&cache, "orders over $60k", "SELECT * FROM orders WHERE total > 60000").await;

    let exact = ask(&cache, "how many customers").await.expect("exact hit");
    assert!(exact.exact);
    assert_eq!(exact.similarity, 1.0);
    assert_eq!(exact.sql, "SELECT COUNT(*) FROM customers");
    assert_eq!(exact.question_raw, "How many customers?");
    let paraphrase = ask(&cache, "How many customers are there?").await.expect("paraphrase hit");
    assert_eq!(paraphrase.entry_id, exact.entry_id);
    let typo = ask(&cache, "how many custmers").await.expect("typo hit");
    assert!(!typo.exact && typo.similarity >= DEFAULT_THRESHOLD && typo.similarity < 1.0, "{typo:?}");

    assert!(ask(&cache, "orders over $80k").await.is_none(), "different numbers never match");
    assert!(ask(&cache, "orders over 60k").await.is_none(), "a currency is part of the number");
    assert!(ask(&cache, "how many orders").await.is_none());
    // Another connection or schema sees nothing.
    let policy = CachePolicy::default();
    assert!(cache.lookup("conn-2", "how many customers", FP, &policy).await.expect("lookup").is_none());
    assert!(cache.lookup(CONN, "how many customers", "fp-2", &policy).await.expect("lookup").is_none());

    let stats = cache.stats().await.expect("stats");
    assert_eq!(stats.total_entries, 2);
    assert_eq!(stats.hit_count, 3);
    assert_eq!(stats.miss_count, 5);
    assert!((stats.hit_rate - 3.0 / 8.0).abs() < 1e-9);
    assert_eq!(stats.top_cached_queries, vec![TopQuery { question: "How many customers?".into(), hit_count: 3 }]);
}

#[tokio::test]
async fn threshold_above_one_turns_the_similar_step_off() {
    let (cache, _) = cache().await;
    put(&cache, "how many customers", "SELECT 1").await;
    let strict = CachePolicy { ttl: None, threshold: 1.01 };
    assert!(cache.lookup(CONN, "how many custmers", FP, &strict).await.expect("lookup").is_none());
    assert!(cache.lookup(CONN, "How many customers?", FP, &strict).await.expect("lookup").is_some());
    let nan = CachePolicy { ttl: None, threshold: f64::NAN };
    assert!(cache.lookup(CONN, "how many custmers", FP, &nan).await.expect("lookup").is_none());
}

#[tokio::test]
async fn relative_time_questions_only_hit_exactly_and_young() {
    let (cache, now) = cache().await;
    put(&cache, "sales last month", "SELECT SUM(total) FROM sales WHERE month = '2025-12'").await;
    assert!(ask(&cache, "sales this month").await.is_none());
    assert!(ask(&cache, "what were the sales last month?").await.expect("same normalised question").exact);
    // Nor a non-temporal entry with nearly the same words.
    put(&cache, "sales per month", "SELECT month, SUM(total) FROM sales GROUP BY 1").await;
    assert!(ask(&cache, "sales this month").await.is_none());
    assert!(ask(&cache, "sales month").await.is_some());
    // A non-temporal question never matches a temporal entry by similarity either.
    put(&cache, "revenue by region", "SELECT region, SUM(x) FROM r GROUP BY 1").await;
    assert!(ask(&cache, "revenue by region last year").await.is_none());

    advance(&now, 23 * 3600);
    assert!(ask(&cache, "sales last month").await.is_some(), "younger than a day");
    advance(&now, 2 * 3600);
    assert!(ask(&cache, "sales last month").await.is_none(), "older than a day, even though it was just used");
    // The stale entry gave way: a fresh answer can be stored under the same key.
    put(&cache, "sales last month", "SELECT 2").await;
    assert_eq!(ask(&cache, "sales last month").await.expect("fresh").sql, "SELECT 2");
}

#[tokio::test]
async fn the_ttl_slides_with_each_hit() {
    let (cache, now) = cache().await;
    let policy = CachePolicy { ttl: Some(Duration::from_secs(10 * 24 * 3600)), threshold: DEFAULT_THRESHOLD };
    put(&cache, "top 5 products by revenue", "SELECT 1").await;
    advance(&now, 9 * 24 * 3600);
    assert!(cache.lookup(CONN, "top 5 products by revenue", FP, &policy).await.expect("lookup").is_some());
    advance(&now, 9 * 24 * 3600);
    // 18 days after it was stored, 9 after its last hit: still fresh.
    assert!(cache.lookup(CONN, "top five products by revenue", FP, &policy).await.expect("lookup").is_some());
    advance(&now, 11 * 24 * 3600);
    assert!(cache.lookup(CONN, "top 5 products by revenue", FP, &policy).await.expect("lookup").is_none());
    // No TTL: never stale.
    put(&cache, "average basket", "SELECT 2").await;
    put(&cache, "median basket", "SELECT 3").await;
    advance(&now, 400 * 24 * 3600);
    let forever = CachePolicy { ttl: None, threshold: DEFAULT_THRESHOLD };
    assert!(cache.lookup(CONN, "average basket", FP, &forever).await.expect("lookup").is_some());
    // Pruning removes what is stale under a TTL (the entry just used stays).
    assert_eq!(cache.prune(Some(Duration::from_secs(24 * 3600))).await.expect("prune"), 1);
    assert_eq!(cache.prune(None).await.expect("prune"), 0);
    assert_eq!(cache.stats().await.expect("stats").total_entries, 1);
}

#[tokio::test]
async fn existing_entries_are_kept_unless_overwritten() {
    let (cache, _) = cache().await;
    put(&cache, "how many customers", "SELECT 1").await;
    assert!(!cache.store_entry(CONN, "How many customers?", FP, "SELECT 2", "sqlite", false).await.expect("store"));
    assert_eq!(ask(&cache, "how many customers").await.expect("hit").sql, "SELECT 1");
    assert!(cache.store_entry(CONN, "How many customers?", FP, "SELECT 3", "sqlite", true).await.expect("store"));
    let hit = ask(&cache, "how many customers").await.expect("hit");
    assert_eq!(hit.sql, "SELECT 3");
    assert_eq!(hit.question_raw, "How many customers?");
    assert!(!cache.store_entry(CONN, "  ?! ", FP, "SELECT 4", "sqlite", false).await.expect("blank question"));
    assert!(matches!(
        cache.store_entry(CONN, "nul\0question", FP, "SELECT 5", "sqlite", false).await,
        Err(StoreError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn lru_eviction_keeps_the_most_recently_used() {
    let (cache, now) = cache().await;
    let cache = cache.with_capacity(3);
    for (i, q) in ["alpha widgets", "bravo widgets", "charlie widgets"].iter().enumerate() {
        put(&cache, q, &format!("SELECT {i}")).await;
        advance(&now, 60);
    }
    // Using the oldest makes "bravo" the least recently used.
    assert!(ask(&cache, "alpha widgets").await.is_some());
    advance(&now, 60);
    put(&cache, "delta widgets", "SELECT 3").await;
    let page = cache.entries(CONN, 10, 0, None).await.expect("entries");
    let mut questions: Vec<&str> = page.items.iter().map(|e| e.question_raw.as_str()).collect();
    questions.sort();
    assert_eq!(questions, vec!["alpha widgets", "charlie widgets", "delta widgets"]);
    assert_eq!(page.total, 3);
    // Other connections are not touched by this one's capacity.
    assert!(cache.store_entry("conn-2", "echo widgets", FP, "SELECT 9", "sqlite", false).await.expect("store"));
    assert_eq!(cache.stats().await.expect("stats").total_entries, 4);
}

#[tokio::test]
async fn evicting_similar_questions_and_clearing() {
    let (cache, _) = cache().await;
    put(&cache, "how many customers", "SELECT 1").await;
    assert!(
        cache.store_entry(CONN, "How many customers?", "fp-old", "SELECT 0", "sqlite", false).await.expect("store")
    );
    put(&cache, "how many custmers are there", "SELECT 2").await;
    put(&cache, "revenue by region", "SELECT 3").await;
    assert_eq!(cache.evict_similar(CONN, "how many customers?", DEFAULT_THRESHOLD).await.expect("evict"), 3);
    let left = cache.entries(CONN, 10, 0, None).await.expect("entries");
    assert_eq!(left.items.iter().map(|e| e.question_raw.as_str()).collect::<Vec<_>>(), vec!["revenue by region"]);

    assert!(cache.store_entry("conn-2", "revenue by region", FP, "SELECT 4", "sqlite", false).await.expect("store"));
    assert_eq!(cache.clear_connection(CONN).await.expect("clear"), 1);
    assert_eq!(cache.stats().await.expect("stats").total_entries, 1);
    let other = cache.entries("conn-2", 10, 0, None).await.expect("entries");
    assert!(cache.delete_entry(&other.items[0].id).await.expect("delete"));
    assert!(!cache.delete_entry(&other.items[0].id).await.expect("delete again"));
}

#[tokio::test]
async fn rejected_hits_count_as_misses_and_entries_page_by_hits() {
    let (cache, _) = cache().await;
    put(&cache, "how many customers", "SELECT 1").await;
    put(&cache, "revenue by region", "SELECT 2").await;
    put(&cache, "100% cotton_shirts", "SELECT 3").await;
    let hit = ask(&cache, "how many customers").await.expect("hit");
    cache.reject_hit(CONN, &hit.entry_id).await.expect("reject");
    let stats = cache.stats().await.expect("stats");
    assert_eq!((stats.hit_count, stats.miss_count), (0, 1));
    assert!(ask(&cache, "revenue by region").await.is_some());
    assert!(ask(&cache, "revenue by region").await.is_some());
    let page = cache.entries(CONN, 2, 0, None).await.expect("entries");
    assert_eq!(page.total, 3);
    assert_eq!(page.items[0].question_raw, "revenue by region");
    assert_eq!(page.items[0].hit_count, 2);
    assert!(page.items[0].last_hit_at.is_some());
    let second = cache.entries(CONN, 2, 2, None).await.expect("entries");
    assert_eq!(second.items.len(), 1);
    let found = cache.entries(CONN, 10, 0, Some("REGION")).await.expect("search");
    assert_eq!(found.total, 1);
    // Wildcards in a search are literal characters.
    assert_eq!(cache.entries(CONN, 10, 0, Some("%")).await.expect("search").total, 1);
    assert_eq!(cache.entries(CONN, 10, 0, Some("n_s")).await.expect("search").total, 1);
    assert_eq!(cache.entries(CONN, 10, 0, Some("y_c")).await.expect("search").total, 0);
}

// ---------------------------------------------------------------------------------------------
// Similar hits by vectors

/// One request's vectors from `embedder`.
fn request(embedder: &Arc<Concepts>) -> QuestionVectors {
    QuestionVectors::new(embedder.clone() as Arc<dyn Embedder>)
}

/// Store an answer as a chat request would, its question embedded by `embedder`.
async fn put_embedded(cache: &AnswerCache, embedder: &Arc<Concepts>, question: &str, sql: &str) {
    let vectors = request(embedder);
    let options = StoreOptions { vectors: Some(&vectors), ..StoreOptions::default() };
    assert!(cache.store_entry_with(CONN, question, FP, sql, "sqlite", options).await.expect("store"));
}

/// Look up as a chat request would, with `embedder`.
async fn ask_embedded(cache: &AnswerCache, embedder: &Arc<Concepts>, question: &str) -> Option<CacheHit> {
    cache.lookup_with(CONN, question, FP, &CachePolicy::default(), &request(embedder)).await.expect("lookup")
}

#[tokio::test]
async fn a_paraphrase_in_other_words_hits_by_vectors() {
    let (cache, _) = cache().await;
    let embedder = Arc::new(Concepts::new("concepts-v1"));
    put_embedded(&cache, &embedder, "Count the customers", "SELECT COUNT(*) FROM customers").await;

    let hit = ask_embedded(&cache, &embedder, "How many clients do we have?").await.expect("hit by vectors");
    assert!(hit.by_vectors && !hit.exact, "{hit:?}");
    assert!(hit.similarity >= DEFAULT_THRESHOLD);
    assert_eq!(hit.sql, "SELECT COUNT(*) FROM customers");
    // By words alone the two share no content word: no hit.
    assert!(ask(&cache, "How many clients do we have?").await.is_none());
    // An exact hit needs no vector.
    let exact = ask_embedded(&cache, &embedder, "count the customers!").await.expect("exact");
    assert!(exact.exact && !exact.by_vectors);
    assert_eq!(embedder.calls(), 2, "one call to store, one for the paraphrase, none for the exact hit");
}

#[tokio::test]
async fn vectors_need_the_same_named_values_and_literals() {
    let (cache, _) = cache().await;
    let embedder = Arc::new(Concepts::new("concepts-v1"));
    put_embedded(
        &cache,
        &embedder,
        "What was the revenue in Berlin?",
        "SELECT SUM(total) FROM s WHERE city = 'Berlin'",
    )
    .await;
    put_embedded(&cache, &embedder, "Top 5 products", "SELECT name FROM p ORDER BY sales DESC LIMIT 5").await;
    put_embedded(&cache, &embedder, "customers with status 'gold'", "SELECT * FROM c WHERE status = 'gold'").await;

    assert!(ask_embedded(&cache, &embedder, "What was the revenue in Paris?").await.is_none(), "another city");
    let same_city = ask_embedded(&cache, &embedder, "What was the total income in Berlin?").await.expect("same city");
    assert!(same_city.by_vectors, "{same_city:?}");
    assert!(ask_embedded(&cache, &embedder, "Top 10 items").await.is_none(), "another number");
    assert!(ask_embedded(&cache, &embedder, "best 5 items").await.expect("same number").by_vectors);
    assert!(ask_embedded(&cache, &embedder, "clients with status 'silver'").await.is_none(), "another quoted value");
    assert!(ask_embedded(&cache, &embedder, "clients with status 'gold'").await.is_some());
    // Relative time: never a similar hit, by vectors either.
    put_embedded(&cache, &embedder, "revenue last month", "SELECT 1").await;
    assert!(ask_embedded(&cache, &embedder, "income last month").await.is_none());
}

#[tokio::test]
async fn entries_without_a_vector_of_the_same_model_are_compared_by_words() {
    let (cache, _) = cache().await;
    let embedder = Arc::new(Concepts::new("concepts-v1"));
    let other_model = Arc::new(Concepts::new("concepts-v2"));
    put(&cache, "how many customer orders", "SELECT COUNT(*) FROM orders").await;
    put_embedded(&cache, &other_model, "Count the customers", "SELECT COUNT(*) FROM customers").await;

    let by_words = ask_embedded(&cache, &embedder, "How many custmer orders?").await.expect("lexical hit");
    assert!(!by_words.by_vectors);
    assert_eq!(by_words.sql, "SELECT COUNT(*) FROM orders");
    assert!(
        ask_embedded(&cache, &embedder, "How many clients do we have?").await.is_none(),
        "another model's vector is not compared, and the words differ"
    );
    assert!(ask_embedded(&cache, &other_model, "How many clients do we have?").await.expect("same model").by_vectors);
    // No entry with a vector to compare with: the question is not embedded at all.
    let (fresh, _) = cache_with_entry("how many customer orders").await;
    assert!(!ask_embedded(&fresh, &embedder, "How many custmer orders?").await.expect("lexical hit").exact);
    assert_eq!(embedder.calls(), 2, "the typo and the clients: the last cache had no vector to compare with");
}

async fn cache_with_entry(question: &str) -> (AnswerCache, Arc<Mutex<DateTime<Utc>>>) {
    let (cache, now) = cache().await;
    put(&cache, question, "SELECT 1").await;
    (cache, now)
}

#[tokio::test]
async fn the_answer_stored_after_a_miss_reuses_the_lookups_vector() {
    let (cache, _) = cache().await;
    let embedder = Arc::new(Concepts::new("concepts-v1"));
    put_embedded(&cache, &embedder, "revenue by region", "SELECT 1").await;
    let calls = embedder.calls();

    let vectors = request(&embedder);
    let policy = CachePolicy::default();
    assert!(cache.lookup_with(CONN, "Count the customers", FP, &policy, &vectors).await.expect("lookup").is_none());
    let options = StoreOptions { vectors: Some(&vectors), ..StoreOptions::default() };
    let stored = cache.store_entry_with(CONN, "Count the customers", FP, "SELECT 2", "sqlite", options);
    assert!(stored.await.expect("store"));
    assert_eq!(embedder.calls(), calls + 1, "one embedding for the lookup and the store");

    let candidates = cache.store.cache_candidates(CONN, FP, DateTime::UNIX_EPOCH, 10).await.expect("candidates");
    let stored = candidates.iter().find(|c| c.entry.question_raw == "Count the customers").expect("stored");
    let embedding = stored.embedding.as_ref().expect("stored with its vector");
    assert_eq!(embedding.model, "concepts-v1");
    assert_eq!(embedding.vector, crate::embedding::testing::vector("Count the customers"));
}

#[tokio::test]
async fn a_failing_embedder_leaves_the_lexical_behaviour() {
    let (cache, _) = cache().await;
    let embedder = Arc::new(Concepts::new("concepts-v1"));
    let failing = Arc::new(Concepts::failing());
    put_embedded(&cache, &embedder, "Count the customers", "SELECT COUNT(*) FROM customers").await;

    let vectors = request(&failing);
    let policy = CachePolicy::default();
    let paraphrase = cache.lookup_with(CONN, "How many clients do we have?", FP, &policy, &vectors).await;
    assert!(paraphrase.expect("no error").is_none());
    let lexical = cache.lookup_with(CONN, "count all the customers", FP, &policy, &vectors).await;
    assert!(!lexical.expect("no error").expect("lexical hit").by_vectors);
    let options = StoreOptions { vectors: Some(&vectors), ..StoreOptions::default() };
    assert!(cache.store_entry_with(CONN, "revenue by region", FP, "SELECT 3", "sqlite", options).await.expect("store"));
    assert_eq!(failing.calls(), 1, "after a failure the request stops asking");
}

#[tokio::test]
async fn thumbs_down_evicts_paraphrases_by_vectors() {
    let (cache, _) = cache().await;
    let embedder = Arc::new(Concepts::new("concepts-v1"));
    put_embedded(&cache, &embedder, "Count the customers", "SELECT 1").await;
    put_embedded(&cache, &embedder, "How many clients do we have?", "SELECT 2").await;
    put_embedded(&cache, &embedder, "revenue by region", "SELECT 3").await;
    let evicted = cache.evict_similar_with(CONN, "number of buyers", DEFAULT_THRESHOLD, &request(&embedder)).await;
    assert_eq!(evicted.expect("evict"), 2);
    let left = cache.entries(CONN, 10, 0, None).await.expect("entries");
    assert_eq!(left.items.iter().map(|e| e.question_raw.as_str()).collect::<Vec<_>>(), vec!["revenue by region"]);
    // Without vectors only the words count: nothing else goes.
    assert_eq!(cache.evict_similar(CONN, "revenue per area", DEFAULT_THRESHOLD).await.expect("evict"), 0);
}
