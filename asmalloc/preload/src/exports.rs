//! Every symbol the library exports to C: the interposed allocation family,
//! memory mapping, shared memory, `brk`/`sbrk`, `pthread_create`, the
//! original ASMalloc API, and the constructor and destructor.
//!
//! **Tags.** Every block handed out by a tracked call is allocated 8 bytes
//! larger; the last 8 bytes of its real usable size hold the site tag
//! (`asmalloc::tag`), and our `malloc_usable_size` reports the usable size
//! less those 8 bytes, so the program can never overwrite the tag. A free
//! whose tag does not validate (a block from `__libc_malloc` called
//! directly, one allocated under the reentrancy guard, …) is counted as a
//! foreign free and forwarded — never a crash, never a wrong site.
//!
//! **Charged bytes** of a block = real usable size − 8 = what our
//! `malloc_usable_size` returns.
//!
//! **errno**: tracking itself never sets it (the user's callback runs with
//! errno saved and restored), so successful calls keep it, and failures
//! report exactly what glibc reports.

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

use rt::Op;
use rt::__private::engine;
use rt::__private::tag::{self, TAG_SIZE};

use crate::guard::{self, Guard};

// jemalloc's own API (mallocx … sdallocx, mallctl), `__libc_malloc` & co.
#[cfg(jemalloc_backend)]
#[path = "exports_jem.rs"]
mod jem;
use crate::syscalls::{self, errno, set_errno};
use crate::{api, real, report, settings, shm, threads};

// ---------------------------------------------------------------------------
// Who is calling, and whose block it is.

/// How an allocation-family call is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The program's call: tagged and charged to its site.
    Tracked,
    /// The library's own work (the reentrancy guard is held): the block
    /// gets an *own* tag and is never charged; a program block freed or
    /// resized here (by the user's callback, say) is still charged back.
    Own,
    /// Before the heap is known (a nested call from inside `dlsym`) or if
    /// it could not be: forwarded untagged.
    Plain,
    /// The library stepped aside for the program's own allocator
    /// (`real/foreign.rs`): forwarded to it, untouched.
    Aside,
}

/// The mode of this call: one TLS read and one load when tracked.
#[inline(always)]
fn mode() -> Mode {
    if !guard::held() && real::ensure() {
        Mode::Tracked
    } else {
        other_mode()
    }
}

#[cold]
#[inline(never)]
fn other_mode() -> Mode {
    let ready = real::ensure();
    if real::stepped_aside() {
        Mode::Aside
    } else if !ready {
        Mode::Plain
    } else {
        Mode::Own
    }
}

/// Whose a block is, by its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// The program's, charged to this site.
    Program(u16),
    /// The library's own (see [`Mode::Own`]).
    Library,
    /// Untagged: from before tracking, from `__libc_malloc` called
    /// directly, or overwritten.
    Foreign,
}

impl Owner {
    /// The site of a program block.
    fn site(self) -> Option<u16> {
        match self {
            Owner::Program(site) => Some(site),
            Owner::Library | Owner::Foreign => None,
        }
    }

    /// Bytes of a block of `usable` real bytes the program may use.
    fn program_usable(self, usable: usize) -> usize {
        match self {
            Owner::Program(_) | Owner::Library => usable - TAG_SIZE,
            Owner::Foreign => usable,
        }
    }
}

/// Whose block `p` is, and its real usable size.
///
/// # Safety
/// `p` is a live, non-null block of the real allocator, which is resolved
/// (mode `Tracked` or `Own`).
#[inline(always)]
unsafe fn read_tag(p: *mut c_void) -> (Owner, usize) {
    // SAFETY: `p` is a live block of the real allocator.
    let usable = unsafe { real::usable_size(p) };
    if usable < TAG_SIZE {
        return (Owner::Foreign, usable);
    }
    // SAFETY: the block's usable bytes are readable; the tag is its last 8.
    let word = unsafe { tag::read(p.cast::<u8>().add(usable - TAG_SIZE)) };
    let owner = match tag::decode(p as usize, usable, word) {
        Some(site) => Owner::Program(site),
        None if tag::is_own(p as usize, usable, word) => Owner::Library,
        None => Owner::Foreign,
    };
    (owner, usable)
}

/// Writes `word` as the tag of the block `p` of `usable` real bytes.
///
/// # Safety
/// `p` is a live block of at least `usable >= TAG_SIZE` usable bytes whose
/// last `TAG_SIZE` the program was never told it may use.
#[inline(always)]
unsafe fn write_tag(p: *mut c_void, usable: usize, word: u64) {
    // SAFETY: the caller's contract.
    unsafe { tag::write(p.cast::<u8>().add(usable - TAG_SIZE), word) }
}

