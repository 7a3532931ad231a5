//! Workload (c) under `AsmAlloc<Jemalloc>` (see `../../../src/rust_churn.rs`).
//! The `ASMALLOC_*` environment applies; each thread's blocks are charged to
//! a site of its own.

#[path = "../../../src/rust_churn.rs"]
mod rust_churn;

#[global_allocator]
static GLOBAL: asmalloc::AsmAlloc<tikv_jemallocator::Jemalloc> = asmalloc::AsmAlloc::jemalloc();

fn main() {
    asmalloc::configure_from_env();
    rust_churn::main_with("rust_churn_jemalloc", |site| asmalloc::enter_scope(site, 1));
}
