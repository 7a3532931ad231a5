//! Compiles the few lines of C the library needs: pulling `asm_cmd`'s
//! arguments out of a `va_list` (stable Rust cannot), and the thread start
//! trampoline (a C frame, so `pthread_exit` and cancellation may unwind
//! through it).

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-changed=../../include/asmalloc.h");
    println!("cargo:rerun-if-changed=../../include/vm_stats.h");
    cc::Build::new()
        .file("src/shim.c")
        .include("../../include")
        .flag_if_supported("-fvisibility=hidden")
        .flag_if_supported("-fasynchronous-unwind-tables")
        .flag_if_supported("-fexceptions")
        .warnings(true)
        .extra_warnings(true)
        .compile("asmalloc_shim");
}
