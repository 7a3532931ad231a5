//! The programs of the battery — what each needs (with the Debian package
//! that provides it), which output files are compared, and how it runs:
//! the table, and the interpreters, build tools, dlopen plugins and
//! programs on other allocators (data tools in data_tools.rs, servers in
//! servers.rs).

use std::fs;

use crate::ctx::{Ctx, Exec};
use crate::data_tools::{
    run_gawk, run_git, run_gzip, run_jq, run_sort, run_sqlite3, run_tar, run_xz, run_zstd,
};
use crate::fixture;
use crate::normalise::{sorted_lines, sorted_without_progress, strip_durations};
use crate::servers::{run_forkserver, run_nginx, run_redis};

/// Something a program needs, with the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// An executable, found in the directories of [`SEARCH_PATH`].
    Tool(&'static str, &'static str),
    /// A file (a header of a -dev package).
    File(&'static str, &'static str),
}

pub struct Program {
    pub name: &'static str,
    pub needs: &'static [Need],
    /// Foreign frees are expected: the program frees blocks the library
    /// never handed out (allocated before it loaded, or by another
    /// allocator). Every exception says why in a comment.
    pub foreign_frees_ok: bool,
    /// Runs only in full mode (too slow for quick mode).
    pub full_only: bool,
    /// Output files compared byte for byte, relative to the work directory:
    /// `path`, `dir/` (every file below), `dir/*.ext` or `*.ext`.
    pub outputs: &'static [&'static str],
    pub run: fn(&Ctx) -> Result<(), String>,
}

const CC: Need = Need::Tool("gcc", "gcc");

