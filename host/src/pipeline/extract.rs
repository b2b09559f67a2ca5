//! Taking the SQL out of what an LLM wrote.
//!
//! Models answer in many shapes: the JSON object the prompt asked for, a fenced ```sql block,
//! bare SQL with a sentence before or after it, or any of those after a `<think>…</think>`
//! section. [`extract`] finds the query (and the model's one-line plan, when it gave one) in all
//! of them, and says clearly when there is none.

use serde_json::Value;

/// The SQL and plan found in a model's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The query, trimmed, without a trailing semicolon.
    pub sql: String,
    /// The model's short description of the query, when it gave one.
    pub description: Option<String>,
}

/// Why no SQL could be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The answer was empty once reasoning was removed.
    #[error("the model's answer was empty")]
    Empty,
    /// The answer holds no SQL statement.
    #[error("the model's answer contains no SQL query: {0}")]
    NoSql(String),
    /// The model said the question cannot be answered (`"sql": ""` with a reason, as the prompt
    /// asks it to); asking again would only repeat that.
    #[error("{0}")]
    Declined(String),
}

/// Keys under which models put the query in a JSON answer, most specific first.
const SQL_KEYS: &[&str] = &["sql", "sqlQuery", "sql_query", "query", "SQL"];
/// Keys under which models put the plan.
const DESCRIPTION_KEYS: &[&str] = &["description", "queryDescription", "query_description", "plan", "explanation"];
/// Words a SQL query starts with.
const SQL_STARTS: &[&str] =
    &["select", "with", "values", "explain", "(", "table", "show", "insert", "update", "delete"];

/// Find the SQL in `answer`.
pub fn extract(answer: &str) -> Result<Extracted, ExtractError> {
    let text = strip_reasoning(answer);
    let text = text.trim();
    if text.is_empty() {
        return Err(ExtractError::Empty);
    }
    if let Some(found) = from_json(text) {
        return Ok(found);
    }
    if let Some(found) = from_fences(text) {
        return Ok(found);
    }
    if let Some(sql) = from_bare_text(text) {
        return Ok(Extracted { sql, description: None });
    }
    if let Some(reason) = declined(text) {
        return Err(ExtractError::Declined(reason));
    }
    Err(ExtractError::NoSql(preview(text)))
}

/// The reason of a JSON answer whose SQL is deliberately empty: `{"sql": "", "description": "…"}`.
fn declined(text: &str) -> Option<String> {
    json_objects(text).into_iter().find_map(|object| {
        let map = object.as_object()?;
        let sql = SQL_KEYS.iter().find_map(|k| map.get(*k))?;
        if !sql.as_str().is_some_and(|s| s.trim().is_empty()) {
            return None;
        }
        DESCRIPTION_KEYS
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str))
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
    })
}

/// Remove `<think>…</think>` (and `<thinking>`, `<reasoning>`) sections; an unclosed one at the
/// start hides everything (the model never finished thinking), an unclosed one later is cut.
fn strip_reasoning(answer: &str) -> String {
    let mut out = answer.to_string();
    for tag in ["think", "thinking", "reasoning"] {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        loop {
            let lower = out.to_ascii_lowercase();
            let Some(start) = lower.find(&open) else { break };
            match lower[start..].find(&close) {
                Some(end) => out.replace_range(start..start + end + close.len(), ""),
                None => {
                    out.truncate(start);
                    break;
                }
            }
        }
        // A closing tag with no opening one: the reasoning came before it.
        let lower = out.to_ascii_lowercase();
        if let Some(end) = lower.rfind(&close) {
            out.replace_range(..end + close.len(), "");
        }
    }
    out
}

/// A JSON object anywhere in the text (possibly fenced as ```json) with a SQL key.
fn from_json(text: &str) -> Option<Extracted> {
    let mut candidates = Vec::new();
    for (lang, body) in fenced_blocks(text) {
        if lang.is_empty() || lang == "json" {
            candidates.push(body);
        }
    }
    candidates.push(text.to_string());
    for candidate in candidates {
        for object in json_objects(&candidate) {
            if let Some(found) = from_json_value(&object) {
                return Some(found);
            }
        }
    }
    None
}

