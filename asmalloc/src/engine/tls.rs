//! A thread-local slot reached with the *initial-exec* TLS model on x86-64
//! Linux: [`initial_exec_slot!`], used for the engine's per-thread state.
//!
//! Why not `thread_local!`: in an executable it is already a single
//! `fs:`-relative load, but the LD_PRELOAD library is a shared object, and
//! there Rust (on stable) uses the general-dynamic model — a call to
//! `__tls_get_addr` on every access, about 5 % of an allocation-heavy
//! program's instructions under the tracker. The slot is defined here in
//! `.tbss` with `global_asm!` and read with the initial-exec sequence (the
//! thread pointer plus a GOT-held offset: two instructions, no call); in an
//! executable the linker relaxes it further to a constant offset.
//!
//! The cost of initial-exec: a shared object using it takes space in the
//! static TLS block, so it must be loaded at start-up (`LD_PRELOAD`,
//! `DT_NEEDED`) or fit in glibc's small surplus when `dlopen`ed (the slot is
//! a few dozen bytes, which usually fits; if not, `dlopen` fails with
//! "cannot allocate memory in static TLS block" and nothing else happens).
//!
//! The slot starts as zeroes (`.tbss`): the type must be one whose all-zero
//! bytes are its initial value (the engine's `ThreadState` is; a test checks
//! it). Other targets use `thread_local!` with the type's `new()`.

/// `initial_exec_slot!(fn current() -> *const T = T::new(), "unique_symbol")`
/// defines `fn current()` returning the calling thread's slot of type `T`:
/// an initial-exec TLS symbol on x86-64 Linux (zero-initialised: `T`'s
/// all-zero bytes must be `T::new()`), a `thread_local!` elsewhere. The
/// pointer is valid for the thread's whole life and never shared.
macro_rules! initial_exec_slot {
    ($vis:vis fn $name:ident() -> *const $ty:ty = $init:expr, $symbol:literal) => {
        // A hidden global (not exported from a shared object, visible to
        // every object file of this crate) in the thread-local zero section.
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        std::arch::global_asm!(
            concat!(".pushsection .tbss.", $symbol, ",\"awT\",@nobits"),
            ".p2align 6",
            concat!(".globl ", $symbol),
            concat!(".hidden ", $symbol),
            concat!(".type ", $symbol, ", @object"),
            concat!(".size ", $symbol, ", {size}"),
            concat!($symbol, ":"),
            ".zero {size}",
            ".popsection",
            size = const std::mem::size_of::<$ty>(),
        );

        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        #[inline(always)]
        $vis fn $name() -> *const $ty {
            const _: () = assert!(std::mem::align_of::<$ty>() <= 64);
            let p: *const $ty;
            // SAFETY: the initial-exec sequence for the TLS symbol defined
            // above: `fs:0` holds the thread pointer (x86-64 TLS ABI) and
            // the GOT entry the linker makes for `@GOTTPOFF` holds the
            // slot's offset from it. It reads only that GOT entry and the
            // thread's own TCB word, neither of which ever changes for the
            // thread (a forked child's thread has its parent's), so the
            // result is a pure function of the thread, which no call
            // changes: `nomem` lets the compiler reuse it within a
            // function (one access per interposed call, not one per use).
            unsafe {
                std::arch::asm!(
                    "mov {p}, qword ptr fs:[0]",
                    concat!("add {p}, qword ptr [rip + ", $symbol, "@GOTTPOFF]"),
                    p = out(reg) p,
                    options(pure, nomem, nostack),
                );
            }
            p
        }

        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        #[inline(always)]
        $vis fn $name() -> *const $ty {
            thread_local! {
                static SLOT: $ty = const { $init };
            }
            SLOT.with(|s| s as *const $ty)
        }
    };
}

pub(crate) use initial_exec_slot;
