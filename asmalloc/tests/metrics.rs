//! Prometheus metrics from a Rust program with the `AsmAlloc` global
//! allocator (`asmalloc::configure_from_env`, `ASMALLOC_METRICS_ADDR`,
//! `ASMALLOC_METRICS_FILE`): the exposition is read by a real parser
//! (Python's `prometheus_client`), the leaking site's labels survive a file
//! name with a quote, a backslash, a newline and non-ASCII, its bytes are
//! exact, and what the monitor and the endpoint allocate is the library's
//! own — an idle program's numbers do not move however often it is
//! sampled and scraped.
//!
//! The program is this test binary itself, run again as a child
//! (`child_program`, which does nothing unless `ASMALLOC_METRICS_CHILD` is
//! set): it is the one whose global allocator is `AsmAlloc`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use asmalloc::{AsmAlloc, Site, SiteTable};
use asmalloc_test_support::prom;

#[global_allocator]
static GLOBAL: AsmAlloc = AsmAlloc::system();

const WEIRD_FILE: &str = "src/we\"ird\\dir/naïve\nname.rs";
static SITES: SiteTable = SiteTable::new(
    &["NONE", "cache"],
    &[
        Site::NONE,
        Site::new(1, 1, WEIRD_FILE, 42, "cache::leak_grow"),
    ],
);
const STEPS: usize = 20;
const BLOCK: usize = 4096;

/// The program (only as the child): registers its table, applies the
/// environment (starting the monitor and the endpoint), leaks `STEPS`
/// blocks at site 1, then idles (the test kills it).
#[test]
fn child_program() {
    if std::env::var_os("ASMALLOC_METRICS_CHILD").is_none() {
        return;
    }
    asmalloc::register_sites(&SITES).expect("the table");
    assert!(asmalloc::configure_from_env().is_empty());
    for _ in 0..STEPS {
        let _site = asmalloc::enter_scope(1, 1);
        std::mem::forget(vec![7u8; BLOCK]);
    }
    println!("leaked");
    std::thread::sleep(Duration::from_secs(60));
}

/// The child, killed when the test ends (passing or not).
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_rust_programs_metrics_parse_and_cost_it_nothing() {
    let dir = asmalloc_test_support::fresh_dir("asmalloc-rust-metrics-");
    let file = dir.join("rust.prom");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_program",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ASMALLOC_METRICS_CHILD", "1")
        .env("ASMALLOC_SAMPLE_INTERVAL", "20ms")
        .env("ASMALLOC_METRICS_ADDR", "127.0.0.1:0")
        .env("ASMALLOC_METRICS_FILE", &file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(Kill)
        .expect("run the child");
    // The endpoint's port, as announced (port 0: the kernel chose); the
    // rest of stderr is passed on.
    let stderr = std::io::BufReader::new(child.0.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines() {
            let Ok(line) = line else { break };
            eprintln!("{line}");
            if let Some(p) = line
                .strip_prefix("asmalloc: serving metrics on http://127.0.0.1:")
                .and_then(|r| r.strip_suffix("/metrics"))
            {
                let _ = tx.send(p.parse::<u16>().ok());
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(30)).ok().flatten();
    let addr = SocketAddr::from(([127, 0, 0, 1], port.expect("an announced port")));
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("leaked") {
        line.clear();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "the child ended early"
        );
    }
    // Past the child's last allocation: give the monitor a sample.
    std::thread::sleep(Duration::from_millis(200));
    let labels = [
        ("site_id", "1"),
        ("type", "cache"),
        ("file", WEIRD_FILE),
        ("line", "42"),
        ("function", "cache::leak_grow"),
    ];
    let numbers = |openmetrics: bool| {
        let accept: &[&str] = if openmetrics {
            &["Accept: application/openmetrics-text"]
        } else {
            &[]
        };
        let a = prom::get_when_up(addr, "/metrics", accept, Duration::from_secs(5));
        let s = prom::parse(&a.body, openmetrics);
        (
            ["malloc", "calloc", "realloc", "free"]
                .map(|op| prom::value(&s, "asmalloc_calls_total", &[("op", op)])),
            prom::value(&s, "asmalloc_net_bytes", &[]),
            prom::value(&s, "asmalloc_net_blocks", &[]),
            prom::value(&s, "asmalloc_site_net_bytes", &labels),
            prom::value(&s, "asmalloc_samples_total", &[]),
        )
    };
    let first = numbers(true);
    assert_eq!(first.3, (STEPS * BLOCK) as f64, "{first:?}");
    let mut last = first;
    for i in 0..10 {
        last = numbers(i % 2 == 0);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        last.4 >= first.4 + 10.0,
        "samples taken: {first:?} {last:?}"
    );
    assert_eq!(
        (first.0, first.1, first.2, first.3),
        (last.0, last.1, last.2, last.3),
        "an idle program's numbers moved while only the exporter worked"
    );
    // The textfile too.
    let text = std::fs::read_to_string(&file).expect("the textfile");
    let s = prom::parse(&text, false);
    assert_eq!(
        prom::value(&s, "asmalloc_site_net_blocks", &labels),
        STEPS as f64
    );
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every PromQL expression of a dashboard (panel targets, annotations,
/// variable queries).
fn dashboard_queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(q)) => out.push(q.clone()),
                    _ => dashboard_queries(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| dashboard_queries(i, out)),
        _ => {}
    }
}

