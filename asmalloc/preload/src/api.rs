//! The C API's logic, in safe Rust; `exports` converts the C arguments.

use std::sync::atomic::AtomicBool;

use rt::{Features, Site, SiteTable};

use crate::guard::Guard;
use crate::report::{self, Reason};

/// Features that make `asm_hook` log something (the callback features do
/// not).
const LOGGING: Features = Features::DATESTAMP
    .union(Features::THREAD_STATS)
    .union(Features::MEM_COUNT_STATS)
    .union(Features::MALLOC_INFO)
    .union(Features::MALLOC_STATS)
    .union(Features::MALLINFO)
    .union(Features::VM_STATS);

/// What `asm_hook` hands back: the `asm_stats_t` numbers and, with
/// `ASM_LOG_VM_STATS`, the VM stats.
pub(crate) struct Hook {
    pub mem_count: i64,
    pub net_mmaps: i64,
    pub net_shm: i64,
    pub vm: Option<rt::VmStats>,
}

/// `asm_hook`: logs what the features ask for and returns the numbers.
pub(crate) fn hook() -> Hook {
    let _guard = Guard::enter();
    let features = rt::features();
    if features.intersects(LOGGING) {
        report::emit(Reason::Hook);
    }
    // Every asm_hook call is also a sample for the leak monitor.
    report::sample();
    let snap = rt::Snapshot::take();
    Hook {
        mem_count: snap.net_bytes,
        net_mmaps: snap.net_mapped,
        net_shm: snap.net_shm,
        vm: features
            .contains(Features::VM_STATS)
            .then(rt::VmStats::read_self),
    }
}

/// `ASM_CMD_PRINT_STATS`: a report; in the jemalloc build (text format)
/// followed by jemalloc's own `malloc_stats_print` output.
pub(crate) fn print_stats() {
    report::emit(Reason::Command);
    #[cfg(jemalloc_backend)]
    if crate::settings::format() == crate::settings::Format::Text {
        let _guard = Guard::enter();
        let mut text = b"asmalloc: jemalloc malloc_stats_print (merged arenas):\n".to_vec();
        text.extend(crate::real::stats_text());
        crate::output::emit(&text);
    }
}

static WARNED_CMD: AtomicBool = AtomicBool::new(false);

/// An unknown `asm_cmd` command.
pub(crate) fn unknown_command(cmd: i32) {
    rt::warn_once(
        &WARNED_CMD,
        format_args!(
            "asm_cmd: unknown command {cmd}; known are ASM_CMD_SET_FEATURES (0), \
             ASM_CMD_SET_THRESHOLDS (1), ASM_CMD_SET_CALLBACK (2), ASM_CMD_PRINT_STATS (3). (warned once)"
        ),
    );
}

/// `ASM_CMD_SET_THRESHOLDS`.
pub(crate) fn set_thresholds(block: usize, delta: usize, seconds: i64) {
    rt::set_thresholds(rt::Thresholds {
        block_bytes: block,
        delta_bytes: delta,
        delta_seconds: seconds,
    });
}

/// The VM stats of process `pid` (0 or our own pid = this process).
pub(crate) fn vm_stats_of(pid: i32) -> Option<rt::VmStats> {
    let _guard = Guard::enter();
    let path = if pid == 0 || pid == crate::syscalls::getpid() {
        "/proc/self/status".to_string()
    } else {
        format!("/proc/{pid}/status")
    };
    std::fs::read_to_string(path)
        .ok()
        .map(|s| rt::VmStats::parse(&s))
}

/// `log_vm_stats`: one line on the report output.
pub(crate) fn log_vm_stats(pid: i32, vm: &rt::VmStats) {
    use std::fmt::Write;
    let _guard = Guard::enter();
    let mut line = format!("asmalloc: vm stats (kB) of pid {pid}:");
    for (key, value) in rt::__private::vm_stats::VM_KEYS.iter().zip(vm.values) {
        match value {
            Some(v) => {
                let _ = write!(line, " {key} {v}");
            }
            None => {
                let _ = write!(line, " {key} absent");
            }
        }
    }
    line.push('\n');
    crate::output::emit(line.as_bytes());
}

/// One entry of a C site table, converted.
pub(crate) struct Entry {
    pub type_id: i64,
    pub file: &'static str,
    pub line: i64,
    pub id: i64,
    pub function: &'static str,
}

/// `asm_register_mallocations`: builds and registers the site table.
/// The error text has no `asmalloc: ` prefix.
pub(crate) fn register(types: Vec<&'static str>, entries: Vec<Entry>) -> Result<(), String> {
    let _guard = Guard::enter();
    if types.is_empty() || entries.is_empty() {
        return Err(
            "asm_register_mallocations: the table needs type 0 (NONE) and entry 0 (no site)".into(),
        );
    }
    let mut sites = Vec::with_capacity(entries.len());
    for (index, e) in entries.iter().enumerate() {
        let id = u16::try_from(e.id).map_err(|_| {
            format!(
                "asm_register_mallocations: entry {index} has id {}; ids are 0..65535",
                e.id
            )
        })?;
        let type_id = u16::try_from(e.type_id)
            .ok()
            .filter(|t| usize::from(*t) < types.len())
            .ok_or_else(|| {
                format!(
                    "asm_register_mallocations: entry {index} ({}:{}) has type {}, not in the {} type names",
                    e.file,
                    e.line,
                    e.type_id,
                    types.len()
                )
            })?;
        let line = u32::try_from(e.line).unwrap_or(0);
        sites.push(Site::new(id, type_id, e.file, line, e.function));
    }
    let table: &'static SiteTable = Box::leak(Box::new(SiteTable::new(
        Box::leak(types.into_boxed_slice()),
        Box::leak(sites.into_boxed_slice()),
    )));
    rt::register_sites(table).map_err(|e| {
        let text = e.to_string();
        format!(
            "asm_register_mallocations: {}",
            text.strip_prefix("asmalloc: ").unwrap_or(&text)
        )
    })
}

/// `asm_site_enter` after the cache missed: the site's id.
pub(crate) fn resolve_site(
    type_id: u16,
    file: &'static str,
    line: u32,
    function: &'static str,
) -> u16 {
    let _guard = Guard::enter();
    rt::__private::site::resolve(type_id, file, line, function)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_table_is_refused_with_a_reason() {
        let err = register(
            vec!["NONE", "MALLOC"],
            vec![
                Entry {
                    type_id: 0,
                    file: "",
                    line: 0,
                    id: 0,
                    function: "",
                },
                Entry {
                    type_id: 9,
                    file: "a.c",
                    line: 3,
                    id: 1,
                    function: "f",
                },
            ],
        )
        .unwrap_err();
        assert!(err.contains("has type 9, not in the 2 type names"), "{err}");
        assert!(register(vec![], vec![]).is_err());
    }
}
