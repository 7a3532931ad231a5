//! Progressive leak detection: which site's live memory keeps growing.
//!
//! The detector is fed the global net bytes of every site at successive
//! moments (a reporter thread samples them at an interval; `asm_hook` calls
//! add samples too) and gives *verdicts*:
//!
//! * **possible leak** — over the last `window`, the site's *floor* rose:
//!   the window is cut into four equal quarters, the minimum of each quarter
//!   is higher than that of the quarter before (by at least an eighth of the
//!   threshold), and the last quarter's minimum is at least `threshold` bytes
//!   above the first's — at every sample for a quarter window in a row.
//!   Using minima makes the rule blind to peaks: memory that rises and falls
//!   in cycles shorter than a quarter window has the same floor in every
//!   quarter and is never reported, while a leak under such churn is.
//! * **still growing** — a reported site's floor (its minimum over the last
//!   quarter window) has doubled its growth above the baseline since the
//!   last report (so a real leak keeps giving evidence, ever less often).
//! * **never mind** — a reported site fell back: its floor's growth above
//!   the baseline (the first quarter's minimum when it was reported) is below
//!   `nevermind_fraction` of the growth reported. It may be reported again.
//!
//! A rise that lasts longer than the window is indistinguishable from a leak
//! while it lasts; if it was legitimate and memory comes back down, the
//! never-mind verdict follows. Choose the window longer than your program's
//! legitimate build-up phases.
//!
//! The detector is plain data and computation; it allocates (a small history
//! per active site) and belongs on a reporter thread, never on the
//! allocation path.

use std::collections::{HashMap, VecDeque};

/// Sensitivity settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Minimum growth of a site's floor over the window (bytes).
    pub threshold_bytes: u64,
    /// The window (nanoseconds).
    pub window_ns: i64,
    /// Minimum samples in the window before any verdict (at least 4).
    pub min_samples: usize,
    /// A reported site is "never mind" once its growth falls below this
    /// fraction of the growth reported.
    pub nevermind_fraction: f64,
}

impl DetectorConfig {
    /// 4 MiB over 30 s with at least 6 samples: a 1 KiB-per-request leak at
    /// 1000 requests/s (1 MB/s) is reported about 40 s after it starts
    /// (the window, plus a quarter of it to confirm); cycles shorter than
    /// 7.5 s are never reported.
    pub const DEFAULT: DetectorConfig = DetectorConfig {
        threshold_bytes: 4 << 20,
        window_ns: 30_000_000_000,
        min_samples: 6,
        nevermind_fraction: 0.5,
    };
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig::DEFAULT
    }
}

/// What the detector concluded about one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictKind {
    /// The site's floor rose past the threshold over the window.
    PossibleLeak,
    /// A reported site's growth doubled since its last report.
    StillGrowing,
    /// A reported site fell back.
    NeverMind,
}

impl VerdictKind {
    /// `possible_leak`, `still_growing`, `never_mind` (JSON and logs).
    pub const fn name(self) -> &'static str {
        match self {
            VerdictKind::PossibleLeak => "possible_leak",
            VerdictKind::StillGrowing => "still_growing",
            VerdictKind::NeverMind => "never_mind",
        }
    }
}

/// A verdict on one site at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// What was concluded.
    pub kind: VerdictKind,
    /// The site.
    pub site: u16,
    /// When (the sample's time, ns).
    pub time_ns: i64,
    /// The site's net bytes then.
    pub net_bytes: i64,
    /// Growth above the baseline (the floor when first reported); negative
    /// growth never occurs in leak verdicts.
    pub growth_bytes: i64,
    /// The span the growth was measured over (ns).
    pub over_ns: i64,
    /// Growth per second over that span.
    pub rate_bytes_per_s: i64,
}

