//! The monitor: samples every site at an interval, runs the progressive leak
//! detector, writes the JSON-lines log, and announces verdicts.
//!
//! One monitor per process, installed with [`install`]. Samples come from a
//! thread started with [`start_thread`] (Rust programs), from the LD_PRELOAD
//! library's reporter thread, and from every [`sample_now`] call (`asm_hook`
//! in C programs). All of it runs off the allocation path: a sample takes a
//! snapshot (reading every thread's table), so it allocates and takes the
//! monitor's lock.
//!
//! # The log
//!
//! One JSON object per line, appended with a single `write(2)` per line so
//! `tail -f` and concurrent writers (a forked child) never see a torn line.
//! Lines are bounded: at most `max_sites` sites each (those whose net bytes
//! changed most; a site whose calls alone changed comes last), with `sites_truncated` counting the rest. Schema, version 1
//! (fields are only ever added):
//!
//! ```text
//! {"v":1, "pid":i32, "seq":u64, "time_ns":i64,
//!  "net_bytes":i64, "net_count":i64, "net_mapped":i64, "net_shm":i64,
//!  "threads":{"live":u64,"total":u64},
//!  "sites":[{"id":u16,"type":str,"file":str,"line":u32,"function":str,
//!            "net_bytes":i64,"net_count":i64,
//!            "allocs":u64,"alloc_bytes":u64,
//!            "peak_bytes":i64}],                      // changed since the last line
//!  "sites_truncated":u64,
//!  "verdicts":[{"kind":"possible_leak"|"still_growing"|"never_mind",
//!               "id":u16,"type":str,"file":str,"line":u32,"function":str,
//!               "net_bytes":i64,"growth_bytes":i64,"over_ns":i64,
//!               "rate_bytes_per_s":i64}]}
//! ```
//! The first line of a process lists every active site.
//! With sampled stacks on (`ASMALLOC_SAMPLE_BYTES`)
//! a line also carries `"stacks":[{"id":u16,"site":u16,"est_bytes":i64,
//! "est_blocks":i64,"frames":[{"addr":u64,"function":str,"file":str,
//! "line":u32}]}]` and `"stacks_truncated":u64` whenever the list moved
//! ([`crate::stacks::log::for_log`]: live stacks only, at most
//! [`log_format::MAX_LOG_STACKS`]).
//!
//! # Metrics
//!
//! With `ASMALLOC_METRICS_FILE` or `ASMALLOC_METRICS_ADDR` set, every
//! sample is also published for Prometheus ([`crate::metrics`]): the
//! textfile is rewritten and the endpoint serves the new numbers. The
//! monitor's lock is taken before the metrics' one, never the other way.

use std::collections::HashMap;
use std::ffi::c_void;
use std::fs::File;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::sync::atomic::AtomicU64;

use crate::config::{ConfigError, parse_duration_ms, parse_size};
use crate::detector::{Detector, DetectorConfig, Verdict, VerdictKind};
use crate::log_format::{self, LogLine, LogSite, LogSiteName, LogThreads, LogVerdict};
use crate::metrics::{self, Exporter, MetricsConfig};
use crate::report::{self, human_bytes};
use crate::site;
use crate::snapshot::{SiteStats, Snapshot};

/// Monitor settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// Detector sensitivity.
    pub detector: DetectorConfig,
    /// Where the JSON-lines log goes (`%p` is replaced by the pid); `None`
    /// for no log.
    pub log_path: Option<String>,
    /// At most this many sites per log line.
    pub max_sites: usize,
    /// Prometheus metrics to publish at every sample, if any.
    pub metrics: Option<MetricsConfig>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            detector: DetectorConfig::DEFAULT,
            log_path: None,
            max_sites: 256,
            metrics: None,
        }
    }
}

/// The monitor's state.
#[derive(Debug)]
pub struct Monitor {
    detector: Detector,
    log: Option<File>,
    max_sites: usize,
    last: HashMap<u16, (i64, i64, u64)>,
    seq: u64,
    exporter: Option<Exporter>,
}

