//! The symbols only libasmalloc_jem.so exports: jemalloc's non-standard
//! API, tracked like the standard family; `mallctl` and friends and
//! `malloc_stats_print`, forwarded so programs written for jemalloc keep
//! working; and glibc's `__libc_malloc` family, which in this library is
//! the untracked real allocator (jemalloc) — as in an LD_PRELOADed jemalloc,
//! and so that a block from `__libc_malloc` can be passed to `free`.
//!
//! Tags and charges are exactly those of `malloc`/`free` (see the parent
//! module): the block is allocated 8 bytes larger, the tag sits in the last
//! 8 bytes of its real usable size (`sallocx`), and the program is told the
//! usable size less 8 — by `sallocx`, `nallocx`, `xallocx` and
//! `malloc_usable_size` alike, so that `nallocx(n, f)` still predicts
//! `sallocx(mallocx(n, f), f)`.

use std::ffi::{c_char, c_int, c_void};

use rt::Op;
use rt::engine;
use rt::tag::TAG_SIZE;

use super::{read_tag, track_moved, tracked, tracking, untrack, untrack_if_program_block};
use crate::real;

/// `void *mallocx(size_t size, int flags)`: tracked; NULL on failure.
///
/// # Safety
/// C contract of mallocx(3) (size non-zero).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mallocx(size: usize, flags: c_int) -> *mut c_void {
    if !tracking() {
        return real::mallocx(size, flags);
    }
    tracked(Op::Mallocx, size, |n| real::mallocx(n, flags))
}

/// `void *rallocx(void *ptr, size_t size, int flags)`: moves the block to
/// the current site; on failure NULL, and `ptr` stays where it was.
///
/// # Safety
/// C contract of rallocx(3): `ptr` live, size non-zero.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn rallocx(ptr: *mut c_void, size: usize, flags: c_int) -> *mut c_void {
    if !tracking() {
        // SAFETY: the caller's contract.
        return unsafe { real::rallocx(ptr, size, flags) };
    }
    let Some(n) = size.checked_add(TAG_SIZE) else {
        engine::clear_pending();
        return std::ptr::null_mut();
    };
    // SAFETY: `ptr` is a live block (caller's contract).
    let (old_site, old_usable) = unsafe { read_tag(ptr) };
    // SAFETY: as above; `n` is non-zero.
    let q = unsafe { real::rallocx(ptr, n, flags) };
    if q.is_null() {
        engine::clear_pending();
        return q;
    }
    // SAFETY: `q` is a live block of at least `n` bytes.
    unsafe { track_moved(Op::Rallocx, q, old_site, old_usable) };
    q
}

/// `size_t xallocx(void *ptr, size_t size, size_t extra, int flags)`:
/// resizes in place if jemalloc can; returns the usable size afterwards
/// (less the tag). A block whose size changed moves to the current site.
///
/// # Safety
/// C contract of xallocx(3): `ptr` live, size non-zero.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn xallocx(
    ptr: *mut c_void,
    size: usize,
    extra: usize,
    flags: c_int,
) -> usize {
    if !tracking() {
        // SAFETY: the caller's contract.
        return unsafe { real::xallocx(ptr, size, extra, flags) };
    }
    // SAFETY: `ptr` is a live block (caller's contract).
    let (old_site, old_usable) = unsafe { read_tag(ptr) };
    let program_usable = |site: Option<u16>, usable: usize| match site {
        Some(_) => usable - TAG_SIZE,
        None => usable,
    };
    let Some(n) = size.checked_add(TAG_SIZE) else {
        // Cannot be satisfied; the block is unchanged.
        engine::clear_pending();
        return program_usable(old_site, old_usable);
    };
    // SAFETY: as above; `n` is non-zero.
    let usable = unsafe { real::xallocx(ptr, n, extra, flags) };
    if usable == old_usable {
        // Not resized (or resized within its size class): nothing moved.
        engine::clear_pending();
        return program_usable(old_site, old_usable);
    }
    // SAFETY: `ptr` is live, and jemalloc changed its size only to one of
    // at least `n` (it never resizes below the size asked for), so the
    // tag's 8 bytes are beyond what the program was asked to use.
    unsafe { track_moved(Op::Rallocx, ptr, old_site, old_usable) };
    usable - TAG_SIZE
}

/// `size_t sallocx(const void *ptr, int flags)`: the usable size the
/// program may use (the real one less the tag).
///
/// # Safety
/// C contract of sallocx(3): `ptr` live.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sallocx(ptr: *const c_void, flags: c_int) -> usize {
    let ptr = ptr.cast_mut();
    // SAFETY: `ptr` is a live block (caller's contract).
    match unsafe { read_tag(ptr) } {
        (Some(_), usable) => usable - TAG_SIZE,
        // SAFETY: as above.
        (None, _) => unsafe { real::sallocx(ptr, flags) },
    }
}

