//! The plot: net bytes per site over time, as a self-contained SVG, and the
//! data behind it (shared with the HTML page, which draws the same chart).
//!
//! Each site's line runs from its process's first sample (a site not yet
//! logged is 0) to its last (the value holds until the log says otherwise).
//! The x axis is seconds since the log's first sample, the y axis bytes.
//! The legend names each site and its state in the words of the report's
//! table; sites judged leaking at the end are drawn thick and red.

use std::fmt::Write as _;

use crate::log::{Conclusion, Log, human};

pub(crate) const W: f64 = 960.0;
pub(crate) const H: f64 = 540.0;
pub(crate) const LEFT: f64 = 90.0;
pub(crate) const RIGHT: f64 = 360.0;
pub(crate) const TOP: f64 = 40.0;
pub(crate) const BOTTOM: f64 = 56.0;
const PALETTE: [&str; 8] = [
    "#4c78a8", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#9d755d", "#bab0ac", "#f58518",
];
pub(crate) const LEAK_COLOUR: &str = "#d62728";

/// One plotted site.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub pid: i64,
    pub id: u16,
    /// `site 7 (cache) cache.c:30 cache_put` (with `pid/` before the id
    /// when the log has several processes).
    pub label: String,
    /// The table's verdict word ("possible leak", "leak, freed at exit", …;
    /// empty for none).
    pub word: String,
    pub leak: bool,
    pub colour: &'static str,
    pub width: f64,
    /// (seconds since the log's start, net bytes), from its process's first
    /// sample to its last; runs of equal values keep their ends only.
    pub points: Vec<(f64, i64)>,
}

impl Series {
    /// The legend's text: the label, and the word when there is one.
    pub fn legend(&self) -> String {
        if self.word.is_empty() {
            self.label.clone()
        } else {
            format!("{} — {}", self.label, self.word)
        }
    }
}

/// Everything the chart shows.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// Seconds from the log's first sample to its last.
    pub duration_s: f64,
    /// The y axis's top (bytes).
    pub ymax: i64,
    pub series: Vec<Series>,
    /// (seconds) ticks of the x axis, (bytes) ticks of the y axis.
    pub x_ticks: Vec<f64>,
    pub y_ticks: Vec<i64>,
}

/// The sites to plot, in the table's order: by final net bytes, then by
/// bytes allocated in all (a run that freed everything), then id.
pub(crate) fn ranked(log: &Log) -> Vec<(i64, u16)> {
    let mut sites: Vec<_> = log.sites.iter().collect();
    sites.sort_by(|a, b| {
        b.1.last_bytes()
            .cmp(&a.1.last_bytes())
            .then(b.1.last_alloc_bytes.cmp(&a.1.last_alloc_bytes))
            .then(a.0.cmp(b.0))
    });
    sites.into_iter().map(|(k, _)| *k).collect()
}

/// A round step for about `target` ticks over `range`: 1, 2 or 5 times a
/// power of `base` (10 for seconds; 1024 for bytes, then 1, 2, 5 × 10^k
/// of that unit).
fn nice_step(range: f64, target: f64, binary: bool) -> f64 {
    let raw = (range / target).max(1e-9);
    let unit = if binary {
        let mut u = 1.0;
        while raw >= u * 1024.0 {
            u *= 1024.0;
        }
        u
    } else {
        1.0
    };
    let scaled = raw / unit;
    let pow = 10f64.powf(scaled.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|&s| s >= scaled)
        .unwrap_or(10.0 * pow);
    (step * unit).max(if binary { 1.0 } else { 1e-3 })
}

/// The chart of the `top` sites by final net bytes.
pub(crate) fn chart(log: &Log, top: usize, conclusions: &[Conclusion]) -> Chart {
    let t0 = log.start_ns();
    let duration_s = ((log.end_ns() - t0) as f64 / 1e9).max(1e-3);
    let multi = log.pids().len() > 1;
    let mut series = Vec::new();
    for (i, key) in ranked(log).into_iter().take(top).enumerate() {
        let s = &log.sites[&key];
        let (pid, id) = key;
        let conclusion = conclusions.iter().find(|c| c.pid == pid && c.id == id);
        let leak = conclusion.is_some_and(Conclusion::is_leak);
        let word = conclusion.map_or_else(String::new, Conclusion::word);
        let (colour, width) = if leak {
            (LEAK_COLOUR, 3.0)
        } else {
            (PALETTE[i % PALETTE.len()], 1.5)
        };
        let mut label = s.name.label(id);
        if multi {
            label = label.replacen("site ", &format!("site {pid}/"), 1);
        }
        let mut points: Vec<(f64, i64)> = Vec::new();
        let times = log.totals.get(&pid).map(Vec::as_slice).unwrap_or_default();
        for (j, &(t, _)) in times.iter().enumerate() {
            let v = s.at(t);
            let x = (t - t0) as f64 / 1e9;
            let same_as_last = points.last().is_some_and(|p| p.1 == v);
            let same_as_next = times.get(j + 1).is_some_and(|n| s.at(n.0) == v);
            if j > 0 && same_as_last && same_as_next {
                continue; // inside a flat run: its ends are enough
            }
            points.push((x, v));
        }
        series.push(Series {
            pid,
            id,
            label,
            word,
            leak,
            colour,
            width,
            points,
        });
    }
    let peak = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .max()
        .unwrap_or(1)
        .max(1);
    let ystep = nice_step(peak as f64, 5.0, true) as i64;
    let ystep = ystep.max(1);
    let ymax = ((peak + ystep - 1) / ystep).max(1) * ystep;
    let y_ticks = (0..=ymax / ystep).map(|k| k * ystep).collect();
    let xstep = nice_step(duration_s, 6.0, false);
    let x_ticks = (0..)
        .map(|k| k as f64 * xstep)
        .take_while(|&x| x <= duration_s + 1e-9)
        .collect();
    Chart {
        duration_s,
        ymax,
        series,
        x_ticks,
        y_ticks,
    }
}

