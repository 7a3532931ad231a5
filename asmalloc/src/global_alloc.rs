//! The Rust `GlobalAlloc` wrapper.
//!
//! `AsmAlloc<A>` forwards every call to the inner allocator `A` with 8 extra
//! bytes for the block's site tag (placed right after the `layout.size()`
//! bytes the program asked for, which `dealloc` and `realloc` know exactly),
//! and charges the block to the thread's current site.
//!
//! **What is charged.** Rust's allocator API is sized: `dealloc` is told the
//! size, so the exact bytes the program holds are known for free. Over
//! `System` the wrapper charges exactly those requested bytes. Asking glibc
//! for the usable size instead (`malloc_usable_size`) would cost a call and a
//! read of the neighbouring chunk's header on every allocation *and* free —
//! measured at about 30 instructions per pair in the churn benchmark — to add
//! only glibc's rounding slack to the totals. Allocators whose usable size
//! is cheap to know and meaningful (jemalloc's size classes) report it
//! through [`UsableSize`]: over `Jemalloc` the wrapper charges the block's
//! size class less the tag — exactly what jemalloc's `sallocx` says, minus
//! 8 — computed inline from the layout (see `jemalloc_size_class`). The C
//! preload, whose `free` has no size, charges usable sizes.
//!
//! **The library's own blocks.** On a thread doing the library's own work
//! (the leak monitor's and the metrics endpoint's threads, which set the
//! engine's `library_work` mark for life), a block gets an *own* tag and is
//! charged nothing, and its free is charged nothing either, wherever it
//! happens — as the preload does for its own blocks. A program block freed
//! there is still charged back to its site.

use std::alloc::{GlobalAlloc, Layout, System};

use crate::engine;
use crate::op::Op;
use crate::stacks;
use crate::tag::{self, TAG_SIZE};

/// How many bytes a block is charged, as its allocator reports it.
///
/// The default is exactly what was asked for (`layout.size()`), which is
/// right for any allocator and costs nothing; `Jemalloc` reports its
/// usable size (the size class) instead.
pub trait UsableSize {
    /// The usable size of the live block `ptr` allocated with `layout`.
    ///
    /// # Safety
    /// `ptr` must be a live block this allocator returned for `layout`.
    unsafe fn usable_size(&self, ptr: *mut u8, layout: Layout) -> usize {
        let _ = ptr;
        layout.size()
    }

    /// [`UsableSize::usable_size`] when it is known without a call (the
    /// allocation path's common case keeps calls out, so it saves no
    /// register); `None`: the wrapper asks `usable_size` off that path.
    /// The default is `usable_size` itself.
    ///
    /// # Safety
    /// As [`UsableSize::usable_size`].
    #[inline(always)]
    unsafe fn usable_size_inline(&self, ptr: *mut u8, layout: Layout) -> Option<usize> {
        // SAFETY: the caller's contract.
        Some(unsafe { self.usable_size(ptr, layout) })
    }
}

/// Requested bytes (see the module docs for why not `malloc_usable_size`).
impl UsableSize for System {}

/// jemalloc's size class for the layout: what `sallocx` would say for the
/// block, less nothing: the wrapper subtracts its tag (see
/// `jemalloc_size_class`).
#[cfg(feature = "jemalloc")]
impl UsableSize for tikv_jemallocator::Jemalloc {
    #[inline]
    unsafe fn usable_size(&self, _ptr: *mut u8, layout: Layout) -> usize {
        jemalloc_size_class(layout)
    }

    #[inline(always)]
    unsafe fn usable_size_inline(&self, _ptr: *mut u8, layout: Layout) -> Option<usize> {
        jemalloc_size_class_inline(layout)
    }
}

/// jemalloc's size class for a block tikv-jemallocator allocates with
/// `layout`.
///
/// When tikv-jemallocator passes no alignment flag (alignment ≤ 16 and ≤
/// the size) the class is computed inline with jemalloc's own formula
/// (`sz_s2u_compute`: 8, 16, then multiples of 16 up to 64, then four
/// classes per doubling), a few instructions instead of a `nallocx` call on
/// every allocation *and* every free. The formula depends on jemalloc's
/// build constants (quantum 16, four classes per doubling), so the first
/// allocation checks it against `nallocx` over every size up to 16 KiB and
/// around every class boundary up to 2^40; if any differs, every block is
/// charged through `nallocx` instead. Either way the same layout is always
/// charged the same bytes on allocation and on free, so per-site totals
/// stay exact.
#[cfg(feature = "jemalloc")]
#[inline]
fn jemalloc_size_class(layout: Layout) -> usize {
    jemalloc_size_class_inline(layout).unwrap_or_else(|| jem_classes::slow(layout))
}

