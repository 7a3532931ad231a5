//! The library entry point: configure, scan, assign ids, write or check.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::c_sites::AllocNames;
use crate::emit::{self, C_SOURCE_FILE, Format, HEADER_FILE, JSON_FILE, RUST_FILE};
use crate::error::{Error, Warning};
use crate::glob::Excludes;
use crate::ids::{Table, assign};
use crate::scan::{Lang, ScanOptions, ScanResult, scan};
use crate::types::{builtin_type_id, is_valid_type_name};
use crate::write::write_if_changed;

/// Configures and runs a generation; for `build.rs` and the CLI.
///
/// ```no_run
/// // build.rs
/// let out = std::env::var("OUT_DIR").unwrap();
/// asmalloc_gen::Builder::new().scan("src").write_rust(out);
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    roots: Vec<PathBuf>,
    opts: ScanOptions,
    excludes: Vec<String>,
    wrappers: Vec<(String, String)>,
    previous: Option<PathBuf>,
    fresh: bool,
    cargo: Option<bool>,
    sites_header: Option<PathBuf>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

/// A generated table with what the scan saw.
#[derive(Debug)]
pub struct Generated {
    /// The table with ids.
    pub table: Table,
    /// The scan: files, directories, warnings, line counts.
    pub scan: ScanResult,
    /// The configured wrappers, `(name, type)` as the table spells the type.
    pub wrappers: Vec<(String, String)>,
}

impl Generated {
    /// `mallocations.h`.
    pub fn header(&self) -> String {
        emit::c::header(&self.table)
    }

    /// `mallocations.c`.
    pub fn c_source(&self) -> String {
        emit::c::source()
    }

    /// `mallocations.rs`.
    pub fn rust(&self) -> String {
        emit::rust::module(&self.table)
    }

    /// `mallocations.json`.
    pub fn json(&self) -> String {
        emit::json::document(&self.table)
    }

    /// `asmalloc_sites.h` for this program, to be written into `dir`: the
    /// shipped header plus a macro per wrapper (see [`emit::sites`]), and
    /// the warnings about wrappers it leaves alone.
    pub fn sites_header(&self, dir: &Path) -> (String, Vec<Warning>) {
        emit::sites::header(&self.table, &self.wrappers, &self.scan.wrapper_decls, dir)
    }

    /// The files for `formats` (JSON always included), as (name, text),
    /// sorted by name.
    pub fn files(&self, formats: &[Format]) -> Vec<(&'static str, String)> {
        let set: BTreeSet<Format> = formats.iter().copied().chain([Format::Json]).collect();
        let mut out = Vec::new();
        for f in set {
            match f {
                Format::C => {
                    out.push((HEADER_FILE, self.header()));
                    out.push((C_SOURCE_FILE, self.c_source()));
                }
                Format::Rust => out.push((RUST_FILE, self.rust())),
                Format::Json => out.push((JSON_FILE, self.json())),
            }
        }
        out.sort_by_key(|(n, _)| *n);
        out
    }
}

/// What a write did.
#[derive(Debug, Default)]
pub struct WriteReport {
    /// Files whose bytes changed.
    pub written: Vec<PathBuf>,
    /// Files left alone (same bytes, same mtime).
    pub unchanged: Vec<PathBuf>,
    /// Skipped inputs.
    pub warnings: Vec<Warning>,
    /// Live sites in the table.
    pub sites: usize,
    /// Files scanned.
    pub files: usize,
    /// Lines scanned.
    pub lines: u64,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Output files that are missing or differ from what would be written.
    pub stale: Vec<PathBuf>,
    /// Skipped inputs.
    pub warnings: Vec<Warning>,
}

impl Builder {
    /// A builder with the built-in allocation family, default excludes and
    /// no roots.
    pub fn new() -> Builder {
        Builder {
            roots: Vec::new(),
            opts: ScanOptions::default(),
            excludes: Vec::new(),
            wrappers: Vec::new(),
            previous: None,
            fresh: false,
            cargo: None,
            sites_header: None,
        }
    }

    /// Adds a directory (or single file) to scan; table paths are relative
    /// to it.
    pub fn scan(mut self, root: impl AsRef<Path>) -> Builder {
        self.roots.push(root.as_ref().to_path_buf());
        self
    }

    /// Languages to scan (default: both, by extension).
    pub fn lang(mut self, lang: Lang) -> Builder {
        self.opts.lang = lang;
        self
    }

    /// Counts calls of the C function `name` as sites of `type_name`
    /// (`"MALLOC"`, `"FREE"`, … or a new type such as `"ARENA"`).
    pub fn wrapper(mut self, name: &str, type_name: &str) -> Builder {
        self.wrappers.push((name.to_owned(), type_name.to_owned()));
        self
    }

