//! A C callback (function pointer + user data) that any thread may set and
//! the allocation path may read without a lock.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Holds an optional function pointer of type `F` and a `void *` for it.
pub(crate) struct CallbackCell<F: Copy> {
    f: AtomicUsize,
    data: AtomicUsize,
    _f: PhantomData<F>,
}

impl<F: Copy> CallbackCell<F> {
    const FITS: () = assert!(std::mem::size_of::<F>() == std::mem::size_of::<usize>());

    pub(crate) const fn new() -> Self {
        let () = Self::FITS;
        CallbackCell {
            f: AtomicUsize::new(0),
            data: AtomicUsize::new(0),
            _f: PhantomData,
        }
    }

    /// Sets (or with `None` clears) the callback and its user data.
    pub(crate) fn set(&self, f: Option<F>, user_data: *mut c_void) {
        self.data.store(user_data as usize, Ordering::Relaxed);
        // SAFETY: F is a function pointer type (callers only instantiate
        // the cell with `extern "C" fn` types), pointer-sized (checked at
        // compile time), so its bits are a valid usize.
        let raw = f.map_or(0, |f| unsafe { std::mem::transmute_copy::<F, usize>(&f) });
        self.f.store(raw, Ordering::Release);
    }

    /// The callback and its user data, if one is set.
    #[inline]
    pub(crate) fn get(&self) -> Option<(F, *mut c_void)> {
        let raw = self.f.load(Ordering::Acquire);
        if raw == 0 {
            return None;
        }
        // SAFETY: a non-zero `raw` was produced by `set` from a value of
        // type F, so transmuting it back yields that same function pointer.
        let f = unsafe { std::mem::transmute_copy::<usize, F>(&raw) };
        Some((f, self.data.load(Ordering::Relaxed) as *mut c_void))
    }
}
