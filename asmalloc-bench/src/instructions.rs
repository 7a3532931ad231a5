//! Instructions per step, counted exactly (callgrind).
//!
//! Wall-clock ratios on a shared machine move by 10–20 % between runs; an
//! instruction count does not move at all. So the suite also runs the
//! allocator-only churns on one thread under `valgrind --tool=callgrind`,
//! raw and tracked, each with the work and with none (`OPS` = 0: start-up,
//! the exit report, the library's first touches), and reports what
//! tracking adds per step: `((tracked − tracked₀) − (raw − raw₀)) / steps`.
//! One step of (a) is a free and an allocation (85 % malloc, 10 % realloc,
//! 5 % calloc); of (c), one `dealloc` and one `alloc`. These are the
//! numbers the allocation path is tuned by (docs/benchmarks.md).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One program run: its command line and environment.
#[derive(Clone)]
pub struct Run {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, OsString)>,
}

/// A raw run and a tracked one of the same work, each also with none.
pub struct Pair {
    pub label: String,
    pub raw: Run,
    pub tracked: Run,
    /// `args` with the work replaced by none.
    pub zero_args: Vec<String>,
}

/// A pair's counts (millions of instructions are printed).
pub struct Counted {
    pub label: String,
    pub raw: u64,
    pub raw_zero: u64,
    pub tracked: u64,
    pub tracked_zero: u64,
}

impl Counted {
    /// Instructions tracking adds per step.
    pub fn added_per_step(&self, steps: u64) -> f64 {
        let raw = self.raw.saturating_sub(self.raw_zero) as f64;
        let tracked = self.tracked.saturating_sub(self.tracked_zero) as f64;
        (tracked - raw) / steps as f64
    }

    /// The raw program's instructions per step.
    pub fn raw_per_step(&self, steps: u64) -> f64 {
        self.raw.saturating_sub(self.raw_zero) as f64 / steps as f64
    }
}

/// Counts every pair (a pair whose run fails is left out, with a note).
pub fn count_all(
    valgrind: &Path,
    pairs: &[Pair],
    clean: impl Fn(&mut Command),
    notes: &mut Vec<String>,
) -> Vec<Counted> {
    let mut out = Vec::new();
    for p in pairs {
        let zero = |r: &Run| Run {
            args: p.zero_args.clone(),
            ..r.clone()
        };
        let counts = [&p.raw, &zero(&p.raw), &p.tracked, &zero(&p.tracked)]
            .map(|r| instructions(valgrind, r, &clean));
        match counts {
            [Ok(raw), Ok(raw_zero), Ok(tracked), Ok(tracked_zero)] => {
                println!(
                    "  {}: raw {:.1} M, tracked {:.1} M",
                    p.label,
                    raw as f64 / 1e6,
                    tracked as f64 / 1e6
                );
                out.push(Counted {
                    label: p.label.clone(),
                    raw,
                    raw_zero,
                    tracked,
                    tracked_zero,
                });
            }
            other => {
                let why = other.into_iter().find_map(Result::err).unwrap_or_default();
                println!("  {}: not counted: {why}", p.label);
                notes.push(format!("Instructions, {}: not counted: {why}", p.label));
            }
        }
    }
    out
}

/// redis-server's instructions (callgrind) serving `requests` requests of
/// each redis-benchmark test, raw and under `lib_jem` (full mode only: a
/// server under callgrind serves about 2,000 requests a second).
pub fn count_redis(
    valgrind: &Path,
    (server, benchmark): (&Path, &Path),
    lib_jem: &Path,
    requests: u64,
    scratch: &Path,
    clean: impl Fn(&mut Command),
    notes: &mut Vec<String>,
) -> Option<Counted> {
    let count = |preload: Option<&Path>| -> Result<u64, String> {
        let dir = scratch.join("redis-callgrind");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cmd = Command::new(valgrind);
        clean(&mut cmd);
        cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(server);
        if let Some(lib) = preload {
            cmd.env("LD_PRELOAD", lib)
                .env("ASMALLOC_OUTPUT", "/dev/null");
        }
        crate::redis::run(cmd, benchmark, requests, &dir, scratch)?;
        let stderr = std::fs::read_to_string(scratch.join("redis.err")).unwrap_or_default();
        total_refs(&stderr).ok_or_else(|| "no `I refs` line from callgrind".to_string())
    };
    match (count(None), count(Some(lib_jem))) {
        (Ok(raw), Ok(tracked)) => {
            println!(
                "  redis-server: raw {:.1} M, tracked {:.1} M",
                raw as f64 / 1e6,
                tracked as f64 / 1e6
            );
            Some(Counted {
                label: format!(
                    "(e) redis-server, {requests} requests per test: libasmalloc_jem.so / raw (its own jemalloc)"
                ),
                raw,
                raw_zero: 0,
                tracked,
                tracked_zero: 0,
            })
        }
        (Err(e), _) | (_, Err(e)) => {
            println!("  redis-server: not counted: {e}");
            notes.push(format!("Instructions, redis-server: not counted: {e}"));
            None
        }
    }
}

