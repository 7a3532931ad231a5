//! The parts of the `asmalloc` command that are useful outside it.
//!
//! Only the log reader ([`log`]): the fuzz target (`fuzz/`) and the
//! workspace's corpus replay feed it bytes, which they could not do to a
//! module private to the binary. The command itself (`src/main.rs`) uses
//! it from here; nothing else of the command is a library.
#![deny(unsafe_code)]

pub mod log;
