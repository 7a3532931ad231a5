//! jemalloc's heap (libasmalloc_jem.so).
//!
//! jemalloc 5.3 is built from source by `tikv-jemalloc-sys` and linked into
//! this library statically, with its symbols prefixed `_rjem_`: the library
//! itself exports the unprefixed `malloc` … `sdallocx`, tracks, and
//! forwards here. Nothing needs `dlsym`, so these work from the first call.
//! jemalloc's own `mmap`/`munmap`/`sbrk` calls are routed past the
//! library's counting wrappers (`--wrap`, see build.rs and shim.c).
//!
//! jemalloc reads its options from `_RJEM_MALLOC_CONF` (the prefixed name),
//! not `MALLOC_CONF`.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use tikv_jemalloc_sys as jem;

use super::Ready;

unsafe extern "C" {
    // Exported by jemalloc but not declared by tikv-jemalloc-sys.
    #[link_name = "_rjem_memalign"]
    safe fn rjem_memalign(align: usize, size: usize) -> *mut c_void;
    #[link_name = "_rjem_valloc"]
    safe fn rjem_valloc(size: usize) -> *mut c_void;
}

/// `malloc(size)` of jemalloc.
#[inline(always)]
pub(crate) fn malloc(size: usize) -> *mut c_void {
    // SAFETY: malloc accepts any size.
    unsafe { jem::malloc(size) }
}

/// `calloc(n, size)` of jemalloc (which checks `n * size` for overflow).
#[inline(always)]
pub(crate) fn calloc(n: usize, size: usize) -> *mut c_void {
    // SAFETY: calloc accepts any arguments.
    unsafe { jem::calloc(n, size) }
}

/// `memalign(align, size)` of jemalloc.
#[inline(always)]
pub(crate) fn memalign(align: usize, size: usize) -> *mut c_void {
    rjem_memalign(align, size)
}

/// `valloc(size)` of jemalloc.
#[inline(always)]
pub(crate) fn valloc(size: usize) -> *mut c_void {
    rjem_valloc(size)
}

/// `pvalloc(size)`, which jemalloc lacks: page-aligned, the size rounded
/// up to whole pages (one page for 0), as glibc's. Overflow gives NULL and
/// ENOMEM.
pub(crate) fn pvalloc(size: usize) -> *mut c_void {
    let page = crate::syscalls::page_size();
    match size.checked_next_multiple_of(page) {
        Some(n) => memalign(page, n.max(page)),
        None => {
            crate::syscalls::set_errno(libc::ENOMEM);
            std::ptr::null_mut()
        }
    }
}

/// `realloc(ptr, size)` of jemalloc.
///
/// # Safety
/// `ptr` is null or a live block of jemalloc.
#[inline(always)]
pub(crate) unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: the caller's contract is jemalloc's.
    unsafe { jem::realloc(ptr, size) }
}

/// `free(ptr)` of jemalloc.
///
/// # Safety
/// `ptr` is null or a live block of jemalloc.
#[inline(always)]
pub(crate) unsafe fn free(ptr: *mut c_void) {
    // SAFETY: the caller's contract is jemalloc's.
    unsafe { jem::free(ptr) }
}

/// Frees a block whose real usable size is known: `sdallocx` with that size
/// skips the lookup jemalloc's `free` would repeat (the tag read already
/// did one).
///
/// # Safety
/// `ptr` is a live block of jemalloc and `usable` its `sallocx` size.
#[inline(always)]
pub(crate) unsafe fn free_sized(ptr: *mut c_void, usable: usize) {
    // SAFETY: `usable` is the block's size class, which sdallocx accepts
    // (any size between the request and the usable size is valid).
    unsafe { jem::sdallocx(ptr, usable, 0) }
}

/// `free` of a block of the library's own (jemalloc has no thresholds a
/// free retunes, unlike glibc: see the glibc build's `free_own`).
///
/// # Safety
/// `ptr` is a live, non-null block of jemalloc.
#[inline(always)]
pub(crate) unsafe fn free_own(ptr: *mut c_void) {
    // SAFETY: the caller's contract.
    unsafe { free(ptr) }
}

/// The real usable size of a jemalloc block (our tag included).
///
/// # Safety
/// `ptr` is a live, non-null block of jemalloc.
#[inline(always)]
pub(crate) unsafe fn usable_size(ptr: *mut c_void) -> usize {
    // SAFETY: the caller's contract.
    unsafe { jem::sallocx(ptr, 0) }
}

/// [`usable_size`] (the glibc build's needs no call with a [`Ready`]).
///
/// # Safety
/// `ptr` is a live, non-null block of jemalloc.
#[inline(always)]
pub(crate) unsafe fn usable_size_known(ptr: *mut c_void, _: Ready) -> usize {
    // SAFETY: the caller's contract.
    unsafe { usable_size(ptr) }
}

