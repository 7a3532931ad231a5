//! `asmalloc run --budget 'GLOB=RATE'`: fail a soak test or a CI job when a
//! site's live memory grows faster than it may.
//!
//! # What is measured
//!
//! A site's *floor*, as the leak detector judges it (`asmalloc::detector`):
//! the minimum of its net bytes over a stretch of time, so memory that
//! rises and falls within the stretch (requests in flight, buffers reused)
//! does not count, and memory that stays does. The run — from the first
//! sample after `--budget-warmup` to the last before the program's teardown
//! (a final fall freeing most of its memory, `detector::teardown_start`) —
//! is cut into four quarters by time; the growth is the last quarter's
//! floor minus the first quarter's, over the time between the quarters'
//! middles (three quarters of the run). A site exceeds its budget when that
//! growth is more than its rate allows over that time; with a rate of `0`,
//! when its floor grew at all. At least [`MIN_SAMPLES`] samples are needed.
//!
//! # Which budget applies
//!
//! Each `GLOB` is matched (`globset`, `*` matching any characters, `/`
//! included) against the site's `FILE:LINE`, its file's last component with
//! the line (`cache.c:30`), its function (`cache_put`), and `site ID`. The
//! last `--budget` whose glob matches one of them is the site's budget, so
//! general rules go first and exceptions after (`--budget '*=1MiB/min'
//! --budget 'cache.c:*=0'`). A site no glob matches has no budget.
//!
//! # Exit status
//!
//! The program's own failure wins: a non-zero status (or a signal) is
//! passed through as without `--budget`. When it exited 0: [`EXCEEDED`] (3)
//! if any site exceeded its budget, 2 if the budget could not be judged (no
//! log, or too few samples), else 0.

use std::fmt;
use std::path::Path;

use globset::{Glob, GlobMatcher};

use asmalloc::detector::{self, DetectorConfig};

use crate::log::{Log, SiteSeries, human};

/// The exit status of a run whose program succeeded but a site exceeded
/// its budget.
pub(crate) const EXCEEDED: u8 = 3;

/// The exit status when the budget could not be judged.
pub(crate) const CANNOT_JUDGE: u8 = 2;

/// Samples needed (after the warm-up) to judge a budget: one per quarter.
pub(crate) const MIN_SAMPLES: usize = 4;

/// One `--budget GLOB=RATE`.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// As given.
    pub text: String,
    matcher: GlobMatcher,
    /// Bytes per second allowed (0: no growth).
    pub bytes_per_s: f64,
}

impl Rule {
    fn matches(&self, candidates: &[String]) -> bool {
        candidates.iter().any(|c| self.matcher.is_match(c))
    }
}

/// Parses `GLOB=RATE` (clap's value parser for `--budget`).
pub(crate) fn parse_rule(text: &str) -> Result<Rule, String> {
    let (glob, rate) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("'{text}' is not GLOB=RATE (e.g. '*=1MiB/min', 'cache.c:*=0')"))?;
    if glob.is_empty() {
        return Err(format!(
            "'{text}' has no glob before '=' (use '*' for every site)"
        ));
    }
    let matcher = Glob::new(glob)
        .map_err(|e| format!("bad glob '{glob}': {e}"))?
        .compile_matcher();
    Ok(Rule {
        text: text.to_string(),
        matcher,
        bytes_per_s: parse_rate(rate)?,
    })
}