pub fn programs() -> Vec<Program> {
    vec![
        // --- interpreters
        Program {
            name: "python3",
            needs: &[Need::Tool("python3", "python3")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["out.txt"],
            run: run_python3,
        },
        Program {
            name: "perl",
            needs: &[Need::Tool("perl", "perl")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["out.txt"],
            run: run_perl,
        },
        Program {
            name: "lua5.4",
            needs: &[Need::Tool("lua5.4", "lua5.4")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["out.txt"],
            run: run_lua,
        },
        Program {
            name: "ruby",
            needs: &[Need::Tool("ruby", "ruby")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["out.txt"],
            run: run_ruby,
        },
        Program {
            name: "node",
            needs: &[Need::Tool("node", "nodejs")],
            foreign_frees_ok: false,
            // Fast enough for quick mode (V8's threads and heap cost well
            // under a second per run on the quick corpus); the flag is there
            // for programs that are not.
            full_only: false,
            outputs: &["out.txt"],
            run: run_node,
        },
        // --- build tools
        Program {
            name: "gcc",
            needs: &[CC],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &[
                "obj/",
                "wordfreq",
                "wordfreq-one",
                "counts.txt",
                "counts-one.txt",
            ],
            run: run_gcc,
        },
        Program {
            name: "make -j2",
            needs: &[Need::Tool("make", "make"), CC],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["*.o", "wordfreq", "counts.txt"],
            run: run_make,
        },
        Program {
            name: "cmake",
            needs: &[Need::Tool("cmake", "cmake"), Need::Tool("make", "make"), CC],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["build/wordfreq", "counts.txt"],
            run: run_cmake,
        },
        // --- data tools
        Program {
            name: "sqlite3",
            needs: &[Need::Tool("sqlite3", "sqlite3")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["db.sqlite", "dump.sql"],
            run: run_sqlite3,
        },
        Program {
            name: "sort",
            needs: &[Need::Tool("sort", "coreutils")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["by-word.txt", "by-num.txt", "uniq.txt"],
            run: run_sort,
        },
        Program {
            name: "gzip",
            needs: &[Need::Tool("gzip", "gzip")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["corpus.gz", "records.gz", "corpus.back"],
            run: run_gzip,
        },
        Program {
            name: "xz",
            needs: &[Need::Tool("xz", "xz-utils")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["corpus.xz", "records.xz", "corpus.back"],
            run: run_xz,
        },
        Program {
            name: "zstd",
            needs: &[Need::Tool("zstd", "zstd")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["corpus.zst", "records.zst", "corpus.back", "dict"],
            run: run_zstd,
        },
        Program {
            name: "jq",
            needs: &[Need::Tool("jq", "jq")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["selected.jsonl"],
            run: run_jq,
        },
        Program {
            name: "gawk",
            needs: &[Need::Tool("gawk", "gawk")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["words.txt"],
            run: run_gawk,
        },
        Program {
            name: "tar",
            needs: &[Need::Tool("tar", "tar")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["tree.tar", "x/"],
            run: run_tar,
        },
        Program {
            name: "git",
            needs: &[Need::Tool("git", "git")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["head.tar"],
            run: run_git,
        },
        // --- servers under a short loopback load
        Program {
            // redis-server, redis-benchmark and redis-cli all link Debian's
            // libjemalloc.so.2: this is also the jemalloc-linked program.
            name: "redis",
            needs: &[
                Need::Tool("redis-server", "redis-server"),
                Need::Tool("redis-benchmark", "redis-tools"),
                Need::Tool("redis-cli", "redis-tools"),
            ],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &[],
            run: run_redis,
        },
        Program {
            name: "nginx",
            needs: &[
                Need::Tool("nginx", "nginx-light"),
                Need::Tool("curl", "curl"),
            ],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["got/", "access.sorted", "error.norm"],
            run: run_nginx,
        },
        Program {
            name: "forkserver",
            needs: &[CC],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &["replies/"],
            run: run_forkserver,
        },
        // --- dlopen, other allocators
        Program {
            name: "dlopen plugins",
            needs: &[CC],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &[],
            run: run_plugins,
        },
        Program {
            name: "tcmalloc-linked",
            needs: &[
                CC,
                Need::File(
                    "/usr/include/gperftools/tcmalloc.h",
                    "libgoogle-perftools-dev",
                ),
            ],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &[],
            run: run_tcmalloc,
        },
        Program {
            name: "mimalloc-linked",
            needs: &[CC, Need::File("/usr/include/mimalloc.h", "libmimalloc-dev")],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &[],
            run: run_mimalloc,
        },
        Program {
            name: "jemalloc-linked",
            needs: &[
                CC,
                Need::File("/usr/include/jemalloc/jemalloc.h", "libjemalloc-dev"),
            ],
            foreign_frees_ok: false,
            full_only: false,
            outputs: &[],
            run: run_jemalloc_linked,
        },
    ]
}

fn run_script(ctx: &Ctx, tool: &str, script: &str) -> Result<(), String> {
    let mut c = ctx.cmd(tool);
    c.arg(fixture(script))
        .arg(ctx.input("corpus.txt"))
        .arg("out.txt");
    ctx.run(&format!("{tool} {script}"), c)
}

fn run_python3(ctx: &Ctx) -> Result<(), String> {
    run_script(ctx, "python3", "work.py")
}

fn run_perl(ctx: &Ctx) -> Result<(), String> {
    run_script(ctx, "perl", "work.pl")
}

fn run_lua(ctx: &Ctx) -> Result<(), String> {
    run_script(ctx, "lua5.4", "work.lua")
}

fn run_ruby(ctx: &Ctx) -> Result<(), String> {
    run_script(ctx, "ruby", "work.rb")
}

fn run_node(ctx: &Ctx) -> Result<(), String> {
    run_script(ctx, "node", "work.js")
}

const CPROJ_SOURCES: [&str; 4] = ["main", "table", "strutil", "sortout"];

fn run_gcc(ctx: &Ctx) -> Result<(), String> {
    ctx.copy_fixture_dir("cproj", "src")?;
    fs::create_dir_all(ctx.dir.join("obj")).map_err(|e| e.to_string())?;
    for src in CPROJ_SOURCES {
        let mut c = ctx.cmd("gcc");
        c.args(["-O2", "-Wall", "-c"])
            .arg(format!("src/{src}.c"))
            .arg("-o")
            .arg(format!("obj/{src}.o"));
        ctx.run(&format!("gcc -c {src}.c"), c)?;
    }
    let mut c = ctx.cmd("gcc");
    c.args(["-o", "wordfreq"])
        .args(CPROJ_SOURCES.map(|s| format!("obj/{s}.o")));
    ctx.run("gcc link", c)?;
    // All sources in one invocation (the driver runs cc1 for each).
    let mut c = ctx.cmd("gcc");
    c.args(["-O2", "-Wall", "-o", "wordfreq-one"])
        .args(CPROJ_SOURCES.map(|s| format!("src/{s}.c")));
    ctx.run("gcc all-in-one", c)?;
    for (exe, out) in [
        ("wordfreq", "counts.txt"),
        ("wordfreq-one", "counts-one.txt"),
    ] {
        let mut c = ctx.cmd(&ctx.dir.join(exe).to_string_lossy());
        c.arg(ctx.input("corpus.txt")).arg(out);
        ctx.run(exe, c)?;
    }
    Ok(())
}

fn run_make(ctx: &Ctx) -> Result<(), String> {
    ctx.copy_fixture_dir("cproj", ".")?;
    let mut c = ctx.cmd("make");
    c.args(["-j2", "check"])
        .arg(format!("INPUT={}", ctx.input("corpus.txt").display()));
    // With -j2 the order in which make starts (and echoes) the compiles
    // depends on which finishes first: compare the lines sorted.
    ctx.exec(
        "make -j2 check",
        c,
        Exec {
            norm: sorted_lines,
            ..Exec::default()
        },
    )
}

fn run_cmake(ctx: &Ctx) -> Result<(), String> {
    ctx.copy_fixture_dir("cproj", "src")?;
    let mut c = ctx.cmd("cmake");
    c.args(["-S", "src", "-B", "build", "-DCMAKE_BUILD_TYPE=Release"]);
    // Newer cmake prints how long configuring took: "(0.3s)".
    ctx.exec(
        "cmake configure",
        c,
        Exec {
            norm: strip_durations,
            ..Exec::default()
        },
    )?;
    let mut c = ctx.cmd("cmake");
    c.args(["--build", "build", "-j", "2"]);
    // Parallel build: the lines come in completion order, and the
    // "[ 40%]" progress in front of each depends on that order.
    ctx.exec(
        "cmake --build",
        c,
        Exec {
            norm: sorted_without_progress,
            ..Exec::default()
        },
    )?;
    let mut c = ctx.cmd(&ctx.dir.join("build/wordfreq").to_string_lossy());
    c.arg(ctx.input("corpus.txt")).arg("counts.txt");
    ctx.run("build/wordfreq", c)
}

fn run_plugins(ctx: &Ctx) -> Result<(), String> {
    let exe = ctx.bin("plugmain")?;
    let a = ctx.bin("plugin_a.so")?;
    let b = ctx.bin("plugin_b.so")?;
    let mut c = ctx.cmd(&exe.to_string_lossy());
    c.arg(ctx.mode.pick(4, 20).to_string())
        .arg(ctx.mode.pick(2000, 20000).to_string())
        .arg(a)
        .arg(b);
    ctx.run("plugmain", c)
}

fn run_allocwork(ctx: &Ctx, bin: &str) -> Result<(), String> {
    let exe = ctx.bin(bin)?;
    let mut c = ctx.cmd(&exe.to_string_lossy());
    c.arg(ctx.mode.pick(60_000, 1_000_000).to_string());
    ctx.run(bin, c)
}

fn run_tcmalloc(ctx: &Ctx) -> Result<(), String> {
    run_allocwork(ctx, "allocwork-tcmalloc")
}

fn run_mimalloc(ctx: &Ctx) -> Result<(), String> {
    run_allocwork(ctx, "allocwork-mimalloc")
}

fn run_jemalloc_linked(ctx: &Ctx) -> Result<(), String> {
    run_allocwork(ctx, "allocwork-jemalloc")
}
