//! The real-program battery (issue 10, part 4): two dozen real programs
//! doing real work — interpreters, compilers and build tools, data tools,
//! git, servers under a short loopback load, a forking server, a program
//! that dlopens plugins, and programs linked against Debian's jemalloc,
//! tcmalloc and mimalloc — each run without the preload and then under
//! each preload library (`libasmalloc.so`, `libasmalloc_jem.so`) with every
//! optional part on: the JSON exit report, periodic reports, every feature,
//! and the leak monitor with its log. For each program and library it
//! asserts
//!
//! * the same stdout, stderr (less the library's own `asmalloc:` lines) and
//!   exit status of every command, and the same output files, byte for
//!   byte, as without the preload (output that legitimately differs between
//!   runs — timings, ports, the order parallel jobs finish in — is
//!   normalized; each program says what and why);
//! * every site's net bytes and net blocks are non-negative in every report
//!   line (periodic and at exit) and every line of the monitor's log;
//! * no foreign frees (blocks freed that the library never handed out),
//!   unless the program's table entry says why it has some;
//! * an exit report exists, unless the library stepped aside (it says so on
//!   stderr with an `asmalloc:` line and runs the program untracked).
//!
//! Modes: quick (the default: small inputs, a few seconds per program) and
//! full (`ASMALLOC_BATTERY=full`: bigger inputs, more load, node).
//! `ASMALLOC_BATTERY_ONLY=name,name` runs only the named programs (for
//! debugging; the count line then says how many ran). A program whose tool
//! is missing fails the test with the Debian package to install.
//!
//! Every program's three runs (plain, glibc, jemalloc) happen one after the
//! other in the same work directory path (emptied in between), so paths
//! compiled into outputs (cmake, gcc) are the same; programs run in
//! parallel threads. Scratch files are kept when the test fails (the path
//! is printed): per run, each command's stdout/stderr under `logs/` and the
//! library's reports and logs under `asm/`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "support/build_lib.rs"]
mod build_lib;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// tests/battery/: C sources, scripts, the C project.
fn fixture(name: &str) -> PathBuf {
    manifest_dir().join("tests/battery").join(name)
}

/// `target/<profile>` of this test binary (`…/<profile>/deps/battery-…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lib {
    /// libasmalloc.so, over glibc's heap.
    Glibc,
    /// libasmalloc_jem.so, over the jemalloc it carries.
    Jemalloc,
}

const LIBS: [Lib; 2] = [Lib::Glibc, Lib::Jemalloc];

impl Lib {
    fn package(self) -> &'static str {
        match self {
            Lib::Glibc => "asmalloc-preload",
            Lib::Jemalloc => "asmalloc-preload-jem",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Lib::Glibc => "libasmalloc.so",
            Lib::Jemalloc => "libasmalloc_jem.so",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Lib::Glibc => "glibc",
            Lib::Jemalloc => "jemalloc",
        }
    }
}

/// Builds a library (a no-op when fresh) and returns its path.
fn lib_path(which: Lib) -> PathBuf {
    build_lib::build_lib(
        &profile_dir(),
        which.package(),
        which.file(),
        manifest_dir(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quick,
    Full,
}

impl Mode {
    fn from_env() -> Mode {
        match std::env::var("ASMALLOC_BATTERY").as_deref() {
            Err(_) | Ok("") | Ok("quick") => Mode::Quick,
            Ok("full") => Mode::Full,
            Ok(other) => panic!("ASMALLOC_BATTERY={other}: expected `quick` or `full`"),
        }
    }

    fn pick<T>(self, quick: T, full: T) -> T {
        match self {
            Mode::Quick => quick,
            Mode::Full => full,
        }
    }

    fn name(self) -> &'static str {
        self.pick("quick", "full")
    }
}

// ---------------------------------------------------------------------------
// The programs.

/// Something a program needs, with the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// An executable, found in the directories of [`SEARCH_PATH`].
    Tool(&'static str, &'static str),
    /// A file (a header of a -dev package).
    File(&'static str, &'static str),
}

struct Program {
    name: &'static str,
    needs: &'static [Need],
    /// Foreign frees are expected: the program frees blocks the library
    /// never handed out (allocated before it loaded, or by another
    /// allocator). Every exception says why in a comment.
    foreign_frees_ok: bool,
    /// Runs only in full mode (too slow for quick mode).
    full_only: bool,
    /// Output files compared byte for byte, relative to the work directory:
    /// `path`, `dir/` (every file below), `dir/*.ext` or `*.ext`.
    outputs: &'static [&'static str],
    run: fn(&Ctx) -> Result<(), String>,
}

const CC: Need = Need::Tool("gcc", "gcc");

