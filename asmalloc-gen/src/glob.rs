//! Exclude patterns, matched with `globset` against `/`-separated paths
//! relative to the scanned root.
//!
//! - `*` matches within one path component, `?` one character, `**` any
//!   number of components (`vendor/**`, `**/gen_*.c`); `globset`'s `[abc]`,
//!   `[!abc]` and `{a,b}` work too, and `\` escapes a metacharacter;
//! - a pattern without `/` matches any single component (`third_party`
//!   excludes every directory or file of that name, like `.gitignore`);
//! - a pattern with `/` matches a path prefix (`src/vendor` excludes the
//!   directory and everything under it).
//!
//! Leading and trailing `/` are ignored; an empty pattern matches nothing.
//! Each pattern is compiled into `globset` globs with `*` and `?` kept
//! within a component: `NAME` → `**/NAME`, `**/NAME/**`; `A/B` → `A/B`,
//! `A/B/**` (and `A` for `A/**`, so the directory itself is skipped too).

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::Error;

/// A set of compiled exclude patterns.
#[derive(Clone, Debug, Default)]
pub struct Excludes {
    patterns: Vec<String>,
    set: GlobSet,
}

/// The `globset` globs that implement one pattern (see the module docs).
fn translate(pattern: &str) -> Vec<String> {
    let p = pattern.trim_matches('/');
    if p.is_empty() {
        return Vec::new();
    }
    if p.contains('/') {
        let mut out = vec![p.to_owned(), format!("{p}/**")];
        if let Some(dir) = p.strip_suffix("/**") {
            out.push(dir.to_owned());
        }
        out
    } else {
        vec![format!("**/{p}"), format!("**/{p}/**")]
    }
}

impl Excludes {
    /// Compiles patterns; a malformed one (`[a`, `{a`) is an
    /// [`Error::Config`] naming it.
    pub fn new<I, S>(patterns: I) -> Result<Excludes, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut builder = GlobSetBuilder::new();
        let mut kept = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            for g in translate(pattern) {
                let glob = GlobBuilder::new(&g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| {
                        Error::Config(format!("exclude pattern `{pattern}`: {}", e.kind()))
                    })?;
                builder.add(glob);
            }
            kept.push(pattern.to_owned());
        }
        let set = builder
            .build()
            .map_err(|e| Error::Config(format!("exclude patterns: {e}")))?;
        Ok(Excludes {
            patterns: kept,
            set,
        })
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether a path relative to the scanned root (or one of its leading
    /// directories) matches a pattern.
    pub fn matches_path(&self, rel: impl AsRef<Path>) -> bool {
        !self.patterns.is_empty() && self.set.is_match(rel.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        Excludes::new([pattern]).unwrap().matches_path(path)
    }

    #[test]
    fn globs() {
        assert!(m("vendor", "a/vendor/x.c"));
        assert!(m("vendor", "vendor"));
        assert!(m("vendor/", "a/vendor"));
        assert!(!m("vendor", "a/vendors/x.c"));
        assert!(m("*.h", "a/b.h"));
        assert!(!m("*.h", "a/b.hh"));
        assert!(m("src/gen", "src/gen/x.c"));
        assert!(m("src/gen", "src/gen"));
        assert!(m("/src/gen/", "src/gen/x.c"));
        assert!(!m("src/gen", "lib/src/gen/x.c"));
        assert!(!m("src/gen", "src/generated/x.c"));
        assert!(m("**/gen/*.c", "lib/src/gen/x.c"));
        assert!(m("**/gen/*.c", "gen/x.c"));
        assert!(!m("src/*.c", "src/a/b.c"));
        assert!(m("src/**", "src/a/b.c"));
        assert!(m("src/**", "src"));
        assert!(m("src/**/b.c", "src/b.c"));
        assert!(m("t?st.c", "test.c"));
        assert!(!m("t?st.c", "t/st.c"));
        assert!(m("gen_*", "a/gen_x/y.c"));
        assert!(m("a**b", "x/ab"));
        assert!(m("*.{c,h}", "x/y.h"));
        assert!(m("[ab].c", "x/b.c"));
        assert!(!m("", "a"));
        assert!(!Excludes::default().matches_path("a"));
    }

    #[test]
    fn bad_patterns_are_config_errors() {
        let e = Excludes::new(["ok", "src/[a"]).unwrap_err();
        assert!(e.to_string().contains("`src/[a`"), "{e}");
    }
}
