#![no_main]
//! Fuzz target `rust_scanner`: see `asmalloc_fuzz_checks::rust_scanner::check` for what it
//! checks, docs/fuzzing.md for how to run it.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| asmalloc_fuzz_checks::rust_scanner::check(data));
