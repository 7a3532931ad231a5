//! A real program built with the generated table and sites header: bzip2
//! 1.0.8, as the `bzip2-sys` crate ships it (fetched into the cargo
//! registry with `cargo fetch` when missing). Compressing a 4 MB file under
//! the preload, every call site of `bzlib.c` and `bzip2.c` resolves to its
//! table entry (no site named at run time, no warning), the output is
//! byte-identical to a build without the header, and the exit report — of
//! a program that freed everything — lists its real allocation sites
//! (`default_bzalloc`, `myMalloc`) first, with their calls and the bytes
//! they allocated in all.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use asmalloc_test_support::{Cc, Lib, scratch};

const ASMALLOC: &str = env!("CARGO_BIN_EXE_asmalloc");
const VERSION: &str = "0.1.13+1.0.8";

/// bzip2's sources in the registry, fetched when absent.
fn bzip2_dir() -> PathBuf {
    common::registry_crate("bzip2-sys", VERSION).join("bzip2-1.0.8")
}

const LIB_FILES: &[&str] = &[
    "blocksort.c",
    "huffman.c",
    "crctable.c",
    "randtable.c",
    "compress.c",
    "decompress.c",
    "bzlib.c",
    "bzip2.c",
];

/// Builds bzip2, with the table and the sites header when `gen` is given.
fn build(src: &Path, out: &Path, gen_dir: Option<&Path>) -> PathBuf {
    let mut cc = Cc::new().args(["-O2", "-g", "-D_FILE_OFFSET_BITS=64", "-w"]);
    if let Some(g) = gen_dir {
        cc = cc
            .arg("-include")
            .arg(g.join("asmalloc_sites.h"))
            .arg(g.join("mallocations.c"));
    }
    for f in LIB_FILES {
        cc = cc.arg(src.join(f));
    }
    cc.build(out)
}

/// 4 MB of text that compresses but not trivially.
fn input(path: &Path) {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let words = [
        "alloc", "free", "site", "table", "wrapper", "bzip2", "block", "heap",
    ];
    let mut s = String::new();
    while s.len() < 4 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(words[(x % 8) as usize]);
        s.push(if x.is_multiple_of(11) { '\n' } else { ' ' });
    }
    std::fs::write(path, s).unwrap();
}

fn compress(exe: &Path, file: &Path, preload: bool) -> (Vec<u8>, String) {
    let mut cmd = Command::new(exe);
    cmd.args(["-c", "-9"]).arg(file).stderr(Stdio::piped());
    if preload {
        cmd.env("LD_PRELOAD", Lib::Glibc.path())
            .env("ASMALLOC_TOP_SITES", "40");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bzip2_built_with_the_header_resolves_every_site_and_compresses_the_same() {
    let src = bzip2_dir();
    let dir = scratch().join("bzip2");
    let gen_dir = dir.join("gen");
    std::fs::create_dir_all(&gen_dir).unwrap();
    let out = Command::new(ASMALLOC)
        .args(["gen", "--lang", "c", "-q", "--root"])
        .arg(&src)
        .arg("--out")
        .arg(&gen_dir)
        .arg("--emit-sites-header")
        .arg(&gen_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain = build(&src, &dir.join("bzip2-plain"), None);
    let tracked = build(&src, &dir.join("bzip2-sites"), Some(&gen_dir));
    let file = dir.join("input.txt");
    input(&file);
    let (reference, _) = compress(&plain, &file, false);
    let (same, _) = compress(&tracked, &file, false);
    let (traced, report) = compress(&tracked, &file, true);
    assert!(reference.len() > 1000 && reference.starts_with(b"BZh9"));
    assert!(
        same == reference,
        "without the preload: byte-identical output"
    );
    assert!(
        traced == reference,
        "under the preload: byte-identical output"
    );
    assert!(
        !report.contains("not in the site table"),
        "every site resolves:\n{report}"
    );
    // No site named at run time (their ids count down from 65535).
    let rows: Vec<Vec<&str>> = report
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|c| c.len() >= 6 && c[0].parse::<u32>().is_ok())
        .collect();
    assert!(!rows.is_empty(), "{report}");
    for r in &rows {
        let id: u32 = r[0].parse().unwrap();
        assert!(id < 60000, "a dynamic site: {r:?}\n{report}");
    }
    // Everything bzip2 allocated is freed at exit: after the rows that
    // still hold bytes (stdio's buffer, not the program's), its real sites
    // come first, by bytes allocated in all, with their calls.
    let freed: Vec<&Vec<&str>> = rows
        .iter()
        .filter(|r| r[r.len() - 2] == "0" && r[0] != "0")
        .collect();
    assert!(freed.len() >= 2, "{report}");
    let total = |r: &Vec<&str>| r[5].parse::<u64>().unwrap();
    let calls = |r: &Vec<&str>| r[4].parse::<u64>().unwrap();
    assert_eq!(freed[0][3], "default_bzalloc", "{report}");
    assert!(
        total(freed[0]) > 6 << 20,
        "bzip2 -9 allocates its 7 MB state: {report}"
    );
    assert!(calls(freed[0]) >= 3, "{report}");
    for pair in freed.windows(2) {
        assert!(
            total(pair[0]) >= total(pair[1]),
            "ordered by total: {report}"
        );
    }
    // The allocation sites bzip2 really uses are named.
    for (place, function) in [("bzlib.c:", "default_bzalloc"), ("bzip2.c:", "myMalloc")] {
        assert!(
            rows.iter()
                .any(|r| r[2].starts_with(place) && r[3] == function && r[1] == "MALLOC"),
            "{function} in:\n{report}"
        );
    }
}
