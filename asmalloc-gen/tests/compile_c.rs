//! The generated `mallocations.h`/`.c` compile with `gcc -Wall -Wextra
//! -Werror` into a multi-file program that uses the table, and the
//! force-include header `asmalloc_sites.h` changes nothing without the
//! runtime, and reports the right sites to it when present (a fake runtime
//! linked in stands for the LD_PRELOAD library).

mod common;

use std::path::Path;
use std::process::Command;

use asmalloc_gen::{Builder, Lang};
use common::{copy_dir, manifest_dir, temp_dir};

fn gcc(dir: &Path, args: &[&str]) {
    let out = Command::new("gcc")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gcc {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(exe: &Path) -> (String, String) {
    let out = Command::new(exe).output().unwrap();
    assert!(out.status.success(), "{} failed: {out:?}", exe.display());
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Copies the program, generates its table into `gen/`, and writes the
/// sites header there.
fn setup() -> tempfile::TempDir {
    assert!(
        common::have("gcc"),
        "gcc not found: install Debian's gcc package (.ci/run does)"
    );
    let t = temp_dir("cc");
    copy_dir(
        &manifest_dir().join("tests/c_program"),
        &t.path().join("prog"),
    );
    Builder::new()
        .scan(t.path().join("prog"))
        .lang(Lang::C)
        .cargo_metadata(false)
        .try_write_c(t.path().join("gen"))
        .unwrap();
    asmalloc_gen::write_sites_header(t.path().join("gen")).unwrap();
    t
}

const WARN: &[&str] = &["-Wall", "-Wextra", "-Werror", "-std=gnu11", "-I", "../gen"];

#[test]
fn generated_table_compiles_and_is_usable() {
    let t = setup();
    let prog = t.path().join("prog");
    let mut args = WARN.to_vec();
    args.extend(["-o", "plain", "main.c", "worker.c", "../gen/mallocations.c"]);
    gcc(&prog, &args);
    let (stdout, stderr) = run(&prog.join("plain"));
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        stdout.contains("site ") && stdout.contains(": MALLOC worker.c:8 make_buf\n"),
        "{stdout}"
    );
    assert!(stdout.contains("first MALLOCATION_TYPE_MALLOC"), "{stdout}");
}

#[test]
fn original_sample_style_single_translation_unit() {
    let t = setup();
    // Code written for the original 4-field struct and a header that
    // defines the table in the including file.
    std::fs::write(
        t.path().join("prog/sample.c"),
        "#define ASMALLOC_MALLOCATIONS_DEFINE\n#include \"mallocations.h\"\n#include <stdio.h>\n\
         static mallocation_t extra = { MALLOCATION_TYPE_MALLOC, \"test3.c\", 303, 3 };\n\
         int main(void) { printf(\"%s %d %s\\n\", extra.file, NUM_MALLOCATIONS > 1, \
         mallocation_type_names[mallocations[1].type]); return 0; }\n",
    )
    .unwrap();
    gcc(
        &t.path().join("prog"),
        &[
            "-Wall", "-Werror", "-std=c99", "-I", "../gen", "-o", "sample", "sample.c",
        ],
    );
    let (stdout, _) = run(&t.path().join("prog/sample"));
    assert!(
        stdout.starts_with("test3.c 1 MALLOCATION_TYPE_"),
        "{stdout}"
    );
}

#[test]
fn sites_header_changes_nothing_without_runtime() {
    let t = setup();
    let prog = t.path().join("prog");
    let mut plain = WARN.to_vec();
    plain.extend(["-o", "plain", "main.c", "worker.c", "../gen/mallocations.c"]);
    gcc(&prog, &plain);
    for (std, exe) in [("-std=gnu11", "sites_gnu"), ("-std=c11", "sites_c11")] {
        let mut args = vec![
            "-Wall",
            "-Wextra",
            "-Werror",
            std,
            "-D_GNU_SOURCE",
            "-I",
            "../gen",
            "-include",
            "asmalloc_sites.h",
            "-o",
            exe,
            "main.c",
            "worker.c",
            "../gen/mallocations.c",
        ];
        if std == "-std=c11" {
            args.push("-Wpedantic");
        }
        gcc(&prog, &args);
        assert_eq!(run(&prog.join(exe)), run(&prog.join("plain")), "{exe}");
    }
    // The macros really are in effect.
    let pre = Command::new("gcc")
        .current_dir(&prog)
        .args([
            "-E",
            "-I",
            "../gen",
            "-include",
            "asmalloc_sites.h",
            "worker.c",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&pre.stdout);
    assert!(
        text.contains(
            "asmalloc_malloc_(&asmalloc_site_cache_, 7, \"worker.c\", 8, __func__, n + 1)"
        ),
        "{}",
        &text[text.len().saturating_sub(2000)..]
    );
}

#[test]
fn sites_header_reports_table_ids_to_a_runtime() {
    let t = setup();
    let prog = t.path().join("prog");
    // Absolute paths: __FILE__ is "/tmp/.../prog/worker.c", the table says
    // "worker.c"; the runtime matches on the suffix.
    let main = prog.join("main.c").display().to_string();
    let worker = prog.join("worker.c").display().to_string();
    let mut args = WARN.to_vec();
    args.extend([
        "-include",
        "asmalloc_sites.h",
        "-o",
        "traced",
        &main,
        &worker,
    ]);
    args.extend(["../gen/mallocations.c", "fake_runtime.c"]);
    gcc(&prog, &args);
    let (_, stderr) = run(&prog.join("traced"));
    assert!(
        stderr.starts_with("register: 18 types (NONE..SDALLOCX), "),
        "{stderr}"
    );
    assert!(stderr.contains("stride 32"), "{stderr}");
    let table = std::fs::read_to_string(t.path().join("gen/mallocations.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&table).unwrap();
    let mut entered = 0;
    for line in stderr.lines().filter(|l| l.starts_with("enter: ")) {
        entered += 1;
        assert!(!line.ends_with("-> id 0"), "a site the table lacks: {line}");
        // The id's table entry has the same line and function.
        let id: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
        let e = &doc["sites"][id - 1];
        let (file_line, func) = {
            let rest = line.trim_start_matches("enter: ");
            let mut it = rest.split(' ');
            (it.next().unwrap(), it.next().unwrap())
        };
        assert!(
            file_line.ends_with(&format!("{}:{}", e["file"].as_str().unwrap(), e["line"])),
            "{line} vs {e}"
        );
        assert_eq!(func, e["function"].as_str().unwrap(), "{line}");
    }
    // strdup, malloc (make_buf), calloc, realloc, 3 frees.
    assert_eq!(entered, 7, "{stderr}");
}