/// [`jemalloc_size_class`] when the inline formula gives it; `None`:
/// ask [`jemalloc_size_class`] (which calls out).
#[cfg(feature = "jemalloc")]
#[inline(always)]
fn jemalloc_size_class_inline(layout: Layout) -> Option<usize> {
    let size = layout.size();
    let natural = layout.align() <= 16 && layout.align() <= size;
    (natural
        && jem_classes::STATE.load(std::sync::atomic::Ordering::Relaxed) == jem_classes::FORMULA)
        .then(|| jem_classes::formula(size))
}

#[cfg(feature = "jemalloc")]
mod jem_classes {
    use std::alloc::Layout;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// Not checked yet.
    const UNCHECKED: u8 = 0;
    /// The inline formula agrees with `nallocx`.
    pub(super) const FORMULA: u8 = 1;
    /// It does not: always ask `nallocx`.
    const NALLOCX: u8 = 2;

    pub(super) static STATE: AtomicU8 = AtomicU8::new(UNCHECKED);

    /// The inline formula (see `crate::size_classes`).
    #[inline(always)]
    pub(super) fn formula(size: usize) -> usize {
        crate::size_classes::jemalloc_class(size)
    }

    /// What `nallocx` says for the flags tikv-jemallocator passes (a zero
    /// answer — too large to be a live block — gives the request).
    fn nallocx(layout: Layout) -> usize {
        let flags = if layout.align() <= 16 && layout.align() <= layout.size() {
            0
        } else {
            layout.align().trailing_zeros() as libc::c_int // MALLOCX_LG_ALIGN
        };
        // SAFETY: nallocx only computes a size.
        match unsafe { tikv_jemalloc_sys::nallocx(layout.size(), flags) } {
            0 => layout.size(),
            n => n,
        }
    }

    fn formula_agrees() -> bool {
        // SAFETY: nallocx only computes a size.
        crate::size_classes::formula_agrees(|size| unsafe { tikv_jemalloc_sys::nallocx(size, 0) })
    }

    /// The first allocation (checks the formula and declares the heap to be
    /// jemalloc's for reports), aligned layouts, and the fallback.
    #[cold]
    #[inline(never)]
    pub(super) fn slow(layout: Layout) -> usize {
        let natural = layout.align() <= 16 && layout.align() <= layout.size();
        let mut state = STATE.load(Ordering::Acquire);
        if state == UNCHECKED {
            crate::report::note_jemalloc_heap();
            let verdict = if formula_agrees() { FORMULA } else { NALLOCX };
            // Several threads may check at once; they reach the same verdict.
            STATE.store(verdict, Ordering::Release);
            state = verdict;
        }
        if natural && state == FORMULA {
            formula(layout.size())
        } else {
            nallocx(layout)
        }
    }
}

/// A tracking global allocator around `A` (the system allocator by default).
///
/// ```no_run
/// #[global_allocator]
/// static GLOBAL: asmalloc::AsmAlloc = asmalloc::AsmAlloc::system();
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct AsmAlloc<A = System> {
    inner: A,
}

impl AsmAlloc<System> {
    /// Tracking over the system allocator.
    pub const fn system() -> AsmAlloc<System> {
        AsmAlloc { inner: System }
    }
}

#[cfg(feature = "jemalloc")]
impl AsmAlloc<tikv_jemallocator::Jemalloc> {
    /// Tracking over jemalloc.
    pub const fn jemalloc() -> AsmAlloc<tikv_jemallocator::Jemalloc> {
        AsmAlloc {
            inner: tikv_jemallocator::Jemalloc,
        }
    }
}

