//! Running a program three times (plain, then under each library) and
//! comparing; the summary table and the details of every failure.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use asmalloc_test_support::Lib;

use crate::Mode;
use crate::checks::{AnalysisSummary, analyze, missing_needs, summarize, truncate};
use crate::ctx::{Capture, Ctx, Shared, collect_outputs};
use crate::programs::Program;

struct RunResult {
    pub result: Result<(), String>,
    pub cap: Capture,
    pub files: BTreeMap<String, Vec<u8>>,
    pub unmatched: Vec<String>,
    pub elapsed: Duration,
}

fn traced_env(lib: &Path, asm: &Path) -> Vec<(String, String)> {
    let a = asm.display();
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        // The exit report, as JSON, one file per process …
        ("ASMALLOC_REPORT_AT_EXIT".into(), "1".into()),
        ("ASMALLOC_REPORT_FORMAT".into(), "json".into()),
        ("ASMALLOC_OUTPUT".into(), format!("{a}/report.%p.jsonl")),
        // … and every other optional part: periodic reports (a reporter
        // thread in every process), every feature, the leak monitor
        // sampling every 100 ms into its log, …
        ("ASMALLOC_REPORT_INTERVAL".into(), "250ms".into()),
        ("ASMALLOC_FEATURES".into(), "all".into()),
        ("ASMALLOC_LOG".into(), format!("{a}/log.%p.jsonl")),
        ("ASMALLOC_SAMPLE_INTERVAL".into(), "100ms".into()),
        // … caller sites (with the built-in wrappers) and sampled stacks,
        // as `asmalloc run --stacks` sets them, at 8 times the sampling
        // rate (sampled blocks carry a stack id in their tag).
        ("ASMALLOC_CALLERS".into(), "1".into()),
        ("ASMALLOC_SAMPLE_BYTES".into(), "64K".into()),
    ]
}

fn run_once(
    p: &Program,
    shared: &Shared,
    mode: Mode,
    lib: Option<Lib>,
) -> (RunResult, PathBuf, PathBuf) {
    let slug: String = p
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let variant = lib.map_or("plain", Lib::name);
    let dir = shared.root.join("work").join(&slug);
    let logs = shared.root.join("logs").join(&slug).join(variant);
    let asm = shared.root.join("asm").join(&slug).join(variant);
    for d in [&dir, &logs, &asm] {
        let _ = fs::remove_dir_all(d);
        fs::create_dir_all(d).unwrap();
    }
    fs::create_dir_all(dir.join(".home")).unwrap();
    fs::create_dir_all(dir.join(".tmp")).unwrap();
    let env = lib.map_or_else(Vec::new, |l| traced_env(&shared.libs[l.file()], &asm));
    let ctx = Ctx {
        dir: dir.clone(),
        logs: logs.clone(),
        lib,
        env,
        mode,
        shared,
        ports: RefCell::new(Vec::new()),
        cap: RefCell::new(Capture::default()),
        seq: Cell::new(0),
    };
    let t0 = Instant::now();
    let result = (p.run)(&ctx);
    let elapsed = t0.elapsed();
    let (files, unmatched) = collect_outputs(&dir, p.outputs);
    let cap = ctx.cap.into_inner();
    // What is compared, as compared (kept with the scratch files when the
    // test fails).
    let _ = fs::write(
        logs.join("compared.txt"),
        format!(
            "statuses:\n{}\n\nstdout:\n{}\nstderr:\n{}",
            cap.statuses.join("\n"),
            cap.stdout,
            cap.stderr
        ),
    );
    (
        RunResult {
            result,
            cap,
            files,
            unmatched,
            elapsed,
        },
        asm,
        logs,
    )
}

