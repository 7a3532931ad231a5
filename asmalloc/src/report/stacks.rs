//! The sampled stacks' section of the text report: the paths with the most
//! estimated live bytes, each frame named — function and `file:line`, or
//! `module+0xOFFSET` — by the caller-site namer, off the allocation path.

use std::io::Write;

use std::collections::HashMap;

use super::text::human_bytes;
use crate::site::{CallerName, name_with_namer};
use crate::stacks::{self, first_program_frame, table};

/// Frames shown per stack.
const FRAMES_SHOWN: usize = 12;

/// Writes the section (nothing when sampling is off or no sample was
/// taken).
pub fn write_text(out: &mut Vec<u8>, top: usize) {
    let mean = stacks::mean();
    if mean == 0 {
        return;
    }
    let stacks = table::summaries();
    if stacks.is_empty() {
        // Said anyway: a program that allocated less than the mean may
        // have had no allocation sampled, and the reader should know that
        // sampling was on.
        let _ = writeln!(
            out,
            "  sampled stacks (one sample per {} allocated on average): none sampled",
            human_bytes(mean as i64)
        );
        return;
    }
    let _ = writeln!(
        out,
        "  sampled stacks (one sample per {} allocated on average; ~ = estimate), top {} of {} by estimated live bytes:",
        human_bytes(mean as i64),
        top.min(stacks.len()),
        stacks.len()
    );
    let mut names = Names::default();
    for s in stacks.iter().take(top) {
        let named: Vec<CallerName> = s.frames.iter().map(|&f| names.name(f)).collect();
        let first = first_program_frame(&named);
        let _ = write!(
            out,
            "    stack {}  site {}  ~{} live in ~{:.0} blocks; {} samples, ~{} allocated",
            s.id,
            s.site,
            human_bytes(s.live_bytes),
            s.live_blocks.max(0.0),
            s.samples,
            human_bytes(s.total_bytes as i64)
        );
        if first > 0 {
            let _ = write!(out, "; {first} allocator and std frames left out");
        }
        let _ = writeln!(out);
        let shown = &named[first..];
        for name in shown.iter().take(FRAMES_SHOWN) {
            let _ = writeln!(out, "        {}  {}", name.function, place(name));
        }
        if shown.len() > FRAMES_SHOWN {
            let _ = writeln!(out, "        … {} more frames", shown.len() - FRAMES_SHOWN);
        }
    }
    // The same estimates summed by allocating function: several paths
    // (a Vec's first allocation and its growth, calls from two places)
    // often end in one function, and that function is what to look at.
    let mut by_function: Vec<(String, String, i64)> = Vec::new();
    for s in &stacks {
        let named: Vec<CallerName> = s.frames.iter().map(|&f| names.name(f)).collect();
        let Some(name) = named.get(first_program_frame(&named)) else {
            continue;
        };
        match by_function.iter_mut().find(|(f, _, _)| *f == name.function) {
            Some(entry) => entry.2 += s.live_bytes,
            None => by_function.push((name.function.clone(), place(name), s.live_bytes)),
        }
    }
    by_function.sort_by_key(|&(_, _, bytes)| std::cmp::Reverse(bytes));
    let _ = writeln!(
        out,
        "  sampled live bytes by allocating function (its first frame outside the allocator and std), top {}:",
        top.min(by_function.len())
    );
    for (function, place, bytes) in by_function.iter().take(top) {
        let _ = writeln!(out, "    ~{:<11} {function}  {place}", human_bytes(*bytes));
    }
    let dropped = table::dropped();
    if dropped > 0 {
        let _ = writeln!(
            out,
            "    ({dropped} samples not kept: more than {} distinct stacks)",
            table::MAX_STACKS
        );
    }
}

/// Names each address once per report.
#[derive(Default)]
struct Names(HashMap<usize, CallerName>);

impl Names {
    fn name(&mut self, addr: usize) -> CallerName {
        self.0
            .entry(addr)
            .or_insert_with(|| name_with_namer(addr))
            .clone()
    }
}

/// `file:line`, or the file (or module) alone without a line.
fn place(name: &CallerName) -> String {
    if name.line > 0 {
        format!("{}:{}", name.file, name.line)
    } else {
        name.file.clone()
    }
}
