//! `asmalloc run` on a real server (issue 10): redis-server, which links
//! Debian's libjemalloc, started by the `asmalloc` command (built here, with
//! this test's profile and target directory, so the libraries are next to
//! it where it looks for them) on a free loopback port, driven by
//! redis-benchmark, and shut down with redis-cli. asmalloc must pick
//! libasmalloc_jem.so by itself and say why in one line, exit as the server
//! did (0), and its summary and the monitor's log must show the server
//! tracked: log lines with a non-zero net, and never a negative site.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use asmalloc_test_support::{Lib, build_bin, fresh_dir};

use crate::checks::{analyze, missing};
use crate::ctx::{command, describe_status, file_create, reserve_port, tail, wait_timeout};
use crate::json;
use crate::programs::Need;
use crate::servers::{Server, wait_port};

const NEEDS: &[Need] = &[
    Need::Tool("redis-server", "redis-server"),
    Need::Tool("redis-benchmark", "redis-tools"),
    Need::Tool("redis-cli", "redis-tools"),
];

/// How long the server, its load and its shutdown may each take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a client to completion (killed after [`TIMEOUT`]), its output in
/// `dir/NAME.out` and `.err`.
fn client(dir: &Path, name: &str, mut cmd: Command) -> Output {
    let (out, err) = (
        dir.join(format!("{name}.out")),
        dir.join(format!("{name}.err")),
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file_create(&out).unwrap())
        .stderr(file_create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: cannot start: {e}"));
    let status = wait_timeout(&mut child, TIMEOUT)
        .unwrap_or_else(|| panic!("{name}: still running after {TIMEOUT:?}: killed"));
    Output {
        status,
        stdout: fs::read(&out).unwrap_or_default(),
        stderr: fs::read(&err).unwrap_or_default(),
    }
}

pub fn redis_under_asmalloc_run() {
    let missing = missing(NEEDS);
    assert!(missing.is_empty(), "{}", missing.join("; "));
    let asmalloc = build_bin("asmalloc-cli", "asmalloc");
    let jem = Lib::Jemalloc.path();
    assert_eq!(
        jem.parent(),
        asmalloc.parent(),
        "asmalloc run looks for the library next to itself"
    );
    let dir = fresh_dir("asmalloc-run-redis-");
    for d in [".home", ".tmp"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    let port = reserve_port().unwrap();
    let p = port.to_string();

    // The battery's fixed environment: PATH has Debian's directories only,
    // TMPDIR (where asmalloc writes its log) is the scratch directory; no
    // LD_PRELOAD or ASMALLOC_LIB (the choice is asmalloc's).
    let mut cmd = command(asmalloc.to_str().unwrap(), &dir);
    cmd.args(["run", "--interval", "200ms", "--", "redis-server"])
        .args(["--port", &p, "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"]);
    let (out, err) = (dir.join("asmalloc.out"), dir.join("asmalloc.err"));
    cmd.stdin(Stdio::null())
        .stdout(file_create(&out).unwrap())
        .stderr(file_create(&err).unwrap());
    let child = cmd.spawn().expect("start asmalloc run");
    // Killed with everything it started if anything below fails.
    let mut server = Server {
        child,
        label: "asmalloc run -- redis-server".into(),
        out,
        err,
        done: false,
    };
    wait_port(&mut server, port).unwrap_or_else(|e| panic!("{e}"));

    let mut bench = command("redis-benchmark", &dir);
    bench
        .args(["-h", "127.0.0.1", "-p", &p, "-n", "20000", "-P", "32"])
        .args(["-t", "set,get,lpush,lpop,hset", "-d", "256", "-q"]);
    let bench = client(&dir, "redis-benchmark", bench);
    assert!(
        bench.status.success(),
        "redis-benchmark: {}\n{}",
        describe_status(bench.status),
        String::from_utf8_lossy(&bench.stderr)
    );
    let mut shutdown = command("redis-cli", &dir);
    shutdown.args(["-h", "127.0.0.1", "-p", &p, "shutdown", "nosave"]);
    let shutdown = client(&dir, "redis-cli", shutdown);
    assert!(
        shutdown.status.success(),
        "redis-cli shutdown nosave: {}\n{}",
        describe_status(shutdown.status),
        String::from_utf8_lossy(&shutdown.stderr)
    );
    let status = wait_timeout(&mut server.child, TIMEOUT)
        .unwrap_or_else(|| panic!("asmalloc run still running {TIMEOUT:?} after the shutdown"));
    server.done = true;
    let stderr = fs::read_to_string(&server.err).unwrap_or_default();
    let kept = format!("(files kept in {})", dir.display());
    assert_eq!(
        status.code(),
        Some(0),
        "asmalloc run: {} {kept}; stderr:\n{}",
        describe_status(status),
        tail(&stderr, 30)
    );

    // What asmalloc picked, and why: its first line.
    let first = stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with("asmalloc: redis-server links libjemalloc")
            && first.ends_with("(jemalloc): using libasmalloc_jem.so"),
        "the first line says libasmalloc_jem.so was picked because redis-server links \
         libjemalloc {kept}:\n{stderr}"
    );
    assert!(
        !stderr.contains("steps aside"),
        "the jemalloc build tracks redis {kept}:\n{stderr}"
    );
    // The summary: samples were taken, and where the log is.
    let summary = stderr
        .lines()
        .find_map(|l| l.strip_prefix("asmalloc: summary: "))
        .unwrap_or_else(|| panic!("no summary {kept}:\n{stderr}"));
    let samples: usize = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary: {summary}"));
    assert!(samples >= 1, "no samples {kept}: {summary}");
    let log = Path::new(summary.rsplit_once("; log: ").expect(summary).1);

    // The log: well-formed, no negative site in any line, and the server's
    // live memory seen (a site with a non-zero net) at some point.
    let text = fs::read_to_string(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let asm = dir.join("asm");
    fs::create_dir_all(&asm).unwrap();
    fs::write(asm.join("log.redis.jsonl"), &text).unwrap();
    let a = analyze(&asm, &dir.join("no-logs"));
    assert!(a.log_lines >= 1, "an empty log {kept}");
    assert!(a.malformed.is_empty(), "{:?} {kept}", a.malformed);
    assert!(a.negatives.is_empty(), "{:?} {kept}", a.negatives);
    let nonzero = text.lines().filter_map(|l| json::parse(l).ok()).any(|v| {
        v.get("sites").is_some_and(|s| {
            s.arr()
                .iter()
                .any(|s| s.get("net_bytes").and_then(json::Value::int) != Some(0))
        })
    });
    assert!(nonzero, "no site ever had a non-zero net {kept}");
    fs::remove_dir_all(&dir).unwrap();
}
