//! Wall-clock time for thresholds and reports, with an override for tests.
//!
//! The original compares whole seconds of `CLOCK_REALTIME` for its time
//! threshold; so do we. We read `CLOCK_REALTIME_COARSE`: a few nanoseconds
//! from the vDSO instead of a few tens, at the kernel tick's resolution
//! (1–4 ms), which is far finer than whole-second thresholds, "time of the
//! last set" records, or monitor samples need. Tests set a fake time with
//! [`set_test_time`] instead of sleeping for the 60-second default.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::sys;

/// 0 = use the real clock; anything else is the fake "now" in nanoseconds.
static FAKE_NOW_NS: AtomicI64 = AtomicI64::new(0);

/// Nanoseconds since the Unix epoch (or the fake time, when one is set).
#[inline]
pub fn now_ns() -> i64 {
    match FAKE_NOW_NS.load(Ordering::Relaxed) {
        0 => sys::clock_ns(libc::CLOCK_REALTIME_COARSE),
        fake => fake,
    }
}

/// Nanoseconds of the monotonic clock (or the fake time, when one is set):
/// for measuring intervals, which a wall-clock step (NTP, an operator) must
/// not stretch, shrink or stall. Not comparable across processes.
pub fn monotonic_ns() -> i64 {
    match FAKE_NOW_NS.load(Ordering::Relaxed) {
        0 => sys::clock_ns(libc::CLOCK_MONOTONIC_COARSE),
        fake => fake,
    }
}

/// The fake time set by [`set_test_time`], or 0 for none: one relaxed load.
#[inline(always)]
pub(crate) fn fake_ns() -> i64 {
    FAKE_NOW_NS.load(Ordering::Relaxed)
}

/// Makes [`now_ns`] return `ns` from now on (`None` restores the real clock).
/// For tests of the time threshold; affects the whole process.
pub fn set_test_time(ns: Option<i64>) {
    FAKE_NOW_NS.store(ns.unwrap_or(0).max(0), Ordering::Relaxed);
}

/// Splits nanoseconds into a `timespec`.
pub fn to_timespec(ns: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: ns.div_euclid(1_000_000_000),
        tv_nsec: ns.rem_euclid(1_000_000_000),
    }
}
