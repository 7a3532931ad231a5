//! The library's own memory when the heap has none left.
//!
//! The library's Rust code (reports, the leak monitor and its log, the
//! reporter thread) allocates through the global allocator, i.e. through
//! `malloc` under the reentrancy guard. When the program has used up its
//! memory (`RLIMIT_AS`, a cgroup limit, overcommit off) that `malloc` fails
//! — and Rust's answer to a failed allocation is to abort the process: the
//! library would kill, at exit or at its next sample, a program that
//! handles `ENOMEM` itself and would have exited cleanly (seen: the exit
//! report and the monitor aborted `fault_rlimit.c` under
//! libasmalloc_jem.so, every time).
//!
//! So a failed allocation of the library's is served from a fixed reserve
//! in the library's `.bss` ([`RESERVE_BYTES`]): it was mapped when the
//! library was loaded, so serving from it needs no new mapping, and its
//! pages cost no memory until they are used. Blocks are carved from it in
//! power-of-two classes and kept on a free list per class when freed, so a
//! monitor sampling every few milliseconds through a long shortage reuses
//! the same blocks. Only when the reserve is used up too does the
//! allocation fail (and the process abort, as any Rust program's would).
//! Blocks the heap gave are the heap's as before: the reserve is consulted
//! only after a failure, and a block is recognised as the reserve's by its
//! address.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bytes in the reserve.
pub(crate) const RESERVE_BYTES: usize = 4 << 20;

/// The smallest block (room for the free list's link).
const MIN_CLASS: usize = 16;
/// Classes 16 B, 32 B, … up to the whole reserve.
const CLASSES: usize = (RESERVE_BYTES / MIN_CLASS).trailing_zeros() as usize + 1;
/// Blocks are aligned to their class, up to a page.
const MAX_ALIGN: usize = 4096;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; RESERVE_BYTES]>);

/// Carving state, under [`LOCK`].
struct State {
    /// Bytes of the arena carved so far.
    carved: usize,
    /// Offset + 1 of the first free block of each class (0: none); a free
    /// block's first word holds the next one's offset + 1.
    free: [usize; CLASSES],
}

struct Shared(UnsafeCell<State>);

// SAFETY: the arena's bytes are handed out in disjoint blocks (each owned by
// one caller until freed) and its bookkeeping is only touched under LOCK.
unsafe impl Sync for Arena {}
// SAFETY: `State` is only accessed while LOCK is held.
unsafe impl Sync for Shared {}

static ARENA: Arena = Arena(UnsafeCell::new([0; RESERVE_BYTES]));
static STATE: Shared = Shared(UnsafeCell::new(State {
    carved: 0,
    free: [0; CLASSES],
}));
static LOCK: AtomicBool = AtomicBool::new(false);

fn base() -> usize {
    ARENA.0.get() as usize
}

/// True for a block the reserve handed out.
fn contains(p: *mut u8) -> bool {
    let p = p as usize;
    p >= base() && p < base() + RESERVE_BYTES
}

/// The class (index, size) of a layout, or `None` if the reserve cannot
/// serve it.
fn class_of(layout: Layout) -> Option<(usize, usize)> {
    if layout.align() > MAX_ALIGN {
        return None;
    }
    let size = layout
        .size()
        .max(layout.align())
        .max(MIN_CLASS)
        .checked_next_power_of_two()?;
    if size > RESERVE_BYTES {
        return None;
    }
    Some(((size / MIN_CLASS).trailing_zeros() as usize, size))
}

/// Runs `f` with the reserve's state, under its spin lock (yielding). Only
/// failed allocations and frees of reserve blocks come here.
fn locked<R>(f: impl FnOnce(&mut State) -> R) -> R {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
    // SAFETY: LOCK is held, so this is the only reference to the state.
    let r = f(unsafe { &mut *STATE.0.get() });
    LOCK.store(false, Ordering::Release);
    r
}

