//! Thread tables: one per live thread, per-site counters written only by
//! their owner, read by reporters.
//!
//! A table is one anonymous mapping: a header (registry link, owner's thread
//! id, per-operation counters) and then a counter block for every possible
//! `u16` site id. The mapping is `MAP_NORESERVE`, so only the pages of sites a
//! thread really uses are ever backed by memory (64 sites per 8 KiB), and any
//! site id indexes valid memory: there is no fixed site limit and no
//! bounds check on the allocation path.
//!
//! Counters are atomics only so that reporter threads may read them while
//! the owner writes; the owner updates them with a relaxed load and a relaxed
//! store (no read-modify-write, no lock), which compiles to plain moves.
//! The one table written by several threads, the *retired* table that
//! collects the counters of exited threads, uses `fetch_add` instead; it
//! also takes the updates of a signal handler that interrupts its thread's
//! own update (see `ThreadState::begin_update`), so none is lost.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, Ordering};

use crate::op::Op;
use crate::sys;

/// Number of site ids a table can hold: every `u16`.
pub(crate) const SITES: usize = 1 << 16;
/// Site ids per bit of the `touched` bitmap (one 8 KiB run of counters).
const SITES_PER_BIT: usize = 64;
const TOUCH_WORDS: usize = SITES / SITES_PER_BIT / 64;

#[inline(always)]
fn touch_bit(site: u16) -> (usize, u64) {
    let block = usize::from(site) / SITES_PER_BIT;
    (block / 64, 1u64 << (block % 64))
}

/// Counters of one site in one thread table. Two cache lines: the first is
/// written on every allocation, the second only by the explicit
/// `mallocation_set` API and by threshold reports.
#[repr(C, align(64))]
pub(crate) struct SiteCounters {
    // Frees are not stored: they are `allocs - net_count`, so a free writes
    // two counters and an allocation four.
    pub net_bytes: AtomicI64,
    pub net_count: AtomicI64,
    pub allocs: AtomicU64,
    /// Bytes of every allocation charged here (reallocations' new sizes
    /// included), never decreased: what a site allocated in all — the pprof
    /// profile's `alloc_space`, and reports of programs that free everything
    /// before they exit. Same cache line, so one more store.
    pub alloc_bytes: AtomicU64,
    _spare: [AtomicU64; 2],
    /// `net_bytes` when the delta callback last fired for this site.
    pub reported_total: AtomicI64,
    /// Whole seconds (Unix time) of that report; 0 = never.
    pub reported_secs: AtomicI64,
    // --- second cache line: the original's per-site record ---
    /// Type of the last `mallocation_set` for this site.
    pub last_type: AtomicU64,
    /// Delta passed with the last `mallocation_set`.
    pub last_delta: AtomicI64,
    /// Time (ns) of the last `mallocation_set` or report for this site.
    pub last_time_ns: AtomicI64,
    _reserved: [AtomicU64; 5],
}

impl SiteCounters {
    /// Whether this table has written these counters (so its `touched`
    /// bit is set), given `net_count` as just loaded: an allocation
    /// leaves `allocs` non-zero for the table's life, a free without one
    /// leaves `net_count` negative until an allocation comes.
    #[inline(always)]
    pub(crate) fn written(&self, net_count: i64) -> bool {
        net_count != 0 || self.allocs.load(Ordering::Relaxed) != 0
    }

    /// Adds an allocation of `bytes` (owner only, the site touched);
    /// `allocs` is the count as just loaded. Returns the net bytes.
    #[inline(always)]
    pub(crate) fn add_alloc(&self, allocs: u64, bytes: usize) -> i64 {
        self.allocs.store(allocs.wrapping_add(1), Ordering::Relaxed);
        owner_add_u(&self.alloc_bytes, bytes as u64);
        let net = self
            .net_bytes
            .load(Ordering::Relaxed)
            .wrapping_add(bytes as i64);
        self.net_bytes.store(net, Ordering::Relaxed);
        owner_add_i(&self.net_count, 1);
        net
    }

    /// Takes back a free of `bytes` (owner only, the site touched);
    /// `net_count` is the count as just loaded. Returns the net bytes.
    #[inline(always)]
    pub(crate) fn add_free(&self, net_count: i64, bytes: usize) -> i64 {
        self.net_count
            .store(net_count.wrapping_sub(1), Ordering::Relaxed);
        let net = self
            .net_bytes
            .load(Ordering::Relaxed)
            .wrapping_sub(bytes as i64);
        self.net_bytes.store(net, Ordering::Relaxed);
        net
    }
}

