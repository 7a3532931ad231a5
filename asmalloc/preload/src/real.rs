//! The real functions we forward to.
//!
//! The heap functions are glibc's `__libc_malloc` family, exported by glibc
//! for exactly this purpose and bound at link time: no `dlsym`, so they work
//! from the very first call, before anything is initialised. Everything
//! else (`malloc_usable_size`, `posix_memalign`, `aligned_alloc`, `shm*`,
//! `brk`, `sbrk`, `pthread_create`) is looked up once with
//! `dlsym(RTLD_NEXT, …)` by [`ensure`], with the reentrancy guard held so
//! that `dlsym`'s own `calloc` is forwarded untracked.
//!
//! Resolution is a small state machine: UNRESOLVED → RESOLVING → READY (or
//! FAILED, when glibc's `malloc_usable_size` cannot be found: then the
//! library forwards everything untracked and says so once).

use std::ffi::{CStr, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use crate::guard::Guard;

mod glibc {
    use std::ffi::c_void;

    // glibc's allocator entry points that bypass interposition
    // (GLIBC_2.2.5, present in every glibc since).
    unsafe extern "C" {
        pub(super) safe fn __libc_malloc(size: usize) -> *mut c_void;
        pub(super) safe fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
        pub(super) fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
        pub(super) fn __libc_free(ptr: *mut c_void);
        pub(super) safe fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
        pub(super) safe fn __libc_valloc(size: usize) -> *mut c_void;
        pub(super) safe fn __libc_pvalloc(size: usize) -> *mut c_void;
    }
}

/// `malloc(size)` of glibc.
#[inline(always)]
pub(crate) fn malloc(size: usize) -> *mut c_void {
    glibc::__libc_malloc(size)
}

/// `calloc(n, size)` of glibc.
#[inline(always)]
pub(crate) fn calloc(n: usize, size: usize) -> *mut c_void {
    glibc::__libc_calloc(n, size)
}

/// `memalign(align, size)` of glibc.
#[inline(always)]
pub(crate) fn memalign(align: usize, size: usize) -> *mut c_void {
    glibc::__libc_memalign(align, size)
}

/// `valloc(size)` of glibc.
#[inline(always)]
pub(crate) fn valloc(size: usize) -> *mut c_void {
    glibc::__libc_valloc(size)
}

/// `pvalloc(size)` of glibc.
#[inline(always)]
pub(crate) fn pvalloc(size: usize) -> *mut c_void {
    glibc::__libc_pvalloc(size)
}

/// `realloc(ptr, size)` of glibc.
///
/// # Safety
/// `ptr` is null or a live block of glibc's allocator.
#[inline(always)]
pub(crate) unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: the caller's contract is glibc's.
    unsafe { glibc::__libc_realloc(ptr, size) }
}

/// `free(ptr)` of glibc.
///
/// # Safety
/// `ptr` is null or a live block of glibc's allocator.
#[inline(always)]
pub(crate) unsafe fn free(ptr: *mut c_void) {
    // SAFETY: the caller's contract is glibc's.
    unsafe { glibc::__libc_free(ptr) }
}

// ---------------------------------------------------------------------------
// Functions found with dlsym.

const UNRESOLVED: u8 = 0;
const RESOLVING: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNRESOLVED);

/// Addresses found by dlsym (0 = not found).
struct Symbols {
    malloc_usable_size: AtomicUsize,
    posix_memalign: AtomicUsize,
    aligned_alloc: AtomicUsize,
    shmget: AtomicUsize,
    shmat: AtomicUsize,
    shmdt: AtomicUsize,
    shmctl: AtomicUsize,
    brk: AtomicUsize,
    sbrk: AtomicUsize,
    pthread_create: AtomicUsize,
}

static SYMS: Symbols = Symbols {
    malloc_usable_size: AtomicUsize::new(0),
    posix_memalign: AtomicUsize::new(0),
    aligned_alloc: AtomicUsize::new(0),
    shmget: AtomicUsize::new(0),
    shmat: AtomicUsize::new(0),
    shmdt: AtomicUsize::new(0),
    shmctl: AtomicUsize::new(0),
    brk: AtomicUsize::new(0),
    sbrk: AtomicUsize::new(0),
    pthread_create: AtomicUsize::new(0),
};

fn lookup(name: &CStr) -> usize {
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
            Err(FAILED) => return false,
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
    let usable = lookup(c"malloc_usable_size");
    SYMS.malloc_usable_size.store(usable, Ordering::Relaxed);
    SYMS.posix_memalign
        .store(lookup(c"posix_memalign"), Ordering::Relaxed);
    SYMS.aligned_alloc
        .store(lookup(c"aligned_alloc"), Ordering::Relaxed);
    SYMS.shmget.store(lookup(c"shmget"), Ordering::Relaxed);
    SYMS.shmat.store(lookup(c"shmat"), Ordering::Relaxed);
    SYMS.shmdt.store(lookup(c"shmdt"), Ordering::Relaxed);
    SYMS.shmctl.store(lookup(c"shmctl"), Ordering::Relaxed);
    SYMS.brk.store(lookup(c"brk"), Ordering::Relaxed);
    SYMS.sbrk.store(lookup(c"sbrk"), Ordering::Relaxed);
    SYMS.pthread_create
        .store(lookup(c"pthread_create"), Ordering::Relaxed);
    if usable != 0 && header_formula_agrees() {
        HEADER_FAST.store(true, Ordering::Relaxed);
    }
    if usable == 0 {
        STATE.store(FAILED, Ordering::Release);
        rt::warn(format_args!(
            "glibc's malloc_usable_size was not found; allocations are forwarded untracked"
        ));
    } else {
        STATE.store(READY, Ordering::Release);
    }
}

