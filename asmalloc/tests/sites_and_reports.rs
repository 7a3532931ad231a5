//! Site tables, naming in reports, bad input, and foreign blocks.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};

use asmalloc::{Op, Site, SiteTable, SiteTableError, Snapshot};
use common::{alloc_at, free};

#[global_allocator]
static GLOBAL: asmalloc::AsmAlloc = asmalloc::AsmAlloc::system();

static TABLE: SiteTable = SiteTable::new(
    &["NONE", "cache", "buffer"],
    &[
        Site::NONE,
        Site::new(1, 1, "src/cache.rs", 42, "cache::Cache::grow"),
        Site::new(2, 2, "src/net/buffer.rs", 7, "net::buffer::fill"),
        Site::new(3, 2, "src/net/buffer.rs", 19, "net::buffer::drain"),
        Site::new(4, 2, "src/io.rs", 3, "io::read"),
    ],
);

fn table() {
    // Every test registers; the first wins and the rest see AlreadyRegistered.
    match asmalloc::register_sites(&TABLE) {
        Ok(()) | Err(SiteTableError::AlreadyRegistered) => {}
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn bad_tables_are_refused_with_the_reason() {
    static GAP: SiteTable =
        SiteTable::new(&["NONE"], &[Site::NONE, Site::new(2, 0, "a.c", 1, "f")]);
    assert_eq!(
        GAP.validate(),
        Err(SiteTableError::IdMismatch { index: 1, id: 2 })
    );
    static BADTYPE: SiteTable =
        SiteTable::new(&["NONE"], &[Site::NONE, Site::new(1, 5, "a.c", 1, "f")]);
    let err = BADTYPE.validate().unwrap_err();
    assert!(err.to_string().contains("site 1 names type 5"), "{err}");
    static EMPTY: SiteTable = SiteTable::new(&[], &[]);
    assert_eq!(EMPTY.validate(), Err(SiteTableError::Empty));
    table();
    assert!(TABLE.validate().is_ok());
}

#[test]
fn report_names_the_top_site() {
    table();
    let mut kept = Vec::new();
    for _ in 0..50 {
        kept.push(alloc_at(1, 4000, 8, false)); // the "leak": 200 KB
        free(alloc_at(2, 100_000, 8, false)); // churn, all freed
        kept.push(alloc_at(3, 100, 8, false)); // small
    }
    let snap = Snapshot::take();
    let mut text = Vec::new();
    asmalloc::report::write_text(&mut text, &snap, 5).unwrap();
    let text = String::from_utf8(text).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("sites by net bytes"))
        .skip(2)
        .collect();
    assert!(
        rows[0].contains("src/cache.rs:42")
            && rows[0].contains("cache::Cache::grow")
            && rows[0].contains("cache"),
        "top row should name the leaking site:\n{text}"
    );
    let site1 = snap.site(1);
    assert_eq!(site1.net_count, 50);
    assert!(rows[0].contains(&site1.net_bytes.to_string()), "{text}");
    assert!(text.contains("threads:"), "{text}");
    assert!(text.contains("VmRSS"), "{text}");
    assert!(text.contains("malloc"), "{text}");
    // Site 2 churned to zero.
    assert_eq!(snap.site(2).net_bytes, 0);
    assert_eq!(snap.site(2).allocs, 50);

    let mut json = Vec::new();
    asmalloc::report::write_json_line(&mut json, &snap).unwrap();
    assert_eq!(json.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let top = &v["sites"][0];
    assert_eq!(top["file"], "src/cache.rs");
    assert_eq!(top["line"], 42);
    assert_eq!(top["function"], "cache::Cache::grow");
    assert_eq!(top["type"], "cache");
    assert_eq!(top["net_count"], 50);
    assert!(v["ops"]["malloc"]["count"].as_u64().unwrap() >= 150);
    for b in kept {
        free(b);
    }
}

#[test]
fn out_of_range_sites_fall_back_to_unknown() {
    table();
    // Site 999 is past the table's 5 entries: the block is tagged with site
    // 0 (unknown), and site 999 sees nothing.
    let b = alloc_at(999, 64, 8, false);
    // SAFETY: the block is 64 bytes plus its 8-byte tag.
    let word = unsafe { asmalloc::__private::tag::read(b.ptr.add(64)) };
    assert_eq!(
        asmalloc::__private::tag::decode(b.ptr as usize, 64, word),
        Some(0)
    );
    assert_eq!(Snapshot::take().site(999).allocs, 0);
    free(b);
    // The C-style set falls back the same way, and an unknown type becomes 0.
    asmalloc::mallocation_set(77, 4000, 10);
    let rec = asmalloc::mallocation_get(0);
    assert_eq!(rec.type_id, 0);
    assert_eq!(rec.delta_size, 10);
}

#[test]
fn dynamic_sites_get_real_names() {
    table();
    let id = asmalloc::__private::site::resolve(2, "/build/src/net/buffer.rs", 19, "drain");
    assert_eq!(
        id, 3,
        "a __FILE__ with a longer path matches the table's relative file"
    );
    let id = asmalloc::__private::site::resolve(7, "src/new.c", 5, "fresh");
    assert!(id > 4, "a site the table lacks gets a dynamic id");
    let info = asmalloc::__private::site::describe(id).unwrap();
    assert_eq!(
        (info.file, info.line, info.function, info.dynamic),
        ("src/new.c", 5, "fresh", true)
    );
    assert_eq!(
        asmalloc::__private::site::resolve(7, "src/new.c", 5, "fresh"),
        id,
        "resolved once"
    );
    let b = alloc_at(id, 128, 8, false);
    assert_eq!(
        Snapshot::take().site(id).net_count,
        1,
        "dynamic ids are accepted"
    );
    free(b);
    assert!(!asmalloc::__private::site::same_file(
        "src/xbuffer.rs",
        "buffer.rs"
    ));
    // A stale table whose line 19 now holds another function never lends
    // that function's name.
    let moved = asmalloc::__private::site::resolve(2, "src/net/buffer.rs", 19, "refill");
    assert_ne!(moved, 3);
    assert_eq!(
        asmalloc::__private::site::describe(moved).unwrap().function,
        "refill"
    );
}

#[test]
fn foreign_and_corrupted_blocks_are_counted_not_charged() {
    table();
    let layout = Layout::from_size_align(64, 8).unwrap();
    let full = Layout::from_size_align(64 + asmalloc::__private::tag::TAG_SIZE, 8).unwrap();
    let before = Snapshot::take();
    // A block the tracker never saw, freed through it.
    // SAFETY: non-zero layout; the block is freed below by GLOBAL, which
    // forwards to System with `full`.
    let foreign = unsafe { System.alloc(full) };
    // SAFETY: the block is `full.size()` bytes; fill it like a program would.
    unsafe { foreign.write_bytes(0x5a, full.size()) };
    // SAFETY: GLOBAL deallocates with layout + tag = `full`, as allocated.
    unsafe { GLOBAL.dealloc(foreign, layout) };
    // A tracked block whose tag was overwritten (a buffer overrun).
    let b = alloc_at(4, 64, 8, false);
    // SAFETY: simulating an overrun into the tag bytes of a live block.
    unsafe { b.ptr.add(64).write_bytes(0, 8) };
    let site4_before = Snapshot::take().site(4);
    free(b);
    let after = Snapshot::take();
    assert_eq!(
        after.op(Op::ForeignFree).count - before.op(Op::ForeignFree).count,
        2,
        "both frees are counted as foreign"
    );
    assert_eq!(
        after.site(4),
        site4_before,
        "no site is charged for a foreign free"
    );
}

/// The engine side of wrapper calls (`asm_wrap_enter`/`asm_wrap_exit`):
/// the outermost call owns the site until it returns, nested calls change
/// nothing, the sites of before come back, and a scope left by `longjmp`
/// (entered from a deeper frame than the current one) is taken over.
#[test]
fn wrapper_scopes_charge_the_outermost_call_and_restore_what_was_before() {
    table();
    use asmalloc::__private::engine::{
        current_scope_site, in_wrapper, wrapper_enter, wrapper_exit,
    };
    // Sites of this test only (named at run time): the tests of this
    // binary run at once, and `report_names_the_top_site` counts site 1.
    let before = asmalloc::__private::site::resolve(7, "src/wrap.rs", 2, "rust_scope");
    let _rust = asmalloc::enter_scope(before, 1);
    assert!(!in_wrapper());
    let site = asmalloc::__private::site::resolve(7, "src/wrap.c", 9, "outer_caller");
    let inner = asmalloc::__private::site::resolve(7, "src/wrap.c", 30, "inside_wrapper");
    let layout = Layout::from_size_align(48, 8).unwrap();
    // Frames: the stack grows down, so a callee's frame is lower.
    let outer = wrapper_enter(site, 7, 0x9000);
    assert!(outer && in_wrapper());
    assert_eq!(current_scope_site(), site);
    // SAFETY: non-zero layout; freed below with the same layout.
    let b = unsafe { std::alloc::alloc(layout) };
    let nested = wrapper_enter(inner, 7, 0x8000);
    assert!(!nested, "a call inside the wrapper is nested");
    // SAFETY: as above.
    let c = unsafe { std::alloc::alloc(layout) };
    assert_eq!(
        current_scope_site(),
        site,
        "the outermost call keeps the site"
    );
    wrapper_exit(nested);
    assert!(in_wrapper());
    wrapper_exit(outer);
    assert!(!in_wrapper());
    assert_eq!(
        current_scope_site(),
        before,
        "the Rust scope of before is back"
    );
    let snap = Snapshot::take();
    assert_eq!(
        snap.site(site).net_count,
        2,
        "both blocks charged to the outer call"
    );
    assert_eq!(snap.site(inner).net_count, 0);
    // SAFETY: allocated above with `layout`.
    unsafe {
        std::alloc::dealloc(b, layout);
        std::alloc::dealloc(c, layout);
    }
    // A scope left by longjmp from a deeper frame is taken over by the next
    // call from a shallower one, and its exit restores what was before the
    // abandoned one.
    assert!(wrapper_enter(inner, 7, 0x7000));
    assert!(wrapper_enter(site, 7, 0x9000), "taken over");
    assert_eq!(current_scope_site(), site);
    wrapper_exit(true);
    assert!(!in_wrapper());
    assert_eq!(current_scope_site(), before);
}

/// A site that freed everything still reports what it allocated in all,
/// and the report orders such sites by it.
#[test]
fn freed_sites_keep_their_totals_and_are_ordered_by_them() {
    table();
    let big = asmalloc::__private::site::resolve(7, "src/totals.c", 1, "big_then_freed");
    let small = asmalloc::__private::site::resolve(7, "src/totals.c", 2, "small_then_freed");
    let layout = |n| Layout::from_size_align(n, 8).unwrap();
    for (site, sizes) in [(big, [4096, 8192, 100]), (small, [16, 32, 64])] {
        let _scope = asmalloc::enter_scope(site, 7);
        for n in sizes {
            // SAFETY: non-zero layout, freed at once with the same layout.
            unsafe { std::alloc::dealloc(std::alloc::alloc(layout(n)), layout(n)) };
        }
    }
    let snap = Snapshot::take();
    let (b, s) = (snap.site(big), snap.site(small));
    assert_eq!((b.net_bytes, b.net_count, b.allocs), (0, 0, 3));
    assert_eq!((s.net_bytes, s.allocs), (0, 3));
    assert!(b.alloc_bytes >= 4096 + 8192 + 100, "{b:?}");
    assert!(
        s.alloc_bytes >= 16 + 32 + 64 && s.alloc_bytes < 4096,
        "{s:?}"
    );
    let pos = |id| snap.sites.iter().position(|x| x.id == id).unwrap();
    assert!(pos(big) < pos(small), "more allocated in all comes first");
}
