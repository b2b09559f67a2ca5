//! What the fast path of a dialect call must not change: the built-in dialects allocate from a
//! bump arena that falls back to the system allocator when it is used up, and the pool resets
//! instance slots in place (`keep_resident`) instead of unmapping them. Queries far larger than
//! the arena must still validate exactly, and a call must never see anything a previous call
//! left behind in the reused slot.

use quarry::plugins::dialect::default_policy;
use quarry::plugins::{PluginRegistry, PluginSet, Runtime, RuntimeConfig};

async fn plugins() -> std::sync::Arc<PluginSet> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-artifact-cache")),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    PluginRegistry::load(runtime, None).await.current()
}

/// Queries whose validation allocates past the 4 MiB arena: a 1 MB literal (held by the input,
/// the token, the tree and the printed statement) and 20 000 columns (60 000 tokens).
fn big_queries() -> Vec<(String, &'static str)> {
    let literal = "x".repeat(1_000_000);
    let columns: Vec<String> = (0..20_000).map(|i| format!("c{i}")).collect();
    vec![
        (format!("SELECT '{literal}' AS big"), "literal"),
        (format!("SELECT {} FROM wide", columns.join(", ")), "columns"),
    ]
}

#[tokio::test]
async fn queries_larger_than_the_arena_validate_exactly() {
    let set = plugins().await;
    let policy = default_policy(None);
    for dialect in ["postgres", "mysql", "sqlite"] {
        let plugin = set.dialect(dialect).unwrap_or_else(|| panic!("{dialect} not loaded"));
        for (sql, what) in big_queries() {
            let verdict = plugin.validate(&sql, &policy).await.expect("call").expect("accepted");
            assert_eq!(verdict.sql, sql, "{dialect}: the {what} query did not print back unchanged");
        }
    }
}

#[tokio::test]
async fn a_call_sees_nothing_of_the_previous_one_in_a_reused_slot() {
    let set = plugins().await;
    let plugin = set.dialect("postgres").expect("postgres loaded");
    let policy = default_policy(Some(10));
    let small = "SELECT name FROM customers WHERE id = 1";
    let first = plugin.validate(small, &policy).await.expect("call").expect("accepted");
    // Calls that dirty a lot of memory (past what a slot keeps resident) and a refused one.
    for (sql, _) in big_queries() {
        plugin.validate(&sql, &policy).await.expect("call").expect("accepted");
        let refused = plugin.validate("DELETE FROM customers", &policy).await.expect("call");
        assert!(refused.is_err(), "DELETE was accepted: {refused:?}");
        let again = plugin.validate(small, &policy).await.expect("call").expect("accepted");
        assert_eq!(again.sql, first.sql);
        assert_eq!(again.tables, first.tables);
        assert_eq!(again.warnings, first.warnings);
    }
}
