//! Running one child process and measuring it: wall time, CPU time
//! (user + sys) and peak RSS from `wait4` (the child and the descendants it
//! waited for), with a timeout that kills it.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Seconds from spawn to reaping.
    pub wall: f64,
    /// User + system CPU seconds of the child (and its waited-for
    /// descendants).
    pub cpu: f64,
    /// Peak resident set size, KiB (`ru_maxrss`: the largest of the child
    /// and its waited-for descendants).
    pub maxrss_kib: u64,
}

/// A spawned child, reaped with [`Running::wait`].
pub struct Running {
    pid: libc::pid_t,
    pidfd: libc::c_int,
    start: Instant,
    what: String,
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
        let usage = Usage {
            wall,
            cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
            maxrss_kib: ru.ru_maxrss as u64,
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
