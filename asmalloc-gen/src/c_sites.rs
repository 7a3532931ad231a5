//! Finds allocation call sites in lexed C/C++ and names their enclosing
//! function.
//!
//! # What counts as a site
//!
//! An identifier from the allocation family (or a configured wrapper) that is
//! *called*:
//!
//! - `malloc(n)`, also split over lines (the site is at the name's line,
//!   which is also what GCC's `__LINE__` gives for a macro call spanning
//!   lines), `(malloc)(n)`, `(*(&malloc))(n)`, `::malloc(n)`, `std::malloc(n)`;
//! - inside a `#define` body: the site is at the physical line where the
//!   call is written (a continuation line of a multi-line macro is its own
//!   line) and its function is the macro's name.
//!
//! Not sites: the name in comments, string/char literals, `#if 0` (and
//! `#elif 0`, and the `#else` of `#if 1`) blocks; declarations and
//! definitions (`void *malloc(size_t)`, `void *(malloc)(size_t)`,
//! `void *(*malloc)(size_t)` — the name follows a type-like identifier,
//! possibly through `*`/parentheses); member calls `a->free(p)`, `a.free(p)`
//! (they call a function pointer, not the allocator); a name followed by
//! `(` at file level, outside any function body and initializer, which in C
//! is always a declaration or definition, whatever precedes it
//! (`GIT_INLINE(void *) git__malloc(size_t len)`,
//! `static JEMALLOC_INLINE void *ialloc(…)`); uses without a call
//! (`f = free;`, `qsort(…, free)`); arguments of `__attribute__((malloc(free)))`
//! and similar (`__declspec`, `_Alignas`, `asm`).
//!
//! # Enclosing function
//!
//! A brace at file level opens a function body when it follows a `)` (or a
//! `;` — K&R parameter declarations — or a C++ qualifier such as `const`):
//! the function is the last identifier called at file level before it
//! (`Class::` kept for C++ definitions, names after a constructor's `:`
//! initializer list ignored). A name in a macro's parentheses right before
//! the parameter list is the real name: `BZFILE* BZ_API(BZ2_bzWriteOpen)(…)`
//! defines `BZ2_bzWriteOpen`.
//!
//! # Where the wrappers are declared
//!
//! For the configured wrappers (names that are not the C library's), the
//! scan also lists every declaration, definition and function-like macro
//! definition of the name ([`WrapperDecl`]): the generated sites header
//! must see those before it defines its macro for the name. `extern "C" {` and `namespace x {` are
//! transparent. Branches of `#if`/`#else` that each open a function header
//! (`#ifdef X void f(int a) { #else void f(void) { #endif`) are handled by
//! restoring the brace state at `#else` and keeping the first branch's at
//! `#endif`.

use std::collections::HashMap;

use crate::c_lexer::{Kind, Lexed, Token, lex};
use crate::site::{FoundSite, SiteLang, fingerprint};

/// The functions that count as sites, with their type names.
#[derive(Clone, Debug, Default)]
pub struct AllocNames {
    map: HashMap<Box<[u8]>, String>,
    max_len: usize,
}

impl AllocNames {
    /// The built-in allocation family only.
    pub fn builtin() -> AllocNames {
        let mut n = AllocNames::default();
        for (f, t) in crate::types::C_ALLOC_FUNCTIONS {
            n.insert(f, t);
        }
        n
    }

    /// Adds (or remaps) a function name.
    pub fn insert(&mut self, function: &str, type_name: &str) {
        self.max_len = self.max_len.max(function.len());
        self.map
            .insert(function.as_bytes().into(), type_name.to_owned());
    }

    /// The type of a function name, if it is one.
    #[inline]
    pub fn get(&self, name: &[u8]) -> Option<&str> {
        if name.len() > self.max_len {
            return None;
        }
        self.map.get(name).map(String::as_str)
    }

