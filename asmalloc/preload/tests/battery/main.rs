//! The real-program battery (issue 10, part 4): two dozen real programs
//! doing real work — interpreters, compilers and build tools, data tools,
//! git, servers under a short loopback load, a forking server, a program
//! that dlopens plugins, and programs linked against Debian's jemalloc,
//! tcmalloc and mimalloc — each run without the preload and then under
//! each preload library (`libasmalloc.so`, `libasmalloc_jem.so`) with every
//! optional part on: the JSON exit report, periodic reports, every feature,
//! the leak monitor with its log, caller sites with the built-in wrappers,
//! and sampled stacks (one sample per 64 KiB). For each program and
//! library it asserts
//!
//! * the same stdout, stderr (less the library's own `asmalloc:` lines) and
//!   exit status of every command, and the same output files, byte for
//!   byte, as without the preload (output that legitimately differs between
//!   runs — timings, ports, the order parallel jobs finish in — is
//!   normalized; each program says what and why);
//! * every site's net bytes and net blocks are non-negative in every report
//!   line (periodic and at exit) and every line of the monitor's log;
//! * no foreign frees (blocks freed that the library never handed out),
//!   unless the program's table entry says why it has some;
//! * an exit report exists, unless the library stepped aside (it says so on
//!   stderr with an `asmalloc:` line and runs the program untracked).
//!
//! Modes: quick (the default: small inputs, a few seconds per program) and
//! full (`ASMALLOC_BATTERY=full`: bigger inputs, more load, node).
//! `ASMALLOC_BATTERY_ONLY=name,name` runs only the named programs (for
//! debugging; the count line then says how many ran). A program whose tool
//! is missing fails the test with the Debian package to install.
//!
//! Every program's three runs (plain, glibc, jemalloc) happen one after the
//! other in the same work directory path (emptied in between), so paths
//! compiled into outputs (cmake, gcc) are the same; programs run in
//! parallel threads. Scratch files are kept when the test fails (the path
//! is printed): per run, each command's stdout/stderr under `logs/` and the
//! library's reports and logs under `asm/`.
//!
//! Also here: `asmalloc run` on redis-server (issue 10), which must pick
//! the jemalloc build of the library by itself (asmalloc_run.rs).
//!
//! Where things are: the programs and how each runs (programs.rs,
//! data_tools.rs, servers.rs), running their commands (ctx.rs), the
//! generated inputs and helper programs (inputs.rs), normalizing output
//! that varies between runs (normalise.rs), the checks on the library's
//! reports and logs (checks.rs, json.rs), running and comparing the three
//! runs and the summary (report.rs). The C sources, scripts and the C
//! project the programs use are beside them in tests/battery/.

mod asmalloc_run;
mod checks;
mod ctx;
mod data_tools;
mod inputs;
mod json;
mod normalise;
mod programs;
mod report;
mod servers;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use asmalloc_test_support::{Lib, fresh_dir};

use checks::{analyze, missing_needs, summarize};
use ctx::Shared;
use inputs::{build_helpers, make_inputs};
use normalise::{
    norm_benchmark, norm_commandstats, norm_nginx_error, replace_number, sorted_without_progress,
    strip_durations,
};
use programs::{Need, Program, programs};
use report::{Outcome, Outcomes, print_summary, run_program};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// tests/battery/: C sources, scripts, the C project.
fn fixture(name: &str) -> PathBuf {
    manifest_dir().join("tests/battery").join(name)
}

/// How big the inputs and the load are: `ASMALLOC_BATTERY=quick` (the
/// default) or `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quick,
    Full,
}

impl Mode {
    pub fn from_env() -> Mode {
        match std::env::var("ASMALLOC_BATTERY").as_deref() {
            Err(_) | Ok("") | Ok("quick") => Mode::Quick,
            Ok("full") => Mode::Full,
            Ok(other) => panic!("ASMALLOC_BATTERY={other}: expected `quick` or `full`"),
        }
    }

