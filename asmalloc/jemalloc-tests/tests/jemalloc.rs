//! Runs asmalloc's jemalloc exactness tests (`asmalloc/tests/
//! exactness_jemalloc.rs` and the soak, `soak_jemalloc.rs`, which need the
//! `jemalloc` feature) from the
//! plain `cargo test --workspace`, through a nested cargo call with this
//! test binary's profile and target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>` of this test binary (`…/<profile>/deps/jemalloc-…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

#[test]
fn asmalloc_over_jemalloc_passes_the_exactness_tests() {
    let profile = profile_dir();
    let name = profile.file_name().unwrap().to_str().unwrap().to_string();
    let mut target = profile.parent().unwrap().to_path_buf();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "test",
        "-p",
        "asmalloc",
        "--features",
        "jemalloc",
        "--test",
        "exactness_jemalloc",
        "--test",
        "soak_jemalloc",
    ]);
    // <target>/<triple>/<profile> when built with --target.
    if !target.join("CACHEDIR.TAG").exists() && target.parent().is_some() {
        let triple = target.file_name().unwrap().to_str().unwrap().to_string();
        if target.parent().unwrap().join("CACHEDIR.TAG").exists() {
            cmd.args(["--target", &triple]);
            target = target.parent().unwrap().to_path_buf();
        }
    }
    match name.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo test for asmalloc --features jemalloc");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "asmalloc's jemalloc tests failed:\n{stdout}\n{stderr}"
    );
    // The tests really ran (not filtered away or compiled out).
    assert!(
        stdout.contains("test result: ok. 7 passed"),
        "{stdout}\n{stderr}"
    );
    print!("{stdout}");
}
