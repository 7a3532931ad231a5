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

use rt::__private::tag::{self, TAG_SIZE};
use rt::Op;

use super::tagging::{
    Mode, Owner, caller, mark_own, mode, read_tag, release, resize_own, resize_tracked,
    track_moved, tracked, untracked, write_tag,
};
use crate::real;

// In mode `Aside` (the program's malloc is neither glibc's nor jemalloc's)
// jemalloc's API still goes to the jemalloc this library carries: a program
// that calls `mallocx` expects jemalloc, and gets it, untracked.

export_with_caller!(
    /// `void *mallocx(size_t size, int flags)`: tracked; NULL on failure.
    ///
    /// # Safety
    /// C contract of mallocx(3) (size non-zero).
    fn mallocx(size: usize, flags: c_int) -> *mut c_void => mallocx_from, "rdx"
);

/// [`mallocx`] called from `ret`.
///
/// # Safety
/// As [`mallocx`].
unsafe extern "C" fn mallocx_from(size: usize, flags: c_int, ret: usize) -> *mut c_void {
    let alloc = |n| real::mallocx(n, flags);
    match mode() {
        Mode::Tracked => tracked(Op::Mallocx, size, caller(ret), alloc),
        m => untracked(m, size, alloc, || real::mallocx(size, flags)),
    }
}

export_with_caller!(
    /// `void *rallocx(void *ptr, size_t size, int flags)`: moves the block
    /// to the current site; on failure NULL, and `ptr` stays where it was.
    ///
    /// # Safety
    /// C contract of rallocx(3): `ptr` live, size non-zero.
    fn rallocx(ptr: *mut c_void, size: usize, flags: c_int) -> *mut c_void => rallocx_from, "rcx"
);

