//! Progressive leak detection: which site's live memory keeps growing.
//!
//! The detector is fed the global net bytes of every site at successive
//! moments (a reporter thread samples them at an interval; `asm_hook` calls
//! add samples too) and gives *verdicts*. It judges a site's *floor*: the
//! minimum of its samples over a stretch of time. Memory that rises and
//! falls in cycles shorter than the stretch has the same floor in every
//! stretch; a leak lifts it.
//!
//! * **possible leak** — some window ending now, cut into four quarters by
//!   time, has quarter minima that rise, each step by at least an eighth of
//!   the threshold and an eighth of the whole growth (a steady rise, not one
//!   jump nor a curve flattening out), the last at least one threshold above
//!   the first and above three quarters of the first quarter's samples. The
//!   evidence must also be strong enough for its size: the growth times the
//!   window's samples must reach [`FULL_CONFIDENCE_SAMPLES`] thresholds (16
//!   samples need one threshold, 8 need two, 6 — the least, `min_samples` —
//!   2.7), and be at least [`NOISE_FACTOR`] (4) times the site's *jitter*
//!   (the median change between its consecutive samples). Windows are tried
//!   from the shortest holding `min_samples` samples, each about a fifth
//!   longer, up to [`MAX_WINDOWS`] `window`s (16 min at the defaults); the
//!   shortest that passes is the evidence. It must pass at every sample for
//!   a quarter of that window (at most a quarter of `window`, at least one
//!   sample more) before the verdict. So a fast leak is named after a few
//!   samples and a slow one once its floor has risen by the threshold.
//! * **still growing** — a reported site's floor (its minimum over the last
//!   quarter of the window it was named with) has doubled its growth above
//!   the baseline (the first quarter's minimum) since the last report.
//! * **never mind** — a reported site *fell back* (its floor's growth is
//!   below `nevermind_fraction` of the growth last reported) or *stopped
//!   growing* (over the window it was named with, and at least as long as
//!   its reported rate takes to add one threshold plus twice
//!   [`NOISE_FACTOR`] jitters, its floor rose by less than half a
//!   threshold). Either must hold at two samples in a row, so a program
//!   that frees everything in its last moments (the monitor's last sample
//!   is taken in the library's destructor) keeps its verdicts. After a never
//!   mind the site's windows must be at least twice as long as the episode
//!   retracted (baseline to never mind): a saw-tooth is named once, not
//!   every cycle. The site may be named again.
//!
//! A rise fast enough to be named before it ends (a 1 MiB/s rise lasting
//! 12 s, at the defaults) cannot be told from a leak while it lasts; if it
//! was legitimate, the never mind follows when memory comes back down or
//! stays flat. [`DetectorConfig::time_to_verdict`] gives the delay for a
//! steady rate; docs/leak-detection.md has the measured figures and the
//! worst cases.
//!
//! For the end of a run (`asmalloc run`'s summary, from the log),
//! [`teardown_start`] recognises a program freeing everything while shutting
//! down, and [`short_run_growth`] a site that grew by more than the
//! threshold over a run too short for a verdict.
//!
//! The detector is plain data and computation; it allocates (per site whose
//! net bytes vary, at most [`MAX_POINTS`] points of 48 bytes: the newest
//! [`RAW_POINTS`] samples as they are and older ones merged in pairs, keeping
//! their minimum; a site that never changed keeps one) and belongs on a
//! reporter thread, never on the allocation path.

use std::collections::{HashMap, VecDeque};

/// A window with this many samples names a growth of one threshold; a
/// window with fewer needs proportionally more growth (`growth × samples ≥
/// threshold × 16`).
pub const FULL_CONFIDENCE_SAMPLES: i64 = 16;

/// A growth must be at least this many times the site's jitter (the median
/// change between its consecutive samples).
pub const NOISE_FACTOR: i64 = 4;

/// The longest window tried, in `window`s.
pub const MAX_WINDOWS: i64 = 32;

/// The history kept per site, in points: the newest [`RAW_POINTS`] are
/// single samples, older ones are merged in pairs (their minimum kept).
pub const MAX_POINTS: usize = 128;