impl Monitor {
    /// A monitor; opens (appends to) the log if one is configured, safely
    /// (see [`open_append_private`]: a new log is created `0600`, a symbolic
    /// link or a file of another user is refused).
    pub fn new(config: MonitorConfig) -> io::Result<Monitor> {
        let log =
            match &config.log_path {
                Some(path) => {
                    // `%p` becomes the process id: digits only, so it can never
                    // make the path reach anywhere else (`..`, `/`).
                    let path = path.replace("%p", &std::process::id().to_string());
                    Some(open_append_private(&path).map_err(|e| {
                        io::Error::new(e.kind(), format!("asmalloc: log {path}: {e}"))
                    })?)
                }
                None => None,
            };
        // The endpoint has numbers to serve from the start, not only
        // after the first interval.
        let exporter = config.metrics.as_ref().map(|m| {
            let mut e = Exporter::new(m);
            e.publish(&Snapshot::take(), None, 0, 0);
            e
        });
        Ok(Monitor {
            detector: Detector::new(config.detector),
            log,
            max_sites: config.max_sites.max(1),
            last: HashMap::new(),
            seq: 0,
            exporter,
        })
    }

    /// Feeds one snapshot: runs the detector, raises the sites' peaks
    /// ([`crate::peaks`]), writes a log line, publishes the metrics, returns
    /// the verdicts.
    pub fn observe(&mut self, snap: &Snapshot) -> Vec<Verdict> {
        self.observe_taken(snap, std::time::Instant::now())
    }

    /// [`Monitor::observe`] for a snapshot whose taking began at `started`:
    /// the metrics say how long the sample took (measured with the precise
    /// clock: the runtime's coarse one ticks every few milliseconds).
    fn observe_taken(&mut self, snap: &Snapshot, started: std::time::Instant) -> Vec<Verdict> {
        let verdicts = self.detector.observe(
            snap.elapsed_ns,
            snap.sites.iter().map(|s| (s.id, s.net_bytes)),
        );
        crate::peaks::record(snap.sites.iter().map(|s| (s.id, s.net_bytes)));
        if let Some(log) = &mut self.log {
            let line = log_line(snap, &mut self.last, self.max_sites, self.seq, &verdicts);
            // One write per line: appends from several writers stay whole.
            let _ = log.write_all(&line);
        }
        self.seq += 1;
        if let Some(exporter) = &mut self.exporter {
            let took = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
            let leaking = self.detector.leaking().len();
            exporter.publish(snap, Some(&verdicts), took, leaking);
        }
        verdicts
    }

    /// Sites currently judged possible leaks.
    pub fn leaking(&self) -> Vec<u16> {
        self.detector.leaking()
    }
}

/// Why [`open_append_private`] would not write to a file: the inner
/// value of its `PermissionDenied` error.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn refused(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, Refused(why))
}

/// The process's effective user id (from `/proc/self/status`), if known.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether the file `m` describes may be written to (appended to) by a
/// process of user `euid`: an error saying why not.
fn writable_here(m: &std::fs::Metadata, euid: Option<u32>) -> io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let t = m.file_type();
    let not_ours = |what: &str| match euid {
        Some(me) if m.uid() != me => Err(refused(format!(
            "refusing to write to it: it is {what} of uid {}, not of this process's user (uid {me})",
            m.uid()
        ))),
        _ => Ok(()),
    };
    if t.is_symlink() {
        Err(refused(
            "refusing to write through it: it is a symbolic link".into(),
        ))
    } else if t.is_file() {
        not_ours("a file")?;
        if m.nlink() > 1 {
            return Err(refused(format!(
                "refusing to write to it: it has {} hard links",
                m.nlink()
            )));
        }
        Ok(())
    } else if t.is_fifo() || t.is_socket() {
        not_ours("a FIFO or socket")
    } else if t.is_char_device() {
        // /dev/null, a terminal: only the superuser can make one.
        Ok(())
    } else {
        Err(refused(
            "refusing to write to it: it is not a file, FIFO or character device".into(),
        ))
    }
}

