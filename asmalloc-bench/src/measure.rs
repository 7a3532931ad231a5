//! Running one child process and measuring it: wall time, CPU time
//! (user + sys) and peak RSS from `wait4` (the child and the descendants it
//! waited for), with a timeout that kills it.
//!
//! Every child runs under the launcher (`c/launch.c`), which forks the
//! measured command and writes its `ru_maxrss` to a file. Linux keeps as a
//! process's `ru_maxrss` the larger of its peaks before and after
//! `execve`, and a child spawned by this process starts as a vfork of it:
//! spawned directly, every program smaller than the suite (about 2.7 MiB)
//! measured the suite. The launcher's own child starts from a few pages.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The compiled `c/launch.c`, set once at setup.
static LAUNCHER: OnceLock<PathBuf> = OnceLock::new();

/// Sets the launcher every child runs under (once, at setup).
pub fn set_launcher(path: PathBuf) {
    let _ = LAUNCHER.set(path);
}

/// `cmd` run by the launcher, which writes the peak RSS to `report`. The
/// launcher itself runs without the command's preload: it passes
/// `LD_PRELOAD` on to the command (as `ASMALLOC_BENCH_PRELOAD`).
fn launched(cmd: &Command, report: &Path) -> Command {
    let launcher = LAUNCHER
        .get()
        .expect("measure::set_launcher is called at setup");
    let mut l = Command::new(launcher);
    l.arg(report).arg(cmd.get_program()).args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        l.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) if k == "LD_PRELOAD" => l.env("ASMALLOC_BENCH_PRELOAD", v),
            Some(v) => l.env(k, v),
            None => l.env_remove(k),
        };
    }
    l
}

/// What one run cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Seconds from spawn to reaping.
    pub wall: f64,
    /// User + system CPU seconds of the child (and its waited-for
    /// descendants).
    pub cpu: f64,
    /// Peak resident set size, KiB (`ru_maxrss` of the command, as the
    /// launcher saw it: the largest of the command and its waited-for
    /// descendants).
    pub maxrss_kib: u64,
}

/// A spawned child, reaped with [`Running::wait`].
pub struct Running {
    pid: libc::pid_t,
    pidfd: libc::c_int,
    start: Instant,
    what: String,
    /// Where the launcher writes the command's peak RSS.
    report: PathBuf,
}

