//! The library's settings from `ASMALLOC_*` environment variables.
//!
//! Read once, in the library constructor, by walking `envp` (no
//! `std::env`, which locks and allocates). The variables the core owns
//! (features and thresholds) go to `asmalloc::env::apply_env_setting`;
//! the reporting ones are kept here. A bad value prints one line naming the
//! variable, what is wrong and the accepted form, and is ignored.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

static INTERVAL_MS: AtomicU64 = AtomicU64::new(0);
static AT_EXIT: AtomicBool = AtomicBool::new(true);
static FORMAT: AtomicU8 = AtomicU8::new(0);
static TOP: AtomicUsize = AtomicUsize::new(rt::report::DEFAULT_TOP_SITES);
static OUTPUT: OnceLock<Box<str>> = OnceLock::new();
static CALLERS: AtomicBool = AtomicBool::new(false);
static WRAPPERS: OnceLock<Vec<Box<str>>> = OnceLock::new();
static BUILTIN_WRAPPERS: AtomicBool = AtomicBool::new(true);

/// The wrappers the user named (`ASMALLOC_WRAPPERS`): names or patterns.
pub(crate) fn wrappers() -> &'static [Box<str>] {
    WRAPPERS.get().map_or(&[], Vec::as_slice)
}

/// Follow the built-in list of popular libraries' wrappers too
/// (`ASMALLOC_BUILTIN_WRAPPERS`, default on).
pub(crate) fn builtin_wrappers() -> bool {
    BUILTIN_WRAPPERS.load(Ordering::Relaxed)
}

/// Charge calls with no table site to their calling address (caller
/// sites; `ASMALLOC_CALLERS`, default off; `asmalloc run` turns it on).
#[inline(always)]
pub(crate) fn callers() -> bool {
    CALLERS.load(Ordering::Relaxed)
}
/// Periodic report interval in milliseconds (0 = off, the default).
pub(crate) fn interval_ms() -> u64 {
    INTERVAL_MS.load(Ordering::Relaxed)
}

/// Print a report when the program exits (default on).
pub(crate) fn report_at_exit() -> bool {
    AT_EXIT.load(Ordering::Relaxed)
}

/// Report format (default text).
pub(crate) fn format() -> Format {
    match FORMAT.load(Ordering::Relaxed) {
        0 => Format::Text,
        _ => Format::Json,
    }
}

/// Sites listed in a text report.
pub(crate) fn top_sites() -> usize {
    TOP.load(Ordering::Relaxed)
}

/// The report file (`%p` = pid), or `None` for stderr.
pub(crate) fn output_path() -> Option<&'static str> {
    OUTPUT.get().map(|s| &**s)
}

/// The variables this module owns and the form each accepts.
pub(crate) const VARS: [(&str, &str); 8] = [
    (
        "ASMALLOC_REPORT_INTERVAL",
        "a duration with optional ms, s, m or h suffix (seconds by default), e.g. 10s; 0 or off disables",
    ),
    (
        "ASMALLOC_REPORT_AT_EXIT",
        "1, 0, yes, no, on, off, true or false",
    ),
    (
        "ASMALLOC_OUTPUT",
        "a file path (%p is replaced by the process id), or stderr",
    ),
    ("ASMALLOC_REPORT_FORMAT", "text or json"),
    ("ASMALLOC_TOP_SITES", "a number of sites, e.g. 20"),
    (
        "ASMALLOC_CALLERS",
        "1 to charge calls with no named site to their calling address (caller sites), 0 not to",
    ),
    (
        "ASMALLOC_WRAPPERS",
        "function names or patterns separated by commas (* any characters, ? one), e.g. zmalloc,xmalloc*",
    ),
    (
        "ASMALLOC_BUILTIN_WRAPPERS",
        "1 to follow the built-in wrappers of popular libraries (g_malloc, operator new, …), 0 not to",
    ),
];

/// The form every known variable accepts, for messages.
fn accepted(name: &str) -> Option<&'static str> {
    VARS.iter()
        .chain(rt::__private::env::ENV_VARS.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, form)| *form)
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// Applies one variable. `Err` carries what is wrong with the value.
fn apply(name: &str, value: &str) -> Result<(), String> {
    let bare = |e: &dyn std::fmt::Display| {
        let text = e.to_string();
        text.strip_prefix("asmalloc: ").unwrap_or(&text).to_string()
    };
    match name {
        "ASMALLOC_REPORT_INTERVAL" => {
            let ms = match value.trim() {
                "off" | "0" => 0,
                v => rt::__private::config::parse_duration_ms(v).map_err(|e| bare(&e))?,
            };
            INTERVAL_MS.store(ms, Ordering::Relaxed);
        }
        "ASMALLOC_REPORT_AT_EXIT" => {
            let on = parse_bool(value).ok_or_else(|| format!("'{value}' is not a yes/no value"))?;
            AT_EXIT.store(on, Ordering::Relaxed);
        }
        "ASMALLOC_OUTPUT" => {
            let v = value.trim();
            if v.is_empty() {
                return Err("empty path".into());
            }
            if v.contains('\0') {
                return Err("path contains a NUL byte".into());
            }
            if v != "stderr" && v != "-" {
                let _ = OUTPUT.set(v.into());
            }
        }
        "ASMALLOC_REPORT_FORMAT" => {
            let f = match value.trim().to_ascii_lowercase().as_str() {
                "text" => 0,
                "json" => 1,
                _ => return Err(format!("unknown format '{value}'")),
            };
            FORMAT.store(f, Ordering::Relaxed);
        }
        "ASMALLOC_CALLERS" => {
            let on = parse_bool(value).ok_or_else(|| format!("'{value}' is not a yes/no value"))?;
            CALLERS.store(on, Ordering::Relaxed);
        }
        "ASMALLOC_WRAPPERS" => {
            let list = crate::wrappers::names::parse_list(value)?;
            let _ = WRAPPERS.set(list);
        }
        "ASMALLOC_BUILTIN_WRAPPERS" => {
            let on = parse_bool(value).ok_or_else(|| format!("'{value}' is not a yes/no value"))?;
            BUILTIN_WRAPPERS.store(on, Ordering::Relaxed);
        }
        "ASMALLOC_TOP_SITES" => {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| format!("'{value}' is not a number"))?;
            TOP.store(n, Ordering::Relaxed);
        }
        _ => match rt::__private::env::apply_env_setting(name, value) {
            Ok(true) => {}
            Ok(false) => return Err("unknown variable".into()),
            Err(e) => return Err(bare(&e)),
        },
    }
    Ok(())
}