/// Charges a fresh block of the real allocator to the current site and
/// writes its tag. Null passes through.
///
/// # Safety
/// `p` is null or a live block of the real allocator at least `TAG_SIZE`
/// bytes larger than the program asked for.
#[inline(always)]
unsafe fn track_new(op: Op, p: *mut c_void) -> *mut c_void {
    if p.is_null() {
        // A failed call still uses up a pending one-shot site, so it does
        // not land on the thread's next, unrelated allocation.
        engine::clear_pending();
        return p;
    }
    // SAFETY: `p` is a live block.
    let usable = unsafe { real::usable_size(p) };
    let site = engine::record_alloc(op, usable - TAG_SIZE);
    // SAFETY: `usable >= TAG_SIZE` (we asked for TAG_SIZE more than the
    // program), and the program is told it may use only `usable - TAG_SIZE`.
    unsafe { write_tag(p, usable, tag::encode(p as usize, usable, site)) };
    p
}

/// Gives a fresh block of the real allocator an own tag. Null passes
/// through.
///
/// # Safety
/// As [`track_new`].
#[inline]
unsafe fn mark_own(p: *mut c_void) -> *mut c_void {
    if !p.is_null() {
        // SAFETY: `p` is a live block.
        let usable = unsafe { real::usable_size(p) };
        // SAFETY: as in track_new.
        unsafe { write_tag(p, usable, tag::encode_own(p as usize, usable)) };
    }
    p
}

/// Uncharges (a program block) or unmarks (an own block) a block about to
/// be freed, and clears its tag, so that an untagged block later reusing
/// the memory never carries a stale tag that still validates. A foreign
/// block is counted as such on the program's calls (`mode` `Tracked`),
/// unless it is one the library's heap handed out inside `dlsym` (which is
/// forgotten instead). Returns the block's real usable size.
///
/// # Safety
/// `p` is a live, non-null block of the real allocator, which is resolved.
#[inline(always)]
unsafe fn release(op: Op, p: *mut c_void, mode: Mode) -> usize {
    // SAFETY: forwarded.
    let (owner, usable) = unsafe { read_tag(p) };
    match owner {
        Owner::Program(site) => {
            engine::record_free(op, site, usable - TAG_SIZE);
            // SAFETY: the tag's bytes are the block's, which is live.
            unsafe { write_tag(p, usable, tag::CLEARED) };
        }
        // SAFETY: as above.
        Owner::Library => unsafe { write_tag(p, usable, tag::CLEARED) },
        Owner::Foreign => {
            if !real::early::take(p as usize) && mode == Mode::Tracked {
                engine::record_foreign_free(usable);
            }
        }
    }
    usable
}

/// Charges a block a `realloc`-like call resized or moved (from a block
/// owned by `old` with `old_usable` real bytes) to the current site, and
/// tags it.
///
/// # Safety
/// `q` is a live, non-null block of the real allocator at least `TAG_SIZE`
/// bytes larger than the program asked for.
#[inline(always)]
unsafe fn track_moved(op: Op, q: *mut c_void, old: Owner, old_usable: usize) {
    // SAFETY: `q` is a live block (caller).
    let usable = unsafe { real::usable_size(q) };
    let site = engine::record_realloc(
        op,
        old.site(),
        old.program_usable(old_usable),
        usable - TAG_SIZE,
    );
    // SAFETY: as in track_new.
    unsafe { write_tag(q, usable, tag::encode(q as usize, usable, site)) };
}

/// A failed call: NULL with ENOMEM. Like a failed allocation it uses up a
/// pending one-shot site, so the site does not land on the thread's next,
/// unrelated allocation.
fn enomem() -> *mut c_void {
    engine::clear_pending();
    set_errno(libc::ENOMEM);
    std::ptr::null_mut()
}

/// A tracked allocation of `size` bytes made by `alloc` (which receives
/// the size with room for the tag).
#[inline(always)]
fn tracked(op: Op, size: usize, alloc: impl FnOnce(usize) -> *mut c_void) -> *mut c_void {
    let Some(n) = size.checked_add(TAG_SIZE) else {
        return enomem();
    };
    let p = alloc(n);
    // SAFETY: `p` is null or a fresh block of at least `n` bytes.
    unsafe { track_new(op, p) }
}

/// An untracked allocation of `size` bytes in `mode`: by `alloc` with an
/// own tag (`Own`, which gets the size with room for the tag), by `alloc`
/// plainly (`Plain`), or by `aside` (the program's allocator).
#[cold]
#[inline(never)]
fn untracked(
    mode: Mode,
    size: usize,
    alloc: impl FnOnce(usize) -> *mut c_void,
    aside: impl FnOnce() -> *mut c_void,
) -> *mut c_void {
    match mode {
        Mode::Aside => aside(),
        Mode::Plain => {
            let p = alloc(size);
            if real::resolving() {
                real::early::note(p as usize);
            }
            p
        }
        Mode::Own | Mode::Tracked => {
            let Some(n) = size.checked_add(TAG_SIZE) else {
                set_errno(libc::ENOMEM);
                return std::ptr::null_mut();
            };
            // SAFETY: null or a fresh block of at least `n` bytes.
            unsafe { mark_own(alloc(n)) }
        }
    }
}

