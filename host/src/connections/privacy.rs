//! A connection's privacy settings as stored and edited ([`PrivacySettings`], [`PrivacyUpdate`]),
//! and the two guards every execution path applies to a query's results: masking
//! ([`mask_results`]) and the mandatory row filter ([`apply_row_filter`]).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sqlparser::ast::{Expr, OrderBy, OrderByKind, Query, SelectItem, SetExpr, Statement};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::source::SourceType;
use crate::db::{Flavor, ResultColumn, ResultSet};
use crate::schema::{IntrospectOptions, PrivacyPolicy, RECOMMENDED_SENSITIVE_PATTERNS};

/// The alias of the derived table a filtered query is wrapped in.
pub const ROW_FILTER_ALIAS: &str = "_quarry_q";

/// Most entries in one privacy list.
const MAX_LIST_ENTRIES: usize = 1000;
/// Longest entry in a privacy list.
const MAX_ENTRY_CHARS: usize = 255;
/// Longest row filter.
const MAX_FILTER_CHARS: usize = 4000;

/// Words that make a row filter something other than a read-only condition.
const WRITE_WORDS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "DROP", "ALTER", "CREATE", "TRUNCATE", "GRANT", "REVOKE", "COPY",
    "CALL", "EXEC", "EXECUTE", "INTO", "LOCK", "SET", "VACUUM", "ATTACH", "DETACH", "PRAGMA", "LOAD", "HANDLER",
];

/// What must not reach the LLM or the user from one connection, as stored with it (JSON).
/// Missing keys take the defaults: samples, comments and row counts included, the recommended
/// sensitive patterns, nothing excluded, no row filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrivacySettings {
    /// Sample values in the schema shown to the LLM.
    pub include_sample_values: bool,
    /// Table and column comments in the schema.
    pub include_column_comments: bool,
    /// Approximate row counts in the schema.
    pub include_row_counts: bool,
    /// Column-name fragments: matching columns are marked `[SENSITIVE]`, never sampled, masked.
    pub sensitive_column_patterns: Vec<String>,
    /// Schemas left out entirely.
    pub excluded_schemas: Vec<String>,
    /// Tables (`table` or `schema.table`) left out entirely.
    pub excluded_tables: Vec<String>,
    /// Columns (`column`, `table.column`, `schema.table.column`) left out, and masked by bare name.
    pub excluded_columns: Vec<String>,
    /// Tables always kept when the schema is pruned for a question.
    pub always_include_tables: Vec<String>,
    /// A mandatory condition on every executed query's rows (one SQL boolean expression).
    pub row_filter_sql: Option<String>,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            include_sample_values: true,
            include_column_comments: true,
            include_row_counts: true,
            sensitive_column_patterns: RECOMMENDED_SENSITIVE_PATTERNS.iter().map(|s| s.to_string()).collect(),
            excluded_schemas: Vec::new(),
            excluded_tables: Vec::new(),
            excluded_columns: Vec::new(),
            always_include_tables: Vec::new(),
            row_filter_sql: None,
        }
    }
}

impl PrivacySettings {
    /// Settings as stored (missing keys take their defaults). JSON of the wrong shape, which the
    /// API never writes, is an error rather than a silent fallback to fewer protections.
    pub fn from_stored(value: &Value) -> Result<PrivacySettings, String> {
        serde_json::from_value(value.clone()).map_err(|e| format!("stored privacy settings are unreadable: {e}"))
    }

    /// The stored JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The policy the schema and result code apply.
    pub fn policy(&self) -> PrivacyPolicy {
        PrivacyPolicy {
            excluded_schemas: self.excluded_schemas.clone(),
            excluded_tables: self.excluded_tables.clone(),
            excluded_columns: self.excluded_columns.clone(),
            sensitive_column_patterns: self.sensitive_column_patterns.clone(),
        }
    }

    /// Introspection options honouring these settings (samples off when excluded).
    pub fn introspect_options(&self) -> IntrospectOptions {
        let mut opts = IntrospectOptions { privacy: self.policy(), ..IntrospectOptions::default() };
        if !self.include_sample_values {
            opts.sample_values_per_column = 0;
        }
        opts
    }

