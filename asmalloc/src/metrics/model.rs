//! What one exposition says: the numbers of one monitor sample, with every
//! exported site already named, so rendering (for the textfile, or for each
//! scrape on the HTTP server's thread) never touches the site table or the
//! detector again.
//!
//! The site series are bounded: the `top` sites by net bytes, plus every
//! site that has had a leak verdict (at most [`MAX_VERDICT_SITES`] of them,
//! the most recent). Everything else is summed into the totals and counted
//! in `sites_dropped`.

use std::collections::BTreeMap;

use crate::detector::{Verdict, VerdictKind};
use crate::site;
use crate::snapshot::Snapshot;

/// At most this many sites are kept because of a verdict (beyond the top N
/// by net bytes); past it, the site whose last verdict is oldest goes.
pub const MAX_VERDICT_SITES: usize = 256;

/// One exported site.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteRow {
    /// Site id.
    pub id: u16,
    /// Type name (may be empty).
    pub type_name: String,
    /// Source file (may be empty).
    pub file: String,
    /// Source line (0 when unknown).
    pub line: u32,
    /// Function (may be empty).
    pub function: String,
    /// Live bytes.
    pub net_bytes: i64,
    /// Live blocks.
    pub net_blocks: i64,
    /// Allocations charged to it.
    pub allocs: u64,
    /// Its last leak verdict, if it had one.
    pub verdict: Option<VerdictKind>,
}

/// The whole exposition of one sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// When the sample was taken (ns since the Unix epoch).
    pub time_ns: i64,
    /// How long taking and judging the sample took (ns).
    pub sample_ns: i64,
    /// Live bytes charged to sites.
    pub net_bytes: i64,
    /// Live blocks.
    pub net_blocks: i64,
    /// Net bytes mapped with `mmap` (preload only).
    pub mapped_bytes: i64,
    /// Net bytes of attached System V shared memory (preload only).
    pub shm_bytes: i64,
    /// Live tracked threads.
    pub threads: u64,
    /// Threads ever tracked.
    pub threads_started: u64,
    /// (operation, calls, bytes), in [`crate::op::Op::ALL`] order.
    pub ops: Vec<(&'static str, u64, u64)>,
    /// Exported sites, by descending net bytes (then id).
    pub sites: Vec<SiteRow>,
    /// Sites with any activity.
    pub sites_active: u64,
    /// Active sites left out by the bound.
    pub sites_dropped: u64,
    /// Verdicts so far, by kind: possible leak, still growing, never mind.
    pub verdicts: [u64; 3],
    /// Sites the detector currently judges possible leaks.
    pub sites_leaking: u64,
    /// Samples the monitor has taken.
    pub samples: u64,
}

/// The verdict kinds in [`Model::verdicts`] order.
pub const VERDICT_KINDS: [VerdictKind; 3] = [
    VerdictKind::PossibleLeak,
    VerdictKind::StillGrowing,
    VerdictKind::NeverMind,
];

fn kind_index(kind: VerdictKind) -> usize {
    match kind {
        VerdictKind::PossibleLeak => 0,
        VerdictKind::StillGrowing => 1,
        VerdictKind::NeverMind => 2,
    }
}

/// What the exporter remembers between samples: the verdict counters and
/// the sites that had a verdict.
#[derive(Debug, Default)]
pub struct History {
    verdicts: [u64; 3],
    /// Site → (its last verdict, the sample it came in).
    site_verdicts: BTreeMap<u16, (VerdictKind, u64)>,
    samples: u64,
}