    /// True for a configured wrapper (a name that is not one of the C
    /// library's allocation family).
    pub fn is_wrapper(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
            && !crate::types::C_ALLOC_FUNCTIONS
                .iter()
                .any(|(f, _)| f.as_bytes() == name)
    }

    /// All `(function, type)` pairs, sorted.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .map(|(k, t)| (String::from_utf8_lossy(k).into_owned(), t.clone()))
            .collect();
        v.sort();
        v
    }
}

/// Identifiers that introduce an expression, so `return malloc(n)` is a call
/// even though an identifier precedes the name.
const EXPR_KEYWORDS: &[&[u8]] = &[
    b"return",
    b"else",
    b"case",
    b"do",
    b"sizeof",
    b"__extension__",
    b"throw",
    b"co_return",
    b"co_yield",
    b"co_await",
    b"typeof",
    b"__typeof__",
    b"__typeof",
    b"_Alignof",
    b"alignof",
    b"__alignof__",
    b"defined",
];

/// Identifiers whose parenthesised argument is never a call site and never a
/// function name.
const ATTRIBUTE_KEYWORDS: &[&[u8]] = &[
    b"__attribute__",
    b"__attribute",
    b"__declspec",
    b"_Alignas",
    b"alignas",
    b"__asm__",
    b"__asm",
    b"asm",
    b"_Static_assert",
    b"static_assert",
    b"__THROW",
];

/// C++ qualifiers that may stand between a function's `)` and its body.
const BODY_QUALIFIERS: &[&[u8]] = &[
    b"const",
    b"noexcept",
    b"override",
    b"final",
    b"volatile",
    b"try",
    b"__THROW",
];

/// How a wrapper's name is introduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeclKind {
    /// A declaration (`void *xmalloc(size_t);`).
    Declaration,
    /// A definition (`void *xmalloc(size_t n) { … }`).
    Definition,
    /// A function-like macro (`#define xmalloc(n) …`).
    Macro,
}

/// A declaration, definition or macro definition of a configured wrapper.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WrapperDecl {
    /// The wrapper's name.
    pub name: String,
    /// 1-based line of the name.
    pub line: u32,
    /// What it is.
    pub kind: DeclKind,
}

/// Result of scanning one file.
#[derive(Debug, Default)]
pub struct CScan {
    /// Sites, in source order (file left empty for the caller to fill).
    pub sites: Vec<FoundSite>,
    /// Declarations, definitions and macros of configured wrappers.
    pub wrapper_decls: Vec<WrapperDecl>,
    /// Function-like macros whose body calls an allocation function or
    /// wrapper, with the type of the first such call: a use of one is a
    /// site too, at the use (see [`crate::scan`]).
    pub alloc_macros: Vec<(String, String)>,
    /// Physical lines scanned.
    pub lines: u32,
}

/// Scans one C/C++ file's bytes.
pub fn scan_c(src: &[u8], names: &AllocNames) -> CScan {
    scan_c_names(src, names, false)
}

/// [`scan_c`]; with `macros`, `names` are function-like macros whose
/// bodies allocate (see [`crate::scan`]): a use of one at file level is a
/// site too (`GIT_HASHMAP_SETUP(map, …);` expands to functions that
/// allocate, and `__LINE__` in them is the use's line).
pub fn scan_c_names(src: &[u8], names: &AllocNames, macros: bool) -> CScan {
    let lexed = lex(src);
    let mut finder = Finder {
        macros,
        lx: &lexed,
        names,
        sites: Vec::new(),
        decls: Vec::new(),
        alloc_macros: Vec::new(),
    };
    let main = finder.preprocess();
    finder.structure(&main);
    let mut sites = finder.sites;
    sites.sort_by_key(|s| (s.line, s.column));
    let mut wrapper_decls = finder.decls;
    wrapper_decls.sort();
    wrapper_decls.dedup();
    CScan {
        sites,
        wrapper_decls,
        alloc_macros: finder.alloc_macros,
        lines: lexed.lines,
    }
}