/// The newest samples kept unmerged.
pub const RAW_POINTS: usize = 64;

/// Sensitivity settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// The growth of a site's floor that counts as a leak (bytes), with
    /// [`FULL_CONFIDENCE_SAMPLES`] samples; fewer samples need more.
    pub threshold_bytes: u64,
    /// The reference window (nanoseconds): confirming a verdict never takes
    /// longer than a quarter of it, and windows up to [`MAX_WINDOWS`] times
    /// it are tried.
    pub window_ns: i64,
    /// Minimum samples in a window before any verdict (at least 4).
    pub min_samples: usize,
    /// A reported site is "never mind" once its growth falls below this
    /// fraction of the growth reported (or of what its rate would have
    /// brought by now).
    pub nevermind_fraction: f64,
}

impl DetectorConfig {
    /// 4 MiB, 30 s, at least 6 samples. Sampled every second, a steady leak
    /// is named 7.5 s after it starts at 5 MiB/s or more, 8.5 s at 2 MiB/s,
    /// 11.5 s at 1 MiB/s, 62.5 s at 100 KiB/s, 9 min at 10 KiB/s, and below
    /// 6 KiB/s (20 MiB an hour) never (`asmalloc/tests/detector_timing.rs`;
    /// [`Self::time_to_verdict`]).
    pub const DEFAULT: DetectorConfig = DetectorConfig {
        threshold_bytes: 4 << 20,
        window_ns: 30_000_000_000,
        min_samples: 6,
        nevermind_fraction: 0.5,
    };

    /// The longest window tried (ns).
    pub fn max_window_ns(&self) -> i64 {
        self.window_ns.saturating_mul(MAX_WINDOWS)
    }

    /// How long after it starts a clean leak of `rate` bytes per second,
    /// sampled every `interval_ns`, is named (ns; from the first sample
    /// that shows growth to the verdict), or `None` when it is too slow to
    /// be named within [`Self::max_window_ns`]. Computed by running the
    /// detector on the ideal series.
    pub fn time_to_verdict(&self, rate_bytes_per_s: f64, interval_ns: i64) -> Option<i64> {
        if rate_bytes_per_s.is_nan() || rate_bytes_per_s <= 0.0 || interval_ns <= 0 {
            return None;
        }
        let mut d = Detector::new(*self);
        let limit = self.max_window_ns().saturating_add(self.window_ns);
        // At most TIME_TO_VERDICT_STEPS samples: a finer interval (from a
        // log whose samples are nanoseconds apart) is computed at that
        // resolution instead of taking minutes.
        let interval_ns = interval_ns.max(limit / TIME_TO_VERDICT_STEPS);
        let mut t = 0i64;
        while t <= limit {
            let net = (rate_bytes_per_s * t as f64 / 1e9) as i64;
            if d.observe(t, [(1, net)])
                .iter()
                .any(|v| v.kind == VerdictKind::PossibleLeak)
            {
                return Some(t);
            }
            t = match t.checked_add(interval_ns) {
                Some(next) => next,
                None => break,
            };
        }
        None
    }
}

/// The most samples [`DetectorConfig::time_to_verdict`] simulates.
const TIME_TO_VERDICT_STEPS: i64 = 100_000;

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig::DEFAULT
    }
}

/// What the detector concluded about one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictKind {
    /// The site's floor rose past the threshold over a window.
    PossibleLeak,
    /// A reported site's growth doubled since its last report.
    StillGrowing,
    /// A reported site fell back or stopped growing.
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
///
/// `rate_bytes_per_s` is always `growth_bytes` over `over_ns` (rounded
/// toward zero): a possible leak's growth is from its first quarter's
/// minimum to its last quarter's, over the time between them; still
/// growing and never mind measure the floor now against the baseline (the
/// first quarter's minimum when first named), over the time since then.
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
    /// Growth of the floor above the baseline (may be negative in a never
    /// mind).
    pub growth_bytes: i64,
    /// The span the growth was measured over (ns).
    pub over_ns: i64,
    /// `growth_bytes` per second over `over_ns`.
    pub rate_bytes_per_s: i64,
    /// The growth the site's previous verdict reported (still growing and
    /// never mind; 0 for a possible leak).
    pub reported_growth_bytes: i64,
}

