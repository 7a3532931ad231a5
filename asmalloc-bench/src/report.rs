//! The results as a markdown section, an SVG bar chart and JSON.

use std::fmt::Write as _;

use crate::config::Cfg;
use crate::results::{Cell, Metric, Row, Target};

/// What the report says about the run itself.
#[derive(Debug, Clone)]
pub struct Meta {
    pub quick: bool,
    pub reps: usize,
    pub date: String,
    pub machine: String,
    pub commit: String,
    pub seconds: f64,
    /// The machine's 1-minute load average at the start and the end.
    pub load: String,
    pub notes: Vec<String>,
}

pub fn bytes(b: f64) -> String {
    if b < 1024.0 {
        format!("{b:.0} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", b / 1024.0 / 1024.0 / 1024.0)
    }
}

fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 10.0 => format!("{r:.1}x"),
        Some(r) => format!("{r:.2}x"),
        None => "—".into(),
    }
}

/// The text of a cell that has no number.
fn no_number(row: &Row, cfg: Cfg) -> Option<String> {
    match row.cells.get(&cfg) {
        Some(Cell::Skipped(why)) => Some(why.clone()),
        Some(Cell::Failed(_)) => Some("failed (see notes)".into()),
        Some(Cell::Runs(_)) => None,
        None => Some("—".into()),
    }
}

/// One matrix table: a row per workload, a column per configuration; raw
/// shows `abs`, the others `cell`.
fn matrix(
    out: &mut String,
    rows: &[Row],
    abs: impl Fn(&Row) -> String,
    cell: impl Fn(&Row, Cfg) -> String,
) {
    out.push_str("| workload |");
    for c in Cfg::ALL {
        let _ = write!(out, " {} |", c.title());
    }
    out.push_str("\n|---|");
    for _ in Cfg::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for r in rows {
        let _ = write!(out, "| {} |", r.short);
        for c in Cfg::ALL {
            let text = match no_number(r, c) {
                Some(t) => t,
                None if c == Cfg::Raw => abs(r),
                None => cell(r, c),
            };
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }
}

fn secs(s: Option<f64>) -> String {
    s.map_or("—".into(), |s| {
        if s < 10.0 {
            format!("{:.0} ms", s * 1e3)
        } else {
            format!("{s:.1} s")
        }
    })
}

/// The markdown section (also printed and written to results.md).
pub fn markdown(rows: &[Row], targets: &[Target], meta: &Meta) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Run: `{}` on {}, {}, commit {}; {} paired repetitions per cell, {:.0} s in all; load average {}.\n",
        if meta.quick {
            "cargo run -p asmalloc-bench --release -- --quick"
        } else {
            "cargo run -p asmalloc-bench --release"
        },
        meta.machine,
        meta.date,
        meta.commit,
        meta.reps,
        meta.seconds,
        meta.load
    );
    o.push_str("### Targets\n\n| target | measured | limit | result |\n|---|---|---|---|\n");
    for t in targets {
        let result = match t.pass {
            Some(true) => "pass",
            Some(false) => "**miss**",
            None => "not measured",
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {result} |",
            t.what, t.measured, t.limit
        );
    }
    o.push_str(
        "\n### Wall time, x raw (redis: requests/s, x raw — higher is better)\n\n\
         The raw column is the median itself.\n\n",
    );
    matrix(
        &mut o,
        rows,
        |r| {
            if r.redis {
                r.median(Cfg::Raw, Metric::Rps)
                    .map_or("—".into(), |v| format!("{:.0}k req/s", v / 1e3))
            } else {
                secs(r.median(Cfg::Raw, Metric::Wall))
            }
        },
        |r, c| ratio(r.headline(c)),
    );
    o.push_str("\n### CPU time (user + sys of the process and its children), x raw\n\n");
    matrix(
        &mut o,
        rows,
        |r| secs(r.median(Cfg::Raw, Metric::Cpu)),
        |r, c| ratio(r.ratio(c, Cfg::Raw, Metric::Cpu)),
    );
    o.push_str("\n### Peak RSS, x raw\n\n");
    matrix(
        &mut o,
        rows,
        |r| {
            r.median(Cfg::Raw, Metric::Rss)
                .map_or("—".into(), |k| bytes(k * 1024.0))
        },
        |r, c| ratio(r.ratio(c, Cfg::Raw, Metric::Rss)),
    );
    o.push_str("\n### Output written by the tool (reports, logs, profiles; median bytes)\n\n");
    matrix(
        &mut o,
        rows,
        |r| r.out_bytes(Cfg::Raw).map_or("—".into(), bytes),
        |r, c| r.out_bytes(c).map_or("—".into(), bytes),
    );
    o.push_str("\n### Workloads\n\n");
    for r in rows {
        let _ = writeln!(o, "- {}", r.title);
    }
    if !meta.notes.is_empty() {
        o.push_str("\n### Notes\n\n");
        for n in &meta.notes {
            let _ = writeln!(o, "- {n}");
        }
    }
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn color(c: Cfg) -> &'static str {
    match c {
        Cfg::Raw => "#888888",
        Cfg::Asm => "#1f77b4",
        Cfg::AsmLog => "#6baed6",
        Cfg::Jem => "#2ca02c",
        Cfg::AsmJem => "#98df8a",
        Cfg::Heaptrack => "#d62728",
        Cfg::Memcheck => "#9467bd",
        Cfg::JemProf => "#ff7f0e",
    }
}