fn programs() -> Vec<Program> {
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

// --- interpreters: a script over the generated corpus, writing a file.

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

// --- build tools: the C project in tests/battery/cproj.

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

// --- data tools

fn run_sqlite3(ctx: &Ctx) -> Result<(), String> {
    let rows = ctx.mode.pick(4000, 200_000);
    let sql = fs::read_to_string(fixture("work.sql"))
        .map_err(|e| e.to_string())?
        .replace("@ROWS@", &rows.to_string());
    ctx.write("work.sql", sql.as_bytes())?;
    let mut c = ctx.cmd("sqlite3");
    c.args(["-bail", "db.sqlite"]);
    ctx.exec(
        "sqlite3 < work.sql",
        c,
        Exec {
            stdin: Some(ctx.dir.join("work.sql")),
            ..Exec::default()
        },
    )?;
    let mut c = ctx.cmd("sqlite3");
    c.args(["db.sqlite", ".output dump.sql", ".dump"]);
    ctx.run("sqlite3 .dump", c)
}

fn run_sort(ctx: &Ctx) -> Result<(), String> {
    let input = ctx.input("records.txt");
    let mut c = ctx.cmd("sort");
    // A small buffer: sort spills runs to temporary files and merges them.
    c.args([
        "-S",
        "64K",
        "-T",
        ".tmp",
        "-k2,2",
        "-k1,1n",
        "-o",
        "by-word.txt",
    ])
    .arg(&input);
    ctx.run("sort -k2,2 -k1,1n", c)?;
    let mut c = ctx.cmd("sort");
    c.args(["-n", "-r", "--parallel=2", "-S", "1M", "-o", "by-num.txt"])
        .arg(&input);
    ctx.run("sort -nr --parallel=2", c)?;
    let mut c = ctx.cmd("sort");
    c.args(["-u", "-k2,2", "-o", "uniq.txt"]).arg(&input);
    ctx.run("sort -u", c)?;
    // A failing check: exit status 1 and a message on stderr.
    let mut c = ctx.cmd("sort");
    c.args(["-c", "by-num.txt"]);
    ctx.exec(
        "sort -c (unsorted)",
        c,
        Exec {
            expect: 1,
            ..Exec::default()
        },
    )
}

/// A compressor: compress the corpus and the records, decompress, test, and
/// test a truncated file (exit status 1).
fn run_compressor(ctx: &Ctx, tool: &str, ext: &str, args: &[&[&str]; 5]) -> Result<(), String> {
    let [strong, fast, decompress, test, list] = args;
    let corpus = ctx.input("corpus.txt");
    let mut c = ctx.cmd(tool);
    c.args(*strong).arg(&corpus);
    ctx.exec(
        &format!("{tool} corpus"),
        c,
        Exec::to_file(&format!("corpus.{ext}")),
    )?;
    let mut c = ctx.cmd(tool);
    c.args(*fast).arg(ctx.input("records.txt"));
    ctx.exec(
        &format!("{tool} records"),
        c,
        Exec::to_file(&format!("records.{ext}")),
    )?;
    let mut c = ctx.cmd(tool);
    c.args(*decompress).arg(format!("corpus.{ext}"));
    ctx.exec(&format!("{tool} -d"), c, Exec::to_file("corpus.back"))?;
    let mut c = ctx.cmd(tool);
    c.args(*test).arg(format!("corpus.{ext}"));
    ctx.run(&format!("{tool} -t"), c)?;
    if !list.is_empty() {
        let mut c = ctx.cmd(tool);
        c.args(*list).arg(format!("corpus.{ext}"));
        ctx.run(&format!("{tool} list"), c)?;
    }
    let whole = fs::read(ctx.dir.join(format!("corpus.{ext}"))).map_err(|e| e.to_string())?;
    ctx.write(&format!("bad.{ext}"), &whole[..whole.len() / 2])?;
    let mut c = ctx.cmd(tool);
    c.args(*test).arg(format!("bad.{ext}"));
    ctx.exec(
        &format!("{tool} -t truncated"),
        c,
        Exec {
            expect: 1,
            ..Exec::default()
        },
    )
}

fn run_gzip(ctx: &Ctx) -> Result<(), String> {
    run_compressor(
        ctx,
        "gzip",
        "gz",
        &[
            &["-9", "-n", "-c"],
            &["-1", "-n", "-c"],
            &["-d", "-c"],
            &["-t"],
            &["-l"],
        ],
    )
}

fn run_xz(ctx: &Ctx) -> Result<(), String> {
    run_compressor(
        ctx,
        "xz",
        "xz",
        &[
            &["-T2", "-6", "-c"],
            &["-0", "-c"],
            &["-d", "-c"],
            &["-t"],
            &["--robot", "--list"],
        ],
    )
}

fn run_zstd(ctx: &Ctx) -> Result<(), String> {
    run_compressor(
        ctx,
        "zstd",
        "zst",
        &[
            &["-q", "-T2", "-12", "-c"],
            &["-q", "-3", "-c"],
            &["-q", "-d", "-c"],
            &["-q", "-t"],
            &[],
        ],
    )?;
    // Dictionary training: many small samples, a lot of allocation.
    let mut c = ctx.cmd("zstd");
    c.args(["--train", "-q", "--maxdict=16384", "-r"])
        .arg(ctx.input("tree"))
        .args(["-o", "dict"]);
    ctx.run("zstd --train", c)
}

fn run_jq(ctx: &Ctx) -> Result<(), String> {
    let records = ctx.input("records.json");
    let mut c = ctx.cmd("jq");
    c.arg("-f").arg(fixture("query.jq")).arg(&records);
    ctx.run("jq -f query.jq", c)?;
    let mut c = ctx.cmd("jq");
    c.args([
        "-c",
        ".[] | select(.score > 900) | {id, name, tags: (.tags | join(\"+\"))}",
    ])
    .arg(&records);
    ctx.exec("jq select", c, Exec::to_file("selected.jsonl"))?;
    // -e: exit status 1 when the last output is null.
    let mut c = ctx.cmd("jq");
    c.args(["-e", ".[0].missing"]).arg(&records);
    ctx.exec(
        "jq -e (null)",
        c,
        Exec {
            expect: 1,
            ..Exec::default()
        },
    )
}

fn run_gawk(ctx: &Ctx) -> Result<(), String> {
    let mut c = ctx.cmd("gawk");
    c.arg("-f")
        .arg(fixture("words.awk"))
        .args(["-v", "out=words.txt"])
        .arg(ctx.input("corpus.txt"));
    ctx.run("gawk -f words.awk", c)
}

fn run_tar(ctx: &Ctx) -> Result<(), String> {
    let mut c = ctx.cmd("tar");
    // Reproducible: sorted names, fixed times and owners.
    c.args([
        "--sort=name",
        "--mtime=@0",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "--format=gnu",
        "-cf",
        "tree.tar",
        "-C",
    ])
    .arg(ctx.shared.inputs.as_path())
    .arg("tree");
    ctx.run("tar -c", c)?;
    let mut c = ctx.cmd("tar");
    c.args(["-tvf", "tree.tar"]);
    ctx.run("tar -tv", c)?;
    fs::create_dir_all(ctx.dir.join("x")).map_err(|e| e.to_string())?;
    let mut c = ctx.cmd("tar");
    c.args(["-xf", "tree.tar", "-C", "x"]);
    ctx.run("tar -x", c)
}

fn run_git(ctx: &Ctx) -> Result<(), String> {
    let repo = ctx.dir.join("repo");
    fs::create_dir_all(&repo).map_err(|e| e.to_string())?;
    let git = |args: &[&str]| {
        let mut c = ctx.cmd("git");
        c.args(["-C", "repo"])
            .args([
                "-c",
                "user.name=Battery",
                "-c",
                "user.email=battery@example.invalid",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "gc.autoDetach=false",
                // One delta-search thread: the pack (its size in
                // count-objects) is then the same every run.
                "-c",
                "pack.threads=1",
            ])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", "2020-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2020-01-01T00:00:00Z");
        c
    };
    ctx.run("git init", git(&["init", "-q"]))?;
    let corpus = fs::read_to_string(ctx.input("corpus.txt")).map_err(|e| e.to_string())?;
    let commits = ctx.mode.pick(6, 40);
    let files = ctx.mode.pick(40, 300);
    for k in 0..commits {
        for i in 0..files {
            // Each commit rewrites a third of the files and removes a few.
            if (i + k) % 3 != 0 && k > 0 {
                continue;
            }
            let path = repo.join(format!("d{}/f{i:03}.txt", i % 7));
            if k > 0 && (i * 7 + k) % 23 == 0 {
                let _ = fs::remove_file(&path);
                continue;
            }
            let start = (i * 997 + k * 131) % (corpus.len() - 4096);
            let len = 200 + (i * 31 + k * 17) % 3000;
            fs::create_dir_all(path.parent().unwrap()).map_err(|e| e.to_string())?;
            fs::write(&path, &corpus[start..start + len]).map_err(|e| e.to_string())?;
        }
        ctx.run("git add", git(&["add", "-A"]))?;
        ctx.run(
            "git commit",
            git(&["commit", "-q", "-m", &format!("commit {k}")]),
        )?;
    }
    ctx.run(
        "git log",
        git(&["log", "--stat", "--format=%H %an <%ae> %s"]),
    )?;
    ctx.run("git diff", git(&["diff", "--stat", "HEAD~3", "HEAD"]))?;
    ctx.run("git gc", git(&["gc", "--quiet"]))?;
    ctx.run("git count-objects", git(&["count-objects", "-v"]))?;
    ctx.run("git fsck", git(&["fsck", "--full", "--no-progress"]))?;
    ctx.run("git grep", git(&["grep", "-c", "the", "HEAD", "--", "d1"]))?;
    ctx.run(
        "git archive",
        git(&["archive", "--format=tar", "-o", "../head.tar", "HEAD"]),
    )
}

// --- servers

fn run_redis(ctx: &Ctx) -> Result<(), String> {
    let port = ctx.free_port()?;
    let p = port.to_string();
    let mut c = ctx.cmd("redis-server");
    c.args([
        "--port",
        &p,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        ".",
    ]);
    // Its log (stdout) has times and pids: kept under logs/, not compared.
    let mut server = ctx.spawn("redis-server", c)?;
    ctx.wait_port(&mut server, port)?;
    let n = ctx.mode.pick(20_000, 200_000).to_string();
    let mut c = ctx.cmd("redis-benchmark");
    c.args(["-h", "127.0.0.1", "-p", &p, "-n", &n, "-P", "32"])
        .args(["-t", "set,get,lpush,lpop,hset", "-d", "256", "-q"]);
    // Its lines report requests per second and latencies: only the test
    // names are compared.
    ctx.exec(
        "redis-benchmark",
        c,
        Exec {
            norm: norm_benchmark,
            ..Exec::default()
        },
    )?;
    let cli = |args: &[&str]| {
        let mut c = ctx.cmd("redis-cli");
        c.args(["-h", "127.0.0.1", "-p", &p]).args(args);
        c
    };
    ctx.run("redis-cli dbsize", cli(&["DBSIZE"]))?;
    ctx.run("redis-cli strlen", cli(&["STRLEN", "key:__rand_int__"]))?;
    ctx.run("redis-cli hlen", cli(&["HLEN", "myhash"]))?;
    ctx.run("redis-cli llen", cli(&["LLEN", "mylist"]))?;
    // The call counts per command (the times spent vary: dropped).
    ctx.exec(
        "redis-cli info commandstats",
        cli(&["INFO", "commandstats"]),
        Exec {
            norm: norm_commandstats,
            ..Exec::default()
        },
    )?;
    ctx.check_signal_masks(&server, Threads::Library)?;
    ctx.run("redis-cli shutdown", cli(&["SHUTDOWN", "NOSAVE"]))?;
    ctx.finish(server, Stdout::Ignore)
}

fn run_nginx(ctx: &Ctx) -> Result<(), String> {
    let port = ctx.free_port()?;
    let prefix = ctx.dir.join("nginx");
    for d in ["logs", "tmp"] {
        fs::create_dir_all(prefix.join(d)).map_err(|e| e.to_string())?;
    }
    let p = prefix.display();
    // Workers run as the user that starts nginx (as root, nginx would
    // switch them to nobody unless told otherwise).
    let user = if is_root() { "user root;\n" } else { "" };
    let conf = format!(
        "{user}daemon off;\nmaster_process on;\nworker_processes 4;\npid {p}/nginx.pid;\n\
         error_log {p}/logs/error.log warn;\nevents {{ worker_connections 64; }}\n\
         http {{\n  log_format t '$request $status $body_bytes_sent';\n\
           access_log {p}/logs/access.log t;\n\
           client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n\
           fastcgi_temp_path {p}/tmp/fastcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n\
           scgi_temp_path {p}/tmp/scgi;\n\
           types {{ text/plain txt; application/octet-stream bin; }}\n\
           default_type application/octet-stream;\n  sendfile on;\n\
           gzip on;\n  gzip_types *;\n  gzip_min_length 64;\n\
           server {{\n    listen 127.0.0.1:{port};\n    root {html};\n  }}\n}}\n",
        html = ctx.input("html").display(),
    );
    ctx.write("nginx/nginx.conf", conf.as_bytes())?;
    let mut c = ctx.cmd("nginx");
    c.arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        .arg("-e")
        .arg(prefix.join("logs/error.log"));
    let mut server = ctx.spawn("nginx", c)?;
    ctx.wait_port(&mut server, port)?;
    let base = format!("http://127.0.0.1:{port}");
    let files = ctx.shared.html_files;
    let rounds = ctx.mode.pick(3, 20);
    for r in 0..rounds {
        let mut c = ctx.cmd("curl");
        c.args([
            "-sS",
            "--create-dirs",
            "-w",
            "%{http_code} %{size_download}\\n",
        ]);
        // Every other round asks for gzip: nginx compresses on the fly.
        if r % 2 == 1 {
            c.arg("--compressed");
        }
        c.arg(format!("{base}/t[1-{files}].txt"))
            .args(["-o", &format!("got/r{r}/t#1.txt")])
            .arg(format!("{base}/b[1-{files}].bin"))
            .args(["-o", &format!("got/r{r}/b#1.bin")]);
        ctx.run(&format!("curl round {r}"), c)?;
    }
    let mut c = ctx.cmd("curl");
    c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}\\n"])
        .arg(format!("{base}/missing.txt"));
    ctx.run("curl 404", c)?;
    // Four connections at once, spread over the workers.
    let mut c = ctx.cmd("curl");
    c.args([
        "-sS",
        // curl 7.88 shows the parallel progress meter even with -s.
        "--no-progress-meter",
        "--create-dirs",
        "--parallel",
        "--parallel-max",
        "4",
        "--compressed",
    ])
    .arg(format!("{base}/t[1-{files}].txt"))
    .args(["-o", "got/par/t#1.txt"]);
    ctx.run("curl --parallel", c)?;
    // The master is single-threaded: every other thread in it is the
    // library's.
    ctx.check_signal_masks(&server, Threads::AllButMain)?;
    ctx.signal(&server, libc::SIGQUIT)?;
    ctx.finish(server, Stdout::Compare)?;
    // The access log in request order depends on which connection of a
    // parallel transfer finished first: compared sorted. The error log's
    // lines start with a time, the worker's pid and the connection's
    // number (which worker took which connection varies): compared
    // without them, and with the port replaced.
    let access = fs::read_to_string(prefix.join("logs/access.log")).map_err(|e| e.to_string())?;
    ctx.write("access.sorted", sorted_lines(&access).as_bytes())?;
    let error = fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default();
    let error: String = error.lines().map(norm_nginx_error).collect();
    ctx.write("error.norm", ctx.unport(&error).as_bytes())
}