    /// Skips paths matching a glob (see [`crate::glob`]). A malformed
    /// pattern makes the generation fail with [`Error::Config`].
    pub fn exclude(mut self, pattern: &str) -> Builder {
        self.excludes.push(pattern.to_owned());
        self
    }

    /// Turns the default excludes (hidden, `target`, `build`,
    /// `node_modules`) on or off.
    pub fn default_excludes(mut self, on: bool) -> Builder {
        self.opts.default_excludes = on;
        self
    }

    /// Skips (default) or scans what the tree's `.gitignore` files ignore.
    pub fn gitignore(mut self, on: bool) -> Builder {
        self.opts.gitignore = on;
        self
    }

    /// Another directory the generator's files go to (such as the one
    /// `asmalloc_sites.h` is written into): like the output directory of
    /// [`Builder::try_write`] and [`Builder::try_check`], which needs no
    /// call, the generated files in it are never scanned, nor anything in it
    /// when it lies inside a root (unless it is a root or above one).
    pub fn generated_dir(mut self, dir: impl AsRef<Path>) -> Builder {
        self.opts.output_dirs.push(dir.as_ref().to_path_buf());
        self
    }

    /// Also writes (or checks) `asmalloc_sites.h` in `dir`, with a macro
    /// for each [`Builder::wrapper`] that makes its calls the sites (see
    /// `docs/wrappers.md`); like [`Builder::generated_dir`], `dir` is never
    /// scanned.
    pub fn sites_header(mut self, dir: impl AsRef<Path>) -> Builder {
        self.opts.output_dirs.push(dir.as_ref().to_path_buf());
        self.sites_header = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Files larger than this many bytes are skipped with a warning.
    pub fn max_file_size(mut self, bytes: u64) -> Builder {
        self.opts.max_file_size = bytes;
        self
    }

    /// Reads the previous table from this JSON file instead of the output
    /// directory's `mallocations.json`.
    pub fn previous(mut self, json: impl AsRef<Path>) -> Builder {
        self.previous = Some(json.as_ref().to_path_buf());
        self
    }

    /// Ignores any previous table: ids are assigned from 1 in file order.
    pub fn fresh(mut self, fresh: bool) -> Builder {
        self.fresh = fresh;
        self
    }

    /// Prints `cargo:rerun-if-changed` / `cargo:warning` lines. Default: on
    /// when running inside a build script (`OUT_DIR` and `TARGET` set).
    pub fn cargo_metadata(mut self, on: bool) -> Builder {
        self.cargo = Some(on);
        self
    }

    fn cargo_on(&self) -> bool {
        self.cargo.unwrap_or_else(|| {
            std::env::var_os("OUT_DIR").is_some() && std::env::var_os("TARGET").is_some()
        })
    }

    fn names(&self) -> Result<AllocNames, Error> {
        let mut names = AllocNames::builtin();
        for (name, ty) in self.wrapper_list()? {
            names.insert(&name, &ty);
        }
        Ok(names)
    }

    /// The wrappers with their type names normalised (built-in types in
    /// upper case), checked.
    fn wrapper_list(&self) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        for (name, ty) in &self.wrappers {
            if !is_valid_type_name(name) {
                return Err(Error::Config(format!(
                    "wrapper `{name}` is not a C identifier"
                )));
            }
            if !is_valid_type_name(ty) {
                return Err(Error::Config(format!(
                    "wrapper `{name}`: type `{ty}` is not an identifier"
                )));
            }
            let upper = ty.to_ascii_uppercase();
            let ty = if builtin_type_id(&upper).is_some() {
                upper
            } else {
                ty.clone()
            };
            out.push((name.clone(), ty));
        }
        Ok(out)
    }

