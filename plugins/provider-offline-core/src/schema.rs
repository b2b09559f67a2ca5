//! Reading the schema section of Quarry's prompt back into tables, columns, keys and samples.
//!
//! The host renders the schema as DDL-like text (`host/src/schema/render.rs`):
//!
//! ```text
//! -- people who order; ~1200 rows
//! CREATE TABLE shop.customers (
//!   id integer PRIMARY KEY,
//!   country text NOT NULL, -- e.g. 'DE', 'FR', 'US'
//!   region_id integer REFERENCES shop.regions(id),
//!   PRIMARY KEY (a, b),
//!   FOREIGN KEY (a, b) REFERENCES other(x, y),
//! );
//! ```
//!
//! Nothing here knows any table name: everything the translator uses comes from this text.

/// One sample value shown after `e.g.` in a column's comment.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    /// A quoted string (unescaped). Values cut by the host (ending in `…`) are not kept.
    Text(String),
    /// A bare number.
    Number(f64),
}

/// What kind of values a column holds, from its declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Whole numbers.
    Integer,
    /// Decimal and floating-point numbers.
    Decimal,
    /// Strings.
    Text,
    /// Calendar dates.
    Date,
    /// Dates with a time of day.
    Timestamp,
    /// True/false.
    Boolean,
    /// Anything else (JSON, bytes, arrays, ...).
    Other,
}

impl ColumnKind {
    /// Integers and decimals.
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnKind::Integer | ColumnKind::Decimal)
    }

    /// Dates and timestamps.
    pub fn is_temporal(self) -> bool {
        matches!(self, ColumnKind::Date | ColumnKind::Timestamp)
    }
}

/// One column.
#[derive(Debug, Clone)]
pub struct Column {
    /// The name as the schema spells it.
    pub name: String,
    /// The declared type, lower-case.
    pub data_type: String,
    /// What the type means for the translator.
    pub kind: ColumnKind,
    /// Whether it is (part of) the primary key.
    pub primary_key: bool,
    /// The table and column it references, for a single-column foreign key.
    pub references: Option<(String, String)>,
    /// The column's comment, when the schema has one.
    pub comment: Option<String>,
    /// Sample values.
    pub samples: Vec<Sample>,
    /// Marked `[SENSITIVE]` by the host.
    pub sensitive: bool,
}

/// One table or view.
#[derive(Debug, Clone)]
pub struct Table {
    /// The name as the schema spells it, possibly `schema.table`.
    pub name: String,
    /// The table's comment, when the schema has one.
    pub comment: Option<String>,
    /// The approximate row count, when shown.
    pub rows: Option<u64>,
    /// The columns, in order.
    pub columns: Vec<Column>,
}

