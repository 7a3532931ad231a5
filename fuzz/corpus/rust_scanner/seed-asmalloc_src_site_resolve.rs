//! Resolving a call site to its id in the registered table.
//!
//! C call sites (through the force-included `asmalloc_sites.h`) and Rust
//! `#[track_alloc]` functions know their file, line and function at compile
//! time but not the table's id, which the generator assigns. They resolve it
//! once, at their first call, and cache it (matching: [`super::lookup`]). A
//! table whose lines have shifted therefore never lends a site another
//! function's name: the site is named at run time instead (a dynamic site),
//! with a one-time "table is stale" warning.

use std::sync::atomic::AtomicBool;

use super::dynamic::dynamic_site_typed;
use super::lookup::find;
use super::registered_sites;

static WARNED_STALE: AtomicBool = AtomicBool::new(false);

fn warn_stale(file: &str, line: u32, function: &str) {
    crate::diag::warn_once(
        &WARNED_STALE,
        format_args!(
            "{file}:{line} ({function}) is not in the site table: the table is stale \
             (regenerate it with asmalloc-gen; a build.rs using asmalloc_gen::Builder does it on \
             every build), or the call is inside a C macro (the table lists it at the #define). \
             Naming such sites at run time. (warned once)"
        ),
    );
}

/// Resolves a C call site (file as `__FILE__` spelled it, line, `__func__`)
/// to its id in the registered table; a site the table lacks gets a dynamic
/// id with its real name and a one-time "table is stale" warning.
pub fn resolve(type_id: u16, file: &'static str, line: u32, function: &'static str) -> u16 {
    if let Some(site) = find(file, line, function, Some(type_id)) {
        return site.id;
    }
    if registered_sites().is_some() {
        warn_stale(file, line, function);
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
    if table.is_some() {
        warn_stale(file, line, function);
    }
    let type_id = table
        .and_then(|t| t.types.iter().position(|t| *t == type_name))
        .map_or(0, |i| i as u16);
    (
        dynamic_site_typed(type_id, type_name, file, line, function),
        type_id,
    )
}
