//! The `validate` pipeline: tokenize, refuse what the tokens alone already show (several
//! statements, a non-query statement keyword, constructs the parser cannot read such as
//! `INTO OUTFILE`), parse, check the one statement and everything inside it, then apply the
//! row limit and print the statement back.

use core::ops::ControlFlow;

use sqlparser::ast::{
    DescribeAlias, Expr, Query, Select, SetExpr, Spanned, Statement, UtilityOption, VisitMut,
    VisitorMut,
};
use sqlparser::parser::{Parser, ParserError, ParserOptions};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::analyze::{Finding, analyze};
use crate::limit::apply_row_limit;
use crate::names::{LineIndex, location_in_message, table_allowed};
use crate::{Dialect, Policy, StatementKind, Validated, Violation};

/// How many allowed tables a `table-not-allowed` message lists before cutting the list short.
const LISTED_TABLES: usize = 40;

/// The most operator tokens a statement may hold. The parser builds left-deep trees for chains
/// such as `a + b + c …`, `x OR y OR …` or `… UNION … UNION …` without counting their depth,
/// and printing, walking and dropping such a tree recurses once per link: measured in the
/// host (1 MiB wasm stack), 2 000 links pass and 4 000 overflow. Nesting through parentheses
/// is bounded by the parser itself (depth 50).
const MAX_OPERATORS: usize = 1000;

/// Accept exactly one read-only query written for dialect `D`, or say why not.
///
/// On success the statement is printed back by the parser with `policy.row_limit` applied (see
/// the crate docs for the rules). On refusal every violation found is returned, each with a
/// stable code, a message an LLM can repair its query from, and a byte offset when known.
pub fn validate<D: Dialect>(sql: &str, policy: &Policy) -> Result<Validated, Vec<Violation>> {
    let lines = LineIndex::new(sql);
    check::<D>(sql, policy).map_err(|findings| {
        let mut violations: Vec<Violation> = Vec::with_capacity(findings.len());
        for f in findings {
            // The same table or function used twice is one thing to fix, not two.
            if !violations
                .iter()
                .any(|v| v.code == f.code && v.message == f.message)
            {
                violations.push(Violation {
                    code: f.code.to_string(),
                    message: f.message,
                    offset: f.at.and_then(|at| lines.offset(at)),
                });
            }
        }
        violations
    })
}

fn finding(code: &'static str, message: String, at: Option<Location>) -> Finding {
    Finding { code, message, at }
}

fn check<D: Dialect>(sql: &str, policy: &Policy) -> Result<Validated, Vec<Finding>> {
    let dialect = D::Parser::default();
    // Unescaping is off so that string literals print back exactly as written: with it on,
    // MySQL's `'a\\b'` would come back as `'a\b'`, a different string.
    let tokens = Tokenizer::new(&dialect, sql)
        .with_unescape(false)
        .tokenize_with_location()
        .map_err(|e| vec![parse_error::<D>(&e.to_string(), Some(e.location))])?;

    let findings = check_tokens::<D>(&tokens);
    if !findings.is_empty() {
        return Err(findings);
    }
    let positions = KeywordPositions::find(&tokens);

    let mut statements = Parser::new(&dialect)
        .with_options(ParserOptions::new().with_unescape(false))
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| {
            let message = match e {
                ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
                ParserError::RecursionLimitExceeded => "the query is nested too deeply".into(),
            };
            let at = location_in_message(&message);
            vec![parse_error::<D>(&message, at)]
        })?;

    // The token checks already refused empty input and several statements; the parser agrees
    // unless it reads the tokens differently, so check again rather than trust it.
    let mut statement = match statements.len() {
        1 => statements.remove(0),
        0 => return Err(vec![empty()]),
        _ => return Err(vec![multiple_statements(Some(statements[1].span().start))]),
    };

    let mut warnings = Vec::new();
    let (kind, tables) = match &mut statement {
        Statement::Query(query) => {
            let tables = check_query::<D>(query, policy, &positions)?;
            if let Some(limit) = policy.row_limit {
                apply_row_limit(query, limit, &mut warnings);
            }
            (query_kind(query), tables)
        }
        Statement::Explain {
            describe_alias,
            analyze,
            options,
            statement: inner,
            ..
        } => {
            let tables =
                check_explain::<D>(*analyze, options.as_deref(), inner, policy, &positions)?;
            // MySQL's `DESCRIBE SELECT …` is `EXPLAIN SELECT …`; print the form every engine
            // (and the host) reads as EXPLAIN.
            *describe_alias = DescribeAlias::Explain;
            (StatementKind::Explain, tables)
        }
        Statement::ExplainTable { table_name, .. } => {
            return Err(vec![finding(
                "not-a-query",
                format!(
                    "Describing a table (`{table_name}`) is not a query and is not run by Quarry. \
                     Use the schema given in the prompt, or SELECT from information_schema.columns."
                ),
                Some(table_name.span().start),
            )]);
        }
        other => {
            return Err(vec![not_read_only(
                &first_word(&other.to_string()),
                Some(other.span().start),
            )]);
        }
    };

    let mut stripper = HintStripper { stripped: false };
    let _ = statement.visit(&mut stripper);
    if stripper.stripped {
        warnings.push("optimizer hints (/*+ … */) removed".into());
    }

    Ok(Validated {
        sql: statement.to_string(),
        kind,
        tables,
        warnings,
    })
}

