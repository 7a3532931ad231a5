//! Reading the JSON-lines log the monitor writes, with the runtime's own
//! types for it (`asmalloc::log_format`), and what it says at the end of the
//! run. A line that does not parse is reported with its number and skipped;
//! the rest is still read.
//!
//! The end of a run ([`Log::conclusions`], for `asmalloc run`'s summary and
//! `asmalloc report`): each process's teardown is recognised with
//! [`detector::teardown_start`] (the final fall of its total net bytes, at
//! least half of it and a threshold); the sites are judged from the samples
//! before it. A site whose last verdict before the teardown was a leak is
//! still a leak — "freed at exit" when the teardown took most of it, even
//! if the monitor's last samples saw it fall back. A site with no verdict
//! that grew steadily by more than the threshold over a run too short for
//! one is named as such ([`detector::short_run_growth`]).

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::path::Path;

use asmalloc::detector::{self, DetectorConfig};
use asmalloc::log_format::{LogLine, LogSiteName, LogStack};
use asmalloc::report::{UNKNOWN_SITE, growth_text, never_mind_text, seconds_text, site_label};

/// A site as the log names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteName {
    pub type_name: String,
    pub file: String,
    pub line: u32,
    pub function: String,
}

impl SiteName {
    /// `site 7 (cache) cache.c:30 cache_put`, `site 0 (unknown site)`.
    pub fn label(&self, id: u16) -> String {
        site_label(id, &self.type_name, &self.file, self.line, &self.function)
    }

    /// The place and function alone (the table's "site" column):
    /// `cache.c:30 cache_put`, `(unknown site)`, `(not in the site table)`.
    pub fn place(&self, id: u16) -> String {
        if id == 0 {
            return UNKNOWN_SITE.to_string();
        }
        let label = site_label(id, "", &self.file, self.line, &self.function);
        let prefix = format!("site {id} ");
        label.strip_prefix(&prefix).unwrap_or(&label).to_string()
    }
}

impl fmt::Display for SiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.file.as_str(), self.line) {
            ("", _) => f.write_str(&self.function),
            (file, 0) => write!(f, "{file} {}", self.function),
            (file, line) => write!(f, "{file}:{line} {}", self.function),
        }
    }
}

/// One site of one process over time.
#[derive(Debug, Clone, Default)]
pub struct SiteSeries {
    pub name: SiteName,
    /// (time ns, net bytes) at every line that listed the site.
    pub points: Vec<(i64, i64)>,
    pub last_count: i64,
    /// Allocations and their bytes so far, as of the last line that listed
    /// the site (0 in logs written before they were logged).
    pub last_allocs: u64,
    pub last_alloc_bytes: u64,
    /// The highest `peak_bytes` the monitor wrote for the site (0 in logs
    /// written before it was logged).
    pub logged_peak: i64,
}

impl SiteSeries {
    pub fn last_bytes(&self) -> i64 {
        self.points.last().map_or(0, |p| p.1)
    }

    /// The highest net bytes of the site over the log's samples (or the
    /// peak the monitor logged, when higher: a line over its site limit
    /// may have left the site out at its highest).
    pub fn peak_bytes(&self) -> i64 {
        self.points
            .iter()
            .map(|p| p.1)
            .max()
            .unwrap_or(0)
            .max(self.logged_peak)
    }

    /// Net bytes at `time` (the last listed value at or before it; 0 before
    /// the site was first listed).
    pub fn at(&self, time: i64) -> i64 {
        match self.points.partition_point(|p| p.0 <= time) {
            0 => 0,
            i => self.points[i - 1].1,
        }
    }
}

/// One verdict line.
#[derive(Debug, Clone)]
pub struct VerdictRecord {
    pub pid: i64,
    pub time_ns: i64,
    pub kind: String,
    pub id: u16,
    pub name: SiteName,
    pub net_bytes: i64,
    pub growth_bytes: i64,
    pub over_ns: i64,
    pub rate_bytes_per_s: i64,
    /// The growth the site's previous verdict in the log reported.
    pub reported_growth_bytes: i64,
}

impl VerdictRecord {
    /// A possible leak or still growing.
    pub fn is_leak(&self) -> bool {
        self.kind != "never_mind"
    }