// ---------------------------------------------------------------------------
// The allocation family.

/// `malloc(3)`.
///
/// # Safety
/// C contract of malloc(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    match mode() {
        Mode::Tracked => tracked(Op::Malloc, size, real::malloc),
        m => untracked(m, size, real::malloc, || real::NEXT.malloc(size)),
    }
}

/// `calloc(3)`: overflow of `n * size` gives NULL and ENOMEM, as glibc.
///
/// # Safety
/// C contract of calloc(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    let m = mode();
    match (m, n.checked_mul(size)) {
        (Mode::Aside, _) => real::NEXT.calloc(n, size),
        (Mode::Plain, _) => untracked(m, 0, |_| real::calloc(n, size), std::ptr::null_mut),
        (Mode::Tracked, None) => enomem(),
        (_, None) => {
            set_errno(libc::ENOMEM);
            std::ptr::null_mut()
        }
        (Mode::Tracked, Some(total)) => tracked(Op::Calloc, total, |bytes| real::calloc(1, bytes)),
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
    // SAFETY: `p` is a live block (caller's contract) of the allocator the
    // mode names.
    unsafe {
        match mode() {
            m @ (Mode::Tracked | Mode::Own) => {
                let usable = release(Op::Free, p, m);
                real::free_sized(p, usable);
            }
            Mode::Plain => {
                real::early::take(p as usize);
                real::free(p);
            }
            Mode::Aside => real::NEXT.free(p),
        }
    }
}

/// `realloc(3)` with glibc's rules: `realloc(NULL, n)` is `malloc(n)`,
/// `realloc(p, 0)` frees `p` and returns NULL, a failure leaves `p` intact
/// (and still charged where it was).
///
/// # Safety
/// C contract of realloc(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
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
            Mode::Tracked => tracked(Op::Realloc, size, real::malloc),
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
            _ => resize_tracked(Op::Realloc, p, owner, usable, size, resize),
        }
    }
}

/// Resizes a program (or foreign) block with `resize` (given the block and
/// the size with room for the tag) and charges it to the current site.
///
/// # Safety
/// `p` is a live block of the real allocator owned by `owner`, with
/// `usable` real bytes; `size` is non-zero; `resize` is the real
/// allocator's realloc-like call for `p`.
#[inline(always)]
unsafe fn resize_tracked(
    op: Op,
    p: *mut c_void,
    owner: Owner,
    usable: usize,
    size: usize,
    resize: impl FnOnce(*mut c_void, usize) -> *mut c_void,
) -> *mut c_void {
    let Some(n) = size.checked_add(TAG_SIZE) else {
        return enomem();
    };
    // The old tag is cleared first: the block may grow in place, and a
    // stale tag must not survive inside it.
    if owner.site().is_some() {
        // SAFETY: the block is live and the tag's bytes are its own.
        unsafe { write_tag(p, usable, tag::CLEARED) };
    }
    let q = resize(p, n);
    if q.is_null() {
        if let Some(site) = owner.site() {
            // SAFETY: a failed resize leaves `p` as it was.
            unsafe { write_tag(p, usable, tag::encode(p as usize, usable, site)) };
        }
        engine::clear_pending();
        return q;
    }
    // SAFETY: `q` is a live block of at least `n` bytes.
    unsafe { track_moved(op, q, owner, usable) };
    q
}

/// Resizes the library's own block (or an untagged one, under the guard)
/// with `resize`: it stays the library's, never charged.
///
/// # Safety
/// As [`resize_tracked`].
#[cold]
unsafe fn resize_own(
    p: *mut c_void,
    owner: Owner,
    usable: usize,
    size: usize,
    resize: impl FnOnce(*mut c_void, usize) -> *mut c_void,
) -> *mut c_void {
    let Some(n) = size.checked_add(TAG_SIZE) else {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    if owner == Owner::Library {
        // SAFETY: the block is live and the tag's bytes are its own.
        unsafe { write_tag(p, usable, tag::CLEARED) };
    }
    let q = resize(p, n);
    if q.is_null() {
        if owner == Owner::Library {
            // SAFETY: a failed resize leaves `p` as it was.
            unsafe { write_tag(p, usable, tag::encode_own(p as usize, usable)) };
        }
        return q;
    }
    // SAFETY: `q` is a live block at least TAG_SIZE larger than asked.
    unsafe { mark_own(q) }
}

/// `reallocarray(3)`: overflow of `n * size` gives NULL and ENOMEM and
/// leaves `p` alone.
///
/// # Safety
/// C contract of reallocarray(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: the caller's contract.
        Some(total) => unsafe { realloc(p, total) },
        None => enomem(),
    }
}

/// `posix_memalign(3)`: EINVAL for a bad alignment, ENOMEM on failure.
///
/// # Safety
/// C contract of posix_memalign(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
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
            track_new(Op::Memalign, *out);
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

