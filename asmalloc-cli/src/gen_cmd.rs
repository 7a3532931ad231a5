//! `asmalloc gen`: the site-table generator's command line
//! (`asmalloc_gen::cli`), run in this process, so users have one tool and
//! need no `asmalloc-gen` binary.

use std::ffi::OsString;
use std::process::ExitCode;

pub(crate) fn gen_cmd(args: Vec<OsString>) -> ExitCode {
    asmalloc_gen::cli::run(std::iter::once(OsString::from("asmalloc gen")).chain(args))
}
