//! Environment settings: the preload's reader (`settings.rs`, which hands
//! the runtime's variables to `asmalloc::env`) and the value parsers behind
//! them (byte sizes, durations, feature lists).
//!
//! The input is an environment: lines of `NAME=VALUE` (bytes; a line
//! without `=` is a name with an empty value).

use rt::__private::config::{self, ConfigError, Features};
use rt::__private::env::{ENV_VARS, apply_env_setting};

/// The preload's settings module, compiled here from its source: the
/// preload library itself interposes `malloc` and cannot be linked into a
/// test or a fuzzer. Its `crate::syscalls::secure_execution` is this
/// crate's (never set-user-ID).
#[allow(dead_code, unreachable_pub, clippy::all)]
#[path = "../../../asmalloc/preload/src/settings.rs"]
mod preload_settings;

/// Splits an environment into (name, value) pairs.
fn pairs(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    data.split(|&b| b == b'\n').map(|line| {
        let eq = line.iter().position(|&b| b == b'=').unwrap_or(line.len());
        (&line[..eq], line.get(eq + 1..).unwrap_or(&[]))
    })
}

/// Applies the environment `data` as the preload does at start-up, and each
/// value through every parser, checking:
/// * every warning names its variable and value (`NAME=VALUE: …`) and the
///   accepted form (`expected …`), and there is one for each `ASMALLOC_*`
///   variable that the runtime's own reader rejects;
/// * a byte size, duration or feature list that parses round-trips through
///   its canonical text (`N`, `Nms`, the `|`-joined names) and through a
///   unit (a size in whole KiB as `NK`); one that does not parse is the
///   parser's named error quoting the text;
/// * a runtime variable that applies leaves the setting that was asked for
///   (`ASMALLOC_FEATURES` → `features()`, the thresholds → `thresholds()`).
pub fn check(data: &[u8]) {
    let warnings = preload_settings::configure(pairs(data));
    let mut expected_warnings = 0;
    for (name, value) in pairs(data) {
        if !name.starts_with(b"ASMALLOC_") {
            continue;
        }
        let name_text = String::from_utf8_lossy(name);
        let Ok(value) = std::str::from_utf8(value) else {
            expected_warnings += 1;
            continue;
        };
        let known_to_runtime = ENV_VARS.iter().any(|(n, _)| **n == *name_text);
        if known_to_runtime {
            match apply_env_setting(&name_text, value) {
                Ok(owned) => {
                    assert!(owned, "{name_text} is in ENV_VARS but not applied");
                    check_applied(&name_text, value);
                }
                Err(e) => {
                    expected_warnings += 1;
                    assert!(e.to_string().starts_with("asmalloc: "), "{e}");
                }
            }
        }
        check_value(value);
    }
    for w in &warnings {
        assert!(
            w.contains("=") && w.contains(": "),
            "warning without NAME=VALUE: {w}"
        );
        assert!(
            w.starts_with("ASMALLOC_") || w.starts_with("this is a set-user-ID"),
            "warning not naming its variable: {w}"
        );
        assert!(
            w.contains("expected "),
            "warning without the accepted form: {w}"
        );
    }
    assert!(
        warnings.len() >= expected_warnings,
        "{expected_warnings} bad runtime values but only these warnings: {warnings:?}"
    );
}

/// After `name=value` applied: the runtime holds what `value` says.
fn check_applied(name: &str, value: &str) {
    match name {
        "ASMALLOC_FEATURES" => {
            assert_eq!(Ok(config::features()), Features::parse(value), "{value:?}");
        }
        "ASMALLOC_BLOCK_THRESHOLD" => {
            assert_eq!(
                Ok(config::thresholds().block_bytes),
                config::parse_size(value)
            );
        }
        "ASMALLOC_DELTA_THRESHOLD" => {
            assert_eq!(
                Ok(config::thresholds().delta_bytes),
                config::parse_size(value)
            );
        }
        "ASMALLOC_TIME_THRESHOLD" => {
            let ms = config::parse_duration_ms(value).expect("it applied");
            assert_eq!(config::thresholds().delta_seconds as u64, ms / 1000);
        }
        _ => {}
    }
}

/// Every parser on one value, with round trips.
fn check_value(value: &str) {
    match config::parse_size(value) {
        Ok(n) => {
            assert_eq!(config::parse_size(&n.to_string()), Ok(n), "{value:?}");
            if n % 1024 == 0 {
                assert_eq!(config::parse_size(&format!("{}K", n / 1024)), Ok(n));
            }
        }
        Err(e) => {
            assert_eq!(e, ConfigError::BadSize(value.to_string()));
            assert!(
                e.to_string().contains(&format!("bad size '{value}'")),
                "{e}"
            );
        }
    }
    match config::parse_duration_ms(value) {
        Ok(ms) => {
            assert_eq!(
                config::parse_duration_ms(&format!("{ms}ms")),
                Ok(ms),
                "{value:?}"
            );
            if ms % 1000 == 0 {
                assert_eq!(config::parse_duration_ms(&(ms / 1000).to_string()), Ok(ms));
            }
        }
        Err(e) => {
            assert_eq!(e, ConfigError::BadDuration(value.to_string()));
            assert!(
                e.to_string().contains(&format!("bad duration '{value}'")),
                "{e}"
            );
        }
    }
    match Features::parse(value) {
        Ok(f) => {
            assert_eq!(Features::from_bits(f.bits()), Ok(f));
            assert_eq!(Features::parse(&f.to_string()), Ok(f), "{value:?} -> {f}");
            assert_eq!(Features::parse(&f.bits().to_string()), Ok(f));
        }
        Err(ConfigError::UnknownFeatureName(word)) => {
            assert!(value.contains(word.as_str()), "{word:?} not in {value:?}");
        }
        Err(ConfigError::UnknownFeatureBits(bits)) => {
            assert_eq!(bits & Features::ALL.bits(), 0);
            assert_ne!(bits, 0);
        }
        Err(e) => panic!("Features::parse({value:?}) gave {e:?}"),
    }
}