/// `examples/grafana/asmalloc-dashboard.json` queries only metrics the
/// exporter emits (by their exposed names), names in its legends and
/// annotation texts only labels the series carry, and shows per-site net
/// bytes and verdict annotations. (The preload's Prometheus test runs
/// every one of its queries against a real server.)
#[test]
fn the_grafana_dashboard_uses_the_exported_names() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/grafana/asmalloc-dashboard.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("valid JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dash, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    let names = asmalloc::__private::metrics::METRIC_NAMES;
    let mut used = std::collections::BTreeSet::new();
    for q in &queries {
        let mut rest = q.as_str();
        while let Some(i) = rest.find("asmalloc_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            assert!(names.contains(&name), "{name} (in {q}) is not exported");
            used.insert(name.to_string());
            rest = &tail[end..];
        }
    }
    for needed in ["asmalloc_site_net_bytes", "asmalloc_site_verdict"] {
        assert!(used.contains(needed), "{needed} not used: {used:?}");
    }
    let annotations = dash["annotations"]["list"].as_array().unwrap();
    assert!(
        annotations.iter().any(|a| a["expr"]
            .as_str()
            .is_some_and(|e| e.contains("verdict=\"possible_leak\""))),
        "a possible-leak annotation"
    );
    // Labels referenced as {{label}} in legends and annotation texts.
    let labels = [
        "site_id", "type", "file", "line", "function", "op", "kind", "verdict", "job", "instance",
    ];
    let text = dash.to_string();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("{{") {
        let tail = &rest[i + 2..];
        let end = tail.find("}}").expect("closed {{");
        let label = tail[..end].trim();
        assert!(labels.contains(&label), "unknown label {label}");
        rest = &tail[end..];
    }
}

/// What the library's own threads allocate under `AsmAlloc` (the monitor's
/// and the endpoint's, marked `library_work`) is never charged: not when
/// allocated, resized or freed there, nor when the program frees it; a
/// program block freed there is charged back to its site, and an own block
/// the program resizes becomes the program's.
#[test]
fn own_work_blocks_are_never_charged() {
    use asmalloc::__private::engine::set_library_work;
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| asmalloc::register_sites(&SITES).expect("the table"));
    let site = || asmalloc::Snapshot::take().site(1);
    let before = site();
    // Allocated and resized on an own-work thread, inside the site's scope.
    let (own, program_block) = std::thread::spawn(|| {
        let _scope = asmalloc::enter_scope(1, 1);
        let program_block = vec![1u8; 3000];
        set_library_work(true);
        let mut own = vec![0u8; 1000];
        own.reserve(5000);
        let kept = program_block.clone();
        // A program block freed here is charged back.
        drop(program_block);
        set_library_work(false);
        (own, kept)
    })
    .join()
    .unwrap();
    let mid = site();
    assert_eq!(mid.allocs - before.allocs, 1, "only the program block");
    assert_eq!(mid.frees - before.frees, 1, "charged back when freed");
    // The clone was made under the mark: not charged.
    assert_eq!(mid.net_bytes, before.net_bytes);
    // The program frees an own block: nothing to charge back.
    drop(program_block);
    assert_eq!(site(), mid);
    // The program resizes an own block inside the scope: it becomes the
    // program's, then is freed from the site.
    let mut own = own;
    {
        let _scope = asmalloc::enter_scope(1, 1);
        own.reserve(100_000);
    }
    let grown = site();
    assert_eq!(grown.allocs - mid.allocs, 1);
    assert!(grown.net_bytes - mid.net_bytes >= 100_000, "{grown:?}");
    drop(own);
    let after = site();
    assert_eq!(after.net_bytes, before.net_bytes);
    assert_eq!(after.net_count, before.net_count);
}
