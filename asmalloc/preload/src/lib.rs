//! # libasmalloc.so — asmalloc for unmodified C programs
//!
//! Loaded with `LD_PRELOAD`, this library interposes the C allocation family
//! (`malloc` … `malloc_usable_size`), `mmap`/`munmap`/`mremap`, System V
//! shared memory, `brk`/`sbrk` and `pthread_create`, and charges every heap
//! block to the allocation site the program named (with the original
//! ASMalloc calls `asm_mallocation_set`, or the call-site header of
//! `asmalloc-gen`), using the accounting engine of the `asmalloc` crate. It
//! exports the original ASMalloc C API (`asm_hook`, `asm_cmd`,
//! `asm_mallocation_set`, `asm_mallocation_get`, `get_vm_stats`,
//! `log_vm_stats`, `vm_stats_desc`) and the table registration used by
//! generated code. See `docs/preload.md` for the user manual and
//! `docs/preload-hazards.md` for what it takes to be safe inside any process.
//!
//! ## Layout
//!
//! * `exports/` — every exported C symbol, one file per concern (the only
//!   place with `no_mangle`).
//! * `real` — forwarding to the heap (glibc's `__libc_malloc` & co., or the
//!   bundled jemalloc), `dlsym` for the rest, and `real/foreign.rs`: stepping
//!   aside for another allocator.
//! * `forward` — the two forwarding macros (`next_fn!`, `export_forward!`).
//! * `syscalls` — raw system calls and `errno`.
//! * `guard` — the per-thread reentrancy guard.
//! * `settings`, `output`, `report`, `metrics`, `shm`, `threads`, `api` —
//!   safe code.
//! * `wrappers/` — charging calls made inside allocation wrappers to the
//!   wrappers' callers. The stack walk it uses, the sampled stacks
//!   (`ASMALLOC_SAMPLE_BYTES`) and the naming of addresses are the
//!   runtime's (`asmalloc::__private::stacks`), shared with Rust programs.
//!
//! `unsafe` lives only in `exports/`, `real`, `forward`, `syscalls`,
//! `entry_frame` (the TLS read of where a call entered), and the loader
//! calls of `wrappers/`.

#![deny(unsafe_op_in_unsafe_fn)]
// In unit tests the exports are not `no_mangle`, so nothing calls them.
#![cfg_attr(test, allow(dead_code))]

#[macro_use]
mod forward;

mod api;
mod entry_frame;
mod exports;
mod guard;
mod metrics;
mod output;
mod real;
mod report;
mod settings;
mod shm;
mod syscalls;
mod threads;
mod wrappers;
