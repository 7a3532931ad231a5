//! Running a program's commands for the battery: one [`Ctx`] per run
//! (plain, or under one library), with a fixed environment, each command's
//! stdout and stderr in files, and what is compared recorded as it goes.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use asmalloc_test_support::Lib;

use crate::Mode;
use crate::fixture;
use crate::normalise::{keep, replace_number};

/// Where the battery looks for tools, and the PATH its programs run with:
/// Debian's own directories first.
pub const SEARCH_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin:/usr/local/sbin";

pub fn which(tool: &str) -> Option<PathBuf> {
    SEARCH_PATH
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// How long one command may take before it is killed.
fn command_timeout(mode: Mode) -> Duration {
    Duration::from_secs(mode.pick(120, 1200))
}

/// Options of [`Ctx::exec`].
pub struct Exec {
    /// The exit status the command must have without the preload.
    pub expect: i32,
    pub stdin: Option<PathBuf>,
    /// Stdout goes to this file of the work directory (an output file)
    /// instead of being compared as text.
    pub stdout_to: Option<String>,
    /// Applied to stdout and stderr before they are compared.
    pub norm: fn(&str) -> String,
}

impl Default for Exec {
    fn default() -> Self {
        Exec {
            expect: 0,
            stdin: None,
            stdout_to: None,
            norm: keep,
        }
    }
}

impl Exec {
    pub fn to_file(path: &str) -> Exec {
        Exec {
            stdout_to: Some(path.into()),
            ..Exec::default()
        }
    }
}

/// Whether a server's stdout is compared.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    Compare,
    /// A log with times and pids.
    Ignore,
}

/// What one run of a program produced (compared across runs).
#[derive(Default)]
pub struct Capture {
    /// Each command's label and exit status, in order.
    pub statuses: Vec<String>,
    /// Each command's normalized stdout, under its label.
    pub stdout: String,
    /// Each command's normalized stderr, less `asmalloc:` lines.
    pub stderr: String,
}

pub struct Shared {
    pub root: PathBuf,
    pub inputs: PathBuf,
    /// Compiled helper programs and plugins (or why they failed to build).
    pub bins: BTreeMap<&'static str, Result<PathBuf, String>>,
    pub libs: BTreeMap<&'static str, PathBuf>,
    pub html_files: usize,
}

/// One run of one program: plain, or under one library.
pub struct Ctx<'a> {
    /// The work directory: the same path for every run of a program.
    pub dir: PathBuf,
    /// Each command's stdout and stderr files.
    pub logs: PathBuf,
    pub lib: Option<Lib>,
    /// The library's settings (traced runs).
    pub env: Vec<(String, String)>,
    pub mode: Mode,
    pub shared: &'a Shared,
    pub ports: RefCell<Vec<u16>>,
    pub cap: RefCell<Capture>,
    pub seq: Cell<usize>,
}

/// Ports handed out so far (parallel programs never get the same one).
static PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A free loopback port (bound once to port 0, then released), never one
/// handed out before in this process.
pub fn reserve_port() -> Result<u16, String> {
    for _ in 0..100 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        drop(l);
        let mut used = PORTS.lock().unwrap();
        if used.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err("no free port".into())
}

