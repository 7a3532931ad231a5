//! Where the suite runs: the tools it finds (PATH), the workspace and
//! target directories, building its parts with cargo, and the facts about
//! the machine and the time it writes next to the results.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("asmalloc-bench lives in the workspace root")
        .to_path_buf()
}

/// The target directory: `CARGO_TARGET_DIR`, else the one this binary was
/// built into (`<target>/<profile>/asmalloc-bench`).
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let t = PathBuf::from(t);
        return if t.is_absolute() { t } else { root.join(t) };
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.to_path_buf()))
        .filter(|t| t.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| root.join("target"))
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs a build command; on failure returns the tail of its output.
pub(crate) fn build(what: &str, mut cmd: Command) -> Result<(), String> {
    print!("  {what} ... ");
    let _ = std::io::stdout().flush();
    let start = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        println!("ok ({:.1} s)", start.elapsed().as_secs_f64());
        return Ok(());
    }
    println!("FAILED");
    let text = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = text.lines().rev().take(25).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(tail.join("\n"))
}

pub(crate) fn mtime(p: &Path) -> String {
    p.metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or("?".into(), |d| utc(d.as_secs()))
}

/// `YYYY-MM-DD HH:MM UTC` of a Unix time (the runtime's datestamp, to the
/// minute).
pub(crate) fn utc(secs: u64) -> String {
    let full = asmalloc::report::datestamp(
        i64::try_from(secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000),
    );
    // "YYYY-MM-DD HH:MM:SS UTC" without ":SS".
    format!("{} UTC", &full[..16])
}

pub(crate) fn now_utc() -> String {
    utc(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()))
}

pub(crate) fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

/// The 1-minute load average (other work on the machine skews the
/// numbers; the report says how busy it was).
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

pub(crate) fn machine_name() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}