#[derive(Debug, Default)]
struct Series {
    samples: VecDeque<(i64, i64)>,
    reported: Option<Reported>,
    /// Since when the rising-floor test has passed at every sample: a leak
    /// must pass it for a quarter window in a row (noise passes it now and
    /// then, for a sample or two).
    armed_since: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Reported {
    baseline: i64,
    baseline_time: i64,
    last_growth: i64,
}

/// The detector's state: recent samples of every site seen.
#[derive(Debug, Default)]
pub struct Detector {
    config: DetectorConfig,
    series: HashMap<u16, Series>,
}

impl Detector {
    /// A detector with `config` (`min_samples` is raised to 4).
    pub fn new(mut config: DetectorConfig) -> Detector {
        config.min_samples = config.min_samples.max(4);
        Detector {
            config,
            series: HashMap::new(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> DetectorConfig {
        self.config
    }

    /// Sites currently reported as possible leaks.
    pub fn leaking(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self
            .series
            .iter()
            .filter(|(_, s)| s.reported.is_some())
            .map(|(&id, _)| id)
            .collect();
        v.sort_unstable();
        v
    }

    /// Adds one sample of every site (`(site, net bytes)`) taken at
    /// `time_ns`; sites not listed are taken as unchanged. Returns the
    /// verdicts this sample produced, by site id.
    pub fn observe(
        &mut self,
        time_ns: i64,
        sites: impl IntoIterator<Item = (u16, i64)>,
    ) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        for (site, net) in sites {
            let series = self.series.entry(site).or_default();
            if let Some(v) = step(&self.config, series, site, time_ns, net) {
                verdicts.push(v);
            }
        }
        verdicts.sort_by_key(|v| v.site);
        verdicts
    }
}

fn step(cfg: &DetectorConfig, s: &mut Series, site: u16, now: i64, net: i64) -> Option<Verdict> {
    if s.samples.back().is_some_and(|&(t, _)| t >= now) {
        return None; // time must advance
    }
    s.samples.push_back((now, net));
    while s
        .samples
        .front()
        .is_some_and(|&(t, _)| t < now - cfg.window_ns)
    {
        s.samples.pop_front();
    }
    if let Some(r) = s.reported {
        // Compare floors, not the instantaneous value: churn on top of a
        // leak must neither clear nor re-trigger the verdict.
        let floor = recent_floor(cfg, &s.samples, now);
        let growth = floor - r.baseline;
        let over = now - r.baseline_time;
        let verdict = |kind| Verdict {
            kind,
            site,
            time_ns: now,
            net_bytes: net,
            growth_bytes: growth,
            over_ns: over,
            rate_bytes_per_s: rate(growth, over),
        };
        if (growth as f64) < r.last_growth as f64 * cfg.nevermind_fraction {
            s.reported = None;
            s.armed_since = None;
            return Some(verdict(VerdictKind::NeverMind));
        }
        if growth >= r.last_growth.saturating_mul(2) {
            s.reported = Some(Reported {
                last_growth: growth,
                ..r
            });
            return Some(verdict(VerdictKind::StillGrowing));
        }
        return None;
    }
    let Some((growth, first_min, first_time, growth_rate)) = rising_floor(cfg, &s.samples, now)
    else {
        s.armed_since = None;
        return None;
    };
    let since = *s.armed_since.get_or_insert(now);
    if now - since < cfg.window_ns / 4 {
        return None;
    }
    let over = now - first_time;
    s.reported = Some(Reported {
        baseline: first_min,
        baseline_time: first_time,
        last_growth: growth,
    });
    Some(Verdict {
        kind: VerdictKind::PossibleLeak,
        site,
        time_ns: now,
        net_bytes: net,
        growth_bytes: growth,
        over_ns: over,
        rate_bytes_per_s: growth_rate,
    })
}

/// The minimum over the last quarter window: the site's current floor.
fn recent_floor(cfg: &DetectorConfig, samples: &VecDeque<(i64, i64)>, now: i64) -> i64 {
    samples
        .iter()
        .rev()
        .take_while(|&&(t, _)| t >= now - cfg.window_ns / 4)
        .map(|&(_, v)| v)
        .min()
        .unwrap_or(0)
}

/// If the window's four quarter-minima rise, each by at least an eighth of
/// the threshold and in all by at least the threshold: (floor growth, first
/// quarter's minimum, its time, growth per second between the minima).
fn rising_floor(
    cfg: &DetectorConfig,
    samples: &VecDeque<(i64, i64)>,
    now: i64,
) -> Option<(i64, i64, i64, i64)> {
    if samples.len() < cfg.min_samples {
        return None;
    }
    let start = samples.front()?.0;
    // The history must cover most of the window before judging.
    if now - start < cfg.window_ns * 3 / 4 {
        return None;
    }
    let span = (now - start).max(1);
    let mut mins: [Option<(i64, i64)>; 4] = [None; 4];
    for &(t, v) in samples {
        let q = (((t - start) as i128 * 4 / (span as i128 + 1)) as usize).min(3);
        if mins[q].is_none_or(|(m, _)| v < m) {
            mins[q] = Some((v, t));
        }
    }
    let mins: Vec<(i64, i64)> = mins.into_iter().collect::<Option<Vec<_>>>()?;
    let step = (cfg.threshold_bytes / 8) as i64;
    // The last quarter's floor must also clear three quarters of the first
    // quarter's samples: noise has low minima now and then in every quarter,
    // a leak lifts the whole distribution.
    let mut first: Vec<i64> = samples
        .iter()
        .take_while(|&&(t, _)| ((t - start) as i128 * 4 / (span as i128 + 1)) == 0)
        .map(|&(_, v)| v)
        .collect();
    first.sort_unstable();
    let first_q3 = first[first.len() * 3 / 4];
    let rising = mins.windows(2).all(|w| w[1].0 - w[0].0 >= step.max(1)) && mins[3].0 > first_q3;
    let growth = mins[3].0 - mins[0].0;
    (rising && growth >= cfg.threshold_bytes as i64).then(|| {
        (
            growth,
            mins[0].0,
            mins[0].1,
            rate(growth, mins[3].1 - mins[0].1),
        )
    })
}

fn rate(growth: i64, over_ns: i64) -> i64 {
    if over_ns <= 0 {
        return 0;
    }
    (growth as i128 * 1_000_000_000 / over_ns as i128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const MIB: i64 = 1 << 20;

    fn cfg() -> DetectorConfig {
        DetectorConfig {
            threshold_bytes: 4 << 20,
            window_ns: 30 * S,
            min_samples: 6,
            nevermind_fraction: 0.5,
        }
    }

    /// Feeds one sample per second from `f(second)` and returns the verdicts
    /// as (second, kind).
    fn run(seconds: i64, f: impl Fn(i64) -> i64) -> Vec<(i64, VerdictKind)> {
        let mut d = Detector::new(cfg());
        (0..seconds)
            .flat_map(|t| {
                d.observe(t * S, [(1, f(t))])
                    .into_iter()
                    .map(move |v| (t, v.kind))
            })
            .collect()
    }

    #[test]
    fn a_steady_leak_is_reported_once_the_window_fills_then_keeps_growing() {
        // 1 MB/s: a 1 KiB leak at 1000 requests per second.
        let v = run(120, |t| 50 * MIB + t * 1_000_000);
        assert_eq!(v[0].1, VerdictKind::PossibleLeak);
        assert!((28..=45).contains(&v[0].0), "reported at {}s", v[0].0);
        assert!(
            v.iter()
                .skip(1)
                .all(|(_, k)| *k == VerdictKind::StillGrowing)
        );
        assert!(v.len() >= 2 && v.len() <= 4, "backing off: {v:?}");
    }

    #[test]
    fn a_leak_under_churn_is_reported() {
        // A 0.5 MB/s leak under a 6 MiB sawtooth with a 4 s period.
        let v = run(120, |t| 100 * MIB + t * 500_000 + (t % 4) * 2 * MIB);
        assert_eq!(
            v.first().map(|x| x.1),
            Some(VerdictKind::PossibleLeak),
            "{v:?}"
        );
        assert!(
            !v.iter().any(|(_, k)| *k == VerdictKind::NeverMind),
            "{v:?}"
        );
    }

    #[test]
    fn a_sawtooth_is_never_reported() {
        for period in [2, 3, 5, 7] {
            let v = run(300, |t| 10 * MIB + (t % period) * 8 * MIB);
            assert_eq!(v, vec![], "period {period}s");
        }
    }

    #[test]
    fn noise_is_never_reported() {
        // Uniform noise four times the threshold wide, 200 runs of 10 minutes.
        for seed in 1..=200u64 {
            let mut x = seed;
            let noise: Vec<i64> = (0..600)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % (16 << 20)) as i64
                })
                .collect();
            assert_eq!(
                run(600, |t| 64 * MIB + noise[t as usize]),
                vec![],
                "seed {seed}"
            );
        }
    }