/// `aligned_alloc(3)`.
///
/// # Safety
/// C contract of aligned_alloc(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    let alloc = |n| real::aligned_alloc(align, n);
    match mode() {
        Mode::Tracked => tracked(Op::Memalign, size, alloc),
        m => untracked(m, size, alloc, || real::NEXT.aligned_alloc(align, size)),
    }
}

/// `memalign(3)`.
///
/// # Safety
/// C contract of memalign(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    let alloc = |n| real::memalign(align, n);
    match mode() {
        Mode::Tracked => tracked(Op::Memalign, size, alloc),
        m => untracked(m, size, alloc, || real::NEXT.memalign(align, size)),
    }
}

/// `valloc(3)`.
///
/// # Safety
/// C contract of valloc(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    match mode() {
        Mode::Tracked => tracked(Op::Valloc, size, real::valloc),
        m => untracked(m, size, real::valloc, || real::NEXT.valloc(size)),
    }
}

/// `pvalloc(3)`.
///
/// # Safety
/// C contract of pvalloc(3).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    match mode() {
        Mode::Tracked => tracked(Op::Valloc, size, real::pvalloc),
        m => untracked(m, size, real::pvalloc, || real::NEXT.pvalloc(size)),
    }
}

/// Copies `len` bytes of `s` into a new block with a final NUL (tracked
/// when the program calls).
///
/// # Safety
/// `s` is readable for `len` bytes.
unsafe fn dup(op: Op, s: *const c_char, len: usize) -> *mut c_void {
    let Some(size) = len.checked_add(1) else {
        return enomem();
    };
    let p = match mode() {
        Mode::Tracked => tracked(op, size, real::malloc),
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

/// `strdup(3)`, charged to a site like any allocation.
///
/// # Safety
/// `s` is a NUL-terminated string.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn strdup(s: *const c_char) -> *mut c_char {
    // SAFETY: `s` is NUL-terminated (caller), so strlen is in bounds and
    // `len` bytes are readable.
    unsafe { dup(Op::Strdup, s, libc::strlen(s)).cast() }
}

/// `strndup(3)`.
///
/// # Safety
/// `s` is readable up to its NUL or `n` bytes, whichever comes first.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn strndup(s: *const c_char, n: usize) -> *mut c_char {
    // SAFETY: strnlen reads at most `n` bytes and stops at a NUL, both
    // readable by the caller's contract; so are the `len` bytes copied.
    unsafe { dup(Op::Strndup, s, libc::strnlen(s, n)).cast() }
}

/// `malloc_usable_size(3)`: what the program may use — the real usable size
/// less our tag for tagged blocks.
///
/// # Safety
/// `p` is NULL or a live block of this allocator.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    // SAFETY: `p` is a live block (caller's contract) of the allocator the
    // mode names.
    unsafe {
        match mode() {
            Mode::Aside => real::NEXT.usable_size(p),
            Mode::Plain => real::usable_size(p),
            Mode::Tracked | Mode::Own => {
                let (owner, usable) = read_tag(p);
                owner.program_usable(usable)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Mappings: net bytes mapped by the program (page-rounded).

fn pages(len: usize) -> i64 {
    let page = syscalls::page_size();
    (len.div_ceil(page).saturating_mul(page)) as i64
}

fn count_mapping(op: Op, bytes: usize, net: i64) {
    if guard::held() {
        return;
    }
    let saved = errno();
    engine::record_op(op, bytes);
    engine::add_net_mapped(net);
    set_errno(saved);
}

/// `mmap(2)`.
///
/// # Safety
/// C contract of mmap(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: i64,
) -> *mut c_void {
    let p = syscalls::mmap(addr, len, prot, flags, fd, offset);
    if p != libc::MAP_FAILED {
        count_mapping(Op::Mmap, len, pages(len));
    }
    p
}

/// `mmap64(2)` (the same call on 64-bit Linux).
///
/// # Safety
/// C contract of mmap(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: i64,
) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { mmap(addr, len, prot, flags, fd, offset) }
}

/// `munmap(2)`.
///
/// # Safety
/// C contract of munmap(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: usize) -> c_int {
    let rc = syscalls::munmap(addr, len);
    if rc == 0 {
        count_mapping(Op::Munmap, len, -pages(len));
    }
    rc
}

/// `mremap(2)`. C declares it variadic (`...` = the new address, read only
/// with `MREMAP_FIXED`); on the supported ABIs a variadic pointer argument
/// arrives exactly like a fifth named one.
///
/// # Safety
/// C contract of mremap(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mremap(
    old: *mut c_void,
    old_len: usize,
    new_len: usize,
    flags: c_int,
    new_addr: *mut c_void,
) -> *mut c_void {
    let new_addr = if flags & libc::MREMAP_FIXED != 0 {
        new_addr
    } else {
        std::ptr::null_mut()
    };
    let p = syscalls::mremap(old, old_len, new_len, flags, new_addr);
    if p != libc::MAP_FAILED {
        count_mapping(Op::Mremap, new_len, pages(new_len) - pages(old_len));
    }
    p
}

// ---------------------------------------------------------------------------
// System V shared memory: net bytes attached.

