//! `asmalloc run` and `asmalloc report` end to end, on a C server built with
//! the force-included call-site header and a generated site table:
//!
//! * the table names every allocation's `file:line function`, including
//!   frees on other threads, and the binary behaves the same without the
//!   preload (the generator's end-to-end test);
//! * the one leaking site — and only it — is reported while the program
//!   runs, within the expected time;
//! * a temporary rise is reported and then "never mind", with no leak left
//!   at exit;
//! * `report` prints the table and the verdicts, and draws a well-formed SVG
//!   with one series per site; a bad log line is named and skipped;
//! * `run` forwards exit statuses and signals as a shell would, and says
//!   clearly when the program or the library is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use asmalloc_test_support::{Cc, Lib, scratch};

const ASMALLOC: &str = env!("CARGO_BIN_EXE_asmalloc");

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds libasmalloc.so (a no-op when fresh) in this test's profile
/// directory: next to the `asmalloc` binary (`target/<profile>`), where
/// `asmalloc run` looks for it.
fn build_preload() {
    let so = Lib::Glibc.path();
    assert_eq!(so.parent(), Path::new(ASMALLOC).parent());
}

/// Generates the table for tests/c and builds the server with
/// `-include asmalloc_sites.h`.
fn server() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let src = manifest().join("tests/c");
        let gen_dir = scratch().join("gen");
        asmalloc_gen::Builder::new()
            .scan(&src)
            .lang(asmalloc_gen::Lang::C)
            .cargo_metadata(false)
            .try_write_c(&gen_dir)
            .expect("generate the table");
        asmalloc_gen::write_sites_header(&gen_dir).expect("write asmalloc_sites.h");
        Cc::new()
            .args([
                "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread", "-include",
            ])
            .arg(gen_dir.join("asmalloc_sites.h"))
            .arg("-I")
            .arg(&gen_dir)
            .arg("-I")
            .arg(&src)
            .arg(src.join("server.c"))
            .arg(src.join("cache.c"))
            .arg(gen_dir.join("mallocations.c"))
            .build(&scratch().join("server"))
    })
}

/// The 1-based line of the first line of tests/c/FILE containing `needle`.
fn line_of(file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(manifest().join("tests/c").join(file)).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

fn asmalloc(args: &[&str]) -> Output {
    Command::new(ASMALLOC).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The report row (text) of the exit report for `place` (`file:line`).
fn row<'a>(stderr: &'a str, place: &str) -> Option<&'a str> {
    stderr
        .lines()
        .rev()
        .find(|l| l.contains(&format!("{place} ")))
}

fn cols(row: &str) -> Vec<&str> {
    row.split_whitespace().collect()
}

