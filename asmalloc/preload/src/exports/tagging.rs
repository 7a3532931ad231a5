//! Tagging: who is calling (the mode) and whose a block is (its tag).
//!
//! **Tags.** Every block handed out by a tracked call is allocated 8 bytes
//! larger; the last 8 bytes of its real usable size hold the site tag
//! (`asmalloc::tag`), and our `malloc_usable_size` reports the usable size
//! less those 8 bytes, so the program can never overwrite the tag. The
//! library's own blocks carry an *own* tag; a block whose tag does not
//! validate (a block from `__libc_malloc` called directly, or from before
//! the library was loaded) is counted as a foreign free and forwarded —
//! never a crash, never a wrong site. A tag is cleared before its block is
//! freed or resized, so reused memory never carries a stale one.
//!
//! **Charged bytes** of a block = real usable size − 8 = what our
//! `malloc_usable_size` returns.

use std::ffi::c_void;

use rt::__private::engine;
use rt::__private::stacks;
use rt::__private::tag::{self, TAG_SIZE};
use rt::Op;

use crate::guard;
use crate::real;
use crate::syscalls::set_errno;

/// How an allocation-family call is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
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
pub(super) fn mode() -> Mode {
    if !guard::held() && real::ensure() {
        Mode::Tracked
    } else {
        other_mode()
    }
}

/// The call is the program's and the heap is resolved with its sizes
/// inline (mode `Tracked`, and a [`real::Ready`]), decided with no call;
/// `None`: ask [`mode`], off the common path.
#[inline(always)]
pub(super) fn program_call() -> Option<real::Ready> {
    if guard::held() {
        return None;
    }
    real::ready()
}