impl Verdict {
    /// A never mind because the site fell back (its growth is below
    /// `fraction` of the growth reported before), not because it stopped
    /// growing. With the log's verdicts: the previous verdict's growth, and
    /// [`DetectorConfig::nevermind_fraction`].
    pub fn fell_back(growth_bytes: i64, reported_growth_bytes: i64, fraction: f64) -> bool {
        (growth_bytes as f64) < reported_growth_bytes as f64 * fraction
    }
}

/// A stretch of samples: one sample, or older ones merged.
#[derive(Debug, Clone, Copy)]
struct Point {
    /// First and last sample times.
    t0: i64,
    t1: i64,
    /// The minimum and its time.
    min: i64,
    t_min: i64,
    /// The maximum.
    max: i64,
    /// Samples merged.
    n: u32,
}

#[derive(Debug, Default)]
struct Series {
    points: VecDeque<Point>,
    reported: Option<Reported>,
    /// Since when the rule has passed at every sample.
    armed_since: Option<i64>,
    /// A never mind seen at the last sample, waiting for the next to
    /// confirm it.
    pending_never_mind: bool,
    /// Windows shorter than this are not tried (set after a never mind).
    min_span: i64,
}

#[derive(Debug, Clone, Copy)]
struct Reported {
    baseline: i64,
    baseline_time: i64,
    /// Growth and time of the last report (possible leak or still growing).
    last_growth: i64,
    last_time: i64,
    /// The floor is the minimum over this long (a quarter of the window
    /// the site was named with).
    floor_span: i64,
}

