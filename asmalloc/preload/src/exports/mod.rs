//! Every symbol the library exports to C, one file per concern:
//!
//! * `tagging` — the mode of a call and the owner of a block (no exports).
//! * `alloc_family` — `malloc` … `malloc_usable_size`.
//! * `jemalloc` — jemalloc's own API (libasmalloc_jem.so only).
//! * `mappings` — `mmap`/`munmap`/`mremap`, `shm*`, `brk`/`sbrk`.
//! * `thread_start` — `pthread_create`.
//! * `original_api` — the original ASMalloc C API.
//! * `site_table` — table registration and the call-site header's hook.
//! * `lifecycle` — constructor, destructor, fork handlers.
//!
//! This folder is the only place with `no_mangle`.

mod alloc_family;
#[cfg(jemalloc_backend)]
mod jemalloc;
mod lifecycle;
mod mappings;
mod original_api;
mod site_table;
mod tagging;
mod thread_start;