fn from_json_value(value: &Value) -> Option<Extracted> {
    let map = value.as_object()?;
    let sql = SQL_KEYS.iter().find_map(|k| map.get(*k).and_then(Value::as_str)).map(clean_sql)?;
    if sql.is_empty() || !looks_like_sql(&sql) {
        return None;
    }
    let description = DESCRIPTION_KEYS
        .iter()
        .find_map(|k| map.get(*k).and_then(Value::as_str))
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    Some(Extracted { sql, description })
}

/// Every balanced `{…}` in `text` that parses as JSON, outermost first.
fn json_objects(text: &str) -> Vec<Value> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            if let Some(end) = matching_brace(bytes, i) {
                if let Ok(v) = serde_json::from_str::<Value>(&text[i..=end]) {
                    found.push(v);
                    i = end + 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    found
}

/// Index of the `}` closing the `{` at `start`, skipping braces inside JSON strings.
fn matching_brace(bytes: &[u8], start: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// ```lang … ``` blocks as (lower-case language, body).
fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let line_end = after.find('\n').unwrap_or(after.len());
        let lang = after[..line_end].trim().to_ascii_lowercase();
        let body_start = (line_end + 1).min(after.len());
        let body = &after[body_start..];
        match body.find("```") {
            Some(end) => {
                blocks.push((lang, body[..end].to_string()));
                rest = &body[end + 3..];
            }
            None => {
                // An unterminated fence (the answer was cut): take the rest.
                blocks.push((lang, body.to_string()));
                break;
            }
        }
    }
    blocks
}

/// The first fenced block marked sql (or unmarked but SQL-looking); the text before the block,
/// when short, is the plan.
fn from_fences(text: &str) -> Option<Extracted> {
    let blocks = fenced_blocks(text);
    let pick = blocks
        .iter()
        .find(|(lang, body)| {
            matches!(lang.as_str(), "sql" | "postgresql" | "postgres" | "mysql" | "sqlite" | "pgsql")
                && !body.trim().is_empty()
        })
        .or_else(|| blocks.iter().find(|(lang, body)| lang.is_empty() && looks_like_sql(body)))?;
    let sql = clean_sql(&pick.1);
    if sql.is_empty() {
        return None;
    }
    let before = text.split("```").next().unwrap_or("").trim();
    let description =
        (!before.is_empty() && before.len() <= 300).then(|| before.trim_end_matches(':').trim().to_string());
    Some(Extracted { sql, description })
}

/// Bare SQL: from the first line that starts like a query to the end of that statement.
fn from_bare_text(text: &str) -> Option<String> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if starts_like_sql(trimmed) {
            let start = offset + (line.len() - trimmed.len());
            let candidate = &text[start..];
            let statement = cut_after_statement(candidate);
            let sql = clean_sql(statement);
            return (!sql.is_empty()).then_some(sql);
        }
        offset += line.len();
    }
    None
}

/// Up to the first `;` outside quotes, or up to a blank line followed by prose.
fn cut_after_statement(text: &str) -> &str {
    let (mut quote, mut prev_newline) = (None::<char>, false);
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                ';' => return &text[..i],
                '\n' if prev_newline => return &text[..i],
                _ => {}
            },
        }
        if c == '\n' {
            prev_newline = true;
        } else if !c.is_whitespace() {
            prev_newline = false;
        }
    }
    text
}

fn starts_like_sql(s: &str) -> bool {
    let lower = s.get(..12.min(s.len())).unwrap_or(s).to_ascii_lowercase();
    SQL_STARTS.iter().any(|kw| {
        lower.starts_with(kw) && (kw == &"(" || lower[kw.len()..].starts_with(|c: char| c.is_whitespace() || c == '('))
    })
}

fn looks_like_sql(s: &str) -> bool {
    starts_like_sql(s.trim_start())
}

