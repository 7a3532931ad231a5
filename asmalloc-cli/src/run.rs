//! `asmalloc run -- PROGRAM ARGS…`: the program under the preload library,
//! with the leak monitor on, then a summary of what the monitor concluded.
//!
//! The library is the jemalloc build when the program links jemalloc and the
//! glibc build otherwise ([`allocator`] reads the program's ELF
//! dependencies); one line on stderr says which and why. `--jemalloc`,
//! `--glibc`, `--lib` (or `$ASMALLOC_LIB`) choose by hand, without looking.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Args;

use asmalloc::detector::DetectorConfig;

use crate::allocator;
use crate::budget;
use crate::log::{Log, State};
use crate::signals;

/// A duration flag's value (`500ms`, `1s`, `2m`; plain numbers are
/// seconds), checked with the runtime's own parser; milliseconds.
fn duration_ms(text: &str) -> Result<u64, String> {
    match asmalloc::parse_duration_ms(text) {
        Ok(0) => Err("must be longer than 0".into()),
        Ok(ms) => Ok(ms),
        Err(e) => Err(e.to_string().trim_start_matches("asmalloc: ").to_string()),
    }
}

/// A size flag's value (`4M`, `512K`, bytes), checked with the runtime's
/// own parser.
fn size_bytes(text: &str) -> Result<u64, String> {
    match asmalloc::parse_size(text) {
        Ok(0) => Err("must be more than 0".into()),
        Ok(n) => Ok(n as u64),
        Err(e) => Err(e.to_string().trim_start_matches("asmalloc: ").to_string()),
    }
}

/// A `--metrics-addr` value (`127.0.0.1:9464`, `[::1]:9464`, a bare port),
/// checked with the runtime's parser; the address as it will be bound.
fn metrics_addr(text: &str) -> Result<String, String> {
    asmalloc::__private::metrics::parse_addr(text)
        .map(|a| a.to_string())
        .map_err(|e| e.to_string().trim_start_matches("asmalloc: ").to_string())
}

const DEFAULT_WINDOW_MS: u64 = (DetectorConfig::DEFAULT.window_ns / 1_000_000) as u64;

#[derive(Args)]
pub(crate) struct RunArgs {
    /// How often the monitor samples every site (e.g. 500ms, 1s, 5s).
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = duration_ms)]
    interval: u64,
    /// Write the JSON-lines log here (default: a new file in the temporary
    /// directory, whose path is printed).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Growth of a site's floor over the window that counts as a leak
    /// (e.g. 4M) [default: 4M].
    #[arg(long, value_name = "SIZE", value_parser = size_bytes)]
    threshold: Option<u64>,
    /// The detector's window (e.g. 30s) [default: 30s]; it must hold the
    /// detector's minimum number of samples (6, or
    /// $ASMALLOC_LEAK_MIN_SAMPLES) at --interval.
    #[arg(long, value_name = "DURATION", value_parser = duration_ms)]
    window: Option<u64>,
    /// Use the jemalloc build of the library (libasmalloc_jem.so), whatever
    /// the program links.
    #[arg(long, conflicts_with = "lib")]
    jemalloc: bool,
    /// Use the glibc build of the library (libasmalloc.so), whatever the
    /// program links.
    #[arg(long, conflicts_with_all = ["lib", "jemalloc"])]
    glibc: bool,
    /// The library to preload, whatever the program links ($ASMALLOC_LIB
    /// does the same when no library option is given).
    #[arg(long)]
    lib: Option<PathBuf>,
    /// The program links asmalloc itself (a Rust program with the `AsmAlloc`
    /// global allocator that calls `asmalloc::configure_from_env()`): set
    /// the monitor up through the environment, preload nothing.
    #[arg(long, conflicts_with_all = ["lib", "jemalloc", "glibc"])]
    linked: bool,
    /// Leave allocations with no named site at site 0 instead of charging
    /// them to the code that called malloc (caller sites, named at report
    /// time from the program's symbols and debug information).
    #[arg(long)]
    no_callers: bool,
    /// Fail (exit 3) when a site's floor grows faster than RATE over the
    /// run: GLOB matches the site's FILE:LINE, file name:LINE or function
    /// (the last matching --budget applies); RATE is 0 or e.g. 512KiB/s,
    /// 1MiB/min, 10MiB/h. Repeatable. See docs/budget.md.
    #[arg(long = "budget", value_name = "GLOB=RATE", value_parser = budget::parse_rule)]
    budgets: Vec<budget::Rule>,
    /// Judge budgets only from this long after the program's first sample
    /// (start-up allocations do not count).
    #[arg(long, value_name = "DURATION", value_parser = duration_ms, requires = "budgets")]
    budget_warmup: Option<u64>,
    /// A function the program allocates through (`xmalloc`, `zmalloc`; `*`
    /// and `?` match any characters / one): calls made inside it are
    /// charged to its caller. May be repeated; adds to $ASMALLOC_WRAPPERS.
    /// Common wrappers of popular libraries are followed without it (see
    /// docs/caller-sites.md).
    #[arg(long = "wrapper", value_name = "NAME", conflicts_with = "no_callers")]
    wrappers: Vec<String>,
    /// Sample allocations (one per 512 KiB allocated on average, or
    /// $ASMALLOC_SAMPLE_BYTES) and report the whole stack of the sampled
    /// ones, with estimated live bytes per stack.
    #[arg(long)]
    stacks: bool,
    /// Rewrite this Prometheus textfile at every sample, atomically (for
    /// node_exporter's textfile collector; `%p` is the process id).
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
    /// Serve Prometheus/OpenMetrics metrics at http://ADDR/metrics while
    /// the program runs (e.g. 127.0.0.1:9464; a bare port is on 127.0.0.1).
    #[arg(long, value_name = "ADDR", value_parser = metrics_addr)]
    metrics_addr: Option<String>,
    /// The program and its arguments (after `--`, or from the first word
    /// that is not an option of `asmalloc run`).
    #[arg(required = true, trailing_var_arg = true, value_name = "PROGRAM")]
    program: Vec<OsString>,
}