impl History {
    /// Counts one sample and its verdicts.
    pub fn observe(&mut self, verdicts: &[Verdict]) {
        self.samples += 1;
        for v in verdicts {
            self.verdicts[kind_index(v.kind)] += 1;
            self.site_verdicts.insert(v.site, (v.kind, self.samples));
        }
        while self.site_verdicts.len() > MAX_VERDICT_SITES {
            let oldest = self
                .site_verdicts
                .iter()
                .min_by_key(|(id, (_, seq))| (*seq, **id))
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => self.site_verdicts.remove(&id),
                None => break,
            };
        }
    }

    /// The model of `snap`: the `top` sites by net bytes and every site
    /// with a verdict.
    pub fn model(&self, snap: &Snapshot, top: usize, sample_ns: i64, leaking: usize) -> Model {
        let mut sites: Vec<SiteRow> = snap
            .sites
            .iter()
            .enumerate()
            .filter(|(rank, s)| *rank < top || self.site_verdicts.contains_key(&s.id))
            .map(|(_, s)| row(s.id, s.net_bytes, s.net_count, s.allocs))
            .collect();
        // A site with a verdict that is no longer active (freed everything
        // and left the snapshot) still shows, at zero.
        for &id in self.site_verdicts.keys() {
            if !sites.iter().any(|r| r.id == id) {
                sites.push(row(id, 0, 0, 0));
            }
        }
        for r in &mut sites {
            r.verdict = self.site_verdicts.get(&r.id).map(|(k, _)| *k);
        }
        sites.sort_by(|a, b| b.net_bytes.cmp(&a.net_bytes).then(a.id.cmp(&b.id)));
        let exported_active = snap
            .sites
            .iter()
            .filter(|s| sites.iter().any(|r| r.id == s.id))
            .count();
        Model {
            time_ns: snap.time_ns,
            sample_ns,
            net_bytes: snap.net_bytes,
            net_blocks: snap.net_count,
            mapped_bytes: snap.net_mapped,
            shm_bytes: snap.net_shm,
            threads: snap.threads_live,
            threads_started: snap.threads_total,
            ops: snap
                .ops
                .iter()
                .map(|o| (o.op.name(), o.count, o.bytes))
                .collect(),
            sites,
            sites_active: snap.sites.len() as u64,
            sites_dropped: (snap.sites.len() - exported_active) as u64,
            verdicts: self.verdicts,
            sites_leaking: leaking as u64,
            samples: self.samples,
        }
    }
}

fn row(id: u16, net_bytes: i64, net_blocks: i64, allocs: u64) -> SiteRow {
    let (type_name, file, line, function) = match site::describe(id) {
        Some(i) if id != 0 => (
            i.type_name.to_string(),
            i.file.to_string(),
            i.line,
            i.function.to_string(),
        ),
        _ if id == 0 => (
            String::new(),
            String::new(),
            0,
            crate::report::UNKNOWN_SITE.into(),
        ),
        _ => Default::default(),
    };
    SiteRow {
        id,
        type_name,
        file,
        line,
        function,
        net_bytes,
        net_blocks,
        allocs,
        verdict: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SiteStats;

    fn snap(sites: &[(u16, i64)]) -> Snapshot {
        let mut s = Snapshot::take();
        s.sites = sites
            .iter()
            .map(|&(id, net_bytes)| SiteStats {
                id,
                net_bytes,
                net_count: 1,
                allocs: 1,
                alloc_bytes: net_bytes.max(0) as u64,
                frees: 0,
            })
            .collect();
        s
    }

    fn verdict(site: u16, kind: VerdictKind) -> Verdict {
        Verdict {
            kind,
            site,
            time_ns: 0,
            net_bytes: 0,
            growth_bytes: 0,
            over_ns: 0,
            rate_bytes_per_s: 0,
            reported_growth_bytes: 0,
        }
    }

    #[test]
    fn the_top_sites_and_every_site_with_a_verdict_bounded() {
        let mut h = History::default();
        // Sites by descending net bytes, as a snapshot lists them.
        let s = snap(&[(5, 500), (4, 400), (3, 300), (2, 200), (1, 100)]);
        let m = h.model(&s, 2, 0, 0);
        let ids: Vec<u16> = m.sites.iter().map(|r| r.id).collect();
        assert_eq!(ids, [5, 4]);
        assert_eq!((m.sites_active, m.sites_dropped), (5, 3));

        h.observe(&[verdict(1, VerdictKind::PossibleLeak)]);
        h.observe(&[
            verdict(1, VerdictKind::StillGrowing),
            verdict(9, VerdictKind::NeverMind),
        ]);
        let m = h.model(&s, 2, 0, 1);
        let rows: Vec<(u16, Option<VerdictKind>)> =
            m.sites.iter().map(|r| (r.id, r.verdict)).collect();
        // Site 9 had a verdict but is no longer active: shown at zero.
        assert_eq!(
            rows,
            [
                (5, None),
                (4, None),
                (1, Some(VerdictKind::StillGrowing)),
                (9, Some(VerdictKind::NeverMind)),
            ]
        );
        assert_eq!((m.sites_dropped, m.sites_leaking, m.samples), (2, 1, 2));
        assert_eq!(m.verdicts, [1, 1, 1]);

        // At most MAX_VERDICT_SITES sites kept for their verdicts, the
        // oldest verdict going first.
        for id in 100..100 + MAX_VERDICT_SITES as u16 {
            h.observe(&[verdict(id, VerdictKind::PossibleLeak)]);
        }
        let m = h.model(&s, 2, 0, 0);
        assert_eq!(m.sites.len(), 2 + MAX_VERDICT_SITES);
        assert!(!m.sites.iter().any(|r| r.id == 1 || r.id == 9));
    }
}
