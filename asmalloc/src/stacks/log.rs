//! Sampled stacks in the monitor's log: the monitor asks [`for_log`] for
//! the records of each log line.
//!
//! The table gives bare records (addresses and estimates, cheap); the
//! frames are named here, through the caller-site namer
//! ([`crate::site::set_namer`]), only when some estimate changed since the last
//! line that listed stacks, and each address is named once (the names are
//! kept). All of it runs on the monitor's side, off the allocation path,
//! in the library's own memory.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::log_format::{LogFrame, LogStack, MAX_LOG_STACKS};
use crate::site::{CallerName, name_with_namer};

/// A list is written again when an estimate moved by more than
/// 1/`MOVE_DIVISOR` of its last written value (or a stack came or went).
const MOVE_DIVISOR: i64 = 16;

/// A sampled stack as the table reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SampledStack {
    id: u16,
    site: u16,
    est_bytes: i64,
    est_blocks: i64,
    /// Return addresses, innermost first.
    frames: Vec<usize>,
}

/// Every sampled stack (none while sampling is off).
fn records() -> Vec<SampledStack> {
    if super::mean() == 0 {
        return Vec::new();
    }
    super::table::summaries()
        .into_iter()
        .map(|s| SampledStack {
            id: s.id,
            site: s.site,
            est_bytes: s.live_bytes,
            est_blocks: s.live_blocks.round() as i64,
            frames: s.frames,
        })
        .collect()
}

