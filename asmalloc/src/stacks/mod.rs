//! Sampled stacks (`ASMALLOC_SAMPLE_BYTES`, `asmalloc run --stacks`): the
//! whole call path of a sample of allocations, with unbiased estimates of
//! the live bytes of each path. Both kinds of program use it: the
//! LD_PRELOAD library for C programs, and [`crate::AsmAlloc`] for Rust
//! programs, where every allocation arrives through `__rust_alloc` and
//! generic std code and a path is often the only way to name the code
//! that allocates.
//!
//! **Sampling by bytes**, as tcmalloc and jemalloc's profiler do: each
//! thread counts down the bytes it allocates from a distance drawn from an
//! exponential distribution of mean N (the setting); the allocation that
//! crosses zero is sampled and a new distance drawn. An allocation of `s`
//! bytes is then sampled with probability `1 - exp(-s/N)`, so each sample
//! stands for `s / (1 - exp(-s/N))` bytes and `1 / (1 - exp(-s/N))`
//! blocks: the sums over live samples are unbiased estimates of the live
//! bytes and blocks of each path. The cost on every other allocation is
//! one subtraction and compare on the engine's thread state.
//!
//! **A sampled block** gets its stack's id in its tag instead of its site
//! ([`table`]): its free finds the stack, takes the estimate back, and is
//! charged to the site the block was counted at (kept with the stack), so
//! sites' exact numbers are the same with sampling on or off.
//!
//! **Stacks** are captured with `framehop` over the loaded modules'
//! `.eh_frame` ([`unwind`], no allocation, no lock), deduplicated in a
//! fixed table ([`table::MAX_STACKS`] paths of up to [`table::DEPTH`]
//! frames; further paths are not sampled, and counted), and named only
//! when a report or a log line is written ([`symbols`]; the text report's
//! section is `crate::report::stacks`, the log's records [`log`]).
//!
//! Files: the sampler is here; [`table`] keeps the paths; [`modules`] and
//! [`unwind`] walk the stack (the LD_PRELOAD library's wrappers use the
//! same walk), within the bounds [`thread_stack`] finds; [`symbols`] names addresses; [`log`] lists the stacks for
//! the monitor's log.

pub(crate) mod log;
#[allow(unsafe_code)]
pub mod modules;
#[allow(unsafe_code)]
pub mod symbols;
pub mod table;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod thread_stack;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub mod unwind;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::ConfigError;

/// Mean bytes between samples (0: sampling off).
static MEAN: AtomicU64 = AtomicU64::new(0);
/// Seeds for threads' generators.
static SEED: AtomicU64 = AtomicU64::new(0x2545_f491_4f6c_dd1d);

/// Turns sampling on with a mean distance of `mean` bytes (0: off).
pub fn set_mean(mean: u64) {
    MEAN.store(mean, Ordering::Relaxed);
}

/// The mean distance between samples (0: off).
#[inline]
pub fn mean() -> u64 {
    MEAN.load(Ordering::Relaxed)
}

/// The tag id for a block of `bytes` just charged to `site`: `site`, or
/// a sampled stack's id when this allocation is sampled.
#[inline(always)]
pub fn tag_id(site: u16, bytes: usize) -> u16 {
    if MEAN.load(Ordering::Relaxed) == 0 {
        return site;
    }
    if !crate::engine::sample_count_down(bytes) {
        return site;
    }
    sample(site, bytes)
}

/// The site to charge for a block whose tag holds `id` (the stack's site
/// for a sampled block; `id` itself otherwise).
#[inline(always)]
pub fn site_of(id: u16) -> u16 {
    if table::is_stack(id) {
        table::site_of(id)
    } else {
        id
    }
}

