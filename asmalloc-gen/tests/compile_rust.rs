//! The generated `mallocations.rs` compiles in a Rust crate that depends on
//! the `asmalloc` runtime, registers, and reads back as the table it was
//! generated from.

mod common;

use std::process::Command;

use asmalloc_gen::{Builder, Format, Lang};
use common::{copy_dir, fixture, manifest_dir, temp_dir};

#[test]
fn generated_rust_table_compiles_and_registers() {
    let t = temp_dir("rs");
    let krate = t.path().join("scratch");
    copy_dir(&fixture("rust_tree"), &t.path().join("tree"));
    let report = Builder::new()
        .scan(t.path().join("tree"))
        .lang(Lang::Rust)
        .cargo_metadata(false)
        .try_write(krate.join("gen"), &[Format::Rust])
        .unwrap();
    assert_eq!(report.sites, 9);
    let runtime = manifest_dir().join("../asmalloc");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"scratch\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\nasmalloc = {{ path = {:?} }}\n\n[workspace]\n",
            runtime.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        krate.join("src/main.rs"),
        r#"
#![deny(warnings)]

mod table {
    include!("../gen/mallocations.rs");
}

fn main() {
    use table::*;
    asmalloc::register_sites(&MALLOCATIONS).expect("a valid table");
    let t = asmalloc::registered_sites().unwrap();
    assert_eq!(t.len(), NUM_MALLOCATIONS);
    assert_eq!(t.types.len(), NUM_MALLOCATION_TYPES);
    assert_eq!(t.type_name(MALLOCATION_TYPE_MALLOC), "MALLOC");
    let s = t.site(1).unwrap();
    assert_eq!(t.type_name(s.type_id), "cache");
    assert_eq!(MALLOCATION_TYPE_CACHE, s.type_id);
    let (_, id) = MALLOCATION_RUST_KEYS
        .iter()
        .find(|(k, _)| k.starts_with("net::accept@"))
        .unwrap();
    let s = t.site(*id).unwrap();
    println!("{} {}:{} {}", t.type_name(s.type_id), s.file, s.line, s.function);
}
"#,
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // A target dir that outlives the test, so reruns are incremental.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../target"))
        .join("asmalloc-gen-scratch");
    let out = Command::new(cargo)
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .args(["run", "--quiet", "--offline"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scratch crate failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "conn src/net/mod.rs:4 net::accept\n"
    );
}
