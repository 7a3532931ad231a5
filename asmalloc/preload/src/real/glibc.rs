//! glibc's heap (libasmalloc.so): the `__libc_malloc` family, exported by
//! glibc for exactly this purpose and bound at link time — no `dlsym`, so
//! they work from the very first call, before anything is initialised —
//! and `malloc_usable_size`, `posix_memalign`, `aligned_alloc` found with
//! `dlsym(RTLD_NEXT, …)` when the library resolves its symbols.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{Ready, ensure, lookup};

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

/// `free` of a block whose real usable size is known (glibc's `free`
/// needs no size).
///
/// # Safety
/// `ptr` is a live block of glibc's allocator.
#[inline(always)]
pub(crate) unsafe fn free_sized(ptr: *mut c_void, _usable: usize) {
    // SAFETY: the caller's contract is glibc's.
    unsafe { glibc::__libc_free(ptr) }
}

/// `free` of a block of the library's own, without retuning the program's
/// heap.
///
/// glibc's `free` of an mmapped chunk larger than its mmap threshold
/// raises that threshold to the chunk's size (up to 32 MiB) and the trim
/// threshold to twice that, for the whole process: from then on the
/// program's allocations up to that size come from the arenas, and each
/// arena keeps up to twice that free instead of returning it. A tracker
/// that frees a big buffer of its own (the start-up check of the header
/// formula below allocates 4 MiB; reports and the namer's debug
/// information can be larger) would change how the program's heap behaves
/// — the churn benchmark's thread arena kept 2.6 MiB at exit that it gives
/// back raw. So such a chunk is first shrunk to a page with `realloc`
/// (which remaps an mmapped chunk, or moves it, without touching the
/// thresholds) and then freed: a page is below any threshold.
///
/// # Safety
/// `ptr` is a live, non-null block of glibc's allocator.
pub(crate) unsafe fn free_own(ptr: *mut c_void) {
    // SAFETY: every glibc block is preceded by its chunk's size word.
    let word = unsafe { ptr.cast::<usize>().sub(1).read() };
    let mmapped = word & 2 != 0;
    let ptr = if mmapped && (word & !7) > 2 * crate::syscalls::page_size() {
        // SAFETY: `ptr` is live (caller's contract).
        match unsafe { realloc(ptr, 1) } {
            // A failed shrink leaves the block as it was.
            q if q.is_null() => ptr,
            q => q,
        }
    } else {
        ptr
    };
    // SAFETY: `ptr` is live.
    unsafe { free(ptr) }
}

// ---------------------------------------------------------------------------
// Functions found with dlsym (0 = not found).

static MALLOC_USABLE_SIZE: AtomicUsize = AtomicUsize::new(0);
static POSIX_MEMALIGN: AtomicUsize = AtomicUsize::new(0);
static ALIGNED_ALLOC: AtomicUsize = AtomicUsize::new(0);

/// Looks up glibc's heap functions (with the reentrancy guard held, from
/// `real::resolve`). False when `malloc_usable_size` is missing: then the
/// library forwards everything untracked and says so once.
pub(super) fn resolve() -> bool {
    let usable = lookup(c"malloc_usable_size");
    MALLOC_USABLE_SIZE.store(usable, Ordering::Relaxed);
    POSIX_MEMALIGN.store(lookup(c"posix_memalign"), Ordering::Relaxed);
    ALIGNED_ALLOC.store(lookup(c"aligned_alloc"), Ordering::Relaxed);
    if usable == 0 {
        rt::warn(format_args!(
            "glibc's malloc_usable_size was not found; allocations are forwarded untracked"
        ));
        return false;
    }
    if header_formula_agrees() {
        HEADER_FAST.store(true, Ordering::Relaxed);
    }
    true
}

fn sym(slot: &AtomicUsize) -> usize {
    ensure();
    slot.load(Ordering::Relaxed)
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
    let f = MALLOC_USABLE_SIZE.load(Ordering::Relaxed);
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
            free_own(p);
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
    let f = MALLOC_USABLE_SIZE.load(Ordering::Relaxed);
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

/// True when the chunk header's formula gives the usable size (see
/// [`Ready`]).
pub(super) fn inline_sizes() -> bool {
    HEADER_FAST.load(Ordering::Relaxed)
}

/// [`usable_size`] from glibc's chunk header: a few instructions, no call.
///
/// # Safety
/// `ptr` is a live, non-null block of glibc's allocator.
#[inline(always)]
pub(crate) unsafe fn usable_size_known(ptr: *mut c_void, _: Ready) -> usize {
    // SAFETY: forwarded; the formula was checked against glibc's (`Ready`).
    unsafe { usable_size_from_header(ptr) }
}

/// The real usable size of a block `malloc(requested)` or
/// `calloc(1, requested)` just returned (glibc's block header says it; the
/// request does not).
///
/// # Safety
/// `ptr` is a live, non-null block of glibc's allocator.
#[inline(always)]
pub(crate) unsafe fn usable_size_of_fresh(ptr: *mut c_void, _requested: usize) -> usize {
    // SAFETY: the caller's contract.
    unsafe { usable_size(ptr) }
}

/// [`usable_size_of_fresh`] from the chunk header.
///
/// # Safety
/// As [`usable_size_of_fresh`].
#[inline(always)]
pub(crate) unsafe fn usable_size_of_fresh_known(
    ptr: *mut c_void,
    _requested: usize,
    ready: Ready,
) -> usize {
    // SAFETY: the caller's contract.
    unsafe { usable_size_known(ptr, ready) }
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

/// glibc's `posix_memalign`, or an emulation on `__libc_memalign`.
///
/// # Safety
/// `out` is valid for writing a pointer.
pub(crate) unsafe fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    match sym(&POSIX_MEMALIGN) {
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
    match sym(&ALIGNED_ALLOC) {
        0 => memalign(align, size),
        // SAFETY: `f` is glibc's aligned_alloc, which takes any arguments.
        f => unsafe {
            let f: unsafe extern "C" fn(usize, usize) -> *mut c_void = std::mem::transmute(f);
            f(align, size)
        },
    }
}
