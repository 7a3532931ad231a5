//! asmalloc-bench: one benchmark suite, one command.
//!
//! `cargo run -p asmalloc-bench --release -- [--quick] [--out DIR]`
//!
//! Builds the preload libraries and the benchmark programs, then runs every
//! workload under every configuration, interleaved (each repetition runs
//! every configuration once, in alternating order), and reports medians of
//! the per-repetition ratios against raw: wall time, CPU time, peak RSS,
//! and the bytes each tool wrote; then counts the instructions tracking
//! adds per allocation step (callgrind: exact, unlike the timings). Writes DIR/results.md, DIR/results.svg and
//! DIR/results.json. See docs/benchmarks.md.

mod config;
mod instructions;
mod measure;
mod redis;
mod report;
mod results;
mod setup;
mod workloads;

use setup::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use config::{Cfg, Plan, Tools};
use results::{Cell, Row, Sample};
use workloads::{Inputs, Kind, RustBins, Sizes, Workload};

/// Debian's jemalloc (package libjemalloc2).
const DEBIAN_JEMALLOC: &str = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

/// A run that takes longer than this is killed (and its cell fails).
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

struct Opts {
    quick: bool,
    out: Option<PathBuf>,
    reps: Option<usize>,
    only: Option<Vec<String>>,
    update_doc: Option<PathBuf>,
    machine: Option<String>,
}

const USAGE: &str = "usage: asmalloc-bench [--quick] [--out DIR] [--reps N] [--only KEY,...] [--machine TEXT] [--update-doc FILE]

  --quick          smaller sizes, 3 repetitions (under 3 minutes on 2 cores once built)
  --out DIR        where results.md, results.svg and results.json go
                   (default: <target>/asmalloc-bench)
  --reps N         repetitions per cell (default 5, --quick 3)
  --only KEYS      only these workloads: a, b, c-alloc, c-prog, d-python,
                   d-sort, d-gzip, e-redis, and `instructions` (the
                   callgrind counts, which run when --only is not given)
  --machine TEXT   how to name this machine in the report
  --update-doc F   also write the results section into F between
                   <!-- asmalloc-bench:begin --> and <!-- asmalloc-bench:end -->";

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        quick: false,
        out: None,
        reps: None,
        only: None,
        update_doc: None,
        machine: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--quick" => o.quick = true,
            "--out" => o.out = Some(PathBuf::from(value("--out")?)),
            "--reps" => {
                let n: usize = value("--reps")?
                    .parse()
                    .map_err(|_| "--reps takes a number".to_string())?;
                if n == 0 {
                    return Err("--reps must be at least 1".into());
                }
                o.reps = Some(n);
            }
            "--only" => {
                o.only = Some(
                    value("--only")?
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .collect(),
                )
            }
            "--update-doc" => o.update_doc = Some(PathBuf::from(value("--update-doc")?)),
            "--machine" => o.machine = Some(value("--machine")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

/// Runs one cell once. `scratch` holds stdout/stderr, `dir` (emptied
/// first) the tool's output files.
fn run_once(
    tools: &Tools,
    w: &Workload,
    plan: &config::Invocation,
    dir: &Path,
    scratch: &Path,
) -> Result<(Sample, String), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cmd = tools.command(plan, dir);
    let stdout = scratch.join("stdout");
    let stderr = scratch.join("stderr");
    let result = match &w.kind {
        Kind::Process => {
            let mut cmd = cmd;
            let out = if plan.prog.discard_stdout {
                PathBuf::from("/dev/null")
            } else {
                stdout.clone()
            };
            measure::spawn(&mut cmd, plan.prog.stdin.as_deref(), &out, &stderr)
                .and_then(|r| r.wait(RUN_TIMEOUT))
                .map(|u| (u, None))
        }
        Kind::Redis {
            benchmark,
            requests,
            ..
        } => redis::run(cmd, benchmark, *requests, dir, scratch).map(|r| (r.usage, Some(r.rps))),
    };
    let (usage, rps) = result.map_err(|e| {
        let err = std::fs::read_to_string(&stderr).unwrap_or_default();
        let tail: Vec<&str> = err.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("{e}; stderr: {}", tail.join(" / "))
    })?;
    let out_bytes = measure::dir_bytes(dir);
    let text = if plan.compare_stdout {
        std::fs::read_to_string(&stdout).unwrap_or_default()
    } else {
        String::new()
    };
    let _ = std::fs::remove_dir_all(dir);
    Ok((
        Sample {
            usage,
            out_bytes,
            rps,
            scale: plan.scale,
            base_wall: 0.0,
            base_cpu: 0.0,
        },
        text,
    ))
}