/// Trim, drop trailing semicolons, and drop a leading `sql` label some models write.
fn clean_sql(s: &str) -> String {
    let mut sql = s.trim();
    if let Some(rest) = sql.strip_prefix("sql\n") {
        sql = rest.trim();
    }
    sql.trim_end_matches(|c: char| c == ';' || c.is_whitespace()).to_string()
}

fn preview(text: &str) -> String {
    let mut p: String = text.chars().take(120).collect();
    if text.chars().count() > 120 {
        p.push('…');
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_sql_with_a_reason_is_a_refusal_to_answer() {
        let answer = r#"{"description": "The schema has no salaries.", "sql": ""}"#;
        assert_eq!(extract(answer), Err(ExtractError::Declined("The schema has no salaries.".into())));
        assert!(matches!(extract(r#"{"sql": ""}"#), Err(ExtractError::NoSql(_))), "no reason: not a refusal");
    }

    fn sql_of(answer: &str) -> String {
        extract(answer).unwrap_or_else(|e| panic!("{e}: {answer}")).sql
    }

    #[test]
    fn reads_the_json_object_the_prompt_asks_for() {
        let got = extract(r#"{"description": "Count orders", "sql": "SELECT count(*) FROM orders;"}"#).expect("sql");
        assert_eq!(got.sql, "SELECT count(*) FROM orders");
        assert_eq!(got.description.as_deref(), Some("Count orders"));
        assert_eq!(sql_of(r#"{"queryDescription":"x","sqlQuery":"select 1"}"#), "select 1");
    }

    #[test]
    fn reads_json_inside_a_fence_or_prose_with_braces_in_strings() {
        let answer = "Sure! Here you go:\n```json\n{\"sql\": \"SELECT '{not json}' AS x FROM t\", \"description\": \"braces\"}\n```\nHope it helps.";
        assert_eq!(sql_of(answer), "SELECT '{not json}' AS x FROM t");
    }

    #[test]
    fn reads_a_fenced_sql_block_and_the_plan_before_it() {
        let got = extract("Count the paid orders:\n```sql\nSELECT count(*)\nFROM orders\nWHERE status = 'paid';\n```\nThis counts them.").expect("sql");
        assert_eq!(got.sql, "SELECT count(*)\nFROM orders\nWHERE status = 'paid'");
        assert_eq!(got.description.as_deref(), Some("Count the paid orders"));
    }

    #[test]
    fn skips_reasoning_sections() {
        let answer = "<think>Maybe SELECT * FROM wrong_table? No.</think>\n```sql\nSELECT name FROM customers\n```";
        assert_eq!(sql_of(answer), "SELECT name FROM customers");
        assert_eq!(sql_of("I thought hard about it.</think>SELECT 2"), "SELECT 2");
        assert_eq!(extract("<think>SELECT 1 FROM never_finished"), Err(ExtractError::Empty));
    }

    #[test]
    fn reads_bare_sql_with_prose_around_it() {
        assert_eq!(
            sql_of("The query is:\n\nSELECT id FROM t WHERE note = 'a;b';\n\nIt returns ids."),
            "SELECT id FROM t WHERE note = 'a;b'"
        );
        assert_eq!(sql_of("WITH x AS (SELECT 1) SELECT * FROM x"), "WITH x AS (SELECT 1) SELECT * FROM x");
        assert_eq!(sql_of("select a\nfrom b\n\nThis selects a."), "select a\nfrom b");
    }

    #[test]
    fn keeps_non_select_statements_for_the_validator_to_refuse() {
        assert_eq!(sql_of("```sql\nDELETE FROM t\n```"), "DELETE FROM t");
    }

    #[test]
    fn says_so_when_there_is_no_sql() {
        assert!(matches!(extract("I cannot answer that from this schema."), Err(ExtractError::NoSql(_))));
        assert_eq!(extract("   "), Err(ExtractError::Empty));
        assert!(matches!(extract(r#"{"answer": "no idea"}"#), Err(ExtractError::NoSql(_))));
    }

    #[test]
    fn an_unterminated_fence_still_yields_its_sql() {
        assert_eq!(sql_of("```sql\nSELECT 1 FROM t"), "SELECT 1 FROM t");
    }
}
