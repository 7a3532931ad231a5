//! Walking a source tree and dispatching each file to its scanner.
//!
//! The walk is `ignore`'s (the walker of ripgrep). Skipped by default: hidden
//! entries (`.git`, `.cache`, …), `target`, `build` and `node_modules`
//! directories, and, in a git repository, whatever its `.gitignore` files
//! ignore (those in the scanned directories and in their parents up to the
//! repository root, as git reads them; not the global excludes file nor
//! `.git/info/exclude`, which differ between checkouts); add `--exclude`
//! patterns for more. The generator's output directories
//! ([`ScanOptions::output_dirs`]) are never scanned: neither the files it
//! writes there nor, when such a directory lies inside a root, anything in
//! it. Symbolic links are followed, and a link back to an ancestor (a loop)
//! is a warning, not a hang. Files larger than the size limit, files that
//! cannot be read, Rust files that are not UTF-8 or do not parse are
//! warnings: the file is skipped and the rest of the tree is still scanned.
//! C files are scanned as bytes, so a Latin-1 comment is fine.

use std::path::{Path, PathBuf};

use crate::c_sites::{AllocNames, scan_c};
use crate::emit::{C_SOURCE_FILE, HEADER_FILE, JSON_FILE, RUST_FILE};
use crate::error::Warning;
use crate::glob::Excludes;
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

/// The names of the files the generator writes (`mallocations.*`,
/// `asmalloc_sites.h`): never scanned in an output directory.
pub const GENERATED_FILES: &[&str] = &[
    HEADER_FILE,
    C_SOURCE_FILE,
    RUST_FILE,
    JSON_FILE,
    crate::SITES_HEADER_FILE,
];

/// How to walk.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Languages.
    pub lang: Lang,
    /// Functions that count as C sites.
    pub names: AllocNames,
    /// Paths (relative to the root) to skip.
    pub excludes: Excludes,
    /// Skip hidden entries and [`DEFAULT_EXCLUDED_DIRS`].
    pub default_excludes: bool,
    /// Skip what the `.gitignore` files of the git repository the tree is
    /// in ignore.
    pub gitignore: bool,
    /// Directories the generator writes into. The [`GENERATED_FILES`] in
    /// them are never scanned, and such a directory is not scanned at all
    /// when it lies inside a root (unless it is the root itself or one of
    /// its ancestors, e.g. `--out .` with `--root .`).
    pub output_dirs: Vec<PathBuf>,
    /// Files larger than this are skipped with a warning.
    pub max_file_size: u64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            lang: Lang::Auto,
            names: AllocNames::builtin(),
            excludes: Excludes::default(),
            default_excludes: true,
            gitignore: true,
            output_dirs: Vec::new(),
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
    /// The `.gitignore` files of the directories walked (editing one must
    /// re-run a build script too).
    pub ignore_files: Vec<PathBuf>,
    /// Skipped inputs.
    pub warnings: Vec<Warning>,
    /// Files (relative, as in the table) that were skipped with a warning:
    /// their sites in the previous table keep their ids unchanged.
    pub skipped: Vec<String>,
    /// Physical lines scanned.
    pub lines: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Declarations, definitions and macros of the configured wrappers, by
    /// file (as walked) and relative path, sorted.
    pub wrapper_decls: Vec<FoundDecl>,
    /// Function-like macros whose body calls the allocation family (or a
    /// wrapper, or another such macro), with the type their uses get.
    pub alloc_macros: Vec<(String, String)>,
    /// The C files scanned (as walked, and relative), for the pass that
    /// finds the uses of those macros.
    c_files: Vec<(PathBuf, String)>,
}

/// A declaration, definition or macro of a configured wrapper, found in a
/// scanned file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FoundDecl {
    /// The file as walked (root joined with the relative path).
    pub path: PathBuf,
    /// Path relative to the scanned root, as in the table.
    pub file: String,
    /// What and where.
    pub decl: crate::c_sites::WrapperDecl,
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

/// What to skip of the generator's own output, for one root: canonical
/// paths.
#[derive(Clone, Debug, Default)]
struct OwnOutput {
    /// Output directories inside the root.
    dirs: Vec<PathBuf>,
    /// Generated files in every output directory.
    files: Vec<PathBuf>,
}

impl OwnOutput {
    fn new(root: &Path, output_dirs: &[PathBuf]) -> OwnOutput {
        let root = root.canonicalize().ok();
        let mut own = OwnOutput::default();
        for dir in output_dirs.iter().filter_map(|d| d.canonicalize().ok()) {
            own.files
                .extend(GENERATED_FILES.iter().map(|name| dir.join(name)));
            // The root or a directory above it holds the sources themselves.
            if root.as_ref().is_none_or(|r| !r.starts_with(&dir)) {
                own.dirs.push(dir);
            }
        }
        own
    }

    fn skips(&self, entry: &ignore::DirEntry) -> bool {
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        let candidates = if is_dir {
            &self.dirs
        } else if entry
            .file_name()
            .to_str()
            .is_some_and(|n| GENERATED_FILES.contains(&n))
        {
            &self.files
        } else {
            return false;
        };
        !candidates.is_empty()
            && entry
                .path()
                .canonicalize()
                .is_ok_and(|p| candidates.contains(&p))
    }
}

