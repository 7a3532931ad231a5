//! Helpers shared by the end-to-end tests of the LD_PRELOAD libraries
//! (`asmalloc/preload/tests`, and its `churn` benchmark) and of the
//! `asmalloc` command (`asmalloc-cli/tests`).
//!
//! Why a crate: those tests run C programs under `libasmalloc.so` and
//! `libasmalloc_jem.so`, which are cdylibs of other packages, so cargo does
//! not build them for a test binary; and the tests run in parallel threads
//! that compile the same C program at the same moment. Each test file used
//! to carry its own copy of "which library", "the profile directory of this
//! test binary", "a scratch directory" and "compile a C file atomically";
//! the one copy is here, a dev-dependency of the test crates:
//!
//! * [`Lib`]: the two preload libraries (package, file, short name);
//!   [`Lib::path`] builds one, once per process, and returns its path;
//! * [`build_lib`], [`build_bin`]: a nested `cargo build -p PACKAGE` with the
//!   same profile and target directory as the running test binary
//!   ([`profile_dir`]), so a plain `cargo test --workspace` works from a
//!   clean checkout, and the libraries land next to the `asmalloc` binary,
//!   where `asmalloc run` looks for them;
//! * [`scratch`], [`fresh_dir`]: scratch directories (kept after the test,
//!   so a failure's files can be looked at);
//! * [`Cc`]: compiles C into an executable or a shared library under a name
//!   of its own, then renames it into place (atomic: a concurrent test
//!   running the previous copy is unharmed), naming the Debian package to
//!   install when it fails;
//! * [`pprof_top`]: a pprof profile read back by Go's own reader
//!   (`go tool pprof -top`), for the tests of `ASMALLOC_PPROF` and
//!   `asmalloc report --pprof`.
//! * [`prom`]: the metrics tests' HTTP client and Prometheus parser.

pub mod prom;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Which preload library a test runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lib {
    /// libasmalloc.so, over glibc's heap.
    Glibc,
    /// libasmalloc_jem.so, over the jemalloc it carries.
    Jemalloc,
}

impl Lib {
    /// Both libraries, glibc's first.
    pub const ALL: [Lib; 2] = [Lib::Glibc, Lib::Jemalloc];

    /// The cargo package that builds it.
    pub fn package(self) -> &'static str {
        match self {
            Lib::Glibc => "asmalloc-preload",
            Lib::Jemalloc => "asmalloc-preload-jem",
        }
    }

    /// Its file name.
    pub fn file(self) -> &'static str {
        match self {
            Lib::Glibc => "libasmalloc.so",
            Lib::Jemalloc => "libasmalloc_jem.so",
        }
    }

    /// The heap underneath, as tests name it (`glibc`, `jemalloc`).
    pub fn name(self) -> &'static str {
        match self {
            Lib::Glibc => "glibc",
            Lib::Jemalloc => "jemalloc",
        }
    }

    /// Builds the library in this test binary's [`profile_dir`] (a no-op
    /// when fresh; once per process) and returns its path.
    pub fn path(self) -> &'static Path {
        static LIBS: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
        LIBS[self as usize].get_or_init(|| build_lib(&profile_dir(), self.package(), self.file()))
    }
}

/// The workspace's top directory (where nested cargo commands run).
pub fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `<target>/<profile>` (or `<target>/<triple>/<profile>`) of the running
/// test or bench binary, which lives in its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// The cargo running the tests (`$CARGO`), else `cargo` from PATH.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cargo build --quiet ARGS` for the profile whose output directory is
/// `profile_dir`, into the same target directory.
fn cargo_build(profile_dir: &Path, args: &[&str], what: &str) {
    let profile = profile_dir
        .file_name()
        .and_then(OsStr::to_str)
        .expect("profile directory name")
        .to_string();
    let mut target = profile_dir.parent().unwrap().to_path_buf();
    let mut cmd = cargo();
    cmd.args(["build", "--quiet"]).args(args);
    // `<target>/<triple>/<profile>` when built with --target: the target
    // directory (the one with CACHEDIR.TAG) is one level up.
    if !target.join("CACHEDIR.TAG").exists()
        && let Some(parent) = target.parent().filter(|p| p.join("CACHEDIR.TAG").exists())
    {
        let triple = target.file_name().unwrap().to_str().unwrap().to_string();
        cmd.args(["--target", &triple]);
        target = parent.to_path_buf();
    }
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(workspace_root())
        .status()
        .unwrap_or_else(|e| panic!("run cargo build for {what}: {e}"));
    assert!(status.success(), "building {what} failed");
}

/// Builds `package`'s library (a no-op when fresh) for the profile whose
/// output directory is `profile_dir`; returns `profile_dir/file`.
pub fn build_lib(profile_dir: &Path, package: &str, file: &str) -> PathBuf {
    cargo_build(profile_dir, &["-p", package, "--lib"], file);
    let so = profile_dir.join(file);
    assert!(so.exists(), "{} missing after build", so.display());
    so
}

