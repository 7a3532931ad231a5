//! What the fuzz targets check, shared with the corpus replay.
//!
//! Each module has one `check(data)` that feeds bytes to one of asmalloc's
//! input readers — the C scanner, the Rust scanner, the environment
//! settings, the JSON-log reader — and asserts what a user relies on, not
//! only that nothing panics: the scanners report sites within the file,
//! sorted, named after allocation functions; a setting either applies (and
//! its parsed value round-trips) or gives an error that names the variable
//! and the accepted form; the log reader gives records or names the lines
//! it skipped. A broken property is a panic, which is what a fuzzer reports.
//!
//! The same functions run in two places:
//! * the fuzz targets (`fuzz/fuzz_targets/*.rs`, built by `cargo fuzz` with
//!   libFuzzer), which search for inputs that break them;
//! * `tests/corpus.rs`, a normal test of the workspace, which runs every
//!   file of the committed corpus (`fuzz/corpus/<target>/`) through them on
//!   stable Rust, with no fuzzer — so CI keeps every input the fuzzer ever
//!   found interesting passing.
//!
//! See docs/fuzzing.md.

#![forbid(unsafe_code)]

pub mod c_scanner;
pub mod env;
pub mod log_reader;
pub mod rust_scanner;

/// The preload's settings module needs to know whether the program runs
/// set-user-ID; a fuzzer and a test do not.
pub(crate) mod syscalls {
    /// Never: the settings are applied.
    pub(crate) fn secure_execution() -> bool {
        false
    }
}

/// The preload's wrapper-name parser (`ASMALLOC_WRAPPERS`), compiled here
/// from its source as `settings.rs` is (see `env.rs`): pure parsing.
#[allow(dead_code, unreachable_pub, clippy::all)]
#[path = "../../../asmalloc/preload/src/wrappers/names.rs"]
mod wrapper_names;

/// `crate::wrappers::names`, as `settings.rs` names it.
pub(crate) mod wrappers {
    pub(crate) use super::wrapper_names as names;
}

/// What a target checks: panics when a property does not hold.
pub type Check = fn(&[u8]);

/// The fuzz targets, by the corpus directory each one uses.
pub const TARGETS: [(&str, Check); 4] = [
    ("c_scanner", c_scanner::check),
    ("rust_scanner", rust_scanner::check),
    ("env", env::check),
    ("log_reader", log_reader::check),
];

/// Number of physical lines in `bytes`: newlines, plus one for a last line
/// without one.
pub fn physical_lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
        + usize::from(!bytes.is_empty() && bytes.last() != Some(&b'\n'))
}

/// True for a site context: 16 lowercase hex digits.
pub(crate) fn is_fingerprint(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
