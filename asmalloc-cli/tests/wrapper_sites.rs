//! The program's own allocation wrappers as sites, end to end: a small C
//! program (tests/c_wrappers) allocates through an out-of-line
//! `xmalloc`/`xfree` pair (with a function-pointer hook inside, as Lua's
//! allocator), a `static inline` wrapper calling another wrapper, a wrapper
//! that hands out a cached block, and a function-like macro expanding to a
//! wrapper call. `asmalloc gen --wrapper …` writes the table and the sites
//! header; built with it and run under the preload, each caller's line is
//! charged exactly what the program's own shadow count says it left
//! allocated, nothing is charged to the lines inside the wrappers, and the
//! cached call leaves no site behind. Every call site resolves to its
//! table entry (the macro's use is one). Without the preload the program
//! runs the same. The header compiles under `-std=c99 -pedantic-errors` with
//! gcc and clang.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use asmalloc_test_support::{Cc, Lib, scratch};

const ASMALLOC: &str = env!("CARGO_BIN_EXE_asmalloc");

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c_wrappers")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `asmalloc gen` for tests/c_wrappers with its wrappers; returns the
/// output directory (table and sites header).
fn generate() -> &'static Path {
    static GEN: OnceLock<PathBuf> = OnceLock::new();
    GEN.get_or_init(|| {
        let gen_dir = scratch().join("gen");
        let out = Command::new(ASMALLOC)
            .args(["gen", "--lang", "c", "--root"])
            .arg(src())
            .arg("--out")
            .arg(&gen_dir)
            .arg("--emit-sites-header")
            .arg(&gen_dir)
            .args([
                "--wrapper",
                "xmalloc=MALLOC",
                "--wrapper",
                "xfree=FREE",
                "--wrapper",
                "xstrdup=STRDUP",
                "--wrapper",
                "cache_get=MALLOC",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        gen_dir
    })
}

/// Compiles one file to an object.
fn object(name: &str, file: &Path, extra: &[&str]) -> PathBuf {
    let gen_dir = generate();
    Cc::new()
        .args(["-c", "-O2", "-g", "-Wall", "-Wextra", "-Werror"])
        .args(extra)
        .arg("-include")
        .arg(gen_dir.join("asmalloc_sites.h"))
        .arg("-I")
        .arg(gen_dir)
        .arg("-I")
        .arg(src())
        .arg(file)
        .build(&scratch().join(name))
}

fn program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let header = std::fs::read_to_string(generate().join("asmalloc_sites.h")).unwrap();
        // xalloc.c defines xmalloc and xfree: the header says so.
        assert!(
            header.contains("xalloc.c (xfree, xmalloc)"),
            "the header names the file to compile with -DASMALLOC_NO_WRAPPERS:\n{header}"
        );
        let objects = [
            object("main.o", &src().join("main.c"), &[]),
            object(
                "xalloc.o",
                &src().join("xalloc.c"),
                &["-DASMALLOC_NO_WRAPPERS"],
            ),
            object(
                "mallocations.o",
                &generate().join("mallocations.c"),
                &["-DASMALLOC_NO_WRAPPERS"],
            ),
        ];
        // plain.c is built without the header.
        let plain = Cc::new()
            .args(["-c", "-O2"])
            .arg(src().join("plain.c"))
            .build(&scratch().join("plain.o"));
        Cc::new()
            .args(&objects)
            .arg(plain)
            .build(&scratch().join("wrappers"))
    })
}