    /// `grew by 19.4 MiB over 3.5 s (5.5 MiB/s)`.
    pub fn growth(&self) -> String {
        growth_text(self.growth_bytes, self.over_ns, self.rate_bytes_per_s)
    }

    /// `at 12 s it had grown by 50.1 MiB over 11 s (4.5 MiB/s)`: the
    /// verdict's growth, as of its time.
    pub fn as_of(&self, start_ns: i64) -> String {
        format!(
            "at {} it had grown by {}",
            seconds_text(self.time_ns.saturating_sub(start_ns)),
            self.growth()
        )
    }

    /// How the table, the plot's legend and the page name the verdict.
    pub fn word(&self) -> &'static str {
        match self.kind.as_str() {
            "possible_leak" => "possible leak",
            "still_growing" => "still growing",
            "never_mind" => "never mind",
            _ => "verdict",
        }
    }
}

/// Everything read from a log.
#[derive(Debug, Default)]
pub struct Log {
    /// Sites by (pid, id).
    pub sites: BTreeMap<(i64, u16), SiteSeries>,
    pub verdicts: Vec<VerdictRecord>,
    /// The sampled stacks of the last line that listed live ones (`None`:
    /// no line listed stacks; the run had no `--stacks`).
    pub stacks: Option<LoggedStacks>,
    /// (time, total net bytes) per line, by pid.
    pub totals: BTreeMap<i64, Vec<(i64, i64)>>,
    /// Lines read.
    pub lines: usize,
    /// (line number, what was wrong) for skipped lines.
    pub bad_lines: Vec<(usize, String)>,
    /// Some site entry has allocations (`allocs`): the log was written by
    /// a monitor that logs calls and total bytes (older ones did not, and
    /// their sites read as 0 calls).
    pub has_totals: bool,
}

/// The sampled stacks one log line listed.
#[derive(Debug, Clone, Default)]
pub struct LoggedStacks {
    pub pid: i64,
    pub time_ns: i64,
    /// Largest estimate first, frames innermost first.
    pub stacks: Vec<LogStack>,
    /// Live stacks the line left out (over its limit).
    pub truncated: u64,
    /// When a later line of the same process said none was live any more
    /// (a program that frees everything as it exits): these are the last
    /// live ones.
    pub freed_at_ns: Option<i64>,
}

fn name_of(n: &LogSiteName) -> SiteName {
    SiteName {
        type_name: n.type_name.clone(),
        file: n.file.clone(),
        line: n.line,
        function: n.function.clone(),
    }
}

impl Log {
    /// Reads a log file.
    pub fn read(path: &Path) -> std::io::Result<Log> {
        Log::read_since(path, i64::MIN)
    }

    /// Reads the lines of a log file written at or after `since_ns` (earlier
    /// runs appended to the same file are skipped).
    pub fn read_since(path: &Path, since_ns: i64) -> std::io::Result<Log> {
        let file = std::fs::File::open(path)?;
        Log::from_reader(std::io::BufReader::new(file), since_ns)
    }

