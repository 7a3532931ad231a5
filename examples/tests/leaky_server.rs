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
            && top.contains(&format!("src/bin/leaky_server.rs:{line} "))
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

#[test]
fn a_bad_setting_is_named_and_the_program_runs_on() {
    let out = Command::new(env!("CARGO_BIN_EXE_leaky_server"))
        .args(["500", "2"])
        .env("ASMALLOC_FEATURES", "DATESTAMP|BOGUS")
        .env("ASMALLOC_DELTA_THRESHOLD", "12 parsecs")
        .output()
        .expect("run leaky_server");
    assert!(out.status.success(), "exit status {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("asmalloc: ASMALLOC_FEATURES=DATESTAMP|BOGUS: unknown feature 'BOGUS'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("asmalloc: ASMALLOC_DELTA_THRESHOLD=12 parsecs: bad size '12 parsecs'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("expected bytes with optional K/M/G suffix"),
        "{stderr}"
    );
    // The defaults stayed in force and the report still names the leak.
    assert!(
        stderr.contains("threads:"),
        "default features kept:\n{stderr}"
    );
    assert!(stderr.contains("SessionCache::remember"), "{stderr}");
}

#[test]
fn every_feature_adds_its_section() {
    let out = Command::new(env!("CARGO_BIN_EXE_leaky_server"))
        .args(["200", "2"])
        .env("ASMALLOC_FEATURES", "all")
        .output()
        .expect("run leaky_server");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for section in [
        " UTC",                                       // DATESTAMP
        "threads: 1 live",                            // THREAD_STATS (the workers have exited)
        "operations (calls, bytes):",                 // MEM_COUNT_STATS
        "mallinfo: arena",                            // MALLINFO
        "<malloc version=",                           // MALLOC_INFO
        "malloc_stats: (printed by glibc to stderr)", // MALLOC_STATS
        "Total (incl. mmap):",                        // glibc's own malloc_stats output
        "VmHWM",                                      // VM_STATS
    ] {
        assert!(
            stderr.contains(section),
            "missing {section:?} in:\n{stderr}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_leaky_server"))
        .args(["200", "2"])
        .env("ASMALLOC_FEATURES", "none")
        .output()
        .expect("run leaky_server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("threads:") && !stderr.contains("VmHWM"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SessionCache::remember"),
        "sites are always listed:\n{stderr}"
    );
}

#[test]
fn the_monitor_names_the_leak_while_the_server_runs() {
    // 6000 requests at 2000/s: ~3 s of load, ~2 MB/s kept by the cache.
    let out = Command::new(env!("CARGO_BIN_EXE_leaky_server"))
        .args(["6000", "2", "2000"])
        .env("ASMALLOC_SAMPLE_INTERVAL", "100ms")
        .env("ASMALLOC_LEAK_WINDOW", "1s")
        .env("ASMALLOC_LEAK_THRESHOLD", "256K")
        .output()
        .expect("run leaky_server");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = source_line("fn remember(");
    let verdicts: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.starts_with("asmalloc: possible progressive leak")
                || l.starts_with("asmalloc: still growing")
        })
        .collect();
    assert!(!verdicts.is_empty(), "no verdict while running:\n{stderr}");
    assert!(
        verdicts[0].contains(&format!(
            "(cache) src/bin/leaky_server.rs:{line} SessionCache::remember grew by"
        )),
        "{stderr}"
    );
    assert!(
        verdicts
            .iter()
            .all(|v| v.contains("SessionCache::remember")),
        "only the leak is reported:\n{stderr}"
    );
    // The verdict came while the server was still serving.
    let served = stderr.find("leaky_server: served").unwrap();
    assert!(
        stderr.find("possible progressive leak").unwrap() < served,
        "{stderr}"
    );
}
