//! The program's process around the library, under both preload libraries
//! (tests/common/mod.rs): fork (the child keeps reporting) and exec; the
//! library's threads never take the program's signals; the allocation
//! path's steady state makes no system call and rarely reads the clock.

use std::process::Command;

use asmalloc_test_support::fresh_dir;

#[macro_use]
mod common;

use common::*;

fn fork_child_keeps_reporting_and_exec_works(lib: Lib) {
    let exe = compile("forks", &[]);
    let plain = run(&exe, None, &[]);
    let r = run(&exe, Some(lib), &[("ASMALLOC_REPORT_INTERVAL", "100ms")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let strip = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.starts_with("child pid"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&r.stdout), strip(&plain.stdout));
    assert!(r.stdout.contains("exec child says hello"));
    let child: i32 = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("child pid "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The forked child restarted the reporter and reported at exit.
    assert!(
        r.stderr.contains(&format!("pid {child} (forks-")),
        "{}",
        r.stderr
    );
    let child_reports: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains(&format!("pid {child} (forks-")))
        .collect();
    assert!(
        child_reports.iter().any(|l| l.ends_with("periodic ----")),
        "{}",
        r.stderr
    );
    assert!(
        child_reports.iter().any(|l| l.ends_with("at exit ----")),
        "{}",
        r.stderr
    );
}

/// The library's threads (reporter, monitor) block every signal, so a
/// program that takes its signals with `sigwait` gets them all: a SIGUSR1
/// delivered to a library thread would kill the process (nginx's master
/// hung when its SIGCHLD went to the reporter).
fn library_threads_never_take_the_programs_signals(which: Lib) {
    let exe = compile("sigwait", &[]);
    let log = scratch().join(format!("sigwait-{}.jsonl", which.name()));
    let r = run_with(
        &exe,
        which,
        &[],
        &[
            ("ASMALLOC_REPORT_INTERVAL", "1s".into()),
            ("ASMALLOC_LOG", log.display().to_string()),
            ("ASMALLOC_REPORT_AT_EXIT", "0".into()),
        ],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "both signals taken by sigwait\n");
}

/// A site past the delta threshold is checked against the time threshold on
/// every allocation; that check must not read the clock each time (it once
/// did: 175,000 reads for 100,000 iterations) nor make system calls. The
/// program counts the library's `clock_gettime` calls by defining the
/// function itself; `strace -c` counts system calls, which must not grow
/// with the number of iterations.
fn steady_state_makes_no_syscall_and_rarely_reads_the_clock(which: Lib) {
    let exe = compile("steady", &["-rdynamic", "-ldl"]);
    let reads = |n: u64| -> u64 {
        let r = run_with(
            &exe,
            which,
            &[&n.to_string()],
            &[("ASMALLOC_REPORT_AT_EXIT", "0".into())],
        );
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        let words: Vec<&str> = r.stdout.split_whitespace().collect();
        assert_eq!(words[2], "clock_reads", "{}", r.stdout);
        // The callback heard the site cross the delta threshold: the
        // threshold path was taken, not disarmed.
        assert_eq!(words[4], "callbacks", "{}", r.stdout);
        assert!(words[5].parse::<u64>().unwrap() >= 1, "{}", r.stdout);
        words[3].parse().unwrap()
    };
    let n = 200_000;
    let clock = reads(n);
    assert!(
        clock <= n / 500,
        "{clock} clock reads for {n} iterations (at most one per 1024 threshold checks)"
    );
    let syscalls = |n: u64| -> u64 {
        let trace = scratch().join(format!("steady-{}-{n}.strace", which.name()));
        let out = Command::new("strace")
            .args(["-f", "-c", "-o"])
            .arg(&trace)
            .arg("env")
            .arg(format!("LD_PRELOAD={}", lib(which).display()))
            .arg("ASMALLOC_REPORT_AT_EXIT=0")
            // jemalloc returns memory to the kernel as time passes (decay
            // purging: madvise): the allocator's own system calls, which
            // grow with the run's length. Off here, to count ours.
            .arg("_RJEM_MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1")
            // glibc likewise gives the top of its heap back (brk) whenever
            // more than its trim threshold (128 KiB) is free there: its own
            // system calls. Off here too. (They were missing until the
            // library stopped raising that threshold for the program: see
            // `real::free_own`.)
            .arg("GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824")
            .arg(&exe)
            .arg(n.to_string())
            .output()
            .expect("run strace (Debian package strace)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&trace).unwrap();
        let total = text.lines().last().unwrap();
        // "100.00    0.000040           0       206        16 total"
        total.split_whitespace().nth(3).unwrap().parse().unwrap()
    };
    let (few, many) = (syscalls(20_000), syscalls(400_000));
    assert!(
        many <= few + 4,
        "system calls grew with the iterations: {few} for 20,000, {many} for 400,000"
    );
}

/// The library loads nothing a C program does not load already: every
/// shared object it needs costs the host its resident pages (libm.so, once
/// pulled in by two floating-point calls, was 330 KB; libgcc_s.so.1, which
/// Rust's standard library names for its unwinder, 84 KiB: the unwinder is
/// linked in from libgcc_eh.a, see build.rs). `readelf -d` lists what it
/// needs.
fn needs_only_libc_and_the_loader(which: Lib) {
    let out = Command::new("readelf")
        .arg("-d")
        .arg(lib(which))
        .output()
        .expect("run readelf (Debian package binutils)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert_eq!(needed, ["libc.so.6", "ld-linux-x86-64.so.2"], "{text}");
}

/// A program whose executable is deleted while it runs (a deploy, a
/// rebuild) still gets its caller sites named from its debug information:
/// it is read through /proc/self/exe, not through the path that is gone.
/// (The test programs are rebuilt concurrently by parallel tests, which
/// once left a running one's file replaced and its sites unnamed.)
fn a_deleted_executable_still_names_its_callers(which: Lib) {
    let built = compile("self_delete", &[]);
    let exe = fresh_dir(&format!("self-delete-{}", which.name())).join("self_delete");
    std::fs::copy(&built, &exe).unwrap();
    let r = run_with(&exe, which, &[], &[("ASMALLOC_CALLERS", "1".into())]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, "deleted and kept\n");
    assert!(!exe.exists(), "the program deleted itself");
    let row = r
        .stderr
        .lines()
        .find(|l| l.contains(" hold") && l.contains("self_delete.c:"))
        .unwrap_or_else(|| panic!("hold() not named with its file:line:\n{}", r.stderr));
    assert!(row.contains("100"), "its 100 blocks: {row}");
}

// ---------------------------------------------------------------------------
// Every scenario above, under each library.

under_both!(
    fork_child_keeps_reporting_and_exec_works,
    library_threads_never_take_the_programs_signals,
    steady_state_makes_no_syscall_and_rarely_reads_the_clock,
    needs_only_libc_and_the_loader,
    a_deleted_executable_still_names_its_callers,
);