fn run(preload: bool) -> Output {
    let mut cmd = Command::new(program());
    if preload {
        let lib = Lib::Glibc.path();
        cmd.env("LD_PRELOAD", lib).env("ASMALLOC_TOP_SITES", "30");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    out
}

/// The exit report's row for `place` (`main.c:LINE`), split in columns.
fn row(report: &str, place: &str) -> Option<Vec<String>> {
    report
        .lines()
        .rev()
        .find(|l| {
            l.split_whitespace()
                .any(|c| c == place || c.ends_with(&format!("/{place}")))
        })
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
}

fn line_of(file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(src().join(file)).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn each_wrapper_call_is_charged_exactly_what_its_caller_kept() {
    let plain = run(false);
    let traced = run(true);
    // The same run without the preload (only the usable sizes of blocks
    // differ between the two allocators' layouts).
    let places = |o: &Output| -> Vec<String> {
        text(&o.stdout)
            .lines()
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(places(&plain), places(&traced), "same output");
    let out = text(&traced.stdout);
    let report = text(&traced.stderr);
    let shadows: Vec<(String, i64, i64)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("shadow "))
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (
                c[0].to_owned(),
                c[1].parse().unwrap(),
                c[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(shadows.len(), 5, "five callers:\n{out}");
    for (place, bytes, blocks) in &shadows {
        let r = row(&report, place).unwrap_or_else(|| panic!("no row for {place} in:\n{report}"));
        let n = r.len();
        assert_eq!(
            (
                r[n - 2].parse::<i64>().unwrap(),
                r[n - 1].parse::<i64>().unwrap()
            ),
            (*bytes, *blocks),
            "{place}: report row {r:?}, shadow count {bytes} bytes in {blocks} blocks"
        );
        assert!(r.contains(&"main".to_owned()), "{r:?}");
    }
    // Nothing is charged to the calls inside the wrappers.
    for place in [
        format!("xalloc.c:{}", line_of("xalloc.c", "return malloc(n)")),
        format!("xalloc.c:{}", line_of("xalloc.c", "free(p)")),
        format!("xalloc.h:{}", line_of("xalloc.h", "char *p = xmalloc(n)")),
        format!("xalloc.h:{}", line_of("xalloc.h", "cached = xmalloc(n)")),
    ] {
        if let Some(r) = row(&report, &place) {
            let n = r.len();
            assert_eq!(r[n - 2..], ["0", "0"], "{place}: {r:?}\n{report}");
        }
    }
    // The freed pair (`xfree(xmalloc(123))`) nets to zero at its line.
    let pair = format!("main.c:{}", line_of("main.c", "xfree(xmalloc(123))"));
    let r = row(&report, &pair).unwrap_or_else(|| panic!("no row for {pair} in:\n{report}"));
    assert_eq!(r[r.len() - 2..], ["0", "0"], "{r:?}");
    // The macro's use (NEW) is a site of the table too: every call site
    // resolves, nothing is named at run time.
    assert!(
        !report.contains("not in the site table"),
        "every site is in the table:\n{report}"
    );
}

#[test]
fn the_header_compiles_under_c99_pedantic_with_gcc_and_clang() {
    let gen_dir = generate();
    for compiler in ["gcc", "clang"] {
        let out = Command::new(compiler)
            .args([
                "-std=c99",
                "-pedantic-errors",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-O1",
                "-c",
                "-o",
                "/dev/null",
                "-include",
            ])
            .arg(gen_dir.join("asmalloc_sites.h"))
            .arg("-I")
            .arg(src())
            .arg(src().join("main.c"))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {compiler} ({e}): install Debian's {compiler} package (.ci/run does)")
            });
        assert!(out.status.success(), "{compiler}: {}", text(&out.stderr));
    }
}

/// A table scanned from above the directory the build compiles in: the
/// table has `src/main.c`, `__FILE__` is `main.c`. Each call site is named
/// at run time, with one warning per site that says why.
#[test]
fn a_site_missing_from_the_table_is_warned_about_once_with_its_cause() {
    let proj = scratch().join("other-root");
    let src_dir = proj.join("src");
    std::fs::create_dir_all(&src_dir).unwrap();
    for f in ["main.c", "xalloc.c", "xalloc.h", "plain.c"] {
        std::fs::copy(src().join(f), src_dir.join(f)).unwrap();
    }
    let gen_dir = proj.join("gen");
    let out = Command::new(ASMALLOC)
        .args(["gen", "--lang", "c", "-q", "--root"])
        .arg(&proj)
        .arg("--out")
        .arg(&gen_dir)
        .arg("--emit-sites-header")
        .arg(&gen_dir)
        .args(["--wrapper", "xmalloc=MALLOC", "--wrapper", "xfree=FREE"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exe = proj.join("prog");
    let header = gen_dir.join("asmalloc_sites.h");
    let cc = |args: &[&str]| {
        let out = Command::new("gcc")
            .current_dir(&src_dir)
            .args(["-O1", "-include"])
            .arg(&header)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    cc(&["-c", "main.c", "-o", "main.o"]);
    cc(&["-DASMALLOC_NO_WRAPPERS", "-c", "xalloc.c", "-o", "xalloc.o"]);
    cc(&[
        "-DASMALLOC_NO_WRAPPERS",
        "-c",
        "../gen/mallocations.c",
        "-o",
        "m.o",
    ]);
    cc(&["-c", "plain.c", "-o", "plain.o"]);
    let link = Command::new("gcc")
        .current_dir(&src_dir)
        .args(["main.o", "xalloc.o", "m.o", "plain.o", "-o"])
        .arg(&exe)
        .status()
        .unwrap();
    assert!(link.success());
    let run = Command::new(&exe)
        .env("LD_PRELOAD", Lib::Glibc.path())
        .output()
        .unwrap();
    assert!(run.status.success());
    let err = text(&run.stderr);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("is not in the site table"))
        .collect();
    // main.c's wrapper call sites (the loop's run ten times) and those of
    // the other files.
    assert!(warnings.len() >= 5, "{err}");
    let mut places = std::collections::BTreeSet::new();
    for w in &warnings {
        assert!(
            w.contains("scanned under another root"),
            "the cause is named: {w}"
        );
        let place = w.split_whitespace().nth(1).unwrap().to_owned();
        assert!(places.insert(place), "warned twice: {w}\n{err}");
    }
    let loop_line = format!("main.c:{}", line_of("main.c", "xmalloc(300 + i)"));
    assert!(places.contains(&loop_line), "{places:?}");
}