    /// Apply a partial update (fields it leaves out stay as they are), checking every field
    /// first; on a problem nothing changes. `source_type` decides how the row filter parses.
    pub fn apply(&mut self, update: PrivacyUpdate, source_type: SourceType) -> Result<(), Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut next = self.clone();
        let lists = [
            ("sensitive_column_patterns", update.sensitive_column_patterns, &mut next.sensitive_column_patterns),
            ("excluded_schemas", update.excluded_schemas, &mut next.excluded_schemas),
            ("excluded_tables", update.excluded_tables, &mut next.excluded_tables),
            ("excluded_columns", update.excluded_columns, &mut next.excluded_columns),
            ("always_include_tables", update.always_include_tables, &mut next.always_include_tables),
        ];
        for (field, given, slot) in lists {
            if let Some(list) = given {
                match clean_list(list) {
                    Ok(list) => *slot = list,
                    Err(why) => problems.push((field.to_string(), why)),
                }
            }
        }
        if let Some(v) = update.include_sample_values {
            next.include_sample_values = v;
        }
        if let Some(v) = update.include_column_comments {
            next.include_column_comments = v;
        }
        if let Some(v) = update.include_row_counts {
            next.include_row_counts = v;
        }
        if let Some(filter) = update.row_filter_sql {
            match filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
                None => next.row_filter_sql = None,
                Some(f) => match validate_row_filter(f, source_type) {
                    Ok(f) => next.row_filter_sql = Some(f),
                    Err(why) => problems.push(("row_filter_sql".to_string(), why)),
                },
            }
        }
        if problems.is_empty() {
            *self = next;
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// A partial change of [`PrivacySettings`] (`PUT /connections/{id}/privacy`, and the
/// `privacy_settings` of a new connection). Unknown keys are refused: a misspelt exclusion must
/// not be ignored silently. `row_filter_sql: null` (or `""`) removes the filter.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyUpdate {
    /// See [`PrivacySettings::include_sample_values`].
    pub include_sample_values: Option<bool>,
    /// See [`PrivacySettings::include_column_comments`].
    pub include_column_comments: Option<bool>,
    /// See [`PrivacySettings::include_row_counts`].
    pub include_row_counts: Option<bool>,
    /// See [`PrivacySettings::sensitive_column_patterns`].
    pub sensitive_column_patterns: Option<Vec<String>>,
    /// See [`PrivacySettings::excluded_schemas`].
    pub excluded_schemas: Option<Vec<String>>,
    /// See [`PrivacySettings::excluded_tables`].
    pub excluded_tables: Option<Vec<String>>,
    /// See [`PrivacySettings::excluded_columns`].
    pub excluded_columns: Option<Vec<String>>,
    /// See [`PrivacySettings::always_include_tables`].
    pub always_include_tables: Option<Vec<String>>,
    /// Accepted for compatibility with the reference API; Quarry prunes by token budget.
    pub schema_pruning_threshold: Option<f64>,
    /// `Some(None)`: remove the filter; `Some(Some(sql))`: set it; `None`: leave it.
    #[serde(deserialize_with = "present")]
    pub row_filter_sql: Option<Option<String>>,
}

/// For `Option<Option<T>>` fields: a present key (even `null`) is `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Trim entries, drop empty ones and duplicates; refuse NUL, overlong entries and huge lists.
fn clean_list(list: Vec<String>) -> Result<Vec<String>, String> {
    if list.len() > MAX_LIST_ENTRIES {
        return Err(format!("at most {MAX_LIST_ENTRIES} entries are allowed"));
    }
    let mut out: Vec<String> = Vec::new();
    for entry in list {
        let entry = entry.trim();
        if entry.contains('\0') {
            return Err("an entry contains a NUL character".into());
        }
        if entry.chars().count() > MAX_ENTRY_CHARS {
            return Err(format!("an entry is longer than {MAX_ENTRY_CHARS} characters"));
        }
        if !entry.is_empty() && !out.iter().any(|e| e.eq_ignore_ascii_case(entry)) {
            out.push(entry.to_string());
        }
    }
    Ok(out)
}

