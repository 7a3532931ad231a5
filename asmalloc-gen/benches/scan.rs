//! Scanning speed: a synthetic ~100k-line C tree, scanned end to end
//! (walk, read, lex, find sites), printing lines per second. Target: more
//! than 1M lines/s on one core.
//!
//! `cargo bench -p asmalloc-gen --bench scan` (a plain binary, no harness).

use std::fmt::Write as _;
use std::time::Instant;

use asmalloc_gen::scan::{ScanOptions, scan};

/// One C file of about `funcs * 25` lines, with comments, strings,
/// preprocessor blocks and allocation calls.
fn synth_file(seed: usize, funcs: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "/* synthetic file {seed}\n * with a block comment that mentions malloc(1)\n */"
    );
    s.push_str("#include <stdlib.h>\n#include <string.h>\n\n#define DUP(x) strdup(x)\n\n");
    s.push_str("struct node { struct node *next; char *name; size_t len; };\n\n");
    for f in 0..funcs {
        let _ = write!(
            s,
            "static struct node *\nmake_{seed}_{f}(const char *name, size_t n)\n{{\n\
             \tstruct node *p = malloc(sizeof *p); // one allocation\n\
             \tif (p == NULL) {{\n\t\treturn NULL;\n\t}}\n\
             \tp->name = DUP(name);\n\tp->len = strlen(\"calloc(x) in a string\") + n;\n\
             #if 0\n\tfree(p);\n#endif\n\
             \tchar *buf = (char *)calloc(n, 2);\n\
             \tfor (size_t i = 0; i < n; i++) {{\n\t\tbuf[i] = (char)('a' + (i % 26));\n\t}}\n\
             \tbuf = realloc(buf, n * 4);\n\tfree(buf);\n\
             \tp->next = NULL;\n\treturn p;\n}}\n\n"
        );
    }
    s
}

fn main() {
    let scratch = tempfile::Builder::new()
        .prefix("asmalloc-gen-bench-")
        .tempdir()
        .unwrap();
    let dir = scratch.path().to_path_buf();
    let mut lines = 0usize;
    let mut files = 0usize;
    while lines < 100_000 {
        let text = synth_file(files, 40);
        lines += text.lines().count();
        let sub = dir.join(format!("d{}", files % 10));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{files}.c")), text).unwrap();
        files += 1;
    }
    let opts = ScanOptions::default();
    let roots = vec![dir.clone()];
    // Warm the page cache, then take the best of a few runs.
    let first = scan(&roots, &opts);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let r = scan(&roots, &opts);
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(r.sites.len(), first.sites.len());
        best = best.min(secs);
    }
    println!(
        "scan: {files} files, {} lines, {} MiB, {} sites: best {:.1} ms = {:.2} M lines/s ({:.0} MiB/s)",
        first.lines,
        first.bytes / (1 << 20),
        first.sites.len(),
        best * 1e3,
        first.lines as f64 / best / 1e6,
        first.bytes as f64 / best / f64::from(1 << 20)
    );
    drop(scratch);
}