/// The passing window: (growth, first quarter's minimum and its time, last
/// quarter's minimum's time, the window's span).
#[derive(Debug, Clone, Copy)]
struct Evidence {
    growth: i64,
    first_min: i64,
    first_time: i64,
    last_time: i64,
    span: i64,
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

fn rate(growth: i64, over_ns: i64) -> i64 {
    if over_ns <= 0 {
        return 0;
    }
    (growth as i128 * 1_000_000_000 / over_ns as i128) as i64
}

/// A verdict at `now` (growth over `over`; `reported`: the growth reported
/// before).
struct At {
    site: u16,
    now: i64,
    net: i64,
}

impl At {
    fn verdict(&self, kind: VerdictKind, growth: i64, over: i64, reported: i64) -> Verdict {
        Verdict {
            kind,
            site: self.site,
            time_ns: self.now,
            net_bytes: self.net,
            growth_bytes: growth,
            over_ns: over,
            rate_bytes_per_s: rate(growth, over),
            reported_growth_bytes: reported,
        }
    }
}

fn push(cfg: &DetectorConfig, s: &mut Series, now: i64, net: i64) {
    // A site that has not changed over its whole history keeps one point:
    // nothing can come of it until it moves.
    if s.points.iter().all(|p| p.min == net && p.max == net) {
        s.points.clear();
    }
    s.points.push_back(Point {
        t0: now,
        t1: now,
        min: net,
        t_min: now,
        max: net,
        n: 1,
    });
    let horizon = now.saturating_sub(cfg.max_window_ns());
    while s.points.len() > 1 && s.points.front().is_some_and(|p| p.t1 < horizon) {
        s.points.pop_front();
    }
    if s.points.len() > MAX_POINTS {
        // Merge the adjacent pair of old points holding the fewest samples:
        // older history keeps an even, coarser resolution.
        let old = s.points.len() - RAW_POINTS;
        let i = (0..old - 1)
            .min_by_key(|&i| s.points[i].n + s.points[i + 1].n)
            .unwrap_or(0);
        let (a, b) = (s.points[i], s.points[i + 1]);
        s.points[i] = Point {
            t0: a.t0,
            t1: b.t1,
            min: a.min.min(b.min),
            t_min: if b.min < a.min { b.t_min } else { a.t_min },
            max: a.max.max(b.max),
            n: a.n + b.n,
        };
        s.points.remove(i + 1);
    }
}

fn step(cfg: &DetectorConfig, s: &mut Series, site: u16, now: i64, net: i64) -> Option<Verdict> {
    if s.points.back().is_some_and(|p| p.t1 >= now) {
        return None; // time must advance
    }
    push(cfg, s, now, net);
    let at = At { site, now, net };
    if let Some(r) = s.reported {
        return judge_reported(cfg, s, r, &at);
    }
    let Some(e) = rising_floor(cfg, s, now) else {
        s.armed_since = None;
        return None;
    };
    let since = *s.armed_since.get_or_insert(now);
    let confirm = (e.span / 4).min(cfg.window_ns / 4);
    if now == since || now - since < confirm {
        return None;
    }
    s.reported = Some(Reported {
        baseline: e.first_min,
        baseline_time: e.first_time,
        last_growth: e.growth,
        last_time: now,
        floor_span: (e.span / 4).max(1),
    });
    Some(at.verdict(
        VerdictKind::PossibleLeak,
        e.growth,
        e.last_time - e.first_time,
        0,
    ))
}

/// Still growing, never mind, or nothing, for a reported site.
fn judge_reported(cfg: &DetectorConfig, s: &mut Series, r: Reported, at: &At) -> Option<Verdict> {
    let now = at.now;
    // Compare floors, not the instantaneous value: churn on top of a leak
    // must neither clear nor re-trigger the verdict.
    let (floor, floor_time) = floor_since(&s.points, now - r.floor_span);
    let growth = floor - r.baseline;
    let over = now - r.baseline_time;
    let fell_back = Verdict::fell_back(growth, r.last_growth, cfg.nevermind_fraction);
    // Stopped: over the window it was named with, and at least as long as
    // the reported rate takes to add a threshold and stand well out of the
    // site's jitter, the floor rose by less than half a threshold.
    let rate_reported = r.last_growth as f64 / (r.last_time - r.baseline_time).max(1) as f64;
    let expected =
        cfg.threshold_bytes as f64 + 2.0 * NOISE_FACTOR as f64 * jitter(&s.points) as f64;
    let span =
        ((expected / rate_reported.max(1e-9)) as i64).clamp(4 * r.floor_span, cfg.max_window_ns());
    let quarter = span / 4;
    let stopped = now - span - quarter >= r.baseline_time
        && floor_between(&s.points, now - span - quarter, now - span).is_some_and(|then| {
            floor_since(&s.points, now - quarter).0.saturating_sub(then)
                < (cfg.threshold_bytes / 2) as i64
        });
    if fell_back || stopped {
        if !s.pending_never_mind {
            s.pending_never_mind = true;
            return None;
        }
        s.pending_never_mind = false;
        s.reported = None;
        s.armed_since = None;
        s.min_span = s
            .min_span
            .max(over.saturating_mul(2))
            .min(cfg.max_window_ns());
        return Some(at.verdict(VerdictKind::NeverMind, growth, over, r.last_growth));
    }
    s.pending_never_mind = false;
    if growth >= r.last_growth.saturating_mul(2) {
        s.reported = Some(Reported {
            last_growth: growth,
            last_time: now,
            ..r
        });
        // Measured to the floor's own time: the growth and the span agree.
        let over = (floor_time - r.baseline_time).max(1);
        return Some(at.verdict(VerdictKind::StillGrowing, growth, over, r.last_growth));
    }
    None
}

/// The minimum of the points that end at or after `since` (the site's
/// floor over that stretch), and its time.
fn floor_since(points: &VecDeque<Point>, since: i64) -> (i64, i64) {
    points
        .iter()
        .rev()
        .take_while(|p| p.t1 >= since)
        .map(|p| (p.min, p.t_min))
        .min_by_key(|&(min, t)| (min, std::cmp::Reverse(t)))
        .or_else(|| points.back().map(|p| (p.min, p.t_min)))
        .unwrap_or((0, since))
}

/// The minimum of the points that overlap `from..=to`, if any.
fn floor_between(points: &VecDeque<Point>, from: i64, to: i64) -> Option<i64> {
    points
        .iter()
        .filter(|p| p.t1 >= from && p.t0 <= to)
        .map(|p| p.min)
        .min()
}

/// The shortest window ending now that passes the rising-floor rule.
fn rising_floor(cfg: &DetectorConfig, s: &Series, now: i64) -> Option<Evidence> {
    let points = &s.points;
    let len = points.len();
    let threshold = cfg.threshold_bytes.max(1) as i64;
    // No window can show more growth than the newest sample above the
    // window's lowest point (its last quarter's minimum is at most the
    // newest sample).
    let newest = points.back()?.min;
    let lowest = points.iter().map(|p| p.min).min()?;
    if newest - lowest < threshold {
        return None;
    }
    let least = threshold.max(jitter(points).saturating_mul(NOISE_FACTOR));
    if newest - lowest < least {
        return None;
    }
    let min_samples = cfg.min_samples.max(4);
    let mut m = min_samples.min(len);
    // The lowest point and the samples of the window points[len - m..],
    // extended as m grows.
    let (mut first, mut window_lowest, mut samples) = (len, i64::MAX, 0i64);
    loop {
        while first > len - m {
            first -= 1;
            window_lowest = window_lowest.min(points[first].min);
            samples += i64::from(points[first].n);
        }
        if m >= min_samples {
            let start = points[len - m].t0;
            let span = now - start;
            if span > cfg.max_window_ns() {
                return None;
            }
            // The most growth this window can show against what it needs.
            let needed = least.max(
                (threshold as i128 * FULL_CONFIDENCE_SAMPLES as i128 / samples.max(1) as i128)
                    as i64,
            );
            if span >= s.min_span
                && newest - window_lowest >= needed
                && let Some(e) =
                    window_passes(cfg, points.range(len - m..), start, now, threshold, least)
            {
                return Some(e);
            }
        }
        if m == len {
            return None;
        }
        m = (m + (m / 5).max(1)).min(len);
    }
}

/// The site's jitter: the median change between consecutive samples over
/// its recent history (the unmerged points).
fn jitter(points: &VecDeque<Point>) -> i64 {
    let mut diffs: Vec<i64> = points
        .iter()
        .zip(points.iter().skip(1))
        .filter(|(a, b)| a.n == 1 && b.n == 1)
        .map(|(a, b)| (b.min - a.min).abs())
        .collect();
    if diffs.is_empty() {
        return 0;
    }
    let mid = diffs.len() / 2;
    *diffs.select_nth_unstable(mid).1
}

/// The rule on one window (points from `start` to `now`).
fn window_passes<'a>(
    cfg: &DetectorConfig,
    window: impl Iterator<Item = &'a Point> + Clone,
    start: i64,
    now: i64,
    threshold: i64,
    least: i64,
) -> Option<Evidence> {
    let span = (now - start).max(1);
    let quarter = |t: i64| (((t - start) as i128 * 4 / (span as i128 + 1)) as usize).min(3);
    let mut mins: [Option<(i64, i64)>; 4] = [None; 4];
    let mut samples = 0i64;
    for p in window.clone() {
        let q = quarter(p.t_min);
        if mins[q].is_none_or(|(m, _)| p.min < m) {
            mins[q] = Some((p.min, p.t_min));
        }
        samples += i64::from(p.n);
    }
    if samples < cfg.min_samples as i64 {
        return None;
    }
    let [Some(m1), Some(m2), Some(m3), Some(m4)] = mins else {
        return None;
    };
    let growth = m4.0 - m1.0;
    if growth < threshold
        || (growth as i128) * (samples as i128)
            < (threshold as i128) * (FULL_CONFIDENCE_SAMPLES as i128)
    {
        return None;
    }
    // Every quarter adds a share of the growth: a steady rise, not one step
    // nor a curve flattening out (a cache filling up).
    let step = (threshold / 8).max(growth / 8).max(1);
    if m2.0 - m1.0 < step || m3.0 - m2.0 < step || m4.0 - m3.0 < step {
        return None;
    }
    // `least`: the threshold, and NOISE_FACTOR jitters.
    if growth < least {
        return None;
    }
    // The last quarter's floor must also clear three quarters of the first
    // quarter's samples: noise has low minima now and then in every quarter,
    // a leak lifts the whole distribution. (A merged point counts as its
    // maximum: stricter.)
    let mut first: Vec<i64> = window
        .take_while(|p| quarter(p.t_min) == 0)
        .map(|p| if p.n == 1 { p.min } else { p.max })
        .collect();
    first.sort_unstable();
    let first_q3 = *first.get(first.len() * 3 / 4)?;
    if m4.0 <= first_q3 {
        return None;
    }
    Some(Evidence {
        growth,
        first_min: m1.0,
        first_time: m1.1,
        last_time: m4.1,
        span,
    })
}

