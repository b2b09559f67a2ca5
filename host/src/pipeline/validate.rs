//! Stage `validate`: the dialect plugin decides whether a query may run, and with which row limit.

use crate::plugins::bindings::dialect::exports::quarry::plugin::dialect::{Policy, Validated};
use crate::plugins::{CallError, DialectPlugin};

/// The violation code dialect plugins use when the SQL does not parse.
pub const PARSE_ERROR: &str = "parse-error";

/// The verdict on one query.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// It may run, as `Validated::sql`.
    Accepted(Validated),
    /// It may not; one message per violation, written for the LLM to repair from.
    Refused(Vec<String>),
}

/// Check `sql` with `dialect` under `policy`. A plugin failure is an error, not a refusal: the
/// query was never judged.
pub async fn validate(dialect: &DialectPlugin, sql: &str, policy: &Policy) -> Result<Verdict, CallError> {
    Ok(match dialect.validate(sql, policy).await? {
        Ok(v) => Verdict::Accepted(v),
        Err(violations) => Verdict::Refused(violations.into_iter().map(|v| format!("[{}] {}", v.code, v.message)).collect()),
    })
}

/// Whether every violation of a refusal is a parse error (as opposed to a safety refusal: a
/// write, a second statement, a denied function, …). Violations are as [`validate`] formats them.
pub fn only_parse_errors(violations: &[String]) -> bool {
    let prefix = format!("[{PARSE_ERROR}]");
    !violations.is_empty() && violations.iter().all(|v| v.starts_with(&prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_are_told_from_safety_refusals() {
        assert!(only_parse_errors(&["[parse-error] Expected FROM".into()]));
        assert!(!only_parse_errors(&["[parse-error] x".into(), "[not-read-only] DELETE".into()]));
        assert!(!only_parse_errors(&[]));
    }
}
