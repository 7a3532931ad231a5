//! `asmalloc report --svg/--html` on a log written here (a leaking site, a
//! site never minded, site 0, and a site first logged late):
//!
//! * the SVG's lines run from the start of the run to its end, its legend
//!   uses the table's words, its axes are in seconds and bytes;
//! * the HTML page is self-contained and works in a real browser: headless
//!   Chromium (Debian's `chromium`) loads it, its script draws the chart —
//!   the leaking site's series is in the document — shows the values at a
//!   time, and logs no error.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use asmalloc_test_support::fresh_dir;

const ASMALLOC: &str = env!("CARGO_BIN_EXE_asmalloc");
const S: i64 = 1_000_000_000;
const MIB: i64 = 1 << 20;
const T0: i64 = 1_800_000_000 * S;

fn site(id: u16, function: &str, bytes: i64) -> String {
    let (ty, file, line) = if id == 0 {
        ("", "", 0)
    } else {
        ("MALLOC", "server.c", 40 + u32::from(id))
    };
    format!(
        r#"{{"id":{id},"type":"{ty}","file":"{file}","line":{line},"function":"{function}","net_bytes":{bytes},"net_count":{}}}"#,
        bytes / 1024
    )
}

fn verdict(kind: &str, id: u16, function: &str, net: i64, growth: i64, over_s: i64) -> String {
    format!(
        r#"{{"kind":"{kind}","id":{id},"type":"MALLOC","file":"server.c","line":{},"function":"{function}","net_bytes":{net},"growth_bytes":{growth},"over_ns":{},"rate_bytes_per_s":{}}}"#,
        40 + u32::from(id),
        over_s * S,
        growth / over_s.max(1)
    )
}

/// 30 samples, one a second: site 7 leaks 2 MiB/s (named at 10 s), site 5
/// rises then falls back (named at 8 s, never minded at 14 s), site 0
/// holds 1 MiB, site 9 first appears at 20 s.
fn write_log(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for t in 0..30i64 {
        let mut sites = vec![site(7, "session_keep", 2 * MIB * t)];
        if t == 0 {
            sites.push(site(0, "", MIB));
        }
        if t <= 12 {
            sites.push(site(5, "batch_load", MIB * t));
        } else if t == 13 {
            sites.push(site(5, "batch_load", 0));
        }
        if t == 20 {
            sites.push(site(9, "late_start", 3 * MIB));
        }
        let verdicts = match t {
            8 => verdict("possible_leak", 5, "batch_load", 8 * MIB, 6 * MIB, 6),
            10 => verdict("possible_leak", 7, "session_keep", 20 * MIB, 12 * MIB, 6),
            14 => verdict("never_mind", 5, "batch_load", 0, -2 * MIB, 12),
            _ => String::new(),
        };
        text.push_str(&format!(
            r#"{{"v":1,"pid":4242,"seq":{t},"time_ns":{},"net_bytes":{},"sites":[{}],"verdicts":[{verdicts}]}}"#,
            T0 + t * S,
            2 * MIB * t + MIB,
            sites.join(",")
        ));
        text.push('\n');
    }
    let path = dir.join("server.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// The report's table rows: (id, verdict word or "").
fn table(report: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = report.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.trim_start().starts_with("id "))
        .unwrap();
    let verdict_col = lines[header].find("verdict").unwrap();
    lines[header + 1..]
        .iter()
        .take_while(|l| !l.starts_with("verdicts"))
        .map(|l| {
            (
                l.split_whitespace().next().unwrap().to_string(),
                l.get(verdict_col..).unwrap_or("").trim().to_string(),
            )
        })
        .collect()
}

fn report(dir: &Path) -> (String, PathBuf, PathBuf) {
    let log = write_log(dir);
    let svg = dir.join("chart.svg");
    let html = dir.join("page.html");
    let out = Command::new(ASMALLOC)
        .arg("report")
        .arg(&log)
        .arg("--svg")
        .arg(&svg)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout, svg, html)
}

