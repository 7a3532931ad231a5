//! `asmalloc report LOG`: the top sites and the verdicts of a log, and
//! optionally a plot.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use asmalloc::report::{Align, write_table};

use crate::log::{Log, human, verdict_sentence};
use crate::svg;

pub(crate) fn report(path: &Path, top: usize, svg_path: Option<&Path>) -> ExitCode {
    let log = match Log::read(path) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("asmalloc: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    for (line, why) in &log.bad_lines {
        eprintln!("asmalloc: {}:{line}: {why}; line skipped", path.display());
    }
    let mut out = std::io::stdout().lock();
    let _ = write_report(&mut out, &log, path, top);
    if let Some(svg_path) = svg_path {
        match std::fs::write(svg_path, svg::plot(&log, top)) {
            Ok(()) => {
                let _ = writeln!(out, "plot: {}", svg_path.display());
            }
            Err(e) => {
                eprintln!("asmalloc: cannot write {}: {e}", svg_path.display());
                return ExitCode::from(2);
            }
        }
    }
    if log.bad_lines.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The report text.
pub(crate) fn write_report(
    w: &mut dyn Write,
    log: &Log,
    path: &Path,
    top: usize,
) -> std::io::Result<()> {
    let start = log.start_ns();
    let pids = log.pids();
    writeln!(
        w,
        "asmalloc report: {}: {} samples over {:.1} s from {} process{} ({})",
        path.display(),
        log.lines - log.bad_lines.len(),
        (log.end_ns() - start) as f64 / 1e9,
        pids.len(),
        if pids.len() == 1 { "" } else { "es" },
        pids.iter()
            .map(|p| format!("pid {p}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    let leaking = log.leaking();
    let mut sites: Vec<_> = log.sites.iter().collect();
    sites.sort_by(|a, b| b.1.last_bytes().cmp(&a.1.last_bytes()).then(a.0.cmp(b.0)));
    writeln!(w, "top {} sites by final net bytes:", top.min(sites.len()))?;
    let rows: Vec<Vec<String>> = sites
        .iter()
        .take(top)
        .map(|((pid, id), s)| {
            let verdict = leaking
                .iter()
                .find(|v| v.pid == *pid && v.id == *id)
                .map_or(String::new(), |v| v.kind.replace('_', " "));
            vec![
                if pids.len() > 1 {
                    format!("{pid}/{id}")
                } else {
                    id.to_string()
                },
                s.name.type_name.clone(),
                s.name.to_string(),
                human(s.last_bytes()),
                human(s.peak_bytes()),
                s.last_count.to_string(),
                verdict,
            ]
        })
        .collect();
    write_table(
        w,
        "  ",
        &["id", "type", "site", "final", "peak", "blocks", "verdict"],
        &[
            Align::Right,
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Left,
        ],
        &rows,
    )?;
    writeln!(w, "verdicts ({}):", log.verdicts.len())?;
    for v in &log.verdicts {
        writeln!(w, "  {}", verdict_sentence(v, start))?;
    }
    if leaking.is_empty() {
        writeln!(w, "no site is judged leaking at the end of the log")?;
    } else {
        for v in &leaking {
            writeln!(
                w,
                "still leaking at the end: site {} ({}) {}",
                v.id, v.name.type_name, v.name
            )?;
        }
    }
    Ok(())
}
