//! Resolving a call site to its id in the registered table.
//!
//! C call sites (through the force-included `asmalloc_sites.h`) and Rust
//! `#[track_alloc]` functions know their file, line and function at compile
//! time but not the table's id, which the generator assigns. They resolve it
//! once, at their first call, and cache it (matching: [`super::lookup`]). A
//! table whose lines have shifted therefore never lends a site another
//! function's name: the site is named at run time instead (a dynamic site),
//! with a warning, once per call site, that says why it is missing (another
//! root, a stale table, a macro the generator did not see).

use std::sync::atomic::{AtomicU32, Ordering};

use super::dynamic::{dynamic_site_typed, existing_dynamic};
use super::lookup::{Miss, diagnose, find};
use super::registered_sites;

/// Call sites warned about; past this many, one last line says so and the
/// rest are named at run time silently.
const MAX_WARNINGS: u32 = 32;
static WARNINGS: AtomicU32 = AtomicU32::new(0);

/// Says, once per call site, why the site is not in the table.
fn warn_missing(file: &str, line: u32, function: &str) {
    let n = WARNINGS.fetch_add(1, Ordering::Relaxed);
    if n > MAX_WARNINGS {
        return;
    }
    if n == MAX_WARNINGS {
        crate::diag::warn(format_args!(
            "more call sites are not in the site table; no more warnings about them"
        ));
        return;
    }
    let site = format_args!("{file}:{line} ({function}) is not in the site table");
    match diagnose(file, function) {
        Miss::OtherRoot(table_file) => crate::diag::warn(format_args!(
            "{site}: the table has `{table_file}`, so it was scanned under another root than \
             the directory __FILE__ is relative to; scan the directory the compiler runs in, \
             or one below it that holds the sources. Named at run time."
        )),
        Miss::FileNotScanned => crate::diag::warn(format_args!(
            "{site}: the table has no file of that name (outside the scanned root, excluded, \
             or new). Named at run time."
        )),
        Miss::Stale(other) => crate::diag::warn(format_args!(
            "{site}: the table lists sites of {function} in this file at other lines \
             ({other}, ...): the table is stale; regenerate it with asmalloc-gen (a build.rs \
             using asmalloc_gen::Builder does it on every build). Named at run time."
        )),
        Miss::MacroOrNew => crate::diag::warn(format_args!(
            "{site}: the table has no site of {function} in this file: the call comes from a \
             macro expansion the generator did not see (a macro defined outside the scanned \
             tree), or the function is newer than the table. Named at run time."
        )),
    }
}

/// Resolves a C call site (file as `__FILE__` spelled it, line, `__func__`)
/// to its id in the registered table; a site the table lacks gets a dynamic
/// id with its real name and a warning saying why (once per site).
pub fn resolve(type_id: u16, file: &'static str, line: u32, function: &'static str) -> u16 {
    if let Some(site) = find(file, line, function, Some(type_id)) {
        return site.id;
    }
    if registered_sites().is_some() && existing_dynamic(file, line, function).is_none() {
        warn_missing(file, line, function);
    }
    dynamic_site_typed(type_id, "", file, line, function)
}

/// Resolves a Rust `#[track_alloc(type_name)]` function to (site id, type
/// id) in the registered table; like [`resolve`], a function the table lacks
/// is named at run time.
pub fn resolve_rust(
    type_name: &'static str,
    file: &'static str,
    line: u32,
    function: &'static str,
) -> (u16, u16) {
    if let Some(site) = find(file, line, function, None) {
        return (site.id, site.type_id);
    }
    let table = registered_sites();
    if table.is_some() && existing_dynamic(file, line, function).is_none() {
        warn_missing(file, line, function);
    }
    let type_id = table
        .and_then(|t| t.types.iter().position(|t| *t == type_name))
        .map_or(0, |i| i as u16);
    (
        dynamic_site_typed(type_id, type_name, file, line, function),
        type_id,
    )
}
