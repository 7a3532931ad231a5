//! `asmalloc report`'s per-site columns: calls, total bytes allocated, peak
//! net bytes (the most the log's samples saw), final net bytes and blocks,
//! ordered by final net bytes, then by total.
//!
//! * A program that frees everything before it exits (the preload's
//!   tests/c/exit_report.c, which counts its own calls, totals and peaks)
//!   run under libasmalloc.so with the monitor logging every 50 ms: the
//!   table's top rows are its three sites in the order of their totals,
//!   each with its exact calls, its total and its peak, and 0 final bytes.
//! * A hand-written log in the old format (no `allocs`, `alloc_bytes` or
//!   `peak_bytes`): calls and totals are `-`, the peak is the highest net
//!   bytes among the samples.

use std::path::{Path, PathBuf};
use std::process::Command;

use asmalloc::report::human_bytes;
use asmalloc_test_support::{Cc, Lib, fresh_dir, workspace_root};

const ASMALLOC: &str = env!("CARGO_BIN_EXE_asmalloc");

/// The table of `asmalloc report LOG`: header words (split on two spaces)
/// and rows split on two or more spaces (human sizes hold one space).
fn report_table(log: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let out = Command::new(ASMALLOC)
        .arg("report")
        .arg(log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cells = |l: &str| -> Vec<String> {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("id "));
    let header = cells(lines.next().unwrap_or_else(|| panic!("{stdout}")));
    let rows = lines
        .take_while(|l| l.starts_with("  "))
        .map(cells)
        .collect();
    (header, rows)
}

const COLUMNS: [&str; 8] = [
    "id", "type", "site", "calls", "total", "peak", "final", "blocks",
];

/// The row of the site whose `site` cell ends with `function`.
fn row_of<'a>(rows: &'a [Vec<String>], function: &str) -> &'a Vec<String> {
    rows.iter()
        .find(|r| r[2].ends_with(&format!(" {function}")))
        .unwrap_or_else(|| panic!("{function} in {rows:?}"))
}