/// Whether jemalloc's size classes are the inline formula's
/// (`rt::__private::size_classes`), checked once by [`resolve`].
static FORMULA_AGREES: AtomicBool = AtomicBool::new(false);

/// The real usable size of a block `malloc(requested)` or
/// `calloc(1, requested)` just returned: the size class, computed inline
/// when the formula was checked, else asked of jemalloc (`sallocx`).
///
/// # Safety
/// `ptr` is a live, non-null block of jemalloc, fresh from `malloc` or
/// `calloc` of `requested` bytes.
#[inline(always)]
pub(crate) unsafe fn usable_size_of_fresh(ptr: *mut c_void, requested: usize) -> usize {
    if FORMULA_AGREES.load(Ordering::Relaxed) {
        rt::__private::size_classes::jemalloc_class(requested)
    } else {
        // SAFETY: the caller's contract.
        unsafe { usable_size(ptr) }
    }
}

/// [`usable_size_of_fresh`] by the size-class formula, which [`Ready`]
/// says was checked.
///
/// # Safety
/// As [`usable_size_of_fresh`].
#[inline(always)]
pub(crate) unsafe fn usable_size_of_fresh_known(
    _ptr: *mut c_void,
    requested: usize,
    _: Ready,
) -> usize {
    rt::__private::size_classes::jemalloc_class(requested)
}

/// True when the size-class formula agrees with jemalloc's (see
/// [`Ready`]).
pub(super) fn inline_sizes() -> bool {
    FORMULA_AGREES.load(Ordering::Relaxed)
}

/// jemalloc's `posix_memalign` (EINVAL for a bad alignment, ENOMEM).
///
/// # Safety
/// `out` is valid for writing a pointer.
pub(crate) unsafe fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    // SAFETY: the caller guarantees `out` is writable.
    unsafe { jem::posix_memalign(out, align, size) }
}

/// jemalloc's `aligned_alloc`.
pub(crate) fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    // SAFETY: aligned_alloc validates its arguments and returns NULL with
    // errno set for bad ones.
    unsafe { jem::aligned_alloc(align, size) }
}

/// Nothing to look up; tells the core that reports describe jemalloc, and
/// checks the inline size-class formula against `nallocx`.
pub(super) fn resolve() -> bool {
    rt::report::set_jemalloc_stats(stats);
    let agrees = rt::__private::size_classes::formula_agrees(|size| {
        // SAFETY: nallocx only computes a size (`size` is never 0 here).
        unsafe { jem::nallocx(size, 0) }
    });
    FORMULA_AGREES.store(agrees, Ordering::Relaxed);
    true
}

// ---------------------------------------------------------------------------
// jemalloc's own API (`*allocx`).
//
// jemalloc leaves a size of 0 undefined for `mallocx`, `rallocx`, `xallocx`
// and `nallocx`; a program may still pass one. These wrappers ask for 1
// byte instead — what `malloc(0)` does — so no size from the program can
// reach jemalloc undefined.

/// `mallocx(size, flags)` of jemalloc (size 0 asks for 1 byte).
#[inline(always)]
pub(crate) fn mallocx(size: usize, flags: c_int) -> *mut c_void {
    // SAFETY: the size is non-zero; flags are the program's, passed
    // through as jemalloc defines them.
    unsafe { jem::mallocx(size.max(1), flags) }
}

/// `rallocx(ptr, size, flags)` of jemalloc (size 0 asks for 1 byte).
///
/// # Safety
/// `ptr` is a live jemalloc block.
#[inline(always)]
pub(crate) unsafe fn rallocx(ptr: *mut c_void, size: usize, flags: c_int) -> *mut c_void {
    // SAFETY: the caller's contract for `ptr`; the size is non-zero.
    unsafe { jem::rallocx(ptr, size.max(1), flags) }
}

/// `xallocx(ptr, size, extra, flags)` of jemalloc: the real usable size
/// after trying to resize in place (size 0 asks for 1 byte).
///
/// # Safety
/// `ptr` is a live jemalloc block.
#[inline(always)]
pub(crate) unsafe fn xallocx(ptr: *mut c_void, size: usize, extra: usize, flags: c_int) -> usize {
    // SAFETY: the caller's contract for `ptr`; the size is non-zero.
    unsafe { jem::xallocx(ptr, size.max(1), extra, flags) }
}

