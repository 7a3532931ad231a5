//! The highest net bytes each site reached as the leak monitor saw it.
//!
//! A program that frees everything before it exits leaves an exit report
//! whose net columns are all zero; what its sites held at their highest is
//! what a reader wants then (heaptrack's per-site "peak"). Keeping an exact
//! peak would mean a compare on every allocation; instead the monitor, at
//! each sample (off the allocation path), raises each site's entry to the
//! net bytes it sees. The peak is therefore a lower bound on the true one,
//! exact when the program holds its peak for longer than the sampling
//! interval.
//!
//! The store is a fixed array indexed by site id (site ids are `u16`), in
//! the library's static memory: nothing is allocated, no lock is taken, and
//! a report may read it while a sample writes it. Only the monitor writes
//! it; [`sampled`] says whether it ever did (a report without a running
//! monitor shows no peak column).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Peak net bytes by site id (0 until a sample saw more).
static PEAKS: [AtomicI64; 1 << 16] = [const { AtomicI64::new(0) }; 1 << 16];
/// A monitor sample has been recorded.
static SAMPLED: AtomicBool = AtomicBool::new(false);

/// Raises each site's peak to the net bytes of this sample.
pub fn record(sites: impl IntoIterator<Item = (u16, i64)>) {
    for (id, net_bytes) in sites {
        PEAKS[usize::from(id)].fetch_max(net_bytes, Ordering::Relaxed);
    }
    SAMPLED.store(true, Ordering::Relaxed);
}

/// Whether the monitor has sampled in this process (peaks are known).
pub fn sampled() -> bool {
    SAMPLED.load(Ordering::Relaxed)
}

/// The highest net bytes a monitor sample saw at site `id` (0 if none saw
/// any live bytes there).
pub fn peak(id: u16) -> i64 {
    PEAKS[usize::from(id)].load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_only_rise() {
        // Site ids no other test of this crate uses.
        record([(65_000, 100), (65_001, 5)]);
        record([(65_000, 40), (65_001, 7)]);
        record([(65_000, -3)]);
        assert!(sampled());
        assert_eq!(peak(65_000), 100);
        assert_eq!(peak(65_001), 7);
        assert_eq!(peak(65_002), 0);
    }
}
