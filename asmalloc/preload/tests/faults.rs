//! Faults and edges of a process's life, under both preload libraries
//! (tests/common/mod.rs), each program in `tests/c/fault_*.c` run with and
//! without the library, with everything optional on (the leak monitor
//! sampling every 10 ms into its log, the periodic reporter every 20 ms,
//! every feature, JSON reports — one file per process):
//!
//! * `fork` in a multi-threaded program, then allocation (and a thread) in
//!   the child; `vfork`, `posix_spawn`, `popen` and `system`;
//! * `dlopen`/`dlclose` from two threads of a plugin whose constructor
//!   allocates and whose destructor frees;
//! * `exit` from a thread while others allocate; `pthread_exit` from main;
//! * `pthread_cancel` (cleanup handlers free); 100,000 short-lived threads;
//! * allocation in signal handlers; during `atexit` handlers and thread-local
//!   and pthread-key destructors;
//! * `malloc_trim` and `mallopt`; address-space exhaustion (`RLIMIT_AS`);
//! * blocks whose tag was overwritten, and blocks the library never handed
//!   out, passed to `free` and `realloc`.
//!
//! What a user relies on is asserted each time: the same stdout and exit
//! status as without the library, the exact net bytes and blocks of every
//! site the program keeps count of (it prints its own count), no site
//! negative in any process's exit report or last log sample, nothing from
//! the library on stderr, and no foreign free except where the program
//! makes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[macro_use]
mod common;

use common::*;

/// One run of a program: its output, status, pid, and the directory with
/// the library's files (reports `report.<pid>.json`, logs `log.<pid>.jsonl`).
struct Traced {
    stdout: String,
    stderr: String,
    code: Option<i32>,
    pid: u32,
    dir: PathBuf,
}

/// A fresh directory for one scenario's files.
fn out_dir(name: &str, lib: Option<Lib>) -> PathBuf {
    let dir = scratch().join(format!("{name}-{}", lib.map_or("plain", Lib::name)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Everything optional on, with one report and log file per process.
fn all_on(dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "ASMALLOC_LOG",
            dir.join("log.%p.jsonl").display().to_string(),
        ),
        ("ASMALLOC_SAMPLE_INTERVAL", "10ms".into()),
        ("ASMALLOC_REPORT_INTERVAL", "20ms".into()),
        ("ASMALLOC_FEATURES", "all".into()),
        ("ASMALLOC_REPORT_FORMAT", "json".into()),
        (
            "ASMALLOC_OUTPUT",
            dir.join("report.%p.json").display().to_string(),
        ),
    ]
}

/// Runs `exe args` (under `lib`, with everything on, plus `env`; an empty
/// value in `env` removes the variable).
fn go(
    name: &str,
    exe: &Path,
    args: &[&str],
    lib: Option<Lib>,
    env: &[(&'static str, String)],
) -> Traced {
    let dir = out_dir(name, lib);
    let mut cmd = Command::new(exe);
    cmd.args(args).env_remove("LD_PRELOAD");
    // The test run's own ASMALLOC_* settings (ASMALLOC_SOAK, …) are not
    // the library's.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ASMALLOC_") {
            cmd.env_remove(k);
        }
    }
    if let Some(lib) = lib {
        cmd.env("LD_PRELOAD", common::lib(lib));
        for (k, v) in all_on(&dir) {
            cmd.env(k, v);
        }
    }
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the program");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    Traced {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
        pid,
        dir,
    }
}