fn run_forkserver(ctx: &Ctx) -> Result<(), String> {
    let exe = ctx.bin("forkserver")?;
    let port = ctx.free_port()?;
    let conns = ctx.mode.pick(12, 120);
    let lines = ctx.mode.pick(40, 400);
    let mut c = ctx.cmd(&exe.to_string_lossy());
    // One more connection than the clients make: the readiness probe.
    c.arg(port.to_string()).arg((conns + 1).to_string());
    let mut server = ctx.spawn("forkserver", c)?;
    ctx.wait_port(&mut server, port)?;
    let replies = ctx.dir.join("replies");
    fs::create_dir_all(&replies).map_err(|e| e.to_string())?;
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let replies = &replies;
                s.spawn(move || {
                    (t..conns)
                        .step_by(2)
                        .try_for_each(|i| echo_client(port, i, lines, replies))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("client thread panicked".into()))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    ctx.finish(server, Stdout::Compare)
}

/// One connection to the forking server: `lines` requests, each answered
/// with one line, then QUIT and the server's goodbye. The transcript is an
/// output file.
fn echo_client(port: u16, i: usize, lines: usize, dir: &Path) -> Result<(), String> {
    let err = |e: std::io::Error| format!("client {i}: {e}");
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(err)?;
    // One small request at a time, each waiting for its answer: without
    // this, Nagle and delayed ACKs add 40 ms to every round trip.
    stream.set_nodelay(true).map_err(err)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(err)?;
    let mut w = stream.try_clone().map_err(err)?;
    let mut r = BufReader::new(stream);
    let mut transcript = String::new();
    const WORDS: [&str; 8] = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    for j in 0..lines {
        let n = 1 + (i * 7 + j * 3) % 12;
        let req: Vec<String> = (0..n)
            .map(|k| format!("{}{}", WORDS[(i + j + k) % 8], (i * j + k) % 100))
            .collect();
        writeln!(w, "{}", req.join(" ")).map_err(err)?;
        let mut line = String::new();
        if r.read_line(&mut line).map_err(err)? == 0 {
            return Err(format!("client {i}: connection closed after {j} lines"));
        }
        transcript.push_str(&line);
    }
    writeln!(w, "QUIT").map_err(err)?;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(err)? == 0 {
            break;
        }
        transcript.push_str(&line);
    }
    fs::write(dir.join(format!("conn-{i:03}.txt")), transcript).map_err(|e| e.to_string())
}

// --- dlopen, other allocators

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

// --- normalizers (each caller says what varies and why)

/// "2026/12/01 05:49:20 [error] 1234#1234: *5 open() ..." ->
/// "[error] open() ...".
fn norm_nginx_error(l: &str) -> String {
    let Some(i) = l.find(" [") else {
        return format!("{l}\n");
    };
    let rest = &l[i + 1..];
    let (Some(a), Some(b)) = (rest.find("] "), rest.find(": ")) else {
        return format!("{rest}\n");
    };
    if b < a {
        return format!("{rest}\n");
    }
    let mut msg = &rest[b + 2..];
    if let Some(conn) = msg.strip_prefix('*') {
        msg = conn
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
    }
    format!("{} {msg}\n", &rest[..=a])
}

fn keep(s: &str) -> String {
    s.to_string()
}

fn sorted_lines(s: &str) -> String {
    let mut lines: Vec<&str> = s.lines().collect();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Sorted, less the "[ 40%] " progress prefixes of cmake's build lines.
fn sorted_without_progress(s: &str) -> String {
    let stripped: String = s
        .lines()
        .map(|l| match (l.starts_with('['), l.find("%] ")) {
            (true, Some(i)) => format!("{}\n", &l[i + 3..]),
            _ => format!("{l}\n"),
        })
        .collect();
    sorted_lines(&stripped)
}

/// Drops "(1.2s)"-style durations.
fn strip_durations(s: &str) -> String {
    s.lines()
        .map(|l| {
            let mut out = l.to_string();
            if let (Some(a), Some(b)) = (l.rfind(" ("), l.rfind("s)"))
                && b > a
                && l[a + 2..b].chars().all(|c| c.is_ascii_digit() || c == '.')
            {
                out = format!("{}{}", &l[..a], &l[b + 2..]);
            }
            out + "\n"
        })
        .collect()
}

/// redis-benchmark -q: "SET: 123456.79 requests per second, p50=0.151
/// msec" (and, on a terminal-less stdout, "\r"-separated progress lines
/// with rates): only the test names are kept.
fn norm_benchmark(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|seg| seg.contains("requests per second"))
        .map(|seg| match seg.find(':') {
            Some(i) => format!("{}: requests per second\n", seg[..i].trim()),
            None => format!("{seg}\n"),
        })
        .collect()
}

/// INFO commandstats: "cmdstat_set:calls=20000,usec=...,...", in the
/// server's hash-table order: the calls, sorted by command.
fn norm_commandstats(s: &str) -> String {
    let calls: String = s
        .lines()
        .filter_map(|l| {
            let l = l.trim_end_matches('\r');
            let (name, rest) = l.split_once(':')?;
            let calls = rest.split(',').find(|f| f.starts_with("calls="))?;
            Some(format!("{name}:{calls}\n"))
        })
        .collect();
    sorted_lines(&calls)
}

// ---------------------------------------------------------------------------
// Running commands.

/// Where the battery looks for tools, and the PATH its programs run with:
/// Debian's own directories first.
const SEARCH_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin:/usr/local/sbin";

