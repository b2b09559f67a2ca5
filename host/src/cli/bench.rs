//! `quarry bench plugins`: what the plugin layer costs, printed as numbers.
//!
//! - cold start: a new runtime compiling every built-in (empty artifact cache);
//! - warm start: a new runtime loading the cached artifacts;
//! - a fresh instance plus a trivial call (`info()`);
//! - the 3-join `validate` phase by phase: instantiation, the first call in the fresh instance,
//!   a second call in the same instance (the difference is what a fresh instance costs), a
//!   trivial call (the call and canonical-ABI floor), and the store's set-up and reset;
//! - `validate` through the postgres plugin (or `--dialect`, possibly from `--plugins-dir`)
//!   against `sqlparser` parse + print natively, on the same 20 queries, and for the 3-join
//!   query alone.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::config::PluginSettings;
use crate::plugins::dialect::default_policy;
use crate::plugins::{PluginRegistry, Runtime, RuntimeConfig};

/// `quarry bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Plugin runtime overheads: start-up, instantiation, validate versus native sqlparser.
    Plugins {
        /// Timed rounds per measurement.
        #[arg(long, default_value_t = 300)]
        rounds: usize,
        /// Keep compiled artifacts in this directory instead of a scratch one, so that repeated
        /// runs skip the (seconds long) compile; the "cold" start is then only cold the first time.
        #[arg(long)]
        cache_dir: Option<std::path::PathBuf>,
        /// Also load the plugins in this folder (to compare a build of a dialect with the built-in).
        #[arg(long)]
        plugins_dir: Option<std::path::PathBuf>,
        /// The dialect plugin to measure.
        #[arg(long, default_value = "postgres")]
        dialect: String,
    },
    /// What the provider plugin layer adds to a completion against a local instant server.
    Providers {
        /// Timed rounds per measurement.
        #[arg(long, default_value_t = 300)]
        rounds: usize,
    },
    /// Execution accuracy of the `offline` provider on the benchmark and demo question sets.
    Offline(super::bench_offline::OfflineArgs),
}

/// The 3-join query the targets are stated for.
pub const THREE_JOIN: &str = "SELECT c.name, o.id, p.title, oi.quantity FROM customers c \
    JOIN orders o ON o.customer_id = c.id JOIN order_items oi ON oi.order_id = o.id \
    JOIN products p ON p.id = oi.product_id WHERE o.created_at >= '2024-01-01' AND c.country = 'DE' \
    ORDER BY o.created_at DESC";

/// Twenty representative queries (the 3-join one first).
pub const QUERIES: [&str; 20] = [
    THREE_JOIN,
    "SELECT 1",
    "SELECT count(*) FROM orders",
    "SELECT * FROM customers WHERE id = 42",
    "SELECT name, email FROM customers WHERE lower(name) LIKE '%smith%' LIMIT 10",
    "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY n DESC",
    "SELECT date_trunc('month', created_at) AS m, sum(total) FROM orders GROUP BY 1 ORDER BY 1",
    "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '30 days') SELECT count(*) FROM recent",
    "SELECT p.title, sum(oi.quantity * oi.unit_price) AS revenue FROM order_items oi JOIN products p ON p.id = oi.product_id GROUP BY p.title ORDER BY revenue DESC LIMIT 5",
    "SELECT c.country, avg(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.country HAVING count(*) > 10",
    "SELECT id FROM customers UNION SELECT customer_id FROM orders",
    "SELECT * FROM products WHERE price BETWEEN 10 AND 20 AND category IN ('books', 'games')",
    "SELECT e.name, m.name AS manager FROM employees e LEFT JOIN employees m ON m.id = e.manager_id",
    "SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.total > 500)",
    "SELECT name, rank() OVER (PARTITION BY country ORDER BY lifetime_value DESC) FROM customers",
    "SELECT CASE WHEN total > 100 THEN 'big' ELSE 'small' END AS size, count(*) FROM orders GROUP BY 1",
    "SELECT extract(year FROM created_at) AS y, count(*) FROM orders GROUP BY y ORDER BY y",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT o.id, (SELECT count(*) FROM order_items oi WHERE oi.order_id = o.id) AS items FROM orders o ORDER BY items DESC",
    "SELECT coalesce(p.method, 'unknown'), sum(p.amount) FROM payments p WHERE p.paid_at::date = current_date - 1 GROUP BY 1",
];

