//! The process's log filter, changed at run time: whoever initialises tracing installs a
//! reloader ([`install_reloader`]); the live settings call [`apply`] when `log_level` changes.

use std::sync::{Mutex, OnceLock};

/// Changes the process's log filter to a directive; an error says why it cannot.
pub type Reloader = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static RELOADER: OnceLock<Reloader> = OnceLock::new();
/// The directive applied last, so an unchanged value is not re-applied on every poll.
static APPLIED: Mutex<Option<String>> = Mutex::new(None);

/// The longest directive accepted, in bytes.
pub const MAX_DIRECTIVE_LEN: usize = 512;

/// Let [`apply`] change the log filter through `reloader`. Only the first call counts (there is
/// one tracing subscriber per process); `false` when one was installed already.
pub fn install_reloader(reloader: Reloader) -> bool {
    RELOADER.set(reloader).is_ok()
}

/// Whether a reloader is installed (the server initialised tracing with one).
pub fn can_reload() -> bool {
    RELOADER.get().is_some()
}

/// Check a log level: `trace`, `debug`, `info`, `warn`, `error`, or any `RUST_LOG`-style filter
/// directive (`info,quarry=debug`). The reason is for people.
pub fn validate(directive: &str) -> Result<(), String> {
    let directive = directive.trim();
    if directive.is_empty() {
        return Err("must not be empty".to_string());
    }
    if directive.len() > MAX_DIRECTIVE_LEN {
        return Err(format!("must be at most {MAX_DIRECTIVE_LEN} characters"));
    }
    // A lone word EnvFilter would take as a target name ("loud" = everything from target `loud`)
    // is far more likely a mistyped level.
    let levels = ["trace", "debug", "info", "warn", "error", "off"];
    if !directive.contains(['=', ',', ':']) && !levels.contains(&directive.to_ascii_lowercase().as_str()) {
        return Err("is neither a level (trace, debug, info, warn, error, off) nor a filter directive".to_string());
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(directive)
        .map(|_| ())
        .map_err(|e| format!("is neither a level (trace, debug, info, warn, error) nor a filter directive: {e}"))
}

/// Make `directive` this process's log filter, if a reloader is installed and it differs from
/// the one applied last. `Ok(true)` when it was applied now.
pub fn apply(directive: &str) -> Result<bool, String> {
    let Some(reload) = RELOADER.get() else { return Ok(false) };
    let directive = directive.trim();
    let mut applied = APPLIED.lock().unwrap_or_else(|e| e.into_inner());
    if applied.as_deref() == Some(directive) {
        return Ok(false);
    }
    reload(directive)?;
    *applied = Some(directive.to_string());
    tracing::info!(log_level = directive, "log level changed");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_are_accepted_and_nonsense_is_not() {
        for ok in ["info", "TRACE", "warn", "info,quarry=debug", "quarry::api=trace"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "  ", "loud", "quarry=verbose", &"x".repeat(600)] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
