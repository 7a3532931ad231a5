#![no_main]
//! Fuzz target `log_reader`: see `asmalloc_fuzz_checks::log_reader::check` for what it
//! checks, docs/fuzzing.md for how to run it.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| asmalloc_fuzz_checks::log_reader::check(data));
