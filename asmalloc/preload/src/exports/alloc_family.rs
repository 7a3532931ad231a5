//! The interposed allocation family: `malloc` … `malloc_usable_size`,
//! each served as its call's mode says (tracked, the library's own, plain,
//! or stepped aside for another allocator).
//!
//! **errno**: tracking itself never sets it, so successful calls keep it,
//! and failures report exactly what the heap reports.

use std::ffi::{c_char, c_int, c_void};

use rt::__private::engine;
use rt::__private::tag::{self, TAG_SIZE};
use rt::Op;

use super::tagging::{
    Mode, Owner, caller, enomem, mark_own, mode, program_block, program_call, read_tag, release,
    resize_own, resize_tracked, track_new, tracked, tracked_fresh, tracked_unaligned, untracked,
    write_tag,
};
use crate::real;
use crate::syscalls::set_errno;

export_with_caller!(
    /// `malloc(3)`.
    ///
    /// # Safety
    /// C contract of malloc(3).
    fn malloc(size: usize) -> *mut c_void => malloc_from, "rsi"
);

/// [`malloc`] called from `ret`.
///
/// # Safety
/// As [`malloc`].
unsafe extern "C" fn malloc_from(size: usize, ret: usize) -> *mut c_void {
    match program_call() {
        Some(ready) => tracked_fresh(Op::Malloc, size, caller(ret), real::malloc, ready),
        // SAFETY: the caller's contract.
        None => unsafe { malloc_other(size, ret) },
    }
}

/// [`malloc_from`] for a call that is not the program's common case.
///
/// # Safety
/// As [`malloc`].
#[cold]
#[inline(never)]
unsafe extern "C" fn malloc_other(size: usize, ret: usize) -> *mut c_void {
    match mode() {
        Mode::Tracked => tracked_unaligned(Op::Malloc, size, caller(ret), real::malloc),
        m => untracked(m, size, real::malloc, || real::NEXT.malloc(size)),
    }
}

export_with_caller!(
    /// `calloc(3)`: overflow of `n * size` gives NULL and ENOMEM, as glibc.
    ///
    /// # Safety
    /// C contract of calloc(3).
    fn calloc(n: usize, size: usize) -> *mut c_void => calloc_from, "rdx"
);

/// [`calloc`] called from `ret`.
///
/// # Safety
/// As [`calloc`].
unsafe extern "C" fn calloc_from(n: usize, size: usize, ret: usize) -> *mut c_void {
    if let Some(ready) = program_call()
        && let Some(total) = n.checked_mul(size)
    {
        let alloc = |bytes| real::calloc(1, bytes);
        tracked_fresh(Op::Calloc, total, caller(ret), alloc, ready)
    } else {
        // SAFETY: the caller's contract.
        unsafe { calloc_other(n, size, ret) }
    }
}

/// [`calloc_from`] for a call that is not the program's common case.
///
/// # Safety
/// As [`calloc`].
#[cold]
#[inline(never)]
unsafe extern "C" fn calloc_other(n: usize, size: usize, ret: usize) -> *mut c_void {
    let m = mode();
    match (m, n.checked_mul(size)) {
        (Mode::Aside, _) => real::NEXT.calloc(n, size),
        (Mode::Plain, _) => untracked(m, 0, |_| real::calloc(n, size), std::ptr::null_mut),
        (Mode::Tracked, None) => enomem(),
        (_, None) => {
            set_errno(libc::ENOMEM);
            std::ptr::null_mut()
        }
        (Mode::Tracked, Some(total)) => {
            tracked_unaligned(Op::Calloc, total, caller(ret), |bytes| {
                real::calloc(1, bytes)
            })
        }
        (_, Some(total)) => untracked(m, total, |bytes| real::calloc(1, bytes), std::ptr::null_mut),
    }
}

/// `free(3)`: NULL is a no-op; errno is kept.
///
/// # Safety
/// C contract of free(3): `p` is NULL or a live block of this allocator.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: `p` is a live block (caller's contract).
    unsafe {
        match program_block(p) {
            Some((usable, site)) => free_program_block(p, usable, site),
            None => free_other(p),
        }
    }
}