fn which(tool: &str) -> Option<PathBuf> {
    SEARCH_PATH
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// How long one command may take before it is killed.
fn command_timeout(mode: Mode) -> Duration {
    Duration::from_secs(mode.pick(120, 1200))
}

/// How long a server may take to exit once told to (or, for the forking
/// server, once its last client is done).
fn server_exit_timeout(mode: Mode) -> Duration {
    Duration::from_secs(mode.pick(30, 120))
}

/// Options of [`Ctx::exec`].
struct Exec {
    /// The exit status the command must have without the preload.
    expect: i32,
    stdin: Option<PathBuf>,
    /// Stdout goes to this file of the work directory (an output file)
    /// instead of being compared as text.
    stdout_to: Option<String>,
    /// Applied to stdout and stderr before they are compared.
    norm: fn(&str) -> String,
}

impl Default for Exec {
    fn default() -> Self {
        Exec {
            expect: 0,
            stdin: None,
            stdout_to: None,
            norm: keep,
        }
    }
}

impl Exec {
    fn to_file(path: &str) -> Exec {
        Exec {
            stdout_to: Some(path.into()),
            ..Exec::default()
        }
    }
}

/// Whether a server's stdout is compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stdout {
    Compare,
    /// A log with times and pids.
    Ignore,
}

/// What one run of a program produced (compared across runs).
#[derive(Default)]
struct Capture {
    /// Each command's label and exit status, in order.
    statuses: Vec<String>,
    /// Each command's normalized stdout, under its label.
    stdout: String,
    /// Each command's normalized stderr, less `asmalloc:` lines.
    stderr: String,
}

struct Shared {
    root: PathBuf,
    inputs: PathBuf,
    /// Compiled helper programs and plugins (or why they failed to build).
    bins: BTreeMap<&'static str, Result<PathBuf, String>>,
    libs: BTreeMap<&'static str, PathBuf>,
    html_files: usize,
}

/// One run of one program: plain, or under one library.
struct Ctx<'a> {
    /// The work directory: the same path for every run of a program.
    dir: PathBuf,
    /// Each command's stdout and stderr files.
    logs: PathBuf,
    lib: Option<Lib>,
    /// The library's settings (traced runs).
    env: Vec<(String, String)>,
    mode: Mode,
    shared: &'a Shared,
    ports: RefCell<Vec<u16>>,
    cap: RefCell<Capture>,
    seq: Cell<usize>,
}

/// Ports handed out so far (parallel programs never get the same one).
static PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

