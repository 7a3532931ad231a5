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
//! Resolution is a small state machine: UNRESOLVED → RESOLVING → READY (or
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

// ---------------------------------------------------------------------------
// Functions found with dlsym.

const UNRESOLVED: u8 = 0;
const RESOLVING: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;
const ASIDE: u8 = 4;

static STATE: AtomicU8 = AtomicU8::new(UNRESOLVED);

/// Addresses found by dlsym (0 = not found).
struct Symbols {
    shmget: AtomicUsize,
    shmat: AtomicUsize,
    shmdt: AtomicUsize,
    shmctl: AtomicUsize,
    brk: AtomicUsize,
    sbrk: AtomicUsize,
    pthread_create: AtomicUsize,
}

static SYMS: Symbols = Symbols {
    shmget: AtomicUsize::new(0),
    shmat: AtomicUsize::new(0),
    shmdt: AtomicUsize::new(0),
    shmctl: AtomicUsize::new(0),
    brk: AtomicUsize::new(0),
    sbrk: AtomicUsize::new(0),
    pthread_create: AtomicUsize::new(0),
};

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
    STATE.load(Ordering::Acquire) == READY || ensure_slow()
}

#[cold]
#[inline(never)]
fn ensure_slow() -> bool {
    loop {
        match STATE.compare_exchange(UNRESOLVED, RESOLVING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                resolve();
                return STATE.load(Ordering::Acquire) == READY;
            }
            Err(READY) => return true,
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
    SYMS.shmget.store(lookup(c"shmget"), Ordering::Relaxed);
    SYMS.shmat.store(lookup(c"shmat"), Ordering::Relaxed);
    SYMS.shmdt.store(lookup(c"shmdt"), Ordering::Relaxed);
    SYMS.shmctl.store(lookup(c"shmctl"), Ordering::Relaxed);
    SYMS.brk.store(lookup(c"brk"), Ordering::Relaxed);
    SYMS.sbrk.store(lookup(c"sbrk"), Ordering::Relaxed);
    SYMS.pthread_create
        .store(lookup(c"pthread_create"), Ordering::Relaxed);
    let state = if steps_aside() {
        ASIDE
    } else if heap::resolve() {
        READY
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

fn sym(slot: &AtomicUsize) -> usize {
    ensure();
    slot.load(Ordering::Relaxed)
}

fn enosys<T>(fail: T) -> T {
    crate::syscalls::set_errno(libc::ENOSYS);
    fail
}

/// glibc's `shmget`.
pub(crate) fn shmget(key: libc::key_t, size: usize, flags: c_int) -> c_int {
    match sym(&SYMS.shmget) {
        0 => enosys(-1),
        // SAFETY: `f` is glibc's shmget; plain values.
        f => unsafe {
            let f: unsafe extern "C" fn(libc::key_t, usize, c_int) -> c_int =
                std::mem::transmute(f);
            f(key, size, flags)
        },
    }
}

/// glibc's `shmat`.
pub(crate) fn shmat(id: c_int, addr: *const c_void, flags: c_int) -> *mut c_void {
    match sym(&SYMS.shmat) {
        0 => enosys(usize::MAX as *mut c_void),
        // SAFETY: `f` is glibc's shmat; attaching is the program's request.
        f => unsafe {
            let f: unsafe extern "C" fn(c_int, *const c_void, c_int) -> *mut c_void =
                std::mem::transmute(f);
            f(id, addr, flags)
        },
    }
}

/// glibc's `shmdt`.
pub(crate) fn shmdt(addr: *const c_void) -> c_int {
    match sym(&SYMS.shmdt) {
        0 => enosys(-1),
        // SAFETY: `f` is glibc's shmdt; detaching is the program's request.
        f => unsafe {
            let f: unsafe extern "C" fn(*const c_void) -> c_int = std::mem::transmute(f);
            f(addr)
        },
    }
}

/// glibc's `shmctl`.
///
/// # Safety
/// `buf` is what `cmd` requires (see shmctl(2)).
pub(crate) unsafe fn shmctl(id: c_int, cmd: c_int, buf: *mut libc::shmid_ds) -> c_int {
    match sym(&SYMS.shmctl) {
        0 => enosys(-1),
        // SAFETY: `f` is glibc's shmctl; the caller vouches for `buf`.
        f => unsafe {
            let f: unsafe extern "C" fn(c_int, c_int, *mut libc::shmid_ds) -> c_int =
                std::mem::transmute(f);
            f(id, cmd, buf)
        },
    }
}

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

/// glibc's `brk`.
pub(crate) fn brk(addr: *mut c_void) -> c_int {
    match sym(&SYMS.brk) {
        0 => enosys(-1),
        // SAFETY: `f` is glibc's brk; moving the break is the program's request.
        f => unsafe {
            let f: unsafe extern "C" fn(*mut c_void) -> c_int = std::mem::transmute(f);
            f(addr)
        },
    }
}

/// glibc's `sbrk`.
pub(crate) fn sbrk(increment: isize) -> *mut c_void {
    match sym(&SYMS.sbrk) {
        0 => enosys(usize::MAX as *mut c_void),
        // SAFETY: `f` is glibc's sbrk; moving the break is the program's request.
        f => unsafe {
            let f: unsafe extern "C" fn(isize) -> *mut c_void = std::mem::transmute(f);
            f(increment)
        },
    }
}

/// A thread start routine.
pub(crate) type StartRoutine = unsafe extern "C" fn(*mut c_void) -> *mut c_void;

/// glibc's `pthread_create`, if found.
///
/// # Safety
/// As pthread_create(3): `thread` writable, `attr` null or initialised,
/// `start` callable with `arg` on a new thread.
pub(crate) unsafe fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: StartRoutine,
    arg: *mut c_void,
) -> Option<c_int> {
    match sym(&SYMS.pthread_create) {
        0 => None,
        // SAFETY: `f` is glibc's pthread_create; the caller's contract.
        f => unsafe {
            let f: unsafe extern "C" fn(
                *mut libc::pthread_t,
                *const libc::pthread_attr_t,
                StartRoutine,
                *mut c_void,
            ) -> c_int = std::mem::transmute(f);
            Some(f(thread, attr, start, arg))
        },
    }
}

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
