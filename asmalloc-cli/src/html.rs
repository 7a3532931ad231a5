//! `asmalloc report LOG --html FILE`: one self-contained page (no network,
//! no external file) with the chart of `--svg` — drawn by the page's own
//! script from the data embedded in it, with the values of every series
//! under the pointer — the site table and the verdicts of the text report.
//!
//! When the page has been built, `<body data-chart="ready">` and the
//! chart's `<polyline class="series[ leak]" data-site=ID>` elements are in
//! the document (the test loads it in a headless browser and looks for
//! them). Opening the page as `page.html#t=SECONDS` shows the values at that
//! time without a pointer.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use asmalloc::detector::DetectorConfig;

use crate::log::{Conclusion, Log, human};
use crate::report::{Row, rows};
use crate::svg::{BOTTOM, Chart, H, LEFT, RIGHT, TOP, W, esc, tick_seconds};

/// The chart's data, as the page's script reads it.
fn chart_json(chart: &Chart) -> String {
    let series: Vec<serde_json::Value> = chart
        .series
        .iter()
        .map(|s| {
            json!({
                "pid": s.pid,
                "id": s.id,
                "label": s.label,
                "word": s.word,
                "legend": s.legend(),
                "leak": s.leak,
                "colour": s.colour,
                "width": s.width,
                "points": s.points.iter().map(|&(t, b)| json!([t, b])).collect::<Vec<_>>(),
            })
        })
        .collect();
    let data = json!({
        "W": W, "H": H, "LEFT": LEFT, "RIGHT": RIGHT, "TOP": TOP, "BOTTOM": BOTTOM,
        "duration_s": chart.duration_s,
        "ymax": chart.ymax,
        "x_ticks": chart.x_ticks.iter().map(|&x| json!([x, tick_seconds(x)])).collect::<Vec<_>>(),
        "y_ticks": chart.y_ticks.iter().map(|&b| json!([b, human(b)])).collect::<Vec<_>>(),
        "series": series,
    });
    // Inside <script>: no "</" may close it early.
    data.to_string().replace("</", "<\\/")
}