impl Ctx<'_> {
    fn input(&self, name: &str) -> PathBuf {
        self.shared.inputs.join(name)
    }

    fn bin(&self, name: &str) -> Result<PathBuf, String> {
        match self.shared.bins.get(name) {
            Some(Ok(p)) => Ok(p.clone()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("no helper program {name}")),
        }
    }

    fn write(&self, rel: &str, data: &[u8]) -> Result<(), String> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn copy_fixture_dir(&self, name: &str, to: &str) -> Result<(), String> {
        copy_dir(&fixture(name), &self.dir.join(to))
    }

    /// A free loopback port (bound once to port 0, then released).
    fn free_port(&self) -> Result<u16, String> {
        for _ in 0..100 {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
            let port = l.local_addr().map_err(|e| e.to_string())?.port();
            drop(l);
            let mut used = PORTS.lock().unwrap();
            if used.get_or_insert_with(HashSet::new).insert(port) {
                self.ports.borrow_mut().push(port);
                return Ok(port);
            }
        }
        Err("no free port".into())
    }

    /// A command for `tool` (a name looked up in [`SEARCH_PATH`], or a
    /// path), in the work directory, with a fixed environment (plus the
    /// library's settings in a traced run).
    fn cmd(&self, tool: &str) -> Command {
        let exe = if tool.contains('/') {
            PathBuf::from(tool)
        } else {
            which(tool).unwrap_or_else(|| PathBuf::from(tool))
        };
        let mut c = Command::new(exe);
        c.current_dir(&self.dir)
            .env_clear()
            .env("PATH", SEARCH_PATH)
            .env("HOME", self.dir.join(".home"))
            .env("TMPDIR", self.dir.join(".tmp"))
            .env("LANG", "C")
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .env("PYTHONHASHSEED", "0")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PERL_HASH_SEED", "0")
            .env("PERL_PERTURB_KEYS", "0")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // Its own process group: a timeout or a failed test kills
            // every process it started.
            .process_group(0);
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of
        // ours; the closure runs in the child between fork and exec.
        unsafe {
            // If the test itself is killed (no destructors run), the
            // command goes too: PR_SET_PDEATHSIG fires when the thread that
            // started it exits, and each program's runs stay on one thread.
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        c
    }

    fn next_log(&self, label: &str) -> (PathBuf, PathBuf) {
        let n = self.seq.get();
        self.seq.set(n + 1);
        let slug: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        (
            self.logs.join(format!("{n:02}-{slug}.out")),
            self.logs.join(format!("{n:02}-{slug}.err")),
        )
    }

    /// Replaces this run's ports (which differ between runs) by `<port>`.
    fn unport(&self, s: &str) -> String {
        let mut s = s.to_string();
        for p in self.ports.borrow().iter() {
            s = replace_number(&s, &p.to_string(), "<port>");
        }
        s
    }

    /// Records a finished command: status, stdout (unless it went to a
    /// file) and stderr less the library's lines. Without the preload a
    /// status other than `expect` is an error of the battery itself.
    fn record(
        &self,
        label: &str,
        status: ExitStatus,
        out: Option<&Path>,
        err: &Path,
        expect: i32,
        norm: fn(&str) -> String,
    ) -> Result<(), String> {
        let status_s = describe_status(status);
        let stdout = out
            .map(|p| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned())
            .unwrap_or_default();
        let stderr_raw = String::from_utf8_lossy(&fs::read(err).unwrap_or_default()).into_owned();
        let stderr: String = stderr_raw
            .lines()
            .filter(|l| !l.starts_with("asmalloc:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut cap = self.cap.borrow_mut();
        cap.statuses.push(format!("{label}: {status_s}"));
        let _ = write!(cap.stdout, "== {label}\n{}", self.unport(&norm(&stdout)));
        let _ = write!(cap.stderr, "== {label}\n{}", self.unport(&norm(&stderr)));
        if self.lib.is_none() && status.code() != Some(expect) {
            return Err(format!(
                "{label}: {status_s} without the preload (expected exit {expect}); stderr:\n{}",
                tail(&stderr_raw, 20)
            ));
        }
        Ok(())
    }

    /// Runs a command to completion, expecting exit status 0 without the
    /// preload.
    fn run(&self, label: &str, cmd: Command) -> Result<(), String> {
        self.exec(label, cmd, Exec::default())
    }

    fn exec(&self, label: &str, mut cmd: Command, opts: Exec) -> Result<(), String> {
        let (out, err) = self.next_log(label);
        let out = match &opts.stdout_to {
            Some(rel) => self.dir.join(rel),
            None => out,
        };
        cmd.stdout(file_create(&out)?).stderr(file_create(&err)?);
        match &opts.stdin {
            Some(p) => cmd.stdin(fs::File::open(p).map_err(|e| e.to_string())?),
            None => cmd.stdin(Stdio::null()),
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{label}: cannot start: {e}"))?;
        let status = wait_timeout(&mut child, command_timeout(self.mode)).ok_or_else(|| {
            format!(
                "{label}: still running after {:?}: killed",
                command_timeout(self.mode)
            )
        })?;
        let compared_out = if opts.stdout_to.is_some() {
            None
        } else {
            Some(out.as_path())
        };
        self.record(label, status, compared_out, &err, opts.expect, opts.norm)
    }

    /// Starts a server (stopped, with everything it started, when the
    /// returned guard is dropped unless [`Ctx::finish`] saw it exit).
    fn spawn(&self, label: &str, mut cmd: Command) -> Result<Server, String> {
        let (out, err) = self.next_log(label);
        cmd.stdout(file_create(&out)?)
            .stderr(file_create(&err)?)
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| format!("{label}: cannot start: {e}"))?;
        Ok(Server {
            child,
            label: label.to_string(),
            out,
            err,
            done: false,
        })
    }

    /// Polls until `port` accepts a connection (bounded); fails at once if
    /// the server exits.
    fn wait_port(&self, server: &mut Server, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut pause = Duration::from_millis(1);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                server.done = true;
                return Err(format!(
                    "{} exited before accepting connections: {}; stderr:\n{}",
                    server.label,
                    describe_status(status),
                    tail(&fs::read_to_string(&server.err).unwrap_or_default(), 20)
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} does not accept connections on port {port} after 60 s",
                    server.label
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    fn signal(&self, server: &Server, sig: libc::c_int) -> Result<(), String> {
        let pid = server.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the pid of a child we have not reaped yet (so
        // the pid cannot have been reused).
        if unsafe { libc::kill(pid, sig) } != 0 {
            return Err(format!(
                "kill {} {sig}: {}",
                server.label,
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// Waits for a server to exit (it was told to, or exits by itself) and
    /// records it like a command.
    fn finish(&self, mut server: Server, stdout: Stdout) -> Result<(), String> {
        let status =
            wait_timeout(&mut server.child, server_exit_timeout(self.mode)).ok_or_else(|| {
                format!(
                    "{}: still running after {:?}",
                    server.label,
                    server_exit_timeout(self.mode)
                )
            })?;
        server.done = true;
        // Anything left in its process group (none expected) goes too.
        kill_group(server.child.id());
        let out = (stdout == Stdout::Compare).then_some(server.out.as_path());
        self.record(&server.label, status, out, &server.err, 0, keep)
    }
}

/// Which threads of a server [`Ctx::check_signal_masks`] checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Threads {
    /// Threads named `asmalloc…` (the library's reporter and monitor).
    Library,
    /// Every thread but the main one (the program has no threads of its own).
    AllButMain,
}

/// The signals a server is told things with (and told about its children
/// with). A thread of the library that does not block them can be picked
/// by the kernel to handle one: the handler runs there, and a main thread
/// waiting in sigsuspend() for it never wakes up (seen: nginx's master
/// hanging at shutdown).
const SERVER_SIGNALS: [libc::c_int; 10] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGCHLD,
    libc::SIGWINCH,
    libc::SIGIO,
];

impl Ctx<'_> {
    /// Records whether the server's extra threads block [`SERVER_SIGNALS`]
    /// (as "ok" when they do, the same line as without the preload).
    fn check_signal_masks(&self, server: &Server, which: Threads) -> Result<(), String> {
        let pid = server.child.id();
        let tasks = fs::read_dir(format!("/proc/{pid}/task"))
            .map_err(|e| format!("{}: /proc/{pid}/task: {e}", server.label))?;
        let mut bad = Vec::new();
        for t in tasks.flatten() {
            let tid = t.file_name().to_string_lossy().into_owned();
            if tid == pid.to_string() {
                continue;
            }
            let comm = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let comm = comm.trim_end();
            if which == Threads::Library && !comm.starts_with("asmalloc") {
                continue;
            }
            let status = fs::read_to_string(t.path().join("status")).unwrap_or_default();
            let blocked = status
                .lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
                .unwrap_or(0);
            let open: Vec<String> = SERVER_SIGNALS
                .iter()
                .filter(|&&sig| blocked & (1u64 << (sig - 1)) == 0)
                .map(|sig| sig.to_string())
                .collect();
            if !open.is_empty() {
                bad.push(format!("thread {comm:?} takes signals {}", open.join(",")));
            }
        }
        bad.sort();
        let verdict = if bad.is_empty() {
            "ok".to_string()
        } else {
            bad.join("; ")
        };
        self.cap
            .borrow_mut()
            .statuses
            .push(format!("{} signal masks: {verdict}", server.label));
        Ok(())
    }
}

/// A running server: killed with its whole process group unless it exited.
struct Server {
    child: Child,
    label: String,
    out: PathBuf,
    err: PathBuf,
    done: bool,
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.done {
            kill_group(self.child.id());
            let _ = self.child.wait();
        }
    }
}

fn kill_group(pid: u32) {
    // SAFETY: kill(2) with a negative pid signals the process group that a
    // child we started leads (we gave it its own group); no memory is
    // involved.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            kill_group(child.id());
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!(
            "killed by signal {s}{}",
            if status.core_dumped() {
                " (core dumped)"
            } else {
                ""
            }
        ),
        _ => format!("{status}"),
    }
}

fn file_create(p: &Path) -> Result<fs::File, String> {
    fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Replaces `num` in `s` where it is not part of a longer number.
fn replace_number(s: &str, num: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(num) {
        let before = rest[..i].chars().last();
        let after = rest[i + num.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(|c| c.is_ascii_digit()) || after.is_some_and(|c| c.is_ascii_digit()) {
            out.push_str(num);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + num.len()..];
    }
    out.push_str(rest);
    out
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for e in fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let target = to.join(e.file_name());
        if e.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            fs::copy(e.path(), &target).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Every regular file below `dir`, as paths relative to `base`.
fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(base, &p, out),
            Ok(t) if t.is_file() => {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned())
            }
            _ => {}
        }
    }
}

/// The output files a program's patterns name, with their contents.
fn collect_outputs(dir: &Path, patterns: &[&str]) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut unmatched = Vec::new();
    for pat in patterns {
        let mut found = Vec::new();
        if let Some(d) = pat.strip_suffix('/') {
            walk(dir, &dir.join(d), &mut found);
        } else if let Some((d, ext)) = pat.rsplit_once("*") {
            let mut all = Vec::new();
            walk(dir, &dir.join(d), &mut all);
            found.extend(all.into_iter().filter(|f| {
                f.ends_with(ext)
                    && Path::new(f).parent() == Some(Path::new(d.trim_end_matches('/')))
            }));
        } else if dir.join(pat).is_file() {
            found.push(pat.to_string());
        }
        if found.is_empty() {
            unmatched.push(pat.to_string());
        }
        for f in found {
            let data = fs::read(dir.join(&f)).unwrap_or_default();
            files.insert(f, data);
        }
    }
    (files, unmatched)
}

// ---------------------------------------------------------------------------
// Inputs and helper programs.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
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
fn corpus(bytes: usize) -> String {
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

fn make_inputs(dir: &Path, mode: Mode) -> usize {
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
fn build_helpers(dir: &Path) -> BTreeMap<&'static str, Result<PathBuf, String>> {
    fs::create_dir_all(dir).unwrap();
    let Some(cc) = which("gcc") else {
        return BTreeMap::new();
    };
    let build = |out: &'static str, src: &str, flags: &[&str]| {
        let exe = dir.join(out);
        let r = Command::new(&cc)
            .args(["-O2", "-g", "-Wall", "-pthread"])
            .arg(fixture(src))
            .arg("-o")
            .arg(&exe)
            .args(flags)
            .output();
        let r = match r {
            Ok(o) if o.status.success() => Ok(exe),
            Ok(o) => Err(format!(
                "compiling {src} {flags:?} failed:\n{}",
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!("running gcc: {e}")),
        };
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

// ---------------------------------------------------------------------------
// The library's reports and logs.

/// A minimal JSON reader (the preload package has no JSON dependency).
mod json {
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Int(i128),
        Float(f64),
        Str(String),
        Arr(Vec<Value>),
        Obj(Vec<(String, Value)>),
    }

    impl Value {
        pub fn get(&self, key: &str) -> Option<&Value> {
            match self {
                Value::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        pub fn int(&self) -> Option<i128> {
            match self {
                Value::Int(i) => Some(*i),
                _ => None,
            }
        }

        pub fn str(&self) -> Option<&str> {
            match self {
                Value::Str(s) => Some(s),
                _ => None,
            }
        }

        pub fn arr(&self) -> &[Value] {
            match self {
                Value::Arr(a) => a,
                _ => &[],
            }
        }
    }

    pub fn parse(s: &str) -> Result<Value, String> {
        let mut p = Parser {
            b: s.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(format!("trailing characters at {}", p.i));
        }
        Ok(v)
    }

    struct Parser<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> Result<(), String> {
            self.ws();
            if self.b.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!("expected '{}' at {}", c as char, self.i))
            }
        }

        fn value(&mut self) -> Result<Value, String> {
            self.ws();
            match self.b.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut m = Vec::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Value::Obj(m));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.eat(b':')?;
                        m.push((k, self.value()?));
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Value::Obj(m));
                            }
                            _ => return Err(format!("bad object at {}", self.i)),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut a = Vec::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Value::Arr(a));
                    }
                    loop {
                        a.push(self.value()?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Value::Arr(a));
                            }
                            _ => return Err(format!("bad array at {}", self.i)),
                        }
                    }
                }
                Some(b'"') => Ok(Value::Str(self.string()?)),
                Some(b't') => self.word("true", Value::Bool(true)),
                Some(b'f') => self.word("false", Value::Bool(false)),
                Some(b'n') => self.word("null", Value::Null),
                Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
                _ => Err(format!("unexpected input at {}", self.i)),
            }
        }

        fn word(&mut self, w: &str, v: Value) -> Result<Value, String> {
            if self.b[self.i..].starts_with(w.as_bytes()) {
                self.i += w.len();
                Ok(v)
            } else {
                Err(format!("bad literal at {}", self.i))
            }
        }

        fn number(&mut self) -> Result<Value, String> {
            let start = self.i;
            while self.i < self.b.len()
                && matches!(
                    self.b[self.i],
                    b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                )
            {
                self.i += 1;
            }
            let t = std::str::from_utf8(&self.b[start..self.i]).unwrap();
            if let Ok(i) = t.parse::<i128>() {
                return Ok(Value::Int(i));
            }
            t.parse::<f64>()
                .map(Value::Float)
                .map_err(|_| format!("bad number {t:?}"))
        }

        fn string(&mut self) -> Result<String, String> {
            if self.b.get(self.i) != Some(&b'"') {
                return Err(format!("expected a string at {}", self.i));
            }
            self.i += 1;
            let mut out = Vec::new();
            loop {
                match self.b.get(self.i) {
                    None => return Err("unterminated string".into()),
                    Some(b'"') => {
                        self.i += 1;
                        return String::from_utf8(out).map_err(|e| e.to_string());
                    }
                    Some(b'\\') => {
                        let c = *self.b.get(self.i + 1).ok_or("bad escape")?;
                        self.i += 2;
                        match c {
                            b'n' => out.push(b'\n'),
                            b't' => out.push(b'\t'),
                            b'r' => out.push(b'\r'),
                            b'b' => out.push(8),
                            b'f' => out.push(12),
                            b'u' => {
                                let hex = std::str::from_utf8(
                                    self.b.get(self.i..self.i + 4).ok_or("bad \\u")?,
                                )
                                .map_err(|e| e.to_string())?;
                                let cp = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                self.i += 4;
                                let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                                let mut buf = [0; 4];
                                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            }
                            other => out.push(other),
                        }
                    }
                    Some(&c) => {
                        out.push(c);
                        self.i += 1;
                    }
                }
            }
        }
    }
}