/// [`rallocx`] called from `ret`.
///
/// # Safety
/// As [`rallocx`].
unsafe extern "C" fn rallocx_from(
    ptr: *mut c_void,
    size: usize,
    flags: c_int,
    ret: usize,
) -> *mut c_void {
    let m = mode();
    if matches!(m, Mode::Plain | Mode::Aside) {
        // SAFETY: the caller's contract.
        return unsafe { real::rallocx(ptr, size, flags) };
    }
    // SAFETY: `ptr` is a live block (caller's contract).
    let (owner, usable) = unsafe { read_tag(ptr) };
    // SAFETY: `ptr` is live; `n` is non-zero (size + tag).
    let resize = |p, n| unsafe { real::rallocx(p, n, flags) };
    // SAFETY: as above; `size` is non-zero (caller's contract).
    unsafe {
        match (owner, m) {
            (Owner::Library, _) | (Owner::Foreign, Mode::Own) => {
                resize_own(ptr, owner, usable, size, resize)
            }
            _ => resize_tracked(Op::Rallocx, ptr, owner, usable, size, caller(ret), resize),
        }
    }
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
    let m = mode();
    if matches!(m, Mode::Plain | Mode::Aside) {
        // SAFETY: the caller's contract.
        return unsafe { real::xallocx(ptr, size, extra, flags) };
    }
    // SAFETY: `ptr` is a live block (caller's contract).
    let (owner, old_usable) = unsafe { read_tag(ptr) };
    let Some(n) = size.checked_add(TAG_SIZE) else {
        // Cannot be satisfied; the block is unchanged.
        if m == Mode::Tracked {
            rt::__private::engine::clear_pending();
        }
        return owner.program_usable(old_usable);
    };
    // SAFETY: as above; `n` is non-zero.
    let usable = unsafe { real::xallocx(ptr, n, extra, flags) };
    if usable == old_usable {
        // Not resized (or resized within its size class): nothing moved,
        // the tag is where it was.
        if m == Mode::Tracked {
            rt::__private::engine::clear_pending();
        }
        return owner.program_usable(old_usable);
    }
    // The block's size changed, and only to one of at least `n` (jemalloc
    // never resizes below the size asked for), so the new tag's 8 bytes are
    // beyond what the program was asked to use. The old tag, now inside
    // the block, is cleared.
    // SAFETY: `ptr` is live with `usable` real bytes; the old tag's bytes
    // are inside it (old_usable <= usable) or were released by a shrink.
    unsafe {
        if owner != Owner::Foreign && old_usable < usable {
            write_tag(ptr, old_usable, tag::CLEARED);
        }
        match (owner, m) {
            (Owner::Library, _) | (Owner::Foreign, Mode::Own) => {
                mark_own(ptr);
            }
            _ => track_moved(Op::Rallocx, ptr, owner, old_usable, 0),
        }
    }
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
    if matches!(mode(), Mode::Plain | Mode::Aside) {
        // SAFETY: the caller's contract.
        return unsafe { real::sallocx(ptr, flags) };
    }
    // SAFETY: `ptr` is a live block (caller's contract).
    match unsafe { read_tag(ptr) } {
        // SAFETY: as above.
        (Owner::Foreign, _) => unsafe { real::sallocx(ptr, flags) },
        (owner, usable) => owner.program_usable(usable),
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
        match mode() {
            m @ (Mode::Tracked | Mode::Own) => {
                release(Op::Dallocx, ptr, m);
            }
            Mode::Plain => {
                real::early::take(ptr as usize);
            }
            Mode::Aside => {}
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
    // SAFETY: `ptr` is a live block (caller's contract). A tagged block is
    // given its real usable size, a valid size for sdallocx with the
    // block's flags (the program's size excludes the tag, which could name
    // a smaller size class).
    unsafe {
        match mode() {
            m @ (Mode::Tracked | Mode::Own) => {
                let (_, usable) = release(Op::Dallocx, ptr, m);
                real::sdallocx(ptr, usable, flags)
            }
            Mode::Plain => {
                real::early::take(ptr as usize);
                real::sdallocx(ptr, size, flags)
            }
            Mode::Aside => real::sdallocx(ptr, size, flags),
        }
    }
}

export_forward!(
    /// `int mallctl(...)`: jemalloc's, untouched.
    unsafe fn mallctl(
        name: *const c_char,
        oldp: *mut c_void,
        oldlenp: *mut usize,
        newp: *mut c_void,
        newlen: usize,
    ) -> c_int => real::mallctl
);
export_forward!(
    /// `int mallctlnametomib(...)`: jemalloc's.
    unsafe fn mallctlnametomib(name: *const c_char, mibp: *mut usize, miblenp: *mut usize) -> c_int
        => real::mallctlnametomib
);
export_forward!(
    /// `int mallctlbymib(...)`: jemalloc's.
    unsafe fn mallctlbymib(
        mib: *const usize,
        miblen: usize,
        oldp: *mut c_void,
        oldlenp: *mut usize,
        newp: *mut c_void,
        newlen: usize,
    ) -> c_int => real::mallctlbymib
);
export_forward!(
    /// `void malloc_stats_print(...)`: jemalloc's.
    unsafe fn malloc_stats_print(
        write_cb: Option<real::WriteCb>,
        opaque: *mut c_void,
        opts: *const c_char,
    ) => real::malloc_stats_print
);

// ---------------------------------------------------------------------------
// glibc's bypass entry points: the real (untracked) allocator, jemalloc. A
// tracked block freed with `__libc_free` stays charged, as with glibc's
// `__libc_free` under libasmalloc.so.

export_forward!(
    /// `__libc_malloc`: untracked jemalloc `malloc`.
    fn __libc_malloc(size: usize) -> *mut c_void => real::malloc
);
export_forward!(
    /// `__libc_calloc`: untracked jemalloc `calloc`.
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void => real::calloc
);
export_forward!(
    /// `__libc_realloc`: untracked jemalloc `realloc`.
    unsafe fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void => real::realloc
);
export_forward!(
    /// `__libc_free`: untracked jemalloc `free`.
    unsafe fn __libc_free(ptr: *mut c_void) => real::free
);
export_forward!(
    /// `__libc_memalign`: untracked jemalloc `memalign`.
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void => real::memalign
);
export_forward!(
    /// `__libc_valloc`: untracked jemalloc `valloc`.
    fn __libc_valloc(size: usize) -> *mut c_void => real::valloc
);
export_forward!(
    /// `__libc_pvalloc`: untracked.
    fn __libc_pvalloc(size: usize) -> *mut c_void => real::pvalloc
);
