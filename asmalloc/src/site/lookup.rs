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
///
/// A C call site (`type_id` known) whose function name differs from the
/// table's only because of a macro (`void FUNC(grow)(void)` is `grow` in
/// the table and `my_grow` in `__func__`: one name contains the other)
/// still matches on file, line and type — but only when the table knows no
/// function of that name in the file: if it does, the call's line is not
/// where the table has that function's sites, so the table is stale and a
/// match on the line alone would lend the call another function's site.
/// Unrelated names on the same line are a stale table too.
pub(super) fn find(
    file: &str,
    line: u32,
    function: &str,
    type_id: Option<u16>,
) -> Option<&'static Site> {
    find_in(
        registered_sites()?.sites.get(1..)?,
        file,
        line,
        function,
        type_id,
    )
}

/// [`find`] in `sites` (a table without entry 0).
fn find_in(
    sites: &'static [Site],
    file: &str,
    line: u32,
    function: &str,
    type_id: Option<u16>,
) -> Option<&'static Site> {
    let mut candidates = sites.iter().filter(move |s| {
        s.line == line && same_file(file, s.file) && same_function(function, s.function)
    });
    if let Some(first) = candidates.next() {
        return match type_id {
            Some(t) if first.type_id != t => candidates.find(|s| s.type_id == t).or(Some(first)),
            _ => Some(first),
        };
    }
    let t = type_id?;
    let related = |table: &str| {
        !function.is_empty()
            && !table.is_empty()
            && (function.contains(table) || table.contains(function))
    };
    let site = sites.iter().find(|s| {
        s.line == line && s.type_id == t && related(s.function) && same_file(file, s.file)
    })?;
    let known = sites
        .iter()
        .any(|s| s.function == function && same_file(file, s.file));
    (!known).then_some(site)
}

/// Why a call site is not in the registered table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Miss {
    /// No table file matches `__FILE__`, but this one has the same name:
    /// the table was generated under another root.
    OtherRoot(&'static str),
    /// The table has no file of that name at all.
    FileNotScanned,
    /// The table lists sites of this function in this file, at other lines
    /// (the first one given): it is older than the source.
    Stale(u32),
    /// The table knows the file but no site of this function in it: the
    /// call comes from a macro expansion the generator could not see as a
    /// site, or the function is newer than the table.
    MacroOrNew,
}

/// Finds which [`Miss`] applies to a call site [`find`] did not find.
pub(super) fn diagnose(file: &str, function: &str) -> Miss {
    match registered_sites().and_then(|t| t.sites.get(1..)) {
        Some(sites) => diagnose_in(sites, file, function),
        None => Miss::FileNotScanned,
    }
}

/// [`diagnose`] against `sites` (a table without entry 0).
fn diagnose_in(sites: &'static [Site], file: &str, function: &str) -> Miss {
    if !sites.iter().any(|s| same_file(file, s.file)) {
        let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
        let name = base(file);
        return sites
            .iter()
            .find(|s| !s.file.is_empty() && base(s.file) == name)
            .map_or(Miss::FileNotScanned, |s| Miss::OtherRoot(s.file));
    }
    sites
        .iter()
        .find(|s| {
            same_file(file, s.file) && same_function(function, s.function) && !function.is_empty()
        })
        .map_or(Miss::MacroOrNew, |s| Miss::Stale(s.line))
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

    static MACRO_NAMED: [Site; 4] = [
        Site::NONE,
        Site::new(1, 7, "src/a.c", 10, "grow"),
        Site::new(2, 7, "src/a.c", 20, "shrink"),
        Site::new(3, 2, "src/a.c", 30, "grow"),
    ];

    #[test]
    fn a_name_changed_by_a_macro_matches_on_file_line_and_type_only_when_not_stale() {
        let table = super::super::SiteTable::new(
            &["NONE", "REALLOC", "FREE", "", "", "", "", "MALLOC"],
            &MACRO_NAMED,
        );
        let sites = &table.sites[1..];
        let pick = |file: &str, line: u32, func: &str, ty: u16| {
            find_in(sites, file, line, func, Some(ty)).map(|s| s.id)
        };
        assert_eq!(pick("/b/src/a.c", 10, "grow", 7), Some(1));
        assert_eq!(
            pick("/b/src/a.c", 10, "my_grow", 7),
            Some(1),
            "FUNC(grow) is my_grow"
        );
        assert_eq!(
            pick("/b/src/a.c", 10, "my_grow", 2),
            None,
            "the type must match"
        );
        assert_eq!(
            pick("/b/src/a.c", 20, "refill", 7),
            None,
            "unrelated: stale"
        );
        assert_eq!(
            pick("/b/src/a.c", 20, "grow", 7),
            None,
            "grow is elsewhere: stale"
        );
        assert_eq!(pick("/b/src/a.c", 20, "shrink_now", 7), Some(2));
    }

    #[test]
    fn a_missing_site_is_given_its_cause() {
        let sites = &MACRO_NAMED[1..];
        assert_eq!(
            diagnose_in(sites, "/elsewhere/lib/a.c", "grow"),
            Miss::OtherRoot("src/a.c")
        );
        assert_eq!(diagnose_in(sites, "src/b.c", "grow"), Miss::FileNotScanned);
        assert_eq!(diagnose_in(sites, "src/a.c", "grow"), Miss::Stale(10));
        assert_eq!(diagnose_in(sites, "src/a.c", "fresh"), Miss::MacroOrNew);
    }

    #[test]
    fn functions_match_on_the_last_segment() {
        assert!(same_function("grow", "cache::Cache::grow"));
        assert!(same_function("my_crate::cache::grow", "cache::Cache::grow"));
        assert!(same_function("main", ""));
        assert!(!same_function("shrink", "cache::Cache::grow"));
    }
}
