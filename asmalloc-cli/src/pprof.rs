//! `asmalloc report LOG --pprof FILE.pb.gz`: the log's last numbers per
//! site as a pprof heap profile (the runtime's `ASMALLOC_PPROF` writes the
//! same format live; both use `asmalloc-pprof`).
//!
//! Every value is the site's at the last line that listed it: a line lists
//! each site whose net bytes, blocks or calls changed (up to the log's
//! per-line limit, sites whose calls alone changed coming last), and the
//! monitor takes a last sample at exit, so these are the numbers at the
//! end of the run. Logs written before calls and allocated bytes were
//! logged show 0 for `alloc_objects` and `alloc_space`. A log of several processes gives one profile,
//! each sample labelled with its `pid`.

use std::path::Path;

use asmalloc_pprof::{HeapProfile, HeapSite};

use crate::log::Log;

/// The profile of a log.
pub(crate) fn profile(log: &Log) -> HeapProfile {
    let multi = log.pids().len() > 1;
    let sites = log
        .sites
        .iter()
        .filter(|(_, s)| s.last_bytes() != 0 || s.last_count != 0 || s.last_allocs != 0)
        .map(|(&(pid, id), s)| HeapSite {
            id,
            type_name: s.name.type_name.clone(),
            file: s.name.file.clone(),
            line: s.name.line,
            function: s.name.function.clone(),
            address: None,
            pid: multi.then_some(pid),
            inuse_bytes: s.last_bytes(),
            inuse_objects: s.last_count,
            alloc_bytes: i64::try_from(s.last_alloc_bytes).unwrap_or(i64::MAX),
            alloc_objects: i64::try_from(s.last_allocs).unwrap_or(i64::MAX),
        })
        .collect();
    HeapProfile {
        time_ns: log.end_ns(),
        duration_ns: log.end_ns() - log.start_ns(),
        sites,
        comments: vec![
            "asmalloc heap profile from a leak-monitor log: exact counts per allocation \
                        site at the log's last sample"
                .to_string(),
        ],
    }
}

/// Writes the log's profile to `path` (atomically).
pub(crate) fn write(log: &Log, path: &Path) -> std::io::Result<()> {
    profile(log).write(path)
}
