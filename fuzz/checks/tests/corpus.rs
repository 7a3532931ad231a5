//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! checks the fuzz targets make, on stable Rust, without a fuzzer: every
//! input the fuzzer found interesting (and the seeds) keeps passing. A
//! crash the fuzzer found is fixed and its input kept in the corpus (and
//! as a named test in its crate).

use std::path::PathBuf;

use asmalloc_fuzz_checks::TARGETS;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target)
}

fn replay(target: &str) {
    let (_, check) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a target");
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the corpus is committed)", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: only {} inputs",
        dir.display(),
        files.len()
    );
    for path in &files {
        let data = std::fs::read(path).expect("corpus file");
        let result = std::panic::catch_unwind(|| check(&data));
        if let Err(panic) = result {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: {} fails: {msg}", path.display());
        }
    }
}

#[test]
fn c_scanner_corpus() {
    replay("c_scanner");
}

#[test]
fn rust_scanner_corpus() {
    replay("rust_scanner");
}

#[test]
fn env_corpus() {
    replay("env");
}

#[test]
fn log_reader_corpus() {
    replay("log_reader");
}

#[test]
fn every_target_has_a_corpus_and_a_test() {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["c_scanner", "rust_scanner", "env", "log_reader"]);
    for name in names {
        let target = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz_targets")
            .join(format!("{name}.rs"));
        assert!(target.is_file(), "{} missing", target.display());
    }
}
