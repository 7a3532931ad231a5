//! The leak monitor's JSON-lines log: one [`LogLine`] per sample.
//!
//! One set of types, written by the monitor (`ASMALLOC_LOG`) and read by
//! `asmalloc report` and `asmalloc run`, so the two can never disagree on a
//! field. A line lists only the sites whose net bytes, blocks or calls
//! changed since the line before (at most `max_sites` of them, the largest moves
//! first; `sites_truncated` counts the rest), and the verdicts the detector
//! reached at that sample. Readers accept lines with fields missing (they
//! default), so logs from older versions still read.
//!
//! ```json
//! {"v":1,"pid":4242,"seq":7,"time_ns":1796104131622949816,"net_bytes":1048576,
//!  "net_count":12,"net_mapped":0,"net_shm":0,"threads":{"live":3,"total":3},
//!  "sites":[{"id":7,"type":"cache","file":"src/cache.c","line":30,
//!            "function":"cache_put","net_bytes":1040000,"net_count":10,
//!            "allocs":25,"alloc_bytes":2600000,"peak_bytes":1040000}],
//!  "sites_truncated":0,
//!  "verdicts":[{"kind":"possible_leak","id":7,"type":"cache","file":"src/cache.c",
//!               "line":30,"function":"cache_put","net_bytes":1040000,
//!               "growth_bytes":900000,"over_ns":5000000000,"rate_bytes_per_s":180000}]}
//! ```

use serde::{Deserialize, Serialize};

/// The schema version written in every line (`v`).
pub const VERSION: u32 = 1;

/// One sample.
/// Every field but `time_ns` may be missing (it defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Schema version ([`VERSION`]).
    #[serde(default)]
    pub v: u32,
    /// The sampled process.
    #[serde(default)]
    pub pid: i64,
    /// The monitor's sample number in this process, from 0.
    #[serde(default)]
    pub seq: u64,
    /// Time of the sample, ns since the Unix epoch.
    pub time_ns: i64,
    /// Net heap bytes, all sites.
    #[serde(default)]
    pub net_bytes: i64,
    /// Net heap blocks, all sites.
    #[serde(default)]
    pub net_count: i64,
    /// Net bytes mapped with `mmap` (not charged to sites).
    #[serde(default)]
    pub net_mapped: i64,
    /// Net bytes of attached System V shared memory.
    #[serde(default)]
    pub net_shm: i64,
    /// Threads that have used the tracker.
    #[serde(default)]
    pub threads: LogThreads,
    /// Sites that changed since the previous line.
    #[serde(default)]
    pub sites: Vec<LogSite>,
    /// Changed sites left out of this line (over the per-line limit).
    #[serde(default)]
    pub sites_truncated: u64,
    /// Verdicts reached at this sample.
    #[serde(default)]
    pub verdicts: Vec<LogVerdict>,
    /// Sampled stacks (`ASMALLOC_SAMPLE_BYTES`, `asmalloc run --stacks`)
    /// with non-zero estimated live bytes, largest first, at most
    /// [`MAX_LOG_STACKS`]: written only when the list changed since the
    /// last line that had one (so the last line with `stacks` holds the
    /// process's latest ones; `[]` once none is live any more); absent
    /// without sampling and in older logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacks: Option<Vec<LogStack>>,
    /// Stacks with live estimates left out of `stacks` (over the limit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stacks_truncated: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// At most this many sampled stacks per line (those with the most
/// estimated live bytes).
pub const MAX_LOG_STACKS: usize = 64;

/// A sampled stack: its estimates and its frames, innermost first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogStack {
    /// Stack id (a tag id of its own, as the text report numbers it).
    pub id: u16,
    /// The site its blocks are charged to.
    pub site: u16,
    /// Estimated live bytes (unbiased: scaled from the live samples).
    pub est_bytes: i64,
    /// Estimated live blocks.
    pub est_blocks: i64,
    /// The call path, innermost frame first.
    pub frames: Vec<LogFrame>,
}

impl LogStack {
    /// The frames from the first one that belongs to the program: past the
    /// allocator's and the Rust runtime's own ([`is_runtime_function`]).
    /// The whole path when every frame is theirs (a path cut short).
    pub fn program_frames(&self) -> &[LogFrame] {
        let first = self
            .frames
            .iter()
            .position(|f| !is_runtime_function(&f.function))
            .unwrap_or(0);
        &self.frames[first..]
    }
}

/// True for a function of the allocator or of Rust's standard library:
/// `__rust_alloc` and its kin, `alloc::`, `core::`, `std::`, std's
/// `hashbrown::`, `asmalloc::`, and their trait methods on primitive or
/// generic types (`<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem`).
/// A sampled path of a Rust program starts with a few of these; the first
/// frame after them is the code that allocated. C functions never match.
pub fn is_runtime_function(function: &str) -> bool {
    const CRATES: [&str; 5] = ["alloc::", "core::", "std::", "hashbrown::", "asmalloc::"];
    const SYMBOLS: [&str; 4] = ["__rust_", "__rustc::", "__rdl_", "__rg_"];
    if SYMBOLS.iter().any(|p| function.starts_with(p)) {
        return true;
    }
    let path = function.strip_prefix('<').unwrap_or(function);
    if CRATES.iter().any(|c| path.starts_with(c)) {
        return true;
    }
    // `<T as alloc::…>::method` with a primitive or generic T: the
    // runtime's code, whatever T is.
    if let Some((self_type, rest)) = path.split_once(" as ") {
        return !self_type.contains("::") && CRATES.iter().any(|c| rest.starts_with(c));
    }
    false
}

