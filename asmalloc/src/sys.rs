//! The raw system calls the runtime makes, in one place.
//!
//! Everything here is callable from the allocation path: no function in this
//! file allocates, takes a lock or panics. Memory for the runtime's own tables
//! comes straight from `mmap`, never from an allocator, so tracking can never
//! recurse into itself.

use std::ptr::NonNull;

/// Maps `len` bytes of zeroed, private, lazily-backed memory.
///
/// `MAP_NORESERVE` means only the pages actually touched cost memory, so a
/// table reserved for every possible `u16` site id costs a few pages in
/// practice. Returns `None` when the kernel refuses.
pub(crate) fn map_zeroed(len: usize) -> Option<NonNull<u8>> {
    // The raw system call, not `libc::mmap`: inside the LD_PRELOAD library
    // `mmap` is interposed (and counted as the program's), and the runtime's
    // own tables must neither be counted nor recurse into the tracker.
    // SAFETY: an anonymous private mapping at a kernel-chosen address has no
    // preconditions; the result is checked against MAP_FAILED before use.
    let addr = unsafe {
        libc::syscall(
            libc::SYS_mmap,
            std::ptr::null_mut::<libc::c_void>(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1 as libc::c_int,
            0 as libc::off_t,
        )
    } as *mut libc::c_void;
    if addr == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(addr.cast())
    }
}

/// Writes all of `bytes` to file descriptor `fd`, retrying on `EINTR` and
/// short writes, giving up silently on any other error (diagnostics must never
/// fail the host program).
pub(crate) fn write_all(fd: i32, mut bytes: &[u8]) {
    // A diagnostic may be written from inside malloc: leave errno as the
    // program's last call set it.
    let saved = errno();
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe a live, initialised slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && errno() == libc::EINTR {
            continue;
        } else {
            break;
        }
    }
    set_errno(saved);
}

/// Sets the calling thread's `errno`.
fn set_errno(value: i32) {
    // SAFETY: __errno_location always returns a valid pointer to the calling
    // thread's errno, writable by that thread.
    unsafe { *libc::__errno_location() = value }
}

/// The calling thread's `errno`.
pub(crate) fn errno() -> i32 {
    // SAFETY: __errno_location always returns a valid pointer to the calling
    // thread's errno.
    unsafe { *libc::__errno_location() }
}

/// True when the calling thread is the process's initial thread.
pub(crate) fn is_main_thread() -> bool {
    // SAFETY: gettid and getpid take no arguments and cannot fail.
    unsafe { libc::gettid() == libc::getpid() }
}

/// Reads `clock` as nanoseconds since its epoch (0 if the call fails).
pub(crate) fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec)
}

/// Runs `f` with every signal blocked in the calling thread, then restores
/// its mask: a thread started inside `f` (the monitor's) inherits the full
/// mask, so the program's signals are never delivered to it — a program
/// that blocks a signal everywhere and takes it with `sigwait` would
/// otherwise lose it to our thread (and die by its default action).
pub fn with_signals_blocked<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: sigset_t is plain data; all-zero is a valid (empty) set.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are valid and writable; the mask changes for this
    // thread only and is restored below.
    let blocked = unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old) == 0
    };
    let result = f();
    if blocked {
        // SAFETY: `old` is the mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    }
    result
}

/// Closes file descriptor `fd` (errors ignored: used for a descriptor a
/// forked child inherited and must not keep).
pub(crate) fn close(fd: i32) {
    // SAFETY: closing a descriptor has no memory effects; the caller owns
    // `fd` in this process (nothing else will close or use it).
    unsafe { libc::close(fd) };
}
