//! `asmalloc report LOG`: the top sites and the verdicts of a log, what it
//! says at the end of the run, and optionally a plot (`--svg`) and a page
//! (`--html`) that use the table's words, a pprof heap profile
//! (`--pprof`, see [`crate::pprof`]), and a flame graph of the sampled
//! stacks (`--flamegraph`, see [`crate::flamegraph`]).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use asmalloc::detector::DetectorConfig;
use asmalloc::report::{Align, write_table};

use crate::log::{Conclusion, Log, State, human};
use crate::{flamegraph, html, pprof, svg};

/// Where `report` writes its extra outputs.
pub(crate) struct Outputs<'a> {
    pub svg: Option<&'a Path>,
    pub html: Option<&'a Path>,
    pub pprof: Option<&'a Path>,
    pub flamegraph: Option<&'a Path>,
}

pub(crate) fn report(path: &Path, top: usize, outputs: Outputs<'_>) -> ExitCode {
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
    let conclusions = log.conclusions(&DetectorConfig::DEFAULT);
    let mut out = std::io::stdout().lock();
    let _ = write_report(&mut out, &log, path, top, &conclusions);
    let chart = svg::chart(&log, top, &conclusions);
    let files = [
        (outputs.svg, "plot", svg::plot(&chart)),
        (
            outputs.html,
            "page",
            html::page(&log, path, top, &chart, &conclusions),
        ),
    ];
    for (file, what, content) in files {
        let Some(file) = file else { continue };
        match std::fs::write(file, content) {
            Ok(()) => {
                let _ = writeln!(out, "{what}: {}", file.display());
            }
            Err(e) => {
                eprintln!("asmalloc: cannot write {}: {e}", file.display());
                return ExitCode::from(2);
            }
        }
    }
    if let Some(file) = outputs.pprof {
        match pprof::write(&log, file) {
            Ok(()) => {
                let _ = writeln!(out, "pprof heap profile: {}", file.display());
            }
            Err(e) => {
                eprintln!("asmalloc: cannot write {}: {e}", file.display());
                return ExitCode::from(2);
            }
        }
    }
    if let Some(file) = outputs.flamegraph {
        let written = flamegraph::svg(&log, path)
            .and_then(|svg| std::fs::write(file, svg).map_err(flamegraph::Error::Io));
        match written {
            Ok(()) => {
                let _ = writeln!(out, "flame graph: {}", file.display());
            }
            Err(e) => {
                eprintln!(
                    "asmalloc: no flame graph written to {}: {e}",
                    file.display()
                );
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

/// `LOG: 21 samples over 20.0 s from 1 process (pid 4242)`.
pub(crate) fn headline(log: &Log, path: &Path) -> String {
    let pids = log.pids();
    format!(
        "{}: {} samples over {:.1} s from {} process{} ({})",
        path.display(),
        log.lines - log.bad_lines.len(),
        (log.end_ns() - log.start_ns()) as f64 / 1e9,
        pids.len(),
        if pids.len() == 1 { "" } else { "es" },
        pids.iter()
            .map(|p| format!("pid {p}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// One row of the site table (text report and page).
pub(crate) struct Row {
    pub id: u16,
    /// `7`, or `4242/7` when the log has several processes.
    pub id_text: String,
    pub type_name: String,
    pub place: String,
    /// Allocations charged to the site, `-` when the log does not say.
    pub calls: String,
    /// Bytes they asked for in all, `-` when the log does not say.
    pub total: String,
    pub final_bytes: String,
    pub peak: String,
    pub blocks: String,
    /// The verdict word (the plot's legend says the same).
    pub word: String,
    pub leak: bool,
}

/// The table's rows: the `top` sites by final net bytes, then by bytes
/// allocated in all.
pub(crate) fn rows(log: &Log, top: usize, conclusions: &[Conclusion]) -> Vec<Row> {
    let multi = log.pids().len() > 1;
    svg::ranked(log)
        .into_iter()
        .take(top)
        .map(|(pid, id)| {
            let s = &log.sites[&(pid, id)];
            let c = conclusions.iter().find(|c| c.pid == pid && c.id == id);
            Row {
                id,
                id_text: if multi {
                    format!("{pid}/{id}")
                } else {
                    id.to_string()
                },
                type_name: if s.name.type_name.is_empty() {
                    "-".to_string()
                } else {
                    s.name.type_name.clone()
                },
                place: s.name.place(id),
                calls: if log.has_totals {
                    s.last_allocs.to_string()
                } else {
                    "-".to_string()
                },
                total: if log.has_totals {
                    human(i64::try_from(s.last_alloc_bytes).unwrap_or(i64::MAX))
                } else {
                    "-".to_string()
                },
                final_bytes: human(s.last_bytes()),
                peak: human(s.peak_bytes()),
                blocks: s.last_count.to_string(),
                word: c.map_or_else(String::new, Conclusion::word),
                leak: c.is_some_and(Conclusion::is_leak),
            }
        })
        .collect()
}

/// What the log says at the end, one line each: the sites still leaking
/// (or leaking until the program freed them at exit), those that grew over
/// a run too short for a verdict; or that no site is judged leaking.
pub(crate) fn end_lines(log: &Log, conclusions: &[Conclusion]) -> Vec<String> {
    let start = log.start_ns();
    let mut lines = Vec::new();
    for c in conclusions {
        match &c.state {
            State::Leak {
                verdict,
                freed_at_exit: None,
            } => lines.push(format!(
                "still leaking at the end: {} — {} live; {}",
                c.name.label(c.id),
                human(c.live),
                verdict.as_of(start)
            )),
            State::Leak { .. } | State::ShortRun(_) => lines.push(c.sentence(start)),
            State::Retracted(_) => {}
        }
    }
    if !conclusions.iter().any(Conclusion::is_leak) {
        lines.push("no site is judged leaking at the end of the log".to_string());
    }
    lines
}

/// The report text.
pub(crate) fn write_report(
    w: &mut dyn Write,
    log: &Log,
    path: &Path,
    top: usize,
    conclusions: &[Conclusion],
) -> std::io::Result<()> {
    writeln!(w, "asmalloc report: {}", headline(log, path))?;
    let table = rows(log, top, conclusions);
    writeln!(
        w,
        "top {} sites by final net bytes, then bytes allocated in all:",
        table.len()
    )?;
    let cells: Vec<Vec<String>> = table
        .into_iter()
        .map(|r| {
            vec![
                r.id_text,
                r.type_name,
                r.place,
                r.calls,
                r.total,
                r.peak,
                r.final_bytes,
                r.blocks,
                r.word,
            ]
        })
        .collect();
    write_table(
        w,
        "  ",
        &[
            "id", "type", "site", "calls", "total", "peak", "final", "blocks", "verdict",
        ],
        &[
            Align::Right,
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Left,
        ],
        &cells,
    )?;
    writeln!(w, "verdicts ({}):", log.verdicts.len())?;
    for (_, sentence) in log.verdict_sentences(&DetectorConfig::DEFAULT) {
        writeln!(w, "  {sentence}")?;
    }
    for line in end_lines(log, conclusions) {
        writeln!(w, "{line}")?;
    }
    flamegraph::write_text(w, log, top)?;
    Ok(())
}
