//! End-to-end tests of libasmalloc.so (glibc's heap) and libasmalloc_jem.so
//! (jemalloc's): small C programs (tests/c/*.c) and real programs (python3,
//! perl, git, sort) run with and without `LD_PRELOAD`, asserting on their
//! output and on asmalloc's reports. Every scenario runs under both
//! libraries (`glibc::…` and `jemalloc::…` tests) with the same assertions:
//! the same attributions and exact per-site bytes; a few are jemalloc-only
//! (its `*allocx` API, its statistics).
//!
//! Each library is built by the first test that needs it, with the same
//! profile and target directory as this test binary, so a plain
//! `cargo test --workspace` works from a clean checkout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn include_dir() -> PathBuf {
    manifest_dir().join("../../include")
}

/// `target/<profile>` of this test binary (`…/<profile>/deps/preload-…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Which preload library a test runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lib {
    /// libasmalloc.so, over glibc's heap.
    Glibc,
    /// libasmalloc_jem.so, over the jemalloc it carries.
    Jemalloc,
}

impl Lib {
    fn package(self) -> &'static str {
        match self {
            Lib::Glibc => "asmalloc-preload",
            Lib::Jemalloc => "asmalloc-preload-jem",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Lib::Glibc => "libasmalloc.so",
            Lib::Jemalloc => "libasmalloc_jem.so",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Lib::Glibc => "glibc",
            Lib::Jemalloc => "jemalloc",
        }
    }
}

#[path = "support/build_lib.rs"]
mod build_lib;

/// Builds the library (a no-op when fresh) and returns its path.
fn lib(which: Lib) -> &'static Path {
    static LIBS: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    LIBS[which as usize].get_or_init(|| {
        build_lib::build_lib(
            &profile_dir(),
            which.package(),
            which.file(),
            manifest_dir(),
        )
    })
}

fn scratch() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("asmalloc-preload-tests-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
    .clone()
}