impl Ctx<'_> {
    pub fn input(&self, name: &str) -> PathBuf {
        self.shared.inputs.join(name)
    }

    pub fn bin(&self, name: &str) -> Result<PathBuf, String> {
        match self.shared.bins.get(name) {
            Some(Ok(p)) => Ok(p.clone()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("no helper program {name}")),
        }
    }

    pub fn write(&self, rel: &str, data: &[u8]) -> Result<(), String> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn copy_fixture_dir(&self, name: &str, to: &str) -> Result<(), String> {
        copy_dir(&fixture(name), &self.dir.join(to))
    }

    /// A free loopback port ([`reserve_port`]), replaced by `<port>` in
    /// what is compared.
    pub fn free_port(&self) -> Result<u16, String> {
        let port = reserve_port()?;
        self.ports.borrow_mut().push(port);
        Ok(port)
    }

    /// A command for `tool` in the work directory ([`command`]), plus the
    /// library's settings in a traced run.
    pub fn cmd(&self, tool: &str) -> Command {
        let mut c = command(tool, &self.dir);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn next_log(&self, label: &str) -> (PathBuf, PathBuf) {
        let n = self.seq.get();
        self.seq.set(n + 1);
        let slug: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        (
            self.logs.join(format!("{n:02}-{slug}.out")),
            self.logs.join(format!("{n:02}-{slug}.err")),
        )
    }

    /// Replaces this run's ports (which differ between runs) by `<port>`.
    pub fn unport(&self, s: &str) -> String {
        let mut s = s.to_string();
        for p in self.ports.borrow().iter() {
            s = replace_number(&s, &p.to_string(), "<port>");
        }
        s
    }

    /// Records a finished command: status, stdout (unless it went to a
    /// file) and stderr less the library's lines. Without the preload a
    /// status other than `expect` is an error of the battery itself.
    pub fn record(
        &self,
        label: &str,
        status: ExitStatus,
        out: Option<&Path>,
        err: &Path,
        expect: i32,
        norm: fn(&str) -> String,
    ) -> Result<(), String> {
        let status_s = describe_status(status);
        let stdout = out
            .map(|p| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned())
            .unwrap_or_default();
        let stderr_raw = String::from_utf8_lossy(&fs::read(err).unwrap_or_default()).into_owned();
        let stderr: String = stderr_raw
            .lines()
            .filter(|l| !l.starts_with("asmalloc:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut cap = self.cap.borrow_mut();
        cap.statuses.push(format!("{label}: {status_s}"));
        let _ = write!(cap.stdout, "== {label}\n{}", self.unport(&norm(&stdout)));
        let _ = write!(cap.stderr, "== {label}\n{}", self.unport(&norm(&stderr)));
        if self.lib.is_none() && status.code() != Some(expect) {
            return Err(format!(
                "{label}: {status_s} without the preload (expected exit {expect}); stderr:\n{}",
                tail(&stderr_raw, 20)
            ));
        }
        Ok(())
    }

    /// Runs a command to completion, expecting exit status 0 without the
    /// preload.
    pub fn run(&self, label: &str, cmd: Command) -> Result<(), String> {
        self.exec(label, cmd, Exec::default())
    }

    pub fn exec(&self, label: &str, mut cmd: Command, opts: Exec) -> Result<(), String> {
        let (out, err) = self.next_log(label);
        let out = match &opts.stdout_to {
            Some(rel) => self.dir.join(rel),
            None => out,
        };
        cmd.stdout(file_create(&out)?).stderr(file_create(&err)?);
        match &opts.stdin {
            Some(p) => cmd.stdin(fs::File::open(p).map_err(|e| e.to_string())?),
            None => cmd.stdin(Stdio::null()),
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{label}: cannot start: {e}"))?;
        let status = wait_timeout(&mut child, command_timeout(self.mode)).ok_or_else(|| {
            format!(
                "{label}: still running after {:?}: killed",
                command_timeout(self.mode)
            )
        })?;
        let compared_out = if opts.stdout_to.is_some() {
            None
        } else {
            Some(out.as_path())
        };
        self.record(label, status, compared_out, &err, opts.expect, opts.norm)
    }
}

/// A command for `tool` (a name looked up in [`SEARCH_PATH`], or a
/// path), in `dir`, with the battery's fixed environment (`HOME` and
/// `TMPDIR` are `dir/.home` and `dir/.tmp`, which must exist), in a process
/// group of its own.
pub fn command(tool: &str, dir: &Path) -> Command {
    let exe = if tool.contains('/') {
        PathBuf::from(tool)
    } else {
        which(tool).unwrap_or_else(|| PathBuf::from(tool))
    };
    let mut c = Command::new(exe);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", SEARCH_PATH)
        .env("HOME", dir.join(".home"))
        .env("TMPDIR", dir.join(".tmp"))
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env("PYTHONHASHSEED", "0")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PERL_HASH_SEED", "0")
        .env("PERL_PERTURB_KEYS", "0")
        // Its own process group: a timeout or a failed test kills
        // every process it started.
        .process_group(0);
    // SAFETY: prctl(2) is async-signal-safe and touches no memory of
    // ours; the closure runs in the child between fork and exec.
    unsafe {
        // If the test itself is killed (no destructors run), the
        // command goes too: PR_SET_PDEATHSIG fires when the thread that
        // started it exits, and each program's runs stay on one thread.
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    c
}

pub fn kill_group(pid: u32) {
    // SAFETY: kill(2) with a negative pid signals the process group that a
    // child we started leads (we gave it its own group); no memory is
    // involved.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            kill_group(child.id());
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!(
            "killed by signal {s}{}",
            if status.core_dumped() {
                " (core dumped)"
            } else {
                ""
            }
        ),
        _ => format!("{status}"),
    }
}

pub fn file_create(p: &Path) -> Result<fs::File, String> {
    fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for e in fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let target = to.join(e.file_name());
        if e.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            fs::copy(e.path(), &target).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Every regular file below `dir`, as paths relative to `base`.
pub fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(base, &p, out),
            Ok(t) if t.is_file() => {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned())
            }
            _ => {}
        }
    }
}

/// The output files a program's patterns name, with their contents.
pub fn collect_outputs(dir: &Path, patterns: &[&str]) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut unmatched = Vec::new();
    for pat in patterns {
        let mut found = Vec::new();
        if let Some(d) = pat.strip_suffix('/') {
            walk(dir, &dir.join(d), &mut found);
        } else if let Some((d, ext)) = pat.rsplit_once("*") {
            let mut all = Vec::new();
            walk(dir, &dir.join(d), &mut all);
            found.extend(all.into_iter().filter(|f| {
                f.ends_with(ext)
                    && Path::new(f).parent() == Some(Path::new(d.trim_end_matches('/')))
            }));
        } else if dir.join(pat).is_file() {
            found.push(pat.to_string());
        }
        if found.is_empty() {
            unmatched.push(pat.to_string());
        }
        for f in found {
            let data = fs::read(dir.join(&f)).unwrap_or_default();
            files.insert(f, data);
        }
    }
    (files, unmatched)
}
