//! What the preload's end-to-end tests share (tests/c_api.rs,
//! exactness.rs, heap_edges.rs, process.rs, real_programs.rs): small C
//! programs (tests/c/*.c) and real programs run with and without
//! `LD_PRELOAD`, and the readers of asmalloc's reports. Every scenario runs
//! under both libraries ([`under_both!`]: `glibc::…` and `jemalloc::…`
//! tests) with the same assertions.
//!
//! Each library is built by the first test that needs it, with the same
//! profile and target directory as the test binary
//! ([`asmalloc_test_support`]), so a plain `cargo test --workspace` works
//! from a clean checkout.

// Each test file uses its own part of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use asmalloc_test_support::{Cc, Lib, scratch};

pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The original C interface: asmalloc.h, vm_stats.h.
pub fn include_dir() -> PathBuf {
    manifest_dir().join("../../include")
}

/// Builds the library (a no-op when fresh; once per process) and returns
/// its path.
pub fn lib(which: Lib) -> &'static Path {
    which.path()
}

/// Compiles tests/c/<name>.c with extra flags; returns the executable.
pub fn compile(name: &str, flags: &[&str]) -> PathBuf {
    let src = manifest_dir().join("tests/c").join(format!("{name}.c"));
    // One executable per (program, flags); tests run in parallel, and
    // compile the same program concurrently (Cc renames it into place).
    let tag: u32 = flags
        .iter()
        .flat_map(|f| f.bytes())
        .fold(17, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    Cc::new()
        .arg("-O1")
        // Keep every malloc: GCC may drop an unused one, or a malloc+free pair.
        .arg("-fno-builtin")
        .arg("-g")
        .arg("-pthread")
        .arg("-I")
        .arg(include_dir())
        .arg(&src)
        .args(flags)
        .build(&scratch().join(format!("{name}-{tag:08x}")))
}

/// Links against the library (for programs calling the API directly).
pub fn compile_linked(which: Lib, name: &str, flags: &[&str]) -> PathBuf {
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

pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

pub fn run_cmd(mut cmd: Command, preload: Option<Lib>, env: &[(&str, &str)]) -> Run {
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

pub fn run(exe: &Path, preload: Option<Lib>, env: &[(&str, &str)]) -> Run {
    run_cmd(Command::new(exe), preload, env)
}

pub fn run_with(exe: &Path, lib: Lib, args: &[&str], env: &[(&'static str, String)]) -> Run {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_cmd(cmd, Some(lib), &env)
}

/// Runs `make()` without and with the preload: same stdout, same status.
pub fn same_with_and_without(which: Lib, what: &str, make: impl Fn() -> Command) -> Run {
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

// --- the text report.

/// The last report's row of the top-sites table that contains `needle`.
pub fn site_row<'a>(report: &'a str, needle: &str) -> Option<&'a str> {
    report.lines().rev().find(|l| l.contains(needle))
}

/// The last report's row of the top-sites table for site `id`.
pub fn site_row_by_id(report: &str, id: u16) -> Option<&str> {
    let id = id.to_string();
    report
        .lines()
        .rev()
        .find(|l| l.split_whitespace().next() == Some(id.as_str()) && l.starts_with("    "))
}

// --- every optional part on (monitor, log, reporter), JSON reports and logs.

/// The settings `asmalloc run` uses, and more: the leak monitor sampling
/// every 10 ms into a JSON-lines log, the periodic reporter every 20 ms,
/// every feature, JSON reports into `out`, caller sites, and sampled
/// stacks at one sample per 64 KiB (sampled blocks carry a stack id in
/// their tag: their frees must still be charged exactly). Each of these
/// allocates inside the library while the program runs.
pub fn everything_on(log: &Path, out: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("ASMALLOC_CALLERS", "1".into()),
        ("ASMALLOC_SAMPLE_BYTES", "64K".into()),
        ("ASMALLOC_LOG", log.display().to_string()),
        ("ASMALLOC_SAMPLE_INTERVAL", "10ms".into()),
        ("ASMALLOC_REPORT_INTERVAL", "20ms".into()),
        ("ASMALLOC_FEATURES", "all".into()),
        ("ASMALLOC_REPORT_FORMAT", "json".into()),
        ("ASMALLOC_OUTPUT", out.display().to_string()),
    ]
}

/// The JSON lines of a file (reports or the monitor's log).
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// (net bytes, net blocks) of each site in a report or log line.
pub fn sites_of(line: &serde_json::Value) -> BTreeMap<u64, (i64, i64)> {
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
pub fn foreign_frees(report: &serde_json::Value) -> u64 {
    report["ops"]["foreign_free"]["count"].as_u64().unwrap_or(0)
}

/// One test per scenario and library: `under_both!(scenario, …)` makes
/// `glibc::scenario` and `jemalloc::scenario`, each calling
/// `scenario(Lib)` of the file it is used in.
macro_rules! under_both {
    ($($name:ident),* $(,)?) => {
        /// Under libasmalloc.so (glibc's heap).
        mod glibc {
            $(#[test]
            fn $name() {
                super::$name($crate::common::Lib::Glibc)
            })*
        }
        /// Under libasmalloc_jem.so (jemalloc's heap).
        mod jemalloc {
            $(#[test]
            fn $name() {
                super::$name($crate::common::Lib::Jemalloc)
            })*
        }
    };
}
