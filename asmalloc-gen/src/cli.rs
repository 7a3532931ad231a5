//! The command line of `asmalloc-gen` (feature `cli`): [`run`] parses the
//! arguments with clap and drives a [`Builder`]. The `asmalloc-gen` binary
//! and `asmalloc gen` (the `asmalloc` command) both call it, so one
//! installed `asmalloc` does everything.
//!
//! Exit status: 0 ok; 1 `--check` found the table stale; 2 usage or I/O
//! error; 3 the table was written (or is current) but some inputs were
//! skipped with warnings.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use crate::{Builder, Format, Lang};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LangArg {
    C,
    Rust,
    Auto,
}

const AFTER_HELP: &str = "\
Examples:
  # C program: write mallocations.h/.c/.json into gen/, counting cf_malloc as MALLOC
  asmalloc-gen --root src --out gen --lang c --wrapper cf_malloc=MALLOC --wrapper cf_free=FREE

  # CI: fail when the committed table is stale
  asmalloc-gen --root src --out gen --lang c --check

  # Rust crate, skipping generated code
  asmalloc-gen --root src --out gen --lang rust --exclude 'generated/**'

  # the force-include header for C call sites (then: cc -include gen/asmalloc_sites.h)
  asmalloc-gen --emit-sites-header gen

Exit status: 0 ok, 1 stale table under --check, 2 usage or I/O error,
3 done but some files were skipped (warnings on stderr).
The previous table is read from OUT/mallocations.json, which is always
written: it is what keeps ids stable.
`asmalloc gen ARGS` (the asmalloc command) runs this same command line.";

/// Generates asmalloc's mallocation table (stable site ids) from C and Rust sources.
#[derive(Debug, Parser)]
#[command(name = "asmalloc-gen", version, after_help = AFTER_HELP)]
struct Args {
    /// Directory (or file) to scan; table paths are relative to it. Repeatable.
    #[arg(long, value_name = "DIR")]
    root: Vec<PathBuf>,

    /// Output directory for mallocations.{h,c,rs,json}.
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,

    /// Languages to scan.
    #[arg(long, value_enum, default_value = "auto")]
    lang: LangArg,

    /// Count calls of a C function as sites of a type: NAME=TYPE (e.g. cf_malloc=MALLOC). Repeatable.
    #[arg(long, value_name = "NAME=TYPE")]
    wrapper: Vec<String>,

    /// Skip paths matching this glob (`*`, `?`, `**`, `[ab]`, `{a,b}`; no `/` = any component). Repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,

    /// Also scan hidden entries and target/, build/, node_modules/.
    #[arg(long)]
    no_default_excludes: bool,

    /// Also scan what the git repository's .gitignore files ignore.
    #[arg(long)]
    no_gitignore: bool,

    /// Skip files larger than this many bytes (with a warning).
    #[arg(long, value_name = "BYTES", default_value_t = crate::scan::DEFAULT_MAX_FILE_SIZE)]
    max_file_size: u64,

    /// Output formats: h (mallocations.h + .c), rs, json. Repeatable or comma-separated.
    /// Default: h for --lang c, rs for --lang rust, both for auto. JSON is always written.
    #[arg(long, value_name = "FMT", value_delimiter = ',')]
    format: Vec<String>,

    /// Write nothing; exit 1 if any output file is missing or out of date.
    #[arg(long)]
    check: bool,

    /// Ignore the previous table and number sites from 1.
    #[arg(long)]
    fresh: bool,

    /// Read the previous table from this JSON file instead of OUT/mallocations.json.
    #[arg(long, value_name = "FILE")]
    previous: Option<PathBuf>,

    /// Write asmalloc_sites.h (for `cc -include`) into DIR. Without --root, does only that;
    /// with --root and --wrapper, it also makes each wrapper call the site of what it allocates.
    #[arg(long, value_name = "DIR")]
    emit_sites_header: Option<PathBuf>,

    /// Print only warnings and errors.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs the command line: `args` as from [`std::env::args_os`], the first
/// being the program name shown in usage messages (`asmalloc-gen`, or
/// `asmalloc gen`). Prints to stdout/stderr and returns the exit status.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run_args(args) {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}

fn run_args(args: Args) -> Result<u8, String> {
    if let Some(dir) = &args.emit_sites_header
        && args.root.is_empty()
    {
        if !args.wrapper.is_empty() {
            return Err(
                "asmalloc-gen: --wrapper with --emit-sites-header needs --root (the header \
                 includes the files that declare the wrappers)"
                    .into(),
            );
        }
        let path = crate::write_sites_header(dir).map_err(|e| e.to_string())?;
        if !args.quiet {
            println!("asmalloc-gen: wrote {}", path.display());
        }
        return Ok(0);
    }
    let lang = match args.lang {
        LangArg::C => Lang::C,
        LangArg::Rust => Lang::Rust,
        LangArg::Auto => Lang::Auto,
    };
    let mut formats = Vec::new();
    for f in &args.format {
        let f = f.trim();
        if f.is_empty() {
            continue;
        }
        formats.push(Format::parse(f).ok_or_else(|| {
            format!("asmalloc-gen: unknown --format `{f}` (expected h, rs or json)")
        })?);
    }
    if formats.is_empty() {
        formats = match lang {
            Lang::C => vec![Format::C],
            Lang::Rust => vec![Format::Rust],
            Lang::Auto => vec![Format::C, Format::Rust],
        };
    }
    let roots = if args.root.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.root.clone()
    };
    let mut b = Builder::new()
        .lang(lang)
        .fresh(args.fresh)
        .default_excludes(!args.no_default_excludes)
        .gitignore(!args.no_gitignore)
        .max_file_size(args.max_file_size)
        .cargo_metadata(false);
    for r in &roots {
        b = b.scan(r);
    }
    for w in &args.wrapper {
        let (name, ty) = w
            .split_once('=')
            .ok_or_else(|| format!("asmalloc-gen: --wrapper `{w}` is not NAME=TYPE"))?;
        b = b.wrapper(name.trim(), ty.trim());
    }
    for x in &args.exclude {
        b = b.exclude(x);
    }
    if let Some(dir) = &args.emit_sites_header {
        // Written again with the table: with --wrapper, it has their macros.
        b = b.sites_header(dir);
    }
    if let Some(p) = &args.previous {
        b = b.previous(p);
    }
    if args.check {
        let report = b
            .try_check(&args.out, &formats)
            .map_err(|e| e.to_string())?;
        for w in &report.warnings {
            eprintln!("{w}");
        }
        if !report.stale.is_empty() {
            for p in &report.stale {
                eprintln!("asmalloc-gen: {}: stale; regenerate the table", p.display());
            }
            return Ok(1);
        }
        if !args.quiet {
            println!("asmalloc-gen: table is up to date");
        }
        return Ok(if report.warnings.is_empty() { 0 } else { 3 });
    }
    let report = b
        .try_write(&args.out, &formats)
        .map_err(|e| e.to_string())?;
    for w in &report.warnings {
        eprintln!("{w}");
    }
    if !args.quiet {
        println!(
            "asmalloc-gen: {} sites in {} files ({} lines); wrote {}, unchanged {}",
            report.sites,
            report.files,
            report.lines,
            report.written.len(),
            report.unchanged.len()
        );
    }
    Ok(if report.warnings.is_empty() { 0 } else { 3 })
}
