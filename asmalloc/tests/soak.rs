//! The exactness soak over `System` (`AsmAlloc<System>`): see
//! `soak/scenario.rs`. The same scenario runs over jemalloc in
//! `soak_jemalloc.rs`.

mod common;
#[path = "soak/scenario.rs"]
mod scenario;

#[global_allocator]
static GLOBAL: asmalloc::AsmAlloc = asmalloc::AsmAlloc::system();

#[test]
fn soak_matches_the_model() {
    scenario::soak_matches_the_model();
}