/// Calls and bytes of one operation kind, side by side (one cache line
/// for both updates).
#[repr(C)]
pub(crate) struct OpCounter {
    pub count: AtomicU64,
    pub bytes: AtomicU64,
}

impl OpCounter {
    const fn new() -> OpCounter {
        OpCounter {
            count: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }
}

/// The header of a thread table. The fields the allocation path uses come
/// first (the counters' address and the per-operation counts share the
/// first cache lines); the registry's bookkeeping follows.
#[repr(C)]
pub(crate) struct ThreadTable {
    /// The counters, `SITES` of them, right after the header's page.
    sites: NonNull<SiteCounters>,
    /// Per-operation call counts and bytes.
    pub ops: [OpCounter; Op::COUNT],
    /// Next table in the registry (immutable once published).
    pub next: AtomicPtr<ThreadTable>,
    /// Owned by a live thread. Cleared when the owner exits (after folding its
    /// counters), so another thread may adopt the table.
    pub in_use: AtomicBool,
    /// The owner's thread id (0 = the initial thread).
    pub thread_id: AtomicU64,
    /// One bit per block of 64 site ids this table has written; reporters
    /// and the exit fold scan only those blocks.
    pub touched: [AtomicU64; TOUCH_WORDS],
}

// SAFETY: every field is an atomic or an immutable pointer into the table's
// own mapping, which is never unmapped; sharing it between threads is the
// point of the registry.
unsafe impl Sync for ThreadTable {}
// SAFETY: as above; nothing in the table is tied to the creating thread.
unsafe impl Send for ThreadTable {}

const HEADER_BYTES: usize = 4096;
const MAP_BYTES: usize = HEADER_BYTES + SITES * std::mem::size_of::<SiteCounters>();

const _: () = assert!(std::mem::size_of::<ThreadTable>() <= HEADER_BYTES);
const _: () = assert!(std::mem::size_of::<SiteCounters>() == 128);

/// Adds `d` to a counter only its owner writes: a load and a store, no RMW.
#[inline(always)]
pub(crate) fn owner_add_i(a: &AtomicI64, d: i64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(d), Ordering::Relaxed);
}

/// Unsigned version of [`owner_add_i`].
#[inline(always)]
pub(crate) fn owner_add_u(a: &AtomicU64, d: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(d), Ordering::Relaxed);
}