/// The numbers of a `points="x,y x,y"` attribute.
fn points(polyline: &str) -> Vec<(f64, f64)> {
    let start = polyline.find("points=\"").unwrap() + 8;
    let end = start + polyline[start..].find('"').unwrap();
    polyline[start..end]
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

#[test]
fn the_svg_spans_the_run_and_speaks_the_tables_words() {
    let dir = fresh_dir("asmalloc-svg-");
    let (stdout, svg, _) = report(&dir);
    let rows = table(&stdout);
    assert_eq!(
        rows,
        [
            ("7".to_string(), "possible leak".to_string()),
            ("9".to_string(), String::new()),
            ("0".to_string(), String::new()),
            ("5".to_string(), "never mind".to_string()),
        ],
        "{stdout}"
    );
    assert!(stdout.contains("(unknown site)"), "{stdout}");
    let svg = std::fs::read_to_string(svg).unwrap();
    let lines: Vec<&str> = svg.lines().filter(|l| l.starts_with("<polyline")).collect();
    assert_eq!(lines.len(), 4, "{svg}");
    // Every line from the first sample (x = 90) to the last (x = 600): the
    // late site starts at 0, site 5 stays at 0 after falling back.
    for l in &lines {
        let p = points(l);
        assert_eq!(p.first().unwrap().0, 90.0, "{l}");
        assert_eq!(p.last().unwrap().0, 600.0, "{l}");
    }
    let late = lines
        .iter()
        .find(|l| l.contains("data-site=\"9\""))
        .unwrap();
    assert_eq!(points(late)[0].1, 484.0, "starts at 0 bytes: {late}");
    let leak = lines
        .iter()
        .find(|l| l.contains("data-site=\"7\""))
        .unwrap();
    assert!(leak.contains("class=\"series leak\""), "{leak}");
    // The legend says what the table says.
    for (id, word) in [("7", "possible leak"), ("5", "never mind")] {
        let legend = format!("site {id} (MALLOC) server.c:4{id}");
        assert!(
            svg.contains(&format!(
                "{legend} {} — {word}</text>",
                if id == "7" {
                    "session_keep"
                } else {
                    "batch_load"
                }
            )),
            "{legend}:\n{svg}"
        );
    }
    assert!(svg.contains(">site 0 (unknown site)</text>"), "{svg}");
    // Axes: seconds and bytes.
    assert!(svg.contains(">time since the first sample (seconds)</text>"));
    assert!(svg.contains(">net bytes</text>"));
    assert!(svg.contains(">25 s</text>"), "{svg}");
    assert!(svg.contains(">40.0 MiB</text>"), "{svg}");
}

/// Runs headless Chromium on `url` and returns (DOM, its log), killing it
/// after a minute.
fn chromium(url: &str, profile: &Path) -> (String, String) {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run chromium ({e}): install Debian's chromium package (.ci/run does)")
        });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (dom, log) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "chromium failed: {status}\n{log}");
    (dom, log)
}

#[test]
fn the_page_draws_the_chart_in_a_real_browser() {
    let dir = fresh_dir("asmalloc-html-");
    let (_, _, html) = report(&dir);
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing is fetched.
    for fetch in [
        "src=",
        "href=",
        "url(",
        "@import",
        "fetch(",
        "XMLHttpRequest",
    ] {
        assert!(!page.contains(fetch), "{fetch} in the page");
    }
    let url = format!("file://{}#t=12.5", html.display());
    let (dom, log) = chromium(&url, &dir.join("profile"));
    for line in log.lines() {
        assert!(
            !(line.contains("Uncaught") || line.contains(":ERROR:CONSOLE")),
            "a script error: {line}\n{log}"
        );
    }
    assert!(
        dom.contains("data-chart=\"ready\""),
        "the script did not finish:\n{dom}\n{log}"
    );
    // The chart the script drew: one series per site, the leaking one
    // marked, with the legend's words.
    let series: Vec<&str> = dom
        .split("<polyline")
        .skip(1)
        .map(|s| &s[..s.find("</polyline>").unwrap()])
        .collect();
    assert_eq!(series.len(), 4, "{dom}");
    let leak = series
        .iter()
        .find(|s| s.contains("data-site=\"7\""))
        .unwrap_or_else(|| panic!("no series for the leaking site:\n{dom}"));
    assert!(leak.contains("class=\"series leak\""), "{leak}");
    assert!(
        leak.contains("<title>site 7 (MALLOC) server.c:47 session_keep — possible leak</title>"),
        "{leak}"
    );
    assert!(
        dom.contains("site 5 (MALLOC) server.c:45 batch_load — never mind"),
        "{dom}"
    );
    // The values at 12.5 s: site 7 at 2 MiB/s is at 25.0 MiB.
    assert!(
        dom.contains(
            "<div class=\"value\" data-site=\"7\" style=\"color: rgb(214, 39, 40);\">site 7 (MALLOC) server.c:47 session_keep: 25.0 MiB</div>"
        ),
        "{dom}"
    );
    // The table and the verdicts are on the page too.
    assert!(
        dom.contains("<td class=\"verdict\">possible leak</td>"),
        "{dom}"
    );
    assert!(dom.contains("possible progressive leak: grew by 12.0 MiB over 6 s (2.0 MiB/s)"));
    assert!(dom.contains("still leaking at the end: site 7 (MALLOC) server.c:47 session_keep"));
}
