//! The Rust scanner (`asmalloc_gen::rust_sites`) on arbitrary text.

use asmalloc_gen::rust_sites::{rust_site_key, scan_rust};
use asmalloc_gen::site::{SiteLang, fingerprint};

use crate::physical_lines;

/// The file name the sites are scanned as (it gives the module path).
const FILE: &str = "src/net/pool.rs";

/// Scans `data` as a Rust file (the generator skips a file that is not
/// UTF-8, so such input is skipped here too) and checks:
/// * a file that does not parse is an error on a line of the file (or just
///   after it, for an unexpected end) that says so;
/// * every site and problem is on a line of the file with a column >= 1;
/// * each site's function path is in the file's module (`net::pool::`) and
///   ends with its callee (the runtime matches by the last segment), its
///   type is not empty, its context is the fingerprint of its key;
/// * the sites are in source order.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Under `cargo fuzz` (`--cfg fuzzing`), proc-macro2 puts every span
    // at line 0, column 0 (it skips its source map to go faster), so the
    // positions are checked only in the corpus replay, a normal build.
    let lines = if cfg!(fuzzing) {
        usize::MAX - 1
    } else {
        physical_lines(data).max(1)
    };
    let first = usize::from(!cfg!(fuzzing));
    match scan_rust(text, FILE) {
        Err(p) => {
            assert!(
                p.line <= lines + 1,
                "error {p:?} beyond the file's {lines} lines"
            );
            assert!(p.column >= first, "error {p:?} has column 0");
            assert!(p.message.starts_with("Rust that does not parse: "), "{p:?}");
        }
        Ok((sites, problems)) => {
            for p in &problems {
                assert!(
                    p.line >= first && p.line <= lines,
                    "problem {p:?} beyond the file's {lines} lines"
                );
                assert!(p.column >= first, "problem {p:?} has column 0");
                assert!(!p.message.is_empty());
            }
            for s in &sites {
                assert!(
                    s.line as usize >= first && s.line as usize <= lines,
                    "site {s:?} beyond the file's {lines} lines"
                );
                assert!(s.column as usize >= first, "site {s:?} has column 0");
                assert!(!s.callee.is_empty() && !s.callee.starts_with("r#"), "{s:?}");
                assert!(s.function.starts_with("net::pool::"), "{s:?}");
                assert!(s.function.ends_with(&format!("::{}", s.callee)), "{s:?}");
                assert!(!s.type_name.is_empty(), "{s:?}");
                assert_eq!(
                    s.context,
                    fingerprint(rust_site_key(FILE, &s.function).as_bytes())
                );
                assert_eq!(s.lang, SiteLang::Rust);
            }
            assert!(
                sites
                    .windows(2)
                    .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)),
                "sites not in source order: {sites:?}"
            );
        }
    }
}
