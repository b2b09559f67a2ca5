//! Building what the LLM reads: the system prompt (role, rules, dialect guidance, output format),
//! the schema, verified examples, the session's last turns, and the question — and the repair
//! message that feeds a failed attempt back.

use crate::plugins::bindings::types::{ChatMessage, Role};

/// A verified question→SQL pair shown to the model as an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The question.
    pub question: String,
    /// SQL known to answer it.
    pub sql: String,
}

/// An earlier turn of the same session, so follow-up questions can refer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorTurn {
    /// What the user asked.
    pub question: String,
    /// The SQL that answered it, if any.
    pub sql: Option<String>,
    /// A short summary of the result ("3 rows: …"), if it ran.
    pub result_summary: Option<String>,
}

/// Everything a generation prompt is made of.
#[derive(Debug, Clone)]
pub struct PromptInput<'a> {
    /// The engine's name for the model ("PostgreSQL", "MySQL", "SQLite").
    pub engine: &'a str,
    /// The dialect plugin's notes.
    pub dialect_guidance: &'a str,
    /// The rendered (linked) schema.
    pub schema: &'a str,
    /// What the semantic model says about the tables in scope (display names, value mappings,
    /// metrics, join hints, notes), already rendered.
    pub business_context: Option<&'a str>,
    /// Few-shot examples, most similar first.
    pub examples: &'a [Example],
    /// The session's last turns, oldest first.
    pub history: &'a [PriorTurn],
    /// The question.
    pub question: &'a str,
    /// The row limit the host will apply.
    pub row_limit: u64,
}

/// What went wrong with an attempt, fed back for repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The dialect plugin refused the query; one message per violation.
    Refused(Vec<String>),
    /// The database rejected it.
    DatabaseError(String),
    /// It ran but returned no rows (checked at most once).
    EmptyResult,
    /// No SQL could be found in the answer.
    NoSql(String),
}

/// The output format every generation prompt asks for.
const OUTPUT_FORMAT: &str = "Answer with one JSON object and nothing else: \
{\"description\": \"<one sentence: what the query does>\", \"sql\": \"<the query>\"}";

/// The messages for a first attempt.
pub fn generation_messages(input: &PromptInput<'_>) -> Vec<ChatMessage> {
    let mut system = format!(
        "You translate questions about a {engine} database into one read-only SQL query.\n\
         Rules:\n\
         - Write exactly one SELECT (or WITH … SELECT) statement. Never modify data or schema.\n\
         - Use only the tables and columns in the schema below; quote identifiers only when needed.\n\
         - Return at most {limit} rows; the host applies that limit if you do not.\n\
         - Prefer explicit JOINs on the foreign keys shown; give computed columns clear aliases.\n\
         - If the question cannot be answered from this schema, set \"sql\" to \"\" and say why in \"description\".\n\n\
         {engine} notes:\n{guidance}\n\n\
         Schema:\n{schema}\n",
        engine = input.engine,
        limit = input.row_limit,
        guidance = input.dialect_guidance.trim(),
        schema = input.schema.trim(),
    );
    if let Some(business) = input.business_context {
        system.push_str(&format!("\nBusiness context:\n{}\n", business.trim()));
    }
    if !input.examples.is_empty() {
        system.push_str("\nVerified examples:\n");
        for e in input.examples {
            system.push_str(&format!("Q: {}\nSQL: {}\n", e.question.trim(), e.sql.trim()));
        }
    }
    system.push('\n');
    system.push_str(OUTPUT_FORMAT);

    let mut messages = vec![message(Role::System, system)];
    for turn in input.history {
        messages.push(message(Role::User, turn.question.clone()));
        let mut answer = match &turn.sql {
            Some(sql) => format!("{{\"sql\": {}}}", serde_json::Value::String(sql.clone())),
            None => "(no query was produced)".to_string(),
        };
        if let Some(summary) = &turn.result_summary {
            answer.push_str(&format!("\nResult: {summary}"));
        }
        messages.push(message(Role::Assistant, answer));
    }
    messages.push(message(Role::User, input.question.trim().to_string()));
    messages
}

