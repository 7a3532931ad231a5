//! The real functions we forward to.
//!
//! The heap is chosen when the library is built (see build.rs): glibc's
//! (`real/glibc.rs`, libasmalloc.so) or jemalloc's (`real/jemalloc.rs`,
//! libasmalloc_jem.so). Both offer the same functions (`malloc`, `calloc`,
//! `realloc`, `free`, `free_sized`, `memalign`, `valloc`, `pvalloc`,
//! `posix_memalign`, `aligned_alloc`, `usable_size`); the jemalloc one adds
//! jemalloc's own API.
//!
//! Everything else (`shm*`, `brk`, `sbrk`, `pthread_create`) is looked up
//! once with `dlsym(RTLD_NEXT, …)` by [`ensure`], with the reentrancy guard
//! held so that `dlsym`'s own `calloc` is forwarded untracked.
//!
//! Resolution is a small state machine: UNRESOLVED → RESOLVING → READY
//! (READY_ASKING when blocks' usable sizes must be asked of the heap, see
//! [`Ready`]) (or
//! FAILED, when the heap's functions cannot be found: then the library
//! forwards everything untracked and says so once; or ASIDE, when the
//! program brings an allocator the library cannot track: then it forwards
//! everything to that allocator, see `real/foreign.rs`).

use std::ffi::{CStr, c_int, c_void};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::guard::Guard;

#[cfg_attr(not(jemalloc_backend), path = "real/glibc.rs")]
#[cfg_attr(jemalloc_backend, path = "real/jemalloc.rs")]
mod heap;

pub(crate) use heap::*;

mod foreign;
pub(crate) use foreign::{NEXT, Underneath, early};

// The library's global allocator: the heap, then a fixed reserve when the
// heap has no memory left (so the library's own work never aborts a
// program that ran out of memory).
mod reserve;

// ---------------------------------------------------------------------------
// Functions found with dlsym.

const UNRESOLVED: u8 = 0;
const RESOLVING: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;
const ASIDE: u8 = 4;
/// Resolved, but the heap's inline size formula is not to be trusted (see
/// [`Ready`]): every call takes the general path.
const READY_ASKING: u8 = 5;

static STATE: AtomicU8 = AtomicU8::new(UNRESOLVED);

pub(super) fn lookup(name: &CStr) -> usize {
    // SAFETY: RTLD_NEXT with a NUL-terminated name; dlsym returns null or
    // the address of the next definition after this library.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) as usize }
}

/// True once the dlsym'd functions are known. Resolves them on first use.
/// Returns false while this thread is itself resolving (a nested call from
/// inside `dlsym`) and if resolution failed: callers then forward untracked.
#[inline(always)]
pub(crate) fn ensure() -> bool {
    matches!(STATE.load(Ordering::Acquire), READY | READY_ASKING) || ensure_slow()
}

/// Proof that the heap is resolved and its inline size formula was checked
/// (glibc's chunk header, jemalloc's size classes): the functions that
/// take one compute a block's real usable size with no check and no call.
/// Given only by [`ready`], so the allocation path's common case tests one
/// byte for both.
#[derive(Clone, Copy)]
pub(crate) struct Ready(());

/// [`Ready`] once the dlsym'd functions are known and the heap's sizes are
/// inline; `None` otherwise, or before resolution (see [`ensure`]).
#[inline(always)]
pub(crate) fn ready() -> Option<Ready> {
    (STATE.load(Ordering::Acquire) == READY).then_some(Ready(()))
}

#[cold]
#[inline(never)]
fn ensure_slow() -> bool {
    loop {
        match STATE.compare_exchange(UNRESOLVED, RESOLVING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                resolve();
                return matches!(STATE.load(Ordering::Acquire), READY | READY_ASKING);
            }
            Err(READY | READY_ASKING) => return true,
            Err(FAILED | ASIDE) => return false,
            Err(_) => {
                // Another thread is resolving (or this one, from inside
                // dlsym: then the guard is held and we must not wait).
                if crate::guard::held() {
                    return false;
                }
                std::thread::yield_now();
            }
        }
    }
}

fn resolve() {
    let _guard = Guard::enter();
    let state = if steps_aside() {
        ASIDE
    } else if heap::resolve() {
        if heap::inline_sizes() {
            READY
        } else {
            READY_ASKING
        }
    } else {
        FAILED
    };
    STATE.store(state, Ordering::Release);
}

/// The allocator the library tracks over, and whether it can be the one
/// after it in the program.
fn tracks(kind: Underneath) -> bool {
    match kind {
        Underneath::Glibc => true,
        // libasmalloc_jem.so exports every jemalloc entry point itself.
        Underneath::Jemalloc => cfg!(jemalloc_backend),
        Underneath::Tcmalloc | Underneath::Mimalloc | Underneath::Other => false,
    }
}

/// This library's file name in messages.
const LIBRARY: &str = if cfg!(jemalloc_backend) {
    "libasmalloc_jem.so"
} else {
    "libasmalloc.so"
};