// ---------------------------------------------------------------------------
// Judging the end of a run (from a log: `asmalloc run`'s summary).

/// Where a program's teardown starts, if its samples end with one: the index
/// of the last sample before the process's total net bytes fell at every
/// sample (each time by more than an eighth of the threshold), the fall
/// taking at least half of the total and at least one threshold, and ending
/// at most [`TEARDOWN_TAIL_NS`] (or two samples) before the last sample —
/// the program may take a moment to exit once it has freed everything. The
/// sites' state at that sample is the program's state before it began
/// freeing everything (`lua_close`, destructors at exit).
///
/// `totals` are the process's (time, total net bytes) samples in order.
pub fn teardown_start(cfg: &DetectorConfig, totals: &[(i64, i64)]) -> Option<usize> {
    let last = totals.len().checked_sub(1)?;
    let tolerance = (cfg.threshold_bytes / 8) as i64;
    let (end_time, end_total) = totals[last];
    // Saturating arithmetic throughout: the samples come from a log file,
    // which may hold any number.
    let gap = totals
        .get(last.wrapping_sub(1))
        .map_or(0, |p| end_time.saturating_sub(p.0));
    let tail = TEARDOWN_TAIL_NS.max(gap.saturating_mul(2));
    // The quiet tail after the fall.
    let mut e = last;
    while e > 0
        && totals[e - 1].1.saturating_sub(end_total).saturating_abs() <= tolerance
        && end_time.saturating_sub(totals[e - 1].0) <= tail
    {
        e -= 1;
    }
    // The fall.
    let mut s = e;
    while s > 0 && totals[s - 1].1 > totals[s].1.saturating_add(tolerance) {
        s -= 1;
    }
    if s == e {
        return None;
    }
    let before = totals[s].1;
    let fall = before.saturating_sub(end_total);
    (fall >= cfg.threshold_bytes as i64 && end_total <= before / 2).then_some(s)
}

