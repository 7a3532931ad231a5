//! Leak verdicts end to end, on an uninstrumented C program
//! (tests/c/verdicts.c) named through caller sites:
//!
//! * with the default settings (no tuning), a 5 MiB/s leak is named within
//!   15 s of the program's start, nothing else is blamed, and a legitimate
//!   surge is never left standing (about 20 s: the one slow test here);
//! * a program that leaks while running and frees everything at exit keeps
//!   its verdict: the summary names the leak, "freed at exit";
//! * a run too short for a verdict still names the site that grew, and how
//!   long a run would need;
//! * every "grew by X over S (R/s)" printed has R = X / S.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use asmalloc_test_support::{Cc, Lib, scratch};

const ASMALLOC: &str = env!("CARGO_BIN_EXE_asmalloc");

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/verdicts.c")
}

fn program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        Lib::Glibc.path();
        Cc::new()
            .args(["-O1", "-g", "-fno-builtin", "-pthread", "-Wall", "-Werror"])
            .arg(source())
            .build(&scratch().join("verdicts"))
    })
}

/// `file:line function` of the malloc marked `/* MARK */` in verdicts.c.
fn site_of(mark: &str, function: &str) -> String {
    let text = std::fs::read_to_string(source()).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains(&format!("/* {mark} */")))
        .unwrap()
        + 1;
    format!("verdicts.c:{line} {function}")
}

fn run(log: &Path, tuning: &[&str], mode: &str, seconds: &str) -> (Output, String) {
    let out = std::process::Command::new(ASMALLOC)
        .arg("run")
        .args(tuning)
        .arg("--log")
        .arg(log)
        .arg("--")
        .arg(program())
        .args([mode, seconds])
        .env_remove("LD_PRELOAD")
        .env_remove("ASMALLOC_LEAK_THRESHOLD")
        .env_remove("ASMALLOC_LEAK_WINDOW")
        .env_remove("ASMALLOC_LEAK_MIN_SAMPLES")
        .output()
        .expect("run asmalloc");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (out, stderr)
}

fn summary(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .skip_while(|l| !l.starts_with("asmalloc: summary:"))
        .collect()
}

/// Bytes of `12.5 MiB` (B, KiB, MiB, GiB).
fn bytes(number: &str, unit: &str) -> f64 {
    let n: f64 = number.parse().unwrap();
    let unit = unit
        .trim_end_matches(|c: char| !c.is_alphabetic())
        .trim_end_matches("/s");
    n * match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        u => panic!("unit {u}"),
    }
}

/// Every `grew by X U over S s (R U/s)` in `text` has R = X / S, to the
/// precision printed.
fn rates_add_up(text: &str) -> usize {
    let mut checked = 0;
    for line in text.lines() {
        let mut rest = line;
        while let Some(i) = [rest.find("grown by "), rest.find("grew by ")]
            .into_iter()
            .flatten()
            .min()
        {
            rest = &rest[i..];
            let w: Vec<&str> = rest.split_whitespace().collect();
            // grew by X U over S s (R U/s); "(it had grown by X U)" has no
            // span.
            let at = 2;
            if w.get(at + 2) != Some(&"over") {
                rest = &rest[8..];
                continue;
            }
            let growth = bytes(w[at], w[at + 1]);
            let secs: f64 = w[at + 3].parse().unwrap();
            let rate = bytes(w[at + 5].trim_start_matches('('), w[at + 6]);
            // Each printed number is rounded: growth and rate to 1 decimal of
            // their unit, seconds to 2 (under 10 s) or 1 decimal.
            let tol_growth = bytes("0.05", w[at + 1]);
            let tol_secs = if secs < 10.0 { 0.005 } else { 0.05 };
            let low = (growth - tol_growth) / (secs + tol_secs);
            let high = (growth + tol_growth) / (secs - tol_secs).max(1e-9);
            let tol_rate = bytes("0.05", w[at + 6]);
            assert!(
                rate + tol_rate >= low && rate - tol_rate <= high,
                "rate is not growth over span: {line}"
            );
            checked += 1;
            rest = &rest[8..];
        }
    }
    checked
}

