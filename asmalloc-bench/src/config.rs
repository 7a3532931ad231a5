//! The configurations a workload runs under, and how each one turns a
//! workload's program into a command.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One configuration (a column of the result tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cfg {
    /// The program as it is: glibc malloc (Rust: `System`).
    Raw,
    /// `LD_PRELOAD=libasmalloc.so` with default settings (Rust:
    /// `AsmAlloc<System>`).
    Asm,
    /// As `Asm`, with the leak monitor sampling every second and its JSON
    /// log written (`ASMALLOC_LOG`, `ASMALLOC_SAMPLE_INTERVAL=1s`).
    AsmLog,
    /// A plain jemalloc preload: Debian's libjemalloc.so.2 (Rust:
    /// `tikv_jemallocator::Jemalloc`).
    Jem,
    /// `LD_PRELOAD=libasmalloc_jem.so` (Rust: `AsmAlloc<Jemalloc>`).
    AsmJem,
    /// `heaptrack -o FILE prog`.
    Heaptrack,
    /// valgrind memcheck, on a scaled-down run, scaled back by the work
    /// ratio.
    Memcheck,
    /// Debian's jemalloc with heap profiling: `MALLOC_CONF=prof:true`
    /// (plus `prof_final` so the profile is written at exit).
    JemProf,
}

impl Cfg {
    /// Every configuration, in the order of the columns (and of the first
    /// repetition).
    pub const ALL: [Cfg; 8] = [
        Cfg::Raw,
        Cfg::Asm,
        Cfg::AsmLog,
        Cfg::Jem,
        Cfg::AsmJem,
        Cfg::Heaptrack,
        Cfg::Memcheck,
        Cfg::JemProf,
    ];

    /// Key in results.json.
    pub fn key(self) -> &'static str {
        match self {
            Cfg::Raw => "raw",
            Cfg::Asm => "asmalloc",
            Cfg::AsmLog => "asmalloc_monitor_log",
            Cfg::Jem => "jemalloc",
            Cfg::AsmJem => "asmalloc_jem",
            Cfg::Heaptrack => "heaptrack",
            Cfg::Memcheck => "memcheck",
            Cfg::JemProf => "jemalloc_prof",
        }
    }

    /// Column header.
    pub fn title(self) -> &'static str {
        match self {
            Cfg::Raw => "raw",
            Cfg::Asm => "asmalloc",
            Cfg::AsmLog => "asmalloc +monitor+log",
            Cfg::Jem => "jemalloc",
            Cfg::AsmJem => "asmalloc_jem",
            Cfg::Heaptrack => "heaptrack",
            Cfg::Memcheck => "memcheck (scaled)",
            Cfg::JemProf => "jemalloc prof",
        }
    }
}