/// How a traced run differs from the plain one (empty: identical).
fn differences(plain: &RunResult, traced: &RunResult) -> Vec<String> {
    let mut d = Vec::new();
    if let Err(e) = &traced.result {
        d.push(format!("error: {}", truncate(e, 600)));
    }
    if plain.cap.statuses != traced.cap.statuses {
        let n = plain.cap.statuses.len().max(traced.cap.statuses.len());
        for i in 0..n {
            let a = plain.cap.statuses.get(i).map_or("(none)", String::as_str);
            let b = traced.cap.statuses.get(i).map_or("(none)", String::as_str);
            if a != b {
                d.push(format!("status: {a}  vs  {b}"));
            }
        }
    }
    for (what, a, b) in [
        ("stdout", &plain.cap.stdout, &traced.cap.stdout),
        ("stderr", &plain.cap.stderr, &traced.cap.stderr),
    ] {
        if a != b {
            d.push(format!("{what}: {}", first_difference(a, b)));
        }
    }
    let names: BTreeSet<&String> = plain.files.keys().chain(traced.files.keys()).collect();
    for f in names {
        match (plain.files.get(f), traced.files.get(f)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                let at = a
                    .iter()
                    .zip(b)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.len().min(b.len()));
                d.push(format!(
                    "file {f}: {} vs {} bytes, first difference at byte {at}",
                    a.len(),
                    b.len()
                ));
            }
            (Some(_), None) => d.push(format!("file {f}: missing under the preload")),
            (None, _) => d.push(format!("file {f}: only under the preload")),
        }
    }
    d
}

fn first_difference(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    // The command a line belongs to: the last "== label" header before it.
    let label = |lines: &[&str], i: usize| {
        lines[..i.min(lines.len())]
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("== "))
            .unwrap_or("")
            .to_string()
    };
    for i in 0..la.len().max(lb.len()) {
        let x = la.get(i).copied();
        let y = lb.get(i).copied();
        if x != y {
            return format!(
                "[{}] line {}: {:?} vs {:?}",
                label(&la, i),
                i + 1,
                x.map(|s| truncate(s, 100)),
                y.map(|s| truncate(s, 100))
            );
        }
    }
    "differs".into()
}

/// A program's outcome under each library.
pub type Outcomes = Vec<(Lib, Outcome)>;

#[derive(Clone)]
pub enum Outcome {
    /// Ran under the library: identical or not, and what the library wrote.
    Ran {
        differences: Vec<String>,
        analysis: Box<AnalysisSummary>,
        plain: Duration,
        traced: Duration,
    },
    /// The plain run failed: the battery's own problem.
    PlainFailed(String),
    Missing(Vec<String>),
    FullOnly,
}

pub fn run_program(p: &Program, shared: &Shared, mode: Mode) -> Outcomes {
    let missing = missing_needs(p);
    if !missing.is_empty() {
        return Lib::ALL
            .iter()
            .map(|&l| (l, Outcome::Missing(missing.clone())))
            .collect();
    }
    if p.full_only && mode == Mode::Quick {
        return Lib::ALL.iter().map(|&l| (l, Outcome::FullOnly)).collect();
    }
    let (plain, _, _) = run_once(p, shared, mode, None);
    let plain_problem = match (&plain.result, plain.unmatched.is_empty()) {
        (Err(e), _) => Some(e.clone()),
        (Ok(()), false) => Some(format!(
            "output files missing without the preload: {:?}",
            plain.unmatched
        )),
        _ => None,
    };
    if let Some(e) = plain_problem {
        return Lib::ALL
            .iter()
            .map(|&l| (l, Outcome::PlainFailed(e.clone())))
            .collect();
    }
    Lib::ALL
        .iter()
        .map(|&l| {
            let (traced, asm, logs) = run_once(p, shared, mode, Some(l));
            let analysis = summarize(p, analyze(&asm, &logs));
            (
                l,
                Outcome::Ran {
                    differences: differences(&plain, &traced),
                    analysis: Box::new(analysis),
                    plain: plain.elapsed,
                    traced: traced.elapsed,
                },
            )
        })
        .collect()
}

fn human(n: i128) -> String {
    let a = n.unsigned_abs() as f64;
    let sign = if n < 0 { "-" } else { "" };
    if a >= (1u64 << 20) as f64 {
        format!("{sign}{:.1}M", a / (1u64 << 20) as f64)
    } else if a >= 1024.0 {
        format!("{sign}{:.1}K", a / 1024.0)
    } else {
        format!("{n}")
    }
}