/// [`free`] of a program block (see [`program_block`]): with no call but
/// the last, which is a jump, so the common path saves no register.
///
/// # Safety
/// `p` is a live program block of `usable` real bytes whose tag holds
/// `site`.
#[inline(always)]
unsafe fn free_program_block(p: *mut c_void, usable: usize, site: u16) {
    let bytes = usable - TAG_SIZE;
    // SAFETY: the tag's bytes are the block's, which is live.
    unsafe { write_tag(p, usable, tag::CLEARED) };
    if engine::record_free_fast(Op::Free, site, bytes) {
        // SAFETY: `p` is live (caller's contract).
        unsafe { real::free_sized(p, usable) }
    } else {
        // SAFETY: as above.
        unsafe { free_charging(p, usable, site, bytes) }
    }
}

/// The rest of [`free_program_block`] past the engine's common case.
/// `extern "C"`, so it cannot unwind and the call to it is a jump.
///
/// # Safety
/// As [`free_program_block`].
#[cold]
#[inline(never)]
unsafe extern "C" fn free_charging(p: *mut c_void, usable: usize, site: u16, bytes: usize) {
    engine::record_free(Op::Free, site, bytes);
    // SAFETY: `p` is live (caller's contract).
    unsafe { real::free_sized(p, usable) }
}

/// [`free`] of anything else: by the call's mode and the block's tag
/// (`extern "C"`, so that the call to it is a jump).
///
/// # Safety
/// As [`free`]; `p` is not null.
#[cold]
#[inline(never)]
unsafe extern "C" fn free_other(p: *mut c_void) {
    // SAFETY: `p` is a live block (caller's contract) of the allocator the
    // mode names.
    unsafe {
        match mode() {
            m @ (Mode::Tracked | Mode::Own) => match release(Op::Free, p, m) {
                // The library's own block: freed without retuning the
                // program's heap (see `real::free_own`).
                (Owner::Library, _) => real::free_own(p),
                (_, usable) => real::free_sized(p, usable),
            },
            Mode::Plain => {
                real::early::take(p as usize);
                real::free(p);
            }
            Mode::Aside => real::NEXT.free(p),
        }
    }
}

export_with_caller!(
    /// `realloc(3)` with glibc's rules: `realloc(NULL, n)` is `malloc(n)`,
    /// `realloc(p, 0)` frees `p` and returns NULL, a failure leaves `p` intact
    /// (and still charged where it was).
    ///
    /// # Safety
    /// C contract of realloc(3).
    fn realloc(p: *mut c_void, size: usize) -> *mut c_void => realloc_from, "rdx"
);

/// [`realloc`] called from `ret`.
///
/// # Safety
/// As [`realloc`].
unsafe extern "C" fn realloc_from(p: *mut c_void, size: usize, ret: usize) -> *mut c_void {
    let m = mode();
    match m {
        // SAFETY: the caller's contract.
        Mode::Aside => return unsafe { real::NEXT.realloc(p, size) },
        // SAFETY: the caller's contract.
        Mode::Plain => return unsafe { real::realloc(p, size) },
        Mode::Tracked | Mode::Own => {}
    }
    if p.is_null() {
        return match m {
            Mode::Tracked => tracked_unaligned(Op::Realloc, size, caller(ret), real::malloc),
            _ => untracked(m, size, real::malloc, std::ptr::null_mut),
        };
    }
    if size == 0 {
        // glibc's rule: the block is freed, NULL returned.
        // SAFETY: `p` is a live block (caller's contract).
        unsafe { free(p) };
        return std::ptr::null_mut();
    }
    // SAFETY: `p` is a live block (caller's contract); the heap is known.
    let (owner, usable) = unsafe { read_tag(p) };
    // SAFETY: `p` is live; `real::realloc` is its allocator's.
    let resize = |p, n| unsafe { real::realloc(p, n) };
    // SAFETY: as above; `size` is non-zero.
    unsafe {
        match (owner, m) {
            // The library's own blocks stay its own, whoever resizes them;
            // an untagged block the library resizes becomes its own.
            (Owner::Library, _) | (Owner::Foreign, Mode::Own) => {
                resize_own(p, owner, usable, size, resize)
            }
            _ => resize_tracked(Op::Realloc, p, owner, usable, size, caller(ret), resize),
        }
    }
}

export_with_caller!(
    /// `reallocarray(3)`: overflow of `n * size` gives NULL and ENOMEM and
    /// leaves `p` alone.
    ///
    /// # Safety
    /// C contract of reallocarray(3).
    fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void => reallocarray_from, "rcx"
);

