//! A real C code base nobody here wrote: jemalloc, as shipped inside the
//! `tikv-jemalloc-sys` crate in the local cargo registry (the workspace
//! depends on it). The scanner must read every file without a warning, and
//! every call an independent reference finds must be in the table.
//!
//! The reference: GCC strips the comments (`gcc -fpreprocessed -dD -E`,
//! which keeps directives and line markers), string and character literals
//! are blanked with a regex, and every `name (` of the allocation family
//! not preceded by `.`/`->`/an identifier character counts. It knows nothing
//! about declarations, `#if 0` or macros, so each difference is explained:
//! the only allowed one is a use of a function-like macro whose body
//! allocates (`btalloc_n_gen(0)`), which the table also lists, at the use
//! (a call inside a `#define` body is at its own physical line in both).
//!
//! Skipped, with a message, when the registry copy or gcc is absent.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use asmalloc_gen::{Builder, Lang};

fn jemalloc_dir() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let mut found = Vec::new();
    for index in std::fs::read_dir(home.join("registry/src")).ok()? {
        let index = index.ok()?.path();
        for krate in std::fs::read_dir(&index).ok()? {
            let p = krate.ok()?.path();
            let name = p.file_name()?.to_string_lossy().into_owned();
            if name.starts_with("tikv-jemalloc-sys-") && p.join("jemalloc/src").is_dir() {
                found.push(p.join("jemalloc"));
            }
        }
    }
    found.sort();
    found.pop()
}

const NAMES: &[(&str, &str)] = &[
    ("malloc", "MALLOC"),
    ("calloc", "CALLOC"),
    ("realloc", "REALLOC"),
    ("reallocarray", "REALLOCARRAY"),
    ("free", "FREE"),
    ("strdup", "STRDUP"),
    ("strndup", "STRNDUP"),
    ("valloc", "VALLOC"),
    ("pvalloc", "PVALLOC"),
    ("memalign", "MEMALIGN"),
    ("posix_memalign", "POSIX_MEMALIGN"),
    ("aligned_alloc", "ALIGNED_ALLOC"),
    ("mallocx", "MALLOCX"),
    ("rallocx", "RALLOCX"),
    ("xallocx", "XALLOCX"),
    ("dallocx", "DALLOCX"),
    ("sdallocx", "SDALLOCX"),
];

type Site = (String, u32, String);

/// (file, line, type) of every call the reference finds.
fn reference(root: &std::path::Path, files: &[PathBuf]) -> BTreeSet<Site> {
    let alt: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
    let call = regex::Regex::new(&format!(r"\b({})\s*\(", alt.join("|"))).unwrap();
    let lit = regex::Regex::new(r#""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"#).unwrap();
    let marker = regex::Regex::new(r#"^# (\d+) ""#).unwrap();
    let mut out = BTreeSet::new();
    for path in files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let pre = Command::new("gcc")
            .args(["-fpreprocessed", "-dD", "-E", "-x", "c"])
            .arg(path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&pre.stdout);
        let mut line = 0u32;
        for l in text.split('\n') {
            if let Some(m) = marker.captures(l) {
                line = m[1].parse().unwrap();
                continue;
            }
            let blank = lit.replace_all(l, "\"\"");
            for m in call.captures_iter(&blank) {
                let start = m.get(0).unwrap().start();
                if blank[..start].ends_with(['.', '>', '$', '_']) {
                    continue; // member call or a longer name
                }
                let ty = NAMES.iter().find(|(n, _)| *n == &m[1]).unwrap().1;
                out.insert((rel.clone(), line, ty.to_owned()));
            }
            line += 1;
        }
    }
    out
}

#[test]
fn jemalloc_every_reference_call_is_in_the_table() {
    let root = jemalloc_dir().expect(
        "no tikv-jemalloc-sys sources in the cargo registry: run `cargo fetch` \
         (the workspace depends on it through asmalloc-preload-jem)",
    );
    assert!(
        common::have("gcc"),
        "gcc not found: install Debian's gcc package (.ci/run does)"
    );
    let g = Builder::new()
        .scan(&root)
        .lang(Lang::C)
        .default_excludes(false)
        .cargo_metadata(false)
        .try_generate()
        .unwrap();
    assert!(g.scan.warnings.is_empty(), "{:?}", g.scan.warnings);
    let files = g.scan.files.clone();
    assert!(files.len() > 300, "{} files", files.len());
    let table: BTreeSet<Site> = g
        .table
        .live()
        .map(|e| (e.file.clone(), e.line, e.type_name.clone()))
        .collect();
    let reference = reference(&root, &files);
    let only_ref: Vec<&Site> = reference.difference(&table).collect();
    let only_table: Vec<&Site> = table.difference(&reference).collect();
    eprintln!(
        "jemalloc {}: {} files, {} lines; table {} sites, reference {} calls, {} in both; \
         reference-only {:?}; table-only {:?}",
        root.display(),
        files.len(),
        g.scan.lines,
        table.len(),
        reference.len(),
        reference.intersection(&table).count(),
        only_ref,
        only_table
    );
    // Every reference call is in the table.
    assert!(
        only_ref.is_empty(),
        "reference calls missing from the table"
    );
    // And the table has nothing the reference cannot explain: its extra
    // sites are uses of macros that allocate.
    let uses: BTreeSet<(String, u32)> = g
        .scan
        .sites
        .iter()
        .filter(|s| g.scan.alloc_macros.iter().any(|(m, _)| *m == s.callee))
        .map(|s| (s.file.clone(), s.line))
        .collect();
    for (file, line, ty) in &only_table {
        assert!(
            uses.contains(&(file.clone(), *line)),
            "table-only site {file}:{line} {ty}"
        );
    }
    assert!(table.len() > 600);
}
