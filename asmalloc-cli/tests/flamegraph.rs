//! Sampled stacks through the log: the C server of `tests/stacks.rs`
//! (`tests/c/stacks.c`: ~76 MiB kept through main → serve → handle →
//! keep_node, ~190 MiB more allocated and freed at once) under `asmalloc
//! run --stacks --log`. `asmalloc report LOG` lists the kept path with an
//! estimate within 10% of its site's exact bytes; `--flamegraph` draws a
//! well-formed SVG whose widest leaf is keep_node; a log without stacks (a
//! run without `--stacks`, an old log) gets a clear error and exit 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use asmalloc::log_format::LogLine;
use asmalloc_test_support::{Cc, Lib, fresh_dir};
use quick_xml::Reader;
use quick_xml::events::Event;

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/stacks.c")
}

/// `asmalloc run [--stacks] --log LOG -- stacks 20000`.
fn run(exe: &Path, log: &Path, stacks: bool) {
    Lib::Glibc.path();
    let _ = std::fs::remove_file(log);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_asmalloc"));
    cmd.arg("run").env_remove("ASMALLOC_SAMPLE_BYTES");
    if stacks {
        // One sample per 32 KiB: ~2,400 samples of the kept path (the
        // estimate's standard error is about 2%).
        cmd.arg("--stacks").env("ASMALLOC_SAMPLE_BYTES", "32K");
    }
    let out = cmd
        .arg("--log")
        .arg(log)
        .arg("--")
        .arg(exe)
        .arg("20000")
        .env_remove("LD_PRELOAD")
        .output()
        .expect("run asmalloc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "served 20000 requests, kept 20000 (40000)\n"
    );
}

fn report(log: &Path, extra: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_asmalloc"));
    cmd.arg("report").arg(log);
    if let Some(svg) = extra.first() {
        cmd.arg("--flamegraph").arg(svg);
    }
    cmd.output().expect("run asmalloc report")
}

/// The keep_node site's exact net bytes, from the log's last entry for it.
fn exact_bytes(log: &Path, function: &str) -> i64 {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|l| LogLine::parse(l).ok())
        .flat_map(|l| l.sites)
        .rfind(|s| s.name.function == function)
        .unwrap_or_else(|| panic!("no site {function} in the log"))
        .net_bytes
}

/// `80.3 MiB`, `4.0 KiB`, `0 B` → bytes.
fn parse_bytes(number: &str, unit: &str) -> f64 {
    let n: f64 = number.trim_start_matches('~').parse().unwrap();
    n * match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other}"),
    }
}

/// The report's sampled stacks: (estimated live bytes, function names).
fn report_stacks(text: &str) -> Vec<(f64, Vec<String>)> {
    let mut out: Vec<(f64, Vec<String>)> = Vec::new();
    for line in text
        .lines()
        .skip_while(|l| !l.starts_with("sampled stacks ("))
        .skip(1)
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("  stack ") {
            // stack ID  site SITE  ~N UNIT live in …
            out.push((parse_bytes(words[4], words[5]), Vec::new()));
        } else if line.starts_with("      ") && !out.is_empty() {
            out.last_mut().unwrap().1.push(words[0].to_string());
        } else {
            break;
        }
    }
    out
}

