//! A crate whose build.rs runs the generator: add a tracked function,
//! rebuild, and the new function is named correctly — no manual step, no
//! stale-table warning — while the old one keeps its id.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn cargo_run(dir: &Path, target: &Path) -> (String, String) {
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "cargo run failed:\n{stderr}");
    (stdout, stderr)
}

fn line_of(src: &str, needle: &str) -> usize {
    src.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn adding_a_tracked_function_names_it_on_the_next_build() {
    let ws = workspace();
    let dir = std::env::temp_dir().join(format!("asmalloc-regen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let fixture = ws.join("tests/fixtures/regen");
    std::fs::copy(fixture.join("build.rs"), dir.join("build.rs")).unwrap();
    let mut main = std::fs::read_to_string(fixture.join("src/main.rs")).unwrap();
    std::fs::write(dir.join("src/main.rs"), &main).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"regen\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nasmalloc = {{ path = {:?} }}\n\n\
             [build-dependencies]\nasmalloc-gen = {{ path = {:?} }}\n\n[workspace]\n",
            ws.join("asmalloc"),
            ws.join("asmalloc-gen")
        ),
    )
    .unwrap();
    // Same dependency versions as the workspace, so nothing new is fetched.
    std::fs::copy(ws.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = ws.join("target").join("regen-test");

    let (out, err) = cargo_run(&dir, &target);
    let first_line = line_of(&main, "fn first(");
    assert!(
        out.contains(&format!(
            "first main.rs:{first_line} type=first dynamic=false net=10"
        )),
        "first build:\n{out}\n{err}"
    );

    main = main
        .replace(
            "// NEW FUNCTIONS",
            "#[track_alloc(second)]\nfn second() -> Vec<u8> {\n    vec![0; 20]\n}\n",
        )
        .replace("// NEW CALLS", "let keep2 = second();\n    drop(&keep2);");
    std::fs::write(dir.join("src/main.rs"), &main).unwrap();
    let (out, err) = cargo_run(&dir, &target);
    let second_line = line_of(&main, "fn second(");
    assert!(
        out.contains(&format!(
            "second main.rs:{second_line} type=second dynamic=false net=20"
        )),
        "after adding second():\n{out}\n{err}"
    );
    assert!(
        out.contains(&format!("first main.rs:{first_line} ")),
        "first keeps its name:\n{out}"
    );
    assert!(!err.contains("stale"), "no stale-table warning:\n{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
