//! Site types: the fixed C allocation family and user-chosen categories.
//!
//! Type ids 0..=17 are fixed in every table, whatever the language, so the
//! force-include header (`asmalloc_sites.h`) can pass them as constants and
//! the first eight keep the values of the original ASMalloc sample table.
//! Types that only a program uses (wrapper types such as `ARENA`, Rust
//! categories such as `cache`) follow in sorted order; their ids are stable
//! as long as the set of extra types does not change. Site ids, not type ids,
//! are the stable names the runtime keys on.

/// The built-in types, in id order. Index = type id.
pub const BUILTIN_TYPES: &[&str] = &[
    "NONE",
    "REALLOC",
    "FREE",
    "CALLOC",
    "VALLOC",
    "STRDUP",
    "STRNDUP",
    "MALLOC",
    "REALLOCARRAY",
    "MEMALIGN",
    "POSIX_MEMALIGN",
    "ALIGNED_ALLOC",
    "PVALLOC",
    "MALLOCX",
    "RALLOCX",
    "XALLOCX",
    "DALLOCX",
    "SDALLOCX",
];

/// The C allocation family the scanner knows without configuration:
/// `(function name, type name)`.
pub const C_ALLOC_FUNCTIONS: &[(&str, &str)] = &[
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

/// Id of a built-in type name, if it is one.
pub fn builtin_type_id(name: &str) -> Option<u16> {
    BUILTIN_TYPES
        .iter()
        .position(|t| *t == name)
        .map(|i| i as u16)
}

/// True for a name usable as a type: an identifier (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_valid_type_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The C enumerator / Rust constant suffix for a type name (`cache` → `CACHE`).
pub fn type_const_suffix(name: &str) -> String {
    name.to_ascii_uppercase()
}

/// The full type list of a table: the built-ins, then `extra` names that are
/// not built-ins, sorted and deduplicated.
pub fn type_list<'a>(extra: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut more: Vec<&str> = extra
        .into_iter()
        .filter(|t| builtin_type_id(t).is_none())
        .collect();
    more.sort_unstable();
    more.dedup();
    BUILTIN_TYPES
        .iter()
        .copied()
        .chain(more)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_order_kept() {
        assert_eq!(
            &BUILTIN_TYPES[..8],
            &[
                "NONE", "REALLOC", "FREE", "CALLOC", "VALLOC", "STRDUP", "STRNDUP", "MALLOC"
            ]
        );
        assert_eq!(builtin_type_id("MALLOC"), Some(7));
        for (_, t) in C_ALLOC_FUNCTIONS {
            assert!(builtin_type_id(t).is_some(), "{t}");
        }
    }

    #[test]
    fn list_sorted() {
        let l = type_list(["zeta", "MALLOC", "alpha", "zeta"]);
        assert_eq!(&l[18..], &["alpha".to_owned(), "zeta".to_owned()]);
        assert!(is_valid_type_name("cache_2"));
        assert!(!is_valid_type_name("2x"));
        assert!(!is_valid_type_name(""));
    }
}
