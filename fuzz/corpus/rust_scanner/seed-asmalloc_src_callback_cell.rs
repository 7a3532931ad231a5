//! A C callback (function pointer + user data) that any thread may set and
//! the allocation path may read without a lock.
//!
//! The pair is published as one pointer, so a reader never sees the new
//! function with the old user data. Each `set` leaks its small pair (16
//! bytes): callbacks are set a handful of times in a process's life, and a
//! reader on another thread may still be using the previous pair.

use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Holds an optional function pointer of type `F` and a `void *` for it.
pub(crate) struct CallbackCell<F: Copy + 'static> {
    pair: AtomicPtr<(F, usize)>,
}

impl<F: Copy + 'static> CallbackCell<F> {
    pub(crate) const fn new() -> Self {
        CallbackCell {
            pair: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Sets (or with `None` clears) the callback and its user data.
    pub(crate) fn set(&self, f: Option<F>, user_data: *mut c_void) {
        let pair = f.map_or(std::ptr::null_mut(), |f| {
            Box::into_raw(Box::new((f, user_data as usize)))
        });
        self.pair.store(pair, Ordering::Release);
    }

    /// The callback and its user data, if one is set.
    #[inline]
    pub(crate) fn get(&self) -> Option<(F, *mut c_void)> {
        let pair = self.pair.load(Ordering::Acquire);
        // SAFETY: `pair` is null or came from Box::into_raw in `set` and is
        // never freed, so it points to a live, initialised pair.
        let &(f, data) = unsafe { pair.as_ref() }?;
        Some((f, data as *mut c_void))
    }
}
