//! `#[track_alloc(type)]`: every allocation made while the function runs —
//! in its body and its callees, until a nested tracked function takes over —
//! is charged to the function's asmalloc site, with the given type.
//!
//! Use it through the runtime crate, which re-exports it:
//!
//! ```ignore
//! #[asmalloc::track_alloc(cache)]
//! fn insert(&mut self, key: Key, value: Value) { ... }
//! ```
//!
//! The expansion is small: a `static` describing the site (type, file, line
//! of the function's name, function), and a guard that makes it the thread's
//! current site until the function returns or unwinds, when the previous
//! site comes back. The site's id is the one the generated table gives the
//! same function (the generator and this macro read the attribute with the
//! same grammar, `asmalloc-attr`); it is looked up once, at the first call.
//! An `async fn` sets its site around every poll of its future, so a task
//! that is waiting never lends its site to the executor or to other tasks.
//!
//! Misuse — no type, more than one argument, a literal, a `const fn`, an item
//! that is not a function — is a compile error at the offending span that
//! says what to write instead; the item is then emitted unchanged so that
//! error is the only one.

mod expand;

use proc_macro::TokenStream;

/// Charges the allocations of a function (and its callees) to its site.
/// See the crate documentation.
#[proc_macro_attribute]
pub fn track_alloc(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match expand::expand(args.into(), item.clone()) {
        Ok(expanded) => expanded.into(),
        Err(err) => {
            let mut out = err.to_compile_error();
            out.extend(item);
            out.into()
        }
    }
}
