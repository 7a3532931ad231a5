//! Snapshots taken while threads exit never lose (or double) what those
//! threads allocated: the exit fold and the reader agree.

mod common;

use common::{alloc_at, free};

#[global_allocator]
static GLOBAL: asmalloc::AsmAlloc = asmalloc::AsmAlloc::system();

#[test]
fn snapshots_during_thread_exits_are_monotonic_for_a_growing_site() {
    const SITE: u16 = 400;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut last = 0;
            let mut bad = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let now = asmalloc::Snapshot::take().site(SITE).net_bytes;
                if now < last {
                    bad.push((last, now));
                }
                last = now;
            }
            bad
        })
    };
    let mut kept = Vec::new();
    for _ in 0..50 {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..50)
                        .map(|_| alloc_at(SITE, 1000, 8, false))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in hs {
            kept.extend(h.join().unwrap());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let bad = watcher.join().unwrap();
    assert_eq!(
        asmalloc::Snapshot::take().site(SITE).net_bytes,
        50 * 8 * 50 * 1000
    );
    assert!(
        bad.is_empty(),
        "the site's net bytes went down while only growing: {:?}",
        &bad[..bad.len().min(5)]
    );
    for b in kept {
        free(b);
    }
}
