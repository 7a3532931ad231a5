//! A snapshot: every thread's counters summed at one moment.
//!
//! Taking a snapshot reads the live threads' tables with relaxed loads while
//! they keep running, so counts of a thread in the middle of an allocation
//! may be one operation behind; once threads are quiet (joined, or between
//! phases) the sums are exact. A thread that exits while a snapshot is read
//! moves its counters into the shared retired table; the snapshot is retried
//! until it saw no such move, so an exiting thread is never counted twice
//! or missed. A snapshot allocates: take it from a reporter
//! or the application, never from the allocation path.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::clock;
use crate::config::{self, Features};
use crate::engine::{self, ThreadTable};
use crate::op::Op;
use crate::site::{self, SiteInfo};

/// One site's counters summed over every thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SiteStats {
    /// The site id.
    pub id: u16,
    /// Bytes allocated at this site that are still live.
    pub net_bytes: i64,
    /// Blocks allocated at this site that are still live.
    pub net_count: i64,
    /// Allocations (including reallocations) charged to this site.
    pub allocs: u64,
    /// Bytes of those allocations, in all (what the site allocated over the
    /// program's life, freed or not).
    pub alloc_bytes: u64,
    /// Frees (including the old half of reallocations) charged back to it.
    pub frees: u64,
}

impl SiteStats {
    /// The site's name, if the table or the dynamic sites know it.
    pub fn info(&self) -> Option<SiteInfo> {
        site::describe(self.id)
    }
}

/// Calls and bytes of one operation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpStats {
    /// The kind.
    pub op: Op,
    /// Calls.
    pub count: u64,
    /// Bytes (requested or charged, per kind).
    pub bytes: u64,
}

/// Every counter of the process at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When it was taken (ns since the Unix epoch).
    pub time_ns: i64,
    /// When it was taken on the monotonic clock (ns; for intervals — the
    /// leak detector measures with it, so a wall-clock step cannot stall
    /// or hurry a verdict).
    pub elapsed_ns: i64,
    /// Features in force then.
    pub features: Features,
    /// Threads that have used the tracker and not exited.
    pub threads_live: u64,
    /// Threads that have ever used the tracker.
    pub threads_total: u64,
    /// Per-operation counts, in [`Op::ALL`] order.
    pub ops: Vec<OpStats>,
    /// Sites with any activity, by descending net bytes (then id).
    pub sites: Vec<SiteStats>,
    /// Sum of the sites' net bytes (the original's `mem_count`).
    pub net_bytes: i64,
    /// Sum of the sites' net blocks.
    pub net_count: i64,
    /// Net bytes mapped with `mmap` (counted by the LD_PRELOAD library; 0 in
    /// Rust programs).
    pub net_mapped: i64,
    /// Net bytes of attached System V shared memory (LD_PRELOAD library).
    pub net_shm: i64,
}

impl Snapshot {
    /// Sums every thread's table now.
    pub fn take() -> Snapshot {
        let retired = engine::retired();
        let (sites, op_count, op_bytes) = engine::read_consistently(|| {
            let mut sites: BTreeMap<u16, SiteStats> = BTreeMap::new();
            let mut op_count = [0u64; Op::COUNT];
            let mut op_bytes = [0u64; Op::COUNT];
            for table in engine::tables().chain(retired) {
                add_table(table, &mut sites, &mut op_count, &mut op_bytes);
            }
            (sites, op_count, op_bytes)
        });
        let (threads_live, threads_total) = engine::thread_counts();
        let (net_mapped, net_shm) = engine::net_mapped_and_shm();
        let mut sites: Vec<SiteStats> = sites
            .into_values()
            .filter(|s| s.allocs != 0 || s.frees != 0)
            .collect();
        // By net bytes, then (everything freed at exit) by what was
        // allocated in all.
        sites.sort_by(|a, b| {
            b.net_bytes
                .cmp(&a.net_bytes)
                .then(b.alloc_bytes.cmp(&a.alloc_bytes))
                .then(a.id.cmp(&b.id))
        });
        Snapshot {
            time_ns: clock::now_ns(),
            elapsed_ns: clock::monotonic_ns(),
            features: config::features(),
            threads_live,
            threads_total,
            ops: Op::ALL
                .iter()
                .map(|&op| OpStats {
                    op,
                    count: op_count[op as usize],
                    bytes: op_bytes[op as usize],
                })
                .collect(),
            net_bytes: sites.iter().map(|s| s.net_bytes).sum(),
            net_count: sites.iter().map(|s| s.net_count).sum(),
            sites,
            net_mapped,
            net_shm,
        }
    }

    /// The stats of one site (zero if it never saw activity).
    pub fn site(&self, id: u16) -> SiteStats {
        self.sites
            .iter()
            .find(|s| s.id == id)
            .copied()
            .unwrap_or(SiteStats {
                id,
                ..SiteStats::default()
            })
    }

    /// The counts of one operation kind.
    pub fn op(&self, op: Op) -> OpStats {
        self.ops[op as usize]
    }
}

fn add_table(
    table: &ThreadTable,
    sites: &mut BTreeMap<u16, SiteStats>,
    op_count: &mut [u64; Op::COUNT],
    op_bytes: &mut [u64; Op::COUNT],
) {
    for i in 0..Op::COUNT {
        op_count[i] = op_count[i].wrapping_add(table.ops[i].count.load(Ordering::Relaxed));
        op_bytes[i] = op_bytes[i].wrapping_add(table.ops[i].bytes.load(Ordering::Relaxed));
    }
    for id in table.touched_sites() {
        let c = table.site(id);
        let allocs = c.allocs.load(Ordering::Relaxed);
        let alloc_bytes = c.alloc_bytes.load(Ordering::Relaxed);
        let net_count = c.net_count.load(Ordering::Relaxed);
        let net_bytes = c.net_bytes.load(Ordering::Relaxed);
        // Per thread, frees = allocs - net count (a thread may free more
        // than it allocated at a site; the wrapping sums come out right).
        let frees = allocs.wrapping_sub(net_count as u64);
        if allocs == 0 && frees == 0 {
            continue;
        }
        let s = sites.entry(id).or_insert(SiteStats {
            id,
            ..SiteStats::default()
        });
        s.net_bytes = s.net_bytes.wrapping_add(net_bytes);
        s.net_count = s.net_count.wrapping_add(net_count);
        s.allocs = s.allocs.wrapping_add(allocs);
        s.alloc_bytes = s.alloc_bytes.wrapping_add(alloc_bytes);
        s.frees = s.frees.wrapping_add(frees);
    }
}
