//! The `offline` provider's translator: a deterministic, schema-aware question → SQL engine for
//! the common shapes of questions, so Quarry can answer without any LLM.
//!
//! It reads the same chat a model would get from Quarry's pipeline (`host/src/pipeline/prompt.rs`):
//! the system message names the engine ("… about a PostgreSQL database …") and carries the
//! schema as DDL-like text (`host/src/schema/render.rs`); the last user message is the question.
//! It answers in the JSON shape the prompt asks for, `{"description": …, "sql": …}`, with an
//! empty `sql` and a clear description when it cannot answer.
//!
//! What it understands: counts ("how many X"), lists with filters ("customers in Germany",
//! "orders with status delivered", "products over 100"), top-N ("top 5 products by price",
//! "which customer spent the most"), sums/averages/min/max of a column, per group ("average
//! salary per department", "total sales by country", "orders per month"), date ranges ("last
//! 30 days", "in 2024", "this month", "last year") and joins along foreign keys. Nothing about
//! any particular schema is built in: tables, columns, keys and sample values all come from the
//! prompt. A question with any word it cannot place is refused rather than guessed at.
//!
//! Modules: [`words`] (tokens, stems, synonyms), [`schema`] (the prompt's DDL back into
//! tables), [`read`] (question → recognised items), [`plan`] (items → query), [`query`] (query
//! → SQL, joins), [`dialect`] (quoting and date arithmetic per engine).

pub mod dialect;
pub mod plan;
pub mod query;
pub mod read;
pub mod schema;
pub mod words;

use dialect::Dialect;
use serde_json::json;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions, the schema.
    System,
    /// The question, or repair feedback.
    User,
    /// An earlier answer.
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// What it says.
    pub content: String,
}

/// The translator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// One sentence: what the query does, or why there is none.
    pub description: String,
    /// The query, or `None` when the question cannot be answered offline.
    pub sql: Option<String>,
}

impl Answer {
    /// The answer as the JSON object Quarry's prompt asks for.
    pub fn to_json(&self) -> String {
        json!({"description": self.description, "sql": self.sql.as_deref().unwrap_or("")}).to_string()
    }
}

/// What the offline provider can do, said whenever it declines.
pub const CAPABILITIES: &str = "It understands counts, lists, top-N, sums/averages per group, value filters and date ranges. \
Configure an LLM provider for anything else.";

/// The start of every repair message the pipeline sends (`host/src/pipeline/prompt.rs`), all of
/// which end with the output-format line.
const OUTPUT_FORMAT_START: &str = "Answer with one JSON object and nothing else";

/// Answer a chat as Quarry's pipeline sends it.
pub fn respond(messages: &[Message]) -> Answer {
    let Some(last) = messages.iter().rev().find(|m| m.role == Role::User) else {
        return decline("there is no question in the request");
    };
    let system: String =
        messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n");
    if last.content.contains(OUTPUT_FORMAT_START) {
        return repair(messages, &last.content);
    }
    let dialect = Dialect::from_engine_name(engine_line(&system));
    let schema = schema::parse(&system);
    if schema.tables.is_empty() {
        return decline("the request holds no database schema to work from");
    }
    translate(&schema, dialect, &last.content)
}

/// Translate one question against a schema.
pub fn translate(schema: &schema::Schema, dialect: Dialect, question: &str) -> Answer {
    let tokens = words::tokenize(question);
    if tokens.is_empty() {
        return decline("the question is empty");
    }
    let reading = read::read(schema, &tokens);
    match plan::plan(schema, &reading).and_then(|p| Ok((p.query.sql(schema, dialect)?, p.description))) {
        Ok((sql, description)) => Answer { description, sql: Some(sql) },
        Err(why) => decline(&why),
    }
}

/// The line of the system prompt that names the engine.
fn engine_line(system: &str) -> &str {
    system.lines().find(|l| l.contains("database into")).or_else(|| system.lines().next()).unwrap_or("")
}

/// A repair round: an empty result is kept (the pipeline then keeps the first result); a
/// refused or failing query is not something the translator can fix, so it says so.
fn repair(messages: &[Message], feedback: &str) -> Answer {
    // It declined the first time: say why again (the pipeline shows the last answer).
    if feedback.starts_with("Your answer contained no SQL") {
        let question = messages.iter().rev().find(|m| m.role == Role::User && !m.content.contains(OUTPUT_FORMAT_START));
        if let Some(q) = question {
            let mut first: Vec<Message> = messages.iter().filter(|m| m.role == Role::System).cloned().collect();
            first.push(q.clone());
            return respond(&first);
        }
    }
    if feedback.starts_with("That query ran but returned no rows") {
        let previous = messages.iter().rev().find(|m| m.role == Role::Assistant).and_then(|m| previous_sql(&m.content));
        if let Some(sql) = previous {
            return Answer { description: "No rows is the answer: the same query.".into(), sql: Some(sql) };
        }
    }
    Answer {
        description: format!(
            "The offline provider cannot repair a query (it was told: {}). {CAPABILITIES}",
            feedback.lines().next().unwrap_or("").trim()
        ),
        sql: None,
    }
}

/// The SQL of an earlier answer (`{"sql": "…"}`).
fn previous_sql(content: &str) -> Option<String> {
    let start = content.find('{')?;
    let end = content.rfind('}')?;
    let v: serde_json::Value = serde_json::from_str(content.get(start..=end)?).ok()?;
    v.get("sql").and_then(|s| s.as_str()).filter(|s| !s.trim().is_empty()).map(str::to_string)
}

/// A clear refusal.
fn decline(why: &str) -> Answer {
    // The reason comes first: the pipeline may show only the start of a declined answer.
    Answer {
        description: format!("The offline provider cannot answer this question ({why}). {CAPABILITIES}"),
        sql: None,
    }
}

#[cfg(test)]
mod tests;
