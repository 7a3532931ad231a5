//! What the walk skips: `.gitignore`d files (unless turned off), the
//! generator's own output, malformed exclude patterns.

mod common;

use std::path::Path;
use std::process::Command;

use asmalloc_gen::{Builder, Lang};
use common::temp_dir;

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_asmalloc-gen"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn files_in_table(b: Builder) -> Vec<String> {
    let g = b
        .lang(Lang::C)
        .cargo_metadata(false)
        .try_generate()
        .unwrap();
    let mut files: Vec<String> = g.table.live().map(|e| e.file.clone()).collect();
    files.dedup();
    files
}

/// In a git repository, what git ignores is not scanned.
#[test]
fn gitignored_files_are_skipped_unless_turned_off() {
    let t = temp_dir("gitignore");
    let root = t.path().join("tree");
    write(&root.join(".gitignore"), "generated/\n*.gen.c\n");
    write(&root.join("a.c"), "void a(void) { free(0); }\n");
    write(&root.join("b.gen.c"), "void b(void) { free(0); }\n");
    write(&root.join("generated/c.c"), "void c(void) { free(0); }\n");
    write(&root.join("sub/.gitignore"), "d.c\n");
    write(&root.join("sub/d.c"), "void d(void) { free(0); }\n");
    write(&root.join("sub/e.c"), "void e(void) { free(0); }\n");
    write(&root.join("sub/f.gen.c"), "void f(void) { free(0); }\n");

    // Not (yet) a git repository: .gitignore files mean nothing, as to git.
    let all = [
        "a.c",
        "b.gen.c",
        "generated/c.c",
        "sub/d.c",
        "sub/e.c",
        "sub/f.gen.c",
    ];
    assert_eq!(files_in_table(Builder::new().scan(&root)), all);

    std::fs::create_dir(root.join(".git")).unwrap();
    assert_eq!(
        files_in_table(Builder::new().scan(&root)),
        ["a.c", "sub/e.c"]
    );
    assert_eq!(
        files_in_table(Builder::new().scan(&root).gitignore(false)),
        all
    );
    // A root below the repository's top obeys the .gitignore files above it.
    assert_eq!(
        files_in_table(Builder::new().scan(root.join("sub"))),
        ["e.c"]
    );
    // ... but not those above the repository.
    write(&t.path().join(".gitignore"), "*.c\n");
    assert_eq!(
        files_in_table(Builder::new().scan(root.join("sub"))),
        ["e.c"]
    );

    let out = t.path().join("out");
    let (code, stdout, stderr) = cli(&["--root", p(&root), "--out", p(&out), "--lang", "c"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(" 2 sites in 2 files"), "{stdout}");
    let (code, stdout, stderr) = cli(&[
        "--root",
        p(&root),
        "--out",
        p(&out),
        "--lang",
        "c",
        "--no-gitignore",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(" 6 sites in 6 files"), "{stdout}");
}

/// Issue 15 item 6: `--emit-sites-header gen` with `gen` under the root,
/// run twice, must not find the header's (or the table's) calls.
#[test]
fn the_generators_own_output_is_never_scanned() {
    let t = temp_dir("own-output");
    let root = t.path().join("proj");
    write(
        &root.join("src/pool.c"),
        "#include <stdlib.h>\nvoid *grow(size_t n) { return malloc(n); }\n",
    );
    let gen_dir = root.join("gen");
    let hdr_dir = root.join("include/gen");
    let args = [
        "--root",
        p(&root),
        "--out",
        p(&gen_dir),
        "--lang",
        "c",
        "--emit-sites-header",
        p(&gen_dir),
    ];
    let (code, first_out, stderr) = cli(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(first_out.contains(" 1 sites in 1 files"), "{first_out}");
    let first = std::fs::read_to_string(gen_dir.join("mallocations.json")).unwrap();

    // Again, now that gen/ holds asmalloc_sites.h and mallocations.{h,c}.
    assert!(gen_dir.join("asmalloc_sites.h").exists());
    let (code, second_out, stderr) = cli(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(second_out.contains(" 1 sites in 1 files"), "{second_out}");
    assert!(second_out.contains("wrote 0"), "{second_out}");
    let second = std::fs::read_to_string(gen_dir.join("mallocations.json")).unwrap();
    assert_eq!(first, second);
    assert!(!second.contains("gen/"), "{second}");
    assert_eq!(
        cli(&[&args[..], &["--check"]].concat()).0,
        0,
        "--check skips the output too"
    );

    // A separate header directory under the root is skipped too, as is any
    // other file in an output directory inside the root.
    write(&gen_dir.join("stray.c"), "void s(void) { free(0); }\n");
    let args = [
        "--root",
        p(&root),
        "--out",
        p(&gen_dir),
        "--lang",
        "c",
        "--emit-sites-header",
        p(&hdr_dir),
    ];
    let (code, out, stderr) = cli(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(hdr_dir.join("asmalloc_sites.h").exists());
    let (code, out2, stderr) = cli(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains(" 1 sites in 1 files"), "{out}");
    assert!(out2.contains(" 1 sites in 1 files"), "{out2}");
    assert_eq!(
        std::fs::read_to_string(gen_dir.join("mallocations.json")).unwrap(),
        first
    );
}

/// `--out .` with `--root .` (the defaults): the root is not skipped, only
/// the generated files in it.
#[test]
fn an_output_dir_that_is_the_root_skips_only_the_generated_files() {
    let t = temp_dir("out-is-root");
    let root = t.path();
    write(&root.join("a.c"), "void a(void) { free(0); }\n");
    let args = [
        "--root",
        p(root),
        "--out",
        p(root),
        "--lang",
        "c",
        "--emit-sites-header",
        p(root),
    ];
    let (code, out, stderr) = cli(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains(" 1 sites in 1 files"), "{out}");
    let (code, out, stderr) = cli(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains(" 1 sites in 1 files"), "{out}");
    assert!(out.contains("wrote 0"), "{out}");
}

#[test]
fn malformed_exclude_is_a_usage_error() {
    let t = temp_dir("bad-exclude");
    write(&t.path().join("a.c"), "void a(void) { free(0); }\n");
    let (code, _, stderr) = cli(&["--root", p(t.path()), "--exclude", "src/[a"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("exclude pattern `src/[a`"), "{stderr}");
}
