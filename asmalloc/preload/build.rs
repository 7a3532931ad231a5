//! Compiles the few lines of C the library needs: pulling `asm_cmd`'s
//! arguments out of a `va_list` (stable Rust cannot), and the thread start
//! trampoline (a C frame, so `pthread_exit` and cancellation may unwind
//! through it).
//!
//! It also writes the linker script that puts the functions which run in
//! every process (`hot/functions.txt`) together at the start of the
//! library's code (see `hot_text`), and links GCC's unwinder in statically
//! (see `static_unwinder`): both keep down what the library costs a process
//! in resident memory (docs/preload.md, "Resident memory").
//!
//! Two packages build these sources: `asmalloc-preload` (libasmalloc.so,
//! over glibc's heap) and `asmalloc-preload-jem` (libasmalloc_jem.so, over
//! the jemalloc it links in). The package name selects the heap, as
//! `cfg(jemalloc_backend)`: a cargo feature would be unified across a
//! workspace build and could silently put jemalloc into libasmalloc.so.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // This script and the sources live in asmalloc/preload/.
    let preload = if manifest.join("src/shim.c").exists() {
        manifest
    } else {
        manifest.join("../preload")
    };
    let jemalloc = env::var("CARGO_PKG_NAME").as_deref() == Ok("asmalloc-preload-jem");
    println!("cargo::rustc-check-cfg=cfg(jemalloc_backend)");
    println!(
        "cargo::rerun-if-changed={}",
        preload.join("src/shim.c").display()
    );
    println!(
        "cargo::rerun-if-changed={}",
        preload.join("../../include/asmalloc.h").display()
    );
    println!(
        "cargo::rerun-if-changed={}",
        preload.join("../../include/vm_stats.h").display()
    );
    let mut build = cc::Build::new();
    build
        .file(preload.join("src/shim.c"))
        .include(preload.join("../../include"))
        .flag_if_supported("-fvisibility=hidden")
        .flag_if_supported("-fasynchronous-unwind-tables")
        .flag_if_supported("-fexceptions")
        .warnings(true)
        .extra_warnings(true);
    if jemalloc {
        println!("cargo::rustc-cfg=jemalloc_backend");
        build.define("ASMALLOC_JEMALLOC", None);
        // jemalloc's own mmap/munmap/sbrk calls would otherwise bind to
        // this library's exported (counting) wrappers and show up as the
        // program's mappings; redirect them to shim.c's raw forwarders.
        for sym in ["mmap", "mmap64", "munmap", "sbrk"] {
            println!("cargo::rustc-cdylib-link-arg=-Wl,--wrap={sym}");
        }
    }
    build.compile("asmalloc_shim");
    hot_text(&preload);
    static_unwinder();
}

/// Rust's standard library links the unwinder as `-lgcc_s`, so every
/// program the library is preloaded into would map libgcc_s.so.1 as well
/// (84 KiB resident in a small C program that otherwise never loads it),
/// only for a panic's unwinding and backtrace. This links the same GCC
/// unwinder from `libgcc_eh.a` into the library instead, as `gcc
/// -static-libgcc` does for a C or C++ shared library: its symbols are
/// hidden (nothing is exported or interposed), it finds unwind tables
/// through `dl_iterate_phdr` like the shared one, and the library's own
/// stack walks use framehop, not it. Named before the standard library's
/// `-lgcc_s`, it supplies every `_Unwind_*` symbol, so `--as-needed`
/// (rustc's default) drops libgcc_s from the library's DT_NEEDED; a
/// `pthread_exit` or cancellation still unwinds through the library's C
/// trampoline with glibc's own (dlopened) libgcc_s, which only needs the
/// library's `.eh_frame`. (GNU ld takes an archive's members only for the
/// references seen before it: in a debug build, whose standard library
/// comes after as separate archives, libgcc_s can stay needed; a release
/// build is one object after LTO, and lld has no such order.)
fn static_unwinder() {
    println!("cargo::rustc-link-lib=static:-bundle=gcc_eh");
}

/// The functions listed in `hot/functions.txt` (start-up, the allocation
/// family, thread start, the report at exit: what runs in every process)
/// go into one output section, `.text.asmalloc_hot`, placed before
/// `.text`. The kernel maps a library's code in 64 KiB windows around each
/// page a process touches; spread over 1.7 MB of code, those functions made
/// 1.1 MB of it resident in every process, together about 240 KiB
/// (docs/preload.md, "Resident memory").
///
/// The script only adds a section (`INSERT BEFORE .text`: the linker's
/// default layout stays), which both lld (rustc's default linker on
/// x86_64 Linux since 1.90) and GNU ld (the `cc` default before) accept;
/// gold, which has no `INSERT`, is not supported. A pattern matching
/// nothing is no error, and a function no pattern matches stays in `.text`.
fn hot_text(preload: &Path) {
    let list = preload.join("hot/functions.txt");
    println!("cargo::rerun-if-changed={}", list.display());
    let text = fs::read_to_string(&list).expect("asmalloc/preload/hot/functions.txt");
    let mut script = String::from(
        "/* Generated by asmalloc/preload/build.rs from hot/functions.txt. */\n\
         SECTIONS\n{\n  .text.asmalloc_hot :\n  {\n\
         \x20   /* The C runtime's code in the library (crtbegin: run when it\n\
         \x20      is loaded and unloaded; libc_nonshared: pthread_atfork),\n\
         \x20      and the PLT its C calls go through (lld puts it after all\n\
         \x20      of .text otherwise: a window of cold code). */\n\
         \x20   *crtbegin*.o(.text .text.*)\n\
         \x20   *libc_nonshared.a:*(.text .text.*)\n\
         \x20   *(.plt)\n",
    );
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // A linker script takes a pattern unquoted only from these
        // characters (quoted, it would be matched literally).
        assert!(
            line.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.$*".contains(&b)),
            "hot/functions.txt: not a symbol pattern: {line}"
        );
        // With one section per function, a function's code is in
        // `.text.NAME`, or `.text.unlikely.NAME` when the compiler thinks
        // it cold (`#[cold]`, the slow paths); GCC puts constructors in
        // `.text.startup.NAME` (jemalloc's) and hot ones in `.text.hot.NAME`.
        writeln!(
            script,
            "    *(.text.{line} .text.unlikely.{line} .text.startup.{line} .text.hot.{line})"
        )
        .expect("a String");
    }
    script.push_str("  }\n}\nINSERT BEFORE .text;\n");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("hot-text.ld");
    fs::write(&out, script).expect("writing the linker script to OUT_DIR");
    println!("cargo::rustc-cdylib-link-arg=-Wl,-T,{}", out.display());
}