/// Parses a rate: `0`, or a number with a unit of bytes (`B`, `KiB`, `MiB`,
/// `GiB`; `K`, `M`, `G` alike), `/`, and a unit of time (`s`, `min`, `h`):
/// `512KiB/s`, `1.5MiB/min`, `10MiB/h`. Bytes per second.
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let bad = |why: &str| {
        format!(
            "bad rate '{text}': {why}; use 0 or AMOUNT/TIME with B, KiB, MiB or GiB per s, min \
             or h, e.g. 1MiB/min"
        )
    };
    if t.parse::<f64>() == Ok(0.0) {
        return Ok(0.0);
    }
    let (amount, per) = t.split_once('/').ok_or_else(|| bad("no '/TIME'"))?;
    let split = amount
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(amount.len());
    let (number, unit) = amount.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| bad("the amount is not a number"))?;
    let bytes = match unit.trim() {
        "B" | "" => 1.0,
        "K" | "KiB" => 1024.0,
        "M" | "MiB" => 1024.0 * 1024.0,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "KB" | "MB" | "GB" | "kB" => {
            return Err(bad("units are powers of 1024: KiB, MiB, GiB"));
        }
        _ => return Err(bad("unknown unit of bytes")),
    };
    let seconds = match per.trim() {
        "s" | "sec" => 1.0,
        "min" => 60.0,
        "h" | "hour" => 3600.0,
        "m" => return Err(bad("'/m' is ambiguous: write /min")),
        _ => return Err(bad("unknown unit of time")),
    };
    let rate = number * bytes / seconds;
    if !rate.is_finite() {
        return Err(bad("out of range"));
    }
    Ok(rate)
}

/// A rate as people write it, per second from 1 MiB/s, per minute from
/// 1 MiB/min, else per hour: `0 B/s`, `1.0 MiB/s`, `2.0 MiB/min`, `5.9 KiB/h`.
pub(crate) fn rate_text(bytes_per_s: f64) -> String {
    if bytes_per_s == 0.0 {
        return "0 B/s".to_string();
    }
    const MIB: f64 = 1024.0 * 1024.0;
    let (per, scale) = if bytes_per_s >= MIB {
        ("s", 1.0)
    } else if bytes_per_s * 60.0 >= MIB {
        ("min", 60.0)
    } else {
        ("h", 3600.0)
    };
    format!("{}/{per}", human((bytes_per_s * scale).round() as i64))
}

/// One site's growth over the run, against its budget.
#[derive(Debug, Clone)]
pub(crate) struct Judged {
    pub label: String,
    pub growth_bytes: i64,
    pub over_ns: i64,
    pub rule: Rule,
}

impl Judged {
    fn rate(&self) -> f64 {
        self.growth_bytes as f64 * 1e9 / self.over_ns.max(1) as f64
    }

    /// Grew more than its budget allows.
    pub fn exceeded(&self) -> bool {
        self.growth_bytes > 0
            && self.growth_bytes as f64 > self.rule.bytes_per_s * self.over_ns as f64 / 1e9
    }
}

impl fmt::Display for Judged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: floor grew {} over {:.1} s ({}); budget {} ('{}')",
            self.label,
            human(self.growth_bytes),
            self.over_ns as f64 / 1e9,
            rate_text(self.rate().max(0.0)),
            rate_text(self.rule.bytes_per_s),
            self.rule.text
        )
    }
}

/// What a run's log says about the budgets.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Every site with a budget (this many) kept it.
    Within(Vec<Judged>),
    /// These sites did not (and the rest did).
    Exceeded(Vec<Judged>),
    /// Why the budget could not be judged.
    CannotJudge(String),
}

/// The strings a site's globs are matched against.
fn candidates(id: u16, s: &SiteSeries) -> Vec<String> {
    let mut c = vec![format!("site {id}")];
    if !s.name.file.is_empty() {
        c.push(format!("{}:{}", s.name.file, s.name.line));
        if let Some((_, base)) = s.name.file.rsplit_once('/') {
            c.push(format!("{base}:{}", s.name.line));
        }
    }
    if !s.name.function.is_empty() {
        c.push(s.name.function.clone());
    }
    c
}

/// The floor (minimum) of `s` over the samples at `times`.
fn floor(s: &SiteSeries, times: &[i64]) -> i64 {
    times.iter().map(|&t| s.at(t)).min().unwrap_or(0)
}

