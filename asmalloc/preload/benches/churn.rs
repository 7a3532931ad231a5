//! Multi-threaded C allocation churn in one run, alternating repetitions,
//! median wall time, and the ratio, for both libraries:
//!
//! * glibc: raw vs under libasmalloc.so;
//! * jemalloc: under a plain jemalloc preload (`jemalloc_raw.c` linked with
//!   the very jemalloc build libasmalloc_jem.so carries) vs under
//!   libasmalloc_jem.so.
//!
//! Then the cost of following allocation wrappers (glibc library, caller
//! sites on): the same churn allocating through out-of-line wrappers
//! (`bench_xmalloc` & co.), not followed vs followed
//! (`ASMALLOC_WRAPPERS=bench_x*`), against the direct calls; the ratio and
//! the cost per wrapped call in ns.
//!
//! Then the cost of sampled stacks: the same churn with caller sites on,
//! with and without `ASMALLOC_SAMPLE_BYTES=512K` (the `--stacks` default).
//!
//! Then heaptrack and valgrind (memcheck) on a smaller input, where
//! installed.
//!
//! `cargo bench -p asmalloc-preload --bench churn` (env `CHURN_OPS`,
//! `CHURN_THREADS`, `CHURN_REPS` to change the size; `CHURN_ONLY=glibc` or
//! `jemalloc` for one pair, `wrappers` for the wrapper comparison only).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use asmalloc_test_support::Lib;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A plain jemalloc preload library: `jemalloc_raw.c` over the static
/// jemalloc tikv-jemalloc-sys built for libasmalloc_jem.so (the newest
/// `libjemalloc_pic.a` of this profile).
fn build_raw_jemalloc(profile: &Path) -> PathBuf {
    let archive = std::fs::read_dir(profile.join("build"))
        .expect("build dir")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("tikv-jemalloc-sys-")
        })
        .map(|e| e.path().join("out/build/lib/libjemalloc_pic.a"))
        .filter(|a| a.exists())
        .max_by_key(|a| a.metadata().and_then(|m| m.modified()).ok())
        .expect("libjemalloc_pic.a from tikv-jemalloc-sys (build asmalloc-preload-jem first)");
    let out = std::env::temp_dir().join(format!("asmalloc-jemalloc-raw-{}.so", std::process::id()));
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O2", "-shared", "-fPIC"])
        .arg(manifest_dir().join("benches/jemalloc_raw.c"))
        .arg(&archive)
        .args(["-pthread", "-o"])
        .arg(&out)
        .status()
        .expect("cc");
    assert!(status.success());
    out
}

