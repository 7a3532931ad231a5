//! Rust sites: functions and methods carrying `#[track_alloc(type)]`.
//!
//! # Single source of truth
//!
//! The attribute's spelling ([`is_track_alloc_path`]) and grammar
//! ([`parse_track_alloc_args`]) come from `asmalloc-attr`, which the
//! `#[track_alloc]` proc-macro uses too. This module adds what only the
//! generator needs:
//! - the function path ([`module_path_for_file`], [`FnPathBuilder`]):
//!   `module::Type::method`, where the module comes from the file path
//!   relative to the crate's `src/` (`lib.rs`, `main.rs`, `mod.rs` name their
//!   directory's module) plus inline `mod` blocks, `Type` is the last path
//!   segment of an `impl`'s self type (or the trait's name for a trait's
//!   default method), and a function nested in another function's body gets
//!   the outer function's name as one more segment;
//! - the site key ([`rust_site_key`]): `"{fn_path}@{file}"`. Only the
//!   generator computes it: it is written to `mallocations.json` (`key`)
//!   and `MALLOCATION_RUST_KEYS`, and its fingerprint is the site's context
//!   for keeping ids stable. The `#[track_alloc]` macro computes no key.
//!
//! At run time the site is resolved from what the macro expands to —
//! `file!()`, the line of the function's name and
//! `concat!(module_path!(), "::", name)` — against the registered table
//! (`asmalloc`'s `site::resolve::resolve_rust`, matching in
//! `site::lookup::find`): the table's file must equal `file!()` or be a
//! suffix of it starting after a `/`, the line must be equal, and the
//! function must be equal or equal in its last `::` segment (the table's
//! `module::Type::method` against the macro's `crate::module::method`).
//! The type is not compared. So the line recorded here must be the line of
//! the function's name, and the last segment of the path must be the
//! function's own name.

use syn::visit::Visit;
use syn::{Attribute, Ident};

use crate::site::{FoundSite, SiteLang, fingerprint};

// The attribute's spelling and grammar live in `asmalloc-attr`, shared with
// the proc-macro, so the two can never disagree on what is a tracked fn.
pub use asmalloc_attr::{ATTRIBUTE, is_track_alloc_path, parse_track_alloc_args, track_alloc_type};

/// Module path segments of a file: `src/a/b.rs` → `[a, b]`,
/// `src/a/mod.rs` → `[a]`, `src/lib.rs` → `[]`. The path is taken after its
/// last `src` component if it has one, else as relative to `src/`.
pub fn module_path_for_file(file_rel: &str) -> Vec<String> {
    let comps: Vec<&str> = file_rel
        .split(['/', '\\'])
        .filter(|c| !c.is_empty())
        .collect();
    let mut after = comps
        .iter()
        .rposition(|c| *c == "src")
        .map_or(&comps[..], |p| &comps[p + 1..]);
    // `src/bin/NAME.rs` is the root of binary NAME; in `src/bin/NAME/`,
    // `main.rs` is its root and `m.rs` its module `m`.
    if after.len() >= 2 && after[0] == "bin" {
        if after.len() == 2 {
            return Vec::new();
        }
        after = &after[2..];
    }
    let mut out: Vec<String> = after.iter().map(|c| (*c).to_owned()).collect();
    if let Some(last) = out.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(&last);
        if !(matches!(stem, "lib" | "main" | "mod") || (after.len() == 1 && stem == "build")) {
            out.push(stem.to_owned());
        }
    }
    out
}

/// The site key of a Rust site, `"{fn_path}@{file_rel}"`: the table's
/// `key` field and `MALLOCATION_RUST_KEYS` entry. The runtime does not use
/// it (it matches by file, line and function name; see the module docs).
pub fn rust_site_key(file_rel: &str, fn_path: &str) -> String {
    format!("{fn_path}@{file_rel}")
}

/// Builds `module::Type::method` paths while walking a file.
#[derive(Clone, Debug, Default)]
pub struct FnPathBuilder {
    segments: Vec<String>,
}

impl FnPathBuilder {
    /// Starts at a file's module.
    pub fn for_file(file_rel: &str) -> FnPathBuilder {
        FnPathBuilder {
            segments: module_path_for_file(file_rel),
        }
    }

    /// Enters a scope (inline module, impl type, outer function).
    pub fn push(&mut self, seg: impl Into<String>) {
        self.segments.push(seg.into());
    }

    /// Leaves the innermost scope.
    pub fn pop(&mut self) {
        self.segments.pop();
    }

    /// The path of a function named `name` in the current scope.
    pub fn path_of(&self, name: &str) -> String {
        let mut s = self.segments.join("::");
        if !s.is_empty() {
            s.push_str("::");
        }
        s.push_str(name);
        s
    }
}

/// A problem in one Rust file: line, column, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RustProblem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Scans one Rust file. A parse failure is an `Err`; a malformed attribute
/// is reported in the problem list and its function skipped.
pub fn scan_rust(
    src: &str,
    file_rel: &str,
) -> Result<(Vec<FoundSite>, Vec<RustProblem>), RustProblem> {
    let file = syn::parse_file(src).map_err(|e| {
        let start = e.span().start();
        RustProblem {
            line: start.line,
            column: start.column + 1,
            message: format!("Rust that does not parse: {e}"),
        }
    })?;
    let mut v = Visitor {
        path: FnPathBuilder::for_file(file_rel),
        file_rel,
        sites: Vec::new(),
        problems: Vec::new(),
    };
    v.visit_file(&file);
    Ok((v.sites, v.problems))
}

