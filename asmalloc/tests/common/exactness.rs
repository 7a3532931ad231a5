//! The exactness scenarios, shared by `tests/exactness.rs` (over `System`)
//! and asmalloc-jemalloc-tests (over `Jemalloc`): after random sequences of
//! alloc / realloc / free across sites, on one thread and on several threads
//! freeing each other's blocks, every site's net bytes and blocks equal the
//! shadow model's. The model charges what `super::charged` says for the
//! allocator in use.
//!
//! Every scenario runs with the optional parts that work beside the program
//! switched on (see [`monitor_on`]): exactness must hold while the leak
//! monitor samples and writes its log, as under `asmalloc run`.

use std::sync::mpsc;

use super::{Block, Expected, Rng, alloc_at, free, realloc_at};

/// Sizes from tiny to well past glibc's mmap threshold.
fn random_size(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0 => 1 + rng.below(8) as usize,
        1..=6 => 1 + rng.below(512) as usize,
        7 | 8 => 512 + rng.below(64 * 1024) as usize,
        _ => 128 * 1024 + rng.below(512 * 1024) as usize,
    }
}

fn random_align(rng: &mut Rng) -> usize {
    [1, 8, 16, 64, 4096][rng.below(5) as usize]
}

/// Runs `steps` random operations on sites `first..first + n`, returning the
/// blocks still live and updating `model`.
fn random_phase(
    rng: &mut Rng,
    first: u16,
    n: u16,
    steps: usize,
    live: &mut Vec<Block>,
    model: &mut Expected,
) {
    for _ in 0..steps {
        let site = first + rng.below(u64::from(n)) as u16;
        match rng.below(4) {
            0 | 1 => {
                let b = alloc_at(site, random_size(rng), random_align(rng), rng.below(3) == 0);
                model.alloc(b.site, b.charged);
                live.push(b);
            }
            2 if !live.is_empty() => {
                let i = rng.below(live.len() as u64) as usize;
                let b = live.swap_remove(i);
                model.free(b.site, b.charged);
                free(b);
            }
            _ if !live.is_empty() => {
                let i = rng.below(live.len() as u64) as usize;
                let b = live.swap_remove(i);
                model.free(b.site, b.charged);
                let b = realloc_at(b, site, random_size(rng));
                model.alloc(b.site, b.charged);
                live.push(b);
            }
            _ => {}
        }
    }
}

/// Installs the leak monitor with a JSON-lines log and starts its thread,
/// sampling every 5 ms, and turns sampled stacks on (one sample per 16
/// KiB: a sampled block's tag holds a stack id, and its free must still be
/// charged exactly), once per test binary. Returns the log's path.
pub fn monitor_on() -> std::path::PathBuf {
    static LOG: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        assert!(
            asmalloc::__private::env::apply_env_setting("ASMALLOC_SAMPLE_BYTES", "16K").unwrap()
        );
        asmalloc::__private::stacks::start_in_rust_program();
        let log =
            std::env::temp_dir().join(format!("asmalloc-exactness-{}.jsonl", std::process::id()));
        asmalloc::__private::monitor::install(asmalloc::__private::monitor::MonitorConfig {
            log_path: Some(log.display().to_string()),
            ..Default::default()
        })
        .expect("install the monitor");
        asmalloc::__private::monitor::start_thread(std::time::Duration::from_millis(5))
            .expect("start the monitor thread");
        log
    })
    .clone()
}

/// The monitor has sampled and logged at least twice: proof that it ran
/// alongside the scenario. Waits for it a little: with sampled stacks on,
/// its first line names every frame of the stacks (reading the test
/// binary's debug information, most of a second in a debug build).
fn assert_monitor_sampled(log: &std::path::Path) {
    let lines = || {
        std::fs::read_to_string(log)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while lines() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        lines() >= 2,
        "the monitor wrote {} lines to {}",
        lines(),
        log.display()
    );
}

