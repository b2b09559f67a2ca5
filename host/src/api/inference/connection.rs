//! SQL Query Engine's per-request connection overrides: optional query parameters for the LLM
//! (`llmBaseURL`, `llmAPIKey`, `llmModel`, `llmTemperature`), PostgreSQL (`postgreHost`,
//! `postgrePort`, `postgreDBName`, `postgreUser`, `postgrePassword`) and Redis (`redisHost`,
//! `redisPort`, `redisPassword`, `redisDB`: accepted and ignored — Quarry keeps no state in
//! Redis for these routes). An absent or empty parameter falls back to the server's
//! configuration; the `postgre*` ones are merged over the `POSTGRES_*` variables.
//!
//! These parameters carry secrets: they are never logged (request tracing logs only the path).

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::Value;

use crate::api::validation::{FieldError, Invalid};
use crate::db::DatabaseUrl;
use crate::pipeline::engine::{EngineError, Overrides};

/// The connection query parameters of one request.
#[derive(Debug, Clone, Default, PartialEq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectionParams {
    /// OpenAI-compatible API base URL (default `LLM_BASE_URL`).
    #[param(rename = "llmBaseURL")]
    pub llm_base_url: Option<String>,
    /// API key for the LLM endpoint (default `LLM_API_KEY`).
    #[param(rename = "llmAPIKey")]
    pub llm_api_key: Option<String>,
    /// Model identifier (default `LLM_MODEL`).
    #[param(rename = "llmModel")]
    pub llm_model: Option<String>,
    /// Sampling temperature (default `LLM_TEMPERATURE`).
    #[param(rename = "llmTemperature")]
    pub llm_temperature: Option<f32>,
    /// PostgreSQL host (default `POSTGRES_HOST`).
    #[param(rename = "postgreHost")]
    pub postgre_host: Option<String>,
    /// PostgreSQL port (default `POSTGRES_PORT`, else 5432).
    #[param(rename = "postgrePort")]
    pub postgre_port: Option<u16>,
    /// Database name (default `POSTGRES_DB`).
    #[param(rename = "postgreDBName")]
    pub postgre_db_name: Option<String>,
    /// Database user (default `POSTGRES_USER`).
    #[param(rename = "postgreUser")]
    pub postgre_user: Option<String>,
    /// Database password (default `POSTGRES_PASSWORD`).
    #[param(rename = "postgrePassword")]
    pub postgre_password: Option<String>,
    /// Accepted for compatibility; ignored.
    #[param(rename = "redisHost")]
    pub redis_host: Option<String>,
    /// Accepted for compatibility; ignored.
    #[param(rename = "redisPort")]
    pub redis_port: Option<String>,
    /// Accepted for compatibility; ignored.
    #[param(rename = "redisPassword")]
    pub redis_password: Option<String>,
    /// Accepted for compatibility; ignored.
    #[param(rename = "redisDB")]
    pub redis_db: Option<String>,
}