fn count_shm(op: Op, bytes: usize, net: i64) {
    if guard::held() {
        return;
    }
    let saved = errno();
    engine::record_op(op, bytes);
    if net != 0 {
        engine::add_net_shm(net);
    }
    set_errno(saved);
}

/// `shmget(2)`.
///
/// # Safety
/// C contract of shmget(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn shmget(key: libc::key_t, size: usize, flags: c_int) -> c_int {
    let id = real::shmget(key, size, flags);
    if id != -1 {
        count_shm(Op::Shmget, size, 0);
    }
    id
}

/// `shmat(2)`: adds the segment's size (`IPC_STAT`) to net shared memory.
///
/// # Safety
/// C contract of shmat(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn shmat(id: c_int, addr: *const c_void, flags: c_int) -> *mut c_void {
    let p = real::shmat(id, addr, flags);
    if p as isize != -1 && !guard::held() {
        let bytes = real::shm_segment_size(id).unwrap_or(0);
        let net = if shm::attached(p as usize, bytes) {
            bytes as i64
        } else {
            0
        };
        count_shm(Op::Shmat, bytes, net);
    }
    p
}

/// `shmdt(2)`: subtracts what was attached at `addr`.
///
/// # Safety
/// C contract of shmdt(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn shmdt(addr: *const c_void) -> c_int {
    let rc = real::shmdt(addr);
    if rc == 0 {
        let bytes = shm::detached(addr as usize).unwrap_or(0);
        count_shm(Op::Shmdt, bytes, -(bytes as i64));
    }
    rc
}

/// `shmctl(2)`.
///
/// # Safety
/// C contract of shmctl(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn shmctl(id: c_int, cmd: c_int, buf: *mut libc::shmid_ds) -> c_int {
    // SAFETY: the caller's contract for `buf`.
    let rc = unsafe { real::shmctl(id, cmd, buf) };
    if rc != -1 {
        count_shm(Op::Shmctl, 0, 0);
    }
    rc
}

// ---------------------------------------------------------------------------
// The program break: counted.

/// `brk(2)`.
///
/// # Safety
/// C contract of brk(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn brk(addr: *mut c_void) -> c_int {
    let rc = real::brk(addr);
    if rc == 0 && !guard::held() {
        let saved = errno();
        engine::record_op(Op::Brk, 0);
        set_errno(saved);
    }
    rc
}

/// `sbrk(2)`.
///
/// # Safety
/// C contract of sbrk(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sbrk(increment: isize) -> *mut c_void {
    let p = real::sbrk(increment);
    if p as isize != -1 && !guard::held() {
        let saved = errno();
        engine::record_op(Op::Sbrk, increment.max(0) as usize);
        set_errno(saved);
    }
    p
}

// ---------------------------------------------------------------------------
// Threads.

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
    /// shim.c: pulls `asm_cmd`'s arguments out of the `va_list`.
    fn asmalloc_shim_cmd_args(cmd: c_int, args: *mut c_void, out: *mut CmdArgs) -> c_int;
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
        return unsafe { real::pthread_create(thread, attr, start, arg) }.unwrap_or(libc::EAGAIN);
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
    match rc {
        Some(0) => 0,
        other => {
            // SAFETY: no thread was started, so `launch` is still ours.
            unsafe { real::free(launch.cast()) };
            other.unwrap_or(libc::EAGAIN)
        }
    }
}

// ---------------------------------------------------------------------------
// The original ASMalloc API.

/// `asm_stats_t`.
#[repr(C)]
struct AsmStats {
    mem_count: usize,
    net_mmaps: usize,
    net_shm: usize,
}

/// `vm_stats_desc_t`.
#[repr(C)]
pub struct VmStatsDesc {
    name: *const c_char,
    offset: usize,
}

// SAFETY: the descriptions are immutable after compilation and point only
// at string literals, so sharing them between threads is sound.
unsafe impl Sync for VmStatsDesc {}

/// `vm_stats_t`.
#[repr(C)]
struct VmStatsC {
    desc: *const VmStatsDesc,
    values: [u64; 12],
}

/// A C-visible static the library writes and hands out pointers to (as the
/// original did). Writers take SNAPSHOT_WRITE; the program reads through
/// the pointer it was given, as it did with the original.
struct CStatic<T>(UnsafeCell<T>);

// SAFETY: only written through `get()` by the API functions below, each
// holding SNAPSHOT_WRITE, so Rust never writes it from two threads at once;
// readers are C programs that got the pointer from asm_hook/log_vm_stats,
// the original's contract.
unsafe impl<T> Sync for CStatic<T> {}

