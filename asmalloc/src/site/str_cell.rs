//! A `&'static str` that can be published from one thread and read from
//! any other, without a lock or an allocation: for names stored in fixed
//! static arrays (dynamic sites, caller sites).

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// A `&'static str` in two atomics, readable from any thread once published.
pub(super) struct StrCell {
    ptr: AtomicPtr<u8>,
    len: AtomicUsize,
}

impl StrCell {
    pub(super) const fn new() -> StrCell {
        StrCell {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            len: AtomicUsize::new(0),
        }
    }

    pub(super) fn set(&self, s: &'static str) {
        self.len.store(s.len(), Ordering::Relaxed);
        self.ptr.store(s.as_ptr().cast_mut(), Ordering::Release);
    }

    pub(super) fn get(&self) -> &'static str {
        let p = self.ptr.load(Ordering::Acquire);
        if p.is_null() {
            return "";
        }
        // SAFETY: `ptr` and `len` were stored together by `set` from a
        // `&'static str` (len first, then ptr with Release, read here with
        // Acquire), so they describe that string, valid forever.
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                p,
                self.len.load(Ordering::Relaxed),
            ))
        }
    }
}