/// Builds `package`'s binary `bin` (a no-op when fresh) for this test
/// binary's profile; returns its path, in [`profile_dir`] (next to the
/// libraries [`Lib::path`] builds).
pub fn build_bin(package: &str, bin: &str) -> PathBuf {
    let dir = profile_dir();
    cargo_build(&dir, &["-p", package, "--bin", bin], bin);
    let exe = dir.join(bin);
    assert!(exe.exists(), "{} missing after build", exe.display());
    exe
}

/// The name of the running test binary, less cargo's `-<hash>`.
fn binary_name() -> String {
    let exe = std::env::current_exe().expect("test executable path");
    let stem = exe
        .file_stem()
        .map_or_else(|| "test".into(), |s| s.to_string_lossy().into_owned());
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => stem,
    }
}

/// This test process's scratch directory, `asmalloc-<test binary>-XXXXXX`
/// in the temporary directory, created on first use. It is kept after the
/// process exits, so a failing test's files can be looked at.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| fresh_dir(&format!("asmalloc-{}-", binary_name())))
}

/// A new, empty directory `PREFIXXXXXXX` in the temporary directory; the
/// caller removes it (or keeps it, to be looked at).
pub fn fresh_dir(prefix: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a scratch directory")
        .keep()
}

/// A C compiler invocation: arguments in order, then `-o OUT`.
#[derive(Debug, Clone)]
pub struct Cc {
    compiler: OsString,
    args: Vec<OsString>,
    package: Option<String>,
}

impl Default for Cc {
    fn default() -> Self {
        Cc::new()
    }
}

impl Cc {
    /// `$CC`, else `cc`.
    pub fn new() -> Cc {
        Cc::with_compiler(std::env::var_os("CC").unwrap_or_else(|| "cc".into()))
    }

