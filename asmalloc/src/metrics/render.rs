//! The text formats: Prometheus text exposition 0.0.4 (the textfile, and
//! scrapes that do not ask for more) and OpenMetrics 1.0 (scrapes whose
//! `Accept` names `application/openmetrics-text`, as Prometheus's do).
//!
//! The two differ only in three places, all handled here: a counter's
//! `# TYPE` line names the family without `_total` in OpenMetrics (its
//! samples keep it), the OpenMetrics exposition ends with `# EOF`, and the
//! content type. Label values are escaped the same way in both: `\` as
//! `\\`, `"` as `\"`, a newline as `\n`; everything else, non-ASCII
//! included, is written as its UTF-8 bytes.

use std::fmt::Write as _;

use super::model::{Model, SiteRow, VERDICT_KINDS};

/// Which exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Appends `value` escaped for the inside of a label value's quotes.
pub fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}

/// Writes a family's `# HELP` and `# TYPE` lines; returns the sample name.
fn family(out: &mut String, format: Format, name: &str, kind: Kind, help: &str) -> String {
    let sample = match kind {
        Kind::Gauge => name.to_string(),
        Kind::Counter => format!("{name}_total"),
    };
    let (typed, type_word) = match (kind, format) {
        (Kind::Gauge, _) => (name, "gauge"),
        (Kind::Counter, Format::OpenMetrics) => (name, "counter"),
        (Kind::Counter, Format::Prometheus) => (sample.as_str(), "counter"),
    };
    let _ = writeln!(out, "# HELP {typed} {help}");
    let _ = writeln!(out, "# TYPE {typed} {type_word}");
    sample
}

/// One sample line: `name{labels} value`.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(v, out);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

fn scalar(
    out: &mut String,
    f: Format,
    name: &str,
    kind: Kind,
    help: &str,
    value: impl std::fmt::Display,
) {
    let s = family(out, f, name, kind, help);
    sample(out, &s, &[], value);
}