/// How long a program may stay quiet after freeing everything, before its
/// last sample, for the fall to still count as its teardown.
pub const TEARDOWN_TAIL_NS: i64 = 2_000_000_000;

/// A site that grew steadily over a run too short for a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortRun {
    /// Growth from its first sample to its last (bytes).
    pub growth_bytes: i64,
    /// Over this long (ns).
    pub over_ns: i64,
    /// `growth_bytes` per second over `over_ns`.
    pub rate_bytes_per_s: i64,
    /// How long a run at that rate needs for a verdict (ns), from
    /// [`DetectorConfig::time_to_verdict`]; `None` when the rate is too
    /// slow for any window.
    pub needed_ns: Option<i64>,
}

/// When a site's samples (time, net bytes; the run's, up to its teardown)
/// grew monotonically — never falling more than an eighth of the threshold
/// below their running maximum, ending within that of it — by more than the
/// threshold, over less time than a verdict needs at that rate: the growth
/// and what a verdict would need. `interval_ns` is the sampling interval.
pub fn short_run_growth(
    cfg: &DetectorConfig,
    samples: &[(i64, i64)],
    interval_ns: i64,
) -> Option<ShortRun> {
    let (&(t0, v0), &(t1, v1)) = (samples.first()?, samples.last()?);
    let tolerance = (cfg.threshold_bytes / 8) as i64;
    let mut peak = v0;
    for &(_, v) in samples {
        if v < peak.saturating_sub(tolerance) {
            return None;
        }
        peak = peak.max(v);
    }
    // Saturating: the samples come from a log file.
    let growth = v1.saturating_sub(v0);
    let over = t1.saturating_sub(t0);
    if growth <= cfg.threshold_bytes as i64 || v1 < peak.saturating_sub(tolerance) || over <= 0 {
        return None;
    }
    let rate_bytes_per_s = rate(growth, over);
    let needed_ns = cfg.time_to_verdict(rate_bytes_per_s as f64, interval_ns.max(1));
    if needed_ns.is_some_and(|n| n <= over) {
        return None; // long enough: the detector saw it and judged it
    }
    Some(ShortRun {
        growth_bytes: growth,
        over_ns: over,
        rate_bytes_per_s,
        needed_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const MIB: i64 = 1 << 20;

    // Found by the log_reader fuzz target (fuzz/corpus/log_reader/
    // seed-extremes): samples read from a log may hold any i64, and the
    // end-of-run judgement overflowed on them.
    #[test]
    fn end_of_run_judgements_take_any_numbers_from_a_log() {
        let cfg = DetectorConfig::DEFAULT;
        let extremes = [
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
            (0, i64::MAX),
            (i64::MAX, i64::MAX),
        ];
        let _ = teardown_start(&cfg, &extremes);
        assert_eq!(
            teardown_start(&cfg, &[(0, i64::MAX), (S, 0), (2 * S, 0)]),
            Some(0),
            "a fall from the largest total is a teardown"
        );
        assert_eq!(
            short_run_growth(&cfg, &[(i64::MAX, 0), (i64::MIN, i64::MAX)], S),
            None
        );
        let short = short_run_growth(&cfg, &[(0, i64::MIN), (1, i64::MAX)], 1)
            .expect("the largest growth in 1 ns is too short for a verdict");
        assert_eq!((short.growth_bytes, short.over_ns), (i64::MAX, 1));
    }

    // The same log could ask for a verdict's delay at a 1 ns sampling
    // interval: hundreds of billions of simulated samples before the limit.
    #[test]
    fn time_to_verdict_at_a_nanosecond_interval_is_bounded() {
        let cfg = DetectorConfig::DEFAULT;
        let fine = cfg
            .time_to_verdict(10.0 * MIB as f64, 1)
            .expect("a fast leak is named");
        let coarse = cfg
            .time_to_verdict(
                10.0 * MIB as f64,
                cfg.max_window_ns().saturating_add(cfg.window_ns) / 100_000,
            )
            .expect("named");
        assert_eq!(
            fine, coarse,
            "a finer interval is computed at the bounded resolution"
        );
        assert_eq!(cfg.time_to_verdict(f64::MAX, i64::MAX), None);
        assert!(cfg.time_to_verdict(1e18, 1).is_some());
    }

    /// Feeds one sample per second from `f(second)` and returns the verdicts
    /// as (second, kind).
    fn run(seconds: i64, f: impl Fn(i64) -> i64) -> Vec<(i64, VerdictKind)> {
        let mut d = Detector::new(DetectorConfig::DEFAULT);
        (0..seconds)
            .flat_map(|t| {
                d.observe(t * S, [(1, f(t))])
                    .into_iter()
                    .map(move |v| (t, v.kind))
            })
            .collect()
    }

    #[test]
    fn verdicts_carry_growth_span_and_the_rate_between_them() {
        let mut d = Detector::new(DetectorConfig::DEFAULT);
        let mut all = Vec::new();
        for t in 0..120 {
            all.extend(d.observe(t * S, [(9, t * 1_000_000), (10, 5)]));
        }
        let v = all[0];
        assert_eq!((v.site, v.kind), (9, VerdictKind::PossibleLeak));
        assert!(v.growth_bytes >= 4 * MIB, "{v:?}");
        for v in &all {
            assert_eq!(v.rate_bytes_per_s, rate(v.growth_bytes, v.over_ns), "{v:?}");
        }
        assert!((900_000..=1_100_000).contains(&v.rate_bytes_per_s), "{v:?}");
        assert_eq!(d.leaking(), vec![9]);
    }

    #[test]
    fn a_flat_site_and_a_single_step_are_not_leaks() {
        assert_eq!(run(200, |_| 7 * MIB), vec![]);
        assert_eq!(run(200, |t| if t < 50 { MIB } else { 40 * MIB }), vec![]);
    }

    #[test]
    fn history_stays_bounded() {
        let mut d = Detector::new(DetectorConfig::DEFAULT);
        for t in 0..5000 {
            d.observe(t * S, [(1, (t % 7) * MIB)]);
        }
        assert!(d.series[&1].points.len() <= MAX_POINTS);
        let covered = d.series[&1].points.back().unwrap().t1 - d.series[&1].points[0].t0;
        assert!(covered > 10 * 60 * S, "{covered}");
    }

    #[test]
    fn teardown_is_the_final_fall() {
        let cfg = DetectorConfig::DEFAULT;
        let flat = [(0, 50 * MIB), (1, 60 * MIB), (2, 70 * MIB)];
        assert_eq!(teardown_start(&cfg, &flat), None);
        let freed = [(0, 50 * MIB), (1, 60 * MIB), (2, 70 * MIB), (3, 0)];
        assert_eq!(teardown_start(&cfg, &freed), Some(2));
        let gradual = [(0, 50 * MIB), (1, 70 * MIB), (2, 40 * MIB), (3, 10 * MIB)];
        assert_eq!(teardown_start(&cfg, &gradual), Some(1));
        // A small dip is not a teardown.
        let dip = [(0, 50 * MIB), (1, 70 * MIB), (2, 66 * MIB)];
        assert_eq!(teardown_start(&cfg, &dip), None);
        // Quiet for a moment after freeing: still the teardown; quiet for
        // long: a fall while running.
        let ms = S / 10;
        let quiet: Vec<(i64, i64)> = [50, 60, 70, 1, 1, 1, 1]
            .iter()
            .enumerate()
            .map(|(i, &m)| (i as i64 * ms, m * MIB))
            .collect();
        assert_eq!(teardown_start(&cfg, &quiet), Some(2));
        let long: Vec<(i64, i64)> = [50, 60, 70, 1, 1, 1, 1, 1]
            .iter()
            .enumerate()
            .map(|(i, &m)| (i as i64 * S, m * MIB))
            .collect();
        assert_eq!(teardown_start(&cfg, &long), None);
    }

    #[test]
    fn a_short_run_that_grew_is_noted_with_the_time_a_verdict_needs() {
        let cfg = DetectorConfig::DEFAULT;
        // 3 s at 5 MiB/s: too short.
        let s: Vec<(i64, i64)> = (0..=3).map(|t| (t * S, t * 5 * MIB)).collect();
        let r = short_run_growth(&cfg, &s, S).unwrap();
        assert_eq!(r.growth_bytes, 15 * MIB);
        assert_eq!(r.rate_bytes_per_s, 5 * MIB);
        assert!(r.needed_ns.unwrap() > 3 * S, "{r:?}");
        // Long enough for a verdict at that rate: not a short run.
        let s: Vec<(i64, i64)> = (0..=30).map(|t| (t * S, t * 5 * MIB)).collect();
        assert_eq!(short_run_growth(&cfg, &s, S), None);
        // Not monotonic, or not enough growth.
        let saw: Vec<(i64, i64)> = (0..=5).map(|t| (t * S, (t % 3) * 8 * MIB)).collect();
        assert_eq!(short_run_growth(&cfg, &saw, S), None);
        let small: Vec<(i64, i64)> = (0..=3).map(|t| (t * S, t * MIB)).collect();
        assert_eq!(short_run_growth(&cfg, &small, S), None);
    }
}