/// Opens `path` for appending the way a log or report file must be opened
/// in a directory others can write to (`/tmp`): never through a symbolic
/// link (`O_NOFOLLOW`), a new file created with `O_CREAT | O_EXCL` and mode
/// `0600` (less if the umask says so), an existing one appended to only if
/// it is a regular file of this process's effective user with one link (a
/// FIFO or socket of that user, or a character device such as
/// `/dev/null`, is written to as well). Anything else is refused: an error
/// of kind `PermissionDenied` whose inner value is [`Refused`], saying why
/// in a few words. The file is looked at before it is opened, so a FIFO
/// planted by someone else is refused without blocking in `open`; what is
/// opened is checked again.
pub fn open_append_private(path: &str) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let euid = effective_uid();
    match std::fs::symlink_metadata(path) {
        Ok(m) => writable_here(&m, euid)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Twice: the file may appear (or go) between the two opens.
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(path)
        {
            Ok(file) => {
                writable_here(&file.metadata()?, euid)?;
                return Ok(file);
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(refused(
                    "refusing to write through it: it is a symbolic link".into(),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(path)
        {
            Ok(file) => return Ok(file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(refused(
        "refusing to write to it: it keeps being replaced while opened".into(),
    ))
}

fn site_name(id: u16) -> LogSiteName {
    match site::describe(id) {
        Some(i) if id != 0 => LogSiteName {
            type_name: i.type_name.to_string(),
            file: i.file.to_string(),
            line: i.line,
            function: i.function.to_string(),
        },
        _ => LogSiteName::default(),
    }
}

fn log_line(
    snap: &Snapshot,
    last: &mut HashMap<u16, (i64, i64, u64)>,
    max_sites: usize,
    seq: u64,
    verdicts: &[Verdict],
) -> Vec<u8> {
    let mut changed: Vec<(&SiteStats, i64)> = snap
        .sites
        .iter()
        .filter_map(|s| {
            let prev = last.get(&s.id).copied();
            (prev != Some((s.net_bytes, s.net_count, s.allocs))).then(|| {
                let moved = (s.net_bytes - prev.map_or(0, |p| p.0)).abs();
                (s, moved)
            })
        })
        .collect();
    changed.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.id.cmp(&b.0.id)));
    let truncated = changed.len().saturating_sub(max_sites);
    changed.truncate(max_sites);
    for &(s, _) in &changed {
        last.insert(s.id, (s.net_bytes, s.net_count, s.allocs));
    }
    changed.sort_by_key(|c| c.0.id);
    let (stacks, stacks_truncated) = crate::stacks::log::for_log();
    LogLine {
        v: log_format::VERSION,
        pid: i64::from(std::process::id()),
        seq,
        time_ns: snap.time_ns,
        net_bytes: snap.net_bytes,
        net_count: snap.net_count,
        net_mapped: snap.net_mapped,
        net_shm: snap.net_shm,
        threads: LogThreads {
            live: snap.threads_live,
            total: snap.threads_total,
        },
        sites: changed
            .iter()
            .map(|&(s, _)| LogSite {
                id: s.id,
                name: site_name(s.id),
                net_bytes: s.net_bytes,
                net_count: s.net_count,
                allocs: s.allocs,
                alloc_bytes: s.alloc_bytes,
                peak_bytes: crate::peaks::peak(s.id).max(s.net_bytes),
            })
            .collect(),
        sites_truncated: truncated as u64,
        verdicts: verdicts
            .iter()
            .map(|v| LogVerdict {
                kind: v.kind.name().to_string(),
                id: v.site,
                name: site_name(v.site),
                net_bytes: v.net_bytes,
                growth_bytes: v.growth_bytes,
                over_ns: v.over_ns,
                rate_bytes_per_s: v.rate_bytes_per_s,
            })
            .collect(),
        stacks,
        stacks_truncated,
    }
    .to_json_line()
}

/// One verdict as a line of text, naming the site (as
/// [`crate::report::site_label`] does); every growth is shown with the span
/// it was measured over and its rate, which is that growth over that span:
/// `asmalloc: possible progressive leak: site 7 (cache) src/cache.rs:52 Cache::insert grew by 30.2 MiB over 38 s (813.8 KiB/s); now 31.0 MiB`.
pub fn verdict_text(v: &Verdict) -> String {
    let name = match site::describe(v.site) {
        Some(i) => report::site_label(v.site, i.type_name, i.file, i.line, i.function),
        None => report::site_label(v.site, "", "", 0, ""),
    };
    let growth = report::growth_text(v.growth_bytes, v.over_ns, v.rate_bytes_per_s);
    let now = human_bytes(v.net_bytes);
    // With sampled stacks, the site's largest live path: where to look
    // when the site alone says little (site 0 of a Rust program).
    let path = || {
        crate::stacks::log::largest_path_of(v.site, 3)
            .map_or_else(String::new, |p| format!("; largest sampled path: {p}"))
    };
    match v.kind {
        VerdictKind::PossibleLeak => format!(
            "asmalloc: possible progressive leak: {name} grew by {growth}; now {now}{}\n",
            path()
        ),
        VerdictKind::StillGrowing => format!(
            "asmalloc: still growing: {name} has grown by {growth}; now {now}{}\n",
            path()
        ),
        VerdictKind::NeverMind => format!(
            "asmalloc: never mind: {name} {}; now {now}\n",
            report::never_mind_text(v.growth_bytes, v.reported_growth_bytes)
        ),
    }
}

// ---------------------------------------------------------------------------
// Settings from the environment (shared by Rust programs and the preload).

static SAMPLE_MS: AtomicU64 = AtomicU64::new(0);
static LOG_PATH: Mutex<Option<String>> = Mutex::new(None);
static LEAK_THRESHOLD: AtomicU64 = AtomicU64::new(DetectorConfig::DEFAULT.threshold_bytes);
static LEAK_WINDOW_MS: AtomicU64 =
    AtomicU64::new((DetectorConfig::DEFAULT.window_ns / 1_000_000) as u64);
static LEAK_MIN_SAMPLES: AtomicUsize = AtomicUsize::new(DetectorConfig::DEFAULT.min_samples);

/// The monitor's settings in the environment, with the accepted form of
/// each (for error messages and `--help`); the whole list is
/// [`crate::env::ENV_VARS`].
pub const MONITOR_VARS: [(&str, &str); 5] = [
    (
        "ASMALLOC_SAMPLE_INTERVAL",
        "a duration with optional ms, s, m or h suffix (seconds by default), e.g. 1s; 0 or off \
         disables the leak monitor",
    ),
    (
        "ASMALLOC_LOG",
        "a file path for the JSON-lines log (%p is replaced by the process id)",
    ),
    (
        "ASMALLOC_LEAK_THRESHOLD",
        "bytes with optional K/M/G suffix, more than 0 (default 4M)",
    ),
    (
        "ASMALLOC_LEAK_WINDOW",
        "a duration with optional ms, s, m or h suffix, more than 0 (default 30s)",
    ),
    (
        "ASMALLOC_LEAK_MIN_SAMPLES",
        "a number of samples, at least 4 (default 6)",
    ),
];

/// Applies one of the monitor's `ASMALLOC_*` variables ([`MONITOR_VARS`]);
/// `Ok(false)` for a name it does not own.
pub fn apply_setting(name: &str, value: &str) -> Result<bool, ConfigError> {
    match name {
        "ASMALLOC_SAMPLE_INTERVAL" => {
            let ms = match value.trim() {
                "off" | "0" => 0,
                v => parse_duration_ms(v)?,
            };
            SAMPLE_MS.store(ms, Ordering::Relaxed);
        }
        "ASMALLOC_LOG" => {
            let v = value.trim();
            if v.is_empty() || v.contains('\0') {
                return Err(ConfigError::OutOfRange(
                    "an empty path or a NUL byte".into(),
                ));
            }
            *LOG_PATH.lock().unwrap_or_else(|e| e.into_inner()) = Some(v.to_string());
        }
        "ASMALLOC_LEAK_THRESHOLD" => match parse_size(value)? {
            0 => {
                return Err(ConfigError::OutOfRange(
                    "a threshold of 0 calls everything a leak".into(),
                ));
            }
            n => LEAK_THRESHOLD.store(n as u64, Ordering::Relaxed),
        },
        "ASMALLOC_LEAK_WINDOW" => match parse_duration_ms(value)? {
            0 => {
                return Err(ConfigError::OutOfRange(
                    "the window must be longer than 0".into(),
                ));
            }
            ms => LEAK_WINDOW_MS.store(ms, Ordering::Relaxed),
        },
        "ASMALLOC_LEAK_MIN_SAMPLES" => {
            let n: usize = value
                .trim()
                .parse()
                .ok()
                .filter(|&n| n >= 4)
                .ok_or_else(|| {
                    ConfigError::OutOfRange(format!("'{value}' is not a number of at least 4"))
                })?;
            LEAK_MIN_SAMPLES.store(n, Ordering::Relaxed);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The monitor the settings ask for: its sampling interval and config, or
/// `None` when it is off (no `ASMALLOC_SAMPLE_INTERVAL`, no `ASMALLOC_LOG`
/// and no metrics; with only a log or metrics, samples are taken every
/// 5 s).
pub fn configured() -> Option<(Duration, MonitorConfig)> {
    let log_path = LOG_PATH.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let metrics = metrics::configured();
    let ms = match SAMPLE_MS.load(Ordering::Relaxed) {
        0 if log_path.is_some() || metrics.is_some() => 5_000,
        0 => return None,
        ms => ms,
    };
    let window_ms = LEAK_WINDOW_MS.load(Ordering::Relaxed);
    Some((
        Duration::from_millis(ms),
        MonitorConfig {
            detector: DetectorConfig {
                threshold_bytes: LEAK_THRESHOLD.load(Ordering::Relaxed),
                window_ns: i64::try_from(window_ms)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000),
                min_samples: LEAK_MIN_SAMPLES.load(Ordering::Relaxed),
                ..DetectorConfig::DEFAULT
            },
            log_path,
            metrics,
            ..MonitorConfig::default()
        },
    ))
}

/// Installs the monitor the settings ask for and starts its sampling
/// thread (Rust programs; [`crate::env::configure_from_env`] calls it).
/// Does nothing when the monitor is off or already installed.
pub fn start_from_settings() -> io::Result<()> {
    let Some((interval, config)) = configured() else {
        return Ok(());
    };
    if installed() {
        return Ok(());
    }
    install(config)?;
    start_thread(interval)?;
    start_metrics_endpoint(|| false)
}

/// Opens the metrics endpoint if `ASMALLOC_METRICS_ADDR` asks for one and
/// serves it on a thread of its own (signals blocked, its allocations the
/// library's own) until `stop()` says so. For Rust programs; the LD_PRELOAD
/// library starts its own thread the same way.
pub fn start_metrics_endpoint(stop: fn() -> bool) -> io::Result<()> {
    let Some(listener) = metrics::open_endpoint() else {
        return Ok(());
    };
    crate::sys::with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("asmalloc-metrics".into())
            .spawn(move || {
                crate::engine::set_library_work(true);
                metrics::serve(listener, stop);
                crate::engine::set_library_work(false);
            })
            .map(|_| ())
    })
}

// ---------------------------------------------------------------------------
// The process's monitor and the verdict callback.

static MONITOR: Mutex<Option<Monitor>> = Mutex::new(None);

#[allow(unsafe_code)]
mod fork_lock;

/// The monitor's lock, held by the forking thread across `fork` (see
/// [`before_fork`]): a `static` slot, not a thread-local (no TLS
/// destructor on the fork path; see `monitor/fork_lock.rs`).
static HELD_ACROSS_FORK: fork_lock::HeldAcrossFork<Option<Monitor>> =
    fork_lock::HeldAcrossFork::new();

/// Call just before `fork` (a `pthread_atfork` prepare handler): takes the
/// monitor's lock so the child never inherits it held by a thread that does
/// not exist there (the sampling thread), nor a monitor half-updated.
pub fn before_fork() {
    HELD_ACROSS_FORK.hold(&MONITOR);
    // Then the metrics' lock (the endpoint's thread takes it on its own).
    metrics::before_fork();
}

/// Call right after `fork`, in the parent and in the child (the `parent` and
/// `child` handlers): releases the lock [`before_fork`] took.
pub fn after_fork() {
    metrics::after_fork();
    HELD_ACROSS_FORK.release();
}

/// `void cb(uint32_t kind, uint16_t loc, int64_t net_bytes, int64_t growth_bytes,
///          int64_t over_ns, int64_t rate_bytes_per_s, void *udata)`;
/// kind 0 = possible leak, 1 = still growing, 2 = never mind.
pub type VerdictCallback = extern "C" fn(
    kind: u32,
    loc: u16,
    net_bytes: i64,
    growth_bytes: i64,
    over_ns: i64,
    rate_bytes_per_s: i64,
    user_data: *mut c_void,
);

static VERDICT_CALLBACK: crate::callback_cell::CallbackCell<VerdictCallback> =
    crate::callback_cell::CallbackCell::new();

/// Sets (or clears) the function called for every verdict.
pub fn set_verdict_callback(callback: Option<VerdictCallback>, user_data: *mut c_void) {
    VERDICT_CALLBACK.set(callback, user_data);
}

fn call_verdict_callback(v: &Verdict) {
    let Some((f, user_data)) = VERDICT_CALLBACK.get() else {
        return;
    };
    let kind = match v.kind {
        VerdictKind::PossibleLeak => 0,
        VerdictKind::StillGrowing => 1,
        VerdictKind::NeverMind => 2,
    };
    f(
        kind,
        v.site,
        v.net_bytes,
        v.growth_bytes,
        v.over_ns,
        v.rate_bytes_per_s,
        user_data,
    );
}

/// Installs the process's monitor (replacing one installed before).
pub fn install(config: MonitorConfig) -> io::Result<()> {
    let monitor = Monitor::new(config)?;
    *MONITOR.lock().unwrap_or_else(|e| e.into_inner()) = Some(monitor);
    Ok(())
}

/// True once [`install`] succeeded.
pub fn installed() -> bool {
    MONITOR.lock().unwrap_or_else(|e| e.into_inner()).is_some()
}

/// Takes a sample now if a monitor is installed: returns the verdicts as
/// text lines (already passed to the verdict callback); empty otherwise.
pub fn sample_now() -> String {
    let mut guard = MONITOR.lock().unwrap_or_else(|e| e.into_inner());
    let Some(monitor) = guard.as_mut() else {
        return String::new();
    };
    // Modules loaded since the last sample: their wrappers and unwind
    // tables (under the monitor's lock, which a fork waits for, so a child
    // never inherits the stack walk's lock held).
    crate::stacks::refresh_modules();
    let started = std::time::Instant::now();
    let snap = Snapshot::take();
    let verdicts = monitor.observe_taken(&snap, started);
    drop(guard);
    crate::pprof::write(&snap);
    let mut text = String::new();
    for v in &verdicts {
        call_verdict_callback(v);
        text.push_str(&verdict_text(v));
    }
    text
}

/// Sites the installed monitor currently judges possible leaks.
pub fn leaking() -> Vec<u16> {
    MONITOR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or_else(Vec::new, Monitor::leaking)
}

/// Starts a thread that calls [`sample_now`] every `interval` and writes
/// verdicts to stderr. The thread blocks every signal (they stay the
/// program's), and what it allocates is the library's own (an own tag in
/// [`crate::AsmAlloc`], never charged to a site). For Rust programs; the
/// LD_PRELOAD library runs its own reporter thread.
pub fn start_thread(interval: Duration) -> io::Result<()> {
    crate::sys::with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("asmalloc-monitor".into())
            .spawn(move || {
                crate::engine::set_library_work(true);
                loop {
                    std::thread::sleep(interval);
                    let text = sample_now();
                    if !text.is_empty() {
                        let _ = io::stderr().write_all(text.as_bytes());
                    }
                }
            })
            .map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (kind, loc, net, growth, over, rate, user data) per call.
    type Seen = (u32, u16, i64, i64, i64, i64, usize);
    static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

    extern "C" fn record(
        kind: u32,
        loc: u16,
        net: i64,
        growth: i64,
        over: i64,
        rate: i64,
        user_data: *mut c_void,
    ) {
        SEEN.lock()
            .unwrap()
            .push((kind, loc, net, growth, over, rate, user_data as usize));
    }

    #[test]
    fn the_verdict_callback_gets_every_field() {
        set_verdict_callback(Some(record), 0x5eed as *mut c_void);
        for (kind, code) in [
            (VerdictKind::PossibleLeak, 0),
            (VerdictKind::StillGrowing, 1),
            (VerdictKind::NeverMind, 2),
        ] {
            call_verdict_callback(&Verdict {
                kind,
                site: 7,
                time_ns: 1,
                net_bytes: 100,
                growth_bytes: 60,
                over_ns: 30,
                rate_bytes_per_s: 2,
                reported_growth_bytes: 0,
            });
            assert_eq!(
                SEEN.lock().unwrap().pop(),
                Some((code, 7, 100, 60, 30, 2, 0x5eed))
            );
        }
        set_verdict_callback(None, std::ptr::null_mut());
        call_verdict_callback(&Verdict {
            kind: VerdictKind::NeverMind,
            site: 1,
            time_ns: 1,
            net_bytes: 0,
            growth_bytes: 0,
            over_ns: 0,
            rate_bytes_per_s: 0,
            reported_growth_bytes: 0,
        });
        assert!(SEEN.lock().unwrap().is_empty(), "cleared");
    }

    fn snap(time_s: i64, sites: &[(u16, i64)]) -> Snapshot {
        let mut s = Snapshot::take();
        s.time_ns = time_s * 1_000_000_000;
        s.elapsed_ns = s.time_ns;
        s.sites = sites
            .iter()
            .map(|&(id, b)| SiteStats {
                id,
                net_bytes: b,
                net_count: 1,
                ..SiteStats::default()
            })
            .collect();
        s
    }

    #[test]
    fn log_lines_list_changed_sites_bounded_and_verdicts() {
        let dir = std::env::temp_dir().join(format!("asmalloc-monitor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.jsonl");
        let mut m = Monitor::new(MonitorConfig {
            log_path: Some(path.to_string_lossy().into_owned()),
            max_sites: 2,
            ..MonitorConfig::default()
        })
        .unwrap();
        let mut verdicts = Vec::new();
        for t in 0..60 {
            verdicts.extend(m.observe(&snap(t, &[(1, 5), (2, t * 1_000_000), (3, 7), (4, 9)])));
        }
        assert_eq!(
            verdicts.first().map(|v| (v.site, v.kind)),
            Some((2, VerdictKind::PossibleLeak))
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 60);
        assert_eq!(lines[0]["sites"].as_array().unwrap().len(), 2, "bounded");
        assert_eq!(lines[0]["sites_truncated"], 2);
        // Later lines carry only what changed: site 2 (growing) and the
        // truncated ones catching up.
        assert_eq!(lines[10]["sites"].as_array().unwrap().len(), 1);
        assert_eq!(lines[10]["sites"][0]["id"], 2);
        let with_verdict: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| !l["verdicts"].as_array().unwrap().is_empty())
            .collect();
        assert_eq!(with_verdict[0]["verdicts"][0]["kind"], "possible_leak");
        assert_eq!(with_verdict[0]["verdicts"][0]["id"], 2);
        assert_eq!(m.leaking(), vec![2]);
        let t = verdict_text(&verdicts[0]);
        assert!(
            t.starts_with("asmalloc: possible progressive leak: site 2"),
            "{t}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
