//! The machine-readable report: one JSON object per line.
//!
//! Schema (stable; fields are only ever added):
//! ```text
//! {"time_ns": i64, "features": u64,
//!  "threads": {"live": u64, "total": u64},
//!  "net_bytes": i64, "net_count": i64, "net_mapped": i64, "net_shm": i64,
//!  "ops": {"malloc": {"count": u64, "bytes": u64}, ...},        // non-zero ops
//!  "sites": [{"id": u16, "type": str, "file": str, "line": u32,
//!             "function": str, "net_bytes": i64, "net_count": i64,
//!             "allocs": u64, "frees": u64}, ...],                // by net bytes
//!  "jemalloc": {"allocated": u64, "active": u64, "resident": u64,
//!               "mapped": u64, "retained": u64},   // only when the heap is jemalloc's
//!  "sample_bytes": u64,                            // only with sampled stacks on:
//!  "stacks": [{"id": u16, "site": u16, "est_bytes": i64, "est_blocks": i64,
//!              "frames": [{"addr": u64, "function": str, "file": str,
//!                          "line": u32}, ...]}, ...],  // live ones, largest first
//!  "stacks_truncated": u64}
//! ```
//!
//! The stacks are the monitor log's records (`log_format::LogStack`), at
//! most `log_format::MAX_LOG_STACKS`, frames innermost first.

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use crate::site;
use crate::snapshot::Snapshot;

/// Writes `snap` as one JSON line (with every active site).
pub fn write_json_line(w: &mut dyn Write, snap: &Snapshot) -> io::Result<()> {
    let mut ops = Map::new();
    for s in snap.ops.iter().filter(|s| s.count > 0) {
        ops.insert(
            s.op.name().to_string(),
            json!({"count": s.count, "bytes": s.bytes}),
        );
    }
    let sites: Vec<Value> = snap
        .sites
        .iter()
        .map(|s| {
            let info = site::describe(s.id);
            let mut site = json!({
                "id": s.id,
                "type": info.map_or("", |i| i.type_name),
                "file": info.map_or("", |i| i.file),
                "line": info.map_or(0, |i| i.line),
                "function": info.map_or("", |i| i.function),
                "net_bytes": s.net_bytes,
                "net_count": s.net_count,
                "allocs": s.allocs,
                "frees": s.frees,
                "alloc_bytes": s.alloc_bytes,
            });
            if crate::peaks::sampled() {
                site["peak_bytes"] = json!(crate::peaks::peak(s.id).max(s.net_bytes));
            }
            site
        })
        .collect();
    let mut line = json!({
        "time_ns": snap.time_ns,
        "features": snap.features.bits(),
        "threads": {"live": snap.threads_live, "total": snap.threads_total},
        "net_bytes": snap.net_bytes,
        "net_count": snap.net_count,
        "net_mapped": snap.net_mapped,
        "net_shm": snap.net_shm,
        "ops": ops,
        "sites": sites,
    });
    if let Some(j) = super::heap::jemalloc_stats() {
        line["jemalloc"] = json!({
            "allocated": j.allocated,
            "active": j.active,
            "resident": j.resident,
            "mapped": j.mapped,
            "retained": j.retained,
        });
    }
    if let Some((stacks, truncated)) = crate::stacks::log::for_report() {
        line["sample_bytes"] = json!(crate::stacks::mean());
        line["stacks"] = serde_json::to_value(stacks).unwrap_or_default();
        line["stacks_truncated"] = json!(truncated);
    }
    serde_json::to_writer(&mut *w, &line)?;
    w.write_all(b"\n")
}
