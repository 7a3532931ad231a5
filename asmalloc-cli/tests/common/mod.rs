//! Helpers of the tests that build third-party C code from the crates in
//! the cargo registry.

use std::path::PathBuf;
use std::process::Command;

/// The registry's unpacked sources of crate `name` at `version`
/// (`~/.cargo/registry/src/*/name-version`), fetched there with `cargo
/// fetch` on a scratch manifest when absent; panics when that fails.
pub fn registry_crate(name: &str, version: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let find = || -> Option<PathBuf> {
        for index in std::fs::read_dir(home.join("registry/src")).ok()? {
            let p = index.ok()?.path().join(format!("{name}-{version}"));
            if p.is_dir() {
                return Some(p);
            }
        }
        None
    };
    if let Some(p) = find() {
        return p;
    }
    let dir = asmalloc_test_support::scratch().join(format!("fetch-{name}"));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"fetch-sources\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             [workspace]\n[dependencies]\n{name} = \"={version}\"\n"
        ),
    )
    .unwrap();
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .arg("fetch")
        .current_dir(&dir)
        .status()
        .expect("run cargo fetch");
    assert!(status.success(), "cargo fetch of {name} {version} failed");
    find().unwrap_or_else(|| panic!("{name}-{version} not in the registry after cargo fetch"))
}
