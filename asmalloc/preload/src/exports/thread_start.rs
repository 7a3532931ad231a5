//! `pthread_create`: a new thread of the program starts in a trampoline
//! (shim.c) that gives it its table and thread id and records its start
//! routine's name; a thread the library starts itself holds the
//! reentrancy guard for its whole life. The program's threads are counted
//! from `pthread_create` to their thread-exit destructor (`threads.rs`:
//! when the last one ends, the library's threads end too).

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use crate::guard;
use crate::{real, threads};

/// The launch record the C trampoline (shim.c) reads.
#[repr(C)]
struct Launch {
    start: real::StartRoutine,
    arg: *mut c_void,
    started: unsafe extern "C" fn(*mut Launch),
}

unsafe extern "C" {
    /// shim.c: runs `launch->started(launch)` then the start routine.
    fn asmalloc_shim_trampoline(launch: *mut c_void) -> *mut c_void;
}

/// Runs first on a thread the program created: names it and gives it its
/// table (and thread id) now, so live/total counts include it, and marks
/// it a program thread (counted since `pthread_create`; see
/// [`watch_program_thread`]).
unsafe extern "C" fn started_tracked(launch: *mut Launch) {
    // SAFETY: `launch` is the record pthread_create below filled; read
    // before it is freed.
    let start = unsafe { (*launch).start } as usize;
    // SAFETY: allocated with real::malloc below and used by no one else.
    unsafe { real::free(launch.cast()) };
    watch_program_thread();
    let id = rt::current_thread_id();
    threads::started_at(id, start);
}

/// The pthread key whose destructor says a program thread ended:
/// KEY_STATE 0 = not created, 1 = ready, 2 = failed.
static KEY_STATE: AtomicU8 = AtomicU8::new(0);
static KEY: AtomicU32 = AtomicU32::new(0);

extern "C" fn program_thread_exit(_value: *mut c_void) {
    crate::wrappers::thread_ended();
    if threads::program_thread_ended() {
        crate::report::program_ended();
    }
}

/// Creates the key (the library constructor calls this, before the program
/// runs) and marks the calling (initial) thread a program thread.
pub(crate) fn watch_initial_thread() {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer; the destructor has the
    // signature pthread expects.
    if unsafe { libc::pthread_key_create(&mut key, Some(program_thread_exit)) } == 0 {
        KEY.store(key, Ordering::Relaxed);
        KEY_STATE.store(1, Ordering::Release);
    } else {
        KEY_STATE.store(2, Ordering::Release);
    }
    threads::program_thread_starting();
    watch_program_thread();
}

/// Gives the calling program thread a non-null value of the key, so its
/// destructor runs when the thread ends (however it ends: return,
/// `pthread_exit`, cancellation).
fn watch_program_thread() {
    if KEY_STATE.load(Ordering::Acquire) == 1 {
        // SAFETY: the key was created by pthread_key_create; the value is
        // a marker, never dereferenced.
        unsafe {
            libc::pthread_setspecific(KEY.load(Ordering::Relaxed), std::ptr::dangling::<c_void>())
        };
    }
}

/// Runs first on a thread the library itself created (the reporter).
unsafe extern "C" fn started_untracked(launch: *mut Launch) {
    guard::hold_forever();
    // SAFETY: as in started_tracked.
    unsafe { real::free(launch.cast()) };
}

/// `pthread_create(3)`: the new thread starts in a trampoline that records
/// its id and start routine name, then runs `start(arg)`.
///
/// # Safety
/// C contract of pthread_create(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: real::StartRoutine,
    arg: *mut c_void,
) -> c_int {
    let launch = real::malloc(std::mem::size_of::<Launch>()).cast::<Launch>();
    if launch.is_null() {
        // SAFETY: the caller's contract.
        return unsafe { real::pthread_create(thread, attr, start, arg) };
    }
    let program = !guard::held();
    let started = if program {
        // Counted before it runs: the creating thread may end first.
        if KEY_STATE.load(Ordering::Acquire) == 1 {
            threads::program_thread_starting();
        }
        started_tracked
    } else {
        started_untracked
    };
    // SAFETY: `launch` is a fresh block big and aligned enough for Launch.
    unsafe {
        launch.write(Launch {
            start,
            arg,
            started,
        })
    };
    // SAFETY: the caller's contract for `thread` and `attr`; the trampoline
    // takes ownership of `launch`.
    let rc = unsafe { real::pthread_create(thread, attr, asmalloc_shim_trampoline, launch.cast()) };
    if rc != 0 {
        // SAFETY: no thread was started, so `launch` is still ours.
        unsafe { real::free(launch.cast()) };
        if program && KEY_STATE.load(Ordering::Acquire) == 1 && threads::program_thread_ended() {
            crate::report::program_ended();
        }
    }
    rc
}
