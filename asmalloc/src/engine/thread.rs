//! The calling thread's state: its table, its current site, and the guard
//! against re-entering the tracker from a callback.
//!
//! The state lives in a plain TLS slot (`engine/tls.rs`): no lazy
//! initialisation, no destructor registration (which would itself
//! allocate), readable during every thread-exit destructor.
//!
//! Thread exit is observed with a `pthread` key destructor rather than a Rust
//! `thread_local!` with `Drop`: a key needs no allocation to set (glibc keeps
//! the first 32 keys in the thread descriptor), and its destructors run after
//! the Rust and C++ TLS destructors, which may still allocate. The
//! destructor hands the thread's table back to the registry.

use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, Ordering, compiler_fence};

use super::registry;
use super::table::ThreadTable;

/// Time-threshold checks that reuse one clock reading (see
/// [`ThreadState::seconds_for_threshold`]).
pub(crate) const CLOCK_EVERY: u32 = 1024;

const NEW: u8 = 0;
const ADOPTING: u8 = 1;
const ACTIVE: u8 = 2;
const EXITED: u8 = 3;

pub(crate) struct ThreadState {
    /// The thread's table; null before adoption, after the thread-exit
    /// fold, and during an update of its counters (see
    /// [`ThreadState::begin_update`]). Atomic (relaxed: plain moves) only
    /// because a signal handler on this thread may read it mid-update.
    table: AtomicPtr<ThreadTable>,
    phase: Cell<u8>,
    /// Site and type of the innermost tracked scope (`#[track_alloc]`),
    /// `site | type << 16`: one load on the allocation path.
    scope: Cell<u32>,
    /// A wrapper call's scope is open (`asm_wrap_enter`, the generated
    /// sites header): the outermost wrapper call owns the scope site, and
    /// call sites inside it set no one-shot site of their own.
    pub wrap_open: Cell<bool>,
    /// The frame address the open wrapper scope was entered from (a scope
    /// entered from a deeper frame than the current one was left by
    /// `longjmp`).
    pub wrap_frame: Cell<usize>,
    /// The scope site and type before the wrapper scope, restored on exit.
    pub wrap_outer_site: Cell<u16>,
    pub wrap_outer_type: Cell<u16>,
    /// A one-shot site from `mallocation_set`, for the next call only: a
    /// [`Taken`] with its `PENDING` bit set, or 0 for none (one load and
    /// one test on the allocation path, one store to clear it).
    pending: Cell<u64>,
    /// Inside the user callback: allocations are counted, callbacks are not
    /// fired again.
    pub in_callback: Cell<bool>,
    /// Whole seconds of the clock as this thread last read it, and how many
    /// more time-threshold checks may use that reading before the next read
    /// (see [`ThreadState::seconds_for_threshold`]).
    clock_secs: Cell<i64>,
    clock_budget: Cell<u32>,
    /// The LD_PRELOAD library's reentrancy guard ("the library's own work
    /// is running on this thread"), kept here so that an interposed call
    /// reaches everything per-thread through one TLS slot.
    pub library_work: Cell<bool>,
    /// Sampled stacks (`crate::stacks`): bytes left before this thread's
    /// next sampled allocation, and its generator's state (0: not started).
    /// Here rather than in thread-locals of their own so that the count-down
    /// on every allocation costs no second TLS access (in the LD_PRELOAD
    /// library a Rust `thread_local!` is a `__tls_get_addr` call).
    pub sample_left: Cell<i64>,
    pub sample_rng: Cell<u64>,
}

impl ThreadState {
    // The documented initial value; on x86-64 Linux the slot's zeroed TLS
    // image is this value (see `engine/tls.rs`, tested), so only tests and
    // other targets construct it.
    #[cfg_attr(all(target_arch = "x86_64", target_os = "linux"), allow(dead_code))]
    pub(crate) const fn new() -> ThreadState {
        ThreadState {
            table: AtomicPtr::new(std::ptr::null_mut()),
            phase: Cell::new(NEW),
            scope: Cell::new(0),
            wrap_open: Cell::new(false),
            wrap_frame: Cell::new(0),
            wrap_outer_site: Cell::new(0),
            wrap_outer_type: Cell::new(0),
            pending: Cell::new(0),
            in_callback: Cell::new(false),
            clock_secs: Cell::new(0),
            clock_budget: Cell::new(0),
            library_work: Cell::new(false),
            sample_left: Cell::new(0),
            sample_rng: Cell::new(0),
        }
    }

