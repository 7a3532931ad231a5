//! `mallocations.rs`: the table as a `static` of the runtime's
//! [`asmalloc::SiteTable`](../../asmalloc/site/struct.SiteTable.html), for
//! `include!(concat!(env!("OUT_DIR"), "/mallocations.rs"))`.
//!
//! The file holds only outer items (no inner attributes or `//!` docs), so
//! it can be included in any module; every item is `#[allow(dead_code)]` so
//! a program that uses part of the table gets no warning.

use std::fmt::Write as _;

use crate::emit::BANNER;
use crate::ids::Table;
use crate::types::type_const_suffix;

/// The Rust module text.
pub fn module(table: &Table) -> String {
    let mut o = String::new();
    let n = table.num_mallocations();
    let nt = table.types.len();
    let _ = write!(
        o,
        "// {BANNER}.\n\
//\n\
// The mallocation table of this program. Include it with\n\
//     include!(concat!(env!(\"OUT_DIR\"), \"/mallocations.rs\"));\n\
// and register it with `asmalloc::register_sites(&MALLOCATIONS)`.\n\
\n\
/// Number of sites, including entry 0 (no site).\n\
#[allow(dead_code)]\n\
pub const NUM_MALLOCATIONS: usize = {n};\n\
\n\
/// Number of site types.\n\
#[allow(dead_code)]\n\
pub const NUM_MALLOCATION_TYPES: usize = {nt};\n\
\n\
/// Type names by type id.\n\
#[allow(dead_code)]\n\
pub const MALLOCATION_TYPES: [&str; NUM_MALLOCATION_TYPES] = [\n"
    );
    for t in &table.types {
        let _ = writeln!(o, "    {t:?},");
    }
    o.push_str(
        "];\n\n/// Sites by id; entry 0 is no site.\n\
         #[allow(dead_code)]\n\
         pub const MALLOCATION_SITES: [::asmalloc::Site; NUM_MALLOCATIONS] = [\n    \
         ::asmalloc::Site::new(0, 0, \"\", 0, \"\"),\n",
    );
    for e in &table.entries {
        if e.retired {
            let _ = writeln!(
                o,
                "    ::asmalloc::Site::new({}, 0, \"\", 0, \"\"), // retired",
                e.id
            );
        } else {
            let _ = writeln!(
                o,
                "    ::asmalloc::Site::new({}, {}, {:?}, {}, {:?}),",
                e.id,
                table.type_id(e),
                e.file,
                e.line,
                e.function
            );
        }
    }
    o.push_str(
        "];\n\n/// The table, for `asmalloc::register_sites(&MALLOCATIONS)`.\n\
         #[allow(dead_code)]\n\
         pub static MALLOCATIONS: ::asmalloc::SiteTable =\n    \
         ::asmalloc::SiteTable::new(&MALLOCATION_TYPES, &MALLOCATION_SITES);\n",
    );
    for (i, t) in table.types.iter().enumerate() {
        let _ = write!(
            o,
            "\n/// Type id of `{t}`.\n#[allow(dead_code)]\npub const MALLOCATION_TYPE_{}: u16 = {i};\n",
            type_const_suffix(t)
        );
    }
    let mut keys: Vec<(&str, u16)> = table
        .live()
        .filter_map(|e| e.key.as_deref().map(|k| (k, e.id)))
        .collect();
    keys.sort_unstable();
    let _ = write!(
        o,
        "\n/// Rust sites by key (`asmalloc_gen::rust_sites::rust_site_key`), sorted.\n\
         #[allow(dead_code)]\n\
         pub const MALLOCATION_RUST_KEYS: [(&str, u16); {}] = [\n",
        keys.len()
    );
    for (k, id) in keys {
        let _ = writeln!(o, "    ({k:?}, {id}),");
    }
    o.push_str("];\n");
    o
}
