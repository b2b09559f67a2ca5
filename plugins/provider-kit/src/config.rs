//! Reading `provider-config` and merging a request's `extra` JSON into the API body.

use serde_json::Value;

use crate::{ProviderConfig, ProviderError};

/// The value of option `key`, if the operator set it.
pub fn option<'a>(cfg: &'a ProviderConfig, key: &str) -> Option<&'a str> {
    cfg.options.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Option `key` as a boolean (`true`/`1`/`yes`/`on` and their opposites); `default` otherwise.
pub fn option_bool(cfg: &ProviderConfig, key: &str, default: bool) -> bool {
    match option(cfg, key).map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => true,
        Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => false,
        _ => default,
    }
}

/// Option `key` parsed as `T`, if set and valid.
pub fn option_parse<T: std::str::FromStr>(cfg: &ProviderConfig, key: &str) -> Option<T> {
    option(cfg, key).and_then(|v| v.trim().parse().ok())
}

/// The configured model, or an error saying it is missing.
pub fn model(cfg: &ProviderConfig) -> Result<&str, ProviderError> {
    let m = cfg.model.trim();
    if m.is_empty() {
        return Err(ProviderError::ModelNotFound("no model is configured (set LLM_MODEL)".into()));
    }
    Ok(m)
}

/// An `f32` setting as JSON, printed the way people wrote it (`0.2`, not `0.20000000298023224`).
pub fn float(v: f32) -> Value {
    v.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
}

/// Merge the request's `extra` JSON object into `body` (top-level keys of `extra` win).
pub fn merge_extra(body: &mut Value, extra: Option<&str>) -> Result<(), ProviderError> {
    let Some(extra) = extra.map(str::trim).filter(|e| !e.is_empty()) else { return Ok(()) };
    let extra: Value =
        serde_json::from_str(extra).map_err(|e| ProviderError::Internal(format!("the request's `extra` is not JSON: {e}")))?;
    let (Value::Object(target), Value::Object(extra)) = (body, extra) else {
        return Err(ProviderError::Internal("the request's `extra` must be a JSON object".into()));
    };
    target.extend(extra);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_keys_override_the_body() {
        let mut body = serde_json::json!({"model": "a", "top_p": 1});
        merge_extra(&mut body, Some(r#"{"top_p": 0.5, "seed": 7}"#)).expect("merged");
        assert_eq!(body, serde_json::json!({"model": "a", "top_p": 0.5, "seed": 7}));
        assert!(merge_extra(&mut body, Some("[1]")).is_err());
    }

    #[test]
    fn floats_print_as_written() {
        assert_eq!(float(0.2).to_string(), "0.2");
        assert_eq!(float(f32::NAN), Value::Null);
    }
}
