//! The two shapes of pure forwarding, each written once as a macro so that
//! adding a function is one line:
//!
//! * [`next_fn!`] — a function of the C library (or whatever comes after
//!   this library) found with `dlsym(RTLD_NEXT, …)` on its first call, with
//!   a stated result (and `errno` ENOSYS) if it does not exist.
//! * [`export_forward!`] — a C symbol this library exports only to hand the
//!   call, unchanged, to the heap underneath (jemalloc's `mallctl` family,
//!   glibc's `__libc_malloc` family in the jemalloc build).

/// `next_fn!(fn shmget(key: libc::key_t, size: usize, flags: c_int) -> c_int = -1);`
/// defines `pub(crate) fn shmget(…) -> c_int` calling the next definition
/// of `shmget`, or returning `-1` with `errno` ENOSYS when there is none.
/// Prefix `unsafe` for a function whose arguments carry a contract (a
/// pointer it writes through); the generated function is then `unsafe`
/// with the C function's contract.
///
/// The symbol is looked up once, on the first call (with the reentrancy
/// guard held, after the library's own resolution: see `real::next_symbol`).
macro_rules! next_fn {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $missing:expr) => {
        $(#[$meta])*
        pub(crate) fn $name($($arg: $ty),*) -> $ret {
            static ADDR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            match $crate::real::next_symbol(&ADDR, $crate::forward::c_name(concat!(stringify!($name), "\0"))) {
                0 => $crate::real::enosys($missing),
                // SAFETY: `f` is the next definition of this C function,
                // whose C signature is the one declared here; its
                // arguments are plain values.
                f => unsafe {
                    let f: unsafe extern "C" fn($($ty),*) -> $ret = std::mem::transmute(f);
                    f($($arg),*)
                },
            }
        }
    };
    ($(#[$meta:meta])* unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $missing:expr) => {
        $(#[$meta])*
        ///
        /// # Safety
        /// The C function's contract for its arguments.
        pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
            static ADDR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            match $crate::real::next_symbol(&ADDR, $crate::forward::c_name(concat!(stringify!($name), "\0"))) {
                0 => $crate::real::enosys($missing),
                // SAFETY: `f` is the next definition of this C function,
                // whose C signature is the one declared here; the caller
                // upholds its contract.
                f => unsafe {
                    let f: unsafe extern "C" fn($($ty),*) -> $ret = std::mem::transmute(f);
                    f($($arg),*)
                },
            }
        }
    };
}

/// `export_forward!(unsafe fn mallctl(name: *const c_char, …) -> c_int => real::mallctl, "mallctl(3)");`
/// exports `mallctl` to C, handing every call unchanged to `real::mallctl`
/// (which has the same contract). Without `unsafe`, the target is a safe
/// function and so is the export.
#[cfg_attr(not(jemalloc_backend), allow(unused_macros))] // only the jemalloc build forwards exports
macro_rules! export_forward {
    ($(#[$meta:meta])* unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $target:path) => {
        $(#[$meta])*
        ///
        /// # Safety
        /// The C contract of the function it forwards to.
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: the caller's contract is the target's.
            unsafe { $target($($arg),*) }
        }
    };
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $target:path) => {
        $(#[$meta])*
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            $target($($arg),*)
        }
    };
}

/// A NUL-terminated `&str` as a `&CStr` (for the names `next_fn!` builds
/// with `concat!`).
pub(crate) const fn c_name(name: &'static str) -> &'static std::ffi::CStr {
    match std::ffi::CStr::from_bytes_with_nul(name.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("a C name ends with its only NUL"),
    }
}

/// `export_with_caller!(fn malloc(size: usize) -> *mut c_void => malloc_from, "rsi");`
/// exports `malloc` to C as a two-instruction trampoline that hands its
/// own return address — the instruction after the program's `call malloc`,
/// which names the calling code — to `malloc_from` as one more argument,
/// in the next argument register of the x86-64 C ABI (`"rsi"` here: `rdi`,
/// `rsi`, `rdx`, `rcx`, `r8`, `r9` in order), and jumps there. No frame,
/// no call: `malloc_from` returns straight to the program. Elsewhere (and
/// in unit tests) the export calls `malloc_from(…, 0)`: no caller known.
macro_rules! export_with_caller {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty => $inner:ident, $reg:literal) => {
        #[cfg(all(target_arch = "x86_64", target_os = "linux", not(test)))]
        $(#[$meta])*
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // On entry `[rsp]` is the return address (x86-64 ABI); the
            // arguments are still in their registers, and a jump keeps the
            // stack exactly as the program's call left it. Before that the
            // entry's stack and frame pointers go to this thread's
            // `entry_frame` slot (r11: scratch, never an argument), where
            // following a wrapper starts (see `entry_frame.rs`).
            std::arch::naked_asm!(
                "mov r11, qword ptr [rip + asmalloc_entry_frame@GOTTPOFF]",
                "mov qword ptr fs:[r11], rsp",
                "mov qword ptr fs:[r11 + 8], rbp",
                concat!("mov ", $reg, ", qword ptr [rsp]"),
                "jmp {inner}",
                inner = sym $inner,
            )
        }

        #[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(test))))]
        $(#[$meta])*
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: the caller's contract is the inner function's.
            unsafe { $inner($($arg,)* 0) }
        }
    };
}
