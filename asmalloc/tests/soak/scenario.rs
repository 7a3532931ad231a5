//! The exactness soak for the Rust wrapper, shared by `tests/soak.rs`
//! (`AsmAlloc<System>`) and `tests/soak_jemalloc.rs` (`AsmAlloc<Jemalloc>`):
//! 8 threads make random allocations, reallocations (moving blocks to other
//! sites) and frees over a shared pool of slots — most frees and resizes on
//! another thread than the allocation — across 1,000 sites, with the leak
//! monitor sampling every 5 ms into its log. A shadow model (what
//! `common::charged` says each block costs) is compared with a snapshot at
//! ten checkpoints (all threads stopped at a barrier), and with the
//! monitor's last sample after the run: zero drift, in bytes and blocks.
//!
//! Size: 2,000,000 operations by default (a few seconds in a debug build);
//! `ASMALLOC_SOAK=full` runs 10,000,000, `ASMALLOC_SOAK=<n>` runs n.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};

use crate::common::{Block, Rng, alloc_at, exactness::monitor_on, free, realloc_at};

const THREADS: usize = 8;
const SITES: u16 = 1000;
const FIRST_SITE: u16 = 1;
const POOL: usize = 32768;
const CHECKS: u64 = 10;

fn operations() -> u64 {
    match std::env::var("ASMALLOC_SOAK").as_deref() {
        Ok("full") => 10_000_000,
        Ok(n) => n
            .parse()
            .unwrap_or_else(|_| panic!("ASMALLOC_SOAK={n}: expected full or a number")),
        Err(_) => 2_000_000,
    }
}

/// Mostly small, some medium, a few past glibc's mmap threshold.
fn random_size(rng: &mut Rng) -> usize {
    match rng.below(1000) {
        0 => 64 * 1024 + rng.below(192 * 1024) as usize,
        1..=49 => 512 + rng.below(8192) as usize,
        50..=149 => 1 + rng.below(8) as usize,
        _ => 1 + rng.below(512) as usize,
    }
}

fn random_align(rng: &mut Rng) -> usize {
    [8, 8, 8, 16, 64, 4096][rng.below(6) as usize]
}

/// Net (bytes, blocks).
type Net = (i64, i64);

/// Per-site net bytes and blocks the tracker must show.
struct Model {
    bytes: Vec<AtomicI64>,
    count: Vec<AtomicI64>,
}

impl Model {
    fn new() -> Model {
        let n = usize::from(FIRST_SITE + SITES);
        Model {
            bytes: (0..n).map(|_| AtomicI64::new(0)).collect(),
            count: (0..n).map(|_| AtomicI64::new(0)).collect(),
        }
    }

    fn add(&self, b: &Block, sign: i64) {
        let i = usize::from(b.site);
        self.bytes[i].fetch_add(sign * b.charged as i64, Ordering::Relaxed);
        self.count[i].fetch_add(sign, Ordering::Relaxed);
    }

    fn get(&self, site: u16) -> Net {
        let i = usize::from(site);
        (
            self.bytes[i].load(Ordering::Relaxed),
            self.count[i].load(Ordering::Relaxed),
        )
    }

    /// Sites whose (bytes, blocks) differ from `charged`.
    fn drift(&self, charged: impl Fn(u16) -> Net) -> Vec<(u16, Net, Net)> {
        (FIRST_SITE..FIRST_SITE + SITES)
            .filter_map(|site| {
                let (want, got) = (self.get(site), charged(site));
                (want != got).then_some((site, got, want))
            })
            .collect()
    }
}