/// [`reallocarray`] called from `ret`.
///
/// # Safety
/// As [`reallocarray`].
unsafe extern "C" fn reallocarray_from(
    p: *mut c_void,
    n: usize,
    size: usize,
    ret: usize,
) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: the caller's contract.
        Some(total) => unsafe { realloc_from(p, total, ret) },
        None => enomem(),
    }
}

export_with_caller!(
    /// `posix_memalign(3)`: EINVAL for a bad alignment, ENOMEM on failure.
    ///
    /// # Safety
    /// C contract of posix_memalign(3).
    fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int => posix_memalign_from, "rcx"
);

/// [`posix_memalign`] called from `ret`.
///
/// # Safety
/// As [`posix_memalign`].
unsafe extern "C" fn posix_memalign_from(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
    ret: usize,
) -> c_int {
    let m = mode();
    let n = match m {
        // SAFETY: the caller's contract.
        Mode::Aside => return unsafe { real::NEXT.posix_memalign(out, align, size) },
        // SAFETY: the caller's contract.
        Mode::Plain => return unsafe { real::posix_memalign(out, align, size) },
        Mode::Tracked | Mode::Own => match size.checked_add(TAG_SIZE) {
            Some(n) => n,
            None if m == Mode::Tracked => {
                engine::clear_pending();
                return libc::ENOMEM;
            }
            None => return libc::ENOMEM,
        },
    };
    // SAFETY: the caller's contract (`out` writable).
    let rc = unsafe { real::posix_memalign(out, align, n) };
    match (rc, m) {
        // SAFETY: on success `*out` is a fresh block of at least `n` bytes.
        (0, Mode::Tracked) => unsafe {
            track_new(Op::Memalign, *out, caller(ret));
        },
        // SAFETY: as above.
        (0, _) => unsafe {
            mark_own(*out);
        },
        (_, Mode::Tracked) => engine::clear_pending(),
        _ => {}
    }
    rc
}

export_with_caller!(
    /// `aligned_alloc(3)`.
    ///
    /// # Safety
    /// C contract of aligned_alloc(3).
    fn aligned_alloc(align: usize, size: usize) -> *mut c_void => aligned_alloc_from, "rdx"
);

/// [`aligned_alloc`] called from `ret`.
///
/// # Safety
/// As [`aligned_alloc`].
unsafe extern "C" fn aligned_alloc_from(align: usize, size: usize, ret: usize) -> *mut c_void {
    let alloc = |n| real::aligned_alloc(align, n);
    match mode() {
        Mode::Tracked => tracked(Op::Memalign, size, caller(ret), alloc),
        m => untracked(m, size, alloc, || real::NEXT.aligned_alloc(align, size)),
    }
}

export_with_caller!(
    /// `memalign(3)`.
    ///
    /// # Safety
    /// C contract of memalign(3).
    fn memalign(align: usize, size: usize) -> *mut c_void => memalign_from, "rdx"
);

/// [`memalign`] called from `ret`.
///
/// # Safety
/// As [`memalign`].
unsafe extern "C" fn memalign_from(align: usize, size: usize, ret: usize) -> *mut c_void {
    let alloc = |n| real::memalign(align, n);
    match mode() {
        Mode::Tracked => tracked(Op::Memalign, size, caller(ret), alloc),
        m => untracked(m, size, alloc, || real::NEXT.memalign(align, size)),
    }
}

export_with_caller!(
    /// `valloc(3)`.
    ///
    /// # Safety
    /// C contract of valloc(3).
    fn valloc(size: usize) -> *mut c_void => valloc_from, "rsi"
);

/// [`valloc`] called from `ret`.
///
/// # Safety
/// As [`valloc`].
unsafe extern "C" fn valloc_from(size: usize, ret: usize) -> *mut c_void {
    match mode() {
        Mode::Tracked => tracked(Op::Valloc, size, caller(ret), real::valloc),
        m => untracked(m, size, real::valloc, || real::NEXT.valloc(size)),
    }
}

export_with_caller!(
    /// `pvalloc(3)`.
    ///
    /// # Safety
    /// C contract of pvalloc(3).
    fn pvalloc(size: usize) -> *mut c_void => pvalloc_from, "rsi"
);

/// [`pvalloc`] called from `ret`.
///
/// # Safety
/// As [`pvalloc`].
unsafe extern "C" fn pvalloc_from(size: usize, ret: usize) -> *mut c_void {
    match mode() {
        Mode::Tracked => tracked(Op::Valloc, size, caller(ret), real::pvalloc),
        m => untracked(m, size, real::pvalloc, || real::NEXT.pvalloc(size)),
    }
}

