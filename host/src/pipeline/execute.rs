//! Stage `execute`: run a validated query read-only, with the statement timeout and row cap, and
//! turn the driver's result into the answer's [`QueryResults`], sensitive columns masked (by name
//! and through aliases).

use crate::db::{Database, DbError, ExecOptions, ResultSet};
use crate::schema::PrivacyPolicy;

use super::answer::QueryResults;
use super::progress::ProgressSink;

/// Run `sql` on `db` read-only under `opts`; values of sensitive columns come back masked, also
/// where the query renames them. The statement is stopped on the server when `progress`'s
/// reader goes away (the client disconnected).
pub(crate) async fn execute(
    db: &Database,
    sql: &str,
    opts: &ExecOptions,
    privacy: &PrivacyPolicy,
    progress: &ProgressSink,
) -> Result<QueryResults, DbError> {
    let mut result = db.execute_read_only_until(sql, opts, progress.closed()).await?;
    privacy.mask_query(sql, db.flavor(), &mut result);
    Ok(query_results(result))
}

/// The answer's view of a result set.
pub fn query_results(result: ResultSet) -> QueryResults {
    let (columns, column_types) = result.columns.into_iter().map(|c| (c.name, c.type_name)).unzip();
    QueryResults {
        columns,
        column_types,
        row_count: result.rows.len(),
        rows: result.rows,
        truncated: result.truncated,
        execution_time_ms: result.execution_time_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::ResultColumn;
    use serde_json::json;

    #[test]
    fn columns_split_into_names_and_types() {
        let rs = ResultSet {
            columns: vec![ResultColumn { name: "n".into(), type_name: "INTEGER".into() }],
            rows: vec![vec![json!(1)], vec![json!(2)]],
            row_count: 2,
            truncated: true,
            execution_time_ms: 4,
        };
        let r = query_results(rs);
        assert_eq!(
            (r.columns, r.column_types, r.row_count, r.truncated),
            (vec!["n".to_string()], vec!["INTEGER".to_string()], 2, true)
        );
    }
}
