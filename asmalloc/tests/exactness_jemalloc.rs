//! asmalloc's exactness scenarios (`asmalloc/tests/common/exactness.rs`)
//! over jemalloc: `AsmAlloc<Jemalloc>` as the global allocator, and a model
//! that charges what jemalloc itself says the block holds — `sallocx` (its
//! radix-tree lookup of the live block) less the 8-byte tag — so the test
//! also proves that the wrapper's inline size-class computation agrees with
//! jemalloc on every block the scenarios make.
//!
//! Needs the `jemalloc` feature: `cargo test -p asmalloc --features jemalloc
//! --test exactness_jemalloc`. The plain `cargo test --workspace` runs it
//! too, through asmalloc-jemalloc-tests (a nested cargo call, so that no
//! workspace member turns the feature on for everyone).
#![cfg(feature = "jemalloc")]

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Once;

use asmalloc::{AsmAlloc, Jemalloc};
use common::exactness as scenario;

#[global_allocator]
static GLOBAL: AsmAlloc<Jemalloc> = AsmAlloc::jemalloc();

/// jemalloc's usable size of the block, less the tag (never below the
/// request).
fn jemalloc_charged(ptr: *mut u8, requested: usize, _align: usize) -> usize {
    // SAFETY: the scenarios pass live blocks of the global allocator, which
    // are jemalloc blocks.
    let usable = unsafe { tikv_jemalloc_sys::sallocx(ptr.cast(), 0) };
    usable
        .saturating_sub(asmalloc::__private::tag::TAG_SIZE)
        .max(requested)
}

fn model() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| common::set_charge_model(jemalloc_charged));
}

#[test]
fn single_thread_random_sequences_match_the_model() {
    model();
    scenario::single_thread_random_sequences_match_the_model();
}

#[test]
fn threads_freeing_each_others_blocks_match_the_model() {
    model();
    scenario::threads_freeing_each_others_blocks_match_the_model();
}

#[test]
fn thousands_of_short_threads_lose_nothing() {
    model();
    scenario::thousands_of_short_threads_lose_nothing();
}

#[test]
fn zero_sized_and_huge_requests_are_safe() {
    model();
    scenario::zero_sized_and_huge_requests_are_safe();
}

/// This thread's net bytes at `site` (no allocation, unlike a snapshot).
fn net(site: u16) -> i64 {
    asmalloc::mallocation_get(site).total_size as i64
}

/// Every size up to 20 KiB and every alignment up to a page: the charge
/// is jemalloc's size class less the tag, on allocation and on free.
#[test]
fn every_size_is_charged_its_size_class() {
    model();
    const SITE: u16 = 900;
    for align in [1usize, 8, 16, 32, 64, 4096] {
        for size in (1..=20_480).step_by(if align > 16 { 7 } else { 1 }) {
            let before = net(SITE);
            let b = common::alloc_at(SITE, size, align, false);
            assert_eq!(
                net(SITE) - before,
                b.charged as i64,
                "size {size} align {align}"
            );
            common::free(b);
            assert_eq!(net(SITE), before, "size {size} align {align}");
        }
    }
}

/// Reports describe jemalloc's heap: its totals in text and JSON, and the
/// glibc-only sections marked not applicable.
#[test]
fn reports_show_jemalloc_statistics() {
    model();
    let kept = common::alloc_at(901, 1 << 20, 8, false);
    assert!(asmalloc::report::heap_is_jemalloc());
    let stats = asmalloc::report::jemalloc_stats().expect("jemalloc statistics");
    assert!(stats.allocated >= 1 << 20, "{stats:?}");
    assert!(stats.active >= stats.allocated, "{stats:?}");
    assert!(
        stats.resident > 0 && stats.mapped >= stats.active,
        "{stats:?}"
    );
    asmalloc::set_features(asmalloc::Features::ALL);
    let snap = asmalloc::Snapshot::take();
    let mut text = Vec::new();
    asmalloc::report::write_text(&mut text, &snap, 5).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("  jemalloc: allocated "), "{text}");
    for name in ["mallinfo", "malloc_info", "malloc_stats"] {
        assert!(
            text.contains(&format!("  {name}: not applicable (jemalloc)")),
            "{text}"
        );
    }
    let mut json = Vec::new();
    asmalloc::report::write_json_line(&mut json, &snap).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert!(
        v["jemalloc"]["allocated"].as_u64().unwrap() >= 1 << 20,
        "{v}"
    );
    assert!(v["jemalloc"]["retained"].is_u64(), "{v}");
    common::free(kept);
}

/// Aligned and oversized layouts (which take jemalloc's `nallocx` path)
/// through the raw GlobalAlloc interface, realloc included.
#[test]
fn aligned_layouts_through_the_raw_interface() {
    model();
    const SITE: u16 = 902;
    for (size, align) in [(1, 4096), (3, 64), (100, 8192), (70_000, 65_536), (5, 32)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        let before = net(SITE);
        let p = {
            let _scope = asmalloc::enter_scope(SITE, 1);
            // SAFETY: non-zero size.
            unsafe { GLOBAL.alloc(layout) }
        };
        assert!(!p.is_null() && (p as usize).is_multiple_of(align));
        let charged = jemalloc_charged(p, size, align) as i64;
        assert_eq!(net(SITE) - before, charged, "{size} {align}");
        let q = {
            let _scope = asmalloc::enter_scope(SITE, 1);
            // SAFETY: live block of this layout; new size non-zero.
            unsafe { GLOBAL.realloc(p, layout, size * 3) }
        };
        assert!(!q.is_null() && (q as usize).is_multiple_of(align));
        let recharged = jemalloc_charged(q, size * 3, align) as i64;
        assert_eq!(net(SITE) - before, recharged, "{size} {align}");
        // SAFETY: live block with the realloc'd layout.
        unsafe { GLOBAL.dealloc(q, Layout::from_size_align(size * 3, align).unwrap()) };
        assert_eq!(net(SITE), before, "{size} {align}");
    }
}
