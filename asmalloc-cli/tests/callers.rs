//! Caller sites end to end: a C server that was never instrumented (no
//! table, no header, no API call), built with `-g` and run under
//! `asmalloc run` (which turns caller sites on): the leak verdict names the
//! leaking function and its `file:line`; the other allocating functions are
//! sites of their own; blocks freed on another thread are charged back to
//! the sites that allocated them; with `--no-callers` everything is site 0.
//! A stripped copy is named `module+0xOFFSET`, and `addr2line` on that
//! offset (in the unstripped file) names the leaking function.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use asmalloc_test_support::{Cc, Lib, fresh_dir};

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/uninstrumented.c")
}

/// The `asmalloc` binary, with libasmalloc.so built next to it.
fn asmalloc() -> Command {
    Lib::Glibc.path();
    Command::new(env!("CARGO_BIN_EXE_asmalloc"))
}

/// `asmalloc run` on `exe` serving 6,000 requests at 3,000 a second (about
/// 2 s; the leak grows ~2 MiB/s), with a detector tuned to that length.
fn run(exe: &Path, extra: &[&str]) -> Output {
    let out = asmalloc()
        .args([
            "run",
            "--interval",
            "100ms",
            "--window",
            "1s",
            "--threshold",
            "256K",
        ])
        .args(extra)
        .arg("--")
        .arg(exe)
        .args(["6000", "3000"])
        .env_remove("LD_PRELOAD")
        .output()
        .expect("run asmalloc");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "served 6000 requests, kept 6000\n"
    );
    out
}

/// The exit report's rows (`id type place function net …`).
fn report_rows(stderr: &str) -> Vec<Vec<String>> {
    stderr
        .lines()
        .skip_while(|l| !l.contains("at exit ----"))
        .skip_while(|l| !l.trim_start().starts_with("id "))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The source line of `needle` in the C file (1-based).
fn line_of(needle: &str) -> usize {
    std::fs::read_to_string(source())
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

#[test]
fn an_uninstrumented_program_gets_named_caller_sites() {
    let dir = fresh_dir("callers");
    let exe = Cc::new()
        .args(["-O1", "-g", "-fno-builtin", "-pthread"])
        .arg(source())
        .build(&dir.join("uninstrumented"));
    let out = run(&exe, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The verdict names the leaking function at its line.
    let leak_line = format!(
        "uninstrumented.c:{} remember",
        line_of("void remember(long i)")
    );
    let verdict = stderr
        .lines()
        .find(|l| l.contains("LEAK at exit") || l.contains("possible progressive leak"))
        .unwrap_or_else(|| panic!("no verdict:\n{stderr}"));
    assert!(verdict.contains(&leak_line), "{verdict}");
    // Every allocating function is a site of its own, at its line; what the
    // worker thread freed is charged back to them (net 0), never negative.
    let rows = report_rows(&stderr);
    for (function, needle) in [
        ("make_buffer", "*make_buffer(size_t n)"),
        ("make_table", "*make_table(size_t n)"),
        ("copy_name", "*copy_name(const char *s)"),
        ("grow", "*grow(char *p, size_t n)"),
        ("remember", "void remember(long i)"),
    ] {
        let row = rows
            .iter()
            .find(|r| r.get(3).map(String::as_str) == Some(function))
            .unwrap_or_else(|| panic!("no site for {function}:\n{stderr}"));
        assert!(
            row[2].ends_with(&format!("uninstrumented.c:{}", line_of(needle))),
            "{function}: {row:?}"
        );
        let net_count: i64 = row[row.len() - 1].parse().unwrap();
        if function == "remember" {
            assert_eq!(net_count, 6000, "{row:?}");
        } else {
            assert_eq!(net_count, 0, "{function} freed on the worker: {row:?}");
        }
    }
    let ids: std::collections::BTreeSet<&String> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(ids.len(), rows.len(), "distinct sites: {rows:?}");

    // --no-callers: back to site 0 for everything.
    let out = run(&exe, &["--no-callers"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rows = report_rows(&stderr);
    assert!(
        rows.iter().all(|r| r[0] == "0"),
        "only site 0 without callers: {rows:?}"
    );
}

#[test]
fn a_stripped_program_is_named_by_module_and_offset() {
    let dir = fresh_dir("callers-stripped");
    let exe = Cc::new()
        .args(["-O1", "-g", "-fno-builtin", "-pthread"])
        .arg(source())
        .build(&dir.join("uninstrumented"));
    let stripped = dir.join("stripped-server");
    std::fs::copy(&exe, &stripped).unwrap();
    let status = Command::new("strip")
        .arg(&stripped)
        .status()
        .expect("run strip (Debian package binutils)");
    assert!(status.success());
    let out = run(&stripped, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let verdict = stderr
        .lines()
        .find(|l| l.contains("LEAK at exit") || l.contains("possible progressive leak"))
        .unwrap_or_else(|| panic!("no verdict:\n{stderr}"));
    let named = verdict
        .split_whitespace()
        .find(|w| w.starts_with("stripped-server+0x"))
        .unwrap_or_else(|| panic!("no module+offset in: {verdict}"));
    let offset = named.trim_start_matches("stripped-server+");
    let a2l = Command::new("addr2line")
        .args(["-f", "-e"])
        .arg(&exe)
        .arg(offset)
        .output()
        .expect("run addr2line (Debian package binutils)");
    let text = String::from_utf8_lossy(&a2l.stdout);
    assert_eq!(text.lines().next(), Some("remember"), "{text}");
}