/// Copies `len` bytes of `s` into a new block with a final NUL (tracked
/// when the program calls).
///
/// # Safety
/// `s` is readable for `len` bytes.
unsafe fn dup(op: Op, s: *const c_char, len: usize, ret: usize) -> *mut c_void {
    let Some(size) = len.checked_add(1) else {
        return enomem();
    };
    let p = match mode() {
        Mode::Tracked => tracked(op, size, caller(ret), real::malloc),
        m => untracked(m, size, real::malloc, || real::NEXT.malloc(size)),
    };
    if !p.is_null() {
        // SAFETY: `p` has room for `len + 1` bytes; `s` is readable for
        // `len` (caller) and cannot overlap a fresh block.
        unsafe {
            std::ptr::copy_nonoverlapping(s.cast::<u8>(), p.cast::<u8>(), len);
            p.cast::<u8>().add(len).write(0);
        }
    }
    p
}

export_with_caller!(
    /// `strdup(3)`, charged to a site like any allocation.
    ///
    /// # Safety
    /// `s` is a NUL-terminated string.
    fn strdup(s: *const c_char) -> *mut c_char => strdup_from, "rsi"
);

/// [`strdup`] called from `ret`.
///
/// # Safety
/// As [`strdup`].
unsafe extern "C" fn strdup_from(s: *const c_char, ret: usize) -> *mut c_char {
    // SAFETY: `s` is NUL-terminated (caller), so strlen is in bounds and
    // `len` bytes are readable.
    unsafe { dup(Op::Strdup, s, libc::strlen(s), ret).cast() }
}

export_with_caller!(
    /// `strndup(3)`.
    ///
    /// # Safety
    /// `s` is readable up to its NUL or `n` bytes, whichever comes first.
    fn strndup(s: *const c_char, n: usize) -> *mut c_char => strndup_from, "rdx"
);

/// [`strndup`] called from `ret`.
///
/// # Safety
/// As [`strndup`].
unsafe extern "C" fn strndup_from(s: *const c_char, n: usize, ret: usize) -> *mut c_char {
    // SAFETY: strnlen reads at most `n` bytes and stops at a NUL, both
    // readable by the caller's contract; so are the `len` bytes copied.
    unsafe { dup(Op::Strndup, s, libc::strnlen(s, n), ret).cast() }
}

/// `malloc_usable_size(3)`: what the program may use — the real usable size
/// less our tag for tagged blocks.
///
/// # Safety
/// `p` is NULL or a live block of this allocator.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    // The jemalloc build's common case, with one call (redis asks twice
    // per allocation: after `malloc` and before `free`). Every block that
    // build hands out carries a tag (its heap is ready before the first
    // call, so no block is ever untagged, and jemalloc's smallest class
    // is the 8 bytes of the tag alone), so the tag need not be checked,
    // on the program's threads or on the library's own. A block whose tag
    // the program overwrote is then reported 8 bytes short, which is safe
    // (less than it may use).
    if cfg!(jemalloc_backend) && !p.is_null() && real::ready().is_some() {
        // SAFETY: `p` is a live block of the heap (caller's contract),
        // which is resolved.
        return unsafe { real::usable_size(p) }.saturating_sub(TAG_SIZE);
    }
    // SAFETY: the caller's contract.
    unsafe { malloc_usable_size_other(p) }
}

/// [`malloc_usable_size`] past the jemalloc build's common case
/// (`extern "C"`, so the call to it is a jump).
///
/// # Safety
/// As [`malloc_usable_size`].
#[cold]
#[inline(never)]
unsafe extern "C" fn malloc_usable_size_other(p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    // SAFETY: `p` is a live block (caller's contract) of the allocator the
    // mode names.
    unsafe {
        match mode() {
            Mode::Aside => real::NEXT.usable_size(p),
            Mode::Plain => real::usable_size(p),
            // As in `malloc_usable_size`: every block of the jemalloc
            // build is tagged.
            Mode::Tracked | Mode::Own if cfg!(jemalloc_backend) => {
                real::usable_size(p).saturating_sub(TAG_SIZE)
            }
            Mode::Tracked | Mode::Own => {
                let (owner, usable) = read_tag(p);
                owner.program_usable(usable)
            }
        }
    }
}