/// Decides whether to step aside for the allocator after this library
/// (see `real/foreign.rs`); says so once when it does.
fn steps_aside() -> bool {
    let Some((kind, file, len)) = foreign::next_malloc() else {
        return false;
    };
    if tracks(kind) {
        return false;
    }
    let file = String::from_utf8_lossy(&file[..len]);
    if !foreign::resolve_next() {
        rt::warn(format_args!(
            "this program's malloc comes from {file} ({}), whose free/realloc/calloc \
             could not all be found; {LIBRARY} keeps its own heap",
            kind.name()
        ));
        return false;
    }
    let which = if cfg!(jemalloc_backend) {
        "glibc's or jemalloc's"
    } else {
        "glibc's"
    };
    match kind {
        Underneath::Jemalloc => rt::warn(format_args!(
            "this program's malloc is jemalloc's ({file}), not glibc's: {LIBRARY} steps aside \
             and the program runs untracked; preload libasmalloc_jem.so to track it \
             (`asmalloc run` picks it by itself)"
        )),
        _ => rt::warn(format_args!(
            "this program's malloc is {}'s ({file}), not {which}: asmalloc cannot track it, \
             so {LIBRARY} steps aside and the program runs untracked",
            kind.name()
        )),
    }
    true
}

/// True once the library has stepped aside for another allocator.
#[inline]
pub(crate) fn stepped_aside() -> bool {
    STATE.load(Ordering::Acquire) == ASIDE
}

/// True while the calling thread's nested calls come from inside the
/// library's own symbol resolution (before any decision).
#[inline]
pub(crate) fn resolving() -> bool {
    STATE.load(Ordering::Acquire) == RESOLVING
}

/// The next definition of `name` (cached in `slot`; 1 = looked up, none),
/// or 0. The lookup runs once the library's own resolution is done, with
/// the reentrancy guard held so that `dlsym`'s own allocations are the
/// library's.
pub(crate) fn next_symbol(slot: &AtomicUsize, name: &CStr) -> usize {
    const NONE: usize = 1;
    match slot.load(Ordering::Acquire) {
        0 => {}
        NONE => return 0,
        f => return f,
    }
    ensure();
    let _guard = Guard::enter();
    let f = match lookup(name) {
        0 => NONE,
        f => f,
    };
    slot.store(f, Ordering::Release);
    if f == NONE { 0 } else { f }
}

/// `fail`, with errno ENOSYS: what a function the C library lacks returns.
pub(crate) fn enosys<T>(fail: T) -> T {
    crate::syscalls::set_errno(libc::ENOSYS);
    fail
}

next_fn!(
    /// The C library's `shmget`.
    fn shmget(key: libc::key_t, size: usize, flags: c_int) -> c_int = -1
);
next_fn!(
    /// The C library's `shmat`.
    fn shmat(id: c_int, addr: *const c_void, flags: c_int) -> *mut c_void = usize::MAX as *mut c_void
);
next_fn!(
    /// The C library's `shmdt`.
    fn shmdt(addr: *const c_void) -> c_int = -1
);
next_fn!(
    /// The C library's `shmctl`.
    unsafe fn shmctl(id: c_int, cmd: c_int, buf: *mut libc::shmid_ds) -> c_int = -1
);
next_fn!(
    /// The C library's `brk`.
    fn brk(addr: *mut c_void) -> c_int = -1
);
next_fn!(
    /// The C library's `sbrk`.
    fn sbrk(increment: isize) -> *mut c_void = usize::MAX as *mut c_void
);
next_fn!(
    /// The C library's `pthread_create` (EAGAIN if there is none).
    unsafe fn pthread_create(
        thread: *mut libc::pthread_t,
        attr: *const libc::pthread_attr_t,
        start: StartRoutine,
        arg: *mut c_void,
    ) -> c_int = libc::EAGAIN
);

/// The size of shared memory segment `id` (`IPC_STAT`), if it can be read.
pub(crate) fn shm_segment_size(id: c_int) -> Option<usize> {
    // SAFETY: shmid_ds is plain data; all-zero is a valid value.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    let saved = crate::syscalls::errno();
    // SAFETY: IPC_STAT writes one shmid_ds into `ds`.
    let rc = unsafe { shmctl(id, libc::IPC_STAT, &mut ds) };
    crate::syscalls::set_errno(saved);
    (rc == 0).then_some(ds.shm_segsz)
}

/// A thread start routine.
pub(crate) type StartRoutine = unsafe extern "C" fn(*mut c_void) -> *mut c_void;

/// What dladdr knows about `addr`: the symbol name if the dynamic symbol
/// table has one, else the object's file name and the offset in it.
pub(crate) enum CodeName<'a> {
    Symbol(&'a [u8]),
    Offset(&'a [u8], usize),
}

/// Calls `f` with what dladdr says about `addr`; `None` if nothing.
pub(crate) fn with_code_name<R>(addr: usize, f: impl FnOnce(CodeName<'_>) -> R) -> Option<R> {
    // SAFETY: Dl_info is plain data; all-zero is valid.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr reads no memory at `addr`; `info` is writable.
    if unsafe { libc::dladdr(addr as *const c_void, &mut info) } == 0 {
        return None;
    }
    // SAFETY: dli_sname and dli_fname are null or point into the loaded
    // object's string table / link map, NUL-terminated, valid while the
    // object is loaded — which it is while one of its functions runs as a
    // thread's start routine, and `f` does not keep them.
    unsafe {
        if !info.dli_sname.is_null() {
            return Some(f(CodeName::Symbol(
                CStr::from_ptr(info.dli_sname).to_bytes(),
            )));
        }
        if !info.dli_fname.is_null() {
            let file = CStr::from_ptr(info.dli_fname).to_bytes();
            let base = file.rsplit(|&b| b == b'/').next().unwrap_or(file);
            return Some(f(CodeName::Offset(
                base,
                addr.wrapping_sub(info.dli_fbase as usize),
            )));
        }
    }
    None
}