#[test]
fn the_generated_table_names_every_call_site_under_the_preload() {
    build_preload();
    let exe = server();
    let lib = Path::new(ASMALLOC).with_file_name("libasmalloc.so");
    let plain = Command::new(exe).arg("quick").output().unwrap();
    let traced = Command::new(exe)
        .arg("quick")
        .env("LD_PRELOAD", &lib)
        .env("ASMALLOC_TOP_SITES", "20")
        .output()
        .unwrap();
    assert!(plain.status.success() && traced.status.success());
    assert_eq!(
        text(&plain.stdout),
        text(&traced.stdout),
        "same output with and without"
    );
    assert_eq!(
        text(&plain.stdout),
        "handled 3000 requests, 2001 messages, 3000 cached\n"
    );
    let err = text(&traced.stderr);
    assert!(!err.contains("stale"), "the table is current:\n{err}");
    // The leak: 3000 entries and 3000 data blocks in cache_put.
    let entry = row(
        &err,
        &format!("cache.c:{}", line_of("cache.c", "malloc(sizeof *e)")),
    )
    .unwrap_or_else(|| panic!("entry row in:\n{err}"));
    assert!(
        entry.contains("cache_put") && entry.contains("MALLOC"),
        "{entry}"
    );
    assert_eq!(cols(entry).last(), Some(&"3000"), "{entry}");
    let data = row(
        &err,
        &format!("cache.c:{}", line_of("cache.c", "malloc(len)")),
    )
    .unwrap_or_else(|| panic!("data row in:\n{err}"));
    assert_eq!(cols(data).last(), Some(&"3000"), "{data}");
    assert!(
        cols(data)[cols(data).len() - 2].parse::<i64>().unwrap() >= 3000 * 1024,
        "{data}"
    );
    // Messages are allocated by the producer and freed by the consumer
    // thread: charged back to msg_new, nothing left.
    let msg = row(
        &err,
        &format!("server.c:{}", line_of("server.c", "malloc(sizeof *m)")),
    )
    .unwrap_or_else(|| panic!("msg_new row in:\n{err}"));
    assert!(msg.contains("msg_new"), "{msg}");
    assert_eq!(cols(msg)[cols(msg).len() - 2..], ["0", "0"], "{msg}");
    // Two calls on one line, one inside the other's argument: each is
    // charged to its own site (the inner strdup cannot use up the malloc's).
    let place = format!(
        "server.c:{} ",
        line_of("server.c", "malloc(consume_len(strdup(name)))")
    );
    for ty in ["MALLOC", "STRDUP"] {
        let r = err
            .lines()
            .find(|l| l.contains(&place) && l.contains(&format!(" {ty} ")))
            .unwrap_or_else(|| panic!("no {ty} row at {place} in:\n{err}"));
        assert!(r.contains("handle"), "{r}");
        assert_eq!(cols(r)[cols(r).len() - 2..], ["0", "0"], "{r}");
    }
    // Request buffers (malloc, calloc, strdup) in handle: all freed.
    for (needle, ty) in [
        ("malloc(4096)", "MALLOC"),
        ("calloc(32", "CALLOC"),
        ("strdup(", "STRDUP"),
    ] {
        let r = row(&err, &format!("server.c:{}", line_of("server.c", needle)))
            .unwrap_or_else(|| panic!("{needle} row in:\n{err}"));
        assert!(r.contains("handle") && r.contains(ty), "{r}");
        assert_eq!(cols(r)[cols(r).len() - 2..], ["0", "0"], "{r}");
    }
}

fn run_server(mode: &str, secs: &str, log: &Path) -> Output {
    build_preload();
    let exe = server();
    asmalloc(&[
        "run",
        "--interval",
        "100ms",
        "--window",
        "1500ms",
        "--threshold",
        "256K",
        "--log",
        log.to_str().unwrap(),
        "--",
        exe.to_str().unwrap(),
        mode,
        secs,
    ])
}

