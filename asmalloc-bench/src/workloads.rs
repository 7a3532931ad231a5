//! The workloads: what each runs, at which size, under which
//! configuration.

use std::path::{Path, PathBuf};

use crate::config::{Cfg, Invocation, Plan, Prog, Small, Tools, Wrapper, asm_env, jem_prof_conf};

/// Sizes of one mode (quick or full).
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// (a) operations per thread.
    pub churn_ops: u64,
    /// (b) requests per thread.
    pub server_requests: u64,
    /// (c) operations per thread, allocator-only and program-like.
    pub rust_alloc_ops: u64,
    pub rust_prog_ops: u64,
    /// (d) python rounds; bytes of the sort/gzip input.
    pub python_rounds: u64,
    pub text_bytes: u64,
    /// (e) redis-benchmark -n (requests per test).
    pub redis_requests: u64,
    /// memcheck runs 1/`memcheck_div` of the work (python:
    /// 1/`memcheck_div_python`, sort and gzip: 1/`memcheck_div_text`).
    pub memcheck_div: u64,
    pub memcheck_div_python: u64,
    pub memcheck_div_text: u64,
    /// memcheck on python at all (its start-up alone takes ~6 s there).
    pub memcheck_python: bool,
    /// heaptrack runs 1/`heaptrack_div` of the work of (a), (b), (c) (1:
    /// full size).
    pub heaptrack_div: u64,
    /// Zero-work runs measuring a scaled tool's start-up (the minimum is
    /// taken).
    pub zero_runs: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                churn_ops: 1_200_000,
                server_requests: 50_000,
                rust_alloc_ops: 3_000_000,
                rust_prog_ops: 1_600_000,
                python_rounds: 60,
                text_bytes: 6 << 20,
                redis_requests: 100_000,
                memcheck_div: 10,
                memcheck_div_python: 6,
                memcheck_div_text: 10,
                memcheck_python: false,
                heaptrack_div: 8,
                zero_runs: 2,
            }
        } else {
            Sizes {
                churn_ops: 2_400_000,
                server_requests: 100_000,
                rust_alloc_ops: 6_000_000,
                rust_prog_ops: 3_200_000,
                python_rounds: 240,
                text_bytes: 20 << 20,
                redis_requests: 400_000,
                memcheck_div: 10,
                memcheck_div_python: 8,
                memcheck_div_text: 10,
                memcheck_python: true,
                heaptrack_div: 1,
                zero_runs: 3,
            }
        }
    }
}

/// A program at a fraction of its work: `at(Some(div))` does 1/div of it,
/// `at(None)` none.
fn small(at: &dyn Fn(Option<u64>) -> Prog, div: u64) -> Small {
    Small {
        prog: at(Some(div)),
        scale: div as f64,
        zero: at(None),
    }
}

/// How a workload runs.
pub enum Kind {
    /// One process per run, measured by wait4.
    Process,
    /// A redis-server per run, driven by redis-benchmark.
    Redis { benchmark: PathBuf, requests: u64 },
}

/// One workload (a row of the result tables).
pub struct Workload {
    pub key: &'static str,
    pub title: String,
    /// Which target group it is ("allocator-heavy", "program-like", ...).
    pub kind: Kind,
    pub plans: Vec<(Cfg, Plan)>,
    /// Set when the whole workload cannot run (a missing program).
    pub unavailable: Option<String>,
}

/// The Rust churn binaries (None: not built, with the reason).
#[derive(Debug, Clone)]
pub struct RustBins {
    pub raw: PathBuf,
    pub system: PathBuf,
    pub jemalloc: Result<(PathBuf, PathBuf), String>,
}

/// Everything the workload list needs.
pub struct Inputs<'a> {
    pub tools: &'a Tools,
    pub sizes: Sizes,
    pub churn: PathBuf,
    pub server: PathBuf,
    pub rust: RustBins,
    pub python: Option<PathBuf>,
    pub python_script: PathBuf,
    pub sort: Option<PathBuf>,
    pub gzip: Option<PathBuf>,
    /// Text input for sort and gzip: full size, 1/memcheck_div_text, empty.
    pub text: PathBuf,
    pub text_small: PathBuf,
    pub empty: PathBuf,
    pub redis_server: Option<PathBuf>,
    pub redis_benchmark: Option<PathBuf>,
}

/// A row of a program that runs under every preload configuration. `at`
/// builds it at a fraction of its work (see [`small`]); memcheck runs it at
/// 1/`memcheck_div` (None: memcheck skipped), heaptrack at
/// 1/`heaptrack_div` (1: full size).
fn preload_row(
    tools: &Tools,
    key: &'static str,
    title: String,
    at: &dyn Fn(Option<u64>) -> Prog,
    memcheck_div: Option<u64>,
    heaptrack_div: u64,
) -> Workload {
    let full = at(Some(1));
    let mc = memcheck_div.map(|d| small(at, d));
    let ht = (heaptrack_div > 1).then(|| small(at, heaptrack_div));
    let plans = Cfg::ALL
        .iter()
        .map(|&c| (c, tools.preload_plan(c, &full, mc.as_ref(), ht.as_ref())))
        .collect();
    Workload {
        key,
        title,
        kind: Kind::Process,
        plans,
        unavailable: None,
    }
}