impl Table {
    /// The name without a schema prefix.
    pub fn bare_name(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The single-column primary key, if there is one.
    pub fn primary_key(&self) -> Option<&Column> {
        let mut pk = self.columns.iter().filter(|c| c.primary_key);
        match (pk.next(), pk.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    }
}

/// Every table the prompt shows.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The tables, in the prompt's order.
    pub tables: Vec<Table>,
}

impl Schema {
    /// The index of the table called `name` (with or without its schema prefix).
    pub fn table_index(&self, name: &str) -> Option<usize> {
        let bare = name.rsplit('.').next().unwrap_or(name);
        self.tables
            .iter()
            .position(|t| t.name.eq_ignore_ascii_case(name))
            .or_else(|| self.tables.iter().position(|t| t.bare_name().eq_ignore_ascii_case(bare)))
    }
}

/// Parse every `CREATE TABLE` / `CREATE VIEW` block found in `text`; other lines are ignored.
pub fn parse(text: &str) -> Schema {
    let mut schema = Schema::default();
    let mut header: Option<String> = None;
    let mut current: Option<Table> = None;
    for raw in text.lines() {
        let line = raw.trim();
        match current.as_mut() {
            None => {
                if let Some(name) = create_name(line) {
                    let (comment, rows) = header.take().map(|h| split_header(&h)).unwrap_or((None, None));
                    current = Some(Table { name, comment, rows, columns: Vec::new() });
                } else if let Some(c) = line.strip_prefix("--") {
                    header = Some(c.trim().to_string());
                } else {
                    header = None;
                }
            }
            Some(table) => {
                if line.starts_with(')') {
                    if let Some(t) = current.take() {
                        schema.tables.push(t);
                    }
                } else {
                    column_line(table, line);
                }
            }
        }
    }
    if let Some(t) = current.take() {
        schema.tables.push(t);
    }
    schema
}

/// The relation name of a `CREATE … (` line.
fn create_name(line: &str) -> Option<String> {
    let rest =
        ["CREATE TABLE ", "CREATE VIEW ", "CREATE MATERIALIZED VIEW "].iter().find_map(|p| line.strip_prefix(p))?;
    let name = rest.trim_end().strip_suffix('(')?.trim();
    (!name.is_empty()).then(|| name.trim_matches(|c| c == '"' || c == '`').to_string())
}

/// `comment; ~N rows` → (comment, N).
fn split_header(h: &str) -> (Option<String>, Option<u64>) {
    let mut comment = Vec::new();
    let mut rows = None;
    for part in h.split("; ") {
        let p = part.trim();
        if let Some(n) = p.strip_prefix('~').and_then(|r| r.strip_suffix(" rows")) {
            rows = n.trim().parse().ok();
        } else if !p.is_empty() {
            comment.push(p);
        }
    }
    ((!comment.is_empty()).then(|| comment.join("; ")), rows)
}

const CONSTRAINTS: [&str; 4] = [" PRIMARY KEY", " NOT NULL", " DEFAULT ", " REFERENCES "];

/// One line inside a table block.
fn column_line(table: &mut Table, line: &str) {
    let (def, note) = match line.find(", -- ") {
        Some(i) => (&line[..i], Some(line[i + 5..].trim())),
        None => (line.trim_end_matches(','), None),
    };
    let def = def.trim();
    if let Some(cols) = def.strip_prefix("PRIMARY KEY (") {
        let cols = cols.trim_end_matches(')');
        for name in cols.split(',').map(str::trim) {
            if let Some(c) = table.columns.iter_mut().find(|c| c.name == name) {
                c.primary_key = true;
            }
        }
        return;
    }
    if def.starts_with("FOREIGN KEY") {
        // Composite keys: the translator only joins along single-column ones.
        return;
    }
    let Some((name, rest)) = def.split_once(' ') else { return };
    let rest = format!(" {rest}");
    let type_end = CONSTRAINTS.iter().filter_map(|k| rest.find(k)).min().unwrap_or(rest.len());
    let data_type = rest[..type_end].trim().to_ascii_lowercase();
    let constraints = &rest[type_end..];
    let references = constraints.find(" REFERENCES ").and_then(|i| {
        let target = &constraints[i + 12..];
        let (t, c) = target.split_once('(')?;
        let c = c.split(')').next()?.trim();
        Some((t.trim().to_string(), c.to_string()))
    });
    let mut column = Column {
        name: name.trim_matches(|c| c == '"' || c == '`').to_string(),
        kind: kind_of(&data_type),
        data_type,
        primary_key: constraints.contains(" PRIMARY KEY"),
        references,
        comment: None,
        samples: Vec::new(),
        sensitive: false,
    };
    if let Some(note) = note {
        let (comment, samples) = match note.rfind("e.g. ") {
            Some(i) if i == 0 || note[..i].ends_with("; ") => (note[..i].trim_end_matches("; ").trim(), &note[i + 5..]),
            _ => (note, ""),
        };
        column.samples = parse_samples(samples);
        let mut comment = comment.to_string();
        if let Some(stripped) = comment.strip_suffix("[SENSITIVE]") {
            column.sensitive = true;
            comment = stripped.trim_end_matches("; ").trim().to_string();
        }
        column.comment = (!comment.is_empty()).then_some(comment);
    }
    table.columns.push(column);
}

/// The kind of a declared type (PostgreSQL, MySQL and SQLite spellings).
pub fn kind_of(data_type: &str) -> ColumnKind {
    let t = data_type.to_ascii_lowercase();
    let t = t.trim();
    if t.starts_with("timestamp") || t.starts_with("datetime") {
        ColumnKind::Timestamp
    } else if t == "date" {
        ColumnKind::Date
    } else if t.starts_with("bool") || t == "tinyint(1)" || t == "bit" {
        ColumnKind::Boolean
    } else if t.contains("int") || t == "serial" || t == "bigserial" || t == "smallserial" {
        ColumnKind::Integer
    } else if ["numeric", "decimal", "real", "double", "float", "money"].iter().any(|k| t.starts_with(k)) {
        ColumnKind::Decimal
    } else if [
        "char",
        "varchar",
        "text",
        "character",
        "string",
        "clob",
        "citext",
        "enum",
        "nvarchar",
        "tinytext",
        "mediumtext",
        "longtext",
        "name",
    ]
    .iter()
    .any(|k| t.starts_with(k))
        || t.contains("char")
        || t.contains("text")
    {
        ColumnKind::Text
    } else {
        ColumnKind::Other
    }
}

/// `'a', 'it''s', 3, NULL` → samples (NULLs and cut values dropped).
fn parse_samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            ' ' | ',' => i += 1,
            '\'' => {
                let mut s = String::new();
                i += 1;
                while i < chars.len() {
                    if chars[i] == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            s.push('\'');
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    s.push(chars[i]);
                    i += 1;
                }
                if !s.ends_with('…') {
                    out.push(Sample::Text(s));
                }
            }
            _ => {
                let start = i;
                while i < chars.len() && chars[i] != ',' {
                    i += 1;
                }
                let token: String = chars[start..i].iter().collect();
                if let Ok(n) = token.trim().parse::<f64>() {
                    out.push(Sample::Number(n));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "-- Customer orders; ~1200 rows\nCREATE TABLE orders (\n  id integer PRIMARY KEY,\n  \
        customer_id integer REFERENCES crm.customers(id),\n  \
        status text, -- order state; e.g. 'paid', 'it''s', 'shipped'\n  email text, -- [SENSITIVE]\n  \
        placed_at timestamp with time zone NOT NULL DEFAULT now(),\n  total numeric(10,2), -- e.g. 12.5, 3\n);\n\
        CREATE TABLE crm.customers (\n  id integer NOT NULL,\n  name character varying(40), -- e.g. 'Ann', 'A very long na…'\n  PRIMARY KEY (id),\n);\n";

    #[test]
    fn reads_tables_columns_keys_and_samples() {
        let s = parse(TEXT);
        assert_eq!(s.tables.len(), 2);
        let orders = &s.tables[0];
        assert_eq!(
            (orders.name.as_str(), orders.rows, orders.comment.as_deref()),
            ("orders", Some(1200), Some("Customer orders"))
        );
        assert_eq!(orders.primary_key().map(|c| c.name.as_str()), Some("id"));
        let fk = orders.column("customer_id").and_then(|c| c.references.clone());
        assert_eq!(fk, Some(("crm.customers".into(), "id".into())));
        let status = orders.column("status").expect("status");
        assert_eq!(status.comment.as_deref(), Some("order state"));
        assert_eq!(
            status.samples,
            [Sample::Text("paid".into()), Sample::Text("it's".into()), Sample::Text("shipped".into())]
        );
        assert!(orders.column("email").is_some_and(|c| c.sensitive && c.samples.is_empty()));
        let placed = orders.column("placed_at").expect("placed_at");
        assert_eq!((placed.data_type.as_str(), placed.kind), ("timestamp with time zone", ColumnKind::Timestamp));
        assert_eq!(
            orders.column("total").map(|c| c.samples.clone()),
            Some(vec![Sample::Number(12.5), Sample::Number(3.0)])
        );
        let customers = &s.tables[1];
        assert_eq!(customers.bare_name(), "customers");
        assert_eq!(customers.primary_key().map(|c| c.name.as_str()), Some("id"));
        assert_eq!(customers.column("name").map(|c| c.samples.len()), Some(1), "the cut sample is dropped");
        assert_eq!(s.table_index("customers"), Some(1));
    }
}
