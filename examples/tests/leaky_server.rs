//! The bundled leaky server's report names its leaking function, at the
//! line where that function is defined, at the top of the site list.

use std::process::Command;

/// The 1-based line of the first line in the example's source containing `needle`.
fn source_line(needle: &str) -> usize {
    let src = include_str!("../src/bin/leaky_server.rs");
    src.lines()
        .position(|l| l.contains(needle))
        .expect("needle in source")
        + 1
}

#[test]
fn report_names_the_leaking_site_first() {
    let out = Command::new(env!("CARGO_BIN_EXE_leaky_server"))
        .args(["3000", "3"])
        .output()
        .expect("run leaky_server");
    assert!(out.status.success(), "exit status {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("served 3000 requests with 3 workers"),
        "{stderr}"
    );
    let rows: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.contains("sites by net bytes"))
        .skip(2)
        .collect();
    let top = rows
        .first()
        .unwrap_or_else(|| panic!("no site rows in:\n{stderr}"));
    let line = source_line("fn remember(");
    assert!(
        top.contains("SessionCache::remember")
            && top.contains(&format!("examples/src/bin/leaky_server.rs:{line} "))
            && top.contains(" cache "),
        "top row should be the leak at line {line}:\n{stderr}"
    );
    // ~1 KiB kept per request (the cache's own table adds one block).
    let cols: Vec<&str> = top.split_whitespace().collect();
    let net_count: i64 = cols[cols.len() - 1].parse().unwrap();
    let net_bytes: i64 = cols[cols.len() - 2].parse().unwrap();
    assert!((3000..=3010).contains(&net_count), "{top}");
    assert!(net_bytes >= 3000 * 1024, "{top}");
    // The per-request sites freed everything they allocated.
    for name in ["parse_request", "render_response", "access_log"] {
        let row = rows
            .iter()
            .find(|r| r.contains(name))
            .unwrap_or_else(|| panic!("{name} in:\n{stderr}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[cols.len() - 1], "0", "{name} keeps nothing: {row}");
    }
}
