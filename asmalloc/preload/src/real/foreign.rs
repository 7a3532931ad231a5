//! Another allocator underneath: recognise it, and step aside.
//!
//! The library forwards to one heap it knows inside out (glibc's, or the
//! jemalloc it carries): it reads that heap's block sizes to place its tags.
//! A program may bring its own allocator instead — linked against
//! `libjemalloc.so.2` (redis-server), `libtcmalloc`, `libmimalloc` — whose
//! `malloc`, `free`, `mallocx`, `tc_free`, `mi_free`, C++ `operator new`…
//! the program and its libraries call, some of them past this library. Our
//! blocks must then never reach that allocator's `free` (nor its blocks our
//! heap's), and its blocks must never be read as if they were our heap's:
//! that is a crash, not a miscount.
//!
//! So when the library resolves its symbols (on the first allocation, before
//! it hands out any tracked block) it asks the dynamic linker whose `malloc`
//! comes after it (`dlsym(RTLD_NEXT, "malloc")`) and which object that is
//! (`dladdr`). glibc's is ours to track; for libasmalloc_jem.so a jemalloc
//! library is too (every jemalloc entry point the program can call is
//! exported by the library itself, over the jemalloc it carries). Any other
//! allocator: the library *steps aside* — it says so once on stderr, names
//! the build to use where one exists, and from then on forwards every call
//! to that allocator untouched, tracking nothing.
//!
//! The few blocks the library's own heap handed out before the decision
//! (nested allocations inside `dlsym`, at most a handful) are remembered by
//! address in a fixed table, so that their `free` goes back to the heap
//! they came from.

use std::ffi::{CStr, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::lookup;

/// Which allocator serves `malloc` after this library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Underneath {
    /// glibc's own: the library tracks (over glibc, or over its jemalloc).
    Glibc,
    /// A jemalloc shared library (`libjemalloc.so.*`).
    Jemalloc,
    /// tcmalloc (gperftools' `libtcmalloc*.so`).
    Tcmalloc,
    /// mimalloc (`libmimalloc.so`).
    Mimalloc,
    /// Some other object defines `malloc`.
    Other,
}

impl Underneath {
    fn from_file_name(name: &[u8]) -> Underneath {
        let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
        if base.starts_with(b"libc.so") || base.starts_with(b"libc-") {
            Underneath::Glibc
        } else if base.starts_with(b"libjemalloc") {
            Underneath::Jemalloc
        } else if base.starts_with(b"libtcmalloc") {
            Underneath::Tcmalloc
        } else if base.starts_with(b"libmimalloc") {
            Underneath::Mimalloc
        } else {
            Underneath::Other
        }
    }

    /// The allocator's name in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Underneath::Glibc => "glibc",
            Underneath::Jemalloc => "jemalloc",
            Underneath::Tcmalloc => "tcmalloc",
            Underneath::Mimalloc => "mimalloc",
            Underneath::Other => "another allocator",
        }
    }
}

/// The object that defines the `malloc` found after this library, and the
/// allocator it is. `None` when the dynamic linker cannot say (then the
/// library assumes glibc, as before it looked).
pub(crate) fn next_malloc() -> Option<(Underneath, [u8; 128], usize)> {
    let next = lookup(c"malloc");
    if next == 0 {
        return None;
    }
    let libc_base = object_of(libc::getpid as *const () as usize)?.1;
    let (name, base) = object_of(next)?;
    let mut file = [0u8; 128];
    let n = name.len().min(file.len());
    file[..n].copy_from_slice(&name[..n]);
    let kind = if base == libc_base {
        Underneath::Glibc
    } else {
        match Underneath::from_file_name(name) {
            // A file called libc… that is not the C library we run on.
            Underneath::Glibc => Underneath::Other,
            kind => kind,
        }
    };
    Some((kind, file, n))
}

