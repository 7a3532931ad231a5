//! Reading the JSON-lines log the monitor writes (schema in the runtime's
//! `asmalloc::monitor` docs). A line that does not parse is reported with
//! its number and skipped; the rest is still read.

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

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

fn name_of(v: &Value) -> SiteName {
    SiteName {
        type_name: v["type"].as_str().unwrap_or("").to_string(),
        file: v["file"].as_str().unwrap_or("").to_string(),
        line: v["line"].as_u64().unwrap_or(0),
        function: v["function"].as_str().unwrap_or("").to_string(),
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
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let time = v["time_ns"].as_i64().ok_or("no time_ns")?;
        if time < since_ns {
            return Ok(false);
        }
        let pid = v["pid"].as_i64().unwrap_or(0);
        self.totals
            .entry(pid)
            .or_default()
            .push((time, v["net_bytes"].as_i64().unwrap_or(0)));
        for s in v["sites"].as_array().ok_or("no sites array")? {
            let id = s["id"].as_u64().ok_or("a site without an id")? as u16;
            let series = self.sites.entry((pid, id)).or_default();
            series.name = name_of(s);
            series
                .points
                .push((time, s["net_bytes"].as_i64().unwrap_or(0)));
            series.last_count = s["net_count"].as_i64().unwrap_or(0);
        }
        for d in v["verdicts"].as_array().map_or(&[][..], Vec::as_slice) {
            self.verdicts.push(VerdictRecord {
                pid,
                time_ns: time,
                kind: d["kind"].as_str().unwrap_or("?").to_string(),
                id: d["id"].as_u64().unwrap_or(0) as u16,
                name: name_of(d),
                net_bytes: d["net_bytes"].as_i64().unwrap_or(0),
                growth_bytes: d["growth_bytes"].as_i64().unwrap_or(0),
                over_ns: d["over_ns"].as_i64().unwrap_or(0),
                rate_bytes_per_s: d["rate_bytes_per_s"].as_i64().unwrap_or(0),
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