const STYLE: &str = r###"
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
.summary { color: #555; margin: 0 0 1em; }
#chart-box { position: relative; display: inline-block; }
#hover { position: absolute; pointer-events: none; background: rgba(255,255,255,.95);
  border: 1px solid #bbb; padding: .3em .5em; font-size: 12px; white-space: nowrap; display: none; }
#hover .time { font-weight: bold; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: .2em .7em; border-bottom: 1px solid #e4e4e4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.leak td { color: #b00; font-weight: bold; }
ol, ul { font-size: 13px; }
code { font-size: 12px; }
"###;

/// The page's script: draws the chart from the JSON, follows the pointer.
const SCRIPT: &str = r###"
(function () {
  "use strict";
  var d = JSON.parse(document.getElementById("chart-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function x(t) { return d.LEFT + t / d.duration_s * (d.W - d.LEFT - d.RIGHT); }
  function y(b) { return d.H - d.BOTTOM - Math.max(b, 0) / d.ymax * (d.H - d.TOP - d.BOTTOM); }
  function human(b) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], v = Math.abs(b), u = 0;
    while (v >= 1024 && u + 1 < units.length) { v /= 1024; u++; }
    var s = b < 0 ? "-" : "";
    return u === 0 ? s + v + " B" : s + v.toFixed(1) + " " + units[u];
  }
  // The value of a series at time t: linear between its points (they are
  // the samples' values), the ends held.
  function valueAt(points, t) {
    if (points.length === 0) return 0;
    if (t <= points[0][0]) return points[0][1];
    for (var i = 1; i < points.length; i++) {
      if (t <= points[i][0]) {
        var a = points[i - 1], b = points[i];
        var f = b[0] === a[0] ? 1 : (t - a[0]) / (b[0] - a[0]);
        return Math.round(a[1] + (b[1] - a[1]) * f);
      }
    }
    return points[points.length - 1][1];
  }
  var svg = el("svg", { xmlns: NS, width: d.W, height: d.H, viewBox: "0 0 " + d.W + " " + d.H,
    "font-family": "sans-serif", "font-size": 12, id: "chart" });
  svg.appendChild(el("title", {}, "asmalloc: net bytes per site over time"));
  svg.appendChild(el("rect", { width: d.W, height: d.H, fill: "white" }));
  svg.appendChild(el("text", { x: d.LEFT, y: 24, "font-size": 15 },
    "Net bytes per site over time (" + d.duration_s.toFixed(1) + " s)"));
  var x0 = d.LEFT, x1 = d.W - d.RIGHT, y0 = d.H - d.BOTTOM, y1 = d.TOP;
  var axes = el("g", { "class": "axes", stroke: "#333", "stroke-width": 1 });
  axes.appendChild(el("line", { x1: x0, y1: y0, x2: x1, y2: y0 }));
  axes.appendChild(el("line", { x1: x0, y1: y1, x2: x0, y2: y0 }));
  svg.appendChild(axes);
  d.y_ticks.forEach(function (tk) {
    svg.appendChild(el("line", { "class": "grid", x1: x0, y1: y(tk[0]), x2: x1, y2: y(tk[0]), stroke: "#eee" }));
    svg.appendChild(el("text", { "class": "ytick", x: d.LEFT - 6, y: y(tk[0]) + 4, "text-anchor": "end" }, tk[1]));
  });
  d.x_ticks.forEach(function (tk) {
    svg.appendChild(el("text", { "class": "xtick", x: x(tk[0]), y: d.H - d.BOTTOM + 18, "text-anchor": "middle" }, tk[1]));
  });
  svg.appendChild(el("text", { "class": "xlabel", x: (x0 + x1) / 2, y: d.H - 12, "text-anchor": "middle" },
    "time since the first sample (seconds)"));
  svg.appendChild(el("text", { "class": "ylabel", transform: "translate(16 " + (y0 + y1) / 2 + ") rotate(-90)",
    "text-anchor": "middle" }, "net bytes"));
  d.series.forEach(function (s, i) {
    var pts = s.points.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" ");
    var line = el("polyline", { "class": "series" + (s.leak ? " leak" : ""), "data-site": s.id, "data-pid": s.pid,
      fill: "none", stroke: s.colour, "stroke-width": s.width, points: pts });
    line.appendChild(el("title", {}, s.legend));
    svg.appendChild(line);
    var ly = d.TOP + 18 * i;
    var g = el("g", { "class": "legend" });
    g.appendChild(el("line", { x1: d.W - d.RIGHT + 12, y1: ly, x2: d.W - d.RIGHT + 32, y2: ly,
      stroke: s.colour, "stroke-width": s.width }));
    g.appendChild(el("text", { x: d.W - d.RIGHT + 38, y: ly + 4 }, s.legend));
    svg.appendChild(g);
  });
  var guide = el("line", { "class": "guide", x1: 0, y1: y1, x2: 0, y2: y0, stroke: "#888",
    "stroke-dasharray": "3 3", visibility: "hidden" });
  svg.appendChild(guide);
  var box = document.getElementById("chart-box");
  box.insertBefore(svg, box.firstChild);
  var hover = document.getElementById("hover");

  // The values of every series at time t, in the box under the pointer.
  function show(t, px, py) {
    t = Math.min(Math.max(t, 0), d.duration_s);
    guide.setAttribute("x1", x(t));
    guide.setAttribute("x2", x(t));
    guide.setAttribute("visibility", "visible");
    hover.textContent = "";
    var head = document.createElement("div");
    head.className = "time";
    head.textContent = t.toFixed(1) + " s";
    hover.appendChild(head);
    d.series.forEach(function (s) {
      var row = document.createElement("div");
      row.className = "value";
      row.setAttribute("data-site", s.id);
      row.style.color = s.colour;
      row.textContent = s.label + ": " + human(valueAt(s.points, t));
      hover.appendChild(row);
    });
    hover.style.left = (px + 14) + "px";
    hover.style.top = (py + 14) + "px";
    hover.style.display = "block";
  }
  svg.addEventListener("mousemove", function (ev) {
    var r = svg.getBoundingClientRect();
    var px = ev.clientX - r.left, py = ev.clientY - r.top;
    if (px < x0 || px > x1) { hover.style.display = "none"; guide.setAttribute("visibility", "hidden"); return; }
    show((px - x0) / (x1 - x0) * d.duration_s, px, py);
  });
  svg.addEventListener("mouseleave", function () {
    hover.style.display = "none";
    guide.setAttribute("visibility", "hidden");
  });
  var m = /^#t=([0-9.]+)$/.exec(location.hash);
  if (m) show(parseFloat(m[1]), x(parseFloat(m[1])), d.TOP);
  document.body.setAttribute("data-chart", "ready");
})();
"###;

