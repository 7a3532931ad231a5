//! `ASMALLOC_PPROF=path`: the process's heap as a pprof profile (gzipped
//! `profile.proto`), rewritten from each monitor sample and each report —
//! and, under the LD_PRELOAD library, at exit — for `go tool pprof` and
//! continuous profilers that collect `.pb.gz` files.
//!
//! The encoding is `asmalloc-pprof`'s (shared with `asmalloc report
//! --pprof`), compiled in with the cargo feature `pprof` (the preload
//! libraries enable it). Without it the variable is refused with a clear
//! message. Writing happens off the allocation path, on the thread that
//! took the snapshot (the monitor or reporter thread, or the exiting one),
//! as the library's own work; the file is replaced atomically (a reader
//! sees the previous profile or the new one) and a profile never replaces
//! one taken later.

use std::sync::Mutex;

use crate::config::ConfigError;
use crate::snapshot::Snapshot;

/// The variable, with its accepted form (part of [`crate::env::ENV_VARS`]).
pub const PPROF_VARS: [(&str, &str); 1] = [(
    "ASMALLOC_PPROF",
    "a file path for the pprof heap profile (%p is replaced by the process id) in an existing \
     directory",
)];

/// The configured path (as given, `%p` not yet replaced).
static PATH: Mutex<Option<String>> = Mutex::new(None);

/// Applies `ASMALLOC_PPROF`; `Ok(false)` for another name.
pub fn apply_setting(name: &str, value: &str) -> Result<bool, ConfigError> {
    if name != "ASMALLOC_PPROF" {
        return Ok(false);
    }
    let v = value.trim();
    if v.is_empty() || v.contains('\0') {
        return Err(ConfigError::OutOfRange(
            "an empty path or a NUL byte".into(),
        ));
    }
    if !cfg!(feature = "pprof") {
        return Err(ConfigError::OutOfRange(
            "this build of asmalloc has no pprof support (the cargo feature `pprof`)".into(),
        ));
    }
    let path = std::path::Path::new(v);
    if path.file_name().is_none() || v.ends_with('/') {
        return Err(ConfigError::OutOfRange(format!("'{v}' names no file")));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.to_string_lossy().contains("%p") && !dir.is_dir() {
        return Err(ConfigError::OutOfRange(format!(
            "its directory {} does not exist",
            dir.display()
        )));
    }
    *PATH.lock().unwrap_or_else(|e| e.into_inner()) = Some(v.to_string());
    Ok(true)
}

/// True when `ASMALLOC_PPROF` is set (and this build can write profiles).
pub fn configured() -> bool {
    PATH.lock().unwrap_or_else(|e| e.into_inner()).is_some()
}

#[cfg(feature = "pprof")]
mod writer {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

    use asmalloc_pprof::{HeapProfile, HeapSite};

    use crate::site;
    use crate::snapshot::Snapshot;

    /// One writer at a time (a yielding spin lock, so the LD_PRELOAD
    /// library's fork handlers can take it across `fork`).
    static WRITING: AtomicBool = AtomicBool::new(false);
    /// The monotonic time of the snapshot last written (0 = none).
    static WRITTEN_AT: AtomicI64 = AtomicI64::new(0);
    /// The process's first snapshot written (for the profile's duration).
    static FIRST_NS: AtomicI64 = AtomicI64::new(0);
    static WARNED: AtomicBool = AtomicBool::new(false);

    pub fn lock() {
        while WRITING
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
    }

    pub fn unlock() {
        WRITING.store(false, Ordering::Release);
    }

    /// The profile of a snapshot: every site with activity.
    pub fn profile(snap: &Snapshot) -> HeapProfile {
        let first = match FIRST_NS.compare_exchange(
            0,
            snap.time_ns,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => snap.time_ns,
            Err(t) => t,
        };
        HeapProfile {
            time_ns: snap.time_ns,
            duration_ns: (snap.time_ns - first).max(0),
            sites: snap
                .sites
                .iter()
                .map(|s| {
                    let info = site::describe(s.id).filter(|_| s.id != 0);
                    HeapSite {
                        id: s.id,
                        type_name: info.map_or("", |i| i.type_name).to_string(),
                        file: info.map_or("", |i| i.file).to_string(),
                        line: info.map_or(0, |i| i.line),
                        function: info.map_or("", |i| i.function).to_string(),
                        address: site::address_of(s.id).map(|a| a as u64),
                        pid: None,
                        inuse_bytes: s.net_bytes,
                        inuse_objects: s.net_count,
                        alloc_bytes: s.alloc_bytes as i64,
                        alloc_objects: s.allocs as i64,
                    }
                })
                .collect(),
            comments: vec![format!(
                "asmalloc heap profile of pid {}: exact counts per allocation site",
                std::process::id()
            )],
        }
    }

    pub fn write(path: &str, snap: &Snapshot) {
        let path = path.replace("%p", &std::process::id().to_string());
        let bytes = profile(snap).encode();
        lock();
        // A snapshot older than the one already written (a sample that
        // raced a report) does not replace it.
        let result = if snap.elapsed_ns >= WRITTEN_AT.load(Ordering::Relaxed) {
            let r = asmalloc_pprof::write_atomically(std::path::Path::new(&path), &bytes);
            if r.is_ok() {
                WRITTEN_AT.store(snap.elapsed_ns, Ordering::Relaxed);
            }
            r
        } else {
            Ok(())
        };
        unlock();
        if let Err(e) = result {
            crate::diag::warn_once(
                &WARNED,
                format_args!(
                    "ASMALLOC_PPROF: cannot write {path}: {e}; the program runs on without profiles"
                ),
            );
        }
    }
}

/// Writes the profile of `snap` if `ASMALLOC_PPROF` is set. Errors are
/// reported once on stderr and never stop the program. Allocates: call it
/// off the allocation path, as the library's own work.
pub fn write(snap: &Snapshot) {
    let path = PATH.lock().unwrap_or_else(|e| e.into_inner()).clone();
    #[cfg(feature = "pprof")]
    if let Some(path) = path {
        writer::write(&path, snap);
    }
    #[cfg(not(feature = "pprof"))]
    let _ = (path, snap);
}

/// Call before `fork` (the LD_PRELOAD library's prepare handler): no
/// profile is half-written across it.
pub fn before_fork() {
    #[cfg(feature = "pprof")]
    writer::lock();
}

/// Call after `fork`, in the parent and in the child.
pub fn after_fork() {
    #[cfg(feature = "pprof")]
    writer::unlock();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let e = apply_setting("ASMALLOC_PPROF", "").unwrap_err();
        assert!(e.to_string().contains("empty path"), "{e}");
        assert_eq!(apply_setting("ASMALLOC_OTHER", "x"), Ok(false));
        if cfg!(feature = "pprof") {
            let e = apply_setting("ASMALLOC_PPROF", "/no/such/dir/heap.pb.gz").unwrap_err();
            assert!(
                e.to_string()
                    .contains("directory /no/such/dir does not exist"),
                "{e}"
            );
            let e = apply_setting("ASMALLOC_PPROF", "/tmp/").unwrap_err();
            assert!(e.to_string().contains("names no file"), "{e}");
        } else {
            let e = apply_setting("ASMALLOC_PPROF", "/tmp/heap.pb.gz").unwrap_err();
            assert!(e.to_string().contains("no pprof support"), "{e}");
        }
    }
}
