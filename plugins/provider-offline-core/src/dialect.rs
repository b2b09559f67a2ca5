//! What differs between the engines the prompt can name: identifier quoting, literals, date
//! arithmetic and date parts.

/// The SQL dialect to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    MySql,
    /// SQLite (dates stored as ISO-8601 text).
    Sqlite,
}

/// A period relative to today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Days.
    Day,
    /// Weeks.
    Week,
    /// Calendar months.
    Month,
    /// Quarters.
    Quarter,
    /// Calendar years.
    Year,
}

impl Unit {
    /// The unit's English name.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Quarter => "quarter",
            Unit::Year => "year",
        }
    }
}

/// Words no engine accepts unquoted as a name (the common subset).
const RESERVED: &[&str] = &[
    "all",
    "and",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "check",
    "column",
    "constraint",
    "create",
    "cross",
    "default",
    "delete",
    "desc",
    "distinct",
    "drop",
    "else",
    "end",
    "except",
    "exists",
    "false",
    "from",
    "full",
    "group",
    "having",
    "in",
    "index",
    "inner",
    "insert",
    "intersect",
    "into",
    "is",
    "join",
    "key",
    "left",
    "like",
    "limit",
    "natural",
    "not",
    "null",
    "on",
    "or",
    "order",
    "outer",
    "primary",
    "references",
    "right",
    "select",
    "set",
    "table",
    "then",
    "to",
    "true",
    "union",
    "unique",
    "update",
    "user",
    "using",
    "values",
    "when",
    "where",
    "with",
    "window",
    "range",
    "rank",
    "rows",
    "row",
    "groups",
    "interval",
];

impl Dialect {
    /// Recognise the engine the prompt names (`You translate questions about a MySQL database …`).
    pub fn from_engine_name(text: &str) -> Dialect {
        let t = text.to_ascii_lowercase();
        if t.contains("sqlite") {
            Dialect::Sqlite
        } else if t.contains("mysql") || t.contains("mariadb") {
            Dialect::MySql
        } else {
            Dialect::Postgres
        }
    }

