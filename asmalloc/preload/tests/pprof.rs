//! `ASMALLOC_PPROF`: the heap profile the library writes, read back by Go's
//! own pprof (`go tool pprof`, Debian's golang-go, which .ci/run installs;
//! the tests fail when it is missing), under both preload libraries:
//!
//! * at exit, an uninstrumented program's leaking function is pprof's top
//!   entry by live bytes, with its `file:line`, the exit report's bytes and
//!   blocks, its calling address, and the churning function's calls and
//!   bytes under `alloc_objects` / `alloc_space`;
//! * while the program runs, each leak-monitor sample rewrites the profile
//!   (a collector sees it before the program exits);
//! * with a site table and no exit report (`ASMALLOC_REPORT_AT_EXIT=0`) the
//!   profile is still written, naming the table's site;
//! * a path in a missing directory is refused in one clear line and the
//!   program runs on, unchanged.

use std::path::Path;
use std::process::Command;

#[macro_use]
mod common;

use asmalloc_test_support::{TopRow, fresh_dir, pprof_top};
use common::*;

/// The 1-based line of tests/c/FILE holding `needle`.
fn line_of(file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(manifest_dir().join("tests/c").join(file)).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

fn row<'a>(rows: &'a [TopRow], function: &str) -> &'a TopRow {
    rows.iter()
        .find(|r| r.function == function)
        .unwrap_or_else(|| panic!("no {function} in {rows:#?}"))
}

