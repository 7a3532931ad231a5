//! Sampled stacks from the log: `asmalloc report LOG --flamegraph FILE.svg`
//! draws their estimated live bytes as a flame graph, and the text report
//! lists the top ones.
//!
//! The stacks are those of the log's last line that lists live ones (the
//! monitor writes the list whenever it changes, so that line holds the
//! latest estimates; see `asmalloc::log_format::LogLine::stacks`). When a
//! later line of the process says none is live any more — a program that
//! frees everything as it exits — those last live ones are shown, and
//! said to be. They become
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
        // From the allocating function of the program down: the
        // allocator's and std's frames above it are the same in every
        // path of a Rust program and would only widen the graph's tip.
        let path = s
            .program_frames()
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
        "{} — pid {}, {} s into the log{}; estimates from sampled allocations",
        path.display(),
        last.pid,
        seconds(log, last),
        if last.freed_at_ns.is_some() {
            " (the last live stacks: all were freed later)"
        } else {
            ""
        }
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
    if live.is_empty() {
        writeln!(
            w,
            "sampled stacks: none with live bytes in the log (pid {})",
            last.pid
        )?;
        return Ok(());
    }
    writeln!(
        w,
        "sampled stacks (pid {}, {} s; ~ = estimate), top {} of {} by estimated live bytes:",
        last.pid,
        seconds(log, last),
        top.min(live.len()),
        live.len() as u64 + last.truncated
    )?;
    if let Some(freed) = last.freed_at_ns {
        writeln!(
            w,
            "  (the last live ones: all were freed by {:.1} s)",
            (freed - log.start_ns()) as f64 / 1e9
        )?;
    }
    for s in live.iter().take(top) {
        writeln!(
            w,
            "  stack {}  site {}  ~{} live in ~{} blocks",
            s.id,
            s.site,
            human(s.est_bytes),
            s.est_blocks.max(0)
        )?;
        let frames = s.program_frames();
        for frame in frames.iter().take(FRAMES_SHOWN) {
            writeln!(w, "      {}", frame_name(frame))?;
        }
        if frames.len() > FRAMES_SHOWN {
            writeln!(w, "      … {} more frames", frames.len() - FRAMES_SHOWN)?;
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

    fn log(text: &str) -> Log {
        Log::from_reader(text.as_bytes(), i64::MIN).unwrap()
    }

    #[test]
    fn the_last_live_stacks_are_drawn_even_when_freed_at_exit() {
        let live = r#"{"pid":5,"time_ns":1000000000,"stacks":[{"id":9,"site":3,"est_bytes":4096,"est_blocks":2,"frames":[{"addr":16,"function":"leaf","file":"a.c","line":4},{"addr":32,"function":"main","file":"a.c","line":9}]}]}"#;
        let freed = r#"{"pid":5,"time_ns":3000000000,"stacks":[]}"#;
        let log = log(&format!("{live}\n{freed}\n"));
        let mut text = Vec::new();
        write_text(&mut text, &log, 10).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("~4.0 KiB live in ~2 blocks"), "{text}");
        assert!(text.contains("all were freed by 2.0 s"), "{text}");
        assert!(
            text.contains("      leaf (a.c:4)\n      main (a.c:9)\n"),
            "{text}"
        );
        let svg = String::from_utf8(svg(&log, Path::new("x.jsonl")).unwrap()).unwrap();
        assert!(svg.contains("leaf (a.c:4) (4,096 bytes, 100.00%)"), "{svg}");
    }

    #[test]
    fn no_stacks_or_none_live_is_an_error() {
        let plain = log(r#"{"pid":5,"time_ns":1,"sites":[{"id":3,"net_bytes":10}]}"#);
        assert!(matches!(svg(&plain, Path::new("x")), Err(Error::NoStacks)));
        let mut text = Vec::new();
        write_text(&mut text, &plain, 10).unwrap();
        assert!(text.is_empty());
        let none = log(r#"{"pid":5,"time_ns":1,"stacks":[]}"#);
        assert!(matches!(
            svg(&none, Path::new("x")),
            Err(Error::NothingLive)
        ));
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