/// A block tagged `id`, of `bytes`, is freed or re-tagged: a sampled
/// block's estimate is taken back. Returns the site to charge.
#[inline(always)]
pub fn released(id: u16, bytes: usize) -> u16 {
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
pub fn weights(bytes: usize, mean: u64) -> (u64, u64) {
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
    let mut state = crate::engine::sample_rng();
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
    let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
    // U in (0, 1]: never 0, so the logarithm is finite.
    let u = ((r >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let next = (-libm::log(u) * mean as f64).min(i64::MAX as f64 / 2.0) as i64;
    // The next point of the byte line's Poisson process, from the end of
    // this allocation: by memorylessness a fresh draw, whatever points
    // fell inside this allocation (its weight is by the chance of at
    // least one). Adding the draw to the overshoot instead would sample
    // the next allocation for certain whenever this one held two points:
    // estimates 5-9 % high on a mix of 1 KiB and 4 KiB blocks at 16 KiB.
    crate::engine::set_sample_state(state, next.max(1));
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
        unwind::capture(frames)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = frames;
        0
    }
}

/// The index of the first frame of a named path that belongs to the
/// program (see [`crate::log_format::is_runtime_function`]); 0 when every
/// frame is the runtime's (a path cut short): the whole path.
pub fn first_program_frame(path: &[crate::site::CallerName]) -> usize {
    path.iter()
        .position(|name| !crate::log_format::is_runtime_function(&name.function))
        .unwrap_or(0)
}

/// Told, on the monitor's thread, the modules loaded now, whenever the
/// list changed since the stack walk was set up (a `dlopen` or `dlclose`):
/// the LD_PRELOAD library finds the wrappers of a new module.
pub type ModulesListener = fn(&[modules::LoadedModule]);

static MODULES_LISTENER: std::sync::OnceLock<ModulesListener> = std::sync::OnceLock::new();
/// The loader's generation the stack walk was last built for (0: never).
static MODULES_SEEN: AtomicU64 = AtomicU64::new(0);

/// Notes the modules loaded now as the ones the stack walk knows, and the
/// function to tell when they change (the first one set wins).
pub fn watch_modules(listener: Option<ModulesListener>) {
    if let Some(listener) = listener {
        let _ = MODULES_LISTENER.set(listener);
    }
    MODULES_SEEN.store(modules::generation().max(1), Ordering::Relaxed);
}

/// Rebuilds the stack walk (and tells the listener) if modules were loaded
/// or unloaded since it was built; called by the monitor before each
/// sample. A call through a wrapper of a module loaded in between, or a
/// stack through its frames, is seen as before (the wrapper's line; a
/// stack cut short) until then.
pub fn refresh_modules() {
    let seen = MODULES_SEEN.load(Ordering::Relaxed);
    if seen == 0 {
        return; // no stack walk set up
    }
    let now = modules::generation().max(1);
    if now == seen {
        return;
    }
    MODULES_SEEN.store(now, Ordering::Relaxed);
    let _own = crate::engine::OwnMemory::enter();
    let loaded = modules::loaded();
    #[cfg(target_arch = "x86_64")]
    unwind::rebuild(&loaded);
    if let Some(listener) = MODULES_LISTENER.get() {
        listener(&loaded);
    }
}

/// The variable this module reads, with its accepted form.
pub const STACKS_VARS: [(&str, &str); 1] = [(
    "ASMALLOC_SAMPLE_BYTES",
    "a mean distance in bytes between sampled allocations (512K, 1M, …; 0 or off: no sampling)",
)];

/// Applies `ASMALLOC_SAMPLE_BYTES`; `Ok(false)` for another name.
pub fn apply_setting(name: &str, value: &str) -> Result<bool, ConfigError> {
    if name != STACKS_VARS[0].0 {
        return Ok(false);
    }
    let mean = match value.trim() {
        "off" | "0" => 0,
        v => crate::config::parse_size(v)?,
    };
    set_mean(mean as u64);
    Ok(true)
}

/// Sets the stack walk up for a Rust program (its global allocator is
/// [`crate::AsmAlloc`]) once sampling is on: the unwinder over the modules
/// loaded now, and the namer of reports. Called by
/// [`crate::configure_from_env`]; the LD_PRELOAD library sets up its own
/// (with its wrappers, skipping its own frames). Allocates: run it on a
/// program thread, not inside an allocation.
pub fn start_in_rust_program() {
    if mean() == 0 {
        return;
    }
    let was = crate::engine::set_library_work(true);
    #[cfg(target_arch = "x86_64")]
    {
        // The runtime is linked into the executable: no module of its own
        // to skip (its few frames are left out when the path is named).
        unwind::init(&modules::loaded(), 0..0);
        crate::engine::set_thread_exit_listener(unwind::thread_ended);
        watch_modules(None);
    }
    crate::site::set_namer(symbols::name_caller);
    crate::engine::set_library_work(was);
}
