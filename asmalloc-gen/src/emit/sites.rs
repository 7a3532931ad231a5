//! `asmalloc_sites.h` for one program: the shipped header
//! ([`crate::SITES_HEADER`]) with a section for the program's own
//! allocation wrappers (`--wrapper NAME=TYPE`).
//!
//! # Why a macro per wrapper, and what it needs
//!
//! A wrapper's call site is only known where it is written, so the header
//! turns `xmalloc(n)` into a GNU statement expression that opens the
//! wrapper scope (`asm_wrap_enter`: the call's `__FILE__`, `__LINE__`,
//! `__func__`), makes the call, and closes the scope through a `cleanup`
//! variable once the call returned — whatever the wrapper returns, `void`
//! included, with no temporary of the return type.
//!
//! A function-like macro named like a function also rewrites the
//! function's *declarations and definitions* (`void *xmalloc(size_t n)`),
//! and no expansion is both a declarator and a call. So the header first
//! `#include`s every scanned header that declares or defines a wrapper
//! (`static inline` wrappers such as libgit2's `git__malloc` are defined
//! there), and only then defines the macros. A wrapper declared or defined
//! in a `.c` file cannot be handled that way: that file must be compiled
//! with `-DASMALLOC_NO_WRAPPERS` (the header lists such files). A wrapper
//! that is itself a function-like macro in the tree is left alone (its
//! expansion is what calls are charged through) with a warning.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::c_sites::DeclKind;
use crate::error::Warning;
use crate::ids::Table;
use crate::scan::FoundDecl;
use crate::types::builtin_type_id;

/// The marker in [`crate::SITES_HEADER`] replaced by the wrapper section.
pub const MARKER: &str = "/* @ASMALLOC_WRAPPERS@ */";

/// File extensions of headers (included before the wrapper macros).
const HEADER_EXTENSIONS: &[&str] = &["h", "hh", "hpp", "hxx", "inl", "inc"];

fn is_header(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| HEADER_EXTENSIONS.contains(&e))
}

/// `path` relative to `dir` (both made absolute against the current
/// directory); the absolute path when they share no prefix.
fn relative_to(path: &Path, dir: &Path) -> PathBuf {
    let abs = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let (path, dir) = (abs(path), abs(dir));
    let p: Vec<Component<'_>> = path.components().collect();
    let d: Vec<Component<'_>> = dir.components().collect();
    let common = p.iter().zip(&d).take_while(|(a, b)| a == b).count();
    if common <= 1 {
        return path;
    }
    let mut out = PathBuf::new();
    for _ in common..d.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// The header for a program with these wrappers (`(name, type)`, the
/// type as the table spells it), whose declarations the scan found in
/// `decls`; `header_dir` is where the header is written (the `#include`s are
/// relative to it). Returns the text and the warnings (wrappers left out).
pub fn header(
    table: &Table,
    wrappers: &[(String, String)],
    decls: &[FoundDecl],
    header_dir: &Path,
) -> (String, Vec<Warning>) {
    let base = crate::SITES_HEADER;
    let mut warnings = Vec::new();
    if wrappers.is_empty() {
        return (base.to_owned(), warnings);
    }
    let mut sec = String::new();
    sec.push_str(
        "/* The program's own allocation wrappers (asmalloc gen --wrapper NAME=TYPE).\n \
         * Each call opens a scope: every allocation of the thread until it\n \
         * returns is charged to the outermost wrapper call's site. Define\n \
         * ASMALLOC_NO_WRAPPERS to leave them all alone, ASMALLOC_NO_WRAP_<NAME>\n \
         * for one. */\n\
         #ifndef ASMALLOC_NO_WRAPPERS\n",
    );
    let mut names: Vec<&(String, String)> = wrappers.iter().collect();
    names.sort();
    names.dedup();
    let macros: Vec<&FoundDecl> = decls
        .iter()
        .filter(|d| d.decl.kind == DeclKind::Macro)
        .collect();
    let mut headers: Vec<&FoundDecl> = decls
        .iter()
        .filter(|d| d.decl.kind != DeclKind::Macro && is_header(&d.path))
        .collect();
    headers.sort_by(|a, b| a.path.cmp(&b.path));
    headers.dedup_by(|a, b| a.path == b.path);
    let mut sources: Vec<(&str, Vec<&str>)> = Vec::new();
    for d in decls
        .iter()
        .filter(|d| d.decl.kind != DeclKind::Macro && !is_header(&d.path))
    {
        match sources.iter_mut().find(|(f, _)| *f == d.file) {
            Some((_, n)) if n.contains(&d.decl.name.as_str()) => {}
            Some((_, n)) => n.push(&d.decl.name),
            None => sources.push((&d.file, vec![&d.decl.name])),
        }
    }
    if !headers.is_empty() {
        sec.push_str(
            "/* The headers that declare or define them, first: their declarations\n \
             * must not be rewritten as calls. */\n",
        );
        for h in &headers {
            let rel = relative_to(&h.path, header_dir);
            let _ = writeln!(
                sec,
                "#include {}",
                crate::emit::c::c_string(&rel.to_string_lossy())
            );
        }
    }
    if !sources.is_empty() {
        sec.push_str(
            "/* Declared or defined outside a header: compile these files with\n \
             * -DASMALLOC_NO_WRAPPERS (the macros below would rewrite the\n \
             * declarations):\n",
        );
        for (file, names) in &sources {
            let _ = writeln!(sec, " *   {file} ({})", names.join(", "));
        }
        sec.push_str(" */\n");
    }
    for (name, ty) in names {
        if let Some(m) = macros.iter().find(|m| &m.decl.name == name) {
            let _ = writeln!(
                sec,
                "/* {name}: a function-like macro ({}:{}); not wrapped. */",
                m.file, m.decl.line
            );
            warnings.push(Warning {
                path: m.path.clone(),
                line: Some(m.decl.line as usize),
                message: format!(
                    "wrapper `{name}` is a function-like macro here: the sites header leaves it \
                     alone; name the function it expands to as the wrapper"
                ),
            });
            continue;
        }
        let type_id = builtin_type_id(ty)
            .map(usize::from)
            .or_else(|| table.types.iter().position(|t| t == ty))
            .unwrap_or(0);
        let _ = write!(
            sec,
            "#ifndef ASMALLOC_NO_WRAP_{name}\n\
             #undef {name}\n\
             #define {name}(...) ASMALLOC_WRAP_CALL_({type_id} /* {ty} */, {name}(__VA_ARGS__))\n\
             #endif\n"
        );
    }
    sec.push_str("#endif /* ASMALLOC_NO_WRAPPERS */");
    (base.replacen(MARKER, &sec, 1), warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to(Path::new("/a/b/src/x.h"), Path::new("/a/b/gen")),
            PathBuf::from("../src/x.h")
        );
        assert_eq!(
            relative_to(Path::new("/x/y.h"), Path::new("/a")),
            PathBuf::from("/x/y.h")
        );
    }

    #[test]
    fn the_shipped_header_has_the_marker() {
        assert_eq!(crate::SITES_HEADER.matches(MARKER).count(), 1);
    }
}