#[test]
fn with_the_defaults_a_fast_leak_is_named_within_15_s_and_nothing_else_lasts() {
    let log = scratch().join("serve.jsonl");
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let (_, stderr) = run(&log, &[], "serve", "20");
    let leak = site_of("LEAK", "leak_session");
    let surge = site_of("SURGE", "batch_load");
    // Live verdicts (stderr, as the program ran): the leak is named first.
    let live: Vec<&str> = stderr
        .lines()
        .take_while(|l| !l.starts_with("asmalloc: summary:"))
        .filter(|l| {
            l.starts_with("asmalloc: possible progressive leak")
                || l.starts_with("asmalloc: still growing")
                || l.starts_with("asmalloc: never mind")
        })
        .collect();
    assert!(
        live.first().is_some_and(|l| l.contains(&leak)),
        "the leak first:\n{stderr}"
    );
    // Within 15 s of the start, from the log's times.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let named = lines
        .iter()
        .find(|l| {
            l["verdicts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["kind"] == "possible_leak" && v["function"] == "leak_session")
        })
        .unwrap_or_else(|| panic!("the leak is never named:\n{stderr}"));
    let after = (named["time_ns"].as_i64().unwrap() - started) as f64 / 1e9;
    assert!(
        after <= 15.0,
        "named {after:.1} s after the start:\n{stderr}"
    );
    // Nothing else blamed: every other verdict is on the surge, and the
    // surge is never minded before the end.
    let mut surge_standing = false;
    for l in &live {
        if l.contains(&leak) {
            assert!(!l.contains("never mind"), "{l}");
            continue;
        }
        assert!(l.contains(&surge), "blamed: {l}\n{stderr}");
        surge_standing = !l.contains("never mind");
    }
    assert!(!surge_standing, "the surge is left standing:\n{stderr}");
    // The summary: the leak at exit, nothing else.
    let end = summary(&stderr);
    let exits: Vec<&&str> = end.iter().filter(|l| l.contains("LEAK")).collect();
    assert_eq!(exits.len(), 1, "{stderr}");
    assert!(
        exits[0].starts_with("asmalloc: LEAK at exit: site ") && exits[0].contains(&leak),
        "{stderr}"
    );
    assert!(rates_add_up(&stderr) >= 2, "{stderr}");

    // The report and its plot say the same.
    let svg = scratch().join("serve.svg");
    let out = std::process::Command::new(ASMALLOC)
        .args([
            "report",
            log.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("still leaking at the end: ") && report.contains(&leak),
        "{report}"
    );
    assert!(rates_add_up(&report) >= 2, "{report}");
}

#[test]
fn a_leak_freed_at_exit_keeps_its_verdict() {
    // Tuned for a 2.5 s run: 100 ms samples, a 1.5 s window.
    let log = scratch().join("teardown.jsonl");
    let (out, stderr) = run(
        &log,
        &[
            "--interval",
            "100ms",
            "--window",
            "1500ms",
            "--threshold",
            "1M",
        ],
        "teardown",
        "2.5",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("freed everything"),
        "{stderr}"
    );
    let leak = site_of("LEAK", "leak_session");
    let end = summary(&stderr);
    let line = end
        .iter()
        .find(|l| l.starts_with("asmalloc: LEAK while running, freed at exit: site "))
        .unwrap_or_else(|| panic!("no 'freed at exit':\n{stderr}"));
    assert!(line.contains(&leak), "{line}");
    assert!(line.contains("it had grown by"), "{line}");
    assert!(
        !end.iter().any(|l| l.contains("no progressive leak")),
        "{stderr}"
    );
    assert!(
        !end.iter()
            .any(|l| l.contains(&leak) && l.contains("never mind")),
        "freed at exit, not never mind:\n{stderr}"
    );
    assert!(rates_add_up(&stderr) >= 1, "{stderr}");
    // The report says it too, in its table and at the end.
    let out = std::process::Command::new(ASMALLOC)
        .args(["report", log.to_str().unwrap()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("leak, freed at exit"), "{report}");
    assert!(
        report.contains("LEAK while running, freed at exit: site "),
        "{report}"
    );
}

#[test]
fn a_run_too_short_for_a_verdict_names_what_grew() {
    // The defaults: 1 s samples, so 3 s give 3 or 4 samples — not enough.
    let log = scratch().join("short.jsonl");
    let (_, stderr) = run(&log, &[], "short", "3");
    let leak = site_of("LEAK", "leak_session");
    let end = summary(&stderr);
    assert!(
        end.iter()
            .any(|l| l.contains("no progressive leak at exit")),
        "{stderr}"
    );
    let line = end
        .iter()
        .find(|l| l.contains("grew, no verdict"))
        .unwrap_or_else(|| panic!("no short-run line:\n{stderr}"));
    assert!(
        line.starts_with("asmalloc: grew, no verdict: site ") && line.contains(&leak),
        "{line}"
    );
    assert!(line.contains("run longer than "), "{line}");
    assert!(line.ends_with(" s for a verdict"), "{line}");
    assert_eq!(rates_add_up(line), 1, "{line}");
}
