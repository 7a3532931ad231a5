//! Reading the JSON-lines log the monitor writes, with the runtime's own
//! types for it (`asmalloc::log_format`). A line that does not parse is
//! reported with its number and skipped; the rest is still read.

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::path::Path;

use asmalloc::log_format::{LogLine, LogSiteName};

/// A site as the log names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SiteName {
    pub type_name: String,
    pub file: String,
    pub line: u64,
    pub function: String,
}

impl fmt::Display for SiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file.is_empty() {
            return f.write_str("(no site: unknown or not in the table)");
        }
        write!(f, "{}:{} {}", self.file, self.line, self.function)
    }
}

/// One site of one process over time.
#[derive(Debug, Clone, Default)]
pub(crate) struct SiteSeries {
    pub name: SiteName,
    /// (time ns, net bytes) at every line that listed the site.
    pub points: Vec<(i64, i64)>,
    pub last_count: i64,
}

impl SiteSeries {
    pub fn last_bytes(&self) -> i64 {
        self.points.last().map_or(0, |p| p.1)
    }

    pub fn peak_bytes(&self) -> i64 {
        self.points.iter().map(|p| p.1).max().unwrap_or(0)
    }
}

/// One verdict line.
#[derive(Debug, Clone)]
pub(crate) struct VerdictRecord {
    pub pid: i64,
    pub time_ns: i64,
    pub kind: String,
    pub id: u16,
    pub name: SiteName,
    pub net_bytes: i64,
    pub growth_bytes: i64,
    pub over_ns: i64,
    pub rate_bytes_per_s: i64,
}

/// Everything read from a log.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Sites by (pid, id).
    pub sites: BTreeMap<(i64, u16), SiteSeries>,
    pub verdicts: Vec<VerdictRecord>,
    /// (time, total net bytes) per line, by pid.
    pub totals: BTreeMap<i64, Vec<(i64, i64)>>,
    /// Lines read.
    pub lines: usize,
    /// (line number, what was wrong) for skipped lines.
    pub bad_lines: Vec<(usize, String)>,
}

fn name_of(n: &LogSiteName) -> SiteName {
    SiteName {
        type_name: n.type_name.clone(),
        file: n.file.clone(),
        line: u64::from(n.line),
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
        let mut log = Log::default();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
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
        for s in &v.sites {
            let series = self.sites.entry((pid, s.id)).or_default();
            series.name = name_of(&s.name);
            series.points.push((time, s.net_bytes));
            series.last_count = s.net_count;
        }
        for d in v.verdicts {
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
            });
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

    /// Sites whose last verdict is a leak (not followed by never mind).
    pub fn leaking(&self) -> Vec<&VerdictRecord> {
        let mut last: BTreeMap<(i64, u16), &VerdictRecord> = BTreeMap::new();
        for v in &self.verdicts {
            last.insert((v.pid, v.id), v);
        }
        last.into_values()
            .filter(|v| v.kind != "never_mind")
            .collect()
    }

    /// Distinct processes in the log.
    pub fn pids(&self) -> Vec<i64> {
        self.totals.keys().copied().collect()
    }
}

pub(crate) use asmalloc::report::human_bytes as human;

/// One verdict as a sentence.
pub(crate) fn verdict_sentence(v: &VerdictRecord, start_ns: i64) -> String {
    let at = (v.time_ns - start_ns) as f64 / 1e9;
    let what = match v.kind.as_str() {
        "possible_leak" => format!(
            "possible progressive leak: grew by {} over {:.0} s ({}/s)",
            human(v.growth_bytes),
            v.over_ns as f64 / 1e9,
            human(v.rate_bytes_per_s)
        ),
        "still_growing" => format!(
            "still growing: +{} over {:.0} s ({}/s)",
            human(v.growth_bytes),
            v.over_ns as f64 / 1e9,
            human(v.rate_bytes_per_s)
        ),
        "never_mind" => "never mind: fell back".to_string(),
        other => other.to_string(),
    };
    format!(
        "{at:>8.1} s  site {} ({}) {}  {what}; {} live",
        v.id,
        v.name.type_name,
        v.name,
        human(v.net_bytes)
    )
}