struct Finder<'a, 'b> {
    macros: bool,
    lx: &'a Lexed<'b>,
    names: &'a AllocNames,
    sites: Vec<FoundSite>,
    decls: Vec<WrapperDecl>,
    alloc_macros: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
struct CondFrame {
    parent_active: bool,
    active: bool,
    taken: bool,
}

/// Constant value of an `#if`/`#elif` condition when it is obvious.
fn eval_condition(lx: &Lexed<'_>, toks: &[Token]) -> Option<bool> {
    let texts: Vec<&[u8]> = toks.iter().map(|t| lx.text(t)).collect();
    let mut t: &[&[u8]] = &texts;
    while t.len() >= 2 && t[0] == b"(" && t[t.len() - 1] == b")" {
        t = &t[1..t.len() - 1];
    }
    match t {
        [b"0"] | [b"false"] => Some(false),
        [b"1"] | [b"true"] => Some(true),
        [b"0", b"&&", ..] => Some(false),
        [b"1", b"||", ..] => Some(true),
        _ => None,
    }
}

#[derive(Clone, Debug, Default)]
struct State {
    depth: u32,
    func: Option<String>,
    cand: Option<String>,
    paren: u32,
    frozen: bool,
}

impl Finder<'_, '_> {
    fn text(&self, t: &Token) -> &[u8] {
        self.lx.text(t)
    }