/// A block for `layout` from the reserve, or null.
fn take(layout: Layout) -> *mut u8 {
    let Some((class, size)) = class_of(layout) else {
        return std::ptr::null_mut();
    };
    locked(|s| {
        let offset = match s.free[class] {
            0 => {
                let align = size.min(MAX_ALIGN);
                let start = s.carved.next_multiple_of(align);
                if start + size > RESERVE_BYTES {
                    return std::ptr::null_mut();
                }
                s.carved = start + size;
                start
            }
            head => {
                let offset = head - 1;
                // SAFETY: a free block of this class starts at `offset`; its
                // first word is the link written by `give_back`.
                s.free[class] = unsafe { ((base() + offset) as *const usize).read() };
                offset
            }
        };
        (base() + offset) as *mut u8
    })
}

/// Returns a reserve block to its class's free list.
fn give_back(p: *mut u8, layout: Layout) {
    let Some((class, _)) = class_of(layout) else {
        return;
    };
    locked(|s| {
        // SAFETY: `p` is a reserve block of this class (at least 16 bytes,
        // aligned to 16), no longer used by its owner.
        unsafe { (p as *mut usize).write(s.free[class]) };
        s.free[class] = p as usize - base() + 1;
    })
}

/// The library's global allocator: the heap (through `malloc` & co., which
/// see the reentrancy guard and give the blocks an own tag), and the
/// reserve when the heap has nothing left.
struct HeapThenReserve;

// SAFETY: every block comes from `System` or from the reserve, and goes back
// to the one it came from (told apart by address); both honour the layout.
unsafe impl GlobalAlloc for HeapThenReserve {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract (non-zero size).
        let p = unsafe { System.alloc(layout) };
        if p.is_null() { take(layout) } else { p }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            return p;
        }
        let p = take(layout);
        if !p.is_null() {
            // SAFETY: a reserve block of at least `layout.size()` bytes (it
            // may have been used before).
            unsafe { p.write_bytes(0, layout.size()) };
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if contains(p) {
            give_back(p, layout);
        } else {
            // SAFETY: a block System handed out with this layout.
            unsafe { System.dealloc(p, layout) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !contains(p) {
            // SAFETY: a System block with this layout; forwarded contract.
            let q = unsafe { System.realloc(p, layout, new_size) };
            if !q.is_null() {
                return q;
            }
        }
        // A reserve block, or one the heap could not resize: move it.
        // SAFETY: the caller guarantees `new_size`, rounded up to the
        // alignment, does not overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: non-zero size (caller's contract).
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are live, distinct, and hold at least the
            // smaller of the two sizes.
            unsafe {
                std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
        }
        q
    }
}

#[global_allocator]
static GLOBAL: HeapThenReserve = HeapThenReserve;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_blocks_are_aligned_reused_and_bounded() {
        let l = Layout::from_size_align(100, 8).unwrap();
        let a = take(l);
        assert!(contains(a));
        assert_eq!(a as usize % 128, 0, "aligned to its class");
        give_back(a, l);
        assert_eq!(take(l), a, "a freed block is reused");
        let page = Layout::from_size_align(10, 4096).unwrap();
        let b = take(page);
        assert_eq!(b as usize % 4096, 0);
        give_back(b, page);
        give_back(a, l);
        let too_big = Layout::from_size_align(RESERVE_BYTES + 1, 8).unwrap();
        assert!(take(too_big).is_null());
        let odd = Layout::from_size_align(64, 8192).unwrap();
        assert!(take(odd).is_null(), "alignments past a page are refused");
        // SAFETY: a reserve block moved by realloc keeps its bytes.
        unsafe {
            let small = Layout::from_size_align(16, 8).unwrap();
            let p = take(small);
            p.write_bytes(7, 16);
            let q = GLOBAL.realloc(p, small, 5000);
            assert!(!q.is_null());
            assert_eq!(std::slice::from_raw_parts(q, 16), &[7u8; 16]);
            GLOBAL.dealloc(q, Layout::from_size_align(5000, 8).unwrap());
        }
    }
}
