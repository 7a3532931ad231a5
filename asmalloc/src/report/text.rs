//! The human-readable report.

use std::io::{self, Write};

use super::{glibc, heap};
use crate::config::Features;
use crate::op::Op;
use crate::site;
use crate::snapshot::Snapshot;
use crate::vm_stats::{VM_KEYS, VmStats};

/// `12.3 MiB`, `512 B`, `-1.0 KiB`.
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes.unsigned_abs() as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let sign = if bytes < 0 { "-" } else { "" };
    if unit == 0 {
        format!("{sign}{v} B")
    } else {
        format!("{sign}{v:.1} {}", UNITS[unit])
    }
}

/// `2026-11-25 20:40:01 UTC` from nanoseconds since the epoch.
pub fn datestamp(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), after H. Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Writes the text report of `snap` with its `top` sites by net bytes.
pub fn write_text(w: &mut dyn Write, snap: &Snapshot, top: usize) -> io::Result<()> {
    let f = snap.features;
    write!(w, "asmalloc: report")?;
    if f.contains(Features::DATESTAMP) {
        write!(w, " at {}", datestamp(snap.time_ns))?;
    }
    writeln!(w)?;
    if f.contains(Features::THREAD_STATS) {
        writeln!(
            w,
            "  threads: {} live, {} total",
            snap.threads_live, snap.threads_total
        )?;
    }
    writeln!(
        w,
        "  heap: {} net in {} blocks ({} bytes); mapped: {}; shm: {}",
        human_bytes(snap.net_bytes),
        snap.net_count,
        snap.net_bytes,
        human_bytes(snap.net_mapped),
        human_bytes(snap.net_shm)
    )?;
    let jemalloc = heap::heap_is_jemalloc();
    if jemalloc {
        write_jemalloc_stats(w, heap::jemalloc_stats())?;
    }
    if f.contains(Features::MEM_COUNT_STATS) {
        writeln!(w, "  operations (calls, bytes):")?;
        for s in snap.ops.iter().filter(|s| s.count > 0) {
            writeln!(
                w,
                "    {:<13} {:>12} {:>14}",
                s.op.name(),
                s.count,
                human_bytes(s.bytes as i64)
            )?;
        }
        let foreign = snap.op(Op::ForeignFree);
        if foreign.count > 0 {
            writeln!(
                w,
                "    ({} free{} of {} in blocks asmalloc never handed out — allocated before it was loaded, \
                 or by a call that bypasses malloc such as __libc_malloc — were passed on untouched \
                 and not charged to any site)",
                foreign.count,
                if foreign.count == 1 { "" } else { "s" },
                human_bytes(foreign.bytes as i64)
            )?;
        }
    }
    for (feature, name, glibc_report) in [
        (
            Features::MALLINFO,
            "mallinfo",
            glibc::write_mallinfo as fn(&mut dyn Write) -> io::Result<()>,
        ),
        (
            Features::MALLOC_INFO,
            "malloc_info",
            glibc::write_malloc_info,
        ),
        (
            Features::MALLOC_STATS,
            "malloc_stats",
            glibc::print_malloc_stats,
        ),
    ] {
        if !f.contains(feature) {
            continue;
        }
        if jemalloc {
            // glibc's numbers would describe a heap the program does not use.
            writeln!(w, "  {name}: not applicable (jemalloc)")?;
        } else {
            glibc_report(w)?;
        }
    }
    if f.contains(Features::VM_STATS) {
        write_vm_stats(w, &VmStats::read_self())?;
    }
    write_top_sites(w, snap, top)
}

fn write_jemalloc_stats(w: &mut dyn Write, stats: Option<heap::JemallocStats>) -> io::Result<()> {
    let Some(s) = stats else {
        return writeln!(w, "  jemalloc: statistics unavailable");
    };
    let b = |v: u64| human_bytes(i64::try_from(v).unwrap_or(i64::MAX));
    writeln!(
        w,
        "  jemalloc: allocated {}, active {}, resident {}, mapped {}, retained {}",
        b(s.allocated),
        b(s.active),
        b(s.resident),
        b(s.mapped),
        b(s.retained)
    )
}

fn write_vm_stats(w: &mut dyn Write, vm: &VmStats) -> io::Result<()> {
    write!(w, "  vm (kB):")?;
    for (key, value) in VM_KEYS.iter().zip(vm.values) {
        match value {
            Some(v) => write!(w, " {key} {v}")?,
            None => write!(w, " {key} absent")?,
        }
    }
    writeln!(w)
}

/// The top sites: calls and bytes allocated in all, the peak net bytes the
/// monitor saw (a column only when it has sampled, see [`crate::peaks`]),
/// and the net bytes and blocks now.
fn write_top_sites(w: &mut dyn Write, snap: &Snapshot, top: usize) -> io::Result<()> {
    let peaks = crate::peaks::sampled();
    let rows: Vec<Vec<String>> = snap
        .sites
        .iter()
        .take(top)
        .map(|s| {
            let (type_name, place, function) = match site::describe(s.id) {
                Some(i) if s.id != 0 => (
                    if i.type_name.is_empty() {
                        "-"
                    } else {
                        i.type_name
                    }
                    .to_string(),
                    match (i.file, i.line) {
                        ("", _) => "-".to_string(),
                        (file, 0) => file.to_string(),
                        (file, line) => format!("{file}:{line}"),
                    },
                    if i.function.is_empty() {
                        "?"
                    } else {
                        i.function
                    }
                    .to_string(),
                ),
                _ if s.id == 0 => ("-".into(), super::UNKNOWN_SITE.into(), "-".into()),
                _ => ("?".into(), "(not in site table)".into(), "?".into()),
            };
            let mut row = vec![
                s.id.to_string(),
                type_name,
                place,
                function,
                s.allocs.to_string(),
                s.alloc_bytes.to_string(),
            ];
            if peaks {
                row.push(crate::peaks::peak(s.id).max(s.net_bytes).to_string());
            }
            row.extend([
                human_bytes(s.net_bytes),
                s.net_bytes.to_string(),
                s.net_count.to_string(),
            ]);
            row
        })
        .collect();
    writeln!(
        w,
        "  top {} of {} sites by net bytes, then bytes allocated in all:",
        rows.len(),
        snap.sites.len()
    )?;
    use super::table::{Align, write_table};
    let mut header = vec![
        "id",
        "type",
        "file:line",
        "function",
        "calls",
        "total bytes",
    ];
    if peaks {
        header.push("peak bytes");
    }
    header.extend(["net", "net bytes", "net count"]);
    let mut align = vec![Align::Right, Align::Left, Align::Left, Align::Left];
    align.resize(header.len(), Align::Right);
    write_table(w, "    ", &header, &align, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(-3 * 1024 * 1024), "-3.0 MiB");
    }

    #[test]
    fn dates() {
        assert_eq!(datestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            datestamp(1_795_638_001 * 1_000_000_000),
            "2026-11-25 20:20:01 UTC"
        );
        assert_eq!(
            datestamp(951_782_400 * 1_000_000_000),
            "2000-02-29 00:00:00 UTC"
        );
    }
}
