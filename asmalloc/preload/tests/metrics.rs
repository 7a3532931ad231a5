//! Prometheus metrics from a running C program under the preload
//! (`ASMALLOC_METRICS_FILE`, `ASMALLOC_METRICS_ADDR`; docs/metrics.md):
//!
//! * the exposition — textfile and endpoint, both formats — is read by a
//!   real parser (Python's `prometheus_client`), with the leaking site's
//!   labels intact although its file name has a quote, a backslash, a
//!   newline and non-ASCII, its exact bytes, and its verdict;
//! * a real Prometheus server scrapes the endpoint and its query API
//!   returns the leaking site's series;
//! * the textfile is replaced atomically: a reader looping over it while
//!   it is rewritten every few milliseconds never sees part of one;
//! * the endpoint answers garbage, oversized, slow and concurrent clients
//!   as it should without ever blocking or crashing the program;
//! * what the exporter allocates is the library's own: scrapes and samples
//!   of an idle program change none of its numbers;
//! * fork: children forked while the endpoint is scraped never deadlock on
//!   the metrics' lock, and a child that outlives its parent does not keep
//!   the port (connections are refused, not left hanging).

#[macro_use]
mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use asmalloc_test_support::prom;
use common::*;

/// The leaking site's file name, as the program's table has it.
const WEIRD_FILE: &str = "src/we\"ird\\dir/naïve\nname.c";
const OPENMETRICS: &str = "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5";

fn program(lib: Lib) -> PathBuf {
    compile_linked(lib, "metrics", &[])
}

