//! The C scanner (`asmalloc_gen::c_lexer` + `c_sites`) on arbitrary bytes.

use asmalloc_gen::c_lexer::lex;
use asmalloc_gen::c_sites::{AllocNames, scan_c};
use asmalloc_gen::site::SiteLang;

use crate::{is_fingerprint, physical_lines};

/// Scans `data` as a C file and checks:
/// * the lexer's tokens lie inside the (spliced) text, in order, on lines
///   within the file, and it counts the file's physical lines;
/// * every site is on a line of the file (1..=lines) with a column >= 1,
///   the sites are sorted by (line, column), each callee is an allocation
///   function with its type, each context is a fingerprint;
/// * a newline put in front of the file moves every site down one line and
///   changes nothing else (sites do not depend on where the file starts).
pub fn check(data: &[u8]) {
    let names = AllocNames::builtin();
    let lines = physical_lines(data);

    let lexed = lex(data);
    assert_eq!(lexed.lines as usize, lines, "lexer's line count");
    let mut prev_end = 0u32;
    let mut prev_line = 1u32;
    for t in &lexed.tokens {
        assert!(t.start <= t.end, "token {t:?} ends before it starts");
        assert!(t.start >= prev_end, "token {t:?} overlaps the one before");
        assert!(
            t.end as usize <= lexed.src.len(),
            "token {t:?} past the text"
        );
        assert!(t.line >= prev_line, "token {t:?} goes back a line");
        assert!(
            t.line >= 1 && t.line as usize <= lines.max(1),
            "token {t:?} beyond the file's {lines} lines"
        );
        assert!(t.col >= 1, "token {t:?} has column 0");
        prev_end = t.end;
        prev_line = t.line;
    }

    let scan = scan_c(data, &names);
    assert_eq!(scan.lines as usize, lines, "scanner's line count");
    for s in &scan.sites {
        assert!(
            s.line >= 1 && s.line as usize <= lines,
            "site {s:?} beyond the file's {lines} lines"
        );
        assert!(s.column >= 1, "site {s:?} has column 0");
        assert_eq!(
            names.get(s.callee.as_bytes()),
            Some(s.type_name.as_str()),
            "site {s:?} is not an allocation function with its type"
        );
        assert!(is_fingerprint(&s.context), "site {s:?}: context");
        assert_eq!(s.lang, SiteLang::C);
        assert!(s.file.is_empty(), "the caller names the file");
    }
    assert!(
        scan.sites
            .windows(2)
            .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)),
        "sites not sorted: {:?}",
        scan.sites
    );

    let mut shifted_input = Vec::with_capacity(data.len() + 1);
    shifted_input.push(b'\n');
    shifted_input.extend_from_slice(data);
    let shifted = scan_c(&shifted_input, &names);
    assert_eq!(shifted.lines as usize, lines + 1);
    assert_eq!(
        shifted.sites.len(),
        scan.sites.len(),
        "a leading newline changed the sites"
    );
    for (a, b) in scan.sites.iter().zip(&shifted.sites) {
        assert_eq!(b.line, a.line + 1, "{a:?} vs {b:?}");
        assert_eq!(
            (&b.function, &b.callee, &b.type_name, &b.context, b.column),
            (&a.function, &a.callee, &a.type_name, &a.context, a.column),
            "a leading newline changed a site"
        );
    }
}
