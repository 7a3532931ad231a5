//! Holding the monitor's lock across `fork`, with no thread-local.
//!
//! The `pthread_atfork` prepare handler takes the monitor's lock and the
//! parent and child handlers release it, so the child never inherits the
//! lock held by a thread it does not have (the sampling thread). Between
//! the handlers the guard must live somewhere. It used to live in a
//! `thread_local!` holding an `Option<MutexGuard>`: a type with drop glue,
//! so the first fork registered a TLS destructor (`__cxa_thread_atexit_impl`,
//! which allocates, from inside the prepare handler), and a thread that
//! forks during its own TLS teardown would find the slot gone.
//!
//! Here the guard lives in a `static` slot instead: statics have no
//! destructor and need no registration. The slot needs no lock of its own,
//! because the lock it holds the guard of is that lock: only the thread
//! that holds the monitor's lock writes or reads it, from [`hold`] (just
//! after taking the lock) to [`release`] (which drops the guard). A flag
//! says whether a guard is there, so a `release` without a `hold` does
//! nothing.
//!
//! [`hold`]: HeldAcrossFork::hold
//! [`release`]: HeldAcrossFork::release

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A place for one `MutexGuard` of a `'static` mutex, kept from the fork
/// prepare handler to the parent or child handler.
pub(super) struct HeldAcrossFork<T: 'static> {
    guard: UnsafeCell<Option<MutexGuard<'static, T>>>,
    /// A guard is in `guard` (set by the holder of the lock, after storing
    /// it; cleared by the holder, before taking it out).
    held: AtomicBool,
}

// SAFETY: the slot is only accessed by the thread holding the mutex whose
// guard it stores (see the module docs), so accesses never overlap; the
// guard is taken out and dropped by that same thread (the one that forked:
// the parent and child handlers run on it), so it never changes threads.
unsafe impl<T: Send> Sync for HeldAcrossFork<T> {}

impl<T> HeldAcrossFork<T> {
    /// An empty slot.
    pub(super) const fn new() -> Self {
        HeldAcrossFork {
            guard: UnsafeCell::new(None),
            held: AtomicBool::new(false),
        }
    }

    /// Takes `lock` (waiting for it, ignoring poison) and keeps it held
    /// until [`Self::release`]. For the fork prepare handler.
    pub(super) fn hold(&self, lock: &'static Mutex<T>) {
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: this thread holds `lock`, so no other thread is between
        // `hold` and `release`: nobody else reads or writes the slot.
        unsafe { *self.guard.get() = Some(guard) };
        self.held.store(true, Ordering::Release);
    }

    /// Releases the lock [`Self::hold`] took on this thread; nothing if
    /// there is none. For the fork parent and child handlers (the child's
    /// one thread is the one that forked).
    pub(super) fn release(&self) {
        if !self.held.swap(false, Ordering::Acquire) {
            return;
        }
        // SAFETY: `held` was set by `hold` on the thread that forked — this
        // one, since only the fork handlers call `release` and they run on
        // the forking thread — which still holds the lock; the slot is ours
        // until the guard is dropped.
        let guard = unsafe { (*self.guard.get()).take() };
        drop(guard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static LOCK: Mutex<u32> = Mutex::new(0);
    static HELD: HeldAcrossFork<u32> = HeldAcrossFork::new();

    #[test]
    fn holds_until_released_and_a_second_release_does_nothing() {
        HELD.hold(&LOCK);
        assert!(LOCK.try_lock().is_err(), "held between hold and release");
        HELD.release();
        *LOCK.try_lock().expect("released") += 1;
        HELD.release();
        assert_eq!(*LOCK.lock().unwrap(), 1);
    }

    #[test]
    fn a_forked_child_gets_the_lock_free() {
        // The lock is held by the forking thread across fork, released on
        // both sides; the child can take it.
        static FORK_LOCK: Mutex<u32> = Mutex::new(7);
        static FORK_HELD: HeldAcrossFork<u32> = HeldAcrossFork::new();
        FORK_HELD.hold(&FORK_LOCK);
        // SAFETY: fork in a test; the child only touches the lock and
        // calls _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        FORK_HELD.release();
        if pid == 0 {
            let ok = FORK_LOCK.try_lock().map(|v| *v == 7).unwrap_or(false);
            // SAFETY: leaving the child without running the harness.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status:#x}"
        );
        assert_eq!(*FORK_LOCK.try_lock().expect("released in the parent"), 7);
    }
}
