//! `asmalloc`: the one command for users.
//!
//! * `asmalloc run [OPTIONS] -- PROGRAM ARGS…` runs a program under the
//!   LD_PRELOAD library (the jemalloc build when the program links jemalloc)
//!   with the leak monitor on, forwards its exit status, and prints a final
//!   leak summary;
//! * `asmalloc report LOG [--svg FILE] [--html FILE] [--pprof FILE]
//!   [--flamegraph FILE]` reads a JSON-lines log: top sites, verdicts, what
//!   it says at the end of the run, the top sampled stacks, and a plot of
//!   net bytes per site over time (an SVG file, or a self-contained page
//!   with the values under the pointer, the table and the verdicts), a pprof
//!   heap profile, or a flame graph of the sampled stacks' live bytes;
//! * `asmalloc gen ARGS…` generates a site table: the `asmalloc-gen`
//!   command line, built in (no separate binary needed).
//!
//! Exit status: `run` exits as the program did (128 + signal number when a
//! signal killed it, as a shell reports it; 127 when it could not be
//! started); with `--budget`, a program that exited 0 gives 3 when a site
//! exceeded its budget and 2 when the budget could not be judged; `report` exits 0, or 1 when the log had unreadable lines (they
//! are named and skipped), or 2 when it cannot be read at all or an output cannot be written (a
//! flame graph of a log without sampled stacks); usage errors
//! exit 2.
#![deny(unsafe_code)]

mod allocator;
mod budget;
mod flamegraph;
mod gen_cmd;
mod html;
mod pprof;
mod report;
mod run;
#[allow(unsafe_code)]
mod signals;
mod svg;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The log reader is the crate's library part (src/lib.rs), so the fuzz
// target and the corpus replay can reach it; `crate::log` still names it.
use asmalloc_cli::log;

#[derive(Parser)]
#[command(
    name = "asmalloc",
    version,
    about = "Find the allocation site whose live memory keeps growing, while the program runs",
    after_help = "Examples:\n  asmalloc run -- ./server --port 8080\n  asmalloc run --interval 1s --log server.jsonl -- ./server\n  asmalloc run --budget '*=1MiB/min' --budget 'cache.c:*=0' -- ./soak-test\n  asmalloc report server.jsonl --svg server.svg --html server.html\n  asmalloc report server.jsonl --pprof heap.pb.gz\n  asmalloc run --stacks --log server.jsonl -- ./server && asmalloc report server.jsonl --flamegraph live.svg\n  asmalloc gen --root src --out gen --lang c"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run PROGRAM under the preload library with the leak monitor on
    /// (libasmalloc_jem.so when PROGRAM links jemalloc, else libasmalloc.so;
    /// one line says which).
    Run(run::RunArgs),
    /// Summarise a JSON-lines log written by `asmalloc run` or ASMALLOC_LOG.
    Report {
        /// The log file.
        log: PathBuf,
        /// How many sites to list and plot.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Also draw net bytes per site over time into this SVG file.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Also write one self-contained HTML page: the chart (values under
        /// the pointer), the site table and the verdicts.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Also write the last numbers of every site as a gzipped pprof
        /// heap profile (live and allocated bytes and blocks; `go tool
        /// pprof -top FILE`).
        #[arg(long, value_name = "FILE.pb.gz")]
        pprof: Option<PathBuf>,
        /// Also draw the estimated live bytes of the sampled stacks (a run
        /// with `--stacks`) as a flame graph into this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        flamegraph: Option<PathBuf>,
    },
    /// Generate the site table (the asmalloc-gen command line, built in).
    #[command(disable_help_flag = true)]
    Gen {
        /// Generator arguments (try `asmalloc gen --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Report {
            log,
            top,
            svg,
            html,
            pprof,
            flamegraph,
        } => report::report(
            &log,
            top,
            report::Outputs {
                svg: svg.as_deref(),
                html: html.as_deref(),
                pprof: pprof.as_deref(),
                flamegraph: flamegraph.as_deref(),
            },
        ),
        Command::Gen { args } => gen_cmd::gen_cmd(args),
    }
}