/// Where some keywords appear in the input: violations found in the tree for them carry no
/// position of their own.
struct KeywordPositions {
    /// `FOR UPDATE` or `FOR SHARE`.
    lock: Option<Location>,
    /// `ANALYZE` (of `EXPLAIN ANALYZE`).
    analyze: Option<Location>,
}

impl KeywordPositions {
    fn find(tokens: &[TokenWithSpan]) -> Self {
        let significant: Vec<&TokenWithSpan> = tokens
            .iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        Self {
            lock: find_words(&significant, &["FOR", "UPDATE"])
                .or_else(|| find_words(&significant, &["FOR", "SHARE"])),
            analyze: find_words(&significant, &["ANALYZE"]),
        }
    }
}

/// Check `EXPLAIN …` (its `ANALYZE` flag, its PostgreSQL-style options, the statement it
/// explains): it must not run the statement, and must explain a query that would pass on its
/// own. No row limit: EXPLAIN returns a plan, not the query's rows. Returns the query's tables.
fn check_explain<D: Dialect>(
    analyze: bool,
    options: Option<&[UtilityOption]>,
    statement: &Statement,
    policy: &Policy,
    positions: &KeywordPositions,
) -> Result<Vec<String>, Vec<Finding>> {
    let mut findings = Vec::new();
    let analyze_option = options.unwrap_or_default().iter().any(|o| {
        o.name.value.eq_ignore_ascii_case("analyze") && !o.arg.as_ref().is_some_and(is_off)
    });
    if analyze || analyze_option {
        findings.push(finding(
            "explain-analyze",
            "`EXPLAIN ANALYZE` runs the statement and is not allowed. Use plain `EXPLAIN` \
             (without ANALYZE), or send just the SELECT."
                .into(),
            positions.analyze,
        ));
    }
    let tables = match statement {
        Statement::Query(query) => match check_query::<D>(query, policy, positions) {
            Ok(tables) => tables,
            Err(more) => {
                findings.extend(more);
                Vec::new()
            }
        },
        other => {
            findings.push(finding(
                "not-read-only",
                format!(
                    "EXPLAIN is only allowed for a query, not for `{}`. Explain a SELECT \
                     instead, or send just the SELECT.",
                    first_word(&other.to_string())
                ),
                Some(other.span().start),
            ));
            Vec::new()
        }
    };
    if findings.is_empty() {
        Ok(tables)
    } else {
        Err(findings)
    }
}

/// Check one query (the statement, or the statement an `EXPLAIN` explains) and return the
/// tables it reads, lower-case, deduplicated, in the order they appear in the text.
fn check_query<D: Dialect>(
    query: &Query,
    policy: &Policy,
    positions: &KeywordPositions,
) -> Result<Vec<String>, Vec<Finding>> {
    // `WITH x AS (…) DELETE …`: the statement itself modifies data.
    if let SetExpr::Insert(inner)
    | SetExpr::Update(inner)
    | SetExpr::Delete(inner)
    | SetExpr::Merge(inner) = query.body.as_ref()
    {
        return Err(vec![not_read_only(
            &first_word(&inner.to_string()),
            Some(inner.span().start),
        )]);
    }

    let analysis = analyze(query, D::DENIED_FUNCTIONS, &policy.denied_functions);
    let mut findings = analysis.findings;
    for f in &mut findings {
        if f.code == "locking-clause" && f.at.is_none() {
            f.at = positions.lock;
        }
    }

    let mut references = analysis.tables;
    // Text order rather than walk order (the walk visits the select list before FROM); names
    // without a known position go last.
    references.sort_by_key(|(at, _)| (at.line == 0, at.line, at.column));

    if let Some(allowed) = &policy.allowed_tables {
        for (at, parts) in &references {
            if !allowed
                .iter()
                .any(|entry| table_allowed(parts, entry, D::DEFAULT_SCHEMAS))
            {
                findings.push(table_not_allowed(&parts.join("."), allowed, *at));
            }
        }
    }
    if !findings.is_empty() {
        return Err(findings);
    }

    let mut tables: Vec<String> = Vec::new();
    for (_, parts) in references {
        let name = parts.join(".");
        if !tables.contains(&name) {
            tables.push(name);
        }
    }
    Ok(tables)
}