/// One frame of a sampled stack: a return address and its name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogFrame {
    /// The return address in the process (its run's address space).
    pub addr: u64,
    /// The function, or `module+0xOFFSET` for a module without symbols.
    pub function: String,
    /// Its source file (the module's name when there is no line
    /// information; "" when unknown).
    pub file: String,
    /// Its line (0 when unknown).
    pub line: u32,
}

/// Live and total threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogThreads {
    /// Threads alive now.
    pub live: u64,
    /// Threads ever started.
    pub total: u64,
}

/// How a site is named in the log (empty strings and line 0 for site 0 and
/// for sites without a description).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSiteName {
    /// The allocation type's name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Source file.
    pub file: String,
    /// Source line.
    pub line: u32,
    /// Function.
    pub function: String,
}

/// A site's net bytes and blocks at this sample.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSite {
    /// Site id.
    pub id: u16,
    /// Its name.
    #[serde(flatten)]
    pub name: LogSiteName,
    /// Net bytes.
    pub net_bytes: i64,
    /// Net blocks.
    pub net_count: i64,
    /// Allocations charged to the site so far (0 in logs from before it
    /// was written).
    pub allocs: u64,
    /// Bytes those allocations asked for, frees not subtracted.
    pub alloc_bytes: u64,
    /// The highest net bytes the monitor's samples saw at the site so far
    /// (0 in logs from before it was written).
    pub peak_bytes: i64,
}

/// A verdict of the leak detector (see `asmalloc::detector`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogVerdict {
    /// `possible_leak`, `still_growing` or `never_mind`.
    pub kind: String,
    /// Site id.
    pub id: u16,
    /// Its name.
    #[serde(flatten)]
    pub name: LogSiteName,
    /// The site's net bytes at the verdict.
    pub net_bytes: i64,
    /// How much its floor grew over `over_ns`.
    pub growth_bytes: i64,
    /// The span the growth was measured over, ns.
    pub over_ns: i64,
    /// Growth per second.
    pub rate_bytes_per_s: i64,
}

impl LogLine {
    /// The line as JSON text with its final newline (written with one
    /// `write`, so appends from several writers stay whole).
    pub fn to_json_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// Parses one line of a log.
    pub fn parse(text: &str) -> Result<LogLine, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_round_trips() {
        let doc = include_str!("log_format.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```json"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim())
            .collect::<String>();
        let line = LogLine::parse(&doc).expect("the example parses");
        assert_eq!(line.sites[0].name.function, "cache_put");
        assert_eq!(line.verdicts[0].rate_bytes_per_s, 180000);
        let again = LogLine::parse(std::str::from_utf8(&line.to_json_line()).unwrap()).unwrap();
        assert_eq!(again, line);
    }

    #[test]
    fn missing_fields_default() {
        assert!(
            LogLine::parse(r#"{"sites":[]}"#).is_err(),
            "time_ns is required"
        );
        let line = LogLine::parse(r#"{"time_ns":5,"sites":[{"id":3}]}"#).unwrap();
        assert_eq!(line.time_ns, 5);
        assert_eq!(line.sites[0].id, 3);
        assert_eq!(line.sites[0].name.file, "");
        assert!(line.verdicts.is_empty());
        assert!(line.stacks.is_none());
    }

    #[test]
    fn runtime_frames_are_told_from_the_program_s() {
        for runtime in [
            "__rustc::__rust_alloc",
            "__rust_alloc_zeroed",
            "alloc::raw_vec::RawVecInner<A>::try_allocate_in",
            "<alloc::vec::Vec<T> as core::iter::traits::collect::FromIterator<T>>::from_iter",
            "<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem",
            "<T as alloc::string::ToString>::to_string",
            "hashbrown::raw::RawTable<T,A>::reserve_rehash",
            "asmalloc::global_alloc::AsmAlloc<A>::track_new",
        ] {
            assert!(is_runtime_function(runtime), "{runtime}");
        }
        for program in [
            "server::remember",
            "<server::Cache as core::clone::Clone>::clone",
            "keep_node",
            "g_malloc",
            "main",
            "0x4011d6",
        ] {
            assert!(!is_runtime_function(program), "{program}");
        }
        let frame = |f: &str| LogFrame {
            function: f.into(),
            ..LogFrame::default()
        };
        let mut stack = LogStack {
            frames: vec![
                frame("__rustc::__rust_alloc"),
                frame("alloc::alloc::alloc"),
                frame("server::remember"),
                frame("main"),
            ],
            ..LogStack::default()
        };
        assert_eq!(stack.program_frames()[0].function, "server::remember");
        stack.frames.truncate(2);
        assert_eq!(
            stack.program_frames().len(),
            2,
            "all runtime: the whole path"
        );
    }

    #[test]
    fn stacks_round_trip_and_are_left_out_when_empty() {
        let mut line = LogLine {
            time_ns: 1,
            ..LogLine::default()
        };
        let empty = String::from_utf8(line.to_json_line()).unwrap();
        assert!(!empty.contains("stacks"), "{empty}");
        line.stacks = Some(vec![LogStack {
            id: 61000,
            site: 7,
            est_bytes: 4096,
            est_blocks: 4,
            frames: vec![LogFrame {
                addr: 0x5555_0000_1234,
                function: "keep_node".into(),
                file: "stacks.c".into(),
                line: 20,
            }],
        }]);
        let text = String::from_utf8(line.to_json_line()).unwrap();
        assert_eq!(LogLine::parse(&text).unwrap(), line);
        let partial =
            LogLine::parse(r#"{"time_ns":2,"stacks":[{"id":3,"frames":[{"addr":9}]}]}"#).unwrap();
        let stacks = partial.stacks.unwrap();
        assert_eq!(stacks[0].frames[0].addr, 9);
        assert_eq!(stacks[0].est_bytes, 0);
    }
}