fn one_op(rng: &mut Rng, pool: &[Mutex<Option<Block>>], model: &Model) {
    let slot = &pool[rng.below(POOL as u64) as usize];
    let site = FIRST_SITE + rng.below(u64::from(SITES)) as u16;
    let mut slot = slot.lock().unwrap();
    let op = rng.below(10);
    match slot.take() {
        None => {
            let b = alloc_at(site, random_size(rng), random_align(rng), rng.below(4) == 0);
            model.add(&b, 1);
            *slot = Some(b);
        }
        Some(old) if op <= 3 => {
            model.add(&old, -1);
            free(old);
            let b = alloc_at(site, random_size(rng), random_align(rng), rng.below(4) == 0);
            model.add(&b, 1);
            *slot = Some(b);
        }
        Some(old) if op <= 6 => {
            model.add(&old, -1);
            free(old);
        }
        Some(old) => {
            model.add(&old, -1);
            let b = realloc_at(old, site, random_size(rng));
            model.add(&b, 1);
            *slot = Some(b);
        }
    }
}

pub fn soak_matches_the_model() {
    let log = monitor_on();
    let ops = operations();
    let per_round = ops / THREADS as u64 / CHECKS;
    assert!(per_round > 0, "too few operations: {ops}");
    let pool: Vec<Mutex<Option<Block>>> = (0..POOL).map(|_| Mutex::new(None)).collect();
    let model = Model::new();
    let barrier = Barrier::new(THREADS);
    let checked = AtomicU64::new(0);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (pool, model, barrier, checked) = (&pool, &model, &barrier, &checked);
            s.spawn(move || {
                let mut rng = Rng::new(0x50a6_0000 + t as u64);
                for round in 1..=CHECKS {
                    for _ in 0..per_round {
                        one_op(&mut rng, pool, model);
                    }
                    // Every thread stopped: the snapshot is exact.
                    if barrier.wait().is_leader() {
                        let snap = asmalloc::Snapshot::take();
                        let drift = model.drift(|site| {
                            let s = snap.site(site);
                            (s.net_bytes, s.net_count)
                        });
                        assert!(
                            drift.is_empty(),
                            "checkpoint {round}: (site, tracker, model) {:?}",
                            &drift[..drift.len().min(5)]
                        );
                        checked.fetch_add(1, Ordering::Relaxed);
                    }
                    barrier.wait();
                }
            });
        }
    });
    assert_eq!(checked.load(Ordering::Relaxed), CHECKS);
    // A sample now, with every thread done, is exact. A log line lists the
    // sites that changed since the last line, at most 256 of them (the
    // rest, counted in `sites_truncated`, come in the next lines): sample
    // until a line has them all, then fold the log to the latest.
    let mut text = String::new();
    for _ in 0..20 {
        let _ = asmalloc::__private::monitor::sample_now();
        text = std::fs::read_to_string(&log).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        if last["sites_truncated"] == 0 {
            break;
        }
    }
    let mut latest: BTreeMap<u16, (i64, i64)> = BTreeMap::new();
    let mut below = 0;
    let mut lines = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        lines += 1;
        for s in v["sites"].as_array().into_iter().flatten() {
            let (b, c) = (
                s["net_bytes"].as_i64().unwrap(),
                s["net_count"].as_i64().unwrap(),
            );
            below += usize::from(b < 0 || c < 0);
            latest.insert(s["id"].as_u64().unwrap() as u16, (b, c));
        }
    }
    let drift = model.drift(|site| latest.get(&site).copied().unwrap_or((0, 0)));
    assert!(
        drift.is_empty(),
        "the monitor's last sample: (site, log, model) {:?}",
        &drift[..drift.len().min(5)]
    );
    assert!(lines >= 3, "the monitor sampled while the soak ran");
    eprintln!(
        "soak: {} operations, {THREADS} threads, {SITES} sites, {CHECKS} checkpoints and the last sample: drift 0; \
         {lines} log lines, {below} site entries in them briefly negative (read mid-run); {:.1} s",
        per_round * THREADS as u64 * CHECKS,
        started.elapsed().as_secs_f64()
    );
    for slot in pool {
        if let Some(b) = slot.into_inner().unwrap() {
            free(b);
        }
    }
}
