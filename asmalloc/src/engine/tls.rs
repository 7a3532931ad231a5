//! Where the calling thread's [`ThreadState`] lives: one thread-local slot
//! reached with the *initial-exec* TLS model on x86-64 Linux.
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
//! The slot starts as zeroes (`.tbss`), which is [`ThreadState::new`]'s
//! value: every field is an integer, a `bool` or a pointer whose zero is
//! its initial value (checked by a test). Other targets use
//! `thread_local!`.

use super::thread::ThreadState;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod slot {
    use super::ThreadState;

    const SIZE: usize = std::mem::size_of::<ThreadState>();
    const ALIGN: usize = std::mem::align_of::<ThreadState>();
    const _: () = assert!(ALIGN <= 64);

    // A hidden global (not exported from the shared object, visible to
    // every object file of this crate) in the thread-local zero section.
    std::arch::global_asm!(
        ".pushsection .tbss.asmalloc_thread_state,\"awT\",@nobits",
        ".p2align 6",
        ".globl asmalloc_thread_state_v1",
        ".hidden asmalloc_thread_state_v1",
        ".type asmalloc_thread_state_v1, @object",
        ".size asmalloc_thread_state_v1, {size}",
        "asmalloc_thread_state_v1:",
        ".zero {size}",
        ".popsection",
        size = const SIZE,
    );

    /// The calling thread's slot.
    #[inline(always)]
    pub(super) fn get() -> *const ThreadState {
        let p: *const ThreadState;
        // SAFETY: the initial-exec sequence for a TLS symbol defined above:
        // `fs:0` holds the thread pointer (x86-64 TLS ABI) and the GOT entry
        // the linker makes for `@GOTTPOFF` holds the slot's offset from it.
        // It reads only that GOT entry and the thread's own TCB word.
        unsafe {
            std::arch::asm!(
                "mov {p}, qword ptr fs:[0]",
                "add {p}, qword ptr [rip + asmalloc_thread_state_v1@GOTTPOFF]",
                p = out(reg) p,
                options(pure, readonly, nostack),
            );
        }
        p
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod slot {
    use super::ThreadState;

    thread_local! {
        static STATE: ThreadState = const { ThreadState::new() };
    }

    /// The calling thread's slot.
    #[inline(always)]
    pub(super) fn get() -> *const ThreadState {
        STATE.with(|s| s as *const ThreadState)
    }
}

/// The calling thread's state: valid for the whole life of the thread
/// (including its TLS destructors and the pthread key destructors), never
/// shared with another thread.
#[inline(always)]
pub(crate) fn current() -> *const ThreadState {
    slot::get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_threads_slot_reads_as_a_new_state() {
        // The loader's zero image, read through the slot on a thread that has
        // not used the tracker (this test binary's allocator is System's).
        assert!(ThreadState::new().is_pristine());
        let pristine = std::thread::spawn(|| {
            // SAFETY: this thread's own slot, alive while the thread runs.
            unsafe { &*current() }.is_pristine()
        })
        .join()
        .unwrap();
        assert!(pristine);
    }

    #[test]
    fn each_thread_has_its_own_slot() {
        let here = current() as usize;
        let there = std::thread::spawn(|| current() as usize).join().unwrap();
        assert_ne!(here, there);
        assert_eq!(here, current() as usize);
    }
}