/// The messages for a repair attempt: the first attempt's conversation, the failed answer, and
/// what was wrong with it.
pub fn repair_messages(previous: &[ChatMessage], failed_sql: Option<&str>, failure: &Failure) -> Vec<ChatMessage> {
    repair_messages_with_result(previous, failed_sql, failure, None)
}

/// [`repair_messages`] plus `result_note`, a description of what the last query that ran
/// returned (its columns and first rows), placed after the feedback.
pub fn repair_messages_with_result(
    previous: &[ChatMessage],
    failed_sql: Option<&str>,
    failure: &Failure,
    result_note: Option<&str>,
) -> Vec<ChatMessage> {
    let mut messages = previous.to_vec();
    if let Some(sql) = failed_sql {
        messages.push(message(Role::Assistant, format!("{{\"sql\": {}}}", serde_json::Value::String(sql.to_string()))));
    }
    let feedback = match failure {
        Failure::Refused(violations) => format!(
            "That query was refused before running:\n- {}\nWrite a corrected query.",
            violations.join("\n- ")
        ),
        Failure::DatabaseError(error) => format!("The database rejected that query with this error:\n{error}\nWrite a corrected query."),
        Failure::EmptyResult => "That query ran but returned no rows. If a filter value or join is wrong, \
             write a corrected query; if no rows is the right answer, return the same query."
            .to_string(),
        Failure::NoSql(detail) => format!("Your answer contained no SQL query ({detail})."),
    };
    let note = result_note.map(|n| format!("\n{}", n.trim())).unwrap_or_default();
    messages.push(message(Role::User, format!("{feedback}{note}\n{OUTPUT_FORMAT}")));
    messages
}

fn message(role: Role, content: String) -> ChatMessage {
    ChatMessage { role, content }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(examples: &'a [Example], history: &'a [PriorTurn]) -> PromptInput<'a> {
        PromptInput {
            engine: "PostgreSQL",
            dialect_guidance: "Use ILIKE for case-insensitive matching.",
            schema: "CREATE TABLE orders (id int PRIMARY KEY, total numeric);",
            business_context: None,
            examples,
            history,
            question: "How many orders are there?",
            row_limit: 500,
        }
    }

    #[test]
    fn the_system_prompt_carries_schema_guidance_examples_and_format() {
        let examples = [Example { question: "Total revenue?".into(), sql: "SELECT sum(total) FROM orders".into() }];
        let msgs = generation_messages(&input(&examples, &[]));
        assert_eq!(msgs.len(), 2);
        let system = &msgs[0].content;
        for needle in ["PostgreSQL", "ILIKE", "CREATE TABLE orders", "Total revenue?", "SELECT sum(total)", "500 rows", "\"sql\""] {
            assert!(system.contains(needle), "system prompt lacks {needle:?}");
        }
        assert_eq!(msgs[1].role, Role::User);
        assert_eq!(msgs[1].content, "How many orders are there?");
    }

    #[test]
    fn earlier_turns_come_before_the_question_in_order() {
        let history = [
            PriorTurn { question: "Orders in 2024?".into(), sql: Some("SELECT count(*) FROM orders".into()), result_summary: Some("1 row: 42".into()) },
            PriorTurn { question: "And refunds?".into(), sql: None, result_summary: None },
        ];
        let msgs = generation_messages(&input(&[], &history));
        let roles: Vec<Role> = msgs.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::User, Role::Assistant, Role::User]);
        assert!(msgs[2].content.contains("SELECT count(*) FROM orders") && msgs[2].content.contains("1 row: 42"));
        assert_eq!(msgs[5].content, "How many orders are there?");
    }

    #[test]
    fn repair_feeds_back_the_failed_sql_and_the_error() {
        let first = generation_messages(&input(&[], &[]));
        let msgs = repair_messages(&first, Some("SELECT nme FROM t"), &Failure::DatabaseError("column \"nme\" does not exist".into()));
        assert_eq!(msgs.len(), first.len() + 2);
        assert!(msgs[msgs.len() - 2].content.contains("SELECT nme FROM t"));
        assert!(msgs[msgs.len() - 1].content.contains("column \"nme\" does not exist"));
        let refused = repair_messages(&first, None, &Failure::Refused(vec!["Only SELECT is allowed".into()]));
        assert!(refused.last().is_some_and(|m| m.content.contains("Only SELECT is allowed")));
    }
}
