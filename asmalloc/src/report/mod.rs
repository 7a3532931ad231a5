//! Reports: the snapshot as text for people and as JSON lines for tools.
//!
//! What a text report holds follows the feature bits, as in the original:
//! date stamp, thread stats, memory counts per operation, glibc's own
//! statistics (or jemalloc's, see [`set_jemalloc_stats`]), VM stats — and
//! always the top sites by net bytes, *named* from the site table.

#[allow(unsafe_code)]
mod glibc;
mod heap;
mod json;
mod stacks;
mod table;
mod text;

#[cfg(feature = "jemalloc")]
pub(crate) use heap::note_jemalloc_heap;
#[cfg(feature = "jemalloc")]
pub use heap::read_ctl as read_jemalloc_stats_ctl;
pub use heap::{
    JemallocStats, JemallocStatsFn, heap_is_jemalloc, jemalloc_stats, set_jemalloc_stats,
};
pub use json::write_json_line;
pub use stacks::write_text as write_stacks_text;
pub use table::{Align, write_table};
pub use text::{datestamp, human_bytes, write_text};

use std::io::{self, Write};

use crate::snapshot::Snapshot;

/// How reports, leak verdicts and `asmalloc report` (its table, plot and
/// page) name site 0: the allocations no site was set for.
pub const UNKNOWN_SITE: &str = "(unknown site)";

/// A site as leak verdicts and `asmalloc report` name it:
/// `site 7 (cache) src/cache.rs:52 Cache::insert`, `site 0 (unknown site)`,
/// `site 9 (not in the site table)` when nothing names it. A name without a
/// line shows its file (or module) alone, one without a file its function.
pub fn site_label(id: u16, type_name: &str, file: &str, line: u32, function: &str) -> String {
    if id == 0 {
        return format!("site 0 {UNKNOWN_SITE}");
    }
    if type_name.is_empty() && file.is_empty() && function.is_empty() {
        return format!("site {id} (not in the site table)");
    }
    let mut label = format!("site {id}");
    if !type_name.is_empty() {
        label.push_str(&format!(" ({type_name})"));
    }
    match (file, line) {
        ("", _) => {}
        (file, 0) => label.push_str(&format!(" {file}")),
        (file, line) => label.push_str(&format!(" {file}:{line}")),
    }
    if !function.is_empty() {
        label.push_str(&format!(" {function}"));
    }
    label
}

/// `19.4 MiB over 3.5 s (5.5 MiB/s)`: a growth, its span and its rate (the
/// two first, divided).
pub fn growth_text(growth_bytes: i64, over_ns: i64, rate_bytes_per_s: i64) -> String {
    format!(
        "{} over {} ({}/s)",
        human_bytes(growth_bytes),
        seconds_text(over_ns),
        human_bytes(rate_bytes_per_s)
    )
}

/// A never mind's reason, from its growth and the growth reported before
/// it: `fell back: its floor is -16.0 MiB from where it started (it had
/// grown by 16.0 MiB)` when the growth is under half of that, else
/// `stopped growing: its floor is +40.0 MiB from where it started and no
/// longer rises (+38.0 MiB when last reported)`.
pub fn never_mind_text(growth_bytes: i64, reported_growth_bytes: i64) -> String {
    let signed = |b: i64| {
        if b < 0 {
            human_bytes(b)
        } else {
            format!("+{}", human_bytes(b))
        }
    };
    if crate::detector::Verdict::fell_back(
        growth_bytes,
        reported_growth_bytes,
        crate::detector::DetectorConfig::DEFAULT.nevermind_fraction,
    ) {
        format!(
            "fell back: its floor is {} from where it started (it had grown by {})",
            signed(growth_bytes),
            human_bytes(reported_growth_bytes)
        )
    } else {
        format!(
            "stopped growing: its floor is {} from where it started and no longer rises ({} \
             when last reported)",
            signed(growth_bytes),
            signed(reported_growth_bytes)
        )
    }
}

/// `0.52 s`, `3.5 s`, `46 s`, `240 s`: two decimals under 10 s, one under
/// 100 s, trailing zeros dropped.
pub fn seconds_text(ns: i64) -> String {
    let s = ns as f64 / 1e9;
    let text = match s.abs() {
        a if a < 10.0 => format!("{s:.2}"),
        a if a < 100.0 => format!("{s:.1}"),
        _ => format!("{s:.0}"),
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text} s")
}

/// How many sites a text report lists by default.
pub const DEFAULT_TOP_SITES: usize = 10;

/// Takes a snapshot and writes the text report to stderr (and, with
/// `ASMALLOC_PPROF`, the pprof heap profile).
pub fn print_report() {
    let snap = Snapshot::take();
    let mut out = Vec::with_capacity(4096);
    if write_text(&mut out, &snap, DEFAULT_TOP_SITES).is_ok() {
        write_stacks_text(&mut out, DEFAULT_TOP_SITES.min(10));
        let _ = io::stderr().write_all(&out);
    }
    crate::pprof::write(&snap);
}
