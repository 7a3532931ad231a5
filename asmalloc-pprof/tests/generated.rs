//! The committed prost types (src/proto/perftools.profiles.rs) are exactly
//! what prost-build generates from proto/profile.proto today: regenerated
//! here with `protoc` (Debian's protobuf-compiler, installed by .ci/run)
//! and compared byte for byte. When the .proto or prost changes, refresh
//! the file with `ASMALLOC_PPROF_REGENERATE=1 cargo test -p asmalloc-pprof
//! --test generated`.

use std::path::Path;

#[test]
fn the_committed_types_are_prost_builds_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let proto = root.join("proto/profile.proto");
    let committed = root.join("src/proto/perftools.profiles.rs");
    let out = tempfile::tempdir().unwrap();
    prost_build::Config::new()
        .out_dir(out.path())
        .compile_protos(&[&proto], &[root.join("proto")])
        .unwrap_or_else(|e| {
            panic!("prost-build failed ({e}); it needs `protoc`: apt-get install protobuf-compiler")
        });
    let fresh = std::fs::read_to_string(out.path().join("perftools.profiles.rs")).unwrap();
    if std::env::var_os("ASMALLOC_PPROF_REGENERATE").is_some() {
        std::fs::write(&committed, &fresh).unwrap();
    }
    let old = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        old == fresh,
        "{} is not prost-build's output for {}; regenerate it with \
         ASMALLOC_PPROF_REGENERATE=1 cargo test -p asmalloc-pprof --test generated",
        committed.display(),
        proto.display()
    );
}
