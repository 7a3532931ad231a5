//! Determinism, write-only-when-changed (mtime kept), `--check`, exit
//! statuses, warnings for bad input.

mod common;

use std::path::Path;
use std::process::Command;

use common::{copy_dir, fixture, temp_dir};

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

#[test]
fn deterministic_and_no_rewrite_when_unchanged() {
    let t = temp_dir("det");
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let root = fixture("c_tree");
    let args = |out: &Path| {
        vec![
            "--root".to_owned(),
            p(&root).to_owned(),
            "--out".to_owned(),
            p(out).to_owned(),
            "--format".into(),
            "h,rs,json".into(),
        ]
    };
    let run = |out: &Path| {
        let v = args(out);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        cli(&refs)
    };
    assert_eq!(run(&a).0, 0);
    assert_eq!(run(&b).0, 0);
    let names = [
        "mallocations.h",
        "mallocations.c",
        "mallocations.rs",
        "mallocations.json",
    ];
    for n in names {
        assert_eq!(
            std::fs::read(a.join(n)).unwrap(),
            std::fs::read(b.join(n)).unwrap(),
            "{n}"
        );
    }
    let mtimes: Vec<_> = names
        .iter()
        .map(|n| std::fs::metadata(a.join(n)).unwrap().modified().unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (code, stdout, _) = run(&a);
    assert_eq!(code, 0);
    assert!(stdout.contains("wrote 0, unchanged 4"), "{stdout}");
    for (n, m) in names.iter().zip(mtimes) {
        assert_eq!(
            std::fs::metadata(a.join(n)).unwrap().modified().unwrap(),
            m,
            "{n} rewritten"
        );
    }
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(&a).unwrap().count(), 4);
}

#[test]
fn check_detects_stale_tables() {
    let t = temp_dir("check");
    let root = t.path().join("src");
    let out = t.path().join("gen");
    copy_dir(&fixture("c_tree").join("src"), &root);
    let base = ["--root", p(&root), "--out", p(&out), "--lang", "c"];
    let (code, _, err) = cli(&[&base[..], &["--check"]].concat());
    assert_eq!(code, 1, "missing table is stale: {err}");
    assert!(err.contains("mallocations.h: stale"), "{err}");
    assert_eq!(cli(&base).0, 0);
    let (code, out_text, _) = cli(&[&base[..], &["--check"]].concat());
    assert_eq!(code, 0, "{out_text}");
    std::fs::write(root.join("new.c"), "void n(void) { free(0); }\n").unwrap();
    assert_eq!(cli(&[&base[..], &["--check"]].concat()).0, 1);
    // --check wrote nothing.
    assert!(
        !std::fs::read_to_string(out.join("mallocations.json"))
            .unwrap()
            .contains("new.c")
    );
}

#[test]
fn usage_errors_exit_2_and_help_has_examples() {
    assert_eq!(cli(&["--format", "xml"]).0, 2);
    assert_eq!(cli(&["--no-such-flag"]).0, 2);
    assert_eq!(cli(&["--wrapper", "cf_malloc"]).0, 2);
    assert_eq!(cli(&["--wrapper", "cf malloc=MALLOC"]).0, 2);
    let (code, stdout, _) = cli(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("Examples:") && stdout.contains("--check"),
        "{stdout}"
    );
    let t = temp_dir("bad-prev");
    std::fs::write(
        t.path().join("mallocations.json"),
        "{\n  \"types\": [\n oops",
    )
    .unwrap();
    let (code, _, err) = cli(&["--root", p(&fixture("c_tree")), "--out", p(t.path())]);
    assert_eq!(code, 2);
    assert!(err.contains("mallocations.json:3:"), "{err}");
}

#[test]
fn emit_sites_header() {
    let t = temp_dir("sites");
    let (code, _, _) = cli(&["--emit-sites-header", p(t.path())]);
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read_to_string(t.path().join("asmalloc_sites.h")).unwrap(),
        asmalloc_gen::SITES_HEADER
    );
}

#[test]
fn bad_input_is_a_warning_and_the_rest_is_scanned() {
    let t = temp_dir("bad");
    let root = t.path().join("tree");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("good.c"), "void g(void) { free(0); }\n").unwrap();
    std::fs::write(root.join("bad_utf8.rs"), b"fn a() {}\n// \xff\xfe\n").unwrap();
    std::fs::write(root.join("bad_parse.rs"), "fn a() {}\n\nfn b( {\n").unwrap();
    std::fs::write(root.join("huge.c"), vec![b' '; 4096]).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();
    let out = t.path().join("gen");
    let (code, stdout, stderr) = cli(&[
        "--root",
        p(&root),
        "--out",
        p(&out),
        "--max-file-size",
        "1000",
    ]);
    assert_eq!(code, 3, "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.iter().all(|l| l.starts_with("asmalloc-gen: ")),
        "{stderr}"
    );
    assert!(stderr.contains("bad_utf8.rs:2: invalid UTF-8"), "{stderr}");
    assert!(
        stderr.contains("bad_parse.rs:3: Rust that does not parse"),
        "{stderr}"
    );
    assert!(
        stderr.contains("huge.c: file is 4096 bytes, over the 1000-byte limit"),
        "{stderr}"
    );
    #[cfg(unix)]
    assert!(stderr.contains("symbolic link loop"), "{stderr}");
    assert!(stdout.contains("1 sites"), "{stdout}");
    let json = std::fs::read_to_string(out.join("mallocations.json")).unwrap();
    assert!(json.contains("\"good.c\""));
}
