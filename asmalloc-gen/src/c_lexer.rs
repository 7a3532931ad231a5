//! A C/C++ tokenizer good enough to find call sites, and fast.
//!
//! It works on bytes (a Latin-1 comment is not an error), removes
//! comments, turns string, character and raw-string literals into single
//! tokens (so a `malloc(` inside them is never seen), splices line
//! continuations (`\` + newline, also inside identifiers) while keeping
//! physical line numbers, and marks the first token of every logical line so
//! the caller can recognise preprocessor directives. An unterminated literal
//! ends at the end of its line, as GCC does in skipped `#if 0` text (an
//! apostrophe in prose), so one stray quote never swallows a file.
//!
//! It does not expand macros or evaluate conditions: that is
//! [`crate::c_sites`]'s job.

use std::borrow::Cow;

/// What a token is. Punctuation the site finder does not care about is `Op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Identifier or keyword.
    Ident,
    /// A preprocessing number.
    Num,
    /// String or raw-string literal, with any prefix.
    Str,
    /// Character literal.
    Char,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `;`
    Semi,
    /// `,`
    Comma,
    /// `*`
    Star,
    /// `&`
    Amp,
    /// `=`
    Assign,
    /// `#`
    Hash,
    /// `.`
    Dot,
    /// `->`
    Arrow,
    /// `::`
    ColonColon,
    /// `:`
    Colon,
    /// Any other operator.
    Op,
    /// Not produced by the lexer: an `#if`/`#ifdef`/`#ifndef` seen by the
    /// site finder (marks where brace depth may need restoring).
    CondIf,
    /// Not produced by the lexer: `#elif` / `#else`.
    CondElse,
    /// Not produced by the lexer: `#endif`.
    CondEndif,
}

/// One token; offsets index [`Lexed::src`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// Byte offset of its first byte.
    pub start: u32,
    /// Byte offset one past its last byte.
    pub end: u32,
    /// 1-based physical line of its first byte.
    pub line: u32,
    /// 1-based byte column of its first byte (approximate after a splice).
    pub col: u32,
    /// First token of a logical line (a `#` here starts a directive).
    pub bol: bool,
}

/// A lexed file: the (possibly spliced) text and its tokens.
#[derive(Debug)]
pub struct Lexed<'a> {
    /// The text the token offsets refer to: the input, or a copy with line
    /// continuations removed.
    pub src: Cow<'a, [u8]>,
    /// The tokens, in order.
    pub tokens: Vec<Token>,
    /// Number of physical lines of the input.
    pub lines: u32,
}

impl Lexed<'_> {
    /// The bytes of a token.
    pub fn text(&self, t: &Token) -> &[u8] {
        &self.src[t.start as usize..t.end as usize]
    }
}