fn the_exit_profile_names_the_leaking_function_with_the_reports_numbers(lib: Lib) {
    let exe = compile("pprof_leak", &[]);
    let dir = fresh_dir(&format!("pprof-exit-{}", lib.name()));
    let profile = dir.join("heap.pb.gz");
    let r = run(
        &exe,
        Some(lib),
        &[
            ("ASMALLOC_CALLERS", "1"),
            ("ASMALLOC_PPROF", profile.to_str().unwrap()),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // The exit report's row for keep(): its net bytes and blocks.
    let report_row = site_row(&r.stderr, " keep ").unwrap_or_else(|| panic!("{}", r.stderr));
    let cols: Vec<&str> = report_row.split_whitespace().collect();
    let (net_bytes, net_count): (i64, i64) = (
        cols[cols.len() - 2].parse().unwrap(),
        cols[cols.len() - 1].parse().unwrap(),
    );
    assert_eq!(net_count, 500, "{report_row}");
    assert!(net_bytes >= 500 * 1000, "{report_row}");

    let keep_line = format!("pprof_leak.c:{}", line_of("pprof_leak.c", "void *keep("));
    let inuse = pprof_top(&profile, "inuse_space");
    assert_eq!(inuse[0].function, "keep", "{inuse:#?}");
    assert!(inuse[0].place.ends_with(&keep_line), "{inuse:#?}");
    assert_eq!(inuse[0].flat, net_bytes, "{inuse:#?}");
    assert_eq!(row(&pprof_top(&profile, "inuse_objects"), "keep").flat, 500);
    // churn() freed everything, but made 2000 calls of at least 100 bytes.
    let calls = pprof_top(&profile, "alloc_objects");
    assert_eq!(calls[0].function, "churn", "{calls:#?}");
    assert_eq!(calls[0].flat, 2000);
    assert!(calls[0].place.ends_with(&format!(
        "pprof_leak.c:{}",
        line_of("pprof_leak.c", "malloc(100)")
    )));
    assert_eq!(row(&calls, "keep").flat, 500);
    let space = pprof_top(&profile, "alloc_space");
    assert!(row(&space, "churn").flat >= 2000 * 100, "{space:#?}");
    assert_eq!(row(&space, "keep").flat, net_bytes);

    // A caller site carries the address that called malloc.
    let raw = Command::new("go")
        .args(["tool", "pprof", "-raw"])
        .arg(&profile)
        .output()
        .expect("go tool pprof (apt-get install golang-go)");
    let raw = String::from_utf8_lossy(&raw.stdout);
    let keep = raw
        .lines()
        .find(|l| l.contains(" keep ") && l.contains(&keep_line))
        .unwrap_or_else(|| panic!("no location for keep in:\n{raw}"));
    let addr = keep.split_whitespace().nth(1).unwrap();
    assert!(
        addr.starts_with("0x") && u64::from_str_radix(&addr[2..], 16).unwrap() > 0x1000,
        "{keep}"
    );
}

fn each_monitor_sample_writes_the_profile_while_the_program_runs(lib: Lib) {
    let exe = compile("pprof_leak", &[]);
    let dir = fresh_dir(&format!("pprof-live-{}", lib.name()));
    let profile = dir.join("live.%p.pb.gz");
    let mut child = Command::new(&exe)
        .args(["0", "10000"])
        .env_remove("LD_PRELOAD")
        .env("LD_PRELOAD", common::lib(lib))
        .env("ASMALLOC_CALLERS", "1")
        .env("ASMALLOC_SAMPLE_INTERVAL", "50ms")
        .env("ASMALLOC_REPORT_AT_EXIT", "0")
        .env("ASMALLOC_PPROF", &profile)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `%p` is the child's pid.
    let path = dir.join(format!("live.{}.pb.gz", child.id()));
    // The first profile may come from a sample taken before the program
    // made all its blocks: read each rewrite until one shows them (or the
    // time is up, and the last one read is what the assertion shows).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    let mut top = None;
    while std::time::Instant::now() < deadline {
        if path.exists() {
            let read = pprof_top(&path, "inuse_objects");
            let done = read
                .first()
                .is_some_and(|t| t.function == "keep" && t.flat == 500);
            top = Some(read);
            if done {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        running,
        "the program was still running: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let top = top.unwrap_or_else(|| {
        panic!(
            "no profile at {} within 8 s: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        (top[0].function.as_str(), top[0].flat),
        ("keep", 500),
        "{top:#?}"
    );
    // Nothing but the profile itself in the directory: no temporary left.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [format!("live.{}.pb.gz", out_pid(&path))]);
}

/// The pid in `live.PID.pb.gz`.
fn out_pid(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    name.trim_start_matches("live.")
        .trim_end_matches(".pb.gz")
        .to_string()
}

fn without_an_exit_report_the_profile_names_the_tables_site(lib: Lib) {
    let exe = compile_linked(lib, "leaky", &[]);
    let dir = fresh_dir(&format!("pprof-table-{}", lib.name()));
    let profile = dir.join("leaky.pb.gz");
    let r = run(
        &exe,
        Some(lib),
        &[
            ("ASMALLOC_REPORT_AT_EXIT", "0"),
            ("ASMALLOC_PPROF", profile.to_str().unwrap()),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stderr.contains("---- pid"), "no report: {}", r.stderr);
    let top = pprof_top(&profile, "inuse_space");
    // leaky.c keeps 100 blocks of 1 KiB at site 3, src/leaky.c:42 leak_grow.
    assert_eq!(
        (top[0].function.as_str(), top[0].place.as_str()),
        ("leak_grow", "src/leaky.c:42"),
        "{top:#?}"
    );
    // Charged bytes are what the heap reserved for each block: at least
    // what was asked, rounded up to the allocator's size class.
    assert!((100 * 1024..=100 * 1536).contains(&top[0].flat), "{top:#?}");
    assert_eq!(
        row(&pprof_top(&profile, "inuse_objects"), "leak_grow").flat,
        100
    );
    // The healthy site: 1000 calls of 1000 bytes, none live.
    assert_eq!(
        row(&pprof_top(&profile, "alloc_objects"), "cache_put").flat,
        1000
    );
}

fn a_path_in_a_missing_directory_is_refused_and_the_program_runs_on(lib: Lib) {
    let exe = compile("pprof_leak", &[]);
    let r = run(
        &exe,
        Some(lib),
        &[("ASMALLOC_PPROF", "/nonexistent-asmalloc/heap.pb.gz")],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "ASMALLOC_PPROF=/nonexistent-asmalloc/heap.pb.gz: its directory \
             /nonexistent-asmalloc does not exist"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("---- pid"), "the report still comes");
    // The program's own status is kept.
    let r = run_with(
        &exe,
        lib,
        &["7"],
        &[("ASMALLOC_PPROF", "/nonexistent-asmalloc/heap.pb.gz".into())],
    );
    assert_eq!(r.code, Some(7), "{}", r.stderr);
    assert!(!Path::new("/nonexistent-asmalloc").exists());
}

under_both!(
    the_exit_profile_names_the_leaking_function_with_the_reports_numbers,
    each_monitor_sample_writes_the_profile_while_the_program_runs,
    without_an_exit_report_the_profile_names_the_tables_site,
    a_path_in_a_missing_directory_is_refused_and_the_program_runs_on,
);