    /// Reads log lines from `reader` written at or after `since_ns` (what
    /// [`Log::read_since`] does with a file; the fuzz target and the corpus
    /// replay feed it bytes). A read error, or a line that is not UTF-8, is
    /// an `Err`; a line that is not a log line is counted in `bad_lines`.
    pub fn from_reader(reader: impl BufRead, since_ns: i64) -> std::io::Result<Log> {
        let mut log = Log::default();
        for (i, line) in reader.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match log.add_line(&line, since_ns) {
                Ok(true) => log.lines += 1,
                Ok(false) => {}
                Err(why) => {
                    log.lines += 1;
                    log.bad_lines.push((i + 1, why));
                }
            }
        }
        Ok(log)
    }

    /// Adds one line; `Ok(false)` when it is older than `since_ns`.
    fn add_line(&mut self, line: &str, since_ns: i64) -> Result<bool, String> {
        let v = LogLine::parse(line).map_err(|e| {
            if e.is_data() {
                format!("not a log line: {e}")
            } else {
                format!("not JSON: {e}")
            }
        })?;
        if v.time_ns < since_ns {
            return Ok(false);
        }
        let (pid, time) = (v.pid, v.time_ns);
        self.totals
            .entry(pid)
            .or_default()
            .push((time, v.net_bytes));
        // One point per site per line, as the series promise: a line that
        // lists a site twice (the monitor never writes one) counts as its
        // last entry. (Found by the log_reader fuzz target.)
        let mut listed: BTreeMap<u16, &asmalloc::log_format::LogSite> = BTreeMap::new();
        for s in &v.sites {
            listed.insert(s.id, s);
        }
        for s in listed.into_values() {
            let series = self.sites.entry((pid, s.id)).or_default();
            series.name = name_of(&s.name);
            series.points.push((time, s.net_bytes));
            series.last_count = s.net_count;
            series.last_allocs = s.allocs;
            series.last_alloc_bytes = s.alloc_bytes;
            series.logged_peak = series.logged_peak.max(s.peak_bytes);
            self.has_totals |= s.allocs != 0;
        }
        for d in v.verdicts {
            let reported_growth_bytes = self
                .verdicts
                .iter()
                .rev()
                .find(|p| p.pid == pid && p.id == d.id)
                .map_or(0, |p| p.growth_bytes);
            self.verdicts.push(VerdictRecord {
                pid,
                time_ns: time,
                name: name_of(&d.name),
                kind: d.kind,
                id: d.id,
                net_bytes: d.net_bytes,
                growth_bytes: d.growth_bytes,
                over_ns: d.over_ns,
                rate_bytes_per_s: d.rate_bytes_per_s,
                reported_growth_bytes,
            });
        }
        match v.stacks {
            Some(stacks) if !stacks.is_empty() => {
                self.stacks = Some(LoggedStacks {
                    pid,
                    time_ns: time,
                    stacks,
                    truncated: v.stacks_truncated,
                    freed_at_ns: None,
                });
            }
            Some(_) => match &mut self.stacks {
                Some(last) if last.pid == pid => last.freed_at_ns = Some(time),
                Some(_) => {}
                None => {
                    self.stacks = Some(LoggedStacks {
                        pid,
                        time_ns: time,
                        ..LoggedStacks::default()
                    })
                }
            },
            None => {}
        }
        Ok(true)
    }

    /// The first sample's time (for relative times).
    pub fn start_ns(&self) -> i64 {
        self.totals
            .values()
            .filter_map(|t| t.first().map(|p| p.0))
            .min()
            .unwrap_or(0)
    }

    /// The last sample's time.
    pub fn end_ns(&self) -> i64 {
        self.totals
            .values()
            .filter_map(|t| t.last().map(|p| p.0))
            .max()
            .unwrap_or(0)
    }

    /// Distinct processes in the log.
    pub fn pids(&self) -> Vec<i64> {
        self.totals.keys().copied().collect()
    }

    /// A process's sampling interval: the median gap between its lines.
    fn interval_of(&self, pid: i64) -> i64 {
        let mut gaps: Vec<i64> = self
            .totals
            .get(&pid)
            .map(|t| {
                t.windows(2)
                    .map(|w| w[1].0.saturating_sub(w[0].0))
                    .collect()
            })
            .unwrap_or_default();
        if gaps.is_empty() {
            return 1_000_000_000;
        }
        let mid = gaps.len() / 2;
        (*gaps.select_nth_unstable(mid).1).max(1)
    }

    /// A process's teardown, if its samples end with one.
    pub fn teardown(&self, pid: i64, cfg: &DetectorConfig) -> Option<Teardown> {
        let totals = self.totals.get(&pid)?;
        detector::teardown_start(cfg, totals).map(|i| Teardown {
            from_ns: totals[i].0,
            total_before: totals[i].1,
            total_after: totals.last().map_or(0, |p| p.1),
        })
    }

    /// Every verdict as a sentence ([`verdict_sentence`]), a never mind in
    /// its process's teardown said as "freed at exit".
    pub fn verdict_sentences(&self, cfg: &DetectorConfig) -> Vec<(&VerdictRecord, String)> {
        let start = self.start_ns();
        let teardowns: BTreeMap<i64, Option<Teardown>> = self
            .totals
            .keys()
            .map(|&pid| (pid, self.teardown(pid, cfg)))
            .collect();
        self.verdicts
            .iter()
            .map(|v| {
                let teardown = teardowns.get(&v.pid).copied().flatten();
                let in_teardown = teardown.is_some_and(|t| v.time_ns > t.from_ns);
                (v, verdict_sentence(v, start, in_teardown))
            })
            .collect()
    }

    /// What the log says at the end of each process, site by site (those
    /// with something to say), in (pid, id) order.
    pub fn conclusions(&self, cfg: &DetectorConfig) -> Vec<Conclusion> {
        let mut out = Vec::new();
        for (&pid, totals) in &self.totals {
            let teardown = self.teardown(pid, cfg);
            let judged_at = teardown.map_or(i64::MAX, |t| t.from_ns);
            let times: Vec<i64> = totals
                .iter()
                .map(|p| p.0)
                .take_while(|&t| t <= judged_at)
                .collect();
            for (&(p, id), series) in self.sites.range((pid, 0)..=(pid, u16::MAX)) {
                debug_assert_eq!(p, pid);
                let last = self
                    .verdicts
                    .iter()
                    .rev()
                    .find(|v| v.pid == pid && v.id == id && v.time_ns <= judged_at);
                let before = series.at(judged_at);
                let state = match last {
                    Some(v) if v.is_leak() => {
                        let freed = teardown.is_some()
                            && series.last_bytes() <= before / 2
                            && before.saturating_sub(series.last_bytes())
                                >= (cfg.threshold_bytes / 2) as i64;
                        State::Leak {
                            verdict: v.clone(),
                            freed_at_exit: freed.then_some(teardown).flatten(),
                        }
                    }
                    Some(v) => State::Retracted(v.clone()),
                    None => {
                        let samples: Vec<(i64, i64)> =
                            times.iter().map(|&t| (t, series.at(t))).collect();
                        match detector::short_run_growth(cfg, &samples, self.interval_of(pid)) {
                            Some(short) => State::ShortRun(short),
                            None => continue,
                        }
                    }
                };
                out.push(Conclusion {
                    pid,
                    id,
                    name: series.name.clone(),
                    live: series.last_bytes(),
                    state,
                });
            }
        }
        out
    }
}