fn dialect_of(source_type: SourceType) -> Box<dyn Dialect> {
    match source_type {
        SourceType::Postgresql => Box::new(PostgreSqlDialect {}),
        SourceType::Mysql => Box::new(MySqlDialect {}),
        SourceType::Sqlite => Box::new(SQLiteDialect {}),
    }
}

fn dialect_of_flavor(flavor: Flavor) -> Box<dyn Dialect> {
    match flavor {
        Flavor::PostgreSQL => Box::new(PostgreSqlDialect {}),
        Flavor::MySQL | Flavor::MariaDB => Box::new(MySqlDialect {}),
        Flavor::SQLite => Box::new(SQLiteDialect {}),
    }
}

/// Check that `filter` is one SQL boolean condition that only reads: it parses as a single
/// expression in the connection's dialect, with no `;` and no word that writes or changes state
/// (`INSERT`, `UPDATE`, `DELETE`, `INTO`, `SET`, … outside string literals and quoted names).
/// Returns the trimmed filter, or why not.
pub fn validate_row_filter(filter: &str, source_type: SourceType) -> Result<String, String> {
    let filter = filter.trim();
    if filter.is_empty() {
        return Err("the row filter is empty".into());
    }
    if filter.chars().count() > MAX_FILTER_CHARS {
        return Err(format!("the row filter is longer than {MAX_FILTER_CHARS} characters"));
    }
    let dialect = dialect_of(source_type);
    let tokens = Tokenizer::new(dialect.as_ref(), filter)
        .tokenize()
        .map_err(|e| format!("the row filter is not valid SQL: {e}"))?;
    for token in &tokens {
        match token {
            Token::SemiColon => return Err("the row filter must be one condition, without ';'".into()),
            Token::Word(w)
                if w.quote_style.is_none() && WRITE_WORDS.contains(&w.value.to_ascii_uppercase().as_str()) =>
            {
                return Err(format!("the row filter must only read; {} is not allowed", w.value.to_ascii_uppercase()));
            }
            _ => {}
        }
    }
    let mut parser = Parser::new(dialect.as_ref())
        .try_with_sql(filter)
        .map_err(|e| format!("the row filter is not valid SQL: {e}"))?;
    let expr = parser.parse_expr().map_err(|e| format!("the row filter is not a SQL condition: {e}"))?;
    if parser.peek_token().token != Token::EOF {
        return Err("the row filter must be exactly one SQL condition (something follows it)".into());
    }
    if matches!(expr, Expr::Value(_)) {
        return Err("the row filter must be a condition on columns, not a constant".into());
    }
    Ok(filter.to_string())
}

/// Replace, in place, the values of sensitive columns (name matches a sensitive pattern) and of
/// columns named like an excluded column with `[REDACTED]`; NULL stays NULL. `columns` are the
/// result's column names, `rows` its rows (any batch of them). Uses the same rule as
/// [`PrivacyPolicy::mask`].
pub fn mask_results<S: AsRef<str>>(policy: &PrivacyPolicy, columns: &[S], rows: &mut Vec<Vec<Value>>) {
    let mut result = ResultSet {
        columns: columns
            .iter()
            .map(|c| ResultColumn { name: c.as_ref().to_string(), type_name: String::new() })
            .collect(),
        rows: std::mem::take(rows),
        row_count: 0,
        truncated: false,
        execution_time_ms: 0,
    };
    policy.mask(&mut result);
    *rows = result.rows;
}