impl ConnectionParams {
    /// Read the parameters from a query string (the last of repeated ones wins; empty values
    /// count as absent). A port or temperature that is not a number is a 422 in FastAPI's shape.
    pub fn parse(query: &str) -> Result<Self, Invalid> {
        let mut raw: HashMap<String, String> = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if !v.trim().is_empty() {
                raw.insert(k.into_owned(), v.into_owned());
            }
        }
        let mut errors = Vec::new();
        let mut take = |name: &str| raw.remove(name);
        let mut params = Self {
            llm_base_url: take("llmBaseURL"),
            llm_api_key: take("llmAPIKey"),
            llm_model: take("llmModel"),
            llm_temperature: None,
            postgre_host: take("postgreHost"),
            postgre_port: None,
            postgre_db_name: take("postgreDBName"),
            postgre_user: take("postgreUser"),
            postgre_password: take("postgrePassword"),
            redis_host: take("redisHost"),
            redis_port: take("redisPort"),
            redis_password: take("redisPassword"),
            redis_db: take("redisDB"),
        };
        if let Some(t) = take("llmTemperature") {
            match t.trim().parse::<f32>() {
                Ok(v) if v.is_finite() => params.llm_temperature = Some(v),
                _ => errors.push(query_error(
                    "float_parsing",
                    "llmTemperature",
                    "Input should be a valid number, unable to parse string as a number",
                    t,
                )),
            }
        }
        if let Some(p) = take("postgrePort") {
            match p.trim().parse::<u16>() {
                Ok(v) => params.postgre_port = Some(v),
                Err(_) => errors.push(query_error(
                    "int_parsing",
                    "postgrePort",
                    "Input should be a valid integer, unable to parse string as an integer",
                    p,
                )),
            }
        }
        if errors.is_empty() {
            Ok(params)
        } else {
            Err(Invalid(errors))
        }
    }

    /// The engine overrides these parameters make. `postgres_env` holds the `POSTGRES_*`
    /// variables the `postgre*` parameters are merged over; with none of those parameters the
    /// engine's own database is used.
    pub fn overrides(
        &self,
        postgres_env: &HashMap<String, String>,
    ) -> Result<Overrides, EngineError> {
        Ok(Overrides {
            llm_base_url: self.llm_base_url.clone(),
            llm_api_key: self.llm_api_key.clone(),
            llm_model: self.llm_model.clone(),
            llm_temperature: self.llm_temperature,
            database_url: self.database_url(postgres_env)?,
        })
    }

    fn database_url(
        &self,
        postgres_env: &HashMap<String, String>,
    ) -> Result<Option<String>, EngineError> {
        let port = self.postgre_port.map(|p| p.to_string());
        let given: [(&str, Option<&String>); 5] = [
            ("POSTGRES_HOST", self.postgre_host.as_ref()),
            ("POSTGRES_PORT", port.as_ref()),
            ("POSTGRES_DB", self.postgre_db_name.as_ref()),
            ("POSTGRES_USER", self.postgre_user.as_ref()),
            ("POSTGRES_PASSWORD", self.postgre_password.as_ref()),
        ];
        if given.iter().all(|(_, v)| v.is_none()) {
            return Ok(None);
        }
        // Only the POSTGRES_* names: a QUARRY_DATABASE_URL must not win over explicit parameters.
        let lookup = |name: &str| {
            let from_request = given
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.cloned());
            from_request.or_else(|| postgres_env.get(name).cloned())
        };
        match DatabaseUrl::from_vars(lookup) {
            Ok(Some(url)) => Ok(Some(url.expose().to_string())),
            Ok(None) => Err(EngineError::MissingConfiguration(vec![
                "POSTGRES_HOST".to_string(),
            ])),
            Err(e) => Err(EngineError::InvalidInput(e.to_string())),
        }
    }
}

fn query_error(kind: &str, name: &str, msg: &str, input: String) -> FieldError {
    FieldError::new(
        kind,
        vec!["query".into(), name.into()],
        msg,
        Value::String(input),
    )
}

impl<S: Send + Sync> FromRequestParts<S> for ConnectionParams {
    type Rejection = Invalid;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::parse(parts.uri.query().unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_database_parameters_keep_the_engine_database() {
        let p = ConnectionParams::parse("llmModel=m&llmTemperature=0.5&redisHost=r").unwrap();
        let o = p.overrides(&env(&[("POSTGRES_HOST", "db")])).unwrap();
        assert_eq!(
            (o.llm_model.as_deref(), o.llm_temperature, o.database_url),
            (Some("m"), Some(0.5), None)
        );
    }

    #[test]
    fn database_parameters_are_merged_over_the_environment() {
        let p = ConnectionParams::parse("postgreDBName=shop&postgrePassword=p%40ss").unwrap();
        let o = p
            .overrides(&env(&[
                ("POSTGRES_HOST", "db"),
                ("POSTGRES_USER", "u"),
                ("POSTGRES_DB", "other"),
            ]))
            .unwrap();
        assert_eq!(
            o.database_url.as_deref(),
            Some("postgres://u:p%40ss@db:5432/shop")
        );
        let lonely = ConnectionParams::parse("postgreDBName=shop").unwrap();
        assert!(
            matches!(lonely.overrides(&env(&[])), Err(EngineError::MissingConfiguration(m)) if m == ["POSTGRES_HOST"])
        );
    }

    #[test]
    fn bad_numbers_are_422s_located_in_the_query() {
        let Err(Invalid(errors)) = ConnectionParams::parse("postgrePort=abc&llmTemperature=hot")
        else {
            panic!()
        };
        let locs: Vec<Value> = errors.iter().map(|e| Value::from(e.loc.clone())).collect();
        assert_eq!(
            locs,
            [
                serde_json::json!(["query", "llmTemperature"]),
                serde_json::json!(["query", "postgrePort"])
            ]
        );
    }
}
