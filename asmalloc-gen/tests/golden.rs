//! Fixture trees with every tricky case → tables checked exactly against
//! `tests/expectations/` (`ASMALLOC_BLESS=1` regenerates them).

mod common;

use asmalloc_gen::{Builder, Format, Lang};
use common::{fixture, golden};

fn warnings_text(g: &asmalloc_gen::Generated, root: &std::path::Path) -> String {
    let mut out = String::new();
    for w in &g.scan.warnings {
        let text = w.to_string().replace(&root.display().to_string(), "<root>");
        out.push_str(&text);
        out.push('\n');
    }
    out
}

/// One line per live site, the form reviewers read.
fn summary(g: &asmalloc_gen::Generated) -> String {
    let mut out = String::new();
    for e in &g.table.entries {
        out.push_str(&format!(
            "{:>3} {:<14} {}:{}:{} {}\n",
            e.id, e.type_name, e.file, e.line, e.column, e.function
        ));
    }
    out
}

#[test]
fn c_tree() {
    let root = fixture("c_tree");
    let g = Builder::new()
        .scan(&root)
        .lang(Lang::C)
        .wrapper("cf_malloc", "MALLOC")
        .wrapper("cf_free", "FREE")
        .wrapper("cf_strdup_impl", "CF_STRING")
        .exclude("vendor")
        .cargo_metadata(false)
        .try_generate()
        .unwrap();
    golden("c_tree/summary.txt", &summary(&g));
    for (name, text) in g.files(&[Format::C]) {
        golden(&format!("c_tree/{name}"), &text);
    }
    golden("c_tree/warnings.txt", &warnings_text(&g, &root));
    assert!(g.scan.warnings.is_empty());
    // Default excludes and --exclude.
    assert!(g.table.entries.iter().all(|e| e.file.starts_with("src/")));
}

#[test]
fn c_tree_without_default_excludes_sees_more() {
    let g = Builder::new()
        .scan(fixture("c_tree"))
        .lang(Lang::C)
        .default_excludes(false)
        .cargo_metadata(false)
        .try_generate()
        .unwrap();
    let files: std::collections::BTreeSet<_> =
        g.table.entries.iter().map(|e| e.file.as_str()).collect();
    for f in [
        ".hidden/ignored.c",
        "build/ignored.c",
        "target/ignored.c",
        "vendor/vendored.c",
    ] {
        assert!(files.contains(f), "{f} missing from {files:?}");
    }
}

#[test]
fn rust_tree() {
    let root = fixture("rust_tree");
    let g = Builder::new()
        .scan(&root)
        .lang(Lang::Rust)
        .cargo_metadata(false)
        .try_generate()
        .unwrap();
    golden("rust_tree/summary.txt", &summary(&g));
    for (name, text) in g.files(&[Format::Rust]) {
        golden(&format!("rust_tree/{name}"), &text);
    }
    golden("rust_tree/warnings.txt", &warnings_text(&g, &root));
    assert_eq!(g.scan.warnings.len(), 2, "{:?}", g.scan.warnings);
}
