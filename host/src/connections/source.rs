//! The kinds of database a connection can point at ([`SourceType`]), what the pipeline does with
//! a generated query ([`ExecutionMode`]), and the config forms `GET /datasources` describes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::SSL_MODES;
use crate::db::{Engine, Flavor};

/// A connection's database kind, as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    /// PostgreSQL.
    Postgresql,
    /// MySQL or MariaDB.
    Mysql,
    /// A SQLite file, opened read-only.
    Sqlite,
}

impl SourceType {
    /// Every source type, in the order `GET /datasources` lists them.
    pub const ALL: [SourceType; 3] = [SourceType::Postgresql, SourceType::Mysql, SourceType::Sqlite];

    /// `postgresql`, `mysql` or `sqlite`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceType::Postgresql => "postgresql",
            SourceType::Mysql => "mysql",
            SourceType::Sqlite => "sqlite",
        }
    }

    /// The database engine behind it.
    pub fn engine(self) -> Engine {
        match self {
            SourceType::Postgresql => Engine::Postgres,
            SourceType::Mysql => Engine::MySql,
            SourceType::Sqlite => Engine::Sqlite,
        }
    }

    /// The flavor to assume before connecting (MySQL and MariaDB are told apart on connect).
    pub fn default_flavor(self) -> Flavor {
        match self {
            SourceType::Postgresql => Flavor::PostgreSQL,
            SourceType::Mysql => Flavor::MySQL,
            SourceType::Sqlite => Flavor::SQLite,
        }
    }

    /// The query dialect's display name (`PostgreSQL`, `MySQL`, `SQLite`).
    pub fn dialect_name(self) -> &'static str {
        match self {
            SourceType::Postgresql => "PostgreSQL",
            SourceType::Mysql => "MySQL",
            SourceType::Sqlite => "SQLite",
        }
    }
}

impl fmt::Display for SourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SourceType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown source_type {s:?}: expected postgresql, mysql or sqlite"))
    }
}

/// What happens to a validated query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    /// Run it and stream the rows (the default).
    #[default]
    AutoExecute,
    /// Store it as `pending_approval`; it runs when a user approves it.
    ReviewFirst,
    /// Show the SQL only; never run it.
    GenerateOnly,
}

impl ExecutionMode {
    /// `auto_execute`, `review_first` or `generate_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::AutoExecute => "auto_execute",
            ExecutionMode::ReviewFirst => "review_first",
            ExecutionMode::GenerateOnly => "generate_only",
        }
    }
}

impl fmt::Display for ExecutionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ExecutionMode::AutoExecute, ExecutionMode::ReviewFirst, ExecutionMode::GenerateOnly]
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!("unknown execution_mode {s:?}: expected auto_execute, review_first or generate_only")
            })
    }
}

/// `GET /datasources`: each source type with the fields of its config form.
pub fn datasource_types() -> Value {
    let server_fields = |port: u16, ssl_modes: Vec<&str>| {
        json!([
            {"name": "host", "type": "string", "label": "Host", "required": true, "placeholder": "localhost"},
            {"name": "port", "type": "integer", "label": "Port", "required": true, "default": port},
            {"name": "database", "type": "string", "label": "Database", "required": true},
            {"name": "username", "type": "string", "label": "Username", "required": true},
            {"name": "password", "type": "password", "label": "Password", "required": false, "credential": true},
            {"name": "ssl_mode", "type": "select", "label": "SSL mode", "required": false, "default": "prefer",
             "options": ssl_modes},
            {"name": "url", "type": "password", "label": "Connection URL (instead of the fields above)",
             "required": false, "credential": true,
             "placeholder": if port == 5432 { "postgres://user:password@host:5432/db" }
                            else { "mysql://user:password@host:3306/db" }},
        ])
    };
    let pg_modes: Vec<&str> = SSL_MODES.to_vec();
    let my_modes: Vec<&str> = SSL_MODES.iter().copied().filter(|m| *m != "allow").collect();
    json!([
        {
            "source_type": "postgresql",
            "display_name": "PostgreSQL",
            "icon": "🐘",
            "query_dialect": "PostgreSQL",
            "config_schema": {"fields": server_fields(5432, pg_modes)},
        },
        {
            "source_type": "mysql",
            "display_name": "MySQL / MariaDB",
            "icon": "🐬",
            "query_dialect": "MySQL",
            "config_schema": {"fields": server_fields(3306, my_modes)},
        },
        {
            "source_type": "sqlite",
            "display_name": "SQLite",
            "icon": "🪶",
            "query_dialect": "SQLite",
            "config_schema": {"fields": [
                {"name": "path", "type": "string", "label": "Database file", "required": true,
                 "placeholder": "/var/lib/data/shop.db"},
            ]},
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in SourceType::ALL {
            assert_eq!(t.as_str().parse::<SourceType>().unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert!("postgres".parse::<SourceType>().is_err());
        for m in ["auto_execute", "review_first", "generate_only"] {
            assert_eq!(m.parse::<ExecutionMode>().unwrap().as_str(), m);
        }
        assert!("sometimes".parse::<ExecutionMode>().is_err());
        let types = datasource_types();
        let names: Vec<&str> = types.as_array().unwrap().iter().map(|t| t["source_type"].as_str().unwrap()).collect();
        assert_eq!(names, ["postgresql", "mysql", "sqlite"]);
    }
}