/// Every frame of a flame graph: (its name, its share in percent), from the
/// `<title>NAME (N bytes, P%)</title>` of each `<g>`; the XML is read
/// through, so a malformed file fails.
fn svg_frames(svg: &str) -> Vec<(String, f64)> {
    let mut reader = Reader::from_str(svg);
    reader.config_mut().check_end_names = true;
    let (mut frames, mut in_title, mut title) = (Vec::new(), false, String::new());
    let mut depth = 0i32;
    loop {
        match reader
            .read_event()
            .expect("the flame graph is well-formed XML")
        {
            Event::Start(e) => {
                depth += 1;
                in_title = e.name().as_ref() == b"title";
                title.clear();
            }
            Event::Text(t) if in_title => title.push_str(&t.decode().unwrap()),
            Event::End(e) => {
                depth -= 1;
                if e.name().as_ref() == b"title" {
                    in_title = false;
                    // NAME (81,985,536 bytes, 99.96%)
                    if let Some((name, rest)) = title.rsplit_once(" (")
                        && let Some(pct) = rest.strip_suffix("%)")
                        && let Some((_, pct)) = pct.rsplit_once(", ")
                    {
                        frames.push((name.to_string(), pct.parse().unwrap()));
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced elements");
    frames
}

#[test]
fn the_log_carries_the_stacks_to_the_report_and_the_flame_graph() {
    let dir = fresh_dir("flamegraph");
    let exe = Cc::new()
        .args(["-O2", "-g", "-fno-builtin"])
        .arg(source())
        .build(&dir.join("stacks"));
    let log = dir.join("stacks.jsonl");
    run(&exe, &log, true);

    // The text report: the kept path, innermost first, and its estimate.
    let out = report(&log, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let stacks = report_stacks(&text);
    assert!(!stacks.is_empty(), "no sampled stacks:\n{text}");
    let (live, functions) = &stacks[0];
    assert_eq!(
        functions[..4],
        ["keep_node", "handle", "serve", "main"],
        "{text}"
    );
    let exact = exact_bytes(&log, "keep_node");
    assert!(exact > 70 << 20, "{exact}");
    let error = (live - exact as f64).abs() / exact as f64;
    assert!(
        error < 0.10,
        "estimate {live} vs exact {exact} ({:.1}% off):\n{text}",
        error * 100.0
    );
    // Freed paths (scratch) have no live bytes: not listed.
    assert!(stacks.iter().all(|(_, f)| f[0] != "scratch"), "{text}");

    // The flame graph.
    let svg_path = dir.join("live.svg");
    let _ = std::fs::remove_file(&svg_path);
    let out = report(&log, &[&svg_path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(&svg_path).expect("the flame graph was written");
    assert!(svg.starts_with("<?xml"), "{}", &svg[..svg.len().min(200)]);
    let frames = svg_frames(&svg);
    let keep: Vec<&(String, f64)> = frames
        .iter()
        .filter(|(name, _)| name.starts_with("keep_node ("))
        .collect();
    assert_eq!(keep.len(), 1, "{frames:?}");
    let (keep_name, keep_share) = keep[0];
    assert!(keep_name.contains("stacks.c:"), "{keep_name}");
    assert!(*keep_share > 90.0, "{frames:?}");
    // It is the widest leaf: every other live path's innermost frame (the
    // program's stdout buffer, when a sample hit it) is narrower.
    let leaves: Vec<&String> = stacks.iter().map(|(_, f)| &f[0]).collect();
    for leaf in leaves.iter().filter(|l| l.as_str() != "keep_node") {
        for (name, share) in frames
            .iter()
            .filter(|(name, _)| name == *leaf || name.starts_with(&format!("{leaf} (")))
        {
            assert!(
                share < keep_share,
                "{name} {share}% >= keep_node {keep_share}%"
            );
        }
    }

    // The HTML report carries both: the stacks' text and the flame graph,
    // inline.
    let html_path = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_asmalloc"))
        .arg("report")
        .arg(&log)
        .arg("--html")
        .arg(&html_path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    let pre = html
        .split("<pre id=\"stacks\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("no stacks section in the HTML report"));
    let first_frame = pre
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("stack "))
        .nth(1)
        .unwrap_or("");
    assert!(first_frame.trim_start().starts_with("keep_node ("), "{pre}");
    let inline = html
        .split("<div id=\"flamegraph\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no flame graph in the HTML report"));
    assert!(
        inline.starts_with("<svg"),
        "{}",
        &inline[..inline.len().min(100)]
    );
    assert!(!html.contains("<?xml"), "an XML declaration inside HTML");
    assert_eq!(
        svg_frames(inline.split("</div>").next().unwrap()).len(),
        frames.len()
    );
}

#[test]
fn a_log_without_stacks_gets_a_clear_error() {
    let dir = fresh_dir("flamegraph-none");
    let exe = Cc::new()
        .args(["-O2", "-g", "-fno-builtin"])
        .arg(source())
        .build(&dir.join("stacks"));
    let log = dir.join("plain.jsonl");
    run(&exe, &log, false);
    // An old log too: the documented line of schema 1, before stacks.
    let old = dir.join("old.jsonl");
    std::fs::write(
        &old,
        r#"{"v":1,"pid":4242,"seq":0,"time_ns":1796104131622949816,"net_bytes":1048576,"net_count":12,"sites":[{"id":7,"type":"cache","file":"src/cache.c","line":30,"function":"cache_put","net_bytes":1040000,"net_count":10}]}
"#,
    )
    .unwrap();
    for log in [&log, &old] {
        let svg = dir.join("none.svg");
        let _ = std::fs::remove_file(&svg);
        let out = report(log, &[&svg]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(
            stderr.contains("no sampled stacks") && stderr.contains("asmalloc run --stacks"),
            "{stderr}"
        );
        assert!(!svg.exists());
        // The rest of the report is still there, without a stacks section.
        assert!(stdout.contains("top "), "{stdout}");
        assert!(!stdout.contains("sampled stacks"), "{stdout}");
    }
}
