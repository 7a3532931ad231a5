//! `asmalloc run --budget GLOB=RATE`, end to end on tests/c/soak.c (an
//! uninstrumented program: caller sites name its functions):
//!
//! * a leaking run exits 3 and names the leaking function at its
//!   `file:line`, and only it;
//! * a run that only churns exits 0, within a tight budget;
//! * the last matching rule applies (`soak.c:*`, by the file's name);
//! * the program's own non-zero exit is passed through, budget or not;
//! * a run too short to judge exits 2 and says why;
//! * bad budget strings are refused before anything runs, naming the flag.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use asmalloc_test_support::{Cc, Lib, scratch};

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/soak.c")
}

fn soak() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        Cc::new()
            .args(["-O1", "-g", "-fno-builtin", "-Wall", "-Wextra", "-Werror"])
            .arg(source())
            .build(&scratch().join("soak"))
    })
}

fn line_of(needle: &str) -> usize {
    let text = std::fs::read_to_string(source()).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

/// `asmalloc run --interval 100ms BUDGET-ARGS -- soak MS LEAK STATUS`.
fn run(budget: &[&str], ms: &str, leak: &str, status: &str) -> (Option<i32>, String) {
    Lib::Glibc.path();
    let Output {
        status: code,
        stderr,
        ..
    } = Command::new(env!("CARGO_BIN_EXE_asmalloc"))
        .args(["run", "--interval", "100ms"])
        .args(budget)
        .arg("--")
        .arg(soak())
        .args([ms, leak, status])
        .output()
        .unwrap();
    (code.code(), String::from_utf8_lossy(&stderr).into_owned())
}

fn exceeded_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .skip_while(|l| !l.starts_with("asmalloc: BUDGET EXCEEDED"))
        .skip(1)
        .take_while(|l| l.starts_with("asmalloc:   "))
        .collect()
}

#[test]
fn a_leak_exceeds_its_budget_and_is_named() {
    // ~2 MB/s kept by leak_more(), against 1 MiB a minute.
    let (code, stderr) = run(&["--budget", "*=1MiB/min"], "1500", "2000", "0");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("asmalloc: BUDGET EXCEEDED by 1 site:"),
        "{stderr}"
    );
    let lines = exceeded_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    let place = format!("soak.c:{} leak_more", line_of("void leak_more("));
    assert!(lines[0].contains(&place), "{}", lines[0]);
    assert!(
        lines[0].contains("floor grew") && lines[0].ends_with("budget 1.0 MiB/min ('*=1MiB/min')"),
        "{}",
        lines[0]
    );
}

#[test]
fn churn_alone_stays_within_a_tight_budget() {
    let (code, stderr) = run(&["--budget", "*=64KiB/min"], "1500", "0", "0");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("EXCEEDED"), "{stderr}");
    assert!(
        stderr.contains("asmalloc: budget: ") && stderr.contains("within"),
        "{stderr}"
    );
}

#[test]
fn the_last_matching_rule_applies() {
    // Everything may grow fast, but nothing in soak.c may grow at all.
    let (code, stderr) = run(
        &["--budget", "*=1GiB/s", "--budget", "soak.c:*=0"],
        "1500",
        "2000",
        "0",
    );
    assert_eq!(code, Some(3), "{stderr}");
    let lines = exceeded_lines(&stderr);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("leak_more") && l.contains("budget 0 B/s ('soak.c:*=0')")),
        "{stderr}"
    );
    // A rule for the leaking function lets it grow.
    let (code, stderr) = run(
        &["--budget", "*=64KiB/min", "--budget", "leak_more=100MiB/s"],
        "1500",
        "2000",
        "0",
    );
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn the_programs_own_failure_is_passed_through() {
    let (code, stderr) = run(&["--budget", "*=1MiB/min"], "1500", "2000", "5");
    assert_eq!(code, Some(5), "{stderr}");
    // The verdict is still said.
    assert!(stderr.contains("BUDGET EXCEEDED"), "{stderr}");
}

#[test]
fn a_run_too_short_to_judge_says_so() {
    let (code, stderr) = run(&["--budget", "*=0"], "150", "0", "0");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("asmalloc: budget not judged:") && stderr.contains("at least 4"),
        "{stderr}"
    );
}

#[test]
fn bad_budgets_are_refused_naming_the_flag() {
    for (budget, why) in [
        ("cache.c", "is not GLOB=RATE"),
        ("*=1MB/min", "powers of 1024"),
        ("*=fast", "bad rate 'fast'"),
        ("*=1MiB/m", "write /min"),
        ("[=0", "bad glob '['"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_asmalloc"))
            .args(["run", "--budget", budget, "--", "true"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{budget}: {stderr}");
        assert!(
            stderr.contains("'--budget <GLOB=RATE>'") && stderr.contains(why),
            "{budget}: {stderr}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_asmalloc"))
        .args(["run", "--budget-warmup", "5s", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--budget <GLOB=RATE>"));
}