fn query_kind(query: &Query) -> StatementKind {
    if query.with.is_some() {
        return StatementKind::WithSelect;
    }
    match query.body.as_ref() {
        SetExpr::SetOperation { .. } => StatementKind::SetOperation,
        SetExpr::Values(_) => StatementKind::Values,
        SetExpr::Query(inner) => query_kind(inner),
        // Select, `TABLE t`; data-modifying bodies were refused by the walk.
        _ => StatementKind::Select,
    }
}

/// `EXPLAIN (ANALYZE false)`, `(ANALYZE off)`, `(ANALYZE 0)` do not run the statement.
fn is_off(arg: &Expr) -> bool {
    let text = arg.to_string().to_lowercase();
    matches!(
        text.trim_matches(|c| c == '\'' || c == '"'),
        "false" | "off" | "0"
    )
}

/// Removes MySQL optimizer hints from every `SELECT`: `MAX_EXECUTION_TIME` or `SET_VAR` could
/// override the limits the host sets for the session.
struct HintStripper {
    stripped: bool,
}

impl VisitorMut for HintStripper {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        if !select.optimizer_hints.is_empty() {
            select.optimizer_hints.clear();
            self.stripped = true;
        }
        ControlFlow::Continue(())
    }
}

/// Refusals visible in the tokens alone. Run before parsing so that the answer does not depend
/// on whether the parser happens to support a statement (`DO`, `LOAD DATA`, `INTO OUTFILE`, …).
fn check_tokens<D: Dialect>(tokens: &[TokenWithSpan]) -> Vec<Finding> {
    let significant: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
        .collect();
    if significant.iter().all(|t| t.token == Token::SemiColon) {
        return vec![empty()];
    }

    let mut findings = Vec::new();

    // Checked first and alone: refusing here keeps a too-deep tree from ever being built.
    let operators = significant.iter().filter(|t| is_operator(t)).count();
    if operators > MAX_OPERATORS {
        return vec![finding(
            "too-complex",
            format!(
                "The query is too long to check ({operators} operators; at most \
                 {MAX_OPERATORS}). Simplify it: use IN (…) instead of long OR chains, and \
                 compute in fewer steps."
            ),
            None,
        )];
    }

    // Anything but more `;` after the first `;` is a second statement.
    if let Some(first_semicolon) = significant.iter().position(|t| t.token == Token::SemiColon)
        && let Some(next) = significant[first_semicolon..]
            .iter()
            .find(|t| t.token != Token::SemiColon)
    {
        findings.push(multiple_statements(Some(next.span.start)));
    }

    for t in tokens {
        if let Token::Whitespace(Whitespace::MultiLineComment(comment)) = &t.token {
            for (prefix, engine) in D::EXECUTABLE_COMMENTS {
                if comment.starts_with(prefix) {
                    findings.push(finding(
                        "executable-comment",
                        format!(
                            "`/*{prefix} … */` comments are executed by {engine} and are not \
                             allowed. Remove the comment and write the SQL plainly."
                        ),
                        Some(t.span.start),
                    ));
                }
            }
        }
    }

    if let Some(first) = significant.first()
        && let Some(keyword) = unquoted_word(first)
        && let Some(f) = statement_keyword(&keyword, first.span.start)
    {
        findings.push(f);
    }

    for pair in significant.windows(2) {
        if is_word(pair[0], "INTO")
            && let Some(target) = ["OUTFILE", "DUMPFILE"]
                .into_iter()
                .find(|k| is_word(pair[1], k))
        {
            findings.push(finding(
                "into-outfile",
                format!(
                    "`INTO {target}` writes a file on the database server and is not allowed. \
                     Remove the INTO clause; Quarry returns the result rows itself."
                ),
                Some(pair[0].span.start),
            ));
        }
    }
    // Locking forms the parser cannot read; `FOR UPDATE` / `FOR SHARE` are found in the tree
    // (a column named `update` makes the token pair ambiguous in PostgreSQL).
    for words in [
        &["FOR", "NO", "KEY", "UPDATE"][..],
        &["FOR", "KEY", "SHARE"],
        &["LOCK", "IN", "SHARE", "MODE"],
    ] {
        if let Some(at) = find_words(&significant, words) {
            findings.push(finding(
                "locking-clause",
                format!(
                    "`{}` takes row locks and is not allowed. Remove the locking clause; a plain \
                     SELECT reads the same rows.",
                    words.join(" ")
                ),
                Some(at),
            ));
        }
    }
    findings
}

