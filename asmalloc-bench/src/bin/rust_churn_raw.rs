//! Workload (c) on the raw system allocator (`std::alloc::System`), the
//! baseline of `rust_churn_system` (see `src/rust_churn.rs`).

#[path = "../rust_churn.rs"]
mod rust_churn;

#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() {
    rust_churn::main_with("rust_churn_raw", |_| ());
}