/// A process's teardown: from when, and its total before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Teardown {
    pub from_ns: i64,
    pub total_before: i64,
    pub total_after: i64,
}

/// What the end of the log says about one site.
#[derive(Debug, Clone)]
pub enum State {
    /// Its last verdict (before any teardown) is a leak; `freed_at_exit`
    /// when the program freed it while shutting down.
    Leak {
        verdict: VerdictRecord,
        freed_at_exit: Option<Teardown>,
    },
    /// Named, then never minded.
    Retracted(VerdictRecord),
    /// No verdict; grew steadily over a run too short for one.
    ShortRun(detector::ShortRun),
}

/// One site's state at the end of the log.
#[derive(Debug, Clone)]
pub struct Conclusion {
    pub pid: i64,
    pub id: u16,
    pub name: SiteName,
    /// Net bytes at the last line.
    pub live: i64,
    pub state: State,
}

impl Conclusion {
    /// How the table, the plot's legend and the page name the site's state.
    pub fn word(&self) -> String {
        match &self.state {
            State::Leak {
                verdict,
                freed_at_exit: None,
            } => verdict.word().to_string(),
            State::Leak {
                freed_at_exit: Some(_),
                ..
            } => "leak, freed at exit".to_string(),
            State::Retracted(_) => "never mind".to_string(),
            State::ShortRun(_) => "grew; run too short".to_string(),
        }
    }

    /// Judged leaking at the end (freed at exit or not).
    pub fn is_leak(&self) -> bool {
        matches!(self.state, State::Leak { .. })
    }