    /// Handles directives: drops inactive `#if` branches, scans `#define`
    /// bodies, and returns the remaining tokens with conditional markers.
    fn preprocess(&mut self) -> Vec<Token> {
        let toks = &self.lx.tokens;
        let mut main = Vec::with_capacity(toks.len());
        let mut conds: Vec<CondFrame> = Vec::new();
        let mut active = true;
        let mut i = 0;
        while i < toks.len() {
            let t = toks[i];
            if !(t.bol && t.kind == Kind::Hash) {
                if active {
                    main.push(t);
                }
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < toks.len() && !toks[j].bol {
                j += 1;
            }
            let dir = &toks[i + 1..j];
            let name: &[u8] = dir.first().map_or(b"", |t| self.text(t));
            let marker = |kind: Kind| Token { kind, ..t };
            match name {
                b"if" | b"ifdef" | b"ifndef" => {
                    let val = if name == b"if" {
                        eval_condition(self.lx, &dir[1..])
                    } else {
                        None
                    };
                    conds.push(CondFrame {
                        parent_active: active,
                        active: active && val != Some(false),
                        taken: val == Some(true),
                    });
                    if active {
                        main.push(marker(Kind::CondIf));
                    }
                }
                b"elif" | b"elifdef" | b"elifndef" | b"else" => {
                    if let Some(f) = conds.last_mut() {
                        if f.taken {
                            f.active = false;
                        } else if name == b"elif" {
                            let val = eval_condition(self.lx, &dir[1..]);
                            f.active = f.parent_active && val != Some(false);
                            f.taken = val == Some(true);
                        } else {
                            f.active = f.parent_active;
                            f.taken = name == b"else";
                        }
                        if f.parent_active {
                            main.push(marker(Kind::CondElse));
                        }
                    }
                }
                b"endif" => {
                    if let Some(f) = conds.pop()
                        && f.parent_active
                    {
                        main.push(marker(Kind::CondEndif));
                    }
                }
                b"define" if active => self.define(&dir[1..]),
                _ => {}
            }
            active = conds.last().is_none_or(|f| f.active);
            i = j;
        }
        main
    }

    /// Scans a `#define NAME body` (after `define`).
    fn define(&mut self, toks: &[Token]) {
        let Some(name_tok) = toks.first().filter(|t| t.kind == Kind::Ident) else {
            return;
        };
        let name = String::from_utf8_lossy(self.text(name_tok)).into_owned();
        let mut k = 1;
        let function_like = toks
            .get(1)
            .is_some_and(|p| p.kind == Kind::LParen && p.start == name_tok.end);
        let before = self.sites.len();
        if toks
            .get(1)
            .is_some_and(|p| p.kind == Kind::LParen && p.start == name_tok.end)
        {
            k = matching(toks, 1).map_or(toks.len(), |e| e + 1);
            if self.names.is_wrapper(self.text(name_tok)) {
                self.decls.push(WrapperDecl {
                    name: name.clone(),
                    line: name_tok.line,
                    kind: DeclKind::Macro,
                });
            }
        }
        let body = &toks[k.min(toks.len())..];
        let mut i = 0;
        while i < body.len() {
            let t = &body[i];
            if t.kind == Kind::Ident {
                if let Some(end) = self.skip_attribute(body, i) {
                    i = end + 1;
                    continue;
                }
                self.check_site(body, i, &name, false);
            }
            i += 1;
        }
        if function_like && let Some(first) = self.sites.get(before) {
            let ty = first.type_name.clone();
            self.alloc_macros.push((name, ty));
        }
    }

    /// If `toks[i]` is an attribute-like keyword followed by `(`, the index
    /// of the matching `)`.
    fn skip_attribute(&self, toks: &[Token], i: usize) -> Option<usize> {
        let t = &toks[i];
        if toks.get(i + 1).is_some_and(|n| n.kind == Kind::LParen)
            && ATTRIBUTE_KEYWORDS.contains(&self.text(t))
        {
            return Some(matching(toks, i + 1).unwrap_or(toks.len() - 1));
        }
        None
    }

    /// Records a site if `toks[i]` (an identifier) is a called allocation
    /// function. `file_level`: outside any function body or initializer,
    /// where a name followed by `(` is declared, not called (unless it
    /// initializes a C++ global: `= malloc(`).
    fn check_site(&mut self, toks: &[Token], i: usize, function: &str, file_level: bool) {
        let t = toks[i];
        let Some(type_name) = self.names.get(self.text(&t)) else {
            return;
        };
        let Some((chain_start, args_open)) = call_shape(toks, i) else {
            return;
        };
        let args_close = matching(toks, args_open).unwrap_or(toks.len() - 1);
        let declared = if self.macros {
            false
        } else if file_level {
            chain_start == 0 || toks[chain_start - 1].kind != Kind::Assign
        } else {
            chain_start > 0 && self.is_declaration(toks, chain_start, chain_start == i)
        };
        if declared {
            let member =
                chain_start > 0 && matches!(toks[chain_start - 1].kind, Kind::Dot | Kind::Arrow);
            if !member && self.names.is_wrapper(self.text(&t)) {
                // A body (`{`, possibly after attributes or K&R parameter
                // declarations) before the next `;`: a definition.
                let body = toks[args_close + 1..]
                    .iter()
                    .find(|n| matches!(n.kind, Kind::LBrace | Kind::Semi))
                    .is_some_and(|n| n.kind == Kind::LBrace);
                self.decls.push(WrapperDecl {
                    name: String::from_utf8_lossy(self.text(&t)).into_owned(),
                    line: t.line,
                    kind: if body {
                        DeclKind::Definition
                    } else {
                        DeclKind::Declaration
                    },
                });
            }
            return;
        }
        let mut ctx = Vec::with_capacity(64);
        for tok in &toks[i..=args_close.min(i + 64)] {
            ctx.extend_from_slice(self.text(tok));
            ctx.push(b' ');
        }
        self.sites.push(FoundSite {
            file: String::new(),
            line: t.line,
            column: t.col,
            function: function.to_owned(),
            type_name: type_name.to_owned(),
            callee: String::from_utf8_lossy(self.text(&t)).into_owned(),
            context: fingerprint(&ctx),
            lang: SiteLang::C,
        });
    }

    /// Whether the tokens before `chain_start` make the name a declaration
    /// (or a member call, which is not a site either).
    fn is_declaration(&self, toks: &[Token], chain_start: usize, direct: bool) -> bool {
        let prev = &toks[chain_start - 1];
        match prev.kind {
            Kind::Ident => !EXPR_KEYWORDS.contains(&self.text(prev)),
            Kind::Dot | Kind::Arrow => direct,
            Kind::ColonColon => {
                // `T *Alloc::malloc(` is a definition; `= std::malloc(` a call.
                chain_start >= 3
                    && toks[chain_start - 2].kind == Kind::Ident
                    && matches!(
                        toks[chain_start - 3].kind,
                        Kind::Ident | Kind::Star | Kind::Amp
                    )
                    && !EXPR_KEYWORDS.contains(&self.text(&toks[chain_start - 3]))
            }
            _ => false,
        }
    }

    /// Walks the file-level structure, tracking the enclosing function, and
    /// checks every identifier.
    fn structure(&mut self, toks: &[Token]) {
        let mut st = State::default();
        let mut conds: Vec<(State, Option<State>)> = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let t = toks[i];
            match t.kind {
                Kind::CondIf => conds.push((st.clone(), None)),
                Kind::CondElse => {
                    if let Some((at_if, first)) = conds.last_mut() {
                        if first.is_none() {
                            *first = Some(st.clone());
                        }
                        st = at_if.clone();
                    }
                }
                Kind::CondEndif => {
                    if let Some((_, Some(first))) = conds.pop() {
                        st = first;
                    }
                }
                Kind::Ident => {
                    if let Some(end) = self.skip_attribute(toks, i) {
                        i = end + 1;
                        continue;
                    }
                    // A call in a C++ constructor's initializer list
                    // (`A::A() : b(malloc(1))`) belongs to the constructor.
                    let func = match (&st.func, st.frozen) {
                        (Some(f), _) => f.as_str(),
                        (None, true) => st.cand.as_deref().unwrap_or(""),
                        (None, false) => "",
                    };
                    // Cheap pre-check before the borrow-heavy call.
                    if self.names.get(self.text(&t)).is_some() {
                        let func = func.to_owned();
                        // (Not in a C++ constructor's initializer list.)
                        let file_level = st.depth == 0 && !st.frozen;
                        self.check_site(toks, i, &func, file_level);
                    }
                    if st.depth == 0
                        && st.paren == 0
                        && !st.frozen
                        && toks.get(i + 1).is_some_and(|n| n.kind == Kind::LParen)
                    {
                        let mut name = String::from_utf8_lossy(self.text(&t)).into_owned();
                        if i >= 2
                            && toks[i - 1].kind == Kind::ColonColon
                            && toks[i - 2].kind == Kind::Ident
                        {
                            name = format!(
                                "{}::{name}",
                                String::from_utf8_lossy(self.text(&toks[i - 2]))
                            );
                        }
                        st.cand = Some(name);
                    } else if st.depth == 0
                        && st.paren == 1
                        && !st.frozen
                        && i >= 2
                        && toks[i - 1].kind == Kind::LParen
                        && toks[i - 2].kind == Kind::Ident
                        && toks.get(i + 1).is_some_and(|n| n.kind == Kind::RParen)
                        && toks.get(i + 2).is_some_and(|n| n.kind == Kind::LParen)
                    {
                        // `BZ_API(BZ2_bzWriteOpen)(…)`: the macro's argument
                        // is the function's name.
                        st.cand = Some(String::from_utf8_lossy(self.text(&t)).into_owned());
                    }
                }
                Kind::LParen if st.depth == 0 => st.paren += 1,
                Kind::RParen if st.depth == 0 => st.paren = st.paren.saturating_sub(1),
                Kind::Colon if st.depth == 0 && st.paren == 0 && st.cand.is_some() => {
                    st.frozen = true;
                }
                Kind::Semi if st.depth == 0 && st.paren == 0 => st.frozen = false,
                Kind::LBrace => {
                    if st.depth > 0 {
                        st.depth += 1;
                    } else {
                        let prev = i.checked_sub(1).map(|p| toks[p]);
                        let prev2 = i.checked_sub(2).map(|p| self.text(&toks[p]));
                        let prev_text = prev.map(|p| self.text(&p));
                        let transparent = match prev {
                            Some(p) if p.kind == Kind::Str => true,
                            Some(p) if p.kind == Kind::Ident => {
                                prev_text == Some(b"namespace") || prev2 == Some(b"namespace")
                            }
                            _ => false,
                        };
                        let body = match prev {
                            Some(p) if matches!(p.kind, Kind::RParen | Kind::Semi) => true,
                            Some(p) if p.kind == Kind::Ident => {
                                BODY_QUALIFIERS.contains(&self.text(&p))
                            }
                            _ => false,
                        };
                        if !transparent {
                            st.depth = 1;
                            st.func = if body { st.cand.take() } else { None };
                        }
                        st.cand = None;
                        st.frozen = false;
                        st.paren = 0;
                    }
                }
                Kind::RBrace if st.depth > 0 => {
                    st.depth -= 1;
                    if st.depth == 0 {
                        st.func = None;
                        st.cand = None;
                        st.frozen = false;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// Index of the `)` matching the `(` at `open`.
fn matching(toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0u32;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            Kind::LParen => depth += 1,
            Kind::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// If the identifier at `i` is called — `name(`, or wrapped as
/// `(name)(`, `(*(&name))(` — returns (first token of the wrapping, index
/// of the argument list's `(`).
fn call_shape(toks: &[Token], i: usize) -> Option<(usize, usize)> {
    let next = toks.get(i + 1)?;
    match next.kind {
        Kind::LParen => {
            // Only `*` may stand between a declaration's type and the name.
            let mut s = i;
            while s > 0 && toks[s - 1].kind == Kind::Star {
                s -= 1;
            }
            Some((if s == i { i } else { s }, i + 1))
        }
        Kind::RParen => {
            let mut k = 0;
            let mut j = i + 1;
            while toks.get(j).is_some_and(|t| t.kind == Kind::RParen) {
                k += 1;
                j += 1;
            }
            if toks.get(j)?.kind != Kind::LParen {
                return None;
            }
            // Walk back over the k opening parentheses (and `*`, `&`).
            let mut s = i;
            let mut opened = 0;
            while s > 0 && opened < k {
                match toks[s - 1].kind {
                    Kind::LParen => opened += 1,
                    Kind::Star | Kind::Amp => {}
                    _ => break,
                }
                s -= 1;
            }
            if opened < k {
                return None;
            }
            while s > 0 && toks[s - 1].kind == Kind::Star {
                s -= 1;
            }
            Some((s, j))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(src: &str) -> Vec<(u32, String, String)> {
        scan_c(src.as_bytes(), &AllocNames::builtin())
            .sites
            .into_iter()
            .map(|s| (s.line, s.callee, s.function))
            .collect()
    }

    fn s(line: u32, callee: &str, func: &str) -> (u32, String, String) {
        (line, callee.into(), func.into())
    }

    #[test]
    fn plain_calls_and_functions() {
        let src = "static void *g(size_t n)\n{\n  void *p = malloc(n);\n  free(p);\n  return (char *)calloc(1,\n  n);\n}\n";
        assert_eq!(
            sites(src),
            [s(3, "malloc", "g"), s(4, "free", "g"), s(5, "calloc", "g")]
        );
    }

    #[test]
    fn declarations_are_not_sites() {
        let src = "extern void *malloc (size_t __size) __attribute__((malloc, alloc_size(1)));\n\
                   void free(void *);\nvoid *(malloc)(size_t);\nstruct a { void *(*malloc)(size_t); void (*free)(void*); };\n\
                   char *strdup(const char *s) { return 0; }\n\
                   void *T::malloc(size_t n) { return 0; }\n\
                   __attribute__((malloc(free, 1))) void *mk(void);\n";
        assert_eq!(sites(src), []);
    }

    #[test]
    fn tricky_calls() {
        let src = "int f(struct o *o) {\n  void *p = (*(&malloc))(4);\n  p = (malloc)(2);\n  o->free(p); o->a.malloc(3);\n  if (x) return malloc(1); else free(p);\n  q = ::malloc(1) + std::free(p);\n  g = free; qsort(a, b, c, free);\n}\n";
        assert_eq!(
            sites(src),
            [
                s(2, "malloc", "f"),
                s(3, "malloc", "f"),
                s(5, "malloc", "f"),
                s(5, "free", "f"),
                s(6, "malloc", "f"),
                s(6, "free", "f"),
            ]
        );
    }

    #[test]
    fn preprocessor() {
        let src = "#if 0\nmalloc(1); don't\n#elif 1\nvoid a(void) { free(0); }\n#else\nvoid b(void) { free(0); }\n#endif\n\
                   #define XM(n) \\\n   malloc(n)\n#define X 1 // malloc(2)\n/* malloc(3) */ \"malloc(4)\"\n";
        assert_eq!(sites(src), [s(4, "free", "a"), s(9, "malloc", "XM")]);
    }

    #[test]
    fn ifdef_function_headers() {
        let src = "#ifdef A\nint f(int a) {\n#else\nint f(void) {\n#endif\n  return malloc(1) != 0;\n}\nvoid g(void) { free(0); }\n";
        assert_eq!(sites(src), [s(6, "malloc", "f"), s(8, "free", "g")]);
    }

    #[test]
    fn knr_and_cpp_shapes() {
        let src = "local void *zalloc(opaque, n)\n  void *opaque;\n  unsigned n;\n{\n  return malloc(n);\n}\n\
                   extern \"C\" {\nnamespace x {\nA::A() : b(1), c(2) { free(p); }\nint A::m() const { free(q); }\n}\n}\n\
                   struct s { int a; } v = { 1 };\nint h(void) { free(r); }\n";
        assert_eq!(
            sites(src),
            [
                s(5, "malloc", "zalloc"),
                s(9, "free", "A::A"),
                s(10, "free", "A::m"),
                s(14, "free", "h")
            ]
        );
    }

    #[test]
    fn macro_wrapped_definitions_are_named_and_never_calls() {
        let mut n = AllocNames::builtin();
        n.insert("git__malloc", "MALLOC");
        n.insert("xfree", "FREE");
        let src = "GIT_INLINE(void *) git__malloc(size_t len)\n{\n\treturn malloc(len);\n}\n\
                   BZFILE* BZ_API(BZ2_bzWriteOpen)\n  ( int* bzerror, FILE* f )\n{\n  free(0);\n}\n\
                   extern void xfree(void *p);\nvoid xfree(void *p) { free(p); }\n\
                   #define XF(p) \\\n  do { \\\n    xfree(p); \\\n  } while (0)\n\
                   static void *(*hook)(size_t) = 0;\nint g(void) { return git__malloc(3) != 0; }\n";
        let got = scan_c(src.as_bytes(), &n);
        let sites: Vec<_> = got
            .sites
            .iter()
            .map(|s| (s.line, s.callee.as_str(), s.function.as_str()))
            .collect();
        assert_eq!(
            sites,
            [
                (3, "malloc", "git__malloc"),
                (8, "free", "BZ2_bzWriteOpen"),
                (11, "free", "xfree"),
                (14, "xfree", "XF"),
                (17, "git__malloc", "g"),
            ]
        );
        let decls: Vec<_> = got
            .wrapper_decls
            .iter()
            .map(|d| (d.line, d.name.as_str(), d.kind))
            .collect();
        assert_eq!(
            decls,
            [
                (1, "git__malloc", DeclKind::Definition),
                (10, "xfree", DeclKind::Declaration),
                (11, "xfree", DeclKind::Definition),
            ]
        );
    }

    #[test]
    fn wrappers() {
        let mut n = AllocNames::builtin();
        n.insert("cf_malloc", "MALLOC");
        let got = scan_c(b"void f(void) { cf_malloc(3); cf_malloc_x(3); }", &n);
        assert_eq!(got.sites.len(), 1);
        assert_eq!(got.sites[0].type_name, "MALLOC");
    }
}