/// Seconds with nanosecond precision, as a decimal.
fn seconds(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let ns = ns.unsigned_abs();
    format!("{sign}{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// The site labels every per-site series carries.
fn site_labels(r: &SiteRow, id: &str, line: &str) -> [(&'static str, String); 5] {
    [
        ("site_id", id.to_string()),
        ("type", r.type_name.clone()),
        ("file", r.file.clone()),
        ("line", line.to_string()),
        ("function", r.function.clone()),
    ]
}

fn per_site<V: std::fmt::Display>(
    out: &mut String,
    f: Format,
    name: &str,
    kind: Kind,
    help: &str,
    m: &Model,
    value: impl Fn(&SiteRow) -> V,
) {
    let s = family(out, f, name, kind, help);
    for r in &m.sites {
        let labels = site_labels(r, &r.id.to_string(), &r.line.to_string());
        let refs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sample(out, &s, &refs, value(r));
    }
}

/// Every metric name the exposition has (as `# TYPE` names it in the
/// Prometheus format: counters with `_total`), for the docs and tests.
pub const METRIC_NAMES: [&str; 19] = [
    "asmalloc_net_bytes",
    "asmalloc_net_blocks",
    "asmalloc_mapped_bytes",
    "asmalloc_shm_bytes",
    "asmalloc_threads",
    "asmalloc_threads_started_total",
    "asmalloc_calls_total",
    "asmalloc_op_bytes_total",
    "asmalloc_site_net_bytes",
    "asmalloc_site_net_blocks",
    "asmalloc_site_allocs_total",
    "asmalloc_site_verdict",
    "asmalloc_verdicts_total",
    "asmalloc_sites_leaking",
    "asmalloc_samples_total",
    "asmalloc_sites_active",
    "asmalloc_sites_dropped",
    "asmalloc_last_sample_timestamp_seconds",
    "asmalloc_sample_duration_seconds",
];

/// The exposition of `m` in `format`.
pub fn render(m: &Model, f: Format) -> String {
    use Kind::{Counter, Gauge};
    let mut out = String::with_capacity(4096 + m.sites.len() * 600);
    let o = &mut out;
    scalar(
        o,
        f,
        "asmalloc_net_bytes",
        Gauge,
        "Live heap bytes charged to the program's sites.",
        m.net_bytes,
    );
    scalar(
        o,
        f,
        "asmalloc_net_blocks",
        Gauge,
        "Live heap blocks charged to the program's sites.",
        m.net_blocks,
    );
    scalar(
        o,
        f,
        "asmalloc_mapped_bytes",
        Gauge,
        "Net bytes mapped with mmap (LD_PRELOAD library only).",
        m.mapped_bytes,
    );
    scalar(
        o,
        f,
        "asmalloc_shm_bytes",
        Gauge,
        "Net bytes of attached System V shared memory (LD_PRELOAD library only).",
        m.shm_bytes,
    );
    scalar(
        o,
        f,
        "asmalloc_threads",
        Gauge,
        "Tracked threads alive.",
        m.threads,
    );
    scalar(
        o,
        f,
        "asmalloc_threads_started",
        Counter,
        "Threads ever tracked.",
        m.threads_started,
    );
    let s = family(
        o,
        f,
        "asmalloc_calls",
        Counter,
        "Calls per allocation-family operation.",
    );
    for (op, calls, _) in &m.ops {
        sample(o, &s, &[("op", op)], calls);
    }
    let s = family(
        o,
        f,
        "asmalloc_op_bytes",
        Counter,
        "Bytes per allocation-family operation (requested or charged, per operation).",
    );
    for (op, _, bytes) in &m.ops {
        sample(o, &s, &[("op", op)], bytes);
    }
    per_site(
        o,
        f,
        "asmalloc_site_net_bytes",
        Gauge,
        "Live bytes allocated at a site (top sites by net bytes, and every site with a verdict).",
        m,
        |r| r.net_bytes,
    );
    per_site(
        o,
        f,
        "asmalloc_site_net_blocks",
        Gauge,
        "Live blocks allocated at a site.",
        m,
        |r| r.net_blocks,
    );
    per_site(
        o,
        f,
        "asmalloc_site_allocs",
        Counter,
        "Allocations charged to a site.",
        m,
        |r| r.allocs,
    );
    let s = family(
        o,
        f,
        "asmalloc_site_verdict",
        Gauge,
        "1 for a site's last leak verdict (possible_leak, still_growing or never_mind).",
    );
    for r in m.sites.iter().filter(|r| r.verdict.is_some()) {
        let id = r.id.to_string();
        let line = r.line.to_string();
        let labels = site_labels(r, &id, &line);
        let mut refs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        refs.push(("verdict", r.verdict.map_or("", |k| k.name())));
        sample(o, &s, &refs, 1);
    }
    let s = family(
        o,
        f,
        "asmalloc_verdicts",
        Counter,
        "Leak verdicts given, by kind.",
    );
    for (kind, n) in VERDICT_KINDS.iter().zip(m.verdicts) {
        sample(o, &s, &[("kind", kind.name())], n);
    }
    scalar(
        o,
        f,
        "asmalloc_sites_leaking",
        Gauge,
        "Sites the leak detector currently judges possible leaks.",
        m.sites_leaking,
    );
    scalar(
        o,
        f,
        "asmalloc_samples",
        Counter,
        "Samples the leak monitor has taken.",
        m.samples,
    );
    scalar(
        o,
        f,
        "asmalloc_sites_active",
        Gauge,
        "Sites with any activity.",
        m.sites_active,
    );
    scalar(
        o,
        f,
        "asmalloc_sites_dropped",
        Gauge,
        "Active sites without per-site series (beyond the top-sites bound).",
        m.sites_dropped,
    );
    scalar(
        o,
        f,
        "asmalloc_last_sample_timestamp_seconds",
        Gauge,
        "When the sample shown was taken (Unix time).",
        seconds(m.time_ns),
    );
    scalar(
        o,
        f,
        "asmalloc_sample_duration_seconds",
        Gauge,
        "How long taking and judging the sample took.",
        seconds(m.sample_ns),
    );
    if f == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::VerdictKind;

    fn esc(s: &str) -> String {
        let mut out = String::new();
        escape_label_value(s, &mut out);
        out
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline_only() {
        assert_eq!(esc("plain/file.c"), "plain/file.c");
        assert_eq!(esc(r#"a"b"#), r#"a\"b"#);
        assert_eq!(esc(r"C:\src\x.c"), r"C:\\src\\x.c");
        assert_eq!(esc("two\nlines"), r"two\nlines");
        assert_eq!(esc("\\\"\n"), "\\\\\\\"\\n");
        assert_eq!(esc("café/日本.c"), "café/日本.c", "UTF-8 as it is");
        assert_eq!(esc("tab\there"), "tab\there", "no other escapes exist");
    }

    fn model() -> Model {
        Model {
            time_ns: 1_700_000_000_123_456_789,
            sample_ns: 1_500_000,
            net_bytes: 1000,
            net_blocks: 3,
            ops: vec![("malloc", 7, 900), ("free", 4, 0)],
            sites: vec![SiteRow {
                id: 3,
                type_name: "MALLOC".into(),
                file: "we\"ird\\dir\nname/é.c".into(),
                line: 42,
                function: "leak_grow".into(),
                net_bytes: 900,
                net_blocks: 2,
                allocs: 5,
                verdict: Some(VerdictKind::PossibleLeak),
            }],
            sites_active: 4,
            sites_dropped: 3,
            verdicts: [1, 0, 0],
            sites_leaking: 1,
            samples: 9,
            ..Model::default()
        }
    }

    #[test]
    fn counters_are_typed_by_format_and_openmetrics_ends_with_eof() {
        let p = render(&model(), Format::Prometheus);
        assert!(p.contains("# TYPE asmalloc_calls_total counter\n"), "{p}");
        assert!(p.contains("asmalloc_calls_total{op=\"malloc\"} 7\n"), "{p}");
        assert!(!p.contains("# EOF"));
        let om = render(&model(), Format::OpenMetrics);
        assert!(om.contains("# TYPE asmalloc_calls counter\n"), "{om}");
        assert!(om.contains("asmalloc_calls_total{op=\"free\"} 4\n"), "{om}");
        assert!(om.ends_with("\n# EOF\n"), "{om}");
        assert!(om.contains("asmalloc_last_sample_timestamp_seconds 1700000000.123456789\n"));
        assert!(om.contains("asmalloc_sample_duration_seconds 0.001500000\n"));
    }

    #[test]
    fn site_series_carry_escaped_labels_and_the_verdict() {
        let p = render(&model(), Format::Prometheus);
        let labels = r#"site_id="3",type="MALLOC",file="we\"ird\\dir\nname/é.c",line="42",function="leak_grow""#;
        assert!(
            p.contains(&format!("asmalloc_site_net_bytes{{{labels}}} 900\n")),
            "{p}"
        );
        assert!(
            p.contains(&format!("asmalloc_site_net_blocks{{{labels}}} 2\n")),
            "{p}"
        );
        assert!(
            p.contains(&format!("asmalloc_site_allocs_total{{{labels}}} 5\n")),
            "{p}"
        );
        assert!(
            p.contains(&format!(
                "asmalloc_site_verdict{{{labels},verdict=\"possible_leak\"}} 1\n"
            )),
            "{p}"
        );
        assert!(p.contains("asmalloc_verdicts_total{kind=\"possible_leak\"} 1\n"));
        assert!(p.contains("asmalloc_sites_dropped 3\n"));
    }

    #[test]
    fn every_listed_name_is_rendered_and_nothing_else() {
        let p = render(&model(), Format::Prometheus);
        let typed: Vec<&str> = p
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(typed, METRIC_NAMES);
        for line in p.lines().filter(|l| !l.starts_with('#')) {
            let name = &line[..line.find(['{', ' ']).unwrap()];
            assert!(METRIC_NAMES.contains(&name), "{name}");
        }
    }
}