/// Applies every `ASMALLOC_*` variable of `vars` (name, value as bytes);
/// returns the warning lines for bad ones (without the `asmalloc: ` prefix).
///
/// In a set-user-ID (or set-group-ID, or capability-raising) program none
/// is applied: its environment comes from the user who started it, who
/// could otherwise have it create or append to files (`ASMALLOC_OUTPUT`,
/// `ASMALLOC_LOG`) with its privileges. The loader does not preload a
/// library into such a program from `LD_PRELOAD` with a path, so this
/// matters only when the library is linked in or installed where the
/// loader takes it from.
pub(crate) fn configure<'a>(vars: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<String> {
    configure_unless_secure(vars, crate::syscalls::secure_execution())
}

fn configure_unless_secure<'a>(
    vars: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    secure: bool,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if secure {
        if vars
            .into_iter()
            .any(|(name, _)| name.starts_with(b"ASMALLOC_"))
        {
            warnings.push(
                "this is a set-user-ID or set-group-ID program: its ASMALLOC_* settings are ignored (the defaults apply; reports go to stderr)"
                    .to_string(),
            );
        }
        return warnings;
    }
    for (name, value) in vars {
        if !name.starts_with(b"ASMALLOC_") {
            continue;
        }
        let name_text = String::from_utf8_lossy(name);
        let value_text = String::from_utf8_lossy(value);
        let result = match std::str::from_utf8(value) {
            Ok(v) => apply(&name_text, v),
            Err(_) => Err("not valid UTF-8".to_string()),
        };
        if let Err(what) = result {
            warnings.push(match accepted(&name_text) {
                Some(form) => format!(
                    "{name_text}={value_text}: {what}; expected {form}. Ignoring it; the program runs normally."
                ),
                None => {
                    let known: Vec<&str> = VARS
                        .iter()
                        .chain(rt::__private::env::ENV_VARS.iter())
                        .map(|(n, _)| *n)
                        .collect();
                    format!(
                        "{name_text}={value_text}: unknown variable; expected one of {}. Ignoring it.",
                        known.join(", ")
                    )
                }
            });
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pairs: &[(&str, &str)]) -> Vec<String> {
        configure(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    #[test]
    fn a_secure_program_ignores_every_setting() {
        let pairs = [
            ("ASMALLOC_OUTPUT", "/etc/cron.d/evil"),
            ("ASMALLOC_TOP_SITES", "77"),
        ];
        let w = configure_unless_secure(
            pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            true,
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("ASMALLOC_* settings are ignored"), "{}", w[0]);
        assert_eq!(output_path(), None);
        assert_ne!(top_sites(), 77);
        let quiet =
            configure_unless_secure([(b"PATH".as_slice(), b"/bin".as_slice())].into_iter(), true);
        assert!(quiet.is_empty(), "nothing to say without settings");
    }

    #[test]
    fn good_values_apply_and_bad_ones_name_the_variable_and_form() {
        assert!(run(&[("ASMALLOC_REPORT_INTERVAL", "250ms"), ("PATH", "/bin")]).is_empty());
        assert_eq!(interval_ms(), 250);
        let w = run(&[("ASMALLOC_REPORT_INTERVAL", "soon")]);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("ASMALLOC_REPORT_INTERVAL=soon: bad duration"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("; expected a duration"), "{}", w[0]);
        assert_eq!(interval_ms(), 250, "a bad value keeps the previous one");

        let w = run(&[("ASMALLOC_BLOCK_THRESHOLD", "12Q")]);
        assert!(
            w[0].starts_with("ASMALLOC_BLOCK_THRESHOLD=12Q: bad size '12Q'"),
            "{}",
            w[0]
        );
        assert!(
            w[0].contains("expected bytes with optional K/M/G suffix"),
            "{}",
            w[0]
        );

        let w = run(&[("ASMALLOC_REPORT_AT_EXIT", "maybe")]);
        assert!(w[0].contains("expected 1, 0, yes, no"), "{}", w[0]);

        let w = run(&[("ASMALLOC_FROBNICATE", "1")]);
        assert!(w[0].contains("unknown variable; expected one of ASMALLOC_REPORT_INTERVAL"));
    }
}