/// Compiles tests/c/<name>.c with extra flags; returns the executable.
fn compile(name: &str, flags: &[&str]) -> PathBuf {
    let src = manifest_dir().join("tests/c").join(format!("{name}.c"));
    // One executable per (program, flags); tests run in parallel.
    let tag: u32 = flags
        .iter()
        .flat_map(|f| f.bytes())
        .fold(17, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let exe = scratch().join(format!("{name}-{tag:08x}"));
    // Tests compile the same program concurrently: build under a name of
    // our own and rename it into place (atomic; a running copy is unharmed).
    static UNIQUE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = UNIQUE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = scratch().join(format!(".{name}-{tag:08x}.{n}"));
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .arg("-O1")
        // Keep every malloc: GCC may drop an unused one, or a malloc+free pair.
        .arg("-fno-builtin")
        .arg("-g")
        .arg("-pthread")
        .arg("-I")
        .arg(include_dir())
        .arg(&src)
        .arg("-o")
        .arg(&tmp)
        .args(flags)
        .output()
        .expect("run the C compiler");
    assert!(
        out.status.success(),
        "compiling {name}.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &exe).expect("rename the executable into place");
    exe
}

/// Links against the library (for programs calling the API directly).
fn compile_linked(which: Lib, name: &str, flags: &[&str]) -> PathBuf {
    let so = lib(which);
    let dir = so.parent().unwrap().to_str().unwrap().to_string();
    let mut all: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    all.extend([
        format!("-L{dir}"),
        format!("-Wl,-rpath,{dir}"),
        format!("-l:{}", which.file()),
    ]);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    compile(name, &refs)
}

struct Run {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

fn run_cmd(mut cmd: Command, preload: Option<Lib>, env: &[(&str, &str)]) -> Run {
    cmd.env_remove("LD_PRELOAD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(which) = preload {
        cmd.env("LD_PRELOAD", lib(which));
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run the program");
    Run {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        code: status.code(),
    }
}

fn run(exe: &Path, preload: Option<Lib>, env: &[(&str, &str)]) -> Run {
    run_cmd(Command::new(exe), preload, env)
}

/// Runs `make()` without and with the preload: same stdout, same status.
fn same_with_and_without(which: Lib, what: &str, make: impl Fn() -> Command) -> Run {
    let plain = run_cmd(make(), None, &[]);
    let traced = run_cmd(make(), Some(which), &[]);
    assert_eq!(
        plain.code,
        Some(0),
        "{what} failed without the preload:\n{}",
        plain.stderr
    );
    assert_eq!(
        traced.code, plain.code,
        "{what}: exit status differs:\n{}",
        traced.stderr
    );
    assert_eq!(traced.stdout, plain.stdout, "{what}: stdout differs");
    assert!(
        traced.stderr.contains("asmalloc: ---- pid"),
        "{what}: no exit report:\n{}",
        traced.stderr
    );
    traced
}

/// The last report's row of the top-sites table that contains `needle`.
fn site_row<'a>(report: &'a str, needle: &str) -> Option<&'a str> {
    report.lines().rev().find(|l| l.contains(needle))
}

/// The last report's row of the top-sites table for site `id`.
fn site_row_by_id(report: &str, id: u16) -> Option<&str> {
    let id = id.to_string();
    report
        .lines()
        .rev()
        .find(|l| l.split_whitespace().next() == Some(id.as_str()) && l.starts_with("    "))
}

// ---------------------------------------------------------------------------

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

fn per_site_net_bytes_exact_when_threads_free_each_others_blocks(lib: Lib) {
    let exe = compile_linked(lib, "xthread", &["-rdynamic"]);
    let r = run(&exe, Some(lib), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let first = r.stdout.lines().next().unwrap();
    let field = |name: &str| -> i64 {
        first
            .split(&format!("{name}="))
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {first}"))
    };
    let expect = field("expect_bytes");
    assert!(expect > 0);
    assert_eq!(field("sum_of_thread_totals"), expect, "{}", r.stdout);
    // Each thread's own record is far from the sum: the frees went
    // elsewhere, and still add up.
    for l in r.stdout.lines().skip(1) {
        let net: i64 = l.rsplit("net=").next().unwrap().parse().unwrap();
        assert_ne!(net, 0, "{l}");
    }
    // The exit report (all threads folded) has the exact bytes and blocks.
    let row = site_row_by_id(&r.stderr, 5).unwrap_or_else(|| panic!("{}", r.stderr));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[cols.len() - 2], expect.to_string(), "{row}");
    assert_eq!(
        cols[cols.len() - 1],
        field("expect_count").to_string(),
        "{row}"
    );
    assert!(
        r.stderr.contains("threads: 1 live, 5 total"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("#1 worker"), "thread names: {}", r.stderr);
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

fn alignment_usable_size_realloc_edges_and_overflow(lib: Lib) {
    let exe = compile("edges", &[]);
    let plain = run(&exe, None, &[]);
    assert_eq!(plain.stdout.trim(), "edges ok", "{}", plain.stdout);
    let traced = run(&exe, Some(lib), &[]);
    assert_eq!(traced.code, Some(0), "{}\n{}", traced.stdout, traced.stderr);
    assert_eq!(traced.stdout.trim(), "edges ok", "{}", traced.stdout);
    // Filling every usable byte never touched a tag: no foreign frees.
    assert!(!traced.stderr.contains("foreign_free"), "{}", traced.stderr);
    assert!(traced.stderr.contains("memalign"), "{}", traced.stderr);
}

fn blocks_from_outside_the_tracker_are_freed_safely(lib: Lib) {
    let exe = compile("foreign", &[]);
    let r = run(&exe, Some(lib), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "foreign ok 50");
    let line = r
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("foreign_free"))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    let n: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(n >= 101, "{line}");
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

// --- real programs: same stdout and status with and without the preload.

fn real_python3_allocation_heavy(lib: Lib) {
    let script = "import json, collections\n\
        d = {}\n\
        for i in range(60000):\n    d[str(i) * 3] = [i, str(i), {'k': i}]\n\
        s = json.dumps(d)\n\
        c = collections.Counter(s)\n\
        l = sorted(d.items(), key=lambda kv: kv[1][1])[:5]\n\
        print(len(s), c.most_common(3), l[0][0], sum(len(k) for k in d))\n";
    same_with_and_without(lib, "python3", || {
        let mut c = Command::new("python3");
        c.arg("-c").arg(script);
        c
    });
}

fn real_perl(lib: Lib) {
    same_with_and_without(lib, "perl", || {
        let mut c = Command::new("perl");
        c.arg("-e").arg(
            "my %h; for my $i (1..100000) { $h{\"k$i\"} = [$i, \"v\" x ($i % 50)] } \
             my @k = sort keys %h; print scalar(@k), \" $k[0] $k[-1]\\n\"; \
             my $s = join(',', map { $h{$_}[0] } @k[0..999]); print length($s), \"\\n\";",
        );
        c
    });
}

fn real_git_on_a_scratch_repository(lib: Lib) {
    let repo = scratch().join(format!("gitrepo-{}", lib.name()));
    let _ = std::fs::remove_dir_all(&repo);
    std::fs::create_dir_all(&repo).unwrap();
    for i in 0..50 {
        std::fs::write(
            repo.join(format!("f{i}.txt")),
            format!("line {i}\n").repeat(i + 1),
        )
        .unwrap();
    }
    let git = |args: &[&str]| {
        let mut c = Command::new("git");
        c.arg("-C")
            .arg(&repo)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@e",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("GIT_AUTHOR_DATE", "2020-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2020-01-01T00:00:00Z");
        c
    };
    let setup = run_cmd(
        git(&["init", "-q"]),
        Some(lib),
        &[("ASMALLOC_REPORT_AT_EXIT", "0")],
    );
    assert_eq!(setup.code, Some(0), "{}", setup.stderr);
    let add = run_cmd(
        git(&["add", "."]),
        Some(lib),
        &[("ASMALLOC_REPORT_AT_EXIT", "0")],
    );
    assert_eq!(add.code, Some(0), "{}", add.stderr);
    let commit = run_cmd(git(&["commit", "-q", "-m", "first"]), Some(lib), &[]);
    assert_eq!(commit.code, Some(0), "{}", commit.stderr);
    same_with_and_without(lib, "git log", || git(&["log", "--stat", "--format=%H %s"]));
    same_with_and_without(lib, "git status", || git(&["status", "--porcelain=v1"]));
    same_with_and_without(lib, "git fsck", || git(&["fsck", "--no-progress"]));
}

fn real_sort_on_a_large_input(lib: Lib) {
    let input = scratch().join(format!("sort-input-{}.txt", lib.name()));
    let mut text = String::with_capacity(4 << 20);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(&format!("{:x} {}\n", x, x % 1000));
    }
    std::fs::write(&input, text).unwrap();
    same_with_and_without(lib, "sort", || {
        let mut c = Command::new("sort");
        c.args(["-k2,2n", "-k1,1"]).arg(&input).env("LC_ALL", "C");
        c
    });
}

fn real_multithreaded_c_program(lib: Lib) {
    let exe = compile("mt", &["-rdynamic"]);
    let traced = same_with_and_without(lib, "mt", || Command::new(&exe));
    assert!(
        traced.stderr.contains("threads: 1 live, 5 total"),
        "{}",
        traced.stderr
    );
    assert!(traced.stderr.contains("#4 worker"), "{}", traced.stderr);
}

fn the_c_example_runs_with_and_without_the_library(lib: Lib) {
    let src = manifest_dir().join("../../examples/c/pool_server.c");
    let exe = scratch().join(format!("pool_server-{}", lib.name()));
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-I"])
        .arg(include_dir())
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg("-ldl")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain = run(&exe, None, &[]);
    assert_eq!(plain.code, Some(0));
    assert!(plain.stderr.contains("running untracked"));
    let r = run(&exe, Some(lib), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, plain.stdout);
    assert!(
        r.stderr
            .contains("MALLOC site 3 examples/c/pool_server.c:99 session_cache_put(): +"),
        "{}",
        r.stderr
    );
    // The leak tops the exit report; the request sites are back to zero.
    let report = &r.stderr[r.stderr.rfind("at exit ----").unwrap()..];
    let first_site = report
        .lines()
        .skip_while(|l| !l.contains("file:line"))
        .nth(1)
        .unwrap();
    assert!(
        first_site.contains("pool_server.c:99") && first_site.contains("session_cache_put"),
        "{first_site}"
    );
    assert!(
        site_row(report, "pool_server.c:110")
            .unwrap()
            .contains(" 0 "),
        "{report}"
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

// --- the allocation path's cost in steady state.

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

// --- another allocator underneath.

/// Programs linked against Debian's jemalloc, tcmalloc and mimalloc shared
/// libraries, mixing the standard family with the allocator's own API: the
/// same output and status as without the library. libasmalloc.so steps
/// aside for all three (one line on stderr, naming the allocator, and for
/// jemalloc the library to use); libasmalloc_jem.so tracks the jemalloc
/// program (its exit report is there, and it does not step aside) and
/// steps aside for the other two.
fn another_allocator_underneath_runs_untouched(lib: Lib) {
    for (name, define, link, package) in [
        (
            "jemalloc",
            "-DUSE_JEMALLOC",
            "-ljemalloc",
            "libjemalloc-dev",
        ),
        (
            "tcmalloc",
            "-DUSE_TCMALLOC",
            "-ltcmalloc_minimal",
            "libgoogle-perftools-dev",
        ),
        (
            "mimalloc",
            "-DUSE_MIMALLOC",
            "-lmimalloc",
            "libmimalloc-dev",
        ),
    ] {
        let src = manifest_dir().join("tests/c/foreign_heap.c");
        let exe = scratch().join(format!("foreign_heap-{name}"));
        let tmp = scratch().join(format!(".foreign_heap-{name}.{}", lib.name()));
        let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-O1", "-fno-builtin", define])
            .arg(&src)
            .arg("-o")
            .arg(&tmp)
            .arg(link)
            .output()
            .expect("run the C compiler");
        assert!(
            out.status.success(),
            "building the {name} program failed (install Debian's {package}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &exe).unwrap();
        let plain = run(&exe, None, &[]);
        assert_eq!(plain.code, Some(0), "{name}: {}", plain.stderr);
        assert!(plain.stdout.starts_with(name), "{}", plain.stdout);
        let traced = run(&exe, Some(lib), &[("ASMALLOC_REPORT_AT_EXIT", "1")]);
        assert_eq!(
            traced.code,
            Some(0),
            "{name} under {}: {}",
            lib.name(),
            traced.stderr
        );
        assert_eq!(traced.stdout, plain.stdout, "{name} under {}", lib.name());
        let tracks = lib == Lib::Jemalloc && name == "jemalloc";
        let aside: Vec<&str> = traced
            .stderr
            .lines()
            .filter(|l| l.contains("steps aside"))
            .collect();
        if tracks {
            assert!(aside.is_empty(), "{}", traced.stderr);
            assert!(traced.stderr.contains("at exit ----"), "{}", traced.stderr);
        } else {
            assert_eq!(aside.len(), 1, "said once: {}", traced.stderr);
            assert!(
                aside[0].starts_with("asmalloc: this program's malloc is"),
                "{}",
                aside[0]
            );
            assert!(aside[0].contains(&format!("{name}'s")), "{}", aside[0]);
            assert!(aside[0].contains(lib.file()), "{}", aside[0]);
            if name == "jemalloc" {
                assert!(aside[0].contains("libasmalloc_jem.so"), "{}", aside[0]);
            }
            assert!(
                !traced.stderr.contains("at exit ----"),
                "no report after stepping aside: {}",
                traced.stderr
            );
        }
    }
}

// --- exactness with every optional part on (monitor, log, reporter).

/// The settings `asmalloc run` uses, and more: the leak monitor sampling
/// every 10 ms into a JSON-lines log, the periodic reporter every 20 ms,
/// every feature, JSON reports into `out`. Each of these allocates inside
/// the library while the program runs.
fn everything_on(log: &Path, out: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("ASMALLOC_LOG", log.display().to_string()),
        ("ASMALLOC_SAMPLE_INTERVAL", "10ms".into()),
        ("ASMALLOC_REPORT_INTERVAL", "20ms".into()),
        ("ASMALLOC_FEATURES", "all".into()),
        ("ASMALLOC_REPORT_FORMAT", "json".into()),
        ("ASMALLOC_OUTPUT", out.display().to_string()),
    ]
}

fn run_with(exe: &Path, lib: Lib, args: &[&str], env: &[(&'static str, String)]) -> Run {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_cmd(cmd, Some(lib), &env)
}

/// The JSON lines of a file (reports or the monitor's log).
fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// (net bytes, net blocks) of each site in a report or log line.
fn sites_of(line: &serde_json::Value) -> std::collections::BTreeMap<u64, (i64, i64)> {
    line["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["id"].as_u64().unwrap(),
                (
                    s["net_bytes"].as_i64().unwrap(),
                    s["net_count"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Frees of blocks the library did not hand out, in a JSON report.
fn foreign_frees(report: &serde_json::Value) -> u64 {
    report["ops"]["foreign_free"]["count"].as_u64().unwrap_or(0)
}

/// Four threads, 40 sites, 100,000 random calls each (malloc, calloc,
/// realloc, posix_memalign, memalign, aligned_alloc, strndup, realloc to 0,
/// free; blocks freed and resized on other threads), with the monitor, log
/// and reporter running: every site's net bytes and blocks in the exit
/// report, and in the monitor's last sample, equal the program's own count;
/// no foreign free.
fn exact_with_monitor_log_and_reporter_on(lib: Lib) {
    let exe = compile_linked(lib, "exactness", &[]);
    let log = scratch().join(format!("exactness-{}.jsonl", lib.name()));
    let out = scratch().join(format!("exactness-{}.out", lib.name()));
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&out);
    let r = run_with(&exe, lib, &["100000", "7"], &everything_on(&log, &out));
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("exactness done"), "{}", r.stdout);
    let model: std::collections::BTreeMap<u64, (i64, i64)> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("site "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let num = |s: &str| s.split('=').nth(1).unwrap().parse::<i64>().unwrap();
            (w[0].parse().unwrap(), (num(w[1]), num(w[2])))
        })
        .collect();
    assert_eq!(model.len(), 40);
    assert!(
        model.values().map(|v| v.0).sum::<i64>() > 10_000_000,
        "the scenario keeps many MB live at exit: {model:?}"
    );
    let reports = json_lines(&out);
    assert!(
        reports.len() >= 3,
        "periodic reports were written while it ran"
    );
    let last = reports.last().unwrap();
    let charged = sites_of(last);
    for (site, want) in &model {
        assert_eq!(
            charged.get(site).copied().unwrap_or((0, 0)),
            *want,
            "site {site}: report vs the program's own count"
        );
    }
    assert_eq!(foreign_frees(last), 0, "{last}");
    // The monitor's log lists changed sites only: fold it to the latest.
    let samples = json_lines(&log);
    assert!(samples.len() >= 3, "the monitor sampled while it ran");
    let mut latest = std::collections::BTreeMap::new();
    for line in &samples {
        latest.extend(sites_of(line));
    }
    for (site, want) in &model {
        assert_eq!(
            latest.get(site).copied().unwrap_or((0, 0)),
            *want,
            "site {site}: the monitor's last sample vs the program's count"
        );
    }
}

/// `realloc(NULL, 16)`, its free, and ten malloc/free pairs (or nothing at
/// all) with the monitor and log on: exactly zero net, no foreign free —
/// the library's own allocations (monitor thread, log writer, the thread
/// destructor lists libc keeps for it) are never charged to the program,
/// and never uncharged from it.
fn quiet_programs_end_at_zero_with_the_monitor_on(lib: Lib) {
    let exe = compile("quiet", &[]);
    for args in [&[][..], &["work"][..]] {
        let tag = format!("quiet-{}-{}", lib.name(), args.len());
        let log = scratch().join(format!("{tag}.jsonl"));
        let out = scratch().join(format!("{tag}.out"));
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(&out);
        let r = run_with(&exe, lib, args, &everything_on(&log, &out));
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert!(!r.stderr.contains("asmalloc"), "{}", r.stderr);
        let last = json_lines(&out).pop().expect("an exit report");
        assert_eq!(foreign_frees(&last), 0, "{args:?}: {last}");
        assert_eq!(last["net_count"], 0, "{args:?}: {last}");
        assert_eq!(last["net_bytes"], 0, "{args:?}: {last}");
        for line in json_lines(&log) {
            for (site, (bytes, count)) in sites_of(&line) {
                assert!(bytes >= 0 && count >= 0, "site {site} negative: {line}");
            }
        }
    }
}

/// The Lua 5.4 interpreter built from the `lua-src` crate's sources (its
/// library, and a ten-line `main` that runs a file), running an
/// allocation-heavy script with its garbage collector at work, with the
/// monitor sampling every 10 ms: no site is ever negative, in any sample of
/// the log or in the exit report, and no block is foreign.
fn lua_interpreter_never_shows_a_negative_site(lib: Lib) {
    let exe = lua_interpreter();
    let script = scratch().join("gc.lua");
    std::fs::write(
        &script,
        "local t = {}\n\
         for i = 1, 200000 do t[i] = string.rep('x', i % 100) .. i end\n\
         local c = 0\n\
         for _, v in pairs(t) do c = c + #v end\n\
         t = nil\n\
         collectgarbage()\n\
         local s = {}\n\
         for i = 1, 50000 do s[#s + 1] = {i, tostring(i)} end\n\
         print(c, #s)\n",
    )
    .unwrap();
    let mut cmd = Command::new(&exe);
    cmd.arg(&script);
    let plain = run_cmd(cmd, None, &[]);
    assert_eq!(plain.code, Some(0), "{}", plain.stderr);
    let log = scratch().join(format!("lua-{}.jsonl", lib.name()));
    let out = scratch().join(format!("lua-{}.out", lib.name()));
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&out);
    let r = run_with(
        &exe,
        lib,
        &[script.to_str().unwrap()],
        &everything_on(&log, &out),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, plain.stdout);
    assert_eq!(r.stdout, "10988895\t50000\n");
    let samples = json_lines(&log);
    assert!(samples.len() >= 2, "the monitor sampled while Lua ran");
    for line in samples.iter().chain(json_lines(&out).iter()) {
        for (site, (bytes, count)) in sites_of(line) {
            assert!(bytes >= 0 && count >= 0, "site {site} negative: {line}");
        }
    }
    let last = json_lines(&out).pop().unwrap();
    assert_eq!(foreign_frees(&last), 0, "{last}");
}

/// Builds the Lua 5.4 interpreter from the `lua-src` crate (a
/// dev-dependency, so cargo has its sources; found with `cargo metadata`).
fn lua_interpreter() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let meta = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["metadata", "--format-version", "1"])
            .current_dir(manifest_dir())
            .output()
            .expect("run cargo metadata");
        assert!(
            meta.status.success(),
            "{}",
            String::from_utf8_lossy(&meta.stderr)
        );
        let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).unwrap();
        let manifest = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "lua-src")
            .expect("lua-src is a dev-dependency")["manifest_path"]
            .as_str()
            .unwrap()
            .to_string();
        let src = std::fs::read_dir(Path::new(&manifest).parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("lua-5.4")
            })
            .expect("lua-src ships Lua 5.4");
        let main = manifest_dir().join("tests/c/lua_main.c");
        let exe = scratch().join("lua");
        let tmp = scratch().join(".lua.building");
        let sources: Vec<PathBuf> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "c"))
            .filter(|p| !matches!(p.file_name().unwrap().to_str(), Some("lua.c" | "luac.c")))
            .collect();
        let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-O2", "-g", "-DLUA_USE_LINUX", "-I"])
            .arg(&src)
            .arg(&main)
            .args(&sources)
            .args(["-lm", "-ldl", "-o"])
            .arg(&tmp)
            .output()
            .expect("run the C compiler");
        assert!(
            out.status.success(),
            "building Lua failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &exe).unwrap();
        exe
    })
    .clone()
}

