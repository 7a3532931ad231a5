#![no_main]
//! Fuzz target `env`: see `asmalloc_fuzz_checks::env::check` for what it
//! checks, docs/fuzzing.md for how to run it.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| asmalloc_fuzz_checks::env::check(data));
