//! Reports: at exit, periodically (the reporter thread), and on request
//! (`asm_hook`, `ASM_CMD_PRINT_STATS`). Always built with the reentrancy
//! guard held, so the report's own allocations are not the program's.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::guard::{self, Guard};
use crate::settings::{self, Format};
use crate::{output, syscalls, threads};

/// Why a report is written (shown in its first line).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reason {
    Exit,
    Periodic,
    Hook,
    Command,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::Exit => "at exit",
            Reason::Periodic => "periodic",
            Reason::Hook => "asm_hook",
            Reason::Command => "ASM_CMD_PRINT_STATS",
        }
    }
}

fn program_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The report text (or JSON line) for `reason`, of `snap`.
fn render(reason: Reason, snap: &rt::Snapshot) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::with_capacity(4096);
    match settings::format() {
        Format::Json => {
            let _ = rt::report::write_json_line(&mut out, snap);
        }
        Format::Text => {
            let _ = writeln!(
                out,
                "asmalloc: ---- pid {} ({}) {} ----",
                syscalls::getpid(),
                program_name(),
                reason.name()
            );
            let _ = rt::report::write_text(&mut out, snap, settings::top_sites());
            rt::report::write_stacks_text(&mut out, settings::top_sites().min(10));
            if snap.features.contains(rt::Features::THREAD_STATS) {
                let names = threads::names();
                if !names.is_empty() {
                    let _ = write!(
                        out,
                        "  threads started with pthread_create: {}; names:",
                        threads::started_count()
                    );
                    for (id, name) in names.iter().rev().take(16).rev() {
                        let _ = write!(out, " #{id} {name}");
                    }
                    let _ = writeln!(out);
                }
            }
        }
    }
    out
}

/// Writes a report now (and the pprof profile, with `ASMALLOC_PPROF`).
pub(crate) fn emit(reason: Reason) {
    let _guard = Guard::enter();
    // One report at a time, rendered and written together, and none after
    // the exit report: a periodic report taken a moment before the exit one
    // must not land after it (the last report is the final word).
    lock_reports();
    if !EXITED.load(Ordering::Relaxed) {
        if matches!(reason, Reason::Exit) {
            EXITED.store(true, Ordering::Relaxed);
        }
        let snap = rt::Snapshot::take();
        let text = render(reason, &snap);
        output::emit(&text);
        rt::__private::pprof::write(&snap);
    }
    unlock_reports();
}

/// Writes the pprof profile at exit when no exit report did
/// (`ASMALLOC_REPORT_AT_EXIT=0`).
pub(crate) fn profile_at_exit() {
    let _guard = Guard::enter();
    if rt::__private::pprof::configured() {
        rt::__private::pprof::write(&rt::Snapshot::take());
    }
}

/// Held while a report is rendered and written: a yielding spin lock, so
/// the fork handlers can take it before `fork` and release it on both sides.
static EMITTING: AtomicBool = AtomicBool::new(false);
/// The exit report has been written: no report follows it.
static EXITED: AtomicBool = AtomicBool::new(false);

/// Takes the report lock (also the fork prepare handler's first step).
pub(crate) fn lock_reports() {
    while EMITTING
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
}

/// Releases it (after `fork`, in the parent and in the child).
pub(crate) fn unlock_reports() {
    EMITTING.store(false, Ordering::Release);
}

/// Takes a leak-monitor sample (if the monitor runs) and writes its
/// verdicts to the report output (text reports only: with JSON reports the
/// verdicts are in the monitor's log).
pub(crate) fn sample() {
    let _guard = Guard::enter();
    let text = rt::__private::monitor::sample_now();
    // Verdict sentences go with text reports; a JSON report output holds
    // only JSON lines (the verdicts are in the monitor's log).
    if !text.is_empty() && settings::format() == Format::Text {
        output::emit(text.as_bytes());
    }
}

/// The process in which the monitor thread runs (0 = none).
static MONITOR_PID: AtomicI32 = AtomicI32::new(0);

/// Starts the leak monitor (detector + JSON-lines log) if
/// `ASMALLOC_SAMPLE_INTERVAL` or `ASMALLOC_LOG` asks for it and this process
/// has none yet (a forked child calls this again and starts its own, with
/// its own log if the path has `%p`).
pub(crate) fn start_monitor() {
    if crate::real::stepped_aside() {
        return;
    }
    let _guard = Guard::enter();
    let Some((interval, mut config)) = rt::__private::monitor::configured() else {
        return;
    };
    let pid = syscalls::getpid();
    if MONITOR_PID.swap(pid, Ordering::AcqRel) == pid {
        return;
    }
    config.log_path = config.log_path.map(|p| output::expand(&p, pid));
    if let Err(e) = rt::__private::monitor::install(config) {
        MONITOR_PID.store(0, Ordering::Release);
        rt::warn(format_args!(
            "{}; no leak monitor",
            e.to_string().trim_start_matches("asmalloc: ")
        ));
        return;
    }
    let running = Arc::new(AtomicBool::new(false));
    let ready = Arc::clone(&running);
    let spawned = rt::__private::threads::with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("asmalloc-monitor".into())
            .spawn(move || {
                guard::hold_forever();
                started(&ready);
                while !nap(interval) {
                    sample();
                }
                leave();
            })
    });
    match spawned {
        Ok(handle) => {
            keep_handle(&handle);
            wait_until_started(&running);
            crate::metrics::start_endpoint();
        }
        Err(e) => {
            MONITOR_PID.store(0, Ordering::Release);
            rt::warn(format_args!(
                "cannot start the leak monitor thread ({e}); no leak detection"
            ));
        }
    }
}