/// Judges every site with a budget in `log`.
pub(crate) fn judge(log: &Log, rules: &[Rule], warmup_ns: i64, cfg: &DetectorConfig) -> Outcome {
    let multi = log.pids().len() > 1;
    let mut judged = Vec::new();
    for (&pid, totals) in &log.totals {
        let start = totals.first().map_or(0, |p| p.0) + warmup_ns;
        let end = detector::teardown_start(cfg, totals).map_or(i64::MAX, |i| totals[i].0);
        let times: Vec<i64> = totals
            .iter()
            .map(|p| p.0)
            .filter(|&t| t >= start && t <= end)
            .collect();
        if times.len() < MIN_SAMPLES {
            return Outcome::CannotJudge(format!(
                "pid {pid}: {} samples after the warm-up, before any teardown; the budget needs \
                 at least {MIN_SAMPLES}: run longer, or use a shorter --interval or \
                 --budget-warmup",
                times.len()
            ));
        }
        let (t0, t1) = (times[0], times[times.len() - 1]);
        let quarter = (t1 - t0) / 4;
        let first: Vec<i64> = times
            .iter()
            .copied()
            .filter(|&t| t <= t0 + quarter)
            .collect();
        let last: Vec<i64> = times
            .iter()
            .copied()
            .filter(|&t| t >= t1 - quarter)
            .collect();
        for (&(p, id), series) in log.sites.range((pid, 0)..=(pid, u16::MAX)) {
            debug_assert_eq!(p, pid);
            let names = candidates(id, series);
            let Some(rule) = rules.iter().rev().find(|r| r.matches(&names)) else {
                continue;
            };
            let label = series.name.label(id);
            judged.push(Judged {
                label: if multi {
                    format!("pid {pid} {label}")
                } else {
                    label
                },
                growth_bytes: floor(series, &last) - floor(series, &first),
                over_ns: (t1 - t0) - quarter,
                rule: rule.clone(),
            });
        }
    }
    let exceeded: Vec<Judged> = judged.iter().filter(|j| j.exceeded()).cloned().collect();
    if exceeded.is_empty() {
        Outcome::Within(judged)
    } else {
        Outcome::Exceeded(exceeded)
    }
}

