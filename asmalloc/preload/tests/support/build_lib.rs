//! Building a preload library from a test (shared by the preload's tests and
//! the `asmalloc` command's): `cargo build -p PACKAGE --lib` into the same
//! target directory and profile as the test's own binaries, so a plain
//! `cargo test --workspace` works from a clean checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `package`'s library (a no-op when fresh) for the profile whose
/// output directory is `profile_dir` (`<target>/<profile>`, or
/// `<target>/<triple>/<profile>` when built with `--target`), running cargo
/// in `manifest_dir`; returns `profile_dir/file`.
pub fn build_lib(profile_dir: &Path, package: &str, file: &str, manifest_dir: &Path) -> PathBuf {
    let profile = profile_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mut target = profile_dir.parent().unwrap().to_path_buf();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "--quiet", "-p", package, "--lib"]);
    if !target.join("CACHEDIR.TAG").exists()
        && let Some(parent) = target.parent().filter(|p| p.join("CACHEDIR.TAG").exists())
    {
        let triple = target.file_name().unwrap().to_str().unwrap().to_string();
        cmd.args(["--target", &triple]);
        target = parent.to_path_buf();
    }
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(manifest_dir)
        .status()
        .expect("run cargo build for the preload library");
    assert!(status.success(), "building {file} failed");
    let so = profile_dir.join(file);
    assert!(so.exists(), "{} missing after build", so.display());
    so
}
