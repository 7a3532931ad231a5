//! The sampled stacks in reports: the section of the text report (the paths
//! with the most estimated live bytes, each frame named — function and
//! `file:line`, or `module+0xOFFSET` — by the caller-site namer, off the
//! allocation path), and the records the monitor's log lists
//! ([`records`], the runtime's stack source).

use std::io::Write;

use rt::report::human_bytes;

use super::table;

/// Frames shown per stack.
const FRAMES_SHOWN: usize = 12;

/// Every sampled stack, bare (the runtime names the frames it logs):
/// registered as the runtime's stack source, called by the monitor.
pub(crate) fn records() -> Vec<rt::__private::site::SampledStack> {
    if super::mean() == 0 {
        return Vec::new();
    }
    let _guard = crate::guard::Guard::enter();
    table::summaries()
        .into_iter()
        .map(|s| rt::__private::site::SampledStack {
            id: s.id,
            site: s.site,
            est_bytes: s.live_bytes,
            est_blocks: s.live_blocks.round() as i64,
            frames: s.frames,
        })
        .collect()
}

/// Writes the section (nothing when sampling is off or no sample was
/// taken).
pub(crate) fn write_text(out: &mut Vec<u8>, top: usize) {
    let mean = super::mean();
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
    for s in stacks.iter().take(top) {
        let _ = writeln!(
            out,
            "    stack {}  site {}  ~{} live in ~{:.0} blocks; {} samples, ~{} allocated",
            s.id,
            s.site,
            human_bytes(s.live_bytes),
            s.live_blocks.max(0.0),
            s.samples,
            human_bytes(s.total_bytes as i64)
        );
        for &frame in s.frames.iter().take(FRAMES_SHOWN) {
            let name = crate::symbols::name_caller(frame);
            let place = if name.line > 0 {
                format!("{}:{}", name.file, name.line)
            } else {
                name.file.clone()
            };
            let _ = writeln!(out, "        {}  {}", name.function, place);
        }
        if s.frames.len() > FRAMES_SHOWN {
            let _ = writeln!(
                out,
                "        … {} more frames",
                s.frames.len() - FRAMES_SHOWN
            );
        }
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
