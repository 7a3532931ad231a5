//! `asmalloc gen` is the generator itself, not a launcher for a second
//! binary: it works with no `asmalloc-gen` next to it or on PATH.

use std::process::Command;

const ASMALLOC: &str = env!("CARGO_BIN_EXE_asmalloc");

#[test]
fn gen_works_without_an_asmalloc_gen_binary() {
    let t = tempfile::Builder::new()
        .prefix("asmalloc-cli-gen-")
        .tempdir()
        .unwrap();
    // `asmalloc` alone in a directory (target/debug also holds
    // asmalloc-gen), run with an empty PATH.
    let bin = t.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let exe = bin.join("asmalloc");
    std::fs::copy(ASMALLOC, &exe).unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(
        src.join("pool.c"),
        "#include <stdlib.h>\n\nvoid *pool_grow(size_t n)\n{\n\treturn malloc(n);\n}\n",
    )
    .unwrap();
    let out = t.path().join("gen");
    let run = Command::new(&exe)
        .env_clear()
        .env("PATH", "")
        .current_dir(t.path())
        .arg("gen")
        .arg("--root")
        .arg(&src)
        .arg("--out")
        .arg(&out)
        .args(["--lang", "c"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("1 sites in 1 files"), "{stdout}");
    let header = std::fs::read_to_string(out.join("mallocations.h")).unwrap();
    assert!(
        header.contains("{ MALLOCATION_TYPE_MALLOC, \"pool.c\", 5, 1, \"pool_grow\" }"),
        "no pool.c:5 pool_grow site in:\n{header}"
    );

    // Usage errors and help come from the same command line, named `asmalloc gen`.
    let help = Command::new(&exe)
        .env_clear()
        .args(["gen", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Usage: asmalloc gen") && help.contains("--no-gitignore"),
        "{help}"
    );
    let bad = Command::new(&exe)
        .env_clear()
        .args(["gen", "--format", "xml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