    /// The summary's sentence (without the `asmalloc: ` prefix).
    pub fn sentence(&self, start_ns: i64) -> String {
        let label = self.name.label(self.id);
        match &self.state {
            State::Leak {
                verdict,
                freed_at_exit: None,
            } => format!(
                "LEAK at exit: {label} — {} live; {}",
                human(self.live),
                verdict.as_of(start_ns)
            ),
            State::Leak {
                verdict,
                freed_at_exit: Some(t),
            } => format!(
                "LEAK while running, freed at exit: {label} — {}; the program freed it while \
                 shutting down (its total net bytes fell from {} to {} after {})",
                verdict.as_of(start_ns),
                human(t.total_before),
                human(t.total_after),
                seconds_text(t.from_ns.saturating_sub(start_ns))
            ),
            State::Retracted(v) => format!(
                "never mind: {label} (at {}: {})",
                seconds_text(v.time_ns.saturating_sub(start_ns)),
                never_mind_text(v.growth_bytes, v.reported_growth_bytes)
            ),
            State::ShortRun(s) => format!(
                "grew, no verdict: {label} grew by {} — {}",
                growth_text(s.growth_bytes, s.over_ns, s.rate_bytes_per_s),
                match s.needed_ns {
                    Some(n) => format!(
                        "run longer than {} s for a verdict",
                        n.saturating_add(999_999_999) / 1_000_000_000
                    ),
                    None => "too slow for a verdict within the longest window".to_string(),
                }
            ),
        }
    }
}

pub use asmalloc::report::human_bytes as human;

