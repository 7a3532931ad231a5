//! Overhead of tracking: a multi-threaded allocation churn run on the raw
//! allocator and on `AsmAlloc` around it, alternating, in one process; prints
//! the median times and their ratio.
//!
//! `cargo bench -p asmalloc --bench churn` (add `--features jemalloc` for
//! the jemalloc pair). Knobs: `CHURN_THREADS` (4), `CHURN_OPS` (per thread,
//! 2,000,000), `CHURN_ROUNDS` (7); `ASMALLOC_SAMPLE_INTERVAL=1s` measures
//! with the leak monitor sampling every second.

use std::alloc::{GlobalAlloc, Layout, System};
use std::time::{Duration, Instant};

use asmalloc::AsmAlloc;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One thread's churn: a ring of live blocks; each step frees the oldest and
/// allocates a new one of a random, mostly small size. With `use_memory`,
/// the step also does what a program does with memory it allocates: fills
/// the new block and reads back part of another one. Without, it is the
/// allocator alone (the worst case for any tracker).
fn churn<A: GlobalAlloc>(alloc: &A, ops: usize, seed: u64, site: u16, use_memory: bool) -> u64 {
    let _site = asmalloc::enter_scope(site, 1);
    const RING: usize = 512;
    let mut ring: [(*mut u8, usize); RING] = [(std::ptr::null_mut(), 0); RING];
    let mut x = seed | 1;
    let mut sum = 0u64;
    for i in 0..ops {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = match x % 16 {
            0 => 1024 + (x >> 8) as usize % 8192,
            1..=4 => 128 + (x >> 8) as usize % 896,
            _ => 8 + (x >> 8) as usize % 120,
        };
        let slot = &mut ring[i % RING];
        if !slot.0.is_null() {
            // SAFETY: allocated below by the same allocator with this size.
            unsafe { alloc.dealloc(slot.0, Layout::from_size_align_unchecked(slot.1, 8)) };
        }
        // SAFETY: size is non-zero and the alignment a power of two.
        let p = unsafe { alloc.alloc(Layout::from_size_align_unchecked(size, 8)) };
        assert!(!p.is_null());
        // SAFETY: the block is `size` bytes long.
        unsafe {
            if use_memory {
                p.write_bytes(i as u8, size);
            } else {
                p.write(i as u8);
                p.add(size - 1).write(i as u8);
            }
        }
        *slot = (p, size);
        if use_memory {
            let (q, len) = ring[(i + RING / 2) % RING];
            if !q.is_null() {
                // SAFETY: a live block of `len` initialised bytes.
                let bytes = unsafe { std::slice::from_raw_parts(q, len.min(64)) };
                sum = bytes
                    .iter()
                    .fold(sum, |a, &b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
            }
        }
    }
    for (p, size) in ring {
        if !p.is_null() {
            // SAFETY: as above.
            unsafe { alloc.dealloc(p, Layout::from_size_align_unchecked(size, 8)) };
        }
    }
    sum
}

fn run<A: GlobalAlloc + Sync>(alloc: &A, threads: usize, ops: usize, use_memory: bool) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                std::hint::black_box(churn(
                    alloc,
                    ops,
                    0x9e37_79b9 + t as u64,
                    1 + t as u16,
                    use_memory,
                ))
            });
        }
    });
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn compare<R: GlobalAlloc + Sync, T: GlobalAlloc + Sync>(
    name: &str,
    raw: &R,
    tracked: &T,
    use_memory: bool,
) {
    let threads = env_or("CHURN_THREADS", 4);
    let ops = env_or("CHURN_OPS", 2_000_000);
    let rounds = env_or("CHURN_ROUNDS", 7);
    run(raw, threads, ops / 10, use_memory);
    run(tracked, threads, ops / 10, use_memory);
    let (mut r, mut t) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        r.push(run(raw, threads, ops, use_memory));
        t.push(run(tracked, threads, ops, use_memory));
    }
    let name = format!(
        "{name} ({})",
        if use_memory {
            "program-like: fill and read blocks"
        } else {
            "allocator only"
        }
    );
    let (r, t) = (median(r), median(t));
    let total = (threads * ops * 2) as f64;
    println!(
        "churn {name}: {threads} threads x {ops} alloc+free, median of {rounds}: raw {:.1} ms ({:.1} ns/op), asmalloc {:.1} ms ({:.1} ns/op), ratio {:.3}x",
        r.as_secs_f64() * 1e3,
        r.as_secs_f64() * 1e9 / total,
        t.as_secs_f64() * 1e3,
        t.as_secs_f64() * 1e9 / total,
        t.as_secs_f64() / r.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either: run a short smoke version under test.
    if std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench") {
        run(&AsmAlloc::system(), 2, 10_000, true);
        println!("churn: smoke run ok (use `cargo bench` for numbers)");
        return;
    }
    // ASMALLOC_* settings apply, e.g. ASMALLOC_SAMPLE_INTERVAL=1s runs the
    // leak monitor's sampling thread during the measurement.
    asmalloc::configure_from_env();
    println!(
        "asmalloc churn benchmark (features {}, per-site tracking on, leak monitor {})",
        asmalloc::features(),
        if asmalloc::__private::monitor::installed() {
            "on"
        } else {
            "off"
        }
    );
    for use_memory in [true, false] {
        compare("system", &System, &AsmAlloc::system(), use_memory);
        #[cfg(feature = "jemalloc")]
        compare(
            "jemalloc",
            &tikv_jemallocator::Jemalloc,
            &AsmAlloc::jemalloc(),
            use_memory,
        );
    }
}