/// The file name and load address of the object containing `addr`.
fn object_of(addr: usize) -> Option<(&'static [u8], usize)> {
    // SAFETY: Dl_info is plain data; all-zero is valid.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr reads no memory at `addr`; `info` is writable.
    if unsafe { libc::dladdr(addr as *const c_void, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname points into the link map, NUL-terminated; the
    // objects asked about (the C library, the allocator that serves every
    // malloc) stay loaded for the process's life.
    let name = unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes();
    Some((name, info.dli_fbase as usize))
}

// ---------------------------------------------------------------------------
// The next allocator's functions, used once the library has stepped aside.

/// Addresses found by dlsym (0 = not found).
pub(crate) struct Next {
    malloc: AtomicUsize,
    calloc: AtomicUsize,
    realloc: AtomicUsize,
    free: AtomicUsize,
    memalign: AtomicUsize,
    posix_memalign: AtomicUsize,
    aligned_alloc: AtomicUsize,
    valloc: AtomicUsize,
    pvalloc: AtomicUsize,
    usable_size: AtomicUsize,
}

pub(crate) static NEXT: Next = Next {
    malloc: AtomicUsize::new(0),
    calloc: AtomicUsize::new(0),
    realloc: AtomicUsize::new(0),
    free: AtomicUsize::new(0),
    memalign: AtomicUsize::new(0),
    posix_memalign: AtomicUsize::new(0),
    aligned_alloc: AtomicUsize::new(0),
    valloc: AtomicUsize::new(0),
    pvalloc: AtomicUsize::new(0),
    usable_size: AtomicUsize::new(0),
};

/// Looks up the next allocator's functions. False if one the library
/// cannot do without (`malloc`, `calloc`, `realloc`, `free`) is missing:
/// then it cannot step aside and keeps its own heap.
pub(crate) fn resolve_next() -> bool {
    let slots: [(&AtomicUsize, &CStr); 10] = [
        (&NEXT.malloc, c"malloc"),
        (&NEXT.calloc, c"calloc"),
        (&NEXT.realloc, c"realloc"),
        (&NEXT.free, c"free"),
        (&NEXT.memalign, c"memalign"),
        (&NEXT.posix_memalign, c"posix_memalign"),
        (&NEXT.aligned_alloc, c"aligned_alloc"),
        (&NEXT.valloc, c"valloc"),
        (&NEXT.pvalloc, c"pvalloc"),
        (&NEXT.usable_size, c"malloc_usable_size"),
    ];
    for (slot, name) in slots {
        slot.store(lookup(name), Ordering::Relaxed);
    }
    [&NEXT.malloc, &NEXT.calloc, &NEXT.realloc, &NEXT.free]
        .iter()
        .all(|s| s.load(Ordering::Relaxed) != 0)
}

/// Transmutes a looked-up address into a function pointer of type `F`.
///
/// # Safety
/// `addr` is non-zero and the address of a function whose C signature is
/// `F`.
unsafe fn func<F: Copy>(addr: usize) -> F {
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
    // SAFETY: the caller's contract; function pointers are address-sized.
    unsafe { std::mem::transmute_copy(&addr) }
}

impl Next {
    /// The next allocator's `malloc`.
    pub(crate) fn malloc(&self, size: usize) -> *mut c_void {
        // SAFETY: resolve_next found malloc (checked non-zero) before the
        // library stepped aside; the C signature is malloc's.
        unsafe {
            func::<unsafe extern "C" fn(usize) -> *mut c_void>(self.malloc.load(Ordering::Relaxed))(
                size,
            )
        }
    }

    /// The next allocator's `calloc`.
    pub(crate) fn calloc(&self, n: usize, size: usize) -> *mut c_void {
        // SAFETY: as in `malloc` (calloc checked non-zero).
        unsafe {
            func::<unsafe extern "C" fn(usize, usize) -> *mut c_void>(
                self.calloc.load(Ordering::Relaxed),
            )(n, size)
        }
    }

    /// The next allocator's `realloc`, except for a block of our own heap
    /// from before the decision, which moves over to the next allocator.
    ///
    /// # Safety
    /// `p` is NULL or a live block of the next allocator or from [`early`].
    pub(crate) unsafe fn realloc(&self, p: *mut c_void, size: usize) -> *mut c_void {
        if !p.is_null() && early::holds(p as usize) {
            // SAFETY: `p` is a live block of our own heap (early table).
            return unsafe { move_early(p, size) };
        }
        // SAFETY: as in `malloc` (realloc checked non-zero); `p` is the
        // next allocator's (caller's contract).
        unsafe {
            func::<unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void>(
                self.realloc.load(Ordering::Relaxed),
            )(p, size)
        }
    }

    /// The next allocator's `free`, or our own heap's for an early block.
    ///
    /// # Safety
    /// `p` is NULL or a live block of the next allocator or from [`early`].
    pub(crate) unsafe fn free(&self, p: *mut c_void) {
        if !p.is_null() && early::take(p as usize) {
            // SAFETY: `p` is a live block of our own heap, forgotten above.
            return unsafe { super::free(p) };
        }
        // SAFETY: as in `malloc` (free checked non-zero); the caller's
        // contract for `p`.
        unsafe { func::<unsafe extern "C" fn(*mut c_void)>(self.free.load(Ordering::Relaxed))(p) }
    }

    /// `memalign`: the next allocator's, else its `posix_memalign`.
    pub(crate) fn memalign(&self, align: usize, size: usize) -> *mut c_void {
        match self.memalign.load(Ordering::Relaxed) {
            0 => {
                let mut out = std::ptr::null_mut();
                // SAFETY: `out` is writable.
                match unsafe { self.posix_memalign(&mut out, align, size) } {
                    0 => out,
                    _ => std::ptr::null_mut(),
                }
            }
            // SAFETY: memalign's C signature.
            f => unsafe {
                func::<unsafe extern "C" fn(usize, usize) -> *mut c_void>(f)(align, size)
            },
        }
    }

    /// `posix_memalign`: the next allocator's, else ENOMEM.
    ///
    /// # Safety
    /// `out` is writable.
    pub(crate) unsafe fn posix_memalign(
        &self,
        out: *mut *mut c_void,
        align: usize,
        size: usize,
    ) -> c_int {
        match self.posix_memalign.load(Ordering::Relaxed) {
            0 => libc::ENOMEM,
            // SAFETY: posix_memalign's C signature; `out` writable (caller).
            f => unsafe {
                func::<unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> c_int>(f)(
                    out, align, size,
                )
            },
        }
    }

    /// `aligned_alloc`: the next allocator's, else `memalign`.
    pub(crate) fn aligned_alloc(&self, align: usize, size: usize) -> *mut c_void {
        match self.aligned_alloc.load(Ordering::Relaxed) {
            0 => self.memalign(align, size),
            // SAFETY: aligned_alloc's C signature.
            f => unsafe {
                func::<unsafe extern "C" fn(usize, usize) -> *mut c_void>(f)(align, size)
            },
        }
    }

    /// `valloc`: the next allocator's, else page-aligned `memalign`.
    pub(crate) fn valloc(&self, size: usize) -> *mut c_void {
        match self.valloc.load(Ordering::Relaxed) {
            0 => self.memalign(crate::syscalls::page_size(), size),
            // SAFETY: valloc's C signature.
            f => unsafe { func::<unsafe extern "C" fn(usize) -> *mut c_void>(f)(size) },
        }
    }

    /// `pvalloc`: the next allocator's, else whole pages from `memalign`.
    pub(crate) fn pvalloc(&self, size: usize) -> *mut c_void {
        match self.pvalloc.load(Ordering::Relaxed) {
            0 => {
                let page = crate::syscalls::page_size();
                match size.checked_next_multiple_of(page) {
                    Some(n) => self.memalign(page, n.max(page)),
                    None => {
                        crate::syscalls::set_errno(libc::ENOMEM);
                        std::ptr::null_mut()
                    }
                }
            }
            // SAFETY: pvalloc's C signature.
            f => unsafe { func::<unsafe extern "C" fn(usize) -> *mut c_void>(f)(size) },
        }
    }

    /// `malloc_usable_size`: the next allocator's (0 if it has none), or
    /// our own heap's for an early block.
    ///
    /// # Safety
    /// `p` is a live, non-null block of the next allocator or from [`early`].
    pub(crate) unsafe fn usable_size(&self, p: *mut c_void) -> usize {
        if early::holds(p as usize) {
            // SAFETY: a live block of our own heap.
            return unsafe { super::usable_size(p) };
        }
        match self.usable_size.load(Ordering::Relaxed) {
            0 => 0,
            // SAFETY: malloc_usable_size's C signature; `p` is live.
            f => unsafe { func::<unsafe extern "C" fn(*mut c_void) -> usize>(f)(p) },
        }
    }
}

/// Moves an early block of our own heap to the next allocator (realloc).
///
/// # Safety
/// `p` is a live block of our own heap listed in the early table.
unsafe fn move_early(p: *mut c_void, size: usize) -> *mut c_void {
    if size == 0 {
        early::take(p as usize);
        // SAFETY: our own heap's block (caller).
        unsafe { super::free(p) };
        return std::ptr::null_mut();
    }
    let q = NEXT.malloc(size);
    if q.is_null() {
        return q;
    }
    // SAFETY: `p` is live in our heap; `q` has room for `size` bytes; the
    // copy is the smaller of the two; distinct blocks do not overlap.
    unsafe {
        let n = super::usable_size(p).min(size);
        std::ptr::copy_nonoverlapping(p.cast::<u8>(), q.cast::<u8>(), n);
        early::take(p as usize);
        super::free(p);
    }
    q
}

/// The blocks our own heap handed out while the library was still
/// resolving (inside `dlsym`), before it knew whether it would step aside.
pub(crate) mod early {
    use std::sync::atomic::{AtomicUsize, Ordering};

    const SLOTS: usize = 64;

    static BLOCKS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
    /// How many slots are in use (a quick "none" for every later free).
    static COUNT: AtomicUsize = AtomicUsize::new(0);

    /// Remembers `p` (only the resolving thread calls this, with the
    /// guard held). A full table forgets the block: its later free then
    /// goes to the next allocator — the same odds as before this table.
    pub(crate) fn note(p: usize) {
        if p == 0 {
            return;
        }
        for slot in &BLOCKS {
            if slot
                .compare_exchange(0, p, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                COUNT.fetch_add(1, Ordering::AcqRel);
                return;
            }
        }
    }

    /// True if `p` is an early block.
    pub(crate) fn holds(p: usize) -> bool {
        COUNT.load(Ordering::Acquire) != 0 && BLOCKS.iter().any(|s| s.load(Ordering::Relaxed) == p)
    }

    /// Forgets `p` if it is an early block; true if it was.
    pub(crate) fn take(p: usize) -> bool {
        if COUNT.load(Ordering::Acquire) == 0 {
            return false;
        }
        for slot in &BLOCKS {
            if slot
                .compare_exchange(p, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                COUNT.fetch_sub(1, Ordering::AcqRel);
                return true;
            }
        }
        false
    }
}
