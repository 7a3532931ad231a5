//! Exactness over `System`: after random sequences of alloc / realloc /
//! free across sites, on one thread and on several threads freeing each
//! other's blocks, every site's net bytes and blocks equal a shadow
//! model's. The scenarios live in `common/exactness.rs`; the same ones run
//! over jemalloc in asmalloc-jemalloc-tests.

mod common;

use common::exactness as scenario;

#[global_allocator]
static GLOBAL: asmalloc::AsmAlloc = asmalloc::AsmAlloc::system();

#[test]
fn single_thread_random_sequences_match_the_model() {
    scenario::single_thread_random_sequences_match_the_model();
}

#[test]
fn threads_freeing_each_others_blocks_match_the_model() {
    scenario::threads_freeing_each_others_blocks_match_the_model();
}

#[test]
fn thousands_of_short_threads_lose_nothing() {
    scenario::thousands_of_short_threads_lose_nothing();
}

#[test]
fn zero_sized_and_huge_requests_are_safe() {
    scenario::zero_sized_and_huge_requests_are_safe();
}

#[test]
fn reports_describe_glibc_over_system() {
    // Even when a workspace build turns the `jemalloc` feature on, a program
    // whose heap is System's gets glibc's sections, not jemalloc's.
    let v: Box<[u8]> = Box::new([1u8; 100]);
    assert_eq!(std::hint::black_box(v).len(), 100);
    assert!(!asmalloc::report::heap_is_jemalloc());
    let mut out = Vec::new();
    asmalloc::report::write_text(&mut out, &asmalloc::Snapshot::take(), 5).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("jemalloc"), "{text}");
}