/// Where the unquoted keywords `words` first follow each other, ignoring whitespace and comments.
fn find_words(significant: &[&TokenWithSpan], words: &[&str]) -> Option<Location> {
    significant
        .windows(words.len())
        .find(|w| w.iter().zip(words).all(|(t, k)| is_word(t, k)))
        .map(|w| w[0].span.start)
}

/// Whether a token can link two expressions or queries into a chain: every symbol except
/// punctuation, and the keywords that combine expressions or queries.
fn is_operator(token: &TokenWithSpan) -> bool {
    match &token.token {
        Token::Word(w) => {
            w.quote_style.is_none() && OPERATOR_WORDS.iter().any(|k| upper_eq(&w.value, k))
        }
        Token::Number(..)
        | Token::Char(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::Placeholder(_)
        | Token::Comma
        | Token::LParen
        | Token::RParen
        | Token::Period
        | Token::SemiColon
        | Token::Whitespace(_)
        | Token::EOF => false,
        _ => true,
    }
}

/// Keywords that link expressions or queries into a chain (see [`is_operator`]).
const OPERATOR_WORDS: &[&str] = &[
    "AND",
    "OR",
    "XOR",
    "NOT",
    "IS",
    "LIKE",
    "ILIKE",
    "IN",
    "BETWEEN",
    "COLLATE",
    "AT",
    "UNION",
    "INTERSECT",
    "EXCEPT",
    "MINUS",
];

/// The upper-cased text of an unquoted word token (quoted identifiers are names, not keywords).
fn unquoted_word(token: &TokenWithSpan) -> Option<String> {
    match &token.token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_uppercase()),
        _ => None,
    }
}

/// Whether `token` is the unquoted word `keyword` (given in upper case): the same answer as
/// comparing [`unquoted_word`], without allocating. These checks run over every token several
/// times per call, so they must not allocate.
fn is_word(token: &TokenWithSpan, keyword: &str) -> bool {
    match &token.token {
        Token::Word(w) => w.quote_style.is_none() && upper_eq(&w.value, keyword),
        _ => false,
    }
}

/// `word.to_uppercase() == upper` for an upper-case `upper`. ASCII words (nearly all) compare
/// in place; others take the Unicode path, because characters such as `ı` upper-case to ASCII.
fn upper_eq(word: &str, upper: &str) -> bool {
    if word.is_ascii() {
        word.eq_ignore_ascii_case(upper)
    } else {
        word.to_uppercase() == upper
    }
}

fn first_word(printed: &str) -> String {
    printed
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_uppercase()
}

/// What kind of statement a leading keyword starts, when it can never start a query.
#[derive(Clone, Copy)]
enum Class {
    Dml,
    Ddl,
    Dcl,
    Transaction,
    Session,
    Server,
    Pragma,
    Metadata,
}

/// Leading keywords that can never start a query, by what the statement does.
#[rustfmt::skip]
const STATEMENT_KEYWORDS: &[(Class, &[&str])] = &[
    (Class::Dml, &["INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT"]),
    (Class::Ddl, &[
        "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT", "REINDEX", "CLUSTER", "VACUUM",
        "ANALYZE", "ANALYSE", "REFRESH", "OPTIMIZE", "REPAIR",
    ]),
    (Class::Dcl, &["GRANT", "REVOKE", "DENY", "REASSIGN", "SECURITY"]),
    (Class::Transaction, &[
        "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "XA",
    ]),
    (Class::Session, &[
        "SET", "RESET", "USE", "DISCARD", "PREPARE", "EXECUTE", "EXEC", "DEALLOCATE", "DECLARE",
        "FETCH", "MOVE", "CLOSE", "OPEN", "LISTEN", "UNLISTEN", "NOTIFY", "LOCK", "UNLOCK",
        "HANDLER",
    ]),
    (Class::Server, &[
        "COPY", "LOAD", "UNLOAD", "INSTALL", "UNINSTALL", "ATTACH", "DETACH", "IMPORT", "CALL",
        "DO", "KILL", "SHUTDOWN", "FLUSH", "PURGE", "CHANGE", "CHECKSUM", "CHECKPOINT", "BINLOG",
        "CACHE", "UNCACHE", "SIGNAL", "RESIGNAL", "RESTART", "CHECK",
    ]),
    (Class::Pragma, &["PRAGMA"]),
    (Class::Metadata, &["SHOW", "HELP"]),
];