// ---------------------------------------------------------------------------
// Every scenario above, under each library.

macro_rules! under_both {
    ($($name:ident),* $(,)?) => {
        /// Under libasmalloc.so (glibc's heap).
        mod glibc {
            $(#[test]
            fn $name() {
                super::$name(super::Lib::Glibc)
            })*
        }
        /// Under libasmalloc_jem.so (jemalloc's heap).
        mod jemalloc {
            $(#[test]
            fn $name() {
                super::$name(super::Lib::Jemalloc)
            })*
        }
    };
}

under_both!(
    callback_names_the_leaking_site_and_both_thresholds_fire,
    per_site_net_bytes_exact_when_threads_free_each_others_blocks,
    original_api_compiles_with_wall_werror_and_works,
    alignment_usable_size_realloc_edges_and_overflow,
    blocks_from_outside_the_tracker_are_freed_safely,
    a_failed_call_uses_up_the_pending_site_and_callback_frees_are_charged,
    fork_child_keeps_reporting_and_exec_works,
    net_mmap_and_shm_are_exact,
    call_sites_are_named_without_a_table,
    bad_environment_values_are_named_and_the_program_runs,
    output_file_and_json_format,
    real_python3_allocation_heavy,
    real_perl,
    real_git_on_a_scratch_repository,
    real_sort_on_a_large_input,
    real_multithreaded_c_program,
    the_c_example_runs_with_and_without_the_library,
    glibc_only_sections_follow_the_heap,
    exact_with_monitor_log_and_reporter_on,
    quiet_programs_end_at_zero_with_the_monitor_on,
    lua_interpreter_never_shows_a_negative_site,
    another_allocator_underneath_runs_untouched,
    steady_state_makes_no_syscall_and_rarely_reads_the_clock,
    library_threads_never_take_the_programs_signals,
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
