//! Workload (c) under `AsmAlloc<System>` (see `src/rust_churn.rs`). The
//! `ASMALLOC_*` environment applies (e.g. `ASMALLOC_LOG` starts the leak
//! monitor); each thread's blocks are charged to a site of its own.

#[path = "../rust_churn.rs"]
mod rust_churn;

#[global_allocator]
static GLOBAL: asmalloc::AsmAlloc = asmalloc::AsmAlloc::system();

fn main() {
    asmalloc::configure_from_env();
    rust_churn::main_with("rust_churn_system", |site| asmalloc::enter_scope(site, 1));
}