/// The process in which the reporter thread runs (0 = none).
static REPORTER_PID: AtomicI32 = AtomicI32::new(0);

/// Starts the periodic reporter if `ASMALLOC_REPORT_INTERVAL` asks for one
/// and this process has none yet (a forked child calls this again).
pub(crate) fn start_reporter() {
    if crate::real::stepped_aside() {
        return;
    }
    let ms = settings::interval_ms();
    if ms == 0 {
        return;
    }
    let pid = syscalls::getpid();
    if REPORTER_PID.swap(pid, Ordering::AcqRel) == pid {
        return;
    }
    let _guard = Guard::enter();
    let running = Arc::new(AtomicBool::new(false));
    let ready = Arc::clone(&running);
    let spawned = rt::__private::threads::with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("asmalloc-report".into())
            .spawn(move || {
                // Everything this thread does is the library's own work.
                guard::hold_forever();
                started(&ready);
                while !nap(Duration::from_millis(ms)) {
                    emit(Reason::Periodic);
                }
                leave();
            })
    });
    match spawned {
        Ok(handle) => {
            keep_handle(&handle);
            wait_until_started(&running);
        }
        Err(e) => {
            REPORTER_PID.store(0, Ordering::Release);
            rt::warn(format_args!(
                "cannot start the reporter thread ({e}); no periodic reports"
            ));
        }
    }
}

/// The library's threads (monitor, reporter) of this process, to wake when
/// the program's last thread ends. Locked only when one starts (in the
/// constructor, or a forked child's handler: one thread then) and by the
/// program's last thread, so a fork never copies it locked.
static LIBRARY_THREADS: Mutex<Vec<(i32, std::thread::Thread)>> = Mutex::new(Vec::new());

fn keep_handle<T>(handle: &std::thread::JoinHandle<T>) {
    let pid = syscalls::getpid();
    let mut threads = LIBRARY_THREADS.lock().unwrap_or_else(|e| e.into_inner());
    // A forked child's list still has its parent's threads.
    threads.retain(|(of, _)| *of == pid);
    threads.push((pid, handle.thread().clone()));
}

/// The program's last thread has ended (its thread-exit destructor says
/// so): wakes the library's threads, which end too — glibc ends the process
/// only when every thread has, and runs `exit(0)` on the last.
pub(crate) fn program_ended() {
    let _guard = Guard::enter();
    let pid = syscalls::getpid();
    let threads = LIBRARY_THREADS.lock().unwrap_or_else(|e| e.into_inner());
    for (_, thread) in threads.iter().filter(|(of, _)| *of == pid) {
        thread.unpark();
    }
}

/// Sleeps `interval` (a library thread between two samples or reports);
/// true, at once, when the program's last thread has ended.
fn nap(interval: Duration) -> bool {
    let deadline = Instant::now() + interval;
    loop {
        if threads::program_ended() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::park_timeout(deadline - now);
    }
}

/// A library thread's last act when the program's threads are gone: it
/// gives up the reentrancy guard, for glibc may run the program's `atexit`
/// handlers and the library's exit report on it (as on the last thread to
/// end), where the program's allocations are the program's.
pub(crate) fn leave() {
    rt::__private::engine::set_library_work(false);
}

/// Called first by a thread the library starts: its first allocation has
/// been made (the heap's per-thread state is set up: jemalloc's arena and
/// thread cache, glibc's arena) and Rust's thread start has registered its
/// thread-exit destructor (a `calloc` inside glibc); says so to the
/// starter.
pub(crate) fn started(flag: &AtomicBool) {
    drop(std::hint::black_box(Box::new(0u64)));
    flag.store(true, Ordering::Release);
}

/// Waits until a thread the library just started has run [`started`], at
/// most 200 ms. Without this wait the thread could first run after the
/// program had used up its memory (`RLIMIT_AS`): its start then failed
/// inside the heap or libc, which kill the process (jemalloc crashed on a
/// missing arena; glibc aborts when it cannot register a thread-exit
/// destructor) — the program's own threads started then would fail just
/// as well, but the library's are started for it.
pub(crate) fn wait_until_started(flag: &AtomicBool) {
    let start = Instant::now();
    while !flag.load(Ordering::Acquire) && start.elapsed() < Duration::from_millis(200) {
        std::thread::yield_now();
    }
}