    /// Every field holds its zero (the state of a thread that never used
    /// the tracker: what `engine/tls.rs`'s zero-initialised slot must be).
    #[cfg(test)]
    pub(crate) fn is_pristine(&self) -> bool {
        self.table.load(Ordering::Relaxed).is_null()
            && self.phase.get() == 0
            && self.scope.get() == 0
            && !self.wrap_open.get()
            && self.wrap_frame.get() == 0
            && self.wrap_outer_site.get() == 0
            && self.wrap_outer_type.get() == 0
            && self.pending.get() == 0
            && !self.in_callback.get()
            && self.clock_secs.get() == 0
            && self.clock_budget.get() == 0
            && !self.library_work.get()
            && self.sample_left.get() == 0
            && self.sample_rng.get() == 0
    }

    /// Whole seconds now, for the time threshold's steady state: a site whose
    /// net bytes moved past the delta threshold is checked on every one of
    /// its allocations until the time threshold passes, and reading the
    /// clock each time would cost more than the allocation. The reading is
    /// reused for [`CLOCK_EVERY`] checks on this thread, so a check sees a
    /// time up to that many checks old: the threshold is never judged passed
    /// early by it (callers confirm with a fresh read before firing), and
    /// fires at most `CLOCK_EVERY` checks late. A fake test time is always
    /// current.
    #[inline]
    pub(crate) fn seconds_for_threshold(&self) -> i64 {
        let fake = crate::clock::fake_ns();
        if fake != 0 {
            return fake.div_euclid(1_000_000_000);
        }
        match self.clock_budget.get() {
            0 => self.read_clock_secs(),
            n => {
                self.clock_budget.set(n - 1);
                self.clock_secs.get()
            }
        }
    }

    /// Reads the clock now (and restarts the reuse budget); returns whole
    /// seconds.
    #[cold]
    pub(crate) fn read_clock_secs(&self) -> i64 {
        let secs = crate::clock::now_ns().div_euclid(1_000_000_000);
        self.clock_secs.set(secs);
        self.clock_budget.set(CLOCK_EVERY);
        secs
    }

