//! Which preload library `asmalloc run` picks, on ELF files built here with
//! `cc`:
//!
//! * detection (src/allocator.rs, compiled into this test): a program
//!   linked with `-ljemalloc`, `-ltcmalloc_minimal`, `-lmimalloc`, a plain
//!   one; jemalloc needed by a library the program links, found through the
//!   program's `DT_RUNPATH` with `$ORIGIN`, through `DT_RPATH` inherited by
//!   a library in between, or through `LD_LIBRARY_PATH` — and not through a
//!   `DT_RUNPATH`, which is not inherited; a dependency cycle; `#!` scripts
//!   (for `/bin/sh`, for the jemalloc program, through `env`, for another
//!   script), a file that is neither; a program found through `PATH`;
//! * end to end: `asmalloc run` on the jemalloc program says what it picked
//!   in one line, preloads `libasmalloc_jem.so` and passes the exit status
//!   through; the tcmalloc and mimalloc programs are named as untracked
//!   and run under `libasmalloc.so`;
//!   `--glibc` and `--jemalloc` choose without looking.
//!
//! Needs gcc and Debian's libjemalloc-dev, libgoogle-perftools-dev and
//! libmimalloc-dev; a missing one fails the test, naming the package.

#[allow(dead_code)]
#[path = "../src/allocator.rs"]
mod allocator;

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use allocator::{Allocator, Detection, Linked, Search, detect};
use asmalloc_test_support::{Cc, Lib, scratch};

const ASMALLOC: &str = env!("CARGO_BIN_EXE_asmalloc");