fn compile() -> PathBuf {
    let out = std::env::temp_dir().join(format!("asmalloc-churn-{}", std::process::id()));
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O2", "-pthread", "-fno-builtin"])
        .arg(manifest_dir().join("benches/churn.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("cc");
    assert!(status.success());
    out
}

fn time(mut cmd: Command) -> (Duration, String) {
    let start = Instant::now();
    let out = cmd.stderr(Stdio::null()).output().expect("run");
    let took = start.elapsed();
    assert!(out.status.success(), "{cmd:?} failed");
    (took, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Caller sites through wrappers vs direct calls, under libasmalloc.so.
fn wrappers(prog: &Path, lib: &Path, threads: &str, ops: &str, reps: usize) {
    let run = |mode: &str, follow: bool| {
        let mut c = Command::new(prog);
        c.args([threads, ops, mode, "0"])
            .env("LD_PRELOAD", lib)
            .env("ASMALLOC_CALLERS", "1")
            .env("ASMALLOC_BUILTIN_WRAPPERS", "0")
            .env_remove("ASMALLOC_WRAPPERS");
        if follow {
            c.env("ASMALLOC_WRAPPERS", "bench_x*");
        }
        c
    };
    let (mut direct, mut through, mut followed) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let (a, out_a) = time(run("plain", false));
        let (b, out_b) = time(run("wrapped", false));
        let (c, out_c) = time(run("wrapped", true));
        assert!(out_a == out_b && out_b == out_c, "same work in every mode");
        direct.push(a);
        through.push(b);
        followed.push(c);
    }
    let (a, b, c) = (median(direct), median(through), median(followed));
    // Every operation allocates once (malloc, calloc or realloc).
    let calls = threads.parse::<f64>().unwrap_or(1.0) * ops.parse::<f64>().unwrap_or(1.0);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("wrappers (libasmalloc.so, caller sites on, allocator only):");
    println!(
        "  direct calls to malloc & co.               {:>7.1} ms",
        ms(a)
    );
    println!(
        "  through bench_xmalloc & co., not followed  {:>7.1} ms  ratio {:.3}x",
        ms(b),
        b.as_secs_f64() / a.as_secs_f64()
    );
    println!(
        "  through bench_xmalloc & co., followed      {:>7.1} ms  ratio {:.3}x  ({:.0} ns per wrapped call over not followed, {:.0} ns over direct; wall time of {threads} threads)",
        ms(c),
        c.as_secs_f64() / a.as_secs_f64(),
        (c.as_secs_f64() - b.as_secs_f64()) * 1e9 / calls * threads.parse::<f64>().unwrap_or(1.0),
        (c.as_secs_f64() - a.as_secs_f64()) * 1e9 / calls * threads.parse::<f64>().unwrap_or(1.0),
    );
}

/// Sampled stacks on (one sample per 512 KiB) vs off, under
/// libasmalloc.so with caller sites on.
fn stacks(prog: &Path, lib: &Path, threads: &str, ops: &str, reps: usize) {
    let run = |sample: bool| {
        let mut c = Command::new(prog);
        c.args([threads, ops, "plain", "0"])
            .env("LD_PRELOAD", lib)
            .env("ASMALLOC_CALLERS", "1")
            .env_remove("ASMALLOC_SAMPLE_BYTES");
        if sample {
            c.env("ASMALLOC_SAMPLE_BYTES", "512K");
        }
        c
    };
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (a, out_a) = time(run(false));
        let (b, out_b) = time(run(true));
        assert_eq!(out_a, out_b, "same work with and without sampling");
        off.push(a);
        on.push(b);
    }
    let (a, b) = (median(off), median(on));
    println!(
        "sampled stacks (libasmalloc.so, caller sites on, allocator only): off {:>7.1} ms  on (512K) {:>7.1} ms  ratio {:.3}x",
        a.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        b.as_secs_f64() / a.as_secs_f64()
    );
}

fn main() {
    // `cargo test --benches` runs this with --bench absent; stay quick then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("churn: run with `cargo bench` to measure");
        return;
    }
    // Built with this bench binary's profile and target directory.
    let lib = Lib::Glibc.path().to_path_buf();
    let jem_lib = Lib::Jemalloc.path().to_path_buf();
    let raw_jem = build_raw_jemalloc(lib.parent().unwrap());
    let prog = compile();
    let threads = env_num("CHURN_THREADS", 2).to_string();
    let ops = env_num("CHURN_OPS", 3_000_000).to_string();
    let reps = env_num("CHURN_REPS", 7) as usize;
    let only = std::env::var("CHURN_ONLY").unwrap_or_default();
    println!(
        "churn: {threads} threads x {ops} ops, {reps} alternating repetitions, median wall time"
    );
    for (heap, base, tracked) in [
        ("glibc", None, &lib),
        ("jemalloc", Some(&raw_jem), &jem_lib),
    ] {
        if !only.is_empty() && only != heap {
            continue;
        }
        println!(
            "{heap}: raw = {}, preload = {}",
            base.map_or("no preload".into(), |p| format!(
                "plain jemalloc ({})",
                p.file_name().unwrap().to_string_lossy()
            )),
            tracked.file_name().unwrap().to_string_lossy()
        );
        for (label, mode, work) in [
            ("allocator only, no API calls", "plain", "0"),
            ("program-like (block read back once)", "plain", "1"),
            ("program-like + asm_mallocation_set per call", "sites", "1"),
        ] {
            let run = |preload: Option<&PathBuf>| {
                let mut c = Command::new(&prog);
                c.args([&threads, &ops, mode, work])
                    .env_remove("LD_PRELOAD");
                if let Some(p) = preload {
                    c.env("LD_PRELOAD", p);
                }
                c
            };
            let (mut raw, mut traced) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                let (a, out_a) = time(run(base));
                let (b, out_b) = time(run(Some(tracked)));
                assert_eq!(out_a, out_b, "same output with and without the preload");
                raw.push(a);
                traced.push(b);
            }
            let (r, t) = (median(raw), median(traced));
            println!(
                "  {label:<45} raw {:>7.1} ms  preload {:>7.1} ms  ratio {:.3}x",
                r.as_secs_f64() * 1e3,
                t.as_secs_f64() * 1e3,
                t.as_secs_f64() / r.as_secs_f64()
            );
        }
    }
    let _ = std::fs::remove_file(&raw_jem);
    if only.is_empty() || only == "glibc" || only == "wrappers" {
        wrappers(&prog, &lib, &threads, &ops, reps);
        stacks(&prog, &lib, &threads, &ops, reps);
    }
    if only == "jemalloc" || only == "wrappers" {
        let _ = std::fs::remove_file(&prog);
        return;
    }

    // Other tools, on a smaller input (they are much slower).
    let small = (env_num("CHURN_OPS", 3_000_000) / 20).max(1000).to_string();
    let small_cmd = || {
        let mut c = Command::new(&prog);
        c.args([&threads, &small, "plain"]).env_remove("LD_PRELOAD");
        c
    };
    let base = median((0..3).map(|_| time(small_cmd()).0).collect());
    println!(
        "tools on {threads} threads x {small} ops: raw {:.1} ms",
        base.as_secs_f64() * 1e3
    );
    let dir = std::env::temp_dir().join(format!("asmalloc-churn-tools-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut lib_small = small_cmd();
    lib_small.env("LD_PRELOAD", &lib);
    let t = time(lib_small).0;
    println!(
        "  asmalloc  {:>9.1} ms  {:.2}x",
        t.as_secs_f64() * 1e3,
        t.as_secs_f64() / base.as_secs_f64()
    );
    if have("heaptrack") {
        let mut c = Command::new("heaptrack");
        c.arg("-o")
            .arg(dir.join("ht"))
            .arg(&prog)
            .args([&threads, &small, "plain"]);
        let t = time(c).0;
        println!(
            "  heaptrack {:>9.1} ms  {:.2}x",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / base.as_secs_f64()
        );
    } else {
        println!("  heaptrack: not installed, skipped");
    }
    if have("valgrind") {
        let mut c = Command::new("valgrind");
        c.args(["--tool=memcheck", "-q", "--leak-check=no"])
            .arg(&prog)
            .args([&threads, &small, "plain"]);
        let t = time(c).0;
        println!(
            "  memcheck  {:>9.1} ms  {:.2}x",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / base.as_secs_f64()
        );
        let mut c = Command::new("valgrind");
        c.args(["--tool=massif", "-q"])
            .arg(format!(
                "--massif-out-file={}",
                dir.join("massif.out").display()
            ))
            .arg(&prog)
            .args([&threads, &small, "plain"]);
        let t = time(c).0;
        println!(
            "  massif    {:>9.1} ms  {:.2}x",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / base.as_secs_f64()
        );
    } else {
        println!("  valgrind: not installed, skipped");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&prog);
}