/// Prints the summary table (one row per program and library), what the
/// library said, and the details of every failure; returns the count line
/// and the number of failing runs.
pub fn print_summary(
    progs: &[Program],
    results: &[Outcomes],
    mode: Mode,
    t0: Instant,
) -> (String, usize) {
    // The summary table, then the details of everything that failed.
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<16} {:<8} {:<13} {:>13} {:>5} {:>5} {:>9} {:>7} {:>9}  notes",
        "program", "library", "outputs", "time", "procs", "sites", "net", "foreign", "rep/log"
    );
    let mut details = String::new();
    // The library's own stderr lines, by text (pids and paths vary less
    // than the count of programs that print them).
    let mut said: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut ran, mut identical, mut failures) = (0usize, 0usize, 0usize);
    let mut programs_ran = 0usize;
    for (p, rs) in progs.iter().zip(results) {
        if rs.iter().any(|(_, o)| {
            matches!(
                o,
                Outcome::Ran { .. } | Outcome::PlainFailed(_) | Outcome::Missing(_)
            )
        }) {
            programs_ran += 1;
        }
        for (lib, o) in rs {
            let lib = lib.name();
            match o {
                Outcome::Ran {
                    differences,
                    analysis: a,
                    plain,
                    traced,
                } => {
                    ran += 1;
                    for m in &a.messages {
                        let text = m.split_once(": ").map_or(m.as_str(), |(_, t)| t);
                        said.entry(text.to_string())
                            .or_default()
                            .insert(format!("{} ({lib})", p.name));
                    }
                    let same = differences.is_empty();
                    identical += usize::from(same);
                    let mut notes = Vec::new();
                    if a.stepped_aside {
                        notes.push("stepped aside".to_string());
                    }
                    notes.extend(a.violations.iter().map(|v| truncate(v, 60)));
                    if !same || !a.violations.is_empty() {
                        failures += 1;
                        let _ = writeln!(details, "--- {} under {lib}:", p.name);
                        for d in differences.iter().chain(&a.violations) {
                            let _ = writeln!(details, "    {d}");
                        }
                        for m in a.messages.iter().take(5) {
                            let _ = writeln!(details, "    library said: {}", truncate(m, 200));
                        }
                    }
                    let _ = writeln!(
                        table,
                        "{:<16} {:<8} {:<13} {:>13} {:>5} {:>5} {:>9} {:>7} {:>9}  {}",
                        p.name,
                        lib,
                        if same { "identical" } else { "DIFFERENT" },
                        format!("{:.1}s/{:.1}s", plain.as_secs_f64(), traced.as_secs_f64()),
                        a.procs,
                        a.sites,
                        human(a.net),
                        a.foreign,
                        format!("{}/{}", a.report_lines, a.log_lines),
                        notes.join("; ")
                    );
                }
                Outcome::PlainFailed(e) => {
                    failures += 1;
                    let _ = writeln!(table, "{:<16} {:<8} PLAIN RUN FAILED", p.name, lib);
                    let _ = writeln!(details, "--- {} (without the preload): {e}", p.name);
                }
                Outcome::Missing(m) => {
                    failures += 1;
                    let _ = writeln!(table, "{:<16} {:<8} MISSING  {}", p.name, lib, m.join("; "));
                    let _ = writeln!(details, "--- {}: {}", p.name, m.join("; "));
                }
                Outcome::FullOnly => {
                    let _ = writeln!(table, "{:<16} {:<8} (full mode only)", p.name, lib);
                }
            }
        }
    }
    let count = format!(
        "battery: {programs_ran} programs x {} libraries: {identical} identical",
        Lib::ALL.len()
    );
    eprintln!("\n{table}");
    if !said.is_empty() {
        eprintln!("the library said (on stderr or in its output file):");
        for (text, who) in &said {
            let who: Vec<&str> = who.iter().map(String::as_str).collect();
            eprintln!("  {}\n    from: {}", truncate(text, 240), who.join(", "));
        }
        eprintln!();
    }
    if !details.is_empty() {
        eprintln!("failures:\n{details}");
    }
    eprintln!(
        "{count}; {} runs, {failures} failing ({} mode, {:.1}s)",
        ran,
        mode.name(),
        t0.elapsed().as_secs_f64()
    );
    (count, failures)
}
