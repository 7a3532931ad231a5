//! `asmalloc-gen`: the command line over [`asmalloc_gen::Builder`]
//! ([`asmalloc_gen::cli`]; needs the `cli` feature).
//!
//! Exit status: 0 ok; 1 `--check` found the table stale; 2 usage or I/O
//! error; 3 the table was written (or is current) but some inputs were
//! skipped with warnings.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    asmalloc_gen::cli::run(std::env::args_os())
}