/// `size_t nallocx(size_t size, int flags)`: what `sallocx` would say for
/// `mallocx(size, flags)` (the tag accounted for); 0 if too large.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn nallocx(size: usize, flags: c_int) -> usize {
    match size.checked_add(TAG_SIZE) {
        Some(n) => real::nallocx(n, flags).saturating_sub(TAG_SIZE),
        None => 0,
    }
}

/// `void dallocx(void *ptr, int flags)`: charged back to the block's site.
///
/// # Safety
/// C contract of dallocx(3): `ptr` live.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn dallocx(ptr: *mut c_void, flags: c_int) {
    // SAFETY: `ptr` is a live block (caller's contract).
    unsafe {
        if tracking() {
            untrack(Op::Dallocx, ptr);
        } else {
            untrack_if_program_block(Op::Dallocx, ptr);
        }
        real::dallocx(ptr, flags)
    }
}

/// `void sdallocx(void *ptr, size_t size, int flags)`: the program's size
/// (its request, or up to what `sallocx` told it) does not include the tag,
/// so jemalloc is given the block's real usable size instead.
///
/// # Safety
/// C contract of sdallocx(3): `ptr` live, `size` within its bounds.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sdallocx(ptr: *mut c_void, size: usize, flags: c_int) {
    if !tracking() {
        // SAFETY: the caller's contract; a program block freed from inside
        // the library is uncharged and given its real size (the program's
        // size excludes the tag, which could name a smaller size class).
        return unsafe {
            let size = untrack_if_program_block(Op::Dallocx, ptr).unwrap_or(size);
            real::sdallocx(ptr, size, flags)
        };
    }
    // SAFETY: `ptr` is a live block (caller's contract); `usable` is its
    // real usable size, a valid size for sdallocx with the block's flags.
    unsafe {
        let usable = untrack(Op::Dallocx, ptr);
        real::sdallocx(ptr, usable, flags)
    }
}

/// `int mallctl(...)`: jemalloc's, untouched.
///
/// # Safety
/// C contract of mallctl(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mallctl(
    name: *const c_char,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *mut c_void,
    newlen: usize,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { real::mallctl(name, oldp, oldlenp, newp, newlen) }
}

/// `int mallctlnametomib(...)`: jemalloc's.
///
/// # Safety
/// C contract of mallctl(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mallctlnametomib(
    name: *const c_char,
    mibp: *mut usize,
    miblenp: *mut usize,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { real::mallctlnametomib(name, mibp, miblenp) }
}

/// `int mallctlbymib(...)`: jemalloc's.
///
/// # Safety
/// C contract of mallctl(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mallctlbymib(
    mib: *const usize,
    miblen: usize,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *mut c_void,
    newlen: usize,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { real::mallctlbymib(mib, miblen, oldp, oldlenp, newp, newlen) }
}

/// `void malloc_stats_print(...)`: jemalloc's.
///
/// # Safety
/// C contract of malloc_stats_print(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn malloc_stats_print(
    write_cb: Option<real::WriteCb>,
    opaque: *mut c_void,
    opts: *const c_char,
) {
    // SAFETY: the caller's contract.
    unsafe { real::malloc_stats_print(write_cb, opaque, opts) }
}

// ---------------------------------------------------------------------------
// glibc's bypass entry points: the real (untracked) allocator, jemalloc.

/// `__libc_malloc`: untracked jemalloc `malloc`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    real::malloc(size)
}

/// `__libc_calloc`: untracked jemalloc `calloc`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn __libc_calloc(n: usize, size: usize) -> *mut c_void {
    real::calloc(n, size)
}

/// `__libc_realloc`: untracked jemalloc `realloc`.
///
/// # Safety
/// `ptr` is NULL or a live block of this library.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { real::realloc(ptr, size) }
}

/// `__libc_free`: untracked jemalloc `free` (a tracked block freed here
/// stays charged, as with glibc's `__libc_free` under libasmalloc.so).
///
/// # Safety
/// `ptr` is NULL or a live block of this library.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn __libc_free(ptr: *mut c_void) {
    // SAFETY: the caller's contract.
    unsafe { real::free(ptr) }
}

/// `__libc_memalign`: untracked jemalloc `memalign`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn __libc_memalign(align: usize, size: usize) -> *mut c_void {
    real::memalign(align, size)
}

/// `__libc_valloc`: untracked jemalloc `valloc`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    real::valloc(size)
}

/// `__libc_pvalloc`: untracked.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    real::pvalloc(size)
}
