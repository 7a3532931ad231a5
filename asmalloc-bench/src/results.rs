//! What a run measured, and the paired ratios computed from it.

use std::collections::BTreeMap;

use crate::config::Cfg;
use crate::measure::Usage;

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub usage: Usage,
    /// Bytes of the files the tool wrote (reports, logs, profiles).
    pub out_bytes: u64,
    /// Redis: requests per second.
    pub rps: Option<f64>,
    /// Full-size work / this run's work (memcheck's scaled-down runs).
    pub scale: f64,
    /// With `scale`: wall and CPU seconds of the same command doing no
    /// work (the fixed start-up cost, not multiplied by the work ratio).
    pub base_wall: f64,
    pub base_cpu: f64,
}

impl Sample {
    /// `t` of this run brought to the full work: the start-up cost `base`
    /// plus `scale` times the rest.
    fn scaled(&self, t: f64, base: f64) -> f64 {
        if self.scale == 1.0 {
            t
        } else {
            base + self.scale * (t - base).max(0.0)
        }
    }
}

/// A (workload, configuration) cell.
#[derive(Debug, Clone)]
pub enum Cell {
    /// Measured: one entry per repetition.
    Runs(Vec<Sample>),
    /// Not run, and why (shown in the tables).
    Skipped(String),
    /// A run failed; the cell shows "failed" and the notes the reason.
    Failed(String),
}

/// A workload's results (a row).
#[derive(Debug, Clone)]
pub struct Row {
    pub key: String,
    pub short: String,
    pub title: String,
    pub redis: bool,
    pub cells: BTreeMap<Cfg, Cell>,
}

/// A measured quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Wall seconds (scaled-down runs: brought to the full work).
    Wall,
    /// CPU seconds, user + sys (scaled-down runs: brought to the full work).
    Cpu,
    /// Peak RSS (not scaled).
    Rss,
    /// Requests per second (redis; higher is better).
    Rps,
}

impl Metric {
    pub fn of(self, s: &Sample) -> Option<f64> {
        match self {
            Metric::Wall => Some(s.scaled(s.usage.wall, s.base_wall)),
            Metric::Cpu => Some(s.scaled(s.usage.cpu, s.base_cpu)),
            Metric::Rss => Some(s.usage.maxrss_kib as f64),
            Metric::Rps => s.rps,
        }
    }
}

/// Median (the mean of the middle two for an even count); None if empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Row {
    pub fn samples(&self, cfg: Cfg) -> Option<&[Sample]> {
        match self.cells.get(&cfg) {
            Some(Cell::Runs(v)) => Some(v),
            _ => None,
        }
    }

    /// Median over repetitions of `metric(cfg) / metric(base)`, each
    /// repetition's pair measured back to back.
    pub fn ratio(&self, cfg: Cfg, base: Cfg, metric: Metric) -> Option<f64> {
        let (a, b) = (self.samples(cfg)?, self.samples(base)?);
        median(
            a.iter()
                .zip(b)
                .filter_map(|(x, y)| Some(metric.of(x)? / metric.of(y)?))
                .filter(|r| r.is_finite())
                .collect(),
        )
    }

    /// Median of `metric` over repetitions.
    pub fn median(&self, cfg: Cfg, metric: Metric) -> Option<f64> {
        median(
            self.samples(cfg)?
                .iter()
                .filter_map(|s| metric.of(s))
                .collect(),
        )
    }

    /// Median bytes written by the tool.
    pub fn out_bytes(&self, cfg: Cfg) -> Option<f64> {
        median(
            self.samples(cfg)?
                .iter()
                .map(|s| s.out_bytes as f64)
                .collect(),
        )
    }

    /// The headline ratio of a cell: wall time, or for redis requests/s.
    pub fn headline(&self, cfg: Cfg) -> Option<f64> {
        self.ratio(
            cfg,
            Cfg::Raw,
            if self.redis {
                Metric::Rps
            } else {
                Metric::Wall
            },
        )
    }

    /// Slowdown for the chart: wall ratio, or for redis raw/cfg requests/s.
    pub fn slowdown(&self, cfg: Cfg) -> Option<f64> {
        let h = self.headline(cfg)?;
        Some(if self.redis { 1.0 / h } else { h })
    }
}

