//! The per-thread reentrancy guard.
//!
//! While a thread holds it, every interposed call forwards straight to the
//! real function and touches neither the engine nor the block's tag: this
//! is how `dlsym` (which may `calloc`) is called during the bootstrap, and
//! how the library's own Rust code (reports, the reporter thread, table
//! registration) allocates without being counted as the program's.
//!
//! The flag is a field of the engine's per-thread state (one
//! initial-exec TLS slot, see the runtime's `engine/tls.rs`): no lazy
//! initialisation, no destructor registration (which would itself
//! allocate), readable during every thread-exit destructor, and no second
//! thread-local access on the allocation path.

use std::marker::PhantomData;

use rt::__private::engine::{library_work, set_library_work};

/// True when the calling thread holds the guard.
#[inline(always)]
pub(crate) fn held() -> bool {
    library_work()
}

/// Holding the guard; dropping it releases it. Not `Send`: it belongs to
/// the thread that took it.
#[must_use = "the guard is released when dropped"]
pub(crate) struct Guard {
    _thread_bound: PhantomData<*const ()>,
}

impl Guard {
    /// Takes the guard, or `None` if this thread holds it already (the
    /// outer holder releases it).
    #[inline]
    pub(crate) fn enter() -> Option<Guard> {
        if set_library_work(true) {
            None
        } else {
            Some(Guard {
                _thread_bound: PhantomData,
            })
        }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        set_library_work(false);
    }
}

/// Holds the guard for the rest of the calling thread's life: for threads
/// the library starts itself (the periodic reporter).
pub(crate) fn hold_forever() {
    set_library_work(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_enter_is_refused_and_release_restores() {
        assert!(!held());
        let g = Guard::enter().expect("first");
        assert!(held());
        assert!(Guard::enter().is_none());
        assert!(held(), "a refused nested enter must not release");
        drop(g);
        assert!(!held());
    }
}