    /// The engine's name for descriptions.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "PostgreSQL",
            Dialect::MySql => "MySQL",
            Dialect::Sqlite => "SQLite",
        }
    }

    /// An identifier, quoted only when it must be.
    pub fn ident(self, name: &str) -> String {
        let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !RESERVED.contains(&name);
        // MySQL and SQLite compare unquoted names case-insensitively, so mixed case is fine there.
        let plain = plain
            || (self != Dialect::Postgres
                && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !RESERVED.contains(&name.to_ascii_lowercase().as_str()));
        if plain {
            return name.to_string();
        }
        match self {
            Dialect::MySql => format!("`{}`", name.replace('`', "``")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// A possibly schema-qualified table name.
    pub fn table(self, name: &str) -> String {
        name.split('.').map(|p| self.ident(p)).collect::<Vec<_>>().join(".")
    }

    /// A string literal.
    pub fn string(self, s: &str) -> String {
        let escaped = s.replace('\'', "''");
        match self {
            Dialect::MySql => format!("'{}'", escaped.replace('\\', "\\\\")),
            _ => format!("'{escaped}'"),
        }
    }

    /// A boolean literal.
    pub fn boolean(self, b: bool) -> &'static str {
        match (self, b) {
            (Dialect::Sqlite, true) => "1",
            (Dialect::Sqlite, false) => "0",
            (_, true) => "TRUE",
            (_, false) => "FALSE",
        }
    }

    /// Today's date as an expression.
    pub fn today(self) -> String {
        match self {
            Dialect::Sqlite => "date('now')".into(),
            _ => "CURRENT_DATE".into(),
        }
    }

    /// The date `n` units before today.
    pub fn days_ago(self, n: u32, unit: Unit) -> String {
        let (n, unit) = match unit {
            Unit::Week => (n * 7, Unit::Day),
            Unit::Quarter => (n * 3, Unit::Month),
            other => (n, other),
        };
        let word = unit.name();
        match self {
            Dialect::Postgres => format!("CURRENT_DATE - INTERVAL '{n} {word}s'"),
            Dialect::MySql => format!("CURRENT_DATE - INTERVAL {n} {}", word.to_ascii_uppercase()),
            Dialect::Sqlite => format!("date('now', '-{n} {word}s')"),
        }
    }

    /// The first day of the current period (`Month`, `Year`, `Week`, `Quarter`), shifted back `back` periods.
    pub fn period_start(self, unit: Unit, back: u32) -> String {
        match self {
            Dialect::Postgres => {
                let start = format!("date_trunc('{}', CURRENT_DATE)", unit.name());
                if back == 0 { start } else { format!("{start} - INTERVAL '{back} {}s'", unit.name()) }
            }
            Dialect::MySql => {
                let shifted = |u: &str, n: u32| {
                    if n == 0 { "CURRENT_DATE".to_string() } else { format!("CURRENT_DATE - INTERVAL {n} {u}") }
                };
                match unit {
                    Unit::Day => shifted("DAY", back),
                    Unit::Week => {
                        let d = shifted("WEEK", back);
                        format!("DATE_SUB({d}, INTERVAL WEEKDAY({d}) DAY)")
                    }
                    Unit::Month => format!("DATE_FORMAT({}, '%Y-%m-01')", shifted("MONTH", back)),
                    Unit::Quarter => {
                        let d = shifted("QUARTER", back);
                        format!("MAKEDATE(YEAR({d}), 1) + INTERVAL (QUARTER({d}) - 1) QUARTER")
                    }
                    Unit::Year => format!("DATE_FORMAT({}, '%Y-01-01')", shifted("YEAR", back)),
                }
            }
            Dialect::Sqlite => match unit {
                Unit::Day => {
                    if back == 0 {
                        "date('now')".into()
                    } else {
                        format!("date('now', '-{back} days')")
                    }
                }
                Unit::Week => format!("date('now', 'weekday 1', '-{} days')", 7 * (back + 1)),
                Unit::Month => {
                    if back == 0 {
                        "date('now', 'start of month')".into()
                    } else {
                        format!("date('now', 'start of month', '-{back} months')")
                    }
                }
                Unit::Quarter => format!(
                    "date('now', 'start of month', '-' || ((CAST(strftime('%m', 'now') AS INTEGER) - 1) % 3 + {}) || ' months')",
                    3 * back
                ),
                Unit::Year => {
                    if back == 0 {
                        "date('now', 'start of year')".into()
                    } else {
                        format!("date('now', 'start of year', '-{back} years')")
                    }
                }
            },
        }
    }

    /// The year of a date column, as a number.
    pub fn year_of(self, col: &str) -> String {
        match self {
            Dialect::Postgres => format!("EXTRACT(YEAR FROM {col})"),
            Dialect::MySql => format!("YEAR({col})"),
            Dialect::Sqlite => format!("CAST(strftime('%Y', {col}) AS INTEGER)"),
        }
    }

    /// `YYYY-MM` of a date column.
    pub fn month_of(self, col: &str) -> String {
        match self {
            Dialect::Postgres => format!("to_char({col}, 'YYYY-MM')"),
            Dialect::MySql => format!("DATE_FORMAT({col}, '%Y-%m')"),
            Dialect::Sqlite => format!("strftime('%Y-%m', {col})"),
        }
    }

    /// The calendar day of a date column.
    pub fn day_of(self, col: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST({col} AS DATE)"),
            Dialect::MySql => format!("DATE({col})"),
            Dialect::Sqlite => format!("date({col})"),
        }
    }

    /// `YYYY-Qn` of a date column.
    pub fn quarter_of(self, col: &str) -> String {
        match self {
            Dialect::Postgres => format!("to_char({col}, 'YYYY-\"Q\"Q')"),
            Dialect::MySql => format!("CONCAT(YEAR({col}), '-Q', QUARTER({col}))"),
            Dialect::Sqlite => {
                format!("strftime('%Y', {col}) || '-Q' || ((CAST(strftime('%m', {col}) AS INTEGER) + 2) / 3)")
            }
        }
    }

    /// The Monday of a date column's week.
    pub fn week_of(self, col: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST(date_trunc('week', {col}) AS DATE)"),
            Dialect::MySql => format!("DATE_SUB(DATE({col}), INTERVAL WEEKDAY({col}) DAY)"),
            Dialect::Sqlite => format!("date({col}, 'weekday 0', '-6 days')"),
        }
    }

    /// Case-insensitive equality with a lower-case literal.
    pub fn equals_ignoring_case(self, col: &str, lower_literal: &str) -> String {
        format!("LOWER({col}) = {}", self.string(lower_literal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(Dialect::Postgres.ident("orders"), "orders");
        assert_eq!(Dialect::Postgres.ident("order"), "\"order\"");
        assert_eq!(Dialect::Postgres.ident("OrderDate"), "\"OrderDate\"");
        assert_eq!(Dialect::MySql.ident("OrderDate"), "OrderDate");
        assert_eq!(Dialect::MySql.ident("group"), "`group`");
        assert_eq!(Dialect::Sqlite.table("shop.user"), "shop.\"user\"");
        assert_eq!(Dialect::MySql.string("it's"), "'it''s'");
    }

    #[test]
    fn date_arithmetic_per_engine() {
        assert_eq!(Dialect::Postgres.days_ago(30, Unit::Day), "CURRENT_DATE - INTERVAL '30 days'");
        assert_eq!(Dialect::MySql.days_ago(2, Unit::Week), "CURRENT_DATE - INTERVAL 14 DAY");
        assert_eq!(Dialect::Sqlite.days_ago(3, Unit::Month), "date('now', '-3 months')");
        assert_eq!(
            Dialect::Postgres.period_start(Unit::Month, 1),
            "date_trunc('month', CURRENT_DATE) - INTERVAL '1 months'"
        );
        assert_eq!(Dialect::MySql.period_start(Unit::Year, 0), "DATE_FORMAT(CURRENT_DATE, '%Y-01-01')");
        assert_eq!(Dialect::Sqlite.period_start(Unit::Year, 1), "date('now', 'start of year', '-1 years')");
    }
}