fn statement_keyword(keyword: &str, at: Location) -> Option<Finding> {
    let (class, _) = STATEMENT_KEYWORDS
        .iter()
        .find(|(_, words)| words.contains(&keyword))?;
    let (code, message) = match class {
        Class::Dml => (
            "not-read-only",
            format!(
                "`{keyword}` changes data and is not allowed. Quarry only runs one read-only \
                 query: write a SELECT (or WITH … SELECT) that reads what the question needs."
            ),
        ),
        Class::Ddl => (
            "not-read-only",
            format!(
                "`{keyword}` changes the database's schema or storage and is not allowed. Quarry \
                 only runs one read-only query: write a SELECT over the existing tables."
            ),
        ),
        Class::Dcl => (
            "not-read-only",
            format!("`{keyword}` changes permissions and is not allowed. Write a SELECT instead."),
        ),
        Class::Transaction => (
            "not-read-only",
            format!(
                "Transaction control (`{keyword}`) is not allowed: Quarry runs each query in its \
                 own read-only transaction. Send only the SELECT statement."
            ),
        ),
        Class::Session => (
            "not-read-only",
            format!(
                "`{keyword}` changes session state and is not allowed. Send only a SELECT; \
                 qualify table names (schema.table) instead of switching schema or settings."
            ),
        ),
        Class::Server => (
            "not-read-only",
            format!(
                "`{keyword}` runs server-side code, touches files or administers the server, and \
                 is not allowed. Write a single SELECT that reads the data instead."
            ),
        ),
        Class::Pragma => (
            "not-read-only",
            "`PRAGMA` statements are not allowed (many of them change the database). To read \
             schema information use a pragma table-valued function instead, for example \
             `SELECT * FROM pragma_table_info('t')`."
                .into(),
        ),
        Class::Metadata => (
            "not-a-query",
            format!(
                "`{keyword}` is not a query and is not run by Quarry. Use the schema given in the \
                 prompt, or SELECT from information_schema (for example \
                 information_schema.columns)."
            ),
        ),
    };
    Some(finding(code, message, Some(at)))
}

fn not_read_only(keyword: &str, at: Option<Location>) -> Finding {
    statement_keyword(keyword, at.unwrap_or_else(Location::empty)).unwrap_or_else(|| {
        finding(
            "not-read-only",
            format!(
                "`{keyword}` is not a query and is not allowed. Quarry only runs one read-only \
                 query: SELECT, WITH … SELECT, VALUES, or EXPLAIN of one of those."
            ),
            at,
        )
    })
}

fn parse_error<D: Dialect>(message: &str, at: Option<Location>) -> Finding {
    finding(
        "parse-error",
        format!(
            "The SQL could not be parsed as {} SQL: {message}. Fix the syntax and send one \
             {} SELECT statement.",
            D::ENGINE,
            D::ENGINE
        ),
        at,
    )
}

fn empty() -> Finding {
    finding(
        "empty",
        "The query is empty (only whitespace, comments or `;`). Send one SELECT statement.".into(),
        None,
    )
}

fn multiple_statements(at: Option<Location>) -> Finding {
    finding(
        "multiple-statements",
        "Only one statement is allowed: remove everything after the first `;` and send a single \
         SELECT query."
            .into(),
        at,
    )
}

fn table_not_allowed(name: &str, allowed: &[String], at: Location) -> Finding {
    let message = if allowed.is_empty() {
        format!(
            "Table `{name}` is not available: no tables may be read on this connection. Answer \
             without reading tables, or say the question cannot be answered."
        )
    } else {
        let list: Vec<&str> = allowed
            .iter()
            .take(LISTED_TABLES)
            .map(String::as_str)
            .collect();
        let more = allowed.len().saturating_sub(LISTED_TABLES);
        let mut listed = list.join(", ");
        if more > 0 {
            listed.push_str(&format!(", and {more} more"));
        }
        format!("Table `{name}` is not available to this query. Use only these tables: {listed}.")
    };
    finding("table-not-allowed", message, Some(at))
}