/// What the library wrote during one traced run.
#[derive(Default)]
struct Analysis {
    /// Report files (one per process that ran under the library and wrote
    /// at least one report).
    procs: usize,
    report_lines: usize,
    log_lines: usize,
    /// Most sites in one process's last report.
    sites: usize,
    /// Net bytes over every process's last report.
    net: i128,
    /// Foreign frees over all processes.
    foreign: i128,
    /// Sites with negative net bytes or blocks: "where: site …".
    negatives: Vec<String>,
    /// Lines that are not what the schema says.
    malformed: Vec<String>,
    /// The library's own lines on stderr (`asmalloc: …`).
    messages: Vec<String>,
    stepped_aside: bool,
}

/// A line the library writes when it steps aside (runs the program
/// untracked), e.g. because the program brings its own allocator.
fn is_step_aside(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "step",
        "aside",
        "untracked",
        "not track",
        "disabl",
        "bypass",
    ]
    .iter()
    .any(|k| m.contains(k))
}

fn analyze(asm: &Path, logs: &Path) -> Analysis {
    let mut a = Analysis::default();
    let mut names: Vec<PathBuf> = fs::read_dir(asm)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    for path in names {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let is_report = file.starts_with("report.");
        let is_log = file.starts_with("log.");
        if !is_report && !is_log {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        let mut last: Option<json::Value> = None;
        let mut foreign_max = 0;
        for (n, line) in text.lines().enumerate() {
            let at = format!("{file}:{}", n + 1);
            if line.starts_with("asmalloc:") {
                // A verdict or a message written to ASMALLOC_OUTPUT.
                a.messages.push(format!("{at}: {line}"));
                continue;
            }
            let v = match json::parse(line) {
                Ok(v) => v,
                Err(e) => {
                    a.malformed
                        .push(format!("{at}: {e}: {}", truncate(line, 120)));
                    continue;
                }
            };
            let Some(sites) = v.get("sites") else {
                a.malformed.push(format!("{at}: no \"sites\""));
                continue;
            };
            for s in sites.arr() {
                let bytes = s.get("net_bytes").and_then(json::Value::int);
                let count = s.get("net_count").and_then(json::Value::int);
                let (Some(bytes), Some(count)) = (bytes, count) else {
                    a.malformed
                        .push(format!("{at}: a site without net_bytes/net_count"));
                    continue;
                };
                if bytes < 0 || count < 0 {
                    let id = s.get("id").and_then(json::Value::int).unwrap_or(-1);
                    let fun = s.get("function").and_then(json::Value::str).unwrap_or("");
                    a.negatives.push(format!(
                        "{at}: site {id} {fun} net_bytes {bytes} net_count {count}"
                    ));
                }
            }
            if is_report {
                a.report_lines += 1;
                let foreign = v
                    .get("ops")
                    .and_then(|o| o.get("foreign_free"))
                    .and_then(|f| f.get("count"))
                    .and_then(json::Value::int)
                    .unwrap_or(0);
                foreign_max = foreign_max.max(foreign);
            } else {
                a.log_lines += 1;
            }
            last = Some(v);
        }
        if is_report {
            a.procs += 1;
            a.foreign += foreign_max;
            if let Some(v) = last {
                a.sites = a.sites.max(v.get("sites").map_or(0, |s| s.arr().len()));
                a.net += v.get("net_bytes").and_then(json::Value::int).unwrap_or(0);
            }
        }
    }
    let mut streams = Vec::new();
    walk(logs, logs, &mut streams);
    streams.sort();
    for f in streams {
        let text =
            String::from_utf8_lossy(&fs::read(logs.join(&f)).unwrap_or_default()).into_owned();
        for l in text.lines().filter(|l| l.starts_with("asmalloc:")) {
            a.stepped_aside |= is_step_aside(l);
            a.messages.push(format!("{f}: {l}"));
        }
    }
    a
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

// ---------------------------------------------------------------------------
// Running a program three times and comparing.

struct RunResult {
    result: Result<(), String>,
    cap: Capture,
    files: BTreeMap<String, Vec<u8>>,
    unmatched: Vec<String>,
    elapsed: Duration,
}

fn traced_env(lib: &Path, asm: &Path) -> Vec<(String, String)> {
    let a = asm.display();
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        // The exit report, as JSON, one file per process …
        ("ASMALLOC_REPORT_AT_EXIT".into(), "1".into()),
        ("ASMALLOC_REPORT_FORMAT".into(), "json".into()),
        ("ASMALLOC_OUTPUT".into(), format!("{a}/report.%p.jsonl")),
        // … and every other optional part: periodic reports (a reporter
        // thread in every process), every feature, and the leak monitor
        // sampling every 100 ms into its log.
        ("ASMALLOC_REPORT_INTERVAL".into(), "250ms".into()),
        ("ASMALLOC_FEATURES".into(), "all".into()),
        ("ASMALLOC_LOG".into(), format!("{a}/log.%p.jsonl")),
        ("ASMALLOC_SAMPLE_INTERVAL".into(), "100ms".into()),
    ]
}

fn run_once(
    p: &Program,
    shared: &Shared,
    mode: Mode,
    lib: Option<Lib>,
) -> (RunResult, PathBuf, PathBuf) {
    let slug: String = p
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let variant = lib.map_or("plain", Lib::name);
    let dir = shared.root.join("work").join(&slug);
    let logs = shared.root.join("logs").join(&slug).join(variant);
    let asm = shared.root.join("asm").join(&slug).join(variant);
    for d in [&dir, &logs, &asm] {
        let _ = fs::remove_dir_all(d);
        fs::create_dir_all(d).unwrap();
    }
    fs::create_dir_all(dir.join(".home")).unwrap();
    fs::create_dir_all(dir.join(".tmp")).unwrap();
    let env = lib.map_or_else(Vec::new, |l| traced_env(&shared.libs[l.file()], &asm));
    let ctx = Ctx {
        dir: dir.clone(),
        logs: logs.clone(),
        lib,
        env,
        mode,
        shared,
        ports: RefCell::new(Vec::new()),
        cap: RefCell::new(Capture::default()),
        seq: Cell::new(0),
    };
    let t0 = Instant::now();
    let result = (p.run)(&ctx);
    let elapsed = t0.elapsed();
    let (files, unmatched) = collect_outputs(&dir, p.outputs);
    let cap = ctx.cap.into_inner();
    // What is compared, as compared (kept with the scratch files when the
    // test fails).
    let _ = fs::write(
        logs.join("compared.txt"),
        format!(
            "statuses:\n{}\n\nstdout:\n{}\nstderr:\n{}",
            cap.statuses.join("\n"),
            cap.stdout,
            cap.stderr
        ),
    );
    (
        RunResult {
            result,
            cap,
            files,
            unmatched,
            elapsed,
        },
        asm,
        logs,
    )
}

/// How a traced run differs from the plain one (empty: identical).
fn differences(plain: &RunResult, traced: &RunResult) -> Vec<String> {
    let mut d = Vec::new();
    if let Err(e) = &traced.result {
        d.push(format!("error: {}", truncate(e, 600)));
    }
    if plain.cap.statuses != traced.cap.statuses {
        let n = plain.cap.statuses.len().max(traced.cap.statuses.len());
        for i in 0..n {
            let a = plain.cap.statuses.get(i).map_or("(none)", String::as_str);
            let b = traced.cap.statuses.get(i).map_or("(none)", String::as_str);
            if a != b {
                d.push(format!("status: {a}  vs  {b}"));
            }
        }
    }
    for (what, a, b) in [
        ("stdout", &plain.cap.stdout, &traced.cap.stdout),
        ("stderr", &plain.cap.stderr, &traced.cap.stderr),
    ] {
        if a != b {
            d.push(format!("{what}: {}", first_difference(a, b)));
        }
    }
    let names: BTreeSet<&String> = plain.files.keys().chain(traced.files.keys()).collect();
    for f in names {
        match (plain.files.get(f), traced.files.get(f)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                let at = a
                    .iter()
                    .zip(b)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.len().min(b.len()));
                d.push(format!(
                    "file {f}: {} vs {} bytes, first difference at byte {at}",
                    a.len(),
                    b.len()
                ));
            }
            (Some(_), None) => d.push(format!("file {f}: missing under the preload")),
            (None, _) => d.push(format!("file {f}: only under the preload")),
        }
    }
    d
}

