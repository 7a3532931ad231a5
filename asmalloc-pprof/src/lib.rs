//! asmalloc's per-site heap numbers as a pprof heap profile: the gzipped
//! `profile.proto` that `go tool pprof`, Pyroscope, Parca and other
//! continuous profilers read.
//!
//! One encoder for both writers — the runtime (`ASMALLOC_PPROF`, from a
//! snapshot, at each sample and report) and `asmalloc report LOG --pprof`
//! (from a JSON-lines log) — so the two files always mean the same thing.
//! The protobuf types are prost-build's output for `proto/profile.proto`,
//! committed (`src/proto/`), so building needs no `protoc`;
//! `tests/generated.rs` regenerates them and fails if they drift.
//!
//! # The profile
//!
//! asmalloc counts every allocation exactly, so the profile is unsampled
//! (`period` 1). Each site is one sample with one location (its site, not a
//! stack) and four values, in the order Go's own heap profiles use:
//!
//! | sample type     | unit  | value                                   |
//! |-----------------|-------|-----------------------------------------|
//! | `alloc_objects` | count | allocations charged to the site (calls) |
//! | `alloc_space`   | bytes | bytes those allocations asked for       |
//! | `inuse_objects` | count | live blocks (net)                       |
//! | `inuse_space`   | bytes | live bytes (net; the default view)      |
//!
//! The location's line names the site's function and `file:line`; a
//! caller site (a site asmalloc made from the address that called
//! `malloc`) also carries that address. Each sample has the labels `site`
//! (the id) and `type` (the allocation type's name, when it has one), so
//! `pprof -tagfocus type=cache` selects by type, and `pid` when the profile
//! holds several processes (a log of a program that forked).
//!
//! This crate allocates through the global allocator: callers in the
//! runtime use it only off the allocation path, as the library's own work.

#![deny(unsafe_code)]

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use prost::Message;

/// The protobuf types of `proto/profile.proto` (prost-build's output).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!("proto/perftools.profiles.rs");
}

/// The sample types, in the order of every sample's values.
pub const SAMPLE_TYPES: [(&str, &str); 4] = [
    ("alloc_objects", "count"),
    ("alloc_space", "bytes"),
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
];

/// One allocation site's numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeapSite {
    /// The site id.
    pub id: u16,
    /// The allocation type's name (empty for none).
    pub type_name: String,
    /// Source file (empty when unknown).
    pub file: String,
    /// Source line (0 when unknown).
    pub line: u32,
    /// The function (empty when unknown: the profile then names the site
    /// by its id).
    pub function: String,
    /// The calling address of a caller site.
    pub address: Option<u64>,
    /// The process, when the profile holds several (a `pid` label).
    pub pid: Option<i64>,
    /// Live bytes.
    pub inuse_bytes: i64,
    /// Live blocks.
    pub inuse_objects: i64,
    /// Bytes allocated in all (frees not subtracted).
    pub alloc_bytes: i64,
    /// Allocations (calls).
    pub alloc_objects: i64,
}

impl HeapSite {
    /// The function name the profile shows: the site's function, or
    /// `(unknown site)` for site 0 and `site N` for a site with no name.
    pub fn function_name(&self) -> String {
        match (self.function.is_empty(), self.id) {
            (false, _) => self.function.clone(),
            (true, 0) => "(unknown site)".to_string(),
            (true, id) => format!("site {id}"),
        }
    }
}

/// A heap profile: sites at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeapProfile {
    /// When the numbers were taken, ns since the Unix epoch.
    pub time_ns: i64,
    /// The span they cover (from the process's first sample), ns.
    pub duration_ns: i64,
    /// The sites (any order; written in this order).
    pub sites: Vec<HeapSite>,
    /// Free-form comments (`pprof -comments` shows them).
    pub comments: Vec<String>,
}

/// The string table under construction: index 0 is "".
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        Strings {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }

    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

impl HeapProfile {
    /// The profile as protobuf messages.
    pub fn to_proto(&self) -> proto::Profile {
        let mut strings = Strings::new();
        let value_type = |strings: &mut Strings, (ty, unit): (&str, &str)| proto::ValueType {
            r#type: strings.id(ty),
            unit: strings.id(unit),
        };
        let sample_type = SAMPLE_TYPES
            .iter()
            .map(|&t| value_type(&mut strings, t))
            .collect();
        let period_type = Some(value_type(&mut strings, ("space", "bytes")));
        let mut functions: Vec<proto::Function> = Vec::new();
        let mut function_ids: HashMap<(String, String), u64> = HashMap::new();
        let mut locations = Vec::with_capacity(self.sites.len());
        let mut samples = Vec::with_capacity(self.sites.len());
        let (site_key, type_key) = (strings.id("site"), strings.id("type"));
        for (i, site) in self.sites.iter().enumerate() {
            let name = site.function_name();
            let function_id = *function_ids
                .entry((name.clone(), site.file.clone()))
                .or_insert_with(|| {
                    let id = functions.len() as u64 + 1;
                    functions.push(proto::Function {
                        id,
                        name: strings.id(&name),
                        system_name: strings.id(&name),
                        filename: strings.id(&site.file),
                        start_line: 0,
                    });
                    id
                });
            let location_id = i as u64 + 1;
            locations.push(proto::Location {
                id: location_id,
                mapping_id: 0,
                address: site.address.unwrap_or(0),
                line: vec![proto::Line {
                    function_id,
                    line: i64::from(site.line),
                    column: 0,
                }],
                is_folded: false,
            });
            let mut label = vec![proto::Label {
                key: site_key,
                str: 0,
                num: i64::from(site.id),
                num_unit: 0,
            }];
            if let Some(pid) = site.pid {
                label.push(proto::Label {
                    key: strings.id("pid"),
                    str: 0,
                    num: pid,
                    num_unit: 0,
                });
            }
            if !site.type_name.is_empty() {
                label.push(proto::Label {
                    key: type_key,
                    str: strings.id(&site.type_name),
                    num: 0,
                    num_unit: 0,
                });
            }
            samples.push(proto::Sample {
                location_id: vec![location_id],
                value: vec![
                    site.alloc_objects,
                    site.alloc_bytes,
                    site.inuse_objects,
                    site.inuse_bytes,
                ],
                label,
            });
        }
        let comment = self.comments.iter().map(|c| strings.id(c)).collect();
        let default_sample_type = strings.id("inuse_space");
        proto::Profile {
            sample_type,
            sample: samples,
            mapping: Vec::new(),
            location: locations,
            function: functions,
            string_table: strings.table,
            drop_frames: 0,
            keep_frames: 0,
            time_nanos: self.time_ns,
            duration_nanos: self.duration_ns,
            period_type,
            period: 1,
            comment,
            default_sample_type,
        }
    }