/// A walk error as a warning: the path it names and what happened.
fn walk_warning(root: &Path, err: &ignore::Error) -> Warning {
    let mut path = None;
    let mut err = err;
    loop {
        match err {
            ignore::Error::WithPath { path: p, err: e } => {
                path.get_or_insert_with(|| p.clone());
                err = e;
            }
            ignore::Error::WithDepth { err: e, .. }
            | ignore::Error::WithLineNumber { err: e, .. } => {
                err = e;
            }
            ignore::Error::Loop { child, .. } => {
                return Warning {
                    path: child.clone(),
                    line: None,
                    message: "symbolic link loop; not followed".to_owned(),
                };
            }
            other => {
                return Warning {
                    path: path.unwrap_or_else(|| root.to_path_buf()),
                    line: None,
                    message: format!("cannot read: {other}"),
                };
            }
        }
    }
}

/// Scans one root directory (or a single file).
pub fn scan_root(root: &Path, opts: &ScanOptions, out: &mut ScanResult) {
    let root_is_file = root.is_file();
    let own = OwnOutput::new(root, &opts.output_dirs);
    let excludes = opts.excludes.clone();
    let default_excludes = opts.default_excludes;
    let filter_root = root.to_path_buf();
    let walker = ignore::WalkBuilder::new(root)
        .follow_links(true)
        .sort_by_file_name(|a, b| a.cmp(b))
        .standard_filters(false)
        .hidden(default_excludes)
        .git_ignore(opts.gitignore)
        .parents(opts.gitignore)
        .require_git(true)
        .filter_entry(move |e| {
            if e.depth() == 0 {
                return true;
            }
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            if default_excludes
                && is_dir
                && e.file_name()
                    .to_str()
                    .is_some_and(|n| DEFAULT_EXCLUDED_DIRS.contains(&n))
            {
                return false;
            }
            if own.skips(e) {
                return false;
            }
            let rel = e.path().strip_prefix(&filter_root).unwrap_or(e.path());
            !excludes.matches_path(rel)
        })
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.warnings.push(walk_warning(root, &e));
                continue;
            }
        };
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            out.dirs.push(entry.path().to_path_buf());
            if opts.gitignore {
                let gitignore = entry.path().join(".gitignore");
                if gitignore.is_file() {
                    out.ignore_files.push(gitignore);
                }
            }
            continue;
        }
        if !file_type.is_file() {
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
        out.c_files.push((path.to_path_buf(), rel.to_owned()));
        out.alloc_macros.extend(scan.alloc_macros);
        out.wrapper_decls
            .extend(scan.wrapper_decls.into_iter().map(|decl| FoundDecl {
                path: path.to_path_buf(),
                file: rel.to_owned(),
                decl,
            }));
        scan.sites
    };
    for s in &mut sites {
        s.file = rel.to_owned();
    }
    out.sites.extend(sites);
}

/// How many rounds of macros calling macros are followed.
const MACRO_ROUNDS: usize = 4;

/// Adds the uses of function-like macros that call the allocation family
/// as sites: `p = NEW(struct big)` allocates at that line, which is what
/// `__LINE__` says there at run time, while the call in the macro's body
/// (also a site, at its own line) is never where the program runs it. A
/// macro's use is found like a call of a wrapper whose type is the type of
/// the first call in its body; macros calling such macros are followed a
/// few rounds deep. Only the files that mention a new macro are read again.
fn macro_uses(opts: &ScanOptions, out: &mut ScanResult) {
    let mut known: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut fresh: Vec<(String, String)> = std::mem::take(&mut out.alloc_macros);
    for _ in 0..MACRO_ROUNDS {
        fresh.retain(|(name, _)| {
            opts.names.get(name.as_bytes()).is_none() && known.insert(name.clone())
        });
        fresh.sort();
        fresh.dedup_by(|a, b| a.0 == b.0);
        if fresh.is_empty() {
            break;
        }
        out.alloc_macros.extend(fresh.iter().cloned());
        let mut names = AllocNames::default();
        for (name, ty) in &fresh {
            names.insert(name, ty);
        }
        let wanted: std::collections::HashSet<&[u8]> =
            fresh.iter().map(|(n, _)| n.as_bytes()).collect();
        let mut next = Vec::new();
        for (path, rel) in &out.c_files {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            if !mentions_any(&bytes, &wanted) {
                continue;
            }
            let scan = crate::c_sites::scan_c_names(&bytes, &names, true);
            next.extend(scan.alloc_macros);
            out.sites.extend(scan.sites.into_iter().map(|mut s| {
                s.file = rel.clone();
                s
            }));
        }
        fresh = next;
    }
    out.alloc_macros.sort();
}

/// A cheap test for "the file mentions one of these names" (any
/// identifier-like run of bytes equal to one).
fn mentions_any(bytes: &[u8], names: &std::collections::HashSet<&[u8]>) -> bool {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if ident(bytes[i]) {
            let start = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            if names.contains(&bytes[start..i]) {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
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
    macro_uses(opts, &mut out);
    out.sites.sort();
    out.sites.dedup();
    out.wrapper_decls.sort();
    out.wrapper_decls.dedup();
    out
}
