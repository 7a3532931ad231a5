//! Workload (e): redis-server under one configuration, driven over
//! loopback by redis-benchmark.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::measure::{Usage, spawn};

/// The tests redis-benchmark runs (`-t`).
pub const TESTS: &str = "set,get,lpush,lpop,hset";

/// A free loopback port: bind port 0, read it, let it go.
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// Sends one inline command and reads the first reply line.
fn command(port: u16, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(cmd.as_bytes())?;
    s.write_all(b"\r\n")?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    let _ = s.shutdown(Shutdown::Both);
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// One measured redis run.
pub struct RedisRun {
    /// The server's usage (wall = the benchmark's duration).
    pub usage: Usage,
    /// Requests per second over all tests (total requests / total time).
    pub rps: f64,
}

/// Starts `server_cmd` (redis-server, possibly wrapped) on a free port with
/// persistence off, waits until it answers PING, runs redis-benchmark,
/// shuts the server down and reaps it. `dir` is the run's output
/// directory (tools' files; redis writes nothing there), `scratch` where
/// stdout/stderr go.
pub fn run(
    mut server_cmd: Command,
    benchmark: &Path,
    requests: u64,
    dir: &Path,
    scratch: &Path,
) -> Result<RedisRun, String> {
    let port = free_port()?;
    server_cmd
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ])
        .arg("--dir")
        .arg(dir);
    let server = spawn(
        &mut server_cmd,
        None,
        &scratch.join("redis.out"),
        &scratch.join("redis.err"),
    )?;
    let ready = Instant::now();
    loop {
        if command(port, "PING").is_ok_and(|r| r.starts_with("+PONG")) {
            break;
        }
        if ready.elapsed() > Duration::from_secs(60) {
            server.signal(libc::SIGKILL);
            let _ = server.wait(Duration::from_secs(10));
            return Err("redis-server did not answer PING within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    let out = Command::new(benchmark)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-P", "32", "-t", TESTS, "-d", "256"])
        .args(["-n", &requests.to_string(), "--csv"])
        .output();
    let wall = start.elapsed().as_secs_f64();
    let _ = command(port, "SHUTDOWN NOSAVE");
    let usage = server.wait(Duration::from_secs(120));
    let out = out.map_err(|e| format!("cannot run redis-benchmark: {e}"))?;
    let mut usage = usage?;
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let rps = total_rps(&String::from_utf8_lossy(&out.stdout), requests)?;
    usage.wall = wall;
    Ok(RedisRun { usage, rps })
}

/// Requests per second over all tests in redis-benchmark's `--csv` output:
/// the tests' requests divided by the sum of their times.
pub fn total_rps(csv: &str, requests: u64) -> Result<f64, String> {
    let mut seconds = 0.0;
    let mut tests = 0;
    for line in csv.lines() {
        let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
        if fields.len() < 2 || fields[0] == "test" {
            continue;
        }
        let rps: f64 = fields[1]
            .parse()
            .map_err(|_| format!("redis-benchmark: bad line {line:?}"))?;
        if rps <= 0.0 {
            return Err(format!("redis-benchmark: bad rate in {line:?}"));
        }
        seconds += requests as f64 / rps;
        tests += 1;
    }
    if tests == 0 {
        return Err(format!("redis-benchmark printed no results: {csv:?}"));
    }
    Ok((tests as f64 * requests as f64) / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_rps_is_requests_over_summed_time() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\"\n\"SET\",\"1000.00\",\"1.0\"\n\"GET\",\"4000.00\",\"0.5\"\n";
        // 100 requests each: 0.1 s + 0.025 s for 200 requests.
        let r = total_rps(csv, 100).unwrap();
        assert!((r - 1600.0).abs() < 1e-6, "{r}");
        assert!(total_rps("\"test\",\"rps\"\n", 100).is_err());
    }
}
