//! The checks on what the library wrote during a traced run (its JSON
//! reports, its monitor's log, its `asmalloc:` lines): no negative site, no
//! malformed line, no foreign free, an exit report; and the check that a
//! program's tools are installed, naming the Debian package.

use std::fs;
use std::path::{Path, PathBuf};

use crate::ctx::{walk, which};
use crate::json;
use crate::programs::{Need, Program};

/// What the library wrote during one traced run.
#[derive(Default)]
pub struct Analysis {
    /// Report files (one per process that ran under the library and wrote
    /// at least one report).
    pub procs: usize,
    pub report_lines: usize,
    pub log_lines: usize,
    /// Most sites in one process's last report.
    pub sites: usize,
    /// Net bytes over every process's last report.
    pub net: i128,
    /// Foreign frees over all processes.
    pub foreign: i128,
    /// Sites with negative net bytes or blocks: "where: site …".
    pub negatives: Vec<String>,
    /// Lines that are not what the schema says.
    pub malformed: Vec<String>,
    /// The library's own lines on stderr (`asmalloc: …`).
    pub messages: Vec<String>,
    pub stepped_aside: bool,
}

/// A line the library writes when it steps aside (runs the program
/// untracked), e.g. because the program brings its own allocator.
fn is_step_aside(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "step",
        "aside",
        "untracked",
        "not track",
        "disabl",
        "bypass",
    ]
    .iter()
    .any(|k| m.contains(k))
}

pub fn analyze(asm: &Path, logs: &Path) -> Analysis {
    let mut a = Analysis::default();
    let mut names: Vec<PathBuf> = fs::read_dir(asm)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    for path in names {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let is_report = file.starts_with("report.");
        let is_log = file.starts_with("log.");
        if !is_report && !is_log {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        let mut last: Option<json::Value> = None;
        let mut foreign_max = 0;
        for (n, line) in text.lines().enumerate() {
            let at = format!("{file}:{}", n + 1);
            if line.starts_with("asmalloc:") {
                // A verdict or a message written to ASMALLOC_OUTPUT.
                a.messages.push(format!("{at}: {line}"));
                continue;
            }
            let v = match json::parse(line) {
                Ok(v) => v,
                Err(e) => {
                    a.malformed
                        .push(format!("{at}: {e}: {}", truncate(line, 120)));
                    continue;
                }
            };
            let Some(sites) = v.get("sites") else {
                a.malformed.push(format!("{at}: no \"sites\""));
                continue;
            };
            for s in sites.arr() {
                let bytes = s.get("net_bytes").and_then(json::Value::int);
                let count = s.get("net_count").and_then(json::Value::int);
                let (Some(bytes), Some(count)) = (bytes, count) else {
                    a.malformed
                        .push(format!("{at}: a site without net_bytes/net_count"));
                    continue;
                };
                if bytes < 0 || count < 0 {
                    let id = s.get("id").and_then(json::Value::int).unwrap_or(-1);
                    let fun = s.get("function").and_then(json::Value::str).unwrap_or("");
                    a.negatives.push(format!(
                        "{at}: site {id} {fun} net_bytes {bytes} net_count {count}"
                    ));
                }
            }
            if is_report {
                a.report_lines += 1;
                let foreign = v
                    .get("ops")
                    .and_then(|o| o.get("foreign_free"))
                    .and_then(|f| f.get("count"))
                    .and_then(json::Value::int)
                    .unwrap_or(0);
                foreign_max = foreign_max.max(foreign);
            } else {
                a.log_lines += 1;
            }
            last = Some(v);
        }
        if is_report {
            a.procs += 1;
            a.foreign += foreign_max;
            if let Some(v) = last {
                a.sites = a.sites.max(v.get("sites").map_or(0, |s| s.arr().len()));
                a.net += v.get("net_bytes").and_then(json::Value::int).unwrap_or(0);
            }
        }
    }
    let mut streams = Vec::new();
    walk(logs, logs, &mut streams);
    streams.sort();
    for f in streams {
        let text =
            String::from_utf8_lossy(&fs::read(logs.join(&f)).unwrap_or_default()).into_owned();
        for l in text.lines().filter(|l| l.starts_with("asmalloc:")) {
            a.stepped_aside |= is_step_aside(l);
            a.messages.push(format!("{f}: {l}"));
        }
    }
    a
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

#[derive(Clone)]
pub struct AnalysisSummary {
    pub procs: usize,
    pub report_lines: usize,
    pub log_lines: usize,
    pub sites: usize,
    pub net: i128,
    pub foreign: i128,
    pub stepped_aside: bool,
    /// Failed checks on the reports and logs.
    pub violations: Vec<String>,
    pub messages: Vec<String>,
}

pub fn summarize(p: &Program, a: Analysis) -> AnalysisSummary {
    let mut violations = Vec::new();
    if !a.negatives.is_empty() {
        violations.push(format!(
            "{} negative site counts, first: {}",
            a.negatives.len(),
            a.negatives[0]
        ));
    }
    if !a.malformed.is_empty() {
        violations.push(format!(
            "{} malformed lines, first: {}",
            a.malformed.len(),
            a.malformed[0]
        ));
    }
    if a.foreign > 0 && !p.foreign_frees_ok {
        violations.push(format!("{} foreign frees", a.foreign));
    }
    if a.procs == 0 && !a.stepped_aside {
        violations.push("no exit report from any process (and no step-aside message)".into());
    }
    AnalysisSummary {
        procs: a.procs,
        report_lines: a.report_lines,
        log_lines: a.log_lines,
        sites: a.sites,
        net: a.net,
        foreign: a.foreign,
        stepped_aside: a.stepped_aside,
        violations,
        messages: a.messages,
    }
}

pub fn missing_needs(p: &Program) -> Vec<String> {
    missing(p.needs)
}

/// What of `needs` is not installed, each naming its Debian package.
pub fn missing(needs: &[Need]) -> Vec<String> {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    needs
        .iter()
        .filter_map(|n| {
            let (what, pkg, present) = match *n {
                Need::Tool(t, pkg) => (t, pkg, which(t).is_some()),
                Need::File(f, pkg) => (f, pkg, Path::new(f).exists()),
            };
            (!present).then(|| {
                if ci {
                    format!("{what} missing in CI: .ci/run must install the Debian package {pkg}")
                } else {
                    format!(
                        "{what} not found: install the Debian package {pkg} (apt-get install {pkg})"
                    )
                }
            })
        })
        .collect()
}
