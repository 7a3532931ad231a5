//! Sampled stacks (`ASMALLOC_SAMPLE_BYTES`, `asmalloc run --stacks`): the
//! whole call path of a sample of allocations, with unbiased estimates of
//! the live bytes of each path.
//!
//! **Sampling by bytes**, as tcmalloc and jemalloc's profiler do: each
//! thread counts down the bytes it allocates from a distance drawn from an
//! exponential distribution of mean N (the setting); the allocation that
//! crosses zero is sampled and a new distance drawn. An allocation of `s`
//! bytes is then sampled with probability `1 - exp(-s/N)`, so each sample
//! stands for `s / (1 - exp(-s/N))` bytes and `1 / (1 - exp(-s/N))`
//! blocks: the sums over live samples are unbiased estimates of the live
//! bytes and blocks of each path. The cost on every other allocation is
//! one thread-local subtraction and compare.
//!
//! **A sampled block** gets its stack's id in its tag instead of its site
//! ([`table`]): its free finds the stack, takes the estimate back, and is
//! charged to the site the block was counted at (kept with the stack), so
//! sites' exact numbers are the same with sampling on or off.
//!
//! **Stacks** are captured with the wrappers' unwinder (`framehop` over the
//! modules' `.eh_frame`, no allocation, no lock), deduplicated in a fixed
//! table ([`table::MAX_STACKS`] paths of up to [`table::DEPTH`] frames;
//! further paths are not sampled, and counted), and named only when a
//! report is written.

pub(crate) mod report;
pub(crate) mod table;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Mean bytes between samples (0: sampling off).
static MEAN: AtomicU64 = AtomicU64::new(0);
/// Seeds for threads' generators.
static SEED: AtomicU64 = AtomicU64::new(0x2545_f491_4f6c_dd1d);

thread_local! {
    /// Bytes left before this thread's next sample.
    static LEFT: Cell<i64> = const { Cell::new(0) };
    /// This thread's generator state (0: not started).
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// Turns sampling on with a mean distance of `mean` bytes (0: off).
pub(crate) fn set_mean(mean: u64) {
    MEAN.store(mean, Ordering::Relaxed);
}

/// The mean distance between samples (0: off).
pub(crate) fn mean() -> u64 {
    MEAN.load(Ordering::Relaxed)
}

/// The tag id for a block of `bytes` just charged to `site`: `site`, or
/// a sampled stack's id when this allocation is sampled.
#[inline(always)]
pub(crate) fn tag_id(site: u16, bytes: usize) -> u16 {
    if MEAN.load(Ordering::Relaxed) == 0 {
        return site;
    }
    let left = LEFT.get().wrapping_sub(bytes as i64);
    LEFT.set(left);
    if left > 0 {
        return site;
    }
    sample(site, bytes)
}

/// The site to charge for a block whose tag holds `id` (the stack's site
/// for a sampled block; `id` itself otherwise).
#[inline(always)]
pub(crate) fn site_of(id: u16) -> u16 {
    if table::is_stack(id) {
        table::site_of(id)
    } else {
        id
    }
}

/// A block tagged `id`, of `bytes`, is freed or re-tagged: a sampled
/// block's estimate is taken back. Returns the site to charge.
#[inline(always)]
pub(crate) fn released(id: u16, bytes: usize) -> u16 {
    if table::is_stack(id) {
        released_sample(id, bytes)
    } else {
        id
    }
}

#[cold]
#[inline(never)]
fn released_sample(id: u16, bytes: usize) -> u16 {
    let (w_bytes, w_blocks) = weights(bytes, MEAN.load(Ordering::Relaxed));
    table::remove_estimate(id, w_bytes, w_blocks);
    table::site_of(id)
}

/// What one sample of `bytes` stands for: (bytes, blocks), in 1/1024ths
/// of a block so counts stay integers.
pub(crate) fn weights(bytes: usize, mean: u64) -> (u64, u64) {
    if mean == 0 {
        return (bytes as u64, 1024);
    }
    let p = 1.0 - libm::exp(-(bytes as f64) / mean as f64);
    if p <= 0.0 {
        return (bytes as u64, 1024);
    }
    ((bytes as f64 / p) as u64, (1024.0 / p) as u64)
}

#[cold]
#[inline(never)]
fn sample(site: u16, bytes: usize) -> u16 {
    let mean = MEAN.load(Ordering::Relaxed);
    let mut state = RNG.get();
    let first = state == 0;
    if first {
        // A per-thread seed: a global sequence mixed with where this
        // thread's locals live.
        let local = 0u8;
        state = SEED
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(&local as *const u8 as u64)
            | 1;
    }
    // xorshift64*
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    RNG.set(state);
    let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
    // U in (0, 1]: never 0, so the logarithm is finite.
    let u = ((r >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let next = (-libm::log(u) * mean as f64).min(i64::MAX as f64 / 2.0) as i64;
    let left = LEFT.get();
    LEFT.set(left.saturating_add(next.max(1)));
    if first {
        // A thread's first count-down starts here, not at 0.
        return site;
    }
    let mut frames = [0usize; table::DEPTH];
    let depth = capture(&mut frames);
    if depth == 0 {
        return site;
    }
    match table::intern(site, &frames[..depth]) {
        Some(id) => {
            let (w_bytes, w_blocks) = weights(bytes, mean);
            table::add_estimate(id, w_bytes, w_blocks);
            id
        }
        None => site,
    }
}

fn capture(frames: &mut [usize]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        crate::wrappers::capture(frames)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = frames;
        0
    }
}