/// A horizontal bar chart of every cell's slowdown (wall time x raw; redis:
/// raw requests/s over the configuration's), log scale.
pub fn svg(rows: &[Row], meta: &Meta) -> String {
    let (left, plot_w, right) = (300.0, 560.0, 70.0);
    let (bar_h, gap, top) = (11.0, 16.0, 96.0);
    // Raw is the 1x line itself.
    let cfgs: Vec<Cfg> = Cfg::ALL.into_iter().filter(|&c| c != Cfg::Raw).collect();
    let max = rows
        .iter()
        .flat_map(|r| cfgs.iter().filter_map(|&c| r.slowdown(c)))
        .fold(2.0f64, f64::max);
    let min = rows
        .iter()
        .flat_map(|r| cfgs.iter().filter_map(|&c| r.slowdown(c)))
        .fold(0.5f64, f64::min);
    let ticks: Vec<f64> = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
    ]
    .into_iter()
    .collect();
    let lo = ticks.iter().copied().rfind(|&t| t <= min).unwrap_or(0.1);
    let hi = ticks.iter().copied().find(|&t| t >= max).unwrap_or(max);
    let x = |v: f64| left + plot_w * (v.ln() - lo.ln()) / (hi.ln() - lo.ln());
    let group_h = |_r: &Row| cfgs.len() as f64 * bar_h + gap;
    let height = top + rows.iter().map(group_h).sum::<f64>() + 40.0;
    let width = left + plot_w + right;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-size="14" font-weight="bold">asmalloc-bench: slowdown vs raw (wall time; redis: requests/s), log scale</text>"#
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="38" fill="#555">{} — {} repetitions, {}, commit {}</text>"##,
        esc(&meta.machine),
        meta.reps,
        esc(&meta.date),
        esc(&meta.commit)
    );
    for (i, c) in cfgs.iter().enumerate() {
        let lx = 10.0 + (i % 4) as f64 * 210.0;
        let ly = 54.0 + (i / 4) as f64 * 16.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="{:.0}" width="12" height="10" fill="{}"/><text x="{:.0}" y="{:.0}">{}</text>"#,
            ly - 9.0,
            color(*c),
            lx + 16.0,
            ly,
            esc(c.title())
        );
    }
    let bottom = height - 30.0;
    for &t in ticks.iter().filter(|&&t| t >= lo && t <= hi) {
        let tx = x(t);
        let stroke = if t == 1.0 { "#000" } else { "#ddd" };
        let _ = writeln!(
            s,
            r#"<line x1="{tx:.1}" y1="{:.0}" x2="{tx:.1}" y2="{bottom:.0}" stroke="{stroke}"/><text x="{tx:.1}" y="{:.0}" text-anchor="middle">{t}x</text>"#,
            top - 8.0,
            bottom + 14.0
        );
    }
    let mut y = top;
    for r in rows {
        let _ = writeln!(
            s,
            r#"<text x="{:.0}" y="{:.0}" text-anchor="end" font-weight="bold">{}</text>"#,
            left - 8.0,
            y + bar_h,
            esc(&r.short)
        );
        for (i, &c) in cfgs.iter().enumerate() {
            let by = y + i as f64 * bar_h;
            match r.slowdown(c) {
                Some(v) => {
                    // From 1x to the value, either way.
                    let (x0, x1) = (x(v.min(1.0)), x(v.max(1.0)));
                    let _ = writeln!(
                        s,
                        r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {} {v:.3}x</title></rect><text x="{:.1}" y="{:.1}" font-size="9">{}</text>"#,
                        by + 1.0,
                        (x1 - x0).max(1.0),
                        bar_h - 2.0,
                        color(c),
                        esc(&r.short),
                        esc(c.title()),
                        x1 + 3.0,
                        by + bar_h - 2.0,
                        if v >= 10.0 {
                            format!("{v:.1}x")
                        } else {
                            format!("{v:.2}x")
                        }
                    );
                }
                None => {
                    let why = no_number(r, c).unwrap_or_default();
                    let _ = writeln!(
                        s,
                        r##"<text x="{:.1}" y="{:.1}" font-size="9" fill="#999">{}: {}</text>"##,
                        x(1.0) + 3.0,
                        by + bar_h - 2.0,
                        esc(c.title()),
                        esc(&why)
                    );
                }
            }
        }
        y += group_h(r);
    }
    s.push_str("</svg>\n");
    s
}

