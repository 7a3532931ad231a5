//! Helpers of the tests that build third-party C code from the crates in
//! the cargo registry.

pub use asmalloc_test_support::registry_crate;
