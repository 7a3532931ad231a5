//! The battery's inputs (a pseudo-English corpus, records, JSON, a tree of
//! small files, what nginx serves), generated the same every run, and its
//! helper programs compiled from tests/battery/*.c.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use asmalloc_test_support::Cc;

use crate::Mode;
use crate::ctx::which;
use crate::fixture;

struct Rng(u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn vocabulary(rng: &mut Rng) -> Vec<String> {
    const SYLL: [&str; 20] = [
        "ka", "lo", "mi", "ne", "su", "ta", "ri", "vo", "the", "an", "er", "in", "on", "at", "es",
        "or", "is", "al", "de", "ur",
    ];
    (0..4000)
        .map(|i| {
            let n = 1 + rng.below(3) as usize + i % 2;
            (0..n).map(|_| SYLL[rng.below(20) as usize]).collect()
        })
        .collect()
}

/// Pseudo-English: sentences of words drawn with a skewed distribution.
pub fn corpus(bytes: usize) -> String {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let vocab = vocabulary(&mut rng);
    let mut s = String::with_capacity(bytes + 128);
    let (mut line, mut in_sentence) = (0usize, 0usize);
    while s.len() < bytes {
        let w = &vocab[(rng.below(4000) * rng.below(4000) / 4000) as usize];
        if in_sentence == 0 {
            let mut c = w.chars();
            let first = c.next().unwrap().to_ascii_uppercase();
            s.push(first);
            s.push_str(c.as_str());
        } else {
            s.push_str(w);
        }
        in_sentence += 1;
        line += w.len() + 1;
        if in_sentence > 4 && rng.below(8) == 0 {
            s.push(if rng.below(5) == 0 { '?' } else { '.' });
            in_sentence = 0;
        } else if rng.below(12) == 0 {
            s.push(',');
        }
        if line > 68 {
            s.push('\n');
            line = 0;
        } else {
            s.push(' ');
        }
    }
    s.push('\n');
    s
}

pub fn make_inputs(dir: &Path, mode: Mode) -> usize {
    fs::create_dir_all(dir).unwrap();
    let text = corpus(mode.pick(256 << 10, 6 << 20));
    fs::write(dir.join("corpus.txt"), &text).unwrap();
    let mut rng = Rng(12345);
    let vocab = vocabulary(&mut rng);
    let mut records = String::new();
    for _ in 0..mode.pick(40_000, 1_000_000) {
        let _ = writeln!(
            records,
            "{} {} {}",
            rng.below(100_000),
            vocab[rng.below(4000) as usize],
            vocab[rng.below(4000) as usize]
        );
    }
    fs::write(dir.join("records.txt"), records).unwrap();
    let mut json = String::from("[\n");
    let n = mode.pick(3000, 60_000);
    for i in 0..n {
        let _ = writeln!(
            json,
            "{{\"id\":{i},\"name\":\"{}-{}\",\"group\":\"g{}\",\"score\":{},\"tags\":[\"t{}\",\"t{}\"]}}{}",
            vocab[(i * 7919) % 4000],
            i % 100,
            i % 17,
            (i * 31337) % 1000,
            i % 5,
            i % 7,
            if i + 1 < n { "," } else { "" }
        );
    }
    json.push_str("]\n");
    fs::write(dir.join("records.json"), json).unwrap();
    // A tree of small files (tar, zstd --train).
    for i in 0..mode.pick(150, 1500) {
        let p = dir.join(format!("tree/d{}/s{}/file{i:04}.txt", i % 6, i % 3));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let start = (i * 7919) % (text.len() - 40_000);
        let len = 100 + (i * 997) % 8000;
        fs::write(&p, &text[start..start + len]).unwrap();
    }
    // What nginx serves: text (compressible) and binary files.
    let files = mode.pick(20, 60);
    for i in 1..=files {
        let start = (i * 4099) % (text.len() - 200_000);
        let len = 1 + (i * i * 977) % 120_000;
        let p = dir.join(format!("html/t{i}.txt"));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, &text[start..start + len]).unwrap();
        let bin: Vec<u8> = (0..(i * 3001) % 70_000).map(|_| rng.next() as u8).collect();
        fs::write(dir.join(format!("html/b{i}.bin")), bin).unwrap();
    }
    files
}

/// Compiles the helper programs (without the preload: building them is not
/// under test).
pub fn build_helpers(dir: &Path) -> BTreeMap<&'static str, Result<PathBuf, String>> {
    fs::create_dir_all(dir).unwrap();
    let Some(cc) = which("gcc") else {
        return BTreeMap::new();
    };
    // The C programs' shared helpers: tests/c/test_support.h.
    let include = fixture("../c");
    let build = |out: &'static str, src: &str, flags: &[&str]| {
        let r = Cc::with_compiler(&cc)
            .args(["-O2", "-g", "-Wall", "-pthread", "-I"])
            .arg(&include)
            .arg(fixture(src))
            .args(flags)
            .try_build(&dir.join(out));
        (out, r)
    };
    [
        build("forkserver", "forkserver.c", &[]),
        build("plugmain", "plugmain.c", &["-ldl"]),
        build("plugin_a.so", "plugin_a.c", &["-shared", "-fPIC"]),
        build("plugin_b.so", "plugin_b.c", &["-shared", "-fPIC"]),
        build(
            "allocwork-tcmalloc",
            "allocwork.c",
            &["-DUSE_TCMALLOC", "-ltcmalloc_minimal"],
        ),
        build(
            "allocwork-mimalloc",
            "allocwork.c",
            &["-DUSE_MIMALLOC", "-lmimalloc"],
        ),
        build(
            "allocwork-jemalloc",
            "allocwork.c",
            &["-DUSE_JEMALLOC", "-ljemalloc"],
        ),
    ]
    .into_iter()
    .collect()
}