    /// A given compiler (a name looked up in PATH, or a path).
    pub fn with_compiler(compiler: impl AsRef<OsStr>) -> Cc {
        Cc {
            compiler: compiler.as_ref().to_owned(),
            args: Vec::new(),
            package: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cc {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The Debian package that provides what this build needs besides the
    /// compiler (a library's headers): named when the build fails.
    pub fn package(mut self, package: &str) -> Cc {
        self.package = Some(package.to_string());
        self
    }

    /// Compiles into `out`: built under a name of its own beside it, then
    /// renamed into place — once per test process, path and command:
    /// parallel tests asking for the same program wait for the first build
    /// and share it, so none replaces a file another test is running (a
    /// replaced executable loses its name and path, which the caller-site
    /// tests read). The same path with another command (a library rebuilt
    /// against another) is built again. The error has the command and the
    /// compiler's messages.
    pub fn try_build(&self, out: &Path) -> Result<PathBuf, String> {
        type Key = (PathBuf, OsString, Vec<OsString>);
        type Builds = Mutex<Vec<(Key, Arc<Mutex<bool>>)>>;
        static BUILDS: Builds = Mutex::new(Vec::new());
        let key: Key = (out.to_path_buf(), self.compiler.clone(), self.args.clone());
        let this = {
            let mut builds = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
            match builds.iter().find(|(k, _)| *k == key) {
                Some((_, done)) => Arc::clone(done),
                None => {
                    let done = Arc::new(Mutex::new(false));
                    builds.push((key, Arc::clone(&done)));
                    done
                }
            }
        };
        let mut built = this.lock().unwrap_or_else(|e| e.into_inner());
        if *built {
            return Ok(out.to_path_buf());
        }
        let result = self.compile_into(out);
        *built = result.is_ok();
        result
    }

    fn compile_into(&self, out: &Path) -> Result<PathBuf, String> {
        static UNIQUE: AtomicUsize = AtomicUsize::new(0);
        let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
        let name = out
            .file_name()
            .map_or_else(|| "out".into(), |s| s.to_string_lossy().into_owned());
        let tmp = out.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let result = Command::new(&self.compiler)
            .args(&self.args)
            .arg("-o")
            .arg(&tmp)
            .output();
        let compiler = Path::new(&self.compiler).display();
        let output = match result {
            Ok(output) => output,
            Err(e) => {
                return Err(format!(
                    "cannot run the C compiler {compiler} ({e}): install Debian's gcc"
                ));
            }
        };
        if !output.status.success() {
            let _ = std::fs::remove_file(&tmp);
            let hint = self
                .package
                .as_ref()
                .map_or_else(String::new, |p| format!(" (is Debian's {p} installed?)"));
            let command: Vec<String> = std::iter::once(&self.compiler)
                .chain(&self.args)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            return Err(format!(
                "compiling {name} failed{hint}:\n$ {} -o {}\n{}",
                command.join(" "),
                out.display(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        std::fs::rename(&tmp, out)
            .map_err(|e| format!("rename {} into place: {e}", out.display()))?;
        Ok(out.to_path_buf())
    }

    /// [`Cc::try_build`], panicking with its error.
    pub fn build(&self, out: &Path) -> PathBuf {
        self.try_build(out).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// One row of `go tool pprof -top -lines -unit=B`: the flat value (bytes
/// for the `_space` sample types, a count for `_objects`), the function and
/// `file:line` (empty when pprof shows none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopRow {
    pub flat: i64,
    pub function: String,
    pub place: String,
}

/// Reads a gzipped pprof profile with Go's pprof (`go tool pprof -top
/// -lines -unit=B -nodefraction=0 -sample_index=INDEX`: every site, from Debian's golang-go, which
/// .ci/run installs) and returns its rows, largest first. Panics, naming
/// the package, when `go` is missing, and with pprof's message when it
/// refuses the file.
pub fn pprof_top(profile: &Path, sample_index: &str) -> Vec<TopRow> {
    let out = Command::new("go")
        .args([
            "tool",
            "pprof",
            "-top",
            "-lines",
            "-unit=B",
            "-nodefraction=0",
        ])
        .arg(format!("-sample_index={sample_index}"))
        .arg(profile)
        // Never reach for a symbol server or a browser.
        .env("PPROF_BINARY_PATH", "/nonexistent")
        .env("PPROF_TOOLS", "")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `go tool pprof` ({e}): apt-get install golang-go (.ci/run does)")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "go tool pprof refused {}:\n{}{stdout}",
        profile.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .map(|l| {
            // flat flat% sum% cum cum% function [file:line]
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert!(cols.len() >= 6, "not a pprof -top row: {l}");
            // A function name may hold spaces ("(unknown site)"); the place
            // is the last word when it ends in `:LINE`.
            let mut rest = cols[5..].to_vec();
            let is_place = |w: &str| {
                w.rsplit_once(':')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            };
            let place = match rest.last() {
                Some(w) if rest.len() > 1 && is_place(w) => rest.pop().unwrap_or("").to_string(),
                _ => String::new(),
            };
            TopRow {
                flat: cols[0]
                    .trim_end_matches('B')
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}: {l}")),
                function: rest.join(" "),
                place,
            }
        })
        .collect()
}

/// The registry's unpacked sources of crate `name` at `version`
/// (`~/.cargo/registry/src/*/name-version`), fetched there with `cargo
/// fetch` on a scratch manifest when absent; panics when that fails.
pub fn registry_crate(name: &str, version: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let find = || -> Option<PathBuf> {
        for index in std::fs::read_dir(home.join("registry/src")).ok()? {
            let p = index.ok()?.path().join(format!("{name}-{version}"));
            if p.is_dir() {
                return Some(p);
            }
        }
        None
    };
    if let Some(p) = find() {
        return p;
    }
    let dir = scratch().join(format!("fetch-{name}"));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"fetch-sources\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             [workspace]\n[dependencies]\n{name} = \"={version}\"\n"
        ),
    )
    .unwrap();
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .arg("fetch")
        .current_dir(&dir)
        .status()
        .expect("run cargo fetch");
    assert!(status.success(), "cargo fetch of {name} {version} failed");
    find().unwrap_or_else(|| panic!("{name}-{version} not in the registry after cargo fetch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_are_named_after_their_packages() {
        assert_eq!(Lib::ALL.map(Lib::name), ["glibc", "jemalloc"]);
        assert_eq!(Lib::Jemalloc.file(), "libasmalloc_jem.so");
        assert_eq!(Lib::Glibc.package(), "asmalloc-preload");
    }

    #[test]
    fn compiles_atomically_and_names_the_package_on_failure() {
        let dir = fresh_dir("asmalloc-test-support-");
        let src = dir.join("ok.c");
        std::fs::write(&src, "int main(void) { return 7; }\n").unwrap();
        let exe = Cc::new().arg("-O1").arg(&src).build(&dir.join("ok"));
        assert_eq!(Command::new(&exe).status().unwrap().code(), Some(7));
        let bad = dir.join("bad.c");
        std::fs::write(&bad, "#include <no-such-header.h>\n").unwrap();
        let err = Cc::new()
            .arg(&bad)
            .package("libno-such-dev")
            .try_build(&dir.join("bad"))
            .unwrap_err();
        assert!(
            err.contains("compiling bad failed (is Debian's libno-such-dev installed?)"),
            "{err}"
        );
        // Nothing but the sources and the one executable is left.
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["bad.c", "ok", "ok.c"]);
        let missing = Cc::with_compiler("/no/such/cc")
            .arg(&src)
            .try_build(&dir.join("x"))
            .unwrap_err();
        assert!(missing.contains("install Debian's gcc"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