/// The sampled stacks (a run with `--stacks`): their text, as `asmalloc
/// report` prints it, and the flame graph of their live bytes, inline (an
/// SVG of its own, with its own search and zoom). Nothing without stacks.
fn stacks_section(html: &mut String, log: &Log, path: &Path, top: usize) {
    if log.stacks.is_none() {
        return;
    }
    let mut text = Vec::new();
    if crate::flamegraph::write_text(&mut text, log, top).is_err() {
        return;
    }
    let _ = writeln!(
        html,
        "<h2>Sampled stacks</h2>\n<pre id=\"stacks\">{}</pre>",
        esc(&String::from_utf8_lossy(&text))
    );
    if let Ok(svg) = crate::flamegraph::svg(log, path) {
        let svg = String::from_utf8_lossy(&svg);
        // Inline: from the <svg> element on (no XML declaration or
        // DOCTYPE inside an HTML body).
        if let Some(start) = svg.find("<svg") {
            let _ = writeln!(html, "<div id=\"flamegraph\">{}</div>", &svg[start..]);
        }
    }
}

/// The page.
pub(crate) fn page(
    log: &Log,
    path: &Path,
    top: usize,
    chart: &Chart,
    conclusions: &[Conclusion],
) -> String {
    let mut html = String::new();
    let title = format!("asmalloc report: {}", path.display());
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p class=\"summary\">{}</p>\n",
        esc(&title),
        esc(&title),
        esc(&crate::report::headline(log, path))
    );
    html.push_str(
        "<div id=\"chart-box\"><div id=\"hover\"></div></div>\n\
         <noscript><p>The chart needs JavaScript; <code>asmalloc report --svg</code> draws it as a file.</p></noscript>\n",
    );
    let table: Vec<Row> = rows(log, top, conclusions);
    let _ = writeln!(
        html,
        "<h2>Top {} sites by final net bytes, then bytes allocated in all</h2>\n<table id=\"sites\">\n<tr><th>id</th><th>type</th><th>site</th><th>calls</th><th>total</th><th>peak</th><th>final</th><th>blocks</th><th>verdict</th></tr>",
        table.len()
    );
    for r in &table {
        let _ = writeln!(
            html,
            "<tr{} data-site=\"{}\"><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"verdict\">{}</td></tr>",
            if r.leak { " class=\"leak\"" } else { "" },
            r.id,
            esc(&r.id_text),
            esc(&r.type_name),
            esc(&r.place),
            esc(&r.calls),
            esc(&r.total),
            esc(&r.peak),
            esc(&r.final_bytes),
            esc(&r.blocks),
            esc(&r.word)
        );
    }
    html.push_str("</table>\n");
    let _ = writeln!(
        html,
        "<h2>Verdicts ({})</h2>\n<ol id=\"verdicts\">",
        log.verdicts.len()
    );
    for (v, sentence) in log.verdict_sentences(&DetectorConfig::DEFAULT) {
        let _ = writeln!(
            html,
            "<li data-site=\"{}\" data-kind=\"{}\">{}</li>",
            v.id,
            esc(&v.kind),
            esc(sentence.trim())
        );
    }
    html.push_str("</ol>\n<h2>At the end</h2>\n<ul id=\"end\">\n");
    for line in crate::report::end_lines(log, conclusions) {
        let _ = writeln!(html, "<li>{}</li>", esc(&line));
    }
    html.push_str("</ul>\n");
    stacks_section(&mut html, log, path, top);
    let _ = write!(
        html,
        "<script type=\"application/json\" id=\"chart-data\">{}</script>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        chart_json(chart)
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_cannot_close_its_script() {
        let chart = Chart {
            duration_s: 1.0,
            ymax: 1,
            series: vec![crate::svg::Series {
                pid: 1,
                id: 2,
                label: "site 2 </script><b>".into(),
                word: String::new(),
                leak: false,
                colour: "#000",
                width: 1.0,
                points: vec![(0.0, 0)],
            }],
            x_ticks: vec![0.0],
            y_ticks: vec![0],
        };
        let json = chart_json(&chart);
        assert!(!json.contains("</"), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["series"][0]["label"], "site 2 </script><b>");
    }
}
