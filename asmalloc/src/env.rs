//! The process environment: every `ASMALLOC_*` variable the runtime reads,
//! and [`configure_from_env`], which applies them and starts what they ask
//! for.
//!
//! It sits above both kinds of settings it dispatches to — the engine's
//! ([`crate::config`]: features and thresholds, a leaf the allocation path
//! reads), the leak monitor's ([`crate::monitor`]) and the metrics'
//! ([`crate::metrics`]) — so that neither has
//! to know the other, and starting the monitor is not something the leaf
//! settings do.

use crate::config::{self, Bare, ConfigError};
use crate::{metrics, monitor, pprof, stacks};

/// Every variable the runtime reads, with the accepted form of each (for
/// error messages and `--help`). The LD_PRELOAD library adds its own report
/// settings.
pub const ENV_VARS: [(&str, &str); 14] = {
    let mut all = [("", ""); 14];
    let mut i = 0;
    while i < config::CONFIG_VARS.len() {
        all[i] = config::CONFIG_VARS[i];
        i += 1;
    }
    let mut j = 0;
    while j < monitor::MONITOR_VARS.len() {
        all[i + j] = monitor::MONITOR_VARS[j];
        j += 1;
    }
    let mut k = 0;
    while k < metrics::METRICS_VARS.len() {
        all[i + j + k] = metrics::METRICS_VARS[k];
        k += 1;
    }
    all[i + j + k] = pprof::PPROF_VARS[0];
    all[i + j + k + 1] = stacks::STACKS_VARS[0];
    all
};

/// Applies one `ASMALLOC_*` setting. `Ok(false)` for a name the runtime does
/// not own (the LD_PRELOAD library may); an error leaves the setting
/// unchanged.
pub fn apply_env_setting(name: &str, value: &str) -> Result<bool, ConfigError> {
    if config::apply_setting(name, value)?
        || pprof::apply_setting(name, value)?
        || stacks::apply_setting(name, value)?
    {
        return Ok(true);
    }
    if monitor::apply_setting(name, value)? {
        return Ok(true);
    }
    metrics::apply_setting(name, value)
}

/// Applies every `ASMALLOC_*` setting found in the process environment
/// (features, thresholds, and the leak monitor's), and starts the leak
/// monitor if `ASMALLOC_SAMPLE_INTERVAL`, `ASMALLOC_LOG` or a metrics setting
/// asks for it (and the metrics endpoint, for `ASMALLOC_METRICS_ADDR`). A bad
/// value is reported on stderr (naming the variable and the accepted form)
/// and ignored; the rest still apply. Returns the errors.
pub fn configure_from_env() -> Vec<(String, ConfigError)> {
    let mut errors = Vec::new();
    for (name, accepted) in ENV_VARS {
        if let Some(value) = std::env::var_os(name) {
            let value = value.to_string_lossy();
            if let Err(err) = apply_env_setting(name, &value) {
                crate::diag::warn(format_args!(
                    "{name}={value}: {}; expected {accepted}. Keeping the previous setting.",
                    Bare(&err)
                ));
                errors.push((name.to_string(), err));
            }
        }
    }
    stacks::start_in_rust_program();
    if let Err(e) = monitor::start_from_settings() {
        crate::diag::warn(format_args!(
            "{}; no leak monitor",
            e.to_string().trim_start_matches("asmalloc: ")
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_listed_once_and_owned_by_someone() {
        let mut names: Vec<&str> = ENV_VARS.iter().map(|(n, _)| *n).collect();
        assert!(names.iter().all(|n| n.starts_with("ASMALLOC_")));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ENV_VARS.len());
        assert_eq!(apply_env_setting("ASMALLOC_NOT_OURS", "1"), Ok(false));
    }
}