/// The fixed start-up cost of a scaled-down run: `inv`'s zero-work command,
/// run once (wall, CPU seconds).
fn run_zero(
    tools: &Tools,
    inv: &config::Invocation,
    dir: &Path,
    scratch: &Path,
) -> Result<(f64, f64), String> {
    let Some(zero) = &inv.zero else {
        return Ok((0.0, 0.0));
    };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = tools.command_for(inv, zero, dir);
    let u = measure::spawn(
        &mut cmd,
        zero.stdin.as_deref(),
        Path::new("/dev/null"),
        &scratch.join("stderr"),
    )?
    .wait(RUN_TIMEOUT)?;
    let _ = std::fs::remove_dir_all(dir);
    Ok((u.wall, u.cpu))
}

fn short_name(key: &str) -> &'static str {
    match key {
        "a" => "(a) C churn, allocator-heavy",
        "b" => "(b) C server loop, program-like",
        "c-alloc" => "(c) Rust churn, allocator only",
        "c-prog" => "(c) Rust churn, program-like",
        "d-python" => "(d) python3 stdlib script",
        "d-sort" => "(d) sort",
        "d-gzip" => "(d) gzip",
        "e-redis" => "(e) redis",
        _ => "?",
    }
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("asmalloc-bench: {e}");
            std::process::exit(2);
        }
    };
    let t0 = Instant::now();
    let load_start = loadavg();
    let root = workspace_root();
    let target = target_dir(&root);
    let release = target.join("release");
    let reps = opts.reps.unwrap_or(if opts.quick { 3 } else { 5 });
    let out_dir = opts
        .out
        .clone()
        .unwrap_or_else(|| target.join("asmalloc-bench"));
    let work = std::env::temp_dir().join(format!("asmalloc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work directory");
    let mut notes: Vec<String> = Vec::new();
    if cfg!(debug_assertions) {
        println!(
            "asmalloc-bench: this driver is a debug build (fine: everything measured is built --release)"
        );
    }
    println!(
        "asmalloc-bench ({} mode, {reps} paired repetitions per cell); results to {}",
        if opts.quick { "quick" } else { "full" },
        out_dir.display()
    );

    // ---- builds
    println!("building (release, target dir {}):", target.display());
    let lib = release.join("libasmalloc.so");
    let lib_jem = release.join("libasmalloc_jem.so");
    let mut c = cargo();
    c.args([
        "build",
        "--release",
        "-p",
        "asmalloc-preload",
        "-p",
        "asmalloc-preload-jem",
    ])
    .env("CARGO_TARGET_DIR", &target)
    .current_dir(&root);
    if let Err(e) = build(
        "cargo build --release -p asmalloc-preload -p asmalloc-preload-jem",
        c,
    ) {
        if lib.exists() && lib_jem.exists() {
            println!("{e}");
            let n = format!(
                "The preload libraries did not build from the current tree; measured the ones from the last successful build ({}, {}).",
                mtime(&lib),
                mtime(&lib_jem)
            );
            println!("  {n}");
            notes.push(n);
        } else {
            eprintln!("{e}\nasmalloc-bench: cannot build the preload libraries");
            std::process::exit(1);
        }
    }
    let rust_raw = release.join("rust_churn_raw");
    let rust_system = release.join("rust_churn_system");
    let mut c = cargo();
    c.args([
        "build",
        "--release",
        "-p",
        "asmalloc-bench",
        "--bin",
        "rust_churn_raw",
        "--bin",
        "rust_churn_system",
    ])
    .env("CARGO_TARGET_DIR", &target)
    .current_dir(&root);
    if let Err(e) = build("Rust churn binaries (System, AsmAlloc<System>)", c) {
        if rust_raw.exists() && rust_system.exists() {
            println!("{e}");
            notes.push(format!(
                "The Rust churn binaries did not build from the current tree; measured the ones from the last successful build ({}).",
                mtime(&rust_system)
            ));
        } else {
            eprintln!("{e}\nasmalloc-bench: cannot build the Rust churn binaries");
            std::process::exit(1);
        }
    }
    // The jemalloc pair: a crate outside the workspace (asmalloc's
    // `jemalloc` feature must not be unified into workspace builds).
    let manifest = root.join("asmalloc-bench/rust-jemalloc/Cargo.toml");
    // Same dependency versions as the workspace: start from its lock file
    // (cargo drops what this crate does not use; the copy is not tracked).
    let _ = std::fs::copy(
        root.join("Cargo.lock"),
        root.join("asmalloc-bench/rust-jemalloc/Cargo.lock"),
    );
    let mut c = cargo();
    c.args(["build", "--release", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root.join("asmalloc-bench/rust-jemalloc"));
    let rust_jem = match build(
        "Rust churn binaries (Jemalloc, AsmAlloc<Jemalloc>), nested cargo build of asmalloc-bench/rust-jemalloc",
        c,
    ) {
        Ok(()) => Ok((
            release.join("rust_churn_jemalloc_raw"),
            release.join("rust_churn_jemalloc"),
        )),
        Err(e) => {
            println!("{e}");
            notes.push("The Rust jemalloc pair (asmalloc-bench/rust-jemalloc) did not build: its columns are empty.".into());
            Err("build failed".to_string())
        }
    };
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let compile = |src: &str, name: &str| -> PathBuf {
        let out = work.join(name);
        let mut c = Command::new(&cc);
        c.args(["-O2", "-pthread"])
            .arg(root.join("asmalloc-bench/c").join(src))
            .arg("-o")
            .arg(&out);
        if let Err(e) = build(&format!("cc -O2 {src}"), c) {
            eprintln!("{e}\nasmalloc-bench: cannot compile {src}");
            std::process::exit(1);
        }
        out
    };
    let churn = compile("churn.c", "churn");
    let server = compile("server.c", "server");
    // Every measured child runs under it (its peak RSS: see measure.rs).
    measure::set_launcher(compile("launch.c", "launch"));

    // ---- tools
    let sizes = Sizes::new(opts.quick);
    let debian_jem = Some(PathBuf::from(DEBIAN_JEMALLOC)).filter(|p| p.exists());
    if debian_jem.is_none() {
        println!(
            "  {DEBIAN_JEMALLOC}: not installed (apt-get install libjemalloc2): the jemalloc and jemalloc-profiling columns are empty"
        );
    }
    let jem_prof = debian_jem.as_ref().is_some_and(|j| {
        let out = Command::new(find_in_path("true").unwrap_or_else(|| "/bin/true".into()))
            .env("LD_PRELOAD", j)
            .env("MALLOC_CONF", "stats_print:true")
            .output();
        out.is_ok_and(|o| String::from_utf8_lossy(&o.stderr).contains("config.prof: true"))
    });
    if debian_jem.is_some() {
        notes.push(if jem_prof {
            "Debian's libjemalloc.so.2 is built with profiling (`config.prof: true`): the jemalloc-prof column runs `MALLOC_CONF=prof:true,prof_final:true,prof_prefix:DIR/jeprof` (default sampling, one sample per 512 KiB allocated; `prof_final` writes the profile at exit so its bytes are counted).".into()
        } else {
            "Debian's libjemalloc.so.2 is built without profiling: the jemalloc-prof column is dropped.".into()
        });
    }
    let heaptrack = find_in_path("heaptrack");
    let valgrind = find_in_path("valgrind");
    for (tool, path, pkg) in [
        ("heaptrack", &heaptrack, "heaptrack"),
        ("valgrind", &valgrind, "valgrind"),
    ] {
        if path.is_none() {
            println!("  {tool}: not installed (apt-get install {pkg}): its column says so");
        }
    }
    let redis_server = find_in_path("redis-server");
    let redis_benchmark = find_in_path("redis-benchmark");
    if redis_server.is_none() {
        println!(
            "  redis-server: not installed (apt-get install redis-server): workload (e) is skipped"
        );
    } else if redis_benchmark.is_none() {
        println!(
            "  redis-benchmark: not installed (apt-get install redis-tools): workload (e) is skipped"
        );
    }
    // Debian's python3, not a version manager's shim script.
    let python = Some(PathBuf::from("/usr/bin/python3"))
        .filter(|p| p.exists())
        .or_else(|| find_in_path("python3"));
    let tools = Tools {
        lib: lib.clone(),
        lib_jem: lib_jem.clone(),
        debian_jem,
        heaptrack,
        valgrind,
        jem_prof,
    };
    let mut versions = Vec::new();
    if let Some(h) = &tools.heaptrack {
        versions.extend(first_line(Command::new(h).arg("--version")));
    }
    if let Some(v) = &tools.valgrind {
        versions.extend(first_line(Command::new(v).arg("--version")));
    }
    if let Some(r) = &redis_server {
        versions.extend(first_line(Command::new(r).arg("--version")));
        // Show that libasmalloc.so steps aside for redis (it runs on
        // jemalloc): the redis row's asmalloc columns are libasmalloc_jem.so.
        let mut c = Command::new(r);
        c.arg("--version");
        config::clean_env(&mut c);
        c.env("LD_PRELOAD", &lib);
        if let Some(line) = c.output().ok().and_then(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .find(|l| l.starts_with("asmalloc:"))
                .map(|l| l.trim().to_string())
        }) {
            println!("  redis-server under libasmalloc.so: {line}");
            notes.push(format!(
                "redis-server links Debian's libjemalloc.so.2, so libasmalloc.so steps aside for it, saying “{line}”. The redis row's asmalloc columns are therefore libasmalloc_jem.so (defaults, and monitor + log); its raw column is redis on its own jemalloc, so its jemalloc and asmalloc_jem columns would repeat those."
            ));
        }
    }
    if let Some(p) = &python {
        versions.extend(first_line(Command::new(p).arg("--version")));
    }
    if !versions.is_empty() {
        notes.push(format!("Versions: {}.", versions.join("; ")));
    }

    // ---- inputs
    let text = work.join("text.txt");
    let text_small = work.join("text-small.txt");
    let empty = work.join("empty.txt");
    workloads::write_text(&text, sizes.text_bytes).expect("write the text input");
    workloads::write_text(&text_small, sizes.text_bytes / sizes.memcheck_div_text)
        .expect("write the text input");
    std::fs::write(&empty, "").expect("write the empty input");
    let instruction_pairs = instruction_pairs(
        &tools,
        &churn,
        &rust_raw,
        &rust_system,
        rust_jem.as_ref().ok(),
        if opts.quick { 100_000 } else { 200_000 },
    );
    let redis_counting = redis_server.clone().zip(redis_benchmark.clone());
    let inputs = Inputs {
        tools: &tools,
        sizes,
        churn,
        server,
        rust: RustBins {
            raw: rust_raw,
            system: rust_system,
            jemalloc: rust_jem,
        },
        python,
        python_script: root.join("asmalloc-bench/workloads/stdlib_mix.py"),
        sort: find_in_path("sort"),
        gzip: find_in_path("gzip"),
        text,
        text_small,
        empty,
        redis_server,
        redis_benchmark,
    };
    let mut list = workloads::all(&inputs);
    if let Some(only) = &opts.only {
        list.retain(|w| only.iter().any(|k| k == w.key));
    }

    // ---- measurements
    let dir = work.join("out");
    let scratch = work.join("scratch");
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let mut rows = Vec::new();
    for w in &list {
        println!("{}", w.title);
        let w_start = Instant::now();
        let mut cells: BTreeMap<Cfg, Cell> = BTreeMap::new();
        if let Some(why) = &w.unavailable {
            println!("  not run: {why}");
            for c in Cfg::ALL {
                cells.insert(c, Cell::Skipped(why.clone()));
            }
            rows.push(Row {
                key: w.key.into(),
                short: short_name(w.key).into(),
                title: w.title.clone(),
                redis: matches!(w.kind, Kind::Redis { .. }),
                cells,
            });
            continue;
        }
        for (c, p) in &w.plans {
            cells.insert(
                *c,
                match p {
                    Plan::Run(_) => Cell::Runs(Vec::new()),
                    Plan::Skip(why) => Cell::Skipped(why.clone()),
                },
            );
        }
        // Warm-up: one raw run, not counted (page cache, dynamic linker).
        if let Some((_, Plan::Run(inv))) = w.plans.iter().find(|(c, _)| *c == Cfg::Raw)
            && let Err(e) = run_once(&tools, w, inv, &dir, &scratch)
        {
            println!("  raw run failed: {e}");
            notes.push(format!("{}: the raw run failed: {e}", short_name(w.key)));
            for c in Cfg::ALL {
                cells.insert(c, Cell::Failed("raw run failed".into()));
            }
        }
        // The fixed start-up of the scaled-down tool runs (see the notes).
        let mut zero: BTreeMap<Cfg, (f64, f64)> = BTreeMap::new();
        for (c, p) in &w.plans {
            if let Plan::Run(inv) = p
                && inv.zero.is_some()
                && matches!(cells.get(c), Some(Cell::Runs(_)))
            {
                // The minimum of a few runs: noise only ever adds time.
                let runs: Result<Vec<(f64, f64)>, String> = (0..sizes.zero_runs)
                    .map(|_| run_zero(&tools, inv, &dir, &scratch))
                    .collect();
                match runs {
                    Ok(runs) => {
                        let z = runs
                            .into_iter()
                            .reduce(|a, b| (a.0.min(b.0), a.1.min(b.1)))
                            .unwrap_or((0.0, 0.0));
                        println!("  {} with no work: {:.2}s", c.key(), z.0);
                        zero.insert(*c, z);
                    }
                    Err(e) => {
                        println!("  {} failed: {e}", c.key());
                        notes.push(format!(
                            "{} / {}: failed: {e}",
                            short_name(w.key),
                            c.title()
                        ));
                        cells.insert(*c, Cell::Failed(e));
                    }
                }
            }
        }
        for rep in 0..reps {
            let mut order: Vec<&(Cfg, Plan)> = w.plans.iter().collect();
            if rep % 2 == 1 {
                order.reverse();
            }
            let mut raw_stdout: Option<String> = None;
            let mut line = format!("  rep {}/{reps}:", rep + 1);
            let mut outputs: Vec<(Cfg, String)> = Vec::new();
            for (c, p) in order {
                let Plan::Run(inv) = p else { continue };
                if !matches!(cells.get(c), Some(Cell::Runs(_))) {
                    continue;
                }
                match run_once(&tools, w, inv, &dir, &scratch) {
                    Ok((mut s, stdout)) => {
                        if let Some(&(wall, cpu)) = zero.get(c) {
                            s.base_wall = wall;
                            s.base_cpu = cpu;
                        }
                        line.push_str(&format!(" {} {:.2}s", c.key(), s.usage.wall));
                        if *c == Cfg::Raw {
                            raw_stdout = Some(stdout.clone());
                        }
                        if inv.compare_stdout {
                            outputs.push((*c, stdout));
                        }
                        if let Some(Cell::Runs(v)) = cells.get_mut(c) {
                            v.push(s);
                        }
                    }
                    Err(e) => {
                        line.push_str(&format!(" {} FAILED", c.key()));
                        println!("  {} failed: {e}", c.key());
                        notes.push(format!(
                            "{} / {}: failed: {e}",
                            short_name(w.key),
                            c.title()
                        ));
                        cells.insert(*c, Cell::Failed(e));
                    }
                }
            }
            // Same work, same output: the tools must not change what the
            // program computes.
            if let Some(raw) = raw_stdout {
                for (c, out) in outputs {
                    if out != raw {
                        let e = format!("output differs from raw: {out:?} vs {raw:?}");
                        println!("  {} {e}", c.key());
                        notes.push(format!("{} / {}: {e}", short_name(w.key), c.title()));
                        cells.insert(c, Cell::Failed(e));
                    }
                }
            }
            println!("{line}");
        }
        // Samples are pushed in run order; keep them by repetition (the
        // order within a repetition does not matter for pairing, since
        // every cell gets exactly one sample per repetition).
        let row = Row {
            key: w.key.into(),
            short: short_name(w.key).into(),
            title: w.title.clone(),
            redis: matches!(w.kind, Kind::Redis { .. }),
            cells,
        };
        let summary: Vec<String> = Cfg::ALL
            .iter()
            .filter(|&&c| c != Cfg::Raw)
            .filter_map(|&c| row.headline(c).map(|r| format!("{} {r:.2}x", c.key())))
            .collect();
        println!(
            "  => {} ({:.0} s)",
            summary.join(", "),
            w_start.elapsed().as_secs_f64()
        );
        rows.push(row);
    }

    // ---- instructions (exact, callgrind)
    let steps: u64 = if opts.quick { 100_000 } else { 200_000 };
    let counted = match (&tools.valgrind, &opts.only) {
        (Some(valgrind), only)
            if only
                .as_ref()
                .is_none_or(|o| o.iter().any(|k| k == "instructions")) =>
        {
            println!("instructions per step (callgrind, one thread, {steps} steps)");
            instructions::count_all(valgrind, &instruction_pairs, config::clean_env, &mut notes)
        }
        _ => Vec::new(),
    };
    let redis_counted = match (&tools.valgrind, &redis_counting) {
        (Some(valgrind), Some((server, benchmark)))
            if !opts.quick
                && opts
                    .only
                    .as_ref()
                    .is_none_or(|o| o.iter().any(|k| k == "instructions")) =>
        {
            instructions::count_redis(
                valgrind,
                (server, benchmark),
                &tools.lib_jem,
                20_000,
                &scratch,
                config::clean_env,
                &mut notes,
            )
        }
        _ => None,
    };

    // ---- notes on what the columns are
    notes.push(format!(
        "memcheck runs a scaled-down workload, 1/{} of the work (python: 1/{} of the rounds; sort and gzip: a 1/{} input){}; heaptrack runs (a), (b) and (c) at {} and the rest at full size. A scaled-down run is scaled back by the work ratio: its time less the tool's fixed start-up (the same command with no work — 0 ops, 0 rounds, an empty input — the minimum of {} runs per workload) is multiplied by the ratio and the start-up added back once; that is divided by raw's full-size time of the same repetition. Peak RSS and output bytes of a scaled-down run are the small run's own.",
        sizes.memcheck_div,
        sizes.memcheck_div_python,
        sizes.memcheck_div_text,
        if sizes.memcheck_python {
            ""
        } else {
            "; not on python in --quick mode: python's start-up alone takes about 6 s under memcheck (full mode runs it)"
        },
        if sizes.heaptrack_div > 1 {
            format!("1/{} of the work", sizes.heaptrack_div)
        } else {
            "full size".to_string()
        },
        sizes.zero_runs
    ));
    notes.push("Rust rows (c): raw = a binary on `std::alloc::System`, asmalloc = the same program with `#[global_allocator] AsmAlloc::system()` (monitor + log: `ASMALLOC_LOG`, `ASMALLOC_SAMPLE_INTERVAL=1s` read by `asmalloc::configure_from_env`), jemalloc = `tikv_jemallocator::Jemalloc`, asmalloc_jem = `AsmAlloc::jemalloc()`; heaptrack, memcheck and jemalloc-prof run the System binary (jemalloc prof: with Debian's libjemalloc.so.2 preloaded). A Rust program gets no report at exit unless it asks for one, and the monitor writes a log line per sample, so a run shorter than the 1 s interval writes nothing (0 B); the C library writes its report and a last sample at exit.".into());
    notes.push("C and real-program rows: jemalloc = Debian's libjemalloc.so.2 preloaded; asmalloc_jem = libasmalloc_jem.so, which carries its own jemalloc 5.3 (tikv-jemalloc-sys, statistics on), the same version as Debian's. The asmalloc columns write the exit report to a file in the run's directory (`ASMALLOC_OUTPUT`) so its bytes are counted; all other settings are the defaults.".into());
    notes.push("CPU time comes from wait4 on the child: user + sys of the process and the descendants it waited for (heaptrack: the program and heaptrack_interpret). Peak RSS is ru_maxrss, the largest of them, from the wait4 of a small launcher (asmalloc-bench/c/launch.c) that forks the command: a child spawned by the suite itself reports at least the suite's own resident set (Linux keeps the larger of the peaks before and after execve), which was above every small program's. Redis: the server's CPU time and RSS; wall time is the benchmark's duration.".into());

    let targets = results::targets(&rows);
    let meta = report::Meta {
        quick: opts.quick,
        reps,
        date: now_utc(),
        machine: opts.machine.clone().unwrap_or_else(machine_name),
        commit: first_line(
            Command::new("git")
                .args(["describe", "--always", "--dirty"])
                .current_dir(&root),
        )
        .unwrap_or_else(|| "unknown".into()),
        seconds: t0.elapsed().as_secs_f64(),
        load: format!("{load_start} at the start, {} at the end", loadavg()),
        notes,
    };
    let mut md = report::markdown(&rows, &targets, &meta);
    md.push_str(&instructions::markdown(
        &counted,
        steps,
        redis_counted.as_ref(),
    ));
    println!("\n{md}");
    std::fs::create_dir_all(&out_dir).expect("output directory");
    std::fs::write(out_dir.join("results.md"), &md).expect("write results.md");
    std::fs::write(out_dir.join("results.svg"), report::svg(&rows, &meta))
        .expect("write results.svg");
    std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_string_pretty(&{
            let mut j = report::json(&rows, &targets, &meta);
            j["instructions"] = instructions::json(&counted, steps, redis_counted.as_ref());
            j
        })
        .unwrap()
            + "\n",
    )
    .expect("write results.json");
    println!(
        "wrote {}/results.md, results.svg, results.json",
        out_dir.display()
    );
    if let Some(doc) = &opts.update_doc {
        match std::fs::read_to_string(doc)
            .ok()
            .and_then(|d| report::splice(&d, &md))
        {
            Some(text) => {
                std::fs::write(doc, text).expect("write the doc");
                println!("updated the results section of {}", doc.display());
            }
            None => eprintln!(
                "asmalloc-bench: {} has no <!-- asmalloc-bench:begin/end --> markers; not updated",
                doc.display()
            ),
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    println!("total {:.0} s", t0.elapsed().as_secs_f64());
}

/// The pairs whose instructions are counted: the allocator-only churns on
/// one thread, `steps` steps, each raw and tracked.
fn instruction_pairs(
    tools: &Tools,
    churn: &Path,
    rust_raw: &Path,
    rust_system: &Path,
    rust_jem: Option<&(PathBuf, PathBuf)>,
    steps: u64,
) -> Vec<instructions::Pair> {
    use instructions::{Pair, Run};
    let c_args = vec!["1".to_string(), steps.to_string()];
    let c_zero = vec!["1".to_string(), "0".to_string()];
    let preload = |lib: &Path, extra: &[(&str, &str)]| {
        let mut env = vec![
            ("LD_PRELOAD".to_string(), lib.as_os_str().to_owned()),
            ("ASMALLOC_OUTPUT".to_string(), "/dev/null".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), (*v).into())));
        env
    };
    let run = |program: &Path, args: &[String], env: Vec<(String, std::ffi::OsString)>| Run {
        program: program.to_path_buf(),
        args: args.to_vec(),
        env,
    };
    let glibc = run(churn, &c_args, Vec::new());
    let mut pairs = vec![
        Pair {
            label: "(a) libasmalloc.so / raw glibc".into(),
            raw: glibc.clone(),
            tracked: run(churn, &c_args, preload(&tools.lib, &[])),
            zero_args: c_zero.clone(),
        },
        Pair {
            label: "(a) libasmalloc.so, caller sites on / raw glibc".into(),
            raw: glibc,
            tracked: run(
                churn,
                &c_args,
                preload(&tools.lib, &[("ASMALLOC_CALLERS", "1")]),
            ),
            zero_args: c_zero.clone(),
        },
    ];
    if let Some(jem) = &tools.debian_jem {
        pairs.push(Pair {
            label: "(a) libasmalloc_jem.so / Debian's jemalloc preload".into(),
            raw: run(
                churn,
                &c_args,
                vec![("LD_PRELOAD".to_string(), jem.as_os_str().to_owned())],
            ),
            tracked: run(churn, &c_args, preload(&tools.lib_jem, &[])),
            zero_args: c_zero,
        });
    }
    let r_args = vec!["1".to_string(), steps.to_string(), "alloc".to_string()];
    let r_zero = vec!["1".to_string(), "0".to_string(), "alloc".to_string()];
    pairs.push(Pair {
        label: "(c) `AsmAlloc<System>` / `System`, allocator only".into(),
        raw: run(rust_raw, &r_args, Vec::new()),
        tracked: run(rust_system, &r_args, Vec::new()),
        zero_args: r_zero.clone(),
    });
    if let Some((raw, tracked)) = rust_jem {
        pairs.push(Pair {
            label: "(c) `AsmAlloc<Jemalloc>` / `Jemalloc`, allocator only".into(),
            raw: run(raw, &r_args, Vec::new()),
            tracked: run(tracked, &r_args, Vec::new()),
            zero_args: r_zero,
        });
    }
    pairs
}