/// One verdict as a sentence, with its time since `start_ns`; a never mind
/// `in_teardown` (the program freeing everything as it exits) is said as
/// "freed at exit".
pub fn verdict_sentence(v: &VerdictRecord, start_ns: i64, in_teardown: bool) -> String {
    let at = v.time_ns.saturating_sub(start_ns) as f64 / 1e9;
    let what = match v.kind.as_str() {
        "never_mind" if in_teardown => {
            "freed at exit: the program freed it while shutting down".to_string()
        }
        "possible_leak" => format!("possible progressive leak: grew by {}", v.growth()),
        "still_growing" => format!("still growing: has grown by {}", v.growth()),
        "never_mind" => format!(
            "never mind: {}",
            never_mind_text(v.growth_bytes, v.reported_growth_bytes)
        ),
        other => other.to_string(),
    };
    format!(
        "{at:>8.1} s  {}  {what}; {} live",
        v.name.label(v.id),
        human(v.net_bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const MIB: i64 = 1 << 20;

    fn line(t: i64, total: i64, sites: &[(u16, i64)], verdicts: &str) -> String {
        let sites: Vec<String> = sites
            .iter()
            .map(|(id, b)| {
                format!(
                    r#"{{"id":{id},"type":"T","file":"f.c","line":{id},"function":"fn{id}","net_bytes":{b},"net_count":1}}"#
                )
            })
            .collect();
        format!(
            r#"{{"v":1,"pid":9,"seq":{t},"time_ns":{},"net_bytes":{total},"sites":[{}],"verdicts":[{verdicts}]}}"#,
            t * S,
            sites.join(",")
        )
    }

    fn leak_verdict(id: u16, growth: i64) -> String {
        format!(
            r#"{{"kind":"possible_leak","id":{id},"type":"T","file":"f.c","line":{id},"function":"fn{id}","net_bytes":{growth},"growth_bytes":{growth},"over_ns":{},"rate_bytes_per_s":{}}}"#,
            4 * S,
            growth / 4
        )
    }

    fn read(lines: &[String]) -> Log {
        let mut log = Log::default();
        for l in lines {
            assert_eq!(log.add_line(l, i64::MIN), Ok(true));
        }
        log
    }

    #[test]
    fn a_leak_freed_at_teardown_keeps_its_verdict() {
        let mut lines: Vec<String> = (0..10)
            .map(|t| line(t, 10 * MIB + t * 5 * MIB, &[(3, t * 5 * MIB)], ""))
            .collect();
        lines[8] = line(8, 50 * MIB, &[(3, 40 * MIB)], &leak_verdict(3, 20 * MIB));
        // The teardown: everything freed; the monitor's last sample says
        // never mind.
        let nm = r#"{"kind":"never_mind","id":3,"type":"T","file":"f.c","line":3,"function":"fn3","net_bytes":0,"growth_bytes":0,"over_ns":1,"rate_bytes_per_s":0}"#;
        lines.push(line(10, 0, &[(3, 0)], nm));
        let log = read(&lines);
        let c = log.conclusions(&DetectorConfig::DEFAULT);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].is_leak());
        assert_eq!(c[0].word(), "leak, freed at exit");
        let s = c[0].sentence(0);
        assert!(
            s.starts_with(
                "LEAK while running, freed at exit: site 3 (T) f.c:3 fn3 — at 8 s it had grown \
                 by 20.0 MiB over 4 s (5.0 MiB/s); the program freed it while shutting down \
                 (its total net bytes fell from 55.0 MiB to 0 B after 9 s)"
            ),
            "{s}"
        );
    }

    #[test]
    fn a_short_run_that_grew_is_named_without_a_verdict() {
        let lines: Vec<String> = (0..4)
            .map(|t| line(t, t * 5 * MIB, &[(4, t * 5 * MIB), (5, MIB)], ""))
            .collect();
        let c = read(&lines).conclusions(&DetectorConfig::DEFAULT);
        assert_eq!(c.len(), 1, "{c:?}");
        let s = c[0].sentence(0);
        assert!(
            s.starts_with(
                "grew, no verdict: site 4 (T) f.c:4 fn4 grew by 15.0 MiB over 3 s (5.0 MiB/s) — \
                 run longer than"
            ),
            "{s}"
        );
        assert_eq!(c[0].word(), "grew; run too short");
    }

    // Found by the log_reader fuzz target (fuzz/corpus/log_reader/
    // seed-extremes): times and sizes at the ends of i64 overflowed the
    // subtractions behind the conclusions and sentences.
    #[test]
    fn a_log_with_extreme_numbers_is_read_and_concluded() {
        let text = concat!(
            r#"{"time_ns":-9223372036854775808,"net_bytes":9223372036854775807,"sites":[{"id":1,"net_bytes":9223372036854775807}]}"#,
            "\n",
            r#"{"time_ns":9223372036854775807,"net_bytes":-9223372036854775808,"sites":[{"id":1,"net_bytes":-9223372036854775808}],"verdicts":[{"kind":"possible_leak","id":1,"net_bytes":9223372036854775807,"growth_bytes":-9223372036854775808,"over_ns":0,"rate_bytes_per_s":9223372036854775807}]}"#,
            "\n",
        );
        let log = Log::from_reader(text.as_bytes(), i64::MIN).expect("read");
        assert_eq!((log.lines, log.bad_lines.len()), (2, 0));
        let cfg = DetectorConfig::DEFAULT;
        let start = log.start_ns();
        assert_eq!(start, i64::MIN);
        // The fall from the largest total to the smallest is the teardown,
        // which starts at the first sample: nothing to judge before it.
        assert_eq!(log.teardown(0, &cfg).map(|t| t.from_ns), Some(i64::MIN));
        assert!(log.conclusions(&cfg).is_empty());
        let v = log.verdict_sentences(&cfg);
        assert_eq!(v.len(), 1);
        assert!(v[0].1.contains("possible progressive leak"), "{}", v[0].1);
    }

    #[test]
    fn a_site_listed_twice_in_a_line_is_one_point() {
        // fuzz/corpus/log_reader/regression-site-listed-twice
        let text = concat!(
            r#"{"time_ns":1,"sites":[{"id":4,"net_bytes":10},{"id":4,"net_bytes":30}]}"#,
            "\n",
            r#"{"time_ns":2,"sites":[{"id":4,"net_bytes":20}]}"#,
            "\n",
        );
        let log = Log::from_reader(text.as_bytes(), i64::MIN).expect("read");
        assert_eq!(log.sites[&(0, 4)].points, [(1, 30), (2, 20)]);
    }

    #[test]
    fn site_zero_has_one_name() {
        let n = SiteName::default();
        assert_eq!(n.label(0), "site 0 (unknown site)");
        assert_eq!(n.place(0), "(unknown site)");
        assert_eq!(n.label(12), "site 12 (not in the site table)");
        let named = SiteName {
            type_name: "cache".into(),
            file: "c.c".into(),
            line: 30,
            function: "put".into(),
        };
        assert_eq!(named.label(7), "site 7 (cache) c.c:30 put");
        assert_eq!(named.place(7), "c.c:30 put");
    }
}
