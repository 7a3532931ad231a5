//! Metrics for Prometheus and node_exporter: the runtime's numbers in the
//! Prometheus text format (and OpenMetrics), published at every monitor
//! sample.
//!
//! Nothing here runs on the allocation path. The monitor, after each sample
//! ([`crate::monitor`]), hands the snapshot and its verdicts to the
//! [`Exporter`], which builds a [`Model`] (every exported site already
//! named), keeps it as the latest (for the HTTP endpoint) and, if asked,
//! writes it to the textfile ([`textfile`]). The endpoint ([`http`]) runs
//! on one library thread of its own and renders the latest model for each
//! scrape; a scrape never waits for a sample, and a sample never waits for
//! a scrape (they share one lock, held only to swap or clone an `Arc`).
//!
//! Both run on threads marked as the library's own work (the preload's
//! guard, `ThreadState::library_work`), so every allocation they make is
//! the library's, never charged to the program's sites.
//!
//! Settings: `ASMALLOC_METRICS_FILE` (the textfile; `%p` becomes the pid),
//! `ASMALLOC_METRICS_ADDR` (the endpoint; loopback unless another address is
//! given), `ASMALLOC_METRICS_TOP_SITES` (the bound on per-site series).
//! Either of the first two turns the monitor on (every 5 s unless
//! `ASMALLOC_SAMPLE_INTERVAL` says otherwise).

#[allow(unsafe_code)]
mod http;
mod model;
mod render;
mod textfile;

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use http::{MAX_CONNECTIONS, MAX_REQUEST, REQUEST_TIMEOUT, WRITE_TIMEOUT, answer};
pub use model::{History, MAX_VERDICT_SITES, Model, SiteRow};
pub use render::{Format, METRIC_NAMES, escape_label_value, render};
pub use textfile::write_atomically;

use crate::config::ConfigError;
use crate::detector::Verdict;
use crate::snapshot::Snapshot;

/// Per-site series by default: the top 50 sites by net bytes.
pub const DEFAULT_TOP_SITES: usize = 50;
/// The most `ASMALLOC_METRICS_TOP_SITES` may ask for.
pub const MAX_TOP_SITES: usize = 5000;

// ---------------------------------------------------------------------------
// Settings.

static FILE: Mutex<Option<String>> = Mutex::new(None);
static ADDR: Mutex<Option<SocketAddr>> = Mutex::new(None);
static TOP: AtomicUsize = AtomicUsize::new(DEFAULT_TOP_SITES);

/// The metrics settings in the environment, with the accepted form of each.
pub const METRICS_VARS: [(&str, &str); 3] = [
    (
        "ASMALLOC_METRICS_FILE",
        "a file path for the Prometheus textfile, rewritten atomically at every sample (%p is \
         replaced by the process id)",
    ),
    (
        "ASMALLOC_METRICS_ADDR",
        "an IP address and port to serve /metrics on, e.g. 127.0.0.1:9464 or [::1]:9464 \
         (a bare port means 127.0.0.1; localhost:PORT is 127.0.0.1; no host names)",
    ),
    (
        "ASMALLOC_METRICS_TOP_SITES",
        "a number of sites from 1 to 5000 with per-site series (default 50; sites with a leak \
         verdict are added)",
    ),
];