/// A program with its arguments and input.
#[derive(Debug, Clone)]
pub struct Prog {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// stdin from this file (else /dev/null).
    pub stdin: Option<PathBuf>,
    /// stdout to /dev/null instead of a captured file (bulk output).
    pub discard_stdout: bool,
    /// The program's own environment (every configuration).
    pub env: Vec<(&'static str, String)>,
}

impl Prog {
    pub fn new(program: impl Into<PathBuf>, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Prog {
        Prog {
            program: program.into(),
            args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
            stdin: None,
            discard_stdout: false,
            env: Vec::new(),
        }
    }
}

/// memcheck's scaled-down run: the program on 1/`scale` of the work, and
/// the same program with no work at all (the tool's fixed start-up cost,
/// which is not multiplied by the work ratio).
#[derive(Debug, Clone)]
pub struct Small {
    pub prog: Prog,
    pub scale: f64,
    pub zero: Prog,
}

/// A run to make: the command (built for a fresh output directory) and
/// what it stands for.
pub struct Invocation {
    pub prog: Prog,
    /// Run the program under this tool.
    pub wrapper: Wrapper,
    /// Environment to set; `{dir}` in a value becomes the run's output
    /// directory.
    pub env: Vec<(&'static str, String)>,
    /// Full-size work / this run's work (memcheck's scaled-down runs).
    pub scale: f64,
    /// With `scale`: the same command doing no work, run once to measure
    /// the fixed start-up cost.
    pub zero: Option<Prog>,
    /// stdout must equal the raw run's (same work, no tool printing to it).
    pub compare_stdout: bool,
}

/// A tool the program runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapper {
    None,
    Heaptrack,
    Memcheck,
}

/// A cell of the matrix: run it, or why not.
pub enum Plan {
    Run(Box<Invocation>),
    /// Not run; the text says why (shown in the tables).
    Skip(String),
}

/// Paths of the tools and libraries the configurations use.
#[derive(Debug, Clone)]
pub struct Tools {
    pub lib: PathBuf,
    pub lib_jem: PathBuf,
    /// Debian's libjemalloc.so.2 (package libjemalloc2).
    pub debian_jem: Option<PathBuf>,
    pub heaptrack: Option<PathBuf>,
    pub valgrind: Option<PathBuf>,
    /// Debian's jemalloc was built with profiling (config.prof).
    pub jem_prof: bool,
}

/// What a missing tool's cell says, and which Debian package brings it.
pub fn not_installed(package: &str) -> String {
    format!("not installed (apt-get install {package})")
}

impl Tools {
    /// `prog` under a preload configuration: the C programs and the real
    /// programs. `small` is the scaled-down run for memcheck (None: memcheck
    /// skipped, `skip_why`), `heaptrack_small` for heaptrack (None: full
    /// size).
    pub fn preload_plan(
        &self,
        cfg: Cfg,
        prog: &Prog,
        small: Option<&Small>,
        heaptrack_small: Option<&Small>,
    ) -> Plan {
        let scaled = |small: &Small, wrapper| {
            Plan::Run(Box::new(Invocation {
                prog: small.prog.clone(),
                wrapper,
                env: vec![],
                scale: small.scale,
                zero: Some(small.zero.clone()),
                compare_stdout: false,
            }))
        };
        let run = |prog: &Prog, wrapper, env: Vec<(&'static str, String)>, scale, compare| {
            Plan::Run(Box::new(Invocation {
                prog: prog.clone(),
                wrapper,
                env,
                scale,
                zero: None,
                compare_stdout: compare && !prog.discard_stdout,
            }))
        };
        let lib = self.lib.display().to_string();
        let lib_jem = self.lib_jem.display().to_string();
        match cfg {
            Cfg::Raw => run(prog, Wrapper::None, vec![], 1.0, true),
            Cfg::Asm => run(prog, Wrapper::None, asm_env(&lib, false), 1.0, true),
            Cfg::AsmLog => run(prog, Wrapper::None, asm_env(&lib, true), 1.0, true),
            Cfg::AsmJem => run(prog, Wrapper::None, asm_env(&lib_jem, false), 1.0, true),
            Cfg::Jem => match &self.debian_jem {
                Some(j) => run(
                    prog,
                    Wrapper::None,
                    vec![("LD_PRELOAD", j.display().to_string())],
                    1.0,
                    true,
                ),
                None => Plan::Skip(not_installed("libjemalloc2")),
            },
            Cfg::JemProf => match (&self.debian_jem, self.jem_prof) {
                (Some(j), true) => run(
                    prog,
                    Wrapper::None,
                    vec![
                        ("LD_PRELOAD", j.display().to_string()),
                        ("MALLOC_CONF", jem_prof_conf()),
                    ],
                    1.0,
                    true,
                ),
                (Some(_), false) => Plan::Skip("jemalloc built without profiling".into()),
                (None, _) => Plan::Skip(not_installed("libjemalloc2")),
            },
            Cfg::Heaptrack => match (&self.heaptrack, heaptrack_small) {
                (Some(_), None) => run(prog, Wrapper::Heaptrack, vec![], 1.0, false),
                (Some(_), Some(small)) => scaled(small, Wrapper::Heaptrack),
                (None, _) => Plan::Skip(not_installed("heaptrack")),
            },
            Cfg::Memcheck => match (&self.valgrind, small) {
                (Some(_), Some(small)) => scaled(small, Wrapper::Memcheck),
                (Some(_), None) => Plan::Skip("skipped (see notes)".into()),
                (None, _) => Plan::Skip(not_installed("valgrind")),
            },
        }
    }

    /// Wraps `inv` for a run whose output files go to `dir`: the command.
    pub fn command(&self, inv: &Invocation, dir: &Path) -> Command {
        self.command_for(inv, &inv.prog, dir)
    }

    /// As [`Tools::command`], for another program (the zero-work run).
    pub fn command_for(&self, inv: &Invocation, prog: &Prog, dir: &Path) -> Command {
        let mut cmd = match inv.wrapper {
            Wrapper::None => Command::new(&prog.program),
            Wrapper::Heaptrack => {
                let mut c = Command::new(self.heaptrack.as_ref().expect("heaptrack"));
                c.arg("-o")
                    .arg(dir.join("heaptrack"))
                    .arg(&inv.prog.program);
                c
            }
            Wrapper::Memcheck => {
                let mut c = Command::new(self.valgrind.as_ref().expect("valgrind"));
                c.arg("--tool=memcheck")
                    .arg(format!(
                        "--log-file={}",
                        dir.join("memcheck.%p.log").display()
                    ))
                    .arg(&prog.program);
                c
            }
        };
        cmd.args(&prog.args);
        clean_env(&mut cmd);
        for (k, v) in &prog.env {
            cmd.env(k, v);
        }
        for (k, v) in &inv.env {
            cmd.env(k, v.replace("{dir}", &dir.display().to_string()));
        }
        cmd
    }
}

/// The environment of the asmalloc configurations: `lib` preloaded (if
/// any), the exit report into a file of the run's directory (so its bytes
/// are counted; everything else default), and with `log` the monitor's log.
pub fn asm_env(lib: &str, log: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![("ASMALLOC_OUTPUT", "{dir}/report.%p.txt".to_string())];
    if !lib.is_empty() {
        env.push(("LD_PRELOAD", lib.to_string()));
    }
    if log {
        env.push(("ASMALLOC_LOG", "{dir}/asmalloc.%p.jsonl".into()));
        env.push(("ASMALLOC_SAMPLE_INTERVAL", "1s".into()));
    }
    env
}

/// `MALLOC_CONF` of the jemalloc-profiling configuration.
pub fn jem_prof_conf() -> String {
    "prof:true,prof_final:true,prof_prefix:{dir}/jeprof".into()
}

/// Removes inherited settings that would change a run: preloads, jemalloc
/// options, and every `ASMALLOC_*` variable.
pub fn clean_env(cmd: &mut Command) {
    cmd.env_remove("LD_PRELOAD")
        .env_remove("MALLOC_CONF")
        .env_remove("_RJEM_MALLOC_CONF")
        .env_remove("MALLOC_ARENA_MAX");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ASMALLOC_") {
            cmd.env_remove(k);
        }
    }
}