pub fn single_thread_random_sequences_match_the_model() {
    let log = monitor_on();
    let mut rng = Rng::new(0x5eed_0001);
    let mut model = Expected::default();
    let mut live = Vec::new();
    let sites = 100..108u16;
    for phase in 0..5 {
        random_phase(&mut rng, 100, 8, 2_000, &mut live, &mut model);
        model.assert_matches(sites.clone(), &format!("phase {phase}"));
    }
    for b in live.drain(..) {
        model.free(b.site, b.charged);
        free(b);
    }
    model.assert_matches(sites.clone(), "freeing everything");
    for site in sites {
        assert_eq!(asmalloc::Snapshot::take().site(site).net_bytes, 0);
    }
    assert_monitor_sampled(&log);
}

pub fn threads_freeing_each_others_blocks_match_the_model() {
    let log = monitor_on();
    const THREADS: usize = 4;
    let sites = 200..(200 + THREADS as u16 * 4);
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..THREADS).map(|_| mpsc::channel::<Block>()).unzip();
    let mut handles = Vec::new();
    for (t, rx) in receivers.into_iter().enumerate() {
        let tx = senders[(t + 1) % THREADS].clone();
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng::new(0xabc0 + t as u64);
            let mut model = Expected::default();
            let mut live = Vec::new();
            random_phase(
                &mut rng,
                200 + t as u16 * 4,
                4,
                3_000,
                &mut live,
                &mut model,
            );
            // Hand half of what is live to the next thread, which frees it.
            let half = live.len() / 2;
            for b in live.drain(..half) {
                tx.send(b).unwrap();
            }
            drop(tx);
            // Free what the previous thread handed us (charged back to *its*
            // sites, from this thread).
            for b in rx {
                model.free(b.site, b.charged);
                free(b);
            }
            (model, live)
        }));
    }
    drop(senders);
    let mut model = Expected::default();
    let mut survivors = Vec::new();
    for h in handles {
        let (m, live) = h.join().unwrap();
        model.merge(&m);
        survivors.extend(live);
    }
    model.assert_matches(sites.clone(), "threads exchanged blocks");
    for b in survivors {
        model.free(b.site, b.charged);
        free(b);
    }
    model.assert_matches(sites, "the main thread freed the rest");
    assert_monitor_sampled(&log);
}

pub fn thousands_of_short_threads_lose_nothing() {
    let log = monitor_on();
    const THREADS: usize = 1_200;
    const SITE: u16 = 300;
    let before = asmalloc::Snapshot::take();
    let mut model = Expected::default();
    let mut kept = Vec::new();
    // In waves, so a few dozen threads are alive at once and tables get reused.
    for wave in 0..(THREADS / 40) {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                std::thread::spawn(move || {
                    let mut m = Expected::default();
                    let a = alloc_at(SITE, 100 + (wave * 40 + i) % 300, 8, false);
                    let b = alloc_at(SITE + 1, 64, 8, false);
                    m.alloc(a.site, a.charged);
                    m.alloc(b.site, b.charged);
                    m.free(b.site, b.charged);
                    free(b);
                    (m, a)
                })
            })
            .collect();
        for h in handles {
            let (m, a) = h.join().unwrap();
            model.merge(&m);
            kept.push(a);
        }
    }
    model.assert_matches([SITE, SITE + 1], "1200 threads exited");
    let after = asmalloc::Snapshot::take();
    assert!(
        after.threads_total - before.threads_total >= THREADS as u64,
        "thread total grew by {} only",
        after.threads_total - before.threads_total
    );
    let site = after.site(SITE);
    assert_eq!(site.net_count, THREADS as i64);
    assert_eq!(site.allocs, THREADS as u64);
    for a in kept {
        model.free(a.site, a.charged);
        free(a);
    }
    model.assert_matches([SITE, SITE + 1], "kept blocks freed");
    assert_monitor_sampled(&log);
}

pub fn zero_sized_and_huge_requests_are_safe() {
    // Vec of ZSTs never allocates; a huge request fails cleanly with null.
    let v: Vec<()> = vec![(); 1000];
    assert_eq!(v.len(), 1000);
    let layout = std::alloc::Layout::from_size_align(isize::MAX as usize - 4096, 8).unwrap();
    // SAFETY: non-zero size; a null result is checked.
    let p = unsafe { std::alloc::alloc(layout) };
    // black_box: an optimised build may otherwise drop the unused
    // allocation and assume it succeeded.
    assert!(std::hint::black_box(p).is_null());
    let mut v: Vec<u8> = Vec::new();
    assert!(v.try_reserve(usize::MAX / 2).is_err());
}
