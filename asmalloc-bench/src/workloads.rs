//! The workloads: what each runs, at which size, under which
//! configuration.

use std::path::{Path, PathBuf};

use crate::config::{Cfg, Invocation, Plan, Prog, Tools, Wrapper, asm_env, jem_prof_conf};

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
    /// memcheck runs 1/`memcheck_div` of the work (python: 1/`memcheck_div_python`).
    pub memcheck_div: u64,
    pub memcheck_div_python: u64,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                churn_ops: 600_000,
                server_requests: 25_000,
                rust_alloc_ops: 1_500_000,
                rust_prog_ops: 800_000,
                python_rounds: 60,
                text_bytes: 5 << 20,
                redis_requests: 100_000,
                memcheck_div: 20,
                memcheck_div_python: 6,
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
                memcheck_div: 20,
                memcheck_div_python: 8,
            }
        }
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
    /// Text input for sort and gzip, full size and 1/memcheck_div.
    pub text: PathBuf,
    pub text_small: PathBuf,
    pub redis_server: Option<PathBuf>,
    pub redis_benchmark: Option<PathBuf>,
}

fn s(v: u64) -> String {
    v.to_string()
}

fn preload_row(
    tools: &Tools,
    key: &'static str,
    title: String,
    prog: Prog,
    small: Option<(Prog, f64)>,
) -> Workload {
    let plans = Cfg::ALL
        .iter()
        .map(|&c| {
            (
                c,
                tools.preload_plan(c, &prog, small.as_ref().map(|(p, f)| (p, *f))),
            )
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

fn missing(key: &'static str, title: String, why: String) -> Workload {
    Workload {
        key,
        title,
        kind: Kind::Process,
        plans: Vec::new(),
        unavailable: Some(why),
    }
}

fn rust_row(inp: &Inputs, key: &'static str, title: String, mode: &str, ops: u64) -> Workload {
    let tools = inp.tools;
    let args = |ops: u64| -> Vec<String> { vec!["2".into(), s(ops), mode.into()] };
    let prog = |bin: &Path, ops: u64| {
        let a = args(ops);
        Prog::new(bin, &[&a[0], &a[1], &a[2]])
    };
    let raw = prog(&inp.rust.raw, ops);
    let div = inp.sizes.memcheck_div;
    let small = prog(&inp.rust.raw, ops / div);
    let direct = |p: Prog, env: Vec<(&'static str, String)>| {
        Plan::Run(Box::new(Invocation {
            prog: p,
            wrapper: Wrapper::None,
            env,
            scale: 1.0,
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
                Cfg::Asm => direct(prog(&inp.rust.system, ops), vec![]),
                Cfg::AsmLog => direct(prog(&inp.rust.system, ops), log_env.clone()),
                Cfg::Jem => match &inp.rust.jemalloc {
                    Ok((raw_jem, _)) => direct(prog(raw_jem, ops), vec![]),
                    Err(e) => Plan::Skip(e.clone()),
                },
                Cfg::AsmJem => match &inp.rust.jemalloc {
                    Ok((_, tracked)) => direct(prog(tracked, ops), vec![]),
                    Err(e) => Plan::Skip(e.clone()),
                },
                // The tools run the raw (System) binary, like a C program;
                // jemalloc profiling preloads Debian's jemalloc under it.
                _ => tools.preload_plan(c, &raw, Some((&small, div as f64))),
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
    let div = z.memcheck_div;
    let mut out = Vec::new();

    let two = "2".to_string();
    let (ops, small_ops) = (s(z.churn_ops), s(z.churn_ops / div));
    out.push(preload_row(
        tools,
        "a",
        format!(
            "(a) C churn, allocator-heavy: 2 threads x {} ops, 1,000-block rings",
            z.churn_ops
        ),
        Prog::new(&inp.churn, &[&two, &ops]),
        Some((Prog::new(&inp.churn, &[&two, &small_ops]), div as f64)),
    ));

    let (req, small_req) = (s(z.server_requests), s(z.server_requests / div));
    out.push(preload_row(
        tools,
        "b",
        format!(
            "(b) C server loop, program-like: 2 threads x {} requests, slow leak",
            z.server_requests
        ),
        Prog::new(&inp.server, &[&two, &req]),
        Some((Prog::new(&inp.server, &[&two, &small_req]), div as f64)),
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
        Some(py) => {
            let dpy = z.memcheck_div_python;
            let (r, small_r) = (s(z.python_rounds), s(z.python_rounds / dpy));
            out.push(preload_row(
                tools,
                "d-python",
                title,
                Prog::new(py, &[&inp.python_script, &r]),
                Some((Prog::new(py, &[&inp.python_script, &small_r]), dpy as f64)),
            ));
        }
        None => out.push(missing(
            "d-python",
            title,
            crate::config::not_installed("python3"),
        )),
    }

    let mb = z.text_bytes as f64 / (1 << 20) as f64;
    let title = format!("(d) sort: {mb:.0} MiB of text lines, LC_ALL=C");
    match &inp.sort {
        Some(sort) => {
            let mk = |input: &Path| {
                let mut p = Prog::new(sort, &[&"-o", &"/dev/null"]);
                p.stdin = Some(input.to_path_buf());
                p
            };
            out.push(preload_row(
                tools,
                "d-sort",
                title,
                mk(&inp.text),
                Some((mk(&inp.text_small), div as f64)),
            ));
        }
        None => out.push(missing(
            "d-sort",
            title,
            crate::config::not_installed("coreutils"),
        )),
    }
    let title = format!("(d) gzip -6: the same {mb:.0} MiB");
    match &inp.gzip {
        Some(gzip) => {
            let mk = |input: &Path| {
                let mut p = Prog::new(gzip, &[&"-6", &"-c"]);
                p.stdin = Some(input.to_path_buf());
                p.discard_stdout = true;
                p
            };
            out.push(preload_row(
                tools,
                "d-gzip",
                title,
                mk(&inp.text),
                Some((mk(&inp.text_small), div as f64)),
            ));
        }
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