    #[test]
    fn a_flat_site_and_a_single_step_are_not_leaks() {
        assert_eq!(run(200, |_| 7 * MIB), vec![]);
        // One jump (a cache warming up) then flat: the floor rises once, not
        // in every quarter.
        assert_eq!(run(200, |t| if t < 50 { MIB } else { 40 * MIB }), vec![]);
    }

    #[test]
    fn a_temporary_rise_is_reported_then_never_minded() {
        // Rises 2 MB/s for 60 s, then falls back to where it started.
        let v = run(200, |t| {
            if t < 60 {
                t * 2_000_000
            } else if t < 90 {
                120_000_000 - (t - 60) * 4_000_000
            } else {
                0
            }
        });
        let kinds: Vec<VerdictKind> = v.iter().map(|x| x.1).collect();
        assert_eq!(kinds.first(), Some(&VerdictKind::PossibleLeak), "{v:?}");
        assert_eq!(kinds.last(), Some(&VerdictKind::NeverMind), "{v:?}");
        let nm = v.iter().find(|x| x.1 == VerdictKind::NeverMind).unwrap().0;
        assert!((60..90).contains(&nm), "never mind once it fell: {v:?}");
    }

    #[test]
    fn verdicts_carry_growth_window_and_rate() {
        let mut d = Detector::new(cfg());
        let mut first = None;
        for t in 0..60 {
            for v in d.observe(t * S, [(9, t * 1_000_000), (10, 5)]) {
                first.get_or_insert(v);
            }
        }
        let v = first.unwrap();
        assert_eq!((v.site, v.kind), (9, VerdictKind::PossibleLeak));
        assert!(v.growth_bytes >= 18_000_000, "{v:?}");
        assert!((900_000..=1_100_000).contains(&v.rate_bytes_per_s), "{v:?}");
        assert!(v.over_ns >= 20 * S, "{v:?}");
        assert_eq!(d.leaking(), vec![9]);
    }
}