    pub fn pick<T>(self, quick: T, full: T) -> T {
        match self {
            Mode::Quick => quick,
            Mode::Full => full,
        }
    }

    pub fn name(self) -> &'static str {
        self.pick("quick", "full")
    }
}

#[test]
fn real_program_battery() {
    let t0 = Instant::now();
    let mode = Mode::from_env();
    let only: Option<Vec<String>> = std::env::var("ASMALLOC_BATTERY_ONLY")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let mut progs = programs();
    if let Some(only) = &only {
        progs.retain(|p| only.iter().any(|o| o == p.name));
        assert!(!progs.is_empty(), "ASMALLOC_BATTERY_ONLY names no program");
    }
    let root = fresh_dir("asmalloc-battery-");
    // The libraries, the inputs and the helper programs, side by side.
    let (libs, (html_files, bins)) = std::thread::scope(|s| {
        let libs = s.spawn(|| {
            Lib::ALL
                .iter()
                .map(|&l| (l.file(), l.path().to_path_buf()))
                .collect::<BTreeMap<_, _>>()
        });
        let rest = s.spawn(|| {
            let n = make_inputs(&root.join("inputs"), mode);
            (n, build_helpers(&root.join("bin")))
        });
        (libs.join().unwrap(), rest.join().unwrap())
    });
    let shared = Shared {
        inputs: root.join("inputs"),
        root: root.clone(),
        bins,
        libs,
        html_files,
    };
    eprintln!(
        "battery: {} mode, {} programs, setup {:.1}s, scratch {}",
        mode.name(),
        progs.len(),
        t0.elapsed().as_secs_f64(),
        root.display()
    );

    let jobs: usize = std::env::var("ASMALLOC_BATTERY_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcomes>>> = Mutex::new(vec![None; progs.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = progs.get(i) else { break };
                    let t = Instant::now();
                    let r = run_program(p, &shared, mode);
                    eprintln!(
                        "battery: {} done in {:.1}s",
                        p.name,
                        t.elapsed().as_secs_f64()
                    );
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    let results: Vec<Outcomes> = results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();

    let (count, failures) = print_summary(&progs, &results, mode, t0);
    if failures == 0 {
        let _ = fs::remove_dir_all(&root);
    } else {
        eprintln!("scratch files kept in {}", root.display());
    }
    assert_eq!(failures, 0, "{count}; {failures} failing (see above)");
}

/// The checks on the library's output catch what they are for.
#[test]
fn analysis_flags_negative_sites_foreign_frees_and_missing_reports() {
    let dir = fresh_dir("asmalloc-battery-self-");
    let (asm, logs) = (dir.join("asm"), dir.join("logs"));
    fs::create_dir_all(&asm).unwrap();
    fs::create_dir_all(&logs).unwrap();
    let site = |id: i32, b: i64, n: i64| {
        format!("{{\"id\":{id},\"function\":\"f\",\"net_bytes\":{b},\"net_count\":{n}}}")
    };
    fs::write(
        asm.join("report.1.jsonl"),
        format!(
            "{{\"net_bytes\":10,\"ops\":{{\"free\":{{\"count\":3,\"bytes\":9}}}},\"sites\":[{}]}}\n\
             {{\"net_bytes\":20,\"ops\":{{\"foreign_free\":{{\"count\":2,\"bytes\":48}}}},\"sites\":[{},{}]}}\n",
            site(0, 10, 1),
            site(0, 24, 1),
            site(3, -4, 0)
        ),
    )
    .unwrap();
    fs::write(
        asm.join("log.1.jsonl"),
        format!("{{\"v\":1,\"sites\":[{}]}}\nnot json\n", site(5, 8, -1)),
    )
    .unwrap();
    fs::write(
        logs.join("00-x.err"),
        "asmalloc: this program's malloc is tcmalloc's: libasmalloc.so steps aside and the program runs untracked\nother\n",
    )
    .unwrap();
    let a = analyze(&asm, &logs);
    assert_eq!((a.procs, a.report_lines, a.log_lines), (1, 2, 1));
    assert_eq!((a.sites, a.net, a.foreign), (2, 20, 2));
    assert_eq!(a.negatives.len(), 2, "{:?}", a.negatives);
    for want in ["report.1.jsonl:2: site 3 f", "log.1.jsonl:1: site 5 f"] {
        assert!(
            a.negatives.iter().any(|n| n.contains(want)),
            "{:?}",
            a.negatives
        );
    }
    assert_eq!(a.malformed.len(), 1, "{:?}", a.malformed);
    assert!(a.stepped_aside);
    let p = programs().into_iter().next().unwrap();
    let v = summarize(&p, a).violations;
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v[2].contains("2 foreign frees"), "{v:?}");
    // Nothing written and no message: no exit report is a failure.
    fs::remove_dir_all(&dir).unwrap();
    fs::create_dir_all(&asm).unwrap();
    fs::create_dir_all(&logs).unwrap();
    let v = summarize(&p, analyze(&asm, &logs)).violations;
    assert!(v.len() == 1 && v[0].contains("no exit report"), "{v:?}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn normalizers() {
    assert_eq!(
        norm_benchmark(
            "SET: rps=1000.0 (overall: 9.0) avg_msec=0.1\rSET: 217391.30 requests per second, p50=0.111 msec\nGET: 1.0 requests per second\n"
        ),
        "SET: requests per second\nGET: requests per second\n"
    );
    assert_eq!(
        norm_commandstats(
            "# Commandstats\r\ncmdstat_set:calls=3,usec=5,usec_per_call=1.6\r\ncmdstat_get:calls=2,usec=1\r\n"
        ),
        "cmdstat_get:calls=2\ncmdstat_set:calls=3\n"
    );
    assert_eq!(
        norm_nginx_error("2026/12/01 05:49:20 [error] 1234#1234: *5 open() failed, host: \"x\""),
        "[error] open() failed, host: \"x\"\n"
    );
    assert_eq!(
        strip_durations("-- Configuring done (0.3s)\n-- Done\n"),
        "-- Configuring done\n-- Done\n"
    );
    assert_eq!(
        sorted_without_progress(
            "[ 50%] Linking C executable wordfreq\n[ 20%] Building C object a.o\n"
        ),
        "Building C object a.o\nLinking C executable wordfreq\n"
    );
    assert_eq!(
        replace_number("port 8080 18080 8080x :8080", "8080", "<p>"),
        "port <p> 18080 <p>x :<p>"
    );
}

/// A missing tool or header fails its program, naming the Debian package.
#[test]
fn missing_tools_name_their_debian_package() {
    let p = Program {
        name: "nothing",
        needs: &[
            Need::Tool("asmalloc-no-such-tool", "no-such-package"),
            Need::File("/nonexistent/asmalloc.h", "libno-such-dev"),
            Need::Tool("sh", "dash"),
        ],
        foreign_frees_ok: false,
        full_only: false,
        outputs: &[],
        run: |_| Ok(()),
    };
    let m = missing_needs(&p);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m[0].contains("asmalloc-no-such-tool") && m[0].contains("no-such-package"));
    assert!(m[1].contains("libno-such-dev"), "{m:?}");
    let out = run_program(&p, &dummy_shared(), Mode::Quick);
    assert!(
        out.iter()
            .all(|(_, o)| matches!(o, Outcome::Missing(m) if m.len() == 2)),
        "a missing tool fails under both libraries"
    );
}

fn dummy_shared() -> Shared {
    Shared {
        root: std::env::temp_dir(),
        inputs: std::env::temp_dir(),
        bins: BTreeMap::new(),
        libs: BTreeMap::new(),
        html_files: 0,
    }
}

/// `asmalloc run -- redis-server …` picks the jemalloc build by itself and
/// tracks the server (issue 10): asmalloc_run.rs.
#[test]
fn asmalloc_run_tracks_redis_with_the_jemalloc_build() {
    asmalloc_run::redis_under_asmalloc_run();
}
