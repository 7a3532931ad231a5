//! Per-call cost of `#[track_alloc]`: an empty tracked function vs the same
//! untracked, and a tracked function that allocates vs untracked, printed as
//! nanoseconds per call and ratios. `cargo bench -p asmalloc-tests`.

use std::time::Instant;

use asmalloc_tests::*;

#[global_allocator]
static GLOBAL: asmalloc::AsmAlloc = asmalloc::AsmAlloc::system();

fn time(f: impl Fn(u64) -> u64, n: u64) -> f64 {
    let start = Instant::now();
    let mut acc = 0u64;
    for i in 0..n {
        acc = acc.wrapping_add(f(i));
    }
    std::hint::black_box(acc);
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    register();
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench { 20_000_000 } else { 10_000 };
    let rounds = if bench { 7 } else { 1 };
    let (mut t, mut u, mut ta, mut ua) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        u.push(time(untracked_nothing, n));
        t.push(time(tracked_nothing, n));
        ua.push(time(
            |i| untracked_alloc(16 + (i as usize & 63)) as u64,
            n / 4,
        ));
        ta.push(time(
            |i| tracked_alloc(16 + (i as usize & 63)) as u64,
            n / 4,
        ));
    }
    let (t, u, ta, ua) = (median(t), median(u), median(ta), median(ua));
    println!(
        "track_call: empty fn: untracked {u:.2} ns, tracked {t:.2} ns; tracking costs {:.2} ns per call ({:.2}x)",
        t - u,
        t / u
    );
    println!(
        "track_call: fn that allocates: untracked {ua:.2} ns, tracked {ta:.2} ns ({:.2}x)",
        ta / ua
    );
}
