//! Errors (the run stops) and warnings (one input is skipped, the rest of
//! the tree is still scanned).
//!
//! Both name the file and, where one is known, the line, so a message can be
//! pasted into an editor's "go to" box.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a generation failed.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing a file or directory failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The previous table (`mallocations.json`) exists but cannot be read
    /// back; ids cannot be kept stable, so nothing is written.
    PreviousTable {
        /// The JSON file.
        path: PathBuf,
        /// 1-based line of the problem, 0 if unknown.
        line: usize,
        /// What is wrong.
        cause: String,
    },
    /// A configuration value is wrong (wrapper spec, type name, pattern…).
    Config(String),
    /// More sites than a `u16` id can name.
    TooManySites(usize),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => {
                write!(f, "asmalloc-gen: {}: {source}", path.display())
            }
            Error::PreviousTable { path, line, cause } => write!(
                f,
                "asmalloc-gen: {}:{line}: cannot read the previous table ({cause}); \
                 fix or delete it, or pass --fresh to renumber every site",
                path.display()
            ),
            Error::Config(msg) => write!(f, "asmalloc-gen: {msg}"),
            Error::TooManySites(n) => write!(
                f,
                "asmalloc-gen: {n} sites (with retired ids) do not fit a u16 id; \
                 regenerate with --fresh to drop retired ids"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An input that was skipped (or partly skipped); the rest of the tree was
/// still scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file or directory, as found while walking.
    pub path: PathBuf,
    /// 1-based line, if the problem has one.
    pub line: Option<usize>,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "asmalloc-gen: {}:{line}: {}",
                self.path.display(),
                self.message
            ),
            None => write!(f, "asmalloc-gen: {}: {}", self.path.display(), self.message),
        }
    }
}
