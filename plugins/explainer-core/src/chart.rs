//! The chart suggestion: a JSON object `{"type":"bar"|"line","x":<column>,"y":<column>}` naming
//! two columns exactly as the result names them, or nothing when no chart would help.
//!
//! A chart needs a label column for `x` and a measure for `y` with at least two values. `x`
//! being date-like with three or more rows makes it a line; otherwise a bar chart, but only up to
//! [`MAX_BARS`] bars. Single values and wide tables (more than [`MAX_CHART_COLUMNS`] columns) get
//! none.

use crate::analyze::Analysis;
use crate::bindings::exports::quarry::plugin::explainer::ExplainInput;
use crate::format::json_string;

/// More columns than this is a table to read, not a chart to look at.
pub const MAX_CHART_COLUMNS: usize = 6;
/// More bars than this is unreadable.
pub const MAX_BARS: usize = 50;
/// Fewest points for a line.
const MIN_LINE_POINTS: usize = 3;

/// The chart for `input`, from its analysis.
pub(crate) fn suggest(input: &ExplainInput, analysis: &Analysis) -> Option<String> {
    if input.rows.len() < 2 || input.columns.len() > MAX_CHART_COLUMNS {
        return None;
    }
    let (x, y) = (analysis.label?, analysis.measure?);
    if analysis.stats.as_ref().is_none_or(|s| s.sum.count() < 2) {
        return None;
    }
    let kind = if analysis.profile(x).is_some_and(|p| p.date_like) && input.rows.len() >= MIN_LINE_POINTS {
        "line"
    } else if input.rows.len() <= MAX_BARS {
        "bar"
    } else {
        return None;
    };
    let (xn, yn) = (&input.columns.get(x)?.name, &input.columns.get(y)?.name);
    // A front end finds the columns by name: an empty or shared name would be ambiguous.
    if xn.is_empty() || yn.is_empty() || xn == yn || input.columns.iter().filter(|c| &c.name == xn || &c.name == yn).count() != 2 {
        return None;
    }
    Some(format!("{{\"type\":\"{kind}\",\"x\":{},\"y\":{}}}", json_string(xn), json_string(yn)))
}