/// Spawns `cmd` with stdin from `stdin` (or /dev/null) and stdout/stderr
/// into the given files.
pub fn spawn(
    cmd: &mut Command,
    stdin: Option<&Path>,
    stdout: &Path,
    stderr: &Path,
) -> Result<Running, String> {
    let what = format!("{cmd:?}");
    let input = match stdin {
        Some(p) => Stdio::from(File::open(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => Stdio::null(),
    };
    let out = File::create(stdout).map_err(|e| format!("{}: {e}", stdout.display()))?;
    let err = File::create(stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
    let report = stderr.with_file_name(format!(
        "{}.maxrss",
        stderr
            .file_name()
            .map_or("run".into(), |n| n.to_string_lossy())
    ));
    let _ = std::fs::remove_file(&report);
    let mut cmd = launched(cmd, &report);
    let start = Instant::now();
    let child = cmd
        .stdin(input)
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    // `child` is dropped without waiting (std's Child neither waits nor
    // kills on drop); the process is reaped by `wait` below.
    drop(child);
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; the pid is our unreaped child, so it cannot have been reused.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    Ok(Running {
        pid,
        pidfd,
        start,
        what,
        report,
    })
}

impl Running {
    /// Sends `signal` to the child (it is not reaped yet, so the pid is
    /// still ours).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory effects; the pid is our unreaped child.
        unsafe { libc::kill(self.pid, signal) };
    }

    /// Waits for the child (killing it after `timeout`), returns its usage
    /// and whether it exited with status 0.
    pub fn wait(self, timeout: Duration) -> Result<Usage, String> {
        let deadline = self.start + timeout;
        let mut killed = false;
        if self.pidfd >= 0 {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let mut pfd = libc::pollfd {
                    fd: self.pidfd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ms = left.as_millis().min(i32::MAX as u128) as libc::c_int;
                // SAFETY: one valid pollfd, count 1.
                let n = unsafe { libc::poll(&mut pfd, 1, ms) };
                if n > 0 {
                    break;
                }
                if n == 0 {
                    self.signal(libc::SIGKILL);
                    killed = true;
                    break;
                }
                if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                    break;
                }
            }
        }
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain data; zeroed is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = loop {
            // SAFETY: valid pointers to a status int and a rusage.
            let r = unsafe { libc::wait4(self.pid, &mut status, 0, &mut ru) };
            if r >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break r;
            }
        };
        let wall = self.start.elapsed().as_secs_f64();
        if self.pidfd >= 0 {
            // SAFETY: our own descriptor, closed once.
            unsafe { libc::close(self.pidfd) };
        }
        if r < 0 {
            return Err(format!(
                "wait4 for {}: {}",
                self.what,
                std::io::Error::last_os_error()
            ));
        }
        if killed {
            return Err(format!(
                "{} did not finish within {} s: killed",
                self.what,
                timeout.as_secs()
            ));
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        let maxrss_kib = std::fs::read_to_string(&self.report)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                format!(
                    "{}: the launcher wrote no peak RSS to {}",
                    self.what,
                    self.report.display()
                )
            })?;
        let usage = Usage {
            wall,
            cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
            maxrss_kib,
        };
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            Ok(usage)
        } else if libc::WIFEXITED(status) {
            Err(format!(
                "{} exited with status {}",
                self.what,
                libc::WEXITSTATUS(status)
            ))
        } else {
            Err(format!(
                "{} killed by signal {}",
                self.what,
                libc::WTERMSIG(status)
            ))
        }
    }
}

/// Total size of the files under `dir` (recursively), bytes.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The launcher, compiled once into a scratch directory.
    fn launcher() -> PathBuf {
        static BUILT: OnceLock<PathBuf> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                let dir = std::env::temp_dir()
                    .join(format!("asmalloc-bench-measure-{}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                let out = dir.join("launch");
                let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/launch.c");
                let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
                let status = Command::new(cc)
                    .arg("-O2")
                    .arg(&src)
                    .arg("-o")
                    .arg(&out)
                    .status();
                assert!(
                    status.is_ok_and(|s| s.success()),
                    "cc {} (Debian package gcc)",
                    src.display()
                );
                set_launcher(out.clone());
                out
            })
            .clone()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = launcher().parent().unwrap().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn peak_rss_is_the_commands_not_the_suites() {
        let dir = scratch("rss");
        // This process grows to 64 MiB resident; the command stays small.
        let big = vec![1u8; 64 << 20];
        let touched: u64 = big.iter().step_by(4096).map(|&b| u64::from(b)).sum();
        assert_eq!(touched, (64 << 20) / 4096);
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 0"]);
        let u = spawn(&mut cmd, None, &dir.join("out"), &dir.join("err"))
            .unwrap()
            .wait(Duration::from_secs(60))
            .unwrap();
        assert!(
            u.maxrss_kib > 0 && u.maxrss_kib < 16 << 10,
            "{} KiB",
            u.maxrss_kib
        );
        drop(big);
    }

    #[test]
    fn the_preload_and_the_exit_status_reach_the_command() {
        let dir = scratch("env");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "printf %s \"$LD_PRELOAD\"; exit 3"])
            .env("LD_PRELOAD", "");
        let r = spawn(&mut cmd, None, &dir.join("out"), &dir.join("err"))
            .unwrap()
            .wait(Duration::from_secs(60));
        assert!(
            r.as_ref()
                .is_err_and(|e| e.contains("exited with status 3")),
            "{r:?}"
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "printf %s \"$LD_PRELOAD\""])
            .env("LD_PRELOAD", "libc.so.6");
        spawn(&mut cmd, None, &dir.join("out"), &dir.join("err"))
            .unwrap()
            .wait(Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("out")).unwrap(),
            "libc.so.6"
        );
    }
}