/// A target from the issue: a ratio and its limit.
#[derive(Debug, Clone)]
pub struct Target {
    pub what: String,
    /// The measured value as shown (one or more ratios).
    pub measured: String,
    pub limit: String,
    /// None: not measured.
    pub pass: Option<bool>,
    pub value: Option<f64>,
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("not measured".into(), |r| format!("{r:.2}x"))
}

/// The targets, evaluated on `rows`.
pub fn targets(rows: &[Row]) -> Vec<Target> {
    let row = |key: &str| rows.iter().find(|r| r.key == key);
    let mut out = Vec::new();
    let mut time = |what: &str, key: &str, cfg: Cfg, base: Cfg, limit: f64| {
        let v = row(key).and_then(|r| r.ratio(cfg, base, Metric::Wall));
        let cpu = row(key).and_then(|r| r.ratio(cfg, base, Metric::Cpu));
        out.push(Target {
            what: what.to_string(),
            measured: match (v, cpu) {
                (Some(_), Some(c)) => format!("{} (CPU {c:.2}x)", fmt_ratio(v)),
                _ => fmt_ratio(v),
            },
            limit: format!("≤ {limit:.2}x"),
            pass: v.map(|v| v <= limit),
            value: v,
        });
    };
    time(
        "C preload, allocator-heavy (a): libasmalloc.so / raw glibc, wall",
        "a",
        Cfg::Asm,
        Cfg::Raw,
        1.10,
    );
    time(
        "C preload, program-like (b): libasmalloc.so / raw glibc, wall",
        "b",
        Cfg::Asm,
        Cfg::Raw,
        1.05,
    );
    time(
        "jemalloc preload, allocator-heavy (a): libasmalloc_jem.so / plain jemalloc preload, wall",
        "a",
        Cfg::AsmJem,
        Cfg::Jem,
        1.10,
    );
    time(
        "jemalloc preload, program-like (b): libasmalloc_jem.so / plain jemalloc preload, wall",
        "b",
        Cfg::AsmJem,
        Cfg::Jem,
        1.05,
    );
    time(
        "Rust AsmAlloc<System>, program-like (c): / System, wall",
        "c-prog",
        Cfg::Asm,
        Cfg::Raw,
        1.05,
    );
    time(
        "Rust AsmAlloc<System>, allocator only (c): / System, wall",
        "c-alloc",
        Cfg::Asm,
        Cfg::Raw,
        1.15,
    );
    time(
        "Rust AsmAlloc<Jemalloc>, program-like (c): / Jemalloc, wall",
        "c-prog",
        Cfg::AsmJem,
        Cfg::Jem,
        1.10,
    );
    time(
        "Rust AsmAlloc<Jemalloc>, allocator only (c): / Jemalloc, wall",
        "c-alloc",
        Cfg::AsmJem,
        Cfg::Jem,
        1.30,
    );
    {
        let r = row("e-redis");
        let v = r.and_then(|r| r.ratio(Cfg::Asm, Cfg::Raw, Metric::Rps));
        let ht = r.and_then(|r| r.ratio(Cfg::Heaptrack, Cfg::Raw, Metric::Rps));
        out.push(Target {
            what: "redis (e): requests/s under libasmalloc_jem.so / raw".into(),
            measured: match ht {
                Some(h) => format!("{} (heaptrack {h:.2}x)", fmt_ratio(v)),
                None => fmt_ratio(v),
            },
            limit: "≥ 0.95x".into(),
            pass: v.map(|v| v >= 0.95),
            value: v,
        });
    }
    // Peak RSS, everywhere: each asmalloc build against its own raw
    // allocator.
    for r in rows {
        let asm = r.ratio(Cfg::Asm, Cfg::Raw, Metric::Rss);
        let jem = if r.redis {
            None
        } else {
            r.ratio(Cfg::AsmJem, Cfg::Jem, Metric::Rss)
        };
        let worst = [asm, jem].into_iter().flatten().reduce(f64::max);
        let measured = match (asm, jem) {
            (Some(a), Some(j)) => format!("{a:.2}x; jem build {j:.2}x"),
            (Some(a), None) => format!("{a:.2}x"),
            (None, Some(j)) => format!("jem build {j:.2}x"),
            (None, None) => "not measured".into(),
        };
        out.push(Target {
            what: format!("peak RSS, {}: asmalloc / raw", r.short),
            measured,
            limit: "≤ 1.10x".into(),
            pass: worst.map(|w| w <= 1.10),
            value: worst,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(wall: f64, rss: u64, scale: f64) -> Sample {
        Sample {
            usage: Usage {
                wall,
                cpu: wall,
                maxrss_kib: rss,
            },
            out_bytes: 0,
            rps: None,
            scale,
            base_wall: 0.0,
            base_cpu: 0.0,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn scaled_runs_keep_their_start_up_once() {
        // 0.3 s start-up + 0.2 s of work at 1/10: 0.3 + 10 * 0.2 = 2.3 s.
        let mut s = sample(0.5, 1, 10.0);
        s.base_wall = 0.3;
        assert!((Metric::Wall.of(&s).unwrap() - 2.3).abs() < 1e-9);
        // A noisy run faster than the start-up counts as no work.
        s.usage.wall = 0.2;
        assert!((Metric::Wall.of(&s).unwrap() - 0.3).abs() < 1e-9);
        // Full-size runs are taken as they are.
        let f = sample(0.5, 1, 1.0);
        assert_eq!(Metric::Wall.of(&f), Some(0.5));
    }

    #[test]
    fn ratios_are_paired_per_repetition_and_scaled() {
        let mut cells = BTreeMap::new();
        cells.insert(
            Cfg::Raw,
            Cell::Runs(vec![
                sample(1.0, 100, 1.0),
                sample(2.0, 100, 1.0),
                sample(1.0, 100, 1.0),
            ]),
        );
        // Pairs: 1.2, 1.1 (2.2 / 2.0), 1.5.
        cells.insert(
            Cfg::Asm,
            Cell::Runs(vec![
                sample(1.2, 110, 1.0),
                sample(2.2, 120, 1.0),
                sample(1.5, 130, 1.0),
            ]),
        );
        // A 1/10 run: 0.5 s scaled to 5 s.
        cells.insert(
            Cfg::Memcheck,
            Cell::Runs(vec![
                sample(0.5, 100, 10.0),
                sample(0.5, 100, 10.0),
                sample(0.5, 100, 10.0),
            ]),
        );
        cells.insert(Cfg::Heaptrack, Cell::Skipped("not installed".into()));
        let row = Row {
            key: "a".into(),
            short: "a".into(),
            title: "a".into(),
            redis: false,
            cells,
        };
        let r = row.ratio(Cfg::Asm, Cfg::Raw, Metric::Wall).unwrap();
        assert!((r - 1.2).abs() < 1e-9, "{r}");
        let m = row.ratio(Cfg::Memcheck, Cfg::Raw, Metric::Wall).unwrap();
        assert!((m - 5.0).abs() < 1e-9, "{m}");
        let rss = row.ratio(Cfg::Asm, Cfg::Raw, Metric::Rss).unwrap();
        assert!((rss - 1.2).abs() < 1e-9, "{rss}");
        assert_eq!(row.ratio(Cfg::Heaptrack, Cfg::Raw, Metric::Wall), None);
        let t = targets(&[row]);
        let a = t
            .iter()
            .find(|t| t.what.starts_with("C preload, allocator-heavy"))
            .unwrap();
        assert_eq!(a.pass, Some(false));
        assert_eq!(a.measured, "1.20x (CPU 1.20x)");
    }
}