    /// Reads the previous table: the explicit one, else `default`, if it
    /// exists.
    fn load_previous(&self, default: Option<&Path>) -> Result<Option<Table>, Error> {
        if self.fresh {
            return Ok(None);
        }
        let Some(path) = self.previous.as_deref().or(default) else {
            return Ok(None);
        };
        match std::fs::read_to_string(path) {
            Ok(text) => emit::json::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn generate(&self, out_dir: Option<&Path>) -> Result<Generated, Error> {
        if self.roots.is_empty() {
            return Err(Error::Config("nothing to scan: add a root".into()));
        }
        let mut opts = self.opts.clone();
        opts.names = self.names()?;
        opts.excludes = Excludes::new(&self.excludes)?;
        opts.output_dirs.extend(out_dir.map(Path::to_path_buf));
        let default_previous = out_dir.map(|d| d.join(JSON_FILE));
        let default_previous = default_previous.as_deref();
        let previous = self.load_previous(default_previous)?;
        let scan = scan(&self.roots, &opts);
        let kept: std::collections::HashSet<String> = scan.skipped.iter().cloned().collect();
        let table = assign(previous.as_ref(), &kept, &scan.sites)?;
        // Type names must map to distinct C enumerators.
        let mut seen = BTreeSet::new();
        for t in &table.types {
            if !seen.insert(t.to_ascii_uppercase()) {
                return Err(Error::Config(format!(
                    "type `{t}` collides with another type that differs only in case"
                )));
            }
        }
        Ok(Generated {
            table,
            scan,
            wrappers: self.wrapper_list()?,
        })
    }

    /// Scans and assigns ids (previous table: [`Builder::previous`] only).
    pub fn try_generate(&self) -> Result<Generated, Error> {
        self.generate(None)
    }

    /// Scans, assigns ids keeping those of `out_dir/mallocations.json`, and
    /// writes the `formats` (plus the JSON) into `out_dir`, each only if its
    /// bytes changed.
    pub fn try_write(
        &self,
        out_dir: impl AsRef<Path>,
        formats: &[Format],
    ) -> Result<WriteReport, Error> {
        let out_dir = out_dir.as_ref();
        let generated = self.generate(Some(out_dir))?;
        let mut report = WriteReport {
            warnings: generated.scan.warnings.clone(),
            sites: generated.table.live().count(),
            files: generated.scan.files.len(),
            lines: generated.scan.lines,
            ..WriteReport::default()
        };
        let mut files: Vec<(PathBuf, String)> = generated
            .files(formats)
            .into_iter()
            .map(|(name, text)| (out_dir.join(name), text))
            .collect();
        if let Some(dir) = &self.sites_header {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let (text, warnings) = generated.sites_header(dir);
            report.warnings.extend(warnings);
            files.push((dir.join(crate::SITES_HEADER_FILE), text));
        }
        for (path, text) in files {
            if write_if_changed(&path, text.as_bytes())? {
                report.written.push(path);
            } else {
                report.unchanged.push(path);
            }
        }
        if self.cargo_on() {
            for root in &self.roots {
                println!("cargo:rerun-if-changed={}", root.display());
            }
            for d in &generated.scan.dirs {
                println!("cargo:rerun-if-changed={}", d.display());
            }
            for f in generated
                .scan
                .files
                .iter()
                .chain(&generated.scan.ignore_files)
            {
                println!("cargo:rerun-if-changed={}", f.display());
            }
            if let Some(p) = &self.previous {
                println!("cargo:rerun-if-changed={}", p.display());
            }
            for w in &report.warnings {
                println!("cargo:warning={w}");
            }
        }
        Ok(report)
    }

    /// [`Builder::try_write`] with `mallocations.h` and `mallocations.c`.
    pub fn try_write_c(&self, out_dir: impl AsRef<Path>) -> Result<WriteReport, Error> {
        self.try_write(out_dir, &[Format::C])
    }

    /// [`Builder::try_write`] with `mallocations.rs`.
    pub fn try_write_rust(&self, out_dir: impl AsRef<Path>) -> Result<WriteReport, Error> {
        self.try_write(out_dir, &[Format::Rust])
    }

    /// [`Builder::try_write_c`] for build scripts: panics with the error's
    /// message (which names the file and line) on failure.
    pub fn write_c(&self, out_dir: impl AsRef<Path>) -> WriteReport {
        self.try_write_c(out_dir).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Builder::try_write_rust`] for build scripts: panics with the
    /// error's message on failure.
    pub fn write_rust(&self, out_dir: impl AsRef<Path>) -> WriteReport {
        self.try_write_rust(out_dir)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Compares what would be written with what `out_dir` holds, writing
    /// nothing. A missing or different file is stale.
    pub fn try_check(
        &self,
        out_dir: impl AsRef<Path>,
        formats: &[Format],
    ) -> Result<CheckReport, Error> {
        let out_dir = out_dir.as_ref();
        let generated = self.generate(Some(out_dir))?;
        let mut report = CheckReport {
            warnings: generated.scan.warnings.clone(),
            ..CheckReport::default()
        };
        let mut files: Vec<(PathBuf, String)> = generated
            .files(formats)
            .into_iter()
            .map(|(name, text)| (out_dir.join(name), text))
            .collect();
        if let Some(dir) = &self.sites_header {
            let (text, warnings) = generated.sites_header(dir);
            report.warnings.extend(warnings);
            files.push((dir.join(crate::SITES_HEADER_FILE), text));
        }
        for (path, text) in files {
            match std::fs::read(&path) {
                Ok(old) if old == text.as_bytes() => {}
                _ => report.stale.push(path),
            }
        }
        Ok(report)
    }
}
