//! The plot: net bytes per site over time, as a self-contained SVG.
//! Sites judged leaking at the end are drawn thick and red; the others thin,
//! in muted colours.

use std::fmt::Write as _;

use crate::log::{Log, human};

const W: f64 = 960.0;
const H: f64 = 540.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 330.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const PALETTE: [&str; 8] = [
    "#4c78a8", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#9d755d", "#bab0ac", "#f58518",
];

/// Escapes text for XML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The SVG document for the `top` sites by final net bytes.
pub(crate) fn plot(log: &Log, top: usize) -> String {
    let leaking: Vec<(i64, u16)> = log.leaking().iter().map(|v| (v.pid, v.id)).collect();
    let mut sites: Vec<_> = log.sites.iter().collect();
    sites.sort_by(|a, b| b.1.last_bytes().cmp(&a.1.last_bytes()).then(a.0.cmp(b.0)));
    sites.truncate(top);
    let t0 = log.start_ns();
    let t1 = log.end_ns().max(t0 + 1);
    let ymax = sites
        .iter()
        .map(|(_, s)| s.peak_bytes())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * (W - LEFT - RIGHT);
    let y = |b: i64| H - BOTTOM - (b.max(0) as f64 / ymax) * (H - TOP - BOTTOM);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<title>asmalloc: net bytes per site over time</title>
<rect width="{W}" height="{H}" fill="white"/>
<text x="{LEFT}" y="24" font-size="15">Net bytes per site over time ({:.1} s)</text>"#,
        (t1 - t0) as f64 / 1e9
    );
    // Axes and labels.
    let _ = writeln!(
        svg,
        r##"<g stroke="#333" stroke-width="1"><line x1="{LEFT}" y1="{}" x2="{}" y2="{}"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}"/></g>"##,
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM,
        H - BOTTOM
    );
    for i in 0..=4 {
        let b = (ymax * f64::from(i) / 4.0) as i64;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y(b) + 4.0,
            esc(&human(b))
        );
        let t = t0 + (t1 - t0) * i64::from(i) / 4;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{:.1} s</text>"#,
            x(t),
            H - BOTTOM + 18.0,
            (t - t0) as f64 / 1e9
        );
    }
    // One series per site, with its legend entry.
    for (i, ((pid, id), s)) in sites.iter().enumerate() {
        let leak = leaking.contains(&(*pid, *id));
        let (colour, width) = if leak {
            ("#d62728", 3.0)
        } else {
            (PALETTE[i % PALETTE.len()], 1.5)
        };
        let mut points = String::new();
        for &(t, b) in &s.points {
            let _ = write!(points, "{:.1},{:.1} ", x(t), y(b));
        }
        let label = format!(
            "site {id} {}{}",
            s.name,
            if leak { " — possible leak" } else { "" }
        );
        let _ = writeln!(
            svg,
            r#"<polyline class="series{}" data-site="{id}" fill="none" stroke="{colour}" stroke-width="{width}" points="{}"><title>{}</title></polyline>"#,
            if leak { " leak" } else { "" },
            points.trim_end(),
            esc(&label)
        );
        let ly = TOP + 18.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{}" y1="{ly:.1}" x2="{}" y2="{ly:.1}" stroke="{colour}" stroke-width="{width}"/><text x="{}" y="{:.1}">{}</text>"#,
            W - RIGHT + 12.0,
            W - RIGHT + 32.0,
            W - RIGHT + 38.0,
            ly + 4.0,
            esc(&label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}
