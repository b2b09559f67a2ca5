//! Small helpers on names and positions: normalising object names, matching function names
//! against deny-lists, matching table names against `allowed-tables`, and turning the parser's
//! line/column locations into byte offsets.

use sqlparser::ast::{ObjectName, ObjectNamePart};
use sqlparser::tokenizer::Location;

/// The parts of an object name, lower-cased, without quotes (`"Sales".Orders` → `sales`, `orders`).
pub(crate) fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => ident.value.to_lowercase(),
            // Dialect-specific computed name parts: compare their printed form.
            ObjectNamePart::Function(f) => f.to_string().to_lowercase(),
        })
        .collect()
}

/// Whether one deny-list pattern (`pg_sleep`, `pg_advisory_*`, `myschema.f`) matches a function
/// name given as lower-case parts.
///
/// A pattern without a dot is compared with the last part only, so that schema-qualified calls
/// (`pg_catalog.pg_sleep`) cannot slip through; a pattern with a dot with the whole dotted name.
pub(crate) fn function_matches(pattern: &str, parts: &[String]) -> bool {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return false;
    }
    // Built-in deny-lists are lower-case ASCII already: lower-case only what needs it, since
    // this runs for every deny-list entry and every function call in the query.
    let lowered;
    let pattern: &str = if pattern.is_ascii() && !pattern.bytes().any(|b| b.is_ascii_uppercase()) {
        pattern
    } else {
        lowered = pattern.to_lowercase();
        &lowered
    };
    let full;
    let subject: &str = if pattern.contains('.') {
        full = parts.join(".");
        &full
    } else {
        match parts.last() {
            Some(last) => last,
            None => return false,
        }
    };
    match pattern.strip_suffix('*') {
        Some(prefix) => subject.starts_with(prefix),
        None => subject == pattern,
    }
}

/// Whether a table reference (lower-case parts) is covered by one `allowed-tables` entry.
///
/// Equal names match; an unqualified reference matches an entry in any schema (it resolves
/// through the search path, which the host controls); a qualified reference matches an
/// unqualified entry only in one of the dialect's default schemas, so that `other.orders`
/// does not pass for `orders`.
pub(crate) fn table_allowed(reference: &[String], entry: &str, default_schemas: &[&str]) -> bool {
    let entry: Vec<String> = entry
        .trim()
        .to_lowercase()
        .split('.')
        .map(str::to_string)
        .collect();
    if reference == entry.as_slice() {
        return true;
    }
    match (reference, entry.as_slice()) {
        ([table], [_, entry_table]) => table == entry_table,
        ([schema, table], [entry_table]) => {
            table == entry_table
                && default_schemas
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(schema))
        }
        _ => false,
    }
}

/// Byte offsets of the starts of lines, to convert the parser's 1-based line/column (columns
/// count characters, lines end at `\n`, as in `sqlparser`'s tokenizer) to byte offsets.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Index `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    /// The byte offset of a location, or `None` for the parser's "unknown" location (line 0) or
    /// one outside the text.
    pub(crate) fn offset(&self, location: Location) -> Option<u32> {
        if location.line == 0 || location.column == 0 {
            return None;
        }
        let line_start = *self.starts.get(usize::try_from(location.line - 1).ok()?)?;
        let rest = self.text.get(line_start..)?;
        let column = usize::try_from(location.column - 1).ok()?;
        let within = match rest.char_indices().nth(column) {
            Some((i, _)) => i,
            // Just past the last character (an error "at end of input").
            None if rest.chars().count() == column => rest.len(),
            None => return None,
        };
        u32::try_from(line_start + within).ok()
    }
}

/// Pull the location out of a parser message ending in ` at Line: L, Column: C`.
pub(crate) fn location_in_message(message: &str) -> Option<Location> {
    let at = message.rfind(" at Line: ")?;
    let rest = &message[at + " at Line: ".len()..];
    let (line, column) = rest.split_once(", Column: ")?;
    let column: String = column.chars().take_while(char::is_ascii_digit).collect();
    Some(Location::new(
        line.trim().parse().ok()?,
        column.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> Vec<String> {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn function_patterns() {
        assert!(function_matches("pg_sleep", &parts("pg_catalog.pg_sleep")));
        assert!(function_matches("pg_sleep*", &parts("pg_sleep_for")));
        assert!(function_matches("PG_SLEEP", &parts("pg_sleep")));
        assert!(!function_matches("pg_sleep", &parts("pg_sleeper")));
        assert!(function_matches("s.f", &parts("s.f")));
        assert!(!function_matches("s.f", &parts("f")));
        assert!(!function_matches("", &parts("f")));
    }

    #[test]
    fn table_entries() {
        let d = &["public"];
        assert!(table_allowed(&parts("orders"), "orders", d));
        assert!(table_allowed(&parts("orders"), "sales.orders", d));
        assert!(table_allowed(&parts("sales.orders"), "Sales.Orders", d));
        assert!(table_allowed(&parts("public.orders"), "orders", d));
        assert!(!table_allowed(&parts("other.orders"), "orders", d));
        assert!(!table_allowed(&parts("orders"), "order", d));
    }

    #[test]
    fn offsets() {
        let text = "SELECT\n  é, x";
        let index = LineIndex::new(text);
        assert_eq!(index.offset(Location::new(1, 1)), Some(0));
        assert_eq!(index.offset(Location::new(2, 3)), Some(9));
        assert_eq!(index.offset(Location::new(2, 6)), Some(13));
        assert_eq!(index.offset(Location::new(0, 0)), None);
        assert_eq!(
            location_in_message("Expected: end of statement, found: x at Line: 2, Column: 7"),
            Some(Location::new(2, 7))
        );
    }
}
