//! The exit report of a program that freed everything says something
//! (tests/c/exit_report.c, under both libraries): its top rows are the
//! program's three allocation sites, ordered by bytes allocated in all
//! (net bytes being 0 for all), each with exactly the calls and total
//! bytes the program counted itself, and — with the leak monitor sampling
//! every 50 ms while the program holds its peak for 300 ms — the peak net
//! bytes the program held. The monitor's log says the same per site
//! (`allocs`, `alloc_bytes`, `peak_bytes`), and so does the JSON exit
//! report. Without the monitor the report has no peak column.

use std::collections::BTreeMap;

#[macro_use]
mod common;

use common::*;

/// (calls, total bytes, peak bytes) per function, as the program counted.
fn expected(stdout: &str) -> BTreeMap<String, (u64, u64, i64)> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("site "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let num = |s: &str| s.split('=').nth(1).unwrap().to_string();
            (
                w[0].to_string(),
                (
                    num(w[1]).parse().unwrap(),
                    num(w[2]).parse().unwrap(),
                    num(w[3]).parse().unwrap(),
                ),
            )
        })
        .collect()
}

/// The exit report's top-sites table: its header's words and its rows,
/// each split into words.
fn exit_table(stderr: &str) -> (String, Vec<Vec<String>>) {
    let mut lines = stderr
        .lines()
        .skip_while(|l| !l.contains("at exit ----"))
        .skip_while(|l| !l.trim_start().starts_with("id "));
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no exit report table:\n{stderr}"))
        .to_string();
    let rows = lines
        .take_while(|l| l.starts_with("    "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// What a row says after its function: (calls, total bytes, then the rest).
fn after_function<'a>(row: &'a [String], function: &str) -> &'a [String] {
    let at = row
        .iter()
        .position(|w| w == function)
        .unwrap_or_else(|| panic!("{function} in {row:?}"));
    &row[at + 1..]
}

fn the_exit_report_of_a_program_that_freed_everything_names_its_sites(lib: Lib) {
    let exe = compile_linked(lib, "exit_report", &[]);
    let log = scratch().join(format!("exit-report-{}.jsonl", lib.name()));
    let _ = std::fs::remove_file(&log);
    let r = run_with(
        &exe,
        lib,
        &["300"],
        &[
            ("ASMALLOC_LOG", log.display().to_string()),
            ("ASMALLOC_SAMPLE_INTERVAL", "50ms".into()),
        ],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let want = expected(&r.stdout);
    assert_eq!(want.len(), 3, "{}", r.stdout);
    // What the program knows: the buffers allocated most in all, then the
    // names, then the nodes; each peak is less than its total (churn).
    let mut by_total: Vec<(&String, &(u64, u64, i64))> = want.iter().collect();
    by_total.sort_by_key(|e| std::cmp::Reverse(e.1.1));
    let order: Vec<&str> = by_total.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(order, ["make_buffer", "make_name", "make_node"]);

    let (header, rows) = exit_table(&r.stderr);
    let columns: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        columns,
        [
            "id",
            "type",
            "file:line",
            "function",
            "calls",
            "total bytes",
            "peak bytes",
            "net",
            "net bytes",
            "net count"
        ],
        "{header}"
    );
    assert!(rows.len() >= 3, "{}", r.stderr);
    for (row, &(function, &(calls, total, peak))) in rows.iter().zip(&by_total) {
        assert!(
            row.iter().any(|w| w.contains("exit_report.c:")),
            "top rows are the program's sites, in order: {row:?}\n{}",
            r.stderr
        );
        let rest = after_function(row, function);
        assert_eq!(rest[0], calls.to_string(), "calls of {function}: {row:?}");
        assert_eq!(rest[1], total.to_string(), "total of {function}: {row:?}");
        // The peak held for 300 ms under 50 ms samples: seen exactly (no
        // moment of the run held more).
        assert_eq!(rest[2], peak.to_string(), "peak of {function}: {row:?}");
        assert_eq!(rest[rest.len() - 2..], ["0", "0"], "all freed: {row:?}");
    }

    // The log: each site's last entry has the same calls, total and peak.
    let mut last: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for line in json_lines(&log) {
        for s in line["sites"].as_array().unwrap() {
            last.insert(s["function"].as_str().unwrap().to_string(), s.clone());
        }
    }
    for (function, &(calls, total, peak)) in &want {
        let s = &last[function];
        assert_eq!(s["allocs"].as_u64(), Some(calls), "{s}");
        assert_eq!(s["alloc_bytes"].as_u64(), Some(total), "{s}");
        assert_eq!(s["peak_bytes"].as_i64(), Some(peak), "{s}");
        assert_eq!(s["net_bytes"].as_i64(), Some(0), "{s}");
    }

    // Without the monitor nobody sampled: no peak column, the same calls
    // and totals.
    let r = run_with(&exe, lib, &["0"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let (header, rows) = exit_table(&r.stderr);
    assert!(!header.contains("peak"), "{header}");
    let row = &rows[0];
    let rest = after_function(row, "make_buffer");
    let (calls, total, _) = want["make_buffer"];
    assert_eq!(
        (rest[0].as_str(), rest[1].as_str()),
        (calls.to_string().as_str(), total.to_string().as_str()),
        "{row:?}"
    );
}

/// The JSON report says the same: every site's `allocs`, `alloc_bytes`
/// and, with the monitor on, `peak_bytes`.
fn the_json_exit_report_has_totals_and_peaks(lib: Lib) {
    let exe = compile_linked(lib, "exit_report", &[]);
    let out = scratch().join(format!("exit-report-{}.json", lib.name()));
    let _ = std::fs::remove_file(&out);
    let r = run_with(
        &exe,
        lib,
        &["300"],
        &[
            ("ASMALLOC_SAMPLE_INTERVAL", "50ms".into()),
            ("ASMALLOC_REPORT_FORMAT", "json".into()),
            ("ASMALLOC_OUTPUT", out.display().to_string()),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let want = expected(&r.stdout);
    let report = json_lines(&out).pop().unwrap();
    for (function, &(calls, total, peak)) in &want {
        let s = report["sites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["function"] == function.as_str())
            .unwrap_or_else(|| panic!("{function} in {report}"));
        assert_eq!(s["allocs"].as_u64(), Some(calls), "{s}");
        assert_eq!(s["alloc_bytes"].as_u64(), Some(total), "{s}");
        assert_eq!(s["peak_bytes"].as_i64(), Some(peak), "{s}");
        assert_eq!(s["net_bytes"].as_i64(), Some(0), "{s}");
    }
}

under_both!(
    the_exit_report_of_a_program_that_freed_everything_names_its_sites,
    the_json_exit_report_has_totals_and_peaks
);