/// The program kept running in the background (killed when dropped), its
/// stderr passed on to the test's, and the port its endpoint announced (it
/// is started with `ASMALLOC_METRICS_ADDR=127.0.0.1:0`: the kernel picks a
/// free port, so parallel tests never collide).
struct Running(
    Child,
    std::sync::mpsc::Receiver<u16>,
    std::sync::Arc<std::sync::Mutex<String>>,
);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// The endpoint's address, as the library announced it.
    fn addr(&self) -> SocketAddr {
        let port = self
            .1
            .recv_timeout(Duration::from_secs(10))
            .expect("the library announces its endpoint's port");
        loopback(port)
    }

    /// Waits for the program to end by itself (at most `within`): its
    /// status and what it printed (read as it came: a child it left behind
    /// may hold its stdout open).
    fn finish(self, within: Duration) -> (Option<i32>, String) {
        let start = Instant::now();
        let mut this = self;
        loop {
            if let Some(status) = this.0.try_wait().unwrap() {
                // What it printed before it ended is in the pipe: wait
                // for the reader to have it all.
                while start.elapsed() < within && !this.2.lock().unwrap().ends_with('\n') {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let out = this.2.lock().unwrap().clone();
                return (status.code(), out);
            }
            assert!(
                start.elapsed() < within,
                "the program did not end within {within:?}: blocked?"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts the program (STEPS STEP_MS LEAK IDLE_MS) under `lib` with `env`.
fn start(lib: Lib, args: [u64; 4], env: &[(&str, String)]) -> Running {
    start_exe(lib, &program(lib), &args.map(|a| a.to_string()), env)
}

/// Starts `exe` with `args` under `lib` with `env`.
fn start_exe(lib: Lib, exe: &std::path::Path, args: &[String], env: &[(&str, String)]) -> Running {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env_remove("LD_PRELOAD")
        .env("LD_PRELOAD", common::lib(lib))
        .env("ASMALLOC_REPORT_AT_EXIT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start the metrics program");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("{line}");
            let port = line
                .strip_prefix("asmalloc: serving metrics on http://127.0.0.1:")
                .and_then(|rest| rest.strip_suffix("/metrics"))
                .and_then(|p| p.parse::<u16>().ok());
            if let Some(port) = port {
                let _ = tx.send(port);
            }
        }
    });
    let stdout = child.stdout.take().unwrap();
    let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = printed.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    Running(child, rx, printed)
}

/// A request size that `lib` charges exactly (it charges usable sizes,
/// less the 8-byte tag): a multiple of 16 for glibc's chunks, a jemalloc
/// size class less the tag for jemalloc.
fn exact(lib: Lib, class: u64) -> u64 {
    match lib {
        Lib::Glibc => class,
        Lib::Jemalloc => class - 8,
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The leaking site's labels, exactly.
fn leak_labels() -> [(&'static str, &'static str); 5] {
    [
        ("site_id", "1"),
        ("type", "MALLOC"),
        ("file", WEIRD_FILE),
        ("line", "42"),
        ("function", "leak_grow"),
    ]
}

fn exposition_parses_and_names_the_leak(lib: Lib) {
    let dir = asmalloc_test_support::fresh_dir("asmalloc-metrics-");
    let file = dir.join("asmalloc.prom");
    const STEPS: u64 = 40;
    let leak = exact(lib, 64 * 1024);
    let env = [
        ("ASMALLOC_SAMPLE_INTERVAL", "50ms".to_string()),
        ("ASMALLOC_LEAK_THRESHOLD", "512K".to_string()),
        ("ASMALLOC_LEAK_WINDOW", "500ms".to_string()),
        ("ASMALLOC_LEAK_MIN_SAMPLES", "4".to_string()),
        ("ASMALLOC_METRICS_FILE", file.display().to_string()),
        ("ASMALLOC_METRICS_ADDR", "127.0.0.1:0".to_string()),
    ];
    let running = start(lib, [STEPS, 25, leak, 300], &env);
    let addr = running.addr();

    // While it runs: the endpoint, in both formats, read by the parser.
    // (Until the first sample, the numbers are those of the program's
    // start, without its sites.)
    let start = Instant::now();
    loop {
        let om = prom::get_when_up(addr, "/metrics", &[OPENMETRICS], Duration::from_secs(10));
        assert_eq!(
            om.header("content-type"),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
        );
        let samples = prom::parse(&om.body, true);
        if prom::value(&samples, "asmalloc_samples_total", &[]) >= 1.0 {
            assert_eq!(
                prom::find(&samples, "asmalloc_site_net_bytes", &leak_labels()).len(),
                1,
                "the leaking site, its labels unescaped exactly: {samples:?}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no sample: {samples:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = prom::get_when_up(addr, "/metrics", &[], Duration::from_secs(5));
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let samples = prom::parse(&text.body, false);
    assert!(prom::value(&samples, "asmalloc_threads", &[]) >= 1.0);

    let (code, stdout) = running.finish(Duration::from_secs(30));
    assert_eq!((code, stdout.trim()), (Some(0), "done 40"));

    // After it: the textfile holds the last sample (taken at exit), and
    // Prometheus's own linter has nothing to say about it.
    let text = std::fs::read_to_string(&file).expect("the textfile");
    let lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): install Debian's prometheus package (.ci/run does)")
        });
    assert!(
        lint.status.success() && lint.stdout.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    let samples = prom::parse(&text, false);
    let labels = leak_labels();
    assert_eq!(
        prom::value(&samples, "asmalloc_site_net_bytes", &labels),
        (STEPS * leak) as f64
    );
    assert_eq!(
        prom::value(&samples, "asmalloc_site_net_blocks", &labels),
        STEPS as f64
    );
    assert_eq!(
        prom::value(&samples, "asmalloc_site_allocs_total", &labels),
        STEPS as f64
    );
    let cache = [
        ("function", "cache_put"),
        ("file", "src/cache.c"),
        ("line", "17"),
    ];
    assert_eq!(
        prom::value(&samples, "asmalloc_site_net_bytes", &cache),
        0.0
    );
    assert_eq!(
        prom::value(&samples, "asmalloc_site_allocs_total", &cache),
        STEPS as f64
    );
    // The leak was judged one, and says so per site and in the counters.
    let verdicts = prom::find(&samples, "asmalloc_site_verdict", &labels);
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    assert!(
        ["possible_leak", "still_growing"].contains(&verdicts[0].labels["verdict"].as_str()),
        "{verdicts:?}"
    );
    assert!(
        prom::value(
            &samples,
            "asmalloc_verdicts_total",
            &[("kind", "possible_leak")]
        ) >= 1.0
    );
    assert_eq!(prom::value(&samples, "asmalloc_sites_leaking", &[]), 1.0);
    // Totals and sampling health.
    assert!(prom::value(&samples, "asmalloc_net_bytes", &[]) >= (STEPS * leak) as f64);
    assert!(
        prom::value(&samples, "asmalloc_calls_total", &[("op", "malloc")]) >= (2 * STEPS) as f64
    );
    assert!(prom::value(&samples, "asmalloc_samples_total", &[]) >= 5.0);
    assert_eq!(prom::value(&samples, "asmalloc_sites_dropped", &[]), 0.0);
    let families: Vec<&str> = samples.iter().map(|s| s.family.as_str()).collect();
    for name in rt_metric_names() {
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(families.contains(&family), "{family} missing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The names the exporter documents (`METRIC_NAMES`), read from its source
/// so this test needs no dependency on the runtime crate.
fn rt_metric_names() -> Vec<&'static str> {
    let src = include_str!("../../src/metrics/render.rs");
    let list = src
        .split("pub const METRIC_NAMES")
        .nth(1)
        .and_then(|s| s.split("];").next())
        .expect("METRIC_NAMES in render.rs");
    list.split('"').skip(1).step_by(2).collect()
}

under_both!(
    exposition_parses_and_names_the_leak,
    exporter_allocations_are_its_own
);

/// A program that does nothing after its first steps: many samples and
/// scrapes later, its calls, bytes and blocks are what they were — the
/// monitor's samples, the model, the rendering and the endpoint's
/// buffers are all the library's own allocations.
fn exporter_allocations_are_its_own(lib: Lib) {
    let env = [
        ("ASMALLOC_SAMPLE_INTERVAL", "20ms".to_string()),
        ("ASMALLOC_METRICS_ADDR", "127.0.0.1:0".to_string()),
    ];
    let size = exact(lib, 4096);
    let running = start(lib, [3, 0, size, 60_000], &env);
    let addr = running.addr();
    let read = |a: &prom::Answer| {
        let s = prom::parse(&a.body, false);
        let ops: Vec<f64> = ["malloc", "calloc", "realloc", "free", "memalign"]
            .iter()
            .map(|op| prom::value(&s, "asmalloc_calls_total", &[("op", op)]))
            .collect();
        (
            ops,
            prom::value(&s, "asmalloc_net_bytes", &[]),
            prom::value(&s, "asmalloc_net_blocks", &[]),
            prom::value(&s, "asmalloc_site_net_bytes", &[("function", "leak_grow")]),
            prom::value(&s, "asmalloc_samples_total", &[]),
        )
    };
    // Past the program's own start (its three steps).
    std::thread::sleep(Duration::from_millis(300));
    let first = read(&prom::get_when_up(
        addr,
        "/metrics",
        &[],
        Duration::from_secs(10),
    ));
    let mut last = first.clone();
    for _ in 0..30 {
        last = read(&prom::get_when_up(
            addr,
            "/metrics",
            &[OPENMETRICS],
            Duration::from_secs(5),
        ));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(first.3, 3.0 * size as f64, "{first:?}");
    assert!(
        last.4 >= first.4 + 10.0,
        "samples were taken: {first:?} {last:?}"
    );
    assert_eq!(
        (&first.0, first.1, first.2),
        (&last.0, last.1, last.2),
        "the program's numbers moved while only the exporter worked"
    );
    drop(running);
}

#[test]
fn textfile_is_never_seen_half_written() {
    let dir = asmalloc_test_support::fresh_dir("asmalloc-metrics-atomic-");
    let file = dir.join("asmalloc.prom");
    let env = [
        ("ASMALLOC_SAMPLE_INTERVAL", "2ms".to_string()),
        ("ASMALLOC_METRICS_FILE", file.display().to_string()),
    ];
    // 400 steps of 5 ms: about 2 s of a textfile rewritten every 2 ms.
    let running = start(Lib::Glibc, [400, 5, 512, 0], &env);
    let mut reads = 0;
    let mut distinct = std::collections::BTreeSet::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && reads == 0 => continue,
            Err(e) => panic!("read {}: {e}", file.display()),
        };
        reads += 1;
        // Whole: the last family, its last line, a newline.
        let tail = text.rsplit_once("# TYPE asmalloc_sample_duration_seconds gauge\n");
        let whole = tail.is_some_and(|(_, last)| {
            last.starts_with("asmalloc_sample_duration_seconds ")
                && last.ends_with('\n')
                && last.matches('\n').count() == 1
        });
        assert!(whole, "read {reads} saw a partial file:\n{text}");
        assert!(text.starts_with("# HELP asmalloc_net_bytes "), "{text}");
        distinct.insert(text);
        if reads >= 300 && distinct.len() >= 20 {
            break;
        }
    }
    assert!(
        distinct.len() >= 20,
        "the file was rewritten while read ({} versions in {reads} reads)",
        distinct.len()
    );
    // Every version parses.
    for text in distinct.iter().step_by(5) {
        prom::parse(text, false);
    }
    let (code, _) = running.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "asmalloc.prom")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn status_of(addr: SocketAddr, request: &[u8]) -> u16 {
    prom::raw_request(addr, request, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no answer to {:?}", String::from_utf8_lossy(request)))
        .status
}

#[test]
fn endpoint_answers_bad_slow_and_concurrent_clients_and_never_blocks_the_program() {
    let env = [
        ("ASMALLOC_SAMPLE_INTERVAL", "50ms".to_string()),
        ("ASMALLOC_METRICS_ADDR", "127.0.0.1:0".to_string()),
    ];
    // About 4 s of work (200 steps of 20 ms), then exit.
    let running = start(Lib::Glibc, [200, 20, 1024, 0], &env);
    let addr = running.addr();
    prom::get_when_up(addr, "/metrics", &[], Duration::from_secs(10));

    // Slow clients: 40 connections (more than the server keeps) that send
    // half a request and then nothing, held open for the whole test.
    let slow: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: slo");
            s
        })
        .collect();

    // Garbage and bad requests get their status.
    assert_eq!(status_of(addr, b"garbage\r\n\r\n"), 400);
    assert_eq!(
        status_of(addr, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\n\n"),
        400
    );
    assert_eq!(
        status_of(addr, b"GET /metrics HTTP/1.1\r\nbad header\r\n\r\n"),
        400
    );
    assert_eq!(status_of(addr, b"GET / HTTP/1.1\r\n\r\n"), 404);
    assert_eq!(status_of(addr, b"GET /metrics/x HTTP/1.1\r\n\r\n"), 404);
    assert_eq!(status_of(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n"), 405);
    // Oversized: a header that never ends.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
    big.resize(64 * 1024, b'a');
    assert_eq!(status_of(addr, &big), 431);
    // A client that connects and closes at once, and one that sends half a
    // request and closes: nothing to answer, nothing breaks.
    drop(TcpStream::connect(addr).unwrap());
    let mut half = TcpStream::connect(addr).unwrap();
    let _ = half.write_all(b"GET /met");
    drop(half);

    // Concurrent scrapes, while the slow clients hold their connections:
    // every one answered in full, in the right format.
    let scrapers: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let accept: &[&str] = if i % 2 == 0 { &[OPENMETRICS] } else { &[] };
                    let a = prom::get(addr, "/metrics", accept).expect("a scrape answered");
                    assert_eq!(a.status, 200);
                    let om = i % 2 == 0;
                    let ct = a.header("content-type").unwrap();
                    assert_eq!(ct.starts_with("application/openmetrics-text"), om, "{ct}");
                    assert_eq!(
                        a.header("content-length").and_then(|l| l.parse().ok()),
                        Some(a.body.len())
                    );
                    if om {
                        assert!(a.body.ends_with("# EOF\n"));
                    }
                }
            })
        })
        .collect();
    for s in scrapers {
        s.join().expect("a scraper failed");
    }

    // The program was never held up: it ends by itself, all its steps
    // done, with the slow clients still connected.
    let (code, stdout) = running.finish(Duration::from_secs(60));
    assert_eq!((code, stdout.trim()), (Some(0), "done 200"));
    drop(slow);
}

/// Prometheus itself (Debian's `prometheus`, installed by `.ci/run`),
/// started with its own config and storage in a scratch directory.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = asmalloc_test_support::fresh_dir("asmalloc-prometheus-");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: asmalloc\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr = loopback(prom::free_port());
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run prometheus ({e}): install Debian's prometheus package (.ci/run does)")
            });
        Prometheus { child, addr, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `/api/v1/query?query=Q`: the result vector.
    fn query(&self, q: &str) -> Vec<serde_json::Value> {
        self.query_body(q)["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `/api/v1/query?query=Q`: the whole answer (`Null` if none).
    fn query_body(&self, q: &str) -> serde_json::Value {
        let encoded: String = q
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        prom::get(self.addr, &format!("/api/v1/query?query={encoded}"), &[])
            .and_then(|a| serde_json::from_str(&a.body).ok())
            .unwrap_or_default()
    }
}

#[test]
fn prometheus_scrapes_the_leaking_site() {
    let env = [
        ("ASMALLOC_SAMPLE_INTERVAL", "200ms".to_string()),
        ("ASMALLOC_LEAK_THRESHOLD", "256K".to_string()),
        ("ASMALLOC_LEAK_WINDOW", "1s".to_string()),
        ("ASMALLOC_LEAK_MIN_SAMPLES", "4".to_string()),
        ("ASMALLOC_METRICS_ADDR", "127.0.0.1:0".to_string()),
    ];
    // Leaks 16 KiB every 20 ms for up to 60 s (killed at the end).
    let program = start(Lib::Glibc, [3000, 20, 16 * 1024, 0], &env);
    let target = program.addr();
    prom::get_when_up(target, "/metrics", &[], Duration::from_secs(10));
    let server = Prometheus::start(target);
    let start = Instant::now();
    let series = loop {
        let found = server.query("asmalloc_site_net_bytes{function=\"leak_grow\"}");
        let verdict = server.query("asmalloc_site_verdict{function=\"leak_grow\"}");
        if !found.is_empty() && !verdict.is_empty() {
            break found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "no leak_grow series in Prometheus after 25 s; up = {:?}\n{}",
            server.query("up"),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(series.len(), 1, "{series:?}");
    let m = &series[0]["metric"];
    assert_eq!(m["__name__"], "asmalloc_site_net_bytes");
    assert_eq!(m["file"], WEIRD_FILE, "{m}");
    assert_eq!(m["line"], "42");
    assert_eq!(m["function"], "leak_grow");
    assert_eq!(m["site_id"], "1");
    assert_eq!(m["job"], "asmalloc");
    let bytes: f64 = series[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(bytes > 0.0 && bytes % 16384.0 == 0.0, "{bytes}");
    let up = server.query("up{job=\"asmalloc\"}");
    assert_eq!(up[0]["value"][1], "1", "{up:?}");

    // The example Grafana dashboard's queries, as Grafana would send them
    // for this job: every one is valid PromQL here, the per-site panel
    // shows the leak, and the possible-leak annotation marks it.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            manifest_dir().join("../../examples/grafana/asmalloc-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<(String, String)> = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            exprs.push((
                p["title"].to_string(),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    for a in dash["annotations"]["list"].as_array().unwrap() {
        if let Some(e) = a["expr"].as_str() {
            exprs.push((a["name"].to_string(), e.to_string()));
        }
    }
    assert!(exprs.len() >= 10);
    let mut annotated = Vec::new();
    for (title, expr) in &exprs {
        let q = expr.replace("$job", "asmalloc").replace("$instance", ".*");
        let body = server.query_body(&q);
        assert_eq!(body["status"], "success", "{title}: {q}: {body}");
        let shows_leak = body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["metric"]["function"] == "leak_grow");
        if title.contains("Net bytes per site") {
            assert!(shows_leak, "{title}: {q}: {body}");
        }
        // The site's verdict is "possible leak", or already "still
        // growing" by the time Prometheus first scraped it.
        if shows_leak && (title.contains("Possible leak") || title.contains("Still growing")) {
            annotated.push(title.clone());
        }
    }
    assert!(
        !annotated.is_empty(),
        "no verdict annotation marks leak_grow"
    );
}

#[test]
fn forks_while_scraped_never_deadlock_and_an_orphan_keeps_no_port() {
    let exe = compile("metrics_fork", &[]);
    let env = [
        ("ASMALLOC_SAMPLE_INTERVAL", "10ms".to_string()),
        ("ASMALLOC_METRICS_ADDR", "127.0.0.1:0".to_string()),
    ];
    let running = start_exe(Lib::Glibc, &exe, &["40".into(), "3000".into()], &env);
    let addr = running.addr();
    prom::get_when_up(addr, "/metrics", &[], Duration::from_secs(10));
    // Scrapes all along (the endpoint's thread takes the metrics' lock
    // while forks happen).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scrapers: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if prom::get(addr, "/metrics", &[]).is_some_and(|a| a.status == 200) {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let (code, stdout) = running.finish(Duration::from_secs(60));
    // The parent is gone, its orphan lives on (3 s) without the port:
    // a connection is refused at once instead of waiting in a queue no one
    // takes from.
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let scraped: u32 = scrapers.into_iter().map(|s| s.join().unwrap()).sum();
    assert_eq!((code, stdout.trim()), (Some(0), "forks ok 40"));
    assert!(scraped > 10, "{scraped} scrapes answered");
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{refused:?}"
    );
}