/// Stdout without the lines that differ by design with the library (the
/// program's own counts use `malloc_usable_size`, which the library makes
/// 8 bytes smaller; pids; machine-dependent statistics).
fn comparable(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| {
            !["site ", "child ", "stat "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A program's own count of what each site holds: its `site <id>
/// bytes=<b> count=<c>` lines (`prefix` ""), or a child's `child <pid>
/// site …` lines (`prefix` "child <pid> ").
fn model(stdout: &str, prefix: &str) -> BTreeMap<u64, (i64, i64)> {
    let mut sites = BTreeMap::new();
    for l in stdout.lines() {
        let Some(rest) = l.strip_prefix(prefix).and_then(|l| l.strip_prefix("site ")) else {
            continue;
        };
        let w: Vec<&str> = rest.split_whitespace().collect();
        let num = |s: &str| s.split('=').nth(1).unwrap().parse::<i64>().unwrap();
        sites.insert(w[0].parse().unwrap(), (num(w[1]), num(w[2])));
    }
    sites
}

/// The pids of the `child <pid> …` lines.
fn children(stdout: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("child "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    pids.dedup();
    pids
}

/// Process `pid`'s JSON reports.
fn reports_of(dir: &Path, pid: u32) -> Vec<serde_json::Value> {
    json_lines(&dir.join(format!("report.{pid}.json")))
}

/// Every process's exit report and last log sample in the directory: no
/// site negative. (A sample taken while threads free each other's blocks
/// can show a site briefly below its true value — see soak.rs — so the
/// lines written mid-run are not held to this.)
fn assert_no_negative_site(dir: &Path) {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        files += 1;
        let Some(line) = json_lines(&path).pop() else {
            continue;
        };
        for (site, (bytes, count)) in sites_of(&line) {
            assert!(
                bytes >= 0 && count >= 0,
                "{}: site {site} negative: {line}",
                path.display()
            );
        }
    }
    assert!(files > 0, "no report or log in {}", dir.display());
}

/// Process `pid`'s exit report charges exactly `model` to each of its
/// sites, and counts `foreign` foreign frees.
fn assert_exact(t: &Traced, pid: u32, model: &BTreeMap<u64, (i64, i64)>, foreign: u64) {
    assert!(!model.is_empty(), "no site counts in\n{}", t.stdout);
    let reports = reports_of(&t.dir, pid);
    let last = reports
        .last()
        .unwrap_or_else(|| panic!("no report from {pid}"));
    let charged = sites_of(last);
    for (site, want) in model {
        assert_eq!(
            charged.get(site).copied().unwrap_or((0, 0)),
            *want,
            "pid {pid}, site {site}: the report vs the program's own count\n{last}"
        );
    }
    assert_eq!(
        foreign_frees(last),
        foreign,
        "pid {pid}: foreign frees\n{last}"
    );
}

/// Runs the program with and without the library: same status and
/// comparable stdout; the traced run's stdout has `done` in it.
fn both_ways(
    name: &str,
    exe: &Path,
    args: &[&str],
    lib: Lib,
    env: &[(&'static str, String)],
    done: &str,
) -> Traced {
    let plain = go(&format!("{name}-{}", lib.name()), exe, args, None, env);
    let traced = go(name, exe, args, Some(lib), env);
    assert!(
        plain.stdout.contains(done),
        "{name} without the library:\n{}\n{}",
        plain.stdout,
        plain.stderr
    );
    assert_eq!(
        traced.code,
        plain.code,
        "{name}: exit status under {}\n{}\n{}",
        lib.name(),
        traced.stdout,
        traced.stderr
    );
    assert_eq!(
        comparable(&traced.stdout),
        comparable(&plain.stdout),
        "{name}: stdout under {}\n{}",
        lib.name(),
        traced.stderr
    );
    assert!(
        !traced.stderr.contains("asmalloc:"),
        "{name}: the library complained:\n{}",
        traced.stderr
    );
    assert_no_negative_site(&traced.dir);
    traced
}

fn fault(name: &str) -> PathBuf {
    compile(name, &["-rdynamic", "-ldl"])
}

// ---------------------------------------------------------------------------

/// 20 forks while four threads allocate; each child allocates (and starts a
/// thread that does) and exits with its own status; each child's report has
/// its exact counts, the parent's has none of the children's.
fn fork_in_a_threaded_program_then_allocate_in_the_child(lib: Lib) {
    let t = both_ways(
        "fork",
        &fault("fault_fork"),
        &["20"],
        lib,
        &[],
        "forks done",
    );
    for n in 0..20 {
        assert!(
            t.stdout.contains(&format!("fork {n} status {}\n", n % 7)),
            "{}",
            t.stdout
        );
    }
    let kids = children(&t.stdout);
    assert_eq!(kids.len(), 20, "{}", t.stdout);
    for pid in kids {
        assert_exact(&t, pid, &model(&t.stdout, &format!("child {pid} ")), 0);
    }
    let parent = sites_of(reports_of(&t.dir, t.pid).last().unwrap());
    assert!(!parent.contains_key(&30) && !parent.contains_key(&31));
}

/// vfork+execv, posix_spawn, posix_spawnp (vfork flag), popen and system:
/// every exec'd copy reports its own exact counts, the parent its own.
fn vfork_posix_spawn_popen_system(lib: Lib) {
    let t = both_ways(
        "spawn",
        &fault("fault_spawn"),
        &["4"],
        lib,
        &[],
        "spawn done",
    );
    assert_eq!(t.stdout.matches("status 7").count(), 12, "{}", t.stdout);
    assert_eq!(t.stdout.matches("system: 3").count(), 4, "{}", t.stdout);
    let kids = children(&t.stdout);
    assert_eq!(kids.len(), 12);
    for pid in kids {
        assert_exact(&t, pid, &model(&t.stdout, &format!("child {pid} ")), 0);
    }
    assert_exact(&t, t.pid, &model(&t.stdout, ""), 0);
}

/// 2 threads × 200 dlopen/dlclose of a plugin that allocates in its
/// constructor, frees in its destructor, and has dynamic TLS.
fn dlopen_dlclose_with_allocating_constructors(lib: Lib) {
    let plugin = Cc::new()
        .args(["-O1", "-g", "-fno-builtin", "-shared", "-fPIC", "-I"])
        .arg(include_dir())
        .arg(manifest_dir().join("tests/c/fault_plugin.c"))
        .build(&scratch().join("fault_plugin.so"));
    let plugin = plugin.to_str().unwrap();
    let t = both_ways(
        "dlopen",
        &fault("fault_dlopen"),
        &[plugin, "200"],
        lib,
        &[],
        "dlopen done 200",
    );
    let m = model(&t.stdout, "");
    assert!(m[&41].1 >= 2, "the constructor ran: {m:?}");
    assert_exact(&t, t.pid, &m, 0);
}

/// A thread calls exit(5) while three others allocate (five runs); and main
/// calls pthread_exit, the process ending with its last thread.
fn exit_from_a_thread_and_pthread_exit_from_main(lib: Lib) {
    let exe = fault("fault_exit");
    for run in 0..5 {
        let t = both_ways(
            &format!("exit-{run}"),
            &exe,
            &["exit"],
            lib,
            &[],
            "atexit handler ran",
        );
        assert_eq!(t.code, Some(5));
        let m = model(&t.stdout, "");
        assert_eq!(m.len(), 1);
        assert_exact(&t, t.pid, &m, 0);
    }
    let t = both_ways(
        "pthread_exit",
        &exe,
        &["pthread_exit"],
        lib,
        &[],
        "atexit handler ran",
    );
    assert_eq!(t.code, Some(0));
    assert_exact(&t, t.pid, &model(&t.stdout, ""), 0);
}

/// 480 threads cancelled (a third in pthread_cond_wait), their cleanup
/// handlers freeing what they allocated.
fn pthread_cancel_runs_cleanup_handlers_exactly(lib: Lib) {
    let t = both_ways(
        "cancel",
        &fault("fault_cancel"),
        &["480"],
        lib,
        &[],
        "cancel done: 480 of 480 cancelled",
    );
    assert_exact(&t, t.pid, &model(&t.stdout, ""), 0);
}

/// 100,000 threads (8 at a time, half detached), each freeing a block the
/// thread before it in its slot left: exact counts, 100,001 threads seen.
fn a_hundred_thousand_short_lived_threads(lib: Lib) {
    let t = both_ways(
        "threads",
        &fault("fault_threads"),
        &["100000"],
        lib,
        &[],
        "threads done 100000",
    );
    assert_exact(&t, t.pid, &model(&t.stdout, ""), 0);
    let last = reports_of(&t.dir, t.pid).pop().unwrap();
    // The program's threads and the library's two (reporter, monitor).
    assert!(
        last["threads"]["total"].as_u64().unwrap() >= 100_001,
        "{}",
        last["threads"]
    );
}

/// Signal handlers that allocate, interrupting threads in the middle of
/// their own allocations (and of the tracker's first write to a block of
/// their tables): every site exact, and the per-operation call counts too
/// (a handler that interrupts an update charges the shared table).
fn allocation_in_signal_handlers(lib: Lib) {
    // jemalloc's incremental thread-cache collection would make the heap
    // itself take locks in the middle of an interrupted call: off.
    let env = [(
        "_RJEM_MALLOC_CONF",
        "tcache_gc_incr_bytes:1000000000000".to_string(),
    )];
    let t = both_ways(
        "signal",
        &fault("fault_signal"),
        &["400"],
        lib,
        &env,
        "signals done",
    );
    assert_exact(&t, t.pid, &model(&t.stdout, ""), 0);
    let stat = t
        .stdout
        .lines()
        .find(|l| l.starts_with("stat "))
        .unwrap()
        .to_string();
    let field = |name: &str| -> i64 {
        stat.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    let last = reports_of(&t.dir, t.pid).pop().unwrap();
    let mallocs = last["ops"]["malloc"]["count"].as_i64().unwrap();
    // The program's own mallocs (two per worker to seed its bins, one per
    // loop, the handlers') against the library's count, which also has
    // libc's few of its own.
    let own = 2 * field("generations") + field("loops") + field("handler_mallocs");
    assert!(
        mallocs <= own + 1000 && mallocs >= own,
        "malloc calls counted {mallocs}, program's {own}: {stat}"
    );
    eprintln!(
        "signal handlers: {} allocations in handlers, malloc calls counted {mallocs} (program {own})",
        field("handler_mallocs"),
    );
}

/// Signal handlers (SIGPROF from `ITIMER_PROF`, SIGALRM from a 50 us
/// `ITIMER_REAL`) that allocate at the very site the interrupted loop is
/// allocating at, thousands of times a second: a handler landing in the
/// middle of the loop's own counter update charges the shared table instead
/// of the counters being updated, so the site and the `malloc` and `free`
/// call counts are all exact (with plain load/store pairs the handler's
/// update, or the loop's, would be lost).
fn allocation_in_signal_handlers_at_the_interrupted_site(lib: Lib) {
    let env = [(
        "_RJEM_MALLOC_CONF",
        "tcache_gc_incr_bytes:1000000000000".to_string(),
    )];
    let t = both_ways(
        "sigprof",
        &fault("fault_sigprof"),
        &["1500"],
        lib,
        &env,
        "sigprof done",
    );
    let m = model(&t.stdout, "");
    assert_exact(&t, t.pid, &m, 0);
    let stat = t
        .stdout
        .lines()
        .find(|l| l.starts_with("stat "))
        .unwrap()
        .to_string();
    let field = |name: &str| -> i64 {
        stat.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    let last = reports_of(&t.dir, t.pid).pop().unwrap();
    let count = |op: &str| last["ops"][op]["count"].as_i64().unwrap();
    // The program's own calls (two to seed its bins, one per loop, the
    // handlers') against the library's counts, which also have libc's few
    // of its own (stdio's buffer…): never fewer.
    let own_mallocs = 2 + field("loops") + field("handler_mallocs");
    let own_frees = 2 + field("frees");
    assert!(
        (own_mallocs..own_mallocs + 1000).contains(&count("malloc")),
        "malloc calls counted {}, the program's {own_mallocs}: {stat}",
        count("malloc")
    );
    assert!(
        (own_frees..own_frees + 1000).contains(&count("free")),
        "free calls counted {}, the program's {own_frees}: {stat}",
        count("free")
    );
    assert!(field("handler_mallocs") >= 400, "{stat}");
    eprintln!(
        "signal handlers at the interrupted site: {} handler runs, {} allocations in them, {} loops; \
         malloc calls counted {} (program {own_mallocs}), site {:?}",
        field("handler_runs"),
        field("handler_mallocs"),
        field("loops"),
        count("malloc"),
        m
    );
}

/// Allocation in atexit handlers, in the main thread's thread-local
/// destructor, and in 200 threads' pthread-key (two rounds) and
/// thread-local destructors.
fn allocation_in_atexit_and_thread_destructors(lib: Lib) {
    let t = both_ways(
        "atexit",
        &fault("fault_atexit"),
        &["200"],
        lib,
        &[],
        "atexit main done, 200 threads",
    );
    let m = model(&t.stdout, "");
    assert_eq!(m.len(), 7, "{m:?}");
    assert_eq!(m[&52].1, 400, "two rounds of key destructors: {m:?}");
    assert_exact(&t, t.pid, &m, 0);
}

/// mallopt (arena count, mmap threshold and count, trim threshold, top
/// pad, perturbation) and malloc_trim every millisecond while four threads
/// allocate, resize and free across threads.
fn malloc_trim_and_mallopt(lib: Lib) {
    let t = both_ways(
        "mallopt",
        &fault("fault_mallopt"),
        &["10000"],
        lib,
        &[],
        "mallopt done",
    );
    assert_exact(&t, t.pid, &model(&t.stdout, ""), 0);
}

/// The address space used up under RLIMIT_AS: every failure NULL with
/// ENOMEM (impossible sizes too; a failed realloc keeps its block), a
/// thread that cannot get a table of its own still counted, the exit
/// report written with the address space full. Three runs with everything
/// on, one with nothing but the report (then the late thread can start).
/// Under jemalloc no thread is started late: jemalloc itself crashes when
/// it cannot make an arena for it (as Debian's libjemalloc.so.2 does
/// alone).
fn address_space_exhaustion(lib: Lib) {
    let exe = fault("fault_rlimit");
    let args: &[&str] = match lib {
        Lib::Glibc => &["256"],
        Lib::Jemalloc => &["256", "nothread"],
    };
    for run in 0..4 {
        // (An empty value removes the variable.)
        let quiet = [
            ("ASMALLOC_SAMPLE_INTERVAL", String::new()),
            ("ASMALLOC_REPORT_INTERVAL", String::new()),
            ("ASMALLOC_LOG", String::new()),
        ];
        let env: &[(&'static str, String)] = if run == 3 { &quiet } else { &[] };
        let t = both_ways(
            &format!("rlimit-{run}"),
            &exe,
            args,
            lib,
            env,
            "rlimit done",
        );
        assert_exact(&t, t.pid, &model(&t.stdout, ""), 0);
    }
}

/// Blocks whose tag a buffer overrun replaced (garbage, another block's
/// tag, a flipped bit) are freed or resized as foreign blocks — counted as
/// foreign frees, never charged, never a crash; so are blocks from glibc's
/// `__libc_malloc`/`__libc_memalign` (the jemalloc build's untracked heap).
fn corrupted_tags_and_foreign_blocks(lib: Lib) {
    let t = both_ways(
        "corrupt",
        &fault("fault_corrupt"),
        &[],
        lib,
        &[],
        "corrupt done",
    );
    let foreign: u64 = t
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("stat foreign "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(foreign, 140);
    assert_exact(&t, t.pid, &model(&t.stdout, ""), foreign);
}

/// A double free: glibc's own check catches it (the library clears a
/// block's tag when it is freed, so the second free is a foreign block,
/// never charged twice, forwarded to glibc), and the process dies as it
/// does without the library. glibc only: jemalloc does not check by
/// default.
#[test]
fn glibc_double_free_dies_as_without_the_library() {
    let src = scratch().join("double_free.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <stdlib.h>\n\
         int main(void) { char *p = malloc(40); printf(\"before\\n\"); fflush(stdout);\n\
         free(p); free(p); printf(\"after\\n\"); return 0; }\n",
    )
    .unwrap();
    let exe = Cc::new()
        .args(["-O0", "-fno-builtin"])
        .arg(&src)
        .build(&scratch().join("double_free"));
    let plain = go("double-free", &exe, &[], None, &[]);
    let traced = go("double-free", &exe, &[], Some(Lib::Glibc), &[]);
    assert_eq!(plain.code, None, "killed by a signal: {}", plain.stderr);
    assert_eq!(traced.code, None, "{}", traced.stderr);
    assert_eq!(traced.stdout, "before\n");
    assert_eq!(plain.stdout, traced.stdout);
    assert!(
        traced.stderr.contains("free(): double free detected"),
        "{}",
        traced.stderr
    );
}

// ---------------------------------------------------------------------------
// Every scenario above, under each library.

under_both!(
    fork_in_a_threaded_program_then_allocate_in_the_child,
    vfork_posix_spawn_popen_system,
    dlopen_dlclose_with_allocating_constructors,
    exit_from_a_thread_and_pthread_exit_from_main,
    pthread_cancel_runs_cleanup_handlers_exactly,
    a_hundred_thousand_short_lived_threads,
    allocation_in_signal_handlers,
    allocation_in_signal_handlers_at_the_interrupted_site,
    allocation_in_atexit_and_thread_destructors,
    malloc_trim_and_mallopt,
    address_space_exhaustion,
    corrupted_tags_and_foreign_blocks,
);
