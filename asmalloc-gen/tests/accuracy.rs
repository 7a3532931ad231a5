//! The generator's accuracy on large C trees nobody here wrote, against a
//! real C front end: bzip2 1.0.8 (from the `bzip2-sys` crate), libgit2 1.9
//! (from `libgit2-sys`, which allocates through its own wrappers,
//! `git__malloc` & co., named here as wrappers) and Lua 5.4 (from
//! `lua-src`: `luaM_*` wrappers reached through macros).
//!
//! The reference is clang's (libclang's) semantic analysis of every C file
//! the crate's build compiles (`tests/reference/clang_calls.c`, built
//! here): each call expression whose callee is a declared function of the
//! allocation family or a wrapper, at the callee's name, or, for a call a
//! macro expands to, at the macro's use — the expansion location, which is
//! what `__LINE__` says there at run time, and what the generator records
//! for a use of a macro whose body allocates. Compared as `file:line` (what
//! the runtime resolves a site by):
//!
//! * recall: reference lines that the table has;
//! * precision: table lines the reference confirms, out of the lines clang
//!   could judge: in a file it compiled, outside `#if` branches it skipped,
//!   and outside `#define` bodies (those calls are judged at their uses).
//!
//! Both must be at least 0.995 on each tree; the counts are printed. The
//! crate sources come from the cargo registry, fetched into it with
//! `cargo fetch` on a scratch manifest when missing; the test fails when
//! they cannot be had, or when clang's libclang (Debian's `libclang-dev`)
//! is missing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use asmalloc_gen::{Builder, Lang};
// The crates' versions are pinned where they are fetched: their sources
// are what the counts were measured on.
use asmalloc_test_support::registry_crate;

const BUILTIN: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "free",
    "strdup",
    "strndup",
    "valloc",
    "pvalloc",
    "memalign",
    "posix_memalign",
    "aligned_alloc",
];