/// Refuses a window too short to hold the detector's minimum number of
/// samples at the sampling interval (it could never reach a verdict),
/// saying what would do.
fn check_window(args: &RunArgs) -> Result<(), String> {
    let min_samples = std::env::var("ASMALLOC_LEAK_MIN_SAMPLES")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&n| n >= 4)
        .unwrap_or(DetectorConfig::DEFAULT.min_samples as u64);
    let window = args.window.unwrap_or(DEFAULT_WINDOW_MS);
    let needed = args.interval.saturating_mul(min_samples);
    if window < needed {
        return Err(format!(
            "--window {} is too short for --interval {}: the detector needs at least {min_samples} \
             samples in a window, so use --window {} or more, or a shorter --interval",
            show_ms(window),
            show_ms(args.interval),
            show_ms(needed)
        ));
    }
    Ok(())
}

/// `1500ms`, `2s`.
fn show_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The library to preload, as chosen.
enum Choice {
    /// A path given by `--lib` or `$ASMALLOC_LIB`.
    Path(PathBuf),
    /// One of the two builds, looked for next to this executable.
    Named(&'static str),
}

/// Chooses the library: `--lib`, `--jemalloc`, `--glibc`, `$ASMALLOC_LIB`,
/// or else by what the program links (saying so in one line).
fn choose(args: &RunArgs) -> Choice {
    if let Some(lib) = &args.lib {
        return Choice::Path(lib.clone());
    }
    if args.jemalloc {
        return Choice::Named(allocator::JEMALLOC_LIB);
    }
    if args.glibc {
        return Choice::Named(allocator::GLIBC_LIB);
    }
    if let Some(env) = std::env::var_os("ASMALLOC_LIB").filter(|v| !v.is_empty()) {
        let env = PathBuf::from(env);
        eprintln!("asmalloc: using {} ($ASMALLOC_LIB)", env.display());
        return Choice::Path(env);
    }
    let detection = allocator::detect(&args.program[0], &allocator::Search::from_env());
    if let Some(line) = detection.message(&Path::new(&args.program[0]).display().to_string()) {
        eprintln!("{line}");
    }
    Choice::Named(detection.library())
}

/// Finds the chosen library: the given path, or the named build next to
/// this executable or in `../lib` beside it.
fn find_lib(choice: &Choice) -> Result<PathBuf, String> {
    let (name, candidates) = match choice {
        Choice::Path(path) => (
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            vec![path.clone()],
        ),
        Choice::Named(name) => {
            let mut candidates = Vec::new();
            if let Some(dir) = std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf))
            {
                candidates.push(dir.join(name));
                candidates.push(dir.join("../lib").join(name));
            }
            (name.to_string(), candidates)
        }
    };
    let mut tried = Vec::new();
    for c in candidates {
        if c.is_file() {
            return std::fs::canonicalize(&c).map_err(|e| format!("{}: {e}", c.display()));
        }
        tried.push(c.display().to_string());
    }
    Err(format!(
        "cannot find {name} (looked at: {}); build it with `cargo build --release -p {}` or pass --lib PATH",
        if tried.is_empty() {
            "nothing".to_string()
        } else {
            tried.join(", ")
        },
        if name.starts_with("libasmalloc_jem") {
            "asmalloc-preload-jem"
        } else {
            "asmalloc-preload"
        }
    ))
}

