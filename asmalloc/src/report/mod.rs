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
pub use table::{Align, write_table};
pub use text::{human_bytes, write_text};

use std::io::{self, Write};

use crate::snapshot::Snapshot;

/// How many sites a text report lists by default.
pub const DEFAULT_TOP_SITES: usize = 10;

/// Takes a snapshot and writes the text report to stderr.
pub fn print_report() {
    let snap = Snapshot::take();
    let mut out = Vec::with_capacity(4096);
    if write_text(&mut out, &snap, DEFAULT_TOP_SITES).is_ok() {
        let _ = io::stderr().write_all(&out);
    }
}