/// Builds the libclang reference tool.
fn reference_tool(dir: &Path) -> PathBuf {
    let llvm = [
        "/usr/lib/llvm-14",
        "/usr/lib/llvm-15",
        "/usr/lib/llvm-16",
        "/usr/lib/llvm-17",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.join("include/clang-c/Index.h").is_file())
    .expect("libclang headers not found: install Debian's libclang-dev (.ci/run does)");
    let exe = dir.join("clang_calls");
    let out = Command::new("gcc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(llvm.join("include"))
        .arg(common::manifest_dir().join("tests/reference/clang_calls.c"))
        .arg(format!("-L{}", llvm.join("lib").display()))
        .arg("-lclang")
        .arg(format!("-Wl,-rpath,{}", llvm.join("lib").display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("gcc not found: install Debian's gcc package (.ci/run does)");
    assert!(
        out.status.success(),
        "building the libclang reference failed (install Debian's libclang-dev):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// What libclang saw.
#[derive(Default)]
struct Reference {
    calls: BTreeSet<(String, u32)>,
    files: BTreeSet<String>,
    skipped: BTreeMap<String, Vec<(u32, u32)>>,
}

/// Runs the reference over `files` in two processes; paths made relative
/// to `root`.
fn run_reference(
    tool: &Path,
    root: &Path,
    names: &[&str],
    args: &[String],
    files: &[PathBuf],
) -> Reference {
    let root = root.canonicalize().unwrap();
    let half = files.len().div_ceil(2);
    let children: Vec<_> = files
        .chunks(half.max(1))
        .map(|chunk| {
            Command::new(tool)
                .arg(&root)
                .arg(names.join(","))
                .args(args)
                .arg("--")
                .args(chunk)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut r = Reference::default();
    let rel = |p: &str| {
        Path::new(p)
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "the reference failed on a file");
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let f: Vec<&str> = line.split(' ').collect();
            match f[0] {
                "C" => {
                    r.calls.insert((rel(f[1]), f[2].parse().unwrap()));
                }
                "I" => {
                    r.files.insert(rel(f[1]));
                }
                "S" => r
                    .skipped
                    .entry(rel(f[1]))
                    .or_default()
                    .push((f[2].parse().unwrap(), f[3].parse().unwrap())),
                _ => {}
            }
        }
    }
    r
}

/// The lines of `#define` bodies (first to last physical line) of a file.
fn define_lines(path: &Path) -> BTreeSet<u32> {
    let text = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&text);
    let mut out = BTreeSet::new();
    let mut in_define = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let starts = t.starts_with('#') && t[1..].trim_start().starts_with("define");
        if starts || in_define {
            out.insert(i as u32 + 1);
            in_define = line.ends_with('\\');
        }
    }
    out
}

struct Tree {
    name: &'static str,
    root: PathBuf,
    files: Vec<PathBuf>,
    args: Vec<String>,
    wrappers: Vec<(&'static str, &'static str)>,
}

fn c_files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    v.sort();
    v
}

fn bzip2(dir: &Path) -> Tree {
    let root = dir.join("bzip2-1.0.8");
    Tree {
        name: "bzip2 1.0.8",
        files: c_files_in(&root),
        args: vec![format!("-I{}", root.display())],
        root,
        // bzip2's own wrapper, in bzip2.c.
        wrappers: vec![("myMalloc", "MALLOC")],
    }
}

fn libgit2(dir: &Path, scratch: &Path) -> Tree {
    let root = dir.join("libgit2");
    // What libgit2-sys's build.rs compiles on Linux, with its features.
    let mut files = Vec::new();
    for sub in [
        "src/libgit2",
        "src/util",
        "src/libgit2/transports",
        "src/libgit2/streams",
        "src/util/unix",
    ] {
        files.extend(c_files_in(&root.join(sub)));
    }
    for f in [
        "src/util/hash/collisiondetect.c",
        "src/util/hash/sha1dc/sha1.c",
        "src/util/hash/sha1dc/ubc_check.c",
        "src/util/hash/builtin.c",
        "src/util/hash/rfc6234/sha224-256.c",
    ] {
        files.push(root.join(f));
    }
    let include = scratch.join("git2-include");
    std::fs::create_dir_all(&include).unwrap();
    std::fs::write(
        include.join("git2_features.h"),
        "#ifndef INCLUDE_features_h\n#define INCLUDE_features_h\n\
         #define GIT_THREADS 1\n#define GIT_TRACE 1\n#define GIT_HTTPPARSER_BUILTIN 1\n\
         #define GIT_USE_NSEC 1\n#define GIT_IO_POLL 1\n#define GIT_IO_SELECT 1\n\
         #define GIT_USE_STAT_MTIM 1\n#define GIT_ARCH_64 1\n#define GIT_SHA1_COLLISIONDETECT 1\n\
         #define GIT_SHA256_BUILTIN 1\n#define GIT_REGEX_BUILTIN 1\n#endif\n",
    )
    .unwrap();
    let inc = |p: &str| format!("-I{}", root.join(p).display());
    let args = vec![
        format!("-I{}", include.display()),
        inc("include"),
        inc("src/libgit2"),
        inc("src/util"),
        inc("deps/llhttp"),
        inc("deps/xdiff"),
        inc("deps/pcre2"),
        "-DSHA1DC_NO_STANDARD_INCLUDES=1".into(),
        "-DSHA1DC_CUSTOM_INCLUDE_SHA1_C=\"common.h\"".into(),
        "-DSHA1DC_CUSTOM_INCLUDE_UBC_CHECK_C=\"common.h\"".into(),
        "-DPCRE2_STATIC".into(),
        "-DPCRE2_CODE_UNIT_WIDTH=8".into(),
    ];
    Tree {
        name: "libgit2 1.9.7",
        root: root.join("src"),
        files,
        args,
        wrappers: vec![
            ("git__malloc", "MALLOC"),
            ("git__calloc", "CALLOC"),
            ("git__realloc", "REALLOC"),
            ("git__reallocarray", "REALLOCARRAY"),
            ("git__mallocarray", "MALLOC"),
            ("git__strdup", "STRDUP"),
            ("git__strndup", "STRNDUP"),
            ("git__substrdup", "STRNDUP"),
            ("git__free", "FREE"),
        ],
    }
}

fn lua(dir: &Path) -> Tree {
    let root = dir.join("lua-5.4.9");
    Tree {
        name: "Lua 5.4.9",
        files: c_files_in(&root),
        args: vec![format!("-I{}", root.display()), "-DLUA_USE_LINUX".into()],
        root,
        // lmem.c's functions, which the luaM_ macros expand to.
        wrappers: vec![
            ("luaM_malloc_", "MALLOC"),
            ("luaM_realloc_", "REALLOC"),
            ("luaM_saferealloc_", "REALLOC"),
            ("luaM_free_", "FREE"),
            ("luaM_growaux_", "REALLOC"),
            ("luaM_shrinkvector_", "REALLOC"),
        ],
    }
}

/// Measures one tree; returns (recall, precision) after printing the counts.
fn measure(tool: &Path, tree: &Tree, scratch: &Path) -> (f64, f64) {
    let mut b = Builder::new()
        .scan(&tree.root)
        .lang(Lang::C)
        .default_excludes(false)
        .cargo_metadata(false)
        .generated_dir(scratch);
    for (n, t) in &tree.wrappers {
        b = b.wrapper(n, t);
    }
    let g = b.try_generate().unwrap();
    let mut names: Vec<&str> = BUILTIN.to_vec();
    names.extend(tree.wrappers.iter().map(|(n, _)| *n));
    // The reference runs on the tree's root directory (libgit2: its src/,
    // the include/ headers being the public API, which allocates nothing).
    let reference = run_reference(tool, &tree.root, &names, &tree.args, &tree.files);
    let mut defines: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let mut judged = BTreeSet::new();
    let table: BTreeSet<(String, u32)> = g.table.live().map(|e| (e.file.clone(), e.line)).collect();
    for (file, line) in &table {
        if !reference.files.contains(file) {
            continue;
        }
        let d = defines
            .entry(file.clone())
            .or_insert_with(|| define_lines(&tree.root.join(file)));
        if d.contains(line) {
            continue;
        }
        if reference
            .skipped
            .get(file)
            .is_some_and(|r| r.iter().any(|(a, b)| a <= line && line <= b))
        {
            continue;
        }
        judged.insert((file.clone(), *line));
    }
    let both = reference.calls.intersection(&table).count();
    let confirmed = judged.intersection(&reference.calls).count();
    let recall = both as f64 / reference.calls.len() as f64;
    let precision = confirmed as f64 / judged.len() as f64;
    let missed: Vec<_> = reference.calls.difference(&table).take(20).collect();
    let extra: Vec<_> = judged.difference(&reference.calls).take(20).collect();
    eprintln!(
        "{}: {} files scanned ({} lines), {} compiled by clang; table {} sites on {} lines; \
         reference {} call lines; recall {both}/{} = {recall:.4}; precision {confirmed}/{} \
         judged lines = {precision:.4}\n  reference-only (first 20): {missed:?}\n  \
         table-only (first 20): {extra:?}",
        tree.name,
        g.scan.files.len(),
        g.scan.lines,
        reference.files.len(),
        g.table.live().count(),
        table.len(),
        reference.calls.len(),
        reference.calls.len(),
        judged.len(),
    );
    assert!(
        reference.calls.len() > 10,
        "{}: the reference saw too little",
        tree.name
    );
    (recall, precision)
}

#[test]
fn recall_and_precision_against_clang_on_bzip2_libgit2_and_lua() {
    let scratch = common::temp_dir("accuracy");
    let tool = reference_tool(scratch.path());
    let bz = bzip2(&registry_crate("bzip2-sys", "0.1.13+1.0.8"));
    let git = libgit2(
        &registry_crate("libgit2-sys", "0.18.8+1.9.7"),
        scratch.path(),
    );
    let lua = lua(&registry_crate("lua-src", "551.1.0"));
    for tree in [bz, git, lua] {
        let (recall, precision) = measure(&tool, &tree, scratch.path());
        assert!(
            recall >= 0.995 && precision >= 0.995,
            "{}: recall {recall:.4}, precision {precision:.4}",
            tree.name
        );
    }
}

/// The header written for libgit2's wrappers compiles the tree as
/// libgit2-sys's build does (alloc.c, which defines the out-of-line
/// wrappers, with `-DASMALLOC_NO_WRAPPERS`, as the header says; every file
/// with `-DASMALLOC_NO_SITE_FREE`, because libgit2 calls `backend->free()`
/// members), and the wrapper calls do go through the scope hooks.
#[test]
fn libgit2_compiles_with_its_wrappers_header() {
    let scratch = common::temp_dir("libgit2-header");
    let git = libgit2(
        &registry_crate("libgit2-sys", "0.18.8+1.9.7"),
        scratch.path(),
    );
    let gen_dir = scratch.path().join("gen");
    let mut b = Builder::new()
        .scan(&git.root)
        .lang(Lang::C)
        .default_excludes(false)
        .cargo_metadata(false)
        .sites_header(&gen_dir);
    for (n, t) in &git.wrappers {
        b = b.wrapper(n, t);
    }
    b.try_write_c(&gen_dir).unwrap();
    let header = gen_dir.join("asmalloc_sites.h");
    let text = std::fs::read_to_string(&header).unwrap();
    assert!(text.contains("util/alloc.c (git__calloc"), "{text}");
    assert!(
        text.contains("/util/alloc.h\""),
        "alloc.h is included first"
    );
    let compile = |f: &Path, extra: &[&str]| {
        let mut cmd = Command::new("gcc");
        cmd.args(["-w", "-DASMALLOC_NO_SITE_FREE"])
            .args(&git.args)
            .args(extra)
            .arg("-include")
            .arg(&header)
            .arg(f);
        if f.ends_with("util/alloc.c") {
            cmd.arg("-DASMALLOC_NO_WRAPPERS");
        }
        cmd
    };
    let mut failures = Vec::new();
    for pair in git.files.chunks(2) {
        let children: Vec<_> = pair
            .iter()
            .map(|f| {
                let child = compile(f, &["-fsyntax-only"])
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("gcc not found: install Debian's gcc package (.ci/run does)");
                (f, child)
            })
            .collect();
        for (f, child) in children {
            let out = child.wait_with_output().unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "{}:\n{}",
                    f.display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files fail with the header:\n{}",
        failures.len(),
        git.files.len(),
        failures.join("\n")
    );
    // A file that allocates through the wrappers calls the hooks.
    let obj = scratch.path().join("str.o");
    let obj_arg = obj.to_string_lossy().into_owned();
    let out = compile(&git.root.join("util/str.c"), &["-O2", "-c", "-o", &obj_arg])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nm = Command::new("nm")
        .arg(&obj)
        .output()
        .expect("nm (binutils)");
    let syms = String::from_utf8_lossy(&nm.stdout);
    assert!(
        syms.contains("asm_wrap_enter") && syms.contains("asm_wrap_exit"),
        "{syms}"
    );
    eprintln!(
        "libgit2: {} files compiled with the wrappers header",
        git.files.len()
    );
}
