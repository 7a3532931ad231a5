//! Workload (c) on raw jemalloc (`tikv_jemallocator::Jemalloc`), the
//! baseline of `rust_churn_jemalloc` (see `../../../src/rust_churn.rs`).

#[path = "../../../src/rust_churn.rs"]
mod rust_churn;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    rust_churn::main_with("rust_churn_jemalloc_raw", |_| ());
}
