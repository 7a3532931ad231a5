//! Compiles the few lines of C the library needs: pulling `asm_cmd`'s
//! arguments out of a `va_list` (stable Rust cannot), and the thread start
//! trampoline (a C frame, so `pthread_exit` and cancellation may unwind
//! through it).
//!
//! Two packages build these sources: `asmalloc-preload` (libasmalloc.so,
//! over glibc's heap) and `asmalloc-preload-jem` (libasmalloc_jem.so, over
//! the jemalloc it links in). The package name selects the heap, as
//! `cfg(jemalloc_backend)`: a cargo feature would be unified across a
//! workspace build and could silently put jemalloc into libasmalloc.so.

use std::env;
use std::path::PathBuf;

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
}
