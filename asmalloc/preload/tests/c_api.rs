//! The C API and call sites, settings and report formats, under both
//! preload libraries (tests/common/mod.rs): the callback and its
//! thresholds, the original ASMalloc interface compiled with -Werror, the
//! pending site of `asm_mallocation_set`, net mmap/shm, sites named without
//! a table, bad settings, JSON reports in a file, the glibc-only report
//! sections; and, for libasmalloc_jem.so only, jemalloc's `*allocx` API and
//! that only that library carries jemalloc.

use std::path::PathBuf;

#[macro_use]
mod common;

use common::*;

fn callback_names_the_leaking_site_and_both_thresholds_fire(lib: Lib) {
    let exe = compile_linked(lib, "leaky", &[]);
    let r = run(&exe, Some(lib), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // Block threshold (256 KiB): the 1 MiB block, reported at the set.
    let block = r
        .stdout
        .lines()
        .find(|l| l.starts_with("block "))
        .unwrap_or_else(|| panic!("no block callback:\n{}", r.stdout));
    assert!(block.contains("loc=2 site=src/bigbuf.c:88"), "{block}");
    assert!(
        block.contains("delta=1048576 total=0 udata=ud time=1"),
        "{block}"
    );
    // Delta threshold (64 KiB, 0 s): the leaking site grows past it (and
    // the big block's site, by its 1 MiB); the healthy site never does.
    let all: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("delta "))
        .collect();
    assert!(
        all.iter()
            .all(|d| d.contains("loc=3 ") || d.contains("loc=2 ")),
        "{all:?}"
    );
    let deltas: Vec<&str> = all.into_iter().filter(|d| d.contains("loc=3 ")).collect();
    assert!(
        !deltas.is_empty(),
        "no delta callback for the leak:\n{}",
        r.stdout
    );
    for d in &deltas {
        assert!(
            d.contains("thread=0 type=1 loc=3 site=src/leaky.c:42"),
            "{d}"
        );
    }
    let total: i64 = deltas[0]
        .split("total=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(
        total > 64 * 1024 && total < 100 * 1024 + 100 * 64,
        "{total}"
    );
    // The exit report names the leak from the table.
    let row = site_row(&r.stderr, "src/leaky.c:42").unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(row.contains("leak_grow") && row.contains("MALLOC"), "{row}");
    assert!(row.trim_end().ends_with(" 100"), "100 blocks live: {row}");
    // The healthy site is back to zero.
    let row = site_row(&r.stderr, "src/cache.c:17");
    assert!(row.is_none_or(|r| r.contains(" 0 ")), "{row:?}");
}