/// Reads the run's log, judges the budgets, prints the verdict on stderr,
/// and returns the exit status it calls for (0, [`EXCEEDED`] or
/// [`CANNOT_JUDGE`]).
pub(crate) fn check(
    log_path: &Path,
    since_ns: i64,
    rules: &[Rule],
    warmup_ns: i64,
    cfg: &DetectorConfig,
) -> u8 {
    let outcome = match Log::read_since(log_path, since_ns) {
        Ok(log) if log.lines > 0 => judge(&log, rules, warmup_ns, cfg),
        Ok(_) => Outcome::CannotJudge(format!("no samples in {}", log_path.display())),
        Err(e) => Outcome::CannotJudge(format!("cannot read {}: {e}", log_path.display())),
    };
    match outcome {
        Outcome::Within(judged) => {
            eprintln!(
                "asmalloc: budget: {} site{} within {} budget",
                judged.len(),
                if judged.len() == 1 { "" } else { "s" },
                if judged.len() == 1 { "its" } else { "their" }
            );
            0
        }
        Outcome::Exceeded(sites) => {
            eprintln!(
                "asmalloc: BUDGET EXCEEDED by {} site{}:",
                sites.len(),
                if sites.len() == 1 { "" } else { "s" }
            );
            for j in &sites {
                eprintln!("asmalloc:   {j}");
            }
            EXCEEDED
        }
        Outcome::CannotJudge(why) => {
            eprintln!("asmalloc: budget not judged: {why}");
            CANNOT_JUDGE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    #[test]
    fn rates_parse_in_binary_units_per_second_minute_or_hour() {
        assert_eq!(parse_rate("0"), Ok(0.0));
        assert_eq!(parse_rate("0B/s"), Ok(0.0));
        assert_eq!(parse_rate("1MiB/min"), Ok(MIB / 60.0));
        assert_eq!(parse_rate("512KiB/s"), Ok(512.0 * 1024.0));
        assert_eq!(parse_rate("1.5GiB/h"), Ok(1.5 * 1024.0 * MIB / 3600.0));
        assert_eq!(parse_rate("100/s"), Ok(100.0));
        for (bad, why) in [
            ("fast", "no '/TIME'"),
            ("1MB/min", "powers of 1024"),
            ("1MiB/m", "write /min"),
            ("1MiB/day", "unknown unit of time"),
            ("1XiB/s", "unknown unit of bytes"),
            ("x1MiB/s", "not a number"),
        ] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn rules_need_a_glob_and_a_rate() {
        assert!(parse_rule("*=1MiB/min").is_ok());
        let e = parse_rule("cache.c").unwrap_err();
        assert!(e.contains("not GLOB=RATE"), "{e}");
        let e = parse_rule("=0").unwrap_err();
        assert!(e.contains("no glob"), "{e}");
        let e = parse_rule("cache[.c=0").unwrap_err();
        assert!(e.contains("bad glob 'cache[.c'"), "{e}");
    }

    fn series(file: &str, line: u32, function: &str, points: &[(i64, i64)]) -> SiteSeries {
        SiteSeries {
            name: crate::log::SiteName {
                type_name: String::new(),
                file: file.into(),
                line,
                function: function.into(),
            },
            points: points.to_vec(),
            ..SiteSeries::default()
        }
    }

    const S: i64 = 1_000_000_000;

    /// A log of one process sampled every second for 20 s: site 1 leaks
    /// 1 MiB/s from 0; site 2 churns (up and down every other second); site
    /// 3 allocates 8 MiB at start-up and stays flat.
    fn log() -> Log {
        let mut log = Log::default();
        let times: Vec<i64> = (0..=20).map(|t| t * S).collect();
        log.totals
            .insert(9, times.iter().map(|&t| (t, 0)).collect());
        log.lines = times.len();
        let leak: Vec<(i64, i64)> = times.iter().map(|&t| (t, t / S * (1 << 20))).collect();
        let churn: Vec<(i64, i64)> = times
            .iter()
            .map(|&t| (t, if (t / S) % 2 == 0 { 0 } else { 5 << 20 }))
            .collect();
        log.sites
            .insert((9, 1), series("src/cache.c", 30, "cache_put", &leak));
        log.sites
            .insert((9, 2), series("src/server.c", 12, "handle", &churn));
        log.sites
            .insert((9, 3), series("src/init.c", 5, "setup", &[(S, 8 << 20)]));
        log
    }

    fn rules(r: &[&str]) -> Vec<Rule> {
        r.iter().map(|r| parse_rule(r).unwrap()).collect()
    }

    #[test]
    fn the_leaking_site_exceeds_the_churning_one_does_not() {
        let cfg = DetectorConfig::DEFAULT;
        let Outcome::Exceeded(sites) = judge(&log(), &rules(&["*=2MiB/min"]), 0, &cfg) else {
            panic!()
        };
        // The leak's floor grew 15 MiB over 15 s; start-up's 8 MiB came in
        // the first quarter (its floor there is 0).
        let names: Vec<&str> = sites.iter().map(|j| j.label.as_str()).collect();
        assert_eq!(
            names,
            [
                "site 1 src/cache.c:30 cache_put",
                "site 3 src/init.c:5 setup"
            ]
        );
        assert_eq!(sites[0].growth_bytes, 15 << 20);
        assert_eq!(sites[0].over_ns, 15 * S);
        assert_eq!(
            sites[0].to_string(),
            "site 1 src/cache.c:30 cache_put: floor grew 15.0 MiB over 15.0 s (1.0 MiB/s); \
             budget 2.0 MiB/min ('*=2MiB/min')"
        );
        // Past a warm-up, start-up's allocation no longer counts; the last
        // matching rule wins, matched by basename:line or by function.
        let Outcome::Exceeded(sites) = judge(&log(), &rules(&["*=0"]), 2 * S, &cfg) else {
            panic!()
        };
        assert_eq!(sites.len(), 1);
        assert!(sites[0].label.contains("cache_put"));
        let Outcome::Within(judged) =
            judge(&log(), &rules(&["*=0", "cache.c:*=2MiB/s"]), 2 * S, &cfg)
        else {
            panic!()
        };
        assert_eq!(judged.len(), 3);
        let Outcome::Within(judged) = judge(&log(), &rules(&["cache_put=2MiB/s"]), 2 * S, &cfg)
        else {
            panic!()
        };
        assert_eq!(judged.len(), 1, "sites no glob matches have no budget");
    }

    #[test]
    fn too_few_samples_cannot_be_judged() {
        let cfg = DetectorConfig::DEFAULT;
        let Outcome::CannotJudge(why) = judge(&log(), &rules(&["*=0"]), 18 * S, &cfg) else {
            panic!()
        };
        assert!(why.contains("3 samples after the warm-up"), "{why}");
    }
}