impl<T> CStatic<T> {
    fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// Serialises writers of ASM_STATS and VM_STATS.
static SNAPSHOT_WRITE: std::sync::Mutex<()> = std::sync::Mutex::new(());

static ASM_STATS: CStatic<AsmStats> = CStatic(UnsafeCell::new(AsmStats {
    mem_count: 0,
    net_mmaps: 0,
    net_shm: 0,
}));
static VM_STATS: CStatic<VmStatsC> = CStatic(UnsafeCell::new(VmStatsC {
    desc: std::ptr::null(),
    values: [u64::MAX; 12],
}));

const fn desc(name: &'static CStr, index: usize) -> VmStatsDesc {
    VmStatsDesc {
        name: name.as_ptr(),
        offset: std::mem::offset_of!(VmStatsC, values) + index * 8,
    }
}

/// `vm_stats_desc[]`: VM_NUM_KEYS entries and a `{NULL, 0}` terminator.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[allow(non_upper_case_globals)]
pub static vm_stats_desc: [VmStatsDesc; 13] = [
    desc(c"VmPeak", 0),
    desc(c"VmSize", 1),
    desc(c"VmLck", 2),
    desc(c"VmPin", 3),
    desc(c"VmHWM", 4),
    desc(c"VmRSS", 5),
    desc(c"VmData", 6),
    desc(c"VmStk", 7),
    desc(c"VmExe", 8),
    desc(c"VmLib", 9),
    desc(c"VmPTE", 10),
    desc(c"VmSwap", 11),
    VmStatsDesc {
        name: std::ptr::null(),
        offset: 0,
    },
];

/// Fills a C `vm_stats_t`.
///
/// # Safety
/// `out` is valid for writing a `vm_stats_t`.
unsafe fn fill_vm(out: *mut VmStatsC, vm: &rt::VmStats) {
    let values = vm.values.map(|v| v.unwrap_or(u64::MAX));
    // SAFETY: the caller guarantees `out` is writable.
    unsafe {
        out.write(VmStatsC {
            desc: vm_stats_desc.as_ptr(),
            values,
        })
    };
}

/// `int asm_hook(void *arg, asm_stats_t **asm_stats, vm_stats_t **vm_stats)`.
///
/// # Safety
/// Each out-pointer is NULL or writable.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn asm_hook(
    _arg: *mut c_void,
    asm_stats: *mut *mut c_void,
    vm_stats: *mut *mut c_void,
) -> c_int {
    let saved = errno();
    let hook = api::hook();
    let stats = ASM_STATS.get();
    // Concurrent asm_hook / log_vm_stats calls write the shared snapshots
    // one at a time (the program reads them as the original let it).
    let _writing = SNAPSHOT_WRITE.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: ASM_STATS is our static, written only under SNAPSHOT_WRITE;
    // the out-pointers are NULL or writable (caller's contract).
    unsafe {
        stats.write(AsmStats {
            mem_count: hook.mem_count as usize,
            net_mmaps: hook.net_mmaps as usize,
            net_shm: hook.net_shm as usize,
        });
        if !asm_stats.is_null() {
            asm_stats.write(stats.cast());
        }
        if let Some(vm) = &hook.vm {
            fill_vm(VM_STATS.get(), vm);
            if !vm_stats.is_null() {
                vm_stats.write(VM_STATS.get().cast());
            }
        }
    }
    set_errno(saved);
    0
}

/// What shim.c pulls out of `asm_cmd`'s `va_list`.
#[repr(C)]
#[derive(Default)]
struct CmdArgs {
    features: u64,
    block_size: usize,
    delta_size: usize,
    delta_time: i64,
    callback: usize,
    udata: usize,
}

/// `int asm_cmd(asm_cmd_t cmd, va_list args)`. A `va_list` parameter is
/// passed as a pointer; shim.c reads it.
///
/// # Safety
/// `args` is a `va_list` holding the arguments `cmd` takes.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn asm_cmd(cmd: c_int, args: *mut c_void) -> c_int {
    let saved = errno();
    let mut a = CmdArgs::default();
    // SAFETY: `args` is the caller's va_list, handed on unchanged; `a` is
    // writable.
    if unsafe { asmalloc_shim_cmd_args(cmd, args, &mut a) } != 0 {
        api::unknown_command(cmd);
        return 0;
    }
    match cmd {
        0 => rt::set_feature_bits(a.features),
        1 => api::set_thresholds(a.block_size, a.delta_size, a.delta_time),
        2 => {
            USER_CALLBACK.store(a.callback, Ordering::Release);
            let callback: Option<rt::Callback> = (a.callback != 0).then_some(guarded_callback);
            // Publishing the pair allocates a little: the library's own.
            let _guard = Guard::enter();
            rt::set_callback(callback, a.udata as *mut c_void);
        }
        _ => api::print_stats(),
    }
    set_errno(saved);
    0
}

/// The program's callback (0 = none); the engine calls `guarded_callback`.
static USER_CALLBACK: AtomicUsize = AtomicUsize::new(0);

