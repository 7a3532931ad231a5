//! The registry of thread tables, thread ids, and the thread-exit fold.
//!
//! Tables are pushed onto a lock-free list once and never removed: a table
//! whose owner exited has its counters folded into the shared *retired* table
//! and is then adopted by the next new thread, so memory stays bounded by the
//! peak number of live threads and nothing counted is ever lost, however
//! many short-lived threads come and go.
//!
//! The registry knows nothing of the calling thread: `engine::thread`
//! adopts a table from here and hands it back ([`release`]) when its thread
//! exits.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use super::table::ThreadTable;
use crate::sys;

static HEAD: AtomicPtr<ThreadTable> = AtomicPtr::new(std::ptr::null_mut());
static RETIRED: AtomicPtr<ThreadTable> = AtomicPtr::new(std::ptr::null_mut());

/// Next id for a created thread; the initial thread is 0, as in the original.
static NEXT_THREAD_ID: AtomicU64 = AtomicU64::new(1);
/// Threads that have adopted a table (ever) and that have released one.
static THREADS_STARTED: AtomicU64 = AtomicU64::new(0);
static THREADS_EXITED: AtomicU64 = AtomicU64::new(0);

/// Iterates every table ever registered (live or waiting for adoption).
pub(crate) fn tables() -> impl Iterator<Item = &'static ThreadTable> {
    let mut cur = HEAD.load(Ordering::Acquire);
    std::iter::from_fn(move || {
        // SAFETY: the list only holds pointers to tables made by
        // ThreadTable::create, which are 'static and never freed; `next` is
        // published with Release before the table is linked.
        let table = unsafe { cur.as_ref() }?;
        cur = table.next.load(Ordering::Acquire);
        Some(table)
    })
}

/// The shared table holding the counters of exited threads and of
/// allocations made while a thread has no table of its own.
pub(crate) fn retired() -> Option<&'static ThreadTable> {
    let cur = RETIRED.load(Ordering::Acquire);
    // SAFETY: RETIRED holds null or a 'static table from ThreadTable::create.
    if let Some(t) = unsafe { cur.as_ref() } {
        return Some(t);
    }
    let fresh = ThreadTable::create()? as *const ThreadTable as *mut ThreadTable;
    match RETIRED.compare_exchange(
        std::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: we just published our own 'static table.
        Ok(_) => Some(unsafe { &*fresh }),
        // Another thread won; our mapping is left unused (a one-time,
        // bounded waste of address space, never of touched memory).
        // SAFETY: as for `cur` above.
        Err(winner) => unsafe { winner.as_ref() },
    }
}

/// Finds a free table (or makes one), marks it in use and gives it a thread
/// id. Returns `None` when no memory can be had; the caller then charges
/// the retired table.
pub(crate) fn adopt() -> Option<&'static ThreadTable> {
    // The retired table is made with the first thread table, not when it is
    // first needed: a thread that finds no memory for a table of its own
    // (the address space used up, `RLIMIT_AS`) charges the retired table,
    // and if that could not be made then either its counts would be lost.
    let _ = retired();
    let table = tables()
        .find(|t| {
            !t.in_use.load(Ordering::Relaxed)
                && t.in_use
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
        })
        .or_else(push_new)?;
    let id = if sys::is_main_thread() {
        0
    } else {
        NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed)
    };
    table.thread_id.store(id, Ordering::Relaxed);
    THREADS_STARTED.fetch_add(1, Ordering::Relaxed);
    Some(table)
}

fn push_new() -> Option<&'static ThreadTable> {
    let table = ThreadTable::create()?;
    table.in_use.store(true, Ordering::Relaxed);
    let ptr = table as *const ThreadTable as *mut ThreadTable;
    let mut head = HEAD.load(Ordering::Acquire);
    loop {
        table.next.store(head, Ordering::Release);
        match HEAD.compare_exchange_weak(head, ptr, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(table),
            Err(now) => head = now,
        }
    }
}

/// Folds started and finished. A snapshot is consistent when no fold
/// started while it read and none was running when it began (a seqlock
/// with many writers; see `Snapshot::take`). Folds are rare — one per
/// thread exit — so readers seldom retry.
static FOLDS_STARTED: AtomicU64 = AtomicU64::new(0);
static FOLDS_FINISHED: AtomicU64 = AtomicU64::new(0);

/// Held by every fold, and by a reader that the seqlock turned away too
/// often (threads exiting in a burst): then the reader waits for the folds
/// under way and keeps new ones out while it reads, instead of returning a
/// read that may count an exiting thread twice or not at all. A spin lock
/// (yielding), so a forked child can release one held by a thread that does
/// not exist there.
static FOLD_LOCK: AtomicBool = AtomicBool::new(false);

fn lock_folds() {
    while FOLD_LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
}

fn unlock_folds() {
    FOLD_LOCK.store(false, Ordering::Release);
}

/// Tries of the lock-free read before a reader takes [`FOLD_LOCK`].
const OPTIMISTIC_READS: usize = 64;

/// Reads `read` at a moment when no exiting thread is moving its counters
/// into the retired table, so nothing is counted twice or missed: first
/// optimistically (a seqlock, retried while folds interfere), then, if
/// folds keep interfering, holding the fold lock.
pub(crate) fn read_consistently<R>(mut read: impl FnMut() -> R) -> R {
    for _ in 0..OPTIMISTIC_READS {
        let started = FOLDS_STARTED.load(Ordering::Acquire);
        if FOLDS_FINISHED.load(Ordering::Acquire) != started {
            std::thread::yield_now();
            continue;
        }
        let value = read();
        std::sync::atomic::fence(Ordering::Acquire);
        if FOLDS_STARTED.load(Ordering::Relaxed) == started {
            return value;
        }
    }
    // Every fold runs under the lock, so once we hold it none is running
    // and none can start.
    lock_folds();
    let value = read();
    unlock_folds();
    value
}

/// Repairs what a `fork` taken at the wrong moment leaves behind in the
/// child, where only the forking thread survives: a fold another thread had
/// begun (which would make every snapshot retry forever, then wait on the
/// fold lock).
pub(crate) fn after_fork_in_child() {
    FOLDS_FINISHED.store(FOLDS_STARTED.load(Ordering::Relaxed), Ordering::Release);
    unlock_folds();
}

/// Folds an exiting thread's counters into the retired table and frees its
/// table for adoption.
pub(crate) fn release(table: &'static ThreadTable) {
    if let Some(retired) = retired() {
        lock_folds();
        FOLDS_STARTED.fetch_add(1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        table.fold_into(retired);
        FOLDS_FINISHED.fetch_add(1, Ordering::Release);
        unlock_folds();
    }
    THREADS_EXITED.fetch_add(1, Ordering::Relaxed);
    table.in_use.store(false, Ordering::Release);
}

/// (live, total) threads that have used the tracker.
pub(crate) fn thread_counts() -> (u64, u64) {
    let started = THREADS_STARTED.load(Ordering::Relaxed);
    let exited = THREADS_EXITED.load(Ordering::Relaxed);
    (started.saturating_sub(exited), started)
}