pub async fn run(cmd: BenchCommand, settings: &PluginSettings) -> anyhow::Result<ExitCode> {
    let (rounds, cache_dir, plugins_dir, dialect_name) = match cmd {
        BenchCommand::Plugins { rounds, cache_dir, plugins_dir, dialect } => (rounds, cache_dir, plugins_dir, dialect),
        BenchCommand::Providers { rounds } => return super::bench_providers::run(rounds, settings).await,
        BenchCommand::Offline(args) => return super::bench_offline::run(args, settings).await,
    };
    let rounds = rounds.max(10);
    let cache = tempfile::tempdir().context("creating a scratch artifact cache")?;
    let cold_start = cache_dir.is_none();
    let cache_dir = cache_dir.unwrap_or_else(|| cache.path().to_path_buf());
    let config = RuntimeConfig { cache_dir: Some(cache_dir), ..RuntimeConfig::default() };

    let started = Instant::now();
    let cold = PluginRegistry::load(Runtime::new(config.clone())?, plugins_dir.clone()).await;
    let cold_time = started.elapsed();
    let started = Instant::now();
    let warm = PluginRegistry::load(Runtime::new(config)?, plugins_dir).await;
    let warm_time = started.elapsed();
    drop(cold);
    let set = warm.current();
    let n = set.list().len();
    println!("plugin runtime start-up, {n} built-in plugins (pooling allocator: {})", warm.runtime().is_pooled());
    let cold_label = if cold_start { "cold (compile all)" } else { "first (--cache-dir given)" };
    println!("  {cold_label:<28}  {:>10.1} ms", ms(cold_time));
    println!("  warm (cached artifacts)       {:>10.1} ms", ms(warm_time));

    for problem in &set.problems {
        println!("  load problem: {problem}");
    }
    let dialect =
        set.dialect(&dialect_name).with_context(|| format!("no dialect plugin named {dialect_name} loaded"))?;
    println!("measuring dialect plugin {dialect_name}");
    let policy = default_policy(Some(1000));
    for _ in 0..20 {
        dialect.info().await?;
        let _warm_up = dialect.validate(THREE_JOIN, &policy).await?;
    }
    let mut info = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        dialect.info().await?;
        info.push(t.elapsed());
    }
    println!("fresh instance + info() call     {}", stats(&mut info));

    let mut phases: [Vec<Duration>; 5] = Default::default();
    for _ in 0..rounds {
        let p = dialect.measure_validate_phases(THREE_JOIN, &policy).await?;
        let rest = p.total.saturating_sub(p.instantiate + p.first_validate + p.second_validate + p.trivial_call);
        for (samples, d) in
            phases.iter_mut().zip([p.instantiate, p.first_validate, p.second_validate, p.trivial_call, rest])
        {
            samples.push(d);
        }
    }
    println!("3-join validate, phase by phase (one instance called 3 times; real calls never reuse one):");
    let names = [
        "instantiate",
        "1st validate (fresh)",
        "2nd validate (same inst.)",
        "info() after that",
        "store, admission, drop",
    ];
    for (name, samples) in names.iter().zip(phases.iter_mut()) {
        println!("  {name:<28}  {}", stats(samples));
    }

    let mut wasm3 = Vec::with_capacity(rounds);
    let mut native3 = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        dialect.validate(THREE_JOIN, &policy).await?.map_err(|v| anyhow::anyhow!("refused: {v:?}"))?;
        wasm3.push(t.elapsed());
        let t = Instant::now();
        native_parse_print(THREE_JOIN)?;
        native3.push(t.elapsed());
    }
    let (w, nat) = (median(&mut wasm3), median(&mut native3));
    println!("3-join query: validate via plugin {}", stats(&mut wasm3));
    println!("3-join query: sqlparser natively  {}", stats(&mut native3));
    println!("  ratio (median)                {:>10.2}x", w.as_secs_f64() / nat.as_secs_f64().max(1e-9));

    let mut wasm = Vec::new();
    let mut native = Vec::new();
    for _ in 0..(rounds / 10).max(5) {
        for q in QUERIES {
            let t = Instant::now();
            let _verdict = dialect.validate(q, &policy).await?;
            wasm.push(t.elapsed());
            let t = Instant::now();
            native_parse_print(q)?;
            native.push(t.elapsed());
        }
    }
    let (w, nat) = (median(&mut wasm), median(&mut native));
    println!("20 queries: validate via plugin   {}", stats(&mut wasm));
    println!("20 queries: sqlparser natively    {}", stats(&mut native));
    println!("  ratio (median)                {:>10.2}x", w.as_secs_f64() / nat.as_secs_f64().max(1e-9));
    Ok(ExitCode::SUCCESS)
}

fn native_parse_print(sql: &str) -> anyhow::Result<String> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)?;
    Ok(statements.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("; "))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn stats(samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:>8.1} µs   p99 {:>8.1} µs   (n={})",
        p(0.5).as_secs_f64() * 1e6,
        p(0.99).as_secs_f64() * 1e6,
        samples.len()
    )
}