/// Escapes text for XML and HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// `12 s`, `1.5 s`: a tick label.
pub(crate) fn tick_seconds(x: f64) -> String {
    let text = format!("{x:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} s")
}

impl Chart {
    pub fn x(&self, seconds: f64) -> f64 {
        LEFT + seconds / self.duration_s * (W - LEFT - RIGHT)
    }

    pub fn y(&self, bytes: i64) -> f64 {
        H - BOTTOM - (bytes.max(0) as f64 / self.ymax as f64) * (H - TOP - BOTTOM)
    }
}

/// The SVG document.
pub(crate) fn plot(chart: &Chart) -> String {
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<title>asmalloc: net bytes per site over time</title>
<rect width="{W}" height="{H}" fill="white"/>
<text x="{LEFT}" y="24" font-size="15">Net bytes per site over time ({:.1} s)</text>"#,
        chart.duration_s
    );
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
    let _ = writeln!(
        svg,
        r##"<g class="axes" stroke="#333" stroke-width="1"><line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}"/><line x1="{x0}" y1="{y1}" x2="{x0}" y2="{y0}"/></g>"##
    );
    for &b in &chart.y_ticks {
        let y = chart.y(b);
        let _ = writeln!(
            svg,
            r##"<line class="grid" x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eee"/><text class="ytick" x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT - 6.0,
            y + 4.0,
            esc(&human(b))
        );
    }
    for &s in &chart.x_ticks {
        let _ = writeln!(
            svg,
            r#"<text class="xtick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            chart.x(s),
            H - BOTTOM + 18.0,
            tick_seconds(s)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text class="xlabel" x="{:.1}" y="{}" text-anchor="middle">time since the first sample (seconds)</text>"#,
        (x0 + x1) / 2.0,
        H - 12.0
    );
    let _ = writeln!(
        svg,
        r#"<text class="ylabel" transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">net bytes</text>"#,
        (y0 + y1) / 2.0
    );
    for (i, s) in chart.series.iter().enumerate() {
        let mut points = String::new();
        for &(t, b) in &s.points {
            let _ = write!(points, "{:.1},{:.1} ", chart.x(t), chart.y(b));
        }
        let legend = esc(&s.legend());
        let _ = writeln!(
            svg,
            r#"<polyline class="series{}" data-site="{}" data-pid="{}" fill="none" stroke="{}" stroke-width="{}" points="{}"><title>{legend}</title></polyline>"#,
            if s.leak { " leak" } else { "" },
            s.id,
            s.pid,
            s.colour,
            s.width,
            points.trim_end(),
        );
        let ly = TOP + 18.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<g class="legend"><line x1="{}" y1="{ly:.1}" x2="{}" y2="{ly:.1}" stroke="{}" stroke-width="{}"/><text x="{}" y="{:.1}">{legend}</text></g>"#,
            W - RIGHT + 12.0,
            W - RIGHT + 32.0,
            s.colour,
            s.width,
            W - RIGHT + 38.0,
            ly + 4.0,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(20.0, 6.0, false), 5.0);
        assert_eq!(nice_step(600.0, 6.0, false), 100.0);
        assert_eq!(nice_step(1.2, 6.0, false), 0.2);
        assert_eq!(nice_step((112 << 20) as f64, 4.0, true), (50 << 20) as f64);
        assert_eq!(nice_step(3000.0, 4.0, true), 1000.0);
        assert_eq!(tick_seconds(5.0), "5 s");
        assert_eq!(tick_seconds(0.5), "0.5 s");
        assert_eq!(tick_seconds(3.0 * 0.2), "0.6 s");
        assert_eq!(tick_seconds(0.0), "0 s");
    }
}