/// The query `sql` restricted to the rows that satisfy `filter` (a condition checked with
/// [`validate_row_filter`]): `SELECT * FROM (<sql>) AS _quarry_q WHERE (<filter>)`.
///
/// A trailing `LIMIT`/`OFFSET`/`FETCH` moves outside the wrapper, so the limit counts filtered
/// rows; an `ORDER BY` on output columns (names or positions) moves out with it, so the order
/// survives (MariaDB drops the order of a derived table). The query goes inside on its own lines,
/// so a trailing `--` comment cannot swallow the filter. SQL that does not parse is wrapped as
/// text only if its parentheses balance outside strings and comments; otherwise the result is a
/// query that fails, never one without the filter.
pub fn apply_row_filter(sql: &str, filter: &str, flavor: Flavor) -> String {
    let filter = filter.trim();
    let sql = sql.trim().trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    if filter.is_empty() {
        return sql.to_string();
    }
    let wrap =
        |inner: &str, tail: &str| format!("SELECT * FROM (\n{inner}\n) AS {ROW_FILTER_ALIAS} WHERE ({filter}){tail}");
    let dialect = dialect_of_flavor(flavor);
    match Parser::parse_sql(dialect.as_ref(), sql) {
        Ok(mut statements) if statements.len() == 1 => match statements.pop() {
            Some(Statement::Query(mut query)) => {
                if query.limit_clause.is_none() && query.fetch.is_none() {
                    return wrap(sql, "");
                }
                let mut tail = String::new();
                if let Some(order_by) = movable_order_by(&query) {
                    query.order_by = None;
                    tail.push(' ');
                    tail.push_str(&order_by.to_string());
                }
                if let Some(limit) = query.limit_clause.take() {
                    tail.push_str(&limit.to_string());
                }
                if let Some(fetch) = query.fetch.take() {
                    tail.push(' ');
                    tail.push_str(&fetch.to_string());
                }
                wrap(&query.to_string(), &tail)
            }
            _ => unfilterable(),
        },
        Ok(_) => unfilterable(),
        Err(_) if balanced(sql, dialect.as_ref()) => wrap(sql, ""),
        Err(_) => unfilterable(),
    }
}

/// A query every engine refuses: what a query that cannot be filtered safely turns into.
fn unfilterable() -> String {
    "SELECT * FROM quarry_row_filter_cannot_be_applied_to_this_query".to_string()
}

/// Whether `sql` tokenizes, has no `;`, and its parentheses never close more than they open.
fn balanced(sql: &str, dialect: &dyn Dialect) -> bool {
    let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize() else {
        return false;
    };
    let mut depth: i64 = 0;
    for token in tokens {
        match token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Token::SemiColon => return false,
            _ => {}
        }
    }
    depth == 0
}

/// The query's ORDER BY rewritten for the outer query, when every item names an output column
/// unambiguously (or is a position); `None` otherwise (it then stays inside).
fn movable_order_by(query: &Query) -> Option<OrderBy> {
    let order_by = query.order_by.as_ref()?;
    // Output column names, when the body is one SELECT without wildcards.
    let outputs: Option<Vec<String>> = match query.body.as_ref() {
        SetExpr::Select(select) => {
            let mut names = Vec::new();
            for item in &select.projection {
                match item {
                    SelectItem::UnnamedExpr(Expr::Identifier(i)) => names.push(i.value.to_ascii_lowercase()),
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                        names.push(parts.last()?.value.to_ascii_lowercase())
                    }
                    SelectItem::ExprWithAlias { alias, .. } => names.push(alias.value.to_ascii_lowercase()),
                    SelectItem::UnnamedExpr(_) => names.push(String::new()),
                    SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => return movable_with(order_by, None),
                    // Unknown kinds of item: keep the order inside.
                    #[allow(unreachable_patterns)]
                    _ => return None,
                }
            }
            Some(names)
        }
        // UNION & co: ORDER BY already refers to output columns.
        SetExpr::SetOperation { .. } => None,
        _ => return None,
    };
    movable_with(order_by, outputs.as_deref())
}