    /// The profile as a gzipped `profile.proto` (what a `.pb.gz` holds).
    pub fn encode(&self) -> Vec<u8> {
        let raw = self.to_proto().encode_to_vec();
        let mut gz = GzEncoder::new(
            Vec::with_capacity(raw.len() / 2 + 64),
            Compression::default(),
        );
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(&raw);
        gz.finish().unwrap_or_default()
    }

    /// Writes the profile to `path` atomically ([`write_atomically`]).
    pub fn write(&self, path: &Path) -> io::Result<()> {
        write_atomically(path, &self.encode())
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new
/// one, never part of one: a new file beside it (`.NAME.PID.tmp`, created
/// exclusively, mode 0600, so nothing already there — a symbolic link
/// included — is followed), then a rename over `path`. A stale temporary
/// file of an earlier process with the same pid is removed first.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
    };
    let mut file = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp)?;
            open()?
        }
        other => other?,
    };
    // No fsync: a profile is rewritten often and matters while the process
    // runs; the rename alone makes the switch atomic for readers.
    let written = file.write_all(bytes);
    drop(file);
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: u16, function: &str, live: i64) -> HeapSite {
        HeapSite {
            id,
            type_name: "cache".into(),
            file: "src/cache.c".into(),
            line: 30 + u32::from(id),
            function: function.into(),
            address: None,
            pid: None,
            inuse_bytes: live,
            inuse_objects: 2,
            alloc_bytes: live * 3,
            alloc_objects: 6,
        }
    }

    #[test]
    fn a_profile_round_trips_through_prost_and_gzip() {
        let profile = HeapProfile {
            time_ns: 1_700_000_000_000_000_000,
            duration_ns: 5_000_000_000,
            sites: vec![site(7, "cache_put", 4096), site(8, "cache_put", 100), {
                let mut s = site(9, "", 5);
                s.address = Some(0x401234);
                s
            }],
            comments: vec!["asmalloc".into()],
        };
        let gz = profile.encode();
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        let p = proto::Profile::decode(&raw[..]).unwrap();
        let s = |i: i64| p.string_table[i as usize].as_str();
        assert_eq!(s(0), "");
        let types: Vec<(&str, &str)> = p
            .sample_type
            .iter()
            .map(|t| (s(t.r#type), s(t.unit)))
            .collect();
        assert_eq!(types, SAMPLE_TYPES);
        assert_eq!(s(p.default_sample_type), "inuse_space");
        assert_eq!(p.sample[0].value, [6, 4096 * 3, 2, 4096]);
        // Two sites in one function and file share the function.
        assert_eq!(p.function.len(), 2);
        let loc = &p.location[1];
        assert_eq!(loc.line[0].line, 38);
        let f = &p.function[(loc.line[0].function_id - 1) as usize];
        assert_eq!((s(f.name), s(f.filename)), ("cache_put", "src/cache.c"));
        assert_eq!(p.location[2].address, 0x401234);
        let f = &p.function[(p.location[2].line[0].function_id - 1) as usize];
        assert_eq!(s(f.name), "site 9");
        assert_eq!(s(p.sample[0].label[1].str), "cache");
        assert_eq!(p.sample[2].label[0].num, 9);
        assert_eq!(s(p.comment[0]), "asmalloc");
    }

    #[test]
    fn a_concurrent_reader_always_sees_a_whole_profile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heap.pb.gz");
        let profile = |n: u16| HeapProfile {
            sites: (1..=n).map(|i| site(i, "f", i64::from(i) * 100)).collect(),
            ..HeapProfile::default()
        };
        profile(1).write(&path).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                // Profiles of 1 to 399 sites: from ~100 bytes to a few KiB.
                for round in 0..200u16 {
                    profile(1 + round * 2).write(&path).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) || reads == 0 {
                let gz = std::fs::read(&path).unwrap();
                let mut raw = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw)
                    .unwrap_or_else(|e| panic!("read {reads}: a torn file ({e})"));
                let p = proto::Profile::decode(&raw[..]).unwrap();
                // Whole: every sample it announces is there, with its values.
                let n = p.sample.len();
                assert!(n >= 1 && p.location.len() == n, "read {reads}");
                assert_eq!(p.sample[n - 1].value[3], n as i64 * 100, "read {reads}");
                reads += 1;
            }
        });
    }

    #[test]
    fn writing_replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heap.pb.gz");
        std::fs::write(&path, b"old").unwrap();
        write_atomically(&path, b"new contents").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["heap.pb.gz"]);
        let err = write_atomically(&dir.path().join("no/such/dir/x.pb.gz"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
