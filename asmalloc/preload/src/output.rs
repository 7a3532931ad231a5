//! Where reports go: stderr, or the `ASMALLOC_OUTPUT` file.
//!
//! Stderr is duplicated when the library starts, so the report at exit
//! still arrives when the program closed its stderr first (coreutils do,
//! in an `atexit` handler). Before writing we check that the duplicate
//! still is the file stderr was (a program that closes every descriptor
//! might have reused the number); otherwise we write to fd 2.
//!
//! The file is opened lazily by the first report of each process (so a
//! forked child with `%p` in the path writes its own file), appended to,
//! and written with `write(2)` — never through Rust's `stderr` lock, which a
//! fork could leave held in the child.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use crate::{settings, syscalls};

/// `pid << 32 | fd` of the open report file; 0 = none yet.
static OPEN: AtomicU64 = AtomicU64::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);

/// The path with `%p` replaced by `pid`.
pub(crate) fn expand(path: &str, pid: i32) -> String {
    path.replace("%p", &pid.to_string())
}

/// The saved stderr duplicate (-1 = none) and the (device, inode) it had.
static SAVED_FD: AtomicI32 = AtomicI32::new(-1);
static SAVED_DEV: AtomicU64 = AtomicU64::new(0);
static SAVED_INO: AtomicU64 = AtomicU64::new(0);

/// Keeps a duplicate of stderr for reports (called by the constructor).
pub(crate) fn save_stderr() {
    let Some(id) = syscalls::file_id(2) else {
        return;
    };
    if let Some(fd) = syscalls::dup_high(2) {
        SAVED_DEV.store(id.0, Ordering::Relaxed);
        SAVED_INO.store(id.1, Ordering::Relaxed);
        SAVED_FD.store(fd, Ordering::Release);
    }
}

fn stderr_fd() -> i32 {
    let fd = SAVED_FD.load(Ordering::Acquire);
    if fd >= 0
        && syscalls::file_id(fd)
            == Some((
                SAVED_DEV.load(Ordering::Relaxed),
                SAVED_INO.load(Ordering::Relaxed),
            ))
    {
        fd
    } else {
        2
    }
}

fn report_fd() -> i32 {
    let Some(path) = settings::output_path() else {
        return stderr_fd();
    };
    let pid = syscalls::getpid();
    let cur = OPEN.load(Ordering::Acquire);
    if cur != 0 && (cur >> 32) as i32 == pid {
        return cur as u32 as i32;
    }
    let expanded = expand(path, pid);
    let fd = CString::new(expanded.clone())
        .ok()
        .and_then(|c| syscalls::open_append(&c));
    let Some(fd) = fd else {
        rt::warn_once(
            &WARNED,
            format_args!(
                "ASMALLOC_OUTPUT: cannot open '{expanded}' for appending; reporting to stderr"
            ),
        );
        return stderr_fd();
    };
    let new = (u64::from(pid as u32) << 32) | u64::from(fd as u32);
    match OPEN.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fd,
        Err(winner) => {
            syscalls::close(fd);
            winner as u32 as i32
        }
    }
}

/// Writes one report (or any text) to the report destination.
pub(crate) fn emit(bytes: &[u8]) {
    rt::write_fd(report_fd(), bytes);
}

#[cfg(test)]
mod tests {
    #[test]
    fn pid_placeholder() {
        assert_eq!(super::expand("/tmp/a.%p.log", 42), "/tmp/a.42.log");
        assert_eq!(super::expand("/tmp/a.log", 42), "/tmp/a.log");
    }
}
