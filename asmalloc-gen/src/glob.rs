//! Exclude patterns: a small glob dialect, matched against `/`-separated
//! paths relative to the scanned root.
//!
//! - `*` matches within one path component, `?` one character, `**` any
//!   number of components (`vendor/**`, `**/gen_*.c`);
//! - a pattern without `/` matches any single component (`third_party`
//!   excludes every directory or file of that name, like `.gitignore`);
//! - a pattern with `/` matches a path prefix (`src/vendor` excludes the
//!   directory and everything under it).

/// A compiled exclude pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    anchored: bool,
}

impl Glob {
    /// Compiles a pattern; trailing and leading `/` are ignored.
    pub fn new(pattern: &str) -> Glob {
        let p = pattern.trim_matches('/');
        Glob {
            pattern: p.to_owned(),
            anchored: p.contains('/'),
        }
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether a relative path (or one of its leading directories) matches.
    pub fn matches_path(&self, rel: &str) -> bool {
        let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        if self.anchored {
            let pat: Vec<&str> = self.pattern.split('/').collect();
            (1..=comps.len()).any(|n| match_components(&pat, &comps[..n]))
        } else {
            comps
                .iter()
                .any(|c| match_component(self.pattern.as_bytes(), c.as_bytes()))
        }
    }
}

fn match_components(pat: &[&str], path: &[&str]) -> bool {
    match pat.first() {
        None => path.is_empty(),
        Some(&"**") => (0..=path.len()).any(|k| match_components(&pat[1..], &path[k..])),
        Some(p) => {
            !path.is_empty()
                && match_component(p.as_bytes(), path[0].as_bytes())
                && match_components(&pat[1..], &path[1..])
        }
    }
}

fn match_component(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|k| match_component(&p[1..], &s[k..])),
        Some(b'?') => !s.is_empty() && match_component(&p[1..], &s[1..]),
        Some(c) => s.first() == Some(c) && match_component(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(Glob::new("vendor").matches_path("a/vendor/x.c"));
        assert!(!Glob::new("vendor").matches_path("a/vendors/x.c"));
        assert!(Glob::new("*.h").matches_path("a/b.h"));
        assert!(Glob::new("src/gen").matches_path("src/gen/x.c"));
        assert!(!Glob::new("src/gen").matches_path("lib/src/gen/x.c"));
        assert!(Glob::new("**/gen/*.c").matches_path("lib/src/gen/x.c"));
        assert!(Glob::new("src/**").matches_path("src/a/b.c"));
        assert!(Glob::new("t?st.c").matches_path("test.c"));
    }
}