pub(crate) fn run(args: RunArgs) -> ExitCode {
    if let Err(why) = check_window(&args) {
        eprintln!("asmalloc: {why}");
        return ExitCode::from(2);
    }
    let lib = if args.linked {
        None
    } else {
        match find_lib(&choose(&args)) {
            Ok(lib) => Some(lib),
            Err(why) => {
                eprintln!("asmalloc: {why}");
                return ExitCode::from(127);
            }
        }
    };
    // The monitor appends to the log; the summary reads only this run's
    // lines (by time), so a --log file with earlier runs in it is kept.
    let log_path = args.log.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("asmalloc-{}.jsonl", std::process::id()))
    });
    if args.log.is_none() {
        let _ = std::fs::remove_file(&log_path);
    }
    let started_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
        // The runtime's clock is the kernel's coarse one (a tick behind).
        - 50_000_000;
    let mut cmd = Command::new(&args.program[0]);
    cmd.args(&args.program[1..])
        .env("ASMALLOC_SAMPLE_INTERVAL", format!("{}ms", args.interval))
        .env("ASMALLOC_CALLERS", if args.no_callers { "0" } else { "1" })
        .env("ASMALLOC_LOG", &log_path);
    if args.stacks && std::env::var_os("ASMALLOC_SAMPLE_BYTES").is_none() {
        cmd.env("ASMALLOC_SAMPLE_BYTES", "512K");
    }
    if !args.wrappers.is_empty() {
        let mut list = std::env::var("ASMALLOC_WRAPPERS").unwrap_or_default();
        for w in &args.wrappers {
            if !list.trim().is_empty() {
                list.push(',');
            }
            list.push_str(w);
        }
        cmd.env("ASMALLOC_WRAPPERS", list);
    }
    if let Some(lib) = lib {
        let mut preload = lib.into_os_string();
        if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
            preload.push(":");
            preload.push(existing);
        }
        cmd.env("LD_PRELOAD", preload);
    }
    if let Some(t) = args.threshold {
        cmd.env("ASMALLOC_LEAK_THRESHOLD", t.to_string());
    }
    if let Some(w) = args.window {
        cmd.env("ASMALLOC_LEAK_WINDOW", format!("{w}ms"));
    }
    if let Some(file) = &args.metrics_file {
        cmd.env("ASMALLOC_METRICS_FILE", file);
    }
    if let Some(addr) = &args.metrics_addr {
        cmd.env("ASMALLOC_METRICS_ADDR", addr);
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "asmalloc: cannot run {}: {e}",
                Path::new(&args.program[0]).display()
            );
            return ExitCode::from(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    // Like a shell waiting for a foreground job: ^C and ^\ reach the program
    // (same process group) but not us, so we can still summarise. Set only
    // after the spawn: an ignored disposition would be inherited.
    let ignore = signals::IgnoreInterrupts::new();
    let status = match child.wait() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("asmalloc: waiting for the program failed: {e}");
            return ExitCode::from(1);
        }
    };
    drop(ignore);
    // `%p` in the path is the program's pid, as the runtime expands it.
    let log_path = PathBuf::from(
        log_path
            .to_string_lossy()
            .replace("%p", &child.id().to_string()),
    );
    summarise(
        &log_path,
        started_ns,
        &args.program[0],
        &detector_config(&args),
    );
    let budget_status = (!args.budgets.is_empty()).then(|| {
        let warmup_ns = args.budget_warmup.map_or(0, |ms| ms as i64 * 1_000_000);
        let cfg = detector_config(&args);
        budget::check(&log_path, started_ns, &args.budgets, warmup_ns, &cfg)
    });
    match (status.code(), status.signal()) {
        // The program's own failure wins over the budget's verdict.
        (Some(0), _) => ExitCode::from(budget_status.unwrap_or(0)),
        (Some(code), _) => ExitCode::from(code.clamp(0, 255) as u8),
        (None, Some(sig)) => {
            eprintln!(
                "asmalloc: {} was killed by signal {sig}",
                Path::new(&args.program[0]).display()
            );
            ExitCode::from((128 + sig).clamp(0, 255) as u8)
        }
        (None, None) => ExitCode::from(1),
    }
}

