//! Raw system calls and `errno`: everything here is callable on the
//! allocation path (no allocation, no lock, no panic).
//!
//! `mmap`, `munmap` and `mremap` go to the kernel directly, not to glibc's
//! wrappers: the wrappers are what we interpose, and a raw call needs no
//! `dlsym` bootstrap, so it works however early it is called.

use std::ffi::{c_int, c_void};

/// The calling thread's `errno`.
#[inline]
pub(crate) fn errno() -> c_int {
    // SAFETY: __errno_location always returns a valid pointer to the
    // calling thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno`.
#[inline]
pub(crate) fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value }
}

/// `mmap(2)`; `MAP_FAILED` with `errno` set on failure.
pub(crate) fn mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: i64,
) -> *mut c_void {
    // SAFETY: the kernel validates every argument; a mapping request cannot
    // affect memory Rust code holds references to unless `addr` and
    // MAP_FIXED say so, which is the caller's (the C program's) decision,
    // exactly as with glibc's wrapper.
    unsafe { libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, offset) as *mut c_void }
}

/// `munmap(2)`: 0, or -1 with `errno` set.
pub(crate) fn munmap(addr: *mut c_void, len: usize) -> c_int {
    // SAFETY: as for mmap: unmapping is the C program's request, forwarded.
    unsafe { libc::syscall(libc::SYS_munmap, addr, len) as c_int }
}

/// `mremap(2)`; `MAP_FAILED` with `errno` set on failure.
pub(crate) fn mremap(
    old: *mut c_void,
    old_len: usize,
    new_len: usize,
    flags: c_int,
    new_addr: *mut c_void,
) -> *mut c_void {
    // SAFETY: as for mmap; `new_addr` is only read by the kernel with
    // MREMAP_FIXED, when the caller passed it.
    unsafe {
        libc::syscall(libc::SYS_mremap, old, old_len, new_len, flags, new_addr) as *mut c_void
    }
}

/// The system page size (from the auxiliary vector; 4096 if absent).
pub(crate) fn page_size() -> usize {
    // SAFETY: getauxval has no preconditions and does not allocate.
    match unsafe { libc::getauxval(libc::AT_PAGESZ) } {
        0 => 4096,
        n => n as usize,
    }
}

/// True when the process runs in secure-execution mode (`AT_SECURE`: a
/// set-user-ID or set-group-ID program, or one with file capabilities,
/// started by a user it does not belong to). Its environment is the
/// invoking user's, not to be trusted.
pub(crate) fn secure_execution() -> bool {
    // SAFETY: getauxval has no preconditions and does not allocate.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// The calling process's id.
pub(crate) fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Closes `fd`, keeping `errno`.
pub(crate) fn close(fd: c_int) {
    let saved = errno();
    // SAFETY: closing an fd this library opened and no longer uses.
    unsafe { libc::close(fd) };
    set_errno(saved);
}

/// A close-on-exec duplicate of `fd` numbered 100 or above, keeping errno.
pub(crate) fn dup_high(fd: c_int) -> Option<c_int> {
    let saved = errno();
    // SAFETY: F_DUPFD_CLOEXEC on any fd number is safe; failure is -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) };
    set_errno(saved);
    (new >= 0).then_some(new)
}

/// (device, inode) of the file `fd` refers to, keeping errno.
pub(crate) fn file_id(fd: c_int) -> Option<(u64, u64)> {
    let saved = errno();
    // SAFETY: stat is plain data; all-zero is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable; fstat on a closed fd just fails.
    let rc = unsafe { libc::fstat(fd, &mut st) };
    set_errno(saved);
    (rc == 0).then_some((st.st_dev, st.st_ino))
}