/// What the last line listed, (id, est_bytes) by id; and the names found.
#[derive(Default)]
struct State {
    /// Empty before the first line with stacks (so a process that never
    /// samples writes none).
    listed: Vec<(u16, i64)>,
    names: HashMap<usize, CallerName>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// The stacks for a log line: those with non-zero estimated live bytes,
/// largest first, at most [`MAX_LOG_STACKS`] (and how many more there
/// were); `None` when sampling never took a sample or the list did not change
/// since the last line that had one (the same stacks, no estimate moved by
/// more than 1/[`MOVE_DIVISOR`]); an empty list once none is live.
pub fn for_log() -> (Option<Vec<LogStack>>, u64) {
    if super::mean() == 0 {
        return (None, 0);
    }
    let _own = crate::engine::OwnMemory::enter();
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let state = state.get_or_insert_with(State::default);
    select(records(), state)
}

/// Every stack with live estimates, named, largest first, at most
/// [`MAX_LOG_STACKS`], and how many more there were: for the JSON report.
/// `None` with sampling off.
pub fn for_report() -> Option<(Vec<LogStack>, u64)> {
    if super::mean() == 0 {
        return None;
    }
    let _own = crate::engine::OwnMemory::enter();
    let (listed, truncated) = select(records(), &mut State::default());
    Some((listed.unwrap_or_default(), truncated))
}

/// The top `frames` frames of the program's own (past the allocator's and
/// std's) of the sampled path with the most estimated live bytes among
/// those charged to `site`: `f (file:line) ← g (file:line) ← h`. For the
/// verdict of a site that a table does not name (site 0 of a Rust
/// program, a caller site inside a wrapper): the path says where to look.
/// `None` with sampling off or no live sample of the site.
pub fn largest_path_of(site: u16, frames: usize) -> Option<String> {
    if super::mean() == 0 {
        return None;
    }
    let _own = crate::engine::OwnMemory::enter();
    let top = super::table::summaries()
        .into_iter()
        .filter(|s| s.site == site && s.live_bytes > 0)
        .max_by_key(|s| s.live_bytes)?;
    let named: Vec<CallerName> = top.frames.iter().map(|&a| name_with_namer(a)).collect();
    let first = super::first_program_frame(&named);
    let parts: Vec<String> = named[first..]
        .iter()
        .take(frames)
        .map(|n| match (n.file.is_empty(), n.line) {
            (true, _) => n.function.clone(),
            (false, 0) => format!("{} ({})", n.function, n.file),
            (false, line) => format!("{} ({}:{line})", n.function, n.file),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" ← "))
}

/// [`for_log`] of these records, against what `state` says was listed.
fn select(records: Vec<SampledStack>, state: &mut State) -> (Option<Vec<LogStack>>, u64) {
    let mut stacks: Vec<SampledStack> = records.into_iter().filter(|s| s.est_bytes != 0).collect();
    stacks.sort_by(|a, b| b.est_bytes.cmp(&a.est_bytes).then(a.id.cmp(&b.id)));
    let truncated = stacks.len().saturating_sub(MAX_LOG_STACKS);
    stacks.truncate(MAX_LOG_STACKS);
    let mut listed: Vec<(u16, i64)> = stacks.iter().map(|s| (s.id, s.est_bytes)).collect();
    listed.sort_unstable();
    // Unchanged: the same stacks, none moved by more than 1/16 of what
    // the last list said (sampled estimates move a sample at a time; a
    // slow drift is written once it adds up).
    let unchanged = state.listed.len() == listed.len()
        && state
            .listed
            .iter()
            .zip(&listed)
            .all(|(&(id, was), &(now_id, now))| {
                id == now_id && (now - was).abs() <= was.abs() / MOVE_DIVISOR
            });
    if unchanged {
        return (None, 0);
    }
    state.listed = listed;
    let records = stacks
        .into_iter()
        .map(|s| LogStack {
            id: s.id,
            site: s.site,
            est_bytes: s.est_bytes,
            est_blocks: s.est_blocks,
            frames: s
                .frames
                .iter()
                .map(|&addr| {
                    let name = state
                        .names
                        .entry(addr)
                        .or_insert_with(|| name_with_namer(addr));
                    LogFrame {
                        addr: addr as u64,
                        function: name.function.clone(),
                        file: name.file.clone(),
                        line: name.line,
                    }
                })
                .collect(),
        })
        .collect();
    (Some(records), truncated as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<SampledStack> {
        vec![
            SampledStack {
                id: 100,
                site: 7,
                est_bytes: 0,
                est_blocks: 0,
                frames: vec![0x10],
            },
            SampledStack {
                id: 101,
                site: 7,
                est_bytes: 5000,
                est_blocks: 5,
                frames: vec![0x1234, 0x2345],
            },
        ]
    }

    #[test]
    fn live_stacks_are_listed_once_until_they_change() {
        let mut state = State::default();
        assert_eq!(select(Vec::new(), &mut state).0, None, "none yet");
        let (first, truncated) = select(records(), &mut state);
        let first = first.unwrap();
        assert_eq!(truncated, 0);
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!((first[0].id, first[0].est_bytes), (101, 5000));
        let addrs: Vec<u64> = first[0].frames.iter().map(|f| f.addr).collect();
        assert_eq!(addrs, [0x1234, 0x2345]);
        assert!(!first[0].frames[0].function.is_empty());
        assert!(
            select(records(), &mut state).0.is_none(),
            "unchanged: not listed again"
        );
        let mut nudged = records();
        nudged[1].est_bytes = 5000 + 5000 / MOVE_DIVISOR;
        assert!(select(nudged, &mut state).0.is_none(), "moved too little");
        let mut grown = records();
        grown[1].est_bytes = 6000;
        assert_eq!(select(grown, &mut state).0.unwrap()[0].est_bytes, 6000);
        // All freed: an empty list says so, once.
        let mut freed = records();
        freed[1].est_bytes = 0;
        assert_eq!(select(freed.clone(), &mut state).0, Some(Vec::new()));
        assert_eq!(select(freed, &mut state).0, None);
    }

    #[test]
    fn lines_are_bounded() {
        let many: Vec<SampledStack> = (0..MAX_LOG_STACKS as u16 + 5)
            .map(|i| SampledStack {
                id: i,
                site: 1,
                est_bytes: i64::from(i) + 1,
                est_blocks: 1,
                frames: vec![0x40],
            })
            .collect();
        let (listed, truncated) = select(many, &mut State::default());
        let listed = listed.unwrap();
        assert_eq!((listed.len(), truncated), (MAX_LOG_STACKS, 5));
        assert_eq!(listed[0].est_bytes, MAX_LOG_STACKS as i64 + 5);
    }
}