fn missing(key: &'static str, title: String, why: String) -> Workload {
    Workload {
        key,
        title,
        kind: Kind::Process,
        plans: Vec::new(),
        unavailable: Some(why),
    }
}

/// 1/div of `n` (None: nothing).
fn part(n: u64, div: Option<u64>) -> String {
    div.map_or(0, |d| n / d).to_string()
}

fn rust_row(inp: &Inputs, key: &'static str, title: String, mode: &str, ops: u64) -> Workload {
    let tools = inp.tools;
    let z = inp.sizes;
    let prog = |bin: &Path, div: Option<u64>| Prog::new(bin, &[&"2", &part(ops, div), &mode]);
    let raw_at = |div: Option<u64>| prog(&inp.rust.raw, div);
    let raw = raw_at(Some(1));
    let mc = small(&raw_at, z.memcheck_div);
    let ht = (z.heaptrack_div > 1).then(|| small(&raw_at, z.heaptrack_div));
    let direct = |p: Prog, env: Vec<(&'static str, String)>| {
        Plan::Run(Box::new(Invocation {
            prog: p,
            wrapper: Wrapper::None,
            env,
            scale: 1.0,
            zero: None,
            compare_stdout: true,
        }))
    };
    let mut log_env = asm_env("", true);
    log_env.retain(|(k, _)| *k != "ASMALLOC_OUTPUT");
    let plans = Cfg::ALL
        .iter()
        .map(|&c| {
            let plan = match c {
                Cfg::Raw => direct(raw.clone(), vec![]),
                Cfg::Asm => direct(prog(&inp.rust.system, Some(1)), vec![]),
                Cfg::AsmLog => direct(prog(&inp.rust.system, Some(1)), log_env.clone()),
                Cfg::Jem => match &inp.rust.jemalloc {
                    Ok((raw_jem, _)) => direct(prog(raw_jem, Some(1)), vec![]),
                    Err(e) => Plan::Skip(e.clone()),
                },
                Cfg::AsmJem => match &inp.rust.jemalloc {
                    Ok((_, tracked)) => direct(prog(tracked, Some(1)), vec![]),
                    Err(e) => Plan::Skip(e.clone()),
                },
                // The tools run the raw (System) binary, like a C program;
                // jemalloc profiling preloads Debian's jemalloc under it.
                _ => tools.preload_plan(c, &raw, Some(&mc), ht.as_ref()),
            };
            (c, plan)
        })
        .collect();
    Workload {
        key,
        title,
        kind: Kind::Process,
        plans,
        unavailable: None,
    }
}