/// `sallocx(ptr, flags)` of jemalloc.
///
/// # Safety
/// `ptr` is a live jemalloc block.
#[inline(always)]
pub(crate) unsafe fn sallocx(ptr: *mut c_void, flags: c_int) -> usize {
    // SAFETY: the caller's contract is jemalloc's.
    unsafe { jem::sallocx(ptr, flags) }
}

/// `nallocx(size, flags)` of jemalloc (0 when the size is too large; size
/// 0 is taken as 1).
#[inline(always)]
pub(crate) fn nallocx(size: usize, flags: c_int) -> usize {
    // SAFETY: nallocx only computes a size; the size is non-zero.
    unsafe { jem::nallocx(size.max(1), flags) }
}

/// `dallocx(ptr, flags)` of jemalloc.
///
/// # Safety
/// `ptr` is a live jemalloc block.
#[inline(always)]
pub(crate) unsafe fn dallocx(ptr: *mut c_void, flags: c_int) {
    // SAFETY: the caller's contract is jemalloc's.
    unsafe { jem::dallocx(ptr, flags) }
}

/// `sdallocx(ptr, size, flags)` of jemalloc.
///
/// # Safety
/// `ptr` is a live jemalloc block and `size` between its request and its
/// usable size.
#[inline(always)]
pub(crate) unsafe fn sdallocx(ptr: *mut c_void, size: usize, flags: c_int) {
    // SAFETY: the caller's contract is jemalloc's.
    unsafe { jem::sdallocx(ptr, size, flags) }
}

/// `mallctl` of jemalloc.
///
/// # Safety
/// As mallctl(3).
pub(crate) unsafe fn mallctl(
    name: *const c_char,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *mut c_void,
    newlen: usize,
) -> c_int {
    // SAFETY: the caller's contract is jemalloc's.
    unsafe { jem::mallctl(name, oldp, oldlenp, newp, newlen) }
}

/// `mallctlnametomib` of jemalloc.
///
/// # Safety
/// As mallctl(3).
pub(crate) unsafe fn mallctlnametomib(
    name: *const c_char,
    mibp: *mut usize,
    miblenp: *mut usize,
) -> c_int {
    // SAFETY: the caller's contract is jemalloc's.
    unsafe { jem::mallctlnametomib(name, mibp, miblenp) }
}

/// `mallctlbymib` of jemalloc.
///
/// # Safety
/// As mallctl(3).
pub(crate) unsafe fn mallctlbymib(
    mib: *const usize,
    miblen: usize,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *mut c_void,
    newlen: usize,
) -> c_int {
    // SAFETY: the caller's contract is jemalloc's.
    unsafe { jem::mallctlbymib(mib, miblen, oldp, oldlenp, newp, newlen) }
}

/// A `malloc_stats_print` write callback.
pub(crate) type WriteCb = unsafe extern "C" fn(*mut c_void, *const c_char);

/// `malloc_stats_print` of jemalloc.
///
/// # Safety
/// As malloc_stats_print(3): `write_cb` is None or callable with `opaque`;
/// `opts` is NULL or a C string.
pub(crate) unsafe fn malloc_stats_print(
    write_cb: Option<WriteCb>,
    opaque: *mut c_void,
    opts: *const c_char,
) {
    // SAFETY: the caller's contract is jemalloc's.
    unsafe { jem::malloc_stats_print(write_cb, opaque, opts) }
}

// ---------------------------------------------------------------------------
// Statistics for reports.

/// jemalloc's totals (after refreshing its statistics epoch).
fn stats() -> Option<rt::report::JemallocStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some(rt::report::JemallocStats {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        mapped: stats::mapped::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
    })
}

/// Appends one `malloc_stats_print` chunk to the `Vec<u8>` at `opaque`.
unsafe extern "C" fn collect(opaque: *mut c_void, text: *const c_char) {
    if opaque.is_null() || text.is_null() {
        return;
    }
    // SAFETY: `opaque` is the `&mut Vec<u8>` `stats_text` passed, alive for
    // the malloc_stats_print call; `text` is a C string jemalloc owns for
    // this call.
    unsafe {
        let out = &mut *opaque.cast::<Vec<u8>>();
        out.extend_from_slice(std::ffi::CStr::from_ptr(text).to_bytes());
    }
}

/// jemalloc's `malloc_stats_print` text (merged arena statistics; the
/// per-arena breakdown is left out). Call with the reentrancy guard held:
/// the text is collected in a Vec.
pub(crate) fn stats_text() -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    // SAFETY: `collect` appends to `out`, which outlives the call; "a" is a
    // valid options string (omit per-arena statistics).
    unsafe {
        malloc_stats_print(
            Some(collect),
            (&raw mut out).cast::<c_void>(),
            c"a".as_ptr(),
        )
    };
    out
}
