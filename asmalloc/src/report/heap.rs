//! Whose heap the reports describe: glibc's (the default) or jemalloc's.
//!
//! When the process's heap is jemalloc — `AsmAlloc<Jemalloc>` (registered
//! on its first allocation) or the jemalloc LD_PRELOAD library (registered
//! at start-up) — text reports add a `jemalloc:` line (allocated, active,
//! resident, mapped, retained), JSON reports a `"jemalloc"` object, and the
//! glibc-only sections (`MALLINFO`, `MALLOC_INFO`, `MALLOC_STATS`) say
//! "not applicable (jemalloc)" instead of printing numbers of a glibc heap
//! the program does not use.
//!
//! The choice is made at run time, never by the `jemalloc` cargo feature:
//! feature unification may turn the feature on in a build whose heap is
//! glibc's, and that build's reports must not change.

use std::sync::OnceLock;

/// jemalloc's totals in bytes (its `stats.*` mallctls; see jemalloc(3)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JemallocStats {
    /// Bytes in live allocations (`stats.allocated`).
    pub allocated: u64,
    /// Bytes in active pages (`stats.active`, ≥ allocated).
    pub active: u64,
    /// Bytes in physically resident data pages, metadata included
    /// (`stats.resident`).
    pub resident: u64,
    /// Bytes in active extents mapped by the allocator (`stats.mapped`).
    pub mapped: u64,
    /// Bytes in virtual memory retained for reuse, not returned to the OS
    /// (`stats.retained`).
    pub retained: u64,
}

/// Reads jemalloc's statistics (refreshing its epoch first); `None` if
/// they cannot be read (jemalloc built without statistics).
pub type JemallocStatsFn = fn() -> Option<JemallocStats>;

static JEMALLOC: OnceLock<JemallocStatsFn> = OnceLock::new();

/// Declares the process's heap to be jemalloc's, with `read` giving its
/// statistics. The first call wins; it does not allocate.
pub fn set_jemalloc_stats(read: JemallocStatsFn) {
    let _ = JEMALLOC.set(read);
}

/// True once the heap has been declared to be jemalloc's.
pub fn heap_is_jemalloc() -> bool {
    JEMALLOC.get().is_some()
}

/// jemalloc's statistics now, if the heap is jemalloc's.
pub fn jemalloc_stats() -> Option<JemallocStats> {
    JEMALLOC.get().and_then(|read| read())
}

/// Called by `AsmAlloc<Jemalloc>` on its first allocation: reports read
/// jemalloc's statistics through tikv-jemalloc-ctl.
#[cfg(feature = "jemalloc")]
pub(crate) fn note_jemalloc_heap() {
    set_jemalloc_stats(read_ctl);
}

/// jemalloc's statistics through tikv-jemalloc-ctl.
#[cfg(feature = "jemalloc")]
pub fn read_ctl() -> Option<JemallocStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some(JemallocStats {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        mapped: stats::mapped::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
    })
}