#[test]
fn a_program_that_freed_everything_is_reported_by_calls_total_and_peak() {
    let lib = Lib::Glibc.path();
    let dir = fresh_dir("report-columns");
    let libdir = lib.parent().unwrap().display().to_string();
    let exe = Cc::new()
        .args(["-O1", "-g", "-fno-builtin", "-I"])
        .arg(workspace_root().join("include"))
        .arg(workspace_root().join("asmalloc/preload/tests/c/exit_report.c"))
        .arg(format!("-L{libdir}"))
        .arg(format!("-Wl,-rpath,{libdir}"))
        .arg(format!("-l:{}", Lib::Glibc.file()))
        .build(&dir.join("exit_report"));
    let log: PathBuf = dir.join("log.jsonl");
    let out = Command::new(&exe)
        .arg("300")
        .env("LD_PRELOAD", lib)
        .env("ASMALLOC_LOG", &log)
        .env("ASMALLOC_SAMPLE_INTERVAL", "50ms")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // site FUNCTION calls=N total=BYTES peak=BYTES, in the program's words.
    let mut want: Vec<(String, u64, i64, i64)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("site "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let num = |s: &str| -> i64 { s.split('=').nth(1).unwrap().parse().unwrap() };
            (w[0].to_string(), num(w[1]) as u64, num(w[2]), num(w[3]))
        })
        .collect();
    assert_eq!(want.len(), 3, "{stdout}");
    want.sort_by_key(|w| std::cmp::Reverse(w.2));

    let (header, rows) = report_table(&log);
    assert_eq!(header[..8], COLUMNS, "{header:?}");
    assert_eq!(header[8], "verdict");
    assert!(rows.len() >= 3, "{rows:?}");
    for (row, (function, calls, total, peak)) in rows.iter().zip(&want) {
        assert!(
            row[2].ends_with(&format!("exit_report.c:{} {function}", row_line(row))),
            "top rows by total: {row:?} for {function}"
        );
        assert_eq!(row[3], calls.to_string(), "{row:?}");
        assert_eq!(row[4], human_bytes(*total), "{row:?}");
        assert_eq!(row[5], human_bytes(*peak), "{row:?}");
        assert_eq!(row[6..8], ["0 B", "0"], "freed: {row:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The line number in a `file:line function` site cell.
fn row_line(row: &[String]) -> String {
    let place = row[2].split(' ').next().unwrap();
    place.rsplit(':').next().unwrap().to_string()
}

#[test]
fn an_old_log_shows_dashes_for_calls_and_totals_and_the_peak_of_its_samples() {
    let dir = fresh_dir("report-columns-old");
    let log = dir.join("old.jsonl");
    let site = |id: u16, function: &str, net: i64, count: i64| {
        format!(
            r#"{{"id":{id},"type":"","file":"a.c","line":{id},"function":"{function}","net_bytes":{net},"net_count":{count}}}"#
        )
    };
    let line = |seq: i64, sites: &[String]| {
        format!(
            r#"{{"v":1,"pid":7,"seq":{seq},"time_ns":{},"net_bytes":0,"sites":[{}]}}"#,
            1_000_000_000 + seq * 100_000_000,
            sites.join(",")
        )
    };
    let text = [
        line(0, &[site(1, "small", 100, 1), site(2, "big", 5000, 5)]),
        line(1, &[site(1, "small", 3000, 3), site(2, "big", 9000, 9)]),
        line(2, &[site(1, "small", 700, 1), site(2, "big", 0, 0)]),
    ]
    .join("\n");
    std::fs::write(&log, text + "\n").unwrap();
    let (header, rows) = report_table(&log);
    assert_eq!(header[..8], COLUMNS, "{header:?}");
    // By final net bytes: small (700) before big (0).
    assert_eq!(rows[0][2], "a.c:1 small", "{rows:?}");
    assert_eq!(rows[1][2], "a.c:2 big", "{rows:?}");
    let small = row_of(&rows, "small");
    assert_eq!(
        small[3..8],
        ["-", "-", &human_bytes(3000), "700 B", "1"],
        "{small:?}"
    );
    let big = row_of(&rows, "big");
    assert_eq!(
        big[3..8],
        ["-", "-", &human_bytes(9000), "0 B", "0"],
        "{big:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sites_with_the_same_final_bytes_are_ordered_by_total() {
    let dir = fresh_dir("report-columns-total");
    let log = dir.join("new.jsonl");
    let site = |id: u16, allocs: u64, total: u64, peak: i64| {
        format!(
            r#"{{"id":{id},"file":"b.c","line":{id},"function":"f{id}","net_bytes":0,"net_count":0,"allocs":{allocs},"alloc_bytes":{total},"peak_bytes":{peak}}}"#
        )
    };
    // The monitor's logged peak counts even when no listed sample shows it
    // (a line over its site limit may have left the site out).
    let text = format!(
        r#"{{"v":1,"pid":7,"seq":0,"time_ns":5,"sites":[{},{},{}]}}"#,
        site(1, 10, 1000, 400),
        site(2, 30, 64000, 2048),
        site(3, 20, 8000, 0)
    );
    std::fs::write(&log, text + "\n").unwrap();
    let (_, rows) = report_table(&log);
    let order: Vec<&str> = rows.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(order, ["b.c:2 f2", "b.c:3 f3", "b.c:1 f1"]);
    assert_eq!(
        rows[0][3..8],
        ["30", &human_bytes(64000), &human_bytes(2048), "0 B", "0"]
    );
    assert_eq!(rows[1][3..6], ["20", &human_bytes(8000), "0 B"]);
    assert_eq!(rows[2][3..6], ["10", &human_bytes(1000), "400 B"]);
    let _ = std::fs::remove_dir_all(&dir);
}