/// Calls the program's callback with the reentrancy guard held: what the
/// callback allocates (printf's buffers, …) is the library's business, so
/// it neither consumes a pending `asm_mallocation_set` site nor shows up
/// in the program's numbers.
extern "C" fn guarded_callback(
    thread_id: u64,
    type_id: u16,
    loc: u16,
    delta: isize,
    total: isize,
    last_time: *const libc::timespec,
    udata: *mut c_void,
) {
    let f = USER_CALLBACK.load(Ordering::Acquire);
    if f == 0 {
        return;
    }
    // SAFETY: USER_CALLBACK only holds a function the program passed with
    // ASM_CMD_SET_CALLBACK, whose contract is the original callback type.
    let f = unsafe { std::mem::transmute::<usize, rt::Callback>(f) };
    let saved = errno();
    let _guard = Guard::enter();
    f(thread_id, type_id, loc, delta, total, last_time, udata);
    set_errno(saved);
}

/// `void asm_mallocation_set(uint16_t type, uint16_t loc, ssize_t delta_size)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn asm_mallocation_set(type_id: u16, loc: u16, delta_size: isize) {
    let saved = errno();
    rt::mallocation_set(type_id, loc, delta_size);
    set_errno(saved);
}

/// `void asm_mallocation_get(uint16_t *type, uint16_t loc, ssize_t *total_size,
/// ssize_t *delta_size, struct timespec *last_time)`.
///
/// # Safety
/// Each out-pointer is NULL or writable.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn asm_mallocation_get(
    type_id: *mut u16,
    loc: u16,
    total_size: *mut isize,
    delta_size: *mut isize,
    last_time: *mut libc::timespec,
) {
    let m = rt::mallocation_get(loc);
    // SAFETY: each pointer is NULL (skipped) or writable (caller's contract).
    unsafe {
        if !type_id.is_null() {
            type_id.write(m.type_id);
        }
        if !total_size.is_null() {
            total_size.write(m.total_size);
        }
        if !delta_size.is_null() {
            delta_size.write(m.delta_size);
        }
        if !last_time.is_null() {
            last_time.write(rt::__private::clock::to_timespec(m.last_time_ns));
        }
    }
}

/// `int get_vm_stats(int pid, vm_stats_t *stats)`.
///
/// # Safety
/// `stats` is NULL or writable.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn get_vm_stats(pid: c_int, stats: *mut c_void) -> c_int {
    let saved = errno();
    let rc = match api::vm_stats_of(pid) {
        Some(vm) if !stats.is_null() => {
            // SAFETY: `stats` is writable (caller's contract).
            unsafe { fill_vm(stats.cast(), &vm) };
            0
        }
        _ => -1,
    };
    set_errno(saved);
    rc
}

/// `vm_stats_t *log_vm_stats(int pid)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn log_vm_stats(pid: c_int) -> *mut c_void {
    let saved = errno();
    let out = match api::vm_stats_of(pid) {
        Some(vm) => {
            api::log_vm_stats(pid, &vm);
            let _writing = SNAPSHOT_WRITE.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: VM_STATS is our static, written only under
            // SNAPSHOT_WRITE.
            unsafe { fill_vm(VM_STATS.get(), &vm) };
            VM_STATS.get().cast()
        }
        None => std::ptr::null_mut(),
    };
    set_errno(saved);
    out
}

/// One entry of the generated C table (`mallocation_t`, 32 bytes on LP64).
#[repr(C)]
struct CMallocation {
    type_id: c_int,
    file: *const c_char,
    line: c_int,
    id: c_int,
    function: *const c_char,
}

const _: () =
    assert!(std::mem::size_of::<CMallocation>() == 32 || cfg!(not(target_pointer_width = "64")));

