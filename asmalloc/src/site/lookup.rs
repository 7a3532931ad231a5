//! Finding a call site's entry in the registered table.
//!
//! A site matches a table entry when the line is equal, the file is the
//! same (the compiler's spelling of the path may be longer than the
//! table's, which is relative to the scanned root), and the function is
//! the same (the table may qualify it: `module::Type::method`). Used by
//! [`super::resolve`] (a call site's first call) and by
//! [`super::dynamic`] (a site named before the table was registered moves
//! to its table id). Depends on nothing but the registered table.

use super::{Site, registered_sites};

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

/// The registered table's entry for a call site, if it has one. Several
/// calls on one line (`free(strdup(s))`) are told apart by their type when
/// the caller knows it (`type_id`), else the first entry is taken.
pub(super) fn find(
    file: &str,
    line: u32,
    function: &str,
    type_id: Option<u16>,
) -> Option<&'static Site> {
    let mut candidates = registered_sites()?.sites.iter().skip(1).filter(move |s| {
        s.line == line && same_file(file, s.file) && same_function(function, s.function)
    });
    let first = candidates.next()?;
    match type_id {
        Some(t) if first.type_id != t => candidates.find(|s| s.type_id == t).or(Some(first)),
        _ => Some(first),
    }
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
