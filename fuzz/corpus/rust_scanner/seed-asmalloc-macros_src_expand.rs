//! The expansion of `#[track_alloc(type)]`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Item, ItemFn, ReturnType};

use asmalloc_attr::{VALID_FORMS, parse_track_alloc_args, type_name};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let ty = parse_track_alloc_args(args)?;
    let func = parse_fn(item)?;
    if let Some(constness) = &func.sig.constness {
        return Err(syn::Error::new(
            constness.span(),
            "#[track_alloc] cannot track a `const fn`: allocations are charged at run time. \
             Remove `const`, or track the function that calls it",
        ));
    }
    let type_name = type_name(&ty);
    let name = func.sig.ident.to_string();
    let name = name.strip_prefix("r#").map_or(name.clone(), str::to_owned);
    let line = line_of(func.sig.ident.span());
    let span = func.sig.ident.span();
    let site = quote_spanned! {span=>
        static __ASMALLOC_SITE: ::asmalloc::__private::RustSite =
            ::asmalloc::__private::RustSite::new(
                #type_name,
                ::core::file!(),
                #line,
                ::core::concat!(::core::module_path!(), "::", #name),
            );
    };
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let stmts = &block.stmts;
    let body = if sig.asyncness.is_some() {
        // The site is set around each poll of the body's future, not across
        // awaits: an idle task must not lend its site to the executor.
        let annotated = match &sig.output {
            ReturnType::Type(_, ret) if !contains_impl_trait(ret) => {
                quote! { let __asmalloc_ret: #ret = { #(#stmts)* }; __asmalloc_ret }
            }
            ReturnType::Default => {
                quote! { let __asmalloc_ret: () = { #(#stmts)* }; __asmalloc_ret }
            }
            ReturnType::Type(..) => quote! { #(#stmts)* },
        };
        quote! {
            #site
            ::asmalloc::__private::Tracked::new(
                &__ASMALLOC_SITE,
                async move {
                    #[allow(unreachable_code, clippy::let_unit_value, clippy::needless_return)]
                    { #annotated }
                },
            )
            .await
        }
    } else {
        quote! {
            #site
            let __asmalloc_scope = __ASMALLOC_SITE.enter();
            #(#stmts)*
        }
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    })
}

/// The function the attribute is on, or an error that says what it is on.
fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    if let Ok(func) = syn::parse2::<ItemFn>(item.clone()) {
        return Ok(func);
    }
    if let Ok(method) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        return Err(syn::Error::new(
            method.sig.span(),
            format!(
                "#[track_alloc] needs a function body to track; put it on the implementations \
                 of this trait method instead ({VALID_FORMS})"
            ),
        ));
    }
    let what = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Struct(_)) => "a struct",
        Ok(Item::Enum(_)) => "an enum",
        Ok(Item::Const(_)) => "a const",
        Ok(Item::Static(_)) => "a static",
        Ok(Item::Impl(_)) => "an impl block (put it on each method instead)",
        Ok(Item::Trait(_)) => "a trait",
        Ok(Item::Mod(_)) => "a module",
        Ok(Item::Type(_)) => "a type alias",
        Ok(Item::Use(_)) => "a use declaration",
        _ => "this item",
    };
    Err(syn::Error::new(
        item.span(),
        format!("#[track_alloc] goes on a function or method, not on {what}; write {VALID_FORMS}"),
    ))
}

/// The 1-based line of a span, as the generator records it for the same
/// function (the line of its name).
fn line_of(span: Span) -> u32 {
    span.unwrap().line() as u32
}

fn contains_impl_trait(ty: &syn::Type) -> bool {
    quote!(#ty)
        .to_string()
        .split_whitespace()
        .any(|t| t == "impl")
}