fn original_api_compiles_with_wall_werror_and_works(lib: Lib) {
    let exe = compile_linked(
        lib,
        "api",
        &["-Wall", "-Wextra", "-Werror", "-pedantic", "-std=gnu11"],
    );
    let r = run(&exe, Some(lib), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let out = &r.stdout;
    for want in [
        "asm_cmd rv=0",
        "callback type=7 loc=12 delta=100000 total=0 udata=user-data",
        "get type=7 total_ok=1 delta=100000 time_ok=1",
        "asm_hook rv=0 mem_count_ok=1 net_mmaps=0 net_shm=0",
        "vm_stats set rss_ok=1",
        "get_vm_stats rv=0 desc_ok=1",
        "keys: VmPeak VmSize VmLck VmPin VmHWM VmRSS VmData VmStk VmExe VmLib VmPTE VmSwap",
        "set_key VmSwap=42 field=42",
        "log_vm_stats ok",
        "site_enter cache_set=1",
    ] {
        assert!(out.contains(want), "missing '{want}' in:\n{out}");
    }
    // ASM_CMD_PRINT_STATS and asm_hook printed reports; log_vm_stats a line.
    assert!(
        r.stderr.contains("ASM_CMD_PRINT_STATS ----"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("asm_hook ----"), "{}", r.stderr);
    assert!(
        r.stderr.contains("asmalloc: vm stats (kB) of pid"),
        "{}",
        r.stderr
    );
    // The call-site entry named its site at run time.
    assert!(r.stderr.contains("api.c:"), "{}", r.stderr);
    // Under jemalloc, ASM_CMD_PRINT_STATS adds jemalloc's own statistics.
    let jemalloc_stats = r.stderr.contains("asmalloc: jemalloc malloc_stats_print")
        && r.stderr.contains("___ Begin jemalloc statistics ___");
    assert_eq!(jemalloc_stats, lib == Lib::Jemalloc, "{}", r.stderr);
}

fn a_failed_call_uses_up_the_pending_site_and_callback_frees_are_charged(lib: Lib) {
    let exe = compile_linked(lib, "pending", &[]);
    let r = run(&exe, Some(lib), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0], "failed: (nil) (nil) 22 (nil) errno-ok 1",
        "{}",
        r.stdout
    );
    assert_eq!(
        lines[1], "site5 0 site6 0 site8 0 site11 0",
        "no site set before a failed call was charged later"
    );
    assert_eq!(lines[2], "victim freed 1 site9 before>0 1 after 0");
}

fn net_mmap_and_shm_are_exact(lib: Lib) {
    let exe = compile_linked(lib, "maps", &[]);
    let r = run(&exe, Some(lib), &[("ASMALLOC_FEATURES", "none")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let want = [
        "start net_mmaps=0 net_shm=0".to_string(),
        format!("mapped net_mmaps={} net_shm=0", 14 * page),
        format!("unmapped net_mmaps={} net_shm=0", 4 * page),
        format!("remapped net_mmaps={} net_shm=0", 8 * page),
        format!("attached net_mmaps=0 net_shm={}", 2 << 20),
        format!("detached one net_mmaps=0 net_shm={}", 1 << 20),
        "detached all net_mmaps=0 net_shm=0".to_string(),
    ];
    if r.stdout.contains("shmget failed") {
        eprintln!("System V shared memory unavailable here; mmap part checked only");
        assert!(r.stdout.contains(&want[3]), "{}", r.stdout);
        return;
    }
    let got: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(got, want, "{}", r.stderr);
}

fn call_sites_are_named_without_a_table(lib: Lib) {
    let exe = compile_linked(lib, "sites", &[]);
    let r = run(&exe, Some(lib), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let row = site_row(&r.stderr, "sites.c:9").unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(row.contains("grow") && row.contains("MALLOC"), "{row}");
    assert!(row.trim_end().ends_with(" 10"), "{row}");
}

fn bad_environment_values_are_named_and_the_program_runs(lib: Lib) {
    let exe = compile("mt", &[]);
    let plain = run(&exe, None, &[]);
    let r = run(
        &exe,
        Some(lib),
        &[
            ("ASMALLOC_BLOCK_THRESHOLD", "12Q"),
            ("ASMALLOC_REPORT_INTERVAL", "soon"),
            ("ASMALLOC_FEATURES", "DATESTAMP|BOGUS"),
            ("ASMALLOC_REPORT_AT_EXIT", "0"),
        ],
    );
    assert_eq!(r.code, Some(0));
    assert_eq!(r.stdout, plain.stdout);
    for want in [
        "asmalloc: ASMALLOC_BLOCK_THRESHOLD=12Q: bad size '12Q'",
        "; expected bytes with optional K/M/G suffix",
        "asmalloc: ASMALLOC_REPORT_INTERVAL=soon: bad duration 'soon'",
        "asmalloc: ASMALLOC_FEATURES=DATESTAMP|BOGUS: unknown feature 'BOGUS'",
    ] {
        assert_eq!(
            r.stderr.matches(want).count(),
            1,
            "'{want}' once in:\n{}",
            r.stderr
        );
    }
    assert!(
        !r.stderr.contains("---- pid"),
        "ASMALLOC_REPORT_AT_EXIT=0 is honoured"
    );
}

fn output_file_and_json_format(lib: Lib) {
    let exe = compile("mt", &[]);
    let prefix = format!("report-{}.", lib.name());
    let path = scratch().join(format!("{prefix}%p.jsonl"));
    let r = run(
        &exe,
        Some(lib),
        &[
            ("ASMALLOC_OUTPUT", path.to_str().unwrap()),
            ("ASMALLOC_REPORT_FORMAT", "json"),
        ],
    );
    assert_eq!(r.code, Some(0));
    assert!(!r.stderr.contains("asmalloc"), "{}", r.stderr);
    let files: Vec<PathBuf> = std::fs::read_dir(scratch())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(&prefix) && name.ends_with(".jsonl")
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let line = text.lines().last().unwrap();
    assert!(
        line.starts_with('{') && line.contains("\"threads\":{\"live\":1,\"total\":5}"),
        "{line}"
    );
    assert!(line.contains("\"ops\":{\"calloc\":{"), "{line}");
    // jemalloc's totals are there exactly when the heap is jemalloc's.
    assert_eq!(
        line.contains("\"jemalloc\":{\""),
        lib == Lib::Jemalloc,
        "{line}"
    );
}

fn glibc_only_sections_follow_the_heap(lib: Lib) {
    let exe = compile("mt", &[]);
    let r = run(&exe, Some(lib), &[("ASMALLOC_FEATURES", "all")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let na = r.stderr.matches(": not applicable (jemalloc)").count();
    match lib {
        Lib::Glibc => {
            assert!(r.stderr.contains("  mallinfo: arena "), "{}", r.stderr);
            assert!(r.stderr.contains("<malloc version="), "{}", r.stderr);
            assert_eq!(na, 0, "{}", r.stderr);
            assert!(!r.stderr.contains("  jemalloc: "), "{}", r.stderr);
        }
        Lib::Jemalloc => {
            for name in ["mallinfo", "malloc_info", "malloc_stats"] {
                assert!(
                    r.stderr
                        .contains(&format!("  {name}: not applicable (jemalloc)")),
                    "{}",
                    r.stderr
                );
            }
            assert!(!r.stderr.contains("<malloc version="), "{}", r.stderr);
            let line = r
                .stderr
                .lines()
                .find(|l| l.starts_with("  jemalloc: allocated "))
                .unwrap_or_else(|| panic!("{}", r.stderr));
            for field in ["active", "resident", "mapped", "retained"] {
                assert!(line.contains(field), "{line}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Every scenario above, under each library.

/// `ASM_CMD_SET_CALLBACK` flipping between two callbacks, each with its own
/// user data, while two threads fire the block callback: every call gets
/// its own function's data (the library once published the function and
/// the data apart: most calls got the other's).
fn a_callback_always_gets_its_own_user_data(lib: Lib) {
    let exe = compile_linked(lib, "callback_race", &[]);
    let r = run(&exe, Some(lib), &[("ASMALLOC_REPORT_AT_EXIT", "0")]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("paired: "), "{}", r.stdout);
}

under_both!(
    a_callback_always_gets_its_own_user_data,
    callback_names_the_leaking_site_and_both_thresholds_fire,
    original_api_compiles_with_wall_werror_and_works,
    a_failed_call_uses_up_the_pending_site_and_callback_frees_are_charged,
    net_mmap_and_shm_are_exact,
    call_sites_are_named_without_a_table,
    bad_environment_values_are_named_and_the_program_runs,
    output_file_and_json_format,
    glibc_only_sections_follow_the_heap,
);

// ---------------------------------------------------------------------------
// jemalloc only.

/// mallocx / rallocx / xallocx / sallocx / nallocx / dallocx / sdallocx
/// called directly: every site's net bytes and blocks in the exit report
/// equal what the program computed from `sallocx`.
#[test]
fn jemalloc_api_is_accounted_exactly() {
    let exe = compile_linked(Lib::Jemalloc, "jemapi", &[]);
    let r = run(
        &exe,
        Some(Lib::Jemalloc),
        &[("ASMALLOC_TOP_SITES", "50"), ("ASMALLOC_FEATURES", "all")],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("jemapi ok"), "{}", r.stdout);
    let report = &r.stderr[r.stderr.rfind("at exit ----").expect("exit report")..];
    let mut checked = 0;
    for line in r.stdout.lines().filter(|l| l.starts_with("site ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let site: u16 = words[1].parse().unwrap();
        let bytes = words[2].strip_prefix("bytes=").unwrap();
        let count = words[3].strip_prefix("count=").unwrap();
        match site_row_by_id(report, site) {
            Some(row) => {
                let cols: Vec<&str> = row.split_whitespace().collect();
                assert_eq!(
                    (cols[cols.len() - 2], cols[cols.len() - 1]),
                    (bytes, count),
                    "site {site}: {row}\n{report}"
                );
            }
            None => assert_eq!((bytes, count), ("0", "0"), "site {site}:\n{report}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 6, "{}", r.stdout);
    // Each kind of call was counted under its own operation.
    for op in ["mallocx", "rallocx", "dallocx"] {
        assert!(
            report.lines().any(|l| l.trim_start().starts_with(op)),
            "{op}:\n{report}"
        );
    }
    assert!(!report.contains("foreign_free"), "{report}");
}

/// libasmalloc.so never contains jemalloc (no feature can put it there:
/// the heap is chosen by the package being built); libasmalloc_jem.so does.
#[test]
fn only_the_jemalloc_library_carries_jemalloc() {
    let has = |which: Lib| {
        let bytes = std::fs::read(lib(which)).unwrap();
        bytes.windows(12).any(|w| w == b"_rjem_malloc")
    };
    assert!(!has(Lib::Glibc), "libasmalloc.so links jemalloc");
    assert!(has(Lib::Jemalloc), "libasmalloc_jem.so has no jemalloc");
}
