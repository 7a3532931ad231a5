//! Resolving a call site to its id in the registered table.
//!
//! C call sites (through the force-included `asmalloc_sites.h`) and Rust
//! `#[track_alloc]` functions know their file, line and function at compile
//! time but not the table's id, which the generator assigns. They resolve it
//! once, at their first call, and cache it. A site matches a table entry
//! when the line is equal, the file is the same (the compiler's spelling of
//! the path may be longer than the table's, which is relative to the scanned
//! root), and the function is the same (the table may qualify it:
//! `module::Type::method`). A table whose lines have shifted therefore never
//! lends a site another function's name: the site is named at run time
//! instead, with a one-time "table is stale" warning.

use std::sync::atomic::AtomicBool;

use super::dynamic::dynamic_site_typed;
use super::registered_sites;

static WARNED_STALE: AtomicBool = AtomicBool::new(false);

/// True when `path` (as the compiler spelled `__FILE__` / `file!()`) names
/// the table's `table_file`: equal, or `table_file` is a suffix of it that
/// starts at a `/`.
pub fn same_file(path: &str, table_file: &str) -> bool {
    let path = path.strip_prefix("./").unwrap_or(path);
    let table_file = table_file.strip_prefix("./").unwrap_or(table_file);
    path == table_file
        || (path.len() > table_file.len()
            && path.ends_with(table_file)
            && path.as_bytes()[path.len() - table_file.len() - 1] == b'/')
}

/// True when the function known at the call site (`__func__`, or a Rust
/// `module_path!()::name`) is the table's function: equal, or equal in the
/// last `::` segment. An empty name on either side (a table written for the
/// original 4-field struct) does not contradict.
pub fn same_function(runtime: &str, table: &str) -> bool {
    fn last(s: &str) -> &str {
        s.rsplit("::").next().unwrap_or(s)
    }
    runtime.is_empty() || table.is_empty() || runtime == table || last(runtime) == last(table)
}

fn warn_stale(file: &str, line: u32, function: &str) {
    crate::diag::warn_once(
        &WARNED_STALE,
        format_args!(
            "{file}:{line} ({function}) is not in the site table: the table is stale \
             (regenerate it with asmalloc-gen; a build.rs using asmalloc_gen::Builder does it on \
             every build), or the call is inside a C macro (the table lists it at the #define). \
             Naming such sites at run time. (warned once)"
        ),
    );
}

/// The registered table's entry for a call site, if it has one. Several
/// calls on one line (`free(strdup(s))`) are told apart by their type when
/// the caller knows it (`type_id`), else the first entry is taken.
pub(super) fn find(
    file: &str,
    line: u32,
    function: &str,
    type_id: Option<u16>,
) -> Option<&'static super::Site> {
    let mut candidates = registered_sites()?.sites.iter().skip(1).filter(move |s| {
        s.line == line && same_file(file, s.file) && same_function(function, s.function)
    });
    let first = candidates.next()?;
    match type_id {
        Some(t) if first.type_id != t => candidates.find(|s| s.type_id == t).or(Some(first)),
        _ => Some(first),
    }
}

/// Resolves a C call site (file as `__FILE__` spelled it, line, `__func__`)
/// to its id in the registered table; a site the table lacks gets a dynamic
/// id with its real name and a one-time "table is stale" warning.
pub fn resolve(type_id: u16, file: &'static str, line: u32, function: &'static str) -> u16 {
    if let Some(site) = find(file, line, function, Some(type_id)) {
        return site.id;
    }
    if registered_sites().is_some() {
        warn_stale(file, line, function);
    }
    dynamic_site_typed(type_id, "", file, line, function)
}

/// Resolves a Rust `#[track_alloc(type_name)]` function to (site id, type
/// id) in the registered table; like [`resolve`], a function the table lacks
/// is named at run time.
pub fn resolve_rust(
    type_name: &'static str,
    file: &'static str,
    line: u32,
    function: &'static str,
) -> (u16, u16) {
    if let Some(site) = find(file, line, function, None) {
        return (site.id, site.type_id);
    }
    let table = registered_sites();
    if table.is_some() {
        warn_stale(file, line, function);
    }
    let type_id = table
        .and_then(|t| t.types.iter().position(|t| *t == type_name))
        .map_or(0, |i| i as u16);
    (
        dynamic_site_typed(type_id, type_name, file, line, function),
        type_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_match_on_a_path_suffix() {
        assert!(same_file("/build/proj/src/a.c", "src/a.c"));
        assert!(same_file("./src/a.c", "src/a.c"));
        assert!(same_file("src/a.c", "src/a.c"));
        assert!(!same_file("src/xa.c", "a.c"));
        assert!(!same_file("src/a.c", "src/b.c"));
    }

    #[test]
    fn functions_match_on_the_last_segment() {
        assert!(same_function("grow", "cache::Cache::grow"));
        assert!(same_function("my_crate::cache::grow", "cache::Cache::grow"));
        assert!(same_function("main", ""));
        assert!(!same_function("shrink", "cache::Cache::grow"));
    }
}