/// Removes `\`+newline (and `\`+CR+LF); returns the spliced text and, for
/// each removed newline, the spliced offset where it was.
fn splice(src: &[u8]) -> (Cow<'_, [u8]>, Vec<u32>) {
    let has = src.iter().enumerate().any(|(i, &b)| {
        b == b'\\'
            && (src.get(i + 1) == Some(&b'\n')
                || (src.get(i + 1) == Some(&b'\r') && src.get(i + 2) == Some(&b'\n')))
    });
    if !has {
        return (Cow::Borrowed(src), Vec::new());
    }
    let mut out = Vec::with_capacity(src.len());
    let mut splices = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        if b == b'\\' {
            if src.get(i + 1) == Some(&b'\n') {
                splices.push(out.len() as u32);
                i += 2;
                continue;
            }
            if src.get(i + 1) == Some(&b'\r') && src.get(i + 2) == Some(&b'\n') {
                splices.push(out.len() as u32);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    (Cow::Owned(out), splices)
}

#[inline]
fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b >= 0x80
}

#[inline]
fn is_ident_cont(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Tokenizes C or C++ source.
pub fn lex(input: &[u8]) -> Lexed<'_> {
    let (src, splices) = splice(input);
    let lines = input.iter().filter(|&&b| b == b'\n').count() as u32
        + u32::from(!input.is_empty() && input.last() != Some(&b'\n'));
    let mut tokens = Vec::with_capacity(src.len() / 6);
    {
        let s: &[u8] = &src;
        let n = s.len();
        let mut i = 0usize;
        let mut line: u32 = 1;
        let mut line_start = 0usize;
        let mut bol = true;
        let mut next_splice = 0usize;
        let mut extra: u32 = 0;

        // Skips to the end of a quoted literal starting at `i` (the quote);
        // stops before a newline if unterminated. Returns the end offset.
        let quoted = |mut j: usize, q: u8| -> usize {
            j += 1;
            while j < n {
                let c = s[j];
                if c == q {
                    return j + 1;
                }
                if c == b'\\' && j + 1 < n && s[j + 1] != b'\n' {
                    j += 2;
                    continue;
                }
                if c == b'\n' {
                    return j;
                }
                j += 1;
            }
            n
        };

        while i < n {
            let b = s[i];
            match b {
                b'\n' => {
                    line += 1;
                    i += 1;
                    line_start = i;
                    bol = true;
                    continue;
                }
                b' ' | b'\t' | b'\r' | 0x0b | 0x0c => {
                    i += 1;
                    continue;
                }
                b'/' if i + 1 < n && s[i + 1] == b'/' => {
                    while i < n && s[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b'/' if i + 1 < n && s[i + 1] == b'*' => {
                    i += 2;
                    while i < n && !(s[i] == b'*' && i + 1 < n && s[i + 1] == b'/') {
                        if s[i] == b'\n' {
                            line += 1;
                            line_start = i + 1;
                        }
                        i += 1;
                    }
                    i = (i + 2).min(n);
                    continue;
                }
                _ => {}
            }
            // A token starts at i.
            while next_splice < splices.len() && splices[next_splice] as usize <= i {
                next_splice += 1;
                extra += 1;
            }
            let start = i;
            let tline = line + extra;
            let col = (i - line_start) as u32 + 1;
            let kind;
            if is_ident_start(b) {
                let mut j = i + 1;
                while j < n && is_ident_cont(s[j]) {
                    j += 1;
                }
                let word = &s[i..j];
                if j < n && (s[j] == b'"' || s[j] == b'\'') {
                    let is_prefix = matches!(word, b"L" | b"u" | b"U" | b"u8");
                    let is_raw = matches!(word, b"R" | b"LR" | b"uR" | b"UR" | b"u8R");
                    if is_raw && s[j] == b'"' {
                        // R"delim( ... )delim"
                        let open = j + 1;
                        let mut k = open;
                        while k < n && k - open <= 16 && s[k] != b'(' && s[k] != b'\n' {
                            k += 1;
                        }
                        if k < n && s[k] == b'(' {
                            let delim = &s[open..k];
                            let mut m = k + 1;
                            let mut end = n;
                            while m < n {
                                if s[m] == b'\n' {
                                    line += 1;
                                    line_start = m + 1;
                                } else if s[m] == b')'
                                    && s[m + 1..].starts_with(delim)
                                    && s.get(m + 1 + delim.len()) == Some(&b'"')
                                {
                                    end = m + 2 + delim.len();
                                    break;
                                }
                                m += 1;
                            }
                            i = end;
                        } else {
                            i = quoted(j, b'"');
                        }
                        kind = Kind::Str;
                    } else if is_prefix {
                        let q = s[j];
                        i = quoted(j, q);
                        kind = if q == b'"' { Kind::Str } else { Kind::Char };
                    } else {
                        i = j;
                        kind = Kind::Ident;
                    }
                } else {
                    i = j;
                    kind = Kind::Ident;
                }
            } else if b.is_ascii_digit() || (b == b'.' && i + 1 < n && s[i + 1].is_ascii_digit()) {
                let mut j = i + 1;
                while j < n {
                    let c = s[j];
                    if ((c == b'+' || c == b'-') && matches!(s[j - 1], b'e' | b'E' | b'p' | b'P'))
                        || c.is_ascii_alphanumeric()
                        || c == b'_'
                        || c == b'.'
                    {
                        j += 1;
                    } else if c == b'\'' && j + 1 < n && s[j + 1].is_ascii_alphanumeric() {
                        // C++14 / C23 digit separator.
                        j += 2;
                    } else {
                        break;
                    }
                }
                i = j;
                kind = Kind::Num;
            } else {
                let next = if i + 1 < n { s[i + 1] } else { 0 };
                let (k, len) = match b {
                    b'"' => {
                        i = quoted(i, b'"');
                        (Kind::Str, 0)
                    }
                    b'\'' => {
                        i = quoted(i, b'\'');
                        (Kind::Char, 0)
                    }
                    b'(' => (Kind::LParen, 1),
                    b')' => (Kind::RParen, 1),
                    b'{' => (Kind::LBrace, 1),
                    b'}' => (Kind::RBrace, 1),
                    b';' => (Kind::Semi, 1),
                    b',' => (Kind::Comma, 1),
                    b'*' if next == b'=' => (Kind::Op, 2),
                    b'*' => (Kind::Star, 1),
                    b'&' if next == b'&' || next == b'=' => (Kind::Op, 2),
                    b'&' => (Kind::Amp, 1),
                    b'=' if next == b'=' => (Kind::Op, 2),
                    b'=' => (Kind::Assign, 1),
                    b'#' if next == b'#' => (Kind::Op, 2),
                    b'#' => (Kind::Hash, 1),
                    b'.' => (Kind::Dot, 1),
                    b'-' if next == b'>' => (Kind::Arrow, 2),
                    b':' if next == b':' => (Kind::ColonColon, 2),
                    b':' => (Kind::Colon, 1),
                    _ => (Kind::Op, 1),
                };
                i += len;
                kind = k;
            }
            tokens.push(Token {
                kind,
                start: start as u32,
                end: i as u32,
                line: tline,
                col,
                bol,
            });
            bol = false;
        }
    }
    Lexed { src, tokens, lines }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Kind, String, u32)> {
        let l = lex(src.as_bytes());
        l.tokens
            .iter()
            .map(|t| {
                (
                    t.kind,
                    String::from_utf8_lossy(l.text(t)).into_owned(),
                    t.line,
                )
            })
            .collect()
    }

    #[test]
    fn comments_and_literals_are_opaque() {
        let t = kinds("a /* malloc( */ b // free(\n\"malloc(\" 'x' L\"y\" u8'z'\n");
        let idents: Vec<_> = t
            .iter()
            .filter(|t| t.0 == Kind::Ident)
            .map(|t| &t.1)
            .collect();
        assert_eq!(idents, ["a", "b"]);
        assert_eq!(t.len(), 6);
        assert_eq!(t[2].2, 2);
    }

    #[test]
    fn raw_strings() {
        let t = kinds("R\"x(malloc(\n)\" )x\" f");
        assert_eq!(t[0].0, Kind::Str);
        assert_eq!(t[1], (Kind::Ident, "f".into(), 2));
    }

    #[test]
    fn splices_keep_physical_lines() {
        let t = kinds("#define X \\\n  mal\\\nloc(1)\nfoo\n");
        let m = t.iter().find(|t| t.1 == "malloc").unwrap();
        assert_eq!(m.2, 2);
        let foo = t.iter().find(|t| t.1 == "foo").unwrap();
        assert_eq!(foo.2, 4);
        let l = lex(b"#define X \\\n y\nz");
        assert!(l.tokens[0].bol);
        assert!(!l.tokens[3].bol);
        assert!(l.tokens[4].bol);
        assert_eq!(l.lines, 3);
    }

    #[test]
    fn unterminated_quote_ends_at_line() {
        let t = kinds("don't\nmalloc(1)");
        assert!(t.iter().any(|t| t.1 == "malloc" && t.2 == 2));
    }

    #[test]
    fn numbers_and_ops() {
        let t = kinds("1'000 1e+5 a->b c::d x&&y *= &z");
        let k: Vec<_> = t.iter().map(|t| t.0).collect();
        assert_eq!(
            k,
            [
                Kind::Num,
                Kind::Num,
                Kind::Ident,
                Kind::Arrow,
                Kind::Ident,
                Kind::Ident,
                Kind::ColonColon,
                Kind::Ident,
                Kind::Ident,
                Kind::Op,
                Kind::Ident,
                Kind::Op,
                Kind::Amp,
                Kind::Ident
            ]
        );
    }
}