struct Visitor<'a> {
    path: FnPathBuilder,
    file_rel: &'a str,
    sites: Vec<FoundSite>,
    problems: Vec<RustProblem>,
}

fn self_type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .map_or_else(String::new, |s| s.ident.to_string()),
        syn::Type::Reference(r) => self_type_name(&r.elem),
        other => quote::quote!(#other).to_string().replace(' ', ""),
    }
}

impl Visitor<'_> {
    fn check(&mut self, attrs: &[Attribute], ident: &Ident) {
        for attr in attrs {
            match track_alloc_type(attr) {
                None => {}
                Some(Err(e)) => {
                    let start = e.span().start();
                    self.problems.push(RustProblem {
                        line: start.line,
                        column: start.column + 1,
                        message: e.to_string(),
                    });
                }
                Some(Ok(ty)) => {
                    let name = ident.to_string();
                    let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
                    let function = self.path.path_of(&name);
                    let start = ident.span().start();
                    self.sites.push(FoundSite {
                        file: String::new(),
                        line: start.line as u32,
                        column: start.column as u32 + 1,
                        context: fingerprint(rust_site_key(self.file_rel, &function).as_bytes()),
                        function,
                        type_name: asmalloc_attr::type_name(&ty),
                        callee: name,
                        lang: SiteLang::Rust,
                    });
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Visitor<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if m.content.is_some() {
            self.path.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.path.pop();
        }
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        self.path.push(self_type_name(&i.self_ty));
        syn::visit::visit_item_impl(self, i);
        self.path.pop();
    }

    fn visit_item_trait(&mut self, t: &'ast syn::ItemTrait) {
        self.path.push(t.ident.to_string());
        syn::visit::visit_item_trait(self, t);
        self.path.pop();
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.check(&f.attrs, &f.sig.ident);
        self.path.push(f.sig.ident.to_string());
        syn::visit::visit_item_fn(self, f);
        self.path.pop();
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.check(&f.attrs, &f.sig.ident);
        self.path.push(f.sig.ident.to_string());
        syn::visit::visit_impl_item_fn(self, f);
        self.path.pop();
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if f.default.is_some() {
            self.check(&f.attrs, &f.sig.ident);
        }
        self.path.push(f.sig.ident.to_string());
        syn::visit::visit_trait_item_fn(self, f);
        self.path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths() {
        assert!(module_path_for_file("src/lib.rs").is_empty());
        assert!(module_path_for_file("main.rs").is_empty());
        assert_eq!(module_path_for_file("src/a/mod.rs"), ["a"]);
        assert_eq!(module_path_for_file("crates/x/src/a/b.rs"), ["a", "b"]);
        assert_eq!(module_path_for_file("a/b.rs"), ["a", "b"]);
        assert!(module_path_for_file("src/bin/server.rs").is_empty());
        assert!(module_path_for_file("bin/server.rs").is_empty());
        assert!(module_path_for_file("src/bin/server/main.rs").is_empty());
        assert_eq!(module_path_for_file("src/bin/server/net.rs"), ["net"]);
    }

    #[test]
    fn args_grammar() {
        let ok = parse_track_alloc_args(quote::quote!(cache)).unwrap();
        assert_eq!(ok, "cache");
        assert!(parse_track_alloc_args(quote::quote!(cache,)).is_ok());
        assert!(parse_track_alloc_args(quote::quote!()).is_err());
        assert!(parse_track_alloc_args(quote::quote!(a, b)).is_err());
        assert!(parse_track_alloc_args(quote::quote!("a")).is_err());
    }

    #[test]
    fn paths_and_keys() {
        let src = "#[track_alloc(cache)] fn top() {}\n\
                   mod inner { impl<T> Foo<T> { #[asmalloc::track_alloc(buf)] pub fn m(&self) {} } }\n\
                   trait Tr { #[track_alloc(x)] fn d(&self) {} }\n\
                   fn outer() { #[track_alloc(y)] fn nested() {} }\n\
                   #[track_alloc] fn bad() {}\n";
        let (sites, problems) = scan_rust(src, "src/net/mod.rs").unwrap();
        let got: Vec<_> = sites
            .iter()
            .map(|s| (s.function.as_str(), s.type_name.as_str(), s.line))
            .collect();
        assert_eq!(
            got,
            [
                ("net::top", "cache", 1),
                ("net::inner::Foo::m", "buf", 2),
                ("net::Tr::d", "x", 3),
                ("net::outer::nested", "y", 4)
            ]
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 5);
        assert_eq!(
            rust_site_key("src/net/mod.rs", "net::top"),
            "net::top@src/net/mod.rs"
        );
    }

    #[test]
    fn parse_error_has_line() {
        let e = scan_rust("fn a() {}\nfn b( {", "x.rs").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