#[test]
fn only_the_leaking_site_is_reported_in_time_and_report_reads_the_log() {
    let log = scratch().join("leak.jsonl");
    let out = run_server("leak", "3", &log);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let leak_line = line_of("cache.c", "malloc(len)");
    let verdicts: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("possible progressive leak") || l.contains("still growing"))
        .collect();
    assert!(!verdicts.is_empty(), "no verdict:\n{err}");
    for v in &verdicts {
        assert!(
            v.contains("cache.c:") && v.contains("cache_put"),
            "only the cache leaks, but: {v}\n{err}"
        );
    }
    assert!(
        verdicts
            .iter()
            .any(|v| v.contains(&format!("cache.c:{leak_line} cache_put"))),
        "the data block site is named:\n{err}"
    );
    assert!(!err.contains("server.c:") || !verdicts.iter().any(|v| v.contains("server.c")));
    assert!(err.contains("LEAK at exit"), "{err}");

    // Within the expected number of samples (not seconds: a loaded machine
    // delays samples): a 1.5 s window at 100 ms (15 samples), its quarter to
    // confirm (4), and slack.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = lines
        .iter()
        .find(|l| !l["verdicts"].as_array().unwrap().is_empty())
        .expect("a verdict in the log");
    let seq = first["seq"].as_u64().unwrap();
    assert!(seq <= 26, "first verdict at sample {seq}");
    assert_eq!(first["verdicts"][0]["kind"], "possible_leak");
    assert_eq!(first["verdicts"][0]["file"], "cache.c");

    // asmalloc report: the table, the verdicts, the plot.
    let svg = scratch().join("leak.svg");
    let out = asmalloc(&[
        "report",
        log.to_str().unwrap(),
        "--top",
        "5",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let table: Vec<&str> = report
        .lines()
        .skip_while(|l| !l.starts_with("top "))
        .skip(2)
        .take_while(|l| !l.starts_with("verdicts"))
        .collect();
    assert_eq!(table.len(), 5, "{report}");
    assert!(
        table[0].contains(&format!("cache.c:{leak_line} cache_put"))
            && (table[0].contains("possible leak") || table[0].contains("still growing")),
        "{report}"
    );
    assert!(!table[2..].iter().any(|r| r.contains("leak")), "{report}");
    assert!(
        report.contains("still leaking at the end: site"),
        "{report}"
    );
    let check = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as E\n\
             r = E.parse(sys.argv[1]).getroot()\n\
             ns = '{http://www.w3.org/2000/svg}'\n\
             p = r.findall(ns + 'polyline')\n\
             print(len(p), sum('leak' in x.get('class') for x in p))",
        )
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "SVG is not well-formed XML: {}",
        text(&check.stderr)
    );
    assert_eq!(
        text(&check.stdout).trim(),
        "5 1",
        "one series per plotted site, the leaking one highlighted"
    );

    // A bad line is named and skipped; the rest is still read.
    let bad = scratch().join("bad.jsonl");
    let mut content = std::fs::read_to_string(&log).unwrap();
    content.insert_str(
        0,
        "{\"v\":1,\"pid\":1,\"time_ns\":0,\"sites\":[],\"verdicts\":[]}\nnot json at all\n",
    );
    std::fs::write(&bad, content).unwrap();
    let out = asmalloc(&["report", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("bad.jsonl:2: not JSON"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("cache.c:"), "the rest is read");
}

#[test]
fn a_temporary_rise_is_reported_then_never_minded() {
    let log = scratch().join("rise.jsonl");
    let out = run_server("rise", "4", &log);
    assert!(out.status.success());
    let err = text(&out.stderr);
    let leak = err
        .find("possible progressive leak")
        .unwrap_or_else(|| panic!("{err}"));
    let never = err.find("never mind").unwrap_or_else(|| panic!("{err}"));
    assert!(leak < never, "{err}");
    assert!(err.contains("no progressive leak at exit"), "{err}");
    assert!(!err.contains("LEAK at exit"), "{err}");
}

#[test]
fn exit_statuses_and_signals_are_forwarded() {
    build_preload();
    let sh = |script: &str| asmalloc(&["run", "--", "sh", "-c", script]);
    assert_eq!(sh("exit 7").status.code(), Some(7));
    assert_eq!(sh("exit 0").status.code(), Some(0));
    let term = sh("kill -TERM $$");
    assert_eq!(term.status.code(), Some(128 + 15));
    assert!(text(&term.stderr).contains("killed by signal 15"));
    assert_eq!(sh("kill -KILL $$").status.code(), Some(128 + 9));

    // A log path with %p (the program's pid, as the runtime expands it) is
    // found for the summary.
    let pattern = scratch().join("run.%p.jsonl");
    let out = asmalloc(&[
        "run",
        "--interval",
        "100ms",
        "--log",
        pattern.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "sleep 0.3",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("asmalloc: summary: "),
        "{}",
        text(&out.stderr)
    );

    let missing = asmalloc(&["run", "--", "/no/such/program"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(text(&missing.stderr).contains("asmalloc: cannot run /no/such/program"));
    let nolib = asmalloc(&["run", "--lib", "/no/such/libasmalloc.so", "--", "true"]);
    assert_eq!(nolib.status.code(), Some(127));
    assert!(
        text(&nolib.stderr)
            .contains("cannot find libasmalloc.so (looked at: /no/such/libasmalloc.so)"),
        "{}",
        text(&nolib.stderr)
    );
}
