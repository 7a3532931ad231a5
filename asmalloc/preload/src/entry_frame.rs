//! Where the program's allocation call entered the library: the stack
//! pointer and the frame pointer at the entry of the interposed function,
//! recorded by the naked trampoline of `export_with_caller!` (three
//! instructions: the slot's offset, two stores).
//!
//! Why: following a wrapper (`zmalloc`, `g_malloc`, `xmalloc`) means
//! unwinding from the wrapper's frame to its caller. Without this record
//! the walk first steps through the library's own frames, from wherever
//! the unwinder is called, back to the allocation call — two or three
//! frames of DWARF rules before the one that matters. With it the walk
//! starts at the wrapper's frame: `[sp]` holds the return address into the
//! wrapper, `sp + 8` is the wrapper's stack pointer at the call, and `bp`
//! is still the wrapper's (callee-saved).
//!
//! The record is a thread's own initial-exec TLS slot (`.tbss`, read
//! with `fs:`, like the engine's state; the library is loaded at start-up).
//! A signal handler that allocates in between overwrites it; the walk
//! checks `[sp]` against the return address it expects and falls back to
//! the full walk when they differ.

// The slot: the stack pointer, then the frame pointer, at the entry of
// the latest interposed call on this thread with a caller.
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(test)))]
std::arch::global_asm!(
    ".pushsection .tbss.asmalloc_entry_frame,\"awT\",@nobits",
    ".p2align 4",
    ".globl asmalloc_entry_frame",
    ".hidden asmalloc_entry_frame",
    ".type asmalloc_entry_frame, @object",
    ".size asmalloc_entry_frame, 16",
    "asmalloc_entry_frame:",
    ".zero 16",
    ".popsection",
);

/// The calling thread's record: (stack pointer, frame pointer) at the entry
/// of its latest interposed call with a caller; (0, 0) before any.
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(test)))]
#[inline(always)]
pub(crate) fn read() -> (usize, usize) {
    let (sp, bp): (usize, usize);
    // SAFETY: the initial-exec sequence for the TLS slot defined above
    // (its offset from the thread pointer is in the GOT entry the linker
    // makes for @GOTTPOFF); it reads the calling thread's own 16 bytes.
    unsafe {
        std::arch::asm!(
            "mov {off}, qword ptr [rip + asmalloc_entry_frame@GOTTPOFF]",
            "mov {sp}, qword ptr fs:[{off}]",
            "mov {bp}, qword ptr fs:[{off} + 8]",
            off = out(reg) _,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(readonly, nostack, preserves_flags),
        );
    }
    (sp, bp)
}

/// Elsewhere (and in unit tests, which interpose nothing): no record.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(test))))]
#[inline(always)]
pub(crate) fn read() -> (usize, usize) {
    (0, 0)
}
