//! The exactness soak (`soak/scenario.rs`) over jemalloc:
//! `AsmAlloc<Jemalloc>` as the global allocator, and a model charging what
//! jemalloc itself says each block holds (`sallocx`, less the 8-byte tag).
//!
//! Needs the `jemalloc` feature: `cargo test -p asmalloc --features jemalloc
//! --test soak_jemalloc`; the plain `cargo test --workspace` runs it through
//! asmalloc-jemalloc-tests (a nested cargo call), with the exactness tests.
#![cfg(feature = "jemalloc")]

mod common;
#[path = "soak/scenario.rs"]
mod scenario;

use asmalloc::{AsmAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: AsmAlloc<Jemalloc> = AsmAlloc::jemalloc();

/// jemalloc's usable size of the block, less the tag (never below the
/// request).
fn jemalloc_charged(ptr: *mut u8, requested: usize, _align: usize) -> usize {
    // SAFETY: the soak passes live blocks of the global allocator, which are
    // jemalloc blocks.
    let usable = unsafe { tikv_jemalloc_sys::sallocx(ptr.cast(), 0) };
    usable
        .saturating_sub(asmalloc::__private::tag::TAG_SIZE)
        .max(requested)
}

#[test]
fn soak_matches_the_model() {
    common::set_charge_model(jemalloc_charged);
    scenario::soak_matches_the_model();
}
