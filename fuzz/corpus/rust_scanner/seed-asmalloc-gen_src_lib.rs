//! `asmalloc-gen` writes a program's *mallocation table*: every place in its
//! C and Rust sources where memory is allocated or freed, each with a small,
//! stable id. The asmalloc runtime counts bytes by id; the table is how its
//! reports say `pool.c:212 pool_grow()` instead of `site 17`.
//!
//! # Why a generator
//!
//! The original ASMalloc shipped a hand-written sample table and asked the
//! programmer to pass the right number to `asm_mallocation_set` before every
//! allocation. Hand-kept tables go stale, and a stale table mislabels sites
//! silently. Here the table is derived from the sources on every build, ids
//! survive edits, and C call sites get their id through a force-included
//! header ([`SITES_HEADER`]) instead of numbers written by hand.
//!
//! # How
//!
//! 1. [`scan`] walks the tree (`ignore`'s walker: `.gitignore`d files,
//!    hidden entries, `target`/`build`/`node_modules`, [`glob`] excludes and
//!    the generator's own output skipped; symlink loops and bad files are
//!    warnings).
//! 2. C/C++ files go through a real lexer ([`c_lexer`]: comments, literals,
//!    continuations) and a site finder ([`c_sites`]: `#if 0`, `#define`
//!    bodies, declarations vs calls, enclosing functions). Rust files are
//!    parsed with `syn` ([`rust_sites`]: `#[track_alloc(type)]`, the
//!    function path, and the line the runtime matches the macro's site by).
//! 3. [`ids`] matches the new sites against the previous table
//!    (`mallocations.json`) so surviving sites keep their ids; removed ids are
//!    retired, never reused.
//! 4. [`emit`] writes `mallocations.h` + `mallocations.c` (C, registering
//!    the table with the LD_PRELOAD runtime), `mallocations.rs` (a `static`
//!    [`asmalloc::SiteTable`]-typed table) and `mallocations.json`;
//!    [`write`](mod@write) writes a file only when its bytes change, atomically.
//!
//! [`Builder`] is the entry point for `build.rs`. The command line
//! (`cli::run`, used by the `asmalloc-gen` binary and by `asmalloc gen`)
//! needs the `cli` feature, so a build script using this library does not
//! compile clap. See `docs/generator.md` for the user guide.
//!
//! ```no_run
//! // build.rs of a Rust program
//! let out = std::env::var("OUT_DIR").unwrap();
//! asmalloc_gen::Builder::new().scan("src").write_rust(&out);
//! // main.rs: include!(concat!(env!("OUT_DIR"), "/mallocations.rs"));
//! ```
//!
//! [`asmalloc::SiteTable`]: https://docs.rs/asmalloc

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod builder;
pub mod c_lexer;
pub mod c_sites;
#[cfg(feature = "cli")]
pub mod cli;
pub mod emit;
pub mod error;
pub mod glob;
pub mod ids;
pub mod rust_sites;
pub mod scan;
pub mod site;
pub mod types;
pub mod write;

pub use builder::{Builder, CheckReport, Generated, WriteReport};
pub use emit::Format;
pub use error::{Error, Warning};
pub use ids::{Entry, Table};
pub use scan::Lang;
pub use site::{FoundSite, SiteLang};

/// The force-include header for C programs (`-include asmalloc_sites.h`).
pub const SITES_HEADER: &str = include_str!("../../include/asmalloc_sites.h");

/// The file name of [`SITES_HEADER`].
pub const SITES_HEADER_FILE: &str = "asmalloc_sites.h";

/// Writes [`SITES_HEADER`] into `dir` (only if it changed).
pub fn write_sites_header(dir: impl AsRef<std::path::Path>) -> Result<std::path::PathBuf, Error> {
    let path = dir.as_ref().join(SITES_HEADER_FILE);
    write::write_if_changed(&path, SITES_HEADER.as_bytes())?;
    Ok(path)
}
