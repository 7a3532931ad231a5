//! Walking a source tree and dispatching each file to its scanner.
//!
//! Skipped by default: hidden entries (`.git`, `.cache`, …), `target`,
//! `build` and `node_modules` directories; add `--exclude` glob patterns for
//! more. Symbolic links are followed, and a link back to an ancestor (a
//! loop) is a warning, not a hang. Files larger than the size limit, files
//! that cannot be read, Rust files that are not UTF-8 or do not parse are
//! warnings: the file is skipped and the rest of the tree is still scanned.
//! C files are scanned as bytes, so a Latin-1 comment is fine.

use std::path::{Path, PathBuf};

use crate::c_sites::{AllocNames, scan_c};
use crate::error::Warning;
use crate::glob::Glob;
use crate::rust_sites::scan_rust;
use crate::site::FoundSite;

/// Which languages to scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    /// C and C++ files only.
    C,
    /// Rust files only.
    Rust,
    /// Both, chosen by extension.
    #[default]
    Auto,
}

/// Extensions scanned as C or C++.
pub const C_EXTENSIONS: &[&str] = &["c", "h", "cc", "cpp", "cxx", "hpp", "hh", "hxx", "inl"];

/// Default size limit per file (bytes).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Directory names skipped unless default excludes are turned off.
pub const DEFAULT_EXCLUDED_DIRS: &[&str] = &["target", "build", "node_modules"];

/// How to walk.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Languages.
    pub lang: Lang,
    /// Functions that count as C sites.
    pub names: AllocNames,
    /// Paths (relative to the root) to skip.
    pub excludes: Vec<Glob>,
    /// Skip hidden entries and [`DEFAULT_EXCLUDED_DIRS`].
    pub default_excludes: bool,
    /// Files larger than this are skipped with a warning.
    pub max_file_size: u64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            lang: Lang::Auto,
            names: AllocNames::builtin(),
            excludes: Vec::new(),
            default_excludes: true,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Sites, sorted by file, line, column.
    pub sites: Vec<FoundSite>,
    /// Every file scanned (for `cargo:rerun-if-changed`).
    pub files: Vec<PathBuf>,
    /// Every directory walked (a new file in it must re-run a build script).
    pub dirs: Vec<PathBuf>,
    /// Skipped inputs.
    pub warnings: Vec<Warning>,
    /// Files (relative, as in the table) that were skipped with a warning:
    /// their sites in the previous table keep their ids unchanged.
    pub skipped: Vec<String>,
    /// Physical lines scanned.
    pub lines: u64,
    /// Bytes scanned.
    pub bytes: u64,
}

fn rel_string(rel: &Path) -> Option<String> {
    let mut out = String::new();
    for c in rel.components() {
        if let std::path::Component::Normal(s) = c {
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(s.to_str()?);
        }
    }
    Some(out)
}

/// Scans one root directory (or a single file).
pub fn scan_root(root: &Path, opts: &ScanOptions, out: &mut ScanResult) {
    let root_is_file = root.is_file();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            if e.depth() == 0 {
                return true;
            }
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            let name = e.file_name().to_string_lossy();
            if opts.default_excludes
                && (name.starts_with('.')
                    || (e.file_type().is_dir() && DEFAULT_EXCLUDED_DIRS.contains(&&*name)))
            {
                return false;
            }
            match rel_string(rel) {
                Some(r) => !opts.excludes.iter().any(|g| g.matches_path(&r)),
                None => true,
            }
        });
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e
                    .path()
                    .map_or_else(|| root.to_path_buf(), Path::to_path_buf);
                let message = if e.loop_ancestor().is_some() {
                    "symbolic link loop; not followed".to_owned()
                } else {
                    format!("cannot read: {e}")
                };
                out.warnings.push(Warning {
                    path,
                    line: None,
                    message,
                });
                continue;
            }
        };
        if entry.file_type().is_dir() {
            out.dirs.push(entry.path().to_path_buf());
            continue;
        }
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let is_c = C_EXTENSIONS.contains(&ext);
        let is_rust = ext == "rs";
        let wanted = match opts.lang {
            Lang::C => is_c,
            Lang::Rust => is_rust,
            Lang::Auto => is_c || is_rust,
        };
        if !wanted {
            continue;
        }
        let rel = if root_is_file {
            path.file_name().map(PathBuf::from).unwrap_or_default()
        } else {
            path.strip_prefix(root).unwrap_or(path).to_path_buf()
        };
        let Some(rel) = rel_string(&rel) else {
            out.warnings.push(Warning {
                path: path.to_path_buf(),
                line: None,
                message: "file name is not UTF-8; skipped".into(),
            });
            continue;
        };
        scan_file(path, &rel, is_rust, opts, out);
    }
}

fn scan_file(path: &Path, rel: &str, is_rust: bool, opts: &ScanOptions, out: &mut ScanResult) {
    let warn = |out: &mut ScanResult, line: Option<usize>, message: String| {
        if message.ends_with("; skipped") {
            out.skipped.push(rel.to_owned());
        }
        out.warnings.push(Warning {
            path: path.to_path_buf(),
            line,
            message,
        });
    };
    match std::fs::metadata(path) {
        Ok(m) if m.len() > opts.max_file_size => {
            warn(
                out,
                None,
                format!(
                    "file is {} bytes, over the {}-byte limit; skipped",
                    m.len(),
                    opts.max_file_size
                ),
            );
            return;
        }
        Ok(_) => {}
        Err(e) => {
            warn(out, None, format!("cannot read: {e}; skipped"));
            return;
        }
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            warn(out, None, format!("cannot read: {e}; skipped"));
            return;
        }
    };
    out.files.push(path.to_path_buf());
    out.bytes += bytes.len() as u64;
    let mut sites = if is_rust {
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => {
                let line = bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                warn(
                    out,
                    Some(line),
                    "invalid UTF-8 in a Rust file; skipped".into(),
                );
                return;
            }
        };
        out.lines += text.lines().count() as u64;
        match scan_rust(text, rel) {
            Ok((sites, problems)) => {
                for p in problems {
                    warn(
                        out,
                        Some(p.line),
                        format!("{}; function skipped", p.message),
                    );
                }
                sites
            }
            Err(p) => {
                warn(out, Some(p.line), format!("{}; skipped", p.message));
                return;
            }
        }
    } else {
        let scan = scan_c(&bytes, &opts.names);
        out.lines += u64::from(scan.lines);
        scan.sites
    };
    for s in &mut sites {
        s.file = rel.to_owned();
    }
    out.sites.extend(sites);
}

/// Scans every root and sorts the sites.
pub fn scan(roots: &[PathBuf], opts: &ScanOptions) -> ScanResult {
    let mut out = ScanResult::default();
    for root in roots {
        if !root.exists() {
            out.warnings.push(Warning {
                path: root.clone(),
                line: None,
                message: "root does not exist; nothing scanned there".into(),
            });
            continue;
        }
        scan_root(root, opts, &mut out);
    }
    out.sites.sort();
    out.sites.dedup();
    out
}
