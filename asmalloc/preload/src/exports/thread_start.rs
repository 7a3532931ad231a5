//! `pthread_create`: a new thread of the program starts in a trampoline
//! (shim.c) that gives it its table and thread id and records its start
//! routine's name; a thread the library starts itself holds the
//! reentrancy guard for its whole life.

use std::ffi::{c_int, c_void};

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
/// table (and thread id) now, so live/total counts include it.
unsafe extern "C" fn started_tracked(launch: *mut Launch) {
    // SAFETY: `launch` is the record pthread_create below filled; read
    // before it is freed.
    let start = unsafe { (*launch).start } as usize;
    // SAFETY: allocated with real::malloc below and used by no one else.
    unsafe { real::free(launch.cast()) };
    let id = rt::current_thread_id();
    threads::started_at(id, start);
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
    let started = if guard::held() {
        started_untracked
    } else {
        started_tracked
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
    }
    rc
}