/// The workload list, in run order.
pub fn all(inp: &Inputs) -> Vec<Workload> {
    let z = inp.sizes;
    let tools = inp.tools;
    let mut out = Vec::new();

    out.push(preload_row(
        tools,
        "a",
        format!(
            "(a) C churn, allocator-heavy: 2 threads x {} ops, 1,000-block rings",
            z.churn_ops
        ),
        &|div| Prog::new(&inp.churn, &[&"2", &part(z.churn_ops, div)]),
        Some(z.memcheck_div),
        z.heaptrack_div,
    ));
    out.push(preload_row(
        tools,
        "b",
        format!(
            "(b) C server loop, program-like: 2 threads x {} requests, slow leak",
            z.server_requests
        ),
        &|div| Prog::new(&inp.server, &[&"2", &part(z.server_requests, div)]),
        Some(z.memcheck_div),
        z.heaptrack_div,
    ));
    out.push(rust_row(
        inp,
        "c-alloc",
        format!(
            "(c) Rust churn, allocator only: 2 threads x {} ops",
            z.rust_alloc_ops
        ),
        "alloc",
        z.rust_alloc_ops,
    ));
    out.push(rust_row(
        inp,
        "c-prog",
        format!(
            "(c) Rust churn, program-like (fill + read): 2 threads x {} ops",
            z.rust_prog_ops
        ),
        "prog",
        z.rust_prog_ops,
    ));

    let title = format!(
        "(d) python3: json/re/collections/hashlib script, {} rounds",
        z.python_rounds
    );
    match &inp.python {
        Some(py) => out.push(preload_row(
            tools,
            "d-python",
            title,
            &|div| Prog::new(py, &[&inp.python_script, &part(z.python_rounds, div)]),
            z.memcheck_python.then_some(z.memcheck_div_python),
            1,
        )),
        None => out.push(missing(
            "d-python",
            title,
            crate::config::not_installed("python3"),
        )),
    }

    // sort and gzip: 1/div of the work is the small input file, none the
    // empty one.
    let input = |div: Option<u64>| match div {
        Some(1) => inp.text.clone(),
        Some(_) => inp.text_small.clone(),
        None => inp.empty.clone(),
    };
    let mb = z.text_bytes as f64 / (1 << 20) as f64;
    let title = format!("(d) sort: {mb:.0} MiB of text lines, LC_ALL=C");
    match &inp.sort {
        Some(sort) => out.push(preload_row(
            tools,
            "d-sort",
            title,
            &|div| {
                let mut p = Prog::new(sort, &[&"-o", &"/dev/null"]);
                p.stdin = Some(input(div));
                p.env.push(("LC_ALL", "C".into()));
                p
            },
            Some(z.memcheck_div_text),
            1,
        )),
        None => out.push(missing(
            "d-sort",
            title,
            crate::config::not_installed("coreutils"),
        )),
    }
    let title = format!("(d) gzip -6: the same {mb:.0} MiB");
    match &inp.gzip {
        Some(gzip) => out.push(preload_row(
            tools,
            "d-gzip",
            title,
            &|div| {
                let mut p = Prog::new(gzip, &[&"-6", &"-c"]);
                p.stdin = Some(input(div));
                p.discard_stdout = true;
                p
            },
            Some(z.memcheck_div_text),
            1,
        )),
        None => out.push(missing(
            "d-gzip",
            title,
            crate::config::not_installed("gzip"),
        )),
    }

    let title = format!(
        "(e) redis-server (Debian, on its libjemalloc.so.2) under redis-benchmark -P 32 -d 256, 5 tests x {} requests: requests/s",
        z.redis_requests
    );
    match (&inp.redis_server, &inp.redis_benchmark) {
        (Some(server), Some(benchmark)) => {
            let prog = Prog::new(server, &[]);
            let lib_jem = tools.lib_jem.display().to_string();
            let run = |wrapper, env| {
                Plan::Run(Box::new(Invocation {
                    prog: prog.clone(),
                    wrapper,
                    env,
                    scale: 1.0,
                    zero: None,
                    compare_stdout: false,
                }))
            };
            let plans = Cfg::ALL
                .iter()
                .map(|&c| {
                    let plan = match c {
                        Cfg::Raw => run(Wrapper::None, vec![]),
                        // libasmalloc.so steps aside for a jemalloc program:
                        // the asmalloc columns are the jemalloc build.
                        Cfg::Asm => run(Wrapper::None, asm_env(&lib_jem, false)),
                        Cfg::AsmLog => run(Wrapper::None, asm_env(&lib_jem, true)),
                        Cfg::Jem => Plan::Skip("= raw (redis runs on jemalloc)".into()),
                        Cfg::AsmJem => Plan::Skip("= asmalloc column".into()),
                        Cfg::Memcheck => Plan::Skip("skipped (too slow to serve a load)".into()),
                        Cfg::Heaptrack => match &tools.heaptrack {
                            Some(_) => run(Wrapper::Heaptrack, vec![]),
                            None => Plan::Skip(crate::config::not_installed("heaptrack")),
                        },
                        // redis already links Debian's jemalloc: only the
                        // option is needed.
                        Cfg::JemProf => match (&tools.debian_jem, tools.jem_prof) {
                            (Some(_), true) => {
                                run(Wrapper::None, vec![("MALLOC_CONF", jem_prof_conf())])
                            }
                            (Some(_), false) => {
                                Plan::Skip("jemalloc built without profiling".into())
                            }
                            (None, _) => Plan::Skip(crate::config::not_installed("libjemalloc2")),
                        },
                    };
                    (c, plan)
                })
                .collect();
            out.push(Workload {
                key: "e-redis",
                title,
                kind: Kind::Redis {
                    benchmark: benchmark.clone(),
                    requests: z.redis_requests,
                },
                plans,
                unavailable: None,
            });
        }
        (None, _) => out.push(missing(
            "e-redis",
            title,
            crate::config::not_installed("redis-server"),
        )),
        (_, None) => out.push(missing(
            "e-redis",
            title,
            crate::config::not_installed("redis-tools"),
        )),
    }
    out
}

/// Writes `bytes` of deterministic text lines (words and numbers, the
/// kind of file sort and gzip see) to `path`.
pub fn write_text(path: &Path, bytes: u64) -> std::io::Result<()> {
    use std::io::Write;
    const WORDS: [&str; 16] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    ];
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut written = 0u64;
    let mut line = String::new();
    while written < bytes {
        line.clear();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = 2 + (x % 6) as usize;
        for i in 0..n {
            let r = x.rotate_left(7 * i as u32 + 3);
            line.push_str(WORDS[(r % 16) as usize]);
            line.push(' ');
            line.push_str(&(r >> 40).to_string());
            line.push(if i + 1 == n { '\n' } else { ' ' });
        }
        w.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    w.flush()
}