fn write(path: &Path, text: &str, executable: bool) {
    std::fs::write(path, text).unwrap();
    if executable {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Exits 3 after printing `$LD_PRELOAD`, so the tests see which library
/// was preloaded and that the status is passed through.
const PROGRAM: &str = r#"#include <stdio.h>
#include <stdlib.h>
int dep(void);
int main(void) {
    void *p = malloc(100);
    free(p);
    const char *preload = getenv("LD_PRELOAD");
    printf("%s\n", preload ? preload : "");
    return USE_DEP ? dep() + 2 : 3;
}
"#;

struct Fixtures {
    dir: PathBuf,
}

impl Fixtures {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Builds every program and library once.
fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let dir = scratch().to_path_buf();
        let libs = dir.join("libs");
        std::fs::create_dir_all(&libs).unwrap();
        let main_c = dir.join("main.c");
        write(&main_c, PROGRAM, false);
        let dep_c = dir.join("dep.c");
        write(&dep_c, "int dep(void) { return 1; }\n", false);
        let empty_c = dir.join("empty.c");
        write(&empty_c, "int empty_fn(void) { return 0; }\n", false);
        let o = |p: &Path| p.as_os_str().to_owned();
        let s = |s: &str| OsString::from(s);
        // A failure names the Debian package that would supply what the
        // build needs.
        let build = |out: &str, extra: &[OsString], package: &str| {
            Cc::new()
                .arg("-O1")
                .args(extra)
                .package(package)
                .build(&dir.join(out));
        };
        let program = |out: &str, use_dep: bool, link: &[&str], package: &str| {
            let mut extra = vec![
                s(if use_dep {
                    "-DUSE_DEP=1"
                } else {
                    "-DUSE_DEP=0"
                }),
                o(&main_c),
                // Keep every -l as DT_NEEDED, whatever the compiler's default.
                s("-Wl,--no-as-needed"),
                s("-L"),
                o(&libs),
                s("-Wl,-rpath-link"),
                o(&libs),
            ];
            extra.extend(link.iter().map(|l| s(l)));
            build(out, &extra, package);
        };
        let library = |name: &str, link: &[&str], package: &str| {
            let mut extra = vec![
                s("-shared"),
                s("-fPIC"),
                o(if name == "libdep.so" {
                    &dep_c
                } else {
                    &empty_c
                }),
                s("-Wl,--no-as-needed"),
                s("-L"),
                o(&libs),
            ];
            extra.extend(link.iter().map(|l| s(l)));
            build(&format!("libs/{name}"), &extra, package);
        };
        program("jem", false, &["-ljemalloc"], "libjemalloc-dev");
        program(
            "tc",
            false,
            &["-ltcmalloc_minimal"],
            "libgoogle-perftools-dev",
        );
        program("mi", false, &["-lmimalloc"], "libmimalloc-dev");
        program("plain", false, &[], "gcc");
        // libdep.so needs libjemalloc; libmid.so needs libdep.so and has no
        // search path of its own.
        library("libdep.so", &["-ljemalloc"], "libjemalloc-dev");
        library("libmid.so", &["-ldep"], "gcc");
        program(
            "via_runpath",
            true,
            &["-ldep", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/libs"],
            "gcc",
        );
        program(
            "via_rpath_chain",
            false,
            &["-lmid", "-Wl,--disable-new-dtags,-rpath,$ORIGIN/libs"],
            "gcc",
        );
        program(
            "runpath_not_inherited",
            false,
            &["-lmid", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/libs"],
            "gcc",
        );
        program("via_env", true, &["-ldep"], "gcc");
        // A cycle: libcyca.so needs libcycb.so, which needs libcyca.so and
        // then libdep.so (each finds the others through $ORIGIN).
        let origin = "-Wl,--enable-new-dtags,-rpath,$ORIGIN";
        library("libcyca.so", &[], "gcc");
        library("libcycb.so", &["-lcyca", "-ldep", origin], "gcc");
        library("libcyca.so", &["-lcycb", origin], "gcc");
        program(
            "cycle",
            false,
            &["-lcyca", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/libs"],
            "gcc",
        );
        // Scripts, and a file that is neither ELF nor script.
        write(&dir.join("sh_script"), "#!/bin/sh\nexit 0\n", true);
        write(
            &dir.join("jem_script"),
            &format!("#!{}\n", dir.join("jem").display()),
            true,
        );
        write(&dir.join("env_script"), "#!/usr/bin/env -S jem -x\n", true);
        write(
            &dir.join("script_script"),
            &format!("#!{}\n", dir.join("sh_script").display()),
            true,
        );
        write(&dir.join("text"), "just text\n", true);
        Fixtures { dir }
    })
}

/// PATH has the fixtures' directory first; no LD_LIBRARY_PATH.
fn search() -> Search {
    let mut path = OsString::from(fixtures().dir.as_os_str());
    path.push(":/usr/bin:/bin");
    Search {
        path: Some(path),
        ld_library_path: None,
        default_dirs: allocator::default_dirs(),
    }
}

fn detect_in(name: &str, search: &Search) -> Detection {
    detect(fixtures().path(name).as_os_str(), search)
}

fn linked(allocator: Allocator, library: &str, through: Option<&str>) -> Detection {
    Detection::Examined {
        interpreter: None,
        linked: Some(Linked {
            allocator,
            library: library.to_string(),
            through: through.map(str::to_string),
        }),
    }
}

const NOTHING: Detection = Detection::Examined {
    interpreter: None,
    linked: None,
};

#[test]
fn direct_allocator_libraries_are_named() {
    let s = search();
    let jem = detect_in("jem", &s);
    assert_eq!(
        jem,
        linked(Allocator::Jemalloc, "libjemalloc.so.2", None),
        "{jem:?}"
    );
    assert_eq!(jem.library(), "libasmalloc_jem.so");
    assert_eq!(
        detect_in("tc", &s),
        linked(Allocator::Tcmalloc, "libtcmalloc_minimal.so.4", None)
    );
    assert_eq!(
        detect_in("mi", &s),
        linked(Allocator::Mimalloc, "libmimalloc.so.2", None)
    );
    let plain = detect_in("plain", &s);
    assert_eq!(plain, NOTHING);
    assert_eq!(plain.library(), "libasmalloc.so");
}

#[test]
fn allocators_needed_by_dependencies_are_found() {
    let s = search();
    let through_dep = linked(Allocator::Jemalloc, "libjemalloc.so.2", Some("libdep.so"));
    // The program's DT_RUNPATH, $ORIGIN expanded.
    assert_eq!(detect_in("via_runpath", &s), through_dep);
    // libmid.so has no path; the program's DT_RPATH is inherited by it.
    assert_eq!(detect_in("via_rpath_chain", &s), through_dep);
    // A DT_RUNPATH applies to the object's own dependencies only, so
    // libdep.so is not found from libmid.so (nor would the loader find it).
    assert_eq!(detect_in("runpath_not_inherited", &s), NOTHING);
    let ld = Command::new(fixtures().path("runpath_not_inherited"))
        .output()
        .unwrap();
    assert!(
        !ld.status.success() && String::from_utf8_lossy(&ld.stderr).contains("libdep.so"),
        "the loader agrees: {ld:?}"
    );
    // No path in the program: found only through LD_LIBRARY_PATH.
    assert_eq!(detect_in("via_env", &s), NOTHING);
    let with_env = Search {
        ld_library_path: Some(fixtures().path("libs").into_os_string()),
        ..s.clone()
    };
    assert_eq!(detect_in("via_env", &with_env), through_dep);
    // A cycle is walked through once (each file is read once), on to the
    // library after it.
    assert_eq!(detect_in("cycle", &s), through_dep);
}

#[test]
fn scripts_are_judged_by_their_interpreter() {
    let s = search();
    assert_eq!(
        detect_in("sh_script", &s),
        Detection::Examined {
            interpreter: Some(PathBuf::from("/bin/sh")),
            linked: None,
        }
    );
    let jem = Some(Linked {
        allocator: Allocator::Jemalloc,
        library: "libjemalloc.so.2".to_string(),
        through: None,
    });
    let d = detect_in("jem_script", &s);
    assert_eq!(
        d,
        Detection::Examined {
            interpreter: Some(fixtures().path("jem")),
            linked: jem.clone(),
        }
    );
    assert_eq!(
        d.message("jem_script").unwrap(),
        format!(
            "asmalloc: jem_script's interpreter {} links libjemalloc.so.2 (jemalloc): using \
             libasmalloc_jem.so",
            fixtures().path("jem").display()
        )
    );
    // `#!/usr/bin/env -S jem -x`: jem, found through PATH.
    assert_eq!(
        detect_in("env_script", &s),
        Detection::Examined {
            interpreter: Some(fixtures().path("jem")),
            linked: jem,
        }
    );
    // One level only, then libasmalloc.so without an error.
    let d = detect_in("script_script", &s);
    assert_eq!(
        d,
        Detection::Unknown(format!(
            "is a script for {}, which is not an ELF file",
            fixtures().path("sh_script").display()
        ))
    );
    assert_eq!(d.library(), "libasmalloc.so");
    let d = detect_in("text", &s);
    assert_eq!(
        d.message("text").unwrap(),
        "asmalloc: text is not an ELF file and has no #! line: using libasmalloc.so"
    );
}

#[test]
fn programs_without_a_slash_are_found_through_path() {
    let s = search();
    assert_eq!(
        detect(OsStr::new("jem"), &s),
        linked(Allocator::Jemalloc, "libjemalloc.so.2", None)
    );
    assert_eq!(
        detect(OsStr::new("no-such-program-asmalloc"), &s),
        Detection::NotFound
    );
    assert_eq!(
        detect(OsStr::new("/no/such/program"), &s),
        Detection::NotFound
    );
    // `sh` from PATH is an ELF program on glibc's malloc.
    assert_eq!(detect(OsStr::new("sh"), &s), NOTHING);
}

/// Builds both libraries (no-ops when fresh) next to the `asmalloc`
/// binary, where `asmalloc run` looks for them.
fn build_preloads() {
    for lib in Lib::ALL {
        assert_eq!(lib.path().parent(), Path::new(ASMALLOC).parent());
    }
}

/// `asmalloc run [OPTIONS] -- PROGRAM` with the fixtures' directory on PATH.
fn run(options: &[&str], program: &str) -> Output {
    build_preloads();
    let mut path = OsString::from(fixtures().dir.as_os_str());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    Command::new(ASMALLOC)
        .arg("run")
        .args(["--interval", "100ms"])
        .args(options)
        .arg("--")
        .arg(program)
        .env("PATH", path)
        .env_remove("ASMALLOC_LIB")
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The library the program saw in LD_PRELOAD (it prints it).
fn preloaded(out: &Output) -> String {
    let stdout = text(&out.stdout);
    let line = stdout.lines().next().unwrap_or("");
    Path::new(line)
        .file_name()
        .map_or(String::new(), |f| f.to_string_lossy().into_owned())
}

#[test]
fn run_picks_the_jemalloc_build_for_a_jemalloc_program_and_says_so() {
    let out = run(&[], "jem");
    let err = text(&out.stderr);
    assert_eq!(
        err.lines().next(),
        Some("asmalloc: jem links libjemalloc.so.2 (jemalloc): using libasmalloc_jem.so"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(preloaded(&out), "libasmalloc_jem.so", "{err}");

    // Through a library, named by path.
    let prog = fixtures().path("via_runpath");
    let out = run(&[], prog.to_str().unwrap());
    let err = text(&out.stderr);
    assert_eq!(
        err.lines().next().unwrap_or(""),
        format!(
            "asmalloc: {} links libjemalloc.so.2 (jemalloc) through libdep.so: using \
             libasmalloc_jem.so",
            prog.display()
        ),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(preloaded(&out), "libasmalloc_jem.so", "{err}");
}

#[test]
fn run_names_untracked_allocators_and_picks_glibc_otherwise() {
    let out = run(&[], "mi");
    let err = text(&out.stderr);
    assert_eq!(
        err.lines().next(),
        Some(
            "asmalloc: mi links libmimalloc.so.2 (mimalloc), which asmalloc does not track; it \
             runs untracked"
        ),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(preloaded(&out), "libasmalloc.so", "{err}");

    // (How the library steps aside, with its own line, is tested with the
    // library.)
    let out = run(&[], "tc");
    let err = text(&out.stderr);
    assert_eq!(
        err.lines().next(),
        Some(
            "asmalloc: tc links libtcmalloc_minimal.so.4 (tcmalloc), which asmalloc does not \
             track; it runs untracked"
        ),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(preloaded(&out), "libasmalloc.so", "{err}");

    let out = run(&[], "plain");
    let err = text(&out.stderr);
    assert_eq!(
        err.lines().next(),
        Some(
            "asmalloc: plain links no jemalloc, tcmalloc or mimalloc library: using libasmalloc.so"
        ),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(preloaded(&out), "libasmalloc.so", "{err}");
}

#[test]
fn library_options_choose_without_looking() {
    for (options, lib) in [
        (&["--jemalloc"][..], "libasmalloc_jem.so"),
        (&["--glibc"][..], "libasmalloc.so"),
    ] {
        let out = run(options, "plain");
        let err = text(&out.stderr);
        assert!(
            !err.contains(" links "),
            "{options:?}: no detection:\n{err}"
        );
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert_eq!(preloaded(&out), lib, "{options:?}\n{err}");
    }
    let lib = Path::new(ASMALLOC).with_file_name("libasmalloc.so");
    let out = run(&["--lib", lib.to_str().unwrap()], "plain");
    assert!(!text(&out.stderr).contains(" links "));
    assert_eq!(preloaded(&out), "libasmalloc.so");
    let both = run(&["--glibc", "--jemalloc"], "plain");
    assert_eq!(both.status.code(), Some(2), "usage error");
}
