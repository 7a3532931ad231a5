//! The `#[track_alloc(type)]` attribute's grammar, in one place.
//!
//! Two programs read the attribute: the proc-macro (`asmalloc-macros`), which
//! expands it, and the generator (`asmalloc-gen`), which finds every tracked
//! function to put it in the site table. If they disagreed on what a valid
//! attribute is, a function could be tracked at run time but missing from
//! the table, or the other way round. So both call this crate, which depends
//! on `syn` alone.
//!
//! The grammar: the attribute is spelled `track_alloc`, `asmalloc::track_alloc`
//! or `::asmalloc::track_alloc`; its argument is exactly one identifier, the
//! site *type* (a category such as `cache` or `request_buffer`), optionally
//! followed by a comma.
#![forbid(unsafe_code)]

use proc_macro2::TokenStream;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Ident, Token};

/// The attribute's name.
pub const ATTRIBUTE: &str = "track_alloc";

/// Every valid form, for error messages.
pub const VALID_FORMS: &str = "#[track_alloc(cache)] or #[asmalloc::track_alloc(cache)] \
     on a fn or method with a body, where `cache` is any identifier naming the site type";

/// Whether an attribute path names `track_alloc`.
pub fn is_track_alloc_path(path: &syn::Path) -> bool {
    let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match segs.as_slice() {
        [a] => a == ATTRIBUTE,
        [c, a] => c == "asmalloc" && a == ATTRIBUTE,
        _ => false,
    }
}

/// Parses the attribute's arguments (the tokens inside the parentheses):
/// one identifier naming the site type. The error carries the span to
/// report a compile error at.
pub fn parse_track_alloc_args(tokens: TokenStream) -> syn::Result<Ident> {
    let parser = |input: ParseStream<'_>| -> syn::Result<Ident> {
        if input.is_empty() {
            return Err(input.error(format!(
                "#[track_alloc] needs a site type; write {VALID_FORMS}"
            )));
        }
        let ty: Ident = input.call(syn::ext::IdentExt::parse_any).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("#[track_alloc(..)] takes one identifier naming the site type; write {VALID_FORMS}"),
            )
        })?;
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error(format!(
                "#[track_alloc(..)] takes exactly one identifier naming the site type; write {VALID_FORMS}"
            )));
        }
        Ok(ty)
    };
    parser.parse2(tokens)
}

/// The site type of an attribute, `None` if it is not `track_alloc`.
pub fn track_alloc_type(attr: &Attribute) -> Option<syn::Result<Ident>> {
    if !is_track_alloc_path(attr.path()) {
        return None;
    }
    Some(match &attr.meta {
        syn::Meta::List(list) => parse_track_alloc_args(list.tokens.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!("#[track_alloc] needs a site type; write {VALID_FORMS}"),
        )),
    })
}

/// The type's name as the table records it (`r#type` → `type`).
pub fn type_name(ty: &Ident) -> String {
    let s = ty.to_string();
    s.strip_prefix("r#").map_or(s.clone(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote_free::toks;

    mod quote_free {
        pub fn toks(s: &str) -> proc_macro2::TokenStream {
            s.parse().unwrap()
        }
    }

    #[test]
    fn grammar() {
        assert_eq!(parse_track_alloc_args(toks("cache")).unwrap(), "cache");
        assert_eq!(parse_track_alloc_args(toks("cache,")).unwrap(), "cache");
        assert_eq!(
            type_name(&parse_track_alloc_args(toks("r#type")).unwrap()),
            "type"
        );
        for bad in ["", "\"cache\"", "a, b", "1", "a::b"] {
            let err = parse_track_alloc_args(toks(bad)).unwrap_err().to_string();
            assert!(err.contains("#[track_alloc(cache)]"), "{bad}: {err}");
        }
    }

    #[test]
    fn spellings() {
        let p = |s: &str| syn::parse_str::<syn::Path>(s).unwrap();
        assert!(is_track_alloc_path(&p("track_alloc")));
        assert!(is_track_alloc_path(&p("asmalloc::track_alloc")));
        assert!(is_track_alloc_path(&p("::asmalloc::track_alloc")));
        assert!(!is_track_alloc_path(&p("other::track_alloc")));
        assert!(!is_track_alloc_path(&p("track")));
    }
}