fn first_difference(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    // The command a line belongs to: the last "== label" header before it.
    let label = |lines: &[&str], i: usize| {
        lines[..i.min(lines.len())]
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("== "))
            .unwrap_or("")
            .to_string()
    };
    for i in 0..la.len().max(lb.len()) {
        let x = la.get(i).copied();
        let y = lb.get(i).copied();
        if x != y {
            return format!(
                "[{}] line {}: {:?} vs {:?}",
                label(&la, i),
                i + 1,
                x.map(|s| truncate(s, 100)),
                y.map(|s| truncate(s, 100))
            );
        }
    }
    "differs".into()
}

/// A program's outcome under each library.
type Outcomes = Vec<(Lib, Outcome)>;

#[derive(Clone)]
enum Outcome {
    /// Ran under the library: identical or not, and what the library wrote.
    Ran {
        differences: Vec<String>,
        analysis: Box<AnalysisSummary>,
        plain: Duration,
        traced: Duration,
    },
    /// The plain run failed: the battery's own problem.
    PlainFailed(String),
    Missing(Vec<String>),
    FullOnly,
}

#[derive(Clone)]
struct AnalysisSummary {
    procs: usize,
    report_lines: usize,
    log_lines: usize,
    sites: usize,
    net: i128,
    foreign: i128,
    stepped_aside: bool,
    /// Failed checks on the reports and logs.
    violations: Vec<String>,
    messages: Vec<String>,
}

fn summarize(p: &Program, a: Analysis) -> AnalysisSummary {
    let mut violations = Vec::new();
    if !a.negatives.is_empty() {
        violations.push(format!(
            "{} negative site counts, first: {}",
            a.negatives.len(),
            a.negatives[0]
        ));
    }
    if !a.malformed.is_empty() {
        violations.push(format!(
            "{} malformed lines, first: {}",
            a.malformed.len(),
            a.malformed[0]
        ));
    }
    if a.foreign > 0 && !p.foreign_frees_ok {
        violations.push(format!("{} foreign frees", a.foreign));
    }
    if a.procs == 0 && !a.stepped_aside {
        violations.push("no exit report from any process (and no step-aside message)".into());
    }
    AnalysisSummary {
        procs: a.procs,
        report_lines: a.report_lines,
        log_lines: a.log_lines,
        sites: a.sites,
        net: a.net,
        foreign: a.foreign,
        stepped_aside: a.stepped_aside,
        violations,
        messages: a.messages,
    }
}

fn missing_needs(p: &Program) -> Vec<String> {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    p.needs
        .iter()
        .filter_map(|n| {
            let (what, pkg, present) = match *n {
                Need::Tool(t, pkg) => (t, pkg, which(t).is_some()),
                Need::File(f, pkg) => (f, pkg, Path::new(f).exists()),
            };
            (!present).then(|| {
                if ci {
                    format!("{what} missing in CI: .ci/run must install the Debian package {pkg}")
                } else {
                    format!(
                        "{what} not found: install the Debian package {pkg} (apt-get install {pkg})"
                    )
                }
            })
        })
        .collect()
}

fn run_program(p: &Program, shared: &Shared, mode: Mode) -> Outcomes {
    let missing = missing_needs(p);
    if !missing.is_empty() {
        return LIBS
            .iter()
            .map(|&l| (l, Outcome::Missing(missing.clone())))
            .collect();
    }
    if p.full_only && mode == Mode::Quick {
        return LIBS.iter().map(|&l| (l, Outcome::FullOnly)).collect();
    }
    let (plain, _, _) = run_once(p, shared, mode, None);
    let plain_problem = match (&plain.result, plain.unmatched.is_empty()) {
        (Err(e), _) => Some(e.clone()),
        (Ok(()), false) => Some(format!(
            "output files missing without the preload: {:?}",
            plain.unmatched
        )),
        _ => None,
    };
    if let Some(e) = plain_problem {
        return LIBS
            .iter()
            .map(|&l| (l, Outcome::PlainFailed(e.clone())))
            .collect();
    }
    LIBS.iter()
        .map(|&l| {
            let (traced, asm, logs) = run_once(p, shared, mode, Some(l));
            let analysis = summarize(p, analyze(&asm, &logs));
            (
                l,
                Outcome::Ran {
                    differences: differences(&plain, &traced),
                    analysis: Box::new(analysis),
                    plain: plain.elapsed,
                    traced: traced.elapsed,
                },
            )
        })
        .collect()
}

fn human(n: i128) -> String {
    let a = n.unsigned_abs() as f64;
    let sign = if n < 0 { "-" } else { "" };
    if a >= (1u64 << 20) as f64 {
        format!("{sign}{:.1}M", a / (1u64 << 20) as f64)
    } else if a >= 1024.0 {
        format!("{sign}{:.1}K", a / 1024.0)
    } else {
        format!("{n}")
    }
}