impl ThreadTable {
    /// Maps and initialises a new table (not yet in the registry).
    /// Returns `None` if the kernel refuses the mapping.
    pub(crate) fn create() -> Option<&'static ThreadTable> {
        let base = sys::map_zeroed(MAP_BYTES)?;
        let header = base.as_ptr().cast::<ThreadTable>();
        // SAFETY: the mapping is MAP_BYTES long, so HEADER_BYTES is in bounds.
        let sites = unsafe { base.as_ptr().add(HEADER_BYTES) }.cast::<SiteCounters>();
        // SAFETY: `header` is page-aligned, writable, large enough for a
        // ThreadTable (checked at compile time) and not yet shared. The
        // zeroed mapping already is a valid all-zero header; we write the
        // whole value to set the sites pointer.
        unsafe {
            header.write(ThreadTable {
                next: AtomicPtr::new(std::ptr::null_mut()),
                in_use: AtomicBool::new(false),
                thread_id: AtomicU64::new(0),
                touched: [const { AtomicU64::new(0) }; TOUCH_WORDS],
                ops: [const { OpCounter::new() }; Op::COUNT],
                sites: NonNull::new_unchecked(sites),
            });
        }
        // SAFETY: just initialised; the mapping is never unmapped, so the
        // reference is valid for 'static.
        Some(unsafe { &*header })
    }

    /// The counters of `site`.
    #[inline(always)]
    pub(crate) fn site(&self, site: u16) -> &SiteCounters {
        // SAFETY: the mapping holds SITES = 2^16 counters, so every u16 index
        // is in bounds; the zeroed memory is a valid SiteCounters (all
        // atomics) and it lives as long as the table ('static).
        unsafe { &*self.sites.as_ptr().add(usize::from(site)) }
    }

    /// Notes that `site` has been written (owner only).
    ///
    /// Setting the bit is a read-modify-write, not a load and a store: a
    /// signal handler that allocates on this thread may set another bit of
    /// the same word between the two, and a plain store would erase it —
    /// that block's counters would then be invisible to every report and to
    /// the thread-exit fold (seen: 12 to 48 sites of 512 in a second of
    /// signals, `fault_signal.c`). Only the first write to a block of 64
    /// sites takes this branch; the allocation path's steady state is the
    /// load and the test.
    #[inline(always)]
    pub(crate) fn touch(&self, site: u16) {
        let (word, bit) = touch_bit(site);
        let w = &self.touched[word];
        if w.load(Ordering::Relaxed) & bit == 0 {
            w.fetch_or(bit, Ordering::Release);
        }
    }

    /// Every site id in a block this table has written (a superset of the
    /// sites with non-zero counters).
    pub(crate) fn touched_sites(&self) -> impl Iterator<Item = u16> + '_ {
        (0..TOUCH_WORDS).flat_map(move |word| {
            let bits = self.touched[word].load(Ordering::Acquire);
            (0..64u32)
                .filter(move |b| bits & (1u64 << b) != 0)
                .flat_map(move |b| {
                    let first = (word as u32 * 64 + b) * SITES_PER_BIT as u32;
                    (first..first + SITES_PER_BIT as u32).map(|id| id as u16)
                })
        })
    }

    /// Counts one call of `op` (owner only).
    #[inline(always)]
    pub(crate) fn count_op(&self, op: Op, bytes: usize) {
        let o = &self.ops[op as usize];
        owner_add_u(&o.count, 1);
        owner_add_u(&o.bytes, bytes as u64);
    }

    /// Charges an allocation of `bytes` to `site` (owner only).
    #[inline(always)]
    pub(crate) fn charge_alloc(&self, site: u16, bytes: usize) -> i64 {
        let c = self.site(site);
        let allocs = c.allocs.load(Ordering::Relaxed);
        if allocs == 0 {
            // First allocation at this site in this table's life.
            self.touch(site);
        }
        c.add_alloc(allocs, bytes)
    }

    /// Charges a free of `bytes` back to `site` (owner only).
    #[inline(always)]
    pub(crate) fn charge_free(&self, site: u16, bytes: usize) -> i64 {
        let c = self.site(site);
        let count = c.net_count.load(Ordering::Relaxed);
        if !c.written(count) {
            // A free at a site this table never allocated at (the block
            // came from another thread): the first write to it.
            self.touch(site);
        }
        c.add_free(count, bytes)
    }

    // --- the retired table: shared, so read-modify-write atomics ---

    /// `count_op` for the shared retired table.
    pub(crate) fn shared_count_op(&self, op: Op, bytes: usize) {
        let o = &self.ops[op as usize];
        o.count.fetch_add(1, Ordering::Relaxed);
        o.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// `charge_alloc` / `charge_free` for the shared retired table.
    pub(crate) fn shared_charge(&self, site: u16, bytes: usize, alloc: bool) {
        let (word, bit) = touch_bit(site);
        self.touched[word].fetch_or(bit, Ordering::AcqRel);
        let c = self.site(site);
        if alloc {
            c.net_bytes.fetch_add(bytes as i64, Ordering::Relaxed);
            c.net_count.fetch_add(1, Ordering::Relaxed);
            c.allocs.fetch_add(1, Ordering::Relaxed);
            c.alloc_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        } else {
            c.net_bytes.fetch_sub(bytes as i64, Ordering::Relaxed);
            c.net_count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Moves every counter of this (exiting owner's) table into `into` and
    /// zeroes this one, so it can be adopted by a new thread.
    pub(crate) fn fold_into(&self, into: &ThreadTable) {
        for i in 0..Op::COUNT {
            let (from, to) = (&self.ops[i], &into.ops[i]);
            to.count
                .fetch_add(from.count.swap(0, Ordering::Relaxed), Ordering::Relaxed);
            to.bytes
                .fetch_add(from.bytes.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        }
        for word in 0..TOUCH_WORDS {
            let bits = self.touched[word].load(Ordering::Acquire);
            into.touched[word].fetch_or(bits, Ordering::AcqRel);
        }
        for id in self.touched_sites() {
            let from = self.site(id);
            let to = into.site(id);
            to.net_bytes
                .fetch_add(from.net_bytes.swap(0, Ordering::Relaxed), Ordering::Relaxed);
            to.net_count
                .fetch_add(from.net_count.swap(0, Ordering::Relaxed), Ordering::Relaxed);
            to.allocs
                .fetch_add(from.allocs.swap(0, Ordering::Relaxed), Ordering::Relaxed);
            to.alloc_bytes.fetch_add(
                from.alloc_bytes.swap(0, Ordering::Relaxed),
                Ordering::Relaxed,
            );
            // Per-thread report state starts afresh for the next owner.
            from.reported_total.store(0, Ordering::Relaxed);
            from.reported_secs.store(0, Ordering::Relaxed);
            from.last_type.store(0, Ordering::Relaxed);
            from.last_delta.store(0, Ordering::Relaxed);
            from.last_time_ns.store(0, Ordering::Relaxed);
        }
        for word in &self.touched {
            word.store(0, Ordering::Release);
        }
    }
}