/// The detector settings the program ran with (for judging the end of its
/// log): the flags, else the environment, else the defaults.
fn detector_config(args: &RunArgs) -> DetectorConfig {
    let min_samples = std::env::var("ASMALLOC_LEAK_MIN_SAMPLES")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n >= 4)
        .unwrap_or(DetectorConfig::DEFAULT.min_samples);
    let env_size = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| asmalloc::parse_size(&v).ok())
            .filter(|&n| n > 0)
    };
    let env_ms = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| asmalloc::parse_duration_ms(&v).ok())
            .filter(|&n| n > 0)
    };
    DetectorConfig {
        threshold_bytes: args
            .threshold
            .or_else(|| env_size("ASMALLOC_LEAK_THRESHOLD").map(|n| n as u64))
            .unwrap_or(DetectorConfig::DEFAULT.threshold_bytes),
        window_ns: args
            .window
            .or_else(|| env_ms("ASMALLOC_LEAK_WINDOW"))
            .map_or(DetectorConfig::DEFAULT.window_ns, |ms| {
                i64::try_from(ms).unwrap_or(i64::MAX / 1_000_000) * 1_000_000
            }),
        min_samples,
        ..DetectorConfig::DEFAULT
    }
}

/// The final leak summary, from the log the program wrote: every verdict,
/// then each site's state at the end (see [`Log::conclusions`]): `LEAK at
/// exit` (still there), `LEAK while running, freed at exit` (freed while the
/// program shut down), `grew, no verdict` (a run too short for one), or
/// `no progressive leak at exit`.
fn summarise(log_path: &Path, started_ns: i64, program: &OsString, cfg: &DetectorConfig) {
    let program = Path::new(program).display();
    let log = match Log::read_since(log_path, started_ns) {
        Ok(log) if log.lines > 0 => log,
        _ => {
            eprintln!(
                "asmalloc: {program} wrote no log at {} (it ran too briefly for a sample, or \
                 is statically linked / setuid, which ignores LD_PRELOAD)",
                log_path.display()
            );
            return;
        }
    };
    let start = log.start_ns();
    eprintln!(
        "asmalloc: summary: {} samples over {:.1} s; log: {}",
        log.lines,
        (log.end_ns() - start) as f64 / 1e9,
        log_path.display()
    );
    for (_, sentence) in log.verdict_sentences(cfg) {
        eprintln!("asmalloc: {sentence}");
    }
    let conclusions = log.conclusions(cfg);
    if !conclusions.iter().any(|c| c.is_leak()) {
        eprintln!("asmalloc: no progressive leak at exit");
    }
    for c in conclusions
        .iter()
        .filter(|c| !matches!(c.state, State::Retracted(_)))
    {
        eprintln!("asmalloc: {}", c.sentence(start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, String> {
        Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .map(|c| c.run)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn bad_values_are_refused_under_the_flags_name() {
        let e = parse(&["--threshold", "4Q", "--", "prog"]).err().unwrap();
        assert!(
            e.contains("'--threshold <SIZE>'") && e.contains("bad size '4Q'"),
            "{e}"
        );
        let e = parse(&["--interval", "soon", "prog"]).err().unwrap();
        assert!(e.contains("'--interval <DURATION>'"), "{e}");
        let e = parse(&["--window", "0", "prog"]).err().unwrap();
        assert!(e.contains("longer than 0"), "{e}");
    }

    #[test]
    fn an_unknown_option_before_the_program_is_an_error() {
        let e = parse(&["--frobnicate", "m.prom", "--", "./prog"])
            .err()
            .unwrap();
        assert!(e.contains("unexpected argument '--frobnicate'"), "{e}");
        // After the program's name, options are the program's.
        let a = parse(&["./prog", "--verbose", "-x"]).unwrap();
        assert_eq!(a.program, ["./prog", "--verbose", "-x"]);
        let a = parse(&["--", "./prog", "--interval", "5s"]).unwrap();
        assert_eq!(a.program, ["./prog", "--interval", "5s"]);
        assert_eq!(a.interval, 1000);
    }

    #[test]
    fn a_window_too_short_for_the_interval_is_refused_with_the_fix() {
        let a = parse(&["--window", "2s", "prog"]).unwrap();
        let why = check_window(&a).err().unwrap();
        assert!(
            why.contains("--window 2s is too short for --interval 1s"),
            "{why}"
        );
        assert!(why.contains("use --window 6s or more"), "{why}");
        let a = parse(&["--interval", "250ms", "--window", "2s", "prog"]).unwrap();
        assert!(check_window(&a).is_ok());
        let a = parse(&["prog"]).unwrap();
        assert!(check_window(&a).is_ok(), "the defaults fit");
    }
}