#[test]
fn real_program_battery() {
    let t0 = Instant::now();
    let mode = Mode::from_env();
    let only: Option<Vec<String>> = std::env::var("ASMALLOC_BATTERY_ONLY")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let mut progs = programs();
    if let Some(only) = &only {
        progs.retain(|p| only.iter().any(|o| o == p.name));
        assert!(!progs.is_empty(), "ASMALLOC_BATTERY_ONLY names no program");
    }
    let root = std::env::temp_dir().join(format!("asmalloc-battery-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    // The libraries, the inputs and the helper programs, side by side.
    let (libs, (html_files, bins)) = std::thread::scope(|s| {
        let libs = s.spawn(|| {
            LIBS.iter()
                .map(|&l| (l.file(), lib_path(l)))
                .collect::<BTreeMap<_, _>>()
        });
        let rest = s.spawn(|| {
            let n = make_inputs(&root.join("inputs"), mode);
            (n, build_helpers(&root.join("bin")))
        });
        (libs.join().unwrap(), rest.join().unwrap())
    });
    let shared = Shared {
        inputs: root.join("inputs"),
        root: root.clone(),
        bins,
        libs,
        html_files,
    };
    eprintln!(
        "battery: {} mode, {} programs, setup {:.1}s, scratch {}",
        mode.name(),
        progs.len(),
        t0.elapsed().as_secs_f64(),
        root.display()
    );

    let jobs: usize = std::env::var("ASMALLOC_BATTERY_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcomes>>> = Mutex::new(vec![None; progs.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = progs.get(i) else { break };
                    let t = Instant::now();
                    let r = run_program(p, &shared, mode);
                    eprintln!(
                        "battery: {} done in {:.1}s",
                        p.name,
                        t.elapsed().as_secs_f64()
                    );
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    let results: Vec<Outcomes> = results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();

    // The summary table, then the details of everything that failed.
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<16} {:<8} {:<13} {:>13} {:>5} {:>5} {:>9} {:>7} {:>9}  notes",
        "program", "library", "outputs", "time", "procs", "sites", "net", "foreign", "rep/log"
    );
    let mut details = String::new();
    // The library's own stderr lines, by text (pids and paths vary less
    // than the count of programs that print them).
    let mut said: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut ran, mut identical, mut failures) = (0usize, 0usize, 0usize);
    let mut programs_ran = 0usize;
    for (p, rs) in progs.iter().zip(&results) {
        if rs.iter().any(|(_, o)| {
            matches!(
                o,
                Outcome::Ran { .. } | Outcome::PlainFailed(_) | Outcome::Missing(_)
            )
        }) {
            programs_ran += 1;
        }
        for (lib, o) in rs {
            let lib = lib.name();
            match o {
                Outcome::Ran {
                    differences,
                    analysis: a,
                    plain,
                    traced,
                } => {
                    ran += 1;
                    for m in &a.messages {
                        let text = m.split_once(": ").map_or(m.as_str(), |(_, t)| t);
                        said.entry(text.to_string())
                            .or_default()
                            .insert(format!("{} ({lib})", p.name));
                    }
                    let same = differences.is_empty();
                    identical += usize::from(same);
                    let mut notes = Vec::new();
                    if a.stepped_aside {
                        notes.push("stepped aside".to_string());
                    }
                    notes.extend(a.violations.iter().map(|v| truncate(v, 60)));
                    if !same || !a.violations.is_empty() {
                        failures += 1;
                        let _ = writeln!(details, "--- {} under {lib}:", p.name);
                        for d in differences.iter().chain(&a.violations) {
                            let _ = writeln!(details, "    {d}");
                        }
                        for m in a.messages.iter().take(5) {
                            let _ = writeln!(details, "    library said: {}", truncate(m, 200));
                        }
                    }
                    let _ = writeln!(
                        table,
                        "{:<16} {:<8} {:<13} {:>13} {:>5} {:>5} {:>9} {:>7} {:>9}  {}",
                        p.name,
                        lib,
                        if same { "identical" } else { "DIFFERENT" },
                        format!("{:.1}s/{:.1}s", plain.as_secs_f64(), traced.as_secs_f64()),
                        a.procs,
                        a.sites,
                        human(a.net),
                        a.foreign,
                        format!("{}/{}", a.report_lines, a.log_lines),
                        notes.join("; ")
                    );
                }
                Outcome::PlainFailed(e) => {
                    failures += 1;
                    let _ = writeln!(table, "{:<16} {:<8} PLAIN RUN FAILED", p.name, lib);
                    let _ = writeln!(details, "--- {} (without the preload): {e}", p.name);
                }
                Outcome::Missing(m) => {
                    failures += 1;
                    let _ = writeln!(table, "{:<16} {:<8} MISSING  {}", p.name, lib, m.join("; "));
                    let _ = writeln!(details, "--- {}: {}", p.name, m.join("; "));
                }
                Outcome::FullOnly => {
                    let _ = writeln!(table, "{:<16} {:<8} (full mode only)", p.name, lib);
                }
            }
        }
    }
    let count = format!(
        "battery: {programs_ran} programs x {} libraries: {identical} identical",
        LIBS.len()
    );
    eprintln!("\n{table}");
    if !said.is_empty() {
        eprintln!("the library said (on stderr or in its output file):");
        for (text, who) in &said {
            let who: Vec<&str> = who.iter().map(String::as_str).collect();
            eprintln!("  {}\n    from: {}", truncate(text, 240), who.join(", "));
        }
        eprintln!();
    }
    if !details.is_empty() {
        eprintln!("failures:\n{details}");
    }
    eprintln!(
        "{count}; {} runs, {failures} failing ({} mode, {:.1}s)",
        ran,
        mode.name(),
        t0.elapsed().as_secs_f64()
    );
    if failures == 0 {
        let _ = fs::remove_dir_all(&root);
    } else {
        eprintln!("scratch files kept in {}", root.display());
    }
    assert_eq!(failures, 0, "{count}; {failures} failing (see above)");
}

/// The checks on the library's output catch what they are for.
#[test]
fn analysis_flags_negative_sites_foreign_frees_and_missing_reports() {
    let dir = std::env::temp_dir().join(format!("asmalloc-battery-self-{}", std::process::id()));
    let (asm, logs) = (dir.join("asm"), dir.join("logs"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&asm).unwrap();
    fs::create_dir_all(&logs).unwrap();
    let site = |id: i32, b: i64, n: i64| {
        format!("{{\"id\":{id},\"function\":\"f\",\"net_bytes\":{b},\"net_count\":{n}}}")
    };
    fs::write(
        asm.join("report.1.jsonl"),
        format!(
            "{{\"net_bytes\":10,\"ops\":{{\"free\":{{\"count\":3,\"bytes\":9}}}},\"sites\":[{}]}}\n\
             {{\"net_bytes\":20,\"ops\":{{\"foreign_free\":{{\"count\":2,\"bytes\":48}}}},\"sites\":[{},{}]}}\n",
            site(0, 10, 1),
            site(0, 24, 1),
            site(3, -4, 0)
        ),
    )
    .unwrap();
    fs::write(
        asm.join("log.1.jsonl"),
        format!("{{\"v\":1,\"sites\":[{}]}}\nnot json\n", site(5, 8, -1)),
    )
    .unwrap();
    fs::write(
        logs.join("00-x.err"),
        "asmalloc: this program's malloc is tcmalloc's: libasmalloc.so steps aside and the program runs untracked\nother\n",
    )
    .unwrap();
    let a = analyze(&asm, &logs);
    assert_eq!((a.procs, a.report_lines, a.log_lines), (1, 2, 1));
    assert_eq!((a.sites, a.net, a.foreign), (2, 20, 2));
    assert_eq!(a.negatives.len(), 2, "{:?}", a.negatives);
    for want in ["report.1.jsonl:2: site 3 f", "log.1.jsonl:1: site 5 f"] {
        assert!(
            a.negatives.iter().any(|n| n.contains(want)),
            "{:?}",
            a.negatives
        );
    }
    assert_eq!(a.malformed.len(), 1, "{:?}", a.malformed);
    assert!(a.stepped_aside);
    let p = programs().into_iter().next().unwrap();
    let v = summarize(&p, a).violations;
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v[2].contains("2 foreign frees"), "{v:?}");
    // Nothing written and no message: no exit report is a failure.
    fs::remove_dir_all(&dir).unwrap();
    fs::create_dir_all(&asm).unwrap();
    fs::create_dir_all(&logs).unwrap();
    let v = summarize(&p, analyze(&asm, &logs)).violations;
    assert!(v.len() == 1 && v[0].contains("no exit report"), "{v:?}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn normalizers() {
    assert_eq!(
        norm_benchmark(
            "SET: rps=1000.0 (overall: 9.0) avg_msec=0.1\rSET: 217391.30 requests per second, p50=0.111 msec\nGET: 1.0 requests per second\n"
        ),
        "SET: requests per second\nGET: requests per second\n"
    );
    assert_eq!(
        norm_commandstats(
            "# Commandstats\r\ncmdstat_set:calls=3,usec=5,usec_per_call=1.6\r\ncmdstat_get:calls=2,usec=1\r\n"
        ),
        "cmdstat_get:calls=2\ncmdstat_set:calls=3\n"
    );
    assert_eq!(
        norm_nginx_error("2026/12/01 05:49:20 [error] 1234#1234: *5 open() failed, host: \"x\""),
        "[error] open() failed, host: \"x\"\n"
    );
    assert_eq!(
        strip_durations("-- Configuring done (0.3s)\n-- Done\n"),
        "-- Configuring done\n-- Done\n"
    );
    assert_eq!(
        sorted_without_progress(
            "[ 50%] Linking C executable wordfreq\n[ 20%] Building C object a.o\n"
        ),
        "Building C object a.o\nLinking C executable wordfreq\n"
    );
    assert_eq!(
        replace_number("port 8080 18080 8080x :8080", "8080", "<p>"),
        "port <p> 18080 <p>x :<p>"
    );
}

/// A missing tool or header fails its program, naming the Debian package.
#[test]
fn missing_tools_name_their_debian_package() {
    let p = Program {
        name: "nothing",
        needs: &[
            Need::Tool("asmalloc-no-such-tool", "no-such-package"),
            Need::File("/nonexistent/asmalloc.h", "libno-such-dev"),
            Need::Tool("sh", "dash"),
        ],
        foreign_frees_ok: false,
        full_only: false,
        outputs: &[],
        run: |_| Ok(()),
    };
    let m = missing_needs(&p);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m[0].contains("asmalloc-no-such-tool") && m[0].contains("no-such-package"));
    assert!(m[1].contains("libno-such-dev"), "{m:?}");
    let out = run_program(&p, &dummy_shared(), Mode::Quick);
    assert!(
        out.iter()
            .all(|(_, o)| matches!(o, Outcome::Missing(m) if m.len() == 2)),
        "a missing tool fails under both libraries"
    );
}

fn dummy_shared() -> Shared {
    Shared {
        root: std::env::temp_dir(),
        inputs: std::env::temp_dir(),
        bins: BTreeMap::new(),
        libs: BTreeMap::new(),
        html_files: 0,
    }
}