/// True when glibc's chunk header gives the usable size (checked once).
static HEADER_FAST: AtomicBool = AtomicBool::new(false);

/// Checks, on blocks of every kind (small, large, mmapped, aligned), that
/// the chunk-header formula gives what glibc's `malloc_usable_size` says.
/// glibc's function also reads the *next* chunk's header to confirm the
/// block is in use — a cache miss on every free; for a block we know is
/// live the header alone is enough. If any block disagrees (another glibc
/// layout, memory tagging), we keep calling glibc's function.
fn header_formula_agrees() -> bool {
    let f = SYMS.malloc_usable_size.load(Ordering::Relaxed);
    // SAFETY: `f` is glibc's malloc_usable_size (non-zero, checked by the
    // caller).
    let real: unsafe extern "C" fn(*mut c_void) -> usize = unsafe { std::mem::transmute(f) };
    let mut ok = true;
    for &(align, size) in &[
        (0, 1),
        (0, 24),
        (0, 100),
        (0, 1000),
        (0, 5000),
        (0, 70_000),
        (0, 300_000),
        (0, 4 << 20),
        (64, 100),
        (4096, 5000),
    ] {
        let p = if align == 0 {
            malloc(size)
        } else {
            memalign(align, size)
        };
        if p.is_null() {
            continue;
        }
        // SAFETY: `p` is a live glibc block.
        unsafe {
            ok &= real(p) == usable_size_from_header(p);
            free(p);
        }
    }
    ok
}

/// The usable size of a glibc block (what glibc's `malloc_usable_size`
/// says, our tag included).
///
/// # Safety
/// `ptr` is a live, non-null block of glibc's allocator.
#[inline(always)]
pub(crate) unsafe fn usable_size(ptr: *mut c_void) -> usize {
    if HEADER_FAST.load(Ordering::Relaxed) {
        // SAFETY: forwarded; the formula was checked against glibc's.
        return unsafe { usable_size_from_header(ptr) };
    }
    let f = SYMS.malloc_usable_size.load(Ordering::Relaxed);
    if f == 0 {
        // Only reachable while resolving (from inside dlsym).
        // SAFETY: forwarded contract.
        return unsafe { usable_size_from_header(ptr) };
    }
    // SAFETY: `f` is glibc's malloc_usable_size, found by dlsym; the caller
    // guarantees `ptr` is a live block.
    unsafe {
        let f: unsafe extern "C" fn(*mut c_void) -> usize = std::mem::transmute(f);
        f(ptr)
    }
}

/// glibc's own computation (`musable`) for a block known to be in use: the
/// chunk size word before the block, less the header; an mmapped chunk
/// (bit 1) has a two-word header. Also used before dlsym has answered.
///
/// # Safety
/// `ptr` is a live, non-null block of glibc's allocator.
#[inline(always)]
unsafe fn usable_size_from_header(ptr: *mut c_void) -> usize {
    // SAFETY: every glibc block is preceded by its chunk's size word.
    let word = unsafe { ptr.cast::<usize>().sub(1).read() };
    let size = word & !7;
    let header = if word & 2 != 0 { 16 } else { 8 };
    size.saturating_sub(header)
}

fn sym(slot: &AtomicUsize) -> usize {
    ensure();
    slot.load(Ordering::Relaxed)
}

/// glibc's `posix_memalign`, or an emulation on `__libc_memalign`.
///
/// # Safety
/// `out` is valid for writing a pointer.
pub(crate) unsafe fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    match sym(&SYMS.posix_memalign) {
        0 => {
            if !align.is_power_of_two() || !align.is_multiple_of(std::mem::size_of::<usize>()) {
                return libc::EINVAL;
            }
            let p = memalign(align, size);
            if p.is_null() {
                return libc::ENOMEM;
            }
            // SAFETY: the caller guarantees `out` is writable.
            unsafe { out.write(p) };
            0
        }
        f => {
            // SAFETY: `f` is glibc's posix_memalign; arguments forwarded.
            unsafe {
                let f: unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> c_int =
                    std::mem::transmute(f);
                f(out, align, size)
            }
        }
    }
}

/// glibc's `aligned_alloc` (whose rules for odd alignments changed in
/// 2.38), or `memalign`.
pub(crate) fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    match sym(&SYMS.aligned_alloc) {
        0 => memalign(align, size),
        // SAFETY: `f` is glibc's aligned_alloc, which takes any arguments.
        f => unsafe {
            let f: unsafe extern "C" fn(usize, usize) -> *mut c_void = std::mem::transmute(f);
            f(align, size)
        },
    }
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
