//! A call site reached before the program registered its table (another
//! constructor, a C++ static initialiser) is named at run time, and once the
//! table is registered the id it cached maps to the table's id.

use asmalloc::{Site, SiteTable};

static TABLE: SiteTable = SiteTable::new(
    &["NONE", "MALLOC"],
    &[Site::NONE, Site::new(1, 1, "src/late.c", 3, "early_init")],
);

#[test]
fn ids_cached_before_registration_move_to_the_table() {
    let early = asmalloc::__private::site::resolve(1, "/build/src/late.c", 3, "early_init");
    let missing = asmalloc::__private::site::resolve(1, "/build/src/late.c", 9, "other");
    assert!(
        early > 1 && missing > 1 && early != missing,
        "dynamic ids before the table"
    );
    assert_eq!(
        asmalloc::__private::site::current_id(early),
        early,
        "no table yet: unchanged"
    );
    asmalloc::register_sites(&TABLE).unwrap();
    assert_eq!(
        asmalloc::__private::site::current_id(early),
        1,
        "now the table's id"
    );
    assert_eq!(
        asmalloc::__private::site::current_id(early),
        1,
        "and stays so"
    );
    assert_eq!(
        asmalloc::__private::site::current_id(missing),
        missing,
        "a site the table lacks keeps its name"
    );
    assert_eq!(asmalloc::__private::site::current_id(1), 1);
    assert_eq!(
        asmalloc::__private::site::describe(missing)
            .unwrap()
            .function,
        "other"
    );
}