/// Everything, as JSON: per-run samples, the ratios and the targets.
pub fn json(rows: &[Row], targets: &[Target], meta: &Meta) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let mut ws = Vec::new();
    for r in rows {
        let mut cells = Map::new();
        for c in Cfg::ALL {
            let v = match r.cells.get(&c) {
                Some(Cell::Runs(samples)) => json!({
                    "status": "measured",
                    "wall_ratio": r.ratio(c, Cfg::Raw, Metric::Wall),
                    "cpu_ratio": r.ratio(c, Cfg::Raw, Metric::Cpu),
                    "peak_rss_ratio": r.ratio(c, Cfg::Raw, Metric::Rss),
                    "rps_ratio": if r.redis { r.ratio(c, Cfg::Raw, Metric::Rps) } else { None },
                    "output_bytes_median": r.out_bytes(c),
                    "runs": samples.iter().map(|s| json!({
                        "wall_s": s.usage.wall,
                        "cpu_s": s.usage.cpu,
                        "peak_rss_kib": s.usage.maxrss_kib,
                        "output_bytes": s.out_bytes,
                        "requests_per_s": s.rps,
                        "work_scale": s.scale,
                    })).collect::<Vec<_>>(),
                }),
                Some(Cell::Skipped(why)) => json!({"status": "skipped", "reason": why}),
                Some(Cell::Failed(why)) => json!({"status": "failed", "reason": why}),
                None => Value::Null,
            };
            cells.insert(c.key().to_string(), v);
        }
        ws.push(json!({
            "key": r.key,
            "name": r.short,
            "title": r.title,
            "configurations": cells,
        }));
    }
    json!({
        "quick": meta.quick,
        "repetitions": meta.reps,
        "date": meta.date,
        "machine": meta.machine,
        "commit": meta.commit,
        "seconds": meta.seconds,
        "load_average": meta.load,
        "workloads": ws,
        "targets": targets.iter().map(|t| json!({
            "target": t.what,
            "measured": t.measured,
            "value": t.value,
            "limit": t.limit,
            "pass": t.pass,
        })).collect::<Vec<_>>(),
        "notes": meta.notes,
    })
}

/// Replaces the text between `<!-- asmalloc-bench:begin -->` and
/// `<!-- asmalloc-bench:end -->` in `doc` with `section`.
pub fn splice(doc: &str, section: &str) -> Option<String> {
    const BEGIN: &str = "<!-- asmalloc-bench:begin -->";
    const END: &str = "<!-- asmalloc-bench:end -->";
    let b = doc.find(BEGIN)? + BEGIN.len();
    let e = doc[b..].find(END)? + b;
    Some(format!("{}\n{}{}", &doc[..b], section, &doc[e..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_between_markers() {
        let doc = "a\n<!-- asmalloc-bench:begin -->\nold\n<!-- asmalloc-bench:end -->\nz\n";
        let out = splice(doc, "new\n").unwrap();
        assert_eq!(
            out,
            "a\n<!-- asmalloc-bench:begin -->\nnew\n<!-- asmalloc-bench:end -->\nz\n"
        );
        assert_eq!(splice("no markers", "x"), None);
    }

    #[test]
    fn byte_sizes_read_naturally() {
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(bytes(2048.0), "2.0 KiB");
        assert_eq!(bytes(3.5 * 1024.0 * 1024.0), "3.5 MiB");
    }
}