/// A C string from a table or call site as `&'static str`: the generated
/// code passes string literals. NULL gives `""`; invalid UTF-8 is replaced
/// (and the replacement kept for the process's life).
///
/// # Safety
/// `s` is NULL or a NUL-terminated string that lives as long as the process.
unsafe fn static_str(s: *const c_char) -> &'static str {
    if s.is_null() {
        return "";
    }
    // SAFETY: NUL-terminated and never freed (caller's contract).
    let bytes: &'static [u8] = unsafe { CStr::from_ptr(s) }.to_bytes();
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => {
            let _guard = Guard::enter();
            String::leak(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

/// `int asm_register_mallocations(const char *const *type_names, size_t
/// num_types, const mallocation_t *table, size_t num_mallocations)`.
///
/// # Safety
/// `type_names` holds `num_types` string pointers and `table` holds
/// `num_mallocations` entries; all strings live as long as the process.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn asm_register_mallocations(
    type_names: *const *const c_char,
    num_types: usize,
    table: *const c_void,
    num_mallocations: usize,
) -> c_int {
    let saved = errno();
    let result = if type_names.is_null() || table.is_null() {
        Err("asm_register_mallocations: NULL type names or table".to_string())
    } else {
        let _guard = Guard::enter();
        let table = table.cast::<CMallocation>();
        // SAFETY: the arrays have the lengths the caller passed.
        let (types, entries) = unsafe {
            let types: Vec<&'static str> = (0..num_types)
                .map(|i| static_str(*type_names.add(i)))
                .collect();
            let entries: Vec<api::Entry> = (0..num_mallocations)
                .map(|i| {
                    let e = &*table.add(i);
                    api::Entry {
                        type_id: i64::from(e.type_id),
                        file: static_str(e.file),
                        line: i64::from(e.line),
                        id: i64::from(e.id),
                        function: static_str(e.function),
                    }
                })
                .collect();
            (types, entries)
        };
        api::register(types, entries)
    };
    set_errno(saved);
    match result {
        Ok(()) => 0,
        Err(text) => {
            rt::warn(format_args!("{text}"));
            -1
        }
    }
}

/// `void asm_site_enter(uint16_t *cache, uint16_t type, const char *file,
/// int line, const char *function)`: the call-site header's hook.
///
/// # Safety
/// `cache` is NULL or a `uint16_t` only ever accessed through this function;
/// `file` and `function` are NULL or string literals.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn asm_site_enter(
    cache: *mut u16,
    type_id: u16,
    file: *const c_char,
    line: c_int,
    function: *const c_char,
) {
    let saved = errno();
    let cache = (!cache.is_null()).then(|| {
        // SAFETY: a static uint16_t of the call site, aligned, accessed
        // only atomically here (several threads may pass the same one).
        unsafe { AtomicU16::from_ptr(cache) }
    });
    let mut id = cache.map_or(0, |c| c.load(Ordering::Relaxed));
    if id != 0 {
        // A site cached before the table was registered now gets its id.
        let now = rt::__private::site::current_id(id);
        if now != id {
            if let Some(c) = cache {
                c.store(now, Ordering::Relaxed);
            }
            id = now;
        }
    }
    if id == 0 {
        // SAFETY: string literals (caller's contract).
        let (file, function) = unsafe { (static_str(file), static_str(function)) };
        id = api::resolve_site(type_id, file, u32::try_from(line).unwrap_or(0), function);
        if let Some(c) = cache {
            c.store(id, Ordering::Relaxed);
        }
    }
    rt::__private::engine::set_next_site(type_id, id);
    set_errno(saved);
}

// ---------------------------------------------------------------------------
// Constructor, destructor, fork.

/// Walks a NULL-terminated `envp` as (name, value) byte pairs.
///
/// # Safety
/// `envp` is NULL or a NULL-terminated array of NUL-terminated strings that
/// stay unchanged while the iterator is used.
unsafe fn env_pairs<'a>(envp: *const *const c_char) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    let mut i = 0;
    std::iter::from_fn(move || {
        if envp.is_null() {
            return None;
        }
        // SAFETY: the array is NULL-terminated and we stop at the NULL.
        let entry = unsafe { *envp.add(i) };
        if entry.is_null() {
            return None;
        }
        i += 1;
        // SAFETY: each entry is NUL-terminated (caller's contract).
        let bytes = unsafe { CStr::from_ptr(entry) }.to_bytes();
        let eq = bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len());
        Some((&bytes[..eq], bytes.get(eq + 1..).unwrap_or(&[])))
    })
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

extern "C" fn on_fork_prepare() {
    let _guard = Guard::enter();
    rt::__private::monitor::before_fork();
}

extern "C" fn on_fork_parent() {
    let _guard = Guard::enter();
    rt::__private::monitor::after_fork();
}

extern "C" fn on_fork_child() {
    rt::__private::engine::after_fork_in_child();
    {
        let _guard = Guard::enter();
        rt::__private::monitor::after_fork();
    }
    report::start_reporter();
    report::start_monitor();
}

/// The library constructor (glibc passes argc, argv, envp).
extern "C" fn init(_argc: c_int, _argv: *const *const c_char, envp: *const *const c_char) {
    let saved = errno();
    real::ensure();
    let envp = if envp.is_null() {
        // SAFETY: reading the process's environ pointer.
        unsafe { environ }
    } else {
        envp
    };
    {
        let _guard = Guard::enter();
        crate::output::save_stderr();
        // SAFETY: the environment is not modified while the constructor
        // runs (no other thread of the program runs yet).
        let warnings = settings::configure(unsafe { env_pairs(envp) });
        for w in &warnings {
            rt::warn(format_args!("{w}"));
        }
        // SAFETY: registering a plain extern "C" handler.
        unsafe {
            libc::pthread_atfork(
                Some(on_fork_prepare),
                Some(on_fork_parent),
                Some(on_fork_child),
            )
        };
    }
    report::start_reporter();
    report::start_monitor();
    set_errno(saved);
}

/// The library destructor: a last leak-monitor sample, and the report at
/// exit (none when the library stepped aside for another allocator: it
/// tracked nothing, and said so at start).
extern "C" fn fini() {
    if real::stepped_aside() {
        return;
    }
    if rt::__private::monitor::installed() {
        let saved = errno();
        report::sample();
        set_errno(saved);
    }
    if settings::report_at_exit() {
        let saved = errno();
        report::emit(report::Reason::Exit);
        set_errno(saved);
    }
}

#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = init;

#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".fini_array")]
static FINI: extern "C" fn() = fini;