/// Rewrite each ORDER BY item to a bare output name; `outputs` (when known) must contain the name
/// exactly once.
fn movable_with(order_by: &OrderBy, outputs: Option<&[String]>) -> Option<OrderBy> {
    let OrderByKind::Expressions(items) = &order_by.kind else {
        return None;
    };
    let mut moved = Vec::new();
    for item in items {
        let mut item = item.clone();
        let ident = match &item.expr {
            Expr::Value(v) if matches!(v.value, sqlparser::ast::Value::Number(..)) => None,
            Expr::Identifier(i) => Some(i.clone()),
            Expr::CompoundIdentifier(parts) if outputs.is_some() => Some(parts.last()?.clone()),
            _ => return None,
        };
        if let Some(ident) = ident {
            if let Some(outputs) = outputs {
                let name = ident.value.to_ascii_lowercase();
                if outputs.iter().filter(|o| **o == name).count() != 1 {
                    return None;
                }
            }
            item.expr = Expr::Identifier(ident);
        }
        moved.push(item);
    }
    Some(OrderBy { kind: OrderByKind::Expressions(moved), interpolate: order_by.interpolate.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_partial_updates() {
        let mut s = PrivacySettings::from_stored(&json!({})).unwrap();
        assert_eq!(s, PrivacySettings::default());
        assert!(s.policy().is_sensitive("customer_email"));
        let update: PrivacyUpdate = serde_json::from_value(json!({
            "excluded_tables": [" secrets ", "", "SECRETS", "hr.staff"],
            "include_sample_values": false,
            "row_filter_sql": "region = 'EU'"
        }))
        .unwrap();
        s.apply(update, SourceType::Postgresql).unwrap();
        assert_eq!(s.excluded_tables, ["secrets", "hr.staff"]);
        assert!(!s.include_sample_values);
        assert_eq!(s.introspect_options().sample_values_per_column, 0);
        assert_eq!(s.row_filter_sql.as_deref(), Some("region = 'EU'"));
        assert!(!s.sensitive_column_patterns.is_empty(), "untouched fields stay");

        // A bad filter changes nothing, not even the valid fields sent with it.
        let before = s.clone();
        let update: PrivacyUpdate =
            serde_json::from_value(json!({"excluded_schemas": ["x"], "row_filter_sql": "1; DROP TABLE t"})).unwrap();
        let problems = s.apply(update, SourceType::Postgresql).unwrap_err();
        assert_eq!(problems[0].0, "row_filter_sql");
        assert_eq!(s, before);

        let update: PrivacyUpdate = serde_json::from_value(json!({"row_filter_sql": null})).unwrap();
        assert_eq!(update.row_filter_sql, Some(None));
        s.apply(update, SourceType::Postgresql).unwrap();
        assert_eq!(s.row_filter_sql, None);
        assert!(serde_json::from_value::<PrivacyUpdate>(json!({"excluded_table": ["x"]})).is_err());
        assert_eq!(PrivacySettings::from_stored(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn row_filters_are_one_read_only_condition() {
        for ok in [
            "region = 'EU'",
            "tenant_id IN (1, 2, 3) AND NOT deleted",
            "customer_id IN (SELECT id FROM allowed_customers)",
            "note <> 'please delete; me'",
            "\"update\" = 1",
        ] {
            assert!(validate_row_filter(ok, SourceType::Postgresql).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1; DROP TABLE t",
            "a = 1;",
            "id IN (SELECT id FROM t FOR UPDATE)",
            "a = 1 b = 2",
            "a = (DELETE FROM t RETURNING 1)",
            "1",
            "x = 1) OR (1 = 1",
            "a = 1 -- trailing",
        ] {
            let r = validate_row_filter(bad, SourceType::Postgresql);
            if bad == "a = 1 -- trailing" {
                // A comment is harmless: the wrapper puts a newline after nothing it could hide.
                assert!(r.is_ok(), "{bad}");
                continue;
            }
            assert!(r.is_err(), "{bad} was accepted");
        }
        assert!(validate_row_filter("`region` = 'EU'", SourceType::Mysql).is_ok());
    }

    #[test]
    fn masking_uses_the_policy() {
        let policy =
            PrivacySettings { excluded_columns: vec!["customers.notes".into()], ..PrivacySettings::default() }.policy();
        let mut rows = vec![vec![json!(1), json!("a@b.c"), json!("vip"), json!(null)]];
        mask_results(&policy, &["id", "Contact_Email", "notes", "phone"], &mut rows);
        assert_eq!(rows[0], vec![json!(1), json!("[REDACTED]"), json!("[REDACTED]"), json!(null)]);
    }

    #[test]
    fn row_filter_wraps_and_keeps_limits_outside() {
        let f = "region = 'EU'";
        assert_eq!(
            apply_row_filter("SELECT * FROM orders;", f, Flavor::PostgreSQL),
            "SELECT * FROM (\nSELECT * FROM orders\n) AS _quarry_q WHERE (region = 'EU')"
        );
        assert_eq!(
            apply_row_filter("SELECT id, region FROM orders ORDER BY id DESC LIMIT 10", f, Flavor::PostgreSQL),
            "SELECT * FROM (\nSELECT id, region FROM orders\n) AS _quarry_q WHERE (region = 'EU') ORDER BY id DESC LIMIT 10"
        );
        assert_eq!(
            apply_row_filter("SELECT o.id, o.region FROM orders o ORDER BY o.id LIMIT 5 OFFSET 5", f, Flavor::SQLite),
            "SELECT * FROM (\nSELECT o.id, o.region FROM orders o\n) AS _quarry_q WHERE (region = 'EU') ORDER BY id LIMIT 5 OFFSET 5"
        );
        assert_eq!(
            apply_row_filter("SELECT id, region FROM t ORDER BY 1 LIMIT 3, 4", f, Flavor::MariaDB),
            "SELECT * FROM (\nSELECT id, region FROM t\n) AS _quarry_q WHERE (region = 'EU') ORDER BY 1 LIMIT 3, 4"
        );
        // An order on something that is not an output stays inside; the limit still moves.
        let sql = apply_row_filter(
            "SELECT region, COUNT(*) AS n FROM orders GROUP BY region ORDER BY COUNT(*) DESC LIMIT 3",
            f,
            Flavor::PostgreSQL,
        );
        assert_eq!(
            sql,
            "SELECT * FROM (\nSELECT region, COUNT(*) AS n FROM orders GROUP BY region ORDER BY COUNT(*) DESC\n) \
             AS _quarry_q WHERE (region = 'EU') LIMIT 3"
        );
        // A trailing comment cannot hide the filter.
        let sql = apply_row_filter("SELECT * FROM orders -- all of them", f, Flavor::PostgreSQL);
        assert!(sql.contains("all of them\n) AS _quarry_q WHERE (region = 'EU')"), "{sql}");
        // Breaking out of the wrapper fails closed.
        let sql = apply_row_filter("SELECT * FROM orders) AS x, (SELECT 1", f, Flavor::PostgreSQL);
        assert_eq!(sql, unfilterable());
        assert_eq!(apply_row_filter("SELECT 1; SELECT 2", f, Flavor::SQLite), unfilterable());
        assert_eq!(apply_row_filter("SELECT 1", "  ", Flavor::SQLite), "SELECT 1");
    }

    #[tokio::test]
    async fn filtered_queries_run_on_sqlite() {
        use crate::db::{ConnectOptions, Database, DatabaseUrl, ExecOptions};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}?mode=rwc", path.display())).await.unwrap();
            sqlx::query("CREATE TABLE orders (id INTEGER, region TEXT)").execute(&pool).await.unwrap();
            sqlx::query("INSERT INTO orders VALUES (1,'EU'),(2,'US'),(3,'EU'),(4,'EU'),(5,'US')")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        let url = DatabaseUrl::parse(&format!("sqlite:{}", path.display())).unwrap();
        let db = Database::connect(&url, &ConnectOptions::default()).await.unwrap();
        let sql = apply_row_filter(
            "SELECT id, region FROM orders ORDER BY id DESC LIMIT 2 -- newest",
            "region = 'EU'",
            Flavor::SQLite,
        );
        let rs = db.execute_read_only(&sql, &ExecOptions::default()).await.unwrap();
        assert_eq!(rs.rows, vec![vec![json!(4), json!("EU")], vec![json!(3), json!("EU")]]);
    }
}