/// Parses an endpoint address: `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT`
/// or a bare `PORT` (127.0.0.1). No name lookups: this runs in a library
/// constructor.
pub fn parse_addr(value: &str) -> Result<SocketAddr, ConfigError> {
    let v = value.trim();
    let bad = || ConfigError::OutOfRange(format!("'{value}' is not an IP address and port"));
    if let Ok(port) = v.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = v.strip_prefix("localhost:") {
        let port = port.parse::<u16>().map_err(|_| bad())?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    v.parse::<SocketAddr>().map_err(|_| bad())
}

/// Applies one of the metrics' `ASMALLOC_*` variables ([`METRICS_VARS`]);
/// `Ok(false)` for a name it does not own.
pub fn apply_setting(name: &str, value: &str) -> Result<bool, ConfigError> {
    match name {
        "ASMALLOC_METRICS_FILE" => {
            let v = value.trim();
            if v.is_empty() || v.contains('\0') || v.ends_with('/') {
                return Err(ConfigError::OutOfRange(
                    "an empty path, a directory or a NUL byte".into(),
                ));
            }
            *FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(v.to_string());
        }
        "ASMALLOC_METRICS_ADDR" => {
            let addr = parse_addr(value)?;
            *ADDR.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
        }
        "ASMALLOC_METRICS_TOP_SITES" => {
            let n: usize = value
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=MAX_TOP_SITES).contains(n))
                .ok_or_else(|| {
                    ConfigError::OutOfRange(format!("'{value}' is not a number from 1 to 5000"))
                })?;
            TOP.store(n, Ordering::Relaxed);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// What the metrics settings ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// The textfile (`%p` not yet replaced).
    pub file: Option<String>,
    /// The endpoint's address.
    pub addr: Option<SocketAddr>,
    /// Per-site series for this many top sites.
    pub top: usize,
}

/// The metrics the settings ask for; `None` when neither a file nor an
/// address is set.
pub fn configured() -> Option<MetricsConfig> {
    let file = FILE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let addr = *ADDR.lock().unwrap_or_else(|e| e.into_inner());
    (file.is_some() || addr.is_some()).then(|| MetricsConfig {
        file,
        addr,
        top: TOP.load(Ordering::Relaxed),
    })
}

// ---------------------------------------------------------------------------
// The latest sample, shared by the monitor (writer) and the endpoint
// (reader).

static LATEST: Mutex<Option<Arc<Model>>> = Mutex::new(None);

/// The latest published model, if any.
pub fn latest() -> Option<Arc<Model>> {
    LATEST.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn set_latest(model: Model) {
    let model = Arc::new(model);
    let old = LATEST
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .replace(model);
    // The old model is freed outside the lock.
    drop(old);
}

thread_local! {
    static HELD_ACROSS_FORK: RefCell<Option<MutexGuard<'static, Option<Arc<Model>>>>> =
        const { RefCell::new(None) };
}

/// Before `fork` (after the monitor's lock: the order is reports →
/// snapshots → monitor → metrics): takes the latest-model lock, so the
/// child never inherits it held by the endpoint's thread.
pub fn before_fork() {
    let guard = LATEST.lock().unwrap_or_else(|e| e.into_inner());
    HELD_ACROSS_FORK.with(|h| *h.borrow_mut() = Some(guard));
}

/// After `fork`, on both sides: releases that lock. In a child it also
/// closes the inherited listening socket: the endpoint is the parent's,
/// and a child that outlived it must not keep its port bound with nobody
/// answering.
pub fn after_fork() {
    HELD_ACROSS_FORK.with(|h| drop(h.borrow_mut().take()));
    let server = SERVER_PID.load(Ordering::Acquire);
    if server != 0 && server != std::process::id() as i32 {
        let fd = LISTENER_FD.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            crate::sys::close(fd);
        }
    }
}

// ---------------------------------------------------------------------------
// The exporter (the monitor's part).

/// Publishes the monitor's samples: keeps the verdict history, builds the
/// model, writes the textfile.
#[derive(Debug)]
pub struct Exporter {
    file: Option<PathBuf>,
    top: usize,
    history: History,
    file_failing: bool,
}

impl Exporter {
    /// An exporter for `config` (`%p` in the file's path becomes the pid).
    pub fn new(config: &MetricsConfig) -> Exporter {
        Exporter {
            file: config
                .file
                .as_ref()
                .map(|p| PathBuf::from(p.replace("%p", &std::process::id().to_string()))),
            top: config.top.max(1),
            history: History::default(),
            file_failing: false,
        }
    }

    /// Publishes one sample: `verdicts` is `None` for a snapshot that was
    /// not a monitor sample (the first one, published at start so the
    /// endpoint has something to serve). `sample_ns` is how long the
    /// sample took; `leaking` how many sites are judged possible leaks.
    pub fn publish(
        &mut self,
        snap: &Snapshot,
        verdicts: Option<&[Verdict]>,
        sample_ns: i64,
        leaking: usize,
    ) {
        if let Some(v) = verdicts {
            self.history.observe(v);
        }
        let model = self.history.model(snap, self.top, sample_ns, leaking);
        if let Some(path) = &self.file {
            let text = render(&model, Format::Prometheus);
            match write_atomically(path, text.as_bytes()) {
                Ok(()) => self.file_failing = false,
                Err(e) => {
                    if !self.file_failing {
                        crate::diag::warn(format_args!(
                            "metrics file {}: {e}; trying again at every sample",
                            path.display()
                        ));
                    }
                    self.file_failing = true;
                }
            }
        }
        set_latest(model);
    }
}

// ---------------------------------------------------------------------------
// The endpoint.

/// The process whose endpoint is open (0 = none yet). Inherited by a
/// forked child, which therefore opens none of its own.
static SERVER_PID: AtomicI32 = AtomicI32::new(0);
/// The endpoint's listening socket (-1 = none), closed in a forked child.
static LISTENER_FD: AtomicI32 = AtomicI32::new(-1);
static BIND_FAILED: AtomicBool = AtomicBool::new(false);

/// Opens the configured endpoint's socket, once per process: `None` when no
/// address is configured, or this process (or the parent it was forked
/// from) already has an endpoint, or binding failed (said on stderr:
/// another process may have the port — every process started with the
/// same settings tries it). Run the returned listener with [`serve`] on a
/// library thread.
pub fn open_endpoint() -> Option<TcpListener> {
    let addr = (*ADDR.lock().unwrap_or_else(|e| e.into_inner()))?;
    let me = std::process::id() as i32;
    if SERVER_PID
        .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return None;
    }
    match http::bind(addr) {
        Ok(listener) => {
            LISTENER_FD.store(listener.as_raw_fd(), Ordering::Release);
            let bound = listener.local_addr().unwrap_or(addr);
            if !addr.ip().is_loopback() {
                crate::diag::warn(format_args!(
                    "serving metrics on {bound}, not a loopback address: whoever can reach it \
                     can read this program's site names"
                ));
            } else if addr.port() == 0 {
                crate::diag::warn(format_args!("serving metrics on http://{bound}/metrics"));
            }
            Some(listener)
        }
        Err(e) => {
            crate::diag::warn_once(
                &BIND_FAILED,
                format_args!(
                    "ASMALLOC_METRICS_ADDR={addr}: cannot listen ({e}); no metrics endpoint in this process"
                ),
            );
            None
        }
    }
}