/// The instructions `run` executes under callgrind.
fn instructions(valgrind: &Path, run: &Run, clean: &impl Fn(&mut Command)) -> Result<u64, String> {
    let mut cmd = Command::new(valgrind);
    clean(&mut cmd);
    cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(&run.program)
        .args(&run.args);
    for (k, v) in &run.env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("{}: {e}", valgrind.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(format!("{}: {}", out.status, tail.join(" / ")));
    }
    total_refs(&stderr).ok_or_else(|| "no `I refs` line from callgrind".to_string())
}

/// The `==PID== I   refs:      123,456,789` total of callgrind's summary.
pub fn total_refs(stderr: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| l.contains(" I   refs:"))?;
    let number = line.rsplit(':').next()?.trim().replace(',', "");
    number.parse().ok()
}

/// The results section's table (`redis`: the server's totals, whose
/// start-up is not subtracted).
pub fn markdown(counted: &[Counted], steps: u64, redis: Option<&Counted>) -> String {
    if counted.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "\n### Instructions per step (callgrind, one thread, {steps} steps)\n\n\
         Exact counts, so they do not move between runs: the whole process's \
         instructions, raw and tracked; the last two columns are per step, \
         each run less the same program doing no work (start-up and exit).\n\n\
         | churn | raw | tracked | x raw | raw per step | tracking adds per step |\n\
         |---|---|---|---|---|---|\n"
    );
    // The label and the totals: `| label | raw | tracked | x raw `.
    let totals = |c: &Counted| {
        format!(
            "| {} | {:.1} M | {:.1} M | {:.2}x ",
            c.label,
            c.raw as f64 / 1e6,
            c.tracked as f64 / 1e6,
            c.tracked as f64 / c.raw.max(1) as f64,
        )
    };
    for c in counted {
        md.push_str(&format!(
            "{}| {:.0} | {:.0} |\n",
            totals(c),
            c.raw_per_step(steps),
            c.added_per_step(steps),
        ));
    }
    if let Some(r) = redis {
        md.push_str(&format!("{}| | |\n", totals(r)));
    }
    md.push('\n');
    md
}

/// The counts for results.json.
pub fn json(counted: &[Counted], steps: u64, redis: Option<&Counted>) -> serde_json::Value {
    serde_json::json!({
        "steps": steps,
        "redis": redis.map(|r| serde_json::json!({"raw": r.raw, "tracked": r.tracked})),
        "pairs": counted.iter().map(|c| serde_json::json!({
            "label": c.label,
            "raw": c.raw,
            "raw_no_work": c.raw_zero,
            "tracked": c.tracked,
            "tracked_no_work": c.tracked_zero,
            "added_per_step": c.added_per_step(steps),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callgrinds_total_is_read() {
        let stderr = "==123== Events    : Ir\n==123== Collected : 98538212\n==123== \n\
                      ==123== I   refs:      98,538,212\n";
        assert_eq!(total_refs(stderr), Some(98_538_212));
        assert_eq!(total_refs("==1== ERROR SUMMARY: 0 errors"), None);
    }

    #[test]
    fn the_added_cost_is_net_of_the_no_work_runs() {
        let c = Counted {
            label: "x".into(),
            raw: 100_000_000,
            raw_zero: 2_000_000,
            tracked: 130_000_000,
            tracked_zero: 4_000_000,
        };
        // (126 M − 98 M) / 200,000 steps.
        assert_eq!(c.added_per_step(200_000), 140.0);
        assert_eq!(c.raw_per_step(200_000), 490.0);
        let md = markdown(&[c], 200_000, None);
        assert!(
            md.contains("| x | 100.0 M | 130.0 M | 1.30x | 490 | 140 |"),
            "{md}"
        );
    }
}
