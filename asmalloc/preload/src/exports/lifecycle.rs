//! The library's life in the process: the constructor (settings, fork
//! handlers, the reporter and monitor threads), the destructor (a last
//! sample and the exit report), and the fork handlers.

use std::ffi::{CStr, c_char, c_int};

use crate::guard::Guard;
use crate::syscalls::{errno, set_errno};
use crate::{real, report, settings};

/// Walks a NULL-terminated `envp` as (name, value) byte pairs.
///
/// # Safety
/// `envp` is NULL or a NULL-terminated array of NUL-terminated strings that
/// stay unchanged while the iterator is used.
unsafe fn env_pairs<'a>(envp: *const *const c_char) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    let mut i = 0;
    std::iter::from_fn(move || {
        if envp.is_null() {
            return None;
        }
        // SAFETY: the array is NULL-terminated and we stop at the NULL.
        let entry = unsafe { *envp.add(i) };
        if entry.is_null() {
            return None;
        }
        i += 1;
        // SAFETY: each entry is NUL-terminated (caller's contract).
        let bytes = unsafe { CStr::from_ptr(entry) }.to_bytes();
        let eq = bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len());
        Some((&bytes[..eq], bytes.get(eq + 1..).unwrap_or(&[])))
    })
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

// The library's locks are taken before `fork` in one order — the reports',
// the C-visible snapshots', then the monitor's and, inside the monitor's
// handler, the metrics' (the latest sample the endpoint serves) — and
// released on both sides after it, so the child inherits none held by a
// thread it does not have.
// (The engine's own fold lock and seqlock are repaired in the child by
// `after_fork_in_child`; the heap's locks are the heap's fork handlers'.)

extern "C" fn on_fork_prepare() {
    let _guard = Guard::enter();
    report::lock_reports();
    super::original_api::lock_snapshots();
    rt::__private::monitor::before_fork();
    rt::__private::pprof::before_fork();
}

extern "C" fn on_fork_parent() {
    let _guard = Guard::enter();
    rt::__private::pprof::after_fork();
    rt::__private::monitor::after_fork();
    super::original_api::unlock_snapshots();
    report::unlock_reports();
}

extern "C" fn on_fork_child() {
    rt::__private::engine::after_fork_in_child();
    crate::threads::program_threads_after_fork();
    {
        let _guard = Guard::enter();
        rt::__private::pprof::after_fork();
        rt::__private::monitor::after_fork();
        super::original_api::unlock_snapshots();
        report::unlock_reports();
    }
    report::start_reporter();
    report::start_monitor();
}

/// The library constructor (glibc passes argc, argv, envp).
extern "C" fn init(_argc: c_int, _argv: *const *const c_char, envp: *const *const c_char) {
    let saved = errno();
    real::ensure();
    let envp = if envp.is_null() {
        // SAFETY: reading the process's environ pointer.
        unsafe { environ }
    } else {
        envp
    };
    {
        let _guard = Guard::enter();
        crate::output::save_stderr();
        // SAFETY: the environment is not modified while the constructor
        // runs (no other thread of the program runs yet).
        let warnings = settings::configure(unsafe { env_pairs(envp) });
        for w in &warnings {
            rt::warn(format_args!("{w}"));
        }
        rt::__private::site::set_namer(rt::__private::stacks::symbols::name_caller);
        if settings::callers() || rt::__private::stacks::mean() > 0 {
            let callers = settings::callers();
            let warnings = crate::wrappers::init(
                if callers { settings::wrappers() } else { &[] },
                callers && settings::builtin_wrappers(),
            );
            for w in &warnings {
                rt::warn(format_args!("{w}"));
            }
        }
        // Child handlers run in the order they were registered, and ours
        // starts threads (reporter, monitor) that allocate at once: the
        // heap's own child handler must have run first. jemalloc registers
        // its handlers when it initialises, so initialise it now, before
        // registering ours (else the child's new thread could block for
        // ever on a jemalloc lock inherited from the fork). glibc's heap
        // repairs itself inside fork, before any handler.
        // SAFETY: a block freed at once by the same heap.
        unsafe { real::free(real::malloc(1)) };
        // SAFETY: registering a plain extern "C" handler.
        unsafe {
            libc::pthread_atfork(
                Some(on_fork_prepare),
                Some(on_fork_parent),
                Some(on_fork_child),
            )
        };
        super::thread_start::watch_initial_thread();
    }
    report::start_reporter();
    report::start_monitor();
    set_errno(saved);
}

/// The library destructor: a last leak-monitor sample, and the report at
/// exit (none when the library stepped aside for another allocator: it
/// tracked nothing, and said so at start).
extern "C" fn fini() {
    if real::stepped_aside() {
        return;
    }
    if rt::__private::monitor::installed() {
        let saved = errno();
        report::sample();
        set_errno(saved);
    }
    let saved = errno();
    if settings::report_at_exit() {
        report::emit(report::Reason::Exit);
    } else {
        report::profile_at_exit();
    }
    set_errno(saved);
}

#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = init;

#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".fini_array")]
static FINI: extern "C" fn() = fini;