/// Serves the endpoint on the calling thread (a library thread, with the
/// library's-own-work mark and every signal blocked) until `stop()`.
pub fn serve(listener: TcpListener, stop: fn() -> bool) {
    http::serve(listener, &latest, stop);
    LISTENER_FD.store(-1, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback_and_refuse_names() {
        assert_eq!(parse_addr("9464").unwrap().to_string(), "127.0.0.1:9464");
        assert_eq!(
            parse_addr("localhost:1").unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert_eq!(parse_addr("[::1]:9464").unwrap().to_string(), "[::1]:9464");
        assert_eq!(
            parse_addr(" 0.0.0.0:80 ").unwrap().to_string(),
            "0.0.0.0:80"
        );
        for bad in ["", "example.com:80", "127.0.0.1", "127.0.0.1:99999", ":80"] {
            let e = parse_addr(bad).unwrap_err().to_string();
            assert!(e.contains("is not an IP address and port"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_values_are_named_and_change_nothing() {
        assert_eq!(apply_setting("ASMALLOC_NOT_METRICS", "1"), Ok(false));
        let before = TOP.load(Ordering::Relaxed);
        for bad in ["0", "5001", "many"] {
            assert!(apply_setting("ASMALLOC_METRICS_TOP_SITES", bad).is_err());
        }
        assert_eq!(TOP.load(Ordering::Relaxed), before);
        assert!(apply_setting("ASMALLOC_METRICS_FILE", "").is_err());
        assert!(apply_setting("ASMALLOC_METRICS_FILE", "/tmp/").is_err());
        assert!(apply_setting("ASMALLOC_METRICS_ADDR", "somewhere").is_err());
    }
}