    /// This thread's table, adopting one on first use. `None` while adopting
    /// (a nested allocation from inside adoption), during an update of its
    /// counters (a signal handler that interrupted it), after the
    /// thread-exit fold, or if no memory could be mapped: the caller then
    /// charges the shared retired table.
    #[inline(always)]
    pub(crate) fn table(&self) -> Option<&'static ThreadTable> {
        let t = self.table.load(Ordering::Relaxed).cast_const();
        if !t.is_null() {
            // SAFETY: `table` only holds pointers to 'static tables from the
            // registry, set below.
            return Some(unsafe { &*t });
        }
        self.adopt_slow()
    }

    /// This thread's table if it has adopted one and is not updating it,
    /// `None` otherwise (no call: the allocation path's common case; the
    /// caller takes its slow path). An update of it starts with
    /// [`ThreadState::begin_update_of`].
    #[inline(always)]
    pub(crate) fn adopted_table(&self) -> Option<&'static ThreadTable> {
        let t = self.table.load(Ordering::Relaxed);
        // SAFETY: as in `table`.
        (!t.is_null()).then(|| unsafe { &*t })
    }

    /// [`ThreadState::begin_update`] of `t`, which
    /// [`ThreadState::adopted_table`] just gave (a signal handler that ran
    /// since has put it back). Counters read before this call may be stale
    /// (a handler may have updated them): read them after it.
    #[inline(always)]
    pub(crate) fn begin_update_of(&self, t: &'static ThreadTable) -> &'static ThreadTable {
        self.table.store(std::ptr::null_mut(), Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        t
    }

    #[cold]
    #[inline(never)]
    fn adopt_slow(&self) -> Option<&'static ThreadTable> {
        if self.phase.get() != NEW {
            return None;
        }
        self.phase.set(ADOPTING);
        match registry::adopt() {
            Some(t) => {
                register_exit_hook(t);
                self.table
                    .store((t as *const ThreadTable).cast_mut(), Ordering::Relaxed);
                self.phase.set(ACTIVE);
                Some(t)
            }
            None => {
                self.phase.set(EXITED);
                None
            }
        }
    }

    /// This thread's table ([`ThreadState::table`]) for an update of its
    /// counters (plain load/store pairs), taken out of the thread's state
    /// until [`ThreadState::end_update`] puts it back. A signal handler that
    /// interrupts the update and allocates on this thread finds no table
    /// and charges the shared retired table (atomic adds) instead — rather
    /// than updating the same counters in the middle of the interrupted
    /// load/store pair, which would lose one of the two updates. Reports
    /// show sums over tables, so both stay exact.
    ///
    /// The cost on the allocation path: two stores to the thread's state
    /// (in cache already) besides the table pointer's load and test that
    /// `table` does anyway. The compiler fences (no instruction) keep the
    /// counter accesses between the two stores; a handler runs on this
    /// thread, so program order is all it observes.
    #[inline(always)]
    pub(crate) fn begin_update(&self) -> Option<&'static ThreadTable> {
        let t = self.table()?;
        self.table.store(std::ptr::null_mut(), Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        Some(t)
    }

    /// Ends the update [`ThreadState::begin_update`] started on `t`.
    #[inline(always)]
    pub(crate) fn end_update(&self, t: &'static ThreadTable) {
        compiler_fence(Ordering::SeqCst);
        self.table
            .store((t as *const ThreadTable).cast_mut(), Ordering::Relaxed);
    }

    /// The site and type the next allocation is charged to, consuming a
    /// pending one-shot set (see [`Taken`]).
    #[inline(always)]
    pub(crate) fn take_site(&self) -> Taken {
        let pending = self.pending.get();
        if pending != 0 {
            self.pending.set(0);
            Taken(pending)
        } else {
            Taken(u64::from(self.scope.get()))
        }
    }

    /// Makes (`site`, `type_id`) the site of the next allocation-family
    /// call only; `block_reported`: the set already fired the block
    /// callback for its delta.
    #[inline(always)]
    pub(crate) fn set_pending(&self, site: u16, type_id: u16, block_reported: bool) {
        self.pending
            .set(Taken::pack(site, type_id, block_reported).0 | Taken::PENDING);
    }

    /// Drops a pending one-shot site.
    #[inline(always)]
    pub(crate) fn clear_pending(&self) {
        self.pending.set(0);
    }

    /// The scope's (site, type).
    #[inline(always)]
    pub(crate) fn scope(&self) -> (u16, u16) {
        let s = self.scope.get();
        (s as u16, (s >> 16) as u16)
    }

    /// Sets the scope's site and type; returns the previous ones.
    #[inline(always)]
    pub(crate) fn replace_scope(&self, site: u16, type_id: u16) -> (u16, u16) {
        let prev = self.scope();
        self.scope.set(u32::from(site) | u32::from(type_id) << 16);
        prev
    }

    /// The current thread's id as the callback reports it.
    pub(crate) fn thread_id(&self) -> u64 {
        self.table().map_or(0, |t| {
            t.thread_id.load(std::sync::atomic::Ordering::Relaxed)
        })
    }
}

/// The site taken for an allocation ([`ThreadState::take_site`]), its
/// type and whether its block threshold was already reported, in one
/// register: `site | type << 16 | block_reported << 32` (and the
/// `PENDING` bit while it waits in the thread's state).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(transparent)]
pub struct Taken(u64);

impl Taken {
    /// Marks a pending set (so that a pending site 0 of type 0 is not
    /// "none").
    const PENDING: u64 = 1 << 33;

    #[inline(always)]
    pub(crate) fn pack(site: u16, type_id: u16, block_reported: bool) -> Taken {
        Taken(u64::from(site) | u64::from(type_id) << 16 | u64::from(block_reported) << 32)
    }

    #[inline(always)]
    pub(crate) fn site(self) -> u16 {
        self.0 as u16
    }

