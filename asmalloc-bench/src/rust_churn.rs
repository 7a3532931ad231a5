//! Workload (c): Rust allocation churn through the global allocator, shared
//! by the four `rust_churn_*` binaries (raw `System`, `AsmAlloc<System>`, and
//! in `rust-jemalloc/` raw `Jemalloc` and `AsmAlloc<Jemalloc>`), which differ
//! only in their `#[global_allocator]`.
//!
//! `rust_churn_* THREADS OPS MODE`: each thread keeps a ring of 512 live
//! blocks and replaces the oldest OPS times, sizes 8 B–9 KiB (11/16 ≤ 128 B,
//! 4/16 ≤ 1 KiB, 1/16 larger). MODE `alloc`: the new block gets its first
//! and last byte written (the allocator alone: the worst case for any
//! tracker). MODE `prog`: program-like, some work per allocation — the new
//! block is filled and 64 bytes of another live block are hashed. Prints a
//! checksum (identical for every allocator).

use std::alloc::{Layout, alloc, dealloc};

const RING: usize = 512;

/// One thread's churn; `scope` is entered for the thread's lifetime (the
/// tracked binaries charge each thread's blocks to a site of its own).
fn churn<S>(ops: usize, seed: u64, use_memory: bool, scope: S) -> u64 {
    let _scope = scope;
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
            // SAFETY: allocated below through the global allocator with this
            // size and alignment.
            unsafe { dealloc(slot.0, Layout::from_size_align_unchecked(slot.1, 8)) };
        }
        // SAFETY: size is non-zero and the alignment a power of two.
        let p = unsafe { alloc(Layout::from_size_align_unchecked(size, 8)) };
        assert!(!p.is_null(), "allocation failed");
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
        } else {
            // SAFETY: the first byte was written above.
            sum = sum.wrapping_add(u64::from(unsafe { p.read() }));
        }
    }
    for (p, size) in ring {
        if !p.is_null() {
            // SAFETY: as above.
            unsafe { dealloc(p, Layout::from_size_align_unchecked(size, 8)) };
        }
    }
    sum
}

/// Parses `THREADS OPS MODE`, runs the churn on THREADS threads (thread `t`
/// calls `scope(t + 1)` first) and prints the checksum.
pub fn main_with<S, F>(name: &str, scope: F)
where
    F: Fn(u16) -> S + Sync,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: {name} THREADS OPS_PER_THREAD alloc|prog");
        std::process::exit(2)
    };
    if args.len() != 3 {
        usage();
    }
    let threads: usize = args[0].parse().unwrap_or_else(|_| usage());
    let ops: usize = args[1].parse().unwrap_or_else(|_| usage());
    let use_memory = match args[2].as_str() {
        "alloc" => false,
        "prog" => true,
        _ => usage(),
    };
    let scope = &scope;
    let total = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || churn(ops, 0x9e37_79b9 + t as u64, use_memory, scope(1 + t as u16)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("churn thread"))
            .fold(0u64, u64::wrapping_add)
    });
    println!("rust churn {threads} x {ops} {}: checksum {total}", args[2]);
}
