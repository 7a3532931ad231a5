//! Sampled stacks from the log: `asmalloc report LOG --flamegraph FILE.svg`
//! draws their estimated live bytes as a flame graph, and the text report
//! lists the top ones.
//!
//! The stacks are those of the log's last line that lists any (the monitor
//! writes the list whenever it changes, so that line holds the latest
//! estimates; see `asmalloc::log_format::LogLine::stacks`). They become
//! folded stacks, the flame-graph tools' input — one line per stack, root
//! frame first, frames joined by `;`, then the weight:
//!
//! ```text
//! main (stacks.c:70);serve (stacks.c:52);handle (stacks.c:41);keep_node (stacks.c:23) 79691776
//! ```
//!
//! a frame named `function (file:line)`, `function (module)` without line
//! information, or `module+0xOFFSET` for a module without symbols (`addr2line
//! -e MODULE 0xOFFSET` names it from an unstripped copy), and the weight the
//! estimated live bytes. `inferno` (the Rust port of Brendan Gregg's
//! FlameGraph) draws them: a frame's width is the live bytes allocated
//! under it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use asmalloc::log_format::{LogFrame, LogStack};
use inferno::flamegraph::{self, Options, color};

use crate::log::{Log, LoggedStacks, human};

/// Frames listed per stack in the text report.
const FRAMES_SHOWN: usize = 12;

/// Why no flame graph was drawn.
#[derive(Debug)]
pub(crate) enum Error {
    /// No line of the log lists sampled stacks.
    NoStacks,
    /// The last list has no stack with live bytes.
    NothingLive,
    /// Drawing or writing failed.
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoStacks => write!(
                f,
                "the log has no sampled stacks: run the program with `asmalloc run --stacks` \
                 (or ASMALLOC_SAMPLE_BYTES set) and a log"
            ),
            Error::NothingLive => write!(
                f,
                "no sampled stack has live bytes at the end of the log: everything sampled was freed"
            ),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

/// How a frame is named in the graph and the text report.
pub(crate) fn frame_name(frame: &LogFrame) -> String {
    let function = if frame.function.is_empty() {
        format!("{:#x}", frame.addr)
    } else {
        frame.function.clone()
    };
    let name = if frame.line > 0 {
        format!("{function} ({}:{})", frame.file, frame.line)
    } else if !frame.file.is_empty() && !function.contains("+0x") {
        // No line information: the module it is in.
        format!("{function} ({})", frame.file)
    } else {
        function
    };
    // `;` separates frames in a folded line.
    name.replace(';', ":")
}

/// The folded lines of the stacks with live bytes, sorted (as inferno
/// wants them), identical paths added together.
pub(crate) fn folded(stacks: &[LogStack]) -> Vec<String> {
    let mut paths: BTreeMap<String, i64> = BTreeMap::new();
    for s in stacks
        .iter()
        .filter(|s| s.est_bytes > 0 && !s.frames.is_empty())
    {
        let path = s
            .frames
            .iter()
            .rev()
            .map(frame_name)
            .collect::<Vec<_>>()
            .join(";");
        *paths.entry(path).or_default() += s.est_bytes;
    }
    paths
        .into_iter()
        .map(|(path, bytes)| format!("{path} {bytes}"))
        .collect()
}

/// The flame graph of the log's last sampled stacks, as SVG text.
pub(crate) fn svg(log: &Log, path: &Path) -> Result<Vec<u8>, Error> {
    let last = log.stacks.as_ref().ok_or(Error::NoStacks)?;
    let lines = folded(&last.stacks);
    if lines.is_empty() {
        return Err(Error::NothingLive);
    }
    let mut options = Options::default();
    options.title = "Live bytes of sampled stacks".to_string();
    options.subtitle = Some(format!(
        "{} — pid {}, {} s into the log; estimates from sampled allocations",
        path.display(),
        last.pid,
        seconds(log, last)
    ));
    options.count_name = "bytes".to_string();
    options.colors = color::Palette::Basic(color::BasicPalette::Mem);
    options.deterministic = true;
    let mut out = Vec::new();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut out)
        .map_err(Error::Io)?;
    Ok(out)
}

fn seconds(log: &Log, last: &LoggedStacks) -> String {
    format!("{:.1}", (last.time_ns - log.start_ns()) as f64 / 1e9)
}

/// The text report's section: the `top` stacks by estimated live bytes
/// (nothing when the log has no stacks).
pub(crate) fn write_text(w: &mut dyn Write, log: &Log, top: usize) -> std::io::Result<()> {
    let Some(last) = &log.stacks else {
        return Ok(());
    };
    let live: Vec<&LogStack> = last.stacks.iter().filter(|s| s.est_bytes > 0).collect();
    writeln!(
        w,
        "sampled stacks (pid {}, {} s; ~ = estimate), top {} of {} by estimated live bytes:",
        last.pid,
        seconds(log, last),
        top.min(live.len()),
        live.len() as u64 + last.truncated
    )?;
    for s in live.iter().take(top) {
        writeln!(
            w,
            "  stack {}  site {}  ~{} live in ~{} blocks",
            s.id,
            s.site,
            human(s.est_bytes),
            s.est_blocks.max(0)
        )?;
        for frame in s.frames.iter().take(FRAMES_SHOWN) {
            writeln!(w, "      {}", frame_name(frame))?;
        }
        if s.frames.len() > FRAMES_SHOWN {
            writeln!(w, "      … {} more frames", s.frames.len() - FRAMES_SHOWN)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, line: u32) -> LogFrame {
        LogFrame {
            addr: 0x1000,
            function: function.into(),
            file: "a.c".into(),
            line,
        }
    }

    #[test]
    fn folded_lines_are_root_first_and_add_up() {
        let stack = |bytes, leaf| LogStack {
            id: 1,
            site: 2,
            est_bytes: bytes,
            est_blocks: 1,
            frames: vec![
                frame(leaf, 3),
                frame("main", 9),
                frame("__libc_start_main", 0),
                frame("libc.so.6+0x2a1ca", 0),
            ],
        };
        let lines = folded(&[stack(100, "keep"), stack(50, "keep"), stack(0, "gone")]);
        assert_eq!(
            lines,
            ["libc.so.6+0x2a1ca;__libc_start_main (a.c);main (a.c:9);keep (a.c:3) 150"],
            "{lines:?}"
        );
    }

    #[test]
    fn semicolons_in_names_do_not_split_frames() {
        assert_eq!(frame_name(&frame("f<a;b>", 7)), "f<a:b> (a.c:7)");
        assert_eq!(frame_name(&frame("", 0)), "0x1000 (a.c)");
        assert_eq!(
            frame_name(&frame("libc.so.6+0x2a1ca", 0)),
            "libc.so.6+0x2a1ca"
        );
    }
}
