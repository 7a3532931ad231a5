//! Which functions are wrappers: the built-in list of popular libraries'
//! allocation wrappers, the user's patterns (`ASMALLOC_WRAPPERS`), and
//! matching a symbol name against them.
//!
//! Names are matched as they stand in the symbol table: C names as
//! written, C++ names mangled (`_Znwm` is `operator new(unsigned long)`).
//! A pattern may use `*` (any run of characters) and `?` (one character).

/// Wrappers recognised without being named (unless
/// `ASMALLOC_BUILTIN_WRAPPERS=0`), by library. Each is a function whose
/// own call to the allocator says nothing about who wanted the memory.
/// `docs/caller-sites.md` lists them for users; keep the two in step.
pub(crate) const BUILTIN: &[&str] = &[
    // libstdc++ / libc++: operator new and new[] (plain, nothrow, aligned).
    "_Znwm",
    "_Znam",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
    // GLib.
    "g_malloc",
    "g_malloc0",
    "g_realloc",
    "g_try_malloc",
    "g_try_malloc0",
    "g_try_realloc",
    "g_malloc_n",
    "g_malloc0_n",
    "g_realloc_n",
    "g_try_malloc_n",
    "g_try_malloc0_n",
    "g_try_realloc_n",
    "g_aligned_alloc",
    "g_aligned_alloc0",
    "g_strdup",
    "g_strndup",
    "g_memdup",
    "g_memdup2",
    "g_slice_alloc",
    "g_slice_alloc0",
    "g_slice_copy",
    // GNU and gnulib (coreutils, grep, tar, bash, git's xmalloc family…).
    "xmalloc",
    "xzalloc",
    "xcalloc",
    "xrealloc",
    "xreallocarray",
    "xnmalloc",
    "xnrealloc",
    "x2realloc",
    "x2nrealloc",
    "xcharalloc",
    "xmemdup",
    "xstrdup",
    "xstrndup",
    "ximalloc",
    "xizalloc",
    "xicalloc",
    "xirealloc",
    "xireallocarray",
    "ximemdup",
    "ximemdup0",
    "xmallocz",
    "xmallocz_gently",
    "xmemdupz",
    "do_xmalloc",
    // Redis and Valkey (zmalloc.c).
    "zmalloc",
    "zcalloc",
    "zrealloc",
    "zstrdup",
    "zmalloc_usable",
    "zcalloc_usable",
    "zrealloc_usable",
    "ztrymalloc",
    "ztrycalloc",
    "ztryrealloc",
    "ztrymalloc_usable",
    "ztrycalloc_usable",
    "ztryrealloc_usable",
    "ztrymalloc_usable_internal",
    "ztrycalloc_usable_internal",
    "ztryrealloc_usable_internal",
    "zmalloc_no_tcache",
    "zcalloc_num",
    // Lua.
    "luaM_malloc_",
    "luaM_realloc_",
    "luaM_saferealloc_",
    "luaM_growaux_",
    "luaM_shrinkvector_",
    "l_alloc",
    // CPython.
    "PyMem_Malloc",
    "PyMem_Calloc",
    "PyMem_Realloc",
    "PyMem_RawMalloc",
    "PyMem_RawCalloc",
    "PyMem_RawRealloc",
    "PyObject_Malloc",
    "PyObject_Calloc",
    "PyObject_Realloc",
    "_PyMem_RawMalloc",
    "_PyMem_RawCalloc",
    "_PyMem_RawRealloc",
    "_PyObject_Malloc",
    "_PyObject_Calloc",
    "_PyObject_Realloc",
    "_PyMem_RawStrdup",
    "_PyMem_Strdup",
    // Perl.
    "Perl_safesysmalloc",
    "Perl_safesyscalloc",
    "Perl_safesysrealloc",
    // OpenSSL.
    "CRYPTO_malloc",
    "CRYPTO_zalloc",
    "CRYPTO_realloc",
    "CRYPTO_clear_realloc",
    "CRYPTO_strdup",
    "CRYPTO_strndup",
    "CRYPTO_memdup",
    // SQLite.
    "sqlite3_malloc",
    "sqlite3_malloc64",
    "sqlite3_realloc",
    "sqlite3_realloc64",
    "sqlite3Malloc",
    "sqlite3MallocZero",
    "sqlite3Realloc",
    "sqlite3MemMalloc",
    "sqlite3MemRealloc",
    "sqlite3DbMallocRaw",
    "sqlite3DbMallocRawNN",
    "sqlite3DbMallocZero",
    "sqlite3DbRealloc",
    "sqlite3DbReallocOrFree",
    "sqlite3DbStrDup",
    "sqlite3DbStrNDup",
    // Aerospike (cf_malloc & co., what the original ASMalloc tracked).
    "cf_malloc",
    "cf_malloc_ns",
    "cf_calloc",
    "cf_calloc_ns",
    "cf_realloc",
    "cf_realloc_ns",
    "cf_strdup",
    "cf_strndup",
    "cf_valloc",
    // libxml2.
    "xmlStrdup",
    "xmlStrndup",
];

/// True if `name` matches `pattern` (`*`: any run, `?`: one character).
pub(crate) fn matches(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative glob with one backtracking point (the last `*`).
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Parses `ASMALLOC_WRAPPERS`: names or patterns separated by commas
/// (spaces around them are ignored).
pub(crate) fn parse_list(value: &str) -> Result<Vec<Box<str>>, String> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(bad) = item.chars().find(|c| {
            !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$' | '*' | '?' | '@'))
        }) {
            return Err(format!(
                "'{item}' is not a function name or pattern ('{bad}')"
            ));
        }
        if item.bytes().all(|c| c == b'*' || c == b'?') {
            return Err(format!("'{item}' would make every function a wrapper"));
        }
        out.push(item.into());
    }
    if out.is_empty() {
        return Err("no function named".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(matches(b"xmalloc", b"xmalloc"));
        assert!(!matches(b"xmalloc", b"xmalloc2"));
        assert!(matches(b"xmalloc*", b"xmalloc"));
        assert!(matches(b"xmalloc*", b"xmalloc_gently"));
        assert!(!matches(b"xmalloc*", b"do_xmalloc"));
        assert!(matches(b"*alloc", b"do_xmalloc"));
        assert!(matches(b"z*alloc*", b"ztrymalloc_usable"));
        assert!(matches(b"g_?alloc", b"g_malloc"));
        assert!(!matches(b"g_?alloc", b"g_malloc0"));
    }

    #[test]
    fn lists_parse_and_bad_ones_say_why() {
        let list = parse_list(" zmalloc, ztrymalloc_usable ,xmalloc*,").unwrap();
        let names: Vec<&str> = list.iter().map(|s| &**s).collect();
        assert_eq!(names, ["zmalloc", "ztrymalloc_usable", "xmalloc*"]);
        assert!(parse_list("x malloc").unwrap_err().contains("'x malloc'"));
        assert!(parse_list("*").unwrap_err().contains("every function"));
        assert!(parse_list(" , ").unwrap_err().contains("no function"));
    }

    #[test]
    fn the_builtin_list_has_no_duplicates() {
        let mut seen = std::collections::BTreeSet::new();
        for name in BUILTIN {
            assert!(seen.insert(name), "{name} twice");
        }
    }
}