    #[inline(always)]
    pub(crate) fn type_id(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The block callback already fired for this allocation's pending set.
    #[inline(always)]
    pub(crate) fn block_reported(self) -> bool {
        self.0 & 1 << 32 != 0
    }
}

super::tls::initial_exec_slot!(
    fn current() -> *const ThreadState = ThreadState::new(),
    "asmalloc_thread_state_v1"
);

/// Runs `f` with the calling thread's state (one thread-local access; see
/// `engine/tls.rs`).
#[inline(always)]
pub(crate) fn with<R>(f: impl FnOnce(&ThreadState) -> R) -> R {
    let state = current();
    // SAFETY: the pointer is to this thread's own state, which has no
    // destructor and so stays valid for the whole life of the thread,
    // including its TLS destructors; the reference handed to `f` cannot leave
    // the thread (`ThreadState` is `!Sync`) and does not outlive the call.
    f(unsafe { &*state })
}

/// Told as each thread that allocated exits, after its table is folded
/// (set once: the sampled stacks' unwinder gives back the thread's cache).
static EXIT_LISTENER: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets the thread-exit listener (the first setting wins).
pub(crate) fn set_exit_listener(listener: fn()) {
    let _ = EXIT_LISTENER.set(listener);
}

/// Called from the pthread key destructor as the thread exits.
fn exit_current(table: *const ThreadTable) {
    with(|s| {
        s.table.store(std::ptr::null_mut(), Ordering::Relaxed);
        s.phase.set(EXITED);
    });
    // SAFETY: the key's value is the 'static table this thread adopted.
    registry::release(unsafe { &*table });
    if let Some(listener) = EXIT_LISTENER.get() {
        listener();
    }
}

// ---------------------------------------------------------------------------
// The thread-exit hook.

/// The pthread key whose destructor folds an exiting thread's table:
/// KEY_STATE 0 = not created, 1 = being created, 2 = ready, 3 = failed.
static KEY_STATE: AtomicU8 = AtomicU8::new(0);
static KEY: AtomicU32 = AtomicU32::new(0);

/// Repairs a pthread key that another thread was creating when the process
/// forked (the child's first new thread would spin on it).
pub(crate) fn after_fork_in_child() {
    let _ = KEY_STATE.compare_exchange(1, 0, Ordering::AcqRel, Ordering::Relaxed);
}

extern "C" fn on_thread_exit(value: *mut libc::c_void) {
    if value.is_null() {
        return;
    }
    exit_current(value.cast_const().cast::<ThreadTable>());
}

fn key() -> Option<libc::pthread_key_t> {
    loop {
        match KEY_STATE.load(Ordering::Acquire) {
            2 => return Some(KEY.load(Ordering::Relaxed)),
            3 => return None,
            0 => {
                if KEY_STATE
                    .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    let mut key: libc::pthread_key_t = 0;
                    // SAFETY: `key` is a valid out-pointer and the destructor
                    // is an extern "C" fn with the signature pthread expects.
                    let rc = unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) };
                    if rc == 0 {
                        KEY.store(key, Ordering::Relaxed);
                        KEY_STATE.store(2, Ordering::Release);
                    } else {
                        KEY_STATE.store(3, Ordering::Release);
                    }
                }
            }
            _ => std::hint::spin_loop(),
        }
    }
}

fn register_exit_hook(table: &'static ThreadTable) {
    if let Some(key) = key() {
        // SAFETY: `key` was created by pthread_key_create; the value is a
        // pointer to a 'static table, handed back to on_thread_exit.
        unsafe {
            libc::pthread_setspecific(key, table as *const ThreadTable as *const libc::c_void);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_threads_slot_reads_as_a_new_state() {
        // The loader's zero image, read through the slot on a thread that has
        // not used the tracker (this test binary's allocator is System's).
        assert!(ThreadState::new().is_pristine());
        let pristine = std::thread::spawn(|| {
            // SAFETY: this thread's own slot, alive while the thread runs.
            unsafe { &*current() }.is_pristine()
        })
        .join()
        .unwrap();
        assert!(pristine);
    }

    #[test]
    fn each_thread_has_its_own_slot() {
        let here = current() as usize;
        let there = std::thread::spawn(|| current() as usize).join().unwrap();
        assert_ne!(here, there);
        assert_eq!(here, current() as usize);
    }
}