#[cold]
#[inline(never)]
pub(super) fn other_mode() -> Mode {
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
pub(super) enum Owner {
    /// The program's, charged to this site.
    Program(u16),
    /// The library's own (see [`Mode::Own`]).
    Library,
    /// Untagged: from before tracking, from `__libc_malloc` called
    /// directly, or overwritten.
    Foreign,
}

impl Owner {
    /// The id in a program block's tag: its site, or its sampled stack.
    pub(super) fn tag_id(self) -> Option<u16> {
        match self {
            Owner::Program(id) => Some(id),
            Owner::Library | Owner::Foreign => None,
        }
    }

    /// Bytes of a block of `usable` real bytes the program may use.
    pub(super) fn program_usable(self, usable: usize) -> usize {
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
pub(super) unsafe fn read_tag(p: *mut c_void) -> (Owner, usize) {
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

/// The common case of a program call on a block, decided with no call:
/// the call is the program's (mode `Tracked`, the heap resolved), the
/// block's real usable size is known inline and its tag names a site that
/// is no sampled stack's id (so `stacks::released` is a no-op, decided
/// inline). Then (real usable size, site); `None`: anything else, which the
/// general path ([`mode`], [`read_tag`]) decides again.
///
/// # Safety
/// `p` is a live, non-null block of this library's allocator.
#[inline(always)]
pub(super) unsafe fn program_block(p: *mut c_void) -> Option<(usize, u16)> {
    let ready = program_call()?;
    // SAFETY: `p` is a live block of the real allocator, now resolved.
    let usable = unsafe { real::usable_size_known(p, ready) };
    if usable < TAG_SIZE {
        return None;
    }
    // SAFETY: the block's usable bytes are readable; the tag is its last 8.
    let word = unsafe { tag::read(p.cast::<u8>().add(usable - TAG_SIZE)) };
    let id = tag::decode(p as usize, usable, word)?;
    // The sampler's ids (a range below the caller sites) take the general
    // path, whose `stacks::released` may call out; any other id is a site.
    if (stacks::table::LAST_STACK..=stacks::table::FIRST_STACK).contains(&id) {
        return None;
    }
    Some((usable, id))
}

/// Writes `word` as the tag of the block `p` of `usable` real bytes.
///
/// # Safety
/// `p` is a live block of at least `usable >= TAG_SIZE` usable bytes whose
/// last `TAG_SIZE` the program was never told it may use.
#[inline(always)]
pub(super) unsafe fn write_tag(p: *mut c_void, usable: usize, word: u64) {
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
pub(super) unsafe fn track_new(op: Op, p: *mut c_void, caller: usize) -> *mut c_void {
    // SAFETY: the caller's contract; `real::usable_size` is right for any
    // live block.
    unsafe { track_fresh(op, p, caller, |p| real::usable_size(p)) }
}

/// [`track_new`] with the block's real usable size given by `usable_of`
/// (called only for a non-null block).
///
/// # Safety
/// As [`track_new`]; `usable_of(p)` is `p`'s real usable size.
#[inline(always)]
unsafe fn track_fresh(
    op: Op,
    p: *mut c_void,
    caller: usize,
    usable_of: impl FnOnce(*mut c_void) -> usize,
) -> *mut c_void {
    if p.is_null() {
        // A failed call still uses up a pending one-shot site, so it does
        // not land on the thread's next, unrelated allocation.
        engine::clear_pending();
        return p;
    }
    let usable = usable_of(p);
    // SAFETY: the caller's contract.
    unsafe { charge_and_tag(op, p, usable, caller) }
}

/// Charges the fresh, non-null block `p` of `usable` real bytes to the
/// current site and writes its tag.
///
/// # Safety
/// `p` is a live block of exactly `usable` real usable bytes, at least
/// `TAG_SIZE` more than the program asked for.
#[inline(always)]
unsafe fn charge_and_tag(op: Op, p: *mut c_void, usable: usize, caller: usize) -> *mut c_void {
    let site = engine::record_alloc_from(op, usable - TAG_SIZE, caller);
    // SAFETY: the caller's contract.
    unsafe { tag_new(p, usable, site) }
}

/// Gives a fresh block of the real allocator an own tag. Null passes
/// through.
///
/// # Safety
/// As [`track_new`].
#[inline]
pub(super) unsafe fn mark_own(p: *mut c_void) -> *mut c_void {
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
/// forgotten instead). Returns the block's owner and real usable size.
///
/// # Safety
/// `p` is a live, non-null block of the real allocator, which is resolved.
#[inline(always)]
pub(super) unsafe fn release(op: Op, p: *mut c_void, mode: Mode) -> (Owner, usize) {
    // SAFETY: forwarded.
    let (owner, usable) = unsafe { read_tag(p) };
    match owner {
        Owner::Program(id) => {
            let site = rt::__private::stacks::released(id, usable - TAG_SIZE);
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
    (owner, usable)
}

/// Charges a block a `realloc`-like call resized or moved (from a block
/// owned by `old` with `old_usable` real bytes) to the current site, and
/// tags it.
///
/// # Safety
/// `q` is a live, non-null block of the real allocator at least `TAG_SIZE`
/// bytes larger than the program asked for.
#[inline(always)]
pub(super) unsafe fn track_moved(
    op: Op,
    q: *mut c_void,
    old: Owner,
    old_usable: usize,
    caller: usize,
) {
    // SAFETY: `q` is a live block (caller).
    let usable = unsafe { real::usable_size(q) };
    let old_bytes = old.program_usable(old_usable);
    // A sampled block's sample ends here (the new block may be sampled).
    let old_site = old
        .tag_id()
        .map(|id| rt::__private::stacks::released(id, old_bytes));
    let site = engine::record_realloc_from(op, old_site, old_bytes, usable - TAG_SIZE, caller);
    let id = rt::__private::stacks::tag_id(site, usable - TAG_SIZE);
    // SAFETY: as in track_new.
    unsafe { write_tag(q, usable, tag::encode(q as usize, usable, id)) };
}

/// A failed call: NULL with ENOMEM. Like a failed allocation it uses up a
/// pending one-shot site, so the site does not land on the thread's next,
/// unrelated allocation.
pub(super) fn enomem() -> *mut c_void {
    engine::clear_pending();
    set_errno(libc::ENOMEM);
    std::ptr::null_mut()
}

/// A tracked allocation of `size` bytes made by `alloc` (which receives
/// the size with room for the tag), called from `caller` (0: not known).
#[inline(always)]
pub(super) fn tracked(
    op: Op,
    size: usize,
    caller: usize,
    alloc: impl FnOnce(usize) -> *mut c_void,
) -> *mut c_void {
    // SAFETY: `real::usable_size` is right for any live block.
    tracked_with(op, size, caller, alloc, |p, _| unsafe {
        real::usable_size(p)
    })
}

/// [`tracked`] for `malloc`-like calls (`malloc`, `calloc(1, n)`): no
/// alignment asked for, so the block's usable size may follow from the
/// request (see `real::usable_size_of_fresh`).
#[inline(always)]
pub(super) fn tracked_unaligned(
    op: Op,
    size: usize,
    caller: usize,
    alloc: impl FnOnce(usize) -> *mut c_void,
) -> *mut c_void {
    // SAFETY: the block is fresh from a malloc-like call of `n` bytes,
    // whose usable size `usable_size_of_fresh` gives.
    tracked_with(op, size, caller, alloc, |p, n| unsafe {
        real::usable_size_of_fresh(p, n)
    })
}

/// [`tracked_unaligned`] on the common path ([`program_call`] gave
/// `ready`): the block's usable size with no call.
#[inline(always)]
pub(super) fn tracked_fresh(
    op: Op,
    size: usize,
    caller: usize,
    alloc: impl FnOnce(usize) -> *mut c_void,
    ready: real::Ready,
) -> *mut c_void {
    // SAFETY: as in `tracked_unaligned`.
    tracked_with(op, size, caller, alloc, |p, n| unsafe {
        real::usable_size_of_fresh_known(p, n, ready)
    })
}

/// [`tracked`] with the fresh block's real usable size given by
/// `usable_of(block, bytes asked of the real allocator)`.
///
/// The common path ([`tracked_fresh`]) makes one call, to the heap's
/// allocation function: everything else it needs is inline, and the rare
/// cases (a failure, the engine's slow path, sampling on) are jumps to
/// `extern "C"` functions (which cannot unwind), so little is kept in
/// saved registers.
#[inline(always)]
fn tracked_with(
    op: Op,
    size: usize,
    caller: usize,
    alloc: impl FnOnce(usize) -> *mut c_void,
    usable_of: impl FnOnce(*mut c_void, usize) -> usize,
) -> *mut c_void {
    let Some(n) = size.checked_add(TAG_SIZE) else {
        return enomem();
    };
    let p = alloc(n);
    if p.is_null() {
        // A failed call still uses up a pending one-shot site, so it does
        // not land on the thread's next, unrelated allocation.
        engine::clear_pending();
        return p;
    }
    let usable = usable_of(p, n);
    match engine::record_alloc_fast(op, usable - TAG_SIZE, caller) {
        // Sampling off (`stacks::tag_id` is then the site itself): the tag
        // is written here.
        Ok(site) if stacks::mean() == 0 => {
            // SAFETY: `p` is a fresh block of `usable` real bytes, at least
            // `TAG_SIZE` more than the program asked for, who may use only
            // `usable - TAG_SIZE`.
            unsafe { write_tag(p, usable, tag::encode(p as usize, usable, site)) };
            p
        }
        // SAFETY: as above.
        Ok(site) => unsafe { tag_sampled(p, usable, site) },
        // SAFETY: as above.
        Err(taken) => unsafe { track_rest(op, p, usable, caller, taken) },
    }
}

/// [`tracked_with`] with sampling on: the sampler decides the tag.
///
/// # Safety
/// As [`tag_new`].
#[cold]
#[inline(never)]
unsafe extern "C" fn tag_sampled(p: *mut c_void, usable: usize, site: u16) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { tag_new(p, usable, site) }
}

/// [`tracked_with`] past the engine's common case.
///
/// # Safety
/// `p` is a fresh block of exactly `usable` real bytes, at least
/// `TAG_SIZE` more than the program asked for; `taken` is what
/// `record_alloc_fast` gave back.
#[cold]
#[inline(never)]
unsafe extern "C" fn track_rest(
    op: Op,
    p: *mut c_void,
    usable: usize,
    caller: usize,
    taken: engine::Taken,
) -> *mut c_void {
    let site = engine::record_alloc_rest(op, usable - TAG_SIZE, caller, taken);
    // SAFETY: the caller's contract.
    unsafe { tag_new(p, usable, site) }
}

/// Writes the tag of a fresh block charged to `site` (a sampled stack's
/// id instead when the sampler picks it); returns the block.
///
/// # Safety
/// As [`track_rest`].
#[inline(always)]
unsafe fn tag_new(p: *mut c_void, usable: usize, site: u16) -> *mut c_void {
    let id = stacks::tag_id(site, usable - TAG_SIZE);
    // SAFETY: `usable >= TAG_SIZE` (we asked for TAG_SIZE more than the
    // program), and the program is told it may use only `usable - TAG_SIZE`.
    unsafe { write_tag(p, usable, tag::encode(p as usize, usable, id)) };
    p
}

/// An untracked allocation of `size` bytes in `mode`: by `alloc` with an
/// own tag (`Own`, which gets the size with room for the tag), by `alloc`
/// plainly (`Plain`), or by `aside` (the program's allocator).
#[cold]
#[inline(never)]
pub(super) fn untracked(
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

/// Resizes a program (or foreign) block with `resize` (given the block and
/// the size with room for the tag) and charges it to the current site.
///
/// # Safety
/// `p` is a live block of the real allocator owned by `owner`, with
/// `usable` real bytes; `size` is non-zero; `resize` is the real
/// allocator's realloc-like call for `p`.
#[inline(always)]
pub(super) unsafe fn resize_tracked(
    op: Op,
    p: *mut c_void,
    owner: Owner,
    usable: usize,
    size: usize,
    caller: usize,
    resize: impl FnOnce(*mut c_void, usize) -> *mut c_void,
) -> *mut c_void {
    let Some(n) = size.checked_add(TAG_SIZE) else {
        return enomem();
    };
    // The old tag is cleared first: the block may grow in place, and a
    // stale tag must not survive inside it.
    if owner.tag_id().is_some() {
        // SAFETY: the block is live and the tag's bytes are its own.
        unsafe { write_tag(p, usable, tag::CLEARED) };
    }
    let q = resize(p, n);
    if q.is_null() {
        if let Some(id) = owner.tag_id() {
            // SAFETY: a failed resize leaves `p` as it was.
            unsafe { write_tag(p, usable, tag::encode(p as usize, usable, id)) };
        }
        engine::clear_pending();
        return q;
    }
    // SAFETY: `q` is a live block of at least `n` bytes.
    unsafe { track_moved(op, q, owner, usable, caller) };
    q
}

/// Resizes the library's own block (or an untagged one, under the guard)
/// with `resize`: it stays the library's, never charged.
///
/// # Safety
/// As [`resize_tracked`].
#[cold]
pub(super) unsafe fn resize_own(
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

/// The calling address to charge a call with no table site to: `ret` (the
/// interposed function's return address), or the address the outermost
/// wrapper around the call returns to when `ret` is inside a wrapper
/// (`wrappers/`), when caller sites are on; else 0.
#[inline(always)]
pub(super) fn caller(ret: usize) -> usize {
    if crate::settings::callers() {
        crate::wrappers::site_address(ret)
    } else {
        0
    }
}