impl<A> AsmAlloc<A> {
    /// Tracking over `inner`.
    pub const fn new(inner: A) -> AsmAlloc<A> {
        AsmAlloc { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

/// Blocks of the library's own larger than this are shrunk before they
/// are freed (see `AsmAlloc::dealloc_own_large`): glibc's default mmap
/// threshold.
const OWN_SHRINK_ABOVE: usize = 128 * 1024;

/// The layout actually requested from the inner allocator: room for the tag.
#[inline]
fn with_tag(layout: Layout) -> Option<Layout> {
    Layout::from_size_align(layout.size().checked_add(TAG_SIZE)?, layout.align()).ok()
}

/// [`with_tag`] of the layout of a live block: it succeeded when the block
/// was allocated, so it is not checked again (ten instructions per free).
///
/// # Safety
/// `layout` is the layout of a live block of [`AsmAlloc`], whose
/// allocation passed [`with_tag`].
#[inline(always)]
unsafe fn tagged(layout: Layout) -> Layout {
    // SAFETY: `with_tag(layout)` succeeded for this block, so the sum does
    // not overflow and makes a valid layout with this alignment.
    unsafe {
        Layout::from_size_align_unchecked(layout.size().unchecked_add(TAG_SIZE), layout.align())
    }
}

impl<A: GlobalAlloc + UsableSize> AsmAlloc<A> {
    /// Bytes charged for a block: its usable size less the tag.
    #[inline]
    unsafe fn charged(&self, ptr: *mut u8, layout: Layout, full: Layout) -> usize {
        // SAFETY: the caller passes a live block of the inner allocator
        // allocated with `full`.
        let usable = unsafe { self.inner.usable_size(ptr, full) };
        usable.saturating_sub(TAG_SIZE).max(layout.size())
    }

    /// [`AsmAlloc::charged`] when the inner allocator knows it without a
    /// call ([`UsableSize::usable_size_inline`]).
    #[inline(always)]
    unsafe fn charged_inline(&self, ptr: *mut u8, layout: Layout, full: Layout) -> Option<usize> {
        // SAFETY: as in `charged`.
        let usable = unsafe { self.inner.usable_size_inline(ptr, full) }?;
        Some(usable.saturating_sub(TAG_SIZE).max(layout.size()))
    }

    /// Charges a fresh block and writes its tag (an *own* tag, charged
    /// nothing, on a thread doing the library's own work: the monitor's
    /// and the metrics endpoint's threads).
    #[inline(never)]
    unsafe fn track_new(&self, op: Op, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a fresh block of this allocator for `layout`.
        let full = unsafe { tagged(layout) };
        // SAFETY: `ptr` was just returned by the inner allocator for `full`.
        let Some(bytes) = (unsafe { self.charged_inline(ptr, layout, full) }) else {
            // SAFETY: the caller's contract.
            return unsafe { self.track_new_asking(op, ptr, layout) };
        };
        let site = match engine::record_program_alloc_fast(op, bytes) {
            Ok(site) => site,
            // SAFETY: the caller's contract.
            Err(None) => return unsafe { mark_own(ptr, layout) },
            // SAFETY: as above.
            Err(Some(taken)) => return unsafe { track_rest(op, ptr, layout, bytes, taken) },
        };
        // SAFETY: as above.
        unsafe { tag_new(ptr, layout, site, bytes) }
    }

    /// `track_new` of a block whose charged bytes the inner allocator must
    /// be asked for (out of line, as the engine's slow path).
    ///
    /// # Safety
    /// As `track_new`.
    #[cold]
    #[inline(never)]
    unsafe fn track_new_asking(&self, op: Op, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract.
        let bytes = unsafe { self.charged(ptr, layout, tagged(layout)) };
        match engine::record_program_alloc(op, bytes) {
            // SAFETY: the caller's contract.
            Some(site) => unsafe { tag_new(ptr, layout, site, bytes) },
            // SAFETY: as above.
            None => unsafe { mark_own(ptr, layout) },
        }
    }

    /// [`GlobalAlloc::dealloc`] past the engine's common case.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator with `layout`, tagged with
    /// `site` and charged `bytes`.
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_charging(&self, ptr: *mut u8, layout: Layout, site: u16, bytes: usize) {
        engine::record_free(Op::Free, site, bytes);
        // SAFETY: `ptr` was allocated by the inner allocator with this.
        unsafe { self.inner.dealloc(ptr, tagged(layout)) }
    }

    /// [`GlobalAlloc::dealloc`] of anything else: a sampled block, the
    /// library's own, or a foreign tag.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator with `layout`.
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_other(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract.
        let full = unsafe { tagged(layout) };
        // SAFETY: the caller guarantees `ptr` came from this allocator with
        // `layout`, so it was allocated with `full` and is still live.
        let (owner, bytes) = unsafe { self.read_tag(ptr, layout, full) };
        match owner {
            Owner::Site(_) => {
                if let Some(site) = owner.release(bytes) {
                    engine::record_free(Op::Free, site, bytes);
                }
            }
            Owner::Library if full.size() > OWN_SHRINK_ABOVE => {
                // SAFETY: as below.
                return unsafe { self.dealloc_own_large(ptr, full) };
            }
            Owner::Library => {}
            Owner::Foreign => engine::record_foreign_free(bytes),
        }
        // SAFETY: `ptr` was allocated by the inner allocator with `full`.
        unsafe { self.inner.dealloc(ptr, full) }
    }

    /// Frees a large block of the library's own without retuning the
    /// program's heap: glibc's `free` of a chunk above its mmap threshold
    /// (128 KiB at first) raises that threshold to the chunk's size and
    /// its trim threshold to twice that, for the whole process, so the
    /// library's big temporary buffers (the namer's debug information, a
    /// report) would let every arena of the program keep up to twice their
    /// size free. Shrunk first (`realloc` of such a chunk remaps it, which
    /// touches no threshold), the block's `free` is below any. For another
    /// allocator this is one `realloc` more on a rare path. The LD_PRELOAD
    /// library does the same (`real::free_own`).
    ///
    /// # Safety
    /// `ptr` is a live block of the inner allocator allocated with `full`.
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_own_large(&self, ptr: *mut u8, full: Layout) {
        let small = full.align();
        // SAFETY: `ptr` is live with `full`; `small` (the alignment, a
        // non-zero size) rounded up to the alignment is itself.
        let q = unsafe { self.inner.realloc(ptr, full, small) };
        if q.is_null() {
            // SAFETY: a failed realloc leaves `ptr` live with `full`.
            unsafe { self.inner.dealloc(ptr, full) }
        } else {
            // SAFETY: `q` is live with the alignment kept and size `small`.
            unsafe {
                self.inner
                    .dealloc(q, Layout::from_size_align_unchecked(small, full.align()))
            }
        }
    }

    /// Reads a block's tag: its owner and the bytes it was charged (a
    /// sampled block's stack id is still in [`Owner::Site`]; see
    /// [`Owner::release`]).
    #[inline]
    unsafe fn read_tag(&self, ptr: *mut u8, layout: Layout, full: Layout) -> (Owner, usize) {
        // SAFETY: the block was allocated by `alloc`/`realloc` below with
        // `full`, so its tag bytes at `layout.size()` are readable.
        let word = unsafe { tag::read(ptr.add(layout.size())) };
        // SAFETY: `ptr` is a live block allocated with `full`.
        let bytes = unsafe { self.charged(ptr, layout, full) };
        let owner = match tag::decode(ptr as usize, layout.size(), word) {
            Some(site) => Owner::Site(site),
            None if tag::is_own(ptr as usize, layout.size(), word) => Owner::Library,
            None => Owner::Foreign,
        };
        (owner, bytes)
    }
}

/// Writes the tag of a fresh block of `bytes` charged to `site` (a sampled
/// allocation's tag holds its stack's id instead).
///
/// # Safety
/// `ptr` is a live block of at least `layout.size() + TAG_SIZE` bytes.
#[inline(always)]
unsafe fn tag_new(ptr: *mut u8, layout: Layout, site: u16, bytes: usize) {
    let id = stacks::tag_id(site, bytes);
    // SAFETY: the block is `layout.size() + TAG_SIZE` bytes long, so the
    // tag's 8 bytes at `layout.size()` are inside it and ours.
    unsafe {
        tag::write(
            ptr.add(layout.size()),
            tag::encode(ptr as usize, layout.size(), id),
        )
    };
}

/// `track_new` past the engine's common case (out of line: the common
/// path keeps no register for it).
///
/// # Safety
/// As [`tag_new`]; `taken` is what `record_program_alloc_fast` gave back.
#[cold]
#[inline(never)]
unsafe fn track_rest(op: Op, ptr: *mut u8, layout: Layout, bytes: usize, taken: engine::Taken) {
    let site = engine::record_alloc_rest(op, bytes, 0, taken);
    // SAFETY: the caller's contract.
    unsafe { tag_new(ptr, layout, site, bytes) }
}

/// Gives a block allocated on a thread doing the library's own work an own
/// tag (out of line: the allocation path of the program's threads stays
/// small enough to be inlined).
///
/// # Safety
/// `ptr` is a live block of at least `layout.size() + TAG_SIZE` bytes.
#[cold]
#[inline(never)]
unsafe fn mark_own(ptr: *mut u8, layout: Layout) {
    // SAFETY: the tag's 8 bytes at `layout.size()` are inside the block.
    unsafe {
        tag::write(
            ptr.add(layout.size()),
            tag::encode_own(ptr as usize, layout.size()),
        )
    };
}

/// Whose a block is, by its tag.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// The program's, charged to this site.
    Site(u16),
    /// The library's own (allocated while doing its own work): never charged.
    Library,
    /// A tag that does not validate: counted as a foreign free.
    Foreign,
}

impl Owner {
    /// The block of `bytes` leaves its owner (freed, or resized): a sampled
    /// block's estimate is taken back from its stack. The site to charge.
    #[inline]
    fn release(self, bytes: usize) -> Option<u16> {
        match self {
            Owner::Site(id) => Some(stacks::released(id, bytes)),
            _ => None,
        }
    }
}

// SAFETY: every method forwards to the inner allocator with a layout that is
// `layout` plus TAG_SIZE bytes (same alignment), so the inner allocator's
// guarantees (alignment, size, zeroing) hold for the caller's part of the
// block; the tag lives only in the extra bytes. Null results are passed
// through untouched and charged nothing.
unsafe impl<A: GlobalAlloc + UsableSize> GlobalAlloc for AsmAlloc<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(full) = with_tag(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `full` has non-zero size (it includes the tag).
        let ptr = unsafe { self.inner.alloc(full) };
        if !ptr.is_null() {
            // SAFETY: `ptr` is a fresh block for `full`.
            unsafe { self.track_new(Op::Malloc, ptr, layout) };
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some(full) = with_tag(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `full` has non-zero size.
        let ptr = unsafe { self.inner.alloc_zeroed(full) };
        if !ptr.is_null() {
            // SAFETY: `ptr` is a fresh block for `full`.
            unsafe { self.track_new(Op::Calloc, ptr, layout) };
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is a live block of this
        // allocator with `layout`.
        let full = unsafe { tagged(layout) };
        // The common case with no call but the inner allocator's (a jump):
        // a program block tagged with a site that is no sampled stack's
        // id (so `stacks::released` is a no-op), the engine's common case.
        // SAFETY: the block was allocated with `full`, so its tag bytes at
        // `layout.size()` are readable.
        let word = unsafe { tag::read(ptr.add(layout.size())) };
        if let Some(site) = tag::decode(ptr as usize, layout.size(), word)
            && !(stacks::table::LAST_STACK..=stacks::table::FIRST_STACK).contains(&site)
        {
            // SAFETY: `ptr` is a live block allocated with `full`.
            let Some(bytes) = (unsafe { self.charged_inline(ptr, layout, full) }) else {
                // SAFETY: the caller's contract.
                return unsafe { self.dealloc_other(ptr, layout) };
            };
            if engine::record_free_fast(Op::Free, site, bytes) {
                // SAFETY: `ptr` was allocated by the inner allocator with
                // `full`.
                return unsafe { self.inner.dealloc(ptr, full) };
            }
            // SAFETY: as above.
            return unsafe { self.dealloc_charging(ptr, layout, site, bytes) };
        }
        // SAFETY: the caller's contract.
        unsafe { self.dealloc_other(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` is a live block of this allocator with `layout`
        // (the caller's contract).
        let full = unsafe { tagged(layout) };
        let Some(new_full) = new_size
            .checked_add(TAG_SIZE)
            .and_then(|n| Layout::from_size_align(n, layout.align()).ok())
        else {
            return std::ptr::null_mut();
        };
        // SAFETY: `ptr` is a live block allocated with `full` (caller's
        // contract for `layout`).
        let (old_owner, old_bytes) = unsafe { self.read_tag(ptr, layout, full) };
        // SAFETY: as above; `new_full.size()` is non-zero and, being a valid
        // Layout size, does not overflow isize when rounded to the alignment.
        let new_ptr = unsafe { self.inner.realloc(ptr, full, new_full.size()) };
        if new_ptr.is_null() {
            // The old block is untouched and stays charged where it was.
            return new_ptr;
        }
        // SAFETY: `new_size` with the old alignment was validated above.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_ptr` is a live block for `new_full`.
        let new_bytes = unsafe { self.charged(new_ptr, new_layout, new_full) };
        let old_site = old_owner.release(old_bytes);
        let word = if engine::library_work() {
            // The library's own work: the new block is its own; a program
            // block it resized leaves its site.
            if let Some(old) = old_site {
                engine::record_free(Op::Realloc, old, old_bytes);
            }
            tag::encode_own(new_ptr as usize, new_size)
        } else {
            let site = match old_owner {
                // An own block the program now resizes becomes the program's.
                Owner::Library => engine::record_alloc(Op::Realloc, new_bytes),
                _ => engine::record_realloc(Op::Realloc, old_site, old_bytes, new_bytes),
            };
            tag::encode(new_ptr as usize, new_size, stacks::tag_id(site, new_bytes))
        };
        // SAFETY: the new block is `new_size + TAG_SIZE` bytes long.
        unsafe { tag::write(new_ptr.add(new_size), word) };
        new_ptr
    }
}
