//! The fixed allocation-type ids are written in three places that must
//! agree: the generator's `BUILTIN_TYPES` (the ids it writes into every
//! table), the `ASMALLOC_TYPE_*` constants of the force-include header
//! (`include/asmalloc_sites.h`, which C call sites pass to the runtime),
//! and the runtime's names for them when no table is registered.

use asmalloc_gen::types::BUILTIN_TYPES;

#[test]
fn the_header_constants_are_the_generators_ids() {
    let header = asmalloc_gen::SITES_HEADER;
    let mut seen = 0;
    for line in header.lines() {
        let Some(rest) = line.strip_prefix("#define ASMALLOC_TYPE_") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let name = words.next().unwrap();
        let id: usize = words.next().unwrap().parse().unwrap();
        assert_eq!(
            BUILTIN_TYPES.get(id),
            Some(&name),
            "ASMALLOC_TYPE_{name} = {id}"
        );
        seen += 1;
    }
    // Every built-in type but NONE (0) has its constant.
    assert_eq!(seen, BUILTIN_TYPES.len() - 1);
}

#[test]
fn the_runtime_names_the_same_ids() {
    assert_eq!(
        &asmalloc::__private::site::C_TYPE_NAMES[..],
        BUILTIN_TYPES,
        "asmalloc's C_TYPE_NAMES and asmalloc-gen's BUILTIN_TYPES"
    );
}

#[test]
fn the_c_family_maps_to_builtin_types() {
    for (function, ty) in asmalloc_gen::types::C_ALLOC_FUNCTIONS {
        assert!(
            BUILTIN_TYPES.contains(ty),
            "{function} has type {ty}, not a built-in"
        );
    }
}
